"""The likelihood every law shares, and the NumPyro model built from a law.

Observation model (why each piece is there):

- Losses are positive and their errors relative, so we model log losses:
  ``log y[r, t] = log mu_t(h, N, D) + g_t(f) + u[run, t] + s[run, t] x + eps``.
- ``g_t(f)``: the schedule term of a checkpoint at fraction ``f = D / D_end``
  of its run's schedule, zero at the end (:mod:`bayesmix.schedule`). Fitted
  only when the table has mid-schedule checkpoints (``checkpoints=True``).
- ``eps ~ Normal(0, sigma_t)``: checkpoint-to-checkpoint noise.
- ``u[run, t] ~ Normal(0, tau_run_t)``: a run's own offset at the end of its
  schedule, and ``s[run, t] ~ Normal(0, kappa_run_t)`` its own slope in
  ``x = log f``. Checkpoints of one run share their seed, data order and any
  misfit of the law at that mixture, so they are not independent; treating
  them as such makes intervals too narrow. Both are integrated out in closed
  form (a 2 x 2 Woodbury identity per run), so they cost no sampled dimension.
- No per-size offset: we tried one (a random misfit per fitted model size) and
  it absorbed the size trend itself, so the exponents stopped being learned
  (alpha drifted to 1-2 and the next-size error grew to 5-10%). Extrapolation
  uncertainty is added at prediction time instead (see :mod:`bayesmix.posterior`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .laws.base import Inputs, Law, Param, dims_sizes
from .laws.components import decay
from .priors import Prior, coerce_prior
from .schedule import SCHEDULE_PARAMS

NOISE_PARAMS: dict[str, Param] = {
    "sigma": Param(
        ("target",),
        Prior("HalfNormal", {"scale": 0.05}, "checkpoint noise on log loss: well under 5%"),
        "checkpoint noise (log scale)",
    ),
    "tau_run": Param(
        ("target",),
        Prior("HalfNormal", {"scale": 0.02}, "run-to-run offsets of about 1% are typical"),
        "run offset scale (log scale)",
    ),
}


class PerRun(NamedTuple):
    """The law's inputs once per run slot (R,): a run's mixture, model size, tokens and cell."""

    mix: jnp.ndarray
    N: jnp.ndarray
    D: jnp.ndarray
    cell: jnp.ndarray


class Observed(NamedTuple):
    """Everything the model conditions on (a pytree; shapes fix the compiled code).

    Rows are laid out run by run: run slot r holds rows ``r * P`` to
    ``r * P + P - 1`` (P = ``len(width)``; unused rows are padding with mask
    0), so sums over a run's rows are reshapes, not scatters. Where every row
    of a run has the same law inputs (the checkpoint model evaluates the law at
    the run's end; a table of final losses has one row per run), ``per_run``
    holds them, and the law is evaluated once per run instead of once per row
    (the measurements are in docs/speed.md).
    """

    x: Inputs
    y: jnp.ndarray  # (n, T) log loss, 0 where missing
    mask: jnp.ndarray  # (n, T) 1.0 observed, 0.0 missing or padding
    run: jnp.ndarray  # (n,) int run slot
    run_slots: jnp.ndarray  # (R,) only its length is used
    basis: jnp.ndarray | None = None  # (n, 3) schedule basis at each row's fraction of its run (0 at the end)
    log_frac: jnp.ndarray | None = None  # (n,) log(D / D_end): the covariate of a run's own slope
    width: jnp.ndarray | None = None  # (P,) only its length is used: rows per run slot; None: rows in any order
    per_run: PerRun | None = None  # the law's inputs per run slot, when a run's rows share them

    def head(self, rows: int) -> "Observed":
        """The first ``rows`` rows: enough to trace a model's sites cheaply."""
        cut = self._replace(x=self.x.head(rows), y=self.y[:rows], mask=self.mask[:rows], run=self.run[:rows])
        if self.basis is not None:
            cut = cut._replace(basis=self.basis[:rows], log_frac=self.log_frac[:rows])
        return cut


class Block(NamedTuple):
    """One independently sampled piece of a posterior.

    ``place`` says where each of the block's sites goes in the full parameter
    arrays: site -> (axis, index) along a target-like axis, or None when the
    block is the whole model. Blocks with equal ``signature`` have the same
    model function and shapes and share compiled code.
    """

    label: str
    model: Callable
    args: tuple
    place: dict[str, tuple[int, int]] | None
    signature: Any


class LawKey:
    """A law as a cache key (and a static jit argument): equal for laws of the same class and settings.

    Why: compiled code is cached by such keys, and every loaded fit holds its
    own law instance; keyed by identity, each new fit of the same law would
    compile again. Laws are stateless apart from their constructor settings.
    """

    def __init__(self, law: Law):
        self.law = law
        # a mixture of laws (an ensemble's) is keyed by its laws' keys
        key = getattr(law, "cache_key", None)
        self._key = key() if key is not None else (type(law), repr(sorted(vars(law).items())))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, LawKey) and other._key == self._key


def all_params(law: Law, domains, targets, checkpoints: bool = False) -> dict[str, Param]:
    """The law's parameters followed by the shared noise parameters (and the checkpoint ones with ``checkpoints``).

    Names are unique across the three sets, so ``checkpoints=True`` also
    serves to look up the dims of any site a fit may hold.
    """
    spec = dict(law.params(domains, targets))
    clash = set(spec) & (set(NOISE_PARAMS) | set(SCHEDULE_PARAMS))
    if clash:
        raise ValueError(f"law {law.name!r} reuses reserved parameter names {sorted(clash)}")
    spec.update(NOISE_PARAMS)
    if checkpoints:
        spec.update(SCHEDULE_PARAMS)
    return spec


def resolve_priors(
    law: Law, domains, targets, overrides: Mapping[str, Any] | None, checkpoints: bool = False
) -> dict[str, Prior]:
    """The law's default priors with the user's overrides applied (unknown names are an error)."""
    spec = all_params(law, domains, targets, checkpoints)
    priors = {name: p.prior for name, p in spec.items()}
    for name, value in (overrides or {}).items():
        if name not in priors:
            raise ValueError(f"law {law.name!r} has no parameter {name!r}; its parameters: {', '.join(priors)}")
        priors[name] = coerce_prior(value)
    return priors


def param_shapes(spec: Mapping[str, Param], domains, targets) -> dict[str, tuple[int, ...]]:
    """Concrete shape of every parameter block; blocks with an empty dimension are dropped."""
    sizes = dims_sizes(domains, targets)
    shapes = {name: tuple(sizes[d] for d in p.dims) for name, p in spec.items()}
    return {name: s for name, s in shapes.items() if all(n > 0 for n in s)}


def group_loglik(
    resid: jnp.ndarray,
    obs: Observed,
    sigma: jnp.ndarray,
    tau_run: jnp.ndarray,
    kappa_run: jnp.ndarray | None = None,
    noise_early: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """(R, T) log density of each run's residuals with its offset (and slope) integrated out.

    A run's n residuals r have covariance ``sigma^2 I + Z L Z^T`` with
    ``Z = [1, log f]`` and ``L = diag(tau^2, kappa^2)``; by the Woodbury
    identity its inverse and determinant need only the 2 x 2 matrix
    ``M = I + L Z^T Z / sigma^2``, built from per-run sums. A run with n = 0
    contributes 0. Without ``kappa_run`` (or ``obs.log_frac``) this is the
    offset alone (compound symmetry).

    A target that no run observes twice (one checkpoint per run, as in a
    sweep of final losses) sees only sigma^2 + tau^2: the split is not
    identified, and sampling both leaves an L-shaped ridge in (log sigma,
    log tau) whose corner NUTS diverges in (measured: BiMix on the 48-run
    SlimPajama mixture split, 41 divergences in 4000 draws, R-hat 1.014, all
    at sigma << tau or the reverse). For such a target the offset is left
    out here (sigma carries all the noise) and ``tau_run`` is its prior
    only; :func:`unidentified_run_offsets` finds these targets so that the
    fit can set their ``tau_run`` (and ``kappa_run``) draws to 0.
    """
    n = _run_counts(obs)
    m = obs.mask
    twice = _observed_twice(n)
    tau2 = jnp.where(twice, tau_run**2, 0.0)
    if kappa_run is None or obs.log_frac is None:
        var = sigma**2
        seg = run_sum(obs)
        s1 = seg(resid * m)
        s2 = seg(resid**2 * m)
        total = var + n * tau2
        quad = (s2 - tau2 / total * s1**2) / var
        logdet = (n - 1.0) * jnp.log(var) + jnp.log(total)
        return -0.5 * (quad + logdet + n * math.log(2 * math.pi))
    x = obs.log_frac[:, None]
    # Per-row variance: early checkpoints (x = log f far below 0) carry more noise than a law and a smooth
    # schedule term explain (warm-up transients), by (1 + (omega x)^2).
    var = sigma**2 * (1.0 + (0.0 if noise_early is None else (noise_early * x) ** 2))  # (n, T)
    w = m / var
    kap2 = jnp.where(twice, kappa_run**2, 0.0)
    seg = run_sum(obs)
    nw, sx, sxx = seg(w), seg(w * x), seg(w * x**2)
    s1, gx, s2 = seg(w * resid), seg(w * x * resid), seg(w * resid**2)
    # M = I + L Z'WZ, Z'WZ = [[nw, sx], [sx, sxx]], L = diag(tau2, kap2).
    m11, m12 = 1.0 + tau2 * nw, tau2 * sx
    m21, m22 = kap2 * sx, 1.0 + kap2 * sxx
    det = m11 * m22 - m12 * m21
    # g' M^-1 L g with g = Z'W r = (s1, gx); M^-1 = [[m22, -m12], [-m21, m11]] / det.
    a1, a2 = tau2 * s1, kap2 * gx  # L g
    b1, b2 = (m22 * a1 - m12 * a2) / det, (-m21 * a1 + m11 * a2) / det  # M^-1 L g
    quad = s2 - (s1 * b1 + gx * b2)
    logdet = seg(m * jnp.log(var)) + jnp.log(det)
    return -0.5 * (quad + logdet + n * math.log(2 * math.pi))


def run_layout(obs: Observed) -> bool:
    """True when ``obs``'s rows are laid out run by run (see :class:`Observed`); a cut of rows is not."""
    return obs.width is not None and obs.y.shape[0] == obs.run_slots.shape[0] * obs.width.shape[0]


def run_sum(obs: Observed) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """A function summing a per-row array (n, ...) over each run slot's rows -> (R, ...)."""
    R = obs.run_slots.shape[0]
    if run_layout(obs):
        return lambda a: a.reshape((R, -1) + a.shape[1:]).sum(axis=1)
    return lambda a: jax.ops.segment_sum(a, obs.run, R)


def run_inputs(obs: Observed) -> Inputs | None:
    """The law's inputs once per run slot (R rows), or None where the rows of a run differ or are not laid out
    run by run."""
    if obs.per_run is None or not run_layout(obs):
        return None
    r = obs.per_run
    return obs.x._replace(mix=r.mix, N=r.N, D=r.D, cell=None if obs.x.cell is None else r.cell)


def law_log_mean(law: Law, p, obs: Observed) -> jnp.ndarray:
    """(n, T) log of the law's expected loss at every row, evaluated once per run where the rows of a run share
    their inputs."""
    x_run = run_inputs(obs)
    if x_run is None:
        return log_mean(law, p, obs.x)
    return rows_of_runs(obs, log_mean(law, p, x_run))


def rows_of_runs(obs: Observed, a: jnp.ndarray) -> jnp.ndarray:
    """(n, T) each row's value of a per-run-slot array ``a`` (R, T), for rows laid out run by run."""
    R, P, T = a.shape[0], obs.width.shape[0], a.shape[1]
    # broadcast, not jnp.repeat: repeat's gradient is a scatter (measured: 34 against 1 microsecond per gradient)
    return jnp.broadcast_to(a[:, None, :], (R, P, T)).reshape(R * P, T)


def schedule_term(p, obs: Observed) -> jnp.ndarray:
    """(n, T) the checkpoint curve g(f, N) at every row (:mod:`bayesmix.schedule`); its size factor once per run
    where the layout allows (an exp per row is a large part of a gradient's cost)."""
    x_run = run_inputs(obs)
    if x_run is None:
        size = jnp.exp(p["schedule_size"][None, :] * jnp.log(obs.x.N / obs.x.N0)[:, None])
    else:
        size = rows_of_runs(obs, jnp.exp(p["schedule_size"][None, :] * jnp.log(x_run.N / x_run.N0)[:, None]))
    return (obs.basis @ p["schedule"].T) * size


def _run_counts(obs: Observed) -> jnp.ndarray:
    """(R, T) observed checkpoints of each target in each run slot."""
    return run_sum(obs)(obs.mask)


def _observed_twice(n: jnp.ndarray) -> jnp.ndarray:
    """(T,) bool from run counts ``n`` (R, T): some run observes the target at least twice."""
    return jnp.max(n, axis=0) > 1.5


def unidentified_run_offsets(obs: Observed) -> np.ndarray:
    """(T,) bool: targets that no run observes more than once, whose ``tau_run`` the data cannot inform
    (see :func:`group_loglik`)."""
    return ~np.asarray(_observed_twice(_run_counts(obs)))


def make_model(law: Law, domains, targets, priors: Mapping[str, Prior], checkpoints: bool = False):
    """The NumPyro model ``model(obs)`` for a law on a table's domains and targets.

    ``checkpoints``: the table has mid-schedule checkpoints, so the schedule
    term and the runs' own slopes are in the model (``obs`` must then carry
    ``basis`` and ``log_frac``).

    The returned function also carries ``model.split(obs)``: the blocks the
    sampler runs one by one (one per target when targets share no parameter,
    see :func:`split_targets`), and ``model.prior_sites``: each latent site's
    prior distribution.
    """
    spec = all_params(law, domains, targets, checkpoints)
    shapes = param_shapes(spec, domains, targets)
    drops = [pair for pair in SCALE_DROPS if pair[0] in shapes and pair[1] in shapes and _log_normal(priors[pair[0]])]
    by_drop = {slope for slope, *_ in drops}
    # A user's prior of another family is sampled as it is (the product keeps a Normal prior only).
    by_scale = {name for name in shapes if spec[name].scaled_by is not None and priors[name].family == "Normal"}

    def model(obs: Observed):
        p = {
            name: numpyro.sample(name, priors[name].to_numpyro(shape))
            for name, shape in shapes.items()
            if name not in by_drop and name not in by_scale
        }
        for slope, exponent, axis in drops:
            p[slope] = sampled_by_drop(slope, priors[slope], p[exponent], fitted_range(obs, axis))
        for name in by_scale:  # after the drops: a scale may use the slopes
            p[name] = sampled_by_scale(name, priors[name], spec[name].scaled_by(p), shapes[name])
        resid = obs.y - law_log_mean(law, p, obs)
        if checkpoints:
            resid = resid - schedule_term(p, obs)
        ll = group_loglik(resid, obs, p["sigma"], p["tau_run"], p.get("kappa_run"), p.get("noise_early"))
        numpyro.factor("loglik", ll.sum())

    model.split = lambda obs: split_targets(law, domains, targets, priors, obs, whole=model, checkpoints=checkpoints)
    # The latent sites and their priors, so the sampler need not trace the model to find them (a drop's is its
    # slope's: close enough for the mode search's starts, which is all it is used for).
    model.prior_sites = {
        (DROP_PREFIX + name if name in by_drop else SCALED_PREFIX + name if name in by_scale else name): priors[
            name
        ].to_numpyro(shape)
        for name, shape in shapes.items()
    }
    # The log volume the products add to the sampled coordinates' density: a point estimate (``posterior_mode``)
    # takes it out, so that it maximises the parameters' density as the law declares them.
    model.coordinate_log_jacobian = (
        (lambda q: sum(jnp.sum(jnp.log(jnp.broadcast_to(spec[n].scaled_by(q), shapes[n]))) for n in by_scale))
        if by_scale
        else None
    )
    # Sampled sites that are coordinates, not parameters: the draws hold the parameters (deterministic sites) instead.
    model.auxiliary_sites = frozenset(
        [DROP_PREFIX + name for name in by_drop] + [SCALED_PREFIX + name for name in by_scale]
    )
    return model


# Chinchilla scale terms sampled through their drop over the fitted range (slope, exponent, input axis).
SCALE_DROPS = (("slope_N", "alpha", "N"), ("slope_D", "beta", "D"))
DROP_PREFIX = "drop_"  # the sampled site of such a slope; the slope itself is a deterministic site
# Half-width (e-folds) the fitted range is widened to, at least: a sweep at one model size or token count has no
# range, and its drop is then a drop over a nominal one (the likelihood is flat there anyway).
MIN_HALF_RANGE = 0.5


def _log_normal(prior: Prior) -> bool:
    return prior.family == "LogNormal"


def fitted_range(obs: Observed, axis: str) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(lo, hi): the fitted range of log(N / N0) (``axis`` "N") or log(D / D0) ("D") where the law is evaluated,
    widened to at least +-MIN_HALF_RANGE. Padding sits at the reference point (0), inside it."""
    x = run_inputs(obs) or obs.x
    ref = x.N0 if axis == "N" else x.D0
    v = jnp.log((x.N if axis == "N" else x.D) / ref)
    return jnp.minimum(jnp.min(v), -MIN_HALF_RANGE), jnp.maximum(jnp.max(v), MIN_HALF_RANGE)


def sampled_by_drop(slope: str, prior: Prior, exponent: jnp.ndarray, span) -> jnp.ndarray:
    """A scale term's slope at the reference point, sampled through the term's drop over the fitted range.

    The term is L_ref slope phi(k, x) (``laws.components``); over the range (lo, hi) it falls by
    drop = slope g(k), g(k) = phi(k, hi) - phi(k, lo). The data pin the drop, while slope and exponent trade along
    a curve (a small slope with a large exponent steepens the term at the small end by exp(k |lo|)), where NUTS
    diverged in every block it was read in (docs/speed.md). Sampling log drop | k ~ Normal(loc + log g(k), scale)
    keeps the slope's LogNormal(loc, scale) prior exactly: slope = drop / g(k) has that law for every k.
    """
    lo, hi = span
    g = decay(exponent, hi) - decay(exponent, lo)
    drop = numpyro.sample(
        DROP_PREFIX + slope,
        dist.LogNormal(prior.params["loc"] + jnp.log(g), prior.params["scale"]),
    )
    return numpyro.deterministic(slope, drop / g)


SCALED_PREFIX = "scaled_"  # the sampled site of a parameter with ``Param.scaled_by``


def sampled_by_scale(name: str, prior: Prior, scale: jnp.ndarray, shape: tuple[int, ...]) -> jnp.ndarray:
    """A parameter sampled through its product with a term of the law (``Param.scaled_by``), prior kept exactly.

    With theta ~ Normal(loc, sd) and a scale c > 0, the product c theta ~ Normal(c loc, c sd) given c, so sampling
    the product with that law and dividing by c leaves theta's prior as it was. Where the data pin the product (the
    term's share of the loss that moves with the mixture) and not its factors, the factors trade along a curve in
    the sampler's coordinates; the product lies straight.
    """
    c = jnp.broadcast_to(scale, shape)
    product = numpyro.sample(
        SCALED_PREFIX + name,
        dist.Normal(prior.params["loc"] * c, prior.params["scale"] * c).to_event(len(shape)),
    )
    return numpyro.deterministic(name, product / c)


# Models are cached by signature so that blocks of equal shapes (and repeated
# fits) share one function object, hence one compiled sampler.
_MODELS: dict = {}
_SEPARABLE: dict = {}


def clear_models() -> None:
    """Drop the cached model functions (see :func:`bayesmix.clear_caches`)."""
    _MODELS.clear()
    _SEPARABLE.clear()


def split_targets(
    law: Law, domains, targets, priors: Mapping[str, Prior], obs: Observed, whole=None, checkpoints: bool = False
) -> list:
    """The blocks to sample: one per target when no parameter is shared between targets, else the whole model.

    A law's targets are independent when every parameter block carries a
    "target" or "foreign" dimension (so each element belongs to one target)
    and the law's mean for a target depends only on that target's elements.
    The first is read from the declared dims; the second is checked
    numerically (a Jacobian of the mean at a prior draw), so a law that
    couples targets is never split by mistake. The likelihood is a sum over
    targets, so the posterior is then a product over targets.

    Returns a list of :class:`Block`. Each carries a
    signature; blocks with equal signatures share one model function (the
    model depends on a target only through shapes and priors -- the
    own-domain index is data), hence one compiled sampler.
    """
    targets, domains = tuple(targets), tuple(domains)
    prior_key = tuple(sorted((k, str(v)) for k, v in priors.items()))
    spec = all_params(law, domains, targets, checkpoints)
    separable = all("target" in p.dims or "foreign" in p.dims for p in spec.values())
    if separable and len(targets) > 1:
        key = (LawKey(law), domains, targets, prior_key)
        if key not in _SEPARABLE:
            _SEPARABLE[key] = _targets_separate(law, domains, targets, priors, obs.x)
        separable = _SEPARABLE[key]
    if not separable:
        signature = ("whole", LawKey(law), domains, targets, prior_key, checkpoints)
        if signature not in _MODELS:
            _MODELS[signature] = whole if whole is not None else make_model(law, domains, targets, priors, checkpoints)
        return [Block("all targets", _MODELS[signature], (obs,), None, signature)]

    foreign = [t for t in targets if t not in domains]
    blocks = []
    for i, t in enumerate(targets):
        sub = (t,)
        sub_spec = all_params(law, domains, sub, checkpoints)
        sub_shapes = param_shapes(sub_spec, domains, sub)
        place = {}
        for name in sub_shapes:
            dims = sub_spec[name].dims
            if "target" in dims:
                place[name] = (dims.index("target"), i)
            else:
                place[name] = (dims.index("foreign"), foreign.index(t))
        signature = (
            "target",
            LawKey(law),
            domains,
            tuple(sorted((k, s, str(priors[k])) for k, s in sub_shapes.items())),
        )
        if signature not in _MODELS:
            _MODELS[signature] = make_model(law, domains, sub, priors, checkpoints)
        x = obs.x._replace(own=obs.x.own[i : i + 1])
        sub_obs = obs._replace(x=x, y=obs.y[:, i : i + 1], mask=obs.mask[:, i : i + 1])
        blocks.append(Block(t, _MODELS[signature], (sub_obs,), place, signature))
    return blocks


def _targets_separate(law: Law, domains, targets, priors: Mapping[str, Prior], x: Inputs) -> bool:
    """True when each target's mean depends only on parameter elements of that target (checked at a prior draw)."""
    spec = all_params(law, domains, targets)
    shapes = param_shapes(spec, domains, targets)
    keys = jax.random.split(jax.random.PRNGKey(20240), len(shapes))
    p = {name: priors[name].to_numpyro(shape).sample(k) for k, (name, shape) in zip(keys, shapes.items())}
    rows = min(8, x.mix.shape[0])
    xs = x.head(rows)
    jac = jax.jacfwd(lambda q: law.mean(q, xs))(p)  # name -> (rows, T, *shape)
    foreign = [t for t in targets if t not in domains]
    for name, J in jac.items():
        if name not in shapes:
            continue
        dims = spec[name].dims
        axis = dims.index("target") if "target" in dims else dims.index("foreign")
        J = np.abs(np.asarray(J))
        for i, t in enumerate(targets):
            col = np.moveaxis(J[:, i], 1 + axis, 1)  # (rows, n_along_axis, ...)
            own = i if "target" in dims else (foreign.index(t) if t in foreign else -1)
            others = [j for j in range(col.shape[1]) if j != own]
            if others and np.any(col[:, others] > 0):
                return False
    return True


def log_mean(law: Law, p, x: Inputs) -> jnp.ndarray:
    """log of the law's expected loss, guarded so that no proposal yields NaN."""
    mu = law.mean(p, x)
    return jnp.log(jnp.clip(mu, 1e-30, 1e30))


def bucket(n: int, minimum: int = 64) -> int:
    """Round a size up so that adding a few runs does not change shapes (and recompile).

    Up to ``minimum``, else to a multiple of an eighth of the power of two below ``n`` (at least 8): at most 12.5%
    padding beyond 64, about 6% on average. Every padded row costs a gradient as much as a real one: growing by 25%
    per step, as before, padded SlimPajama's 220 runs to 268 slots.
    """
    if n <= minimum:
        return minimum
    step = max(8, 2 ** (int(n - 1).bit_length() - 1) // 8)
    return -(-n // step) * step
