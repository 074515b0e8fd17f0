"""Can I trust this fit? Checks of a fitted law and of the inference itself.

- :func:`check`: posterior predictive checks (interval coverage, PIT, residuals, worst runs);
- :func:`validate`: held-out validation by model size, token range or mixtures, and the
  law's extrapolation bias scale;
- :func:`compare`: leave-one-run-out PSIS-LOO ranking of laws fitted to the same runs;
- :func:`sbc`: simulation-based calibration of a law's inference;
- :func:`refit_seeds`: the same fit from several seeds, and where they disagree (several modes).
"""

from .compare import compare, loo_runs, verdict
from .loglik import heldout_loglik, run_loglik
from .ppc import CheckResult, check
from .sbc import SBCResult, default_design, sbc
from .seeds import refit_seeds
from .validate import ValidationResult, make_folds, validate

__all__ = [
    "CheckResult",
    "SBCResult",
    "ValidationResult",
    "check",
    "compare",
    "default_design",
    "heldout_loglik",
    "loo_runs",
    "make_folds",
    "run_loglik",
    "refit_seeds",
    "sbc",
    "validate",
    "verdict",
]
