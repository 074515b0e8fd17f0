"""Tests of the capacity law with a separate token exponent (bayesmix/laws/capacity_tokens.py).

Its allocation, coordinates and conventions are the capacity law's (tested in
test_laws_capacity.py and test_capacity_solver.py). Here: with d = a it is
the capacity law exactly; otherwise only the data term's token factor
changes, as the formula says; parameter count; shape, positivity and finite
log density with zero weights; non-zero gradients for the new exponent; and
(slow) recovery by NUTS from a sweep simulated with d != a, so that a fit
which ignored d would fail.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import law_checks as lc
import numpy as np
import pytest
from test_laws_capacity import OWN, OWN_F, paper_foreign_truth, paper_truth

from bayesmix.laws import get_law
from bayesmix.laws.base import H_FLOOR
from bayesmix.laws.capacity import from_paper_parameters, paper_parameters

TARGETS = lc.DOMAINS
K = len(lc.DOMAINS)
N0, D0 = 1e8, 2e9
D_TRUE = np.array([0.45, 0.25, 0.40])  # token exponents, unlike the own-weight exponents a of paper_truth()


def truth(d=D_TRUE) -> dict[str, np.ndarray]:
    return {**from_paper_parameters(**paper_truth(), own=OWN), "d": np.asarray(d, float)}


def _rows(seed=0):
    rng = np.random.default_rng(seed)
    h = np.vstack([rng.dirichlet(np.ones(K), size=6), [[0.5, 0.5, 0.0]]])
    return h, rng.uniform(5e7, 2e9, len(h)), rng.uniform(1e9, 5e10, len(h))


def test_equal_exponents_give_the_capacity_law():
    h, N, D = _rows()
    for paper, own, targets in (
        (paper_truth(), OWN, TARGETS),
        (paper_foreign_truth(), OWN_F, TARGETS + ("downstream",)),
    ):
        p = from_paper_parameters(**paper, own=own)
        ours = lc.mean_at(get_law("capacity_tokens"), {**p, "d": p["a"]}, h, N, D, targets, N0, D0)
        theirs = lc.mean_at(get_law("capacity"), p, h, N, D, targets, N0, D0)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_only_the_token_factor_of_the_data_term_changes():
    h, N, D = _rows(1)
    p, q = truth(), paper_truth()
    ours = lc.mean_at(get_law("capacity_tokens"), p, h, N, D, TARGETS, N0, D0)
    paper = lc.mean_at(get_law("capacity"), from_paper_parameters(**q, own=OWN), h, N, D, TARGETS, N0, D0)
    kh, d = K * np.maximum(h, H_FLOOR), (D / D0)[:, None]
    expected = paper + q["A"] * kh ** -q["a"] * (d**-D_TRUE - d ** -q["a"])
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def test_parameter_count():
    law = get_law("capacity_tokens")
    for k in (3, 7):
        domains = [f"d{i}" for i in range(k)]
        assert law.n_params(domains, domains) == 6 * k + 1
        assert law.n_params(domains, domains + ["x"]) == 6 * k + 1 + (4 + 2 + k)


def test_mean_shape_positive_and_finite_with_zero_weights():
    lc.check_mean_shape_and_positivity("capacity_tokens", TARGETS)
    lc.check_mean_shape_and_positivity("capacity_tokens", TARGETS + ("downstream",))
    lc.assert_zero_weight_density_finite("capacity_tokens", truth(), TARGETS)


def test_token_exponent_gets_a_nonzero_gradient():
    h, N, D = _rows(2)
    from bayesmix.design import make_inputs
    from bayesmix.laws.base import own_index

    x = make_inputs(h, np.arange(len(h)), N, D, N0, D0, own_index(lc.DOMAINS, TARGETS))
    p = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in truth().items()}
    g = jax.grad(lambda q: jnp.sum(get_law("capacity_tokens").mean(q, x)))(p)
    assert np.all(np.isfinite(np.asarray(g["d"]))) and np.all(np.asarray(g["d"]) != 0)
    assert np.all(np.asarray(g["a"]) != 0)


@pytest.mark.slow
def test_recovery_by_nuts():
    t = truth()
    fit, frame = lc.fit_simulated("capacity_tokens", t, TARGETS, sim_seed=2)
    draws = fit.flat_draws()
    report = lc.coverage_report({**paper_parameters(draws, OWN), "d": draws["d"]}, {**paper_truth(), "d": D_TRUE})
    lc.assert_recovered(report, {"E": 0.05, "b": 0.25, "a": 0.25, "d": 0.25})
    lc.assert_mean_reproduced(fit, frame, lc.true_mean("capacity_tokens", t, frame, TARGETS))
