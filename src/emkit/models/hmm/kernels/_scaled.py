"""Rabiner's scaled forward and backward passes over one sequence (compiled).

Each row of ``log_frame`` is shifted by its maximum and exponentiated once, a block
of rows at a time right before the forward recursion reads them; the forward
variables are renormalised at every step and the normalisers carry the
log-likelihood (see :mod:`emkit.models.hmm.kernels`). A normaliser that underflows,
or a row of posteriors that does not sum to about one, tells the caller to redo the
sequence in log space (:mod:`emkit.models.hmm.kernels._logspace`).
"""

from __future__ import annotations

import numba
import numpy as np

from emkit._simd import _JIT, exp_nonpositive
from emkit.models.hmm.kernels._dense import _product_sum, _vecmat

#: Rows exponentiated at a time, just before the forward recursion reads them.
_EMIT_BLOCK = 64
#: A normaliser below this sends its sequence to the log-space recursions.
_TINY = 1e-280
#: The running product of normalisers is folded into the log-likelihood below this.
_FOLD = 1e-150


@numba.njit(**_JIT)
def _emit(log_frame, r0, r1, flat, f0):  # pragma: no cover - compiled
    """Emission factors of rows ``r0:r1``: ``exp(log_frame[t] - max_k log_frame[t])``.

    They go to ``flat[(f0 + t - r0) * K + k]``. Returns ``(sum of the row maxima,
    number of NaN or +inf entries)``. A row that is ``-inf`` everywhere counts as
    shifted by 0, so it becomes zeros (an impossible observation) rather than NaN.
    """
    n_states = log_frame.shape[1]
    shift = 0.0
    n_bad = 0
    e = f0 * n_states
    for t in range(r0, r1):
        m = -np.inf
        for k in range(n_states):
            v = log_frame[t, k]
            m = v if v > m else m
            n_bad += not v < np.inf  # NaN or +inf
        if m == -np.inf:
            m = 0.0
        shift += m
        for k in range(n_states):
            flat[e + k] = log_frame[t, k] - m
        e += n_states
    exp_nonpositive(flat[f0 * n_states : e])
    return shift, n_bad


@numba.njit(**_JIT)
def _forward(
    log_frame, t0, t1, startprob, transmat, frame, flat, keep, alpha, scale_inv, cur, nxt, bad
):  # pragma: no cover - compiled
    """Scaled forward pass over rows ``t0:t1``; return the log-likelihood.

    The emission factors are made ``_EMIT_BLOCK`` rows at a time, just before the
    recursion reads them. With ``keep``, they stay for the backward pass: row ``t``
    goes to ``frame[t - t0]`` (``flat`` is the same memory as 1-D), alpha_hat to
    ``alpha[t]`` and ``1 / c[t]`` to ``scale_inv[t - t0]``; without, ``frame`` is one
    block of scratch and ``alpha`` and ``scale_inv`` two rolling rows (the
    log-likelihood alone). ``cur`` carries the unnormalised forward row,
    so the next product need not wait for the division. NaN or +inf entries of
    ``log_frame`` are counted into ``bad[0]``. Returns NaN as soon as a normaliser
    falls below ``_TINY`` (the caller redoes the sequence in log space).
    """
    n_states = log_frame.shape[1]
    loglik = 0.0
    product = 1.0  # of normalisers not yet in loglik, kept above _FOLD * _FOLD
    inv = 1.0
    for u in range(t0, t1, _EMIT_BLOCK):
        v = min(u + _EMIT_BLOCK, t1)
        f0 = u - t0 if keep else 0
        shift, n_bad = _emit(log_frame, u, v, flat, f0)
        loglik += shift
        bad[0] += n_bad
        for t in range(u, v):
            if t == t0:
                for k in range(n_states):
                    nxt[k] = startprob[k]
            else:
                _vecmat(cur, transmat, nxt, False)
            c = _product_sum(nxt, inv, frame[f0 + t - u], cur)
            if not c >= _TINY:
                return np.nan
            inv = 1.0 / c
            row = t if keep else (t - t0) & 1
            for j in range(n_states):
                alpha[row, j] = cur[j] * inv
            scale_inv[t - t0 if keep else row] = inv
            if c < _FOLD:
                loglik += np.log(c)
            else:
                product *= c
                if product < _FOLD:
                    loglik += np.log(product)
                    product = 1.0
    return loglik + np.log(product)


@numba.njit(**_JIT)
def _backward(
    frame, t0, t1, transmat_t, post, scale_inv, xi, beta, block
):  # pragma: no cover - compiled
    """Scaled backward pass: ``post`` rows turn from alpha_hat into gamma.

    Adds ``sum_t alpha_hat[t, i] * w[t+1, j]`` to ``xi``. ``frame`` and ``scale_inv``
    are those of :func:`_forward` (row ``t`` at ``t - t0``); the rows of ``frame``
    are overwritten by ``w = b * beta_hat / c``. Rows go backwards in blocks of
    ``len(block)``: the recursion (one product by ``transmat`` per row) keeps each
    row's beta_hat in ``block``; then the block's share of ``xi`` is one product
    ``alpha_hat[block].T @ w[block + 1]`` with the sums in registers, and only then
    are the block's alpha_hat rows turned into gamma.

    Returns False if a row of posteriors does not sum to about one (an overflow of
    beta_hat): the caller then discards ``xi`` and redoes the sequence in log space.
    """
    n_states = frame.shape[1]
    for k in range(n_states):
        beta[k] = 1.0
    hi = t1 - 2
    while hi >= t0:
        lo = max(t0, hi - block.shape[0] + 1)
        for t in range(hi, lo - 1, -1):
            f = t + 1 - t0
            inv = scale_inv[f]
            for j in range(n_states):
                frame[f, j] *= beta[j] * inv
            _vecmat(frame[f], transmat_t, beta, False)
            for j in range(n_states):
                block[t - lo, j] = beta[j]
        for i in range(n_states):
            _vecmat(post[lo : hi + 1, i], frame[lo + 1 - t0 : hi + 2 - t0], xi[i], True)
        for t in range(lo, hi + 1):
            total = _product_sum(post[t], 1.0, block[t - lo], post[t])
            if not 0.5 < total < 2.0:
                return False
            inv = 1.0 / total
            for i in range(n_states):
                post[t, i] *= inv
        hi = lo - 1
    return True
