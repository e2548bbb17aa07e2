"""The Student-t distribution block: densities against scipy.stats, EM steps against a
direct maximisation of the t likelihood, and the StudentTMixture estimator's ECM."""

import numpy as np
import pytest
from scipy import optimize, stats

from emkit import Mixture, StudentTMixture
from emkit._pytree import tree_add, tree_leaves
from emkit.distributions import StudentT, StudentTParams
from emkit.distributions.student_t import DOF_BOUNDS, solve_dofs

pytestmark = pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")


def random_params(rng, K=2, D=3, cov_type="full"):
    A = rng.normal(size=(K, D, D))
    full = A @ np.swapaxes(A, 1, 2) + D * np.eye(D)
    cov = full if cov_type == "full" else np.diagonal(full, axis1=1, axis2=2).copy()
    return StudentTParams(rng.normal(size=(K, D)), cov, rng.uniform(1.0, 20.0, size=K))


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_log_prob_matches_scipy(cov_type):
    rng = np.random.default_rng(0)
    t = StudentT(cov_type)
    p = random_params(rng, cov_type=cov_type)
    X = rng.normal(size=(30, 3)) * 3
    got = t.log_prob(p, t.validate(X))
    for k in range(2):
        cov = p.covariance[k] if cov_type == "full" else np.diag(p.covariance[k])
        ref = stats.multivariate_t(p.mean[k], cov, df=p.dof[k]).logpdf(X)
        np.testing.assert_allclose(got[:, k], ref, rtol=1e-10)


def test_em_reaches_the_direct_maximum_likelihood():
    # One component in 2-D: maximise the t log-likelihood over location, Cholesky
    # factor of the scale and log dof with scipy, and compare with EM's fixed point.
    rng = np.random.default_rng(1)
    X = rng.standard_t(4.0, size=(400, 2)) @ np.array([[1.0, 0.4], [0.0, 0.8]]) + [1.0, -2.0]
    t = StudentT("full", reg_covar=0.0)
    w = np.ones((400, 1))
    p = t.init_params(X, w)
    for _ in range(3000):
        p = t.mstep(t.suff_stats(X, w, p))
    em_ll = t.log_prob(p, X).sum()

    def negll(theta):
        L = np.array([[np.exp(theta[2]), 0.0], [theta[3], np.exp(theta[4])]])
        return -stats.multivariate_t(theta[:2], L @ L.T, df=np.exp(theta[5])).logpdf(X).sum()

    L = np.linalg.cholesky(p.covariance[0])
    start = np.r_[p.mean[0], np.log(L[0, 0]), L[1, 0], np.log(L[1, 1]), np.log(p.dof[0])] + 0.05
    res = optimize.minimize(negll, start, method="BFGS", options={"gtol": 1e-8})
    assert em_ll == pytest.approx(-res.fun, rel=1e-9)
    assert p.dof[0] == pytest.approx(np.exp(res.x[5]), rel=1e-3)


def test_dof_root_solves_the_score_equation():
    from scipy.special import digamma

    c = np.array([-1.05, -1.5, -3.0])
    nu = solve_dofs(c)
    np.testing.assert_allclose(np.log(nu / 2) - digamma(nu / 2) + 1 + c, 0.0, atol=1e-10)


def test_statistics_add_over_any_split():
    rng = np.random.default_rng(2)
    t = StudentT("full")
    p = random_params(rng)
    X = rng.normal(size=(90, 3))
    w = rng.uniform(size=(90, 2))
    whole = t.suff_stats(X, w, p)
    parts = tree_add(t.suff_stats(X[:31], w[:31], p), t.suff_stats(X[31:], w[31:], p))
    for a, b in zip(whole, parts):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_mixture_of_t_equals_the_student_t_mixture_ecm():
    rng = np.random.default_rng(3)
    X = np.vstack(
        [
            rng.standard_t(3.0, size=(300, 2)),
            rng.standard_t(5.0, size=(200, 2)) + np.array([6.0, 2.0]),
        ]
    )
    means = np.array([[0.5, 0.0], [5.0, 1.5]])
    covs = np.stack([np.eye(2)] * 2)
    dofs = np.array([10.0, 10.0])
    kw = dict(tol=0.0, max_iter=25, check_monotone="raise")
    mix = Mixture(
        StudentT("full"),
        2,
        init={
            "weights": [0.5, 0.5],
            "components": [StudentTParams(m, c, d) for m, c, d in zip(means, covs, dofs)],
        },
        **kw,
    ).fit(X)
    ref = StudentTMixture(
        2,
        algorithm="ecm",
        init={"weights": [0.5, 0.5], "means": means, "covariances": covs, "dofs": dofs},
        **kw,
    ).fit(X)
    np.testing.assert_allclose(mix.component_arrays_["mean"], ref.means_, rtol=1e-8)
    np.testing.assert_allclose(mix.component_arrays_["covariance"], ref.covariances_, rtol=1e-7)
    np.testing.assert_allclose(mix.component_arrays_["dof"], ref.dofs_, rtol=1e-7)
    assert mix.score(X) == pytest.approx(ref.score(X), rel=1e-10)


def test_sample_has_the_t_moments():
    rng = np.random.default_rng(4)
    t = StudentT("full")
    p = StudentTParams(np.array([1.0, -1.0]), np.array([[2.0, 0.5], [0.5, 1.0]]), np.array(8.0))
    draws = t.sample(p, 200000, rng)
    np.testing.assert_allclose(draws.mean(axis=0), p.mean, atol=0.02)
    np.testing.assert_allclose(np.cov(draws.T), p.covariance * 8.0 / 6.0, rtol=0.05)


def test_bad_inputs():
    with pytest.raises(ValueError, match="'full' or 'diag'"):
        StudentT("tied")
    with pytest.raises(ValueError, match="dof"):
        StudentT(dof=-1.0)
    with pytest.raises(ValueError, match="missing values"):
        StudentT().validate([[1.0, np.nan]])
    with pytest.raises(ValueError, match="dof_bounds"):
        StudentT(dof_bounds=(2.0, 1.0))
    assert StudentT("diag").n_parameters(3, 4) == 12 + 12 + 3
    assert StudentT("full", dof=5.0).n_parameters(3, 4) == 12 + 30


def test_statistics_without_params_start_from_gaussian_moments():
    # Without params the weights u are 1: an M-step gives the weighted means and
    # (biased) covariances, compared with numpy's, and the starting degrees of freedom.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3)) @ rng.normal(size=(3, 3)) + 2.0
    resp = rng.dirichlet([1.0, 1.0], size=60)
    t = StudentT("full", reg_covar=0.0)
    stats = t.suff_stats(X, resp)
    np.testing.assert_allclose(stats.uk, resp.sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(stats.nk, resp.sum(axis=0), rtol=1e-14)
    params = t.init_params(X, resp)
    for k in range(2):
        np.testing.assert_allclose(params.mean[k], np.average(X, axis=0, weights=resp[:, k]))
        ref = np.cov(X.T, aweights=resp[:, k], bias=True)
        np.testing.assert_allclose(params.covariance[k], ref, rtol=1e-10)
    np.testing.assert_array_equal(params.dof, [10.0, 10.0])
    assert np.all(StudentT(dof=4.0).init_params(X, resp).dof == 4.0)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
@pytest.mark.parametrize("dof", ["estimate", 5.0])
def test_pack_unpack_round_trip(cov_type, dof):
    rng = np.random.default_rng(6)
    t = StudentT(cov_type, dof=dof)
    p = random_params(rng, K=3, D=2, cov_type=cov_type)
    if dof != "estimate":
        p = p._replace(dof=np.full(3, dof))
    vec = t.pack(p)
    n_dofs = 3 if dof == "estimate" else 0
    assert vec.shape == (3 * 2 + t.structure.n_packed(3, 2) + n_dofs,)
    for a, b in zip(tree_leaves(p), tree_leaves(t.unpack(vec, p))):
        np.testing.assert_allclose(b, a, rtol=1e-12)
    with pytest.raises(ValueError, match="length"):
        t.unpack(vec[:-1], p)


def test_dof_root_from_a_start_is_the_same_root():
    c = np.array([-1.05, -1.5, -3.0, -1.0 - 1e-9, -80.0])
    ref = solve_dofs(c)
    assert ref[3] == DOF_BOUNDS[1] and ref[4] == DOF_BOUNDS[0]
    for start in (ref, ref * 1.01, np.full(5, 0.2), np.full(5, 1e5), np.full(5, 1e9)):
        np.testing.assert_allclose(solve_dofs(c, start=start), ref, rtol=1e-12)


def test_mixture_estep_matches_log_prob_and_suff_stats():
    # The fused E-step equals posteriors from log_prob and suff_stats weighted by them.
    rng = np.random.default_rng(7)
    t = StudentT("diag")
    p = random_params(rng, K=3, D=2, cov_type="diag")
    X = rng.normal(size=(500, 2)) * 3
    w = rng.uniform(0.5, 2.0, 500)
    log_w = np.log([0.2, 0.3, 0.5])
    t.block_rows = 64  # several blocks
    nk, stats, value = t.mixture_estep(p, log_w, (X, w))
    joint = t.log_prob(p, X) + log_w
    ll = np.logaddexp.reduce(joint, axis=1)
    resp = np.exp(joint - ll[:, None]) * w[:, None]
    assert value == pytest.approx(np.dot(w, ll), rel=1e-12)
    np.testing.assert_allclose(nk, resp.sum(axis=0), rtol=1e-12)
    for a, b in zip(stats, t.suff_stats(X, resp, p)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
