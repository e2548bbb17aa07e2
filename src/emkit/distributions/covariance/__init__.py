"""Covariance structures of K Gaussians: the one place that knows their parametrisations.

Each structure is one unit (:class:`CovarianceStructure`): its shapes, parameter
count, precisions, E-step work, M-step (exact or generalized), and the unconstrained
``pack``/``unpack`` used by SQUAREM. Nothing outside this package branches on a
structure's name: code asks the structure (``get_structure(name)``).
"""

from emkit.distributions.covariance.structures import (
    COVARIANCE_TYPES,
    CovarianceStructure,
    block_rows,
    get_structure,
)

__all__ = ["COVARIANCE_TYPES", "CovarianceStructure", "block_rows", "get_structure"]
