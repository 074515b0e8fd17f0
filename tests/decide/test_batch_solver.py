"""The batched per-draw solver: ill-conditioned optima found, constraints kept, never worse than the starts.

Draws of the additive law are written by hand (no NUTS): exponents gamma near 0.3 and domain shares spread over
orders of magnitude put each draw's optimum at weights from about 0.5 down to 1e-3, where h_j^gamma curves like
h_j^(gamma - 2) and a single Euclidean step length per row is far too short for the large weights. The reference
optimum of every draw is scipy's SLSQP (through :func:`bayesmix.decide.solver.solve`) from several starts, a
method independent of the batched solver.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesmix.decide import MixtureDecision, Risk, build_constraints
from bayesmix.decide.search import minimise_draws, per_draw_optima
from bayesmix.decide.solver import project_scaled, solve
from bayesmix.laws import get_law
from bayesmix.laws.additive import from_paper_parameters
from bayesmix.posterior import Posterior

DOMAINS = ("a", "b", "c", "d", "e")
K = len(DOMAINS)
N0, D0 = 1e8, 2e9
N, D = 1e9, 2e10
ITERS = 200  # per_draw_optima's default
S = 6


def _posterior(gamma: float = 0.3, seed: int = 0) -> Posterior:
    """S draws of one target; the weights w_j fall by ~x3 per domain, the exponents vary around ``gamma``."""
    rng = np.random.default_rng(seed)
    base = np.array([1.0, 0.3, 0.08, 0.02, 0.005])
    draws = []
    for _ in range(S):
        w = base * np.exp(rng.normal(0, 0.3, K))
        g = gamma * np.exp(rng.normal(0, 0.15, K))
        draws.append(
            from_paper_parameters(E=[1.8], A=[0.4], alpha=[0.3], B=[0.4], beta=[0.3], w=w[None], gamma=g[None])
        )
    stacked = {k: np.stack([d[k] for d in draws]) for k in draws[0]}
    return Posterior(get_law("additive"), DOMAINS, ("t",), stacked, N0, D0, (np.inf, np.inf), np.zeros(1))


def _problem(gamma: float = 0.3) -> MixtureDecision:
    return MixtureDecision(_posterior(gamma), np.ones(1), swept=np.full((1, K), 1.0 / K), bias_seed=None)


def _run(prob, C, H0, rows, method="both", iters=ITERS):
    """batch_minimise on draws ``rows`` (one per row of H0), through the helper per_draw_optima uses."""
    return minimise_draws(prob, C, N, D, np.asarray(rows), H0, iters=iters, method=method)


def _reference(prob, C, corners: bool = False, seed: int = 1) -> np.ndarray:
    """(S,) each draw's optimum by SLSQP from uniform and two random starts (and every corner), the lowest kept.

    With gamma < 1 the mixture term 1 / sum_j w_j (K h_j)^gamma_j is convex in h (1/x of a concave sum), so each
    draw has one optimum and a few starts only guard against SLSQP stopping early; with gamma > 1 the optima sit
    at vertices and the corners are the starts that matter.
    """
    rng = np.random.default_rng(seed)
    starts = [np.full(K, 1.0 / K)] + list(rng.dirichlet(np.ones(K), 2)) + (list(np.eye(K)) if corners else [])
    out = []
    for s in range(S):
        one = MixtureDecision(prob.posterior.take([s]), np.ones(1), swept=prob.swept, bias_seed=None)
        f = one.risk_fn(Risk("mean"), N, D)
        out.append(min(solve(f, C, C.project(h0), maxiter=1000).value for h0 in starts))
    return np.array(out)


def _starts(C, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two starts per draw (uniform and a random point), rows [draws..., draws...]."""
    rng = np.random.default_rng(seed)
    H0 = np.vstack(
        [np.tile(C.project(np.full(K, 1.0 / K)), (S, 1)), [C.project(x) for x in rng.dirichlet(np.ones(K), S)]]
    )
    return H0, np.concatenate([np.arange(S), np.arange(S)])


def _best_of_two(F):
    return np.minimum(F[:S], F[S:])


@pytest.fixture(scope="module")
def prob():
    return _problem()


CASES = {
    "simplex": {},
    "caps and floors": {"caps": {"a": 0.3}, "floors": {"e": 0.02}},
    "tv ball": {"baseline": np.full(K, 1.0 / K), "max_tv": 0.2},
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, prob):
    C = build_constraints(DOMAINS, D, **CASES[request.param])
    H0, rows = _starts(C)
    methods = ("both", "euclidean") if request.param == "simplex" else ("both",)  # the contrast needs one case
    out = {m: _run(prob, C, H0, rows, method=m) for m in methods}
    return request.param, C, H0, rows, out, _reference(prob, C)


def test_reaches_the_slsqp_optimum_where_plain_projected_gradient_stalls(case):
    name, C, H0, rows, out, ref = case
    new = _best_of_two(out["both"][1])
    assert np.all(new <= ref + 1e-9), f"{name}: worse than SLSQP by {np.max(new - ref):.3g}"
    if name == "simplex":  # the ill-conditioning the scaled method exists for
        plain = _best_of_two(out["euclidean"][1])
        assert np.max(plain - ref) > 1e-7, "the problem is too easy: plain projected gradient solves it too"


def test_constraints_are_honoured(case):
    name, C, H0, rows, out, ref = case
    X = out["both"][0]
    for x in X:
        assert C.violations(x, tol=1e-12) == [], f"{name}: {C.violations(x, tol=1e-12)}"
    if name == "caps and floors":  # both bind at the optimum (a wants ~0.5, e ~1e-3)
        assert np.allclose(X[:, 0], 0.3, atol=1e-9) and np.allclose(X[:, 4], 0.02, atol=1e-9)
    if name == "tv ball":
        assert np.allclose([C.tv(x) for x in X], 0.2, atol=1e-9)


def test_never_worse_than_the_starts(case, prob):
    name, C, H0, rows, out, ref = case
    at_start = prob.objective_draws(H0, N, D)[rows, np.arange(len(rows))]
    for m, (X, F, PG) in out.items():
        assert np.all(F <= at_start + 1e-12 * np.abs(at_start)), f"{name}, {m}: a row ended above its start"
        assert np.allclose(F, prob.objective_draws(X, N, D)[rows, np.arange(len(rows))], rtol=1e-12)


def test_per_draw_optima_never_worse_than_the_recommendation(prob):
    C = build_constraints(DOMAINS, D, caps={"a": 0.3})
    h_rec = C.project(np.full(K, 1.0 / K))
    L = prob.objective_draws(h_rec[None], N, D)[:, 0]
    cands = np.array([C.project(x) for x in np.vstack([np.full((1, K), 1.0 / K), np.eye(K)])])
    opt, regret, base_regret, pg = per_draw_optima(
        prob, C, N, D, np.arange(S), h_rec, np.column_stack([L, L]), cands, prob.objective_draws(cands, N, D)
    )
    assert np.all(regret > 0) and base_regret is None
    assert np.allclose(L - regret, prob.objective_draws(opt, N, D)[np.arange(S), np.arange(S)], rtol=1e-12)
    assert all(C.violations(x, tol=1e-12) == [] for x in opt)
    assert np.all(L - regret <= _reference(prob, C) + 1e-9)


def test_convex_mixture_term_vertex_optimum():
    """gamma > 1: the mixture term is convex in h, the optimum sits at a vertex; the solver gets there from inside."""
    prob = _problem(gamma=1.6)
    C = build_constraints(DOMAINS, D)
    H0, rows = _starts(C)
    X, F, _ = _run(prob, C, H0, rows)
    at_start = prob.objective_draws(H0, N, D)[rows, np.arange(len(rows))]
    assert np.all(F <= at_start)
    assert np.all(_best_of_two(F) <= _reference(prob, C, corners=True) + 1e-9)


def test_project_scaled():
    """a = 1: the Euclidean projection; weights above the floors proportional to a: the KL projection."""
    rng = np.random.default_rng(3)
    proj = jax.jit(project_scaled, static_argnames=("use_tv",))
    for tv in (False, True):
        C = build_constraints(
            DOMAINS,
            D,
            floors={"b": 0.05},
            caps={"a": 0.35, "c": 0.2},
            baseline=np.full(K, 1.0 / K) if tv else None,
            max_tv=0.15 if tv else None,
        )
        lo, hi = C.lower_internal, C.upper
        b = C.baseline if tv else np.full(K, 1.0 / K)
        for _ in range(20):
            z = C.project(rng.dirichlet(np.ones(K))) + rng.normal(0, 0.2, K)
            h = np.asarray(proj(jnp.asarray(z), jnp.ones(K), lo, hi, b, float(C.max_tv or 0), tv))
            assert np.abs(h - C.project(z)).max() < 1e-12
            y = rng.dirichlet(np.ones(K) * 0.3) * rng.uniform(0.5, 2) + 1e-9
            h = np.asarray(proj(jnp.asarray(lo + y), jnp.asarray(y), lo, hi, b, float(C.max_tv or 0), tv))
            assert C.violations(h, tol=1e-12) == []
            if not tv:  # h_j = lo_j + min(hi_j - lo_j, c y_j), c fixed by the sum
                c = np.median((h - lo)[h < hi - 1e-12] / y[h < hi - 1e-12])
                assert np.allclose(h, lo + np.minimum(hi - lo, c * y), atol=1e-12)
