"""Reading and validating run tables.

The canonical run table is a wide CSV (or DataFrame) with one row per checkpoint:

* ``weight_<domain>`` columns: the training mixture (each row sums to 1);
* ``model_size``: parameter count; ``n_tokens``: tokens seen at the checkpoint;
* ``<target>_loss`` columns: validation losses (a target need not be a domain);
* optionally ``run``: a run id (otherwise a run is a (mixture, model_size) pair,
  or a (mixture, model_size, run_tokens) triple when ``run_tokens`` is given);
* optionally ``run_tokens``: the tokens at which the run's learning-rate schedule
  ends, one value per run (otherwise the run's last checkpoint, its largest
  ``n_tokens``).

Every reader either returns clean data plus a note for each cleaning action, or
raises :class:`RunTableError` whose message names the source, the row (1-based
data row, plus the file line for CSV files) and the column.  Bad input never
surfaces as a raw pandas/numpy traceback, and nothing is dropped silently.

This module reads the canonical table (:func:`read_runs`) and the mixtures to
predict at (:func:`read_mixtures`); the cell, weight and name checks here are
shared with :mod:`.regmix` and :mod:`.parse`.
"""

from __future__ import annotations

import csv
import decimal
import logging
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import RunTableError, _col, _fail, _Input, _num, _plural, _refs, _show
from .table import RunTable

__all__ = ["read_runs", "read_mixtures"]

log = logging.getLogger("bayesmix")

_DATAFRAME = "<DataFrame>"
# Weight rows off by less than this are float noise, not worth renormalising.
_EXACT_SUM = 1e-9
# How far a weight sum may be from 1 when its cells are written to full precision.
_DEFAULT_TOLERANCE = 1e-3
# The most the rounding bound may excuse: beyond 5% a row is a typo more likely than rounding.
_MAX_ROUNDING = 0.05
# Cells written with more decimals than this are full precision, not rounded.
_MAX_DECIMALS = 17
# Checkpoints whose token counts differ by less than this (relative) are the same checkpoint.
_SAME_TOKENS = 1e-3
# Cell spellings that mean "missing", as pandas reads them by default.
_NA_TOKENS = frozenset(s.lower() for s in ("", "nan", "-nan", "na", "n/a", "<na>", "#n/a", "#na", "null", "none"))


# --------------------------------------------------------------------------- #
# Loading a table (CSV file or DataFrame) into uniform raw form
# --------------------------------------------------------------------------- #


def _load(source) -> _Input:
    if isinstance(source, pd.DataFrame):
        return _from_dataframe(source)
    if isinstance(source, (str, os.PathLike)):
        return _from_csv(source)
    raise RunTableError(f"expected a CSV path or a pandas DataFrame, got {type(source).__name__}")


def _from_dataframe(df: pd.DataFrame) -> _Input:
    names = [_clean_name(c, j) for j, c in enumerate(df.columns)]
    _check_unique(names, _DATAFRAME)
    frame = df.copy()
    frame.columns = names
    frame = frame.reset_index(drop=True)
    notes = []
    # A named index usually holds data (e.g. after set_index("run")); say it is unused.
    index_names = [n for n in df.index.names if n is not None]
    if index_names:
        notes.append(
            (
                logging.INFO,
                f"ignored the DataFrame index ({', '.join(map(str, index_names))}); "
                "call reset_index() to use it as a column",
            )
        )
    n = len(frame)
    labels = [f"row {i + 1}" for i in range(n)]
    return _Input(frame, _DATAFRAME, labels, list(labels), notes)


def _from_csv(path) -> _Input:
    name = str(path)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            prev_end = 0
            for fields in reader:
                start, prev_end = prev_end + 1, reader.line_num
                if _is_blank(fields, header):
                    continue
                if header is None:
                    header = fields
                else:
                    rows.append(fields)
                    lines.append(start)
    except UnicodeDecodeError as exc:
        raise RunTableError(f"{name}: unreadable CSV: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise RunTableError(f"{name}: unreadable CSV near line {prev_end + 1}: {exc}") from None
    except OSError as exc:
        raise RunTableError(f"{name}: cannot read file: {exc.strerror or exc}") from None
    if header is None:
        raise RunTableError(f"{name}: file is empty (no header, no rows)")
    names = [_clean_name(c, j) for j, c in enumerate(header)]
    _check_unique(names, name)
    ragged = [
        (i, None, f"has {len(r)} fields, the header has {len(names)}")
        for i, r in enumerate(rows)
        if len(r) != len(names)
    ]
    labels = [f"row {i + 1} (line {ln})" for i, ln in enumerate(lines)]
    refs = [f"row {i + 1}" for i in range(len(rows))]
    inp = _Input(pd.DataFrame(columns=names), name, labels, refs, [])
    if ragged:
        _fail(inp, "rows with the wrong number of fields", ragged)
    inp.frame = pd.DataFrame(rows, columns=names, dtype=object)
    return inp


def _is_blank(fields: list[str], header: list[str] | None) -> bool:
    # csv yields [] for an empty line; a lone whitespace field in a multi-column
    # file is a stray blank line too (a one-column file writes "" for an empty cell).
    if not fields:
        return True
    return len(fields) == 1 and not fields[0].strip() and (header is None or len(header) > 1)


def _clean_name(col, j: int) -> str:
    name = str(col).strip()
    # Pandas writes an unnamed index column; name it by position so two of them
    # are not mistaken for duplicates.
    return name if name else f"(unnamed column {j + 1})"


def _check_unique(names: list[str], source: str) -> None:
    seen: dict[str, int] = {}
    dups = []
    for j, n in enumerate(names):
        if n in seen:
            dups.append(f"{n!r} (columns {seen[n] + 1} and {j + 1})")
        else:
            seen[n] = j
    if dups:
        raise RunTableError(f"{source}: duplicated column names: {', '.join(dups)}")


def _require_rows(inp: _Input) -> None:
    if len(inp.frame) == 0:
        raise RunTableError(f"{inp.source}: no data rows (only a header)")


# --------------------------------------------------------------------------- #
# Cell parsing
# --------------------------------------------------------------------------- #


def _cell_to_float(v) -> float | str:
    """A float (NaN for a missing cell), or a str explaining why it is not a number."""
    if v is None or v is pd.NA or v is pd.NaT:
        return math.nan
    if isinstance(v, (bool, np.bool_)):
        return f"{v!r} is a boolean, not a number"
    if isinstance(v, str):
        s = v.strip()
        if s.lower() in _NA_TOKENS:
            return math.nan
        # float() accepts "1_000"; a CSV number never has one, so it is a typo.
        if "_" not in s:
            try:
                return float(s)
            except ValueError:
                pass
        return f"{_show(v)} is not a number"
    if isinstance(v, (numbers.Real, decimal.Decimal)):
        try:
            return float(v)
        except (OverflowError, ValueError, TypeError):
            return f"{_show(v)} is not representable as a float"
    return f"{_show(v)} ({type(v).__name__}) is not a number"


def _column_to_float(col: pd.Series) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """(float64 values with NaN for missing cells, [(row position, problem)])."""
    dtype = col.dtype
    if (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    ):
        try:
            return col.to_numpy(dtype=np.float64, na_value=np.nan), []
        except (TypeError, ValueError, OverflowError):
            pass  # fall through to cell by cell, which names the bad cell
    out = np.empty(len(col), dtype=np.float64)
    bad = []
    for i, v in enumerate(col.tolist()):
        x = _cell_to_float(v)
        if isinstance(x, str):
            bad.append((i, x))
            out[i] = math.nan
        else:
            out[i] = x
    return out, bad


def _parse_numbers(inp: _Input, columns: Sequence[str]) -> dict[str, np.ndarray]:
    values, bad = {}, []
    for c in columns:
        values[c], problems = _column_to_float(inp.frame[c])
        bad += [(i, _col(c), p) for i, p in problems]
    if bad:
        _fail(inp, "non-numeric cells", bad)
    return values


def _id_string(v) -> str | None:
    """A run/index id as a str, or None if the cell is missing."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, str):
        s = v.strip()
        return None if s.lower() in _NA_TOKENS else s
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return None
        # An id column with a missing cell turns ints into floats in pandas; 3.0 means "3".
        if math.isfinite(v) and float(v).is_integer():
            return str(int(v))
    if isinstance(v, (numbers.Integral,)) and not isinstance(v, (bool, np.bool_)):
        return str(int(v))
    return str(v)


# --------------------------------------------------------------------------- #
# Checks shared by the readers
# --------------------------------------------------------------------------- #


def _check_tolerance(weight_tolerance) -> float | None:
    if weight_tolerance is None:
        return None
    if (
        isinstance(weight_tolerance, (bool, np.bool_))
        or not isinstance(weight_tolerance, numbers.Real)
        or not math.isfinite(weight_tolerance)
        or weight_tolerance < 0
    ):
        raise RunTableError(f"weight_tolerance must be None or a finite number >= 0, got {weight_tolerance!r}")
    return float(weight_tolerance)


def _cell_decimals(v) -> int:
    """Digits after the decimal point as the cell is written ("0.250" -> 3, 0.25 -> 2, "1e-3" -> 3)."""
    if isinstance(v, str):
        text = v.strip()
    elif isinstance(v, (numbers.Real, decimal.Decimal)) and not isinstance(v, (bool, np.bool_)):
        text = repr(float(v))  # the shortest text that reads back as this float
    else:
        return 0
    try:
        exponent = decimal.Decimal(text).as_tuple().exponent
    except decimal.InvalidOperation:
        return 0
    return min(-exponent, _MAX_DECIMALS) if isinstance(exponent, int) and exponent < 0 else 0


def _row_tolerances(cells: pd.DataFrame, tol: float | None) -> tuple[np.ndarray, list[str]]:
    """Per row, how far its weight sum may be from 1, and why (for messages).

    With ``tol`` given it holds for every row.  Otherwise (the default) a row whose
    K weights are written to d decimals may be off by the rounding bound
    K x 0.5 x 10^-d, at least ``_DEFAULT_TOLERANCE`` and at most ``_MAX_ROUNDING``.
    """
    n, k = cells.shape
    if tol is not None:
        return np.full(n, tol), [f"tolerance {tol:g}"] * n
    decimals = np.zeros(n, dtype=int)
    for j in range(k):
        decimals = np.maximum(decimals, [_cell_decimals(v) for v in cells.iloc[:, j].tolist()])
    bound = k * 0.5 * 10.0 ** -decimals.astype(float)
    out = np.clip(bound, _DEFAULT_TOLERANCE, _MAX_ROUNDING)
    why = [
        f"tolerance {t:g}"
        if b <= _DEFAULT_TOLERANCE
        else f"tolerance {t:g}: {k} weights to {d} decimal{'' if d == 1 else 's'}{', capped' if b > t else ''}"
        for t, b, d in zip(out, bound, decimals)
    ]
    return out, why


def _check_weights(
    inp: _Input,
    w: np.ndarray,
    cell_where: Sequence[str],
    tol: np.ndarray,
    why: Sequence[str],
    hint: str = "; pass weight_tolerance (--weight-tolerance) to accept larger gaps",
) -> tuple[np.ndarray, list[int]]:
    """Validate an (n, K) weight array; return it renormalised plus the rows renormalised.

    ``cell_where[k]`` names column k in messages (e.g. "column 'weight_c4'");
    ``tol[i]`` is row i's tolerance on its sum and ``why[i]`` says where it comes from.
    """
    if len(cell_where) == 1:
        row_where = cell_where[0]
    elif cell_where[0].startswith("column "):
        row_where = f"columns {cell_where[0][7:]}..{cell_where[-1][7:]}"
    else:
        row_where = "all domains"

    bad = [
        (i, cell_where[j], "weight is missing" if math.isnan(w[i, j]) else f"weight is {_num(w[i, j])}")
        for i, j in zip(*np.nonzero(~np.isfinite(w)))
    ]
    if bad:
        _fail(inp, "missing or infinite weights", bad)
    bad = [(i, cell_where[j], f"negative weight {_num(w[i, j])}") for i, j in zip(*np.nonzero(w < 0))]
    if bad:
        _fail(inp, "negative weights", bad)
    with np.errstate(over="ignore"):
        sums = w.sum(axis=1)
    bad = [(i, row_where, "weights sum to 0") for i in np.flatnonzero(sums == 0)]
    if bad:
        _fail(inp, "all-zero weights", bad)
    off = np.abs(sums - 1.0)
    bad = [(i, row_where, f"weights sum to {_num(sums[i])}, not 1 ({why[i]})") for i in np.flatnonzero(~(off <= tol))]
    if bad:
        kinds = sorted(set(why[i] for i, _, _ in bad))
        what = f"weights that do not sum to 1 ({kinds[0]})" if len(kinds) == 1 else "weights that do not sum to 1"
        try:
            _fail(inp, what, bad)
        except RunTableError as e:
            raise RunTableError(f"{e}{hint}") from None
    renorm = np.flatnonzero(off > _EXACT_SUM)
    w = w + 0.0  # also turns -0.0 into 0.0, so equal mixtures have equal bytes
    w[renorm] /= sums[renorm, None]
    return w, renorm.tolist()


def _renormalised_note(inp: _Input, rows: list[int], sums_before: np.ndarray, why: Sequence[str]) -> str:
    """What renormalising ``rows`` did, with the sums it corrected and why they were accepted."""
    kinds = sorted(set(why[i] for i in rows))
    kind = kinds[0] if len(kinds) == 1 else "each within its rounding bound"
    s = sums_before[rows]
    lo, hi = _num(s.min()), _num(s.max())
    span = lo if lo == hi else f"{lo} to {hi}"
    rows_text = _refs(inp, rows)
    return f"renormalised {_plural(len(rows), 'row')} whose weights summed to {span}, not 1 ({kind}; {rows_text})"


# --------------------------------------------------------------------------- #
# read_runs and its pipeline
# --------------------------------------------------------------------------- #


@dataclass
class _Layout:
    """Which raw column plays which canonical role."""

    weights: list[tuple[str, str]]  # (domain, raw column)
    losses: list[tuple[str, str]]  # (target, raw column)
    model_size: str
    n_tokens: str
    run: str | None
    ignored: list[str]
    run_tokens: str | None = None  # None: each run's schedule ends at its last checkpoint


def _layout_runs(inp: _Input) -> _Layout:
    _check_delimiter(inp)
    weights, losses, ignored = [], [], []
    special: dict[str, str] = {}
    for c in inp.frame.columns:
        if c.startswith("weight_"):
            if c == "weight_":
                raise RunTableError(f"{inp.source}, column 'weight_': no domain name after 'weight_'")
            weights.append((c[len("weight_") :], c))
        elif c.endswith("_loss"):
            if c == "_loss":
                raise RunTableError(f"{inp.source}, column '_loss': no target name before '_loss'")
            losses.append((c[: -len("_loss")], c))
        elif c in ("model_size", "n_tokens", "run", "run_tokens"):
            special[c] = c
        else:
            ignored.append(c)
    found = ", ".join(map(repr, inp.frame.columns)) or "none"
    if not weights:
        raise RunTableError(f"{inp.source}: no 'weight_<domain>' columns (columns found: {found})")
    if not losses:
        raise RunTableError(f"{inp.source}: no '<target>_loss' columns (columns found: {found})")
    missing = [c for c in ("model_size", "n_tokens") if c not in special]
    if missing:
        raise RunTableError(
            f"{inp.source}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))} (columns found: {found})"
        )
    return _Layout(
        weights, losses, "model_size", "n_tokens", special.get("run"), ignored, run_tokens=special.get("run_tokens")
    )


def _check_delimiter(inp: _Input) -> None:
    # A semicolon- or tab-separated export reads as one giant column; say so plainly
    # instead of complaining about the columns it seems to lack.
    cols = list(inp.frame.columns)
    if len(cols) == 1:
        for d, name in ((";", "';'"), ("\t", "tabs"), ("|", "'|'")):
            if d in cols[0]:
                raise RunTableError(
                    f"{inp.source}: the header has a single column {_show(cols[0])}; "
                    f"the file looks delimited by {name}, but a run table must be comma-separated"
                )


def read_runs(
    source: str | os.PathLike | pd.DataFrame,
    *,
    weight_tolerance: float | None = None,
    quiet: bool = False,
) -> RunTable:
    """Read and validate a canonical run table from a CSV path or a DataFrame.

    Returns a :class:`RunTable` whose ``frame`` has the canonical columns, whose
    weights sum to 1 (rows within tolerance are renormalised, see below), whose
    losses are positive or NaN (masked), and whose ``notes`` record every cleaning
    action (ignored columns, renormalised rows, masked cells, dropped rows).
    Notes are also logged to the ``bayesmix`` logger unless ``quiet``.

    ``weight_tolerance`` is how far a row's weight sum may be from 1.  By default
    (None) it is the rounding bound of the row as written: K weights given to d
    decimals may sum to within K x 0.5 x 10^-d of 1 (RegMix's 17 weights to 3
    decimals: 0.0085), at least 0.001 and at most 0.05.

    Raises :class:`RunTableError` for any invalid input.
    """
    tol = _check_tolerance(weight_tolerance)
    inp = _load(source)
    layout = _layout_runs(inp)
    _require_rows(inp)
    return _build(inp, layout, tol, quiet)


@dataclass
class _Columns:
    """Validated numeric columns of a run table, one entry per input row."""

    w: np.ndarray  # (n, K), rows sum to 1
    size: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray  # (n, T), positive or NaN
    runs: np.ndarray | None  # str ids, or None until assigned
    run_tokens: np.ndarray | None  # schedule ends, or None when the table gives none


def _build(inp: _Input, lay: _Layout, tol: float | None, quiet: bool) -> RunTable:
    """Validate, clean and package a classified raw table (shared by all readers)."""
    notes: list[tuple[int, str]] = list(inp.notes)
    if lay.ignored:
        notes.append((logging.INFO, f"ignored columns: {', '.join(lay.ignored)}"))
    cols = _validated_columns(inp, lay, tol, notes)
    keep = _drop_rows(inp, cols, notes)
    for j, (_, c) in enumerate(lay.losses):
        masked = np.flatnonzero(keep & np.isnan(cols.loss[:, j]))
        if len(masked):
            notes.append(
                (logging.WARNING, f"masked {_plural(len(masked), 'missing cell')} in {c} ({_refs(inp, masked)})")
            )

    domains = tuple(d for d, _ in lay.weights)
    targets = tuple(t for t, _ in lay.losses)
    if cols.run_tokens is None and (pd.Series(cols.runs[keep]).value_counts() > 1).any():
        # Only worth saying when a run has checkpoints before its end; final losses need no schedule.
        notes.append(
            (logging.INFO, "no 'run_tokens' column: each run's schedule is taken to end at its last checkpoint")
        )
    frame = pd.DataFrame(
        {
            **{f"weight_{d}": cols.w[keep, k] for k, d in enumerate(domains)},
            "model_size": cols.size[keep],
            "n_tokens": cols.tokens[keep],
            # Absent: RunTable fills in each run's largest kept n_tokens.
            **({"run_tokens": cols.run_tokens[keep]} if cols.run_tokens is not None else {}),
            **{f"{t}_loss": cols.loss[keep, k] for k, t in enumerate(targets)},
            "run": pd.Series([str(r) for r in cols.runs[keep]], dtype=str),
        }
    )
    if not quiet:
        for level, text in notes:
            log.log(level, "%s: %s", inp.source, text)
    return RunTable(frame, domains, targets, inp.source, tuple(t for _, t in notes))


def _validated_columns(inp: _Input, lay: _Layout, tol: float | None, notes: list[tuple[int, str]]) -> _Columns:
    """Parse and check every used cell; raise on the first kind of problem found."""
    wcols = [c for _, c in lay.weights]
    lcols = [c for _, c in lay.losses]
    sched = [lay.run_tokens] if lay.run_tokens else []
    values = _parse_numbers(inp, [*wcols, lay.model_size, lay.n_tokens, *sched, *lcols])
    w = np.column_stack([values[c] for c in wcols])
    tols, why = _row_tolerances(inp.frame[wcols], tol)
    sums = w.sum(axis=1)
    w, renorm = _check_weights(inp, w, [_col(c) for c in wcols], tols, why)
    if renorm:
        notes.append((logging.INFO, _renormalised_note(inp, renorm, sums, why)))
    size, tokens = values[lay.model_size], values[lay.n_tokens]
    run_tokens = values[lay.run_tokens] if lay.run_tokens else None
    _check_positive(
        inp, {lay.model_size: size, lay.n_tokens: tokens, **({lay.run_tokens: run_tokens} if lay.run_tokens else {})}
    )
    if lay.run_tokens:
        _check_schedule_end(inp, lay.run_tokens, run_tokens, tokens)
    loss = np.column_stack([values[c] for c in lcols])
    _check_losses(inp, loss, lcols)
    runs = _parse_runs(inp, lay.run, w, size, lay.run_tokens, run_tokens) if lay.run else None
    return _Columns(w, size, tokens, loss, runs, run_tokens)


def _drop_rows(inp: _Input, cols: _Columns, notes: list[tuple[int, str]]) -> np.ndarray:
    """Return the mask of rows to keep, noting each drop; assigns run ids if absent."""
    keep = np.ones(len(cols.w), dtype=bool)
    all_missing = np.flatnonzero(np.isnan(cols.loss).all(axis=1))
    if len(all_missing):
        keep[all_missing] = False
        notes.append(
            (
                logging.WARNING,
                f"dropped {_plural(len(all_missing), 'row')} whose losses are all missing ({_refs(inp, all_missing)})",
            )
        )

    # Numbered after the drop above, so the ids of kept runs have no gaps.
    if cols.runs is None:
        cols.runs, names = _auto_runs(cols.w, cols.size, keep, cols.run_tokens)
        span = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
        key = "(mixture, model_size)" if cols.run_tokens is None else "(mixture, model_size, run_tokens)"
        notes.append(
            (
                logging.INFO,
                f"no 'run' column: identified {_plural(len(names), 'run')} by {key}, named {span}",
            )
        )

    kept = np.flatnonzero(keep)
    canon = pd.DataFrame(np.column_stack([cols.w, cols.size, cols.tokens, cols.loss]))
    canon["run"] = cols.runs
    exact = kept[canon.iloc[kept].duplicated(keep="first").to_numpy()]
    if len(exact):
        keep[exact] = False
        notes.append((logging.WARNING, f"dropped {_plural(len(exact), 'exact duplicate row')} ({_refs(inp, exact)})"))

    repeats = _repeated_checkpoints(cols.runs, cols.loss, cols.tokens, keep)
    if len(repeats):
        keep[repeats] = False
        notes.append(
            (
                logging.WARNING,
                f"dropped {_plural(len(repeats), 'duplicate checkpoint')} ({_refs(inp, repeats)}): "
                "same run, identical losses and n_tokens within 0.1% of an earlier row, "
                "which was kept",
            )
        )
    return keep


def _check_positive(inp: _Input, columns: dict[str, np.ndarray]) -> None:
    bad = []
    for c, x in columns.items():
        for i in np.flatnonzero(~(np.isfinite(x) & (x > 0))):
            v = x[i]
            detail = "missing value" if math.isnan(v) else f"must be finite and positive, got {_num(v)}"
            bad.append((i, _col(c), detail))
    if bad:
        _fail(inp, f"invalid {'/'.join(columns)}", bad)


def _check_schedule_end(inp: _Input, col: str, run_tokens: np.ndarray, tokens: np.ndarray) -> None:
    # A checkpoint cannot lie past its run's schedule end; within _SAME_TOKENS is rounding, as for duplicates.
    bad = [
        (i, _col(col), f"run_tokens {_num(run_tokens[i])} is below this checkpoint's n_tokens {_num(tokens[i])}")
        for i in np.flatnonzero(run_tokens < tokens * (1 - _SAME_TOKENS))
    ]
    if bad:
        _fail(inp, "run_tokens below n_tokens", bad)


def _check_losses(inp: _Input, loss: np.ndarray, lcols: Sequence[str]) -> None:
    bad = [
        (i, _col(lcols[j]), f"loss must be finite and positive, got {_num(loss[i, j])}")
        for i, j in zip(*np.nonzero(~np.isnan(loss) & ~(np.isfinite(loss) & (loss > 0))))
    ]
    if bad:
        _fail(inp, "invalid losses", bad)
    empty = [
        (None, _col(c), f"no finite loss in any of its {len(loss)} rows")
        for j, c in enumerate(lcols)
        if np.isnan(loss[:, j]).all()
    ]
    if empty:
        _fail(inp, "targets without any finite loss", empty)


def _parse_runs(
    inp: _Input,
    col: str,
    w: np.ndarray,
    size: np.ndarray,
    sched_col: str | None = None,
    run_tokens: np.ndarray | None = None,
) -> np.ndarray:
    ids = [_id_string(v) for v in inp.frame[col].tolist()]
    where = _col(col)
    bad = [(i, where, "missing run id") for i, r in enumerate(ids) if r is None]
    if bad:
        _fail(inp, "missing run ids", bad)
    first: dict[str, int] = {}
    bad = []
    for i, r in enumerate(ids):
        f = first.setdefault(r, i)
        if f == i:
            continue
        if not np.array_equal(w[i], w[f]):
            bad.append((i, where, f"run {r!r} has a different mixture than its first row, {inp.labels[f]}"))
        elif size[i] != size[f]:
            bad.append(
                (
                    i,
                    where,
                    f"run {r!r} has model_size {_num(size[i])} but {_num(size[f])} in its first row, {inp.labels[f]}",
                )
            )
        elif run_tokens is not None and run_tokens[i] != run_tokens[f]:
            # One run has one schedule; a row that says otherwise belongs to another run or is a typo.
            bad.append(
                (
                    i,
                    _col(sched_col),
                    f"run {r!r} has run_tokens {_num(run_tokens[i])} but {_num(run_tokens[f])} in its first row, "
                    f"{inp.labels[f]}",
                )
            )
    if bad:
        what = "mixture or model_size" if run_tokens is None else "mixture, model_size or run_tokens"
        _fail(inp, f"runs whose rows disagree on {what}", bad)
    return np.asarray(ids, dtype=object)


def _auto_runs(
    w: np.ndarray, size: np.ndarray, keep: np.ndarray, run_tokens: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """Name runs run001, run002, ... by first appearance of (mixture, model_size) among
    kept rows; return (run id per row, "" for dropped rows; the distinct ids in order).

    With ``run_tokens`` the key is (mixture, model_size, run_tokens): two runs of one
    mixture and size with different schedules are different runs, not one merged run.
    """
    ids: dict[tuple[bytes, float, float], int] = {}
    code = np.full(len(w), -1)
    for i in np.flatnonzero(keep):
        end = 0.0 if run_tokens is None else float(run_tokens[i])  # 0.0, not NaN: NaN keys never compare equal
        code[i] = ids.setdefault((w[i].tobytes(), float(size[i]), end), len(ids))
    width = max(3, len(str(len(ids))))
    names = [f"run{c + 1:0{width}d}" for c in range(len(ids))]
    per_row = np.asarray([names[c] if c >= 0 else "" for c in code], dtype=object)
    return per_row, names


def _repeated_checkpoints(runs: np.ndarray, loss: np.ndarray, tokens: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Kept rows that repeat an earlier kept row of the same run: identical losses
    (NaN equal to NaN) and n_tokens within 0.1% relative."""
    seen: dict[tuple, list[float]] = {}
    out = []
    for i in np.flatnonzero(keep):
        key = (runs[i], tuple(None if math.isnan(x) else x for x in loss[i]))
        earlier = seen.setdefault(key, [])
        t = tokens[i]
        if any(abs(t - e) <= _SAME_TOKENS * max(t, e) for e in earlier):
            out.append(i)
        else:
            earlier.append(t)
    return np.asarray(out, dtype=np.intp)


# --------------------------------------------------------------------------- #
# Mixtures to predict at, given by the user
# --------------------------------------------------------------------------- #


def _check_names(names: Sequence[str], kind: str) -> list[str]:
    names = [str(n) for n in names]
    if not names:
        raise RunTableError(f"no {kind}s given")
    if len(set(names)) != len(names):
        raise RunTableError(f"{kind} names are not unique: {', '.join(names)}")
    return names


def _match_name(name: str, known: Sequence[str], prefix: str = "", suffix: str = "") -> str | None:
    # Exact names win, so a domain literally called "weight_x" still resolves.
    if name in known:
        return name
    if prefix and name.startswith(prefix) and name[len(prefix) :] in known:
        return name[len(prefix) :]
    if suffix and name.endswith(suffix) and name[: -len(suffix)] in known:
        return name[: -len(suffix)]
    return None


def read_mixtures(
    source: str | os.PathLike | pd.DataFrame,
    domains: Sequence[str],
    *,
    weight_tolerance: float | None = None,
) -> np.ndarray:
    """Read mixtures to predict at from a CSV path or DataFrame.

    Columns are ``weight_<d>`` or bare ``<d>`` (either form, per column), one per
    domain in ``domains``; no other column is allowed and no domain may be missing.
    Returns a float64 array of shape (M, K) in the order of ``domains``; rows
    within ``weight_tolerance`` of summing to 1 (default: their rounding bound,
    as for :func:`read_runs`) are renormalised.
    """
    tol = _check_tolerance(weight_tolerance)
    domains = _check_names(domains, "domain")
    inp = _load(source)
    known = ", ".join(domains)
    column_of: dict[str, str] = {}
    for c in inp.frame.columns:
        d = _match_name(c, domains, prefix="weight_")
        if d is None:
            raise RunTableError(f"{inp.source}, column {c!r}: unknown domain {c!r}; known domains: {known}")
        if d in column_of:
            raise RunTableError(f"{inp.source}: domain {d!r} is given twice (columns {column_of[d]!r} and {c!r})")
        column_of[d] = c
    missing = [d for d in domains if d not in column_of]
    if missing:
        raise RunTableError(
            f"{inp.source}: no column for domain{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))} (expected 'weight_<domain>' or '<domain>'; "
            "missing domains are not assumed to be 0)"
        )
    _require_rows(inp)
    cols = [column_of[d] for d in domains]
    values = _parse_numbers(inp, cols)
    w = np.column_stack([values[c] for c in cols])
    tols, why = _row_tolerances(inp.frame[cols], tol)
    sums = w.sum(axis=1)
    w, renorm = _check_weights(inp, w, [f"column {c!r}" for c in cols], tols, why)
    if renorm:
        log.info("%s: %s", inp.source, _renormalised_note(inp, renorm, sums, why))
    return w
