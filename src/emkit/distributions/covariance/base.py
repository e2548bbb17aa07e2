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

__all__ = ["CovarianceStructure", "block_rows", "unpack_symmetric"]


class CovarianceStructure(abc.ABC):
    """Operations on the covariances of K Gaussian components in D dimensions."""

    name: str
    #: one covariance shared by every component (tied)
    shared: bool = False
    #: what the parameters of one component are called in reports
    label: str = "covariance"
    #: whether ``estimate`` maximises the expected complete-data log-likelihood exactly
    #: (False: a generalized M-step that only increases it, warm-started from ``previous``)
    exact: bool = True

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
    def prepare(
        self, means: np.ndarray, prec_chol: np.ndarray, offset: np.ndarray, dtype, exact=False
    ) -> Any:
        """Per-E-step constants (computed once, used on every block of rows).

        ``offset`` (K,) is added to every component's log-density (log weights,
        log-determinants and the 2 pi term). ``exact``: evaluate residuals about each
        component's mean instead of the faster expansion
        ``x'Lx - 2 x'L mu + mu'L mu``, which loses about ``eps * conditioning`` (see
        :meth:`conditioning`): the choice for data far from the origin relative to
        their spread.
        """

    def conditioning(self, means: np.ndarray, prec_chol: np.ndarray) -> float:
        """``max_k mu_k' P_k mu_k``: how far (in squared standard deviations) the means
        sit from the origin. The expansion of the squared distances and raw moments lose
        about ``eps`` times this much; above about 1e5 the kernels switch to residuals."""
        means = np.asarray(means, dtype=np.float64)
        K, D = means.shape
        prec = self.to_full(self.precisions(prec_chol), K, D)
        return float(np.einsum("kd,kde,ke->k", means, prec, means).max(initial=0.0))

    def centred_stats(self, X: np.ndarray, resp: np.ndarray, work: Any, centre: np.ndarray):
        """Like :meth:`block_stats`, about ``centre`` (K, D), the means the cache was
        prepared with: ``sum r``, ``sum r (x - c)`` and the second moments of ``x - c``.
        Exact when the cache was prepared with ``exact``; here, from the raw moments."""
        return self.recentre(*self.block_stats(X, resp, work), centre)

    @abc.abstractmethod
    def recentre(self, nk, s1, s2, centre):
        """Raw moments (the layout of :meth:`block_stats`) as moments about ``centre``."""

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
        self, X: np.ndarray, w: np.ndarray | None, cache: Any, beta: float = 1.0, centred=False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
        """The whole E-step of complete rows in one compiled pass, where the structure has one.

        Returns ``(counts, first moments, second moments, objective)`` as the sums of
        ``block_stats`` over responsibilities proportional to ``(w_k p_k(x))**beta``
        times the sample weights ``w``, with the objective
        ``sum_n w_n (1/beta) log sum_k (w_k p_k(x_n))**beta``; or ``None`` when the
        structure has no such kernel (then the caller uses ``log_density`` and
        ``block_stats`` block by block). ``centred``: the moments about the cache's
        means (as :meth:`centred_stats`), accumulated from residuals.
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
        """M-step: new means and covariances from the summed moments.

        ``means`` and ``prec_chol`` are the previous parameters (the ones the E-step
        used; None when there are none, e.g. at a start from responsibilities): an
        iterative (generalized, ``exact = False``) M-step warm-starts from them.
        """

    @abc.abstractmethod
    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        """Inverse covariances in the structure's layout, from ``precision_cholesky``."""

    @abc.abstractmethod
    def pack(self, covariances: np.ndarray) -> np.ndarray:
        """The covariances as an unconstrained float64 vector (for SQUAREM).

        Every finite vector of length ``n_packed(K, D)`` maps back (``unpack``) to valid
        covariances, unless a variance over- or underflows.
        """

    @abc.abstractmethod
    def n_packed(self, n_components: int, n_features: int) -> int:
        """Length of the vector ``pack`` returns."""

    @abc.abstractmethod
    def unpack(self, vec: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        """Inverse of ``pack``; raises ``ValueError`` when ``vec`` gives no valid covariances."""

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

    def covariances_from_precisions(
        self, precisions: Any, n_components: int, n_features: int
    ) -> np.ndarray:
        """Covariances in the structure's layout from precisions (inverse covariances) in
        the same layout; raises ``ValueError`` for a wrong shape or no inverse."""
        p = np.asarray(precisions, dtype=np.float64)
        expected = self.shape(n_components, n_features)
        if p.shape != expected:
            raise ValueError(f"'{self.name}' precisions must have shape {expected}, got {p.shape}")
        try:
            full = np.linalg.inv(self.to_full(p, n_components, n_features))
        except np.linalg.LinAlgError:
            raise ValueError(f"'{self.name}' precisions must be positive definite") from None
        return self.check(
            self.from_full(0.5 * (full + np.swapaxes(full, -1, -2))), n_components, n_features
        )

    def identity(self, n_components: int, n_features: int) -> np.ndarray:
        """Unit covariances of the right shape."""
        K, D = n_components, n_features
        return self.from_full(np.broadcast_to(np.eye(D), (K, D, D)))

    def from_full(self, full: np.ndarray) -> np.ndarray:
        """The structure's covariances nearest to (K, D, D) matrices (inverse of ``to_full``)."""
        raise NotImplementedError

    def decompose(self, full: np.ndarray):
        """Volume, shape and orientation of (K, D, D) covariances, ``Sigma_k = lambda_k
        D_k A_k D_k'`` (mclust's decomposition): here each component's own eigen-
        decomposition; structures with shared parts override it."""
        from emkit.distributions.covariance._eigen_steps import eigen_decomposition

        return eigen_decomposition(full)

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


def unpack_symmetric(packed: np.ndarray, D: int) -> np.ndarray:
    """(K, D(D+1)/2) packed upper triangles back to symmetric (K, D, D) matrices."""
    iu = np.triu_indices(D)
    out = np.empty((packed.shape[0], D, D))
    out[:, iu[0], iu[1]] = packed
    out[:, iu[1], iu[0]] = packed
    return out
