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
