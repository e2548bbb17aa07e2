"""Gaussians observed through missing values: marginal densities and conditional moments.

Rows are grouped by their pattern of missing values (NaN), so the cost grows with the
number of distinct patterns, not of rows. For a pattern with observed block ``o`` and
missing block ``m``, each of the K Gaussians gives (Little & Rubin 2002, ch. 11)::

    log p(x_o)     = log Normal(x_o; mean_o, S_oo)
    E[x_m | x_o]   = mean_m + S_mo S_oo^-1 (x_o - mean_o)
    Cov[x_m | x_o] = S_mm - S_mo S_oo^-1 S_om

Every solve goes through a Cholesky factor of ``S_oo``, batched over the K components.
The expected sufficient statistics of a row are ``E[x]`` and ``E[x x^T]``; the latter
includes the conditional covariance (imputing conditional means alone would shrink
the covariance estimate).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

__all__ = [
    "Conditional",
    "MissingBatch",
    "condition",
    "expected_moments",
    "group_by_pattern",
    "missing_moments",
    "missing_patterns",
    "nan_average",
    "pattern_groups",
    "sort_by_pattern",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


def missing_patterns(missing: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row indices, missing mask) for each distinct pattern of a boolean (N, D) mask."""
    if missing.shape[0] == 0:
        return
    # One byte string per row: sorting those is much faster than np.unique(axis=0).
    packed = np.ascontiguousarray(np.packbits(missing, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1])))[:, 0]
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(first) + 1))
    for p, row in enumerate(first):
        yield order[bounds[p] : bounds[p + 1]], missing[row]


class Conditional(NamedTuple):
    loglik: np.ndarray  # (K, B) marginal log-density of each row's observed values
    mean_m: np.ndarray  # (K, B, |m|) conditional means of the missing values
    cov_m: np.ndarray  # (K, |m|, |m|) conditional covariances of the missing values


def condition(means: np.ndarray, covs: np.ndarray, Xo: np.ndarray, miss: np.ndarray) -> Conditional:
    """Condition K Gaussians ``Normal(means[k], covs[k])`` on rows ``Xo`` sharing ``miss``.

    Parameters
    ----------
    means : ndarray of shape (K, D)
    covs : ndarray of shape (K, D, D)
    Xo : ndarray of shape (B, n_observed)
        The observed values of rows whose missing mask is ``miss``.
    miss : ndarray of shape (D,), bool

    Raises
    ------
    ValueError
        If a component's covariance of the observed variables is not positive definite.
    """
    obs = ~miss
    K, D = means.shape
    B = Xo.shape[0]
    if not obs.any():  # nothing observed: the marginal of nothing, the prior of everything
        return Conditional(
            np.zeros((K, B)), np.broadcast_to(means[:, None, :], (K, B, D)), covs.copy()
        )
    S_oo = covs[:, obs][:, :, obs]
    try:
        L = np.linalg.cholesky(S_oo)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the covariance of the observed variables is not positive definite (collinear "
            "or constant columns); increase reg_covar or drop redundant columns"
        ) from None
    # One solve for the whitened residuals Z = L^-1 (x_o - mean_o)^T, shape (|o|, B), and
    # A = L^-1 S_om; then S_mo S_oo^-1 r = A^T Z and S_mo S_oo^-1 S_om = A^T A. NumPy's
    # batched solve rather than SciPy's triangular solve: the blocks are small and many,
    # and SciPy's per-call overhead dominates them.
    rhs = np.concatenate(
        [np.swapaxes(Xo[None] - means[:, None, obs], 1, 2), covs[:, obs][:, :, miss]], axis=2
    )
    solved = np.linalg.solve(L, rhs)
    Z, A = solved[:, :, :B], solved[:, :, B:]
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    loglik = -0.5 * (obs.sum() * _LOG_2PI + logdet[:, None] + np.einsum("kib,kib->kb", Z, Z))
    if not miss.any():
        return Conditional(loglik, np.zeros((K, B, 0)), np.zeros((K, 0, 0)))
    At = np.swapaxes(A, 1, 2)
    mean_m = means[:, None, miss] + np.swapaxes(At @ Z, 1, 2)
    cov_m = covs[:, miss][:, :, miss] - At @ A
    return Conditional(loglik, mean_m, 0.5 * (cov_m + np.swapaxes(cov_m, 1, 2)))


def missing_moments(
    X: np.ndarray, weights: np.ndarray, means: np.ndarray, covs: np.ndarray, centre=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected moments of rows with missing values, weighted per component, about
    ``centre`` (K, D) (None: raw moments).

    Parameters
    ----------
    X : ndarray of shape (N, D), NaN where missing
    weights : ndarray of shape (N, K)
    means, covs : the K Gaussians the missing values are conditioned on

    Returns
    -------
    nk : (K,) ``sum w``
    s1 : (K, D) ``sum w E[x]``
    s2 : (K, D, D) ``sum w E[x x^T]``
    """
    K, D = means.shape
    nk = weights.sum(axis=0)
    s1 = np.zeros((K, D))
    s2 = np.zeros((K, D, D))
    for rows, miss in missing_patterns(np.isnan(X)):
        Xo = X[np.ix_(rows, ~miss)]
        cond = condition(means, covs, Xo, miss)
        b1, b2 = expected_moments(Xo, miss, weights[rows], cond, centre=centre)
        s1 += b1
        s2 += b2
    return nk, s1, s2


def expected_moments(
    Xo: np.ndarray, miss: np.ndarray, weights: np.ndarray, cond: Conditional, centre=None
) -> tuple[np.ndarray, np.ndarray]:
    """Expected moments of rows sharing ``miss``, given ``cond = condition(..., Xo, miss)``,
    about ``centre`` (K, D) (None: raw moments; a centre near the components keeps the
    second moments free of cancellation far from the origin).

    Parameters
    ----------
    Xo : ndarray of shape (B, n_observed)
    miss : ndarray of shape (D,), bool
    weights : ndarray of shape (B, K)
    cond : Conditional
        The K components conditioned on ``Xo``.

    Returns
    -------
    s1 : (K, D) ``sum w E[x - c]``
    s2 : (K, D, D) ``sum w E[(x - c)(x - c)^T]``
    """
    K, B, D = cond.loglik.shape[0], Xo.shape[0], miss.size
    filled = np.empty((K, B, D))
    filled[:, :, ~miss] = Xo[None]
    filled[:, :, miss] = cond.mean_m
    if centre is not None:
        filled -= np.asarray(centre, dtype=np.float64)[:, None, :]
    s1 = np.einsum("bk,kbd->kd", weights, filled)
    s2 = np.einsum("kbd,bk,kbe->kde", filled, weights, filled, optimize=True)
    if miss.any():
        s2[np.ix_(np.arange(K), miss, miss)] += weights.sum(axis=0)[:, None, None] * cond.cov_m
    return s1, s2


class MissingBatch(NamedTuple):
    """Data with missing values (NaN) in the order the E-step expects.

    ``pattern`` is -1 for complete rows and a pattern number (>= 0) for rows with NaN;
    rows are sorted by it (see :func:`group_by_pattern`), so every contiguous slice or
    sorted subset of rows is sorted too. An unsorted batch is sorted by the E-step.
    """

    X: np.ndarray  # (N, D), NaN where missing
    weights: np.ndarray | None  # (N,) sample weights, or None
    pattern: np.ndarray  # (N,) int, -1 for complete rows, sorted


def group_by_pattern(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row order and pattern numbers for a boolean (N, D) mask of missing values.

    Returns ``order`` (N,), complete rows first (in their order) and then the rows with
    missing values grouped by pattern, and ``pattern`` (N,): -1 for complete rows and
    0, 1, ... for the patterns, sorted, so ``pattern`` belongs to the rows ``order``
    gives.
    """
    pattern = np.full(len(missing), -1, dtype=np.intp)
    for p, (rows, _) in enumerate(pattern_groups(missing, missing.any(axis=1))):
        pattern[rows] = p
    order = np.argsort(pattern, kind="stable")
    return order, pattern[order]


def nan_average(X: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Column means of the observed (non-NaN) values, weighted by ``w``; float64, (D,)."""
    observed = ~np.isnan(X)
    weights = np.ones(len(X)) if w is None else w
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(observed, X, 0.0)) / (weights @ observed)


def sort_by_pattern(batch: MissingBatch) -> MissingBatch:
    """The batch with its rows sorted by pattern (unchanged if they are already)."""
    pattern = batch.pattern
    if len(pattern) < 2 or np.all(pattern[1:] >= pattern[:-1]):
        return batch
    order = np.argsort(pattern, kind="stable")
    w = None if batch.weights is None else batch.weights[order]
    return MissingBatch(batch.X[order], w, pattern[order])


def pattern_groups(missing: np.ndarray, incomplete: np.ndarray):
    """(row indices, missing mask) of each pattern among the ``incomplete`` rows."""
    rows_nan = np.flatnonzero(incomplete)
    for rows, miss in missing_patterns(missing[rows_nan]):
        yield rows_nan[rows], miss
