"""GaussianImputer / MVNMissingModel: EM for a multivariate normal with missing values.

Expected values come from independent sources: NumPy's sample moments, SciPy's
multivariate normal density, a direct SciPy maximisation of the observed-data
likelihood, the conditional-normal formulas written out per row, and known
parameters of simulated data.
"""

import warnings

import numpy as np
import pytest
from scipy import optimize, stats

import emkit
from emkit.exceptions import NotFittedError
from emkit.models.latent.imputer import GaussianImputer
from emkit.models.latent.mvn import MVNMissingModel

MEAN = np.array([1.0, -2.0, 0.5])
COV = np.array([[1.0, 0.7, 0.3], [0.7, 2.0, -0.4], [0.3, -0.4, 1.5]])
PATTERNS = np.array(
    [
        [False, False, False],
        [True, False, False],
        [False, True, False],
        [False, False, True],
        [True, True, False],
        [False, True, True],
    ]
)


def _with_patterns(n, seed, mean=MEAN, cov=COV):
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal(mean, cov, size=n)
    X[PATTERNS[rng.integers(0, len(PATTERNS), n)]] = np.nan
    return X


def _observed_loglik(X, mean, cov):
    """Sum over rows of the SciPy log-density of the observed block."""
    total = 0.0
    for row in X:
        o = ~np.isnan(row)
        if o.any():
            total += stats.multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(row[o])
    return float(total)


def _conditional(row, mean, cov):
    """Conditional mean and covariance of the missing block, by plain linear solves."""
    m = np.isnan(row)
    o = ~m
    gain = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T
    mu = mean[m] + gain @ (row[o] - mean[o])
    C = cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]
    return mu, C


# ---------------------------------------------------------------------- exactness
def test_complete_data_is_sample_moments_after_one_step():
    X = np.random.default_rng(0).multivariate_normal(MEAN, COV, size=80)
    result = emkit.em(MVNMissingModel(), (X, None), max_iter=1, check_monotone="raise")
    np.testing.assert_allclose(result.params.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.params.covariance, np.cov(X.T, bias=True), rtol=1e-10)
    expected = stats.multivariate_normal(X.mean(axis=0), np.cov(X.T, bias=True)).logpdf(X).sum()
    assert result.loglik == pytest.approx(expected, rel=1e-12)

    imp = GaussianImputer().fit(X)
    assert imp.converged_ and imp.n_iter_ <= 3
    np.testing.assert_allclose(imp.mean_, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(imp.covariance_, np.cov(X.T, bias=True), rtol=1e-10)
    assert imp.loglik_ == pytest.approx(expected, rel=1e-12)
    assert imp.score(X) == pytest.approx(expected / len(X), rel=1e-12)
    np.testing.assert_allclose(
        imp.score_samples(X), stats.multivariate_normal(imp.mean_, imp.covariance_).logpdf(X)
    )


def _direct_mle(X):
    """Maximise the observed-data likelihood with BFGS over (mean, Cholesky, log-diagonal)."""
    D = X.shape[1]
    rows, cols = np.tril_indices(D)
    diag = rows == cols
    groups = {}
    for row in X:
        groups.setdefault(tuple(np.isnan(row)), []).append(row)
    groups = [(~np.array(k), np.array(v)) for k, v in groups.items()]

    def unpack(theta):
        vals = theta[D:].copy()
        vals[diag] = np.exp(vals[diag])
        L = np.zeros((D, D))
        L[rows, cols] = vals
        return theta[:D], L @ L.T

    def nll(theta):
        mean, cov = unpack(theta)
        return -sum(
            stats.multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(Z[:, o]).sum()
            for o, Z in groups
        )

    L0 = np.diag(np.nanstd(X, axis=0))
    theta0 = np.concatenate(
        [np.nanmean(X, axis=0), np.where(diag, np.log(L0[rows, cols] + (~diag)), 0)]
    )
    res = optimize.minimize(nll, theta0, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    mean, cov = unpack(res.x)
    return mean, cov, -res.fun


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_direct_maximisation_of_observed_likelihood(seed):
    X = _with_patterns(60, seed)
    assert len(np.unique(np.isnan(X), axis=0)) >= 5
    mean, cov, best = _direct_mle(X)
    imp = GaussianImputer(tol=1e-13, check_monotone="raise").fit(X)
    # measured: 1e-13 relative on the likelihood, 1e-6 on the parameters (the BFGS
    # optimiser's own precision); each bound keeps a 100x margin
    assert imp.loglik_ == pytest.approx(best, rel=1e-11)
    assert imp.loglik_ >= best - 1e-11 * abs(best)
    # The reported log-likelihood is the observed-data one at the reported parameters.
    assert imp.loglik_ == pytest.approx(_observed_loglik(X, imp.mean_, imp.covariance_), rel=1e-10)
    np.testing.assert_allclose(imp.mean_, mean, atol=1e-4)
    np.testing.assert_allclose(imp.covariance_, cov, atol=1e-4)


def test_four_variables_match_direct_maximisation():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(4, 4))
    cov4 = A @ A.T + np.eye(4)
    X = rng.multivariate_normal(np.arange(4.0), cov4, size=60)
    X[rng.random((60, 4)) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    mean, cov, best = _direct_mle(X)
    imp = GaussianImputer(tol=1e-13).fit(X)
    assert imp.loglik_ == pytest.approx(best, rel=1e-11)
    np.testing.assert_allclose(imp.mean_, mean, atol=1e-4)
    np.testing.assert_allclose(imp.covariance_, cov, atol=1e-4)


def test_loglik_never_decreases():
    X = _with_patterns(200, 3)
    for init in ("observed", "pairwise"):
        imp = GaussianImputer(check_monotone="raise", init=init).fit(X)
        assert imp.converged_ and imp.n_iter_ > 3
        assert np.all(np.diff(imp.history_) >= -1e-10 * abs(imp.loglik_))
        assert imp.history_[-1] == imp.loglik_


def test_statistics_are_additive():
    X = _with_patterns(90, 4)
    w = np.random.default_rng(4).uniform(0.5, 2.0, len(X))
    model = MVNMissingModel()
    params = model.init_params((X, w), np.random.default_rng(0))
    params = params._replace(covariance=params.covariance + 0.3)  # correlated
    whole, ll = model.estep(params, (X, w))
    a, lla = model.estep(params, (X[:37], w[:37]))
    b, llb = model.estep(params, (X[37:], w[37:]))
    for full, left, right in zip(whole, a, b):
        np.testing.assert_allclose(full, left + right, rtol=1e-12, atol=1e-12)
    assert ll == pytest.approx(lla + llb, rel=1e-12)
    expected = sum(
        wi * _observed_loglik(row[None], params.mean, params.covariance) for wi, row in zip(w, X)
    )
    assert ll == pytest.approx(expected, rel=1e-10)


def test_integer_weights_equal_repeated_rows():
    X = _with_patterns(50, 6)
    counts = np.random.default_rng(6).integers(1, 4, len(X))
    weighted = GaussianImputer(tol=1e-12).fit(X, sample_weight=counts)
    repeated = GaussianImputer(tol=1e-12).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.mean_, repeated.mean_, atol=1e-7)
    np.testing.assert_allclose(weighted.covariance_, repeated.covariance_, atol=1e-7)
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, rel=1e-9)


# ---------------------------------------------------------------------- recovery
def _errors(imp):
    return np.abs(imp.mean_ - MEAN).max(), np.abs(imp.covariance_ - COV).max()


def test_recovers_parameters_mcar():
    errs = {}
    for n in (500, 20000):
        X = _with_patterns(n, 7)
        errs[n] = _errors(GaussianImputer().fit(X))
    assert errs[20000][0] < errs[500][0] and errs[20000][1] < errs[500][1]
    assert errs[20000][0] < 0.04 and errs[20000][1] < 0.08


def _mar(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal(MEAN, COV, size=n)
    # x1 is missing more often when the (always observed) x0 is large: MAR, not MCAR.
    p = 1.0 / (1.0 + np.exp(-3.0 * (X[:, 0] - MEAN[0])))
    X[rng.random(n) < p, 1] = np.nan
    X[rng.random(n) < 0.2, 2] = np.nan
    return X


def test_recovers_parameters_mar_where_complete_cases_are_biased():
    errs = {}
    for n in (500, 20000):
        X = _mar(n, 8)
        imp = GaussianImputer(accel="squarem").fit(X)
        errs[n] = _errors(imp)
    assert errs[20000][0] < errs[500][0] and errs[20000][1] < errs[500][1]
    assert errs[20000][0] < 0.04 and errs[20000][1] < 0.08
    complete = X[~np.isnan(X).any(axis=1)]
    # E[x1 | kept] is pulled down (x0 low, corr > 0): a large bias that EM removes.
    assert abs(complete[:, 1].mean() - MEAN[1]) > 0.3
    assert abs(imp.mean_[1] - MEAN[1]) < 0.04


# ---------------------------------------------------------------------- imputation
def test_transform_fills_only_missing_with_conditional_means():
    X = _with_patterns(120, 9)
    imp = GaussianImputer().fit(X)
    Xt = imp.transform(X)
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(Xt[observed], X[observed])
    assert not np.isnan(Xt).any()
    for row, filled in zip(X, Xt):
        if np.isnan(row).any():
            mu, _ = _conditional(row, imp.mean_, imp.covariance_)
            np.testing.assert_allclose(filled[np.isnan(row)], mu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(imp.fit_transform(X), Xt)
    # a row with nothing observed gets the mean; it scores 0
    np.testing.assert_allclose(imp.transform(np.full((1, 3), np.nan))[0], imp.mean_)
    assert imp.score_samples(np.full((1, 3), np.nan))[0] == 0.0
    np.testing.assert_allclose(
        imp.score_samples(X),
        [_observed_loglik(row[None], imp.mean_, imp.covariance_) for row in X],
    )


def test_sample_imputations_follow_the_conditional_normal():
    imp = GaussianImputer().fit(_with_patterns(300, 10))
    rows = np.array([[0.3, np.nan, np.nan], [np.nan, -1.0, np.nan], [1.0, 2.0, 3.0]])
    draws = imp.sample_imputations(rows, 20000, random_state=0)
    assert draws.shape == (20000, 3, 3)
    np.testing.assert_array_equal(draws[:, 2], np.broadcast_to(rows[2], (20000, 3)))
    for i in (0, 1):
        m = np.isnan(rows[i])
        np.testing.assert_array_equal(draws[:, i, ~m], np.broadcast_to(rows[i, ~m], (20000, 1)))
        mu, C = _conditional(rows[i], imp.mean_, imp.covariance_)
        sample = draws[:, i][:, m]
        se = np.sqrt(np.diag(C) / 20000)
        assert np.all(np.abs(sample.mean(axis=0) - mu) < 5 * se)
        np.testing.assert_allclose(np.cov(sample.T), C, rtol=0.05, atol=0.02)
    again = imp.sample_imputations(rows, 5, random_state=0)
    np.testing.assert_array_equal(again, imp.sample_imputations(rows, 5, random_state=0))


# ---------------------------------------------------------------------- engine options
def test_batch_size_gives_the_same_fit():
    X = _with_patterns(150, 11)
    a = GaussianImputer(tol=1e-12).fit(X)
    b = GaussianImputer(tol=1e-12, batch_size=16).fit(X)
    np.testing.assert_allclose(b.mean_, a.mean_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.covariance_, a.covariance_, rtol=1e-10, atol=1e-12)
    assert b.n_iter_ == a.n_iter_


def test_squarem_reaches_the_same_mle_in_fewer_esteps():
    rng = np.random.default_rng(12)
    cov = np.array([[1.0, 0.95, 0.9], [0.95, 1.0, 0.95], [0.9, 0.95, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, size=300)
    X[rng.random((300, 3)) < 0.6] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    model = MVNMissingModel()
    plain = emkit.em(model, (X, None), tol=1e-12, max_iter=5000, check_monotone="raise")
    fast = emkit.em(
        model, (X, None), tol=1e-12, max_iter=5000, accel="squarem", check_monotone="raise"
    )
    assert plain.converged and fast.converged
    assert fast.loglik == pytest.approx(plain.loglik, rel=1e-9)
    np.testing.assert_allclose(fast.params.covariance, plain.params.covariance, atol=1e-4)
    assert fast.n_estep < 0.6 * plain.n_estep
    imp = GaussianImputer(accel="squarem", tol=1e-12).fit(X)
    assert imp.loglik_ == pytest.approx(plain.loglik, rel=1e-9)


def test_init_dict_is_used():
    X = _with_patterns(100, 13)
    ref = GaussianImputer(tol=1e-12).fit(X)
    start = GaussianImputer(tol=1e-12, init={"mean": ref.mean_, "covariance": ref.covariance_}).fit(
        X
    )
    assert start.n_iter_ <= 2
    np.testing.assert_allclose(start.mean_, ref.mean_, atol=1e-6)
    with pytest.raises(ValueError, match="positive definite"):
        GaussianImputer(init={"covariance": -np.eye(3)}).fit(X)
    with pytest.raises(ValueError, match="shape"):
        GaussianImputer(init={"mean": np.zeros(2)}).fit(X)
    with pytest.raises(ValueError, match="unknown keys"):
        GaussianImputer(init={"means": np.zeros(3)}).fit(X)


# ---------------------------------------------------------------------- bad input
def test_bad_inputs_give_clear_errors():
    X = _with_patterns(40, 14)
    bad = X.copy()
    bad[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"column\(s\) \[1\]"):
        GaussianImputer().fit(bad)
    bad = X.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianImputer().fit(bad)
    with pytest.raises(ValueError, match="2D"):
        GaussianImputer().fit(X[:, 0])
    complete = np.random.default_rng(14).normal(size=(4, 3))
    complete[[0, 1], [0, 2]] = np.nan
    with pytest.raises(ValueError, match="4 observed values, fewer than the 9 parameters"):
        GaussianImputer(reg_covar=0.1).fit(complete[:2])
    with pytest.raises(ValueError, match="more rows than features"):
        GaussianImputer().fit(np.random.default_rng(14).normal(size=(3, 3)))
    bad = X.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match=r"every value missing.*rows \[5\]"):
        GaussianImputer().fit(bad)
    with pytest.warns(UserWarning, match="dropping"):
        dropped = GaussianImputer(all_missing="drop", tol=1e-12).fit(bad)
    kept = GaussianImputer(tol=1e-12).fit(np.delete(bad, 5, axis=0))
    np.testing.assert_allclose(dropped.mean_, kept.mean_)
    with pytest.raises(ValueError, match="all_missing"):
        GaussianImputer(all_missing="ignore").fit(X)
    with pytest.raises(ValueError, match="constant"):
        GaussianImputer().fit(np.column_stack([X, np.ones(len(X))]))
    imp = GaussianImputer().fit(X)
    with pytest.raises(ValueError, match="3 features"):
        imp.transform(X[:, :2])
    with pytest.raises(ValueError, match="infinity"):
        imp.transform(np.array([[np.inf, 0.0, 0.0]]))
    with pytest.raises(NotFittedError):
        GaussianImputer().transform(X)


def test_failed_fit_leaves_earlier_fit(tmp_path):
    X = _with_patterns(80, 15)
    imp = GaussianImputer().fit(X)
    before = (imp.mean_.copy(), imp.covariance_.copy(), imp.loglik_, imp.n_iter_)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError):
        imp.fit(bad)
    np.testing.assert_array_equal(imp.mean_, before[0])
    np.testing.assert_array_equal(imp.covariance_, before[1])
    assert (imp.loglik_, imp.n_iter_) == before[2:]

    path = tmp_path / "imputer.npz"
    imp.save(path)
    back = emkit.load(path)
    assert isinstance(back, GaussianImputer)
    np.testing.assert_array_equal(back.mean_, imp.mean_)
    np.testing.assert_array_equal(back.covariance_, imp.covariance_)
    np.testing.assert_array_equal(back.transform(X), imp.transform(X))
    assert back.get_params() == imp.get_params()


def test_sklearn_pipeline_and_tags():
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(16)
    X = rng.multivariate_normal(MEAN, COV, size=200)
    y = X @ np.array([1.0, -1.0, 2.0]) + 0.1 * rng.normal(size=200)
    X[rng.random(X.shape) < 0.15] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    pipe = make_pipeline(GaussianImputer(), LinearRegression()).fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (200,) and np.all(np.isfinite(pred))
    assert np.corrcoef(pred, y)[0, 1] > 0.9
    imp = pipe.steps[0][1]
    assert list(imp.get_feature_names_out()) == ["x0", "x1", "x2"]
    assert list(imp.get_feature_names_out(["a", "b", "c"])) == ["a", "b", "c"]
    tags = GaussianImputer().__sklearn_tags__()
    assert tags.input_tags.allow_nan and tags.transformer_tags is not None
    assert tags.estimator_type is None


def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(
            GaussianImputer(),
            expected_failed_checks={
                # 30 features and 27 rows with positive weight: the MLE covariance is
                # singular, which fit refuses (with reg_covar=0) by design.
                "check_sample_weight_equivalence_on_dense_data": "n_samples <= n_features",
            },
        )
