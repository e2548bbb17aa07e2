"""What every finite mixture estimator shares: the fit body, prediction methods and
information criteria, and the posterior and re-seeding helpers of the mixture E/M-steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from emkit._logspace import log_normalize
from emkit._validation import (
    check_gaussian_scale,
    check_init,
    check_not_swallowed,
    check_observed_values,
    check_probabilities,
)
from emkit.distributions.gaussian import nearest_component
from emkit.distributions.missing import MissingBatch, group_by_pattern, nan_average
from emkit.engine.fixed import name_list

__all__ = ["MixtureMixin"]


class MixtureMixin:
    """Prediction methods of a finite mixture, given ``_log_joint(X) -> (N, K)``.

    ``_log_joint`` returns ``log weights_k + log p(x | component k)``; everything
    else (labels, posteriors, likelihoods, information criteria) follows from it.

    A mixture whose ``_allow_nan`` is true accepts NaN (missing values) in ``fit``:
    ``_run_em`` then gives the engine a
    :class:`~emkit.models.mixture.gaussian_model.MissingBatch`, and rows whose values
    are all missing are rejected or dropped as its ``all_missing`` says ("error", the
    default, or "drop"). The likelihoods of rows with NaN are those of their observed
    values, so ``score``, ``bic`` and ``aic`` are observed-data criteria (with ``n`` the
    number of rows).
    """

    def _validated(self, X) -> np.ndarray:
        raise NotImplementedError

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _n_parameters(self) -> int:
        raise NotImplementedError

    def _gaussian_reg_covar(self) -> float | bool | None:
        """The covariance regularisation of Gaussian-type components, for the scale
        check at fit time (None: none; False: not a Gaussian-type model, no check)."""
        return getattr(self, "reg_covar", False)

    def _free_parameters(self, n_features: int, n_components: int | None = None) -> int | None:
        """Free parameters of the model on ``n_features`` columns with ``n_components``
        components (default: the hyper-parameter); None where unknown."""
        return None

    def _run_em(self, X, sample_weight, **options):
        """Validate, centre, start and run the engine: the body every mixture ``fit`` shares.

        Returns (EMResult, the shift the data were centred by, validated X, total weight).
        Nothing on the estimator changes here, so a failure leaves an earlier fit intact.
        """
        from emkit._random import seed_sequence
        from emkit._validation import check_array, check_sample_weight
        from emkit.models._sources import table_source

        source = table_source(X, getattr(self, "batch_size", None))
        if source is not None:
            return self._run_em_source(source, sample_weight, **options)
        X = check_array(X, min_samples=2, allow_nan=self._allow_nan)
        w = check_sample_weight(sample_weight, len(X))
        # Checked once per fit: without NaN everything below is the complete-data path.
        has_nan = self._allow_nan and bool(np.isnan(X).any())
        if has_nan:
            X, w = self._drop_empty_rows(X, w)
        self._check_hyperparameters(len(X))
        if w is not None and np.count_nonzero(w) < self.n_components:
            raise ValueError(
                f"only {np.count_nonzero(w)} samples have positive weight, fewer than "
                f"n_components = {self.n_components}"
            )
        if has_nan:
            self._check_observed(X, w)
        if self._gaussian_reg_covar() is not False:
            check_gaussian_scale(X, self._gaussian_reg_covar())
        model = self._model()
        data, shift = self._centred_data(X, w, has_nan)
        rng = np.random.default_rng(seed_sequence(self.random_state))
        init = self._starting_params(model, data[0], data[1], shift, rng)
        if hasattr(self, "fixed") and "fixed" not in options:
            options["fixed"] = self._fixed_for_engine(model, shift, X.shape[1])
        n_obs = float(len(X) if w is None else w.sum())
        rtol = 1e-9 if X.dtype == np.float64 else 1e-5  # float32 data: float32 round-off
        result = self._run_engine(model, data, init, n_obs, monotone_rtol=rtol, **options)
        if self._gaussian_reg_covar():
            check_not_swallowed(X, self._fitted_variances(model, result.params), self.reg_covar)
        return result, shift, X, n_obs

    def _run_em_source(self, source, sample_weight, **options):
        """``_run_em`` on a table source: centred at its column means (a streaming pass),
        started from its ``init_data()`` subsample, E-steps batch by batch."""
        import functools

        from emkit._random import seed_sequence
        from emkit.models._sources import check_no_weights, column_centre, prepared_rows, then

        check_no_weights(sample_weight)
        self._check_hyperparameters(source.n_samples)
        shift = column_centre(source)
        rows = prepared_rows(
            allow_nan=self._allow_nan,
            all_missing=getattr(self, "all_missing", "error"),
            dtype=source.dtype,
        )
        batch = functools.partial(_mixture_batch, allow_nan=self._allow_nan, shift=shift)
        data = source.map(then(rows, batch))
        model = self._model()
        rng = np.random.default_rng(seed_sequence(self.random_state))
        start = data.init_data()
        init = self._starting_params(model, start[0], start[1], shift, rng)
        n_obs = float(source.n_samples)
        rtol = 1e-9 if source.dtype == np.float64 else 1e-5
        result = self._run_engine(model, data, init, n_obs, monotone_rtol=rtol, **options)
        if self._gaussian_reg_covar():  # the data's scale, as seen in the start's subsample
            variances = self._fitted_variances(model, result.params)
            check_not_swallowed(start[0], variances, self.reg_covar)
        return result, shift, np.empty((0, source.n_features), dtype=source.dtype), n_obs

    def _fitted_variances(self, model, params) -> np.ndarray:
        """Every component's variances (the diagonals of its covariances) in ``params``."""
        raise NotImplementedError

    @staticmethod
    def _centred_data(X: np.ndarray, w, has_nan: bool, shift: np.ndarray | None = None):
        """The engine's data and the shift it was centred by (the weighted column means of
        the observed values unless given).

        The data are ``(X - shift, w)``, or with NaN a ``MissingBatch`` whose rows are
        sorted (complete rows first, then grouped by pattern of missing values).
        Mixtures are translation-equivariant: centring removes the cancellation that
        data far from the origin cause in squared distances. Fortran order: a block of
        rows is then a set of contiguous columns, which the E-step kernels read without
        a transposed copy.
        """
        if not has_nan:
            if shift is None:
                shift = np.average(X, axis=0, weights=w)
            return (np.asfortranarray(X - shift, dtype=X.dtype), w), shift
        if shift is None:
            shift = nan_average(X, w)
        order, pattern = group_by_pattern(np.isnan(X))
        Xc = np.empty(X.shape, dtype=X.dtype, order="F")
        np.subtract(X[order], shift, out=Xc, casting="unsafe")
        return MissingBatch(Xc, None if w is None else w[order], pattern), shift

    def _drop_empty_rows(self, X: np.ndarray, w, min_rows: int = 2):
        """Rows with every value missing carry no information: raise, or drop them with
        a warning, as ``all_missing`` says (at least ``min_rows`` must remain)."""
        from emkit._validation import drop_all_missing_rows

        keep = drop_all_missing_rows(X, w, getattr(self, "all_missing", "error"), min_rows)
        return (X, w) if keep.all() else (X[keep], None if w is None else w[keep])

    def _check_observed(self, X: np.ndarray, w) -> None:
        """Enough observed values (among rows with positive weight) to estimate the model."""
        check_observed_values(X, w, self._free_parameters(X.shape[1]))

    def _describe(self) -> str:
        return f"K={self.n_components} {self.covariance_type} "

    def _init_dict(self, values: Mapping[str, Any], D: int, extra: tuple[str, ...] = ()):
        """Validate user starting parameters: any subset of weights, means, covariances
        (and the subclass's ``extra`` keys, returned unchecked for it to validate)."""
        from emkit.distributions.covariance import get_structure

        K = self.n_components
        keys = ("weights", "means", "covariances", *extra)
        unknown = set(values) - set(keys)
        if unknown:
            raise ValueError(
                f"init dict has unknown keys {sorted(unknown)}; use {', '.join(map(repr, keys))}"
            )
        out = {k: values[k] for k in extra if k in values}
        if "weights" in values:
            w = np.asarray(values["weights"], dtype=np.float64)
            if w.shape != (K,):
                raise ValueError(f"init weights must have shape ({K},), got {w.shape}")
            if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
                raise ValueError("init weights must be non-negative and sum to 1")
            out["weights"] = w / w.sum()
        if "means" in values:
            m = np.asarray(values["means"], dtype=np.float64)
            if m.shape != (K, D):
                raise ValueError(f"init means must have shape ({K}, {D}), got {m.shape}")
            if not np.all(np.isfinite(m)):
                raise ValueError("init means must be finite")
            out["means"] = m
        if "covariances" in values:
            out["covariances"] = get_structure(self.covariance_type).check(
                values["covariances"], K, D
            )
        return out

    #: estimator names that ``fixed`` takes -> the model's parameter paths
    #: (:mod:`emkit.engine.fixed`); a subclass adds its own
    _fixed_paths: ClassVar[Mapping[str, str]] = {
        "weights": "weights",
        "means": "components.mean",
        "covariances": "components.covariance",
    }

    def _fixed_for_engine(self, model, shift: np.ndarray, n_features: int):
        """``fixed`` in the model's terms: names -> paths, values validated like ``init``
        values (:meth:`_params_from_dict`), means moved by the centring ``shift``."""
        fixed = getattr(self, "fixed", None)
        if fixed is None:
            return None
        if isinstance(fixed, Mapping):
            try:
                values = self._fixed_aliases(dict(fixed), n_features)
                values = self._params_from_dict(values, n_features)
            except ValueError as exc:  # the init checks' words, said of fixed
                raise ValueError(f"fixed: {exc}") from None
            values = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
            if "means" in values:
                values["means"] = values["means"] - shift
            return {self._fixed_paths[k]: self._model_value(model, k, v) for k, v in values.items()}
        names = name_list(fixed)
        for name in names:
            if name not in self._fixed_paths:
                raise ValueError(
                    f"fixed names unknown parameter {name!r}; use {sorted(self._fixed_paths)}"
                )
        paths = [self._fixed_paths[n] for n in names]
        if len(set(paths)) != len(paths):
            raise ValueError(f"fixed names a parameter twice: {names}")
        return paths or None

    def _held_means(self, n_features: int) -> np.ndarray | None:
        """The means ``fixed`` holds, as the user gave them (a dict value, or the given
        start's), or None. Stored as ``means_`` instead of ``(means - shift) + shift``,
        which may differ in the last bit. Call before the fit changes anything."""
        fixed = getattr(self, "fixed", None)
        if fixed is None or isinstance(fixed, str) or "means" not in fixed:
            return None
        if isinstance(fixed, Mapping):
            return self._params_from_dict({"means": fixed["means"]}, n_features)["means"]
        if getattr(self, "warm_start", False) and self.__sklearn_is_fitted__():
            return np.asarray(self.means_, dtype=np.float64)
        start = self.init if isinstance(self.init, Mapping) else None
        start = getattr(self, "_given_start", lambda D: start)(n_features)
        if start is None or "means" not in start:
            return None
        return self._params_from_dict({"means": start["means"]}, n_features)["means"]

    def _fixed_aliases(self, values: dict[str, Any], n_features: int) -> dict[str, Any]:
        """``fixed`` values under other names turned into ``init`` keys (GaussianMixture:
        precisions into covariances)."""
        return values

    def _model_value(self, model, name: str, value: np.ndarray) -> Any:
        """An estimator-layout value (``fixed``) in the layout of the model's parameter."""
        if name == "covariances":
            return model.component.from_storage(value, self.n_components)
        return value

    def _check_mixture_options(self, n_samples: int) -> None:
        """Hyper-parameters every mixture estimator shares (validated in ``fit``)."""
        from emkit._validation import check_int, check_real
        from emkit.models.init import INIT_METHODS

        check_int(self.n_components, "n_components", 1)
        if self.tol is not None:
            check_real(self.tol, "tol", 0.0)
        if hasattr(self, "reg_covar"):
            check_real(self.reg_covar, "reg_covar", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_int(self.n_init, "n_init", 1)
        check_init(self.init, INIT_METHODS)
        if self.n_components > n_samples:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {n_samples}"
            )

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of each sample, shape (n_samples,); ``-inf`` for a point so far
        away that its log-density is below the float range (never NaN)."""
        lp, far = self._safe_log_joint(self._validated(X))
        out = log_normalize(lp)
        out[far] = -np.inf
        return out

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per sample (as scikit-learn)."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Posterior probability of each component, shape (n_samples, n_components).

        Normalised in log space; a point so far away that every component's density
        underflows belongs to its nearest component (Mahalanobis distance), which is
        the limit of the posterior as the point moves away."""
        lp, _ = self._safe_log_joint(self._validated(X))
        log_normalize(lp)
        return lp

    def predict(self, X) -> np.ndarray:
        """The most probable component of each sample."""
        return self._safe_log_joint(self._validated(X))[0].argmax(axis=1)

    def _safe_log_joint(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_log_joint`` with the rows whose densities all underflow (or overflow into
        NaN) replaced by the far-point limit; also the mask of those rows."""
        lp = self._log_joint(X)
        with np.errstate(invalid="ignore"):
            far = ~np.isfinite(lp.max(axis=1)) | np.isnan(lp).any(axis=1)
        if far.any():
            shape = self._mahalanobis_shape()
            if shape is not None:
                limit = nearest_component(np.asarray(X[far], dtype=np.float64), *shape)
                with np.errstate(divide="ignore"):
                    lp[far] = np.log(limit).astype(lp.dtype, copy=False)
        return lp, far

    def _mahalanobis_shape(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Each component's centre (K, D) and full precision matrix (K, D, D), which
        decide where a far point belongs (None: no such shape; far rows stay as they are)."""
        return None

    def _sample_component(self, rng: np.random.Generator, k: int, n: int) -> np.ndarray:
        """``n`` draws (n, n_features) from fitted component ``k``."""
        raise NotImplementedError

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture (seeded by ``random_state``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            The component of each sample (samples are grouped by component).
        """
        from emkit._random import seed_sequence
        from emkit._validation import check_int

        self._check_is_fitted()
        n_samples = check_int(n_samples, "n_samples", 1)
        rng = np.random.default_rng(seed_sequence(self.random_state))
        weights = np.asarray(self.weights_, dtype=np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        X = np.vstack([self._sample_component(rng, k, int(c)) for k, c in enumerate(counts)])
        return X, np.repeat(np.arange(len(counts)), counts)

    def fit_predict(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X)`` then ``predict(X)``."""
        return self.fit(X, y, **fit_params).predict(X)

    def bic(self, X) -> float:
        """Bayesian information criterion on ``X`` (lower is better)."""
        X = self._validated(X)
        return -2.0 * self.score(X) * len(X) + self._n_parameters() * np.log(len(X))

    def aic(self, X) -> float:
        """Akaike information criterion on ``X`` (lower is better)."""
        X = self._validated(X)
        return -2.0 * self.score(X) * len(X) + 2.0 * self._n_parameters()

    def icl(self, X) -> float:
        """Integrated completed likelihood (Biernacki, Celeux & Govaert 2000), BIC-style:
        BIC minus twice the log posterior probability of each sample's most probable
        component (as R's mclust; lower is better)."""
        resp = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            penalty = -np.sum(np.log(resp.max(axis=1)))
        return self.bic(X) + 2.0 * float(penalty)


def check_fitted_mixture(est: Any, structure: Any) -> None:
    """Constraints of a loaded mixture's parameters: weights a probability vector,
    covariances symmetric positive definite, and their precision Cholesky factors the
    ones those covariances give (a file edited by hand must not give NaN later)."""
    K, D = est.means_.shape
    check_probabilities(est.weights_, (K,), "weights_")
    cov = structure.check(np.asarray(est.covariances_, dtype=np.float64), K, D)
    expected = structure.precision_cholesky(cov)
    if not np.allclose(est.precisions_cholesky_, expected, rtol=1e-6, atol=0):
        raise ValueError("precisions_cholesky_ does not match covariances_")


def _mixture_batch(X: np.ndarray, *, allow_nan: bool, shift: np.ndarray):
    """The engine's batch for rows of a source (complete-data or missing-value form)."""
    has_nan = allow_nan and bool(np.isnan(X).any())
    return MixtureMixin._centred_data(X, None, has_nan, shift)[0]
