"""One target block of a SlimPajama fit: the mode search's starts, numpyro's NUTS and nutpie, by work per draw.

The block is what ``bayesmix.fit`` samples for one target (SlimPajama, every run up to 1.235B, the
checkpoint model, the additive law unless ``--law``). Printed:

1. the potential energy the mode search reaches from each of ``--starts`` starts (the prior median, then
   prior draws, as the fit's search; the fit uses the first ``laplace_starts`` of them);
2. numpyro's NUTS (bayesmix's own runner, whitened at the best mode) at target_accept 0.9 and 0.99:
   seconds, leapfrog steps per draw, divergences, R-hat, min ESS and leapfrog steps per effective draw;
3. the same for nutpie (diagonal and low-rank mass matrix adaptation) on the same whitened log density,
   where nutpie is installed (``pip install nutpie``; a benchmark-only extra, not a dependency).

Steps per effective draw do not depend on how busy the machine is; seconds do. Unlike the other
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
    p.add_argument("--accepts", default="0.9,0.99", help="numpyro target_accept values to run (default 0.9,0.99)")
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


def main(argv=None) -> int:
    a = parse_args(argv)
    if not DATA.exists():
        print(f"skipped: the SlimPajama sweep is absent ({DATA}); it lives beside the repo in ../shared/data")
        return 0
    import jax
    import jax.numpy as jnp
    import numpy as np

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
    mode_j, L_j = jnp.asarray(mode), jnp.asarray(L)

    def report(label, seconds, steps, divergences, U):
        rhat, ess = convergence(constrained_draws(comp, args, mode, L, U))
        print(
            f"{label}: {seconds:.0f} s, {steps / U.shape[0] / U.shape[1]:.1f} steps per draw, {divergences} "
            f"divergences, R-hat {rhat:.3f}, min ESS {ess:.0f}, {steps / ess:.0f} steps per effective draw"
        )

    # 2. numpyro's NUTS, bayesmix's runner
    for accept in [float(x) for x in a.accepts.split(",")]:
        config = inference.SamplerConfig(warmup=a.draws, draws=a.draws, target_accept=accept)
        run = inference._runner(block.model, comp.unravel, d, config, jax.local_device_count() >= 4, None)
        t0 = time.perf_counter()
        u, div, steps, *_ = run(
            jax.random.split(jax.random.PRNGKey(a.seed + 1), 4),
            0.5 * jax.random.normal(jax.random.PRNGKey(a.seed + 2), (4, d)),
            args,
            mode_j,
            L_j,
        )
        U = np.asarray(u)
        report(f"numpyro NUTS at {accept}", time.perf_counter() - t0, int(np.sum(steps)), int(np.sum(div)), U)

    # 3. nutpie on the same whitened log density
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
