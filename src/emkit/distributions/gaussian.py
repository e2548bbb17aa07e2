"""Multivariate Gaussian components (full, diag, tied, spherical), missing values allowed.

:class:`Gaussian` is the Gaussian building block of :class:`emkit.Mixture` and of the
HMM emissions. It runs the same kernels as :class:`emkit.GaussianMixture` (the
covariance structures of :mod:`emkit.distributions.covariance`), not a second copy.

Parameters are ``GaussianParams(mean, covariance)`` with a leading axis of K
components: ``mean`` (K, D) and ``covariance`` (K, D, D) for full and tied (tied: K
equal matrices), (K, D) for diag, (K,) for spherical.

NaN entries are missing values, integrated out: ``log_prob`` gives the marginal
density of each row's observed coordinates, and ``suff_stats`` the expected
statistics given the observed coordinates, which depend on the current parameters
(pass them as ``params``). Rows are grouped by pattern of missing values.

Statistics are raw moments (``sum w``, ``sum w x``, ``sum w x x'`` in the structure's
layout): centre the data near the origin first when they sit far from it relative to
their spread (the estimators do).

Examples
--------
>>> import numpy as np
>>> X = np.array([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0], [12.0, 11.0]])
>>> resp = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
>>> g = Gaussian("diag", reg_covar=0.0)
>>> params = g.mstep(g.suff_stats(X, resp))
>>> params.mean
array([[ 1. ,  2. ],
       [11. , 10.5]])
>>> params.covariance
array([[1.  , 1.  ],
       [1.  , 0.25]])
>>> X_missing = np.array([[np.nan, 1.0]])
>>> float(np.round(g.log_prob(params, X_missing)[0, 0], 6))  # marginal of column 1
-1.418939
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from emkit._validation import check_real
from emkit.distributions.base import Distribution, check_weights
from emkit.distributions.covariance import CovarianceStructure, block_rows, get_structure
from emkit.distributions.missing import condition, missing_moments, missing_patterns

__all__ = ["Gaussian", "GaussianParams", "GaussianStats"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class GaussianParams(NamedTuple):
    mean: np.ndarray  # (K, D)
    covariance: np.ndarray  # (K, D, D) full/tied, (K, D) diag, (K,) spherical


class GaussianStats(NamedTuple):
    """``nk`` (K,), ``s1`` (K, D) = ``sum w x`` and ``s2`` the second moments in the
    covariance structure's layout (packed ``sum w x x'`` for full, pooled for tied,
    ``sum w x**2`` for diag, ``sum w |x|^2`` for spherical)."""

    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray


class Gaussian(Distribution):
    """K multivariate normal components over all D columns.

    Parameters
    ----------
    covariance_type : {"full", "diag", "tied", "spherical"}, default="full"
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance in the M-step.
    """

    name = "Gaussian"
    params_type = GaussianParams

    def __init__(self, covariance_type: str = "full", reg_covar: float = 1e-6):
        self.structure: CovarianceStructure = get_structure(covariance_type)
        self.covariance_type = covariance_type
        self.reg_covar = check_real(reg_covar, "reg_covar", 0.0)

    def __repr__(self) -> str:
        return f"Gaussian(covariance_type={self.covariance_type!r}, reg_covar={self.reg_covar!r})"

    # ---------------------------------------------------------------- validation
    def validate(self, X: Any, *, columns: Sequence[Any] | None = None) -> np.ndarray:
        """Check ``X``: 2-D, numeric, no infinite values; NaN marks a missing value."""
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.name}: X could not be read as numbers: {exc}") from None
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(
                f"{self.name}: X must be a non-empty 2-D array (n_samples, n_features), "
                f"got shape {arr.shape}"
            )
        bad = np.isinf(arr)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            label = j if columns is None else list(columns)[j]
            raise ValueError(
                f"{self.name}: column {label} has infinite values, e.g. in row {i} "
                "(NaN marks a missing value; infinity is not allowed)"
            )
        return arr

    # ---------------------------------------------------------------- conversions
    def storage(self, covariance: np.ndarray) -> np.ndarray:
        """Covariances in the structure's own layout (tied: the one shared matrix)."""
        cov = np.asarray(covariance, dtype=np.float64)
        return cov[0] if self.structure.shared else cov

    def from_storage(self, covariances: np.ndarray, n_components: int) -> np.ndarray:
        """Inverse of :meth:`storage`: a leading axis of K components (tied: K copies)."""
        cov = np.asarray(covariances, dtype=np.float64)
        if self.structure.shared:
            return np.broadcast_to(cov, (n_components, *cov.shape)).copy()
        return cov

    def _full(self, params: GaussianParams) -> np.ndarray:
        K, D = np.shape(params.mean)
        return self.structure.to_full(self.storage(params.covariance), K, D)

    # ---------------------------------------------------------------- the contract
    def log_prob(self, params: GaussianParams, X: np.ndarray) -> np.ndarray:
        """Log-density (N, K) of each row's observed values under each component."""
        means = np.asarray(params.mean, dtype=np.float64)
        K, D = means.shape
        st = self.structure
        missing = np.isnan(X)
        incomplete = missing.any(axis=1)
        out = np.empty((len(X), K))
        complete = np.flatnonzero(~incomplete) if incomplete.any() else slice(None)
        Xc = X[complete]
        if len(Xc):
            cov = self.storage(params.covariance)
            prec_chol = st.precision_cholesky(cov)
            offset = st.log_det_precision_cholesky(prec_chol, D) - 0.5 * D * _LOG_2PI
            cache = st.prepare(means, prec_chol, np.broadcast_to(offset, (K,)), np.float64)
            dens = np.empty((len(Xc), K))
            for sl in self._slices(len(Xc), K, D):
                dens[sl] = st.log_density(Xc[sl], cache)[0]
            out[complete] = dens
        if incomplete.any():
            rows_nan = np.flatnonzero(incomplete)
            full = self._full(params)
            for rows, miss in missing_patterns(missing[rows_nan]):
                idx = rows_nan[rows]
                out[idx] = condition(means, full, X[np.ix_(idx, ~miss)], miss).loglik.T
        return out

    def suff_stats(
        self, X: np.ndarray, weights: Any, params: GaussianParams | None = None
    ) -> GaussianStats:
        """Weighted moments; rows with NaN give expected moments under ``params``."""
        w = check_weights(weights, len(X))
        K, D = w.shape[1], X.shape[1]
        st = self.structure
        missing = np.isnan(X)
        incomplete = missing.any(axis=1)
        complete = np.flatnonzero(~incomplete) if incomplete.any() else slice(None)
        Xc, wc = X[complete], w[complete]
        # Moments of complete rows through the structure's own feature kernel: at zero
        # means and identity precisions its work arrays are the plain features of x.
        eye = st.precision_cholesky(st.identity(K, D))
        cache = st.prepare(np.zeros((K, D)), eye, np.zeros(K), np.float64)
        nk, s1, s2 = np.zeros(K), np.zeros((K, D)), None
        for sl in self._slices(len(Xc), K, D):
            _, work = st.log_density(Xc[sl], cache)
            b_nk, b_s1, b_s2 = st.block_stats(Xc[sl], wc[sl], work)
            nk += b_nk
            s1 += b_s1
            s2 = np.array(b_s2, dtype=np.float64) if s2 is None else s2 + b_s2
        if s2 is None:
            s2 = st.pack_second_moments(np.zeros((K, D, D)))
        if incomplete.any():
            if params is None:
                raise ValueError(
                    f"{self.name}: X has missing values (NaN); their expected statistics "
                    "depend on the parameters: pass params"
                )
            rows = np.flatnonzero(incomplete)
            m_nk, m_s1, m_s2 = missing_moments(
                X[rows], w[rows], np.asarray(params.mean, dtype=np.float64), self._full(params)
            )
            nk, s1, s2 = nk + m_nk, s1 + m_s1, s2 + st.pack_second_moments(m_s2)
        return GaussianStats(nk, s1, s2)

    def mstep(
        self, stats: GaussianStats, prior: Any = None, previous: Any = None
    ) -> GaussianParams:
        """Weighted means and covariances (plus ``reg_covar`` on the diagonal)."""
        if prior is not None:
            raise ValueError(f"{self.name}: conjugate priors are not supported; use reg_covar")
        nk = np.asarray(stats.nk, dtype=np.float64)
        empty = ~(nk > 0)
        if empty.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(empty).tolist()} have zero total weight, so "
                "their mean is undefined; re-seed them or decrease n_components"
            )
        K, D = np.shape(stats.s1)
        means, covs = self.structure.estimate(
            nk, np.asarray(stats.s1), np.asarray(stats.s2), np.zeros((K, D)), None, self.reg_covar
        )
        bad = ~self.structure.valid_components(covs, K)
        if bad.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(bad).tolist()} have a singular covariance; "
                "increase reg_covar, decrease n_components, or scale the data"
            )
        return GaussianParams(means, self.from_storage(covs, K))

    def sample(self, params_k: GaussianParams, n: int, rng: np.random.Generator) -> np.ndarray:
        mean = np.asarray(params_k.mean, dtype=np.float64)
        cov = np.asarray(params_k.covariance, dtype=np.float64)
        D = mean.shape[0]
        if cov.ndim < 2:  # spherical () or diag (D,)
            cov = np.broadcast_to(cov, (D,)) * np.eye(D)
        return rng.multivariate_normal(mean, cov, size=n, method="cholesky")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features + self.structure.n_parameters(n_components, n_features)

    def init_params(self, X: Any, resp: Any, rng: np.random.Generator | None = None) -> Any:
        """An M-step from responsibilities; missing values are filled by column means."""
        X = self.validate(X)
        if np.isnan(X).any():
            X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        return self.mstep(self.suff_stats(X, resp))

    def _slices(self, n: int, K: int, D: int) -> list[slice]:
        size = block_rows(self.structure.work_per_row(K, D))
        return [slice(s, s + size) for s in range(0, n, size)]
