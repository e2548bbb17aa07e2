"""The weights part of a mixture: how likely each component is before seeing the data.

A mixture is a weights part plus a component part (:mod:`emkit.models.mixture.model`).
:class:`ConstantWeights` is the classic finite mixture: one probability per component,
the same for every observation, with an optional symmetric Dirichlet prior (MAP-EM). A
gate that depends on covariates (a softmax of the inputs, for mixtures of experts) is
another weights part with the same four methods.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ConstantWeights"]


class ConstantWeights:
    """Mixture weights ``pi_k``, one per component, with a Dirichlet(alpha) prior.

    Parameters
    ----------
    concentration : float, default 1.0
        Symmetric Dirichlet pseudo-count ``alpha >= 1`` (1 = no prior: maximum likelihood).
    """

    def __init__(self, concentration: float = 1.0):
        self.concentration = float(concentration)

    def log_weights(self, weights: np.ndarray) -> np.ndarray:
        """``log pi_k`` (K,); a zero weight gives ``-inf``, a component never chosen."""
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(weights, dtype=np.float64))

    def mstep(self, nk: np.ndarray) -> np.ndarray:
        """The (MAP) weights from the summed responsibilities ``nk`` (K,)."""
        pseudo = np.asarray(nk, dtype=np.float64) + (self.concentration - 1.0)
        return pseudo / pseudo.sum()

    def log_prior(self, weights: np.ndarray) -> float:
        """Log-density of the Dirichlet prior, up to its constant."""
        if self.concentration == 1.0:
            return 0.0
        return (self.concentration - 1.0) * float(np.sum(np.log(weights)))

    def pack(self, weights: np.ndarray) -> np.ndarray:
        """Centred log weights: an unconstrained vector (for SQUAREM)."""
        log_w = np.log(np.asarray(weights, dtype=np.float64))
        return log_w - log_w.mean()

    def unpack(self, vec: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`pack` (a softmax); raises ``ValueError`` if a weight underflows."""
        with np.errstate(over="ignore", under="ignore"):
            weights = np.exp(vec - vec.max())
            weights /= weights.sum()
        if not np.all(weights > 0):
            raise ValueError("the parameter vector gives a zero weight")
        return weights
