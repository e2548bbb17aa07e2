"""Gaussian emissions of an HMM: ``x_t | z_t = k ~ Normal(means[k], covariances[k])``.

:class:`CentredGaussianEmission` is what the Gaussian family shares: the data are
centred at their observed mean, and densities and statistics come from THE Gaussian
kernel (:class:`~emkit.distributions.gaussian.GaussianKernel`), whose block work
arrays the E-step keeps from the densities to the statistics. The covariance
structure (:mod:`emkit.distributions.covariance`) supplies everything that depends
on it: shapes, checks, parameter counts and SQUAREM's unconstrained ``pack``/``unpack``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStats
from emkit.models.hmm.emissions._gaussian_map import GaussianPrior, map_step
from emkit.models.hmm.emissions._weights import floor_empty, floored, with_nk
from emkit.models.hmm.emissions.base import Emission

__all__ = ["CentredGaussianEmission", "GaussianEmission"]


class CentredGaussianEmission(Emission):
    """Gaussian-family emissions: data centred at their observed mean, the Gaussian
    kernel run once per E-step.

    Prepared data are ``(X - shift, partial)`` with ``partial`` the mask of rows that
    have some (not all) entries missing, or ``None``. Without such rows, ``frame``
    runs the kernel's blocked log-densities and keeps each block's work arrays, from
    which ``suff_stats`` takes the moments with one more product: the features of the
    data are built once per E-step, not twice. With partly missing rows, the
    distribution's own NaN-aware ``log_prob`` and ``suff_stats`` (marginal densities,
    conditional moments) are used.
    """

    shift: np.ndarray | None = None
    #: keep the E-step's work arrays only while they hold at most this many numbers
    max_work = 1 << 24

    def prepare(self, X: np.ndarray) -> tuple[Any, np.ndarray | None]:
        if self.shift is None:
            nan = np.isnan(X)
            if nan.any():  # the mean of the observed entries (0 for a column of NaN)
                counts = (~nan).sum(axis=0)
                self.shift = np.where(nan, 0.0, X).sum(axis=0) / np.maximum(counts, 1)
            else:
                self.shift = X.mean(axis=0)
        return super().prepare(X)

    def _transform(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        Xc = X - self.shift
        nan = np.isnan(Xc)
        partial = nan.any(axis=1) if nan.any() else None
        return Xc, partial

    def init_features(self, data: Any) -> np.ndarray:
        return np.nan_to_num(data[0])

    def _map_step(self, stats: GaussianStats, previous: Any, **options: bool):
        """The Gaussians' M-step with the prior (see :func:`map_step`), in the centred
        coordinates of the data."""
        prior = None if self.prior is None else self.prior.shifted(self.shift)
        return map_step(self.dist, stats, previous, prior, **options)

    def _gaussian_log_prior(self, params: GaussianParams) -> float:
        if self.prior is None:
            return 0.0
        return self.prior.shifted(self.shift).log_prior(self.dist, params)

    def _uncentre(self, X: np.ndarray) -> np.ndarray:
        """Rows in the centred coordinates of the parameters back in the data's."""
        return X if self.shift is None else X + self.shift

    def _log_densities(self, params: GaussianParams, data: Any) -> tuple[np.ndarray, Any]:
        """Log-densities (T, C) of every Gaussian component, and the work to reuse."""
        X, partial = data
        if partial is not None:
            return np.ascontiguousarray(self.dist.log_prob(params, X)), None
        dist = self.dist
        means = np.asarray(params.mean, dtype=np.float64)
        C, D = means.shape
        prec_chol = dist.structure.precision_cholesky(dist.storage(params.covariance))
        keep = len(X) * dist.structure.work_per_row(C, D) <= self.max_work
        return dist.kernel.log_densities(means, prec_chol, X, keep_work=keep)

    def _moments(self, data: Any, weights: np.ndarray, params: Any, works: Any) -> GaussianStats:
        """Moments weighted by ``weights`` (T, C), from the ``works`` of ``_log_densities``
        where it kept them."""
        X, partial = data
        if partial is None:
            # about the means the frame was evaluated at (the works' centre), or at a start
            # without parameters the raw moments
            centre = None if params is None else np.asarray(params.mean, dtype=np.float64)
            return self.dist.kernel.moments(X, weights, works, centre=centre)
        if params is None:  # a start: fill in column means
            return self.dist.suff_stats(np.nan_to_num(X), weights)
        return self.dist.suff_stats(X, weights, params=params)


class GaussianEmission(CentredGaussianEmission):
    """Multivariate normal emissions: ``x_t | z_t = k ~ Normal(means[k], covariances[k])``.

    NaN entries are integrated out (marginal densities, conditional moments). The data
    are centred at their observed mean (``shift``) before fitting, which keeps the raw
    moments of the statistics free of cancellation; ``means`` are reported in the
    original coordinates.

    Fitted attributes: ``means`` (K, D), ``covariances`` shaped as in
    :class:`emkit.GaussianMixture`: (K, D, D) full, (K, D) diag, (D, D) tied, (K,)
    spherical.

    ``prior`` (a :class:`GaussianPrior` over the K states, in the data's coordinates)
    makes the M-step MAP (:func:`map_step`); held means or covariances (:meth:`hold`)
    are kept and the rest maximised given them.
    """

    attributes = ("means", "covariances")
    paths: ClassVar[dict[str, str]] = {
        "means": "emission.mean",
        "covariances": "emission.covariance",
    }

    def __init__(
        self,
        covariance_type: str = "diag",
        reg_covar: float = 1e-6,
        shift=None,
        prior: GaussianPrior | None = None,
    ):
        super().__init__(Gaussian(covariance_type, reg_covar))
        self.covariance_type = covariance_type
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self.prior = prior

    def mstep(self, stats: GaussianStats, params: GaussianParams | None) -> GaussianParams:
        held = self.held if params is not None else frozenset()
        if held >= {"means", "covariances"}:
            return params
        if self.prior is None and "means" not in held:
            new = self.dist.mstep(stats, previous=params)
            return new._replace(covariance=params.covariance) if held else new
        return self._map_step(
            stats,
            params,
            hold_means="means" in held,
            hold_covariances="covariances" in held,
        )[0]

    def log_prior(self, params: GaussianParams) -> float:
        return self._gaussian_log_prior(params)

    def frame(self, params: GaussianParams, data: Any) -> tuple[np.ndarray, Any]:
        return self._log_densities(params, data)

    def shift_stats(self, stats: Any, old: GaussianParams, new: GaussianParams) -> Any:
        """Moments taken about ``old`` means re-expressed about ``new`` ones (online EM)."""
        return self.dist.shift_stats(stats, old, new)

    def suff_stats(self, data: Any, weights: np.ndarray, params: Any, aux: Any = None):
        return floored(lambda w: with_nk(self._moments(data, w, params, aux)), weights)

    def sample(self, params: GaussianParams, states: np.ndarray, rng: np.random.Generator):
        """One draw per entry of ``states``, in the data's coordinates."""
        return self._uncentre(super().sample(params, states, rng))

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator) -> Any:
        return self.dist.mstep(self._moments(data, floor_empty(resp), None, None))

    def n_parameters(self, params: Any, n_features: int) -> int:
        return int(self.dist.n_parameters(np.shape(params.mean)[0], n_features))

    def pack(self, params: GaussianParams) -> np.ndarray:
        cov = self.dist.storage(params.covariance)
        return np.concatenate([np.ravel(params.mean), self.dist.structure.pack(cov)])

    def unpack(self, vec: np.ndarray, like: GaussianParams) -> GaussianParams:
        K, D = np.shape(like.mean)
        means = np.asarray(vec[: K * D], dtype=np.float64).reshape(K, D)
        cov = self.dist.structure.unpack(vec[K * D :], K, D)  # ValueError unless valid
        return GaussianParams(means, self.dist.from_storage(cov, K))

    def to_attributes(self, params: GaussianParams) -> dict[str, Any]:
        return {
            "means": np.asarray(params.mean) + self.shift,
            "covariances": self.dist.storage(params.covariance),
        }

    def from_attributes(self, values: dict[str, Any], n_states: int, n_features: int) -> Any:
        K, D = n_states, n_features
        means = np.asarray(values["means"], dtype=np.float64)
        if means.shape != (K, D):
            raise ValueError(f"means must have shape ({K}, {D}), got {means.shape}")
        if not np.all(np.isfinite(means)):
            raise ValueError("means must be finite")
        cov = self.dist.structure.check(values["covariances"], K, D)
        return GaussianParams(means - self.shift, self.dist.from_storage(cov, K))
