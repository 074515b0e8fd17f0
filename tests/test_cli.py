"""The command line: verbs, output schema, and one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmix.cli import main

pytestmark = pytest.mark.slow

SCHEMA = ["mixture", "target", "mean", "median", "lower", "upper", "pred_lower", "pred_upper", "interval"]


@pytest.fixture(scope="module")
def model_path(small_fit, tmp_path_factory):
    return small_fit.save(tmp_path_factory.mktemp("models") / "example-additive.nc")


def test_predict_writes_the_stable_schema(model_path, tmp_path):
    mixes = tmp_path / "mixes.csv"
    pd.DataFrame({"web": [0.25, 0.7], "code": [0.25, 0.1], "books": [0.25, 0.1], "math": [0.25, 0.1]}).to_csv(
        mixes, index=False
    )
    out = tmp_path / "pred.csv"
    rc = main(
        [
            "predict",
            str(model_path),
            "--mixtures",
            str(mixes),
            "--model-size",
            "2.7e9",
            "--tokens",
            "1e11",
            "--interval",
            "0.8",
            "--target-weights",
            "web=0.5,code=0.5",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    pred = pd.read_csv(out)
    assert list(pred.columns[: len(SCHEMA)]) == SCHEMA
    assert len(pred) == 2 * 5  # 4 targets + the weighted one, per mixture
    assert (pred.interval == 0.8).all()
    assert (pred.lower <= pred["median"]).all() and (pred["median"] <= pred.upper).all()
    # predictive intervals add run offsets and noise, but far from the data the
    # parameter uncertainty dominates, so they are only as wide up to the Monte
    # Carlo error of quantiles from a few hundred draws (a few percent)
    assert ((pred.pred_upper - pred.pred_lower) >= 0.9 * (pred.upper - pred.lower)).all()
    assert (pred.pred_upper - pred.pred_lower).mean() >= 0.97 * (pred.upper - pred.lower).mean()
    for m in (0, 1):
        sub = pred[pred.mixture == m].set_index("target")
        assert sub.loc["weighted", "mean"] == pytest.approx(
            0.5 * sub.loc["web", "mean"] + 0.5 * sub.loc["code", "mean"], rel=1e-6
        )


def test_predict_unknown_domain_is_one_clear_line(model_path, tmp_path, capsys):
    mixes = tmp_path / "mixes.csv"
    pd.DataFrame({"web": [0.5], "cooking": [0.5]}).to_csv(mixes, index=False)
    rc = main(["predict", str(model_path), "--mixtures", str(mixes), "--model-size", "1e9", "--tokens", "1e10"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "cooking" in err and "bayesmix: error:" in err and "Traceback" not in err


def test_missing_model_file(tmp_path, capsys):
    rc = main(["summary", str(tmp_path / "none.nc")])
    assert rc == 2 and "no such model file" in capsys.readouterr().err


def test_summary_prints_law_priors_and_parameters(model_path, capsys):
    assert main(["summary", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "Additive law" in out and "priors:" in out and "gamma_dev[web, web]" in out and "diagnostics:" in out


def test_fit_verb_saves_a_model_and_rejects_bad_tables(example_frame, tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    example_frame.to_csv(runs, index=False)
    out = tmp_path / "m.nc"
    rc = main(
        [
            "fit",
            str(runs),
            "--law",
            "own_weight",
            "--chains",
            "1",
            "--warmup",
            "30",
            "--draws",
            "30",
            "--prior",
            "alpha=LogNormal(-1.2, 0.3)",
            "--min-fraction",
            "0.5",
            "--extrapolation-sd",
            "0.02",
            "--out",
            str(out),
            "--profile",
        ]
    )
    assert rc == 0 and out.exists()
    printed = capsys.readouterr().out
    # --profile: every phase, then one row per sampled block (the example's four targets)
    for phase in ("mode", "compile", "warmup", "sampling", "extrapolation", "save", "total"):
        assert f"  {phase} " in printed, phase
    assert "steps_per_draw" in printed and "ess_per_second" in printed
    assert all(f"\n  {t} " in printed for t in ("web", "code", "books", "math"))
    import bayesmix

    f = bayesmix.load(out)
    assert str(f.priors["alpha"]) == "LogNormal(-1.2, 0.3)"
    # --min-fraction drops the checkpoints before half of each run's tokens, and says so
    assert f.table.n_rows < len(example_frame) and any("min_fraction" in n for n in f.table.notes)
    np.testing.assert_allclose(f.extrapolation_sd, 0.02)

    bad = example_frame.copy()
    bad.loc[4, "weight_web"] += 0.2
    bad.to_csv(runs, index=False)
    capsys.readouterr()
    assert main(["fit", str(runs), "--chains", "1", "--warmup", "5", "--draws", "5"]) == 2
    err = capsys.readouterr().err
    assert "row 5" in err and "runs.csv" in err


def test_unknown_prior_name_is_an_error(example_frame, tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    example_frame.to_csv(runs, index=False)
    assert main(["fit", str(runs), "--prior", "zeta=Normal(0, 1)", "--draws", "5", "--warmup", "5"]) == 2
    assert "no parameter 'zeta'" in capsys.readouterr().err
