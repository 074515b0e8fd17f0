"""Decide: the training mixture that minimises a risk of the target loss over posterior draws.

- :mod:`~bayesmix.decide.objective`: which target loss (target weights) and which risk of it (mean, quantile, CVaR);
- :mod:`~bayesmix.decide.constraints`: the feasible mixtures (floors, caps, token availability, a TV ball);
- :mod:`~bayesmix.decide.problem`: the target loss of every draw as a function of the mixture;
- :mod:`~bayesmix.decide.solver`: the solvers (SLSQP over all draws, batched projected gradient per draw);
- :mod:`~bayesmix.decide.recommend`: :func:`recommend` and the :class:`Recommendation` it returns;
- :mod:`~bayesmix.decide.plots`: its figures.

:mod:`bayesmix.plan` decides through the same problem, solver and constraints.
"""

from .constraints import InfeasibleMixtureError, MixtureConstraints, build_constraints
from .objective import Risk, parse_risk, resolve_target_weights
from .problem import MixtureDecision
from .recommend import Recommendation, RecommendationWarning, recommend

__all__ = [
    "InfeasibleMixtureError",
    "MixtureConstraints",
    "MixtureDecision",
    "Recommendation",
    "RecommendationWarning",
    "Risk",
    "build_constraints",
    "parse_risk",
    "recommend",
    "resolve_target_weights",
]
