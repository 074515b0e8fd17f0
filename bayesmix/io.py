"""The saved-model codec: a fit to and from an xarray DataTree, and the file it lives in (netCDF, never a pickle).

:meth:`bayesmix.Fit.save` and :meth:`bayesmix.Fit.load` use it; this module
knows the file layout and its checks, not the Fit class.

Layout (an xarray DataTree written with h5netcdf):

- ``/posterior`` and ``/sample_stats``: the draws, as ArviZ expects them;
- ``/runs``: the run table the law was fit on (canonical columns);
- root attributes (JSON strings): format version, package version, law name,
  domains, targets, priors, sampler settings, reference scales, fitted sizes,
  diagnostics, timings, the extrapolation rates and the hold-out errors behind them.

Loading checks the format and that the law and its parameters still match the
code; writing goes to a temporary file that is renamed into place, so an
interrupted save never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .data import RunTable
from .diagnostics import Diagnostics
from .inference import SamplerConfig
from .laws import get_law
from .model import all_params, param_shapes
from .priors import priors_from_json, priors_to_json

FORMAT = "bayesmix-fit"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A saved model that cannot be read or does not match this version of bayesmix."""


def to_datatree(fit) -> xr.DataTree:
    """The DataTree a fit is saved as: its posterior, sample statistics and run table, settings as attributes."""
    tree = fit.posterior
    runs = fit.table.frame.reset_index(drop=True)
    runs_ds = xr.Dataset({c: ("row", runs[c].to_numpy()) for c in runs.columns})
    runs_ds["run"] = runs_ds["run"].astype(str)
    tree["runs"] = xr.DataTree(runs_ds)
    tree.attrs = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bayesmix_version": fit.version,
        "law": fit.law.name,
        "law_revision": int(fit.law.revision),
        "domains": json.dumps(list(fit.domains)),
        "targets": json.dumps(list(fit.targets)),
        "table_targets": json.dumps(list(fit.table.targets)),
        "source": str(fit.table.source),
        "notes": json.dumps(list(fit.table.notes)),
        "priors": priors_to_json(fit.priors),
        "sampler": json.dumps(fit.config.to_dict()),
        "N0": float(fit.N0),
        "D0": float(fit.D0),
        "sizes": json.dumps([float(s) for s in fit.sizes]),
        "diagnostics": json.dumps(fit.diagnostics.to_dict(), default=float),
        "timing": json.dumps(fit.timing, default=str),
        "extrapolation_sd": json.dumps(np.atleast_1d(np.asarray(fit.extrapolation_sd, dtype=float)).tolist()),
    }
    if getattr(fit, "holdouts", None) is not None:
        tree.attrs["holdouts"] = fit.holdouts.to_json(orient="split", index=False, double_precision=15)
    return tree


def write(tree: xr.DataTree, path: str | os.PathLike) -> str:
    """Write a DataTree to ``path`` (netCDF) atomically: a temporary file renamed into place; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        tree.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(path)


def read(path: str | os.PathLike) -> xr.DataTree:
    """The DataTree in a saved model file (loaded into memory); :class:`ModelFileError` if it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    try:
        return xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as e:  # h5py/xarray raise many types for a damaged file
        raise ModelFileError(f"{path}: not a readable netCDF model file ({type(e).__name__}: {e})") from None


def from_datatree(tree: xr.DataTree, path: str | os.PathLike = "model") -> dict[str, Any]:
    """The fields of a :class:`bayesmix.Fit` from a saved DataTree, checked against this version of bayesmix.

    Raises :class:`ModelFileError` for a foreign or damaged tree, or one whose
    law or parameters do not match the code.
    """
    a = tree.attrs
    if a.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a bayesmix model (format attribute is {a.get('format')!r})")
    if int(a.get("format_version", -1)) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written by a newer bayesmix (format {a['format_version']}); upgrade bayesmix")
    try:
        law = get_law(a["law"])
        domains = tuple(json.loads(a["domains"]))
        targets = tuple(json.loads(a["targets"]))
        priors = priors_from_json(a["priors"])
        frame = tree["runs"].to_dataset().to_dataframe().reset_index(drop=True)
        frame["run"] = frame["run"].astype(str)
        table = RunTable(
            frame=frame,
            domains=domains,
            targets=tuple(json.loads(a.get("table_targets", a["targets"]))),
            source=a.get("source", str(path)),
            notes=tuple(json.loads(a.get("notes", "[]"))),
        )
        post = tree["posterior"].to_dataset()
        stats = tree["sample_stats"].to_dataset()
    except (KeyError, ValueError) as e:
        raise ModelFileError(f"{path}: incomplete or damaged model file ({e})") from None

    saved_revision = int(a.get("law_revision", 1))
    if saved_revision != law.revision:
        raise ModelFileError(
            f"{path}: saved with revision {saved_revision} of the {law.name!r} law's parameters; "
            f"this bayesmix has revision {law.revision}, which reads them differently; refit the model"
        )
    # A fit of mid-schedule checkpoints also holds the schedule term's sites.
    checkpoints = "schedule" in post
    expected = param_shapes(all_params(law, domains, targets, checkpoints), domains, targets)
    for name, shape in expected.items():
        if name not in post:
            raise ModelFileError(
                f"{path}: law {law.name!r} now has a parameter {name!r} the file lacks; refit the model"
            )
        if tuple(post[name].shape[2:]) != shape:
            raise ModelFileError(
                f"{path}: parameter {name!r} has shape {post[name].shape[2:]}, the law expects {shape}; refit the model"
            )
    draws = {name: np.asarray(post[name].values) for name in post.data_vars}
    names = {"n_steps": "num_steps", "acceptance_rate": "accept_prob"}
    extra = {names.get(k, k): np.asarray(v.values) for k, v in stats.data_vars.items()}
    return dict(
        law=law,
        table=table,
        targets=targets,
        priors=priors,
        config=SamplerConfig(**json.loads(a["sampler"])),
        N0=float(a["N0"]),
        D0=float(a["D0"]),
        sizes=np.array(json.loads(a["sizes"])),
        draws=draws,
        sample_stats=extra,
        diagnostics=Diagnostics.from_dict(json.loads(a["diagnostics"])),
        timing=json.loads(a.get("timing", "{}")),
        version=a.get("bayesmix_version", "?"),
        extrapolation_sd=_extrapolation_sd(a.get("extrapolation_sd", "0.01")),
        holdouts=_holdouts(a.get("holdouts")),
    )


def _holdouts(value):
    """The saved hold-out errors (a table), or None (given extrapolation_sd, or an older file)."""
    import io

    import pandas as pd

    if value is None:
        return None
    return pd.read_json(io.StringIO(value), orient="split", dtype={"holdout": str, "run": str, "target": str})


def _extrapolation_sd(value) -> np.ndarray:
    """The saved extrapolation_sd: a JSON list (one per target) or a number (older files)."""
    v = json.loads(value) if isinstance(value, str) else value
    return np.atleast_1d(np.asarray(v, dtype=float))
