"""bayesmix fit RUNS.csv --law NAME --out models/X.nc"""

from __future__ import annotations

import argparse
import time

from ._common import (
    add_parallel_arguments,
    add_runs_arguments,
    add_sampler_arguments,
    default_model_path,
    load_runs,
    parse_prior_args,
    runs_name,
)

NAME = "fit"
HELP = "fit a law to a run table with NUTS and save the posterior"


def add_arguments(p):
    from ..laws import available_laws

    add_runs_arguments(p)
    p.add_argument(
        "--law",
        default="additive",
        choices=available_laws() + ["auto"],
        help=(
            "law to fit (default additive); auto: every law the sweep can identify, saved as their stacked "
            "ensemble (weights from held-out larger scales)"
        ),
    )
    p.add_argument("--targets", help="comma-separated targets to fit (default: every <target>_loss column)")
    p.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="NAME=DIST",
        help="override a prior, e.g. alpha='LogNormal(-1.2, 0.3)' (repeatable)",
    )
    p.add_argument("--max-model-size", type=float, help="fit only rows with model_size <= this (hold out larger runs)")
    p.add_argument(
        "--checkpoints",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=(
            "fit mid-schedule checkpoints with the checkpoint model: the law at each run's end plus a learned curve "
            "above it (default; docs/checkpoints.md); --no-checkpoints fits every checkpoint as a final loss"
        ),
    )
    p.add_argument(
        "--min-fraction",
        type=float,
        default=0.0,
        help=(
            "drop checkpoints before this share of their run's schedule (default 0: every checkpoint is used, "
            "and mid-schedule ones get the checkpoint model's schedule term)"
        ),
    )
    p.add_argument(
        "--extrapolation-sd",
        type=float,
        default=None,
        help="log-scale bias per e-fold beyond the fitted range (default: measured by holding out the largest size)",
    )
    p.add_argument(
        "--target-accept",
        type=float,
        default=None,
        help=(
            "NUTS target acceptance probability (default: the law's, 0.9 for most and 0.95 for the capacity laws; "
            "raise it on divergences)"
        ),
    )
    p.add_argument("--out", help="output file (default models/<runs>-<law>.nc)")
    p.add_argument(
        "--profile",
        action="store_true",
        help=(
            "print where the time went: mode search, compilation, warm-up, draws, discarded tries, extrapolation "
            "hold-outs, diagnostics and saving, and per block the leapfrog steps per draw, R-hat and ESS per second"
        ),
    )
    add_sampler_arguments(p)
    add_parallel_arguments(p)


def run(args) -> int:
    from ..fit import fit

    table = load_runs(args)
    if args.max_model_size:
        keep = table.model_size <= args.max_model_size
        if not keep.any():
            raise ValueError(f"no run has model_size <= {args.max_model_size:g}")
        table = table.subset(keep)
        print(f"fitting {table.n_rows} rows ({table.n_runs} runs) with model_size <= {args.max_model_size:g}")
    priors = parse_prior_args(args.prior)
    targets = [t.strip() for t in args.targets.split(",")] if args.targets else None
    kwargs = dict(
        targets=targets,
        priors=priors,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        seed=args.seed,
        progress=args.progress,
        min_fraction=args.min_fraction,
        checkpoints=args.checkpoints,
        extrapolation_sd=args.extrapolation_sd,
        target_accept=args.target_accept,
    )
    out = args.out or default_model_path(runs_name(args), args.law)
    if args.law == "auto":
        return _run_auto(table, kwargs, out)
    result = fit(table, args.law, **kwargs)
    t_save = time.perf_counter()
    result.save(out)
    t_save = time.perf_counter() - t_save
    t = result.timing
    print(
        f"{result.law.title}: {result.table.n_runs} runs, {len(result.targets)} targets, "
        f"{result.config.chains} chains x {result.config.draws} draws in {t.get('total_seconds', 0):.0f} s"
    )
    print(
        "diagnostics: "
        f"{str(result.diagnostics).splitlines()[0]}{'' if result.diagnostics.ok else ' (see the warnings above)'}"
    )
    for note in result.table.notes:
        print(f"note: {note}")
    print(f"saved {out}")
    if args.profile:
        from ..profile import format_profile

        print(format_profile(t, t_save))
    return 0


def _run_auto(table, kwargs, out) -> int:
    """--law auto: fit the laws the sweep identifies, stack them, say which, their weights and why any is out."""
    from ..stacking import Ensemble, fit_laws
    from .ensemble import print_weights

    model, skipped = fit_laws(table, **kwargs)
    for name, why in skipped.items():
        print(f"left out {name}: {why}")
    fits = model.fits if isinstance(model, Ensemble) else (model,)
    for f in fits:
        print(f"{f.law.name}: diagnostics: {str(f.diagnostics).splitlines()[0]}")
    for note in fits[0].table.notes[: len(table.notes) + 1]:
        print(f"note: {note}")
    if isinstance(model, Ensemble):
        print_weights(model)
    else:
        print(f"only {fits[0].law.name} could be fitted: saved as a single fit")
    model.save(out)
    print(f"saved {out}")
    return 0
