"""Benchmark every registered law on the real SlimPajama sweep (issue 2).

Two splits, both from ``../shared/data/dmsl_llm_slimpajama.csv`` (Shukor et al.
2025, as redistributed by Dai & Zheng 2026):

- ``scale``: fit on every run up to 1.235B parameters with every checkpoint
  (the default of ``bayesmix fit``: the checkpoint model of
  ``bayesmix.schedule``), predict the 2.718B runs (4 mixtures x 11
  checkpoints x 8 targets). Reported separately: the final checkpoints (32
  values; over all 8 targets and over the 7 domain targets), the checkpoints
  at or after 35% of their run, and every checkpoint. ``--min-fraction``
  drops early checkpoints from the fit, as the old advice did.
- ``mixture``: mixture extrapolation at one scale: the 60 runs at 122M
  parameters and 9.998e9 tokens, shuffled with
  ``numpy.random.default_rng(11514).permutation(60)``; the first 48 train, the
  last 12 validate. Error on entries whose own-domain weight is at least 0.1
  (the 7 domain targets).

Printed per law (and per target): MRE % of the posterior mean, coverage % of
the 90% posterior predictive interval, mean held-out log predictive density
per point (nats, on the loss scale), mean width and interval score (Gneiting
and Raftery 2007) of the 90% predictive interval
as % of the predicted loss, fit wall time (end to end, draws
materialised), divergences, max R-hat, min bulk/tail ESS and leapfrog steps
per draw, and the extrapolation_sd the fit measured by holding out its own
largest size. ``--out`` writes the per-target table as CSV.

Examples::

    python benchmarks/scale_extrapolation.py --laws additive
    python benchmarks/scale_extrapolation.py --laws additive,joint,exponential,bimix,own_weight --ensemble
    python benchmarks/scale_extrapolation.py --split mixture
    python benchmarks/scale_extrapolation.py --quick          # smoke run
    python benchmarks/scale_extrapolation.py --combine a.csv b.csv   # side-by-side table of earlier runs
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesmix  # (sets the XLA device count before jax starts)
from bayesmix import available_laws, get_law
from bayesmix.checks.ppc import interval_score
from bayesmix.data import RunTable, RunTableError, read_runs
from bayesmix.posterior import Posterior

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"
FIT_MAX_SIZE = 1.3e9  # fit on sizes up to 1.235B
TEST_SIZE = 2.718e9
MIX_SIZE, MIX_TOKENS = 1.22e8, 9.998e9
MIX_SEED, MIX_TRAIN = 11514, 48
INTERVAL = 0.9


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--laws", default=None, help="comma-separated laws (default: every registered law)")
    p.add_argument(
        "--split", choices=("scale", "mixture", "both"), default="scale", help="which benchmark split (default: scale)"
    )
    p.add_argument("--targets", default=None, help="comma-separated targets (default: all 8)")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--target-accept",
        type=float,
        default=None,
        help="NUTS target acceptance probability (default: each law's own, as bayesmix.fit)",
    )
    p.add_argument(
        "--min-fraction",
        type=float,
        default=0.0,
        help="scale split: drop checkpoints before this share of their run's tokens (default 0: keep every one)",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="fit checkpoints as final losses (bayesmix fit's default today) instead of the checkpoint model",
    )
    p.add_argument(
        "--run-effects",
        choices=("offset+slope", "offset", "none"),
        default="offset+slope",
        help=(
            "how checkpoints of one run are tied (default: the fit's own, an offset and a slope per run); "
            "'offset' pins the slope sd near 0 and 'none' also the offset (independent checkpoints), through "
            "their priors, to show what the tie does to the intervals"
        ),
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 chains x 150 warm-up x 150 draws, targets arxiv,c4 unless --targets",
    )
    p.add_argument("--out", default=None, help="write the per-target table to this CSV file")
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="also score the stacked ensemble of the laws fitted in each split (bayesmix.ensemble), as law 'ensemble'",
    )
    p.add_argument(
        "--combine",
        nargs="+",
        default=None,
        metavar="CSV",
        help="print the side-by-side table of earlier runs' --out files (no fitting)",
    )
    a = p.parse_args(argv)
    if a.quick:
        a.chains, a.warmup, a.draws = 2, 150, 150
        a.targets = a.targets or "arxiv,c4"
    return a


LATE = 0.35  # "late" checkpoints: at or after this share of their run's schedule


def late_mask(table: RunTable, min_fraction: float = LATE) -> np.ndarray:
    """Rows at or after ``min_fraction`` of their run's schedule."""
    return table.token_fraction() >= min_fraction


def final_mask(table: RunTable) -> np.ndarray:
    """Rows at the end of their run's schedule (the final losses)."""
    return table.token_fraction() >= 1 - 1e-9


def per_target_sampler_stats(fit) -> pd.DataFrame:
    """Max R-hat and min bulk/tail ESS over every scalar that belongs to each target.

    A scalar belongs to a target when its site has a "target" dimension, or a
    "foreign" one (targets that are not training domains) and the target is
    foreign; the dimensions are read from the fit's ArviZ posterior.
    """
    from arviz_stats.base import array_stats

    posterior = fit.posterior["posterior"]
    foreign = [t for t in fit.targets if t not in fit.domains]
    rows = []
    for t in fit.targets:
        cols = []
        for name in fit.draws:
            da = posterior[name]  # (chain, draw, ...)
            if "target" in da.dims:
                part = da.sel(target=t)
            elif "foreign" in da.dims and t in foreign:
                part = da.sel(foreign=t)
            else:
                continue
            part = np.asarray(part.transpose("chain", "draw", ...).values)
            cols.append(part.reshape(part.shape[:2] + (-1,)))
        x = np.concatenate(cols, axis=-1)
        x = x[..., np.ptp(x, axis=(0, 1)) > 0]  # parameters pinned by design (tau_run at one scale) have no R-hat
        rhat = np.atleast_1d(array_stats.rhat(x, chain_axis=0, draw_axis=1, method="rank"))
        bulk = np.atleast_1d(array_stats.ess(x, chain_axis=0, draw_axis=1, method="bulk"))
        tail = np.atleast_1d(array_stats.ess(x, chain_axis=0, draw_axis=1, method="tail", prob=0.05))
        rows.append(
            {
                "target": t,
                "max_rhat": float(np.nanmax(rhat)),
                "min_ess_bulk": float(np.nanmin(bulk)),
                "min_ess_tail": float(np.nanmin(tail)),
            }
        )
    out = pd.DataFrame(rows).set_index("target")
    blocks = {b["block"]: b for b in fit.timing.get("blocks", []) if "block" in b}
    out["divergences"] = [blocks[t]["divergences"] if t in blocks else np.nan for t in out.index]
    out["steps_per_draw"] = [blocks[t]["mean_steps"] if t in blocks else np.nan for t in out.index]
    return out


def score(fit, table: RunTable, seed: int) -> pd.DataFrame:
    """Long table (row, target): observed, posterior mean, 90% predictive interval, log predictive density.

    The density is of the law's mean with its extrapolation bias
    (:meth:`bayesmix.posterior.Posterior.predictive`, as ``predict_table``
    draws it), plus one new checkpoint of a new run.
    """
    pt = fit.predict_table(table, interval=INTERVAL, seed=seed)
    post = Posterior.from_fit(fit)
    d = post.predictive(table.weights, table.model_size, table.n_tokens, seed=seed, run_tokens=table.run_tokens)
    S = post.S
    sd = np.sqrt(post.noise_variance(table.n_tokens, table.run_tokens))  # (S, n, T)
    y = table.frame[[f"{t}_loss" for t in fit.targets]].to_numpy(dtype=float)
    logy = np.log(np.where(np.isfinite(y), y, 1.0))
    z = (logy[None] - np.log(d["mean"])) / sd
    logpdf = -0.5 * z**2 - np.log(sd) - 0.5 * np.log(2 * np.pi) - logy[None]  # density of the loss itself
    lpd = np.logaddexp.reduce(logpdf, axis=0) - np.log(S)
    pt["lpd"] = lpd.ravel()
    pt["rel_err"] = np.abs(pt["mean"] - pt.observed) / pt.observed
    pt["covered"] = (pt.observed >= pt.pred_lower) & (pt.observed <= pt.pred_upper)
    pt["width"] = (pt.pred_upper - pt.pred_lower) / pt["mean"]
    pt["iscore"] = interval_score(pt.pred_lower, pt.pred_upper, pt.observed, INTERVAL) / pt.observed
    return pt.dropna(subset=["observed"])


def summarise(pt: pd.DataFrame, by: str | None) -> pd.DataFrame:
    g = pt.groupby(by) if by else pt.assign(_all="all").groupby("_all")
    out = g.agg(
        points=("rel_err", "size"),
        mre_pct=("rel_err", "mean"),
        cover90_pct=("covered", "mean"),
        width90_pct=("width", "mean"),
        iscore90_pct=("iscore", "mean"),
        lpd=("lpd", "mean"),
    )
    for c in ("mre_pct", "cover90_pct", "width90_pct", "iscore90_pct"):
        out[c] *= 100
    return out


# Prior overrides that switch a run's own slope (and offset) off: a half-normal with a scale far below the noise.
RUN_EFFECT_PRIORS = {
    "offset+slope": None,
    "offset": {"kappa_run": "HalfNormal(1e-6)"},
    "none": {"kappa_run": "HalfNormal(1e-6)", "tau_run": "HalfNormal(1e-6)"},
}


def run_fit(table, law, targets, args, min_fraction):
    caught = []
    cache = os.environ.get("BAYESMIX_BENCH_CACHE")  # a folder: reuse fits of earlier runs (for re-scoring only)
    if cache:
        path = Path(cache) / f"{law}-{args.run_effects}-{min_fraction:g}-{args.seed}-{len(table.frame)}.nc"
        if path.exists():
            return bayesmix.load(path), float("nan"), ["(loaded from the cache)"]
    priors = RUN_EFFECT_PRIORS[getattr(args, "run_effects", "offset+slope")]
    if priors and not table.has_checkpoints:
        priors = {k: v for k, v in priors.items() if k != "kappa_run"}
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always", bayesmix.FitWarning)
        fit = bayesmix.fit(
            table,
            law,
            targets=targets,
            chains=args.chains,
            warmup=args.warmup,
            draws=args.draws,
            seed=args.seed,
            target_accept=args.target_accept,
            progress=False,
            min_fraction=min_fraction,
            priors=priors,
            checkpoints=not getattr(args, "plain", False),
        )
        caught = [str(x.message) for x in w if issubclass(x.category, bayesmix.FitWarning)]
    seconds = time.perf_counter() - t0
    if cache:
        Path(cache).mkdir(parents=True, exist_ok=True)
        fit.save(path)
    return fit, seconds, caught


def report_law(
    split: str,
    law: str,
    fit,
    seconds: float,
    caught: list[str],
    pt: pd.DataFrame,
    extra_groups: dict[str, pd.Series] | None = None,
) -> pd.DataFrame:
    if hasattr(fit, "fits"):
        return report_ensemble(split, fit, pt, extra_groups)
    d = fit.diagnostics
    c = fit.config
    print(
        f"\n[{split}] {law}: fit {seconds:.1f} s ({c.chains} chains x {c.warmup}+{c.draws}, "
        f"target_accept {c.target_accept}), {d.divergences} divergences, max R-hat {d.max_rhat:.3f}, "
        f"min ESS bulk {d.min_ess_bulk:.0f} / tail {d.min_ess_tail:.0f}, "
        f"{d.max_tree_depth_hits} draws at max tree depth"
    )
    for msg in caught:
        print(f"  FitWarning: {msg.splitlines()[0][:300]}")
    stats = per_target_sampler_stats(fit)
    per_target = summarise(pt, "target").join(stats)
    sd = pd.Series(Posterior.from_fit(fit).extrapolation_sd, index=list(fit.targets))
    per_target["extrap_sd"] = sd.reindex(per_target.index)
    overall = summarise(pt, None)
    groups = [overall.rename(index={"all": "all points"})]
    for name, mask in (extra_groups or {}).items():
        groups.append(summarise(pt[mask.to_numpy()], None).rename(index={"all": name}))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            per_target.round(
                {
                    "mre_pct": 2,
                    "cover90_pct": 1,
                    "lpd": 3,
                    "max_rhat": 3,
                    "min_ess_bulk": 0,
                    "min_ess_tail": 0,
                    "steps_per_draw": 1,
                    "extrap_sd": 4,
                }
            ).to_string()
        )
        print(
            pd.concat(groups)
            .round({"mre_pct": 2, "cover90_pct": 1, "width90_pct": 2, "iscore90_pct": 2, "lpd": 3})
            .to_string()
        )
    rows = per_target.reset_index()
    groups_rows = pd.concat(groups).reset_index().rename(columns={"index": "target", "_all": "target"})
    rows = pd.concat([rows, groups_rows], ignore_index=True)
    rows.insert(0, "law", law)
    rows.insert(0, "split", split)
    rows["fit_seconds"] = seconds
    rows["divergences_total"] = d.divergences
    rows["max_rhat_total"] = d.max_rhat
    rows["min_ess_total"] = min(d.min_ess_bulk, d.min_ess_tail)
    return rows


def report_ensemble(split: str, ens, pt: pd.DataFrame, extra_groups: dict[str, pd.Series] | None) -> pd.DataFrame:
    """The ensemble's rows: its weights, then the same scores as a law's (sampler statistics are its laws')."""
    print(f"\n[{split}] ensemble: {ens.note}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        if len(ens.by_target.columns):
            print(ens.by_target.round(2).to_string())
        per_target = summarise(pt, "target")
        groups = [summarise(pt, None).rename(index={"all": "all points"})]
        for name, mask in (extra_groups or {}).items():
            groups.append(summarise(pt[mask.to_numpy()], None).rename(index={"all": name}))
        print(per_target.round(2).to_string())
        print(pd.concat(groups).round(2).to_string())
    rows = pd.concat(
        [
            per_target.reset_index(),
            pd.concat(groups).reset_index().rename(columns={"index": "target", "_all": "target"}),
        ],
        ignore_index=True,
    )
    rows.insert(0, "law", "ensemble")
    rows.insert(0, "split", split)
    rows["fit_seconds"] = 0.0
    rows["divergences_total"] = sum(f.diagnostics.divergences for f in ens.fits)
    rows["max_rhat_total"] = max(f.diagnostics.max_rhat for f in ens.fits)
    rows["min_ess_total"] = min(min(f.diagnostics.min_ess_bulk, f.diagnostics.min_ess_tail) for f in ens.fits)
    rows["weights"] = ", ".join(f"{n} {w:.2f}" for n, w in zip(ens.names, ens.weights))
    return rows


def with_ensemble(fits: list, args) -> list:
    """The split's fits, and their stacked ensemble after them with --ensemble (two or more fits)."""
    if getattr(args, "ensemble", False) and len(fits) >= 2:
        ens = bayesmix.ensemble([f for f, _, _ in fits])
        return fits + [(ens, 0.0, [])]
    return fits


def scale_split(runs: RunTable, laws, targets, args) -> list[pd.DataFrame]:
    train = runs.subset(runs.model_size < FIT_MAX_SIZE)
    test = runs.subset(np.isclose(runs.model_size, TEST_SIZE))
    dropped = (
        f"checkpoints before {args.min_fraction:g} of each run are dropped" if args.min_fraction else "every checkpoint"
    )
    print(
        f"scale split: fit on {train.n_rows} rows ({train.n_runs} runs up to 1.235B; {dropped}), "
        f"predict {test.n_rows} rows at 2.718B"
    )
    out = []
    fits = with_ensemble([run_fit(train, law, targets, args, args.min_fraction) for law in laws], args)
    for fit, seconds, caught in fits:
        law = fit.law.name
        pt = score(fit, test, args.seed)
        rows = pt.row.to_numpy()
        final = pd.Series(final_mask(test)[rows], index=pt.index)
        domain = pd.Series(pt.target.isin(test.domains).to_numpy(), index=pt.index)
        late = pd.Series(late_mask(test)[rows], index=pt.index)
        groups = {"final losses": final, "final, domain targets": final & domain, f"late (>= {LATE:g} of run)": late}
        out.append(report_law("scale", law, fit, seconds, caught, pt, groups))
    return out


def one_scale_split(runs: RunTable) -> tuple[RunTable, RunTable]:
    """(train, validate): SlimPajama's 60 runs at 122M parameters and 9.998e9 tokens, shuffled with ``MIX_SEED``,
    the first ``MIX_TRAIN`` to fit and the rest to validate."""
    one = runs.subset(np.isclose(runs.model_size, MIX_SIZE) & np.isclose(runs.n_tokens, MIX_TOKENS))
    if one.n_rows != 60:
        raise SystemExit(f"mixture split expects 60 runs at 122M parameters and 9.998e9 tokens; found {one.n_rows}")
    order = np.random.default_rng(MIX_SEED).permutation(60)
    return one.subset(order[:MIX_TRAIN]), one.subset(order[MIX_TRAIN:])


def mixture_split(runs: RunTable, laws, targets, args) -> list[pd.DataFrame]:
    train, val = one_scale_split(runs)
    print(
        f"mixture split: {train.n_rows} runs train, {val.n_rows} validate (122M, 9.998e9 tokens); "
        "error on entries with own-domain weight >= 0.1"
    )
    out, fits = [], []
    for law in laws:
        try:
            fits.append(run_fit(train, law, targets, args, 0.0))
        except RunTableError as err:  # a law not identified at one scale says so instead of sampling a ridge
            print(f"\n[mixture] {law}: not fitted: {err}")
            out.append(
                pd.DataFrame([{"split": "mixture", "law": law, "target": "all points", "note": f"not fitted: {err}"}])
            )
    for fit, seconds, caught in with_ensemble(fits, args):
        law = fit.law.name
        pt = score(fit, val, args.seed)
        own = np.array(
            [
                val.frame.loc[r, f"weight_{t}"] if f"weight_{t}" in val.frame else np.nan
                for r, t in zip(pt.row, pt.target)
            ]
        )
        pt = pt[own >= 0.1]
        out.append(report_law("mixture", law, fit, seconds, caught, pt))
    return out


def side_by_side(result: pd.DataFrame) -> str:
    """The laws side by side, per split: overall error, calibration, held-out lpd, diagnostics; MRE per target.

    Ends with the law the held-out log predictive density prefers (per point;
    the difference is a sum over correlated checkpoints, so read it as a
    ranking, not a test -- ``bayesmix compare`` gives run-level standard errors).
    """
    out = []
    for split, r in result.groupby("split", sort=False):
        notes = (
            [f"{law}: {note}" for law, note in r.dropna(subset=["note"])[["law", "note"]].itertuples(index=False)]
            if "note" in r
            else []
        )
        r = r[r.law.isin(r.dropna(subset=["mre_pct"]).law)] if "mre_pct" in r else r.iloc[:0]
        if r.empty:
            out += [f"\n## {split} split: no law fitted"] + notes
            continue
        overall = r[r.target == "all points"].set_index("law")
        table = pd.DataFrame(
            {
                "mre_pct": overall.mre_pct,
                "cover90_pct": overall.cover90_pct,
                "lpd_per_point": overall.lpd,
                "fit_s": overall.fit_seconds,
                "divergences": overall.divergences_total,
                "max_rhat": overall.max_rhat_total,
                "min_ess": overall.min_ess_total,
            }
        ).round({"mre_pct": 2, "cover90_pct": 1, "lpd_per_point": 3, "fit_s": 0, "max_rhat": 3, "min_ess": 0})
        # The scale split's headline: the final losses (what the user will train to), beside all points.
        for group, tag in (("final losses", "final"), ("final, domain targets", "final7")):
            g = r[r.target == group].set_index("law")
            if len(g):
                if "iscore90_pct" in g:
                    table.insert(0, f"{tag}_iscore90", g.iscore90_pct.round(2))
                table.insert(0, f"{tag}_width90", g.width90_pct.round(2))
                table.insert(0, f"{tag}_cover90", g.cover90_pct.round(1))
                table.insert(0, f"{tag}_mre", g.mre_pct.round(2))
        groups = ("all points", "final losses", "final, domain targets")
        per_target = (
            r[~r.target.isin(groups) & ~r.target.str.startswith("late")]
            .pivot(index="law", columns="target", values="mre_pct")
            .round(2)
        )
        best = table.lpd_per_point.idxmax()
        others = table.lpd_per_point.drop(best)
        gap = (
            f" (by {table.lpd_per_point[best] - others.max():.3f} nats per point over {others.idxmax()})"
            if len(others)
            else ""
        )
        out += [
            f"\n## {split} split: laws side by side",
            table.to_string(),
            "",
            "MRE % of the posterior mean per target:",
            per_target.to_string(),
            "",
            f"held-out log predictive density prefers {best}{gap}",
        ] + notes
    return "\n".join(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.combine:
        frames = [pd.read_csv(f).assign(_file=i) for i, f in enumerate(args.combine)]
        combined = pd.concat(frames, ignore_index=True)
        # A law measured in several files: its latest measurement (the later file) counts, whole --
        # a later "not fitted" row must not leave an earlier run's per-target rows behind.
        latest = combined.groupby(["split", "law"])["_file"].transform("max")
        print(side_by_side(combined[combined._file == latest].drop(columns="_file")))
        return 0
    if not DATA.exists():
        print(
            f"SKIPPED: the real data are not available: {DATA} is absent (it lives beside the repo, in ../shared/data)."
        )
        return 0
    laws = args.laws.split(",") if args.laws else available_laws()
    for law in laws:
        get_law(law)  # unknown names fail here, before any fitting
    runs = read_runs(DATA, quiet=True)
    targets = tuple(args.targets.split(",")) if args.targets else None
    ta = args.target_accept or "each law's own"
    print(
        f"bayesmix {bayesmix.__version__}; laws {', '.join(laws)}; {args.chains} chains x {args.warmup} warm-up + "
        f"{args.draws} draws; target_accept {ta}; seed {args.seed}"
    )
    tables = []
    if args.split in ("scale", "both"):
        tables += scale_split(runs, laws, targets, args)
    if args.split in ("mixture", "both"):
        tables += mixture_split(runs, laws, targets, args)
    result = pd.concat(tables, ignore_index=True)
    print(side_by_side(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        result.to_csv(args.out, index=False)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
