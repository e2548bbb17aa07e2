"""emkit: Expectation-Maximization for latent-variable models.

One engine (:func:`emkit.em`) that any model with ``init_params``/``estep``/``mstep``
plugs into, and estimators built on it.
"""

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


def __getattr__(name: str):
    # scikit-learn's exception classes are the bases of these two: importing them
    # imports scikit-learn, so they are looked up on first use, not at ``import emkit``
    if name in ("ConvergenceWarning", "NotFittedError"):
        import emkit.exceptions

        return getattr(emkit.exceptions, name)
    raise AttributeError(f"module 'emkit' has no attribute {name!r}")
