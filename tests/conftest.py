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


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Free every compiled program after each test module.

    Each XLA CPU executable holds its own memory mappings, and one pytest
    process compiles thousands of them (every law, shape and sampler). The
    full suite crashed twice with a segmentation fault inside XLA's compiler
    at the same late test (tests/test_recovery.py, which passes alone); the
    likely cause is the kernel's limit of 65530 mappings per process
    (vm.max_map_count). With this fixture the process peaks at about 12,000
    mappings and the suite passes. Programs stay cached per process in real
    use, where they are reused; the tests release them here.
    """
    yield
    bayesmix.clear_caches()
