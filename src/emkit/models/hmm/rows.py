"""Rows of probabilities fitted from expected counts: an HMM's initial-state
distribution and transition matrix (and the per-state weights of a Gaussian-mixture
emission, the symbol probabilities of a categorical one).

:class:`ProbabilityRows` is one part of an HMM (as in dynamax): expected counts in,
Dirichlet-MAP (or maximum-likelihood) probabilities out, with zeros kept as
structural zeros (left-right models). Its ``pack``/``unpack`` give SQUAREM an
unconstrained parametrisation (log probabilities) in which an exact zero stays zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emkit._validation import check_probabilities

__all__ = ["ProbabilityRows", "check_alpha"]

_TINY = np.finfo(np.float64).tiny
_LOG_TINY = float(np.log(_TINY))


def check_alpha(alpha: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Dirichlet pseudo-counts ``alpha`` (None: 1, no prior) broadcast to ``shape``.

    Raises
    ------
    ValueError
        If ``alpha`` does not broadcast, is not finite, or has an entry below 1.
    """
    a = np.asarray(1.0 if alpha is None else alpha, dtype=np.float64)
    try:
        a = np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{name} must be a number or broadcast to shape {shape}") from None
    if not np.all(np.isfinite(a)) or np.any(a < 1):
        raise ValueError(
            f"{name}: Dirichlet pseudo-counts must be finite and >= 1 (1 = no prior), got "
            f"min {a.min()}"
        )
    return a


def _pack_probs(p: np.ndarray) -> np.ndarray:
    # log p, with exact zeros at log(tiny): a structural zero stays put under
    # extrapolation (its three points coincide) and unpacks to an exact zero again.
    return np.log(np.maximum(np.asarray(p, dtype=np.float64), _TINY)).ravel()


def _unpack_probs(vec: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    v = np.asarray(vec, dtype=np.float64).reshape(shape)
    zero = v <= _LOG_TINY + 1.0
    top = np.max(np.where(zero, -np.inf, v), axis=-1, keepdims=True)
    if not np.all(np.isfinite(top)):
        raise ValueError("a row of probabilities has no positive entry")
    p = np.where(zero, 0.0, np.exp(v - top))
    return p / p.sum(axis=-1, keepdims=True)


class ProbabilityRows:
    """Rows of probabilities (last axis sums to 1) fitted from expected counts.

    The initial-state distribution is one row of K, the transition matrix K rows of
    K. The M-step is the mode of a Dirichlet posterior: with pseudo-counts ``alpha``
    (1 = no prior, maximum likelihood)::

        p[i, j]  proportional to  max(counts[i, j] + alpha[i, j] - 1, 0)

    over the entries that are positive in the current parameters. An entry that is
    zero stays zero, with or without a prior (a left-right model stays left-right;
    exact EM never makes a zero probability positive anyway). A row without counts
    (a state never left) keeps its current probabilities, which is a maximiser then.

    Parameters
    ----------
    name : str
        For error messages ("startprob", "transmat").
    alpha : float or array-like, default 1.0
        Dirichlet pseudo-counts, broadcast to the rows' shape, each >= 1.
    """

    def __init__(self, name: str, alpha: Any = 1.0):
        self.name = name
        self.alpha = alpha

    def check(self, value: Any, shape: tuple[int, ...]) -> np.ndarray:
        """Validate user-given probabilities (shape, finite, non-negative, rows sum to 1)."""
        return check_probabilities(value, shape, self.name)

    def mstep(self, counts: np.ndarray, current: np.ndarray) -> np.ndarray:
        """The Dirichlet-MAP rows from expected ``counts``; zeros of ``current`` stay zero."""
        current = np.asarray(current, dtype=np.float64)
        alpha = check_alpha(self.alpha, current.shape, self.name + "_prior")
        num = np.where(current > 0, np.maximum(np.asarray(counts) + (alpha - 1.0), 0.0), 0.0)
        total = num.sum(axis=-1, keepdims=True)
        ok = total > 0
        return np.where(ok, num / np.where(ok, total, 1.0), current)

    def log_prior(self, p: np.ndarray) -> float:
        """Log Dirichlet density of ``p`` up to its normalising constant (0 without a prior)."""
        p = np.asarray(p, dtype=np.float64)
        alpha = check_alpha(self.alpha, p.shape, self.name + "_prior")
        positive = p > 0
        return float(np.sum((alpha - 1.0)[positive] * np.log(p[positive])))

    @staticmethod
    def n_free(p: np.ndarray) -> int:
        """Free parameters: positive entries minus one per row."""
        p = np.atleast_2d(np.asarray(p))
        return int(sum(max(np.count_nonzero(row) - 1, 0) for row in p))

    @staticmethod
    def pack(p: np.ndarray) -> np.ndarray:
        """Probabilities as an unconstrained vector (log p; exact zeros stay zeros)."""
        return _pack_probs(p)

    @staticmethod
    def unpack(vec: np.ndarray, like: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`pack`: rows shaped like ``like``, each summing to 1."""
        return _unpack_probs(vec, np.shape(like))
