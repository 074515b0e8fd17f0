"""Simulation-based calibration of every registered law (Talts et al. 2018).

For each law: draw parameters from its default priors, simulate a small but
realistic sweep (3 domains, 3 sizes from 50M to 350M parameters, 6 mixtures,
4 checkpoints per run) with bayesmix.simulate, fit with NUTS (vectorised over
replications, see bayesmix/checks/sbc.py), and rank each true parameter among
99 thinned posterior draws. Prints, per law and parameter, a chi-square test
of uniform ranks (10 bins) and the share of ranks in each 5% tail; saves the
rank histograms (PNG) and the ranks (CSV).

    python benchmarks/sbc.py                        # every law, 100 replications
    python benchmarks/sbc.py --laws additive --replications 200
    python benchmarks/sbc.py --quick                # 20 replications, fewer draws: a smoke test
    python benchmarks/sbc.py --warm-retry 0.99      # rank a warm-started retry's draws instead (see --help)
    python benchmarks/sbc.py --rewhiten             # every replication whitened again by its warm-up's probe

A law passes when no parameter's Bonferroni-adjusted p-value is below 0.01
and no tail holds more than 15% of the ranks (5% expected).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bayesmix import available_laws, get_law  # (importing bayesmix sets XLA flags before jax starts)
from bayesmix.checks import default_design, sbc

os.environ.setdefault("BAYESMIX_PROGRESS", "0")

OUT = Path(__file__).resolve().parent / "results" / "sbc"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--laws", default=",".join(available_laws()), help="comma-separated laws (default: every registered law)"
    )
    p.add_argument("--replications", type=int, default=100)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--draws", type=int, default=300, help="draws per chain; 99 thinned draws are ranked")
    p.add_argument("--batch", type=int, default=25, help="replications fitted at once (vmap)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="20 replications, 150 warm-up and draws: a smoke test")
    p.add_argument("--out", default=str(OUT))
    p.add_argument(
        "--warm-retry",
        type=float,
        default=None,
        metavar="TA",
        help="rank the draws of a retry at this target_accept warm-started from each first run, as a fit retries "
        "a block that diverged (e.g. 0.99)",
    )
    p.add_argument(
        "--rewhiten",
        action="store_true",
        help="whiten every replication again by its chains' first quarter of warm-up, as a fit does where the "
        "Laplace approximation misses the posterior",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.replications, args.warmup, args.draws, args.batch = 20, 150, 150, 20
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    failures = []
    for name in [s.strip() for s in args.laws.split(",") if s.strip()]:
        law = get_law(name)
        design, targets = default_design(law, args.seed)
        tag = f"{name}-warm-retry" if args.warm_retry else name
        tag = f"{tag}-rewhiten" if args.rewhiten else tag
        print(
            f"\n== {tag}: {args.replications} replications, {len(design)} rows ({design.run.nunique()} runs), "
            f"target {', '.join(targets)}; {args.chains} chains x {args.draws} draws after {args.warmup} warm-up",
            flush=True,
        )
        t0 = time.perf_counter()
        res = sbc(
            law,
            args.replications,
            chains=args.chains,
            warmup=args.warmup,
            draws=args.draws,
            batch=args.batch,
            seed=args.seed,
            progress=True,
            warm_retry=args.warm_retry,
            rewhiten=args.rewhiten,
        )
        u = res.uniformity()
        runs = res.runs
        print(
            f"{time.perf_counter() - t0:.0f} s; replications with divergences: {(runs.divergences > 0).mean():.0%} "
            f"(median {runs.divergences.median():.0f}); max R-hat median {runs.max_rhat.median():.3f}, "
            f"above 1.05 in {(runs.max_rhat > 1.05).mean():.0%}; "
            f"tree-depth hits in {(runs.tree_depth_hits > 0).mean():.0%}"
        )
        with pd.option_context("display.width", 160):
            print(u.round({"chi2": 1, "p_value": 4, "p_bonferroni": 4, "low": 3, "high": 3}).to_string(index=False))
        bad = u[(u.p_bonferroni < 0.01) | (u.low > 0.15) | (u.high > 0.15)]
        if len(bad):
            failures.append(name)
            print(f"{name}: NOT calibrated for {', '.join(bad.parameter)}")
        else:
            print(
                f"{name}: ranks consistent with uniform for all {len(u)} parameters "
                f"(min Bonferroni p {u.p_bonferroni.min():.3f})"
            )
        fig = res.plot()
        fig.savefig(out / f"sbc-{tag}.png", dpi=100)
        res.ranks.to_csv(out / f"sbc-{tag}-ranks.csv", index=False)
        runs.to_csv(out / f"sbc-{tag}-runs.csv", index=False)
        u.to_csv(out / f"sbc-{tag}-uniformity.csv", index=False)
        print(f"saved {out / f'sbc-{tag}.png'}")
    print("\nsummary:", "every law calibrated" if not failures else f"NOT calibrated: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
