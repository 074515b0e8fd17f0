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

# What the refactor changed on purpose (the note of issue 13 says why):
#
# - Each draw's own optimum (recommend's argmin and regret, next-run's L_opt)
#   comes from decide's batched solver, which issue 13 fixed: the projected
#   gradient stalled on ill-conditioned posteriors (SlimPajama: mean regret
#   2.4e-4 found where SLSQP finds 3.7e-4). So regrets are checked to be at
#   least the old ones in every draw (a better optimum can only raise them),
#   and where an optimum is flat its location (argmin_draws) is not compared.
# - next-run decides with decide's solver (SLSQP from recommend's starts)
#   instead of its own exponentiated gradient: the recommended mixture moves
#   by up to 2.5e-5 (the old one had not fully converged), and what depends on
#   it by at most 3e-3 relative; its value of information depends on the
#   per-draw optima and is not compared.
#
# - How the optimiser's starts ended (their spread, how many optima, the projected gradient) follows SLSQP's path,
#   which differs between CPUs: on an AMD EPYC two corner starts of the example stopped 2% above the optimum while
#   reporting success, where the recording machine's had not. solve now restarts SLSQP at a point that is not
#   stationary, so these are checked to be no worse than recorded (up to a floor of solver noise), not equal. The
#   restarts polish the capped CVaR optimum (its projected gradient went from 6.6e-8 to 1.2e-9): recommend's outputs
#   agree to 1e-5 relative, and per-draw regrets may fall by solver noise (1e-6).
NOT_COMPARED = ("argmin_draws", "next_run/table/regret_reduction", "next_run/batch/regret_reduction")
AT_LEAST = ("regret_draws",)
TOLERANCES: dict[str, tuple[float, float]] = {
    "next_run/recommended": (0.0, 1e-4),
    "next_run/": (5e-3, 1e-12),
    "recommend": (1e-5, 1e-6),
}
REGRET_NOISE = 1e-6


def _close(key: str, e: np.ndarray, a: np.ndarray) -> str | None:
    rtol, atol = next((v for k, v in TOLERANCES.items() if key.startswith(k)), (1e-9, 1e-12))
    if e.shape != a.shape:
        return f"{key}: shape {e.shape} != {a.shape}"
    if not np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
        err = np.nanmax(np.abs(a - e) / np.maximum(np.abs(e), 1e-300))
        return f"{key}: largest relative difference {err:.3g}"
    return None


# how each start ended: (direction, floor); "lower" means the new value must not exceed max(old, floor)
SEARCH_NO_WORSE = {
    "projected_gradient_norm": ("lower", 1e-5),
    "starts_max_tv": ("lower", 1e-5),
    "near_best_max_tv": ("lower", 1e-5),
    "starts_loss_range": ("lower", 1e-9),
    "local_optima": ("lower", 1.0),
    "starts_at_best": ("higher", 0.0),
}


def _no_worse_search(key: str, e: dict, a: dict) -> list[str]:
    out = []
    for name, (way, floor) in SEARCH_NO_WORSE.items():
        if name not in e:
            continue
        worse = a[name] > max(e[name], floor) if way == "lower" else a[name] < e[name]
        if worse:
            out.append(f"{key}[{name}]: {a[name]:.3g}, worse than the recorded {e[name]:.3g}")
    return out


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
        if any(k in key for k in NOT_COMPARED):
            continue
        if any(k in key for k in AT_LEAST):
            if e.shape != a.shape or np.any(a < e - REGRET_NOISE):
                problems.append(f"{key}: lower than before in {np.sum(a < e - REGRET_NOISE)} draws")
            continue
        if key.endswith("/metrics"):  # regret metrics follow the per-draw optima (see above)
            names = np.asarray(actual[key + "_names"]).astype(str)
            problems += _no_worse_search(key, dict(zip(names, e)), dict(zip(names, a)))
            keep = np.array(["regret" not in n and n not in SEARCH_NO_WORSE for n in names])
            e, a = e[keep], a[keep]
        if key == "next_run/q":  # (mean, variance, expected regret) of Q
            if a[2] < e[2] * (1 - 5e-3):  # h_rec moved a little (see above); a better optimum cannot lower it more
                problems.append(f"{key}: expected regret {a[2]:.4g} below the old {e[2]:.4g}")
            e, a = e[:2], a[:2]
        problem = _close(key, e, a)
        if problem:
            problems.append(problem)
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
