"""Recommending a mixture: known optima, exact constraints, paired comparisons, risk, errors.

Every test builds a Fit by hand from synthetic posterior draws of the
additive law (written in the paper's coordinates by a test-only law), chosen
so that the right answer is known in closed form or by an independent numpy
computation; no NUTS is run.
"""

from __future__ import annotations

import logging

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import bayesmix
from bayesmix.data import read_runs
from bayesmix.decide import Recommendation, Risk, parse_risk, recommend
from bayesmix.decide.constraints import InfeasibleMixtureError, build_constraints
from bayesmix.design import reference_scale
from bayesmix.diagnostics import Diagnostics
from bayesmix.fit import Fit
from bayesmix.inference import SamplerConfig
from bayesmix.laws.base import Law, Param
from bayesmix.model import all_params
from bayesmix.priors import log_normal_around
from bayesmix.simulate import simulate_losses, sweep_design

SIZES = (1e8, 3e8)  # fitted sizes; tokens up to 20 N = 6e9
# Fits of the same shape share compiled code: most two-domain tests use S2 draws and ARGMIN subsampled draws.
S2 = 500
ARGMIN = 20


class PaperAdditive(Law):
    """The additive law in the paper's own coordinates (test-only, not registered).

        L = E + 1 / sum_j w_j (K h_j)^gamma_j + A (N/N0)^-alpha + B (D/D0)^-beta

    Why a law of our own: the tests need draws whose optimum is known in
    closed form, written in fixed coordinates; the registered laws may change
    how they are sampled without changing what they predict.
    """

    name = "test_paper_additive"
    title = "Additive law, paper coordinates (tests)"
    reference = "Shukor et al. 2025"
    formula = "E + 1/sum_j w_j (K h_j)^gamma_j + A (N/N0)^-alpha + B (D/D0)^-beta"
    min_mixtures = 3

    def params(self, domains, targets):
        flat = log_normal_around(0.3, 3.0, "unused by the tests")
        return {
            "E": Param(("target",), flat, "irreducible loss"),
            "w": Param(("target", "domain"), flat, "mixture weights"),
            "gamma": Param(("target", "domain"), flat, "mixture exponents"),
            "A": Param(("target",), flat, "size term at N0"),
            "alpha": Param(("target",), flat, "size exponent"),
            "B": Param(("target",), flat, "token term at D0"),
            "beta": Param(("target",), flat, "token exponent"),
        }

    def mean(self, p, x):
        K = x.h.shape[-1]
        term = 1.0 / jnp.sum(p["w"][None] * (K * x.h[:, None, :]) ** p["gamma"][None], axis=-1)  # (M, T)
        scale = p["A"] * (x.N / x.N0)[:, None] ** -p["alpha"] + p["B"] * (x.D / x.D0)[:, None] ** -p["beta"]
        return p["E"] + term[x.mix] + scale


LAW = PaperAdditive()


def synthetic_fit(draws: dict[str, np.ndarray], domains, targets, seed: int = 0, law: Law = LAW) -> Fit:
    """A Fit whose posterior is exactly ``draws`` (site -> (S, ...)); no sampling."""
    design = sweep_design(domains, SIZES, 6, 3, seed=seed)
    frame = simulate_losses(law, design, targets, {k: v[0] for k, v in draws.items()}, seed=seed)
    logging.getLogger("bayesmix").setLevel(logging.ERROR)
    table = read_runs(frame)
    S = next(iter(draws.values())).shape[0]
    spec = all_params(law, domains, targets)
    return Fit(
        law=law,
        table=table,
        targets=tuple(targets),
        priors={k: p.prior for k, p in spec.items()},
        config=SamplerConfig(chains=1, warmup=0, draws=S),
        N0=reference_scale(table.model_size),
        D0=reference_scale(table.n_tokens),
        sizes=np.unique(table.model_size),
        draws={k: np.asarray(v, float)[None] for k, v in draws.items()},
        sample_stats={"diverging": np.zeros((1, S), bool)},
        diagnostics=Diagnostics(0, S, 0, 1.0, 1e4, 1e4),
    )


def additive_draws(S, w, gamma, rng, E=None):
    """Draws for one target: mixture weights w (S, K), exponents gamma (S, K); the rest random."""
    one = lambda lo, hi: rng.uniform(lo, hi, (S, 1))  # noqa: E731
    return {
        "E": one(1.0, 3.0) if E is None else E,
        "w": w[:, None, :],
        "gamma": gamma[:, None, :],
        "A": one(0.2, 0.4),
        "alpha": one(0.25, 0.35),
        "B": one(0.2, 0.4),
        "beta": one(0.25, 0.35),
        "sigma": np.full((S, 1), 0.01),
        "tau_run": np.full((S, 1), 0.005),
    }


DOMAINS4 = ("a", "b", "c", "d")
W0 = np.array([1.0, 2.0, 3.0, 0.5])


@pytest.fixture(scope="module")
def analytic_fit():
    """All draws share the shape of the mixture term: w_s = c_s W0, gamma = 1/2, so every draw's argmin is h ∝ W0^2."""
    rng = np.random.default_rng(0)
    S = 400
    c = rng.lognormal(0.0, 0.3, (S, 1))
    return synthetic_fit(additive_draws(S, c * W0, np.full((S, 4), 0.5), rng), DOMAINS4, ["val"])


def analytic_optimum(lo=None, hi=None, b=None, max_tv=None):
    """argmax sum_j W0_j h_j^(1/2) on the constrained simplex, by scipy on the closed-form objective (independent of
    jax and the law code)."""
    K = len(W0)
    lo = np.zeros(K) if lo is None else lo
    hi = np.ones(K) if hi is None else hi
    n = 2 * K if max_tv is not None else K
    cons = [{"type": "eq", "fun": lambda x: x[:K].sum() - 1}]
    if max_tv is not None:
        cons += [
            {"type": "ineq", "fun": lambda x: x[K:] - (x[:K] - b)},
            {"type": "ineq", "fun": lambda x: x[K:] + (x[:K] - b)},
            {"type": "ineq", "fun": lambda x: 2 * max_tv - x[K:].sum()},
        ]
    x0 = np.concatenate([np.full(K, 1 / K), np.abs(1 / K - b) + 0.01]) if max_tv is not None else np.full(K, 1 / K)
    bounds = [(max(l, 1e-12), u) for l, u in zip(lo, hi)] + [(0, 1)] * (n - K)
    res = minimize(
        lambda x: -np.sum(W0 * np.sqrt(x[:K])),
        x0,
        bounds=bounds,
        constraints=cons,
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    return res.x[:K]


def test_finds_the_analytic_optimum_with_every_draw_agreeing(analytic_fit):
    rec = recommend(analytic_fit, 1e9, 3e10, starts=4, argmin_draws=ARGMIN, path_points=3, seed=1)
    truth = W0**2 / np.sum(W0**2)
    np.testing.assert_allclose(rec.weights, truth, atol=2e-5)
    # Every draw has the same argmin: the posterior over the argmin collapses onto it and the regret is ~0.
    np.testing.assert_allclose(rec.argmin_draws, np.tile(truth, (ARGMIN, 1)), atol=2e-4)
    assert rec.regret_draws.max() < 1e-6
    # At the optimum the projected gradient vanishes; SLSQP stops within ~1e-5 of
    # it in h, and the curvature there (up to ~50 for the smallest weight)
    # turns that into a projected gradient of up to ~1e-3 of the free one.
    assert rec.check["projected_gradient_norm"] < 1e-3 * rec.check["free_gradient_norm"] + 1e-6
    assert rec.check["starts_max_tv"] < 1e-3  # every start ends within SLSQP's precision of the optimum
    # The additive law's optimum does not move with scale; the path must say so.
    assert rec.path.tv_to_recommended.max() < 1e-4
    # Without a baseline the comparisons are left out, not faked.
    assert np.isnan(rec.p_beats_baseline) and "p_beats_baseline" not in rec.metrics
    assert "baseline" not in rec.summary() and len(rec.plot_losses().axes) == 1


def test_floors_caps_and_token_availability_give_the_constrained_optimum_exactly(analytic_fit):
    D = 3e10
    # Unconstrained h ∝ W0^2 = (1, 4, 9, 0.25)/14.25. c's unique tokens cap it at 1.5e9 x 4 / 3e10 = 0.2,
    # b is capped at 0.25 and d floored at 0.2; all three bind (KKT: the marginal gain W0_j / (2 sqrt(h_j))
    # is 3.35 and 2 at the caps, 0.56 at the floor, against 0.85 for the free domain a), so h = (0.35, 0.25, 0.2, 0.2).
    rec = recommend(
        analytic_fit,
        1e9,
        D,
        floors={"d": 0.2},
        caps={"b": 0.25},
        unique_tokens={"c": 1.5e9},
        max_epochs=4,
        starts=4,
        argmin_draws=ARGMIN,
        path_points=2,
    )
    C = rec.constraints
    assert C.upper[2] == pytest.approx(0.2) and C.upper_source[2] == "unique tokens"
    assert C.violations(rec.weights, tol=1e-12) == []
    for h in np.vstack([rec.argmin_draws, rec.path[list(DOMAINS4)].to_numpy()]):
        assert C.violations(h, tol=1e-12) == []
    np.testing.assert_allclose(
        analytic_optimum(lo=np.array([0, 0, 0, 0.2]), hi=np.array([1, 0.25, 0.2, 1])), [0.35, 0.25, 0.2, 0.2], atol=1e-6
    )
    np.testing.assert_allclose(rec.weights, [0.35, 0.25, 0.2, 0.2], atol=1e-12)
    tab = rec.table.set_index("domain")
    assert (
        tab.loc["c", "at_bound"] == "unique tokens"
        and tab.loc["b", "at_bound"] == "cap"
        and tab.loc["d", "at_bound"] == "floor"
    )


def test_distance_from_baseline_is_respected_and_binds(analytic_fit):
    base = np.full(4, 0.25)
    rec = recommend(analytic_fit, 1e9, 3e10, baseline=base, max_tv=0.1, starts=4, argmin_draws=ARGMIN, path_points=2)
    tv = 0.5 * np.abs(rec.weights - base).sum()
    assert tv <= 0.1 + 1e-12 and tv == pytest.approx(0.1, abs=1e-9)  # the unconstrained optimum is farther away
    assert abs(rec.weights.sum() - 1) < 1e-12
    for h in rec.argmin_draws:
        assert 0.5 * np.abs(h - base).sum() <= 0.1 + 1e-12
    np.testing.assert_allclose(rec.weights, analytic_optimum(b=base, max_tv=0.1), atol=5e-5)


def two_domain_fit(S=S2, frac_a=0.7, seed=0):
    """Linear mixture terms (gamma = 1): a share frac_a of draws prefers domain x, the rest domain y; E varies a lot."""
    rng = np.random.default_rng(seed)
    n_a = int(round(frac_a * S))
    w = np.vstack([np.tile([2.0, 1.0], (n_a, 1)), np.tile([1.0, 2.0], (S - n_a, 1))])
    return synthetic_fit(additive_draws(S, w, np.ones((S, 2)), rng), ("x", "y"), ["val"])


@pytest.mark.parametrize("tokens", [3e9, 3e11])  # inside the fitted range, and far beyond it (bias on)
def test_probability_of_beating_the_baseline_is_paired_and_exact(tokens):
    fit = two_domain_fit()
    rec = recommend(fit, 3e8, tokens, baseline=[0.5, 0.5], floors=0.1, starts=3, argmin_draws=ARGMIN, path_points=2)
    # At h = (1/2, 1/2) both kinds of draw have the same mixture term, so any h with h_x > 1/2 beats the
    # baseline in exactly the 70% of draws that prefer x, whatever E and the bias do: P is 0.7 exactly.
    assert rec.weights[0] > 0.5
    assert rec.p_beats_baseline == pytest.approx(0.7, abs=1e-12)
    # Unpaired, the answer would be near 1/2: the spread of E swamps the mixture effect.
    L, B = rec.objective_draws, rec.baseline_objective_draws
    assert abs(np.mean(L[:, None] < B[None, :]) - 0.5) < 0.1
    # The same draws and the same bias at both mixtures (paired), checked against the closed form in numpy.
    p = fit.flat_draws()
    law = lambda m: p["E"][:, 0] + 1.0 / (p["w"][:, 0, :] * 2 * m[None, :]).sum(1) + _scale_terms(fit, p, 3e8, tokens)  # noqa: E731
    base = np.array([0.5, 0.5])
    bias = rec.loss_draws[:, 0] / law(rec.weights)
    np.testing.assert_allclose(rec.baseline_loss_draws[:, 0] / law(base), bias, rtol=1e-10)
    if tokens <= 6e9:
        np.testing.assert_allclose(bias, 1.0, rtol=1e-12)  # inside the fitted range there is no bias
    np.testing.assert_allclose(rec.improvement_draws, bias * (law(base) - law(rec.weights)), rtol=1e-8, atol=1e-12)
    assert rec.metrics["improvement"] == pytest.approx(rec.improvement_draws.mean())
    losses = rec.losses.set_index("target")
    assert losses.loc["objective", "p_beats_baseline"] == pytest.approx(0.7, abs=1e-12)


def _scale_terms(fit, p, N, D):
    return p["A"][:, 0] * (N / fit.N0) ** -p["alpha"][:, 0] + p["B"][:, 0] * (D / fit.D0) ** -p["beta"][:, 0]


def test_losses_are_those_of_predict_draws():
    fit = two_domain_fit()
    rec = recommend(fit, 2e9, 1e11, baseline="0.4,0.6", starts=2, argmin_draws=ARGMIN, path_points=2, seed=5)
    pred = fit.predict_draws(np.stack([rec.weights, [0.4, 0.6]]), 2e9, 1e11, seed=5)["mean"]
    np.testing.assert_allclose(rec.loss_draws, pred[:, 0, :], rtol=1e-12)
    np.testing.assert_allclose(rec.baseline_loss_draws, pred[:, 1, :], rtol=1e-12)
    assert rec.extrapolation["efolds"] > 0


def risky_fit(S=S2, seed=0):
    """Domain x is known to help (w = 1); domain y helps more on average but is very uncertain."""
    rng = np.random.default_rng(seed)
    w = np.column_stack([np.ones(S), rng.lognormal(np.log(1.2), 0.9, S)])
    return synthetic_fit(additive_draws(S, w, np.full((S, 2), 0.5), rng, E=np.full((S, 1), 2.0)), ("x", "y"), ["val"])


def test_risk_aware_objectives_move_toward_the_safe_domain():
    fit = risky_fit()
    kw = dict(starts=3, argmin_draws=ARGMIN, path_points=2)
    N, D = 3e8, 6e9  # the fitted scale: no extrapolation bias, so the grid below is exact
    mean = recommend(fit, N, D, risk="mean", **kw)
    cvar = recommend(fit, N, D, risk="cvar:0.9", **kw)
    q = recommend(fit, N, D, risk="quantile:0.9", **kw)
    # Independent check on a fine grid of h_x with the per-draw losses recomputed in numpy.
    p = fit.flat_draws()
    grid = np.linspace(0.001, 0.999, 1999)
    H = np.column_stack([grid, 1 - grid])
    L = (
        p["E"][:, 0, None]
        + 1.0 / (p["w"][:, 0, None, :] * np.sqrt(2 * H)[None]).sum(-1)
        + _scale_terms(fit, p, N, D)[:, None]
    )
    assert mean.weights[0] == pytest.approx(grid[np.argmin(L.mean(0))], abs=1e-3)
    cv = Risk("cvar", 0.9)
    assert cvar.weights[0] == pytest.approx(grid[np.argmin([cv.value(L[:, i]) for i in range(len(grid))])], abs=1e-3)
    # The expected direction: guarding against the bad draws puts more weight on the safe domain.
    assert cvar.weights[0] > mean.weights[0] + 0.05
    assert q.weights[0] > mean.weights[0] + 0.05
    # Each is optimal for its own objective.
    assert cv.value(cvar.objective_draws) <= cv.value(mean.objective_draws) + 1e-12
    assert mean.objective_draws.mean() <= cvar.objective_draws.mean() + 1e-12
    assert cvar.metrics["risk_value"] == pytest.approx(cv.value(cvar.objective_draws))


def test_weighted_targets_and_single_target_resolve():
    rng = np.random.default_rng(3)
    S = S2
    d = additive_draws(S, np.tile([1.0, 2.0], (S, 1)), np.full((S, 2), 0.5), rng)
    d2 = {k: np.concatenate([v, v], axis=1) for k, v in d.items()}
    d2["w"] = np.concatenate([np.tile([[[1.0, 2.0]]], (S, 1, 1)), np.tile([[[2.0, 1.0]]], (S, 1, 1))], axis=1)
    fit = synthetic_fit(d2, ("x", "y"), ["x", "y"])
    only_x = recommend(fit, 3e8, 6e9, target="x", starts=2, argmin_draws=ARGMIN, path_points=2)
    np.testing.assert_allclose(only_x.weights, [0.2, 0.8], atol=2e-5)  # h ∝ w^2
    both = recommend(fit, 3e8, 6e9, target_weights="x=1,y=1", starts=3, argmin_draws=ARGMIN, path_points=2)
    np.testing.assert_allclose(both.weights, [0.5, 0.5], atol=2e-5)  # symmetric sum
    np.testing.assert_allclose(both.objective_draws, both.loss_draws.sum(1))
    with pytest.raises(ValueError, match="unknown target 'z'"):
        recommend(fit, 3e8, 6e9, target="z")
    with pytest.raises(ValueError, match="either target or target_weights"):
        recommend(fit, 3e8, 6e9, target="x", target_weights="y=1")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(floors={"a": 0.6, "b": 0.6}), "floors sum to 1.2"),
        (
            dict(unique_tokens="a=1e9,b=1e9,c=1e9,d=1e9", max_epochs=2),
            "caps sum to 0.2667 < 1.*a: 0.06667 \\(unique tokens 1e\\+09 x 2 epochs",
        ),
        (dict(floors={"c": 0.3}, caps={"c": 0.2}), "floor above cap for c"),
        (
            dict(baseline=[0.7, 0.1, 0.1, 0.1], caps=0.4, max_tv=0.1),
            "nearest mixture meeting the floors and caps is 0.3",
        ),
        (dict(max_tv=0.1), "needs a baseline"),
        (dict(risk="cvar:1.5"), "strictly between 0 and 1"),
        (dict(risk="worst"), "use 'mean', 'quantile:Q' or 'cvar:A'"),
        (dict(caps={"e": 0.5}), "unknown domain 'e'"),
        (dict(baseline="0.5,0.5"), "2 values but there are 4 domains"),
    ],
)
def test_bad_or_infeasible_constraints_error_clearly(analytic_fit, kwargs, message):
    with pytest.raises(ValueError, match=message):
        recommend(analytic_fit, 1e9, 3e10, **kwargs)


def test_infeasible_is_its_own_error_type(analytic_fit):
    with pytest.raises(InfeasibleMixtureError):
        recommend(analytic_fit, 1e9, 3e10, floors=0.3)


def test_projection_is_the_nearest_feasible_point():
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 20:
        K = int(rng.integers(2, 7))
        doms = [f"d{i}" for i in range(K)]
        b = rng.dirichlet(np.ones(K))
        try:
            C = build_constraints(
                doms,
                1e10,
                floors=rng.uniform(0, 0.3 / K, K),
                caps=rng.uniform(1.5 / K, 1, K),
                baseline=b,
                max_tv=float(rng.uniform(0.05, 0.4)),
            )
        except InfeasibleMixtureError:
            continue
        checked += 1
        z = rng.normal(1 / K, 0.4, K)
        h = C.project(z)
        assert C.violations(h, tol=1e-12) == []
        # No feasible point is nearer: check against many random feasible points.
        cand = np.array([C.project(rng.normal(1 / K, 0.4, K)) for _ in range(100)])
        assert np.sum((h - z) ** 2) <= np.min(np.sum((cand - z) ** 2, axis=1)) + 1e-12


def test_risk_weights():
    for spec in ("mean", "quantile:0.9", "cvar:0.8"):
        r = parse_risk(spec)
        assert r.weights(1000).sum() == pytest.approx(1.0)
        assert r.spec == spec
    x = np.arange(1000.0)
    assert parse_risk("cvar:0.8").value(x) == pytest.approx(x[800:].mean())
    assert parse_risk("quantile:0.9").value(x) == pytest.approx(np.quantile(x, 0.9), abs=1.0)


def test_result_object_tables_text_and_figures(analytic_fit, tmp_path):
    rec = recommend(analytic_fit, 1e9, 3e10, baseline=np.full(4, 0.25), starts=3, argmin_draws=ARGMIN, path_points=3)
    assert isinstance(rec, Recommendation)
    assert list(rec.table.domain) == list(DOMAINS4)
    assert {"recommended", "baseline", "optimum_lower", "optimum_upper", "outside_sweep"} <= set(rec.table.columns)
    assert set(rec.losses.target) == {"val", "objective"}
    assert len(rec.path) == 3 and rec.path.model_size.iloc[-1] == 1e9
    text = rec.summary()
    assert "P(recommended beats baseline)" in text and "expected regret" in text
    files = rec.save(tmp_path / "rec")
    names = {f.name for f in files}
    assert {
        "recommendation.csv",
        "losses.csv",
        "path.csv",
        "weights.png",
        "losses.png",
        "path.png",
        "summary.txt",
    } <= names
    back = pd.read_csv(tmp_path / "rec" / "recommendation.csv")
    np.testing.assert_allclose(back.recommended, rec.weights)


def test_cli_recommend_writes_tables_and_figures(analytic_fit, tmp_path, capsys, monkeypatch):
    """The verb end to end on a saved model."""
    from bayesmix.cli import main
    from bayesmix.laws import registry

    # Register the test law for this test only, so that the saved model loads by its name.
    monkeypatch.setitem(registry._LAWS, LAW.name, PaperAdditive)
    model = analytic_fit.save(tmp_path / "m.nc")
    out = tmp_path / "rec"
    code = main(
        [
            "recommend",
            model,
            "--model-size",
            "1e9",
            "--tokens",
            "3e10",
            "--target",
            "val",
            "--baseline",
            "0.25,0.25,0.25,0.25",
            "--floor",
            "d=0.1",
            "--cap",
            "0.6",
            "--starts",
            "1",
            "--argmin-draws",
            str(ARGMIN),
            "--path-points",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Recommended mixture" in printed and "P(recommended beats baseline)" in printed
    tab = pd.read_csv(out / "recommendation.csv")
    assert (
        tab.recommended.sum() == pytest.approx(1.0)
        and tab.recommended.iloc[3] >= 0.1 - 1e-12
        and tab.recommended.max() <= 0.6 + 1e-12
    )
    assert (out / "weights.png").stat().st_size > 0
    code = main(["recommend", model, "--model-size", "1e9", "--tokens", "3e10", "--floor", "0.3"])
    assert code == 2
    assert "floors sum to 1.2" in capsys.readouterr().err


def test_top_level_recommend_is_the_function(analytic_fit):
    a = bayesmix.recommend(analytic_fit, 1e9, 3e10, starts=2, argmin_draws=8, path_points=2, seed=1)
    b = recommend(analytic_fit, 1e9, 3e10, starts=2, argmin_draws=8, path_points=2, seed=1)
    np.testing.assert_array_equal(a.weights, b.weights)
