"""Model-based hierarchical agglomeration (mclust's ``hc``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import adjusted_rand_score

from emkit.models.hc import hc_merges, hc_partitions, hc_transform


def _blobs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
    return np.vstack([c + rng.normal(size=(n // 3, 2)) * [1.0, 0.5] for c in centres])


@pytest.mark.parametrize("K", [2, 3, 5, 9])
def test_eii_is_wards_method(K):
    """EII's criterion (the rise of the pooled within-cluster scatter) is Ward's: the
    partitions equal scipy's Ward linkage cut at K clusters."""
    Z = _blobs(seed=K)
    labels = hc_partitions(Z, [K], model="EII", use="VARS")[K]
    ward = fcluster(linkage(Z, method="ward"), K, criterion="maxclust")
    assert adjusted_rand_score(labels, ward) == 1.0
    assert sorted(set(labels)) == list(range(K))


def test_svd_transform_is_mclusts():
    """mclust's use="SVD": scale (divisor n - 1), rotate by V, divide by sqrt(d)."""
    X = _blobs() * [3.0, 0.2] + 100.0
    Z = hc_transform(X)
    S = (X - X.mean(0)) / X.std(0, ddof=1)
    _, d, _ = np.linalg.svd(S, full_matrices=False)
    np.testing.assert_allclose(Z.T @ Z, np.diag(d), atol=1e-9)  # Z'Z = diag(d)
    np.testing.assert_allclose(Z.mean(0), 0.0, atol=1e-12)


def test_vvv_partitions_the_blobs_and_merges_every_cluster():
    Z = hc_transform(_blobs())
    initial, merges = hc_merges(Z, "VVV")
    assert len(merges) == initial.max()  # down to one cluster
    labels = hc_partitions(_blobs(), [3])[3]
    truth = np.repeat(np.arange(3), 30)
    assert adjusted_rand_score(labels, truth) > 0.9


def test_duplicate_rows_start_together_and_large_data_use_a_subset():
    X = np.vstack([_blobs(), _blobs()[:10]])  # ten repeated rows
    initial, _ = hc_merges(hc_transform(X), "VVV")
    assert initial.max() + 1 == 90
    np.testing.assert_array_equal(initial[90:], initial[:10])
    parts = hc_partitions(_blobs(300), [3], max_rows=60, rng=np.random.default_rng(0))
    assert parts[3].shape == (300,) and sorted(set(parts[3])) == [0, 1, 2]


def test_bad_arguments():
    with pytest.raises(ValueError, match="distinct rows"):
        hc_partitions(np.ones((5, 2)), [2])
    with pytest.raises(ValueError, match="hc model"):
        hc_merges(np.ones((5, 2)), "XYZ")
    with pytest.raises(ValueError, match="use must be"):
        hc_transform(np.ones((5, 2)), "PCS")
