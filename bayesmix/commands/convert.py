"""bayesmix convert --mixtures MIX.csv --losses LOSS.csv --model-size 1e6 --tokens 1e9 --out runs.csv"""

from __future__ import annotations

from ._common import add_runs_arguments, load_runs

NAME = "convert"
HELP = "write the canonical run table (wide CSV) from any format bayesmix reads, after its checks and cleaning"


def add_arguments(p):
    add_runs_arguments(p)
    p.add_argument("--out", required=True, help="the canonical CSV to write")


def run(args) -> int:
    from pathlib import Path

    table = load_runs(args)
    out = Path(args.out)
    if args.runs and out.resolve() == Path(args.runs).resolve():
        raise ValueError(f"--out {args.out} is the input file; write the converted table elsewhere")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_frame().to_csv(out, index=False)
    print(
        f"wrote {out}: {table.n_rows} rows, {table.n_runs} runs, {len(table.domains)} domains, "
        f"{len(table.targets)} targets"
    )
    return 0
