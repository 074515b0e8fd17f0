"""Where independent fits run: in this process (default), in local worker processes, or on a Dask cluster.

The work that is many independent fits -- a fit's target blocks, ``validate``'s
folds, SBC's batches of replications, ``--law auto``'s laws -- goes through
:func:`current`'s :meth:`Executor.map`. Each task gets the same inputs and
random key wherever it runs, so the draws do not depend on the number of
workers.

Choose with :func:`parallel`::

    with bayesmix.parallel(workers=2):            # a LocalCluster of 2 worker processes
        fit = bayesmix.fit(runs, "additive")
    with bayesmix.parallel(scheduler="tcp://host:8786"):   # an existing Dask cluster
        result = bayesmix.checks.sbc("additive", 100)

On the command line: ``--workers N`` or ``--scheduler ADDRESS`` (or the
``BAYESMIX_SCHEDULER`` environment variable). Why Dask's ``distributed``: it
is the engine the scientific Python stack already runs on (xarray, ArviZ's
own dask support), it ships ``LocalCluster`` for laptops and tests, and
dask-jobqueue and dask-kubernetes deploy it on SLURM and Kubernetes without
code here (docs/parallel.md). Its workers start with spawn, which JAX needs
(it is not fork-safe), reschedule a task whose worker died, and each worker
keeps its compiled programs between tasks.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("bayesmix")

SCHEDULER_ENV = "BAYESMIX_SCHEDULER"
_START_TOPIC = "bayesmix-task-start"


class TaskError(RuntimeError):
    """A task failed on a worker; the message names the task, and ``__cause__`` is its own error."""


@dataclass
class MapReport:
    """What the last :meth:`Executor.map` did: where it ran, the tasks started again after a lost worker."""

    where: str
    tasks: int
    seconds: float
    restarted: dict[str, int] = field(default_factory=dict)  # task label -> times it was started
    task_seconds: list[float] = field(default_factory=list)  # each task's own run time, in order

    def note(self) -> str | None:
        """A sentence for the fit's notes when a task had to run again, else None."""
        if not self.restarted:
            return None
        shown = ", ".join(f"{k} ({n} starts)" for k, n in sorted(self.restarted.items()))
        return f"a worker was lost while running {shown}; Dask ran those tasks again (same inputs and keys)"


class Executor:
    """Runs ``fn`` over tasks and returns the results in order (in-process: a plain loop)."""

    where = "in-process"

    def __init__(self) -> None:
        self.reports: collections.deque[MapReport] = collections.deque(maxlen=100)  # the latest maps, oldest first

    @property
    def last(self) -> MapReport | None:
        """The report of the latest map, or None."""
        return self.reports[-1] if self.reports else None

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], labels: Sequence[str] | None = None) -> list:
        """``[fn(t) for t in tasks]``: results in the order of ``tasks``; a task's error is raised as it is."""
        t0 = time.perf_counter()
        out, seconds = [], []
        for t in tasks:
            t1 = time.perf_counter()
            out.append(fn(t))
            seconds.append(time.perf_counter() - t1)
        self.reports.append(MapReport(self.where, len(tasks), time.perf_counter() - t0, task_seconds=seconds))
        return out

    @property
    def workers(self) -> int:
        """Processes that run tasks at once."""
        return 1

    def close(self) -> None:
        """Release what the executor started (nothing in-process)."""


def _run_task(fn: Callable, task: Any, key: str) -> Any:
    """On a worker: say the task started (so a rerun after a lost worker shows), run it in-process; return
    (its result, its seconds)."""
    try:
        from distributed import get_client, get_worker

        get_worker()  # raises ValueError off a worker
        # The client's call waits for the scheduler, so the start is on record even if this worker dies next
        # (a worker's own log_event is batched and would be lost with it).
        get_client().log_event(_START_TOPIC, {"key": key, "pid": os.getpid()})
    except (ImportError, ValueError):  # not on a Dask worker (e.g. a test calling it directly)
        pass
    token = _CURRENT.set(None)  # a task never sends work on from inside a worker
    t0 = time.perf_counter()
    try:
        return fn(task), time.perf_counter() - t0
    finally:
        _CURRENT.reset(token)


class DaskExecutor(Executor):
    """Tasks on a Dask ``distributed`` cluster: an existing one (``address``) or a LocalCluster of ``workers``."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        super().__init__()
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ImportError(
                "parallel fits need Dask's distributed: pip install 'bayesmix[parallel]' (or distributed)"
            ) from None
        self._cluster = None
        if address:
            self.client = Client(address)
            self.where = f"Dask cluster at {address}"
        else:
            n = int(workers or 2)
            # One thread per worker: JAX already uses the cores of its process, and threads would share them.
            self._cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
            )
            self.client = Client(self._cluster)
            self.where = f"{n} local worker processes"

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], labels: Sequence[str] | None = None) -> list:
        t0 = time.perf_counter()
        labels = [str(i) for i in range(len(tasks))] if labels is None else [str(x) for x in labels]
        stamp = f"{os.getpid()}-{time.time_ns()}"
        keys = [f"bayesmix-{stamp}-{i}" for i in range(len(tasks))]
        futures = [self.client.submit(_run_task, fn, t, k, key=k, pure=False) for t, k in zip(tasks, keys)]
        results, seconds = [], []
        try:
            for fut, lab in zip(futures, labels):
                try:
                    result, secs = fut.result()
                    results.append(result)
                    seconds.append(secs)
                except Exception as e:  # the task's own error, raised on the worker
                    raise TaskError(f"task {lab} failed on {self.where}: {type(e).__name__}: {e}") from e
        finally:
            for fut in futures:
                fut.release()
        # Starts are counted by task key, unique to this map: labels repeat across maps (a fit's targets).
        label_of = dict(zip(keys, labels))
        starts: dict[str, int] = {}
        for _, msg in self.client.get_events(_START_TOPIC):
            label = label_of.get(msg.get("key"))
            if label is not None:
                starts[label] = starts.get(label, 0) + 1
        self.reports.append(
            MapReport(
                self.where,
                len(tasks),
                time.perf_counter() - t0,
                {k: n for k, n in starts.items() if n > 1},
                seconds,
            )
        )
        if self.last.note():
            log.warning("%s", self.last.note())
        return results

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


_CURRENT: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("bayesmix_executor", default=None)
_IN_PROCESS = Executor()


def current() -> Executor:
    """The executor independent fits use now: the innermost :func:`parallel`, else in-process."""
    return _CURRENT.get() or _IN_PROCESS


@contextlib.contextmanager
def parallel(workers: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """Run independent fits on ``workers`` local processes or the Dask cluster at ``scheduler`` inside the block.

    ``workers`` of None or 1 and no ``scheduler`` keep the work in this process.
    Yields the executor; a cluster this started is shut down on leaving.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    if scheduler:
        ex: Executor = DaskExecutor(address=scheduler)
    elif workers and workers > 1:
        ex = DaskExecutor(workers=workers)
    else:
        ex = Executor()
    token = _CURRENT.set(ex)
    try:
        yield ex
    finally:
        _CURRENT.reset(token)
        ex.close()


@contextlib.contextmanager
def use(executor: Executor) -> Iterator[Executor]:
    """Run independent fits on an executor the caller made (and closes) inside the block, e.g. one cluster for
    several calls."""
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)


def scheduler_from_env(flag: str | None) -> str | None:
    """The ``--scheduler`` value, else ``BAYESMIX_SCHEDULER`` (read by the command line only)."""
    return flag or os.environ.get(SCHEDULER_ENV) or None
