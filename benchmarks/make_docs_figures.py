"""Regenerate docs/check-example.png: the posterior predictive check of the built-in (SIMULATED) example.

    python benchmarks/make_docs_figures.py

Fits the additive law to bayesmix's simulated example sweep (the data of
`bayesmix example`), runs bayesmix.checks.check and saves the interval
figure under docs/, plus the full report under benchmarks/results/docs_check/.
Prints the coverage table the figure summarises.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import bayesmix
from bayesmix.checks import check
from bayesmix.example import example_table

os.environ.setdefault("BAYESMIX_PROGRESS", "0")

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    description = "Regenerate docs/check-example.png from the simulated example (no options)."
    argparse.ArgumentParser(description=description).parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bayesmix.FitWarning)
        fit = bayesmix.fit(example_table(seed=0), "additive", chains=2, warmup=500, draws=500, seed=0, progress=False)
    for w in caught:
        print(f"warning: {w.message}")
    result = check(fit)
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    result.figures["check-intervals"].savefig(docs / "check-example.png", dpi=90)
    paths = result.save(ROOT / "benchmarks" / "results" / "docs_check")
    print(result.table.round(3).to_string())
    print(f"saved {docs / 'check-example.png'}")
    for p in paths:
        print(f"saved {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
