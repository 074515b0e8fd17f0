"""Figures of a :class:`bayesmix.decide.Recommendation`.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot), so
they never touch a global backend: save them with ``fig.savefig`` (Agg) or
show them in a notebook.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

_REC = "#1f77b4"
_BASE = "#999999"


def _short(text: str, width: int = 60) -> str:
    """An objective's description cut to fit a title."""
    return text if len(text) <= width else text[: width - 3].rsplit(" ", 1)[0] + " ..."


def plot_weights(rec) -> Figure:
    """Bars: the recommended weight per domain, the posterior interval of each draw's optimal weight, the baseline."""
    tab = rec.table
    K = len(tab)
    fig = Figure(figsize=(max(6.0, 0.9 * K + 2), 4.0))
    ax = fig.add_subplot()
    x = np.arange(K)
    width = 0.38 if rec.baseline is not None else 0.6
    shift = width / 2 if rec.baseline is not None else 0.0
    ax.bar(x - shift, tab.recommended, width, color=_REC, label="recommended")
    err = np.vstack(
        [np.maximum(tab.recommended - tab.optimum_lower, 0), np.maximum(tab.optimum_upper - tab.recommended, 0)]
    )
    ax.errorbar(
        x - shift,
        tab.recommended,
        yerr=err,
        fmt="none",
        ecolor="black",
        capsize=4,
        lw=1.2,
        label=f"{int(round(rec.interval * 100))}% interval of the optimal weight",
    )
    ax.plot(x - shift, tab.optimum_median, "k_", ms=12, mew=1.5)
    if rec.baseline is not None:
        ax.bar(x + shift, tab.baseline, width, color=_BASE, label="baseline")
    floor_label, cap_label = "floor", "cap"
    for j, r in tab.iterrows():
        if r["cap"] < 1:
            ax.plot([j - 0.45, j + 0.45], [r["cap"]] * 2, color="tab:red", lw=1, ls="--", label=cap_label)
            cap_label = None
        if r["floor"] > 0:
            ax.plot([j - 0.45, j + 0.45], [r["floor"]] * 2, color="tab:green", lw=1, ls="--", label=floor_label)
            floor_label = None
    ax.set_xticks(x, tab.domain, rotation=30, ha="right")
    ax.set_ylabel("weight")
    ax.set_ylim(0, None)
    m = rec.metrics
    title = f"{rec.risk.label} of {_short(rec.objective)} at N={rec.model_size:.3g}, D={rec.tokens:.3g}"
    if rec.baseline is not None:
        title += f"\nP(beats baseline) = {m.p_beats_baseline:.2f}, expected regret {m.expected_regret:.1e}"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_losses(rec) -> Figure:
    """Left: the target loss over draws at the recommendation and the baseline. Right: their paired difference."""
    L = rec.objective_draws
    B = rec.baseline_objective_draws
    fig = Figure(figsize=(10.0 if B is not None else 5.5, 3.8))
    ax = fig.add_subplot(1, 2 if B is not None else 1, 1)
    both = L if B is None else np.concatenate([L, B])
    bins = np.linspace(*np.quantile(both, [0.001, 0.999]), 50)
    ax.hist(L, bins=bins, color=_REC, alpha=0.6, label="recommended", density=True)
    if B is not None:
        ax.hist(B, bins=bins, color=_BASE, alpha=0.6, label="baseline", density=True)
    ax.axvline(L.mean(), color=_REC, lw=1.5)
    if B is not None:
        ax.axvline(B.mean(), color="#555555", lw=1.5)
    ax.set_xlabel(f"target loss ({_short(rec.objective)})")
    ax.set_ylabel("posterior density")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("expected loss at the target scale, over draws", fontsize=10)
    if B is not None:
        ax2 = fig.add_subplot(1, 2, 2)
        d = B - L
        ax2.hist(d, bins=50, color="tab:purple", alpha=0.7, density=True)
        ax2.axvline(0, color="black", lw=1)
        ax2.axvline(d.mean(), color="tab:purple", lw=1.5)
        ax2.set_xlabel("baseline loss - recommended loss (same draw)")
        ax2.set_title(f"P(recommended better) = {np.mean(d > 0):.3f}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_path(rec) -> Figure:
    """Top: each domain's recommended weight against model size, fitted scales to the target. Bottom: its loss."""
    p = rec.path
    fig = Figure(figsize=(7.0, 6.0))
    ax = fig.add_subplot(2, 1, 1)
    for d in rec.domains:
        ax.plot(p.model_size, p[d], marker="o", label=d)
    ax.set_xscale("log")
    ax.set_ylabel("recommended weight")
    ax.set_title("recommended mixture from the largest fitted scale to the target", fontsize=10)
    ax.legend(fontsize=7, frameon=False, ncol=2, loc="best")
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
    ax2.fill_between(
        p.model_size, p.lower, p.upper, color=_REC, alpha=0.25, label=f"{int(round(rec.interval * 100))}% interval"
    )
    ax2.plot(p.model_size, p.expected_loss, color=_REC, marker="o", label="expected loss")
    ax2.set_ylabel("target loss")
    ax2.set_xlabel("model size N (tokens D move geometrically with it)")
    for a in (ax, ax2):
        fitted = p.model_size[~p.extrapolated]
        if len(fitted):
            a.axvline(fitted.max(), color="gray", ls=":", lw=1)
    ax2.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
