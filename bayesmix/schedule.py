"""The checkpoint observation model: how a run's checkpoints relate to the law's final loss.

Every law describes the final loss of a run trained to D tokens, with its
learning-rate schedule run to the end. A sweep's rows are mostly checkpoints
along such runs. bayesmix models the log loss at checkpoint t of a run whose
schedule ends at D_end as

    log y = log L(h, N, D_end) + g_target(f, N) + u_run + s_run * x + eps,

with f = D_t / D_end and x = log f (1 and 0 at the end of the run):

- ``L(h, N, D_end)``: the law, at the run's end. Within a run, the law's own
  token term and the schedule's annealing gap both fall with f and cannot be
  told apart (measured on SlimPajama: asking the law to follow the curve at
  D_t drove the token exponent to ~1 and doubled the error at 2.7B), so the
  law learns from each run's level at its end, estimated from all of its
  checkpoints, and the curve's shape is learned here.
- ``g(f, N) = (N/N0)^rho sum_i d_i phi_i(f)``: the run's curve above its
  final loss. The pieces ``phi`` are ``log(1/f)``, ``1/f - 1`` and
  ``1/f^2 - 1``, each scaled to 1 at f = 0.1: each is 0 at the end of the run
  and falls along it, so g is smooth and exactly zero at the end, from a
  gently curving loss (mostly ``log``) to a steep early drop (mostly
  ``1/f^2``). The weights ``d`` are not constrained to be positive: the
  pieces are nearly collinear, and a positivity bound put the posterior's
  mass against a wall where NUTS diverged (16 of 800 draws on the recovery
  sweep, 649 of 4000 on SlimPajama); unconstrained, g is linear in ``d`` and
  the curve is monotone where the data say so. One curve per target, shared
  by every run, whose size scales with the model as ``(N/N0)^rho``.
  docs/checkpoints.md says why this form and not a schedule-aware law.
- ``u_run`` and ``s_run``: a run's own offset and slope in log tokens,
  integrated out in closed form (:func:`bayesmix.model.group_loglik`): the
  checkpoints of one run share its seed and data order, so their residuals
  are smooth along the curve, not independent. Early checkpoints may scatter
  more (``noise_early``).
"""

from __future__ import annotations

import numpy as np

from .laws.base import Param
from .priors import Prior

SCHEDULE_PARAMS: dict[str, Param] = {
    "schedule": Param(
        ("target", "basis"),
        Prior(
            "Normal",
            {"loc": 0.0, "scale": 0.3},
            "a checkpoint at 10% of its run sits up to tens of % above the run's final loss (SlimPajama: 19-56%); "
            "each piece's share of that below ~0.6; no sign imposed (a bound at 0 made NUTS diverge)",
        ),
        "checkpoint curve: log loss above the run's final loss at 10% of the run, per basis function",
    ),
    "schedule_size": Param(
        ("target",),
        Prior(
            "Normal",
            {"loc": 0.0, "scale": 0.3},
            "the curve may steepen or flatten with model size, no sign assumed: x/÷ 1.35 per e-fold of N at one sd, "
            "twice SlimPajama's (-0.08 to -0.14 on its 8 targets); a sd of 1 put the curve 20x higher or lower at 22x "
            "the fitted size at one sd, which overflowed predictions from a sweep of one size",
        ),
        "checkpoint curve's exponent in model size: it scales as (N/N0)^schedule_size",
    ),
    "noise_early": Param(
        ("target",),
        Prior(
            "HalfNormal",
            {"scale": 1.0},
            "early checkpoints may scatter more than late ones (warm-up transients); the data say how much",
        ),
        "growth of the checkpoint noise towards the start of a run: sd = sigma sqrt(1 + (noise_early log f)^2)",
    ),
    "kappa_run": Param(
        ("target",),
        Prior("HalfNormal", {"scale": 0.01}, "runs' curves differ in slope by well under 1% per e-fold of tokens"),
        "run slope scale: sd of a run's own slope in log tokens (log scale per e-fold)",
    ),
}


# Each piece's value at f = 0.1, so that a coefficient is that piece's share of the curve at 10% of a run.
_AT_TENTH = np.array([np.log(10.0), 9.0, 99.0])


def basis(fraction) -> np.ndarray:
    """(n, 3) the checkpoint curve's pieces ``log(1/f)``, ``1/f - 1``, ``1/f^2 - 1`` at fractions ``D_t / D_end``,
    each 1 at f = 0.1 and 0 at f = 1 (fractions are clipped to [1e-6, 1])."""
    f = np.clip(np.asarray(fraction, dtype=float), 1e-6, 1.0)[..., None]
    return np.concatenate([-np.log(f), 1.0 / f - 1.0, 1.0 / f**2 - 1.0], axis=-1) / _AT_TENTH


def size_factor(rho, N, N0) -> np.ndarray:
    """(..., n, T) the term's scale with model size, (N/N0)^rho, for ``rho`` (..., T) and ``N`` (n,)."""
    log_n = np.log(np.asarray(N, dtype=float) / float(N0))
    rho = np.asarray(rho, dtype=float)
    return np.exp(rho[..., None, :] * log_n[:, None])


def log_offset(params, fraction, N, N0) -> np.ndarray:
    """(S, n, T) the schedule term in every draw of ``params`` (``schedule`` (S, T, 3), ``schedule_size`` (S, T))
    at rows of ``fraction`` and model size ``N``."""
    b = basis(np.atleast_1d(fraction))  # (n, 3)
    g = np.einsum("stk,nk->snt", np.asarray(params["schedule"]), b)
    if "schedule_size" in params:
        g = g * size_factor(params["schedule_size"], np.broadcast_to(N, (b.shape[0],)), N0)
    return g


def curve(fraction, schedule: np.ndarray, rho=None, N=None, N0=None) -> np.ndarray:
    """g at ``fraction`` (n,) for one draw's ``schedule`` (T, 3): (n, T); at the reference size N0 unless ``rho``
    (T,), ``N`` and ``N0`` are given."""
    g = basis(fraction) @ np.asarray(schedule).T
    if rho is not None:
        g = g * size_factor(rho, np.broadcast_to(N, (g.shape[0],)), N0)
    return g


def describe(schedule_draws: np.ndarray, targets, earliest: float, single: bool = False) -> str:
    """One line on the fitted curve: how far above its run's final loss the earliest checkpoint sits, per
    target at the reference size N0 (posterior median, 90% interval).

    A target's curve is "supported" when its 90% interval excludes 0: where
    checkpoints sit at their run's final loss, the curve's posterior is
    centred on 0. ``single``: every row sits at that one point of its run
    (:func:`bayesmix.reach.single_fraction`), so the curve there cannot be
    told from the law's level and its draws are the prior's.
    """
    g = np.einsum("stk,k->st", np.asarray(schedule_draws), basis([earliest])[0])  # (S, T)
    lo, med, hi = np.quantile(g, [0.05, 0.5, 0.95], axis=0)
    supported = (lo > 0) | (hi < 0)
    parts = [f"{t} {100 * m:.2g}% [{100 * a:.2g}, {100 * b:.2g}]" for t, m, a, b in zip(targets, med, lo, hi)]
    text = (
        f"schedule term at {earliest:.0%} of a run (log loss above the final-loss curve, median [90%]): "
        + ", ".join(parts)
    )
    if single:
        return text + (
            f"; not identified: every row sits at {earliest:.0%} of its run's schedule, so the curve there cannot "
            "be told from the law's level and these are its prior's draws. A final loss predicted from this fit "
            "carries that spread; the sweep's own point of a run does not"
        )
    absent = [t for t, s in zip(targets, supported) if not s]
    if absent:
        text += (
            f"; not supported by the data for {', '.join(absent)} (its 90% interval holds 0: "
            "their checkpoints sit at their run's final loss)"
        )
    return text
