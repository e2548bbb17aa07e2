"""EM for the state-space model: pykalman's EM path from the same start, the Nile
local level against a direct maximisation of the diffuse likelihood (and Durbin &
Koopman's published estimates), parameter recovery, monotonicity with missing
values, additivity of the statistics, held parameters and invariance to offsets."""

import itertools
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from ssm_cases import as_fixed, nile, random_params, sample
from test_ssm_inference import nile_diffuse_loglik

import emkit
from emkit import LinearGaussianSSM
from emkit.data.sequences import SequenceBatch
from emkit.models.ssm.model import LinearGaussianSSMModel, SSMParams

ONE, ZERO = [[1.0]], [0.0]
LOCAL_LEVEL = {
    "transition": ONE,
    "observation": ONE,
    "transition_offset": ZERO,
    "observation_offset": ZERO,
}


def quiet_fit(model, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        return model.fit(Y)


def test_em_path_equals_pykalman():
    pykalman = pytest.importorskip("pykalman")
    rng = np.random.default_rng(0)
    n, p, T, iters = 2, 3, 300, 8
    truth = random_params(rng, n, p)._replace(
        transition_offset=np.zeros(n), observation_offset=np.zeros(p)
    )
    Y, _ = sample(rng, truth, T)
    start = random_params(np.random.default_rng(1), n, p)
    start = start._replace(transition_offset=np.zeros(n), observation_offset=np.zeros(p))
    kf = pykalman.KalmanFilter(
        transition_matrices=start.transition,
        observation_matrices=start.observation,
        transition_covariance=start.transition_cov,
        observation_covariance=start.observation_cov,
        transition_offsets=start.transition_offset,
        observation_offsets=start.observation_offset,
        initial_state_mean=start.initial_mean,
        initial_state_covariance=start.initial_cov,
    )
    em_vars = [
        "transition_matrices",
        "observation_matrices",
        "transition_covariance",
        "observation_covariance",
        "initial_state_mean",
        "initial_state_covariance",
    ]
    theirs = []
    for _ in range(iters):
        kf = kf.em(Y, n_iter=1, em_vars=em_vars)
        theirs.append(kf.loglikelihood(Y))
    init = start._asdict()
    ours = quiet_fit(
        LinearGaussianSSM(
            n,
            init=init,
            fixed=as_fixed(start, ["transition_offset", "observation_offset"]),
            max_iter=iters,
            tol=0.0,
            check_monotone="raise",
        ),
        Y,
    )
    np.testing.assert_allclose(ours.history_, theirs, rtol=1e-6)
    np.testing.assert_allclose(ours.transition_, kf.transition_matrices, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.observation_cov_, kf.observation_covariance, rtol=1e-5)
    assert np.all(ours.transition_offset_ == 0) and np.all(ours.observation_offset_ == 0)


def test_nile_local_level_reaches_the_diffuse_maximum_likelihood():
    y = nile()
    model = LinearGaussianSSM(
        fixed=LOCAL_LEVEL, initial="diffuse", tol=1e-12, max_iter=5000, check_monotone="raise"
    ).fit(y)
    assert model.converged_
    assert model.transition_.tolist() == model.observation_.tolist() == [[1.0]]
    assert model.transition_offset_.tolist() == model.observation_offset_.tolist() == [0.0]

    def nll(log_vars):
        return -nile_diffuse_loglik(y, *np.exp(log_vars))

    direct = minimize(nll, np.log([10000.0, 1000.0]), method="Nelder-Mead",
                      options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})  # fmt: skip
    var_eps, var_eta = np.exp(direct.x)
    assert model.observation_cov_[0, 0] == pytest.approx(var_eps, rel=1e-4)
    assert model.transition_cov_[0, 0] == pytest.approx(var_eta, rel=1e-4)
    assert model.loglik_ == pytest.approx(-direct.fun, abs=1e-7)
    # Durbin & Koopman (2012, sec. 2.10.3): 15099 and 1469.1
    assert model.observation_cov_[0, 0] == pytest.approx(15099, rel=1e-3)
    assert model.transition_cov_[0, 0] == pytest.approx(1469.1, rel=1e-3)
    fast = LinearGaussianSSM(fixed=LOCAL_LEVEL, initial="diffuse", tol=1e-12, max_iter=5000,
                             accel="squarem").fit(y)  # fmt: skip
    assert fast.loglik_ == pytest.approx(model.loglik_, abs=1e-7)
    assert fast.n_iter_ < model.n_iter_


def test_recovers_parameters_from_several_sequences():
    rng = np.random.default_rng(2)
    n = 2
    truth = SSMParams(
        np.array([[0.8, 0.2], [-0.2, 0.7]]), np.array([0.5, -0.3]),
        np.array([[1.0, 0.0], [0.0, 1.0], [0.6, -0.4]]), np.array([1.0, -2.0, 0.5]),
        np.array([[0.5, 0.1], [0.1, 0.3]]), np.diag([0.2, 0.3, 0.25]),
        np.zeros(n), np.eye(n),
    )  # fmt: skip
    seqs = [sample(rng, truth, 1000)[0] for _ in range(8)]
    seqs[0][rng.random(seqs[0].shape) < 0.2] = np.nan
    # The state's scale and basis are not identified: fix C (and d) to the truth.
    fixed = as_fixed(truth, ["observation", "observation_offset"])
    model = LinearGaussianSSM(n, fixed=fixed, observation_cov_type="diag", tol=1e-9,
                              max_iter=2000, accel="squarem").fit(seqs)  # fmt: skip
    assert model.converged_
    np.testing.assert_allclose(model.transition_, truth.transition, atol=0.08)
    np.testing.assert_allclose(model.transition_offset_, truth.transition_offset, atol=0.15)
    np.testing.assert_allclose(model.transition_cov_, truth.transition_cov, atol=0.08)
    np.testing.assert_allclose(model.observation_cov_, truth.observation_cov, atol=0.06)
    # without fixing anything: the same likelihood or better, the same covariance of y
    free = quiet_fit(LinearGaussianSSM(n, tol=1e-9, max_iter=300, random_state=0), seqs)
    assert free.loglik_ >= model.loglik_ - 1.0
    np.testing.assert_allclose(
        free.observation_ @ free.transition_cov_ @ free.observation_.T + free.observation_cov_,
        truth.observation @ truth.transition_cov @ truth.observation.T + truth.observation_cov,
        atol=0.25,
    )


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_loglik_never_decreases_with_missing_values(cov_type):
    rng = np.random.default_rng(3)
    truth = random_params(rng, 3, 4)
    Y = np.concatenate([sample(rng, truth, 150)[0], sample(rng, truth, 60)[0]])
    Y[rng.random(Y.shape) < 0.3] = np.nan
    Y[10:14] = np.nan
    model = LinearGaussianSSM(3, transition_cov_type=cov_type, observation_cov_type=cov_type,
                              max_iter=60, tol=0.0, check_monotone="raise")  # fmt: skip
    quiet_fit(model, [Y[:150], Y[150:]])
    assert np.all(np.diff(model.history_) >= -1e-9 * abs(model.history_[-1]))
    assert model.history_[-1] > model.history_[0] + 1.0
    if cov_type == "diag":
        assert (
            np.count_nonzero(model.observation_cov_ - np.diag(np.diag(model.observation_cov_))) == 0
        )


@pytest.mark.parametrize("diffuse", [False, True])
def test_statistics_add_up_over_any_split_into_sequences(diffuse):
    rng = np.random.default_rng(4)
    params = random_params(rng, 2, 3)
    Y = rng.normal(size=(90, 3))
    Y[rng.random(Y.shape) < 0.2] = np.nan
    obs = ~np.isnan(Y)
    Y0 = np.where(obs, Y, 0.0)
    offsets = np.array([0, 30, 31 + 20, 90])
    model = LinearGaussianSSMModel(2, diffuse=diffuse)
    whole, ll = model.estep(params, SequenceBatch((Y0, obs), offsets))
    parts = [
        model.estep(params, SequenceBatch((Y0[a:b], obs[a:b]), np.array([0, b - a])))
        for a, b in itertools.pairwise(offsets)
    ]
    assert ll == pytest.approx(sum(p[1] for p in parts), rel=1e-12)
    for i, name in enumerate(whole._fields):
        np.testing.assert_allclose(
            getattr(whole, name), sum(p[0][i] for p in parts), rtol=1e-10, atol=1e-10, err_msg=name
        )


def test_held_parameters_stay_and_the_others_are_maximised_given_them():
    rng = np.random.default_rng(5)
    params = random_params(rng, 2, 2)
    Y, _ = sample(rng, params, 200)
    batch = SequenceBatch((Y, np.ones_like(Y, bool)), np.array([0, 200]))
    model = LinearGaussianSSMModel(2)
    stats, _ = model.estep(params, batch)
    for names in (["transition"], ["observation_offset", "observation_cov"], ["initial_mean"]):
        new = model.hold(names).mstep(stats, params)
        for name in names:
            assert getattr(new, name) is getattr(params, name)
        # each block maximises the expected complete-data log-likelihood given the held
        # ones: a small move of any free coefficient lowers it
        base = _expected_loglik(stats, new)
        for name in set(SSMParams._fields) - set(names):
            if name.endswith("cov"):
                continue
            for sign in (1, -1):
                moved = new._replace(**{name: getattr(new, name) + sign * 1e-3})
                assert _expected_loglik(stats, moved) < base
    with pytest.raises(ValueError, match="not parameters"):
        model.hold(["transition", "bogus"])


def _expected_loglik(s, p):
    """Expected complete-data log-likelihood (up to constants) from the statistics."""

    def gauss(Syy, Syx, sy, Sxx, sx, N, B, c, S):
        E = Syy - B @ Syx.T - Syx @ B.T + B @ Sxx @ B.T
        E = E - np.outer(c, sy - B @ sx) - np.outer(sy - B @ sx, c) + N * np.outer(c, c)
        return -0.5 * (N * np.linalg.slogdet(S)[1] + np.trace(np.linalg.solve(S, E)))

    n = len(p.transition)
    return (
        gauss(s.yy, s.yx, s.y_sum, s.x_sxx, s.x_sum, s.n_obs,
              p.observation, p.observation_offset, p.observation_cov)
        + gauss(s.next_sxx, s.cross_sxx, s.next_sum, s.prev_sxx, s.prev_sum, s.n_trans,
                p.transition, p.transition_offset, p.transition_cov)
        + gauss(s.first_sxx, np.zeros((n, 1)), s.first_sum, np.ones((1, 1)), np.ones(1),
                s.n_seq, np.zeros((n, 1)), p.initial_mean, p.initial_cov)
    )  # fmt: skip


@pytest.mark.parametrize("offset", [0.0, 1e6, -3e8])
def test_exact_whatever_the_offset(offset):
    y = nile()
    y_scaled = (y - 900.0) / 100.0  # spread about 1.7, mean near 0
    kw = {"fixed": LOCAL_LEVEL, "initial": "diffuse", "tol": 0.0, "max_iter": 25}
    ref = quiet_fit(LinearGaussianSSM(**kw), y_scaled)
    shifted = quiet_fit(LinearGaussianSSM(**kw), y_scaled + offset)
    np.testing.assert_allclose(shifted.history_, ref.history_, rtol=1e-9)
    np.testing.assert_allclose(shifted.observation_cov_, ref.observation_cov_, rtol=1e-7)
    np.testing.assert_allclose(shifted.transition_cov_, ref.transition_cov_, rtol=1e-7)
    # a free model: offsets estimated
    rng = np.random.default_rng(6)
    truth = random_params(rng, 2, 2)
    Y, _ = sample(rng, truth, 300)
    kw = {"max_iter": 20, "tol": 0.0}
    a = quiet_fit(LinearGaussianSSM(2, **kw), Y)
    b = quiet_fit(LinearGaussianSSM(2, **kw), Y + offset)
    np.testing.assert_allclose(b.history_, a.history_, rtol=1e-9)
    np.testing.assert_allclose(b.observation_offset_ - offset, a.observation_offset_, atol=1e-6)


@pytest.mark.parametrize("scale", [1e-6, 1e8])
def test_exact_whatever_the_scale(scale):
    rng = np.random.default_rng(6)
    Y, _ = sample(rng, random_params(rng, 2, 2), 300)
    kw = {"max_iter": 20, "tol": 0.0}
    a = quiet_fit(LinearGaussianSSM(2, **kw), Y)
    b = quiet_fit(LinearGaussianSSM(2, **kw), Y * scale)
    # log-likelihoods shift by -N log(scale); covariances scale by scale**2
    np.testing.assert_allclose(b.history_, a.history_ - Y.size * np.log(scale), rtol=1e-9)
    np.testing.assert_allclose(b.observation_cov_, a.observation_cov_ * scale**2, rtol=1e-6)
