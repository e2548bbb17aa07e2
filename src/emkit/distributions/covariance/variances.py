"""Structures parametrised by variances: ``diag`` (one per feature and component) and
``spherical`` (one per component). Their unconstrained parametrisation is the log."""

from __future__ import annotations

import numpy as np

from emkit.distributions.covariance._features import _Expanded
from emkit.distributions.covariance.base import CovarianceStructure
from emkit.distributions.covariance.matrices import _check_unpacked, _check_vector

__all__ = ["Diag", "Spherical"]


class _VarianceCache:
    """What an E-step with per-feature variances needs: the expansion for
    ``log_density`` and the raw parameters for the one-pass kernel."""

    __slots__ = ("expanded", "means", "offset", "precisions")

    def __init__(self, expanded: _Expanded, means, precisions, offset):
        self.expanded = expanded
        self.means = means
        self.precisions = precisions  # (K, D) inverse variances
        self.offset = offset


class _Variances(CovarianceStructure):
    """Diagonal and spherical structures: precisions are ``1 / sqrt(variance)``.

    Their E-step over complete rows is one compiled pass
    (:mod:`emkit.distributions.covariance._kernels`): log-densities from residuals,
    responsibilities and the moments in cache, no ``(N, K)`` array in memory.
    """

    squares: str

    def precisions(self, prec_chol):
        return np.asarray(prec_chol, dtype=np.float64) ** 2

    def pack(self, covariances):
        return np.log(np.asarray(covariances, dtype=np.float64)).ravel()

    def n_packed(self, n_components, n_features):
        return int(np.prod(self.shape(n_components, n_features)))

    def unpack(self, vec, n_components, n_features):
        vec = _check_vector(vec, self.n_packed(n_components, n_features))
        with np.errstate(over="ignore", under="ignore"):
            cov = np.exp(vec).reshape(self.shape(n_components, n_features))
        return _check_unpacked(self, cov)

    def precision_cholesky(self, cov):
        cov = np.asarray(cov, dtype=np.float64)
        if np.any(cov <= 0) or not np.all(np.isfinite(cov)):
            raise np.linalg.LinAlgError("variances must be positive")
        return 1.0 / np.sqrt(cov)

    def log_density(self, X, cache):
        return cache.expanded.log_density(X)

    def block_stats(self, X, resp, phi):
        return _Expanded.moments(phi, resp, X.shape[1])

    def _feature_precisions(self, prec_chol, D) -> np.ndarray:
        """(K, D) inverse variances."""
        raise NotImplementedError

    def _prepare(self, means, prec_chol, offset, expanded):
        D = means.shape[1]
        prec = self._feature_precisions(np.asarray(prec_chol, dtype=np.float64), D)
        return _VarianceCache(expanded, means, prec, np.asarray(offset, dtype=np.float64))

    def estep_stats(self, X, w, cache, beta=1.0):
        from emkit.distributions.covariance._kernels import diag_estep

        nk, s1, s2, value = diag_estep(X, w, cache.means, cache.precisions, cache.offset, beta)
        return nk, s1, self._pack_diagonal(s2), value

    def _pack_diagonal(self, s2_diag: np.ndarray) -> np.ndarray:
        """(K, D) sums of ``r x**2`` in the layout of ``block_stats``."""
        raise NotImplementedError


class Diag(_Variances):
    name = "diag"
    label = "variances"
    squares = "diag"

    def shape(self, K, D):
        return (K, D)

    def n_parameters(self, K, D):
        return K * D

    def work_per_row(self, K, D):
        return 2 * D + 1 + 2 * K

    def log_det_precision_cholesky(self, prec_chol, D):
        return np.log(prec_chol).sum(axis=1)

    def prepare(self, means, prec_chol, offset, dtype):
        prec2 = prec_chol**2
        expanded = _Expanded.build("diag", prec2, means * prec2, means, offset, dtype)
        return self._prepare(means, prec_chol, offset, expanded)

    def _feature_precisions(self, prec_chol, D):
        return prec_chol**2

    def _pack_diagonal(self, s2_diag):
        return s2_diag

    def pack_second_moments(self, s2):
        return np.diagonal(s2, axis1=1, axis2=2).copy()

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        new_means = s1 / nk[:, None]
        var = s2 / nk[:, None] - new_means**2
        return new_means, np.maximum(var, 0.0) + reg_covar

    def to_full(self, cov, K, D):
        return np.stack([np.diag(c) for c in np.asarray(cov)])

    def from_full(self, full):
        return np.array(np.diagonal(full, axis1=1, axis2=2), dtype=np.float64)


class Spherical(_Variances):
    name = "spherical"
    label = "variance"
    squares = "norm"

    def shape(self, K, D):
        return (K,)

    def n_parameters(self, K, D):
        return K

    def work_per_row(self, K, D):
        return D + 2 + 2 * K

    def log_det_precision_cholesky(self, prec_chol, D):
        return D * np.log(prec_chol)

    def prepare(self, means, prec_chol, offset, dtype):
        prec2 = prec_chol**2
        expanded = _Expanded.build(
            "norm", prec2[:, None], means * prec2[:, None], means, offset, dtype
        )
        return self._prepare(means, prec_chol, offset, expanded)

    def _feature_precisions(self, prec_chol, D):
        return np.repeat((prec_chol**2)[:, None], D, axis=1)

    def _pack_diagonal(self, s2_diag):
        return s2_diag.sum(axis=1, keepdims=True)

    def pack_second_moments(self, s2):
        return np.trace(s2, axis1=1, axis2=2)[:, None]

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = s1.shape[1]
        new_means = s1 / nk[:, None]
        var = (s2[:, 0] / nk - (new_means**2).sum(axis=1)) / D
        return new_means, np.maximum(var, 0.0) + reg_covar

    def to_full(self, cov, K, D):
        return np.asarray(cov)[:, None, None] * np.eye(D)[None]

    def from_full(self, full):
        return np.array(np.diagonal(full, axis1=1, axis2=2).mean(axis=1), dtype=np.float64)

    def check(self, covariances, n_components, n_features):
        cov = np.asarray(covariances, dtype=np.float64)
        if cov.shape != (n_components,):
            raise ValueError(
                f"'spherical' covariances must have shape {(n_components,)}, got {cov.shape}"
            )
        if not np.all(np.isfinite(cov)) or np.any(cov <= 0):
            raise ValueError("'spherical' covariances must be finite and positive")
        return cov
