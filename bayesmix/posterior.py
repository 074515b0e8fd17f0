"""The one place that evaluates a law over its posterior draws.

A :class:`Posterior` holds a law's draws (site -> (S, ...)), the reference
scales the law is written around and the range it was fitted on. Everything
that needs the law's loss at some mixtures and scales in every draw --
prediction, the decision, the pre-posterior analysis, the checks, the
benchmarks -- asks it, so that there is one rule for thinning draws, one for
slicing them to targets, one compiled kernel per law, and one rule for the
law's extrapolation bias and its random numbers.

The bias: beyond the largest fitted model size and token count the law's log
loss is off by ``delta_t = extrapolation_sd_t * far * z_t``, ``far`` the
e-folds beyond the fitted range (:func:`efolds_beyond`) and ``z`` one standard
normal per draw and target, shared by every mixture and scale in that draw.
``z`` comes first from ``numpy.random.default_rng(seed)`` (:meth:`bias_normals`),
so that every caller with the same seed sees the same bias.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property, partial
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .design import make_inputs
from .laws.base import Inputs, Law, own_index
from .model import LawKey, all_params, log_mean
from .reach import varied_axes
from .schedule import log_offset as schedule_offset

# Rows per compiled call: a request is cut into chunks of this many rows, and a
# shorter request (or the last chunk) is padded to the next power of two, so a
# law compiles for at most a dozen row counts whatever it is asked.
CHUNK = 512


def fitted_reach(table) -> tuple[float, float]:
    """The largest fitted model size and token count; inf along an axis the sweep never varied.

    Along such an axis the law's term rests on its prior alone, whose spread
    the posterior draws already carry (:mod:`bayesmix.reach`); an
    extrapolation bias learned along the varied axes does not apply there.
    """
    N_varied, D_varied = varied_axes(table)
    return (
        float(table.model_size.max()) if N_varied else float("inf"),
        float(table.n_tokens.max()) if D_varied else float("inf"),
    )


def efolds_beyond(N, D, max_N: float, max_D: float) -> np.ndarray:
    """Distance past the fitted range, in e-folds of model size plus e-folds of tokens.

    An axis the sweep never varied has an infinite reach (:func:`fitted_reach`): log(x / inf) = -inf counts 0.
    """
    with np.errstate(divide="ignore"):
        return np.maximum(0.0, np.log(np.asarray(N, float) / max_N)) + np.maximum(
            0.0, np.log(np.asarray(D, float) / max_D)
        )


def thin_index(S: int, max_draws: int | None) -> np.ndarray:
    """Indices of at most ``max_draws`` of ``S`` draws, evenly spread: draw floor(i S / n) for i < n.

    The one thinning rule: every S/n-th draw when n divides S (chains merged,
    so each chain keeps its share), exactly n draws otherwise.
    """
    if max_draws is None or S <= max_draws:
        return np.arange(S)
    n = int(max_draws)
    return (np.arange(n) * S) // n


def law_log_means(law, p, h, N, D, N0, D0, own) -> jnp.ndarray:
    """(S, M, T) log of the law's expected loss at rows (h (M, K), N (M,), D (M,)) in every draw of ``p``.

    Traceable: the solvers of :mod:`bayesmix.decide` differentiate it inside
    their own compiled code. ``law`` may be a :class:`~bayesmix.model.LawKey`.
    """
    law = law.law if isinstance(law, LawKey) else law
    if isinstance(law, LawMixture):  # an ensemble: each law over its own draws, stacked along the draws
        return jnp.concatenate([law_log_means(k, q, h, N, D, N0, D0, own) for k, q in zip(law.laws, p)], axis=0)
    M = h.shape[0]
    x = Inputs(h=h, mix=jnp.arange(M), N=N, D=D, N0=N0, D0=D0, own=own)
    return jax.vmap(lambda q: log_mean(law, q, x))(p)


class LawMixture:
    """Several laws as one, for an ensemble's draws: draw s belongs to the law whose block of draws holds it.

    It is what :class:`MixedPosterior` gives as its ``law``; :func:`law_log_means` evaluates each law over its own
    draws (``p`` is then a tuple of draw dicts, one per law) and stacks them, so the decision's compiled code takes
    an ensemble as it takes one law. ``name`` and ``title`` say which laws, with their weights.
    """

    name = "ensemble"
    reference = "stacking of held-out predictive densities (Yao et al. 2018, Bayesian Analysis 13(3))"
    revision = 1

    def __init__(self, laws: Sequence[Law], weights: Sequence[float]):
        self.laws = tuple(laws)
        self.weights = tuple(float(w) for w in weights)

    @property
    def title(self) -> str:
        return "ensemble of " + ", ".join(f"{law.name} ({w:.2f})" for law, w in zip(self.laws, self.weights))

    @property
    def formula(self) -> str:
        return " + ".join(f"{w:.2f} x [{law.name}]" for law, w in zip(self.laws, self.weights)) + " (a mixture)"

    def cache_key(self) -> tuple:
        return ("mixture",) + tuple(LawKey(law)._key for law in self.laws)

    def params(self, domains, targets) -> dict:
        """Every law's parameters (the first law's where names repeat): for labels and descriptions only."""
        out: dict = {}
        for law in self.laws:
            out = {**law.params(domains, targets), **out}
        return out


@partial(jax.jit, static_argnames=("law",))
def _kernel(law, p, h, mix, N, D, N0, D0, own, cell, cell_mix, cell_N):
    x = make_inputs(h, mix, N, D, N0, D0, own)._replace(cell=cell, cell_mix=cell_mix, cell_N=cell_N)
    return jax.vmap(lambda q: log_mean(law.law, q, x))(p)


def _padded_length(n: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return min(size, CHUNK)


def _chunk_inputs(h: np.ndarray, N: np.ndarray, D: np.ndarray, size: int):
    """A chunk of rows as the kernel takes it: distinct mixtures and (mixture, size) cells, padded to ``size``."""
    n = h.shape[0]
    pad = size - n
    hh = np.concatenate([h, np.repeat(h[:1], pad, 0)])
    NN = np.concatenate([N, np.repeat(N[:1], pad)])
    DD = np.concatenate([D, np.repeat(D[:1], pad)])
    # Checkpoints of one run share the mixture and the model size, so a law's
    # term of (h, N) -- the capacity allocation -- is computed once per cell.
    uniq, mix = np.unique(hh, axis=0, return_inverse=True)
    mix = mix.reshape(-1)
    pairs, cell = np.unique(np.column_stack([mix, NN]), axis=0, return_inverse=True)
    h_pad = np.concatenate([uniq, np.repeat(uniq[:1], size - len(uniq), 0)])
    cell_mix = np.concatenate([pairs[:, 0].astype(np.int64), np.zeros(size - len(pairs), np.int64)])
    cell_N = np.concatenate([pairs[:, 1], np.repeat(pairs[:1, 1], size - len(pairs))])
    return (
        jnp.asarray(h_pad),
        jnp.asarray(mix, dtype=jnp.int32),
        jnp.asarray(NN),
        jnp.asarray(DD),
        jnp.asarray(cell.reshape(-1), dtype=jnp.int32),
        jnp.asarray(cell_mix, dtype=jnp.int32),
        jnp.asarray(cell_N),
    )


@dataclass(frozen=True, eq=False)
class Posterior:
    """A law's posterior draws, and the law evaluated over them.

    Build one with :meth:`from_fit`. ``draws`` maps each site to an (S, ...)
    array (chains merged); ``reach`` is the largest fitted model size and
    token count (inf along an axis the sweep never varied, see
    :func:`fitted_reach`); ``extrapolation_sd`` has one value per target.
    """

    law: Law
    domains: tuple[str, ...]
    targets: tuple[str, ...]
    draws: Mapping[str, np.ndarray]
    N0: float
    D0: float
    reach: tuple[float, float]
    extrapolation_sd: np.ndarray

    @classmethod
    def from_fit(cls, fit, max_draws: int | None = None) -> "Posterior":
        """The fit's draws with chains merged, thinned to at most ``max_draws`` (:func:`thin_index`).

        An ensemble (:class:`bayesmix.stacking.Ensemble`) gives a :class:`MixedPosterior` of its laws' draws.
        """
        if hasattr(fit, "posterior_parts"):
            return MixedPosterior.from_parts(fit.posterior_parts(), fit.weights).thin(max_draws)
        T = len(fit.targets)
        draws = {k: v.reshape((-1,) + v.shape[2:]) for k, v in fit.draws.items()}
        post = cls(
            law=fit.law,
            domains=tuple(fit.domains),
            targets=tuple(fit.targets),
            draws=draws,
            N0=float(fit.N0),
            D0=float(fit.D0),
            reach=fitted_reach(fit.table),
            extrapolation_sd=np.broadcast_to(np.asarray(fit.extrapolation_sd, dtype=float), (T,)).copy(),
        )
        return post.thin(max_draws)

    @classmethod
    def point(
        cls,
        law: Law,
        domains,
        targets,
        params: Mapping[str, np.ndarray],
        N0: float,
        D0: float,
        reach: tuple[float, float] = (np.inf, np.inf),
    ) -> "Posterior":
        """A single parameter set (a posterior mode, a simulation's truth) as a one-draw posterior."""
        T = len(targets)
        draws = {k: np.asarray(v, dtype=float)[None] for k, v in params.items()}
        return cls(law, tuple(domains), tuple(targets), draws, float(N0), float(D0), reach, np.zeros(T))

    # ------------------------------------------------------------ the draws
    @property
    def S(self) -> int:
        """Number of draws."""
        return int(next(iter(self.draws.values())).shape[0])

    @property
    def own(self) -> np.ndarray:
        """(T,) index of each target's own domain, -1 if it has none."""
        return np.asarray(own_index(self.domains, self.targets), dtype=np.int32)

    def thin(self, max_draws: int | None) -> "Posterior":
        """At most ``max_draws`` draws, evenly spread (:func:`thin_index`)."""
        idx = thin_index(self.S, max_draws)
        return self if len(idx) == self.S else self.take(idx)

    def take(self, index) -> "Posterior":
        """The draws at ``index`` (an index array or a slice)."""
        return replace(self, draws={k: v[index] for k, v in self.draws.items()})

    def blocks(self, rows) -> list[tuple["Posterior", np.ndarray]]:
        """[(the posterior at draws ``rows``, their positions in ``rows``)]: one block here, one per law in an
        ensemble (:class:`MixedPosterior`), for compiled code that takes one law's draws at a time."""
        rows = np.asarray(rows)
        return [(self.take(rows), np.arange(len(rows)))]

    def select_targets(self, targets: Sequence[str]) -> "Posterior":
        """The posterior of some targets only, sliced along every "target" and "foreign" axis.

        The axes come from each parameter's declared dims, so no law is
        special-cased. Only right for a law whose targets share no parameter:
        a law whose mean couples targets gives other numbers after slicing
        (callers compare with the full computation where that matters).
        """
        targets = tuple(targets)
        used = np.array([self.targets.index(t) for t in targets], dtype=int)
        foreign = [t for t in self.targets if t not in self.domains]
        used_foreign = np.array([foreign.index(t) for t in targets if t in foreign], dtype=int)
        spec = all_params(self.law, self.domains, self.targets, checkpoints=True)
        out = {}
        for name, v in self.draws.items():
            for axis, d in enumerate(spec[name].dims if name in spec else ()):
                if d == "target":
                    v = np.take(v, used, axis=axis + 1)
                elif d == "foreign":
                    v = np.take(v, used_foreign, axis=axis + 1)
            out[name] = v
        return replace(self, targets=targets, draws=out, extrapolation_sd=self.extrapolation_sd[used])

    def jax_draws(self) -> dict[str, jnp.ndarray]:
        """The draws as jax arrays (for compiled code that takes them as an argument); converted once."""
        return self._jax_draws

    @cached_property
    def _jax_draws(self) -> dict[str, jnp.ndarray]:
        return {k: jnp.asarray(v) for k, v in self.draws.items()}

    @property
    def checkpoints(self) -> bool:
        """True when the fit has a schedule term (it saw mid-schedule checkpoints)."""
        return "schedule" in self.draws

    # ------------------------------------------------------------ the law
    def log_means(self, h, N, D, run_tokens=None) -> np.ndarray:
        """(S, n, T) log of the law's expected loss at rows (h (n, K), N, D) in every draw.

        ``N`` and ``D`` are scalars or one per row. Rows go through one
        compiled kernel per law in chunks of fixed, padded lengths. Without
        ``run_tokens`` a row is the final loss of a run trained to D tokens;
        with it (scalar or one per row), a checkpoint at D of a run whose
        schedule ends at ``run_tokens``: for a fit of checkpoints, the law at
        ``run_tokens`` plus the checkpoint curve.
        """
        if run_tokens is None or not self.checkpoints:
            return self._law_log_means(h, N, D)
        # A checkpoint: the law at its run's end plus the run's curve above it (bayesmix.schedule).
        out = self._law_log_means(h, N, run_tokens)
        n = out.shape[1]
        return out + schedule_offset(self.draws, self.fraction(D, run_tokens, n), np.broadcast_to(N, (n,)), self.N0)

    @staticmethod
    def fraction(D, run_tokens, n: int) -> np.ndarray:
        """(n,) each row's share of its run's schedule, ``D / run_tokens`` (an error above 1 + 1e-3)."""
        D = np.broadcast_to(np.asarray(D, dtype=float), (n,))
        end = np.broadcast_to(np.asarray(run_tokens, dtype=float), (n,))
        f = D / end
        if np.any(f > 1 + 1e-3):
            raise ValueError(
                f"a checkpoint's tokens exceed its run's schedule end (run_tokens): {D[f > 1 + 1e-3][0]:.4g} > "
                f"{end[f > 1 + 1e-3][0]:.4g}"
            )
        return np.minimum(f, 1.0)

    def _law_log_means(self, h, N, D) -> np.ndarray:
        h = np.atleast_2d(np.asarray(h, dtype=float))
        n = h.shape[0]
        N = np.broadcast_to(np.asarray(N, dtype=float), (n,))
        D = np.broadcast_to(np.asarray(D, dtype=float), (n,))
        if n == 0:
            return np.zeros((self.S, 0, len(self.targets)))
        p = self.jax_draws()
        key = LawKey(self.law)
        own = jnp.asarray(self.own)
        out = []
        for a in range(0, n, CHUNK):
            b = min(a + CHUNK, n)
            args = _chunk_inputs(h[a:b], N[a:b], D[a:b], _padded_length(b - a))
            out.append(np.asarray(_kernel(key, p, *args[:4], self.N0, self.D0, own, *args[4:]))[:, : b - a])
        return np.concatenate(out, axis=1)

    def means(self, h, N, D) -> np.ndarray:
        """(S, n, T) the law's expected loss (no bias, no noise) at rows (h, N, D) in every draw."""
        return np.exp(self.log_means(h, N, D))

    # ------------------------------------------------------------ beyond the fitted range
    def far(self, N, D) -> np.ndarray:
        """E-folds of (N, D) beyond the fitted model sizes plus beyond the fitted token counts."""
        return efolds_beyond(N, D, self.reach[0], self.reach[1])

    def bias_normals(self, seed: int) -> np.ndarray:
        """(S, T) the standard normals z of the extrapolation bias: the first numbers of ``default_rng(seed)``."""
        return np.random.default_rng(seed).standard_normal((self.S, len(self.targets)))

    def log_bias(self, N, D, z: np.ndarray) -> np.ndarray:
        """(S, n, T) the law's extrapolation bias on the log loss at rows (N, D), from normals ``z`` (S, T)."""
        far = np.atleast_1d(self.far(N, D))
        return self.extrapolation_sd[None, None, :] * far[None, :, None] * z[:, None, :]

    # ------------------------------------------------------------ prediction
    def noise_variance(self, D, run_tokens=None) -> np.ndarray:
        """(S, n, T) variance of one new run's log loss around the mean at rows of tokens ``D`` (its checkpoint
        noise, offset and, at a checkpoint of a run ending at ``run_tokens``, slope)."""
        D = np.atleast_1d(np.asarray(D, dtype=float))
        x = np.zeros(len(D)) if run_tokens is None else np.log(np.maximum(self.fraction(D, run_tokens, len(D)), 1e-12))
        return _noise_variance(self.draws, x)

    def predictive(self, h, N, D, seed: int = 0, run_tokens=None) -> dict[str, np.ndarray]:
        """Draws of the loss at each row: ``{"mean": (S, n, T), "pred": (S, n, T)}``.

        ``mean`` is the law with its extrapolation bias (the expected loss);
        ``pred`` adds a new run's offset and checkpoint noise (what one run
        would show). Without ``run_tokens`` each row is the final loss of a
        run trained to D tokens; with it, a checkpoint at D of a run whose
        schedule ends at ``run_tokens``: the schedule term joins the mean and
        the run's own slope the noise. Random numbers, in this order from
        ``default_rng(seed)``: the bias (S, T), the run offsets (S, n, T),
        the checkpoint noise (S, n, T), then the run slopes (S, n, T).
        """
        log_mu = self.log_means(h, N, D, run_tokens)
        S, n, T = log_mu.shape
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((S, T))  # == bias_normals(seed)
        delta = self.log_bias(np.broadcast_to(N, (n,)), np.broadcast_to(D, (n,)), z)
        tau_run = self.draws.get("tau_run", np.zeros((S, T)))
        run = tau_run[:, None, :] * rng.standard_normal((S, n, T))
        noise = self.draws["sigma"][:, None, :] * rng.standard_normal((S, n, T))
        if run_tokens is not None and "kappa_run" in self.draws:
            x = np.log(np.maximum(self.fraction(D, run_tokens, n), 1e-12))[None, :, None]
            noise = noise * _early_scale(self.draws, x)
            noise = noise + self.draws["kappa_run"][:, None, :] * x * rng.standard_normal((S, n, T))
        return {"mean": np.exp(log_mu + delta), "pred": np.exp(log_mu + delta + run + noise)}


def _early_scale(draws, x: np.ndarray) -> np.ndarray | float:
    """How much more a checkpoint at log fraction ``x`` (1, n, 1) scatters than one at its run's end:
    sqrt(1 + (noise_early x)^2), the model's rule (bayesmix.model.group_loglik); 1 without the term."""
    if "noise_early" not in draws:
        return 1.0
    return np.sqrt(1.0 + (draws["noise_early"][:, None, :] * x) ** 2)


def _noise_variance(draws, x: np.ndarray) -> np.ndarray:
    """(S, n, T) variance of one new checkpoint around the mean at log fractions ``x`` (n,): noise, offset, slope."""
    x = np.asarray(x, dtype=float)[None, :, None]
    sigma2 = (draws["sigma"][:, None, :] * _early_scale(draws, x)) ** 2
    tau2 = draws.get("tau_run", np.zeros_like(draws["sigma"]))[:, None, :] ** 2
    kappa2 = draws.get("kappa_run", np.zeros_like(draws["sigma"]))[:, None, :] ** 2
    return sigma2 + tau2 + kappa2 * x**2


def clear_kernels() -> None:
    """Drop the compiled kernels of this module (see :func:`bayesmix.clear_caches`)."""
    _kernel.clear_cache()


@dataclass(frozen=True, eq=False)
class MixedPosterior(Posterior):
    """An ensemble's posterior: the draws of several laws' posteriors, one block of draws per law.

    Build one with :meth:`from_parts`. A draw is one law's draw (every target, every scale): the mixture of
    the laws' posteriors with weights in proportion to their numbers of draws, so that quantiles, the
    decision's risk and P(beats baseline) are of the mixture. ``draws`` holds the sites every law shares (the
    observation model's noise and schedule term), stacked; each law's own parameters stay in ``parts``. The law
    is evaluated per part and stacked (:class:`LawMixture`), as is the extrapolation bias (each law's own rate).
    """

    parts: tuple[Posterior, ...] = ()

    @classmethod
    def from_parts(cls, parts: Sequence[Posterior], weights: Sequence[float] | None = None) -> "MixedPosterior":
        """Stack ``parts`` (same domains, targets and reference scales); ``weights`` (default: their draw shares)
        only label the law."""
        parts = tuple(parts)
        first = parts[0]
        for p in parts[1:]:
            if p.domains != first.domains or p.targets != first.targets or (p.N0, p.D0) != (first.N0, first.D0):
                raise ValueError("an ensemble's laws must be fitted to the same domains, targets and reference scales")
        S = np.array([p.S for p in parts], dtype=float)
        weights = S / S.sum() if weights is None else weights
        own = set().union(*(p.law.params(first.domains, first.targets) for p in parts))
        common = set.intersection(*(set(p.draws) for p in parts)) - own
        draws = {k: np.concatenate([np.asarray(p.draws[k]) for p in parts]) for k in sorted(common)}
        # which law each draw is from, as a parameter: a new run that tells the laws apart informs it
        draws["law"] = np.repeat(np.eye(len(parts)), [p.S for p in parts], axis=0)
        sd = np.sqrt(sum(p.S * p.extrapolation_sd**2 for p in parts) / S.sum())  # the mixture's rms rate
        return cls(
            law=LawMixture([p.law for p in parts], weights),
            domains=first.domains,
            targets=first.targets,
            draws=draws,
            N0=first.N0,
            D0=first.D0,
            reach=first.reach,
            extrapolation_sd=sd,
            parts=parts,
        )

    def _offsets(self) -> np.ndarray:
        return np.cumsum([0] + [p.S for p in self.parts])

    def take(self, index) -> "MixedPosterior":
        """The draws at ``index`` (a slice, or indices grouped by law in increasing law order, e.g. sorted)."""
        idx = np.arange(self.S)[index]
        off = self._offsets()
        part = np.searchsorted(off, idx, side="right") - 1
        if np.any(np.diff(part) < 0):
            raise ValueError("an ensemble's draws are taken law by law: pass sorted indices")
        parts = [p.take(idx[part == i] - off[i]) for i, p in enumerate(self.parts)]
        return MixedPosterior.from_parts(parts, self.law.weights)

    def blocks(self, rows) -> list[tuple[Posterior, np.ndarray]]:
        """[(the posterior of one law at some of ``rows``, their positions in ``rows``)], one per law with rows."""
        rows = np.asarray(rows)
        off = self._offsets()
        part = np.searchsorted(off, rows, side="right") - 1
        return [
            (p.take(rows[part == i] - off[i]), np.nonzero(part == i)[0])
            for i, p in enumerate(self.parts)
            if np.any(part == i)
        ]

    def select_targets(self, targets: Sequence[str]) -> "MixedPosterior":
        """Every law's posterior of some targets only (see :meth:`Posterior.select_targets`)."""
        return MixedPosterior.from_parts([p.select_targets(targets) for p in self.parts], self.law.weights)

    @cached_property
    def _jax_draws(self) -> tuple[dict[str, jnp.ndarray], ...]:
        return tuple(p.jax_draws() for p in self.parts)

    def _law_log_means(self, h, N, D) -> np.ndarray:
        return np.concatenate([p._law_log_means(h, N, D) for p in self.parts], axis=0)

    def log_bias(self, N, D, z: np.ndarray) -> np.ndarray:
        """(S, n, T) each law's extrapolation bias over its own draws (its own rate), from normals ``z`` (S, T)."""
        off = self._offsets()
        return np.concatenate([p.log_bias(N, D, z[off[i] : off[i + 1]]) for i, p in enumerate(self.parts)], axis=0)
