"""bayesmix validate runs.csv --law additive --holdout largest-size"""

from __future__ import annotations

from ._common import add_parallel_arguments, add_runs_arguments, add_sampler_arguments, load_runs, parse_prior_args

NAME = "validate"
HELP = "refit on part of a sweep and score the held-out runs (by model size, token range or mixtures)"


def add_arguments(p):
    from ..checks.validate import HOLDOUTS
    from ..laws import available_laws

    add_runs_arguments(p)
    p.add_argument("--law", default="additive", choices=available_laws(), help="law to validate (default additive)")
    p.add_argument("--holdout", default="largest-size", help=f"what to hold out: {HOLDOUTS} (default largest-size)")
    p.add_argument("--targets", help="comma-separated targets (default: every <target>_loss column)")
    p.add_argument("--prior", action="append", default=[], metavar="NAME=DIST", help="override a prior (repeatable)")
    p.add_argument(
        "--extrapolation-sd",
        type=float,
        help=(
            "bias scale per e-fold for the held-out predictions, all targets (default: each fold's fit measures its "
            "own, as bayesmix fit does)"
        ),
    )
    p.add_argument("--out", help="folder for the tables (CSV) and a figure (PNG)")
    p.add_argument(
        "--update-model",
        metavar="MODEL.nc",
        help="store the measured extrapolation_sd (one per target) in this saved model; without --targets, "
        "its targets are the ones validated",
    )
    p.add_argument(
        "--min-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="drop checkpoints before this share of their run's schedule, in training and held-out "
        "runs (default 0: every checkpoint, with the checkpoint model)",
    )
    add_sampler_arguments(p)
    add_parallel_arguments(p)


def run(args) -> int:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from ..checks.validate import validate

    if args.extrapolation_sd is not None and not (np.isfinite(args.extrapolation_sd) and args.extrapolation_sd >= 0):
        raise ValueError(f"--extrapolation-sd must be a non-negative number; got {args.extrapolation_sd}")
    model = None
    if args.update_model:
        from ..fit import Fit

        if not Path(args.update_model).exists():
            raise FileNotFoundError(f"--update-model: no such model file {args.update_model}")
        model = Fit.load(args.update_model)  # before the refits: a wrong model should fail in seconds, not after them
        if model.law.name != args.law:
            raise ValueError(f"--update-model: {args.update_model} is a {model.law.name} fit, but --law is {args.law}")
    table = load_runs(args)
    priors = parse_prior_args(args.prior)
    targets = [t.strip() for t in args.targets.split(",")] if args.targets else None
    if model is not None:
        if targets is None:
            targets = list(model.targets)
        missing = [t for t in model.targets if t not in targets]
        if missing:
            raise ValueError(
                f"--update-model: {args.update_model} predicts {', '.join(model.targets)}, but --targets "
                f"leaves out {', '.join(missing)}; validate every target of the model"
            )
    result = validate(
        table,
        args.law,
        args.holdout,
        targets=targets,
        priors=priors,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        seed=args.seed,
        extrapolation_sd=args.extrapolation_sd,
        progress=args.progress,
        min_fraction=args.min_fraction,
    )
    folds = result.folds.copy()
    for c in [c for c in folds.columns if c.startswith("coverage_")] + ["width_90", "interval_score_90", "mre", "bias"]:
        folds[c] = (100 * folds[c]).round(2)
    print(
        f"held-out validation of the {args.law} law on {table.source} ({args.holdout}); MRE, bias, coverage, and "
        "the 90% interval's width and interval score (lower is sharper) in % of the loss:"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60):
        print(folds.drop(columns=["description"]).round(2).to_string(index=False))
        for _, r in result.folds.iterrows():
            print(f"  {r.fold}: {r.description}")
        if len(result.extrapolation):
            print("extrapolation bias per fold (sd per e-fold beyond the fitted range):")
            print(result.extrapolation.round(4).to_string(index=False))
    print(result.advice())
    if args.out:
        from ..checks.plots import folds_figure

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in (
            ("folds", result.folds),
            ("points", result.points),
            ("extrapolation", result.extrapolation),
        ):
            frame.to_csv(out / f"validate-{name}.csv", index=False)
            print(f"wrote {out / f'validate-{name}.csv'}")
        fig = folds_figure(result.points, f"{args.law} law")
        fig.savefig(out / "validate-folds.png", dpi=110)
        print(f"wrote {out / 'validate-folds.png'}")
    if model is not None:
        import dataclasses

        if result.extrapolation_sd is None:
            raise ValueError(
                "--update-model: this holdout does not extrapolate, so no extrapolation_sd was measured; use "
                "--holdout largest-size"
            )
        measured = dict(zip(result.targets, result.extrapolation_sd))
        before = ", ".join(
            f"{t} {v:.4g}"
            for t, v in zip(model.targets, np.broadcast_to(model.extrapolation_sd, (len(model.targets),)))
        )
        model.extrapolation_sd = np.array([measured[t] for t in model.targets], dtype=float)
        after = ", ".join(f"{t} {v:.4g}" for t, v in zip(model.targets, model.extrapolation_sd))
        note = (
            f"extrapolation_sd set by bayesmix validate --holdout {args.holdout} on {table.source}: "
            f"{after} (was {before})"
        )
        model.table = dataclasses.replace(model.table, notes=model.table.notes + (note,))
        model.save(args.update_model)
        print(f"stored extrapolation_sd {after} in {args.update_model} (was {before})")
    return 0
