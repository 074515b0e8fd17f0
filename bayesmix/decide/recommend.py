"""Recommend a training mixture under posterior uncertainty.

The decision: choose the mixture h in the feasible set (floors, caps, token
availability, closeness to a baseline; see :mod:`bayesmix.decide.constraints`)
that minimises a risk functional of the target loss L_s(h) over posterior
draws s, at the target scale (N, D):

- ``risk="mean"``: the posterior expected loss, (1/S) sum_s L_s(h);
- ``risk="quantile:q"``: the q-quantile of L_s(h) over draws (Harrell-Davis
  weights on the sorted draws, so the objective is smooth in h);
- ``risk="cvar:a"``: the mean of the worst (1 - a) share of draws.

L_s(h) = sum_t w_t mu_st(h, N, D) exp(delta_st) is the law's expected loss in
draw s (a single target, or a weighted sum of targets), times the law's
extrapolation bias delta exactly as :meth:`bayesmix.posterior.Posterior.predictive` draws it
(same seed, same numbers). The bias is shared by every mixture within a draw:
it reweights the draws but, since it is independent of the law's parameters,
E[exp(delta)] factors out of the mean objective and the argmin of the mean
objective is unchanged in expectation (a finite sample adds Monte Carlo noise
only); for quantile and CVaR objectives it widens the loss distribution and
can move the answer. Every draw is used, never the posterior mean of the
parameters.

The solve: SLSQP with exact jax gradients through the law, from several
starts; the result is projected exactly onto the feasible set and checked
(projected gradient norm, spread of the starts). Then: the posterior over the
argmin (each draw's own optimum, on a subsample of draws), the regret of the
recommendation, paired comparisons with a baseline, and the recommendation
along a path of scales from the fitted ones to the target.
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

from ..posterior import Posterior
from ..reach import PriorOnlyWarning, prior_only_note, schedule_prior_note
from .constraints import DEFAULT_MAX_EPOCHS, InfeasibleMixtureError, MixtureConstraints, PerDomain, build_constraints
from .objective import Risk, parse_risk, resolve_target_weights
from .problem import MixtureDecision
from .search import best_of_starts, candidate_mixtures, per_draw_optima
from .solver import projected_gradient_norm, solve

__all__ = ["InfeasibleMixtureError", "Recommendation", "RecommendationWarning", "recommend"]


class RecommendationWarning(UserWarning):
    """A check on the decision failed: not an optimum, a start-dependent answer, or a nearly flat objective."""


# ------------------------------------------------------------ the result
@dataclass(eq=False)
class Recommendation:
    """A recommended mixture with the uncertainty that comes with it.

    Tables: :attr:`table` (per domain), :attr:`losses` (per target),
    :attr:`path` (per scale), :attr:`starts` (per optimiser start),
    :attr:`metrics` (the headline numbers). Text: :meth:`summary`. Figures:
    :meth:`plot_weights`, :meth:`plot_losses`, :meth:`plot_path`,
    :meth:`save_figures`; :meth:`save` writes everything.
    """

    law: str
    domains: tuple[str, ...]
    targets: tuple[str, ...]
    target_weights: np.ndarray  # (T,)
    objective: str  # what the target loss is, in words
    risk: Risk
    model_size: float
    tokens: float
    interval: float
    seed: int
    constraints: MixtureConstraints
    weights: np.ndarray  # (K,) the recommendation
    loss_draws: np.ndarray  # (S, T) per-target expected loss at the recommendation
    baseline_loss_draws: np.ndarray | None  # (S, T) at the baseline
    argmin_draws: np.ndarray  # (n, K) each subsampled draw's own optimal mixture
    argmin_index: np.ndarray  # (n,) which draws
    regret_draws: np.ndarray  # (n,) L_s(recommended) - L_s(own optimum) >= 0
    baseline_regret_draws: np.ndarray | None
    path: pd.DataFrame
    starts: pd.DataFrame
    check: dict[str, Any]
    swept_range: np.ndarray  # (K, 2) smallest and largest weight each domain had in the fitted sweep
    extrapolation: dict[str, float]
    timing: dict[str, float] = field(default_factory=dict)

    # ---------------------------------------------------------- numbers
    @property
    def baseline(self) -> np.ndarray | None:
        """The baseline mixture (K,), or None."""
        return self.constraints.baseline

    @property
    def objective_draws(self) -> np.ndarray:
        """(S,) target loss of the recommendation in every draw."""
        return self.loss_draws @ self.target_weights

    @property
    def baseline_objective_draws(self) -> np.ndarray | None:
        """(S,) target loss of the baseline in every draw (same draws, paired)."""
        return None if self.baseline_loss_draws is None else self.baseline_loss_draws @ self.target_weights

    @property
    def p_beats_baseline(self) -> float:
        """Posterior probability that the recommendation has a lower target loss than the baseline (paired draws)."""
        b = self.baseline_objective_draws
        return float("nan") if b is None else float(np.mean(self.objective_draws < b))

    @property
    def improvement_draws(self) -> np.ndarray | None:
        """(S,) baseline loss minus recommended loss per draw (positive: the recommendation is better)."""
        b = self.baseline_objective_draws
        return None if b is None else b - self.objective_draws

    def _interval(self, x: np.ndarray) -> tuple[float, float]:
        a = (1 - self.interval) / 2
        lo, hi = np.quantile(x, [a, 1 - a])
        return float(lo), float(hi)

    @property
    def metrics(self) -> pd.Series:
        """Headline numbers: expected loss and interval, risk value, P(beats baseline), improvement, regret, checks."""
        L = self.objective_draws
        m: dict[str, Any] = {"expected_loss": L.mean()}
        m["lower"], m["upper"] = self._interval(L)
        m["risk"] = self.risk.spec
        m["risk_value"] = self.risk.value(L)
        B = self.baseline_objective_draws
        if B is not None:
            d = B - L
            m["baseline_expected_loss"] = B.mean()
            m["baseline_lower"], m["baseline_upper"] = self._interval(B)
            m["baseline_risk_value"] = self.risk.value(B)
            m["p_beats_baseline"] = self.p_beats_baseline
            m["improvement"] = d.mean()
            m["improvement_lower"], m["improvement_upper"] = self._interval(d)
        m["expected_regret"] = self.regret_draws.mean()
        m["regret_lower"], m["regret_upper"] = self._interval(self.regret_draws)
        if self.baseline_regret_draws is not None:
            m["baseline_expected_regret"] = self.baseline_regret_draws.mean()
        m["projected_gradient_norm"] = self.check["projected_gradient_norm"]
        m["free_gradient_norm"] = self.check["free_gradient_norm"]
        for k in ("starts", "starts_at_best", "local_optima", "starts_max_tv", "starts_loss_range", "near_best_max_tv"):
            m[k] = self.check[k]
        m["interval"] = self.interval
        m["model_size"], m["tokens"] = self.model_size, self.tokens
        m["seconds"] = self.timing.get("total", sum(self.timing.values()))
        return pd.Series(m)

    @property
    def table(self) -> pd.DataFrame:
        """Per domain: recommended and baseline weight, interval of the optimal weight, bounds, swept range."""
        a = (1 - self.interval) / 2
        q = np.quantile(self.argmin_draws, [a, 0.5, 1 - a], axis=0)
        C = self.constraints
        tol = 1e-7

        def bound(j: int, x: float) -> str:
            if x <= C.lower[j] + tol:
                return "floor" if C.lower[j] > 0 else "zero"
            if x >= C.upper[j] - tol and C.upper[j] < 1:
                return C.upper_source[j]
            return ""

        binding = [bound(j, x) for j, x in enumerate(self.weights)]
        out = pd.DataFrame(
            {
                "domain": self.domains,
                "recommended": self.weights,
                "baseline": self.baseline if self.baseline is not None else np.nan,
                "optimum_median": q[1],
                "optimum_lower": q[0],
                "optimum_upper": q[2],
                "floor": C.lower,
                "cap": C.upper,
                "at_bound": binding,
                "swept_min": self.swept_range[:, 0],
                "swept_max": self.swept_range[:, 1],
            }
        )
        out["outside_sweep"] = (self.weights < out.swept_min - 1e-9) | (self.weights > out.swept_max + 1e-9)
        return out

    @property
    def losses(self) -> pd.DataFrame:
        """Per target (and ``objective``): loss at the recommendation and the baseline, intervals, P(beats it)."""
        names = list(self.targets) + ["objective"]
        R = np.column_stack([self.loss_draws, self.objective_draws])
        rows = []
        B = (
            None
            if self.baseline_loss_draws is None
            else np.column_stack([self.baseline_loss_draws, self.baseline_objective_draws])
        )
        for j, t in enumerate(names):
            r = {
                "target": t,
                "weight": self.target_weights[j] if j < len(self.targets) else np.nan,
                "recommended": R[:, j].mean(),
            }
            r["lower"], r["upper"] = self._interval(R[:, j])
            if B is not None:
                r["baseline"] = B[:, j].mean()
                r["baseline_lower"], r["baseline_upper"] = self._interval(B[:, j])
                d = B[:, j] - R[:, j]
                r["improvement"] = d.mean()
                r["improvement_lower"], r["improvement_upper"] = self._interval(d)
                r["p_beats_baseline"] = float(np.mean(d > 0))
            rows.append(r)
        out = pd.DataFrame(rows)
        out["interval"] = self.interval
        return out

    # ---------------------------------------------------------- text
    def summary(self) -> str:
        """A short plain-text report of the recommendation and how sure it is."""
        m = self.metrics
        pct = int(round(self.interval * 100))
        lines = [
            f"Recommended mixture for N = {self.model_size:.3g} parameters, D = {self.tokens:.3g} tokens ({self.law} "
            f"law, {self.loss_draws.shape[0]} posterior draws)",
            f"objective: {self.risk.label} of {self.objective}",
        ]
        tab = self.table
        width = max(len(d) for d in self.domains)
        ci = f"{pct}% interval of the optimum"
        head = f"  {'domain':<{width}}  recommended  {ci:<28}" + ("  baseline" if self.baseline is not None else "")
        lines.append(head)
        for _, r in tab.iterrows():
            flag = f"  [{r.at_bound}]" if r.at_bound else ""
            flag += "  (outside the swept weights)" if r.outside_sweep else ""
            interval_text = f"[{r.optimum_lower:.3f}, {r.optimum_upper:.3f}]"
            base = f"  {r.baseline:8.3f}" if self.baseline is not None else ""
            lines.append(f"  {r.domain:<{width}}  {r.recommended:11.3f}  {interval_text:<28}{base}{flag}")
        lines.append(
            f"expected target loss {m.expected_loss:.4f}, {pct}% interval [{m.lower:.4f}, {m.upper:.4f}]"
            + (f"; {self.risk.label} {m.risk_value:.4f}" if self.risk.kind != "mean" else "")
        )
        if self.baseline is not None:
            lines.append(
                f"baseline: expected loss {m.baseline_expected_loss:.4f} [{m.baseline_lower:.4f}, "
                f"{m.baseline_upper:.4f}]"
            )
            lines.append(
                f"P(recommended beats baseline) = {m.p_beats_baseline:.3f} (paired over draws); expected improvement "
                f"{m.improvement:.4f} [{m.improvement_lower:.4f}, {m.improvement_upper:.4f}]"
            )
        lines.append(
            f"stability: expected regret {m.expected_regret:.2e} [{m.regret_lower:.2e}, {m.regret_upper:.2e}] against "
            f"each draw's own optimum ({len(self.regret_draws)} draws)"
            + (f"; the baseline's {m.baseline_expected_regret:.2e}" if self.baseline_regret_draws is not None else "")
        )
        ex = self.extrapolation
        if ex["efolds"] > 0:
            lines.append(
                f"extrapolation: {ex['efolds']:.2f} e-folds beyond the fitted scales; law bias sd up to "
                f"{np.max(ex['bias_sd']):.3f} on the log loss (per target) is included"
            )
        lines.append(
            f"optimiser: {m.starts_at_best} of {m.starts} starts reached the best ({m.local_optima} distinct "
            f"optim{'um' if m.local_optima == 1 else 'a'}; losses span {m.starts_loss_range:.1e}, "
            f"mixtures {m.starts_max_tv:.2f} TV); projected gradient {m.projected_gradient_norm:.1e} (free "
            f"{m.free_gradient_norm:.1e}); {m.seconds:.1f} s"
        )
        if tab.outside_sweep.any():
            lines.append(
                f"note: {', '.join(tab.domain[tab.outside_sweep])} outside the weights the sweep trained: the law is "
                "extrapolating in the mixture too"
            )
        if len(self.path) > 1:
            moved = self.path.tv_to_recommended.iloc[:-1].max()
            lines.append(
                f"path over scale: the recommendation moves by at most {moved:.3f} (TV) between N = "
                f"{self.path.model_size.iloc[0]:.3g} and the target"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<bayesmix.Recommendation {self.law}: "
            f"{', '.join(f'{d}={w:.3f}' for d, w in zip(self.domains, self.weights))}>"
        )

    # ---------------------------------------------------------- figures
    def plot_weights(self):
        """Figure: recommended weights with the posterior interval of the optimal weight, beside the baseline."""
        from .plots import plot_weights

        return plot_weights(self)

    def plot_losses(self):
        """Figure: the target loss at the recommendation and the baseline over draws, and their paired difference."""
        from .plots import plot_losses

        return plot_losses(self)

    def plot_path(self):
        """Figure: the recommended mixture and its loss along the path of scales."""
        from .plots import plot_path

        return plot_path(self)

    def save_figures(self, directory: str | Path, dpi: int = 130) -> list[Path]:
        """Write weights.png, losses.png and path.png to ``directory``; return the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        out = []
        for name, fig in (("weights", self.plot_weights()), ("losses", self.plot_losses()), ("path", self.plot_path())):
            path = directory / f"{name}.png"
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
            out.append(path)
        return out

    def save(self, directory: str | Path) -> list[Path]:
        """Write the tables (CSV), the summary (text) and the figures to ``directory``; return the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        out = []
        for name, frame in (
            ("recommendation", self.table),
            ("losses", self.losses),
            ("path", self.path),
            ("starts", self.starts),
        ):
            path = directory / f"{name}.csv"
            frame.to_csv(path, index=False)
            out.append(path)
        path = directory / "metrics.csv"
        self.metrics.rename("value").to_frame().rename_axis("metric").to_csv(path)
        out.append(path)
        path = directory / "summary.txt"
        path.write_text(self.summary() + "\n")
        out.append(path)
        return out + self.save_figures(directory)


# ------------------------------------------------------------ the entry point
def recommend(
    fit,
    model_size: float,
    tokens: float,
    *,
    target: str | Sequence[str] | None = None,
    target_weights: Mapping[str, float] | str | None = None,
    baseline=None,
    risk: str | Risk = "mean",
    floors: PerDomain = None,
    caps: PerDomain = None,
    unique_tokens: PerDomain = None,
    max_epochs: float = DEFAULT_MAX_EPOCHS,
    max_tv: float | None = None,
    starts: int = 4,
    argmin_draws: int = 200,
    path_points: int = 5,
    interval: float = 0.9,
    seed: int = 0,
) -> Recommendation:
    """Recommend the mixture minimising the posterior risk of the target loss at (model_size, tokens).

    Parameters
    ----------
    fit : a :class:`bayesmix.Fit`; every posterior draw is used.
    target, target_weights : one target (or a list: their mean), or a
        weighted sum of targets (mapping or ``"arxiv=1,c4=2"``); default the
        mean over the targets that are training domains.
    baseline : a mixture to compare with (array, mapping or ``"0.1,0.2,..."``).
    risk : ``"mean"``, ``"quantile:0.9"`` or ``"cvar:0.9"``.
    floors, caps : per-domain bounds (one number, a mapping, or K numbers).
    unique_tokens, max_epochs : token availability: h_j <= U_j x max_epochs / tokens.
    max_tv : largest total-variation distance from the baseline.
    starts : random optimiser starts, in addition to the structured ones (the baseline,
        uniform, the best candidate mixture, and each domain's corner of the feasible set).
    argmin_draws : draws whose own optimum is computed (posterior over the argmin, regret).
    path_points : scales on the path from the largest fitted scale to the target.
    interval : credible level of every interval reported.
    seed : the extrapolation-bias draws (as in ``Fit.predict_draws``), random starts and the subsample.

    Returns a :class:`Recommendation`. Raises
    :class:`~bayesmix.decide.constraints.InfeasibleMixtureError` naming the
    constraint when no mixture meets them, ``ValueError`` for malformed input,
    and warns :class:`RecommendationWarning` when the optimiser's checks fail.
    """
    t0 = time.perf_counter()
    for name, v in (("model_size", model_size), ("tokens", tokens)):
        if not (isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number; got {v!r}")
    if not 0 < interval < 1:
        raise ValueError(f"interval must be between 0 and 1 (e.g. 0.9); got {interval}")
    if starts < 0 or argmin_draws < 1 or path_points < 1:
        raise ValueError("starts must be >= 0, argmin_draws and path_points >= 1")
    N, D = float(model_size), float(tokens)
    note = prior_only_note(fit.table, N, D)
    if note:
        warnings.warn(note, PriorOnlyWarning, stacklevel=2)
    note = schedule_prior_note(fit.table) if fit.checkpoints else None
    if note:
        warnings.warn(note, PriorOnlyWarning, stacklevel=2)
    risk = parse_risk(risk)
    w, words = resolve_target_weights(fit.targets, fit.domains, target, target_weights)
    C = build_constraints(
        fit.domains,
        D,
        floors=floors,
        caps=caps,
        unique_tokens=unique_tokens,
        max_epochs=max_epochs,
        baseline=baseline,
        max_tv=max_tv,
    )
    rec = _recommend(
        fit, N, D, w, words, risk, C, starts, argmin_draws, path_points, interval, seed, slice_targets=True
    )
    if rec is None:  # the law's targets are not separable: redo with every target
        rec = _recommend(
            fit, N, D, w, words, risk, C, starts, argmin_draws, path_points, interval, seed, slice_targets=False
        )
    rec.timing["total"] = time.perf_counter() - t0
    return rec


def _recommend(
    fit, N, D, w, words, risk, C, starts, argmin_draws, path_points, interval, seed, slice_targets
) -> Recommendation | None:
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    swept, _ = fit.table.mixtures()
    prob = MixtureDecision(Posterior.from_fit(fit), w, swept=swept, bias_seed=seed, slice_targets=slice_targets)
    idx = np.sort(np.random.default_rng([seed, 2]).choice(prob.S, size=min(argmin_draws, prob.S), replace=False))

    # ----- the recommendation: several starts
    f = prob.risk_fn(risk, N, D)
    runs, cands, scores = best_of_starts(prob, C, risk, N, D, idx, starts, np.random.default_rng([seed, 1]))
    best_label, best = min(runs, key=lambda r: r[1].value)
    h = best.h
    _, g = f(h)
    tvs = [0.5 * float(np.abs(r.h - h).sum()) for _, r in runs]
    vals = [r.value for _, r in runs]
    starts_df = pd.DataFrame(
        [
            {
                "start": lab,
                "loss": r.value,
                "tv_to_best": t,
                "converged": r.success,
                "iterations": r.iterations,
                "message": r.message,
                **dict(zip(fit.domains, r.h)),
            }
            for (lab, r), t in zip(runs, tvs)
        ]
    )
    check = {
        "projected_gradient_norm": projected_gradient_norm(C, h, g),
        "free_gradient_norm": float(np.linalg.norm(g - g.mean())),
        **_spread([r.h for _, r in runs], np.array(vals)),
        "best_start": best_label,
    }
    timing["optimise"] = time.perf_counter() - t0

    # ----- losses at the recommendation and the baseline (paired: same draws, same bias)
    pair = np.stack([h, C.baseline if C.baseline is not None else h])
    per = prob.per_target(pair, N, D)  # (S, 2, T), every target
    obj = prob.objective_draws(pair, N, D)  # (S, 2), the optimiser's targets only
    if slice_targets and not np.allclose(per @ w, obj, rtol=1e-9, atol=0):
        return None
    _warn_on_checks(check, abs(best.value))

    # ----- posterior over the argmin: each subsampled draw's own optimum
    t1 = time.perf_counter()
    opt_h, regret, base_regret, draw_pg = per_draw_optima(prob, C, N, D, idx, h, obj[idx], cands, scores)
    check["argmin_projected_gradient_median"] = float(np.median(draw_pg))
    check["argmin_projected_gradient_max"] = float(np.max(draw_pg))
    timing["argmin"] = time.perf_counter() - t1

    # ----- the path over scale
    t2 = time.perf_counter()
    t = fit.table
    N_fit = float(t.model_size.max())
    start = (N_fit, float(t.n_tokens[t.model_size == N_fit].max()))
    path = _path(prob, C, risk, N, D, h, best.value, path_points, interval, idx, start)
    timing["path"] = time.perf_counter() - t2

    weights = fit.table.weights
    far = prob.far(N, D)
    return Recommendation(
        law=fit.law.name,
        domains=tuple(fit.domains),
        targets=tuple(fit.targets),
        target_weights=w,
        objective=words,
        risk=risk,
        model_size=N,
        tokens=D,
        interval=interval,
        seed=seed,
        constraints=C,
        weights=h,
        loss_draws=per[:, 0, :],
        baseline_loss_draws=None if C.baseline is None else per[:, 1, :],
        argmin_draws=opt_h,
        argmin_index=idx,
        regret_draws=regret,
        baseline_regret_draws=base_regret,
        path=path,
        starts=starts_df,
        check=check,
        swept_range=np.column_stack([weights.min(0), weights.max(0)]),
        extrapolation={"efolds": far, "bias_sd": prob.posterior.extrapolation_sd * far},
        timing=timing,
    )


def _path(
    prob: MixtureDecision,
    C: MixtureConstraints,
    risk: Risk,
    N: float,
    D: float,
    h_rec: np.ndarray,
    v_rec: float,
    points: int,
    interval: float,
    idx: np.ndarray,
    start: tuple[float, float],
) -> pd.DataFrame:
    """The recommendation at scales geometrically between the largest fitted (N, D) and the target.

    Token availability caps are those of the target D throughout: the path
    shows how the optimum moves with scale, not with a changing feasible set.
    Starts at each scale: the previous scale's answer, the recommendation,
    and the best candidate mixture at that scale.
    """
    N_fit, D_fit = start
    Ns = np.geomspace(N_fit, N, points) if points > 1 else np.array([N])
    Ds = np.geomspace(D_fit, D, points) if points > 1 else np.array([D])
    rows = []
    prev = h_rec
    a = (1 - interval) / 2
    for i, (n_, d_) in enumerate(zip(Ns, Ds)):
        if i == len(Ns) - 1:
            h, v = h_rec, v_rec  # the target itself: the main result
        else:
            f = prob.risk_fn(risk, n_, d_)
            cands, scores = candidate_mixtures(prob, C, n_, d_, idx)
            ends = [solve(f, C, x0) for x0 in (prev, h_rec, cands[int(np.argmin(scores.mean(0)))])]
            best = min(ends, key=lambda r: r.value)
            h, v = best.h, best.value
        L = prob.objective_draws(np.stack([h, h_rec]), n_, d_)[:, 0]
        lo, hi = np.quantile(L, [a, 1 - a])
        rows.append(
            {
                "model_size": n_,
                "tokens": d_,
                "extrapolated": bool(prob.far(n_, d_) > 0),
                **dict(zip(C.domains, h)),
                "expected_loss": L.mean(),
                "lower": lo,
                "upper": hi,
                "risk_value": v,
                "tv_to_recommended": 0.5 * float(np.abs(h - h_rec).sum()),
            }
        )
        prev = h
    return pd.DataFrame(rows)


def _spread(
    hs: Sequence[np.ndarray], vals: np.ndarray, same_tv: float = 1e-3, flat_rel: float = 1e-4
) -> dict[str, Any]:
    """How the starts ended: the spread of their losses and mixtures, how many reached the best, how many optima.

    Two ends are the same optimum when their mixtures are within ``same_tv``
    (total variation). "Near-best" ends are within ``flat_rel`` (relative) of
    the best loss: a wide spread among them means a flat objective.
    """
    hs = np.asarray(hs)
    b = int(np.argmin(vals))
    tv = 0.5 * np.abs(hs - hs[b]).sum(1)
    distinct: list[int] = []
    for i in np.argsort(vals):
        if all(0.5 * np.abs(hs[i] - hs[j]).sum() > same_tv for j in distinct):
            distinct.append(int(i))
    near = vals <= vals[b] + flat_rel * abs(vals[b])
    return {
        "starts": len(vals),
        "starts_at_best": int(np.sum(tv <= same_tv)),
        "local_optima": len(distinct),
        "starts_max_tv": float(tv.max()),
        "starts_loss_range": float(vals.max() - vals.min()),
        "near_best_max_tv": float(tv[near].max()),
    }


def _warn_on_checks(check: Mapping[str, Any], scale: float) -> None:
    if (
        check["projected_gradient_norm"] > 1e-3 * max(scale, 1e-12)
        and check["projected_gradient_norm"] > 1e-3 * check["free_gradient_norm"]
    ):
        warnings.warn(
            "the recommended mixture may not be an optimum: its projected gradient norm is "
            f"{check['projected_gradient_norm']:.2e} "
            f"(free gradient {check['free_gradient_norm']:.2e}); try more starts",
            RecommendationWarning,
            stacklevel=3,
        )
    if check["starts"] > 1 and check["starts_at_best"] == 1:
        warnings.warn(
            f"only one of {check['starts']} optimiser starts reached the best mixture ({check['local_optima']} "
            "distinct optima found): "
            "a better one may exist; try more starts",
            RecommendationWarning,
            stacklevel=3,
        )
    if check["near_best_max_tv"] > 0.05:
        warnings.warn(
            "the objective is nearly flat: starts ending within 0.01% of the best loss are up to "
            f"{check['near_best_max_tv']:.3f} apart "
            "(total variation), so the data barely separate these mixtures",
            RecommendationWarning,
            stacklevel=3,
        )
