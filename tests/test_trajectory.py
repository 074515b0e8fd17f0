"""Predicted training curves: Fit.predict(trajectory=True), its figure, and ``bayesmix predict --trajectory``.

One tiny fit of a sweep simulated with the checkpoint model (every checkpoint
of a run sits above the run's final loss, by about 9% at a tenth of the run):
the curve it predicts must end at the final-loss prediction and lie above it
before that, by the fitted curve.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest

import bayesmix
from bayesmix.cli import main
from bayesmix.data import read_runs
from bayesmix.design import reference_scale
from bayesmix.diagnostics import Diagnostics
from bayesmix.fit import default_fractions
from bayesmix.inference import SamplerConfig
from bayesmix.laws import additive as additive_law
from bayesmix.laws import get_law
from bayesmix.model import all_params
from bayesmix.schedule import curve
from bayesmix.simulate import simulate_losses, sweep_design
from bayesmix.trajectory import nearest_runs, trajectory_figure

DOMAINS = ("web", "code", "math")
SIZES = (4e7, 1e8, 2.5e8)
MIXES = np.array([[0.5, 0.3, 0.2], [0.2, 0.4, 0.4]])
N, D = 1e8, 2e9  # the predicted run: a fitted size, to the sweep's tokens per parameter (20)
FRACTIONS = [0.2, 0.5, 1.0]
DRAWS = 300
PREDICTION = ["mean", "median", "lower", "upper", "pred_lower", "pred_upper", "interval"]


def _truth() -> dict[str, np.ndarray]:
    p = additive_law.from_paper_parameters(
        E=np.array([1.9, 0.8, 1.2]),
        A=np.full(3, 0.35),
        alpha=np.array([0.34, 0.30, 0.36]),
        B=np.full(3, 0.30),
        beta=np.array([0.28, 0.30, 0.26]),
        w=0.08 + 0.6 * np.eye(3),
        gamma=np.array([[0.5, 0.4, 0.45], [0.35, 0.6, 0.4], [0.4, 0.5, 0.55]]),
    )
    return {
        **p,
        "sigma": np.full(3, 0.004),
        "tau_run": np.full(3, 0.003),
        "schedule": np.full((3, 3), 0.03),
        "schedule_size": np.zeros(3),
        "noise_early": np.zeros(3),
        "kappa_run": np.full(3, 0.003),
    }


@pytest.fixture(scope="module")
def fit() -> bayesmix.Fit:
    """A fit of the simulated sweep whose draws are the truth, each jittered by a few tenths of a percent.

    Built without NUTS on purpose: ``bayesmix.fit`` spends about a minute of
    CPU compiling its sampler whatever the sweep's size, and nothing here
    depends on how the draws were made, only on what predict does with them.
    """
    design = sweep_design(DOMAINS, SIZES, mixtures_per_size=6, checkpoints=6, seed=3)
    truth = _truth()
    frame = simulate_losses(additive_law.Additive(), design, DOMAINS, truth, seed=4)
    table = read_runs(frame, quiet=True)
    law = get_law("additive")
    spec = all_params(law, table.domains, DOMAINS, checkpoints=True)
    rng = np.random.default_rng(5)
    draws = {}
    for name, value in truth.items():
        v = np.broadcast_to(np.asarray(value, dtype=float), (1, DRAWS) + np.shape(value))
        # Simplex parameters stay on the simplex; the others get a spread, so intervals have a width.
        draws[name] = (
            v.copy() if spec[name].prior.family == "Dirichlet" else v * np.exp(0.002 * rng.standard_normal(v.shape))
        )
    return bayesmix.Fit(
        law=law,
        table=table,
        targets=DOMAINS,
        priors={k: p.prior for k, p in spec.items()},
        config=SamplerConfig(chains=1, warmup=0, draws=DRAWS),
        N0=reference_scale(table.model_size),
        D0=reference_scale(table.n_tokens),
        sizes=np.unique(table.model_size),
        draws=draws,
        sample_stats={"diverging": np.zeros((1, DRAWS), bool)},
        diagnostics=Diagnostics(
            divergences=0, draws=DRAWS, max_tree_depth_hits=0, max_rhat=1.0, min_ess_bulk=1e4, min_ess_tail=1e4
        ),
        extrapolation_sd=0.01,
    )


@pytest.fixture(scope="module")
def model_path(fit, tmp_path_factory):
    return fit.save(tmp_path_factory.mktemp("models") / "trajectory.nc")


@pytest.fixture
def mixes_csv(tmp_path):
    path = tmp_path / "mixes.csv"
    pd.DataFrame(MIXES, columns=DOMAINS).to_csv(path, index=False)
    return path


def _no_schedule(fit: bayesmix.Fit) -> bayesmix.Fit:
    """The same law without the schedule term: what a fit of final losses predicts."""
    draws = {k: v for k, v in fit.draws.items() if k not in ("schedule", "schedule_size", "noise_early", "kappa_run")}
    return dataclasses.replace(fit, draws=draws)


# --------------------------------------------------------------------------- Fit.predict


def test_trajectory_table_ends_at_the_final_loss_and_lies_above_it_by_the_fitted_curve(fit):
    assert fit.checkpoints
    tr = fit.predict(MIXES, N, D, trajectory=True, fractions=FRACTIONS, seed=1)
    assert list(tr.columns[:3]) == ["mixture", "target", "n_tokens"]
    assert set(PREDICTION) <= set(tr.columns)
    T = len(fit.targets)
    assert len(tr) == len(MIXES) * T * len(FRACTIONS)
    assert (tr.groupby(["mixture", "target", "n_tokens"]).size() == 1).all()
    np.testing.assert_allclose(np.sort(tr.n_tokens.unique()), np.array(FRACTIONS) * D)

    key = ["mixture", "target"]
    final = fit.predict(MIXES, N, D, seed=1).set_index(key)
    end = tr[tr.n_tokens == D].set_index(key).loc[final.index]
    np.testing.assert_allclose(end["mean"], final["mean"], rtol=0, atol=1e-9)

    # Before the end, a checkpoint of the run trained to D sits above that run's final loss by exp(g(f)):
    # the fitted curve (every draw of it is positive), the same draws and extrapolation bias.
    done = fit.predict_draws(MIXES, N, D)["mean"]
    for f in FRACTIONS[:-1]:
        mid = tr[np.isclose(tr.n_tokens, f * D)].set_index(key).loc[final.index]
        assert (mid["mean"] > final["mean"]).all()
        traj = fit.predict_draws(MIXES, N, f * D, run_tokens=D)["mean"]
        g = np.stack([curve([f], s)[0] for s in fit.flat_draws()["schedule"]])  # (S, T)
        np.testing.assert_allclose(traj / done, np.broadcast_to(np.exp(g)[:, None, :], traj.shape), rtol=1e-9)

    # The curve falls along the run, and one run's band holds the band of the expected loss.
    for _, g in tr.groupby(key):
        assert np.all(np.diff(g.sort_values("n_tokens")["mean"].to_numpy()) < 0)
    assert (tr.pred_lower <= tr.lower).all() and (tr.upper <= tr.pred_upper).all()
    assert (tr.lower <= tr["median"]).all() and (tr["median"] <= tr.upper).all()


def test_default_fractions_start_where_the_fit_saw_checkpoints(fit):
    tr = fit.predict(MIXES[:1], N, D, trajectory=True)
    f = default_fractions(fit)
    assert f[0] == pytest.approx(fit.table.token_fraction().min()) and f[-1] == 1.0
    np.testing.assert_allclose(np.sort(tr.n_tokens.unique()), f * D)


# --------------------------------------------------------------------------- figure


def test_nearest_runs_rank_by_mixture_distance_plus_log_size(fit):
    frame = fit.table.frame
    row = frame.iloc[0]
    h = row[fit.table.weight_columns].to_numpy(dtype=float)
    near = nearest_runs(fit, h, row.model_size, 4)
    assert near.run[0] == str(row.run) and near.distance[0] == pytest.approx(0.0)
    assert np.all(np.diff(near.distance) >= 0)
    # The same mixture one size up is e.g. log(2.5) away; distance is TV + |log N ratio|.
    np.testing.assert_allclose(near.distance, near.tv + np.abs(np.log(row.model_size / near.model_size)))


def test_trajectory_figure_has_a_panel_per_target_and_says_whether_the_schedule_term_was_fitted(fit):
    tr = fit.predict(MIXES, N, D, trajectory=True, fractions=FRACTIONS, target_weights="web=0.5,code=0.5")
    fig = trajectory_figure(fit, tr, MIXES, N, D, nearest=2)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == list(fit.targets)  # 'weighted' left out by default
    assert all(ax.get_xscale() == "log" for ax in panels)
    title = fig.get_suptitle()
    assert "schedule term fitted" in title and "N=1e+08" in title and "D=2e+09" in title
    labels = panels[0].get_legend_handles_labels()[1]
    assert any(lab.startswith("run ") and "N=" in lab for lab in labels)
    assert sum(lab.startswith("mixture ") for lab in labels) == len(MIXES)

    plain = _no_schedule(fit)
    fig = trajectory_figure(plain, plain.predict(MIXES[:1], N, D, trajectory=True), MIXES[:1], N, D, nearest=0)
    assert "final-loss curve: fit has no schedule term" in fig.get_suptitle()

    with pytest.raises(ValueError, match="trajectory=True"):
        trajectory_figure(fit, fit.predict(MIXES, N, D), MIXES, N, D)
    with pytest.raises(ValueError, match="model_size"):
        trajectory_figure(fit, tr, MIXES, 2 * N, D)


# --------------------------------------------------------------------------- command line


def test_cli_trajectory_writes_the_tidy_table_and_the_figure(model_path, mixes_csv, tmp_path, capsys):
    out, png = tmp_path / "curve.csv", tmp_path / "curve.png"
    args = ["predict", str(model_path), "--mixtures", str(mixes_csv), "--model-size", "1e8", "--tokens", "2e9"]
    rc = main(args + ["--trajectory", "--fractions", "0.25,0.5,1", "--out", str(out), "--plot", str(png)])
    assert rc == 0
    said = capsys.readouterr().out
    assert "schedule term" in said and str(png) in said
    pred = pd.read_csv(out)
    assert list(pred.columns[:3]) == ["mixture", "target", "n_tokens"] and set(PREDICTION) <= set(pred.columns)
    assert len(pred) == len(MIXES) * 3 * 3
    np.testing.assert_allclose(np.sort(pred.n_tokens.unique()), [5e8, 1e9, 2e9])
    assert png.exists() and png.stat().st_size > 0

    # Printed, the table stays a clean CSV on stdout; the note goes to stderr.
    assert main(args + ["--trajectory"]) == 0
    cap = capsys.readouterr()
    printed = pd.read_csv(io.StringIO(cap.out))
    assert "n_tokens" in printed.columns and "schedule term" in cap.err


@pytest.mark.parametrize("bad", ["0", "1.5", "0.5,-0.1", "abc", ",", "nan"])
def test_cli_bad_fractions_are_one_clear_line(model_path, mixes_csv, bad, capsys):
    rc = main(
        ["predict", str(model_path), "--mixtures", str(mixes_csv), "--model-size", "1e8", "--tokens", "2e9"]
        + ["--trajectory", f"--fractions={bad}"]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "bayesmix: error: --fractions" in err and "Traceback" not in err


def test_cli_plot_needs_trajectory(model_path, mixes_csv, tmp_path, capsys):
    rc = main(
        ["predict", str(model_path), "--mixtures", str(mixes_csv), "--model-size", "1e8", "--tokens", "2e9"]
        + ["--plot", str(tmp_path / "x.png")]
    )
    assert rc == 2 and "--plot needs --trajectory" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
