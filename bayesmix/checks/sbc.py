"""Simulation-based calibration (SBC) of the inference itself.

For a law: draw parameters from the prior, simulate a sweep from the law and
the shared observation model, fit, and record the rank of each true parameter
among (thinned) posterior draws. If the model is coded right and the sampler
explores the posterior, every rank is uniform (Talts et al. 2018).

Many fits are needed, so the fits here are vectorised: one jitted
``vmap(fit_one)`` over a batch of simulated datasets (same design, so the same
shapes), compiled once per law. ``fit_one`` does what :func:`bayesmix.fit`
does -- the same NumPyro model, priors and NUTS settings, NUTS run in
coordinates whitened by the Laplace approximation at the posterior mode --
except that the mode is found
by a fixed number of saddle-free Newton steps (vmappable) instead of scipy's
trust-region solver (a Python loop that cannot be vmapped). The NUTS runner
itself is the package's (``bayesmix.inference._runner``), so SBC checks the
sampler users get.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree

from ..data import read_runs
from ..design import law_tokens, observed_from_table, reference_point
from ..diagnostics import scalar_names
from ..executor import current as current_executor
from ..laws import Law, get_law
from ..laws.base import dims_coords
from ..model import all_params, make_model, param_shapes
from ..simulate import simulate_losses, sweep_design

DEFAULT_DOMAINS = ("web", "code", "books")
_ENGINES: dict = {}
DEFAULT_SIZES = (5e7, 1.25e8, 3.5e8)


@dataclass
class SBCResult:
    """Ranks of the true parameters among posterior draws, one row per (replication, parameter).

    ``ranks`` has columns ``replication``, ``parameter``, ``rank`` (0..``n_draws``),
    ``truth``; ``runs`` has one row per replication with its sampler
    diagnostics (``divergences``, ``max_rhat``, ``tree_depth_hits``).
    """

    law: str
    ranks: pd.DataFrame
    runs: pd.DataFrame
    n_draws: int  # posterior draws each truth is ranked among (ranks run 0..n_draws)
    seconds: float
    settings: dict = field(default_factory=dict)

    def uniformity(self, bins: int = 10) -> pd.DataFrame:
        """Chi-square test of uniform ranks per parameter.

        Returns one row per parameter: ``chi2``, ``df``, ``p_value``,
        ``p_bonferroni`` (p-value times the number of parameters, capped at 1),
        ``low``/``high`` (share of ranks in the lowest/highest 5% of the
        rank range; 0.05 each if calibrated) and ``replications``.
        """
        rows = []
        names = list(dict.fromkeys(self.ranks.parameter))
        for name in names:
            r = self.ranks.loc[self.ranks.parameter == name, "rank"].to_numpy()
            stat, df, p = rank_chi2(r, self.n_draws, bins)
            u = (r + 0.5) / (self.n_draws + 1)
            rows.append(
                {
                    "parameter": name,
                    "replications": len(r),
                    "chi2": stat,
                    "df": df,
                    "p_value": p,
                    "low": float(np.mean(u < 0.05)),
                    "high": float(np.mean(u > 0.95)),
                }
            )
        out = pd.DataFrame(rows)
        out["p_bonferroni"] = np.minimum(1.0, out.p_value * len(out))
        return out

    def plot(self, bins: int = 10):
        """Rank histograms (a matplotlib Figure), one panel per parameter, with the 99% band of a uniform histogram."""
        from .plots import rank_histograms

        n_rep = self.ranks.replication.nunique()
        return rank_histograms(
            self.ranks,
            self.n_draws,
            bins,
            f"SBC rank histograms: {self.law} law, {n_rep} replications (grey: 99% band if uniform)",
        )


def _bin(ranks: np.ndarray, n_draws: int, bins: int) -> np.ndarray:
    """Bin index of each rank; ranks take n_draws + 1 values, spread evenly over the bins."""
    return np.minimum(bins - 1, (np.asarray(ranks) * bins) // (n_draws + 1)).astype(int)


def rank_chi2(ranks: np.ndarray, n_draws: int, bins: int = 10) -> tuple[float, int, float]:
    """Chi-square statistic, degrees of freedom and p-value of a rank histogram against uniform.

    Ranks take ``n_draws + 1`` values; choose ``n_draws + 1`` a multiple of
    ``bins`` so that every bin has the same expected count.
    """
    from scipy import stats

    counts = np.bincount(_bin(ranks, n_draws, bins), minlength=bins)
    width = np.diff(np.floor(np.arange(bins + 1) * (n_draws + 1) / bins))  # rank values per bin
    expected = len(ranks) * width / (n_draws + 1)
    stat = float(np.sum((counts - expected) ** 2 / expected))
    return stat, bins - 1, float(stats.chi2.sf(stat, bins - 1))


def default_design(law: Law, seed: int = 0) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """A realistic small sweep for SBC: 3 domains, 3 sizes (50M-350M), 6 mixtures, 4 checkpoints; one target.

    Returns the design (a run table without losses) and the targets. One
    target is enough: every law's targets share no parameter except through
    the domains, and a fit per target is what SBC has to check.
    """
    n_mix = max(6, law.min_mixtures + 2)
    design = sweep_design(DEFAULT_DOMAINS, DEFAULT_SIZES, n_mix, 4, tokens_per_param=20, seed=seed, concentration=2.0)
    return design, (DEFAULT_DOMAINS[0],)


def has_checkpoints(design: pd.DataFrame) -> bool:
    """True when some row of a design lies before its run's schedule end (the fit then has the checkpoint model)."""
    end = design["run_tokens"] if "run_tokens" in design else design.groupby("run").n_tokens.transform("max")
    return bool((design.n_tokens / end < 1 - 1e-9).any())


def prior_draws(law: Law, domains, targets, n: int, seed: int, checkpoints: bool = False) -> dict[str, np.ndarray]:
    """``n`` joint draws of every parameter (with the checkpoint model's, when ``checkpoints``) from its default
    prior: site -> (n, ...)."""
    spec = all_params(law, domains, targets, checkpoints)
    shapes = param_shapes(spec, domains, targets)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes))
    return {
        name: np.asarray(spec[name].prior.to_numpyro(shape).sample(k, (n,)))
        for k, (name, shape) in zip(keys, shapes.items())
    }


def _inverse_pd(hess: jnp.ndarray, floor: float = 1e-8) -> jnp.ndarray:
    """jnp twin of inference._inverse_pd: the inverse with eigenvalues floored (vmappable)."""
    hess = 0.5 * (hess + hess.T)
    vals, vecs = jnp.linalg.eigh(hess)
    vmax = vals.max()
    vals = jnp.maximum(vals, jnp.where(vmax > 0, jnp.maximum(floor, vmax * 1e-10), 1.0))
    return (vecs / vals) @ vecs.T


def _newton_mode(pot, z0: jnp.ndarray, iters: int) -> jnp.ndarray:
    """Saddle-free Newton with a step-size search over fixed trial scales (vmappable)."""
    grad = jax.grad(pot)
    hess = jax.hessian(pot)
    scales = jnp.array([1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 0.0])

    def body(_, carry):
        z, _f = carry
        g = grad(z)
        H = hess(z)
        vals, vecs = jnp.linalg.eigh(0.5 * (H + H.T))
        a = jnp.abs(vals)
        a = jnp.maximum(a, 1e-6 * a.max() + 1e-8)
        step = -(vecs / a) @ (vecs.T @ g)
        step = jnp.where(jnp.isfinite(step), step, -g)
        # Long steps on a flat ridge can leave the region where the law is
        # finite; cap them (unconstrained units, i.e. e-folds for positives).
        norm = jnp.linalg.norm(step)
        step = step * jnp.minimum(1.0, 5.0 / jnp.maximum(norm, 1e-12))
        cand = z[None] + scales[:, None] * step[None]
        fs = jax.vmap(pot)(cand)
        fs = jnp.where(jnp.isfinite(fs), fs, jnp.inf)
        j = jnp.argmin(fs)
        return cand[j], fs[j]

    z, _ = jax.lax.fori_loop(0, iters, body, (z0, pot(z0)))
    return z


class _Engine:
    """A compiled ``vmap(fit_one)`` for one law, design and sampler setting.

    ``fit_one`` runs the package's own NUTS runner (``bayesmix.inference``:
    NUTS in coordinates whitened by the Laplace approximation, with the same
    adaptation), so SBC checks the sampler users get; only the mode search is
    replaced by a vmappable one.
    """

    def __init__(
        self,
        law: Law,
        table,
        targets,
        chains: int,
        warmup: int,
        draws: int,
        target_accept: float,
        max_tree_depth: int,
        newton_iters: int = 40,
        checkpoints: bool = False,
        warm_retry: float | None = None,
        rewhiten: bool = False,
    ):
        from numpyro.infer import init_to_median
        from numpyro.infer.util import constrain_fn, initialize_model

        from ..inference import SamplerConfig, _runner, probe_rewhitened, rewarm

        self.law, self.targets = law, tuple(targets)
        spec = all_params(law, table.domains, targets, checkpoints)
        priors = {k: p.prior for k, p in spec.items()}
        N0, D0 = reference_point(table.model_size, law_tokens(table, checkpoints))
        self.obs, _ = observed_from_table(table, targets, N0, D0, np.unique(table.model_size), checkpoints=checkpoints)
        self.N0, self.D0 = N0, D0
        model = make_model(law, table.domains, targets, priors, checkpoints)
        info = initialize_model(
            jax.random.PRNGKey(0), model, model_args=(self.obs,), dynamic_args=True, init_strategy=init_to_median()
        )
        pot_gen = info.potential_fn
        z0, unravel = ravel_pytree(info.param_info.z)
        dim = int(z0.shape[0])
        self.sites = list(param_shapes(spec, table.domains, targets))
        config = SamplerConfig(
            chains=chains,
            warmup=warmup,
            draws=draws,
            target_accept=target_accept,
            max_tree_depth=max_tree_depth,
            dense_mass=True,
        )
        run = _runner(model, unravel, dim, config, False, None)  # jit(vmap over chains) of the package's NUTS
        # warm_retry: every replication is also sampled again as a fit retries a block that diverged, from the first
        # run's draws at the end of its first chunk (where a fit's first try stops at a divergence), mass matrices
        # and step sizes at this target_accept (inference._sample_block's ``start``), and the retry's draws are
        # ranked: SBC of the retry's warm start.
        again = run._replace(target_accept=warm_retry) if warm_retry else None  # the same programs
        obs0 = self.obs

        def fit_one(y, key):
            o = obs0._replace(y=y)

            def pot(z):
                return pot_gen(o)(unravel(z))

            k_start, k_init, k_run = jax.random.split(key, 3)
            # Two starts, as the package's mode search: the prior median and a jittered copy.
            starts = jnp.stack([z0, z0 + 0.5 * jax.random.normal(k_start, z0.shape)])
            modes = jax.vmap(lambda s: _newton_mode(pot, s, newton_iters))(starts)
            energies = jax.vmap(pot)(modes)
            mode = modes[jnp.argmin(jnp.where(jnp.isfinite(energies), energies, jnp.inf))]
            cov = _inverse_pd(jax.hessian(pot)(mode))
            chol = jnp.linalg.cholesky(cov)
            chol = jnp.where(jnp.isfinite(chol), chol, jnp.eye(dim))
            u0 = 0.5 * jax.random.normal(k_init, (chains, dim))
            states, window, wdiv, wsteps = run.probe(jax.random.split(k_run, chains), u0, (o,), mode, chol)
            if rewhiten:
                # every replication is whitened again by its chains' probe, as a fit does where the Laplace
                # approximation misses (valid whatever the misfit: the whitening is part of the warm-up)
                mode, chol, probed = probe_rewhitened(run, k_run, 0, window, states.z, (o,), mode, chol)
                states, window, wdiv, wsteps = probed
            states, _, _ = run.warm_rest(states, wdiv, wsteps, (o,), mode, chol)
            u, div, steps, _, _, step_size = run.draw(states, (o,), mode, chol)
            if again is not None:
                inverse_mass = states.adapt_state.inverse_mass_matrix
                u_stop = u[:, draws // run.chunks - 1]
                states, _, _ = rewarm(again, k_run, u_stop, inverse_mass, step_size, ((o,), mode, chol))
                u, div, steps, *_ = again.draw(states, (o,), mode, chol)
            z = mode + u @ chol.T  # (chains, draws, dim)
            constrained = jax.vmap(
                jax.vmap(lambda zz: constrain_fn(model, (o,), {}, unravel(zz), return_deterministic=True))
            )(z)
            return {k: constrained[k] for k in self.sites}, div, steps

        self.fit_batch = jax.jit(jax.vmap(fit_one))

    def y_of(self, frame: pd.DataFrame) -> np.ndarray:
        """The padded log-loss array of one simulated dataset (same layout as the design)."""
        table = read_runs(frame, quiet=True)
        obs, _ = observed_from_table(table, self.targets, self.N0, self.D0, np.unique(table.model_size))
        if obs.y.shape != self.obs.y.shape or not np.array_equal(np.asarray(obs.mask), np.asarray(self.obs.mask)):
            raise ValueError("a simulated dataset does not match the SBC design (rows dropped by the reader?)")
        return np.asarray(obs.y)


def _engine(key: tuple, args: tuple) -> _Engine:
    """This process's compiled engine for ``key`` (built from ``args`` the first time): the compile is most of the
    cost, so every call on the same design reuses it."""
    engine = _ENGINES.get(key)
    if engine is None:
        law, table, targets, chains, warmup, draws, target_accept, max_tree_depth, checkpoints, warm_retry, rewhiten = (
            args
        )
        engine = _ENGINES[key] = _Engine(
            law,
            table,
            targets,
            chains,
            warmup,
            draws,
            target_accept,
            max_tree_depth,
            checkpoints=checkpoints,
            warm_retry=warm_retry,
            rewhiten=rewhiten,
        )
    return engine


def _fit_batch(task: tuple) -> tuple[dict, np.ndarray, np.ndarray]:
    """One batch of replications (a task of an executor): posterior draws by site, divergences and tree sizes."""
    key, args, ys, keys, message = task
    t0 = time.perf_counter()
    post, div, steps = _engine(key, args).fit_batch(jnp.asarray(ys), jnp.asarray(keys))
    if message:
        print(f"  {message}: {time.perf_counter() - t0:.0f} s", flush=True)
    return {k: np.asarray(v) for k, v in post.items()}, np.asarray(div), np.asarray(steps)


def sbc(
    law: str | Law,
    replications: int = 100,
    *,
    design: pd.DataFrame | None = None,
    targets: Sequence[str] | None = None,
    chains: int = 2,
    warmup: int = 200,
    draws: int = 200,
    n_ranks: int = 99,
    batch: int = 20,
    target_accept: float = 0.9,
    max_tree_depth: int = 8,
    seed: int = 0,
    perturb: float | None = None,
    progress: bool = False,
    warm_retry: float | None = None,
    rewhiten: bool = False,
) -> SBCResult:
    """Run simulation-based calibration for a law; return an :class:`SBCResult`.

    Each replication draws parameters from the law's default priors, simulates
    ``design`` (default: :func:`default_design`) with
    :func:`bayesmix.simulate.simulate_losses`, fits it with ``chains`` x
    ``draws`` NUTS draws, thins them to ``n_ranks`` and records the rank of
    every true scalar parameter. ``perturb`` (a negative control for tests)
    multiplies every simulated loss by ``exp(perturb)`` -- a misspecified
    model whose ranks must not look uniform. ``warm_retry`` (a target_accept,
    e.g. 0.99): rank the draws of a retry warm-started from each first run, as
    a fit retries a block that diverged. ``rewhiten``: whiten every
    replication again by its chains' first quarter of warm-up and warm up
    afresh, as a fit does where the Laplace approximation misses the posterior
    (the same code path, taken in every replication).
    """
    law = get_law(law) if isinstance(law, str) else law
    if design is None:
        design, default_targets = default_design(law, seed)
        targets = targets or default_targets
    domains = tuple(c[len("weight_") :] for c in design.columns if c.startswith("weight_"))
    targets = tuple(targets or domains)
    if chains * draws < n_ranks:
        raise ValueError(f"{chains} chains x {draws} draws give fewer than n_ranks={n_ranks} draws to rank among")
    t0 = time.perf_counter()
    # The model users get: a design of mid-schedule checkpoints is simulated and fitted with the checkpoint model.
    checkpoints = has_checkpoints(design)
    truth = prior_draws(law, domains, targets, replications, seed, checkpoints)
    frames = []
    for r in range(replications):
        frame = simulate_losses(law, design, targets, {k: v[r] for k, v in truth.items()}, seed=seed * 1_000_003 + r)
        if perturb:
            for t in targets:
                frame[f"{t}_loss"] *= math.exp(perturb)
        frames.append(frame)
    settings = (targets, chains, warmup, draws, target_accept, max_tree_depth, checkpoints, warm_retry, rewhiten)
    engine_args = (law, read_runs(frames[0], quiet=True)) + settings
    # the engine is compiled once per law, design and settings (the table itself is not hashable)
    key = (law.name, pd.util.hash_pandas_object(design, index=False).sum()) + settings
    engine = _engine(key, engine_args)
    ys = np.stack([engine.y_of(f) for f in frames])
    keys = np.asarray(jax.random.split(jax.random.PRNGKey(seed + 1), replications))

    coords = dims_coords(domains, targets)
    spec = all_params(law, domains, targets, checkpoints)
    take = np.linspace(0, chains * draws - 1, n_ranks).round().astype(int)  # evenly thinned draws
    rank_rows, run_rows = [], []
    starts = list(range(0, replications, batch))
    batches = []
    for start in starts:
        idx = np.arange(start, min(start + batch, replications))
        batches.append(np.concatenate([idx, np.full(batch - len(idx), idx[0])]))  # same shapes: compile once
    # Batches are independent: they run on the current executor (bayesmix.executor), each worker compiling once.
    tasks = [
        (
            key,
            engine_args,
            ys[pad],
            keys[pad],
            f"{law.name}: replications {s + 1}-{min(s + batch, replications)} of {replications}" if progress else None,
        )
        for s, pad in zip(starts, batches)
    ]
    fitted = current_executor().map(_fit_batch, tasks, labels=[f"replications {s + 1}-{s + batch}" for s in starts])
    for start, (post, div, steps) in zip(starts, fitted):
        idx = np.arange(start, min(start + batch, replications))
        for b, r in enumerate(idx):
            rhats = []
            for name in engine.sites:
                x = post[name][b]  # (chains, draws, ...)
                labels = scalar_names(name, x.shape[2:], [coords[d] for d in spec[name].dims])
                flat = x.reshape(chains * draws, -1)[take]
                true = np.ravel(truth[name][r])
                ranks = (flat < true[None]).sum(0)
                rank_rows += [
                    {"replication": int(r), "parameter": lab, "rank": int(k), "truth": float(t)}
                    for lab, k, t in zip(labels, ranks, true)
                ]
                rhats.append(_max_rhat(x.reshape(chains, draws, -1)))
            run_rows.append(
                {
                    "replication": int(r),
                    "divergences": int(div[b].sum()),
                    "max_rhat": float(np.max(rhats)),
                    "tree_depth_hits": int((steps[b] >= 2**max_tree_depth - 1).sum()),
                }
            )
    return SBCResult(
        law=law.name,
        ranks=pd.DataFrame(rank_rows),
        runs=pd.DataFrame(run_rows),
        n_draws=n_ranks,
        seconds=time.perf_counter() - t0,
        settings={
            "replications": replications,
            "chains": chains,
            "warmup": warmup,
            "draws": draws,
            "n_ranks": n_ranks,
            "targets": list(targets),
            "domains": list(domains),
            "rows": len(design),
            "seed": seed,
            "perturb": perturb,
        },
    )


def _max_rhat(x: np.ndarray) -> float:
    """Largest rank-normalised split R-hat over the scalars of a (chains, draws, P) block."""
    if x.shape[0] < 2:
        return float("nan")
    from arviz_stats.base import array_stats

    r = np.atleast_1d(array_stats.rhat(x, chain_axis=0, draw_axis=1, method="rank"))
    return float(np.nanmax(r))
