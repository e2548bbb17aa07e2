"""What the hmmlearn fronts share: hmmlearn's convergence monitor, its start (letters of
``init_params``, hand-set attributes kept), the ``params`` letters as held parameters,
and the fit on emkit's engine."""

from __future__ import annotations

import sys
from collections import deque
from typing import Any, ClassVar

import numpy as np
from sklearn.utils import check_array, check_random_state

from emkit.data.sequences import SequenceBatch, SequenceSource, offsets_from_lengths
from emkit.models.hmm.emissions import Emission
from emkit.models.hmm.estimator import HMM
from emkit.models.hmm.model import HMMModel, HMMParams

__all__ = ["ConvergenceMonitor", "InvalidChoice"]

#: the module the fronts are imported from, and saved under
MODULE = "emkit.compat.hmmlearn"


class ConvergenceMonitor:
    """hmmlearn's convergence monitor: the log-likelihood before each M-step.

    ``history`` holds the total log-likelihood (without the log-prior, as hmmlearn) at
    the parameters each iteration started from; ``converged`` is True once ``iter``
    reaches ``n_iter`` or the last rise is below ``tol``. A fit reports to the
    estimator's ``monitor_`` and stops when it says ``converged``, so a subclass with
    its own ``converged`` rule works as in hmmlearn.
    """

    _template = "{iter:>10d} {log_prob:>16.8f} {delta:>+16.8f}"

    def __init__(self, tol: float, n_iter: int, verbose: bool):
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history: deque[float] = deque()
        self.iter = 0

    def __repr__(self) -> str:
        params = sorted(dict(vars(self), history=list(self.history)).items())
        body = "".join(f"    {k}={v},\n" for k, v in params)
        return f"{type(self).__name__}(\n{body})"

    def _reset(self) -> None:
        self.iter = 0
        self.history.clear()

    def report(self, log_prob: float) -> None:
        """Record one iteration's log-likelihood (printed to stderr when verbose)."""
        if self.verbose:
            delta = log_prob - self.history[-1] if self.history else np.nan
            line = self._template.format(iter=self.iter + 1, log_prob=log_prob, delta=delta)
            print(line, file=sys.stderr)
        self.history.append(log_prob)
        self.iter += 1

    @property
    def converged(self) -> bool:
        return self.iter == self.n_iter or (
            len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol
        )


class InvalidChoice(ValueError, KeyError):
    """An unknown option name: a ValueError, and a KeyError as hmmlearn raises for it."""

    def __str__(self) -> str:
        return str(self.args[0])


class _HMMLearnFront(HMM):
    """An hmmlearn model on :class:`emkit.HMM`'s machinery.

    Subclasses say which emission they are (``emission``), map hmmlearn's letters and
    attribute names onto emkit's (``_letters``, ``_names``), and supply hmmlearn's
    start of the emission (``_start_emission``) and its priors (``_emission_part``).
    """

    _qualified_key = True
    #: hmmlearn letter -> emkit parameter name (the keys of an ``init`` dict)
    _letters: ClassVar[dict[str, str]] = {"s": "startprob", "t": "transmat"}
    #: emkit emission parameter name -> hmmlearn attribute
    _names: ClassVar[dict[str, str]] = {}
    _extra_attributes = ()
    _allow_nan = False

    # ------------------------------------------------------------------ translation
    @property
    def n_states(self) -> int:
        return self.n_components

    @property
    def _fitted_attributes(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("startprob_", "transmat_", *self._names.values(), "n_features")

    def __sklearn_is_fitted__(self) -> bool:
        return self._parameters_set()

    def _parameters_set(self) -> bool:
        names = ("startprob_", "transmat_", *self._names.values())
        return all(hasattr(self, name) for name in names)

    def _emission_values(self) -> dict[str, Any]:
        return {key: getattr(self, name) for key, name in self._names.items()}

    def _n_features(self) -> int:
        # columns of X: the last axis of the emission's first parameter (overridden by
        # categorical emissions: one column of symbols)
        return int(np.shape(next(iter(self._emission_values().values())))[-1])

    def _model(self, part: Emission, given: Any = None) -> HMMModel:
        return HMMModel(
            self.n_components,
            part,
            startprob_prior=self.startprob_prior,
            transmat_prior=self.transmat_prior,
            given=given,
        )

    def _check_X(self, X: Any) -> np.ndarray:
        """hmmlearn's input check: a 2-D finite numeric array (ValueError otherwise)."""
        return check_array(X)

    def _needs_init(self, letter: str, name: str) -> bool:
        return letter in self.init_params or not hasattr(self, name)

    def _start_emission(self, X: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def _emission_part(self, X: np.ndarray | None = None, shift=None, prior: bool = False):
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting
    def fit(self, X, lengths=None):
        """Estimate the parameters by Baum-Welch on emkit's engine, as hmmlearn's ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int, optional
            Lengths of the sequences in ``X`` (they must add up to ``n_samples``).

        Returns
        -------
        self
        """
        if self.implementation not in ("log", "scaling"):
            raise InvalidChoice(
                f"implementation must be 'log' or 'scaling', got {self.implementation!r}"
            )
        X = self._check_X(X)
        offsets = offsets_from_lengths([len(X)] if lengths is None else lengths, len(X))
        values, commit = self._start(X)
        Xf = np.ascontiguousarray(X, dtype=np.float64)
        part = self._emission_part(Xf, prior=True, **commit.get("emission_options", {}))
        data, missing = part.prepare(Xf)
        D = Xf.shape[1]
        given = self._given(part, values, D)
        held = [name for letter, name in self._letters.items() if letter not in self.params]
        model = self._model(part, given)
        paths = model.parameter_paths()
        params = HMMParams(given["startprob"], given["transmat"], given["emission"])
        monitor = self.monitor_
        monitor._reset()
        if self.n_iter > 0:

            def report(info) -> bool:
                monitor.report(info.loglik)
                return bool(monitor.converged)

            # hmmlearn's iteration evaluates the parameters and then steps: it ends one
            # M-step after the iteration whose log-likelihood says it converged.
            source = SequenceSource((data, missing), offsets)
            result = self._run_engine(
                model,
                source,
                params,
                1.0,
                max_iter=self.n_iter - 1,
                tol=0.0,
                random_state=0,  # unused (the start is given); the user's stream is left alone
                callback=report,
                check_monotone="warn",
                fixed=[paths[name] for name in held] or None,  # letters not in params
            )
            batch = SequenceBatch((data, missing), offsets)
            last = model.hold(held) if held else model
            stats, _ = last.estep(result.params, batch)
            params = last.mstep(stats, result.params)
        # Everything is computed; only now is the estimator changed.
        self.startprob_ = np.asarray(params.startprob, dtype=np.float64)
        self.transmat_ = np.asarray(params.transmat, dtype=np.float64)
        for key, value in part.to_attributes(params.emission).items():
            setattr(self, self._names[key], value)
        for name, value in {"n_features": D, **commit.get("attributes", {})}.items():
            setattr(self, name, value)
        return self

    def _start(self, X: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        """hmmlearn's start: the letters of ``init_params`` (and attributes not set) are
        drawn as hmmlearn draws them, the others are the values set by hand. Returns the
        starting values keyed like an ``init`` dict, and what to set on success."""
        K = self.n_components
        rs = check_random_state(self.random_state)
        values: dict[str, Any] = {}
        if self._needs_init("s", "startprob_"):
            values["startprob"] = rs.dirichlet(np.full(K, 1.0 / K))
        if self._needs_init("t", "transmat_"):
            values["transmat"] = rs.dirichlet(np.full(K, 1.0 / K), size=K)
        for name in ("startprob", "transmat"):
            if name not in values:
                values[name] = _normalised(getattr(self, f"{name}_"), f"{name}_")
        extra = self._start_emission(X)
        values.update(extra.pop("values"))
        return values, extra

    # ------------------------------------------------------------------ prediction
    def _frame(self, X, lengths, **options):
        return super()._frame(self._check_X(X), lengths, **options)

    def decode(self, X, lengths=None, algorithm=None) -> tuple[float, np.ndarray]:
        """Most likely state sequence (hmmlearn's ``decode``).

        ``algorithm`` (default ``self.algorithm``): "viterbi", the jointly most likely
        path and its log-probability; "map", the most likely state of each step and,
        as hmmlearn, the sum of their posterior probabilities.
        """
        self._check_parameters_set()
        algorithm = algorithm or self.algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValueError(f"Unknown decoder {algorithm!r}")
        if algorithm == "map":
            _, post = self.score_samples(X, lengths)
            return post.max(axis=1).sum(), post.argmax(axis=1)
        return super().decode(X, lengths, "viterbi")

    def get_stationary_distribution(self) -> np.ndarray:
        """The stationary distribution of the states: the left eigenvector of
        ``transmat_`` with eigenvalue 1, summing to 1."""
        self._check_parameters_set()
        eigvals, eigvecs = np.linalg.eig(np.asarray(self.transmat_, dtype=np.float64).T)
        vec = np.real_if_close(eigvecs[:, np.argmax(eigvals.real)])
        return vec / vec.sum()

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw one sequence, with hmmlearn's random stream (a numpy ``RandomState``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        state_sequence : ndarray of int, shape (n_samples,)
        """
        _, params = self._fitted()
        rs = check_random_state(self.random_state if random_state is None else random_state)
        transmat_cdf = np.cumsum(params.transmat, axis=1)
        if currstate is None:
            currstate = int((np.cumsum(params.startprob) > rs.rand()).argmax())
        draw = self._drawer()
        states = [currstate]
        draws = [draw(currstate, rs)]
        for _ in range(n_samples - 1):
            currstate = int((transmat_cdf[currstate] > rs.rand()).argmax())
            states.append(currstate)
            draws.append(draw(currstate, rs))
        return np.atleast_2d(draws), np.array(states, dtype=int)

    def _drawer(self):
        """``draw(state, rs)``: one observation of a state, from hmmlearn's stream."""
        raise NotImplementedError


def _normalised(value: Any, name: str) -> np.ndarray:
    """Probabilities that sum to 1 within hmmlearn's tolerance (``np.allclose``), made to
    sum to 1 exactly; ValueError otherwise."""
    p = np.asarray(value, dtype=np.float64)
    s = p.sum(axis=-1)
    if not np.allclose(s, 1):
        raise ValueError(f"{name} must sum to 1 (got {s})")
    if np.all(np.abs(s - 1.0) <= 4 * np.finfo(np.float64).eps * p.shape[-1]):
        return p  # the values as given (a held parameter stays exactly as set)
    return p / np.where(s == 0, 1.0, s)[..., None] if p.ndim > 1 else p / s
