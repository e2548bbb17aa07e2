"""``emkit.StudentTMixture``: the scikit-learn-compatible Student-t mixture estimator.

A front of the one mixture machinery: it runs
:class:`~emkit.models.mixture.student_t_model.StudentTMixtureModel`, which is
:class:`~emkit.models.mixture.model.MixtureModel` with
:class:`~emkit.distributions.StudentT` components, so it fits, re-seeds collapsed
components and accelerates exactly as ``emkit.Mixture(StudentT(...))`` does.

Two algorithms, both monotone in the observed-data log-likelihood:

* **ECM** (Meng & Rubin 1993; here an ordinary EM, because the expected complete-data
  log-likelihood ``Q`` separates): the M-step sets the weights, then the locations and
  scales given the ``u_ik``, then each ``nu_k`` as the root of the score equation of
  ``Q`` in ``nu_k`` (concave, so the root is the maximiser), confined to
  :data:`DOF_BOUNDS`.
* **ECME** (Liu & Rubin 1994, 1995; Peel & McLachlan 2000): after that M-step the
  ``nu_k`` maximise the *observed-data* log-likelihood of the mixture at the new
  weights, locations and scales: the engine's :class:`~emkit.engine.ecme.ECME` scheme
  asks the model for this step, which makes a few passes over the data on the engine's
  executor (only parameters go out, sums come back). ``nu`` converges much faster than
  under ECM.

With a fixed ``dof`` only location and scale are estimated and ECM and ECME coincide;
as ``dof`` grows the model tends to a Gaussian mixture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from emkit._validation import check_array, check_int
from emkit.distributions.base import component
from emkit.distributions.student_t import DOF_BOUNDS, check_dof, scale_structure
from emkit.engine.ecme import ECME
from emkit.models.estimator import EMEstimator
from emkit.models.mixture.base import MixtureMixin, check_fitted_mixture
from emkit.models.mixture.model import MixtureParams
from emkit.models.mixture.student_t_model import StudentTMixtureModel

__all__ = ["DOF_BOUNDS", "StudentTMixture"]

ALGORITHMS = ("ecme", "ecm")


class StudentTMixture(MixtureMixin, EMEstimator):
    """Mixture of multivariate Student-t distributions, fitted by ECME or ECM.

    Generative model::

        z_i ~ Categorical(weights)
        u_i | z_i = k ~ Gamma(dofs[k] / 2, rate=dofs[k] / 2)
        x_i | z_i = k, u_i ~ Normal(means[k], covariances[k] / u_i)

    Each component is a multivariate t with location ``means[k]``, scale matrix
    ``covariances[k]`` (its covariance is ``dofs/(dofs - 2)`` times the scale, for
    ``dofs > 2``) and ``dofs[k]`` degrees of freedom. Heavy tails make the fit robust
    to outliers; as ``dofs`` grows it tends to a Gaussian mixture.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K.
    covariance_type : {"full", "diag"}, default "full"
        Structure of the scale matrices.
    dof : "estimate" or float, default "estimate"
        Estimate each component's degrees of freedom (within ``[0.1, 1e6]``,
        :data:`DOF_BOUNDS`), or fix them all at this positive value.
    algorithm : {"ecme", "ecm"}, default "ecme"
        How the degrees of freedom are updated: ECME maximises the observed-data
        log-likelihood (a few extra passes over the data per iteration, far fewer
        iterations); ECM maximises the expected complete-data log-likelihood (one
        pass per iteration). Both are monotone; they coincide when ``dof`` is fixed.
    tol : float, default 1e-3
        Stop when the mean log-likelihood per sample rises by less than ``tol``.
    reg_covar : float, default 1e-6
        Added to the diagonal of every scale matrix.
    max_iter : int, default 100
        Maximum number of iterations (full ECM/ECME cycles).
    n_init : int, default 1
        Restarts from independent seeds; the best log-likelihood is kept.
    init : {"kmeans++", "kmeans", "random", "random_from_data"} or dict, default "kmeans++"
        How to start. A dict gives starting parameters ``{"weights", "means",
        "covariances", "dofs"}`` (any subset; the rest comes from "kmeans++", and
        estimated degrees of freedom start at 10). Starting ``dofs`` are clipped into
        :data:`DOF_BOUNDS`; with a fixed ``dof`` they must equal it.
    random_state : None, int or numpy Generator
        Seed of every random choice (initialisation, restarts, ``sample``).
    warm_start : bool, default False
        Start from the previous fit's parameters (``n_init`` is then 1).
    batch_size : int, optional
        E-step (and ECME passes) over chunks of this many rows.
    progress : bool, default False
        Show a progress bar with the log-likelihood.
    verbose : int, default 0
        1 prints a summary of each fit; 2 also prints every iteration.
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the log-likelihood ever drops (which ECM and ECME never do).
    accel : {None, "squarem"}, default None
        Acceleration of the ECM iteration (not available with ``algorithm="ecme"``).
    n_jobs : int, optional
        Run the ``n_init`` restarts on this many threads.
    fixed : dict or collection of str, optional
        Parameters held fixed while ECM maximises the others given them: a dict with any
        of ``"weights"``, ``"means"``, ``"covariances"`` (scales) or ``"dofs"`` (values
        checked like ``init``'s and used in every start), or a collection of those names
        (held at their starting values). The CM-steps of the others are exact given the
        held ones (held locations: scales ``sum w u (x - m)(x - m)' / sum w`` about
        them). With locations, scales or dofs held, ECME's observed-data step for the
        dofs is left out (its joint step over all components would move held values):
        the fit is ECM.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Locations of the components.
    covariances_ : ndarray
        Scale matrices: (K, D, D) full, (K, D) diag.
    dofs_ : ndarray of shape (n_components,)
        Degrees of freedom.
    precisions_cholesky_ : ndarray, same shape as ``covariances_``
        ``U`` with ``inv(scale) = U @ U.T``.
    converged_ : bool
    n_iter_ : int
    history_ : ndarray of shape (n_iter_,)
        Total log-likelihood after each iteration.
    loglik_ : float
        Total (weighted) log-likelihood of the training data at the fitted parameters.
    lower_bound_ : float
        ``loglik_`` per sample.
    n_estep_ : int
        Passes over the data of the kept run (E-steps and ECME's extra passes).
    n_features_in_ : int

    References
    ----------
    McLachlan, G. J. & Peel, D. (2000). *Finite Mixture Models*, ch. 7. Wiley.
    Liu, C. & Rubin, D. B. (1995). ML estimation of the t distribution using EM and
    its extensions, ECM and ECME. *Statistica Sinica* 5, 19-39.
    Peel, D. & McLachlan, G. J. (2000). Robust mixture modelling using the t
    distribution. *Statistics and Computing* 10, 339-348.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.models.mixture.student_t import StudentTMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.standard_t(3, (300, 2)) - 4, rng.standard_t(3, (300, 2)) + 4])
    >>> tm = StudentTMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(tm.means_[:, 0]))
    array([-4.,  4.])
    >>> bool(np.all((tm.dofs_ > 1.5) & (tm.dofs_ < 6)))
    True
    """

    _fitted_attributes = (
        "weights_",
        "means_",
        "covariances_",
        "dofs_",
        "precisions_cholesky_",
        *EMEstimator.FIT_RECORD,
    )
    _extra_attributes = ("lower_bound_", "fit_time_", "n_estep_")

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        dof: str | float = "estimate",
        algorithm: str = "ecme",
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
        n_jobs: int | None = None,
        fixed: Any = None,
    ):
        self._set_hyperparameters(locals())

    _fixed_paths: ClassVar[Mapping[str, str]] = {
        **MixtureMixin._fixed_paths,
        "dofs": "components.dof",
    }

    def _model_value(self, model, name: str, value: np.ndarray) -> Any:
        return value  # every array is in the model's layout

    # ------------------------------------------------------------------ fitting
    def _model(self) -> StudentTMixtureModel:
        init = self.init if isinstance(self.init, str) else "kmeans++"
        return StudentTMixtureModel(
            self.n_components, self.covariance_type, self.reg_covar, dof=self.dof, init=init
        )

    def _check_hyperparameters(self, n_samples: int) -> None:
        check_int(self.n_components, "n_components", 1)
        scale_structure(self.covariance_type)
        fixed = check_dof(self.dof)
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        self._check_mixture_options(n_samples)
        if self.accel not in (None, "squarem"):
            raise ValueError(f"accel must be None or 'squarem', got {self.accel!r}")
        if self.accel is not None and self.algorithm == "ecme" and fixed is None:
            raise ValueError(
                "accel='squarem' accelerates ECM; it cannot be combined with algorithm='ecme' "
                "(use algorithm='ecm', or accel=None)"
            )

    def _params_from_dict(self, values: Mapping[str, Any], D: int) -> dict[str, np.ndarray]:
        """Validate a user's starting parameters (any subset of weights/means/covariances/dofs)."""
        K = self.n_components
        out = self._init_dict(values, D, extra=("dofs",))
        if "dofs" in values:
            nu = np.asarray(values["dofs"], dtype=np.float64)
            if nu.shape != (K,):
                raise ValueError(f"init dofs must have shape ({K},), got {nu.shape}")
            if not np.all(np.isfinite(nu)) or np.any(nu <= 0):
                raise ValueError("init dofs must be finite and positive")
            fixed = check_dof(self.dof)
            if fixed is not None and not np.allclose(nu, fixed, rtol=1e-12, atol=0):
                raise ValueError(
                    f"init dofs {nu.tolist()} contradict the fixed dof={fixed}; leave 'dofs' "
                    "out of init or use dof='estimate'"
                )
            out["dofs"] = nu
        return out

    def _starting_params(self, model, Xc, w, shift, rng) -> MixtureParams | None:
        if self.warm_start and self.__sklearn_is_fitted__():
            given = {
                "weights": self.weights_,
                "means": self.means_,
                "covariances": self.covariances_,
                "dofs": self.dofs_,
            }
            if not model.estimate_dofs:
                del given["dofs"]
        elif isinstance(self.init, Mapping):
            given = self._params_from_dict(self.init, Xc.shape[1])
        else:
            return None
        given = {k: np.asarray(v, dtype=np.float64) for k, v in given.items()}
        if "means" in given:
            given["means"] = given["means"] - shift
        if not {"weights", "means", "covariances"} <= set(given):
            base = model.arrays(model.init_params((Xc, w), rng))
            del base["dofs"]  # estimated dofs start at DEFAULT_START_DOF unless given
            given = {**base, **given}
        return model.params(
            given["weights"], given["means"], given["covariances"], given.get("dofs")
        )

    def fit(self, X, y=None, sample_weight=None) -> StudentTMixture:
        """Estimate the parameters by ECME or ECM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts a row twice.

        Returns
        -------
        self
        """
        ecme = self.algorithm == "ecme" and check_dof(self.dof) is None
        result, shift, X, n_obs = self._run_em(
            X,
            sample_weight,
            scheme=ECME() if ecme else None,
            accel=None if ecme else self.accel,
        )
        arrays = self._model().arrays(result.params)
        dtype = X.dtype
        held_means = self._held_means(X.shape[1])
        # Everything is computed; only now is the estimator changed.
        self.weights_ = arrays["weights"].astype(dtype)
        self.means_ = (arrays["means"] + shift if held_means is None else held_means).astype(dtype)
        self.covariances_ = arrays["covariances"].astype(dtype)
        self.dofs_ = arrays["dofs"].astype(dtype)
        self.precisions_cholesky_ = arrays["precisions_cholesky"].astype(dtype)
        self.loglik_ = float(result.loglik)
        self.lower_bound_ = self.loglik_ / n_obs
        self.n_estep_ = int(result.n_estep)
        self.n_features_in_ = X.shape[1]
        self._finish_fit(result, self.algorithm.upper())
        return self

    def _check_fitted_state(self) -> None:
        self._check_float_arrays(
            ("weights_", "means_", "covariances_", "precisions_cholesky_", "dofs_")
        )
        K, D = self.means_.shape if self.means_.ndim == 2 else (-1, -1)
        shape = scale_structure(self.covariance_type).shape(K, D)
        if (
            K != self.n_components
            or D != self.n_features_in_
            or self.weights_.shape != (K,)
            or self.dofs_.shape != (K,)
            or self.covariances_.shape != shape
            or self.precisions_cholesky_.shape != shape
        ):
            raise ValueError("fitted arrays have inconsistent shapes")
        check_fitted_mixture(self, scale_structure(self.covariance_type))
        if np.any(self.dofs_ <= 0):
            raise ValueError("dofs_ must be positive")

    # ------------------------------------------------------------------ prediction
    def _params(self, centre: Any = 0.0) -> MixtureParams:
        """The fitted parameters (float64), with the locations taken about ``centre``."""
        self._check_is_fitted()
        comp = self._model().component
        weights = np.asarray(self.weights_, dtype=np.float64)
        return MixtureParams(
            weights,
            comp.params_type(
                np.asarray(self.means_, dtype=np.float64) - centre,
                np.asarray(self.covariances_, dtype=np.float64),
                np.asarray(self.dofs_, dtype=np.float64),
            ),
        )

    def _validated(self, X) -> np.ndarray:
        self._check_is_fitted()
        X = check_array(X)
        self._check_n_features(X)
        return X

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        # Evaluate in centred coordinates (the locations' weighted mean), as in the fit.
        centre = np.asarray(self.weights_, dtype=np.float64) @ np.asarray(
            self.means_, dtype=np.float64
        )
        lp = self._model().log_joint(self._params(centre), X - centre)
        return lp.astype(X.dtype, copy=False)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return (K - 1) + self._model().component.n_parameters(K, D)

    def _fitted_variances(self, model, params) -> np.ndarray:
        arrays = model.arrays(params)
        K, D = np.shape(arrays["means"])
        full = scale_structure(self.covariance_type).to_full(arrays["covariances"], K, D)
        return np.diagonal(full, 0, -2, -1)

    def _mahalanobis_shape(self) -> tuple[np.ndarray, np.ndarray]:
        st = scale_structure(self.covariance_type)
        K, D = self.means_.shape
        prec = st.precisions(np.asarray(self.precisions_cholesky_, dtype=np.float64))
        return np.asarray(self.means_, dtype=np.float64), st.to_full(prec, K, D)

    def _sample_component(self, rng: np.random.Generator, k: int, n: int) -> np.ndarray:
        """``mean + z / sqrt(g)``, ``z ~ N(0, scale)``, ``g ~ chi2(dof) / dof``."""
        p = self._params()
        draws = self._model().component.sample(component(p.components, k), n, rng)
        return draws.astype(self.means_.dtype)
