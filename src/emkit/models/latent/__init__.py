"""Continuous latent structure: the multivariate normal with missing values and its
imputer (``GaussianImputer``), factor analysis and probabilistic PCA (``FactorAnalysis``).

Pure EM models: :mod:`~emkit.models.latent.mvn` (``MVNMissingModel``) and
:mod:`~emkit.models.latent.factor_model` (``FactorAnalysisModel``); their estimators:
:mod:`~emkit.models.latent.imputer` and :mod:`~emkit.models.latent.factor_analysis`.
"""

from emkit.models.latent.factor_analysis import FactorAnalysis
from emkit.models.latent.imputer import GaussianImputer

__all__ = ["FactorAnalysis", "GaussianImputer"]
