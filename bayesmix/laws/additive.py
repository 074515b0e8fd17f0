"""Additive law (Shukor et al. 2025, arXiv:2507.09404).

    L(h, N, D) = E + 1 / sum_j C_j h_j^gamma_j + A (N/N0)^-alpha + B (D/D0)^-beta

Per target: C_j, gamma_j for each of K domains, and E, A, alpha, B, beta:
2K + 5 parameters (19 for the 7 SlimPajama domains).

Parameterisation (why): the mixture term is written relative to the uniform
mixture, C_j h_j^gamma_j = w_j (K h_j)^gamma_j, so w_j is the domain's share of
the term where the sweep usually sits and is nearly uncorrelated with gamma_j.
The paper's C_j is w_j K^gamma_j, stored as a derived quantity. A and B are the
scale terms' values at the reference scale (N0, D0) inside the data, so they
are of the order of the loss itself and do not trade with the exponents.

Zero weights: a domain with h_j = 0 contributes nothing to the sum (its term is
masked, not floored), which is the law's own limit h_j^gamma_j -> 0.

Known limit: the mixture term does not interact with N or D, so the best
mixture under this law is the same at every scale.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ..priors import Prior, log_normal_around
from .base import Inputs, Law, Param, safe_log
from .registry import register


def mixture_term(w: jnp.ndarray, gamma: jnp.ndarray, h: jnp.ndarray) -> jnp.ndarray:
    """(M, T) 1 / sum_j w_tj (K h_j)^gamma_tj, computed in log space per distinct mixture."""
    K = h.shape[-1]
    log_terms = jnp.log(w)[None] + gamma[None] * safe_log(K * h)[:, None, :]  # (M, T, K)
    log_terms = jnp.where(h[:, None, :] > 0, log_terms, -jnp.inf)
    return jnp.exp(-logsumexp(log_terms, axis=-1))


def scale_terms(p, x: Inputs) -> jnp.ndarray:
    """(n, T) Chinchilla-style A (N/N0)^-alpha + B (D/D0)^-beta."""
    log_n = jnp.log(x.N / x.N0)[:, None]
    log_d = jnp.log(x.D / x.D0)[:, None]
    return p["A"] * jnp.exp(-p["alpha"] * log_n) + p["B"] * jnp.exp(-p["beta"] * log_d)


@register
class Additive(Law):
    name = "additive"
    title = "Additive law"
    reference = "Shukor et al. 2025, Scaling Laws for Optimal Data Mixtures, arXiv:2507.09404"
    formula = "E + 1/sum_j C_j h_j^gamma_j + A (N/N0)^-alpha + B (D/D0)^-beta"
    min_mixtures = 3

    def params(self, domains, targets):
        return {
            "E": Param(("target",), log_normal_around(1.5, 2.0, "irreducible loss: LLM validation losses sit at 1-4 nats"), "irreducible loss"),
            "w": Param(("target", "domain"), log_normal_around(0.3, 4.0, "each domain's share of 1/M at the uniform mixture; wide"), "mixture-term weight at the uniform mixture (C_j / K^gamma_j)"),
            "gamma": Param(("target", "domain"), log_normal_around(0.5, 2.0, "Shukor et al. report mixture exponents of order 0.1-1"), "mixture exponent"),
            "A": Param(("target",), log_normal_around(0.3, 3.0, "model-size term at the reference scale: a few tenths of a nat"), "model-size term at N0"),
            "alpha": Param(("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give alpha around 0.34"), "model-size exponent"),
            "B": Param(("target",), log_normal_around(0.3, 3.0, "token term at the reference scale: a few tenths of a nat"), "token term at D0"),
            "beta": Param(("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give beta around 0.28"), "token exponent"),
        }

    def mean(self, p, x: Inputs) -> jnp.ndarray:
        return p["E"] + mixture_term(p["w"], p["gamma"], x.h)[x.mix] + scale_terms(p, x)
