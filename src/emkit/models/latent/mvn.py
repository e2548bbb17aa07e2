"""A multivariate normal from data with values missing at random, by EM (the pure model).

Generative model (Little & Rubin 2002, ch. 11; Schafer 1997, the R package ``norm``)::

    x_i ~ Normal(mean, covariance),  i = 1..N
    some entries of x_i are not observed (NaN), missing at random

:class:`MVNMissingModel` is the pure EM model. Its E-step groups the rows by their
pattern of missing values, so the cost grows with the number of distinct patterns,
not of rows. For a pattern with observed block ``o`` and missing block ``m``::

    E[x_m | x_o]   = mean_m + S_mo S_oo^-1 (x_o - mean_o)
    Cov[x_m | x_o] = S_mm - S_mo S_oo^-1 S_om

and the expected statistics are ``sum w E[x]`` and ``sum w E[x x^T]`` (the conditional
covariance is added to the missing block of the latter: imputing the conditional
means alone would shrink the covariance). The observed-data log-likelihood is the sum
of the marginal normal log-densities of each row's observed values. The conditioning
itself is :func:`emkit.distributions.missing.condition` (every solve through a
Cholesky factor of ``S_oo``), here for one Gaussian.

The estimator built on it is :class:`emkit.models.latent.imputer.GaussianImputer`;
:class:`emkit.models.latent.factor_model.FactorAnalysisModel` starts from it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from emkit.distributions.missing import condition, missing_patterns
from emkit.engine.fixed import check_names

__all__ = [
    "INIT_METHODS",
    "MVNConditional",
    "MVNMissingModel",
    "MVNParams",
    "MVNStats",
    "check_covariance",
    "condition_mvn",
]

INIT_METHODS = ("observed", "pairwise")


class MVNParams(NamedTuple):
    """Parameters of the normal."""

    mean: np.ndarray  # (D,)
    covariance: np.ndarray  # (D, D)


class MVNStats(NamedTuple):
    """Expected sufficient statistics of a batch (additive over batches)."""

    n: np.ndarray  # () summed sample weights
    s1: np.ndarray  # (D,) sum w E[x]
    s2: np.ndarray  # (D, D) sum w E[x x^T]


class MVNConditional(NamedTuple):
    """One Gaussian conditioned on the observed values of rows sharing a missing pattern."""

    loglik: np.ndarray  # (B,) marginal log-density of each row's observed values
    mean_m: np.ndarray  # (B, |m|) conditional means of the missing values
    cov_m: np.ndarray  # (|m|, |m|) conditional covariance of the missing values


def condition_mvn(
    mean: np.ndarray, cov: np.ndarray, Xo: np.ndarray, miss: np.ndarray
) -> MVNConditional:
    """Condition ``Normal(mean, cov)`` on the observed block ``Xo`` (rows share ``miss``).

    :func:`emkit.distributions.missing.condition` with one component (K = 1).

    Parameters
    ----------
    mean : ndarray of shape (n_features,)
    cov : ndarray of shape (n_features, n_features)
    Xo : ndarray of shape (n_rows, n_observed)
        The observed values of rows whose missing mask is ``miss``.
    miss : ndarray of shape (n_features,), bool

    Returns
    -------
    MVNConditional
    """
    c = condition(mean[None], cov[None], Xo, miss)
    return MVNConditional(c.loglik[0], c.mean_m[0], c.cov_m[0])


def check_covariance(cov: Any, D: int, name: str) -> np.ndarray:
    """``cov`` as a symmetric positive definite (D, D) float64 array (symmetrised).

    Raises
    ------
    ValueError
        Naming ``name``: wrong shape, non-finite, not symmetric or not positive definite.
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (D, D):
        raise ValueError(f"{name} must have shape ({D}, {D}), got {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{name} must be finite")
    if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(cov).max())):
        raise ValueError(f"{name} must be symmetric")
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite") from None
    return 0.5 * (cov + cov.T)


# ---------------------------------------------------------------------- the pure model
class MVNMissingModel:
    """EM for a multivariate normal with values missing at random (pure functions).

    Parameters
    ----------
    reg_covar : float, default 0.0
        Added to the diagonal of the covariance after every M-step (and to the
        starting covariance). With 0 the M-step is exact EM.
    init : {"observed", "pairwise"}, default "observed"
        Starting point of :meth:`init_params`: the observed means and variances with
        zero correlations, or the pairwise-available covariance (each entry from the
        rows where both variables are observed) with its eigenvalues raised to make it
        positive definite.

    A batch is ``(X, sample_weight)``: ``X`` of shape (B, D) with NaN for missing
    values, ``sample_weight`` of shape (B,) or None. Rows with every value missing
    contribute nothing (no statistics, no likelihood).
    """

    def __init__(self, reg_covar: float = 0.0, init: str = "observed"):
        if init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS}, got {init!r}")
        self.reg_covar = float(reg_covar)
        self.init = init

    def init_params(self, data: Any, rng: np.random.Generator | None = None) -> MVNParams:
        X, w = data
        X = np.asarray(X, dtype=np.float64)
        obs = ~np.isnan(X)
        weights = np.ones(len(X)) if w is None else np.asarray(w, dtype=np.float64)
        W = obs * weights[:, None]
        count = W.sum(axis=0)
        if np.any(count <= 0):
            raise ValueError("every column needs at least one observed value with positive weight")
        X0 = np.where(obs, X, 0.0)
        mean = (W * X0).sum(axis=0) / count
        R = np.where(obs, X0 - mean, 0.0)
        var = (W * R * R).sum(axis=0) / count
        if self.init == "observed":
            cov = np.diag(var)
        else:
            # Each entry over the rows where both variables are observed (Schafer 1997).
            cross = (R * weights[:, None]).T @ R
            pair = W.T @ obs.astype(np.float64)
            cov = np.divide(cross, pair, out=np.zeros_like(cross), where=pair > 0)
            np.fill_diagonal(cov, var)
            vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
            floor = 1e-3 * max(float(var.max()), np.finfo(float).tiny)
            cov = (vecs * np.maximum(vals, floor)) @ vecs.T
        cov = 0.5 * (cov + cov.T)
        cov[np.diag_indices_from(cov)] += self.reg_covar
        return MVNParams(mean, cov)

    def estep(self, params: MVNParams, batch: Any) -> tuple[MVNStats, float]:
        X, w = batch
        X = np.asarray(X, dtype=np.float64)
        N, D = X.shape
        mean = np.asarray(params.mean, dtype=np.float64)
        cov = np.asarray(params.covariance, dtype=np.float64)
        weights = np.ones(N) if w is None else np.asarray(w, dtype=np.float64)
        n, loglik = 0.0, 0.0
        s1, s2 = np.zeros(D), np.zeros((D, D))
        for rows, miss in missing_patterns(np.isnan(X)):
            if miss.all():
                continue
            wr = weights[rows]
            c = condition_mvn(mean, cov, X[np.ix_(rows, ~miss)], miss)
            # Plain products rather than the K-component expected_moments: for one
            # component, its einsum (a path search per call) costs more than the products.
            filled = X[rows]
            filled[:, miss] = c.mean_m
            total = float(wr.sum())
            n += total
            loglik += float(wr @ c.loglik)
            s1 += wr @ filled
            s2 += (filled * wr[:, None]).T @ filled
            if miss.any():
                s2[np.ix_(miss, miss)] += total * c.cov_m
        return MVNStats(np.asarray(n), s1, s2), loglik

    #: parameters held fixed by :meth:`hold`
    _held: frozenset = frozenset()

    def hold(self, names) -> MVNMissingModel:
        """A copy whose M-step keeps ``mean`` and/or ``covariance`` fixed (``emkit.em``'s
        ``fixed``): given a held mean ``m`` the covariance is
        ``E[sum w (x - m)(x - m)'] / sum w``; given a held covariance the mean is the
        expected weighted mean; both exact."""
        import copy

        held = copy.copy(self)
        held._held = check_names(names, MVNParams._fields, type(self).__name__)
        return held

    def mstep(self, stats: MVNStats, params: MVNParams) -> MVNParams:
        n = float(stats.n)
        if not n > 0:
            raise ValueError("no observed values with positive weight")
        held = self._held if params is not None else frozenset()
        if "covariance" in held:
            mean = params.mean if "mean" in held else stats.s1 / n
            return MVNParams(mean, params.covariance)
        mean = stats.s1 / n
        cov = stats.s2 / n - np.outer(mean, mean)
        if "mean" in held:
            # about the held mean: + (mean - m)(mean - m)'; the data are centred, so the
            # terms are small and nothing cancels
            d = mean - np.asarray(params.mean, dtype=np.float64)
            cov += np.outer(d, d)
            mean = params.mean
        cov = 0.5 * (cov + cov.T)
        cov[np.diag_indices_from(cov)] += self.reg_covar
        return MVNParams(mean, cov)

    # Unconstrained coordinates for SQUAREM: the mean and the Cholesky factor of the
    # covariance with a log diagonal, so every extrapolated point is a valid covariance.
    def pack(self, params: MVNParams) -> np.ndarray:
        L = np.linalg.cholesky(params.covariance)
        D = L.shape[0]
        rows, cols = np.tril_indices(D)
        vals = L[rows, cols].copy()
        diag = rows == cols
        vals[diag] = np.log(vals[diag])
        return np.concatenate([np.asarray(params.mean, dtype=np.float64), vals])

    def unpack(self, vec: np.ndarray, like: MVNParams) -> MVNParams:
        D = np.asarray(like.mean).shape[0]
        vec = np.asarray(vec, dtype=np.float64)
        rows, cols = np.tril_indices(D)
        vals = vec[D:].copy()
        diag = rows == cols
        vals[diag] = np.exp(vals[diag])
        L = np.zeros((D, D))
        L[rows, cols] = vals
        return MVNParams(vec[:D].copy(), L @ L.T)
