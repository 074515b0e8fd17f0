"""The mixture decision over posterior draws: the target loss of every draw, ready for the solvers.

L_s(h) = sum_t w_t mu_st(h, N, D) exp(delta_st) is the law's expected loss in
draw s (a single target, or a weighted sum of targets), times the law's
extrapolation bias delta exactly as :meth:`bayesmix.posterior.Posterior.predictive`
draws it (same seed, same numbers). The bias is shared by every mixture
within a draw: E[exp(delta)] factors out of the mean objective, so its argmin
is unchanged in expectation, while quantile and CVaR objectives widen with
it. ``bias_seed=None`` leaves the bias out (the pre-posterior analysis adds
its variance analytically instead). :func:`bayesmix.decide.recommend` and
:func:`bayesmix.plan.next_run` both decide through this one object.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..model import LawKey
from ..posterior import Posterior
from .objective import Risk
from .solver import risk_value_grad

__all__ = ["MixtureDecision"]


class MixtureDecision:
    """The target loss of every posterior draw as a function of the mixture, at any scale.

    ``posterior``: the draws; ``target_weights`` (T,): the target loss as a
    weighted sum of the posterior's targets; ``swept``: the mixtures of the
    fitted sweep (candidate starts); ``bias_seed``: the seed of the
    extrapolation bias, or None to leave it out. ``slice_targets``: the
    solvers evaluate only the targets with a non-zero weight (a target
    outside the objective is pure cost); only right for a law whose targets
    share no parameter, which :func:`bayesmix.decide.recommend` checks.
    Draws stay numpy arrays, so subsets never compile an indexing op.
    """

    def __init__(
        self,
        posterior: Posterior,
        target_weights: np.ndarray,
        *,
        swept: np.ndarray,
        bias_seed: int | None = 0,
        slice_targets: bool = True,
    ):
        self.posterior = posterior
        self.domains = posterior.domains
        self.targets = posterior.targets
        self.swept = np.asarray(swept, dtype=float)
        self.law = LawKey(posterior.law)
        self.S = posterior.S
        self.T = len(posterior.targets)
        self.w = np.asarray(target_weights, dtype=float)
        self.z = None if bias_seed is None else posterior.bias_normals(bias_seed)
        self.N0 = jnp.asarray(posterior.N0, dtype=jnp.float64)
        self.D0 = jnp.asarray(posterior.D0, dtype=jnp.float64)
        self.used = np.nonzero(self.w > 0)[0] if slice_targets else np.arange(self.T)
        sub = posterior.select_targets([posterior.targets[i] for i in self.used]) if slice_targets else posterior
        self.used_posterior = sub
        self.own_used = jnp.asarray(sub.own, dtype=jnp.int32)
        self._p_used_jax = sub.jax_draws()

    def far(self, N: float, D: float) -> float:
        """E-folds beyond the fitted model sizes and token counts."""
        return float(self.posterior.far(N, D))

    def bias(self, N: float, D: float) -> np.ndarray:
        """(S, T) exp(delta): the extrapolation bias of each draw and target at (N, D) (ones without a bias)."""
        if self.z is None:
            return np.ones((self.S, self.T))
        return np.exp(self.posterior.log_bias(N, D, self.z)[:, 0, :])

    def mult(self, N: float, D: float) -> np.ndarray:
        """(S, T_used) target weight times bias, for the targets the solvers see."""
        return (self.w[None, :] * self.bias(N, D))[:, self.used]

    def per_target(self, h: np.ndarray, N: float, D: float) -> np.ndarray:
        """(S, M, T) expected loss per draw, mixture and target, bias included (every target)."""
        return self.posterior.means(np.atleast_2d(h), N, D) * self.bias(N, D)[:, None, :]

    def objective_draws(self, h: np.ndarray, N: float, D: float, draws: np.ndarray | None = None) -> np.ndarray:
        """(S, M) target loss per draw and mixture (through the targets in the objective only)."""
        post = self.used_posterior if draws is None else self.used_posterior.take(draws)
        m = self.mult(N, D)
        return (post.means(np.atleast_2d(h), N, D) * (m if draws is None else m[draws])[:, None, :]).sum(-1)

    def risk_fn(self, risk: Risk, N: float, D: float):
        """h -> (risk value, gradient) as numpy, for the solver."""
        mult = jnp.asarray(self.mult(N, D))
        rw = jnp.asarray(risk.weights(self.S))

        def f(h):
            v, g = risk_value_grad(
                self.law,
                self._p_used_jax,
                jnp.asarray(h, dtype=jnp.float64),
                float(N),
                float(D),
                self.N0,
                self.D0,
                self.own_used,
                mult,
                rw,
            )
            return float(v), np.asarray(g, dtype=float)

        return f
