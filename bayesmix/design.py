"""Turn run tables (and prediction requests) into the arrays a model takes."""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np

from .laws.base import Inputs, own_index
from .model import Observed, PerRun, bucket
from .schedule import basis as schedule_basis


def round_sig(x: float, digits: int = 2) -> float:
    """Round to a few significant digits (reference scales are for humans too)."""
    return float(f"{x:.{digits - 1}e}")


def reference_scale(values: np.ndarray) -> float:
    """Geometric mean of the distinct values, rounded: the point power laws are written around."""
    return round_sig(float(np.exp(np.mean(np.log(np.unique(values))))))


def law_tokens(table, checkpoints: bool) -> np.ndarray:
    """(n,) the tokens the law is evaluated at for each row: the run's end (``run_tokens``) under the checkpoint
    model (bayesmix.schedule says why), the row's own tokens otherwise."""
    return np.asarray(table.run_tokens if checkpoints else table.n_tokens, dtype=float)


def reference_point(model_size, tokens) -> tuple[float, float]:
    """(N0, D0): the model size and token count the laws' power terms are written around.

    The centre (geometric mean of the distinct values) of where the law is evaluated: ``tokens`` are
    :func:`law_tokens` (the runs' ends under the checkpoint model, the rows' tokens otherwise). Off that
    centre, the loss at the reference point (``L_ref``) is an extrapolation along the token term, and it
    trades with the term's amplitude and exponent along a curve (measured on SlimPajama's one-scale split,
    runs logged at half their schedule: D0 at the checkpoints put the law's reference at half the run ends'
    tokens, and the additive law's 8 targets diverged 37-293 times each, R-hat up to 1.15).
    """
    return reference_scale(np.asarray(model_size, float)), reference_scale(np.asarray(tokens, float))


def make_inputs(h, mix, N, D, N0: float, D0: float, own: Sequence[int]) -> Inputs:
    """Inputs for a law from plain arrays."""
    return Inputs(
        h=jnp.asarray(h, dtype=jnp.float64),
        mix=jnp.asarray(mix, dtype=jnp.int32),
        N=jnp.asarray(N, dtype=jnp.float64),
        D=jnp.asarray(D, dtype=jnp.float64),
        N0=jnp.asarray(N0, dtype=jnp.float64),
        D0=jnp.asarray(D0, dtype=jnp.float64),
        own=jnp.asarray(own, dtype=jnp.int32),
    )


def observed_from_table(
    table,
    targets: Sequence[str],
    N0: float,
    D0: float,
    sizes: np.ndarray,
    pad: bool = True,
    like: Observed | None = None,
    checkpoints: bool = False,
) -> tuple[Observed, np.ndarray]:
    """The model's data for a run table, laid out run by run (:class:`bayesmix.model.Observed`) and padded to
    bucketed shapes (``pad=False``: the table's rows in order, unpadded).

    Returns the Observed pytree and the run label of every run slot (padding
    slots are labelled ""). ``sizes`` are the fitted model sizes, in slot order.
    ``like``: pad to that Observed's shapes instead (a subset of a table then
    reuses the table's compiled code). ``checkpoints``: the checkpoint
    model's data: the law at each run's end (``run_tokens``), and each
    row's curve basis and log fraction of its run (padding rows sit at the
    end of a run, where both are 0).
    """
    h, mix = table.mixtures()
    losses = table.frame[[f"{t}_loss" for t in targets]].to_numpy(dtype=float)
    runs, run_idx = np.unique(table.run, return_index=False, return_inverse=True)
    run_idx = run_idx.reshape(-1)
    n, M, R = len(losses), len(h), len(runs)
    counts = np.bincount(run_idx, minlength=R)
    P = int(counts.max()) if n else 1
    M_pad, R_pad = (bucket(M, 16), bucket(R, 16)) if pad else (M, R)
    if like is not None:
        M_pad, R_pad = like.x.h.shape[0], like.run_slots.shape[0]
        P = like.width.shape[0] if like.width is not None else P
        if M > M_pad or R > R_pad or counts.max(initial=0) > P:
            raise ValueError("observed_from_table: the table does not fit in the shapes of `like`")
    if pad:
        # Run by run (model.Observed): a run's k-th row goes to row r * P + k.
        order = np.argsort(run_idx, kind="stable")
        rank = np.empty(n, dtype=np.intp)
        rank[order] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
        pos, n_pad = run_idx * P + rank, R_pad * P
        run_rows = np.arange(n_pad) // P
    else:
        pos, n_pad, run_rows = np.arange(n), n, run_idx

    def placed(a, fill=0):
        out = np.full((n_pad,) + a.shape[1:], fill, dtype=a.dtype)
        out[pos] = a
        return out

    def padded(a, length, fill=0):
        out = np.full((length,) + a.shape[1:], fill, dtype=a.dtype)
        out[: len(a)] = a
        return out

    mask = np.isfinite(losses).astype(np.float64)
    y = np.where(mask > 0, np.log(np.where(mask > 0, losses, 1.0)), 0.0)
    h_pad = padded(h, M_pad)
    h_pad[M:] = h[0]  # padding mixtures must be valid mixtures
    law_D = law_tokens(table, checkpoints)
    size = np.asarray(table.model_size, dtype=float)
    x = make_inputs(h_pad, placed(mix), placed(size, N0), placed(law_D, D0), N0, D0, own_index(table.domains, targets))
    # Distinct (mixture, model size) cells; padding rows point to cell 0.
    pairs, cell = np.unique(np.column_stack([mix, size]), axis=0, return_inverse=True)
    cell = cell.reshape(-1)
    C = len(pairs)
    C_pad = bucket(C, 16) if pad else C
    if like is not None:
        C_pad = like.x.cell_mix.shape[0]
        if C > C_pad:
            raise ValueError("observed_from_table: the table does not fit in the shapes of `like`")
    x = x._replace(
        cell=jnp.asarray(placed(cell), dtype=jnp.int32),
        cell_mix=jnp.asarray(padded(pairs[:, 0].astype(np.int64), C_pad), dtype=jnp.int32),
        cell_N=jnp.asarray(padded(pairs[:, 1], C_pad, N0), dtype=jnp.float64),
    )
    obs = Observed(
        x=x,
        y=jnp.asarray(placed(y), dtype=jnp.float64),
        mask=jnp.asarray(placed(mask), dtype=jnp.float64),
        run=jnp.asarray(run_rows, dtype=jnp.int32),
        run_slots=jnp.zeros(R_pad, dtype=jnp.float64),
    )
    if checkpoints:
        frac = np.clip(table.token_fraction(), 1e-12, 1.0)
        obs = obs._replace(
            basis=jnp.asarray(placed(schedule_basis(frac)), dtype=jnp.float64),
            log_frac=jnp.asarray(placed(np.log(frac)), dtype=jnp.float64),
        )
    if pad:
        per_run = None
        first = np.unique(run_idx, return_index=True)[1]  # each run's law inputs, from its first row...
        if all(np.array_equal(a, a[first][run_idx]) for a in (mix, size, law_D, cell)):  # ...if its rows share them
            per_run = PerRun(
                mix=jnp.asarray(padded(mix[first], R_pad), dtype=jnp.int32),
                N=jnp.asarray(padded(size[first], R_pad, N0), dtype=jnp.float64),
                D=jnp.asarray(padded(law_D[first], R_pad, D0), dtype=jnp.float64),
                cell=jnp.asarray(padded(cell[first], R_pad), dtype=jnp.int32),
            )
        obs = obs._replace(width=jnp.zeros(P, dtype=jnp.float64), per_run=per_run)
    labels = np.array(list(runs) + [""] * (R_pad - R), dtype=object)
    return obs, labels
