"""Degrees of freedom of the multivariate t: bounds, normaliser, and the two dof updates.

The t kernel (:class:`~emkit.distributions.student_t.StudentT`) updates its degrees of
freedom in one of two ways, both here on plain arrays:

* ECM (:func:`solve_dofs`): each ``nu_k`` maximises the expected complete-data
  log-likelihood ``Q``, the root of a one-dimensional score equation;
* ECME (:func:`maximise_log_dofs`): the ``nu_k`` jointly maximise the observed-data
  log-likelihood, by a projected Newton method in ``log nu`` whose values, gradients
  and Hessians come from passes over the data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize, special

__all__ = [
    "DEFAULT_START_DOF",
    "DOF_BOUNDS",
    "check_dof",
    "check_dof_bounds",
    "log_t_normaliser",
    "maximise_log_dofs",
    "solve_dofs",
]

#: Degrees of freedom at which an estimated-dof fit starts (moderately heavy tails).
DEFAULT_START_DOF = 10.0

#: Interval to which estimated degrees of freedom are confined. Above 1e6 a t equals
#: a Gaussian to about 1e-6 in the log-density and the likelihood is flat in ``nu``.
#: Below 0.1 a fit is degenerate rather than heavy-tailed: the likelihood is unbounded
#: as ``nu -> 0`` when many points lie near a subspace (Kent & Tyler 1991), a
#: component then shrinks onto them until ``reg_covar`` stops it, and the fit is
#: ill-conditioned (at ``nu -> 0`` the t density no longer depends on the size of the
#: scale matrix).
DOF_BOUNDS = (0.1, 1e6)


def check_dof(dof: Any) -> float | None:
    """None for ``"estimate"``, else the fixed positive value (clear errors otherwise)."""
    if isinstance(dof, str):
        if dof != "estimate":
            raise ValueError(f"dof must be 'estimate' or a positive number, got {dof!r}")
        return None
    if isinstance(dof, (bool, np.bool_)) or not isinstance(dof, (int, float, np.number)):
        raise TypeError(f"dof must be 'estimate' or a positive number, got {dof!r}")
    if not (np.isfinite(dof) and dof > 0):
        raise ValueError(f"dof must be 'estimate' or a positive finite number, got {dof!r}")
    return float(dof)


def check_dof_bounds(bounds: Any) -> tuple[float, float]:
    """``(low, high)`` as floats with ``0 < low < high < inf`` (ValueError otherwise)."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"dof_bounds must be two numbers (low, high), got {bounds!r}") from None
    if not 0 < low < high < np.inf:
        raise ValueError(f"dof_bounds must satisfy 0 < low < high < inf, got {bounds!r}")
    return low, high


def _stirling_correction(x: np.ndarray) -> np.ndarray:
    """``lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2)`` for x >= 30 (error < 1e-17)."""
    with np.errstate(over="ignore"):  # x * x = inf for x > 1e154: the series is then 1/(12 x)
        x2 = x * x
    return (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * x2)) / x2) / x2) / x


def log_t_normaliser(nu: np.ndarray, n_features: int) -> np.ndarray:
    """``lgamma((nu + D)/2) - lgamma(nu/2) - (D/2) log(nu/2)``, accurate for any ``nu``.

    The t log-density is this plus ``-(D/2) log(2 pi) + log det U - (nu + D)/2 *
    log1p(delta/nu)``. The term tends to 0 as ``nu`` grows; the difference of two
    large ``lgamma`` values would lose ``eps * nu log nu`` to cancellation, so large
    ``nu`` use Stirling's series, where the large parts cancel analytically.
    """
    nu = np.asarray(nu, dtype=np.float64)
    h = 0.5 * n_features
    x0 = 0.5 * nu
    big = x0 >= 30.0
    xb = np.where(big, x0, 30.0)
    stirling = (
        (xb + h - 0.5) * np.log1p(h / xb)
        - h
        + _stirling_correction(xb + h)
        - _stirling_correction(xb)
    )
    xs = np.where(big, 1.0, x0)
    direct = special.gammaln(xs + h) - special.gammaln(xs) - h * np.log(xs)
    return np.where(big, stirling, direct)


def solve_dofs(
    c: np.ndarray,
    low: float = DOF_BOUNDS[0],
    high: float = DOF_BOUNDS[1],
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Degrees of freedom maximising the expected complete-data log-likelihood (ECM).

    Each ``nu`` solves ``log(nu/2) - psi(nu/2) + 1 + c = 0`` (McLachlan & Peel 2000,
    7.5), with ``c = sum w (log u - u) / sum w + psi((nu_old + D)/2) - log((nu_old +
    D)/2)``. The left side falls from +inf to ``1 + c < 0``, so the root is unique; it
    is searched in ``log nu`` within ``[low, high]`` (a bound when the root lies out).

    Parameters
    ----------
    c : array-like of shape (K,)
    low, high : float
        The interval of the degrees of freedom.
    start : array-like of shape (K,), optional
        The previous degrees of freedom. Between EM steps the root moves little, so
        the bracket grows outwards from there (widths 0.05, 0.2, 0.8, ... in
        ``log nu``) instead of spanning the whole interval: fewer evaluations.

    Returns
    -------
    ndarray of shape (K,)
    """
    c = np.atleast_1d(np.asarray(c, dtype=np.float64))
    out = np.empty_like(c)
    a, b = float(np.log(low)), float(np.log(high))
    begin = None if start is None else np.log(np.broadcast_to(start, c.shape))
    for k, ck in enumerate(c):

        def score(log_nu: float, ck: float = float(ck)) -> float:
            y = 0.5 * np.exp(log_nu)
            return float(np.log(y) - special.digamma(y) + 1.0 + ck)

        bracket = (a, b) if begin is None else _bracket(score, float(begin[k]), a, b)
        if isinstance(bracket, float):
            out[k] = float(np.clip(np.exp(bracket), low, high))
        elif score(bracket[0]) <= 0.0:
            out[k] = low
        elif score(bracket[1]) >= 0.0:
            out[k] = high
        else:
            root = optimize.brentq(score, *bracket, xtol=1e-13, rtol=4 * np.finfo(float).eps)
            out[k] = float(np.clip(np.exp(root), low, high))
    return out


def _bracket(score: Callable[[float], float], x: float, a: float, b: float):
    """An interval around the root of the decreasing ``score`` grown from ``x`` within
    ``[a, b]``; a float when the root is that point (a bound, or ``x`` itself)."""
    x = min(max(x, a), b)
    s = score(x)
    if s == 0.0:
        return x
    up = s > 0.0  # the root lies above x
    width = 0.05
    while True:
        y = min(x + width, b) if up else max(x - width, a)
        t = score(y)
        if (t <= 0.0) if up else (t >= 0.0):
            return (x, y) if up else (y, x)
        if y in (a, b):
            return y  # no sign change up to the bound: the root lies beyond it
        x, width = y, 4.0 * width


def maximise_log_dofs(
    evaluate_at: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]],
    dofs: np.ndarray,
    bounds: tuple[float, float],
    roundoff: Callable[[float], float],
    max_newton: int = 50,
) -> np.ndarray:
    """Degrees of freedom that maximise an observed-data log-likelihood ``L`` (ECME).

    ``evaluate_at(dofs)`` returns ``L`` with its gradient (K,) and Hessian (K, K) with
    respect to ``log dofs`` (one pass over the data). ``L`` couples the ``nu_k`` of
    different components through each row's log-sum-exp, so they are maximised jointly
    in ``log nu`` within ``bounds`` by a projected Newton method: a step is kept only if
    it satisfies Armijo's condition and does not lower ``L``, and the iteration stops
    when the Newton decrement is below ``roundoff(L) / 1000``. Typically 3 to 6 passes.

    Returns ``dofs`` itself when ``L`` is not finite there, else dofs within ``bounds``
    whose ``L`` is at least that at ``dofs`` clipped into them.
    """
    lo, hi = (float(np.log(b)) for b in bounds)
    eta = np.clip(np.log(dofs), lo, hi)

    def at(eta: np.ndarray) -> np.ndarray:
        return np.clip(np.exp(eta), *bounds)

    current = at(eta)
    value, grad, hess = evaluate_at(current)
    if not np.isfinite(value):
        return dofs
    tiny = roundoff(value) * 1e-3
    for _ in range(max_newton):
        # at a bound with the gradient pointing out, a coordinate stays put
        free = ~(((eta <= lo) & (grad < 0)) | ((eta >= hi) & (grad > 0)))
        if not free.any():
            break
        step = np.zeros_like(eta)
        step[free] = _ascent_direction(grad[free], -hess[np.ix_(free, free)])
        longest = np.max(np.abs(step))
        if longest > 4.0:  # at most a factor e^4 in nu per Newton step
            step *= 4.0 / longest
        if float(grad @ step) <= tiny:
            break  # Newton decrement below round-off: converged
        t, accepted = 1.0, False
        while t > 1e-12:
            trial = np.clip(eta + t * step, lo, hi)
            moved = trial - eta
            if not np.any(moved):
                break
            cand = at(trial)
            v, g, h = evaluate_at(cand)
            if np.isfinite(v) and v >= value + 1e-4 * max(float(grad @ moved), 0.0):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        eta, current, value, grad, hess = trial, cand, v, g, h
        if np.max(np.abs(moved)) < 1e-12:
            break
    return current


def _ascent_direction(grad: np.ndarray, neg_hess: np.ndarray) -> np.ndarray:
    """Newton direction ``neg_hess^-1 grad``, with eigenvalues made positive where the
    log-likelihood is not concave (so the direction always goes uphill)."""
    vals, vecs = np.linalg.eigh(0.5 * (neg_hess + neg_hess.T))
    floor = 1e-10 * max(float(np.max(np.abs(vals))), 1e-300)
    vals = np.maximum(np.abs(vals), floor)
    return vecs @ ((vecs.T @ grad) / vals)
