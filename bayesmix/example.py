"""The built-in example: a simulated sweep, fitted and extrapolated.

The data are SIMULATED by bayesmix itself from the additive law with
literature-scale parameters (Chinchilla-like exponents alpha = 0.34,
beta = 0.28, mixture exponents 0.2-0.6, losses of 1-3 nats, 0.4% checkpoint
noise and 0.3% run offsets), logged like a real sweep: five checkpoints along
each run's learning-rate schedule, sitting above the run's final loss until
the schedule ends (bayesmix.schedule), with half the mixtures trained 2.5x
longer. Nothing here is real training data; the point is that the truth is
known, so the printed table can show whether the credible intervals at a 3x
larger scale contain it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .data import read_runs
from .fit import Fit, fit
from .laws import get_law
from .laws.additive import from_paper_parameters
from .simulate import run_ends, simulate_losses, sweep_design

DOMAINS = ("web", "code", "books", "math")
SIZES = (5e7, 1.25e8, 3.5e8)
TARGET_SIZE, TARGET_TOKENS = 1.2e9, 2.4e10


def true_parameters() -> dict[str, np.ndarray]:
    """The additive law's parameters the example simulates from (per target = per domain), in the law's sampled
    coordinates.

    In the paper's terms: E = (1.9, 0.7, 2.1, 1.1) (code and math are more
    predictable), A = 0.35 and B = 0.30 at the reference scale, alpha and beta
    near Chinchilla's 0.34 and 0.28, mixture weights w = 0.08 (0.68 for the
    target's own domain, which dominates its loss) and exponents 0.25 (0.55
    for the own domain).
    """
    K = T = len(DOMAINS)
    own = np.eye(K)
    p = from_paper_parameters(
        E=np.array([1.9, 0.7, 2.1, 1.1]),
        A=np.full(T, 0.35),
        alpha=np.array([0.34, 0.30, 0.36, 0.32]),
        B=np.full(T, 0.30),
        beta=np.array([0.28, 0.30, 0.26, 0.29]),
        w=0.08 + 0.6 * own,
        gamma=0.25 + 0.3 * own,
    )
    # A checkpoint at 10% of its run sits 6-9% above the run's final loss, 1-2% at 40% (SlimPajama: 19-56% and
    # 4-10%); runs' own slopes differ by 0.4% per e-fold of tokens.
    schedule = np.array([[0.03, 0.04, 0.01], [0.02, 0.05, 0.02], [0.04, 0.03, 0.01], [0.03, 0.03, 0.015]])
    noise = {"sigma": np.full(T, 0.004), "tau_run": np.full(T, 0.003), "kappa_run": np.full(T, 0.004)}
    return {**p, **noise, "schedule": schedule}


def example_table(seed: int = 0) -> pd.DataFrame:
    """The simulated sweep: 12 mixtures x 3 sizes x 5 checkpoints at 20-100% of each run's schedule; every other
    mixture trains 50 tokens per parameter instead of 20 (a law learns its token exponent from run ends at
    several token counts per size)."""
    design = sweep_design(DOMAINS, SIZES, mixtures_per_size=12, checkpoints=5, tokens_per_param=20, seed=seed)
    longer = design.run.str.extract(r"m(\d+)$")[0].astype(int) % 2 == 1
    design.loc[longer, "n_tokens"] *= 2.5
    return simulate_losses(get_law("additive"), design, DOMAINS, true_parameters(), seed=seed + 1)


def evaluation_mixtures(seed: int = 0) -> np.ndarray:
    """Five mixtures to predict at the larger scale: uniform, one heavy in each domain."""
    K = len(DOMAINS)
    heavy = 0.1 + 0.6 * np.eye(K)
    return np.vstack([np.full(K, 1 / K), heavy / heavy.sum(1, keepdims=True)])


def true_loss(h: np.ndarray, N: float, D: float) -> np.ndarray:
    """(M, T) the noise-free loss the simulation's law gives."""
    from .design import make_inputs, reference_point
    from .laws.base import own_index

    table = example_table()
    # the reference point the simulation used: the centre of the runs' ends (the checkpoint model's law)
    N0, D0 = reference_point(table.model_size, run_ends(table))
    x = make_inputs(h, np.arange(len(h)), np.full(len(h), N), np.full(len(h), D), N0, D0, own_index(DOMAINS, DOMAINS))
    p = {k: v for k, v in true_parameters().items()}
    return np.asarray(get_law("additive").mean(p, x))


@dataclass
class ExampleResult:
    """What `bayesmix example` produced."""

    fit: Fit
    table: pd.DataFrame  # predictions at the larger scale beside the simulated truth
    model_path: Path
    figures: list[Path]


def run_example(
    out_dir: str | Path = "models",
    figure_dir: str | Path = "example",
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    progress: bool | None = None,
) -> ExampleResult:
    """Simulate, fit, predict at 1.2B parameters / 24B tokens, compare with the truth, save model and figures."""
    runs = read_runs(example_table(seed))
    result = fit(runs, "additive", chains=chains, warmup=warmup, draws=draws, seed=seed, progress=progress)
    h = evaluation_mixtures()
    pred = result.predict(h, TARGET_SIZE, TARGET_TOKENS, interval=0.9, seed=seed)
    truth = true_loss(h, TARGET_SIZE, TARGET_TOKENS)
    pred["truth"] = truth.ravel()
    pred["inside"] = (pred.truth >= pred.lower) & (pred.truth <= pred.upper)
    model_path = Path(out_dir) / "example-additive.nc"
    result.save(model_path)
    figures = save_figures(result, pred, Path(figure_dir))
    return ExampleResult(result, pred, model_path, figures)


def save_figures(result: Fit, pred: pd.DataFrame, folder: Path) -> list[Path]:
    """Two PNGs: predictions with intervals vs truth at the larger scale, and fitted vs observed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    targets = list(result.targets)
    fig, axes = plt.subplots(1, len(targets), figsize=(3.2 * len(targets), 3.2), sharey=False)
    labels = ["uniform"] + [f"{d}-heavy" for d in DOMAINS]
    for ax, t in zip(np.atleast_1d(axes), targets):
        sub = pred[pred.target == t]
        y = np.arange(len(sub))
        ax.errorbar(
            sub["median"],
            y,
            xerr=[sub["median"] - sub["lower"], sub["upper"] - sub["median"]],
            fmt="o",
            color="C0",
            label="90% credible",
        )
        ax.hlines(y, sub.pred_lower, sub.pred_upper, color="C0", alpha=0.3, lw=6, label="90% predictive")
        ax.plot(sub.truth, y, "x", color="C3", ms=9, mew=2, label="simulated truth")
        ax.set_yticks(y, labels if t == targets[0] else [""] * len(y))
        ax.set_title(f"{t} loss")
        ax.set_xlabel("nats")
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"Simulated example: predictions at {TARGET_SIZE:.2g} params / {TARGET_TOKENS:.2g} tokens (3.4x beyond the "
        "largest fitted size)"
    )
    fig.tight_layout()
    paths.append(folder / "example-predictions.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    table = result.predict_table(result.table)
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for i, t in enumerate(targets):
        sub = table[table.target == t]
        ax.errorbar(
            sub.observed,
            sub["median"],
            yerr=[sub["median"] - sub.pred_lower, sub.pred_upper - sub["median"]],
            fmt=".",
            ms=3,
            alpha=0.5,
            color=f"C{i}",
            label=t,
        )
    lo, hi = table.observed.min(), table.observed.max()
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("observed loss (simulated)")
    ax.set_ylabel("posterior predictive median and 90% interval")
    ax.set_title("Fitted sweep: predicted vs observed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(folder / "example-fit.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
