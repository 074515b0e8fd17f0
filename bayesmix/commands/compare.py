"""bayesmix compare a.nc b.nc c.nc"""

from __future__ import annotations

NAME = "compare"
HELP = "rank laws fitted to the same runs by leave-one-run-out predictive density (PSIS-LOO)"


def add_arguments(p):
    p.add_argument("models", nargs="+", help="two or more fitted models (.nc) of the same run table")
    p.add_argument(
        "--refit", action="store_true", help="refit exactly for runs where Pareto k > 0.7 (slow: one fit per run)"
    )
    p.add_argument("--max-refits", type=int, default=10, help="at most this many exact refits per model (default 10)")
    p.add_argument("--refit-draws", type=int, help="draws per chain in the refits (default: as in the model)")
    p.add_argument("--holdout", help="also refit on a held-out split and add its scores, e.g. largest-size (slow)")
    p.add_argument("--out", help="write the table to this CSV")
    p.add_argument("--figures", help="folder for Pareto k figures (PNG), one per model")


def run(args) -> int:
    from pathlib import Path

    import pandas as pd

    from ..checks.compare import compare, loo_runs
    from ..fit import Fit

    if len(args.models) < 2:
        raise ValueError("compare needs at least two model files")
    if len(set(args.models)) < len(args.models):
        raise ValueError("the same model file is given twice")
    fits = {}
    for path in args.models:
        name = Path(path).stem
        if name in fits:
            name = path
        fits[name] = Fit.load(path)
    table = compare(
        fits, refit=args.refit, max_refits=args.max_refits, refit_draws=args.refit_draws, holdout=args.holdout
    )
    first = next(iter(fits.values()))
    print(
        f"leave-one-run-out comparison on {first.table.source}: {first.table.n_runs} runs, targets "
        f"{', '.join(first.targets)}"
    )
    print(
        "(scores are per run -- all checkpoints of a run left out together, since checkpoints of one run share its "
        "offset and are not independent)"
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.round(2).to_string())
    print(table.attrs["verdict"])
    for name, runs in table.attrs["high_k_runs"].items():
        if runs:
            shown = ", ".join(runs[:8]) + (f" and {len(runs) - 8} more" if len(runs) > 8 else "")
            print(f"{name}: Pareto k > 0.7 for {shown}")
    if args.out:
        table.to_csv(args.out)
        print(f"wrote {args.out}")
    if args.figures:
        from ..checks.plots import khat_figure

        folder = Path(args.figures)
        folder.mkdir(parents=True, exist_ok=True)
        for name, f in fits.items():
            fig = khat_figure(loo_runs(f).elpd_data, f"Pareto k per run: {name}")
            path = folder / f"khat-{name}.png"
            fig.savefig(path, dpi=110)
            print(f"wrote {path}")
    return 0
