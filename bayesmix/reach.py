"""Which directions of scale a sweep varied, and when a prediction leaves them.

A law learns its model-size term from runs of different sizes and its token
term from runs trained to different token counts (each run's schedule end,
``run_tokens``). A sweep that trained every run to the same tokens (RegMix's
proxies: 1B tokens each), or every run at one size, or every run at the same
tokens per parameter (size and tokens moving together), leaves a direction of
(log N, log D) that its data never moved along. A prediction that moves along
it rests on the law's prior for that term alone: its interval then carries
the prior's spread, and the user is told so in plain words
(:class:`PriorOnlyWarning`), and no extrapolation bias is added along an
axis never varied (:func:`bayesmix.posterior.fitted_reach`): the prior
already carries that uncertainty.

The same holds along a run's schedule: a sweep whose rows all sit at one
point of their runs (every run logged once, at half its schedule, say)
measures the law's level plus the checkpoint curve there, never the two
apart, so a final loss (or any other point of a run) rests on the curve's
prior (:func:`single_fraction`, :func:`schedule_prior_note`).
"""

from __future__ import annotations

import numpy as np

from .data import RunTable

# A direction counts as varied when the runs spread over it by at least this much (e-folds, standard deviation);
# a prediction is off the varied directions when it moves at least this far along the others.
VARIED = 0.05
MOVED = 0.1


class PriorOnlyWarning(UserWarning):
    """A prediction moves along a direction of scale that the fitted sweep never varied."""


class FloorWarning(UserWarning):
    """Some draws predict a loss far below anything the sweep saw: their law has no floor to stop at there."""


# A draw's predicted loss counts as past its floor below this share of the lowest loss the sweep observed.
BELOW_SWEEP = 0.1


def floor_note(table: RunTable, means: np.ndarray, targets, share: float = 0.01) -> str | None:
    """A plain sentence when more than ``share`` of the draws put a target's loss below ``BELOW_SWEEP`` times the
    lowest loss the sweep observed for it; else None. ``means`` (S, M, T) are the draws of the expected loss."""
    lowest = np.array([np.nanmin(table.frame[f"{t}_loss"].to_numpy(dtype=float)) for t in targets])  # (T,)
    below = (means < BELOW_SWEEP * lowest).mean(axis=(0, 1))  # (T,)
    hit = [f"{t} ({100 * b:.0f}% of draws)" for t, b in zip(targets, below) if b > share]
    if not hit:
        return None
    return (
        f"predicted losses fall below a tenth of the lowest loss in the sweep for {', '.join(hit)}: in those draws "
        "the law's fitted floor is at or below 0 (the sweep's losses barely slowed down), so nothing stops the fall "
        "this far out and the loss is held above 0 only by the law's smooth floor. The lower end of those intervals "
        "rests on the law's form, not on the data."
    )


def run_scales(table: RunTable) -> np.ndarray:
    """(runs, 2) log model size and log schedule end (``run_tokens``) of each run."""
    f = table.frame.assign(_N=table.model_size, _D=table.run_tokens).groupby("run", sort=False)[["_N", "_D"]].first()
    return np.log(f.to_numpy(dtype=float))


def varied_axes(table: RunTable) -> tuple[bool, bool]:
    """Whether the runs spread in log model size, and in log schedule end (by at least ``VARIED`` e-folds)."""
    X = run_scales(table)
    spread = X.std(0) if len(X) > 1 else np.zeros(2)
    return bool(spread[0] >= VARIED), bool(spread[1] >= VARIED)


def unvaried_directions(table: RunTable) -> tuple[np.ndarray, np.ndarray]:
    """``(center (2,), directions (k, 2))``: unit vectors in (log N, log D) along which the runs never spread.

    k is 0 (both varied independently), 1 (one direction left: a single
    size, a single token budget, or a fixed tokens-per-parameter ratio) or 2
    (one scale only).
    """
    X = run_scales(table)
    center = X.mean(0)
    if len(X) < 2:
        return center, np.eye(2)
    _, s, vt = np.linalg.svd(X - center, full_matrices=True)
    s = np.concatenate([s, np.zeros(2 - len(s))]) / np.sqrt(len(X))
    return center, vt[s < VARIED]


def single_fraction(table: RunTable) -> float | None:
    """The one point of their runs' schedules (D_t / D_end, below 1) at which every row of the sweep sits, or None.

    None when the rows spread over their schedules by at least ``VARIED`` e-folds, or sit at the end of them.
    """
    frac = np.asarray(table.token_fraction(), dtype=float)
    if not len(frac) or frac.max() >= 1 - 1e-9:
        return None
    x = np.log(frac)
    return None if x.std() >= VARIED else float(np.exp(x.mean()))


def schedule_prior_note(table: RunTable, fractions=1.0) -> str | None:
    """A plain sentence when a fit of checkpoints saw its runs at one point only and a prediction asks for
    another (``fractions``: shares of the run's schedule; 1 is its final loss); else None."""
    f0 = single_fraction(table)
    if f0 is None:
        return None
    asked = np.atleast_1d(np.asarray(fractions, dtype=float))
    if np.abs(np.log(asked / f0)).max() < MOVED:
        return None
    return (
        f"every row of the sweep sits at {f0:.0%} of its run's schedule, so how far a checkpoint there lies above "
        "its run's final loss cannot be told from the law's level: this prediction of another point of a run (a "
        "final loss by default) rests on the checkpoint curve's prior alone, and the interval carries that prior's "
        f"full spread. For what the sweep measured, predict its own point of a run (trajectory, fractions {f0:.2g}); "
        "checkpoints at more than one point of a run would measure the curve."
    )


def _describe(table: RunTable, v: np.ndarray) -> str:
    """What the sweep held fixed along direction ``v``, in words."""
    N, D = np.exp(run_scales(table)).T
    if abs(v[1]) > 0.98:
        return f"every run of the sweep was trained to {np.median(D):.3g} tokens"
    if abs(v[0]) > 0.98:
        return f"every run of the sweep has {np.median(N):.3g} parameters"
    return (
        f"every run of the sweep was trained to about {np.median(D / N):.3g} tokens per parameter "
        "(model size and tokens moved together)"
    )


def prior_only_note(table: RunTable, model_size, tokens) -> str | None:
    """A plain sentence when predicting at (model_size, tokens) leaves the sweep's varied directions; else None.

    ``model_size`` and ``tokens`` are scalars or arrays (the farthest point counts).
    """
    center, dirs = unvaried_directions(table)
    if not len(dirs):
        return None
    P = np.log(np.column_stack(np.broadcast_arrays(np.asarray(model_size, float), np.asarray(tokens, float))))
    moved = np.abs((P - center) @ dirs.T)  # (points, k)
    if moved.max() < MOVED:
        return None
    if len(dirs) == 2:
        N, D = np.exp(center)
        what = f"every run of the sweep has {N:.3g} parameters and {D:.3g} tokens"
        term = "the law's model-size and token terms rest"
    else:
        what = _describe(table, dirs[0])
        term = "the law's term for that direction rests"
    return (
        f"{what}: this prediction moves {moved.max():.1f} e-folds along a direction of scale the sweep never "
        f"varied, so {term} on its prior alone and the interval carries that prior's full spread. Read it as an "
        "assumption, not a measurement; runs that vary it would measure it."
    )
