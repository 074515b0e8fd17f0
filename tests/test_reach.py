"""Directions of scale a sweep never varied, and the plain warning when a prediction moves along one."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from checks_support import additive_truth, point_fit, simulated_frame

import bayesmix
from bayesmix.data import read_runs
from bayesmix.reach import (
    PriorOnlyWarning,
    prior_only_note,
    schedule_prior_note,
    single_fraction,
    unvaried_directions,
)


def table(sizes=(5e7, 1.25e8), tokens=None, per_param=20.0):
    frame = simulated_frame(additive_truth(), sizes=sizes, checkpoints=1)
    frame["n_tokens"] = frame.model_size * per_param if tokens is None else tokens
    return frame, read_runs(frame, quiet=True)


def test_one_token_budget_leaves_the_token_direction():
    _, t = table(tokens=1e9)
    _, dirs = unvaried_directions(t)
    assert dirs.shape == (1, 2) and abs(dirs[0, 1]) > 0.99
    note = prior_only_note(t, 1.25e8, 2.5e10)
    assert note and "trained to 1e+09 tokens" in note and "prior alone" in note and "3.2 e-folds" in note
    assert prior_only_note(t, 2e9, 1e9) is None  # a larger model on the same tokens: the sweep varied that


def test_fixed_tokens_per_parameter_and_a_single_scale():
    _, t = table(per_param=20.0)
    assert prior_only_note(t, 1e9, 2e10) is None  # along the sweep's own 20 tokens per parameter
    note = prior_only_note(t, 1.25e8, 1.25e8 * 400)
    assert note and "about 20 tokens per parameter" in note
    _, one = table(sizes=(1e8,), tokens=1e9)
    assert unvaried_directions(one)[1].shape == (2, 2)
    assert "model-size and token terms" in prior_only_note(one, 1e9, 2.5e10)


def test_varied_sweeps_never_warn():
    frame = simulated_frame(additive_truth(), checkpoints=3)
    longer = frame.run.str.endswith(("1", "3", "5", "7"))
    frame.loc[longer, "n_tokens"] *= 3  # half the mixtures trained 3x longer: sizes and tokens vary apart
    t = read_runs(frame, quiet=True)
    assert unvaried_directions(t)[1].shape == (0, 2)
    assert prior_only_note(t, 1e10, 1e12) is None


def test_predict_and_recommend_say_it_in_plain_words():
    frame, _ = table(tokens=1e9)
    fit = point_fit(frame, additive_truth(), draws=50, chains=1)
    h = np.full((1, len(fit.domains)), 1 / len(fit.domains))
    with pytest.warns(PriorOnlyWarning, match="never varied"):
        fit.predict(h, 1.25e8, 2.5e10)
    with pytest.warns(PriorOnlyWarning, match="never varied"):
        bayesmix.recommend(fit, 1.25e8, 2.5e10, argmin_draws=5, path_points=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PriorOnlyWarning)
        fit.predict(h, 1.25e8, 1e9)  # at the sweep's own tokens: no warning


def one_point_frame(fraction: float = 0.5):
    """Every run logged once, at ``fraction`` of its schedule (a sweep cut at one token count from longer runs)."""
    frame, _ = table(tokens=1e9)
    frame["run_tokens"] = frame.n_tokens / fraction
    return frame


def test_rows_at_one_point_of_their_runs_are_found():
    assert single_fraction(read_runs(one_point_frame(0.5), quiet=True)) == pytest.approx(0.5)
    two = one_point_frame(0.5)
    two.loc[two.index[::2], "run_tokens"] = two.n_tokens[::2] / 0.25  # half the runs at a quarter of theirs
    assert single_fraction(read_runs(two, quiet=True)) is None
    assert single_fraction(table(tokens=1e9)[1]) is None  # final losses: the end of every run
    t = read_runs(one_point_frame(0.5), quiet=True)
    note = schedule_prior_note(t)
    assert note and "50% of its run's schedule" in note and "prior alone" in note
    assert schedule_prior_note(t, [0.5]) is None  # the sweep's own point of a run
    assert schedule_prior_note(t, [0.5, 1.0]) is not None


def test_a_final_loss_from_one_point_of_each_run_says_it_rests_on_the_curves_prior():
    frame = one_point_frame(0.5)
    fit = point_fit(frame, additive_truth(), draws=50, chains=1)
    T = len(fit.targets)
    fit.draws.update(schedule=np.full((1, 50, T, 3), 0.02), schedule_size=np.zeros((1, 50, T)))
    assert fit.checkpoints
    h = np.full((1, len(fit.domains)), 1 / len(fit.domains))
    with pytest.warns(PriorOnlyWarning, match="50% of its run's schedule"):
        fit.predict(h, 1.25e8, 2e9)  # the runs' own scale, but their final loss
    with pytest.warns(PriorOnlyWarning, match="50% of its run's schedule"):
        bayesmix.recommend(fit, 1.25e8, 2e9, argmin_draws=5, path_points=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PriorOnlyWarning)
        fit.predict(h, 1.25e8, 2e9, trajectory=True, fractions=[0.5])  # what the sweep measured: no warning
        del fit.draws["schedule"], fit.draws["schedule_size"]
        fit.predict(h, 1.25e8, 2e9)  # fitted as final losses (no schedule term): nothing rests on its prior
