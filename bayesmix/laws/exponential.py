"""Exponential mixing law (Ye et al. 2024, Data Mixing Laws, ICLR 2025,
arXiv:2403.16952) with its step and size laws, as ONE Bayesian model.

    L_i(h, N, D) = E_i + exp(sum_j t_ij (h_j - 1/K)) * [A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i]
    t_ij = CROSS_SCALE z_ij  (j not i's own domain),   t_ii = OWN_SCALE z_ii,   z ~ StudentT(3, 0, 1)

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
- Shrinkage: t_ij = CROSS_SCALE z_ij for another domain j and
  t_ii = OWN_SCALE z_ii for a target's own domain, with z ~ StudentT(3, 0, 1).
  Cross-domain interactions are pulled toward 0 (prior scale 0.5: moving 30%
  of the mixture to another domain changes the reducible loss by about 15% at
  one prior scale), while the Student-t tails let a few strong ones survive
  (horseshoe-like behaviour without the horseshoe's funnels). A domain's
  effect on its own loss is expected to be the largest entry (Ye et al.'s
  fitted matrices are dominated by the diagonal), so it is not shrunk: prior
  scale 2, i.e. a factor of up to e^(0.3 * 2 * 2) = 3.3 on the reducible loss
  at two prior scales. Targets that are not training domains have no own
  entry: all their interactions get the cross-domain scale.
- Why the scales are fixed rather than learned (measured, simulated 3-domain
  sweep, 2 chains x 300 draws): a learned scale can only be written
  non-centred here (t = tau z; a law declares independent priors), and with
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
from .additive import scale_terms
from .base import Inputs, Law, Param
from .registry import register


# Prior scales of a target's interaction with its own domain and with the
# others (see the module docstring for the reasons).
OWN_SCALE = 2.0
CROSS_SCALE = 0.5


def interactions(z: jnp.ndarray, own: jnp.ndarray) -> jnp.ndarray:
    """(T, K) the raw interaction matrix: CROSS_SCALE z_ij off the own domain, OWN_SCALE z_ii on it."""
    K = z.shape[-1]
    is_own = jnp.arange(K)[None, :] == jnp.asarray(own)[:, None]  # no match for own == -1
    return jnp.where(is_own, OWN_SCALE, CROSS_SCALE) * z


def mixing_factor(t: jnp.ndarray, h: jnp.ndarray) -> jnp.ndarray:
    """(M, T) exp(sum_j t_ij (h_j - 1/K)): the mixture's multiplier of the reducible loss, 1 at the uniform mixture."""
    K = h.shape[-1]
    return jnp.exp((h - 1.0 / K) @ t.T)


def interaction_matrix(p: Mapping[str, np.ndarray], own: Sequence[int]) -> np.ndarray:
    """The identified (row-centred) interaction matrix t_ij from parameters or stacked draws.

    ``p`` holds ``z`` (..., T, K), e.g. ``fit.flat_draws()``; ``own`` (T,) is
    each target's own-domain index or -1
    (``bayesmix.laws.base.own_index(fit.domains, fit.targets)``).
    Returns (..., T, K) with every row summing to 0.
    """
    z = np.asarray(p["z"])
    is_own = np.arange(z.shape[-1])[None, :] == np.asarray(own)[:, None]
    t = np.where(is_own, OWN_SCALE, CROSS_SCALE) * z
    return t - t.mean(axis=-1, keepdims=True)


@register
class Exponential(Law):
    name = "exponential"
    title = "Exponential mixing law with step and size laws"
    reference = "Ye et al. 2024, Data Mixing Laws, ICLR 2025, arXiv:2403.16952"
    formula = "E_i + exp(sum_j t_ij (h_j - 1/K)) [A_i (N/N0)^-alpha_i + B_i (D/D0)^-beta_i]"
    min_mixtures = 3

    def params(self, domains, targets) -> dict[str, Param]:
        return {
            "E": Param(("target",), log_normal_around(1.5, 2.0, "irreducible loss: LLM validation losses sit at 1-4 nats"), "irreducible loss (the mixing law's c)"),
            "A": Param(("target",), log_normal_around(0.3, 3.0, "model-size term at N0 and the uniform mixture: a few tenths of a nat"), "model-size term at N0, uniform mixture"),
            "alpha": Param(("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give alpha around 0.34"), "model-size exponent (size law)"),
            "B": Param(("target",), log_normal_around(0.3, 3.0, "token term at D0 and the uniform mixture: a few tenths of a nat"), "token term at D0, uniform mixture"),
            "beta": Param(("target",), log_normal_around(0.3, 1.6, "Chinchilla fits give beta around 0.28"), "token exponent (step law)"),
            "z": Param(("target", "domain"), Prior("StudentT", {"df": 3.0, "loc": 0.0, "scale": 1.0}, "heavy-tailed shrinkage: most interactions near 0, a few large"), "standardised interaction: t_ij / CROSS_SCALE, or t_ii / OWN_SCALE on the own domain"),
        }

    def mean(self, p: Mapping[str, jnp.ndarray], x: Inputs) -> jnp.ndarray:
        t = interactions(p["z"], x.own)  # (T, K)
        return p["E"] + mixing_factor(t, x.h)[x.mix] * scale_terms(p, x)
