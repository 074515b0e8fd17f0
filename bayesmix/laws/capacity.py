"""Capacity-competition law (Dai & Zheng 2026, arXiv:2606.08167).

    L_i(h, N, D) = c_i x_i*(h, N)^(-b_i) + A_i (D h_i)^(-a_i) + E_i

x*(h, N) is the capacity the model gives each domain: the solution of

    minimise_x sum_j h_j c_j x_j^(-b_j)   s.t.   sum_j x_j = N + (K - 1) H,  x_j >= H,

solved by :mod:`bayesmix.laws.capacity_solver`. The capacity term couples every domain's loss to every weight; the
data term depends on a domain's own weight only. Capacities are in units of N0 (``H`` is the floor as a fraction of
N0) and the terms are written relative to an even split of N0 and to the uniform weight at D0:

    L_i = C_i (K x_i*)^(-b_i) + A_i (K h_i D / D0)^(-a_i) + E_i,    c_i = C_i K^(-b_i)

Parameters: b_j and C_j for every training DOMAIN (the allocation needs all of them, whether or not that domain is a
target), A_i, a_i, E_i for every target, and one global floor H: 2K + 3T + 1 (5K + 1 when every domain is a target:
36 for the 7 SlimPajama domains). Each target that is not a training domain adds its own capacity pair (b_f, C_f)
and K simplex weights pi_f (K - 1 free): 2K + 3T + 1 + (K + 2) F in all. Because b and C are shared by all targets,
the targets are fitted as one NUTS block.

Sampled coordinates (a level and ratios; capacity levels at x_ref = (1 + (K - 1) H) / K, an even split of the
reference model's budget, :func:`reference_capacity`):

- per target ``L_ref`` = E + C_own (at x_ref) + A: its loss at x_ref, own weight 1/K and D0; ``A_rel`` = A / E; ``a``;
- per domain ``C_rel`` = C (x_ref / (N0 / K))^-b / E of the target that domain is (C in nats for a domain that is no
  target): its capacity term at x_ref in units of E; ``b``;
- ``H``; and, for a foreign target, ``b_f``, ``C_f_rel`` (its capacity term at x_f = x_ref over its E) and ``pi``.

E = L_ref / (1 + C_rel_own + A_rel); the law's numbers come from :func:`natural_scales` / :func:`paper_parameters`
(:func:`from_paper_parameters` goes the other way).

Priors (median, spread at one sd): ``L_ref`` 2.5 nats x/÷2; ``A_rel`` 0.2 x/÷3 and ``a`` 0.3 x/÷2 (Chinchilla's
token term and exponent); ``C_rel`` 0.3 x/÷3 and ``b`` 0.3 x/÷2 (a model-size law per domain); ``H`` 0.01 of N0,
x/÷5 (held by its prior where no domain is starved); ``pi`` flat Dirichlet(1). Sampled at ``target_accept`` 0.95.

Foreign targets (e.g. ``openhermes``) draw on the domains in proportions pi_f: capacity x_f = sum_j pi_f,j x_j* and
data share h_f = sum_j pi_f,j h_j (``base.own_weight``); they take no part in the allocation. Zero weights: a domain
with h_j = 0 gets the floor capacity H (the solver's exact answer); the data term floors h_i at ``H_FLOOR`` (0.1%).

Known limitation: across model sizes and token counts this law does not fit real sweeps (its data term gives a
domain's tokens one exponent, whether they come from D or from h_i); :mod:`bayesmix.laws.capacity_tokens` does. At
one scale (the paper's own setting) it fits.

Measurements behind these choices: docs/laws/capacity.md
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp
import numpy as np

from ..priors import Prior, log_normal_around
from .base import H_FLOOR, Inputs, Law, Param, own_weight
from .capacity_solver import log_capacity_allocation
from .registry import register


def natural_scales(p: Mapping[str, jnp.ndarray], own: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """The law's E, A (per target), C (per domain) and C_f (per foreign target) from the sampled level and ratios.

    Works on one draw or stacked draws (leading axes). Each target's
    E = F = L_ref / (1 + C_rel[own] + A_rel) and A = F A_rel; a domain's
    C = C_rel (K x_ref)^b times the E of the target that domain is (times
    1 nat for a domain that is no target); a foreign target's
    C_f = F C_f_rel (K x_ref)^b_f. C_rel is the term at x_ref, C at N0 / K.
    """
    own = jnp.asarray(own)
    K = p["C_rel"].shape[-1]
    is_dom = own >= 0
    row = jnp.clip(jnp.cumsum(~is_dom) - 1, 0)  # target -> foreign index
    c_own = jnp.take(p["C_rel"], jnp.clip(own, 0), axis=-1)
    if "C_f_rel" in p and p["C_f_rel"].shape[-1] > 0:
        c_own = jnp.where(is_dom, c_own, jnp.take(p["C_f_rel"], row, axis=-1))
    F = p["L_ref"] / (1 + c_own + p["A_rel"])
    # The E of the target each domain is, or 1 nat: the unit of that domain's C_rel.
    slot = jnp.where(is_dom, own, K)  # foreign targets write to a dropped slot
    unit = jnp.ones(F.shape[:-1] + (K + 1,)).at[..., slot].set(F)[..., :K]
    # C_rel is the term at an even split of N0's budget; C the term at N0 / K.
    log_kx = jnp.log(reference_capacity(p["H"], K) * K)[..., None]
    out = {"E": F, "A": F * p["A_rel"], "C": unit * p["C_rel"] * jnp.exp(p["b"] * log_kx)}
    if "C_f_rel" in p and p["C_f_rel"].shape[-1] > 0:
        foreign = jnp.nonzero(~is_dom, size=p["C_f_rel"].shape[-1])[0]
        out["C_f"] = jnp.take(F, foreign, axis=-1) * p["C_f_rel"] * jnp.exp(p["b_f"] * log_kx)
    return out


def reference_capacity(H, K: int):
    """x_ref = (1 + (K - 1) H) / K: each domain's capacity, in units of N0, at an even split of the reference
    model's budget."""
    return (1 + (K - 1) * H) / K


def paper_parameters(p: Mapping[str, np.ndarray], own) -> dict[str, np.ndarray]:
    """b, C, H, A, a, E (and b_f, C_f, pi for foreign targets) from sampled coordinates (one draw or stacked draws)."""
    q = {k: np.asarray(v) for k, v in natural_scales({k: jnp.asarray(v) for k, v in p.items()}, own).items()}
    out = {
        "b": np.asarray(p["b"]),
        "C": q["C"],
        "H": np.asarray(p["H"]),
        "A": q["A"],
        "a": np.asarray(p["a"]),
        "E": q["E"],
    }
    if "C_f" in q:
        out.update(b_f=np.asarray(p["b_f"]), C_f=q["C_f"], pi=np.asarray(p["pi"]))
    return out


def from_paper_parameters(b, C, H, A, a, E, own, b_f=None, C_f=None, pi=None) -> dict[str, np.ndarray]:
    """Sampled coordinates from the law's numbers: b, C (K,), H, A, a, E (T,), each target's own domain (-1: none),
    and b_f, C_f, pi for foreign targets."""
    own = np.asarray(own)
    C, A, E = (np.asarray(v, float) for v in (C, A, E))
    unit = np.ones(len(C))
    unit[own[own >= 0]] = E[own >= 0]
    kx = reference_capacity(float(H), len(C)) * len(C)
    C = C * kx ** -np.asarray(b, float)  # the term at x_ref (the sampled level), not at N0 / K
    out = {
        "b": np.asarray(b, float),
        "C_rel": C / unit,
        "H": np.asarray(H, float),
        "A_rel": A / E,
        "a": np.asarray(a, float),
    }
    c_own = np.where(own >= 0, C[np.clip(own, 0, None)], 0.0)
    if C_f is not None:
        C_f = np.asarray(C_f, float) * kx ** -np.asarray(b_f, float)
        c_own[own < 0] = C_f
        out.update(b_f=np.asarray(b_f, float), C_f_rel=C_f / E[own < 0], pi=np.asarray(pi, float))
    out["L_ref"] = E + c_own + A
    return out


def log_capacity(p: Mapping[str, jnp.ndarray], h: jnp.ndarray, n: jnp.ndarray) -> jnp.ndarray:
    """(n, K) log x*, capacities in units of N0, for rows with mixtures ``h`` (n, K) and model sizes
    ``n`` = N / N0 (n,).

    ``p`` holds the law's natural numbers ``b``, ``C`` (see :func:`natural_scales`) and ``H``.
    """
    K = h.shape[-1]
    c = p["C"] * jnp.exp(-p["b"] * jnp.log(K))  # the paper's c_j for x in units of N0
    return log_capacity_allocation(h, p["b"], c, p["H"], n)


@register
class Capacity(Law):
    name = "capacity"
    revision = 3  # 1 sampled E, A, C on their own log scales; 2 took the levels at N0 / K
    title = "Capacity-competition law"
    reference = "Dai & Zheng 2026, arXiv:2606.08167"
    formula = (
        "C_i (K x_i*(h, N))^-b_i + A_i (K h_i D/D0)^-a_i + E_i, x* = argmin sum_j h_j c_j x_j^-b_j s.t. sum x = N + "
        "(K-1)H, x >= H"
    )
    min_mixtures = 3
    target_accept = 0.95  # at 0.9 one of five seeds diverged on the one-scale SlimPajama split (docs/laws/capacity.md)

    def params(self, domains, targets) -> dict[str, Param]:
        spec = {
            "b": Param(
                ("domain",),
                log_normal_around(0.3, 2.0, "a model-size exponent per domain: Chinchilla's alpha is about 0.34"),
                "capacity exponent of each domain",
            ),
            "C_rel": Param(
                ("domain",),
                log_normal_around(
                    0.3,
                    3.0,
                    "capacity term at an even split of N0's budget: Chinchilla's A N^-alpha is about 0.26 E at 0.5B, "
                    "more for a K-th of a model",
                ),
                "capacity term of each domain at x_ref (an even split of N0's budget), as a multiple of that domain's "
                "E (in nats for a domain that is no target)",
            ),
            "H": Param(
                (),
                log_normal_around(
                    0.01,
                    5.0,
                    "floor capacity as a fraction of N0: a small share of a model; matters only for starved domains",
                ),
                "floor capacity, in units of N0",
            ),
            "L_ref": Param(
                ("target",),
                log_normal_around(2.5, 2.0, "LLM validation losses at 0.1-1B parameters sit at 1.5-4 nats"),
                "E + C + A: the loss at an even split of N0's budget, own weight 1/K and D0",
            ),
            "A_rel": Param(
                ("target",),
                log_normal_around(0.2, 3.0, "Chinchilla's token term B D^-beta is about 0.3 E at 20B tokens"),
                "data term at own weight 1/K and D0, as a multiple of E",
            ),
            "a": Param(
                ("target",), log_normal_around(0.3, 2.0, "Chinchilla's token exponent is about 0.28"), "data exponent"
            ),
        }
        if any(t not in domains for t in targets):
            spec.update(
                {
                    "b_f": Param(
                        ("foreign",), log_normal_around(0.3, 2.0, "as b"), "capacity exponent of a foreign target"
                    ),
                    "C_f_rel": Param(
                        ("foreign",),
                        log_normal_around(0.3, 3.0, "as C_rel"),
                        "capacity term of a foreign target at x_f = x_ref, as a multiple of its E",
                    ),
                    "pi": Param(
                        ("foreign", "domain"),
                        Prior("Dirichlet", {"concentration": 1.0}, "flat over the simplex"),
                        "how much a foreign target draws on each domain's capacity and data",
                    ),
                }
            )
        return spec

    def mean(self, p: Mapping[str, jnp.ndarray], x: Inputs) -> jnp.ndarray:
        K = x.h.shape[-1]
        q = {**p, **natural_scales(p, x.own)}  # E, A, C, C_f from the level and ratios
        h_cell, N_cell, cell = x.cells()  # the allocation depends on (h, N) only: solved once per cell
        log_x = log_capacity(q, h_cell, N_cell / x.N0)[cell]  # (n, K)
        own = jnp.clip(x.own, 0)
        # Capacity term of each domain target: C_i (K x_i*)^-b_i.
        cap = q["C"][own] * jnp.exp(-p["b"][own] * (jnp.log(K) + log_x[:, own]))  # (n, T)
        if "pi" in p and p["pi"].shape[0] > 0:
            # Foreign targets: capacity x_f = sum_j pi_j x_j*, with their own (b_f, C_f).
            log_xf = jnp.log(jnp.exp(log_x) @ p["pi"].T)  # (n, F), positive: x* >= H > 0
            cap_f = q["C_f"] * jnp.exp(-p["b_f"] * (jnp.log(K) + log_xf))
            row = jnp.clip(jnp.cumsum(x.own < 0) - 1, 0)  # target -> foreign index
            cap = jnp.where(x.own[None, :] >= 0, cap, cap_f[:, row])
        h_own = jnp.maximum(own_weight(x.h, x.own, p.get("pi")), H_FLOOR)[x.mix]  # (n, T), floored (data term only)
        log_d = jnp.log(x.D / x.D0)[:, None]
        return cap + q["A"] * jnp.exp(-self.data_exponent(p, jnp.log(K * h_own), log_d)) + q["E"]

    def data_exponent(self, p: Mapping[str, jnp.ndarray], log_kh: jnp.ndarray, log_d: jnp.ndarray) -> jnp.ndarray:
        """-log of the data term over A: a (log K h_i + log D/D0), one exponent for the domain's tokens D h_i."""
        return p["a"] * (log_kh + log_d)
