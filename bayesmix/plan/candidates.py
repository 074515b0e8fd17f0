"""Candidate runs for `bayesmix next-run`: read from a file or proposed, with their cost and checkpoints.

A candidate is one training run: a mixture, a model size N and a final token
count D. Its cost is 6 N D floating-point operations (the usual estimate of
training compute) unless the user gives a ``cost`` column. It reports its
checkpoints (see :func:`checkpoint_fractions`), each with every target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..data import RunTableError, read_mixtures

# Rounded to this many significant digits when matching checkpoint patterns.
_FRACTION_DIGITS = 3


def training_flops(model_size: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """6 N D: the compute of training a model of N parameters on D tokens (forward + backward)."""
    return 6.0 * np.asarray(model_size, dtype=float) * np.asarray(tokens, dtype=float)


def checkpoint_fractions(table) -> np.ndarray:
    """Fractions of its final token count at which a run reports its losses, as the fitted sweep's runs do.

    Decision (documented in the CLI help): a new run reports as many
    checkpoints as most runs of the fitted table report, at the median of
    their fractions of the run's final token count. On SlimPajama that is 11
    checkpoints at about 0.1, 0.2, ..., 1.0 of the final tokens (the last two
    nearly coincide), so a candidate run is scored with everything such a run
    would really deliver. A table of final losses only gives one checkpoint.
    """
    frame = pd.DataFrame({"run": table.run, "D": table.n_tokens})
    patterns = []
    for _, d in frame.groupby("run", sort=False):
        D = np.sort(d.D.to_numpy())
        patterns.append(D / D[-1])
    counts = pd.Series([len(p) for p in patterns]).value_counts()
    C = int(counts.index[0])
    same = np.array([p for p in patterns if len(p) == C])
    return np.round(np.median(same, axis=0), 6)


def even_fractions(checkpoints: int) -> np.ndarray:
    """``checkpoints`` evenly spaced fractions k / C of the final token count (k = 1..C)."""
    if checkpoints < 1:
        raise ValueError(f"a run reports at least one checkpoint; got {checkpoints}")
    return np.arange(1, checkpoints + 1) / checkpoints


def _column(frame: pd.DataFrame, name: str, source: str, required: bool = True) -> np.ndarray | None:
    if name not in frame.columns:
        if required:
            raise RunTableError(
                f"{source}: no column {name!r} (candidates need weight_<domain> columns, model_size and n_tokens; "
                "cost is optional)"
            )
        return None
    raw = frame[name]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RunTableError(f"{source}, row {i + 2}, column {name!r}: {raw.iloc[i]!r} is not a positive number")
    return values


def read_candidates(source: str | Path | pd.DataFrame, domains: Sequence[str]) -> pd.DataFrame:
    """Read candidate runs from a CSV path or DataFrame.

    Columns: ``weight_<domain>`` (or bare ``<domain>``) for every domain,
    ``model_size``, ``n_tokens`` (the run's final token count), optionally
    ``cost`` (any positive unit, used instead of 6 N D) and ``name``. Rows are
    numbered from 2 in messages (the header is row 1). Returns the canonical
    candidate table of :func:`candidate_table`.
    """
    src = str(source) if not isinstance(source, pd.DataFrame) else "candidates"
    frame = source.copy() if isinstance(source, pd.DataFrame) else pd.read_csv(source)
    if len(frame) == 0:
        raise RunTableError(f"{src}: no candidate rows")
    other = {"model_size", "n_tokens", "cost", "name"}
    weight_cols = [c for c in frame.columns if c not in other]
    h = read_mixtures(frame[weight_cols], domains)
    N = _column(frame, "model_size", src)
    D = _column(frame, "n_tokens", src)
    cost = _column(frame, "cost", src, required=False)
    names = frame["name"].astype(str).tolist() if "name" in frame.columns else None
    return candidate_table(h, N, D, domains, cost=cost, names=names, origin="file")


def candidate_table(
    h: np.ndarray, model_size, tokens, domains: Sequence[str], cost=None, names=None, origin: str = ""
) -> pd.DataFrame:
    """The canonical candidate table: name, weight_<d>..., model_size, n_tokens, cost, cost_source, origin."""
    h = np.atleast_2d(np.asarray(h, dtype=float))
    n = len(h)
    N = np.broadcast_to(np.asarray(model_size, dtype=float), (n,))
    D = np.broadcast_to(np.asarray(tokens, dtype=float), (n,))
    out = pd.DataFrame({"name": names if names is not None else [f"c{i}" for i in range(n)]})
    for j, d in enumerate(domains):
        out[f"weight_{d}"] = h[:, j]
    out["model_size"] = N
    out["n_tokens"] = D
    if cost is None:
        out["cost"] = training_flops(N, D)
        out["cost_source"] = "6ND"
    else:
        out["cost"] = np.broadcast_to(np.asarray(cost, dtype=float), (n,))
        out["cost_source"] = "user"
    out["origin"] = origin
    return out


def parse_number_list(text: str, what: str) -> list[float]:
    """``"1.2e8,3.1e8"`` -> [1.2e8, 3.1e8]; every value must be a positive number."""
    out = []
    for e in str(text).split(","):
        e = e.strip()
        try:
            x = float(e)
        except ValueError:
            raise ValueError(f"{what} {text!r}: {e!r} is not a number") from None
        if not (math.isfinite(x) and x > 0):
            raise ValueError(f"{what} {text!r}: {e!r} must be a positive number")
        out.append(x)
    if not out:
        raise ValueError(f"{what}: empty list")
    return out


def propose_candidates(
    domains: Sequence[str],
    n: int,
    sizes: Sequence[float],
    tokens: Sequence[float],
    recommended: np.ndarray,
    observed: np.ndarray,
    concentration: float = 30.0,
    floor: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """About ``n`` candidate runs: Dirichlet mixtures around the recommendation and the observed design.

    ceil(n / (sizes x tokens)) mixtures are drawn and each is crossed with
    every (size, tokens) pair, so candidates at different scales are compared
    on the same mixtures. Half the mixtures are Dirichlet(concentration x h_rec)
    around the recommended mixture (where the decision is), half
    Dirichlet(concentration x h_obs) around a randomly chosen observed mixture
    (where the law is already anchored); the recommendation itself is always
    included. ``floor`` (default: the smallest weight of the observed design)
    keeps every weight at least that large, as real sweeps do.
    """
    if n < 1:
        raise ValueError(f"--propose takes a positive number of candidates; got {n}")
    if not sizes or not tokens:
        raise ValueError(
            "proposing candidates needs model sizes and token counts (e.g. --sizes 1.2e8,3.1e8 --tokens-list 5e9,1e10)"
        )
    rng = np.random.default_rng([seed, 5])
    K = len(domains)
    observed = np.atleast_2d(observed)
    floor = float(observed.min()) if floor is None else float(floor)
    floor = min(max(floor, 0.0), 0.5 / K)
    cells = [(N, D) for N in sizes for D in tokens]
    m = max(1, math.ceil(n / len(cells)))
    rec = np.maximum(recommended, 1e-3)
    rec = rec / rec.sum()
    mixes = [recommended]
    kinds = ["recommended"]
    while len(mixes) < m:
        if len(mixes) % 2:
            centre, kind = rec, "around recommended"
        else:
            o = observed[rng.integers(len(observed))]
            centre, kind = np.maximum(o, 1e-3) / np.maximum(o, 1e-3).sum(), "around observed"
        mixes.append(rng.dirichlet(concentration * centre))
        kinds.append(kind)
    h = np.array(mixes)
    h = floor + (1 - K * floor) * h
    rows_h, rows_N, rows_D, origin = [], [], [], []
    for N, D in cells:
        rows_h.append(h)
        rows_N.append(np.full(m, N))
        rows_D.append(np.full(m, D))
        origin += kinds
    out = candidate_table(np.vstack(rows_h), np.concatenate(rows_N), np.concatenate(rows_D), domains)
    out["origin"] = origin
    out["name"] = [f"p{i}" for i in range(len(out))]
    return out
