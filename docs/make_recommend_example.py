"""Make docs/recommend-example.png: a recommendation from the built-in simulated example.

    python docs/make_recommend_example.py

Uses models/example-additive.nc when it exists (``bayesmix example`` writes
it); otherwise fits the same simulated sweep with few draws. The data are
simulated, so the figure also marks the optimum of the true law (the mean
loss over the four domains at the target scale): the posterior interval of
the optimal weight should contain it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

import bayesmix
from bayesmix.decide import recommend
from bayesmix.example import DOMAINS, TARGET_SIZE, TARGET_TOKENS, example_table, true_loss

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "example-additive.nc"
OUT = REPO / "docs" / "recommend-example.png"


def true_optimum() -> np.ndarray:
    """argmin of the true mean loss over the domains at the target scale (softmax + Nelder-Mead, then polished)."""

    def f(z):
        h = np.exp(z - z.max())
        h /= h.sum()
        return true_loss(h[None], TARGET_SIZE, TARGET_TOKENS).mean()

    options = {"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000}
    starts = np.random.default_rng(0).normal(0, 1, (5, len(DOMAINS)))
    best = min((minimize(f, z0, method="Nelder-Mead", options=options) for z0 in starts), key=lambda r: r.fun)
    h = np.exp(best.x - best.x.max())
    return h / h.sum()


def main(argv=None) -> int:
    description = "Make docs/recommend-example.png from the simulated example (no options)."
    argparse.ArgumentParser(description=description).parse_args(argv)
    if MODEL.exists():
        fit = bayesmix.load(MODEL)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bayesmix.FitWarning)
            fit = bayesmix.fit(example_table(0), "additive", chains=2, warmup=300, draws=300, seed=0, progress=False)
    baseline = np.full(len(DOMAINS), 1 / len(DOMAINS))
    rec = recommend(fit, TARGET_SIZE, TARGET_TOKENS, baseline=baseline, seed=0)
    print(rec.summary())
    truth = true_optimum()
    print("true optimum:", ", ".join(f"{d}={x:.3f}" for d, x in zip(DOMAINS, truth)))
    fig = rec.plot_weights()
    ax = fig.axes[0]
    x = np.arange(len(DOMAINS)) - 0.19
    ax.plot(x, truth, "D", color="tab:red", ms=6, label="optimum of the simulated truth")
    ax.legend(fontsize=8, frameon=False)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=120, bbox_inches="tight")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
