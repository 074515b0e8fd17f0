"""Exponential mixing law (Ye et al. 2024, Data Mixing Laws, ICLR 2025,
arXiv:2403.16952) with its step and size laws, as ONE Bayesian model.

    L_i(h, N, D) = E_i + exp(sum_j t_ij (h_j - 1/K)) * [A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i]
    t_ij = s_ij (1 + R_i) / R_i,   R_i = (A_i + B_i) / E_i  (the reducible share at N0, D0)
    s_ij = CROSS_SCALE z_ij  (j not i's own domain),   s_ii = OWN_SCALE z_ii,   z ~ StudentT(3, 0, 1)

How it maps onto the paper's three-stage pipeline. The paper fits (1) a step
law per run, L(D) = c + k (D/D0)^-beta, to predict each small run at the target
token count; (2) a size law per mixture across model sizes, L(N) = c + k
(N/N0)^-alpha, to the target size; (3) the mixing law L(h) = c + k exp(t . h)
on those predictions. This law has exactly those three forms as its sections:

- at fixed (h, N) it is a step law in D with c = E + m(h) A (N/N0)^-alpha and
  k = m(h) B (m(h) = the exponential factor);
- at fixed (h, D) it is a size law in N with c = E + m(h) B (D/D0)^-beta and
  k = m(h) A;
- at fixed (N, D) it is the mixing law with c = E and
  k = A (N/N0)^-alpha + B (D/D0)^-beta (t is the centred matrix, see below).

The pipeline's per-run and per-mixture constants become functions of (h, N, D)
with shared exponents, so every run informs every stage and the posterior
uncertainty of the exponents, the interaction matrix and E reaches each
prediction at the target (N, D) -- nothing is passed on as a point estimate.
It extrapolates in N and D through the two power laws.

What this choice assumes (and the pipeline does not): the mixture multiplies
the reducible loss as a whole, so for ONE target the best mixture is the same
at every scale; the best mixture for a weighted sum of targets still moves,
because the targets' reducible losses shrink at different rates. A second
interaction matrix for the token term would let a single target's optimum
move too, at K more parameters per target.

Parameters per target: E, A, alpha, B, beta and z_ij for each of K
domains: K + 5 (12 for the 7 SlimPajama domains). At one scale the law has the
paper's K + 2 (c, k, t).

Sampled coordinates (the level/ratio structure of the additive and BiMix
laws): ``L_ref`` = E + A + B, the loss at (N0, D0) and the uniform mixture;
``R_rel`` = (A + B) / E, the reducible loss there as a multiple of E;
``A_share`` = A / (A + B); the exponents; ``z`` (slopes, below). So

    L = F (1 + m(h) R_rel (A_share (N/N0)^-alpha + (1 - A_share) (D/D0)^-beta)),   F = L_ref / (1 + R_rel) = E.

Why (measured on SlimPajama, ``benchmarks/scale_extrapolation.py --split
both``, 4 chains x 1000 + 1000): with E, A and B on their own log scales the
data fix their sum far better than any one of them, a curved ridge
E = level - A - B: scale split 309 divergences (7.7%), R-hat 1.035, 201
leapfrog steps per draw for 'book'; at one scale (the mixture split, where
the data see only c = E and k = A + B) 242 divergences, R-hat 1.078, 1235
draws at maximum tree depth. With a level and ratios A / E, B / E the scale
split was clean (0 divergences at target_accept 0.99), but at one scale the
data fix their sum R (through the curvature of the exponential) and not the
split: an L-shaped ridge in (log A_rel, log B_rel) (R-hat 1.034 for arxiv).
Sampling the sum and the split removes it: at one scale the split is prior
alone. The paper's numbers follow from :func:`paper_parameters`
(:func:`from_paper_parameters` goes the other way).

The interaction matrix (why this parameterisation):

- Identification: because sum_j h_j = 1, adding a constant to every t_ij of a
  target changes nothing but k. The factor is written around the uniform
  mixture, exp(t . (h - 1/K)), so A and B are the scale terms AT the uniform
  mixture (of the order of the loss, not trading with t), and only the
  centred matrix t_ij - mean_j t_ij is identified by data; its row mean is
  held by the prior alone (a straight, prior-shaped direction that NUTS
  crosses easily). :func:`interaction_matrix` returns the centred matrix:
  t_ij < 0 means domain j lowers target i's loss more than the average domain
  does.
- Sampled as slopes: at (N0, D0) and the uniform mixture the law is
  E (1 + R m(h)), whose log-slope in h_j is s_ij = t_ij R / (1 + R). At one
  scale the data fix that slope but barely the split of the loss into c = E
  and k = A + B (it shows only in the curvature of the exponential), so
  sampling t itself leaves a hyperbolic ridge t R / (1 + R) = const (measured
  on the SlimPajama mixture split, 4 x 1000 draws, t sampled: R-hat 1.055,
  134 leapfrog steps per draw for arxiv). The slope is what is sampled and
  shrunk, and t = s (1 + R) / R is derived (:func:`interactions`).
- Shrinkage: s_ij = CROSS_SCALE z_ij for another domain j and
  s_ii = OWN_SCALE z_ii for a target's own domain, with z ~ StudentT(3, 0, 1).
  Cross-domain slopes are pulled toward 0 (prior scale 0.25: moving 30% of
  the mixture to another domain changes the loss by about 7% at one prior
  scale), while the Student-t tails let a few strong ones survive
  (horseshoe-like behaviour without the horseshoe's funnels). A domain's
  effect on its own loss is expected to be the largest entry (Ye et al.'s
  fitted matrices are dominated by the diagonal), so it is not shrunk: prior
  scale 1 (on SlimPajama a domain's own log-loss slope at the uniform mixture
  is -0.15 to -0.6). Targets that are not training domains have no own
  entry: all their slopes get the cross-domain scale.
- Why the scales are fixed rather than learned (measured, simulated 3-domain
  sweep, 2 chains x 300 draws, measured with t itself sampled): a learned
  scale can only be written non-centred here (t = tau z; a law declares independent priors), and with
  interactions that the data determine well that form leaves a curved ridge
  in (tau, z) -- and a second one through the unidentified row mean -- that
  the Laplace-whitened NUTS cannot follow. One learned tau for all entries:
  9% divergent transitions, R-hat 1.5; a learned tau for the cross-domain
  entries only: 7.7% divergent, R-hat 1.07, ESS 13. A learned scale needs the
  centred form t ~ StudentT(3, 0, tau), i.e. a hook through which a law can
  add a hierarchical prior term (proposed for laws/base.py).
- Override the z prior with e.g. ``priors={"z": "Normal(0, 1)"}`` or
  ``"Laplace(0, 1)"`` (Bayesian lasso) to change the shrinkage family.

Zero weights: the law is linear in h inside the exponential, so h_j = 0 needs
no floor or mask: every value is finite. A target whose own domain has weight
0 is predicted by the same smooth exponential at h_i = 0; if no fitted run had
that domain at 0, read it as an extrapolation of the fitted interaction (the
exponential form levels off near 0, where own-weight power laws rise steeply,
so such a prediction is likely optimistic).

Targets that are not training domains (e.g. a downstream set) need no further
convention: their row of t spans all domains under the cross-domain scale.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from ..priors import Prior, log_normal_around
from .base import Inputs, Law, Param
from .registry import register


# Prior scales of a target's log-loss slope in its own domain's weight and in
# the others' (see the module docstring for the reasons).
OWN_SCALE = 1.0
CROSS_SCALE = 0.25


def slopes(z: jnp.ndarray, own: jnp.ndarray) -> jnp.ndarray:
    """(..., T, K) the slopes s_ij = d log L_i / d h_j at the uniform mixture and (N0, D0): CROSS_SCALE z_ij, OWN_SCALE z_ii."""
    K = z.shape[-1]
    is_own = jnp.arange(K)[None, :] == jnp.asarray(own)[:, None]  # no match for own == -1
    return jnp.where(is_own, OWN_SCALE, CROSS_SCALE) * z


def interactions(p: Mapping[str, jnp.ndarray], own: jnp.ndarray) -> jnp.ndarray:
    """(..., T, K) the raw interaction matrix t = s (1 + R) / R, R = ``R_rel``, from parameters or stacked draws.

    At (N0, D0) and the uniform mixture the law is F (1 + R m(h)), whose
    log-slope in h_j is t_j R / (1 + R): that slope is what is sampled.
    """
    R = p["R_rel"]
    return slopes(p["z"], own) * ((1 + R) / R)[..., None]


def mixing_factor(t: jnp.ndarray, h: jnp.ndarray) -> jnp.ndarray:
    """(M, T) exp(sum_j t_ij (h_j - 1/K)): the mixture's multiplier of the reducible loss, 1 at the uniform mixture."""
    K = h.shape[-1]
    return jnp.exp((h - 1.0 / K) @ t.T)


def _raw_interactions(p: Mapping[str, np.ndarray], own: Sequence[int]) -> np.ndarray:
    """:func:`interactions` on numpy parameters or stacked draws, as numpy."""
    return np.asarray(interactions({k: np.asarray(p[k]) for k in ("z", "R_rel")}, np.asarray(own)))


def interaction_matrix(p: Mapping[str, np.ndarray], own: Sequence[int]) -> np.ndarray:
    """The identified (row-centred) interaction matrix t_ij from parameters or stacked draws.

    ``p`` holds ``z`` and ``R_rel``, e.g. ``fit.flat_draws()``;
    ``own`` (T,) is each target's own-domain index or -1
    (``bayesmix.laws.base.own_index(fit.domains, fit.targets)``).
    Returns (..., T, K) with every row summing to 0: t_ij < 0 means domain j
    lowers target i's loss more than the average domain does.
    """
    t = _raw_interactions(p, own)
    return t - t.mean(axis=-1, keepdims=True)


def paper_parameters(p: Mapping[str, np.ndarray], own: Sequence[int]) -> dict[str, np.ndarray]:
    """E, A, alpha, B, beta and the raw interaction matrix t from sampled coordinates (one draw or stacked draws)."""
    R, share = np.asarray(p["R_rel"]), np.asarray(p["A_share"])
    F = np.asarray(p["L_ref"]) / (1 + R)
    return {"E": F, "A": F * R * share, "alpha": np.asarray(p["alpha"]), "B": F * R * (1 - share), "beta": np.asarray(p["beta"]),
            "t": _raw_interactions(p, own)}


def from_paper_parameters(E, A, alpha, B, beta, t, own: Sequence[int]) -> dict[str, np.ndarray]:
    """Sampled coordinates from E, A, alpha, B, beta (each (T,)), the interaction matrix t (T, K) and each target's own domain (-1: none)."""
    E, A, B = (np.asarray(v, float) for v in (E, A, B))
    R = (A + B) / E
    unit = np.asarray(slopes(np.ones_like(np.asarray(t, float)), np.asarray(own)))
    return {"L_ref": E + A + B, "R_rel": R, "A_share": A / (A + B), "alpha": np.asarray(alpha, float),
            "beta": np.asarray(beta, float), "z": np.asarray(t, float) * (R / (1 + R))[:, None] / unit}


@register
class Exponential(Law):
    name = "exponential"
    revision = 2  # 1 sampled E, A, B on their own log scales
    title = "Exponential mixing law with step and size laws"
    reference = "Ye et al. 2024, Data Mixing Laws, ICLR 2025, arXiv:2403.16952"
    formula = "E_i + exp(sum_j t_ij (h_j - 1/K)) [A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i]"
    min_mixtures = 3

    def params(self, domains, targets) -> dict[str, Param]:
        return {
            "L_ref": Param(("target",), log_normal_around(2.5, 2.0, "LLM validation losses at 0.1-1B parameters sit at 1.5-4 nats"),
                           "loss at the reference point (N0, D0) and the uniform mixture"),
            "R_rel": Param(("target",), log_normal_around(0.5, 3.0, "Chinchilla's fit (Hoffmann et al. 2022) gives (A (N/N0)^-alpha + B (D/D0)^-beta) / E = 0.57 at 0.5B parameters and 20B tokens"),
                           "reducible loss (A + B) at (N0, D0) and the uniform mixture, as a multiple of E"),
            "A_share": Param(("target",), Prior("Beta", {"concentration1": 2.0, "concentration0": 2.0}, "either term may dominate; Chinchilla's are about even (0.26 and 0.31 of E)"),
                             "share of the reducible loss at (N0, D0) that is the model-size term"),
            "alpha": Param(("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give alpha around 0.34"), "model-size exponent (size law)"),
            "beta": Param(("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give beta around 0.28"), "token exponent (step law)"),
            "z": Param(("target", "domain"), Prior("StudentT", {"df": 3.0, "loc": 0.0, "scale": 1.0}, "heavy-tailed shrinkage: most slopes near 0, a few large"), "standardised log-loss slope at the uniform mixture and (N0, D0): s_ij / CROSS_SCALE, or s_ii / OWN_SCALE on the own domain"),
        }

    def mean(self, p: Mapping[str, jnp.ndarray], x: Inputs) -> jnp.ndarray:
        t = interactions(p, x.own)  # (T, K)
        log_n = jnp.log(x.N / x.N0)[:, None]
        log_d = jnp.log(x.D / x.D0)[:, None]
        F = p["L_ref"] / (1 + p["R_rel"])  # E
        reducible = p["R_rel"] * (p["A_share"] * jnp.exp(-p["alpha"] * log_n) + (1 - p["A_share"]) * jnp.exp(-p["beta"] * log_d))
        return F * (1 + mixing_factor(t, x.h)[x.mix] * reducible)
