"""How the decision is searched: candidate mixtures, starts, the best of several starts, each draw's own optimum.

:func:`bayesmix.decide.recommend` and :func:`bayesmix.plan.next_run` both
use these, so a plan is scored for the decision that ``recommend`` makes,
under the same constraints.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..model import LawKey
from .constraints import MixtureConstraints
from .objective import Risk
from .problem import MixtureDecision
from .solver import Solved, batch_minimise, solve

__all__ = ["best_of_starts", "candidate_mixtures", "minimise_draws", "per_draw_optima", "start_points"]


def best_of_starts(
    prob: MixtureDecision, C: MixtureConstraints, risk: Risk, N: float, D: float, idx: np.ndarray, n_random: int, rng
) -> tuple[list[tuple[str, Solved]], np.ndarray, np.ndarray]:
    """Minimise the risk from every start (:func:`start_points`); return the runs (label, result), candidates, scores.

    The best run is ``min(runs, key=lambda r: r[1].value)``; the candidates
    (C, K) and their loss in the draws ``idx`` (n, C) serve later searches.
    """
    f = prob.risk_fn(risk, N, D)
    cands, scores = candidate_mixtures(prob, C, N, D, idx)
    runs = [(label, solve(f, C, h0)) for label, h0 in start_points(C, cands, scores, n_random, rng)]
    return runs, cands, scores


def candidate_mixtures(
    prob: MixtureDecision, C: MixtureConstraints, N: float, D: float, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cheap candidate mixtures and their loss in each subsampled draw: (C, K) and (n, C).

    Uniform, each domain's corner (the feasible point nearest to all weight on
    it), and every mixture of the sweep, all projected onto the feasible set.
    Why corners: laws whose mixture term is convex in h (additive with
    exponents above 1) have their optima at vertices, one basin per vertex.
    """
    K = len(C.domains)
    raw = np.vstack([np.full((1, K), 1.0 / K), np.eye(K), prob.swept])
    cands = np.array([C.project(x) for x in raw])
    return cands, prob.objective_draws(cands, N, D, idx)


def start_points(
    C: MixtureConstraints, cands: np.ndarray, scores: np.ndarray, n_random: int, rng
) -> list[tuple[str, np.ndarray]]:
    """Baseline, uniform, the best candidate by mean loss, each domain's corner, then random Dirichlet points."""
    K = len(C.domains)
    pts: list[tuple[str, np.ndarray]] = []
    if C.baseline is not None:
        pts.append(("baseline", C.project(C.baseline)))
    pts.append(("uniform", cands[0]))
    pts.append(("best candidate", cands[int(np.argmin(scores.mean(0)))]))
    pts += [(f"corner {d}", cands[1 + j]) for j, d in enumerate(C.domains)]
    pts += [(f"random {i + 1}", C.project(rng.dirichlet(np.ones(K)))) for i in range(n_random)]
    return pts


def per_draw_optima(
    prob: MixtureDecision,
    C: MixtureConstraints,
    N: float,
    D: float,
    idx: np.ndarray,
    h_rec: np.ndarray,
    at_pair: np.ndarray,
    cands: np.ndarray,
    scores: np.ndarray,
    iters: int = 200,
    method: str = "both",
):
    """Each subsampled draw's own optimum, its regret and the baseline's.

    Two starts per draw: the recommendation, and the candidate mixture (see
    :func:`candidate_mixtures`) that is best in that draw; from each,
    :func:`~bayesmix.decide.solver.batch_minimise` runs a scaled and a plain
    projected gradient and keeps the lower. Why 200 iterations: on the
    SlimPajama golden fit the scaled method is within 1e-12 of SLSQP from
    eight starts by 100 (no constraints, a cap) to 200 (a TV ball), while
    the plain one alone had found 2/3 of the regret at 300. ``method``
    ("both", "scaled", "euclidean") is passed on, for comparisons.

    ``at_pair`` (n, 2) holds each draw's loss at the recommendation and the
    baseline. Returns (optima (n, K), regret (n,), baseline regret (n,) or
    None, projected gradient norms (n,)). A draw's optimum is never worse
    than the recommendation itself (it is one of the starts), so every
    regret is >= 0. A draw's optimum is a local one: the regret is a lower
    bound where the law has several optima.
    """
    n = len(idx)
    H0 = np.vstack([np.tile(h_rec, (n, 1)), cands[np.argmin(scores, axis=1)]])
    X, F, PG = minimise_draws(prob, C, N, D, np.concatenate([idx, idx]), H0, iters=iters, method=method)
    pick = np.where(F[:n] <= F[n:], 0, n) + np.arange(n)
    opt, best_val, pg = X[pick], F[pick], PG[pick]
    at_rec = at_pair[:, 0]
    worse = ~(best_val < at_rec)  # no better than the recommendation itself (or not finite): keep it
    opt[worse], best_val[worse] = h_rec, at_rec[worse]
    opt = np.array([C.project(x) for x in opt])  # exact feasibility (the jax projection is within rounding)
    regret = at_rec - best_val
    base_regret = None if C.baseline is None else at_pair[:, 1] - np.minimum(best_val, at_pair[:, 1])
    return opt, regret, base_regret, pg


def minimise_draws(
    prob: MixtureDecision,
    C: MixtureConstraints,
    N: float,
    D: float,
    rows: np.ndarray,
    H0: np.ndarray,
    iters: int = 200,
    method: str = "both",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row i minimises the target loss of draw ``rows[i]`` alone from ``H0[i]`` over ``C``, all rows at once.

    Returns the minimisers (n, K), their losses (n,) and projected-gradient
    norms (n,), from :func:`~bayesmix.decide.solver.batch_minimise`.
    """
    K = len(C.domains)
    rows = np.asarray(rows)
    b = C.baseline if C.baseline is not None else np.full(K, 1.0 / K)  # unused without a TV bound
    mult = prob.mult(N, D)
    X, F, PG = np.empty((len(rows), K)), np.empty(len(rows)), np.empty(len(rows))
    # one law's draws per compiled call (one block, or one per law of an ensemble)
    for post, at in prob.used_posterior.blocks(rows):
        x, f, pg = batch_minimise(
            LawKey(post.law),
            post.jax_draws(),
            jnp.asarray(np.asarray(H0)[at]),
            jnp.asarray(mult[rows[at]]),
            float(N),
            float(D),
            prob.N0,
            prob.D0,
            prob.own_used,
            jnp.asarray(C.lower_internal),
            jnp.asarray(C.upper),
            jnp.asarray(b),
            float(C.max_tv or 0.0),
            C.max_tv is not None,
            iters,
            method=method,
        )
        X[at], F[at], PG[at] = np.asarray(x), np.asarray(f), np.asarray(pg)
    return X, F, PG
