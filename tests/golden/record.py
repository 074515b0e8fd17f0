"""Record the outputs that the layout refactor (issue 13) must not change.

Run from the repository root: ``python tests/golden/record.py``. It writes
``tests/golden/outputs-*.npz``, which ``tests/test_golden.py`` compares with
today's code to 1e-9. The fits it uses are stored as posterior draws, not
refitted, so a later change to the sampler does not move these numbers: for
the built-in example the saved model itself (``example-*.nc``), for the small
SlimPajama fit only the draws (``slimpajama-draws.npz``), since the data must
stay in ``../shared/data`` (the test rebuilds the table from there).

Rerun it only when an output is meant to change, and say why in the commit.
The next-run outputs of the example were recorded (on the code before the
refactor) on the own_weight fit with every draw (``max_draws=None``): the refactor made one
thinning rule for all callers and next-run's old rule picked other draws.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import golden_cases as gc  # noqa: E402


def main() -> None:
    warnings.simplefilter("ignore")
    fits = gc.example_fits(record=True)
    out = gc.outputs_example(*fits)
    np.savez_compressed(HERE / "outputs-example.npz", **out)
    print(f"example: {len(out)} arrays")
    if gc.SLIMPAJAMA.exists():
        fit = gc.slimpajama_fit(record=True)
        out = gc.outputs_slimpajama(fit)
        np.savez_compressed(HERE / "outputs-slimpajama.npz", **out)
        print(f"slimpajama: {len(out)} arrays")
    else:
        print(f"skipped SlimPajama: {gc.SLIMPAJAMA} is absent")


if __name__ == "__main__":
    main()
