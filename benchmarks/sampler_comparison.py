"""One target block of a SlimPajama fit: its mode search's starts, and samplers (numpyro, blackjax, nutpie) by work.

The block is what ``bayesmix.fit`` samples for one target (SlimPajama, every run up to 1.235B, the
checkpoint model, the additive law unless ``--law``). Printed:

1. the potential energy the mode search reaches from each of ``--starts`` starts (the prior median, then
   prior draws, as the fit's search; the fit uses the first ``laplace_starts`` of them);
2. numpyro's NUTS (bayesmix's own runner, whitened at the best mode; with ``--rewhiten`` whitened again by its
   warm-up probe where the fit would be) at target_accept 0.9 and 0.99: seconds, leapfrog steps per draw,
   divergences, R-hat, min ESS and leapfrog steps per effective draw;
3. the same for blackjax's samplers on the same whitened log density, where blackjax is installed (``pip install
   blackjax``; a benchmark-only extra, not a dependency; written against 1.7.1): NUTS with ``window_adaptation``
   (diagonal mass matrix, per chain) at each of ``--accepts``; adjusted MCLMC (MAMS, ``adjusted_mclmc_dynamic``,
   random trajectory lengths) tuned by ``adjusted_mclmc_find_L_and_step_size`` (1.7.1's tuner, which pins the
   trajectory to 2 integration steps on average) and, as ``mams-acl``, by the same tuner's stages with the
   trajectory length set from the chains' autocorrelation (the MAMS paper's third stage, which 1.7.1's tuner
   overrides); and unadjusted MCLMC (biased: no Metropolis correction). Each tunes for as many iterations as
   numpyro warms up, and its chains run in parallel as numpyro's do (one device per chain where there are 4);
4. the same for nutpie (diagonal and low-rank mass matrix adaptation) on the same whitened log density,
   where nutpie is installed (``pip install nutpie``; a benchmark-only extra, not a dependency).

Each sampler's line gives gradient evaluations per draw and per effective draw, of the draws alone and with the
tuning (a NUTS leapfrog step is one gradient, an MCLMC step with the default McLachlan integrator two), and the
largest shift of any posterior mean from numpyro's first run, in numpyro's posterior sds and in Monte Carlo
standard errors of the difference (z; over ~25-100 scalars, up to about 3 is noise). Gradients per effective
draw do not depend on how busy the machine is; seconds (compilation included) do. Unlike the other
benchmarks this one reaches into ``bayesmix.inference`` (the block's compiled potential and NUTS
runner) on purpose: it compares samplers on exactly what the fit samples.

Example::

    python benchmarks/sampler_comparison.py --target github
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--target", default="github", help="the target whose block is sampled (default github)")
    p.add_argument("--law", default="additive")
    p.add_argument("--starts", type=int, default=8, help="starts of the mode search to compare (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=1000, help="warm-up and draws per chain (default 1000 each)")
    p.add_argument(
        "--accepts", default="0.9,0.99", help="numpyro's and blackjax NUTS's target_accept values (default 0.9,0.99)"
    )
    p.add_argument(
        "--blackjax",
        default="nuts,mams,mams-acl,mclmc",
        help="blackjax samplers to run, of nuts, mams, mams-acl, mclmc ('none': none; default all four)",
    )
    p.add_argument("--mams-accept", type=float, default=0.9, help="MAMS's target acceptance (default 0.9)")
    p.add_argument("--no-nutpie", action="store_true", help="skip nutpie even where it is installed")
    p.add_argument(
        "--rewhiten",
        action="store_true",
        help="whiten again by numpyro's warm-up probe where the fit would (misfit above inference.MISFIT), and "
        "compare the samplers in those coordinates (default: the Laplace whitening at the mode)",
    )
    return p.parse_args(argv)


def slimpajama_block(law_name: str, target: str):
    """(block, compiled) for one target of a fit of SlimPajama's runs up to 1.235B with the checkpoint model, built
    as ``bayesmix.fit`` builds it with the installed code (also code older than ``design.reference_point``, for
    the benchmarks' ``--baseline-ref``)."""
    import numpy as np

    from bayesmix import inference
    from bayesmix.data import read_runs
    from bayesmix.design import observed_from_table
    from bayesmix.laws import get_law
    from bayesmix.model import make_model, resolve_priors

    table = read_runs(DATA, quiet=True)
    table = read_runs(table.frame[table.frame.model_size < 1.3e9], quiet=True)
    law, targets = get_law(law_name), table.targets
    priors = resolve_priors(law, table.domains, targets, None, True)
    try:
        from bayesmix.design import law_tokens, reference_point

        N0, D0 = reference_point(table.model_size, law_tokens(table, True))
    except ImportError:  # code before 269b119: its fit wrote the laws around every checkpoint's tokens
        from bayesmix.design import reference_scale

        N0, D0 = reference_scale(table.model_size), reference_scale(table.n_tokens)
    obs, _ = observed_from_table(table, targets, N0, D0, np.unique(table.model_size), checkpoints=True)
    blocks = make_model(law, table.domains, targets, priors, True).split(obs)
    (block,) = [b for b in blocks if b.label == target]
    return block, blocks, inference._compiled(block.model, block.args, block.signature)


def constrained_draws(comp, args, mode, L, U):
    """(C, S, k) every scalar of the block's sites, from whitened draws U (C, S, d) at ``mode`` with Cholesky ``L``."""
    import jax.numpy as jnp
    import numpy as np

    Z = mode + U @ L.T
    C, S = Z.shape[:2]
    sites = comp.constrain(jnp.asarray(Z.reshape(C * S, -1)), args)
    return np.concatenate([np.asarray(v).reshape(C, S, -1) for v in sites.values()], -1)


def convergence(flat) -> tuple[float, float]:
    """Max R-hat and min ESS (bulk or tail) over the scalars of ``flat`` (C, S, k) that move."""
    import numpy as np

    from bayesmix.diagnostics import split_rhat_ess

    moving = ~np.all(flat == flat[:1, :1], axis=(0, 1))
    r, b, t = split_rhat_ess(flat[..., moving])
    return float(np.max(r)), float(min(b.min(), t.min()))


def mean_shift(flat, ref) -> tuple[float, float]:
    """The largest shift of a posterior mean of ``flat`` (C, S, k) from ``ref``'s, in ``ref``'s posterior sds and
    in Monte Carlo standard errors of the difference (by each scalar's bulk ESS), over the scalars that move."""
    import numpy as np

    from bayesmix.diagnostics import split_rhat_ess

    moving = ~np.all(ref == ref[:1, :1], axis=(0, 1))
    x, y = flat[..., moving], ref[..., moving]
    diff = np.abs(x.mean(axis=(0, 1)) - y.mean(axis=(0, 1)))
    se2 = x.var(axis=(0, 1)) / split_rhat_ess(x)[1] + y.var(axis=(0, 1)) / split_rhat_ess(y)[1]
    return float(np.max(diff / y.std(axis=(0, 1)))), float(np.max(diff / np.sqrt(se2)))


def blackjax_runs(names, a, logdensity, d, keys, u0, parallel, max_depth):
    """Each of blackjax's samplers ``names`` on ``logdensity`` (whitened, d dimensions), 4 chains from ``u0``:
    yields (label, seconds, gradients of the draws, gradients of the tuning, divergences or None, u (C, S, d), note).
    None where blackjax is not installed."""
    try:
        import blackjax
        from blackjax.adaptation import adjusted_mclmc_adaptation as amt
        from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState
        from blackjax.mcmc import adjusted_mclmc_dynamic as amd
    except ImportError:
        print("blackjax is not installed (pip install blackjax): skipped")
        return
    import jax
    import jax.numpy as jnp
    import numpy as np

    over_chains = jax.pmap if parallel else (lambda f: jax.jit(jax.vmap(f)))
    n_warm, n_draws = a.draws, a.draws

    def nuts(accept):
        def chain(key, x0):
            k_warm, k_draw = jax.random.split(key)
            warmup = blackjax.window_adaptation(
                blackjax.nuts, logdensity, target_acceptance_rate=accept, max_num_doublings=max_depth
            )
            (state, params), winfo = warmup.run(k_warm, x0, num_steps=n_warm)
            kernel = blackjax.nuts(logdensity, **params)

            def step(s, k):
                s, info = kernel.step(k, s)
                return s, (s.position, info.is_divergent, info.num_integration_steps)

            _, (u, div, n) = jax.lax.scan(step, state, jax.random.split(k_draw, n_draws))
            return u, div, n, jnp.sum(winfo.info.num_integration_steps), params["step_size"]

        return chain

    def mams(accept, autocorrelation):
        kernel = amd.build_kernel(integration_steps_fn=amd.make_random_trajectory_length_fn(True))

        def chain(key, x0):
            k_init, k_tune, k_draw = jax.random.split(key, 3)
            state = amd.init(x0, logdensity, k_init)
            if not autocorrelation:
                # 1.7.1's recommended tuner: step size by dual averaging at the target acceptance with the trajectory
                # pinned to 2 steps on average, and a diagonal preconditioner from the chain's variances; its two
                # equal fractions stretched to numpyro's warm-up length
                state, params, n_tune = blackjax.adjusted_mclmc_find_L_and_step_size(
                    mclmc_kernel=kernel,
                    logdensity_fn=logdensity,
                    num_steps=n_warm,
                    state=state,
                    rng_key=k_tune,
                    target=accept,
                    frac_tune1=1 / 3,
                    frac_tune2=1 / 3,
                    diagonal_preconditioning=True,
                )
            else:
                # the same stages with L free (from sqrt(d) and the variances), then L from the autocorrelation
                # (l_factor 0.4, the paper's) and the step again at that L: a fifth of the warm-up each
                k1, k2, k3 = jax.random.split(k_tune, 3)
                params = MCLMCAdaptationState(jnp.sqrt(d), 0.2 * jnp.sqrt(d), inverse_mass_matrix=jnp.ones(d))
                stage = dict(kernel=kernel, logdensity_fn=logdensity, dim=d, target=accept, tuning_factor=1.3)
                state, params, _, n1 = amt.adjusted_mclmc_make_L_step_size_adaptation(
                    frac_tune1=0.2, frac_tune2=0.2, diagonal_preconditioning=True, **stage
                )(state, params, n_warm, k1)
                state, params, n2 = amt.adjusted_mclmc_make_adaptation_L(kernel, logdensity, frac=0.2, l_factor=0.4)(
                    state, params, n_warm, k2
                )
                state, params, _, n3 = amt.adjusted_mclmc_make_L_step_size_adaptation(
                    frac_tune1=0.2, frac_tune2=0.0, diagonal_preconditioning=True, fix_L_first_da=True, **stage
                )(state, params, n_warm, k3)
                n_tune = n1 + n2 + n3

            def step(s, k):
                s, info = kernel(
                    rng_key=k,
                    state=s,
                    logdensity_fn=logdensity,
                    step_size=params.step_size,
                    inverse_mass_matrix=params.inverse_mass_matrix,
                    integration_steps_params=(params.L / params.step_size,),
                )
                return s, (s.position, info.is_divergent, info.num_integration_steps, info.acceptance_rate)

            _, (u, div, n, acc) = jax.lax.scan(step, state, jax.random.split(k_draw, n_draws))
            # the McLachlan integrator takes two gradients per step
            return u, div, 2 * n, 2 * n_tune, params.step_size, params.L, jnp.mean(acc)

        return chain

    def mclmc(key, x0):
        k_init, k_tune, k_draw = jax.random.split(key, 3)
        kernel = blackjax.mcmc.mclmc.build_kernel()
        state = blackjax.mcmc.mclmc.init(x0, logdensity, k_init)
        # the recommended three stages, each 0.3 of numpyro's warm-up length (the second grows by a third with
        # the preconditioner: 300 + 400 + 300 iterations)
        state, params, n_tune = blackjax.mclmc_find_L_and_step_size(
            mclmc_kernel=kernel,
            num_steps=n_warm,
            state=state,
            rng_key=k_tune,
            logdensity_fn=logdensity,
            frac_tune1=0.3,
            frac_tune2=0.3,
            frac_tune3=0.3,
            diagonal_preconditioning=True,
        )

        def step(s, k):
            s, info = kernel(k, s, logdensity, params.inverse_mass_matrix, params.L, params.step_size)
            return s, s.position

        _, u = jax.lax.scan(step, state, jax.random.split(k_draw, n_draws))
        return u, 2 * n_draws, 2 * n_tune, params.step_size, params.L

    def row(label, t0, n, n_tune, div, u, note):
        """One sampler's result as ``report`` takes it: gradients summed over chains, ``div`` None where the
        sampler has no divergences."""
        return label, time.perf_counter() - t0, int(np.sum(n)), int(np.sum(n_tune)), div, np.asarray(u), note

    def listed(xs, fmt: str) -> str:
        return ", ".join(format(x, fmt) for x in np.asarray(xs))

    for name in names:
        t0 = time.perf_counter()
        if name == "nuts":
            for accept in [float(x) for x in a.accepts.split(",")]:
                t0 = time.perf_counter()
                u, div, n, n_tune, eps = jax.block_until_ready(over_chains(nuts(accept))(keys, u0))
                yield row(
                    f"blackjax NUTS at {accept}", t0, n, n_tune, int(np.sum(div)), u, f"step sizes {listed(eps, '.3f')}"
                )
        elif name in ("mams", "mams-acl"):
            run = over_chains(mams(a.mams_accept, name == "mams-acl"))
            u, div, n, n_tune, eps, L, acc = jax.block_until_ready(run(keys, u0))
            note = f"step sizes {listed(eps, '.3f')}, L/step {listed(L / eps, '.1f')}, acceptance {listed(acc, '.2f')}"
            label = "blackjax MAMS" + (", L by autocorrelation," if name == "mams-acl" else "")
            yield row(f"{label} at {a.mams_accept}", t0, n, n_tune, int(np.sum(div)), u, note)
        elif name == "mclmc":
            u, n, n_tune, eps, L = jax.block_until_ready(over_chains(mclmc)(keys, u0))
            note = f"unadjusted (biased); step sizes {listed(eps, '.3f')}, L {listed(L, '.2f')}"
            yield row("blackjax MCLMC, unadjusted,", t0, n, n_tune, None, u, note)
        else:
            print(f"blackjax sampler {name!r} is not one of nuts, mams, mams-acl, mclmc: skipped")


def main(argv=None) -> int:
    a = parse_args(argv)
    if not DATA.exists():
        print(f"skipped: the SlimPajama sweep is absent ({DATA}); it lives beside the repo in ../shared/data")
        return 0
    import jax
    import jax.numpy as jnp
    import numpy as np
    from numpyro.infer.util import potential_energy

    import bayesmix  # noqa: F401  (sets the XLA device count before jax starts)
    from bayesmix import inference

    block, blocks, comp = slimpajama_block(a.law, a.target)
    args, d = block.args, comp.dim

    # 1. the mode search from each start
    key = jax.random.split(jax.random.split(jax.random.PRNGKey(a.seed), len(blocks))[blocks.index(block)], 3)[0]
    best = None
    energies = []
    for z0 in np.asarray(comp.starts(key, a.starts), dtype=np.float64):
        mode, cov, energy = inference.find_mode(comp, args, [z0])
        energies.append(energy)
        if best is None or energy < best[2]:
            best = (mode, cov, energy)
    print(f"{a.law}, {a.target} ({d} dimensions): mode search energies from {a.starts} starts:")
    print("  " + ", ".join(f"{e:.1f}" for e in energies))
    mode, cov, _ = best
    L = np.linalg.cholesky(cov)
    keys = jax.random.split(jax.random.PRNGKey(a.seed + 1), 4)
    u0 = 0.5 * jax.random.normal(jax.random.PRNGKey(a.seed + 2), (4, d))
    parallel = jax.local_device_count() >= 4
    if a.rewhiten:
        # the fit's step: numpyro's warm-up probe at the default target_accept, whitened again by its chains'
        # iterations where they miss the Laplace approximation; every sampler then starts afresh in those coordinates
        config = inference.SamplerConfig(warmup=a.draws, draws=a.draws)
        run = inference._runner(block.model, comp.unravel, d, config, parallel, None)
        margs = (args, jnp.asarray(mode), jnp.asarray(L))
        states, window, *_ = run.probe(keys, u0, *margs)
        checked = run.probe_length < run.warmup and window.shape[1] >= inference.MIN_WINDOW
        for again in range(config.rewhiten if checked else 0):
            window = np.asarray(window)
            miss = inference.whitening_misfit(window)
            print(f"whitening misfit after the probe: {miss:.1f}" + ("" if miss > inference.MISFIT else ", kept"))
            if not miss > inference.MISFIT:
                break
            centre, factor, (states, window, *_) = inference.probe_rewhitened(
                run, keys[0], again, window, np.asarray(states.z), *margs
            )
            mode, L = np.asarray(centre), np.asarray(factor)
            margs = (args, jnp.asarray(mode), jnp.asarray(L))
    mode_j, L_j = jnp.asarray(mode), jnp.asarray(L)

    reference = []  # numpyro's first run's constrained draws, for the shift of every other sampler's means

    def report(label, seconds, grads, divergences, U, tuning=None, note=""):
        """One sampler's line: ``grads`` gradients of the draws (and ``tuning`` of its warm-up) for draws U."""
        flat = constrained_draws(comp, args, mode, L, U)
        rhat, ess = convergence(flat)
        draws = U.shape[0] * U.shape[1]
        total = "" if tuning is None else f" ({(grads + tuning) / draws:.1f} with tuning)"
        total_ess = "" if tuning is None else f" ({(grads + tuning) / ess:.0f} with tuning)"
        if reference:
            sd, z = mean_shift(flat, reference[0])
            shift = f", mean shift {sd:.2f} sd (z {z:.1f})"
        else:
            reference.append(flat)
            shift = ", the reference for the mean shifts"
        div = "n/a" if divergences is None else divergences
        print(
            f"{label}: {seconds:.0f} s, {grads / draws:.1f} gradients per draw{total}, {div} divergences, "
            f"R-hat {rhat:.3f}, min ESS {ess:.0f}, {grads / ess:.0f} gradients per effective draw{total_ess}{shift}"
            + (f"\n    {note}" if note else "")
        )

    # 2. numpyro's NUTS, bayesmix's runner
    for accept in [float(x) for x in a.accepts.split(",")]:
        config = inference.SamplerConfig(warmup=a.draws, draws=a.draws, target_accept=accept)
        run = inference._runner(block.model, comp.unravel, d, config, parallel, None)
        t0 = time.perf_counter()
        states, _, warm_steps = run.warm(keys, u0, args, mode_j, L_j)
        u, div, steps, *_, eps = run.draw(states, args, mode_j, L_j)
        U = np.asarray(u)
        report(
            f"numpyro NUTS at {accept}",
            time.perf_counter() - t0,
            int(np.sum(steps)),
            int(np.sum(div)),
            U,
            int(np.sum(warm_steps)),
            f"step sizes {', '.join(f'{e:.3f}' for e in np.asarray(eps))}",
        )

    # 3. blackjax on the same whitened log density
    def logdensity(u):
        return -potential_energy(block.model, args, {}, comp.unravel(mode_j + L_j @ u))

    names = [x.strip() for x in a.blackjax.split(",") if x.strip() and x.strip() != "none"]
    if names:
        max_depth = inference.SamplerConfig().max_tree_depth
        for label, seconds, grads, tuning, div, U, note in blackjax_runs(
            names, a, logdensity, d, keys, u0, parallel, max_depth
        ):
            report(label, seconds, grads, div, U, tuning, note)

    # 4. nutpie on the same whitened log density
    if a.no_nutpie:
        return 0
    try:
        import nutpie
        from nutpie import compiled_pyfunc
    except ImportError:
        print("nutpie is not installed (pip install nutpie): skipped")
        return 0

    @jax.jit
    def logp(u):
        v, g = comp.value_and_grad(mode_j + L_j @ u, args)
        return -v, -(L_j.T @ g)

    def make_logp_fn():
        def f(x, **_):
            v, g = logp(jnp.asarray(x))
            return float(v), np.asarray(g, dtype="float64", order="C")

        return f

    def make_expand_fn(*_):
        return lambda x, **__: {"u": np.asarray(x, dtype="float64").copy()}

    model = compiled_pyfunc.from_pyfunc(
        d,
        make_logp_fn,
        make_expand_fn,
        [np.dtype("float64")],
        [(d,)],
        ["u"],
        make_initial_point_fn=lambda seed: np.random.default_rng(seed).normal(0, 0.5, d),
    )
    for label, extra in (("diagonal", {}), ("low-rank", {"low_rank_modified_mass_matrix": True})):
        t0 = time.perf_counter()
        trace = nutpie.sample(
            model, draws=a.draws, tune=a.draws, chains=4, cores=2, seed=a.seed, progress_bar=False, **extra
        )
        U = trace.posterior["u"].values
        stats = trace.sample_stats
        report(
            f"nutpie {label}",
            time.perf_counter() - t0,
            int(stats["n_steps"].values.sum()),
            int(stats["diverging"].values.sum()),
            U,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
