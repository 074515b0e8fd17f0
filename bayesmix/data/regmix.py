"""Adapters for run tables in other layouts: the RegMix pair of files.

Each adapter maps its layout onto the canonical roles (weights, losses,
model_size, n_tokens, run) and then hands over to the same validation as
:func:`bayesmix.data.read_runs`.
"""

from __future__ import annotations

import decimal
import logging
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import _MAX_SHOWN, RunTableError, _col, _fail, _Input, _plural
from .read import _DATAFRAME, _build, _check_tolerance, _id_string, _Layout, _load, _require_rows
from .table import RunTable

__all__ = ["read_regmix"]


# --------------------------------------------------------------------------- #
# RegMix-style pair of files
# --------------------------------------------------------------------------- #


def _positive_scalar(x, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, decimal.Decimal)):
        raise RunTableError(f"{name} must be a finite positive number, got {x!r}")
    try:
        v = float(x)
    except (OverflowError, ValueError):
        raise RunTableError(f"{name} must be a finite positive number, got {x!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise RunTableError(f"{name} must be a finite positive number, got {x!r}")
    return v


def _index_keys(inp: _Input) -> list[str]:
    if "index" not in inp.frame.columns:
        found = ", ".join(map(repr, inp.frame.columns)) or "none"
        raise RunTableError(f"{inp.source}: no 'index' column (columns found: {found})")
    keys = [_id_string(v) for v in inp.frame["index"].tolist()]
    bad = [(i, _col("index"), "missing index") for i, k in enumerate(keys) if k is None]
    if bad:
        _fail(inp, "missing index values", bad)
    first: dict[str, int] = {}
    bad = [
        (i, _col("index"), f"index {k!r} repeats {inp.labels[first[k]]}")
        for i, k in enumerate(keys)
        if first.setdefault(k, i) != i
    ]
    if bad:
        _fail(inp, "repeated index values", bad)
    return keys


def read_regmix(
    mixtures: Source | Sequence[Source],
    losses: Source | Sequence[Source],
    *,
    model_size: float | Sequence[float],
    n_tokens: float | Sequence[float],
    weight_tolerance: float | None = None,
    quiet: bool = False,
) -> RunTable:
    """Read RegMix-style pairs of tables into one :class:`RunTable`.

    ``mixtures`` has an ``index`` column and ``train_<domain>`` weight columns;
    ``losses`` has an ``index`` column and ``metric/<target>_val_loss`` columns.
    They are joined on ``index``, which becomes the run id; every run gets the
    given ``model_size`` and ``n_tokens``.  A loss row without a mixture is an
    error (its mixture is unknown); a mixture without losses is a run that never
    reported and is dropped with a note.  Other columns are ignored with a note.
    Then the same validation as :func:`read_runs` applies, including
    ``weight_tolerance`` (default: each row's rounding bound; RegMix's files give
    17 weights to 3 decimals, so their sums run 0.996 to 1.003).

    Several pairs (sweeps at several scales) are read at once by giving lists of
    equal length for ``mixtures``, ``losses``, ``model_size`` and ``n_tokens``
    (a single size or token count applies to every pair).  Every pair must have
    the same domains; a target missing from a pair is masked there with a note.
    Run ids are then ``<mixture file stem>:<index>``, since pairs reuse indices.
    """
    tol = _check_tolerance(weight_tolerance)
    mix_list, loss_list = _as_list(mixtures), _as_list(losses)
    if len(mix_list) != len(loss_list):
        raise RunTableError(
            f"{len(mix_list)} mixture tables but {len(loss_list)} loss tables: give one losses table per mixtures table"
        )
    sizes = _per_pair(model_size, len(mix_list), "model_size")
    tokens = _per_pair(n_tokens, len(mix_list), "n_tokens")
    pairs = [_join_pair(m, l, n, d) for m, l, n, d in zip(mix_list, loss_list, sizes, tokens)]
    if len(pairs) == 1:
        joined, train, metric = pairs[0]
    else:
        joined, train, metric = _stack_pairs(pairs)
    layout = _Layout(
        weights=[(c[len("train_") :], c) for c in train],
        losses=[(c[len("metric/") : -len("_val_loss")], c) for c in metric],
        model_size="model_size",
        n_tokens="n_tokens",
        run="index",
        ignored=[],
    )
    return _build(joined, layout, tol, quiet)


Source = str | os.PathLike | pd.DataFrame


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _per_pair(x, n: int, name: str) -> list[float]:
    values = _as_list(x)
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise RunTableError(f"{len(values)} values of {name} for {n} pairs of tables: give one, or one per pair")
    return [_positive_scalar(v, name) for v in values]


def _join_pair(mixtures: Source, losses: Source, size: float, tokens: float) -> tuple[_Input, list[str], list[str]]:
    """One pair joined on ``index``: (joined input, weight columns, loss columns)."""
    mix = _load(mixtures)
    los = _load(losses)
    source = f"{mix.source} + {los.source}"

    train = [c for c in mix.frame.columns if c.startswith("train_") and c != "train_"]
    metric = [
        c
        for c in los.frame.columns
        if c.startswith("metric/") and c.endswith("_val_loss") and len(c) > len("metric/_val_loss")
    ]
    if not train:
        found = ", ".join(map(repr, mix.frame.columns)) or "none"
        raise RunTableError(f"{mix.source}: no 'train_<domain>' columns (columns found: {found})")
    if not metric:
        found = ", ".join(map(repr, los.frame.columns)) or "none"
        raise RunTableError(f"{los.source}: no 'metric/<target>_val_loss' columns (columns found: {found})")
    _require_rows(mix)
    _require_rows(los)
    mkeys = _index_keys(mix)
    lkeys = _index_keys(los)

    notes: list[tuple[int, str]] = [*mix.notes, *los.notes]
    for inp, used in ((mix, train), (los, metric)):
        ignored = [c for c in inp.frame.columns if c not in used and c != "index"]
        if ignored:
            notes.append((logging.INFO, f"ignored columns of {inp.source}: {', '.join(ignored)}"))

    mpos = {k: i for i, k in enumerate(mkeys)}
    lpos = {k: i for i, k in enumerate(lkeys)}
    orphans = [
        (i, _col("index"), f"index {k!r} has no row in {mix.source}") for i, k in enumerate(lkeys) if k not in mpos
    ]
    if orphans:
        _fail(los, f"loss rows without a mixture in {mix.source}", orphans)
    unmatched = [i for i, k in enumerate(mkeys) if k not in lpos]
    if unmatched:
        shown = ", ".join(repr(mkeys[i]) for i in unmatched[:_MAX_SHOWN])
        more = f" and {len(unmatched) - _MAX_SHOWN} more" if len(unmatched) > _MAX_SHOWN else ""
        notes.append(
            (
                logging.WARNING,
                f"dropped {_plural(len(unmatched), 'mixture')} of {mix.source} without a row in "
                f"{los.source} (index {shown}{more})",
            )
        )

    pairs = [(i, lpos[k]) for i, k in enumerate(mkeys) if k in lpos]
    frame = pd.concat(
        [
            mix.frame[train].iloc[[i for i, _ in pairs]].reset_index(drop=True),
            los.frame[metric].iloc[[j for _, j in pairs]].reset_index(drop=True),
        ],
        axis=1,
    )
    frame["model_size"] = size
    frame["n_tokens"] = tokens
    frame["index"] = [mkeys[i] for i, _ in pairs]
    labels = [f"index {mkeys[i]!r} ({mix.source} {mix.labels[i]}; {los.source} {los.labels[j]})" for i, j in pairs]
    refs = [f"index {mkeys[i]!r}" for i, _ in pairs]
    return _Input(frame, source, labels, refs, notes), train, metric


def _pair_name(inp: _Input, k: int) -> str:
    first = inp.source.split(" + ")[0]
    return f"pair{k + 1}" if first == _DATAFRAME else Path(first).stem


def _stack_pairs(pairs: list[tuple[_Input, list[str], list[str]]]) -> tuple[_Input, list[str], list[str]]:
    """Several joined pairs as one input: same domains required, targets united, run ids prefixed."""
    first, train, _ = pairs[0]
    for inp, cols, _ in pairs[1:]:
        if set(cols) != set(train):
            missing = sorted(set(train) - set(cols))
            extra = sorted(set(cols) - set(train))
            detail = "; ".join(
                part
                for part in (
                    f"lacks {', '.join(map(repr, missing))}" if missing else "",
                    f"has {', '.join(map(repr, extra))} that {first.source} lacks" if extra else "",
                )
                if part
            )
            raise RunTableError(
                f"{inp.source}: its domains differ from those of {first.source} ({detail}); every pair must have "
                "the same 'train_<domain>' columns (a missing domain is not assumed to be 0)"
            )
    metric = list(dict.fromkeys(c for _, _, m in pairs for c in m))
    names = [_pair_name(inp, k) for k, (inp, _, _) in enumerate(pairs)]
    if len(set(names)) != len(names):
        names = [f"pair{k + 1}" for k in range(len(pairs))]
    frames, labels, refs, notes = [], [], [], []
    for name, (inp, _, m) in zip(names, pairs):
        frame = inp.frame.reindex(columns=[*train, *metric, "model_size", "n_tokens", "index"])
        frame["index"] = [f"{name}:{k}" for k in inp.frame["index"]]
        frames.append(frame)
        labels += inp.labels
        refs += [f"{name} {r}" for r in inp.refs]
        notes += inp.notes
        absent = [c for c in metric if c not in m]
        if absent:
            notes.append(
                (logging.WARNING, f"{inp.source} has no {', '.join(absent)}: masked for its {len(inp.frame)} runs")
            )
    source = "; ".join(inp.source for inp, _, _ in pairs)
    frame = pd.concat(frames, ignore_index=True)
    return _Input(frame, source, labels, refs, notes), train, metric
