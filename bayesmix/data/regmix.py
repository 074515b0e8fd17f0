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

import numpy as np
import pandas as pd

from .errors import _MAX_SHOWN, RunTableError, _col, _fail, _Input, _plural
from .read import _build, _id_string, _Layout, _load, _require_rows
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
    mixtures: str | os.PathLike | pd.DataFrame,
    losses: str | os.PathLike | pd.DataFrame,
    *,
    model_size: float,
    n_tokens: float,
    quiet: bool = False,
) -> RunTable:
    """Read a RegMix-style pair of tables into a :class:`RunTable`.

    ``mixtures`` has an ``index`` column and ``train_<domain>`` weight columns;
    ``losses`` has an ``index`` column and ``metric/<target>_val_loss`` columns.
    They are joined on ``index``, which becomes the run id; every run gets the
    given ``model_size`` and ``n_tokens``.  A loss row without a mixture is an
    error (its mixture is unknown); a mixture without losses is a run that never
    reported and is dropped with a note.  Other columns are ignored with a note.
    Then the same validation as :func:`read_runs` applies.
    """
    size = _positive_scalar(model_size, "model_size")
    tokens = _positive_scalar(n_tokens, "n_tokens")
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
    joined = _Input(frame, source, labels, refs, notes)
    layout = _Layout(
        weights=[(c[len("train_") :], c) for c in train],
        losses=[(c[len("metric/") : -len("_val_loss")], c) for c in metric],
        model_size="model_size",
        n_tokens="n_tokens",
        run="index",
        ignored=[],
    )
    return _build(joined, layout, 1e-3, quiet)
