"""Covariance structures of a set of K Gaussians: the one place that knows full/diag/tied/spherical.

Each structure is a small strategy object with the same methods, so a Gaussian
mixture (or an HMM emission) never branches on the covariance type. Shapes follow
scikit-learn:

============  ====================  ====================  =============================
name          covariances           precisions_cholesky   meaning
============  ====================  ====================  =============================
full          (K, D, D)             (K, D, D) upper       one matrix per component
diag          (K, D)                (K, D)                one variance per feature
tied          (D, D)                (D, D) upper          one matrix shared by all
spherical     (K,)                  (K,)                  one variance per component
============  ====================  ====================  =============================

``precisions_cholesky`` ``U`` satisfies ``inv(Sigma) = U @ U.T``, so the whitened
residual ``z = (x - mu) @ U`` has identity covariance and log-densities need no inverse.

Sufficient statistics are kept *centred*: full and tied structures accumulate the
weighted moments of the whitened residuals ``z`` at the current parameters (no
``E[xx] - E[x]^2`` cancellation); diagonal and spherical ones use raw moments of
data that the estimator has already centred (two matrix products instead of an
``(N, K, D)`` tensor), which loses at most ``eps * (|mu_k|^2 / sigma_k^2)`` relative
precision in a variance.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

__all__ = ["COVARIANCE_TYPES", "CovarianceStructure", "get_structure"]

_LOG_2PI = np.log(2.0 * np.pi)


class CovarianceStructure(abc.ABC):
    """Operations on the covariances of K Gaussian components in D dimensions."""

    name: str
    #: one covariance shared by every component (tied)
    shared: bool = False

    @abc.abstractmethod
    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of the ``covariances`` array."""

    @abc.abstractmethod
    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Free parameters in the covariances."""

    @abc.abstractmethod
    def precision_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        """``U`` with ``inv(Sigma) = U U^T``; raises ``np.linalg.LinAlgError`` if not PD."""

    @abc.abstractmethod
    def log_det_precision_cholesky(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """``log det U`` per component (shape (K,)), i.e. ``-log det(Sigma_k) / 2``."""

    @abc.abstractmethod
    def prepare(self, means: np.ndarray, prec_chol: np.ndarray, dtype) -> Any:
        """Per-E-step constants (computed once, used on every block of rows)."""

    @abc.abstractmethod
    def mahalanobis(self, X: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        """Squared Mahalanobis distances (B, K) and whatever ``block_stats`` reuses."""

    @abc.abstractmethod
    def zero_stats(self, n_components: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """Zero first and second moment accumulators (float64)."""

    @abc.abstractmethod
    def block_stats(self, X: np.ndarray, resp: np.ndarray, work: Any) -> tuple[Any, Any]:
        """First and second moments of a block of rows, weighted by ``resp`` (B, K)."""

    @abc.abstractmethod
    def estimate(
        self, nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, means, prec_chol, reg_covar: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """M-step: new means and covariances from the summed moments."""

    @abc.abstractmethod
    def to_full(self, covariances: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        """Covariances as (K, D, D) matrices (for sampling, plotting and reporting)."""

    def check(self, covariances: Any, n_components: int, n_features: int) -> np.ndarray:
        """Validate user-given covariances: shape, finiteness, symmetry, positive definiteness."""
        cov = np.asarray(covariances, dtype=np.float64)
        expected = self.shape(n_components, n_features)
        if cov.shape != expected:
            raise ValueError(
                f"'{self.name}' covariances must have shape {expected}, got {cov.shape}"
            )
        if not np.all(np.isfinite(cov)):
            raise ValueError("covariances must be finite")
        full = self.to_full(cov, n_components, n_features)
        if not np.allclose(full, np.swapaxes(full, -1, -2), rtol=1e-10, atol=0):
            raise ValueError("covariances must be symmetric")
        try:
            self.precision_cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError(f"'{self.name}' covariances must be positive definite") from None
        return cov

    def identity(self, n_components: int, n_features: int) -> np.ndarray:
        """Unit covariances of the right shape."""
        K, D = n_components, n_features
        return self.from_full(np.broadcast_to(np.eye(D), (K, D, D)))

    def from_full(self, full: np.ndarray) -> np.ndarray:
        """The structure's covariances nearest to (K, D, D) matrices (inverse of ``to_full``)."""
        raise NotImplementedError

    def valid_components(self, covariances: np.ndarray, n_components: int) -> np.ndarray:
        """Boolean (K,): which components have a positive definite covariance."""
        ok = np.ones(n_components, dtype=bool)
        for k in range(n_components):
            try:
                self.precision_cholesky(covariances[k : k + 1])
            except np.linalg.LinAlgError:
                ok[k] = False
        return ok

    def sample(self, rng: np.random.Generator, mean: np.ndarray, cov_k: np.ndarray, n: int):
        """``n`` draws from one component, given its (D, D) covariance."""
        return rng.multivariate_normal(mean, cov_k, size=n, method="cholesky")


def _chol_precision(cov: np.ndarray) -> np.ndarray:
    """Upper ``U`` with ``inv(cov) = U U^T`` for a stack (..., D, D) of SPD matrices.

    Batched NumPy calls: for the small matrices of a mixture, per-matrix SciPy calls
    cost more in overhead than the arithmetic.
    """
    c = np.linalg.cholesky(cov)  # raises LinAlgError if any matrix is not PD
    eye = np.broadcast_to(np.eye(cov.shape[-1]), cov.shape)
    u = np.swapaxes(np.linalg.solve(c, eye), -1, -2)
    return np.triu(u)


def _upper_inverse(u: np.ndarray) -> np.ndarray:
    """Inverse of a stack of upper triangular matrices."""
    return np.triu(np.linalg.solve(u, np.broadcast_to(np.eye(u.shape[-1]), u.shape)))


class Full(CovarianceStructure):
    name = "full"

    def shape(self, K, D):
        return (K, D, D)

    def n_parameters(self, K, D):
        return K * D * (D + 1) // 2

    def precision_cholesky(self, cov):
        return _chol_precision(np.asarray(cov, dtype=np.float64))

    def valid_components(self, covariances, n_components):
        try:
            np.linalg.cholesky(covariances)
            return np.ones(n_components, dtype=bool)
        except np.linalg.LinAlgError:
            return super().valid_components(covariances, n_components)

    def log_det_precision_cholesky(self, prec_chol, D):
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)

    def prepare(self, means, prec_chol, dtype):
        K, D = means.shape
        # One (D, K*D) matrix: every component's whitening in one matrix product.
        u_all = np.ascontiguousarray(prec_chol.transpose(1, 0, 2).reshape(D, K * D), dtype=dtype)
        shift = np.einsum("kd,kde->ke", means, prec_chol).astype(dtype)
        return u_all, shift

    def mahalanobis(self, X, cache):
        u_all, shift = cache
        K, D = shift.shape
        z = (X @ u_all).reshape(X.shape[0], K, D)
        z -= shift
        return np.einsum("bkd,bkd->bk", z, z), z

    def zero_stats(self, K, D):
        return np.zeros((K, D)), np.zeros((K, D, D))

    def block_stats(self, X, resp, z):
        s1 = np.einsum("bk,bkd->kd", resp, z)
        rz = z * resp[:, :, None]
        s2 = np.matmul(rz.transpose(1, 2, 0), z.transpose(1, 0, 2))
        return s1, s2

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = means.shape[1]
        u_inv = _upper_inverse(prec_chol)
        delta = s1 / nk[:, None]
        scatter = s2 / nk[:, None, None] - delta[:, :, None] * delta[:, None, :]
        covs = np.swapaxes(u_inv, 1, 2) @ scatter @ u_inv
        covs = 0.5 * (covs + np.swapaxes(covs, 1, 2))
        covs[:, np.arange(D), np.arange(D)] += reg_covar
        return means + np.einsum("kd,kde->ke", delta, u_inv), covs

    def to_full(self, cov, K, D):
        return np.asarray(cov)

    def from_full(self, full):
        return np.array(full, dtype=np.float64)


class Tied(CovarianceStructure):
    name = "tied"
    shared = True

    def shape(self, K, D):
        return (D, D)

    def n_parameters(self, K, D):
        return D * (D + 1) // 2

    def precision_cholesky(self, cov):
        return _chol_precision(cov)

    def log_det_precision_cholesky(self, prec_chol, D):
        return np.log(np.diagonal(prec_chol)).sum()

    def prepare(self, means, prec_chol, dtype):
        return prec_chol.astype(dtype), (means @ prec_chol).astype(dtype)

    def mahalanobis(self, X, cache):
        u, shift = cache
        z = (X @ u)[:, None, :] - shift
        return np.einsum("bkd,bkd->bk", z, z), z

    def zero_stats(self, K, D):
        return np.zeros((K, D)), np.zeros((D, D))

    def block_stats(self, X, resp, z):
        s1 = np.einsum("bk,bkd->kd", resp, z)
        B, K, D = z.shape
        flat = z.reshape(B * K, D)
        s2 = (flat * resp.reshape(B * K, 1)).T @ flat
        return s1, s2

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = means.shape[1]
        u_inv = _upper_inverse(prec_chol)
        delta = s1 / nk[:, None]
        scatter = (s2 - (delta * nk[:, None]).T @ delta) / nk.sum()
        cov = u_inv.T @ scatter @ u_inv
        cov = 0.5 * (cov + cov.T)
        cov.flat[:: D + 1] += reg_covar
        return means + delta @ u_inv, cov

    def to_full(self, cov, K, D):
        return np.broadcast_to(np.asarray(cov), (K, *np.shape(cov))).copy()

    def from_full(self, full):
        return np.array(np.mean(full, axis=0), dtype=np.float64)

    def valid_components(self, covariances, n_components):
        try:
            self.precision_cholesky(covariances)
        except np.linalg.LinAlgError:
            return np.zeros(n_components, dtype=bool)
        return np.ones(n_components, dtype=bool)


class _RawMoments(CovarianceStructure):
    """Diagonal and spherical structures: Mahalanobis distances by two matrix products."""

    def zero_stats(self, K, D):
        return np.zeros((K, D)), np.zeros(self._s2_shape(K, D))

    def block_stats(self, X, resp, sq):
        return resp.T @ X, resp.T @ sq

    def mahalanobis(self, X, cache):
        prec2, mprec2, const = cache
        sq = self._squares(X)
        maha = sq @ prec2.T
        maha -= 2.0 * (X @ mprec2.T)
        maha += const
        np.maximum(maha, 0.0, out=maha)
        return maha, sq


class Diag(_RawMoments):
    name = "diag"

    def shape(self, K, D):
        return (K, D)

    def _s2_shape(self, K, D):
        return (K, D)

    def _squares(self, X):
        return X * X

    def n_parameters(self, K, D):
        return K * D

    def precision_cholesky(self, cov):
        if np.any(cov <= 0) or not np.all(np.isfinite(cov)):
            raise np.linalg.LinAlgError("variances must be positive")
        return 1.0 / np.sqrt(cov)

    def log_det_precision_cholesky(self, prec_chol, D):
        return np.log(prec_chol).sum(axis=1)

    def prepare(self, means, prec_chol, dtype):
        prec2 = prec_chol**2
        return (
            prec2.astype(dtype),
            (means * prec2).astype(dtype),
            (means**2 * prec2).sum(axis=1).astype(dtype),
        )

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        new_means = s1 / nk[:, None]
        var = s2 / nk[:, None] - new_means**2
        return new_means, np.maximum(var, 0.0) + reg_covar

    def to_full(self, cov, K, D):
        return np.stack([np.diag(c) for c in np.asarray(cov)])

    def from_full(self, full):
        return np.array(np.diagonal(full, axis1=1, axis2=2), dtype=np.float64)


class Spherical(_RawMoments):
    name = "spherical"

    def shape(self, K, D):
        return (K,)

    def _s2_shape(self, K, D):
        return (K,)

    def _squares(self, X):
        return np.einsum("bd,bd->b", X, X)

    def n_parameters(self, K, D):
        return K

    def precision_cholesky(self, cov):
        if np.any(cov <= 0) or not np.all(np.isfinite(cov)):
            raise np.linalg.LinAlgError("variances must be positive")
        return 1.0 / np.sqrt(cov)

    def log_det_precision_cholesky(self, prec_chol, D):
        return D * np.log(prec_chol)

    def prepare(self, means, prec_chol, dtype):
        prec2 = prec_chol**2
        return (
            prec2.astype(dtype),
            (means * prec2[:, None]).astype(dtype),
            ((means**2).sum(axis=1) * prec2).astype(dtype),
        )

    def mahalanobis(self, X, cache):
        prec2, mprec2, const = cache
        sq = self._squares(X)
        maha = np.multiply.outer(sq, prec2)
        maha -= 2.0 * (X @ mprec2.T)
        maha += const
        np.maximum(maha, 0.0, out=maha)
        return maha, sq

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = means.shape[1]
        new_means = s1 / nk[:, None]
        var = (s2 / nk - (new_means**2).sum(axis=1)) / D
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


COVARIANCE_TYPES: dict[str, CovarianceStructure] = {
    s.name: s for s in (Full(), Diag(), Tied(), Spherical())
}


def get_structure(name: str) -> CovarianceStructure:
    """The structure called ``name`` (full, diag, tied or spherical)."""
    try:
        return COVARIANCE_TYPES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, got {name!r}"
        ) from None
