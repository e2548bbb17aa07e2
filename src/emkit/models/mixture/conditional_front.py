"""What the conditional mixture estimators share: :class:`emkit.MixtureOfRegressions` and
:class:`emkit.MixtureOfExperts` validate, centre, start and run the same way.

Exactness whatever the offset: the covariates are centred at their weighted means (and
a regression's response at its weighted mean) before the engine sees them, so the
intercepts are estimated near the data; the fitted intercepts are then expressed for
the original coordinates. The centre is kept (``x_offset_``, ``y_offset_``) so that
predictions are computed about it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import check_array, check_int, check_real, check_sample_weight
from emkit.models.estimator import EMEstimator

__all__ = ["ConditionalMixtureEstimator"]


def check_response(y: Any, n_samples: int) -> np.ndarray:
    """A finite float64 response of shape (n_samples,)."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must be numeric, got dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n_samples,):
        raise ValueError(f"y must have shape ({n_samples},) to match X, got {y.shape}")
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("Input y contains NaN or infinity.")
    return y


def r2_score(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None) -> float:
    """Coefficient of determination of ``pred`` for ``y`` (weighted by ``w``)."""
    w = np.ones(len(y)) if w is None else w
    ss_res = float(np.dot(w, (y - pred) ** 2))
    ss_tot = float(np.dot(w, (y - np.average(y, weights=w)) ** 2))
    if ss_tot > 0:
        return 1.0 - ss_res / ss_tot
    return 1.0 if ss_res == 0 else 0.0


def to_public(beta: np.ndarray, x_offset, y_offset, fit_intercept: bool):
    """``(intercept, coef)`` in the original coordinates from centred ``beta`` (..., q)."""
    if not fit_intercept:
        return np.zeros(beta.shape[:-1]), beta.copy()
    coef = beta[..., 1:].copy()
    return beta[..., 0] - coef @ x_offset + y_offset, coef


def to_internal(intercept, coef, x_offset, y_offset, fit_intercept: bool) -> np.ndarray:
    """Centred ``beta`` (..., q) from ``intercept`` and ``coef`` in original coordinates."""
    coef = np.asarray(coef, dtype=np.float64)
    if not fit_intercept:
        return coef.copy()
    first = np.asarray(intercept, dtype=np.float64) + coef @ x_offset - y_offset
    return np.concatenate([first[..., None], coef], axis=-1)


def check_start(values: Mapping, key: str, shape: tuple, positive: bool = False) -> np.ndarray:
    """``values[key]`` as a finite float array of ``shape`` (positive if asked)."""
    arr = np.asarray(values[key], dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"init {key} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
        raise ValueError(f"init {key} must be finite{' and positive' if positive else ''}")
    return arr


class ConditionalMixtureEstimator(EMEstimator):
    """Base of the conditional mixtures: fit body, likelihoods and criteria.

    A subclass says which model it fits (``_model``), how ``y`` is read
    (``_read_y``), and how the engine's centred parameters map to its fitted
    attributes and back (``_store``, ``_internal_params``, ``_start``).
    """

    _regression = True  # the response is centred (linear experts)

    # ------------------------------------------------------------------ fitting
    #: float fitted attributes checked by ``load``
    _float_attributes: tuple[str, ...] = ()

    def _read_y(self, y, n_samples: int, fitting: bool):
        """``(y as the engine reads it, what the model needs to know of it)``."""
        return check_response(y, n_samples), None

    def _check_common(self, n_samples: int, n_components: int) -> None:
        check_int(n_components, self._size_name, 1)
        check_real(self.tol, "tol", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_int(self.n_init, "n_init", 1)
        check_real(self.reg_noise, "reg_noise", 0.0)
        if not isinstance(self.init, str | Mapping):
            raise TypeError(f"init must be a string or a dict, got {type(self.init).__name__}")
        from emkit.models.init import INIT_METHODS

        if isinstance(self.init, str) and self.init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS} or a dict, got {self.init!r}")
        if n_components > n_samples:
            raise ValueError(
                f"Expected n_samples >= {self._size_name} but got {self._size_name} = "
                f"{n_components}, n_samples = {n_samples}"
            )

    def _design(self, X: np.ndarray, x_offset: np.ndarray) -> np.ndarray:
        """The design matrix: a column of ones (with an intercept), then ``X - x_offset``."""
        Xc = X - x_offset
        if not self.fit_intercept:
            return np.ascontiguousarray(Xc)
        return np.column_stack([np.ones(len(X)), Xc])

    def fit(self, X, y, sample_weight=None):
        """Estimate the parameters by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.
        y : array-like of shape (n_samples,)
            Response.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts a row twice.

        Returns
        -------
        self
        """
        X = check_array(X, min_samples=2, dtype=np.float64)
        y, extra = self._read_y(y, len(X), fitting=True)
        w = check_sample_weight(sample_weight, len(X))
        self._check_hyperparameters(len(X))
        if w is not None and np.count_nonzero(w) < self._n_components:
            raise ValueError(
                f"only {np.count_nonzero(w)} samples have positive weight, fewer than "
                f"{self._size_name} = {self._n_components}"
            )
        centre = self.fit_intercept
        x_offset = np.average(X, axis=0, weights=w) if centre else np.zeros(X.shape[1])
        y_offset = float(np.average(y, weights=w)) if centre and self._regression else 0.0
        A = self._design(X, x_offset)
        yc = y - y_offset if self._regression else y
        model = self._model(A, yc, w, extra)
        data = (A, yc, w)
        rng = np.random.default_rng(seed_sequence(self.random_state))
        init = None
        if isinstance(self.init, Mapping):
            init = self._start(model, data, rng, x_offset, y_offset, extra)
        n_obs = float(len(X) if w is None else w.sum())
        result = self._run_engine(model, data, init, n_obs)
        # Everything is computed; only now is the estimator changed.
        self.x_offset_, self.y_offset_ = x_offset, y_offset
        self.n_features_in_ = X.shape[1]
        self._store(result.params, extra)
        self.loglik_ = float(result.loglik)
        self._finish_fit(result)
        return self

    def _base_start(self, model, data, rng, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        """What an init dict does not give: the "kmeans++" start (zeros when it gives
        every key, so no start is computed in vain)."""
        if all(key in self.init for key in keys):
            return model.zero_params(data[0].shape[1])
        return model.init_params(data, rng)

    def _variance_floor(self, y, w) -> float:
        """``reg_noise`` times the weighted variance of the response (or times 1)."""
        var = float(np.average((y - np.average(y, weights=w)) ** 2, weights=w))
        return self.reg_noise * (var if var > 0 else 1.0)

    # ------------------------------------------------------------------ fitted values
    def _validated(self, X, y=None):
        """The design of ``X`` (about the fitted centre) and the read ``y``."""
        self._check_is_fitted()
        X = check_array(X, dtype=np.float64)
        self._check_n_features(X)
        A = self._design(X, self.x_offset_)
        if y is None:
            return A, None
        y, _ = self._read_y(y, len(X), fitting=False)
        return A, (y - self.y_offset_ if self._regression else y)

    def _fitted(self):
        """The model and its parameters, in the engine's centred coordinates."""
        return self._model(None, None, None, None), self._internal_params()

    def score_samples(self, X, y) -> np.ndarray:
        """Log-likelihood of each sample, log p(y_i | x_i), shape (n_samples,)."""
        A, yc = self._validated(X, y)
        model, params = self._fitted()
        return model.posterior(params, A, yc)[1]

    def predict_proba_components(self, X, y) -> np.ndarray:
        """Posterior probability of each component given ``x`` and ``y``, (n_samples, K)."""
        A, yc = self._validated(X, y)
        model, params = self._fitted()
        return model.posterior(params, A, yc)[0]

    def _n_parameters(self) -> int:
        q = self.n_features_in_ + int(self.fit_intercept)
        return self._model(None, None, None, None).n_parameters(q)

    def bic(self, X, y) -> float:
        """Bayesian information criterion on ``(X, y)`` (lower is better)."""
        ll = self.score_samples(X, y)
        return -2.0 * float(ll.sum()) + self._n_parameters() * np.log(len(ll))

    def aic(self, X, y) -> float:
        """Akaike information criterion on ``(X, y)`` (lower is better)."""
        return -2.0 * float(self.score_samples(X, y).sum()) + 2.0 * self._n_parameters()

    def _check_fitted_state(self) -> None:
        self._check_float_arrays(self._float_attributes)
        self._internal_params()  # shapes that fit together
