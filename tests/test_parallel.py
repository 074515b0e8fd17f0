"""Independent fits on a Dask LocalCluster of 2 worker processes give the draws of the in-process run.

One cluster serves the module (starting one takes seconds). Each comparison
runs the same call twice, in this process and on the workers, with the same
seed, and asserts the draws are equal to the bit.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

import cloudpickle  # noqa: E402  (ships with distributed)

import bayesmix  # noqa: E402
from bayesmix.executor import DaskExecutor, Executor, TaskError, current, parallel, use  # noqa: E402

pytestmark = pytest.mark.slow

# Functions defined here are shipped to the workers by value: the workers cannot import the tests folder.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cluster():
    ex = DaskExecutor(workers=2)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def runs(example_frame):
    return bayesmix.read_runs(example_frame, quiet=True)


def quick(**kw):
    return dict(chains=2, warmup=60, draws=30, seed=5, progress=False, **kw)


def fit_quietly(runs, law="additive", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bayesmix.fit(runs, law, **quick(**kw))


def test_in_process_is_the_default_and_one_worker_stays_in_process():
    assert type(current()) is Executor and current().where == "in-process"
    with parallel(workers=1) as ex:
        assert current() is ex and ex.where == "in-process"
        assert ex.map(lambda x: x * x, [3, 1, 2]) == [9, 1, 4]
    with pytest.raises(ValueError, match="workers must be at least 1"):
        with parallel(workers=0):
            pass


def test_fit_of_several_targets_same_draws(cluster, runs):
    here = fit_quietly(runs)
    with use(cluster):
        there = fit_quietly(runs)
    assert len(here.targets) == 4
    assert set(here.draws) == set(there.draws)
    for k in here.draws:
        np.testing.assert_array_equal(here.draws[k], there.draws[k], err_msg=k)
    assert [r.tasks for r in cluster.reports][0] == 4  # a task per target block (then the hold-out refits)
    assert cluster.where == "2 local worker processes"


def test_validate_same_draws(cluster, runs):
    from bayesmix.checks import validate

    kw = dict(holdout="largest-size", targets=["web", "code"], **quick())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        here = validate(runs, "additive", **kw)
        with use(cluster):
            there = validate(runs, "additive", **kw)
    assert len(here.fits) == len(there.fits) >= 1
    for a, b in zip(here.fits, there.fits):
        for k in a.draws:
            np.testing.assert_array_equal(a.draws[k], b.draws[k], err_msg=k)
    np.testing.assert_array_equal(here.folds["mre"], there.folds["mre"])


def test_sbc_same_ranks(cluster):
    from bayesmix.checks import sbc

    kw = dict(replications=4, batch=2, chains=2, warmup=40, draws=50, n_ranks=49, seed=1)
    here = sbc("own_weight", **kw)
    with use(cluster):
        there = sbc("own_weight", **kw)
    assert cluster.last.tasks == 2  # two batches of two replications
    assert here.ranks.equals(there.ranks)
    assert here.runs.equals(there.runs)


def _die_once(task):
    """Kill this worker process the first time task 'b' runs (a marker file says it has)."""
    name, marker = task
    if name == "b" and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return name.upper()


def test_a_killed_worker_is_retried_and_said(cluster, tmp_path, caplog):
    marker = str(tmp_path / "killed-once")
    with caplog.at_level("WARNING", logger="bayesmix"):
        out = cluster.map(_die_once, [("a", marker), ("b", marker), ("c", marker)], labels=["a", "b", "c"])
    assert out == ["A", "B", "C"]
    assert os.path.exists(marker)  # task b did kill its first worker
    assert cluster.last.restarted == {"b": 2}
    assert "a worker was lost while running b (2 starts)" in caplog.text


def _fine_model():
    import numpyro
    import numpyro.distributions as dist

    numpyro.sample("x", dist.Normal(0.0, 1.0))


def _boom_model():
    raise ValueError("boom in block b")


class _TwoBlocks:
    """A model of two independent blocks, the second of which raises."""

    def __call__(self, *args):
        _fine_model()

    def split(self, *args):
        from bayesmix.model import Block

        return [Block("a", _fine_model, (), None, "a"), Block("b", _boom_model, (), None, "b")]


def test_a_block_that_raises_fails_the_fit_with_its_error(cluster):
    from bayesmix.inference import SamplerConfig, sample

    config = SamplerConfig(chains=1, warmup=5, draws=5, seed=0)
    with use(cluster), pytest.raises(TaskError, match="task b failed on 2 local worker processes: .*boom in block b"):
        sample(_TwoBlocks(), (), config)
    with pytest.raises(ValueError, match="boom in block b"):  # in-process: the error as it is
        sample(_TwoBlocks(), (), config)


def test_cli_workers_flag_same_draws(example_frame, tmp_path):
    from bayesmix.cli import main

    path = tmp_path / "runs.csv"
    example_frame.to_csv(path, index=False)
    argv = ["fit", str(path), "--targets", "web,code", "--chains", "2", "--warmup", "60", "--draws", "30"]
    assert main([*argv, "--out", str(tmp_path / "here.nc")]) == 0
    assert main([*argv, "--workers", "2", "--out", str(tmp_path / "there.nc")]) == 0
    here, there = bayesmix.load(tmp_path / "here.nc"), bayesmix.load(tmp_path / "there.nc")
    for k in here.draws:
        np.testing.assert_array_equal(here.draws[k], there.draws[k], err_msg=k)
    with pytest.raises(SystemExit):
        main([*argv, "--workers", "x"])


def test_refit_seeds_same_on_workers_and_says_where_seeds_differ(cluster, runs):
    from bayesmix.checks import refit_seeds

    kw = dict(targets=["code"], chains=2, warmup=60, draws=30, progress=False)
    fits, table = refit_seeds(runs, "additive", seeds=(0, 1), **kw)
    with use(cluster):
        fits2, table2 = refit_seeds(runs, "additive", seeds=(0, 1), **kw)
    assert cluster.last.tasks in (1, 2) and any(r.tasks == 2 for r in cluster.reports)
    for a, b in zip(fits, fits2):
        for k in a.draws:
            np.testing.assert_array_equal(a.draws[k], b.draws[k], err_msg=k)
    assert not np.array_equal(fits[0].draws["L_ref"], fits[1].draws["L_ref"])  # two seeds, two sets of draws
    assert {"mean_seed0", "mean_seed1", "sd", "disagreement", "differs"} <= set(table.columns)
    pd.testing.assert_frame_equal(table, table2)
    with pytest.raises(ValueError, match="two or more different seeds"):
        refit_seeds(runs, "additive", seeds=(3, 3))


def test_seed_table_flags_means_apart_by_half_an_sd():
    from bayesmix.checks.seeds import seed_table

    a = pd.DataFrame({"mean": [0.0, 5.0], "sd": [1.0, 2.0]}, index=["alpha", "E"])
    b = pd.DataFrame({"mean": [0.2, 7.0], "sd": [1.0, 2.0]}, index=["alpha", "E"])
    t = seed_table([a, b], [0, 1])
    assert t.index.tolist() == ["E", "alpha"] and t.differs.tolist() == [True, False]
    np.testing.assert_allclose(t.disagreement, [1.0, 0.2])
    assert t.attrs["verdict"].startswith("the seeds disagree on 1 parameters (worst E: means 1.0 sd apart)")
    assert seed_table([a, a], [0, 1]).attrs["verdict"].startswith("the 2 seeds agree")
