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

from emkit._logspace import log_normalize
from emkit.distributions.covariance import CovarianceStructure
from emkit.distributions.gaussian import GaussianKernel
from emkit.distributions.missing import (
    MissingBatch,
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
        self.kernel = GaussianKernel(covariance_type, reg_covar, block_rows)
        self.structure: CovarianceStructure = self.kernel.structure
        self.reg_covar = reg_covar
        self.init = init

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
        kernel, log_w = self.kernel, _log_weights(params)
        if not isinstance(batch, MissingBatch):
            stats, value = kernel.estep(
                params.means, params.precisions_cholesky, log_w, batch[0], batch[1], beta, hard
            )
            return GMMStats(*stats), value
        X, w, pattern = sort_by_pattern(batch)
        n = int(np.searchsorted(pattern, 0))  # complete rows come first
        w_complete, w_missing = (None, None) if w is None else (w[:n], w[n:])
        stats, value = kernel.estep_missing(
            params.means, params.covariances, log_w, X[n:], w_missing, pattern[n:], beta, hard
        )
        if n:
            complete, c_value = kernel.estep(
                params.means, params.precisions_cholesky, log_w, X[:n], w_complete, beta, hard
            )
            stats = [a + b for a, b in zip(complete, stats)]
            value += c_value
        return GMMStats(*stats), value

    def mstep(self, stats: GMMStats, params: GMMParams) -> GMMParams | Reseeded:
        nk = np.asarray(stats.nk, dtype=np.float64)
        total = nk.sum()
        if not total > 0:
            raise ValueError("the responsibilities sum to zero: every sample weight is zero")
        empty = nk <= total * 1e-12
        safe_nk = np.where(empty, 1.0, nk)
        means, covs = self.kernel.estimate(
            safe_nk, stats.s1, stats.s2, params.means, params.precisions_cholesky
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
        eye_prec = self.structure.precision_cholesky(self.structure.identity(K, D))
        pseudo = GMMParams(np.full(K, 1.0 / K), centres, eye_prec, eye_prec)
        params = self.mstep(GMMStats(*self.kernel.moments(X, r)), pseudo)
        if isinstance(params, Reseeded):
            params = params.params
        return params

    def weighted_log_prob(self, params: GMMParams, X: np.ndarray) -> np.ndarray:
        """log(weights_k) + log N(x_o | mean_k, cov_k), shape (N, K).

        ``x_o`` are a row's observed values: NaN marks a missing value, integrated
        out. A row with nothing observed gets ``log(weights_k)``.
        """
        return self.kernel.log_joint(
            params.means, params.covariances, params.precisions_cholesky, _log_weights(params), X
        )

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
        conditioned = self.kernel.conditioned(
            params.means, params.covariances, _log_weights(params), X, groups
        )
        for rows, miss, _, cond, log_joint in conditioned:
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
        and the covariances in the structure's unconstrained parametrisation
        (:meth:`CovarianceStructure.pack`). Every finite vector of the right length maps
        back to valid parameters, unless a weight underflows or a covariance overflows
        (see :meth:`unpack`).
        """
        log_w = np.log(np.asarray(params.weights, dtype=np.float64))
        return np.concatenate(
            [
                log_w - log_w.mean(),
                np.asarray(params.means, dtype=np.float64).ravel(),
                self.structure.pack(params.covariances),
            ]
        )

    def unpack(self, vec: np.ndarray, like: GMMParams) -> GMMParams:
        """Inverse of :meth:`pack`; ``like`` gives the number of components and features.

        Raises ``ValueError`` when ``vec`` has the wrong length or does not give
        valid parameters (non-finite values, a weight or variance that under- or
        overflows, a covariance that is not positive definite in floating point).
        """
        K, D = np.shape(like.means)
        st = self.structure
        n = K + K * D + st.n_packed(K, D)
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (n,):
            raise ValueError(f"expected a vector of length {n}, got {vec.shape}")
        if not np.all(np.isfinite(vec)):
            raise ValueError("the parameter vector has non-finite entries")
        logits, means = vec[:K], vec[K : K + K * D]
        with np.errstate(over="ignore", under="ignore"):
            weights = np.exp(logits - logits.max())
            weights /= weights.sum()
        if not np.all(weights > 0):
            raise ValueError("the parameter vector gives a zero weight")
        covs = st.unpack(vec[K + K * D :], K, D)
        return GMMParams(weights, means.reshape(K, D).copy(), covs, st.precision_cholesky(covs))


def _log_weights(params: GMMParams) -> np.ndarray:
    with np.errstate(divide="ignore"):  # a zero weight gives log 0 = -inf: never chosen
        return np.log(np.asarray(params.weights, dtype=np.float64))
