"""Run tables: reading, validating and parsing what the user gives.

Modules, from the bottom up (each imports only those above it in this list):

* :mod:`.errors`: :class:`RunTableError` and the helpers that make its messages
  name the source, row and column;
* :mod:`.table`: :class:`RunTable`, the validated table every reader returns;
* :mod:`.read`: :func:`read_runs` for the canonical wide CSV or DataFrame, and
  :func:`read_mixtures` for mixtures to predict at;
* :mod:`.regmix`: :func:`read_regmix`, the adapter for RegMix-style files;
* :mod:`.parse`: :func:`parse_mixture` and :func:`parse_target_weights`, the
  text parsers the command line uses.
"""

from __future__ import annotations

from .errors import RunTableError
from .parse import parse_mixture, parse_target_weights
from .read import read_mixtures, read_runs
from .regmix import read_regmix
from .table import RunTable

__all__ = [
    "RunTableError",
    "RunTable",
    "read_runs",
    "read_regmix",
    "read_mixtures",
    "parse_mixture",
    "parse_target_weights",
]
