"""Where should a retry start? A block's retry at a higher target_accept, from scratch or from its first run's end.

A block whose draws diverge at target_accept 0.9 is sampled again at 0.99 (``bayesmix.inference``). From scratch,
the retry repeats the mode search and the whole warm-up (1000 iterations). Warm-started, it takes the first run's
whitening, its chains' last draws and their adapted mass matrices, and adapts only its step size for
``inference.REWARM`` iterations. For each target block and seed this runs the first try at 0.9, then both retries
with the same key, as ``bayesmix.fit`` would (4 chains x 1000 draws), and prints for each retry:

- leapfrog steps of its warm-up and draws, and per effective draw (``steps/ESS``: the work, free of machine load);
- its chains' median step size after warm-up and the draws' mean acceptance probability;
- divergences, max R-hat and min ESS (bulk or tail) of its draws;
- ``shift``: the largest difference of a posterior mean from the reference (every seed's retry from scratch
  pooled), in posterior sds, over every scalar of the block (Monte Carlo noise alone gives 0.1-0.25).

Example::

    python benchmarks/retry_start.py --law bimix --targets arxiv,github,wikipedia --seeds 0,1
    python benchmarks/retry_start.py --sweep example --targets books,web
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warmup_length import DATA, max_shift, sweep_table, table_block  # noqa: E402  (the same blocks as the fit samples)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", default="arxiv,github,wikipedia", help="comma-separated target blocks")
    p.add_argument("--sweep", choices=["scale", "mixture", "example"], default="scale", help="as warmup_length.py")
    p.add_argument("--law", default="bimix")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--draws", type=int, default=1000)
    return p.parse_args(argv)


def flat(draws: dict):
    import numpy as np

    return np.concatenate([v.reshape(v.shape[:2] + (-1,)) for v in draws.values()], axis=-1).reshape(
        -1, sum(int(np.prod(v.shape[2:])) for v in draws.values())
    )


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.sweep != "example" and not DATA.exists():
        print(f"skipped: the SlimPajama sweep is absent ({DATA}); it lives beside the repo in ../shared/data")
        return 0
    import jax
    import numpy as np
    import pandas as pd

    import bayesmix  # noqa: F401  (sets the XLA device count before jax starts)
    from bayesmix import inference

    parallel = jax.local_device_count() >= 4
    first_cfg = inference.SamplerConfig(draws=a.draws, target_accept=0.9)
    retry_cfg = inference.SamplerConfig(draws=a.draws, target_accept=0.99)
    table = sweep_table(a.sweep)
    rows = []
    for target in a.targets.split(","):
        block, _ = table_block(table, a.law, target)
        flats = {}
        for seed in (int(s) for s in a.seeds.split(",")):
            key = jax.random.PRNGKey(seed)
            _, _, first = inference._sample_block(block, first_cfg, key, parallel, keep_start=True)
            start = first.pop("_start")
            for how, kw in (("scratch", {}), ("warm", {"start": start})):
                t0 = time.perf_counter()
                draws, extra, info = inference._sample_block(block, retry_cfg, key, parallel, **kw)
                seconds = time.perf_counter() - t0
                warm_iters = info.get("warm_start", retry_cfg.warmup)
                C, S = extra["diverging"].shape
                work = info["warmup_mean_steps"] * C * warm_iters + float(np.sum(extra["num_steps"]))
                ess = min(info["min_ess_bulk"], info["min_ess_tail"])
                flats[(seed, how)] = flat(draws)
                rows.append(
                    {
                        "target": target,
                        "seed": seed,
                        "first_div": first["divergences"],
                        "retry": how,
                        "warm_iters": warm_iters,
                        "warm_steps": info["warmup_mean_steps"],
                        "draw_steps": info["mean_steps"],
                        "work": work,
                        "step": float(np.median(info["step_size"])),  # the chains' median step after warm-up
                        "accept": float(np.mean(extra["accept_prob"])),
                        "divergences": info["divergences"],
                        "rhat": info["max_rhat"],
                        "min_ess": ess,
                        "steps/ESS": work / ess,
                        "seconds": seconds,
                    }
                )
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
        ref = np.concatenate([f for (s, how), f in flats.items() if how == "scratch"])
        for row in rows:
            if row["target"] == target:
                row["shift"] = max_shift(flats[(row["seed"], row["retry"])], ref)
    out = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(out.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        summary = out.groupby("retry", sort=False).agg(
            work=("work", "sum"),
            divergences=("divergences", "sum"),
            max_rhat=("rhat", "max"),
            min_ess=("min_ess", "min"),
            steps_per_ess=("steps/ESS", "median"),
            max_shift=("shift", "max"),
            seconds=("seconds", "sum"),
        )
        print("\nby retry start (work: leapfrog steps of warm-up and draws, summed; steps per ESS: median):")
        print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
