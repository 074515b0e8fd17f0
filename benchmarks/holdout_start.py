"""Where should a hold-out refit start? Four starts against the whole table's mode and the prior median.

A fit learns its extrapolation error from nested hold-outs (``bayesmix.extrapolation``): it refits the law's mode
without the largest sizes or token budgets, three times. Each refit used to search from ``laplace_starts`` (4)
starts; it now starts at the whole table's mode of the same block (what the fit's own mode search found) and at
the prior median. This runs both on the same table, in the same process, and prints for each:

- seconds of the hold-out refits and the error model (the first search also pays for compiling: run it first);
- the learned ``extrapolation_sd`` per target;
- the largest difference between the two searches' hold-out errors (log scale).

Example::

    python benchmarks/holdout_start.py --law additive
    python benchmarks/holdout_start.py --sweep example --law own_weight
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warmup_length import DATA, sweep_table  # noqa: E402  (the tables the fit benchmarks use)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sweep", choices=["scale", "mixture", "example"], default="scale", help="as warmup_length.py")
    p.add_argument("--law", default="additive")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.sweep != "example" and not DATA.exists():
        print(f"skipped: the SlimPajama sweep is absent ({DATA}); it lives beside the repo in ../shared/data")
        return 0
    import jax
    import numpy as np
    import pandas as pd

    from bayesmix import inference
    from bayesmix.design import law_tokens, observed_from_table, reference_point
    from bayesmix.extrapolation import learn_extrapolation
    from bayesmix.laws import get_law
    from bayesmix.model import make_model, resolve_priors

    table = sweep_table(a.sweep)
    law, targets = get_law(a.law), table.targets
    checkpoints = table.has_checkpoints
    priors = resolve_priors(law, table.domains, targets, None, checkpoints)
    N0, D0 = reference_point(table.model_size, law_tokens(table, checkpoints))
    obs, _ = observed_from_table(table, targets, N0, D0, np.unique(table.model_size), checkpoints=checkpoints)
    near = {}  # the whole table's mode per block, found as the fit's own mode search finds it
    for block in make_model(law, table.domains, targets, priors, checkpoints).split(obs) or []:
        comp = inference._compiled(block.model, block.args, block.signature)
        starts = list(comp.starts(jax.random.PRNGKey(a.seed), inference.SamplerConfig().laplace_starts))
        near[block.label] = inference.find_mode(comp, block.args, starts)[0]

    out, seconds = {}, {}
    for name, kw in (("4 starts", {}), ("whole-table mode", {"near": near})):
        t0 = time.perf_counter()
        out[name] = learn_extrapolation(table, law, targets, priors, N0, D0, seed=a.seed, like=obs, **kw)
        seconds[name] = time.perf_counter() - t0
    frame = pd.DataFrame({name: e.sd for name, e in out.items()}, index=list(targets)).round(4)
    print(f"{a.law} on the {a.sweep} sweep: extrapolation_sd per target")
    print(frame.to_string())
    print("seconds:", ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    first, second = (e.holdouts for e in out.values())
    cols = first.select_dtypes("number").columns
    diff = np.nanmax(np.abs(first[cols].to_numpy(float) - second[cols].to_numpy(float)))
    print(f"largest difference of a hold-out error between the two searches: {diff:.4f} (log scale)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
