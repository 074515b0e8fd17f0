"""Independent fits in-process against local Dask workers, and the efficiency projected for more workers (issue 18).

Two jobs, each run twice in the same call (in-process, then on a LocalCluster of ``--workers`` processes) with the
same seed; the draws must be equal (checked), and the ratio of wall times is printed:

- ``sbc``: simulation-based calibration of one law (``--law``, default additive), ``--replications`` (default 100)
  in batches of ``--batch`` (default 10: ten tasks);
- ``laws``: the five-law fit of ``bayesmix fit --law auto`` on a sweep (``--sweep example`` by default, the built-in
  simulated one; ``--sweep slimpajama`` for the real one, every run up to 1.235B, which takes hours on 2 cores).

The projection for P workers uses the measured per-task times (in-process; for SBC the first task's compile is
split off, since every worker compiles once) and the measured overhead per task (the workers' wall time against
the schedule those times allow): tasks are placed longest first on the least busy worker, and efficiency =
(serial time) / (P x projected wall time).

Examples::

    python benchmarks/parallel_speed.py                        # both jobs, 2 workers
    python benchmarks/parallel_speed.py --jobs sbc --replications 20 --batch 5   # quick
    python benchmarks/parallel_speed.py --jobs laws --sweep slimpajama --targets c4   # real sweep, one target
"""

from __future__ import annotations

import argparse
import heapq
import math
import time
import warnings
from pathlib import Path

import numpy as np

import bayesmix
from bayesmix.executor import Executor, current, parallel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dmsl_llm_slimpajama.csv"


def makespan(task_seconds: list[float], workers: int, overhead: float = 0.0) -> float:
    """Wall time of tasks placed longest first on the least busy of ``workers`` (each task plus ``overhead``)."""
    busy = [0.0] * workers
    heapq.heapify(busy)
    for t in sorted(task_seconds, reverse=True):
        heapq.heappush(busy, heapq.heappop(busy) + t + overhead)
    return max(busy)


def timed(job, executor: Executor | None):
    """(result, wall seconds, the map reports of the run)."""
    t0 = time.perf_counter()
    before = len(executor.reports) if executor is not None else len(current().reports)
    result = job()
    ex = executor if executor is not None else current()
    return result, time.perf_counter() - t0, list(ex.reports)[before:]


def sbc_job(args):
    from bayesmix.checks import sbc

    return lambda: sbc(args.law, args.replications, batch=args.batch, seed=0)


def laws_job(args):
    from bayesmix.stacking import fit_laws

    if args.sweep == "slimpajama":
        if not DATA.exists():
            raise SystemExit(f"real data not available: {DATA} is absent")
        runs = bayesmix.read_runs(DATA, quiet=True)
        runs = runs.subset(runs.model_size <= 1.3e9)
        kw = {"targets": args.targets.split(",")} if args.targets else {}
    else:
        from bayesmix.example import example_table

        runs = bayesmix.read_runs(example_table(0), quiet=True)
        kw = dict(chains=4, warmup=500, draws=500)

    def job():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit_laws(runs, seed=0, progress=False, **kw)[0]

    return job


def same(job_name: str, a, b) -> bool:
    if job_name == "sbc":
        return a.ranks.equals(b.ranks)
    return all(np.array_equal(x.draws[k], y.draws[k]) for x, y in zip(a.fits, b.fits) for k in x.draws)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", default="sbc,laws", help="comma-separated: sbc, laws (default both)")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    ap.add_argument("--law", default="additive", help="law of the SBC job (default additive)")
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--batch", type=int, default=10, help="replications per SBC task (default 10)")
    ap.add_argument("--sweep", choices=["example", "slimpajama"], default="example")
    ap.add_argument("--targets", help="laws job on slimpajama: comma-separated targets to fit (default: all 8)")
    ap.add_argument("--project", default="8,32", help="worker counts to project the efficiency for (default 8,32)")
    args = ap.parse_args()

    makers = {"sbc": sbc_job, "laws": laws_job}
    rows = []
    for name in args.jobs.split(","):
        job = makers[name.strip()](args)
        here, t_here, rep_here = timed(job, None)
        with parallel(workers=args.workers) as ex:
            there, t_there, rep_there = timed(job, ex)
        ok = same(name, here, there)
        # the outermost map of the job is what runs on the workers: its tasks' own times, in this process
        outer_here = max(rep_here, key=lambda r: r.seconds)
        outer_there = max(rep_there, key=lambda r: r.seconds)
        tasks = list(outer_here.task_seconds)
        compile_s = 0.0
        if name == "sbc" and len(tasks) > 1:
            # every task has the same shapes: the first one in a process compiles, the others reuse it
            compile_s = max(0.0, tasks[0] - float(np.median(tasks[1:])))
            tasks[0] -= compile_s
        ideal = compile_s + makespan(tasks, args.workers)
        overhead = max(0.0, (outer_there.seconds - ideal) / len(tasks))
        print(
            f"\n{name}: {len(tasks)} tasks, task time {min(tasks):.1f}-{max(tasks):.1f} s (sum {sum(tasks):.0f} s) "
            f"after a compile of {compile_s:.0f} s per process; draws equal: {ok}"
        )
        print(f"  in-process {t_here:.0f} s; {args.workers} workers {t_there:.0f} s: ratio {t_here / t_there:.2f}")
        print(
            f"  the workers' map took {outer_there.seconds:.0f} s against {ideal:.0f} s that the task times allow "
            f"(compile once per worker, then the tasks longest first): overhead {overhead:.2f} s per task"
        )
        for p in [int(x) for x in args.project.split(",")]:
            wall = compile_s + makespan(tasks, p, overhead)
            serial = compile_s + sum(tasks)
            print(
                f"  projected on {p} workers: {wall:.0f} s, speed-up {serial / wall:.1f}, "
                f"efficiency {serial / (p * wall):.0%} ({len(tasks)} tasks; more, smaller tasks raise it)"
            )
        if name == "sbc":
            # batches of replications/P: every worker gets one task (vectorised NUTS costs about the sum of its members)
            per_rep = sum(tasks) / args.replications
            for p in [int(x) for x in args.project.split(",")]:
                wall = compile_s + math.ceil(args.replications / p) * per_rep + overhead
                serial = compile_s + sum(tasks)
                print(
                    f"  with batch = replications / {p}: {wall:.0f} s on {p} workers, speed-up {serial / wall:.1f}, "
                    f"efficiency {serial / (p * wall):.0%} (the compile, {compile_s:.0f} s per worker, bounds it)"
                )
        rows.append((name, t_here, t_there, ok))
    print("\njob      in-process  workers  ratio  draws equal")
    for name, a, b, ok in rows:
        print(f"{name:8s} {a:10.0f} {b:8.0f} {a / b:6.2f}  {ok}")


if __name__ == "__main__":
    main()
