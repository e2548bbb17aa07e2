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
so the bound never falls below its value at the starting ``gamma``: starting every
document from its previous ``gamma`` makes batch variational EM monotone.

Documents run in parallel (``prange`` over chunks of documents, each with its own
scratch); nothing is summed across threads, so results do not depend on the thread
count.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from emkit._simd import _JIT

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
def _dot(a, b, w):  # pragma: no cover - compiled
    """sum_k a[k] b[w, k], four partial sums (a fixed order, pipelined)."""
    K = a.size
    s0 = s1 = s2 = s3 = 0.0
    k = 0
    while k + 4 <= K:
        s0 += a[k] * b[w, k]
        s1 += a[k + 1] * b[w, k + 1]
        s2 += a[k + 2] * b[w, k + 2]
        s3 += a[k + 3] * b[w, k + 3]
        k += 4
    while k < K:
        s0 += a[k] * b[w, k]
        k += 1
    return (s0 + s1) + (s2 + s3)


@numba.njit(**_JIT)
def _logsumexp_word(el, log_b, w):  # pragma: no cover - compiled
    K = el.size
    m = -np.inf
    for k in range(K):
        v = el[k] + log_b[w, k]
        if v > m:
            m = v
    s = 0.0
    for k in range(K):
        s += math.exp(el[k] + log_b[w, k] - m)
    return m + math.log(s)


@numba.njit(parallel=True, **_JIT)
def doc_estep(
    indptr, indices, counts, exp_b, b_max, log_b, gamma, alpha, tol, max_iter, chunks
):  # pragma: no cover - compiled
    """Coordinate ascent on every document's local factors.

    Parameters
    ----------
    indptr, indices, counts : CSR arrays of the documents (counts as float64)
    exp_b : (V, K) ``exp(E[log beta_kw] - b_max[w])``
    b_max : (V,) the largest ``E[log beta_kw]`` of each word
    log_b : (V, K) ``E[log beta_kw]`` (for the words done in log space)
    gamma : (N, K) starting values, overwritten by the final ones
    alpha, tol, max_iter : prior, mean-change tolerance, most updates (at least 1)
    chunks : (n_chunks + 1,) document boundaries of the parallel chunks

    Returns
    -------
    bound : (N,) each document's part of the ELBO at its final gamma
    ratio : (nnz,) ``n_dw / s_dw`` at the final gamma (-1: the word was done in log space)
    theta : (N, K) scaled ``exp(E[log theta_dk])`` at the final gamma
    elog_theta : (N, K) ``E[log theta_dk]`` at the final gamma
    n_updates : (N,) gamma updates made per document
    """
    N, K = gamma.shape
    bound = np.zeros(N)
    ratio = np.empty(counts.size)
    theta = np.empty((N, K))
    elog_theta = np.empty((N, K))
    n_updates = np.zeros(N, dtype=np.int64)
    const = math.lgamma(K * alpha) - K * math.lgamma(alpha)
    for c in numba.prange(chunks.size - 1):
        g = np.empty(K)
        el = np.empty(K)
        et = np.empty(K)
        acc = np.empty(K)
        direct = np.empty(K)
        for d in range(chunks[c], chunks[c + 1]):
            p0, p1 = indptr[d], indptr[d + 1]
            for k in range(K):
                g[k] = gamma[d, k]
            m = _expect(g, el, et)
            done = False
            updates = 0
            words = 0.0
            while True:
                acc[:] = 0.0
                direct[:] = 0.0
                for p in range(p0, p1):
                    w = indices[p]
                    cnt = counts[p]
                    s = _dot(et, exp_b, w)
                    if s > _TINY:
                        r = cnt / s
                        ratio[p] = r
                        if done:
                            words += cnt * (math.log(s) + b_max[w] + m)
                        else:
                            for k in range(K):
                                acc[k] += r * exp_b[w, k]
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
                gamma[d, k] = g[k]
                theta[d, k] = et[k]
                elog_theta[d, k] = el[k]
                total += g[k]
                local += (alpha - g[k]) * el[k] + math.lgamma(g[k])
            bound[d] = words + local - math.lgamma(total)
            n_updates[d] = updates
    return bound, ratio, theta, elog_theta, n_updates


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
    """Expected topic-word counts ``sum_d n_dw phi_dwk``, shape (V, K).

    ``chunks`` are word boundaries of the parallel chunks; every word is summed by one
    thread over its documents in increasing order.
    """
    V, K = exp_b.shape
    out = np.zeros((V, K))
    for c in numba.prange(chunks.size - 1):
        acc = np.empty(K)
        direct = np.empty(K)
        for w in range(chunks[c], chunks[c + 1]):
            acc[:] = 0.0
            direct[:] = 0.0
            for q in range(col_ptr[w], col_ptr[w + 1]):
                p = position[q]
                d = row[q]
                r = ratio[p]
                if r >= 0.0:
                    for k in range(K):
                        acc[k] += r * theta[d, k]
                else:
                    lse = _logsumexp_word(elog_theta[d], log_b, w)
                    for k in range(K):
                        direct[k] += counts[p] * math.exp(elog_theta[d, k] + log_b[w, k] - lse)
            for k in range(K):
                out[w, k] = exp_b[w, k] * acc[k] + direct[k]
    return out
