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

:class:`FactorAnalysis` is the scikit-learn-style estimator built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import (
    check_array,
    check_init,
    check_int,
    check_real,
    check_sample_weight,
)
from emkit.distributions.missing import missing_patterns
from emkit.models.estimator import EMEstimator
from emkit.models.latent.imputer import MVNMissingModel

__all__ = ["FAParams", "FAStats", "FactorAnalysis", "FactorAnalysisModel"]

_LOG_2PI = np.log(2.0 * np.pi)
INIT_METHODS = ("pca", "random")
#: Smallest noise variance, relative to each column's observed variance: it keeps
#: a Heywood case (a coordinate explained entirely by the factors) finite.
NOISE_FLOOR = 1e-12


class FAParams(NamedTuple):
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (K, D), W^T
    noise_variance: np.ndarray  # (D,) diagonal of Psi


class FAStats(NamedTuple):
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


class _Posterior(NamedTuple):
    groups: _Groups
    mean: np.ndarray  # (N, K) E[z | x_o]
    cov: np.ndarray  # (P, K, K) Cov[z | x_o], one per pattern
    loglik: np.ndarray  # (N,) log Normal(x_o; mean_o, W_o W_o^T + Psi_o)


def _posterior(params: FAParams, X: np.ndarray) -> _Posterior:
    """Posterior of the factors of every row of ``X`` (NaN = missing) given its observed
    values. The K-by-K algebra is batched over patterns, the rest over rows; a row with
    nothing observed gets the prior and a log-likelihood of 0."""
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
    return _Posterior(g, Ez, cov, loglik)


def _principal_axes(W: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """``W Q`` for the rotation ``Q`` that makes ``W^T Psi^-1 W`` diagonal, decreasing,
    with the largest entry of each column positive (the likelihood only sees ``W W^T``)."""
    _, vecs = np.linalg.eigh(W.T @ (W / psi[:, None]))
    W = W @ vecs[:, ::-1]
    pivot = W[np.abs(W).argmax(axis=0), np.arange(W.shape[1])]
    return W * np.where(pivot < 0, -1.0, 1.0)


# ---------------------------------------------------------------------- the pure model
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
        post = _posterior(params, X)
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

    def mstep(self, stats: FAStats, params: FAParams) -> FAParams:
        n = np.asarray(stats.n, dtype=np.float64)
        if not np.all(n > 0):
            cols = np.flatnonzero(~(n > 0)).tolist()
            raise ValueError(f"coordinate(s) {cols} have no observed value with positive weight")
        # Each coordinate regressed on [z; 1]: the augmented loadings [W, mean]. The
        # residual sums come from raw moments: the estimator centres the data first.
        B = np.linalg.solve(stats.zz, stats.xz[..., None])[..., 0]
        resid = np.maximum(stats.xx - np.einsum("dk,dk->d", B, stats.xz), 0.0)
        psi = NOISE[self.noise].pool(resid, n)
        K = B.shape[1] - 1
        return FAParams(
            B[:, K].copy(), np.ascontiguousarray(B[:, :K].T), np.maximum(psi, self.min_noise)
        )

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


# ---------------------------------------------------------------------- the estimator
class FactorAnalysis(EMEstimator):
    """Factor analysis (or probabilistic PCA) fitted by EM, with missing values allowed.

    The model is ``x = mean + W z + e`` with ``z ~ Normal(0, I)`` and ``e ~ Normal(0,
    Psi)``: ``x ~ Normal(mean, W W^T + Psi)``. ``noise="diag"`` is factor analysis
    (Rubin & Thayer 1982), ``noise="isotropic"`` probabilistic PCA (Tipping & Bishop
    1999). NaN entries are missing at random and integrated out exactly; the mean is
    then estimated jointly with the loadings (with complete data it is the sample
    mean).

    Parameters
    ----------
    n_components : int, default 1
        Number of factors, at most ``n_features``.
    noise : {"diag", "isotropic"}, default "diag"
        One noise variance per feature, or one for all.
    tol : float, default 1e-6
        Stop when the log-likelihood per row rises by less than ``tol`` (a decrease
        never counts as convergence).
    max_iter : int, default 1000
        Maximum number of EM steps (SQUAREM cycles with ``accel="squarem"``).
    init : {"pca", "random"} or dict, default "pca"
        "pca": Tipping & Bishop's closed form for the pairwise-available covariance
        (the exact PPCA MLE for complete data; deterministic); "random": random
        loadings and the observed variances as noise (from ``random_state``); a dict
        with any of ``"mean"``, ``"components"``, ``"noise_variance"`` gives the
        starting parameters (the rest from "pca").
    n_init : int, default 1
        Restarts with independent seeds, the best kept (useful with ``init="random"``).
    accel : {None, "squarem"}, default None
        SQUAREM acceleration of the engine (Varadhan & Roland 2008).
    batch_size : int, optional
        E-step over chunks of this many rows (same result).
    random_state : None, int or numpy Generator
        Seeds ``init="random"``, the restarts and :meth:`sample`.
    progress : bool, default False
        Show a progress bar with the log-likelihood.
    verbose : int, default 0
        1 prints a summary of the fit, 2 every iteration.
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the log-likelihood ever drops (which exact EM never does).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Loadings ``W^T``, rotated so that ``W^T Psi^-1 W`` is diagonal and decreasing
        (the principal axes; for PPCA, orthogonal rows), the largest entry of each
        row positive. Only ``W W^T`` is identifiable.
    noise_variance_ : ndarray of shape (n_features,)
        Diagonal of ``Psi`` (all equal for ``noise="isotropic"``).
    mean_ : ndarray of shape (n_features,)
    loglik_ : float
        Total (weighted) observed-data log-likelihood of the training data.
    converged_ : bool
    n_iter_ : int
    history_ : ndarray of shape (n_iter_,)
        Total observed-data log-likelihood after each EM step.
    n_features_in_ : int

    Notes
    -----
    Noise variances are kept above ``1e-12`` times each feature's observed variance,
    so that a Heywood case (a feature the factors explain entirely) stays finite. An
    E-step costs a K-by-K Cholesky factorisation per distinct missing pattern and
    ``O(n_samples n_features K)`` products. Rows with nothing observed are rejected by
    ``fit``; elsewhere they get ``E[z] = 0`` and a log-likelihood of 0.

    References
    ----------
    D. B. Rubin and D. T. Thayer (1982). EM algorithms for ML factor analysis.
    Psychometrika 47(1), 69-76. M. E. Tipping and C. M. Bishop (1999). Probabilistic
    principal component analysis. JRSS B 61(3), 611-622.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import FactorAnalysis
    >>> rng = np.random.default_rng(0)
    >>> W = np.array([[1.0, 0.8, 0.6, 0.0], [0.0, 0.5, -0.5, 1.0]])
    >>> X = rng.normal(size=(400, 2)) @ W + 0.3 * rng.normal(size=(400, 4))
    >>> X[rng.random(X.shape) < 0.1] = np.nan
    >>> fa = FactorAnalysis(2, tol=1e-8).fit(X)
    >>> fa.components_.shape, fa.noise_variance_.shape
    ((2, 4), (4,))
    >>> bool(np.allclose(fa.get_covariance(), W.T @ W + 0.09 * np.eye(4), atol=0.2))
    True
    >>> fa.transform(X).shape
    (400, 2)
    """

    _fitted_attributes = (
        "components_",
        "noise_variance_",
        "mean_",
        "converged_",
        "n_iter_",
        "history_",
        "loglik_",
        "n_features_in_",
    )
    _extra_attributes = ("fit_time_",)
    _estimator_type = None
    _allow_nan = True

    def __init__(
        self,
        n_components: int = 1,
        *,
        noise: str = "diag",
        tol: float = 1e-6,
        max_iter: int = 1000,
        init: str | Mapping[str, Any] = "pca",
        n_init: int = 1,
        accel: str | None = None,
        batch_size: int | None = None,
        random_state: Any = None,
        progress: bool = False,
        verbose: int = 0,
        check_monotone: str = "warn",
    ):
        self.n_components = n_components
        self.noise = noise
        self.tol = tol
        self.max_iter = max_iter
        self.init = init
        self.n_init = n_init
        self.accel = accel
        self.batch_size = batch_size
        self.random_state = random_state
        self.progress = progress
        self.verbose = verbose
        self.check_monotone = check_monotone

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags()
        return tags

    # ------------------------------------------------------------------ fitting
    def _check_hyperparameters(self, n_features: int) -> None:
        K = check_int(self.n_components, "n_components", 1)
        if K > n_features:
            raise ValueError(
                f"n_components = {K} is larger than n_features = {n_features}; "
                "use at most one factor per feature"
            )
        if self.noise not in NOISE:
            raise ValueError(f"noise must be one of {tuple(NOISE)}, got {self.noise!r}")
        check_real(self.tol, "tol", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_int(self.n_init, "n_init", 1)
        check_int(self.verbose, "verbose", 0)
        check_init(self.init, INIT_METHODS)

    def _n_parameters(self, D: int) -> int:
        """Free parameters: mean, loadings up to rotation, noise."""
        K = self.n_components
        return D + D * K - K * (K - 1) // 2 + NOISE[self.noise].n_parameters(D)

    def _validate_training_data(self, X, sample_weight) -> tuple[np.ndarray, np.ndarray | None]:
        X = check_array(X, allow_nan=True, min_samples=2, dtype=np.float64)
        w = check_sample_weight(sample_weight, len(X))
        self._check_hyperparameters(X.shape[1])
        missing = np.isnan(X)
        empty = np.flatnonzero(missing.all(axis=1))
        if empty.size:
            shown = ", ".join(map(str, empty[:10])) + (", ..." if empty.size > 10 else "")
            raise ValueError(
                f"{empty.size} row(s) of X have every value missing (rows [{shown}]); they "
                "carry no information: remove them"
            )
        positive = np.ones(len(X), dtype=bool) if w is None else w > 0
        observed = ~missing[positive]
        none = np.flatnonzero(observed.sum(axis=0) == 0)
        if none.size:
            raise ValueError(
                f"column(s) {none.tolist()} of X have every value missing (among rows with "
                "positive weight): they cannot be modelled; drop them"
            )
        n_params, n_values = self._n_parameters(X.shape[1]), int(observed.sum())
        if n_values < n_params:
            raise ValueError(
                f"X has {n_values} observed values, fewer than the {n_params} parameters of "
                f"a {self.n_components}-factor model of {X.shape[1]} features; provide more "
                "data or use fewer components"
            )
        with np.errstate(invalid="ignore"):
            Xp = X[positive]
            spread = np.nanmax(Xp, axis=0) - np.nanmin(Xp, axis=0)
        if np.any(spread == 0):
            raise ValueError(
                f"column(s) {np.flatnonzero(spread == 0).tolist()} of X are constant over "
                "their observed values: their noise variance would be 0; drop them"
            )
        return X, w

    def _starting_params(self, model, Xc, w, shift, rng) -> FAParams | None:
        if not isinstance(self.init, Mapping):
            return None
        K, D = self.n_components, Xc.shape[1]
        shapes = {"mean": (D,), "components": (K, D), "noise_variance": (D,)}
        unknown = set(self.init) - set(shapes)
        if unknown:
            raise ValueError(
                f"init dict has unknown keys {sorted(unknown)}; use {', '.join(map(repr, shapes))}"
            )
        start = model.init_params((Xc, w), rng)._asdict()
        for key, shape in shapes.items():
            if key not in self.init:
                continue
            value = np.asarray(self.init[key], dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"init {key} must have shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"init {key} must be finite")
            start[key] = value - shift if key == "mean" else value
        if not np.all(start["noise_variance"] > 0):
            raise ValueError("init noise_variance must be positive")
        if self.noise == "isotropic" and np.ptp(start["noise_variance"]) > 0:
            raise ValueError("init noise_variance must have equal entries for noise='isotropic'")
        return FAParams(**start)

    def fit(self, X, y=None, sample_weight=None) -> FactorAnalysis:
        """Fit the factor model by EM to ``X`` (NaN marks a missing value).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing value; infinite values are rejected, and so are rows
            with every value missing.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts a row twice.

        Returns
        -------
        self
        """

        X, w = self._validate_training_data(X, sample_weight)
        # Centre at the observed means (the model is translation-equivariant): the raw
        # second moments of the E-step then suffer no cancellation.
        obs = ~np.isnan(X)
        weights = np.ones(len(X)) if w is None else w
        Wt = obs * weights[:, None]
        X0 = np.where(obs, X, 0.0)
        shift = (Wt * X0).sum(axis=0) / Wt.sum(axis=0)
        var = (Wt * np.where(obs, X0 - shift, 0.0) ** 2).sum(axis=0) / Wt.sum(axis=0)
        Xc = X - shift
        model = FactorAnalysisModel(
            self.n_components,
            self.noise,
            self.init if isinstance(self.init, str) else "pca",
            # pooled like the noise itself, so PPCA's floor is one number too
            NOISE[self.noise].pool(NOISE_FLOOR * var, np.ones_like(var)),
        )
        rng = np.random.default_rng(seed_sequence(self.random_state))
        init = self._starting_params(model, Xc, w, shift, rng)
        result = self._run_engine(model, (Xc, w), init, weights.sum(), accel=self.accel)
        # Everything is computed; only now is the estimator changed.
        p = result.params
        psi = np.asarray(p.noise_variance, dtype=np.float64).copy()
        self.components_ = np.ascontiguousarray(_principal_axes(p.components.T, psi).T)
        self.noise_variance_ = psi
        self.mean_ = np.asarray(p.mean, dtype=np.float64) + shift
        self.loglik_ = float(result.loglik)
        self.n_features_in_ = X.shape[1]
        self._finish_fit(result)
        return self

    def _describe(self) -> str:
        return f"K={self.n_components} {self.noise} "

    def _check_fitted_state(self) -> None:
        self._check_float_arrays(
            ("components_", "noise_variance_", "mean_", "history_"), finite=False
        )
        D = self.n_features_in_
        if not isinstance(D, int) or self.mean_.shape != (D,) or self.noise_variance_.shape != (D,):
            raise ValueError("mean_ or noise_variance_ does not match n_features_in_")
        if self.components_.ndim != 2 or self.components_.shape[1] != D:
            raise ValueError("components_ does not match n_features_in_")
        values = (self.components_, self.mean_, self.noise_variance_)
        if not all(np.all(np.isfinite(v)) for v in values):
            raise ValueError("the fitted parameters have non-finite values")
        if not np.all(self.noise_variance_ > 0):
            raise ValueError("noise_variance_ must be positive")

    # ------------------------------------------------------------------ using the fit
    def _validated(self, X) -> np.ndarray:
        self._check_is_fitted()
        X = check_array(X, allow_nan=True, dtype=np.float64)
        self._check_n_features(X)
        return X

    def _params(self) -> FAParams:
        return FAParams(self.mean_, self.components_, self.noise_variance_)

    def transform(self, X) -> np.ndarray:
        """Posterior mean of the factors, ``E[z | x_obs]``, given each row's observed values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing value.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Rows with nothing observed get the prior mean 0.
        """
        X = self._validated(X)
        return _posterior(self._params(), X).mean

    def fit_transform(self, X, y=None, sample_weight=None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X, y, sample_weight=sample_weight).transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns: ``factoranalysis0, factoranalysis1, ...``."""
        self._check_is_fitted()
        return np.asarray(
            [f"factoranalysis{i}" for i in range(self.components_.shape[0])], dtype=object
        )

    def score_samples(self, X) -> np.ndarray:
        """Observed-data log-likelihood of each row (the marginal density of its observed
        values; 0 for a row with nothing observed), shape (n_samples,)."""
        X = self._validated(X)
        return _posterior(self._params(), X).loglik

    def score(self, X, y=None) -> float:
        """Mean observed-data log-likelihood per row (as scikit-learn)."""
        return float(np.mean(self.score_samples(X)))

    def get_covariance(self) -> np.ndarray:
        """Model covariance ``W W^T + Psi``, shape (n_features, n_features)."""
        self._check_is_fitted()
        cov = self.components_.T @ self.components_
        cov[np.diag_indices_from(cov)] += self.noise_variance_
        return cov

    def get_precision(self) -> np.ndarray:
        """Inverse of :meth:`get_covariance`, by the Woodbury identity."""
        self._check_is_fitted()
        P = self.components_ / self.noise_variance_  # W^T Psi^-1
        M = np.eye(len(P)) + P @ self.components_.T
        prec = np.diag(1.0 / self.noise_variance_) - P.T @ np.linalg.solve(M, P)
        return 0.5 * (prec + prec.T)

    def sample(self, n_samples: int = 1, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted model.

        Parameters
        ----------
        n_samples : int, default 1
        random_state : None, int or numpy Generator, optional
            Seed of the draws (default: the estimator's ``random_state``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        Z : ndarray of shape (n_samples, n_components)
            The factors each sample was drawn from.
        """
        self._check_is_fitted()
        n_samples = check_int(n_samples, "n_samples", 1)
        seed = self.random_state if random_state is None else random_state
        rng = np.random.default_rng(seed_sequence(seed))
        Z = rng.standard_normal((n_samples, self.components_.shape[0]))
        noise = rng.standard_normal((n_samples, self.mean_.size)) * np.sqrt(self.noise_variance_)
        return self.mean_ + Z @ self.components_ + noise, Z
