"""Sampler diagnostics, and plain-words warnings with what to try."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

log = logging.getLogger("bayesmix")

RHAT_MAX = 1.01
ESS_MIN = 400  # bulk and tail, summed over chains (Vehtari et al. 2021)
PRIOR_RATIO = 0.9  # posterior sd above this share of the prior sd: the data say little


class FitWarning(UserWarning):
    """A fit whose draws should not be trusted as they are."""


@dataclass
class Diagnostics:
    """What the sampler did, and whether its draws can be trusted."""

    divergences: int
    draws: int
    max_tree_depth_hits: int
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    worst_rhat: list[str] = field(default_factory=list)
    worst_ess: list[str] = field(default_factory=list)
    prior_dominated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_dict(self) -> dict:
        """Plain-JSON form (saved with the model)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Diagnostics":
        """Inverse of :meth:`to_dict`."""
        return cls(**d)

    def __str__(self) -> str:
        head = (
            f"{self.divergences} divergences in {self.draws} draws; max R-hat {self.max_rhat:.3f}; "
            f"min ESS bulk {self.min_ess_bulk:.0f}, tail {self.min_ess_tail:.0f}; "
            f"{self.max_tree_depth_hits} draws at maximum tree depth"
        )
        return head if self.ok else head + "\n" + "\n".join(f"- {p}" for p in self.problems)


def split_rhat_ess(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat, bulk and tail ESS of (chains, draws, P) scalars, via arviz-stats."""
    from arviz_stats.base import array_stats

    rhat = array_stats.rhat(x, chain_axis=0, draw_axis=1, method="rank")
    bulk = array_stats.ess(x, chain_axis=0, draw_axis=1, method="bulk")
    tail = array_stats.ess(x, chain_axis=0, draw_axis=1, method="tail", prob=0.05)
    return np.atleast_1d(rhat), np.atleast_1d(bulk), np.atleast_1d(tail)


def scalar_names(name: str, shape: tuple[int, ...], coords: list[list[str]]) -> list[str]:
    """Readable labels ``E[c4]``, ``gamma[c4, book]`` for each element of a parameter block."""
    if not shape:
        return [name]

    def label(i: int, j: int) -> str:
        # a dimension without coordinate labels (e.g. a sampler-internal block) falls back to its index
        return coords[i][j] if i < len(coords) and j < len(coords[i]) else str(j)

    return [f"{name}[{', '.join(label(i, j) for i, j in enumerate(idx))}]" for idx in np.ndindex(*shape)]


def diagnose(
    draws: dict[str, np.ndarray],
    extra: dict[str, np.ndarray],
    coords: dict[str, list[list[str]]],
    max_tree_depth: int,
    prior_sd: dict[str, np.ndarray] | None = None,
) -> Diagnostics:
    """Check R-hat, ESS, divergences, tree depth and prior domination of every scalar.

    ``draws`` are by site with leading (chain, draw) axes; ``coords`` gives the
    labels of each site's dimensions; ``prior_sd`` (same shapes as one draw)
    enables the prior-domination check.
    """
    rows = []
    for name, x in draws.items():
        shape = x.shape[2:]
        flat = x.reshape(x.shape[:2] + (-1,))
        labels = scalar_names(name, shape, coords.get(name, []))
        # A scalar the fit fixed (every draw equal, e.g. an unidentified
        # tau_run set to 0) was not sampled: nothing to diagnose.
        fixed = np.all(flat == flat[:1, :1], axis=(0, 1))
        n = float(flat.shape[0] * flat.shape[1])
        r, b, t = np.ones(fixed.shape), np.full(fixed.shape, n), np.full(fixed.shape, n)
        if not fixed.all():
            r[~fixed], b[~fixed], t[~fixed] = split_rhat_ess(flat[..., ~fixed])
        rows += list(zip(labels, r, b, t))
    rhat = np.array([r[1] for r in rows])
    bulk = np.array([r[2] for r in rows])
    tail = np.array([r[3] for r in rows])
    rhat = np.where(np.isfinite(rhat), rhat, np.inf)
    div = int(np.sum(extra.get("diverging", 0)))
    n_draws = int(np.prod(next(iter(draws.values())).shape[:2]))
    depth_hits = int(np.sum(extra.get("num_steps", np.zeros(1)) >= 2**max_tree_depth - 1))

    order_r = np.argsort(-rhat)[:5]
    order_e = np.argsort(np.minimum(bulk, tail))[:5]
    prior_dom = []
    if prior_sd:
        for name, sd in prior_sd.items():
            if name not in draws:
                continue
            post = draws[name].reshape((-1,) + draws[name].shape[2:]).std(0)
            ratio = post / np.maximum(sd, 1e-300)
            labels = scalar_names(name, ratio.shape, coords.get(name, []))
            prior_dom += [lab for lab, q in zip(labels, np.ravel(ratio)) if q > PRIOR_RATIO]

    d = Diagnostics(
        divergences=div,
        draws=n_draws,
        max_tree_depth_hits=depth_hits,
        max_rhat=float(rhat.max()),
        min_ess_bulk=float(bulk.min()),
        min_ess_tail=float(tail.min()),
        worst_rhat=[f"{rows[i][0]} ({rows[i][1]:.3f})" for i in order_r],
        worst_ess=[f"{rows[i][0]} ({min(rows[i][2], rows[i][3]):.0f})" for i in order_e],
        prior_dominated=prior_dom,
    )
    if div:
        d.problems.append(
            f"{div} divergent transitions ({100 * div / n_draws:.1f}% of draws): the posterior has regions NUTS cannot "
            "follow, so the draws may be biased. By default a diverging block was already resampled at "
            "target_accept=0.99 and kept where that helped (the fit's notes say which); try more warm-up, or tighter "
            f"priors on the parameters with the worst R-hat ({', '.join(d.worst_rhat[:3])})."
        )
    if d.max_rhat > RHAT_MAX:
        d.problems.append(
            f"R-hat up to {d.max_rhat:.3f} (above {RHAT_MAX}): the chains disagree, worst for "
            f"{', '.join(d.worst_rhat[:3])}. Try more warm-up and draws, or tighter priors on those parameters; if "
            "chains sit in different modes, the law may not be identified by this sweep."
        )
    if min(d.min_ess_bulk, d.min_ess_tail) < ESS_MIN:
        d.problems.append(
            f"effective sample size down to {min(d.min_ess_bulk, d.min_ess_tail):.0f} (below {ESS_MIN}) for "
            f"{', '.join(d.worst_ess[:3])}: intervals from these draws are noisy. Run more draws."
        )
    if depth_hits > 0.05 * n_draws:
        d.problems.append(
            f"{depth_hits} draws hit the maximum tree depth ({max_tree_depth}): sampling is slow and may be "
            "incomplete. Try max_tree_depth=12, or priors that make the ridge between correlated parameters less flat."
        )
    if prior_dom:
        shown = ", ".join(prior_dom[:6]) + (f" and {len(prior_dom) - 6} more" if len(prior_dom) > 6 else "")
        d.problems.append(
            f"the data barely inform {shown}: their posterior is about as wide as their prior, so what you see there "
            "is the prior. Runs that vary these parameters' domains (or sizes/tokens) would inform them; otherwise "
            "read their intervals as assumptions."
        )
    return d


def report(d: Diagnostics, what: str = "fit") -> None:
    """Emit a FitWarning per problem (visible in notebooks and on the command line)."""
    for p in d.problems:
        warnings.warn(f"{what}: {p}", FitWarning, stacklevel=3)
    if d.ok:
        log.info("%s: %s", what, d)
