"""The objective of the mixture decision: which target loss, and which risk of it over posterior draws.

- the target loss is a weighted sum of the fitted targets
  (:func:`resolve_target_weights`: one target, a list of them, a mapping, or
  by default the mean of the targets that are training domains);
- the risk is a functional of that loss over draws (:class:`Risk`): the
  posterior mean, an upper quantile (Harrell-Davis weights, smooth in h) or
  CVaR. Risk measures are plain functions of a vector of per-draw losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.special import betainc

from ..data import parse_target_weights

__all__ = ["Risk", "parse_risk", "resolve_target_weights"]


@dataclass(frozen=True)
class Risk:
    """A risk functional of the loss over posterior draws: mean, upper quantile or CVaR."""

    kind: str  # "mean" | "quantile" | "cvar"
    level: float | None = None

    @property
    def label(self) -> str:
        """Human name, e.g. ``CVaR 0.9``."""
        if self.kind == "mean":
            return "posterior mean"
        return f"{self.level:g} quantile" if self.kind == "quantile" else f"CVaR {self.level:g}"

    @property
    def spec(self) -> str:
        """The text form ``parse_risk`` reads back."""
        return "mean" if self.kind == "mean" else f"{self.kind}:{self.level:g}"

    def weights(self, S: int) -> np.ndarray:
        """(S,) weights on the draws sorted ascending; the risk is their dot product with the sorted losses."""
        i = np.arange(S + 1) / S
        if self.kind == "mean":
            return np.full(S, 1.0 / S)
        if self.kind == "quantile":
            # Harrell-Davis: a Beta-weighted average of order statistics,
            # smooth in the losses where a plain quantile jumps between draws.
            a, b = self.level * (S + 1), (1 - self.level) * (S + 1)
            return np.diff(betainc(a, b, i))
        # CVaR_a: the mean of the losses above the a-quantile; the draw that
        # straddles the a-quantile gets the fractional weight.
        return np.diff(np.clip(i - self.level, 0, None)) / (1 - self.level)

    def value(self, losses: np.ndarray) -> float:
        """The risk of a vector of per-draw losses."""
        losses = np.asarray(losses, dtype=float)
        return float(np.sort(losses) @ self.weights(losses.size))


def parse_risk(spec: str | Risk) -> Risk:
    """``"mean"``, ``"quantile:0.9"`` or ``"cvar:0.9"`` -> :class:`Risk` (ValueError otherwise)."""
    if isinstance(spec, Risk):
        return spec
    text = str(spec).strip().lower()
    if text in ("mean", "expected", "expectation"):
        return Risk("mean")
    kind, sep, level = text.partition(":")
    if kind in ("quantile", "cvar") and sep:
        try:
            q = float(level)
        except ValueError:
            q = float("nan")
        if 0 < q < 1:
            return Risk(kind, q)
        raise ValueError(f"risk {spec!r}: the level must be a number strictly between 0 and 1, e.g. {kind}:0.9")
    raise ValueError(f"risk {spec!r}: use 'mean', 'quantile:Q' or 'cvar:A' with Q, A in (0, 1), e.g. cvar:0.9")


def resolve_target_weights(
    targets: Sequence[str], domains: Sequence[str], target=None, target_weights=None
) -> tuple[np.ndarray, str]:
    """Weights of each fitted target in the objective, and the objective in words.

    ``target`` names one target (or a list: their mean); ``target_weights`` is a
    mapping or ``"c4=1,book=1"`` (a weighted sum, not renormalised, as in
    ``Fit.predict``). With neither: the mean over the targets that are
    training domains.
    """
    targets = list(targets)
    if target is not None and target_weights is not None:
        raise ValueError("give either target or target_weights, not both")
    if target is not None:
        names = [target] if isinstance(target, str) else list(target)
        mapping = {}
        for t in names:
            key = t if t in targets else (t[: -len("_loss")] if t.endswith("_loss") else None)
            if key not in targets:
                raise ValueError(f"unknown target {t!r}; this model's targets are {', '.join(targets)}")
            mapping[key] = 1.0 / len(names)
        words = names[0] if len(names) == 1 else f"the mean of {', '.join(names)}"
    elif target_weights is not None:
        mapping = (
            parse_target_weights(target_weights, targets) if isinstance(target_weights, str) else dict(target_weights)
        )
        for t in mapping:
            if t not in targets:
                raise ValueError(f"target weights: unknown target {t!r}; this model's targets are {', '.join(targets)}")
        if any(not (math.isfinite(v) and v >= 0) for v in mapping.values()) or not any(mapping.values()):
            raise ValueError(f"target weights must be finite, >= 0 and not all zero; got {mapping}")
        words = _weighted_words({t: float(v) for t, v in mapping.items() if v}, len(targets))
    else:
        own = [t for t in targets if t in domains] or targets
        mapping = {t: 1.0 / len(own) for t in own}
        words = f"the mean of the {len(own)} domain targets" if len(own) > 1 else own[0]
    w = np.array([float(mapping.get(t, 0.0)) for t in targets])
    return w, words


def _weighted_words(mapping: Mapping[str, float], n_targets: int) -> str:
    """A weighted sum of targets in words: 'the mean of ...' / 'the sum of ...' when the weights are equal."""
    names, vals = list(mapping), np.array(list(mapping.values()))
    if len(names) == 1:
        return names[0] if vals[0] == 1 else f"{vals[0]:.3g} x {names[0]}"
    listed = ", ".join(names) if len(names) <= 4 else f"{len(names)} targets ({', '.join(names)})"
    if np.allclose(vals, 1.0 / len(names)):
        return f"the mean of {listed}"
    if np.allclose(vals, 1.0):
        return f"the sum of {listed}"
    return " + ".join(f"{v:.3g} x {t}" for t, v in mapping.items())
