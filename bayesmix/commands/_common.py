"""Argument helpers shared by verbs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_sampler_arguments(p: argparse.ArgumentParser) -> None:
    """--chains, --warmup, --draws, --seed, --progress/--no-progress."""
    p.add_argument("--chains", type=int, default=4, help="NUTS chains, run in parallel (default 4)")
    p.add_argument("--warmup", type=int, default=1000, help="warm-up iterations per chain (default 1000)")
    p.add_argument("--draws", type=int, default=1000, help="draws per chain after warm-up (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same inputs and seed, same draws (default 0)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: on, off under CI)",
    )


RUNS_HELP = "run table (CSV): weight_<domain>, model_size, n_tokens, <target>_loss[, run][, run_tokens]"


def add_runs_arguments(p: argparse.ArgumentParser, *, optional_flag: bool = False) -> None:
    """The runs to read: RUNS (the canonical wide CSV) or --mixtures/--losses pairs, and --weight-tolerance.

    With ``optional_flag`` the canonical table is ``--runs RUNS`` and may be absent
    (``check`` uses the fitted runs then).
    """
    if optional_flag:
        p.add_argument("--runs", help=f"check against this {RUNS_HELP} instead of the fitted runs")
    else:
        p.add_argument("runs", nargs="?", help=f"{RUNS_HELP}; or give --mixtures and --losses instead")
    g = p.add_argument_group(
        "RegMix-style pairs",
        "a mixtures file (index, train_<domain>) and a losses file (index, metric/<target>_val_loss) joined on "
        "index, instead of RUNS; repeat all four flags for pairs at several scales",
    )
    g.add_argument("--mixtures", action="append", default=[], metavar="MIX.csv", help="mixtures file of a pair")
    g.add_argument("--losses", action="append", default=[], metavar="LOSS.csv", help="losses file of a pair")
    g.add_argument(
        "--model-size",
        dest="pair_model_size",
        action="append",
        default=[],
        type=positive_float,
        metavar="N",
        help="parameters of the pair's runs, e.g. 1e6 (once for every pair, or once per pair)",
    )
    g.add_argument(
        "--tokens",
        dest="pair_tokens",
        action="append",
        default=[],
        type=positive_float,
        metavar="D",
        help="training tokens of the pair's runs, e.g. 1e9 (once for every pair, or once per pair)",
    )
    p.add_argument(
        "--weight-tolerance",
        type=float,
        default=None,
        metavar="TOL",
        help=(
            "how far a row's weights may sum from 1 before it is an error (default: the row's rounding bound, "
            "K x 0.5 x 10^-d for K weights written to d decimals, at least 0.001)"
        ),
    )


def load_runs(args, *, required: bool = True):
    """The RunTable the runs arguments name (None if optional and absent); errors say which flag is wrong."""
    from ..data import read_regmix, read_runs

    pair_flags = args.mixtures or args.losses or args.pair_model_size or args.pair_tokens
    if args.runs and pair_flags:
        raise ValueError(f"give either the run table {args.runs} or --mixtures/--losses pairs, not both")
    if args.runs:
        return read_runs(args.runs, weight_tolerance=args.weight_tolerance)
    if not pair_flags:
        if required:
            raise ValueError("no runs given: pass a run table (RUNS.csv) or --mixtures MIX.csv --losses LOSS.csv")
        return None
    if len(args.mixtures) != len(args.losses):
        raise ValueError(
            f"{len(args.mixtures)} --mixtures but {len(args.losses)} --losses: give one losses file per mixtures file"
        )
    for flag, values in (("--model-size", args.pair_model_size), ("--tokens", args.pair_tokens)):
        if not values:
            raise ValueError(f"{flag} is required with --mixtures/--losses: the pair's files do not say it")
        if len(values) not in (1, len(args.mixtures)):
            raise ValueError(
                f"{len(values)} {flag} values for {len(args.mixtures)} pairs: give one for every pair, or one per pair"
            )
    return read_regmix(
        args.mixtures,
        args.losses,
        model_size=args.pair_model_size,
        n_tokens=args.pair_tokens,
        weight_tolerance=args.weight_tolerance,
    )


def runs_name(args) -> str:
    """The file the runs came from, for default output names: RUNS or the first mixtures file."""
    return args.runs or args.mixtures[0]


def add_parallel_arguments(p: argparse.ArgumentParser) -> None:
    """--workers N, --scheduler ADDRESS: where the independent fits of the verb run (bayesmix.executor)."""
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run independent fits (target blocks, folds, laws) on N local worker processes (default: in this one)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="send them to the Dask cluster at ADDRESS, e.g. tcp://host:8786 (default: $BAYESMIX_SCHEDULER if set)",
    )


def add_decision_arguments(p: argparse.ArgumentParser, target_help: str) -> None:
    """MODEL, --model-size, --tokens (the big run the decision is for) and --target | --target-weights."""
    p.add_argument("model", help="fitted model or ensemble (.nc)")
    p.add_argument("--model-size", type=positive_float, required=True, help="parameters N of the big run, e.g. 7e9")
    p.add_argument("--tokens", type=positive_float, required=True, help="training tokens D of the big run, e.g. 1.5e11")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--target", help=target_help)
    which.add_argument(
        "--target-weights",
        help=(
            "the target loss as a weighted sum of targets, e.g. arxiv=1,book=1,c4=2 (default: the mean of the domain "
            "targets)"
        ),
    )


def add_constraint_arguments(p: argparse.ArgumentParser) -> None:
    """The mixture constraints of the decision: --baseline, --floor, --cap, --unique-tokens, --max-epochs, --max-tv.

    ``recommend`` and ``next-run`` take the same flags, so that a plan is
    scored for the decision that ``recommend`` makes.
    """
    p.add_argument(
        "--baseline", help="mixture to compare with: one weight per domain in order (0.1,0.2,...) or domain=weight"
    )
    p.add_argument("--floor", help="smallest weight: one number for every domain, or domain=value,... (default 0)")
    p.add_argument("--cap", help="largest weight: one number for every domain, or domain=value,... (default 1)")
    p.add_argument(
        "--unique-tokens", help="unique tokens available per domain, e.g. arxiv=3e10,book=2.6e10 (others unlimited)"
    )
    p.add_argument(
        "--max-epochs",
        type=positive_float,
        default=4.0,
        help="times a domain's unique tokens may be repeated (default 4)",
    )
    p.add_argument("--max-tv", type=float, help="largest total-variation distance from the baseline, e.g. 0.1")


def constraint_kwargs(args) -> dict:
    """The keyword arguments of :func:`bayesmix.decide.recommend` and :func:`bayesmix.plan.next_run` for those flags."""
    return dict(
        baseline=args.baseline,
        floors=args.floor,
        caps=args.cap,
        unique_tokens=args.unique_tokens,
        max_epochs=args.max_epochs,
        max_tv=args.max_tv,
    )


def positive_float(text: str) -> float:
    """argparse type: a positive number such as 2.7e9."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def default_model_path(source: str, law: str) -> Path:
    """models/<stem>-<law>.nc: the default output of a fit."""
    return Path("models") / f"{Path(source).stem.replace('_', '-')}-{law}.nc"


def parse_prior_args(items: list[str]) -> dict[str, str]:
    """--prior NAME=DIST arguments as a name -> distribution-text mapping (parsed later by the fit)."""
    priors = {}
    for item in items:
        name, _, spec = item.partition("=")
        if not spec:
            raise ValueError(f"--prior takes NAME=DIST, e.g. alpha='LogNormal(-1.2, 0.3)'; got {item!r}")
        priors[name.strip()] = spec
    return priors
