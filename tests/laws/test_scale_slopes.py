"""The shared scale terms (``bayesmix.laws.components``): written through their slopes, equal to Chinchilla's form,
and kept positive far beyond a sweep where a draw's floor is negative."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from bayesmix.data import read_runs
from bayesmix.example import example_table
from bayesmix.laws import get_law
from bayesmix.laws.base import Inputs
from bayesmix.laws.components import (
    decay,
    paper_scale_terms,
    positive,
    scale_coordinates,
    scale_factor,
    scale_shares,
)
from bayesmix.reach import FloorWarning, floor_note


def test_scale_factor_is_chinchillas_form():
    rng = np.random.default_rng(0)
    F, A, B = rng.uniform(0.5, 2, 5), rng.uniform(0.1, 1, 5), rng.uniform(0.1, 1, 5)
    alpha, beta = rng.uniform(0.05, 0.6, 5), rng.uniform(0.05, 0.6, 5)
    L_ref = F + A + B
    p = scale_coordinates(A, alpha, B, beta, L_ref)
    x, y = rng.uniform(0.1, 30, (7, 1)), rng.uniform(0.1, 30, (7, 1))  # N/N0 and D/D0
    got = np.asarray(scale_factor({k: jnp.asarray(v) for k, v in p.items()}, jnp.log(x), jnp.log(y)))
    np.testing.assert_allclose(got, (F + A * x**-alpha + B * y**-beta) / L_ref, rtol=1e-12)
    share = scale_shares(p)
    np.testing.assert_allclose(share["A"], A / L_ref, rtol=1e-12)
    np.testing.assert_allclose(share["floor"], F / L_ref, rtol=1e-12)
    back = paper_scale_terms({**p, "L_ref": L_ref})
    for name, value in {"F": F, "A": A, "alpha": alpha, "B": B, "beta": beta}.items():
        np.testing.assert_allclose(back[name], value, rtol=1e-12)


def test_decay_reaches_its_log_linear_limit():
    x = jnp.linspace(-3, 3, 13)
    np.testing.assert_allclose(np.asarray(decay(jnp.asarray(1e-9), x)), np.asarray(x), atol=1e-8)
    np.testing.assert_allclose(np.asarray(decay(jnp.asarray(0.3), x)), (1 - np.exp(-0.3 * np.asarray(x))) / 0.3)


def test_positive_is_exact_inside_a_sweep_and_positive_beyond():
    x = jnp.linspace(0.3, 3.0, 50)  # a loss over its reference, inside a sweep
    np.testing.assert_allclose(np.asarray(positive(x)), np.asarray(x), rtol=1e-12)
    below = np.asarray(positive(jnp.asarray([0.0, -0.1, -0.5, -1.0])))
    assert np.all(below > 0) and np.all(np.diff(below) < 0)
    assert below[0] == pytest.approx(0.01 * np.log(2))


@pytest.mark.parametrize("law", ["additive", "own_weight", "bimix", "joint"])
def test_a_negative_floor_keeps_the_loss_positive_far_out(law):
    """A draw whose floor is below 0 (slopes that barely slow down), taken 10 e-folds beyond the reference."""
    L = get_law(law)
    domains, targets = ("a", "b"), ("a", "b")
    p = {}
    for name, par in L.params(domains, targets).items():
        shape = tuple({"target": 2, "domain": 2}[d] for d in par.dims)
        p[name] = jnp.full(shape, 0.5 if par.prior.family == "Dirichlet" else 0.1)
    p.update(slope_N=jnp.full(2, 0.2), alpha=jnp.full(2, 0.1), slope_D=jnp.full(2, 0.1), beta=jnp.full(2, 0.1))
    p["L_ref"] = jnp.full(2, 2.5)
    assert np.all(np.asarray(scale_shares(p)["floor"]) < 0)
    N = jnp.asarray([1.0, np.exp(10.0)])
    x = Inputs(h=jnp.asarray([[0.5, 0.5]]), mix=jnp.zeros(2, int), N=N, D=N, N0=jnp.asarray(1.0),
               D0=jnp.asarray(1.0), own=jnp.asarray([0, 1]))  # fmt: skip
    mean = np.asarray(L.mean(p, x))
    assert np.all(np.isfinite(mean)) and np.all(mean > 0)
    assert mean[1].max() < 0.05 * mean[0].min()  # far below the reference loss: held up only by the soft floor


def test_floor_note_names_the_targets_whose_draws_fall_past_the_sweep():
    table = read_runs(example_table(), quiet=True)
    lowest = np.nanmin(table.losses, axis=0)
    means = np.broadcast_to(lowest, (100, 3, len(lowest))).copy()
    assert floor_note(table, means, table.targets) is None
    means[:5, :, 1] = 0.01 * lowest[1]  # 5% of the draws of the second target
    note = floor_note(table, means, table.targets)
    assert note is not None and table.targets[1] in note and "5% of draws" in note
    assert table.targets[0] not in note
    assert issubclass(FloorWarning, UserWarning)
