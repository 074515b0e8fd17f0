"""What a law is: a mean function of (params, h, N, D) beside its priors.

A law never sees the sampler, the likelihood or the file format. It declares
its parameters (name, dimensions, default prior, one line of meaning) and
computes the expected loss of every target for a batch of rows. Everything
else -- noise, discrepancy, NUTS, prediction, saving -- is shared code that
never asks which law it is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping, NamedTuple, Sequence

import jax.numpy as jnp

from ..priors import Prior

# Dimension names a parameter may carry. "foreign" runs over the targets that
# are not training domains (e.g. a downstream evaluation set).
DIMS = ("target", "domain", "foreign", "basis")
# The checkpoint curve's pieces (bayesmix.schedule): log(1/f), 1/f - 1, 1/f^2 - 1.
SCHEDULE_BASIS = ("log", "inverse", "inverse_square")


class Inputs(NamedTuple):
    """A batch of rows as a law sees it (a JAX pytree).

    Mixture terms are costly and most laws evaluate them per distinct mixture,
    so mixtures come once each in ``h`` and rows point to them through ``mix``.
    """

    h: jnp.ndarray  # (M, K) distinct mixtures
    mix: jnp.ndarray  # (n,) int: row -> mixture
    N: jnp.ndarray  # (n,) model parameters
    D: jnp.ndarray  # (n,) training tokens
    N0: jnp.ndarray  # () reference model size (power laws are written relative to it)
    D0: jnp.ndarray  # () reference token count
    own: jnp.ndarray  # (T,) int: index of the target's own domain, -1 if it has none
    # Optional: distinct (mixture, model size) cells. Checkpoints of one run
    # share both, so a term of (h, N) alone -- such as the capacity allocation,
    # a nested solve -- is computed once per cell instead of once per row (ten
    # times fewer on SlimPajama). None: every row is its own cell.
    cell: jnp.ndarray | None = None  # (n,) int: row -> cell
    cell_mix: jnp.ndarray | None = None  # (C,) int: cell -> mixture
    cell_N: jnp.ndarray | None = None  # (C,) model size of each cell

    @property
    def h_rows(self) -> jnp.ndarray:
        """(n, K) the mixture of every row."""
        return self.h[self.mix]

    def cells(self) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        """(h (C, K), N (C,), row -> cell (n,)): the distinct (mixture, model size) pairs and where each row points."""
        if self.cell is None:
            return self.h_rows, self.N, jnp.arange(self.N.shape[0])
        return self.h[self.cell_mix], self.cell_N, self.cell

    def head(self, rows: int) -> "Inputs":
        """The first ``rows`` rows (cells and mixtures kept whole, so row indices stay valid)."""
        cut = self._replace(mix=self.mix[:rows], N=self.N[:rows], D=self.D[:rows])
        return cut if self.cell is None else cut._replace(cell=self.cell[:rows])


@dataclass(frozen=True)
class Param:
    """One parameter block of a law: its dimensions, default prior and meaning.

    ``scaled_by``: for a parameter whose effect on the loss is its product with another of the law's terms
    (a function of the other parameters, broadcastable to this one's shape, > 0), NUTS samples that product
    instead, with the same Normal prior on the parameter (``model.sampled_by_scale``). Where the data pin the
    product, the parameter and the term trade along a curve that the product straightens.
    """

    dims: tuple[str, ...]
    prior: Prior
    doc: str
    scaled_by: Callable[[Mapping[str, jnp.ndarray]], jnp.ndarray] | None = None


class Law:
    """Base class. Subclasses set the class attributes and implement two methods."""

    name: ClassVar[str]  # registry key, used on the command line
    title: ClassVar[str]  # human name
    reference: ClassVar[str]  # paper
    formula: ClassVar[str]  # one line, for summaries and the README
    min_mixtures: ClassVar[int] = 2  # distinct mixtures the law needs to be identified
    # Distinct model sizes and token counts the law needs to be identified, and
    # why (shown in the error): a law whose mixture acts through its scale terms
    # cannot be told apart from its mixture term at one scale.
    min_scales: ClassVar[int] = 1
    why_scales: ClassVar[str] = ""
    # Bump when the sampled coordinates change meaning without changing their
    # names or shapes: saved draws of another revision would be read wrongly.
    revision: ClassVar[int] = 1
    # NUTS target acceptance a fit uses unless told: a law whose posterior
    # needs smaller steps than most (measured on real sweeps) raises it.
    target_accept: ClassVar[float] = 0.9

    def params(self, domains: Sequence[str], targets: Sequence[str]) -> dict[str, Param]:
        """Parameter blocks with default priors, for this table's domains and targets."""
        raise NotImplementedError

    def mean(self, p: Mapping[str, jnp.ndarray], x: Inputs) -> jnp.ndarray:
        """Expected loss, shape (n, T), strictly positive for any parameters in the support."""
        raise NotImplementedError

    def n_params(self, domains: Sequence[str], targets: Sequence[str]) -> int:
        """Number of scalar law parameters (noise and discrepancy not counted)."""
        sizes = dims_sizes(domains, targets)
        total = 0
        for spec in self.params(domains, targets).values():
            n = 1
            for d in spec.dims:
                n *= sizes[d]
            total += n
        return total


def dims_sizes(domains: Sequence[str], targets: Sequence[str]) -> dict[str, int]:
    """Length of each named dimension for a table."""
    foreign = [t for t in targets if t not in domains]
    return {"target": len(targets), "domain": len(domains), "foreign": len(foreign), "basis": len(SCHEDULE_BASIS)}


def dims_coords(domains: Sequence[str], targets: Sequence[str]) -> dict[str, list[str]]:
    """Coordinate labels of each named dimension (for ArviZ)."""
    return {
        "target": list(targets),
        "domain": list(domains),
        "foreign": [t for t in targets if t not in domains],
        "basis": list(SCHEDULE_BASIS),
    }


def own_index(domains: Sequence[str], targets: Sequence[str]) -> list[int]:
    """For each target, the index of the domain of the same name, or -1."""
    return [list(domains).index(t) if t in domains else -1 for t in targets]


# Zero weights: a domain absent from a mixture (weight exactly 0) makes terms
# such as h**-a infinite. Laws that need log(h) use safe_log and mask the term
# themselves; laws that need a finite h**-a floor the weight at H_FLOOR and say
# so in their docstring.
H_FLOOR = 1e-3


def safe_log(h: jnp.ndarray) -> jnp.ndarray:
    """log(h) where h > 0 and 0 elsewhere, with finite gradients everywhere.

    Callers must mask the h == 0 entries; the point is that the unused branch
    of a jnp.where never produces a NaN gradient.
    """
    return jnp.log(jnp.where(h > 0, h, 1.0))


def own_weight(h: jnp.ndarray, own: jnp.ndarray, foreign_mix: jnp.ndarray | None = None) -> jnp.ndarray:
    """(M, T) the weight each target's own domain has in each mixture.

    Targets without a domain of their own (``own == -1``) get ``h @ foreign_mix``
    instead: a learned convex combination of the domains (``foreign_mix`` is
    (F, K), rows on the simplex, one per foreign target in target order).
    """
    own_h = h[:, jnp.clip(own, 0)]  # (M, T)
    if foreign_mix is None or foreign_mix.shape[0] == 0:
        return own_h
    foreign_rows = jnp.cumsum(own < 0) - 1  # target -> row of foreign_mix
    foreign_h = h @ foreign_mix.T  # (M, F)
    return jnp.where(own[None, :] >= 0, own_h, foreign_h[:, jnp.clip(foreign_rows, 0)])
