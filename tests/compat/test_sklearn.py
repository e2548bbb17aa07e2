"""emkit.compat.sklearn.GaussianMixture against scikit-learn's, run in the same test."""

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit.compat.sklearn import GaussianMixture

COV_TYPES = ["full", "tied", "diag", "spherical"]
K = 3


@pytest.fixture
def X():
    """Three overlapping, correlated 3-D clusters of unequal sizes."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(150, 3))
    b = rng.normal(size=(100, 3)) * 0.5 + [3.0, 1.0, 0.0]
    c = rng.normal(size=(110, 3)) @ np.array(
        [[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.2]]
    ) + [-2.0, 4.0, 1.0]
    return np.vstack([a, b, c])


def quiet(f, *args, **kwargs):
    """Call ``f`` without the convergence warnings of short runs (both libraries')."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


def start(X, cov_type, seed=0):
    """A start taken from a one-step scikit-learn fit (the same for both libraries)."""
    sk = SkGaussianMixture(
        K, covariance_type=cov_type, max_iter=1, init_params="random_from_data", random_state=seed
    )
    sk = quiet(sk.fit, X)
    return {"weights_init": sk.weights_, "means_init": sk.means_, "precisions_init": sk.precisions_}


def both(**params):
    return SkGaussianMixture(**params), GaussianMixture(**params)


def assert_same_fit(sk, em, rtol=1e-8):
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(em, name), getattr(sk, name), rtol=rtol, atol=rtol)
    assert em.n_iter_ == sk.n_iter_
    assert em.converged_ == sk.converged_
    np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=rtol)
    np.testing.assert_allclose(em.lower_bounds_, sk.lower_bounds_, rtol=rtol)


# ---------------------------------------------------------------------- same fits
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize(("tol", "max_iter"), [(1e-3, 100), (1e-8, 500), (1e-3, 1), (0.0, 4)])
def test_same_fit_from_same_start(X, cov_type, tol, max_iter):
    sk, em = both(
        n_components=K, covariance_type=cov_type, tol=tol, max_iter=max_iter, **start(X, cov_type)
    )
    quiet(sk.fit, X)
    quiet(em.fit, X)
    assert_same_fit(sk, em)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_max_iter_zero_keeps_the_start(X, cov_type):
    # (scikit-learn 1.9 fails at max_iter=0 with precisions_init: it has no covariances_)
    init = start(X, cov_type)
    del init["precisions_init"]
    sk, em = both(n_components=K, covariance_type=cov_type, max_iter=0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither library warns at max_iter=0
        sk.fit(X)
        em.fit(X)
    for name in ("weights_", "means_"):
        np.testing.assert_allclose(getattr(em, name), getattr(sk, name), rtol=1e-10)
    assert (em.n_iter_, em.converged_, em.lower_bound_, em.lower_bounds_) == (
        sk.n_iter_,
        sk.converged_,
        sk.lower_bound_,
        sk.lower_bounds_,
    )


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_predictions_match_on_the_same_parameters(X, cov_type):
    sk, em = both(n_components=K, covariance_type=cov_type, random_state=3, **start(X, cov_type))
    sk.fit(X)
    em.fit(X)
    Y = X[::7] + 0.25
    np.testing.assert_allclose(em.score_samples(Y), sk.score_samples(Y), rtol=1e-10)
    np.testing.assert_allclose(em.predict_proba(Y), sk.predict_proba(Y), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(em.predict(Y), sk.predict(Y))
    np.testing.assert_allclose(em.score(Y), sk.score(Y), rtol=1e-10)
    np.testing.assert_allclose(em.bic(Y), sk.bic(Y), rtol=1e-10)
    np.testing.assert_allclose(em.aic(Y), sk.aic(Y), rtol=1e-10)
    np.testing.assert_array_equal(clone(em).fit_predict(X), clone(sk).fit_predict(X))
    for n in (1, 50):
        Xs, ys = em.sample(n)
        Xr, yr = sk.sample(n)
        np.testing.assert_allclose(Xs, Xr, rtol=1e-10)
        np.testing.assert_array_equal(ys, yr)
        assert Xs.dtype == Xr.dtype and ys.dtype == yr.dtype


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_params_spelling_reaches_sklearn_optimum(init_params):
    # Starts differ between the libraries; on well-separated clusters both find the
    # same maximum.
    rng = np.random.default_rng(1)
    centres = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
    X = np.vstack([rng.normal(c, 1.0, (100, 2)) for c in centres])
    params = dict(
        n_components=3, init_params=init_params, n_init=5, tol=1e-8, max_iter=1000, random_state=0
    )
    sk, em = both(**params)
    sk.fit(X)
    em.fit(X)
    np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=1e-6)
    order_em, order_sk = np.argsort(em.means_[:, 0]), np.argsort(sk.means_[:, 0])
    np.testing.assert_allclose(em.means_[order_em], sk.means_[order_sk], atol=1e-4)


@pytest.mark.parametrize("given", ["weights_init", "means_init"])
def test_partial_start_is_used(X, given):
    # One given array: the fit after zero steps starts from it, as scikit-learn's
    # (scikit-learn 1.9 fails at max_iter=0 with precisions_init alone).
    value = start(X, "diag")[given]
    sk, em = both(n_components=K, covariance_type="diag", max_iter=0, random_state=0)
    sk.set_params(**{given: value})
    em.set_params(**{given: value})
    sk.fit(X)
    em.fit(X)
    name = given.replace("_init", "_")
    np.testing.assert_allclose(getattr(em, name), getattr(sk, name), rtol=1e-12)


# ---------------------------------------------------------------------- attributes
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_attributes_names_shapes_and_dtypes(X, cov_type, dtype):
    X = X.astype(dtype)
    sk, em = both(n_components=K, covariance_type=cov_type, random_state=0)
    sk.fit(X)
    em.fit(X)
    names = [n for n in vars(sk) if n.endswith("_") and not n.startswith("_")]
    names += ["precisions_"]  # a property of emkit's, an attribute of scikit-learn's
    for name in names:
        mine, theirs = getattr(em, name), getattr(sk, name)
        if isinstance(theirs, np.ndarray):
            assert isinstance(mine, np.ndarray), name
            assert (mine.shape, mine.dtype) == (theirs.shape, theirs.dtype), name
        elif isinstance(theirs, list):
            assert type(mine) is list and len(mine) == em.n_iter_, name
        else:
            assert isinstance(mine, type(theirs)) or np.isscalar(mine), name
    assert em.means_.dtype == dtype


def test_float32_fit_matches_sklearn_float32(X):
    X = X.astype(np.float32)
    init = start(X.astype(np.float64), "full")
    sk, em = both(n_components=K, tol=1e-4, **init)
    sk.fit(X)
    em.fit(X)
    np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=1e-4)


def test_feature_names_as_sklearn(X):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    sk, em = both(n_components=2, random_state=0)
    sk.fit(df)
    em.fit(df)
    np.testing.assert_array_equal(em.feature_names_in_, sk.feature_names_in_)
    with pytest.warns(UserWarning, match="feature names"):
        em.predict(X)


# ---------------------------------------------------------------------- parameters
def test_signature_and_defaults_are_sklearns():
    assert inspect.signature(GaussianMixture) == inspect.signature(SkGaussianMixture)
    assert GaussianMixture().get_params() == SkGaussianMixture().get_params()


def test_clone_round_trip(X):
    em = GaussianMixture(
        n_components=2, covariance_type="tied", init_params="k-means++", random_state=4
    )
    copy = clone(em)
    assert copy is not em and copy.get_params() == em.get_params()
    assert not hasattr(copy, "means_")
    em.fit(X)
    copy.fit(X)
    np.testing.assert_array_equal(copy.means_, em.means_)
    copy.set_params(n_components=3, tol=1e-5)
    assert (copy.n_components, copy.tol) == (3, 1e-5)


def test_engine_receives_sklearn_options(X):
    # tol, max_iter, n_init, random_state and verbose reach emkit's engine.
    assert set(GaussianMixture._engine_options) == {
        "tol",
        "max_iter",
        "n_init",
        "random_state",
        "verbose",
    }


# ---------------------------------------------------------------------- bad input
def _bad_cases():
    good = np.random.default_rng(0).normal(size=(20, 2))
    nan, inf = good.copy(), good.copy()
    nan[3, 1], inf[5, 0] = np.nan, np.inf
    p_full = np.stack([np.eye(2)] * 2)
    return [
        ("n_components > n_samples", {"n_components": 30}, good),
        ("n_components = 0", {"n_components": 0}, good),
        ("negative reg_covar", {"reg_covar": -1e-3}, good),
        ("negative tol", {"tol": -1.0}, good),
        ("bad covariance_type", {"covariance_type": "ful"}, good),
        ("bad init_params", {"init_params": "kmeans+"}, good),
        ("n_init = 0", {"n_init": 0}, good),
        ("max_iter float", {"max_iter": 1.5}, good),
        ("verbose_interval 0", {"verbose_interval": 0}, good),
        ("weights_init shape", {"n_components": 2, "weights_init": [1.0]}, good),
        ("weights_init sum", {"n_components": 2, "weights_init": [0.5, 0.6]}, good),
        ("weights_init negative", {"n_components": 2, "weights_init": [-0.5, 1.5]}, good),
        ("means_init shape", {"n_components": 2, "means_init": np.zeros((2, 3))}, good),
        ("precisions_init shape", {"n_components": 2, "precisions_init": p_full[:, :1]}, good),
        ("precisions_init not PD", {"n_components": 2, "precisions_init": -p_full}, good),
        (
            "diag precisions_init not positive",
            {"n_components": 2, "covariance_type": "diag", "precisions_init": -np.ones((2, 2))},
            good,
        ),
        (
            "tied precisions_init shape",
            {"n_components": 2, "covariance_type": "tied", "precisions_init": p_full},
            good,
        ),
        ("1-D X", {}, good[:, 0]),
        ("one sample", {}, good[:1]),
        ("NaN in X", {}, nan),
        ("inf in X", {}, inf),
        ("empty X", {}, np.empty((0, 2))),
        ("strings in X", {}, np.array([["a", "b"]] * 3)),
    ]


@pytest.mark.parametrize(("case", "params", "data"), _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_input_raises_sklearns_exception(case, params, data):
    sk, em = both(**params)
    with pytest.raises(Exception) as theirs:
        sk.fit(data)
    with pytest.raises(Exception) as mine:
        em.fit(data)
    assert type(mine.value) is type(theirs.value), (mine.value, theirs.value)


def test_failed_fit_keeps_the_previous_fit(X):
    em = GaussianMixture(n_components=2, random_state=0).fit(X)
    means, n_features = em.means_.copy(), em.n_features_in_
    with pytest.raises(ValueError):
        em.set_params(means_init=np.zeros((2, 4))).fit(np.ones((40, 5)))
    np.testing.assert_array_equal(em.means_, means)
    assert em.n_features_in_ == n_features
    em.predict(X)  # still usable


def test_predict_checks_features_as_sklearn(X):
    sk, em = both(n_components=2, random_state=0)
    sk.fit(X)
    em.fit(X)
    for method in ("predict", "predict_proba", "score_samples", "score"):
        with pytest.raises(ValueError) as theirs:
            getattr(sk, method)(X[:, :2])
        with pytest.raises(ValueError) as mine:
            getattr(em, method)(X[:, :2])
        assert type(mine.value) is type(theirs.value)
    with pytest.raises(ValueError):
        em.sample(0)


def test_unfitted_raises_sklearns_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianMixture().predict(np.zeros((3, 2)))


# ---------------------------------------------------------------------- warm start
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_warm_start_continues_as_sklearn(X, cov_type):
    params = dict(n_components=K, covariance_type=cov_type, warm_start=True, max_iter=3, n_init=4)
    sk, em = both(**params, **start(X, cov_type))
    for _ in range(6):  # short runs, each from the last, until both converge
        quiet(sk.fit, X)
        quiet(em.fit, X)
        assert_same_fit(sk, em)
    assert em.converged_
    # Converged: the next fit stops after one step, its change measured from the last fit.
    quiet(sk.fit, X)
    quiet(em.fit, X)
    assert_same_fit(sk, em)
    assert em.n_iter_ == 1 and em.converged_


def test_warm_start_false_starts_again(X):
    em = GaussianMixture(n_components=K, max_iter=2, **start(X, "full"))
    first = quiet(em.fit, X).means_.copy()
    np.testing.assert_array_equal(quiet(em.fit, X).means_, first)


# ---------------------------------------------------------------------- scikit-learn checks
@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(n_components=2, covariance_type="diag", init_params="k-means++"),
        GaussianMixture(n_components=2, covariance_type="tied", warm_start=True),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_no_emkit_only_methods():
    em = GaussianMixture()
    for name in ("partial_fit", "impute", "icl"):
        assert not hasattr(em, name)


def test_import_emkit_does_not_import_compat():
    code = "import sys, emkit; print('emkit.compat.sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_save_and_load(tmp_path, X):
    import emkit

    em = GaussianMixture(n_components=2, random_state=0).fit(X)
    em.save(tmp_path / "gm")
    back = emkit.load(tmp_path / "gm")
    assert type(back) is GaussianMixture
    np.testing.assert_array_equal(back.predict_proba(X), em.predict_proba(X))
    assert back.lower_bound_ == em.lower_bound_


@pytest.mark.parametrize("max_iter", [1, 2, 100])
def test_convergence_warning_when_sklearn_warns(X, max_iter):
    # emkit's ConvergenceWarning is not (yet) a subclass of scikit-learn's.
    from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning

    from emkit import ConvergenceWarning

    sk, em = both(n_components=K, max_iter=max_iter, tol=1e-4, **start(X, "full"))
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        sk.fit(X)
    with warnings.catch_warnings(record=True) as mine:
        warnings.simplefilter("always")
        em.fit(X)
    sk_warned = any(issubclass(w.category, SkConvergenceWarning) for w in theirs)
    assert sk_warned == any(issubclass(w.category, ConvergenceWarning) for w in mine)
    assert sk_warned == (not sk.converged_)


def test_emkit_convergence_warning_is_caught_by_scikit_learn_filters():
    import warnings

    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    import emkit

    assert issubclass(emkit.ConvergenceWarning, SklearnConvergenceWarning)
    X = np.random.default_rng(0).normal(size=(100, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SklearnConvergenceWarning)
        with pytest.raises(SklearnConvergenceWarning):
            emkit.GaussianMixture(2, max_iter=1, tol=0.0, random_state=0).fit(X)
