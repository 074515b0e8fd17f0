"""Posterior mode of each law on the SlimPajama scale split, and its error at 2.718B.

A quick check that separates "the law does not fit" from "NUTS does not
mix": the mode is found the way ``bayesmix.fit`` finds it (Newton-Krylov from
the prior median and prior draws), without sampling, and the law at the mode
predicts the 2.718B runs. Seconds to minutes per law.

    python benchmarks/mode_extrapolation.py --laws capacity,bimix
    python benchmarks/mode_extrapolation.py --laws capacity --seeds 0,1,2    # different starts: several modes?
    python benchmarks/mode_extrapolation.py --slopes    # loss slopes in tokens and in own weight, no fit

``--slopes`` prints, per domain and model size, how fast the loss falls in
log tokens (within a run, median over runs) and in log own weight (across
runs, at their last checkpoint): the capacity law's data term (D h_i)^-a_i
needs the second to be at least the first.

Prints, per law and seed, the MRE per target at 2.718B and the mode's values
of the law's exponents and ratios. Reads ../shared/data/dmsl_llm_slimpajama.csv
(skips with a message where it is absent).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesmix  # (importing bayesmix sets the XLA device count before jax starts)
from bayesmix import get_law
from bayesmix.data import read_runs
from bayesmix.posterior import Posterior

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dmsl_llm_slimpajama.csv"
FIT_MAX_SIZE, TEST_SIZE, MIN_FRACTION = 1.3e9, 2.718e9, 0.35  # as benchmarks/scale_extrapolation.py


def mode_fit(law, train, seed: int) -> tuple[Posterior, float]:
    """The law's posterior mode on ``train`` (default priors, every target) as a one-draw Posterior, and seconds."""
    t0 = time.perf_counter()
    mode = bayesmix.fit_mode(train, law, seed=seed)
    return mode, time.perf_counter() - t0


def mode_errors(law_name: str, train, test, seed: int) -> tuple[pd.Series, dict[str, np.ndarray], float]:
    """(MRE % per target at the test rows, the mode's parameters, seconds) for one law and start seed."""
    mode, seconds = mode_fit(get_law(law_name), train, seed)
    mu = mode.means(test.weights, test.model_size, test.n_tokens)[0]  # (n, T): the law at the mode, no bias
    y = test.frame[[f"{t}_loss" for t in mode.targets]].to_numpy(float)
    mre = pd.Series(np.nanmean(np.abs(mu - y) / y, axis=0) * 100, index=list(mode.targets))
    return mre, {k: v[0] for k, v in mode.draws.items()}, seconds


def loss_slopes(runs, min_fraction: float) -> pd.DataFrame:
    """Per domain and model size: -d log L / d log D within runs (median), -d log L / d log h_own across runs, ratio."""
    rows = []
    for N in np.unique(runs.model_size):
        sub = runs.subset(np.isclose(runs.model_size, N)).drop_early_checkpoints(min_fraction)
        f = sub.frame.assign(run=sub.run)
        for dom in sub.domains:
            y = f"{dom}_loss"
            per_run = []
            for _, run in f.dropna(subset=[y]).groupby("run"):
                if run.n_tokens.nunique() > 1:
                    per_run.append(-np.polyfit(np.log(run.n_tokens), np.log(run[y]), 1)[0])
            last = f.dropna(subset=[y]).sort_values("n_tokens").groupby("run").tail(1)
            weight = -np.polyfit(np.log(last[f"weight_{dom}"]), np.log(last[y]), 1)[0]
            rows.append({"model_size": N, "domain": dom, "token_slope": np.median(per_run), "weight_slope": weight})
    out = pd.DataFrame(rows)
    out["token_over_weight"] = out.token_slope / out.weight_slope
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--laws", default="capacity,bimix", help="comma-separated laws (default capacity,bimix)")
    ap.add_argument("--seeds", default="0", help="comma-separated start seeds of the mode search (default 0)")
    ap.add_argument(
        "--slopes",
        action="store_true",
        help="print the loss slopes in tokens and in own weight per domain and size, and exit",
    )
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(
            f"SKIPPED: the real data are not available: {DATA} is absent (it lives beside the repo, in ../shared/data)."
        )
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = read_runs(DATA, quiet=True)
    if args.slopes:
        sl = loss_slopes(runs.subset(runs.model_size < FIT_MAX_SIZE), MIN_FRACTION)
        print(
            f"-d log L / d log D within runs (median; checkpoints from {MIN_FRACTION:g} of each run) and "
            "-d log L / d log h_own across runs (last checkpoints):"
        )
        ratio = sl.pivot(index="domain", columns="model_size", values="token_over_weight")
        print(ratio.round(2).rename(columns=lambda n: f"{n:.3g}").to_string())
        print("\nmean over sizes:")
        print(sl.groupby("domain")[["token_slope", "weight_slope", "token_over_weight"]].mean().round(4).to_string())
        return 0
    train = runs.subset(runs.model_size < FIT_MAX_SIZE).drop_early_checkpoints(MIN_FRACTION)
    test = runs.subset(np.isclose(runs.model_size, TEST_SIZE))
    rows = []
    for name in args.laws.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            mre, p, seconds = mode_errors(name, train, test, seed)
            rows.append(
                mre.rename(f"{name} (seed {seed})")
                .round(2)
                .to_frame()
                .T.assign(mean=round(float(mre.mean()), 2), mode_s=round(seconds))
            )
            shown = {k: np.round(v, 3).tolist() for k, v in p.items() if v.ndim <= 1 and k not in ("L_ref", "tau_run")}
            print(f"{name}, seed {seed}: mode in {seconds:.0f} s; {shown}", flush=True)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nMRE % at 2.718B of the law at its posterior mode (fit on runs up to 1.235B):")
        print(pd.concat(rows).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
