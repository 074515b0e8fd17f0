"""solve restarts SLSQP where it stopped short of a stationary point.

On the built-in example's posterior (the golden copy of the shipped fit),
SLSQP from two of the corners reported success 2% above the optimum on an AMD
EPYC. With the restarts every start reaches the same optimum, and the end is
first-order stationary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import bayesmix
from bayesmix.decide.constraints import build_constraints
from bayesmix.decide.objective import parse_risk, resolve_target_weights
from bayesmix.decide.problem import MixtureDecision
from bayesmix.decide.solver import projected_gradient_norm, solve
from bayesmix.posterior import Posterior

FIT = Path(__file__).resolve().parents[1] / "golden" / "example-additive.nc"


def test_every_start_reaches_one_stationary_optimum():
    fit = bayesmix.load(FIT)
    swept, _ = fit.table.mixtures()
    w, _ = resolve_target_weights(fit.targets, fit.domains, None, None)
    C = build_constraints(fit.domains, 2.4e10, baseline=[0.4, 0.2, 0.2, 0.2])
    prob = MixtureDecision(Posterior.from_fit(fit), w, swept=swept, bias_seed=0, slice_targets=True)
    f = prob.risk_fn(parse_risk("mean"), 1.2e9, 2.4e10)
    K = len(fit.domains)
    starts = [np.full(K, 1 / K), *np.eye(K), *np.random.default_rng(0).dirichlet(np.ones(K), size=4)]
    ends = [solve(f, C, C.project(h)) for h in starts]
    values = np.array([r.value for r in ends])
    assert values.max() - values.min() < 1e-9 * abs(values.min()), values
    for r in ends:
        _, g = f(r.h)
        assert projected_gradient_norm(C, r.h, g) <= 1e-4 * np.max(np.abs(g))
    # without restarts the same starts may stop early; they are never better than with them
    plain = np.array([solve(f, C, C.project(h), restarts=0).value for h in starts])
    assert np.all(plain >= values - 1e-12)
