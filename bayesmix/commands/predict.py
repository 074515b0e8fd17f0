"""bayesmix predict MODEL.nc --mixtures mixes.csv --model-size 2.7e9 --tokens 1e11"""

from __future__ import annotations

import sys

from ._common import positive_float

NAME = "predict"
HELP = "predict losses at mixtures and a scale, with credible and predictive intervals"


def add_arguments(p):
    p.add_argument("model", help="fitted model (.nc)")
    p.add_argument(
        "--mixtures", required=True, help="CSV of mixtures: weight_<domain> or <domain> columns, one row per mixture"
    )
    p.add_argument("--model-size", type=positive_float, required=True, help="parameters, e.g. 2.7e9")
    p.add_argument("--tokens", type=positive_float, required=True, help="training tokens, e.g. 1e11")
    p.add_argument("--interval", type=float, default=0.9, help="interval level (default 0.9)")
    p.add_argument("--target-weights", help="add a target 'weighted' = sum of targets, e.g. c4=0.5,book=0.5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the table to this CSV (default: print it)")


def run(args) -> int:
    from ..fit import Fit

    fit = Fit.load(args.model)
    table = fit.predict(
        args.mixtures,
        args.model_size,
        args.tokens,
        interval=args.interval,
        target_weights=args.target_weights,
        seed=args.seed,
    )
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {len(table)} rows to {args.out}")
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.5g")
    return 0
