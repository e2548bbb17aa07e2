"""The Gaussian imputer: a multivariate normal fitted by EM to data with missing values.

:class:`GaussianImputer` is the scikit-learn-style transformer; the pure EM model it
runs, and the conditioning it imputes with, are in :mod:`emkit.models.latent.mvn`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import (
    ALL_MISSING,
    check_array,
    check_choice,
    check_gaussian_scale,
    check_init,
    check_int,
    check_observed_values,
    check_real,
    check_sample_weight,
    drop_all_missing_rows,
)
from emkit.distributions.missing import missing_patterns
from emkit.models._sources import centred_rows, observed_mean, table_source
from emkit.models.estimator import EMEstimator
from emkit.models.latent.mvn import (
    INIT_METHODS,
    MVNMissingModel,
    MVNParams,
    check_covariance,
    condition_mvn,
)

__all__ = ["GaussianImputer"]


class GaussianImputer(EMEstimator):
    """Multivariate normal fitted by EM to data with missing values; imputes them.

    Estimates the maximum-likelihood mean and covariance of ``x ~ Normal(mean,
    covariance)`` from rows with any pattern of missing values (NaN), assumed missing
    at random (Little & Rubin 2002, ch. 11; Schafer 1997). ``transform`` replaces each
    NaN by its conditional mean given the row's observed values;
    ``sample_imputations`` draws multiple imputations from the conditional normal.

    Parameters
    ----------
    tol : float, default 1e-8
        Stop when the observed-data log-likelihood per row rises by less than ``tol``
        (a decrease never counts as convergence).
    max_iter : int, default 1000
        Maximum number of EM steps (of SQUAREM cycles with ``accel="squarem"``).
    reg_covar : float, default 0.0
        Added to the diagonal of the covariance after each M-step (0 is the exact MLE).
    init : {"observed", "pairwise"} or dict, default "observed"
        "observed": the observed means and variances, zero correlations;
        "pairwise": the pairwise-available covariance made positive definite;
        a dict ``{"mean", "covariance"}`` gives the starting parameters (any subset;
        the rest from "observed").
    all_missing : {"error", "drop"}, default "error"
        What ``fit`` does with rows whose values are all missing (they carry no
        information): raise ``ValueError``, or drop them with a warning.
    accel : {None, "squarem"}, default None
        SQUAREM acceleration (Varadhan & Roland 2008): fewer E-steps to the same MLE.
    batch_size : int, optional
        E-step over chunks of this many rows (same result).
    random_state : None, int or numpy Generator
        Default seed of ``sample_imputations``.
    progress : bool, default False
        Show a progress bar with the log-likelihood.
    verbose : int, default 0
        2 prints every iteration.
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the log-likelihood ever drops (which exact EM never does).
    fixed : dict or collection of str, optional
        ``"mean"`` and/or ``"covariance"`` held fixed: a dict of values (checked like
        ``init``'s) or the names (held at their starting values). Given a held mean
        ``m`` the covariance is the expected ``sum w (x - m)(x - m)' / sum w``; given a
        held covariance the mean is the expected weighted mean (exact EM both).
    executor, checkpoint, checkpoint_every
        Where the E-steps run (threads, a Dask cluster), and checkpoint / resume of
        the fit: as in :func:`emkit.em`.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    covariance_ : ndarray of shape (n_features, n_features)
    loglik_ : float
        Total (weighted) observed-data log-likelihood of the training data.
    converged_, n_iter_, history_, n_features_in_
        The record every emkit estimator keeps of its fit (see
        :attr:`emkit.models.estimator.EMEstimator.FIT_RECORD`; ``history_`` holds the
        total observed-data log-likelihood after each EM step).

    Notes
    -----
    Rows whose values are all missing are left out of the likelihood; in
    ``transform`` they are filled with ``mean_`` and ``score_samples`` gives them 0.
    The E-step costs one Cholesky factorisation per distinct missing pattern.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.models.latent.imputer import GaussianImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0.0, 1.0], [[1.0, 0.8], [0.8, 1.0]], size=500)
    >>> X[rng.random(500) < 0.3, 1] = np.nan
    >>> imp = GaussianImputer().fit(X)
    >>> bool(np.allclose(imp.mean_, [0.0, 1.0], atol=0.2))
    True
    >>> filled = imp.transform(X)
    >>> bool(np.isnan(filled).any()), bool(np.array_equal(filled[:, 0], X[:, 0]))
    (False, True)
    >>> imp.sample_imputations(X, n_imputations=3, random_state=0).shape
    (3, 500, 2)
    """

    _fitted_attributes = (
        "mean_",
        "covariance_",
        *EMEstimator.FIT_RECORD,
    )
    _extra_attributes = ("fit_time_",)
    _estimator_type = None
    _allow_nan = True

    def __init__(
        self,
        *,
        tol: float = 1e-8,
        max_iter: int = 1000,
        reg_covar: float = 0.0,
        init: str | Mapping[str, Any] = "observed",
        all_missing: str = "error",
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
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(),
            input_tags=InputTags(allow_nan=True),
        )

    # ------------------------------------------------------------------ fitting
    def _check_hyperparameters(self) -> None:
        if self.tol is not None:
            check_real(self.tol, "tol", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_real(self.reg_covar, "reg_covar", 0.0)
        check_int(self.verbose, "verbose", 0)
        check_choice(self.all_missing, "all_missing", ALL_MISSING)
        check_init(self.init, INIT_METHODS)

    def _validate_training_data(self, X, sample_weight) -> tuple[np.ndarray, np.ndarray | None]:
        X = check_array(X, allow_nan=True, min_samples=2, dtype=np.float64)
        check_gaussian_scale(X, None)  # one Gaussian: no components for reg_covar to merge
        w = check_sample_weight(sample_weight, len(X))
        keep = drop_all_missing_rows(X, w, self.all_missing)
        if not keep.all():
            X, w = X[keep], None if w is None else w[keep]
        missing = np.isnan(X)
        positive = np.ones(len(X), dtype=bool) if w is None else w > 0
        D = X.shape[1]
        check_observed_values(
            X, w, D + D * (D + 1) // 2, f"a {D}-variate normal (mean and covariance)"
        )
        if self.reg_covar == 0 and np.count_nonzero(positive) <= D:
            raise ValueError(
                f"X has {np.count_nonzero(positive)} rows (with positive weight) for {D} "
                "features: the maximum-likelihood covariance is singular; provide more rows "
                "than features or set reg_covar > 0"
            )
        if self.reg_covar == 0:
            X0 = np.where(missing, np.nan, X)[positive]
            with np.errstate(invalid="ignore"):
                spread = np.nanmax(X0, axis=0) - np.nanmin(X0, axis=0)
            if np.any(spread == 0):
                cols = np.flatnonzero(spread == 0).tolist()
                raise ValueError(
                    f"column(s) {cols} of X are constant over their observed values, so the "
                    "covariance is singular; drop them or set reg_covar > 0"
                )
        return X, w

    def _starting_params(self, model, Xc, w, shift, rng) -> MVNParams | None:
        if not isinstance(self.init, Mapping):
            return None
        D = Xc.shape[1]
        unknown = set(self.init) - {"mean", "covariance"}
        if unknown:
            raise ValueError(
                f"init dict has unknown keys {sorted(unknown)}; use 'mean', 'covariance'"
            )
        base = model.init_params((Xc, w), rng)
        given = _check_values(self.init, D, "init")
        if "mean" in given:
            given["mean"] = given["mean"] - shift
        return base._replace(**given)

    def _engine_fixed(self, fixed: Any, D: int = 0, shift: Any = 0.0) -> Any:
        """``fixed`` for the model: names as they are, values checked like ``init``'s
        with the mean in the centred coordinates of the fit."""
        if not isinstance(fixed, Mapping):
            return super()._engine_fixed(fixed)
        values = _check_values(fixed, D, "fixed")
        if "mean" in values:
            values["mean"] = values["mean"] - shift
        return values or None

    def fit(self, X, y=None, sample_weight=None) -> GaussianImputer:
        """Estimate the mean and covariance by EM from ``X`` with missing values (NaN).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing value; infinite values are rejected.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts a row twice.

        Returns
        -------
        self
        """

        self._check_hyperparameters()
        source = table_source(X, self.batch_size)
        if source is None:
            X, w = self._validate_training_data(X, sample_weight)
            # Centre at the observed means (the model is translation-equivariant): the raw
            # second moments of the E-step then suffer no cancellation.
            shift = observed_mean(X, w)
            Xc = X - shift
            data, n_obs = (Xc, w), float(len(X) if w is None else w.sum())
        else:  # out of core: a streaming pass for the centre (see emkit.models._sources)
            shift, data, n_obs = centred_rows(source, sample_weight, self.all_missing)
            (Xc, w), X = data.init_data(), np.empty((0, source.n_features))
        model = MVNMissingModel(
            float(self.reg_covar), self.init if isinstance(self.init, str) else "observed"
        )
        rng = np.random.default_rng(seed_sequence(self.random_state))
        init = self._starting_params(model, Xc, w, shift, rng)
        # nothing in the fit is random
        fixed = self._engine_fixed(self.fixed, X.shape[1], shift)
        result = self._run_engine(model, data, init, n_obs, random_state=0, fixed=fixed)
        # Everything is computed; only now is the estimator changed.
        p = result.params
        self.mean_ = _held_mean(self, X.shape[1], np.asarray(p.mean, dtype=np.float64) + shift)
        self.covariance_ = np.asarray(p.covariance, dtype=np.float64).copy()
        self.loglik_ = float(result.loglik)
        self.n_features_in_ = X.shape[1]
        self._finish_fit(result)
        return self

    def _check_fitted_state(self) -> None:
        self._check_float_arrays(("mean_", "covariance_", "history_"), finite=False)
        D = self.n_features_in_
        if not isinstance(D, int) or self.mean_.shape != (D,):
            raise ValueError("mean_ does not match n_features_in_")
        if not np.all(np.isfinite(self.mean_)):
            raise ValueError("mean_ has non-finite values")
        check_covariance(self.covariance_, D, "covariance_")

    # ------------------------------------------------------------------ using the fit
    def _validated(self, X) -> np.ndarray:
        self._check_is_fitted()
        X = check_array(X, allow_nan=True, dtype=np.float64)
        self._check_n_features(X)
        return X

    def transform(self, X) -> np.ndarray:
        """Fill each missing value with its conditional mean given the row's observed values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            A copy of ``X`` with NaN replaced (rows with nothing observed get ``mean_``).
        """
        X = self._validated(X)
        out = X.copy()
        for rows, miss in missing_patterns(np.isnan(X)):
            if miss.any():
                c = condition_mvn(self.mean_, self.covariance_, X[np.ix_(rows, ~miss)], miss)
                out[np.ix_(rows, miss)] = c.mean_m
        return out

    def fit_transform(self, X, y=None, sample_weight=None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)`` (rows dropped by ``all_missing="drop"`` get ``mean_``)."""
        return self.fit(X, y, sample_weight=sample_weight).transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns: the input names (the DataFrame's columns seen by
        ``fit``, else ``x0, x1, ...``)."""
        self._check_is_fitted()
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is None:
            if fitted is not None:
                return np.asarray(fitted, dtype=object)
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        names = np.asarray(input_features, dtype=object)
        if names.shape != (self.n_features_in_,):
            raise ValueError(
                f"input_features should have length {self.n_features_in_}, got {names.shape}"
            )
        if fitted is not None and not np.array_equal(names, fitted):
            raise ValueError(f"input_features {list(names)} differ from feature_names_in_")
        return names

    def sample_imputations(self, X, n_imputations: int = 5, random_state: Any = None) -> np.ndarray:
        """Draw the missing values from their conditional normal given the observed ones.

        Each imputation draws the missing block of each row from ``Normal(E[x_m | x_o],
        Cov[x_m | x_o])`` at the fitted ``mean_`` and ``covariance_``. The parameters are
        held at their estimates: their uncertainty is not drawn (for proper multiple
        imputation in Rubin's sense, also draw the parameters from their posterior, as
        data augmentation in R's ``norm`` does), so between-imputation variance is
        somewhat understated for small samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        n_imputations : int, default 5
        random_state : None, int or numpy Generator, optional
            Seed of the draws (default: the estimator's ``random_state``).

        Returns
        -------
        ndarray of shape (n_imputations, n_samples, n_features)
            Observed values are copied unchanged into every imputation.
        """
        X = self._validated(X)
        n_imputations = check_int(n_imputations, "n_imputations", 1)
        seed = self.random_state if random_state is None else random_state
        rng = np.random.default_rng(seed_sequence(seed))
        out = np.repeat(X[None], n_imputations, axis=0)
        for rows, miss in missing_patterns(np.isnan(X)):
            if not miss.any():
                continue
            c = condition_mvn(self.mean_, self.covariance_, X[np.ix_(rows, ~miss)], miss)
            # A square root of the conditional covariance that tolerates round-off
            # (it is only positive semi-definite when a variable is a function of others).
            vals, vecs = np.linalg.eigh(c.cov_m)
            root = vecs * np.sqrt(np.clip(vals, 0.0, None))
            noise = rng.standard_normal((n_imputations, len(rows), int(miss.sum()))) @ root.T
            draws = c.mean_m[None] + noise
            out[:, rows[:, None], np.flatnonzero(miss)[None, :]] = draws
        return out

    def score_samples(self, X) -> np.ndarray:
        """Observed-data log-likelihood of each row (the marginal density of its observed
        values; 0 for a row with nothing observed), shape (n_samples,)."""
        X = self._validated(X)
        out = np.zeros(len(X))
        for rows, miss in missing_patterns(np.isnan(X)):
            c = condition_mvn(self.mean_, self.covariance_, X[np.ix_(rows, ~miss)], miss)
            out[rows] = c.loglik
        return out

    def score(self, X, y=None) -> float:
        """Mean observed-data log-likelihood per row."""
        return float(np.mean(self.score_samples(X)))


def _check_values(values: Mapping[str, Any], D: int, what: str) -> dict[str, np.ndarray]:
    """A dict of ``mean`` (D,) and/or ``covariance`` (D, D), as ``init`` or ``fixed``."""
    unknown = set(values) - {"mean", "covariance"}
    if unknown:
        raise ValueError(
            f"{what} dict has unknown keys {sorted(unknown)}; use 'mean', 'covariance'"
        )
    out = {}
    if "mean" in values:
        m = np.asarray(values["mean"], dtype=np.float64)
        if m.shape != (D,):
            raise ValueError(f"{what} mean must have shape ({D},), got {m.shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError(f"{what} mean must be finite")
        out["mean"] = m
    if "covariance" in values:
        out["covariance"] = check_covariance(values["covariance"], D, f"{what} covariance")
    return out


def _held_mean(est: Any, D: int, fitted: np.ndarray) -> np.ndarray:
    """The fitted mean, or the held one exactly as given (``fixed`` or ``init``), not
    ``(mean - shift) + shift``, which may differ in the last bit."""
    fixed = est.fixed
    if fixed is None or isinstance(fixed, str) or "mean" not in fixed:
        return fitted
    source = fixed if isinstance(fixed, Mapping) else est.init
    if isinstance(source, Mapping) and "mean" in source:
        return np.asarray(source["mean"], dtype=np.float64).reshape(D).copy()
    return fitted
