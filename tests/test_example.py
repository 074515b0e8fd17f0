"""`bayesmix example` end to end (reduced draws)."""

from __future__ import annotations

import pytest

from bayesmix.cli import main

pytestmark = pytest.mark.slow


def test_example_runs_end_to_end(tmp_path, capsys):
    rc = main(
        [
            "example",
            "--chains",
            "2",
            "--warmup",
            "150",
            "--draws",
            "100",
            "--out",
            str(tmp_path / "models"),
            "--figures",
            str(tmp_path / "fig"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "SIMULATED" in out
    assert (tmp_path / "models" / "example-additive.nc").exists()
    assert (tmp_path / "fig" / "example-predictions.png").stat().st_size > 10_000
    assert (tmp_path / "fig" / "example-fit.png").stat().st_size > 10_000
    # the printed comparison with the simulated truth: most 90% intervals contain it
    line = next(l for l in out.splitlines() if l.startswith("the truth is inside"))
    inside, total = (int(w) for w in line.split("for ")[1].split(" predictions")[0].split(" of "))
    assert total == 20 and inside >= 15
