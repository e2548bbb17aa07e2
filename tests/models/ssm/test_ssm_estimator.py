"""The LinearGaussianSSM estimator: input forms, bad input, persistence, sampling."""

import warnings

import numpy as np
import pytest
from ssm_cases import nile, random_params, sample

import emkit
from emkit import LinearGaussianSSM

ONE, ZERO = [[1.0]], [0.0]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    truth = random_params(rng, 2, 3)
    return truth, sample(rng, truth, 120)[0]


def fit_quiet(model, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        return model.fit(Y)


@pytest.mark.parametrize(
    "kwargs, Y, match",
    [
        ({"init": {"transition": np.eye(3)}}, None, r"init\['transition'\] must have shape \(2, 2\)"),
        ({"fixed": {"observation": np.ones((2, 2))}}, None, r"fixed\['observation'\] must have shape \(3, 2\)"),
        ({"fixed": {"transition_cov": [[1.0, 0.0], [0.0, -1.0]]}}, None, "positive definite"),
        ({"init": {"observation_cov": np.ones((3, 3))}}, None, "positive definite"),
        ({"fixed": {"transition_cov": [[1.0, 0.5], [0.4, 1.0]]}}, None, "symmetric"),
        ({"fixed": {"bogus": 1.0}}, None, "unknown keys"),
        ({"init": {"transition": [[np.nan, 0], [0, 1]]}}, None, "non-finite"),
        ({"initial": "diffuse", "fixed": {"initial_mean": [0, 0]}}, None, "diffuse"),
        ({"observation_cov_type": "diag", "init": {"observation_cov": [[1, .1, 0], [.1, 1, 0], [0, 0, 1]]}}, None, "diagonal"),
        ({}, np.full((10, 3), np.nan), "every value missing"),
        ({}, np.ones((1, 3)), "at least T = 2"),
        ({}, [np.ones((5, 3)), np.ones((5, 2))], "same number of features"),
        ({"state_dim": 0}, None, "state_dim"),
        ({"initial": "exact"}, None, "initial must be one of"),
        ({"transition_cov_type": "spherical"}, None, "transition_cov_type"),
        ({"init": "kmeans"}, None, "init must be one of"),
    ],
)  # fmt: skip
def test_bad_input_raises_a_clear_error(data, kwargs, Y, match):
    Y = data[1] if Y is None else Y
    with pytest.raises(ValueError, match=match):
        LinearGaussianSSM(**{"state_dim": 2, **kwargs}).fit(Y)


def test_other_bad_inputs(data):
    _, Y = data
    with pytest.raises(TypeError, match="init must be a string or a dict"):
        LinearGaussianSSM(2, init=3).fit(Y)
    with pytest.raises(TypeError, match="fixed must be a dict"):
        LinearGaussianSSM(2, fixed=[1, 2]).fit(Y)
    bad = Y.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        LinearGaussianSSM(2).fit(bad)
    with pytest.raises(ValueError, match="identify its diffuse initial state"):
        LinearGaussianSSM(3, initial="diffuse").fit(np.array([[1.0], [2.0], [np.nan]]))
    with pytest.raises(ValueError, match=r"column\(s\) \[1\]"):
        LinearGaussianSSM(2).fit(np.column_stack([Y[:, 0], np.full(len(Y), np.nan)]))


def test_a_failed_fit_leaves_the_previous_fit(data):
    _, Y = data
    model = fit_quiet(LinearGaussianSSM(2, max_iter=5), Y)
    before = {k: v.copy() for k, v in vars(model).items() if isinstance(v, np.ndarray)}
    model.set_params(fixed={"transition": np.eye(5)})
    with pytest.raises(ValueError):
        model.fit(Y)
    with pytest.raises(ValueError):
        model.set_params(fixed=None).fit(np.ones((1, 3)))
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(model, key), value)


def test_save_and_load_round_trip(tmp_path, data):
    _, Y = data
    model = fit_quiet(LinearGaussianSSM(2, fixed={"transition_offset": [0.0, 0.0]}, max_iter=5), Y)
    path = tmp_path / "ssm.npz"
    model.save(path)
    again = emkit.load(path)
    assert isinstance(again, LinearGaussianSSM)
    assert again.score(Y) == model.score(Y)
    np.testing.assert_array_equal(again.fixed["transition_offset"], [0.0, 0.0])
    diffuse = LinearGaussianSSM(
        fixed={"transition": ONE, "observation": ONE}, initial="diffuse", max_iter=3
    )
    fit_quiet(diffuse, nile())
    diffuse.save(tmp_path / "level.npz")
    assert emkit.load(tmp_path / "level.npz").score(nile()) == diffuse.score(nile())


def test_list_input_and_output_shapes(data):
    _, Y = data
    model = fit_quiet(LinearGaussianSSM(2, max_iter=3), [Y[:50], Y[50:]])
    means, covs = model.smooth([Y[:50], Y[50:]])
    assert [m.shape for m in means] == [(50, 2), (70, 2)]
    assert [c.shape for c in covs] == [(50, 2, 2), (70, 2, 2)]
    fm, fc = model.filter(Y)
    assert fm.shape == (120, 2) and fc.shape == (120, 2, 2)
    ym, yc = model.forecast(Y, steps=4)
    assert ym.shape == (4, 3) and yc.shape == (4, 3, 3)
    assert np.all(np.diff(np.trace(yc, axis1=1, axis2=2)) > 0)  # uncertainty grows
    with pytest.raises(ValueError, match="features"):
        model.score(Y[:, :2])
    one = fit_quiet(LinearGaussianSSM(1, max_iter=3), nile())  # a 1-D series is one feature
    assert one.observation_.shape == (1, 1)


def test_sample_has_the_model_moments():
    rng = np.random.default_rng(1)
    truth = random_params(rng, 2, 2)
    model = LinearGaussianSSM(2)
    for name, value in truth._asdict().items():
        setattr(model, f"{name}_", value)
    model.n_features_in_ = 2
    model.converged_, model.n_iter_, model.history_, model.loglik_ = True, 0, np.zeros(0), 0.0
    Y, X = model.sample(20000, random_state=0)
    assert Y.shape == (20000, 2) and X.shape == (20000, 2)
    resid = X[1:] - X[:-1] @ truth.transition.T - truth.transition_offset
    np.testing.assert_allclose(np.cov(resid.T), truth.transition_cov, atol=0.05)
    noise = Y - X @ truth.observation.T - truth.observation_offset
    np.testing.assert_allclose(np.cov(noise.T), truth.observation_cov, atol=0.05)
    same, _ = model.sample(50, random_state=3)
    np.testing.assert_array_equal(same, model.sample(50, random_state=3)[0])
    model.initial = "diffuse"
    with pytest.raises(ValueError, match="initial_state"):
        model.sample(5)
    assert model.sample(5, initial_state=[0.0, 1.0])[1][0].tolist() == [0.0, 1.0]
