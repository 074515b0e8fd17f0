"""A block that diverges is sampled again at a higher target_accept (bayesmix.inference.SamplerConfig)."""

import json

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesmix.inference import SamplerConfig, keep_retry, retry_too_deep, sample


def funnel(scale: float):
    """Neal's funnel: the scale of x follows v, so a step that suits the mouth diverges in the neck."""

    def model():
        v = numpyro.sample("v", dist.Normal(0.0, scale))
        numpyro.sample("x", dist.Normal(0.0, jnp.exp(v / 2.0)).expand([4]))

    return model


# Without re-whitening: these tests are about the retries, which the funnel needs once its whitening is left as it is.
CONFIG = dict(chains=2, warmup=150, draws=150, seed=1, target_accept=0.6, dense_mass=False, rewhiten=0)


# Longer chains, where the funnel's retry at 0.99 also mixes better (measured: 16 divergences, R-hat 1.51 and
# ESS 3 at 0.6; none, R-hat 1.03 and ESS 51 at 0.99). With 150 draws its retry mixes worse (see below).
LONGER = dict(CONFIG, warmup=300, draws=300)


def test_a_block_that_diverged_is_sampled_again_and_the_better_run_kept():
    _, _, info = sample(funnel(1.5), (), SamplerConfig(**LONGER, retry_target_accept=0.0), progress=False)
    (off,) = info["blocks"]
    assert off["divergences"] > 0  # the funnel diverges at this target_accept...
    assert "first_divergences" not in off and "retried_divergences" not in off  # ...left as it was when turned off

    _, extra, info = sample(funnel(1.5), (), SamplerConfig(**LONGER), progress=False)
    (block,) = info["blocks"]
    assert block["first_divergences"] == off["divergences"]  # same key: the first try is the run above
    assert block["target_accept"] == 0.99
    assert block["divergences"] < block["first_divergences"]  # the retry diverged less, moves and mixes: kept
    assert block["depth_hits"] <= 0.01 * 600
    assert block["max_rhat"] <= max(off["max_rhat"], 1.01)
    assert int(extra["diverging"].sum()) == block["divergences"]
    assert "warm_start" not in block  # a first run that did not mix: retried from scratch...
    json.dumps(info, default=float)  # ...and what is kept of it is plain data (a fit saves it)
    assert info["nuts_seconds"] > block["nuts_seconds"]  # the first try's time is counted
    # the first try's late warm-up divergences are kept beside the retry's (what a retry could be decided from)
    assert block["first_late_warmup_divergences"] == off["late_warmup_divergences"]
    assert 0 < off["late_warmup_divergences"] <= 2 * LONGER["warmup"] // 2


def test_a_retry_with_fewer_divergences_that_mixes_worse_is_not_kept():
    # 150 draws: at 0.99 the funnel no longer diverges, but its chains disagree (R-hat 1.2) and ESS falls to ~8
    _, extra, info = sample(funnel(1.5), (), SamplerConfig(**CONFIG), progress=False)
    (block,) = info["blocks"]
    assert block["retried_divergences"] < block["divergences"]
    assert block["retried_rhat"] > max(block["max_rhat"], 1.01) or block["retried_ess"] < 0.5 * min(
        block["min_ess_bulk"], block["min_ess_tail"]
    )
    assert block["target_accept"] == 0.6 and int(extra["diverging"].sum()) == block["divergences"]  # first kept


def test_a_retry_stuck_at_the_maximum_tree_depth_is_not_kept():
    # A wider funnel: at 0.99 the step is so small that the chains run to the maximum depth.
    _, extra, info = sample(funnel(2.0), (), SamplerConfig(**CONFIG), progress=False)
    (block,) = info["blocks"]
    assert block["retried_depth_hits"] > 0.01 * 300
    assert block["target_accept"] == 0.6 and block["divergences"] > 0  # the first draws are kept
    assert int(extra["diverging"].sum()) == block["divergences"]


def test_the_fit_notes_say_which_blocks_were_sampled_again():
    from bayesmix.fit import retry_notes

    kept = {
        "block": "book",
        "divergences": 2,
        "first_divergences": 230,
        "first_target_accept": 0.9,
        "target_accept": 0.99,
    }
    first = {"block": "c4", "divergences": 3, "retried_divergences": 0, "retried_depth_hits": 900, "target_accept": 0.9}
    clean = {"block": "github", "divergences": 0}
    notes = retry_notes([kept, first, clean])
    assert len(notes) == 2
    assert "book: 230 divergences at target_accept 0.9; sampled again at 0.99, 2 divergences" in notes[0]
    assert notes[1].startswith("c4: 3 divergences") and "900 draws at the maximum tree depth" in notes[1]
    assert "first draws are kept" in notes[1]


def test_a_retry_that_mixes_worse_is_not_kept():
    first = {"divergences": 16, "depth_hits": 0, "max_rhat": 1.005, "min_ess_bulk": 900.0, "min_ess_tail": 533.0}
    good = {"divergences": 1, "depth_hits": 2, "max_rhat": 1.004, "min_ess_bulk": 700.0, "min_ess_tail": 400.0}
    assert keep_retry(first, good, 4000)
    # SlimPajama's github target at 0.99: fewer divergences, but the chains disagree and ESS fell eightfold
    assert not keep_retry(first, dict(good, max_rhat=1.025), 4000)
    assert not keep_retry(first, dict(good, min_ess_tail=66.0), 4000)
    assert not keep_retry(first, dict(good, depth_hits=41), 4000)  # over 1% of draws at the maximum depth
    assert not keep_retry(first, dict(good, divergences=16), 4000)  # no fewer divergences
    # a first run that itself mixed badly does not hold the retry to a standard it failed
    assert keep_retry(dict(first, max_rhat=1.3), dict(good, max_rhat=1.2), 4000)
    # RegMix's pubmed_central target: no divergences left and ESS 301 is enough, though under half of 673
    regmix = {"divergences": 8, "depth_hits": 0, "max_rhat": 1.009, "min_ess_bulk": 673.0, "min_ess_tail": 669.0}
    assert keep_retry(regmix, {"divergences": 0, "depth_hits": 0, "max_rhat": 1.007, "min_ess_bulk": 301.0}, 4000)
    assert not keep_retry(regmix, {"divergences": 0, "depth_hits": 0, "max_rhat": 1.007, "min_ess_bulk": 150.0}, 4000)
    # SlimPajama's stackexchange target: a first run that did not mix loses to a retry that mixes, however deep
    stuck = {"divergences": 643, "depth_hits": 0, "max_rhat": 1.346, "min_ess_bulk": 9.7, "min_ess_tail": 14.0}
    deep = {"divergences": 0, "depth_hits": 444, "max_rhat": 1.0045, "min_ess_bulk": 376.3, "min_ess_tail": 400.0}
    assert keep_retry(stuck, deep, 4000)
    assert not keep_retry(stuck, dict(deep, max_rhat=1.02), 4000)  # ...but not a deep retry that does not mix
    # SlimPajama's one-scale book target: an R-hat 0.001 above the first run's is chance, the 40 divergences are not
    book = {"divergences": 41, "depth_hits": 0, "max_rhat": 1.0179, "min_ess_bulk": 252.3}
    assert keep_retry(book, {"divergences": 1, "depth_hits": 0, "max_rhat": 1.019, "min_ess_bulk": 222.0}, 4000)
    # tiny runs without R-hat or ESS are judged by divergences and depth alone
    assert keep_retry({"divergences": 3, "depth_hits": 0}, {"divergences": 0, "depth_hits": 0}, 300)


def test_a_mixed_block_with_deep_trees_is_not_sampled_again():
    # SlimPajama's wikipedia target (additive law): 257 steps per draw, 2 divergences, R-hat 1.009 at 0.9
    wiki = {"divergences": 2, "mean_steps": 257.0, "max_rhat": 1.009, "min_ess_bulk": 479.0, "min_ess_tail": 513.0}
    why = retry_too_deep(wiki, 10, 4000)
    assert why is not None and "257 leapfrog steps" in why and "256" in why
    assert retry_too_deep(dict(wiki, mean_steps=69.0), 10, 4000) is None  # shallow trees: retried
    assert retry_too_deep(dict(wiki, max_rhat=1.05), 10, 4000) is None  # did not mix: a retry may still help
    assert retry_too_deep(wiki, 12, 4000) is None  # a deeper limit leaves room
    from bayesmix.fit import retry_notes

    note = retry_notes([{"block": "wikipedia", "target_accept": 0.9, "retry_skipped": why, **wiki}])
    assert note == [f"wikipedia: 2 divergences at target_accept 0.9; not sampled again: {why}"]


def test_a_retry_whose_trees_would_run_too_deep_stops_after_its_warm_up(monkeypatch):
    import bayesmix.inference as inference

    # The mechanism: a retry told the first run's trajectory length stops after its warm-up when its own step
    # size would stretch that length past half the maximum tree size, and runs in full when it would not.
    block = inference.Block("all", funnel(1.5), (), None, None)
    config = SamplerConfig(**dict(CONFIG, target_accept=0.99))
    key = jnp.asarray(np.asarray(inference.jax.random.PRNGKey(0)))
    draws, extra, info = inference._sample_block(block, config, key, False, length=1e6)
    assert draws is None and extra is None and "past half the maximum tree size" in info["aborted"]
    draws, _, info = inference._sample_block(block, config, key, False, length=1e-6)
    assert draws is not None and "aborted" not in info

    # The wiring: a first run that mixed (as far as the rule knows) keeps its draws, and the notes say why.
    monkeypatch.setattr(inference, "_mixed", lambda *a: True)
    monkeypatch.setattr(inference, "retry_too_deep", lambda *a: None)
    shallow = SamplerConfig(**dict(CONFIG, max_tree_depth=4))
    _, extra, info = sample(funnel(1.5), (), shallow, progress=False)
    (b,) = info["blocks"]
    assert b["divergences"] > 0 and b["target_accept"] == 0.6 and "retry_aborted" in b
    assert b["retried_seconds"] > 0 and int(extra["diverging"].sum()) == b["divergences"]
    from bayesmix.fit import retry_notes

    assert "its retry at a higher target_accept stopped" in retry_notes([b])[0]


def test_a_retry_after_a_run_that_mixed_starts_where_that_run_ended(monkeypatch):
    import bayesmix.inference as inference
    from bayesmix.fit import retry_notes

    # A first run that mixed hands its retry its chains' last draws, mass matrices and whitening: the retry adapts
    # only its step size (REWARM iterations), and its draws are still the funnel's (v ~ Normal(0, 1.5)).
    monkeypatch.setattr(inference, "_mixed", lambda *a: True)
    monkeypatch.setattr(inference, "retry_too_deep", lambda *a: None)
    config = SamplerConfig(**dict(LONGER, draws=1000))
    draws, _, info = sample(funnel(1.5), (), config, progress=False)
    (b,) = info["blocks"]
    assert b["first_divergences"] > 0 and b["warm_start"] == inference.REWARM
    assert b["mode_seconds"] < 0.05  # no second mode search
    assert b["divergences"] < b["first_divergences"] and b["target_accept"] == 0.99
    v = draws["v"].ravel()
    assert abs(v.mean()) < 0.4 and 1.1 < v.std() < 1.9
    assert "from the first run's last draws (250 iterations adapting the step size)" in retry_notes([b])[0]
    json.dumps(info, default=float)  # plain data, as a fit saves it
    again, _, _ = sample(funnel(1.5), (), config, progress=False)
    np.testing.assert_array_equal(again["v"], draws["v"])  # same seed, same draws


def test_a_warm_started_retry_not_worth_keeping_is_run_again_from_scratch(monkeypatch):
    import bayesmix.inference as inference
    from bayesmix.fit import retry_notes

    monkeypatch.setattr(inference, "retry_too_deep", lambda *a: None)
    monkeypatch.setattr(inference, "_mixed", lambda *a: False)  # a first run that did not mix: retried from scratch
    scratch, _, info = sample(funnel(1.5), (), SamplerConfig(**LONGER), progress=False)
    assert "warm_start" not in info["blocks"][0]

    monkeypatch.setattr(inference, "_mixed", lambda *a: True)  # one that mixed: warm start first...
    monkeypatch.setattr(inference, "_warm_start_failed", lambda f, a, n: "warm_start" in a)  # ...which fails
    draws, _, info = sample(funnel(1.5), (), SamplerConfig(**LONGER), progress=False)
    (b,) = info["blocks"]
    assert "warm_start" not in b and b["warm_retry_seconds"] > 0  # ...not kept, so the scratch retry ran
    np.testing.assert_array_equal(draws["v"], scratch["v"])  # the same draws as a retry from scratch
    assert info["nuts_seconds"] > b["nuts_seconds"] + b["first_seconds"]  # the warm try's time is counted
    assert "from scratch (a retry from the first run's last draws mixed worse)" in retry_notes([b])[0]
    json.dumps(info, default=float)


def test_only_a_warm_retry_that_mixed_too_little_is_run_again():
    from bayesmix.inference import _warm_start_failed

    first = {"divergences": 12, "depth_hits": 0, "max_rhat": 1.004, "min_ess_bulk": 700.0, "min_ess_tail": 650.0}
    fine = {"divergences": 0, "depth_hits": 0, "max_rhat": 1.006, "min_ess_bulk": 600.0, "min_ess_tail": 500.0}
    assert not _warm_start_failed(first, fine, 4000)  # kept: nothing to redo
    assert _warm_start_failed(first, dict(fine, max_rhat=1.016), 4000)  # chains disagree: from scratch
    assert _warm_start_failed(first, dict(fine, min_ess_tail=150.0), 4000)  # too few effective draws: same
    assert not _warm_start_failed(first, dict(fine, depth_hits=127), 4000)  # the smaller step's depth: shared
    assert _warm_start_failed(first, dict(fine, divergences=6), 4000)  # still diverging: from scratch
    assert not _warm_start_failed(first, dict(fine, divergences=5), 4000)  # most divergences gone: kept
    one = dict(first, divergences=1)
    assert not _warm_start_failed(one, dict(fine, divergences=1), 4000)  # one left of one: not worth a rerun


def test_a_first_try_stops_at_its_first_divergence_and_goes_on_from_there(monkeypatch):
    import bayesmix.inference as inference
    from bayesmix.fit import retry_notes

    # The mechanism: a first try that stops after the first chunk of draws with a divergence and then draws the
    # rest gives the very draws of a run that never stopped (the chunks go on from each other's state and key).
    block = inference.Block("all", funnel(1.5), (), None, None)
    config = SamplerConfig(**dict(LONGER, draws=400))
    key = jnp.asarray(np.asarray(inference.jax.random.PRNGKey(6)))  # a key whose first try diverges early
    whole, whole_extra, whole_info = inference._sample_block(block, config, key, False)
    part, part_extra, info = inference._sample_block(block, config, key, False, stop_early=True)
    chunk = 400 // inference.DRAW_CHUNKS
    assert info["stopped_after"] % chunk == 0 and info["stopped_after"] < 400  # stopped at a chunk's end...
    assert part_extra["diverging"][:, -chunk:].any() and not part_extra["diverging"][:, :-chunk].any()  # ...its first
    np.testing.assert_array_equal(part["v"], whole["v"][:, : info["stopped_after"]])
    resumed, resumed_extra, resumed_info = info["_resume"]()
    np.testing.assert_array_equal(resumed["v"], whole["v"])
    np.testing.assert_array_equal(resumed_extra["diverging"], whole_extra["diverging"])
    assert resumed_info["divergences"] == whole_info["divergences"] and "stopped_after" not in resumed_info

    # The wiring: a clean retry replaces the stopped first try, whose few draws are all it cost...
    monkeypatch.setattr(inference, "_mixed", lambda *a: True)
    monkeypatch.setattr(inference, "retry_too_deep", lambda *a: None)
    monkeypatch.setattr(inference, "_warm_start_failed", lambda *a: False)
    monkeypatch.setattr(inference, "_clean", lambda *a: True)
    monkeypatch.setattr(inference, "keep_retry", lambda *a: True)
    _, _, fit_info = sample(funnel(1.5), (), config, progress=False)
    (b,) = fit_info["blocks"]
    assert b["first_stopped_after"] % chunk == 0 and b["first_stopped_after"] < 400 and b["first_divergences"] > 0
    assert b["first_seconds"] > 0 and b["target_accept"] == 0.99
    assert f"in its first {b['first_stopped_after']} draws per chain, where it stopped" in retry_notes([b])[0]
    # ...and a retry that is not clean is weighed against the whole first try, which went on to its last draw
    monkeypatch.setattr(inference, "_clean", lambda *a: False)
    monkeypatch.setattr(inference, "keep_retry", lambda first, again, n: False)
    draws, extra, fit_info = sample(funnel(1.5), (), config, progress=False)
    (b,) = fit_info["blocks"]
    assert "first_stopped_after" not in b and "stopped_after" not in b and b["target_accept"] == 0.6
    assert extra["diverging"].shape == (2, 400) and b["retried_seconds"] > 0


def test_a_first_try_stopped_early_is_held_to_a_looser_r_hat():
    from bayesmix.inference import _run_mixed, partial_rhat_max, retry_too_deep

    # A quarter of the draws shows about four times a stationary run's R-hat excess: 1.02 after 250 of 1000 draws
    # is as mixed as 1.005 after 1000, so such a first try still hands its retry a warm start...
    quarter = {"max_rhat": 1.02, "min_ess_bulk": 250.0, "min_ess_tail": 240.0, "mean_steps": 300.0, "divergences": 3}
    assert partial_rhat_max(1000, 1000) == 1.01 and abs(partial_rhat_max(1000, 250) - 1.04) < 1e-12
    assert not _run_mixed(quarter, 1000) and _run_mixed(quarter, 1000, partial_rhat_max(1000, 250))
    assert retry_too_deep(quarter, 10, 1000, partial_rhat_max(1000, 250)) is not None  # ...and is as deep as whole
    # ...while chains that disagree are not mixed however few their draws (SlimPajama's stackexchange: R-hat 1.35)
    assert not _run_mixed(dict(quarter, max_rhat=1.35), 1000, partial_rhat_max(1000, 250))


def test_a_warm_start_keeps_the_mass_matrix_and_adapts_the_step_to_its_target():
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from bayesmix.inference import REWARM, _runner

    # A Gaussian with scales 0.2 and 5 in whitened coordinates: a warm start handed the right (inverse) mass matrix
    # must keep it and adapt only the step, from the one it is given, to the acceptance it targets; the draws go on
    # from it and are the Gaussian's.
    scales = jnp.array([0.2, 5.0])

    def model():
        numpyro.sample("x", dist.Normal(0.0, scales))

    _, unravel = ravel_pytree({"x": jnp.zeros(2)})
    config = SamplerConfig(chains=2, warmup=400, draws=400, target_accept=0.6)
    run = _runner(model, unravel, 2, config, False, None)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    u0 = jnp.asarray(np.random.default_rng(0).normal(size=(2, 2))) * scales
    inverse_mass, step = jnp.tile(scales**2, (2, 1)), jnp.full(2, 1.5)
    accepted = {}
    for target in (0.6, 0.95):
        again = run._replace(target_accept=target)
        states, _, steps = again.rewarm(keys, u0, inverse_mass, step, (), jnp.zeros(2), jnp.eye(2))
        np.testing.assert_array_equal(np.asarray(states.adapt_state.inverse_mass_matrix), np.asarray(inverse_mass))
        assert np.all(np.asarray(states.i) == config.warmup)  # past the warm-up: the draws adapt nothing
        assert np.asarray(steps).shape == (2,) and np.all(np.asarray(steps) >= REWARM)
        u, _, _, _, acc, step_size = again.draw(states, (), jnp.zeros(2), jnp.eye(2))
        assert not np.any(np.asarray(step_size) == 1.5)  # adapted, not kept
        accepted[target] = float(np.mean(acc))
        u = np.asarray(u).reshape(-1, 2)
        np.testing.assert_allclose(u.std(axis=0), np.asarray(scales), rtol=0.15)
    # dual averaging's averaged step lands above its target (numpyro's warm-up does the same), not below it
    assert 0.55 < accepted[0.6] < 0.85 and accepted[0.95] > max(0.9, accepted[0.6] + 0.1)
