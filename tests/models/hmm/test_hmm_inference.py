"""HMM inference against brute-force enumeration of state paths, a textbook Viterbi
example and a scikit-learn mixture; missing observations integrated out."""

import itertools

import numpy as np
import pytest
from hmm_cases import (
    at,
    brute_force,
    gaussian_data,
    gaussian_log_b,
    gaussian_start,
)
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from emkit.data.sequences import SequenceSource

pytestmark = pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")


# ------------------------------------------------------------------- brute force
@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_inference_matches_path_enumeration(cov_type):
    rng = np.random.default_rng(5)
    K, D = 3, 2
    X = rng.normal(size=(9, D)) * 2.0
    lengths = [5, 1, 3]
    start = gaussian_start(rng, X, K, cov_type)
    start["covariances"] = (
        np.array([[[1.0, 0.3], [0.3, 0.5]], [[2.0, -0.4], [-0.4, 1.0]], [[0.7, 0.0], [0.0, 1.5]]])
        if cov_type == "full"
        else rng.uniform(0.5, 2.0, size=(K, D))
    )
    model = at(start, X, lengths, covariance_type=cov_type)
    full = (
        start["covariances"]
        if cov_type == "full"
        else np.stack([np.diag(c) for c in start["covariances"]])
    )
    log_b = gaussian_log_b(X, start["means"], full)
    bounds = np.cumsum([0, *lengths])
    truth = [
        brute_force(log_b[a:b], start["startprob"], start["transmat"])
        for a, b in itertools.pairwise(bounds)
    ]
    assert model.score(X, lengths) == pytest.approx(sum(t[0] for t in truth), rel=1e-12)
    logprob, post = model.score_samples(X, lengths)
    np.testing.assert_allclose(post, np.vstack([t[1] for t in truth]), atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X, lengths), post)
    viterbi_logprob, path = model.decode(X, lengths)
    np.testing.assert_array_equal(path, np.concatenate([t[3] for t in truth]))
    assert viterbi_logprob == pytest.approx(sum(t[4] for t in truth), rel=1e-12)
    np.testing.assert_array_equal(model.predict(X, lengths), path)
    # The E-step's expected counts: transitions and starts.
    hmm_model, params = model._fitted()
    data, missing = hmm_model.emission.prepare(X)
    batch = SequenceSource((data, missing), bounds).init_data()
    stats, loglik = hmm_model.estep(params, batch)
    np.testing.assert_allclose(stats.trans, sum(t[2] for t in truth), atol=1e-12)
    np.testing.assert_allclose(stats.start, sum(t[1][0] for t in truth), atol=1e-12)
    assert loglik == pytest.approx(logprob, rel=1e-12)


def test_textbook_viterbi_example():
    """Wikipedia, "Viterbi algorithm": Healthy/Fever with observations normal, cold,
    dizzy; the most likely path is Healthy, Healthy, Fever with probability 0.01512."""
    start = {
        "startprob": [0.6, 0.4],
        "transmat": [[0.7, 0.3], [0.4, 0.6]],
        "emissionprob": [[0.5, 0.4, 0.1], [0.1, 0.3, 0.6]],
    }
    X = np.array([[0], [1], [2]])
    model = at(start, X, emission="categorical")
    logprob, path = model.decode(X)
    assert path.tolist() == [0, 0, 1]
    assert np.exp(logprob) == pytest.approx(0.01512, rel=1e-12)
    # The forward probability by hand: sum over the 8 paths.
    log_b = np.log(np.array(start["emissionprob"]))[:, X[:, 0]].T
    total = brute_force(log_b, np.array(start["startprob"]), np.array(start["transmat"]))[0]
    assert model.score(X) == pytest.approx(total, rel=1e-12)


def test_uniform_transitions_give_mixture_posteriors():
    """With every transition row (and the start) equal to w, states are independent
    draws from w: the posteriors are those of the Gaussian mixture with weights w."""
    rng = np.random.default_rng(6)
    X, lengths, _, K = gaussian_data(rng)
    w = np.array([0.5, 0.3, 0.2])
    start = gaussian_start(rng, X, K, "full")
    start.update(startprob=w, transmat=np.tile(w, (K, 1)))
    model = at(start, X, lengths, covariance_type="full")
    gm = SkGaussianMixture(K, covariance_type="full")
    gm.weights_, gm.means_, gm.covariances_ = w, start["means"], start["covariances"]
    gm.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(start["covariances"]))
    np.testing.assert_allclose(model.predict_proba(X, lengths), gm.predict_proba(X), atol=1e-10)
    assert model.score(X, lengths) == pytest.approx(gm.score_samples(X).sum(), rel=1e-12)


# ------------------------------------------------------------------- missing data
def test_missing_rows_and_entries_are_integrated_out():
    rng = np.random.default_rng(13)
    K, D = 2, 3
    X = rng.normal(size=(7, D))
    X[2] = np.nan  # a missing row
    X[4, 1] = np.nan  # single missing entries
    X[5, [0, 2]] = np.nan
    lengths = [4, 3]
    start = gaussian_start(rng, X[~np.isnan(X).any(axis=1)], K, "full")
    start["covariances"] = np.array(
        [[[1.0, 0.2, 0.1], [0.2, 1.5, 0.3], [0.1, 0.3, 0.8]], np.diag([0.5, 1.0, 2.0])]
    )
    model = at(start, X, lengths, covariance_type="full")
    log_b = gaussian_log_b(X, start["means"], start["covariances"])
    truth = [
        brute_force(log_b[a:b], start["startprob"], start["transmat"]) for a, b in ((0, 4), (4, 7))
    ]
    assert model.score(X, lengths) == pytest.approx(truth[0][0] + truth[1][0], rel=1e-12)
    np.testing.assert_allclose(
        model.predict_proba(X, lengths), np.vstack([truth[0][1], truth[1][1]]), atol=1e-12
    )
    np.testing.assert_array_equal(
        model.predict(X, lengths), np.concatenate([truth[0][3], truth[1][3]])
    )
