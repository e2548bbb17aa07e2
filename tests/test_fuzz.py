"""Property-based fuzzing of every estimator with degenerate inputs (hypothesis).

Duplicated rows, fewer distinct points than components, constant features, more
features than rows, huge and tiny scales, and far-away points at predict time: each fit
either succeeds and every output is finite (probabilities in [0, 1] summing to 1,
log-likelihoods finite or -inf for points beyond the float range, never NaN), or stops
with a clear ValueError. Any other exception, and any NaN, fails.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emkit
from emkit.distributions import Gaussian


def _gaussian_outputs(est, X, far):
    out = {"score_samples": est.score_samples(X), "predict_proba": est.predict_proba(X)}
    out["far_proba"] = est.predict_proba(far)
    out["far_score"] = est.score_samples(far)
    return out


def _hmm_outputs(est, X, far):
    logprob, post = est.score_samples(X)
    return {"logprob": np.array([logprob]), "posteriors": post, "far": est.predict_proba(far)}


def _latent_outputs(est, X, far):
    return {"score_samples": est.score_samples(X), "transform": est.transform(X)}


def _ssm_outputs(est, X, far):
    means, covs = est.smooth(X)
    return {"score": np.array([est.score(X)]), "means": means, "covs": covs}


def _lda_outputs(est, X, far):
    return {
        "transform": est.transform(np.abs(np.round(X))),
        "score": np.array([est.score(np.abs(np.round(X)))]),
    }


CASES = {
    "gmm-full": (lambda K: emkit.GaussianMixture(K, random_state=0), _gaussian_outputs),
    "gmm-diag": (
        lambda K: emkit.GaussianMixture(K, covariance_type="diag", random_state=0),
        _gaussian_outputs,
    ),
    "gmm-tied": (
        lambda K: emkit.GaussianMixture(K, covariance_type="tied", random_state=0),
        _gaussian_outputs,
    ),
    "gmm-spherical": (
        lambda K: emkit.GaussianMixture(K, covariance_type="spherical", random_state=0),
        _gaussian_outputs,
    ),
    "student-t": (lambda K: emkit.StudentTMixture(K, random_state=0), _gaussian_outputs),
    "mixture": (lambda K: emkit.Mixture(Gaussian("full"), K, random_state=0), _gaussian_outputs),
    "hmm": (lambda K: emkit.HMM(K, random_state=0), _hmm_outputs),
    "imputer": (lambda K: emkit.GaussianImputer(), _latent_outputs),
    "factor-analysis": (lambda K: emkit.FactorAnalysis(1, random_state=0), _latent_outputs),
    "ssm": (lambda K: emkit.LinearGaussianSSM(state_dim=1, random_state=0), _ssm_outputs),
    "lda": (lambda K: emkit.LDA(K, random_state=0, max_iter=5), _lda_outputs),
    "vbgmm-full": (
        lambda K: emkit.VariationalGaussianMixture(K, random_state=0),
        _gaussian_outputs,
    ),
    "vbgmm-spherical": (
        lambda K: emkit.VariationalGaussianMixture(K, covariance_type="spherical", random_state=0),
        _gaussian_outputs,
    ),
}


@st.composite
def degenerate_data(draw):
    n = draw(st.integers(2, 40))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + rng.normal(size=d) * 3
    kind = draw(st.sampled_from(["plain", "duplicates", "few-distinct", "constant", "wide"]))
    if kind == "duplicates":
        X = np.repeat(X[: max(1, n // 4)], 4, axis=0)[:n]
    elif kind == "few-distinct":
        X = X[rng.integers(0, 2, size=n)]
    elif kind == "constant":
        X[:, rng.integers(0, d)] = 1.5
    elif kind == "wide":
        X = rng.normal(size=(min(n, 6), 8))
    X = X * 10.0 ** draw(st.integers(-200, 200))
    K = draw(st.integers(1, 3))
    return X, K


def _finite_or_neg_inf(name, values):
    values = np.asarray(values, dtype=np.float64)
    assert not np.isnan(values).any(), f"{name} has NaN"
    assert not np.isposinf(values).any(), f"{name} has +inf"


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(data=degenerate_data())
def test_degenerate_inputs_give_finite_outputs_or_a_clear_error(case, data):
    X, K = data
    make, outputs = CASES[case]
    far = np.vstack([np.full(X.shape[1], 1e300), np.full(X.shape[1], -1e300)])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fit_data = np.abs(np.round(X)) if case == "lda" else X
        try:
            est = make(K).fit(fit_data)
        except ValueError as exc:  # a clear error: it says something
            assert len(str(exc)) > 20
            return
        try:
            got = outputs(est, X, far)
        except ValueError as exc:  # e.g. data outside the fitted model's support
            assert len(str(exc)) > 20
            return
    for name, values in got.items():
        _finite_or_neg_inf(name, values)
        probabilities = {"predict_proba", "far_proba", "posteriors", "far"}
        if name in probabilities or (name == "transform" and case == "lda"):
            values = np.asarray(values)
            assert np.all((values >= 0) & (values <= 1)), name
            np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-6, err_msg=name)
