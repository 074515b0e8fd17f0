"""Retrospective benchmark of `bayesmix next-run` on the real SlimPajama sweep.

Simulates the process a user goes through with the runs that really exist:
start from a small seed set (8 runs at 122M), then, round after round, let a
strategy choose more runs from the pool of runs not yet used (sizes up to
1.235B), pay 6 N D for each (D its final token count; the whole run with all
its checkpoints is added), refit, and record against cumulative compute:

- the error of the 2.718B predictions: mean relative error (MRE) of the
  posterior mean over every 2.718B checkpoint and target, and the log
  predictive density (LPD) of those observations, per observed cell;
- the regret of the recommended mixture at 2.718B (target: mean of the 7
  domain losses), twice: against the full-pool fit's posterior
  (E_full[L(h_rec)] - E_full[L(h_full)]), and among the 4 mixtures really
  trained at 2.718B (observed loss of the one the fit ranks first minus the
  best observed).

Strategies: ``active`` (greedy next-run batches: expected reduction of the
variance of the target loss at the recommended mixture at 2.718B per FLOP,
conditioned on the runs already chosen in the round), ``random`` and
``cheapest`` (cheapest-first, ties broken at random). Budgets grow
geometrically (x ``ratio`` per round) from the seed set's cost to the full
pool's, so every strategy is refitted at the same few compute levels; runs
are added within a round until the next one would exceed the round's budget.

Reported: for each strategy, the compute it needs to reach the full-pool fit's
MRE (within ``--tolerance``, default 5%), median over seeds; curves as PNG.

    python benchmarks/retrospective.py            # full: 3 seeds, 7 domain targets (about 20 minutes on 2 cores)
    python benchmarks/retrospective.py --quick    # CI form: 1 target (c4), pool up to 310M, 1 round

Measured (full run, 3 seeds x 7 targets, 19 minutes on 2 cores shared with other jobs; own_weight law): to bring
the regret of the recommendation below 5e-4 nats and keep it there, active needed 1.8e21 FLOPs
(median) against 1.1e22 for random (0.16x) and 2.2e22 for cheapest-first; below 1e-4, 1.0e22
against 2.2e22 (0.45x). For the full-pool MRE at 2.718B (+5%) it needed 0.67x random's compute
(1.5e22 against 2.2e22) and for the full-pool LPD the same (0.99x): the scale error is reached no
faster than by random choice, which spreads its runs over all sizes. Every fit (2 chains x 300)
carries a diagnostic warning, so single rounds are noisy (one active round reads 8.6% MRE).

Refits are the cost, so the cheapest law that works (own_weight), 2 chains
and few draws are used; the fits' diagnostics are recorded per row
(``diagnostics_ok``) and counted in the printed summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

import bayesmix
from bayesmix.decide import build_constraints, resolve_target_weights
from bayesmix.executor import current as current_executor
from bayesmix.executor import parallel, scheduler_from_env
from bayesmix.plan import Scorer, greedy_batch, score_candidates
from bayesmix.plan.candidates import candidate_table, checkpoint_fractions, training_flops
from bayesmix.plan.preposterior import DrawSet
from bayesmix.plan.scorer import DecisionProblem, decision_problem
from bayesmix.posterior import Posterior

os.environ.setdefault("BAYESMIX_PROGRESS", "0")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"
TEST_SIZE = 2.718e9


@dataclass(frozen=True)
class Config:
    """Benchmark settings (saved beside the results)."""

    # The 7 domain targets. openhermes (a target that is not a training domain)
    # needs the law's learned domain share, which doubles the time of every fit.
    targets: tuple[str, ...] | None = ("arxiv", "book", "c4", "github", "commoncrawl", "stackexchange", "wikipedia")
    pool_max_size: float = 1.235e9
    seed_size: float = 1.22e8
    seed_runs: int = 8
    seeds: int = 3
    ratio: float = 2.5  # budget growth per round
    rounds: int | None = None  # None: until the full pool's cost
    law: str = "own_weight"
    chains: int = 2
    warmup: int = 300
    draws: int = 300
    max_draws: int = 400  # draws the scorer uses
    max_batch: int = 48  # most runs the active strategy adds per round (a user's limit; it caps the greedy loop)
    tolerance: float = 0.05
    # Regret of the recommendation against the full-pool posterior (nats of
    # target loss) at which the decision counts as made: the compute each
    # strategy needs to get below and stay there is reported.
    regret_levels: tuple[float, ...] = (5e-4, 1e-4)
    # Checkpoints before this share of their run's tokens are dropped, from the
    # fits and from the 2.718B test runs, as in benchmarks/scale_extrapolation.py:
    # they carry warm-up transients no law of (N, D) describes (kept, they put
    # every strategy's 2.718B error near 10%).
    min_fraction: float = 0.35
    strategies: tuple[str, ...] = ("active", "random", "cheapest")


FULL = Config()
QUICK = Config(
    targets=("c4",),
    pool_max_size=3.1e8,
    seeds=1,
    ratio=4.0,
    rounds=1,
    warmup=150,
    draws=150,
    max_draws=200,
    max_batch=32,
)


# ---------------------------------------------------------------- data
@dataclass
class Runs:
    """The sweep split into the pool (with one row per run), the seed candidates and the 2.718B test runs."""

    table: object  # RunTable of everything used
    pool: pd.DataFrame  # one row per pool run: run, weights, model_size, n_tokens (final), cost
    test: object  # RunTable of the 2.718B runs


def load_runs(cfg: Config) -> Runs:
    """Read the sweep; keep the configured targets; index the pool runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = bayesmix.read_runs(DATA)
    if cfg.targets is not None:
        keep = [c for c in table.frame.columns if not c.endswith("_loss") or c[:-5] in cfg.targets]
        table = bayesmix.read_runs(table.frame[keep])
    test = table.subset(table.model_size == TEST_SIZE).drop_early_checkpoints(cfg.min_fraction)
    in_pool = table.model_size <= cfg.pool_max_size
    f = table.frame[in_pool]
    pool = (
        f.groupby("run", sort=True)
        .agg(
            **{c: (c, "first") for c in table.weight_columns},
            model_size=("model_size", "first"),
            n_tokens=("n_tokens", "max"),
        )
        .reset_index()
    )
    pool["cost"] = training_flops(pool.model_size, pool.n_tokens)
    return Runs(table=table.subset(in_pool | (table.model_size == TEST_SIZE)), pool=pool, test=test)


def train_table(runs: Runs, chosen: list[str]):
    """The RunTable of the chosen pool runs, all their checkpoints."""
    t = runs.table
    return t.subset(np.isin(t.run, chosen))


# ---------------------------------------------------------------- evaluation
def log_mean_exp(a: np.ndarray, axis: int = 0) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).mean(axis=axis, keepdims=True))).squeeze(axis)


def lpd_per_cell(post: Posterior, test, seed: int = 0) -> float:
    """Log predictive density of the test runs' observations, per observed cell.

    Per run: log mean_s p(y_run | theta_s), with the run offset integrated out
    (compound symmetry, as in the likelihood) and the law's extrapolation
    bias drawn as :meth:`bayesmix.posterior.Posterior.predictive` draws it
    (same seed, same normals). Missing cells are left out.
    """
    log_mu = post.log_means(test.weights, test.model_size, test.n_tokens)  # (S, n, T)
    log_mu = log_mu + post.log_bias(test.model_size, test.n_tokens, post.bias_normals(seed))
    y = np.log(test.losses)
    mask = np.isfinite(y)
    sigma2 = post.draws["sigma"] ** 2
    tau2 = post.draws["tau_run"] ** 2
    total = 0.0
    for run in np.unique(test.run):
        rows = test.run == run
        r = np.where(mask[rows][None], y[rows][None] - log_mu[:, rows], 0.0)  # (S, c, T)
        k = mask[rows].sum(0)  # (T,) observed checkpoints per target
        s1, s2 = r.sum(1), (r**2).sum(1)
        tot = sigma2 + k * tau2
        quad = (s2 - tau2 / tot * s1**2) / sigma2
        logdet = (k - 1.0) * np.log(sigma2) + np.log(tot)
        ll = -0.5 * (quad + logdet + k * math.log(2 * math.pi))
        total += float(log_mean_exp(np.where(k > 0, ll, 0.0).sum(1)))
    return total / int(mask.sum())


def decision_at_test(fit, draws: DrawSet, tokens: float) -> DecisionProblem:
    """The decision at 2.718B, made as the active strategy's scorer makes it (``decision_problem``).

    The mixture minimising the posterior mean of the target loss (the mean of
    the domain losses), without the extrapolation bias, under no constraint
    but the simplex.
    """
    tw, _ = resolve_target_weights(fit.targets, fit.domains)
    return decision_problem(fit, draws, tw, TEST_SIZE, tokens, build_constraints(fit.domains, tokens))


def target_loss(problem: DecisionProblem, h: np.ndarray, tokens: float) -> np.ndarray:
    """(S, M) target loss of every draw at mixtures h (M, K) at the test scale."""
    return problem.decision.objective_draws(np.atleast_2d(h), TEST_SIZE, tokens)


@dataclass
class Reference:
    """The full-pool fit: the errors to reach and the posterior regret is measured with."""

    fit: object
    problem: DecisionProblem
    h_rec: np.ndarray
    value: float
    mre: float
    lpd: float
    metrics: dict


def evaluate(fit, runs: Runs, ref: Reference | None, cfg: Config, seed: int = 0) -> dict:
    """MRE and LPD at 2.718B, and the regret of the recommended mixture.

    The regret is measured against the reference posterior and among the 4 observed mixtures.
    """
    draws = DrawSet.from_fit(fit, cfg.max_draws)
    test = runs.test
    pred = fit.predict_table(test, seed=seed)
    ok = np.isfinite(pred.observed)
    rel = np.abs(pred["mean"][ok] - pred.observed[ok]) / pred.observed[ok]
    domains_only = pred.target[ok].isin(fit.domains)
    D_test = float(test.n_tokens.max())
    problem = decision_at_test(fit, draws, D_test)
    tw = problem.decision.w
    h_rec = problem.h_rec
    out = {
        "mre": float(rel.mean()),
        "mre_domains": float(rel[domains_only].mean()),
        "lpd": lpd_per_cell(draws.posterior, test, seed),
        "h_rec": h_rec,
    }
    # among the 4 mixtures trained at 2.718B: the one the fit ranks first, observed
    final = test.frame[test.frame.n_tokens == test.frame.groupby("run").n_tokens.transform("max")]
    obs = final[[f"{t}_loss" for t in fit.targets]].to_numpy() @ tw
    h_test = final[test.weight_columns].to_numpy()
    ranked = target_loss(problem, h_test, D_test).mean(0)
    ok_obs = np.isfinite(obs)
    pick = int(np.argmin(np.where(ok_obs, ranked, np.inf)))
    out["regret_observed"] = float(obs[pick] - obs[ok_obs].min())
    if ref is not None:
        out["regret_reference"] = float(target_loss(ref.problem, h_rec, D_test).mean() - ref.value)
    out["diagnostics_ok"] = bool(fit.diagnostics.ok)
    return out


def do_fit(table, cfg: Config, seed: int):
    """One refit (FitWarnings recorded in the fit's diagnostics, not printed per fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesmix.FitWarning)
        return bayesmix.fit(
            table,
            cfg.law,
            chains=cfg.chains,
            warmup=cfg.warmup,
            draws=cfg.draws,
            seed=seed,
            progress=False,
            min_fraction=cfg.min_fraction,
        )


def reference(runs: Runs, cfg: Config) -> Reference:
    """Fit the whole pool: the error every strategy is trying to reach."""
    fit = do_fit(train_table(runs, list(runs.pool.run)), cfg, seed=0)
    draws = DrawSet.from_fit(fit, cfg.max_draws)
    D_test = float(runs.test.n_tokens.max())
    problem = decision_at_test(fit, draws, D_test)
    value = float(problem.weights @ problem.L_rec)  # the posterior mean target loss at the recommendation
    ev = evaluate(fit, runs, None, cfg)
    ref = Reference(
        fit=fit, problem=problem, h_rec=problem.h_rec, value=value, mre=ev["mre"], lpd=ev["lpd"], metrics=ev
    )
    ref.metrics["regret_reference"] = float(target_loss(problem, ref.h_rec, D_test).mean() - ref.value)
    return ref


# ---------------------------------------------------------------- strategies
def choose(strategy: str, fit, runs: Runs, used: list[str], budget: float, cfg: Config, rng) -> list[str]:
    """Runs to add this round, within ``budget`` FLOPs."""
    pool = runs.pool[~runs.pool.run.isin(used)].reset_index(drop=True)
    pool = pool[pool.cost <= budget].reset_index(drop=True)
    if pool.empty:
        return []
    if strategy == "random":
        out, left = [], budget
        order = rng.permutation(len(pool))
        for i in order:  # a uniformly random run among those that still fit, one at a time
            if pool.cost[i] <= left:
                out.append(pool.run[i])
                left -= pool.cost[i]
        return out
    if strategy == "cheapest":
        out, left = [], budget
        order = np.lexsort((rng.random(len(pool)), pool.cost.to_numpy()))
        for i in order:
            if pool.cost[i] > left:
                break
            out.append(pool.run[i])
            left -= pool.cost[i]
        return out
    if strategy in ("active", "active-decision"):
        h = pool[[f"weight_{d}" for d in fit.domains]].to_numpy()
        cand = candidate_table(h, pool.model_size, pool.n_tokens, fit.domains, names=list(pool.run))
        # the pool runs report the checkpoints the real runs have: the sweep's pattern
        scorer = Scorer(
            fit,
            cand,
            TEST_SIZE,
            float(runs.test.n_tokens.max()),
            fractions=checkpoint_fractions(runs.table),
            max_draws=cfg.max_draws,
            max_batch=cfg.max_batch,
            seed=int(rng.integers(1 << 31)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table, _ = score_candidates(scorer, check_top=0)
        table = table.assign(candidate=np.arange(len(table)))
        rank_by = "decision" if strategy == "active-decision" else "variance"
        plan = greedy_batch(scorer, table, batch=cfg.max_batch, budget=budget, rank_by=rank_by)
        return list(plan.name) if len(plan) else []
    raise ValueError(f"unknown strategy {strategy!r}")


def budgets(seed_cost: float, full_cost: float, cfg: Config) -> list[float]:
    """Cumulative budgets of the rounds: seed cost x ratio^k below the full pool's cost, then the full pool's cost."""
    out = []
    b = seed_cost * cfg.ratio
    while b < full_cost:
        out.append(b)
        b *= cfg.ratio
    out.append(full_cost)
    return out[: cfg.rounds] if cfg.rounds is not None else out


def strategy_path(task: tuple) -> list[dict]:
    """One strategy's rounds from one seed set (a task of an executor): a row per round, round 0 the seed fit."""
    cfg, runs, ref, seed, strategy = task
    seed_pool = runs.pool[runs.pool.model_size == cfg.seed_size]
    rng0 = np.random.default_rng([seed, 99])
    seed_runs = list(rng0.choice(seed_pool.run.to_numpy(), size=cfg.seed_runs, replace=False))
    seed_cost = float(runs.pool.set_index("run").loc[seed_runs, "cost"].sum())
    t1 = time.perf_counter()
    fit0 = do_fit(train_table(runs, seed_runs), cfg, seed=seed)
    ev0 = evaluate(fit0, runs, ref, cfg, seed)
    fit_s = time.perf_counter() - t1
    rows = []
    rng = np.random.default_rng([seed, len(strategy)])
    used, spent, fit = list(seed_runs), seed_cost, fit0
    rows.append(
        {
            "strategy": strategy,
            "seed": seed,
            "round": 0,
            "cum_flops": spent,
            "n_runs": len(used),
            "added": ",".join(used),
            "added_sizes": "",
            **{k: v for k, v in ev0.items() if k != "h_rec"},
            "fit_seconds": fit_s,
            "choose_seconds": 0.0,
        }
    )
    for k, B in enumerate(budgets(seed_cost, float(runs.pool.cost.sum()), cfg), 1):
        t2 = time.perf_counter()
        new = choose(strategy, fit, runs, used, B - spent, cfg, rng)
        t_choose = time.perf_counter() - t2
        if not new:
            continue
        used += new
        spent = float(runs.pool.set_index("run").loc[used, "cost"].sum())
        t3 = time.perf_counter()
        if len(used) == len(runs.pool):
            ev = dict(ref.metrics)  # the whole pool: that is the reference fit itself
        else:
            fit = do_fit(train_table(runs, used), cfg, seed=seed)
            ev = evaluate(fit, runs, ref, cfg, seed)
        sizes = runs.pool.set_index("run").loc[new, "model_size"]
        rows.append(
            {
                "strategy": strategy,
                "seed": seed,
                "round": k,
                "cum_flops": spent,
                "n_runs": len(used),
                "added": ",".join(new),
                "added_sizes": ",".join(f"{s:.3g}" for s in sizes),
                **{a: b for a, b in ev.items() if a != "h_rec"},
                "fit_seconds": time.perf_counter() - t3,
                "choose_seconds": t_choose,
            }
        )
        counts = pd.Series(sizes.to_numpy()).value_counts().sort_index()
        print(
            f"seed {seed} {strategy:>8} round {k}: {spent:.3g} FLOPs, {len(used)} runs (+{len(new)}: "
            f"{', '.join(f'{int(c)} at {n:.3g}' for n, c in counts.items())}), MRE {ev['mre']:.4f}, "
            f"LPD {ev['lpd']:.3f}, regret {ev['regret_reference']:.2e} ({time.perf_counter() - t2:.0f} s)",
            flush=True,
        )
    return rows


def run_benchmark(cfg: Config, out: Path) -> pd.DataFrame:
    """Run every strategy and seed; write curves.csv, summary.csv, config.json and curves.png; return the curves."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runs = load_runs(cfg)
    print(
        f"pool: {len(runs.pool)} runs up to {cfg.pool_max_size:.3g} parameters, {runs.pool.cost.sum():.3g} FLOPs in "
        f"all; test: {len(np.unique(runs.test.run))} runs at {TEST_SIZE:.4g}; targets: "
        f"{', '.join(runs.table.targets)}",
        flush=True,
    )
    ref = reference(runs, cfg)
    print(
        f"full-pool fit: MRE {ref.mre:.4f}, LPD {ref.lpd:.3f} per cell ({time.perf_counter() - t0:.0f} s)", flush=True
    )
    # Every (seed, strategy) path is independent: they run on the current executor (--workers, --scheduler).
    tasks = [(cfg, runs, ref, seed, strategy) for seed in range(cfg.seeds) for strategy in cfg.strategies]
    paths = current_executor().map(strategy_path, tasks, labels=[f"seed {t[3]} {t[4]}" for t in tasks])
    rows = [row for path in paths for row in path]
    curves = pd.DataFrame(rows)
    curves["mre_full"], curves["lpd_full"] = ref.mre, ref.lpd
    curves.to_csv(out / "curves.csv", index=False)
    summary = summarise(curves, ref, cfg)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "config.json").write_text(
        json.dumps(
            {
                **asdict(cfg),
                "full_pool_flops": float(runs.pool.cost.sum()),
                "mre_full": ref.mre,
                "lpd_full": ref.lpd,
                "seconds": time.perf_counter() - t0,
            },
            indent=1,
        )
    )
    plot(curves, ref, float(runs.pool.cost.sum()), cfg).savefig(out / "curves.png", dpi=130, bbox_inches="tight")
    print_summary(summary, curves, ref, cfg, float(runs.pool.cost.sum()))
    return curves


def reach(curves: pd.DataFrame, column: str, threshold: float, lower_is_better: bool = True) -> pd.DataFrame:
    """Per strategy and seed: the compute from which ``column`` stays within ``threshold`` in every later round.

    inf if never.

    "Stays" rather than "first touches": a fit that lands near the target once
    by luck (e.g. a prior-driven extrapolation from one model size) and then
    moves away has not reached it.
    """
    out = []
    for (s, seed), g in curves.groupby(["strategy", "seed"]):
        g = g.sort_values("cum_flops")
        ok = (g[column] <= threshold if lower_is_better else g[column] >= threshold).to_numpy()
        stays = np.flip(np.logical_and.accumulate(np.flip(ok)))  # ok here and in every later round
        flops = float(g.cum_flops.to_numpy()[stays][0]) if stays.any() else math.inf
        out.append({"strategy": s, "seed": seed, "flops": flops})
    return pd.DataFrame(out)


def summarise(curves: pd.DataFrame, ref: Reference, cfg: Config) -> pd.DataFrame:
    """Compute to reach the full-pool MRE (x (1 + tolerance)) and LPD (- tolerance x |LPD|), median over seeds.

    And the final errors.
    """
    m = reach(curves, "mre", ref.mre * (1 + cfg.tolerance))
    lp = reach(curves, "lpd", ref.lpd - cfg.tolerance * abs(ref.lpd), lower_is_better=False)
    r = {level: reach(curves, "regret_reference", level) for level in cfg.regret_levels}
    rows = []
    for s in cfg.strategies:
        c = curves[curves.strategy == s]
        last = c.sort_values("cum_flops").groupby("seed").tail(1)
        rows.append(
            {
                **{
                    f"flops_to_regret_{level:g}_median": float(np.median(v[v.strategy == s].flops))
                    for level, v in r.items()
                },
                **{
                    f"flops_to_regret_{level:g}_each": ";".join(f"{x:.3g}" for x in v[v.strategy == s].flops)
                    for level, v in r.items()
                },
                "strategy": s,
                "flops_to_full_mre_median": float(np.median(m[m.strategy == s].flops)),
                "flops_to_full_mre_each": ";".join(f"{x:.3g}" for x in m[m.strategy == s].flops),
                "seeds_reaching_full_mre": int(np.isfinite(m[m.strategy == s].flops).sum()),
                "flops_to_full_lpd_median": float(np.median(lp[lp.strategy == s].flops)),
                "final_mre_median": float(last.mre.median()),
                "final_regret_reference_median": float(last.regret_reference.median()),
                "fits_with_warnings": int((~c.diagnostics_ok.astype(bool)).sum()),
                "fits": len(c),
            }
        )
    return pd.DataFrame(rows)


def print_summary(summary: pd.DataFrame, curves: pd.DataFrame, ref: Reference, cfg: Config, full_flops: float) -> None:
    print(
        f"\nfull pool: {full_flops:.3g} FLOPs, MRE {ref.mre:.4f} (target {ref.mre * (1 + cfg.tolerance):.4f} = "
        f"+{100 * cfg.tolerance:.0f}%), LPD {ref.lpd:.3f}"
    )
    print("compute to reach the full-pool MRE and stay there (median over seeds; inf = never within the rounds run):")
    for _, r in summary.iterrows():
        frac = r.flops_to_full_mre_median / full_flops
        print(
            f"  {r.strategy:>15}: {r.flops_to_full_mre_median:.3g} FLOPs ({100 * frac:.1f}% of the pool) "
            f"[per seed: {r.flops_to_full_mre_each}]; LPD: {r.flops_to_full_lpd_median:.3g}; "
            f"final MRE {r.final_mre_median:.4f}, regret {r.final_regret_reference_median:.2e}; "
            f"fits with diagnostic warnings {r.fits_with_warnings}/{r.fits}"
        )
    for level in cfg.regret_levels:
        print(
            "compute to bring the regret of the recommendation (against the full-pool posterior) below "
            f"{level:g} nats and keep it there:"
        )
        for _, r in summary.iterrows():
            print(
                f"  {r.strategy:>15}: {r[f'flops_to_regret_{level:g}_median']:.3g} FLOPs "
                f"[per seed: {r[f'flops_to_regret_{level:g}_each']}]"
            )
    s = summary.set_index("strategy")
    if {"active", "random"} <= set(s.index):
        goals = [("flops_to_full_mre_median", "the full-pool MRE"), ("flops_to_full_lpd_median", "the full-pool LPD")]
        goals += [(f"flops_to_regret_{level:g}_median", f"regret below {level:g}") for level in cfg.regret_levels]
        for col, words in goals:
            a, b = s.loc["active", col], s.loc["random", col]
            if math.isfinite(a) and math.isfinite(b):
                print(f"active needs {a / b:.2f}x the compute of random to reach {words}")


def plot(curves: pd.DataFrame, ref: Reference, full_flops: float, cfg: Config):
    """Three panels against cumulative FLOPs (log): MRE, LPD per cell, regret against the full-pool posterior."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    panels = (
        ("mre", "MRE of 2.718B predictions", ref.mre),
        ("lpd", "log predictive density per cell (2.718B)", ref.lpd),
        ("regret_reference", "regret of the recommendation (full-pool posterior)", None),
    )
    for ax, (col, title, line) in zip(axes, panels):
        for k, s in enumerate(cfg.strategies):
            c = curves[curves.strategy == s]
            for seed, g in c.groupby("seed"):
                g = g.sort_values("cum_flops")
                ax.plot(
                    g.cum_flops,
                    g[col],
                    color=f"C{k}",
                    alpha=0.35 if cfg.seeds > 1 else 1.0,
                    marker="o",
                    ms=3,
                    label=s if seed == c.seed.min() else None,
                )
        if line is not None:
            ax.axhline(line, color="k", ls="--", lw=1, label="full pool")
        ax.axvline(full_flops, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("cumulative training compute (FLOPs, 6ND)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[2].set_yscale("symlog", linthresh=1e-5)
    axes[2].set_ylim(bottom=0)  # a regret is never negative; symlog would otherwise mirror the axis
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"retrospective next-run benchmark ({cfg.law}, {cfg.seeds} seed{'s' if cfg.seeds > 1 else ''})", fontsize=11
    )
    fig.tight_layout()
    return fig


def resummarise(out: Path) -> int:
    """Summary and figure of a finished run from its curves.csv and config.json."""
    saved = json.loads((out / "config.json").read_text())
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in Config.__dataclass_fields__}
    cfg = Config(**fields)
    ref = SimpleNamespace(mre=saved["mre_full"], lpd=saved["lpd_full"])
    curves = pd.read_csv(out / "curves.csv")
    summary = summarise(curves, ref, cfg)
    summary.to_csv(out / "summary.csv", index=False)
    plot(curves, ref, saved["full_pool_flops"], cfg).savefig(out / "curves.png", dpi=130, bbox_inches="tight")
    print_summary(summary, curves, ref, cfg, saved["full_pool_flops"])
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="the reduced form run in CI (1 target, pool up to 310M, 1 seed, 1 round)"
    )
    p.add_argument("--seeds", type=int, help="number of seed sets")
    p.add_argument("--strategies", help="comma-separated: active, active-decision, random, cheapest")
    p.add_argument("--ratio", type=float, help="budget growth per round")
    p.add_argument(
        "--targets", help="comma-separated targets to fit, or 'all' (default: the 7 domain targets; --quick: c4)"
    )
    p.add_argument("--draws", type=int, help="NUTS draws per chain (warm-up the same)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "retrospective"), help="output directory")
    p.add_argument("--workers", type=int, help="run the (seed, strategy) paths on this many local worker processes")
    p.add_argument("--scheduler", help="run them on the Dask cluster at this address (or $BAYESMIX_SCHEDULER)")
    p.add_argument(
        "--summarise",
        metavar="DIR",
        help="re-print the summary (and redraw the figure) of a finished run in DIR, without fitting",
    )
    args = p.parse_args(argv)
    if args.summarise:
        return resummarise(Path(args.summarise))
    if not DATA.exists():
        print(f"skipped: real data not available ({DATA} is absent; it lives beside the repo, in ../shared/data)")
        return 0
    cfg = QUICK if args.quick else FULL
    if args.seeds:
        cfg = replace(cfg, seeds=args.seeds)
    if args.strategies:
        cfg = replace(cfg, strategies=tuple(s.strip() for s in args.strategies.split(",")))
    if args.ratio:
        cfg = replace(cfg, ratio=args.ratio)
    if args.targets:
        cfg = replace(cfg, targets=None if args.targets == "all" else tuple(t.strip() for t in args.targets.split(",")))
    if args.draws:
        cfg = replace(cfg, draws=args.draws, warmup=args.draws)
    with parallel(args.workers, scheduler_from_env(args.scheduler)):
        run_benchmark(cfg, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
