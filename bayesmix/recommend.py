"""Recommend a training mixture under posterior uncertainty.

The decision: choose the mixture h in the feasible set (floors, caps, token
availability, closeness to a baseline; see :mod:`bayesmix.mixture_constraints`)
that minimises a risk functional of the target loss L_s(h) over posterior
draws s, at the target scale (N, D):

- ``risk="mean"``: the posterior expected loss, (1/S) sum_s L_s(h);
- ``risk="quantile:q"``: the q-quantile of L_s(h) over draws (Harrell-Davis
  weights on the sorted draws, so the objective is smooth in h);
- ``risk="cvar:a"``: the mean of the worst (1 - a) share of draws.

L_s(h) = sum_t w_t mu_st(h, N, D) exp(delta_st) is the law's expected loss in
draw s (a single target, or a weighted sum of targets), times the law's
extrapolation bias delta exactly as :meth:`bayesmix.Fit.predict_draws` draws it
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
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.optimize
from scipy.special import betainc

from .data import parse_target_weights
from .extrapolation import efolds_beyond
from .laws.base import Inputs, own_index
from .mixture_constraints import DEFAULT_MAX_EPOCHS, InfeasibleMixtureError, MixtureConstraints, PerDomain, build_constraints, project_jax
from .model import all_params, log_mean

__all__ = ["Recommendation", "RecommendationWarning", "Risk", "parse_risk", "recommend", "InfeasibleMixtureError"]


class RecommendationWarning(UserWarning):
    """A check on the decision failed: not an optimum, a start-dependent answer, or a nearly flat objective."""


# ---------------------------------------------------------------------- risk
@dataclass(frozen=True)
class Risk:
    """A risk functional of the loss over posterior draws: mean, upper quantile or CVaR."""

    kind: str  # "mean" | "quantile" | "cvar"
    level: float | None = None

    @property
    def label(self) -> str:
        """Human name, e.g. ``CVaR 0.9``."""
        if self.kind == "mean":
            return "posterior mean"
        return f"{self.level:g} quantile" if self.kind == "quantile" else f"CVaR {self.level:g}"

    @property
    def spec(self) -> str:
        """The text form ``parse_risk`` reads back."""
        return "mean" if self.kind == "mean" else f"{self.kind}:{self.level:g}"

    def weights(self, S: int) -> np.ndarray:
        """(S,) weights on the draws sorted ascending; the risk is their dot product with the sorted losses."""
        i = np.arange(S + 1) / S
        if self.kind == "mean":
            return np.full(S, 1.0 / S)
        if self.kind == "quantile":
            # Harrell-Davis: a Beta-weighted average of order statistics,
            # smooth in the losses where a plain quantile jumps between draws.
            a, b = self.level * (S + 1), (1 - self.level) * (S + 1)
            return np.diff(betainc(a, b, i))
        # CVaR_a: the mean of the losses above the a-quantile; the draw that
        # straddles the a-quantile gets the fractional weight.
        return np.diff(np.clip(i - self.level, 0, None)) / (1 - self.level)

    def value(self, losses: np.ndarray) -> float:
        """The risk of a vector of per-draw losses."""
        losses = np.asarray(losses, dtype=float)
        return float(np.sort(losses) @ self.weights(losses.size))


def parse_risk(spec: str | Risk) -> Risk:
    """``"mean"``, ``"quantile:0.9"`` or ``"cvar:0.9"`` -> :class:`Risk` (ValueError otherwise)."""
    if isinstance(spec, Risk):
        return spec
    text = str(spec).strip().lower()
    if text in ("mean", "expected", "expectation"):
        return Risk("mean")
    kind, sep, level = text.partition(":")
    if kind in ("quantile", "cvar") and sep:
        try:
            q = float(level)
        except ValueError:
            q = float("nan")
        if 0 < q < 1:
            return Risk(kind, q)
        raise ValueError(f"risk {spec!r}: the level must be a number strictly between 0 and 1, e.g. {kind}:0.9")
    raise ValueError(f"risk {spec!r}: use 'mean', 'quantile:Q' or 'cvar:A' with Q, A in (0, 1), e.g. cvar:0.9")


# ------------------------------------------------------------ jax kernels
class _LawKey:
    """A law as a static jit argument: equal for laws of the same class and settings.

    Why: jit caches compiled code by static arguments, and every loaded fit
    holds its own law instance; keyed by identity, each new fit of the same
    law would compile again.
    """

    def __init__(self, law):
        self.law = law

    def __hash__(self) -> int:
        return hash((type(self.law), self.law.name))

    def __eq__(self, other) -> bool:
        return isinstance(other, _LawKey) and type(other.law) is type(self.law) and vars(other.law) == vars(self.law)


def _law_mean(law, p, h, N, D, N0, D0, own):
    """(S, M, T) the law's expected loss at mixtures h (M, K) and one scale, every draw."""
    law = law.law if isinstance(law, _LawKey) else law
    M = h.shape[0]
    x = Inputs(h=h, mix=jnp.arange(M), N=jnp.full((M,), N), D=jnp.full((M,), D), N0=N0, D0=D0, own=own)
    return jnp.exp(jax.vmap(lambda q: log_mean(law, q, x))(p))


@partial(jax.jit, static_argnames=("law",))
def _law_draws(law, p, h, N, D, N0, D0, own):
    return _law_mean(law, p, h, N, D, N0, D0, own)


@partial(jax.jit, static_argnames=("law",))
def _risk_value_grad(law, p, h, N, D, N0, D0, own, mult, rw):
    """The risk sum_i rw_i L_(i)(h) over the sorted per-draw losses, and its gradient in h.

    The gradient of an L-estimator is sum_s rw_rank(s) grad L_s(h) (almost
    everywhere): one reverse pass with the rank weights as cotangent, so the
    sort itself is never differentiated.
    """

    def losses(h):
        return (_law_mean(law, p, h[None], N, D, N0, D0, own)[:, 0, :] * mult).sum(-1)

    L, back = jax.vjp(losses, h)
    c = jnp.zeros_like(L).at[jnp.argsort(L)].set(rw)
    return c @ L, back(c)[0]


@partial(jax.jit, static_argnames=("law", "use_tv", "iters"))
def _batch_minimise(law, q, H0, mult, N, D, N0, D0, own, lo, hi, b, max_tv, use_tv, iters):
    """Minimise many single-draw losses at once: row i minimises L_i(h) from H0[i] over the feasible set.

    Projected gradient with a backtracking step per row (halve on failure,
    lengthen a little on success), all rows in one compiled loop: a Python
    optimiser per draw would spend its time on call overhead. Returns the
    minimisers (n, K), their losses (n,) and projected gradient norms (n,).
    """
    proj = jax.vmap(lambda z: project_jax(z, lo, hi, b, max_tv, use_tv))

    def f1(qi, h, m):
        qi = jax.tree.map(lambda v: v[None], qi)
        return (_law_mean(law, qi, h[None], N, D, N0, D0, own)[0, 0] * m).sum()

    vg = jax.vmap(jax.value_and_grad(f1, argnums=1))

    def body(_, st):
        x, fx, gx, L = st
        xn = proj(x - gx / L[:, None])
        fn, gn = vg(q, xn, mult)
        d = xn - x
        ok = fn <= fx + (gx * d).sum(1) + 0.5 * L * (d * d).sum(1) + 1e-15 * jnp.abs(fn)
        ok = ok & jnp.isfinite(fn)
        return (jnp.where(ok[:, None], xn, x), jnp.where(ok, fn, fx), jnp.where(ok[:, None], gn, gx), jnp.where(ok, 0.7 * L, 2.0 * L))

    # The first pass projects H0 and evaluates it (fx = inf accepts it; g = 0 keeps x).
    n, K = H0.shape
    init = (H0, jnp.full((n,), jnp.inf), jnp.zeros((n, K)), jnp.ones((n,)))
    x, fx, g, _ = jax.lax.fori_loop(0, iters, body, init)
    step = 1e-4 / jnp.maximum(jnp.max(jnp.abs(g), axis=1), 1e-300)
    pg = jnp.linalg.norm(x - proj(x - step[:, None] * g), axis=1) / step
    return x, fx, pg


def _slice_targets(fit, used: np.ndarray) -> dict[str, np.ndarray]:
    """The fit's flat draws restricted to some targets, along every "target" and "foreign" axis.

    Why: the optimiser evaluates the law thousands of times, and a target with
    zero weight in the objective is pure cost. The axes come from each
    parameter's declared dims, so no law is special-cased.
    """
    spec = all_params(fit.law, fit.domains, fit.targets)
    foreign = [t for t in fit.targets if t not in fit.domains]
    used_names = [fit.targets[i] for i in used]
    used_foreign = np.array([foreign.index(t) for t in used_names if t in foreign], dtype=int)
    out = {}
    for name, v in fit.flat_draws().items():
        dims = spec[name].dims if name in spec else ()
        for axis, d in enumerate(dims):
            if d == "target":
                v = np.take(v, used, axis=axis + 1)
            elif d == "foreign":
                v = np.take(v, used_foreign, axis=axis + 1)
        out[name] = v
    return out


class _Problem:
    """The fit's draws and the target, ready for the optimiser.

    Draws stay numpy arrays (subsets are taken in numpy, so no indexing op is
    ever compiled); the jitted kernels see a few fixed shapes only.
    """

    def __init__(self, fit, target_w: np.ndarray, seed: int, slice_targets: bool = True):
        self.fit = fit
        self.law = _LawKey(fit.law)
        self.p = fit.flat_draws()
        self.S = int(next(iter(self.p.values())).shape[0])
        self.T = len(fit.targets)
        self.w = np.asarray(target_w, dtype=float)
        # The same normals predict_draws uses first with this seed, so that the
        # losses reported here equal Fit.predict_draws(h, N, D, seed)["mean"].
        self.z = np.random.default_rng(seed).standard_normal((self.S, 1, self.T))[:, 0, :]
        self.N0 = jnp.asarray(fit.N0, dtype=jnp.float64)
        self.D0 = jnp.asarray(fit.D0, dtype=jnp.float64)
        self.own = jnp.asarray(own_index(fit.domains, fit.targets), dtype=jnp.int32)
        # The optimiser sees only the targets in the objective (checked later
        # against the full computation: see Recommendation building).
        self.used = np.nonzero(self.w > 0)[0] if slice_targets else np.arange(self.T)
        self.p_used = _slice_targets(fit, self.used) if slice_targets else self.p
        self.own_used = jnp.asarray(own_index(fit.domains, [fit.targets[i] for i in self.used]), dtype=jnp.int32)
        self._p_used_jax = {k: jnp.asarray(v) for k, v in self.p_used.items()}

    def far(self, N: float, D: float) -> float:
        """E-folds beyond the fitted model sizes and token counts (as predict_draws measures them)."""
        t = self.fit.table
        return float(efolds_beyond(N, D, t.model_size.max(), t.n_tokens.max()))

    def bias(self, N: float, D: float) -> np.ndarray:
        """(S, T) exp(delta): the extrapolation bias of each draw and target at (N, D)."""
        return np.exp(self.fit.extrapolation_sd * self.far(N, D) * self.z)

    def mult(self, N: float, D: float) -> np.ndarray:
        """(S, T_used) target weight times bias, for the targets the optimiser sees."""
        return (self.w[None, :] * self.bias(N, D))[:, self.used]

    def per_target(self, h: np.ndarray, N: float, D: float) -> np.ndarray:
        """(S, M, T) expected loss per draw, mixture and target, bias included (every target)."""
        mu = np.asarray(_law_draws(self.law, self.p, jnp.asarray(np.atleast_2d(h), dtype=jnp.float64), float(N), float(D), self.N0, self.D0, self.own))
        return mu * self.bias(N, D)[:, None, :]

    def objective_draws(self, h: np.ndarray, N: float, D: float, draws: np.ndarray | None = None) -> np.ndarray:
        """(S, M) target loss per draw and mixture (through the targets in the objective only)."""
        p = self.p_used if draws is None else {k: v[draws] for k, v in self.p_used.items()}
        mu = np.asarray(_law_draws(self.law, p, jnp.asarray(np.atleast_2d(h), dtype=jnp.float64), float(N), float(D), self.N0, self.D0, self.own_used))
        m = self.mult(N, D)
        return (mu * (m if draws is None else m[draws])[:, None, :]).sum(-1)

    def risk_fn(self, risk: Risk, N: float, D: float):
        """h -> (risk value, gradient) as numpy, for the optimiser."""
        mult = jnp.asarray(self.mult(N, D))
        rw = jnp.asarray(risk.weights(self.S))

        def f(h):
            v, g = _risk_value_grad(self.law, self._p_used_jax, jnp.asarray(h, dtype=jnp.float64), float(N), float(D), self.N0, self.D0, self.own_used, mult, rw)
            return float(v), np.asarray(g, dtype=float)

        return f


# ------------------------------------------------------------ the solver
@dataclass
class _Solved:
    h: np.ndarray
    value: float
    success: bool
    message: str
    iterations: int


def _solve(f, C: MixtureConstraints, h0: np.ndarray, maxiter: int = 500) -> _Solved:
    """Minimise f over the feasible set from h0 (SLSQP, exact gradients), then project exactly.

    The TV ball is linear with auxiliary variables u >= |h - b|, sum u <= 2 max_tv.
    The objective is scaled by its value at the start so that SLSQP's
    tolerance is relative.
    """
    K = len(C.domains)
    h0 = C.project(h0)
    f0, _ = f(h0)
    scale = abs(f0) if f0 != 0 and math.isfinite(f0) else 1.0
    tv = C.max_tv is not None

    def fun(x):
        v, g = f(x[:K])
        if not math.isfinite(v) or not np.all(np.isfinite(g)):
            return 1e10, np.zeros_like(x)
        return v / scale, (np.concatenate([g, np.zeros(K)]) if tv else g) / scale

    ones = np.ones(K)
    cons = [{"type": "eq", "fun": lambda x: x[:K].sum() - 1.0, "jac": lambda x: np.concatenate([ones, np.zeros(K)]) if tv else ones}]
    bounds = list(zip(C.lower_internal, C.upper))
    x0 = h0
    if tv:
        b, r = C.baseline, C.max_tv
        eye = np.eye(K)
        cons += [
            {"type": "ineq", "fun": lambda x: x[K:] - (x[:K] - b), "jac": lambda x: np.hstack([-eye, eye])},
            {"type": "ineq", "fun": lambda x: x[K:] + (x[:K] - b), "jac": lambda x: np.hstack([eye, eye])},
            {"type": "ineq", "fun": lambda x: np.array([2 * r - x[K:].sum()]), "jac": lambda x: np.concatenate([np.zeros(K), -ones])[None]},
        ]
        bounds += [(0.0, 1.0)] * K
        x0 = np.concatenate([h0, np.abs(h0 - b)])
    with warnings.catch_warnings():
        # SLSQP warns about values outside bounds by rounding; we project anyway.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = scipy.optimize.minimize(fun, x0, jac=True, method="SLSQP", bounds=bounds, constraints=cons, options={"ftol": 1e-13, "maxiter": maxiter})
    h = C.project(res.x[:K])
    v, _ = f(h)
    if v > f0:  # never return something worse than the start
        h, v = h0, f0
    return _Solved(h, v, bool(res.success), str(res.message), int(res.nit))


def projected_gradient_norm(C: MixtureConstraints, h: np.ndarray, g: np.ndarray) -> float:
    """Norm of the gradient mapping (h - P(h - t g)) / t for a small step t.

    Zero exactly at a point satisfying the first-order (KKT) conditions on the
    feasible set; otherwise the length of the best feasible descent direction.
    """
    gmax = float(np.max(np.abs(g)))
    if gmax == 0:
        return 0.0
    t = 1e-4 / gmax  # moves no weight by more than 1e-4
    return float(np.linalg.norm(h - C.project(h - t * g)) / t)


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
        """Posterior probability that the recommendation has a lower target loss than the baseline (paired over draws)."""
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
        """One row per domain: recommended and baseline weight, posterior interval of the optimal weight, bounds and swept range."""
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
        """One row per target (plus ``objective``): predicted loss at the recommendation and the baseline, with intervals, and P(lower than baseline)."""
        names = list(self.targets) + ["objective"]
        R = np.column_stack([self.loss_draws, self.objective_draws])
        rows = []
        B = None if self.baseline_loss_draws is None else np.column_stack([self.baseline_loss_draws, self.baseline_objective_draws])
        for j, t in enumerate(names):
            r = {"target": t, "weight": self.target_weights[j] if j < len(self.targets) else np.nan, "recommended": R[:, j].mean()}
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
            f"Recommended mixture for N = {self.model_size:.3g} parameters, D = {self.tokens:.3g} tokens ({self.law} law, {self.loss_draws.shape[0]} posterior draws)",
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
        lines.append(f"expected target loss {m.expected_loss:.4f}, {pct}% interval [{m.lower:.4f}, {m.upper:.4f}]" + (f"; {self.risk.label} {m.risk_value:.4f}" if self.risk.kind != "mean" else ""))
        if self.baseline is not None:
            lines.append(f"baseline: expected loss {m.baseline_expected_loss:.4f} [{m.baseline_lower:.4f}, {m.baseline_upper:.4f}]")
            lines.append(f"P(recommended beats baseline) = {m.p_beats_baseline:.3f} (paired over draws); expected improvement {m.improvement:.4f} [{m.improvement_lower:.4f}, {m.improvement_upper:.4f}]")
        lines.append(
            f"stability: expected regret {m.expected_regret:.2e} [{m.regret_lower:.2e}, {m.regret_upper:.2e}] against each draw's own optimum ({len(self.regret_draws)} draws)"
            + (f"; the baseline's {m.baseline_expected_regret:.2e}" if self.baseline_regret_draws is not None else "")
        )
        ex = self.extrapolation
        if ex["efolds"] > 0:
            lines.append(f"extrapolation: {ex['efolds']:.2f} e-folds beyond the fitted scales; law bias sd up to {np.max(ex['bias_sd']):.3f} on the log loss (per target) is included")
        lines.append(
            f"optimiser: {m.starts_at_best} of {m.starts} starts reached the best ({m.local_optima} distinct optim{'um' if m.local_optima == 1 else 'a'}; losses span {m.starts_loss_range:.1e}, "
            f"mixtures {m.starts_max_tv:.2f} TV); projected gradient {m.projected_gradient_norm:.1e} (free {m.free_gradient_norm:.1e}); {m.seconds:.1f} s"
        )
        if tab.outside_sweep.any():
            lines.append(f"note: {', '.join(tab.domain[tab.outside_sweep])} outside the weights the sweep trained: the law is extrapolating in the mixture too")
        if len(self.path) > 1:
            moved = self.path.tv_to_recommended.iloc[:-1].max()
            lines.append(f"path over scale: the recommendation moves by at most {moved:.3f} (TV) between N = {self.path.model_size.iloc[0]:.3g} and the target")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<bayesmix.Recommendation {self.law}: {', '.join(f'{d}={w:.3f}' for d, w in zip(self.domains, self.weights))}>"

    # ---------------------------------------------------------- figures
    def plot_weights(self):
        """Figure: recommended weights with the posterior interval of the optimal weight, beside the baseline."""
        from .recommend_plots import plot_weights

        return plot_weights(self)

    def plot_losses(self):
        """Figure: distribution of the target loss at the recommendation and the baseline, and of their paired difference."""
        from .recommend_plots import plot_losses

        return plot_losses(self)

    def plot_path(self):
        """Figure: the recommended mixture and its loss along the path of scales."""
        from .recommend_plots import plot_path

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
        for name, frame in (("recommendation", self.table), ("losses", self.losses), ("path", self.path), ("starts", self.starts)):
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
def resolve_target_weights(targets: Sequence[str], domains: Sequence[str], target=None, target_weights=None) -> tuple[np.ndarray, str]:
    """Weights of each fitted target in the objective, and the objective in words.

    ``target`` names one target (or a list: their mean); ``target_weights`` is a
    mapping or ``"c4=1,book=1"`` (a weighted sum, not renormalised, as in
    ``Fit.predict``). With neither: the mean over the targets that are
    training domains.
    """
    targets = list(targets)
    if target is not None and target_weights is not None:
        raise ValueError("give either target or target_weights, not both")
    if target is not None:
        names = [target] if isinstance(target, str) else list(target)
        mapping = {}
        for t in names:
            key = t if t in targets else (t[: -len("_loss")] if t.endswith("_loss") else None)
            if key not in targets:
                raise ValueError(f"unknown target {t!r}; this model's targets are {', '.join(targets)}")
            mapping[key] = 1.0 / len(names)
        words = names[0] if len(names) == 1 else f"the mean of {', '.join(names)}"
    elif target_weights is not None:
        mapping = parse_target_weights(target_weights, targets) if isinstance(target_weights, str) else dict(target_weights)
        for t in mapping:
            if t not in targets:
                raise ValueError(f"target weights: unknown target {t!r}; this model's targets are {', '.join(targets)}")
        if any(not (math.isfinite(v) and v >= 0) for v in mapping.values()) or not any(mapping.values()):
            raise ValueError(f"target weights must be finite, >= 0 and not all zero; got {mapping}")
        words = _weighted_words({t: float(v) for t, v in mapping.items() if v}, len(targets))
    else:
        own = [t for t in targets if t in domains] or targets
        mapping = {t: 1.0 / len(own) for t in own}
        words = f"the mean of the {len(own)} domain targets" if len(own) > 1 else own[0]
    w = np.array([float(mapping.get(t, 0.0)) for t in targets])
    return w, words


def _weighted_words(mapping: Mapping[str, float], n_targets: int) -> str:
    """A weighted sum of targets in words: 'the mean of ...' / 'the sum of ...' when the weights are equal."""
    names, vals = list(mapping), np.array(list(mapping.values()))
    if len(names) == 1:
        return names[0] if vals[0] == 1 else f"{vals[0]:.3g} x {names[0]}"
    listed = ", ".join(names) if len(names) <= 4 else f"{len(names)} targets ({', '.join(names)})"
    if np.allclose(vals, 1.0 / len(names)):
        return f"the mean of {listed}"
    if np.allclose(vals, 1.0):
        return f"the sum of {listed}"
    return " + ".join(f"{v:.3g} x {t}" for t, v in mapping.items())


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
    :class:`~bayesmix.mixture_constraints.InfeasibleMixtureError` naming the
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
    risk = parse_risk(risk)
    w, words = resolve_target_weights(fit.targets, fit.domains, target, target_weights)
    C = build_constraints(fit.domains, D, floors=floors, caps=caps, unique_tokens=unique_tokens, max_epochs=max_epochs, baseline=baseline, max_tv=max_tv)
    rec = _recommend(fit, N, D, w, words, risk, C, starts, argmin_draws, path_points, interval, seed, slice_targets=True)
    if rec is None:  # the law's targets are not separable: redo with every target
        rec = _recommend(fit, N, D, w, words, risk, C, starts, argmin_draws, path_points, interval, seed, slice_targets=False)
    rec.timing["total"] = time.perf_counter() - t0
    return rec


def _recommend(fit, N, D, w, words, risk, C, starts, argmin_draws, path_points, interval, seed, slice_targets) -> Recommendation | None:
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    prob = _Problem(fit, w, seed, slice_targets)
    idx = np.sort(np.random.default_rng([seed, 2]).choice(prob.S, size=min(argmin_draws, prob.S), replace=False))

    # ----- the recommendation: several starts
    f = prob.risk_fn(risk, N, D)
    cands, scores = _candidates(prob, C, N, D, idx)
    runs = [(label, _solve(f, C, h0)) for label, h0 in _start_points(C, cands, scores, starts, np.random.default_rng([seed, 1]))]
    best_label, best = min(runs, key=lambda r: r[1].value)
    h = best.h
    _, g = f(h)
    tvs = [0.5 * float(np.abs(r.h - h).sum()) for _, r in runs]
    vals = [r.value for _, r in runs]
    starts_df = pd.DataFrame(
        [{"start": lab, "loss": r.value, "tv_to_best": t, "converged": r.success, "iterations": r.iterations, "message": r.message, **dict(zip(fit.domains, r.h))} for (lab, r), t in zip(runs, tvs)]
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
    opt_h, regret, base_regret, draw_pg = _per_draw_optima(prob, C, N, D, idx, h, obj[idx], cands, scores)
    check["argmin_projected_gradient_median"] = float(np.median(draw_pg))
    check["argmin_projected_gradient_max"] = float(np.max(draw_pg))
    timing["argmin"] = time.perf_counter() - t1

    # ----- the path over scale
    t2 = time.perf_counter()
    path = _path(prob, C, risk, N, D, h, best.value, path_points, interval, idx)
    timing["path"] = time.perf_counter() - t2

    weights = fit.table.weights
    far = prob.far(N, D)
    return Recommendation(
        law=fit.law.name, domains=tuple(fit.domains), targets=tuple(fit.targets), target_weights=w, objective=words,
        risk=risk, model_size=N, tokens=D, interval=interval, seed=seed, constraints=C, weights=h,
        loss_draws=per[:, 0, :], baseline_loss_draws=None if C.baseline is None else per[:, 1, :],
        argmin_draws=opt_h, argmin_index=idx, regret_draws=regret, baseline_regret_draws=base_regret,
        path=path, starts=starts_df, check=check, swept_range=np.column_stack([weights.min(0), weights.max(0)]),
        extrapolation={"efolds": far, "bias_sd": np.broadcast_to(np.asarray(fit.extrapolation_sd, dtype=float), (len(fit.targets),)) * far}, timing=timing,
    )


def _candidates(prob: _Problem, C: MixtureConstraints, N: float, D: float, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cheap candidate mixtures and their loss in each subsampled draw: (C, K) and (n, C).

    Uniform, each domain's corner (the feasible point nearest to all weight on
    it), and every mixture of the sweep, all projected onto the feasible set.
    Why corners: laws whose mixture term is convex in h (additive with
    exponents above 1) have their optima at vertices, one basin per vertex.
    """
    K = len(C.domains)
    swept, _ = prob.fit.table.mixtures()
    raw = np.vstack([np.full((1, K), 1.0 / K), np.eye(K), swept])
    cands = np.array([C.project(x) for x in raw])
    return cands, prob.objective_draws(cands, N, D, idx)


def _start_points(C: MixtureConstraints, cands: np.ndarray, scores: np.ndarray, n_random: int, rng) -> list[tuple[str, np.ndarray]]:
    """Baseline, uniform, the candidate with the lowest mean loss, each domain's corner, then random Dirichlet points."""
    K = len(C.domains)
    pts: list[tuple[str, np.ndarray]] = []
    if C.baseline is not None:
        pts.append(("baseline", C.project(C.baseline)))
    pts.append(("uniform", cands[0]))
    pts.append(("best candidate", cands[int(np.argmin(scores.mean(0)))]))
    pts += [(f"corner {d}", cands[1 + j]) for j, d in enumerate(C.domains)]
    pts += [(f"random {i + 1}", C.project(rng.dirichlet(np.ones(K)))) for i in range(n_random)]
    return pts


def _per_draw_optima(prob: _Problem, C: MixtureConstraints, N: float, D: float, idx: np.ndarray, h_rec: np.ndarray, at_pair: np.ndarray,
                     cands: np.ndarray, scores: np.ndarray, iters: int = 300):
    """Each subsampled draw's own optimum, its regret and the baseline's.

    Two starts per draw: the recommendation, and the candidate mixture (see
    :func:`_candidates`) that is best in that draw.

    ``at_pair`` (n, 2) holds each draw's loss at the recommendation and the
    baseline. Returns (optima (n, K), regret (n,), baseline regret (n,) or
    None, projected gradient norms (n,)). A draw's optimum is never worse
    than the recommendation itself (it is one of the starts), so every
    regret is >= 0. A draw's optimum is a local one: the regret is a lower
    bound where the law has several optima.
    """
    n = len(idx)
    mult = prob.mult(N, D)[idx]
    q2 = {k: jnp.asarray(np.concatenate([v[idx], v[idx]])) for k, v in prob.p_used.items()}
    H0 = np.vstack([np.tile(h_rec, (n, 1)), cands[np.argmin(scores, axis=1)]])
    b = C.baseline if C.baseline is not None else cands[0]  # unused without a TV bound
    X, F, PG = _batch_minimise(
        prob.law, q2, jnp.asarray(H0), jnp.asarray(np.vstack([mult, mult])), float(N), float(D), prob.N0, prob.D0, prob.own_used,
        jnp.asarray(C.lower_internal), jnp.asarray(C.upper), jnp.asarray(b), float(C.max_tv or 0.0), C.max_tv is not None, iters,
    )
    X, F, PG = np.asarray(X), np.asarray(F), np.asarray(PG)
    pick = np.where(F[:n] <= F[n:], 0, n) + np.arange(n)
    opt, best_val, pg = X[pick], F[pick], PG[pick]
    at_rec = at_pair[:, 0]
    worse = ~(best_val < at_rec)  # no better than the recommendation itself (or not finite): keep it
    opt[worse], best_val[worse] = h_rec, at_rec[worse]
    opt = np.array([C.project(x) for x in opt])  # exact feasibility (the jax projection is within rounding)
    regret = at_rec - best_val
    base_regret = None if C.baseline is None else at_pair[:, 1] - np.minimum(best_val, at_pair[:, 1])
    return opt, regret, base_regret, pg


def _path(prob: _Problem, C: MixtureConstraints, risk: Risk, N: float, D: float, h_rec: np.ndarray, v_rec: float, points: int, interval: float, idx: np.ndarray) -> pd.DataFrame:
    """The recommendation at scales geometrically between the largest fitted (N, D) and the target.

    Token availability caps are those of the target D throughout: the path
    shows how the optimum moves with scale, not with a changing feasible set.
    Starts at each scale: the previous scale's answer, the recommendation,
    and the best candidate mixture at that scale.
    """
    t = prob.fit.table
    N_fit = float(t.model_size.max())
    D_fit = float(t.n_tokens[t.model_size == N_fit].max())
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
            cands, scores = _candidates(prob, C, n_, d_, idx)
            ends = [_solve(f, C, x0) for x0 in (prev, h_rec, cands[int(np.argmin(scores.mean(0)))])]
            best = min(ends, key=lambda r: r.value)
            h, v = best.h, best.value
        L = prob.objective_draws(np.stack([h, h_rec]), n_, d_)[:, 0]
        lo, hi = np.quantile(L, [a, 1 - a])
        rows.append({
            "model_size": n_, "tokens": d_, "extrapolated": bool(prob.far(n_, d_) > 0),
            **dict(zip(C.domains, h)), "expected_loss": L.mean(), "lower": lo, "upper": hi, "risk_value": v,
            "tv_to_recommended": 0.5 * float(np.abs(h - h_rec).sum()),
        })
        prev = h
    return pd.DataFrame(rows)


def _spread(hs: Sequence[np.ndarray], vals: np.ndarray, same_tv: float = 1e-3, flat_rel: float = 1e-4) -> dict[str, Any]:
    """How the starts ended: the spread of their losses and mixtures, how many reached the best, how many distinct optima.

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
    if check["projected_gradient_norm"] > 1e-3 * max(scale, 1e-12) and check["projected_gradient_norm"] > 1e-3 * check["free_gradient_norm"]:
        warnings.warn(
            f"the recommended mixture may not be an optimum: its projected gradient norm is {check['projected_gradient_norm']:.2e} "
            f"(free gradient {check['free_gradient_norm']:.2e}); try more starts",
            RecommendationWarning, stacklevel=3,
        )
    if check["starts"] > 1 and check["starts_at_best"] == 1:
        warnings.warn(
            f"only one of {check['starts']} optimiser starts reached the best mixture ({check['local_optima']} distinct optima found): "
            "a better one may exist; try more starts",
            RecommendationWarning, stacklevel=3,
        )
    if check["near_best_max_tv"] > 0.05:
        warnings.warn(
            f"the objective is nearly flat: starts ending within 0.01% of the best loss are up to {check['near_best_max_tv']:.3f} apart "
            "(total variation), so the data barely separate these mixtures",
            RecommendationWarning, stacklevel=3,
        )
