"""Joint law (Shukor et al. 2025, Scaling Laws for Optimal Data Mixtures, arXiv:2507.09404): the additive law whose
scale terms depend on the mixture, so that the best mixture moves with scale.

    L(h, N, D) = E + 1 / sum_j C_j h_j^gamma_j + A_h (N/N0)^-alpha + B_h (D/D0)^-beta
    A_h = (sum_j CA_j h_j)^gammaA,    B_h = (sum_j CB_j h_j)^gammaB

Paper parameters per target: C_j, gamma_j, CA_j, CB_j for each of K domains and E, alpha, beta, gammaA, gammaB:
4K + 5 (33 for the 7 SlimPajama domains, 37 for the paper's K = 8). The inner form of A_h and B_h is a
reconstruction (laws.md section 2) kept in ONE marked section below: :func:`mixture_scale_factor`, :func:`shares`,
:func:`paper_coefficients`.

Sampled coordinates (per target; no parameter is shared between targets): the additive law's, plus two mixture
factors on its scale terms,

    L = L_additive(h, N, D) + A (a(h) - 1) (N/N0)^-alpha + B (b(h) - 1) (D/D0)^-beta
    a(h) = (K sum_j s_A,j h_j)^gamma_A,   b(h) = (K sum_j s_B,j h_j)^gamma_B
    A = L_ref slope_N / alpha,   B = L_ref slope_D / beta
    s_A = softmax(g_A / gamma_A),   s_B = softmax(g_B / gamma_B)

- ``L_ref``, ``slope_N``, ``slope_D``, ``S_rel``, ``alpha``, ``beta``, ``v``, ``gamma``, ``gamma_dev``: the
  additive law's coordinates, priors and mixture term (imported from :mod:`bayesmix.laws.additive`, not copied).
  a = b = 1 at the uniform mixture, so A and B are the scale terms there, at N0 and D0.
- ``g_A`` (T, K): to first order the slope of log A_h in each weight at the uniform mixture (its row mean is held
  by the prior alone); ``gamma_A``: the curvature of A_h in h. Same for ``g_B``, ``gamma_B``. NUTS samples
  ``g_A`` through its product with A / L_ref, the mixture's effect on the loss that the data pin
  (``Param.scaled_by``; the prior on ``g_A`` is unchanged), since g_B and beta otherwise trade along a curve.

Sampled: 4K + 7 numbers, of which two per scale term (the row means of g_A, g_B) and one of the additive part (the
split of the exponents into gamma and gamma_dev) are held by the prior alone: the paper's 4K + 5 are identified.
``Law.n_params`` counts the additive law's simplex v as K numbers, so it reports 4K + 9. The paper's numbers follow
from :func:`paper_parameters` (A is A_h at the uniform mixture, CA_j = A^(1/gamma_A) K s_A,j, see
:func:`paper_coefficients`); :func:`from_paper_parameters` goes the other way.

Priors: the additive law's; ``g_A``, ``g_B`` ~ Normal(0, 1) (0 everywhere is the additive law); ``gamma_A``,
``gamma_B`` ~ LogNormal around 1 (A_h linear in h), x/÷1.35, since a sweep barely sees A_h's curvature in h.

Zero weights need no floor: sum_j s_A,j h_j > 0 because the weights sum to 1 and every s_A,j > 0. At one scale the
law is not identified, so ``fit`` needs two model sizes or token counts (``min_scales``); fit the additive law there.

Measurements behind these choices: docs/laws/joint.md
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..priors import Prior, log_normal_around
from . import additive
from .base import Inputs, Law, Param
from .components import positive, scale_shares
from .registry import register


# --------------------------------------------------------------------------- #
# THE INNER FORM OF A_h AND B_h -- the only place it is written.
# --------------------------------------------------------------------------- #
def mixture_scale_factor(share: jnp.ndarray, exponent: jnp.ndarray, h: jnp.ndarray) -> jnp.ndarray:
    """(M, T) A_h / A: the mixture's factor on a scale term, (K sum_j share_j h_j)^exponent.

    With the paper's A_h = (sum_j CA_j h_j)^gamma_A and CA_j = A^(1/gamma_A) K
    share_j, this is A_h / A, where A is A_h at the uniform mixture (the
    factor is 1 there). ``share`` (T, K) is on the simplex, ``exponent`` (T,).
    The inner sum is positive for any mixture (weights sum to 1, shares from
    a softmax are > 0), so zero weights need no guard; the tiny floor only
    protects against a share that underflows to exactly 0.
    """
    K = h.shape[-1]
    inner = K * h @ share.T  # (M, T): 1 at the uniform mixture
    return jnp.exp(exponent * jnp.log(jnp.maximum(inner, 1e-300)))


def paper_coefficients(value: np.ndarray, share: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """The paper's CA_j (or CB_j) from the value at the uniform mixture, the share and the exponent.

    Inverse of the form in :func:`mixture_scale_factor`: (sum_j CA_j h_j)^exponent
    = value * mixture_scale_factor(share, exponent, h). Works on single draws or
    stacked draws: ``value`` (..., T), ``share`` (..., T, K), ``exponent``
    (..., T); returns (..., T, K).
    """
    value, share, exponent = np.asarray(value), np.asarray(share), np.asarray(exponent)
    K = share.shape[-1]
    return (value ** (1.0 / exponent))[..., None] * K * share


def shares(slopes: jnp.ndarray, exponent: jnp.ndarray) -> jnp.ndarray:
    """(..., T, K) the simplex shares s = softmax(slopes / exponent) of :func:`mixture_scale_factor`.

    ``slopes`` (..., T, K) are, to first order around the uniform mixture, the
    slopes of log A_h in each weight (up to their row mean, which cancels);
    ``exponent`` (..., T). Works on jax or numpy arrays.
    """
    return jax.nn.softmax(jnp.asarray(slopes) / jnp.asarray(exponent)[..., None], axis=-1)


# --------------------------------------------------------------------------- #


def paper_parameters(p: Mapping[str, np.ndarray], K: int) -> dict[str, np.ndarray]:
    """The paper's numbers from sampled coordinates (one draw or stacked draws).

    The additive law's E, A, alpha, B, beta, C, gamma (A and B are A_h and B_h
    at the uniform mixture, relative to N0 and D0), plus ``s_A``, ``gamma_A``,
    ``s_B``, ``gamma_B`` and the paper's coefficients ``CA``, ``CB`` (..., T, K).
    """
    out = additive.paper_parameters(p, K)
    for term in ("A", "B"):
        exponent = np.asarray(p[f"gamma_{term}"])
        share = np.asarray(shares(np.asarray(p[f"g_{term}"]), exponent))
        out[f"s_{term}"], out[f"gamma_{term}"] = share, exponent
        out[f"C{term}"] = paper_coefficients(out[term], share, exponent)
    return out


def from_paper_parameters(E, A, alpha, B, beta, w, gamma, s_A, gamma_A, s_B, gamma_B) -> dict[str, np.ndarray]:
    """Sampled coordinates from the law's natural numbers.

    E, A, alpha, B, beta, w, gamma as in :func:`bayesmix.laws.additive.from_paper_parameters`
    (A and B are A_h and B_h at the uniform mixture and at N0, D0); ``s_A``,
    ``s_B`` (T, K) on the simplex and ``gamma_A``, ``gamma_B`` (T,) the inner
    form of :func:`mixture_scale_factor`.
    """
    out = additive.from_paper_parameters(E, A, alpha, B, beta, w, gamma)
    for term, share, exponent in (("A", s_A, gamma_A), ("B", s_B, gamma_B)):
        log_s = np.log(np.asarray(share, float))
        exponent = np.asarray(exponent, float)
        # The slopes up to their row mean (not identified): centred here.
        out[f"g_{term}"] = exponent[..., None] * (log_s - log_s.mean(-1, keepdims=True))
        out[f"gamma_{term}"] = exponent
    return out


_ADDITIVE = additive.Additive()


def size_term(p: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """(T, 1) A / L_ref: what ``g_A`` multiplies in the loss (NUTS samples their product, ``Param.scaled_by``)."""
    return scale_shares(p)["A"][..., None]


def token_term(p: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """(T, 1) B / L_ref: what ``g_B`` multiplies in the loss."""
    return scale_shares(p)["B"][..., None]


@register
class Joint(Law):
    name = "joint"
    title = "Joint law"
    reference = "Shukor et al. 2025, Scaling Laws for Optimal Data Mixtures, arXiv:2507.09404"
    formula = "E + 1/sum_j C_j h_j^gamma_j + A_h (N/N0)^-alpha + B_h (D/D0)^-beta, A_h = (sum_j CA_j h_j)^gammaA"
    min_mixtures = 4
    min_scales = 2
    revision = 2  # 2: the additive law's scale terms through their slopes
    why_scales = (
        "at one scale its mixture-dependent scale terms A_h and B_h are constants that trade with each other "
        "and with the mixture term (measured: R-hat 2.5 on 48 runs at one scale); fit the additive law, "
        "which is the joint law's one-scale form"
    )

    def params(self, domains, targets) -> dict[str, Param]:
        spec = dict(_ADDITIVE.params(domains, targets))  # the additive law's coordinates and priors
        spec.update(
            {
                "g_A": Param(
                    ("target", "domain"),
                    Prior(
                        "Normal",
                        {"loc": 0.0, "scale": 1.0},
                        "moving the whole mixture to one domain changes the model-size term by up to x/÷e (1 sd); 0 "
                        "for every domain is the additive law",
                    ),
                    "slope of log A_h in each domain's weight at the uniform mixture (s_A = softmax(g_A / gamma_A))",
                    scaled_by=size_term,
                ),
                "gamma_A": Param(
                    ("target",),
                    log_normal_around(
                        1.0,
                        1.35,
                        "A_h linear in the weights (gamma_A = 1) give or take x/÷1.35: a sweep barely sees A_h's "
                        "curvature in h (see the module docstring)",
                    ),
                    "exponent of A_h (its curvature in h)",
                ),
                "g_B": Param(
                    ("target", "domain"),
                    Prior("Normal", {"loc": 0.0, "scale": 1.0}, "as g_A, for the token term"),
                    "slope of log B_h in each domain's weight at the uniform mixture (s_B = softmax(g_B / gamma_B))",
                    scaled_by=token_term,
                ),
                "gamma_B": Param(
                    ("target",),
                    log_normal_around(1.0, 1.35, "as gamma_A: B_h linear in the weights, give or take x/÷1.35"),
                    "exponent of B_h (its curvature in h)",
                ),
            }
        )
        return spec

    def mean(self, p: Mapping[str, jnp.ndarray], x: Inputs) -> jnp.ndarray:
        # The additive law, from its own code (whatever its mixture-term
        # convention), plus the mixture's effect on its two scale terms:
        # A (a(h) - 1) (N/N0)^-alpha + B (b(h) - 1) (D/D0)^-beta, with the
        # additive coordinates' A / L_ref = slope_N / alpha (components.scale_shares).
        base = additive.relative_mean(p, x)  # (n, T), over L_ref
        a = mixture_scale_factor(shares(p["g_A"], p["gamma_A"]), p["gamma_A"], x.h)[
            x.mix
        ]  # (n, T), 1 at the uniform mixture
        b = mixture_scale_factor(shares(p["g_B"], p["gamma_B"]), p["gamma_B"], x.h)[x.mix]
        log_n = jnp.log(x.N / x.N0)[:, None]
        log_d = jnp.log(x.D / x.D0)[:, None]
        share = scale_shares(p)
        return p["L_ref"] * positive(
            base
            + share["A"] * (a - 1) * jnp.exp(-p["alpha"] * log_n)
            + share["B"] * (b - 1) * jnp.exp(-p["beta"] * log_d)
        )
