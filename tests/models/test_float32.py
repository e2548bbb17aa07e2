"""float32 input: the mixtures compute in float32 (float64 accumulation) and return
float32, within a stated tolerance of the float64 fit; the other estimators compute
and return float64, so float32 input gives the float64 fit of the same values."""

import warnings

import numpy as np
import pytest

import emkit
from emkit.distributions import Gaussian

FLOAT32 = {
    "gmm-full": lambda: emkit.GaussianMixture(2, random_state=0),
    "gmm-diag": lambda: emkit.GaussianMixture(2, covariance_type="diag", random_state=0),
    "gmm-tied": lambda: emkit.GaussianMixture(2, covariance_type="tied", random_state=0),
    "gmm-spherical": lambda: emkit.GaussianMixture(
        2, covariance_type="spherical", random_state=0
    ),
    "student-t": lambda: emkit.StudentTMixture(2, random_state=0),
}
FLOAT64 = {
    "mixture": lambda: emkit.Mixture(Gaussian("full"), 2, random_state=0),
    "hmm": lambda: emkit.HMM(2, random_state=0),
    "imputer": lambda: emkit.GaussianImputer(),
    "factor-analysis": lambda: emkit.FactorAnalysis(1, random_state=0),
}


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) + np.where(rng.random((300, 1)) < 0.5, 3.0, -3.0)
    return X.astype(np.float32).astype(np.float64), X.astype(np.float32)


def _fit(make, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        return make().fit(X)


@pytest.mark.parametrize("name", sorted(FLOAT32))
def test_float32_mixtures_stay_float32_and_match_float64(name):
    X64, X32 = _data()
    a, b = _fit(FLOAT32[name], X64), _fit(FLOAT32[name], X32)
    for attr in ("weights_", "means_", "covariances_"):
        assert getattr(b, attr).dtype == np.float32, attr
        np.testing.assert_allclose(getattr(b, attr), getattr(a, attr), rtol=1e-4, atol=1e-5)
    assert b.loglik_ == pytest.approx(a.loglik_, rel=1e-6)
    for method, rtol in (("score_samples", 1e-3), ("predict_proba", 1e-4)):
        got, want = getattr(b, method)(X32), getattr(a, method)(X64)
        assert got.dtype == np.float32, method
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-5)
    np.testing.assert_array_equal(b.predict(X32), a.predict(X64))


@pytest.mark.parametrize("name", sorted(FLOAT64))
def test_other_estimators_fit_float32_input_in_float64(name):
    X64, X32 = _data()
    a, b = _fit(FLOAT64[name], X64), _fit(FLOAT64[name], X32)
    assert b.loglik_ == pytest.approx(a.loglik_, rel=1e-12)
    got, want = b.score_samples(X32), a.score_samples(X64)
    got = got[0] if isinstance(got, tuple) else got
    want = want[0] if isinstance(want, tuple) else want
    assert np.asarray(got).dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12)
