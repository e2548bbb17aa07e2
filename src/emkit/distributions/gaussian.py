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

from emkit._logspace import log_normalize, posterior_in_place
from emkit._validation import check_real
from emkit.distributions.base import Distribution, add_blocks, check_weights
from emkit.distributions.covariance import CovarianceStructure, block_rows, get_structure
from emkit.distributions.missing import (
    MissingBatch,
    condition,
    expected_moments,
    missing_moments,
    pattern_groups,
    sort_by_pattern,
)
from emkit.distributions.reseed import split_components

__all__ = ["Gaussian", "GaussianKernel", "GaussianParams", "GaussianStats", "nearest_component"]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: conditioning (squared standard deviations of the means from the origin) above which
#: the kernel evaluates residuals about each component's mean: the expansion then loses
#: at most 1e5 * eps, about 2e-11, per log-density and per moment
EXACT_ABOVE = 1e5


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


class GaussianKernel:
    """K Gaussians with one covariance structure, evaluated on plain arrays.

    The one place that turns means, covariances (in the structure's layout, see
    :mod:`emkit.distributions.covariance`) and their precision Cholesky factors into
    log-densities, posteriors and weighted moments. The Gaussian mixture, the
    :class:`Gaussian` distribution (and through it :class:`emkit.Mixture`), the HMM's
    Gaussian emissions and anything that comes next call it; none has a density of its
    own.

    Rows are processed in blocks small enough to stay in cache; a block's log-densities
    come from one or two large matrix products (the structure's ``prepare`` /
    ``log_density``), and its moments from the same work arrays (``block_stats``).
    Moments are raw sums (``sum w``, ``sum w x``, ``sum w x x'`` in the structure's
    layout): callers centre their data near the origin (the estimators do), which keeps
    them free of cancellation.

    Parameters
    ----------
    covariance_type : str
        A registered covariance structure ("full", "diag", "tied", "spherical", ...).
    reg_covar : float
        Added to the diagonal of every covariance by :meth:`estimate`.
    block_rows : int, optional
        Rows per block (default: chosen from the structure's work per row).
    """

    def __init__(self, covariance_type: str = "full", reg_covar: float = 1e-6, block_rows=None):
        self.structure: CovarianceStructure = get_structure(covariance_type)
        self.reg_covar = reg_covar
        self.block_rows = block_rows

    def slices(self, n: int, K: int, D: int) -> list[slice]:
        """Row blocks of an E-step over ``n`` rows."""
        size = self.block_rows or block_rows(self.structure.work_per_row(K, D))
        return [slice(s, s + size) for s in range(0, n, size)]

    def prepare(self, means, prec_chol, log_weights=None, dtype=np.float64):
        """Per-E-step constants: ``log_weights`` (K,) (or 0) plus the normalising constants.

        Returns ``(cache, exact)``. Where the means sit far from the origin relative to
        the spread of their components (the structure's ``conditioning`` above
        :data:`EXACT_ABOVE`: tight clusters far apart, map coordinates, timestamps),
        the densities and statistics come from residuals about each component's mean
        (``exact``); otherwise from the faster expansion, which loses at most
        ``eps * conditioning``. float32 data get float32 log-densities only where the
        expansion stays accurate to 1e-4 in float32.
        """
        means = np.asarray(means)
        K, D = means.shape
        st = self.structure
        offset = st.log_det_precision_cholesky(prec_chol, D) - 0.5 * D * _LOG_2PI
        offset = np.broadcast_to(offset, (K,)).astype(np.float64)
        if log_weights is not None:
            offset = offset + log_weights
        kappa = st.conditioning(means, prec_chol)
        exact = kappa > EXACT_ABOVE
        dtype = np.dtype(dtype)
        if dtype != np.float64 and kappa * np.finfo(np.float32).eps >= 1e-4:
            dtype = np.dtype(np.float64)
        elif dtype != np.float32:
            dtype = np.dtype(np.float64)
        return st.prepare(means, prec_chol, offset, dtype, exact=exact), exact

    def log_densities(self, means, prec_chol, X, log_weights=None, keep_work=False):
        """``log_weights_k + log N(x | mean_k, cov_k)`` (N, K) for complete rows ``X``.

        With ``keep_work`` also returns each block's work arrays, from which
        :meth:`moments` takes the statistics with one more product (None otherwise).
        """
        K, D = np.shape(means)
        st = self.structure
        cache, exact = self.prepare(means, prec_chol, log_weights, X.dtype)
        out = np.empty((len(X), K), dtype=X.dtype)
        works = Works(np.asarray(means, dtype=np.float64), exact) if keep_work else None
        for sl in self.slices(len(X), K, D):
            lp, work = st.log_density(X[sl], cache)
            out[sl] = lp
            if keep_work:
                works.append((sl, work))
        return out, works

    def moments(self, X, weights, works=None, centre=None) -> GaussianStats:
        """Weighted moments of complete rows ``X`` (weights (N, K)) about ``centre``.

        ``centre`` (K, D) is where each component's moments are taken (None: the
        origin, raw moments); ``works`` are the work arrays :meth:`log_densities` kept
        for the same rows, whose centre is the means it evaluated. Without them the
        moments are computed here, from residuals about ``centre``.
        """
        K, D = np.shape(weights)[1], X.shape[1]
        st = self.structure
        if works is None:
            centre = np.zeros((K, D)) if centre is None else np.asarray(centre, np.float64)
            eye = st.precision_cholesky(st.identity(K, D))
            cache = st.prepare(centre, eye, np.zeros(K), np.float64, exact=True)
            works = Works(centre, exact=True)
            works.extend((sl, st.log_density(X[sl], cache)[1]) for sl in self.slices(len(X), K, D))
        totals = None
        for sl, work in works:
            totals = add_blocks(totals, self._block(X[sl], weights[sl], work, works))
        if totals is None:
            return GaussianStats(
                np.zeros(K), np.zeros((K, D)), st.pack_second_moments(np.zeros((K, D, D)))
            )
        return GaussianStats(*self._finish(totals, works))

    def _block(self, X, resp, work, works: Works):
        """A block's moments: about the centre where the evaluation was exact, raw otherwise
        (recentred once, by :meth:`_finish`, where that loses nothing)."""
        if works.exact:
            return self.structure.centred_stats(X, resp, work, works.centre)
        return self.structure.block_stats(X, resp, work)

    def _finish(self, totals, works: Works):
        return totals if works.exact else self.structure.recentre(*totals, works.centre)

    def estep(self, means, prec_chol, log_weights, X, w=None, beta=1.0, hard=False):
        """Mixture E-step of complete rows: (statistics, objective).

        Responsibilities are proportional to ``(w_k p_k(x))**beta`` (``hard``: one-hot at
        the largest), times the sample weights ``w``; the objective is
        ``sum_n w_n (1/beta) log sum_k (w_k p_k(x_n))**beta`` (``hard``: the
        classification log-likelihood ``sum_n w_n max_k log w_k p_k(x_n)``).
        """
        K, D = np.shape(means)
        st = self.structure
        means = np.asarray(means, dtype=np.float64)
        cache, exact = self.prepare(means, prec_chol, log_weights, X.dtype)
        if not hard:
            fused = st.estep_stats(X, w, cache, beta, centred=exact)
            if fused is not None:
                stats = fused[:3] if exact else st.recentre(*fused[:3], means)
                return GaussianStats(*stats), fused[3]
        # compiled (numba): imported by the first E-step, not by the estimators' import
        from emkit.distributions.covariance._kernels import normalise_columns

        totals, value, about = None, 0.0, Works(means, exact)
        for sl in self.slices(len(X), K, D):
            resp, work = st.log_density(X[sl], cache)
            columns = resp.T  # the (K, B) product the structures compute
            if not hard and columns.dtype == np.float64 and columns.flags.c_contiguous:
                value += normalise_columns(columns, None if w is None else w[sl], beta)
                totals = add_blocks(totals, self._block(X[sl], resp, work, about))
                continue
            rows = posterior_in_place(resp, beta, hard)
            if w is not None:
                resp *= w[sl, None]
                value += float(np.dot(w[sl], rows))
            else:
                value += float(np.sum(rows, dtype=np.float64))
            totals = add_blocks(totals, self._block(X[sl], resp, work, about))
        if totals is None:
            return self.moments(X[:0], np.zeros((0, K))), 0.0
        return GaussianStats(*self._finish(totals, about)), value

    def conditioned(self, means, covariances, log_weights, X, groups):
        """For each ``(rows, miss)`` of ``groups``: the rows' observed values (float64), the
        components conditioned on them (:func:`~emkit.distributions.missing.condition`),
        and the (B, K) log joints ``log_weights + log p(x_o)``."""
        K, D = np.shape(means)
        means = np.asarray(means, dtype=np.float64)
        full = self.structure.to_full(np.asarray(covariances, dtype=np.float64), K, D)
        for rows, miss in groups:
            Xo = np.asarray(X[rows][:, ~miss], dtype=np.float64)
            cond = condition(means, full, Xo, miss)
            yield rows, miss, Xo, cond, cond.loglik.T + log_weights

    def estep_missing(self, means, covariances, log_weights, X, w, pattern, beta=1.0, hard=False):
        """Mixture E-step of rows with missing values sorted by ``pattern`` (float64).

        Posteriors come from the marginal densities of the observed values; the
        statistics are the expected moments given them, under each component.
        """
        K, D = np.shape(means)
        nk, s1, s2, value = np.zeros(K), np.zeros((K, D)), np.zeros((K, D, D)), 0.0
        starts = np.flatnonzero(np.diff(pattern)) + 1
        runs = zip(np.r_[0, starts], np.r_[starts, len(pattern)])
        groups = ((slice(a, b), np.isnan(X[a])) for a, b in runs if b > a)
        for rows, miss, Xo, cond, resp in self.conditioned(
            means, covariances, log_weights, X, groups
        ):
            objective = posterior_in_place(resp, beta, hard)
            if w is not None:
                resp *= w[rows, None]
                value += float(np.dot(w[rows], objective))
            else:
                value += float(objective.sum())
            b1, b2 = expected_moments(Xo, miss, resp, cond, centre=means)
            nk += resp.sum(axis=0)
            s1 += b1
            s2 += b2
        return GaussianStats(nk, s1, self.structure.pack_second_moments(s2)), value

    def log_joint(self, means, covariances, prec_chol, log_weights, X):
        """``log_weights_k + log N(x_o | mean_k, cov_k)`` (N, K) for any rows; NaN entries
        are integrated out (a row with nothing observed gets ``log_weights``)."""
        missing = np.isnan(X)
        incomplete = missing.any(axis=1)
        if not incomplete.any():
            return self.log_densities(means, prec_chol, X, log_weights)[0]
        out = np.empty((len(X), np.shape(means)[0]), dtype=X.dtype)
        groups = pattern_groups(missing, incomplete)
        lw = np.zeros(len(out[0])) if log_weights is None else log_weights
        for rows, _, _, _, joint in self.conditioned(means, covariances, lw, X, groups):
            out[rows] = joint
        complete = np.flatnonzero(~incomplete)
        if len(complete):
            out[complete] = self.log_densities(means, prec_chol, X[complete], log_weights)[0]
        return out

    def estimate(self, nk, s1, s2, means=None, prec_chol=None):
        """M-step of the structure: new means and covariances (``reg_covar`` added).

        The moments are about ``means``, the previous parameters (None: raw moments, about
        the origin), which an iterative M-step also warm-starts from, with ``prec_chol``.
        """
        shift, cov = self.structure.estimate(nk, s1, s2, means, prec_chol, self.reg_covar)
        return (shift if means is None else shift + means), cov

    def shift_moments(self, stats: GaussianStats, old, new) -> GaussianStats:
        """Moments about ``old`` means (K, D) re-expressed about ``new`` ones (exact algebra;
        accurate while the means move little, as between steps of online EM)."""
        nk = np.asarray(stats.nk, dtype=np.float64)
        delta = np.asarray(old, dtype=np.float64) - np.asarray(new, dtype=np.float64)
        return GaussianStats(*self.structure.recentre(nk, stats.s1, stats.s2, -delta))


class Works(list):
    """The per-block work arrays of one evaluation (``(rows, work)`` pairs) and the means
    (``centre``) it was evaluated at, about which :meth:`GaussianKernel.moments` takes
    the statistics."""

    def __init__(self, centre: np.ndarray, exact: bool = False):
        super().__init__()
        self.centre = centre
        self.exact = exact  # residuals were evaluated: moments straight about the centre


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
        # an iterative covariance M-step (mclust's VEI, EVE, ...) is a generalized one
        self.generalized = not self.structure.exact
        self.reg_covar = check_real(reg_covar, "reg_covar", 0.0)
        self.kernel = GaussianKernel(covariance_type, self.reg_covar)

    def __repr__(self) -> str:
        return f"Gaussian(covariance_type={self.covariance_type!r}, reg_covar={self.reg_covar!r})"

    #: NaN entries are integrated out by conditioning on the observed values
    integrates_missing_entries = True

    def check_params(self, params: GaussianParams, n_components: int | None = None) -> None:
        mean = np.asarray(params.mean, dtype=np.float64)
        if mean.ndim != 2 or (n_components is not None and len(mean) != n_components):
            raise ValueError(f"Gaussian mean must have shape (K, D), got {mean.shape}")
        if not np.all(np.isfinite(mean)):
            raise ValueError("Gaussian mean must be finite")
        self.structure.check(params.covariance, *mean.shape)  # shape, symmetric, PD

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
        cov = self.storage(params.covariance)
        prec_chol = (
            None if np.isnan(X).all(axis=1).all() else self.structure.precision_cholesky(cov)
        )
        return self.kernel.log_joint(means, cov, prec_chol, None, X)

    def suff_stats(
        self, X: np.ndarray, weights: Any, params: GaussianParams | None = None
    ) -> GaussianStats:
        """Weighted moments; rows with NaN give expected moments under ``params``.

        With ``params`` the moments are taken about their means (exact far from the
        origin), and :meth:`mstep` must then be given the same ``params`` as
        ``previous``; without, they are raw moments.
        """
        w = check_weights(weights, len(X))
        missing = np.isnan(X)
        incomplete = missing.any(axis=1)
        centre = None if params is None else np.asarray(params.mean, dtype=np.float64)
        if not incomplete.any():
            return self.kernel.moments(X, w, centre=centre)
        if params is None:
            raise ValueError(
                f"{self.name}: X has missing values (NaN); their expected statistics "
                "depend on the parameters: pass params"
            )
        complete = np.flatnonzero(~incomplete)
        nk, s1, s2 = self.kernel.moments(X[complete], w[complete], centre=centre)
        rows = np.flatnonzero(incomplete)
        m_nk, m_s1, m_s2 = missing_moments(X[rows], w[rows], centre, self._full(params), centre)
        return GaussianStats(nk + m_nk, s1 + m_s1, s2 + self.structure.pack_second_moments(m_s2))

    def mstep(
        self, stats: GaussianStats, prior: Any = None, previous: Any = None
    ) -> GaussianParams:
        """Weighted means and covariances (plus ``reg_covar`` on the diagonal).

        ``previous`` are the parameters the statistics were computed at (their moments
        are about its means), or None for raw moments.
        """
        if prior is not None:
            raise ValueError(f"{self.name}: conjugate priors are not supported; use reg_covar")
        nk = np.asarray(stats.nk, dtype=np.float64)
        empty = ~(nk > 0)
        if empty.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(empty).tolist()} have zero total weight, so "
                "their mean is undefined; re-seed them or decrease n_components"
            )
        K = np.shape(stats.s1)[0]
        centre = None if previous is None else np.asarray(previous.mean, dtype=np.float64)
        means, covs = self.kernel.estimate(nk, np.asarray(stats.s1), np.asarray(stats.s2), centre)
        bad = ~self.structure.valid_components(covs, K)
        if bad.any():
            raise ValueError(
                f"component(s) {np.flatnonzero(bad).tolist()} have a singular covariance; "
                "increase reg_covar, decrease n_components, or scale the data"
            )
        return GaussianParams(means, self.from_storage(covs, K))

    holdable_fields = ("mean", "covariance")

    @property
    def shares_parameters(self) -> bool:
        return self.structure.shared

    def held_stats(self, stats, previous, fields):
        """Hold the means: the statistics are moments about ``previous``'s means (as the
        E-step takes them), so with the first moments zeroed the M-step's covariances are
        ``sum r (x - m)(x - m)' / sum r`` about the held means ``m``, exactly and without
        cancellation however far they are from the origin. Held covariances need
        nothing: the means given any covariance are the weighted means."""
        stats = super().held_stats(stats, previous, fields)
        if stats is None or "mean" not in fields:
            return stats
        return stats._replace(s1=np.zeros_like(np.asarray(stats.s1, dtype=np.float64)))

    def sample(self, params_k: GaussianParams, n: int, rng: np.random.Generator) -> np.ndarray:
        mean = np.asarray(params_k.mean, dtype=np.float64)
        cov = np.asarray(params_k.covariance, dtype=np.float64)
        full = self.structure.to_full(cov if self.structure.shared else cov[None], 1, len(mean))
        return self.structure.sample(rng, mean, full[0], n)

    # ---------------------------------------------------------------- as a mixture component
    def init_features(self, X: np.ndarray) -> np.ndarray:
        """k-means++ starts on the data themselves (as scikit-learn), which the
        estimators have centred."""
        return X

    def _arrays(self, params: GaussianParams):
        """Means, covariances in the structure's layout and their precision Cholesky."""
        means = np.asarray(params.mean)
        cov = self.storage(params.covariance)
        return means, cov, self.structure.precision_cholesky(cov)

    def mixture_estep(self, params: GaussianParams, log_weights, batch, *, beta=1.0, hard=False):
        """A mixture's whole E-step through the compiled kernels: (nk, statistics, objective).

        ``batch`` is ``(X, sample weights or None)`` or a :class:`MissingBatch`, whose
        complete rows take the fast kernels and whose incomplete rows are conditioned
        once per pattern of missing values. See :meth:`GaussianKernel.estep`.
        """
        means, cov, prec_chol = self._arrays(params)
        kernel = self.kernel
        if not isinstance(batch, MissingBatch):
            X, w = batch[0], batch[1]
            stats, value = kernel.estep(means, prec_chol, log_weights, X, w, beta, hard)
            return stats.nk, stats, value
        X, w, pattern = sort_by_pattern(batch)
        n = int(np.searchsorted(pattern, 0))  # complete rows come first
        w_complete, w_missing = (None, None) if w is None else (w[:n], w[n:])
        stats, value = kernel.estep_missing(
            means, cov, log_weights, X[n:], w_missing, pattern[n:], beta, hard
        )
        if n:
            complete, c_value = kernel.estep(
                means, prec_chol, log_weights, X[:n], w_complete, beta, hard
            )
            stats = GaussianStats(*(a + b for a, b in zip(complete, stats)))
            value += c_value
        return stats.nk, stats, value

    def log_joint(self, params: GaussianParams, log_weights, X: np.ndarray) -> np.ndarray:
        """``log_weights_k + log N(x_o | mean_k, cov_k)`` (N, K); NaN integrated out."""
        means, cov, prec_chol = self._arrays(params)
        return self.kernel.log_joint(means, cov, prec_chol, log_weights, X)

    def impute(self, params: GaussianParams, log_weights, X: np.ndarray) -> np.ndarray:
        """``X`` with each NaN replaced by ``sum_k p(k | x_o) E[x_m | x_o, k]``."""
        out = np.array(X, copy=True)
        missing = np.isnan(X)
        groups = pattern_groups(missing, missing.any(axis=1))
        means, cov = np.asarray(params.mean), self.storage(params.covariance)
        for rows, miss, _, cond, joint in self.kernel.conditioned(
            means, cov, log_weights, X, groups
        ):
            log_normalize(joint)
            filled = out[rows]
            filled[:, miss] = np.einsum("bk,kbm->bm", joint, cond.mean_m)
            out[rows] = filled
        return out

    def estimate(self, stats: GaussianStats, prior: Any, previous: Any, skip: np.ndarray):
        """The M-step of every component not in ``skip`` (empty ones), without raising.

        Returns the parameters and the components that could not be estimated (in
        ``skip``, a singular covariance, or non-finite means); their entries are
        placeholders for :meth:`reseed` to replace.
        """
        if prior is not None:
            raise ValueError(f"{self.name}: conjugate priors are not supported; use reg_covar")
        nk = np.where(skip, 1.0, np.asarray(stats.nk, dtype=np.float64))
        K = len(nk)
        prev_means = prev_chol = None
        if previous is not None:
            prev_means, _, prev_chol = self._arrays(previous)
        means, covs = self.kernel.estimate(nk, stats.s1, stats.s2, prev_means, prev_chol)
        bad = skip | ~self.structure.valid_components(covs, K) | ~np.all(np.isfinite(means), axis=1)
        return GaussianParams(means, self.from_storage(covs, K)), bad

    def reseed(self, weights: np.ndarray, params: GaussianParams, bad: np.ndarray):
        """Re-seed each ``bad`` component by splitting the heaviest good one along its
        main axis (warns with :class:`~emkit.exceptions.DegenerateComponentWarning`)."""
        K = len(weights)
        covs = self.storage(params.covariance)
        st = self.structure
        if st.shared and not st.valid_components(covs, K).all():
            raise ValueError(
                "the shared covariance is singular; increase reg_covar or scale the data"
            )
        weights, means, covs, _ = split_components(
            weights, params.mean, covs, bad, st, self.reg_covar, "covariance"
        )
        return weights, GaussianParams(means, self.from_storage(covs, K))

    def shift_stats(self, stats: GaussianStats, old: GaussianParams, new: GaussianParams):
        """Moments taken about ``old`` means re-expressed about ``new`` ones (online EM)."""
        return self.kernel.shift_moments(stats, np.asarray(old.mean), np.asarray(new.mean))

    def pack(self, params: GaussianParams) -> np.ndarray:
        """Means and covariances as one unconstrained vector (the structure's ``pack``)."""
        means = np.asarray(params.mean, dtype=np.float64)
        return np.concatenate([means.ravel(), self.structure.pack(self.storage(params.covariance))])

    def unpack(self, vec: np.ndarray, like: GaussianParams) -> GaussianParams:
        """Inverse of :meth:`pack`; raises ``ValueError`` for invalid covariances."""
        K, D = np.shape(like.mean)
        n = K * D + self.structure.n_packed(K, D)
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (n,):
            raise ValueError(f"expected a vector of length {n}, got {vec.shape}")
        covs = self.structure.unpack(vec[K * D :], K, D)
        return GaussianParams(vec[: K * D].reshape(K, D).copy(), self.from_storage(covs, K))

    def perturb(
        self, params: GaussianParams, rng: np.random.Generator, scale: float = 0.05
    ) -> GaussianParams:
        """Means moved by ``scale`` standard deviations in random directions (annealing)."""
        means = np.asarray(params.mean)
        K, D = means.shape
        sd = np.sqrt(np.diagonal(self._full(params), axis1=1, axis2=2))
        return params._replace(mean=means + scale * sd * rng.standard_normal((K, D)))

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features + self.structure.n_parameters(n_components, n_features)

    def init_params(self, X: Any, resp: Any, rng: np.random.Generator | None = None) -> Any:
        """An M-step from responsibilities; missing values are filled by column means."""
        X = self.validate(X)
        if np.isnan(X).any():
            X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        return self.mstep(self.suff_stats(X, resp))


def nearest_component(X: np.ndarray, means: np.ndarray, precisions: np.ndarray) -> np.ndarray:
    """One-hot rows (ties shared) of the component nearest to each row of ``X`` in
    Mahalanobis distance: the limit of a Gaussian (or any elliptical) mixture's posterior
    as a point moves away.

    With ``u = x / s`` (``s`` a power of two near the row's magnitude, so nothing
    overflows) the distance is ``s^2 u'P u - 2 s u'P m + m'P m``; for a point whose
    densities underflow, the terms decide in that order: the quadratic one, then (on an
    exact tie, as with a shared precision) the linear one, then the constant.
    """
    scale = np.max(np.abs(X), axis=1)
    scale = np.exp2(np.ceil(np.log2(np.maximum(scale, np.finfo(np.float64).tiny))))
    u = X / scale[:, None]
    P = np.broadcast_to(precisions, (len(means), *precisions.shape[-2:]))
    terms = (
        np.einsum("nd,kde,ne->nk", u, P, u),
        -2.0 * np.einsum("nd,kde,ke->nk", u, P, means),
        np.broadcast_to(np.einsum("kd,kde,ke->k", means, P, means), (len(X), len(means))),
    )
    nearest = np.ones((len(X), len(means)), dtype=bool)
    for term in terms:
        masked = np.where(nearest, term, np.inf)
        nearest &= masked <= masked.min(axis=1, keepdims=True)
    return nearest / nearest.sum(axis=1, keepdims=True)
