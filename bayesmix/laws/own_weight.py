"""Own-weight baseline: each target depends on its own domain's weight only.

    L_i(h, N, D) = E_i + A_h,i (K h_i)^-a_i + A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i

The own-weight power law E + A h^-a (laws.md section 5) with Chinchilla terms
in N and D so that it can extrapolate in scale. Per target: E, A_h, a, A,
alpha, B, beta: 7 parameters; plus, for each target that is not a training
domain, K simplex weights (see below).

A_h is the mixture term at the uniform weight 1/K (why: it is then of the order
of the loss and nearly uncorrelated with the exponent a).

Targets that are not training domains (e.g. ``openhermes``): h_i is replaced
by a learned convex combination of the domain weights, sum_j pi_j h_j with
pi ~ Dirichlet(1): "how much of the mixture serves this target".

Zero weights: h_i is floored at H_FLOOR (0.1%) so that a domain left out of a
mixture gives a large but finite loss. Predictions for such a mixture are
extrapolations of the power law to a weight no run saw: read them as "much
worse", not as a number.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..priors import Prior, log_normal_around
from .additive import scale_terms
from .base import H_FLOOR, Inputs, Law, Param, own_weight
from .registry import register


@register
class OwnWeight(Law):
    name = "own_weight"
    title = "Own-weight baseline"
    reference = "Dai & Zheng 2026, arXiv:2606.08167 (baseline); Hoffmann et al. 2022 (N, D terms)"
    formula = "E_i + A_h (K h_i)^-a + A (N/N0)^-alpha + B (D/D0)^-beta"
    min_mixtures = 3

    def params(self, domains, targets):
        spec = {
            "E": Param(("target",), log_normal_around(1.5, 2.0, "irreducible loss: LLM validation losses sit at 1-4 nats"), "irreducible loss"),
            "A_h": Param(("target",), log_normal_around(0.3, 3.0, "own-weight term at the uniform mixture: tenths of a nat"), "own-weight term at h_i = 1/K"),
            "a": Param(("target",), log_normal_around(0.2, 2.0, "own-weight exponents on SlimPajama are about 0.05-0.5"), "own-weight exponent"),
            "A": Param(("target",), log_normal_around(0.3, 3.0, "model-size term at the reference scale"), "model-size term at N0"),
            "alpha": Param(("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give alpha around 0.34"), "model-size exponent"),
            "B": Param(("target",), log_normal_around(0.3, 3.0, "token term at the reference scale"), "token term at D0"),
            "beta": Param(("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give beta around 0.28"), "token exponent"),
        }
        if any(t not in domains for t in targets):
            spec["pi"] = Param(("foreign", "domain"), Prior("Dirichlet", {"concentration": 1.0}, "flat over the simplex"), "weight of each domain in a foreign target's effective share")
        return spec

    def mean(self, p, x: Inputs) -> jnp.ndarray:
        K = x.h.shape[-1]
        h_own = jnp.maximum(own_weight(x.h, x.own, p.get("pi")), H_FLOOR)  # (M, T)
        mix = p["A_h"] * (K * h_own) ** -p["a"]
        return p["E"] + mix[x.mix] + scale_terms(p, x)
