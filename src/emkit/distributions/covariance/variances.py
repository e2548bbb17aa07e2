"""Structures parametrised by variances: ``diag`` (one per feature and component) and
``spherical`` (one per component). Their unconstrained parametrisation is the log."""

from __future__ import annotations

import numpy as np

from emkit.distributions.covariance._features import _Expanded, _quadratic_features
from emkit.distributions.covariance.base import CovarianceStructure
from emkit.distributions.covariance.matrices import _check_unpacked, _check_vector

__all__ = ["Diag", "Spherical"]


class _VarianceCache:
    """What an E-step with per-feature variances needs: the expansion for
    ``log_density`` and the raw parameters for the one-pass kernel."""

    __slots__ = ("exact", "expanded", "means", "offset", "precisions")

    def __init__(self, expanded: _Expanded, means, precisions, offset, exact=False):
        self.expanded = expanded
        self.exact = exact
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
        if not cache.exact:
            return cache.expanded.log_density(X)
        # residuals about each component's mean: exact whatever the offset of the data
        z2 = np.zeros((len(X), len(cache.means)))
        for d in range(X.shape[1]):
            r = X[:, d, None] - cache.means[None, :, d]
            z2 += r * r * cache.precisions[None, :, d]
        return cache.offset - 0.5 * z2, None

    def block_stats(self, X, resp, phi):
        if phi is None:  # an exact cache keeps no features: build them
            phi = _quadratic_features(np.asarray(X, dtype=np.float64), self.squares)
        return _Expanded.moments(phi, resp, X.shape[1])

    def centred_stats(self, X, resp, work, centre):
        if work is not None:
            return super().centred_stats(X, resp, work, centre)
        Xd = np.asarray(X, dtype=np.float64)
        K, D = centre.shape
        s1 = np.empty((K, D))
        s2 = np.empty((K, D))
        for d in range(D):
            r = Xd[:, d, None] - centre[None, :, d]  # (B, K)
            s1[:, d] = np.einsum("bk,bk->k", resp, r)
            s2[:, d] = np.einsum("bk,bk->k", resp, r * r)
        return resp.sum(axis=0), s1, self._pack_diagonal(s2)

    def recentre(self, nk, s1, s2, centre):
        s2_diag = self._pack_diagonal(-2.0 * centre * s1 + nk[:, None] * centre * centre)
        return nk, s1 - nk[:, None] * centre, s2 + s2_diag

    def _feature_precisions(self, prec_chol, D) -> np.ndarray:
        """(K, D) inverse variances."""
        raise NotImplementedError

    def _prepare(self, means, prec_chol, offset, expanded, exact):
        D = means.shape[1]
        prec = self._feature_precisions(np.asarray(prec_chol, dtype=np.float64), D)
        offset = np.asarray(offset, dtype=np.float64)
        return _VarianceCache(expanded, np.asarray(means, dtype=np.float64), prec, offset, exact)

    def estep_stats(self, X, w, cache, beta=1.0, centred=False):
        from emkit.distributions.covariance._kernels import diag_estep

        nk, s1, s2, value = diag_estep(
            X, w, cache.means, cache.precisions, cache.offset, beta, centred
        )
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

    def prepare(self, means, prec_chol, offset, dtype, exact=False):
        prec2 = prec_chol**2
        expanded = _Expanded.build("diag", prec2, means * prec2, means, offset, dtype)
        return self._prepare(means, prec_chol, offset, expanded, exact)

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

    def prepare(self, means, prec_chol, offset, dtype, exact=False):
        prec2 = prec_chol**2
        expanded = _Expanded.build(
            "norm", prec2[:, None], means * prec2[:, None], means, offset, dtype
        )
        return self._prepare(means, prec_chol, offset, expanded, exact)

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
