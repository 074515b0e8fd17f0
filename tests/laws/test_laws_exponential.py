"""Tests of the exponential mixing law with its step and size laws (bayesmix/laws/exponential.py).

Fast checks: the law's sections at fixed (h, N), (h, D) and (N, D) are exactly
the paper's step, size and mixing laws; the row mean of t is not identified
(and the reported matrix is centred); the mean is positive, finite, and falls
with N and D (so it extrapolates in scale); finite log density and gradient on
a table with exact zero weights. Slow (NUTS): recovery of the identified
quantities (E, A, alpha, B, beta and the centred interaction matrix; rule in
tests/law_checks.py) and a fit on the zero-weight table.
"""

from __future__ import annotations

import law_checks as lc
import numpy as np
import pytest

from bayesmix.laws import get_law
from bayesmix.laws.exponential import (
    CROSS_SCALE,
    OWN_SCALE,
    from_paper_parameters,
    interaction_matrix,
    interactions,
    mixing_factor,
    paper_parameters,
    slopes,
)

TARGETS = lc.DOMAINS
OWN = [0, 1, 2]  # each target's own domain
N0, D0 = 1e8, 2e9


def paper_truth() -> dict[str, np.ndarray]:
    """3 targets over 3 domains: each domain lowers its own loss (t_ii = -2.4 to -3.6), small cross effects
    (|t_ij| <= 0.4)."""
    return {
        "E": np.array([1.9, 0.8, 1.2]),
        "A": np.array([0.40, 0.35, 0.30]),
        "alpha": np.array([0.34, 0.30, 0.36]),
        "B": np.array([0.30, 0.30, 0.25]),
        "beta": np.array([0.28, 0.30, 0.26]),
        "t": np.array([[-3.0, 0.3, -0.2], [0.4, -2.4, 0.15], [-0.1, 0.25, -3.6]]),
    }


def truth() -> dict[str, np.ndarray]:
    """paper_truth() in the law's sampled coordinates."""
    return from_paper_parameters(**paper_truth(), own=OWN)


def test_round_trip_of_the_sampled_coordinates():
    back = paper_parameters(truth(), OWN)
    for k, v in paper_truth().items():
        np.testing.assert_allclose(back[k], v, rtol=1e-12)


def test_own_entry_has_the_own_scale_and_foreign_rows_the_cross_scale():
    z = np.ones((2, 3))
    own = np.array([1, -1])
    c, o = CROSS_SCALE, OWN_SCALE
    np.testing.assert_allclose(np.asarray(slopes(z, own)), [[c, o, c], [c, c, c]])
    # t is the slope over u: the log-slope of L_ref (1 - u + u m) at the uniform mixture is s.
    p = {"z": z, "reducible": np.array([1 / 3, 2 / 3])}
    np.testing.assert_allclose(np.asarray(interactions(p, own)), np.asarray(slopes(z, own)) * np.array([[3.0], [1.5]]))


def test_the_floor_is_free_in_sign_and_the_loss_stays_positive_far_beyond():
    # E < 0 is a reducible share above 1: the coordinates go through E = 0 smoothly, so a sweep that does not see
    # its floor does not pile its posterior against it (docs/laws/exponential.md, revision 3).
    paper = {**paper_truth(), "E": np.array([-0.2, 0.8, 1.2])}
    q = from_paper_parameters(**paper, own=OWN)
    assert q["reducible"][0] > 1 > q["reducible"][1]
    np.testing.assert_allclose(paper_parameters(q, OWN)["E"], paper["E"], rtol=1e-12)
    h = np.array([[0.2, 0.4, 0.4]])
    m = np.asarray(mixing_factor(paper["t"], h))[0]
    # Inside the sweep the law is the paper's formula, E < 0 and all.
    inside = mean(q, h, np.array([2 * N0]), np.array([3 * D0]))[0]
    paper_loss = paper["E"] + m * (paper["A"] * 2.0 ** -paper["alpha"] + paper["B"] * 3.0 ** -paper["beta"])
    np.testing.assert_allclose(inside, paper_loss, rtol=1e-10)
    # Far beyond it the paper's formula crosses 0 for the first target; the law's loss stays positive and falls.
    far = mean(q, np.repeat(h, 2, 0), np.array([1e13, 1e15]), np.array([1e15, 1e17]))
    assert np.all(far > 0) and far[1, 0] < far[0, 0]
    assert paper["E"][0] + m[0] * paper["A"][0] * (1e13 / N0) ** -paper["alpha"][0] < 0


def test_sampled_slope_is_the_log_slope_at_the_uniform_mixture():
    q = truth()
    K, eps = 3, 1e-6
    s = np.asarray(slopes(q["z"], np.array(OWN)))
    u = np.full((1, K), 1.0 / K)
    for j in range(K):
        up, down = u.copy(), u.copy()
        up[0, j] += eps
        down[0, j] -= eps
        d = (
            np.log(mean(q, up, np.array([N0]), np.array([D0]))) - np.log(mean(q, down, np.array([N0]), np.array([D0])))
        ) / (2 * eps)
        np.testing.assert_allclose(d[0], s[:, j], rtol=1e-5)


def mean(p, h, N, D):
    return lc.mean_at(get_law("exponential"), p, h, N, D, TARGETS, N0, D0)


def test_sections_are_the_papers_step_size_and_mixing_laws():
    p, q = paper_truth(), truth()
    h0 = np.array([[0.6, 0.3, 0.1]])
    m = np.asarray(mixing_factor(p["t"], h0))[0]  # (T,)
    D = np.geomspace(1e9, 1e11, 7)
    N = 3e8
    # Step law at fixed (h, N): L(D) = c + k (D/D0)^-beta with c = E + m A (N/N0)^-alpha, k = m B.
    step = mean(q, np.repeat(h0, len(D), 0), np.full(len(D), N), D)
    c = p["E"] + m * p["A"] * (N / N0) ** -p["alpha"]
    np.testing.assert_allclose(step, c + m * p["B"] * (D[:, None] / D0) ** -p["beta"], rtol=1e-12)
    # Size law at fixed (h, D): L(N) = c + k (N/N0)^-alpha with c = E + m B (D/D0)^-beta, k = m A.
    Ns, Dfix = np.geomspace(5e7, 5e9, 7), 4e10
    size = mean(q, np.repeat(h0, len(Ns), 0), Ns, np.full(len(Ns), Dfix))
    c = p["E"] + m * p["B"] * (Dfix / D0) ** -p["beta"]
    np.testing.assert_allclose(size, c + m * p["A"] * (Ns[:, None] / N0) ** -p["alpha"], rtol=1e-12)
    # Mixing law at fixed (N, D): L(h) = c + k exp(t . h) with c = E and t the centred interaction matrix.
    rng = np.random.default_rng(0)
    h = rng.dirichlet(np.ones(3), size=9)
    mix = mean(q, h, np.full(9, N), np.full(9, Dfix))
    t = p["t"] - p["t"].mean(1, keepdims=True)
    np.testing.assert_allclose(interaction_matrix(q, OWN), t, rtol=1e-12)
    # t . (h - 1/K) with the raw t equals t_centred . h (weights sum to 1), so k is the scale terms.
    k = p["A"] * (N / N0) ** -p["alpha"] + p["B"] * (Dfix / D0) ** -p["beta"]
    np.testing.assert_allclose(mix, p["E"] + k * np.exp(h @ t.T), rtol=1e-12)


def test_row_mean_of_t_is_not_identified_and_reported_matrix_is_centred():
    p = truth()
    scale = np.where(np.eye(3, dtype=bool), OWN_SCALE, CROSS_SCALE)
    shifted = {**p, "z": p["z"] + 0.7 / scale}  # adds 0.7 to every t_ij of each row
    rng = np.random.default_rng(1)
    h = rng.dirichlet(np.ones(3), size=5)
    N, D = np.full(5, 2e8), np.full(5, 5e9)
    np.testing.assert_allclose(mean(p, h, N, D), mean(shifted, h, N, D), rtol=1e-12)
    t = interaction_matrix(p, OWN)
    np.testing.assert_allclose(t.sum(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(t, interaction_matrix(shifted, OWN), atol=1e-12)
    # Works on stacked draws too.
    stacked = {k: np.stack([p[k]] * 4) for k in ("z", "reducible")}
    np.testing.assert_allclose(interaction_matrix(stacked, OWN), np.stack([t] * 4), atol=1e-12)


def test_mean_shape_positive_and_finite_with_zero_weights():
    lc.check_mean_shape_and_positivity("exponential", TARGETS)


def test_mean_falls_with_model_size_and_tokens_for_prior_draws():
    # It extrapolates in N and D: beyond the fitted sizes the loss keeps falling toward E.
    h = np.array([[0.2, 0.5, 0.3]] * 6)
    Ns = np.geomspace(1e8, 1e11, 6)
    for p in lc.prior_draws("exponential", TARGETS, 10):
        by_n = mean(p, h, Ns, np.full(6, 1e10))
        by_d = mean(p, h, np.full(6, 1e9), Ns * 20)
        assert np.all(np.diff(by_n, axis=0) < 0) and np.all(np.diff(by_d, axis=0) < 0)
        E = paper_parameters(p, OWN)["E"]
        assert np.all(by_n > E) and np.all(by_d > E)


def test_parameter_count_formula():
    law = get_law("exponential")
    for K in (3, 7):
        domains = [f"d{i}" for i in range(K)]
        assert law.n_params(domains, domains + ["downstream"]) == (K + 1) * (K + 5)


def test_zero_weights_finite_log_density_and_gradient():
    lc.assert_zero_weight_density_finite("exponential", truth(), TARGETS)


@pytest.mark.slow
def test_zero_weights_fit_runs_without_nan():
    lc.assert_zero_weight_fit_finite("exponential", truth(), TARGETS, np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]))


@pytest.mark.slow
def test_recovery_by_nuts():
    t = truth()
    fit, frame = lc.fit_simulated("exponential", t, TARGETS)
    draws = paper_parameters(fit.flat_draws(), OWN)
    # Identified quantities only, in the paper's numbers: z's row means are not (only the centred t is).
    draws = {**draws, "t": interaction_matrix(fit.flat_draws(), OWN)}
    identified = {k: paper_truth()[k] for k in ("E", "A", "alpha", "B", "beta")}
    identified["t"] = interaction_matrix(t, OWN)
    report = lc.coverage_report(draws, identified)
    lc.assert_recovered(report, {"E": 0.05, "alpha": 0.25, "beta": 0.25})
    # The own-domain interactions (the diagonal) are recovered with the right sign and size.
    diag = report[report.param.isin([f"t[{i}, {i}]" for i in range(3)])]
    assert (diag["median"] < 0).all() and (diag.rel_err < 0.3).all(), diag.to_string()
    lc.assert_mean_reproduced(fit, frame, lc.true_mean("exponential", t, frame, TARGETS))
