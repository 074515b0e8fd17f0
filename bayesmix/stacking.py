"""A stacked ensemble of laws: weights from how well each law predicted scales it was not fitted on.

No published law is best everywhere, and the error that matters -- at the
target scale, beyond the sweep -- is the one the sweep cannot show in range.
So the laws are weighted by stacking (Yao et al. 2018) of their predictive
densities on the nested hold-outs of :mod:`bayesmix.extrapolation`: each
law's fit, refitted without the largest sizes (or token budgets), predicted
the held-out runs' final losses, and stacking finds the mixture of laws whose
predictive density of those losses is highest. In-range PSIS-LOO would reward
the law that fits the sweep best, not the one that extrapolates it best; it is
used only where the sweep has too few scales to hold any out (one or two
sizes), where a prediction at a new mixture at those scales is what there is
to judge, and the ensemble says so.

The weights are pooled over targets: one weight per law. A draw of the
ensemble is one law's draw for every target, so a weighted sum of targets,
the decision's risk and P(beats baseline) are those of a coherent mixture of
hypotheses; per-target weights (``Ensemble.by_target``) are shown beside them,
since the best law differs by target, but a few held-out runs per target make
them noisy.

- :func:`holdout_scores`: each law's log predictive density at each held-out
  (hold-out, run, target);
- :func:`stacking_weights`: arviz-stats' stacking of those pointwise scores;
- :func:`ensemble`: the weights and the mixed posterior, as an
  :class:`Ensemble` that predict, recommend, next-run, check and summary take
  as they take a fit; :func:`load` reads either from a file.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from . import io as codec
from .executor import current as current_executor
from .extrapolation import holdout_errors, holdout_frame
from .fit import Fit, Predicting, fit
from .laws.base import dims_coords
from .model import all_params
from .posterior import LawMixture, Posterior, thin_index

log = logging.getLogger("bayesmix")

FORMAT = "bayesmix-ensemble"
FORMAT_VERSION = 1
KEYS = ["holdout", "run", "target"]


# ---------------------------------------------------------------- scores
def holdout_table(fit: Fit) -> pd.DataFrame:
    """The fit's hold-out errors (:func:`bayesmix.extrapolation.holdout_frame`): saved with it, or recomputed
    (posterior modes on the nested hold-outs) for a fit that has none saved."""
    if fit.holdouts is not None:
        return fit.holdouts
    log.info("%s: no saved hold-out errors; refitting the mode on the nested hold-outs", fit.law.name)
    held = holdout_errors(fit.table, fit.law, fit.targets, fit.priors, fit.N0, fit.D0, seed=fit.config.seed)
    return holdout_frame(held, fit.targets)


def holdout_scores(fit: Fit) -> pd.DataFrame:
    """Log predictive density of each held-out final loss under the law refitted without it.

    One row per (``holdout``, ``run``, ``target``) with ``far`` (e-folds out)
    and ``lpd``: the density of the log loss under N(refitted law's log mean,
    noise + (far x extrapolation_sd)^2), the fit's own predictive rule at that
    distance (its extrapolation rate is learned from these same errors, a
    mild double use of two numbers per target shared by every law). The
    refit is a posterior mode, whose spread is small beside the bias it
    measures.
    """
    h = holdout_table(fit).copy()
    sd = pd.Series(np.asarray(fit.extrapolation_sd, dtype=float).reshape(-1), index=list(fit.targets))
    sd = sd.reindex(h.target).to_numpy() if len(sd) > 1 else np.full(len(h), float(sd.iloc[0]))
    var = h.noise.to_numpy(float) + (h.far.to_numpy(float) * sd) ** 2
    err = h.error.to_numpy(float)
    h["lpd"] = -0.5 * (np.log(2 * np.pi * var) + err**2 / var)
    return h


def stacking_weights(scores: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Stacking weights of the columns of ``scores`` (one law per column, one held-out point per row, log
    densities), and arviz-stats' comparison table (elpd, se, dse, weight) indexed by law."""
    from arviz_stats import ELPDData, compare

    n = len(scores)
    elpds = {
        name: ELPDData(
            kind="loo_kfold",
            elpd=float(col.sum()),
            se=float(np.sqrt(n * np.var(col))),
            p=0.0,
            n_samples=1,
            n_data_points=n,
            scale="log",
            warning=False,
            good_k=0.7,
            elpd_i=xr.DataArray(col.to_numpy(float), dims=["point"]),
        )
        for name, col in scores.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare(elpds, method="stacking")
    w = np.clip(table.weight.reindex(scores.columns).to_numpy(float), 0.0, None)
    return w / w.sum(), table


def _scores(fits: Sequence[Fit], names: Sequence[str]) -> tuple[pd.DataFrame, str]:
    """Pointwise scores of every law on the same points, and what they are."""
    per = [holdout_scores(f).set_index(KEYS)["lpd"].rename(n) for f, n in zip(fits, names)]
    joined = pd.concat(per, axis=1, join="inner").dropna()
    if len(joined):
        held = joined.index.get_level_values("holdout").unique()
        return joined, (
            f"held-out-by-scale densities: {len(joined)} final losses of runs left out by {len(held)} nested "
            f"hold-out{'s' if len(held) > 1 else ''} ({'; '.join(held)})"
        )
    from .checks.compare import loo_runs

    loo = {n: loo_runs(f).pointwise.set_index("run")["elpd"].rename(n) for f, n in zip(fits, names)}
    joined = pd.concat(loo.values(), axis=1, join="inner")
    return joined, (
        f"leave-one-run-out (PSIS-LOO over {len(joined)} runs): the sweep has too few model sizes or token budgets "
        "to hold any out, so the laws are weighted by how well they predict a new mixture at the fitted scales, "
        "not by how well they extrapolate"
    )


# ---------------------------------------------------------------- the ensemble
@dataclass
class Ensemble(Predicting):
    """Laws fitted to one sweep, mixed by stacking weights: used wherever a :class:`~bayesmix.Fit` is.

    ``fits`` the laws' fits; ``weights`` (K,) one per law, summing to one;
    ``scores`` arviz-stats' comparison table of the held-out scores;
    ``by_target`` the stacking weights per target (law x target), shown, not
    used; ``note`` what the weights were learned from. Its posterior
    (:meth:`bayesmix.posterior.Posterior.from_fit`) is the laws' draws in
    proportion to the weights: ``draws`` in all (default: the smallest fit's
    number of draws).
    """

    fits: tuple[Fit, ...]
    weights: np.ndarray
    scores: pd.DataFrame
    by_target: pd.DataFrame
    note: str
    draws: int = 0
    pointwise: pd.DataFrame = field(default_factory=pd.DataFrame)

    # ----------------------------------------------------- what a fit has
    @property
    def names(self) -> list[str]:
        """The laws' names, in order."""
        return [f.law.name for f in self.fits]

    @property
    def law(self) -> LawMixture:
        """The laws as one (name ``ensemble``; the title lists the weights)."""
        return LawMixture([f.law for f in self.fits], self.weights)

    @property
    def table(self):
        return self.fits[0].table

    @property
    def domains(self) -> tuple[str, ...]:
        return self.fits[0].domains

    @property
    def targets(self) -> tuple[str, ...]:
        return self.fits[0].targets

    @property
    def checkpoints(self) -> bool:
        return all(f.checkpoints for f in self.fits)

    @property
    def N0(self) -> float:
        return self.fits[0].N0

    @property
    def D0(self) -> float:
        return self.fits[0].D0

    @property
    def sizes(self) -> np.ndarray:
        return self.fits[0].sizes

    @property
    def config(self):
        return self.fits[0].config

    @property
    def version(self) -> str:
        return self.fits[0].version

    @property
    def diagnostics(self) -> str:
        """Each law's diagnostics, one line each."""
        return "; ".join(f"{f.law.name}: {str(f.diagnostics).splitlines()[0]}" for f in self.fits)

    @property
    def extrapolation_sd(self) -> np.ndarray:
        """(T,) the weighted root-mean-square of the laws' extrapolation rates."""
        sd = np.stack([np.broadcast_to(np.asarray(f.extrapolation_sd, float), (len(self.targets),)) for f in self.fits])
        return np.sqrt(self.weights @ sd**2)

    def counts(self) -> np.ndarray:
        """(K,) draws taken from each law: the weights times the total, rounded by largest remainder."""
        total = self.draws or min(int(np.prod(f.draws["sigma"].shape[:2])) for f in self.fits)
        raw = self.weights * total
        n = np.floor(raw).astype(int)
        n[np.argsort(-(raw - n))[: total - n.sum()]] += 1
        return n

    def posterior_parts(self) -> list[Posterior]:
        """Each law's posterior thinned evenly to its share of the draws (laws with no share left out)."""
        parts = []
        for f, n in zip(self.fits, self.counts()):
            if n > 0:
                post = Posterior.from_fit(f)
                parts.append(post.take(thin_index(post.S, n)))
        return parts

    def coords(self) -> dict[str, list[list[str]]]:
        """Labels of every site's dimensions (each law's, and the shared noise sites)."""
        labels = dims_coords(self.domains, self.targets)
        spec = all_params(self.law, self.domains, self.targets, self.checkpoints)
        out = {name: [labels[d] for d in p.dims] for name, p in spec.items()}
        out["law"] = [[n for n, c in zip(self.names, self.counts()) if c > 0]]
        return out

    def summary(self, interval: float = 0.9) -> pd.DataFrame:
        """The laws' weights and held-out scores (elpd, se, its difference to the best), one row per law."""
        t = self.scores.copy()
        t["weight"] = pd.Series(self.weights, index=self.names).reindex(t.index)
        return t

    def __repr__(self) -> str:
        w = ", ".join(f"{n} {w:.2f}" for n, w in zip(self.names, self.weights))
        return (
            f"<bayesmix.Ensemble of {len(self.fits)} laws ({w}); {self.table.n_runs} runs, {len(self.targets)} targets>"
        )

    # ----------------------------------------------------- files
    def save(self, path) -> str:
        """Write the ensemble (every law's fit and the weights) to one netCDF file; read it with :func:`load`."""
        tree = xr.DataTree()
        for i, f in enumerate(self.fits):
            tree[f"law_{i}"] = codec.to_datatree(f)
        tree.attrs = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "laws": json.dumps(self.names),
            "weights": json.dumps([float(w) for w in self.weights]),
            "scores": self.scores.to_json(orient="split", double_precision=15),
            "by_target": self.by_target.to_json(orient="split", double_precision=15),
            "note": self.note,
            "draws": int(self.draws),
        }
        return codec.write(tree, path)

    @classmethod
    def from_tree(cls, tree: xr.DataTree, path="model") -> "Ensemble":
        """The ensemble in a DataTree written by :meth:`save`."""
        import io

        a = tree.attrs
        if int(a.get("format_version", -1)) > FORMAT_VERSION:
            raise codec.ModelFileError(f"{path}: written by a newer bayesmix (ensemble format {a['format_version']})")
        try:
            names = json.loads(a["laws"])
            fits = tuple(Fit(**codec.from_datatree(tree[f"law_{i}"], f"{path}:{n}")) for i, n in enumerate(names))
            return cls(
                fits=fits,
                weights=np.asarray(json.loads(a["weights"]), dtype=float),
                scores=pd.read_json(io.StringIO(a["scores"]), orient="split"),
                by_target=pd.read_json(io.StringIO(a["by_target"]), orient="split"),
                note=str(a["note"]),
                draws=int(a.get("draws", 0)),
            )
        except (KeyError, ValueError) as e:
            if isinstance(e, codec.ModelFileError):
                raise
            raise codec.ModelFileError(f"{path}: incomplete or damaged ensemble file ({e})") from None


def ensemble(fits: Sequence[Fit | str], draws: int = 0) -> Ensemble:
    """Stack fitted laws into an :class:`Ensemble` (fits or paths of saved fits of the same sweep).

    Weights: stacking of each law's held-out-by-scale predictive densities
    (:func:`holdout_scores`), pooled over targets; in-range leave-one-run-out
    only where the sweep allows no hold-out. ``draws``: the ensemble's number
    of draws (default: the smallest fit's). Raises ValueError for fewer than
    two laws or fits of different sweeps.
    """
    fits = tuple(load(f) if isinstance(f, str) else f for f in fits)
    if len(fits) < 2:
        raise ValueError("an ensemble needs at least two fitted laws")
    if any(isinstance(f, Ensemble) for f in fits):
        raise ValueError("an ensemble is made of fits, not of other ensembles")
    names = [f.law.name for f in fits]
    if len(set(names)) < len(names):
        raise ValueError(f"each law may appear once in an ensemble; got {', '.join(names)}")
    first = fits[0]
    for f in fits[1:]:
        same = (
            f.domains == first.domains
            and f.targets == first.targets
            and len(f.table.frame) == len(first.table.frame)
            and np.allclose(f.table.weights, first.table.weights)
            and np.array_equal(f.table.model_size, first.table.model_size)
            and np.array_equal(f.table.n_tokens, first.table.n_tokens)
        )
        if not same:
            raise ValueError(
                f"the {f.law.name} and {first.law.name} fits are of different run tables (domains, targets or rows "
                "differ): an ensemble mixes laws fitted to the same sweep"
            )
    scores, how = _scores(fits, names)
    w, table = stacking_weights(scores)
    per_target = {}
    if "target" in scores.index.names:
        for t, part in scores.groupby(level="target"):
            per_target[t] = stacking_weights(part)[0]
    by_target = pd.DataFrame(per_target, index=names)
    note = f"weights by stacking of {how}: " + ", ".join(f"{n} {x:.2f}" for n, x in zip(names, w))
    log.info(note)
    return Ensemble(fits, w, table, by_target, note, int(draws), scores)


def load(path) -> Fit | Ensemble:
    """A saved fit or ensemble, whichever the file holds (``bayesmix.load``).

    Raises :class:`~bayesmix.io.ModelFileError` for a missing, corrupt or foreign file.
    """
    tree = codec.read(path)
    if tree.attrs.get("format") == FORMAT:
        return Ensemble.from_tree(tree, path)
    return Fit(**codec.from_datatree(tree, path))


# Laws `fit --law auto` tries, and why the others are left out: the capacity laws solve an allocation per draw
# (several times slower) and, across model sizes, the published one does not fit a real sweep (README, Laws).
AUTO_LAWS = ("additive", "joint", "exponential", "bimix", "own_weight")
LEFT_OUT = {
    "capacity": "not tried by auto: across model sizes its data term does not fit real sweeps, and it is slow; fit it "
    "by name (--law capacity) at one scale",
    "capacity_tokens": "not tried by auto: slow, and its posterior can have two modes (compare seeds); fit it by name",
}


def candidate_laws(table, laws: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The laws of ``laws`` the sweep can identify, and the reason each other one is left out."""
    from .data import RunTableError
    from .laws import available_laws, get_law

    laws = AUTO_LAWS if laws is None else laws
    ok, skipped = [], {n: why for n, why in LEFT_OUT.items() if n in available_laws() and n not in laws}
    for name in laws:
        law = get_law(name)
        try:
            table.require_mixtures(law.min_mixtures, law.name)
            table.require_scales(law.min_scales, law.name, law.why_scales)
        except RunTableError as e:
            skipped[name] = str(e)
            continue
        ok.append(name)
    return ok, skipped


def fit_laws(runs, laws: Sequence[str] | None = None, **fit_kwargs) -> tuple[Fit | Ensemble, dict[str, str]]:
    """Fit every law of ``laws`` the sweep can identify and stack them (``bayesmix fit --law auto``).

    ``laws`` defaults to :data:`AUTO_LAWS`. Returns ``(model, skipped)``: the :class:`Ensemble` of the fitted laws (a
    single :class:`~bayesmix.Fit` if only one could be fitted) and, per law
    left out, why. ``fit_kwargs`` go to :func:`bayesmix.fit` for every law.
    """
    from .data import RunTable, read_runs

    table = runs if isinstance(runs, RunTable) else read_runs(runs)
    names, skipped = candidate_laws(table, AUTO_LAWS if laws is None else laws)
    if not names:
        raise ValueError("no law can be fitted to this sweep: " + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    print(f"fitting {len(names)} laws: {', '.join(names)}", flush=True)
    # The laws' fits are independent: they run on the current executor (bayesmix.executor).
    tasks = [(table, name, fit_kwargs, f"{i} of {len(names)}") for i, name in enumerate(names, 1)]
    fits = current_executor().map(_fit_law, tasks, labels=names)
    return (fits[0] if len(fits) == 1 else ensemble(fits)), skipped


def _fit_law(task: tuple) -> Fit:
    """One law's fit (a task of an executor)."""
    table, name, kwargs, position = task
    print(f"fitting law {position}: {name}", flush=True)
    return fit(table, name, **kwargs)
