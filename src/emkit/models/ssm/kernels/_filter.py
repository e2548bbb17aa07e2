"""The Kalman filter of one sequence (forward pass), compiled with Numba.

Means carry ``r`` right-hand sides: column 0 is the filter of the data; with an
exact diffuse start (``r = 1 + n``) columns 1..n follow the response of the state to
a unit initial state ``x_1 = e_j``, with no data and no offsets (de Jong 1991). The
covariances are the same for every column.

Covariances depend on the parameters and the missing pattern, not on the data: a
*record* holds the prior and the filtered covariance of a step, and ``rec[t]`` names
the record of step ``t``. Once the predicted covariance of two successive fully
observed steps agrees to ``rtol`` (the Riccati recursion has reached its fixed point
to round-off, as statsmodels' converged filter), the following fully observed steps
reuse that record and its gain: their covariance work is skipped.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from emkit.models.ssm.kernels._linalg import chol_solve, cholesky, close, lower_solve, symmetrize

__all__ = ["forward"]


@nb.njit(cache=True, nogil=True)
def _joseph(P, K, C, R, idx, q, out):
    """``(I - K C_o) P (I - K C_o)^T + K R_oo K^T`` into ``out`` (Joseph form)."""
    n = P.shape[0]
    IKC = np.eye(n)
    for i in range(n):
        for j in range(n):
            s = 0.0
            for k in range(q):
                s += K[i, k] * C[idx[k], j]
            IKC[i, j] -= s
    out[:, :] = IKC @ P @ IKC.T
    KR = np.zeros((n, q))
    for i in range(n):
        for j in range(q):
            s = 0.0
            for k in range(q):
                s += K[i, k] * R[idx[k], idx[j]]
            KR[i, j] = s
    for i in range(n):
        for j in range(n):
            s = 0.0
            for k in range(q):
                s += KR[i, k] * K[j, k]
            out[i, j] += s
    symmetrize(out)


@nb.njit(cache=True, nogil=True)
def forward(Y, obs, A, b, C, d, Q, R, M1, P1, rtol, ap, af, Pp_rec, Pf_rec, rec, gram, gram_t):
    """Kalman filter of one sequence.

    Parameters
    ----------
    Y, obs : (T, p) float and bool arrays: the data (any value where missing) and
        which entries are observed.
    A, b, C, d, Q, R : the parameters.
    M1, P1 : (n, r) and (n, n): the prior means and covariance of the first state.
    rtol : relative tolerance of the steady-state test (0 turns it off).
    ap, af : (>= T, n, r) outputs: predicted and filtered means.
    Pp_rec, Pf_rec, rec : outputs: the covariance records and the record of each step.
    gram : (r, r) output, zeroed by the caller: sum over steps of ``W^T W``, ``W`` the
        whitened innovations ``L_t^-1 v_t`` (L_t the Cholesky factor of F_t).
    gram_t : (T, r, r) output of ``gram`` after each step, or an empty array.

    Returns
    -------
    (failed_step, sum of log det F_t, number of observed values); ``failed_step`` is
    -1, or the step whose innovation covariance is not positive definite.
    """
    T, p = Y.shape
    n = A.shape[0]
    r = M1.shape[1]
    idx = np.empty(p, dtype=np.int64)
    P = P1.copy()
    Pn = np.empty((n, n))
    a = M1.copy()
    K = np.zeros((n, p))
    L = np.zeros((p, p))
    F = np.empty((p, p))
    X = np.empty((p, n))
    v = np.empty((p, r))
    steady = False
    logdet = 0.0
    logdet_sum = 0.0
    n_obs = 0
    cur = -1
    nrec = 0
    store_gram = gram_t.shape[0] > 0
    for t in range(T):
        q = 0
        for j in range(p):
            if obs[t, j]:
                idx[q] = j
                q += 1
        full = q == p
        ap[t] = a
        reuse = steady and full
        if reuse:
            rec[t] = cur
        else:
            steady = False
            Pp_rec[nrec] = P
            if q > 0:
                for i in range(q):  # X = C_o P
                    for k in range(n):
                        s = 0.0
                        for m in range(n):
                            s += C[idx[i], m] * P[m, k]
                        X[i, k] = s
                for i in range(q):  # F = C_o P C_o^T + R_oo
                    for j in range(i + 1):
                        s = R[idx[i], idx[j]]
                        for m in range(n):
                            s += X[i, m] * C[idx[j], m]
                        F[i, j] = s
                        F[j, i] = s
                if not cholesky(F, q, L):
                    return t, 0.0, 0
                logdet = 0.0
                for i in range(q):
                    logdet += 2.0 * np.log(L[i, i])
                chol_solve(L, q, X, n)  # X = F^-1 C_o P, the gain is X^T
                for i in range(n):
                    for k in range(q):
                        K[i, k] = X[k, i]
                _joseph(P, K, C, R, idx, q, Pf_rec[nrec])
            else:
                Pf_rec[nrec] = P
            rec[t] = nrec
            cur = nrec
            nrec += 1
        if q > 0:
            for i in range(q):
                ci = idx[i]
                for c in range(r):
                    s = Y[t, ci] - d[ci] if c == 0 else 0.0
                    for m in range(n):
                        s -= C[ci, m] * a[m, c]
                    v[i, c] = s
            for i in range(n):
                for c in range(r):
                    s = a[i, c]
                    for k in range(q):
                        s += K[i, k] * v[k, c]
                    af[t, i, c] = s
            lower_solve(L, q, v, r)
            for c1 in range(r):
                for c2 in range(c1 + 1):
                    s = 0.0
                    for i in range(q):
                        s += v[i, c1] * v[i, c2]
                    gram[c1, c2] += s
                    if c2 != c1:
                        gram[c2, c1] += s
            logdet_sum += logdet
            n_obs += q
        else:
            af[t] = a
        if store_gram:
            gram_t[t] = gram
        if t == T - 1:
            break
        for i in range(n):
            for c in range(r):
                s = b[i] if c == 0 else 0.0
                for m in range(n):
                    s += A[i, m] * af[t, m, c]
                a[i, c] = s
        if not reuse:
            Pn[:, :] = A @ Pf_rec[cur] @ A.T + Q
            symmetrize(Pn)
            if full and rtol > 0.0 and close(Pn, P, rtol):
                steady = True
            P[:, :] = Pn
    return -1, logdet_sum, n_obs
