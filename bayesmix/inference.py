"""NUTS for any law: one block of targets at a time, in coordinates whitened by a Laplace approximation.

Scaling-law posteriors are narrow, strongly correlated ridges (each exponent
trades with its coefficient at correlations of -0.99 and beyond, the
irreducible loss with every additive term). What we do, and why:

1. **Blocks.** When no parameter is shared between targets (the model says so:
   see :func:`bayesmix.model.split_targets`), the posterior is a product over
   targets, and each target is sampled by its own NUTS run. Exact (independent
   chains of a product posterior are chains of the product), and: each target
   gets its own step size and mass matrix instead of the worst target's; the
   mode search works in ~20 dimensions instead of ~170 (where trust-region
   Newton needed more than 300 iterations); and a target whose chains do not
   mix shows up by name. Blocks with the same shapes share one compiled sampler,
   so eight targets cost one compilation.
2. **Mode and Laplace approximation.** Newton-Krylov trust-region steps from
   the prior median and ``laplace_starts - 1`` prior draws; the best mode
   wins. The inverse Hessian there is the Laplace covariance ``C = L L^T``.
3. **Whitened NUTS.** NUTS samples ``u`` with ``z = mode + L u`` (``z`` the
   unconstrained parameters), so the Laplace approximation is the unit normal.
   Why not simply hand ``C`` to NUTS as its mass matrix, as before: NUTS
   re-estimates the mass matrix in warm-up windows and regularises the
   estimate towards the identity, which inflates the variance of the narrow
   directions of a ridge with correlation -0.999 by orders of magnitude; the
   step size then collapses and every draw runs to maximum tree depth
   (measured: 70-200 leapfrog steps per draw on a 7-parameter block). In
   whitened coordinates "towards the identity" means "towards the Laplace
   approximation", which is harmless. The draws are exact MCMC draws of the
   posterior; the Laplace step only chooses coordinates and starting points.

Chains run in parallel (one XLA host device each, see ``bayesmix/__init__``)
when enough devices exist, otherwise vectorised. Everything is seeded by
``SamplerConfig.seed``: the same seed gives identical draws.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import scipy.optimize
from jax.flatten_util import ravel_pytree
from numpyro.distributions import biject_to
from numpyro.infer.hmc import hmc
from numpyro.infer.util import constrain_fn, potential_energy

from .diagnostics import RHAT_MAX, split_rhat_ess
from .executor import current as current_executor
from .model import Block, Observed

log = logging.getLogger("bayesmix")


@dataclass(frozen=True)
class SamplerConfig:
    """NUTS settings. Saved with every fit.

    ``dense_mass``: whiten by the dense Laplace covariance (True) or by its
    diagonal only (False); NUTS then adapts a diagonal mass matrix in the
    whitened coordinates. ``laplace_starts``: starting points of the mode
    search (the prior median, then prior draws); the whitening is only as good
    as the mode it is built at (SlimPajama's github target, additive law: the
    two starts of the old default stopped 28 nats above the mode that a third
    found, and NUTS then ran at 327 leapfrog steps per draw, against 43 from
    the better mode; four starts found the best of eight in all 8 targets, at
    1-2 s each). ``retry_target_accept``: a
    block whose draws diverged is sampled again, with the same key, at this
    target_accept (a smaller step follows the ridge a larger one fell off),
    and the rerun is kept when it diverges less without hitting the maximum
    tree depth in more than 1% of its draws; only the blocks that diverged
    pay for it. 0 (or a value not above ``target_accept``) turns it off.
    ``rewhiten``: how many times a block may be whitened again by its own
    warm-up when that shows the Laplace approximation missing the posterior
    (:func:`whitening_misfit`); 0 turns it off.
    """

    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    seed: int = 0
    target_accept: float = 0.9
    max_tree_depth: int = 10
    dense_mass: bool = True
    laplace_starts: int = 4
    retry_target_accept: float = 0.99
    rewhiten: int = 2

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def show_progress(progress: bool | None) -> bool:
    """Progress lines by default, never under CI (their output only clutters logs)."""
    if progress is None:
        return not os.environ.get("CI") and os.environ.get("BAYESMIX_PROGRESS", "1") != "0"
    return progress


# --------------------------------------------------------------------------- #
# Compiled pieces, cached per block signature
# --------------------------------------------------------------------------- #


class _Compiled(NamedTuple):
    unravel: Callable
    dim: int
    starts: Callable  # (key, n) -> (n, d) starting points of the mode search
    value_and_grad: Callable  # (z, args) -> (potential, grad)
    hvp: Callable  # (z, v, args) -> Hessian-vector product
    hessian: Callable  # (z, args) -> (d, d), as HVPs against the identity
    constrain: Callable  # (Z (S, d), args) -> site -> (S, ...)
    # The same two for the law's own parameters' density (``model.coordinate_log_jacobian``): a point estimate's
    # objective. None where the sampled coordinates change no volume (then the potential is that density).
    point_value_and_grad: Callable | None = None
    point_hvp: Callable | None = None


_COMPILED: dict[Any, _Compiled] = {}
_RUNNERS: dict[Any, Callable] = {}


def clear_compiled() -> None:
    """Drop the compiled mode searches and samplers (see :func:`bayesmix.clear_caches`)."""
    _COMPILED.clear()
    _RUNNERS.clear()


def _few_rows(args: tuple) -> tuple:
    """The model's data cut to two rows: enough to trace the sites, cheap to run eagerly."""
    return tuple(a.head(2) if isinstance(a, Observed) else a for a in args)


def _latent_sites(model: Callable, args: tuple) -> dict[str, Any]:
    """site name -> prior distribution of every latent site.

    Models from :func:`bayesmix.model.make_model` list them (``model.prior_sites``);
    any other model is traced once on a two-row copy of its data (eager JAX
    compiles every primitive on first use, so a trace over the full data costs
    seconds).
    """
    listed = getattr(model, "prior_sites", None)
    if listed is not None:
        return dict(listed)
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, jax.random.PRNGKey(0))).get_trace(*_few_rows(args))
    return {name: s["fn"] for name, s in tr.items() if s["type"] == "sample" and not s["is_observed"]}


def _compiled(model: Callable, args: tuple, signature: Any) -> _Compiled:
    if signature is not None and signature in _COMPILED:
        return _COMPILED[signature]
    sites = _latent_sites(model, args)

    median_start: list = []  # computed once per signature: it depends on the priors only

    def starts(key, n):
        """(n, d): the prior median of every site, then n - 1 prior draws, unconstrained.

        Eager, not jitted: compiling the sampling code took longer (measured)
        than running it op by op."""
        keys = jax.random.split(key, n)
        rows = []
        for i in range(n):
            if i == 0 and median_start:
                rows.append(median_start[0])
                continue
            z = {}
            for name, fn in sites.items():
                if i == 0:
                    value = jnp.median(fn.sample(jax.random.PRNGKey(0), (101,)), axis=0)
                    if "simplex" in type(getattr(fn.support, "base_constraint", fn.support)).__name__.lower():
                        value = value / value.sum(-1, keepdims=True)
                else:
                    value = fn.sample(jax.random.fold_in(keys[i], len(z)))
                z[name] = biject_to(fn.support).inv(value)
            rows.append(np.asarray(ravel_pytree(z)[0], dtype=np.float64))
            if i == 0:
                median_start.append(rows[0])
        return np.stack(rows)

    z_template = {name: biject_to(fn.support).inv(fn.sample(jax.random.PRNGKey(0))) for name, fn in sites.items()}
    flat, unravel = ravel_pytree(z_template)

    def potential(z, a):
        return potential_energy(model, a, {}, unravel(z))

    auxiliary = getattr(model, "auxiliary_sites", frozenset())

    def constrain(Z, a):
        """The parameters at unconstrained points Z: sampled and deterministic sites, less the model's auxiliary
        coordinates (``model.auxiliary_sites``)."""

        def one(z):
            sites = constrain_fn(model, a, {}, unravel(z), return_deterministic=True)
            return {k: v for k, v in sites.items() if k not in auxiliary}

        return jax.vmap(one)(Z)

    def hvp(z, v, a):
        return jax.jvp(lambda q: jax.grad(potential)(q, a), (z,), (v,))[1]

    log_jacobian = getattr(model, "coordinate_log_jacobian", None)
    point = {}
    if log_jacobian is not None:

        def point_potential(z, a):
            """The potential less the log volume of the sampled coordinates: the density of the parameters."""
            sites = constrain_fn(model, a, {}, unravel(z), return_deterministic=True)
            return potential(z, a) - log_jacobian(sites)

        def point_hvp(z, v, a):
            return jax.jvp(lambda q: jax.grad(point_potential)(q, a), (z,), (v,))[1]

        point = {"point_value_and_grad": jax.jit(jax.value_and_grad(point_potential)), "point_hvp": jax.jit(point_hvp)}

    dim = int(flat.shape[0])
    out = _Compiled(
        unravel,
        dim,
        starts,
        jax.jit(jax.value_and_grad(potential)),
        jax.jit(hvp),
        jax.jit(lambda z, a: jax.vmap(lambda v: hvp(z, v, a))(jnp.eye(dim))),
        jax.jit(constrain),
        **point,
    )
    if signature is not None:
        _COMPILED[signature] = out
    return out


def find_mode(
    comp: _Compiled, args: tuple, starts: Sequence[np.ndarray], point: bool = False
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Posterior mode in unconstrained space from several starts, and the Laplace covariance there.

    Returns (mode, covariance, potential energy at the mode). The best start
    by potential energy wins. ``point``: the mode of the law's parameters'
    density instead of the sampled coordinates' (they differ where a
    coordinate is a product, ``Param.scaled_by``, whose volume pulls the
    coordinates' mode into a corner: measured on the joint law, exponents of
    2-3 at a hold-out's mode); no covariance is computed then (None). Newton-Krylov trust region with exact
    Hessian-vector products: the ridges of these posteriors defeat (L-)BFGS
    (measured: 5000 L-BFGS iterations stopped 25 nats short of the mode that
    100-300 trust-region steps reach), and so do Hessian-vector products by
    finite differences of the gradient (measured on SlimPajama's github
    target: the trust region stalled 26 nats short of the mode, and the
    whitening built there sent NUTS to its maximum tree depth on every draw).
    """

    point = point and comp.point_value_and_grad is not None
    value_and_grad = comp.point_value_and_grad if point else comp.value_and_grad
    hvp = comp.point_hvp if point else comp.hvp

    def fun(z):
        v, g = value_and_grad(jnp.asarray(z), args)
        return float(v), np.asarray(g, dtype=np.float64)

    def hessp(z, v):
        return np.asarray(hvp(jnp.asarray(z), jnp.asarray(v), args), dtype=np.float64)

    best = None
    for z0 in starts:
        try:
            res = scipy.optimize.minimize(
                fun, z0, jac=True, method="trust-krylov", hessp=hessp, options={"maxiter": 1000}
            )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:  # a start with no finite energy
            log.debug("mode search from one start failed: %s", err)
            continue
        if np.isfinite(res.fun) and (best is None or res.fun < best[0]):
            best = (float(res.fun), np.asarray(res.x, dtype=np.float64))
    if best is None:
        raise FloatingPointError("the posterior mode search gave no finite energy from any start")
    z = best[1]
    if point:
        return z, None, best[0]
    hess = np.asarray(comp.hessian(jnp.asarray(z), args), dtype=np.float64)
    return z, _inverse_pd(hess), best[0]


# No posterior direction is wider than this (unconstrained units: the default
# priors have sd of at most ~1.4 on the log scale), so a flatter direction of
# the Hessian means the mode search stopped on a ridge, and whitening by it
# would hand NUTS a scale hundreds of times too large.
MAX_LAPLACE_VARIANCE = 4.0


def _inverse_pd(hess: np.ndarray, floor: float = 1.0 / MAX_LAPLACE_VARIANCE) -> np.ndarray:
    """Inverse of a symmetric matrix with eigenvalues floored: a usable covariance even off-mode."""
    hess = 0.5 * (hess + hess.T)
    vals, vecs = np.linalg.eigh(hess)
    vals = np.maximum(vals, floor)
    return (vecs / vals) @ vecs.T


# --------------------------------------------------------------------------- #
# The NUTS runner
# --------------------------------------------------------------------------- #


class Programs(NamedTuple):
    """A block's compiled NUTS steps. The target acceptance is an argument, not a constant, so a retry at a higher
    one runs the first try's programs; the iterations come from one program per scan length (the warm-up after the
    kernel's set-up, and the draws: numpyro's kernel adapts while its iteration count is below the warm-up's length
    and not after), so a block with the default settings compiles one scan, its set-up and, if it is retried from
    where its first try ended, that warm start.

    ``init(keys (C,), u0 (C, d), target_accept, args, mode, chol)`` -> the chains' states before their first
    iteration; ``scan(length)`` -> the program ``(states, target_accept, args, mode, chol)`` -> (the states
    ``length`` iterations on, (u (C, length, d), diverging, num_steps, energy, accept_prob) of them);
    ``rewarm(keys, u0, inverse_mass (C, d), step_size (C,), target_accept, args, mode, chol)`` -> (the states after
    :data:`REWARM` iterations that adapt only the step size, from chains already in the posterior with their mass
    matrices kept (a retry's warm start), their iteration count set to the warm-up's end so that the draws'
    program does not adapt; (C,) divergences in its second half; (C,) leapfrog steps).
    """

    init: Callable
    scan: Callable[[int], Callable]
    rewarm: Callable


class Runner(NamedTuple):
    """NUTS on a whitened block as compiled steps at one target acceptance, so that a profile can time warm-up and
    draws apart and a fit can look at its chains between them.

    ``probe(keys (C,), u0 (C, d), args, mode, chol)`` -> (the chains' states after the first ``probe_length``
    iterations of the warm-up, u (C, W, d) of their last ``W`` iterations (where the whitening is checked:
    :func:`whitening_misfit`), diverging (C, probe_length), num_steps (C, probe_length));
    ``chunk(states, args, mode, chol)`` -> (the chains' states after ``chunk_length`` more iterations, (u (C, s, d),
    diverging, num_steps, energy, accept_prob) of them): the rest of the warm-up where it comes in chunks, and the
    draws, which come in chunks so that a first try can stop at its first divergence (a retry replaces it) and go on
    from there if the retry is not kept;
    ``rewarm(keys, u0, inverse_mass (C, d), step_size (C,), args, mode, chol)`` -> (states, late divergences,
    leapfrog steps), as :meth:`warm_rest`, but from chains already in the posterior with their mass matrices kept:
    only the step size adapts, for :data:`REWARM` iterations (a retry's warm start); :meth:`draw` goes on from it.
    :meth:`warm` runs the probe and the rest of the warm-up, :meth:`draw` every chunk; calling the runner does both
    (as SBC does inside its own jit). ``_replace(target_accept=...)`` gives the same programs at another target.
    """

    programs: Programs
    target_accept: float
    chunks: int
    warmup: int
    probe_length: int
    chunk_length: int
    window: int
    rest: tuple[int, ...]  # the scans' lengths of the warm-up after the probe

    def probe(self, keys, u0, args, mode, chol):
        """The warm-up's first ``probe_length`` iterations from ``u0``: (states, u of the last window, diverging,
        num_steps)."""
        states = self.programs.init(keys, u0, self.target_accept, args, mode, chol)
        states, (u, div, steps, _, _) = self.programs.scan(self.probe_length)(
            states, self.target_accept, args, mode, chol
        )
        return states, u[:, -self.window :], div, steps

    def chunk(self, states, args, mode, chol):
        """``chunk_length`` more iterations: (states, (u, diverging, num_steps, energy, accept_prob))."""
        return self.programs.scan(self.chunk_length)(states, self.target_accept, args, mode, chol)

    def rewarm(self, keys, u0, inverse_mass, step_size, args, mode, chol):
        """A retry's warm start (see :class:`Programs`)."""
        return self.programs.rewarm(keys, u0, inverse_mass, step_size, self.target_accept, args, mode, chol)

    def warm_rest(self, states, diverging, num_steps, args, mode, chol):
        """The warm-up after the probe: (states, (C,) divergences in the second half of the warm-up, where the mass
        matrix has mostly settled (each window restarts the step size, so a transient divergence is expected even on
        a Gaussian): recorded to learn whether a retry could be decided from warm-up; (C,) leapfrog steps of the
        whole warm-up, the work a shorter warm-up would save). ``diverging``, ``num_steps``: the probe's."""
        divs, steps = [diverging], [num_steps]
        for length in self.rest:
            states, out = self.programs.scan(length)(states, self.target_accept, args, mode, chol)
            divs.append(out[1])
            steps.append(out[2])
        cat = np.concatenate if isinstance(diverging, np.ndarray) else jnp.concatenate
        div, n = cat(divs, axis=1), cat(steps, axis=1)
        return states, jnp.sum(div[:, self.warmup // 2 :], axis=1), jnp.sum(n, axis=1)

    def warm(self, keys, u0, args, mode, chol):
        """The whole warm-up from ``u0``: (states, late divergences (C,), leapfrog steps (C,)), as :meth:`warm_rest`."""
        states, _, div, steps = self.probe(keys, u0, args, mode, chol)
        return self.warm_rest(states, div, steps, args, mode, chol)

    def draw(self, states, args, mode, chol):
        """All draws from the warmed-up ``states``: (u (C, S, d), diverging, num_steps, energy, accept_prob,
        step_size (C,)), the same draws as one scan (each chunk goes on from the last one's state and key)."""
        parts = []
        for _ in range(self.chunks):
            states, out = self.chunk(states, args, mode, chol)
            parts.append(out)
        return join_chunks(parts) + (states.adapt_state.step_size,)

    def __call__(self, keys, u0, args, mode, chol):
        return self.draw(self.warm(keys, u0, args, mode, chol)[0], args, mode, chol)


def join_chunks(parts: Sequence[tuple]) -> tuple:
    """Chunks of draws (each a tuple of (C, s, ...) arrays) joined along the draw axis."""
    if len(parts) == 1:
        return tuple(parts[0])
    cat = np.concatenate if isinstance(parts[0][0], np.ndarray) else jnp.concatenate
    return tuple(cat(xs, axis=1) for xs in zip(*parts, strict=True))


# A first try's draws come in this many chunks (where the draws divide evenly; one chunk otherwise): it stops at the
# end of the first chunk with a divergence, a quarter of its draws on average where divergences are spread evenly.
DRAW_CHUNKS = 4


def draw_chunks(draws: int) -> int:
    """How many chunks ``draws`` draws per chain come in: :data:`DRAW_CHUNKS` where they divide evenly, else 1."""
    return DRAW_CHUNKS if draws % DRAW_CHUNKS == 0 and draws >= DRAW_CHUNKS else 1


class CompileClock:
    """Seconds JAX spends tracing, lowering and compiling while the clock is open (from ``jax.monitoring``),
    so that a block's wall time splits into compilation and running."""

    PREFIX = "/jax/core/compile/"

    def __enter__(self) -> "CompileClock":
        self.seconds = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def _listen(self, event: str, duration: float, **_: Any) -> None:
        if event.startswith(self.PREFIX):
            self.seconds += duration

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)


def _runner(
    model: Callable, unravel: Callable, dim: int, config: SamplerConfig, parallel: bool, signature: Any
) -> Runner:
    """The compiled NUTS of a block (:class:`Runner`) at ``config.target_accept``: warm-up, then draws in whitened
    space and statistics. Its programs are shared by every target acceptance (cached under ``signature``)."""
    chunks = draw_chunks(config.draws)
    chunk_length = config.draws // chunks
    # the warm-up goes on in the draws' chunks where it divides into them and a chunk is at least a quarter of it
    # (the probe is then one chunk long): one scan program in all
    by_chunks = config.warmup % chunk_length == 0 and 2 * chunk_length <= config.warmup <= 4 * chunk_length
    probe_length = chunk_length if by_chunks else (config.warmup // 4 if config.warmup >= 8 else config.warmup)
    window = max(1, (2 * probe_length) // 5)  # numpyro's third window ends at 250 of 1000, after 100 iterations
    left = config.warmup - probe_length
    rest = (chunk_length,) * (left // chunk_length) if by_chunks else (left,) if left else ()
    key = (signature, dim, config.warmup, config.draws, config.max_tree_depth, config.chains, parallel)
    programs = _RUNNERS.get(key) if signature is not None else None
    if programs is None:
        programs = _programs(model, unravel, dim, config, parallel)
        if signature is not None:
            _RUNNERS[key] = programs
    return Runner(programs, config.target_accept, chunks, config.warmup, probe_length, chunk_length, window, rest)


def _programs(model: Callable, unravel: Callable, dim: int, config: SamplerConfig, parallel: bool) -> Programs:
    """The compiled steps of :class:`Programs` for one block shape and warm-up length."""

    def potential_gen(args, mode, chol):
        return lambda u: potential_energy(model, args, {}, unravel(mode + chol @ u))

    def kernel(u0, target_accept, margs, rng_key, num_warmup=None, inverse_mass=None, step_size=1.0):
        """numpyro's NUTS set up from ``u0`` (its initial state, and its kernel). Without ``inverse_mass``: from the
        whitening alone, adapting a diagonal mass matrix and the step size. With it (a retry's warm start): that mass
        matrix is kept and only the step adapts, for ``num_warmup`` iterations."""
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        state = init_kernel(
            u0,
            config.warmup if num_warmup is None else num_warmup,
            step_size=step_size,
            # Whitened coordinates: unit scales, and a unit step is the right
            # start. Only a diagonal mass matrix is adapted: a dense one
            # estimated from one warm-up window (25-100 draws in ~20
            # dimensions) was worse than the whitening it refined (measured:
            # 161 against 16 leapfrog steps per draw).
            inverse_mass_matrix=jnp.ones(dim) if inverse_mass is None else inverse_mass,
            adapt_mass_matrix=inverse_mass is None,
            dense_mass=False,
            target_accept_prob=target_accept,
            max_tree_depth=config.max_tree_depth,
            find_heuristic_step_size=True,
            model_args=margs,
            rng_key=rng_key,
        )
        return state, sample_kernel

    def init_chain(rng, u0, target_accept, args, mode, chol):
        return kernel(u0, target_accept, (args, mode, chol), rng)[0]

    def scan_chain(length):
        def run(state, target_accept, args, mode, chol):
            """numpyro's kernel keeps what init_kernel set up in its closure, so this program sets up a kernel of its
            own with the same settings and goes on from the state: while its iteration count is within the warm-up
            it adapts as one program doing all would, past it nothing adapts, and its key continues the chain's
            stream (the same draws as one program doing all)."""
            margs = (args, mode, chol)
            _, step = kernel(state.z, target_accept, margs, state.rng_key)

            def one(s, _):
                s = step(s, model_args=margs)
                return s, (s.z, s.diverging, s.num_steps, s.energy, s.accept_prob)

            return jax.lax.scan(one, state, None, length=length)

        return run

    def rewarm_chain(rng, u0, inverse_mass, step_size, target_accept, args, mode, chol):
        margs = (args, mode, chol)
        state, step = kernel(u0, target_accept, margs, rng, REWARM, inverse_mass, step_size)

        def one(s, _):
            s = step(s, model_args=margs)
            return s, (s.diverging, s.num_steps)

        state, (div, steps) = jax.lax.scan(one, state, None, length=REWARM)
        # the draws' program knows the whole warm-up's length: past it nothing adapts
        state = state._replace(i=jnp.asarray(config.warmup, dtype=state.i.dtype))
        return state, jnp.sum(div[REWARM // 2 :]), jnp.sum(steps)

    def compiled(fn, in_axes):
        return jax.pmap(fn, in_axes=in_axes) if parallel else jax.jit(jax.vmap(fn, in_axes=in_axes))

    scans: dict[int, Callable] = {}

    def scan(length: int) -> Callable:
        if length not in scans:
            scans[length] = compiled(scan_chain(length), (0, None, None, None, None))
        return scans[length]

    return Programs(
        compiled(init_chain, (0, 0, None, None, None, None)),
        scan,
        compiled(rewarm_chain, (0, 0, 0, 0, None, None, None, None)),
    )


def rewarm(run: Runner, k_run: jax.Array, u_last, inverse_mass, step_size, margs: tuple):
    """A retry's warm start (``run.rewarm``) from a first run's chains' last draws ``u_last`` (C, d), their mass
    matrices and step sizes, on a key stream of its own: the first run's chains already used ``k_run``'s."""
    keys = jax.random.split(jax.random.fold_in(k_run, 1), u_last.shape[0])
    return run.rewarm(keys, u_last, inverse_mass, step_size, *margs)


# The whitening misses the posterior when the chains, a quarter into the warm-up, sit this many whitened units from
# the mode or spread this many times wider or narrower than the Laplace approximation (SlimPajama up to 1.235B,
# additive law: 1.2-3.9 in six targets, 29 in openhermes and 417 in wikipedia, whose mode is a narrow spike 25
# nats deeper than the bulk of its posterior; measurements in docs/speed.md).
MISFIT = 5.0
# Iterations per chain the misfit and a new whitening rest on, at least: a short warm-up's probe (the built-in tests'
# 30 iterations leave 2 per chain) measures noise, and its covariance would whiten by it.
MIN_WINDOW = 25


def whitening_misfit(u: np.ndarray) -> float:
    """How far a whitening misses where the chains are: the largest |mean|, sd or 1/sd over the whitened coordinates
    of the chains' pooled iterations ``u`` (C, W, d). About 1 where the whitening fits."""
    flat = u.reshape(-1, u.shape[-1])
    sd = flat.std(axis=0)
    if not np.all(np.isfinite(flat)):
        return float("nan")
    return float(max(np.abs(flat.mean(axis=0)).max(), sd.max(), (1.0 / np.maximum(sd, 1e-12)).max()))


def rewhitened(u, mode, chol, u_last):
    """(centre, Cholesky factor, the chains' last positions in the new coordinates) of a whitening by the mean and
    covariance of the chains' pooled iterations ``u`` (C, W, d) in the whitening (``mode``, ``chol``). The
    covariance is shrunk towards its diagonal by d / (n + d) for n pooled iterations: a few hundred autocorrelated
    iterations pin the scales well and the correlations less so. JAX arrays (traceable, as SBC runs it inside its
    own jit); a factorisation that fails falls back to the diagonal."""
    u = jnp.asarray(u)
    flat = u.reshape(-1, u.shape[-1])
    n, d = flat.shape
    mean = flat.mean(axis=0)
    dev = flat - mean
    cov = dev.T @ dev / max(n - 1, 1)
    shrink = d / (n + d)
    diag = jnp.diag(jnp.diag(cov))
    factor = jnp.linalg.cholesky((1.0 - shrink) * cov + shrink * diag)
    factor = jnp.where(jnp.all(jnp.isfinite(factor)), factor, jnp.sqrt(jnp.maximum(diag, 1e-12)))
    new_u = jax.scipy.linalg.solve_triangular(factor, (jnp.asarray(u_last) - mean).T, lower=True).T
    return mode + chol @ mean, chol @ factor, new_u


def probe_rewhitened(run: Runner, k_run: jax.Array, attempt: int, window, u_last, args: tuple, mode, chol):
    """The warm-up's probe again, from the chains' positions ``u_last`` (C, d), in a whitening by the last probe's
    ``window`` (see :func:`rewhitened`), on a key stream of its own for each ``attempt`` (0, 1, ...): (centre,
    Cholesky factor, what ``run.probe`` returns). The fit takes this step where :func:`whitening_misfit` says the
    whitening misses (with host arrays: a pmapped probe's outputs are sharded over its devices), SBC in every
    replication (``sbc(rewhiten=True)``); traceable."""
    mode, chol, u0 = rewhitened(window, mode, chol, u_last)
    keys = jax.random.split(jax.random.fold_in(k_run, attempt + 2), u0.shape[0])
    return mode, chol, run.probe(keys, u0, args, mode, chol)


def _sample_block(
    block: Block,
    config: SamplerConfig,
    key: jax.Array,
    parallel: bool,
    length: float | None = None,
    start: dict | None = None,
    keep_start: bool = False,
    stop_early: bool = False,
    whitening: dict | None = None,
) -> tuple[dict | None, dict | None, dict]:
    """One block's mode search, warm-up and draws: (draws, extra fields, info).

    ``length``: for a retry, the first run's trajectory length (its mean leapfrog steps times its step size). When
    the retry's adapted step size makes that length take over half the maximum tree size, its draws would sit at
    the maximum depth: the retry stops after its warm-up and returns (None, None, info with ``aborted``).

    ``start``: a first run's ``info["_start"]`` (its whitening, its chains' last draws, mass matrices and step
    sizes): the run reuses that whitening and starts its chains there, and its warm-up of ``REWARM`` iterations
    adapts only the step size (a retry's warm start). ``keep_start``: ``info["_start"]`` holds this run's, for a
    retry (live arrays and compiled functions: the caller pops it before the info is kept).

    ``stop_early``: a first try stops drawing at the end of the first chunk of draws (:data:`DRAW_CHUNKS`) with a
    divergence, as a retry will replace it. Its info then says ``stopped_after`` (draws per chain) and holds
    ``_resume``, which draws the rest from where it stopped and returns the whole run: the same draws as a run that
    never stopped (the caller pops it, as ``_start``).

    ``whitening``: a first run's ``info["_start"]`` for a retry from scratch: its mode search and whitening are
    reused (the same key finds the same mode) and the warm-up starts afresh.

    A quarter into the warm-up the chains' last iterations show whether the whitening fits the posterior
    (:func:`whitening_misfit`); where it does not, the block is whitened again by those iterations and its warm-up
    starts over from where the chains are (:func:`rewhitened`), at most ``config.rewhiten`` times. ``info["mode"]``
    stays the mode the search found.
    """
    k_start, k_init, k_run = jax.random.split(key, 3)
    t0 = time.perf_counter()
    with CompileClock() as mode_compile:
        if start is None and whitening is None:
            comp = _compiled(block.model, block.args, block.signature)
            starts = list(np.asarray(comp.starts(k_start, max(1, config.laplace_starts)), dtype=np.float64))
            mode, cov, energy = find_mode(comp, block.args, starts)
            chol = np.linalg.cholesky(cov) if config.dense_mass else np.diag(np.sqrt(np.diag(cov)))
            found = mode
        else:
            given = start if start is not None else whitening
            comp, mode, chol, found = given["comp"], given["mode"], given["chol"], given["found"]
    t_mode = time.perf_counter() - t0

    run = _runner(block.model, comp.unravel, comp.dim, config, parallel, block.signature)
    margs = (block.args, jnp.asarray(mode), jnp.asarray(chol))
    misfits: list[float] = []  # how far the whitening missed, each time the block was whitened again
    with CompileClock() as warm_compile:
        t1 = time.perf_counter()
        if start is None:
            # Chains start over the Laplace approximation, shrunk (its tails can reach
            # the extreme prior region of a skewed posterior).
            u0 = 0.5 * jax.random.normal(k_init, (config.chains, comp.dim))
            keys = jax.random.split(k_run, config.chains)
            states, window, div, steps = jax.block_until_ready(run.probe(keys, u0, *margs))
            checked = run.probe_length < run.warmup and window.shape[1] >= MIN_WINDOW
            for again in range(config.rewhiten if checked else 0):
                window = np.asarray(window)
                miss = whitening_misfit(window)
                if not miss > MISFIT:
                    break
                misfits.append(round(miss, 1))
                mode, chol, probed = probe_rewhitened(run, k_run, again, window, np.asarray(states.z), *margs)
                states, window, div, steps = jax.block_until_ready(probed)
                mode, chol = np.asarray(mode), np.asarray(chol)
                margs = (block.args, jnp.asarray(mode), jnp.asarray(chol))
            states, warm_div, warm_steps = jax.block_until_ready(run.warm_rest(states, div, steps, *margs))
        else:
            states, warm_div, warm_steps = jax.block_until_ready(
                rewarm(run, k_run, start["u"], start["inverse_mass"], start["step_size"], margs)
            )
        t_warm = time.perf_counter() - t1
    t_warm = max(t_warm - warm_compile.seconds, 0.0)
    if length is not None:
        expected = length / float(np.median(np.asarray(states.adapt_state.step_size)))
        if expected >= 2 ** (config.max_tree_depth - 1):
            return None, None, {
                "block": block.label,
                "mode_seconds": round(t_mode, 3),
                "nuts_seconds": round(warm_compile.seconds + t_warm, 3),
                "aborted": (
                    f"after its warm-up the step size put the first run's trajectories at about {expected:.0f} "
                    f"leapfrog steps, past half the maximum tree size ({2**config.max_tree_depth - 1})"
                ),
            }  # fmt: skip
    warm_length = REWARM if start is not None else config.warmup
    parts: list[tuple] = []  # the chunks of draws so far (numpy)
    clock = {"draw": 0.0, "compile": warm_compile.seconds}

    def drawing(stop: bool) -> None:
        """Draw chunks until every one is drawn or, with ``stop``, until one that diverged and is not the last."""
        nonlocal states
        while len(parts) < run.chunks:
            with CompileClock() as draw_compile:
                t2 = time.perf_counter()
                states, out = run.chunk(states, *margs)
                parts.append(tuple(np.asarray(x) for x in out))  # blocks until the draws exist (async dispatch)
                seconds = time.perf_counter() - t2
            clock["draw"] += max(seconds - draw_compile.seconds, 0.0)
            clock["compile"] += draw_compile.seconds
            if stop and np.any(parts[-1][1]) and len(parts) < run.chunks:
                return

    def finish(keep: bool) -> tuple[dict, dict, dict]:
        u, div, steps, en, acc = join_chunks(parts)
        step_size = np.asarray(states.adapt_state.step_size)
        z = mode + u @ chol.T
        C, S = z.shape[:2]
        sites = comp.constrain(jnp.asarray(z.reshape(C * S, -1)), block.args)
        draws = {k: np.asarray(v).reshape((C, S) + v.shape[1:]) for k, v in sites.items()}
        extra = {"diverging": div, "num_steps": steps, "energy": en, "accept_prob": acc}
        rhat, ess_bulk, ess_tail = block_convergence(draws)
        t_draw = clock["draw"]
        info = {
            "block": block.label,
            "dim": comp.dim,
            "mode_seconds": round(t_mode, 3),  # with compiling the mode search, mode_compile_seconds of it
            "mode_compile_seconds": round(mode_compile.seconds, 3),
            "nuts_seconds": round(clock["compile"] + t_warm + t_draw, 3),
            "compile_seconds": round(clock["compile"], 3),
            "warmup_seconds": round(t_warm, 3),
            "sampling_seconds": round(t_draw, 3),
            "step_size": [round(float(s), 5) for s in step_size],
            "mean_steps": round(float(np.mean(steps)), 2),
            "warmup_mean_steps": round(float(np.sum(warm_steps)) / (config.chains * max(warm_length, 1)), 2),
            "divergences": int(np.sum(div)),
            "late_warmup_divergences": int(np.sum(warm_div)),
            "depth_hits": int(np.sum(steps >= 2**config.max_tree_depth - 1)),
            "max_rhat": round(rhat, 4),
            "min_ess_bulk": round(ess_bulk, 1),
            "min_ess_tail": round(ess_tail, 1),
            # draws' worth per second of the block's own NUTS (compilation left out: it is paid once per shape)
            "ess_per_second": round(min(ess_bulk, ess_tail) / max(t_warm + t_draw, 1e-9), 2),
            # the unconstrained mode the whitening is centred at: where refits of nearby data start (posterior_mode)
            "mode": [float(x) for x in found],
        }
        if misfits:
            info["rewhitened"] = misfits
        if S < config.draws:
            info["stopped_after"] = S  # draws per chain: the first try stopped at its first divergence
            info["_resume"] = resume
        if keep:
            info["_start"] = {
                "comp": comp,
                "mode": mode,
                "chol": chol,
                "found": found,
                "u": jnp.asarray(u[:, -1]),
                "inverse_mass": states.adapt_state.inverse_mass_matrix,
                "step_size": jnp.asarray(step_size),
            }
        if start is not None:
            info["warm_start"] = REWARM
        return draws, extra, info

    def resume() -> tuple[dict, dict, dict]:
        drawing(stop=False)
        return finish(keep=False)

    drawing(stop=stop_early)
    return finish(keep_start)


def block_convergence(draws: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """(max R-hat, min bulk ESS, min tail ESS) over every sampled scalar of one block's draws (chain, draw, ...)."""
    flat = np.concatenate([v.reshape(v.shape[:2] + (-1,)) for v in draws.values()], axis=-1)
    moving = ~np.all(flat == flat[:1, :1], axis=(0, 1))
    if flat.shape[0] * flat.shape[1] < 8 or not moving.any():
        return float("nan"), float("nan"), float("nan")
    r, b, t = split_rhat_ess(flat[..., moving])
    return float(np.max(r)), float(np.min(b)), float(np.min(t))


PARTS = ("compile", "warmup", "sampling")


def discarded_seconds(b: dict) -> float:
    """Seconds a block spent on a run it threw away: a first try a retry replaced, or a retry not kept."""
    return b.get("first_seconds", 0.0) + b.get("retried_seconds", 0.0) + b.get("warm_retry_seconds", 0.0)


def _block_seconds(b: dict) -> float:
    """A block's wall time, with a first try or a retry that was not kept."""
    return b["mode_seconds"] + b["nuts_seconds"] + discarded_seconds(b)


# Warm-up iterations of a warm-started retry (step size only; see _sample_block's ``start``): numpyro's windows
# restart the step size until the last 10%, as in a full warm-up.
REWARM = 250

# How far two runs' R-hats may differ by chance alone (4 chains, an ESS of a few hundred): a retry that removes
# divergences is not turned down for an R-hat this much above the first run's.
RHAT_NOISE = 0.005


def keep_retry(first: dict, again: dict, n_draws: int) -> bool:
    """Whether a block's retry at a higher target_accept replaces its first run (the blocks' info dicts).

    Kept when it diverges less and still moves and mixes: a smaller step can send a slowly mixing block to the
    maximum tree depth, where its chains stop exploring (the built-in example's books target: 4 divergences at
    0.9; at 0.99 none, but 76% of draws at maximum depth and R-hat 1.26), or leave it at a fraction of the
    effective draws (SlimPajama's github target, additive law: 16 divergences in 4000 draws, R-hat 1.005 and
    ESS 533 at 0.9; at 0.99 one divergence, R-hat 1.025 and ESS 66). So the retry must also keep draws at the
    maximum depth under 1% (or as few as the first run), R-hat within max(the first run's, 1.01), and an ESS of
    at least half the first run's or 5% of the draws (200 of 4 x 1000: Monte Carlo error near 7% of a posterior
    sd). The second bound keeps an unbiased retry over a diverging first run that merely had more ESS to lose
    (RegMix's pubmed_central target, additive law: 8 divergences, R-hat 1.009 and ESS 673 at 0.9; at 0.99
    none, R-hat 1.007 and ESS 301). Draws at the maximum depth cost time, not validity: where the first run did
    not mix and the retry does, the retry is kept whatever its depth (SlimPajama's stackexchange target, additive
    law: 643 divergences, R-hat 1.346 and ESS 10 at 0.9; at 0.99 none, R-hat 1.005 and ESS 376, with 11% of its
    draws at the maximum depth, which the depth bound alone threw away).
    """
    if again["divergences"] >= first["divergences"]:
        return False
    rhat, rhat0 = again.get("max_rhat", np.nan), first.get("max_rhat", np.nan)
    ess = min(again.get("min_ess_bulk", np.nan), again.get("min_ess_tail", np.nan))
    ess0 = min(first.get("min_ess_bulk", np.nan), first.get("min_ess_tail", np.nan))
    if again["depth_hits"] > max(first["depth_hits"], 0.01 * n_draws) and not (
        _mixed(rhat, ess, n_draws) and not _mixed(rhat0, ess0, n_draws)
    ):
        return False
    if np.isfinite(rhat) and np.isfinite(rhat0) and rhat > max(rhat0, RHAT_MAX) + RHAT_NOISE:
        return False
    return not (np.isfinite(ess) and np.isfinite(ess0) and ess < min(0.5 * ess0, 0.05 * n_draws))


def _warm_start_failed(first: dict, again: dict, n_draws: int) -> bool:
    """Whether a warm-started retry falls short where a retry from scratch could do better: it fails
    :func:`keep_retry` for its mixing (R-hat or ESS) alone, or it keeps half or more of the first run's divergences
    (SlimPajama's one-scale split, c4 block, additive law: 17 at 0.9, 16 after the warm start, 4 from scratch,
    whose warm-up adapts its mass matrix at the smaller step), at least 2 of them. Draws at the maximum tree depth
    are the smaller step's doing, which a retry from scratch shares (the Ye-like sweep's joint law: retries with
    11-127 draws at the maximum depth), so those are not run again."""
    if again["divergences"] >= max(2, 0.5 * first["divergences"]):  # (one divergence left is not worth a rerun)
        return True
    unmixed = {**again, "max_rhat": np.nan, "min_ess_bulk": np.nan, "min_ess_tail": np.nan}
    return keep_retry(first, unmixed, n_draws) and not keep_retry(first, again, n_draws)


def retry_too_deep(first: dict, max_tree_depth: int, n_draws: int, rhat_max: float = RHAT_MAX) -> str | None:
    """Why a diverging block is not sampled again at a higher target_accept, or None to retry.

    A block whose chains mixed and whose trees already average a quarter of the maximum tree size
    (2^max_tree_depth - 1 leapfrog steps) is not: the smaller step of the retry runs its trees into the maximum
    depth, and a retry with over 1% of its draws there replaces only a first run that did not mix
    (:func:`keep_retry`), so it would only cost time. Measured on SlimPajama's wikipedia target (additive law,
    every run up to 1.235B): 257 steps per draw, 2 divergences and R-hat 1.009 at 0.9; at 0.99, 2,021 of 4,000
    draws at the maximum depth, discarded after 374 s. Its few divergences are reported instead. ``rhat_max``: see
    :func:`_run_mixed`.
    """
    limit = 2 ** (max_tree_depth - 2)
    if first.get("mean_steps", 0.0) >= limit and _run_mixed(first, n_draws, rhat_max):
        return (
            f"its trees already average {first['mean_steps']:.0f} leapfrog steps per draw (a quarter of the "
            f"maximum, {2**max_tree_depth - 1}, is {limit}): a retry at a higher target_accept would run into the "
            "maximum tree depth"
        )
    return None


def _mixed(rhat: float, ess: float, n_draws: int, rhat_max: float = RHAT_MAX) -> bool:
    """A run whose chains agree (R-hat at most ``rhat_max``, 1.01) with an ESS of at least 5% of the draws."""
    return bool(np.isfinite(rhat) and np.isfinite(ess) and rhat <= rhat_max and ess >= 0.05 * n_draws)


def _run_mixed(info: dict, n_draws: int, rhat_max: float = RHAT_MAX) -> bool:
    """:func:`_mixed` for a block's info dict (its max R-hat and smallest bulk or tail ESS). ``rhat_max``: for a
    first try that stopped early, :func:`partial_rhat_max`."""
    ess = min(info.get("min_ess_bulk", np.nan), info.get("min_ess_tail", np.nan))
    return _mixed(info.get("max_rhat", np.nan), ess, n_draws, rhat_max)


def partial_rhat_max(draws: int, drawn: int) -> float:
    """The R-hat bound of :func:`_mixed` for a run stopped after ``drawn`` of its ``draws`` draws per chain.

    A stationary run's R-hat exceeds 1 by about 1/(draws per chain) times its autocorrelation time, so a quarter of
    the draws shows about four times the excess of the whole run: 1.04 where the whole run is held to 1.01.
    (SlimPajama up to 1.235B, BiMix: held to 1.01, six of eight first tries stopped after 250 draws counted as not
    mixed, and their retries ran from scratch where the whole first tries had all handed theirs a warm start.)
    """
    return 1.0 + (RHAT_MAX - 1.0) * draws / max(drawn, 1)


def _clean(info: dict, n_draws: int) -> bool:
    """A run with no divergence that mixed (:func:`_mixed`), with at most 1% of its draws at the maximum tree
    depth. Such a retry is kept without drawing the rest of a first try that stopped early: :func:`keep_retry` keeps
    it over any first run that diverged, whole or stopped."""
    return info["divergences"] == 0 and info["depth_hits"] <= 0.01 * n_draws and _run_mixed(info, n_draws)


def _run_seconds(info: dict) -> float:
    """A run's mode search and NUTS time, as recorded for a first try or a retry that was not kept."""
    return round(info["mode_seconds"] + info["nuts_seconds"], 3)


def sample_block_task(task: tuple) -> tuple[dict, dict, dict]:
    """One block's NUTS run, and its retry at a higher target_accept if it diverged (a task of an executor).

    ``task`` is (block, config, key, verbose, position); the result is what
    :func:`_sample_block` returns for the run that is kept. Chains run in
    parallel where this process has a device per chain, as in :func:`sample`.
    """
    block, config, key, verbose, position = task
    key = jnp.asarray(key)
    parallel = jax.local_device_count() >= config.chains and config.chains > 1
    retry = replace(config, target_accept=config.retry_target_accept)
    can_retry = config.retry_target_accept > config.target_accept
    result = _sample_block(block, config, key, parallel, keep_start=True, stop_early=can_retry)
    first, again = result[2], None
    start, resume = first.pop("_start"), first.pop("_resume", None)
    warm_spent = 0.0  # seconds of a warm-started retry that was not kept
    aborted: dict | None = None  # a retry's info when it stopped after its warm-up
    n_first = result[1]["diverging"].size
    rhat_max = partial_rhat_max(config.draws, first.get("stopped_after", config.draws))
    deep = (
        retry_too_deep(first, config.max_tree_depth, n_first, rhat_max) if first["divergences"] and can_retry else None
    )
    if first["divergences"] and can_retry and not deep:
        stopped = f" in its first {first['stopped_after']} draws per chain" if resume else ""
        log.info(
            "%s: %d divergences%s at target_accept %g; sampling it again at %g",
            block.label,
            first["divergences"],
            stopped,
            config.target_accept,
            retry.target_accept,
        )
        # A first run that mixed is kept over a retry at the maximum depth anyway (keep_retry), so such a retry
        # stops after its warm-up; one that did not mix gets the whole retry, however deep.
        # A first run that mixed also hands the retry its chains' last draws and adapted mass matrices: the
        # retry then adapts only its smaller step (REWARM). One that did not mix is retried from scratch.
        mixed = _run_mixed(first, n_first, rhat_max)
        length = first["mean_steps"] * float(np.median(first["step_size"])) if mixed else None
        again = _sample_block(
            block, retry, key, parallel, length, start=start if mixed else None, whitening=None if mixed else start
        )
        if mixed and again[0] is not None and _warm_start_failed(first, again[2], again[1]["diverging"].size):
            # A warm start is a saving, not a second opinion: where its chains mixed too little to keep
            # (SlimPajama's arxiv, additive law, one seed of two: R-hat 1.016) or still diverge, the retry is
            # run from scratch.
            warm_spent = _run_seconds(again[2])
            again = _sample_block(block, retry, key, parallel, length, whitening=start)
        if again[0] is None:  # stopped after its warm-up: its trees would run into the maximum depth
            aborted = again[2]
            again = None
    clean = again is not None and _clean(again[2], again[1]["diverging"].size)
    if resume is not None and not clean:
        # The first try stopped at its first divergence. Unless a clean retry replaces it (one keep_retry would
        # keep over any first run), it draws the rest from where it stopped, so that keep_retry weighs the retry
        # against the whole first run, as if it had never stopped.
        result = resume()
        first = result[2]
    if deep:
        first.update(retry_skipped=deep, target_accept=config.target_accept)
        log.info(
            "%s: %d divergences at target_accept %g; not sampled again: %s",
            block.label,
            first["divergences"],
            config.target_accept,
            deep,
        )
    elif aborted is not None:
        first.update(
            retry_aborted=aborted["aborted"],
            retried_seconds=_run_seconds(aborted),
            target_accept=config.target_accept,
        )
    if again is not None:
        again[2].update(
            first_target_accept=config.target_accept,
            first_divergences=first["divergences"],
            first_late_warmup_divergences=first["late_warmup_divergences"],
            first_seconds=_run_seconds(first),
            target_accept=retry.target_accept,
        )
        if "stopped_after" in first:
            again[2]["first_stopped_after"] = first["stopped_after"]
        if "rewhitened" in first:  # the retry runs in the first try's whitening
            again[2]["rewhitened"] = first["rewhitened"] + again[2].get("rewhitened", [])
        if clean or keep_retry(first, again[2], again[1]["diverging"].size):
            result = again
        else:  # keep the (whole) first draws, but say the retry was tried
            first.update(
                retried_divergences=again[2]["divergences"],
                retried_depth_hits=again[2]["depth_hits"],
                retried_rhat=again[2]["max_rhat"],
                retried_ess=min(again[2]["min_ess_bulk"], again[2]["min_ess_tail"]),
                retried_seconds=_run_seconds(again[2]),
                target_accept=config.target_accept,
            )
    if warm_spent:
        result[2]["warm_retry_seconds"] = warm_spent
    if verbose:
        b = result[2]
        log.warning(
            "sampled %s (%s): %.1f s, %.1f leapfrog steps per draw, %d divergences",
            b["block"],
            position,
            b["mode_seconds"] + b["nuts_seconds"],
            b["mean_steps"],
            b["divergences"],
        )
    return result


def sample(
    model: Callable, model_args: tuple, config: SamplerConfig, progress: bool | None = None, cache_key: Any = None
) -> tuple[dict, dict, dict]:
    """Run NUTS; return (draws by site with a leading chain axis, extra fields, timing info).

    Extra fields are per (chain, draw) over the whole model: ``diverging``
    (number of blocks that diverged at that draw), ``num_steps`` (the largest
    tree of any block, so that maximum-depth hits show), ``energy`` (the sum,
    the energy of the product posterior) and ``accept_prob`` (the mean).
    ``info`` has ``mode_seconds``, ``nuts_seconds`` (wall time, draws
    materialised, with first tries and retries), ``compile_seconds``,
    ``warmup_seconds`` and ``sampling_seconds`` (the parts of the kept runs),
    ``chain_method`` and, per block, its step sizes, mean leapfrog steps,
    divergences, R-hat, ESS and ESS per second.

    A model made by :func:`bayesmix.model.make_model` tells how it splits into
    independent blocks, and their compiled code is reused by later calls with
    the same signature and shapes; any other model is sampled as one block,
    its compiled code reused only under a ``cache_key``.
    """
    split = getattr(model, "split", None)
    blocks = split(*model_args) if split is not None else None
    if not blocks:
        blocks = [Block("all", model, tuple(model_args), None, cache_key)]
    parallel = jax.local_device_count() >= config.chains and config.chains > 1
    keys = jax.random.split(jax.random.PRNGKey(config.seed), len(blocks))
    verbose = show_progress(progress)

    n = len(blocks)
    tasks = [(block, config, np.asarray(k), verbose, f"{i + 1}/{n}") for i, (block, k) in enumerate(zip(blocks, keys))]
    executor = current_executor()
    results = executor.map(sample_block_task, tasks, labels=[b.label for b in blocks])
    report = executor.last

    draws = _merge([r[0] for r in results], blocks)
    ex = [r[1] for r in results]
    extra = {
        "diverging": np.sum([e["diverging"].astype(np.int64) for e in ex], axis=0),
        "num_steps": np.max([e["num_steps"] for e in ex], axis=0),
        "energy": np.sum([e["energy"] for e in ex], axis=0),
        "accept_prob": np.mean([e["accept_prob"] for e in ex], axis=0),
    }
    info = {
        "mode_seconds": float(sum(r[2]["mode_seconds"] for r in results)),
        # with the time of first tries and retries of blocks that diverged
        "nuts_seconds": float(sum(_block_seconds(r[2]) - r[2]["mode_seconds"] for r in results)),
        # the parts of the kept runs (a retry's discarded run counts in nuts_seconds only)
        **{f"{part}_seconds": float(sum(r[2][f"{part}_seconds"] for r in results)) for part in PARTS},
        "chain_method": "parallel" if parallel else "vectorized",
        "executor": report.where if report else "in-process",
        "executor_note": report.note() if report else None,
        "blocks": [r[2] for r in results],
    }
    return draws, extra, info


def posterior_mode(
    model: Callable, model_args: tuple, config: SamplerConfig, near: Mapping[str, Sequence[float]] | None = None
) -> dict[str, np.ndarray]:
    """The posterior mode (in unconstrained space), as constrained parameter values by site.

    The same mode search that whitens NUTS (:func:`find_mode`, block by block),
    without sampling: for quick point estimates such as the bias of a law at a
    held-out size. Compiled code is shared with :func:`sample`. ``near``: a
    mode of nearby data per block label (a fit's ``info["blocks"][i]["mode"]``,
    same shapes), such as the whole table's for a hold-out of a few of its
    runs: the search then starts there and at the prior median only, instead
    of from ``config.laplace_starts`` starts.
    """
    split = getattr(model, "split", None)
    blocks = (split(*model_args) if split is not None else None) or [Block("all", model, tuple(model_args), None, None)]
    keys = jax.random.split(jax.random.PRNGKey(config.seed), len(blocks))
    parts = []
    for block, key in zip(blocks, keys):
        comp = _compiled(block.model, block.args, block.signature)
        guess = None if near is None else near.get(block.label)
        if guess is not None and len(guess) == comp.dim:
            starts = [np.asarray(guess, dtype=np.float64), np.asarray(comp.starts(key, 1)[0], dtype=np.float64)]
        else:
            starts = list(
                np.asarray(comp.starts(jax.random.split(key, 3)[0], max(1, config.laplace_starts)), dtype=np.float64)
            )
        mode, _, _ = find_mode(comp, block.args, starts, point=True)
        sites = comp.constrain(jnp.asarray(mode[None]), block.args)
        parts.append({k: np.asarray(v)[None] for k, v in sites.items()})  # (chain 1, draw 1, ...)
    return {k: v[0, 0] for k, v in _merge(parts, blocks).items()}


def _merge(parts: Sequence[dict], blocks: Sequence[Block]) -> dict[str, np.ndarray]:
    """Put each block's draws in its place in the full parameter arrays."""
    if len(blocks) == 1 and blocks[0].place is None:
        return parts[0]
    slots: dict[str, dict[int, np.ndarray]] = {}
    axes: dict[str, int] = {}
    for draws, block in zip(parts, blocks):
        for name, value in draws.items():
            axis, index = block.place[name]
            axes[name] = axis
            slots.setdefault(name, {})[index] = np.take(value, 0, axis=2 + axis)
    out = {}
    for name, pieces in slots.items():
        order = sorted(pieces)
        if order != list(range(len(order))):
            raise RuntimeError(f"blocks left a gap in parameter {name!r}: have indices {order}")
        out[name] = np.stack([pieces[i] for i in order], axis=2 + axes[name])
    return out
