"""Priors as small, serialisable specifications.

A fitted model must carry its priors in the saved file, so a prior is not a
NumPyro distribution object but a ``Prior(family, **params)`` record that turns
into one on demand. Users override a law's defaults with the same records, or
with a string such as ``"LogNormal(-1.2, 0.3)"`` (handy on the command line).
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import jax.numpy as jnp
import numpyro.distributions as dist

# family -> (numpyro class, positional parameter names)
_FAMILIES: dict[str, tuple[type, tuple[str, ...]]] = {
    "Normal": (dist.Normal, ("loc", "scale")),
    "LogNormal": (dist.LogNormal, ("loc", "scale")),
    "HalfNormal": (dist.HalfNormal, ("scale",)),
    "HalfCauchy": (dist.HalfCauchy, ("scale",)),
    "StudentT": (dist.StudentT, ("df", "loc", "scale")),
    "Laplace": (dist.Laplace, ("loc", "scale")),
    "Exponential": (dist.Exponential, ("rate",)),
    "Gamma": (dist.Gamma, ("concentration", "rate")),
    "Beta": (dist.Beta, ("concentration1", "concentration0")),
    "Uniform": (dist.Uniform, ("low", "high")),
    # Symmetric Dirichlet over a parameter's last dimension (simplex weights).
    "Dirichlet": (dist.Dirichlet, ("concentration",)),
}


class PriorError(ValueError):
    """A prior specification that cannot be used."""


@dataclass(frozen=True)
class Prior:
    """A prior family with scalar parameters, e.g. ``Prior("LogNormal", loc=-1.2, scale=0.3)``.

    ``why`` is a one-line reason for the choice; it is saved with the model so a
    reader of a fitted file knows where each prior came from.
    """

    family: str
    params: Mapping[str, float] = field(default_factory=dict)
    why: str = ""

    def __post_init__(self) -> None:
        if self.family not in _FAMILIES:
            raise PriorError(f"unknown prior family {self.family!r}; known: {', '.join(sorted(_FAMILIES))}")
        names = _FAMILIES[self.family][1]
        missing = [n for n in names if n not in self.params]
        extra = [n for n in self.params if n not in names]
        if missing or extra:
            raise PriorError(
                f"{self.family} takes parameters {', '.join(names)}; got {', '.join(self.params) or 'none'}"
            )
        for name, value in self.params.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise PriorError(f"{self.family} parameter {name}={value!r} is not a finite number")

    def to_numpyro(self, shape: tuple[int, ...] = ()) -> dist.Distribution:
        """Return the NumPyro distribution whose single event has ``shape``.

        Every dimension is an event dimension: a law's parameter block is one
        sample site. A Dirichlet spans the last dimension.
        """
        cls, names = _FAMILIES[self.family]
        args = [float(self.params[n]) for n in names]
        if self.family == "Dirichlet":
            if not shape:
                raise PriorError("a Dirichlet prior needs a parameter with a dimension to span")
            base = dist.Dirichlet(jnp.full(shape[-1], args[0]))
            return base.expand(shape[:-1]).to_event(len(shape) - 1)
        return cls(*args).expand(shape).to_event(len(shape))

    def __str__(self) -> str:
        names = _FAMILIES[self.family][1]
        return f"{self.family}({', '.join(f'{self.params[n]:g}' for n in names)})"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, used in saved models."""
        return {"family": self.family, "params": dict(self.params), "why": self.why}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Prior":
        """Inverse of :meth:`to_dict`."""
        return cls(d["family"], {k: float(v) for k, v in d["params"].items()}, d.get("why", ""))

    @classmethod
    def parse(cls, text: str) -> "Prior":
        """Parse ``"LogNormal(-1.2, 0.3)"`` or ``"Normal(loc=0, scale=1)"``."""
        try:
            node = ast.parse(text.strip(), mode="eval").body
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                raise ValueError
            family = node.func.id
            names = _FAMILIES.get(family, (None, ()))[1]
            params = {names[i]: float(ast.literal_eval(a)) for i, a in enumerate(node.args)}
            params.update({k.arg: float(ast.literal_eval(k.value)) for k in node.keywords})
        except (SyntaxError, ValueError, IndexError, TypeError):
            raise PriorError(
                f"cannot read prior {text!r}; write e.g. 'LogNormal(-1.2, 0.3)' or 'HalfNormal(scale=0.05)'"
            ) from None
        return cls(family, params)


def log_normal_around(value: float, factor: float, why: str = "") -> Prior:
    """LogNormal whose median is ``value`` and whose 1-sigma band is x/÷ ``factor``."""
    return Prior("LogNormal", {"loc": math.log(value), "scale": math.log(factor)}, why)


def priors_to_json(priors: Mapping[str, Prior]) -> str:
    """Serialise a name -> Prior mapping."""
    return json.dumps({k: p.to_dict() for k, p in priors.items()}, sort_keys=True)


def priors_from_json(text: str) -> dict[str, Prior]:
    """Inverse of :func:`priors_to_json`."""
    return {k: Prior.from_dict(v) for k, v in json.loads(text).items()}


def coerce_prior(value: Prior | str | Mapping[str, Any]) -> Prior:
    """Accept a Prior, a string like ``"Normal(0, 1)"`` or a dict from :meth:`Prior.to_dict`."""
    if isinstance(value, Prior):
        return value
    if isinstance(value, str):
        return Prior.parse(value)
    if isinstance(value, Mapping):
        return Prior.from_dict(value)
    raise PriorError(f"cannot use {value!r} as a prior; give a bayesmix.Prior or a string like 'Normal(0, 1)'")
