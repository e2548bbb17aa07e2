"""Checks shared by the conditional mixture tests (regressions and experts)."""

import numpy as np
import pytest

from emkit._pytree import tree_add, tree_leaves


def assert_additive(model, A, y, w, rng, n_parts: int = 3) -> None:
    """The E-step's statistics and log-likelihood over a random split of the rows add up
    to those of all the rows."""
    params = model.init_params((A, y, w), rng)
    whole, ll = model.estep(params, (A, y, w))
    parts = [
        model.estep(params, (A[i], y[i], w[i]))
        for i in np.array_split(rng.permutation(len(A)), n_parts)
    ]
    summed = parts[0][0]
    for stats, _ in parts[1:]:
        summed = tree_add(summed, stats)
    for a, b in zip(tree_leaves(whole), tree_leaves(summed), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    assert ll == pytest.approx(sum(p[1] for p in parts), rel=1e-12)
