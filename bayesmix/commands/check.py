"""bayesmix check MODEL.nc --out report/"""

from __future__ import annotations

from ._common import add_runs_arguments, load_runs, runs_name

NAME = "check"
HELP = "posterior predictive checks of a fitted model: interval coverage, PIT, residuals, worst-fit runs"


def add_arguments(p):
    p.add_argument("model", help="fitted model or ensemble (.nc)")
    p.add_argument("--out", default="report", help="folder for the figures (PNG) and tables (CSV) (default report/)")
    add_runs_arguments(p, optional_flag=True)
    p.add_argument("--worst", type=int, default=10, help="worst-fit runs to list (default 10)")
    p.add_argument("--max-draws", type=int, default=2000, help="posterior draws to use (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the predictive draws (default 0)")
    p.add_argument("--no-figures", action="store_true", help="tables only (faster)")


def run(args) -> int:
    import pandas as pd

    from ..checks.ppc import check
    from ..stacking import load

    if args.worst < 0 or args.max_draws < 1:
        raise ValueError("--worst must be >= 0 and --max-draws >= 1")
    fit = load(args.model)
    table = load_runs(args, required=False)
    result = check(fit, table, seed=args.seed, max_draws=args.max_draws, worst=args.worst, figures=not args.no_figures)
    paths = result.save(args.out)
    where = f"the runs in {runs_name(args)}" if table is not None else f"the {fit.table.n_runs} fitted runs"
    t = result.table
    print(f"posterior predictive check of {fit.law.title} on {where} ({int(t.loc['all', 'cells'])} observed losses)")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        shown = t.copy()
        for c in [c for c in shown.columns if c.startswith("coverage_")] + ["width_90", "interval_score_90"]:
            shown[c] = (100 * shown[c]).round(1)
        for c in ("mre", "bias"):
            shown[c] = (100 * shown[c]).round(2)
        print(
            "coverage of central predictive intervals (%, nominal = the level), the 90% interval's width and "
            "interval score (% of the loss; lower is sharper), MRE and bias (%):"
        )
        print(shown.round({"pit_ks": 3, "pit_p": 3}).to_string())
    a = t.loc["all"]
    for level in (50, 90):
        col = f"coverage_{level}"
        if col in t.columns:
            gap = 100 * a[col] - level
            word = "about right" if abs(gap) <= 5 else ("too wide" if gap > 0 else "too narrow")
            print(f"{level}% intervals hold {100 * a[col]:.1f}% of the observations: {word}")
    if len(result.worst):
        print("worst-fit runs (largest RMS standardised residual):")
        with pd.option_context("display.width", 160):
            print(result.worst.round(4).to_string(index=False))
    for p in paths:
        print(f"wrote {p}")
    return 0
