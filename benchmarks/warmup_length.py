"""How short can NUTS warm-up be after the Laplace whitening? Target blocks of a fit, by warm-up length.

Each block is what ``bayesmix.fit`` samples for one target (by default SlimPajama, every run up to 1.235B, the
checkpoint model, the additive law unless ``--law``), whitened at its mode as the fit does. For every warm-up length
and seed it runs 4 chains of NUTS at target_accept 0.9 (no retry) with 1000 draws and prints:

- leapfrog steps per warm-up iteration and per draw, divergences, max R-hat and min ESS (bulk or tail);
- ``steps/ESS``: leapfrog steps of warm-up and draws together per effective draw: the work a fit pays, free of how
  busy the machine is (seconds are printed too, but only compare within one run);
- ``shift``: the largest difference of a posterior mean from the reference (every seed of the longest warm-up
  pooled), in posterior sds, over every scalar of the block: a warm-up too short to reach the typical set or to
  adapt shows here. With ESS of a few hundred, Monte Carlo noise alone gives 0.1-0.25 over ~25 scalars.

Example::

    python benchmarks/warmup_length.py --targets arxiv,c4,wikipedia --warmups 1000,500,250 --seeds 0,1
    python benchmarks/warmup_length.py --sweep example --targets books --warmups 1000,500,250 --seeds 0,1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sampler_comparison import constrained_draws, convergence  # noqa: E402
from scale_extrapolation import DATA, FIT_MAX_SIZE, one_scale_split  # noqa: E402  (the benchmark's own splits)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", default="arxiv,c4,wikipedia", help="comma-separated target blocks")
    p.add_argument(
        "--sweep",
        choices=["scale", "mixture", "example"],
        default="scale",
        help="scale: SlimPajama up to 1.235B (default); mixture: its one-scale split (48 runs at 122M, as "
        "scale_extrapolation.py); example: the built-in simulated example",
    )
    p.add_argument("--law", default="additive")
    p.add_argument("--warmups", default="1000,500,250", help="warm-up lengths per chain; the first is the reference")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--draws", type=int, default=1000)
    return p.parse_args(argv)


def sweep_table(sweep: str):
    """The run table whose blocks are sampled: the training runs of scale_extrapolation.py's splits, or the
    example."""
    from bayesmix.data import read_runs

    if sweep == "example":
        from bayesmix.example import example_table

        return read_runs(example_table(0), quiet=True)
    runs = read_runs(DATA, quiet=True)
    if sweep == "scale":
        return runs.subset(runs.model_size < FIT_MAX_SIZE)
    return one_scale_split(runs)[0]


def max_shift(draws, ref) -> float:
    """The largest difference of a posterior mean of ``draws`` (n, k) from that of ``ref`` (m, k), in ``ref``'s
    posterior sds, over the scalars that move."""
    import numpy as np

    mean, sd = ref.mean(0), ref.std(0)
    ok = sd > 0
    return float(np.max(np.abs(draws.mean(0) - mean)[ok] / sd[ok]))


def table_block(table, law_name: str, target: str):
    """(block, compiled) for one target, built as ``bayesmix.fit`` builds it with its defaults."""
    import numpy as np

    from bayesmix import inference
    from bayesmix.design import law_tokens, observed_from_table, reference_point
    from bayesmix.laws import get_law
    from bayesmix.model import make_model, resolve_priors

    law, checkpoints = get_law(law_name), table.has_checkpoints
    priors = resolve_priors(law, table.domains, table.targets, None, checkpoints)
    N0, D0 = reference_point(table.model_size, law_tokens(table, checkpoints))
    obs, _ = observed_from_table(table, table.targets, N0, D0, np.unique(table.model_size), checkpoints=checkpoints)
    blocks = make_model(law, table.domains, table.targets, priors, checkpoints).split(obs)
    (block,) = [b for b in blocks if b.label == target]
    return block, inference._compiled(block.model, block.args, block.signature)


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.sweep != "example" and not DATA.exists():
        print(f"skipped: the SlimPajama sweep is absent ({DATA}); it lives beside the repo in ../shared/data")
        return 0
    import jax
    import jax.numpy as jnp
    import numpy as np
    import pandas as pd

    import bayesmix  # noqa: F401  (sets the XLA device count before jax starts)
    from bayesmix import inference

    warmups = [int(w) for w in a.warmups.split(",")]
    seeds = [int(s) for s in a.seeds.split(",")]
    parallel = jax.local_device_count() >= 4
    rows = []
    table = sweep_table(a.sweep)
    for target in a.targets.split(","):
        block, comp = table_block(table, a.law, target)
        args, d = block.args, comp.dim
        flats = {}
        for seed in seeds:
            key = jax.random.PRNGKey(seed)
            k_start, k_init, k_run = jax.random.split(key, 3)
            starts = list(np.asarray(comp.starts(k_start, 4), dtype=np.float64))
            mode, cov, _ = inference.find_mode(comp, args, starts)
            L = np.linalg.cholesky(cov)
            for w in warmups:
                config = inference.SamplerConfig(warmup=w, draws=a.draws, target_accept=0.9)
                run = inference._runner(block.model, comp.unravel, d, config, parallel, None)
                margs = (args, jnp.asarray(mode), jnp.asarray(L))
                u0 = 0.5 * jax.random.normal(k_init, (4, d))
                keys = jax.random.split(k_run, 4)
                with inference.CompileClock() as compiling:  # compiling is paid once per shape: left out
                    t0 = time.perf_counter()
                    states, _, warm_steps = jax.block_until_ready(run.warm(keys, u0, *margs))
                    u, div, steps, *_ = run.draw(states, *margs)
                    U = np.asarray(u)
                    seconds = time.perf_counter() - t0 - compiling.seconds
                flat = flats[(seed, w)] = constrained_draws(comp, args, mode, L, U)
                rhat, ess = convergence(flat)
                work = float(np.sum(warm_steps) + np.sum(steps))
                rows.append(
                    {
                        "target": target,
                        "warmup": w,
                        "seed": seed,
                        "warm_steps": float(np.sum(warm_steps)) / (4 * w),
                        "draw_steps": float(np.mean(steps)),
                        "divergences": int(np.sum(div)),
                        "rhat": rhat,
                        "min_ess": ess,
                        "steps/ESS": work / ess,
                        "seconds": seconds,
                    }
                )
                print(
                    f"{target} warm-up {w} seed {seed}: {rows[-1]['warm_steps']:.0f} steps per warm-up iteration, "
                    f"{rows[-1]['draw_steps']:.0f} per draw, {rows[-1]['divergences']} divergences, R-hat "
                    f"{rows[-1]['rhat']:.3f}, min ESS {ess:.0f}, {work / ess:.0f} steps per effective draw, "
                    f"{seconds:.0f} s",
                    flush=True,
                )
        ref = np.concatenate([flats[(s, warmups[0])].reshape(-1, flats[(s, warmups[0])].shape[-1]) for s in seeds])
        for row in rows:
            if row["target"] == target:
                row["shift"] = max_shift(flats[(row["seed"], row["warmup"])].reshape(-1, ref.shape[-1]), ref)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        summary = table.groupby("warmup", sort=False).agg(
            divergences=("divergences", "sum"),
            max_rhat=("rhat", "max"),
            min_ess=("min_ess", "min"),
            steps_per_ess=("steps/ESS", "median"),
            max_shift=("shift", "max"),
            seconds=("seconds", "sum"),
        )
        print("\nby warm-up length (steps per ESS: median over blocks and seeds):")
        print(summary.to_string(float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
