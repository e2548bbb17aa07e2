"""The HMM as a pure EM model: :class:`HMMModel` (Baum-Welch), :class:`HMMParams`,
:class:`HMMStats`.

Generative model, for each sequence ``x_1 .. x_T``::

    z_1 ~ Categorical(startprob)
    z_t | z_{t-1} = i ~ Categorical(transmat[i])          (t = 2 .. T)
    x_t | z_t = k ~ emission distribution of state k

:class:`HMMModel` is Baum-Welch as the engine's three pure functions. Its data are
batches of whole sequences (:class:`~emkit.data.sequences.SequenceBatch`); the E-step
computes every state's emission log-density of every row (vectorised over rows),
runs the scaled forward-backward recursion of all sequences of the batch in one
Numba call (:mod:`emkit.models.hmm.kernels`, parallel over sequences), and returns
the expected start counts, transition counts and posterior-weighted emission
statistics, which add up over batches. The M-step lets each part (the probability
rows of :mod:`emkit.models.hmm.rows`, the emission of
:mod:`emkit.models.hmm.emissions`) update its own parameters.

Everything else, the loop, convergence, the monotonicity certificate, restarts,
SQUAREM, online EM over mini-batches of sequences, is the engine's; the estimator
:class:`emkit.HMM` (:mod:`emkit.models.hmm.estimator`) only validates, runs it and
stores the result.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

import numpy as np

from emkit.data.sequences import SequenceBatch
from emkit.models.hmm.emissions import Emission
from emkit.models.hmm.kernels import forward_backward
from emkit.models.hmm.rows import ProbabilityRows

__all__ = ["HMMModel", "HMMParams", "HMMStats"]

#: Share of the uniform distribution mixed into the starting responsibilities, so
#: every state starts with some weight on every observation.
_INIT_SMOOTHING = 0.1


class HMMParams(NamedTuple):
    """An HMM's parameters: the three parts' own."""

    startprob: np.ndarray  # (K,)
    transmat: np.ndarray  # (K, K), rows sum to 1
    emission: Any  # the emission part's parameter pytree


class HMMStats(NamedTuple):
    """Expected statistics of a batch of sequences (they add up over batches)."""

    start: np.ndarray  # (K,) expected number of sequences starting in each state
    trans: np.ndarray  # (K, K) expected number of transitions
    emission: Any  # posterior-weighted emission statistics


class HMMModel:
    """Baum-Welch as pure EM functions; batches are :class:`SequenceBatch` of
    ``(prepared data, missing-row mask or None)``.

    Parameters
    ----------
    n_states : int
    emission : Emission
        The emission part (see :mod:`emkit.models.hmm.emissions`).
    startprob_prior, transmat_prior : float or array-like, default 1.0
        Dirichlet pseudo-counts (1 = maximum likelihood).
    init : {"kmeans", "random"}
        How ``init_params`` labels the observations before the first M-step:
        Lloyd's k-means from k-means++ seeds, or the nearest of ``n_states`` random
        observations.
    given : dict, optional
        Starting values that ``init_params`` keeps (``startprob``, ``transmat``,
        ``emission``, or ``emission_attributes``: some of the emission's attributes and
        the number of features); the rest is drawn.
    """

    def __init__(
        self,
        n_states: int,
        emission: Emission,
        *,
        startprob_prior: Any = 1.0,
        transmat_prior: Any = 1.0,
        init: str = "kmeans",
        given: Mapping[str, Any] | None = None,
    ):
        self.n_states = n_states
        self.emission = emission
        self.start = ProbabilityRows("startprob", startprob_prior)
        self.transitions = ProbabilityRows("transmat", transmat_prior)
        self.init = init
        self.given = dict(given or {})
        self.generalized = emission.dist.generalized
        #: the parameters the M-step keeps (see :meth:`hold`)
        self.held: frozenset[str] = frozenset()

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The keys of an ``init`` dict: ``startprob``, ``transmat`` and the emission's
        attributes."""
        return ("startprob", "transmat", *self.emission.attributes)

    def parameter_paths(self) -> dict[str, str]:
        """Each of :attr:`parameter_names` -> where it sits in :class:`HMMParams` (the
        names of ``emkit.em(fixed=...)``)."""
        return {"startprob": "startprob", "transmat": "transmat", **self.emission.paths}

    def hold(self, names: Collection[str]) -> HMMModel:
        """A copy whose M-step returns the held parameters unchanged and maximises the
        others given them.

        Parameters
        ----------
        names : collection of str
            Any of :attr:`parameter_names` or their paths in the parameters
            (:meth:`parameter_paths`; ``"emission"``: all of the emission's). A held
            Gaussian mean makes the covariances the scatter about it; held covariances
            leave the means' update as it is.

        Raises
        ------
        ValueError
            For a name that is neither.
        """
        if isinstance(names, str):
            names = (names,)
        by_path = {path: key for key, path in self.parameter_paths().items()}
        keys: set[str] = set()
        for name in names:
            if name == "emission":
                keys.update(self.emission.attributes)
            elif name in by_path or name in self.parameter_names:
                keys.add(by_path.get(name, name))
            else:
                raise ValueError(
                    f"cannot hold {name!r}: this HMM's parameters are "
                    f"{list(self.parameter_names)} (in the parameters: "
                    f"{list(self.parameter_paths().values())})"
                )
        held = copy.copy(self)
        held.held = frozenset(keys)
        held.emission = self.emission.hold(held.held & set(self.emission.attributes))
        return held

    # ------------------------------------------------------------------ the three steps
    def init_params(self, data: SequenceBatch, rng: np.random.Generator) -> HMMParams:
        """Label the observations by clustering, then estimate every part from the labels.

        The state responsibilities are the one-hot labels mixed with 10 % of the
        uniform distribution; the initial and transition probabilities are the label
        frequencies at sequence starts and between consecutive observations, with one
        pseudo-count each.
        """
        (X, missing), offsets = data
        K = self.n_states
        T = int(offsets[-1])
        observed = np.ones(T, dtype=bool) if missing is None else ~missing
        rows = np.flatnonzero(observed)
        if rows.size < K:
            raise ValueError(
                f"n_states = {K} is larger than the number of observations ({rows.size})"
            )
        labels = self.emission.init_labels(X, rows, K, self.init, rng, offsets)
        resp = np.full((T, K), _INIT_SMOOTHING / K)
        resp[np.arange(T), labels] += 1.0 - _INIT_SMOOTHING
        resp[~observed] = 0.0
        given = self.given
        start = given.get("startprob")
        if start is None:
            start = np.bincount(labels[offsets[:-1]], minlength=K) + 1.0
            start = start / start.sum()
        trans = given.get("transmat")
        if trans is None:
            inner = np.ones(len(labels), dtype=bool)
            inner[offsets[1:] - 1] = False  # the last row of a sequence has no successor
            pairs = labels[:-1][inner[:-1]] * K + labels[1:][inner[:-1]]
            trans = np.bincount(pairs, minlength=K * K).reshape(K, K) + 1.0
            trans = trans / trans.sum(axis=1, keepdims=True)
        emission = given.get("emission")
        if emission is None:
            emission = self.emission.init_params(X, resp, rng)
            if "emission_attributes" in given:  # some of them given (held fixed)
                values, D = given["emission_attributes"]
                emission = self.emission.with_attributes(emission, values, K, D)
        return HMMParams(start, trans, emission)

    def estep(self, params: HMMParams, batch: SequenceBatch) -> tuple[HMMStats, float]:
        (X, missing), offsets = batch
        frame, aux = self.emission.frame(params.emission, X)
        if missing is not None:
            frame[missing] = 0.0  # log 1: a missing observation is integrated out
        logliks, post, trans, start = forward_backward(
            frame, offsets, params.startprob, params.transmat
        )
        if missing is not None:
            post[missing] = 0.0
        stats = self.emission.suff_stats(X, post, params.emission, aux)
        return HMMStats(start, trans, stats), float(logliks.sum())

    def shift_stats(self, stats: HMMStats, old: HMMParams, new: HMMParams) -> HMMStats:
        """Statistics taken at ``old`` re-expressed at ``new`` parameters, for online EM:
        the Gaussian emissions' moments are about the means they were taken at."""
        shift = getattr(self.emission, "shift_stats", None)
        if shift is None:
            return stats
        return stats._replace(emission=shift(stats.emission, old.emission, new.emission))

    def mstep(self, stats: HMMStats, params: HMMParams) -> HMMParams:
        held = self.held
        return HMMParams(
            params.startprob
            if "startprob" in held
            else self.start.mstep(stats.start, params.startprob),
            params.transmat
            if "transmat" in held
            else self.transitions.mstep(stats.trans, params.transmat),
            self.emission.mstep(stats.emission, params.emission),
        )

    def log_prior(self, params: HMMParams) -> float:
        return (
            self.start.log_prior(params.startprob)
            + self.transitions.log_prior(params.transmat)
            + self.emission.log_prior(params.emission)
        )

    # ------------------------------------------------------------------ SQUAREM
    def pack(self, params: HMMParams) -> np.ndarray:
        """Unconstrained coordinates: log probabilities (an exact zero stays zero), and
        the emission's own (log rates, log variances, log-Cholesky factors, ...)."""
        return np.concatenate(
            [
                ProbabilityRows.pack(params.startprob),
                ProbabilityRows.pack(params.transmat),
                self.emission.pack(params.emission),
            ]
        )

    def unpack(self, vec: np.ndarray, like: HMMParams) -> HMMParams:
        K = self.n_states
        vec = np.asarray(vec, dtype=np.float64)
        if not np.all(np.isfinite(vec)):
            raise ValueError("the parameter vector has non-finite entries")
        return HMMParams(
            ProbabilityRows.unpack(vec[:K], like.startprob),
            ProbabilityRows.unpack(vec[K : K + K * K], like.transmat),
            self.emission.unpack(vec[K + K * K :], like.emission),
        )

    # ------------------------------------------------------------------ inference
    def frame(self, params: HMMParams, X: Any, missing: np.ndarray | None) -> np.ndarray:
        frame = self.emission.frame(params.emission, X)[0]
        if missing is not None:
            frame[missing] = 0.0
        return frame

    # ------------------------------------------------------------------ sampling
    def sample(
        self, params: HMMParams, n_samples: int, rng: np.random.Generator, first: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One sequence of ``n_samples`` observations and its states.

        ``first`` is the state of the first step (drawn from ``startprob`` when None).
        """
        K = len(params.startprob)
        states = np.empty(n_samples, dtype=np.int64)
        state = int(rng.choice(K, p=params.startprob)) if first is None else first
        cdf = np.cumsum(params.transmat, axis=1)
        u = rng.random(n_samples)
        states[0] = state
        for t in range(1, n_samples):
            state = min(int(np.searchsorted(cdf[state], u[t], side="right")), K - 1)
            states[t] = state
        return self.emission.sample(params.emission, states, rng), states
