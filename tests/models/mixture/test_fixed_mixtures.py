"""``fixed=`` on the mixture estimators: held values exactly kept, the others maximised.

Independent references: the observed-data log-likelihood written with ``scipy.stats``
densities and maximised with ``scipy.optimize.minimize`` over the free parameters; and
the stationarity equations of EM given the held parameters (responsibilities from
``scipy.stats`` densities at the fitted parameters, then weighted moments computed here
from residuals ``x - m``), which the fitted free parameters must satisfy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats
from sklearn.base import clone

import emkit
from emkit import GaussianMixture, Mixture, StudentTMixture
from emkit.distributions import Poisson
from emkit.distributions.discrete import PoissonParams

pytestmark = [
    pytest.mark.filterwarnings("error::emkit.engine.MonotonicityWarning"),
    pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning"),
]

TIGHT = {"tol": 1e-13, "max_iter": 3000, "reg_covar": 0.0}


def two_clusters(offset=0.0, n=(250, 150), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.multivariate_normal([-1.0, 0.5], [[1.0, 0.3], [0.3, 0.6]], size=n[0])
    b = rng.multivariate_normal([2.0, -1.0], [[0.4, -0.1], [-0.1, 0.8]], size=n[1])
    return np.vstack([a, b]) + offset


def responsibilities(X, weights, means, covs):
    logp = np.stack(
        [
            np.log(w) + stats.multivariate_normal(m, c).logpdf(X)
            for w, m, c in zip(weights, means, covs)
        ],
        axis=1,
    )
    return np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True)), logp


def full_covariances(gm):
    K, D = gm.means_.shape
    c = np.asarray(gm.covariances_)
    return {
        "full": c,
        "diag": np.stack([np.diag(v) for v in c]) if c.ndim == 2 else None,
        "tied": np.broadcast_to(c, (K, D, D)),
        "spherical": c.reshape(-1, 1, 1) * np.eye(D) if c.ndim == 1 else None,
    }[gm.covariance_type]


@pytest.mark.parametrize("offset", [0.0, 1e6])
@pytest.mark.parametrize("cov_type", ["full", "diag", "tied", "spherical"])
def test_fixed_means_give_covariances_about_them(cov_type, offset):
    X = two_clusters(offset)
    means = np.array([[-0.5, 0.0], [2.5, -0.5]]) + offset  # not the MLE
    gm = GaussianMixture(2, covariance_type=cov_type, fixed={"means": means}, **TIGHT)
    gm.fit(X)
    np.testing.assert_array_equal(gm.means_, means)
    covs = full_covariances(gm)
    r, _ = responsibilities(X, gm.weights_, means, covs)
    nk = r.sum(axis=0)
    np.testing.assert_allclose(gm.weights_, nk / len(X), rtol=1e-5)
    S = np.stack([(r[:, k, None] * (X - means[k])).T @ (X - means[k]) for k in range(2)])
    expected = {
        "full": S / nk[:, None, None],
        "diag": np.diagonal(S, axis1=1, axis2=2) / nk[:, None],
        "tied": S.sum(axis=0) / len(X),
        "spherical": np.trace(S, axis1=1, axis2=2) / (2 * nk),
    }[cov_type]
    np.testing.assert_allclose(gm.covariances_, expected, rtol=1e-5)


def test_fixed_means_equal_direct_maximisation():
    X = two_clusters(n=(120, 80))
    means = np.array([[-0.5, 0.0], [2.5, -0.5]])
    gm = GaussianMixture(2, fixed={"means": means}, **TIGHT).fit(X)

    def unpack(theta):
        w1 = special.expit(theta[0])
        covs = []
        for k in range(2):
            a, b, c = theta[1 + 3 * k : 4 + 3 * k]
            L = np.array([[np.exp(a), 0.0], [b, np.exp(c)]])
            covs.append(L @ L.T)
        return np.array([1 - w1, w1]), np.array(covs)

    def nll(theta):
        w, covs = unpack(theta)
        return -special.logsumexp(responsibilities(X, w, means, covs)[1], axis=1).sum()

    res = optimize.minimize(nll, np.zeros(7), method="BFGS", options={"gtol": 1e-9})
    w, covs = unpack(res.x)
    order = [0, 1] if gm.covariances_[0, 0, 0] > 0 else [1, 0]
    np.testing.assert_allclose(gm.weights_, w[order], rtol=1e-5)
    np.testing.assert_allclose(gm.covariances_, covs[order], rtol=1e-4, atol=1e-6)
    assert gm.loglik_ == pytest.approx(-res.fun, rel=1e-9)


def test_fixed_weights_equal_direct_maximisation():
    X = two_clusters(n=(120, 80), seed=3)
    weights = np.array([0.5, 0.5])
    gm = GaussianMixture(2, covariance_type="diag", fixed={"weights": weights}, **TIGHT)
    gm.fit(X)
    np.testing.assert_array_equal(gm.weights_, weights)

    def nll(theta):
        means, var = theta[:4].reshape(2, 2), np.exp(theta[4:]).reshape(2, 2)
        logp = np.stack(
            [np.log(0.5) + stats.norm(means[k], np.sqrt(var[k])).logpdf(X).sum(1) for k in range(2)]
        )
        return -special.logsumexp(logp, axis=0).sum()

    start = np.concatenate([gm.means_.ravel() + 0.3, np.zeros(4)])
    res = optimize.minimize(nll, start, method="BFGS", options={"gtol": 1e-9})
    np.testing.assert_allclose(gm.means_.ravel(), res.x[:4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gm.covariances_.ravel(), np.exp(res.x[4:]), rtol=1e-4)
    assert gm.loglik_ == pytest.approx(-res.fun, rel=1e-9)


@pytest.mark.parametrize("key", ["covariances", "precisions"])
def test_fixed_covariances_give_weighted_means(key):
    X = two_clusters(1e5)
    covs = np.array([[[1.2, 0.0], [0.0, 0.5]], [[0.3, 0.1], [0.1, 0.9]]])
    value = covs if key == "covariances" else np.linalg.inv(covs)
    gm = GaussianMixture(2, fixed={key: value}, **TIGHT).fit(X)
    np.testing.assert_allclose(gm.covariances_, covs, rtol=1e-12)
    r, _ = responsibilities(X, gm.weights_, gm.means_, gm.covariances_)
    expected = (r.T @ (X - 1e5)) / r.sum(axis=0)[:, None] + 1e5
    np.testing.assert_allclose(gm.means_, expected, rtol=1e-12, atol=1e-6)


ENGINE = [
    {},
    {"accel": "squarem"},
    {"variant": "online", "batch_size": 50, "max_iter": 4},
    {"variant": "hard"},
    {"anneal": "default", "max_iter": 30},
    {"n_init": 3},
]


@pytest.mark.parametrize("options", ENGINE, ids=lambda o: ",".join(o) or "em")
def test_estimator_keeps_fixed_values_under_every_engine_option(options):
    X = two_clusters(1e3)
    init = {
        "weights": [0.4, 0.6],
        "means": [[1e3 - 1, 1e3], [1e3 + 2, 1e3 - 1]],
        "covariances": [[0.8, 0.9], [0.5, 0.7]],
    }
    opts = {"tol": 1e-8, "max_iter": 200, "random_state": 0, **options}
    for fixed in (["weights", "means"], ["covariances"]):
        gm = GaussianMixture(2, covariance_type="diag", init=init, fixed=fixed, **opts).fit(X)
        for name in fixed:
            np.testing.assert_array_equal(getattr(gm, name + "_"), init[name])
    gm = GaussianMixture(2, fixed={"weights": [0.25, 0.75]}, **opts).fit(X)
    np.testing.assert_array_equal(gm.weights_, [0.25, 0.75])


def test_fixed_names_hold_the_start_of_every_restart():
    X = two_clusters()
    free = GaussianMixture(2, random_state=0, n_init=1).fit(X)
    gm = GaussianMixture(2, random_state=0, n_init=1, fixed=["weights"]).fit(X)
    # held at k-means++'s starting weights, whatever they are: not the free fit's
    assert not np.allclose(gm.weights_, free.weights_, rtol=1e-6)
    assert gm.loglik_ <= free.loglik_ + 1e-9


def test_student_t_fixed_means_satisfy_the_ecm_equations():
    rng = np.random.default_rng(5)
    X = np.vstack([rng.standard_t(4, (250, 2)) - 2, 0.5 * rng.standard_t(4, (150, 2)) + 3])
    means = np.array([[-2.2, -1.8], [3.1, 3.0]])
    dofs = np.array([3.0, 6.0])
    tm = StudentTMixture(2, fixed={"means": means, "dofs": dofs}, algorithm="ecm", **TIGHT).fit(X)
    np.testing.assert_array_equal(tm.means_, means)
    np.testing.assert_array_equal(tm.dofs_, dofs)
    S = tm.covariances_
    logp = np.stack(
        [
            np.log(tm.weights_[k]) + stats.multivariate_t(means[k], S[k], df=dofs[k]).logpdf(X)
            for k in range(2)
        ],
        axis=1,
    )
    r = np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True))
    np.testing.assert_allclose(tm.weights_, r.mean(axis=0), rtol=1e-7)
    for k in range(2):
        d = X - means[k]
        maha = np.einsum("ij,jk,ik->i", d, np.linalg.inv(S[k]), d)
        u = (dofs[k] + 2) / (dofs[k] + maha)
        expected = (r[:, k] * u * d.T) @ d / r[:, k].sum()
        np.testing.assert_allclose(S[k], expected, rtol=1e-6)


def test_student_t_fixed_scales_give_u_weighted_means():
    rng = np.random.default_rng(6)
    X = np.vstack([rng.standard_t(5, (200, 2)) - 2, rng.standard_t(5, (200, 2)) + 2])
    scales = np.array([[[1.0, 0.2], [0.2, 1.0]], [[0.8, 0.0], [0.0, 1.2]]])
    for algorithm in ("ecm", "ecme"):
        tm = StudentTMixture(2, fixed={"covariances": scales}, algorithm=algorithm, **TIGHT)
        tm.fit(X)
        np.testing.assert_array_equal(tm.covariances_, scales)
        m, nu = tm.means_, tm.dofs_
        logp = np.stack(
            [
                np.log(tm.weights_[k]) + stats.multivariate_t(m[k], scales[k], df=nu[k]).logpdf(X)
                for k in range(2)
            ],
            axis=1,
        )
        r = np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True))
        for k in range(2):
            d = X - m[k]
            u = (nu[k] + 2) / (nu[k] + np.einsum("ij,jk,ik->i", d, np.linalg.inv(scales[k]), d))
            expected = (r[:, k] * u) @ X / (r[:, k] * u).sum()
            np.testing.assert_allclose(m[k], expected, rtol=1e-6, atol=1e-8)


def poisson_data():
    rng = np.random.default_rng(2)
    return np.concatenate([rng.poisson(2.0, (300, 1)), rng.poisson(9.0, (200, 1))])


@pytest.mark.parametrize("accel", [None, "squarem"])
def test_mixture_fixed_component_equals_direct_maximisation(accel):
    X = poisson_data()
    x = X[:, 0]
    held = PoissonParams(rate=np.array([8.0]))
    init = {"weights": [0.5, 0.5], "components": [PoissonParams(np.array([1.0])), held]}
    mix = Mixture(
        Poisson(),
        2,
        init=init,
        fixed={"components": {1: held}},
        accel=accel,
        tol=1e-13,
        max_iter=3000,
    ).fit(X)
    assert mix.components_[1].rate[0] == 8.0

    def nll(theta):
        w1 = special.expit(theta[0])
        logp = np.stack(
            [
                np.log(1 - w1) + stats.poisson(np.exp(theta[1])).logpmf(x),
                np.log(w1) + stats.poisson(8.0).logpmf(x),
            ]
        )
        return -special.logsumexp(logp, axis=0).sum()

    res = optimize.minimize(nll, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(mix.weights_[1], special.expit(res.x[0]), rtol=1e-6)
    np.testing.assert_allclose(mix.components_[0].rate[0], np.exp(res.x[1]), rtol=1e-6)
    assert mix.loglik_ == pytest.approx(-res.fun, rel=1e-10)


@pytest.mark.parametrize(
    "options", [{"variant": "online", "batch_size": 64, "max_iter": 4}, {"variant": "hard"}]
)
def test_mixture_fixed_component_by_name_under_variants(options):
    X = poisson_data()
    init = {
        "weights": [0.5, 0.5],
        "components": [PoissonParams(np.array([1.0])), PoissonParams(np.array([7.5]))],
    }
    mix = Mixture(
        Poisson(), 2, init=init, fixed=["components[1]", "weights"], random_state=0, **options
    ).fit(X)
    assert mix.components_[1].rate[0] == 7.5
    np.testing.assert_array_equal(mix.weights_, [0.5, 0.5])
    assert mix.components_[0].rate[0] != 1.0


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "fixed, error, match",
    [
        ({"weights": [0.5, 0.6]}, ValueError, "sum to 1"),
        ({"weights": [1.0]}, ValueError, "shape"),
        ({"means": [[0.0, 0.0]]}, ValueError, "shape"),
        ({"covariances": np.zeros((2, 2, 2))}, ValueError, "positive definite"),
        (
            {"covariances": np.stack([np.eye(2)] * 2), "precisions": np.stack([np.eye(2)] * 2)},
            ValueError,
            "not both",
        ),
        ({"scales": 1.0}, ValueError, "scales"),
        (["mean"], ValueError, "mean"),
        (["covariances", "precisions"], ValueError, "twice"),
        ("weights", TypeError, "fixed"),
    ],
)
def test_bad_fixed_values_leave_the_previous_fit(fixed, error, match):
    X = two_clusters()
    gm = GaussianMixture(2, random_state=0).fit(X)
    before = gm.means_.copy()
    gm.set_params(fixed=fixed)
    with pytest.raises(error, match=match):
        gm.fit(X)
    np.testing.assert_array_equal(gm.means_, before)


def test_bad_fixed_on_the_other_mixtures():
    X = poisson_data()
    with pytest.raises(ValueError, match="index"):
        Mixture(Poisson(), 2, fixed={"components": {2: PoissonParams(np.array([1.0]))}}).fit(X)
    with pytest.raises(ValueError, match=r"components\[1\].*shape"):
        Mixture(Poisson(), 2, fixed={"components": {1: PoissonParams(np.array([1.0, 2.0]))}}).fit(X)
    with pytest.raises(ValueError, match="unknown"):
        Mixture(Poisson(), 2, fixed=["components[7]"]).fit(X)
    Xt = two_clusters()
    with pytest.raises(ValueError, match="dofs"):
        StudentTMixture(2, fixed={"dofs": [-1.0, 3.0]}).fit(Xt)
    with pytest.raises(ValueError, match="share"):
        Mixture(emkit.distributions.Gaussian("tied"), 2, fixed=["components[0]"]).fit(Xt)


def test_fixed_is_a_hyper_parameter(tmp_path):
    X = two_clusters()
    fixed = {"weights": np.array([0.3, 0.7]), "means": np.array([[-1.0, 0.5], [2.0, -1.0]])}
    gm = GaussianMixture(2, fixed=fixed, random_state=0)
    assert gm.get_params()["fixed"] is fixed
    copy = clone(gm).fit(X)
    gm.fit(X)
    np.testing.assert_array_equal(copy.covariances_, gm.covariances_)
    gm.save(tmp_path / "gm.npz")
    loaded = emkit.load(tmp_path / "gm.npz")
    np.testing.assert_array_equal(loaded.fixed["means"], fixed["means"])
    np.testing.assert_array_equal(loaded.fit(X).covariances_, gm.covariances_)
    named = GaussianMixture(2, fixed=["weights"], random_state=0).fit(X)
    named.save(tmp_path / "named.npz")
    assert list(emkit.load(tmp_path / "named.npz").fixed) == ["weights"]


def test_partial_fit_keeps_fixed_values():
    X = two_clusters(seed=4)
    rng = np.random.default_rng(0)
    covs = np.array([[[1.0, 0.2], [0.2, 0.6]], [[0.4, 0.0], [0.0, 0.8]]])
    gm = GaussianMixture(2, fixed={"weights": [0.3, 0.7], "covariances": covs}, random_state=0)
    for chunk in np.array_split(X[rng.permutation(len(X))], 5):
        gm.partial_fit(chunk)
        np.testing.assert_array_equal(gm.weights_, [0.3, 0.7])
        np.testing.assert_array_equal(gm.covariances_, covs)
    assert gm.n_iter_ == 5


def test_mixture_fixed_components_survive_save_and_load(tmp_path):
    X = poisson_data()
    one = PoissonParams(rate=np.array([8.0]))
    both = [PoissonParams(np.array([2.0])), one]
    for fixed in ({"components": {1: one}, "weights": [0.6, 0.4]}, {"components": both}):
        mix = Mixture(Poisson(), 2, fixed=fixed, random_state=0).fit(X)
        mix.save(tmp_path / "mix.npz")
        loaded = emkit.load(tmp_path / "mix.npz")
        comps = loaded.fixed["components"]
        expected = fixed["components"]
        keys = expected.keys() if isinstance(expected, dict) else range(2)
        for k in keys:
            np.testing.assert_array_equal(comps[k].rate, expected[k].rate)
        refit = loaded.fit(X)
        np.testing.assert_array_equal(refit.weights_, mix.weights_)
        np.testing.assert_array_equal(
            refit.component_arrays_["rate"], mix.component_arrays_["rate"]
        )


@pytest.mark.parametrize("cov_type", ["full", "diag", "tied", "spherical"])
def test_holding_the_free_fit_means_keeps_the_free_fit_with_missing_values(cov_type):
    # The MLE's other parameters maximise the likelihood given the MLE's means: from the
    # free fit, holding its means, EM must stay there (missing values: the held M-step
    # takes conditional moments about the held means).
    X = two_clusters(1e4, seed=8)
    X[np.random.default_rng(1).random(X.shape) < 0.15] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1e4
    free = GaussianMixture(2, covariance_type=cov_type, random_state=0, **TIGHT).fit(X)
    start = {"weights": free.weights_, "means": free.means_, "covariances": free.covariances_}
    held = GaussianMixture(
        2, covariance_type=cov_type, init=start, fixed={"means": free.means_}, **TIGHT
    ).fit(X)
    np.testing.assert_array_equal(held.means_, free.means_)
    # to the free fit's own convergence (its tol and max_iter)
    np.testing.assert_allclose(held.covariances_, free.covariances_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(held.weights_, free.weights_, rtol=1e-6)
