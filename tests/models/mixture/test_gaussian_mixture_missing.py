"""GaussianMixture with missing values (NaN): the observed-data likelihood and its EM.

References are independent of emkit's code: a direct numerical maximisation of the
observed-data log-likelihood (scipy.optimize), marginal densities from scipy.stats on
each row's observed coordinates, conditional means solved by hand, and the
complete-data fit where nothing is missing.
"""

import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp

from emkit import GaussianMixture
from emkit._pytree import tree_leaves
from emkit.distributions.covariance import get_structure
from emkit.distributions.missing import MissingBatch
from emkit.exceptions import ConvergenceWarning
from emkit.models.mixture.gaussian_model import GaussianMixtureModel

COV_TYPES = ["full", "diag", "tied", "spherical"]

TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-1.0, 6.0, 3.0]])
TRUE_COVS = np.array(
    [
        [[1.0, 0.6, 0.2], [0.6, 1.5, -0.3], [0.2, -0.3, 0.8]],
        [[0.5, 0.0, 0.1], [0.0, 2.0, 0.4], [0.1, 0.4, 1.0]],
        [[1.5, -0.4, 0.0], [-0.4, 0.8, 0.2], [0.0, 0.2, 0.6]],
    ]
)


def sample_mixture(rng, n, weights=TRUE_WEIGHTS, means=TRUE_MEANS, covs=TRUE_COVS):
    labels = rng.choice(len(weights), size=n, p=weights)
    X = np.empty((n, means.shape[1]))
    for k in range(len(weights)):
        rows = labels == k
        X[rows] = rng.multivariate_normal(means[k], covs[k], size=rows.sum())
    return X, labels


def mcar(rng, X, rate):
    """Each value missing with probability ``rate``, independently; no empty rows."""
    Xn = X.copy()
    Xn[rng.random(X.shape) < rate] = np.nan
    empty = np.isnan(Xn).all(axis=1)
    Xn[empty, 0] = X[empty, 0]
    return Xn


def full_covariances(gm):
    K, D = gm.means_.shape
    return get_structure(gm.covariance_type).to_full(gm.covariances_, K, D)


def scipy_log_joint(X, weights, means, covs):
    """log w_k + log N(x_o | m_k,o, C_k,oo), row by row with scipy.stats."""
    K = len(weights)
    out = np.zeros((len(X), K))
    for i, x in enumerate(X):
        obs = ~np.isnan(x)
        for k in range(K):
            out[i, k] = np.log(weights[k])
            if obs.any():
                mvn = stats.multivariate_normal(means[k][obs], covs[k][np.ix_(obs, obs)])
                out[i, k] += mvn.logpdf(x[obs])
    return out


def observed_loglik(X, weights, means, covs):
    """Observed-data log-likelihood, one scipy.stats call per pattern and component."""
    miss = np.isnan(X)
    total = 0.0
    for pattern in np.unique(miss, axis=0):
        rows = np.all(miss == pattern, axis=1)
        obs = ~pattern
        Xo = X[np.ix_(rows, obs)]
        lj = np.column_stack(
            [
                np.log(weights[k])
                + np.atleast_1d(
                    stats.multivariate_normal(means[k][obs], covs[k][np.ix_(obs, obs)]).logpdf(Xo)
                )
                for k in range(len(weights))
            ]
        )
        total += logsumexp(lj, axis=1).sum()
    return total


def fast_observed_loglik(groups, weights, means, covs):
    """The same as ``observed_loglik`` in plain NumPy (the optimiser calls it often):
    ``groups`` holds (observed mask, observed values) per pattern."""
    total = 0.0
    for obs, Xo in groups:
        S = covs[:, obs][:, :, obs]  # (K, o, o)
        r = Xo[None] - means[:, None, obs]  # (K, B, o)
        maha = np.einsum("kbo,kob->kb", r, np.linalg.solve(S, np.swapaxes(r, 1, 2)))
        logdet = np.linalg.slogdet(S)[1]
        lj = np.log(weights)[:, None] - 0.5 * (
            obs.sum() * np.log(2 * np.pi) + logdet[:, None] + maha
        )
        total += np.logaddexp.reduce(lj, axis=0).sum()
    return total


def unpack(theta, cov_type, K, D):
    """Free parameters -> (weights, means, full covariances), written independently."""
    logits = np.r_[0.0, theta[: K - 1]]
    weights = np.exp(logits - logsumexp(logits))
    means = theta[K - 1 : K - 1 + K * D].reshape(K, D)
    rest = theta[K - 1 + K * D :]
    if cov_type in ("full", "tied"):
        n_mats = K if cov_type == "full" else 1
        size = D * (D + 1) // 2
        mats = []
        for j in range(n_mats):
            L = np.zeros((D, D))
            L[np.tril_indices(D)] = rest[j * size : (j + 1) * size]
            L[np.diag_indices(D)] = np.exp(np.diag(L))
            mats.append(L @ L.T)
        covs = np.array(mats if n_mats == K else mats * K)
    elif cov_type == "diag":
        covs = np.array([np.diag(np.exp(v)) for v in rest.reshape(K, D)])
    else:
        covs = np.array([np.exp(v) * np.eye(D) for v in rest])
    return weights, means, covs


def start_vector(cov_type, K, D, means):
    logits = np.zeros(K - 1)
    if cov_type in ("full", "tied"):
        n_mats = K if cov_type == "full" else 1
        cov_part = np.zeros(n_mats * D * (D + 1) // 2)  # identity Cholesky factors
    elif cov_type == "diag":
        cov_part = np.zeros(K * D)
    else:
        cov_part = np.zeros(K)
    return np.concatenate([logits, means.ravel(), cov_part])


def start_for(cov_type, shift=0.5):
    """A full starting point (no random initialisation involved)."""
    covs = get_structure(cov_type).from_full(np.broadcast_to(np.eye(3), (3, 3, 3)))
    return {"weights": TRUE_WEIGHTS, "means": TRUE_MEANS + shift, "covariances": covs}


def fit(X, K, cov_type, sample_weight=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(K, covariance_type=cov_type, **kw).fit(
            X, sample_weight=sample_weight
        )


# ---------------------------------------------------------------------- the likelihood
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_em_reaches_the_direct_maximum_of_the_observed_data_likelihood(cov_type):
    rng = np.random.default_rng(0)
    X, _ = sample_mixture(rng, 150, TRUE_WEIGHTS[:2] / 0.8, TRUE_MEANS[:2], TRUE_COVS[:2])
    X = mcar(rng, X, 0.25)
    K, D = 2, 3
    start_means = TRUE_MEANS[:2] + 0.7
    x0 = start_vector(cov_type, K, D, start_means)
    miss = np.isnan(X)
    groups = [(~p, X[np.all(miss == p, axis=1)][:, ~p]) for p in np.unique(miss, axis=0)]
    res = optimize.minimize(
        lambda t: -fast_observed_loglik(groups, *unpack(t, cov_type, K, D)),
        x0,
        method="BFGS",
        options={"gtol": 1e-7, "maxiter": 5000},
    )
    direct = observed_loglik(X, *unpack(res.x, cov_type, K, D))
    assert direct == pytest.approx(-res.fun, rel=1e-12)
    w0, m0, c0 = unpack(x0, cov_type, K, D)
    start = {
        "weights": w0,
        "means": m0,
        "covariances": get_structure(cov_type).from_full(c0),
    }
    gm = GaussianMixture(
        K,
        covariance_type=cov_type,
        init=start,
        reg_covar=0.0,
        tol=1e-12,
        max_iter=5000,
        check_monotone="raise",
    ).fit(X)
    assert gm.converged_
    # EM's own log-likelihood is the observed-data one computed by scipy.stats ...
    own = observed_loglik(X, gm.weights_, gm.means_, full_covariances(gm))
    assert gm.loglik_ == pytest.approx(own, rel=1e-10)
    # ... and its maximum is the direct one.
    assert gm.loglik_ == pytest.approx(direct, rel=1e-6)
    w, m, c = unpack(res.x, cov_type, K, D)
    order = np.argsort(m[:, 0])
    mine = np.argsort(gm.means_[:, 0])
    np.testing.assert_allclose(gm.weights_[mine], w[order], atol=1e-3)
    np.testing.assert_allclose(gm.means_[mine], m[order], atol=1e-3)
    np.testing.assert_allclose(full_covariances(gm)[mine], c[order], atol=2e-3)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_nothing_missing_through_the_missing_data_path_equals_the_complete_data_path(cov_type):
    """Complete rows given to the conditioning code (as one 'pattern') give the same
    statistics and log-likelihood as the complete-data kernels."""
    rng = np.random.default_rng(1)
    X, _ = sample_mixture(rng, 400)
    w = rng.uniform(0.5, 2.0, len(X))
    model = GaussianMixtureModel(3, cov_type)
    params = model.init_params((X, w), rng)
    plain, ll_plain = model.estep(params, (X, w))
    as_pattern, ll_pattern = model.estep(params, MissingBatch(X, w, np.zeros(len(X), int)))
    assert ll_pattern == pytest.approx(ll_plain, rel=1e-12)
    for a, b in zip(tree_leaves(as_pattern), tree_leaves(plain), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_fit_with_nan_only_in_zero_weight_rows_equals_the_complete_data_fit(cov_type):
    rng = np.random.default_rng(2)
    X, _ = sample_mixture(rng, 300)
    Xn = np.vstack([X, mcar(rng, X[:40], 0.5)])
    w = np.r_[np.ones(len(X)), np.zeros(40)]
    start = start_for(cov_type)
    complete = fit(X, 3, cov_type, init=start, tol=0.0, max_iter=20)
    with_nan = fit(Xn, 3, cov_type, init=start, tol=0.0, max_iter=20, sample_weight=w)
    assert with_nan.loglik_ == pytest.approx(complete.loglik_, rel=1e-12)
    # The centring differs by round-off (column means of the observed values), which
    # 20 EM steps amplify to ~1e-8 here, as they do on complete data alone.
    np.testing.assert_allclose(with_nan.means_, complete.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(with_nan.covariances_, complete.covariances_, rtol=1e-7)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_loglik_never_decreases_with_missing_values(cov_type):
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        X, _ = sample_mixture(rng, 200 + 50 * seed)
        X = mcar(rng, X * rng.uniform(0.1, 10), 0.1 + 0.08 * seed)
        gm = fit(
            X,
            2 + seed % 3,
            cov_type,
            tol=0.0,
            max_iter=40,
            init=["kmeans++", "random", "random_from_data", "kmeans"][seed % 4],
            random_state=seed,
            check_monotone="raise",
        )
        h = gm.history_
        assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])), seed
        assert h[-1] == pytest.approx(gm.loglik_)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_mcar_data_recover_the_true_mixture(cov_type):
    rng = np.random.default_rng(3)
    X, _ = sample_mixture(rng, 20000)
    X = mcar(rng, X, 0.2)
    gm = GaussianMixture(3, covariance_type=cov_type, n_init=2, tol=1e-6, random_state=0).fit(X)
    order = [int(np.argmin(np.linalg.norm(gm.means_ - m, axis=1))) for m in TRUE_MEANS]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(gm.weights_[order], TRUE_WEIGHTS, atol=0.015)
    np.testing.assert_allclose(gm.means_[order], TRUE_MEANS, atol=0.06)
    expected = TRUE_COVS if cov_type == "full" else np.diagonal(TRUE_COVS, axis1=1, axis2=2)
    np.testing.assert_allclose(gm.covariances_[order], expected, atol=0.1)


# ---------------------------------------------------------------------- prediction
def fitted_and_new_rows(cov_type, seed, n_new):
    """A mixture fitted to data with NaN, and new rows with NaN, the first 3 empty."""
    rng = np.random.default_rng(seed)
    X, _ = sample_mixture(rng, 600)
    gm = GaussianMixture(3, covariance_type=cov_type, random_state=0).fit(mcar(rng, X, 0.2))
    new = mcar(rng, sample_mixture(rng, n_new)[0], 0.4)
    new[:3] = np.nan
    return gm, new


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_predictions_on_rows_with_nan_are_the_marginal_mixture(cov_type):
    gm, test = fitted_and_new_rows(cov_type, 4, 60)
    lj = scipy_log_joint(test, gm.weights_, gm.means_, full_covariances(gm))
    ll = logsumexp(lj, axis=1)
    np.testing.assert_allclose(gm.score_samples(test), ll, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(test), np.exp(lj - ll[:, None]), atol=1e-10)
    np.testing.assert_array_equal(gm.predict(test)[3:], lj.argmax(axis=1)[3:])
    assert gm.score(test) == pytest.approx(ll.mean(), rel=1e-10)
    np.testing.assert_allclose(gm.score_samples(test[:3]), 0.0, atol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(test[:3]), np.tile(gm.weights_, (3, 1)))
    # Criteria use the observed-data log-likelihood and n = number of rows.
    p = gm._n_parameters()
    assert gm.bic(test) == pytest.approx(-2 * ll.sum() + p * np.log(len(test)), rel=1e-10)
    assert gm.aic(test) == pytest.approx(-2 * ll.sum() + 2 * p, rel=1e-10)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_impute_is_the_posterior_weighted_conditional_mean(cov_type):
    gm, test = fitted_and_new_rows(cov_type, 5, 40)
    weights, means, covs = gm.weights_, gm.means_, full_covariances(gm)
    expected = test.copy()
    post = np.exp(
        scipy_log_joint(test, weights, means, covs)
        - logsumexp(scipy_log_joint(test, weights, means, covs), axis=1, keepdims=True)
    )
    for i, x in enumerate(test):
        m, o = np.isnan(x), ~np.isnan(x)
        if not m.any():
            continue
        cond = [
            means[k][m]
            + covs[k][np.ix_(m, o)] @ np.linalg.solve(covs[k][np.ix_(o, o)], x[o] - means[k][o])
            for k in range(3)
        ]
        expected[i, m] = post[i] @ np.array(cond)
    filled = gm.impute(test)
    np.testing.assert_allclose(filled, expected, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(filled[0], weights @ means, rtol=1e-10)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(test)], test[~np.isnan(test)])


# ---------------------------------------------------------------------- options
def test_sample_weights_with_nan_equal_repeated_rows():
    rng = np.random.default_rng(6)
    X = mcar(rng, sample_mixture(rng, 250)[0], 0.25)
    counts = rng.integers(0, 4, len(X))
    start = start_for("full", 0.3)
    weighted = fit(X, 3, "full", init=start, tol=0, max_iter=25, sample_weight=counts)
    repeated = fit(np.repeat(X, counts, axis=0), 3, "full", init=start, tol=0, max_iter=25)
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, rel=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-8)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-8)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_engine_options_work_with_nan(cov_type):
    rng = np.random.default_rng(7)
    X = mcar(rng, sample_mixture(rng, 500)[0], 0.2)
    start = start_for(cov_type)
    one = fit(X, 3, cov_type, init=start, tol=0.0, max_iter=15)
    chunked = fit(X, 3, cov_type, init=start, tol=0.0, max_iter=15, batch_size=37)
    assert chunked.loglik_ == pytest.approx(one.loglik_, rel=1e-12)
    np.testing.assert_allclose(chunked.means_, one.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked.covariances_, one.covariances_, rtol=1e-10, atol=1e-12)
    plain = fit(X, 3, cov_type, init=start, tol=1e-10, max_iter=2000)
    squarem = fit(X, 3, cov_type, init=start, tol=1e-10, max_iter=2000, accel="squarem")
    assert squarem.loglik_ == pytest.approx(plain.loglik_, rel=1e-7)
    restarts = fit(X, 3, cov_type, n_init=3, random_state=0, tol=1e-8, max_iter=500)
    assert restarts.loglik_ >= plain.loglik_ - 1e-6 * abs(plain.loglik_)
    threads = fit(X, 3, cov_type, n_init=3, random_state=0, tol=1e-8, max_iter=500, n_jobs=2)
    assert threads.loglik_ == restarts.loglik_
    online = fit(X, 3, cov_type, init=start, variant="online", batch_size=100, max_iter=30)
    assert online.loglik_ == pytest.approx(plain.loglik_, rel=1e-3)
    check_hard_em_fixed_point(X, cov_type, start)


def check_hard_em_fixed_point(X, cov_type, start):
    """Classification EM's fixed point, checked from outside: every row carries the label
    its joint density (scipy) ranks first, each weight is its label's share, and (but for
    the tied type, whose covariance pools the labels) each component is the maximum
    likelihood one-component fit, NaN included, of the rows it labels."""
    hard = fit(X, 3, cov_type, init=start, variant="hard", tol=1e-14, max_iter=5000)
    labels = np.argmax(scipy_log_joint(X, hard.weights_, hard.means_, full_covariances(hard)), 1)
    np.testing.assert_array_equal(labels, hard.predict(X))
    np.testing.assert_allclose(hard.weights_, np.bincount(labels, minlength=3) / len(X))
    if cov_type == "tied":
        return
    for k in range(3):
        one = fit(X[labels == k], 1, cov_type, tol=1e-12, max_iter=5000)
        np.testing.assert_allclose(hard.means_[k], one.means_[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            full_covariances(hard)[k], full_covariances(one)[0], rtol=1e-5, atol=1e-6
        )


def test_partial_fit_with_nan():
    rng = np.random.default_rng(8)
    X = mcar(rng, sample_mixture(rng, 6000)[0], 0.2)
    gm = GaussianMixture(3, random_state=0, init={"means": TRUE_MEANS + 0.3})
    for chunk in np.array_split(X, 30):
        gm.partial_fit(chunk)
    assert gm.n_iter_ == 30 and np.all(np.isfinite(gm.history_))
    order = [int(np.argmin(np.linalg.norm(gm.means_ - m, axis=1))) for m in TRUE_MEANS]
    np.testing.assert_allclose(gm.means_[order], TRUE_MEANS, atol=0.15)
    with pytest.warns(UserWarning, match="every value missing"):
        GaussianMixture(3, all_missing="drop").partial_fit(np.vstack([[np.nan] * 3, X[:50]]))


def test_float32_with_nan_stays_float32_and_agrees_with_float64():
    rng = np.random.default_rng(9)
    X = mcar(rng, sample_mixture(rng, 2000)[0], 0.2)
    start = start_for("full")
    g64 = fit(X, 3, "full", init=start, tol=0, max_iter=30)
    g32 = fit(X.astype(np.float32), 3, "full", init=start, tol=0, max_iter=30)
    assert g32.means_.dtype == np.float32 and g32.covariances_.dtype == np.float32
    assert g32.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert g32.impute(X.astype(np.float32)).dtype == np.float32
    assert g32.loglik_ == pytest.approx(g64.loglik_, rel=1e-6)
    np.testing.assert_allclose(g32.means_, g64.means_, atol=1e-4)


def test_far_from_origin_data_with_nan_give_the_same_fit():
    rng = np.random.default_rng(10)
    X = mcar(rng, sample_mixture(rng, 500)[0], 0.2)
    start = start_for("full")
    near = fit(X, 3, "full", init=start, tol=0, max_iter=30)
    far = fit(X + 1e6, 3, "full", init={**start, "means": start["means"] + 1e6}, tol=0, max_iter=30)
    np.testing.assert_allclose(far.means_ - 1e6, near.means_, atol=1e-6)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-5)
    assert far.loglik_ == pytest.approx(near.loglik_, rel=1e-8)


# ---------------------------------------------------------------------- bad input
def test_rows_with_every_value_missing_raise_or_are_dropped():
    rng = np.random.default_rng(11)
    X = mcar(rng, sample_mixture(rng, 300)[0], 0.2)
    Xe = np.vstack([X[:10], np.full((2, 3), np.nan), X[10:]])
    with pytest.raises(ValueError, match=r"2 row\(s\) of X have every value missing.*all_missing"):
        GaussianMixture(3).fit(Xe)
    start = start_for("full")
    with pytest.warns(UserWarning, match="dropping them"):
        dropped = fit(Xe, 3, "full", init=start, tol=0, max_iter=10, all_missing="drop")
    kept = fit(X, 3, "full", init=start, tol=0, max_iter=10)
    assert dropped.loglik_ == pytest.approx(kept.loglik_, rel=1e-12)
    np.testing.assert_allclose(dropped.means_, kept.means_, rtol=1e-12)
    with pytest.raises(ValueError, match="all_missing"):
        GaussianMixture(3, all_missing="ignore").fit(X)


@pytest.mark.parametrize(
    ("X", "kwargs", "match"),
    [
        ([[np.nan, 1.0], [np.nan, 2.0], [np.nan, 3.0]], {}, r"column\(s\) \[0\]"),
        ([[np.inf, 1.0], [np.nan, 2.0], [1.0, 3.0]], {}, "infinity"),
        ([[1.0, np.nan], [np.nan, 2.0], [3.0, 1.0]], {"n_components": 2}, "observed values"),
        ([[1.0, np.nan], [np.nan, 2.0], [3.0, 1.0]], {"n_components": 4}, "n_components"),
    ],
)
def test_bad_input_with_nan_raises_clear_errors(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**kwargs).fit(np.array(X))


def test_failed_fit_with_nan_leaves_an_earlier_fit_untouched():
    rng = np.random.default_rng(12)
    X = mcar(rng, sample_mixture(rng, 300)[0], 0.2)
    gm = GaussianMixture(3, random_state=0).fit(X)
    before = {a: np.copy(getattr(gm, a)) for a in gm._fitted_attributes}
    bad = X.copy()
    bad[:, 1] = np.nan
    bad[:, 0] = 1.0
    with pytest.raises(ValueError, match="column"):
        gm.fit(bad)
    for a, v in before.items():
        np.testing.assert_array_equal(getattr(gm, a), v)
