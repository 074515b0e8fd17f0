"""Pre-posterior analysis from posterior draws: what would a new run's result tell us?

Everything here works on a weighted set of posterior draws theta_s (s = 1..S,
weights w_s) and never refits. A candidate run reports, for each of its C
checkpoints and T targets, the log loss

    y[k, t] = m_t(theta; h, N, D_k) + u_t + eps_kt,   u_t ~ N(0, tau_t^2),  eps ~ N(0, sigma_t^2)

exactly the observation model the fit assumed (:mod:`bayesmix.model`): m is
the law's log mean, u the run's own offset shared by its checkpoints, eps the
checkpoint noise. Two estimators of how much observing y would shrink the
posterior variance of a quantity Q(theta):

- **Linear-Gaussian** (:class:`Information`): treat (Q, y) as jointly Gaussian
  over the draws, so E_y[Var(Q | y)] = Var(Q) - Cov(Q, y) Cov(y)^-1 Cov(y, Q),
  with Cov(y) = Cov_s(m) + E_s[noise covariance]. It is smooth (no Monte
  Carlo noise across candidates), fast, and conditions exactly on several runs
  at once, which the greedy batch needs. It is exact when Q and y are linear
  in the parameters and the posterior Gaussian; otherwise an approximation.
- **Importance reweighting** (:class:`Reweighting`): simulate G outcomes of
  the run from the posterior predictive, reweight the draws by each outcome's
  likelihood (the same closed-form run likelihood the fit uses), and average
  the reweighted variance of Q. Nothing Gaussian is assumed, but each outcome
  keeps only the draws that explain it: when a run is very informative the
  weights degenerate, which the effective sample size (ESS) reports.

Numerically, the linear-Gaussian estimator works in whitened coordinates:
z = Sigma_e^-1/2 y has unit noise, and with Z the centred, weighted draws of
Sigma_e^-1/2 m (an S x d matrix), the information a run carries about any
function f of the parameters is the S x r factor F = Z (Z'Z + I)^-1/2:
Var(f) - E Var(f | y) = |F' f~|^2 with f~ = sqrt(w) (f - mean_w f). Directions
of y whose signal-to-noise ratio is below ``SNR_FLOOR`` are pure noise for
every f and are dropped, which keeps the stored factors small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..model import all_params
from ..posterior import Posterior

# Whitened directions whose signal variance is below this fraction of the
# noise variance change any variance by less than this fraction: dropped.
SNR_FLOOR = 1e-8


# ---------------------------------------------------------------- draws
@dataclass
class DrawSet:
    """Posterior draws (site -> (S, ...)) with weights summing to one.

    ``posterior``: the :class:`~bayesmix.posterior.Posterior` the draws are
    from, which evaluates the law over them (None for draws of a model that is
    not a law, as in the tests' conjugate examples).
    """

    p: dict[str, np.ndarray]
    weights: np.ndarray  # (S,)
    posterior: Posterior | None = None

    @classmethod
    def from_fit(cls, fit, max_draws: int | None = None) -> "DrawSet":
        """The fit's draws, chains merged, thinned evenly to at most ``max_draws``; equal weights."""
        post = Posterior.from_fit(fit, max_draws)
        return cls({k: np.asarray(v, dtype=float) for k, v in post.draws.items()}, np.full(post.S, 1.0 / post.S), post)

    @property
    def S(self) -> int:
        """Number of draws."""
        return int(self.weights.shape[0])

    def mean(self, f: np.ndarray) -> np.ndarray:
        """Weighted mean over the draws (axis 0)."""
        return np.tensordot(self.weights, f, axes=(0, 0))

    def var(self, f: np.ndarray) -> np.ndarray:
        """Weighted (population) variance over the draws (axis 0)."""
        m = self.mean(f)
        return self.mean((f - m) ** 2)

    def centred(self, f: np.ndarray) -> np.ndarray:
        """sqrt(w) (f - mean_w f): then Cov_w(f, g) = centred(f)' centred(g)."""
        f = np.asarray(f, dtype=float)
        sw = np.sqrt(self.weights).reshape((-1,) + (1,) * (f.ndim - 1))
        return sw * (f - self.mean(f))

    def ess(self) -> float:
        """Kish effective sample size of the weights."""
        return float(1.0 / np.sum(self.weights**2))


def noise_variances(draws: DrawSet) -> tuple[np.ndarray, np.ndarray]:
    """(T,), (T,): posterior means of sigma^2 and tau_run^2 (the noise a new run's result carries)."""
    sigma2 = draws.mean(draws.p["sigma"] ** 2)
    tau = draws.p.get("tau_run")
    tau2 = draws.mean(tau**2) if tau is not None else np.zeros_like(sigma2)
    return sigma2, tau2


def whiten(m: np.ndarray, sigma2: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """Sigma_e^-1/2 applied to log losses m (..., C, T) with Sigma_e = sigma^2 I + tau^2 11' per target.

    Along the checkpoint mean the variance is sigma^2 + C tau^2 (the run offset
    does not average out); across checkpoints it is sigma^2.
    """
    C = m.shape[-2]
    avg = m.mean(axis=-2, keepdims=True)
    return (m - avg) / np.sqrt(sigma2) + avg / np.sqrt(sigma2 + C * tau2)


# ---------------------------------------------------------------- linear-Gaussian
@dataclass
class Information:
    """What one run's result (in whitened, reduced coordinates) says about the draws.

    ``z`` (S, r) is the centred whitened signal Z restricted to its informative
    directions; ``factor`` F = Z (Z'Z + I)^-1/2, so that the expected variance
    reduction of a function f is |F' f~|^2; ``snr`` (r,) the signal-to-noise
    ratios of those directions.
    """

    z: np.ndarray
    factor: np.ndarray
    snr: np.ndarray

    @classmethod
    def from_signal(cls, Z: np.ndarray) -> "Information":
        """From the centred whitened signal Z (S, d) of a run (noise already whitened to unit variance)."""
        G = Z.T @ Z
        vals, vecs = np.linalg.eigh(0.5 * (G + G.T))
        keep = vals > SNR_FLOOR
        vals, vecs = vals[keep], vecs[:, keep]
        z = Z @ vecs  # rotate onto the signal's principal directions: Z'Z = diag(vals)
        return cls(z=z, factor=z / np.sqrt(1.0 + vals), snr=vals)

    @property
    def rank(self) -> int:
        """Number of informative directions kept."""
        return int(self.snr.shape[0])

    def reduction(self, f_centred: np.ndarray) -> np.ndarray:
        """Expected reduction of the variance of each column of f~ (S, ...) after seeing the run."""
        proj = np.tensordot(self.factor, f_centred, axes=(0, 0))  # (r, ...)
        return (proj**2).sum(0)

    def condition(self, f_centred: np.ndarray) -> np.ndarray:
        """f~ after conditioning on the run: P^1/2 f~, so that later covariances are conditional ones.

        With Z = A diag(s) (A orthonormal), conditioning multiplies the A
        components by 1/sqrt(1 + s^2) and leaves the rest alone.
        """
        if self.rank == 0:
            return f_centred
        s = np.sqrt(self.snr)
        A = self.z / s
        shrink = 1.0 - 1.0 / np.sqrt(1.0 + self.snr)
        coef = np.tensordot(A, f_centred, axes=(0, 0))  # (r, ...)
        return f_centred - np.tensordot(A, coef * shrink.reshape((-1,) + (1,) * (coef.ndim - 1)), axes=(1, 0))

    def conditioned_on(self, other: "Information") -> "Information":
        """This run's information once ``other`` has been observed (its noise is independent of ours)."""
        return Information.from_signal(other.condition(self.z))


def run_signal(draws: DrawSet, log_means: np.ndarray, sigma2: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """Centred whitened signal Z (S, C*T) of one run from its log means (S, C, T)."""
    W = whiten(log_means, sigma2, tau2)
    return draws.centred(W.reshape(W.shape[0], -1))


def gaussian_voi(mu0: np.ndarray, factors: list[np.ndarray], xi: np.ndarray) -> float:
    """Expected regret reduction (value of information) of observing runs, linear-Gaussian, discrete decisions.

    ``mu0`` (M,) is the current posterior mean loss of each decision, row 0
    the current recommendation; ``factors`` = [B_k] with
    B_k = (conditioned L~_H)' F_k (M, r_k), one per observed run. After the
    runs the posterior mean loss of decision m moves by
    delta_m = sum_k (B_k xi_k)_m with xi_k ~ N(0, I), and the value of the
    information is E[(mu0_0 + delta_0) - min_m (mu0_m + delta_m)]: how much
    better than the current recommendation the best decision will look, on
    average. Written paired (the recommendation's own move delta_0 inside the
    expectation) rather than as min mu0 - E[min(mu0 + delta)]: the two are
    equal in expectation, but the paired form has no Monte Carlo noise from
    E[delta_0] = 0, which is larger than the value itself when losses are
    uncertain and the decision is nearly settled. ``xi`` (G, R) are shared
    standard normals (common random numbers across candidates).
    """
    if not factors:
        return 0.0
    delta = np.zeros((xi.shape[0], mu0.shape[0]))
    offset = 0
    for B in factors:
        r = B.shape[1]
        delta += xi[:, offset : offset + r] @ B.T
        offset += r
    post = mu0[None, :] + delta
    return float((post[:, 0] - post.min(axis=1)).mean())


def reweighted_voi(weights: np.ndarray, L_H: np.ndarray) -> float:
    """Value of information from reweighted draws: E_g[mu_g,0 - min_m mu_g,m], mu_g = w_g' L_H (paired)."""
    mu = weights @ L_H
    return float((mu[:, 0] - mu.min(axis=1)).mean())


# ---------------------------------------------------------------- reweighting
def run_loglik(y: np.ndarray, log_means: np.ndarray, sigma: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """(G, S) log density of outcomes y (G, C, T) under every draw (log means (S, C, T), sigma, tau (S, T)).

    The run offset is integrated out in closed form (compound symmetry), as
    in :func:`bayesmix.model.group_loglik`.
    """
    C = y.shape[1]
    r = y[:, None] - log_means[None]  # (G, S, C, T)
    s1 = r.sum(2)
    s2 = (r**2).sum(2)
    var, tau2 = sigma**2, tau**2
    total = var + C * tau2
    quad = (s2 - tau2 / total * s1**2) / var
    logdet = (C - 1.0) * np.log(var) + np.log(total)
    return (-0.5 * (quad + logdet + C * math.log(2 * math.pi))).sum(-1)


@dataclass
class Reweighted:
    """Outcome-wise posterior weights after a simulated result."""

    weights: np.ndarray  # (G, S), rows sum to 1
    ess: np.ndarray  # (G,)


class Reweighting:
    """Simulated outcomes of candidate runs and the reweighted draws they imply.

    Outcomes are drawn once per batch slot from fixed random numbers (common
    random numbers), so candidates are compared on the same simulated worlds:
    outcome g is generated by draw ``gen[g]`` (drawn by weight), with the run
    offset and checkpoint noise of slot k from ``z_run[k, g]`` and
    ``z_eps[k, g]``. The generating draw is left out of its own reweighting:
    otherwise, with few effective draws, the draw that produced the data
    dominates its own posterior and the variance shrinks artificially.
    """

    def __init__(self, draws: DrawSet, n_outcomes: int, checkpoints: int, slots: int, seed: int = 0):
        rng = np.random.default_rng([seed, 6])
        T = draws.p["sigma"].shape[1]
        self.draws = draws
        self.gen = rng.choice(draws.S, size=n_outcomes, p=draws.weights)
        self.z_run = rng.standard_normal((slots, n_outcomes, T))
        self.z_eps = rng.standard_normal((slots, n_outcomes, checkpoints, T))
        self.sigma = draws.p["sigma"]
        self.tau = draws.p.get("tau_run", np.zeros_like(self.sigma))
        self.base = np.log(draws.weights)[None, :] + np.zeros((n_outcomes, 1))
        self.base[np.arange(n_outcomes), self.gen] = -np.inf

    @property
    def G(self) -> int:
        """Number of simulated outcomes."""
        return int(self.gen.shape[0])

    def simulate(self, log_means: np.ndarray, slot: int) -> np.ndarray:
        """(G, C, T) simulated log losses of a run (log means (S, C, T)) in batch slot ``slot``."""
        g = self.gen
        C = log_means.shape[1]
        return (
            log_means[g]
            + (self.tau[g] * self.z_run[slot])[:, None, :]
            + self.sigma[g][:, None, :] * self.z_eps[slot][:, :C]
        )

    def loglik(self, log_means: np.ndarray, slot: int) -> np.ndarray:
        """(G, S) log-likelihood of every draw for each simulated outcome of the run."""
        return run_loglik(self.simulate(log_means, slot), log_means, self.sigma, self.tau)

    def reweight(self, loglik: np.ndarray) -> Reweighted:
        """Posterior weights per outcome given the summed log-likelihood (G, S) of the runs observed."""
        lw = self.base + loglik
        lw = lw - lw.max(axis=1, keepdims=True)
        w = np.exp(lw)
        w /= w.sum(axis=1, keepdims=True)
        return Reweighted(w, 1.0 / (w**2).sum(axis=1))


def weighted_variance(weights: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Variance of f (S,) under each row of weights (G, S), corrected for the weights' effective sample size.

    A self-normalised weighted variance is biased low by about 1/ESS of the
    variance (as the plain sample variance is by 1/n); dividing by
    1 - sum w^2 removes that, which matters when an informative run leaves
    few effective draws. (ESS below 2 is clipped; such outcomes are flagged.)
    """
    m = weights @ f
    v = weights @ f**2 - m**2
    return v / np.maximum(1.0 - (weights**2).sum(axis=1), 0.5)


def flat_parameters(
    fit, draws: DrawSet, exclude: tuple[str, ...] = ("sigma", "tau_run", "kappa_run", "schedule")
) -> tuple[np.ndarray, list[str]]:
    """(S, P) every scalar law parameter per draw, and its label, e.g. ``a[github]`` (noise scales and the
    checkpoint model excluded: a new run's final loss does not inform them)."""
    coords = fit.coords()
    cols, names = [], []
    for site, v in draws.p.items():
        if site in exclude:
            continue
        labels = coords.get(site, [])
        flat = v.reshape(v.shape[0], -1)
        shape = v.shape[1:]
        for j, idx in enumerate(np.ndindex(*shape) if shape else [()]):
            parts = [labels[a][i] for a, i in enumerate(idx)] if labels else []
            names.append(f"{site}[{','.join(parts)}]" if parts else site)
            cols.append(flat[:, j])
    return np.column_stack(cols) if cols else np.zeros((draws.S, 0)), names


def describe_parameters(fit) -> Mapping[str, str]:
    """Site -> one line of meaning (from the law's parameter docs)."""
    return {k: p.doc for k, p in all_params(fit.law, fit.domains, fit.targets, checkpoints=True).items()}
