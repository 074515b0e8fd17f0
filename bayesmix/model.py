"""The likelihood every law shares, and the NumPyro model built from a law.

Observation model (why each piece is there):

- Losses are positive and their errors relative, so we model log losses:
  ``log y[r, t] = log mu_t(h, N, D) + delta[size, t] + u[run, t] + eps``.
- ``eps ~ Normal(0, sigma_t)``: checkpoint-to-checkpoint noise.
- ``u[run, t] ~ Normal(0, tau_run_t)``: a run's own offset. Checkpoints of one
  run share their seed, data order and any misfit of the law at that mixture,
  so they are not independent; treating them as such makes intervals too
  narrow. The offset is integrated out in closed form (compound symmetry), so
  it costs no sampled dimension.
- No per-size offset: we tried one (a random misfit per fitted model size) and
  it absorbed the size trend itself, so the exponents stopped being learned
  (alpha drifted to 1-2 and the next-size error grew to 5-10%). Extrapolation
  uncertainty is added at prediction time instead (see ``Fit.predict_draws``).
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .laws.base import Inputs, Law, Param, dims_sizes
from .priors import Prior

NOISE_PARAMS: dict[str, Param] = {
    "sigma": Param(("target",), Prior("HalfNormal", {"scale": 0.05}, "checkpoint noise on log loss: well under 5%"), "checkpoint noise (log scale)"),
    "tau_run": Param(("target",), Prior("HalfNormal", {"scale": 0.02}, "run-to-run offsets of about 1% are typical"), "run offset scale (log scale)"),
}


class Observed(NamedTuple):
    """Everything the model conditions on (a pytree; shapes fix the compiled code)."""

    x: Inputs
    y: jnp.ndarray  # (n, T) log loss, 0 where missing
    mask: jnp.ndarray  # (n, T) 1.0 observed, 0.0 missing or padding
    run: jnp.ndarray  # (n,) int run slot
    run_slots: jnp.ndarray  # (R,) only its length is used


def all_params(law: Law, domains, targets) -> dict[str, Param]:
    """The law's parameters followed by the shared noise parameters."""
    spec = dict(law.params(domains, targets))
    clash = set(spec) & set(NOISE_PARAMS)
    if clash:
        raise ValueError(f"law {law.name!r} reuses reserved parameter names {sorted(clash)}")
    spec.update(NOISE_PARAMS)
    return spec


def param_shapes(spec: Mapping[str, Param], domains, targets) -> dict[str, tuple[int, ...]]:
    """Concrete shape of every parameter block; blocks with an empty dimension are dropped."""
    sizes = dims_sizes(domains, targets)
    shapes = {name: tuple(sizes[d] for d in p.dims) for name, p in spec.items()}
    return {name: s for name, s in shapes.items() if all(n > 0 for n in s)}


def group_loglik(resid: jnp.ndarray, obs: Observed, sigma: jnp.ndarray, tau_run: jnp.ndarray) -> jnp.ndarray:
    """(R, T) log density of each run's residuals with its offset integrated out.

    For a run with n observed residuals r, Cov = sigma^2 I + tau^2 11^T, whose
    inverse and determinant are closed-form; a run with n = 0 contributes 0.
    """
    R = obs.run_slots.shape[0]
    n = jax.ops.segment_sum(obs.mask, obs.run, R)
    s1 = jax.ops.segment_sum(resid * obs.mask, obs.run, R)
    s2 = jax.ops.segment_sum(resid**2 * obs.mask, obs.run, R)
    var, tau2 = sigma**2, tau_run**2
    total = var + n * tau2
    quad = (s2 - tau2 / total * s1**2) / var
    logdet = (n - 1.0) * jnp.log(var) + jnp.log(total)
    return -0.5 * (quad + logdet + n * math.log(2 * math.pi))


def make_model(law: Law, domains, targets, priors: Mapping[str, Prior]):
    """The NumPyro model ``model(obs)`` for a law on a table's domains and targets."""
    spec = all_params(law, domains, targets)
    shapes = param_shapes(spec, domains, targets)
    T = len(targets)

    def model(obs: Observed):
        p = {name: numpyro.sample(name, priors[name].to_numpyro(shape)) for name, shape in shapes.items()}
        resid = obs.y - log_mean(law, p, obs.x)
        numpyro.factor("loglik", group_loglik(resid, obs, p["sigma"], p["tau_run"]).sum())

    return model


def log_mean(law: Law, p, x: Inputs) -> jnp.ndarray:
    """log of the law's expected loss, guarded so that no proposal yields NaN."""
    mu = law.mean(p, x)
    return jnp.log(jnp.clip(mu, 1e-30, 1e30))


def bucket(n: int, minimum: int = 64) -> int:
    """Round a size up so that adding a few runs does not change shapes (and recompile)."""
    size = minimum
    while size < n:
        size = int(size * 1.25) + 1
    return size
