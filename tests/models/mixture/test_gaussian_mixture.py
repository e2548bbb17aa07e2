"""GaussianMixture: agreement with scikit-learn and scipy.stats, EM properties, bad input."""

import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emkit
from emkit import GaussianMixture
from emkit.distributions.covariance import get_structure
from emkit.exceptions import ConvergenceWarning, DegenerateComponentWarning

COV_TYPES = ["full", "diag", "tied", "spherical"]


def mixture_data(rng, n=600, shift=0.0):
    """Three overlapping, correlated 3-D clusters of unequal sizes."""
    a = rng.normal(size=(n // 2, 3))
    b = rng.normal(size=(n // 3, 3)) * 0.5 + [3.0, 1.0, 0.0]
    c = rng.normal(size=(n - n // 2 - n // 3, 3)) @ np.array(
        [[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.2]]
    ) + [-2.0, 4.0, 1.0]
    return np.vstack([a, b, c]) + shift


def sk_start(X, cov_type, K=3, seed=0):
    """Starting parameters taken from a one-step scikit-learn fit (an independent start)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkGaussianMixture(
            K,
            covariance_type=cov_type,
            max_iter=1,
            init_params="random_from_data",
            random_state=seed,
        ).fit(X)
    return {"weights": sk.weights_, "means": sk.means_, "covariances": sk.covariances_}


def sk_fit_from(X, start, cov_type, max_iter):
    prec = (
        np.linalg.inv(start["covariances"])
        if cov_type in ("full", "tied")
        else 1.0 / start["covariances"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SkGaussianMixture(
            len(start["weights"]),
            covariance_type=cov_type,
            max_iter=max_iter,
            tol=0.0,
            weights_init=start["weights"],
            means_init=start["means"],
            precisions_init=prec,
        ).fit(X)


def em_fit_from(X, start, cov_type, max_iter, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(
            len(start["weights"]),
            covariance_type=cov_type,
            max_iter=max_iter,
            tol=0.0,
            init=start,
            check_monotone="raise",
            **kw,
        ).fit(X)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_same_answer_as_sklearn_from_identical_start(cov_type):
    X = mixture_data(np.random.default_rng(0))
    start = sk_start(X, cov_type)
    for max_iter in (1, 7, 60):
        ours = em_fit_from(X, start, cov_type, max_iter)
        ref = sk_fit_from(X, start, cov_type, max_iter)
        ref_ll = ref.score(X) * len(X)
        assert ours.loglik_ == pytest.approx(ref_ll, rel=1e-8)
        assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-8)
        np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)
        assert ours.n_iter_ <= max_iter


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_criteria_match_sklearn(cov_type):
    X = mixture_data(np.random.default_rng(1))
    start = sk_start(X, cov_type)
    ours = em_fit_from(X, start, cov_type, 20)
    ref = sk_fit_from(X, start, cov_type, 20)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-8)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=1e-8)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def naive_log_joint(X, gm):
    """log w_k + log N(x | m_k, C_k) point by point with scipy.stats."""
    K, D = gm.means_.shape
    full = get_structure(gm.covariance_type).to_full(gm.covariances_, K, D)
    return np.column_stack(
        [
            np.log(gm.weights_[k]) + stats.multivariate_normal(gm.means_[k], full[k]).logpdf(X)
            for k in range(K)
        ]
    )


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_densities_and_one_em_step_match_naive_scipy(cov_type):
    rng = np.random.default_rng(2)
    X = mixture_data(rng, n=240)
    start = sk_start(X, cov_type, seed=3)
    gm0 = em_fit_from(X, start, cov_type, 0)
    lj = naive_log_joint(X, gm0)
    np.testing.assert_allclose(gm0.score_samples(X), logsumexp(lj, axis=1), rtol=1e-10)
    assert gm0.loglik_ == pytest.approx(logsumexp(lj, axis=1).sum(), rel=1e-10)
    # One EM step written out naively: responsibilities, weighted moments, per component.
    resp = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
    nk = resp.sum(0)
    means = resp.T @ X / nk[:, None]
    scatters = np.stack(
        [(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) / nk[k] for k in range(3)]
    )
    reg = 1e-6 * np.eye(3)
    expected_cov = {
        "full": scatters + reg,
        "tied": np.einsum("k,kij->ij", nk, scatters) / nk.sum() + reg,
        "diag": np.diagonal(scatters, axis1=1, axis2=2) + 1e-6,
        "spherical": np.diagonal(scatters, axis1=1, axis2=2).mean(1) + 1e-6,
    }[cov_type]
    gm1 = em_fit_from(X, start, cov_type, 1)
    np.testing.assert_allclose(gm1.weights_, nk / len(X), rtol=1e-10)
    np.testing.assert_allclose(gm1.means_, means, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm1.covariances_, expected_cov, rtol=1e-8)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_loglik_never_decreases(cov_type):
    for seed in range(12):
        rng = np.random.default_rng(seed)
        X = mixture_data(rng, n=150 + 37 * seed) * rng.uniform(0.1, 10)
        gm = GaussianMixture(
            2 + seed % 4,
            covariance_type=cov_type,
            tol=0.0,
            max_iter=40,
            init=["kmeans++", "random", "random_from_data", "kmeans"][seed % 4],
            random_state=seed,
            check_monotone="raise",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", DegenerateComponentWarning)
            gm.fit(X)
        h = gm.history_
        assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])), seed
        assert h[-1] == pytest.approx(gm.loglik_)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_batch_size_gives_the_same_fit(cov_type):
    X = mixture_data(np.random.default_rng(4))
    start = sk_start(X, cov_type)
    one = em_fit_from(X, start, cov_type, 15)
    chunked = em_fit_from(X, start, cov_type, 15, batch_size=37)
    assert chunked.loglik_ == pytest.approx(one.loglik_, rel=1e-12)
    np.testing.assert_allclose(chunked.means_, one.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked.covariances_, one.covariances_, rtol=1e-10, atol=1e-12)


def test_recovers_parameters_of_a_known_mixture():
    rng = np.random.default_rng(5)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    covs = np.array(
        [[[1.0, 0.6], [0.6, 1.0]], [[0.5, 0.0], [0.0, 2.0]], [[1.5, -0.4], [-0.4, 0.8]]]
    )
    labels = rng.choice(3, size=30000, p=weights)
    X = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in labels])
    gm = GaussianMixture(3, random_state=0, tol=1e-6, n_init=2).fit(X)
    order = [int(np.argmin(np.linalg.norm(gm.means_ - m, axis=1))) for m in means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(gm.weights_[order], weights, atol=0.015)
    np.testing.assert_allclose(gm.means_[order], means, atol=0.06)
    np.testing.assert_allclose(gm.covariances_[order], covs, atol=0.1)


def test_integer_weights_equal_repeated_rows_and_zero_weights_equal_removal():
    rng = np.random.default_rng(6)
    X = mixture_data(rng, n=200)
    w = rng.integers(0, 4, size=len(X))
    start = sk_start(X, "full")
    weighted = GaussianMixture(3, tol=0, max_iter=25, init=start).fit(X, sample_weight=w)
    repeated = GaussianMixture(3, tol=0, max_iter=25, init=start).fit(np.repeat(X, w, axis=0))
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, rel=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-8)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-8)
    # default initialisation too: k-means++ draws depend on the weighted point set only
    a = GaussianMixture(3, random_state=1).fit(X, sample_weight=w)
    b = GaussianMixture(3, random_state=1).fit(np.repeat(X, w, axis=0)[::-1])
    np.testing.assert_allclose(np.sort(a.means_, 0), np.sort(b.means_, 0), rtol=1e-7)


def test_float32_stays_float32_and_agrees_with_float64():
    X = mixture_data(np.random.default_rng(7), n=2000)
    start = sk_start(X, "full")
    g64 = em_fit_from(X, start, "full", 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g32 = GaussianMixture(3, max_iter=30, tol=0, init=start).fit(X.astype(np.float32))
    assert g32.means_.dtype == np.float32 and g32.covariances_.dtype == np.float32
    assert g32.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert g32.loglik_ == pytest.approx(g64.loglik_, rel=1e-5)
    np.testing.assert_allclose(g32.means_, g64.means_, atol=1e-3)


def test_max_iter_counts_steps_and_warm_start_continues():
    X = mixture_data(np.random.default_rng(8))
    start = sk_start(X, "full")
    ten = em_fit_from(X, start, "full", 10)
    assert ten.n_iter_ == 10 and len(ten.history_) == 10 and not ten.converged_
    gm = GaussianMixture(3, max_iter=4, tol=0, init=start, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
        gm.set_params(max_iter=6).fit(X)
    assert gm.loglik_ == pytest.approx(ten.loglik_, rel=1e-12)
    np.testing.assert_allclose(gm.means_, ten.means_, rtol=1e-10)


def test_far_from_origin_data_give_the_same_fit():
    X = mixture_data(np.random.default_rng(9))
    for cov_type in COV_TYPES:
        start = sk_start(X, cov_type)
        near = em_fit_from(X, start, cov_type, 30)
        far_start = {**start, "means": start["means"] + 1e6}
        far = em_fit_from(X + 1e6, far_start, cov_type, 30)
        np.testing.assert_allclose(far.means_ - 1e6, near.means_, atol=1e-6)
        np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-5)
        assert far.loglik_ == pytest.approx(near.loglik_, rel=1e-8)


def test_restarts_keep_the_best_and_are_reproducible():
    X = mixture_data(np.random.default_rng(10))
    # Restart 0 of n_init=5 is the n_init=1 run with the same seed, so keeping the best
    # can only do as well or better.
    single = GaussianMixture(4, init="random", random_state=3).fit(X)
    best = GaussianMixture(4, init="random", n_init=5, random_state=3).fit(X)
    again = GaussianMixture(4, init="random", n_init=5, random_state=3).fit(X)
    assert best.loglik_ == again.loglik_
    np.testing.assert_array_equal(best.means_, again.means_)
    assert best.loglik_ >= single.loglik_


def test_predict_methods_are_consistent():
    X = mixture_data(np.random.default_rng(11))
    gm = GaussianMixture(3, random_state=0).fit(X)
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(gm.predict(X), proba.argmax(1))
    np.testing.assert_array_equal(GaussianMixture(3, random_state=0).fit_predict(X), gm.predict(X))
    assert gm.score(X) == pytest.approx(gm.loglik_ / len(X), rel=1e-10)
    # ICL-BIC: the classification log-likelihood of the MAP labels (Biernacki et al. 2000)
    hard = -np.sum(np.log(proba[np.arange(len(X)), proba.argmax(1)]))
    assert gm.icl(X) == pytest.approx(gm.bic(X) + 2 * hard)
    assert gm.icl(X) >= gm.bic(X)


def test_sample_follows_the_mixture():
    gm = GaussianMixture(
        2,
        random_state=0,
        init={
            "weights": [0.25, 0.75],
            "means": [[0.0, 0.0], [10.0, 10.0]],
            "covariances": [[[1.0, 0.5], [0.5, 1.0]], [[2.0, 0.0], [0.0, 0.5]]],
        },
        max_iter=0,
    ).fit(np.array([[0.0, 0.0], [10.0, 10.0], [0.5, 0.0]]))
    Xs, labels = gm.sample(40000)
    assert abs(np.mean(labels == 0) - 0.25) < 0.01
    np.testing.assert_allclose(np.cov(Xs[labels == 0].T), [[1.0, 0.5], [0.5, 1.0]], atol=0.05)
    np.testing.assert_allclose(Xs[labels == 1].mean(0), [10.0, 10.0], atol=0.03)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_empty_component_is_reseeded_not_nan(cov_type):
    rng = np.random.default_rng(12)
    X = np.vstack([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6])
    start = {
        "weights": [0.4, 0.4, 0.2],
        "means": [[0.0, 0.0], [6.0, 6.0], [1e4, 1e4]],  # the third one explains nothing
    }
    gm = GaussianMixture(3, covariance_type=cov_type, init=start, max_iter=30, random_state=0)
    with pytest.warns(DegenerateComponentWarning, match="component 2"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(X)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(gm, attr)))
    assert np.all(gm.weights_ > 0.01)


def test_singular_covariances_without_regularisation_are_handled():
    # Points on a line: every full covariance is singular unless reg_covar > 0.
    t = np.linspace(0, 1, 60)
    X = np.column_stack([t, 2 * t])
    with pytest.raises(ValueError, match="reg_covar"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)
    gm = GaussianMixture(2, reg_covar=1e-6, random_state=0).fit(X)
    assert np.all(np.isfinite(gm.covariances_))


@pytest.mark.parametrize(
    ("X", "kwargs", "match"),
    [
        (np.array([[np.nan, np.nan], [1.0, 2.0], [3.0, 4.0]]), {}, "every value missing"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), {}, "infinity"),
        (np.arange(5.0), {}, "2D"),
        (np.empty((0, 3)), {}, "0 sample"),
        (np.ones((3, 2)), {"n_components": 4}, "n_components"),
        (np.ones((3, 2)), {"covariance_type": "banded"}, "covariance_type"),
        (np.ones((3, 2)), {"init": "spectral"}, "init"),
        (np.ones((3, 2)), {"n_components": 0}, "n_components"),
        (np.ones((3, 2)), {"reg_covar": -1.0}, "reg_covar"),
        (np.ones((3, 2)), {"tol": -1.0}, "tol"),
        (np.ones((3, 2)), {"n_init": 0}, "n_init"),
        (np.ones((3, 2)), {"n_components": 2, "init": {"means": np.zeros((3, 2))}}, "shape"),
        (np.ones((3, 2)), {"n_components": 2, "init": {"weights": [0.5, 0.6]}}, "sum to 1"),
        (
            np.ones((3, 2)),
            {"n_components": 2, "init": {"covariances": np.zeros((2, 2, 2))}},
            "positive definite",
        ),
        (
            np.ones((3, 2)),
            {"n_components": 1, "init": {"covariances": [[[1.0, 2.0], [2.0, 1.0]]]}},
            "positive definite",
        ),
        (
            np.ones((3, 2)),
            {"n_components": 1, "init": {"covariances": [[[1.0, 0.5], [0.0, 1.0]]]}},
            "symmetric",
        ),
        (np.ones((3, 2)), {"init": {"centres": 1}}, "unknown keys"),
    ],
)
def test_bad_input_raises_clear_errors(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**kwargs).fit(X)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([1.0, -1.0, 1.0], "non-negative"),
        ([1.0, np.nan, 1.0], "NaN"),
        ([1.0, 1.0], "shape"),
        ([0.0, 0.0, 0.0], "zero"),
    ],
)
def test_bad_sample_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture().fit(np.arange(6.0).reshape(3, 2), sample_weight=weights)


def test_failed_fit_leaves_an_earlier_fit_untouched():
    X = mixture_data(np.random.default_rng(13))
    gm = GaussianMixture(3, random_state=0).fit(X)
    before = {a: np.copy(getattr(gm, a)) for a in gm._fitted_attributes}
    for bad in (X[:, :2] * np.nan, X[:2]):
        with pytest.raises(ValueError):
            gm.fit(bad)
    with pytest.raises(ValueError):
        gm.set_params(init={"means": np.zeros((2, 2))}).fit(X)
    for a, v in before.items():
        np.testing.assert_array_equal(getattr(gm, a), v)
    with pytest.raises(ValueError, match="features"):
        gm.predict(X[:, :2])
    with pytest.raises(emkit.NotFittedError):
        GaussianMixture().predict(X)


def test_engine_options_reach_the_estimator(capsys):
    X = mixture_data(np.random.default_rng(14), n=300)
    GaussianMixture(2, random_state=0, verbose=2, progress=True).fit(X)
    out = capsys.readouterr()
    assert "iteration" in out.out and "loglik" in out.out


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_float32_is_accurate_on_tight_far_apart_clusters(cov_type):
    # Raw moments in float32 would cancel catastrophically here (spread / sigma = 3e4).
    rng = np.random.default_rng(15)
    X = np.vstack([rng.normal(0, 1, (3000, 2)), rng.normal(300, 0.01, (3000, 2))])
    g64 = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(X)
    g32 = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(X.astype(np.float32))
    assert g32.loglik_ == pytest.approx(g64.loglik_, rel=1e-4)
    np.testing.assert_allclose(g32.covariances_, g64.covariances_, rtol=1e-3, atol=1e-6)


@pytest.mark.slow
def test_old_faithful_matches_mclust_published_fit():
    """R mclust's choice for Old Faithful is EEE (tied) with 3 components:
    log-likelihood -1126.326, df 11, BIC -2314.316 in mclust's sign (Scrucca et al.
    2016, The R Journal 8(1), "mclust 5"). mclust stops at a relative tolerance of
    1e-5, so a tight fit may only be higher, and by little."""
    from emkit.datasets import load_faithful

    X, _ = load_faithful()
    gm = GaussianMixture(
        3,
        covariance_type="tied",
        n_init=10,
        tol=1e-10,
        max_iter=2000,
        reg_covar=0.0,
        random_state=0,
    ).fit(X)
    assert -1126.326 <= gm.loglik_ <= -1126.326 + 0.02
    assert gm._n_parameters() == 11
    assert gm.bic(X) == pytest.approx(2314.316, abs=0.05)
    candidates = [
        GaussianMixture(
            k, covariance_type=c, n_init=5, tol=1e-8, max_iter=1000, random_state=0
        ).fit(X)
        for k in (1, 2, 3, 4)
        for c in ("full", "tied", "diag", "spherical")
    ]
    best = min(candidates, key=lambda g: g.bic(X))
    assert (best.n_components, best.covariance_type) == (3, "tied")


@pytest.mark.parametrize("cov_type", ["full", "diag", "tied", "spherical"])
def test_scikit_learn_start_keywords_give_scikit_learns_fit(cov_type):
    from sklearn.mixture import GaussianMixture as SklearnGM

    rng = np.random.default_rng(40)
    X = np.vstack([rng.normal(-2, 1, (150, 2)), rng.normal(2, 0.7, (150, 2))])
    K, D = 2, 2
    weights = np.array([0.3, 0.7])
    means = np.array([[-1.0, -1.5], [1.0, 2.5]])
    cov = np.cov(X, rowvar=False)
    precisions = {
        "full": np.stack([np.linalg.inv(cov)] * K),
        "tied": np.linalg.inv(cov),
        "diag": np.tile(1.0 / np.diag(cov), (K, 1)),
        "spherical": np.full(K, 1.0 / np.mean(np.diag(cov))),
    }[cov_type]
    start = {"weights_init": weights, "means_init": means, "precisions_init": precisions}
    ours = GaussianMixture(K, covariance_type=cov_type, tol=0.0, max_iter=5, **start).fit(X)
    theirs = SklearnGM(K, covariance_type=cov_type, tol=0.0, max_iter=5, **start).fit(X)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-10)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-10)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-10)
    # and the keywords are the same start as an init dict
    st_cov = get_structure(cov_type).covariances_from_precisions(precisions, K, D)
    as_dict = GaussianMixture(
        K,
        covariance_type=cov_type,
        tol=0.0,
        max_iter=5,
        init={"weights": weights, "means": means, "covariances": st_cov},
    ).fit(X)
    np.testing.assert_array_equal(ours.means_, as_dict.means_)
    with pytest.raises(ValueError, match="given twice"):
        GaussianMixture(K, init={"means": means}, weights_init=weights).fit(X)
    with pytest.raises(ValueError, match="precisions must have shape"):
        GaussianMixture(K, covariance_type=cov_type, precisions_init=np.ones(7)).fit(X)
