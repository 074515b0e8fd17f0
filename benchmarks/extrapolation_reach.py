"""How far can an extrapolation be trusted? Coverage against e-folds beyond the fitted range, on SlimPajama.

For each cutoff, fit the law (default settings: every checkpoint, the
learned extrapolation error) on the runs up to that model size, then predict
the final loss of every run of every larger size. Printed per (cutoff, size):
the e-folds beyond the fitted range, points, MRE %, coverage % of the 90%
predictive interval, its mean width % and interval score % (Gneiting and
Raftery 2007; lower is better) -- coverage always beside sharpness. The
figure (``--figure``) plots coverage and width against the e-folds.

Examples::

    python benchmarks/extrapolation_reach.py                       # cutoffs 680M and 1.235B, additive
    python benchmarks/extrapolation_reach.py --cutoffs 1.235e9 --quick

``BAYESMIX_BENCH_CACHE=DIR`` reuses fits of earlier runs (for re-scoring).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import pandas as pd

import bayesmix
from bayesmix.checks.ppc import interval_score
from bayesmix.data import read_runs
from bayesmix.posterior import Posterior

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"
INTERVAL = 0.9


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--law", default="additive")
    p.add_argument("--cutoffs", default="6.8e8,1.235e9", help="comma-separated largest fitted sizes")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="2 chains x 200 + 200 (a smoke run, not a measurement)")
    p.add_argument("--figure", default=None, help="write the coverage-against-e-folds figure here (PNG)")
    p.add_argument("--out", default=None, help="write the per-(cutoff, size) table to this CSV")
    args = p.parse_args(argv)
    if args.quick:
        args.chains, args.warmup, args.draws = 2, 200, 200
    return args


def fitted(table, cutoff: float, args) -> bayesmix.Fit:
    cache = os.environ.get("BAYESMIX_BENCH_CACHE")
    path = Path(cache) / f"reach-{args.law}-{cutoff:g}-{args.seed}-{args.chains}x{args.draws}.nc" if cache else None
    if path is not None and path.exists():
        print(f"  (fit for {cutoff:.4g} loaded from {path})")
        return bayesmix.load(path)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesmix.FitWarning)
        fit = bayesmix.fit(
            table.subset(table.model_size <= cutoff * 1.001),
            args.law,
            chains=args.chains,
            warmup=args.warmup,
            draws=args.draws,
            seed=args.seed,
            progress=False,
        )
    print(f"  fit up to {cutoff:.4g}: {time.perf_counter() - t0:.0f} s, {fit.diagnostics.divergences} divergences")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fit.save(path)
    return fit


def score(fit, table, cutoff: float, seed: int) -> pd.DataFrame:
    """One row per (larger size, target, run) final loss: far, the interval, its hit, width and score."""
    test = table.subset(table.model_size > cutoff * 1.001)
    test = test.subset(test.token_fraction() >= 1 - 1e-3)
    pt = fit.predict_table(test, interval=INTERVAL, seed=seed).dropna(subset=["observed"])
    far = Posterior.from_fit(fit).far(test.model_size, test.n_tokens)
    pt["far"] = far[pt.row.to_numpy()]
    pt["rel_err"] = (pt["mean"] - pt.observed).abs() / pt.observed
    pt["covered"] = (pt.observed >= pt.pred_lower) & (pt.observed <= pt.pred_upper)
    pt["width"] = (pt.pred_upper - pt.pred_lower) / pt["mean"]
    pt["iscore"] = interval_score(pt.pred_lower, pt.pred_upper, pt.observed, INTERVAL) / pt.observed
    pt["cutoff"] = cutoff
    return pt


def summarise(pt: pd.DataFrame) -> pd.DataFrame:
    out = pt.groupby(["cutoff", "model_size"]).agg(
        efolds=("far", "mean"),
        points=("rel_err", "size"),
        mre_pct=("rel_err", "mean"),
        cover90_pct=("covered", "mean"),
        width90_pct=("width", "mean"),
        iscore90_pct=("iscore", "mean"),
    )
    for c in ("mre_pct", "cover90_pct", "width90_pct", "iscore90_pct"):
        out[c] *= 100
    return out.round({"efolds": 2, "mre_pct": 2, "cover90_pct": 1, "width90_pct": 2, "iscore90_pct": 2})


def figure(summary: pd.DataFrame, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    for cutoff, g in summary.groupby(level=0):
        label = f"fitted up to {cutoff / 1e9:.3g}B"
        a.plot(g.efolds, g.cover90_pct, "o-", label=label)
        b.plot(g.efolds, g.width90_pct, "o-", label=label)
        for (_, size), r in g.iterrows():
            a.annotate(f"{size / 1e9:.2g}B", (r.efolds, r.cover90_pct), textcoords="offset points", xytext=(4, 4))
    a.axhspan(80, 97, color="0.9", zorder=0)
    a.axhline(90, color="0.5", lw=0.8, ls="--")
    a.set(xlabel="e-folds beyond the fitted range (size + tokens)", ylabel="90% interval coverage (%)", ylim=(0, 105))
    b.set(xlabel="e-folds beyond the fitted range (size + tokens)", ylabel="mean 90% interval width (% of loss)")
    a.legend(loc="lower left", fontsize=8)
    fig.suptitle("SlimPajama final losses of larger models: coverage beside width", fontsize=10)
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (the shared SlimPajama sweep)")
        return 0
    table = read_runs(DATA, quiet=True)
    cutoffs = [float(c) for c in args.cutoffs.split(",")]
    print(f"bayesmix {bayesmix.__version__}; law {args.law}; {args.chains} chains x {args.warmup} + {args.draws}")
    parts = []
    for c in cutoffs:
        fit = fitted(table, c, args)
        for note in fit.table.notes:
            if note.startswith("extrapolation_sd"):
                print("  " + note)
        parts.append(score(fit, table, c, args.seed))
    pt = pd.concat(parts, ignore_index=True)
    summary = summarise(pt)
    with pd.option_context("display.width", 200):
        print(summary.to_string())
        per_target = pt.groupby(["cutoff", "target"]).agg(cover90=("covered", "mean"), width90=("width", "mean"))
        print((100 * per_target).round(1).unstack("target").to_string())
    if args.out:
        summary.to_csv(args.out)
    if args.figure:
        figure(summary, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
