"""Parsers for the mixtures and target weights given as text on the command line."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import RunTableError, _Input, _num
from .read import _cell_to_float, _check_names, _check_weights, _match_name, _row_tolerances

__all__ = ["parse_mixture", "parse_target_weights"]


# --------------------------------------------------------------------------- #
# Mixtures and target weights given by the user
# --------------------------------------------------------------------------- #


def _split_entries(text, what: str) -> tuple[str, list[str]]:
    if not isinstance(text, str):
        raise RunTableError(f"{what} must be a string, got {type(text).__name__}")
    src = f"{what} {text!r}"
    entries = [e.strip() for e in text.split(",")]
    if not text.strip():
        raise RunTableError(f"{src}: empty")
    if any(not e for e in entries):
        raise RunTableError(f"{src}: empty entry (check for a stray comma)")
    return src, entries


def _named_values(
    src: str, entries: list[str], known: Sequence[str], kind: str, prefix="", suffix=""
) -> dict[str, float]:
    out: dict[str, float] = {}
    for e in entries:
        name, sep, value = (p.strip() for p in e.partition("="))
        if not sep:
            raise RunTableError(f"{src}: entry {e!r} is not of the form name=value")
        key = _match_name(name, known, prefix, suffix)
        if key is None:
            raise RunTableError(f"{src}: unknown {kind} {name!r}; known {kind}s: {', '.join(known)}")
        if key in out:
            raise RunTableError(f"{src}: {kind} {key!r} is given twice")
        x = _cell_to_float(value)
        if isinstance(x, str) or math.isnan(x):
            raise RunTableError(f"{src}, {kind} {key!r}: {value!r} is not a number")
        out[key] = x
    return out


def parse_mixture(text: str, domains: Sequence[str]) -> np.ndarray:
    """Parse one mixture from text; return a float64 array of shape (K,).

    Either positional (``"0.05,0.05,0.9"``, one value per domain in order) or named
    (``"c4=0.5,book=0.5"``; domains not named get 0).  Weights must be finite,
    non-negative and sum to 1 within their rounding bound (as in :func:`read_runs`;
    then they are renormalised).
    """
    domains = _check_names(domains, "domain")
    src, entries = _split_entries(text, "mixture")
    named = ["=" in e for e in entries]
    if any(named):
        if not all(named):
            raise RunTableError(f"{src}: mixes named (domain=value) and positional entries")
        values = _named_values(src, entries, domains, "domain", prefix="weight_")
        w = np.array([values.get(d, 0.0) for d in domains], dtype=np.float64)
    else:
        if len(entries) != len(domains):
            raise RunTableError(
                f"{src}: has {len(entries)} values but there are {len(domains)} domains "
                f"({', '.join(domains)}); give one value per domain or use domain=value"
            )
        w = np.empty(len(domains))
        for k, (d, e) in enumerate(zip(domains, entries)):
            x = _cell_to_float(e)
            if isinstance(x, str) or math.isnan(x):
                raise RunTableError(f"{src}, domain {d!r}: {e!r} is not a number")
            w[k] = x
    inp = _Input(pd.DataFrame(), src, [""], [""], [])
    tol, why = _row_tolerances(pd.DataFrame(w[None, :]), None)
    w, _ = _check_weights(inp, w[None, :], [f"domain {d!r}" for d in domains], tol, why, hint="")
    return w[0]


def parse_target_weights(text: str, targets: Sequence[str]) -> dict[str, float]:
    """Parse ``"c4=0.5,book=0.5"`` into ``{"c4": 0.5, "book": 0.5}``.

    Names are targets (``<t>_loss`` is accepted too); values must be finite and
    non-negative, not all zero.  They are returned as given (not renormalised):
    they weight a sum of losses.
    """
    targets = _check_names(targets, "target")
    src, entries = _split_entries(text, "target weights")
    values = _named_values(src, entries, targets, "target", suffix="_loss")
    for t, x in values.items():
        if not math.isfinite(x) or x < 0:
            raise RunTableError(f"{src}, target {t!r}: weight must be finite and >= 0, got {_num(x)}")
    if not any(values.values()):
        raise RunTableError(f"{src}: all weights are zero")
    return values
