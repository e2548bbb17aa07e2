"""M-steps of the 14 parsimonious structures of mclust, on scatter matrices.

Every function here maximises (or, for the iterative ones, increases) the covariance
part of the expected complete-data log-likelihood,

    Q(Sigma) = -1/2 sum_k [ n_k log|Sigma_k| + tr(W_k Sigma_k^{-1}) ],

where ``W_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)'`` is component k's scatter about its
new mean and ``n_k = sum_i r_ik``, over the covariances of the form
``Sigma_k = lambda_k D_k A_k D_k'`` (volume ``lambda_k > 0``, diagonal shape ``A_k``
with ``det A_k = 1``, orthogonal orientation ``D_k``) that the structure allows.

Closed forms (Celeux & Govaert 1995): EII, VII, EEI, VVI, EVI, EEE, EEV, EVV, VVV.
Iterative (Celeux & Govaert 1995 for VEI, VEE, VEV; Browne & McNicholas 2014 for
the common orientation of EVE and VVE, a majorisation-minimisation of Flury's
problem): each step of the iteration increases Q, and the iteration starts from the
previous parameters where they are given, so the step never lowers Q below its value
at the previous parameters (a generalized M-step).

All functions return a :class:`Decomposition` with one entry per component.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Decomposition", "compose", "eigen_decomposition", "q_value", "solve"]

#: inner iterations of the iterative M-steps stop when Q rises by less than this
#: relative amount, or after ``_MAX_INNER`` steps
_INNER_RTOL = 1e-13
_MAX_INNER = 500


class Decomposition(NamedTuple):
    """``Sigma_k = volume[k] * orientation[k] @ diag(shape[k]) @ orientation[k].T``."""

    volume: np.ndarray  # (K,)
    shape: np.ndarray  # (K, D), each row with product 1
    orientation: np.ndarray  # (K, D, D), orthogonal


def compose(dec: Decomposition) -> np.ndarray:
    """The (K, D, D) covariances of a decomposition (exactly symmetric)."""
    rot = dec.orientation
    cov = dec.volume[:, None, None] * ((rot * dec.shape[:, None, :]) @ np.swapaxes(rot, 1, 2))
    return 0.5 * (cov + np.swapaxes(cov, 1, 2))


def eigen_decomposition(full: np.ndarray) -> Decomposition:
    """Each component's own decomposition: eigenvalues in descending order."""
    vals, vecs = _eig_desc(np.asarray(full, dtype=np.float64))
    g, A = _normalise(vals)
    return Decomposition(g, A, vecs.copy())


def q_value(W: np.ndarray, nk: np.ndarray, cov: np.ndarray) -> float:
    """``-1/2 sum_k [n_k log|Sigma_k| + tr(W_k Sigma_k^{-1})]`` (-inf if not PD)."""
    sign, logdet = np.linalg.slogdet(cov)
    if np.any(sign <= 0):
        return -np.inf
    trace = np.einsum("kij,kji->k", W, np.linalg.inv(cov))
    return float(-0.5 * np.sum(nk * logdet + trace))


def _gmean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(x), axis=axis))


def _normalise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(g, x / g)`` with ``g`` the geometric mean along the last axis."""
    g = _gmean(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return g, x / g[..., None]


def _eig_desc(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (as columns) of symmetric matrices."""
    vals, vecs = np.linalg.eigh(0.5 * (S + np.swapaxes(S, -1, -2)))
    return np.maximum(vals[..., ::-1], 0.0), vecs[..., ::-1]


def _dec(volume, shape, orientation, K: int) -> Decomposition:
    D = np.shape(shape)[-1]
    return Decomposition(
        np.broadcast_to(np.asarray(volume, dtype=np.float64), (K,)).copy(),
        np.broadcast_to(np.asarray(shape, dtype=np.float64), (K, D)).copy(),
        np.broadcast_to(np.asarray(orientation, dtype=np.float64), (K, D, D)).copy(),
    )


def _iterate(step, state, value_of):
    """Repeat ``state = step(state)`` while Q (``value_of(state)``) still rises."""
    value = value_of(state)
    for _ in range(_MAX_INNER):
        new = step(state)
        new_value = value_of(new)
        if not new_value >= value:  # round-off at the optimum: keep the better state
            break
        state, rise, value = new, new_value - value, new_value
        if rise <= _INNER_RTOL * max(abs(value), 1.0):
            break
    return state


# ------------------------------------------------------------------ diagonal family
def _diagonal(W, nk, vol: str, shape: str, previous: Decomposition | None) -> Decomposition:
    K, D = W.shape[:2]
    n = nk.sum()
    dW = np.diagonal(W, axis1=1, axis2=2)  # (K, D)
    eye = np.eye(D)
    if shape == "I":  # EII, VII
        trace = dW.sum(axis=1)
        volume = trace.sum() / (n * D) if vol == "E" else trace / (nk * D)
        return _dec(volume, np.ones(D), eye, K)
    if vol == "E" and shape == "E":  # EEI
        g, A = _normalise(dW.sum(axis=0) / n)
        return _dec(g, A, eye, K)
    if vol == "V" and shape == "V":  # VVI
        g, A = _normalise(dW / nk[:, None])
        return _dec(g, A, eye, K)
    if vol == "E":  # EVI
        g, A = _normalise(dW)
        return _dec(g.sum() / n, A, eye, K)
    # VEI: alternate the volumes given the shape and the shape given the volumes
    A0 = previous.shape[0] if previous is not None else _normalise(dW.sum(axis=0))[1]

    def volumes(A):
        return (dW / A).sum(axis=1) / (D * nk)

    def step(A):
        return _normalise((dW / volumes(A)[:, None]).sum(axis=0))[1]

    def value(A):
        lam = volumes(A)
        return -0.5 * float(np.sum(nk * D * np.log(lam) + (dW / A).sum(axis=1) / lam))

    A = _iterate(step, A0, value)
    return _dec(volumes(A), A, eye, K)


# ------------------------------------------------------------------ general orientation
def _common_orientation(prev: Decomposition) -> np.ndarray:
    return prev.orientation[0]


def _vee(W, nk, previous):
    K, D = W.shape[:2]
    if previous is not None:
        C0 = compose(previous)[0] / previous.volume[0]
    else:
        C0 = W.sum(axis=0) / np.linalg.det(W.sum(axis=0)) ** (1.0 / D)

    def volumes(C):
        return np.einsum("kij,ji->k", W, np.linalg.inv(C)) / (D * nk)

    def step(C):
        S = (W / volumes(C)[:, None, None]).sum(axis=0)
        return S / np.linalg.det(S) ** (1.0 / D)

    def value(C):
        lam = volumes(C)
        return -0.5 * float(np.sum(nk * D * np.log(lam) + D * nk))

    C = _iterate(step, C0, value)
    vals, vecs = _eig_desc(C)
    return _dec(volumes(C), _normalise(vals)[1], vecs, K)


def _eev_vev(W, nk, vol, previous):
    K, D = W.shape[:2]
    omega, L = _eig_desc(W)  # (K, D) descending, (K, D, D)
    n = nk.sum()
    if vol == "E":
        g, A = _normalise(omega.sum(axis=0))
        return Decomposition(np.full(K, g / n), np.tile(A, (K, 1)), L)
    A0 = np.sort(previous.shape[0])[::-1] if previous is not None else None
    if A0 is None:
        A0 = _normalise(omega.sum(axis=0))[1]

    def volumes(A):
        return (omega / A).sum(axis=1) / (D * nk)

    def step(A):
        return _normalise((omega / volumes(A)[:, None]).sum(axis=0))[1]

    def value(A):
        return -0.5 * float(np.sum(nk * D * np.log(volumes(A)) + D * nk))

    A = _iterate(step, A0, value)
    return Decomposition(volumes(A), np.tile(A, (K, 1)), L)


def _mm_orientation(W, alphas, M, rot):
    """One majorisation step for ``min_O sum_k tr(W_k rot diag(M_k) rot')`` over orthogonal rot
    (Browne & McNicholas 2014), alternating their two majorisers: with ``alpha_k`` the
    largest eigenvalue of ``W_k``, ``G = sum_k (alpha_k I - W_k) rot diag(M_k)``; with
    ``m_k = max M_k``, ``G = sum_k W_k rot (m_k I - diag(M_k))``. The minimiser of the
    linear majoriser is ``rot = U V'`` from the SVD ``G = U S V'``."""
    G = ((alphas[:, None, None] * rot[None] - W @ rot) * M[:, None, :]).sum(axis=0)
    U, _, Vt = np.linalg.svd(G)
    rot = U @ Vt
    m = M.max(axis=1)
    G = (W @ rot * (m[:, None] - M)[:, None, :]).sum(axis=0)
    U, _, Vt = np.linalg.svd(G)
    return U @ Vt


def _eve_vve(W, nk, vol, previous):
    """Common orientation, varying shape: alternate the volumes and shapes given the
    orientation (closed form) and majorisation steps on the orientation."""
    K, D = W.shape[:2]
    n = nk.sum()
    if previous is not None:
        rot0 = _common_orientation(previous)
    else:
        rot0 = _eig_desc(W.sum(axis=0))[1]
    alphas = np.linalg.eigvalsh(W)[:, -1]

    def given(rot):
        B = np.einsum("ji,kjl,li->ki", rot, W, rot)  # diag(rot' W_k rot)
        g, A = _normalise(np.maximum(B, 0.0))
        lam = np.full(K, g.sum() / n) if vol == "E" else g / nk
        return lam, A

    def step(rot):
        lam, A = given(rot)
        return _mm_orientation(W, alphas, 1.0 / (lam[:, None] * A), rot)

    def value(rot):
        lam, A = given(rot)
        B = np.einsum("ji,kjl,li->ki", rot, W, rot)
        return -0.5 * float(np.sum(nk * D * np.log(lam) + (B / A).sum(axis=1) / lam))

    rot = _iterate(step, rot0, value)
    lam, A = given(rot)
    return Decomposition(lam, A, np.broadcast_to(rot, (K, D, D)).copy())


def solve(
    name: str, W: np.ndarray, nk: np.ndarray, previous: Decomposition | None = None
) -> Decomposition:
    """The M-step of mclust model ``name`` (e.g. "VEV") from scatter matrices ``W``
    (K, D, D) and weights ``nk`` (K,); ``previous`` warm-starts the iterative ones."""
    vol, shape, orient = name
    K = W.shape[0]
    n = nk.sum()
    if orient == "I":
        return _diagonal(W, nk, vol, shape, previous)
    if name == "EEE":
        vals, vecs = _eig_desc(W.sum(axis=0) / n)
        g, A = _normalise(vals)
        return _dec(g, A, vecs, K)
    if name == "VVV":
        vals, vecs = _eig_desc(W / nk[:, None, None])
        g, A = _normalise(vals)
        return Decomposition(g, A, vecs)
    if name == "EVV":
        vals, vecs = _eig_desc(W)
        g, A = _normalise(vals)
        return Decomposition(np.full(K, g.sum() / n), A, vecs)
    if name == "VEE":
        return _vee(W, nk, previous)
    if orient == "V":  # EEV, VEV
        return _eev_vev(W, nk, vol, previous)
    return _eve_vve(W, nk, vol, previous)  # EVE, VVE
