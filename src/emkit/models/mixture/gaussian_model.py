"""Gaussian mixtures as pure EM functions: ``init_params``, ``estep``, ``mstep``.

Generative model::

    z_i ~ Categorical(weights)
    x_i | z_i = k ~ Normal(means[k], covariances[k])

The E-step works on blocks of rows small enough to stay in cache: one matrix product
gives every component's whitened residuals for the block, then log-sum-exp gives the
responsibilities and the block's moments are added to the statistics. The covariance
structure (full, diag, tied, spherical) is a strategy object from
:mod:`emkit.distributions.covariance`; nothing here branches on it.

Missing values (NaN) are integrated out: a row's log-density is the marginal density
of its observed coordinates, and its statistics are the expected moments given them
under each component (:mod:`emkit.distributions.missing`). Data with NaN come as a
:class:`MissingBatch` whose rows are sorted, complete rows first and then rows grouped
by pattern of missing values, so complete rows go through the same block kernels as
data without NaN and each pattern is conditioned once per E-step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from emkit._logspace import log_normalize, posterior_in_place
from emkit.distributions.covariance import CovarianceStructure, block_rows, get_structure
from emkit.distributions.covariance._kernels import normalise_columns
from emkit.distributions.missing import (
    MissingBatch,
    condition,
    expected_moments,
    nan_average,
    pattern_groups,
    sort_by_pattern,
)
from emkit.engine.protocol import Reseeded
from emkit.models.init import initial_responsibilities
from emkit.models.mixture.base import split_components

__all__ = [
    "GMMParams",
    "GMMStats",
    "GaussianMixtureModel",
]

_LOG_2PI = np.log(2.0 * np.pi)


class GMMParams(NamedTuple):
    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, D)
    covariances: np.ndarray  # shape set by the covariance structure
    precisions_cholesky: np.ndarray  # same shape as covariances


class GMMStats(NamedTuple):
    nk: np.ndarray  # (K,) summed responsibilities (times sample weights)
    s1: np.ndarray  # (K, D) raw first moments, sum r x
    s2: np.ndarray  # raw second moments in the structure's layout (see covariance.py)




def _arithmetic(params: GMMParams, structure: CovarianceStructure, dtype) -> np.dtype:
    """float32 where it is accurate enough, else float64.

    The log-densities come from an expansion whose cancellation costs about
    ``kappa = max_k (|mu_k|^2 + tr S_k) / min_k lambda_min(S_k)`` units of round-off
    (the data are centred at their mean). float32 data get float32 log-densities only
    while ``kappa * eps(float32) < 1e-4``; tight clusters far apart switch to float64.
    Statistics are accumulated in float64 in any case.
    """
    if np.dtype(dtype) != np.float32:
        return np.dtype(np.float64)
    K, D = params.means.shape
    full = structure.to_full(params.covariances, K, D)
    smallest = np.linalg.eigvalsh(full)[:, 0].min()
    spread = (
        np.einsum("kd,kd->k", params.means, params.means) + np.trace(full, axis1=1, axis2=2)
    ).max()
    kappa = spread / max(smallest, np.finfo(np.float64).tiny)
    return np.dtype(np.float32 if kappa * np.finfo(np.float32).eps < 1e-4 else np.float64)


def _add_moments(total, block):
    """Add a block's (counts, first, second moments) to the running float64 totals."""
    if total is None:
        return [np.array(b, dtype=np.float64) for b in block]
    for acc, b in zip(total, block):
        acc += b
    return total


class GaussianMixtureModel:
    """EM model of a Gaussian mixture; data batches are ``(X, sample_weight or None)``.

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "diag", "tied", "spherical"}
    reg_covar : float
        Added to the diagonal of every covariance in the M-step.
    init : str
        How ``init_params`` starts: "kmeans++", "kmeans", "random" or "random_from_data".
    """

    def __init__(
        self,
        n_components: int,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        init: str = "kmeans++",
        block_rows: int | None = None,
    ):
        self.n_components = n_components
        self.structure: CovarianceStructure = get_structure(covariance_type)
        self.reg_covar = reg_covar
        self.init = init
        self.block_rows = block_rows

    # ------------------------------------------------------------------ the three steps
    def init_params(self, data: Any, rng: np.random.Generator) -> GMMParams:
        """Starting parameters by ``init`` from ``(X, w)`` or a :class:`MissingBatch`.

        Initialisation needs complete values: every NaN is replaced by its column's
        (weighted) mean of the observed values, for the initialisation only.
        """
        X, w = data[0], data[1]
        missing = np.isnan(X)
        if missing.any():
            X = np.where(missing, nan_average(X, w).astype(X.dtype), X)
        resp = initial_responsibilities(self.init, X, w, self.n_components, rng)
        return self.params_from_responsibilities(X, w, resp)

    def estep(self, params: GMMParams, batch: Any) -> tuple[GMMStats, float]:
        return self.estep_variant(params, batch)

    def estep_variant(
        self, params: GMMParams, batch: Any, *, beta: float = 1.0, hard: bool = False
    ) -> tuple[GMMStats, float]:
        """E-step with exact (beta=1), tempered (beta < 1) or hard posteriors.

        Returns the statistics and the batch's objective: the log-likelihood, the
        tempered log-likelihood ``(1/beta) sum log sum_k (w_k p_k(x))^beta``, or the
        classification log-likelihood ``sum max_k log w_k p_k(x)``.
        """
        if not isinstance(batch, MissingBatch):
            return self._estep_complete(params, batch[0], batch[1], beta, hard)
        X, w, pattern = sort_by_pattern(batch)
        n = int(np.searchsorted(pattern, 0))  # complete rows come first
        w_complete, w_missing = (None, None) if w is None else (w[:n], w[n:])
        stats, value = self._estep_missing(params, X[n:], w_missing, pattern[n:], beta, hard)
        if n:
            complete, c_value = self._estep_complete(params, X[:n], w_complete, beta, hard)
            stats = GMMStats(*(a + b for a, b in zip(complete, stats)))
            value += c_value
        return stats, value

    def _estep_complete(self, params, X, w, beta, hard) -> tuple[GMMStats, float]:
        """E-step of rows without missing values: the structure's block kernels."""
        K, D = params.means.shape
        st = self.structure
        cache = self._prepare(params, X.dtype)
        if not hard:
            fused = st.estep_stats(X, w, cache, beta)
            if fused is not None:
                return GMMStats(*fused[:3]), fused[3]
        totals, value = None, 0.0
        for sl in self._slices(len(X), K, D):
            resp, work = st.log_density(X[sl], cache)
            columns = resp.T  # the (K, B) product the structures compute
            if not hard and columns.dtype == np.float64 and columns.flags.c_contiguous:
                value += normalise_columns(columns, None if w is None else w[sl], beta)
                totals = _add_moments(totals, st.block_stats(X[sl], resp, work))
                continue
            rows = posterior_in_place(resp, beta, hard)
            if w is not None:
                resp *= w[sl, None]
                value += float(np.dot(w[sl], rows))
            else:
                value += float(np.sum(rows, dtype=np.float64))
            totals = _add_moments(totals, st.block_stats(X[sl], resp, work))
        return GMMStats(*totals), value

    def _estep_missing(self, params, X, w, pattern, beta, hard) -> tuple[GMMStats, float]:
        """E-step of rows with missing values, sorted by ``pattern`` (float64 throughout).

        Posteriors come from the marginal densities of the observed values; the
        statistics are the expected moments given them, under each component.
        """
        K, D = params.means.shape
        nk, s1, s2, value = np.zeros(K), np.zeros((K, D)), np.zeros((K, D, D)), 0.0
        starts = np.flatnonzero(np.diff(pattern)) + 1
        runs = zip(np.r_[0, starts], np.r_[starts, len(pattern)])
        groups = ((slice(a, b), np.isnan(X[a])) for a, b in runs if b > a)
        for rows, miss, Xo, cond, resp in self._conditioned(params, X, groups):
            objective = posterior_in_place(resp, beta, hard)
            if w is not None:
                resp *= w[rows, None]
                value += float(np.dot(w[rows], objective))
            else:
                value += float(objective.sum())
            b1, b2 = expected_moments(Xo, miss, resp, cond)
            nk += resp.sum(axis=0)
            s1 += b1
            s2 += b2
        return GMMStats(nk, s1, self.structure.pack_second_moments(s2)), value

    def _conditioned(self, params: GMMParams, X: np.ndarray, groups):
        """For each ``(rows, miss)`` of ``groups``: the rows' observed values (float64), the
        components conditioned on them, and the (B, K) log joints of the observed values.
        """
        K, D = params.means.shape
        means = np.asarray(params.means, dtype=np.float64)
        full = self.structure.to_full(np.asarray(params.covariances, dtype=np.float64), K, D)
        with np.errstate(divide="ignore"):  # a zero weight gives log 0 = -inf: never chosen
            log_w = np.log(np.asarray(params.weights, dtype=np.float64))
        for rows, miss in groups:
            Xo = np.asarray(X[rows][:, ~miss], dtype=np.float64)
            cond = condition(means, full, Xo, miss)
            yield rows, miss, Xo, cond, cond.loglik.T + log_w

    def mstep(self, stats: GMMStats, params: GMMParams) -> GMMParams | Reseeded:
        nk = np.asarray(stats.nk, dtype=np.float64)
        total = nk.sum()
        if not total > 0:
            raise ValueError("the responsibilities sum to zero: every sample weight is zero")
        empty = nk <= total * 1e-12
        safe_nk = np.where(empty, 1.0, nk)
        means, covs = self.structure.estimate(
            safe_nk, stats.s1, stats.s2, params.means, params.precisions_cholesky, self.reg_covar
        )
        weights = nk / total
        bad = empty | ~self._component_ok(covs) | ~np.all(np.isfinite(means), axis=1)
        if not bad.any():
            return GMMParams(weights, means, covs, self.structure.precision_cholesky(covs))
        return Reseeded(self._reseed(weights, means, covs, bad))

    def perturb(
        self, params: GMMParams, rng: np.random.Generator, scale: float = 0.05
    ) -> GMMParams:
        """Means moved by ``scale`` standard deviations in random directions (annealing)."""
        K, D = params.means.shape
        sd = np.sqrt(
            np.diagonal(self.structure.to_full(params.covariances, K, D), axis1=1, axis2=2)
        )
        return params._replace(means=params.means + scale * sd * rng.standard_normal((K, D)))

    # ------------------------------------------------------------------ helpers
    def params_from_responsibilities(self, X, w, resp) -> GMMParams:
        """M-step from given responsibilities (used to start from labels or soft assignments)."""
        K, D = self.n_components, X.shape[1]
        r = resp if w is None else resp * w[:, None]
        nk = r.sum(axis=0)
        safe = np.where(nk > 0, nk, 1.0)
        centres = (r.T @ X) / safe[:, None]
        eye_prec = self._identity_precision(K, D)
        pseudo = GMMParams(np.full(K, 1.0 / K), centres, eye_prec, eye_prec)
        st = self.structure
        cache = st.prepare(centres, eye_prec, np.zeros(K), X.dtype)
        totals = None
        for sl in self._slices(len(X), K, D):
            _, work = st.log_density(X[sl], cache)
            totals = _add_moments(totals, st.block_stats(X[sl], r[sl], work))
        params = self.mstep(GMMStats(*totals), pseudo)
        if isinstance(params, Reseeded):
            params = params.params
        return params

    def _identity_precision(self, K, D):
        return self.structure.precision_cholesky(self.structure.identity(K, D))

    def _slices(self, n, K, D):
        size = self.block_rows or block_rows(self.structure.work_per_row(K, D))
        return [slice(s, s + size) for s in range(0, n, size)]

    def _prepare(self, params: GMMParams, dtype):
        D = params.means.shape[1]
        st = self.structure
        with np.errstate(divide="ignore"):  # a zero weight gives log 0 = -inf: never chosen
            offset = np.log(params.weights) + st.log_det_precision_cholesky(
                params.precisions_cholesky, D
            )
        dtype = _arithmetic(params, st, dtype)
        return st.prepare(
            params.means, params.precisions_cholesky, offset - 0.5 * D * _LOG_2PI, dtype
        )

    def weighted_log_prob(self, params: GMMParams, X: np.ndarray) -> np.ndarray:
        """log(weights_k) + log N(x_o | mean_k, cov_k), shape (N, K).

        ``x_o`` are a row's observed values: NaN marks a missing value, integrated
        out. A row with nothing observed gets ``log(weights_k)``.
        """
        K, D = params.means.shape
        out = np.empty((len(X), K), dtype=X.dtype)
        missing = np.isnan(X)
        incomplete = missing.any(axis=1)
        if incomplete.any():
            for rows, _, _, _, log_joint in self._conditioned(
                params, X, pattern_groups(missing, incomplete)
            ):
                out[rows] = log_joint
            complete = np.flatnonzero(~incomplete)
            if len(complete):
                out[complete] = self.weighted_log_prob(params, X[complete])
            return out
        cache = self._prepare(params, X.dtype)
        for sl in self._slices(len(X), K, D):
            out[sl] = self.structure.log_density(X[sl], cache)[0]
        return out

    def posterior(self, params: GMMParams, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Responsibilities (N, K) and log-likelihood per row (N,); NaN as in
        :meth:`weighted_log_prob`."""
        resp = self.weighted_log_prob(params, X)
        return resp, log_normalize(resp)

    def impute(self, params: GMMParams, X: np.ndarray) -> np.ndarray:
        """``X`` with each NaN replaced by its posterior mean given the row's observed values.

        That is ``sum_k p(k | x_o) E[x_m | x_o, k]``, the conditional means of the
        components weighted by their posterior probabilities given ``x_o``.
        """
        out = np.array(X, copy=True)
        missing = np.isnan(X)
        incomplete = missing.any(axis=1)
        groups = pattern_groups(missing, incomplete)
        for rows, miss, _, cond, log_joint in self._conditioned(params, X, groups):
            log_normalize(log_joint)
            filled = out[rows]
            filled[:, miss] = np.einsum("bk,kbm->bm", log_joint, cond.mean_m)
            out[rows] = filled
        return out

    def _component_ok(self, covs) -> np.ndarray:
        return self.structure.valid_components(covs, self.n_components)

    def _reseed(self, weights, means, covs, bad) -> GMMParams:
        """Re-seed each bad component by splitting the heaviest good one along its main axis."""
        st = self.structure
        if st.shared and not self._component_ok(covs).all():
            raise ValueError(
                "the shared covariance is singular; increase reg_covar or scale the data"
            )
        weights, means, covs, _ = split_components(
            weights, means, covs, bad, st, self.reg_covar, "covariance"
        )
        return GMMParams(weights, means, covs, st.precision_cholesky(covs))

    def pack(self, params: GMMParams) -> np.ndarray:
        """Parameters as one unconstrained float64 vector (for SQUAREM).

        The vector holds the centred log weights ``log w - mean(log w)``, the means,
        and the covariances without constraints: for full and tied covariances the
        log of the diagonal and the strictly-lower entries of each lower Cholesky
        factor, for diag and spherical the log variances. Every finite vector of the
        right length maps back to valid parameters, unless a weight underflows or a
        covariance overflows (see :meth:`unpack`).
        """
        log_w = np.log(np.asarray(params.weights, dtype=np.float64))
        cov = np.asarray(params.covariances, dtype=np.float64)
        if self.structure.name in ("full", "tied"):
            chol = np.linalg.cholesky(cov)
            D = chol.shape[-1]
            lower = np.tril_indices(D, -1)
            cov_part = np.concatenate(
                [
                    np.log(np.diagonal(chol, axis1=-2, axis2=-1)).reshape(-1),
                    chol[..., lower[0], lower[1]].reshape(-1),
                ]
            )
        else:
            cov_part = np.log(cov).ravel()
        return np.concatenate(
            [log_w - log_w.mean(), np.asarray(params.means, dtype=np.float64).ravel(), cov_part]
        )

    def unpack(self, vec: np.ndarray, like: GMMParams) -> GMMParams:
        """Inverse of :meth:`pack`; ``like`` gives the number of components and features.

        Raises ``ValueError`` when ``vec`` has the wrong length or does not give
        valid parameters (non-finite values, a weight or variance that under- or
        overflows, a covariance that is not positive definite in floating point).
        """
        K, D = np.shape(like.means)
        st = self.structure
        n_mats = {"full": K, "tied": 1}.get(st.name, 0)  # Cholesky factors in the vector
        n_cov = n_mats * D * (D + 1) // 2 if n_mats else int(np.prod(st.shape(K, D)))
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (K + K * D + n_cov,):
            raise ValueError(f"expected a vector of length {K + K * D + n_cov}, got {vec.shape}")
        if not np.all(np.isfinite(vec)):
            raise ValueError("the parameter vector has non-finite entries")
        logits, means, cov_part = vec[:K], vec[K : K + K * D], vec[K + K * D :]
        with np.errstate(over="ignore", under="ignore"):
            weights = np.exp(logits - logits.max())
            weights /= weights.sum()
            if n_mats:
                chol = np.zeros((n_mats, D, D))
                diag = np.arange(D)
                chol[:, diag, diag] = np.exp(cov_part[: n_mats * D]).reshape(n_mats, D)
                lower = np.tril_indices(D, -1)
                chol[:, lower[0], lower[1]] = cov_part[n_mats * D :].reshape(n_mats, -1)
                covs = (chol @ np.swapaxes(chol, 1, 2)).reshape(st.shape(K, D))
            else:
                covs = np.exp(cov_part).reshape(st.shape(K, D))
        if not (np.all(weights > 0) and np.all(np.isfinite(covs))):
            raise ValueError("the parameter vector gives a zero weight or an infinite covariance")
        try:
            prec_chol = st.precision_cholesky(covs)
        except np.linalg.LinAlgError as exc:
            raise ValueError(f"the covariances are not positive definite: {exc}") from None
        if not np.all(np.isfinite(prec_chol)):
            raise ValueError("the covariances are not positive definite")
        return GMMParams(weights, means.reshape(K, D).copy(), covs, prec_chol)



