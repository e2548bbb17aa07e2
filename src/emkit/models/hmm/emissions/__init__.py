"""The emission part of an HMM: the per-state observation densities.

:class:`Emission` wraps any :class:`~emkit.distributions.Distribution` (its
statistics weighted by the state posteriors, its own M-step); the named emissions of
:class:`emkit.HMM` add their fitted attribute names, data preparation (centring,
integer symbols, constants) and fast paths: :class:`GaussianEmission` and
:class:`GaussianMixtureEmission` (``n_mix`` Gaussians per state) through the one
Gaussian kernel, :class:`CategoricalEmission` and :class:`PoissonEmission`.
"""

from emkit.models.hmm.emissions.base import Emission
from emkit.models.hmm.emissions.discrete import CategoricalEmission, PoissonEmission
from emkit.models.hmm.emissions.gaussian import GaussianEmission
from emkit.models.hmm.emissions.gaussian_mixture import GaussianMixtureEmission, MixtureParams

__all__ = [
    "CategoricalEmission",
    "Emission",
    "GaussianEmission",
    "GaussianMixtureEmission",
    "MixtureParams",
    "PoissonEmission",
]
