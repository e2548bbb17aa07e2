"""``emkit.GaussianMixture``: the scikit-learn-compatible Gaussian mixture estimator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import (
    ALL_MISSING,
    check_array,
    check_choice,
    check_int,
    check_sample_weight,
)
from emkit.distributions.covariance import get_structure
from emkit.engine.fixed import HeldModel, parse_fixed, set_path, start_values
from emkit.models.estimator import EMEstimator
from emkit.models.mixture.base import MixtureMixin, check_fitted_mixture
from emkit.models.mixture.gaussian_model import GaussianMixtureModel
from emkit.models.mixture.model import MixtureParams

__all__ = ["GaussianMixture"]


class GaussianMixture(MixtureMixin, EMEstimator):
    """Gaussian mixture fitted by EM.

    Generative model::

        z_i ~ Categorical(weights)
        x_i | z_i = k ~ Normal(means[k], covariances[k])

    Missing values (NaN) are allowed in every method, for every covariance type, and
    assumed missing at random: a row's likelihood is the marginal density of its
    observed values. EM's E-step uses those marginal densities for the posteriors and
    the expected moments of the missing values given the observed ones under each
    component for the statistics (Ghahramani & Jordan 1994), so the fit maximises the
    observed-data likelihood. Initialisation ("kmeans++" etc.) fills each NaN with its
    column's mean, for the starting point only. ``predict``, ``predict_proba``,
    ``score_samples``, ``score``, ``bic`` and ``aic`` use the observed values of each
    row (``bic``'s ``n`` is the number of rows), and :meth:`impute` fills the NaN.
    Complete rows always go through the fast complete-data kernels; rows with NaN cost
    one conditioning of the K components per distinct pattern of missing values.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K.
    covariance_type : {"full", "diag", "tied", "spherical"}, default "full"
        Structure of the covariances (see :mod:`emkit.distributions.covariance`).
    tol : float, default 1e-3
        Stop when the mean log-likelihood per sample rises by less than ``tol``
        (a decrease never counts as convergence).
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance, so none becomes singular.
    max_iter : int, default 100
        Maximum number of EM steps; ``max_iter=k`` returns the parameters after exactly
        k steps unless the fit converged earlier.
    n_init : int, default 1
        Restarts from independent seeds; the best log-likelihood is kept.
    init : {"kmeans++", "kmeans", "random", "random_from_data"} or dict, default "kmeans++"
        How to start. A dict gives starting parameters ``{"weights", "means",
        "covariances"}`` (any subset; the rest comes from "kmeans++").
    random_state : None, int or numpy Generator
        Seed of every random choice (initialisation, restarts, ``sample``).
    warm_start : bool, default False
        Start from the previous fit's parameters (``n_init`` is then 1).
    batch_size : int, optional
        E-step over chunks of this many rows (same result, bounded memory).
    progress : bool, default False
        Show a progress bar with the log-likelihood.
    verbose : int, default 0
        1 prints a summary of each fit; 2 also prints every iteration.
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the log-likelihood ever drops (which exact EM never does).
    accel : {None, "squarem"}, default None
        SQUAREM acceleration (Varadhan & Roland 2008): fewer E-steps, never worse
        than plain EM.
    variant : {"em", "online", "hard"}, default "em"
        "online": mini-batch EM (Cappe & Moulines 2009) over ``batch_size`` rows with
        step sizes ``(t + t0) ** -kappa``; "hard": classification EM (Celeux &
        Govaert 1992), which maximises the classification likelihood.
    anneal : None, "default" or sequence of float
        Deterministic annealing (Ueda & Nakano 1998): inverse temperatures rising to 1.
    kappa, t0 : float, default 0.6 and 2.0
        Step sizes of online EM (kappa in (0.5, 1]).
    n_jobs : int, optional
        Run the ``n_init`` restarts on this many threads (same result as one).
    all_missing : {"error", "drop"}, default "error"
        What ``fit`` does with rows whose values are all missing (they carry no
        information): raise ``ValueError``, or drop them with a warning. Elsewhere
        such a row has log-likelihood 0, the mixture weights as posterior, and is
        imputed by the mixture's mean.
    weights_init, means_init, precisions_init : array-like, optional
        Starting weights (n_components,), means (n_components, n_features) and
        precisions (inverse covariances, in the shape of ``covariances_``), as
        scikit-learn takes them; the same as ``init={"weights", "means",
        "covariances"}`` (giving both is an error). What is not given starts by
        ``init``'s method.
    fixed : dict or collection of str, optional
        Parameters held fixed while EM maximises the others given them: a dict with
        any of ``"weights"``, ``"means"``, ``"covariances"`` or ``"precisions"``
        (values checked like ``init``'s and used in every start), or a collection of
        those names (held at their starting values, from ``init`` or its method). Given
        fixed means, the covariances are ``sum r (x - m)(x - m)' / sum r`` about them
        (computed from residuals, exact far from the origin); given fixed covariances,
        the means are the weighted means; given fixed weights, the components' usual
        M-step. Every engine option keeps fixed values bit-for-bit. Re-seeding a
        collapsed component would move them: with ``fixed`` it is an error instead.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K, D, D) full, (K, D) diag, (D, D) tied, (K,) spherical.
    precisions_cholesky_ : ndarray, same shape as ``covariances_``
        ``U`` with ``inv(covariance) = U @ U.T``.
    precisions_ : ndarray, same shape as ``covariances_``
    converged_ : bool
    n_iter_ : int
    history_ : ndarray of shape (n_iter_,)
        Total log-likelihood after each EM step.
    loglik_ : float
        Total (weighted) log-likelihood of the training data at the fitted parameters
        (of their observed values, with NaN).
    lower_bound_ : float
        ``loglik_`` per sample (scikit-learn's name).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (200, 2)), rng.normal(3, 1, (200, 2))])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]))
    array([-3.,  3.])
    >>> gm.predict([[-3.0, -3.0], [3.0, 3.0]]).tolist() in ([0, 1], [1, 0])
    True
    >>> X[::4, 1] = np.nan  # missing values
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 1]))
    array([-3.,  3.])
    >>> np.round(gm.impute([[-3.0, np.nan]]))
    array([[-3., -3.]])
    """

    _fitted_attributes = (
        "weights_",
        "means_",
        "covariances_",
        "precisions_cholesky_",
        *EMEstimator.FIT_RECORD,
    )
    _extra_attributes = ("lower_bound_", "fit_time_")
    _allow_nan = True

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init: str | Mapping[str, Any] = "kmeans++",
        random_state: Any = None,
        warm_start: bool = False,
        batch_size: int | None = None,
        progress: bool = False,
        verbose: int = 0,
        check_monotone: str = "warn",
        accel: str | None = None,
        variant: str = "em",
        anneal: Any = None,
        kappa: float = 0.6,
        t0: float = 2.0,
        n_jobs: int | None = None,
        all_missing: str = "error",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        fixed: Any = None,
    ):
        self._set_hyperparameters(locals())

    _fixed_paths: ClassVar[Mapping[str, str]] = {
        **MixtureMixin._fixed_paths,
        "precisions": "components.covariance",
    }

    def _fixed_aliases(self, values: dict[str, Any], n_features: int) -> dict[str, Any]:
        if "precisions" in values:
            if "covariances" in values:
                raise ValueError("give covariances or precisions, not both")
            st = get_structure(self.covariance_type)
            precisions = values.pop("precisions")
            values["covariances"] = st.covariances_from_precisions(
                precisions, self.n_components, n_features
            )
        return values

    # ------------------------------------------------------------------ fitting
    def _model(self) -> GaussianMixtureModel:
        init = self.init if isinstance(self.init, str) else "kmeans++"
        return GaussianMixtureModel(
            self.n_components, self.covariance_type, self.reg_covar, init=init
        )

    def _check_hyperparameters(self, n_samples: int) -> None:
        check_int(self.n_components, "n_components", 1)
        get_structure(self.covariance_type)
        check_choice(self.all_missing, "all_missing", ALL_MISSING)
        self._check_mixture_options(n_samples)

    def _params_from_dict(self, values: Mapping[str, Any], D: int) -> dict[str, np.ndarray]:
        """Validate a user's starting parameters (any subset of weights/means/covariances)."""
        return self._init_dict(values, D)

    def _given_start(self, n_features: int) -> Mapping[str, Any] | None:
        """The starting parameters given: ``init`` as a dict, or the ``*_init`` keywords."""
        keywords = {}
        if self.weights_init is not None:
            keywords["weights"] = self.weights_init
        if self.means_init is not None:
            keywords["means"] = self.means_init
        if self.precisions_init is not None:
            st = get_structure(self.covariance_type)
            keywords["covariances"] = st.covariances_from_precisions(
                self.precisions_init, self.n_components, n_features
            )
        if isinstance(self.init, Mapping):
            if keywords:
                raise ValueError(
                    "starting parameters are given twice, in init (a dict) and in "
                    "weights_init/means_init/precisions_init: give one or the other"
                )
            return self.init
        return keywords or None

    def _starting_params(self, model, Xc, w, shift, rng) -> MixtureParams | None:
        if self.warm_start and self.__sklearn_is_fitted__():
            given = {
                "weights": self.weights_,
                "means": self.means_,
                "covariances": self.covariances_,
            }
        elif (start := self._given_start(Xc.shape[1])) is not None:
            given = self._params_from_dict(start, Xc.shape[1])
        else:
            return None
        given = {k: np.asarray(v, dtype=np.float64) for k, v in given.items()}
        if "means" in given:
            given["means"] = given["means"] - shift
        if len(given) < 3:
            given = {**model.arrays(model.init_params((Xc, w), rng)), **given}
        return model.params(given["weights"], given["means"], given["covariances"])

    def fit(self, X, y=None, sample_weight=None) -> GaussianMixture:
        """Estimate the parameters by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing value.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts a row twice.

        Raises
        ------
        ValueError
            Besides invalid hyper-parameters and input: a row with every value missing
            (unless ``all_missing="drop"``), a column with every value missing, or
            fewer observed values than free parameters.

        Returns
        -------
        self
        """
        result, shift, X, n_obs = self._run_em(X, sample_weight)
        held_means = self._held_means(X.shape[1])  # before the fit changes anything
        # Everything is computed; only now is the estimator changed.
        self._store(result.params, shift, X, result.loglik, n_obs)
        if held_means is not None:
            self.means_ = held_means.astype(X.dtype)
        self._online = None
        self._finish_fit(result)
        return self

    def _store(self, p: MixtureParams, shift, X, loglik: float, n_obs: float) -> None:
        dtype = X.dtype
        arrays = self._model().arrays(p)
        self.weights_ = arrays["weights"].astype(dtype)
        self.means_ = (arrays["means"] + shift).astype(dtype)
        self.covariances_ = arrays["covariances"].astype(dtype)
        self.precisions_cholesky_ = arrays["precisions_cholesky"].astype(dtype)
        self.loglik_ = float(loglik)
        self.lower_bound_ = self.loglik_ / n_obs
        self.n_features_in_ = X.shape[1]

    def partial_fit(self, X, y=None, sample_weight=None) -> GaussianMixture:
        """One step of online EM (Cappe & Moulines 2009) on a mini-batch.

        The first call (or the first after ``fit``) starts the parameters from this
        batch with ``init`` and fixes the origin of the coordinates at its mean. Every
        call then averages the batch's statistics, per unit of weight, into running
        statistics with step size ``(t + t0) ** -kappa`` (``t`` counts calls, the first
        step replaces them) and takes an M-step. Online EM is not monotone.

        ``n_iter_`` counts the calls, ``history_`` holds each batch's log-likelihood
        per unit of weight before its step, and ``loglik_`` the last batch's total.
        NaN are missing values, as in :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        from emkit.engine.online import OnlineEM

        X = check_array(X, allow_nan=True)
        w = check_sample_weight(sample_weight, len(X))
        scheme = OnlineEM(batch_size=len(X), kappa=self.kappa, t0=self.t0)  # checks both
        has_nan = bool(np.isnan(X).any())
        if has_nan:
            X, w = self._drop_empty_rows(X, w, min_rows=1)
        model = self._model()
        online = getattr(self, "_online", None)
        if online is None or not self.__sklearn_is_fitted__():
            self._check_hyperparameters(len(X))
            if has_nan:
                self._check_observed(X, w)
            data, shift = self._centred_data(X, w, has_nan)
            rng = np.random.default_rng(seed_sequence(self.random_state))
            params = self._starting_params(model, data[0], data[1], shift, rng)
            if params is None:
                params = model.init_params(data, rng)
            params, held = _hold_start(params, self._fixed_for_engine(model, shift, X.shape[1]))
            online = {"shift": shift, "state": None, "history": [], "held": held}
        else:
            self._check_n_features(X)
            shift = online["shift"]
            params = self._params(shift)
            data, _ = self._centred_data(X, w, has_nan, shift)
        n_obs = float(len(X) if w is None else w.sum())
        if online.get("held"):  # fixed: the held model, with the held values of the start
            model = HeldModel(model.hold(tuple(online["held"])), online["held"])
        params, state, loglik = scheme.partial_step(model, params, online["state"], data, 1 / n_obs)
        # Computed; now the estimator changes.
        self._store(params, shift, X, loglik, n_obs)
        history = [*online["history"], loglik / n_obs]
        self._online = {**online, "state": state, "history": history}
        self.n_iter_ = state.t
        self.history_ = np.asarray(history)
        self.converged_ = False
        self.fit_time_ = 0.0
        return self

    def _check_fitted_state(self) -> None:
        self._check_float_arrays(("weights_", "means_", "covariances_", "precisions_cholesky_"))
        K, D = self.means_.shape if self.means_.ndim == 2 else (-1, -1)
        shape = get_structure(self.covariance_type).shape(K, D)
        if (
            K != self.n_components
            or D != self.n_features_in_
            or self.weights_.shape != (K,)
            or self.covariances_.shape != shape
            or self.precisions_cholesky_.shape != shape
        ):
            raise ValueError("fitted arrays have inconsistent shapes")
        check_fitted_mixture(self, get_structure(self.covariance_type))

    # ------------------------------------------------------------------ prediction
    @property
    def precisions_(self) -> np.ndarray:
        """Inverse covariances, from ``precisions_cholesky_``."""
        self._check_is_fitted()
        return get_structure(self.covariance_type).precisions(self.precisions_cholesky_)

    def _params(self, centre: Any = 0.0) -> MixtureParams:
        """The fitted parameters (float64), with the means taken about ``centre``."""
        self._check_is_fitted()
        return self._model().params(
            self.weights_, np.asarray(self.means_, dtype=np.float64) - centre, self.covariances_
        )

    def _centre(self) -> np.ndarray:
        """The mixture's mean: predictions run in coordinates centred there, as the fit."""
        return np.asarray(self.weights_, dtype=np.float64) @ np.asarray(
            self.means_, dtype=np.float64
        )

    def _validated(self, X) -> np.ndarray:
        self._check_is_fitted()
        X = check_array(X, allow_nan=True)
        self._check_n_features(X)
        return X

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        centre = self._centre()
        Xc = (X - centre).astype(X.dtype, copy=False)
        return self._model().weighted_log_prob(self._params(centre), Xc)

    def _fitted_variances(self, model, params) -> np.ndarray:
        cov = model.arrays(params)["covariances"]
        K, D = np.shape(model.arrays(params)["means"])
        return np.diagonal(get_structure(self.covariance_type).to_full(cov, K, D), 0, -2, -1)

    def _mahalanobis_shape(self) -> tuple[np.ndarray, np.ndarray]:
        st = get_structure(self.covariance_type)
        K, D = self.means_.shape
        prec = st.precisions(np.asarray(self.precisions_cholesky_, dtype=np.float64))
        return np.asarray(self.means_, dtype=np.float64), st.to_full(prec, K, D)

    def _free_parameters(self, n_features: int, n_components: int | None = None) -> int:
        K, D = n_components or self.n_components, n_features
        return (K - 1) + K * D + get_structure(self.covariance_type).n_parameters(K, D)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return self._free_parameters(D, K)

    def impute(self, X) -> np.ndarray:
        """Fill each missing value (NaN) with its posterior mean given the row's observed values.

        That is ``sum_k p(k | x_o) E[x_m | x_o, k]``: the conditional means of the
        components given the observed values ``x_o``, weighted by the posterior
        probabilities of the components given ``x_o``. A row with nothing observed
        gets the mixture's mean; observed values are returned unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        X = self._validated(X)
        centre = self._centre()
        Xc = (X - centre).astype(X.dtype, copy=False)
        filled = self._model().impute(self._params(centre), Xc)
        return np.where(np.isnan(X), filled + centre, X).astype(X.dtype, copy=False)

    def _sample_component(self, rng: np.random.Generator, k: int, n: int) -> np.ndarray:
        K, D = self.means_.shape
        st = get_structure(self.covariance_type)
        cov_k = st.to_full(np.asarray(self.covariances_, dtype=np.float64), K, D)[k]
        mean_k = np.asarray(self.means_[k], dtype=np.float64)
        return st.sample(rng, mean_k, cov_k, n).astype(self.means_.dtype)


def _hold_start(params: MixtureParams, fixed: Any) -> tuple[MixtureParams, dict | None]:
    """The start with ``fixed``'s values in it, and the held values (None: nothing held)."""
    if fixed is None:
        return params, None
    names, values = parse_fixed(fixed)
    for name, value in (values or {}).items():
        params = set_path(params, name, value)
    return params, start_values(params, names)
