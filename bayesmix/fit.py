"""Fit a law to a run table, and the Fit object that answers questions about it."""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import pandas as pd

from . import io as codec
from .data import RunTable, RunTableError, read_runs
from .design import law_tokens, observed_from_table, reference_point
from .diagnostics import Diagnostics, diagnose, report
from .extrapolation import learn_extrapolation_sd
from .inference import CompileClock, SamplerConfig, sample
from .laws import Law, get_law
from .laws.base import dims_coords
from .model import all_params, make_model, param_shapes, resolve_priors, unidentified_run_offsets
from .posterior import Posterior
from .priors import Prior
from .reach import FloorWarning, PriorOnlyWarning, floor_note, prior_only_note, schedule_prior_note, single_fraction
from .schedule import describe as describe_schedule
from .version import __version__

log = logging.getLogger("bayesmix")


class Predicting:
    """Predictions from ``predict_draws``: shared by a :class:`Fit` and an ensemble of fits
    (:class:`bayesmix.stacking.Ensemble`): both hold ``table``, ``domains``, ``targets`` and ``checkpoints``, and
    :meth:`bayesmix.posterior.Posterior.from_fit` gives their draws."""

    # ------------------------------------------------------------- predicting
    def predict_draws(
        self,
        mixtures: np.ndarray,
        model_size: float | np.ndarray,
        tokens: float | np.ndarray,
        seed: int = 0,
        max_draws: int | None = None,
        run_tokens: float | np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Posterior draws of the loss at each mixture and scale.

        Returns ``{"mean": (S, M, T), "pred": (S, M, T)}``: ``mean`` is the
        expected loss; ``pred`` adds a new run's offset and checkpoint noise
        (what one run would show). By default each row is the final loss of a
        run trained to ``tokens``; with ``run_tokens`` it is the checkpoint at
        ``tokens`` of a run whose schedule ends at ``run_tokens`` (the
        schedule term of a fit of checkpoints applies). Beyond the fitted
        range both include the law's extrapolation bias (``extrapolation_sd``
        per e-fold of model size or tokens). ``model_size``, ``tokens`` and
        ``run_tokens`` are scalars or length-M arrays. See
        :meth:`bayesmix.posterior.Posterior.predictive`.
        """
        h = np.atleast_2d(np.asarray(mixtures, dtype=float))
        M = h.shape[0]
        N = np.broadcast_to(np.asarray(model_size, dtype=float), (M,))
        D = np.broadcast_to(np.asarray(tokens, dtype=float), (M,))
        end = None if run_tokens is None else np.broadcast_to(np.asarray(run_tokens, dtype=float), (M,))
        return Posterior.from_fit(self, max_draws).predictive(h, N, D, seed=seed, run_tokens=end)

    def predict(
        self,
        mixtures: np.ndarray | pd.DataFrame | str,
        model_size: float,
        tokens: float,
        interval: float = 0.9,
        target_weights: Mapping[str, float] | str | None = None,
        seed: int = 0,
        trajectory: bool = False,
        fractions: Sequence[float] | np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Predicted losses with credible and predictive intervals.

        By default the final loss of a run of ``model_size`` parameters
        trained to ``tokens``: one row per (mixture, target) with columns
        ``mixture`` (row number of the mixtures given), ``target``, ``mean``,
        ``median``, ``lower``, ``upper`` (equal-tailed credible interval of
        the expected loss), ``pred_lower``, ``pred_upper`` (posterior
        predictive interval of one run, with noise), ``interval``,
        ``model_size`` and ``tokens``. With ``target_weights`` a target
        ``weighted`` (the weighted sum of targets) is added.

        ``trajectory=True``: the whole training curve of that run instead,
        at checkpoints ``fractions`` of ``tokens`` (default
        :func:`default_fractions`): one row per (mixture, target, checkpoint)
        with an ``n_tokens`` column; a fit of checkpoints adds its schedule
        term, a fit of final losses gives the final-loss curve.

        Warns :class:`~bayesmix.reach.PriorOnlyWarning` when (model_size,
        tokens) moves along a direction of scale the sweep never varied, and
        :class:`~bayesmix.reach.FloorWarning` when draws fall far below every
        loss of the sweep (their law's floor is at or below 0).
        """
        from .data import parse_target_weights, read_mixtures

        if not 0 < interval < 1:
            raise ValueError(f"interval must be between 0 and 1 (e.g. 0.9); got {interval}")
        if not (np.isfinite(model_size) and model_size > 0 and np.isfinite(tokens) and tokens > 0):
            raise ValueError(f"model size and tokens must be positive numbers; got {model_size}, {tokens}")
        h = np.atleast_2d(read_mixtures(mixtures, self.domains) if not isinstance(mixtures, np.ndarray) else mixtures)
        if h.shape[1] != len(self.domains):
            raise RunTableError(
                f"mixtures have {h.shape[1]} weights; this model has {len(self.domains)} domains "
                f"({', '.join(self.domains)})"
            )
        M0 = h.shape[0]
        note = prior_only_note(self.table, model_size, tokens)
        if note:
            warnings.warn(note, PriorOnlyWarning, stacklevel=2)
        if trajectory:
            f = default_fractions(self) if fractions is None else np.asarray(fractions, dtype=float).ravel()
            if f.size == 0 or np.any(~np.isfinite(f)) or np.any((f <= 0) | (f > 1)):
                raise ValueError(f"fractions must be numbers in (0, 1] (shares of the run's tokens); got {f}")
            f = np.unique(f)
            h = np.repeat(h, len(f), axis=0)
            D = np.tile(f, M0) * tokens
            d = self.predict_draws(h, model_size, D, seed=seed, run_tokens=tokens)
        else:
            f = 1.0  # the final loss
            d = self.predict_draws(h, model_size, tokens, seed=seed)
        note = schedule_prior_note(self.table, f) if self.checkpoints else None
        if note:
            warnings.warn(note, PriorOnlyWarning, stacklevel=2)
        note = floor_note(self.table, d["mean"], self.targets)
        if note:
            warnings.warn(note, FloorWarning, stacklevel=2)
        names = list(self.targets)
        if target_weights is not None:
            if isinstance(target_weights, str):
                target_weights = parse_target_weights(target_weights, self.targets)
            w = np.array([target_weights.get(t, 0.0) for t in self.targets])
            d = {k: np.concatenate([v, (v * w).sum(-1, keepdims=True)], axis=-1) for k, v in d.items()}
            names.append("weighted")
        M, T = d["mean"].shape[1:]
        per = M // M0
        out = pd.DataFrame(
            {
                "mixture": np.repeat(np.arange(M0), per * T),
                "target": np.tile(names, M),
                **({"n_tokens": np.repeat(D, T)} if trajectory else {}),
                **_interval_columns(d, interval),
                "model_size": float(model_size),
                "tokens": float(tokens),
            }
        )
        return out

    def predict_table(self, table: RunTable, interval: float = 0.9, seed: int = 0) -> pd.DataFrame:
        """Predictions at every row of a run table, beside the observed losses.

        Each row is predicted as what it is: the checkpoint at its
        ``n_tokens`` of a run whose schedule ends at its ``run_tokens``.
        Returns a long table: one row per (row, target) with ``row``, ``run``,
        ``model_size``, ``tokens``, ``target``, ``observed`` (NaN if masked) and
        the prediction columns of :meth:`predict`.
        """
        h = table.weights
        d = self.predict_draws(h, table.model_size, table.n_tokens, seed=seed, run_tokens=table.run_tokens)
        n, T = d["mean"].shape[1:]
        obs = table.frame[[f"{t}_loss" for t in self.targets]].to_numpy(dtype=float)
        return pd.DataFrame(
            {
                "row": np.repeat(np.arange(n), T),
                "run": np.repeat(table.run, T),
                "model_size": np.repeat(table.model_size, T),
                "tokens": np.repeat(table.n_tokens, T),
                "target": np.tile(self.targets, n),
                "observed": obs.ravel(),
                **_interval_columns(d, interval),
            }
        )


@dataclass
class Fit(Predicting):
    """A law fitted to a run table: posterior draws with everything needed to use them.

    Attributes hold plain numpy arrays; :attr:`posterior` gives the ArviZ
    DataTree; :class:`bayesmix.posterior.Posterior` evaluates the law over
    the draws. Create one with :func:`fit` or :meth:`Fit.load`
    (``bayesmix.load``).
    """

    law: Law
    table: RunTable
    targets: tuple[str, ...]
    priors: dict[str, Prior]
    config: SamplerConfig
    N0: float
    D0: float
    sizes: np.ndarray  # fitted model sizes, sorted
    draws: dict[str, np.ndarray]  # site -> (chain, draw, ...)
    sample_stats: dict[str, np.ndarray]
    diagnostics: Diagnostics
    timing: dict[str, float] = field(default_factory=dict)
    version: str = __version__
    # Log-scale sd of the law's bias per e-fold beyond the fitted sizes and
    # token counts, one per target (a scalar applies to all). fit() measures
    # it by holding out the largest model size (bayesmix.extrapolation).
    extrapolation_sd: float | np.ndarray = 0.01
    # The law's errors on the nested hold-outs that taught extrapolation_sd
    # (bayesmix.extrapolation.holdout_frame); None where it was given.
    holdouts: pd.DataFrame | None = None

    # ------------------------------------------------------------------ shapes
    @property
    def domains(self) -> tuple[str, ...]:
        """Training domains, in weight order."""
        return self.table.domains

    @property
    def checkpoints(self) -> bool:
        """True when the fit modelled mid-schedule checkpoints (it has a schedule term)."""
        return "schedule" in self.draws

    def coords(self) -> dict[str, list[list[str]]]:
        """Per site, the labels of each of its dimensions."""
        spec = all_params(self.law, self.domains, self.targets, self.checkpoints)
        labels = dims_coords(self.domains, self.targets)
        out = {name: [labels[d] for d in p.dims] for name, p in spec.items()}
        return out

    def flat_draws(self) -> dict[str, np.ndarray]:
        """Draws with chains merged: site -> (S, ...)."""
        return {k: v.reshape((-1,) + v.shape[2:]) for k, v in self.draws.items()}

    @property
    def posterior(self):
        """The posterior and sample statistics as an ArviZ DataTree."""
        import arviz_base as az

        spec = all_params(self.law, self.domains, self.targets, self.checkpoints)
        dims = {name: list(p.dims) for name, p in spec.items()}
        labels = dims_coords(self.domains, self.targets)
        coords = dict(labels)
        coords = {k: v for k, v in coords.items() if len(v)}
        return az.from_dict(
            {"posterior": self.draws, "sample_stats": _sample_stats_for_arviz(self.sample_stats)},
            dims=dims,
            coords=coords,
        )

    # ---------------------------------------------------------------- summary
    def summary(self, interval: float = 0.9) -> pd.DataFrame:
        """Posterior summary per scalar parameter: mean, sd, interval, R-hat, ESS (via arviz-stats)."""
        import arviz_stats as azs

        return azs.summary(self.posterior, ci_prob=interval)

    def save(self, path) -> str:
        """Write the fit to a netCDF file (atomically); return the path. Read it back with :meth:`load`."""
        return codec.write(codec.to_datatree(self), path)

    @classmethod
    def load(cls, path) -> "Fit":
        """Read a fit written by :meth:`save`.

        Raises :class:`~bayesmix.io.ModelFileError` for a missing, corrupt or
        foreign file, or one whose law or parameters do not match this version
        of bayesmix.
        """
        return cls(**codec.from_datatree(codec.read(path), path))

    def __repr__(self) -> str:
        return (
            f"<bayesmix.Fit {self.law.name}: {self.table.n_runs} runs, {len(self.targets)} targets, "
            f"{self.config.chains}x{self.config.draws} draws; {'ok' if self.diagnostics.ok else 'see diagnostics'}>"
        )


def default_fractions(fit: "Fit", points: int = 12) -> np.ndarray:
    """Checkpoints of a predicted training curve, as shares of its tokens: evenly from the earliest share the
    fit saw (0.1 for a fit of final losses) to the end."""
    first = float(np.min(fit.table.token_fraction())) if fit.checkpoints else 0.1
    return np.linspace(max(first, 0.01), 1.0, points)


def _interval_columns(d: Mapping[str, np.ndarray], interval: float) -> dict[str, np.ndarray | float]:
    """The prediction columns shared by :meth:`Fit.predict` and :meth:`Fit.predict_table`, flattened (point, target)."""
    a = (1 - interval) / 2
    q = np.quantile(d["mean"], [a, 0.5, 1 - a], axis=0)
    qp = np.quantile(d["pred"], [a, 1 - a], axis=0)
    return {
        "mean": d["mean"].mean(0).ravel(),
        "median": q[1].ravel(),
        "lower": q[0].ravel(),
        "upper": q[2].ravel(),
        "pred_lower": qp[0].ravel(),
        "pred_upper": qp[1].ravel(),
        "interval": interval,
    }


def _sample_stats_for_arviz(extra: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = {"diverging": "diverging", "num_steps": "n_steps", "energy": "energy", "accept_prob": "acceptance_rate"}
    return {names.get(k, k): v for k, v in extra.items()}


def rewhiten_notes(blocks: Sequence[dict]) -> list[str]:
    """One note per block whose warm-up showed the Laplace approximation at the mode missing the posterior, so that
    it was whitened again by its chains (see :func:`bayesmix.inference.whitening_misfit`)."""
    return [
        f"{b['block']}: a quarter into the warm-up the chains sat up to {b['rewhitened'][0]:g} Laplace sds from the "
        "mode or its scale (the mode is not where the posterior's mass is); whitened again by those iterations"
        + (f" ({len(b['rewhitened'])} times)" if len(b["rewhitened"]) > 1 else "")
        for b in blocks
        if b.get("rewhitened")
    ]


def retry_notes(blocks: Sequence[dict]) -> list[str]:
    """One note per block that diverged and was sampled again at a higher target_accept (see
    :class:`~bayesmix.inference.SamplerConfig`), saying which draws were kept."""
    notes = []
    for b in blocks:
        if "first_divergences" in b:
            notes.append(
                f"{b['block']}: {b['first_divergences']} divergences at target_accept {b['first_target_accept']:g}"
                + (
                    f" in its first {b['first_stopped_after']} draws per chain, where it stopped"
                    if b.get("first_stopped_after")
                    else ""
                )
                + f"; sampled again at {b['target_accept']:g}"
                + (
                    f" from the first run's last draws ({b['warm_start']} iterations adapting the step size)"
                    if b.get("warm_start")
                    else " from scratch (a retry from the first run's last draws mixed worse)"
                    if b.get("warm_retry_seconds")
                    else ""
                )
                + f", {b['divergences']} divergences (these draws are kept)"
            )
        elif "retried_divergences" in b:
            mixing = (
                f", R-hat {b['retried_rhat']:.3f}, ESS {b['retried_ess']:.0f}"
                if np.isfinite(b.get("retried_rhat", np.nan))
                else ""
            )
            notes.append(
                f"{b['block']}: {b['divergences']} divergences at target_accept {b['target_accept']:g}; "
                f"sampled again at a higher target_accept: {b['retried_divergences']} divergences, "
                f"{b.get('retried_depth_hits', 0)} draws at the maximum tree depth{mixing}, so the first draws are kept"
            )
        elif "retry_aborted" in b:
            notes.append(
                f"{b['block']}: {b['divergences']} divergences at target_accept {b['target_accept']:g}; its retry at a "
                f"higher target_accept stopped: {b['retry_aborted']}, so the first draws are kept"
            )
        elif "retry_skipped" in b:
            notes.append(
                f"{b['block']}: {b['divergences']} divergences at target_accept {b['target_accept']:g}; not sampled "
                f"again: {b['retry_skipped']}"
            )
    return notes


def checkpoint_note(table: RunTable, fitted: bool) -> str:
    """What the fit saw along each run, and whether it fitted the schedule term (one line for the notes)."""
    seen = table.describe_checkpoints()
    if fitted:
        return f"{seen}; fitted a schedule term (checkpoints before the end of their run's schedule)"
    if table.has_checkpoints:
        return f"{seen}; no schedule term: checkpoints fitted as final losses, as asked (--no-checkpoints)"
    return f"{seen}; no schedule term (every row is the end of its run's schedule)"


def prior_sd(
    priors: Mapping[str, Prior], shapes: Mapping[str, tuple[int, ...]], seed: int = 0
) -> dict[str, np.ndarray]:
    """Prior standard deviation of every parameter element (by sampling; used to spot prior-dominated ones)."""
    key = jax.random.PRNGKey(seed)
    out = {}
    for name, shape in shapes.items():
        draws = priors[name].to_numpyro(shape).sample(key, (4000,))
        out[name] = np.asarray(draws).std(0)
    return out


def fit(
    runs: RunTable | pd.DataFrame | str,
    law: str | Law = "additive",
    *,
    targets: Sequence[str] | None = None,
    priors: Mapping[str, Any] | None = None,
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    target_accept: float | None = None,
    max_tree_depth: int = 10,
    progress: bool | None = None,
    min_fraction: float = 0.0,
    extrapolation_sd: float | Sequence[float] | None = None,
    checkpoints: bool = True,
) -> Fit:
    """Fit a law to a run table with NUTS and return a :class:`Fit`.

    ``runs`` is a RunTable, a DataFrame or a CSV path in the canonical format.
    Every checkpoint is used. When the table has checkpoints before the end
    of their run's schedule (``n_tokens < run_tokens``), the fit adds the
    checkpoint model of :mod:`bayesmix.schedule` (the law at each run's end,
    a learned curve above it that vanishes at the end, each run's own slope);
    a table of final losses fits without it, and ``checkpoints=False`` fits
    every checkpoint as a final loss (the model before the checkpoint model,
    right only where the law holds at every checkpoint, e.g. a sweep
    simulated that way). The fit says which it did in its notes. ``min_fraction`` (default 0: keep
    all) drops every checkpoint taken before that fraction of its run's
    schedule, with the count in the notes. ``extrapolation_sd`` (log-scale bias per e-fold beyond
    the fitted range, see :mod:`bayesmix.extrapolation`) is measured by
    holding out the largest model size unless given (a number, or one per
    target). Diagnostics are checked after sampling; problems are
    raised as :class:`~bayesmix.diagnostics.FitWarning` with what to try, and
    are saved with the fit. ``target_accept`` defaults to the law's
    (``law.target_accept``: 0.9, or 0.95 for the capacity laws).
    """
    table = (runs if isinstance(runs, RunTable) else read_runs(runs)).drop_early_checkpoints(min_fraction)
    law = get_law(law) if isinstance(law, str) else law
    targets = tuple(targets) if targets is not None else table.targets
    unknown = [t for t in targets if t not in table.targets]
    if unknown:
        raise RunTableError(
            f"{table.source}: no target {', '.join(map(repr, unknown))}; targets are {', '.join(table.targets)}"
        )
    table.require_mixtures(law.min_mixtures, law.name)
    table.require_scales(law.min_scales, law.name, law.why_scales)
    checkpoints = bool(checkpoints) and table.has_checkpoints
    prior_map = resolve_priors(law, table.domains, targets, priors, checkpoints)
    target_accept = law.target_accept if target_accept is None else target_accept
    config = SamplerConfig(
        chains=chains, warmup=warmup, draws=draws, seed=seed, target_accept=target_accept, max_tree_depth=max_tree_depth
    )

    sizes = np.unique(table.model_size)
    N0, D0 = reference_point(table.model_size, law_tokens(table, checkpoints))
    obs, _ = observed_from_table(table, targets, N0, D0, sizes, checkpoints=checkpoints)
    model = make_model(law, table.domains, targets, prior_map, checkpoints)
    t0 = time.perf_counter()
    draws_, extra, info = sample(model, (obs,), config, progress=progress)
    notes = list(table.notes) + [checkpoint_note(table, checkpoints)]
    log.info("%s: %s", table.source, notes[-1])
    notes += retry_notes(info.get("blocks", []))
    notes += rewhiten_notes(info.get("blocks", []))
    if info.get("executor_note"):
        notes.append(info["executor_note"])
    lone = unidentified_run_offsets(obs)
    if lone.any():
        # The likelihood left these offsets out (model.group_loglik): their
        # draws are the prior's, and sigma already carries the run-to-run noise.
        draws_ = dict(draws_, tau_run=np.where(lone, 0.0, draws_["tau_run"]))
        if "kappa_run" in draws_:
            draws_["kappa_run"] = np.where(lone, 0.0, draws_["kappa_run"])
        notes.append(
            f"run offsets not identified for {', '.join(t for t, l in zip(targets, lone) if l)}: no run has two "
            "checkpoints of it, so tau_run is set to 0 and sigma carries all of the run-to-run noise"
        )
    if checkpoints:
        notes.append(
            describe_schedule(
                draws_["schedule"].reshape((-1,) + draws_["schedule"].shape[2:]),
                targets,
                float(np.min(table.token_fraction())),
                single=single_fraction(table) is not None,
            )
        )
    t_extrapolation = time.perf_counter()
    if extrapolation_sd is None:
        with CompileClock() as clock:
            # each hold-out refit starts at the whole table's mode (and the prior median), not from four starts
            near = {b["block"]: b["mode"] for b in info["blocks"]}
            kappa, note, holdouts = learn_extrapolation_sd(
                table, law, targets, prior_map, N0, D0, seed=seed, like=obs, near=near
            )
        info["extrapolation_compile_seconds"] = clock.seconds
    else:
        holdouts = None
        kappa = np.broadcast_to(np.asarray(extrapolation_sd, dtype=float), (len(targets),)).copy()
        if not np.all(np.isfinite(kappa) & (kappa >= 0)):
            raise ValueError(f"extrapolation_sd must be non-negative numbers; got {extrapolation_sd}")
        note = f"extrapolation_sd given: {', '.join(f'{t} {k:.3g}' for t, k in zip(targets, kappa))}"
    table = dataclasses.replace(table, notes=tuple(notes) + (note,))
    info["extrapolation_seconds"] = time.perf_counter() - t_extrapolation

    result = Fit(
        law=law,
        table=table,
        targets=targets,
        priors=prior_map,
        config=config,
        N0=N0,
        D0=D0,
        sizes=sizes,
        draws=draws_,
        sample_stats=extra,
        diagnostics=None,
        timing=info,
        extrapolation_sd=kappa,  # type: ignore[arg-type]
        holdouts=holdouts,
    )
    t_diagnose = time.perf_counter()
    shapes = param_shapes(all_params(law, table.domains, targets, checkpoints), table.domains, targets)
    result.diagnostics = diagnose(draws_, extra, result.coords(), max_tree_depth, prior_sd(prior_map, shapes, seed))
    info["diagnostics_seconds"] = time.perf_counter() - t_diagnose
    info["total_seconds"] = time.perf_counter() - t0
    report(result.diagnostics, f"{law.name} fit")
    return result
