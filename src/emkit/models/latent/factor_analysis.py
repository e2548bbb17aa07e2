"""Factor analysis and probabilistic PCA: the scikit-learn-style estimator.

:class:`FactorAnalysis` fits :class:`emkit.models.latent.factor_model.FactorAnalysisModel`
(the pure EM model, with its generative model and E-step written out) through the
engine, after centring the data at their observed means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import (
    check_array,
    check_gaussian_scale,
    check_init,
    check_int,
    check_real,
    check_sample_weight,
)
from emkit.models._sources import centred_rows, observed_mean, table_source
from emkit.models.estimator import EMEstimator
from emkit.models.latent.factor_model import (
    INIT_METHODS,
    NOISE,
    FactorAnalysisModel,
    FAParams,
    posterior,
    principal_axes,
)
from emkit.models.latent.imputer import _held_mean

__all__ = ["FactorAnalysis"]

#: Smallest noise variance, relative to each column's observed variance: it keeps
#: a Heywood case (a coordinate explained entirely by the factors) finite.
NOISE_FLOOR = 1e-12


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
    fixed : dict or collection of str, optional
        Any of ``"mean"``, ``"components"`` (loadings, (n_components, n_features)) and
        ``"noise_variance"`` held fixed: a dict of values (checked like ``init``'s) or
        the names (held at their starting values). The M-step solves each feature's
        regression on the factors for the free part given the held one (exact EM).
        Held loadings are reported as given (``components_`` is otherwise rotated to
        principal axes).
    executor, checkpoint, checkpoint_every
        Where the E-steps run (threads, a Dask cluster), and checkpoint / resume of
        the fit: as in :func:`emkit.em`.

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
    converged_, n_iter_, history_, n_features_in_
        The record every emkit estimator keeps of its fit (see
        :attr:`emkit.models.estimator.EMEstimator.FIT_RECORD`; ``history_`` holds the
        total observed-data log-likelihood after each EM step).

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
        *EMEstimator.FIT_RECORD,
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
        fixed: Any = None,
        executor: Any = None,
        checkpoint: Any = None,
        checkpoint_every: int = 1,
    ):
        self._set_hyperparameters(locals())

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
        if self.tol is not None:
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
        check_gaussian_scale(X, None)
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
        start.update(self._check_values(self.init, D, shift, "init"))
        return FAParams(**start)

    def _check_values(self, values, D: int, shift, what: str) -> dict[str, np.ndarray]:
        """Parameters given in ``init`` or ``fixed`` (any subset), checked, with the mean
        moved to the centred coordinates of the fit."""
        K = self.n_components
        shapes = {"mean": (D,), "components": (K, D), "noise_variance": (D,)}
        unknown = set(values) - set(shapes)
        if unknown:
            raise ValueError(
                f"{what} dict has unknown keys {sorted(unknown)}; use {', '.join(map(repr, shapes))}"
            )
        out = {}
        for key, shape in shapes.items():
            if key not in values:
                continue
            value = np.asarray(values[key], dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"{what} {key} must have shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{what} {key} must be finite")
            out[key] = value - shift if key == "mean" else value
        psi = out.get("noise_variance")
        if psi is not None and not np.all(psi > 0):
            raise ValueError(f"{what} noise_variance must be positive")
        if psi is not None and self.noise == "isotropic" and np.ptp(psi) > 0:
            raise ValueError(f"{what} noise_variance must have equal entries for noise='isotropic'")
        return out

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

        source = table_source(X, self.batch_size)
        if source is None:
            X, w = self._validate_training_data(X, sample_weight)
            # Centre at the observed means (the model is translation-equivariant): the raw
            # second moments of the E-step then suffer no cancellation.
            obs = ~np.isnan(X)
            weights = np.ones(len(X)) if w is None else w
            Wt = obs * weights[:, None]
            shift = observed_mean(X, w)
            var = (Wt * np.where(obs, X - shift, 0.0) ** 2).sum(axis=0) / Wt.sum(axis=0)
            Xc = X - shift
            data, n_obs = (Xc, w), weights.sum()
        else:  # out of core: streaming passes, a subsample for the start (see _sources)
            self._check_hyperparameters(source.n_features)
            shift, data, n_obs = centred_rows(source, sample_weight)
            var = source.column_variance(shift)
            (Xc, w), X = data.init_data(), np.empty((0, source.n_features))
        model = FactorAnalysisModel(
            self.n_components,
            self.noise,
            self.init if isinstance(self.init, str) else "pca",
            # pooled like the noise itself, so PPCA's floor is one number too
            NOISE[self.noise].pool(NOISE_FLOOR * var, np.ones_like(var)),
        )
        rng = np.random.default_rng(seed_sequence(self.random_state))
        init = self._starting_params(model, Xc, w, shift, rng)
        fixed = self.fixed
        if isinstance(fixed, Mapping):
            fixed = self._check_values(fixed, X.shape[1], shift, "fixed") or None
        elif fixed is not None:
            fixed = self._engine_fixed(fixed)
        result = self._run_engine(model, data, init, n_obs, fixed=fixed)
        # Everything is computed; only now is the estimator changed.
        p = result.params
        psi = np.asarray(p.noise_variance, dtype=np.float64).copy()
        held = () if fixed is None else set(fixed)
        W_T = p.components if "components" in held else principal_axes(p.components.T, psi).T
        self.components_ = np.ascontiguousarray(W_T)
        self.noise_variance_ = psi
        self.mean_ = _held_mean(self, X.shape[1], np.asarray(p.mean, dtype=np.float64) + shift)
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
        return posterior(self._params(), X).mean

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
        return posterior(self._params(), X).loglik

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
