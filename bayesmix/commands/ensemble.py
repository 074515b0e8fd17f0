"""bayesmix ensemble A.nc B.nc ... --out models/ens.nc"""

from __future__ import annotations

NAME = "ensemble"
HELP = "stack fitted laws of one sweep into an ensemble, weighted by how well they predicted held-out larger scales"


def add_arguments(p):
    p.add_argument("models", nargs="+", help="fitted models (.nc) of the same run table, one per law")
    p.add_argument("--out", required=True, help="output file, e.g. models/ens.nc")
    p.add_argument("--draws", type=int, default=0, help="draws in the ensemble (default: the smallest fit's)")


def run(args) -> int:
    from ..stacking import ensemble

    if args.draws < 0:
        raise ValueError("--draws must be >= 0")
    ens = ensemble(args.models, draws=args.draws)
    print_weights(ens)
    print(f"saved {ens.save(args.out)}")
    return 0


def print_weights(ens) -> None:
    """What the weights came from, the held-out scores per law and the per-target weights (ensemble, fit --law
    auto and summary print the same)."""
    import pandas as pd

    print(ens.note)
    with pd.option_context("display.width", 160):
        print("held-out scores per law (elpd: log density of the held-out losses; weight: stacking):")
        print(ens.summary()[["elpd", "se", "elpd_diff", "dse", "weight"]].round(3).to_string())
        if len(ens.by_target.columns):
            print("stacking weights per target (shown, not used: the ensemble's weights are pooled over targets):")
            print(ens.by_target.round(2).to_string())
