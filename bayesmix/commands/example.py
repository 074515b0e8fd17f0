"""bayesmix example: simulate a sweep, fit it, predict at a larger scale."""

from __future__ import annotations

from ._common import add_sampler_arguments

NAME = "example"
HELP = "run the built-in example: a SIMULATED sweep, fitted with NUTS and extrapolated 3.4x in model size"


def add_arguments(p):
    p.add_argument("--out", default="models", help="folder for the fitted model (default models/)")
    p.add_argument("--figures", default="example", help="folder for the figures (default example/)")
    add_sampler_arguments(p)
    p.set_defaults(warmup=1000, draws=1000)


def run(args) -> int:
    import pandas as pd

    from ..example import DOMAINS, SIZES, TARGET_SIZE, TARGET_TOKENS, run_example

    print(
        "bayesmix example: the data are SIMULATED by bayesmix from the additive law (Shukor et al. 2025) with "
        "literature-scale parameters -- not real training runs."
    )
    r = run_example(
        args.out,
        args.figures,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        seed=args.seed,
        progress=args.progress,
    )
    tab = r.fit.table
    print(
        f"sweep: {len(DOMAINS)} domains ({', '.join(DOMAINS)}), {tab.n_mixtures} mixtures x {len(SIZES)} sizes "
        f"({', '.join(f'{s:.3g}' for s in SIZES)}), {tab.n_rows} checkpoints in {tab.n_runs} runs"
    )
    print(
        f"fit: {r.fit.config.chains} chains x {r.fit.config.draws} draws in "
        f"{r.fit.timing.get('total_seconds', 0):.0f} s; "
        f"{str(r.fit.diagnostics).splitlines()[0]}"
    )
    t = r.table
    names = ["uniform"] + [f"{d}-heavy" for d in DOMAINS]
    t = t.assign(mixture=[names[i] for i in t.mixture])
    print(
        f"\npredicted loss at {TARGET_SIZE:.2g} parameters, {TARGET_TOKENS:.2g} tokens (90% credible interval) vs the "
        "simulated truth:"
    )
    with pd.option_context("display.width", 140):
        print(t[["mixture", "target", "median", "lower", "upper", "truth", "inside"]].round(3).to_string(index=False))
    print(
        f"\nthe truth is inside the 90% interval for {t.inside.sum()} of {len(t)} predictions; "
        f"mean relative error of the posterior mean {100 * (abs(t['mean'] - t.truth) / t.truth).mean():.2f}%"
    )
    print(f"saved the fitted model: {r.model_path}")
    for f in r.figures:
        print(f"saved figure: {f}")
    return 0
