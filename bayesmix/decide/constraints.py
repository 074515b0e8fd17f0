"""The set of mixtures a user allows: floors, caps, token availability, closeness to a baseline.

A mixture h is feasible when

- it is on the simplex: h_j >= 0, sum_j h_j = 1;
- floor_j <= h_j <= cap_j for every domain;
- a domain with U_j unique tokens, repeated at most ``max_epochs`` times, can
  supply at most U_j x max_epochs of the D training tokens, so
  h_j <= U_j x max_epochs / D (this tightens cap_j);
- with a baseline b and ``max_tv``: the total-variation distance
  0.5 sum_j |h_j - b_j| <= max_tv.

The set is a convex polytope. :meth:`MixtureConstraints.project` computes the
exact Euclidean projection onto it (the optimiser's feasibility repair and its
optimality check both rely on it), and :func:`build_constraints` refuses, with
a message naming the constraint, a set that is empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..data import RunTableError, parse_mixture

# Weights are kept at least this large inside the optimiser: laws with
# h_j^gamma terms (gamma < 1) have an infinite slope at 0, which a masked
# implementation returns as 0, and an optimiser sitting exactly at 0 would
# read that as "no gain from this domain". 1e-9 is zero for any practical
# purpose and keeps every gradient finite. It never loosens a user's floor.
MIN_WEIGHT = 1e-9

# Repeating data up to about 4 epochs costs almost nothing against fresh
# tokens (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models").
DEFAULT_MAX_EPOCHS = 4.0


class InfeasibleMixtureError(ValueError):
    """The constraints admit no mixture; the message says which constraint to relax."""


PerDomain = float | str | Mapping[str, float] | Sequence[float] | np.ndarray | None


def per_domain_values(value: PerDomain, domains: Sequence[str], what: str, default: float) -> np.ndarray:
    """One number per domain from a user's specification; returns a float array (K,).

    Accepted: ``None`` (``default`` everywhere); one number (every domain);
    a mapping or text ``"arxiv=0.05,book=0.02"`` (named domains; the rest get
    ``default``; ``weight_<d>`` names work too); a sequence or text of K
    numbers in domain order.
    """
    K = len(domains)
    if value is None:
        return np.full(K, float(default))
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        return np.full(K, float(value))
    if isinstance(value, str):
        entries = [e.strip() for e in value.split(",")]
        if not value.strip() or any(not e for e in entries):
            raise ValueError(f"{what} {value!r}: empty entry (check for a stray comma)")
        if any("=" in e for e in entries):
            if not all("=" in e for e in entries):
                raise ValueError(f"{what} {value!r}: mixes named (domain=value) and positional entries")
            mapping = {}
            for e in entries:
                name, _, text = (p.strip() for p in e.partition("="))
                mapping[name] = _number(text, f"{what} {value!r}, domain {name!r}")
            value = mapping
        elif len(entries) == 1:
            return np.full(K, _number(entries[0], f"{what} {value!r}"))
        else:
            value = [_number(e, f"{what} {value!r}") for e in entries]
    if isinstance(value, Mapping):
        out = np.full(K, float(default))
        for name, x in value.items():
            key = name[len("weight_") :] if name not in domains and str(name).startswith("weight_") else name
            if key not in domains:
                raise ValueError(f"{what}: unknown domain {name!r}; domains are {', '.join(domains)}")
            out[list(domains).index(key)] = float(x)
        return out
    arr = np.asarray(value, dtype=float).ravel()
    if arr.size != K:
        raise ValueError(
            f"{what}: {arr.size} values for {K} domains ({', '.join(domains)}); give one per domain or use domain=value"
        )
    return arr


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None


def as_mixture(value, domains: Sequence[str], what: str = "baseline") -> np.ndarray:
    """A mixture from an array, a mapping or text (``"0.1,0.9"`` or ``"c4=0.5,book=0.5"``); returns (K,)."""
    if isinstance(value, str):
        try:
            return parse_mixture(value, domains)
        except RunTableError as e:
            raise ValueError(f"{what}: {e}") from None
    h = per_domain_values(value, domains, what, 0.0)
    if not np.all(np.isfinite(h)) or np.any(h < 0):
        raise ValueError(f"{what}: weights must be finite and >= 0; got {np.round(h, 4).tolist()}")
    if abs(h.sum() - 1) > 1e-3:
        raise ValueError(f"{what}: weights sum to {h.sum():.4g}, not 1")
    return h / h.sum()


@dataclass(frozen=True, eq=False)
class MixtureConstraints:
    """A convex set of mixtures: per-domain bounds on the simplex, optionally a TV ball around a baseline."""

    domains: tuple[str, ...]
    lower: np.ndarray  # (K,) floors (as the user gave them)
    upper: np.ndarray  # (K,) effective caps: min(cap, token availability, 1)
    upper_source: tuple[str, ...]  # per domain, what sets the cap ("", "cap", "unique tokens")
    baseline: np.ndarray | None = None
    max_tv: float | None = None

    @property
    def lower_internal(self) -> np.ndarray:
        """Floors the optimiser uses: the user's, but never below MIN_WEIGHT."""
        lo = np.maximum(self.lower, np.minimum(MIN_WEIGHT, self.upper))
        return lo if lo.sum() <= 1 else self.lower

    def tv(self, h: np.ndarray) -> float:
        """Total-variation distance of h from the baseline (NaN without one)."""
        return float("nan") if self.baseline is None else 0.5 * float(np.abs(np.asarray(h) - self.baseline).sum())

    def violations(self, h: np.ndarray, tol: float = 1e-9) -> list[str]:
        """The constraints h breaks by more than ``tol``, in words (empty when feasible)."""
        h = np.asarray(h, dtype=float)
        out = []
        if abs(h.sum() - 1) > tol:
            out.append(f"weights sum to {h.sum():.12g}")
        for j, d in enumerate(self.domains):
            if h[j] < self.lower[j] - tol:
                out.append(f"{d} = {h[j]:.6g} below its floor {self.lower[j]:.6g}")
            if h[j] > self.upper[j] + tol:
                out.append(f"{d} = {h[j]:.6g} above its cap {self.upper[j]:.6g}")
        if self.max_tv is not None and self.tv(h) > self.max_tv + tol:
            out.append(f"distance from the baseline {self.tv(h):.6g} > max_tv {self.max_tv:.6g}")
        return out

    def project(self, z: np.ndarray) -> np.ndarray:
        """The feasible mixture nearest to z (Euclidean), exact up to float rounding.

        Why this form: with multipliers lam (sum to 1) and mu >= 0 (TV ball),
        the problem separates per domain into
        min 0.5 (h - z)^2 + lam h + mu |h - b| on [lo, hi], whose solution is
        clip(b + shrink(z - lam - b, mu), lo, hi). The weight sum falls with lam
        and the distance from b falls with mu (the dual is concave), so two
        nested bisections find both. The returned point always satisfies the
        TV bound (the bracket side that meets it is kept).
        """
        z = np.asarray(z, dtype=float)
        lo, hi = self.lower_internal, self.upper
        b = self.baseline if self.max_tv is not None else None
        if b is None:
            return _fix_sum(z, 0.0, None, lo, hi)
        h = _fix_sum(z, 0.0, b, lo, hi)
        if 0.5 * np.abs(h - b).sum() <= self.max_tv:
            return h

        def excess(mu):  # distance beyond the bound; non-increasing in mu
            return 0.5 * np.abs(_fix_sum(z, mu, b, lo, hi) - b).sum() - self.max_tv

        mu_lo, mu_hi = 0.0, 1e-3
        e_lo, e_hi = excess(mu_lo), excess(mu_hi)
        while e_hi > 0:
            mu_lo, e_lo = mu_hi, e_hi
            mu_hi *= 2
            e_hi = excess(mu_hi)
            if mu_hi > 1e12:  # cannot happen for a set that passed build_constraints
                raise InfeasibleMixtureError("no mixture meets the distance bound from the baseline")
        # The excess is piecewise linear in mu: regula falsi (Illinois) lands
        # on the root in a few steps; the side meeting the bound is kept.
        side = 0
        for _ in range(100):
            if e_hi >= -1e-15 or mu_hi - mu_lo <= 1e-16 * mu_hi:
                break
            mid = mu_hi - e_hi * (mu_hi - mu_lo) / (e_hi - e_lo)
            if not mu_lo < mid < mu_hi:
                mid = 0.5 * (mu_lo + mu_hi)
            e_mid = excess(mid)
            if e_mid > 0:
                mu_lo, e_lo = mid, e_mid
                if side == -1:
                    e_hi *= 0.5
                side = -1
            else:
                mu_hi, e_hi = mid, e_mid
                if side == 1:
                    e_lo *= 0.5
                side = 1
        return _fix_sum(z, mu_hi, b, lo, hi)

    def describe(self) -> str:
        """The constraints in words, e.g. ``floors c4 0.1; caps github 0.3 (cap); within TV 0.1 of the baseline``."""
        parts = []
        floors = [f"{d} {x:.3g}" for d, x in zip(self.domains, self.lower) if x > 0]
        caps = [f"{d} {x:.3g} ({src})" for d, x, src in zip(self.domains, self.upper, self.upper_source) if x < 1]
        if floors:
            parts.append("floors " + ", ".join(floors))
        if caps:
            parts.append("caps " + ", ".join(caps))
        if self.max_tv is not None:
            parts.append(f"within TV {self.max_tv:g} of the baseline")
        return "; ".join(parts) if parts else "none"

    def table(self) -> pd.DataFrame:
        """Per domain: floor, cap and what sets the cap."""
        return pd.DataFrame(
            {"domain": self.domains, "floor": self.lower, "cap": self.upper, "cap_from": self.upper_source}
        )


def _shifted(z, lam, mu, b, lo, hi):
    """clip(b + shrink(z - lam - b, mu), lo, hi), vectorised over rows of lam (..., 1)."""
    y = z - lam
    if b is not None:
        d = y - b
        y = b + np.sign(d) * np.maximum(np.abs(d) - mu, 0.0)
    return np.clip(y, lo, hi)


def _fix_sum(z, mu, b, lo, hi) -> np.ndarray:
    """The clip-shift of z whose weights sum to 1, solved exactly.

    The weight sum is continuous, non-increasing and piecewise linear in the
    shift lam, with kinks only where a weight meets a bound or the baseline
    (lam in z - {lo, hi, b} -/+ mu). Evaluate it at every kink, find the two
    kinks that straddle 1 and interpolate linearly: no iteration, no tolerance.
    """
    ref = b if b is not None else z
    kinks = np.concatenate([z - lo - mu, z - lo + mu, z - hi - mu, z - hi + mu, z - ref - mu, z - ref + mu])
    kinks = np.unique(kinks)
    sums = _shifted(z[None, :], kinks[:, None], mu, b, lo, hi).sum(1)  # non-increasing
    above = np.nonzero(sums >= 1.0)[0]
    below = np.nonzero(sums <= 1.0)[0]
    if len(above) == 0 or len(below) == 0:  # only when the box cannot sum to 1 (refused earlier)
        return _shifted(z, kinks[0] if len(above) == 0 else kinks[-1], mu, b, lo, hi)
    i, k = above[-1], below[0]
    if k <= i:  # a kink sits exactly on 1
        return _shifted(z, kinks[k], mu, b, lo, hi)
    s_i, s_k = sums[i], sums[k]
    lam = kinks[i] + (s_i - 1.0) * (kinks[k] - kinks[i]) / (s_i - s_k)
    return _shifted(z, lam, mu, b, lo, hi)


def build_constraints(
    domains: Sequence[str],
    tokens: float,
    floors: PerDomain = None,
    caps: PerDomain = None,
    unique_tokens: PerDomain = None,
    max_epochs: float = DEFAULT_MAX_EPOCHS,
    baseline=None,
    max_tv: float | None = None,
) -> MixtureConstraints:
    """Check the user's constraints and return the feasible set.

    ``unique_tokens`` gives U_j per domain (domains not named are unlimited);
    with ``tokens`` = D it caps h_j at U_j x max_epochs / D. ``baseline`` is a
    mixture (array, mapping or text); ``max_tv`` needs one. Raises
    :class:`InfeasibleMixtureError` naming the constraint when no mixture
    satisfies them all, and ``ValueError`` for malformed input.
    """
    domains = tuple(domains)
    K = len(domains)
    if not (math.isfinite(tokens) and tokens > 0):
        raise ValueError(f"tokens must be a positive number; got {tokens}")
    lo = per_domain_values(floors, domains, "floors", 0.0)
    cap = per_domain_values(caps, domains, "caps", 1.0)
    for name, arr in (("floor", lo), ("cap", cap)):
        bad = [f"{d}={x:g}" for d, x in zip(domains, arr) if not (np.isfinite(x) and 0 <= x <= 1)]
        if bad:
            raise ValueError(f"every {name} must be between 0 and 1; got {', '.join(bad)}")
    if not (math.isfinite(max_epochs) and max_epochs > 0):
        raise ValueError(f"max_epochs must be a positive number; got {max_epochs}")
    U = per_domain_values(unique_tokens, domains, "unique tokens", np.inf)
    bad = [f"{d}={x:g}" for d, x in zip(domains, U) if not x > 0]
    if bad:
        raise ValueError(f"unique tokens must be positive; got {', '.join(bad)}")
    supply = U * max_epochs / tokens
    hi = np.minimum(cap, np.minimum(supply, 1.0))
    source = tuple(
        "unique tokens" if supply[j] < min(cap[j], 1.0) else ("cap" if cap[j] < 1.0 else "") for j in range(K)
    )

    def cap_words(j):
        if source[j] == "unique tokens":
            return f"cap {hi[j]:.4g} (unique tokens {U[j]:.3g} x {max_epochs:g} epochs / {tokens:.3g} training tokens)"
        return f"cap {hi[j]:.4g}"

    crossed = [j for j in range(K) if lo[j] > hi[j]]
    if crossed:
        raise InfeasibleMixtureError(
            "floor above cap for " + "; ".join(f"{domains[j]}: floor {lo[j]:.4g} > {cap_words(j)}" for j in crossed)
        )
    if lo.sum() > 1 + 1e-12:
        raise InfeasibleMixtureError(
            f"the floors sum to {lo.sum():.4g} > 1: lower some floors "
            f"({', '.join(f'{d}={x:g}' for d, x in zip(domains, lo) if x > 0)})"
        )
    if hi.sum() < 1 - 1e-12:
        limited = [cap_words(j).replace("cap", f"{domains[j]}:", 1) for j in range(K) if source[j]]
        raise InfeasibleMixtureError(
            f"the caps sum to {hi.sum():.4g} < 1, so no mixture fits under them; raise a cap, the unique tokens or "
            f"max_epochs, or train on fewer tokens. Caps: {'; '.join(limited)}"
        )

    b = None
    if baseline is not None:
        b = as_mixture(baseline, domains, "baseline")
    if max_tv is not None:
        if b is None:
            raise ValueError("max_tv (distance from the baseline) needs a baseline mixture")
        if not (math.isfinite(max_tv) and 0 <= max_tv <= 1):
            raise ValueError(f"max_tv must be between 0 and 1 (a total-variation distance); got {max_tv}")
        need = min_tv(b, lo, hi)
        if need > max_tv + 1e-12:
            raise InfeasibleMixtureError(
                f"the nearest mixture meeting the floors and caps is {need:.4g} (total variation) from the baseline, "
                f"more than max_tv = {max_tv:g}; raise max_tv to at least {need:.4g} or relax the floors/caps the "
                "baseline breaks"
            )
    return MixtureConstraints(domains, lo, hi, source, b, None if max_tv is None else float(max_tv))


def min_tv(b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Smallest total-variation distance from b to a mixture within [lo, hi].

    Clip b into the box (c), then move |1 - sum c| of weight within the box:
    every feasible h has |h - b|_1 = |h - c|_1 + |c - b|_1 >= |1 - sum c| + |c - b|_1,
    and moving weight monotonically attains it.
    """
    c = np.clip(b, lo, hi)
    return 0.5 * (float(np.abs(c - b).sum()) + abs(1.0 - float(c.sum())))


# --------------------------------------------------------------------------- #
# The same projection in jax, for optimising many draws at once
# --------------------------------------------------------------------------- #


def project_jax(z, lo, hi, b, max_tv, use_tv: bool, iters: int = 60):
    """:meth:`MixtureConstraints.project` for one point in jax (vmap it for a batch).

    ``lo``, ``hi``, ``b`` are (K,) arrays, ``max_tv`` a scalar; ``use_tv``
    (static) switches the distance bound on. lam is solved exactly from the
    kinks of the weight sum; mu by a fixed-length bisection, keeping the side
    that meets the bound. Beyond mu_max every weight sits at b or a bound.
    """
    import jax
    import jax.numpy as jnp

    def shifted(lam, mu):
        d = z - lam - b
        return jnp.clip(b + jnp.sign(d) * jnp.maximum(jnp.abs(d) - mu, 0.0), lo, hi)

    def fix_sum(mu):
        kinks = jnp.sort(jnp.concatenate([z - lo - mu, z - lo + mu, z - hi - mu, z - hi + mu, z - b - mu, z - b + mu]))
        sums = jax.vmap(lambda lam: shifted(lam, mu).sum())(kinks)  # non-increasing
        n = kinks.shape[0]
        i = jnp.clip(jnp.sum(sums >= 1.0) - 1, 0, n - 2)
        s_i, s_k = sums[i], sums[i + 1]
        gap = s_i - s_k
        lam = jnp.where(
            gap > 0, kinks[i] + (s_i - 1.0) * (kinks[i + 1] - kinks[i]) / jnp.where(gap > 0, gap, 1.0), kinks[i]
        )
        return shifted(lam, mu)

    if not use_tv:
        return fix_sum(0.0)

    def excess(mu):
        return 0.5 * jnp.abs(fix_sum(mu) - b).sum() - max_tv

    def step(_, bracket):
        a, c = bracket
        mid = 0.5 * (a + c)
        over = excess(mid) > 0
        return jnp.where(over, mid, a), jnp.where(over, c, mid)

    mu_max = 2.0 * (jnp.max(jnp.abs(z - b)) + jnp.max(jnp.abs(z - lo)) + jnp.max(jnp.abs(z - hi)) + 1.0)
    _, mu_hi = jax.lax.fori_loop(0, iters, step, (jnp.asarray(0.0), mu_max))
    mu = jnp.where(excess(0.0) <= 0, 0.0, mu_hi)
    return fix_sum(mu)
