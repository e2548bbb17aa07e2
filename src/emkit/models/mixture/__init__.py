"""Finite mixtures: Gaussian (``GaussianMixture``), Student-t (``StudentTMixture``) and
mixtures of any distribution (``Mixture``)."""

from emkit.models.mixture.gaussian import GaussianMixture
from emkit.models.mixture.generic import Mixture, MixtureModel
from emkit.models.mixture.student_t import StudentTMixture

__all__ = ["GaussianMixture", "Mixture", "MixtureModel", "StudentTMixture"]
