"""Viterbi decoding of all sequences: :func:`viterbi`.

Log space (``log 0 = -inf``), storing the ``delta`` lattice instead of back-pointers:
the forward sweep is a max-plus product without argmax, and the back-tracking
recomputes the one argmax per step it needs. Chunks of sequences run in parallel,
each with a lattice as long as its longest sequence.
"""

from __future__ import annotations

import numba
import numpy as np

from emkit._simd import _JIT
from emkit.models.hmm.kernels._dense import _maxplus
from emkit.models.hmm.kernels._inputs import (
    _check_inputs,
    _chunk_bounds,
    _log_params,
    _longest,
    _raise_if_bad,
)

__all__ = ["viterbi"]


@numba.njit(**_JIT)
def _viterbi_one(
    log_frame, t0, t1, log_start, log_trans, path, delta, bad
):  # pragma: no cover - compiled
    """Viterbi of rows ``t0:t1`` in log space; the path goes to ``path[t0:t1]``.

    ``delta`` (at least ``t1 - t0`` rows) is scratch: the max-plus forward sweep stores them and
    the back-tracking recomputes the argmax of the one column it follows. Ties go
    to the lower state index. Returns the path's log-probability (``-inf``, with a
    path of zeros, if every path is impossible). NaN or +inf entries of
    ``log_frame`` are counted into ``bad[0]``.
    """
    n_states = log_frame.shape[1]
    n_bad = 0
    for k in range(n_states):
        delta[0, k] = log_start[k] + log_frame[t0, k]
        n_bad += not log_frame[t0, k] < np.inf
    for t in range(t0 + 1, t1):
        _maxplus(delta[t - 1 - t0], log_trans, delta[t - t0])
        for k in range(n_states):
            delta[t - t0, k] += log_frame[t, k]
            n_bad += not log_frame[t, k] < np.inf
    bad[0] += n_bad
    state = 0
    for k in range(1, n_states):
        if delta[t1 - 1 - t0, k] > delta[t1 - 1 - t0, state]:
            state = k
    logprob = delta[t1 - 1 - t0, state]
    if logprob == -np.inf:
        for t in range(t0, t1):
            path[t] = 0
        return logprob
    path[t1 - 1] = state
    for t in range(t1 - 1, t0, -1):
        best = -np.inf
        arg = 0
        for i in range(n_states):
            v = delta[t - 1 - t0, i] + log_trans[i, state]
            if v > best:
                best = v
                arg = i
        state = arg
        path[t - 1] = state
    return logprob


@numba.njit(parallel=True, **_JIT)
def _viterbi_kernel(
    log_frame, offsets, bounds, log_start, log_trans, logprobs, path, bad
):  # pragma: no cover - compiled
    """Viterbi of every sequence, chunks of sequences in parallel."""
    n_states = log_frame.shape[1]
    for ch in numba.prange(bounds.shape[0] - 1):
        delta = np.empty((_longest(offsets, bounds, ch), n_states))
        for s in range(bounds[ch], bounds[ch + 1]):
            logprobs[s] = _viterbi_one(
                log_frame,
                offsets[s],
                offsets[s + 1],
                log_start,
                log_trans,
                path,
                delta,
                bad[ch : ch + 1],
            )


def viterbi(
    log_frame: np.ndarray, offsets: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Most likely state path of every sequence (Viterbi, in log space).

    Parameters and input rules are those of
    :func:`~emkit.models.hmm.kernels.smoothing.forward_backward`; zero
    probabilities in ``startprob`` and ``transmat`` are ``log 0 = -inf``.

    Returns
    -------
    logprobs : ndarray of shape (S,)
        ``max_z log p(x_s, z)`` of each sequence (``-inf`` where every path is
        impossible).
    path : ndarray of shape (T_total,), dtype int64
        The most likely paths, stacked like ``log_frame``; among equally likely
        paths, the back-tracking takes the lower state index at every step. An
        impossible sequence gets a path of zeros.
    """
    log_frame, offsets, startprob, transmat = _check_inputs(log_frame, offsets, startprob, transmat)
    log_start, log_trans = _log_params(startprob, transmat)
    bounds = _chunk_bounds(offsets)
    logprobs = np.empty(offsets.shape[0] - 1)
    path = np.empty(log_frame.shape[0], dtype=np.int64)
    bad = np.zeros(bounds.shape[0] - 1, dtype=np.int64)
    _viterbi_kernel(
        log_frame,
        offsets,
        bounds,
        log_start,
        log_trans,
        logprobs,
        path,
        bad,
    )
    _raise_if_bad(bad)
    return logprobs, path
