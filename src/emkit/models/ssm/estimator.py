"""``emkit.LinearGaussianSSM``: linear-Gaussian state-space models fitted by EM.

The estimator is thin: it validates the series and the parameters, centres the data
(:mod:`emkit.models.ssm.parameters`), builds the pure model
(:class:`~emkit.models.ssm.model.LinearGaussianSSMModel`), runs the engine with the
fixed parameters (held through the model's ``hold``), and keeps the fitted parameters as attributes; the inference methods
run the Kalman kernels (:mod:`emkit.models.ssm.kernels`) on them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import check_choice, check_init, check_int, check_real
from emkit.data.sequences import SequenceSource
from emkit.models.estimator import EMEstimator
from emkit.models.hmm.input import as_sequences
from emkit.models.ssm.model import (
    COV_TYPES,
    INIT_METHODS,
    PARAM_NAMES,
    LinearGaussianSSMModel,
    SSMParams,
)
from emkit.models.ssm.parameters import check_param_dict, params_back, shift_params, state_shift

__all__ = ["LinearGaussianSSM"]

INITIAL = ("estimate", "diffuse")


def _read_series(Y) -> tuple[np.ndarray, np.ndarray, bool]:
    """(rows of all sequences, offsets, whether Y was a list of sequences)."""
    is_list = isinstance(Y, (list, tuple)) and len(Y) > 0 and not np.isscalar(Y[0])
    if not is_list and np.ndim(Y) == 1:
        Y = np.asarray(Y)[:, None]
    X, offsets = as_sequences(list(Y) if is_list else Y, None)
    return X, offsets, is_list


def _split(arr: np.ndarray, offsets: np.ndarray, is_list: bool):
    return [arr[a:b] for a, b in itertools.pairwise(offsets)] if is_list else arr


class LinearGaussianSSM(EMEstimator):
    """Linear-Gaussian state-space model (Kalman filter) with every parameter estimated
    by EM (Shumway & Stoffer 1982; Ghahramani & Hinton 1996).

    Generative model, for each sequence::

        x_1 ~ Normal(initial_mean, initial_cov)
        x_t = A x_{t-1} + b + w_t,   w_t ~ Normal(0, Q)
        y_t = C x_t + d + v_t,       v_t ~ Normal(0, R)

    with ``A = transition``, ``b = transition_offset``, ``C = observation``,
    ``d = observation_offset``, ``Q = transition_cov``, ``R = observation_cov``. NaN
    entries of ``y_t`` are missing: a partly observed ``y_t`` contributes its observed
    entries and a fully missing one is a pure prediction step.

    Parameters
    ----------
    state_dim : int, default 1
        Dimension ``n`` of the state ``x_t``.
    init : {"pca", "random"} or dict, default "pca"
        Starting parameters: principal axes of the observations as ``C`` and the
        lag-one regression of the projected states as ``A`` (``"pca"``), or a random
        ``C`` (``"random"``, for restarts); a dict keyed like the fitted attributes
        without the underscore gives any of them (the rest as with ``"pca"``).
    fixed : dict, optional
        Parameters held at the given values (same keys as ``init``, validated the
        same way): EM maximises the others given them. A local-level model fixes
        ``transition`` and ``observation`` to ``[[1.0]]``; zero offsets are fixed by
        giving zeros.
    transition_cov_type, observation_cov_type : {"full", "diag"}, default "full"
        Structure of ``Q`` and ``R``.
    initial : {"estimate", "diffuse"}, default "estimate"
        ``"estimate"``: the initial mean and covariance are parameters; ``"diffuse"``:
        the exact diffuse start of Durbin & Koopman (2012, ch. 5) for non-stationary
        states (a flat prior on ``x_1``); ``loglik_`` is then the diffuse
        log-likelihood and ``initial_mean_``/``initial_cov_`` are NaN.
    tol : float, default 1e-6
        Stop when the log-likelihood per time step rises by less (a decrease never
        counts as convergence).
    max_iter : int, default 500
        Maximum number of EM iterations (SQUAREM cycles with ``accel="squarem"``).
    n_init : int, default 1
        Restarts from independent seeds (useful with ``init="random"``).
    accel : {None, "squarem"}, default None
        SQUAREM acceleration of EM.
    random_state : None, int or numpy Generator
        Seed of the initialisation and of :meth:`sample`.
    progress : bool, default False
        Show a progress bar.
    verbose : int, default 0
        1 prints a summary of the fit, 2 every iteration.
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the log-likelihood ever decreases (exact EM never lets it).
    executor, checkpoint, checkpoint_every
        Where the E-steps run (threads, a Dask cluster), and checkpoint / resume of
        the fit: as in :func:`emkit.em`.

    Attributes
    ----------
    transition_ : ndarray of shape (state_dim, state_dim)
    transition_offset_ : ndarray of shape (state_dim,)
    observation_ : ndarray of shape (n_features, state_dim)
    observation_offset_ : ndarray of shape (n_features,)
    transition_cov_ : ndarray of shape (state_dim, state_dim)
    observation_cov_ : ndarray of shape (n_features, n_features)
    initial_mean_ : ndarray of shape (state_dim,)
    initial_cov_ : ndarray of shape (state_dim, state_dim)
    loglik_ : float
        Total log-likelihood of the training sequences at the fitted parameters (the
        diffuse log-likelihood with ``initial="diffuse"``).
    converged_, n_iter_, history_, n_features_in_
        The record every emkit estimator keeps of its fit.

    Notes
    -----
    The E-step is the Kalman filter (Joseph-form covariance update, Cholesky-factored
    innovation covariances) and the Rauch-Tung-Striebel smoother with lag-one cross
    covariances, compiled with Numba; covariance work stops once the recursions reach
    their steady state. Missing entries of ``y_t`` are latent variables of the EM as
    well. The M-step is closed form, jointly in ``(A, b)`` and in ``(C, d)``.

    With an estimated ``initial_cov`` and few sequences, or a state larger than the
    data identify, the likelihood grows toward singular covariances (the initial
    covariance shrinks to zero); plain EM approaches slowly, SQUAREM quickly, and
    near that point the filter's round-off can trip the monotonicity check or the
    fit stops with an error that says so. Fix ``initial_cov``, use
    ``initial="diffuse"``, or a smaller ``state_dim``.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import LinearGaussianSSM
    >>> rng = np.random.default_rng(0)
    >>> level = 100 + np.cumsum(rng.normal(0, 1.0, 300))      # a random walk
    >>> y = level + rng.normal(0, 2.0, 300)
    >>> one, zero = [[1.0]], [0.0]
    >>> fixed = {"transition": one, "observation": one,
    ...          "transition_offset": zero, "observation_offset": zero}
    >>> model = LinearGaussianSSM(fixed=fixed, initial="diffuse", tol=1e-9).fit(y)
    >>> bool(0.3 < model.transition_cov_[0, 0] < 3 and 2 < model.observation_cov_[0, 0] < 8)
    True
    >>> means, covs = model.smooth(y)
    >>> means.shape, covs.shape
    ((300, 1), (300, 1, 1))
    """

    _fitted_attributes = tuple(f"{name}_" for name in PARAM_NAMES) + EMEstimator.FIT_RECORD
    _extra_attributes = ("fit_time_",)
    _estimator_type = None
    _allow_nan = True

    def __init__(
        self,
        state_dim: int = 1,
        *,
        init: str | Mapping[str, Any] = "pca",
        fixed: Mapping[str, Any] | None = None,
        transition_cov_type: str = "full",
        observation_cov_type: str = "full",
        initial: str = "estimate",
        tol: float = 1e-6,
        max_iter: int = 500,
        n_init: int = 1,
        accel: str | None = None,
        random_state: Any = None,
        progress: bool = False,
        verbose: int = 0,
        check_monotone: str = "warn",
        executor: Any = None,
        checkpoint: Any = None,
        checkpoint_every: int = 1,
    ):
        self._set_hyperparameters(locals())

    # ------------------------------------------------------------------ fitting
    def _cov_types(self) -> dict[str, str]:
        return {
            "transition_cov": self.transition_cov_type,
            "observation_cov": self.observation_cov_type,
        }

    def _check_hyperparameters(self) -> None:
        check_int(self.state_dim, "state_dim", 1)
        check_init(self.init, INIT_METHODS)
        check_choice(self.transition_cov_type, "transition_cov_type", COV_TYPES)
        check_choice(self.observation_cov_type, "observation_cov_type", COV_TYPES)
        check_choice(self.initial, "initial", INITIAL)
        check_real(self.tol, "tol", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_int(self.n_init, "n_init", 1)
        check_int(self.verbose, "verbose", 0)

    def _model(self, given=None) -> LinearGaussianSSMModel:
        return LinearGaussianSSMModel(
            self.state_dim,
            transition_cov_type=self.transition_cov_type,
            observation_cov_type=self.observation_cov_type,
            diffuse=self.initial == "diffuse",
            init=self.init if isinstance(self.init, str) else "pca",
            given=given,
        )

    def _training_data(self, Y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, offsets, _ = _read_series(Y)
        obs = ~np.isnan(X)
        lengths = np.diff(offsets)
        if np.any(lengths < 2):
            s = int(np.flatnonzero(lengths < 2)[0])
            raise ValueError(
                f"sequence {s} has {lengths[s]} time step; a state-space model needs at "
                "least T = 2 steps per sequence to estimate its dynamics"
            )
        seen = np.add.reduceat(obs.any(axis=1), offsets[:-1])
        if np.any(seen == 0):
            s = int(np.flatnonzero(seen == 0)[0])
            raise ValueError(f"sequence {s} has every value missing (all NaN); remove it")
        none = np.flatnonzero(~obs.any(axis=0))
        if none.size:
            raise ValueError(
                f"column(s) {none.tolist()} of Y have every value missing: they cannot be "
                "modelled; drop them"
            )
        with np.errstate(invalid="ignore"):
            spread = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
        if np.any(spread == 0):
            raise ValueError(
                f"column(s) {np.flatnonzero(spread == 0).tolist()} of Y are constant: their "
                "observation variance would be 0; drop them"
            )
        return X, obs, offsets

    def fit(self, Y, y=None) -> LinearGaussianSSM:
        """Estimate the parameters by EM.

        Parameters
        ----------
        Y : array-like of shape (T, n_features) or (T,), or list of such arrays
            One sequence, or several independent sequences with the same number of
            features. NaN marks a missing value.
        y : ignored

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        X, obs, offsets = self._training_data(Y)
        n, p = self.state_dim, X.shape[1]
        diffuse = self.initial == "diffuse"
        if diffuse:  # checked before any start: a random start may fail otherwise first
            counts = np.add.reduceat(obs.sum(axis=1), offsets[:-1]) if len(obs) else []
            short = np.flatnonzero(np.asarray(counts) < n)
            if short.size:
                raise ValueError(
                    f"sequence {int(short[0])} does not identify its diffuse initial state "
                    f"(initial='diffuse' needs at least state_dim = {n} observed values that "
                    "determine it); give a longer series or initial='estimate'"
                )
        args = (n, p, self._cov_types(), diffuse)
        fixed = check_param_dict(self.fixed, "fixed", *args)
        start = check_param_dict(
            self.init if isinstance(self.init, Mapping) else None, "init", *args
        )
        start.update(fixed)
        c_y = np.where(obs, X, 0.0).sum(axis=0) / obs.sum(axis=0)
        c_x = state_shift(fixed, c_y, n)
        given = shift_params(start, c_x, c_y, +1, start)
        Yc = np.where(obs, X - c_y, 0.0)
        source = SequenceSource((Yc, obs), offsets)
        # The engine holds the fixed values (through the model's hold), in the centred
        # coordinates the model runs in.
        held = {name: given[name] for name in fixed} or None
        result = self._run_engine(self._model(given), source, None, len(X), fixed=held)
        # the fixed values exactly as given (the shifts there and back may round)
        p_fit = params_back(result.params, c_x, c_y)._replace(**fixed)
        if diffuse:  # the flat prior has no moments
            p_fit = p_fit._replace(
                initial_mean=np.full(n, np.nan), initial_cov=np.full((n, n), np.nan)
            )
        # Everything is computed; only now is the estimator changed.
        for name, value in p_fit._asdict().items():
            setattr(self, f"{name}_", np.array(value, dtype=np.float64))
        self.loglik_ = float(result.loglik)
        self.n_features_in_ = p
        self._finish_fit(result)
        return self

    def _describe(self) -> str:
        return f"n={self.state_dim} {self.initial} "

    # ------------------------------------------------------------------ fitted model
    def _params(self) -> SSMParams:
        self._check_is_fitted()
        return SSMParams(*(getattr(self, f"{name}_") for name in PARAM_NAMES))

    def _run(self, Y, store: bool = True):
        params = self._params()
        X, offsets, is_list = _read_series(Y)
        self._check_n_features(X)
        obs = ~np.isnan(X)
        out = self._model().run(params, np.where(obs, X, 0.0), obs, offsets, store=store)
        return out, offsets, is_list, params

    def filter(self, Y):
        """Filtered moments: the state's mean and covariance given ``y_1 .. y_t``.

        Parameters
        ----------
        Y : array-like of shape (T, n_features) or (T,), or list of such arrays

        Returns
        -------
        means : ndarray of shape (T, state_dim)
        covariances : ndarray of shape (T, state_dim, state_dim)
            Lists of these for a list of sequences. With ``initial="diffuse"``, the
            steps before the observations determine the state have NaN means and
            infinite variances.
        """
        out, offsets, is_list, _ = self._run(Y)
        return _split(out.filtered_means, offsets, is_list), _split(
            out.filtered_covs, offsets, is_list
        )

    def smooth(self, Y):
        """Smoothed moments: the state's mean and covariance given the whole sequence.

        Returns
        -------
        means : ndarray of shape (T, state_dim)
        covariances : ndarray of shape (T, state_dim, state_dim)
            Lists of these for a list of sequences.
        """
        out, offsets, is_list, _ = self._run(Y)
        return _split(out.means, offsets, is_list), _split(out.smoothed_covs, offsets, is_list)

    def score(self, Y, y=None) -> float:
        """Total log-likelihood of the sequences (diffuse with ``initial="diffuse"``)."""
        return float(self._run(Y, store=False)[0].loglik.sum())

    def forecast(self, Y, steps: int = 1):
        """Mean and covariance of the next ``steps`` observations after each sequence.

        Returns
        -------
        means : ndarray of shape (steps, n_features)
        covariances : ndarray of shape (steps, n_features, n_features)
            Lists of these for a list of sequences.
        """
        steps = check_int(steps, "steps", 1)
        out, offsets, is_list, p = self._run(Y)
        A, C = p.transition, p.observation
        means, covs = [], []
        for last in offsets[1:] - 1:
            m, P = out.filtered_means[last], out.filtered_covs[last]
            ym, yc = np.empty((steps, C.shape[0])), np.empty((steps, C.shape[0], C.shape[0]))
            for k in range(steps):
                m = A @ m + p.transition_offset
                P = A @ P @ A.T + p.transition_cov
                ym[k] = C @ m + p.observation_offset
                yc[k] = C @ P @ C.T + p.observation_cov
            means.append(ym)
            covs.append(0.5 * (yc + yc.transpose(0, 2, 1)))
        return (means, covs) if is_list else (means[0], covs[0])

    def sample(
        self, n_samples: int = 1, random_state: Any = None, initial_state=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw one sequence from the fitted model.

        Parameters
        ----------
        n_samples : int, default 1
            Length T of the sequence.
        random_state : None, int or Generator, optional
            Seed; the estimator's ``random_state`` when omitted.
        initial_state : array-like of shape (state_dim,), optional
            The first state (drawn from the initial distribution when omitted; needed
            with ``initial="diffuse"``).

        Returns
        -------
        Y : ndarray of shape (n_samples, n_features)
        states : ndarray of shape (n_samples, state_dim)
        """
        p = self._params()
        T = check_int(n_samples, "n_samples", 1)
        seed = self.random_state if random_state is None else random_state
        rng = np.random.default_rng(seed_sequence(seed))
        n = self.state_dim
        if initial_state is None:
            if self.initial == "diffuse":
                raise ValueError("a diffuse initial state cannot be drawn from; give initial_state")
            x = rng.multivariate_normal(p.initial_mean, p.initial_cov)
        else:
            x = np.asarray(initial_state, dtype=np.float64)
            if x.shape != (n,):
                raise ValueError(f"initial_state must have shape ({n},), got {x.shape}")
        states = np.empty((T, n))
        w = rng.multivariate_normal(np.zeros(n), p.transition_cov, size=T)
        v = rng.multivariate_normal(np.zeros(len(p.observation)), p.observation_cov, size=T)
        for t in range(T):
            if t:
                x = p.transition @ x + p.transition_offset + w[t]
            states[t] = x
        return states @ p.observation.T + p.observation_offset + v, states

    def _check_fitted_state(self) -> None:
        names = tuple(f"{name}_" for name in PARAM_NAMES)
        self._check_float_arrays((*names[:6], "history_"), finite=False)
        n, p = self.state_dim, self.n_features_in_
        check_param_dict(
            {k: getattr(self, f"{k}_") for k in PARAM_NAMES[:6]},
            "the fitted parameters",
            n,
            p,
            self._cov_types(),
            False,
        )
