"""How far to trust a law beyond the scales it was fitted on.

Inside the fitted range the posterior says how well the law is pinned down;
beyond it, the error that matters is the law's own bias, which no amount of
data inside the range reveals. bayesmix predicts beyond the range with a
log-scale bias of ``extrapolation_sd`` per e-fold past the largest fitted
model size and token count (:mod:`bayesmix.posterior`), and learns that
number from the sweep the way it will be used: refit the law without its
largest scales, predict them, and see how the error grows with the distance.

- :func:`holdout_splits`: nested hold-outs, as the sweep allows (the largest
  model size, the two largest, the three largest; the largest token budgets
  where the budgets vary at a size);
- :func:`holdout_errors`: each hold-out's errors at the final checkpoint of
  every held-out run, from the law's posterior mode on the rest (the bias is
  wanted, not the posterior's spread, and a mode is seconds);
- :func:`error_model`: the hierarchical model of those errors (NumPyro): per
  target a shared bias and a per-mixture error, each growing linearly with
  the e-folds, their rates pooled across targets;
- :func:`learn_extrapolation_sd`: all of it, and the per-target sd that
  prediction uses.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from .data import RunTable
from .inference import SamplerConfig, sample
from .laws.base import Law
from .mode import fit_mode
from .model import Observed
from .posterior import efolds_beyond
from .priors import Prior

log = logging.getLogger("bayesmix")

MIN_SIZES = 3  # fit on at least two sizes after holding one out
MAX_HOLDOUTS = 3
# Prior of the rates (log scale, per e-fold), used alone where nothing can be held out: a median of 1% per e-fold
# and a factor 2 either way. Published laws extrapolated over 1-2 e-folds of size and tokens miss by ~0.5-3%
# (Ye et al. 2024, Shukor et al. 2025), about 0.3-3% per e-fold; SlimPajama's nested hold-outs here: 0.2-3%.
LOG_RATE = (math.log(0.01), 0.7)
SPREAD_SCALE = 0.5  # half-normal scale of the spread of log rates across targets
# A target that is not a training domain (e.g. an instruction set) may extrapolate unlike the domains: its log
# rates get this much more spread, so its own hold-out errors are shrunk less towards the others'.
OUT_OF_DOMAIN_SPREAD = 1.0
ERROR_SAMPLER = SamplerConfig(chains=2, warmup=500, draws=1000, retry_target_accept=0.0)


@dataclass(frozen=True)
class HeldOut:
    """One hold-out: which rows were refitted on, and the law's errors at the held-out runs' ends."""

    label: str
    far: np.ndarray  # (n,) e-folds of each held-out run's final checkpoint beyond the refitted range
    error: np.ndarray  # (n, T) log loss minus the mode's log mean there; NaN where the loss is missing
    noise: np.ndarray  # (T,) the mode's sigma^2 + tau_run^2: what a final checkpoint scatters by itself
    runs: np.ndarray | None = None  # (n,) the held-out runs' labels


def holdout_splits(table: RunTable, max_holdouts: int = MAX_HOLDOUTS) -> list[tuple[str, np.ndarray]]:
    """Nested hold-outs as the sweep allows: ``[(label, train_mask)]``, nearest first.

    By model size: the largest, the two largest, ... while at least two sizes
    remain to refit on. By token budget (``run_tokens``), where a model size
    has runs of three or more budgets: the largest budget of every size, then
    the two largest. A split that holds out the same runs as an earlier one is
    skipped. At most ``max_holdouts``, size hold-outs first.
    """
    out: list[tuple[str, np.ndarray]] = []
    seen: set[bytes] = set()

    def add(label: str, train: np.ndarray) -> None:
        key = np.packbits(train).tobytes()
        if train.any() and (~train).any() and key not in seen:
            seen.add(key)
            out.append((label, train))

    sizes = np.unique(table.model_size)
    for k in range(1, len(sizes) - 1):
        add(f"sizes >= {sizes[-k]:.4g}", table.model_size < sizes[-k])
    end = pd.Series(np.round(np.log(table.run_tokens), 3)).groupby(table.model_size)
    budgets = end.nunique()
    rank = end.rank(method="dense", ascending=False).to_numpy()
    for k in (1, 2):  # keep at least two budgets at every size to refit on
        if (budgets >= k + 2).all():
            add(f"the {k} largest token budget{'s' if k > 1 else ''} of each size", rank > k)
    return out[:max_holdouts]


def holdout_errors(
    table: RunTable,
    law: Law,
    targets: Sequence[str],
    priors: Mapping[str, Prior],
    N0: float,
    D0: float,
    seed: int = 0,
    like: Observed | None = None,
    max_holdouts: int = MAX_HOLDOUTS,
    near: Mapping[str, Sequence[float]] | None = None,
) -> list[HeldOut]:
    """The law's errors in each hold-out of :func:`holdout_splits`, from its posterior mode on the rest.

    Only each held-out run's final checkpoint counts: a final loss is what is
    predicted beyond the range, and a run's checkpoints are not independent
    looks at the law's error. ``near``: the whole table's mode per block (a
    fit's ``timing["blocks"][i]["mode"]``), where each refit's search starts.
    """
    checkpoints = "schedule" in priors
    out = []
    for label, train_mask in holdout_splits(table, max_holdouts):
        train, held = table.subset(train_mask), table.subset(~train_mask)
        held = held.subset(held.token_fraction() >= 1 - 1e-3)
        mode = fit_mode(
            train,
            law,
            targets=targets,
            priors=priors,
            seed=seed,
            N0=N0,
            D0=D0,
            like=like,
            checkpoints=checkpoints,
            near=near,
        )
        p = {k: np.asarray(v[0]) for k, v in mode.draws.items()}
        log_mu = mode.log_means(held.weights, held.model_size, held.n_tokens, held.run_tokens)[0]
        y = held.frame[[f"{t}_loss" for t in targets]].to_numpy(dtype=float)
        T = len(targets)
        noise = np.asarray(p["sigma"]) ** 2 + np.asarray(p.get("tau_run", np.zeros(T))) ** 2
        far = efolds_beyond(held.model_size, held.n_tokens, train.model_size.max(), train.n_tokens.max())
        out.append(HeldOut(label, far, np.log(y) - log_mu, noise, np.asarray(held.run, dtype=str)))
        log.info("extrapolation hold-out %s: %d runs, %.2f-%.2f e-folds out", label, len(far), far.min(), far.max())
    return out


def error_model(far, error, mask, group, noise, out_of_domain):
    """The hold-out errors: per target t a shared bias and a per-mixture error, both linear in the e-folds.

    A held-out run r of hold-out g is off by ``far_r (s_t z_gt + q_t u_rt) + eps_rt``: ``z_gt`` one standard
    normal per hold-out (the law's bias, shared by every mixture), ``u_rt`` one per run (how the bias varies
    between mixtures), ``eps`` the run's own scatter (the mode's sigma^2 + tau_run^2, ``noise`` (G, T)).
    Shared parts make the errors of one hold-out's runs a rank-one-plus-diagonal Gaussian, evaluated exactly.
    The log rates of s and q are normal across targets around pooled means (a target borrows strength from the
    others); ``out_of_domain`` (T,) marks targets that are not a training domain (more spread).

    Arrays: ``far`` (n,), ``error`` and ``mask`` (n, T), ``group`` (n, G) one-hot.
    """
    T = error.shape[1]
    rates = {}
    for part in ("shared", "mixture"):
        mu = numpyro.sample(f"log_rate_{part}", dist.Normal(*LOG_RATE))
        spread = numpyro.sample(f"spread_{part}", dist.HalfNormal(SPREAD_SCALE))
        with numpyro.plate("target", T):
            z = numpyro.sample(f"z_{part}", dist.Normal(0.0, 1.0))
        rates[part] = _rate(mu, spread, z, out_of_domain, jnp)
    s2, q2 = rates["shared"] ** 2, rates["mixture"] ** 2
    f = far[:, None] * mask
    e = jnp.where(mask > 0, error, 0.0)
    d = f**2 * q2 + group @ noise  # (n, T) each run's own variance
    d = jnp.where(mask > 0, d, 1.0)
    A = group.T @ (f**2 / d)  # (G, T)
    B = group.T @ (f * e / d)
    C = group.T @ (e**2 / d)
    logdet = group.T @ (mask * jnp.log(d)) + jnp.log1p(s2 * A)
    quad = C - s2 * B**2 / (1.0 + s2 * A)
    numpyro.factor("holdouts", -0.5 * jnp.sum(logdet + quad + (group.T @ mask) * math.log(2 * math.pi)))


def _padded(far, err, mask, group, noise, ood) -> tuple[np.ndarray, ...]:
    """The error model's data padded to MAX_HOLDOUTS groups and a power-of-two number of runs (at least 64).

    Padded runs and groups have no mask and no group, so they add nothing to the likelihood; the padding lets
    one compiled sampler serve every sweep with the same number of targets and a similar number of runs.
    """
    n, T = err.shape
    G = group.shape[1]
    rows = max(64, 1 << (n - 1).bit_length())
    groups = max(G, MAX_HOLDOUTS)
    pad = rows - n
    return (
        np.concatenate([far, np.zeros(pad)]),
        np.vstack([err, np.zeros((pad, T))]),
        np.vstack([mask, np.zeros((pad, T))]),
        np.pad(group, ((0, pad), (0, groups - G))),
        np.vstack([noise, np.ones((groups - G, T))]),
        np.asarray(ood, dtype=float),
    )


def _prior_draws(T: int, n: int, seed: int) -> dict[str, np.ndarray]:
    """Draws of the error model's latent sites from their prior (what NUTS gives with no hold-out)."""
    rng = np.random.default_rng([seed, 7])
    out = {}
    for part in ("shared", "mixture"):
        out[f"log_rate_{part}"] = rng.normal(LOG_RATE[0], LOG_RATE[1], n)
        out[f"spread_{part}"] = np.abs(rng.normal(0.0, SPREAD_SCALE, n))
        out[f"z_{part}"] = rng.standard_normal((n, T))
    return out


def _rate(mu, spread, z, out_of_domain, xp=np):
    """Each target's rate from the pooled log mean, the spread across targets and its standard normal."""
    mu, spread = xp.asarray(mu)[..., None], xp.asarray(spread)[..., None]
    return xp.exp(mu + xp.sqrt(spread**2 + out_of_domain * OUT_OF_DOMAIN_SPREAD**2) * z)


@dataclass(frozen=True)
class ExtrapolationError:
    """What the hold-outs taught: per-target rates (posterior draws) and the sd prediction uses.

    ``sd`` (T,) is sqrt(E[s^2 + q^2]) per e-fold: the same variance as the
    bias integrated over the rates' posterior. ``table``: per target, the
    median and 90% interval of each rate, and the hold-out errors seen.
    """

    sd: np.ndarray
    shared: np.ndarray  # (S, T)
    mixture: np.ndarray  # (S, T)
    table: pd.DataFrame
    note: str
    holdouts: pd.DataFrame | None = None  # the errors seen, one row per (hold-out, run, target): holdout_frame


def learn_extrapolation(
    table: RunTable,
    law: Law,
    targets: Sequence[str],
    priors: Mapping[str, Prior],
    N0: float,
    D0: float,
    seed: int = 0,
    like: Observed | None = None,
    domains: Sequence[str] | None = None,
    near: Mapping[str, Sequence[float]] | None = None,
) -> ExtrapolationError:
    """Measure the law's extrapolation error on nested hold-outs and pool it across targets.

    With fewer than three model sizes (and no varied token budgets) nothing
    can be held out: the rates are then drawn from their prior and the note
    says so. ``domains`` (default: the table's) tells which targets are
    training domains. ``near``: see :func:`holdout_errors`.
    """
    T = len(targets)
    domains = tuple(table.domains if domains is None else domains)
    ood = np.array([t not in domains for t in targets], dtype=float)
    held = holdout_errors(table, law, targets, priors, N0, D0, seed=seed, like=like, near=near)
    if held:
        far = np.concatenate([h.far for h in held])
        err = np.concatenate([h.error for h in held])
        mask = np.isfinite(err).astype(float)
        group = np.concatenate([np.tile(np.eye(len(held))[g], (len(h.far), 1)) for g, h in enumerate(held)])
        noise = np.stack([h.noise for h in held])
        args = _padded(far, np.nan_to_num(err), mask, group, noise, ood)
        config = SamplerConfig(**{**ERROR_SAMPLER.to_dict(), "seed": seed})
        # compiled once per number of targets (the latent sites' shapes); other data shapes retrace under jit
        draws, _, _ = sample(error_model, args, config, progress=False, cache_key=("extrapolation error", T))
        flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in draws.items()}
    else:  # nothing to hold out: the rates' prior alone, drawn directly
        flat = _prior_draws(T, ERROR_SAMPLER.chains * ERROR_SAMPLER.draws, seed)
    shared, mixture = (
        _rate(flat[f"log_rate_{p}"], flat[f"spread_{p}"], flat[f"z_{p}"], ood) for p in ("shared", "mixture")
    )
    sd = np.sqrt(np.mean(shared**2 + mixture**2, axis=0))
    summary = _summary(targets, shared, mixture, held, sd)
    return ExtrapolationError(sd, shared, mixture, summary, _note(targets, held, summary), holdout_frame(held, targets))


def holdout_frame(held: Sequence[HeldOut], targets: Sequence[str]) -> pd.DataFrame:
    """The hold-outs' errors as a long table: ``holdout``, ``run``, ``target``, ``far`` (e-folds out), ``error``
    (log loss minus the refitted law's), ``noise`` (its own scatter, a variance); missing losses left out.

    Saved with the fit, so that an ensemble can score each law on the same held-out runs without refitting.
    """
    rows = [
        pd.DataFrame(
            {
                "holdout": h.label,
                "run": np.repeat(h.runs if h.runs is not None else np.arange(len(h.far)).astype(str), len(targets)),
                "target": np.tile(np.asarray(targets, dtype=object), len(h.far)),
                "far": np.repeat(h.far, len(targets)),
                "error": h.error.ravel(),
                "noise": np.tile(h.noise, len(h.far)),
            }
        )
        for h in held
    ]
    cols = ["holdout", "run", "target", "far", "error", "noise"]
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame({c: [] for c in cols})
    return out[np.isfinite(out.error.to_numpy(dtype=float))].reset_index(drop=True)


def _summary(targets, shared, mixture, held: list[HeldOut], sd) -> pd.DataFrame:
    rows = []
    for t, name in enumerate(targets):
        errs = [h.error[:, t] / np.maximum(h.far, 1e-9) for h in held]
        seen = np.concatenate(errs) if errs else np.array([])
        seen = seen[np.isfinite(seen)]
        rows.append(
            {
                "target": name,
                "shared_rate": float(np.median(shared[:, t])),
                "shared_lower": float(np.quantile(shared[:, t], 0.05)),
                "shared_upper": float(np.quantile(shared[:, t], 0.95)),
                "mixture_rate": float(np.median(mixture[:, t])),
                "mixture_lower": float(np.quantile(mixture[:, t], 0.05)),
                "mixture_upper": float(np.quantile(mixture[:, t], 0.95)),
                "extrapolation_sd": float(sd[t]),
                "heldout_runs": int(seen.size),
                "heldout_rms_per_efold": float(np.sqrt(np.mean(seen**2))) if seen.size else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("target")


def _note(targets, held: list[HeldOut], summary: pd.DataFrame) -> str:
    per = ", ".join(f"{t} {summary.extrapolation_sd[t]:.3g}" for t in targets)
    if not held:
        return (
            f"extrapolation_sd per e-fold: {per} (the prior alone: the sweep has too few model sizes or token "
            f"budgets to hold any out; {MIN_SIZES} sizes are needed)"
        )
    looks = "; ".join(f"{h.label}: {len(h.far)} runs at {h.far.min():.2f}-{h.far.max():.2f} e-folds" for h in held)
    return (
        f"extrapolation_sd per e-fold learned from {len(held)} nested hold-out{'s' if len(held) > 1 else ''} "
        f"({looks}), pooled across {len(targets)} targets: {per}"
    )


def learn_extrapolation_sd(
    table: RunTable,
    law: Law,
    targets: Sequence[str],
    priors: Mapping[str, Prior],
    N0: float,
    D0: float,
    seed: int = 0,
    like: Observed | None = None,
    near: Mapping[str, Sequence[float]] | None = None,
) -> tuple[np.ndarray, str, pd.DataFrame]:
    """Per-target extrapolation_sd, the note saying how it was learned and the hold-out errors
    (:func:`holdout_frame`); see :func:`learn_extrapolation`."""
    out = learn_extrapolation(table, law, targets, priors, N0, D0, seed=seed, like=like, near=near)
    log.info(out.note)
    return out.sd, out.note, out.holdouts
