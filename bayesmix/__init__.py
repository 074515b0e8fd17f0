"""bayesmix: Bayesian data-mixing scaling laws."""

from __future__ import annotations

import os as _os

# Parallel chains need one XLA host device per chain, and the flag must be set
# before jax creates its CPU backend -- i.e. before anything imports jax.
if "xla_force_host_platform_device_count" not in _os.environ.get("XLA_FLAGS", ""):
    _n = max(4, _os.cpu_count() or 1)
    _os.environ["XLA_FLAGS"] = (
        _os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_n}"
    ).strip()

import jax as _jax

# Posterior modes are found by quasi-Newton and NUTS sums thousands of
# log-densities: float32 loses the line searches and the energy differences.
_jax.config.update("jax_enable_x64", True)


def _compilation_cache_dir() -> str | None:
    """Where compiled programs persist between processes: ``BAYESMIX_JAX_CACHE`` (``off`` to turn it off), else
    JAX's own setting (``JAX_COMPILATION_CACHE_DIR``), else ``~/.cache/bayesmix/jax``."""
    chosen = _os.environ.get("BAYESMIX_JAX_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "0", "off", "false", "no") else chosen
    if _os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None  # jax reads it itself
    home = _os.environ.get("XDG_CACHE_HOME") or _os.path.join(_os.path.expanduser("~"), ".cache")
    return _os.path.join(home, "bayesmix", "jax")


# Compiling is most of a small fit's time (the built-in example: 27 of 36 s, `bayesmix fit --profile`), and the
# same laws and shapes compile again in every process: keep compiled programs on disk, so a refit, a second
# command or a test module after the first reuses them.
_cache = _compilation_cache_dir()
if _cache is not None:
    _jax.config.update("jax_compilation_cache_dir", _cache)
    _jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)

from .data import RunTable, RunTableError, read_mixtures, read_regmix, read_runs  # noqa: E402
from .decide import recommend  # noqa: E402
from .diagnostics import FitWarning  # noqa: E402
from .executor import parallel  # noqa: E402
from .fit import Fit, fit  # noqa: E402
from .io import ModelFileError  # noqa: E402
from .laws import available_laws, get_law  # noqa: E402
from .mode import fit_mode  # noqa: E402
from .plan import next_run  # noqa: E402
from .priors import Prior  # noqa: E402
from .stacking import Ensemble, ensemble, load  # noqa: E402
from .version import __version__  # noqa: E402


def clear_caches() -> None:
    """Release every compiled program and cached model of bayesmix (and jax's own caches).

    Compiled code is kept per process so that repeated fits, predictions and
    decisions reuse it; a long session that has compiled many laws and shapes
    (a test suite) can release it here.
    """
    import gc

    from . import inference, model, posterior
    from .checks import loglik

    inference.clear_compiled()
    model.clear_models()
    posterior.clear_kernels()
    loglik.clear_compiled()
    _jax.clear_caches()
    gc.collect()


__all__ = [
    "__version__",
    "Ensemble",
    "Fit",
    "FitWarning",
    "ModelFileError",
    "Prior",
    "RunTable",
    "RunTableError",
    "available_laws",
    "clear_caches",
    "ensemble",
    "fit",
    "fit_mode",
    "get_law",
    "load",
    "next_run",
    "parallel",
    "read_mixtures",
    "read_regmix",
    "read_runs",
    "recommend",
]
