"""The Gaussian distribution block: densities against scipy.stats, M-steps against
weighted moments computed directly, missing values against conditioning by hand."""

import numpy as np
import pytest
from scipy import stats

from emkit._pytree import tree_add
from emkit.distributions import Gaussian, GaussianParams

TYPES = ("full", "diag", "tied", "spherical")


def random_params(cov_type, K, D, rng):
    means = rng.normal(size=(K, D)) * 2
    A = rng.normal(size=(K, D, D))
    full = A @ np.swapaxes(A, 1, 2) + D * np.eye(D)
    if cov_type == "diag":
        cov = np.diagonal(full, axis1=1, axis2=2).copy()
    elif cov_type == "spherical":
        cov = np.diagonal(full, axis1=1, axis2=2).mean(axis=1)
    elif cov_type == "tied":
        cov = np.broadcast_to(full[0], (K, D, D)).copy()
    else:
        cov = full
    return GaussianParams(means, cov)


def to_full(cov, D):
    cov = np.asarray(cov)
    if cov.ndim == 0:
        return cov * np.eye(D)
    if cov.ndim == 1:
        return np.diag(cov)
    return cov


@pytest.mark.parametrize("cov_type", TYPES)
def test_log_prob_matches_scipy_with_and_without_missing_values(cov_type):
    rng = np.random.default_rng(1)
    K, D = 3, 4
    g = Gaussian(cov_type)
    params = random_params(cov_type, K, D, rng)
    X = rng.normal(size=(40, D)) * 2
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    X[0] = np.nan  # nothing observed: the marginal of nothing is 1
    lp = g.log_prob(params, g.validate(X))
    for i, x in enumerate(X):
        obs = ~np.isnan(x)
        for k in range(K):
            cov = to_full(params.covariance[k], D)
            expected = (
                stats.multivariate_normal(params.mean[k][obs], cov[np.ix_(obs, obs)]).logpdf(x[obs])
                if obs.any()
                else 0.0
            )
            assert lp[i, k] == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("cov_type", TYPES)
def test_mstep_is_the_weighted_mle(cov_type):
    rng = np.random.default_rng(2)
    N, K, D = 60, 2, 3
    X = rng.normal(size=(N, D)) + np.array([5.0, -2.0, 1.0])
    w = rng.uniform(size=(N, K))
    g = Gaussian(cov_type, reg_covar=0.0)
    p = g.mstep(g.suff_stats(X, w))
    covs = []
    for k in range(K):
        mean = np.average(X, axis=0, weights=w[:, k])
        np.testing.assert_allclose(p.mean[k], mean, rtol=1e-10)
        covs.append(np.cov(X.T, aweights=w[:, k], bias=True))
    covs = np.array(covs)
    if cov_type == "full":
        expected = covs
    elif cov_type == "diag":
        expected = np.diagonal(covs, axis1=1, axis2=2)
    elif cov_type == "spherical":
        expected = np.diagonal(covs, axis1=1, axis2=2).mean(axis=1)
    else:  # pooled within-component covariance
        pooled = np.einsum("k,kde->de", w.sum(axis=0), covs) / w.sum()
        expected = np.broadcast_to(pooled, (K, D, D))
    np.testing.assert_allclose(p.covariance, expected, rtol=1e-9, atol=1e-12)


def test_reg_covar_is_added_to_the_diagonal():
    X = np.array([[0.0, 0.0], [2.0, 0.0]])
    g = Gaussian("full", reg_covar=0.5)
    p = g.mstep(g.suff_stats(X, np.ones((2, 1))))
    np.testing.assert_allclose(p.covariance[0], [[1.5, 0.0], [0.0, 0.5]])


@pytest.mark.parametrize("cov_type", TYPES)
def test_statistics_add_over_any_split(cov_type):
    rng = np.random.default_rng(3)
    K, D = 3, 3
    g = Gaussian(cov_type)
    params = random_params(cov_type, K, D, rng)
    X = rng.normal(size=(50, D))
    X[rng.uniform(size=X.shape) < 0.25] = np.nan
    X[3] = np.nan
    w = rng.uniform(size=(50, K))
    whole = g.suff_stats(X, w, params)
    cut = rng.permutation(50)
    a, b = cut[:17], cut[17:]
    parts = tree_add(g.suff_stats(X[a], w[a], params), g.suff_stats(X[b], w[b], params))
    for x, y in zip(whole, parts):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_missing_values_give_conditional_moments():
    # Expected statistics of rows with NaN, by the textbook conditioning formulas
    # written with explicit inverses, one row and one component at a time. Given the
    # parameters, the moments are taken about their means (exact far from the origin).
    rng = np.random.default_rng(4)
    K, D = 2, 4
    g = Gaussian("full", reg_covar=0.0)
    params = random_params("full", K, D, rng)
    X = rng.normal(size=(6, D))
    X[rng.uniform(size=X.shape) < 0.4] = np.nan
    X[1, :] = np.nan
    w = rng.uniform(size=(6, K))
    got = g.suff_stats(X, w, params)
    s1 = np.zeros((K, D))
    s2 = np.zeros((K, D, D))
    for i, x in enumerate(X):
        o, m = ~np.isnan(x), np.isnan(x)
        for k in range(K):
            mu, S = params.mean[k], params.covariance[k]
            ex = x.copy()
            cov = np.zeros((D, D))
            if m.any():
                if o.any():
                    gain = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)])
                    ex[m] = mu[m] + gain @ (x[o] - mu[o])
                    cov[np.ix_(m, m)] = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
                else:
                    ex, cov = mu.copy(), S.copy()
            s1[k] += w[i, k] * (ex - mu)
            s2[k] += w[i, k] * (np.outer(ex - mu, ex - mu) + cov)
    np.testing.assert_allclose(got.nk, w.sum(axis=0))
    np.testing.assert_allclose(got.s1, s1, rtol=1e-10)
    iu = np.triu_indices(D)
    np.testing.assert_allclose(got.s2, s2[:, iu[0], iu[1]], rtol=1e-10)


def test_sample_has_the_component_moments():
    rng = np.random.default_rng(5)
    for cov_type in TYPES:
        g = Gaussian(cov_type)
        params = random_params(cov_type, 2, 3, rng)
        k1 = GaussianParams(params.mean[1], params.covariance[1])
        draws = g.sample(k1, 40000, rng)
        np.testing.assert_allclose(draws.mean(axis=0), params.mean[1], atol=0.1)
        np.testing.assert_allclose(np.cov(draws.T), to_full(params.covariance[1], 3), atol=0.25)


def test_n_parameters():
    assert Gaussian("full").n_parameters(3, 4) == 3 * 4 + 3 * 10
    assert Gaussian("diag").n_parameters(3, 4) == 3 * 4 + 3 * 4
    assert Gaussian("tied").n_parameters(3, 4) == 3 * 4 + 10
    assert Gaussian("spherical").n_parameters(3, 4) == 3 * 4 + 3


def test_bad_inputs():
    g = Gaussian("full")
    with pytest.raises(ValueError, match="covariance_type"):
        Gaussian("banana")
    with pytest.raises(ValueError, match="reg_covar"):
        Gaussian("diag", reg_covar=-1.0)
    with pytest.raises(ValueError, match="column 1 has infinite"):
        g.validate([[0.0, np.inf]])
    with pytest.raises(ValueError, match="2-D"):
        g.validate([1.0, 2.0])
    with pytest.raises(ValueError, match="pass params"):
        g.suff_stats(np.array([[np.nan, 1.0], [0.0, 1.0]]), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"component\(s\) \[1\] have zero total weight"):
        g.mstep(g.suff_stats(np.eye(3), np.array([[1.0, 0], [1, 0], [1, 0]])))
    with pytest.raises(ValueError, match="singular covariance"):
        Gaussian("full", reg_covar=0.0).mstep(
            Gaussian("full").suff_stats(np.array([[1.0, 1.0], [2.0, 2.0]]), np.ones((2, 1)))
        )
