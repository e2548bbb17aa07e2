"""emkit.compat.hmmlearn against hmmlearn, run in the same test on the same data and start."""

import copy
import logging

import numpy as np
import pytest

hl = pytest.importorskip("hmmlearn.hmm")
from sklearn.exceptions import NotFittedError  # noqa: E402

from emkit import HMM  # noqa: E402
from emkit.compat import hmmlearn as ek  # noqa: E402

COV_TYPES = ["diag", "full", "tied", "spherical"]
K = 3

# hmmlearn logs its warnings ("Model is not converging", "will be overwritten")
logging.getLogger("hmmlearn").setLevel(logging.ERROR)


# ---------------------------------------------------------------- data, by plain loops
def sample_sequences(rng, draw, lengths, transmat, startprob):
    xs, zs = [], []
    for T in lengths:
        z = [rng.choice(len(startprob), p=startprob)]
        for _ in range(T - 1):
            z.append(rng.choice(len(startprob), p=transmat[z[-1]]))
        xs.append(np.array([draw(k) for k in z]))
        zs.append(np.array(z))
    return np.concatenate(xs), np.concatenate(zs)


TRANSMAT = np.array([[0.85, 0.1, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
STARTPROB = np.array([0.5, 0.3, 0.2])
LENGTHS = [70, 140, 9, 110]


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 3.0]])
    chol = np.array([[1.0, 0.0], [0.6, 0.7]])
    X, _ = sample_sequences(
        rng, lambda k: means[k] + chol @ rng.normal(size=2), LENGTHS, TRANSMAT, STARTPROB
    )
    return X


@pytest.fixture(scope="module")
def symbols():
    rng = np.random.default_rng(1)
    emit = np.array([[0.6, 0.3, 0.1, 0.0], [0.0, 0.1, 0.3, 0.6], [0.3, 0.0, 0.2, 0.5]])
    X, _ = sample_sequences(rng, lambda k: [rng.choice(4, p=emit[k])], LENGTHS, TRANSMAT, STARTPROB)
    return X.astype(np.int64)


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(2)
    rates = np.array([[1.0, 6.0], [4.0, 0.5], [9.0, 3.0]])
    X, _ = sample_sequences(rng, lambda k: rng.poisson(rates[k]), LENGTHS, TRANSMAT, STARTPROB)
    return X


def pair(name, **kwargs):
    """hmmlearn's model and emkit's front with the same arguments."""
    return getattr(hl, name)(**kwargs), getattr(ek, name)(**kwargs)


def assert_same_attributes(theirs, ours, names, atol=1e-8):
    for name in names:
        a, b = np.asarray(getattr(theirs, name)), np.asarray(getattr(ours, name))
        assert a.shape == b.shape, name
        assert a.dtype == b.dtype, name
        np.testing.assert_allclose(b, a, atol=atol, rtol=1e-8, err_msg=name)


def assert_same_monitor(theirs, ours):
    assert ours.monitor_.iter == theirs.monitor_.iter
    assert ours.monitor_.converged == theirs.monitor_.converged
    np.testing.assert_allclose(
        list(ours.monitor_.history), list(theirs.monitor_.history), rtol=1e-10
    )


def spherical_covars(model):
    """(K, D, D) covariances of a fitted spherical GaussianHMM: hmmlearn 0.3's ``covars_``
    of a fitted spherical model has K * D matrices (its (K, D) store is flattened), so
    its store is expanded here."""
    v = np.asarray(model._covars_).reshape(model.n_components, -1)[:, 0]
    return v[:, None, None] * np.eye(model.means_.shape[1])


def gaussian_start(rng, X, cov_type, k=K):
    D = X.shape[1]
    covars = {
        "diag": rng.uniform(0.5, 2.0, (k, D)),
        "spherical": rng.uniform(0.5, 2.0, k),
        "full": np.tile(np.eye(D) + 0.2, (k, 1, 1)),
        "tied": np.eye(D) + 0.3,
    }[cov_type]
    return {
        "startprob_": rng.dirichlet(np.ones(k) * 5),
        "transmat_": rng.dirichlet(np.ones(k) * 3, size=k),
        "means_": X[rng.choice(len(X), k, replace=False)],
        "covars_": covars,
    }


def set_all(models, values):
    for model in models:
        for name, value in values.items():
            setattr(model, name, copy.deepcopy(value))


# ---------------------------------------------------------------- fits from hmmlearn's start
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gaussian_fit_from_init_params_matches(gaussian, cov_type):
    kw = dict(n_components=K, covariance_type=cov_type, random_state=3, n_iter=60, tol=1e-4)
    theirs, ours = pair("GaussianHMM", **kw)
    assert ours.fit(gaussian, LENGTHS) is ours
    theirs.fit(gaussian, LENGTHS)
    assert 3 < ours.monitor_.iter < 60  # stopped by tol, at hmmlearn's iteration
    assert_same_monitor(theirs, ours)
    assert_same_attributes(theirs, ours, ["startprob_", "transmat_", "means_"])
    theirs_cov = spherical_covars(theirs) if cov_type == "spherical" else theirs.covars_
    np.testing.assert_allclose(ours.covars_, theirs_cov, atol=1e-8)
    assert ours.covars_.shape == (K, 2, 2) and ours.covars_.dtype == np.float64
    assert ours.n_features == theirs.n_features == 2
    assert ours.score(gaussian, LENGTHS) == pytest.approx(
        theirs.score(gaussian, LENGTHS), rel=1e-10
    )


def test_categorical_fit_from_init_params_matches(symbols):
    theirs, ours = pair("CategoricalHMM", n_components=K, random_state=1, n_iter=40, tol=1e-3)
    ours.fit(symbols, LENGTHS)
    theirs.fit(symbols, LENGTHS)
    assert_same_monitor(theirs, ours)
    assert_same_attributes(theirs, ours, ["startprob_", "transmat_", "emissionprob_"])
    assert ours.n_features == theirs.n_features == 4
    # hmmlearn keeps the RandomState it started from: the next samples agree too
    Xa, Za = theirs.sample(30)
    Xb, Zb = ours.sample(30)
    np.testing.assert_array_equal(Xb, Xa)
    np.testing.assert_array_equal(Zb, Za)
    assert Xb.dtype == Xa.dtype and Zb.dtype == Za.dtype


def test_poisson_fit_from_init_params_matches(counts):
    theirs, ours = pair("PoissonHMM", n_components=K, random_state=4, n_iter=40, tol=1e-3)
    ours.fit(counts, LENGTHS)
    theirs.fit(counts, LENGTHS)
    assert_same_monitor(theirs, ours)
    assert_same_attributes(theirs, ours, ["startprob_", "transmat_", "lambdas_"])


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gmmhmm_fit_from_init_params_matches(gaussian, cov_type):
    # hmmlearn's default covariance priors for each type, its start, and its steps
    # (covariances about the E-step's means)
    kw = dict(n_components=2, n_mix=2, covariance_type=cov_type, random_state=5, n_iter=25)
    theirs, ours = pair("GMMHMM", tol=1e-6, **kw)
    ours.fit(gaussian, LENGTHS)
    theirs.fit(gaussian, LENGTHS)
    assert_same_monitor(theirs, ours)
    assert_same_attributes(
        theirs, ours, ["startprob_", "transmat_", "weights_", "means_", "covars_"], atol=1e-7
    )


# ---------------------------------------------------------------- MAP priors
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gaussian_map_priors_match(gaussian, cov_type):
    rng = np.random.default_rng(10)
    D = gaussian.shape[1]
    big = D + 3.0 if cov_type in ("full", "tied") else 4.0
    priors = dict(
        startprob_prior=np.array([2.0, 3.0, 1.5]),
        transmat_prior=rng.uniform(1.0, 4.0, (K, K)),
        means_prior=np.array([[0.5, -0.5]]),
        means_weight=3.0,
        covars_prior=0.4,
        covars_weight=big,
    )
    kw = dict(n_components=K, covariance_type=cov_type, init_params="", n_iter=15, tol=-1.0)
    theirs, ours = pair("GaussianHMM", **kw, **priors)
    set_all([theirs, ours], gaussian_start(rng, gaussian, cov_type))
    ours.fit(gaussian, LENGTHS)
    theirs.fit(gaussian, LENGTHS)
    assert ours.monitor_.iter == 15
    assert_same_monitor(theirs, ours)
    assert_same_attributes(theirs, ours, ["startprob_", "transmat_", "means_"])
    theirs_cov = spherical_covars(theirs) if cov_type == "spherical" else theirs.covars_
    np.testing.assert_allclose(ours.covars_, theirs_cov, atol=1e-8)


def test_categorical_map_priors_match(symbols):
    rng = np.random.default_rng(11)
    kw = dict(
        n_components=K,
        startprob_prior=2.5,
        transmat_prior=rng.uniform(1.0, 3.0, (K, K)),
        emissionprob_prior=rng.uniform(1.0, 3.0, (K, 4)),
        init_params="",
        n_iter=20,
        tol=-1.0,
    )
    theirs, ours = pair("CategoricalHMM", **kw)
    set_all(
        [theirs, ours],
        {
            "startprob_": np.ones(K) / K,
            "transmat_": rng.dirichlet(np.ones(K) * 3, size=K),
            "emissionprob_": rng.dirichlet(np.ones(4) * 2, size=K),
        },
    )
    ours.fit(symbols, LENGTHS)
    theirs.fit(symbols, LENGTHS)
    assert_same_monitor(theirs, ours)
    assert_same_attributes(theirs, ours, ["startprob_", "transmat_", "emissionprob_"])


def test_poisson_gamma_prior_matches_with_one_state(counts):
    # With one state hmmlearn's update is the Gamma prior's MAP step (with several it
    # uses the total count of all states, see PoissonHMM's docstring).
    kw = dict(n_components=1, lambdas_prior=3.0, lambdas_weight=2.0, random_state=0, n_iter=5)
    theirs, ours = pair("PoissonHMM", **kw)
    ours.fit(counts)
    theirs.fit(counts)
    assert_same_attributes(theirs, ours, ["lambdas_"])
    expected = (3.0 + counts.sum(axis=0)) / (2.0 + len(counts))
    np.testing.assert_allclose(ours.lambdas_[0], expected, rtol=1e-12)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gmmhmm_map_priors_match(gaussian, cov_type):
    rng = np.random.default_rng(12)
    M, D = 2, gaussian.shape[1]
    prior = {
        "full": (np.eye(D) * 0.5, 3.0),
        "tied": (np.eye(D) * 0.5, 1.0),
        "diag": (0.5, 0.3),
        "spherical": (0.5, 0.3),
    }[cov_type]
    kw = dict(
        n_components=2,
        n_mix=M,
        covariance_type=cov_type,
        weights_prior=2.0,
        means_prior=0.3,
        means_weight=1.5,
        covars_prior=prior[0],
        covars_weight=prior[1],
        init_params="",
        n_iter=10,
        tol=-1.0,
    )
    theirs, ours = pair("GMMHMM", **kw)
    covars = {
        "full": np.tile(np.eye(D), (2, M, 1, 1)),
        "tied": np.tile(np.eye(D), (2, 1, 1)),
        "diag": np.ones((2, M, D)),
        "spherical": np.ones((2, M)),
    }[cov_type]
    set_all(
        [theirs, ours],
        {
            "startprob_": np.array([0.6, 0.4]),
            "transmat_": np.array([[0.9, 0.1], [0.2, 0.8]]),
            "weights_": rng.dirichlet(np.ones(M) * 3, size=2),
            "means_": gaussian[rng.choice(len(gaussian), 2 * M, replace=False)].reshape(2, M, D),
            "covars_": covars,
        },
    )
    ours.fit(gaussian, LENGTHS)
    theirs.fit(gaussian, LENGTHS)
    assert_same_monitor(theirs, ours)
    assert_same_attributes(
        theirs, ours, ["startprob_", "transmat_", "weights_", "means_", "covars_"]
    )


def test_prior_below_one_is_refused(gaussian):
    model = ek.GaussianHMM(K, transmat_prior=0.5, random_state=0)
    with pytest.raises(ValueError, match="transmat_prior"):
        model.fit(gaussian)
    assert not hasattr(model, "transmat_")  # a failed fit changes nothing


# ---------------------------------------------------------------- params: held parameters
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_fixed_transitions_match_hmmlearn_without_t(gaussian, cov_type):
    rng = np.random.default_rng(20)
    kw = dict(n_components=K, covariance_type=cov_type, params="smc", init_params="")
    theirs, ours = pair("GaussianHMM", n_iter=20, tol=-1.0, **kw)
    start = gaussian_start(rng, gaussian, cov_type)
    set_all([theirs, ours], start)
    ours.fit(gaussian, LENGTHS)
    theirs.fit(gaussian, LENGTHS)
    np.testing.assert_array_equal(ours.transmat_, start["transmat_"])  # held, exactly
    assert_same_monitor(theirs, ours)
    assert_same_attributes(theirs, ours, ["startprob_", "means_"])
    # the others were maximised: the fit moved them and raised the likelihood
    assert np.abs(ours.means_ - start["means_"]).max() > 1e-2
    assert ours.monitor_.history[-1] > ours.monitor_.history[0] + 1.0


@pytest.mark.parametrize(
    ("name", "params", "held", "data"),
    [
        ("CategoricalHMM", "st", "emissionprob_", "symbols"),
        ("CategoricalHMM", "te", "startprob_", "symbols"),
        ("PoissonHMM", "sl", "transmat_", "counts"),
        ("GMMHMM", "stmc", "weights_", "gaussian"),
        ("GMMHMM", "stw", "means_", "gaussian"),
    ],
)
def test_letters_left_out_are_held(request, name, params, held, data):
    X = request.getfixturevalue(data)
    theirs, ours = pair(name, n_components=2, random_state=7, n_iter=8, tol=-1.0, params=params)
    if name == "GMMHMM":
        theirs.set_params(n_mix=2), ours.set_params(n_mix=2)
    ours.fit(X, LENGTHS)
    theirs.fit(X, LENGTHS)
    start = type(ours)(n_components=2, random_state=7, n_iter=0).set_params(
        **({"n_mix": 2} if name == "GMMHMM" else {})
    )
    start.fit(X, LENGTHS)  # zero iterations: hmmlearn's start, as drawn
    np.testing.assert_array_equal(getattr(ours, held), getattr(start, held))
    assert_same_monitor(theirs, ours)
    emission = [n for n in ours._names.values() if n != "_covars_"]
    assert_same_attributes(theirs, ours, ["startprob_", "transmat_", *emission], atol=1e-7)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_held_means_give_covariances_about_them(gaussian, cov_type):
    """params without "m": the covariances are the posterior scatter about the held means
    (plus hmmlearn's prior terms), computed here from hmmlearn's posteriors. (hmmlearn 0.3
    itself skips the statistics it needs in that case, so its own fit is no reference.)"""
    rng = np.random.default_rng(21)
    start = gaussian_start(rng, gaussian, cov_type)
    ours = ek.GaussianHMM(K, covariance_type=cov_type, params="stc", init_params="", n_iter=1)
    peer = hl.GaussianHMM(K, covariance_type=cov_type, init_params="")
    set_all([ours, peer], start)
    post = peer.predict_proba(gaussian, LENGTHS)
    ours.fit(gaussian, LENGTHS)
    np.testing.assert_array_equal(ours.means_, start["means_"])
    r = gaussian[:, None, :] - start["means_"][None]  # (T, K, D) residuals
    scatter = np.einsum("tk,tki,tkj->kij", post, r, r)
    n = post.sum(axis=0)
    D = gaussian.shape[1]
    if cov_type == "full":
        expected = (1e-2 + scatter) / n[:, None, None]
    elif cov_type == "tied":
        expected = np.broadcast_to((1e-2 + scatter.sum(axis=0)) / n.sum(), (K, D, D))
    else:
        var = (1e-2 + np.diagonal(scatter, axis1=1, axis2=2)) / n[:, None]
        if cov_type == "spherical":
            var = np.repeat(var.mean(axis=1, keepdims=True), D, axis=1)
        expected = var[:, :, None] * np.eye(D)
    np.testing.assert_allclose(ours.covars_, expected, rtol=1e-9)


# ---------------------------------------------------------------- init_params and hand-set values
def test_init_params_keep_values_set_by_hand(gaussian):
    rng = np.random.default_rng(30)
    means = gaussian[rng.choice(len(gaussian), K, replace=False)]
    kw = dict(n_components=K, init_params="stc", random_state=2, n_iter=12, tol=-1.0)
    theirs, ours = pair("GaussianHMM", **kw)
    set_all([theirs, ours], {"means_": means})
    ours.fit(gaussian, LENGTHS)
    theirs.fit(gaussian, LENGTHS)
    assert_same_monitor(theirs, ours)
    assert_same_attributes(theirs, ours, ["startprob_", "transmat_", "means_"])
    np.testing.assert_allclose(ours.covars_, theirs.covars_, atol=1e-8)


def test_n_iter_zero_keeps_the_start(gaussian):
    theirs, ours = pair("GaussianHMM", n_components=K, random_state=0, n_iter=0)
    ours.fit(gaussian)
    theirs.fit(gaussian)
    assert len(ours.monitor_.history) == 0
    assert_same_attributes(theirs, ours, ["startprob_", "transmat_", "means_", "covars_"])


def hand_set(name, X):
    """hmmlearn's model and emkit's front with the same parameters set by hand."""
    rng = np.random.default_rng(40)
    D = X.shape[1]
    values = {"startprob_": np.array([0.5, 0.3, 0.2]), "transmat_": TRANSMAT}
    kwargs = {"n_components": K}
    if name == "GaussianHMM":
        kwargs["covariance_type"] = "full"
        values.update(means_=X[:3] + 0.5, covars_=np.tile(np.eye(D) * 1.5, (K, 1, 1)))
    elif name == "GMMHMM":
        kwargs.update(n_mix=2, covariance_type="diag")
        values.update(
            weights_=rng.dirichlet(np.ones(2), size=K),
            means_=X[:6].reshape(K, 2, D),
            covars_=rng.uniform(0.5, 2.0, (K, 2, D)),
        )
    elif name == "CategoricalHMM":
        values["emissionprob_"] = rng.dirichlet(np.ones(4), size=K)
    else:
        values["lambdas_"] = rng.uniform(0.5, 8.0, (K, D))
    theirs, ours = pair(name, **kwargs)
    set_all([theirs, ours], values)
    return theirs, ours


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("GaussianHMM", "gaussian"),
        ("GMMHMM", "gaussian"),
        ("CategoricalHMM", "symbols"),
        ("PoissonHMM", "counts"),
    ],
)
def test_hand_set_parameters_without_fit(request, name, data):
    X = request.getfixturevalue(data)
    theirs, ours = hand_set(name, X)
    assert ours.score(X, LENGTHS) == pytest.approx(theirs.score(X, LENGTHS), rel=1e-10)
    la, pa = theirs.score_samples(X, LENGTHS)
    lb, pb = ours.score_samples(X, LENGTHS)
    assert lb == pytest.approx(la, rel=1e-10)
    np.testing.assert_allclose(pb, pa, atol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X, LENGTHS), pa, atol=1e-10)
    for algorithm in ("viterbi", "map"):
        la, za = theirs.decode(X, LENGTHS, algorithm=algorithm)
        lb, zb = ours.decode(X, LENGTHS, algorithm=algorithm)
        assert lb == pytest.approx(la, rel=1e-10)
        np.testing.assert_array_equal(zb, za)
        assert zb.dtype == za.dtype and type(lb) is type(la)
    np.testing.assert_array_equal(ours.predict(X, LENGTHS), theirs.predict(X, LENGTHS))
    Xa, Za = theirs.sample(25, random_state=9)
    Xb, Zb = ours.sample(25, random_state=9)
    np.testing.assert_allclose(Xb, Xa, rtol=1e-12)
    np.testing.assert_array_equal(Zb, Za)
    assert Xb.shape == Xa.shape and Xb.dtype == Xa.dtype and Zb.dtype == Za.dtype
    np.testing.assert_allclose(
        ours.get_stationary_distribution(), theirs.get_stationary_distribution(), atol=1e-12
    )


@pytest.mark.parametrize(
    ("emission", "attrs"),
    [
        ("gaussian", {"means_": "means_", "covariances_": "_covars_"}),
        ("categorical", {"emissionprob_": "emissionprob_"}),
        ("poisson", {"rates_": "lambdas_"}),
    ],
)
def test_emkit_hmm_with_parameters_set_by_hand(gaussian, symbols, counts, emission, attrs):
    X = {"gaussian": gaussian, "categorical": symbols, "poisson": counts}[emission]
    name = {"gaussian": "GaussianHMM", "categorical": "CategoricalHMM", "poisson": "PoissonHMM"}
    theirs, _ = hand_set(name[emission], X)
    ours = HMM(K, emission=emission, covariance_type="full")
    ours.startprob_, ours.transmat_ = theirs.startprob_, theirs.transmat_
    for mine, peer in attrs.items():
        setattr(ours, mine, getattr(theirs, peer))
    assert ours.score(X, LENGTHS) == pytest.approx(theirs.score(X, LENGTHS), rel=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X, LENGTHS), theirs.predict_proba(X, LENGTHS))
    la, za = theirs.decode(X, LENGTHS)
    lb, zb = ours.decode(X, LENGTHS)
    assert lb == pytest.approx(la, rel=1e-10)
    np.testing.assert_array_equal(zb, za)
    np.testing.assert_array_equal(ours.predict(X, LENGTHS), za)
    sample, states = ours.sample(400, random_state=0)
    assert sample.shape == (400, X.shape[1]) and states.shape == (400,)
    # the draws come from the set parameters: hmmlearn scores them as well as ours does
    assert ours.score(sample) == pytest.approx(theirs.score(sample), rel=1e-10)
    assert ours.bic(X, LENGTHS) == pytest.approx(theirs.bic(X, LENGTHS), rel=1e-10)


def test_emkit_hmm_without_parameters_is_not_fitted(gaussian):
    with pytest.raises(NotFittedError):
        HMM(K).decode(gaussian)
    model = HMM(K)
    model.startprob_ = STARTPROB  # only some of them
    with pytest.raises(NotFittedError):
        model.score(gaussian)


# ---------------------------------------------------------------- the rest of the interface
def test_aic_bic_and_stationary_distribution_after_fit(gaussian):
    theirs, ours = pair("GaussianHMM", n_components=K, random_state=0, n_iter=20)
    ours.fit(gaussian, LENGTHS)
    theirs.fit(gaussian, LENGTHS)
    assert ours.bic(gaussian, LENGTHS) == pytest.approx(theirs.bic(gaussian, LENGTHS), rel=1e-10)
    assert ours.aic(gaussian, LENGTHS) == pytest.approx(theirs.aic(gaussian, LENGTHS), rel=1e-10)
    stationary = ours.get_stationary_distribution()
    np.testing.assert_allclose(stationary @ ours.transmat_, stationary, atol=1e-12)
    np.testing.assert_allclose(stationary, theirs.get_stationary_distribution(), atol=1e-8)


def test_custom_monitor_decides_when_to_stop(gaussian):
    class ThresholdMonitor(ek.ConvergenceMonitor):
        @property
        def converged(self):
            return self.iter == self.n_iter or self.history[-1] >= self.tol

    results = []
    for lib, base in ((hl, None), (ek, ek.ConvergenceMonitor)):
        model = lib.GaussianHMM(K, random_state=0, n_iter=50, tol=-1100.0)
        cls = (
            ThresholdMonitor
            if base
            else type(
                "T",
                (__import__("hmmlearn.base").base.ConvergenceMonitor,),
                {"converged": ThresholdMonitor.converged},
            )
        )
        model.monitor_ = cls(model.monitor_.tol, model.monitor_.n_iter, False)
        model.fit(gaussian, LENGTHS)
        results.append(model)
    theirs, ours = results
    assert 1 < ours.monitor_.iter < 50
    assert_same_monitor(theirs, ours)
    assert_same_attributes(theirs, ours, ["means_"])


def test_verbose_reports_each_iteration_to_stderr(gaussian, capsys):
    ek.GaussianHMM(K, random_state=0, n_iter=3, tol=-1.0, verbose=True).fit(gaussian)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "1"


def test_save_and_load_under_a_qualified_key(gaussian, tmp_path):
    import emkit
    from emkit._registry import estimator_key

    model = ek.GaussianHMM(K, covariance_type="tied", random_state=0, n_iter=5).fit(gaussian)
    assert estimator_key(ek.GaussianHMM) == "emkit.compat.hmmlearn.GaussianHMM"
    model.save(tmp_path / "m.npz")
    back = emkit.load(tmp_path / "m.npz")
    assert type(back) is ek.GaussianHMM
    np.testing.assert_allclose(back.covars_, model.covars_)
    assert back.score(gaussian) == pytest.approx(model.score(gaussian), rel=1e-12)


# ---------------------------------------------------------------- bad input
def _unfitted_decode(lib, X):
    lib.GaussianHMM(K).decode(X)


def _bad_algorithm(lib, X):
    model = lib.GaussianHMM(2, init_params="", n_iter=1)
    model.startprob_, model.transmat_ = np.array([0.5, 0.5]), np.eye(2)
    model.means_, model.covars_ = X[:2], np.ones((2, 2))
    model.decode(X, algorithm="forward")


def _bad_startprob(lib, X):
    model = lib.GaussianHMM(2, init_params="mc", n_iter=1)
    model.startprob_, model.transmat_ = np.array([0.5, 0.6]), np.eye(2)
    model.fit(X)


def _bad_covars(lib, X):
    lib.GaussianHMM(2, covariance_type="diag").covars_ = -np.ones((2, 2))


BAD_INPUTS = {
    "nan in X": lambda lib, X: lib.GaussianHMM(2).fit(np.where(X > 4, np.nan, X)),
    "1-D X": lambda lib, X: lib.GaussianHMM(2).fit(X[:, 0]),
    "lengths off": lambda lib, X: lib.GaussianHMM(2).fit(X, [10, 20]),
    "more states than rows": lambda lib, X: lib.GaussianHMM(20).fit(X[:5]),
    "covariance type": lambda lib, X: lib.GaussianHMM(2, covariance_type="round").fit(X),
    "implementation": lambda lib, X: lib.GaussianHMM(2, implementation="fast").fit(X),
    "float symbols": lambda lib, X: lib.CategoricalHMM(2).fit(X),
    "negative symbols": lambda lib, X: lib.CategoricalHMM(2).fit(-np.ones((9, 1), int)),
    "too few symbols": lambda lib, X: lib.CategoricalHMM(2, n_features=2).fit(
        np.arange(9)[:, None]
    ),
    "unfitted decode": _unfitted_decode,
    "decoder": _bad_algorithm,
    "startprob sum": _bad_startprob,
    "negative covars": _bad_covars,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_what_hmmlearn_raises(gaussian, case):
    with pytest.raises(Exception) as theirs:
        BAD_INPUTS[case](hl, gaussian)
    with pytest.raises(theirs.type):
        BAD_INPUTS[case](ek, gaussian)


# ---------------------------------------------------------------- the model's hold, directly
def test_model_hold_keeps_named_parameters_and_rejects_unknown_names(gaussian):
    from emkit.data.sequences import SequenceBatch

    model = ek.GaussianHMM(K, covariance_type="full", random_state=0, n_iter=3).fit(gaussian)
    hmm_model, params = model._fitted()
    data, missing = hmm_model.emission.prepare(gaussian)
    batch = SequenceBatch((data, missing), np.array([0, len(gaussian)]))
    stats, _ = hmm_model.estep(params, batch)
    for names in (["transmat"], ["startprob", "means"], ["covariances"], hmm_model.parameter_names):
        held = hmm_model.hold(names)
        new = held.mstep(stats, params)
        free = hmm_model.mstep(stats, params)
        for name, attr in [("startprob", 0), ("transmat", 1)]:
            expected = params[attr] if name in names else free[attr]
            np.testing.assert_array_equal(new[attr], expected)
        if "means" in names:
            np.testing.assert_array_equal(new.emission.mean, params.emission.mean)
        if "covariances" in names:
            np.testing.assert_array_equal(new.emission.covariance, params.emission.covariance)
        else:
            assert not np.array_equal(new.emission.covariance, params.emission.covariance)
    assert hmm_model.held == frozenset()  # hold returns a copy
    with pytest.raises(ValueError, match="emissionprob"):
        hmm_model.hold(["emissionprob"])


# ---------------------------------------------------------------- emkit.HMM(fixed=...)
@pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cov_type", ["diag", "full", "tied"])
@pytest.mark.parametrize("as_dict", [True, False])
def test_emkit_hmm_fixed_transitions_match_hmmlearn_without_t(gaussian, cov_type, as_dict):
    rng = np.random.default_rng(50)
    start = gaussian_start(rng, gaussian, cov_type)
    peer = hl.GaussianHMM(
        K,
        covariance_type=cov_type,
        covars_prior=0.0,
        params="smc",
        init_params="",
        n_iter=20,
        tol=-1.0,
    )
    set_all([peer], start)
    peer.fit(gaussian, LENGTHS)
    init = {"startprob": start["startprob_"], "means": start["means_"]}
    init["covariances"] = start["covars_"]
    if as_dict:
        fixed = {"transmat": start["transmat_"]}
    else:
        init["transmat"], fixed = start["transmat_"], ["transmat"]
    ours = HMM(
        K,
        covariance_type=cov_type,
        reg_covar=0.0,
        init=init,
        fixed=fixed,
        max_iter=20,
        tol=0.0,
        check_monotone="raise",
    ).fit(gaussian, LENGTHS)
    np.testing.assert_array_equal(ours.transmat_, start["transmat_"])
    assert ours.n_iter_ <= 20
    np.testing.assert_allclose(ours.startprob_, peer.startprob_, atol=1e-8)
    np.testing.assert_allclose(ours.means_, peer.means_, atol=1e-8)
    np.testing.assert_allclose(ours.covariances_, peer._covars_, atol=1e-8)
    assert ours.loglik_ == pytest.approx(peer.score(gaussian, LENGTHS), rel=1e-10)
    assert np.all(np.diff(ours.history_) >= -1e-9 * abs(ours.history_[-1]))


@pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")
def test_emkit_hmm_fixed_means_give_covariances_about_them(gaussian):
    rng = np.random.default_rng(51)
    start = gaussian_start(rng, gaussian, "full")
    init = {"startprob": start["startprob_"], "transmat": start["transmat_"]}
    init.update(means=start["means_"] - 1.0, covariances=start["covars_"])
    held = start["means_"]
    one = HMM(K, covariance_type="full", reg_covar=0.0, init=init, fixed={"means": held})
    one.set_params(max_iter=1, tol=0.0).fit(gaussian, LENGTHS)
    np.testing.assert_array_equal(one.means_, held)
    peer = hl.GaussianHMM(K, covariance_type="full", init_params="")
    set_all([peer], {**start, "means_": held})  # the start with the held means put in
    post = peer.predict_proba(gaussian, LENGTHS)
    r = gaussian[:, None, :] - held[None]
    expected = np.einsum("tk,tki,tkj->kij", post, r, r) / post.sum(axis=0)[:, None, None]
    np.testing.assert_allclose(one.covariances_, expected, rtol=1e-9)


def test_emkit_hmm_fixed_with_a_drawn_start_and_bad_names(gaussian):
    A = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    model = HMM(K, fixed={"transmat": A, "covariances": np.ones((K, 2))}, random_state=0)
    model.set_params(max_iter=30, check_monotone="raise").fit(gaussian, LENGTHS)
    np.testing.assert_array_equal(model.transmat_, A)
    np.testing.assert_array_equal(model.covariances_, np.ones((K, 2)))
    free = HMM(K, random_state=0, max_iter=30).fit(gaussian, LENGTHS)
    assert model.loglik_ < free.loglik_  # held values constrain the fit
    with pytest.raises(ValueError, match="emissionprob"):
        HMM(K, fixed=["emissionprob"]).fit(gaussian)
