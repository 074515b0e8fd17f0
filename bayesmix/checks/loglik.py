"""Log densities of whole runs under a fit, vectorised over posterior draws.

Checkpoints of one run share its offset (``tau_run``), so the unit of every
score here is a run: the joint density of all its checkpoints and targets with
the offset integrated out (``bayesmix.model.group_loglik``). Beyond the fitted
range, :func:`heldout_loglik` also integrates out the law's extrapolation bias
(``Fit.extrapolation_sd`` per e-fold, as :mod:`bayesmix.posterior` draws it).
The law itself is evaluated by :class:`bayesmix.posterior.Posterior`; this
module only scores its residuals.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..data import RunTable
from ..design import observed_from_table
from ..model import group_loglik
from ..posterior import Posterior

_CHUNK = 256  # posterior draws per compiled call: bounds memory at (chunk, rows, targets)
_CACHE: dict[Any, Any] = {}


def clear_compiled() -> None:
    """Drop the compiled scoring functions (see :func:`bayesmix.clear_caches`)."""
    _CACHE.clear()


def log_mean_exp(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """log(mean(exp(a))) along ``axis``, computed stably."""
    a = np.asarray(a, dtype=float)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.mean(np.exp(a - m), axis=axis))


def far_beyond(fit, table: RunTable) -> np.ndarray:
    """(n,) e-folds of each row beyond the fit's largest model size plus beyond its largest token count.

    The same distance the posterior scales the extrapolation bias by
    (:meth:`bayesmix.posterior.Posterior.far`).
    """
    return Posterior.from_fit(fit).far(table.model_size, table.n_tokens)


def _residual_chunks(fit, table: RunTable, obs, max_draws: int | None):
    """(n, resid (_CHUNK, rows, T), sigma, tau, kappa (_CHUNK, T)) per chunk of draws; short chunks padded (one
    compile). Residuals are of each row as what it is: a checkpoint of its run (the schedule term removed)."""
    post = Posterior.from_fit(fit, max_draws)
    y = np.asarray(obs.y)
    for start in range(0, post.S, _CHUNK):
        part = post.take(slice(start, start + _CHUNK))
        n = part.S
        resid = y[None] - part.log_means(table.weights, table.model_size, table.n_tokens, table.run_tokens)
        sigma = part.draws["sigma"]
        tau = part.draws.get("tau_run", np.zeros_like(sigma))
        kappa = part.draws.get("kappa_run", np.zeros_like(sigma))
        early = part.draws.get("noise_early", np.zeros_like(sigma))
        if n < _CHUNK:
            pad = lambda a: np.concatenate([a, np.repeat(a[-1:], _CHUNK - n, 0)])  # noqa: E731
            resid, sigma, tau, kappa, early = pad(resid), pad(sigma), pad(tau), pad(kappa), pad(early)
        yield n, jnp.asarray(resid), jnp.asarray(sigma), jnp.asarray(tau), jnp.asarray(kappa), jnp.asarray(early)


def run_loglik(fit, table: RunTable | None = None, max_draws: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Log density of each run under each posterior draw, per target.

    Returns ``(ll, runs)``: ``ll`` is (S, R, T) -- the joint log density of
    all observed checkpoints of run r for target t, offset integrated out --
    and ``runs`` the R run labels. ``table`` defaults to the fitted table (the
    pointwise log-likelihood PSIS-LOO needs; sum over targets for a run's).
    No extrapolation term: this is the model's own likelihood.
    """
    table = fit.table if table is None else table
    obs, runs = _observed(fit, table)
    key = ("run", obs.y.shape, obs.run_slots.shape)
    fn = _CACHE.get(key)
    if fn is None:
        fn = _CACHE[key] = jax.jit(
            jax.vmap(lambda r, s, t, k, e, o: group_loglik(r, o, s, t, k, e), in_axes=(0, 0, 0, 0, 0, None))
        )
    out = [
        np.asarray(fn(resid, sigma, tau, kappa, early, obs))[:n]
        for n, resid, sigma, tau, kappa, early in _residual_chunks(fit, table, obs, max_draws)
    ]
    return np.concatenate(out, 0), np.asarray(runs)


def heldout_loglik(
    fit,
    table: RunTable,
    extrapolation_sd: float | Sequence[float] | np.ndarray | None = None,
    shared: bool = False,
    max_draws: int | None = None,
    grid: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictive log density of new runs, with run offset and extrapolation bias integrated out.

    The residual of row i (target t) is modelled as ``delta_t * far_i + u_run
    + eps``, with ``delta_t ~ N(0, sd_t^2)``, ``u ~ N(0, tau_run^2)``,
    ``eps ~ N(0, sigma^2)``. ``extrapolation_sd`` gives sd: a number for
    every target or one per target (default: the fit's, which is one per
    target). With ``shared=False`` each run gets its own delta (the density
    of that run alone: pointwise scores); with ``shared=True`` one delta per
    target is shared by all rows of the table (the joint density: rows beyond
    the fitted range share the law's bias).

    ``grid``: instead of one sd, K values to evaluate in one pass -- a
    sequence of K numbers (each applied to every target) or a (K, T) array.

    Returns ``(ll, labels)``: ll is (S, G, T) per draw, group and target --
    (K, S, G, T) with ``grid`` --; labels name the G groups (run labels, or
    ``["all"]`` when shared).
    """
    T = len(fit.targets)
    if grid is not None:
        if extrapolation_sd is not None:
            raise ValueError("heldout_loglik: give extrapolation_sd or grid, not both")
        g = np.asarray(grid, dtype=float)
        if g.ndim == 1:
            g = g[:, None]
        if g.ndim != 2 or g.shape[1] not in (1, T):
            raise ValueError(f"heldout_loglik: grid must be K values or a (K, {T}) array; got shape {np.shape(grid)}")
        sds = np.broadcast_to(g, (g.shape[0], T))
    else:
        sd = np.asarray(fit.extrapolation_sd if extrapolation_sd is None else extrapolation_sd, dtype=float)
        if sd.ndim > 1 or sd.size not in (1, T):
            raise ValueError(
                f"heldout_loglik: extrapolation_sd must be a number or one per target ({T}); got shape {sd.shape}"
            )
        sds = np.broadcast_to(sd.reshape(-1), (T,))[None, :]  # (1, T)
    if not np.all(np.isfinite(sds) & (sds >= 0)):
        raise ValueError("heldout_loglik: extrapolation_sd values must be non-negative numbers")
    obs, runs = _observed(fit, table)
    R = len(runs)
    group = np.zeros(R, dtype=np.int32) if shared else np.arange(R, dtype=np.int32)
    G = 1 if shared else R
    far = jnp.asarray(far_beyond(fit, table))
    key = ("heldout", obs.y.shape, R, G, sds.shape)
    fn = _CACHE.get(key)
    if fn is None:

        def one(resid, sigma, tau, kappa, early, o, far, group, sds):
            return jax.vmap(
                lambda s: _rank_one_loglik(
                    resid, o.mask, o.run, o.log_frac, R, far, group, G, sigma, tau, kappa, s, early
                )
            )(sds)

        fn = _CACHE[key] = jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, 0, None, None, None, None), out_axes=1))
    sds_j = jnp.asarray(np.ascontiguousarray(sds))
    group_j = jnp.asarray(group)
    out = [
        np.asarray(fn(resid, sigma, tau, kappa, early, obs, far, group_j, sds_j))[:, :n]
        for n, resid, sigma, tau, kappa, early in _residual_chunks(fit, table, obs, max_draws)
    ]
    labels = np.array(["all"]) if shared else np.asarray(runs)
    ll = np.concatenate(out, 1)
    return (ll if grid is not None else ll[0]), labels


def _observed(fit, table: RunTable):
    """The table as the fit's model sees it (unpadded), with each row's log fraction of its run."""
    obs, runs = observed_from_table(table, fit.targets, fit.N0, fit.D0, fit.sizes, pad=False, checkpoints=True)
    return obs, runs


def _rank_one_loglik(resid, mask, run, log_frac, R, far, group, G, sigma, tau, kappa, sd, early=None):
    """(G, T) log N(r_g; 0, A_g + sd^2 f_g f_g^T); sd is (T,).

    ``A_g`` is block-diagonal over runs, each block ``V + Z L Z^T``: the
    checkpoint noise ``V = diag(sigma^2 (1 + (early x)^2))`` and a run's
    offset and slope in ``x = log f`` (``Z = [1, x]``, ``L = diag(tau^2,
    kappa^2)``). Closed form: each block inverts by the Woodbury identity
    through a 2 x 2 matrix and the bias adds a rank-one term (matrix
    determinant lemma and Sherman-Morrison), so the cost is a few segment
    sums, whatever the number of rows.
    """
    x = log_frac[:, None] * mask
    var = sigma**2 * (1.0 + (0.0 if early is None else (early * x) ** 2))  # (n, T)
    w = mask / var
    f = far[:, None] * mask
    r = resid * mask
    seg = lambda a: jax.ops.segment_sum(a, run, R)  # noqa: E731  (rows -> runs)
    n, nw, sx, sxx = seg(mask), seg(w), seg(w * x), seg(w * x * x)
    tau2, kap2 = tau**2, kappa**2
    m11, m12 = 1.0 + tau2 * nw, tau2 * sx
    m21, m22 = kap2 * sx, 1.0 + kap2 * sxx
    det = m11 * m22 - m12 * m21

    def quad(ab, a1, ax, b1, bx):
        """a^T A^-1 b per run from sum(w a b), Z^T W a and Z^T W b."""
        l1, l2 = tau2 * b1, kap2 * bx
        c1, c2 = (m22 * l1 - m12 * l2) / det, (-m21 * l1 + m11 * l2) / det
        return ab - (a1 * c1 + ax * c2)

    s_r, s_xr, s_f, s_xf = seg(w * r), seg(w * x * r), seg(w * f), seg(w * x * f)
    to_group = lambda a: jax.ops.segment_sum(a, group, G)  # noqa: E731  (runs -> groups)
    q_rr = to_group(quad(seg(w * r * r), s_r, s_xr, s_r, s_xr))
    q_fr = to_group(quad(seg(w * f * r), s_f, s_xf, s_r, s_xr))
    q_ff = to_group(quad(seg(w * f * f), s_f, s_xf, s_f, s_xf))
    logdet_a = to_group(seg(mask * jnp.log(var)) + jnp.log(det))
    m = to_group(n)
    k = 1.0 + sd**2 * q_ff
    quad_all = q_rr - sd**2 * q_fr**2 / k
    return -0.5 * (quad_all + logdet_a + jnp.log(k) + m * math.log(2 * math.pi))
