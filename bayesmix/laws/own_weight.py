"""Own-weight baseline: each target depends on its own domain's weight only.

    L_i(h, N, D) = E_i + A_h,i (K h_i)^-a_i + A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i

The own-weight power law E + A h^-a (laws.md section 5; the baseline of Dai & Zheng 2026, arXiv:2606.08167) with
Chinchilla terms in N and D (Hoffmann et al. 2022) so that it can extrapolate in scale. Per target: E, A_h, a, A,
alpha, B, beta: 7 numbers; plus, for each target that is not a training domain, K simplex weights pi: its h_i is
replaced by sum_j pi_j h_j with pi ~ Dirichlet(1) ("how much of the mixture serves this target").

Sampled coordinates (per target; no parameter is shared between targets):

    L = L_ref * s_rel * ((K h_i)^-a - 1) / a + F * (1 + A_rel (N/N0)^-alpha + B_rel (D/D0)^-beta)
    F = L_ref / (1 + A_rel + B_rel)

- ``L_ref``: the loss at the reference point (N0, D0, own weight 1/K);
- ``F`` = E + A_h: the loss floor at own weight 1/K (scale terms gone);
- ``s_rel``: the own-weight slope at 1/K, -dL/dlog(h_i) / L_ref (relative to L_ref, not F);
- ``a``: the exponent; A_rel, B_rel: the scale terms at (N0, D0) over F.

The paper's numbers: A_h = L_ref s_rel / a, E = F - A_h, A = F A_rel, B = F B_rel (:func:`paper_parameters`;
:func:`from_paper_parameters` goes the other way). The Box-Cox term is smooth through a -> 0, where it becomes
-s_rel L_ref log(K h_i); E is not forced positive (the law is extended to that log-linear limit).

Priors (reasons in the definitions below): log-normal around SlimPajama's own-weight slopes and exponents for
``s_rel`` and ``a`` (wide, since a -> 0 is allowed), around typical LLM losses and Chinchilla's fits for ``L_ref``,
``A_rel``, ``B_rel``, ``alpha``, ``beta``; ``pi`` flat Dirichlet(1).

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
from .components import foreign_share, size_exponent, size_term, token_exponent, token_term
from .registry import register


def paper_parameters(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """E, A_h, a, A, alpha, B, beta (and pi if present) from sampled coordinates (one draw or stacked draws)."""
    F = np.asarray(p["L_ref"]) / (1 + np.asarray(p["A_rel"]) + np.asarray(p["B_rel"]))
    A_h = np.asarray(p["L_ref"]) * np.asarray(p["s_rel"]) / np.asarray(p["a"])
    out = {
        "E": F - A_h,
        "A_h": A_h,
        "a": np.asarray(p["a"]),
        "A": F * np.asarray(p["A_rel"]),
        "alpha": np.asarray(p["alpha"]),
        "B": F * np.asarray(p["B_rel"]),
        "beta": np.asarray(p["beta"]),
    }
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
        "A_rel": A / F,
        "B_rel": B / F,
        "alpha": np.asarray(alpha, float),
        "beta": np.asarray(beta, float),
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
    revision = 2  # 2: mixture slope relative to L_ref (was relative to F)

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
            "A_rel": size_term("F"),
            "alpha": size_exponent(),
            "B_rel": token_term("F"),
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
        F = p["L_ref"] / (1 + p["A_rel"] + p["B_rel"])
        return p["L_ref"] * own_term[x.mix] + F * (
            1 + p["A_rel"] * jnp.exp(-p["alpha"] * log_n) + p["B_rel"] * jnp.exp(-p["beta"] * log_d)
        )
