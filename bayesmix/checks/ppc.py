"""Posterior predictive checks: do the fit's predictive intervals mean what they say?

For every observed loss the fit gives a posterior predictive distribution
(``Posterior.predictive``: the law, a new run's offset and checkpoint noise, and
the extrapolation bias beyond the fitted range). From those draws we compute,
per target: the coverage of the central 50/80/90/95% intervals, the PIT value
of each observation (uniform if calibrated), the mean relative error of the
posterior mean, and the runs that fit worst. The same numbers on runs the fit
never saw (``table=``) are a held-out check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import RunTable

LEVELS = (0.5, 0.8, 0.9, 0.95)


def interval_hits(draws: np.ndarray, observed: np.ndarray, level: float) -> np.ndarray:
    """Whether each observation lies in the central ``level`` interval of its draws.

    ``draws`` is (S, ...) and ``observed`` has the trailing shape; returns a
    bool array of that shape (equal-tailed interval, bounds included).
    """
    a = (1 - level) / 2
    lo, hi = np.quantile(draws, [a, 1 - a], axis=0)
    return (observed >= lo) & (observed <= hi)


def interval_score(lower, upper, observed, level: float = 0.9):
    """The interval score of central ``level`` intervals (Gneiting and Raftery 2007, eq. 43); lower is better.

    ``(upper - lower) + (2 / a) (lower - y) [y < lower] + (2 / a) (y - upper) [y > upper]``, a = 1 - level: the
    width, plus a penalty for each miss in proportion to how far it misses. A proper score, so an interval
    cannot win it by being wide (the width counts) or narrow (the misses count). Same shape as the inputs.
    """
    lower, upper, y = (np.asarray(v, dtype=float) for v in (lower, upper, observed))
    a = 1.0 - level
    return (upper - lower) + (2.0 / a) * (np.maximum(lower - y, 0.0) + np.maximum(y - upper, 0.0))


def pit(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Probability integral transform: share of draws below each observation (ties count half)."""
    return (np.sum(draws < observed, axis=0) + 0.5 * np.sum(draws == observed, axis=0)) / draws.shape[0]


def predictive_points(
    fit,
    table: RunTable | None = None,
    levels=LEVELS,
    seed: int = 0,
    max_draws: int | None = 2000,
    draws: dict | None = None,
) -> pd.DataFrame:
    """One row per observed (row, target) with the fit's posterior predictive beside the observation.

    Columns: ``row``, ``run``, ``model_size``, ``tokens``, ``target``,
    ``observed``, ``mean`` (posterior mean of the law's expected loss),
    ``median``, ``lower``/``upper`` (90% predictive interval), ``q25``/``q75``
    (50% predictive interval), ``in_50`` ...
    ``in_95`` (observation inside that central predictive interval), ``pit``,
    ``width_90`` and ``interval_score_90`` (of the 90% interval, relative to
    the observation), ``rel_error`` ((observed - mean) / observed), ``z`` (log-scale
    standardised residual: (log observed - mean log pred) / sd log pred) and
    the mixture weights ``weight_<domain>``. Masked cells are left out.
    """
    table = fit.table if table is None else table
    d = (
        draws
        if draws is not None
        else fit.predict_draws(table.weights, table.model_size, table.n_tokens, seed=seed, max_draws=max_draws)
    )
    pred, mean = d["pred"], d["mean"]  # (S, n, T)
    obs = table.frame[[f"{t}_loss" for t in fit.targets]].to_numpy(dtype=float)  # (n, T)
    n, T = obs.shape
    log_pred = np.log(pred)
    mu = mean.mean(0)
    cols = {
        "row": np.repeat(np.arange(n), T),
        "run": np.repeat(table.run, T),
        "model_size": np.repeat(table.model_size, T),
        "tokens": np.repeat(table.n_tokens, T),
        "target": np.tile(np.asarray(fit.targets, dtype=object), n),
        "observed": obs.ravel(),
        "mean": mu.ravel(),
        "median": np.median(pred, 0).ravel(),
        "lower": np.quantile(pred, 0.05, 0).ravel(),
        "upper": np.quantile(pred, 0.95, 0).ravel(),
        "q25": np.quantile(pred, 0.25, 0).ravel(),
        "q75": np.quantile(pred, 0.75, 0).ravel(),
    }
    for level in levels:
        cols[f"in_{round(100 * level)}"] = interval_hits(pred, obs, level).ravel()
    cols["pit"] = pit(pred, obs).ravel()
    # sharpness beside coverage: the 90% interval's width and interval score, relative to the observed loss
    cols["width_90"] = ((cols["upper"] - cols["lower"]) / obs.ravel()).ravel()
    cols["interval_score_90"] = (interval_score(cols["lower"], cols["upper"], obs.ravel(), 0.9) / obs.ravel()).ravel()
    cols["rel_error"] = ((obs - mu) / obs).ravel()
    cols["z"] = ((np.log(obs) - log_pred.mean(0)) / log_pred.std(0)).ravel()
    w = table.weights
    for k, dom in enumerate(table.domains):
        cols[f"weight_{dom}"] = np.repeat(w[:, k], T)
    points = pd.DataFrame(cols)
    return points[np.isfinite(points.observed)].reset_index(drop=True)


def summarise(points: pd.DataFrame, levels=LEVELS) -> pd.DataFrame:
    """Per target (and ``all``): cells, coverage of each interval, MRE, bias and a PIT uniformity test.

    Columns: ``cells``, ``coverage_50`` ... (share of observations inside the
    central predictive interval; nominal = the level), ``width_90`` and
    ``interval_score_90`` (mean width and interval score of the 90% interval,
    as fractions of the observed loss: sharpness beside coverage), ``mre`` (mean |relative
    error| of the posterior mean, as a fraction), ``bias`` (mean signed
    relative error), ``pit_ks`` and ``pit_p`` (Kolmogorov-Smirnov distance of
    the PIT values from uniform, and its p-value -- anti-conservative, since
    checkpoints of a run share an offset).
    """
    from scipy import stats

    rows = []
    groups = [(t, points[points.target == t]) for t in dict.fromkeys(points.target)] + [("all", points)]
    for name, g in groups:
        row = {"target": name, "cells": len(g)}
        for level in levels:
            row[f"coverage_{round(100 * level)}"] = float(g[f"in_{round(100 * level)}"].mean()) if len(g) else np.nan
        for c in ("width_90", "interval_score_90"):
            row[c] = float(g[c].mean()) if len(g) and c in g else np.nan
        row["mre"] = float(g.rel_error.abs().mean()) if len(g) else np.nan
        row["bias"] = float(g.rel_error.mean()) if len(g) else np.nan
        if len(g):
            ks = stats.kstest(g.pit.to_numpy(), "uniform")
            row["pit_ks"], row["pit_p"] = float(ks.statistic), float(ks.pvalue)
        else:
            row["pit_ks"] = row["pit_p"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("target")


def worst_runs(points: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` runs that fit worst (largest root-mean-square standardised residual).

    Columns: ``run``, ``model_size``, ``cells``, ``rms_z``, ``max_abs_z``,
    ``mean_rel_error`` (signed), ``outside_90`` (share of cells outside the 90%
    interval), ``worst_target`` (target with the largest mean |z|).
    """
    if points.empty:
        return pd.DataFrame(
            columns=["run", "model_size", "cells", "rms_z", "max_abs_z", "mean_rel_error", "outside_90", "worst_target"]
        )
    g = points.assign(
        z2=points.z**2, az=points.z.abs(), out=(points.observed < points.lower) | (points.observed > points.upper)
    )
    by = g.groupby("run", sort=False)
    worst_t = (
        g.groupby(["run", "target"], sort=False)
        .az.mean()
        .reset_index()
        .sort_values("az")
        .groupby("run")
        .tail(1)
        .set_index("run")
        .target
    )
    out = pd.DataFrame(
        {
            "model_size": by.model_size.first(),
            "cells": by.size(),
            "rms_z": np.sqrt(by.z2.mean()),
            "max_abs_z": by.az.max(),
            "mean_rel_error": by.rel_error.mean(),
            "outside_90": by.out.mean(),
        }
    )
    out["worst_target"] = worst_t.reindex(out.index)
    return out.sort_values("rms_z", ascending=False).head(n).reset_index()


@dataclass
class CheckResult:
    """Posterior predictive check of a fit.

    ``table``: per-target summary (:func:`summarise`); ``points``: per
    observation (:func:`predictive_points`); ``worst``: worst-fit runs
    (:func:`worst_runs`); ``figures``: name -> matplotlib Figure;
    ``predictive``: the ArviZ DataTree (posterior_predictive and
    observed_data, one variable per target) the PIT figure was drawn from.
    """

    table: pd.DataFrame
    points: pd.DataFrame
    worst: pd.DataFrame
    figures: dict = field(default_factory=dict)
    predictive: object = None

    def save(self, folder: str | Path) -> list[Path]:
        """Write the figures (PNG) and tables (CSV) into ``folder``; return the paths written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, fig in self.figures.items():
            paths.append(folder / f"{name}.png")
            fig.savefig(paths[-1], dpi=110)
        for name, frame, index in (
            ("check-summary", self.table, True),
            ("check-worst-runs", self.worst, False),
            ("check-points", self.points, False),
        ):
            paths.append(folder / f"{name}.csv")
            frame.to_csv(paths[-1], index=index)
        return paths


def predictive_tree(fit, table: RunTable, draws: dict):
    """ArviZ DataTree with ``posterior_predictive`` and ``observed_data``: one variable per target.

    Masked cells are left out, so each target has its own observation dimension.
    """
    import arviz_base as azb

    obs = table.frame[[f"{t}_loss" for t in fit.targets]].to_numpy(dtype=float)
    pp, od, dims = {}, {}, {}
    for j, t in enumerate(fit.targets):
        keep = np.isfinite(obs[:, j])
        pp[t] = draws["pred"][None, :, keep, j]
        od[t] = obs[keep, j]
        dims[t] = [f"obs_{t}"]
    return azb.from_dict({"posterior_predictive": pp, "observed_data": od}, dims=dims)


def check(
    fit,
    table: RunTable | None = None,
    *,
    levels=LEVELS,
    seed: int = 0,
    max_draws: int | None = 2000,
    worst: int = 10,
    figures: bool = True,
) -> CheckResult:
    """Posterior predictive check of ``fit`` on its own runs (or on ``table``, e.g. held-out runs).

    Returns a :class:`CheckResult` whose ``table`` has, per target and overall,
    the coverage of the 50/80/90/95% predictive intervals, the mean relative
    error, the bias and a PIT test; ``figures`` (if asked) holds
    ``check-intervals`` (observed against predictive intervals, every row),
    ``check-residuals`` (standardised residuals against model size, tokens and
    each mixture weight: a trend the law misses shows there) and ``check-pit``
    (ArviZ's PIT ECDF with simultaneous bands).
    """
    table = fit.table if table is None else table
    for t in fit.targets:
        if f"{t}_loss" not in table.frame.columns:
            raise ValueError(f"{table.source}: no column {t}_loss; the fit scores targets {', '.join(fit.targets)}")
    if tuple(table.domains) != tuple(fit.domains):
        raise ValueError(
            f"{table.source}: domains {', '.join(table.domains)} differ from the fit's ({', '.join(fit.domains)})"
        )
    draws = fit.predict_draws(table.weights, table.model_size, table.n_tokens, seed=seed, max_draws=max_draws)
    points = predictive_points(fit, table, levels, draws=draws)
    result = CheckResult(table=summarise(points, levels), points=points, worst=worst_runs(points, worst))
    result.predictive = predictive_tree(fit, table, draws)
    if figures:
        from . import plots

        result.figures = {
            "check-intervals": plots.intervals_figure(points, f"{fit.law.name} fit"),
            "check-residuals": plots.residuals_figure(points, fit.domains, f"{fit.law.name} fit"),
            "check-pit": plots.pit_figure(result.predictive),
        }
    return result
