"""Building blocks with weighted, additive sufficient statistics.

``base`` holds the contract every distribution follows (:class:`Distribution`) and
the priors; ``discrete`` the Categorical, Bernoulli and Poisson; ``continuous`` the
Exponential, Gamma, LogNormal and diagonal Gaussian; ``independent`` products over
column groups, for mixed-type tables; ``spec`` turns saved specs back into
distributions. ``covariance`` holds the Gaussian covariance structures that
``GaussianMixture`` uses; ``gaussian`` wraps them as a distribution (missing values
allowed) and ``student_t`` as a multivariate t. All of them serve mixtures and HMM
emissions.
"""

from typing import TYPE_CHECKING

from emkit import _lazy
from emkit.distributions.spec import EMKIT_DISTRIBUTIONS as _DISTRIBUTIONS
from emkit.distributions.spec import from_spec

if TYPE_CHECKING:  # imported on first use (``_LAZY``): what type checkers and editors see
    from emkit.distributions.base import DirichletPrior, Distribution, GammaPrior, component
    from emkit.distributions.continuous import DiagGaussian, Exponential, Gamma, LogNormal
    from emkit.distributions.covariance import (
        COVARIANCE_TYPES,
        CovarianceStructure,
        get_structure,
    )
    from emkit.distributions.discrete import Bernoulli, Categorical, Poisson
    from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStats
    from emkit.distributions.independent import Independent
    from emkit.distributions.student_t import StudentT, StudentTParams

__all__ = [
    "COVARIANCE_TYPES",
    "Bernoulli",
    "Categorical",
    "CovarianceStructure",
    "DiagGaussian",
    "DirichletPrior",
    "Distribution",
    "Exponential",
    "Gamma",
    "GammaPrior",
    "Gaussian",
    "GaussianParams",
    "GaussianStats",
    "Independent",
    "LogNormal",
    "Poisson",
    "StudentT",
    "StudentTParams",
    "component",
    "from_spec",
    "get_structure",
]

#: the names imported above for type checkers and the module defining each: imported on
#: first use (the distributions also by ``from_spec``), so that importing a light module
#: (``covariance``, which the command line wants) does not import scipy and numba
_LAZY = {
    **_DISTRIBUTIONS,
    **dict.fromkeys(
        ("DirichletPrior", "Distribution", "GammaPrior", "component"), "emkit.distributions.base"
    ),
    **dict.fromkeys(
        ("COVARIANCE_TYPES", "CovarianceStructure", "get_structure"),
        "emkit.distributions.covariance",
    ),
    **dict.fromkeys(("GaussianParams", "GaussianStats"), "emkit.distributions.gaussian"),
    "StudentTParams": "emkit.distributions.student_t",
}

__getattr__, __dir__ = _lazy.attach(__name__, _LAZY)
