"""Where a fit's time went (bayesmix.profile and the sampler's timing)."""

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bayesmix.inference import CompileClock, SamplerConfig, sample
from bayesmix.profile import block_table, format_profile, phase_table

TIMING = {
    "mode_seconds": 5.0,
    "extrapolation_seconds": 12.0,
    "extrapolation_compile_seconds": 4.0,
    "diagnostics_seconds": 1.0,
    "total_seconds": 60.0,
    # sample()'s sums over the kept runs of the blocks below
    "compile_seconds": 10.0,
    "warmup_seconds": 12.0,
    "sampling_seconds": 14.0,
    "blocks": [
        {
            "block": "web",
            "dim": 15,
            "mode_seconds": 3.0,
            "mode_compile_seconds": 2.0,
            "compile_seconds": 10.0,
            "warmup_seconds": 8.0,
            "sampling_seconds": 9.0,
            "mean_steps": 31.0,
            "divergences": 0,
            "depth_hits": 0,
            "max_rhat": 1.002,
            "min_ess_bulk": 900.0,
            "min_ess_tail": 800.0,
            "ess_per_second": 47.0,
        },
        {
            "block": "code",
            "dim": 15,
            "mode_seconds": 2.0,
            "mode_compile_seconds": 0.0,
            "compile_seconds": 0.0,
            "warmup_seconds": 4.0,
            "sampling_seconds": 5.0,
            "mean_steps": 120.0,
            "divergences": 1,
            "depth_hits": 2,
            "first_divergences": 30,
            "first_seconds": 6.0,
            "target_accept": 0.99,
        },
    ],
}


def test_phases_split_the_wall_time_with_compiling_counted_once():
    t = phase_table(TIMING, save_seconds=0.5)
    assert t.loc["compile", "seconds"] == pytest.approx(10.0 + 2.0 + 4.0)  # NUTS, mode search, hold-out refits
    assert t.loc["mode", "seconds"] == pytest.approx(5.0 - 2.0)
    assert t.loc["extrapolation", "seconds"] == pytest.approx(12.0 - 4.0)
    assert t.loc["warmup", "seconds"] == pytest.approx(12.0) and t.loc["sampling", "seconds"] == pytest.approx(14.0)
    assert t.loc["discarded", "seconds"] == pytest.approx(6.0)  # the first try the retry replaced
    assert t.loc["total", "seconds"] == pytest.approx(60.5)
    # the parts account for the fit's wall time, less the Python around them
    assert t.drop("total").seconds.sum() <= t.loc["total", "seconds"]
    assert t.loc["compile", "share"] == pytest.approx(16.0 / 60.5)


def test_block_table_says_which_blocks_were_sampled_again():
    b = block_table(TIMING)
    assert list(b.index) == ["web", "code"]
    assert b.loc["web", "retried"] == "no"
    assert b.loc["code", "retried"] == "kept at 0.99 (30 divergences at first)"
    assert b.loc["code", "discarded_s"] == 6.0 and b.loc["code", "steps_per_draw"] == 120.0
    warm = dict(TIMING, blocks=[dict(TIMING["blocks"][1], warm_start=250, warm_retry_seconds=0.0)])
    assert block_table(warm).loc["code", "retried"] == "kept at 0.99 (30 divergences at first, warm start)"
    lost = dict(TIMING, blocks=[dict(TIMING["blocks"][1], warm_retry_seconds=3.0)])  # a warm retry rerun
    assert block_table(lost).loc["code", "discarded_s"] == 9.0
    text = format_profile(TIMING)
    assert "where the time went" in text and "per block" in text and "ess_per_second" in text


def test_compile_clock_counts_compiling_and_not_running():
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T + 1.234567)  # a program no other test compiles
    x = jnp.ones((40, 40))
    with CompileClock() as first:
        f(x).block_until_ready()
    with CompileClock() as again:
        f(x).block_until_ready()
    assert first.seconds > 0
    assert again.seconds == 0  # compiled once per shape and process


def test_sampling_reports_its_parts_per_block():
    def model():
        numpyro.sample("x", dist.Normal(0.0, 1.0).expand([3]))

    config = SamplerConfig(chains=2, warmup=100, draws=200, seed=0)
    _, _, info = sample(model, (), config, progress=False, cache_key=("profile test",))
    (block,) = info["blocks"]
    for part in ("compile", "warmup", "sampling"):
        assert block[f"{part}_seconds"] >= 0 and info[f"{part}_seconds"] == pytest.approx(block[f"{part}_seconds"])
    assert block["warmup_seconds"] + block["sampling_seconds"] <= block["nuts_seconds"] + 1e-6
    # a standard normal: converged, with an effective sample size near the draws' number
    assert block["max_rhat"] < 1.02 and block["min_ess_bulk"] > 200 and block["ess_per_second"] > 0
    assert np.isfinite(block["min_ess_tail"])
    # a standard normal: at most a transient where warm-up restarts its step size (measured: 1 of 100)
    assert block["late_warmup_divergences"] <= 0.02 * config.chains * config.warmup
    # a whitened standard normal in 3 dimensions takes a few leapfrog steps per iteration, in warm-up as in draws
    assert 1 <= block["warmup_mean_steps"] <= 15 and 1 <= block["mean_steps"] <= 15


def test_warmup_and_draws_as_two_programs_give_the_draws_of_one():
    """The runner compiles warm-up and draws apart (to time them); the chain must go on exactly as one program."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import potential_energy

    from bayesmix.inference import _runner

    def model():
        numpyro.sample("x", dist.Normal(jnp.arange(3.0), jnp.array([1.0, 0.1, 3.0])))

    _, unravel = ravel_pytree({"x": jnp.zeros(3)})
    config = SamplerConfig(chains=2, warmup=60, draws=40)
    mode, chol = jnp.zeros(3), jnp.eye(3)

    def one_program(rng, u0):
        init, kernel = hmc(
            potential_fn_gen=lambda: lambda u: potential_energy(model, (), {}, unravel(mode + chol @ u)), algo="NUTS"
        )
        state = init(
            u0,
            config.warmup,
            inverse_mass_matrix=jnp.ones(3),
            target_accept_prob=config.target_accept,
            max_tree_depth=config.max_tree_depth,
            find_heuristic_step_size=True,
            rng_key=rng,
        )
        state, _ = jax.lax.scan(lambda s, _: (kernel(s), None), state, None, length=config.warmup)

        def draw(s, _):
            s = kernel(s)
            return s, s.z

        _, z = jax.lax.scan(draw, state, None, length=config.draws)
        return z

    keys, u0 = jax.random.split(jax.random.PRNGKey(3), 2), jnp.zeros((2, 3))
    split = _runner(model, unravel, 3, config, False, None)(keys, u0, (), mode, chol)[0]
    whole = jax.vmap(one_program)(keys, u0)
    np.testing.assert_allclose(np.asarray(split), np.asarray(whole), atol=1e-9)
