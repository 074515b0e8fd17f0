"""Parameter blocks that several laws share, with their default priors and the reason for each.

The Chinchilla scale terms (Hoffmann et al. 2022) of the additive, own-weight, BiMix and joint laws are written
once, here, through the slopes that a sweep pins down:

    F + A (N/N0)^-alpha + B (D/D0)^-beta = L_ref * (1 - slope_N phi(alpha, log N/N0) - slope_D phi(beta, log D/D0))
    phi(k, x) = (1 - exp(-k x)) / k,    slope_N = A alpha / L_ref,    slope_D = B beta / L_ref

``slope_N`` is the share of the reference loss lost per e-fold of N at (N0, D0), ``slope_D`` the same per e-fold
of D. The law is linear in the slopes and smooth through an exponent -> 0 (phi -> x), and the floor
F = L_ref (1 - slope_N / alpha - slope_D / beta) follows; it is not forced positive. Sampled as A, B relative to a
positive floor (the laws' coordinates before), the posterior piled against F = 0 wherever the sweep's slopes barely
slow down, and NUTS diverged there (docs/speed.md, "The floor"). The loss itself stays positive through
:func:`positive`. A law takes the block it needs by name; its own parameters stay in its module.
NUTS samples each slope through the term's drop over the fitted range (``model.sampled_by_drop``), with the same
prior: slope and exponent trade along a curve that the drop straightens.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..priors import Prior, log_normal_around
from .base import Param

# Width of the soft floor of :func:`positive`, as a share of the reference loss.
POSITIVE_WIDTH = 0.01


def size_slope() -> Param:
    """``slope_N``: the share of the reference loss lost per e-fold of model size at (N0, D0)."""
    return Param(
        ("target",),
        log_normal_around(
            0.05,
            2.0,
            "Chinchilla's fit (Hoffmann et al. 2022) loses 5.8% of the loss per e-fold of N at 0.5B parameters and "
            "30B tokens; x/÷2 covers 2.5-10% at one sd",
        ),
        "share of the reference loss lost per e-fold of model size, at (N0, D0)",
    )


def token_slope() -> Param:
    """``slope_D``: the share of the reference loss lost per e-fold of training tokens at (N0, D0)."""
    return Param(
        ("target",),
        log_normal_around(
            0.05,
            2.0,
            "Chinchilla's fit loses 5.1% of the loss per e-fold of D at 0.5B parameters and 30B tokens; x/÷2",
        ),
        "share of the reference loss lost per e-fold of training tokens, at (N0, D0)",
    )


def decay(k: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
    """(1 - exp(-k x)) / k: a power term's fall from the reference point, x e-folds on; x itself as k -> 0."""
    return -jnp.expm1(-k * x) / k


def scale_factor(p: Mapping[str, jnp.ndarray], log_n: jnp.ndarray, log_d: jnp.ndarray) -> jnp.ndarray:
    """(n, T) F + A (N/N0)^-alpha + B (D/D0)^-beta over L_ref; 1 at the reference point.

    ``log_n``, ``log_d`` (n, 1) are log(N/N0) and log(D/D0).
    """
    return 1 - p["slope_N"] * decay(p["alpha"], log_n) - p["slope_D"] * decay(p["beta"], log_d)


def scale_shares(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A / L_ref, B / L_ref and the floor F / L_ref from the slopes and exponents (numpy or jax arrays: one draw
    or stacked draws)."""
    a = p["slope_N"] / p["alpha"]
    b = p["slope_D"] / p["beta"]
    return {"A": a, "B": b, "floor": 1 - a - b}


def paper_scale_terms(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The floor ``F`` and the terms ``A``, ``alpha``, ``B``, ``beta`` in loss units, at (N0, D0), from sampled
    coordinates (one draw or stacked draws): what each law's ``paper_parameters`` starts from."""
    L_ref = np.asarray(p["L_ref"])
    share = scale_shares({k: np.asarray(p[k]) for k in ("slope_N", "alpha", "slope_D", "beta")})
    return {
        "F": L_ref * share["floor"],
        "A": L_ref * share["A"],
        "alpha": np.asarray(p["alpha"]),
        "B": L_ref * share["B"],
        "beta": np.asarray(p["beta"]),
    }


def scale_coordinates(A, alpha, B, beta, L_ref) -> dict[str, np.ndarray]:
    """``slope_N``, ``alpha``, ``slope_D``, ``beta`` from the terms A, B at (N0, D0), their exponents and the
    reference loss: the inverse of :func:`paper_scale_terms`, for each law's ``from_paper_parameters``."""
    L_ref, alpha, beta = np.asarray(L_ref, float), np.asarray(alpha, float), np.asarray(beta, float)
    return {
        "slope_N": np.asarray(A, float) * alpha / L_ref,
        "alpha": alpha,
        "slope_D": np.asarray(B, float) * beta / L_ref,
        "beta": beta,
    }


def positive(x: jnp.ndarray, width: float = POSITIVE_WIDTH) -> jnp.ndarray:
    """x where x is well above ``width``, a smooth floor at 0 below: ``width * softplus(x / width)``.

    A loss relative to its reference (about 0.5-1.5 inside a sweep) passes unchanged (to 1e-12 above 0.3). The
    floor only acts where a draw whose fitted floor is negative is taken far beyond the sweep, where the loss
    would otherwise cross 0; ``predict`` says when it does (:class:`bayesmix.reach.FloorWarning`).
    """
    return width * jax.nn.softplus(x / width)


def size_exponent() -> Param:
    """``alpha``: the model-size exponent."""
    return Param(
        ("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give alpha around 0.34"), "model-size exponent"
    )


def token_exponent(reason: str = "Chinchilla fits give beta around 0.28", doc: str = "token exponent") -> Param:
    """``beta``: the token exponent (a law may add to the reason and the meaning)."""
    return Param(("target",), log_normal_around(0.3, 1.6, reason), doc)


def foreign_share() -> Param:
    """``pi``: for a target that is not a training domain, the weight of each domain in its effective share."""
    return Param(
        ("foreign", "domain"),
        Prior("Dirichlet", {"concentration": 1.0}, "flat over the simplex"),
        "weight of each domain in a foreign target's effective share",
    )
