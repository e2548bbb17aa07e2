"""The Student-t mixture as an EM model: the mixture machinery with t components.

Generative model (McLachlan & Peel 2000, ch. 7)::

    z_i ~ Categorical(weights)
    u_i | z_i = k ~ Gamma(dofs[k] / 2, rate=dofs[k] / 2)
    x_i | z_i = k, u_i ~ Normal(means[k], covariances[k] / u_i)

:class:`StudentTMixtureModel` is :class:`~emkit.models.mixture.model.MixtureModel`
with a :class:`~emkit.distributions.StudentT` component: parameters are
``MixtureParams(weights, StudentTParams(mean, covariance, dof))``, the E-step is the
t kernel's fused pass, and a collapsed component is re-seeded as in every mixture.
``emkit.em(model, data)`` runs ECM (an exact EM here: the expected complete-data
log-likelihood separates); ``emkit.em(model, data, scheme=ECME())``
(:class:`emkit.engine.ecme.ECME`) adds after each M-step the observed-data step of
the degrees of freedom, :meth:`StudentTMixtureModel.observed_step`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emkit.distributions.covariance import CovarianceStructure
from emkit.distributions.student_t import DOF_BOUNDS, StudentT, StudentTParams
from emkit.models.mixture.model import MixtureModel, MixtureParams

__all__ = ["StudentTMixtureModel"]


class StudentTMixtureModel(MixtureModel):
    """EM model of a Student-t mixture; data batches are ``(X, sample_weight or None)``.

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "diag"}
        Structure of the scale matrices.
    reg_covar : float
        Added to the diagonal of every scale matrix in the M-step.
    dof : "estimate" or float
        Estimate each component's degrees of freedom (within ``dof_bounds``), or keep
        them all fixed at this positive value.
    init : str
        How ``init_params`` starts: one of "kmeans++", "kmeans", "random",
        "random_from_data" (on the data themselves).
    dof_bounds : (float, float)
        Interval of the estimated degrees of freedom.
    block_rows : int, optional
        Rows per block of the E-step (default: chosen from the work per row).
    """

    def __init__(
        self,
        n_components: int,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        dof: str | float = "estimate",
        init: str = "kmeans++",
        dof_bounds: tuple[float, float] = DOF_BOUNDS,
        block_rows: int | None = None,
    ):
        component = StudentT(covariance_type, reg_covar, dof, dof_bounds=dof_bounds)
        component.block_rows = block_rows
        super().__init__(component, n_components, init=init)
        self.structure: CovarianceStructure = component.structure
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.dof = dof
        self.dof_bounds = component.dof_bounds
        self.estimate_dofs = component.estimates_dofs

    # ------------------------------------------------------------------ conversions
    def params(self, weights: Any, means: Any, covariances: Any, dofs: Any = None) -> MixtureParams:
        """Parameters from the estimator's arrays; ``dofs`` None: the starting ones
        (given ``dofs`` are clipped into ``dof_bounds``, a fixed ``dof`` replaces them)."""
        weights = np.asarray(weights, dtype=np.float64)
        return MixtureParams(
            weights,
            StudentTParams(
                np.asarray(means, dtype=np.float64),
                np.asarray(covariances, dtype=np.float64),
                self.component.starting_dofs(len(weights), dofs),
            ),
        )

    def arrays(self, params: MixtureParams) -> dict[str, np.ndarray]:
        """``weights``, ``means``, ``covariances``, ``precisions_cholesky`` and ``dofs``."""
        comp = params.components
        cov = np.asarray(comp.covariance)
        return {
            "weights": np.asarray(params.weights),
            "means": np.asarray(comp.mean),
            "covariances": cov,
            "precisions_cholesky": self.structure.precision_cholesky(cov),
            "dofs": np.asarray(comp.dof),
        }

    def weighted_log_prob(self, params: MixtureParams, X: np.ndarray) -> np.ndarray:
        """log(weights_k) + log t(x | location_k, scale_k, dof_k), shape (N, K)."""
        return self.log_joint(params, X)
