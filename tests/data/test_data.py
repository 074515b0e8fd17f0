"""Tests for bayesmix.data: the run-table readers and their error messages."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmix.data import (
    RunTable,
    RunTableError,
    parse_mixture,
    parse_target_weights,
    read_mixtures,
    read_regmix,
    read_runs,
)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SLIMPAJAMA = DATA_DIR / "dmsl_llm_slimpajama.csv"
SLIM_DOMAINS = ("arxiv", "book", "c4", "github", "commoncrawl", "stackexchange", "wikipedia")


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def small_frame() -> pd.DataFrame:
    """A valid table: 2 runs (same mixture, two sizes) x 3 checkpoints, plus a second mixture."""
    rows = []
    for w, size in (((0.25, 0.75), 1e8), ((0.25, 0.75), 2e8), ((0.6, 0.4), 1e8)):
        for k, tokens in enumerate((1e9, 2e9, 3e9)):
            loss = 3.0 - 0.1 * k - size / 1e9
            rows.append(
                {
                    "weight_a": w[0],
                    "weight_b": w[1],
                    "model_size": size,
                    "n_tokens": tokens,
                    "a_loss": loss,
                    "x_loss": loss + 0.5,
                }
            )
    return pd.DataFrame(rows)


def write(tmp_path: Path, text: str, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def csv_of(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


def dropped(table: RunTable) -> int:
    return sum(int(m.group(1)) for n in table.notes if (m := re.match(r"dropped (\d+)", n)))


# --------------------------------------------------------------------------- #
# the real SlimPajama sweep
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def slim() -> RunTable:
    if not SLIMPAJAMA.exists():
        pytest.skip(f"real data not available: {SLIMPAJAMA} is absent (needs ../shared/data)")
    return read_runs(SLIMPAJAMA, quiet=True)


@pytest.mark.realdata
class TestSlimPajama:
    def test_shape_after_cleaning(self, slim):
        assert slim.n_rows == 2228
        assert slim.n_runs == 224
        # 60 mixtures shared by the small sizes + 1 new at 2.718B
        assert slim.n_mixtures == 61
        assert slim.source == str(SLIMPAJAMA)
        assert isinstance(slim.frame.index, pd.RangeIndex)

    def test_domains_and_targets_in_column_order(self, slim):
        assert slim.domains == SLIM_DOMAINS
        assert slim.targets == SLIM_DOMAINS + ("openhermes",)
        assert list(slim.frame.columns) == (
            [f"weight_{d}" for d in SLIM_DOMAINS]
            + ["model_size", "n_tokens", "run_tokens"]
            + [f"{t}_loss" for t in slim.targets]
            + ["run"]
        )
        assert slim.own_domain("c4") == "c4"
        assert slim.own_domain("openhermes") is None

    def test_masked_cells(self, slim):
        masked = dict(zip(slim.targets, np.isnan(slim.losses).sum(axis=0).tolist()))
        assert masked == {
            "arxiv": 0,
            "book": 0,
            "c4": 0,
            "github": 2,
            "commoncrawl": 0,
            "stackexchange": 5,
            "wikipedia": 6,
            "openhermes": 3,
        }
        for target, n in (("github", 2), ("stackexchange", 5), ("wikipedia", 6), ("openhermes", 3)):
            assert any(note.startswith(f"masked {n} missing cells in {target}_loss") for note in slim.notes)

    def test_duplicates_noted(self, slim):
        notes = [n for n in slim.notes if n.startswith("dropped")]
        assert len(notes) == 1 and notes[0].startswith("dropped 224 duplicate checkpoints")
        assert slim.n_rows + dropped(slim) == 2452
        assert any("identified 224 runs by (mixture, model_size)" in n for n in slim.notes)

    def test_runs_per_size_match_readme(self, slim):
        runs = pd.Series(slim.run).groupby(slim.model_size).nunique()
        assert runs.to_dict() == {122e6: 60, 310e6: 60, 680e6: 40, 937e6: 40, 1.235e9: 20, 2.718e9: 4}
        unique, index = slim.mixtures()
        big = set(index[slim.model_size == 2.718e9].tolist())
        small = set(index[slim.model_size < 2.718e9].tolist())
        assert len(big) == 4 and len(big & small) == 3
        assert len(small) == 60
        # every run now has 10 distinct checkpoints: 11 minus its duplicated last one
        per_run = pd.Series(slim.run).value_counts()
        assert set(per_run.tolist()) <= {9, 10}

    def test_values(self, slim):
        w = slim.weights
        assert w.shape == (2228, 7) and w.dtype == np.float64
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
        assert w.min() >= 0.02 - 1e-12
        losses = slim.losses
        assert losses.shape == (2228, 8)
        assert np.all(np.isnan(losses) | (losses > 0))
        assert slim.run.dtype.kind == "U" and slim.run[0] == "run001"
        assert slim.run[-1] == "run224"

    def test_logging(self, caplog):
        if not SLIMPAJAMA.exists():
            pytest.skip(f"real data not available: {SLIMPAJAMA} is absent")
        with caplog.at_level(logging.INFO, logger="bayesmix"):
            read_runs(SLIMPAJAMA)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert len(warnings) == 5  # 224 duplicates + 4 masked targets
        assert any("dropped 224 duplicate checkpoints" in m for m in warnings)
        assert any("identified 224 runs" in m for m in infos)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bayesmix"):
            read_runs(SLIMPAJAMA, quiet=True)
        assert caplog.records == []

    def test_extrapolation_split(self, slim):
        small = slim.subset(slim.model_size <= 1.235e9)
        big = slim.subset(slim.model_size == 2.718e9)
        assert small.n_rows + big.n_rows == slim.n_rows
        assert big.n_runs == 4 and big.n_mixtures == 4
        assert small.n_mixtures == 60
        assert big.notes == slim.notes and big.domains == slim.domains


# --------------------------------------------------------------------------- #
# read_runs: valid input
# --------------------------------------------------------------------------- #


class TestReadRunsValid:
    def test_dataframe_roundtrip(self):
        df = small_frame()
        t = read_runs(df, quiet=True)
        assert t.source == "<DataFrame>"
        assert t.n_rows == 9 and t.n_runs == 3 and t.n_mixtures == 2
        assert t.domains == ("a", "b") and t.targets == ("a", "x")
        assert t.run.tolist() == ["run001"] * 3 + ["run002"] * 3 + ["run003"] * 3
        np.testing.assert_array_equal(t.model_size, df["model_size"].to_numpy())
        np.testing.assert_array_equal(t.losses, df[["a_loss", "x_loss"]].to_numpy())
        assert t.weights.shape == (9, 2) and t.n_tokens.shape == (9,)
        assert t.notes == (
            "no 'run' column: identified 3 runs by (mixture, model_size), named run001..run003",
            "no 'run_tokens' column: each run's schedule is taken to end at its last checkpoint",
        )

    def test_csv_same_as_dataframe(self, tmp_path):
        df = small_frame()
        t1 = read_runs(write(tmp_path, csv_of(df)), quiet=True)
        t2 = read_runs(df, quiet=True)
        pd.testing.assert_frame_equal(t1.frame, t2.frame)
        assert t1.source == str(tmp_path / "runs.csv")

    def test_run_column_used_as_str(self):
        df = small_frame()
        df["run"] = [7] * 3 + [8] * 3 + [9] * 3
        t = read_runs(df, quiet=True)
        assert t.run.tolist() == ["7"] * 3 + ["8"] * 3 + ["9"] * 3
        assert not any("identified" in n for n in t.notes)

    def test_ignored_columns_reported_once(self):
        df = small_frame().assign(seed=1, comment="x")
        t = read_runs(df, quiet=True)
        assert [n for n in t.notes if "ignored" in n] == ["ignored columns: seed, comment"]
        assert "seed" not in t.frame.columns

    def test_renormalised_within_tolerance(self):
        df = small_frame()
        df.loc[[0, 4], "weight_a"] += 0.0005
        t = read_runs(df, quiet=True)
        assert "renormalised 2 rows whose weights summed to 1.0005, not 1 (tolerance 0.001; rows 1, 5)" in t.notes
        np.testing.assert_allclose(t.weights.sum(axis=1), 1.0, atol=1e-15)

    def test_float_noise_is_not_renormalised(self):
        df = small_frame()
        df.loc[0, "weight_a"] += 1e-12
        t = read_runs(df, quiet=True)
        assert not any("renormalised" in n for n in t.notes)

    def test_custom_tolerance(self):
        df = small_frame()
        df.loc[0, "weight_a"] = 0.2  # sums to 0.95
        t = read_runs(df, weight_tolerance=0.1, quiet=True)
        assert "renormalised 1 row whose weights summed to 0.95, not 1 (tolerance 0.1; row 1)" in t.notes
        with pytest.raises(RunTableError, match="weight_tolerance"):
            read_runs(small_frame(), weight_tolerance=-1)

    def test_missing_loss_masked_with_note(self):
        df = small_frame()
        df.loc[[2, 5], "x_loss"] = np.nan
        t = read_runs(df, quiet=True)
        assert "masked 2 missing cells in x_loss (rows 3, 6)" in t.notes
        assert np.isnan(t.losses[:, 1]).sum() == 2 and t.n_rows == 9

    def test_row_with_all_losses_missing_dropped(self):
        df = small_frame()
        df.loc[4, ["a_loss", "x_loss"]] = np.nan
        t = read_runs(df, quiet=True)
        assert "dropped 1 row whose losses are all missing (row 5)" in t.notes
        assert t.n_rows == 8 and not np.isnan(t.losses).any()

    def test_exact_duplicates_dropped(self):
        df = small_frame()
        df = pd.concat([df, df.iloc[[1, 1]]], ignore_index=True)
        t = read_runs(df, quiet=True)
        assert "dropped 2 exact duplicate rows (rows 10, 11)" in t.notes
        assert t.n_rows == 9

    def test_duplicate_checkpoints(self):
        df = small_frame()
        # a repeat of the last checkpoint, 0.01% more tokens, same losses (incl. a NaN)
        df.loc[2, "x_loss"] = np.nan
        repeat = df.iloc[[2]].assign(n_tokens=3e9 * 1.0001)
        far = df.iloc[[5]].assign(n_tokens=3e9 * 1.01)  # 1% apart: a different checkpoint
        other = df.iloc[[8]].assign(n_tokens=3e9 * 1.0001, a_loss=9.9)  # different losses
        df = pd.concat([df, repeat, far, other], ignore_index=True)
        t = read_runs(df, quiet=True)
        notes = [n for n in t.notes if n.startswith("dropped")]
        assert len(notes) == 1 and notes[0].startswith("dropped 1 duplicate checkpoint (row 10)")
        assert t.n_rows == 11
        assert t.n_tokens[2] == 3e9  # the first of the pair is kept

    def test_huge_and_tiny_magnitudes(self):
        df = small_frame()
        df["model_size"] *= 1e7  # up to 2e15
        df["a_loss"] *= 1e-9
        t = read_runs(df, quiet=True)
        assert t.model_size.max() == pytest.approx(2e15)
        assert t.losses[:, 0].min() > 0

    def test_unicode_domain_names(self, tmp_path):
        df = small_frame().rename(columns={"weight_a": "weight_数学", "a_loss": "数学_loss", "weight_b": "weight_ção"})
        t = read_runs(write(tmp_path, csv_of(df)), quiet=True)
        assert t.domains == ("数学", "ção") and t.targets == ("数学", "x")
        assert t.own_domain("数学") == "数学"

    def test_bom_and_blank_lines(self, tmp_path):
        lines = csv_of(small_frame()).splitlines()
        text = "\ufeff" + lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n\n"
        t = read_runs(write(tmp_path, text), quiet=True)
        assert t.n_rows == 9

    def test_named_dataframe_index_reported(self):
        df = small_frame()
        df.index.name = "step"
        t = read_runs(df, quiet=True)
        assert any("ignored the DataFrame index (step)" in n for n in t.notes)

    def test_logging_levels(self, caplog):
        df = small_frame()
        df.loc[0, "x_loss"] = np.nan
        with caplog.at_level(logging.INFO, logger="bayesmix"):
            read_runs(df.assign(seed=1))
        levels = {r.getMessage().split(": ", 1)[1].split(" ")[0]: r.levelno for r in caplog.records}
        assert levels["masked"] == logging.WARNING
        assert levels["ignored"] == logging.INFO

    def test_input_not_mutated(self):
        df = small_frame()
        df.loc[0, "weight_a"] += 0.0005
        before = df.copy()
        read_runs(df, quiet=True)
        pd.testing.assert_frame_equal(df, before)


# --------------------------------------------------------------------------- #
# read_runs: every error
# --------------------------------------------------------------------------- #


class TestReadRunsErrors:
    def test_empty_file(self, tmp_path):
        with pytest.raises(RunTableError, match=r"runs\.csv: file is empty"):
            read_runs(write(tmp_path, ""))

    def test_header_only(self, tmp_path):
        header = csv_of(small_frame()).splitlines()[0]
        with pytest.raises(RunTableError, match=r"runs\.csv: no data rows"):
            read_runs(write(tmp_path, header + "\n"))
        with pytest.raises(RunTableError, match=r"<DataFrame>: no data rows"):
            read_runs(small_frame().iloc[:0])

    def test_not_utf8(self, tmp_path):
        path = tmp_path / "runs.csv"
        path.write_bytes(b"weight_a,model_size\n\xff\xfe,1\n")
        with pytest.raises(RunTableError, match=r"runs\.csv: unreadable CSV: not UTF-8"):
            read_runs(path)

    def test_ragged_row(self, tmp_path):
        lines = csv_of(small_frame()).splitlines()
        lines[3] += ",1.0"
        with pytest.raises(RunTableError, match=r"runs\.csv, row 3 \(line 4\): has 7 fields, the header has 6"):
            read_runs(write(tmp_path, "\n".join(lines)))

    def test_missing_file_and_bad_source(self, tmp_path):
        with pytest.raises(RunTableError, match=r"nope\.csv: cannot read file"):
            read_runs(tmp_path / "nope.csv")
        with pytest.raises(RunTableError, match="expected a CSV path or a pandas DataFrame, got list"):
            read_runs([1, 2])

    def test_duplicated_column_names_csv(self, tmp_path):
        lines = csv_of(small_frame()).splitlines()
        lines[0] = lines[0].replace("x_loss", "a_loss")
        with pytest.raises(RunTableError, match=r"runs\.csv: duplicated column names: 'a_loss' \(columns 5 and 6\)"):
            read_runs(write(tmp_path, "\n".join(lines)))

    def test_duplicated_column_names_dataframe(self):
        df = small_frame()
        df = pd.concat([df, df[["weight_a"]]], axis=1)
        with pytest.raises(RunTableError, match=r"<DataFrame>: duplicated column names: 'weight_a'"):
            read_runs(df)

    @pytest.mark.parametrize(
        ("drop", "message"),
        [
            (["weight_a", "weight_b"], r"no 'weight_<domain>' columns \(columns found: 'model_size'"),
            (["a_loss", "x_loss"], r"no '<target>_loss' columns"),
            (["model_size"], r"missing required column 'model_size'"),
            (["n_tokens"], r"missing required column 'n_tokens'"),
            (["model_size", "n_tokens"], r"missing required columns 'model_size', 'n_tokens'"),
        ],
    )
    def test_missing_columns(self, tmp_path, drop, message):
        with pytest.raises(RunTableError, match=r"runs\.csv: " + message):
            read_runs(write(tmp_path, csv_of(small_frame().drop(columns=drop))))

    def test_semicolon_hint(self, tmp_path):
        text = csv_of(small_frame()).replace(",", ";")
        with pytest.raises(RunTableError, match=r"runs\.csv: the header has a single column .*looks delimited by ';'"):
            read_runs(write(tmp_path, text))

    def test_non_numeric_cell_csv(self, tmp_path):
        lines = csv_of(small_frame()).splitlines()
        fields = lines[4].split(",")
        fields[4] = "oops"
        lines[4] = ",".join(fields)
        with pytest.raises(
            RunTableError, match=r"runs\.csv, row 4 \(line 5\), column 'a_loss': 'oops' is not a number"
        ):
            read_runs(write(tmp_path, "\n".join(lines)))

    def test_boolean_is_not_a_number(self, tmp_path):
        df = small_frame()
        df["n_tokens"] = df["n_tokens"].astype(object)
        df.loc[2, "n_tokens"] = True
        with pytest.raises(RunTableError, match=r"<DataFrame>, row 3, column 'n_tokens': True is a boolean"):
            read_runs(df)
        text = csv_of(small_frame()).replace("1000000000.0", "True", 1)
        with pytest.raises(RunTableError, match=r"row 1 \(line 2\), column 'n_tokens': 'True' is not a number"):
            read_runs(write(tmp_path, text))

    def test_many_offenders_listed_with_total(self):
        df = small_frame()
        df["weight_a"] = df["weight_a"].astype(object)
        df.loc[:, "weight_a"] = "bad"
        with pytest.raises(RunTableError) as exc:
            read_runs(df)
        msg = str(exc.value)
        assert msg.startswith("<DataFrame>: non-numeric cells in 9 rows; the first 5:")
        assert "row 5, column 'weight_a': 'bad' is not a number" in msg
        assert "row 6," not in msg

    def test_weight_sum_message_format(self, tmp_path):
        df = small_frame()
        df.loc[7, "weight_b"] = 0.33  # row 8 sums to 0.6 + 0.33 = 0.93
        with pytest.raises(
            RunTableError,
            match=r"^.*runs\.csv, row 8 \(line 9\), columns 'weight_a'\.\.'weight_b': "
            r"weights sum to 0\.93, not 1 \(tolerance 0\.01: 2 weights to 2 decimals\); "
            r"pass weight_tolerance \(--weight-tolerance\) to accept larger gaps$",
        ):
            read_runs(write(tmp_path, csv_of(df)))

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (np.nan, r"row 2, column 'weight_b': weight is missing"),
            (np.inf, r"row 2, column 'weight_b': weight is inf"),
            (-0.1, r"row 2, column 'weight_b': negative weight -0.1"),
        ],
    )
    def test_bad_weight_cells(self, value, message):
        df = small_frame()
        df.loc[1, "weight_b"] = value
        with pytest.raises(RunTableError, match=r"<DataFrame>, " + message):
            read_runs(df)

    def test_weights_sum_to_zero(self):
        df = small_frame()
        df.loc[6, ["weight_a", "weight_b"]] = 0.0
        with pytest.raises(
            RunTableError, match=r"<DataFrame>, row 7, columns 'weight_a'\.\.'weight_b': weights sum to 0$"
        ):
            read_runs(df)

    @pytest.mark.parametrize(
        ("value", "message"),
        [(0.0, "got 0"), (-2.0, "got -2"), (np.inf, "got inf"), (-np.inf, "got -inf")],
    )
    def test_bad_losses(self, value, message):
        df = small_frame()
        df.loc[3, "x_loss"] = value
        with pytest.raises(
            RunTableError, match=rf"<DataFrame>, row 4, column 'x_loss': loss must be finite and positive, {message}"
        ):
            read_runs(df)

    def test_target_without_any_value(self):
        df = small_frame()
        df["x_loss"] = np.nan
        with pytest.raises(RunTableError, match=r"<DataFrame>, column 'x_loss': no finite loss in any of its 9 rows"):
            read_runs(df)

    @pytest.mark.parametrize("column", ["model_size", "n_tokens"])
    @pytest.mark.parametrize(
        ("value", "message"),
        [(np.nan, "missing value"), (np.inf, "got inf"), (0.0, "got 0"), (-5.0, "got -5")],
    )
    def test_bad_size_or_tokens(self, tmp_path, column, value, message):
        df = small_frame()
        df.loc[5, column] = value
        with pytest.raises(RunTableError, match=rf"runs\.csv, row 6 \(line 7\), column '{column}': .*{message}"):
            read_runs(write(tmp_path, csv_of(df)))

    def test_missing_run_id(self, tmp_path):
        df = small_frame().assign(run=["r1"] * 3 + ["r2"] * 3 + ["r3", "", "r3"])
        with pytest.raises(RunTableError, match=r"runs\.csv, row 8 \(line 9\), column 'run': missing run id"):
            read_runs(write(tmp_path, csv_of(df)))

    def test_run_disagrees_on_mixture(self):
        df = small_frame().assign(run=["r1"] * 6 + ["r3"] * 3)
        with pytest.raises(RunTableError) as exc:
            read_runs(df)
        lines = str(exc.value).splitlines()
        assert lines[0] == "<DataFrame>: runs whose rows disagree on mixture or model_size in 3 rows:"
        assert lines[1] == "  row 4, column 'run': run 'r1' has model_size 2e+08 but 1e+08 in its first row, row 1"
        df = small_frame().assign(run=["r1"] * 3 + ["r2"] * 3 + ["r2"] * 3)
        with pytest.raises(
            RunTableError, match=r"row 7, column 'run': run 'r2' has a different mixture than its first row, row 4"
        ):
            read_runs(df)

    def test_line_numbers_follow_the_file(self, tmp_path):
        # a blank line and a quoted multi-line cell shift file lines away from row numbers
        df = small_frame().assign(comment="ok")
        df.loc[0, "comment"] = "two\nlines"
        df.loc[2, "a_loss"] = -1.0
        lines = csv_of(df).split("\n")
        text = lines[0] + "\n\n" + "\n".join(lines[1:])
        with pytest.raises(RunTableError, match=r"runs\.csv, row 3 \(line 6\), column 'a_loss'"):
            read_runs(write(tmp_path, text))


# --------------------------------------------------------------------------- #
# RunTable methods
# --------------------------------------------------------------------------- #


class TestRunTable:
    def test_mixtures_first_appearance(self):
        t = read_runs(small_frame(), quiet=True)
        unique, index = t.mixtures()
        np.testing.assert_array_equal(unique, [[0.25, 0.75], [0.6, 0.4]])
        assert index.tolist() == [0] * 6 + [1] * 3
        np.testing.assert_array_equal(unique[index], t.weights)

    def test_subset_mask_and_positions(self):
        t = read_runs(small_frame().assign(seed=0), quiet=True)
        s = t.subset(t.model_size == 1e8)
        assert s.n_rows == 6 and s.n_runs == 2 and s.n_mixtures == 2
        assert s.notes == t.notes and s.domains == t.domains and s.targets == t.targets
        assert isinstance(s.frame.index, pd.RangeIndex)
        p = t.subset([8, 0])
        assert p.run.tolist() == ["run003", "run001"]
        assert t.subset([]).n_rows == 0
        with pytest.raises(RunTableError, match=r"subset mask has shape \(3,\), expected \(9,\)"):
            t.subset(np.array([True, False, True]))
        with pytest.raises(RunTableError, match="out of range"):
            t.subset([9])

    def test_require_mixtures(self):
        t = read_runs(small_frame(), quiet=True)
        t.require_mixtures(2, "additive")
        with pytest.raises(
            RunTableError, match=r"^law 'additive' needs at least 3 distinct mixtures; <DataFrame> has 2$"
        ):
            t.require_mixtures(3, "additive")

    def test_require_scales(self):
        t = read_runs(small_frame(), quiet=True)  # sizes 1e8, 2e8; tokens 1e9, 2e9, 3e9
        t.require_scales(2, "joint")
        one = t.subset(np.asarray(t.model_size) == 1e8)
        with pytest.raises(
            RunTableError,
            match=r"^law 'joint' needs runs at 2 or more model sizes and 2 or more token counts: why; "
            r"<DataFrame> has 1 model size\(s\) \(1e\+08\) and 3 token count\(s\) \(1e\+09, 2e\+09, 3e\+09\)$",
        ):
            one.require_scales(2, "joint", "why")

    def test_own_domain_and_to_frame(self):
        t = read_runs(small_frame(), quiet=True)
        assert t.own_domain("a") == "a" and t.own_domain("x") is None
        f = t.to_frame()
        f.loc[0, "a_loss"] = 100.0
        assert t.losses[0, 0] != 100.0
        w = t.weights
        w[:] = 0
        assert t.weights.sum() > 0
        assert "rows=9" in repr(t)


# --------------------------------------------------------------------------- #
# RegMix pair
# --------------------------------------------------------------------------- #


def regmix_files(tmp_path: Path, mix_index=(1, 2, 3), loss_index=(1, 2, 3)):
    mix = pd.DataFrame(
        {
            "index": list(mix_index),
            "train_the_pile_pile_cc": [0.33333, 0.5, 0.1][: len(mix_index)],
            "train_github": [0.66667, 0.5, 0.9][: len(mix_index)],
        }
    )
    loss = pd.DataFrame(
        {
            "index": list(loss_index),
            "metric/the_pile_pile_cc_val_loss": [4.0, 4.1, 4.2][: len(loss_index)],
            "metric/hellaswag_val_loss": [3.0, 3.1, 3.2][: len(loss_index)],
            "metric/train_loss": [2.0, 2.1, 2.2][: len(loss_index)],
        }
    )
    m, l = tmp_path / "mix.csv", tmp_path / "loss.csv"
    mix.to_csv(m, index=False)
    loss.to_csv(l, index=False)
    return m, l


class TestRegMix:
    def test_pair(self, tmp_path):
        m, l = regmix_files(tmp_path, loss_index=(3, 1, 2))
        t = read_regmix(m, l, model_size=1e6, n_tokens=1e9, quiet=True)
        assert t.domains == ("the_pile_pile_cc", "github")
        assert t.targets == ("the_pile_pile_cc", "hellaswag")
        assert t.run.tolist() == ["1", "2", "3"]
        np.testing.assert_array_equal(t.losses[:, 0], [4.1, 4.2, 4.0])  # joined on index, not position
        assert (t.model_size == 1e6).all() and (t.n_tokens == 1e9).all()
        assert t.own_domain("the_pile_pile_cc") == "the_pile_pile_cc"
        assert f"ignored columns of {l}: metric/train_loss" in t.notes
        assert not any("renormalised" in n for n in t.notes)  # 0.33333 + 0.66667 == 1
        assert t.source == f"{m} + {l}"

    def test_dataframes(self):
        mix = pd.DataFrame({"index": [0, 1], "train_a": [0.5, 0.49999], "train_b": [0.5, 0.5]})
        loss = pd.DataFrame({"index": [1, 0], "metric/a_val_loss": [3.0, 2.0]})
        t = read_regmix(mix, loss, model_size=1e6, n_tokens=1e9, quiet=True)
        assert t.source == "<DataFrame> + <DataFrame>"
        assert any(n.startswith("renormalised 1 row") and "index '1'" in n for n in t.notes)

    def test_loss_without_mixture_is_an_error(self, tmp_path):
        m, l = regmix_files(tmp_path, mix_index=(1, 2), loss_index=(1, 2, 7))
        with pytest.raises(
            RunTableError, match=r"loss\.csv, row 3 \(line 4\), column 'index': index '7' has no row in .*mix\.csv"
        ):
            read_regmix(m, l, model_size=1e6, n_tokens=1e9)

    def test_mixture_without_losses_dropped_with_note(self, tmp_path):
        m, l = regmix_files(tmp_path, mix_index=(1, 2, 3), loss_index=(3, 1))
        t = read_regmix(m, l, model_size=1e6, n_tokens=1e9, quiet=True)
        assert t.n_rows == 2 and t.run.tolist() == ["1", "3"]
        assert any(n.startswith("dropped 1 mixture of") and "(index '2')" in n for n in t.notes)

    def test_repeated_and_missing_index(self, tmp_path):
        m, l = regmix_files(tmp_path, mix_index=(1, 1, 2))
        with pytest.raises(RunTableError, match=r"mix\.csv, row 2 \(line 3\), column 'index': index '1' repeats row 1"):
            read_regmix(m, l, model_size=1e6, n_tokens=1e9)
        m, l = regmix_files(tmp_path)
        pd.read_csv(l).drop(columns="index").to_csv(l, index=False)
        with pytest.raises(RunTableError, match=r"loss\.csv: no 'index' column"):
            read_regmix(m, l, model_size=1e6, n_tokens=1e9)

    def test_validation_names_the_original_column(self, tmp_path):
        m, l = regmix_files(tmp_path)
        df = pd.read_csv(m)
        df.loc[1, "train_github"] = -0.5
        df.to_csv(m, index=False)
        with pytest.raises(
            RunTableError,
            match=(
                r"index '2' \(.*mix\.csv row 2 \(line 3\); .*loss\.csv row 2 \(line 3\)\), column 'train_github': "
                r"negative weight -0.5"
            ),
        ):
            read_regmix(m, l, model_size=1e6, n_tokens=1e9)

    def test_bad_scalars_and_columns(self, tmp_path):
        m, l = regmix_files(tmp_path)
        with pytest.raises(RunTableError, match="model_size must be a finite positive number"):
            read_regmix(m, l, model_size=-1, n_tokens=1e9)
        with pytest.raises(RunTableError, match="n_tokens must be a finite positive number"):
            read_regmix(m, l, model_size=1e6, n_tokens=True)
        with pytest.raises(RunTableError, match=r"mix\.csv: no 'metric/<target>_val_loss' columns"):
            read_regmix(m, m, model_size=1e6, n_tokens=1e9)  # the mixture file given twice


# --------------------------------------------------------------------------- #
# read_mixtures, parse_mixture, parse_target_weights
# --------------------------------------------------------------------------- #


class TestReadMixtures:
    def test_both_forms_and_domain_order(self, tmp_path):
        path = write(tmp_path, "b,weight_a,c\n0.5,0.25,0.25\n0,1,0\n", "mix.csv")
        w = read_mixtures(path, ["a", "b", "c"])
        np.testing.assert_array_equal(w, [[0.25, 0.5, 0.25], [1, 0, 0]])
        assert w.dtype == np.float64

    def test_renormalises_within_tolerance(self):
        w = read_mixtures(pd.DataFrame({"a": [0.5004], "b": [0.5]}), ["a", "b"])
        assert w.sum() == pytest.approx(1.0, abs=1e-15)

    def test_unknown_domain(self, tmp_path):
        path = write(tmp_path, "weight_a,weight_zz\n0.5,0.5\n", "mix.csv")
        with pytest.raises(
            RunTableError, match=r"mix\.csv, column 'weight_zz': unknown domain 'weight_zz'; known domains: a, b"
        ):
            read_mixtures(path, ["a", "b"])

    def test_missing_domain_not_filled(self):
        with pytest.raises(RunTableError, match=r"<DataFrame>: no column for domain 'b'.*not assumed to be 0"):
            read_mixtures(pd.DataFrame({"a": [1.0]}), ["a", "b"])

    def test_domain_twice(self):
        with pytest.raises(RunTableError, match=r"domain 'a' is given twice \(columns 'a' and 'weight_a'\)"):
            read_mixtures(pd.DataFrame({"a": [1.0], "weight_a": [1.0], "b": [0.0]}), ["a", "b"])

    @pytest.mark.parametrize(
        ("cell", "message"),
        [
            ("-0.5", r"row 2 \(line 3\), column 'b': negative weight -0.5"),
            ("", r"row 2 \(line 3\), column 'b': weight is missing"),
            ("x", r"row 2 \(line 3\), column 'b': 'x' is not a number"),
            ("0.2", r"row 2 \(line 3\), columns 'a'\.\.'b': weights sum to 0.7, not 1"),
        ],
    )
    def test_bad_cells(self, tmp_path, cell, message):
        path = write(tmp_path, f"a,b\n0.5,0.5\n0.5,{cell}\n", "mix.csv")
        with pytest.raises(RunTableError, match=r"mix\.csv, " + message):
            read_mixtures(path, ["a", "b"])

    def test_empty(self, tmp_path):
        with pytest.raises(RunTableError, match=r"mix\.csv: file is empty"):
            read_mixtures(write(tmp_path, "", "mix.csv"), ["a"])
        with pytest.raises(RunTableError, match=r"mix\.csv: no data rows"):
            read_mixtures(write(tmp_path, "a,b\n", "mix.csv"), ["a", "b"])


class TestParseMixture:
    def test_positional_and_named(self):
        np.testing.assert_array_equal(parse_mixture("0.25, 0.75", ["a", "b"]), [0.25, 0.75])
        np.testing.assert_array_equal(parse_mixture("b=0.5,c=0.5", ["a", "b", "c"]), [0, 0.5, 0.5])
        np.testing.assert_array_equal(parse_mixture("weight_a=1", ["a", "b"]), [1, 0])

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("0.5,0.5,0", r"mixture '0.5,0.5,0': has 3 values but there are 2 domains \(a, b\)"),
            ("c=1", r"mixture 'c=1': unknown domain 'c'; known domains: a, b"),
            ("a=-0.5,b=1.5", r"mixture 'a=-0.5,b=1.5', domain 'a': negative weight -0.5"),
            (
                "0.5,0.4",
                r"mixture '0.5,0.4', all domains: weights sum to 0.9, not 1 \(tolerance 0.05: 2 weights to 1 decimal, "
                r"capped\)$",
            ),
            ("0.5,x", r"mixture '0.5,x', domain 'b': 'x' is not a number"),
            ("0.5,nan", r"domain 'b': 'nan' is not a number"),
            ("a=1,0", r"mixes named"),
            ("a=0.5,a=0.5", r"domain 'a' is given twice"),
            ("", r"mixture '': empty"),
            ("1,", r"empty entry"),
            ("a=0,b=0", r"weights sum to 0"),
        ],
    )
    def test_errors(self, text, message):
        with pytest.raises(RunTableError, match=message):
            parse_mixture(text, ["a", "b"])


class TestParseTargetWeights:
    def test_as_given(self):
        assert parse_target_weights("c4=0.5, book=2", ["book", "c4"]) == {"c4": 0.5, "book": 2.0}
        assert parse_target_weights("c4_loss=1,book=0", ["book", "c4"]) == {"c4": 1.0, "book": 0.0}

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("wiki=1", r"target weights 'wiki=1': unknown target 'wiki'; known targets: book, c4"),
            ("c4=abc", r"target 'c4': 'abc' is not a number"),
            ("c4=-1", r"target 'c4': weight must be finite and >= 0, got -1"),
            ("c4=inf", r"target 'c4': weight must be finite and >= 0, got inf"),
            ("c4=0,book=0", r"all weights are zero"),
            ("c4", r"entry 'c4' is not of the form name=value"),
            ("c4=1,c4=2", r"target 'c4' is given twice"),
        ],
    )
    def test_errors(self, text, message):
        with pytest.raises(RunTableError, match=message):
            parse_target_weights(text, ["book", "c4"])
