"""Shared cases of the state-space tests: random parameters, series sampled by plain
loops, and references independent of emkit's kernels (dense Gaussian conditioning
over the stacked states and observations)."""

from pathlib import Path

import numpy as np

from emkit.models.ssm.model import SSMParams

NILE = Path(__file__).parent / "data" / "nile.csv"


def nile() -> np.ndarray:
    """Annual flow of the Nile at Aswan, 1871-1970 (Durbin & Koopman 2012)."""
    return np.loadtxt(NILE, delimiter=",", skiprows=1)[:, 1]


def spd(rng, k, floor=0.5):
    a = rng.normal(size=(k, k))
    return a @ a.T / k + floor * np.eye(k)


def random_params(rng, n, p, diag_r=False) -> SSMParams:
    A = rng.normal(size=(n, n))
    A *= 0.8 / max(abs(np.linalg.eigvals(A)))
    R = spd(rng, p)
    if diag_r:
        R = np.diag(np.diag(R))
    return SSMParams(
        A, rng.normal(size=n), rng.normal(size=(p, n)), rng.normal(size=p),
        spd(rng, n), R, rng.normal(size=n), spd(rng, n),
    )  # fmt: skip


def sample(rng, p: SSMParams, T: int):
    """One sequence, by a plain loop."""
    n, q = len(p.transition), len(p.observation)
    x = rng.multivariate_normal(p.initial_mean, p.initial_cov)
    X, Y = np.empty((T, n)), np.empty((T, q))
    for t in range(T):
        if t:
            x = p.transition @ x + p.transition_offset
            x = x + rng.multivariate_normal(np.zeros(n), p.transition_cov)
        X[t] = x
        Y[t] = p.observation @ x + p.observation_offset
        Y[t] += rng.multivariate_normal(np.zeros(q), p.observation_cov)
    return Y, X


def dense_joint(p: SSMParams, T: int):
    """Mean and covariance of the stacked states (T n) and observations (T p)."""
    A, C = p.transition, p.observation
    n = len(A)
    mx = np.empty((T, n))
    covs = [p.initial_cov]
    mx[0] = p.initial_mean
    for t in range(1, T):
        mx[t] = A @ mx[t - 1] + p.transition_offset
        covs.append(A @ covs[-1] @ A.T + p.transition_cov)
    Sx = np.zeros((T * n, T * n))
    for s in range(T):
        for t in range(s, T):
            block = np.linalg.matrix_power(A, t - s) @ covs[s]
            Sx[t * n : (t + 1) * n, s * n : (s + 1) * n] = block
            Sx[s * n : (s + 1) * n, t * n : (t + 1) * n] = block.T
    Cb = np.kron(np.eye(T), C)
    my = (mx @ C.T + p.observation_offset).ravel()
    Sy = Cb @ Sx @ Cb.T + np.kron(np.eye(T), p.observation_cov)
    return mx.ravel(), Sx, my, Sy, Sx @ Cb.T


def dense_posterior(p: SSMParams, Y: np.ndarray):
    """Log-likelihood of the observed entries, and the posterior mean and covariance of
    the stacked states, by conditioning the dense joint Gaussian."""
    from scipy.stats import multivariate_normal

    T = len(Y)
    mx, Sx, my, Sy, Sxy = dense_joint(p, T)
    o = ~np.isnan(Y.ravel())
    y = Y.ravel()[o]
    Soo = Sy[np.ix_(o, o)]
    loglik = multivariate_normal(my[o], Soo).logpdf(y)
    G = np.linalg.solve(Soo, Sxy[:, o].T).T
    return loglik, mx + G @ (y - my[o]), Sx - G @ Sxy[:, o].T


def blocks(S, n, T, lag=0):
    """Diagonal (lag 0) or lag-one blocks Cov(x_t, x_{t-1}) of a stacked covariance."""
    if lag == 0:
        return np.array([S[t * n : (t + 1) * n, t * n : (t + 1) * n] for t in range(T)])
    return np.array([S[t * n : (t + 1) * n, (t - 1) * n : t * n] for t in range(1, T)])


def as_fixed(p: SSMParams, names) -> dict:
    return {k: getattr(p, k) for k in names}
