"""Shared fixtures: a small fitted model (fit once per session) and the real-data path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("BAYESMIX_PROGRESS", "0")

import bayesmix  # noqa: E402  (sets XLA flags before jax starts)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SLIMPAJAMA = SHARED_DATA / "dmsl_llm_slimpajama.csv"


@pytest.fixture(scope="session")
def slimpajama_path() -> Path:
    """Path of the real SlimPajama sweep; skips the test where ../shared/data is absent."""
    if not SLIMPAJAMA.exists():
        pytest.skip(f"real data not available: {SLIMPAJAMA} is absent (it lives beside the repo, in ../shared/data)")
    return SLIMPAJAMA


@pytest.fixture(scope="session")
def example_frame():
    """The built-in simulated sweep as a DataFrame."""
    from bayesmix.example import example_table

    return example_table(seed=0)


@pytest.fixture(scope="session")
def small_fit(example_frame):
    """The additive law fitted to the simulated example with few draws (shared by io/cli/predict tests)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesmix.FitWarning)
        return bayesmix.fit(example_frame, "additive", chains=2, warmup=150, draws=100, seed=3, progress=False)
