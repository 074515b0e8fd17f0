"""Parameter blocks that several laws share, with their default priors and the reason for each.

The scale terms are written the same way in every law that has them: a term
at the reference scale as a multiple of the law's floor (``F`` or ``E``),
and its exponent, with priors centred on Chinchilla's fit (Hoffmann et al.
2022). A law takes the block it needs by name; its own parameters stay in
its module.
"""

from __future__ import annotations

from ..priors import Prior, log_normal_around
from .base import Param


def size_term(relative_to: str) -> Param:
    """``A_rel``: the model-size term at N0, as a multiple of the law's ``relative_to`` (F or E)."""
    return Param(
        ("target",),
        log_normal_around(
            0.25, 3.0, "Chinchilla's fit (Hoffmann et al. 2022) gives A (N/N0)^-alpha / E = 0.26 at 0.5B parameters"
        ),
        f"model-size term at N0, as a multiple of {relative_to}",
    )


def token_term(relative_to: str) -> Param:
    """``B_rel``: the token term at D0, as a multiple of the law's ``relative_to`` (F or E)."""
    return Param(
        ("target",),
        log_normal_around(0.25, 3.0, "Chinchilla's fit gives B (D/D0)^-beta / E = 0.31 at 20B tokens"),
        f"token term at D0, as a multiple of {relative_to}",
    )


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
