"""Recommend a mixture for the 2.718B SlimPajama models from fits up to 1.235B, and check it against the runs.

    python benchmarks/recommend_slimpajama.py                      # additive law, quick settings
    python benchmarks/recommend_slimpajama.py --laws additive,joint --chains 4 --warmup 1000 --draws 1000

For each law: fit every run up to 1.235B (cached under benchmarks/results/,
so re-running is cheap), then for two objectives -- the mean loss over the 7
training domains, and openhermes -- at the 2.718B scale (N = 2.718e9, D = the
final token count of those runs):

1. rank the 4 mixtures actually trained at 2.718B by posterior expected loss
   (with intervals, expected rank and P(best)), beside their observed losses
   and ranks; report the observed loss of the mixture ranked first against the
   best observed;
2. recommend a mixture under two sets of constraints -- a floor of 0.02 (the
   smallest weight the sweep trained), and the "swept box" (each weight
   between the smallest and largest the sweep trained, so the law is not
   asked about mixtures outside its data) -- with P(beats) and the expected
   improvement over the posterior's favourite of the 4, the posterior interval
   of each optimal weight and the expected regret;
3. recommend at the 310M, 1.235B and 2.718B targets and report how far apart
   (total variation) the three recommendations are.

The recommended mixtures were never trained, so only the ranking of the 4
trained mixtures can be checked against observed losses.

Reads ../shared/data/dmsl_llm_slimpajama.csv (beside the repository); exits
with a message where it is absent. Tables are printed as markdown and written
to benchmarks/results/recommend_slimpajama/.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesmix
from bayesmix.decide import recommend, resolve_target_weights
from bayesmix.posterior import Posterior

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"
RESULTS = REPO / "benchmarks" / "results" / "recommend_slimpajama"
FIT_MAX = 1.235e9
TARGET_N = 2.718e9
FLOOR = 0.02


def cached_fit(table, law: str, args) -> bayesmix.Fit:
    """Fit the law on the runs up to 1.235B, or load the cached fit made with the same settings."""
    path = RESULTS / (
        f"fit-{law}-c{args.chains}-w{args.warmup}-d{args.draws}-s{args.seed}-f{args.min_fraction:g}"
        f"-ta{args.target_accept:g}.nc"
    )
    if path.exists():
        try:
            fit = bayesmix.load(path)
            print(f"[{law}] loaded the cached fit {path.relative_to(REPO)}", flush=True)
            return fit
        except bayesmix.ModelFileError as e:  # e.g. the law's parameters changed since
            print(f"[{law}] cannot reuse the cached fit ({e}); refitting", flush=True)
    print(
        f"[{law}] fitting {table.n_rows} rows up to {FIT_MAX:.4g} parameters ({args.chains} chains x {args.draws} "
        "draws) ...",
        flush=True,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        fit = bayesmix.fit(
            table,
            law,
            chains=args.chains,
            warmup=args.warmup,
            draws=args.draws,
            seed=args.seed,
            progress=False,
            min_fraction=args.min_fraction,
            target_accept=args.target_accept,
        )
    print(f"[{law}] fitted in {time.perf_counter() - t0:.0f} s; {fit.diagnostics}".splitlines()[0], flush=True)
    fit.save(path)
    return fit


def final_checkpoints(table) -> pd.DataFrame:
    """The last checkpoint of every 2.718B run (a target missing there is taken from the checkpoint before)."""
    f = table.frame[table.frame.model_size == TARGET_N].sort_values("n_tokens")
    rows = []
    for run, g in f.groupby("run", sort=False):
        last = g.iloc[-1].copy()
        for t in table.targets:
            col = f"{t}_loss"
            if not np.isfinite(last[col]):
                last[col] = g[col].dropna().iloc[-1]
        rows.append(last)
    return pd.DataFrame(rows).reset_index(drop=True)


def rank_trained(fit, obs: pd.DataFrame, w: np.ndarray, seed: int, interval: float = 0.9) -> pd.DataFrame:
    """Posterior ranking of the trained 2.718B mixtures beside the observed one."""
    h = obs[[f"weight_{d}" for d in fit.domains]].to_numpy()
    D = float(obs.n_tokens.max())
    d = Posterior.from_fit(fit).predictive(h, TARGET_N, D, seed=seed)  # the law's mean with its extrapolation bias
    L = d["mean"] @ w  # (S, M) expected loss of each mixture
    P = d["pred"] @ w  # one run's loss, with run offset and noise
    a = (1 - interval) / 2
    ranks = np.argsort(np.argsort(L, axis=1), axis=1) + 1
    observed = obs[[f"{t}_loss" for t in fit.targets]].to_numpy() @ w
    out = pd.DataFrame(
        {
            "mixture": [", ".join(f"{x:.3f}" for x in row) for row in h],
            "pred_mean": L.mean(0),
            "pred_lower": np.quantile(L, a, axis=0),
            "pred_upper": np.quantile(L, 1 - a, axis=0),
            "run_lower": np.quantile(P, a, axis=0),
            "run_upper": np.quantile(P, 1 - a, axis=0),
            "expected_rank": ranks.mean(0),
            "p_best": (ranks == 1).mean(0),
            "observed": observed,
        }
    )
    out["pred_rank"] = out.pred_mean.rank().astype(int)
    out["obs_rank"] = out.observed.rank().astype(int)
    out["observed_in_run_interval"] = (out.observed >= out.run_lower) & (out.observed <= out.run_upper)
    return out


def markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame as a markdown table (no tabulate dependency)."""

    def cell(x):
        if isinstance(x, (bool, np.bool_)):
            return "yes" if x else "no"
        if isinstance(x, (float, np.floating)):
            return f"{x:.{digits}g}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.{digits}f}"
        return str(x)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def tv(a, b) -> float:
    return 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--laws", default="additive", help="comma-separated registered laws (default additive); 'all' for every one"
    )
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--argmin-draws", type=int, default=200)
    ap.add_argument(
        "--min-fraction",
        type=float,
        default=0.35,
        help="drop checkpoints before this share of their run's tokens "
        "(default 0.35, as benchmarks/scale_extrapolation.py)",
    )
    ap.add_argument(
        "--target-accept", type=float, default=0.9, help="NUTS target acceptance (default 0.9, the library's)"
    )
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(f"skipped: the real data {DATA} is absent (it lives beside the repository, in ../shared/data)")
        return 0
    logging.basicConfig(format="bayesmix: %(message)s", level=logging.WARNING)
    laws = bayesmix.available_laws() if args.laws == "all" else [s.strip() for s in args.laws.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)

    table = bayesmix.read_runs(DATA)
    train = table.subset(table.model_size <= FIT_MAX)
    obs = final_checkpoints(table)
    domains = table.domains
    objectives = {
        "mean of 7 domains": {t: 1.0 / len(domains) for t in domains},
        "openhermes": {"openhermes": 1.0},
    }
    scales = {
        "310M": (3.1e8, float(table.n_tokens[table.model_size == 3.1e8].max())),
        "1.235B": (FIT_MAX, float(table.n_tokens[table.model_size == FIT_MAX].max())),
        "2.718B": (TARGET_N, float(obs.n_tokens.max())),
    }
    swept = train.weights
    constraint_sets = {
        f"floor {FLOOR}": dict(floors=FLOOR),
        "swept box": dict(floors=swept.min(0), caps=swept.max(0)),
    }
    ranking_rows, first_rows, rec_rows, scale_rows = [], [], [], []
    for law in laws:
        fit = cached_fit(train, law, args)
        for name, tw in objectives.items():
            w, _ = resolve_target_weights(fit.targets, fit.domains, target_weights=tw)
            rk = rank_trained(fit, obs, w, args.seed)
            rk.insert(0, "objective", name)
            rk.insert(0, "law", law)
            ranking_rows.append(rk)
            first = rk.loc[rk.pred_mean.idxmin()]
            first_rows.append(
                {
                    "law": law,
                    "objective": name,
                    "posterior_first": first.mixture,
                    "p_best": first.p_best,
                    "observed_of_first": first.observed,
                    "best_observed": rk.observed.min(),
                    "worst_observed": rk.observed.max(),
                    "gap_to_best": first.observed - rk.observed.min(),
                    "ranks_agree": bool((rk.pred_rank == rk.obs_rank).all()),
                    "spearman": float(rk[["pred_mean", "observed"]].corr(method="spearman").iloc[0, 1]),
                    "observed_in_90%_run_interval": f"{int(rk.observed_in_run_interval.sum())}/4",
                }
            )
            fav = obs.loc[rk.pred_mean.idxmin(), [f"weight_{d}" for d in domains]].to_numpy(dtype=float)
            for cname, cons in constraint_sets.items():
                recs = {}
                for label, (N, D) in scales.items():
                    t0 = time.perf_counter()
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        recs[label] = recommend(
                            fit,
                            N,
                            D,
                            target_weights=tw,
                            baseline=fav,
                            argmin_draws=args.argmin_draws,
                            seed=args.seed,
                            **cons,
                        )
                    for c in caught:
                        print(f"[{law}, {name}, {cname}, {label}] warning: {c.message}")
                    print(
                        f"[{law}, {name}, {cname}] recommended for {label} in {time.perf_counter() - t0:.1f} s",
                        flush=True,
                    )
                rec = recs["2.718B"]
                m = rec.metrics
                # The extrapolation bias is shared by all mixtures within a draw: for the mean
                # objective it only reweights draws, so switching it off should barely move the answer.
                no_bias = recommend(
                    dataclasses.replace(fit, extrapolation_sd=0.0),
                    TARGET_N,
                    scales["2.718B"][1],
                    target_weights=tw,
                    baseline=fav,
                    argmin_draws=args.argmin_draws,
                    path_points=1,
                    seed=args.seed,
                    **cons,
                )
                short = "mean7" if name.startswith("mean") else name
                rec.save(RESULTS / f"rec-{law}-{short}-{cname.replace(' ', '-')}")
                q = rec.table
                rec_rows.append(
                    {
                        "law": law,
                        "objective": name,
                        "constraints": cname,
                        "recommended [90% interval of the optimum]": ", ".join(
                            f"{d}={x:.2f} [{lo:.2f}, {hi:.2f}]"
                            for d, x, lo, hi in zip(domains, rec.weights, q.optimum_lower, q.optimum_upper)
                        ),
                        "expected_loss": m.expected_loss,
                        "lower": m.lower,
                        "upper": m.upper,
                        "p_beats_favourite": m.p_beats_baseline,
                        "improvement": m.improvement,
                        "improvement_lower": m.improvement_lower,
                        "improvement_upper": m.improvement_upper,
                        "expected_regret": m.expected_regret,
                        "favourite_regret": m.baseline_expected_regret,
                        "projected_gradient": m.projected_gradient_norm,
                        "starts_at_best": f"{m.starts_at_best}/{m.starts}",
                        "local_optima": m.local_optima,
                        "tv_without_bias": tv(rec.weights, no_bias.weights),
                        "seconds": m.seconds,
                    }
                )
                for label, r in recs.items():
                    scale_rows.append(
                        {
                            "law": law,
                            "objective": name,
                            "constraints": cname,
                            "target": label,
                            **{d: x for d, x in zip(domains, r.weights)},
                            "expected_loss": r.metrics.expected_loss,
                            "tv_to_2.718B": tv(r.weights, recs["2.718B"].weights),
                            "tv_to_310M": tv(r.weights, recs["310M"].weights),
                        }
                    )

    ranking = pd.concat(ranking_rows, ignore_index=True)
    first_df = pd.DataFrame(first_rows)
    recs_df = pd.DataFrame(rec_rows)
    scale_df = pd.DataFrame(scale_rows)
    frames = ((ranking, "ranking"), (first_df, "favourite"), (recs_df, "recommendation"), (scale_df, "scale"))
    for frame, name in frames:
        frame.to_csv(RESULTS / f"{name}.csv", index=False)
    print("\n## The 4 mixtures trained at 2.718B: predicted (fit up to 1.235B) against observed (final checkpoint)\n")
    print(markdown(ranking.drop(columns=["run_lower", "run_upper"])))
    print("\n## The posterior's favourite of the 4 against the best observed\n")
    print(markdown(first_df))
    print(
        f"\n## Recommendation at 2.718B (baseline: the posterior's favourite of the 4; {args.argmin_draws} draws for "
        "the optimum's interval)\n"
    )
    print(markdown(recs_df))
    print("\n## How the recommendation moves with the target scale\n")
    print(markdown(scale_df, 3))
    print(f"\nwritten to {RESULTS.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
