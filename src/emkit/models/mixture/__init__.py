"""Finite mixtures: Gaussian (``GaussianMixture``), Student-t (``StudentTMixture``) and
mixtures of any distribution (``Mixture``).

Each is imported on first use, so that importing one (``GaussianMixture``) does not
import the others (the Student-t's scipy).
"""

from typing import TYPE_CHECKING

from emkit import _lazy

if TYPE_CHECKING:  # imported on first use (``_LAZY``): what type checkers and editors see
    from emkit.models.mixture.gaussian import GaussianMixture
    from emkit.models.mixture.generic import Mixture, MixtureModel
    from emkit.models.mixture.student_t import StudentTMixture

__all__ = ["GaussianMixture", "Mixture", "MixtureModel", "StudentTMixture"]

_LAZY = {
    "GaussianMixture": "emkit.models.mixture.gaussian",
    "Mixture": "emkit.models.mixture.generic",
    "MixtureModel": "emkit.models.mixture.generic",
    "StudentTMixture": "emkit.models.mixture.student_t",
}

__getattr__, __dir__ = _lazy.attach(__name__, _LAZY)
