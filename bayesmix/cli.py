"""The ``bayesmix`` command line.

Each verb lives in its own module under ``bayesmix/commands`` and defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; this
file only finds them, so adding a verb never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import warnings

from . import commands as _commands


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def _verbs():
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{_commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb."""
    parser = argparse.ArgumentParser(prog="bayesmix", description="Bayesian data-mixing scaling laws.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in _verbs():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run the verb, turn user errors into one clear line (exit 2)."""
    from .data import RunTableError
    from .io import ModelFileError
    from .priors import PriorError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    logging.basicConfig(format="bayesmix: %(message)s", level=logging.WARNING if args.quiet else logging.INFO)
    for noisy in ("arviz", "jax", "jax._src.xla_bridge", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"bayesmix: warning: {msg}\n"
    try:
        if hasattr(args, "workers"):  # verbs that add --workers/--scheduler run their independent fits there
            from .executor import parallel, scheduler_from_env

            with parallel(args.workers, scheduler_from_env(args.scheduler)):
                return int(args._run(args) or 0)
        return int(args._run(args) or 0)
    except (UserError, RunTableError, ModelFileError, PriorError, FileNotFoundError) as e:
        print(f"bayesmix: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # our own argument checks raise ValueError with a readable message
        print(f"bayesmix: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
