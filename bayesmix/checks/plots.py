"""Figures for the checks (matplotlib, Agg backend). ArviZ draws the PIT and Pareto-k plots;
the rest -- intervals across runs, residuals against scale and weights, validation folds --
are specific to scaling-law sweeps and drawn here."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int, cols: int, w: float, h: float):
    plt = _plt()
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


def intervals_figure(points: pd.DataFrame, title: str = "") -> "object":
    """Observed losses against the 50% and 90% posterior predictive intervals, one panel per target.

    Rows are sorted by predicted median; everything is shown relative to the
    median (in %), otherwise 1% intervals are invisible on a 2-4 nat axis.
    Observations outside the 90% interval are drawn in red.
    """
    targets = list(dict.fromkeys(points.target))
    fig, axes = _grid(len(targets), 4, 3.6, 2.8)
    for ax, t in zip(axes, targets):
        g = points[points.target == t].sort_values("median")
        x = np.arange(len(g))
        rel = lambda v: 100 * (np.asarray(v) / g["median"].to_numpy() - 1)  # noqa: E731
        ax.fill_between(x, rel(g.lower), rel(g.upper), color="C0", alpha=0.25, lw=0, label="90% predictive")
        if {"q25", "q75"} <= set(g.columns):
            ax.fill_between(x, rel(g.q25), rel(g.q75), color="C0", alpha=0.45, lw=0, label="50% predictive")
        out = (g.observed < g.lower) | (g.observed > g.upper)
        ax.plot(x[~out.to_numpy()], rel(g.observed)[~out.to_numpy()], ".", ms=2.5, color="k", label="observed")
        ax.plot(x[out.to_numpy()], rel(g.observed)[out.to_numpy()], ".", ms=4, color="C3", label="outside 90%")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_title(f"{t}: {100 * (1 - out.mean()):.0f}% inside 90%", fontsize=9)
        ax.set_xlabel("rows, by predicted loss", fontsize=8)
        ax.set_ylabel("% from predicted median", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6, loc="upper left")
    fig.suptitle(f"Posterior predictive intervals vs observed losses{': ' + title if title else ''}", fontsize=10)
    fig.tight_layout()
    return fig


def residuals_figure(points: pd.DataFrame, domains, title: str = "") -> "object":
    """Standardised residuals (log scale) against model size, tokens and each mixture weight, per target.

    A law that misses a trend in one of these shows a slope or a curve here
    (the black line is the binned mean); calibrated residuals scatter in +-2.
    """
    targets = list(dict.fromkeys(points.target))
    xs = [("model_size", "log10 model size", True), ("tokens", "log10 tokens", True)] + [
        (f"weight_{d}", f"weight {d}", False) for d in domains
    ]
    plt = _plt()
    fig, axes = plt.subplots(
        len(targets), len(xs), figsize=(1.9 * len(xs) + 0.6, 1.6 * len(targets) + 0.6), squeeze=False, sharey=True
    )
    for i, t in enumerate(targets):
        g = points[points.target == t]
        for j, (col, label, logx) in enumerate(xs):
            ax = axes[i, j]
            x = g[col].to_numpy(dtype=float)
            x = np.log10(x) if logx else x  # a linear axis in log10: readable ticks at any scale
            ax.plot(x, g.z, ".", ms=1.5, alpha=0.5, color=f"C{i % 10}")
            ax.axhspan(-2, 2, color="0.92", zorder=0)
            ax.axhline(0, color="0.5", lw=0.6)
            bx, by = _binned_mean(x, g.z.to_numpy())
            ax.plot(bx, by, "-", color="k", lw=1.2)
            ax.tick_params(labelsize=6)
            if i == len(targets) - 1:
                ax.set_xlabel(label, fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{t}\nz", fontsize=7)
    fig.suptitle(f"Standardised residuals against scale and mixture{': ' + title if title else ''}", fontsize=10)
    fig.tight_layout()
    return fig


def _binned_mean(x: np.ndarray, y: np.ndarray, bins: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Mean of y in quantile bins of x (distinct x values if there are few)."""
    ux = np.unique(x)
    if len(ux) <= bins:
        return ux, np.array([y[x == u].mean() for u in ux])
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    keep = [k for k in range(len(edges) - 1) if np.any(idx == k)]
    return np.array([x[idx == k].mean() for k in keep]), np.array([y[idx == k].mean() for k in keep])


def pit_figure(tree) -> "object":
    """ArviZ's PIT ECDF (difference from uniform, with 99% simultaneous bands), one panel per target."""
    import arviz_plots as azp

    _plt()
    n = len(tree["observed_data"].data_vars)
    pc = azp.plot_ppc_pit(
        tree,
        backend="matplotlib",
        col_wrap=min(4, n),
        figure_kwargs={"figsize": (3.4 * min(4, n), 2.6 * -(-n // 4) + 0.5)},
    )
    fig = pc.viz["figure"].item()
    fig.suptitle("PIT of observed losses under the posterior predictive (inside the band = calibrated)", fontsize=10)
    fig.tight_layout()
    return fig


def khat_figure(elpd_data, title: str = "") -> "object":
    """ArviZ's Pareto k plot of a leave-one-run-out PSIS step."""
    import arviz_plots as azp

    _plt()
    pc = azp.plot_khat(elpd_data, backend="matplotlib")
    fig = pc.viz["figure"].item()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def folds_figure(points: pd.DataFrame, title: str = "") -> "object":
    """Held-out observations against 90% predictive intervals, one panel per validation fold (all targets)."""
    folds = list(dict.fromkeys(points.fold))
    fig, axes = _grid(len(folds), 3, 4.2, 3.4)
    for ax, f in zip(axes, folds):
        g = points[points.fold == f]
        for i, t in enumerate(dict.fromkeys(g.target)):
            s = g[g.target == t]
            ax.errorbar(
                s.observed,
                s["median"],
                yerr=[s["median"] - s.lower, s.upper - s["median"]],
                fmt=".",
                ms=3,
                alpha=0.6,
                color=f"C{i % 10}",
                label=t,
            )
        lo, hi = g.observed.min(), g.observed.max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        inside = ((g.observed >= g.lower) & (g.observed <= g.upper)).mean()
        ax.set_title(f"{f}: {100 * inside:.0f}% inside 90%", fontsize=9)
        ax.set_xlabel("observed (held out)", fontsize=8)
        ax.set_ylabel("predicted, 90% interval", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"Held-out validation{': ' + title if title else ''}", fontsize=10)
    fig.tight_layout()
    return fig


def rank_histograms(ranks: pd.DataFrame, n_draws: int, bins: int = 10, title: str = "") -> "object":
    """SBC rank histograms, one panel per parameter, with the 99% band of a uniform histogram."""
    from scipy import stats

    names = list(dict.fromkeys(ranks.parameter))
    fig, axes = _grid(len(names), 6, 2.3, 1.9)
    n_rep = ranks.replication.nunique()
    lo, hi = stats.binom.ppf([0.005, 0.995], n_rep, 1 / bins)
    for ax, name in zip(axes, names):
        r = ranks.loc[ranks.parameter == name, "rank"].to_numpy()
        counts = np.bincount(np.minimum(bins - 1, (r * bins) // (n_draws + 1)).astype(int), minlength=bins)
        ax.axhspan(lo, hi, color="0.85")
        ax.axhline(n_rep / bins, color="0.5", lw=0.8)
        ax.bar(np.arange(bins), counts, width=0.9, color="C0")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    fig.suptitle(title or f"SBC rank histograms, {n_rep} replications (grey: 99% band if uniform)", fontsize=10)
    fig.tight_layout()
    return fig
