"""Coverage and width of 90% intervals against e-folds beyond the fitted range, on SlimPajama.

Fits each law on every run up to 1.235B parameters (the defaults of
``bayesmix fit``; the same fit as ``scale_extrapolation.py``, shared through
``BAYESMIX_BENCH_CACHE``), then scores the final losses at two kinds of
distance:

- the fit's own nested hold-outs (refits without the largest size, the two
  largest, the three largest; 0.3-1.5 e-folds out): the law's rule at that
  distance, N(0, noise + (far x extrapolation_sd)^2) on the log loss. The
  rate was learned from these errors, so they show the rule's fit, not a test;
- the four 2.718B runs the fit never saw (1.6 e-folds): the full predictive
  interval of ``Fit.predict_table``. This is the test.

With ``--ensemble`` the stacked ensemble of the laws is scored on the 2.718B
runs too. Prints one row per (law, distance) with coverage, mean width and
interval score (% of the loss); ``--figure`` draws coverage and width against
e-folds.

Example::

    BAYESMIX_BENCH_CACHE=/tmp/bench/cache python benchmarks/coverage_by_efolds.py \\
        --laws additive,joint,exponential,bimix --ensemble --figure docs/coverage-by-efolds.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_extrapolation import DATA, FIT_MAX_SIZE, INTERVAL, TEST_SIZE, final_mask, run_fit  # noqa: E402

import bayesmix  # noqa: E402
from bayesmix.checks.ppc import interval_score  # noqa: E402
from bayesmix.data import read_runs  # noqa: E402
from bayesmix.posterior import efolds_beyond  # noqa: E402

Z90 = 1.6448536269514722


def holdout_rows(fit) -> pd.DataFrame:
    """Each nested hold-out's final losses under the law's rule at their distance."""
    h = fit.holdouts.copy()
    sd = pd.Series(np.asarray(fit.extrapolation_sd, float), index=list(fit.targets)).reindex(h.target).to_numpy()
    s = np.sqrt(h.noise.to_numpy(float) + (h.far.to_numpy(float) * sd) ** 2)
    e = h.error.to_numpy(float)
    y = np.exp(e)  # loss relative to the refitted law's mean
    lo, hi = np.exp(-Z90 * s), np.exp(Z90 * s)
    return pd.DataFrame(
        {
            "where": h.holdout,
            "kind": "nested hold-out (rate learned here)",
            "target": h.target,
            "far": h.far,
            "covered": np.abs(e) <= Z90 * s,
            "width": hi - lo,
            "iscore": interval_score(lo, hi, y, INTERVAL) / y,
        }
    )


def test_rows(model, test) -> pd.DataFrame:
    """The 2.718B runs' final losses under the full predictive interval."""
    t = test.subset(final_mask(test))
    pt = model.predict_table(t, interval=INTERVAL).dropna(subset=["observed"])
    fitted = model.table
    far = efolds_beyond(t.model_size, t.n_tokens, fitted.model_size.max(), fitted.n_tokens.max())
    far = pd.Series(far, index=t.run).reindex(pt.run).to_numpy()
    return pd.DataFrame(
        {
            "where": "2.718B runs",
            "kind": "test (never seen)",
            "target": pt.target,
            "far": far,
            "covered": (pt.observed >= pt.pred_lower) & (pt.observed <= pt.pred_upper),
            "width": (pt.pred_upper - pt.pred_lower) / pt["mean"],
            "iscore": interval_score(pt.pred_lower, pt.pred_upper, pt.observed, INTERVAL) / pt.observed,
        }
    )


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.groupby(["law", "kind", "where"], sort=False).agg(
        efolds=("far", "mean"),
        points=("covered", "size"),
        cover90_pct=("covered", "mean"),
        width90_pct=("width", "mean"),
        iscore90_pct=("iscore", "mean"),
    )
    for c in ("cover90_pct", "width90_pct", "iscore90_pct"):
        out[c] *= 100
    return out.sort_values(["law", "efolds"]).round(2)


def figure(table: pd.DataFrame, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for law, part in table.reset_index().groupby("law", sort=False):
        part = part.sort_values("efolds")
        test = part.kind.str.startswith("test")
        line = ax1.plot(part.efolds[~test], part.cover90_pct[~test], "o-", label=law)[0]
        ax1.plot(part.efolds[test], part.cover90_pct[test], "*", ms=14, color=line.get_color())
        ax2.plot(part.efolds[~test], part.width90_pct[~test], "o-", color=line.get_color(), label=law)
        ax2.plot(part.efolds[test], part.width90_pct[test], "*", ms=14, color=line.get_color())
    ax1.axhline(90, color="grey", ls="--", lw=1)
    ax1.set(xlabel="e-folds beyond the fitted range", ylabel="90% interval coverage (%)", ylim=(0, 102))
    ax2.set(xlabel="e-folds beyond the fitted range", ylabel="mean 90% interval width (% of the loss)")
    ax1.set_title("coverage: dots nested hold-outs, stars 2.718B test", fontsize=10)
    ax2.set_title("sharpness", fontsize=10)
    ax1.legend(fontsize=8)
    fig.suptitle("SlimPajama, fitted up to 1.235B: how far the intervals hold", fontsize=11)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--laws", default="additive", help="comma-separated laws (default additive)")
    p.add_argument("--ensemble", action="store_true", help="also score the laws' stacked ensemble on the test runs")
    p.add_argument("--figure", help="write the figure here (PNG)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not DATA.exists():
        print(f"SKIPPED: the real data are not available: {DATA} is absent (it lives beside the repo, in ../shared).")
        return 0
    runs = read_runs(DATA, quiet=True)
    train = runs.subset(runs.model_size < FIT_MAX_SIZE)
    test = runs.subset(np.isclose(runs.model_size, TEST_SIZE))
    fit_args = argparse.Namespace(
        chains=4, warmup=1000, draws=1000, seed=args.seed, target_accept=None, run_effects="offset+slope", plain=False
    )
    rows, fits = [], []
    for law in args.laws.split(","):
        fit, _, _ = run_fit(train, law, None, fit_args, 0.0)
        fits.append(fit)
        if fit.holdouts is None:
            print(f"{law}: the cached fit has no hold-out errors saved (refit it); hold-outs skipped")
        else:
            rows.append(holdout_rows(fit).assign(law=law))
        rows.append(test_rows(fit, test).assign(law=law))
    if args.ensemble and len(fits) >= 2:
        ens = bayesmix.ensemble(fits)
        print(ens.note)
        rows.append(test_rows(ens, test).assign(law="ensemble"))
    allrows = pd.concat(rows, ignore_index=True)
    table = summarise(allrows)
    with pd.option_context("display.width", 200):
        print(table.to_string())
        per = allrows[allrows.kind.str.startswith("test")].groupby(["law", "target"]).covered.mean().unstack() * 100
        print("\n2.718B final losses, 90% coverage per target (%):")
        print(per.round(0).to_string())
    if args.figure:
        figure(table, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
