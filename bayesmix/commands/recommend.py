"""bayesmix recommend MODEL.nc --model-size 7e9 --tokens 1.5e11 [--target T | --target-weights a=1,b=1]
[--baseline ...] [--risk cvar:0.9] --out rec/"""

from __future__ import annotations

import warnings

from ._common import add_constraint_arguments, add_decision_arguments, constraint_kwargs

NAME = "recommend"
HELP = "recommend the training mixture that minimises the posterior expected (or risk-adjusted) target loss at a scale"


def add_arguments(p):
    add_decision_arguments(p, "one target to minimise, e.g. openhermes (default: the mean of the domain targets)")
    add_constraint_arguments(p)
    p.add_argument(
        "--risk",
        default="mean",
        help="mean (default), quantile:Q or cvar:A, e.g. cvar:0.9 (the mean of the worst 10%% of draws)",
    )
    p.add_argument("--interval", type=float, default=0.9, help="credible level of the intervals (default 0.9)")
    p.add_argument(
        "--starts",
        type=int,
        default=4,
        help=(
            "random optimiser starts added to the structured ones: baseline, uniform, best candidate, one corner per "
            "domain (default 4)"
        ),
    )
    p.add_argument(
        "--argmin-draws",
        type=int,
        default=200,
        help="posterior draws whose own optimum is found, for stability and regret (default 200)",
    )
    p.add_argument(
        "--path-points", type=int, default=5, help="scales on the path from the fitted scales to the target (default 5)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", help="directory for the tables (CSV), summary and figures")


def run(args) -> int:
    from ..decide import recommend
    from ..stacking import load

    fit = load(args.model)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # optimiser warnings are printed, never swallowed
        rec = recommend(
            fit,
            args.model_size,
            args.tokens,
            target=args.target,
            target_weights=args.target_weights,
            risk=args.risk,
            **constraint_kwargs(args),
            starts=args.starts,
            argmin_draws=args.argmin_draws,
            path_points=args.path_points,
            interval=args.interval,
            seed=args.seed,
        )
    print(rec.summary())
    if args.out:
        files = rec.save(args.out)
        print(f"wrote {', '.join(f.name for f in files)} to {args.out}")
    return 0
