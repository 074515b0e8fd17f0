"""Capacity-competition law (Dai & Zheng 2026, arXiv:2606.08167).

    L_i(h, N, D) = c_i x_i*(h, N)^(-b_i) + A_i (D h_i)^(-a_i) + E_i

x*(h, N) is the capacity the model gives each domain: the solution of

    minimise_x sum_j h_j c_j x_j^(-b_j)   s.t.   sum_j x_j = N + (K - 1) H,  x_j >= H,

solved by :mod:`bayesmix.laws.capacity_solver` (log-space multiplier,
bracketed and safeguarded, gradients by the implicit function theorem; it is
tested against scipy there, including the tiny-multiplier regime). The
capacity term couples every domain's loss to every weight; the data term
depends on a domain's own weight only.

Units and written form. Capacities are in units of the reference model size
N0 (the budget is N / N0 + (K - 1) H, so ``H`` is the floor as a fraction of
N0), and the terms are written relative to an even split of N0 and to the
uniform weight at D0:

    L_i = C_i (K x_i*)^(-b_i) + A_i (K h_i D / D0)^(-a_i) + E_i

so ``C_i`` is the capacity term when domain i gets N0 / K of capacity and
``A_i`` the data term at weight 1/K and D0 tokens -- both of the order of the
loss. The paper's c_i = C_i K^(-b_i) (with x in units of N0); since x* only
depends on the ratios of the h_j b_j c_j, this is the c the solver receives.

Parameters. b_j and C_j belong to every training DOMAIN (the allocation needs
all of them, whether or not that domain is a target), A_i, a_i, E_i to every
target, and one global floor H: 2K + 3T + 1 (5K + 1 when every domain is a
target: 36 for the 7 SlimPajama domains). Each target that is not a training
domain adds its own capacity pair (b_f, C_f) and K simplex weights pi_f
(K - 1 free): 2K + 3T + 1 + (K + 2) F in all. Because b and C are shared by
all targets, the targets are fitted as one NUTS block.

Priors (all positive parameters log-normal; reasons in each ``Param``):

- ``b`` ~ median 0.3, x/÷2: Chinchilla's model-size exponent is ~0.34 and the
  capacity term is a model-size law per domain;
- ``C`` ~ median 0.5 nats, x/÷3: Chinchilla's A N^-alpha is a few tenths of a
  nat at 0.5B; one K-th of the model is a smaller model, so somewhat more;
- ``A`` ~ median 0.3 nats, x/÷3 and ``a`` ~ median 0.3, x/÷2: Chinchilla's
  token term (B D^-beta ~ 0.3 E, beta ~ 0.28);
- ``E`` ~ median 1.5 nats, x/÷2: irreducible losses of LLM validation sets;
- ``H`` ~ median 0.01, x/÷5 (as a fraction of N0): the floor is a small
  fraction of a model; it only matters for domains with small weights, so
  where no domain is starved it is held by its prior.

Targets that are not training domains (e.g. ``openhermes``): the target is
read as a skill drawing on the domains in proportions pi_f ~ Dirichlet(1)
(learned). Its capacity is the capacity the model gives those domains,
x_f = sum_j pi_f,j x_j*, and its data share h_f = sum_j pi_f,j h_j
(``base.own_weight``, the own-weight law's convention); it has its own
(b_f, C_f, A_f, a_f, E_f). It takes no part in the allocation (no run
trains on it).

Zero weights. A domain with h_j = 0 gets the floor capacity H (the solver's
exact answer: it has no pull on the budget), so its capacity term is the
large but finite C_j (K H)^(-b_j): no floor is needed there. The data term
(D h_i)^(-a_i) is infinite at h_i = 0, so h_i is floored at ``H_FLOOR``
(0.1%) in that term only, as in the own-weight law. A prediction for a target
whose own domain has weight 0 is the law at floor capacity and a 0.1% data
share: read it as "much worse", not as a number, unless the fitted sweep had
such zeros.
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp

from ..priors import Prior, log_normal_around
from .base import H_FLOOR, Inputs, Law, Param, own_weight
from .capacity_solver import log_capacity_allocation
from .registry import register


def log_capacity(p: Mapping[str, jnp.ndarray], h: jnp.ndarray, n: jnp.ndarray) -> jnp.ndarray:
    """(n, K) log x*, capacities in units of N0, for rows with mixtures ``h`` (n, K) and model sizes ``n`` = N / N0 (n,)."""
    K = h.shape[-1]
    c = p["C"] * jnp.exp(-p["b"] * jnp.log(K))  # the paper's c_j for x in units of N0
    return log_capacity_allocation(h, p["b"], c, p["H"], n)


@register
class Capacity(Law):
    name = "capacity"
    title = "Capacity-competition law"
    reference = "Dai & Zheng 2026, arXiv:2606.08167"
    formula = "C_i (K x_i*(h, N))^-b_i + A_i (K h_i D/D0)^-a_i + E_i, x* = argmin sum_j h_j c_j x_j^-b_j s.t. sum x = N + (K-1)H, x >= H"
    min_mixtures = 3

    def params(self, domains, targets) -> dict[str, Param]:
        spec = {
            "b": Param(("domain",), log_normal_around(0.3, 2.0, "a model-size exponent per domain: Chinchilla's alpha is about 0.34"), "capacity exponent of each domain"),
            "C": Param(("domain",), log_normal_around(0.5, 3.0, "capacity term at N0/K of capacity: Chinchilla's A N^-alpha is a few tenths of a nat at 0.5B, more for a K-th of a model"),
                       "capacity term of each domain at x = N0 / K"),
            "H": Param((), log_normal_around(0.01, 5.0, "floor capacity as a fraction of N0: a small share of a model; matters only for starved domains"), "floor capacity, in units of N0"),
            "A": Param(("target",), log_normal_around(0.3, 3.0, "Chinchilla's token term B D^-beta is about 0.3 E at 20B tokens"), "data term at own weight 1/K and D0"),
            "a": Param(("target",), log_normal_around(0.3, 2.0, "Chinchilla's token exponent is about 0.28"), "data exponent"),
            "E": Param(("target",), log_normal_around(1.5, 2.0, "irreducible loss: LLM validation losses sit at 1-4 nats"), "irreducible loss"),
        }
        if any(t not in domains for t in targets):
            spec.update({
                "b_f": Param(("foreign",), log_normal_around(0.3, 2.0, "as b"), "capacity exponent of a foreign target"),
                "C_f": Param(("foreign",), log_normal_around(0.5, 3.0, "as C"), "capacity term of a foreign target at x_f = N0 / K"),
                "pi": Param(("foreign", "domain"), Prior("Dirichlet", {"concentration": 1.0}, "flat over the simplex"),
                            "how much a foreign target draws on each domain's capacity and data"),
            })
        return spec

    def mean(self, p: Mapping[str, jnp.ndarray], x: Inputs) -> jnp.ndarray:
        K = x.h.shape[-1]
        h_rows = x.h_rows  # (n, K): the allocation depends on (h, N), so it is solved per row
        log_x = log_capacity(p, h_rows, x.N / x.N0)  # (n, K)
        own = jnp.clip(x.own, 0)
        # Capacity term of each domain target: C_i (K x_i*)^-b_i.
        cap = p["C"][own] * jnp.exp(-p["b"][own] * (jnp.log(K) + log_x[:, own]))  # (n, T)
        if "pi" in p and p["pi"].shape[0] > 0:
            # Foreign targets: capacity x_f = sum_j pi_j x_j*, with their own (b_f, C_f).
            log_xf = jnp.log(jnp.exp(log_x) @ p["pi"].T)  # (n, F), positive: x* >= H > 0
            cap_f = p["C_f"] * jnp.exp(-p["b_f"] * (jnp.log(K) + log_xf))
            row = jnp.clip(jnp.cumsum(x.own < 0) - 1, 0)  # target -> foreign index
            cap = jnp.where(x.own[None, :] >= 0, cap, cap_f[:, row])
        h_own = jnp.maximum(own_weight(x.h, x.own, p.get("pi")), H_FLOOR)[x.mix]  # (n, T), floored (data term only)
        log_d = jnp.log(x.D / x.D0)[:, None]
        data = p["A"] * jnp.exp(-p["a"] * (jnp.log(K * h_own) + log_d))
        return cap + data + p["E"]
