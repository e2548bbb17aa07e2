"""Starting labels of an HMM's observations: cluster centres of (a subsample of) rows."""

from __future__ import annotations

import numpy as np

from emkit.models.init import kmeans, kmeans_plusplus

__all__ = ["centres", "subsample"]


def centres(F: np.ndarray, K: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """K centres for rows ``F``: k-means (from k-means++), or K distinct random rows."""
    if method == "kmeans":
        return kmeans(F, K, rng)[0]
    distinct = np.unique(F, axis=0)
    if len(distinct) < K:  # fewer distinct rows than states
        return F[kmeans_plusplus(F, K, rng)]
    return distinct[rng.choice(len(distinct), size=K, replace=False)]


def subsample(rows: np.ndarray, rng: np.random.Generator, size: int = 20_000) -> np.ndarray:
    """At most ``size`` of the row indices ``rows``, drawn without replacement, sorted."""
    # Centres from a subsample are enough for a start, and bounded in cost.
    if rows.size <= size:
        return rows
    return np.sort(rng.choice(rows, size, replace=False))
