"""Can we trust fits on SlimPajama? check, compare and validate on the real sweep.

Reads ../shared/data/dmsl_llm_slimpajama.csv (skips with a message where it
is absent). For each law: validate with the largest size (2.718B) held out --
the fold fit uses every run up to 1.235B -- then the posterior predictive
check of that fit on its own runs, and the leave-one-run-out comparison of
the laws' fold fits (same runs, so comparable). Prints every table and saves
figures, tables and the fitted models under benchmarks/results/checks_slimpajama/.

    python benchmarks/checks_slimpajama.py                       # additive and own_weight, every target
    python benchmarks/checks_slimpajama.py --targets c4,github --draws 300 --warmup 300
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import bayesmix
from bayesmix.checks import check, compare, validate

os.environ.setdefault("BAYESMIX_PROGRESS", "0")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"
OUT = Path(__file__).resolve().parent / "results" / "checks_slimpajama"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--laws", default="additive,own_weight")
    p.add_argument("--targets", help="comma-separated targets (default: all 8)")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--min-fraction",
        type=float,
        default=0.35,
        help="drop checkpoints before this share of their run's tokens, as "
        "benchmarks/scale_extrapolation.py does (default 0.35: earlier ones carry warm-up transients "
        "no law of (N, D) describes)",
    )
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if not DATA.exists():
        print(
            f"skipped: the real data are not available ({DATA} is absent; it lives beside the repo, in ../shared/data)"
        )
        return 0
    import pandas as pd

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = bayesmix.read_runs(DATA)
    targets = [t.strip() for t in args.targets.split(",")] if args.targets else None
    fits, summaries = {}, []
    for law in [s.strip() for s in args.laws.split(",")]:
        t0 = time.perf_counter()
        v = validate(
            runs,
            law,
            "largest-size",
            targets=targets,
            chains=args.chains,
            warmup=args.warmup,
            draws=args.draws,
            seed=args.seed,
            progress=False,
            min_fraction=args.min_fraction,
        )
        f = v.fits[0]
        fits[law] = f
        f.save(out / f"slimpajama-le1.2B-{law}.nc")
        print(
            f"\n== {law}: fold fit on {f.table.n_runs} runs up to 1.235B in "
            f"{f.timing.get('total_seconds', 0):.0f} s; {str(f.diagnostics).splitlines()[0]}"
        )
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print("held out 2.718B:")
            print(v.folds.drop(columns=["description"]).round(4).to_string(index=False))
            print(v.extrapolation.round(4).to_string(index=False))
        print(v.advice())
        v.points.to_csv(out / f"validate-{law}-points.csv", index=False)
        c = check(f)
        c.save(out / f"check-{law}")
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print("posterior predictive check on the fitted runs (coverage, MRE, bias as fractions):")
            print(c.table.round(4).to_string())
            print("worst-fit runs:")
            print(c.worst.head(5).round(4).to_string(index=False))
        row = {
            "law": law,
            "fit_seconds": f.timing.get("total_seconds"),
            "fit_ok": f.diagnostics.ok,
            "heldout_mre": v.folds.mre[0],
            "heldout_cov90": v.folds.coverage_90[0],
            "heldout_lpd": v.folds.lpd[0],
            "extrapolation_sd": v.sd_text(),
            "extrapolation_sd_fit": v.sd_text(v.default_sd),
            "insample_cov90": c.table.loc["all", "coverage_90"],
            "insample_mre": c.table.loc["all", "mre"],
            "seconds": time.perf_counter() - t0,
        }
        summaries.append(row)
    if len(fits) >= 2:
        table = compare(fits)
        print("\n== leave-one-run-out comparison (runs up to 1.235B):")
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(table.round(2).to_string())
        print(table.attrs["verdict"])
        table.to_csv(out / "compare.csv")
    summary = pd.DataFrame(summaries)
    summary.to_csv(out / "summary.csv", index=False)
    print("\n== summary")
    print(summary.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
