"""Kalman filter and smoother against independent references: dense Gaussian
conditioning over the stacked series, statsmodels' state-space model, and the limit
of a proper start with a growing variance for the exact diffuse start."""

import numpy as np
import pytest
from ssm_cases import blocks, dense_joint, dense_posterior, nile, random_params

from emkit import LinearGaussianSSM
from emkit.models.ssm.kernels import run_kalman
from emkit.models.ssm.model import PARAM_NAMES, SSMParams


def fitted(p: SSMParams, initial="estimate") -> LinearGaussianSSM:
    """An estimator holding the parameters ``p`` (as a fit would leave them)."""
    est = LinearGaussianSSM(len(p.transition), initial=initial)
    for name in PARAM_NAMES:
        setattr(est, f"{name}_", np.array(getattr(p, name), dtype=float))
    est.n_features_in_ = p.observation.shape[0]
    est.converged_, est.n_iter_, est.history_, est.loglik_ = True, 0, np.zeros(0), 0.0
    return est


def with_missing(rng, Y, frac=0.25, whole=(2,)):
    Y = Y.copy()
    Y[rng.random(Y.shape) < frac] = np.nan
    Y[list(whole)] = np.nan
    return Y


@pytest.mark.parametrize("diag_r", [False, True])
@pytest.mark.parametrize("n,p", [(1, 1), (2, 3), (3, 2)])
def test_filter_and_smoother_equal_dense_conditioning(n, p, diag_r):
    rng = np.random.default_rng(10 * n + p)
    params = random_params(rng, n, p, diag_r)
    T = 7
    Y = with_missing(rng, rng.normal(size=(T, p)) * 2)
    est = fitted(params)
    loglik, mean, cov = dense_posterior(params, Y)
    assert est.score(Y) == pytest.approx(loglik, rel=1e-12)
    means, covs = est.smooth(Y)
    np.testing.assert_allclose(means.ravel(), mean, atol=1e-10)
    np.testing.assert_allclose(covs, blocks(cov, n, T), atol=1e-10)
    obs = ~np.isnan(Y)
    out = run_kalman(np.where(obs, Y, 0), obs, np.array([0, T]), params, store=True)
    np.testing.assert_allclose(out.cross_covs[1:], blocks(cov, n, T, lag=1), atol=1e-10)
    # filtered moments: conditioning on the prefix y_1..y_t
    fm, fc = est.filter(Y)
    for t in (0, 3, T - 1):
        Yt = Y.copy()
        Yt[t + 1 :] = np.nan
        _, m_t, c_t = dense_posterior(params, Yt)
        np.testing.assert_allclose(fm[t], m_t[t * n : (t + 1) * n], atol=1e-10)
        np.testing.assert_allclose(fc[t], c_t[t * n : (t + 1) * n, t * n : (t + 1) * n], atol=1e-10)


def test_several_sequences_are_independent():
    rng = np.random.default_rng(3)
    params = random_params(rng, 2, 2)
    seqs = [rng.normal(size=(T, 2)) for T in (5, 2, 6)]
    seqs[2][1] = np.nan
    est = fitted(params)
    assert est.score(seqs) == pytest.approx(
        sum(dense_posterior(params, s)[0] for s in seqs), rel=1e-12
    )
    means, _ = est.smooth(seqs)
    for s, m in zip(seqs, means):
        np.testing.assert_allclose(m.ravel(), dense_posterior(params, s)[1], atol=1e-10)


def test_loglik_equals_statsmodels():
    sm = pytest.importorskip("statsmodels.tsa.statespace.kalman_filter")
    rng = np.random.default_rng(4)
    n, p, T = 2, 3, 40
    params = random_params(rng, n, p)
    Y = rng.normal(size=(T, p)) + 1.0
    Y[5, 1] = np.nan
    Y[9] = np.nan
    kf = sm.KalmanFilter(k_endog=p, k_states=n)
    kf.bind(Y.copy())
    kf["design"], kf["obs_intercept"], kf["obs_cov"] = (
        params.observation,
        params.observation_offset,
        params.observation_cov,
    )
    kf["transition"], kf["state_intercept"], kf["state_cov"] = (
        params.transition,
        params.transition_offset,
        params.transition_cov,
    )
    kf["selection"] = np.eye(n)
    # statsmodels' state a_1 is the prediction for step 1: our first state.
    kf.initialize_known(params.initial_mean, params.initial_cov)
    assert fitted(params).score(Y) == pytest.approx(kf.loglike(), rel=1e-10)


def test_steady_state_reuse_changes_nothing():
    rng = np.random.default_rng(5)
    params = random_params(rng, 3, 4)
    T = 400
    Y = rng.normal(size=(T, 4))
    Y[200, 2] = np.nan  # breaks the steady state once
    obs = ~np.isnan(Y)
    off = np.array([0, 150, T])
    fast = run_kalman(np.where(obs, Y, 0), obs, off, params, store=True)
    slow = run_kalman(np.where(obs, Y, 0), obs, off, params, store=True, rtol=0.0)
    np.testing.assert_allclose(fast.loglik, slow.loglik, rtol=1e-13)
    np.testing.assert_allclose(fast.means, slow.means, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(fast.smoothed_covs, slow.smoothed_covs, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(fast.acc, slow.acc, rtol=1e-11, atol=1e-10)


def test_diffuse_start_is_the_limit_of_a_vague_prior():
    rng = np.random.default_rng(6)
    n, p, T = 2, 2, 12
    params = random_params(rng, n, p)
    params = params._replace(transition=np.array([[1.0, 1.0], [0.0, 1.0]]))
    Y = rng.normal(size=(T, p)).cumsum(axis=0)
    Y[0, 1] = Y[4] = np.nan
    diffuse = fitted(params, initial="diffuse")
    d_means, d_covs = diffuse.smooth(Y)
    d_loglik = diffuse.score(Y)
    for kappa, tol in ((1e5, 1e-3), (1e7, 1e-5)):
        vague = params._replace(initial_mean=np.zeros(n), initial_cov=kappa * np.eye(n))
        loglik, mean, cov = dense_posterior(vague, Y)
        assert loglik + n / 2 * np.log(kappa) == pytest.approx(d_loglik, abs=tol)
        np.testing.assert_allclose(d_means.ravel(), mean, atol=tol * 10)
        np.testing.assert_allclose(d_covs, blocks(cov, n, T), atol=tol * 10)
    # filtered moments once y_1..y_t determine the state; before, NaN and infinite
    vague = fitted(params._replace(initial_mean=np.zeros(n), initial_cov=1e7 * np.eye(n)))
    fm, fc = diffuse.filter(Y)
    vm, vc = vague.filter(Y)
    assert np.all(np.isnan(fm[0])) and np.all(np.isinf(np.diag(fc[0])))
    np.testing.assert_allclose(fm[1:], vm[1:], atol=1e-4)
    np.testing.assert_allclose(fc[1:], vc[1:], atol=1e-4)


def nile_diffuse_loglik(y, var_eps, var_eta):
    """Durbin & Koopman's diffuse log-likelihood of the local level model (2012,
    sec. 2.10.1 and 7.2): the first observation gives the level exactly, the rest is the
    ordinary prediction-error decomposition (plain scalar loop)."""
    a, P = y[0], var_eps + var_eta
    loglik = -0.5 * np.log(2 * np.pi)
    for obs in y[1:]:
        F = P + var_eps
        v = obs - a
        loglik -= 0.5 * (np.log(2 * np.pi) + np.log(F) + v * v / F)
        K = P / F
        a, P = a + K * v, P * (1 - K) + var_eta
    return loglik


def test_diffuse_local_level_loglik_equals_the_prediction_error_decomposition():
    y = nile()
    one, zero = np.ones((1, 1)), np.zeros(1)
    for var_eps, var_eta in ((15099.0, 1469.1), (3000.0, 9000.0)):
        p = SSMParams(one, zero, one, zero, var_eta * one, var_eps * one, zero, one)
        assert fitted(p, "diffuse").score(y) == pytest.approx(
            nile_diffuse_loglik(y, var_eps, var_eta), rel=1e-12
        )


def test_forecast_equals_dense_conditioning():
    rng = np.random.default_rng(7)
    n, p, T, h = 2, 2, 6, 3
    params = random_params(rng, n, p)
    Y = rng.normal(size=(T, p))
    Y[2, 0] = np.nan
    means, covs = fitted(params).forecast(Y, steps=h)
    _, _, my, Sy, _ = dense_joint(params, T + h)
    o = np.r_[~np.isnan(Y.ravel()), np.zeros(h * p, bool)]
    f = np.r_[np.zeros(T * p, bool), np.ones(h * p, bool)]
    G = np.linalg.solve(Sy[np.ix_(o, o)], Sy[np.ix_(o, f)]).T
    cond_mean = my[f] + G @ (Y.ravel()[~np.isnan(Y.ravel())] - my[o])
    cond_cov = Sy[np.ix_(f, f)] - G @ Sy[np.ix_(o, f)]
    np.testing.assert_allclose(means.ravel(), cond_mean, atol=1e-10)
    np.testing.assert_allclose(covs, blocks(cond_cov, p, h), atol=1e-10)
