"""Own-weight baseline: each target depends on its own domain's weight only.

    L_i(h, N, D) = E_i + A_h,i (K h_i)^-a_i + A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i

The own-weight power law E + A h^-a (laws.md section 5; the baseline of Dai & Zheng 2026, arXiv:2606.08167) with
Chinchilla terms in N and D (Hoffmann et al. 2022) so that it can extrapolate in scale. Per target: E, A_h, a, A,
alpha, B, beta: 7 numbers; plus, for each target that is not a training domain, K simplex weights pi: its h_i is
replaced by sum_j pi_j h_j with pi ~ Dirichlet(1) ("how much of the mixture serves this target").

Sampled coordinates (per target; no parameter is shared between targets):

    L = L_ref * (s_rel * ((K h_i)^-a - 1) / a + 1 - slope_N phi(alpha, log N/N0) - slope_D phi(beta, log D/D0))
    phi(k, x) = (1 - exp(-k x)) / k

- ``L_ref``: the loss at the reference point (N0, D0, own weight 1/K);
- ``s_rel``: the own-weight slope at 1/K, -dL/dlog(h_i) / L_ref;
- ``a``: the exponent; ``slope_N``, ``slope_D``: the share of L_ref lost per e-fold of N and of D at (N0, D0)
  (``components``, where the scale terms are written once).

The paper's numbers: A_h = L_ref s_rel / a, A = L_ref slope_N / alpha, B = L_ref slope_D / beta,
E = L_ref - A - B - A_h (:func:`paper_parameters`; :func:`from_paper_parameters` goes the other way). The Box-Cox
term is smooth through a -> 0, where it becomes -s_rel L_ref log(K h_i), and so are the scale terms through
alpha, beta -> 0; E is not forced positive (the law is extended to those log-linear limits) and the loss is kept
positive by ``components.positive``.

Priors (reasons in the definitions below): log-normal around SlimPajama's own-weight slopes and exponents for
``s_rel`` and ``a`` (wide, since a -> 0 is allowed), around typical LLM losses and Chinchilla's fits for ``L_ref``,
``slope_N``, ``slope_D``, ``alpha``, ``beta``; ``pi`` flat Dirichlet(1).

Zero weights: h_i is floored at H_FLOOR (0.1%) so that a domain left out of a mixture gives a large but finite loss;
read such a prediction as "much worse", not as a number.

Measurements behind these choices: docs/laws/own_weight.md
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


def paper_parameters(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """E, A_h, a, A, alpha, B, beta (and pi if present) from sampled coordinates (one draw or stacked draws)."""
    scale = paper_scale_terms(p)
    A_h = np.asarray(p["L_ref"]) * np.asarray(p["s_rel"]) / np.asarray(p["a"])
    out = {"E": scale.pop("F") - A_h, "A_h": A_h, "a": np.asarray(p["a"]), **scale}
    if "pi" in p:
        out["pi"] = np.asarray(p["pi"])
    return out


def from_paper_parameters(E, A_h, a, A, alpha, B, beta, pi=None) -> dict[str, np.ndarray]:
    """Sampled coordinates from E, A_h, a, A, alpha, B, beta (each (T,)) and optionally pi (F, K)."""
    E, A_h, A, B, a = (np.asarray(v, float) for v in (E, A_h, A, B, a))
    F = E + A_h
    out = {
        "L_ref": F + A + B,
        "s_rel": A_h * a / (F + A + B),
        "a": a,
        **scale_coordinates(A, alpha, B, beta, F + A + B),
    }
    if pi is not None:
        out["pi"] = np.asarray(pi, float)
    return out


@register
class OwnWeight(Law):
    name = "own_weight"
    title = "Own-weight baseline"
    reference = "Dai & Zheng 2026, arXiv:2606.08167 (baseline); Hoffmann et al. 2022 (N, D terms)"
    formula = "E_i + A_h (K h_i)^-a + A (N/N0)^-alpha + B (D/D0)^-beta"
    min_mixtures = 3
    revision = 3  # 2: mixture slope relative to L_ref (was relative to F); 3: scale terms through their slopes

    def params(self, domains, targets):
        spec = {
            "L_ref": Param(
                ("target",),
                log_normal_around(2.5, 2.0, "LLM validation losses at 0.1-1B parameters sit at 1.5-4 nats"),
                "loss at the reference point (N0, D0, own weight 1/K)",
            ),
            "s_rel": Param(
                ("target",),
                log_normal_around(0.05, 3.0, "an e-fold more own weight lowers a loss by a few % (SlimPajama: 3-18%)"),
                "own-weight slope at h_i = 1/K, -dL/dlog h_i, as a multiple of L_ref",
            ),
            "a": Param(
                ("target",),
                log_normal_around(
                    0.2, 3.0, "own-weight exponents on SlimPajama are about 0.05-0.5; wide, since a -> 0 is allowed"
                ),
                "own-weight exponent",
            ),
            "slope_N": size_slope(),
            "alpha": size_exponent(),
            "slope_D": token_slope(),
            "beta": token_exponent(),
        }
        if any(t not in domains for t in targets):
            spec["pi"] = foreign_share()
        return spec

    def mean(self, p, x: Inputs) -> jnp.ndarray:
        K = x.h.shape[-1]
        h_own = jnp.maximum(own_weight(x.h, x.own, p.get("pi")), H_FLOOR)  # (M, T)
        # ((K h)^-a - 1) / a, exact and smooth as a -> 0 (expm1 keeps it accurate there).
        own_term = p["s_rel"] * jnp.expm1(-p["a"] * jnp.log(K * h_own)) / p["a"]
        log_n = jnp.log(x.N / x.N0)[:, None]
        log_d = jnp.log(x.D / x.D0)[:, None]
        return p["L_ref"] * positive(own_term[x.mix] + scale_factor(p, log_n, log_d))
