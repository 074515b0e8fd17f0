"""The sampler's data layout (rows run by run, the law once per run) gives the same log density as the table's rows
in order, for every law-input case: checkpoints at the run's end, final losses, and checkpoints fitted as final
losses (where a run's rows differ in tokens and the law must be evaluated per row)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from numpyro.infer.util import log_density

from bayesmix.data import read_runs
from bayesmix.design import observed_from_table, reference_scale
from bayesmix.laws import get_law
from bayesmix.model import make_model, resolve_priors, run_inputs, run_layout
from bayesmix.simulate import sweep_design

DOMAINS = ("web", "code", "books")


def _table(checkpoints: int, seed: int = 0):
    d = sweep_design(DOMAINS, (5e7, 2e8), mixtures_per_size=5, checkpoints=checkpoints, tokens_per_param=20, seed=seed)
    rng = np.random.default_rng(seed)
    for t in DOMAINS:
        d[f"{t}_loss"] = 3.0 * np.exp(0.05 * rng.standard_normal(len(d)))
    d.loc[d.index[3], "code_loss"] = np.nan  # a missing cell must drop out of both layouts
    return read_runs(d.sample(frac=1.0, random_state=seed), quiet=True)  # rows shuffled: runs interleave


@pytest.mark.parametrize(
    "law_name, checkpoints, model_checkpoints",
    [("additive", 6, True), ("additive", 1, False), ("additive", 6, False), ("capacity", 6, True)],
)
def test_run_layout_gives_the_log_density_of_the_rows_in_order(law_name, checkpoints, model_checkpoints):
    table = _table(checkpoints)
    law = get_law(law_name)
    targets = table.targets
    priors = resolve_priors(law, table.domains, targets, None, model_checkpoints)
    N0, D0 = reference_scale(table.model_size), reference_scale(table.n_tokens)
    sizes = np.unique(table.model_size)
    laid, _ = observed_from_table(table, targets, N0, D0, sizes, checkpoints=model_checkpoints)
    plain, _ = observed_from_table(table, targets, N0, D0, sizes, pad=False, checkpoints=model_checkpoints)
    assert run_layout(laid) and not run_layout(plain)
    # the law runs once per run exactly where a run's rows share their inputs
    assert (run_inputs(laid) is not None) == (model_checkpoints or checkpoints == 1)
    model = make_model(law, table.domains, targets, priors, model_checkpoints)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    for key in keys:
        draw = {
            k: d.sample(k2)
            for (k, d), k2 in zip(model.prior_sites.items(), jax.random.split(key, len(model.prior_sites)))
        }
        a, _ = log_density(model, (laid,), {}, draw)
        b, _ = log_density(model, (plain,), {}, draw)
        assert np.isfinite(float(b))
        np.testing.assert_allclose(float(a), float(b), rtol=1e-10, atol=1e-8)
