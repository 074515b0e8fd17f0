"""The check, compare and validate verbs, and the checks that need real NUTS fits.

Fast tests use point fits (checks_support.py). Slow ones fit the additive
and own-weight laws to a small sweep simulated from the additive law with
strong cross-domain effects, which the own-weight law cannot represent.
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from checks_support import DOMAINS, additive_truth, point_fit, simulated_frame

import bayesmix
from bayesmix.checks import compare, loo_runs
from bayesmix.checks.validate import FLOOR
from bayesmix.cli import main

TRUTH = additive_truth(sigma=0.01, tau=0.002)
ONE = ("web",)
TRUTH1 = additive_truth(targets=ONE, sigma=0.005, tau=0.002)


@pytest.fixture(scope="module")
def point_model(tmp_path_factory):
    return point_fit(simulated_frame(TRUTH, mixtures=10, seed=0), TRUTH, draws=300).save(
        tmp_path_factory.mktemp("m") / "point.nc"
    )


def test_check_verb_writes_consistent_tables(point_model, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["check", str(point_model), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "90% intervals hold" in printed and "worst-fit runs" in printed
    summary = pd.read_csv(out / "check-summary.csv", index_col="target")
    points = pd.read_csv(out / "check-points.csv")
    for t in DOMAINS + ("all",):
        p = points if t == "all" else points[points.target == t]
        assert summary.loc[t, "cells"] == len(p)
        assert summary.loc[t, "coverage_90"] == pytest.approx(p.in_90.mean())
        assert summary.loc[t, "mre"] == pytest.approx(p.rel_error.abs().mean())
    assert {"check-intervals.png", "check-residuals.png", "check-pit.png"} <= {p.name for p in out.iterdir()}
    worst = pd.read_csv(out / "check-worst-runs.csv")
    assert len(worst) == 10 and worst.rms_z.is_monotonic_decreasing


def test_check_verb_on_held_out_runs(point_model, tmp_path, capsys):
    fit = bayesmix.load(point_model)
    bigger = tmp_path / "big.csv"
    simulated_frame(TRUTH, mixtures=3, sizes=(1e9,), seed=9, like=fit).to_csv(bigger, index=False)
    assert main(["check", str(point_model), "--runs", str(bigger), "--out", str(tmp_path / "r"), "--no-figures"]) == 0
    summary = pd.read_csv(tmp_path / "r" / "check-summary.csv", index_col="target")
    assert summary.loc["all", "cells"] == 3 * 5 * 3
    assert "the runs in" in capsys.readouterr().out


def test_compare_verb_refuses_different_data(point_model, tmp_path, capsys):
    other = point_fit(simulated_frame(TRUTH, mixtures=10, seed=1), TRUTH, draws=300).save(tmp_path / "other.nc")
    assert main(["compare", str(point_model), str(other)]) == 2
    err = capsys.readouterr().err
    assert "different data" in err and err.count("\n") == 1
    assert main(["compare", str(point_model)]) == 2
    assert "at least two" in capsys.readouterr().err


def test_validate_verb_argument_errors(point_model, tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    simulated_frame(TRUTH, mixtures=4, sizes=(1e8,)).to_csv(runs, index=False)
    assert main(["validate", str(runs), "--holdout", "largest-size"]) == 2
    assert "at least two model sizes" in capsys.readouterr().err
    simulated_frame(TRUTH, mixtures=4).to_csv(runs, index=False)
    assert main(["validate", str(runs), "--update-model", str(tmp_path / "none.nc")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert main(["validate", str(runs), "--extrapolation-sd", "-1"]) == 2
    assert main(["validate", str(runs), "--min-fraction", "1.5"]) == 2
    assert "min_fraction must be in [0, 1)" in capsys.readouterr().err
    # a model that cannot take the result fails before any refit
    assert main(["validate", str(runs), "--law", "own_weight", "--update-model", str(point_model)]) == 2
    assert "is a additive fit, but --law is own_weight" in capsys.readouterr().err
    assert main(["validate", str(runs), "--targets", "web", "--update-model", str(point_model)]) == 2
    assert "leaves out code, books" in capsys.readouterr().err


# ------------------------------------------------------------- real fits


def _fit(frame, law, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesmix.FitWarning)
        return bayesmix.fit(frame, law, chains=2, warmup=200, draws=150, seed=1, progress=False, **kw)


@pytest.fixture(scope="module")
def real_fits(tmp_path_factory):
    frame = simulated_frame(TRUTH1, targets=ONE, mixtures=8, checkpoints=4)
    fits = {law: _fit(frame, law) for law in ("additive", "own_weight")}
    folder = tmp_path_factory.mktemp("real")
    paths = {law: f.save(folder / f"{law}.nc") for law, f in fits.items()}
    return fits, paths


@pytest.mark.slow
def test_loo_ranks_the_true_law_first(real_fits):
    fits, _ = real_fits
    table = compare(fits)
    assert list(table.index) == ["additive", "own_weight"]
    own = table.loc["own_weight"]
    assert own.elpd_diff > 4 and own.elpd_diff > 2 * own.diff_se, table.to_string()
    assert (table.p_loo > 0).all() and (table.runs == 24).all()
    assert "additive is clearly preferred over own_weight" in table.attrs["verdict"]


@pytest.mark.slow
def test_compare_verb(real_fits, tmp_path, capsys):
    _, paths = real_fits
    out = tmp_path / "cmp.csv"
    assert main(["compare", paths["own_weight"], paths["additive"], "--out", str(out), "--figures", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "checkpoints of one run share its offset" in printed and "clearly preferred" in printed
    table = pd.read_csv(out, index_col="name")
    assert table.index[0] == "additive" and table.loc["additive", "rank"] == 1
    assert (tmp_path / "khat-additive.png").stat().st_size > 10_000


@pytest.mark.slow
def test_exact_refit_replaces_the_psis_estimate(real_fits):
    fits, _ = real_fits
    psis = loo_runs(fits["own_weight"])
    exact = loo_runs(fits["own_weight"], refit=True, max_refits=1, k_threshold=-np.inf)  # refit the worst-k run
    i = int(np.argmax(psis.pointwise.pareto_k))
    row = exact.pointwise.iloc[i]
    assert row.method == "refit" and exact.refitted == [row.run]
    assert (exact.pointwise.method == "refit").sum() == 1
    # leaving the run out cannot help it: below its in-sample density, near the PSIS estimate
    assert row.elpd < row.lppd
    assert abs(row.elpd - psis.pointwise.elpd.iloc[i]) < 5.0
    assert exact.elpd == pytest.approx(psis.elpd - psis.pointwise.elpd.iloc[i] + row.elpd)


@pytest.mark.slow
def test_validate_verb_largest_size(real_fits, tmp_path, capsys, caplog):
    """Two sizes: fit on the smaller one (so the size exponent is not informed), predict the larger."""
    _, paths = real_fits
    runs = tmp_path / "runs.csv"
    frame = simulated_frame(TRUTH1, targets=ONE, mixtures=8, checkpoints=4, sizes=(5e7, 1.25e8))
    # half the small runs stop at half their tokens, so the training size varies its token budget: the fold then
    # extrapolates in tokens (a sweep that never varies an axis adds no bias along it; bayesmix.reach)
    shorter = (frame.model_size == 5e7) & frame.run.str.endswith(("1", "3", "5", "7"))
    frame.loc[shorter, "n_tokens"] *= 0.5
    frame.to_csv(runs, index=False)
    out = tmp_path / "v"
    model = bayesmix.load(paths["additive"])  # a copy with a value validate cannot measure, so the update shows
    model.extrapolation_sd = np.array([0.5])
    model_path = model.save(tmp_path / "model.nc")
    with caplog.at_level(logging.WARNING, logger="bayesmix"):
        rc = main(
            [
                "validate",
                str(runs),
                "--law",
                "additive",
                "--holdout",
                "largest-size",
                "--chains",
                "2",
                "--warmup",
                "200",
                "--draws",
                "300",
                "--seed",
                "2",
                "--no-progress",
                "--out",
                str(out),
                "--update-model",
                model_path,
            ]
        )
    assert rc == 0
    printed = capsys.readouterr().out
    # a fit that goes badly is reported with the parameter's name and what to try
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert re.search(r"fold size 125M: .*the data barely inform [^:]*alpha\[web\]", logged), logged
    assert "Runs that vary" in logged
    folds = pd.read_csv(out / "validate-folds.csv")
    points = pd.read_csv(out / "validate-points.csv")
    assert len(folds) == 1 and folds.test_runs[0] == 8 and folds.cells[0] == 32 == len(points)
    assert folds.coverage_90[0] == pytest.approx(points.in_90.mean())
    assert folds.mre[0] == pytest.approx(points.rel_error.abs().mean())
    assert np.isfinite(folds.lpd[0])
    assert (points.model_size == 1.25e8).all() and (points.groupby("run").far.max() > 0).all()
    extra = pd.read_csv(out / "validate-extrapolation.csv")
    assert len(extra) == 1 and extra.target[0] == "web"
    assert extra.lpd_joint_at_hat[0] >= extra.lpd_joint_at_fit[0]
    assert 0.005 < extra.sd_fit[0] < 0.1  # one training size: fit() has none to hold out, its prior alone
    sd = float(re.search(r"extrapolation_sd per target = web ([0-9.e-]+)", printed).group(1))
    assert sd == pytest.approx(max(extra.sd_hat[0], FLOOR), rel=1e-3)
    saved = bayesmix.load(model_path)
    assert saved.extrapolation_sd.shape == (1,) and saved.extrapolation_sd[0] == pytest.approx(sd, rel=1e-3)
    assert "set by bayesmix validate" in saved.table.notes[-1] and "(was web 0.5)" in saved.table.notes[-1]
    assert f"stored extrapolation_sd web {sd:.4g} in {model_path} (was web 0.5)" in printed
    assert (out / "validate-folds.png").stat().st_size > 10_000


@pytest.mark.slow
def test_fit_verb_on_extreme_but_valid_input(tmp_path, capsys):
    """Unicode domain names and magnitudes of 1e-190 and 1e210: a correct fit, not a traceback."""
    frame = simulated_frame(TRUTH1, targets=ONE, mixtures=5, checkpoints=3)
    frame = frame.rename(
        columns={"weight_web": "weight_数学", "web_loss": "数学_loss", "weight_code": "weight_émoji🙂"}
    )
    frame = frame.assign(model_size=frame.model_size * 1e-200, n_tokens=frame.n_tokens * 1e200)
    runs = tmp_path / "runs.csv"
    frame.to_csv(runs, index=False)
    model = tmp_path / "m.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesmix.FitWarning)
        rc = main(
            ["fit", str(runs), "--out", str(model), "--draws", "20", "--warmup", "20", "--chains", "1", "--no-progress"]
        )
    assert rc == 0, capsys.readouterr().err
    fit = bayesmix.load(model)
    assert fit.domains == ("数学", "émoji🙂", "books") and fit.targets == ("数学",)
    pred = fit.predict(np.array([[0.5, 0.3, 0.2]]), 1e-191, 1e211)
    assert np.isfinite(pred[["mean", "lower", "upper"]].to_numpy()).all()
    assert pred["mean"].iloc[0] == pytest.approx(frame["数学_loss"].median(), rel=0.5)
