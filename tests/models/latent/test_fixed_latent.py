"""``fixed=`` on GaussianImputer and FactorAnalysis.

Independent references: the observed-data log-likelihood (marginal ``scipy.stats``
normal densities of each row's observed values) maximised with
``scipy.optimize.minimize`` over the free parameters; and Tipping & Bishop's (1999)
closed form of probabilistic PCA (``W W' = U (L - s2) U'`` from the eigen-decomposition
of the second-moment matrix about the mean), which holds for a held noise variance and,
about the held mean, for a held mean.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

import emkit
from emkit import FactorAnalysis, GaussianImputer

pytestmark = [
    pytest.mark.filterwarnings("error::emkit.engine.MonotonicityWarning"),
    pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning"),
]


def mvn_data(offset=0.0, n=200, missing=0.25, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([0.0, 1.0], [[1.0, 0.6], [0.6, 2.0]], size=n) + offset
    X[rng.random(X.shape) < missing] = np.nan
    X[np.isnan(X).all(axis=1), 0] = offset  # keep every row observed somewhere
    return X


def observed_loglik(X, mean, cov):
    """Sum of each row's marginal log-density of its observed values (rows grouped by
    pattern of missing values)."""
    total = 0.0
    patterns, inverse = np.unique(~np.isnan(X), axis=0, return_inverse=True)
    for i, o in enumerate(patterns):
        rows = X[inverse.ravel() == i][:, o]
        dist = stats.multivariate_normal(mean[o], cov[np.ix_(o, o)])
        total += np.sum(np.atleast_1d(dist.logpdf(rows)))
    return total


def chol_cov(theta):
    L = np.array([[np.exp(theta[0]), 0.0], [theta[1], np.exp(theta[2])]])
    return L @ L.T


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_imputer_fixed_mean_equals_direct_maximisation(offset):
    X = mvn_data(offset)
    mean = np.array([0.3, 0.5]) + offset
    imp = GaussianImputer(fixed={"mean": mean}, tol=1e-14, max_iter=5000).fit(X)
    np.testing.assert_array_equal(imp.mean_, mean)
    res = optimize.minimize(
        lambda t: -observed_loglik(X, mean, chol_cov(t)),
        np.zeros(3),
        method="BFGS",
        options={"gtol": 1e-8},
    )
    np.testing.assert_allclose(imp.covariance_, chol_cov(res.x), rtol=1e-5)
    assert imp.loglik_ == pytest.approx(-res.fun, rel=1e-9)


def test_imputer_fixed_covariance_equals_direct_maximisation():
    X = mvn_data(seed=1)
    cov = np.array([[1.5, 0.9], [0.9, 1.5]])
    imp = GaussianImputer(fixed={"covariance": cov}, tol=1e-14, max_iter=5000, accel="squarem")
    imp.fit(X)
    np.testing.assert_array_equal(imp.covariance_, cov)
    res = optimize.minimize(
        lambda m: -observed_loglik(X, m, cov), np.zeros(2), method="BFGS", options={"gtol": 1e-9}
    )
    np.testing.assert_allclose(imp.mean_, res.x, rtol=1e-6, atol=1e-7)


def ppca_data(offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    W = np.array([[1.0, 0.8, 0.6, 0.0], [0.0, 0.5, -0.5, 1.0]])
    return rng.normal(size=(300, 2)) @ W + 0.4 * rng.normal(size=(300, 4)) + offset


def ppca_closed_form(S, K, s2=None):
    vals, vecs = np.linalg.eigh(S)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    if s2 is None:
        s2 = vals[K:].mean()
    return vecs[:, :K] @ np.diag(vals[:K] - s2) @ vecs[:, :K].T, s2


def test_ppca_fixed_noise_variance_is_tipping_bishop():
    X = ppca_data()
    s2 = 0.2
    fa = FactorAnalysis(
        2,
        noise="isotropic",
        fixed={"noise_variance": np.full(4, s2)},
        tol=1e-14,
        max_iter=20000,
        accel="squarem",
    ).fit(X)
    np.testing.assert_array_equal(fa.noise_variance_, np.full(4, s2))
    np.testing.assert_allclose(fa.mean_, X.mean(axis=0), rtol=1e-9, atol=1e-10)
    S = np.cov(X.T, bias=True)
    WWt, _ = ppca_closed_form(S, 2, s2)
    np.testing.assert_allclose(fa.components_.T @ fa.components_, WWt, atol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 1e5])
def test_ppca_fixed_mean_is_tipping_bishop_about_it(offset):
    X = ppca_data(offset)
    mean = np.array([0.2, -0.1, 0.0, 0.3]) + offset
    fa = FactorAnalysis(
        2, noise="isotropic", fixed={"mean": mean}, tol=1e-14, max_iter=20000, accel="squarem"
    ).fit(X)
    np.testing.assert_array_equal(fa.mean_, mean)
    R = X - mean
    WWt, s2 = ppca_closed_form(R.T @ R / len(X), 2)
    np.testing.assert_allclose(fa.noise_variance_, np.full(4, s2), rtol=1e-6)
    np.testing.assert_allclose(fa.components_.T @ fa.components_, WWt, atol=1e-6)


def test_fa_fixed_loadings_equal_direct_maximisation():
    X = ppca_data(seed=2)[:, :3]
    X[::7, 1] = np.nan
    W = np.array([[0.9, 0.7, 0.5]])
    fa = FactorAnalysis(1, fixed={"components": W}, tol=1e-14, max_iter=20000).fit(X)
    np.testing.assert_array_equal(fa.components_, W)

    def nll(theta):
        return -observed_loglik(X, theta[:3], W.T @ W + np.diag(np.exp(theta[3:])))

    res = optimize.minimize(nll, np.zeros(6), method="BFGS", options={"gtol": 1e-8})
    np.testing.assert_allclose(fa.mean_, res.x[:3], atol=1e-5)
    np.testing.assert_allclose(fa.noise_variance_, np.exp(res.x[3:]), rtol=1e-4)


def test_fixed_names_hold_the_given_start_exactly():
    X = ppca_data(1e3)
    init = {"mean": X.mean(axis=0) + 0.1, "components": np.array([[1.0, 0.8, 0.6, 0.0]])}
    fa = FactorAnalysis(1, init=init, fixed=["mean", "components"], accel="squarem").fit(X)
    np.testing.assert_array_equal(fa.mean_, init["mean"])
    np.testing.assert_array_equal(fa.components_, init["components"])
    Xm = mvn_data(1e3)
    init = {"mean": np.array([1e3, 1e3 + 1.5])}
    imp = GaussianImputer(init=init, fixed=["mean"], accel="squarem").fit(Xm)
    np.testing.assert_array_equal(imp.mean_, init["mean"])


@pytest.mark.parametrize(
    "cls, fixed, match",
    [
        (GaussianImputer, {"mean": [0.0]}, "shape"),
        (GaussianImputer, {"covariance": -np.eye(2)}, "covariance"),
        (GaussianImputer, {"means": [0.0, 0.0]}, "unknown"),
        (GaussianImputer, ["variance"], "variance"),
        (FactorAnalysis, {"noise_variance": [1.0, -1.0]}, "positive"),
        (FactorAnalysis, {"components": np.ones((2, 2))}, "shape"),
        (FactorAnalysis, ["loadings"], "loadings"),
    ],
)
def test_bad_fixed_values_leave_the_previous_fit(cls, fixed, match):
    X = mvn_data(missing=0.0)
    est = cls().fit(X)
    before = est.mean_.copy()
    est.set_params(fixed=fixed)
    with pytest.raises(ValueError, match=match):
        est.fit(X)
    np.testing.assert_array_equal(est.mean_, before)


def test_fixed_survives_save_and_load(tmp_path):
    X = mvn_data()
    imp = GaussianImputer(fixed={"mean": np.array([0.1, 0.9])}).fit(X)
    imp.save(tmp_path / "imp.npz")
    loaded = emkit.load(tmp_path / "imp.npz")
    np.testing.assert_array_equal(loaded.fixed["mean"], [0.1, 0.9])
    np.testing.assert_array_equal(loaded.fit(X).covariance_, imp.covariance_)
