"""Saved models: round trip, clear errors, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

import bayesmix
from bayesmix.io import ModelFileError

pytestmark = pytest.mark.slow


def test_round_trip_keeps_posterior_and_metadata(small_fit, tmp_path):
    path = small_fit.save(tmp_path / "m.nc")
    back = bayesmix.load(path)
    assert set(back.draws) == set(small_fit.draws)
    for name in small_fit.draws:
        np.testing.assert_array_equal(back.draws[name], small_fit.draws[name])
    assert back.law.name == "additive"
    assert back.targets == small_fit.targets and back.domains == small_fit.domains
    assert {k: str(v) for k, v in back.priors.items()} == {k: str(v) for k, v in small_fit.priors.items()}
    assert back.config == small_fit.config
    assert back.N0 == small_fit.N0 and back.D0 == small_fit.D0
    assert back.diagnostics.to_dict() == small_fit.diagnostics.to_dict()
    np.testing.assert_allclose(back.table.losses, small_fit.table.losses)
    np.testing.assert_array_equal(back.table.run, small_fit.table.run)
    # predictions from the loaded model are identical for the same seed
    h = np.full((1, 4), 0.25)
    a = small_fit.predict(h, 1e9, 2e10, seed=1)
    b = back.predict(h, 1e9, 2e10, seed=1)
    np.testing.assert_allclose(a[["mean", "lower", "upper"]].to_numpy(), b[["mean", "lower", "upper"]].to_numpy())


def test_saved_posterior_is_an_arviz_datatree(small_fit, tmp_path):
    import xarray as xr

    path = small_fit.save(tmp_path / "m.nc")
    tree = xr.open_datatree(path, engine="h5netcdf")
    assert {"posterior", "sample_stats", "runs"} <= set(tree.children)
    assert tree["posterior"]["gamma_dev"].dims == ("chain", "draw", "target", "domain")
    assert tree.attrs["law"] == "additive" and tree.attrs["bayesmix_version"] == bayesmix.__version__


def test_missing_corrupt_and_foreign_files_error_clearly(small_fit, tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        bayesmix.load(tmp_path / "nope.nc")
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"this is not netcdf")
    with pytest.raises(ModelFileError, match="not a readable netCDF"):
        bayesmix.load(bad)
    import xarray as xr

    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("a", [1, 2])}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(ModelFileError, match="not a bayesmix model"):
        bayesmix.load(other)


def test_law_mismatch_is_reported(small_fit, tmp_path):
    import xarray as xr

    path = small_fit.save(tmp_path / "m.nc")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    tree.attrs["law"] = "own_weight"  # parameters no longer match the law named
    tree.to_netcdf(tmp_path / "x.nc", engine="h5netcdf")
    with pytest.raises(ModelFileError, match="refit"):
        bayesmix.load(tmp_path / "x.nc")


def test_draws_of_another_law_revision_are_refused(small_fit, tmp_path):
    import xarray as xr

    path = small_fit.save(tmp_path / "m.nc")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    assert int(tree.attrs["law_revision"]) == small_fit.law.revision
    tree.attrs["law_revision"] = small_fit.law.revision - 1  # same names and shapes, other meaning
    tree.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    with pytest.raises(ModelFileError, match="revision .* refit"):
        bayesmix.load(tmp_path / "old.nc")


def test_interrupted_save_leaves_no_file(small_fit, tmp_path, monkeypatch):
    import xarray as xr

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", boom)
    with pytest.raises(KeyboardInterrupt):
        small_fit.save(tmp_path / "m.nc")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_old_file(small_fit, tmp_path, monkeypatch):
    import xarray as xr

    path = small_fit.save(tmp_path / "m.nc")
    before = path and open(path, "rb").read()

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", boom)
    with pytest.raises(OSError):
        small_fit.save(tmp_path / "m.nc")
    assert open(path, "rb").read() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.nc"]
