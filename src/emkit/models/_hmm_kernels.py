"""Numba inference kernels for hidden Markov models.

All sequences of a data set are handled in one call: their per-state emission
log-likelihoods are stacked into one ``log_frame`` array of shape
``(T_total, K)`` and ``offsets`` marks the boundaries (sequence ``s`` is rows
``offsets[s]:offsets[s + 1]``). Three entry points:

* :func:`forward_backward`: per-sequence log-likelihoods, state posteriors and the
  expected transition and start counts (the E-step of Baum-Welch);
* :func:`forward_loglik`: the log-likelihoods alone (the forward pass);
* :func:`viterbi`: the most likely state path of every sequence.

Numerics
--------
Forward-backward is Rabiner's *scaled* recursion, not log-space: each row of
``log_frame`` is shifted by its maximum and exponentiated once (NumPy's SIMD ``exp``
over the whole array), so every emission factor ``b[t, k]`` lies in ``[0, 1]`` with
a 1 in each row; the forward variables are renormalised at every step and the
normalisers ``c[t]`` carry the log-likelihood::

    alpha_hat[t] = (alpha_hat[t-1] @ A) * b[t] / c[t]
    beta_hat[t]  = A @ (b[t+1] * beta_hat[t+1]) / c[t+1]
    log p(x)     = sum_t (log c[t] + max_k log_frame[t, k])
    gamma[t]     = alpha_hat[t] * beta_hat[t]
    xi_t(i, j)   = alpha_hat[t, i] A[i, j] b[t+1, j] beta_hat[t+1, j] / c[t+1]

The expected transition counts are accumulated as ``sum_t alpha_hat[t, i] w[t+1, j]``
with ``w = b * beta_hat / c`` (an outer product per step) and multiplied by ``A``
elementwise once at the end, so a zero transition probability gives an exact zero
count. Viterbi works in log space (``log 0 = -inf``); ties go to the lower state.

A sequence with probability zero (an observation impossible in every state that
can be reached) gets log-likelihood ``-inf`` and zero posteriors and counts instead
of NaN. A row of zeros in ``log_frame`` is a missing observation: it multiplies
every state by one.

Parallelism: sequences are split into a fixed number of chunks of about equal
numbers of rows (the split does not depend on the thread count) and the chunks run
in parallel (``prange``); every chunk keeps its own transition-count accumulator
and the accumulators are summed in chunk order, so results do not depend on
``numba.set_num_threads``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["forward_backward", "forward_loglik", "viterbi"]

#: Upper bound on the number of chunks the sequences are split into.
_MAX_CHUNKS = 64

_JIT = {"cache": True, "nogil": True, "fastmath": False}


# ---------------------------------------------------------------------- validation
def _check_inputs(
    log_frame: np.ndarray, offsets: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shapes, dtypes and sequence boundaries, as contiguous float64 / int64 arrays."""
    log_frame = np.ascontiguousarray(log_frame, dtype=np.float64)
    if log_frame.ndim != 2:
        raise ValueError(f"log_frame must be 2-D (T_total, K), got shape {log_frame.shape}")
    n_rows, n_states = log_frame.shape
    if n_states < 1:
        raise ValueError("log_frame must have at least one column (state)")
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or offsets.shape[0] < 2:
        raise ValueError(f"offsets must be 1-D of length S + 1 >= 2, got shape {offsets.shape}")
    if not np.issubdtype(offsets.dtype, np.integer):
        raise TypeError(f"offsets must be integers, got dtype {offsets.dtype}")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets[0] != 0 or offsets[-1] != n_rows:
        raise ValueError(
            f"offsets must start at 0 and end at T_total = {n_rows}, "
            f"got {offsets[0]} and {offsets[-1]}"
        )
    if np.any(np.diff(offsets) < 1):
        raise ValueError("every sequence must have at least one row (offsets strictly increasing)")
    startprob = np.ascontiguousarray(startprob, dtype=np.float64)
    transmat = np.ascontiguousarray(transmat, dtype=np.float64)
    if startprob.shape != (n_states,):
        raise ValueError(f"startprob must have shape ({n_states},), got {startprob.shape}")
    if transmat.shape != (n_states, n_states):
        raise ValueError(f"transmat must have shape ({n_states}, {n_states}), got {transmat.shape}")
    for name, value in (("startprob", startprob), ("transmat", transmat)):
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise ValueError(f"{name} must hold finite non-negative probabilities")
    return log_frame, offsets, startprob, transmat


def _chunk_bounds(offsets: np.ndarray) -> np.ndarray:
    """Sequence indices that split the sequences into chunks of about equal row counts.

    Depends on ``offsets`` only (never on the thread count), so the order in which
    transition counts are summed, and hence the result, is fixed.
    """
    n_seq = offsets.shape[0] - 1
    n_chunks = min(n_seq, _MAX_CHUNKS)
    targets = offsets[-1] * np.arange(1, n_chunks) / n_chunks
    inner = np.searchsorted(offsets, targets, side="right")
    return np.unique(np.concatenate(([0], np.clip(inner, 0, n_seq), [n_seq]))).astype(np.int64)


# ---------------------------------------------------------------------- emissions
@numba.njit(parallel=True, **_JIT)
def _shift_rows(log_frame, shifted, rowmax):  # pragma: no cover - compiled
    """``shifted = log_frame - rowmax`` per row; return the number of NaN / +inf entries.

    A row that is ``-inf`` everywhere gets ``rowmax = 0`` so that it exponentiates to
    zeros (an impossible observation) rather than NaN.
    """
    n_rows, n_states = log_frame.shape
    bad = 0
    for t in numba.prange(n_rows):
        m = -np.inf
        n_bad = 0
        for k in range(n_states):
            v = log_frame[t, k]
            if not v < np.inf:  # NaN or +inf
                n_bad += 1
            elif v > m:
                m = v
        if m == -np.inf:
            m = 0.0
        rowmax[t] = m
        for k in range(n_states):
            shifted[t, k] = log_frame[t, k] - m
        bad += n_bad
    return bad


def _emission_factors(log_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(exp(log_frame - rowmax), rowmax)``: emission factors in [0, 1] and row shifts."""
    frame = np.empty_like(log_frame)
    rowmax = np.empty(log_frame.shape[0])
    if _shift_rows(log_frame, frame, rowmax):
        raise ValueError("log_frame must not contain NaN or +inf")
    np.exp(frame, out=frame)
    return frame, rowmax


def _prepare(log_frame, offsets, startprob, transmat):
    """Checked inputs of the scaled recursions: ``(frame, rowmax, offsets, bounds, start, trans)``."""
    log_frame, offsets, startprob, transmat = _check_inputs(log_frame, offsets, startprob, transmat)
    frame, rowmax = _emission_factors(log_frame)
    return frame, rowmax, offsets, _chunk_bounds(offsets), startprob, transmat


# ---------------------------------------------------------------------- forward-backward
@numba.njit(**_JIT)
def _forward(frame, rowmax, t0, t1, startprob, transmat, alpha, scale, base, mask, pred):
    """Scaled forward pass over rows ``t0:t1``; return the log-likelihood.

    Row ``t`` of alpha_hat and its normaliser go to ``alpha[base + ((t - t0) & mask)]``
    and ``scale[...]`` at the same index: ``base = t0, mask = -1`` keeps every row,
    ``base = 0, mask = 1`` two rolling rows (the log-likelihood alone). Returns
    ``-inf`` as soon as a normaliser is zero (the sequence is impossible).
    """
    n_states = frame.shape[1]
    loglik = 0.0
    prev = base
    for t in range(t0, t1):
        row = base + ((t - t0) & mask)
        if t == t0:
            for j in range(n_states):
                pred[j] = startprob[j]
        else:
            for j in range(n_states):
                pred[j] = 0.0
            for i in range(n_states):
                a = alpha[prev, i]
                for j in range(n_states):
                    pred[j] += a * transmat[i, j]
        c = 0.0
        for j in range(n_states):
            v = pred[j] * frame[t, j]
            alpha[row, j] = v
            c += v
        if c == 0.0:
            return -np.inf
        inv = 1.0 / c
        for j in range(n_states):
            alpha[row, j] *= inv
        scale[row] = c
        loglik += np.log(c) + rowmax[t]
        prev = row
    return loglik


@numba.njit(**_JIT)
def _normalise_row(post, t):
    """Divide row ``t`` of ``post`` by its sum (left alone if the sum is zero)."""
    total = 0.0
    for k in range(post.shape[1]):
        total += post[t, k]
    if total > 0.0:
        inv = 1.0 / total
        for k in range(post.shape[1]):
            post[t, k] *= inv


@numba.njit(**_JIT)
def _forward_backward_one(
    frame, rowmax, t0, t1, startprob, transmat, transmat_t, post, scale, xi, pred, beta, w
):
    """Forward-backward of rows ``t0:t1``: posteriors into ``post``, xi sums added to ``xi``.

    ``xi[i, j]`` accumulates ``sum_t alpha_hat[t, i] * w[t+1, j]`` (without the factor
    ``transmat[i, j]``). Returns the log-likelihood; an impossible sequence gets
    ``-inf``, zero posteriors and adds nothing to ``xi``.
    """
    n_states = frame.shape[1]
    loglik = _forward(frame, rowmax, t0, t1, startprob, transmat, post, scale, t0, -1, pred)
    if loglik == -np.inf:
        for t in range(t0, t1):
            for k in range(n_states):
                post[t, k] = 0.0
        return loglik
    _normalise_row(post, t1 - 1)  # gamma = alpha_hat at the last row (beta_hat = 1)
    for k in range(n_states):
        beta[k] = 1.0
    for t in range(t1 - 2, t0 - 1, -1):
        inv = 1.0 / scale[t + 1]
        for j in range(n_states):
            w[j] = frame[t + 1, j] * beta[j] * inv
        for i in range(n_states):
            a = post[t, i]
            for j in range(n_states):
                xi[i, j] += a * w[j]
        for i in range(n_states):
            beta[i] = 0.0
        for j in range(n_states):
            wj = w[j]
            for i in range(n_states):
                beta[i] += transmat_t[j, i] * wj
        for i in range(n_states):
            post[t, i] *= beta[i]
        _normalise_row(post, t)
    return loglik


@numba.njit(parallel=True, **_JIT)
def _forward_backward_kernel(
    frame, rowmax, offsets, bounds, startprob, transmat, post, scale, logliks, xi_chunks
):  # pragma: no cover - compiled
    """Forward-backward of every sequence, chunks of sequences in parallel."""
    n_states = frame.shape[1]
    transmat_t = np.ascontiguousarray(transmat.T)
    for ch in numba.prange(bounds.shape[0] - 1):
        pred = np.empty(n_states)
        beta = np.empty(n_states)
        w = np.empty(n_states)
        xi = xi_chunks[ch]
        for s in range(bounds[ch], bounds[ch + 1]):
            logliks[s] = _forward_backward_one(
                frame,
                rowmax,
                offsets[s],
                offsets[s + 1],
                startprob,
                transmat,
                transmat_t,
                post,
                scale,
                xi,
                pred,
                beta,
                w,
            )


@numba.njit(parallel=True, **_JIT)
def _forward_loglik_kernel(
    frame, rowmax, offsets, bounds, startprob, transmat, logliks
):  # pragma: no cover - compiled
    """Forward log-likelihood of every sequence, chunks of sequences in parallel."""
    n_states = frame.shape[1]
    for ch in numba.prange(bounds.shape[0] - 1):
        alpha = np.empty((2, n_states))
        scale = np.empty(2)
        pred = np.empty(n_states)
        for s in range(bounds[ch], bounds[ch + 1]):
            logliks[s] = _forward(
                frame,
                rowmax,
                offsets[s],
                offsets[s + 1],
                startprob,
                transmat,
                alpha,
                scale,
                0,
                1,
                pred,
            )


def forward_backward(
    log_frame: np.ndarray, offsets: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scaled forward-backward over all sequences: the E-step of Baum-Welch.

    Parameters
    ----------
    log_frame : ndarray of shape (T_total, K)
        ``log p(x_t | state k)`` of all sequences, stacked. ``-inf`` marks an
        observation impossible in a state; a row of zeros is a missing observation.
    offsets : ndarray of shape (S + 1,)
        Sequence boundaries: sequence ``s`` is rows ``offsets[s]:offsets[s + 1]``
        (``offsets[0] == 0``, ``offsets[-1] == T_total``, every length >= 1).
    startprob : ndarray of shape (K,)
        Initial state probabilities (zeros allowed).
    transmat : ndarray of shape (K, K)
        Row-stochastic transition probabilities (zeros allowed and kept exact).

    Returns
    -------
    logliks : ndarray of shape (S,)
        ``log p(x_s)`` of each sequence (``-inf`` where it is impossible).
    posteriors : ndarray of shape (T_total, K)
        State marginals ``gamma_t(k) = p(z_t = k | x_s)`` (zero rows for an
        impossible sequence).
    trans_counts : ndarray of shape (K, K)
        Expected transition counts ``sum_s sum_t xi_t(i, j)``.
    start_counts : ndarray of shape (K,)
        ``sum_s gamma`` at each sequence's first row.

    Raises
    ------
    ValueError
        If shapes disagree, ``offsets`` do not cover ``log_frame`` with non-empty
        sequences, or ``log_frame`` holds NaN or ``+inf``.

    Examples
    --------
    >>> import numpy as np
    >>> logliks, post, trans, start = forward_backward(
    ...     np.log([[0.9, 0.2], [0.1, 0.8]]), np.array([0, 2]),
    ...     np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]]))
    >>> bool(np.isclose(trans.sum(), 1.0)), bool(np.isclose(start.sum(), 1.0))
    (True, True)
    """
    frame, rowmax, offsets, bounds, startprob, transmat = _prepare(
        log_frame, offsets, startprob, transmat
    )
    n_rows, n_states = frame.shape
    posteriors = np.empty((n_rows, n_states))
    scale = np.empty(n_rows)
    logliks = np.empty(offsets.shape[0] - 1)
    xi_chunks = np.zeros((bounds.shape[0] - 1, n_states, n_states))
    _forward_backward_kernel(
        frame, rowmax, offsets, bounds, startprob, transmat, posteriors, scale, logliks, xi_chunks
    )
    trans_counts = xi_chunks.sum(axis=0) * transmat
    start_counts = posteriors[offsets[:-1]].sum(axis=0)
    return logliks, posteriors, trans_counts, start_counts


def forward_loglik(
    log_frame: np.ndarray, offsets: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
) -> np.ndarray:
    """Log-likelihood ``log p(x_s)`` of every sequence by the scaled forward pass.

    Parameters and input rules are those of :func:`forward_backward`; only two rows
    of forward variables are kept per chunk of sequences.

    Returns
    -------
    logliks : ndarray of shape (S,)
        ``log p(x_s)`` of each sequence (``-inf`` where it is impossible).
    """
    frame, rowmax, offsets, bounds, startprob, transmat = _prepare(
        log_frame, offsets, startprob, transmat
    )
    logliks = np.empty(offsets.shape[0] - 1)
    _forward_loglik_kernel(frame, rowmax, offsets, bounds, startprob, transmat, logliks)
    return logliks


# ---------------------------------------------------------------------- Viterbi
@numba.njit(**_JIT)
def _viterbi_one(log_frame, t0, t1, log_start, log_trans, path, backptr, delta, best, arg):
    """Viterbi of rows ``t0:t1`` in log space; the path goes to ``path[t0:t1]``.

    ``backptr`` rows ``t0:t1`` are scratch. Ties go to the lower state index.
    Returns the path's log-probability (``-inf``, with a path of zeros, if every
    path is impossible).
    """
    n_states = log_frame.shape[1]
    for k in range(n_states):
        delta[k] = log_start[k] + log_frame[t0, k]
    for t in range(t0 + 1, t1):
        d0 = delta[0]
        for j in range(n_states):
            best[j] = d0 + log_trans[0, j]
            arg[j] = 0
        for i in range(1, n_states):
            d = delta[i]
            for j in range(n_states):
                v = d + log_trans[i, j]
                if v > best[j]:
                    best[j] = v
                    arg[j] = i
        for j in range(n_states):
            delta[j] = best[j] + log_frame[t, j]
            backptr[t, j] = arg[j]
    state = 0
    for k in range(1, n_states):
        if delta[k] > delta[state]:
            state = k
    logprob = delta[state]
    if logprob == -np.inf:
        for t in range(t0, t1):
            path[t] = 0
        return logprob
    path[t1 - 1] = state
    for t in range(t1 - 1, t0, -1):
        state = backptr[t, state]
        path[t - 1] = state
    return logprob


@numba.njit(parallel=True, **_JIT)
def _viterbi_kernel(
    log_frame, offsets, bounds, log_start, log_trans, logprobs, path, backptr
):  # pragma: no cover - compiled
    """Viterbi of every sequence, chunks of sequences in parallel."""
    n_states = log_frame.shape[1]
    for ch in numba.prange(bounds.shape[0] - 1):
        delta = np.empty(n_states)
        best = np.empty(n_states)
        arg = np.empty(n_states, dtype=np.int32)
        for s in range(bounds[ch], bounds[ch + 1]):
            logprobs[s] = _viterbi_one(
                log_frame,
                offsets[s],
                offsets[s + 1],
                log_start,
                log_trans,
                path,
                backptr,
                delta,
                best,
                arg,
            )


def viterbi(
    log_frame: np.ndarray, offsets: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Most likely state path of every sequence (Viterbi, in log space).

    Parameters and input rules are those of :func:`forward_backward`; zero
    probabilities in ``startprob`` and ``transmat`` are ``log 0 = -inf``.

    Returns
    -------
    logprobs : ndarray of shape (S,)
        ``max_z log p(x_s, z)`` of each sequence (``-inf`` where every path is
        impossible).
    path : ndarray of shape (T_total,), dtype int64
        The most likely paths, stacked like ``log_frame``; among equally likely
        paths the one that prefers lower state indices from the end backwards. An
        impossible sequence gets a path of zeros.
    """
    log_frame, offsets, startprob, transmat = _check_inputs(log_frame, offsets, startprob, transmat)
    if not np.all(log_frame < np.inf):
        raise ValueError("log_frame must not contain NaN or +inf")
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.log(transmat)
    bounds = _chunk_bounds(offsets)
    logprobs = np.empty(offsets.shape[0] - 1)
    path = np.empty(log_frame.shape[0], dtype=np.int64)
    backptr = np.empty(log_frame.shape, dtype=np.int32)
    _viterbi_kernel(log_frame, offsets, bounds, log_start, log_trans, logprobs, path, backptr)
    return logprobs, path
