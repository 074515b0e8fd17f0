"""Tests for the ``run_tokens`` column: where each run's learning-rate schedule ends.

Pure pandas, no fitting: the default fill, the given column, its errors, auto runs
split by schedule, fractions that survive a subset, and the checkpoint summaries.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmix.data import RunTable, RunTableError, read_regmix, read_runs

SLIMPAJAMA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"
NO_RUN_TOKENS = "no 'run_tokens' column: each run's schedule is taken to end at its last checkpoint"


def sweep(tokens=(1e9, 2e9, 4e9), run_tokens=None, run=False) -> pd.DataFrame:
    """Three runs (two mixtures, two sizes) with a checkpoint at each of ``tokens``; the last run stops early."""
    rows = []
    for r, (w, size) in enumerate((((0.25, 0.75), 1e8), ((0.25, 0.75), 2e8), ((0.6, 0.4), 1e8))):
        for k, d in enumerate(tokens[: len(tokens) - (r == 2)]):
            row = {"weight_a": w[0], "weight_b": w[1], "model_size": size, "n_tokens": d, "a_loss": 3.0 - 0.1 * k}
            if run_tokens is not None:
                row["run_tokens"] = run_tokens
            if run:
                row["run"] = f"r{r}"
            rows.append(row)
    return pd.DataFrame(rows)


def write(tmp_path: Path, df: pd.DataFrame, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- #
# the column in the frame
# --------------------------------------------------------------------------- #


def test_default_is_each_runs_last_checkpoint():
    t = read_runs(sweep(), quiet=True)
    cols = list(t.frame.columns)
    assert cols[cols.index("n_tokens") + 1] == "run_tokens"
    assert t.frame["run_tokens"].dtype == np.float64
    expected = pd.Series(t.n_tokens).groupby(t.run).transform("max").to_numpy()
    np.testing.assert_array_equal(t.run_tokens, expected)
    assert t.run_tokens[-1] == 2e9  # the run that stopped early ends at its own last checkpoint
    assert NO_RUN_TOKENS in t.notes


def test_default_is_taken_after_duplicates_are_dropped():
    df = sweep()
    # A repeat of run 1's last row, 0.05% later: a duplicate checkpoint, dropped, so it cannot set the end.
    df = pd.concat([df, df.iloc[[2]].assign(n_tokens=4e9 * 1.0005)], ignore_index=True)
    t = read_runs(df, quiet=True)
    assert t.n_rows == len(df) - 1
    assert t.run_tokens.max() == 4e9


def test_run_tokens_property_is_a_copy():
    t = read_runs(sweep(), quiet=True)
    t.run_tokens[:] = 1.0
    assert (t.run_tokens > 1.0).all()


def test_given_column_is_used():
    t = read_runs(sweep(run_tokens=8e9), quiet=True)
    assert (t.run_tokens == 8e9).all()
    np.testing.assert_allclose(t.token_fraction(), t.n_tokens / 8e9)
    assert NO_RUN_TOKENS not in t.notes
    assert "ignored" not in " ".join(t.notes)  # run_tokens is a known column, not an ignored one


def test_slack_for_rounded_token_counts():
    # The last checkpoint 0.05% past the schedule's end: rounding, not an error.
    t = read_runs(sweep(run_tokens=4e9 / 1.0005), quiet=True)
    assert t.token_fraction().max() == pytest.approx(1.0005)


def test_final_losses_only_need_no_note():
    t = read_runs(sweep(tokens=(4e9,)).iloc[:2], quiet=True)
    assert NO_RUN_TOKENS not in t.notes
    assert not t.has_checkpoints
    assert t.describe_checkpoints() == "2 rows in 2 runs: 1 row per run (final losses only)"


def test_regmix_and_direct_construction_have_the_column(tmp_path):
    mix, loss = tmp_path / "mix.csv", tmp_path / "loss.csv"
    pd.DataFrame({"index": [1, 2], "train_a": [0.5, 0.2], "train_b": [0.5, 0.8]}).to_csv(mix, index=False)
    pd.DataFrame({"index": [1, 2], "metric/a_val_loss": [3.0, 3.1]}).to_csv(loss, index=False)
    t = read_regmix(mix, loss, model_size=1e6, n_tokens=1e9, quiet=True)
    assert (t.run_tokens == 1e9).all() and not t.has_checkpoints
    # A frame without the column (e.g. a model file written before it existed) gets it in RunTable itself.
    frame = read_runs(sweep(), quiet=True).frame.drop(columns="run_tokens")
    direct = RunTable(frame, ("a", "b"), ("a",), "direct")
    assert list(direct.frame.columns).index("run_tokens") == list(direct.frame.columns).index("n_tokens") + 1
    np.testing.assert_array_equal(direct.run_tokens, read_runs(sweep(), quiet=True).run_tokens)
    assert "run_tokens" not in frame.columns  # the caller's frame is not changed


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #


def test_run_tokens_below_n_tokens(tmp_path):
    df = sweep(run_tokens=4e9)
    df.loc[2, "run_tokens"] = 3.9e9  # 2.5% below this checkpoint: beyond rounding
    path = write(tmp_path, df)
    with pytest.raises(RunTableError) as exc:
        read_runs(path)
    msg = str(exc.value)
    assert str(path) in msg and "row 3 (line 4)" in msg and "column 'run_tokens'" in msg
    assert "run_tokens 3.9e+09 is below this checkpoint's n_tokens 4e+09" in msg


@pytest.mark.parametrize(
    ("cell", "detail"),
    [("", "missing value"), ("soon", "'soon' is not a number"), ("-1", "must be finite and positive, got -1")],
)
def test_bad_cells(tmp_path, cell, detail):
    df = sweep(run_tokens=4e9).astype({"run_tokens": object})
    df.loc[1, "run_tokens"] = cell
    path = write(tmp_path, df)
    with pytest.raises(RunTableError, match=re.escape(f"{path}, row 2 (line 3), column 'run_tokens': {detail}")):
        read_runs(path)


def test_run_tokens_varying_within_a_run(tmp_path):
    df = sweep(run_tokens=4e9, run=True)
    df.loc[4, "run_tokens"] = 8e9  # run r1's second row
    path = write(tmp_path, df)
    with pytest.raises(RunTableError) as exc:
        read_runs(path)
    msg = str(exc.value)
    assert str(path) in msg and "row 5 (line 6)" in msg and "column 'run_tokens'" in msg
    assert "run 'r1' has run_tokens 8e+09 but 4e+09 in its first row, row 4 (line 5)" in msg


# --------------------------------------------------------------------------- #
# auto runs
# --------------------------------------------------------------------------- #


def test_auto_runs_split_by_run_tokens():
    short = sweep(tokens=(1e9, 2e9), run_tokens=2e9)
    long = sweep(tokens=(1e9, 2e9, 4e9), run_tokens=4e9)
    long["a_loss"] -= 0.01  # not exact duplicates of the short runs' rows
    t = read_runs(pd.concat([short, long], ignore_index=True), quiet=True)
    assert t.n_runs == 6  # 3 (mixture, size) pairs x 2 schedules, not 3 merged runs
    assert "no 'run' column: identified 6 runs by (mixture, model_size, run_tokens), named run001..run006" in t.notes
    for r in np.unique(t.run):
        assert len(np.unique(t.run_tokens[t.run == r])) == 1
    # Without the column the same rows are 3 runs, as before.
    assert read_runs(pd.concat([short, long], ignore_index=True).drop(columns="run_tokens"), quiet=True).n_runs == 3


# --------------------------------------------------------------------------- #
# fractions and summaries
# --------------------------------------------------------------------------- #


def test_subset_keeps_fractions_relative_to_the_schedule():
    t = read_runs(sweep(), quiet=True)
    late = t.subset(t.n_tokens >= 2e9)
    np.testing.assert_array_equal(late.run_tokens, t.run_tokens[t.n_tokens >= 2e9])
    np.testing.assert_allclose(late.token_fraction(), t.token_fraction()[t.n_tokens >= 2e9])
    mid = t.subset(t.n_tokens == 2e9)  # the last run's end, the other runs' middle
    np.testing.assert_allclose(mid.token_fraction(), [0.5, 0.5, 1.0])
    assert mid.has_checkpoints
    # drop_early_checkpoints on the subset still measures against the true end.
    assert mid.drop_early_checkpoints(0.6).n_rows == 1


def test_has_checkpoints_and_counts():
    t = read_runs(sweep(), quiet=True)
    assert t.has_checkpoints
    counts = t.checkpoints_per_run()
    assert counts.to_dict() == {"run001": 3, "run002": 3, "run003": 2}
    assert t.describe_checkpoints() == (
        "8 rows in 3 runs: 2 to 3 checkpoints per run (median 3), from 25% to 100% of each run's schedule"
    )
    given = read_runs(sweep(run_tokens=8e9), quiet=True)
    assert given.describe_checkpoints() == (
        "8 rows in 3 runs: 2 to 3 checkpoints per run (median 3), from 12% to 50% of each run's schedule"
    )


def test_one_mid_schedule_checkpoint_per_run_is_not_final_losses():
    t = read_runs(sweep(tokens=(2e9,), run_tokens=4e9), quiet=True)
    assert t.has_checkpoints
    assert t.describe_checkpoints() == "2 rows in 2 runs: 1 checkpoint per run, at 50% of each run's schedule"


# --------------------------------------------------------------------------- #
# the real SlimPajama sweep
# --------------------------------------------------------------------------- #


@pytest.mark.realdata
def test_slimpajama_run_tokens():
    if not SLIMPAJAMA.exists():
        pytest.skip(f"real data not available: {SLIMPAJAMA} is absent (needs ../shared/data)")
    t = read_runs(SLIMPAJAMA, quiet=True)
    last = pd.Series(t.n_tokens).groupby(t.run).transform("max").to_numpy()
    np.testing.assert_array_equal(t.run_tokens, last)
    assert NO_RUN_TOKENS in t.notes
    assert t.has_checkpoints
    # The file has 11 rows per run, but its last two (1.9998e10 and 2e10 tokens, same losses) are one checkpoint,
    # and 12 runs lack one more: 9 or 10 checkpoints per run after cleaning.
    counts = t.checkpoints_per_run()
    assert sorted(counts.unique()) == [9, 10]
    assert t.describe_checkpoints() == (
        "2,228 rows in 224 runs: 9 to 10 checkpoints per run (median 10), from 10% to 100% of each run's schedule"
    )
