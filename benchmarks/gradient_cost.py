"""What one gradient of a fit's block costs: the block's potential and its gradient, timed in a compiled loop.

A fit's sampling time is leapfrog steps times this cost. The block is what ``bayesmix.fit`` samples for
one target (SlimPajama, every run up to 1.235B, the checkpoint model). Each figure is the median over
``--repeats`` timings of a ``jax.lax.fori_loop`` of ``--evals`` evaluations in a process of its own;
with ``--baseline-ref`` the same is timed with a git ref's code (a temporary worktree), the two
alternating, and the ratio printed pair by pair (ratios hold on a noisy machine; absolute times do not).

Example::

    python benchmarks/gradient_cost.py --target c4 --baseline-ref 774db91
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_comparison import DATA, slimpajama_block  # noqa: E402  (the same block, built the same way)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--target", default="c4", help="the target whose block is timed (default c4)")
    p.add_argument("--law", default="additive")
    p.add_argument("--evals", type=int, default=20000, help="gradient evaluations per timing (default 20000)")
    p.add_argument("--repeats", type=int, default=3, help="timings per code, alternating (default 3)")
    p.add_argument("--baseline-ref", default=None, help="git ref whose code is timed beside this one")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one timing, to stdout
    return p.parse_args(argv)


def worker(a: argparse.Namespace) -> None:
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    import bayesmix

    block, _, comp = slimpajama_block(a.law, a.target)
    z0 = jnp.asarray(np.asarray(comp.starts(jax.random.PRNGKey(0), 1))[0])

    @jax.jit
    def loop(z):
        def body(_, carry):
            z, acc = carry
            v, g = comp.value_and_grad(z, block.args)
            return z + 1e-12 * g, acc + v

        return jax.lax.fori_loop(0, a.evals, body, (z, 0.0))

    jax.block_until_ready(loop(z0))
    t0 = time.perf_counter()
    jax.block_until_ready(loop(z0))
    print(f"RESULT {(time.perf_counter() - t0) / a.evals * 1e6:.3f} {Path(bayesmix.__file__).parents[1]}")


def timing(a: argparse.Namespace, code: Path) -> float:
    """Microseconds per gradient with the package at ``code``, in a new process."""
    args = [sys.executable, str(Path(__file__).resolve()), "--worker", "--target", a.target, "--law", a.law]
    args += ["--evals", str(a.evals)]
    env = dict(os.environ, PYTHONPATH=str(code), BAYESMIX_PROGRESS="0")
    out = subprocess.run(args, cwd=code, env=env, capture_output=True, text=True)
    lines = [line.split() for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"the timing with the code in {code} failed:\n{out.stderr[-3000:]}")
    if Path(lines[0][2]).resolve() != code.resolve():
        raise SystemExit(f"the timing ran the package in {lines[0][2]}, not {code}: check the install")
    return float(lines[0][1])


def main(argv=None) -> int:
    a = parse_args(argv)
    if not DATA.exists():
        print(f"skipped: the SlimPajama sweep is absent ({DATA}); it lives beside the repo in ../shared/data")
        return 0
    if a.worker:
        worker(a)
        return 0
    print(f"{a.law}, SlimPajama up to 1.235B, block {a.target}: microseconds per gradient ({a.evals} per timing)")
    if not a.baseline_ref:
        times = [timing(a, REPO) for _ in range(a.repeats)]
        print(f"  this code: median {statistics.median(times):.1f} (runs: {', '.join(f'{t:.1f}' for t in times)})")
        return 0
    with tempfile.TemporaryDirectory(prefix="bayesmix-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), a.baseline_ref], check=True)
        try:
            pairs = [(timing(a, REPO), timing(a, tree)) for _ in range(a.repeats)]
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    this, base = zip(*pairs)
    ratios = [t / b for t, b in pairs]
    print(f"  this code:           median {statistics.median(this):.1f} (runs: {', '.join(f'{t:.1f}' for t in this)})")
    print(f"  {a.baseline_ref:<20s} median {statistics.median(base):.1f} (runs: {', '.join(f'{t:.1f}' for t in base)})")
    print(
        f"  ratio this / baseline, pair by pair: {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
