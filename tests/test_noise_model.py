"""The shared observation model (bayesmix/model.py): run offsets integrated out,
and left out where no run observes a target twice.

With one observation per run the likelihood sees only sigma^2 + tau^2; the
model then drops the offset (sigma carries all the noise) rather than leave an
L-shaped ridge in (sigma, tau) for NUTS. These tests check the closed form
against a dense multivariate normal, that tau does not enter for such targets
and does for the others, and that a fit on final losses only sets tau_run to 0,
says so, and does not report it as a diagnostic problem.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import law_checks as lc
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import bayesmix
from bayesmix.data import read_runs
from bayesmix.design import observed_from_table, reference_scale
from bayesmix.model import group_loglik, unidentified_run_offsets


def observed(frame, targets):
    table = read_runs(frame)
    N0, D0 = reference_scale(table.model_size), reference_scale(table.n_tokens)
    obs, _ = observed_from_table(table, targets, N0, D0, np.unique(table.model_size))
    return table, obs


def final_only(frame):
    """Keep each run's last checkpoint: one observation per run."""
    last = frame.groupby("run")["n_tokens"].transform("max") == frame["n_tokens"]
    return frame[last].reset_index(drop=True)


def test_closed_form_matches_a_dense_multivariate_normal():
    frame = lc.design(mixtures=3, checkpoints=4, seed=0)
    frame = frame.assign(**{f"{t}_loss": 2.0 for t in lc.DOMAINS})
    table, obs = observed(frame, ["web"])
    rng = np.random.default_rng(0)
    resid = jnp.asarray(rng.normal(0, 0.01, obs.y.shape)) * obs.mask
    sigma, tau = jnp.array([0.004]), jnp.array([0.003])
    got = float(group_loglik(resid, obs, sigma, tau).sum())
    r, m, run = np.asarray(resid[:, 0]), np.asarray(obs.mask[:, 0]) > 0, np.asarray(obs.run)
    expected = 0.0
    for g in np.unique(run[m]):
        x = r[m & (run == g)]
        cov = 0.004**2 * np.eye(len(x)) + 0.003**2 * np.ones((len(x), len(x)))
        expected += multivariate_normal(np.zeros(len(x)), cov).logpdf(x)
    assert got == pytest.approx(expected, rel=1e-9)


def test_offsets_enter_only_where_a_run_is_observed_twice():
    frame = lc.design(mixtures=4, checkpoints=3, seed=1).assign(**{f"{t}_loss": 2.0 for t in lc.DOMAINS})
    _, repeated = observed(frame, ["web", "code"])
    _, single = observed(final_only(frame), ["web", "code"])
    assert not unidentified_run_offsets(repeated).any()
    assert unidentified_run_offsets(single).all()
    rng = np.random.default_rng(2)
    sigma = jnp.array([0.01, 0.01])
    for obs, tau_matters in ((repeated, True), (single, False)):
        resid = jnp.asarray(rng.normal(0, 0.01, obs.y.shape)) * obs.mask
        a = group_loglik(resid, obs, sigma, jnp.array([0.001, 0.001])).sum()
        b = group_loglik(resid, obs, sigma, jnp.array([0.02, 0.02])).sum()
        assert (abs(float(a - b)) > 1e-3) == tau_matters
    # One observation per run: exactly independent normals with sd sigma.
    resid = jnp.asarray(rng.normal(0, 0.01, single.y.shape)) * single.mask
    m = np.asarray(single.mask) > 0
    expected = -0.5 * np.sum((np.asarray(resid)[m] / 0.01) ** 2 + np.log(2 * np.pi * 0.01**2))
    assert float(group_loglik(resid, single, sigma, jnp.array([0.05, 0.05])).sum()) == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
def test_fit_on_final_losses_sets_unidentified_offsets_to_zero_and_says_so():
    from test_laws_exponential import truth

    frame = final_only(lc.simulate("exponential", truth(), lc.design(mixtures=8, checkpoints=3, seed=3), lc.DOMAINS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bayesmix.fit(frame, "exponential", chains=2, warmup=200, draws=200, seed=0, progress=False)
    assert np.all(fit.draws["tau_run"] == 0.0)
    assert any("tau_run is set to 0" in n for n in fit.table.notes)
    assert not any(lab.startswith("tau_run") for lab in fit.diagnostics.prior_dominated)
    assert np.all(fit.draws["sigma"] > 0)
