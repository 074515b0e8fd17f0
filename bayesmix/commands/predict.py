"""bayesmix predict MODEL.nc --mixtures mixes.csv --model-size 2.7e9 --tokens 1e11 [--trajectory --plot curve.png]"""

from __future__ import annotations

import sys

from ._common import positive_float

NAME = "predict"
HELP = "predict losses at mixtures and a scale, with credible and predictive intervals"


def add_arguments(p):
    p.add_argument("model", help="fitted model or ensemble (.nc)")
    p.add_argument(
        "--mixtures", required=True, help="CSV of mixtures: weight_<domain> or <domain> columns, one row per mixture"
    )
    p.add_argument("--model-size", type=positive_float, required=True, help="parameters, e.g. 2.7e9")
    p.add_argument("--tokens", type=positive_float, required=True, help="training tokens, e.g. 1e11")
    p.add_argument("--interval", type=float, default=0.9, help="interval level (default 0.9)")
    p.add_argument("--target-weights", help="add a target 'weighted' = sum of targets, e.g. c4=0.5,book=0.5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the table to this CSV (default: print it)")
    p.add_argument(
        "--trajectory",
        action="store_true",
        help="predict the whole training curve of a run trained to --tokens (one row per checkpoint, with an "
        "n_tokens column) instead of its final loss; a fit of checkpoints adds its schedule term",
    )
    p.add_argument(
        "--fractions",
        help="with --trajectory: checkpoints as comma-separated shares of --tokens in (0, 1], e.g. 0.1,0.25,0.5,1 "
        "(default: 12 from the earliest share the fit saw to 1)",
    )
    p.add_argument(
        "--plot",
        metavar="PATH",
        help="with --trajectory: write the predicted curves, beside the nearest fitted runs' observed ones, to "
        "this image (PNG, PDF, SVG)",
    )
    p.add_argument(
        "--nearest",
        type=int,
        default=3,
        help="with --plot: observed runs shown per mixture, nearest in mixture (TV) and log model size (default 3)",
    )


def parse_fractions(text: str) -> list[float]:
    """--fractions as a list of shares of the run's tokens, each in (0, 1]; ValueError naming the bad one."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ValueError(
            f"--fractions takes comma-separated shares of --tokens in (0, 1], e.g. 0.25,0.5,1; got {text!r}"
        )
    out = []
    for s in items:
        try:
            f = float(s)
        except ValueError:
            raise ValueError(f"--fractions: {s!r} is not a number") from None
        if not 0 < f <= 1:  # NaN fails this too
            raise ValueError(
                f"--fractions: {s} is not a share of --tokens in (0, 1]; a checkpoint lies between the start (0) "
                "and the end (1) of its run's schedule"
            )
        out.append(f)
    return out


def run(args) -> int:
    from ..stacking import load

    if not args.trajectory:
        # Check before loading the model: these flags describe a curve, and a final loss has none.
        for flag, value in (("--fractions", args.fractions), ("--plot", args.plot)):
            if value is not None:
                raise ValueError(f"{flag} needs --trajectory (it describes the predicted training curve)")
    fractions = parse_fractions(args.fractions) if args.fractions is not None else None
    if args.nearest < 0:
        raise ValueError(f"--nearest must be 0 or more; got {args.nearest}")
    fit = load(args.model)
    table = fit.predict(
        args.mixtures,
        args.model_size,
        args.tokens,
        interval=args.interval,
        target_weights=args.target_weights,
        seed=args.seed,
        trajectory=args.trajectory,
        fractions=fractions,
    )
    # The CSV stays clean for pipes; the note on the schedule term goes to stderr when the table is printed.
    note = sys.stderr if not args.out else sys.stdout
    if args.trajectory:
        if fit.checkpoints:
            print(
                "training curve with the fitted schedule term: checkpoints before the end of the run sit above the "
                "final-loss curve",
                file=note,
            )
        else:
            print(
                "final-loss curve: the fit has no schedule term (it saw only final losses), so each point is the "
                "final loss of a run trained to that many tokens",
                file=note,
            )
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {len(table)} rows to {args.out}")
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.5g")
    if args.plot:
        from ..trajectory import trajectory_figure

        fig = trajectory_figure(fit, table, args.mixtures, args.model_size, args.tokens, nearest=args.nearest)
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}", file=note)
    return 0
