"""emkit.HMM against hmmlearn: fits of every emission, MAP priors, the GMM-HMM as an
expanded Gaussian HMM, and the information criteria."""

import numpy as np
import pytest
from hmm_cases import (
    COV_TYPES,
    at,
    categorical_data,
    fit_hmmlearn,
    gaussian_data,
    gaussian_start,
    rel,
    sample_hmm,
)
from hmmlearn import hmm as hl

from emkit import HMM

pytestmark = pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------- hmmlearn agreement
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gaussian_matches_hmmlearn(cov_type):
    rng = np.random.default_rng(0)
    X, lengths, _, K = gaussian_data(rng)
    start = gaussian_start(rng, X, K, cov_type)
    # hmmlearn's default covariance prior would add 0.01 to every variance: take it away,
    # and emkit's reg_covar, so that both run plain maximum likelihood.
    peer = hl.GaussianHMM(K, covariance_type=cov_type, covars_prior=0.0, covars_weight=1)
    peer = fit_hmmlearn(
        peer, start, X, lengths, 25, means_=start["means"], covars_=start["covariances"]
    )
    ours = HMM(K, covariance_type=cov_type, reg_covar=0.0, init=start, max_iter=25, tol=None)
    ours.fit(X, lengths)
    # The same 25 steps on both sides agree to round-off (measured 1e-15; 100x margin).
    assert ours.n_iter_ == peer.monitor_.iter == 25
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-13
    # hmmlearn records the log-likelihood before each step, emkit after it.
    np.testing.assert_allclose(ours.history_[:-1], list(peer.monitor_.history)[1:], rtol=1e-13)
    np.testing.assert_allclose(ours.means_, peer.means_, atol=1e-12)
    theirs = peer._covars_[:, 0] if cov_type == "spherical" else peer._covars_
    np.testing.assert_allclose(ours.covariances_, theirs, atol=1e-12)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-12)
    np.testing.assert_allclose(ours.startprob_, peer.startprob_, atol=1e-12)


def test_categorical_matches_hmmlearn():
    rng = np.random.default_rng(1)
    X, lengths, _, K = categorical_data(rng)
    start = {
        "startprob": rng.dirichlet(np.ones(K)),
        "transmat": rng.dirichlet(np.ones(K) * 3, size=K),
        "emissionprob": rng.dirichlet(np.ones(5) * 2, size=K),
    }
    peer = fit_hmmlearn(
        hl.CategoricalHMM(K), start, X, lengths, 30, emissionprob_=start["emissionprob"]
    )
    ours = HMM(K, emission="categorical", init=start, max_iter=30, tol=None).fit(X, lengths)
    assert ours.n_iter_ == peer.monitor_.iter == 30
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-13
    np.testing.assert_allclose(ours.emissionprob_, peer.emissionprob_, atol=1e-12)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-12)


def test_poisson_matches_hmmlearn():
    rng = np.random.default_rng(2)
    lengths = [80, 300, 5, 150]
    rates = np.array([[1.0, 6.0], [4.0, 0.5], [9.0, 3.0]])
    transmat = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.05, 0.1, 0.85]])
    X, _ = sample_hmm(rng, np.ones(3) / 3, transmat, lambda k: rng.poisson(rates[k]), lengths)
    start = {
        "startprob": np.ones(3) / 3,
        "transmat": rng.dirichlet(np.ones(3) * 3, size=3),
        "rates": rng.uniform(1.0, 5.0, size=(3, 2)),
    }
    peer = fit_hmmlearn(hl.PoissonHMM(3), start, X, lengths, 30, lambdas_=start["rates"])
    ours = HMM(3, emission="poisson", init=start, max_iter=30, tol=None).fit(X, lengths)
    assert ours.n_iter_ == peer.monitor_.iter == 30
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-13
    np.testing.assert_allclose(ours.rates_, peer.lambdas_, rtol=1e-12)


def test_map_dirichlet_priors_match_hmmlearn():
    rng = np.random.default_rng(3)
    X, lengths, _, K = categorical_data(rng)
    start = {
        "startprob": np.ones(K) / K,
        "transmat": rng.dirichlet(np.ones(K) * 3, size=K),
        "emissionprob": rng.dirichlet(np.ones(5) * 2, size=K),
    }
    sp, tp = np.array([2.0, 3.0, 4.0]), rng.uniform(1.0, 5.0, size=(K, K))
    peer = hl.CategoricalHMM(K, startprob_prior=sp, transmat_prior=tp)
    peer = fit_hmmlearn(peer, start, X, lengths, 30, emissionprob_=start["emissionprob"])
    ours = HMM(
        K,
        emission="categorical",
        init=start,
        max_iter=30,
        tol=None,
        startprob_prior=sp,
        transmat_prior=tp,
        check_monotone="raise",
    ).fit(X, lengths)
    assert ours.n_iter_ == peer.monitor_.iter == 30
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-12)
    np.testing.assert_allclose(ours.startprob_, peer.startprob_, atol=1e-12)
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-13
    # The engine maximises log-likelihood + log-prior, and says so in the history.
    prior = np.sum((sp - 1) * np.log(ours.startprob_)) + np.sum((tp - 1) * np.log(ours.transmat_))
    assert ours.history_[-1] == pytest.approx(ours.loglik_ + prior, rel=1e-12)


@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_gmm_emission_step_matches_expanded_gaussian_hmm(cov_type):
    """A GMM-HMM is a Gaussian HMM over (state, component) pairs with transitions
    A[i, j] * w[j, n]; one EM step of its Gaussians equals hmmlearn's on that model.
    (hmmlearn's own GMMHMM updates covariances about the old means, so it is not used
    for steps, only for the likelihood at fixed parameters.)"""
    rng = np.random.default_rng(4)
    X, lengths, _, K = gaussian_data(rng)
    M, D = 2, X.shape[1]
    cov = np.ones((K, M, D)) if cov_type == "diag" else np.tile(np.eye(D), (K, M, 1, 1))
    start = {
        "startprob": rng.dirichlet(np.ones(K) * 5),
        "transmat": rng.dirichlet(np.ones(K) * 3, size=K),
        "weights": rng.dirichlet(np.ones(M) * 3, size=K),
        "means": X[rng.choice(len(X), K * M, replace=False)].reshape(K, M, D),
        "covariances": cov,
    }
    kw = {"emission": "gmm", "n_mix": M, "covariance_type": cov_type, "reg_covar": 0.0}
    zero = at(start, X, lengths, **kw)
    gmmhmm = hl.GMMHMM(K, n_mix=M, covariance_type=cov_type, init_params="")
    gmmhmm.startprob_, gmmhmm.transmat_ = start["startprob"], start["transmat"]
    gmmhmm.weights_, gmmhmm.means_, gmmhmm.covars_ = start["weights"], start["means"], cov
    assert rel(zero.score(X, lengths), gmmhmm.score(X, lengths)) < 1e-10

    big = hl.GaussianHMM(
        K * M,
        covariance_type=cov_type,
        covars_prior=0.0,
        covars_weight=1,
        params="mc",
        init_params="",
        n_iter=1,
        tol=-np.inf,
    )
    big.startprob_ = (start["startprob"][:, None] * start["weights"]).ravel()
    big.transmat_ = (
        (start["transmat"][:, None, :, None] * start["weights"][None, None])
        .repeat(M, axis=1)
        .reshape(K * M, K * M)
    )
    big.means_ = start["means"].reshape(K * M, D)
    big.covars_ = cov.reshape(K * M, *cov.shape[2:])
    post = big.predict_proba(X, lengths)
    assert rel(big.score(X, lengths), gmmhmm.score(X, lengths)) < 1e-10
    big.fit(X, lengths)

    one = HMM(K, init=start, max_iter=1, tol=0.0, **kw).fit(X, lengths)
    np.testing.assert_allclose(one.means_.reshape(K * M, D), big.means_, atol=1e-8)
    np.testing.assert_allclose(
        one.covariances_.reshape(K * M, *cov.shape[2:]), big._covars_, atol=1e-8
    )
    counts = post.sum(axis=0).reshape(K, M)
    np.testing.assert_allclose(one.weights_, counts / counts.sum(axis=1, keepdims=True), atol=1e-8)
    assert one.covars_ is one.covariances_  # hmmlearn's name


def test_bic_aic_match_hmmlearn():
    rng = np.random.default_rng(15)
    X, lengths, _, K = gaussian_data(rng)
    for cov_type in ("diag", "full"):
        model = HMM(K, covariance_type=cov_type, random_state=0, max_iter=10).fit(X, lengths)
        peer = hl.GaussianHMM(K, covariance_type=cov_type, init_params="")
        peer.startprob_, peer.transmat_ = model.startprob_, model.transmat_
        peer.means_, peer.covars_ = model.means_, model.covariances_
        peer.n_features = X.shape[1]
        assert model.bic(X, lengths) == pytest.approx(peer.bic(X, lengths), rel=1e-10)
        assert model.aic(X, lengths) == pytest.approx(peer.aic(X, lengths), rel=1e-10)
