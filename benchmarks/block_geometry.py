"""How far one block's posterior is from the Laplace whitening the sampler starts with, and in which directions.

The fit whitens each block by the Laplace approximation at its mode (``bayesmix.inference``), so NUTS sees an
identity-shaped target only where the posterior is close to that Gaussian. This samples one block with numpyro's
NUTS in those coordinates (4 chains, ``--draws`` warm-up and draws; no re-whitening, no retry) and prints:

1. leapfrog steps per draw, divergences and each chain's step size;
2. the eigenvalues of the draws' covariance in the whitened coordinates (1 everywhere if the Laplace approximation
   were right), with the skew and excess kurtosis of the draws along each eigenvector: a large eigenvalue is a
   direction the mode's curvature made too narrow, a large kurtosis a heavy tail;
3. per unconstrained coordinate: its value at the mode, the posterior mean and sd, the Laplace sd and the mean's
   shift from the mode in Laplace sds (a mode far from the posterior's mass shows here);
4. the three widest directions, mapped back to the unconstrained coordinates (largest loadings, scaled to 1);
5. where the divergent draws sit: each coordinate's percentile among all draws (median and range).

Like ``sampler_comparison.py`` it reaches into ``bayesmix.inference`` on purpose, to sample exactly what the fit
samples. The mode search's starts come from ``--seed``, not from the fit's key for the block, so the mode can differ
from the fit's where a block has several.

Example::

    python benchmarks/block_geometry.py --law exponential --target book
    python benchmarks/block_geometry.py --sweep regmix --law exponential --target the_pile_ubuntu_irc
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warmup_length import DATA, sweep_table, table_block  # noqa: E402  (the same blocks as the fit samples)

REGMIX = Path(__file__).resolve().parents[2] / "shared" / "data" / "regmix"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--law", default="exponential")
    p.add_argument("--target", default="book", help="the target whose block is sampled (default book)")
    p.add_argument(
        "--sweep",
        choices=("scale", "one-scale", "example", "regmix"),
        default="scale",
        help="SlimPajama's runs up to 1.235B (scale), its one-scale split, the built-in example, or RegMix's 512 "
        "runs at 1M (default scale)",
    )
    p.add_argument("--accept", type=float, default=0.9, help="NUTS target_accept (default 0.9, the fit's first try)")
    p.add_argument("--draws", type=int, default=500, help="warm-up and draws per chain (default 500 each)")
    p.add_argument("--starts", type=int, default=4, help="starts of the mode search (default 4, as the fit)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load_table(sweep: str):
    """The run table of ``--sweep``."""
    if sweep != "regmix":
        return sweep_table(sweep)
    import bayesmix

    return bayesmix.read_regmix(
        REGMIX / "train_mixture_1m.csv", REGMIX / "train_pile_loss_1m.csv", model_size=1e6, n_tokens=1e9, quiet=True
    )


def coordinate_names(comp) -> list[str]:
    """One name per unconstrained scalar of the block, in the order of its flat vector."""
    import jax.numpy as jnp
    import numpy as np

    names = []
    for site, value in comp.unravel(jnp.zeros(comp.dim)).items():
        size = int(np.size(value))
        names += [f"{site}[{i}]" for i in range(size)] if size > 1 else [site]
    return names


def main(argv=None) -> int:
    a = parse_args(argv)
    source = REGMIX / "train_mixture_1m.csv" if a.sweep == "regmix" else DATA
    if a.sweep != "example" and not source.exists():
        print(f"skipped: the sweep is absent ({source}); it lives beside the repo in ../shared/data")
        return 0
    import jax
    import jax.numpy as jnp
    import numpy as np

    import bayesmix  # noqa: F401  (sets the XLA device count before jax starts)
    from bayesmix import inference
    from bayesmix.diagnostics import split_rhat_ess

    block, comp = table_block(load_table(a.sweep), a.law, a.target)
    args, d, names = block.args, comp.dim, coordinate_names(comp)
    starts = np.asarray(comp.starts(jax.random.PRNGKey(a.seed), a.starts), dtype=np.float64)
    mode, cov, _ = inference.find_mode(comp, args, list(starts))  # the best start by energy, as the fit's search
    L = np.linalg.cholesky(cov)
    config = inference.SamplerConfig(warmup=a.draws, draws=a.draws, target_accept=a.accept)
    run = inference._runner(block.model, comp.unravel, d, config, jax.local_device_count() >= 4, None)
    keys = jax.random.split(jax.random.PRNGKey(a.seed + 1), 4)
    u0 = 0.5 * jax.random.normal(jax.random.PRNGKey(a.seed + 2), (4, d))
    t0 = time.perf_counter()
    states, _, _ = run.warm(keys, u0, args, jnp.asarray(mode), jnp.asarray(L))
    u, div, steps, *_, eps = run.draw(states, args, jnp.asarray(mode), jnp.asarray(L))
    U, div = np.asarray(u), np.asarray(div).reshape(-1).astype(bool)
    print(
        f"{a.law}, {a.target} ({a.sweep}, {d} dimensions), target_accept {a.accept}: {time.perf_counter() - t0:.0f} s, "
        f"{np.sum(steps) / div.size:.1f} leapfrog steps per draw, {int(div.sum())} divergences, step sizes "
        + ", ".join(f"{e:.4f}" for e in np.asarray(eps))
    )

    flat = U.reshape(-1, d)
    w, V = np.linalg.eigh(np.cov(flat.T))
    P = (flat - flat.mean(0)) @ V
    skew = (P**3).mean(0) / P.std(0) ** 3
    kurt = (P**4).mean(0) / P.std(0) ** 4 - 3
    print("\nwhitened draws' covariance, eigenvalues (smallest first) with skew and excess kurtosis along each:")
    print("  " + ", ".join(f"{x:.3g} ({s:+.1f}, {k:+.1f})" for x, s, k in zip(w, skew, kurt)))

    Z = flat @ L.T + mode
    lap_sd = np.sqrt(np.diag(cov))
    _, bulk, _ = split_rhat_ess(Z.reshape(U.shape))
    print("\nper coordinate (unconstrained): mode, posterior mean and sd, Laplace sd, mean - mode in Laplace sds, ESS:")
    for i, name in enumerate(names):
        print(
            f"  {name:18s} {mode[i]:9.3f} {Z[:, i].mean():9.3f} {Z[:, i].std():8.3f} {lap_sd[i]:8.3f} "
            f"{(Z[:, i].mean() - mode[i]) / lap_sd[i]:+7.2f} {bulk[i]:7.0f}"
        )
    print("\nthe widest directions (eigenvalue: largest loadings on the unconstrained coordinates, scaled to 1):")
    for k in range(1, min(3, d) + 1):
        v = L @ V[:, -k]
        v = v / np.abs(v).max()
        top = np.argsort(-np.abs(v))[:6]
        print(f"  {w[-k]:.3g}: " + ", ".join(f"{names[i]} {v[i]:+.2f}" for i in top))
    if div.any():
        pct = np.argsort(np.argsort(Z, 0), 0) / len(Z)
        print(f"\nthe {int(div.sum())} divergent draws: each coordinate's percentile among all draws, median (range)")
        for i, name in enumerate(names):
            q = pct[div, i]
            print(f"  {name:18s} {np.median(q):.2f} ({q.min():.2f}-{q.max():.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
