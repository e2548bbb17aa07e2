"""``GaussianMixture`` with scikit-learn's parameters and attributes, on emkit's engine.

A drop-in for ``sklearn.mixture.GaussianMixture``: change the import line and keep the
code. The constructor has scikit-learn's signature and defaults, parameters are
validated by scikit-learn's own constraints (so bad values raise the same exceptions),
and the fitted attributes have its names, shapes and dtypes. Underneath it is
:class:`emkit.GaussianMixture`: the engine runs the EM steps with emkit's kernels.

Importing this module imports scikit-learn; ``import emkit`` does not import it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.mixture import GaussianMixture as _SklearnGaussianMixture
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import validate_data

from emkit.distributions.covariance import get_structure
from emkit.engine.protocol import unwrap_reseeded
from emkit.models.estimator import _print_iteration
from emkit.models.mixture.gaussian import GaussianMixture as _EmkitGaussianMixture
from emkit.models.mixture.gaussian_model import GaussianMixtureModel

__all__ = ["GaussianMixture"]

#: scikit-learn's ``init_params`` spellings and emkit's names for the same methods
_INIT_METHODS = {
    "kmeans": "kmeans",
    "k-means++": "kmeans++",
    "random": "random",
    "random_from_data": "random_from_data",
}


class _Absent:
    """A method of emkit's estimator that scikit-learn's has not: ``hasattr`` is False."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        raise AttributeError(f"scikit-learn's GaussianMixture has no {self.name!r}")


class GaussianMixture(_EmkitGaussianMixture, BaseEstimator):
    """Gaussian mixture fitted by EM, with scikit-learn's interface.

    A ``sklearn.base.BaseEstimator`` too (its parameter validation and HTML display),
    as scikit-learn's own class is.

    The parameters, their defaults and the fitted attributes are those of
    ``sklearn.mixture.GaussianMixture``; the fit runs on :class:`emkit.GaussianMixture`.
    From the same start (``weights_init``, ``means_init`` and ``precisions_init`` all
    given) both libraries take the same EM steps and stop at the same iteration: each
    iteration evaluates the per-sample log-likelihood (``lower_bounds_``) and then takes
    an M-step, and the fit stops when that value changes by less than ``tol``. So
    ``lower_bound_`` is the log-likelihood per sample at the parameters *before* the
    last M-step, as in scikit-learn. With ``init_params`` the starting points come from
    emkit's initialisers and its random streams, so they differ from scikit-learn's.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Structure of the covariances.
    tol : float, default 1e-3
        Stop when the log-likelihood per sample changes by less than ``tol``.
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default 100
        Number of EM iterations at most (0 leaves the starting parameters).
    n_init : int, default 1
        Starts from independent seeds; the best final ``lower_bound_`` is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default "kmeans"
        How to start: k-means, k-means++ seeding, random responsibilities, or
        components centred on random samples (emkit's initialisers of those names).
    weights_init : array-like of shape (n_components,), optional
        Starting weights.
    means_init : array-like of shape (n_components, n_features), optional
        Starting means.
    precisions_init : array-like, optional
        Starting precisions (inverse covariances) in the covariance type's shape:
        (n_components, n_features, n_features) full, (n_features, n_features) tied,
        (n_components, n_features) diag, (n_components,) spherical.
    random_state : None, int or numpy RandomState
        Seed of the initialisation and of :meth:`sample`.
    warm_start : bool, default False
        Start the next ``fit`` from this fit's parameters (``n_init`` is then 1, and the
        first iteration's change is measured from this fit's ``lower_bound_``).
    verbose : int, default 0
        1 prints a summary of each fit; 2 also prints every ``verbose_interval``-th
        iteration.
    verbose_interval : int, default 10
        Iterations between two printed ones (``verbose=2``).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical.
    precisions_ : ndarray, same shape as ``covariances_``
    precisions_cholesky_ : ndarray, same shape as ``covariances_``
    converged_ : bool
    n_iter_ : int
        EM iterations (M-steps) taken.
    lower_bound_ : float
        Log-likelihood per sample before the last M-step (``-inf`` if ``max_iter=0``).
    lower_bounds_ : list of float
        The log-likelihood per sample evaluated at each iteration.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` has column names (a pandas DataFrame).
    history_ : ndarray of shape (n_iter_ - 1,)
        emkit's total log-likelihood after each M-step but the last.
    loglik_ : float
        ``lower_bound_`` times the number of samples (with ``max_iter=0``, the total
        log-likelihood at the start).

    Array attributes have the dtype of the training data (float32 or float64).

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.compat.sklearn import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (200, 2)), rng.normal(3, 1, (200, 2))])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]))
    array([-3.,  3.])
    >>> len(gm.lower_bounds_) == gm.n_iter_
    True
    """

    # scikit-learn's own declaration: the same checks, exceptions and messages
    _parameter_constraints: ClassVar[dict] = dict(_SklearnGaussianMixture._parameter_constraints)
    _extra_attributes = (*_EmkitGaussianMixture._extra_attributes, "lower_bounds_")
    _allow_nan = False

    # emkit's own extensions that scikit-learn's GaussianMixture does not offer
    partial_fit = _Absent()
    impute = _Absent()
    icl = _Absent()

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
    ):
        self._set_hyperparameters(locals())

    # ------------------------------------------------------------------ translation
    @property
    def init(self) -> str | dict[str, np.ndarray]:
        """emkit's ``init`` for these settings: the given starting parameters (weights,
        means, and covariances from ``precisions_init``) or the ``init_params`` method."""
        given = {}
        if self.weights_init is not None:
            given["weights"] = np.asarray(self.weights_init, dtype=np.float64)
        if self.means_init is not None:
            given["means"] = np.asarray(self.means_init, dtype=np.float64)
        if self.precisions_init is not None:
            given["covariances"] = _covariances_from_precisions(
                self.precisions_init, self.covariance_type
            )
        return given or _INIT_METHODS[self.init_params]

    def _given_start(self, n_features: int) -> dict[str, np.ndarray] | None:
        # the *_init arrays, checked and translated by ``init`` above
        start = self.init
        return start if isinstance(start, dict) else None

    def _model(self) -> GaussianMixtureModel:
        # Parameters that are not given start from the init_params method.
        return GaussianMixtureModel(
            self.n_components,
            self.covariance_type,
            self.reg_covar,
            init=_INIT_METHODS[self.init_params],
        )

    def _check_hyperparameters(self, n_samples: int) -> None:
        # The rest is checked in fit, with scikit-learn's constraints and messages.
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {n_samples}"
            )

    def _check_start(self, n_features: int) -> None:
        """The given starting arrays, checked as scikit-learn checks them (ValueError)."""
        K, D = self.n_components, n_features
        if self.weights_init is not None:
            w = _checked(self.weights_init, (K,), "weights")
            if np.any(w < 0.0) or np.any(w > 1.0):
                raise ValueError(
                    f"The parameter 'weights' should be in the range [0, 1], but got max "
                    f"value {w.max():.5f}, min value {w.min():.5f}"
                )
            atol = 1e-6 if w.dtype == np.float32 else 1e-8
            if not abs(1.0 - float(w.sum())) <= atol:
                raise ValueError(
                    f"The parameter 'weights' should be normalized, but got sum(weights) = "
                    f"{w.sum():.5f}"
                )
        if self.means_init is not None:
            _checked(self.means_init, (K, D), "means")
        if self.precisions_init is not None:
            st = get_structure(self.covariance_type)
            name = f"{self.covariance_type} precision"
            p = _checked(self.precisions_init, st.shape(K, D), name)
            full = st.to_full(np.asarray(p, dtype=np.float64), K, D)
            if not (
                np.allclose(full, np.swapaxes(full, -1, -2))
                and np.all(np.linalg.eigvalsh(full) > 0.0)
            ):
                raise ValueError(f"'{name}' should be symmetric, positive-definite")

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None) -> GaussianMixture:
        """Estimate the parameters by EM (``n_init`` starts, the best one kept).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Invalid parameters (scikit-learn's ``InvalidParameterError``, also a
            TypeError), a 1-D or too small ``X``, fewer samples than components, or
            starting arrays of the wrong shape or not positive definite.
        """
        self._validate_params()
        saved = {a: getattr(self, a) for a in _INPUT_ATTRIBUTES if hasattr(self, a)}
        try:
            X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
            self._check_hyperparameters(X.shape[0])
            self._check_start(X.shape[1])
            fitted = self._em(X)
        except BaseException:
            # A failed fit leaves the estimator as it was.
            for a in _INPUT_ATTRIBUTES:
                if a in saved:
                    setattr(self, a, saved[a])
                elif a in self.__dict__:
                    delattr(self, a)
            raise
        self._commit(*fitted)
        return self

    def _em(self, X: np.ndarray):
        """Run the engine and the last M-step; nothing on the estimator changes here."""
        n = X.shape[0]
        warm = self.warm_start and self.__sklearn_is_fitted__()
        previous = self.lower_bound_ if warm else -math.inf
        stopped_at_start = []

        def callback(info) -> bool:
            if self.verbose >= 2 and info.iteration % self.verbose_interval == 0:
                _print_iteration(info)
            # scikit-learn measures a warm start's first change from the last fit.
            if info.iteration == 0 and abs(info.loglik / n - previous) < self.tol:
                stopped_at_start.append(True)
                return True
            return False

        # scikit-learn's iteration i evaluates the parameters of step i - 1 and then
        # steps: it stops one M-step after emkit, whose check follows the step.
        result, shift, X, n_obs = self._run_em(
            X, None, max_iter=max(self.max_iter - 1, 0), callback=callback
        )
        params = result.params
        if self.max_iter > 0:
            model = self._model()
            data, _ = self._centred_data(X, None, False, shift)
            stats, _ = model.estep(params, data)
            params, _ = unwrap_reseeded(model.mstep(stats, params))
            values = np.concatenate([[result.initial_loglik], result.history]) / n_obs
            result = dataclasses.replace(
                result,
                n_iter=result.n_iter + 1,
                converged=result.converged or bool(stopped_at_start),
            )
        else:
            values = np.empty(0)
        return result, params, shift, X, n_obs, values

    def _commit(self, result, params, shift, X, n_obs, values) -> None:
        self._store(params, shift, X, result.loglik, n_obs)
        self._finish_fit(result)
        self.lower_bounds_ = [float(v) for v in values]
        self.lower_bound_ = self.lower_bounds_[-1] if len(values) else -math.inf

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X)`` then ``predict(X)``, with scikit-learn's signature."""
        return self.fit(X).predict(X)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        params, attributes = super()._get_state()
        if "lower_bounds_" in attributes:  # a list, as scikit-learn's; saved as an array
            attributes["lower_bounds_"] = np.asarray(attributes["lower_bounds_"], dtype=float)
        return params, attributes

    def _set_state(self, attributes: dict[str, Any]) -> None:
        super()._set_state(attributes)
        if hasattr(self, "lower_bounds_"):
            self.lower_bounds_ = [float(v) for v in np.ravel(self.lower_bounds_)]

    # ------------------------------------------------------------------ prediction
    @property
    def precisions_(self) -> np.ndarray:
        """Inverse covariances, in the dtype of the fitted arrays."""
        return super().precisions_.astype(self.precisions_cholesky_.dtype, copy=False)

    def _validated(self, X) -> np.ndarray:
        self._check_is_fitted()
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture, as scikit-learn draws them.

        The same ``random_state`` gives the same samples as scikit-learn's
        ``GaussianMixture`` with the same fitted parameters.

        Parameters
        ----------
        n_samples : int, default 1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component of each sample (samples are grouped by component).
        """
        self._check_is_fitted()
        if n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples} . The sampling requires at "
                "least one sample."
            )
        K, D = self.means_.shape
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        covariances = get_structure(self.covariance_type).to_full(self.covariances_, K, D)
        parts = []
        for k, count in enumerate(counts):
            # scikit-learn's random stream: a multivariate normal draw for full and tied
            # covariances, scaled standard normals for diag and spherical ones.
            if self.covariance_type in ("full", "tied"):
                part = rng.multivariate_normal(self.means_[k], covariances[k], int(count))
            else:
                scale = np.sqrt(self.covariances_[k])
                part = self.means_[k] + rng.standard_normal(size=(count, D)) * scale
            parts.append(part)
        y = np.concatenate([np.full(int(c), k, dtype=np.int64) for k, c in enumerate(counts)])
        return np.asarray(np.vstack(parts), dtype=np.float64), y


#: attributes that ``validate_data`` sets at the start of ``fit``
_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


def _checked(values: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``values`` as a float array of ``shape``, or ValueError (scikit-learn's checks)."""
    arr = check_array(values, dtype=[np.float64, np.float32], ensure_2d=False, allow_nd=True)
    if arr.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {shape}, but got {arr.shape}"
        )
    return arr


def _covariances_from_precisions(precisions: Any, covariance_type: str) -> np.ndarray:
    """Covariances in the structure's layout from precisions in the same layout."""
    st = get_structure(covariance_type)
    p = np.asarray(precisions, dtype=np.float64)
    K = 1 if covariance_type == "tied" else p.shape[0]
    D = p.shape[-1] if p.ndim >= 2 else 1
    full = np.linalg.inv(st.to_full(p, K, D))
    return st.from_full(0.5 * (full + np.swapaxes(full, -1, -2)))
