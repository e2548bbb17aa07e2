"""VariationalGaussianMixture: against scikit-learn's BayesianGaussianMixture from the same
start, and the properties every model must have (monotone ELBO, additive statistics,
recovery, persistence, bad input)."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import emkit
from emkit import VariationalGaussianMixture
from emkit.distributions.covariance import get_structure
from emkit.models.mixture.variational_model import VariationalGaussianMixtureModel, VBPrior

sklearn_mixture = pytest.importorskip("sklearn.mixture")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

# fits run for a fixed number of steps (tol=0) to compare paths
pytestmark = pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")

COV_TYPES = ["full", "diag", "tied", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
TRUE_MEANS = np.array([[-4.0, 0.0, 1.0], [3.0, 2.0, -1.0], [0.0, 6.0, 3.0]])


class _SameStart(sklearn_mixture.BayesianGaussianMixture):
    """scikit-learn's estimator started from given responsibilities (``resp0``) through
    its own ``_initialize``, the step every one of its init methods ends with."""

    def _initialize_parameters(self, X, random_state, xp=None):
        self._initialize(X, self.resp0)


def _clusters(rng, n=(150, 100, 80), offset=0.0, scale=1.0):
    sds = (1.0, 0.5, 0.8)
    X = np.vstack([rng.normal(m, s, (k, 3)) for m, s, k in zip(TRUE_MEANS, sds, n)])
    return offset + scale * X


def _random_resp(rng, n, k):
    resp = rng.uniform(size=(n, k))
    return resp / resp.sum(axis=1, keepdims=True)


def _sklearn_fit(X, resp, **kw):
    sk = _SameStart(**kw)
    sk.resp0 = resp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its ConvergenceWarning at a fixed max_iter
        sk.fit(X)
    return sk


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("cov", COV_TYPES)
def test_elbo_path_and_fit_match_scikit_learn_from_the_same_start(cov, prior_type):
    rng = np.random.default_rng(1)
    X = _clusters(rng, offset=10.0)
    resp = _random_resp(rng, len(X), 5)
    kw = dict(n_components=5, covariance_type=cov, weight_concentration_prior_type=prior_type)
    vb = VariationalGaussianMixture(
        **kw, init={"resp": resp}, max_iter=40, tol=0.0, check_monotone="raise"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        vb.fit(X)
    assert vb.n_iter_ >= 10
    sk = _sklearn_fit(X, resp, **kw, max_iter=vb.n_iter_, tol=0.0)
    reference = np.ravel(sk.lower_bounds_)
    assert len(reference) == vb.n_iter_
    np.testing.assert_allclose(vb.history_, reference, rtol=1e-11, atol=0)
    assert vb.elbo_ == pytest.approx(float(np.ravel(sk.lower_bound_)[0]), rel=1e-11)
    for name in (
        "weights_",
        "means_",
        "covariances_",
        "precisions_",
        "precisions_cholesky_",
        "mean_precision_",
        "degrees_of_freedom_",
        "weight_concentration_",
    ):
        np.testing.assert_allclose(
            getattr(vb, name), np.asarray(getattr(sk, name)), rtol=1e-9, atol=1e-11
        )
    np.testing.assert_allclose(vb.predict_proba(X), sk.predict_proba(X), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(vb.predict(X), sk.predict(X))
    np.testing.assert_allclose(vb.mean_prior_, sk.mean_prior_, rtol=1e-13)
    np.testing.assert_allclose(vb.covariance_prior_, sk.covariance_prior_, rtol=1e-12)
    assert vb.degrees_of_freedom_prior_ == sk.degrees_of_freedom_prior_
    assert vb.weight_concentration_prior_ == pytest.approx(sk.weight_concentration_prior_)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_given_priors_match_scikit_learn(cov):
    rng = np.random.default_rng(2)
    X = _clusters(rng)
    resp = _random_resp(rng, len(X), 4)
    D = X.shape[1]
    c0 = {"full": np.diag([2.0, 1.0, 0.5]) + 0.1, "tied": np.diag([2.0, 1.0, 0.5]) + 0.1}
    c0.update(diag=np.array([2.0, 1.0, 0.5]), spherical=0.7)
    kw = dict(
        n_components=4,
        covariance_type=cov,
        weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=2.5,
        mean_precision_prior=0.3,
        mean_prior=np.array([1.0, -1.0, 0.5]),
        degrees_of_freedom_prior=D + 1.5,
        covariance_prior=c0[cov],
    )
    vb = VariationalGaussianMixture(**kw, init={"resp": resp}, max_iter=15, tol=0.0).fit(X)
    sk = _sklearn_fit(X, resp, **kw, max_iter=vb.n_iter_, tol=0.0)
    np.testing.assert_allclose(vb.history_, np.ravel(sk.lower_bounds_), rtol=1e-11)
    np.testing.assert_allclose(vb.covariances_, sk.covariances_, rtol=1e-9)


def test_the_dirichlet_process_empties_surplus_components_and_recovers_the_clusters():
    rng = np.random.default_rng(3)
    X = _clusters(rng, n=(300, 250, 200))
    resp = _random_resp(rng, len(X), 10)
    vb = VariationalGaussianMixture(
        n_components=10, init={"resp": resp}, max_iter=500, tol=1e-8, check_monotone="raise"
    ).fit(X)
    active = vb.weights_ > 1e-2
    assert active.sum() == 3
    assert vb.weights_[~active].sum() < 1e-2
    # the same data and start in scikit-learn empty the same components
    sk = _sklearn_fit(X, resp, n_components=10, max_iter=vb.n_iter_, tol=0.0)
    np.testing.assert_array_equal(active, sk.weights_ > 1e-2)
    # recovery: each true mean is found (up to the order of the components)
    found = vb.means_[active]
    for mean in TRUE_MEANS:
        assert np.min(np.linalg.norm(found - mean, axis=1)) < 0.2
    np.testing.assert_allclose(
        np.sort(vb.weights_[active]), np.sort([200, 250, 300]) / 750, atol=0.02
    )


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_the_elbo_never_decreases(cov, prior_type):
    rng = np.random.default_rng(4)
    X = _clusters(rng)
    vb = VariationalGaussianMixture(
        n_components=6,
        covariance_type=cov,
        weight_concentration_prior_type=prior_type,
        init="kmeans++",
        n_init=2,
        max_iter=200,
        tol=1e-10,
        random_state=0,
        check_monotone="raise",
    ).fit(X)
    assert vb.objective_name_ == "elbo"
    steps = np.diff(vb.history_)
    assert np.all(steps >= -1e-9 * np.abs(vb.history_[1:]))
    assert vb.elbo_ == vb.history_[-1]


def _prior(cov, X, K):
    st = get_structure(cov)
    c0 = st.from_full(np.cov(X.T)[None])
    return VBPrior(1.0 / K, 1.0, X.mean(axis=0), float(X.shape[1]), c0 if st.shared else c0[0])


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_statistics_add_up_over_any_split_of_the_data(cov, prior_type):
    rng = np.random.default_rng(5)
    X = _clusters(rng)
    model = VariationalGaussianMixtureModel(4, cov, _prior(cov, X, 4), prior_type)
    params = model.params_from_responsibilities(X, None, _random_resp(rng, len(X), 4))
    whole, value = model.estep(params, (X, None))
    assert value == 0.0  # the bound is in log_prior: see the model's docstring
    cut = rng.permutation(len(X))
    parts = [model.estep(params, (X[idx], None))[0] for idx in np.array_split(cut, 3)]
    for name, total in whole._asdict().items():
        summed = sum(np.asarray(getattr(p, name)) for p in parts)
        np.testing.assert_allclose(summed, total, rtol=1e-10, atol=1e-9)
    # weights: a row of weight 2 counts as the row twice
    w = np.ones(len(X))
    w[:10] = 2.0
    doubled = np.vstack([X, X[:10]])
    a = model.estep(params, (X, w))[0]
    b = model.estep(params, (doubled, None))[0]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-9)


def test_chunked_e_steps_give_the_same_fit():
    rng = np.random.default_rng(6)
    X = _clusters(rng)
    kw = dict(n_components=4, covariance_type="full", random_state=0, max_iter=30, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        one = VariationalGaussianMixture(**kw).fit(X)
        chunked = VariationalGaussianMixture(**kw, batch_size=47).fit(X)
    np.testing.assert_allclose(chunked.history_, one.history_, rtol=1e-11)
    np.testing.assert_allclose(chunked.means_, one.means_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_exact_far_from_the_origin(cov):
    # tight clusters 1e7 from the origin: the fit is the same as at the origin, shifted
    rng = np.random.default_rng(7)
    offset = np.array([1e7, -3e7, 5e6])
    X = (_clusters(rng, scale=1e-2) + offset) - offset  # exactly representable both ways
    resp = _random_resp(rng, len(X), 3)
    kw = dict(n_components=3, covariance_type=cov, init={"resp": resp}, max_iter=20, tol=0.0)
    # the same prior mean in both coordinates (the default, the data's mean, is itself
    # only known to the spacing of float64 numbers at 3e7, about 4e-9)
    near = VariationalGaussianMixture(**kw, mean_prior=np.zeros(3)).fit(X)
    far = VariationalGaussianMixture(**kw, mean_prior=offset).fit(X + offset)
    n = min(far.n_iter_, near.n_iter_)  # tol=0: a fixed point may be met a step apart
    assert n >= 10
    np.testing.assert_allclose(far.history_[:n], near.history_[:n], rtol=1e-9)
    np.testing.assert_allclose(far.means_ - offset, near.means_, rtol=0, atol=1e-7)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-6)
    np.testing.assert_array_equal(far.mean_prior_, offset)
    # the posterior-mean density against scipy.stats, far from the origin
    full = get_structure(cov).to_full(far.covariances_, 3, 3)
    Y = X[::37] + offset
    dens = sum(
        w * multivariate_normal(m - offset, c).pdf(Y - offset)
        for w, m, c in zip(far.weights_, far.means_, full)
    )
    np.testing.assert_allclose(far.score_samples(Y), np.log(dens), rtol=1e-9)


@pytest.mark.parametrize("cov", ["full", "spherical"])
def test_score_samples_is_the_posterior_mean_mixture_density(cov):
    rng = np.random.default_rng(8)
    X = _clusters(rng)
    vb = VariationalGaussianMixture(n_components=3, covariance_type=cov, random_state=0).fit(X)
    full = get_structure(cov).to_full(vb.covariances_, 3, 3)
    dens = sum(
        w * multivariate_normal(m, c).pdf(X) for w, m, c in zip(vb.weights_, vb.means_, full)
    )
    np.testing.assert_allclose(vb.score_samples(X), np.log(dens), rtol=1e-10)
    assert vb.score(X) == pytest.approx(np.mean(np.log(dens)), rel=1e-10)
    np.testing.assert_allclose(
        np.linalg.inv(vb.precisions_) if cov == "full" else 1 / vb.precisions_,
        vb.covariances_,
        rtol=1e-10,
    )


def test_sample_draws_from_the_posterior_mean_mixture():
    rng = np.random.default_rng(9)
    X = _clusters(rng)
    vb = VariationalGaussianMixture(n_components=3, random_state=0).fit(X)
    Y, labels = vb.sample(20_000)
    assert Y.shape == (20_000, 3) and labels.shape == (20_000,)
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 20_000, vb.weights_, atol=0.015)
    for k in range(3):
        np.testing.assert_allclose(Y[labels == k].mean(axis=0), vb.means_[k], atol=0.05)


@pytest.mark.parametrize(
    ("cov", "prior_type"), [("tied", "dirichlet_process"), ("diag", "dirichlet_distribution")]
)
def test_save_and_load_round_trip(tmp_path, cov, prior_type):
    rng = np.random.default_rng(10)
    X = _clusters(rng)
    vb = VariationalGaussianMixture(
        n_components=4,
        covariance_type=cov,
        weight_concentration_prior_type=prior_type,
        mean_prior=[0.5, 0.5, 0.5],
        random_state=0,
    ).fit(X)
    path = tmp_path / "vb.npz"
    vb.save(path)
    back = emkit.load(path)
    assert type(back) is VariationalGaussianMixture
    assert back.get_params()["covariance_type"] == cov
    for name in (
        "weights_",
        "means_",
        "covariances_",
        "weight_concentration_",
        "degrees_of_freedom_",
        "history_",
        "covariance_prior_",
        "mean_prior_",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(vb, name))
    assert back.elbo_ == vb.elbo_
    np.testing.assert_array_equal(back.predict_proba(X), vb.predict_proba(X))
    np.testing.assert_array_equal(back.score_samples(X), vb.score_samples(X))


def test_warm_start_and_a_start_from_factors_continue_upwards():
    rng = np.random.default_rng(11)
    X = _clusters(rng)
    kw = dict(n_components=4, max_iter=5, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        vb = VariationalGaussianMixture(**kw, warm_start=True).fit(X)
        first = vb.elbo_
        vb.fit(X)
        assert vb.history_[0] >= first
        factors = {
            "weight_concentration": vb.weight_concentration_,
            "mean_precision": vb.mean_precision_,
            "means": vb.means_,
            "degrees_of_freedom": vb.degrees_of_freedom_,
            "covariances": vb.covariances_,
        }
        again = VariationalGaussianMixture(**kw, init=factors).fit(X)
    assert again.history_[0] >= vb.elbo_


def test_init_params_is_scikit_learns_name_for_the_method():
    rng = np.random.default_rng(12)
    X = _clusters(rng)
    a = VariationalGaussianMixture(n_components=3, init="random", random_state=0).fit(X)
    b = VariationalGaussianMixture(n_components=3, init_params="random", random_state=0).fit(X)
    np.testing.assert_array_equal(a.history_, b.history_)
    c = VariationalGaussianMixture(n_components=3, init="kmeans++", random_state=0).fit(X)
    d = VariationalGaussianMixture(n_components=3, init_params="k-means++", random_state=0).fit(X)
    np.testing.assert_array_equal(c.history_, d.history_)
    with pytest.raises(ValueError, match="either init or init_params"):
        VariationalGaussianMixture(n_components=3, init="random", init_params="kmeans").fit(X)


def test_holding_factors_fixed_is_refused_clearly():
    X = _clusters(np.random.default_rng(13))
    model = VariationalGaussianMixtureModel(2, "full", _prior("full", X, 2))
    with pytest.raises(ValueError, match="cannot hold parameters fixed"):
        model.hold(["means"])


BAD = [
    ({"n_components": 0}, ValueError, "n_components"),
    ({"n_components": 1.5}, TypeError, "n_components"),
    (
        {"weight_concentration_prior": 0.0},
        ValueError,
        "weight_concentration_prior must be positive",
    ),
    ({"weight_concentration_prior": -1.0}, ValueError, "weight_concentration_prior"),
    ({"mean_precision_prior": 0.0}, ValueError, "mean_precision_prior must be positive"),
    ({"mean_precision_prior": np.inf}, ValueError, "mean_precision_prior"),
    ({"degrees_of_freedom_prior": 1.5}, ValueError, "greater than n_features - 1 = 2"),
    ({"mean_prior": [0.0, 1.0]}, ValueError, r"mean_prior must be a finite array of shape \(3,\)"),
    ({"mean_prior": [0.0, np.nan, 1.0]}, ValueError, "mean_prior"),
    ({"covariance_prior": np.eye(2)}, ValueError, r"covariance_prior must have shape \(3, 3\)"),
    ({"covariance_prior": -np.eye(3)}, ValueError, "covariance_prior: .*positive definite"),
    ({"covariance_type": "diag", "covariance_prior": np.eye(3)}, ValueError, r"shape \(3,\)"),
    (
        {"covariance_type": "diag", "covariance_prior": [1.0, 0.0, 1.0]},
        ValueError,
        "covariance_prior",
    ),
    ({"covariance_type": "spherical", "covariance_prior": -1.0}, ValueError, "covariance_prior"),
    ({"covariance_type": "spherical", "covariance_prior": [1.0]}, ValueError, r"shape \(\)"),
    ({"covariance_type": "VVV"}, ValueError, "covariance_type must be one of"),
    (
        {"weight_concentration_prior_type": "dirichlet"},
        ValueError,
        "weight_concentration_prior_type",
    ),
    ({"init": "nope"}, ValueError, "init must be one of"),
    ({"init": {"resp": np.ones((5, 2))}}, ValueError, r"init resp must have shape"),
    ({"init": {"means": np.zeros((2, 3))}}, ValueError, "init dict must hold 'resp' alone"),
]


@pytest.mark.parametrize(("kw", "error", "match"), BAD)
def test_bad_hyperparameters_are_named_and_leave_a_previous_fit_intact(kw, error, match):
    rng = np.random.default_rng(14)
    X = _clusters(rng, n=(30, 30, 30))
    vb = VariationalGaussianMixture(n_components=2, random_state=0).fit(X)
    before = {
        k: np.copy(getattr(vb, k)) for k in ("weights_", "means_", "covariances_", "history_")
    }
    vb.set_params(**kw)
    with pytest.raises(error, match=match):
        vb.fit(X)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(vb, name), value)


def test_bad_data_is_named():
    rng = np.random.default_rng(15)
    X = _clusters(rng, n=(20, 20, 20))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        VariationalGaussianMixture(n_components=2).fit(bad)
    constant = X.copy()
    constant[:, 2] = 5.0
    with pytest.raises(ValueError, match="column 2 of X is constant"):
        VariationalGaussianMixture(n_components=2).fit(constant)
    given = VariationalGaussianMixture(n_components=2, covariance_prior=np.eye(3), random_state=0)
    assert np.all(np.isfinite(given.fit(constant).history_))  # a given prior makes it proper
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        VariationalGaussianMixture(n_components=5).fit(X[:4])
    with pytest.raises(ValueError, match="2D"):
        VariationalGaussianMixture(n_components=2).fit(X[:, 0])
    vb = VariationalGaussianMixture(n_components=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        vb.predict(X[:, :2])
    with pytest.raises(emkit.NotFittedError):
        VariationalGaussianMixture().predict(X)


def test_verbose_reports_the_elbo(capsys):
    X = _clusters(np.random.default_rng(16), n=(20, 20, 20))
    VariationalGaussianMixture(n_components=2, verbose=1, random_state=0).fit(X)
    assert "variational EM elbo=" in capsys.readouterr().out
    vb = VariationalGaussianMixture(n_components=2, verbose=2, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert out.count("  elbo ") == vb.n_iter_ + 1  # the start and every step
    assert "loglik" not in out


@parametrize_with_checks(
    [
        VariationalGaussianMixture(),
        VariationalGaussianMixture(n_components=2, covariance_type="diag"),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("method", ["kmeans", "kmeans++", "random", "random_from_data"])
def test_every_init_method_starts_a_monotone_fit(method):
    X = _clusters(np.random.default_rng(17))
    vb = VariationalGaussianMixture(
        n_components=3, init=method, random_state=0, check_monotone="raise"
    )
    labels = vb.fit_predict(X)
    assert np.all(np.diff(vb.history_) >= -1e-9 * np.abs(vb.history_[1:]))
    np.testing.assert_array_equal(labels, vb.predict(X))


def test_float32_input_gives_the_float64_fit_of_the_same_values():
    X32 = _clusters(np.random.default_rng(18)).astype(np.float32)
    kw = dict(n_components=3, random_state=0)
    a = VariationalGaussianMixture(**kw).fit(X32.astype(np.float64))
    b = VariationalGaussianMixture(**kw).fit(X32)
    assert b.means_.dtype == np.float64
    assert b.elbo_ == pytest.approx(a.elbo_, rel=1e-12)
    np.testing.assert_allclose(b.predict_proba(X32), a.predict_proba(X32.astype(np.float64)))


def test_the_engine_refuses_to_hold_its_factors():
    X = _clusters(np.random.default_rng(19))
    model = VariationalGaussianMixtureModel(2, "full", _prior("full", X, 2))
    with pytest.raises(ValueError, match="cannot hold parameters fixed"):
        emkit.em(model, (X, None), fixed=["means"], random_state=0)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_a_sample_weight_of_k_equals_k_repeated_rows(cov):
    rng = np.random.default_rng(20)
    X = _clusters(rng, n=(60, 50, 40))
    w = rng.integers(0, 4, len(X)).astype(float)
    resp = _random_resp(rng, len(X), 4)
    repeat = np.repeat(np.arange(len(X)), w.astype(int))
    kw = dict(n_components=4, covariance_type=cov, max_iter=15, tol=0.0)
    weighted = VariationalGaussianMixture(**kw, init={"resp": resp}).fit(X, sample_weight=w)
    repeated = VariationalGaussianMixture(**kw, init={"resp": resp[repeat]}).fit(X[repeat])
    n = min(weighted.n_iter_, repeated.n_iter_)
    assert n >= 10
    np.testing.assert_allclose(weighted.history_[:n], repeated.history_[:n], rtol=1e-10)
    # and scikit-learn, which has no weights, on the repeated rows
    sk = _sklearn_fit(X[repeat], resp[repeat], **kw)
    np.testing.assert_allclose(weighted.history_[:n], np.ravel(sk.lower_bounds_)[:n], rtol=1e-10)
    np.testing.assert_allclose(weighted.covariance_prior_, sk.covariance_prior_, rtol=1e-10)
    with pytest.raises(ValueError, match="positive weight"):
        VariationalGaussianMixture(n_components=4).fit(
            X, sample_weight=np.r_[1.0, 1.0, np.zeros(148)]
        )


@pytest.mark.parametrize("cov", COV_TYPES)
def test_squarem_reaches_at_least_the_same_elbo_monotonically(cov):
    rng = np.random.default_rng(21)
    X = _clusters(rng)
    kw = dict(
        n_components=6,
        covariance_type=cov,
        init={"resp": _random_resp(rng, len(X), 6)},
        max_iter=2000,
        tol=1e-10,
        check_monotone="raise",
    )
    plain = VariationalGaussianMixture(**kw).fit(X)
    fast = VariationalGaussianMixture(**kw, accel="squarem").fit(X)
    # the same optimum, or a better one (tied: SQUAREM's larger steps reach a higher one)
    assert fast.elbo_ >= plain.elbo_ - 1e-8 * abs(plain.elbo_)
    assert fast.n_iter_ < plain.n_iter_
    assert np.all(np.diff(fast.history_) >= -1e-9 * np.abs(fast.history_[1:]))


def test_restarts_keep_the_highest_elbo():
    X = _clusters(np.random.default_rng(22))
    kw = dict(n_components=5, init="random", max_iter=300, random_state=3)
    one = VariationalGaussianMixture(**kw).fit(X)  # the first of the restarts below
    best = VariationalGaussianMixture(**kw, n_init=4).fit(X)
    assert best.elbo_ >= one.elbo_
    model = VariationalGaussianMixtureModel(5, "full", _prior("full", X, 5), init="random")
    result = emkit.em(model, (X, None), n_init=4, random_state=3, max_iter=300)
    assert result.objective == max(result.restarts)
    assert len(set(np.round(result.restarts, 6))) > 1  # the starts differ


def test_the_expected_log_density_against_monte_carlo_under_the_normal_wishart():
    # E_q[log N(x | mu_k, Lambda_k)] for Lambda_k ~ Wishart(W_k, nu_k) and
    # mu_k | Lambda_k ~ N(m_k, (beta_k Lambda_k)^-1), sampled with scipy.stats
    from scipy.stats import wishart

    rng = np.random.default_rng(23)
    X = _clusters(rng)
    model = VariationalGaussianMixtureModel(2, "full", _prior("full", X, 2))
    params = model.params_from_responsibilities(X, None, _random_resp(rng, len(X), 2))
    points = X[:4]
    expected = model.log_resp(params, points) - model.expected_log_weights(
        params.weight_concentration
    )
    n = 100_000
    for k in range(2):
        nu, beta, m = params.degrees_of_freedom[k], params.mean_precision[k], params.means[k]
        W = np.linalg.inv(nu * params.covariances[k])
        lams = wishart(df=nu, scale=W).rvs(n, random_state=rng)
        chol = np.linalg.cholesky(np.linalg.inv(beta * lams))
        mus = m + np.einsum("nij,nj->ni", chol, rng.standard_normal((n, 3)))
        _, logdet = np.linalg.slogdet(lams)
        for i, x in enumerate(points):
            r = x - mus
            quad = np.einsum("ni,nij,nj->n", r, lams, r)
            draws = 0.5 * logdet - 0.5 * quad - 1.5 * np.log(2 * np.pi)
            se = draws.std() / np.sqrt(n)
            assert abs(draws.mean() - expected[i, k]) < 5 * se + 1e-12


@pytest.mark.parametrize("cov", COV_TYPES)
def test_far_points_get_the_nearest_component_and_minus_infinity(cov):
    X = _clusters(np.random.default_rng(24))
    vb = VariationalGaussianMixture(n_components=3, covariance_type=cov, random_state=0).fit(X)
    direction = np.array([1.0, 0.5, -0.2])
    near = vb.predict_proba((1e4 * direction)[None])  # far, but nothing underflows yet
    far = vb.predict_proba((1e250 * direction)[None])
    assert np.all(np.isfinite(far)) and far.sum() == pytest.approx(1.0)
    assert np.argmax(far) == np.argmax(near)
    assert vb.score_samples((1e250 * direction)[None])[0] == -np.inf
    assert np.isfinite(vb.score_samples(X)).all()


def test_data_too_small_for_reg_covar_are_refused():
    X = _clusters(np.random.default_rng(25)) * 1e-5
    with pytest.raises(ValueError, match="reg_covar"):
        VariationalGaussianMixture(n_components=2).fit(X)
    VariationalGaussianMixture(n_components=2, reg_covar=1e-14, random_state=0).fit(X)


def test_load_refuses_a_file_with_broken_factors(tmp_path):
    X = _clusters(np.random.default_rng(26))
    vb = VariationalGaussianMixture(n_components=2, random_state=0).fit(X)
    for name, broken in (("mean_precision_", -vb.mean_precision_), ("weights_", 2 * vb.weights_)):
        bad = VariationalGaussianMixture(n_components=2, random_state=0).fit(X)
        setattr(bad, name, broken)
        bad.save(tmp_path / "bad.npz")
        with pytest.raises(ValueError, match=name.rstrip("_")):
            emkit.load(tmp_path / "bad.npz")
    vb.save(tmp_path / "good.npz")
    emkit.load(tmp_path / "good.npz")


def test_dataframe_column_names_are_recorded_checked_and_saved(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_clusters(np.random.default_rng(27)), columns=["a", "b", "c"])
    vb = VariationalGaussianMixture(n_components=2, random_state=0).fit(X)
    assert list(vb.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="column"):
        vb.predict(X[["c", "b", "a"]])
    vb.save(tmp_path / "named.npz")
    assert list(emkit.load(tmp_path / "named.npz").feature_names_in_) == ["a", "b", "c"]
