"""hmmlearn's ``GaussianHMM`` and ``GMMHMM`` on emkit's Gaussian emissions.

hmmlearn's priors (its MAP M-step, with its own conventions for each covariance type
and its defaults) are translated here, once, into the prior of emkit's emissions
(:class:`~emkit.models.hmm.emissions._gaussian_map.GaussianPrior`), whose M-step
is the exact maximiser of log-likelihood plus log-prior.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.cluster import KMeans

from emkit.compat.hmmlearn._base import (
    MODULE,
    ConvergenceMonitor,
    InvalidChoice,
    _HMMLearnFront,
)
from emkit.distributions.covariance import get_structure
from emkit.models.hmm.emissions import GaussianEmission, GaussianMixtureEmission
from emkit.models.hmm.emissions._gaussian_map import GaussianPrior

__all__ = ["GMMHMM", "GaussianHMM"]

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
#: hmmlearn's inverse-Wishart degrees of freedom are counted from the dimension of one
#: covariance block: 1 for variances, D for matrices
_MATRIX_TYPES = ("full", "tied")


def _check_type(covariance_type: str) -> None:
    if covariance_type not in COVARIANCE_TYPES:
        raise InvalidChoice(
            f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}"
        )


def _data_covariance(X: np.ndarray, min_covar: float) -> np.ndarray:
    """hmmlearn's starting covariance: the data's, plus ``min_covar`` on the diagonal."""
    D = X.shape[1]
    return np.cov(X.T).reshape(D, D) + min_covar * np.eye(D)


def _check_width(model: _HMMLearnFront, X: np.ndarray) -> None:
    n = getattr(model, "n_features", None)
    if n is not None and n != X.shape[1]:
        raise ValueError(f"Unexpected number of dimensions, got {X.shape[1]} but expected {n}")


def _full(values: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        return np.array(np.broadcast_to(np.asarray(values, dtype=np.float64), shape))
    except ValueError:
        raise ValueError(f"{name} must be a number or broadcast to shape {shape}") from None


def _per_state(values: Any, K: int, name: str) -> np.ndarray:
    """A number or one value per state (shape (K,) or (K, 1))."""
    w = np.asarray(values, dtype=np.float64)
    if w.size == 1:
        return np.full(K, float(w.ravel()[0]))
    if w.size == K and w.shape in ((K,), (K, 1)):
        return w.reshape(K)
    raise ValueError(f"{name} must be a number or have shape ({K},), got {w.shape}")


class GaussianHMM(_HMMLearnFront):
    """Hidden Markov model with Gaussian emissions, with hmmlearn's interface.

    The constructor, defaults, attributes and methods are those of
    ``hmmlearn.hmm.GaussianHMM``; the EM steps run on emkit's engine
    (:class:`emkit.HMM`'s model), with hmmlearn's start, its ``params`` letters (a
    letter left out holds that parameter fixed) and its MAP M-step (Dirichlet priors
    on ``startprob_`` and the rows of ``transmat_``, a normal prior of weight
    ``means_weight`` on the means and an inverse-gamma / inverse-Wishart prior on the
    covariances). From the same start both libraries take the same steps and stop at
    the same iteration.

    Parameters
    ----------
    n_components : int, default 1
    covariance_type : {"spherical", "diag", "full", "tied"}, default "diag"
    min_covar : float, default 1e-3
        Added to the diagonal of the data's covariance that starts the covariances.
    startprob_prior, transmat_prior : float or array-like, default 1.0
        Dirichlet pseudo-counts (each >= 1 here; hmmlearn also takes values below 1).
    means_prior, means_weight : float or array-like, default 0
        Mean and weight (per state) of the normal prior on the means.
    covars_prior, covars_weight : float or array-like, default 1e-2 and 1
        The covariance prior as hmmlearn writes it: added to the scatter, and
        ``max(covars_weight - 1, 0)`` ("spherical", "diag") or
        ``max(covars_weight - n_features, 0)`` ("full", "tied") added to the counts.
    algorithm : {"viterbi", "map"}, default "viterbi"
        What ``decode`` and ``predict`` use.
    random_state : None, int or numpy RandomState
    n_iter : int, default 10
    tol : float, default 1e-2
        Stop when the total log-likelihood rises by less (hmmlearn's rule, through
        ``monitor_``).
    verbose : bool, default False
        Print each iteration to stderr.
    params, init_params : str, default "stmc"
        Letters of the parameters to update / to start afresh (s: startprob, t:
        transmat, m: means, c: covars); parameters not in ``init_params`` that are set
        keep their values.
    implementation : {"log", "scaling"}, default "log"
        Accepted for compatibility; emkit's kernels are used either way.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    means_ : ndarray of shape (n_components, n_features)
    covars_ : ndarray of shape (n_components, n_features, n_features)
        Full matrices, whatever the type (as hmmlearn returns them); set it in the
        type's shape: (K,) spherical, (K, D) diag, (K, D, D) full, (D, D) tied.
    n_features : int
    monitor_ : ConvergenceMonitor

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.compat.hmmlearn import GaussianHMM
    >>> model = GaussianHMM(n_components=2, covariance_type="full")
    >>> model.startprob_ = np.array([0.6, 0.4])
    >>> model.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> model.means_ = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> model.covars_ = np.tile(np.eye(2), (2, 1, 1))
    >>> X, Z = model.sample(200, random_state=0)
    >>> bool((model.predict(X) == Z).mean() > 0.95)
    True
    >>> refit = GaussianHMM(n_components=2, n_iter=50, random_state=0).fit(X)
    >>> np.round(np.sort(refit.means_[:, 0]))
    array([0., 5.])
    """

    __module__ = MODULE
    emission = "gaussian"
    _letters: ClassVar[dict[str, str]] = {
        "s": "startprob",
        "t": "transmat",
        "m": "means",
        "c": "covariances",
    }
    _names: ClassVar[dict[str, str]] = {"means": "means_", "covariances": "_covars_"}

    def __init__(
        self,
        n_components=1,
        covariance_type="diag",
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        means_prior=0,
        means_weight=0,
        covars_prior=1e-2,
        covars_weight=1,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmc",
        init_params="stmc",
        implementation="log",
    ):
        self._set_hyperparameters(locals())
        self.monitor_ = ConvergenceMonitor(tol, n_iter, verbose)

    @property
    def covars_(self) -> np.ndarray:
        """Covariances as full (n_components, n_features, n_features) matrices."""
        _check_type(self.covariance_type)
        D = self._n_features() if hasattr(self, "means_") else _width(self._covars_)
        st = get_structure(self.covariance_type)
        return st.to_full(self._covars_, self.n_components, D)

    @covars_.setter
    def covars_(self, covars) -> None:
        _check_type(self.covariance_type)
        cov = np.array(covars, dtype=np.float64)
        if self.covariance_type == "spherical" and cov.ndim == 2:  # hmmlearn's (K, D) tiles
            cov = cov.mean(axis=1)
        st = get_structure(self.covariance_type)
        self._covars_ = st.check(cov, self.n_components, _width(cov))

    def _start_emission(self, X: np.ndarray) -> dict[str, Any]:
        _check_type(self.covariance_type)
        _check_width(self, X)
        K = self.n_components
        values = {}
        if self._needs_init("m", "means_"):
            kmeans = KMeans(n_clusters=K, random_state=self.random_state, n_init=10)
            values["means"] = kmeans.fit(X).cluster_centers_
        else:
            values["means"] = self.means_
        if self._needs_init("c", "_covars_"):
            cv = _data_covariance(X, self.min_covar)
            if self.covariance_type == "spherical":  # hmmlearn: the mean of every entry
                values["covariances"] = np.full(K, cv.mean())
            else:
                st = get_structure(self.covariance_type)
                values["covariances"] = st.from_full(np.broadcast_to(cv, (K, *cv.shape)))
        else:
            values["covariances"] = self._covars_
        return {"values": values}

    def _emission_part(self, X=None, shift=None, prior: bool = False) -> GaussianEmission:
        _check_type(self.covariance_type)
        D = self._n_features() if X is None else X.shape[1]
        return GaussianEmission(self.covariance_type, 0.0, shift, self._prior(D) if prior else None)

    def _prior(self, D: int) -> GaussianPrior:
        """hmmlearn's priors as emkit's, per state."""
        K, ct = self.n_components, self.covariance_type
        weight = np.asarray(self.covars_weight, dtype=np.float64)
        if weight.size != 1:
            raise ValueError("covars_weight must be a number")
        block = D if ct in _MATRIX_TYPES else 1
        dof = np.full(K, max(float(weight.ravel()[0]) - block, 0.0))
        if ct in _MATRIX_TYPES:
            psi = _full(self.covars_prior, (K, D, D) if ct == "full" else (D, D), "covars_prior")
        else:
            psi = _full(self.covars_prior, (K, D), "covars_prior")[:, :, None] * np.eye(D)
        if get_structure(ct).shared:  # one prior for the shared matrix, spread over states
            psi, dof = np.broadcast_to(psi / K, (K, D, D)), dof / K
        return GaussianPrior(
            _full(self.means_prior, (K, D), "means_prior"),
            _per_state(self.means_weight, K, "means_weight"),
            np.array(psi),
            dof,
        )

    def _drawer(self):
        means, covars = np.asarray(self.means_), self.covars_
        return lambda state, rs: rs.multivariate_normal(means[state], covars[state])


def _width(cov: np.ndarray) -> int:
    """Number of features that covariances in a type's shape imply (1 for (K,))."""
    return int(np.shape(cov)[-1]) if np.ndim(cov) >= 2 else 1


class GMMHMM(_HMMLearnFront):
    """Hidden Markov model with a Gaussian mixture per state, with hmmlearn's interface.

    The constructor, defaults, attributes and methods are those of
    ``hmmlearn.hmm.GMMHMM``, on emkit's GMM emission (:class:`emkit.HMM` with
    ``emission="gmm"``) and engine. As hmmlearn, the M-step takes the covariances
    about the means of the E-step (a conditional maximisation before the means) and
    applies hmmlearn's priors with their defaults (which for "spherical" divide the
    scatter by ``n_features * (n + 1) - n_mix``).

    Parameters
    ----------
    n_components : int, default 1
    n_mix : int, default 1
        Gaussians per state.
    min_covar : float, default 1e-3
    startprob_prior, transmat_prior, weights_prior : float or array-like, default 1.0
        Dirichlet pseudo-counts (each >= 1 here).
    means_prior, means_weight : float or array-like, default 0.0
    covars_prior, covars_weight : float or array-like, optional
        hmmlearn's covariance priors and its defaults for each type.
    algorithm : {"viterbi", "map"}, default "viterbi"
    covariance_type : {"spherical", "diag", "full", "tied"}, default "diag"
        "tied": the components of a state share one covariance.
    random_state, n_iter, tol, verbose, implementation
        As :class:`GaussianHMM`.
    params, init_params : str, default "stmcw"
        As :class:`GaussianHMM`, with w for the mixture weights.

    Attributes
    ----------
    startprob_, transmat_
    weights_ : ndarray of shape (n_components, n_mix)
    means_ : ndarray of shape (n_components, n_mix, n_features)
    covars_ : ndarray
        (K, M) spherical, (K, M, D) diag, (K, M, D, D) full, (K, D, D) tied.
    n_features : int
    monitor_ : ConvergenceMonitor
    """

    __module__ = MODULE
    emission = "gmm"
    _letters: ClassVar[dict[str, str]] = {
        "s": "startprob",
        "t": "transmat",
        "m": "means",
        "c": "covariances",
        "w": "weights",
    }
    _names: ClassVar[dict[str, str]] = {
        "weights": "weights_",
        "means": "means_",
        "covariances": "_covars_",
    }

    def __init__(
        self,
        n_components=1,
        n_mix=1,
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        weights_prior=1.0,
        means_prior=0.0,
        means_weight=0.0,
        covars_prior=None,
        covars_weight=None,
        algorithm="viterbi",
        covariance_type="diag",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmcw",
        init_params="stmcw",
        implementation="log",
    ):
        self._set_hyperparameters(locals())
        self.monitor_ = ConvergenceMonitor(tol, n_iter, verbose)

    @property
    def covars_(self) -> np.ndarray:
        return self._covars_

    @covars_.setter
    def covars_(self, covars) -> None:
        self._covars_ = np.array(covars, dtype=np.float64)

    def _n_features(self) -> int:
        return int(np.shape(self.means_)[-1])

    def _start_emission(self, X: np.ndarray) -> dict[str, Any]:
        _check_type(self.covariance_type)
        _check_width(self, X)
        K, M, D = self.n_components, self.n_mix, X.shape[1]
        # hmmlearn's start: k-means into K clusters, then into M within each (always run,
        # so the random stream is the same whatever init_params holds)
        main = KMeans(n_clusters=K, random_state=self.random_state, n_init=10)
        labels = main.fit_predict(X)
        centroid = main.cluster_centers_.mean(axis=0)
        cv = None
        means = []
        for label in range(K):
            rows = X[labels == label]
            if len(rows) >= M:
                sub = KMeans(n_clusters=M, random_state=self.random_state, n_init=10)
                means.append(sub.fit(rows).cluster_centers_)
            else:  # hmmlearn draws these from numpy's global stream
                cv = _data_covariance(X, self.min_covar) if cv is None else cv
                means.append(np.random.multivariate_normal(centroid, cov=cv, size=M))  # noqa: NPY002
        values = {
            "weights": np.full((K, M), 1.0 / M) if self._needs_init("w", "weights_") else None,
            "means": np.stack(means) if self._needs_init("m", "means_") else None,
            "covariances": None,
        }
        if self._needs_init("c", "_covars_"):
            cv = _data_covariance(X, self.min_covar) if cv is None else cv
            per_component = {
                "spherical": np.full((K, M), cv.mean()),
                "diag": np.broadcast_to(np.diag(cv), (K, M, D)),
                "full": np.broadcast_to(cv, (K, M, D, D)),
                "tied": np.broadcast_to(cv, (K, D, D)),
            }
            values["covariances"] = np.array(per_component[self.covariance_type])
        for key, name in self._names.items():
            if values[key] is None:
                values[key] = getattr(self, name)
        return {"values": values}

    def _emission_part(self, X=None, shift=None, prior: bool = False):
        _check_type(self.covariance_type)
        D = self._n_features() if X is None else X.shape[1]
        K, M = self.n_components, self.n_mix
        return GaussianMixtureEmission(
            M,
            self.covariance_type,
            0.0,
            shift,
            prior=self._prior(D) if prior else None,
            weights_prior=_full(self.weights_prior, (K, M), "weights_prior"),
            about_previous=True,
        )

    def _prior(self, D: int) -> GaussianPrior:
        """hmmlearn's GMMHMM priors (and their defaults) over the K*M Gaussians."""
        K, M, ct = self.n_components, self.n_mix, self.covariance_type
        cp, cw = self.covars_prior, self.covars_weight
        eye = np.eye(D)
        if ct == "full":
            psi = _full(0.0 if cp is None else cp, (K, M, D, D), "covars_prior")
            nu = _full(-(D + 2.0) if cw is None else cw, (K, M), "covars_weight")
            psi, dof = np.swapaxes(psi, -1, -2), 1.0 + nu + D + 1.0
        elif ct == "tied":
            psi = _full(0.0 if cp is None else cp, (K, D, D), "covars_prior")
            nu = _full(-(M + D + 1.0) if cw is None else cw, (K,), "covars_weight")
            # the state's one matrix: its prior spread over its M components
            psi = np.repeat(np.swapaxes(psi, -1, -2)[:, None] / M, M, axis=1)
            dof = np.repeat(((M + nu + D + 1.0) / M)[:, None], M, axis=1)
        elif ct == "diag":
            alpha = _full(-1.5 if cp is None else cp, (K, M, D), "covars_prior")
            beta = _full(0.0 if cw is None else cw, (K, M, D), "covars_weight")
            if np.any(alpha != alpha[..., :1]):
                raise ValueError("covars_prior that differs between features is not supported")
            psi, dof = 2.0 * beta[..., None] * eye, 1.0 + 2.0 * (alpha[..., 0] + 1.0)
        else:
            alpha = _full(-(M + 2.0) / 2.0 if cp is None else cp, (K, M), "covars_prior")
            beta = _full(0.0 if cw is None else cw, (K, M), "covars_weight")
            psi, dof = (2.0 * beta / D)[..., None, None] * eye, 1.0 + 2.0 * (alpha + 1.0) / D
        return GaussianPrior(
            _full(self.means_prior, (K, M, D), "means_prior").reshape(K * M, D),
            _full(self.means_weight, (K, M), "means_weight").reshape(K * M),
            np.array(np.broadcast_to(psi, (K, M, D, D))).reshape(K * M, D, D),
            np.array(np.broadcast_to(dof, (K, M))).reshape(K * M),
        )

    def _drawer(self):
        K, M, D = *np.shape(self.weights_), self._n_features()
        st = get_structure(self.covariance_type)
        cov = np.asarray(self._covars_, dtype=np.float64)
        if st.shared:  # one matrix per state
            full = np.repeat(cov[:, None], M, axis=1)
        else:
            full = st.to_full(cov.reshape(K * M, *cov.shape[2:]), K * M, D).reshape(K, M, D, D)
        weights, means = np.asarray(self.weights_), np.asarray(self.means_)

        def draw(state, rs):
            i = rs.choice(M, p=weights[state])
            return rs.multivariate_normal(means[state, i], full[state, i])

        return draw
