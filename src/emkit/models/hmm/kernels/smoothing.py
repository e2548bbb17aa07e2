"""Forward-backward over all sequences: :func:`forward_backward` (the E-step of
Baum-Welch) and :func:`forward_loglik` (the log-likelihoods alone).

Each sequence runs the scaled recursions (:mod:`emkit.models.hmm.kernels._scaled`),
or the log-space ones where those fail; chunks of sequences run in parallel, each
with its own scratch and transition-count accumulator, summed in chunk order.
"""

from __future__ import annotations

import numba
import numpy as np

from emkit._simd import _JIT
from emkit.models.hmm.kernels._inputs import (
    _check_inputs,
    _chunk_bounds,
    _kernel_params,
    _longest,
    _raise_if_bad,
)
from emkit.models.hmm.kernels._logspace import _forward_backward_log, _forward_log
from emkit.models.hmm.kernels._scaled import _EMIT_BLOCK, _backward, _forward

__all__ = ["forward_backward", "forward_loglik"]

#: Rows per block of the backward pass (see ``_scaled._backward``).
_BACKWARD_BLOCK = 64


@numba.njit(**_JIT)
def _forward_backward_one(
    log_frame, t0, t1, params, frame, flat, post, scale_inv, xi_raw, xi_direct, scratch, bad
):  # pragma: no cover - compiled
    """Forward-backward of rows ``t0:t1``, scaled, or in log space where that fails.

    ``params`` is ``(startprob, transmat, transmat.T, log startprob, log transmat)``;
    ``scratch`` is ``(xi_seq (K, K), cur, nxt, w, block (B, K))``. Scaled xi sums
    (without the factor ``transmat``) go to ``xi_raw``, log-space counts to
    ``xi_direct``.
    """
    startprob, transmat, transmat_t, log_start, log_trans = params
    xi_seq, cur, nxt, w, block = scratch
    loglik = _forward(
        log_frame, t0, t1, startprob, transmat, frame, flat, True, post, scale_inv, cur, nxt, bad
    )
    if not np.isnan(loglik):
        if t1 - t0 == 1:
            return loglik
        xi_seq[:] = 0.0
        if _backward(frame, t0, t1, transmat_t, post, scale_inv, xi_seq, cur, block):
            xi_raw += xi_seq
            return loglik
    return _forward_backward_log(
        log_frame, t0, t1, log_start, log_trans, post, xi_direct, cur, nxt, w, bad
    )


@numba.njit(parallel=True, **_JIT)
def _forward_backward_kernel(
    log_frame, offsets, bounds, params, post, logliks, xi_raw, xi_direct, bad
):  # pragma: no cover - compiled
    """Forward-backward of every sequence, chunks of sequences in parallel.

    Each chunk has its own emission factors and normalisers, as long as its longest
    sequence, reused (and warm in cache) from one sequence to the next.
    """
    n_states = log_frame.shape[1]
    for ch in numba.prange(bounds.shape[0] - 1):
        longest = _longest(offsets, bounds, ch)
        flat = np.empty(longest * n_states)
        frame = flat.reshape((longest, n_states))
        scale_inv = np.empty(longest)
        scratch = (
            np.zeros((n_states, n_states)),
            np.empty(n_states),
            np.empty(n_states),
            np.empty(n_states),
            np.empty((_BACKWARD_BLOCK, n_states)),
        )
        for s in range(bounds[ch], bounds[ch + 1]):
            logliks[s] = _forward_backward_one(
                log_frame,
                offsets[s],
                offsets[s + 1],
                params,
                frame,
                flat,
                post,
                scale_inv,
                xi_raw[ch],
                xi_direct[ch],
                scratch,
                bad[ch : ch + 1],
            )


@numba.njit(parallel=True, **_JIT)
def _forward_loglik_kernel(
    log_frame, offsets, bounds, params, logliks, bad
):  # pragma: no cover - compiled
    """Forward log-likelihood of every sequence, chunks of sequences in parallel."""
    startprob, transmat, _, log_start, log_trans = params
    n_states = log_frame.shape[1]
    for ch in numba.prange(bounds.shape[0] - 1):
        flat = np.empty(_EMIT_BLOCK * n_states)
        frame = flat.reshape((_EMIT_BLOCK, n_states))
        alpha = np.empty((2, n_states))
        scale_inv = np.empty(2)
        cur = np.empty(n_states)
        nxt = np.empty(n_states)
        flag = bad[ch : ch + 1]
        for s in range(bounds[ch], bounds[ch + 1]):
            t0, t1 = offsets[s], offsets[s + 1]
            loglik = _forward(
                log_frame,
                t0,
                t1,
                startprob,
                transmat,
                frame,
                flat,
                False,
                alpha,
                scale_inv,
                cur,
                nxt,
                flag,
            )
            if np.isnan(loglik):
                loglik = _forward_log(log_frame, t0, t1, log_start, log_trans, alpha, False, flag)
            logliks[s] = loglik


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
    log_frame, offsets, startprob, transmat = _check_inputs(log_frame, offsets, startprob, transmat)
    bounds = _chunk_bounds(offsets)
    n_rows, n_states = log_frame.shape
    n_chunks = bounds.shape[0] - 1
    posteriors = np.empty((n_rows, n_states))
    logliks = np.empty(offsets.shape[0] - 1)
    xi_raw = np.zeros((n_chunks, n_states, n_states))
    xi_direct = np.zeros((n_chunks, n_states, n_states))
    bad = np.zeros(n_chunks, dtype=np.int64)
    _forward_backward_kernel(
        log_frame,
        offsets,
        bounds,
        _kernel_params(startprob, transmat),
        posteriors,
        logliks,
        xi_raw,
        xi_direct,
        bad,
    )
    _raise_if_bad(bad)
    trans_counts = xi_raw.sum(axis=0) * transmat + xi_direct.sum(axis=0)
    start_counts = posteriors[offsets[:-1]].sum(axis=0)
    return logliks, posteriors, trans_counts, start_counts


def forward_loglik(
    log_frame: np.ndarray, offsets: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
) -> np.ndarray:
    """Log-likelihood ``log p(x_s)`` of every sequence by the scaled forward pass.

    Parameters and input rules are those of :func:`forward_backward`; only a block
    of emission factors and two rows of forward variables are kept per chunk of
    sequences (no array of the size of ``log_frame`` is allocated).

    Returns
    -------
    logliks : ndarray of shape (S,)
        ``log p(x_s)`` of each sequence (``-inf`` where it is impossible).
    """
    log_frame, offsets, startprob, transmat = _check_inputs(log_frame, offsets, startprob, transmat)
    bounds = _chunk_bounds(offsets)
    logliks = np.empty(offsets.shape[0] - 1)
    bad = np.zeros(bounds.shape[0] - 1, dtype=np.int64)
    _forward_loglik_kernel(
        log_frame, offsets, bounds, _kernel_params(startprob, transmat), logliks, bad
    )
    _raise_if_bad(bad)
    return logliks
