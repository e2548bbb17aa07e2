"""Model-based hierarchical agglomeration (Banfield & Raftery 1993; Fraley 1998): the
starting partitions of mclust, used by ``init="hc"`` and :func:`emkit.select`.

Starting from one cluster per distinct row, the pair of clusters whose merge costs
least in the criterion of the model is merged, until one cluster is left; cutting the
sequence of merges at K clusters gives a hard partition, from which EM starts with
an M-step (as mclust's ``mclustBIC`` does from ``hclass(hc(...), G)``).

What is implemented (mclust's defaults since version 5.4, ``mclust.options("hcUse")``
= "SVD" and ``hcModelName`` = "VVV"):

* the data are transformed as mclust's ``use = "SVD"``: centred, scaled to unit
  standard deviation (divisor n - 1), rotated onto their right singular vectors ``V``
  and divided by the square roots of the singular values ``d``, ``Z = X_s V
  diag(d^-1/2)``; ``use="VARS"`` keeps the data as they are;
* the "VVV" criterion is Fraley's (1998) regularised classification likelihood, as
  mclust's ``hcVVV`` (alpha = beta = 1): a cluster of ``l`` rows with scatter ``W``
  costs ``l * log(det(W / l) + beta (tr W + alpha) / l)`` when ``l > D`` and
  ``l * log(beta (tr W + alpha) / l)`` otherwise, with ``alpha = tr(W_all) / (n D)``
  (``W_all`` the scatter of all the data); each step merges the pair whose merge
  raises the total cost least. One-dimensional data use the same criterion (mclust
  has a separate "V" routine there);
* "EII" is Ward's criterion (the merge that raises ``sum_k tr W_k`` least), the
  classification likelihood of equal spherical clusters;
* like mclust (``mclust.options("subset")``), data with more than ``max_rows`` rows
  are agglomerated on a random subset of that many rows (seeded by ``rng``); every
  other row joins the cluster whose mean is nearest in the transformed coordinates.

Ties between equal merge costs may be broken differently from mclust's Fortran, which
can then give other partitions (and so other local optima of EM) on data with ties.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["HC_MODELS", "hc_merges", "hc_partitions", "hc_transform"]

#: the criteria of :func:`hc_merges`
HC_MODELS = ("VVV", "EII")


def hc_transform(X: np.ndarray, use: str = "SVD") -> np.ndarray:
    """The coordinates mclust agglomerates in: ``use`` is "SVD" (default) or "VARS"."""
    X = np.asarray(X, dtype=np.float64)
    if use == "VARS":
        return X
    if use != "SVD":
        raise ValueError(f"use must be 'SVD' or 'VARS', got {use!r}")
    centred = X - X.mean(axis=0)
    sd = centred.std(axis=0, ddof=1) if len(X) > 1 else np.ones(X.shape[1])
    keep = np.isfinite(sd) & (sd > 0)
    if not keep.any():  # every column constant: one point, nothing to agglomerate by
        return np.zeros((len(X), 1))
    scaled = centred[:, keep] / sd[keep]
    _, d, vt = np.linalg.svd(scaled, full_matrices=False)
    d = np.where(d > 0, d, 1.0)
    return scaled @ vt.T / np.sqrt(d)


class _Clusters:
    """Counts, means, scatters and criterion terms of the current clusters."""

    def __init__(self, Z: np.ndarray, model: str):
        self.model = model
        rows, inverse = np.unique(Z, axis=0, return_inverse=True)  # mclust's dupPartition
        inverse = np.ravel(inverse)
        self.first_of = np.zeros(len(rows), dtype=np.intp)
        self.first_of[inverse[::-1]] = np.arange(len(Z))[::-1]
        self.inverse = inverse
        n, D = Z.shape
        self.D = D
        self.n = np.bincount(inverse, minlength=len(rows)).astype(np.float64)
        self.mean = rows.astype(np.float64)
        self.W = np.zeros((len(rows), D, D))
        centred = Z - Z.mean(axis=0)
        self.alpha = max(float(np.sum(centred**2)) / (n * D), np.finfo(float).eps)
        self.beta = 1.0
        self.term = self._term(self.n, self.W)

    def _term(self, n: np.ndarray, W: np.ndarray) -> np.ndarray:
        trace = np.trace(W, axis1=-2, axis2=-1)
        if self.model == "EII":
            return trace
        reg = self.beta * (trace + self.alpha) / n
        big = n > self.D
        det = np.zeros_like(n)
        if big.any():
            det[big] = np.maximum(np.linalg.det(W[big] / n[big, None, None]), 0.0)
        return n * np.log(det + reg)

    def merged(self, i: int, others: np.ndarray):
        """Count, mean, scatter of cluster ``i`` merged with each of ``others``."""
        ni, nj = self.n[i], self.n[others]
        n = ni + nj
        diff = self.mean[i] - self.mean[others]
        W = (
            self.W[i]
            + self.W[others]
            + ((ni * nj / n)[:, None, None]) * (diff[:, :, None] * diff[:, None, :])
        )
        mean = (ni * self.mean[i] + nj[:, None] * self.mean[others]) / n[:, None]
        return n, mean, W

    def costs(self, i: int, others: np.ndarray) -> np.ndarray:
        """Rise of the criterion when ``i`` merges with each of ``others``."""
        if len(others) == 0:
            return np.empty(0)
        n, _, W = self.merged(i, others)
        return self._term(n, W) - self.term[i] - self.term[others]

    def merge(self, i: int, j: int) -> None:
        n, mean, W = self.merged(i, np.array([j]))
        self.n[i], self.mean[i], self.W[i] = n[0], mean[0], W[0]
        self.term[i] = self._term(n, W)[0]


def hc_merges(Z: np.ndarray, model: str = "VVV") -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The agglomeration of the rows of ``Z``.

    Returns the initial partition (one label per row: equal rows share one) and the
    merges in order, each ``(i, j)`` with ``i < j``: cluster ``j`` joins cluster ``i``
    (clusters are numbered by the initial partition).
    """
    if model not in HC_MODELS:
        raise ValueError(f"hc model must be one of {HC_MODELS}, got {model!r}")
    cl = _Clusters(np.asarray(Z, dtype=np.float64), model)
    m = len(cl.n)
    cost = np.full((m, m), np.inf)
    for i in range(m - 1):
        cost[i, i + 1 :] = cl.costs(i, np.arange(i + 1, m))
    cost = np.minimum(cost, cost.T)
    active = np.ones(m, dtype=bool)
    best = cost.argmin(axis=1) if m > 1 else np.zeros(1, dtype=np.intp)
    best_cost = cost[np.arange(m), best]
    merges = []
    for _ in range(m - 1):
        i = int(np.argmin(np.where(active, best_cost, np.inf)))
        j = int(best[i])
        i, j = min(i, j), max(i, j)
        merges.append((i, j))
        cl.merge(i, j)
        active[j] = False
        cost[j, :] = cost[:, j] = np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        row = cl.costs(i, others)
        cost[i, others] = cost[others, i] = row
        best_cost[j] = np.inf
        stale = others[(best[others] == i) | (best[others] == j)]
        for r in stale:
            best[r] = int(np.argmin(cost[r]))
            best_cost[r] = cost[r, best[r]]
        closer = others[row < best_cost[others]]
        best[closer] = i
        best_cost[closer] = cost[closer, i]
        if len(others):
            best[i] = int(np.argmin(cost[i]))
            best_cost[i] = cost[i, best[i]]
    return cl.inverse, merges


#: the last few agglomerations, so that every candidate of a model selection (and each
#: restart) shares one tree: the data's bytes are the key
_CACHE: dict[tuple, tuple[np.ndarray, list[tuple[int, int]]]] = {}
_CACHE_SIZE = 4


def _cached_merges(Z: np.ndarray, model: str):
    import hashlib

    Z = np.ascontiguousarray(Z)
    key = (hashlib.sha1(Z.tobytes()).hexdigest(), Z.shape, model)
    hit = _CACHE.get(key)
    if hit is None:
        hit = hc_merges(Z, model)
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)), None)
        _CACHE[key] = hit
    return hit


def _cut(initial: np.ndarray, merges: Sequence[tuple[int, int]], ks: Sequence[int]):
    """Labels (0..K-1, numbered by first appearance) after cutting at each K in ``ks``."""
    m = int(initial.max()) + 1 if len(initial) else 0
    parent = np.arange(m)
    out = {}
    wanted = set(ks)
    count = m
    if count in wanted:
        out[count] = parent.copy()
    for i, j in merges:
        parent[parent == j] = i
        count -= 1
        if count in wanted:
            out[count] = parent.copy()
    labels = {}
    for k, p in out.items():
        raw = p[initial]
        _, first = np.unique(raw, return_index=True)
        order = np.argsort(np.argsort(first))
        labels[k] = order[np.searchsorted(np.unique(raw), raw)]
    return labels


def hc_partitions(
    X: np.ndarray,
    ks: Sequence[int],
    *,
    model: str = "VVV",
    use: str = "SVD",
    max_rows: int = 2000,
    rng: np.random.Generator | None = None,
) -> dict[int, np.ndarray]:
    """Hard partitions (labels 0..K-1 per row) of the rows of ``X`` for every K in ``ks``.

    Raises ``ValueError`` when a K exceeds the number of distinct rows agglomerated.
    """
    X = np.asarray(X, dtype=np.float64)
    Z = hc_transform(X, use)
    rows = np.arange(len(X))
    if len(X) > max_rows:
        rng = np.random.default_rng(0) if rng is None else rng
        rows = np.sort(rng.choice(len(X), size=max_rows, replace=False))
    initial, merges = _cached_merges(Z[rows], model)
    n_distinct = int(initial.max()) + 1
    too_many = [k for k in ks if k > n_distinct or k < 1]
    if too_many:
        raise ValueError(
            f"hierarchical agglomeration cannot make {too_many[0]} clusters from "
            f"{n_distinct} distinct rows; use fewer components or another init"
        )
    cuts = _cut(initial, merges, ks)
    if len(rows) == len(X):
        return cuts
    out = {}
    for k, labels in cuts.items():
        counts = np.bincount(labels, minlength=k)[:, None]
        centres = np.stack([np.bincount(labels, weights=c, minlength=k) for c in Z[rows].T], 1)
        centres /= counts
        d = ((Z[:, None, :] - centres[None]) ** 2).sum(axis=2)
        full = d.argmin(axis=1)
        full[rows] = labels
        out[k] = full
    return out
