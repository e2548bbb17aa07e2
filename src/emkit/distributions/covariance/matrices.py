"""Structures parametrised by whole covariance matrices: ``full`` (one per component)
and ``tied`` (one shared by all). Their unconstrained parametrisation for SQUAREM is the
log of the diagonal and the strictly-lower entries of each lower Cholesky factor."""

from __future__ import annotations

import numpy as np

from emkit.distributions.covariance._features import _Expanded, _WhitenedBlock, whitened
from emkit.distributions.covariance.base import CovarianceStructure, unpack_symmetric

__all__ = ["Full", "Tied"]


class _Matrices(CovarianceStructure):
    """Shared by full and tied: Cholesky precisions and the Cholesky parametrisation."""

    label = "covariance"

    def _n_matrices(self, n_components: int) -> int:
        return 1 if self.shared else n_components

    def precision_cholesky(self, cov):
        return _chol_precision(np.asarray(cov, dtype=np.float64))

    def centred_stats(self, X, resp, work, centre):
        if isinstance(work, _WhitenedBlock):
            nk, d1, c2 = work.centred_moments(resp)
            return nk, d1, self.pack_second_moments(c2)
        return super().centred_stats(X, resp, work, centre)

    def precisions(self, prec_chol):
        u = np.asarray(prec_chol, dtype=np.float64)
        return u @ np.swapaxes(u, -1, -2)

    def pack(self, covariances):
        chol = np.linalg.cholesky(np.asarray(covariances, dtype=np.float64))
        D = chol.shape[-1]
        lower = np.tril_indices(D, -1)
        return np.concatenate(
            [
                np.log(np.diagonal(chol, axis1=-2, axis2=-1)).reshape(-1),
                chol[..., lower[0], lower[1]].reshape(-1),
            ]
        )

    def n_packed(self, n_components, n_features):
        return self._n_matrices(n_components) * n_features * (n_features + 1) // 2

    def unpack(self, vec, n_components, n_features):
        n, D = self._n_matrices(n_components), n_features
        vec = _check_vector(vec, self.n_packed(n_components, D))
        chol = np.zeros((n, D, D))
        diag = np.arange(D)
        with np.errstate(over="ignore", under="ignore"):
            chol[:, diag, diag] = np.exp(vec[: n * D]).reshape(n, D)
        lower = np.tril_indices(D, -1)
        chol[:, lower[0], lower[1]] = vec[n * D :].reshape(n, -1)
        with np.errstate(over="ignore", invalid="ignore"):
            cov = (chol @ np.swapaxes(chol, 1, 2)).reshape(self.shape(n_components, D))
        return _check_unpacked(self, cov)


def _check_vector(vec, length: int) -> np.ndarray:
    vec = np.asarray(vec, dtype=np.float64)
    if vec.shape != (length,):
        raise ValueError(f"expected a covariance vector of length {length}, got {vec.shape}")
    if not np.all(np.isfinite(vec)):
        raise ValueError("the covariance vector has non-finite entries")
    return vec


def _check_unpacked(structure: CovarianceStructure, cov: np.ndarray) -> np.ndarray:
    """Unpacked covariances, if finite and positive definite in floating point."""
    if not np.all(np.isfinite(cov)):
        raise ValueError("the parameter vector gives an infinite covariance")
    try:
        prec = structure.precision_cholesky(cov)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"the covariances are not positive definite: {exc}") from None
    if not np.all(np.isfinite(prec)):
        raise ValueError("the covariances are not positive definite")
    return cov


def _chol_precision(cov: np.ndarray) -> np.ndarray:
    """Upper ``U`` with ``inv(cov) = U U^T`` for a stack (..., D, D) of SPD matrices.

    Batched NumPy calls: for the small matrices of a mixture, per-matrix SciPy calls
    cost more in overhead than the arithmetic.
    """
    c = np.linalg.cholesky(cov)  # raises LinAlgError if any matrix is not PD
    eye = np.broadcast_to(np.eye(cov.shape[-1]), cov.shape)
    return np.triu(np.swapaxes(np.linalg.solve(c, eye), -1, -2))


class Full(_Matrices):
    name = "full"

    def shape(self, K, D):
        return (K, D, D)

    def n_parameters(self, K, D):
        return K * D * (D + 1) // 2

    def work_per_row(self, K, D):
        expanded = D * (D + 1) // 2 + D + 1
        return min(expanded, K * (D + 1)) + 2 * K

    def valid_components(self, covariances, n_components):
        try:
            np.linalg.cholesky(covariances)
            return np.ones(n_components, dtype=bool)
        except np.linalg.LinAlgError:
            return super().valid_components(covariances, n_components)

    def log_det_precision_cholesky(self, prec_chol, D):
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)

    @staticmethod
    def _expanded(K: int, D: int) -> bool:
        # Packed squares cost D(D+1)/2 numbers per row, whitened residuals K(D+1):
        # expand unless the dimension is large and the components few.
        return D * (D + 1) // 2 <= 2 * K * (D + 1)

    def prepare(self, means, prec_chol, offset, dtype, exact=False):
        K, D = means.shape
        if self._expanded(K, D) and not exact:
            prec = prec_chol @ np.swapaxes(prec_chol, 1, 2)
            iu = np.triu_indices(D)
            quad = prec[:, iu[0], iu[1]] * np.where(iu[0] == iu[1], 1.0, 2.0)
            prec_mu = np.einsum("kde,ke->kd", prec, means)
            return _Expanded.build("packed", quad, prec_mu, means, offset, dtype)
        return whitened(means, prec_chol, offset, dtype)

    def log_density(self, X, cache):
        return cache.log_density(X)

    def block_stats(self, X, resp, work):
        if isinstance(work, _WhitenedBlock):
            return work.moments(resp)
        return _Expanded.moments(work, resp, X.shape[1])

    def recentre(self, nk, s1, s2, centre):
        D = s1.shape[1]
        s1c = s1 - nk[:, None] * centre
        full = unpack_symmetric(s2, D)
        cross = centre[:, :, None] * s1[:, None, :]
        full -= cross + np.swapaxes(cross, 1, 2)
        full += nk[:, None, None] * (centre[:, :, None] * centre[:, None, :])
        return nk, s1c, self.pack_second_moments(full)

    def pack_second_moments(self, s2):
        iu = np.triu_indices(s2.shape[-1])
        return s2[:, iu[0], iu[1]]

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = s1.shape[1]
        new_means = s1 / nk[:, None]
        covs = unpack_symmetric(s2 / nk[:, None], D)
        covs -= new_means[:, :, None] * new_means[:, None, :]
        covs[:, np.arange(D), np.arange(D)] += reg_covar
        return new_means, covs

    def to_full(self, cov, K, D):
        return np.asarray(cov)

    def from_full(self, full):
        return np.array(full, dtype=np.float64)


class Tied(_Matrices):
    name = "tied"
    shared = True

    def shape(self, K, D):
        return (D, D)

    def n_parameters(self, K, D):
        return D * (D + 1) // 2

    def work_per_row(self, K, D):
        return D * (D + 1) // 2 + D + 1 + 2 * K

    def log_det_precision_cholesky(self, prec_chol, D):
        return np.log(np.diagonal(prec_chol)).sum()

    def prepare(self, means, prec_chol, offset, dtype, exact=False):
        K, D = means.shape
        if exact:
            return whitened(means, np.broadcast_to(prec_chol, (K, D, D)), offset, dtype)
        prec = prec_chol @ prec_chol.T
        iu = np.triu_indices(D)
        quad = np.broadcast_to(prec[iu] * np.where(iu[0] == iu[1], 1.0, 2.0), (K, len(iu[0])))
        return _Expanded.build("packed", quad, means @ prec, means, offset, dtype)

    def log_density(self, X, cache):
        return cache.log_density(X)

    def block_stats(self, X, resp, work):
        if isinstance(work, _WhitenedBlock):
            nk, s1, s2 = work.moments(resp)
            return nk, s1, s2.sum(axis=0)
        # The responsibilities of a row sum to its weight: the pooled second moment is
        # the weighted sum of the squares, whatever the responsibilities.
        nk, s1, s2 = _Expanded.moments(work, resp, X.shape[1])
        return nk, s1, s2.sum(axis=0)

    def recentre(self, nk, s1, s2, centre):
        # pooled: sum_k sum_n r_nk (x - c_k)(x - c_k)' from sum_n w x x' and the s1_k
        D = s1.shape[1]
        full = unpack_symmetric(s2[None], D)[0]
        cross = centre.T @ s1
        full -= cross + cross.T
        full += (centre * nk[:, None]).T @ centre
        iu = np.triu_indices(D)
        return nk, s1 - nk[:, None] * centre, full[iu]

    def pack_second_moments(self, s2):
        iu = np.triu_indices(s2.shape[-1])
        return s2.sum(axis=0)[iu]

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = s1.shape[1]
        new_means = s1 / nk[:, None]
        cov = unpack_symmetric(s2[None], D)[0]
        cov = (cov - (new_means * nk[:, None]).T @ new_means) / nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov.flat[:: D + 1] += reg_covar
        return new_means, cov

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
