"""bayesmix summary MODEL.nc"""

from __future__ import annotations

NAME = "summary"
HELP = "summarise a fitted model: law, data, priors, diagnostics and parameter posteriors"


def add_arguments(p):
    p.add_argument("model", help="fitted model (.nc)")
    p.add_argument("--interval", type=float, default=0.9)
    p.add_argument("--out", help="also write the parameter table to this CSV")


def run(args) -> int:
    import pandas as pd

    from ..fit import Fit

    fit = Fit.load(args.model)
    print(f"{fit.law.title} ({fit.law.reference})")
    print(f"  {fit.law.formula}")
    print(
        f"data: {fit.table.source}: {fit.table.n_rows} rows, {fit.table.n_runs} runs, {fit.table.n_mixtures} mixtures; "
        f"sizes {', '.join(f'{s:.3g}' for s in fit.sizes)}; reference scale N0={fit.N0:.3g}, D0={fit.D0:.3g}"
    )
    print(f"targets: {', '.join(fit.targets)}; domains: {', '.join(fit.domains)}")
    c = fit.config
    print(
        f"sampler: NUTS, {c.chains} chains x {c.draws} draws after {c.warmup} warm-up, seed {c.seed}; "
        f"bayesmix {fit.version}"
    )
    print(f"diagnostics: {fit.diagnostics}")
    for note in fit.table.notes:
        print(f"note: {note}")
    print("priors:")
    for name, prior in fit.priors.items():
        print(f"  {name:10s} {str(prior):28s} {prior.why}")
    table = fit.summary(args.interval)
    with pd.option_context("display.max_rows", 500, "display.width", 160):
        print(table.round(4).to_string())
    if args.out:
        table.to_csv(args.out)
        print(f"wrote {args.out}")
    return 0
