"""Held-out validation by scale, by training length and by mixture.

Each fold refits the law on part of the sweep and scores the rest: the error
of the posterior mean, the coverage of the predictive intervals and the log
predictive density of the held-out runs. The size folds answer the question a
user actually has -- "fit on what I can afford, predict the next size" -- and
measure the law's extrapolation bias (``extrapolation_sd``, one per target),
which data inside the fitted range cannot inform. :func:`bayesmix.fit`
measures the same number with a posterior-mode fit (bayesmix.extrapolation);
here it comes from the full-posterior fold refits, with the posterior's
uncertainty and run offsets integrated out, so the two can be compared.

Parallelism: folds run one after another and each fit runs its chains in
parallel (one XLA device per chain). On a 2-core machine two parallel chains
already use both cores, so running folds side by side would only make them
compete; with more cores, run folds in separate processes. Compiled code is
reused by :func:`bayesmix.fit` where the padded shapes of two folds agree.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..data import RunTable, read_runs
from ..executor import current as current_executor
from ..laws import Law
from .loglik import far_beyond, heldout_loglik, log_mean_exp
from .ppc import LEVELS, predictive_points, summarise

# the least extrapolation_sd a validation reports: a lucky fold should not promise more than a law can give
FLOOR = 0.005
log = logging.getLogger("bayesmix")

HOLDOUTS = "largest-size, sizes, size:<model_size>, tokens:<n_tokens>, mixtures:<k>"
SD_GRID = np.concatenate([[0.0], np.geomspace(1e-4, 1.0, 81)])


@dataclass
class Fold:
    """One train/test split: boolean row masks over the run table and a description."""

    name: str
    train: np.ndarray
    test: np.ndarray
    description: str


def _sizes_label(v: float) -> str:
    return f"{v / 1e9:.3g}B" if v >= 1e9 else f"{v / 1e6:.3g}M"


def _match_size(table: RunTable, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"--holdout size:<model_size> takes a number such as 2.7e9; got {text!r}") from None
    sizes = np.unique(table.model_size)
    i = int(np.argmin(np.abs(np.log(sizes / v)))) if v > 0 else 0
    if not (v > 0 and abs(sizes[i] / v - 1) < 0.02):
        raise ValueError(
            f"no model size near {text} in {table.source}; sizes are {', '.join(f'{s:.4g}' for s in sizes)}"
        )
    return float(sizes[i])


def make_folds(table: RunTable, holdout: str, seed: int = 0) -> list[Fold]:
    """Train/test folds for a holdout spec.

    - ``largest-size``: fit on every smaller size, test on the largest;
    - ``sizes``: one fold per size that has at least two smaller sizes: fit on
      the smaller sizes, test on that size (the next-size question at every step);
    - ``size:<model_size>``: fit on the sizes below it, test on it;
    - ``tokens:<n_tokens>``: fit on checkpoints up to that many tokens, test on later ones;
    - ``mixtures:<k>``: k folds over the distinct mixtures (all sizes of a
      mixture leave together), assigned at random with ``seed``.

    Raises ValueError for an unknown spec or a fold with nothing to fit or test.
    """
    sizes = np.unique(table.model_size)
    N, D = table.model_size, table.n_tokens
    spec = holdout.strip()
    folds: list[Fold] = []

    def size_fold(s: float) -> Fold:
        train, test = N < s, N == s
        if not train.any():
            raise ValueError(
                f"--holdout: no size below {s:.4g} to fit on (sizes: {', '.join(f'{x:.4g}' for x in sizes)})"
            )
        below = sizes[sizes < s]
        return Fold(
            f"size {_sizes_label(s)}",
            train,
            test,
            f"fit on sizes {', '.join(_sizes_label(x) for x in below)}; predict {_sizes_label(s)}",
        )

    if spec == "largest-size":
        if len(sizes) < 2:
            raise ValueError(
                f"--holdout largest-size needs at least two model sizes; {table.source} has one ({sizes[0]:.4g})"
            )
        folds.append(size_fold(sizes[-1]))
    elif spec in ("sizes", "next-size"):
        if len(sizes) < 3:
            raise ValueError(
                f"--holdout sizes needs at least three model sizes (two to fit, one to predict); "
                f"{table.source} has {len(sizes)}"
            )
        folds = [size_fold(s) for s in sizes[2:]]
    elif spec.startswith("size:"):
        folds.append(size_fold(_match_size(table, spec[5:])))
    elif spec.startswith("tokens:"):
        try:
            v = float(spec[7:])
        except ValueError:
            raise ValueError(f"--holdout tokens:<n_tokens> takes a number such as 5e9; got {spec[7:]!r}") from None
        train, test = D <= v, D > v
        if not train.any() or not test.any():
            raise ValueError(
                f"--holdout tokens:{v:g} leaves nothing to {'fit' if not train.any() else 'predict'}; "
                f"n_tokens span {D.min():.4g} to {D.max():.4g}"
            )
        folds.append(
            Fold(f"tokens > {v:.3g}", train, test, f"fit on checkpoints with n_tokens <= {v:.3g}; predict later ones")
        )
    elif spec.startswith("mixtures:"):
        m = re.fullmatch(r"mixtures:(\d+)", spec)
        mixes, index = table.mixtures()
        if not m or not 2 <= int(m.group(1)) <= len(mixes):
            raise ValueError(
                f"--holdout mixtures:<k> takes a number of folds from 2 to the {len(mixes)} distinct "
                f"mixtures; got {spec!r}"
            )
        k = int(m.group(1))
        order = np.random.default_rng(seed).permutation(len(mixes))
        fold_of = np.empty(len(mixes), dtype=int)
        fold_of[order] = np.arange(len(mixes)) % k
        for f in range(k):
            test = fold_of[index] == f
            folds.append(
                Fold(
                    f"mixtures {f + 1}/{k}",
                    ~test,
                    test,
                    f"hold out {int((fold_of == f).sum())} of {len(mixes)} mixtures at every size",
                )
            )
    else:
        raise ValueError(f"unknown --holdout {holdout!r}; use one of: {HOLDOUTS}")
    return folds


@dataclass
class ValidationResult:
    """Scores of held-out folds.

    ``folds``: one row per fold (``fold``, ``description``, ``train_runs``,
    ``test_runs``, ``cells``, ``mre``, ``bias``, ``coverage_50`` ...
    ``coverage_95``, ``width_90`` and ``interval_score_90`` (as fractions
    of the loss), ``lpd`` (sum over held-out runs of the log predictive
    density of each run, offset and extrapolation bias integrated out),
    ``lpd_per_run``, ``fit_ok``). ``points``: per held-out observation
    (:func:`bayesmix.checks.ppc.predictive_points` plus ``fold``).
    ``extrapolation``: one row per (fold that extrapolates, target): the
    ``sd_hat`` that maximises the held-out joint predictive density of that
    target, the sd the fold's fit used (``sd_fit``), and the density and 90%
    coverage at each. ``extrapolation_sd``: per target (in ``targets``
    order), the value estimated from all such folds together, floored at
    :data:`FLOOR` (None if no fold extrapolates).
    ``default_sd``: per target, what the (last) fold's fit used.
    """

    law: str
    holdout: str
    targets: tuple[str, ...]
    folds: pd.DataFrame
    points: pd.DataFrame
    extrapolation: pd.DataFrame
    extrapolation_sd: np.ndarray | None
    default_sd: np.ndarray
    fits: list = field(default_factory=list, repr=False)

    def sd_text(self, values: np.ndarray | None = None) -> str:
        """``target value, ...`` for per-target extrapolation_sd values (default: the measured ones)."""
        v = self.extrapolation_sd if values is None else values
        return ", ".join(f"{t} {x:.4g}" for t, x in zip(self.targets, np.broadcast_to(v, (len(self.targets),))))

    def advice(self) -> str:
        """How to read and use the measured extrapolation_sd (plain text)."""
        if self.extrapolation_sd is None:
            return (
                "No fold predicts beyond the fitted sizes or token counts, so the extrapolation bias was not measured "
                "(use --holdout largest-size)."
            )
        looks = int(self.extrapolation.groupby("target").size().max())
        return (
            f"extrapolation_sd per target = {self.sd_text()}: the law's log-scale bias per e-fold beyond the fitted "
            "range that makes the held-out errors most probable under the full-posterior fold fits (floored at "
            f"{FLOOR:g}). Each target's value rests on {looks} held-out "
            "size(s), one look at its bias each, so it is rough. The fold fits used "
            f"{self.sd_text(self.default_sd)} (bayesmix.fit's posterior-mode measurement on the training sizes, or "
            "the value given). Use it: in Python pass extrapolation_sd=[...] to bayesmix.fit or set "
            "fit.extrapolation_sd = np.array([...]) (targets in the fit's order); on the command line add "
            "--update-model MODEL.nc to store it in a saved model, which predict and check then use."
        )


def _fit_fold(task: tuple) -> tuple:
    """One fold's refit (a task of an executor): (the fit, its seconds, the messages of its FitWarnings)."""
    from ..diagnostics import FitWarning
    from ..fit import fit as fit_law

    train, law, kwargs = task
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        f = fit_law(train, law, **kwargs)
    return f, time.perf_counter() - t0, [str(w.message) for w in caught if issubclass(w.category, FitWarning)]


def validate(
    runs: RunTable | pd.DataFrame | str,
    law: str | Law = "additive",
    holdout: str = "largest-size",
    *,
    targets: Sequence[str] | None = None,
    priors: Mapping | None = None,
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    levels=LEVELS,
    extrapolation_sd: float | Sequence[float] | None = None,
    max_draws: int | None = 2000,
    progress: bool | None = None,
    min_fraction: float = 0.0,
) -> ValidationResult:
    """Refit ``law`` (NUTS) on each fold's training runs and score the held-out runs.

    ``holdout`` is a spec for :func:`make_folds`. ``extrapolation_sd`` (a
    number or one per target) is the bias scale used for the held-out
    predictions; by default each fold's fit measures its own the way
    :func:`bayesmix.fit` does (posterior mode without its largest training
    size). The per-target value the held-out errors call for is measured from
    the full-posterior fold fits and returned beside it. ``min_fraction``
    drops every checkpoint before that share of its run's schedule from
    training and held-out runs alike (default 0: every checkpoint, with the
    checkpoint model of :mod:`bayesmix.schedule`, as :func:`bayesmix.fit`).
    Returns a :class:`ValidationResult`.
    """

    # before the folds, so held-out runs are scored on the same kind of checkpoints as fitted ones
    table = (runs if isinstance(runs, RunTable) else read_runs(runs)).drop_early_checkpoints(min_fraction)
    folds = make_folds(table, holdout, seed)
    fold_rows, point_frames, extra_rows, fits = [], [], [], []
    profiles = []
    fit_kwargs = dict(
        targets=targets,
        priors=priors,
        chains=chains,
        warmup=warmup,
        draws=draws,
        progress=progress,
        extrapolation_sd=extrapolation_sd,
    )
    splits = [(table.subset(fold.train), table.subset(fold.test)) for fold in folds]
    for i, (fold, (train, test)) in enumerate(zip(folds, splits), 1):
        log.info(
            "fold %d/%d (%s): %s; %d training runs, %d held out",
            i,
            len(folds),
            fold.name,
            fold.description,
            train.n_runs,
            test.n_runs,
        )
    # The folds' refits are independent: they run on the current executor (bayesmix.executor), each with its seed.
    tasks = [(train, law, dict(fit_kwargs, seed=seed + i)) for i, (train, _) in enumerate(splits, 1)]
    fold_fits = current_executor().map(_fit_fold, tasks, labels=[f"fold {fold.name}" for fold in folds])
    for fold, (_, test), (f, fit_seconds, messages) in zip(folds, splits, fold_fits):
        t0 = time.perf_counter() - fit_seconds
        for message in messages:  # keep them visible, but say which fold they belong to
            log.warning("fold %s: %s", fold.name, message)
        fits.append(f)
        points = predictive_points(f, test, levels, seed=seed, max_draws=max_draws)
        by_target = summarise(points, levels)
        summary = by_target.loc["all"]
        ll, _ = heldout_loglik(f, test, max_draws=max_draws)
        lpd_runs = log_mean_exp(ll.sum(-1), 0)
        row = {
            "fold": fold.name,
            "description": fold.description,
            "train_runs": f.table.n_runs,
            "test_runs": test.n_runs,
            "cells": int(summary.cells),
            "mre": summary.mre,
            "bias": summary.bias,
        }
        row.update({c: summary[c] for c in summary.index if c.startswith("coverage_")})
        row.update({c: summary[c] for c in ("width_90", "interval_score_90")})
        row.update(
            {
                "lpd": float(lpd_runs.sum()),
                "lpd_per_run": float(lpd_runs.mean()),
                "fit_ok": f.diagnostics.ok,
                "seconds": time.perf_counter() - t0,
            }
        )
        fold_rows.append(row)
        far = far_beyond(f, test)
        point_frames.append(points.assign(fold=fold.name, far=far[points.row.to_numpy()]))

        if far.max() > 0:
            prof = extrapolation_profile(f, test, max_draws=max_draws)  # (K, T)
            profiles.append(prof)
            sd_fit = np.broadcast_to(np.asarray(f.extrapolation_sd, dtype=float), (len(f.targets),))
            sd_hat = SD_GRID[np.argmax(prof, axis=0)]  # (T,)
            at_fit = log_mean_exp(heldout_loglik(f, test, shared=True, max_draws=max_draws)[0][:, 0, :], 0)  # (T,)
            at_hat = summarise(
                predictive_points(_with_sd(f, sd_hat), test, levels, seed=seed, max_draws=max_draws), levels
            )
            for j, t in enumerate(f.targets):
                extra_rows.append(
                    {
                        "fold": fold.name,
                        "target": t,
                        "sd_hat": float(sd_hat[j]),
                        "sd_fit": float(sd_fit[j]),
                        "max_efolds": float(far.max()),
                        "lpd_joint_at_fit": float(at_fit[j]),
                        "lpd_joint_at_hat": float(prof[:, j].max()),
                        "coverage_90_at_fit": _cell(by_target, t, "coverage_90"),
                        "coverage_90_at_hat": _cell(at_hat, t, "coverage_90"),
                    }
                )
    sd = np.maximum(estimate_extrapolation_sd(profiles), FLOOR) if profiles else None
    last = fits[-1]
    return ValidationResult(
        law=last.law.name,
        holdout=holdout,
        targets=tuple(last.targets),
        folds=pd.DataFrame(fold_rows),
        points=pd.concat(point_frames, ignore_index=True),
        extrapolation=pd.DataFrame(extra_rows),
        extrapolation_sd=sd,
        default_sd=np.broadcast_to(np.asarray(last.extrapolation_sd, dtype=float), (len(last.targets),)).copy(),
        fits=fits,
    )


def extrapolation_profile(fit, test: RunTable, grid: np.ndarray = SD_GRID, max_draws: int | None = 2000) -> np.ndarray:
    """(K, T): per target, the joint log predictive density of the held-out runs at each extrapolation_sd in ``grid``.

    One bias per target is shared by every held-out row (as in
    ``Posterior.predictive``) and integrated out in closed form, together with
    run offsets and noise; the draws of the fit carry the rest of the
    uncertainty (averaged per target, so each target's profile is its own
    marginal). Maximising over the grid is type-II maximum likelihood of the
    bias scale on held-out data.
    """
    ll, _ = heldout_loglik(
        fit, test, grid=np.asarray(grid, dtype=float), shared=True, max_draws=max_draws
    )  # (K, S, 1, T)
    return log_mean_exp(ll[:, :, 0, :], 1)


def estimate_extrapolation_sd(
    profiles: Sequence[np.ndarray], grid: np.ndarray = SD_GRID, pooled: bool = False
) -> np.ndarray | float:
    """The grid value maximising the summed profiles of independent folds (see :func:`extrapolation_profile`).

    Per target (an array of T values) by default; ``pooled=True`` gives one
    value for all targets (sum over targets too: more looks at the bias, if
    the targets share its scale). No floor is applied here.
    """
    total = np.sum(profiles, 0)  # (K, T)
    if pooled:
        return float(grid[int(np.argmax(total.sum(-1)))])
    return np.asarray(grid)[np.argmax(total, axis=0)]


def _cell(frame: pd.DataFrame, row: str, column: str) -> float:
    """frame.loc[row, column], or NaN where the target had no held-out observation (or the level was not asked for)."""
    return float(frame.loc[row, column]) if row in frame.index and column in frame.columns else np.nan


def _with_sd(fit, sd: float | np.ndarray):
    """A shallow copy of a fit with another extrapolation_sd (draws shared, not copied)."""
    import dataclasses

    return dataclasses.replace(fit, extrapolation_sd=np.asarray(sd, dtype=float))
