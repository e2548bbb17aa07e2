"""What every emkit estimator shares: scikit-learn conventions, engine options, persistence.

The estimators are thin: they validate input, build a pure EM model, hand it to
:func:`emkit.em`, and store the result as fitted attributes (ending in ``_``). Fitted
attributes are assigned only after a fit succeeds, so a failed ``fit`` leaves an
earlier fit untouched.

Persistence: every public subclass registers itself for :func:`emkit.load` when it is
defined (:mod:`emkit._registry`), and says what a model file holds through
``_get_state`` / ``_from_state``; :mod:`emkit.io` writes and reads the file without
importing any estimator.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any

import numpy as np

from emkit._registry import register_estimator
from emkit.data.sources import DataSource
from emkit.engine.protocol import objective_label
from emkit.io import save as _save_model

__all__ = ["ENGINE_OPTIONS", "EMEstimator", "record_feature_names"]

#: The engine options an estimator may offer, each a constructor parameter of the same
#: name handed to :func:`emkit.em` (documented here once; the defaults of ``tol`` and
#: ``max_iter`` suit each model and are set by each estimator).
ENGINE_OPTIONS: dict[str, str] = {
    "tol": "stop when the objective rises by less than tol per observation (a decrease "
    "never counts as convergence); None runs exactly max_iter steps",
    "max_iter": "maximum number of EM steps (SQUAREM: cycles; online EM: passes)",
    "n_init": "restarts from independent seeds spawned from random_state; the best is kept",
    "random_state": "seed of every random choice (None, an int or a numpy Generator)",
    "batch_size": "E-step over chunks of this many rows (same result, bounded memory); "
    "online EM: rows per mini-batch",
    "progress": "show a tqdm progress bar with the objective",
    "verbose": "1 prints a summary of each fit; 2 also prints every iteration",
    "check_monotone": "'warn', 'raise' or 'off': what to do if the objective drops",
    "accel": "None or 'squarem' (Varadhan & Roland 2008): fewer E-steps, never worse",
    "variant": "'em', 'online' (mini-batch EM, Cappe & Moulines 2009) or 'hard' "
    "(classification EM, Celeux & Govaert 1992)",
    "anneal": "deterministic annealing (Ueda & Nakano 1998): 'default' or rising inverse "
    "temperatures ending at 1",
    "kappa": "online EM step sizes (t + t0) ** -kappa, kappa in (0.5, 1]",
    "t0": "online EM step-size offset",
    "n_jobs": "threads for the fit (same result as one): the batches' E-steps when the "
    "data come in several batches (batch_size, a file or Dask source), else the n_init restarts",
    "executor": "where the E-steps run: None, 'serial', 'threads', 'dask' (the current "
    "dask.distributed client) or a distributed.Client",
    "checkpoint": "file to save the fit's state to and resume from (see emkit.em)",
    "checkpoint_every": "EM steps between two writes of the checkpoint",
    "fixed": "parameters held fixed: a dict keyed like the init dict (name -> value, "
    "validated like init values and merged into every start), or a collection of those "
    "names (held at their starting values); the others get their M-step given them",
}


class EMEstimator:
    """Base of emkit estimators: ``get_params``/``set_params``, tags, ``save``.

    It follows scikit-learn's conventions by itself (``get_params``/``set_params``,
    ``__sklearn_tags__``, cloning, its estimator checks) without importing scikit-learn,
    so that ``import emkit`` stays fast; scikit-learn is needed only by the drop-in
    fronts of :mod:`emkit.compat`.

    Every subclass whose name does not start with ``_`` is registered for
    :func:`emkit.load` as it is defined, under its class name (see
    :mod:`emkit._registry`), so a user's subclass saves and loads like emkit's own.
    """

    #: what every fit records, in this order: whether it converged, the number of EM
    #: steps, the objective after each step (``history_``), the final objective
    #: (``loglik_``) and the number of features (set by ``_finish_fit`` and the store)
    FIT_RECORD: tuple[str, ...] = ("converged_", "n_iter_", "history_", "loglik_", "n_features_in_")
    #: names of the fitted attributes that define a fitted estimator (saved by ``save``)
    _fitted_attributes: tuple[str, ...] = ()
    #: further attributes saved when present (bookkeeping such as ``fit_time_``)
    _extra_attributes: tuple[str, ...] = ()
    _estimator_type = "density_estimator"
    _allow_nan = False

    #: the engine options this estimator offers: its constructor parameters that are in
    #: :data:`ENGINE_OPTIONS` (set for each subclass as it is defined)
    _engine_options: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        cls._engine_options = tuple(n for n in cls._get_param_names() if n in ENGINE_OPTIONS)
        # column names of DataFrames: recorded by fit, checked by the methods taking X
        # (wrapping what the class has, its own or from a mixin, once)
        for name in _FIT_METHODS | _PREDICT_METHODS:
            # plain functions only: a descriptor (a method available for some settings
            # only) keeps its own behaviour
            value = inspect.getattr_static(cls, name, None)
            if inspect.isfunction(value) and not getattr(value, "_feature_names", False):
                wrap = _recording_feature_names if name in _FIT_METHODS else _checking_feature_names
                setattr(cls, name, wrap(value))
        if not cls.__name__.startswith("_"):  # private helpers are never saved
            register_estimator(cls)

    # -------------------------------------------------------------- scikit-learn protocol
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def _set_hyperparameters(self, values: dict[str, Any]) -> None:
        """Store each constructor argument under its own name, and nothing else (what
        scikit-learn asks of ``__init__``); called as ``self._set_hyperparameters(locals())``."""
        names = set(self._get_param_names())  # a subclass may add its own, set by itself
        for name, value in values.items():
            if name in names:
                setattr(self, name, value)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters of this estimator (scikit-learn protocol)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> EMEstimator:
        """Set hyper-parameters (scikit-learn protocol); returns ``self``."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        parts = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = value is default or bool(value == default)
            except (ValueError, TypeError):
                same = False
            if not same:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=False),
            input_tags=InputTags(allow_nan=self._allow_nan),
        )

    def __sklearn_is_fitted__(self) -> bool:
        return all(hasattr(self, a) for a in self._fitted_attributes)

    def _check_is_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            from emkit.exceptions import NotFittedError

            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _check_n_features(self, X: np.ndarray) -> None:
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _check_fitted_state(self) -> None:
        """Raise ValueError if the fitted attributes are inconsistent (used by ``load``)."""

    def _check_float_arrays(self, names: tuple[str, ...], finite: bool = True) -> None:
        """Each attribute in ``names`` must be a float ndarray (with finite values if
        ``finite``); for ``_check_fitted_state``."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                raise ValueError(f"{name} must be a float array, got {type(value).__name__}")
            if finite and not np.all(np.isfinite(value)):
                raise ValueError(f"{name} has non-finite values")

    def _finish_fit(self, result, what: str = "EM") -> None:
        """Record the run's bookkeeping, warn if it did not converge, report if verbose.

        ``objective_name_`` records what ``loglik_`` and ``history_`` hold: the
        log-likelihood (``"loglik"``) or the evidence lower bound (``"elbo"``).
        """
        self.objective_name_ = result.objective_name
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)
        self.history_ = result.history
        self.fit_time_ = result.time
        if not self.converged_ and self.max_iter > 0 and self.tol is not None:
            from emkit.exceptions import ConvergenceWarning  # imports scikit-learn

            label = objective_label(self.objective_name_)
            warnings.warn(
                f"{what} did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol} on the {label} per observation); increase max_iter or "
                "tol, or try another init",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.verbose:
            elbo = self.objective_name_ == "elbo" and hasattr(self, "elbo_")
            final = self.elbo_ if elbo else self.loglik_
            print(
                f"{type(self).__name__}: {self._describe()}"
                f"{what} {self.objective_name_}={final:.6g} n_iter={self.n_iter_} "
                f"converged={self.converged_} ({result.time:.3g} s)"
            )

    def _describe(self) -> str:
        """Model summary for the verbose report (subclasses add their size)."""
        return ""

    def _run_engine(self, model, data, init, n_obs: float, **options):
        """``emkit.em`` with the options every estimator shares; ``options`` add or override.

        A given ``init`` is one start, so restarts only apply without one; ``tol`` is per
        unit of ``n_obs`` (the total sample weight, or the number of observations).
        """
        from emkit.engine import em

        shared = {name: getattr(self, name) for name in self._engine_options}
        verbose = shared.pop("verbose", 0)
        shared["callback"] = _print_iteration if verbose >= 2 else None
        shared["tol_scale"] = float(n_obs)
        if init is not None:
            shared["n_init"] = 1
        if isinstance(data, DataSource) and shared.get("variant") != "online":
            shared["batch_size"] = None  # a source cuts its own batches
        if "fixed" in shared and "fixed" not in options:
            shared["fixed"] = self._engine_fixed(shared["fixed"])
        return em(model, data, init=init, **{**shared, **options})

    def _engine_fixed(self, fixed: Any) -> Any:
        """The estimator's ``fixed`` in the model's terms, for :func:`emkit.em`.

        The default hands it over as given (the estimator's names are the model's); an
        estimator whose names, coordinates or layouts differ translates it here, or
        passes ``fixed=`` to :meth:`_run_engine` itself. An empty collection is None.
        """
        if fixed is not None and not isinstance(fixed, str) and len(fixed) == 0:
            return None
        return fixed

    # -------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the fitted estimator to ``path`` (see :func:`emkit.load`)."""
        _save_model(self, path)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What a model file holds: ``(hyper-parameters, fitted attributes)``.

        The hyper-parameters are ``get_params()``; the attributes are those of
        ``_fitted_attributes`` and ``_extra_attributes`` that exist. Values must be JSON
        scalars, arrays or dicts of arrays (hyper-parameters may also be distributions,
        and values JSON cannot hold, such as a Generator, are saved as None). A subclass
        with other state overrides this and :meth:`_from_state` together.
        """
        names = self._fitted_attributes + self._extra_attributes + ("feature_names_in_",)
        return self.get_params(), {
            name: getattr(self, name) for name in names if hasattr(self, name)
        }

    @classmethod
    def _from_state(cls, params: dict[str, Any], attributes: dict[str, Any]) -> EMEstimator:
        """The estimator that :meth:`_get_state` described (used by :func:`emkit.load`).

        ``cls(**params)``, then :meth:`_set_state`; ``load`` checks the result with
        ``_check_fitted_state``.
        """
        estimator = cls(**params)
        estimator._set_state(attributes)
        return estimator

    def _set_state(self, attributes: dict[str, Any]) -> None:
        """Restore fitted attributes read from a model file."""
        for name, value in attributes.items():
            setattr(self, name, value)


# ------------------------------------------------------------------ column names
#: methods that learn the column names of a pandas DataFrame, and those that check them
_FIT_METHODS = frozenset({"fit", "partial_fit"})
_PREDICT_METHODS = frozenset(
    {
        "predict",
        "predict_proba",
        "score",
        "score_samples",
        "transform",
        "decode",
        "impute",
        "bic",
        "aic",
        "icl",
    }
)


def feature_names_of(X: Any) -> np.ndarray | None:
    """The column names of a DataFrame-like ``X`` when they are all strings (as
    scikit-learn records them), else None."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = [c for c in columns]
    if not names or not all(isinstance(c, str) for c in names):
        return None
    return np.asarray(names, dtype=str)


def record_feature_names(estimator: EMEstimator, names: Any) -> None:
    """Record the column names of the data a fitted estimator was fitted on.

    ``fit`` records them by itself from a DataFrame; this is for data fitted as a
    plain array whose names are known elsewhere (a file's header, as ``emkit fit``
    reads it). They are then ``feature_names_in_``, saved by ``save``, and checked
    against the columns of every DataFrame given to ``predict`` and its kin.

    Parameters
    ----------
    estimator : EMEstimator
        A fitted estimator.
    names : sequence of str
        One distinct name per feature, in the order of the columns.

    Raises
    ------
    ValueError
        The estimator is not fitted, or ``names`` are not ``n_features_in_`` distinct
        strings.

    Examples
    --------
    >>> import emkit
    >>> from emkit.models.estimator import record_feature_names
    >>> gm = emkit.GaussianMixture(1).fit(np.arange(8.0).reshape(4, 2))
    >>> record_feature_names(gm, ["height", "weight"])
    >>> gm.feature_names_in_.tolist()
    ['height', 'weight']
    """
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ValueError(
            f"{type(estimator).__name__} is not fitted: fit it before naming its features"
        )
    names = list(names)
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"feature names must be strings, got {names!r}")
    if len(names) != n_features:
        raise ValueError(
            f"{len(names)} feature names for a {type(estimator).__name__} fitted on "
            f"{n_features} features"
        )
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"feature names must be distinct; repeated: {', '.join(repeated)}")
    estimator.feature_names_in_ = np.asarray(names, dtype=str)


def _recording_feature_names(method):
    @functools.wraps(method)
    def fit(self, X=None, *args, **kwargs):
        names = feature_names_of(X)
        previous = getattr(self, "feature_names_in_", None)
        if method.__name__ == "partial_fit" and previous is not None:
            _check_same_names(self, names, previous)
        result = method(self, X, *args, **kwargs)
        if names is not None:
            self.feature_names_in_ = names
        elif method.__name__ == "fit" and previous is not None:
            del self.feature_names_in_  # a fit on a plain array has no names
        return result

    fit._feature_names = True
    return fit


def _checking_feature_names(method):
    @functools.wraps(method)
    def checked(self, X=None, *args, **kwargs):
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is not None:
            _check_same_names(self, feature_names_of(X), fitted)
        return method(self, X, *args, **kwargs)

    checked._feature_names = True
    return checked


def _check_same_names(est: Any, names: np.ndarray | None, fitted: np.ndarray) -> None:
    if names is None or np.array_equal(names, fitted):
        return
    names, fitted = [str(c) for c in names], [str(c) for c in fitted]
    if sorted(names) == sorted(fitted):
        raise ValueError(
            f"the columns of X are those {type(est).__name__} was fitted on in another "
            f"order: got {names}, fitted on {fitted}; reorder them"
        )
    raise ValueError(f"X has columns {names}, but {type(est).__name__} was fitted on {fitted}")


def _print_iteration(info) -> None:
    # The log-likelihood itself (as the summary line), or the whole ELBO.
    value = info.loglik if info.objective_name == "loglik" else info.objective
    print(
        f"  iteration {info.iteration:4d}  {info.objective_name} {value:.10g}  "
        f"change {info.change:.3g}"
    )
