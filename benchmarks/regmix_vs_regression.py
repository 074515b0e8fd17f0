"""bayesmix beside RegMix's regression on RegMix's own proxy sweep (issue 17).

Data: ``../shared/data/regmix/`` as released by Liu et al. 2024 (RegMix,
arXiv:2407.01492): 512 training runs at 1M parameters, 256 held-out mixtures
at 1M and the same 256 mixtures at 60M, all on 1B tokens, 17 Pile domains, 13
validation targets.

Every method trains on the 512 1M runs and scores (a) the 256 held-out 1M
runs and (b) the 256 60M runs of the same mixtures, per target:

- ``bayesmix <law>``: posterior mean, and the 90% posterior predictive
  interval (coverage, mean width and interval score as % of the loss). At 60M
  the fit moves along model size, an axis this sweep never varied, so its
  intervals there carry the prior's spread; the ranking is what matters.
- ``lightgbm``: one LightGBM regression per target with RegMix's published
  settings (``regression_fitting/regression.ipynb``: gbdt, learning rate
  0.01, up to 1000 rounds, seed 42, early stopping after 3 rounds).
  RegMix's notebook stops early on the test set; here it stops on 64 runs
  split off the training set (seed 0), so the test set stays unseen.
  ``lightgbm (test-stopped)`` repeats the notebook as written, for reference.
- ``nearest``: each held-out mixture gets the loss of the nearest training
  mixture (L1 distance of the weights), which is what choosing among the
  observed runs amounts to.

Columns: Spearman rank correlation, MRE % of the point prediction, and for
bayesmix the 90% coverage, width and interval score. LightGBM is a
benchmark-only extra (``pip install lightgbm``), not a dependency of bayesmix.

Examples::

    python benchmarks/regmix_vs_regression.py                      # additive law
    python benchmarks/regmix_vs_regression.py --laws additive,exponential,bimix
    python benchmarks/regmix_vs_regression.py --model models/regmix-additive.nc   # score a saved fit
    python benchmarks/regmix_vs_regression.py --quick              # smoke run (few draws)
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import bayesmix
from bayesmix.checks.ppc import interval_score
from bayesmix.reach import PriorOnlyWarning

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "regmix"
SIZE_TRAIN, SIZE_BIG, TOKENS = 1e6, 6e7, 1e9
LEVEL = 0.9
# RegMix's regression_fitting/regression.ipynb, cell "hyper_params"
LGBM_PARAMS = dict(
    boosting_type="gbdt",
    objective="regression",
    metric=["l1", "l2"],
    learning_rate=1e-2,
    seed=42,
    verbosity=-1,
)
LGBM_ROUNDS = 1000
LGBM_STOP_ROUNDS = 3
LGBM_VALIDATION = 64  # training runs held apart for early stopping


def load() -> tuple[bayesmix.RunTable, bayesmix.RunTable, bayesmix.RunTable]:
    """(train 1M, test 1M, test 60M) as RunTables, read from the files as shipped."""
    if not (DATA / "train_mixture_1m.csv").exists():
        raise SystemExit(f"real data not available: {DATA} is absent (RegMix's data/ folder, see its README)")

    def pair(split: str, size_tag: str, size: float) -> bayesmix.RunTable:
        return bayesmix.read_regmix(
            DATA / f"{split}_mixture_{size_tag}.csv",
            DATA / f"{split}_pile_loss_{size_tag}.csv",
            model_size=size,
            n_tokens=TOKENS,
            quiet=True,
        )

    return pair("train", "1m", SIZE_TRAIN), pair("test", "1m", SIZE_TRAIN), pair("test", "60m", SIZE_BIG)


def score(method: str, split: str, targets, truth: np.ndarray, point: np.ndarray, lo=None, hi=None) -> pd.DataFrame:
    """One row per target (and 'mean'): Spearman, MRE %, and with an interval its coverage, width and score %."""
    rows = []
    for j, t in enumerate(targets):
        y, p = truth[:, j], point[:, j]
        ok = np.isfinite(y)
        row = {
            "method": method,
            "split": split,
            "target": t,
            "spearman": spearmanr(p[ok], y[ok]).statistic,
            "mre_pct": 100 * np.mean(np.abs(p[ok] - y[ok]) / y[ok]),
        }
        if lo is not None:
            row["coverage_pct"] = 100 * np.mean((lo[ok, j] <= y[ok]) & (y[ok] <= hi[ok, j]))
            row["width_pct"] = 100 * np.mean((hi[ok, j] - lo[ok, j]) / p[ok])
            row["interval_score_pct"] = 100 * np.mean(interval_score(lo[ok, j], hi[ok, j], y[ok], LEVEL) / p[ok])
        rows.append(row)
    out = pd.DataFrame(rows)
    mean = out.drop(columns=["method", "split", "target"]).mean().to_dict()
    return pd.concat([out, pd.DataFrame([{"method": method, "split": split, "target": "mean", **mean}])])


def nearest(train: bayesmix.RunTable, test: bayesmix.RunTable) -> np.ndarray:
    """The losses of the training run whose mixture is nearest (L1) to each held-out mixture."""
    d = np.abs(test.weights[:, None, :] - train.weights[None, :, :]).sum(-1)
    return train.losses[np.argmin(d, axis=1)]


def lightgbm(train: bayesmix.RunTable, test: bayesmix.RunTable, stop_on_test: bool) -> tuple[np.ndarray, float]:
    """Per-target LightGBM predictions at the held-out mixtures, and the seconds the fits took."""
    import lightgbm as lgb

    t0 = time.perf_counter()
    X, Y = train.weights, train.losses
    order = np.random.default_rng(0).permutation(len(X))
    val, fit_rows = order[:LGBM_VALIDATION], order[LGBM_VALIDATION:]
    out = np.empty((len(test.weights), len(train.targets)))
    for j in range(len(train.targets)):
        if stop_on_test:  # the notebook as written: early stopping watches the test set
            Xf, yf, Xe, ye = X, Y[:, j], test.weights, test.losses[:, j]
        else:
            Xf, yf, Xe, ye = X[fit_rows], Y[fit_rows, j], X[val], Y[val, j]
        ok, oke = np.isfinite(yf), np.isfinite(ye)
        booster = lgb.train(
            LGBM_PARAMS,
            lgb.Dataset(Xf[ok], yf[ok]),
            num_boost_round=LGBM_ROUNDS,
            valid_sets=[lgb.Dataset(Xe[oke], ye[oke])],
            callbacks=[lgb.early_stopping(stopping_rounds=LGBM_STOP_ROUNDS, verbose=False)],
        )
        out[:, j] = booster.predict(test.weights, num_iteration=booster.best_iteration)
    return out, time.perf_counter() - t0


def bayes(fit, test: bayesmix.RunTable, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and the central 90% posterior predictive interval at the held-out mixtures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PriorOnlyWarning)  # 60M: along an axis never varied, said in the doc
        p = fit.predict(test.weights, size, TOKENS, interval=LEVEL)
    shape = (len(test.weights), len(fit.targets))

    def col(c: str) -> np.ndarray:
        return p.pivot(index="mixture", columns="target", values=c)[list(fit.targets)].to_numpy().reshape(shape)

    return col("mean"), col("pred_lower"), col("pred_upper")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--laws", default="additive", help="comma-separated laws to fit (default additive)")
    ap.add_argument("--model", action="append", default=[], help="score this saved fit instead of fitting (repeatable)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 chains x 100 draws, 3 targets")
    ap.add_argument("--save-models", metavar="DIR", help="save each fit here (netCDF) for later --model runs")
    ap.add_argument("--out", help="write the per-target table here (CSV)")
    args = ap.parse_args()

    train, test1m, test60m = load()
    if not np.allclose(test1m.weights, test60m.weights):
        raise SystemExit("the 1M and 60M test files no longer list the same mixtures in the same order")
    targets = list(train.targets)
    if args.quick:
        targets = targets[:3]
    cols = [train.targets.index(t) for t in targets]
    truth = {"1M": test1m.losses[:, cols], "60M": test60m.losses[:, cols]}
    print(
        f"train: {train.n_runs} runs at 1M, {len(train.domains)} domains, {len(targets)} targets; "
        f"held out: {test1m.n_runs} mixtures at 1M and the same at 60M; "
        f"{100 * (train.weights == 0).mean():.0f}% of training weights are 0"
    )
    tables, times = [], {}

    near = nearest(train, test1m)[:, cols]
    for split in truth:
        tables.append(score("nearest", split, targets, truth[split], near))

    try:
        for stop_on_test, name in ((False, "lightgbm"), (True, "lightgbm (test-stopped)")):
            pred, secs = lightgbm(train, test1m, stop_on_test)
            times[name] = secs
            for split in truth:
                tables.append(score(name, split, targets, truth[split], pred[:, cols]))
    except ImportError:
        print("lightgbm is not installed (pip install lightgbm): its rows are left out")

    fits = []
    for path in args.model:
        fits.append((f"bayesmix {Path(path).stem}", bayesmix.load(path), None))
    if not args.model:
        kw = dict(chains=2, warmup=100, draws=100) if args.quick else {}
        for law in args.laws.split(","):
            t0 = time.perf_counter()
            fit = bayesmix.fit(train, law.strip(), targets=targets, seed=0, **kw)
            fits.append((f"bayesmix {law.strip()}", fit, time.perf_counter() - t0))
            if args.save_models:
                Path(args.save_models).mkdir(parents=True, exist_ok=True)
                fit.save(Path(args.save_models) / f"regmix-1m-{law.strip()}.nc")
    for name, fit, secs in fits:
        if secs is not None:
            times[name] = secs
        fcols = [fit.targets.index(t) for t in targets]
        print(f"{name}: diagnostics: {str(fit.diagnostics).splitlines()[0]}")
        for split, size in (("1M", SIZE_TRAIN), ("60M", SIZE_BIG)):
            mean, lo, hi = bayes(fit, test1m, size)
            tables.append(score(name, split, targets, truth[split], mean[:, fcols], lo[:, fcols], hi[:, fcols]))

    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 20):
        summary = table[table.target == "mean"].drop(columns="target").set_index(["split", "method"]).sort_index()
        print("\nmean over targets (Spearman; MRE, coverage, width and interval score in % of the loss):")
        print(summary.round(3).to_string())
        print("\nper target, Spearman:")
        print(
            table[table.target != "mean"]
            .pivot_table(index="target", columns=["split", "method"], values="spearman")
            .round(3)
            .to_string()
        )
        bm = table[(table.target != "mean") & table.method.str.startswith("bayesmix")]
        if len(bm):
            print("\nper target, bayesmix 90% predictive coverage / width (%):")
            print(
                bm.pivot_table(index="target", columns=["split", "method"], values=["coverage_pct", "width_pct"])
                .round(1)
                .to_string()
            )
    for name, secs in times.items():
        print(f"time: {name}: {secs:.1f} s")
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
