"""Plan: which small run to train next, for the decision the user will make, per unit of compute.

- :mod:`~bayesmix.plan.candidates`: candidate runs (read, or proposed around the recommendation);
- :mod:`~bayesmix.plan.preposterior`: what a run's result would tell, from the draws (linear-Gaussian, reweighting);
- :mod:`~bayesmix.plan.scorer`: the decision problem (made with :mod:`bayesmix.decide`) and each candidate's gains;
- :mod:`~bayesmix.plan.plan`: :func:`next_run`, the ranking and the greedy batch, and the :class:`NextRunPlan`;
- :mod:`~bayesmix.plan.plots`: its figures.
"""

from .plan import NextRunPlan, NextRunWarning, greedy_batch, next_run, score_candidates
from .scorer import QUANTITIES, Scorer

__all__ = ["NextRunPlan", "NextRunWarning", "QUANTITIES", "Scorer", "greedy_batch", "next_run", "score_candidates"]
