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

How the E-step is computed. Log-densities and statistics of a block of rows come from
one or two large matrix products, never from K small ones:

* diag, spherical, tied, and full when D(D+1)/2 <= 2K(D+1): the squared Mahalanobis
  distance is expanded, ``x'Lx - 2 x'L mu + mu'L mu``, so every component's
  log-density is one product of per-row features (``x``, ``x**2`` or the packed
  ``x_i x_j``) with a coefficient matrix, and the statistics are the
  responsibility-weighted sums of the same features (one more product). These are
  raw moments of data that the estimator has centred at their mean, so a variance
  loses at most about ``eps * |mu_k|^2 / sigma_k^2`` of relative precision
  (scikit-learn's diag and spherical kernels make the same trade).
* diag and spherical E-steps over complete rows (``estep_stats``) skip both products:
  one compiled pass per block of rows forms the residuals, responsibilities and
  moments in cache (:mod:`emkit.distributions.covariance._kernels`); the expansion above
  still serves ``log_density`` (prediction, scoring, HMM emissions).
* full with a large dimension and few components, and full float32 data: whitened
  residuals ``z = (x - mu_k) U_k`` for all components in one product, whose moments
  are centred at the current means (accurate in float32) and are turned into raw
  float64 moments block by block.

Statistics are always the natural ones, weighted sums of ``x`` and ``x x'`` (packed
upper triangles), so they do not depend on the parameters they were computed at: they
add across batches, and online EM may average them across iterations.
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
    def prepare(self, means: np.ndarray, prec_chol: np.ndarray, offset: np.ndarray, dtype) -> Any:
        """Per-E-step constants (computed once, used on every block of rows).

        ``offset`` (K,) is added to every component's log-density (log weights,
        log-determinants and the 2 pi term).
        """

    @abc.abstractmethod
    def log_density(self, X: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        """``offset_k - maha_k(x) / 2`` for a block (B, K), and what ``block_stats`` reuses."""

    @abc.abstractmethod
    def block_stats(self, X: np.ndarray, resp: np.ndarray, work: Any) -> tuple[Any, Any, Any]:
        """Counts, first and second moments of a block of rows weighted by ``resp`` (B, K).

        Moments are raw sums: ``sum r x`` (K, D) and the structure's second moment
        (packed ``sum r x x'`` for full and tied, ``sum r x**2`` for diag, ``sum r |x|^2``
        for spherical), so they do not depend on the parameters.
        """

    def estep_stats(
        self, X: np.ndarray, w: np.ndarray | None, cache: Any, beta: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
        """The whole E-step of complete rows in one compiled pass, where the structure has one.

        Returns ``(counts, first moments, second moments, objective)`` as the sums of
        ``block_stats`` over responsibilities proportional to ``(w_k p_k(x))**beta``
        times the sample weights ``w``, with the objective
        ``sum_n w_n (1/beta) log sum_k (w_k p_k(x_n))**beta``; or ``None`` when the
        structure has no such kernel (then the caller uses ``log_density`` and
        ``block_stats`` block by block).
        """
        return None

    @abc.abstractmethod
    def pack_second_moments(self, s2: np.ndarray) -> np.ndarray:
        """Full (K, D, D) second moments ``sum r x x'`` in the layout of ``block_stats``."""

    @abc.abstractmethod
    def work_per_row(self, n_components: int, n_features: int) -> int:
        """Numbers held per row of a block during the E-step (sets the block size)."""

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


def block_rows(work_per_row: int) -> int:
    """Rows per block of an E-step: about 2**17 numbers of work arrays stay in cache."""
    return int(np.clip(2**17 // max(work_per_row, 1), 256, 1 << 16))


def _unpack_symmetric(packed: np.ndarray, D: int) -> np.ndarray:
    """(K, D(D+1)/2) packed upper triangles back to symmetric (K, D, D) matrices."""
    iu = np.triu_indices(D)
    out = np.empty((packed.shape[0], D, D))
    out[:, iu[0], iu[1]] = packed
    out[:, iu[1], iu[0]] = packed
    return out


def _quadratic_features(X: np.ndarray, squares: str) -> np.ndarray:
    """Per-row features, transposed to (F, B) so that each is built by one contiguous op.

    The rows are the squares, then ``x``, then a row of ones. ``squares`` is "packed"
    (``x_i x_j`` for i <= j), "diag" (``x**2``) or "norm" (``|x|^2``). The ones carry
    the constant of each log-density into the same product, and give the counts in
    the moment product.
    """
    # Rows of X.T are contiguous when X is Fortran-ordered (the estimators centre their
    # data into that layout): then no transposed copy is needed.
    xt = X.T if X.strides[0] == X.itemsize else np.ascontiguousarray(X.T)
    D, B = xt.shape
    n_sq = _n_squares(squares, D)
    phi = np.empty((n_sq + D + 1, B), dtype=X.dtype)
    if squares == "packed":
        row = 0
        for i in range(D):
            np.multiply(xt[i:], xt[i], out=phi[row : row + D - i])
            row += D - i
    elif squares == "diag":
        np.multiply(xt, xt, out=phi[:D])
    else:
        np.einsum("db,db->b", xt, xt, out=phi[0])
    phi[n_sq : n_sq + D] = xt
    phi[-1] = 1.0
    return phi


def _n_squares(squares: str, D: int) -> int:
    return {"packed": D * (D + 1) // 2, "diag": D, "norm": 1}[squares]


class _Expanded:
    """Log-densities as one product of quadratic features with a coefficient matrix."""

    __slots__ = ("coef", "squares")

    def __init__(self, squares: str, quad: np.ndarray, lin: np.ndarray, const: np.ndarray):
        # log p_k(x) = const_k - (x'L_k x - 2 x'L_k mu_k) / 2
        self.squares = squares
        self.coef = np.ascontiguousarray(np.column_stack([-0.5 * quad, lin, const]))

    @staticmethod
    def build(squares, quad, prec_mu, means, offset, dtype) -> _Expanded:
        """``quad`` (K, F): coefficients of the squares; ``prec_mu`` (K, D) = L_k mu_k.

        ``dtype`` is the arithmetic of the log-densities; the caller chooses float32
        only where the cancellation of the expansion stays small. Features, and so
        the statistics, are always float64: their cancellation happens in the M-step.
        """
        const = offset - 0.5 * np.einsum("kd,kd->k", prec_mu, means)
        out = _Expanded(squares, quad, prec_mu, const)
        out.coef = out.coef.astype(dtype)
        return out

    def log_density(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = _quadratic_features(X.astype(np.float64, copy=False), self.squares)
        # (K, B) products are the faster shape for BLAS; callers get a (B, K) view.
        if self.coef.dtype == np.float64:
            return (self.coef @ phi).T, phi
        return (self.coef @ phi.astype(self.coef.dtype)).T, phi

    @staticmethod
    def moments(phi: np.ndarray, resp: np.ndarray, D: int):
        g = resp.T @ phi.T  # (K, F): responsibility-weighted sums of every feature
        return g[:, -1], g[:, -1 - D : -1], g[:, : -1 - D]


class _Whitened:
    """Whitened residuals of every component from one product (large D, few components)."""

    __slots__ = ("means", "offset", "u_aug", "u_inv")

    def __init__(self, u_aug, offset, u_inv, means):
        self.u_aug, self.offset, self.u_inv, self.means = u_aug, offset, u_inv, means

    def log_density(self, X: np.ndarray) -> tuple[np.ndarray, _WhitenedBlock]:
        B, D = X.shape
        xa = np.empty((B, D + 1), dtype=self.u_aug.dtype)
        xa[:, :D] = X
        xa[:, D] = 1.0
        za = (xa @ self.u_aug).reshape(B, -1, D + 1)
        lp = np.einsum("bkd,bkd->bk", za, za)
        lp -= 1.0
        lp *= -0.5
        lp += self.offset
        return lp, _WhitenedBlock(za, self)


class _WhitenedBlock:
    __slots__ = ("cache", "za")

    def __init__(self, za, cache):
        self.za, self.cache = za, cache

    def moments(self, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw moments (sum r x, packed sum r x x') from moments of the residuals.

        The block's moments are centred at the current means (accurate even in
        float32); they are turned into raw float64 moments so that statistics do not
        depend on the parameters they were computed at.
        """
        za, D = self.za, self.za.shape[2] - 1
        rz = za * resp[:, :, None]
        m = np.matmul(rz.transpose(1, 2, 0), za.transpose(1, 0, 2)).astype(np.float64)
        nk, u_inv, mu = m[:, D, D], self.cache.u_inv, self.cache.means
        d1 = np.einsum("kd,kde->ke", m[:, D, :D], u_inv)  # sum r (x - mu)
        c2 = np.swapaxes(u_inv, 1, 2) @ m[:, :D, :D] @ u_inv  # sum r (x - mu)(x - mu)'
        outer = mu[:, :, None] * d1[:, None, :]
        s2 = (
            c2
            + outer
            + np.swapaxes(outer, 1, 2)
            + nk[:, None, None] * (mu[:, :, None] * mu[:, None, :])
        )
        iu = np.triu_indices(D)
        return nk, d1 + nk[:, None] * mu, s2[:, iu[0], iu[1]]


def _upper_inverse(u: np.ndarray) -> np.ndarray:
    """Inverse of a stack of upper triangular matrices."""
    return np.triu(np.linalg.solve(u, np.broadcast_to(np.eye(u.shape[-1]), u.shape)))


def _chol_precision(cov: np.ndarray) -> np.ndarray:
    """Upper ``U`` with ``inv(cov) = U U^T`` for a stack (..., D, D) of SPD matrices.

    Batched NumPy calls: for the small matrices of a mixture, per-matrix SciPy calls
    cost more in overhead than the arithmetic.
    """
    c = np.linalg.cholesky(cov)  # raises LinAlgError if any matrix is not PD
    eye = np.broadcast_to(np.eye(cov.shape[-1]), cov.shape)
    return np.triu(np.swapaxes(np.linalg.solve(c, eye), -1, -2))


class Full(CovarianceStructure):
    name = "full"

    def shape(self, K, D):
        return (K, D, D)

    def n_parameters(self, K, D):
        return K * D * (D + 1) // 2

    def work_per_row(self, K, D):
        expanded = D * (D + 1) // 2 + D + 1
        return min(expanded, K * (D + 1)) + 2 * K

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

    @staticmethod
    def _expanded(K: int, D: int) -> bool:
        # Packed squares cost D(D+1)/2 numbers per row, whitened residuals K(D+1):
        # expand unless the dimension is large and the components few.
        return D * (D + 1) // 2 <= 2 * K * (D + 1)

    def prepare(self, means, prec_chol, offset, dtype):
        K, D = means.shape
        if self._expanded(K, D):
            prec = prec_chol @ np.swapaxes(prec_chol, 1, 2)
            iu = np.triu_indices(D)
            quad = prec[:, iu[0], iu[1]] * np.where(iu[0] == iu[1], 1.0, 2.0)
            prec_mu = np.einsum("kde,ke->kd", prec, means)
            return _Expanded.build("packed", quad, prec_mu, means, offset, dtype)
        # One (D+1, K*(D+1)) matrix whitens a row for every component in one product:
        # with x augmented by a 1, component k's block of columns gives
        # [(x - mu_k) U_k, 1]. The trailing 1 makes the moment product below return the
        # first moments and the counts as well, with no extra pass over the data.
        u_aug = np.zeros((D + 1, K, D + 1))
        u_aug[:D, :, :D] = prec_chol.transpose(1, 0, 2)
        u_aug[D, :, :D] = -np.einsum("kd,kde->ke", means, prec_chol)
        u_aug[D, :, D] = 1.0
        return _Whitened(
            u_aug.reshape(D + 1, K * (D + 1)).astype(dtype),
            np.asarray(offset, dtype=dtype),
            _upper_inverse(prec_chol),
            means,
        )

    def log_density(self, X, cache):
        return cache.log_density(X)

    def block_stats(self, X, resp, work):
        if isinstance(work, _WhitenedBlock):
            return work.moments(resp)
        return _Expanded.moments(work, resp, X.shape[1])

    def pack_second_moments(self, s2):
        iu = np.triu_indices(s2.shape[-1])
        return s2[:, iu[0], iu[1]]

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = means.shape[1]
        new_means = s1 / nk[:, None]
        covs = _unpack_symmetric(s2 / nk[:, None], D)
        covs -= new_means[:, :, None] * new_means[:, None, :]
        covs[:, np.arange(D), np.arange(D)] += reg_covar
        return new_means, covs

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

    def work_per_row(self, K, D):
        return D * (D + 1) // 2 + D + 1 + 2 * K

    def precision_cholesky(self, cov):
        return _chol_precision(np.asarray(cov, dtype=np.float64))

    def log_det_precision_cholesky(self, prec_chol, D):
        return np.log(np.diagonal(prec_chol)).sum()

    def prepare(self, means, prec_chol, offset, dtype):
        K, D = means.shape
        prec = prec_chol @ prec_chol.T
        iu = np.triu_indices(D)
        quad = np.broadcast_to(prec[iu] * np.where(iu[0] == iu[1], 1.0, 2.0), (K, len(iu[0])))
        return _Expanded.build("packed", quad, means @ prec, means, offset, dtype)

    def log_density(self, X, cache):
        return cache.log_density(X)

    def block_stats(self, X, resp, phi):
        # The responsibilities of a row sum to its weight: the pooled second moment is
        # the weighted sum of the squares, whatever the responsibilities.
        nk, s1, s2 = _Expanded.moments(phi, resp, X.shape[1])
        return nk, s1, s2.sum(axis=0)

    def pack_second_moments(self, s2):
        iu = np.triu_indices(s2.shape[-1])
        return s2.sum(axis=0)[iu]

    def estimate(self, nk, s1, s2, means, prec_chol, reg_covar):
        D = means.shape[1]
        new_means = s1 / nk[:, None]
        cov = _unpack_symmetric(s2[None], D)[0]
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
        D = means.shape[1]
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
