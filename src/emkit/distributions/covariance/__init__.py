"""Covariance structures of K Gaussians: the one place that knows their parametrisations.

Each structure is one unit (:class:`CovarianceStructure`): its shapes, parameter
count, precisions, E-step work, M-step (exact or generalized, receiving the previous
parameters), and the unconstrained ``pack``/``unpack`` used by SQUAREM. Nothing outside
this package branches on a structure's name: code asks the structure
(``get_structure(name)``); a new structure is one class and one :func:`register` call.

============  ====================  ==============================================
name          covariances           meaning
============  ====================  ==============================================
full          (K, D, D)             one matrix per component
diag          (K, D)                one variance per feature and component
tied          (D, D)                one matrix shared by all components
spherical     (K,)                  one variance per component
EII ... VVV   (K, D, D)             mclust's 14 parsimonious structures
                                    ``lambda_k D_k A_k D_k'`` (:mod:`.eigen`)
============  ====================  ==============================================
"""

from emkit.distributions.covariance.base import CovarianceStructure, block_rows
from emkit.distributions.covariance.eigen import MCLUST_MODELS, Parsimonious
from emkit.distributions.covariance.matrices import Full, Tied
from emkit.distributions.covariance.variances import Diag, Spherical

__all__ = [
    "COVARIANCE_TYPES",
    "MCLUST_MODELS",
    "CovarianceStructure",
    "block_rows",
    "get_structure",
    "register",
]

#: every registered structure by name
COVARIANCE_TYPES: dict[str, CovarianceStructure] = {}


def register(structure: CovarianceStructure) -> CovarianceStructure:
    """Make ``structure`` available by its ``name`` (to ``get_structure`` and every estimator)."""
    COVARIANCE_TYPES[structure.name] = structure
    return structure


for _structure in (Full(), Diag(), Tied(), Spherical(), *map(Parsimonious, MCLUST_MODELS)):
    register(_structure)


def get_structure(name: str) -> CovarianceStructure:
    """The structure called ``name`` (one of :data:`COVARIANCE_TYPES`)."""
    try:
        return COVARIANCE_TYPES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, got {name!r}"
        ) from None
