"""Record the posterior of a sweep of final losses on the code before the checkpoint model (issue 14).

First recorded on ef9d71b; re-recorded on the laws' slope revision (revision 3 of the additive law, whose
coordinates and priors of the scale terms differ), with the same command and the code of that revision. Re-recorded
on 4336f49 from a long run (4 chains x 3,000 draws, seed 11; ESS over 1,200 for every entry): the 600-draw
reference of before carried Monte Carlo error of its own (ESS down to ~50 for ``v``), and long runs on 4336f49 and
on the drop coordinates (88626f5) agreed with each other (max |z| 1.9) but both sat 0.32-0.37 sd from it in ``v``.

Run from outside the repository with the old code first on the path, e.g.::

    git worktree add /tmp/old ef9d71b
    cd /tmp && PYTHONPATH=/tmp/old python /path/to/tests/golden/record_final_only.py /path/to/tests/golden

It writes ``final-only-before.npz``: per site the posterior mean and sd of
:func:`final_only_fit` (tests/test_schedule.py refits it and compares).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np


def final_only_frame():
    """A sweep of final losses: 3 domains, 4 sizes, 10 mixtures, one row per run (simulated, additive law)."""
    from bayesmix.laws import additive
    from bayesmix.simulate import simulate_losses, sweep_design

    d = sweep_design(("web", "code", "math"), (4e7, 1e8, 2.5e8, 6e8), 10, checkpoints=1, seed=5)
    p = additive.from_paper_parameters(
        E=np.array([1.9, 0.8, 1.2]),
        A=np.full(3, 0.35),
        alpha=np.array([0.34, 0.30, 0.36]),
        B=np.full(3, 0.30),
        beta=np.array([0.28, 0.30, 0.26]),
        w=0.08 + 0.6 * np.eye(3),
        gamma=np.full((3, 3), 0.45),
    )
    return simulate_losses(additive.Additive(), d, ("web", "code", "math"), {**p, "sigma": np.full(3, 0.005)}, seed=6)


def final_only_fit(chains: int = 2, draws: int = 300, seed: int = 1):
    """The test's fit (the defaults); the reference is recorded with many more draws so its own error is small."""
    import bayesmix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesmix.FitWarning)
        return bayesmix.fit(
            final_only_frame(),
            "additive",
            chains=chains,
            warmup=300,
            draws=draws,
            seed=seed,
            progress=False,
            extrapolation_sd=0.01,
        )


if __name__ == "__main__":
    out = Path(sys.argv[1]) / "final-only-before.npz"
    fit = final_only_fit(chains=4, draws=3000, seed=11)
    flat = fit.flat_draws()
    np.savez(out, **{f"{k}/mean": v.mean(0) for k, v in flat.items()}, **{f"{k}/sd": v.std(0) for k, v in flat.items()})
    print("wrote", out, sorted(flat))
