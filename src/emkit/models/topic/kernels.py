"""Numba kernels of LDA's variational E-step, on the non-zeros of a CSR count matrix.

For a document ``d`` with word counts ``n_dw``, the local factors of the mean-field
family are ``q(theta_d) = Dirichlet(gamma_d)`` and, for each word, a topic
distribution ``phi_dw``. Given the topic-word factors ``q(beta_k) =
Dirichlet(lambda_k)``, coordinate ascent alternates (Blei, Ng & Jordan 2003)::

    phi_dwk  proportional to  exp(E[log theta_dk] + E[log beta_kw])
    gamma_dk = alpha + sum_w n_dw phi_dwk

with ``E[log theta_dk] = digamma(gamma_dk) - digamma(sum_k gamma_dk)``. ``phi`` is
never stored: with ``t_k = exp(E[log theta_dk])`` and ``b_wk = exp(E[log beta_kw])``
the gamma update is ``gamma_dk = alpha + t_k sum_w (n_dw / s_w) b_wk`` with
``s_w = sum_k t_k b_wk``, so an inner iteration costs ``O(nnz_d K)``, and the topic-word
statistics ``sum_d n_dw phi_dwk = b_wk sum_d (n_dw / s_dw) t_dk`` are one pass over the
non-zeros by word (:func:`word_stats`).

Numerics: ``t`` is scaled by its largest entry and each word's row of ``b`` by its
largest entry (both then hold a 1), which leaves ``phi`` unchanged and keeps ``s_w``
at least the product of the two smaller factors; where even that underflows (priors
below about 1e-3), the word is done in log space (log-sum-exp over topics). The
per-document part of the evidence lower bound is evaluated at the final ``gamma``
with ``phi`` optimal for it::

    sum_w n_dw log sum_k exp(E[log theta_dk] + E[log beta_kw])
      + log Gamma(K alpha) - K log Gamma(alpha) - log Gamma(sum_k gamma_dk)
      + sum_k [(alpha - gamma_dk) E[log theta_dk] + log Gamma(gamma_dk)]

The inner loop stops when the mean absolute change of ``gamma_d`` falls below ``tol``
or after ``max_iter`` updates (at least one). Each update is a coordinate-ascent step,
so the bound never falls below its value at the starting ``gamma`` (see
:func:`emkit.models.topic.model.infer_documents` for how batch EM uses this).

The loops over topics take four at a time in vector registers (``emkit._simd``; the
topic axis is zero-padded to a multiple of 4), without ``fastmath``.

Documents run in parallel (``prange`` over chunks of documents, each with its own
scratch); nothing is summed across threads, so results do not depend on the thread
count.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from emkit._simd import (
    _JIT,
    _v4_fill,
    _v4_fma,
    _v4_load,
    _v4_load1,
    _v4_muladd,
    _v4_store1,
    _v4_sum,
)

__all__ = ["by_word", "digamma", "doc_estep", "word_stats"]

#: A scaled normaliser ``s_w`` below this is redone in log space.
_TINY = 1e-250


@numba.njit(**_JIT)
def _digamma(x):  # pragma: no cover - compiled
    """digamma(x) for x > 0: recurrence up to 10, then the asymptotic series
    (truncation error below 1e-16)."""
    r = 0.0
    while x < 10.0:
        r -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    t = f * (
        -1.0 / 12
        + f
        * (
            1.0 / 120
            + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760 - f / 12))))
        )
    )
    return r + math.log(x) - 0.5 / x + t


@numba.njit(**_JIT)
def digamma(x):  # pragma: no cover - compiled
    """Elementwise digamma of a 1-D array of positive numbers (a new array)."""
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = _digamma(x[i])
    return out


@numba.njit(**_JIT)
def _expect(g, el, et):  # pragma: no cover - compiled
    """E[log theta] of Dirichlet(g) into ``el``, exp of it scaled by its max into ``et``;
    returns the max."""
    K = g.size
    total = 0.0
    for k in range(K):
        total += g[k]
    psi_total = _digamma(total)
    m = -np.inf
    for k in range(K):
        el[k] = _digamma(g[k]) - psi_total
        if el[k] > m:
            m = el[k]
    for k in range(K):
        et[k] = math.exp(el[k] - m)
    return m


@numba.njit(**_JIT)
def _logsumexp_word(el, log_b, w):  # pragma: no cover - compiled
    """log sum_k exp(el[k] + log_b[w, k]) over the K = log_b.shape[1] topics (``el``
    may be longer: padded)."""
    K = log_b.shape[1]
    m = -np.inf
    for k in range(K):
        v = el[k] + log_b[w, k]
        if v > m:
            m = v
    s = 0.0
    for k in range(K):
        s += math.exp(el[k] + log_b[w, k] - m)
    return m + math.log(s)


@numba.njit(**_JIT)
def _ascend(p0, p1, data, tol, max_iter, g, scratch, ratio):  # pragma: no cover - compiled
    """Coordinate ascent on one document (non-zeros ``p0:p1``) from ``g`` (updated in
    place); ``max_iter = 0`` only evaluates. Returns (its part of the ELBO at the final
    ``g``, the number of updates); ``scratch`` rows 0 and 1 then hold ``E[log theta]``
    and its scaled exp, ``ratio[p0:p1]`` the final ``n_dw / s_dw``. ``data`` is
    ``(indices, counts, exp_b, b_max, log_b, alpha, const)`` (see :func:`doc_estep`;
    ``const = log Gamma(K alpha) - K log Gamma(alpha)``)."""
    indices, counts, exp_b, b_max, log_b, alpha, const = data
    K = g.size
    Kp = exp_b.shape[1]
    el, et, acc, direct = scratch[0], scratch[1], scratch[2], scratch[3]
    m = _expect(g, el, et)
    done = max_iter == 0
    updates = 0
    words = 0.0
    while True:
        acc[:] = 0.0
        direct[:] = 0.0
        for p in range(p0, p1):
            w = indices[p]
            cnt = counts[p]
            v = _v4_fill(0.0)
            for j in range(0, Kp, 4):
                v = _v4_fma(v, _v4_load1(et, j), _v4_load(exp_b, w, j))
            s = _v4_sum(v)
            if s > _TINY:
                r = cnt / s
                ratio[p] = r
                if done:
                    words += cnt * (math.log(s) + b_max[w] + m)
                else:
                    for j in range(0, Kp, 4):
                        _v4_store1(acc, j, _v4_muladd(_v4_load1(acc, j), r, _v4_load(exp_b, w, j)))
            else:
                ratio[p] = -1.0
                lse = _logsumexp_word(el, log_b, w)
                if done:
                    words += cnt * lse
                else:
                    for k in range(K):
                        direct[k] += cnt * math.exp(el[k] + log_b[w, k] - lse)
        if done:
            break
        change = 0.0
        for k in range(K):
            new = alpha + et[k] * acc[k] + direct[k]
            change += abs(new - g[k])
            g[k] = new
        m = _expect(g, el, et)
        updates += 1
        done = change < tol * K or updates >= max_iter
    total = 0.0
    local = const
    for k in range(K):
        total += g[k]
        local += (alpha - g[k]) * el[k] + math.lgamma(g[k])
    return words + local - math.lgamma(total), updates


@numba.njit(parallel=True, **_JIT)
def doc_estep(
    indptr,
    indices,
    counts,
    exp_b,
    b_max,
    log_b,
    start,
    alpha,
    tol,
    max_iter,
    mode,
    docs,
    chunks,
    out,
):  # pragma: no cover - compiled
    """Coordinate ascent on the local factors of the documents ``docs``.

    Parameters
    ----------
    indptr, indices, counts : CSR arrays of the documents (counts as float64)
    exp_b : (V, Kp) ``exp(E[log beta_kw] - b_max[w])``, zero-padded to ``Kp``, a
        multiple of 4 (the word loops work on four topics at a time)
    b_max : (V,) the largest ``E[log beta_kw]`` of each word
    log_b : (V, K) ``E[log beta_kw]`` (for the words done in log space)
    start : (N, K) starting ``gamma``
    alpha, tol, max_iter : prior, mean-change tolerance, most updates (at least 1)
    mode : int
        0: ascend from ``start``; 1: ascend from ``gamma = 1`` instead, and record the
        bound at ``start`` in ``floor``; 2: continue ascending from the ``gamma`` in
        ``out`` with tolerance ``tol / 100`` and, if that still ends below ``floor``,
        ascend from ``start`` instead (so the document ends at or above ``floor``).
    docs : (n,) rows to process; chunks : (n_chunks + 1,) boundaries in ``docs`` of
        the parallel chunks
    out : tuple ``(gamma (N, K), bound (N,), floor (N,), ratio (nnz,), theta (N, Kp),
        elog_theta (N, K), n_updates (N,))``, written at the processed rows: the final
        ``gamma``, each document's part of the ELBO there, the bound at ``start``
        (mode 1), ``n_dw / s_dw`` (-1 where the word was done in log space),
        the scaled ``exp(E[log theta])`` and ``E[log theta]``, and the updates made
        (added to).
    """
    gamma, bound, floor, ratio, theta, elog_theta, n_updates = out
    K = gamma.shape[1]
    Kp = exp_b.shape[1]
    const = math.lgamma(K * alpha) - K * math.lgamma(alpha)
    data = (indices, counts, exp_b, b_max, log_b, alpha, const)
    for c in numba.prange(chunks.size - 1):
        g = np.empty(K)
        scratch = np.zeros((4, Kp))
        for i in range(chunks[c], chunks[c + 1]):
            d = docs[i]
            p0, p1 = indptr[d], indptr[d + 1]
            g[:] = gamma[d] if mode == 2 else start[d]
            if mode == 1:
                floor[d], _ = _ascend(p0, p1, data, tol, 0, g, scratch, ratio)
                g[:] = 1.0
            inner_tol = tol / 100 if mode == 2 else tol
            value, updates = _ascend(p0, p1, data, inner_tol, max_iter, g, scratch, ratio)
            if mode == 2 and value < floor[d]:
                g[:] = start[d]
                value, more = _ascend(p0, p1, data, tol, max_iter, g, scratch, ratio)
                updates += more
            gamma[d] = g
            theta[d] = scratch[1]
            elog_theta[d] = scratch[0, :K]
            bound[d] = value
            n_updates[d] += updates


@numba.njit(**_JIT)
def by_word(indptr, indices, n_words):  # pragma: no cover - compiled
    """The non-zeros of a CSR matrix grouped by column (a counting sort).

    Returns ``(col_ptr, position, row)``: column ``w``'s non-zeros are entries
    ``col_ptr[w]:col_ptr[w + 1]`` of ``position`` (their index in the CSR arrays) and of
    ``row`` (their row), in increasing row order.
    """
    nnz = indices.size
    col_ptr = np.zeros(n_words + 1, dtype=np.int64)
    for p in range(nnz):
        col_ptr[indices[p] + 1] += 1
    for w in range(n_words):
        col_ptr[w + 1] += col_ptr[w]
    fill = col_ptr[:-1].copy()
    position = np.empty(nnz, dtype=np.int64)
    row = np.empty(nnz, dtype=np.int64)
    for d in range(indptr.size - 1):
        for p in range(indptr[d], indptr[d + 1]):
            q = fill[indices[p]]
            position[q] = p
            row[q] = d
            fill[indices[p]] += 1
    return col_ptr, position, row


@numba.njit(parallel=True, **_JIT)
def word_stats(
    col_ptr, position, row, counts, ratio, theta, elog_theta, exp_b, log_b, chunks
):  # pragma: no cover - compiled
    """Expected topic-word counts ``sum_d n_dw phi_dwk``, shape (V, Kp) (padded).

    ``chunks`` are word boundaries of the parallel chunks; every word is summed by one
    thread over its documents in increasing order.
    """
    V, Kp = exp_b.shape
    K = log_b.shape[1]
    out = np.zeros((V, Kp))
    for c in numba.prange(chunks.size - 1):
        acc = np.empty(Kp)
        direct = np.zeros(Kp)
        for w in range(chunks[c], chunks[c + 1]):
            acc[:] = 0.0
            direct[:] = 0.0
            for q in range(col_ptr[w], col_ptr[w + 1]):
                p = position[q]
                d = row[q]
                r = ratio[p]
                if r >= 0.0:
                    for j in range(0, Kp, 4):
                        _v4_store1(acc, j, _v4_muladd(_v4_load1(acc, j), r, _v4_load(theta, d, j)))
                else:
                    lse = _logsumexp_word(elog_theta[d], log_b, w)
                    for k in range(K):
                        direct[k] += counts[p] * math.exp(elog_theta[d, k] + log_b[w, k] - lse)
            for k in range(Kp):
                out[w, k] = exp_b[w, k] * acc[k] + direct[k]
    return out
