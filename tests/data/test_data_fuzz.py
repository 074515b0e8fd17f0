"""Property tests: read_runs either returns a consistent RunTable or raises RunTableError.

Malformed tables (wrong types, NaN/inf, empty, duplicated columns, single rows,
zero weights, unicode names, extreme magnitudes, deleted columns) are thrown at
read_runs as DataFrames and as CSV files.  Any exception other than
RunTableError fails the test.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bayesmix.data import RunTable, RunTableError, read_runs

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = ["a", "c4", "数学", "ção", "émoji🙂", "x y", "Ω", "wiki"]
JUNK = [
    np.nan,
    np.inf,
    -np.inf,
    0,
    0.0,
    -1.0,
    1e300,
    1e-300,
    5e-324,
    1e15,
    1e-8,
    "abc",
    "",
    " ",
    "nan",
    "NA",
    "1_0",
    "inf",
    "-0",
    "True",
    True,
    False,
    None,
    "1e999",
    10**400,
    "٣",
    "3,5",
    '"',
    "\n",
    "0x10",
    [1],
    1 + 2j,
]


@st.composite
def tables(draw) -> pd.DataFrame:
    """A run table that starts valid and is then damaged by a few random mutations."""
    domains = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    targets = draw(st.lists(st.sampled_from(NAMES + ["val"]), min_size=1, max_size=3, unique=True))
    n_mix = draw(st.integers(1, 3))
    mixtures = []
    for _ in range(n_mix):
        raw = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=len(domains), max_size=len(domains)))
        total = sum(raw)
        mixtures.append([x / total for x in raw] if total > 0 else [1.0 / len(domains)] * len(domains))
    n = draw(st.integers(0, 8))
    rows = []
    for _ in range(n):
        w = draw(st.sampled_from(mixtures))
        row = {f"weight_{d}": x for d, x in zip(domains, w)}
        row["model_size"] = draw(st.sampled_from([1e6, 1e8, 1e15]))
        row["n_tokens"] = draw(st.sampled_from([1e9, 1.0001e9, 2e9, 3e20]))
        for t in targets:
            row[f"{t}_loss"] = draw(st.sampled_from([1e-8, 2.5, 3.0, 1e300, np.nan]))
        rows.append(row)
    columns = [f"weight_{d}" for d in domains] + ["model_size", "n_tokens"] + [f"{t}_loss" for t in targets]
    df = pd.DataFrame(rows, columns=columns)
    if draw(st.booleans()):
        df["run"] = [draw(st.sampled_from(["r1", "r2", 3, np.nan])) for _ in range(n)]

    for _ in range(draw(st.integers(0, 4))):
        df = _mutate(draw, df)
    return df


def _mutate(draw, df: pd.DataFrame) -> pd.DataFrame:
    kind = draw(
        st.sampled_from(
            [
                "cell",
                "cell",
                "delete_column",
                "duplicate_column",
                "duplicate_row",
                "zero_weights",
                "perturb_sum",
                "missing_losses",
                "extra_column",
                "stringify",
                "single_row",
            ]
        )
    )
    if df.shape[1] == 0:
        return df
    col = draw(st.sampled_from(list(df.columns)))
    if kind == "delete_column":
        return df.drop(columns=col)
    if kind == "duplicate_column":
        return pd.concat([df, df[[col]]], axis=1)
    if kind == "extra_column":
        return df.assign(**{draw(st.sampled_from(["note", "weight_", "_loss", "", "Ω"])): 1})
    if kind == "stringify" and df.columns.is_unique:
        return df.assign(**{col: df[col].astype(str)})
    if len(df) == 0:
        return df
    i = draw(st.integers(0, len(df) - 1))
    if kind == "cell":
        df = df.astype(object)  # so any junk value can go in any column
        df.iloc[i, draw(st.integers(0, df.shape[1] - 1))] = draw(st.sampled_from(JUNK))
    elif kind == "duplicate_row":
        df = pd.concat([df, df.iloc[[i]]], ignore_index=True)
    elif kind == "single_row":
        df = df.iloc[[i]].reset_index(drop=True)
    elif df.columns.is_unique:
        wcols = [c for c in df.columns if c.startswith("weight_")]
        lcols = [c for c in df.columns if c.endswith("_loss")]
        df = df.astype(object)
        if kind == "zero_weights" and wcols:
            df.loc[i, wcols] = 0.0
        elif kind == "perturb_sum" and wcols:
            eps = draw(st.sampled_from([1e-12, 5e-4, 2e-3, 0.5]))
            df.loc[i, wcols[0]] = pd.to_numeric(df.loc[i, wcols[0]], errors="coerce") + eps
        elif kind == "missing_losses" and lcols:
            df.loc[i, lcols] = np.nan
    return df


def check_outcome(source, n_in: int) -> None:
    """The property: a consistent RunTable, or RunTableError with a message."""
    try:
        table = read_runs(source, quiet=True)
    except RunTableError as exc:
        assert str(exc).strip()
        event("RunTableError")
        return
    event("RunTable" + (" with drops" if any(n.startswith("dropped") for n in table.notes) else ""))
    assert isinstance(table, RunTable)
    dropped = sum(int(m.group(1)) for note in table.notes if (m := re.match(r"dropped (\d+) ", note)))
    assert table.n_rows + dropped == n_in, table.notes
    assert table.n_rows > 0
    w = table.weights
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    losses = table.losses
    assert np.all(np.isnan(losses) | (np.isfinite(losses) & (losses > 0)))
    assert not np.isnan(losses).all(axis=1).any()
    for x in (table.model_size, table.n_tokens):
        assert np.all(np.isfinite(x) & (x > 0))
    assert list(table.frame.columns) == (
        [f"weight_{d}" for d in table.domains]
        + ["model_size", "n_tokens", "run_tokens"]
        + [f"{t}_loss" for t in table.targets]
        + ["run"]
    )
    assert table.run.shape == (table.n_rows,) and all(table.run)
    assert isinstance(table.frame.index, pd.RangeIndex)


def count_records(text: str) -> int:
    """Data rows as the loader counts them: non-blank CSV records after the header."""
    text = text.removeprefix("\ufeff")  # the loader reads utf-8-sig
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    if records and len(records[0]) > 1:
        records = [r for r in records if not (len(r) == 1 and not r[0].strip())]
    return max(len(records) - 1, 0)


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "runs.csv"


@FUZZ
@given(tables())
def test_dataframes(df):
    check_outcome(df, len(df))


@FUZZ
@given(tables())
def test_csv_files(csv_path, df):
    text = df.to_csv(index=False)
    csv_path.write_text(text, encoding="utf-8")
    check_outcome(csv_path, len(df))


@FUZZ
@given(tables(), st.data())
def test_damaged_csv_text(csv_path, df, data):
    """Line-level damage: lines deleted, repeated, truncated, or garbage inserted."""
    lines = df.to_csv(index=False).splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        kind = data.draw(st.sampled_from(["delete", "repeat", "truncate", "garbage", "blank"]))
        if kind == "delete":
            del lines[i]
        elif kind == "repeat":
            lines.insert(i, lines[i])
        elif kind == "truncate":
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))] + "\n"
        elif kind == "garbage":
            junk = data.draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))
            lines.insert(i, junk + "\n")
        else:
            lines.insert(i, "\n")
    text = "".join(lines)
    csv_path.write_text(text, encoding="utf-8")
    try:
        n_in = count_records(text)
    except csv.Error:
        n_in = -1  # the loader must reject it too
    check_outcome(csv_path, n_in)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes(csv_path, blob):
    csv_path.write_bytes(b"weight_a,model_size,n_tokens,a_loss\n" + blob)
    try:
        read_runs(csv_path, quiet=True)
    except RunTableError as exc:
        assert str(exc).strip()
