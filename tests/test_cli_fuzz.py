"""Hardening: malformed run tables thrown at the command line, in process.

The loader's own fuzz tests (test_data_fuzz.py) check read_runs; these check
the CLI paths that read run tables -- ``check --runs``, ``validate`` and
``fit`` -- end to end: every input ends in exit code 2 with one line naming
the problem, or in a correct result; never a traceback. Bad input must fail
before any sampling: ``fit``/``validate`` run with the sampler replaced by a
sentinel, so reaching it means every check passed (and the input must then
really be valid).
"""

from __future__ import annotations

import contextlib
import io
import re
from datetime import timedelta
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from checks_support import DOMAINS, additive_truth, point_fit, simulated_frame
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bayesmix.cli import main
from bayesmix.data import read_runs

# Bounded for CI: 60 examples per test (about 20 s for check, 2 s for validate/fit on 2 cores), and a
# per-example deadline far above the slowest case seen (~0.6 s, when a new table shape compiles) that
# still turns a hang into a failure instead of a stuck job.
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TRUTH = additive_truth(sigma=0.01, tau=0.002)
BASE = simulated_frame(TRUTH, mixtures=4, checkpoints=3)  # 36 valid rows, 3 sizes
JUNK = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e300, 1e-300, 5e-324, "abc", "", "nan", "1e999", "٣", "3,5", True, None]
NAMES = ["web", "code", "books", "数学", "émoji🙂", "x y", "Ω"]


class ReachedSampler(Exception):
    """Raised in place of NUTS: the CLI accepted the input and started to fit."""


def _refuse(*args, **kwargs):
    raise ReachedSampler


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return Path(point_fit(BASE, TRUTH, draws=100).save(tmp_path_factory.mktemp("m") / "m.nc"))


@st.composite
def damaged_tables(draw) -> tuple[str, object]:
    """A run table (DataFrame, or raw CSV text) that starts from a valid sweep and is damaged."""
    kind = draw(st.sampled_from(["frame"] * 6 + ["empty", "header", "bytes"]))
    if kind == "empty":
        return "text", ""
    if kind == "header":
        return "text", ",".join(BASE.columns) + "\n"
    if kind == "bytes":
        return "text", draw(st.text(min_size=1, max_size=200))
    df = BASE.copy()
    n = draw(st.sampled_from([len(df), 1, 2, 5]))
    df = df.iloc[:n].copy()
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["cell", "column", "dup", "rename", "zero_weights", "scale", "drop", "types"]))
        col = draw(st.sampled_from(list(df.columns)))
        if op == "cell" and len(df):
            df[col] = df[col].astype(object)
            df.iloc[draw(st.integers(0, len(df) - 1)), list(df.columns).index(col)] = draw(st.sampled_from(JUNK))
        elif op == "column":
            df[col] = draw(st.sampled_from(JUNK))
        elif op == "dup":
            df = pd.concat([df, df[[col]]], axis=1)  # duplicated column name
        elif op == "rename":
            new = draw(st.sampled_from(NAMES))
            df = df.rename(
                columns={
                    col: col.replace(col.split("_")[-1] if col.startswith("weight_") else col.split("_")[0], new, 1)
                }
            )
        elif op == "zero_weights":
            for c in [c for c in df.columns if str(c).startswith("weight_")]:
                df[c] = 0.0
        elif op == "scale":
            factor = draw(st.sampled_from([1e-200, 1e-12, 1e12, 1e200]))
            target = draw(st.sampled_from(["model_size", "n_tokens", "web_loss"]))
            # Column by position: an earlier "dup" may have given the frame two columns of that name.
            for i in [i for i, c in enumerate(df.columns) if c == target]:
                df.isetitem(i, pd.to_numeric(df.iloc[:, i], errors="coerce") * factor)
        elif op == "drop":
            df = df.drop(columns=[col])
        elif op == "types":
            df[col] = df[col].astype(str) + draw(st.sampled_from(["", "x", " "]))
    return "frame", df


def _write(tmp: Path, kind: str, payload) -> Path:
    path = tmp / "runs.csv"
    if kind == "text":
        path.write_text(payload, encoding="utf-8")
    else:
        payload.to_csv(path, index=False)
    return path


def _run(argv: list[str]) -> tuple[int | str, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except ReachedSampler:
            rc = "sampler"
    return rc, err.getvalue()


def _assert_one_clear_line(err: str, path: Path) -> None:
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if "error:" in l]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("bayesmix: error: ") and len(line) > 40, line
    # it names where the problem is: the file, a column, a row or what is missing
    assert re.search(r"runs\.csv|column|row|weight|loss|model_size|n_tokens|domain|target|size|mixture", line), line


@FUZZ
@given(damaged_tables())
def test_check_against_damaged_runs(model, tmp_path, table):
    path = _write(tmp_path, *table)
    rc, err = _run(
        ["check", str(model), "--runs", str(path), "--out", str(tmp_path / "r"), "--no-figures", "--max-draws", "50"]
    )
    event(f"check: exit {rc}")
    if rc == 2:
        _assert_one_clear_line(err, path)
        return
    assert rc == 0, err
    # a correct result: every finite loss of the fitted targets is scored, none dropped silently
    runs = read_runs(path, quiet=True)
    summary = pd.read_csv(tmp_path / "r" / "check-summary.csv", index_col="target")
    assert summary.loc["all", "cells"] == np.isfinite(runs.frame[[f"{t}_loss" for t in DOMAINS]].to_numpy(float)).sum()
    assert summary.filter(like="coverage_").stack().between(0, 1).all()


@FUZZ
@given(damaged_tables(), st.sampled_from(["largest-size", "sizes", "mixtures:2", "tokens:1e9", "size:1.25e8"]))
def test_validate_and_fit_reject_damaged_runs_before_sampling(tmp_path, table, holdout):
    path = _write(tmp_path, *table)
    with mock.patch("bayesmix.fit.sample", _refuse):
        for argv in (
            ["validate", str(path), "--holdout", holdout, "--draws", "20", "--warmup", "20", "--chains", "1"],
            ["fit", str(path), "--out", str(tmp_path / "m.nc"), "--draws", "20", "--warmup", "20", "--chains", "1"],
        ):
            rc, err = _run(argv)
            event(f"{argv[0]}: {rc}")
            if rc == 2:
                _assert_one_clear_line(err, path)
            else:
                # only a valid table may reach the sampler
                assert rc == "sampler", (rc, err)
                table_ = read_runs(path, quiet=True)
                assert table_.n_mixtures >= 3 and np.isfinite(table_.weights).all()


def test_examples_of_each_kind_give_the_expected_message(model, tmp_path):
    """A few hand-picked cases with the message they must give."""
    cases = {
        "empty": ("", "empty|no header|no data|no rows"),
        "one row": (BASE.iloc[:1], "at least 3 distinct mixtures|at least two model sizes|needs at least"),
        "zero weights": (BASE.assign(weight_web=0.0, weight_code=0.0, weight_books=0.0), "weight"),
        "nan size": (BASE.assign(model_size=np.nan), "model_size"),
        "inf loss": (BASE.assign(web_loss=np.inf), "web_loss"),
    }
    for name, (payload, pattern) in cases.items():
        path = _write(tmp_path, "text" if isinstance(payload, str) else "frame", payload)
        with mock.patch("bayesmix.fit.sample", _refuse):
            rc, err = _run(["validate", str(path), "--chains", "1"])
        assert rc == 2 and re.search(pattern, err, re.I), (name, err)
        _assert_one_clear_line(err, path)
