"""Numba Kalman filter and Rauch-Tung-Striebel smoother over stacked sequences.

All sequences of a data set are rows of one ``(T_total, p)`` array, ``offsets``
marking the boundaries (sequence ``s`` is rows ``offsets[s]:offsets[s + 1]``), with a
boolean array of the observed entries (a partly observed row uses its observed
entries; a row with none is a pure prediction step). One entry point,
:func:`run_kalman`, filters and smooths every sequence and returns what the EM
E-step needs (log-likelihoods, smoothed means, E[y_t], sums of covariances) and, on
request, the filtered and smoothed moments of every step.

Numerics: the filtered covariance is updated in Joseph form and every covariance is
symmetrised; the log-likelihood uses the Cholesky factor of each innovation
covariance. The exact diffuse start (Durbin & Koopman 2012, ch. 5) is computed by de
Jong's augmentation: the filter runs from ``x_1 = 0`` with zero covariance, alongside
the response to each unit initial state; the flat prior on ``x_1`` is integrated out
in closed form (see :func:`run_kalman`). Covariance work stops once the filter and
the smoother reach their steady state (see :mod:`._filter`), so a long fully observed
series costs a few matrix-vector products per step.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from emkit.models.ssm.kernels._filter import forward
from emkit.models.ssm.kernels._linalg import cholesky
from emkit.models.ssm.kernels._smoother import backward

__all__ = ["STEADY_RTOL", "KalmanOutput", "run_kalman"]

#: Relative change of the predicted covariance (filter) or the smoothed covariance
#: (smoother) between two steps below which the recursion counts as converged.
STEADY_RTOL = 1e-14

_LOG_2PI = float(np.log(2.0 * np.pi))


class KalmanOutput(NamedTuple):
    """What :func:`run_kalman` returns (moments are given all the data of a sequence)."""

    failed: np.ndarray  # (S,) 0 ok; 1 F_t not positive definite; 2 diffuse state not identified
    failed_step: np.ndarray  # (S,) the step of a failure 1
    loglik: np.ndarray  # (S,) log-likelihood (diffuse log-likelihood with a diffuse start)
    means: np.ndarray  # (T, n) smoothed means
    yhat: np.ndarray  # (T, p) E[y_t]: observed values, conditional means where missing
    acc: np.ndarray  # (6, k, k) see _smoother.backward
    first_means: np.ndarray  # (S, n) smoothed means of the first states
    smoothed_covs: np.ndarray  # (T, n, n) or empty
    cross_covs: np.ndarray  # (T, n, n) Cov(x_t, x_{t-1}), row 0 of each sequence zero
    filtered_means: np.ndarray  # (T, n) or empty
    filtered_covs: np.ndarray  # (T, n, n) or empty


@nb.njit(cache=True, nogil=True)
def _posterior_initial(gram, n):
    """(ok, xhat, Sinv, quadratic term, log det S) of the flat-prior initial state."""
    r = gram.shape[0]
    S = gram[1:, 1:].copy()
    L = np.zeros((n, n))
    xhat = np.zeros(n)
    Sinv = np.zeros((n, n))
    if r == 1:
        return True, xhat, Sinv, gram[0, 0], 0.0
    if not cholesky(S, n, L):
        return False, xhat, Sinv, 0.0, 0.0
    Sinv = np.linalg.inv(S)
    Sinv = 0.5 * (Sinv + Sinv.T)
    g = gram[1:, 0].copy()
    xhat = -(Sinv @ g)
    logdet = 0.0
    for i in range(n):
        logdet += 2.0 * np.log(L[i, i])
    return True, xhat, Sinv, gram[0, 0] + g @ xhat, logdet


@nb.njit(cache=True, nogil=True)
def _filtered(af, Pf_rec, rec, gram_t, T, n, mf, Pf_out):
    """Filtered moments of each step; with a diffuse start those given y_1..y_t under
    the flat prior (NaN means and infinite variances until y_1..y_t identify x_1)."""
    r = af.shape[2]
    for t in range(T):
        Pf = Pf_rec[rec[t]]
        if r == 1:
            mf[t] = af[t, :, 0]
            Pf_out[t] = Pf
            continue
        ok, xhat, Sinv, _, _ = _posterior_initial(gram_t[t], n)
        if not ok:
            mf[t] = np.nan
            Pf_out[t] = np.nan
            for i in range(n):
                Pf_out[t, i, i] = np.inf
            continue
        H = af[t, :, 1:].copy()
        mf[t] = af[t, :, 0] + H @ xhat
        P = Pf + H @ Sinv @ H.T
        Pf_out[t] = 0.5 * (P + P.T)


@nb.njit(cache=True, nogil=True)
def _run(Y, obs, offsets, A, b, C, d, Q, R, m0, P0, diffuse, r_diag, rtol, store):
    S = offsets.size - 1
    T = offsets[-1]
    p, n = C.shape
    r = n + 1 if diffuse else 1
    k = max(n, p)
    failed = np.zeros(S, dtype=np.int64)
    failed_step = np.full(S, -1, dtype=np.int64)
    loglik = np.zeros(S)
    M = np.empty((T, n))
    Yhat = np.empty((T, p))
    acc = np.zeros((6, k, k))
    first = np.empty((S, n))
    Tst = T if store else 0
    Ps_out = np.zeros((Tst, n, n))
    Pc_out = np.zeros((Tst, n, n))
    mf = np.empty((Tst, n))
    Pf_out = np.empty((Tst, n, n))
    longest = 0
    for s in range(S):
        longest = max(longest, offsets[s + 1] - offsets[s])
    ap = np.empty((longest, n, r))
    af = np.empty((longest, n, r))
    Pp_rec = np.empty((longest, n, n))
    Pf_rec = np.empty((longest, n, n))
    rec = np.empty(longest, dtype=np.int64)
    gram = np.zeros((r, r))
    gram_t = np.zeros((longest if store else 0, r, r))
    M1 = np.zeros((n, r))
    if diffuse:
        P1 = np.zeros((n, n))
        for i in range(n):
            M1[i, i + 1] = 1.0
    else:
        P1 = P0
        M1[:, 0] = m0
    for s in range(S):
        lo, hi = offsets[s], offsets[s + 1]
        Ys, obs_s = Y[lo:hi], obs[lo:hi]
        gram[:, :] = 0.0
        step, logdet, n_obs = forward(
            Ys, obs_s, A, b, C, d, Q, R, M1, P1, rtol, ap, af, Pp_rec, Pf_rec, rec, gram, gram_t
        )
        if step >= 0:
            failed[s] = 1
            failed_step[s] = step
            return failed, failed_step, loglik, M, Yhat, acc, first, Ps_out, Pc_out, mf, Pf_out
        ok, xhat, Sinv, quad, logdet_s = _posterior_initial(gram, n)
        if not ok:
            failed[s] = 2
            return failed, failed_step, loglik, M, Yhat, acc, first, Ps_out, Pc_out, mf, Pf_out
        loglik[s] = -0.5 * (n_obs * _LOG_2PI + logdet + quad + logdet_s)
        if store:
            _filtered(af, Pf_rec, rec, gram_t, hi - lo, n, mf[lo:hi], Pf_out[lo:hi])
        backward(
            Ys, obs_s, A, C, d, R, r_diag, ap, af, Pp_rec, Pf_rec, rec, xhat, Sinv, rtol,
            M[lo:hi], Yhat[lo:hi], acc, Ps_out[lo:hi], Pc_out[lo:hi],
        )  # fmt: skip
        first[s] = M[lo]
    return failed, failed_step, loglik, M, Yhat, acc, first, Ps_out, Pc_out, mf, Pf_out


def run_kalman(
    Y: np.ndarray,
    observed: np.ndarray,
    offsets: np.ndarray,
    params,
    *,
    diffuse: bool = False,
    r_diag: bool = False,
    store: bool = False,
    rtol: float = STEADY_RTOL,
) -> KalmanOutput:
    """Filter and smooth every sequence.

    Parameters
    ----------
    Y : ndarray of shape (T_total, p)
        Observations, any finite value where missing.
    observed : bool ndarray of shape (T_total, p)
    offsets : int64 ndarray of shape (n_sequences + 1,)
    params : SSMParams-like
        ``transition``, ``transition_offset``, ``observation``, ``observation_offset``,
        ``transition_cov``, ``observation_cov``, ``initial_mean``, ``initial_cov``.
    diffuse : bool
        Exact diffuse start: the first state of each sequence has a flat prior and the
        log-likelihood is the diffuse one, ``lim (log L_k + n/2 log k)`` for
        ``x_1 ~ Normal(0, k I)``, ``k -> inf``; ``initial_mean``/``initial_cov`` unused.
    r_diag : bool
        The observation covariance is diagonal (skips a solve per missing pattern).
    store : bool
        Also return the filtered and smoothed moments of every step.
    rtol : float
        Steady-state tolerance (0: never skip covariance work).
    """
    f64 = np.float64

    def arr(x):
        return np.ascontiguousarray(x, dtype=f64)

    out = _run(
        arr(Y),
        np.ascontiguousarray(observed, dtype=np.bool_),
        np.ascontiguousarray(offsets, dtype=np.int64),
        arr(params.transition),
        arr(params.transition_offset),
        arr(params.observation),
        arr(params.observation_offset),
        arr(params.transition_cov),
        arr(params.observation_cov),
        arr(params.initial_mean),
        arr(params.initial_cov),
        bool(diffuse),
        bool(r_diag),
        float(rtol),
        bool(store),
    )
    return KalmanOutput(*out)
