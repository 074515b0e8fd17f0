"""Capacity-competition law with a token exponent of its own (a departure from Dai & Zheng 2026).

    L_i(h, N, D) = C_i (K x_i*(h, N))^(-b_i) + A_i (K h_i)^(-a_i) (D / D0)^(-d_i) + E_i

Everything but the data term is :mod:`bayesmix.laws.capacity` (same
allocation x*, solver, coordinates, priors, zero-weight and foreign-target
conventions); with d_i = a_i it is that law.

Why depart. The paper's data term A_i (D h_i)^(-a_i) gives a domain's
tokens one exponent, whether they grow because the run is longer (D) or
because the domain's share is larger (h_i). Since the capacity term only
adds to the own-weight effect, the paper's law requires a domain's loss to
fall at least as fast in log h_i as in log D. On SlimPajama (runs up to
1.235B, checkpoints from 35% of each run) it falls 2.2 to 3.2 times faster in
log D for book, c4 and commoncrawl, 1.3 to 1.4 times for arxiv, github and
stackexchange, and about as fast for wikipedia (``python
benchmarks/mode_extrapolation.py --slopes``): other domains' tokens help too
(c4 and commoncrawl are both web text), which the paper's law can only express
through the capacity competition. (Part of the within-run slope in D is the
learning-rate schedule; every law here is fitted to checkpoints alike.) Fitted across model sizes and token counts, the paper's law then
settles for a compromise exponent and capacity exponents of 20-50 (see the
capacity law's docstring). A separate token exponent d_i is the smallest
change that removes the contradiction. At one token count d_i is not
identified (it is held by its prior and does not affect predictions there).

Measured on SlimPajama (``benchmarks/scale_extrapolation.py``, 4 chains,
seed 0, target_accept 0.95, 1000 + 2000 draws), fitted on runs up to 1.235B:
2.99% mean relative error at 2.718B (capacity law: 7.2%), but the posterior
has two modes and one of the four chains found the other one (R-hat 1.53, 2
divergences, 18 minutes). They differ in the floor H (0.004 against 0.0003
of N0) and in the capacity terms of arxiv (b 0.15 against 0.06) and
commoncrawl (b 4.0 against 2.7), agree on every target's level and token
exponent, and have about the same log joint density (per-chain medians
within 3 nats): two readings of the data, not a stray chain. An earlier run
(capacity levels then taken at N0 / K: the same law and, at H this small,
nearly the same prior) had all four chains in one mode, probably the second
(commoncrawl's b near 2.6): R-hat 1.003, 2.94%. So read a clean R-hat from
one run with care here and compare seeds; the held-out error hardly depends
on the mode. On the one-scale mixture split it matches the capacity law
(0.84%, 0 divergences, R-hat 1.005). SBC: ranks uniform for all 13
parameters of the small case (``benchmarks/sbc.py --laws capacity_tokens``,
min Bonferroni p 0.82).

Parameters: those of the capacity law plus one ``d`` per target
(6K + 1 = 43 for the 7 SlimPajama domains as targets; each target that is
not a training domain adds K + 6).
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
    reference = "Dai & Zheng 2026, arXiv:2606.08167 (data term split into weight and token exponents: a bayesmix departure)"
    formula = "C_i (K x_i*(h, N))^-b_i + A_i (K h_i)^-a_i (D/D0)^-d_i + E_i, x* as in the capacity law"

    def params(self, domains, targets) -> dict[str, Param]:
        spec = super().params(domains, targets)
        spec["a"] = Param(("target",), log_normal_around(0.3, 2.0, "own-weight exponents of data-mixing laws sit at 0.05-0.5"), "own-weight exponent of the data term")
        spec["d"] = Param(("target",), log_normal_around(0.3, 2.0, "Chinchilla's token exponent is about 0.28"), "token exponent of the data term")
        return spec

    def data_exponent(self, p: Mapping[str, jnp.ndarray], log_kh: jnp.ndarray, log_d: jnp.ndarray) -> jnp.ndarray:
        return p["a"] * log_kh + p["d"] * log_d
