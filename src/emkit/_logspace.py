"""Posteriors from log joint probabilities, normalised in log space (in place)."""

from __future__ import annotations

import numpy as np

__all__ = ["log_normalize", "posterior_in_place"]


def log_normalize(log_prob: np.ndarray) -> np.ndarray:
    """Turn (B, K) log joint probabilities into responsibilities, in place.

    Returns the log marginal of each row; ``log_prob`` then holds the posteriors.
    """
    top = log_prob.max(axis=1, keepdims=True)
    np.copyto(top, 0.0, where=~np.isfinite(top))
    log_prob -= top
    np.exp(log_prob, out=log_prob)
    total = log_prob.sum(axis=1, keepdims=True)
    log_prob /= total
    return (np.log(total) + top)[:, 0]


def posterior_in_place(log_joint: np.ndarray, beta: float, hard: bool) -> np.ndarray:
    """Turn (B, K) log joints into posteriors in place; return each row's objective."""
    if hard:
        best = log_joint.argmax(axis=1)
        rows = log_joint[np.arange(len(best)), best]
        log_joint[:] = 0.0
        log_joint[np.arange(len(best)), best] = 1.0
        return rows
    if beta != 1.0:
        log_joint *= beta
        return log_normalize(log_joint) / beta
    return log_normalize(log_joint)
