"""Simulated sweeps: data drawn from a law with known parameters.

Used by the built-in example, the recovery and calibration tests, and
anywhere a ground truth is needed. Simulated data pass through the same
observation model the fit assumes (log-normal checkpoint noise around the law,
plus a per-run offset), so a correct fit must recover the truth.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import numpy as np
import pandas as pd

from .design import make_inputs, reference_point
from .laws import Law
from .laws.base import own_index
from .model import all_params, param_shapes
from .schedule import curve as schedule_curve


def sweep_design(
    domains: Sequence[str],
    sizes: Sequence[float],
    mixtures_per_size: int,
    checkpoints: int,
    tokens_per_param: float = 20.0,
    seed: int = 0,
    concentration: float = 1.0,
    shared_mixtures: bool = True,
) -> pd.DataFrame:
    """A sweep's design: Dirichlet mixtures, model sizes, and checkpoints up to ``tokens_per_param`` x N.

    Returns a run table without losses (columns weight_<d>, model_size, n_tokens, run).
    With ``shared_mixtures`` every size trains the same mixtures (as real sweeps do).
    """
    rng = np.random.default_rng(seed)
    K = len(domains)
    base = rng.dirichlet(np.full(K, concentration), size=mixtures_per_size)
    rows = []
    for s, N in enumerate(sizes):
        mix = base if shared_mixtures else rng.dirichlet(np.full(K, concentration), size=mixtures_per_size)
        for m, h in enumerate(mix):
            for c in range(1, checkpoints + 1):
                D = tokens_per_param * N * c / checkpoints
                rows.append(
                    {
                        **{f"weight_{d}": w for d, w in zip(domains, h)},
                        "model_size": float(N),
                        "n_tokens": float(D),
                        "run": f"s{s}m{m}",
                    }
                )
    return pd.DataFrame(rows)


def run_ends(design: pd.DataFrame) -> np.ndarray:
    """(n,) the tokens at which each row's run ends: ``run_tokens``, default the run's last checkpoint."""
    if "run_tokens" in design:
        return design.run_tokens.to_numpy(dtype=float)
    return design.groupby("run").n_tokens.transform("max").to_numpy(dtype=float)


def simulate_losses(
    law: Law,
    design: pd.DataFrame,
    targets: Sequence[str],
    params: Mapping[str, np.ndarray],
    N0: float | None = None,
    D0: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Add ``<target>_loss`` columns drawn from the law and the shared observation model.

    ``params`` holds the law's parameters plus ``sigma`` and (optionally)
    ``tau_run``, with the shapes the law declares; with ``schedule`` (T, 3)
    (and optionally ``schedule_size``, ``kappa_run``, ``noise_early``) the
    rows follow the checkpoint model of :mod:`bayesmix.schedule`: the law at
    each run's end (``run_tokens``, default the run's last checkpoint) plus
    the run's curve, slope and early noise. Returns a new DataFrame.
    """
    domains = [c[len("weight_") :] for c in design.columns if c.startswith("weight_")]
    h = design[[f"weight_{d}" for d in domains]].to_numpy()
    tokens = design.n_tokens.to_numpy(dtype=float)
    end = run_ends(design)
    curve = "schedule" in params  # the checkpoint model: the law at each run's end plus the run's curve
    N0_, D0_ = reference_point(design.model_size.to_numpy(), end if curve else tokens)  # as bayesmix.fit's
    N0, D0 = N0 or N0_, D0 or D0_
    x = make_inputs(
        h,
        np.arange(len(h)),
        design.model_size.to_numpy(),
        end if curve else tokens,
        N0,
        D0,
        own_index(domains, targets),
    )
    mu = np.asarray(law.mean({k: np.asarray(v) for k, v in params.items()}, x))
    rng = np.random.default_rng(seed)
    runs, run_idx = np.unique(design.run.to_numpy(), return_inverse=True)
    tau = np.asarray(params.get("tau_run", np.zeros(len(targets))))
    offsets = tau * rng.standard_normal((len(runs), len(targets)))
    frac = tokens / end
    sigma = np.asarray(params["sigma"]) * np.sqrt(
        1.0 + (np.asarray(params.get("noise_early", 0.0)) * np.log(frac)[:, None]) ** 2
    )
    log_y = np.log(mu) + offsets[run_idx] + sigma * rng.standard_normal(mu.shape)
    if curve:
        log_y = log_y + schedule_curve(
            frac, params["schedule"], params.get("schedule_size"), design.model_size.to_numpy(float), N0
        )
    if "kappa_run" in params:
        slopes = np.asarray(params["kappa_run"]) * rng.standard_normal((len(runs), len(targets)))
        log_y = log_y + slopes[run_idx] * np.log(frac)[:, None]
    y = np.exp(log_y)
    out = design.copy()
    for j, t in enumerate(targets):
        out[f"{t}_loss"] = y[:, j]
    return out


def draw_from_prior(
    law: Law, domains: Sequence[str], targets: Sequence[str], priors=None, seed: int = 0, checkpoints: bool = False
) -> dict[str, np.ndarray]:
    """One draw of every parameter (law and noise, and the checkpoint model's with ``checkpoints``) from the
    priors."""
    spec = all_params(law, domains, targets, checkpoints)
    shapes = param_shapes(spec, domains, targets)
    priors = priors or {k: p.prior for k, p in spec.items()}
    keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes))
    return {
        name: np.asarray(priors[name].to_numpyro(shape).sample(k)) for k, (name, shape) in zip(keys, shapes.items())
    }
