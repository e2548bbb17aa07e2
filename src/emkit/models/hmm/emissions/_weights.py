"""Posterior weights of the HMM's emissions: column sums, and states that got none.

A state whose posteriors are all exactly zero has no defined M-step. Giving every row
a negligible weight for it (``EMPTY_FLOOR``) makes any value a maximiser (this one
gives the data's overall statistics) without changing any other state's statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EMPTY_FLOOR", "column_sums", "floor_empty", "floored", "with_nk"]

#: Weight given to every row for a state whose posteriors are all exactly zero.
EMPTY_FLOOR = 1e-300


def column_sums(weights: np.ndarray) -> np.ndarray:
    """Total weight per state (column) of ``weights`` (T, K)."""
    # A matrix-vector product: NumPy's sum over axis 0 of a tall, narrow C-ordered
    # array is several times slower.
    return np.ones(len(weights)) @ weights


def floor_empty(weights: np.ndarray, sums: np.ndarray | None = None) -> np.ndarray:
    """Give every row a negligible weight for a state (column) whose weights are all zero.

    ``sums`` are the column sums of ``weights`` when the caller has them already.
    """
    empty = ~((column_sums(weights) if sums is None else np.asarray(sums)) > 0)
    if empty.any():
        weights = weights.copy()
        weights[:, empty] = EMPTY_FLOOR
    return weights


def floored(stats_of: Any, weights: np.ndarray) -> Any:
    """``stats_of(weights)``, again with :func:`floor_empty` weights if a state got none.

    ``stats_of`` returns (statistics, total weight per state); the common case costs
    no extra pass over the weights.
    """
    stats, nk = stats_of(weights)
    if np.all(np.asarray(nk) > 0):
        return stats
    return stats_of(floor_empty(weights, nk))[0]


def with_nk(stats: Any) -> tuple[Any, np.ndarray]:
    """``(stats, stats.nk)``: statistics with their weight per state, for :func:`floored`."""
    return stats, stats.nk
