"""Compiled (Numba) E-step kernels of Gaussian mixtures.

* :func:`diag_estep`: the whole E-step of a diagonal (or spherical) mixture in one
  pass over the data;
* :func:`normalise_columns`: log joints of any mixture, as the ``(K, B)`` block a
  matrix product gives, into responsibilities and the block's log-likelihood
  (the full and tied structures use it after their products).

One-pass diagonal E-step.

For a block of rows the kernel computes every component's log-density from the
residuals, ``log w_k p_k(x) = c_k - 1/2 sum_d (x_d - mu_kd)^2 / var_kd``, turns each row
into responsibilities (log-sum-exp with the polynomial ``exp`` of :mod:`emkit._simd`),
and adds the row's share of the statistics ``sum_n r_nk``, ``sum_n r_nk x_n`` and
``sum_n r_nk x_n**2`` (per feature) while the block is still in cache. The NumPy path
makes the same numbers from two thin matrix products and an ``(N, K)`` array that
goes through memory four times; this does one pass.

Numerics. Residuals are formed before squaring, so the log-densities carry no
cancellation of the expansion ``x'Lx - 2 x'L mu + mu'L mu`` (float32 data lose
nothing: every block is converted to float64 as it is copied). The statistics are
raw moments summed in float64, as on the NumPy path. Blocks of 64 rows are handled
four rows to a vector register (``_v4_*``), no ``fastmath``.

Parallelism: rows are split into chunks of ``_CHUNK`` rows (a split that does not
depend on the thread count); chunks run in parallel, each with its own
accumulators, and the accumulators are summed in chunk order, so results do not
depend on ``numba.set_num_threads``. Data of one chunk skip the parallel region (its
start would cost more than the E-step: small data sets fit many candidates of many
steps, as ``emkit demo`` does) and give the same numbers.
"""

from __future__ import annotations

import numba
import numpy as np

from emkit._simd import (
    _JIT,
    _v4_add,
    _v4_fill,
    _v4_fma,
    _v4_load,
    _v4_max,
    _v4_mul,
    _v4_muladd,
    _v4_scale,
    _v4_store,
    _v4_sub,
    _v4_sum,
    exp_nonpositive,
)

__all__ = ["diag_estep", "normalise_columns"]

#: rows per block: the block's copy, squares and responsibilities stay in L1
_BLOCK = 64
#: rows per parallel chunk (a multiple of _BLOCK)
_CHUNK = 64 * _BLOCK


@numba.njit(**_JIT)
def _copy_block(X, r0, nb, xb, x2):  # pragma: no cover - compiled
    """Rows ``r0:r0 + nb`` of ``X`` transposed into ``xb`` (float64), squares into ``x2``.

    Columns past ``nb`` (up to the next multiple of 4) are zero.
    """
    D = X.shape[1]
    nb4 = (nb + 3) & ~3
    for d in range(D):
        for b in range(nb):
            v = np.float64(X[r0 + b, d])
            xb[d, b] = v
            x2[d, b] = v * v
        for b in range(nb, nb4):
            xb[d, b] = 0.0
            x2[d, b] = 0.0


@numba.njit(**_JIT)
def _log_joint(xb, nb4, means, half_prec, const, lp):  # pragma: no cover - compiled
    """``lp[k, b] = const[k] + sum_d half_prec[k, d] * (xb[d, b] - means[k, d])**2``.

    ``half_prec`` is ``-1/2`` times the precisions. Sixteen rows (four vectors) per
    component at a time, so each scalar coefficient is broadcast once per 16 rows.
    """
    K, D = means.shape
    b = 0
    while b + 16 <= nb4:
        for k in range(K):
            a0 = _v4_fill(const[k])
            a1 = a0
            a2 = a0
            a3 = a0
            for d in range(D):
                m = _v4_fill(means[k, d])
                h = half_prec[k, d]
                t0 = _v4_sub(_v4_load(xb, d, b), m)
                t1 = _v4_sub(_v4_load(xb, d, b + 4), m)
                t2 = _v4_sub(_v4_load(xb, d, b + 8), m)
                t3 = _v4_sub(_v4_load(xb, d, b + 12), m)
                a0 = _v4_muladd(a0, h, _v4_mul(t0, t0))
                a1 = _v4_muladd(a1, h, _v4_mul(t1, t1))
                a2 = _v4_muladd(a2, h, _v4_mul(t2, t2))
                a3 = _v4_muladd(a3, h, _v4_mul(t3, t3))
            _v4_store(lp, k, b, a0)
            _v4_store(lp, k, b + 4, a1)
            _v4_store(lp, k, b + 8, a2)
            _v4_store(lp, k, b + 12, a3)
        b += 16
    while b < nb4:
        for k in range(K):
            a0 = _v4_fill(const[k])
            for d in range(D):
                t0 = _v4_sub(_v4_load(xb, d, b), _v4_fill(means[k, d]))
                a0 = _v4_muladd(a0, half_prec[k, d], _v4_mul(t0, t0))
            _v4_store(lp, k, b, a0)
        b += 4


@numba.njit(**_JIT)
def _normalise(lp, nb, nb4, beta, w, r0, weighted, shift, total):  # pragma: no cover
    """Rows of ``lp`` (log joints, (K, B)) into responsibilities times the row weights.

    Returns the block's objective: ``sum_b w_b (1/beta) log sum_k exp(beta lp[k, b])``.
    ``shift`` and ``total`` are (B,) scratch. Padding columns ``nb:nb4`` end as zeros.
    """
    K = lp.shape[0]
    for b in range(0, nb4, 4):
        mx = _v4_fill(-np.inf)
        for k in range(K):
            v = _v4_load(lp, k, b)
            if beta != 1.0:
                v = _v4_scale(v, beta)
                _v4_store(lp, k, b, v)
            mx = _v4_max(mx, v)
        _v4_store(shift, 0, b, mx)
        for k in range(K):
            _v4_store(lp, k, b, _v4_sub(_v4_load(lp, k, b), mx))
    for k in range(K):
        exp_nonpositive(lp[k, :nb4])
    for b in range(0, nb4, 4):
        s = _v4_fill(0.0)
        for k in range(K):
            s = _v4_add(s, _v4_load(lp, k, b))
        _v4_store(total, 0, b, s)
    value = 0.0
    for b in range(nb4):
        if b >= nb:
            total[0, b] = 0.0
            continue
        wb = w[r0 + b] if weighted else 1.0
        value += wb * ((shift[0, b] + np.log(total[0, b])) / beta)
        total[0, b] = wb / total[0, b]
    for k in range(K):
        for b in range(0, nb4, 4):
            _v4_store(lp, k, b, _v4_mul(_v4_load(lp, k, b), _v4_load(total, 0, b)))
    return value


@numba.njit(**_JIT)
def _add_counts(lp, nb4, nk):  # pragma: no cover - compiled
    """Add each row of ``lp``'s sum over the block to ``nk``."""
    for k in range(lp.shape[0]):
        a = _v4_fill(0.0)
        for b in range(0, nb4, 4):
            a = _v4_add(a, _v4_load(lp, k, b))
        nk[k] += _v4_sum(a)


@numba.njit(**_JIT)
def _accumulate(xb, x2, lp, nb4, nk, s1, s2):  # pragma: no cover - compiled
    """Add ``sum_b lp[k, b]``, ``sum_b lp[k, b] xb[d, b]`` and ``... x2[d, b]`` to the
    chunk's ``nk[k]``, ``s1[k, d]``, ``s2[k, d]`` (two components per pass over a row)."""
    K = lp.shape[0]
    D = xb.shape[0]
    _add_counts(lp, nb4, nk)
    k = 0
    while k + 2 <= K:
        for d in range(D):
            p1 = _v4_fill(0.0)
            p2 = p1
            q1 = p1
            q2 = p1
            for b in range(0, nb4, 4):
                x = _v4_load(xb, d, b)
                xx = _v4_load(x2, d, b)
                r = _v4_load(lp, k, b)
                u = _v4_load(lp, k + 1, b)
                p1 = _v4_fma(p1, r, x)
                p2 = _v4_fma(p2, r, xx)
                q1 = _v4_fma(q1, u, x)
                q2 = _v4_fma(q2, u, xx)
            s1[k, d] += _v4_sum(p1)
            s2[k, d] += _v4_sum(p2)
            s1[k + 1, d] += _v4_sum(q1)
            s2[k + 1, d] += _v4_sum(q2)
        k += 2
    if k < K:
        for d in range(D):
            p1 = _v4_fill(0.0)
            p2 = p1
            for b in range(0, nb4, 4):
                r = _v4_load(lp, k, b)
                p1 = _v4_fma(p1, r, _v4_load(xb, d, b))
                p2 = _v4_fma(p2, r, _v4_load(x2, d, b))
            s1[k, d] += _v4_sum(p1)
            s2[k, d] += _v4_sum(p2)


@numba.njit(**_JIT)
def _accumulate_centred(xb, lp, nb4, means, nk, s1, s2):  # pragma: no cover - compiled
    """As :func:`_accumulate`, with the moments of ``xb[d, b] - means[k, d]`` (residuals
    about each component's mean: no cancellation far from the origin)."""
    K = lp.shape[0]
    D = xb.shape[0]
    _add_counts(lp, nb4, nk)
    for k in range(K):
        for d in range(D):
            m = _v4_fill(means[k, d])
            p1 = _v4_fill(0.0)
            p2 = p1
            for b in range(0, nb4, 4):
                t = _v4_sub(_v4_load(xb, d, b), m)
                r = _v4_load(lp, k, b)
                p1 = _v4_fma(p1, r, t)
                p2 = _v4_fma(p2, r, _v4_mul(t, t))
            s1[k, d] += _v4_sum(p1)
            s2[k, d] += _v4_sum(p2)


@numba.njit(**_JIT)
def _estep_chunk(
    X, w, weighted, means, half_prec, const, beta, centred, c, nk, s1, s2
):  # pragma: no cover
    """Chunk ``c`` of the one-pass E-step: its statistics added into ``nk, s1, s2``; returns
    its log-likelihood."""
    N, D = X.shape
    K = means.shape[0]
    xb = np.empty((D, _BLOCK))
    x2 = np.empty((D, _BLOCK))
    lp = np.empty((K, _BLOCK))
    shift = np.empty((1, _BLOCK))
    total = np.empty((1, _BLOCK))
    end = min((c + 1) * _CHUNK, N)
    value = 0.0
    for r0 in range(c * _CHUNK, end, _BLOCK):
        nb = min(_BLOCK, end - r0)
        nb4 = (nb + 3) & ~3
        _copy_block(X, r0, nb, xb, x2)
        _log_joint(xb, nb4, means, half_prec, const, lp)
        value += _normalise(lp, nb, nb4, beta, w, r0, weighted, shift, total)
        if centred:
            _accumulate_centred(xb, lp, nb4, means, nk, s1, s2)
        else:
            _accumulate(xb, x2, lp, nb4, nk, s1, s2)
    return value


@numba.njit(parallel=True, cache=True, nogil=True)
def _estep_kernel(X, w, weighted, means, half_prec, const, beta, centred):  # pragma: no cover
    N, D = X.shape
    K = means.shape[0]
    n_chunks = (N + _CHUNK - 1) // _CHUNK
    nk = np.zeros((n_chunks, K))
    s1 = np.zeros((n_chunks, K, D))
    s2 = np.zeros((n_chunks, K, D))
    values = np.zeros(n_chunks)
    for c in numba.prange(n_chunks):
        values[c] = _estep_chunk(
            X, w, weighted, means, half_prec, const, beta, centred, c, nk[c], s1[c], s2[c]
        )
    tot_nk = np.zeros(K)
    tot_s1 = np.zeros((K, D))
    tot_s2 = np.zeros((K, D))
    value = 0.0
    for c in range(n_chunks):  # in chunk order: independent of the thread count
        tot_nk += nk[c]
        tot_s1 += s1[c]
        tot_s2 += s2[c]
        value += values[c]
    return tot_nk, tot_s1, tot_s2, value


@numba.njit(**_JIT)
def _estep_kernel_one_chunk(
    X, w, weighted, means, half_prec, const, beta, centred
):  # pragma: no cover
    """:func:`_estep_kernel` for at most ``_CHUNK`` rows, without a parallel region (whose
    start costs more than such an E-step, far more when the cores are busy)."""
    K, D = means.shape
    nk = np.zeros(K)
    s1 = np.zeros((K, D))
    s2 = np.zeros((K, D))
    value = _estep_chunk(X, w, weighted, means, half_prec, const, beta, centred, 0, nk, s1, s2)
    return nk, s1, s2, value


def diag_estep(
    X: np.ndarray,
    w: np.ndarray | None,
    means: np.ndarray,
    precisions: np.ndarray,
    const: np.ndarray,
    beta: float = 1.0,
    centred: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """E-step statistics of a diagonal Gaussian mixture in one pass over ``X``.

    Parameters
    ----------
    X : (N, D) float32 or float64 array, no NaN
    w : (N,) sample weights or None
    means, precisions : (K, D) arrays (precisions are inverse variances)
    const : (K,) ``log weight_k + 1/2 sum_d log precision_kd - D/2 log(2 pi)``
    beta : inverse temperature in (0, 1]; responsibilities are proportional to
        ``(w_k p_k(x))**beta``
    centred : moments of ``x - means[k]`` instead of ``x`` (exact far from the origin)

    Returns
    -------
    nk : (K,) ``sum_n w_n r_nk``
    s1 : (K, D) ``sum_n w_n r_nk x_n``
    s2 : (K, D) ``sum_n w_n r_nk x_n**2``
    value : ``sum_n w_n (1/beta) log sum_k (w_k p_k(x_n))**beta`` (the log-likelihood
        when ``beta = 1``)
    """
    weighted = w is not None
    w_arr = np.asarray(w, dtype=np.float64) if weighted else np.empty(0)
    kernel = _estep_kernel if len(X) > _CHUNK else _estep_kernel_one_chunk
    return kernel(
        X,
        w_arr,
        weighted,
        np.ascontiguousarray(means, dtype=np.float64),
        np.ascontiguousarray(-0.5 * np.asarray(precisions, dtype=np.float64)),
        np.ascontiguousarray(const, dtype=np.float64),
        float(beta),
        bool(centred),
    )


@numba.njit(**_JIT)
def _normalise_columns_kernel(lp, beta, w, weighted):  # pragma: no cover - compiled
    K, B = lp.shape
    shift = np.empty((1, _BLOCK))
    total = np.empty((1, _BLOCK))
    value = 0.0
    for b0 in range(0, B, _BLOCK):
        nb = min(_BLOCK, B - b0)
        block = lp[:, b0 : b0 + nb]
        if nb % 4 == 0:
            value += _normalise(block, nb, nb, beta, w, b0, weighted, shift, total)
        else:  # the ragged end: through a padded copy
            pad = np.full((K, _BLOCK), -np.inf)
            pad[:, :nb] = block
            value += _normalise(pad, nb, (nb + 3) & ~3, beta, w, b0, weighted, shift, total)
            block[:, :] = pad[:, :nb]
    return value


def normalise_columns(lp: np.ndarray, w: np.ndarray | None = None, beta: float = 1.0) -> float:
    """Columns of ``lp`` (K, B), log joints ``log w_k p_k(x_b)``, into responsibilities.

    In place: ``lp[:, b]`` becomes ``w_b * softmax(beta * lp[:, b])``. Returns
    ``sum_b w_b (1/beta) log sum_k exp(beta * lp[k, b])``. ``lp`` must be a
    C-contiguous float64 array (the transpose of an estimator's (B, K) block).
    """
    weighted = w is not None
    w_arr = np.asarray(w, dtype=np.float64) if weighted else np.empty(0)
    return _normalise_columns_kernel(lp, float(beta), w_arr, weighted)
