"""Weighted cross-product matrices and a stable solver for the regression M-steps.

The regression components (linear and softmax experts, the softmax gate) keep their
statistics as weighted cross-products ``sum_i c_i a_i a_i^T`` so that the statistics
of a data set are the sum of those of its parts. The systems built from them are
solved by :func:`solve_psd`: Jacobi (diagonal) scaling, then a symmetric eigenvalue
decomposition whose tiny eigenvalues are dropped (the minimum-norm least-squares
solution, as ``numpy.linalg.lstsq``). No matrix is inverted explicitly, and a
collinear design or a component with fewer points than coefficients gives a finite
answer, never NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["solve_psd", "weighted_grams"]

#: rows per block of :func:`weighted_grams` (keeps its temporary in cache-sized pieces)
_BLOCK = 8192


def weighted_grams(A: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``G[j] = sum_i C[i, j] a_i a_i^T`` for every column ``j`` of ``C``.

    Parameters
    ----------
    A : ndarray of shape (n, q)
    C : ndarray of shape (n, P)

    Returns
    -------
    ndarray of shape (P, q, q)

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[1.0, 2.0], [1.0, -1.0]])
    >>> weighted_grams(A, np.array([[1.0], [2.0]]))[0]
    array([[3., 0.],
           [0., 6.]])
    """
    n, q = A.shape
    P = C.shape[1]
    out = np.zeros((q, P * q))
    buffer = np.empty((min(n, _BLOCK), P, q))
    # One matrix product per block over all P weightings at once: A_b^T [c_1 A_b, ..., c_P A_b].
    for start in range(0, n, _BLOCK):
        a = A[start : start + _BLOCK]
        Z = buffer[: len(a)]
        np.multiply(C[start : start + _BLOCK, :, None], a[:, None, :], out=Z)
        out += a.T @ Z.reshape(len(a), P * q)
    G = out.reshape(q, P, q).transpose(1, 0, 2)
    return 0.5 * (G + G.transpose(0, 2, 1))


def solve_psd(S: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimum-norm solution of ``S x = b`` for symmetric positive semi-definite ``S``.

    Batched over leading axes: ``S`` (..., n, n), ``b`` (..., n). Coordinates whose
    diagonal entry is zero (no information) get 0; eigenvalues of the Jacobi-scaled
    matrix below ``n * eps`` times the largest are treated as zero.

    Examples
    --------
    >>> import numpy as np
    >>> S = np.array([[4.0, 2.0], [2.0, 2.0]])
    >>> np.allclose(solve_psd(S, np.array([2.0, 0.0])), np.linalg.solve(S, [2.0, 0.0]))
    True
    >>> solve_psd(np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([2.0, 2.0]))
    array([1., 1.])
    """
    S = np.asarray(S, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = S.shape[-1]
    d = np.diagonal(S, axis1=-2, axis2=-1)
    scale = np.zeros_like(d)
    np.divide(1.0, np.sqrt(d, where=d > 0, out=np.zeros_like(d)), out=scale, where=d > 0)
    Ss = S * scale[..., :, None] * scale[..., None, :]
    vals, vecs = np.linalg.eigh(Ss)
    cut = n * np.finfo(np.float64).eps * np.max(np.abs(vals), axis=-1, keepdims=True)
    inv = np.zeros_like(vals)
    np.divide(1.0, vals, out=inv, where=vals > cut)
    proj = np.einsum("...ji,...j->...i", vecs, b * scale) * inv
    return np.einsum("...ij,...j->...i", vecs, proj) * scale
