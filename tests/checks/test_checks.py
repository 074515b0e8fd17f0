"""Posterior predictive checks, run-level log densities, held-out folds and model comparison.

Most tests use "point fits" (every draw = the simulated truth; see
checks_support.py), whose predictive distribution is exactly the
simulation's, so coverage and PIT have known answers and no sampler runs.
Tests that fit with NUTS are marked slow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from checks_support import DOMAINS, additive_truth, point_fit, simulated_frame
from scipy.stats import multivariate_normal

from bayesmix.checks import check, compare, heldout_loglik, make_folds, run_loglik, verdict
from bayesmix.checks.compare import same_data
from bayesmix.checks.loglik import far_beyond
from bayesmix.checks.ppc import interval_hits, interval_score, pit, summarise
from bayesmix.checks.validate import SD_GRID, estimate_extrapolation_sd, extrapolation_profile
from bayesmix.data import read_runs
from bayesmix.design import make_inputs
from bayesmix.laws.base import own_index

TRUTH = additive_truth(sigma=0.01, tau=0.002)


@pytest.fixture(scope="module")
def truth_fit():
    return point_fit(simulated_frame(TRUTH, mixtures=20, seed=0), TRUTH)


# ----------------------------------------------------------------- coverage


def test_interval_hits_known_answer():
    draws = np.arange(1.0, 1001.0)[:, None]  # S = 1000 draws 1..1000
    # numpy's linear quantiles: 5% -> 50.95, 95% -> 950.05
    obs = np.array([50.0, 51.0, 500.0, 950.0, 951.0])
    hits = interval_hits(np.repeat(draws, 5, 1), obs, 0.9)
    assert hits.tolist() == [False, True, True, True, False]
    assert pit(np.repeat(draws, 5, 1), obs).tolist() == pytest.approx(
        [0.0495, 0.0505, 0.4995, 0.9495, 0.9505]
    )  # ties count half


def test_interval_score_known_answers():
    # width 2; a miss by 1 below or above a 90% interval adds 2 / 0.1 = 20 per unit missed
    s = interval_score([1.0, 1.0, 1.0], [3.0, 3.0, 3.0], [2.0, 0.0, 3.5], level=0.9)
    np.testing.assert_allclose(s, [2.0, 22.0, 12.0])
    # an interval that covers by being huge scores worse than a sharp one that misses a little
    assert interval_score(0.0, 100.0, 5.0) > interval_score(4.9, 5.05, 5.1)


def test_too_narrow_and_too_wide_both_lose_the_interval_score(truth_fit):
    right = check(truth_fit, figures=False).table.loc["all"]
    for scale in (0.3, 4.0):
        off = check(point_fit(truth_fit.table.frame, TRUTH, scale={"sigma": scale}), figures=False).table.loc["all"]
        assert off.interval_score_90 > right.interval_score_90, scale
    wide = check(point_fit(truth_fit.table.frame, TRUTH, scale={"sigma": 4.0}), figures=False).table.loc["all"]
    assert wide.coverage_90 > right.coverage_90 and wide.width_90 > 2 * right.width_90


def test_summarise_counts_exactly():
    points = pd.DataFrame(
        {
            "target": ["a"] * 10 + ["b"] * 4,
            "in_50": [True] * 5 + [False] * 5 + [True, False, False, False],
            "in_90": [True] * 9 + [False] + [True] * 4,
            "rel_error": [0.01, -0.01] * 5 + [0.02, 0.02, 0.02, 0.02],
            "pit": np.linspace(0.05, 0.95, 14),
        }
    )
    s = summarise(points, levels=(0.5, 0.9))
    assert s.loc["a", "coverage_50"] == 0.5 and s.loc["a", "coverage_90"] == 0.9
    assert s.loc["b", "coverage_50"] == 0.25 and s.loc["b", "coverage_90"] == 1.0
    assert s.loc["all", "coverage_90"] == pytest.approx(13 / 14)
    assert s.loc["a", "mre"] == pytest.approx(0.01) and s.loc["a", "bias"] == pytest.approx(0.0)
    assert s.loc["b", "bias"] == pytest.approx(0.02) and s.loc["all", "cells"] == 14


def _tolerance(level: float, n: int) -> float:
    # 3.5 binomial standard errors, inflated 1.3x for the run offsets shared by checkpoints
    return 3.5 * 1.3 * np.sqrt(level * (1 - level) / n)


def test_correct_model_is_calibrated(truth_fit):
    r = check(truth_fit, figures=False)
    a = r.table.loc["all"]
    assert a.cells == 20 * 3 * 5 * 3
    for level in (50, 80, 90, 95):
        assert abs(a[f"coverage_{level}"] - level / 100) < _tolerance(level / 100, a.cells), level
    assert a.pit_ks < 0.07  # PIT ~ uniform
    assert abs(a.bias) < 0.002 and a.mre == pytest.approx(0.008, abs=0.002)  # E|N(0, 1%)| ~ 0.8%


def test_too_narrow_noise_is_caught(truth_fit):
    bad = point_fit(truth_fit.table.frame, TRUTH, scale={"sigma": 0.5})
    r = check(bad, figures=False)
    a = r.table.loc["all"]
    # predictive sd 0.54% instead of 1.02%: 90% intervals hold P(|z| < 0.87) ~ 62%
    assert a.coverage_90 == pytest.approx(0.62, abs=0.06)
    assert a.pit_p < 1e-6
    # ... and the worst-fit runs are real outliers
    assert (r.worst.rms_z > 1.3).all()


def test_a_missed_trend_shows_in_the_residuals(truth_fit):
    # a fit whose size term is too flat (half the slope at N0, with the same A, so half the exponent):
    # it under-predicts the small models and over-predicts the large ones
    bad = point_fit(truth_fit.table.frame, TRUTH, scale={"alpha": 0.5, "slope_N": 0.5})
    p = check(bad, figures=False).points
    by_size = p.groupby("model_size").z.mean()
    assert by_size.iloc[0] > 1 and by_size.iloc[-1] < -1 and by_size.is_monotonic_decreasing
    assert check(truth_fit, figures=False).points.groupby("model_size").z.mean().abs().max() < 0.3


def test_check_figures_and_files(truth_fit, tmp_path):
    r = check(truth_fit)
    paths = r.save(tmp_path)
    names = {p.name for p in paths}
    assert {
        "check-intervals.png",
        "check-residuals.png",
        "check-pit.png",
        "check-summary.csv",
        "check-worst-runs.csv",
    } <= names
    assert all(p.stat().st_size > 10_000 for p in paths if p.suffix == ".png")
    again = pd.read_csv(tmp_path / "check-summary.csv", index_col="target")
    assert again.loc["all", "coverage_90"] == pytest.approx(r.points.in_90.mean())
    assert set(r.predictive.children) >= {"posterior_predictive", "observed_data"}


def test_check_on_other_runs_must_match_domains(truth_fit):
    other = simulated_frame(TRUTH, mixtures=4).rename(columns={"weight_web": "weight_news"})
    with pytest.raises(ValueError, match="domains"):
        check(truth_fit, read_runs(other, quiet=True), figures=False)


# --------------------------------------------------------- run log densities


@pytest.mark.parametrize("sd", [0.05, np.array([0.05, 0.0, 0.12])], ids=["one-sd", "per-target"])
def test_heldout_loglik_matches_a_dense_multivariate_normal(sd):
    truth = additive_truth(sigma=0.01, tau=0.005)
    f = point_fit(simulated_frame(truth, mixtures=4, checkpoints=3), truth, draws=2, chains=1)
    test = read_runs(simulated_frame(truth, mixtures=2, checkpoints=3, sizes=(1e9,), seed=5, like=f), quiet=True)
    joint, labels = heldout_loglik(f, test, sd, shared=True)
    per_run, run_labels = heldout_loglik(f, test, sd, shared=False)
    assert labels.tolist() == ["all"] and len(run_labels) == 2
    x = make_inputs(
        test.weights,
        np.arange(test.n_rows),
        test.model_size,
        test.n_tokens,
        f.N0,
        f.D0,
        own_index(f.domains, f.targets),
    )
    r = np.log(test.losses) - np.log(np.asarray(f.law.mean(truth, x)))
    far, runs = far_beyond(f, test), test.run
    assert far.min() > 0.9  # 1e9 is beyond the fitted 3.5e8 (and tokens beyond too)
    sds = np.broadcast_to(sd, (len(f.targets),))
    for j in range(len(f.targets)):
        s, tau, k = truth["sigma"][j], truth["tau_run"][j], sds[j]
        cov = s**2 * np.eye(len(r)) + tau**2 * (runs[:, None] == runs[None, :]) + k**2 * np.outer(far, far)
        assert joint[0, 0, j] == pytest.approx(multivariate_normal(np.zeros(len(r)), cov).logpdf(r[:, j]), rel=1e-10)
        for g, run in enumerate(run_labels):
            m = runs == run
            c = s**2 * np.eye(m.sum()) + tau**2 + k**2 * np.outer(far[m], far[m])
            assert per_run[0, g, j] == pytest.approx(
                multivariate_normal(np.zeros(m.sum()), c).logpdf(r[m, j]), rel=1e-10
            )
    # the fit's own per-target value is the default; a grid adds a leading axis
    f.extrapolation_sd = sds.copy()
    np.testing.assert_allclose(heldout_loglik(f, test, shared=True)[0], joint, rtol=1e-12)
    on_grid, _ = heldout_loglik(f, test, shared=True, grid=np.stack([np.zeros(3), sds]))
    assert on_grid.shape == (2,) + joint.shape
    np.testing.assert_allclose(on_grid[1], joint, rtol=1e-12)
    np.testing.assert_allclose(on_grid[0], heldout_loglik(f, test, 0.0, shared=True)[0], rtol=1e-12)
    with pytest.raises(ValueError, match="one per target"):
        heldout_loglik(f, test, [0.1, 0.2])


def test_run_loglik_is_the_model_likelihood(truth_fit):
    a, runs = run_loglik(truth_fit)
    b, _ = heldout_loglik(truth_fit, truth_fit.table, 0.0)  # inside the fitted range far = 0 anyway
    assert a.shape == (2000, truth_fit.table.n_runs, 3)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert set(runs) == set(truth_fit.table.run)


def test_extrapolation_sd_is_recovered():
    """Held-out sizes whose losses carry a known bias per e-fold: the estimate must find its scale.

    20 independent held-out sweeps x 3 targets = 60 biases: the pooled estimate
    of their scale has a standard error of about 1/sqrt(120) ~ 9%, each
    target's (20 biases) about 16%.
    """
    truth = additive_truth(sigma=0.005, tau=0.002)
    f = point_fit(simulated_frame(truth, mixtures=6, checkpoints=3), truth, draws=2, chains=1)
    rng = np.random.default_rng(0)
    grid = SD_GRID[::2]
    for sd_true in (0.0, 0.02):
        profiles = []
        for k in range(20):
            test = read_runs(
                simulated_frame(truth, mixtures=3, checkpoints=3, sizes=(1e9,), seed=100 + k, like=f), quiet=True
            )
            far = far_beyond(f, test)
            frame = test.frame.copy()
            for t in DOMAINS:
                frame[f"{t}_loss"] *= np.exp(sd_true * rng.standard_normal() * far)
            profiles.append(extrapolation_profile(f, read_runs(frame, quiet=True), grid))
        assert profiles[0].shape == (len(grid), len(DOMAINS))
        per_target = estimate_extrapolation_sd(profiles, grid)
        pooled = estimate_extrapolation_sd(profiles, grid, pooled=True)
        assert per_target.shape == (len(DOMAINS),)
        if sd_true == 0:
            assert pooled < 0.005 and (per_target < 0.005).all()
        else:
            assert pooled == pytest.approx(sd_true, rel=0.25)
            np.testing.assert_allclose(per_target, sd_true, rtol=0.5)


# ------------------------------------------------------------------ folds


def test_make_folds():
    table = read_runs(simulated_frame(TRUTH, mixtures=6, checkpoints=4), quiet=True)
    (f,) = make_folds(table, "largest-size")
    assert set(table.model_size[f.test]) == {3.5e8} and set(table.model_size[f.train]) == {5e7, 1.25e8}
    (f,) = make_folds(table, "size:1.25e8")
    assert set(table.model_size[f.test]) == {1.25e8} and set(table.model_size[f.train]) == {5e7}
    folds = make_folds(table, "sizes")
    assert [x.name for x in folds] == ["size 350M"]
    folds = make_folds(table, "mixtures:3", seed=1)
    assert len(folds) == 3
    tests = np.vstack([x.test for x in folds])
    assert (tests.sum(0) == 1).all()  # every row held out exactly once
    mixes, index = table.mixtures()
    for x in folds:  # a mixture leaves at every size together
        held = set(index[x.test])
        assert held.isdisjoint(set(index[x.train])) and len(held) == 2
    (f,) = make_folds(table, "tokens:2e9")
    assert (table.n_tokens[f.train] <= 2e9).all() and (table.n_tokens[f.test] > 2e9).all()


def test_validate_min_fraction_drops_early_checkpoints_of_every_fold():
    """The rule of bayesmix.fit, applied before the folds: held-out runs lose their early checkpoints too."""
    from unittest import mock

    from bayesmix.checks import validate

    frame = simulated_frame(TRUTH, mixtures=4, checkpoints=4)
    full = read_runs(frame, quiet=True)
    final = pd.Series(full.n_tokens).groupby(full.run).transform("max").to_numpy()
    expected = int((full.n_tokens >= 0.5 * final).sum())
    seen = {}

    def stop(table, holdout, seed):
        seen["table"] = table
        raise RuntimeError("stop before fitting")

    with mock.patch("bayesmix.checks.validate.make_folds", stop), pytest.raises(RuntimeError, match="stop before"):
        validate(frame, min_fraction=0.5)
    kept = seen["table"]
    assert 0 < kept.n_rows == expected < full.n_rows and kept.n_runs == full.n_runs
    last = pd.Series(kept.n_tokens).groupby(kept.run).transform("max").to_numpy()
    assert (kept.n_tokens >= 0.5 * last).all()
    with pytest.raises(ValueError, match="min_fraction must be in"):
        validate(frame, min_fraction=1.0)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("biggest", "unknown --holdout"),
        ("size:7e9", "no model size near"),
        ("size:abc", "takes a number"),
        ("tokens:1e30", "nothing to predict"),
        ("mixtures:1", "number of folds"),
        ("mixtures:999", "number of folds"),
    ],
)
def test_bad_holdout_specs(spec, message):
    table = read_runs(simulated_frame(TRUTH, mixtures=6, checkpoints=4), quiet=True)
    with pytest.raises(ValueError, match=message):
        make_folds(table, spec)


def test_one_size_cannot_hold_out_the_largest():
    table = read_runs(simulated_frame(TRUTH, mixtures=6, checkpoints=4, sizes=(1e8,)), quiet=True)
    with pytest.raises(ValueError, match="at least two model sizes"):
        make_folds(table, "largest-size")


# -------------------------------------------------------------- comparison


def test_compare_refuses_fits_of_different_data(truth_fit):
    other = point_fit(simulated_frame(TRUTH, mixtures=20, seed=1), TRUTH)
    with pytest.raises(ValueError, match="different data"):
        same_data({"a": truth_fit, "b": other})
    fewer = point_fit(truth_fit.table.frame, {k: v[:2] for k, v in TRUTH.items()}, targets=DOMAINS[:2])
    with pytest.raises(ValueError, match="different targets"):
        compare({"a": truth_fit, "b": fewer})
    with pytest.raises(ValueError, match="at least two"):
        compare([truth_fit])


@pytest.mark.parametrize(
    "diff, se, words",
    [
        (2.0, 1.0, "about equally well"),
        (10.0, 8.0, "weak preference"),
        (30.0, 5.0, "clearly preferred"),
    ],
)
def test_verdict_sentences(diff, se, words):
    table = pd.DataFrame({"elpd_diff": [0.0, diff], "diff_se": [0.0, se], "high_k": [0, 0]}, index=["x", "y"])
    assert words in verdict(table)
    table["high_k"] = [1, 0]
    assert "--refit" in verdict(table)


def test_compare_adds_held_out_scores(truth_fit, monkeypatch):
    """The held-out columns come from validate(), one call per fit (validate is stubbed: it refits)."""
    import importlib

    validate_module = importlib.import_module("bayesmix.checks.validate")  # the attribute is the function

    a = point_fit(truth_fit.table.frame, TRUTH, draws=200, jitter=1e-4, seed=1)
    b = point_fit(truth_fit.table.frame, TRUTH, draws=200, jitter=1e-4, seed=2, scale={"sigma": 2.0})
    calls = []

    def fake_validate(table, law, holdout, **kw):
        calls.append((law.name, holdout, kw["chains"]))
        mre = 0.01 if len(calls) == 1 else 0.03
        folds = pd.DataFrame({"lpd": [10.0 * len(calls), 1.0], "mre": [mre, mre + 0.02], "coverage_90": [0.9, 0.8]})
        return type("V", (), {"folds": folds})()

    monkeypatch.setattr(validate_module, "validate", fake_validate)
    table = compare({"a": a, "b": b}, holdout="largest-size")
    assert calls == [("additive", "largest-size", 2)] * 2
    assert table.loc["a", "holdout_lpd"] == 11.0 and table.loc["b", "holdout_lpd"] == 21.0
    assert table.loc["a", "holdout_mre"] == pytest.approx(0.02) and table.loc[
        "b", "holdout_coverage_90"
    ] == pytest.approx(0.85)
    # noise twice too wide loses to the truth in leave-one-run-out density
    assert table.index[0] == "a" and table.loc["b", "elpd_diff"] > 0
