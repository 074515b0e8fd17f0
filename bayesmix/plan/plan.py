"""Decide which small run to train next: rank candidate runs by what their result would tell us, per FLOP.

The quantity of interest Q (a function of the law's parameters, evaluated on
every posterior draw) is one of

- ``"loss"`` (default): the target loss at the currently recommended mixture,
  at the target scale (N, D);
- ``"optimal_loss"``: the target loss of each draw's own optimal mixture,
  min_h L_s(h): "how good can the big run be";
- ``"regret"``: L_s(h_rec) - min_h L_s(h): how much the current
  recommendation loses against the optimum, draw by draw.

The recommendation h_rec is the decision :func:`bayesmix.decide.recommend`
makes (risk: the posterior mean), with the same solver and under the same
:class:`~bayesmix.decide.MixtureConstraints` the user passes (floors, caps,
token availability, a distance from a baseline), so the plan informs the
decision that will be taken (:func:`bayesmix.plan.scorer.decision_problem`).

A candidate's score is the expected reduction of Var(Q) after observing its
result -- every checkpoint and target the run reports, with the noise the fit
learned (``sigma`` and ``tau_run`` per target) -- divided by its cost (6 N D
FLOPs unless given). Both the reduction and the per-cost score are reported.
The decision-focused variant scores the expected reduction of the regret of
the recommendation instead: the value of the information for the choice of
the mixture, min_h E[L(h)] - E_y[min_h E[L(h) | y]], over a finite set of
mixtures where the posterior argmin lives (the recommendation, per-draw optima
and midpoints between them).

Beyond the fitted scales, Q also carries the law's extrapolation bias (a
log-scale sd of ``Fit.extrapolation_sd`` per e-fold past the largest fitted
model size and token count; see :mod:`bayesmix.extrapolation`). No result
inside the fitted range changes it, but a run larger than any fitted one
shortens the extrapolation: its variance of Q, sum_t (w_t m_t)^2
e^v_t (e^v_t - 1) with v_t = (sd_t far)^2, is added to the posterior's and
its reduction to every candidate's (for ``"regret"`` it is left out: the
bias scales both losses of the difference alike).

Estimates come from the posterior draws without refitting
(:mod:`bayesmix.plan.preposterior`): linear-Gaussian for every candidate, and
importance reweighting of the draws under simulated outcomes (with an
effective-sample-size check) for the best ones, or for all with
``method="reweight"``. Batches are chosen greedily, each run conditioned on the
runs already chosen, so a batch is never copies of one run.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..decide.constraints import DEFAULT_MAX_EPOCHS, PerDomain, build_constraints
from .candidates import even_fractions, propose_candidates, read_candidates
from .preposterior import gaussian_voi
from .scorer import QUANTITIES, Scorer, parse_quantity

__all__ = ["NextRunPlan", "NextRunWarning", "QUANTITIES", "next_run", "score_candidates"]

RANK_BY = ("variance", "decision")
METHODS = ("gaussian", "reweight")


class NextRunWarning(UserWarning):
    """An estimate behind the ranking is unreliable (e.g. degenerate importance weights)."""


def _choice(value: str, allowed: Sequence[str], what: str) -> str:
    v = str(value).strip().lower()
    if v not in allowed:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
    return v


# ---------------------------------------------------------------- the result
@dataclass(eq=False)
class NextRunPlan:
    """Ranked candidate runs and the batch to train within a budget.

    :attr:`table`: one row per candidate, best first, with its mixture, size,
    tokens, cost, the expected reduction of Var(Q) (absolute and as a
    fraction), the per-cost score, the expected regret reduction (value of
    information for the mixture choice), importance-reweighting checks for the
    top candidates (with the effective sample size), and a reason.
    :attr:`batch`: the runs chosen greedily within the budget, in order, with
    their marginal and cumulative reductions. :attr:`context`: Q, the
    recommendation and the settings. Figures: :meth:`plot_scores`,
    :meth:`plot_batch`; :meth:`save` writes everything.
    """

    table: pd.DataFrame
    batch: pd.DataFrame
    context: dict[str, Any]
    domains: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)

    @property
    def top(self) -> pd.Series:
        """The best candidate's row."""
        return self.table.iloc[0]

    def summary(self, rows: int = 10) -> str:
        """Plain-text report: Q, the top candidates and the plan."""
        c = self.context
        ranked_by = "expected reduction of Var(Q)" if c["rank_by"] == "variance" else "expected regret reduction"
        lines = [
            f"Next run for N = {c['model_size']:.3g}, D = {c['tokens']:.3g} ({c['law']} law, {c['draws']} posterior "
            "draws)",
            f"Q = {c['quantity_words']} ({c['objective']}): mean {c['q_mean']:.4f}, sd "
            f"{math.sqrt(max(c['q_var'], 0)):.2e}",
            "recommended mixture: "
            + ", ".join(f"{d}={w:.3f}" for d, w in zip(self.domains, c["recommended"]))
            + f" (posterior mean, as recommend; constraints: {c.get('constraints', 'none')})",
            f"expected regret of the recommendation: {c['expected_regret']:.2e}",
            f"a run reports {len(c['fractions'])} checkpoints (fractions of its final tokens: "
            f"{', '.join(f'{x:.2g}' for x in c['fractions'])}) x {len(c['targets'])} targets",
            f"ranked by {ranked_by} per unit cost ({c['method']} estimate)",
        ]
        head = (
            f"  {'#':>3} {'name':<10} {'size':>9} {'tokens':>9} {'cost':>9} {'dVar(Q)%':>9} {'score':>9} "
            f"{'dRegret':>9}  reason"
        )
        lines.append(head)
        for k, (_, r) in enumerate(self.table.head(rows).iterrows(), 1):
            lines.append(
                f"  {k:>3} {str(r['name'])[:10]:<10} {r.model_size:9.3g} {r.n_tokens:9.3g} {r.cost:9.3g} "
                f"{100 * r.var_reduction_frac:9.2f} "
                f"{r.score:9.3g} {r.regret_reduction:9.2e}  {r.reason}"
            )
        if len(self.batch):
            b = self.batch
            budget = c.get("budget")
            lines.append(
                f"plan: {len(b)} run{'s' if len(b) > 1 else ''} costing {b.cost.sum():.3g}"
                + (f" of a budget of {budget:.3g}" if budget else "")
                + f"; together they are expected to remove {100 * b.cum_var_reduction_frac.iloc[-1]:.1f}% of Var(Q)"
                + f" and {b.cum_regret_reduction.iloc[-1]:.2e} of expected regret"
            )
            for _, r in b.iterrows():
                lines.append(
                    f"  {int(r.order)}. {r['name']}: N={r.model_size:.3g}, D={r.n_tokens:.3g}, cost {r.cost:.3g}, "
                    f"+{100 * r.var_reduction_frac:.2f}% of Var(Q)"
                )
        else:
            lines.append("plan: no candidate fits in the budget")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<bayesmix.NextRunPlan: {len(self.table)} candidates, batch of {len(self.batch)}>"

    def plot_scores(self):
        """Figure: expected variance reduction and per-cost score against cost, batch highlighted."""
        from .plots import plot_scores

        return plot_scores(self)

    def plot_batch(self):
        """Figure: cumulative expected reduction of Var(Q) and regret along the batch."""
        from .plots import plot_batch

        return plot_batch(self)

    def save(self, directory: str | Path, dpi: int = 130) -> list[Path]:
        """Write candidates.csv (ranked), plan.csv, summary.txt, scores.png and batch.png; return the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        out = []
        for name, frame in (("candidates", self.table), ("plan", self.batch)):
            p = directory / f"{name}.csv"
            frame.to_csv(p, index=False)
            out.append(p)
        p = directory / "summary.txt"
        p.write_text(self.summary() + "\n")
        out.append(p)
        import matplotlib.pyplot as plt

        for name, fig in (("scores", self.plot_scores()), ("batch", self.plot_batch())):
            p = directory / f"{name}.png"
            fig.savefig(p, dpi=dpi, bbox_inches="tight")
            plt.close(fig)
            out.append(p)
        return out


# ---------------------------------------------------------------- entry points
def _repeats(fit, cand: pd.DataFrame) -> np.ndarray:
    """True where a candidate has the mixture and model size of an observed run."""
    t = fit.table
    w = t.weights
    obs = {(tuple(np.round(h, 6)), float(N)) for h, N in zip(w, t.model_size)}
    h = cand[[f"weight_{d}" for d in fit.domains]].to_numpy(dtype=float)
    return np.array([(tuple(np.round(x, 6)), float(N)) in obs for x, N in zip(h, cand.model_size)])


def score_candidates(
    scorer: Scorer, method: str = "gaussian", check_top: int = 20, min_ess: float | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Score every candidate alone; return the unsorted table and warnings.

    The linear-Gaussian estimate is computed for all candidates; the
    reweighting estimate for all with ``method="reweight"``, else for the
    ``check_top`` best (as a check). The score used for ranking is the one of
    ``method``.
    """
    fit = scorer.fit
    scorer.compute_information()
    t0 = time.perf_counter()
    state = scorer.base_state()
    g = scorer.gaussian_gains(state, range(len(scorer.candidates)))
    scorer.timing["gaussian"] = time.perf_counter() - t0
    table = scorer.candidates.copy()
    table["checkpoints"] = len(scorer.fractions)
    table["var_reduction"] = np.array(g["var_reduction"])
    table["regret_reduction"] = np.array(g["regret_reduction"])
    table["bias_reduction"] = np.array(g["bias_reduction"])
    reasons = [scorer.reason(p) for p in g["par"]]
    table["reason"] = [r[0] for r in reasons]
    far0 = scorer.far(scorer.fitted_reach)
    for i in np.flatnonzero(table.bias_reduction > 0.5 * table.var_reduction):
        far1 = scorer.far(scorer.extension(scorer.fitted_reach, int(i)))
        table.loc[i, "reason"] = (
            f"extends the fitted range: the extrapolation to the target scale shrinks from {far0:.2f} to {far1:.2f} "
            f"e-folds ({100 * table.bias_reduction[i] / max(table.var_reduction[i], 1e-300):.0f}% of its gain); "
            + table.loc[i, "reason"]
        )
    table["informs"] = [r[1] for r in reasons]
    table["informs_var_reduction_frac"] = [r[2] for r in reasons]
    rep = _repeats(fit, table)
    table["repeats_observed"] = rep
    table.loc[rep, "reason"] = "repeats an observed run; " + table.loc[rep, "reason"]
    # reweighting: all candidates or a check on the best
    t1 = time.perf_counter()
    order = np.argsort(-(table.var_reduction / table.cost).to_numpy())
    which = np.arange(len(table)) if method == "reweight" else order[: min(check_top, len(table))]
    for col in ("var_reduction_is", "var_reduction_is_se", "regret_reduction_is", "ess_median", "ess_min"):
        table[col] = np.nan
    warns: list[str] = []
    if len(which):
        r = scorer.reweight_gains(None, list(which))
        for col in ("var_reduction_is", "var_reduction_is_se", "regret_reduction_is", "ess_median", "ess_min"):
            table.loc[r.candidate.to_numpy(), col] = r[col].to_numpy()
        threshold = min_ess if min_ess is not None else max(20.0, 0.02 * scorer.draws.S)
        low = r[r.ess_median < threshold]
        if len(low):
            names = ", ".join(table.loc[low.candidate, "name"].astype(str).head(5))
            msg = (
                f"importance weights degenerate for {len(low)} of {len(r)} candidates checked (median ESS below "
                f"{threshold:.0f} of "
                f"{scorer.draws.S} draws, e.g. {names}): their reweighting estimates are unreliable; the "
                "linear-Gaussian "
                "estimate is used for ranking"
                + (" -- refit with more draws or use method='gaussian'" if method == "reweight" else "")
            )
            warns.append(msg)
            warnings.warn(msg, NextRunWarning, stacklevel=3)
    scorer.timing["reweight"] = time.perf_counter() - t1
    if method == "reweight":
        # where the weights degenerated, fall back to the Gaussian estimate
        ok = table.ess_median >= (min_ess if min_ess is not None else max(20.0, 0.02 * scorer.draws.S))
        table["var_reduction"] = np.where(ok, table.var_reduction_is.clip(lower=0), table.var_reduction)
        table["regret_reduction"] = np.where(ok, table.regret_reduction_is.clip(lower=0), table.regret_reduction)
    q = max(scorer.q_var, 1e-300)
    table["var_reduction_frac"] = table.var_reduction / q
    table["score"] = table.var_reduction_frac / table.cost
    table["regret_score"] = table.regret_reduction / table.cost
    return table, warns


def greedy_batch(
    scorer: Scorer,
    table: pd.DataFrame,
    batch: int | None,
    budget: float | None,
    rank_by: str = "variance",
    method: str = "gaussian",
    shortlist: int = 200,
) -> pd.DataFrame:
    """Choose runs one at a time, each maximising its gain given the runs already chosen, per unit cost.

    Stops at ``batch`` runs, when nothing left fits in ``budget``, or when no
    candidate adds anything. The linear-Gaussian method conditions exactly on
    the chosen runs (every candidate is considered); the reweighting method
    multiplies the simulated outcomes' likelihoods of the chosen runs and
    considers the ``shortlist`` best candidates alone (the log losses of each
    must be kept).
    """
    if batch is None and budget is None:
        raise ValueError("a plan needs a batch size, a budget, or both")
    key = "var_reduction" if rank_by == "variance" else "regret_reduction"
    cost = table.cost.to_numpy(dtype=float)
    remaining = np.inf if budget is None else float(budget)
    left = set(range(len(table)))
    if method == "reweight":
        left = set(np.argsort(-(table[key] / table.cost).to_numpy())[:shortlist].tolist())
    state = scorer.base_state()
    ll_sum = None
    rows = []
    cum_var = cum_voi = 0.0
    k = 0
    while (batch is None or k < batch) and left:
        fits = [i for i in sorted(left) if cost[i] <= remaining]
        if not fits:
            break
        if method == "gaussian":
            g = scorer.gaussian_gains(state, fits, voi=(rank_by == "decision"))
        else:
            r = scorer.reweight_gains(ll_sum, fits, slot=k, reach=state.reach)
            g = {
                "candidate": r.candidate.tolist(),
                "var_reduction": r.var_reduction_is.tolist(),
                "regret_reduction": r.regret_reduction_is.tolist(),
                "ll": r._ll.tolist(),
            }
        cand = np.array(g["candidate"])
        ratio = np.array(g[key], dtype=float) / cost[cand]
        if not np.isfinite(ratio).any() or np.nanmax(ratio) <= 0:
            break
        j = int(np.nanargmax(ratio))
        i = int(cand[j])
        dv, dr = float(g["var_reduction"][j]), float(g["regret_reduction"][j])
        if method == "gaussian":
            info, B = g["info"][j], g["B"][j]
            if rank_by != "decision":  # the regret reduction of the chosen run only
                base = gaussian_voi(scorer.mu0, state.voi_factors, scorer.xi) if state.voi_factors else 0.0
                dr = max(gaussian_voi(scorer.mu0, state.voi_factors + [B], scorer.xi) - base, 0.0)
            state.voi_factors.append(B)
            state.condition(info)
        else:
            ll = g["ll"][j]
            ll_sum = ll if ll_sum is None else ll_sum + ll
        state.reach = scorer.extension(state.reach, i)  # both methods: the range the chosen runs reach
        cum_var += dv
        cum_voi += dr
        remaining -= cost[i]
        left.discard(i)
        k += 1
        row = table.iloc[i]
        rows.append(
            {
                "order": k,
                "candidate": i,
                "name": row["name"],
                **{c: row[c] for c in table.columns if c.startswith("weight_")},
                "model_size": row.model_size,
                "n_tokens": row.n_tokens,
                "cost": cost[i],
                "cum_cost": cost[i] if k == 1 else rows[-1]["cum_cost"] + cost[i],
                "var_reduction": dv,
                "var_reduction_frac": dv / max(scorer.q_var, 1e-300),
                "cum_var_reduction_frac": cum_var / max(scorer.q_var, 1e-300),
                "regret_reduction": dr,
                "cum_regret_reduction": cum_voi,
                "alone_var_reduction_frac": row.var_reduction_frac,
            }
        )
    return pd.DataFrame(rows)


def next_run(
    fit,
    model_size: float,
    tokens: float,
    *,
    candidates: pd.DataFrame | str | Path | None = None,
    propose: int | None = None,
    sizes: Sequence[float] | None = None,
    tokens_list: Sequence[float] | None = None,
    target: str | Sequence[str] | None = None,
    target_weights: Mapping[str, float] | str | None = None,
    quantity: str = "loss",
    rank_by: str = "variance",
    method: str = "gaussian",
    budget_flops: float | None = None,
    batch: int | None = 4,
    checkpoints: int | None = None,
    max_draws: int | None = 1000,
    outcomes: int = 64,
    check_top: int = 20,
    baseline=None,
    floors: PerDomain = None,
    caps: PerDomain = None,
    unique_tokens: PerDomain = None,
    max_epochs: float = DEFAULT_MAX_EPOCHS,
    max_tv: float | None = None,
    concentration: float = 30.0,
    seed: int = 0,
) -> NextRunPlan:
    """Rank candidate runs by the expected reduction of uncertainty about Q per unit cost, and plan a batch.

    Parameters
    ----------
    fit : a :class:`bayesmix.Fit`.
    model_size, tokens : the target scale (N, D) of the big run.
    candidates : a candidate table (path or DataFrame; see
        :func:`bayesmix.plan.candidates.read_candidates`), or
    propose, sizes, tokens_list : propose about ``propose`` candidates at
        these model sizes and final token counts
        (:func:`~bayesmix.plan.candidates.propose_candidates`).
    target, target_weights : the target loss, as in :func:`bayesmix.decide.recommend`.
    quantity : Q: ``"loss"`` (default), ``"optimal_loss"`` or ``"regret"``.
    rank_by : ``"variance"`` (expected reduction of Var(Q)) or ``"decision"``
        (expected reduction of the regret of the recommendation).
    method : ``"gaussian"`` (linear-Gaussian; default) or ``"reweight"``
        (importance reweighting; candidates whose weights degenerate fall back
        to the Gaussian estimate, with a warning).
    budget_flops, batch : the plan: at most ``batch`` runs within the budget
        (in the cost column's units; FLOPs by default).
    checkpoints : checkpoints a run reports, evenly spaced; default: as the
        fitted sweep's runs (:func:`~bayesmix.plan.candidates.checkpoint_fractions`).
    max_draws, outcomes, check_top : posterior draws used, simulated outcomes
        per candidate for reweighting, candidates checked by reweighting.
    baseline, floors, caps, unique_tokens, max_epochs, max_tv : the mixture
        constraints, exactly as :func:`bayesmix.decide.recommend` takes them:
        the plan is scored for the decision ``recommend`` makes under them.
    seed : every random choice (draw subsample, proposals, outcomes).

    Returns a :class:`NextRunPlan`. Warns :class:`NextRunWarning` when the
    reweighting weights degenerate.
    """
    t0 = time.perf_counter()
    for name, v in (("model_size", model_size), ("tokens", tokens)):
        if not (isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number; got {v!r}")
    rank_by = _choice(rank_by, RANK_BY, "rank_by")
    method = _choice(method, METHODS, "method")
    quantity = parse_quantity(quantity)
    if (candidates is None) == (propose is None):
        raise ValueError("give either candidates (a file or table) or propose (a number of candidates to propose)")
    if budget_flops is not None and not (math.isfinite(budget_flops) and budget_flops > 0):
        raise ValueError(f"budget must be a positive number; got {budget_flops}")
    if batch is not None and batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}")
    fractions = None if checkpoints is None else even_fractions(checkpoints)
    constraints = build_constraints(
        fit.domains,
        float(tokens),
        floors=floors,
        caps=caps,
        unique_tokens=unique_tokens,
        max_epochs=max_epochs,
        baseline=baseline,
        max_tv=max_tv,
    )
    if candidates is not None:
        cand = (
            read_candidates(candidates, fit.domains)
            if not isinstance(candidates, pd.DataFrame) or "cost_source" not in candidates
            else candidates
        )
    else:
        cand = None  # proposed once the recommendation is known
    max_batch = batch if batch is not None else 16
    placeholder = cand if cand is not None else pd.DataFrame()
    scorer = Scorer(
        fit,
        placeholder,
        model_size,
        tokens,
        target=target,
        target_weights=target_weights,
        quantity=quantity,
        fractions=fractions,
        max_draws=max_draws,
        constraints=constraints,
        outcomes=outcomes,
        max_batch=max_batch,
        seed=seed,
    )
    if cand is None:
        swept, _ = fit.table.mixtures()
        cand = propose_candidates(
            fit.domains,
            int(propose),
            list(sizes or []),
            list(tokens_list or []),
            scorer.decision.h_rec,
            swept,
            concentration=concentration,
            seed=seed,
        )
        scorer.candidates = cand.reset_index(drop=True)
    if len(scorer.candidates) == 0:
        raise ValueError("no candidates to score")
    table, warns = score_candidates(scorer, method=method, check_top=check_top)
    key = "score" if rank_by == "variance" else "regret_score"
    table = table.assign(candidate=np.arange(len(table)))
    t1 = time.perf_counter()
    plan = greedy_batch(scorer, table, batch, budget_flops, rank_by=rank_by, method=method)
    scorer.timing["batch"] = time.perf_counter() - t1
    table["in_plan"] = table.candidate.isin(plan.candidate if len(plan) else [])
    table = table.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    scorer.timing["total"] = time.perf_counter() - t0
    d = scorer.decision
    context = {
        "law": fit.law.name,
        "model_size": float(model_size),
        "tokens": float(tokens),
        "quantity": quantity,
        "quantity_words": QUANTITIES[quantity],
        "objective": scorer.objective,
        "q_mean": float(scorer.draws.mean(scorer.Q)),
        "q_var": scorer.q_var,
        "recommended": d.h_rec,
        "expected_regret": d.expected_regret,
        "draws": scorer.draws.S,
        "fractions": scorer.fractions,
        "targets": tuple(fit.targets),
        "rank_by": rank_by,
        "method": method,
        "constraints": constraints.describe(),
        "budget": budget_flops,
        "batch": batch,
        "outcomes": outcomes,
        "decision_set": len(d.H),
        "seed": seed,
        "timing": dict(scorer.timing),
    }
    return NextRunPlan(table=table, batch=plan, context=context, domains=tuple(fit.domains), warnings=warns)
