"""Every notebook runs top to bottom (quick settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    assert NOTEBOOKS, "no notebooks found"
    monkeypatch.setenv("BAYESMIX_QUICK", "1")
    monkeypatch.setenv("BAYESMIX_PROGRESS", "0")
    nb = nbformat.read(path, as_version=4)
    # A notebook on real data names the files it reads under ../shared/data; without them it cannot run.
    missing = [
        f for f in nb.metadata.get("bayesmix", {}).get("needs_shared_data", []) if not (SHARED_DATA / f).exists()
    ]
    if missing:
        pytest.skip(f"real data not available: {', '.join(missing)} absent from {SHARED_DATA}")
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
