"""Softmax (multinomial logistic) regression: additive statistics and a guarded Newton step.

One kernel for the two softmax parts of a mixture of experts: the gate (the softmax of
the inputs that chooses an expert, fitted to the responsibilities as soft labels) and
the logistic experts (fitted to the class labels, each row weighted by its
responsibility). With ``M + 1`` classes the coefficients are ``theta`` of shape
``(M, q)``: the last class is the reference, with logit 0.

The objective, for rows ``a_i`` (q,), weighted soft counts ``t_ic`` and an optional
ridge penalty ``alpha`` on the non-intercept coefficients, is

    Q(theta) = sum_i sum_c t_ic log softmax_c(theta a_i) - alpha / 2 ||theta_pen||^2 .

:func:`softmax_stats` returns its gradient and negative Hessian at ``theta`` and the
Gram matrix ``sum_i s_i a_i a_i^T`` (``s_i = sum_c t_ic``), all additive over rows.
:func:`newton_step` then takes an IRLS (Newton) step from ``theta`` with a
step-halving line search. Evaluating ``Q`` at a trial point would need another pass
over the data, so the line search tests a certified lower bound instead: since the
negative Hessian is bounded by ``B = 1/2 (I_M - 11^T / (M + 1)) (x) sum_i s_i a_i a_i^T``
everywhere (Bohning 1992),

    Q(theta + d) - Q(theta) >= g^T d - 1/2 d^T B d        (g: the gradient at theta)

for every ``d``. The Newton step is halved until that bound is non-negative, and
compared with the bound's own maximiser (always an increase); the step with the larger
certified gain is taken. When the data are at hand (an in-memory fit), a Newton step
the bounds do not certify is also halved on ``Q`` itself, and the better step on ``Q``
is taken. ``Q`` therefore never decreases, which makes the M-steps
that use it generalized EM steps (the engine's monotonicity check applies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from emkit.distributions._lstsq import solve_psd, weighted_grams

__all__ = [
    "DesignBound",
    "SoftmaxStats",
    "design_bound",
    "log_softmax",
    "newton_step",
    "softmax_objective",
    "softmax_stats",
]


class DesignBound(NamedTuple):
    """``a^T metric^+ a <= radius2`` for every row ``a`` of the design (a constant of the
    data set, computed once by :func:`design_bound`).

    It bounds how far a step ``D`` moves any row's logits: ``|D_c a| <= sqrt(radius2 *
    D_c metric D_c^T)``. Over such a move each row's Hessian changes by at most the
    factor ``exp(2 max|delta|)`` (the variance of the logits under the class
    probabilities), which gives a second lower bound on the rise of ``Q``, tight for
    short steps, so the guarded Newton steps converge quadratically near the optimum.
    """

    metric: np.ndarray  # (q, q) the rows' second-moment matrix
    radius2: float


class SoftmaxStats(NamedTuple):
    """Additive statistics of a softmax regression at its current coefficients."""

    grad: np.ndarray  # (M, q) gradient of Q (without the penalty)
    info: np.ndarray  # (M*q, M*q) negative Hessian of Q (without the penalty)
    gram: np.ndarray  # (q, q) sum_i s_i a_i a_i^T


def log_softmax(A: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Log class probabilities (n, M + 1) for coefficients ``theta`` (M, q); the last
    class has logit 0.

    Computed class by class over contiguous rows of the logits (M is small: reductions
    along a short axis would cost more than the arithmetic); the result is a
    Fortran-ordered (n, M + 1) array.
    """
    out = np.empty((theta.shape[0] + 1, len(A)))
    np.matmul(theta, A.T, out=out[:-1])
    out[-1] = 0.0
    top = np.max(out, axis=0)
    out -= top
    total = np.zeros(len(A))
    for row in out:
        total += np.exp(row)
    out -= np.log(total)
    return out.T


def softmax_stats(A: np.ndarray, targets: np.ndarray, log_p: np.ndarray) -> SoftmaxStats:
    """Gradient, negative Hessian and Gram matrix of ``Q`` at the coefficients whose log
    class probabilities are ``log_p`` (n, M + 1), for weighted soft counts ``targets``
    (n, M + 1)."""
    n, q = A.shape
    M = log_p.shape[1] - 1
    # class by class over contiguous columns (M is small), as in log_softmax
    p = np.exp(np.asfortranarray(log_p[:, :M]))
    targets = np.asfortranarray(targets)
    s = np.zeros(n)
    for column in targets.T:
        s += column
    sp = p * s[:, None]
    grad = (targets[:, :M] - sp).T @ A
    # s_i (delta_mn p_m - p_m p_n) for m <= n, then the Gram matrices of all of them at once
    iu = np.triu_indices(M)
    C = np.empty((n, 1 + len(iu[0])), order="F")
    C[:, 0] = s
    for j, (m, c) in enumerate(zip(*iu, strict=True)):
        np.multiply(sp[:, m], p[:, c], out=C[:, j + 1])
        np.negative(C[:, j + 1], out=C[:, j + 1])
        if m == c:
            C[:, j + 1] += sp[:, m]
    G = weighted_grams(A, C)
    info = np.zeros((M, q, M, q))
    for j, (m, c) in enumerate(zip(*iu, strict=True)):
        info[m, :, c, :] = G[j + 1]
        info[c, :, m, :] = G[j + 1].T
    return SoftmaxStats(grad, info.reshape(M * q, M * q), G[0])


def softmax_objective(A, targets, theta, alpha: float = 0.0, penalised=None) -> float:
    """``Q(theta)`` computed directly from the data (for checks and tests)."""
    value = float(np.sum(targets * log_softmax(A, theta)))
    if alpha:
        mask = np.ones(theta.shape[1], bool) if penalised is None else penalised
        value -= 0.5 * alpha * float(np.sum(theta[:, mask] ** 2))
    return value


def design_bound(A: np.ndarray, w: np.ndarray | None = None) -> DesignBound:
    """The :class:`DesignBound` of the rows of ``A`` (those with positive weight)."""
    rows = A if w is None else A[w > 0]
    metric = rows.T @ rows / len(rows)
    vals, vecs = np.linalg.eigh(metric)
    keep = vals > len(vals) * np.finfo(np.float64).eps * vals.max()
    proj = rows @ vecs[:, keep]
    radius2 = float(np.max(np.sum(proj**2 / vals[keep], axis=1)))
    return DesignBound(metric, radius2)


def newton_step(
    stats: SoftmaxStats,
    theta: np.ndarray,
    *,
    alpha: float = 0.0,
    penalised: np.ndarray | None = None,
    free: np.ndarray | None = None,
    bound: DesignBound | None = None,
    objective: Callable[[np.ndarray], float] | None = None,
) -> np.ndarray:
    """New coefficients whose ``Q`` is not below that of ``theta`` (see the module).

    Parameters
    ----------
    stats : SoftmaxStats
        Statistics at ``theta``.
    theta : ndarray of shape (M, q)
    alpha : float
        Ridge penalty on the coefficients of the ``penalised`` columns.
    penalised : bool ndarray of shape (q,), optional
        Columns under the penalty (default: all).
    free : bool ndarray of shape (M, q), optional
        Coefficients to update; the others are held at their values (default: all).
    bound : DesignBound, optional
        A bound on the rows of the design, for the second certificate (without it only
        the Bohning bound certifies steps: safe, but only linearly convergent).
    objective : callable, optional
        ``Q(theta)`` (without the penalty) evaluated on the data, when they are at hand.
        Then, if the bounds do not certify the full Newton step, it is halved until
        ``Q`` itself does not decrease, and the better (by ``Q``) of that step and the
        certified one is taken: the certified step is the fallback, never worse.
    """
    M, q = theta.shape
    pen = np.zeros((M, q))
    if alpha:
        pen[:, np.ones(q, bool) if penalised is None else penalised] = alpha
    pen = pen.ravel()
    f = np.ones(M * q, bool) if free is None else np.asarray(free, bool).ravel()
    if not f.any():
        return theta.copy()
    g = (stats.grad.ravel() - pen * theta.ravel())[f]
    H = (stats.info + np.diag(pen))[np.ix_(f, f)]
    B = (np.kron(0.5 * (np.eye(M) - 1.0 / (M + 1)), stats.gram) + np.diag(pen))[np.ix_(f, f)]

    def certified(gd: float, dBd: float, dHd: float, reach: float) -> float:
        """A lower bound on the rise of Q over a step d (given through its scalars)."""
        value = gd - 0.5 * dBd
        if reach < np.inf:
            c = 2.0 * reach  # the largest change of any row's logit along d
            with np.errstate(over="ignore"):
                factor = 0.5 if c < 1e-6 else np.expm1(c) / c**2 - 1.0 / c
            value = max(value, gd - factor * dHd)
        return value

    def reach_of(d: np.ndarray) -> float:
        if bound is None:
            return np.inf
        full = np.zeros(M * q)
        full[f] = d
        D = full.reshape(M, q)
        return float(np.sqrt(bound.radius2 * np.max(np.einsum("mi,ij,mj->m", D, bound.metric, D))))

    def scalars(d: np.ndarray) -> tuple[float, float, float, float]:
        return float(g @ d), float(d @ B @ d), float(d @ H @ d), reach_of(d)

    best = solve_psd(B, g)  # maximiser of the Bohning bound: always an increase
    best_value = certified(*scalars(best))
    newton = solve_psd(H, g)
    if np.all(np.isfinite(newton)):
        gd, dBd, dHd, reach = scalars(newton)
        t, best_t = 1.0, 0.0
        for _ in range(40):  # step halving: along t * newton each scalar scales in t
            value = certified(t * gd, t * t * dBd, t * t * dHd, t * reach)
            if value > best_value:
                best_t, best_value = t, value
            t *= 0.5
        if best_t > 0:
            best = best_t * newton
        if objective is not None and best_t < 1.0:
            best = _exact_halving(theta, f, pen, objective, newton, best)
    out = theta.ravel().copy()
    out[f] += best
    return out.reshape(M, q)


def _exact_halving(theta, free, pen, objective, newton, certified_step, n_halvings=12):
    """Step halving on ``Q`` itself (passes over the data): the first halving of the
    Newton step that does not lower ``Q``, if it beats the certified step on ``Q``."""

    def q_at(step):
        out = theta.ravel().copy()
        out[free] += step
        return objective(out.reshape(theta.shape)) - 0.5 * float(pen @ out**2)

    q0 = q_at(np.zeros_like(newton))
    t = 1.0
    for _ in range(n_halvings):
        value = q_at(t * newton)
        if value >= q0:
            return t * newton if value >= q_at(certified_step) else certified_step
        t *= 0.5
    return certified_step
