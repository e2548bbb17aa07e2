"""emkit.HMM as an estimator: sampling, any distribution as emission, saving and
loading, convergence warnings, bad input, and the pure model on the engine."""

import numpy as np
import pytest
from hmm_cases import (
    at,
    categorical_data,
    gaussian_data,
    source,
)

import emkit
from emkit import HMM
from emkit.distributions import Poisson
from emkit.exceptions import ConvergenceWarning
from emkit.models.hmm import HMMModel, HMMParams

pytestmark = pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")


# ------------------------------------------------------------------- other methods


def test_sample():
    start = {
        "startprob": [1.0, 0.0],
        "transmat": [[0.9, 0.1], [0.3, 0.7]],
        "means": [[-5.0], [5.0]],
        "covariances": [[1.0], [1.0]],
    }
    model = at(start, np.array([[0.0], [1.0]]), random_state=0)
    X, states = model.sample(20000)
    assert X.shape == (20000, 1) and states[0] == 0
    # Stationary distribution of the chain: (0.75, 0.25).
    assert np.mean(states == 1) == pytest.approx(0.25, abs=0.02)
    assert np.mean(X[states == 1]) == pytest.approx(5.0, abs=0.05)
    assert model.sample(5, currstate=1)[1][0] == 1
    np.testing.assert_array_equal(model.sample(10)[0], model.sample(10)[0])  # seeded


def test_distribution_emission_equals_named_emission(tmp_path):
    rng = np.random.default_rng(16)
    X = rng.poisson(np.repeat([[1.0, 5.0], [6.0, 2.0]], 150, axis=0))
    named = HMM(2, emission="poisson", random_state=0).fit(X)
    generic = HMM(2, emission=Poisson(), random_state=0).fit(X)
    np.testing.assert_allclose(generic.emission_params_["rate"], named.rates_)
    assert generic.score(X) == pytest.approx(named.score(X), rel=1e-12)
    path = tmp_path / "generic.emkit"
    generic.save(path)
    assert emkit.load(path).score(X) == pytest.approx(generic.score(X), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"covariance_type": "tied"},
        {"emission": "gmm", "n_mix": 2, "covariance_type": "full"},
        {"emission": "categorical"},
    ],
)
def test_save_load_round_trip(tmp_path, kwargs):
    rng = np.random.default_rng(17)
    X, lengths, _, K = (
        categorical_data(rng) if kwargs.get("emission") == "categorical" else gaussian_data(rng)
    )
    model = HMM(K, random_state=0, max_iter=5, **kwargs).fit(X, lengths)
    model.save(tmp_path / "m.emkit")
    loaded = emkit.load(tmp_path / "m.emkit")
    assert loaded.score(X, lengths) == pytest.approx(model.score(X, lengths), rel=1e-12)
    np.testing.assert_array_equal(loaded.predict(X, lengths), model.predict(X, lengths))


def test_convergence_warning_and_tolerance():
    rng = np.random.default_rng(18)
    X, lengths, _, K = gaussian_data(rng)
    with pytest.warns(ConvergenceWarning):
        HMM(K, max_iter=1, tol=0.0, random_state=0).fit(X, lengths)
    model = HMM(K, random_state=0).fit(X, lengths)
    assert model.converged_


# ------------------------------------------------------------------- bad input
def test_bad_lengths():
    X = np.zeros((10, 1))
    with pytest.raises(ValueError, match="add up to 9 but X has 10 rows"):
        HMM(2).fit(X, [4, 5])
    with pytest.raises(ValueError, match="at least 1 observation"):
        HMM(2).fit(X, [5, 0, 5])
    with pytest.raises(ValueError, match="at least 1 observation"):
        HMM(2).fit(X, [12, -2])
    with pytest.raises(TypeError, match="integers"):
        HMM(2).fit(X, [4.5, 5.5])
    with pytest.raises(ValueError, match="either a list of sequences or X with lengths"):
        HMM(2).fit([X, X], [10, 10])
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        HMM(2).fit([X, np.zeros((0, 1))])
    with pytest.raises(ValueError, match="same number of features"):
        HMM(2).fit([X, np.zeros((3, 2))])
    with pytest.raises(ValueError, match="2D array"):
        HMM(2).fit(np.zeros(10))


def test_symbols_out_of_range():
    X = np.array([[0], [1], [2], [1], [0]])
    with pytest.raises(ValueError, match=r"categories out of range \[0, 2\)"):
        HMM(2, emission="categorical", n_categories=2).fit(X)
    with pytest.raises(ValueError, match=r"must be integers 0, 1, 2, \.\.\.; got -1"):
        HMM(2, emission="categorical").fit(np.array([[0], [-1], [1]]))
    with pytest.raises(ValueError, match=r"must be integers 0, 1, 2, \.\.\.; got 0\.5"):
        HMM(2, emission="categorical").fit(np.array([[0], [0.5], [1]]))
    model = HMM(2, emission="categorical", random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"categories out of range \[0, 3\)"):
        model.predict(np.array([[0], [3]]))
    with pytest.raises(ValueError, match="one column of symbols"):
        HMM(2, emission="categorical").fit(np.zeros((5, 2)))


def test_bad_init_parameters():
    X = np.random.default_rng(0).normal(size=(20, 2))
    good = {"startprob": [0.5, 0.5], "transmat": [[0.9, 0.1], [0.2, 0.8]]}
    with pytest.raises(ValueError, match=r"row 1 of transmat sums to 0\.9"):
        HMM(2, init={**good, "transmat": [[0.9, 0.1], [0.2, 0.7]]}).fit(X)
    with pytest.raises(ValueError, match="startprob sums to"):
        HMM(2, init={**good, "startprob": [0.5, 0.6]}).fit(X)
    with pytest.raises(ValueError, match=r"transmat must have shape \(2, 2\)"):
        HMM(2, init={**good, "transmat": np.eye(3)}).fit(X)
    with pytest.raises(ValueError, match="non-negative"):
        HMM(2, init={**good, "transmat": [[1.1, -0.1], [0.2, 0.8]]}).fit(X)
    with pytest.raises(ValueError, match="unknown keys"):
        HMM(2, init={**good, "emissionprob": np.ones((2, 2)) / 2}).fit(X)
    with pytest.raises(ValueError, match="give all of the emission's parameters"):
        HMM(2, init={**good, "means": np.zeros((2, 2))}).fit(X)
    with pytest.raises(ValueError, match="positive definite"):
        HMM(
            2,
            covariance_type="full",
            init={"means": np.zeros((2, 2)), "covariances": -np.ones((2, 2, 2))},
        ).fit(X)
    with pytest.raises(ValueError, match="emission must be one of"):
        HMM(2, emission="normal").fit(X)
    with pytest.raises(ValueError, match="larger than the number of observed rows"):
        HMM(30).fit(X)
    with pytest.raises(ValueError, match="Dirichlet pseudo-counts"):
        HMM(2, transmat_prior=0.5).fit(X)
    with pytest.raises(ValueError, match="every observation in X is missing"):
        HMM(2).fit(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="infinity"):
        HMM(2).fit(np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]]))
    model = HMM(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features"):
        model.score(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="algorithm"):
        model.decode(X, algorithm="beam")


def test_failed_fit_keeps_previous_fit():
    X = np.random.default_rng(0).normal(size=(50, 2))
    model = HMM(2, random_state=0).fit(X)
    means = model.means_.copy()
    with pytest.raises(ValueError):
        model.fit(X, [10, 10])
    np.testing.assert_array_equal(model.means_, means)


def test_hmm_model_on_the_engine_directly():
    """The pure model runs on emkit.em like any other model."""
    rng = np.random.default_rng(19)
    X, lengths, _, K = gaussian_data(rng)
    est = HMM(K)
    model = est._model(est._emission_part(X))
    result = emkit.em(model, source(est, X, lengths), random_state=0, max_iter=50)
    assert isinstance(result.params, HMMParams) and isinstance(model, HMMModel)
    assert np.all(np.diff(result.history) >= -1e-9 * np.abs(result.history[1:]))
