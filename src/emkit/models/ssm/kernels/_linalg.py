"""Small dense linear algebra for the Kalman recursions, compiled with Numba.

The matrices are tiny (a state of a few to a few tens of coordinates), so plain loops
beat a BLAS call and its overhead; none of these functions allocates.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["chol_solve", "cholesky", "close", "lower_solve", "symmetrize"]


@nb.njit(cache=True, nogil=True)
def cholesky(F: np.ndarray, q: int, L: np.ndarray) -> bool:
    """Lower Cholesky factor of ``F[:q, :q]`` into ``L[:q, :q]``; False when ``F`` is
    not positive definite."""
    for j in range(q):
        s = F[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        ljj = np.sqrt(s)
        L[j, j] = ljj
        for i in range(j + 1, q):
            s = F[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / ljj
        for i in range(j):
            L[i, j] = 0.0
    return True


@nb.njit(cache=True, nogil=True)
def lower_solve(L: np.ndarray, q: int, B: np.ndarray, m: int) -> None:
    """``B[:q, :m] <- L[:q, :q]^-1 B[:q, :m]`` (forward substitution)."""
    for c in range(m):
        for i in range(q):
            s = B[i, c]
            for k in range(i):
                s -= L[i, k] * B[k, c]
            B[i, c] = s / L[i, i]


@nb.njit(cache=True, nogil=True)
def chol_solve(L: np.ndarray, q: int, B: np.ndarray, m: int) -> None:
    """``B[:q, :m] <- (L L^T)^-1 B[:q, :m]`` for the factor ``L`` of :func:`cholesky`."""
    lower_solve(L, q, B, m)
    for c in range(m):
        for i in range(q - 1, -1, -1):
            s = B[i, c]
            for k in range(i + 1, q):
                s -= L[k, i] * B[k, c]
            B[i, c] = s / L[i, i]


@nb.njit(cache=True, nogil=True)
def symmetrize(P: np.ndarray) -> None:
    """Replace ``P`` by ``(P + P^T) / 2`` in place."""
    n = P.shape[0]
    for i in range(n):
        for j in range(i):
            s = 0.5 * (P[i, j] + P[j, i])
            P[i, j] = s
            P[j, i] = s


@nb.njit(cache=True, nogil=True)
def close(P: np.ndarray, Q: np.ndarray, rtol: float) -> bool:
    """Whether ``max |P - Q| <= rtol * max |Q|``."""
    diff = 0.0
    scale = 0.0
    for i in range(P.shape[0]):
        for j in range(P.shape[1]):
            diff = max(diff, abs(P[i, j] - Q[i, j]))
            scale = max(scale, abs(Q[i, j]))
    return diff <= rtol * scale
