"""What the conditional mixture estimators share: :class:`emkit.MixtureOfRegressions` and
:class:`emkit.MixtureOfExperts` validate, centre, start and run the same way.

Exactness whatever the offset: the covariates are centred at their weighted means (and
a regression's response at its weighted mean) before the engine sees them, so the
intercepts are estimated near the data; the fitted intercepts are then expressed for
the original coordinates. The centre is kept (``x_offset_``, ``y_offset_``) so that
predictions are computed about it too.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import (
    check_array,
    check_gaussian_scale,
    check_int,
    check_real,
    check_sample_weight,
)
from emkit.models.estimator import EMEstimator

__all__ = ["ConditionalMixtureEstimator"]


def column_response(y: Any, n_samples: int) -> np.ndarray:
    """``y`` as an array, a column (n_samples, 1) raveled with a warning (as scikit-learn)."""
    if y is None:
        raise ValueError("this estimator requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        try:  # scikit-learn's category when it is installed
            from sklearn.exceptions import DataConversionWarning
        except ImportError:  # pragma: no cover
            DataConversionWarning = UserWarning
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it is raveled",
            DataConversionWarning,
            stacklevel=3,
        )
        y = y[:, 0]
    if y.shape != (n_samples,):
        raise ValueError(f"y must have shape ({n_samples},) to match X, got {y.shape}")
    return y


def check_response(y: Any, n_samples: int) -> np.ndarray:
    """A finite float64 response of shape (n_samples,)."""
    y = column_response(y, n_samples)
    if y.dtype.kind == "O":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("Unknown label type: y must hold numbers") from None
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must be numeric, got dtype {y.dtype}")
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


def centred_intercept(intercept, coef, x_offset, y_offset) -> np.ndarray:
    """The intercept about the centre from the one in the original coordinates:
    ``intercept + coef . x_offset - y_offset`` (``coef`` (..., p))."""
    return np.asarray(intercept, dtype=np.float64) + np.asarray(coef) @ x_offset - y_offset


def original_intercept(intercept, coef, x_offset, y_offset) -> np.ndarray:
    """Inverse of :func:`centred_intercept`."""
    return np.asarray(intercept, dtype=np.float64) - np.asarray(coef) @ x_offset + y_offset


def check_start(
    values: Mapping, key: str, shape: tuple, positive: bool = False, what: str = "init"
) -> np.ndarray:
    """``values[key]`` as a finite float array of ``shape`` (positive if asked)."""
    try:
        arr = np.asarray(values[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} {key} must be numeric: {exc}") from None
    if arr.shape != shape:
        raise ValueError(f"{what} {key} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
        raise ValueError(f"{what} {key} must be finite{' and positive' if positive else ''}")
    return arr


class ConditionalMixtureEstimator(EMEstimator):
    """Base of the conditional mixtures: fit body, likelihoods and criteria.

    A subclass says which model it fits (``_model``), how ``y`` is read
    (``_read_y``), which parameters it has (``_keys``: the init-dict keys, its fitted
    attributes without the trailing ``_``, and the names ``fixed`` takes), how they
    are checked (``_check_values``) and how they map to the engine's centred parameters
    and back (``_to_internal``, ``_to_public``).

    ``fixed`` (an engine option): a collection of parameter names, held at their
    starting values, or a dict name -> value (checked like init values). Holding an
    intercept holds it in the original coordinates, so the data are then not centred.
    """

    _regression = True  # the response is centred (linear experts)

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        if self._estimator_type == "classifier":
            tags.classifier_tags = ClassifierTags()
        else:
            tags.regressor_tags = RegressorTags()
        return tags

    # ------------------------------------------------------------------ fitting
    #: float fitted attributes checked by ``load``
    _float_attributes: tuple[str, ...] = ()

    def _read_y(self, y, n_samples: int, fitting: bool):
        """``(y as the engine reads it, what the model needs to know of it)``."""
        return check_response(y, n_samples), None

    def _check_common(self, n_samples: int, n_components: int) -> None:
        check_int(n_components, self._size_name, 1)
        if self.tol is not None:  # None: exactly max_iter steps
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
        check_gaussian_scale(X, None)  # squared residuals must not overflow
        if self._regression:
            check_gaussian_scale(y[:, None], None)
        w = check_sample_weight(sample_weight, len(X))
        self._check_hyperparameters(len(X))
        if w is not None and np.count_nonzero(w) < self._n_components:
            raise ValueError(
                f"only {np.count_nonzero(w)} samples have positive weight, fewer than "
                f"{self._size_name} = {self._n_components}"
            )
        names, values = self._fixed_parts()
        # a held intercept is held in the original coordinates: nothing is centred then
        centre = self.fit_intercept and not any(n.endswith("intercept") for n in names)
        x_offset = np.average(X, axis=0, weights=w) if centre else np.zeros(X.shape[1])
        y_offset = float(np.average(y, weights=w)) if centre and self._regression else 0.0
        A = self._design(X, x_offset)
        yc = y - y_offset if self._regression else y
        model = self._model(A, yc, w, extra)
        data = (A, yc, w)
        rng = np.random.default_rng(seed_sequence(self.random_state))
        offsets = (x_offset, y_offset)
        init = None
        if isinstance(self.init, Mapping):
            init = self._start(model, data, rng, offsets, extra)
        fixed = None
        if values is not None:
            public = self._to_public(model.zero_params(A.shape[1]), *offsets)
            public.update(self._check_values(values, X.shape[1], extra, "fixed"))
            internal = self._to_internal(public, *offsets)
            fixed = {name: internal[name] for name in names}
        elif names:
            fixed = names
        n_obs = float(len(X) if w is None else w.sum())
        result = self._run_engine(model, data, init, n_obs, fixed=fixed)
        # Everything is computed; only now is the estimator changed.
        self.x_offset_, self.y_offset_ = x_offset, y_offset
        self.n_features_in_ = X.shape[1]
        if extra is not None:
            self.classes_ = extra
        for key, value in self._to_public(result.params, *offsets).items():
            setattr(self, key + "_", value)
        self.loglik_ = float(result.loglik)
        self._finish_fit(result)
        return self

    def _fixed_parts(self) -> tuple[tuple[str, ...], Mapping | None]:
        """``(names, values or None)`` of ``fixed``, the names checked."""
        fixed = getattr(self, "fixed", None)
        if fixed is None:
            return (), None
        if isinstance(fixed, str):
            names, values = (fixed,), None
        elif isinstance(fixed, Mapping):
            names, values = tuple(fixed), fixed
        else:
            names, values = tuple(fixed), None
        unknown = set(names) - set(self._keys())
        if unknown:
            raise ValueError(
                f"fixed names unknown parameters {sorted(unknown)}; use {self._keys()}"
            )
        return names, (values if values else None)

    def _start(self, model, data, rng, offsets, extra) -> dict[str, np.ndarray]:
        """The engine's starting parameters from the init dict; what it does not give
        comes from the "kmeans++" start (computed only then)."""
        keys = self._keys()
        unknown = set(self.init) - set(keys)
        if unknown:
            raise ValueError(f"init dict has unknown keys {sorted(unknown)}; use {keys}")
        n_features = data[0].shape[1] - int(self.fit_intercept)
        given = self._check_values(self.init, n_features, extra, "init")
        if all(key in given for key in keys):
            base = model.zero_params(data[0].shape[1])
        else:
            base = model.init_params(data, rng)
        public = self._to_public(base, *offsets)
        public.update(given)
        params = self._to_internal(public, *offsets)
        if "noise_variance" in given:  # the floor set by reg_noise applies to a start too
            params["noise_variance"] = np.maximum(
                given["noise_variance"], model.components.min_variance
            )
        return params

    def _internal_params(self) -> dict[str, np.ndarray]:
        """The fitted parameters in the engine's centred coordinates."""
        public = {key: getattr(self, key + "_") for key in self._keys()}
        return self._to_internal(public, self.x_offset_, self.y_offset_)

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
        """What ``load`` checks: float arrays, shapes that fit together, positive noise
        variances, probabilities that sum to 1 and the gate's reference row at 0."""
        from emkit._validation import check_probabilities

        self._check_float_arrays(self._float_attributes)
        self._internal_params()  # shapes that fit together
        if "noise_variance" in self._keys():
            var = np.asarray(self.noise_variance_)
            if not np.all(np.isfinite(var)) or np.any(var <= 0):
                raise ValueError("noise_variance_ must be positive and finite")
        if "weights" in self._keys():
            check_probabilities(self.weights_, np.shape(self.weights_), "weights_")
        if "gate_coef" in self._keys():
            if self.gate_intercept_[-1] != 0 or np.any(self.gate_coef_[-1] != 0):
                raise ValueError("the last expert's gate row (the reference) must be 0")
