"""Outputs that the layout refactor of issue 13 kept: predict, recommend, next-run, check and compare.

The reference numbers were recorded with fixed seeds on the code before the
refactor (``tests/golden/record.py``); the fits are stored as draws, so the
sampler can change without moving them. Everything agrees to 1e-9 except
what the note of issue 13 explains (see ``TOLERANCES``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

import golden_cases as gc  # noqa: E402

# key prefix -> (rtol, atol), where an output is allowed to move; everything else: 1e-9.
TOLERANCES: dict[str, tuple[float, float]] = {}


def _compare(expected, actual) -> list[str]:
    problems = []
    for key in expected.files:
        if key not in actual:
            problems.append(f"{key}: missing")
            continue
        e, a = expected[key], np.asarray(actual[key])
        if e.dtype.kind in "US":
            if not np.array_equal(e, a.astype(str)):
                problems.append(f"{key}: {e[:5]} != {a[:5]}")
            continue
        rtol, atol = next((v for k, v in TOLERANCES.items() if key.startswith(k)), (1e-9, 1e-12))
        if e.shape != a.shape:
            problems.append(f"{key}: shape {e.shape} != {a.shape}")
        elif not np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
            err = np.nanmax(np.abs(a - e) / np.maximum(np.abs(e), 1e-300))
            problems.append(f"{key}: largest relative difference {err:.3g}")
    return problems


@pytest.mark.slow
def test_example_outputs_unchanged():
    fits = gc.example_fits()
    problems = _compare(np.load(GOLDEN / "outputs-example.npz"), gc.outputs_example(*fits))
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.realdata
def test_slimpajama_outputs_unchanged(slimpajama_path):
    problems = _compare(np.load(GOLDEN / "outputs-slimpajama.npz"), gc.outputs_slimpajama(gc.slimpajama_fit()))
    assert not problems, "\n".join(problems)
