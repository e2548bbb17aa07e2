"""Reference helpers of the distribution tests: weighted moments and pytree comparison."""

import numpy as np

from emkit._pytree import tree_leaves


def wmean(X, w):
    """Weighted column means."""
    return np.average(X, axis=0, weights=w)


def wvar(X, w):
    """Weighted column variances (about the weighted means, biased)."""
    return np.average((X - wmean(X, w)) ** 2, axis=0, weights=w)


def assert_trees_close(a, b, rtol=1e-10, atol=1e-12):
    """Every leaf of two pytrees equal to the tolerances."""
    for x, y in zip(tree_leaves(a), tree_leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
