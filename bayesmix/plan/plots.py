"""Figures for :class:`bayesmix.plan.NextRunPlan` (matplotlib, Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_scores(plan):
    """Against cost (log): expected reduction of Var(Q), and the per-cost score; colour = model size, batch circled."""
    t = plan.table
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = np.unique(t.model_size)
    cmap = plt.get_cmap("viridis", max(len(sizes), 2))
    for k, N in enumerate(sizes):
        s = t[t.model_size == N]
        for ax, col in zip(axes, ("var_reduction_frac", "score")):
            ax.scatter(
                s.cost,
                s[col] * (100 if col == "var_reduction_frac" else 1),
                s=12,
                alpha=0.6,
                color=cmap(k),
                label=f"N = {N:.3g}",
            )
    chosen = t[t.in_plan]
    for ax, col in zip(axes, ("var_reduction_frac", "score")):
        if len(chosen):
            ax.scatter(
                chosen.cost,
                chosen[col] * (100 if col == "var_reduction_frac" else 1),
                s=80,
                facecolors="none",
                edgecolors="red",
                linewidths=1.5,
                label="plan",
            )
        ax.set_xscale("log")
        ax.set_xlabel("cost" + (" (FLOPs, 6ND)" if (t.cost_source == "6ND").all() else ""))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("expected reduction of Var(Q) (%)")
    axes[1].set_ylabel("score: fraction of Var(Q) removed per unit cost")
    axes[1].set_yscale("log") if (t.score > 0).all() else None
    axes[0].legend(fontsize=8, loc="best")
    c = plan.context
    fig.suptitle(
        f"Q = {c['quantity_words']} at N = {c['model_size']:.3g}, D = {c['tokens']:.3g} ({c['method']} estimate)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_batch(plan):
    """Cumulative expected reduction of Var(Q) (and of regret) against cumulative cost along the greedy batch."""
    b = plan.batch
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(b):
        x = np.concatenate([[0.0], b.cum_cost.to_numpy()])
        ax.plot(
            x,
            100 * np.concatenate([[0.0], b.cum_var_reduction_frac.to_numpy()]),
            marker="o",
            label="Var(Q), greedy batch",
        )
        ax.plot(
            b.cum_cost,
            100 * b.alone_var_reduction_frac.cumsum(),
            ls="--",
            color="grey",
            label="sum of the runs' gains alone",
        )
        for _, r in b.iterrows():
            ax.annotate(
                str(r["name"]),
                (r.cum_cost, 100 * r.cum_var_reduction_frac),
                fontsize=7,
                xytext=(3, -10),
                textcoords="offset points",
            )
        ax2 = ax.twinx()
        ax2.plot(
            x,
            np.concatenate([[0.0], b.cum_regret_reduction.to_numpy()]),
            color="C1",
            marker="s",
            ms=4,
            label="expected regret reduction",
        )
        ax2.set_ylabel("expected regret reduction", color="C1")
    ax.set_xlabel("cumulative cost")
    ax.set_ylabel("expected reduction of Var(Q) (%)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title("the plan: each run conditioned on the ones before", fontsize=10)
    fig.tight_layout()
    return fig
