"""Helpers for the checks tests: simulated sweeps and Fits built without NUTS.

A "point fit" holds the true parameters as every posterior draw. Its
posterior predictive is then exactly the simulation's distribution (law x
run offset x checkpoint noise), so coverage and PIT have known answers
without running a sampler.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmix.data import read_runs
from bayesmix.design import reference_scale
from bayesmix.diagnostics import Diagnostics
from bayesmix.fit import Fit
from bayesmix.inference import SamplerConfig
from bayesmix.laws import get_law
from bayesmix.model import all_params
from bayesmix.simulate import simulate_losses, sweep_design

DOMAINS = ("web", "code", "books")
SIZES = (5e7, 1.25e8, 3.5e8)


def additive_truth(targets=DOMAINS, sigma: float = 0.01, tau: float = 0.002) -> dict[str, np.ndarray]:
    """Additive-law parameters with strong cross-domain mixture effects (the own-weight law cannot fit them).

    Written in the paper's numbers and converted to the law's sampled
    coordinates by ``from_paper_parameters``, so the tests do not depend on
    how the law parameterises itself.
    """
    from bayesmix.laws.additive import from_paper_parameters

    K, T = len(DOMAINS), len(targets)
    rng = np.random.default_rng(7)
    p = from_paper_parameters(
        E=np.linspace(1.6, 2.2, T),
        A=np.full(T, 0.4),
        alpha=np.full(T, 0.32),
        B=np.full(T, 0.3),
        beta=np.full(T, 0.28),
        w=rng.uniform(0.2, 0.8, (T, K)),
        gamma=rng.uniform(0.3, 0.9, (T, K)),
    )
    return {**p, "sigma": np.full(T, sigma), "tau_run": np.full(T, tau)}


def simulated_frame(
    truth=None,
    targets=DOMAINS,
    mixtures: int = 8,
    checkpoints: int = 5,
    sizes=SIZES,
    seed: int = 0,
    law: str = "additive",
    like=None,
) -> pd.DataFrame:
    """A small sweep simulated from a law with known parameters.

    ``like``: a Fit whose reference scales (N0, D0) the law is written around;
    needed to simulate held-out sizes consistently with that fit.
    """
    truth = truth or additive_truth(targets)
    design = sweep_design(DOMAINS, sizes, mixtures, checkpoints, seed=seed, concentration=2.0)
    scales = {"N0": like.N0, "D0": like.D0} if like is not None else {}
    return simulate_losses(get_law(law), design, targets, truth, seed=seed + 1, **scales)


def point_fit(
    frame: pd.DataFrame,
    truth: dict,
    law: str = "additive",
    targets=DOMAINS,
    draws: int = 1000,
    chains: int = 2,
    scale: dict | None = None,
    jitter: float = 0.0,
    seed: int = 0,
) -> Fit:
    """A Fit whose every draw is ``truth`` (entries of ``scale`` multiply a parameter, to misspecify it).

    ``jitter`` > 0 multiplies each draw of every non-simplex parameter by
    exp(jitter * N(0, 1)): a posterior with some spread (PSIS needs one).
    """
    table = read_runs(frame, quiet=True)
    lw = get_law(law)
    spec = all_params(lw, table.domains, targets)
    params = {k: np.asarray(v, dtype=float) * (scale or {}).get(k, 1.0) for k, v in truth.items()}
    drawn = {k: np.broadcast_to(v, (chains, draws) + v.shape).copy() for k, v in params.items()}
    rng = np.random.default_rng(seed)
    for k, v in drawn.items():
        if jitter and spec[k].prior.family != "Dirichlet":
            drawn[k] = v * np.exp(jitter * rng.standard_normal(v.shape))
    diag = Diagnostics(
        divergences=0, draws=chains * draws, max_tree_depth_hits=0, max_rhat=1.0, min_ess_bulk=1e4, min_ess_tail=1e4
    )
    return Fit(
        law=lw,
        table=table,
        targets=tuple(targets),
        priors={k: p.prior for k, p in spec.items()},
        config=SamplerConfig(chains=chains, draws=draws, warmup=0),
        N0=reference_scale(table.model_size),
        D0=reference_scale(table.n_tokens),
        sizes=np.unique(table.model_size),
        draws=drawn,
        sample_stats={"diverging": np.zeros((chains, draws), bool)},
        diagnostics=diag,
    )
