"""Model comparison at the level of runs: PSIS-LOO, exact refits where it is unreliable.

Checkpoints of one run share the run's offset, seed and data order, so they
are not independent observations: leaving one checkpoint out tells little,
because its neighbours still pin the run down. The unit left out here is the
whole run -- its pointwise log-likelihood is the joint density of all its
checkpoints and targets (``bayesmix.model.group_loglik`` summed over
targets) -- so the scores answer "how well would this law predict a new run".
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .loglik import heldout_loglik, log_mean_exp, run_loglik

log = logging.getLogger("bayesmix")

K_THRESHOLD = 0.7  # Pareto k above this: the PSIS estimate of that run is unreliable (Vehtari et al. 2024)
SMALL_DIFF = 4.0  # elpd differences under 4 nats are small whatever their SE (Sivula et al. 2022)


@dataclass
class RunLoo:
    """Leave-one-run-out scores of one fit.

    ``pointwise`` has one row per run: ``run``, ``elpd`` (expected log
    predictive density of the run when left out), ``pareto_k``, ``method``
    (``psis`` or ``refit``), ``lppd`` (in-sample log predictive density).
    """

    pointwise: pd.DataFrame
    elpd: float
    se: float
    p_loo: float
    high_k: list[str] = field(default_factory=list)  # runs with k > threshold still estimated by PSIS
    refitted: list[str] = field(default_factory=list)
    elpd_data: object = None  # the arviz-stats ELPDData of the PSIS step


def loo_runs(
    fit,
    *,
    refit: bool = False,
    max_refits: int = 10,
    k_threshold: float = K_THRESHOLD,
    refit_draws: int | None = None,
    progress: bool | None = False,
) -> RunLoo:
    """PSIS-LOO over runs (arviz-stats ``loo``), with exact refits for runs where Pareto k is high.

    With ``refit=True`` the ``max_refits`` runs with the highest k above
    ``k_threshold`` are left out for real: the law is refitted without them
    (same priors and sampler settings; ``refit_draws`` draws per chain if given)
    and their elpd is the log of the mean density of the run under the refit's
    draws. Runs still above the threshold are listed in ``high_k``.
    """
    import arviz_base as azb
    import arviz_stats as azs

    ll, runs = run_loglik(fit)  # (S, R, T), draws in chain-major order
    ll_run = ll.sum(-1)
    chains, per_chain = fit.draws["sigma"].shape[:2]
    S, R = ll_run.shape
    dt = azb.from_dict(
        {
            "posterior": {"sigma": fit.draws["sigma"]},
            "log_likelihood": {"run": ll_run.reshape(chains, per_chain, R)},
            "observed_data": {"run": np.zeros(R)},
        },
        dims={"run": ["run"], "sigma": ["target"]},
        coords={"run": list(runs), "target": list(fit.targets)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # high k is reported below, with what to do
        try:
            res = azs.loo(dt, pointwise=True, var_name="run")
        except ValueError as e:  # e.g. every draw identical: PSIS has no tail to fit
            raise ValueError(
                f"PSIS-LOO failed for the {fit.law.name} fit ({e}); are its posterior draws degenerate?"
            ) from None
    elpd_i = np.asarray(res.elpd_i).ravel().astype(float)
    k = np.asarray(res.pareto_k).ravel().astype(float)
    method = np.array(["psis"] * R, dtype=object)
    lppd = log_mean_exp(ll_run, 0)

    refitted = []
    if refit:
        order = [i for i in np.argsort(-k) if k[i] > k_threshold][:max_refits]
        for n_done, i in enumerate(order, 1):
            label = runs[i]
            log.info("exact refit %d/%d: leaving out run %s (Pareto k %.2f)", n_done, len(order), label, k[i])
            elpd_i[i] = exact_run_elpd(fit, label, draws=refit_draws, progress=progress)
            method[i] = "refit"
            refitted.append(str(label))
    high = [str(runs[i]) for i in range(R) if k[i] > k_threshold and method[i] == "psis"]
    pointwise = pd.DataFrame({"run": runs, "elpd": elpd_i, "pareto_k": k, "method": method, "lppd": lppd})
    elpd = float(elpd_i.sum())
    return RunLoo(
        pointwise=pointwise,
        elpd=elpd,
        se=float(np.sqrt(R * np.var(elpd_i))),
        p_loo=float(lppd.sum() - elpd),
        high_k=high,
        refitted=refitted,
        elpd_data=res,
    )


def exact_run_elpd(fit, run: str, draws: int | None = None, progress: bool | None = False) -> float:
    """log p(run | all other runs): refit the law without ``run`` and score the run under the refit.

    The score has no extrapolation term (like PSIS-LOO, it is the model's own
    predictive density), so refits and PSIS estimates are comparable.
    """
    from ..diagnostics import FitWarning
    from ..fit import fit as fit_law

    keep = fit.table.run != run
    c = fit.config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        refit = fit_law(
            fit.table.subset(keep),
            fit.law,
            targets=fit.targets,
            priors=fit.priors,
            chains=c.chains,
            warmup=c.warmup,
            draws=draws or c.draws,
            seed=c.seed + 1,
            target_accept=c.target_accept,
            max_tree_depth=c.max_tree_depth,
            progress=progress,
            checkpoints=fit.checkpoints,
            extrapolation_sd=0.0,
        )  # scored without the bias term: skip fit()'s measurement of it
    if not refit.diagnostics.ok:
        log.warning("refit without run %s: %s", run, refit.diagnostics.problems[0])
    ll, _ = heldout_loglik(refit, fit.table.subset(~keep), extrapolation_sd=0.0)
    return float(log_mean_exp(ll.sum(axis=(1, 2)), 0))


def same_data(fits: Mapping[str, object]) -> None:
    """Raise ValueError unless every fit was made on the same runs, targets and domains."""
    names = list(fits)
    ref_name, ref = names[0], fits[names[0]]
    for name in names[1:]:
        f = fits[name]
        if tuple(f.domains) != tuple(ref.domains):
            raise ValueError(
                f"{name} and {ref_name} were fit on different domains ({', '.join(f.domains)} vs "
                f"{', '.join(ref.domains)}); compare fits of the same run table"
            )
        if tuple(f.targets) != tuple(ref.targets):
            raise ValueError(
                f"{name} and {ref_name} score different targets ({', '.join(f.targets)} vs {', '.join(ref.targets)}); "
                "refit with the same --targets"
            )
        a, b = f.table, ref.table
        if a.n_rows != b.n_rows or a.n_runs != b.n_runs:
            raise ValueError(
                f"{name} and {ref_name} were fit on different data ({a.n_rows} rows / {a.n_runs} runs "
                f"vs {b.n_rows} / {b.n_runs}); compare fits of the same run table"
            )
        cols = a.weight_columns + ["model_size", "n_tokens"] + [f"{t}_loss" for t in ref.targets]
        for c in cols:
            x, y = a.frame[c].to_numpy(float), b.frame[c].to_numpy(float)
            if not np.allclose(x, y, rtol=1e-12, atol=0, equal_nan=True):
                row = int(np.flatnonzero(~np.isclose(x, y, rtol=1e-12, atol=0, equal_nan=True))[0])
                raise ValueError(
                    f"{name} and {ref_name} were fit on different data: column {c} differs first at row {row + 1} "
                    f"({x[row]:g} vs {y[row]:g})"
                )
        if not np.array_equal(a.run, b.run):
            raise ValueError(
                f"{name} and {ref_name} group rows into runs differently; compare fits of the same run table"
            )


def compare(
    fits: Sequence[object] | Mapping[str, object],
    *,
    refit: bool = False,
    max_refits: int = 10,
    k_threshold: float = K_THRESHOLD,
    refit_draws: int | None = None,
    holdout: str | None = None,
    progress: bool | None = False,
) -> pd.DataFrame:
    """Rank fits of different laws on the same runs by leave-one-run-out elpd.

    Returns a DataFrame indexed by fit name (the law's name unless a mapping
    is given), best first, with ``rank``, ``law``, ``elpd_loo``, ``se``,
    ``p_loo``, ``elpd_diff`` and ``diff_se`` (difference to the best and its
    standard error, from the paired per-run differences), ``runs``,
    ``high_k`` (runs whose PSIS estimate is unreliable), ``refits``; with
    ``holdout`` (e.g. ``"largest-size"``) also the held-out scores of
    :func:`bayesmix.checks.validate` (``holdout_lpd``, ``holdout_mre``,
    ``holdout_coverage_90``). ``table.attrs["verdict"]`` holds a plain
    sentence on whether the difference is meaningful (also :func:`verdict`).
    """
    if not isinstance(fits, Mapping):
        fits = list(fits)
        names = [f.law.name for f in fits]
        if len(set(names)) < len(names):
            names = [f"{n}#{i + 1}" for i, n in enumerate(names)]
        fits = dict(zip(names, fits))
    if len(fits) < 2:
        raise ValueError("compare needs at least two fits")
    same_data(fits)
    loos = {
        name: loo_runs(
            f, refit=refit, max_refits=max_refits, k_threshold=k_threshold, refit_draws=refit_draws, progress=progress
        )
        for name, f in fits.items()
    }
    best = max(loos, key=lambda n: loos[n].elpd)
    rows = []
    for name, lo in loos.items():
        diff_i = loos[best].pointwise.elpd.to_numpy() - lo.pointwise.elpd.to_numpy()
        n = len(diff_i)
        rows.append(
            {
                "name": name,
                "law": fits[name].law.name,
                "elpd_loo": lo.elpd,
                "se": lo.se,
                "p_loo": lo.p_loo,
                "elpd_diff": float(diff_i.sum()),
                "diff_se": float(np.sqrt(n * np.var(diff_i))),
                "runs": n,
                "high_k": len(lo.high_k),
                "refits": len(lo.refitted),
            }
        )
    table = pd.DataFrame(rows).sort_values("elpd_loo", ascending=False).set_index("name")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    if holdout:
        from .validate import validate

        for name, f in fits.items():
            c = f.config
            v = validate(
                f.table,
                f.law,
                holdout,
                targets=f.targets,
                priors=f.priors,
                chains=c.chains,
                warmup=c.warmup,
                draws=c.draws,
                seed=c.seed,
                progress=progress,
            )
            table.loc[name, "holdout_lpd"] = v.folds.lpd.sum()
            table.loc[name, "holdout_mre"] = v.folds.mre.mean()
            table.loc[name, "holdout_coverage_90"] = v.folds.coverage_90.mean()
    table.attrs["verdict"] = verdict(table)
    table.attrs["high_k_runs"] = {name: lo.high_k for name, lo in loos.items()}
    return table


def verdict(table: pd.DataFrame) -> str:
    """A plain sentence on the ranking in a :func:`compare` table: is the best law's lead meaningful?"""
    if len(table) < 2:
        return "only one fit: nothing to compare"
    first, second = table.index[0], table.index[1]
    d, se = float(table.elpd_diff.iloc[1]), float(table.diff_se.iloc[1])
    z = d / se if se > 0 else np.inf
    unit = f"{d:.1f} ± {se:.1f} nats of leave-one-run-out log predictive density"
    if d < SMALL_DIFF:
        text = (
            f"{first} and {second} predict held-out runs about equally well ({unit}; differences under "
            f"{SMALL_DIFF:.0f} nats are small): the data do not prefer either; choose by other grounds "
            "(fewer parameters, held-out scale error)."
        )
    elif z < 2:
        text = (
            f"{first} scores better than {second} by {unit}, but that is under 2 standard errors: "
            "a weak preference, not a clear one."
        )
    else:
        text = f"{first} is clearly preferred over {second}: {unit}, {z:.1f} standard errors."
    unreliable = int(table.high_k.sum())
    if unreliable:
        text += (
            f" Caution: {unreliable} run(s) have Pareto k > {K_THRESHOLD} (PSIS unreliable for them); "
            "rerun with exact refits (--refit) before trusting a close call."
        )
    return text
