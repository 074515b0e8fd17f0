"""A block whose Laplace approximation misses its posterior is whitened again by its own warm-up."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesmix.inference import MISFIT, SamplerConfig, rewhitened, sample, whitening_misfit


def spike_and_slab():
    """Three scalars, each 0.1% in a spike of sd 0.001 and 99.9% in a slab of sd 10: the mode is the spike, whose
    density is ten times the slab's and whose curvature is 10^8 times, so a whitening by the mode's Laplace
    approximation is 10,000 times too narrow where nearly all the mass is (the shape of SlimPajama's wikipedia
    target under the additive law: a mode 25 nats below the median draw, far from the bulk)."""
    mix = dist.MixtureSameFamily(
        dist.Categorical(jnp.array([0.001, 0.999])), dist.Normal(jnp.zeros(2), jnp.array([0.001, 10.0]))
    )
    numpyro.sample("x", mix.expand([3]))


SLAB_SD = float(np.sqrt(0.001 * 0.001**2 + 0.999 * 10.0**2))


def test_the_misfit_is_about_one_where_the_whitening_fits_and_large_where_it_does_not():
    rng = np.random.default_rng(0)
    fits = rng.normal(size=(4, 100, 6))
    assert whitening_misfit(fits) < 2.0
    assert whitening_misfit(fits * 8.0) > MISFIT  # too narrow a whitening
    assert whitening_misfit(fits / 8.0) > MISFIT  # too wide
    assert whitening_misfit(fits + np.array([0, 0, 7.0, 0, 0, 0])) > MISFIT  # centred away from the chains
    assert np.isnan(whitening_misfit(np.full((2, 3, 2), np.nan)))


def test_rewhitening_by_the_chains_turns_them_into_unit_draws():
    rng = np.random.default_rng(1)
    d = 5
    A = rng.normal(size=(d, d))
    cov, mean = A @ A.T + 0.1 * np.eye(d), rng.normal(size=d) * 3.0
    z = rng.multivariate_normal(mean, cov, size=(4, 2000))
    mode, chol = np.zeros(d), np.diag([0.1, 0.2, 0.3, 0.4, 0.5])  # a whitening far from the truth
    u = np.linalg.solve(chol, (z - mode)[..., None])[..., 0]
    centre, factor, u_last = rewhitened(u, mode, chol, u[:, -1])
    np.testing.assert_allclose(centre, mean, atol=0.2)
    np.testing.assert_allclose(factor @ factor.T, cov, rtol=0.1, atol=0.1)
    # the chains' last positions map to the same points of the model's space
    np.testing.assert_allclose(centre + u_last @ factor.T, z[:, -1], atol=1e-9)
    new = np.linalg.solve(factor, (z - centre).reshape(-1, d).T).T
    assert whitening_misfit(new.reshape(4, -1, d)) < 1.2


def test_a_spike_at_the_mode_is_whitened_again_and_sampled_right():
    config = dict(chains=4, warmup=400, draws=400, seed=1, retry_target_accept=0.0)
    draws, _, info = sample(spike_and_slab, (), SamplerConfig(**config), progress=False)
    (block,) = info["blocks"]
    assert block["rewhitened"] and block["rewhitened"][0] > 1000  # the spike is ~10,000 times too narrow
    assert block["max_rhat"] <= 1.01 and block["min_ess_bulk"] > 400
    np.testing.assert_allclose(draws["x"].std(axis=(0, 1)), SLAB_SD, rtol=0.15)
    assert block["mean_steps"] < 30

    # negative control: whitened at the spike throughout, NUTS needs hundreds of steps a draw and does not mix
    _, _, off = sample(spike_and_slab, (), SamplerConfig(**config, rewhiten=0), progress=False)
    (kept,) = off["blocks"]
    assert "rewhitened" not in kept
    assert kept["mean_steps"] > 10 * block["mean_steps"]
    assert kept["max_rhat"] > 1.05  # (measured over seeds 0-3: 500-740 steps, R-hat 1.20-1.30; 5-8 and <= 1.007)


def test_a_posterior_the_laplace_approximation_fits_is_left_as_it_is():
    def gaussian():
        numpyro.sample("x", dist.MultivariateNormal(jnp.arange(3.0), jnp.array([[1, 0.8, 0], [0.8, 1, 0], [0, 0, 4]])))

    config = SamplerConfig(chains=2, warmup=200, draws=200, seed=0)
    draws, _, info = sample(gaussian, (), config, progress=False)
    assert "rewhitened" not in info["blocks"][0]
    np.testing.assert_allclose(draws["x"].mean(axis=(0, 1)), [0, 1, 2], atol=0.35)


def test_the_fit_says_which_blocks_were_whitened_again_even_where_a_retry_was_kept():
    from bayesmix.fit import rewhiten_notes
    from bayesmix.profile import block_table

    # with the retry at 0.99 on (the default): the spike's few divergences at 0.9 send the block to a retry, which
    # runs in the first try's new whitening and says so
    _, _, info = sample(spike_and_slab, (), SamplerConfig(chains=4, warmup=400, draws=400, seed=1), progress=False)
    (block,) = info["blocks"]
    assert block["rewhitened"][0] > 1000
    (note,) = rewhiten_notes(info["blocks"])
    assert note.startswith("all: a quarter into the warm-up the chains sat up to") and "whitened again" in note
    assert block_table(info).loc["all", "rewhitened"] == f"{block['rewhitened'][0]:g}"
    assert rewhiten_notes([{"block": "web"}]) == []
