"""Additive law (Shukor et al. 2025, Scaling Laws for Optimal Data Mixtures, arXiv:2507.09404).

    L(h, N, D) = E + 1 / sum_j C_j h_j^gamma_j + A (N/N0)^-alpha + B (D/D0)^-beta

Per target: C_j, gamma_j for each of K domains, and E, A, alpha, B, beta: 2K + 5 numbers (19 for the 7 SlimPajama
domains). The same law is sampled in these coordinates (per target; no parameter is shared between targets):

    L = L_ref * (S_rel * (R(h) - 1) / gbar + 1 - slope_N phi(alpha, log N/N0) - slope_D phi(beta, log D/D0))
    R(h) = 1 / sum_j v_j (K h_j)^gamma_j        (R = 1 at the uniform mixture)
    gamma_j = gamma * exp(gamma_dev_j),  gbar = sum_j v_j gamma_j,  phi(k, x) = (1 - exp(-k x)) / k

- ``L_ref``: the loss at the reference point (N0, D0, uniform mixture);
- ``slope_N``, ``slope_D``: the share of L_ref lost per e-fold of N and of D there (``components``, where the
  scale terms of every Chinchilla-style law are written once);
- ``S_rel``: the mixture term's slope at the uniform mixture, -sum_j dL/dlog h_j, over L_ref (M0 gbar / L_ref);
- ``v`` (simplex over domains): each domain's share of the mixture term's sum at the uniform mixture;
- ``gamma``: the target's typical mixture exponent, ``gamma_dev`` each domain's log-deviation from it.

The paper's numbers follow: A = L_ref slope_N / alpha, B = L_ref slope_D / beta, F = L_ref - A - B (= E + M0, the
loss at the uniform mixture with the scale terms gone), M0 = L_ref S_rel / gbar, E = F - M0,
C_j = v_j K^gamma_j / M0. :func:`paper_parameters` computes them from draws, and :func:`from_paper_parameters` goes
the other way (e.g. to simulate from published values). Neither E nor F is forced positive: the law is extended to
its log-linear limits gamma -> 0 and alpha, beta -> 0, and the loss is kept positive by ``components.positive``.

Priors (reasons in the definitions below): log-normal around typical LLM losses for ``L_ref`` and around
Chinchilla's fits for ``slope_N``, ``slope_D``, ``alpha``, ``beta``; ``S_rel`` wide around 0.1; ``gamma`` around
0.5; ``v`` flat Dirichlet(1); ``gamma_dev`` ~ Normal(0, 0.3), partial pooling of the exponents towards ``gamma``
(x/÷1.35 at one sd), which removes the funnel that free exponents made (a domain with a share near 0 leaves its
exponent free). Widen it to relax it.

Zero weights: a domain with h_j = 0 contributes nothing to the sum (masked, not floored: the law's own limit).
Known limit: the mixture term does not interact with N or D, so the best mixture is the same at every scale.

Measurements behind these choices: docs/laws/additive.md
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ..priors import Prior, log_normal_around
from .base import Inputs, Law, Param, safe_log
from .components import (
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


def exponents(p: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """(..., T, K) the per-domain mixture exponents gamma_j = gamma * exp(gamma_dev_j)."""
    return p["gamma"][..., None] * jnp.exp(p["gamma_dev"])


def paper_parameters(p: Mapping[str, np.ndarray], K: int) -> dict[str, np.ndarray]:
    """The paper's E, A, B, C (..., T, K), gamma (..., T, K), alpha, beta from sampled coordinates.

    Works on one draw or on stacked draws (leading axes). ``C`` is for the
    weights as fractions (h_j in [0, 1]) and the scale terms stay relative to
    the fit's N0 and D0: ``A (N/N0)^-alpha``.
    """
    scale = paper_scale_terms(p)
    gamma = np.asarray(exponents({k: jnp.asarray(v) for k, v in p.items()}))
    v = np.asarray(p["v"])
    M0 = np.asarray(p["L_ref"]) * np.asarray(p["S_rel"]) / (v * gamma).sum(-1)
    return {
        "E": scale.pop("F") - M0,
        **scale,
        "C": v * K**gamma / M0[..., None],
        "gamma": gamma,
    }


def from_paper_parameters(E, A, alpha, B, beta, w, gamma) -> dict[str, np.ndarray]:
    """Sampled coordinates from the law's natural numbers.

    ``w`` (T, K) are the weights relative to the uniform mixture
    (C_j = w_j K^gamma_j) and ``gamma`` (T, K) the exponents; E, A, alpha, B,
    beta are (T,), with A and B the terms' values at N0 and D0. The exponents
    are split into ``gamma`` (their geometric mean per target) and
    ``gamma_dev``.
    """
    E, A, B = (np.asarray(v, float) for v in (E, A, B))
    w, gamma = np.asarray(w, float), np.asarray(gamma, float)
    M0 = 1.0 / w.sum(-1)
    v = w / w.sum(-1, keepdims=True)
    F = E + M0
    g = np.exp(np.log(gamma).mean(-1))
    return {
        "L_ref": F + A + B,
        **scale_coordinates(A, alpha, B, beta, F + A + B),
        "S_rel": M0 * (v * gamma).sum(-1) / (F + A + B),
        "v": v,
        "gamma": g,
        "gamma_dev": np.log(gamma / g[..., None]),
    }


@register
class Additive(Law):
    name = "additive"
    title = "Additive law"
    reference = "Shukor et al. 2025, Scaling Laws for Optimal Data Mixtures, arXiv:2507.09404"
    formula = "E + 1/sum_j C_j h_j^gamma_j + A (N/N0)^-alpha + B (D/D0)^-beta"
    min_mixtures = 3
    revision = 3  # 2: mixture slope relative to L_ref (was relative to F); 3: scale terms through their slopes

    def params(self, domains, targets):
        return {
            "L_ref": Param(
                ("target",),
                log_normal_around(2.5, 2.0, "LLM validation losses at 0.1-1B parameters sit at 1.5-4 nats"),
                "loss at the reference point (N0, D0, uniform mixture)",
            ),
            "slope_N": size_slope(),
            "slope_D": token_slope(),
            "S_rel": Param(
                ("target",),
                log_normal_around(
                    0.1,
                    3.0,
                    "an e-fold more of every domain lowers a loss by a few % to a few tens of % (SlimPajama's "
                    "own-weight slopes: 3-18%); wide",
                ),
                "mixture term's slope at the uniform mixture, -sum_j dL/dlog h_j, as a multiple of L_ref",
            ),
            "alpha": size_exponent(),
            "beta": token_exponent(),
            "v": Param(
                ("target", "domain"),
                Prior("Dirichlet", {"concentration": 1.0}, "flat over the simplex"),
                "each domain's share of the mixture term's sum at the uniform mixture",
            ),
            "gamma": Param(
                ("target",),
                log_normal_around(0.5, 2.0, "Shukor et al. report mixture exponents of order 0.1-1"),
                "typical mixture exponent of the target",
            ),
            "gamma_dev": Param(
                ("target", "domain"),
                Prior(
                    "Normal",
                    {"loc": 0.0, "scale": 0.3},
                    "partial pooling: a domain's exponent within x/÷1.35 of the target's (1 sd); removes a funnel, "
                    "see the module docstring",
                ),
                "log-deviation of each domain's exponent from gamma",
            ),
        }

    def mean(self, p, x: Inputs) -> jnp.ndarray:
        return p["L_ref"] * positive(relative_mean(p, x))


def relative_mean(p, x: Inputs) -> jnp.ndarray:
    """(n, T) the additive law's loss over L_ref, before :func:`~bayesmix.laws.components.positive` (the joint
    law adds its own terms here)."""
    K = x.h.shape[-1]
    gamma = exponents(p)  # (T, K)
    # log sum_j v_j (K h_j)^gamma_j in log space, so that no exponent NUTS proposes
    # overflows; a zero weight contributes (K h_j)^gamma_j = 0, the law's own limit.
    log_terms = jnp.log(p["v"])[None] + gamma[None] * safe_log(K * x.h)[:, None, :]  # (M, T, K)
    log_sum = logsumexp(jnp.where(x.h[:, None, :] > 0, log_terms, -jnp.inf), axis=-1)  # (M, T)
    gbar = jnp.sum(p["v"] * gamma, axis=-1)  # (T,)
    mix = jnp.expm1(-log_sum) / gbar  # (R - 1) / gbar, accurate as gamma -> 0
    log_n = jnp.log(x.N / x.N0)[:, None]
    log_d = jnp.log(x.D / x.D0)[:, None]
    return p["S_rel"] * mix[x.mix] + scale_factor(p, log_n, log_d)
