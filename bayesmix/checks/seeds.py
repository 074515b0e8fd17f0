"""Refit with several seeds: do independent runs of the sampler find the same posterior?

A posterior with two modes can look clean from one seed (every chain in one
mode). Refitting with other seeds and comparing the posterior means, in units
of the posterior sd, shows it. The refits are independent, so they run on the
current executor (:mod:`bayesmix.executor`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..executor import current as current_executor

# Posterior means further apart than this many posterior sds are not Monte Carlo noise at the default draws.
DISAGREEMENT = 0.5


def _fit_seed(task: tuple):
    """One seed's fit (a task of an executor)."""
    from ..fit import fit

    runs, law, seed, kwargs = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each fit's warnings; the comparison is the point here
        return fit(runs, law, seed=seed, **kwargs)


def refit_seeds(
    runs, law: str = "additive", seeds: Sequence[int] = (0, 1, 2), **fit_kwargs
) -> tuple[list, pd.DataFrame]:
    """Fit ``law`` once per seed; return (the fits, a table of where they disagree).

    The table has one row per scalar parameter: its posterior mean under each
    seed (``mean_seed<k>``), the mean posterior sd, and ``disagreement``, the
    spread of the means over that sd; ``differs`` marks spreads over
    :data:`DISAGREEMENT`. Sorted with the largest disagreement first;
    ``table.attrs["verdict"]`` says in words whether the seeds agree.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"give two or more different seeds; got {seeds}")
    tasks = [(runs, law, s, fit_kwargs) for s in seeds]
    fits = current_executor().map(_fit_seed, tasks, labels=[f"seed {s}" for s in seeds])
    return fits, seed_table([f.summary() for f in fits], seeds)


def seed_table(summaries: Sequence[pd.DataFrame], seeds: Sequence[int]) -> pd.DataFrame:
    """The comparison :func:`refit_seeds` returns, from each seed's ``Fit.summary()`` (``mean`` and ``sd``)."""
    table = pd.DataFrame({f"mean_seed{s}": sm["mean"] for s, sm in zip(seeds, summaries)})
    sd = pd.concat([sm["sd"] for sm in summaries], axis=1).mean(axis=1)
    means = table.to_numpy()
    table["sd"] = sd
    table["disagreement"] = (means.max(axis=1) - means.min(axis=1)) / np.maximum(sd.to_numpy(), 1e-300)
    table["differs"] = table["disagreement"] > DISAGREEMENT
    table = table.sort_values("disagreement", ascending=False)
    n = int(table["differs"].sum())
    table.attrs["verdict"] = (
        f"the {len(seeds)} seeds agree: every posterior mean within {DISAGREEMENT} posterior sd"
        if n == 0
        else f"the seeds disagree on {n} parameters (worst {table.index[0]}: means {table.iloc[0]['disagreement']:.1f} "
        "sd apart): the posterior may have several modes, or the chains mix too slowly; compare the fits"
    )
    return table
