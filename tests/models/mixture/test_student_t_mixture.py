"""StudentTMixture: agreement with direct optimisation, scipy.stats and GaussianMixture,
ECM/ECME properties, robustness, persistence, bad input, scikit-learn conventions."""

import copy
import warnings

import numpy as np
import pytest
from scipy import optimize, stats

import emkit
from emkit import GaussianMixture, Mixture, MonotonicityError
from emkit._pytree import tree_leaves
from emkit.distributions import Gaussian, StudentT, StudentTParams
from emkit.engine.ecme import ECME
from emkit.exceptions import ConvergenceWarning, DegenerateComponentWarning
from emkit.models.mixture.model import MixtureModel, MixtureParams
from emkit.models.mixture.student_t import DOF_BOUNDS, StudentTMixture
from emkit.models.mixture.student_t_model import StudentTMixtureModel

COV_TYPES = ["full", "diag"]
ALGORITHMS = ["ecme", "ecm"]


# ---------------------------------------------------------------------- data
def t_mixture_data(rng, n=600, dofs=(3.0, 8.0)):
    """Two correlated 2-D t clusters of unequal sizes, drawn with scipy.stats."""
    n0 = int(0.4 * n)
    a = stats.multivariate_t([-3.0, 0.0], [[1.0, 0.4], [0.4, 0.8]], df=dofs[0]).rvs(
        size=n0, random_state=rng
    )
    b = stats.multivariate_t([2.5, 2.0], [[0.6, -0.2], [-0.2, 1.2]], df=dofs[1]).rvs(
        size=n - n0, random_state=rng
    )
    return np.vstack([a, b])


def mixture_logpdf(X, weights, means, scales, dofs):
    """Log-density of a t mixture from scipy.stats.multivariate_t (the reference)."""
    comps = [
        np.log(w) + stats.multivariate_t.logpdf(X, m, s, df=nu)
        for w, m, s, nu in zip(weights, means, scales, dofs)
    ]
    return np.logaddexp.reduce(np.array(comps), axis=0)


def full_scales(tm):
    cov = np.asarray(tm.covariances_, dtype=np.float64)
    return cov if cov.ndim == 3 else np.stack([np.diag(c) for c in cov])


def with_dofs(params, dofs):
    """``params`` (MixtureParams of t components) with other degrees of freedom."""
    comps = params.components._replace(dof=np.asarray(dofs, dtype=np.float64))
    return params._replace(components=comps)


def quiet_fit(est, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, **kw)


# ---------------------------------------------------------------------- one component
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_one_component_equals_direct_maximisation(cov_type, algorithm):
    rng = np.random.default_rng(1)
    X = stats.multivariate_t([1.0, -2.0], [[2.0, 0.6], [0.6, 1.0]], df=4).rvs(
        size=400, random_state=rng
    )

    # Direct maximisation of sum log t(x; mu, Sigma, nu) with scipy: the scale through a
    # Cholesky factor with log-diagonal (full) or log standard deviations (diag), nu by log.
    def unpack(theta):
        mu = theta[:2]
        if cov_type == "full":
            L = np.array([[np.exp(theta[2]), 0.0], [theta[4], np.exp(theta[3])]])
            return mu, L @ L.T, np.exp(theta[5])
        return mu, np.diag(np.exp(2 * theta[2:4])), np.exp(theta[4])

    def nll(theta):
        mu, scale, nu = unpack(theta)
        return -np.sum(stats.multivariate_t.logpdf(X, mu, scale, df=nu))

    L0 = np.linalg.cholesky(np.cov(X.T))
    if cov_type == "full":
        theta0 = np.r_[X.mean(0), np.log(np.diag(L0)), L0[1, 0], np.log(10.0)]
    else:
        theta0 = np.r_[X.mean(0), np.log(X.std(0)), np.log(10.0)]
    res = optimize.minimize(nll, theta0, method="BFGS", options={"gtol": 1e-8})
    res = optimize.minimize(
        nll, res.x, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000}
    )
    mu_ref, scale_ref, nu_ref = unpack(res.x)

    tm = StudentTMixture(
        1, covariance_type=cov_type, algorithm=algorithm, tol=1e-12, max_iter=5000, reg_covar=0.0
    ).fit(X)
    assert tm.converged_
    assert tm.loglik_ == pytest.approx(-res.fun, rel=1e-6)
    assert tm.loglik_ >= -res.fun - 1e-6  # never worse than the direct optimiser
    np.testing.assert_allclose(tm.means_[0], mu_ref, atol=1e-4)
    np.testing.assert_allclose(full_scales(tm)[0], scale_ref, rtol=1e-3, atol=1e-4)
    assert tm.dofs_[0] == pytest.approx(nu_ref, rel=1e-3)
    # and the reported log-likelihood is scipy's at the fitted parameters
    ref = stats.multivariate_t.logpdf(X, tm.means_[0], full_scales(tm)[0], df=tm.dofs_[0])
    assert tm.loglik_ == pytest.approx(ref.sum(), rel=1e-10)


# ---------------------------------------------------------------------- ECM vs ECME
def test_ecme_needs_fewer_iterations_than_ecm():
    X = t_mixture_data(np.random.default_rng(2), n=800)
    fits = {
        alg: StudentTMixture(
            2, algorithm=alg, tol=1e-7, max_iter=2000, random_state=0, check_monotone="raise"
        ).fit(X)
        for alg in ALGORITHMS
    }
    ecme, ecm = fits["ecme"], fits["ecm"]
    print(
        f"\nECME: {ecme.n_iter_} iterations, {ecme.n_estep_} passes over the data; "
        f"ECM: {ecm.n_iter_} iterations, {ecm.n_estep_} passes"
    )
    assert ecme.converged_ and ecm.converged_
    assert ecme.n_iter_ < ecm.n_iter_
    # the same maximum
    assert ecme.loglik_ == pytest.approx(ecm.loglik_, rel=1e-6)
    order = np.argsort(ecme.means_[:, 0]), np.argsort(ecm.means_[:, 0])
    # (ECM creeps in nu: at the same tol it stops farther from the maximum)
    np.testing.assert_allclose(ecme.dofs_[order[0]], ecm.dofs_[order[1]], rtol=5e-2)
    # ECM makes one pass per iteration (plus the start), ECME a few more
    assert ecm.n_estep_ == ecm.n_iter_ + 1
    assert ecme.n_estep_ > ecme.n_iter_ + 1


def test_ecme_scheme_with_the_engine_directly():
    """emkit.em(model, data) is ECM, emkit.em(..., scheme=ECME()) is ECME; both monotone."""
    X = t_mixture_data(np.random.default_rng(3), n=500)
    model = StudentTMixtureModel(2)
    out = {}
    for name, scheme in (("ecm", None), ("ecme", ECME())):
        out[name] = emkit.em(
            model,
            (X, None),
            tol=1e-9,
            max_iter=3000,
            random_state=4,
            scheme=scheme,
            check_monotone="raise",
        )
        assert np.all(np.diff(out[name].history) >= -1e-9 * np.abs(out[name].history[1:]))
    assert out["ecme"].n_iter < out["ecm"].n_iter
    assert out["ecme"].loglik == pytest.approx(out["ecm"].loglik, rel=1e-7)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_squarem_accelerates_ecm_to_the_same_maximum(cov_type):
    X = t_mixture_data(np.random.default_rng(2), n=800)
    model = StudentTMixtureModel(2, cov_type)
    params = model.init_params((X, None), np.random.default_rng(0))
    back = model.unpack(model.pack(params), params)
    for a, b in zip(tree_leaves(params), tree_leaves(back)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    kw = {"tol": 1e-9, "max_iter": 3000, "random_state": 0, "check_monotone": "raise"}
    ecm = StudentTMixture(2, covariance_type=cov_type, algorithm="ecm", **kw).fit(X)
    fast = StudentTMixture(2, covariance_type=cov_type, algorithm="ecm", accel="squarem", **kw)
    fast.fit(X)
    assert fast.n_iter_ < ecm.n_iter_
    assert np.all(np.diff(fast.history_) >= -1e-9 * np.abs(fast.history_[1:]))
    assert fast.loglik_ == pytest.approx(ecm.loglik_, rel=1e-7)


def test_restarts_on_threads_give_the_same_fit():
    X = t_mixture_data(np.random.default_rng(17), n=300)
    kw = {"n_init": 3, "random_state": 5, "tol": 1e-6}
    serial = StudentTMixture(2, **kw).fit(X)
    threaded = StudentTMixture(2, n_jobs=2, **kw).fit(X)
    np.testing.assert_array_equal(threaded.history_, serial.history_)
    np.testing.assert_array_equal(threaded.dofs_, serial.dofs_)


# ---------------------------------------------------------------------- Gaussian limit
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_huge_fixed_dof_matches_gaussian_mixture(cov_type, algorithm):
    rng = np.random.default_rng(5)
    X = np.vstack(
        [
            rng.normal([-2.0, 0.0, 1.0], [1.0, 0.5, 0.8], size=(150, 3)),
            rng.normal([2.0, 1.0, -1.0], [0.7, 1.2, 0.5], size=(200, 3)),
            rng.normal([0.0, 4.0, 0.0], 0.6, size=(100, 3)),
        ]
    )
    idx = rng.choice(len(X), 3, replace=False)
    start = {
        "weights": np.full(3, 1.0 / 3.0),
        "means": X[idx],
        "covariances": np.stack([np.eye(3)] * 3) if cov_type == "full" else np.ones((3, 3)),
    }
    tm = quiet_fit(
        StudentTMixture(
            3,
            covariance_type=cov_type,
            dof=1e8,
            algorithm=algorithm,
            tol=0.0,
            max_iter=40,
            init=start,
            check_monotone="raise",
        ),
        X,
    )
    gm = quiet_fit(
        GaussianMixture(
            3, covariance_type=cov_type, tol=0.0, max_iter=40, init=start, check_monotone="raise"
        ),
        X,
    )
    # (tol=0: a run may stop earlier once the changes are round-off)
    n = min(tm.n_iter_, gm.n_iter_)
    assert n >= 15
    np.testing.assert_allclose(tm.history_[:n], gm.history_[:n], rtol=1e-6)
    assert tm.loglik_ == pytest.approx(gm.loglik_, rel=1e-6)
    np.testing.assert_allclose(tm.weights_, gm.weights_, atol=1e-5)
    np.testing.assert_allclose(tm.means_, gm.means_, atol=1e-5)
    np.testing.assert_allclose(tm.covariances_, gm.covariances_, atol=1e-5)
    np.testing.assert_allclose(tm.dofs_, 1e8)
    np.testing.assert_allclose(tm.score_samples(X), gm.score_samples(X), rtol=1e-6)


# ---------------------------------------------------------------------- robustness
def test_robust_to_outliers_where_a_gaussian_mixture_is_not():
    rng = np.random.default_rng(0)
    true = np.array([[-3.0, 0.0], [3.0, 0.0]])
    X = np.vstack([rng.normal(true[0], 1.0, (200, 2)), rng.normal(true[1], 1.0, (200, 2))])
    n_out = 21  # 5% of the data
    angle, radius = rng.uniform(0, 2 * np.pi, n_out), rng.uniform(25, 50, n_out)
    X = np.vstack([X, np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])])

    def error(means):
        return min(np.abs(means - true).max(), np.abs(means[::-1] - true).max())

    opts = {"random_state": 0, "n_init": 5, "init": "random_from_data"}
    tm = quiet_fit(StudentTMixture(2, **opts), X)
    gm = quiet_fit(GaussianMixture(2, **opts), X)
    print(f"\nlocation error: t mixture {error(tm.means_):.3f}, Gaussian {error(gm.means_):.3f}")
    assert error(tm.means_) < 0.3
    assert error(gm.means_) > 2.0
    assert tm.loglik_ > gm.loglik_
    # the outliers get small precision weights: they are the least likely points
    assert set(np.argsort(tm.score_samples(X))[:n_out]) == set(range(400, 400 + n_out))


# ---------------------------------------------------------------------- monotonicity
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_loglik_never_decreases(cov_type, algorithm):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X = t_mixture_data(rng, n=300, dofs=(1.5, 20.0))
        X = np.vstack([X, rng.uniform(-30, 30, size=(15, 2))])
        tm = quiet_fit(
            StudentTMixture(
                3,
                covariance_type=cov_type,
                algorithm=algorithm,
                tol=1e-10,
                max_iter=60,
                random_state=seed,
                init="random",
                check_monotone="raise",
            ),
            X,
        )
        h = tm.history_
        assert len(h) == tm.n_iter_
        assert np.all(np.diff(h) >= -1e-9 * (np.abs(h[1:]) + len(X)))
        assert np.all((tm.dofs_ >= DOF_BOUNDS[0]) & (tm.dofs_ <= DOF_BOUNDS[1]))


def test_monotonicity_check_catches_a_wrong_step():
    """The certificate is live: an M-step that scales the wrong way is caught."""

    class Wrong(StudentTMixtureModel):
        def mstep(self, stats, params):
            new = super().mstep(stats, params)
            if params is None:  # the start from responsibilities is an M-step too
                return new
            return new._replace(components=new.components._replace(dof=new.components.dof * 50))

    X = t_mixture_data(np.random.default_rng(6), n=300, dofs=(1.5, 2.0))
    with pytest.raises(MonotonicityError):
        emkit.em(Wrong(2), (X, None), max_iter=20, random_state=0, check_monotone="raise")


# ---------------------------------------------------------------------- one machinery
def _degenerate_warnings(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = fit()
    return est, [str(w.message) for w in caught if w.category is DegenerateComponentWarning]


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_mixture_of_t_reseeds_a_collapsed_component_like_student_t_mixture(cov_type):
    X = t_mixture_data(np.random.default_rng(20), n=400)
    # The third component starts far from every row: it gets no responsibility.
    means = np.array([[-3.0, 0.0], [2.5, 2.0], [1e4, 1e4]])
    covs = np.stack([np.eye(2)] * 3) if cov_type == "full" else np.ones((3, 2))
    dofs = np.array([10.0, 10.0, 10.0])
    weights = [0.4, 0.4, 0.2]

    def fits(max_iter):
        kw = {"max_iter": max_iter, "tol": 0.0, "check_monotone": "raise"}
        start = {"weights": weights, "means": means, "covariances": covs, "dofs": dofs}
        tm, tm_msgs = _degenerate_warnings(
            lambda: quiet_fit(
                StudentTMixture(3, covariance_type=cov_type, algorithm="ecm", init=start, **kw), X
            )
        )
        comps = [StudentTParams(m, c, d) for m, c, d in zip(means, covs, dofs)]
        mix, mix_msgs = _degenerate_warnings(
            lambda: quiet_fit(
                Mixture(
                    StudentT(cov_type), 3, init={"weights": weights, "components": comps}, **kw
                ),
                X,
            )
        )
        return tm, tm_msgs, mix, mix_msgs

    tm, tm_msgs, mix, mix_msgs = fits(1)
    assert len(tm_msgs) == 1 and "component 2 collapsed" in tm_msgs[0]
    assert mix_msgs == tm_msgs
    # the split itself: component 2 and its source share scale, dof and weight, and sit
    # a standard deviation apart along the scale's main axis
    j = int(tm_msgs[0].split("splitting component ")[1][0])
    scale = full_scales(tm)[j]
    vals, vecs = np.linalg.eigh(scale)
    np.testing.assert_allclose(full_scales(tm)[2], scale)
    assert tm.dofs_[2] == tm.dofs_[j] and tm.weights_[2] == pytest.approx(tm.weights_[j])
    gap = tm.means_[2] - tm.means_[j]
    np.testing.assert_allclose(abs(gap @ vecs[:, -1]), np.sqrt(vals[-1]), rtol=1e-10)
    assert abs(gap @ vecs[:, 0]) < 1e-10
    # and both fronts run the same machinery from there
    tm, _, mix, _ = fits(60)
    _assert_same_fit(mix, tm, rtol=1e-7, atol=1e-8)


def _assert_same_fit(mix, tm, rtol, atol=0.0):
    """A Mixture of Student-t components and a StudentTMixture fitted the same."""
    assert mix.n_iter_ == tm.n_iter_
    np.testing.assert_allclose(mix.history_, tm.history_, rtol=1e-10)
    np.testing.assert_allclose(mix.weights_, tm.weights_, rtol=rtol)
    np.testing.assert_allclose(mix.component_arrays_["mean"], tm.means_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(mix.component_arrays_["covariance"], tm.covariances_, rtol=rtol)
    np.testing.assert_allclose(mix.component_arrays_["dof"], tm.dofs_, rtol=rtol)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_mixture_of_t_equals_student_t_mixture_ecm_from_the_same_seed(cov_type):
    # Far from the origin: StudentTMixture centres the data, Mixture does not.
    X = t_mixture_data(np.random.default_rng(21), n=500) + np.array([100.0, -50.0])
    kw = {"random_state": 3, "n_init": 2, "tol": 1e-8, "max_iter": 80}
    mix = quiet_fit(Mixture(StudentT(cov_type), 2, **kw), X)
    tm = quiet_fit(StudentTMixture(2, covariance_type=cov_type, algorithm="ecm", **kw), X)
    _assert_same_fit(mix, tm, rtol=1e-8)
    np.testing.assert_allclose(mix.score_samples(X), tm.score_samples(X), rtol=1e-10)


def test_ecme_is_one_variant_for_every_mixture_front():
    X = t_mixture_data(np.random.default_rng(22), n=500)
    kw = {"random_state": 4, "tol": 1e-8, "max_iter": 60}
    mix = quiet_fit(Mixture(StudentT("full"), 2, variant="ecme", **kw), X)
    tm = quiet_fit(StudentTMixture(2, algorithm="ecme", **kw), X)
    assert mix.n_iter_ == tm.n_iter_
    np.testing.assert_allclose(mix.history_, tm.history_, rtol=1e-9)
    np.testing.assert_allclose(mix.component_arrays_["dof"], tm.dofs_, rtol=1e-6)
    # ECME needs a component with an observed-data step: a Gaussian has none
    with pytest.raises(TypeError, match="observed_step"):
        Mixture(Gaussian("full"), 2, variant="ecme", random_state=0).fit(X)


# ---------------------------------------------------------------------- statistics
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_statistics_are_additive(cov_type, weighted):
    rng = np.random.default_rng(7)
    X = t_mixture_data(rng, n=301)
    w = rng.uniform(0.1, 3.0, len(X)) if weighted else None
    model = StudentTMixtureModel(3, cov_type, block_rows=64)
    params = with_dofs(model.init_params((X, w), rng), [0.7, 4.0, 300.0])
    cut = 137
    parts = [(X[:cut], None if w is None else w[:cut]), (X[cut:], None if w is None else w[cut:])]
    s_all, ll_all = model.estep(params, (X, w))
    s_a, ll_a = model.estep(params, parts[0])
    s_b, ll_b = model.estep(params, parts[1])
    assert ll_a + ll_b == pytest.approx(ll_all, rel=1e-12)
    for whole, a, b in zip(*map(tree_leaves, (s_all, s_a, s_b))):
        np.testing.assert_allclose(a + b, whole, rtol=1e-10, atol=1e-10)
    (g_all, h_all), v_all = model.dof_derivatives(params, (X, w))
    (g_a, h_a), v_a = model.dof_derivatives(params, parts[0])
    (g_b, h_b), v_b = model.dof_derivatives(params, parts[1])
    assert v_a + v_b == pytest.approx(v_all, rel=1e-12)
    assert v_all == pytest.approx(ll_all, rel=1e-12)
    np.testing.assert_allclose(g_a + g_b, g_all, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(h_a + h_b, h_all, rtol=1e-10, atol=1e-10)


def test_estep_loglik_and_dof_derivatives_match_scipy():
    rng = np.random.default_rng(8)
    X = t_mixture_data(rng, n=200)
    model = StudentTMixtureModel(2, "full")
    params = with_dofs(model.init_params((X, None), rng), [2.5, 7.0])
    p = model.arrays(params)
    ref = mixture_logpdf(X, p["weights"], p["means"], p["covariances"], p["dofs"]).sum()
    _, ll = model.estep(params, (X, None))
    assert ll == pytest.approx(ref, rel=1e-12)

    # gradient and Hessian in log-dofs against central differences of scipy's likelihood
    def loglik(eta):
        return mixture_logpdf(X, p["weights"], p["means"], p["covariances"], np.exp(eta)).sum()

    (grad, hess), _ = model.dof_derivatives(params, (X, None))
    eta, h = np.log(p["dofs"]), 1e-4
    num_grad = np.array([(loglik(eta + h * e) - loglik(eta - h * e)) / (2 * h) for e in np.eye(2)])
    np.testing.assert_allclose(grad, num_grad, rtol=1e-5, atol=1e-6)
    num_hess = np.empty((2, 2))
    for i, ei in enumerate(np.eye(2)):
        for j, ej in enumerate(np.eye(2)):
            num_hess[i, j] = (
                loglik(eta + h * ei + h * ej)
                - loglik(eta + h * ei - h * ej)
                - loglik(eta - h * ei + h * ej)
                + loglik(eta - h * ei - h * ej)
            ) / (4 * h * h)
    np.testing.assert_allclose(hess, num_hess, rtol=1e-3, atol=1e-3)


def test_batches_give_the_same_fit():
    X = t_mixture_data(np.random.default_rng(9), n=500)
    kw = {"tol": 1e-8, "max_iter": 300, "random_state": 1}
    one = StudentTMixture(2, **kw).fit(X)
    chunked = StudentTMixture(2, batch_size=64, **kw).fit(X)
    assert one.n_iter_ == chunked.n_iter_
    np.testing.assert_allclose(chunked.history_, one.history_, rtol=1e-10)
    np.testing.assert_allclose(chunked.dofs_, one.dofs_, rtol=1e-6)
    np.testing.assert_allclose(chunked.means_, one.means_, atol=1e-8)


def test_sample_weights_count_rows():
    rng = np.random.default_rng(10)
    X = t_mixture_data(rng, n=200)
    counts = rng.integers(0, 3, len(X))
    start = {
        "weights": [0.5, 0.5],
        "means": [[-3.0, 0.0], [2.5, 2.0]],
        "covariances": np.stack([np.eye(2)] * 2),
        "dofs": [5.0, 5.0],
    }
    kw = {"tol": 1e-10, "max_iter": 500, "init": start}
    weighted = StudentTMixture(2, **kw).fit(X, sample_weight=counts)
    repeated = StudentTMixture(2, **kw).fit(np.repeat(X, counts, axis=0))
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, rel=1e-8)
    np.testing.assert_allclose(weighted.means_, repeated.means_, atol=1e-5)
    np.testing.assert_allclose(weighted.dofs_, repeated.dofs_, rtol=1e-4)


# ---------------------------------------------------------------------- recovery
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_recovers_known_parameters(cov_type):
    rng = np.random.default_rng(11)
    weights = np.array([0.35, 0.65])
    means = np.array([[-4.0, 1.0], [3.0, -1.0]])
    if cov_type == "full":
        scales = np.array([[[1.0, 0.5], [0.5, 1.5]], [[0.8, -0.3], [-0.3, 0.5]]])
    else:
        scales = np.array([np.diag([1.0, 1.5]), np.diag([0.8, 0.5])])
    dofs = np.array([3.0, 12.0])
    n = 6000
    counts = rng.multinomial(n, weights)
    X = np.vstack(
        [
            stats.multivariate_t(means[k], scales[k], df=dofs[k]).rvs(counts[k], random_state=rng)
            for k in range(2)
        ]
    )
    tm = StudentTMixture(2, covariance_type=cov_type, tol=1e-8, max_iter=500, random_state=0)
    tm.fit(X)
    order = np.argsort(tm.means_[:, 0])  # labels up to permutation
    np.testing.assert_allclose(tm.weights_[order], weights, atol=0.02)
    np.testing.assert_allclose(tm.means_[order], means, atol=0.08)
    np.testing.assert_allclose(full_scales(tm)[order], scales, atol=0.12)
    assert 2.4 < tm.dofs_[order][0] < 3.8
    assert 7.0 < tm.dofs_[order][1] < 25.0
    # the fit beats the true parameters on its own data (it is the maximiser)
    assert tm.loglik_ >= mixture_logpdf(X, weights, means, scales, dofs).sum()


# ---------------------------------------------------------------------- predictions
def test_predictions_agree_with_scipy():
    rng = np.random.default_rng(12)
    X = t_mixture_data(rng, n=300)
    tm = StudentTMixture(2, random_state=0).fit(X)
    Y = rng.normal(size=(50, 2)) * 4
    ref = mixture_logpdf(Y, tm.weights_, tm.means_, full_scales(tm), tm.dofs_)
    np.testing.assert_allclose(tm.score_samples(Y), ref, rtol=1e-10)
    assert tm.score(Y) == pytest.approx(ref.mean(), rel=1e-10)
    joint = np.array(
        [
            np.log(w) + stats.multivariate_t.logpdf(Y, m, s, df=nu)
            for w, m, s, nu in zip(tm.weights_, tm.means_, full_scales(tm), tm.dofs_)
        ]
    ).T
    np.testing.assert_allclose(tm.predict_proba(Y), np.exp(joint - ref[:, None]), atol=1e-12)
    np.testing.assert_array_equal(tm.predict(Y), joint.argmax(axis=1))
    K, D = 2, 2
    n_params = (K - 1) + K * D + K * D * (D + 1) // 2 + K
    ll = tm.score_samples(X).sum()
    assert tm.bic(X) == pytest.approx(-2 * ll + n_params * np.log(len(X)))
    assert tm.aic(X) == pytest.approx(-2 * ll + 2 * n_params)
    assert tm.icl(X) >= tm.bic(X)
    assert tm.loglik_ == pytest.approx(ll, rel=1e-10)
    fixed = StudentTMixture(2, dof=5.0, random_state=0).fit(X)
    assert fixed.bic(X) == pytest.approx(
        -2 * fixed.score_samples(X).sum() + (n_params - K) * np.log(len(X))
    )
    np.testing.assert_array_equal(StudentTMixture(2, random_state=0).fit_predict(X), tm.predict(X))


def test_sample_has_t_marginals():
    tm = StudentTMixture(1, random_state=0)
    tm.weights_ = np.array([1.0])
    tm.means_ = np.array([[1.0, -1.0]])
    tm.covariances_ = np.array([[[4.0, 1.0], [1.0, 2.0]]])
    tm.precisions_cholesky_ = np.triu(np.linalg.inv(np.linalg.cholesky(tm.covariances_[0])).T)[None]
    tm.dofs_ = np.array([3.0])
    tm.n_features_in_ = 2
    for name in ("converged_", "n_iter_", "history_", "loglik_"):
        setattr(tm, name, None)
    X, labels = tm.sample(20000)
    assert X.shape == (20000, 2) and np.all(labels == 0)
    # each marginal is a univariate t(3) with scale sqrt(Sigma_jj)
    for j, scale in enumerate(np.sqrt([4.0, 2.0])):
        z = (X[:, j] - tm.means_[0, j]) / scale
        assert stats.kstest(z, stats.t(df=3).cdf).pvalue > 1e-3
    # the same random_state gives the same draws
    np.testing.assert_array_equal(tm.sample(10)[0], tm.sample(10)[0])
    two = StudentTMixture(2, random_state=1).fit(t_mixture_data(np.random.default_rng(0)))
    Xs, ys = two.sample(1000)
    assert Xs.shape == (1000, 2) and np.bincount(ys, minlength=2).sum() == 1000


# ---------------------------------------------------------------------- persistence
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_save_load_round_trip(tmp_path, cov_type):
    X = t_mixture_data(np.random.default_rng(13), n=300)
    tm = StudentTMixture(2, covariance_type=cov_type, random_state=0).fit(X)
    path = tmp_path / "t.npz"
    tm.save(path)
    back = emkit.load(path)
    assert type(back) is StudentTMixture
    assert back.get_params() == tm.get_params()
    for name in (*StudentTMixture._fitted_attributes, "n_estep_", "lower_bound_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tm, name))
    np.testing.assert_array_equal(back.score_samples(X), tm.score_samples(X))
    # a dict init round-trips too
    start = {"means": tm.means_, "dofs": tm.dofs_}
    tm2 = StudentTMixture(2, covariance_type=cov_type, init=start).fit(X)
    tm2.save(path)
    back2 = emkit.load(path)
    np.testing.assert_array_equal(back2.init["dofs"], tm.dofs_)


def test_load_rejects_inconsistent_dofs(tmp_path):
    tm = StudentTMixture(2, random_state=0).fit(t_mixture_data(np.random.default_rng(14), n=200))
    tm.dofs_ = np.array([1.0, 2.0, 3.0])
    tm.save(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="corrupt"):
        emkit.load(tmp_path / "bad.npz")


# ---------------------------------------------------------------------- starting points
def test_init_dict_and_warm_start():
    X = t_mixture_data(np.random.default_rng(15), n=400)
    ref = StudentTMixture(2, tol=1e-9, max_iter=500, random_state=0).fit(X)
    start = {
        "weights": ref.weights_,
        "means": ref.means_,
        "covariances": ref.covariances_,
        "dofs": ref.dofs_,
    }
    again = StudentTMixture(2, tol=1e-6, init=start).fit(X)
    assert again.n_iter_ <= 2
    assert again.loglik_ == pytest.approx(ref.loglik_, rel=1e-9)
    warm = StudentTMixture(2, tol=1e-6, max_iter=500, random_state=0, warm_start=True)
    warm.fit(X)
    first = warm.n_iter_
    warm.fit(X)
    assert warm.n_iter_ <= 2 < first
    # starting dofs outside the bounds are clipped into them
    huge = StudentTMixture(2, max_iter=0, init={**start, "dofs": [1e9, 1e-9]}).fit(X)
    np.testing.assert_array_equal(huge.dofs_, DOF_BOUNDS[::-1])


# ---------------------------------------------------------------------- bad input
def _good():
    return t_mixture_data(np.random.default_rng(16), n=60)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dof": 0.0}, ValueError, "dof"),
        ({"dof": -2}, ValueError, "dof"),
        ({"dof": np.inf}, ValueError, "dof"),
        ({"dof": "auto"}, ValueError, "dof"),
        ({"dof": True}, TypeError, "dof"),
        ({"dof": [3.0]}, TypeError, "dof"),
        ({"algorithm": "em"}, ValueError, "algorithm"),
        ({"covariance_type": "tied"}, ValueError, "covariance_type"),
        ({"covariance_type": "spherical"}, ValueError, "covariance_type"),
        ({"n_components": 0}, ValueError, "n_components"),
        ({"n_components": 61}, ValueError, "n_components"),
        ({"n_components": 2.0}, TypeError, "n_components"),
        ({"init": "nope"}, ValueError, "init"),
        ({"init": 3}, TypeError, "init"),
        ({"accel": "fast"}, ValueError, "accel"),
        ({"accel": "squarem", "algorithm": "ecme"}, ValueError, "ecme"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"reg_covar": -1.0}, ValueError, "reg_covar"),
        ({"max_iter": -1}, ValueError, "max_iter"),
        ({"n_init": 0}, ValueError, "n_init"),
        ({"check_monotone": "maybe"}, ValueError, "check_monotone"),
        ({"n_components": 2, "init": {"weights": [1.0]}}, ValueError, "weights"),
        ({"n_components": 2, "init": {"means": np.zeros((2, 3))}}, ValueError, "means"),
        ({"n_components": 2, "init": {"covariances": np.ones((2, 2))}}, ValueError, "covar"),
        ({"n_components": 2, "init": {"dofs": [1.0, 2.0, 3.0]}}, ValueError, "dofs"),
        ({"n_components": 2, "init": {"dofs": [1.0, -2.0]}}, ValueError, "dofs"),
        ({"n_components": 2, "init": {"dofs": [4.0, 4.0]}, "dof": 5.0}, ValueError, "dof"),
        ({"n_components": 2, "init": {"scales": 1.0}}, ValueError, "unknown"),
    ],
)
def test_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        StudentTMixture(**kwargs).fit(_good())


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), "infinity"),
        (np.zeros(5), "2D"),
        (np.zeros((1, 2)), "sample"),
        (np.zeros((5, 0)), "feature"),
    ],
)
def test_bad_data(X, match):
    with pytest.raises(ValueError, match=match):
        StudentTMixture().fit(X)


def test_model_rejects_bad_options():
    with pytest.raises(ValueError, match="covariance_type"):
        StudentTMixtureModel(2, "tied")
    with pytest.raises(ValueError, match="dof"):
        StudentTMixtureModel(2, dof=-1.0)
    with pytest.raises(ValueError, match="dof_bounds"):
        StudentTMixtureModel(2, dof_bounds=(1.0, 0.5))


def test_failed_fit_leaves_previous_fit_untouched(monkeypatch):
    X = _good()
    tm = StudentTMixture(2, random_state=0).fit(X)
    before = {name: copy.deepcopy(getattr(tm, name)) for name in tm._fitted_attributes}
    bad_X = X.copy()
    bad_X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tm.fit(bad_X)
    tm.set_params(init={"means": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="means"):
        tm.fit(X)
    tm.set_params(init="kmeans++")

    def explode(self, params, evaluate):  # a failure in the middle of the ECME iterations
        raise FloatingPointError("boom")

    monkeypatch.setattr(MixtureModel, "_observed_step", explode)
    with pytest.raises(FloatingPointError, match="boom"):
        tm.fit(X)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(tm, name), value)
    with pytest.raises(ValueError, match="features"):
        tm.predict(np.zeros((3, 5)))


def test_verbose_prints_iterations_and_a_summary(capsys):
    quiet_fit(StudentTMixture(2, verbose=2, max_iter=3, tol=0.0, random_state=0), _good())
    out = capsys.readouterr().out
    assert out.count("iteration") == 4  # the start and three steps
    assert "StudentTMixture: K=2 full ECME" in out


def test_unfitted_estimator_raises():
    with pytest.raises(emkit.NotFittedError):
        StudentTMixture().predict(np.zeros((3, 2)))
    with pytest.raises(emkit.NotFittedError):
        StudentTMixture().sample(3)


def test_params_are_plain_pytrees():
    model = StudentTMixtureModel(2, "diag", dof=4.0)
    X = _good()
    params = model.init_params((X, None), np.random.default_rng(0))
    assert isinstance(params, MixtureParams)
    assert isinstance(params.components, StudentTParams)
    np.testing.assert_array_equal(params.components.dof, [4.0, 4.0])
    assert params.components.covariance.shape == (2, 2)


# ---------------------------------------------------------------------- scikit-learn
sklearn_checks = pytest.importorskip("sklearn.utils.estimator_checks")


@sklearn_checks.parametrize_with_checks(
    [
        StudentTMixture(),
        StudentTMixture(n_components=2, covariance_type="diag", algorithm="ecm"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
