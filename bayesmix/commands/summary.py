"""bayesmix summary MODEL.nc"""

from __future__ import annotations

NAME = "summary"
HELP = "summarise a fitted model: law, data, priors, diagnostics and parameter posteriors"


def add_arguments(p):
    p.add_argument("model", help="fitted model or ensemble (.nc)")
    p.add_argument("--interval", type=float, default=0.9)
    p.add_argument("--out", help="also write the parameter table to this CSV")


def run(args) -> int:
    import pandas as pd

    from ..stacking import load

    fit = load(args.model)
    if hasattr(fit, "fits"):
        return _ensemble(fit, args)
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


def _ensemble(ens, args) -> int:
    """An ensemble: its weights and what they came from, then each law's diagnostics and extrapolation rates."""
    from .ensemble import print_weights

    print(f"{ens.law.title}; {ens.law.reference}")
    t = ens.table
    print(
        f"data: {t.source}: {t.n_rows} rows, {t.n_runs} runs, {t.n_mixtures} mixtures; targets {', '.join(ens.targets)}"
    )
    print_weights(ens)
    for f in ens.fits:
        print(f"{f.law.title} ({f.law.reference}): {str(f.diagnostics).splitlines()[0]}")
        sd = ", ".join(f"{n} {v:.3g}" for n, v in zip(f.targets, f.extrapolation_sd))
        print(f"  extrapolation_sd per e-fold: {sd}")
    if args.out:
        ens.summary(args.interval).to_csv(args.out)
        print(f"wrote {args.out}")
    return 0
