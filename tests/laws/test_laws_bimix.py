"""Tests of BiMix with a Chinchilla model-size term (bayesmix/laws/bimix.py).

Fast checks: at a fixed model size the law is exactly BiMix's
A / h^alpha (B / D^beta + C) (with the documented map of symbols); a target
that is not a domain uses the learned simplex pi over domains; zero own
weights are floored at H_FLOOR (finite, and equal to the value at the floor);
shape and positivity of the mean; finite log density and gradient on a table
with exact zeros. Slow (NUTS): parameter recovery (rule in tests/law_checks.py)
with a foreign target, and a fit on the zero-weight table.
"""

from __future__ import annotations

import law_checks as lc
import numpy as np
import pytest

from bayesmix.laws import get_law
from bayesmix.laws.base import H_FLOOR
from bayesmix.laws.bimix import from_paper_parameters, paper_parameters

TARGETS = lc.DOMAINS + ("downstream",)
N0, D0 = 1e8, 2e9
K = len(lc.DOMAINS)


def paper_truth() -> dict[str, np.ndarray]:
    """3 domain targets and one downstream target that leans on 'code' and 'math' (the paper's numbers)."""
    return {
        "a": np.array([0.06, 0.10, 0.08, 0.05]),
        "E": np.array([1.8, 0.8, 1.1, 1.4]),
        "A": np.array([0.40, 0.35, 0.30, 0.35]),
        "alpha": np.array([0.34, 0.30, 0.36, 0.32]),
        "B": np.array([0.30, 0.30, 0.25, 0.30]),
        "beta": np.array([0.28, 0.30, 0.26, 0.29]),
        "pi": np.array([[0.1, 0.5, 0.4]]),
    }


def truth() -> dict[str, np.ndarray]:
    """paper_truth() in the law's sampled coordinates."""
    return from_paper_parameters(**paper_truth())


def test_round_trip_of_the_sampled_coordinates():
    back = paper_parameters(truth())
    for k, v in paper_truth().items():
        np.testing.assert_allclose(back[k], v, rtol=1e-12)


def mean(p, h, N, D, targets=TARGETS):
    return lc.mean_at(get_law("bimix"), p, h, N, D, targets, N0, D0)


def test_fixed_model_size_section_is_bimix():
    p, q = truth(), paper_truth()
    rng = np.random.default_rng(0)
    h = rng.dirichlet(np.full(K, 3.0), size=8)  # weights well above the floor H_FLOOR
    assert h.min() > H_FLOOR
    N = 3e8
    D = rng.uniform(1e9, 1e11, 8)
    got = mean(p, h, np.full(8, N), D)[:, :K]
    a = q["a"][:K]
    A_b = K**-a  # the paper's A_i (its scale is redundant with B and C)
    B_b = q["B"][:K] * D0 ** q["beta"][:K]
    C_b = q["E"][:K] + q["A"][:K] * (N / N0) ** -q["alpha"][:K]
    expected = A_b / h**a * (B_b / D[:, None] ** q["beta"][:K] + C_b)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_foreign_target_uses_the_learned_share():
    p, q = truth(), paper_truth()
    h = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    N, D = np.full(2, 2e8), np.full(2, 4e9)
    got = mean(p, h, N, D)[:, K]
    share = h @ q["pi"][0]
    bracket = q["E"][K] + q["A"][K] * (N / N0) ** -q["alpha"][K] + q["B"][K] * (D / D0) ** -q["beta"][K]
    np.testing.assert_allclose(got, (K * share) ** -q["a"][K] * bracket, rtol=1e-12)


def test_zero_own_weight_is_floored():
    p = truth()
    N, D = np.full(2, 2e8), np.full(2, 4e9)
    at_zero = mean(p, np.array([[0.0, 0.5, 0.5], [H_FLOOR, 0.5 - H_FLOOR / 2, 0.5 - H_FLOOR / 2]]), N, D)
    assert np.all(np.isfinite(at_zero))
    # Target 'web' (own weight 0) gets the value at the floor; the law is worse there than at any seen weight.
    np.testing.assert_allclose(at_zero[0, 0], at_zero[1, 0], rtol=1e-12)
    assert at_zero[0, 0] > mean(p, np.array([[0.02, 0.49, 0.49]]), N[:1], D[:1])[0, 0]


def test_mean_shape_positive_and_finite_with_zero_weights():
    lc.check_mean_shape_and_positivity("bimix", TARGETS)


def test_parameter_count_formula():
    law = get_law("bimix")
    for k in (3, 7):
        domains = [f"d{i}" for i in range(k)]
        # 6 per target plus K simplex weights per foreign target.
        assert law.n_params(domains, domains + ["x", "y"]) == 6 * (k + 2) + 2 * k
        assert law.n_params(domains, domains) == 6 * k


def test_zero_weights_finite_log_density_and_gradient():
    lc.assert_zero_weight_density_finite("bimix", truth(), TARGETS)


@pytest.mark.slow
def test_zero_weights_fit_runs_without_nan():
    lc.assert_zero_weight_fit_finite("bimix", truth(), TARGETS, np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]))


@pytest.mark.slow
def test_recovery_by_nuts():
    t = truth()
    fit, frame = lc.fit_simulated("bimix", t, TARGETS)
    # Compared in the paper's numbers (E, A, B are what the truth is written in).
    report = lc.coverage_report(paper_parameters(fit.flat_draws()), paper_truth())
    lc.assert_recovered(report, {"a": 0.25, "alpha": 0.25, "beta": 0.25})
    lc.assert_mean_reproduced(fit, frame, lc.true_mean("bimix", t, frame, TARGETS))
