"""Scoring candidate runs: the decision they inform, and what each run's result would tell about it.

:class:`Scorer` holds what the ranking and the greedy batch share: the draws,
the decision problem (:func:`decision_problem`, made with
:mod:`bayesmix.decide`), Q, the noise a run carries, the law's extrapolation
bias, and each candidate's information (:mod:`bayesmix.plan.preposterior`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..decide.constraints import MixtureConstraints, build_constraints
from ..decide.objective import Risk, resolve_target_weights
from ..decide.problem import MixtureDecision
from ..decide.search import best_of_starts, per_draw_optima
from ..posterior import efolds_beyond
from .candidates import checkpoint_fractions
from .preposterior import (
    DrawSet,
    Information,
    Reweighting,
    describe_parameters,
    flat_parameters,
    gaussian_voi,
    noise_variances,
    reweighted_voi,
    run_signal,
    weighted_variance,
)

QUANTITIES = {
    "loss": "target loss at the recommended mixture",
    "optimal_loss": "target loss of the optimal mixture",
    "regret": "regret of the recommended mixture",
}


def parse_quantity(q: str) -> str:
    """``loss``, ``optimal-loss``/``optimal_loss`` or ``regret`` (ValueError otherwise)."""
    key = str(q).strip().lower().replace("-", "_")
    if key not in QUANTITIES:
        raise ValueError(f"unknown quantity {q!r}; choose one of {', '.join(k.replace('_', '-') for k in QUANTITIES)}")
    return key


# ---------------------------------------------------------------- the decision problem
@dataclass
class DecisionProblem:
    """The mixture decision at the target scale, over the draws (made by :mod:`bayesmix.decide`)."""

    decision: MixtureDecision  # the target loss of every draw, without the extrapolation bias
    constraints: MixtureConstraints
    h_rec: np.ndarray  # (K,) recommended mixture under the current weights
    L_rec: np.ndarray  # (S,) target loss at the recommendation, per draw
    h_opt: np.ndarray  # (S, K) each draw's own optimum
    L_opt: np.ndarray  # (S,) its loss
    H: np.ndarray  # (M, K) the finite decision set for the value of information (row 0 = h_rec)
    L_H: np.ndarray  # (S, M)
    weights: np.ndarray  # (S,) the draws' weights

    def quantity(self, name: str) -> np.ndarray:
        """(S,) draws of Q."""
        return {"loss": self.L_rec, "optimal_loss": self.L_opt, "regret": self.L_rec - self.L_opt}[name]

    @property
    def expected_regret(self) -> float:
        """E_w[L(h_rec) - min_h L(h)]."""
        return float(self.weights @ (self.L_rec - self.L_opt))


def decision_problem(
    fit,
    draws: DrawSet,
    target_weights: np.ndarray,
    model_size: float,
    tokens: float,
    constraints: MixtureConstraints,
    decisions: int = 64,
    starts: int = 4,
    seed: int = 0,
) -> DecisionProblem:
    """Recommend as :func:`bayesmix.decide.recommend` does (risk: the mean); each draw's own optimum; the decision set.

    The same problem, solver and constraints as ``recommend``; the law's
    extrapolation bias is left out of the draws (it is independent of the
    law's parameters and would only add Monte Carlo noise to every variance;
    the scorer adds its variance analytically).
    """
    if not np.allclose(draws.weights, draws.weights[0]):
        raise ValueError("decision_problem: the draws must have equal weights (the decision is the posterior mean's)")
    N, D = float(model_size), float(tokens)
    swept, _ = fit.table.mixtures()
    C = constraints
    prob = MixtureDecision(draws.posterior, target_weights, swept=swept, bias_seed=None)
    probe = np.vstack([np.full(len(C.domains), 1.0 / len(C.domains)), swept[:1]])
    if not np.allclose(prob.per_target(probe, N, D) @ prob.w, prob.objective_draws(probe, N, D), rtol=1e-9, atol=0):
        prob = MixtureDecision(draws.posterior, target_weights, swept=swept, bias_seed=None, slice_targets=False)
    every = np.arange(prob.S)
    runs, cands, scores = best_of_starts(prob, C, Risk("mean"), N, D, every, starts, np.random.default_rng([seed, 1]))
    h_rec = min(runs, key=lambda r: r[1].value)[1].h
    L_rec = prob.objective_draws(h_rec[None], N, D)[:, 0]
    h_opt, regret, _, _ = per_draw_optima(prob, C, N, D, every, h_rec, np.column_stack([L_rec, L_rec]), cands, scores)
    L_opt = L_rec - regret  # a draw's own optimum is never worse than h_rec for it: regret >= 0
    rng = np.random.default_rng([seed, 3])
    pick = rng.choice(draws.S, size=min(decisions, draws.S), replace=False, p=draws.weights)
    H = np.vstack([h_rec[None], h_opt[pick], 0.5 * (h_opt[pick] + h_rec[None])])
    return DecisionProblem(prob, C, h_rec, L_rec, h_opt, L_opt, H, prob.objective_draws(H, N, D), draws.weights)


# ---------------------------------------------------------------- scoring state
@dataclass
class _State:
    """Conditioned quantities during a greedy batch (linear-Gaussian)."""

    q: np.ndarray  # (S,) centred Q, conditioned on the runs chosen so far
    LH: np.ndarray  # (S, M) centred decision losses, conditioned
    theta: np.ndarray  # (S, P) centred parameters, conditioned
    chosen: list[Information] = field(default_factory=list)  # conditioned informations of the runs chosen
    voi_factors: list[np.ndarray] = field(default_factory=list)
    # candidate -> (k, its information conditioned on the first k runs chosen): a cache, so that each
    # greedy step conditions every candidate on the newest run only
    cache: dict[int, tuple[int, Information]] = field(default_factory=dict)
    reach: tuple[float, float] = (0.0, 0.0)  # largest model size and token count fitted or chosen

    def condition(self, info: Information) -> None:
        self.q = info.condition(self.q)
        self.LH = info.condition(self.LH)
        self.theta = info.condition(self.theta)
        self.chosen.append(info)


class Scorer:
    """Scores candidate runs against a fit; holds what the ranking and the greedy batch share."""

    def __init__(
        self,
        fit,
        candidates: pd.DataFrame,
        model_size: float,
        tokens: float,
        *,
        target=None,
        target_weights=None,
        quantity: str = "loss",
        fractions: np.ndarray | None = None,
        max_draws: int | None = 1000,
        constraints: MixtureConstraints | None = None,
        decisions: int = 64,
        outcomes: int = 64,
        voi_samples: int = 1024,
        max_batch: int = 8,
        seed: int = 0,
    ):
        """``constraints``: the feasible mixtures, as :func:`bayesmix.decide.recommend` takes them (default: none)."""
        t0 = time.perf_counter()
        self.fit = fit
        self.candidates = candidates.reset_index(drop=True)
        self.quantity = parse_quantity(quantity)
        self.target_weights, self.objective = resolve_target_weights(fit.targets, fit.domains, target, target_weights)
        self.model_size, self.tokens = float(model_size), float(tokens)
        self.fractions = checkpoint_fractions(fit.table) if fractions is None else np.asarray(fractions, dtype=float)
        self.draws = DrawSet.from_fit(fit, max_draws)
        self.constraints = build_constraints(fit.domains, tokens) if constraints is None else constraints
        self.decision = decision_problem(
            fit, self.draws, self.target_weights, model_size, tokens, self.constraints, decisions=decisions, seed=seed
        )
        self.Q = self.decision.quantity(self.quantity)
        self.q_var_law = float(self.draws.var(self.Q))
        self.fitted_reach = (float(fit.table.model_size.max()), float(fit.table.n_tokens.max()))
        self.bias_terms = self._bias_terms()
        self.q_var = self.q_var_law + self.bias_var(self.fitted_reach)
        self.sigma2, self.tau2 = noise_variances(self.draws)
        self.theta, self.param_names = flat_parameters(fit, self.draws)
        self.param_var = self.draws.var(self.theta)
        self.param_docs = describe_parameters(fit)
        # Q's sensitivity to each parameter: the reason names a parameter that matters for Q.
        qc = self.draws.centred(self.Q)
        tc = self.draws.centred(self.theta)
        denom = np.sqrt(np.maximum(self.param_var, 1e-300) * max(self.q_var, 1e-300))
        self.q_corr = (tc * qc[:, None]).sum(0) / denom
        mean = self.draws.mean(self.theta)
        self.rel_sd = np.sqrt(self.param_var) / np.maximum(np.abs(mean), 1e-12)
        self.mu0 = self.draws.mean(self.decision.L_H)
        self.rng_seed = seed
        rng = np.random.default_rng([seed, 4])
        d = len(self.fractions) * len(fit.targets)
        self.xi = rng.standard_normal((voi_samples, d * (max_batch + 1)))
        self.reweighting = Reweighting(self.draws, outcomes, len(self.fractions), max_batch + 1, seed=seed)
        self.infos: list[Information] = []
        self.timing = {"setup": time.perf_counter() - t0}

    # -------------------------------------------------------------- pieces
    def base_state(self) -> _State:
        """Centred Q, decision losses and parameters under the current posterior (nothing chosen yet)."""
        return _State(
            self.draws.centred(self.Q),
            self.draws.centred(self.decision.L_H),
            self.draws.centred(self.theta),
            reach=self.fitted_reach,
        )

    def _bias_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """((w_t m_t)^2, sd_t) per target: m_t the posterior mean loss at the recommendation and target scale."""
        post = self.draws.posterior
        T = len(post.targets)
        sd = post.extrapolation_sd.copy()
        if self.quantity == "regret":  # the bias multiplies both losses of the difference alike
            return np.zeros(T), sd
        mu = post.means(self.decision.h_rec[None], self.model_size, self.tokens)[:, 0, :]  # (S, T)
        return (self.target_weights * self.draws.mean(mu)) ** 2, sd

    def far(self, reach: tuple[float, float]) -> float:
        """E-folds from a fitted range reaching (model size, tokens) to the target scale."""
        return float(efolds_beyond(self.model_size, self.tokens, reach[0], reach[1]))

    def bias_var(self, reach: tuple[float, float]) -> float:
        """Variance of Q from the law's extrapolation bias when the fitted range reaches (model size, tokens)."""
        a, sd = self.bias_terms
        v = (sd * self.far(reach)) ** 2
        return float(np.sum(a * np.exp(v) * np.expm1(v)))

    def bias_reduction(self, reach: tuple[float, float], index: Sequence[int]) -> np.ndarray:
        """Reduction of that variance if candidates ``index`` were added to a fitted range reaching ``reach``."""
        now = self.bias_var(reach)
        return np.array([now - self.bias_var(self.extension(reach, i)) for i in index])

    def extension(self, reach: tuple[float, float], i: int) -> tuple[float, float]:
        """The fitted range after adding candidate ``i``."""
        c = self.candidates
        return (
            max(reach[0], float(c.model_size.iat[i])),
            max(reach[1], float(c.n_tokens.iat[i]) * float(np.max(self.fractions))),
        )

    def log_means(self, index: Sequence[int]) -> np.ndarray:
        """(S, n, C, T) the law's log loss at every checkpoint of candidates ``index``."""
        c = self.candidates.iloc[list(index)]
        h = c[[f"weight_{d}" for d in self.fit.domains]].to_numpy(dtype=float)
        C = len(self.fractions)
        hh = np.repeat(h, C, axis=0)
        NN = np.repeat(c.model_size.to_numpy(dtype=float), C)
        DD = (c.n_tokens.to_numpy(dtype=float)[:, None] * self.fractions[None, :]).ravel()
        m = self.draws.posterior.log_means(hh, NN, DD)
        return m.reshape(m.shape[0], len(c), C, m.shape[-1])

    def compute_information(self, chunk: int = 64) -> None:
        """The linear-Gaussian information of every candidate (stored; reused by the batch)."""
        t0 = time.perf_counter()
        n = len(self.candidates)
        infos = []
        for a in range(0, n, chunk):
            idx = range(a, min(a + chunk, n))
            M = self.log_means(idx)
            for j in range(M.shape[1]):
                infos.append(Information.from_signal(run_signal(self.draws, M[:, j], self.sigma2, self.tau2)))
        self.infos = infos
        self.timing["information"] = time.perf_counter() - t0

    def gaussian_gains(self, state: _State, candidates: Sequence[int], voi: bool = True) -> dict[str, Any]:
        """Expected reductions of each candidate given the runs in ``state`` (linear-Gaussian).

        Returns a dict of aligned lists: ``candidate``, ``var_reduction``,
        ``regret_reduction`` (NaN unless ``voi``), ``par`` (per-parameter
        variance reductions), ``info`` (the conditioned information) and ``B``
        (its factor on the decision losses).
        """
        out: dict[str, list] = {
            "candidate": [],
            "var_reduction": [],
            "regret_reduction": [],
            "par": [],
            "info": [],
            "B": [],
            "bias_reduction": [],
        }
        candidates = list(candidates)
        bias = dict(zip(candidates, self.bias_reduction(state.reach, candidates)))
        offset = sum(B.shape[1] for B in state.voi_factors)
        base_voi = gaussian_voi(self.mu0, state.voi_factors, self.xi) if (voi and state.voi_factors) else 0.0
        for i in candidates:
            done, info = state.cache.get(i, (0, self.infos[i]))
            for prev in state.chosen[done:]:
                info = info.conditioned_on(prev)
            state.cache[i] = (len(state.chosen), info)
            B = np.tensordot(state.LH, info.factor, axes=(0, 0))  # (M, r)
            if voi:
                if offset + B.shape[1] > self.xi.shape[1]:
                    raise ValueError("batch too long for the random numbers drawn; raise max_batch")
                v = max(gaussian_voi(self.mu0, state.voi_factors + [B], self.xi) - base_voi, 0.0)
            else:
                v = float("nan")
            out["candidate"].append(i)
            out["var_reduction"].append(max(float(info.reduction(state.q)), 0.0) + bias[i])
            out["bias_reduction"].append(bias[i])
            out["regret_reduction"].append(v)
            out["par"].append(info.reduction(state.theta))
            out["info"].append(info)
            out["B"].append(B)
        return out

    def reweight_gains(
        self,
        loglik_so_far: np.ndarray | None,
        candidates: Sequence[int],
        slot: int = 0,
        reach: tuple[float, float] | None = None,
    ) -> pd.DataFrame:
        """Importance-reweighting estimates for candidates, given the simulated runs so far (and their range)."""
        bias = dict(zip(candidates, self.bias_reduction(reach or self.fitted_reach, candidates)))
        rw = self.reweighting
        L_H = self.decision.L_H
        base = rw.reweight(loglik_so_far if loglik_so_far is not None else np.zeros((rw.G, self.draws.S)))
        v0 = weighted_variance(base.weights, self.Q)
        voi0 = reweighted_voi(base.weights, L_H) if loglik_so_far is not None else 0.0
        rows = []
        for a in range(0, len(candidates), 32):
            idx = list(candidates[a : a + 32])
            M = self.log_means(idx)
            for j, i in enumerate(idx):
                ll = rw.loglik(M[:, j], slot)
                tot = ll if loglik_so_far is None else loglik_so_far + ll
                post = rw.reweight(tot)
                v = weighted_variance(post.weights, self.Q)
                red = v0 - v + bias[i]
                voi = reweighted_voi(post.weights, L_H) - voi0
                rows.append(
                    {
                        "candidate": i,
                        "var_reduction_is": float(red.mean()),
                        "var_reduction_is_se": float(red.std(ddof=1) / math.sqrt(len(red))),
                        "regret_reduction_is": voi,
                        "ess_median": float(np.median(post.ess)),
                        "ess_min": float(post.ess.min()),
                        "_ll": ll,
                    }
                )
        return pd.DataFrame(rows)

    def reason(self, par_red: np.ndarray) -> tuple[str, str, float]:
        """(reason, parameter, fraction of its variance removed): the parameter this run informs most."""
        frac = par_red / np.maximum(self.param_var, 1e-300)
        relevant = np.abs(self.q_corr) >= 0.1
        pool = np.flatnonzero(relevant) if relevant.any() else np.arange(len(frac))
        j = int(pool[np.argmax(frac[pool])])
        name = self.param_names[j]
        site = name.split("[")[0]
        doc = self.param_docs.get(site, site)
        order = np.argsort(-self.rel_sd)
        rank = int(np.flatnonzero(order == j)[0]) + 1
        where = "the least certain parameter" if rank == 1 else f"{_ordinal(rank)} least certain of {len(frac)}"
        text = (
            f"informs {name} ({doc}): cuts its variance by {100 * frac[j]:.0f}%; {where} "
            f"(sd/|mean| {self.rel_sd[j]:.2g})"
        )
        return text, name, float(frac[j])


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
