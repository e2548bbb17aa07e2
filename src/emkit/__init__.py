"""emkit: Expectation-Maximization for latent-variable models.

One engine (:func:`emkit.em`) that any model with ``init_params``/``estep``/``mstep``
plugs into, and estimators built on it.
"""

from typing import TYPE_CHECKING

from emkit import _lazy, _registry
from emkit._version import __version__
from emkit.engine import (
    EMModel,
    EMResult,
    IterationInfo,
    MonotonicityError,
    MonotonicityWarning,
    em,
)
from emkit.exceptions import DegenerateComponentWarning
from emkit.io import load

if TYPE_CHECKING:  # imported on first use (``_LAZY``): what type checkers and editors see
    from emkit.exceptions import ConvergenceWarning, NotFittedError
    from emkit.models.hmm.estimator import HMM
    from emkit.models.latent.factor_analysis import FactorAnalysis
    from emkit.models.latent.imputer import GaussianImputer
    from emkit.models.mixture.experts import MixtureOfExperts
    from emkit.models.mixture.gaussian import GaussianMixture
    from emkit.models.mixture.generic import Mixture
    from emkit.models.mixture.regression import MixtureOfRegressions
    from emkit.models.mixture.student_t import StudentTMixture
    from emkit.models.mixture.variational import VariationalGaussianMixture
    from emkit.models.ssm.estimator import LinearGaussianSSM
    from emkit.models.topic.estimator import LDA
    from emkit.selection import select

__all__ = [
    "HMM",
    "LDA",
    "ConvergenceWarning",
    "DegenerateComponentWarning",
    "EMModel",
    "EMResult",
    "FactorAnalysis",
    "GaussianImputer",
    "GaussianMixture",
    "IterationInfo",
    "LinearGaussianSSM",
    "Mixture",
    "MixtureOfExperts",
    "MixtureOfRegressions",
    "MonotonicityError",
    "MonotonicityWarning",
    "NotFittedError",
    "StudentTMixture",
    "VariationalGaussianMixture",
    "__version__",
    "em",
    "load",
    "select",
]

#: what is imported on first use, and from where: the estimators (which import numba and
#: scipy), ``select``, and scikit-learn's exception classes (which import scikit-learn)
_LAZY = {
    **{name: module for name, module in _registry.EMKIT_ESTIMATORS.items() if name in __all__},
    "ConvergenceWarning": "emkit.exceptions",
    "NotFittedError": "emkit.exceptions",
    "select": "emkit.selection",
}

__getattr__, __dir__ = _lazy.attach(__name__, _LAZY)
