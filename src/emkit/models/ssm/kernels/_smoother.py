"""The Rauch-Tung-Striebel smoother of one sequence (backward pass), with the
lag-one cross covariances and the expected moments of missing observations.

It follows :func:`emkit.models.ssm.kernels._filter.forward`: the smoothed means carry
the same ``r`` columns; with a diffuse start the data column and the response to the
initial state are combined with the posterior of the initial state under a flat
prior, ``x_1 | y ~ Normal(xhat, Sinv)``:

    m_t = m0_t + H_t xhat,   P_t = P0_t + H_t Sinv H_t^T,
    Cov(x_{t+1}, x_t) = P0_{t+1,t} + H_{t+1} Sinv H_t^T,

where ``m0, P0`` are the moments given ``x_1 = 0`` and ``H_t`` the smoothed response
to ``x_1``. Cov(x_{t+1}, x_t | y) = P_{t+1} J_t^T (de Jong 1989), J_t the smoother gain.

A missing entry of y_t is a latent variable too: given x_t and the observed entries
``o``, the missing ones ``u`` are ``Normal(G x_t + h, Omega)`` with
``G = C_u - R_uo R_oo^-1 C_o``, ``h = d_u + R_uo R_oo^-1 (y_o - d_o)`` and
``Omega = R_uu - R_uo R_oo^-1 R_ou``. The smoother writes ``E[y_t]`` (observed values,
or ``G m_t + h``) and adds ``G P_t`` and ``G P_t G^T + Omega`` to the corrections of
``sum E[y x^T]`` and ``sum E[y y^T]``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from emkit.models.ssm.kernels._linalg import chol_solve, cholesky, close, symmetrize

__all__ = ["backward"]


@nb.njit(cache=True, nogil=True)
def _gain(A, Pf, Pp):
    """Smoother gain ``J = Pf A^T Pp^-1`` (a pseudo-inverse when Pp is singular)."""
    n = A.shape[0]
    X = A @ Pf
    L = np.zeros((n, n))
    if cholesky(Pp, n, L):
        chol_solve(L, n, X, n)
    else:
        X = np.linalg.pinv(Pp) @ X
    return X.T.copy()


@nb.njit(cache=True, nogil=True)
def _missing(t, Y, obs, C, d, R, r_diag, m, P, yhat, Syx_c, Syy_c):
    """E[y_t] into ``yhat`` and the moment corrections of the missing entries of y_t."""
    p, n = C.shape
    o = np.empty(p, dtype=np.int64)
    u = np.empty(p, dtype=np.int64)
    q = 0
    nu = 0
    for j in range(p):
        if obs[t, j]:
            o[q] = j
            q += 1
            yhat[j] = Y[t, j]
        else:
            u[nu] = j
            nu += 1
    G = np.empty((nu, n))
    h = np.empty(nu)
    Om = np.empty((nu, nu))
    for i in range(nu):
        G[i] = C[u[i]]
        h[i] = d[u[i]]
        for j in range(nu):
            Om[i, j] = R[u[i], u[j]]
    if q > 0 and not r_diag:
        Roo = np.empty((q, q))
        B = np.empty((q, n + 1 + nu))  # R_oo^-1 [C_o, y_o - d_o, R_ou]
        for i in range(q):
            for j in range(q):
                Roo[i, j] = R[o[i], o[j]]
            B[i, :n] = C[o[i]]
            B[i, n] = Y[t, o[i]] - d[o[i]]
            for j in range(nu):
                B[i, n + 1 + j] = R[o[i], u[j]]
        L = np.zeros((q, q))
        cholesky(Roo, q, L)
        chol_solve(L, q, B, n + 1 + nu)
        for i in range(nu):
            for k in range(q):
                w = R[u[i], o[k]]
                for j in range(n):
                    G[i, j] -= w * B[k, j]
                h[i] += w * B[k, n]
                for j in range(nu):
                    Om[i, j] -= w * B[k, n + 1 + j]
    GP = G @ P
    GPG = GP @ G.T
    for i in range(nu):
        s = h[i]
        for j in range(n):
            s += G[i, j] * m[j]
        yhat[u[i]] = s
        for j in range(n):
            Syx_c[u[i], j] += GP[i, j]
        for j in range(nu):
            Syy_c[u[i], u[j]] += GPG[i, j] + Om[i, j]


@nb.njit(cache=True, nogil=True)
def _combine(ms, Ps, xhat, Sinv, m, P, H):
    """Full moments from the column-wise ones (diffuse start), into ``m``, ``P``, ``H``."""
    n, r = ms.shape
    for i in range(n):
        s = ms[i, 0]
        for j in range(1, r):
            H[i, j - 1] = ms[i, j]
            s += ms[i, j] * xhat[j - 1]
        m[i] = s
    if r == 1:
        P[:, :] = Ps
    else:
        P[:, :] = Ps + H @ Sinv @ H.T
        symmetrize(P)


@nb.njit(cache=True, nogil=True)
def backward(
    Y, obs, A, C, d, R, r_diag, ap, af, Pp_rec, Pf_rec, rec, xhat, Sinv, rtol,
    M, Yhat, acc, Ps_out, Pc_out,
):  # fmt: skip
    """RTS smoother of one sequence of length T = len(Y) after :func:`forward`.

    Writes the smoothed means into ``M`` (T, n) and E[y_t] into ``Yhat`` (T, p), and
    adds to ``acc`` (6, ., .): [0] sum of P_t, [1] P_1, [2] P_T, [3] sum of
    Cov(x_{t+1}, x_t), [4] (p, n) corrections of sum E[y x^T], [5] (p, p) corrections
    of sum E[y y^T]. ``Ps_out``/``Pc_out`` (T, n, n) receive the smoothed covariances
    and Cov(x_t, x_{t-1}) (row 0 untouched) unless they are empty.
    """
    T, p = Y.shape
    n = A.shape[0]
    r = af.shape[2]
    store = Ps_out.shape[0] > 0
    ms = af[T - 1].copy()
    Ps = Pf_rec[rec[T - 1]].copy()
    Pnew = np.empty((n, n))
    cross = np.empty((n, n))
    crossf = np.empty((n, n))
    m = np.empty(n)
    P = np.empty((n, n))
    H = np.empty((n, max(r - 1, 1)))
    Hn = np.empty((n, max(r - 1, 1)))
    msn = np.empty((n, r))
    diff = np.empty((n, r))
    J = np.zeros((n, n))
    jrec = -1
    steady = False
    _combine(ms, Ps, xhat, Sinv, m, P, H)
    M[T - 1] = m
    acc[0, :n, :n] += P
    acc[2, :n, :n] += P
    if store:
        Ps_out[T - 1] = P
    if obs[T - 1].all():
        Yhat[T - 1] = Y[T - 1]
    else:
        _missing(T - 1, Y, obs, C, d, R, r_diag, m, P, Yhat[T - 1], acc[4, :p, :n], acc[5, :p, :p])
    for t in range(T - 2, -1, -1):
        rt = rec[t]
        rn = rec[t + 1]
        if not (rt == rn and jrec == rt):
            J = _gain(A, Pf_rec[rt], Pp_rec[rn])
            jrec = rt if rt == rn else -1
            steady = False
        for i in range(n):
            for c in range(r):
                diff[i, c] = ms[i, c] - ap[t + 1, i, c]
        for i in range(n):
            for c in range(r):
                s = af[t, i, c]
                for k in range(n):
                    s += J[i, k] * diff[k, c]
                msn[i, c] = s
        if not steady:
            cross[:, :] = Ps @ J.T
            Pnew[:, :] = Pf_rec[rt] + J @ (Ps - Pp_rec[rn]) @ J.T
            symmetrize(Pnew)
            if jrec == rt and rtol > 0.0 and close(Pnew, Ps, rtol):
                steady = True
            Ps[:, :] = Pnew
        Hn[:, :] = H
        ms[:, :] = msn
        _combine(ms, Ps, xhat, Sinv, m, P, H)
        if r > 1:
            crossf[:, :] = cross + Hn @ Sinv @ H.T
        else:
            crossf[:, :] = cross
        M[t] = m
        acc[0, :n, :n] += P
        acc[3, :n, :n] += crossf
        if store:
            Ps_out[t] = P
            Pc_out[t + 1] = crossf
        if obs[t].all():
            Yhat[t] = Y[t]
        else:
            _missing(t, Y, obs, C, d, R, r_diag, m, P, Yhat[t], acc[4, :p, :n], acc[5, :p, :p])
    acc[1, :n, :n] += P
