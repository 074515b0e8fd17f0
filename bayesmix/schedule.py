"""The checkpoint observation model: what a mid-schedule checkpoint adds to a law's final loss.

Every law describes the final loss of a run trained to D tokens, with its
learning-rate schedule run to the end. A sweep's rows are mostly checkpoints
along a longer schedule: at D_t < D_end the learning rate has not decayed yet,
so the loss sits above the law's curve at D_t, and more so early in the run.
bayesmix models the log loss at checkpoint t of a run whose schedule ends at
D_end as

    log y = log L(h, N, D_t) + g_target(f) + u_run + s_run * x + eps,

with f = D_t / D_end and x = log f (both 1 and 0 at the end of the run):

- ``g(f, N) = (N/N0)^rho sum_i d_i phi_i(1 - f)``, ``d_i >= 0``: the schedule term. The
  ``phi_i`` are the cumulative Bernstein polynomials of degree 3
  (``phi_i(u) = P(Binomial(3, u) >= i)``), each rising from 0 at u = 0 to 1
  at u = 1, so g is smooth, zero at the end of the run and never increasing
  along it, for any ``d >= 0``: the family holds a linear decay
  (``1 - f^3``), the smoothstep that a cosine schedule's annealing gap
  follows, and late drops like a WSD schedule's (``(1 - f)^3`` mirrored).
  One curve per target, shared by every run, whose size scales with the
  model as ``(N/N0)^rho`` (measured on SlimPajama: the gap at 10% of a run
  grows from ~1% at 122M to 3-9% at 1.2B). See docs/checkpoints.md for the
  choice against schedule-aware laws that need the learning rate itself.
- ``u_run`` and ``s_run``: a run's own offset and slope in log tokens,
  integrated out in closed form (:func:`bayesmix.model.group_loglik`): the
  checkpoints of one run share its seed and data order, so their residuals
  are smooth along the curve, not independent.
"""

from __future__ import annotations

import numpy as np

from .laws.base import SCHEDULE_BASIS, Param
from .priors import Prior

BASIS = SCHEDULE_BASIS

SCHEDULE_PARAMS: dict[str, Param] = {
    "schedule": Param(
        ("target", "basis"),
        Prior(
            "HalfNormal",
            {"scale": 0.05},
            "mid-schedule checkpoints sit a few % above the final-loss curve (SlimPajama: up to ~10% at 10% of "
            "the run); each of the three pieces well under 10%",
        ),
        "schedule term: the log loss a checkpoint carries above the final-loss curve, per basis function",
    ),
    "schedule_size": Param(
        ("target",),
        Prior(
            "Normal",
            {"loc": 0.0, "scale": 1.0},
            "the gap may grow or shrink with model size (SlimPajama: it grows, ~N^0.5 from 0.7B to 1.2B); "
            "no sign assumed",
        ),
        "schedule term's exponent in model size: the term scales as (N/N0)^schedule_size",
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


def basis(fraction) -> np.ndarray:
    """(n, 3) the schedule basis at fractions ``D_t / D_end`` (zero at 1; 1 - f clipped to [0, 1])."""
    u = np.clip(1.0 - np.asarray(fraction, dtype=float), 0.0, 1.0)[..., None]
    f = 1.0 - u
    return np.concatenate([1.0 - f**3, 3 * u**2 - 2 * u**3, u**3], axis=-1)


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


def describe(schedule_draws: np.ndarray, targets, earliest: float) -> str:
    """One line on the fitted term: the gap at the earliest checkpoint per target at the reference size N0
    (posterior median, 90% interval).

    A target's term is "supported" when the 5% quantile of its gap is at
    least half the median: a posterior resting against 0, as the half-normal
    prior leaves it where the data show no gap, has a 5% quantile near 0.
    """
    g = np.einsum("stk,k->st", np.asarray(schedule_draws), basis([earliest])[0])  # (S, T)
    lo, med, hi = np.quantile(g, [0.05, 0.5, 0.95], axis=0)
    supported = lo >= 0.5 * med
    parts = [f"{t} {100 * m:.2g}% [{100 * a:.2g}, {100 * b:.2g}]" for t, m, a, b in zip(targets, med, lo, hi)]
    text = (
        f"schedule term at {earliest:.0%} of a run (log loss above the final-loss curve, median [90%]): "
        + ", ".join(parts)
    )
    absent = [t for t, s in zip(targets, supported) if not s]
    if absent:
        text += (
            f"; not supported by the data for {', '.join(absent)} (the posterior rests against 0: "
            "their checkpoints sit on the final-loss curve)"
        )
    return text
