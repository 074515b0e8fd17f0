"""Where a fit's time went: its phases and, per sampled block, the sampler's work and what it bought."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from .inference import PARTS, discarded_seconds

PHASES = (
    ("mode", "mode search and Laplace whitening, every block"),
    ("compile", "tracing and compiling: mode search, NUTS, hold-out refits (once per shape and process)"),
    ("warmup", "NUTS warm-up of the kept runs"),
    ("sampling", "NUTS draws of the kept runs"),
    ("discarded", "first tries replaced by a retry, and retries not kept"),
    ("extrapolation", "nested hold-out refits and the extrapolation error model, compiling left out"),
    ("diagnostics", "R-hat, ESS and prior-domination checks"),
)


def phase_table(timing: Mapping, save_seconds: float | None = None) -> pd.DataFrame:
    """Seconds per phase of a fit (``Fit.timing``), with its share of the total.

    Returns a DataFrame indexed by phase with ``seconds``, ``share`` and
    ``what``; the last row, ``total``, is the fit's wall time (and the save,
    when ``save_seconds`` is given).
    """
    blocks = timing.get("blocks", [])
    kept = {p: float(timing.get(f"{p}_seconds", 0.0)) for p in PARTS}  # the sampler's sums over kept runs
    mode_compile = sum(b.get("mode_compile_seconds", 0.0) for b in blocks)
    extrapolation_compile = float(timing.get("extrapolation_compile_seconds", 0.0))
    seconds = {
        "mode": float(timing.get("mode_seconds", 0.0)) - mode_compile,
        **kept,
        "discarded": sum(discarded_seconds(b) for b in blocks),
        "extrapolation": float(timing.get("extrapolation_seconds", 0.0)) - extrapolation_compile,
        "diagnostics": float(timing.get("diagnostics_seconds", 0.0)),
    }
    what = dict(PHASES)
    if save_seconds is not None:
        seconds["save"] = float(save_seconds)
        what["save"] = "writing the netCDF file"
    total = float(timing.get("total_seconds", sum(seconds.values()))) + (save_seconds or 0.0)
    seconds["compile"] += mode_compile + extrapolation_compile
    out = pd.DataFrame({"seconds": pd.Series(seconds), "what": pd.Series(what)})
    out["share"] = out.seconds / max(total, 1e-9)
    out.loc["total"] = [total, "wall time of the fit, end to end", 1.0]
    return out[["seconds", "share", "what"]]


def block_table(timing: Mapping) -> pd.DataFrame:
    """One row per sampled block (a target, or the whole model): seconds, leapfrog steps, diagnostics, ESS/s.

    ``steps_per_draw`` is the mean NUTS tree size of the kept run; ``retried``
    says whether the block was sampled again at a higher target_accept (and
    whether that run was kept); ``ess_per_second`` is the smaller of bulk and
    tail ESS over the block's scalars per second of its warm-up and draws.
    """
    rows = []
    for b in timing.get("blocks", []):
        if "first_divergences" in b:
            start = ", warm start" if b.get("warm_start") else ""
            stop = f" in {b['first_stopped_after']} draws" if b.get("first_stopped_after") else ""
            retried = f"kept at {b['target_accept']:g} ({b['first_divergences']} divergences{stop} at first{start})"
        elif "retried_divergences" in b:
            retried = f"not kept ({b['retried_divergences']} divergences, {b.get('retried_depth_hits', 0)} at depth)"
        elif "retry_aborted" in b:
            retried = "stopped after its warm-up (too deep)"
        elif "retry_skipped" in b:
            retried = f"skipped ({b['mean_steps']:.0f} steps per draw already)"
        else:
            retried = "no"
        rows.append(
            {
                "block": b["block"],
                "dim": b.get("dim"),
                "mode_s": b.get("mode_seconds"),
                "compile_s": b.get("compile_seconds"),
                "warmup_s": b.get("warmup_seconds"),
                "sampling_s": b.get("sampling_seconds"),
                "discarded_s": discarded_seconds(b),
                "steps_per_draw": b.get("mean_steps"),
                "warmup_steps": b.get("warmup_mean_steps"),  # per warm-up iteration: what a shorter warm-up saves
                "divergences": b.get("divergences"),
                # the first try's divergences in the second half of its warm-up: could the retry have been decided
                # before drawing?
                "warmup_div": b.get("first_late_warmup_divergences", b.get("late_warmup_divergences")),
                "depth_hits": b.get("depth_hits"),
                "max_rhat": b.get("max_rhat"),
                "min_ess_bulk": b.get("min_ess_bulk"),
                "min_ess_tail": b.get("min_ess_tail"),
                "ess_per_second": b.get("ess_per_second"),
                "retried": retried,
                # how far the Laplace whitening missed, where the block was whitened again by its warm-up
                "rewhitened": ", ".join(f"{m:g}" for m in b["rewhitened"]) if b.get("rewhitened") else "no",
            }
        )
    return pd.DataFrame(rows).set_index("block") if rows else pd.DataFrame()


def format_profile(timing: Mapping, save_seconds: float | None = None) -> str:
    """The two tables as text, for ``bayesmix fit --profile`` and the benchmarks."""
    phases = phase_table(timing, save_seconds)
    lines = ["where the time went:"]
    for name, row in phases.iterrows():
        lines.append(f"  {name:<14s}{row.seconds:8.1f} s {100 * row.share:5.1f}%  {row.what}")
    blocks = block_table(timing)
    if len(blocks):
        lines.append("per block:")
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            lines += ["  " + line for line in blocks.to_string(float_format=lambda v: f"{v:.4g}").splitlines()]
    return "\n".join(lines)
