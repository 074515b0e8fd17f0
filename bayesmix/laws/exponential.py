"""Exponential mixing law (Ye et al. 2024, Data Mixing Laws, ICLR 2025, arXiv:2403.16952) with its step and size
laws, as ONE Bayesian model.

    L_i(h, N, D) = E_i + exp(sum_j t_ij (h_j - 1/K)) * [A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i]

At fixed (h, N) it is the paper's step law in D, at fixed (h, D) its size law in N, and at fixed (N, D) its mixing
law c + k exp(t . h): the pipeline's three stages share exponents and are fitted at once, so the posterior
uncertainty reaches each prediction at the target (N, D). The mixture multiplies the reducible loss as a whole, so
for ONE target the best mixture is the same at every scale (for a weighted sum of targets it still moves).

Parameters per target: E, A, alpha, B, beta and z_ij (or t_ij) for each of K domains: K + 5 (12 for the 7 SlimPajama
domains). At one scale the law has the paper's K + 2 (c, k, t). Only the row-centred t is identified (sum_j h_j = 1);
its row mean is held by the prior, and :func:`interaction_matrix` returns the centred matrix.

Sampled coordinates (per target; no parameter is shared between targets):

    L = L_ref (1 - u + m(h) u (A_share (N/N0)^-alpha + (1 - A_share) (D/D0)^-beta)),   u = ``reducible``
    m(h) = exp(sum_j t_ij (h_j - 1/K)),   t_ij = s_ij / u
    s_ij = CROSS_SCALE z_ij  (j not i's own domain),   s_ii = OWN_SCALE z_ii,   z ~ StudentT(3, 0, 1)

- ``L_ref`` = E + A + B: the loss at (N0, D0) and the uniform mixture;
- ``reducible`` = (A + B) / L_ref: the reducible loss there as a share of it, so E = L_ref (1 - u), free in sign
  (kept positive beyond the sweep by ``components.positive``); ``A_share`` = A / (A + B);
- ``alpha``, ``beta``: the exponents;
- ``z``: the standardised log-loss slopes s_ij at the uniform mixture and (N0, D0); t is derived
  (:func:`interactions`).

The paper's numbers follow from :func:`paper_parameters` (:func:`from_paper_parameters` goes the other way).

Priors (reasons in the definitions below): log-normal around typical LLM losses and Chinchilla's fits for ``L_ref``,
``reducible``, ``alpha``, ``beta``; ``A_share`` ~ Beta(2, 2). The slopes are shrunk with fixed (not learned) scales:
cross-domain ones toward 0 (CROSS_SCALE = 0.25) with Student-t tails that let a few strong ones survive, a target's
own domain not (OWN_SCALE = 1); a target that is not a training domain gets the cross-domain scale on every slope.
Override the shrinkage family with e.g. ``priors={"z": "Normal(0, 1)"}`` or ``"Laplace(0, 1)"`` (Bayesian lasso).

Zero weights need no floor or mask: the law is linear in h inside the exponential.

Measurements behind these choices: docs/laws/exponential.md
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from ..priors import Prior, log_normal_around
from .base import Inputs, Law, Param
from .components import positive
from .registry import register

# Prior scales of a target's log-loss slope in its own domain's weight and in
# the others' (reasons: the module docstring and docs/laws/exponential.md).
OWN_SCALE = 1.0
CROSS_SCALE = 0.25


def slopes(z: jnp.ndarray, own: jnp.ndarray) -> jnp.ndarray:
    """(..., T, K) the slopes s_ij = d log L_i / d h_j at the uniform mixture and (N0, D0): CROSS_SCALE z_ij,
    OWN_SCALE z_ii."""
    K = z.shape[-1]
    is_own = jnp.arange(K)[None, :] == jnp.asarray(own)[:, None]  # no match for own == -1
    return jnp.where(is_own, OWN_SCALE, CROSS_SCALE) * z


def interactions(p: Mapping[str, jnp.ndarray], own: jnp.ndarray) -> jnp.ndarray:
    """(..., T, K) the raw interaction matrix t = s / u, u = ``reducible``, from parameters or stacked draws.

    At (N0, D0) and the uniform mixture the law is L_ref (1 - u + u m(h)),
    whose log-slope in h_j is t_j u: that slope is what is sampled.
    """
    return slopes(p["z"], own) / p["reducible"][..., None]


def mixing_factor(t: jnp.ndarray, h: jnp.ndarray) -> jnp.ndarray:
    """(M, T) exp(sum_j t_ij (h_j - 1/K)): the mixture's multiplier of the reducible loss, 1 at the uniform mixture."""
    K = h.shape[-1]
    return jnp.exp((h - 1.0 / K) @ t.T)


def _raw_interactions(p: Mapping[str, np.ndarray], own: Sequence[int]) -> np.ndarray:
    """:func:`interactions` on numpy parameters or stacked draws, as numpy."""
    return np.asarray(interactions({k: np.asarray(p[k]) for k in ("z", "reducible")}, np.asarray(own)))


def interaction_matrix(p: Mapping[str, np.ndarray], own: Sequence[int]) -> np.ndarray:
    """The identified (row-centred) interaction matrix t_ij from parameters or stacked draws.

    ``p`` holds ``z`` and ``reducible``, e.g. ``fit.flat_draws()``;
    ``own`` (T,) is each target's own-domain index or -1
    (``bayesmix.laws.base.own_index(fit.domains, fit.targets)``).
    Returns (..., T, K) with every row summing to 0: t_ij < 0 means domain j
    lowers target i's loss more than the average domain does.
    """
    t = _raw_interactions(p, own)
    return t - t.mean(axis=-1, keepdims=True)


def paper_parameters(p: Mapping[str, np.ndarray], own: Sequence[int]) -> dict[str, np.ndarray]:
    """E, A, alpha, B, beta and the raw interaction matrix t from sampled coordinates (one draw or stacked draws)."""
    L_ref, u, share = np.asarray(p["L_ref"]), np.asarray(p["reducible"]), np.asarray(p["A_share"])
    return {
        "E": L_ref * (1 - u),
        "A": L_ref * u * share,
        "alpha": np.asarray(p["alpha"]),
        "B": L_ref * u * (1 - share),
        "beta": np.asarray(p["beta"]),
        "t": _raw_interactions(p, own),
    }


def from_paper_parameters(E, A, alpha, B, beta, t, own: Sequence[int]) -> dict[str, np.ndarray]:
    """Sampled coordinates from E, A, alpha, B, beta (each (T,)), the interaction matrix t (T, K) and each target's
    own domain (-1: none)."""
    E, A, B = (np.asarray(v, float) for v in (E, A, B))
    u = (A + B) / (E + A + B)
    unit = np.asarray(slopes(np.ones_like(np.asarray(t, float)), np.asarray(own)))
    return {
        "L_ref": E + A + B,
        "reducible": u,
        "A_share": A / (A + B),
        "alpha": np.asarray(alpha, float),
        "beta": np.asarray(beta, float),
        "z": np.asarray(t, float) * u[:, None] / unit,
    }


@register
class Exponential(Law):
    name = "exponential"
    revision = 3  # 1 sampled E, A, B on their own log scales; 2 R_rel = (A + B) / E, which kept E > 0
    title = "Exponential mixing law with step and size laws"
    reference = "Ye et al. 2024, Data Mixing Laws, ICLR 2025, arXiv:2403.16952"
    formula = "E_i + exp(sum_j t_ij (h_j - 1/K)) [A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i]"
    min_mixtures = 3

    def params(self, domains, targets) -> dict[str, Param]:
        return {
            "L_ref": Param(
                ("target",),
                log_normal_around(2.5, 2.0, "LLM validation losses at 0.1-1B parameters sit at 1.5-4 nats"),
                "loss at the reference point (N0, D0) and the uniform mixture",
            ),
            "reducible": Param(
                ("target",),
                log_normal_around(
                    0.35,
                    2.0,
                    "Chinchilla's fit (Hoffmann et al. 2022) gives A (N/N0)^-alpha + B (D/D0)^-beta = 0.36 of the loss "
                    "at 0.5B parameters and 20B tokens; x/÷2 leaves E > 0 with prior probability 0.94",
                ),
                "reducible loss (A + B) at (N0, D0) and the uniform mixture, as a share of L_ref (E = L_ref (1 - "
                "reducible), free in sign)",
            ),
            "A_share": Param(
                ("target",),
                Prior(
                    "Beta",
                    {"concentration1": 2.0, "concentration0": 2.0},
                    "either term may dominate; Chinchilla's are about even (0.26 and 0.31 of E)",
                ),
                "share of the reducible loss at (N0, D0) that is the model-size term",
            ),
            "alpha": Param(
                ("target",),
                log_normal_around(0.3, 1.6, "Chinchilla fits give alpha around 0.34"),
                "model-size exponent (size law)",
            ),
            "beta": Param(
                ("target",),
                log_normal_around(0.3, 1.6, "Chinchilla fits give beta around 0.28"),
                "token exponent (step law)",
            ),
            "z": Param(
                ("target", "domain"),
                Prior(
                    "StudentT",
                    {"df": 3.0, "loc": 0.0, "scale": 1.0},
                    "heavy-tailed shrinkage: most slopes near 0, a few large",
                ),
                "standardised log-loss slope at the uniform mixture and (N0, D0): s_ij / CROSS_SCALE, or s_ii / "
                "OWN_SCALE on the own domain",
            ),
        }

    def mean(self, p: Mapping[str, jnp.ndarray], x: Inputs) -> jnp.ndarray:
        t = interactions(p, x.own)  # (T, K)
        log_n = jnp.log(x.N / x.N0)[:, None]
        log_d = jnp.log(x.D / x.D0)[:, None]
        u = p["reducible"]
        falls = p["A_share"] * jnp.exp(-p["alpha"] * log_n) + (1 - p["A_share"]) * jnp.exp(-p["beta"] * log_d)
        # E / L_ref = 1 - u, free in sign: kept positive where a draw with E < 0 is taken far beyond the sweep.
        return p["L_ref"] * positive(1 - u + mixing_factor(t, x.h)[x.mix] * u * falls)
