"""The figure of a predicted training curve (:meth:`bayesmix.Fit.predict` with ``trajectory=True``).

The figure is built with ``matplotlib.figure.Figure`` directly (no pyplot),
as :mod:`bayesmix.decide.plots` does, so it never touches a global backend:
save it with ``fig.savefig`` (Agg) or show it in a notebook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from .fit import Fit

MAX_PANELS = 8
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def nearest_runs(fit: "Fit", mixture: np.ndarray, model_size: float, n: int = 3) -> pd.DataFrame:
    """The ``n`` runs of the fitted table closest to a mixture at a model size.

    Distance = total-variation distance between the mixtures
    (``0.5 * sum |h - h_run|``, at most 1) plus ``|log(N / N_run)|``: a
    size 2.7 times off counts as much as a disjoint mixture, so the runs
    shown are of nearby mixtures at nearby sizes, not only one of the two.

    Returns one row per run, nearest first: ``run``, ``model_size``,
    ``tv``, ``distance``.
    """
    frame = fit.table.frame
    first = frame.groupby("run", sort=False).head(1)  # a run has one mixture and one size
    w = first[fit.table.weight_columns].to_numpy(dtype=float)
    tv = 0.5 * np.abs(w - np.asarray(mixture, dtype=float)[None, :]).sum(1)
    size = first["model_size"].to_numpy(dtype=float)
    dist = tv + np.abs(np.log(model_size / size))
    out = pd.DataFrame({"run": first["run"].astype(str).to_numpy(), "model_size": size, "tv": tv, "distance": dist})
    return out.sort_values("distance", kind="stable").head(max(int(n), 0)).reset_index(drop=True)


def _mixture_label(m: int, h: np.ndarray, domains: Sequence[str]) -> str:
    """'mixture 0 (web 0.50, code 0.30, ...)': the weights only while they fit in a legend line."""
    if len(domains) > 4:
        return f"mixture {m}"
    return f"mixture {m} (" + ", ".join(f"{d} {w:.2f}" for d, w in zip(domains, h)) + ")"


def trajectory_figure(
    fit: "Fit",
    prediction: pd.DataFrame,
    mixtures: np.ndarray | pd.DataFrame | str,
    model_size: float,
    tokens: float,
    targets: Sequence[str] | None = None,
    nearest: int = 3,
    fig: Figure | None = None,
) -> Figure:
    """Predicted training curves with their bands, beside the observed curves of the nearest fitted runs.

    One panel per target (at most eight), loss against ``n_tokens`` on a
    log axis. For each predicted mixture: the posterior mean curve, the
    credible band of the expected loss (``lower``/``upper``) and the wider
    predictive band of one run (``pred_lower``/``pred_upper``). Beside them,
    as markers and lines, the observed curves of the ``nearest`` runs of
    the fitted table (``fit.table``) closest to each predicted mixture at
    ``model_size``, labelled with run id and model size. Closeness is the
    total-variation distance between the mixtures plus ``|log(N / N_run)|``
    (:func:`nearest_runs`).

    Parameters
    ----------
    fit
        The fit that made the prediction.
    prediction
        ``fit.predict(mixtures, model_size, tokens, trajectory=True)``: a
        tidy table with an ``n_tokens`` column.
    mixtures
        The mixtures given to :meth:`~bayesmix.Fit.predict` (array, DataFrame
        or CSV path); row ``m`` is the prediction's ``mixture == m``.
    model_size, tokens
        The predicted run's parameters and the tokens at which its schedule
        ends.
    targets
        Targets to draw (default: every target of the prediction but
        ``weighted``, which has no observed curve); at most eight are drawn.
    nearest
        Observed runs to show per predicted mixture (0: none).
    fig
        Draw into this figure (default: a new one).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``prediction`` is not a trajectory, was made at another scale, or
        ``targets`` names a target it does not have.
    """
    from .data import read_mixtures

    if "n_tokens" not in prediction.columns:
        raise ValueError("the prediction is not a training curve: make it with fit.predict(..., trajectory=True)")
    for col, value in (("model_size", model_size), ("tokens", tokens)):
        # A figure titled with one scale over a prediction made at another would mislead silently.
        if col in prediction.columns and not np.allclose(prediction[col].to_numpy(dtype=float), value, rtol=1e-9):
            raise ValueError(f"the prediction was made at {col} {prediction[col].iloc[0]:.4g}, not {value:.4g}")
    h = np.atleast_2d(mixtures if isinstance(mixtures, np.ndarray) else read_mixtures(mixtures, fit.domains))
    h = np.asarray(h, dtype=float)
    shown = sorted(int(m) for m in prediction["mixture"].unique())
    if shown and shown[-1] >= len(h):
        raise ValueError(f"the prediction has mixture {shown[-1]}, but only {len(h)} mixtures were given")

    available = list(dict.fromkeys(prediction["target"]))
    if targets is None:
        targets = [t for t in available if t != "weighted"] or available
    else:
        targets = list(targets)
        missing = [t for t in targets if t not in available]
        if missing:
            raise ValueError(f"the prediction has no target {', '.join(missing)}; it has {', '.join(available)}")
    if not targets:
        raise ValueError("no targets to draw")
    total = len(targets)
    targets = targets[:MAX_PANELS]  # beyond eight panels nothing is readable; the title says so

    # The runs behind each predicted mixture: the same for every target, so found once. A run near several
    # mixtures is drawn once, in grey (in one mixture's colour it would claim to belong to that mixture).
    near: dict[str, list[int]] = {}
    sizes: dict[str, float] = {}
    for m in shown:
        for r in nearest_runs(fit, h[m], model_size, nearest).itertuples():
            near.setdefault(r.run, []).append(m)
            sizes[r.run] = r.model_size
    colour = {m: f"C{i % 10}" for i, m in enumerate(shown)}
    frame = fit.table.frame
    run_ids = frame["run"].astype(str)

    fig = fig if fig is not None else Figure()
    # One cell more than targets: the legend gets its own, so it never hides a curve.
    cells = len(targets) + 1
    cols = max(1, min(4, cells))
    rows = int(np.ceil(cells / cols))
    fig.set_size_inches(3.8 * cols, 3.0 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[len(targets) :]:
        ax.axis("off")
    level = int(round(100 * float(prediction["interval"].iloc[0]))) if "interval" in prediction else 90

    for ax, t in zip(axes, targets):
        for i, m in enumerate(shown):
            g = prediction[(prediction["mixture"] == m) & (prediction["target"] == t)].sort_values("n_tokens")
            x = g["n_tokens"].to_numpy(dtype=float)
            first = i == 0
            ax.fill_between(
                x,
                g["pred_lower"],
                g["pred_upper"],
                color=colour[m],
                alpha=0.12,
                lw=0,
                label=f"{level}% predictive (one run)" if first else None,
            )
            ax.fill_between(
                x,
                g["lower"],
                g["upper"],
                color=colour[m],
                alpha=0.3,
                lw=0,
                label=f"{level}% credible (expected loss)" if first else None,
            )
            ax.plot(x, g["mean"], color=colour[m], lw=1.6, label=_mixture_label(m, h[m], fit.domains))
        column = f"{t}_loss"
        if column in frame.columns:  # 'weighted' and targets the fit did not see have no observed curve
            for j, (run, ms) in enumerate(near.items()):
                obs = frame[run_ids == run].sort_values("n_tokens")
                y = obs[column].to_numpy(dtype=float)
                keep = np.isfinite(y)  # masked checkpoints stay out of the line
                which = ", ".join(map(str, ms))
                ax.plot(
                    obs["n_tokens"].to_numpy(dtype=float)[keep],
                    y[keep],
                    marker=_MARKERS[j % len(_MARKERS)],
                    ms=3.5,
                    lw=0.8,
                    ls="--",
                    color=colour[ms[0]] if len(ms) == 1 else "0.4",
                    alpha=0.8,
                    label=f"run {run} (N={sizes[run]:.3g}), near mixture{'s' if len(ms) > 1 else ''} {which}",
                )
        ax.set_xscale("log")
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("tokens seen (n_tokens)", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[len(targets)].legend(handles, labels, fontsize=7, frameon=False, loc="center left")

    term = "schedule term fitted" if fit.checkpoints else "final-loss curve: fit has no schedule term"
    title = f"Predicted training curve of a run of N={model_size:.3g} trained to D={tokens:.3g} ({term})"
    if total > len(targets):
        title += f"\nfirst {len(targets)} of {total} targets"
    if near:
        title += f"\ndashed: observed, the {nearest} fitted runs nearest each mixture (TV distance + |log N/N_run|)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
