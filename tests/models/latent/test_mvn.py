"""The one-Gaussian helpers of the pure model in emkit.models.latent.mvn, against SciPy and
the textbook conditioning formulas (the model's EM is tested in test_gaussian_imputer)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from emkit.models.latent.mvn import check_covariance, condition_mvn

MEAN = np.array([1.0, -2.0, 0.5, 3.0])
COV = np.array(
    [
        [1.0, 0.7, 0.3, 0.1],
        [0.7, 2.0, -0.4, 0.2],
        [0.3, -0.4, 1.5, -0.3],
        [0.1, 0.2, -0.3, 0.8],
    ]
)


@pytest.mark.parametrize(
    "miss",
    [
        [False, False, False, False],
        [False, True, False, True],
        [True, False, False, False],
        [True, True, True, False],
    ],
)
def test_condition_mvn_is_the_conditional_normal(miss):
    miss = np.array(miss)
    obs = ~miss
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal(MEAN, COV, size=5)
    Xo = X[:, obs]
    c = condition_mvn(MEAN, COV, Xo, miss)
    marginal = stats.multivariate_normal(MEAN[obs], COV[np.ix_(obs, obs)])
    np.testing.assert_allclose(c.loglik, marginal.logpdf(Xo).reshape(-1), rtol=1e-12)
    gain = np.linalg.solve(COV[np.ix_(obs, obs)], COV[np.ix_(obs, miss)]).T
    np.testing.assert_allclose(c.mean_m, MEAN[miss] + (Xo - MEAN[obs]) @ gain.T, atol=1e-12)
    expected_cov = COV[np.ix_(miss, miss)] - gain @ COV[np.ix_(obs, miss)]
    np.testing.assert_allclose(c.cov_m, expected_cov, atol=1e-12)
    assert c.mean_m.shape == (5, miss.sum()) and c.cov_m.shape == (miss.sum(), miss.sum())


@pytest.mark.parametrize(
    "cov, match",
    [
        (np.eye(3), "shape"),
        (np.where(np.eye(4) > 0, np.nan, 0.0), "finite"),
        (COV + np.triu(np.full((4, 4), 0.1), 1), "symmetric"),
        (np.diag([1.0, 1.0, 0.0, 1.0]), "positive definite"),
    ],
)
def test_check_covariance_names_the_problem(cov, match):
    with pytest.raises(ValueError, match=f"init covariance must .*{match}"):
        check_covariance(cov, 4, "init covariance")


def test_check_covariance_returns_a_symmetric_copy():
    nudged = COV.copy()
    nudged[0, 1] += 1e-14
    out = check_covariance(nudged, 4, "covariance_")
    np.testing.assert_array_equal(out, out.T)
    np.testing.assert_allclose(out, COV, atol=1e-13)
