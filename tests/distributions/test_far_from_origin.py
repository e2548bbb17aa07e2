"""Every Gaussian path is exact whatever the data's offset and spread.

Tight clusters far apart relative to their spread (projected map coordinates,
timestamps) make the expansion ||x||^2 - 2 x.mu + ||mu||^2 and raw second moments
cancel. The references here are independent: ``scipy.stats`` densities evaluated at
the fitted parameters, a log-space forward recursion over ``scipy.stats`` densities for
the HMM, and per-cluster sample covariances (with clusters a million standard
deviations apart every responsibility is exactly 0 or 1, so the maximum-likelihood
covariance of a component is the biased covariance of its cluster, plus ``reg_covar``).
Monotonicity warnings are errors in this suite (pyproject's filterwarnings).
"""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import emkit
from emkit.distributions import Gaussian, GaussianParams, get_structure

COV_TYPES = ["full", "diag", "tied", "spherical"]
# (offset, spread): spread down to 1e-6 of the offset
GRID = [(1e4, 1e-2), (1e6, 1.0), (1e3, 1e-3), (0.0, 1.0), (-5e5, 0.5)]


def _clusters(offset, spread, n=150, D=2, seed=0):
    """Two tight clusters, one near the origin and one ``offset`` away (and skewed)."""
    rng = np.random.default_rng(seed)
    shape = np.array([[1.0, 0.0], [0.6, 0.5]])[:D, :D]
    a = rng.normal(size=(n, D)) @ shape * spread + 3.0 * spread
    b = rng.normal(size=(n, D)) @ shape.T * spread * 0.7 + offset + 10.0 * spread
    return np.vstack([a, b]), np.repeat([0, 1], n)


def _scipy_log_joint(weights, means, full, X):
    return np.column_stack(
        [
            np.log(weights[k]) + stats.multivariate_normal(means[k], full[k]).logpdf(X)
            for k in range(len(weights))
        ]
    )


def _full(gm):
    K, D = gm.means_.shape
    return get_structure(gm.covariance_type).to_full(gm.covariances_, K, D)


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize(("offset", "spread"), GRID)
def test_gaussian_mixture_log_densities_equal_scipy(cov_type, offset, spread):
    X, _ = _clusters(offset, spread)
    gm = emkit.GaussianMixture(2, covariance_type=cov_type, random_state=0, tol=1e-8)
    gm.fit(X)
    ref = logsumexp(_scipy_log_joint(gm.weights_, gm.means_, _full(gm), X), axis=1)
    # per sample: 1e-9 relative, or 1e-9 nats for densities near 1 (log near 0), where
    # the rounding of the data themselves (x at 1e6 carries 1e-10 of its spread) shows
    np.testing.assert_allclose(gm.score_samples(X), ref, rtol=1e-9, atol=1e-9)
    assert gm.loglik_ == pytest.approx(ref.sum(), rel=1e-9)
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize(("offset", "spread"), [(1e4, 1e-2), (1e6, 1.0)])
def test_mstep_second_moments_equal_the_clusters_covariances(cov_type, offset, spread):
    X, labels = _clusters(offset, spread)
    reg = 1e-6 * spread**2
    gm = emkit.GaussianMixture(2, covariance_type=cov_type, reg_covar=reg, random_state=0)
    gm.fit(X)
    order = np.argsort(gm.means_[:, 0])  # component of the cluster near the origin first
    for k, cluster in zip(order, (0, 1)):
        rows = X[labels == cluster]
        np.testing.assert_allclose(gm.means_[k], rows.mean(axis=0), rtol=1e-12, atol=1e-9 * spread)
        cov = np.cov(rows, rowvar=False, bias=True)
        expected = get_structure(cov_type).from_full(cov[None])[0] + reg * (
            np.eye(2) if cov_type == "full" else 1.0
        )
        np.testing.assert_allclose(gm.covariances_[k], expected, rtol=1e-8)


def test_tied_mstep_pools_the_clusters_covariances_far_from_the_origin():
    X, labels = _clusters(1e6, 1.0)
    gm = emkit.GaussianMixture(2, covariance_type="tied", reg_covar=0.0, random_state=0).fit(X)
    pooled = sum(
        np.cov(X[labels == c], rowvar=False, bias=True) * np.sum(labels == c) for c in (0, 1)
    ) / len(X)
    np.testing.assert_allclose(gm.covariances_, pooled, rtol=1e-8)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_missing_values_far_from_the_origin_equal_scipy_marginals(cov_type):
    X, _ = _clusters(1e5, 1e-1, D=2)
    X = np.column_stack([X, X[:, 0] * 0.5 + 1e-2 * np.arange(len(X)) % 1.0])
    X[::5, 1] = np.nan
    X[1::7, 2] = np.nan
    gm = emkit.GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(X)
    full = _full(gm)
    ref = np.empty(len(X))
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        joint = [
            np.log(gm.weights_[k])
            + stats.multivariate_normal(gm.means_[k][o], full[k][np.ix_(o, o)]).logpdf(x[o])
            for k in range(2)
        ]
        ref[i] = logsumexp(joint)
    np.testing.assert_allclose(gm.score_samples(X), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize(("offset", "spread"), [(1e4, 1e-2), (1e6, 1.0)])
def test_gaussian_distribution_log_prob_equals_scipy(cov_type, offset, spread):
    rng = np.random.default_rng(3)
    D = 3
    means = offset + spread * rng.normal(size=(2, D)) * np.array([[1.0], [50.0]])
    A = rng.normal(size=(2, D, D)) * spread
    full = A @ np.swapaxes(A, 1, 2) + spread**2 * np.eye(D)
    st = get_structure(cov_type)
    cov = st.from_full(full)
    g = Gaussian(cov_type)
    params = GaussianParams(means, g.from_storage(cov, 2))
    X = means[rng.integers(0, 2, 40)] + spread * rng.normal(size=(40, D))
    X[::3, 0] = np.nan
    got = g.log_prob(params, X)
    full = st.to_full(cov, 2, D)
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        for k in range(2):
            ref = stats.multivariate_normal(means[k][o], full[k][np.ix_(o, o)]).logpdf(x[o])
            assert got[i, k] == pytest.approx(ref, rel=1e-9)


def _forward_loglik(startprob, transmat, log_b):
    alpha = np.log(startprob) + log_b[0]
    for t in range(1, len(log_b)):
        alpha = logsumexp(alpha[:, None] + np.log(transmat), axis=0) + log_b[t]
    return logsumexp(alpha)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gaussian_hmm_far_from_the_origin_equals_a_scipy_forward_recursion(cov_type):
    rng = np.random.default_rng(5)
    offset, spread = 1e6, 1.0
    states = np.zeros(300, dtype=int)
    for t in range(1, len(states)):
        states[t] = states[t - 1] if rng.random() < 0.9 else 1 - states[t - 1]
    centres = np.array([[offset, offset], [offset + 30.0, offset - 20.0]])
    X = centres[states] + spread * rng.normal(size=(len(states), 2))
    hmm = emkit.HMM(2, covariance_type=cov_type, random_state=0, tol=1e-6).fit(X)
    K, D = hmm.means_.shape
    full = get_structure(cov_type).to_full(hmm.covariances_, K, D)
    log_b = np.column_stack(
        [stats.multivariate_normal(hmm.means_[k], full[k]).logpdf(X) for k in range(K)]
    )
    ref = _forward_loglik(hmm.startprob_, hmm.transmat_, log_b)
    assert hmm.score(X) == pytest.approx(ref, rel=1e-9)
