"""The fits and calls whose outputs the golden test pins (see record.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesmix

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SLIMPAJAMA = REPO.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"
SP_DRAWS = HERE / "slimpajama-draws.npz"
SP_TARGETS = ("c4", "github", "openhermes")
SP_SIZES = (1.22e8, 3.1e8)

N_EX, D_EX = 1.2e9, 2.4e10  # the example's target scale
N_SP, D_SP = 6.8e8, 1.4e10


def _api():
    """recommend, next_run, check, compare from wherever this version keeps them."""
    from bayesmix.checks import check, compare

    try:
        from bayesmix.decide import recommend
        from bayesmix.plan import next_run
    except ImportError:
        from bayesmix.next_run import next_run
        from bayesmix.recommend import recommend
    return recommend, next_run, check, compare


def example_fits(record: bool = False):
    """The shipped example fit and an own_weight fit of the same runs (for compare), as saved models."""
    add, ow = HERE / "example-additive.nc", HERE / "example-own_weight.nc"
    if record:
        shutil.copyfile(REPO / "models" / "example-additive.nc", add)
        f = bayesmix.load(add)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = bayesmix.fit(f.table, "own_weight", chains=2, warmup=200, draws=200, seed=1, progress=False)
        g.save(ow)
    return bayesmix.load(add), bayesmix.load(ow)


def slimpajama_table():
    """A small real table: the 122M and 310M runs, checkpoints from 35% of each run on."""
    t = bayesmix.read_runs(SLIMPAJAMA, quiet=True)
    t = t.subset(np.isin(t.model_size, SP_SIZES))
    return t.drop_early_checkpoints(0.35)


def slimpajama_fit(record: bool = False):
    """The additive law on the small real table: fitted once by record.py, rebuilt here from its draws."""
    table = slimpajama_table()
    if record:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = bayesmix.fit(
                table, "additive", targets=SP_TARGETS, chains=2, warmup=200, draws=150, seed=2, progress=False
            )
        meta = {
            "notes": list(f.table.notes),
            "diagnostics": f.diagnostics.to_dict(),
            "config": f.config.to_dict(),
            "extrapolation_sd": np.asarray(f.extrapolation_sd, float).tolist(),
            "N0": f.N0,
            "D0": f.D0,
        }
        np.savez_compressed(
            SP_DRAWS,
            meta=json.dumps(meta, default=float),
            **{f"draw_{k}": v for k, v in f.draws.items()},
            **{f"stat_{k}": v for k, v in f.sample_stats.items()},
        )
        return f
    z = np.load(SP_DRAWS)
    meta = json.loads(str(z["meta"]))
    from bayesmix.diagnostics import Diagnostics
    from bayesmix.inference import SamplerConfig

    law = bayesmix.get_law("additive")
    try:
        from bayesmix.fit import resolve_priors
    except ImportError:  # pragma: no cover
        from bayesmix.fitting import resolve_priors
    table = dataclasses.replace(table, notes=tuple(meta["notes"]))
    return bayesmix.Fit(
        law=law,
        table=table,
        targets=SP_TARGETS,
        priors=resolve_priors(law, table.domains, SP_TARGETS, None),
        config=SamplerConfig(**meta["config"]),
        N0=meta["N0"],
        D0=meta["D0"],
        sizes=np.unique(table.model_size),
        draws={k[5:]: z[k] for k in z.files if k.startswith("draw_")},
        sample_stats={k[5:]: z[k] for k in z.files if k.startswith("stat_")},
        diagnostics=Diagnostics.from_dict(meta["diagnostics"]),
        extrapolation_sd=np.asarray(meta["extrapolation_sd"]),
    )


def _frame(prefix: str, df: pd.DataFrame, out: dict) -> None:
    for c in df.columns:
        v = df[c].to_numpy()
        if v.dtype.kind in "fiub":
            out[f"{prefix}/{c}"] = v.astype(float)
        else:
            out[f"{prefix}/{c}"] = v.astype(str)


def _recommend_outputs(rec, prefix: str, out: dict) -> None:
    out[f"{prefix}/weights"] = rec.weights
    out[f"{prefix}/loss_draws"] = rec.loss_draws
    out[f"{prefix}/argmin_draws"] = rec.argmin_draws
    out[f"{prefix}/regret_draws"] = rec.regret_draws
    m = rec.metrics.drop(["seconds", "risk"])
    out[f"{prefix}/metrics"] = m.to_numpy(dtype=float)
    out[f"{prefix}/metrics_names"] = np.asarray(m.index, dtype=str)
    _frame(f"{prefix}/path", rec.path, out)
    if rec.baseline_loss_draws is not None:
        out[f"{prefix}/baseline_loss_draws"] = rec.baseline_loss_draws


def _next_run_outputs(plan, prefix: str, out: dict) -> None:
    cols = ["var_reduction", "regret_reduction", "bias_reduction", "score", "var_reduction_is", "ess_median"]
    t = plan.table.sort_values("name").reset_index(drop=True)
    _frame(f"{prefix}/table", t[["name"] + cols], out)
    _frame(f"{prefix}/batch", plan.batch[["name", "var_reduction", "cum_var_reduction_frac", "regret_reduction"]], out)
    out[f"{prefix}/recommended"] = np.asarray(plan.context["recommended"], float)
    out[f"{prefix}/q"] = np.array([plan.context["q_mean"], plan.context["q_var"], plan.context["expected_regret"]])


def candidates(domains, sizes, tokens, n: int = 12, seed: int = 0) -> pd.DataFrame:
    """A fixed candidate table (the proposals move with the recommendation; these do not)."""
    rng = np.random.default_rng(seed)
    h = rng.dirichlet(np.ones(len(domains)) * 2, size=n)
    rows = []
    for i, x in enumerate(h):
        rows.append(
            {
                **{f"weight_{d}": w for d, w in zip(domains, x)},
                "model_size": sizes[i % len(sizes)],
                "n_tokens": tokens[i % len(tokens)],
                "name": f"c{i:02d}",
            }
        )
    return pd.DataFrame(rows)


def outputs_example(fit, other) -> dict:
    """Every pinned output on the built-in example."""
    recommend, next_run, check, compare = _api()
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from bayesmix.example import evaluation_mixtures

        h = evaluation_mixtures()
        _frame("predict", fit.predict(h, N_EX, D_EX, interval=0.9, target_weights="web=0.5,code=0.5", seed=3), out)
        _frame("predict_table", fit.predict_table(fit.table, seed=1), out)
        _recommend_outputs(recommend(fit, N_EX, D_EX, baseline=[0.4, 0.2, 0.2, 0.2], seed=0), "recommend", out)
        _recommend_outputs(
            recommend(fit, N_EX, D_EX, target="code", risk="cvar:0.9", caps={"code": 0.3}, seed=1),
            "recommend_cvar_cap",
            out,
        )
        cand = candidates(fit.domains, [5e7, 1.25e8, 3.5e8], [1e9, 3e9, 7e9])
        # the own_weight fit: 400 draws, all of them used (max_draws=None), so no thinning rule is involved
        _next_run_outputs(
            next_run(other, N_EX, D_EX, candidates=cand, batch=3, max_draws=None, seed=0), "next_run", out
        )
        c = check(fit, seed=0, figures=False)
        _frame("check", c.table.reset_index(), out)
        _frame("check_worst", c.worst, out)
        cmp = compare({"additive": fit, "own_weight": other})
        _frame("compare", cmp.reset_index(), out)
    return out


def outputs_slimpajama(fit) -> dict:
    """Every pinned output on the small SlimPajama fit."""
    recommend, next_run, check, compare = _api()
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h, _ = fit.table.mixtures()
        _frame("predict", fit.predict(h[:6], N_SP, D_SP, seed=0), out)
        _recommend_outputs(
            recommend(fit, N_SP, D_SP, target_weights="c4=1,github=1", seed=0, argmin_draws=100), "recommend", out
        )
        cand = candidates(fit.domains, [1.22e8, 3.1e8, 6.8e8], [2.4e9, 6e9], n=10, seed=1)
        _next_run_outputs(
            next_run(fit, N_SP, D_SP, candidates=cand, batch=2, max_draws=300, target_weights="c4=1,github=1", seed=0),
            "next_run",
            out,
        )
        c = check(fit, seed=0, figures=False)
        _frame("check", c.table.reset_index(), out)
    return out
