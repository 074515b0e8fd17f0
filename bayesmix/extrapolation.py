"""How far to trust a law beyond the scales it was fitted on.

Inside the fitted range the posterior says how well the law is pinned down;
beyond it, the error that matters is the law's own bias, which no amount of
data inside the range reveals (on SlimPajama the 2.718B predictions were off
by ~1% while the fitted noise was ~0.8%, so intervals without a bias term
covered 72-75% of the points instead of 90%). bayesmix predicts beyond the
range with a log-scale bias of ``extrapolation_sd`` per e-fold past the
largest fitted model size and token count, and measures that number on the
sweep itself, the way it will be used: fit the law without the largest model
size, predict that size, and see how far off the law was.

The measurement uses the posterior mode (it needs the law's bias, not its
uncertainty, and a mode is seconds where a second NUTS run is minutes). Per
target, the squared error of each held-out run's mean log loss is, on
average, bias^2 + tau_run^2 + sigma^2 / checkpoints; subtracting the noise
leaves the bias, which is divided by the distance in e-folds. One held-out
size gives one look at the bias, so the number is rough; it is floored at
``FLOOR`` so that a lucky hold-out does not promise more than a law can give.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .data import RunTable
from .laws.base import Law
from .mode import fit_mode
from .model import Observed
from .posterior import efolds_beyond
from .priors import Prior

log = logging.getLogger("bayesmix")

DEFAULT = 0.01  # used when the sweep has too few model sizes to hold one out
FLOOR = 0.005
MIN_SIZES = 3  # fit on at least two sizes after holding one out


def learn_extrapolation_sd(
    table: RunTable,
    law: Law,
    targets: Sequence[str],
    priors: Mapping[str, Prior],
    N0: float,
    D0: float,
    seed: int = 0,
    like: Observed | None = None,
) -> tuple[np.ndarray, str]:
    """Per-target extrapolation_sd measured by holding out the largest model size.

    Returns ``(sd, note)``: ``sd`` has one value per target (log scale, per
    e-fold), ``note`` says how it was obtained (for the user and the saved
    model). ``like``: the full table's Observed, whose padded shapes the
    held-out fit reuses (no recompilation). With fewer than three model sizes nothing can be held out and
    every target gets ``DEFAULT``.
    """
    sizes = np.unique(table.model_size)
    T = len(targets)
    if len(sizes) < MIN_SIZES:
        return np.full(T, DEFAULT), (
            f"extrapolation_sd: {DEFAULT:g} per e-fold (the default: {len(sizes)} model sizes "
            f"leave none to hold out; {MIN_SIZES} are needed to measure it)"
        )
    largest = sizes[-1]
    train = table.subset(table.model_size < largest)
    held = table.subset(table.model_size == largest)
    checkpoints = "schedule" in priors
    mode = fit_mode(
        train, law, targets=targets, priors=priors, seed=seed, N0=N0, D0=D0, like=like, checkpoints=checkpoints
    )
    p = {k: v[0] for k, v in mode.draws.items()}
    log_mu = mode.log_means(held.weights, held.model_size, held.n_tokens, held.run_tokens)[0]
    y = held.frame[[f"{t}_loss" for t in targets]].to_numpy(dtype=float)
    resid = pd.DataFrame(np.log(y) - log_mu, columns=list(targets))
    by_run = resid.groupby(held.run)
    run_mean, run_count = by_run.mean(), by_run.count()
    far = (
        pd.Series(efolds_beyond(held.model_size, held.n_tokens, train.model_size.max(), train.n_tokens.max()))
        .groupby(held.run)
        .mean()
    )

    sigma2, tau2 = np.asarray(p["sigma"]) ** 2, np.asarray(p.get("tau_run", np.zeros(T))) ** 2
    # A run's own slope moves its mean residual by kappa times its mean log fraction.
    mean_x = pd.Series(np.log(np.clip(held.token_fraction(), 1e-12, 1.0))).groupby(held.run).mean()
    slope2 = np.asarray(p.get("kappa_run", np.zeros(T))) ** 2 * float((mean_x**2).mean())
    excess = (run_mean**2).mean().to_numpy() - tau2 - slope2 - (sigma2 / run_count.clip(lower=1)).mean().to_numpy()
    sd = np.sqrt(np.clip(excess, 0.0, None)) / max(float(far.mean()), 1e-3)
    sd = np.maximum(np.nan_to_num(sd, nan=DEFAULT), FLOOR)
    note = (
        f"extrapolation_sd measured by fitting the mode without the largest size ({largest:.4g}, {held.n_runs} runs, "
        f"{far.mean():.2f} e-folds out): "
        + ", ".join(f"{t} {s:.3g}" for t, s in zip(targets, sd))
        + f" (floor {FLOOR:g})"
    )
    log.info(note)
    return sd, note
