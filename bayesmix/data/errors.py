"""Error messages that point back at the user's input.

Every problem found in a run table, a mixtures file or a command-line value is
raised as :class:`RunTableError`, whose message names the source, the row
(1-based data row, plus the file line for CSV files) and the column.  The
helpers here hold what a message needs (:class:`_Input`) and format it; they
import nothing else from the package, so every other module may use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

__all__ = ["RunTableError"]

_MAX_SHOWN = 5  # offending rows listed in an error or note


class RunTableError(ValueError):
    """Bad run-table input; message names the source, row and column."""


# --------------------------------------------------------------------------- #
# Raw input with what messages need to name its rows
# --------------------------------------------------------------------------- #


@dataclass
class _Input:
    """Raw cells plus what error messages need to point back at the user's input."""

    frame: pd.DataFrame  # str column names, RangeIndex, cells as given
    source: str
    labels: list[str]  # per row, for errors: "row 17 (line 18)"
    refs: list[str]  # per row, for notes: "row 17"
    notes: list[tuple[int, str]]


# --------------------------------------------------------------------------- #
# Error and note formatting
# --------------------------------------------------------------------------- #


def _show(v) -> str:
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _num(x: float) -> str:
    return f"{x:.6g}"


def _col(name: str) -> str:
    return f"column {name!r}"


def _fail(inp: _Input, what: str, items: list[tuple[int | None, str | None, str]]):
    """Raise one RunTableError for a list of (row position, where, detail) problems.

    ``where`` is a preformatted place such as "column 'weight_c4'" (or None).

    One problem gives ``src, row R (line L), column 'c': detail``; several give a
    header with the total and the first few, one per line.
    """
    items = sorted(items, key=lambda it: -1 if it[0] is None else it[0])

    def where(pos, col) -> str:
        parts = []
        if pos is not None and inp.labels[pos]:
            parts.append(inp.labels[pos])
        if col:
            parts.append(col)
        return ", ".join(parts)

    if len(items) == 1:
        pos, col, detail = items[0]
        loc = where(pos, col)
        raise RunTableError(f"{inp.source}{', ' + loc if loc else ''}: {detail}")
    n_rows = len({p for p, _, _ in items})
    if items[0][0] is None:  # column-level problems
        count = f"{len(items)} columns"
    elif n_rows == len(items):
        count = f"{n_rows} rows"
    else:
        count = f"{n_rows} rows ({len(items)} cells in all)"
    shown = items[:_MAX_SHOWN]
    head = f"{inp.source}: {what} in {count}"
    head += f"; the first {len(shown)}:" if len(items) > len(shown) else ":"
    body = "\n".join(f"  {where(p, c)}: {d}" for p, c, d in shown)
    raise RunTableError(f"{head}\n{body}")


def _refs(inp: _Input, positions: Sequence[int]) -> str:
    refs = [inp.refs[p] for p in positions[:_MAX_SHOWN]]
    if all(r.startswith("row ") for r in refs):
        text = ("rows " if len(positions) > 1 else "row ") + ", ".join(r[4:] for r in refs)
    else:
        text = ", ".join(refs)
    if len(positions) > _MAX_SHOWN:
        text += f" and {len(positions) - _MAX_SHOWN} more"
    return text


def _plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else word + 's'}"
