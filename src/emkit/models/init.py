"""Weighted k-means++ seeding and Lloyd's k-means, used to start mixtures.

Distances are computed block by block as ``|x|^2 - 2 x.c + |c|^2`` (one matrix product
per block), so memory stays bounded for millions of rows.

On a data source read from disk or Dask (``emkit.data``), every method here runs on the
source's ``init_data()``: a systematic subsample of at most ``init_rows`` rows (every
``ceil(n / init_rows)``-th row, read in one streaming pass), never the whole file.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "INIT_METHODS",
    "initial_responsibilities",
    "kmeans",
    "kmeans_plusplus",
    "nearest_center",
]

_BLOCK = 65536


def _sq_dist(X: np.ndarray, centers: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    d = x_sq[:, None] - 2.0 * (X @ centers.T) + np.einsum("kd,kd->k", centers, centers)
    return np.maximum(d, 0.0, out=d)


def nearest_center(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest center for each row, and the squared distance to it."""
    labels = np.empty(len(X), dtype=np.intp)
    dmin = np.empty(len(X))
    for s in range(0, len(X), _BLOCK):
        xb = X[s : s + _BLOCK]
        d = _sq_dist(xb, centers, np.einsum("nd,nd->n", xb, xb))
        labels[s : s + _BLOCK] = d.argmin(axis=1)
        dmin[s : s + _BLOCK] = d[np.arange(len(xb)), labels[s : s + _BLOCK]]
    return labels, dmin


def kmeans_plusplus(
    X: np.ndarray, n_clusters: int, rng: np.random.Generator, sample_weight=None
) -> np.ndarray:
    """Indices of ``n_clusters`` seeds chosen by greedy k-means++ (Arthur & Vassilvitskii 2007).

    Each new seed is the best of ``2 + log(k)`` candidates drawn with probability
    proportional to weight times squared distance to the nearest seed so far.

    Draws are made by inverse-CDF sampling over the rows in lexicographic order, so
    the seeds depend on the weighted set of points only: shuffling the rows, or
    repeating a row instead of giving it weight 2, gives the same seeds.
    """
    n = len(X)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    n_trials = 2 + int(np.log(n_clusters))
    x_sq = np.einsum("nd,nd->n", X, X)
    order = np.lexsort(X.T[::-1])

    def draw(mass: np.ndarray, size: int) -> np.ndarray:
        cdf = np.cumsum(mass[order])
        pos = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
        return order[np.minimum(pos, n - 1)]

    first = int(draw(w, 1)[0])
    indices = [first]
    closest = _sq_dist(X, X[[first]], x_sq)[:, 0]
    for _ in range(1, n_clusters):
        pot = w * closest
        # When every point coincides with a seed, draw among all points by weight.
        cand = draw(pot if pot.sum() > 0 else w, n_trials)
        d = np.minimum(closest[:, None], _sq_dist(X, X[cand], x_sq))
        best = int(np.argmin(w @ d))
        indices.append(int(cand[best]))
        closest = d[:, best]
    return np.asarray(indices)


def kmeans(
    X: np.ndarray,
    n_clusters: int,
    rng: np.random.Generator,
    sample_weight=None,
    max_iter: int = 100,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd's k-means from k-means++ seeds; returns (centers, labels)."""
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    centers = X[kmeans_plusplus(X, n_clusters, rng, w)].astype(np.float64)
    scale = np.mean(np.var(X, axis=0)) if len(X) > 1 else 1.0
    labels = nearest_center(X, centers)[0]
    for _ in range(max_iter):
        counts = np.bincount(labels, weights=w, minlength=n_clusters)
        sums = np.stack(
            [
                np.bincount(labels, weights=X[:, d] * w, minlength=n_clusters)
                for d in range(X.shape[1])
            ],
            axis=1,
        )
        new = centers.copy()
        filled = counts > 0
        new[filled] = sums[filled] / counts[filled, None]
        shift = np.sum((new - centers) ** 2)
        centers = new
        labels = nearest_center(X, centers)[0]
        if shift <= tol * scale:
            break
    return centers, labels


INIT_METHODS = ("kmeans++", "kmeans", "random", "random_from_data", "hc")


def initial_responsibilities(method: str, X, w, n_components: int, rng) -> np.ndarray:
    """Starting responsibilities (N, K) for one of :data:`INIT_METHODS`.

    * ``"kmeans++"``: k-means++ seeds, every row assigned to its nearest seed;
    * ``"kmeans"``: Lloyd's k-means from k-means++ seeds, hard labels;
    * ``"random"``: uniform random responsibilities, normalised per row;
    * ``"random_from_data"``: K distinct random rows as centres, nearest-centre labels;
    * ``"hc"``: mclust's model-based hierarchical agglomeration (:mod:`emkit.models.hc`),
      deterministic (``rng`` only draws the subset of rows of a large data set).
    """
    n, K = len(X), n_components
    Xd = np.asarray(X, dtype=np.float64)
    if method == "kmeans++":
        labels = nearest_center(Xd, Xd[kmeans_plusplus(Xd, K, rng, w)])[0]
    elif method == "kmeans":
        labels = kmeans(Xd, K, rng, w)[1]
    elif method == "random_from_data":
        labels = nearest_center(Xd, Xd[rng.choice(n, size=K, replace=False)])[0]
    elif method == "hc":
        from emkit.models.hc import hc_partitions

        labels = hc_partitions(Xd, [K], rng=rng)[K]
    elif method == "random":
        resp = rng.uniform(size=(n, K))
        return resp / resp.sum(axis=1, keepdims=True)
    else:
        raise ValueError(
            f"init must be one of {INIT_METHODS} or a dict of parameters, got {method!r}"
        )
    resp = np.zeros((n, K))
    resp[np.arange(n), labels] = 1.0
    return resp
