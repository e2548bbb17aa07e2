"""Factor analysis and probabilistic PCA by EM, with values missing at random.

Generative model (Rubin & Thayer 1982; Tipping & Bishop 1999)::

    z_i ~ Normal(0, I_K)                      latent factors, K = n_components
    x_i | z_i ~ Normal(mean + W z_i, Psi)     W of shape (D, K), Psi = diag(psi)

so that ``x_i ~ Normal(mean, W W^T + Psi)``. Factor analysis lets every ``psi_d`` be
free (``noise="diag"``); probabilistic PCA ties them, ``Psi = sigma^2 I``
(``noise="isotropic"``). Entries of ``x_i`` may be missing (NaN), at random.

:class:`FactorAnalysisModel` is the pure EM model. The latent variables are the
factors ``z_i`` only; a missing ``x_id`` is integrated out exactly (its term simply
leaves the complete-data likelihood, as the noise is independent across
coordinates). The mean is estimated jointly with ``W`` through the augmented
loadings ``[W, mean]`` acting on ``[z; 1]``. For a row with observed coordinates
``o`` (rows are grouped by their pattern of missing values)::

    M         = I + W_o^T Psi_o^-1 W_o
    Cov[z|x_o] = M^-1,    E[z|x_o] = M^-1 W_o^T Psi_o^-1 (x_o - mean_o)

and, for each coordinate ``d``, the statistics are sums over the rows that observe
``d``: ``sum E[z~ z~^T]`` (conditional covariance included), ``sum x_d E[z~]``,
``sum x_d^2`` and the count. The M-step regresses each coordinate on the factors
(one ``(K+1)``-sized solve per coordinate) and pools the residual variances as the
noise structure says. The observed-data log-likelihood is that of
``Normal(mean_o, W_o W_o^T + Psi_o)``, by the matrix-determinant lemma and
``r^T C^-1 r = min_z |r - W z|^2_Psi + |z|^2``: a K-by-K Cholesky factor per pattern,
never a D-by-D one.

The estimator built on it is :class:`emkit.models.latent.factor_analysis.FactorAnalysis`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from emkit._validation import check_int
from emkit.distributions.missing import missing_patterns
from emkit.engine.fixed import check_names
from emkit.models.latent.mvn import MVNMissingModel

__all__ = [
    "INIT_METHODS",
    "NOISE",
    "FAParams",
    "FAStats",
    "FactorAnalysisModel",
    "Posterior",
    "posterior",
    "principal_axes",
]

_LOG_2PI = np.log(2.0 * np.pi)
INIT_METHODS = ("pca", "random")


class FAParams(NamedTuple):
    """Parameters of the factor model (``components`` is ``W^T``)."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (K, D), W^T
    noise_variance: np.ndarray  # (D,) diagonal of Psi


class FAStats(NamedTuple):
    """Expected sufficient statistics of a batch, per coordinate (additive over batches)."""

    n: np.ndarray  # (D,) summed weights of the rows observing each coordinate
    zz: np.ndarray  # (D, K+1, K+1) sum w E[z~ z~^T] over those rows, z~ = [z; 1]
    xz: np.ndarray  # (D, K+1) sum w x_d E[z~]
    xx: np.ndarray  # (D,) sum w x_d^2


class _NoiseStructure(NamedTuple):
    pool: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (residual sums, counts) -> psi
    n_parameters: Callable[[int], int]  # D -> number of free noise parameters


def _pool_isotropic(resid: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.full_like(resid, resid.sum() / n.sum())


#: Everything that differs between factor analysis and probabilistic PCA.
NOISE = {
    "diag": _NoiseStructure(lambda resid, n: resid / n, lambda D: D),
    "isotropic": _NoiseStructure(_pool_isotropic, lambda D: 1),
}


class _Groups(NamedTuple):
    """Rows grouped by their pattern of missing values."""

    order: np.ndarray  # (N,) row indices, pattern by pattern
    starts: np.ndarray  # (P,) where each pattern's rows start in ``order``
    label: np.ndarray  # (N,) pattern of each row
    observed: np.ndarray  # (P, D) observed coordinates of each pattern


def _groups(missing: np.ndarray) -> _Groups:
    N, D = missing.shape
    if N and not missing.any():  # complete data: one pattern, no sorting
        rows = np.arange(N)
        return _Groups(rows, np.zeros(1, dtype=np.intp), np.zeros(N, dtype=np.intp), ~missing[:1])
    label = np.empty(N, dtype=np.intp)
    blocks, masks = [], []
    for p, (rows, miss) in enumerate(missing_patterns(missing)):
        label[rows] = p
        blocks.append(rows)
        masks.append(~miss)
    sizes = np.array([len(b) for b in blocks], dtype=np.intp)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    order = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.intp)
    return _Groups(order, starts, label, np.array(masks, dtype=bool).reshape(-1, D))


class Posterior(NamedTuple):
    """The factors' posterior given each row's observed values (see :func:`posterior`)."""

    groups: _Groups
    mean: np.ndarray  # (N, K) E[z | x_o]
    cov: np.ndarray  # (P, K, K) Cov[z | x_o], one per pattern
    loglik: np.ndarray  # (N,) log Normal(x_o; mean_o, W_o W_o^T + Psi_o)


def posterior(params: FAParams, X: np.ndarray) -> Posterior:
    """Posterior of the factors of every row of ``X`` given its observed values.

    The K-by-K algebra is batched over missing patterns, the rest over rows.

    Parameters
    ----------
    params : FAParams
    X : ndarray of shape (n_samples, n_features)
        NaN marks a missing value.

    Returns
    -------
    Posterior
        ``mean`` (n_samples, K), ``cov`` one (K, K) per pattern, and ``loglik`` the
        marginal log-density of each row's observed values. A row with nothing observed
        gets the prior and a log-likelihood of 0.
    """
    W = np.asarray(params.components, dtype=np.float64).T
    mean = np.asarray(params.mean, dtype=np.float64)
    psi = np.asarray(params.noise_variance, dtype=np.float64)
    K = W.shape[1]
    missing = np.isnan(X)
    g = _groups(missing)
    # M_p = I + W_o^T Psi_o^-1 W_o for each pattern p, and its Cholesky factor.
    M = np.eye(K) + (W.T[None] * (g.observed / psi)[:, None, :]) @ W
    L = np.linalg.cholesky(M)
    L_inv = np.linalg.inv(L)
    cov = np.swapaxes(L_inv, 1, 2) @ L_inv
    cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    logdet += g.observed @ np.log(psi)
    R = np.where(missing, 0.0, X - mean)
    U = (R / psi) @ W
    # One pattern (complete data): one product instead of a gather of N covariances.
    Ez = U @ cov[0] if len(cov) == 1 else np.einsum("nkl,nl->nk", cov[g.label], U)
    E = R - (Ez @ W.T) * ~missing
    # r^T C^-1 r = |r - W E[z]|^2_Psi + |E[z]|^2: two sums of squares, no cancellation.
    quad = np.einsum("ij,ij->i", E / psi, E) + np.einsum("ij,ij->i", Ez, Ez)
    n_obs = g.observed.sum(axis=1)[g.label]
    loglik = -0.5 * (n_obs * _LOG_2PI + logdet[g.label] + quad)
    return Posterior(g, Ez, cov, loglik)


def principal_axes(W: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """The loadings rotated to their principal axes (the likelihood only sees ``W W^T``).

    Parameters
    ----------
    W : ndarray of shape (n_features, K)
    psi : ndarray of shape (n_features,)
        Noise variances.

    Returns
    -------
    ndarray of shape (n_features, K)
        ``W Q`` for the rotation ``Q`` that makes ``W^T Psi^-1 W`` diagonal and
        decreasing, the largest entry of each column positive.
    """
    _, vecs = np.linalg.eigh(W.T @ (W / psi[:, None]))
    W = W @ vecs[:, ::-1]
    pivot = W[np.abs(W).argmax(axis=0), np.arange(W.shape[1])]
    return W * np.where(pivot < 0, -1.0, 1.0)


# ---------------------------------------------------------------------- the pure model
def _held_regression(stats: FAStats, params: FAParams, held: frozenset, K: int) -> np.ndarray:
    """(D, K+1) ``[w_d, mean_d]`` maximising each coordinate's expected complete-data
    log-likelihood with the held mean and/or loadings at ``params``'s values."""
    D = stats.xz.shape[0]
    B = np.empty((D, K + 1))
    B[:, K] = params.mean if "mean" in held else 0.0
    B[:, :K] = np.asarray(params.components).T if "components" in held else 0.0
    zz, xz = stats.zz, stats.xz
    if "components" not in held:  # loadings given the mean: Szz w = s_xz - mean s_z
        rhs = xz[:, :K] - B[:, K, None] * zz[:, :K, K]
        B[:, :K] = np.linalg.solve(zz[:, :K, :K], rhs[..., None])[..., 0]
    elif "mean" not in held:  # the mean given the loadings
        B[:, K] = (xz[:, K] - np.einsum("dk,dk->d", B[:, :K], zz[:, :K, K])) / zz[:, K, K]
    return B


class FactorAnalysisModel:
    """EM for factor analysis / probabilistic PCA with missing values (pure functions).

    Parameters
    ----------
    n_components : int
        Number of factors ``K``.
    noise : {"diag", "isotropic"}, default "diag"
        Free noise variance per coordinate (factor analysis) or one shared
        (probabilistic PCA).
    init : {"pca", "random"}, default "pca"
        Starting point of :meth:`init_params`: principal axes of the pairwise-available
        covariance (deterministic), or random loadings drawn with ``rng``.
    min_noise : float or ndarray of shape (n_features,), default 0.0
        Lower bound of the noise variances (the M-step is the exact maximiser under
        this bound, so EM stays monotone).

    A batch is ``(X, sample_weight)``: ``X`` of shape (B, D) with NaN for missing
    values, ``sample_weight`` of shape (B,) or None. Rows with every value missing
    contribute nothing.
    """

    def __init__(
        self,
        n_components: int,
        noise: str = "diag",
        init: str = "pca",
        min_noise: float | np.ndarray = 0.0,
    ):
        if noise not in NOISE:
            raise ValueError(f"noise must be one of {tuple(NOISE)}, got {noise!r}")
        if init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS}, got {init!r}")
        self.n_components = check_int(n_components, "n_components", 1)
        self.noise = noise
        self.init = init
        self.min_noise = np.asarray(min_noise, dtype=np.float64)

    def init_params(self, data: Any, rng: np.random.Generator | None = None) -> FAParams:
        X, w = data
        X = np.asarray(X, dtype=np.float64)
        K, D = self.n_components, X.shape[1]
        if K > D:
            raise ValueError(f"n_components = {K} is larger than n_features = {D}")
        mvn = MVNMissingModel(init="pairwise").init_params((X, w))
        var = np.diag(mvn.covariance).copy()
        if self.init == "random":
            rng = np.random.default_rng(0) if rng is None else rng
            W = rng.standard_normal((D, K)) * np.sqrt(var / K)[:, None]
            psi = var
        else:
            vals, vecs = np.linalg.eigh(mvn.covariance)
            vals, vecs = vals[::-1], vecs[:, ::-1]
            # Tipping & Bishop's closed form for this covariance.
            sigma2 = vals[K:].mean() if K < D else 0.5 * vals[-1]
            W = vecs[:, :K] * np.sqrt(np.maximum(vals[:K] - sigma2, 0.0))
            # Pooled, these residual variances average to sigma2 (PPCA's closed form).
            psi = var - np.einsum("ij,ij->i", W, W)
        psi = NOISE[self.noise].pool(psi, np.ones(D))
        return FAParams(mvn.mean, np.ascontiguousarray(W.T), np.maximum(psi, self.min_noise))

    def estep(self, params: FAParams, batch: Any) -> tuple[FAStats, float]:
        X, w = batch
        X = np.asarray(X, dtype=np.float64)
        N, D = X.shape
        K = np.asarray(params.components).shape[0]
        weights = np.ones(N) if w is None else np.asarray(w, dtype=np.float64)
        if N == 0:
            zeros = FAStats(
                np.zeros(D), np.zeros((D, K + 1, K + 1)), np.zeros((D, K + 1)), np.zeros(D)
            )
            return zeros, 0.0
        post = posterior(params, X)
        g = post.groups
        observed = ~np.isnan(X)
        X0 = np.where(observed, X, 0.0)
        Zt = np.hstack([post.mean, np.ones((N, 1))])
        # sum w E[z~ z~^T] per pattern (conditional covariance included), then per
        # coordinate over the patterns that observe it.
        outer = (Zt * weights[:, None])[:, :, None] * Zt[:, None, :]
        S = np.add.reduceat(outer[g.order], g.starts, axis=0)
        S[:, :K, :K] += np.add.reduceat(weights[g.order], g.starts)[:, None, None] * post.cov
        zz = (g.observed.T @ S.reshape(len(S), -1)).reshape(D, K + 1, K + 1)
        Xw = X0 * weights[:, None]
        xz = Xw.T @ Zt
        xx = np.einsum("ij,ij->j", Xw, X0)
        n = weights @ observed
        loglik = float(weights @ post.loglik)
        return FAStats(n, zz, xz, xx), loglik

    #: parameters held fixed by :meth:`hold`
    _held: frozenset = frozenset()

    def hold(self, names) -> FactorAnalysisModel:
        """A copy whose M-step keeps any of ``mean``, ``components``, ``noise_variance``
        fixed (``emkit.em``'s ``fixed``). Each coordinate's regression on ``[z; 1]`` is
        solved for the free part of ``[w_d, mean_d]`` given the held part, and the noise
        variance is the expected residual about the result (under ``min_noise``): the
        exact M-step given the held parameters."""
        import copy

        held = copy.copy(self)
        held._held = check_names(names, FAParams._fields, type(self).__name__)
        return held

    def mstep(self, stats: FAStats, params: FAParams) -> FAParams:
        n = np.asarray(stats.n, dtype=np.float64)
        if not np.all(n > 0):
            cols = np.flatnonzero(~(n > 0)).tolist()
            raise ValueError(f"coordinate(s) {cols} have no observed value with positive weight")
        held = self._held if params is not None else frozenset()
        K = stats.zz.shape[1] - 1
        if held & {"mean", "components"}:
            B = _held_regression(stats, params, held, K)
            # expected residual sum of squares of x_d - B_d [z; 1] (centred data)
            quad = np.einsum("dk,dkl,dl->d", B, stats.zz, B)
            resid = np.maximum(stats.xx - 2.0 * np.einsum("dk,dk->d", B, stats.xz) + quad, 0.0)
        else:
            # Each coordinate regressed on [z; 1]: the augmented loadings [W, mean]. The
            # residual sums come from raw moments: the estimator centres the data first.
            B = np.linalg.solve(stats.zz, stats.xz[..., None])[..., 0]
            resid = np.maximum(stats.xx - np.einsum("dk,dk->d", B, stats.xz), 0.0)
        if "noise_variance" in held:
            psi = params.noise_variance
        else:
            psi = np.maximum(NOISE[self.noise].pool(resid, n), self.min_noise)
        mean = params.mean if "mean" in held else B[:, K].copy()
        W_T = params.components if "components" in held else np.ascontiguousarray(B[:, :K].T)
        return FAParams(mean, W_T, psi)

    # Unconstrained coordinates for SQUAREM: log noise variances keep them positive.
    def pack(self, params: FAParams) -> np.ndarray:
        return np.concatenate(
            [
                np.asarray(params.mean, dtype=np.float64),
                np.asarray(params.components, dtype=np.float64).ravel(),
                np.log(params.noise_variance),
            ]
        )

    def unpack(self, vec: np.ndarray, like: FAParams) -> FAParams:
        K, D = np.asarray(like.components).shape
        vec = np.asarray(vec, dtype=np.float64)
        return FAParams(
            vec[:D].copy(), vec[D : D + K * D].reshape(K, D).copy(), np.exp(vec[D + K * D :])
        )
