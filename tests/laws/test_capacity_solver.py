"""Tests for bayesmix.laws.capacity_solver (x*(h, N) of the capacity-competition law).

Every reference value comes from code that does not share the solver's path:
scipy's brentq on the budget equation (numpy, float64) and SLSQP on the
original constrained problem (which checks the KKT formula itself).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.optimize import brentq, minimize
from scipy.special import logsumexp

from bayesmix.laws.capacity_solver import (
    capacity_allocation,
    log_capacity_allocation,
    solve_log_lambda,
)


@pytest.fixture(autouse=True, scope="module")
def _x64():
    """float64 for this module only; restore the previous setting afterwards."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


# ---------------------------------------------------------------------------
# Independent references (numpy / scipy, float64)
# ---------------------------------------------------------------------------


def ref_solve(h, b, c, H, N):
    """x*, u* by brentq on log(sum_i x_i(u)) = log(B), u = log(lambda). Needs N > H."""
    h, b, c = (np.asarray(v, float) for v in (h, b, c))
    K = h.size
    B = N + (K - 1) * H
    assert N > H and np.any(h > 0)
    act = h > 0
    a = np.where(act, np.log(np.where(act, h, 1.0)) + np.log(b) + np.log(c), -np.inf)

    def log_x(u):
        return np.where(act, np.maximum(np.log(H), (a - u) / (1 + b)), np.log(H))

    def g(u):
        return logsumexp(log_x(u)) - np.log(B)

    lo, hi = -1.0, 1.0
    while g(lo) < 0:
        lo *= 2
    while g(hi) > 0:
        hi *= 2
    u = brentq(g, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=1000)
    return np.exp(log_x(u)), u


def ref_slsqp(h, b, c, H, N):
    """x* by SLSQP on the original problem (no KKT formula), in units of the budget."""
    h, b, c = (np.asarray(v, float) for v in (h, b, c))
    K = h.size
    B = N + (K - 1) * H
    scale = np.sum(h * c * (B / K) ** (-b))

    def obj(y):
        return np.sum(h * c * (B * y) ** (-b)) / scale

    def jac(y):
        return -h * c * b * B * (B * y) ** (-b - 1) / scale

    res = minimize(
        obj,
        np.full(K, 1.0 / K),
        jac=jac,
        method="SLSQP",
        bounds=[(H / B, 1.0)] * K,
        constraints=[{"type": "eq", "fun": lambda y: np.sum(y) - 1.0, "jac": lambda y: np.ones(K)}],
        options={"ftol": 1e-15, "maxiter": 2000},
    )
    assert res.success, res.message
    return B * res.x


def naive_linear_bisection(h, b, c, H, N, n_iter=100):
    """The trap in the public reference code: bisection on lambda in [1e-30, 1e30]."""
    h, b, c = (np.asarray(v, float) for v in (h, b, c))
    K = h.size
    B = N + (K - 1) * H
    lo, hi = 1e-30, 1e30
    for _ in range(n_iter):
        lam = 0.5 * (lo + hi)
        x = np.maximum(H, (h * b * c / lam) ** (1 / (b + 1)))
        if x.sum() > B:
            lo = lam
        else:
            hi = lam
    lam = 0.5 * (lo + hi)
    return np.maximum(H, (h * b * c / lam) ** (1 / (b + 1))), lam


def random_case(rng, K):
    b = rng.uniform(0.05, 3.0, K)
    c = np.exp(rng.uniform(np.log(1e-2), np.log(1e3), K))
    H = rng.uniform(1e-3, 10.0)
    N = np.exp(rng.uniform(np.log(1.0), np.log(1e6)))
    while N <= H:
        N = np.exp(rng.uniform(np.log(1.0), np.log(1e6)))
    h = rng.dirichlet(np.full(K, 0.5))
    h[rng.random(K) < 0.25] = 0.0
    if h.sum() == 0:
        h[rng.integers(K)] = 1.0
    return h / h.sum(), b, c, H, N


_batched = jax.jit(jax.vmap(capacity_allocation, in_axes=(0, 0, 0, 0, 0)))

# ---------------------------------------------------------------------------
# 1. Accuracy against independent solvers
# ---------------------------------------------------------------------------


def test_matches_brentq_on_200_random_cases():
    rng = np.random.default_rng(20260601)
    worst_x, worst_budget, n_zero = 0.0, 0.0, 0
    for K in (2, 3, 7, 17):
        cases = [random_case(rng, K) for _ in range(50)]
        h, b, c, H, N = (np.array(v) for v in zip(*cases))
        n_zero += int(np.sum(h == 0))
        x = np.asarray(_batched(h, b, c, H, N))
        for i in range(len(cases)):
            x_ref, _ = ref_solve(h[i], b[i], c[i], H[i], N[i])
            worst_x = max(worst_x, np.max(np.abs(x[i] - x_ref) / x_ref))
            budget = N[i] + (K - 1) * H[i]
            worst_budget = max(worst_budget, abs(x[i].sum() - budget) / budget)
            assert np.all(x[i] >= H[i] * (1 - 1e-12))
            assert np.allclose(x[i][h[i] == 0], H[i], rtol=1e-12)
    print(f"max rel err vs brentq: {worst_x:.3g}; budget: {worst_budget:.3g}")
    assert n_zero > 0  # the cases did include exact zeros
    assert worst_x < 1e-6
    assert worst_budget < 1e-8


@pytest.mark.parametrize(
    "h, b, c, H, N",
    [
        ([0.2, 0.3, 0.5], [0.3, 0.6, 1.2], [2.0, 5.0, 1.0], 1.0, 100.0),
        ([0.6, 0.0, 0.4], [0.5, 0.5, 0.2], [1.0, 1.0, 3.0], 0.5, 50.0),
        ([0.01, 0.49, 0.5, 0.0], [1.5, 0.2, 0.4, 0.9], [10.0, 0.5, 2.0, 1.0], 2.0, 300.0),
        ([0.05, 0.95], [2.0, 0.1], [0.1, 10.0], 1.0, 20.0),  # first domain at the floor
    ],
)
def test_kkt_solution_matches_slsqp_on_original_problem(h, b, c, H, N):
    x = np.asarray(capacity_allocation(jnp.array(h), jnp.array(b), jnp.array(c), H, N))
    x_slsqp = ref_slsqp(h, b, c, H, N)
    np.testing.assert_allclose(x, x_slsqp, rtol=2e-4)
    obj = lambda z: np.sum(np.array(h) * np.array(c) * z ** (-np.array(b)))  # noqa: E731
    assert obj(x) <= obj(x_slsqp) * (1 + 1e-9)  # ours is at least as good


# ---------------------------------------------------------------------------
# 2. The tiny- and huge-multiplier regimes (the reference code's trap)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, h, b, c, H, N, check",
    [
        # lambda* ~ 4e-4: below the ~0.8 resolution of linear bisection over [1e-30, 1e30].
        ("small", [0.3, 0.7], [0.4, 0.6], [5.0, 10.0], 1.0, 500.0, lambda u: -12 < u < np.log(0.5)),
        # lambda* < 1e-30: outside the reference interval altogether.
        ("tiny", [0.3, 0.3, 0.4], [4.0, 5.0, 3.0], [1e3, 500.0, 1e3], 1.0, 1e9, lambda u: u < np.log(1e-30)),
        ("tiny2", [0.5, 0.5], [6.0, 2.0], [1e3, 1e2], 1e-3, 1e12, lambda u: u < np.log(1e-33)),
        # lambda* > 1e30: tiny models with a huge c.
        ("huge", [0.5, 0.5], [3.0, 2.0], [1e15, 1e14], 1e-7, 1e-5, lambda u: u > np.log(1e30)),
    ],
)
def test_extreme_multiplier_regimes_vs_naive_bisection(name, h, b, c, H, N, check):
    u = float(solve_log_lambda(jnp.array(h), jnp.array(b), jnp.array(c), H, N))
    x = np.asarray(capacity_allocation(jnp.array(h), jnp.array(b), jnp.array(c), H, N))
    x_ref, u_ref = ref_solve(h, b, c, H, N)
    assert check(u_ref), f"{name}: test parameters do not reach the intended regime (u*={u_ref})"
    assert abs(u - u_ref) <= 1e-10 * (1 + abs(u_ref))
    np.testing.assert_allclose(x, x_ref, rtol=1e-9)
    budget = N + (len(h) - 1) * H
    assert abs(x.sum() - budget) / budget < 1e-10

    # The linear-scale bisection is wrong here: its x* misses the budget badly
    # and its capacity term differs from the truth.
    x_naive, lam_naive = naive_linear_bisection(h, b, c, H, N)
    assert np.max(np.abs(x_naive - x_ref) / x_ref) > 0.1
    assert abs(x_naive.sum() - budget) / budget > 0.1
    term = lambda z: np.sum(np.array(c) * z ** (-np.array(b)))  # noqa: E731
    assert abs(term(x_naive) - term(x_ref)) / term(x_ref) > 0.1


# ---------------------------------------------------------------------------
# 3. Gradients (implicit function theorem), forward and reverse
# ---------------------------------------------------------------------------

GRAD_POINTS = [
    # all domains above the floor
    (np.array([0.2, 0.3, 0.5]), np.array([0.3, 0.6, 1.2]), np.array([2.0, 5.0, 1.0]), 1.0, 100.0),
    # one exact zero (floor), one small weight at the floor with h > 0
    (np.array([0.6, 0.0, 0.38, 0.02]), np.array([0.5, 0.5, 0.2, 2.0]), np.array([1.0, 1.0, 3.0, 0.01]), 0.5, 50.0),
    # K = 7, large N, tiny multiplier
    (np.array([0.1, 0.2, 0.0, 0.3, 0.15, 0.05, 0.2]), np.linspace(0.2, 4.0, 7), np.geomspace(1e-1, 1e3, 7), 1.0, 1e9),
]


def _fd(f, v, rel=1e-5):
    """Central differences of a numpy function of a float or array, relative step."""
    v = np.array(v, float)
    out = []
    for i in range(v.size):
        step = rel * max(abs(v.flat[i]), 1e-3)
        vp, vm = v.copy(), v.copy()
        vp.flat[i] += step
        vm.flat[i] -= step
        out.append((f(vp) - f(vm)) / (2 * step))
    return np.array(out)


@pytest.mark.parametrize("point", range(len(GRAD_POINTS)))
def test_gradients_check_grads_and_scipy_finite_differences(point):
    h, b, c, H, N = GRAD_POINTS[point]
    x_ref, u_ref = ref_solve(h, b, c, H, N)
    assert x_ref[0] > H * (1 + 1e-6)
    np.testing.assert_allclose(solve_log_lambda(h, b, c, H, N), u_ref, rtol=1e-12)
    if point == 1:
        assert np.isclose(x_ref, H, rtol=1e-12).sum() == 2  # two domains at the floor

    # Differentiate w.r.t. the positive weights only. An exact zero stays fixed:
    # x_i is flat in h_i below the lift-off weight lambda* H^(b+1) / (b c) (tiny
    # when lambda* is) and ~h_i^(1/(b+1)) above it, so finite differences across
    # h_i = 0 are meaningless. c, H, N enter through their logs (relative steps).
    pos = np.flatnonzero(h > 0)

    @jax.jit
    def f(b, log_c, log_H, log_N, h_pos):
        hh = jnp.asarray(h).at[pos].set(h_pos)
        c_, H_, N_ = jnp.exp(log_c), jnp.exp(log_H), jnp.exp(log_N)
        lx = log_capacity_allocation(hh, b, c_, H_, N_)
        loss = jnp.sum(hh * c_ * jnp.exp(-b * lx))
        # u* read back from the first domain (above the floor at every point):
        # log x_0 = (log h_0 + log b_0 + log c_0 - u*) / (b_0 + 1); one solve only.
        u = jnp.log(hh[0] * b[0]) + log_c[0] - (1 + b[0]) * lx[0]
        return lx, loss, u

    args = (jnp.array(b), jnp.log(jnp.array(c)), jnp.log(H), jnp.log(N), jnp.array(h[pos]))
    # 1) jax.test_util.check_grads, forward and reverse mode
    check_grads(f, args, order=1, modes=("fwd", "rev"), eps=1e-7, rtol=1e-5, atol=1e-7)

    # 2) finite, non-zero (not a bisection's silent zero). Reverse-mode rows by
    # reusing one vjp (cheaper to compile than jacrev).
    K = len(h)
    _, vjp_fn = jax.vjp(f, *args)
    zero = jnp.zeros(K)
    rows = [vjp_fn((zero.at[k].set(1.0), 0.0, 0.0)) for k in range(K)]
    J_lx = [np.stack([np.asarray(r[a]) for r in rows]) for a in range(5)]  # (K, ...) per arg
    J_loss = vjp_fn((zero, 1.0, 0.0))
    J_u = vjp_fn((zero, 0.0, 1.0))
    for name, jl, jx in zip(("b", "log c", "log H", "log N", "h"), J_loss, J_lx):
        assert np.all(np.isfinite(jl)) and np.all(np.isfinite(jx)), name
        assert np.abs(jl).max() > 0, name
        assert np.abs(jx).max() > 0, name
    # a floor domain with h_i = 0 moves only with H: d log x_i / d log H = 1
    for i in np.flatnonzero(h == 0):
        np.testing.assert_allclose(J_lx[2][i], 1.0, rtol=1e-12)
        np.testing.assert_allclose(J_lx[3][i], 0.0, atol=1e-14)

    # 3) against central finite differences of the scipy (brentq) solution
    def loss_ref(b, c, H, N):
        x, _ = ref_solve(h, b, c, H, N)
        return np.sum(h * c * x ** (-b))

    L = loss_ref(b, c, H, N)
    grads = [np.asarray(J_loss[0]), np.asarray(J_loss[1]) / c, float(J_loss[2]) / H, float(J_loss[3]) / N]
    fd = [
        _fd(lambda v: loss_ref(v, c, H, N), b),
        _fd(lambda v: loss_ref(b, v, H, N), c),
        _fd(lambda v: loss_ref(b, c, float(v[0]), N), [H])[0],
        _fd(lambda v: loss_ref(b, c, H, float(v[0])), [N])[0],
    ]
    for name, gi, fi, p in zip("b c H N".split(), grads, fd, (b, c, H, N)):
        # FD noise of the scipy loss (~1e-14 relative, step 1e-5 relative) is
        # ~1e-9 |L| / |p|: allow 1e-7 |L| / |p| absolute on top of 1e-5 relative.
        assert np.all(np.abs(gi - fi) <= 1e-5 * np.abs(fi) + 1e-7 * abs(L) / np.abs(p)), (name, gi, fi)
    dx_dN = np.asarray(J_lx[3]) * x_ref / N
    dx_dN_fd = _fd(lambda v: ref_solve(h, b, c, H, float(v[0]))[0], [N])[0]
    np.testing.assert_allclose(dx_dN, dx_dN_fd, rtol=1e-5, atol=1e-12)
    du_dc_fd = _fd(lambda v: ref_solve(h, b, v, H, N)[1], c)
    np.testing.assert_allclose(np.asarray(J_u[1]) / c, du_dc_fd, rtol=1e-5, atol=1e-9)
    du_db_fd = _fd(lambda v: ref_solve(h, v, c, H, N)[1], b)
    np.testing.assert_allclose(np.asarray(J_u[0]), du_db_fd, rtol=1e-5, atol=1e-9)


def test_unrolled_bisection_gradient_is_zero_but_ours_is_not():
    """Documents why the solve is wrapped in a custom_jvp."""
    h, b, c, H, N = GRAD_POINTS[0]

    def bisect_x(N):
        a = jnp.log(h * b * c)
        B = N + 2 * H

        def body(_, lohi):
            lo, hi = lohi
            mid = 0.5 * (lo + hi)
            s = jnp.sum(jnp.exp(jnp.maximum(jnp.log(H), (a - mid) / (1 + b))))
            return jnp.where(s > B, mid, lo), jnp.where(s > B, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 200, body, (jnp.array(-100.0), jnp.array(100.0)))
        u = 0.5 * (lo + hi)
        return jnp.exp(jnp.maximum(jnp.log(H), (a - u) / (1 + b)))

    def naive_loss(N):  # only the u-path: x depends on N through the solve alone
        return jnp.sum(c * bisect_x(N) ** (-b))

    def our_loss(N):
        return jnp.sum(c * capacity_allocation(h, b, c, H, N) ** (-b))

    np.testing.assert_allclose(naive_loss(N), our_loss(N), rtol=1e-10)  # same value ...
    assert jax.grad(naive_loss)(N) == 0.0  # ... but a silently zero gradient
    g = jax.grad(our_loss)(N)
    fd = _fd(lambda v: np.sum(c * ref_solve(h, b, c, H, float(v[0]))[0] ** (-b)), [N])[0]
    assert g < 0
    np.testing.assert_allclose(g, fd, rtol=1e-5)


# ---------------------------------------------------------------------------
# 4. Robustness: extreme parameters, degenerate cases, shapes, float32
# ---------------------------------------------------------------------------


def _extreme_grid():
    rows = []
    hs = [
        np.array([0.5, 0.3, 0.2]),
        np.array([0.7, 0.0, 0.3]),
        np.array([0.0, 1.0, 0.0]),  # one-hot
        np.array([1e-300, 0.5, 0.5]),
    ]
    for bv in (1e-4, 0.3, 50.0):
        for cv in (1e-10, 1.0, 1e10):
            for H in (1e-8, 1.0, 1e4):
                for N in (1e-3, 1.0, 1e12):
                    for k, h in enumerate(hs):
                        # mix the extreme with moderate values across domains
                        b = np.array([bv, 0.5, bv if k % 2 else 1.0])
                        c = np.array([cv, 1.0, 1.0 / cv if k % 2 else cv])
                        rows.append((h, b, c, H, N))
    rng = np.random.default_rng(7)
    for _ in range(400):  # random points in the extreme box
        K = 3
        h = rng.dirichlet(np.full(K, 0.3))
        h[rng.random(K) < 0.3] = 0.0
        if h.sum() == 0:
            h[0] = 1.0
        rows.append(
            (
                h / h.sum(),
                np.exp(rng.uniform(np.log(1e-4), np.log(50.0), K)),
                np.exp(rng.uniform(np.log(1e-10), np.log(1e10), K)),
                np.exp(rng.uniform(np.log(1e-8), np.log(1e4))),
                np.exp(rng.uniform(np.log(1e-3), np.log(1e12))),
            )
        )
    return tuple(np.array(v) for v in zip(*rows))


def _all_outputs(h, b, c, H, N):
    def one(h, b, c, H, N):
        lx = log_capacity_allocation(h, b, c, H, N)
        u = solve_log_lambda(h, b, c, H, N)
        jf = jax.jacfwd(log_capacity_allocation, argnums=(0, 1, 2, 3, 4))(h, b, c, H, N)
        jr = jax.jacrev(log_capacity_allocation, argnums=(0, 1, 2, 3, 4))(h, b, c, H, N)
        gu = jax.grad(solve_log_lambda, argnums=(0, 1, 2, 3, 4))(h, b, c, H, N)
        return lx, u, jf, jr, gu

    return jax.jit(jax.vmap(one))(h, b, c, H, N)


def test_extreme_grid_is_finite_under_jit_and_vmap():
    h, b, c, H, N = _extreme_grid()
    lx, u, jf, jr, gu = _all_outputs(*(jnp.asarray(v) for v in (h, b, c, H, N)))
    for leaf in jax.tree_util.tree_leaves((lx, u, jf, jr, gu)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # fwd and rev agree
    # (scale: per problem, the larger of |d log x*| and |d u*|; the two terms of
    # the chain rule can cancel, e.g. d log x_j / d c_j = 0 for a lone active
    # domain is (1/c_j - du/dc_j)/(b_j+1) with both terms ~1/c_j.)
    for a, r, g in zip(jf, jr, gu):
        a, r, g = np.asarray(a), np.asarray(r), np.asarray(g)
        n = len(a)
        scale = np.maximum(np.abs(a).reshape(n, -1).max(-1), np.abs(g).reshape(n, -1).max(-1))
        err = np.abs(a - r).reshape(n, -1).max(-1)
        assert np.all(err <= 1e-8 * scale + 1e-10)
    x = np.exp(np.asarray(lx))
    K = h.shape[-1]
    budget = N + (K - 1) * H
    ok = N > H
    assert np.all(x >= H[:, None] * (1 - 1e-12))
    np.testing.assert_allclose(x[ok].sum(-1), budget[ok], rtol=1e-9)
    np.testing.assert_allclose(x[~ok], np.broadcast_to(H[~ok, None], x[~ok].shape), rtol=1e-12)
    # a sample of the extreme rows against brentq
    idx = np.flatnonzero(ok)[::7]
    for i in idx:
        x_ref, _ = ref_solve(h[i], b[i], c[i], H[i], N[i])
        np.testing.assert_allclose(x[i], x_ref, rtol=1e-8)


def test_degenerate_budget_and_zero_mixture():
    h = jnp.array([0.2, 0.5, 0.3])
    b = jnp.array([0.3, 0.5, 0.8])
    c = jnp.array([2.0, 3.0, 1.0])
    H = 2.0
    for N in (0.5, 2.0):  # N <= H: every domain at the floor
        x = capacity_allocation(h, b, c, H, N)
        np.testing.assert_allclose(x, H, rtol=1e-14)
        gN = jax.jacfwd(capacity_allocation, argnums=4)(h, b, c, H, N)
        gH = jax.jacrev(capacity_allocation, argnums=3)(h, b, c, H, N)
        np.testing.assert_allclose(gN, 0.0)
        np.testing.assert_allclose(gH, 1.0)
    # continuity as N -> H from above: the single largest domain gets x_j = N
    x = np.asarray(capacity_allocation(h, b, c, H, H * (1 + 1e-9)))
    np.testing.assert_allclose(x, H, rtol=2e-9)
    np.testing.assert_allclose(x.sum(), H * (1 + 1e-9) + 2 * H, rtol=1e-14)
    # no h > 0 at all (not a simplex point, but must stay finite): floor
    z = jnp.zeros(3)
    np.testing.assert_allclose(capacity_allocation(z, b, c, H, 100.0), H)
    g = jax.grad(lambda N: capacity_allocation(z, b, c, H, N).sum())(100.0)
    assert np.isfinite(g)
    # K = 1: x* = N
    np.testing.assert_allclose(capacity_allocation(jnp.ones(1), b[:1], c[:1], H, 10.0), [10.0])


def test_shapes_broadcasting_jit_vmap():
    rng = np.random.default_rng(3)
    M, K = 5, 4
    h = jnp.asarray(rng.dirichlet(np.ones(K), M))
    b = jnp.asarray(rng.uniform(0.2, 1.0, K))
    c = jnp.asarray(rng.uniform(0.5, 5.0, K))
    N = jnp.asarray(np.geomspace(10, 1e4, M))
    x = capacity_allocation(h, b, c, 1.0, N)
    assert x.shape == (M, K)
    for i in range(M):
        x_ref, _ = ref_solve(np.asarray(h[i]), np.asarray(b), np.asarray(c), 1.0, float(N[i]))
        np.testing.assert_allclose(x[i], x_ref, rtol=1e-10)
    shape = lambda f, *a: jax.eval_shape(f, *a).shape  # noqa: E731
    assert shape(solve_log_lambda, h, b, c, 1.0, N) == (M,)
    # one mixture at several sizes; several mixtures x several sizes; per-row H
    assert shape(capacity_allocation, h[0], b, c, 1.0, N) == (M, K)
    assert shape(capacity_allocation, h[:, None, :], b, c, 1.0, N[None, :]) == (M, M, K)
    assert shape(capacity_allocation, h, b, c, jnp.ones(M), 100.0) == (M, K)
    # per-row b (..., K) gives the same values
    bb = jnp.broadcast_to(b, (M, K))
    np.testing.assert_allclose(capacity_allocation(h, bb, c, 1.0, N), x, rtol=1e-14)
    # vmap of the value and of a reverse-mode gradient
    xv = jax.vmap(capacity_allocation, in_axes=(0, None, None, None, 0))(h, b, c, 1.0, N)
    np.testing.assert_allclose(xv, x, rtol=1e-14)
    gv = jax.vmap(jax.grad(lambda b, h, N: capacity_allocation(h, b, c, 1.0, N)[0]), in_axes=(None, 0, 0))(b, h, N)
    assert gv.shape == (M, K) and np.all(np.isfinite(gv)) and np.abs(gv).max() > 0


def test_float32_accuracy_and_finiteness():
    """float32: moderate cases accurate to ~1e-4, the extreme grid finite (value + grad)."""

    def one(h, b, c, H, N):
        def total(h, b, c, H, N):
            lx = log_capacity_allocation(h, b, c, H, N)
            return jnp.sum(lx), lx

        (_, lx), g = jax.value_and_grad(total, argnums=(0, 1, 2, 3, 4), has_aux=True)(h, b, c, H, N)
        return lx, g

    rng = np.random.default_rng(11)
    moderate = [random_case(rng, 3) for _ in range(50)]
    grid = _extreme_grid()
    h, b, c, H, N = (np.concatenate([np.array(m), g]).astype(np.float32) for m, g in zip(zip(*moderate), grid))
    with jax.enable_x64(False):
        lx, g = jax.jit(jax.vmap(one))(h, b, c, H, N)
    for leaf in jax.tree_util.tree_leaves((lx, g)):
        assert leaf.dtype == jnp.float32
        assert np.all(np.isfinite(np.asarray(leaf)))
    x = np.exp(np.asarray(lx, float))
    for i in range(len(moderate)):
        x_ref, _ = ref_solve(*(np.asarray(v[i], float) for v in (h, b, c, H, N)))
        np.testing.assert_allclose(x[i], x_ref, rtol=2e-4)
    ok = N > H
    np.testing.assert_allclose(x[ok].sum(-1), (N.astype(float) + 2 * H)[ok], rtol=1e-4)
    assert np.abs(np.asarray(g[1])).max() > 0


# ---------------------------------------------------------------------------
# 5. NUTS: gradients reach the sampler
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_nuts_posterior_of_b_concentrates():
    numpyro = pytest.importorskip("numpyro")
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    rng = np.random.default_rng(0)
    K, H = 3, 1.0
    b_true = np.array([0.3, 0.5, 0.8])
    c_true = np.array([2.0, 3.0, 1.5])
    E_true = np.array([1.5, 2.0, 1.0])
    h = rng.dirichlet(np.ones(K), 6)
    Ns = np.array([10.0, 50.0, 250.0, 1250.0])
    hh = np.repeat(h, len(Ns), axis=0)
    NN = np.tile(Ns, len(h))
    x = np.stack([ref_solve(hi, b_true, c_true, H, Ni)[0] for hi, Ni in zip(hh, NN)])
    sigma = 0.01
    y = c_true * x ** (-b_true) + E_true + sigma * rng.standard_normal(x.shape)

    prior_loc, prior_scale = np.log(0.5), 0.5

    def model(hh, NN, y=None):
        b = numpyro.sample("b", dist.LogNormal(prior_loc, prior_scale).expand([K]).to_event(1))
        c = numpyro.sample("c", dist.LogNormal(0.0, 1.0).expand([K]).to_event(1))
        E = numpyro.sample("E", dist.LogNormal(0.0, 1.0).expand([K]).to_event(1))
        xs = capacity_allocation(hh, b, c, H, NN)
        mu = c * xs ** (-b) + E
        numpyro.sample("y", dist.Normal(mu, sigma).to_event(2), obs=y)

    t0 = time.perf_counter()
    mcmc = MCMC(NUTS(model), num_warmup=200, num_samples=200, num_chains=1, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(1), jnp.asarray(hh), jnp.asarray(NN), jnp.asarray(y), extra_fields=("diverging",))
    elapsed = time.perf_counter() - t0
    post = mcmc.get_samples()
    b_draws = np.asarray(post["b"])
    assert np.all(np.isfinite(b_draws))
    prior_sd = np.sqrt((np.exp(prior_scale**2) - 1) * np.exp(2 * prior_loc + prior_scale**2))
    post_sd = b_draws.std(0)
    print(f"NUTS {elapsed:.1f}s; posterior sd of b {post_sd}, prior sd {prior_sd:.3f}")
    assert np.all(post_sd < 0.25 * prior_sd)
    np.testing.assert_allclose(b_draws.mean(0), b_true, atol=0.1)
    assert np.asarray(mcmc.get_extra_fields()["diverging"]).mean() < 0.05
