"""The stacked ensemble of laws: weights, the mixed posterior, files, and every verb taking one."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmix
from bayesmix import cli
from bayesmix.posterior import MixedPosterior, Posterior
from bayesmix.stacking import Ensemble, candidate_laws, stacking_weights

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="module")
def pair():
    """The built-in example (simulated from the additive law) fitted with the additive and own-weight laws."""
    return bayesmix.load(GOLDEN / "example-additive.nc"), bayesmix.load(GOLDEN / "example-own_weight.nc")


@pytest.fixture(scope="module")
def stacked(pair):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bayesmix.ensemble(list(pair))


@pytest.fixture(scope="module")
def even(stacked):
    """The same two laws at equal weights, so that every draw-mixing path is exercised."""
    return dataclasses.replace(stacked, weights=np.array([0.5, 0.5]))


def test_stacking_puts_the_weight_on_the_law_the_data_came_from(stacked):
    w = dict(zip(stacked.names, stacked.weights))
    assert w["additive"] > 0.8, stacked.note
    assert "held-out-by-scale" in stacked.note
    assert stacked.scores.loc["additive", "elpd"] > stacked.scores.loc["own_weight", "elpd"]
    assert set(stacked.by_target.columns) == set(stacked.targets)
    np.testing.assert_allclose(stacked.by_target.sum(axis=0), 1.0, atol=1e-6)


def test_stacking_mixes_laws_that_are_each_right_somewhere():
    # Each law predicts half of the points well and the other half badly: the best single law is worse than a
    # mixture, so stacking gives both weight (where choosing the best law would not).
    rng = np.random.default_rng(0)
    good, bad = rng.normal(1.0, 0.1, 40), rng.normal(-6.0, 0.1, 40)
    scores = pd.DataFrame({"a": np.r_[good, bad], "b": np.r_[bad, good]})
    w, table = stacking_weights(scores)
    np.testing.assert_allclose(w, [0.5, 0.5], atol=0.05)
    # and one law better everywhere takes (nearly) all of it
    w, _ = stacking_weights(pd.DataFrame({"a": np.r_[good, good], "b": np.r_[bad, bad]}))
    assert w[0] > 0.99


def test_the_ensemble_posterior_is_the_mixture_of_the_laws_draws(pair, even):
    a, b = pair
    post = Posterior.from_fit(even)
    assert isinstance(post, MixedPosterior)
    counts = even.counts()
    assert counts.sum() == post.S and counts[0] == counts[1]
    h = np.full((3, 4), 0.25)
    h[1], h[2] = [0.4, 0.2, 0.2, 0.2], [0.1, 0.5, 0.2, 0.2]
    m = post.means(h, 2.7e9, 1e11).mean(0)
    parts = [Posterior.from_fit(f).thin(int(c)).means(h, 2.7e9, 1e11).mean(0) for f, c in zip(pair, counts)]
    np.testing.assert_allclose(m, 0.5 * (parts[0] + parts[1]), rtol=1e-9)
    # the laws disagree here, so a mixture is not either law
    assert np.abs(parts[0] - parts[1]).max() > 1e-3
    # draws are taken law by law
    with pytest.raises(ValueError, match="sorted"):
        post.take(np.array([post.S - 1, 0]))
    blocks = post.blocks(np.array([0, 1, post.S - 1]))
    assert [len(at) for _, at in blocks] == [2, 1]


@pytest.mark.filterwarnings("ignore::bayesmix.reach.PriorOnlyWarning")
def test_an_ensemble_round_trips_through_its_file(stacked, tmp_path):
    path = stacked.save(tmp_path / "ens.nc")
    back = bayesmix.load(path)
    assert isinstance(back, Ensemble)
    assert back.names == stacked.names
    np.testing.assert_allclose(back.weights, stacked.weights)
    pd.testing.assert_frame_equal(back.by_target, stacked.by_target, check_dtype=False)
    h = np.full((2, 4), 0.25)
    h[1] = [0.4, 0.2, 0.2, 0.2]
    pd.testing.assert_frame_equal(back.predict(h, 2.7e9, 1e11), stacked.predict(h, 2.7e9, 1e11))


def test_an_ensemble_mixes_fits_of_one_sweep_only(pair):
    a, b = pair
    with pytest.raises(ValueError, match="at least two"):
        bayesmix.ensemble([a])
    other = dataclasses.replace(b, table=b.table.subset(b.table.model_size < b.table.model_size.max()))
    with pytest.raises(ValueError, match="different run tables"):
        bayesmix.ensemble([a, other])
    with pytest.raises(ValueError, match="once"):
        bayesmix.ensemble([a, a])


def test_every_verb_that_takes_a_fit_takes_an_ensemble(even, tmp_path, capsys):
    path = str(even.save(tmp_path / "ens.nc"))
    mixes = tmp_path / "mixes.csv"
    pd.DataFrame(np.array([[0.25] * 4, [0.4, 0.2, 0.2, 0.2]]), columns=[f"weight_{d}" for d in even.domains]).to_csv(
        mixes, index=False
    )
    scale = ["--model-size", "2.7e9", "--tokens", "1e11"]
    assert cli.main(["predict", path, "--mixtures", str(mixes), *scale, "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == 2 * len(even.targets) and (pred.lower < pred["mean"]).all()
    curve = tmp_path / "c.csv"
    args = ["predict", path, "--mixtures", str(mixes), *scale, "--trajectory", "--out", str(curve)]
    assert cli.main(args + ["--plot", str(tmp_path / "c.png")]) == 0
    assert {"mixture", "target", "n_tokens", "pred_lower"} <= set(pd.read_csv(curve).columns)
    assert cli.main(["recommend", path, *scale, "--baseline", "0.4,0.2,0.2,0.2", "--out", str(tmp_path / "rec")]) == 0
    rec = pd.read_csv(tmp_path / "rec" / "recommendation.csv")
    assert abs(rec.filter(like="recommended").iloc[:, 0].sum() - 1) < 1e-6
    plan = [
        "next-run", path, *scale, "--propose", "20", "--sizes", "1.25e8,3.5e8",
        "--tokens-list", "2.5e9,7e9", "--batch", "2", "--budget-flops", "2e20", "--out", str(tmp_path / "plan"),
    ]  # fmt: skip
    assert cli.main(plan) == 0
    assert len(pd.read_csv(tmp_path / "plan" / "plan.csv")) >= 1
    assert cli.main(["check", path, "--out", str(tmp_path / "report"), "--no-figures", "--max-draws", "200"]) == 0
    capsys.readouterr()
    assert cli.main(["summary", path]) == 0
    out = capsys.readouterr().out
    assert "ensemble of additive (0.50), own_weight (0.50)" in out and "stacking weights per target" in out


def test_auto_leaves_out_what_the_sweep_cannot_identify(example_frame):
    table = bayesmix.read_runs(example_frame, quiet=True)
    laws, skipped = candidate_laws(table)
    assert "joint" in laws and "additive" in laws
    assert "capacity" in skipped  # left out of auto, with the reason
    one = table.subset(table.model_size == table.model_size.min())
    one = one.subset(one.token_fraction() >= 1 - 1e-9)
    laws, skipped = candidate_laws(one)
    assert "joint" not in laws and "model size" in skipped["joint"]


def test_fit_auto_fits_the_candidates_and_saves_their_ensemble(example_frame, tmp_path, monkeypatch, capsys):
    import bayesmix.stacking as ens_module

    monkeypatch.setattr(ens_module, "AUTO_LAWS", ("additive", "own_weight"))
    runs = tmp_path / "runs.csv"
    example_frame.to_csv(runs, index=False)
    out = tmp_path / "auto.nc"
    args = ["fit", str(runs), "--law", "auto", "--chains", "2", "--warmup", "100", "--draws", "100", "--out", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "fitting law 2 of 2: own_weight" in text and "weights by stacking" in text
    assert "left out capacity" in text
    model = bayesmix.load(out)
    assert isinstance(model, Ensemble) and model.names == ["additive", "own_weight"]
    assert all(f.holdouts is not None and len(f.holdouts) for f in model.fits)  # scored without refitting
    assert model.weights[0] > 0.5
