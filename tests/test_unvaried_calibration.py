"""Predictions along a direction the sweep never varied carry the prior's spread, at the nominal rate.

Sweeps like RegMix's proxies: two model sizes, every run trained to the same
1e9 tokens. Each simulation draws the law's parameters from the fit's own
default priors (so the truth is as uncertain as the priors say), simulates
the sweep, fits it with the defaults and predicts at 25x the tokens and at
16x the model size. The true expected loss must fall inside the 90% interval
at about the nominal rate over the simulations: not far below (the old 1%
extrapolation sd covered a fraction of such points), and the intervals must
not be useless (coverage is reported beside their width).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayesmix
from bayesmix.checks.sbc import prior_draws
from bayesmix.design import reference_scale
from bayesmix.laws import get_law
from bayesmix.posterior import Posterior
from bayesmix.reach import PriorOnlyWarning
from bayesmix.simulate import simulate_losses, sweep_design

DOMAINS = ("web", "code", "math")
SIZES = (5e7, 1.25e8)
TOKENS = 1e9
SIMS = 10
POINTS = ((1.25e8, 25 * TOKENS), (16 * 1.25e8, TOKENS))


@pytest.mark.slow
def test_truth_inside_the_90pct_interval_at_about_the_nominal_rate():
    law = get_law("additive")
    design = sweep_design(DOMAINS, SIZES, mixtures_per_size=10, checkpoints=1, seed=0, concentration=2.0)
    design["n_tokens"] = TOKENS
    truths = prior_draws(law, DOMAINS, DOMAINS, SIMS, seed=11)
    h = np.random.default_rng(5).dirichlet(np.full(3, 2.0), size=4)
    hits, widths, used = [], [], 0
    for i in range(SIMS):
        p = {k: v[i] for k, v in truths.items()}
        frame = simulate_losses(law, design, DOMAINS, p, seed=100 + i)
        if not np.all(np.isfinite(frame[[f"{t}_loss" for t in DOMAINS]].to_numpy())):
            continue
        used += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bayesmix.fit(frame, "additive", chains=2, warmup=300, draws=300, seed=i, progress=False)
        N0, D0 = reference_scale(design.model_size), reference_scale(design.n_tokens)
        truth = Posterior.point(law, DOMAINS, DOMAINS, p, N0, D0)
        for N, D in POINTS:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pred = fit.predict(h, N, D, interval=0.9, seed=i)
            # the token direction was never varied (the size direction was, by two sizes)
            assert any(issubclass(w.category, PriorOnlyWarning) for w in caught) == (D > TOKENS)
            true = truth.means(h, N, D)[0].ravel()  # (mixture, target) in predict's row order
            hits.append((D > TOKENS, (pred.lower.to_numpy() <= true) & (true <= pred.upper.to_numpy())))
            widths.append((D > TOKENS, ((pred.upper - pred.lower) / pred["mean"]).to_numpy()))
    assert used >= SIMS - 2
    for tokens_axis in (True, False):
        coverage = np.mean(np.concatenate([x for a, x in hits if a == tokens_axis]))
        width = np.median(np.concatenate([x for a, x in widths if a == tokens_axis]))
        print(f"{'25x tokens' if tokens_axis else '16x size'}: coverage {coverage:.2f}, median width {width:.2f}")
    coverage = np.mean(np.concatenate([x for _, x in hits]))
    width = np.median(np.concatenate([x for _, x in widths]))
    # 10 sweeps x 2 points x 4 mixtures x 3 targets, strongly correlated within a sweep: about 20 independent looks
    assert 0.75 <= coverage <= 1.0, (coverage, width)
    assert width < 1.5, (coverage, width)  # the median interval is narrower than 150% of the loss
    print(f"coverage {coverage:.2f}, median width {width:.2f} of the loss over {used} sweeps")
