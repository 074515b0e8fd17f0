"""The solvers of the mixture decision: over the feasible set, for the risk over all draws or for each draw alone.

- :func:`solve`: SLSQP with exact jax gradients from one start, then an exact
  projection onto the feasible set (never worse than the start);
- :func:`risk_value_grad`: the risk of the target loss over draws and its
  gradient in h, one compiled kernel per law;
- :func:`batch_minimise`: many single-draw problems at once (projected
  gradient in one compiled loop), for each draw's own optimum;
- :func:`projected_gradient_norm`: the first-order optimality check.

The law is evaluated through :func:`bayesmix.posterior.law_log_means`, the
one traceable form of the law over draws.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from ..posterior import law_log_means
from .constraints import MixtureConstraints, project_jax

__all__ = ["Solved", "batch_minimise", "projected_gradient_norm", "risk_value_grad", "solve"]


def _law_mean(law, p, h, N, D, N0, D0, own):
    """(S, M, T) the law's expected loss at mixtures h (M, K) and one scale (N, D), every draw."""
    M = h.shape[0]
    return jnp.exp(law_log_means(law, p, h, jnp.full((M,), N), jnp.full((M,), D), N0, D0, own))


@partial(jax.jit, static_argnames=("law",))
def risk_value_grad(law, p, h, N, D, N0, D0, own, mult, rw):
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
def batch_minimise(law, q, H0, mult, N, D, N0, D0, own, lo, hi, b, max_tv, use_tv, iters):
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


@dataclass
class Solved:
    """One optimiser run: the mixture, its objective value and how the optimiser ended."""

    h: np.ndarray
    value: float
    success: bool
    message: str
    iterations: int


def solve(f, C: MixtureConstraints, h0: np.ndarray, maxiter: int = 500) -> Solved:
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
    return Solved(h, v, bool(res.success), str(res.message), int(res.nit))


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
