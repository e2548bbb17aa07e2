"""Building blocks with weighted, additive sufficient statistics.

``covariance`` holds the Gaussian covariance structures that ``GaussianMixture`` uses;
``gaussian`` wraps them as a distribution (missing values allowed);
``exponential_family`` holds the other distributions (Categorical, Bernoulli,
Poisson, Exponential, Gamma, LogNormal, diagonal Gaussian) and ``Independent``
products over column groups, for mixtures and HMM emissions.
"""

from emkit.distributions.covariance import COVARIANCE_TYPES, CovarianceStructure, get_structure
from emkit.distributions.exponential_family import (
    Bernoulli,
    Categorical,
    DiagGaussian,
    DirichletPrior,
    Distribution,
    Exponential,
    Gamma,
    GammaPrior,
    Independent,
    LogNormal,
    Poisson,
    component,
    from_spec,
)
from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStats
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
