"""BiMix (Ge et al. 2024, arXiv:2405.14908): per-domain, multiplicative in the
domain's own weight and in data, with a Chinchilla model-size term added.

BiMix as quoted from secondary sources (laws.md section 5; the form is kept in
one place, :func:`bimix_form`, so that it can be corrected):

    L_i(h_i, D) = A_i / h_i^alpha_i * (B_i / D^beta_i + C_i)

BiMix has no model-size term. Here the bracket is extended to Chinchilla's
law, so that the law extrapolates in N:

    L_i(h, N, D) = (K h_i)^-a_i * (E_i + A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i)

i.e. "the own-weight multiplier of BiMix times a Chinchilla law". At any fixed
model size it is exactly BiMix: C_i = E_i + A_i (N/N0)^-alpha_i. The map to the
paper's symbols: alpha_i(BiMix) = a_i; A_i(BiMix) = K^-a_i with B, C in
absolute units (the paper's A_i is redundant with B_i and C_i -- scaling A by
c and B, C by 1/c gives the same law -- so it is fixed to K^-a_i here, which
makes E, A, B the terms' values at the uniform mixture h_i = 1/K);
B_i(BiMix) = B_i D0^beta_i. Note the multiplier scales the irreducible loss E
too, as BiMix's C_i is scaled by h_i^-alpha_i.

Parameters per target: a, E, A, alpha, B, beta: 6; plus, for each target that
is not a training domain, K simplex weights pi (K - 1 free): 6T + K F. Such a
target's (e.g. ``openhermes``) h_i is a learned convex combination of the
domain weights, sum_j pi_j h_j (``base.own_weight``, the own-weight law's
convention).

Sampled coordinates (per target; no parameter is shared between targets), the
level/ratio structure of the additive and own-weight laws:

    L = (K h_i)^-a * L_ref * (1 - slope_N phi(alpha, log N/N0) - slope_D phi(beta, log D/D0))
    phi(k, x) = (1 - exp(-k x)) / k

- ``L_ref``: the loss at the reference point (N0, D0, own weight 1/K);
- ``slope_N``, ``slope_D``: the share of the bracket lost per e-fold of N and
  of D at (N0, D0) (``components``, where the scale terms are written once);
- ``a``, ``alpha``, ``beta``: the exponents.

The paper's numbers: A = L_ref slope_N / alpha, B = L_ref slope_D / beta,
E = L_ref - A - B (:func:`paper_parameters`; :func:`from_paper_parameters`
goes the other way). E is not forced positive; the bracket is kept positive
by ``components.positive``.

Priors (reasons in the definitions below): log-normal around SlimPajama's
own-weight slopes for ``a`` and around typical LLM losses and Chinchilla's
fits for ``L_ref``, ``slope_N``, ``slope_D``, ``alpha``, ``beta``; ``pi`` flat
Dirichlet(1).

Zero weights: h_i is floored at ``H_FLOOR`` (0.1%), so a domain left out of a
mixture gives a large but finite loss; read such a prediction as "much worse".

Measurements behind these choices: docs/laws/bimix.md
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp
import numpy as np

from ..priors import log_normal_around
from .base import H_FLOOR, Inputs, Law, Param, own_weight
from .components import (
    foreign_share,
    paper_scale_terms,
    positive,
    scale_coordinates,
    scale_factor,
    size_exponent,
    size_slope,
    token_exponent,
    token_slope,
)
from .registry import register


def bimix_form(relative_h: jnp.ndarray, a: jnp.ndarray, bracket: jnp.ndarray) -> jnp.ndarray:
    """THE BiMix form, in one place: (K h_i)^-a_i times the data (and size) bracket.

    ``relative_h`` (n, T) is K h_i, the own-domain weight relative to the
    uniform mixture (already floored, so positive); ``a`` (T,);
    ``bracket`` (n, T) = E + A (N/N0)^-alpha + B (D/D0)^-beta, which at fixed N
    is BiMix's B / D^beta + C. Returns (n, T).
    """
    return jnp.exp(-a * jnp.log(relative_h)) * bracket


def paper_parameters(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """a, E, A, alpha, B, beta (and pi if present) from sampled coordinates (one draw or stacked draws)."""
    scale = paper_scale_terms(p)
    out = {"a": np.asarray(p["a"]), "E": scale.pop("F"), **scale}
    if "pi" in p:
        out["pi"] = np.asarray(p["pi"])
    return out


def from_paper_parameters(a, E, A, alpha, B, beta, pi=None) -> dict[str, np.ndarray]:
    """Sampled coordinates from a, E, A, alpha, B, beta (each (T,)) and optionally pi (F, K)."""
    E, A, B = (np.asarray(v, float) for v in (E, A, B))
    out = {
        "a": np.asarray(a, float),
        "L_ref": E + A + B,
        **scale_coordinates(A, alpha, B, beta, E + A + B),
    }
    if pi is not None:
        out["pi"] = np.asarray(pi, float)
    return out


@register
class BiMix(Law):
    name = "bimix"
    title = "BiMix (with a Chinchilla model-size term)"
    reference = "Ge et al. 2024, BiMix: A Bivariate Data Mixing Law for Language Model Pretraining, arXiv:2405.14908"
    formula = "(K h_i)^-a_i (E_i + A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i)"
    min_mixtures = 3
    revision = 2  # 2: scale terms through their slopes (1 sampled A, B over a positive E)

    def params(self, domains, targets) -> dict[str, Param]:
        spec = {
            "a": Param(
                ("target",),
                log_normal_around(
                    0.05,
                    3.0,
                    "own-weight exponents of the whole loss: on SlimPajama log loss falls 0.02-0.09 per e-fold of own "
                    "weight",
                ),
                "own-weight exponent (BiMix's alpha_i)",
            ),
            "L_ref": Param(
                ("target",),
                log_normal_around(2.5, 2.0, "LLM validation losses at 0.1-1B parameters sit at 1.5-4 nats"),
                "loss at the reference point (N0, D0, own weight 1/K)",
            ),
            "slope_N": size_slope(),
            "alpha": size_exponent(),
            "slope_D": token_slope(),
            "beta": token_exponent(
                "Chinchilla fits give beta around 0.28; BiMix's own fits are of the same order",
                "token exponent (BiMix's beta_i)",
            ),
        }
        if any(t not in domains for t in targets):
            spec["pi"] = foreign_share()
        return spec

    def mean(self, p: Mapping[str, jnp.ndarray], x: Inputs) -> jnp.ndarray:
        K = x.h.shape[-1]
        h_own = jnp.maximum(own_weight(x.h, x.own, p.get("pi")), H_FLOOR)  # (M, T)
        log_n = jnp.log(x.N / x.N0)[:, None]
        log_d = jnp.log(x.D / x.D0)[:, None]
        bracket = p["L_ref"] * positive(scale_factor(p, log_n, log_d))
        return bimix_form(K * h_own[x.mix], p["a"], bracket)
