"""Continuous latent structure: the multivariate normal with missing values and its
imputer (``GaussianImputer``), factor analysis and probabilistic PCA (``FactorAnalysis``)."""

from emkit.models.latent.factor_analysis import FactorAnalysis
from emkit.models.latent.imputer import GaussianImputer

__all__ = ["FactorAnalysis", "GaussianImputer"]
