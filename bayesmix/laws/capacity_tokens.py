"""Capacity-competition law with a token exponent of its own (a departure from Dai & Zheng 2026, arXiv:2606.08167).

    L_i(h, N, D) = C_i (K x_i*(h, N))^(-b_i) + A_i (K h_i)^(-a_i) (D / D0)^(-d_i) + E_i

Everything but the data term is :mod:`bayesmix.laws.capacity` (same allocation x*, solver, coordinates, priors,
zero-weight and foreign-target conventions); with d_i = a_i it is that law. The paper's data term A_i (D h_i)^(-a_i)
gives a domain's tokens one exponent, whether they come from a longer run (D) or a larger share (h_i); on SlimPajama
most domains' losses fall faster in log D than in log h_i, which that law cannot fit across scales. A separate token
exponent d_i is the smallest change that removes the contradiction. At one token count d_i is not identified (it is
held by its prior and does not affect predictions there).

Parameters: those of the capacity law plus one ``d`` per target (6K + 1 = 43 for the 7 SlimPajama domains as
targets; each target that is not a training domain adds K + 6). Sampled in the capacity law's coordinates plus ``d``.

Priors: the capacity law's, with ``a`` ~ median 0.3, x/÷2 (own-weight exponents of data-mixing laws sit at 0.05-0.5)
and ``d`` ~ median 0.3, x/÷2 (Chinchilla's token exponent is about 0.28).

Across scales the posterior has two modes (they differ in the floor H): compare seeds rather than trust one clean
R-hat.

Measurements behind these choices: docs/laws/capacity_tokens.md
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp

from ..priors import log_normal_around
from .base import Param
from .capacity import Capacity
from .registry import register


@register
class CapacityTokens(Capacity):
    name = "capacity_tokens"
    revision = 2  # 1 took the capacity levels at N0 / K (the capacity law's revision 2)
    title = "Capacity-competition law, separate token exponent"
    reference = (
        "Dai & Zheng 2026, arXiv:2606.08167 (data term split into weight and token exponents: a bayesmix departure)"
    )
    formula = "C_i (K x_i*(h, N))^-b_i + A_i (K h_i)^-a_i (D/D0)^-d_i + E_i, x* as in the capacity law"

    def params(self, domains, targets) -> dict[str, Param]:
        spec = super().params(domains, targets)
        spec["a"] = Param(
            ("target",),
            log_normal_around(0.3, 2.0, "own-weight exponents of data-mixing laws sit at 0.05-0.5"),
            "own-weight exponent of the data term",
        )
        spec["d"] = Param(
            ("target",),
            log_normal_around(0.3, 2.0, "Chinchilla's token exponent is about 0.28"),
            "token exponent of the data term",
        )
        return spec

    def data_exponent(self, p: Mapping[str, jnp.ndarray], log_kh: jnp.ndarray, log_d: jnp.ndarray) -> jnp.ndarray:
        return p["a"] * log_kh + p["d"] * log_d
