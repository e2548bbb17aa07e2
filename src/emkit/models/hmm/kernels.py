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
``log_frame`` is shifted by its maximum and exponentiated once, so every emission
factor ``b[t, k]`` lies in ``[0, 1]`` with a 1 in each row; the forward variables
are renormalised at every step and the normalisers ``c[t]`` carry the
log-likelihood::

    alpha_hat[t] = (alpha_hat[t-1] @ A) * b[t] / c[t]
    beta_hat[t]  = A @ (b[t+1] * beta_hat[t+1]) / c[t+1]
    log p(x)     = sum_t (log c[t] + max_k log_frame[t, k])
    gamma[t]     = alpha_hat[t] * beta_hat[t]      (renormalised per row)
    xi_t(i, j)   = alpha_hat[t, i] A[i, j] b[t+1, j] beta_hat[t+1, j] / c[t+1]

The expected transition counts are accumulated as ``sum_t alpha_hat[t, i] w[t+1, j]``
with ``w = b * beta_hat / c`` and multiplied by ``A`` elementwise once at the end, so
a zero transition probability gives an exact zero count. No logarithm is taken per
step: the normalisers are multiplied together and the product's logarithm is taken
when it gets small.

The scaled recursion cannot tell an impossible sequence from one whose normaliser
underflows (an observation hundreds of nats less likely in every reachable state
than in the best state), nor survive an overflow of ``beta_hat``. When a normaliser
falls below ``1e-280`` or a row of posteriors does not sum to about one, that
sequence alone is redone in log space (log-sum-exp recursions on ``log_frame``).
So a sequence gets log-likelihood ``-inf``, zero posteriors and no counts only when
every state path has probability zero, never NaN. A row of zeros in ``log_frame``
is a missing observation: it multiplies every state by one.

Viterbi works in log space (``log 0 = -inf``) and stores the ``delta`` lattice
instead of back-pointers: the forward sweep is a max-plus product without argmax,
and the back-tracking recomputes the one argmax per step it needs. Ties go to the
lower state index.

Speed
-----
Three things make these kernels several times faster than hmmlearn's C++ ones:

* the exponentials are a polynomial ``exp`` (within 2 ulp of libm's) in a loop
  that LLVM vectorises, made 64 rows at a time right before the forward recursion
  reads them (in cache, not a separate pass over memory);
* the ``K x K`` products keep their partial sums in registers, four lanes of an
  explicit 4 x float64 vector type at a time (LLVM will not vectorise these
  reductions itself without ``fastmath``, which stays off: every lane does the
  IEEE operations of scalar code in the same order, multiply-adds fused where the
  CPU has FMA);
* the backward pass runs in blocks of 64 rows, and a block's share of the
  transition counts is one ``(K, 64) x (64, K)`` product instead of 64 outer
  products added into memory.

Parallelism: sequences are split into a fixed number of chunks of about equal
numbers of rows (the split does not depend on the thread count) and the chunks run
in parallel (``prange``); every chunk keeps its own scratch and transition-count
accumulator, and the accumulators are summed in chunk order, so results do not
depend on ``numba.set_num_threads``. A single sequence runs on one thread.
"""

from __future__ import annotations

import numba
import numpy as np

from emkit._simd import (
    _JIT,
    _v4_add,
    _v4_addmax_f,
    _v4_fill,
    _v4_load,
    _v4_load1,
    _v4_mul,
    _v4_muladd_f,
    _v4_scale,
    _v4_store1,
    _v4_sum,
    exp_nonpositive,
)

__all__ = ["forward_backward", "forward_loglik", "viterbi"]

#: Upper bound on the number of chunks the sequences are split into.
_MAX_CHUNKS = 64
#: Rows exponentiated at a time, just before the forward recursion reads them.
_EMIT_BLOCK = 64
#: Rows per block of the backward pass (see :func:`_backward`).
_BACKWARD_BLOCK = 64
#: A normaliser below this sends its sequence to the log-space recursions.
_TINY = 1e-280
#: The running product of normalisers is folded into the log-likelihood below this.
_FOLD = 1e-150


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
    if n_seq <= _MAX_CHUNKS:
        return np.arange(n_seq + 1, dtype=np.int64)  # a chunk per sequence
    n_chunks = _MAX_CHUNKS
    targets = offsets[-1] * np.arange(1, n_chunks) / n_chunks
    inner = np.searchsorted(offsets, targets, side="right")
    return np.unique(np.concatenate(([0], np.clip(inner, 0, n_seq), [n_seq]))).astype(np.int64)


# ---------------------------------------------------------------------- emissions


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


def _log_params(startprob: np.ndarray, transmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logarithms of the parameters, ``log 0 = -inf``."""
    with np.errstate(divide="ignore"):
        return np.log(startprob), np.log(transmat)


# ---------------------------------------------------------------------- small dense products
@numba.njit(**_JIT)
def _max(a, b):  # pragma: no cover - compiled
    return a if a >= b else b


@numba.njit(**_JIT)
def _add_product(s, a, m):  # pragma: no cover - compiled
    return s + a * m


@numba.njit(**_JIT)
def _max_sum(s, a, m):  # pragma: no cover - compiled
    return _max(s, a + m)


@numba.njit(**_JIT)
def _fold_columns(x, mat, out, accumulate, init, step, step4):  # pragma: no cover - compiled
    """``out[j] = step(...step(step(s, x[0], mat[0, j]), x[1], mat[1, j])..., x[n-1], mat[n-1, j])``.

    ``s`` is ``out[j]`` with ``accumulate``, else ``init``; ``step4`` is ``step`` on
    four columns at once. Sixteen, eight or four columns at a time (then one by
    one), their running values in vector registers: no store per step, so the loop
    runs at the machine's throughput rather than at its latency.
    """
    n_rows, n_cols = mat.shape
    j = 0
    while j + 16 <= n_cols:
        s0 = _v4_load1(out, j) if accumulate else _v4_fill(init)
        s1 = _v4_load1(out, j + 4) if accumulate else _v4_fill(init)
        s2 = _v4_load1(out, j + 8) if accumulate else _v4_fill(init)
        s3 = _v4_load1(out, j + 12) if accumulate else _v4_fill(init)
        for i in range(n_rows):
            a = x[i]
            s0 = step4(s0, a, _v4_load(mat, i, j))
            s1 = step4(s1, a, _v4_load(mat, i, j + 4))
            s2 = step4(s2, a, _v4_load(mat, i, j + 8))
            s3 = step4(s3, a, _v4_load(mat, i, j + 12))
        _v4_store1(out, j, s0)
        _v4_store1(out, j + 4, s1)
        _v4_store1(out, j + 8, s2)
        _v4_store1(out, j + 12, s3)
        j += 16
    if j + 8 <= n_cols:
        s0 = _v4_load1(out, j) if accumulate else _v4_fill(init)
        s1 = _v4_load1(out, j + 4) if accumulate else _v4_fill(init)
        for i in range(n_rows):
            a = x[i]
            s0 = step4(s0, a, _v4_load(mat, i, j))
            s1 = step4(s1, a, _v4_load(mat, i, j + 4))
        _v4_store1(out, j, s0)
        _v4_store1(out, j + 4, s1)
        j += 8
    if j + 4 <= n_cols:
        s0 = _v4_load1(out, j) if accumulate else _v4_fill(init)
        for i in range(n_rows):
            s0 = step4(s0, x[i], _v4_load(mat, i, j))
        _v4_store1(out, j, s0)
        j += 4
    for jj in range(j, n_cols):
        s = out[jj] if accumulate else init
        for i in range(n_rows):
            s = step(s, x[i], mat[i, jj])
        out[jj] = s


@numba.njit(**_JIT)
def _vecmat(x, mat, out, accumulate):  # pragma: no cover - compiled
    """``out[j] (+)= sum_i x[i] * mat[i, j]`` (with ``accumulate`` the sums start from ``out``)."""
    _fold_columns(x, mat, out, accumulate, 0.0, _add_product, _v4_muladd_f)


@numba.njit(**_JIT)
def _maxplus(x, mat, out):  # pragma: no cover - compiled
    """``out[j] = max_i (x[i] + mat[i, j])``, the max-plus twin of :func:`_vecmat`."""
    _fold_columns(x, mat, out, False, -np.inf, _max_sum, _v4_addmax_f)


@numba.njit(**_JIT)
def _product_sum(x, a, y, out):  # pragma: no cover - compiled
    """``out = x * a * y`` elementwise (``a`` a scalar); return ``sum(out)``.

    Four partial sums (then one by one for the last ``len % 4``), so the sum is not
    one long chain of dependent additions. ``out`` may be ``x`` or ``y``.
    """
    n = out.shape[0]
    n4 = n - n % 4
    acc = _v4_fill(0.0)
    for j in range(0, n4, 4):
        v = _v4_mul(_v4_scale(_v4_load1(x, j), a), _v4_load1(y, j))
        _v4_store1(out, j, v)
        acc = _v4_add(acc, v)
    total = _v4_sum(acc)
    for j in range(n4, n):
        v = x[j] * a * y[j]
        out[j] = v
        total += v
    return total


@numba.njit(**_JIT)
def _logsumexp(x):  # pragma: no cover - compiled
    """``log(sum(exp(x)))`` of a 1-D array (``-inf`` if every entry is)."""
    m = -np.inf
    for v in x:
        m = _max(m, v)
    if m == -np.inf:
        return m
    s = 0.0
    for v in x:
        s += np.exp(v - m)
    return m + np.log(s)


# ---------------------------------------------------------------------- scaled recursions
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


# ---------------------------------------------------------------------- log-space recursions
@numba.njit(**_JIT)
def _forward_log(
    log_frame, t0, t1, log_start, log_trans, la, keep, bad
):  # pragma: no cover - compiled
    """Log-space forward pass (rows of ``la`` as ``alpha`` in :func:`_forward`).

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


# ---------------------------------------------------------------------- forward-backward
@numba.njit(**_JIT)
def _longest(offsets, bounds, ch):  # pragma: no cover - compiled
    """Length of the longest sequence of chunk ``ch`` (the size of its scratch)."""
    longest = 0
    for s in range(bounds[ch], bounds[ch + 1]):
        longest = max(longest, offsets[s + 1] - offsets[s])
    return longest


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


def _raise_if_bad(bad: np.ndarray) -> None:
    if bad.any():
        raise ValueError("log_frame must not contain NaN or +inf")


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


def _kernel_params(startprob: np.ndarray, transmat: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(startprob, transmat, transmat.T, log startprob, log transmat)``, contiguous."""
    log_start, log_trans = _log_params(startprob, transmat)
    return startprob, transmat, np.ascontiguousarray(transmat.T), log_start, log_trans


# ---------------------------------------------------------------------- Viterbi
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

    Parameters and input rules are those of :func:`forward_backward`; zero
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
