"""The validated run table: :class:`RunTable`, what every reader returns."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import RunTableError

__all__ = ["RunTable"]

log = logging.getLogger("bayesmix")

# A checkpoint at less than this share of its run's schedule is mid-schedule; closer is the end (float noise).
_SCHEDULE_END = 1 - 1e-9


def _with_run_tokens(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a float ``run_tokens`` column right after ``n_tokens``.

    A frame without the column (a reader given none, a model file written
    before it existed) gets each run's largest ``n_tokens``: the schedule is
    taken to end at the run's last checkpoint.  Returns ``frame`` itself when
    it already has the column as float64 in its place, so subsets stay cheap.
    """
    cols = list(frame.columns)
    if "n_tokens" not in cols or "run" not in cols:
        return frame  # not a run table's frame; leave the error to whoever reads it
    if "run_tokens" in cols:
        values = frame["run_tokens"].to_numpy(dtype=np.float64)
        if frame["run_tokens"].dtype == np.float64 and cols.index("run_tokens") == cols.index("n_tokens") + 1:
            return frame
        frame = frame.drop(columns="run_tokens")
    else:
        tokens = frame["n_tokens"].astype(np.float64)
        values = tokens.groupby(frame["run"], sort=False).transform("max").to_numpy(dtype=np.float64)
    frame = frame.copy()
    frame.insert(list(frame.columns).index("n_tokens") + 1, "run_tokens", values)
    return frame


# --------------------------------------------------------------------------- #
# The result type
# --------------------------------------------------------------------------- #


# eq=False: dataclass equality/hashing would compare DataFrames element-wise and fail.
@dataclass(frozen=True, eq=False, repr=False)
class RunTable:
    """A validated run table.

    ``frame`` holds the cleaned canonical table (columns ``weight_<d>...``,
    ``model_size``, ``n_tokens``, ``run_tokens``, ``<t>_loss...``, ``run``;
    RangeIndex).  A row is a checkpoint at ``n_tokens`` along a run whose
    learning-rate schedule ends at ``run_tokens``; a frame given without
    ``run_tokens`` gets each run's largest ``n_tokens`` (added here, so every
    constructor has it).  Missing losses are kept as NaN (masked).  ``notes``
    has one human-readable line per cleaning action taken while reading.
    """

    frame: pd.DataFrame
    domains: tuple[str, ...]
    targets: tuple[str, ...]
    source: str
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # The one place run_tokens is filled in: read_runs, read_regmix, model files and
        # dataclasses.replace all pass through here.  object.__setattr__: the dataclass is frozen.
        object.__setattr__(self, "frame", _with_run_tokens(self.frame))

    def __repr__(self) -> str:
        return (
            f"RunTable(source={self.source!r}, rows={self.n_rows}, runs={self.n_runs}, "
            f"mixtures={self.n_mixtures}, domains={self.domains}, targets={self.targets})"
        )

    # -- column views (always copies, so callers cannot corrupt the frame) --

    @property
    def weight_columns(self) -> list[str]:
        """Names of the weight columns of ``frame``, in domain order."""
        return [f"weight_{d}" for d in self.domains]

    @property
    def loss_columns(self) -> list[str]:
        """Names of the loss columns of ``frame``, in target order."""
        return [f"{t}_loss" for t in self.targets]

    @property
    def weights(self) -> np.ndarray:
        """Mixture weights, float64 array of shape (n, K); rows sum to 1."""
        return self.frame[self.weight_columns].to_numpy(dtype=np.float64, copy=True)

    @property
    def model_size(self) -> np.ndarray:
        """Parameter counts, float64 array of shape (n,)."""
        return self.frame["model_size"].to_numpy(dtype=np.float64, copy=True)

    @property
    def n_tokens(self) -> np.ndarray:
        """Training tokens seen, float64 array of shape (n,)."""
        return self.frame["n_tokens"].to_numpy(dtype=np.float64, copy=True)

    @property
    def run_tokens(self) -> np.ndarray:
        """Tokens at which each row's run ends its learning-rate schedule, float64 array of shape (n,)."""
        return self.frame["run_tokens"].to_numpy(dtype=np.float64, copy=True)

    @property
    def losses(self) -> np.ndarray:
        """Validation losses, float64 array of shape (n, T); NaN where masked."""
        return self.frame[self.loss_columns].to_numpy(dtype=np.float64, copy=True)

    @property
    def run(self) -> np.ndarray:
        """Run ids, str array of shape (n,)."""
        return np.asarray([str(r) for r in self.frame["run"].tolist()], dtype=str)

    @property
    def n_rows(self) -> int:
        """Number of rows (checkpoints)."""
        return len(self.frame)

    @property
    def n_runs(self) -> int:
        """Number of distinct run ids."""
        return int(self.frame["run"].nunique())

    @property
    def n_mixtures(self) -> int:
        """Number of distinct mixtures, across all model sizes."""
        return len(self.mixtures()[0])

    @property
    def has_checkpoints(self) -> bool:
        """True when some row lies before its run's schedule end: the sweep has mid-schedule checkpoints."""
        return bool((self.token_fraction() < _SCHEDULE_END).any())

    # -- methods --

    def mixtures(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(unique, index)``.

        ``unique`` is an (M, K) float64 array of the distinct mixtures in order of
        first appearance; ``index`` is an (n,) int array with
        ``unique[index[i]] == weights[i]``.
        """
        w = self.weights
        first: dict[bytes, int] = {}
        index = np.empty(len(w), dtype=np.intp)
        order: list[int] = []
        for i, row in enumerate(w):
            key = row.tobytes()
            if key not in first:
                first[key] = len(order)
                order.append(i)
            index[i] = first[key]
        return w[order].reshape(len(order), len(self.domains)), index

    def token_fraction(self) -> np.ndarray:
        """(n,) each checkpoint's share of its run's schedule, ``n_tokens / run_tokens``.

        1 at the schedule's end (up to 1.001 where rounded token counts put the
        last checkpoint a little past ``run_tokens``).  Relative to the schedule,
        not to the rows kept: a subset of late checkpoints keeps its fractions.
        """
        return self.n_tokens / self.run_tokens

    def checkpoints_per_run(self) -> pd.Series:
        """Rows per run: an int Series indexed by run id, in order of first appearance."""
        return self.frame.groupby("run", sort=False).size().rename("checkpoints")

    def describe_checkpoints(self) -> str:
        """One line on how many checkpoints each run has and where along its schedule they lie.

        E.g. ``"2,228 rows in 224 runs: 9 to 10 checkpoints per run (median 10), from 10% to 100% of each
        run's schedule"``, ``"30 rows in 3 runs: 10 checkpoints per run, from 10% to 100% of each run's
        schedule"`` or ``"60 rows in 60 runs: 1 row per run (final losses only)"``.
        """
        rows, runs = self.n_rows, self.n_runs
        head = f"{rows:,} row{'' if rows == 1 else 's'} in {runs:,} run{'' if runs == 1 else 's'}"
        if self.n_rows == 0:
            return head
        counts = self.checkpoints_per_run().to_numpy()
        if counts.max() == 1 and not self.has_checkpoints:
            return f"{head}: 1 row per run (final losses only)"
        lo, hi, med = int(counts.min()), int(counts.max()), float(np.median(counts))
        if lo == hi:
            per_run = f"{lo} checkpoint{'' if lo == 1 else 's'} per run"
        else:
            per_run = f"{lo} to {hi} checkpoints per run (median {med:g})"
        frac = self.token_fraction()
        first, last = float(frac.min()), float(frac.max())

        def pct(x: float) -> str:
            # Whole percent reads best (9.99% of a rounded schedule is "10%"); below 1% keep two digits.
            return f"{100 * x:.0f}%" if x >= 0.01 else f"{100 * x:.2g}%"

        span = f"at {pct(first)}" if pct(first) == pct(last) else f"from {pct(first)} to {pct(last)}"
        return f"{head}: {per_run}, {span} of each run's schedule"

    def drop_early_checkpoints(self, min_fraction: float) -> RunTable:
        """This table without the checkpoints before ``min_fraction`` of their run's schedule (``run_tokens``).

        Early checkpoints carry warm-up and learning-rate-schedule transients
        that no law of (N, D) describes. The rows dropped are counted in a
        new note (and logged); ``min_fraction`` 0 returns the table as it is.
        """
        if not 0.0 <= min_fraction < 1.0:
            raise ValueError(
                f"min_fraction must be in [0, 1) (a share of each run's schedule, run_tokens); got {min_fraction}"
            )
        if min_fraction == 0:
            return self
        keep = self.token_fraction() >= min_fraction
        note = (
            f"dropped {int((~keep).sum())} of {self.n_rows} rows: checkpoints before {min_fraction:g} of their "
            f"run's schedule (min_fraction)"
        )
        log.info("%s: %s", self.source, note)
        return dataclasses.replace(self.subset(keep), notes=self.notes + (note,))

    def subset(self, mask_or_index) -> RunTable:
        """Return a RunTable of the selected rows (boolean mask of length n, or
        integer positions), with the same domains, targets, source and notes."""
        sel = np.asarray(mask_or_index)
        n = self.n_rows
        if sel.dtype == bool:
            if sel.shape != (n,):
                raise RunTableError(f"{self.source}: subset mask has shape {sel.shape}, expected ({n},)")
            pos = np.flatnonzero(sel)
        elif sel.size == 0:
            pos = np.empty(0, dtype=np.intp)
        elif np.issubdtype(sel.dtype, np.integer) and sel.ndim == 1:
            bad = (sel < -n) | (sel >= n)
            if bad.any():
                raise RunTableError(
                    f"{self.source}: subset position {int(sel[bad][0])} is out of range for a table of {n} rows"
                )
            pos = sel
        else:
            raise RunTableError(
                f"{self.source}: subset takes a boolean mask or integer positions, "
                f"got an array of dtype {sel.dtype} and shape {sel.shape}"
            )
        frame = self.frame.iloc[pos].reset_index(drop=True)
        return dataclasses.replace(self, frame=frame)

    def require_mixtures(self, n: int, law: str) -> None:
        """Raise RunTableError unless the table has at least ``n`` distinct mixtures."""
        m = self.n_mixtures
        if m < n:
            raise RunTableError(f"law {law!r} needs at least {n} distinct mixtures; {self.source} has {m}")

    def require_scales(self, n: int, law: str, why: str = "") -> None:
        """Raise RunTableError unless the table has at least ``n`` distinct model sizes and ``n`` distinct
        token counts."""
        sizes, tokens = np.unique(self.model_size), np.unique(self.n_tokens)
        if len(sizes) < n or len(tokens) < n:

            def show(v):
                return ", ".join(f"{x:.4g}" for x in v[:4]) + (" ..." if len(v) > 4 else "")

            raise RunTableError(
                f"law {law!r} needs runs at {n} or more model sizes and {n} or more token counts"
                f"{': ' + why if why else ''}; {self.source} has {len(sizes)} model size(s) ({show(sizes)}) "
                f"and {len(tokens)} token count(s) ({show(tokens)})"
            )

    def own_domain(self, target: str) -> str | None:
        """Return the training domain named like ``target``, or None if it has none."""
        return target if target in self.domains else None

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the canonical frame."""
        return self.frame.copy()
