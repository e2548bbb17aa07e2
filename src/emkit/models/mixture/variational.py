"""``emkit.VariationalGaussianMixture``: variational Bayes for a Gaussian mixture on the engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._validation import check_array, check_choice, check_int, check_real
from emkit.distributions.covariance import get_structure
from emkit.models.estimator import EMEstimator
from emkit.models.mixture.base import MixtureMixin, check_fitted_mixture
from emkit.models.mixture.variational_model import (
    VB_COVARIANCE_TYPES,
    WEIGHT_PRIOR_TYPES,
    VariationalGaussianMixtureModel,
    VBParams,
    VBPrior,
)

__all__ = ["VariationalGaussianMixture"]

#: the starting factors an ``init`` dict may give (all of them), keyed like the attributes
_FACTORS = ("weight_concentration", "mean_precision", "means", "degrees_of_freedom", "covariances")


class VariationalGaussianMixture(MixtureMixin, EMEstimator):
    """Gaussian mixture fitted by variational Bayes (variational EM).

    Generative model (see :mod:`emkit.models.mixture.variational_model`)::

        weights ~ Dirichlet(alpha0) or truncated stick-breaking (Dirichlet process, K sticks)
        Lambda_k ~ Wishart(inv(covariance_prior), degrees_of_freedom_prior)
        mu_k | Lambda_k ~ Normal(mean_prior, (mean_precision_prior Lambda_k)^-1)
        z_i ~ Categorical(weights),  x_i | z_i = k ~ Normal(mu_k, Lambda_k^-1)

    scikit-learn's ``BayesianGaussianMixture`` with the same names, defaults, updates and
    bound, on the emkit engine: the ELBO after every step (``history_``, equal to
    scikit-learn's ``lower_bounds_`` from the same start), the monotonicity check,
    restarts, SQUAREM, chunked E-steps, and sample weights. The prior empties surplus components: with the
    Dirichlet-process prior and a small ``weight_concentration_prior`` the weights of
    components the data do not need go to about zero. The E-step runs the one Gaussian
    kernel on data centred at their mean (exact far from the origin).

    Parameters
    ----------
    n_components : int, default 1
        Number of components K (an upper bound: the prior may empty some).
    covariance_type : {"full", "diag", "tied", "spherical"}, default "full"
    tol : float, default 1e-3
        Stop when the ELBO rises by less than ``tol`` per sample (scikit-learn's ``tol``
        bounds the change of the total bound instead).
    reg_covar : float, default 1e-6
        Added to the diagonal of each component's scatter per unit of weight.
    max_iter : int, default 100
    n_init : int, default 1
        Restarts from independent seeds; the highest ELBO is kept.
    init : {"kmeans", "kmeans++", "random", "random_from_data"} or dict, default "kmeans"
        How to start (:mod:`emkit.models.init`). A dict gives ``{"resp": (n_samples,
        n_components)}`` starting responsibilities, or every starting factor
        ``{"weight_concentration", "mean_precision", "means", "degrees_of_freedom",
        "covariances"}`` (shaped like the fitted attributes), from which the first
        responsibilities are computed.
    init_params : str, optional
        scikit-learn's name for a method of ``init`` (giving both is an error);
        scikit-learn's spelling "k-means++" is accepted.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}
    weight_concentration_prior : float > 0, optional
        ``alpha0`` (default ``1 / n_components``).
    mean_precision_prior : float > 0, optional
        ``beta0`` (default 1).
    mean_prior : array-like of shape (n_features,), optional
        ``m0`` (default: the mean of X).
    degrees_of_freedom_prior : float > n_features - 1, optional
        ``nu0`` (default: n_features).
    covariance_prior : float or array-like, optional
        ``inv(W0)`` in the layout of one component's covariance: (D, D) full and tied,
        (D,) diag, a float spherical (default: the sample covariance of X, ddof=1).
    random_state : None, int or numpy Generator
    warm_start : bool, default False
        Start from the previous fit's factors (``n_init`` is then 1).
    batch_size : int, optional
        E-step over chunks of this many rows (same result, bounded memory).
    progress : bool, default False
    verbose : int, default 0
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the ELBO ever drops (which variational EM never does).
    accel : {None, "squarem"}, default None
        SQUAREM acceleration (Varadhan & Roland 2008): every point it keeps is a
        variational EM step from an extrapolated one and has at least the ELBO of the
        plain step, so the ELBO still never decreases; ``max_iter`` counts cycles.
    n_jobs : int, optional
        Run the ``n_init`` restarts on this many threads.
    executor, checkpoint, checkpoint_every
        Where the E-steps run (threads, a Dask cluster), and checkpoint / resume of
        the fit: as in :func:`emkit.em`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Posterior mean weights.
    means_ : ndarray of shape (n_components, n_features)
        Posterior mean of each component's mean (``m_k``).
    covariances_, precisions_, precisions_cholesky_ : ndarray
        ``inv(nu_k W_k)`` (the inverse of the posterior mean precision), its inverse and
        that inverse's Cholesky factor; shapes as ``GaussianMixture``.
    weight_concentration_ : ndarray
        (n_components,) Dirichlet parameters, or (2, n_components) the sticks' Beta
        parameters (``a, b = weight_concentration_`` as scikit-learn's tuple).
    mean_precision_ : ndarray of shape (n_components,)
    degrees_of_freedom_ : ndarray of shape (n_components,), or float for tied
    weight_concentration_prior_, mean_precision_prior_, mean_prior_,
    degrees_of_freedom_prior_, covariance_prior_ : the priors used
    elbo_ : float
        The ELBO of the fit, total over the samples, on scikit-learn's convention
        (without the constants that depend only on the priors and the data size).
    lower_bound_ : float
        ``elbo_`` (scikit-learn's name).
    history_ : ndarray of shape (n_iter_,)
        The ELBO after each step (scikit-learn's ``lower_bounds_``, also available
        under that name).
    converged_, n_iter_, n_features_in_

    Notes
    -----
    ``predict`` and ``predict_proba`` use the variational responsibilities (as
    scikit-learn); ``score_samples`` and ``score`` the density of the mixture with
    the posterior-mean parameters (``weights_``, ``means_``, ``covariances_``), a
    proper density, where scikit-learn's uses the variational expectations.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import VariationalGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-4, 1, (150, 2)), rng.normal(4, 1, (150, 2))])
    >>> vb = VariationalGaussianMixture(n_components=5, weight_concentration_prior=1e-3,
    ...                                 random_state=0).fit(X)
    >>> int(np.sum(vb.weights_ > 0.01))  # the prior empties the surplus components
    2
    >>> np.round(np.sort(vb.means_[vb.weights_ > 0.01, 0]))
    array([-4.,  4.])
    >>> bool(np.all(np.diff(vb.history_) >= 0))  # the ELBO never decreases
    True
    """

    _fitted_attributes = (
        "weights_",
        "means_",
        "covariances_",
        "precisions_cholesky_",
        "weight_concentration_",
        "mean_precision_",
        "degrees_of_freedom_",
        "converged_",
        "n_iter_",
        "history_",
        "elbo_",
        "n_features_in_",
    )
    _extra_attributes = (
        "lower_bound_",
        "fit_time_",
        "weight_concentration_prior_",
        "mean_precision_prior_",
        "mean_prior_",
        "degrees_of_freedom_prior_",
        "covariance_prior_",
    )

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init: str | Mapping[str, Any] = "kmeans",
        init_params: str | None = None,
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior: Any = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        batch_size: int | None = None,
        progress: bool = False,
        verbose: int = 0,
        check_monotone: str = "warn",
        accel: str | None = None,
        n_jobs: int | None = None,
        executor: Any = None,
        checkpoint: Any = None,
        checkpoint_every: int = 1,
    ):
        self._set_hyperparameters(locals())

    # ------------------------------------------------------------------ validation
    def _method(self):
        """``init`` or scikit-learn's ``init_params``: a method name or a dict."""
        if self.init_params is None:
            return self.init
        if self.init != "kmeans":
            raise ValueError("give either init or init_params (scikit-learn's name), not both")
        # scikit-learn spells k-means++ with a hyphen
        return "kmeans++" if self.init_params == "k-means++" else self.init_params

    def _check_hyperparameters(self, n_samples: int) -> None:
        from emkit._validation import check_init
        from emkit.models.init import INIT_METHODS

        check_int(self.n_components, "n_components", 1)
        check_choice(self.covariance_type, "covariance_type", VB_COVARIANCE_TYPES)
        check_choice(
            self.weight_concentration_prior_type,
            "weight_concentration_prior_type",
            WEIGHT_PRIOR_TYPES,
        )
        check_init(self._method(), INIT_METHODS)
        self._check_mixture_options(n_samples)

    def _prior(self, Xc: np.ndarray, w, shift: np.ndarray) -> VBPrior:
        """The priors in the centred coordinates of the fit (defaults from the data)."""
        D = Xc.shape[1]
        st = get_structure(self.covariance_type)
        alpha0 = _positive(self.weight_concentration_prior, "weight_concentration_prior")
        beta0 = _positive(self.mean_precision_prior, "mean_precision_prior")
        nu0 = self.degrees_of_freedom_prior
        if nu0 is None:
            nu0 = float(D)
        elif check_real(nu0, "degrees_of_freedom_prior") <= D - 1:
            raise ValueError(
                f"degrees_of_freedom_prior must be greater than n_features - 1 = {D - 1}, got {nu0}"
            )
        if self.mean_prior is None:
            m0 = np.zeros(D)
        else:
            m0 = np.asarray(self.mean_prior, dtype=np.float64)
            if m0.shape != (D,) or not np.all(np.isfinite(m0)):
                raise ValueError(
                    f"mean_prior must be a finite array of shape ({D},), got shape {m0.shape}"
                )
            m0 = m0 - shift
        one = st.shape(1, D)[0 if st.shared else 1 :]  # one component's layout
        if self.covariance_prior is None:
            sample = _sample_covariance(Xc, w)
            flat = np.flatnonzero(~(np.diag(sample) > 0))
            if flat.size:
                raise ValueError(
                    f"column {flat[0]} of X is constant, so the default covariance_prior "
                    "(the sample covariance) is singular; drop the column or give "
                    "covariance_prior"
                )
            c0 = st.from_full(sample[None])
        else:
            c0 = np.asarray(self.covariance_prior, dtype=np.float64)
            if c0.shape != one:
                raise ValueError(
                    f"covariance_prior must have shape {one} for covariance_type="
                    f"{self.covariance_type!r}, got {c0.shape}"
                )
            try:
                c0 = st.check(c0 if st.shared else c0[None], 1, D)
            except ValueError as exc:
                raise ValueError(f"covariance_prior: {exc}") from None
        c0 = c0 if st.shared else c0[0]
        alpha0 = 1.0 / self.n_components if alpha0 is None else alpha0
        return VBPrior(alpha0, 1.0 if beta0 is None else beta0, m0, float(nu0), c0)

    # ------------------------------------------------------------------ fitting
    def _model(self, prior: VBPrior) -> VariationalGaussianMixtureModel:
        method = self._method()
        return VariationalGaussianMixtureModel(
            self.n_components,
            self.covariance_type,
            prior,
            self.weight_concentration_prior_type,
            self.reg_covar,
            init=method if isinstance(method, str) else "kmeans",
        )

    def fit(self, X, y=None, sample_weight=None) -> VariationalGaussianMixture:
        """Estimate the variational posterior by variational EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts a row twice (in the statistics,
            the entropy of the responsibilities and the priors derived from the data).

        Returns
        -------
        self
        """
        from emkit._validation import check_gaussian_scale, check_sample_weight

        X = np.asarray(check_array(X, min_samples=2), dtype=np.float64)
        w = check_sample_weight(sample_weight, len(X))
        self._check_hyperparameters(len(X))
        if w is not None and np.count_nonzero(w) < self.n_components:
            raise ValueError(
                f"only {np.count_nonzero(w)} samples have positive weight, fewer than "
                f"n_components = {self.n_components}"
            )
        check_gaussian_scale(X, self.reg_covar)
        data, shift = self._centred_data(X, w, False)
        prior = self._prior(data[0], w, shift)
        model = self._model(prior)
        start = self._starting_params(model, data, shift)
        n_obs = float(len(X) if w is None else w.sum())
        result = self._run_engine(model, data, start, n_obs)
        # Everything is computed; only now is the estimator changed.
        self._store(model, result.params, shift, X.shape[1])
        self.elbo_ = self.lower_bound_ = float(result.objective)
        self._finish_fit(result, "variational EM")
        return self

    def _starting_params(self, model, data, shift) -> VBParams | None:
        """The start from ``init`` (a dict) or the previous fit (``warm_start``)."""
        Xc, w = data
        K, (N, D) = self.n_components, Xc.shape
        method = self._method()
        if self.warm_start and self.__sklearn_is_fitted__():
            given = self._given()
        elif isinstance(method, Mapping):
            if set(method) == {"resp"}:
                resp = np.asarray(method["resp"], dtype=np.float64)
                if resp.shape != (N, K):
                    raise ValueError(f"init resp must have shape ({N}, {K}), got {resp.shape}")
                if not np.all(np.isfinite(resp)) or np.any(resp < 0):
                    raise ValueError("init resp must be finite and non-negative")
                if not np.allclose(resp.sum(axis=1), 1.0):
                    raise ValueError("init resp: every row must sum to 1")
                return model.params_from_responsibilities(Xc, w, resp)
            if set(method) != set(_FACTORS):
                raise ValueError(
                    f"init dict must hold 'resp' alone or every starting factor "
                    f"{list(_FACTORS)}, got {sorted(method)}"
                )
            given = method
        else:
            return None
        params = self._factors(model, given, D, shift)
        return model.step_from(params, data)

    def _factors(
        self, model, given: Mapping[str, Any], D: int, centre, what: str = "init"
    ) -> VBParams:
        """Validated factors from attributes-like arrays, means taken about ``centre``
        (``what`` names them in errors)."""
        K = self.n_components
        st = model.structure
        conc = np.asarray(given["weight_concentration"], dtype=np.float64)
        beta = np.asarray(given["mean_precision"], dtype=np.float64)
        means = np.asarray(given["means"], dtype=np.float64)
        nu = np.broadcast_to(np.asarray(given["degrees_of_freedom"], dtype=np.float64), (K,))
        shapes = {
            "weight_concentration": (conc.shape, (2, K) if model.stick_breaking else (K,)),
            "mean_precision": (beta.shape, (K,)),
            "means": (means.shape, (K, D)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"{what} {name} must have shape {want}, got {got}")
        for name, value in (("weight_concentration", conc), ("mean_precision", beta)):
            if not np.all(value > 0) or not np.all(np.isfinite(value)):
                raise ValueError(f"{what} {name} must be finite and positive")
        if not np.all(np.isfinite(means)):
            raise ValueError(f"{what} means must be finite")
        if not np.all(nu > D - 1) or not np.all(np.isfinite(nu)):
            raise ValueError(f"{what} degrees_of_freedom must be finite and greater than {D - 1}")
        cov = st.check(given["covariances"], K, D)
        return VBParams(
            conc, beta, means - centre, nu.copy(), cov, st.precision_cholesky(cov), np.zeros(())
        )

    def _store(self, model, p: VBParams, shift, n_features: int) -> None:
        prior = model.prior
        st = model.structure
        self.weights_ = model.mean_weights(p.weight_concentration)
        self.means_ = p.means + shift
        self.covariances_ = p.covariances
        self.precisions_cholesky_ = p.precisions_cholesky
        self.weight_concentration_ = p.weight_concentration
        self.mean_precision_ = p.mean_precision
        nu = np.asarray(p.degrees_of_freedom)
        self.degrees_of_freedom_ = float(nu[0]) if st.shared else nu
        self.weight_concentration_prior_ = prior.weight_concentration
        self.mean_precision_prior_ = prior.mean_precision
        self.mean_prior_ = prior.mean + shift
        self.degrees_of_freedom_prior_ = prior.degrees_of_freedom
        c0 = prior.covariance
        self.covariance_prior_ = float(c0) if np.ndim(c0) == 0 else c0
        self.n_features_in_ = n_features

    def _check_fitted_state(self) -> None:
        self._check_float_arrays(
            ("weights_", "means_", "covariances_", "precisions_cholesky_", "mean_precision_")
        )
        K, D = self.means_.shape if self.means_.ndim == 2 else (-1, -1)
        shape = get_structure(self.covariance_type).shape(K, D)
        conc = np.shape(self.weight_concentration_)
        stick = self.weight_concentration_prior_type == "dirichlet_process"
        if (
            K != self.n_components
            or D != self.n_features_in_
            or self.weights_.shape != (K,)
            or self.covariances_.shape != shape
            or self.precisions_cholesky_.shape != shape
            or conc != ((2, K) if stick else (K,))
            or self.mean_precision_.shape != (K,)
        ):
            raise ValueError("fitted arrays have inconsistent shapes")
        check_fitted_mixture(self, get_structure(self.covariance_type))
        self._factors(self._model(self._fitted_prior(0.0)), self._given(), D, 0.0, "fitted")

    # ------------------------------------------------------------------ prediction
    @property
    def precisions_(self) -> np.ndarray:
        """Inverse of ``covariances_`` (the posterior mean precisions)."""
        self._check_is_fitted()
        return get_structure(self.covariance_type).precisions(self.precisions_cholesky_)

    @property
    def lower_bounds_(self) -> np.ndarray:
        """The ELBO after each step (scikit-learn's name for ``history_``)."""
        self._check_is_fitted()
        return self.history_

    def _fitted_prior(self, centre) -> VBPrior:
        """The priors of the fit, the mean prior taken about ``centre``."""
        return VBPrior(
            self.weight_concentration_prior_,
            self.mean_precision_prior_,
            np.asarray(self.mean_prior_) - centre,
            self.degrees_of_freedom_prior_,
            np.asarray(self.covariance_prior_),
        )

    def _given(self) -> dict[str, Any]:
        """The fitted factors, keyed like an ``init`` dict."""
        return {name: getattr(self, f"{name}_") for name in _FACTORS}

    def _fitted(self, centre):
        """The model (with the fitted priors) and the factors, means taken about ``centre``."""
        model = self._model(self._fitted_prior(centre))
        return model, self._factors(model, self._given(), self.n_features_in_, centre)

    def _centre(self) -> np.ndarray:
        return np.asarray(self.weights_) @ np.asarray(self.means_)

    def _validated(self, X) -> np.ndarray:
        self._check_is_fitted()
        X = np.asarray(check_array(X), dtype=np.float64)
        self._check_n_features(X)
        return X

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        """``E[log weights_k] + E[log N(x | k)]``: the variational responsibilities' logs."""
        centre = self._centre()
        model, params = self._fitted(centre)
        with np.errstate(over="ignore", invalid="ignore"):  # far points: see _safe_log_joint
            return model.log_resp(params, np.asfortranarray(X - centre))

    def score_samples(self, X) -> np.ndarray:
        """Log-density of each sample under the posterior-mean mixture, (n_samples,)."""
        from emkit._logspace import log_normalize

        X = self._validated(X)
        centre = self._centre()
        model, params = self._fitted(centre)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights_)
        with np.errstate(over="ignore", invalid="ignore"):
            lp = model.kernel.log_densities(
                params.means, params.precisions_cholesky, np.asfortranarray(X - centre), log_w
            )[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            far = ~np.isfinite(lp.max(axis=1))  # every density underflows
            out = log_normalize(lp)
        out[far] = -np.inf
        return out

    def _mahalanobis_shape(self) -> tuple[np.ndarray, np.ndarray]:
        """Means and full posterior mean precisions: where a far point belongs (the
        quadratic term of the expected log-densities dominates there)."""
        st = get_structure(self.covariance_type)
        K, D = self.means_.shape
        return np.asarray(self.means_), st.to_full(st.precisions(self.precisions_cholesky_), K, D)

    def _free_parameters(self, n_features: int, n_components: int | None = None) -> int:
        K, D = n_components or self.n_components, n_features
        return (K - 1) + K * D + get_structure(self.covariance_type).n_parameters(K, D)

    def _n_parameters(self) -> int:
        return self._free_parameters(self.n_features_in_)

    def _sample_component(self, rng: np.random.Generator, k: int, n: int) -> np.ndarray:
        K, D = self.means_.shape
        st = get_structure(self.covariance_type)
        cov_k = st.to_full(np.asarray(self.covariances_, dtype=np.float64), K, D)[k]
        return st.sample(rng, np.asarray(self.means_[k], dtype=np.float64), cov_k, n)


def _sample_covariance(X: np.ndarray, w) -> np.ndarray:
    """(D, D) covariance of centred rows, ``sum w x x' / (sum w - 1)`` (``np.cov``'s with
    frequency weights, so a weight of 2 equals a repeated row)."""
    if w is None:
        return np.atleast_2d(np.cov(X.T))
    return (X.T * w) @ X / (w.sum() - 1.0)


def _positive(value: Any, name: str) -> float | None:
    """None, or a finite number > 0."""
    if value is None:
        return None
    value = check_real(value, name)
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
