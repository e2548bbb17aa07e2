"""hmmlearn's ``CategoricalHMM`` and ``PoissonHMM`` on emkit's discrete emissions."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.utils import check_random_state

from emkit.compat.hmmlearn._base import MODULE, ConvergenceMonitor, _HMMLearnFront
from emkit.compat.hmmlearn._gaussian import _check_width, _full
from emkit.distributions.base import DirichletPrior, GammaPrior
from emkit.models.hmm.emissions import CategoricalEmission, PoissonEmission

__all__ = ["CategoricalHMM", "PoissonHMM"]


class CategoricalHMM(_HMMLearnFront):
    """Hidden Markov model with categorical emissions, with hmmlearn's interface.

    ``X`` is one column of integer symbols ``0 .. n_features - 1``. The constructor,
    defaults, attributes and methods are those of ``hmmlearn.hmm.CategoricalHMM`` (as
    there, ``fit`` sets ``n_features`` from the data when it is None, and replaces an
    integer ``random_state`` by the ``RandomState`` it drew the start from); the EM
    steps run on emkit's engine.

    Parameters
    ----------
    n_components : int, default 1
    startprob_prior, transmat_prior, emissionprob_prior : float or array-like, default 1.0
        Dirichlet pseudo-counts (each >= 1 here).
    n_features : int, optional
        Number of symbols.
    algorithm, random_state, n_iter, tol, verbose, implementation
        As :class:`GaussianHMM`.
    params, init_params : str, default "ste"
        s: startprob, t: transmat, e: emissionprob.

    Attributes
    ----------
    startprob_, transmat_
    emissionprob_ : ndarray of shape (n_components, n_features)
    monitor_ : ConvergenceMonitor
    """

    __module__ = MODULE
    emission = "categorical"
    _letters: ClassVar[dict[str, str]] = {"s": "startprob", "t": "transmat", "e": "emissionprob"}
    _names: ClassVar[dict[str, str]] = {"emissionprob": "emissionprob_"}

    def __init__(
        self,
        n_components=1,
        startprob_prior=1.0,
        transmat_prior=1.0,
        *,
        emissionprob_prior=1.0,
        n_features=None,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="ste",
        init_params="ste",
        implementation="log",
    ):
        self._set_hyperparameters(locals())
        self.monitor_ = ConvergenceMonitor(tol, n_iter, verbose)

    def _n_features(self) -> int:
        return 1  # one column of symbols

    def _check_X(self, X: Any) -> np.ndarray:
        X = super()._check_X(X)
        if not np.issubdtype(X.dtype, np.integer):
            raise ValueError("Symbols should be integers")
        if X.min() < 0:
            raise ValueError("Symbols should be nonnegative")
        return X

    def _start_emission(self, X: np.ndarray) -> dict[str, Any]:
        n_symbols = self.n_features
        if n_symbols is None:
            n_symbols = int(X.max()) + 1
        elif n_symbols - 1 < X.max():
            raise ValueError(
                f"Largest symbol is {X.max()} but the model only emits symbols up to "
                f"{n_symbols - 1}"
            )
        rs = check_random_state(self.random_state)
        if self._needs_init("e", "emissionprob_"):
            probs = rs.rand(self.n_components, n_symbols)
            probs /= probs.sum(axis=1, keepdims=True)
        else:
            probs = np.atleast_2d(self.emissionprob_)
        return {
            "values": {"emissionprob": probs},
            "attributes": {"n_features": n_symbols, "random_state": rs},
            "emission_options": {"n_symbols": n_symbols},
        }

    def _emission_part(self, X=None, shift=None, prior=False, n_symbols=None):
        K = self.n_components
        C = np.shape(self.emissionprob_)[1] if n_symbols is None else n_symbols
        alpha = _full(self.emissionprob_prior, (K, C), "emissionprob_prior")[:, None, :]
        return CategoricalEmission(C, DirichletPrior(alpha) if prior else None)

    def _drawer(self):
        cdf = np.cumsum(self.emissionprob_, axis=1)
        return lambda state, rs: [(cdf[state] > rs.rand()).argmax()]


class PoissonHMM(_HMMLearnFront):
    """Hidden Markov model with independent Poisson counts, with hmmlearn's interface.

    The constructor, defaults, attributes and methods are those of
    ``hmmlearn.hmm.PoissonHMM``; the EM steps run on emkit's engine. The prior on the
    rates is the Gamma distribution with shape ``lambdas_prior + 1`` and rate
    ``lambdas_weight``, whose MAP step is ``(lambdas_prior + sum_t w_tk x_t) /
    (lambdas_weight + n_k)``; hmmlearn's update puts the total count of all states in
    place of the state's ``n_k``, which is the same with one state and no MAP step of
    any prior with several, so with a prior and several states the fits differ.

    Parameters
    ----------
    n_components : int, default 1
    startprob_prior, transmat_prior : float or array-like, default 1.0
    lambdas_prior, lambdas_weight : float, default 0.0
        Shape minus one and rate of the Gamma prior on every rate.
    algorithm, random_state, n_iter, tol, verbose, implementation
        As :class:`GaussianHMM`.
    params, init_params : str, default "stl"
        s: startprob, t: transmat, l: lambdas.

    Attributes
    ----------
    startprob_, transmat_
    lambdas_ : ndarray of shape (n_components, n_features)
    n_features : int
    monitor_ : ConvergenceMonitor
    """

    __module__ = MODULE
    emission = "poisson"
    _letters: ClassVar[dict[str, str]] = {"s": "startprob", "t": "transmat", "l": "rates"}
    _names: ClassVar[dict[str, str]] = {"rates": "lambdas_"}

    def __init__(
        self,
        n_components=1,
        startprob_prior=1.0,
        transmat_prior=1.0,
        lambdas_prior=0.0,
        lambdas_weight=0.0,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stl",
        init_params="stl",
        implementation="log",
    ):
        self._set_hyperparameters(locals())
        self.monitor_ = ConvergenceMonitor(tol, n_iter, verbose)

    def _start_emission(self, X: np.ndarray) -> dict[str, Any]:
        _check_width(self, X)
        rs = check_random_state(self.random_state)
        if self._needs_init("l", "lambdas_"):
            mean, var = X.mean(), X.var()
            rates = rs.gamma(
                shape=mean**2 / var, scale=var / mean, size=(self.n_components, X.shape[1])
            )
        else:
            rates = np.atleast_2d(self.lambdas_)
        return {"values": {"rates": rates}, "attributes": {"random_state": rs}}

    def _emission_part(self, X=None, shift=None, prior=False) -> PoissonEmission:
        a, b = (float(np.asarray(v).item()) for v in (self.lambdas_prior, self.lambdas_weight))
        return PoissonEmission(GammaPrior(a + 1.0, b) if prior and (a or b) else None)

    def _drawer(self):
        rates = np.asarray(self.lambdas_)
        return lambda state, rs: rs.poisson(rates[state])
