"""Properties of Baum-Welch in emkit.HMM: parameters recovered from sampled sequences,
a never-decreasing log-likelihood, additive statistics, structural zeros kept, states
never reached, and fits with missing values."""

import itertools

import numpy as np
import pytest
from hmm_cases import (
    at,
    categorical_data,
    gaussian_data,
    gaussian_start,
)
from hmmlearn import hmm as hl

from emkit import HMM
from emkit._pytree import tree_add, tree_leaves
from emkit.data.sequences import SequenceSource

pytestmark = pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")


# ------------------------------------------------------------------- EM properties
def test_recovers_parameters_from_sampled_sequences():
    rng = np.random.default_rng(7)
    X, lengths, z, K = gaussian_data(rng, lengths=[300] * 20)
    model = HMM(K, covariance_type="full", n_init=2, random_state=0).fit(X, lengths)
    order = np.argsort(model.means_[:, 0])  # truth, sorted by the first coordinate: 1, 0, 2
    truth_means = np.array([[-2.0, 3.0], [0.0, 0.0], [3.0, 1.0]])
    np.testing.assert_allclose(model.means_[order], truth_means, atol=0.1)
    truth_a = np.array([[0.85, 0.1, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    perm = [2, 0, 1]  # truth state of each sorted fitted state
    np.testing.assert_allclose(
        model.transmat_[np.ix_(order, order)], truth_a[np.ix_(perm, perm)], atol=0.03
    )
    for cov in model.covariances_:
        np.testing.assert_allclose(cov, np.eye(2), atol=0.12)
    relabel = np.argsort(order)  # fitted state -> rank
    assert np.mean(relabel[model.predict(X, lengths)] == np.array(perm).argsort()[z]) > 0.9


def test_categorical_default_start_reaches_the_optimum_of_the_truth():
    """From its own start (clustered windows of symbols), EM ends at least as high as EM
    started at the true parameters, and recovers the emission probabilities."""
    rng = np.random.default_rng(20)
    X, lengths, _, K = categorical_data(rng, lengths=[500] * 8)
    emit = np.array(
        [[0.6, 0.3, 0.1, 0.0, 0.0], [0.0, 0.1, 0.3, 0.6, 0.0], [0.2, 0.0, 0.0, 0.2, 0.6]]
    )
    truth = {
        "startprob": np.ones(K) / K,
        "transmat": np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]]),
        "emissionprob": emit,
    }
    kw = {"emission": "categorical", "tol": 1e-7, "max_iter": 500}
    from_truth = HMM(K, init=truth, **kw).fit(X, lengths)
    model = HMM(K, random_state=0, **kw).fit(X, lengths)
    assert model.loglik_ >= from_truth.loglik_ - 1e-6 * abs(from_truth.loglik_)
    order = [int(np.argmax(model.emissionprob_[:, c])) for c in (0, 3, 4)]
    np.testing.assert_allclose(model.emissionprob_[order], emit, atol=0.05)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"covariance_type": "full"},
        {"covariance_type": "tied"},
        {"emission": "gmm", "n_mix": 2, "covariance_type": "diag"},
        {"emission": "gmm", "n_mix": 2, "covariance_type": "tied"},
        {"emission": "poisson"},
        {"covariance_type": "spherical", "startprob_prior": 3.0, "transmat_prior": 2.0},
    ],
)
def test_log_likelihood_never_decreases(kwargs):
    rng = np.random.default_rng(8)
    X, lengths, _, K = gaussian_data(rng)
    if kwargs.get("emission") == "poisson":
        X = rng.poisson(np.exp(X / 2))
    model = HMM(K, max_iter=40, tol=0.0, check_monotone="raise", random_state=1, **kwargs)
    model.fit(X, lengths)
    h = model.history_
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))


def test_sequences_of_very_different_lengths():
    rng = np.random.default_rng(9)
    lengths = [1, 2, 1, 500, 3, 40]
    X, _, _, K = gaussian_data(rng, lengths=lengths)
    model = HMM(K, random_state=0).fit(X, lengths)
    bounds = np.cumsum([0, *lengths])
    parts = [model.score(X[a:b]) for a, b in itertools.pairwise(bounds)]
    assert model.score(X, lengths) == pytest.approx(sum(parts), rel=1e-12)
    # The same sequences as a list; and hmmlearn's likelihood at the same parameters.
    as_list = [X[a:b] for a, b in itertools.pairwise(bounds)]
    assert model.score(as_list) == pytest.approx(sum(parts), rel=1e-12)
    peer = hl.GaussianHMM(K, covariance_type="diag", init_params="")
    peer.startprob_, peer.transmat_ = model.startprob_, model.transmat_
    peer.means_, peer.covars_ = model.means_, model.covariances_
    assert model.score(X, lengths) == pytest.approx(peer.score(X, lengths), rel=1e-10)
    refit = HMM(K, random_state=0).fit(as_list)
    np.testing.assert_allclose(refit.means_, model.means_)


def test_squarem_online_batches_and_restarts():
    rng = np.random.default_rng(10)
    X, lengths, _, K = gaussian_data(rng, lengths=[150] * 16)
    start = gaussian_start(rng, X, K, "diag")
    kw = {"init": start, "tol": 1e-8, "max_iter": 500}
    plain = HMM(K, **kw).fit(X, lengths)
    fast = HMM(K, accel="squarem", check_monotone="raise", **kw).fit(X, lengths)
    assert fast.loglik_ == pytest.approx(plain.loglik_, rel=1e-6)
    assert fast.n_iter_ < plain.n_iter_
    batched = HMM(K, batch_size=5, **{**kw, "max_iter": 5}).fit(X, lengths)
    one = HMM(K, **{**kw, "max_iter": 5}).fit(X, lengths)
    assert batched.loglik_ == pytest.approx(one.loglik_, rel=1e-12)
    # Online EM over mini-batches of 4 whole sequences: not monotone, but it climbs to
    # near the batch optimum.
    online = HMM(K, variant="online", batch_size=4, init=start, max_iter=20, random_state=0)
    online.fit(X, lengths)
    assert online.history_[-1] > online.history_[0]
    assert online.loglik_ > plain.loglik_ - 0.01 * abs(plain.loglik_)
    # Restart 0 of n_init=3 is the n_init=1 run (same seed): the best is at least as good.
    best = HMM(K, n_init=3, random_state=0, max_iter=30).fit(X, lengths)
    first = HMM(K, n_init=1, random_state=0, max_iter=30).fit(X, lengths)
    assert best.loglik_ >= first.loglik_ - 1e-9 * abs(first.loglik_)


def test_statistics_add_up_over_batches():
    rng = np.random.default_rng(11)
    X, lengths, _, K = gaussian_data(rng)
    model = at(gaussian_start(rng, X, K, "full"), X, lengths, covariance_type="full")
    hmm_model, params = model._fitted()
    data, missing = hmm_model.emission.prepare(X)
    whole = SequenceSource((data, missing), np.cumsum([0, *lengths]))
    split = SequenceSource((data, missing), np.cumsum([0, *lengths]), batch_size=1)
    s_all, ll_all = hmm_model.estep(params, whole.init_data())
    parts = [hmm_model.estep(params, b) for b in split.batches()]
    total = parts[0][0]
    for s, _ in parts[1:]:
        total = tree_add(total, s)
    for a, b in zip(tree_leaves(total), tree_leaves(s_all)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    assert sum(ll for _, ll in parts) == pytest.approx(ll_all, rel=1e-12)


def test_left_right_zeros_stay_zero():
    rng = np.random.default_rng(12)
    X, lengths, _, K = gaussian_data(rng)
    start = gaussian_start(rng, X, K, "diag")
    start["startprob"] = np.array([1.0, 0.0, 0.0])
    start["transmat"] = np.array([[0.7, 0.3, 0.0], [0.0, 0.8, 0.2], [0.0, 0.0, 1.0]])
    for prior in (1.0, 3.0):
        model = HMM(K, init=start, max_iter=20, transmat_prior=prior, startprob_prior=prior)
        model.fit(X, lengths)
        assert np.all(model.transmat_[start["transmat"] == 0] == 0)
        assert np.all(model.startprob_[1:] == 0)
        assert np.all(model.transmat_[start["transmat"] > 0] > 0)
    # A left-right model has fewer free parameters.
    assert model._n_parameters() == 0 + 2 + 2 * K + 2 * K


@pytest.mark.parametrize("emission", ["gaussian", "gmm", "categorical", "poisson"])
def test_unreachable_state_is_not_an_error(emission):
    """A state that no path can visit has no statistics; any emission parameters then
    maximise the expected log-likelihood, and EM goes on (monotone) instead of failing."""
    rng = np.random.default_rng(21)
    X, lengths, _, K = categorical_data(rng) if emission == "categorical" else gaussian_data(rng)
    if emission == "poisson":
        X = rng.poisson(np.exp(X / 2))
    init = {
        "startprob": [0.5, 0.5, 0.0],
        "transmat": [[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4]],
    }
    model = HMM(
        K,
        emission=emission,
        n_mix=2,
        init=init,
        max_iter=15,
        random_state=0,
        check_monotone="raise",
    ).fit(X, lengths)
    assert np.all(model.predict_proba(X, lengths)[:, 2] == 0)
    assert np.all(model.transmat_[:2, 2] == 0) and model.startprob_[2] == 0
    np.testing.assert_array_equal(model.transmat_[2], [0.3, 0.3, 0.4])  # never left: kept


def test_fit_with_missing_values():
    rng = np.random.default_rng(14)
    X, lengths, _, K = gaussian_data(rng, lengths=[200] * 10)
    holes = X.copy()
    holes[rng.random(len(X)) < 0.1] = np.nan  # whole rows
    holes[rng.random(X.shape) < 0.05] = np.nan  # single entries
    full = HMM(K, covariance_type="full", random_state=0).fit(X, lengths)
    part = HMM(K, covariance_type="full", random_state=0, check_monotone="raise")
    part.fit(holes, lengths)
    order_a, order_b = np.argsort(full.means_[:, 0]), np.argsort(part.means_[:, 0])
    np.testing.assert_allclose(part.means_[order_b], full.means_[order_a], atol=0.15)
    assert np.all(np.diff(part.history_) >= -1e-9 * np.abs(part.history_[1:]))
    # A missing row still counts for the transitions: the posteriors there are smooth.
    post = part.predict_proba(holes, lengths)
    assert np.all(np.isfinite(post)) and np.allclose(post.sum(axis=1), 1.0)
    # Poisson and categorical emissions integrate out missing rows as well.
    counts = rng.poisson(3.0, size=(300, 2)).astype(float)
    counts[::7] = np.nan
    counts[3, 0] = np.nan
    HMM(2, emission="poisson", random_state=0, check_monotone="raise").fit(counts)
    symbols = rng.integers(0, 4, size=(300, 1)).astype(float)
    symbols[::5] = np.nan
    HMM(2, emission="categorical", random_state=0, check_monotone="raise").fit(symbols)
    # (their steps are checked against path enumeration in test_count_emissions.py)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_online_running_statistics_follow_the_parameters_far_from_the_origin(covariance_type):
    # The Gaussian emissions' moments are taken about the means of the parameters the
    # E-step used: re-expressing them about other parameters and taking the M-step there
    # must give the same parameters, and online EM's update rule holds once the running
    # statistics are shifted back.
    from emkit.engine.online import online_step

    rng = np.random.default_rng(31)
    X, lengths, _, K = gaussian_data(rng)
    X = X * 1e-2 + 1e5
    model = at(
        gaussian_start(rng, X, K, covariance_type), X, lengths, covariance_type=covariance_type
    )
    hmm_model, params = model._fitted()
    data, missing = hmm_model.emission.prepare(X)
    split = SequenceSource((data, missing), np.cumsum([0, *lengths]), batch_size=2)
    first, second = list(split.batches())[:2]
    p1, s1 = online_step(hmm_model, params, None, first, 0.5, 3.0)
    p2, s2 = online_step(hmm_model, p1, s1, second, 0.4, 5.0)
    back = hmm_model.shift_stats(s2, p2, p1)
    new = hmm_model.estep(p1, second)[0]
    for got, old, b in zip(tree_leaves(back), tree_leaves(s1), tree_leaves(new), strict=True):
        np.testing.assert_allclose(got, 0.6 * old + 0.4 * 5.0 * b, rtol=1e-8, atol=1e-8)
    direct = hmm_model.mstep(back, p1)
    for got, want in zip(tree_leaves(p2), tree_leaves(direct), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)
    # the shift itself: an M-step about the shifted moments equals one about the originals
    # (an identity shift would move every mean by the difference of the two parameters')
    s_first = hmm_model.estep(params, first)[0]
    moved = hmm_model.mstep(hmm_model.shift_stats(s_first, params, p1), p1)
    for got, want in zip(
        tree_leaves(moved), tree_leaves(hmm_model.mstep(s_first, params)), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
