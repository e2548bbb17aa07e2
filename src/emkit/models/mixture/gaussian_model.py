"""The Gaussian mixture as an EM model: the mixture machinery with Gaussian components.

Generative model::

    z_i ~ Categorical(weights)
    x_i | z_i = k ~ Normal(means[k], covariances[k])

:class:`GaussianMixtureModel` is :class:`~emkit.models.mixture.model.MixtureModel` with a
:class:`~emkit.distributions.Gaussian` component: parameters are
``MixtureParams(weights, GaussianParams(mean, covariance))`` and the E-step runs the
one Gaussian kernel (:class:`~emkit.distributions.gaussian.GaussianKernel`), whose
covariance structure (full, diag, tied, spherical, ...) is a strategy object of
:mod:`emkit.distributions.covariance`. Missing values (NaN) come as a
:class:`~emkit.distributions.missing.MissingBatch` and are integrated out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emkit.distributions.covariance import CovarianceStructure
from emkit.distributions.gaussian import Gaussian, GaussianParams
from emkit.models.mixture.model import MixtureModel, MixtureParams

__all__ = ["GaussianMixtureModel", "gaussian_mixture_params"]


class GaussianMixtureModel(MixtureModel):
    """EM model of a Gaussian mixture; batches are ``(X, sample_weight or None)`` or a
    :class:`~emkit.distributions.missing.MissingBatch`.

    Parameters
    ----------
    n_components : int
    covariance_type : str, default "full"
        A registered covariance structure ("full", "diag", "tied", "spherical", ...).
    reg_covar : float
        Added to the diagonal of every covariance in the M-step.
    init : str
        How ``init_params`` starts: "kmeans++", "kmeans", "random" or "random_from_data".
    block_rows : int, optional
        Rows per block of the E-step kernels.
    """

    def __init__(
        self,
        n_components: int,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        init: str = "kmeans++",
        block_rows: int | None = None,
    ):
        component = Gaussian(covariance_type, reg_covar)
        component.kernel.block_rows = block_rows
        super().__init__(component, n_components, init=init)
        self.structure: CovarianceStructure = component.structure
        self.reg_covar = reg_covar

    def params(self, weights: Any, means: Any, covariances: Any) -> MixtureParams:
        """Parameters from arrays in the estimator's layout (covariances in the structure's)."""
        return gaussian_mixture_params(self.component, weights, means, covariances)

    def arrays(self, params: MixtureParams) -> dict[str, np.ndarray]:
        """``weights``, ``means``, ``covariances`` (structure's layout), ``precisions_cholesky``."""
        cov = self.component.storage(params.components.covariance)
        return {
            "weights": np.asarray(params.weights),
            "means": np.asarray(params.components.mean),
            "covariances": cov,
            "precisions_cholesky": self.structure.precision_cholesky(cov),
        }

    def weighted_log_prob(self, params: MixtureParams, X: np.ndarray) -> np.ndarray:
        """log(weights_k) + log N(x_o | mean_k, cov_k), shape (N, K); NaN integrated out."""
        return self.log_joint(params, X)

    def impute(self, params: MixtureParams, X: np.ndarray) -> np.ndarray:
        """``X`` with each NaN replaced by its posterior mean given the row's observed values."""
        log_w = self.weights.log_weights(params.weights)
        return self.component.impute(params.components, log_w, X)


def gaussian_mixture_params(component: Gaussian, weights, means, covariances) -> MixtureParams:
    """``MixtureParams`` of a Gaussian mixture from weights, means and covariances given in
    the covariance structure's layout (tied: one matrix)."""
    weights = np.asarray(weights, dtype=np.float64)
    return MixtureParams(
        weights,
        GaussianParams(
            np.asarray(means, dtype=np.float64),
            component.from_storage(np.asarray(covariances, dtype=np.float64), len(weights)),
        ),
    )
