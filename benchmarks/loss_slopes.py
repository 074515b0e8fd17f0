"""How fast each target's final loss falls per e-fold of model size, step by step up a sweep's sizes.

For the mixtures trained at the sweep's largest size, this takes every run's final loss (the end of its
schedule), and for each pair of consecutive model sizes at which some of those mixtures were trained,
prints the mean over the shared mixtures of

    slope = -(log L_large - log L_small) / (log N_large - log N_small)

per target, beside each size's tokens per parameter (a step along a constant ratio is a step along one
ray of (N, D)).

Why it matters: every law whose scale dependence is a constant c >= 0 plus decaying power terms,
c + A N^-alpha + B D^-beta, has a log-log slope that never rises along a ray D = k N (by Cauchy-Schwarz,
(alpha a + beta b)^2 <= (alpha^2 a + beta^2 b)(c + a + b) for the terms a, b). A target whose slope rises
beyond the fitted sizes is one that no law of that family can extrapolate from the sweep, whatever its
posterior. ``docs/extrapolation.md`` has SlimPajama's table.

Example::

    python benchmarks/loss_slopes.py                      # SlimPajama, ../shared/data
    python benchmarks/loss_slopes.py --runs my_sweep.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"


def slopes(table) -> pd.DataFrame:
    """One row per step between consecutive sizes (the largest size's mixtures only): the mixtures shared,
    tokens per parameter at both ends, and each target's mean log-log slope over the shared mixtures."""
    final = table.token_fraction() >= 0.999
    mix = table.mixtures()[1][final]
    N, D, logL = table.model_size[final], table.run_tokens[final], np.log(table.losses[final])
    top = set(mix[N == N.max()])
    sizes = [n for n in np.unique(N) if len(top & set(mix[N == n])) >= 1]
    rows = []
    for small, large in zip(sizes[:-1], sizes[1:]):
        shared = sorted(top & set(mix[N == small]) & set(mix[N == large]))
        if not shared:
            continue
        d_log_n = np.log(large / small)

        def mean_at(n):
            pick = (N == n) & np.isin(mix, shared)
            return np.nanmean(logL[pick], axis=0), float(np.median(D[pick] / n))

        lo, ratio_lo = mean_at(small)
        hi, ratio_hi = mean_at(large)
        row = {
            "step": f"{small / 1e6:,.0f}M -> {large / 1e6:,.0f}M",
            "mixtures": len(shared),
            "tokens/param": f"{ratio_lo:.0f} -> {ratio_hi:.0f}",
            "same_ray": bool(abs(np.log(ratio_hi / ratio_lo)) < 0.1),
        }
        row.update(dict(zip(table.targets, -(hi - lo) / d_log_n)))
        rows.append(row)
    return pd.DataFrame(rows).set_index("step")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=str(DATA), help="a run table (default: SlimPajama in ../shared/data)")
    a = p.parse_args(argv)
    if not Path(a.runs).exists():
        print(f"skipped: {a.runs} is absent (SlimPajama lives beside the repo in ../shared/data)")
        return 0
    from bayesmix.data import read_runs

    table = read_runs(a.runs, quiet=True)
    out = slopes(table)
    with pd.option_context("display.width", 200, "display.precision", 3):
        print("log-log slope of the final loss per e-fold of model size (mixtures trained at the largest size):")
        print(out.to_string())
    targets = list(table.targets)
    # Only steps along one ray compare: a step that also raises tokens per parameter less has a smaller slope.
    ray = out[out["same_ray"]]
    if len(ray) >= 2 and ray.index[-1] == out.index[-1]:
        last, before = ray[targets].iloc[-1], ray[targets].iloc[:-1].max()
        rising = [t for t in targets if last[t] > before[t]]
        print(
            f"\nsteeper in the last step than in any earlier step along the same ray ({', '.join(ray.index[:-1])}); "
            "no law with a floor >= 0 can follow these: "
            + (", ".join(f"{t} ({last[t]:.3f} vs {before[t]:.3f})" for t in rising) or "none")
        )
    else:
        print("\nno two steps along one ray of tokens per parameter end the sweep: nothing to compare")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
