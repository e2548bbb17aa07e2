"""Log-space forward and forward-backward passes over one sequence (compiled).

The fallback of the scaled recursions (:mod:`emkit.models.hmm.kernels._scaled`) for
a sequence whose normalisers underflow or whose backward variables overflow:
log-sum-exp recursions on ``log_frame``, slower but exact whatever the scale. An
impossible sequence gets log-likelihood ``-inf``, zero posteriors and no counts.
"""

from __future__ import annotations

import numba
import numpy as np

from emkit._simd import _JIT
from emkit.models.hmm.kernels._dense import _logsumexp, _max


@numba.njit(**_JIT)
def _forward_log(
    log_frame, t0, t1, log_start, log_trans, la, keep, bad
):  # pragma: no cover - compiled
    """Log-space forward pass (rows of ``la`` as ``alpha`` in :func:`~emkit.models.hmm.kernels._scaled._forward`).

    Counts NaN or +inf entries of ``log_frame`` into ``bad[0]`` (the scaled pass may
    have stopped before it saw them all).
    """
    n_states = log_frame.shape[1]
    n_bad = 0
    row = t0 if keep else 0
    for k in range(n_states):
        la[row, k] = log_start[k] + log_frame[t0, k]
        n_bad += not log_frame[t0, k] < np.inf
    for t in range(t0 + 1, t1):
        prev = row
        row = t if keep else (t - t0) & 1
        for j in range(n_states):
            n_bad += not log_frame[t, j] < np.inf
            m = -np.inf
            for i in range(n_states):
                m = _max(m, la[prev, i] + log_trans[i, j])
            if m == -np.inf:
                la[row, j] = m
                continue
            s = 0.0
            for i in range(n_states):
                s += np.exp(la[prev, i] + log_trans[i, j] - m)
            la[row, j] = m + np.log(s) + log_frame[t, j]
    bad[0] += n_bad
    return _logsumexp(la[row])


@numba.njit(**_JIT)
def _forward_backward_log(
    log_frame, t0, t1, log_start, log_trans, post, xi, lb, lb_new, tmp, bad
):  # pragma: no cover - compiled
    """Forward-backward of rows ``t0:t1`` in log space, the scaled recursion's fallback.

    Posteriors go to ``post``; ``xi`` gets the expected transition counts themselves
    (the factor ``transmat`` included). Returns the log-likelihood; an impossible
    sequence gets ``-inf``, zero posteriors and adds nothing.
    """
    n_states = log_frame.shape[1]
    loglik = _forward_log(log_frame, t0, t1, log_start, log_trans, post, True, bad)
    if loglik == -np.inf:
        for t in range(t0, t1):
            for k in range(n_states):
                post[t, k] = 0.0
        return loglik
    for k in range(n_states):
        lb[k] = 0.0
        post[t1 - 1, k] = np.exp(post[t1 - 1, k] - loglik)
    for t in range(t1 - 2, t0 - 1, -1):
        for j in range(n_states):
            tmp[j] = log_frame[t + 1, j] + lb[j]
        for i in range(n_states):
            a = post[t, i] - loglik  # post[t] still holds log alpha[t]
            m = -np.inf
            for j in range(n_states):
                v = log_trans[i, j] + tmp[j]
                xi[i, j] += np.exp(a + v)
                m = _max(m, v)
            s = 0.0
            if m > -np.inf:
                for j in range(n_states):
                    s += np.exp(log_trans[i, j] + tmp[j] - m)
            lb_new[i] = m + np.log(s) if m > -np.inf else m
        for i in range(n_states):
            post[t, i] = np.exp(post[t, i] + lb_new[i] - loglik)
            lb[i] = lb_new[i]
    return loglik
