"""emkit.load refuses a model file whose parameters break their constraints (a file
edited by hand or damaged), naming the parameter, instead of giving NaN later."""

import copy
import warnings

import numpy as np
import pytest

import emkit
from emkit.distributions import Bernoulli, Categorical, Gaussian, Poisson


def _fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) + np.where(rng.random((200, 1)) < 0.5, 3.0, -3.0)
    C = rng.poisson(3, size=(200, 2))
    B = (rng.random((200, 3)) < 0.3).astype(float)
    S = rng.integers(0, 3, size=(200, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "gmm": emkit.GaussianMixture(2, random_state=0).fit(X),
            "gmm-diag": emkit.GaussianMixture(2, covariance_type="diag", random_state=0).fit(X),
            "tmm": emkit.StudentTMixture(2, random_state=0).fit(X),
            "poisson": emkit.Mixture(Poisson(), 2, random_state=0).fit(C),
            "bernoulli": emkit.Mixture(Bernoulli(), 2, random_state=0).fit(B),
            "categorical": emkit.Mixture(Categorical(3), 2, random_state=0).fit(S),
            "gaussian": emkit.Mixture(Gaussian("full"), 2, random_state=0).fit(X),
            "hmm": emkit.HMM(2, random_state=0).fit(X),
            "hmm-cat": emkit.HMM(2, emission="categorical", random_state=0).fit(S),
            "imputer": emkit.GaussianImputer().fit(X),
            "fa": emkit.FactorAnalysis(1, random_state=0).fit(X),
        }


FITTED = _fitted()


def _set(name, value):
    return lambda e: setattr(e, name, value(getattr(e, name)))


def _component(field, value):
    return lambda e: e.component_arrays_.__setitem__(field, value(e.component_arrays_[field]))


CASES = [
    ("gmm", _set("weights_", lambda w: np.array([1.5, -0.5])), "weights_ must be finite and non"),
    ("gmm", _set("weights_", lambda w: w * 0.5), "weights_ sums to 0.5, not 1"),
    ("gmm", _set("covariances_", lambda c: -c), "covariances must be positive definite"),
    ("gmm", _set("precisions_cholesky_", lambda p: 2 * p), "does not match covariances_"),
    ("gmm-diag", _set("covariances_", lambda c: -c), "covariances must be positive definite"),
    ("tmm", _set("weights_", lambda w: w * 0.5), "weights_ sums to 0.5"),
    ("tmm", _set("dofs_", lambda d: -d), "dof"),
    ("tmm", _set("covariances_", lambda c: -c), "positive definite"),
    ("poisson", _set("weights_", lambda w: w[::-1] * 2), "weights_ sums to 2"),
    ("poisson", _component("rate", lambda r: -r), "Poisson rate must be positive"),
    ("bernoulli", _component("probs", lambda p: p + 1), r"Bernoulli probs must lie in \[0, 1\]"),
    ("categorical", _component("probs", lambda p: p * 0.5), "Categorical probs must sum to 1"),
    ("gaussian", _component("covariance", lambda c: -c), "positive definite"),
    ("gaussian", _component("mean", lambda m: m * np.nan), "Gaussian mean must be finite"),
    ("hmm", _set("covariances_", lambda c: -c), "positive definite"),
    ("hmm", _set("transmat_", lambda t: t * 2), "transmat_ sums to 2"),
    ("hmm-cat", _set("emissionprob_", lambda p: p * 2), "emissionprob sums to 2"),
    ("imputer", _set("covariance_", lambda c: -c), "positive definite"),
    ("fa", _set("noise_variance_", lambda v: -v), "noise_variance_ must be positive"),
]


@pytest.mark.parametrize(("name", "mutate", "match"), CASES)
def test_load_refuses_broken_parameters(tmp_path, name, mutate, match):
    good = tmp_path / "good.npz"
    FITTED[name].save(good)
    emkit.load(good)  # the unedited file loads
    broken = copy.deepcopy(FITTED[name])
    mutate(broken)
    path = tmp_path / "broken.npz"
    broken.save(path)
    with pytest.raises(ValueError, match=match):
        emkit.load(path)
