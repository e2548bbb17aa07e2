"""FactorAnalysis / FactorAnalysisModel: factor analysis and PPCA by EM, NaN allowed.

Expected values come from independent sources: scikit-learn's FactorAnalysis (its own
SVD-based EM) on complete data, Tipping & Bishop's closed-form PPCA solution from
NumPy's eigendecomposition of the sample covariance, a direct SciPy maximisation of
the observed-data likelihood with missing values, SciPy's multivariate normal
density, the conditional-normal formula for E[z | x_o] with a plain linear solve,
and known parameters of simulated data.
"""

import warnings

import numpy as np
import pytest
from scipy import optimize, stats

import emkit
from emkit.exceptions import NotFittedError
from emkit.models.latent.factor_analysis import FactorAnalysis
from emkit.models.latent.factor_model import FactorAnalysisModel

sklearn_decomposition = pytest.importorskip("sklearn.decomposition")

LOADINGS = np.array(
    [[1.0, 0.0], [0.8, 0.5], [0.6, -0.7], [0.0, 1.2], [-0.5, 0.4], [0.9, 0.9], [0.3, -1.0]]
)  # (D, K) = (7, 2)
PSI = np.array([0.3, 0.5, 0.4, 0.2, 0.6, 0.35, 0.45])
MEAN = np.array([1.0, -2.0, 0.5, 3.0, 0.0, -1.0, 2.0])
COV = LOADINGS @ LOADINGS.T + np.diag(PSI)


def _sample(n, seed, missing=0.0, W=LOADINGS, psi=PSI, mean=MEAN):
    rng = np.random.default_rng(seed)
    X = (
        mean
        + rng.normal(size=(n, W.shape[1])) @ W.T
        + rng.normal(size=(n, len(psi))) * np.sqrt(psi)
    )
    if missing:
        X[rng.random(X.shape) < missing] = np.nan
        empty = np.isnan(X).all(axis=1)
        X[empty, 0] = mean[0]
    return X


def _observed_loglik_rows(X, mean, cov):
    """SciPy log-density of each row's observed block (grouped by pattern)."""
    out = np.zeros(len(X))
    missing = np.isnan(X)
    for pattern in np.unique(missing, axis=0):
        rows = (missing == pattern).all(axis=1)
        o = ~pattern
        if o.any():
            mvn = stats.multivariate_normal(mean[o], cov[np.ix_(o, o)])
            out[rows] = np.atleast_1d(mvn.logpdf(X[np.ix_(rows, o)]))
    return out


def _cov(fa):
    return fa.components_.T @ fa.components_ + np.diag(fa.noise_variance_)


# ---------------------------------------------------------------------- exactness
def _complete_case():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(6, 2))
    psi = rng.uniform(0.3, 1.0, 6)
    return _sample(500, 1, W=W, psi=psi, mean=np.full(6, 3.0))


def test_complete_data_matches_scikit_learn():
    X = _complete_case()
    sk = sklearn_decomposition.FactorAnalysis(2, tol=1e-12, max_iter=100000).fit(X)
    fa = FactorAnalysis(2, tol=1e-14, max_iter=10000, accel="squarem", check_monotone="raise")
    fa.fit(X)
    assert fa.converged_
    assert fa.loglik_ == pytest.approx(sk.score(X) * len(X), rel=1e-10)
    assert fa.score(X) == pytest.approx(sk.score(X), rel=1e-10)
    np.testing.assert_allclose(fa.score_samples(X), sk.score_samples(X), rtol=1e-6)
    np.testing.assert_allclose(fa.noise_variance_, sk.noise_variance_, rtol=1e-5)
    np.testing.assert_allclose(fa.get_covariance(), sk.get_covariance(), atol=1e-6)
    np.testing.assert_allclose(fa.get_precision(), sk.get_precision(), atol=1e-5)
    # With complete data the MLE of the mean is the sample mean.
    np.testing.assert_allclose(fa.mean_, X.mean(axis=0), rtol=1e-12)
    # The reported log-likelihood is SciPy's at the reported parameters.
    expected = stats.multivariate_normal(fa.mean_, _cov(fa)).logpdf(X).sum()
    assert fa.loglik_ == pytest.approx(expected, rel=1e-12)
    # Plain EM (no acceleration) reaches the same maximum.
    plain = FactorAnalysis(2, tol=1e-12, max_iter=10000, check_monotone="raise").fit(X)
    assert plain.loglik_ == pytest.approx(sk.score(X) * len(X), rel=1e-10)
    np.testing.assert_allclose(plain.get_covariance(), sk.get_covariance(), atol=1e-4)


def test_transform_matches_scikit_learn_up_to_rotation():
    X = _complete_case()
    sk = sklearn_decomposition.FactorAnalysis(1, tol=1e-12, max_iter=100000).fit(X)
    fa = FactorAnalysis(1, tol=1e-14, accel="squarem").fit(X)
    a, b = fa.transform(X)[:, 0], sk.transform(X)[:, 0]
    sign = np.sign(a @ b)
    np.testing.assert_allclose(a, sign * b, atol=1e-5)
    np.testing.assert_allclose(fa.components_, sign * sk.components_, atol=1e-5)

    # Two factors: ours = scikit-learn's times an orthogonal matrix (W is identifiable
    # only up to rotation, and so are the factors).
    sk = sklearn_decomposition.FactorAnalysis(2, tol=1e-12, max_iter=100000).fit(X)
    fa = FactorAnalysis(2, tol=1e-14, accel="squarem").fit(X)
    T_sk, T = sk.transform(X), fa.transform(X)
    Q, *_ = np.linalg.lstsq(T_sk, T, rcond=None)
    np.testing.assert_allclose(Q.T @ Q, np.eye(2), atol=1e-5)
    np.testing.assert_allclose(T_sk @ Q, T, atol=1e-5)
    np.testing.assert_allclose(sk.components_.T @ Q, fa.components_.T, atol=1e-5)
    np.testing.assert_allclose(fa.fit_transform(X), T, atol=1e-6)
    assert list(fa.get_feature_names_out()) == ["factoranalysis0", "factoranalysis1"]


def test_ppca_is_tipping_bishop_closed_form():
    X = _sample(400, 2)
    S = np.cov(X.T, bias=True)
    vals, vecs = np.linalg.eigh(S)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    K = 2
    sigma2 = vals[K:].mean()
    WWt = vecs[:, :K] @ np.diag(vals[:K] - sigma2) @ vecs[:, :K].T
    cov = WWt + sigma2 * np.eye(7)
    expected = stats.multivariate_normal(X.mean(axis=0), cov).logpdf(X).sum()
    # From random loadings: EM has to find the principal subspace by itself.
    fa = FactorAnalysis(
        K, noise="isotropic", init="random", random_state=0, tol=1e-15, accel="squarem"
    ).fit(X)
    assert fa.converged_ and fa.history_[0] < expected - 1.0
    assert fa.loglik_ == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(fa.noise_variance_, np.full(7, sigma2), rtol=1e-6)
    np.testing.assert_allclose(fa.components_.T @ fa.components_, WWt, atol=1e-6)
    np.testing.assert_allclose(fa.get_covariance(), cov, atol=1e-6)
    # The principal-axes rotation makes the rows of components_ the scaled eigenvectors.
    expected_rows = (vecs[:, :K] * np.sqrt(vals[:K] - sigma2)).T
    signs = np.sign(np.sum(fa.components_ * expected_rows, axis=1))
    np.testing.assert_allclose(fa.components_, signs[:, None] * expected_rows, atol=1e-5)


def _direct_mle(X, noise):
    """Maximise the observed-data likelihood of a one-factor model with BFGS over
    (mean, loadings, log noise variances), with plain Cholesky densities per pattern."""
    D = X.shape[1]
    missing = np.isnan(X)
    groups = [(~p, X[(missing == p).all(axis=1)][:, ~p]) for p in np.unique(missing, axis=0)]

    def unpack(theta):
        psi = np.broadcast_to(np.exp(theta[2 * D :]), (D,))
        return theta[:D], np.outer(theta[D : 2 * D], theta[D : 2 * D]) + np.diag(psi), psi

    def nll(theta):
        mean, cov, _ = unpack(theta)
        total = 0.0
        for o, Z in groups:
            L = np.linalg.cholesky(cov[np.ix_(o, o)])
            r = np.linalg.solve(L, (Z - mean[o]).T)
            logdet = 2 * np.log(np.diag(L)).sum()
            total += 0.5 * (Z.size * np.log(2 * np.pi) + len(Z) * logdet + np.sum(r * r))
        return total

    sd = np.nanstd(X, axis=0)
    log_psi = np.log(0.5 * sd**2) if noise == "diag" else [np.log(0.5 * np.mean(sd**2))]
    theta0 = np.concatenate([np.nanmean(X, axis=0), 0.5 * sd, log_psi])
    res = optimize.minimize(nll, theta0, method="BFGS", options={"gtol": 1e-8, "maxiter": 5000})
    return (*unpack(res.x), -res.fun)


@pytest.mark.parametrize("noise", ["diag", "isotropic"])
def test_missing_values_match_direct_maximisation(noise):
    W = np.array([[1.0], [0.8], [-0.6], [0.7]])
    psi = np.array([0.4, 0.3, 0.5, 0.6])
    X = _sample(150, 3, missing=0.25, W=W, psi=psi, mean=np.array([1.0, 0.0, -1.0, 2.0]))
    assert len(np.unique(np.isnan(X), axis=0)) >= 8
    mean, cov, psi_hat, best = _direct_mle(X, noise)
    fa = FactorAnalysis(1, noise=noise, tol=1e-14, max_iter=20000, accel="squarem").fit(X)
    assert fa.converged_
    assert fa.loglik_ == pytest.approx(best, rel=1e-9)  # measured: ~1e-14
    assert fa.loglik_ >= best - 1e-9 * abs(best)
    np.testing.assert_allclose(fa.mean_, mean, atol=1e-4)
    np.testing.assert_allclose(fa.get_covariance(), cov, atol=1e-4)
    np.testing.assert_allclose(fa.noise_variance_, psi_hat, atol=1e-4)
    # The reported log-likelihood is SciPy's observed-data one at the reported parameters.
    assert fa.loglik_ == pytest.approx(
        _observed_loglik_rows(X, fa.mean_, _cov(fa)).sum(), rel=1e-12
    )


def test_loglik_never_decreases():
    X = _sample(200, 4, missing=0.2)
    for noise in ("diag", "isotropic"):
        fa = FactorAnalysis(
            2, noise=noise, init="random", random_state=1, tol=1e-9, check_monotone="raise"
        ).fit(X)
        assert fa.converged_ and fa.n_iter_ > 10
        assert np.all(np.diff(fa.history_) >= -1e-10 * abs(fa.loglik_))
        assert fa.history_[-1] == fa.loglik_


def test_statistics_are_additive_and_loglik_is_observed_data():
    X = _sample(90, 5, missing=0.3)
    X[7] = np.nan  # a row with nothing observed contributes nothing
    w = np.random.default_rng(5).uniform(0.5, 2.0, len(X))
    model = FactorAnalysisModel(2)
    params = model.init_params((X, w), np.random.default_rng(0))
    whole, ll = model.estep(params, (X, w))
    # Any split: three random parts, each with its own mix of patterns.
    part = np.random.default_rng(6).integers(0, 3, len(X))
    pieces = [model.estep(params, (X[part == k], w[part == k])) for k in range(3)]
    for j, full in enumerate(whole):
        summed = sum(stats[j] for stats, _ in pieces)
        np.testing.assert_allclose(full, summed, rtol=1e-12, atol=1e-12)
    assert ll == pytest.approx(sum(piece_ll for _, piece_ll in pieces), rel=1e-12)
    cov = params.components.T @ params.components + np.diag(params.noise_variance)
    expected = w @ _observed_loglik_rows(X, params.mean, cov)
    assert ll == pytest.approx(expected, rel=1e-10)
    # Counts: the summed weights of the rows that observe each coordinate.
    np.testing.assert_allclose(whole.n, w @ ~np.isnan(X))


def test_batch_size_and_weights():
    X = _sample(150, 6, missing=0.2)
    a = FactorAnalysis(2, tol=1e-8).fit(X)
    b = FactorAnalysis(2, tol=1e-8, batch_size=16).fit(X)
    assert b.n_iter_ == a.n_iter_
    np.testing.assert_allclose(b.get_covariance(), a.get_covariance(), rtol=1e-9, atol=1e-12)

    counts = np.random.default_rng(6).integers(1, 4, len(X))
    weighted = FactorAnalysis(2, tol=1e-12, accel="squarem").fit(X, sample_weight=counts)
    repeated = FactorAnalysis(2, tol=1e-12, accel="squarem").fit(np.repeat(X, counts, axis=0))
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, rel=1e-9)
    np.testing.assert_allclose(weighted.get_covariance(), repeated.get_covariance(), atol=1e-5)


def test_squarem_reaches_the_same_mle_in_fewer_esteps():
    X = _sample(300, 7, missing=0.3)
    model = FactorAnalysisModel(2)
    plain = emkit.em(model, (X, None), tol=1e-11, max_iter=20000, check_monotone="raise")
    fast = emkit.em(
        model, (X, None), tol=1e-11, max_iter=20000, accel="squarem", check_monotone="raise"
    )
    assert plain.converged and fast.converged
    assert fast.loglik == pytest.approx(plain.loglik, rel=1e-9)
    assert fast.n_estep < 0.5 * plain.n_estep


def test_restarts_keep_the_best_and_verbose_reports(capsys):
    X = _sample(100, 14, missing=0.1)
    one = FactorAnalysis(2, init="random", random_state=0, tol=1e-6).fit(X)
    three = FactorAnalysis(2, init="random", n_init=3, random_state=0, tol=1e-6, verbose=2)
    three.fit(X)
    # The first restart is the same run as the single one; the best of three is no worse.
    assert three.loglik_ >= one.loglik_ - 1e-9 * abs(one.loglik_)
    out = capsys.readouterr().out
    assert "iteration" in out and "FactorAnalysis: K=2 diag" in out


# ---------------------------------------------------------------------- recovery
@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_recovers_the_covariance_as_n_grows(missing):
    errors = {}
    for n in (300, 10000):
        X = _sample(n, 8, missing=missing)
        fa = FactorAnalysis(2, tol=1e-8, accel="squarem").fit(X)
        errors[n] = (np.abs(fa.get_covariance() - COV).max(), np.abs(fa.mean_ - MEAN).max())
    assert errors[10000][0] < errors[300][0] and errors[10000][1] < errors[300][1]
    assert errors[10000][0] < 0.06 and errors[10000][1] < 0.04
    np.testing.assert_allclose(fa.noise_variance_, PSI, atol=0.05)


# ---------------------------------------------------------------------- using the fit
def test_transform_and_score_with_missing_values():
    X = _sample(200, 9, missing=0.25)
    fa = FactorAnalysis(2, tol=1e-10).fit(X)
    W, mean, cov = fa.components_.T, fa.mean_, _cov(fa)
    rows = X[:40]
    Z = fa.transform(rows)
    for x, z in zip(rows, Z):
        o = ~np.isnan(x)
        # E[z | x_o] = W_o^T C_oo^-1 (x_o - mean_o), by a plain solve.
        expected = W[o].T @ np.linalg.solve(cov[np.ix_(o, o)], x[o] - mean[o])
        np.testing.assert_allclose(z, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fa.score_samples(X), _observed_loglik_rows(X, mean, cov), rtol=1e-10)
    assert fa.score(X) == pytest.approx(fa.loglik_ / len(X), rel=1e-12)
    nothing = np.full((1, 7), np.nan)
    np.testing.assert_array_equal(fa.transform(nothing), np.zeros((1, 2)))
    assert fa.score_samples(nothing)[0] == 0.0
    np.testing.assert_allclose(fa.get_precision(), np.linalg.inv(cov), rtol=1e-9, atol=1e-12)


def test_sample_follows_the_model():
    fa = FactorAnalysis(2, tol=1e-8).fit(_sample(300, 10))
    X, Z = fa.sample(20000, random_state=0)
    assert X.shape == (20000, 7) and Z.shape == (20000, 2)
    np.testing.assert_allclose(X.mean(axis=0), fa.mean_, atol=0.05)
    np.testing.assert_allclose(np.cov(X.T), fa.get_covariance(), atol=0.06)
    np.testing.assert_allclose(np.cov(Z.T), np.eye(2), atol=0.04)
    np.testing.assert_array_equal(fa.sample(5, random_state=3)[0], fa.sample(5, random_state=3)[0])


def test_init_dict_is_used():
    X = _sample(150, 11, missing=0.2)
    ref = FactorAnalysis(2, tol=1e-12, accel="squarem").fit(X)
    start = FactorAnalysis(
        2,
        tol=1e-10,
        init={
            "mean": ref.mean_,
            "components": ref.components_,
            "noise_variance": ref.noise_variance_,
        },
    ).fit(X)
    assert start.n_iter_ <= 2
    np.testing.assert_allclose(start.get_covariance(), ref.get_covariance(), atol=1e-6)
    np.testing.assert_allclose(start.mean_, ref.mean_, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        FactorAnalysis(2, init={"components": np.zeros((3, 7))}).fit(X)
    with pytest.raises(ValueError, match="positive"):
        FactorAnalysis(2, init={"noise_variance": -np.ones(7)}).fit(X)
    with pytest.raises(ValueError, match="unknown keys"):
        FactorAnalysis(2, init={"loadings": np.zeros((2, 7))}).fit(X)
    with pytest.raises(ValueError, match="equal entries"):
        FactorAnalysis(2, noise="isotropic", init={"noise_variance": PSI}).fit(X)


# ---------------------------------------------------------------------- bad input
def test_bad_inputs_give_clear_errors():
    X = _sample(40, 12, missing=0.1)
    bad = X.copy()
    bad[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"column\(s\) \[1\]"):
        FactorAnalysis(2).fit(bad)
    bad = X.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        FactorAnalysis(2).fit(bad)
    with pytest.raises(ValueError, match="n_components = 8 is larger than n_features = 7"):
        FactorAnalysis(8).fit(X)
    with pytest.raises(ValueError, match="fewer than the 27 parameters"):
        FactorAnalysis(2).fit(X[:3])
    bad = X.copy()
    bad[[5, 9]] = np.nan
    with pytest.raises(ValueError, match=r"every value missing \(rows \[5, 9\]\)"):
        FactorAnalysis(2).fit(bad)
    with pytest.raises(ValueError, match="constant"):
        FactorAnalysis(2).fit(np.column_stack([X, np.ones(len(X))]))
    with pytest.raises(ValueError, match="noise"):
        FactorAnalysis(2, noise="full").fit(X)
    with pytest.raises(ValueError, match="init"):
        FactorAnalysis(2, init="kmeans").fit(X)
    with pytest.raises(TypeError, match="n_components"):
        FactorAnalysis(2.5).fit(X)
    with pytest.raises(ValueError, match="2D"):
        FactorAnalysis(1).fit(X[:, 0])
    with pytest.raises(NotFittedError):
        FactorAnalysis(2).transform(X)
    fa = FactorAnalysis(2, tol=1e-4).fit(X)
    with pytest.raises(ValueError, match="7 features"):
        fa.transform(X[:, :4])
    bad = X[:1].copy()
    bad[0, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        fa.score_samples(bad)


def test_failed_fit_leaves_earlier_fit_and_save_round_trips(tmp_path):
    X = _sample(120, 13, missing=0.2)
    fa = FactorAnalysis(2, noise="isotropic", tol=1e-8).fit(X)
    before = {k: np.copy(getattr(fa, k)) for k in FactorAnalysis._fitted_attributes}
    bad = X.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError):
        fa.fit(bad)
    with pytest.raises(ValueError):
        fa.set_params(n_components=9).fit(X)
    fa.set_params(n_components=2)
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(fa, key), value)

    path = tmp_path / "fa.npz"
    fa.save(path)
    back = emkit.load(path)
    assert isinstance(back, FactorAnalysis)
    assert back.get_params() == fa.get_params()
    for key in (*FactorAnalysis._fitted_attributes, "fit_time_"):
        np.testing.assert_array_equal(getattr(back, key), getattr(fa, key))
    np.testing.assert_array_equal(back.transform(X), fa.transform(X))
    np.testing.assert_array_equal(back.score_samples(X), fa.score_samples(X))


def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    # A looser tol than the default: the checks fit structureless uniform noise, where
    # factor-analysis EM creeps towards a Heywood case (a noise variance going to 0).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(FactorAnalysis(tol=1e-4))
