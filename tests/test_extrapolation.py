"""The extrapolation error learned from nested hold-outs (bayesmix.extrapolation).

- the error model recovers known rates from errors simulated from it, and a
  target with no growth gets a small rate (no law involved);
- on sweeps simulated from the additive law, a law whose error grows with
  scale (a bias added beyond the second size, growing with the e-folds) gets
  a larger learned rate than the same sweep without it;
- the splits: nested by size, by token budget where budgets vary, none with
  two sizes (the prior alone, said in the note);
- predictions widen with the sd beyond the fitted range and not inside.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmix import extrapolation
from bayesmix.data import read_runs
from bayesmix.design import reference_scale
from bayesmix.extrapolation import efolds_beyond, holdout_splits, learn_extrapolation
from bayesmix.fit import resolve_priors
from bayesmix.inference import SamplerConfig, sample
from bayesmix.laws import additive as additive_law
from bayesmix.laws import get_law
from bayesmix.simulate import simulate_losses, sweep_design

DOMAINS = ("web", "code", "math")
SIZES = (4e7, 1e8, 2.5e8, 6e8)
TARGETS = tuple(DOMAINS)
TRUTH = additive_law.from_paper_parameters(
    E=np.array([1.9, 0.8, 1.2]),
    A=np.full(3, 0.35),
    alpha=np.array([0.34, 0.30, 0.36]),
    B=np.full(3, 0.30),
    beta=np.array([0.28, 0.30, 0.26]),
    w=0.08 + 0.6 * np.eye(3),
    gamma=np.full((3, 3), 0.4) + 0.15 * np.eye(3),
)


def sweep(rate: float, sizes=SIZES, seed: int = 0):
    """The recovery sweep; beyond the second size the log loss is raised by ``rate`` per e-fold past it."""
    d = sweep_design(DOMAINS, sizes, mixtures_per_size=10, checkpoints=5, tokens_per_param=20, seed=seed)
    frame = simulate_losses(
        get_law("additive"),
        d,
        DOMAINS,
        {**TRUTH, "sigma": np.full(3, 0.004), "tau_run": np.full(3, 0.003)},
        seed=seed + 1,
    )
    # the bias of a law that is wrong beyond the scales it was built on: it grows with the distance
    run_end = frame.groupby("run").n_tokens.transform("max")
    far = efolds_beyond(frame.model_size, run_end, sizes[1], 20 * sizes[1])
    for t in TARGETS:
        frame[f"{t}_loss"] *= np.exp(rate * far)
    return read_runs(frame, quiet=True)


def learn(table, seed: int = 0):
    law = get_law("additive")
    priors = resolve_priors(law, table.domains, TARGETS, None)
    N0, D0 = reference_scale(table.model_size), reference_scale(table.n_tokens)
    return learn_extrapolation(table, law, TARGETS, priors, N0, D0, seed=seed)


def test_error_model_recovers_known_rates():
    """Errors simulated from the error model: 6 targets, 3 hold-outs of 40 runs each."""
    rng = np.random.default_rng(0)
    T, G, n = 6, 3, 40
    shared = np.array([0.02, 0.03, 0.015, 0.025, 0.02, 0.0])
    mixture = np.array([0.01, 0.01, 0.02, 0.01, 0.015, 0.0])
    far = np.concatenate([np.full(n, 0.5 + g) + rng.uniform(0, 0.3, n) for g in range(G)])
    group = np.repeat(np.eye(G), n, axis=0)
    noise = np.full((G, T), 0.003**2)
    z = rng.standard_normal((G, T))
    err = far[:, None] * (group @ z * shared + rng.standard_normal((G * n, T)) * mixture)
    err += rng.standard_normal(err.shape) * 0.003
    args = (far, err, np.ones_like(err), group, noise, np.zeros(T))
    draws, _, _ = sample(extrapolation.error_model, args, SamplerConfig(chains=2, warmup=400, draws=400, seed=1))
    flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in draws.items()}
    q = extrapolation._rate(flat["log_rate_mixture"], flat["spread_mixture"], flat["z_mixture"], np.zeros(T))
    lo, hi = np.quantile(q, [0.025, 0.975], axis=0)
    # per-mixture rates are seen in 120 runs each: recovered inside their 95% intervals
    assert np.sum((lo[:5] <= mixture[:5]) & (mixture[:5] <= hi[:5])) >= 4, (lo, hi)
    # the last target never errs: its rate is far below the others'
    assert np.median(q[:, 5]) < 0.3 * np.median(q[:, :5])
    s = extrapolation._rate(flat["log_rate_shared"], flat["spread_shared"], flat["z_shared"], np.zeros(T))
    # shared rates: three looks per target, pooled; their typical size is right within a factor of 2
    assert 0.5 * 0.02 < np.median(s[:, :5]) < 2 * 0.025


def test_growing_error_gets_a_larger_rate():
    grows, flat = learn(sweep(rate=0.02)), learn(sweep(rate=0.0))
    assert np.all(grows.sd > 1.5 * flat.sd), (grows.sd, flat.sd)
    assert np.all(flat.sd < 0.01)
    assert "2 nested hold-outs" in grows.note and "sizes >= 6e+08" in grows.note
    assert list(grows.table.index) == list(TARGETS)
    assert np.all(grows.table.shared_lower <= grows.table.shared_upper)


def test_splits_are_nested_and_skip_what_cannot_be_held_out():
    table = sweep(rate=0.0)
    labels = [label for label, _ in holdout_splits(table)]
    assert labels == ["sizes >= 6e+08", "sizes >= 2.5e+08"]
    masks = [m for _, m in holdout_splits(table)]
    assert np.all(masks[1] <= masks[0])  # the second trains on a subset of the first's rows
    # two sizes: nothing to hold out; the rates come from their prior and the note says so
    two = sweep(rate=0.0, sizes=SIZES[:2])
    assert holdout_splits(two) == []
    out = learn(two)
    assert "the prior alone" in out.note
    assert np.all((out.sd > 0.005) & (out.sd < 0.1))


def test_token_budget_holdouts_where_budgets_vary():
    d = sweep_design(DOMAINS, (1e8, 2e8), mixtures_per_size=4, checkpoints=1, seed=0)
    parts = [d.assign(n_tokens=d.n_tokens * f, run=d.run + f"b{f}") for f in (0.25, 0.5, 1.0)]
    d = pd.concat(parts, ignore_index=True)
    frame = simulate_losses(get_law("additive"), d, DOMAINS, {**TRUTH, "sigma": np.full(3, 0.004)}, seed=1)
    labels = [label for label, _ in holdout_splits(read_runs(frame, quiet=True))]
    assert labels == ["the 1 largest token budget of each size"]


def test_predictions_widen_only_beyond_the_fitted_range(small_fit):
    f = small_fit
    inside_N, inside_D = float(np.median(f.table.model_size)), float(np.median(f.table.n_tokens))
    far_N, far_D = 10 * f.table.model_size.max(), 10 * f.table.n_tokens.max()
    h = np.full((1, len(f.domains)), 1 / len(f.domains))

    def width(N, D, sd):
        g = f.__class__(**{**f.__dict__, "extrapolation_sd": sd})
        d = g.predict_draws(h, N, D, seed=0)["mean"]
        return np.quantile(np.log(d), 0.95, axis=0) - np.quantile(np.log(d), 0.05, axis=0)

    np.testing.assert_allclose(width(inside_N, inside_D, 0.0), width(inside_N, inside_D, 0.05))
    assert np.all(width(far_N, far_D, 0.05) > width(far_N, far_D, 0.0) + 0.1)


def test_prior_alone_is_what_nuts_gives_without_holdouts():
    """The direct prior draws used with nothing to hold out agree with NUTS on the error model with no data."""
    T = 3
    ood = np.array([0.0, 0.0, 1.0])
    args = (np.zeros(1), np.zeros((1, T)), np.zeros((1, T)), np.ones((1, 1)), np.ones((1, T)), ood)
    draws, _, _ = sample(extrapolation.error_model, args, SamplerConfig(chains=2, warmup=500, draws=2000, seed=3))
    flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in draws.items()}
    direct = extrapolation._prior_draws(T, 20000, seed=0)
    for src in (flat, direct):
        src["rate"] = extrapolation._rate(src["log_rate_shared"], src["spread_shared"], src["z_shared"], ood)
    for t in range(T):
        a, b = np.log(flat["rate"][:, t]), np.log(direct["rate"][:, t])
        assert abs(np.median(a) - np.median(b)) < 0.15 and abs(np.std(a) / np.std(b) - 1) < 0.1, t
    # a target that is not a training domain gets a wider prior
    assert np.std(np.log(direct["rate"][:, 2])) > 1.3 * np.std(np.log(direct["rate"][:, 0]))


def test_error_likelihood_is_the_dense_gaussian_and_padding_adds_nothing():
    from numpyro.infer.util import log_density
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    T, n, G = 2, 12, 2
    far = rng.uniform(0.5, 2, n)
    g = rng.integers(0, G, n)
    group = np.eye(G)[g]
    err = rng.normal(0, 0.02, (n, T))
    mask = np.ones_like(err)
    mask[3, 1] = 0.0  # a missing loss
    noise = np.array([[1e-5, 4e-5], [2e-5, 1e-5]])
    ood = np.zeros(T)
    z = {"shared": np.array([0.1, -0.2]), "mixture": np.array([0.3, 0.0])}
    params = {"log_rate_shared": -4.0, "spread_shared": 0.3, "log_rate_mixture": -4.5, "spread_mixture": 0.2}
    params.update({f"z_{k}": v for k, v in z.items()})
    s = extrapolation._rate(-4.0, 0.3, z["shared"], ood)
    q = extrapolation._rate(-4.5, 0.2, z["mixture"], ood)
    dense = 0.0
    for k in range(G):
        for t in range(T):
            rows = (g == k) & (mask[:, t] > 0)
            f = far[rows]
            cov = s[t] ** 2 * np.outer(f, f) + np.diag(f**2 * q[t] ** 2 + noise[k, t])
            dense += multivariate_normal(np.zeros(rows.sum()), cov).logpdf(err[rows, t])

    def likelihood(args):
        full = float(log_density(extrapolation.error_model, args, {}, params)[0])
        no_data = (args[0], args[1], np.zeros_like(args[2]), args[3], args[4], args[5])
        return full - float(log_density(extrapolation.error_model, no_data, {}, params)[0])

    args = (far, err, mask, group, noise, ood)
    np.testing.assert_allclose(likelihood(args), dense, rtol=1e-9)
    np.testing.assert_allclose(likelihood(extrapolation._padded(*args)), dense, rtol=1e-9)


def test_holdout_refits_started_at_the_whole_tables_mode_find_the_same_modes(monkeypatch):
    # A fit's hold-out refits start at its own mode and the prior median (2 starts) instead of from 4 starts: the
    # hold-out errors, and so the learned rates, must be those of the 4-start search.
    import jax

    from bayesmix import inference
    from bayesmix.design import observed_from_table
    from bayesmix.model import make_model

    table = sweep(rate=0.02)
    law = get_law("additive")
    priors = resolve_priors(law, table.domains, TARGETS, None, True)
    N0, D0 = reference_scale(table.model_size), reference_scale(table.n_tokens)
    obs, _ = observed_from_table(table, TARGETS, N0, D0, np.unique(table.model_size), checkpoints=True)
    near = {}  # the whole table's mode per block, as a fit's mode search finds it (timing["blocks"][i]["mode"])
    for block in make_model(law, table.domains, TARGETS, priors, True).split(obs):
        comp = inference._compiled(block.model, block.args, block.signature)
        near[block.label] = inference.find_mode(comp, block.args, list(comp.starts(jax.random.PRNGKey(0), 4)))[0]
    assert set(near) == set(TARGETS)
    starts = []
    find_mode = inference.find_mode
    monkeypatch.setattr(
        inference, "find_mode", lambda comp, a, s, **kw: starts.append(len(s)) or find_mode(comp, a, s, **kw)
    )
    args = (table, law, TARGETS, priors, N0, D0)
    scratch = extrapolation.holdout_errors(*args, like=obs)
    assert set(starts) == {4}
    starts.clear()
    started = extrapolation.holdout_errors(*args, like=obs, near=near)
    assert set(starts) == {2}  # the whole table's mode and the prior median, in every block of every hold-out
    for a, b in zip(scratch, started, strict=True):
        np.testing.assert_allclose(b.error, a.error, atol=2e-4)
