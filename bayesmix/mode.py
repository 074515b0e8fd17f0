"""The posterior mode of a law on a run table, without sampling, as a one-draw posterior.

The same mode search that whitens NUTS (:func:`bayesmix.inference.posterior_mode`),
for when a point is enough: the law's bias at a held-out size
(:mod:`bayesmix.extrapolation`), quick comparisons in the benchmarks. Never
report intervals from it: it is one point.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .data import RunTable, read_runs
from .design import law_tokens, observed_from_table, reference_point
from .inference import SamplerConfig, posterior_mode
from .laws import Law, get_law
from .model import Observed, make_model, resolve_priors
from .posterior import Posterior


def fit_mode(
    runs: RunTable | str,
    law: str | Law = "additive",
    *,
    targets: Sequence[str] | None = None,
    priors: Mapping[str, Any] | None = None,
    seed: int = 0,
    N0: float | None = None,
    D0: float | None = None,
    like: Observed | None = None,
    checkpoints: bool = False,
    near: Mapping[str, Sequence[float]] | None = None,
) -> Posterior:
    """The law's posterior mode on ``runs`` as a :class:`~bayesmix.posterior.Posterior` with one draw.

    ``N0`` and ``D0`` (the reference scales the law is written around)
    default to the table's, as :func:`bayesmix.fit` chooses them; give a
    larger table's to compare with it. ``like``: pad the data to that
    Observed's shapes, so a subset of a table reuses the table's compiled
    code. The posterior's ``reach`` is the table's largest model size and
    token count. ``checkpoints``: fit the checkpoint model when the table
    has mid-schedule checkpoints (as :func:`bayesmix.fit` with it).
    ``near``: the mode of a larger table's fit per block, where the search
    starts (:func:`~bayesmix.inference.posterior_mode`).
    """
    table = runs if isinstance(runs, RunTable) else read_runs(runs)
    law = get_law(law) if isinstance(law, str) else law
    targets = tuple(targets) if targets is not None else table.targets
    checkpoints = bool(checkpoints) and table.has_checkpoints
    N0_, D0_ = reference_point(table.model_size, law_tokens(table, checkpoints))
    N0 = N0_ if N0 is None else float(N0)
    D0 = D0_ if D0 is None else float(D0)
    prior_map = resolve_priors(law, table.domains, targets, priors, checkpoints)
    obs, _ = observed_from_table(
        table, targets, N0, D0, np.unique(table.model_size), like=like, checkpoints=checkpoints
    )
    model = make_model(law, table.domains, targets, prior_map, checkpoints)
    p = posterior_mode(model, (obs,), SamplerConfig(seed=seed), near=near)
    reach = (float(table.model_size.max()), float(table.n_tokens.max()))
    return Posterior.point(law, table.domains, targets, p, N0, D0, reach)
