"""emkit.HMM: agreement with hmmlearn, brute-force enumeration of state paths, a textbook
example and scikit-learn mixtures; EM properties; missing data; bad input."""

import itertools
import warnings

import numpy as np
import pytest
from hmmlearn import hmm as hl
from scipy import stats
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emkit
from emkit import HMM
from emkit._pytree import tree_add, tree_leaves
from emkit.data.sequences import SequenceSource
from emkit.distributions import Poisson
from emkit.exceptions import ConvergenceWarning
from emkit.models.hmm import HMMModel, HMMParams

pytestmark = pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")

COV_TYPES = ["diag", "full", "tied", "spherical"]


# --------------------------------------------------------------------------- helpers
def sample_hmm(rng, startprob, transmat, draw, lengths):
    """Sequences from an HMM, by a plain loop (independent of emkit's sampler)."""
    xs, zs = [], []
    for T in lengths:
        z = np.empty(T, dtype=int)
        z[0] = rng.choice(len(startprob), p=startprob)
        for t in range(1, T):
            z[t] = rng.choice(len(startprob), p=transmat[z[t - 1]])
        xs.append(np.array([draw(k) for k in z]))
        zs.append(z)
    return np.concatenate(xs), np.concatenate(zs)


def gaussian_data(rng, lengths=(60, 150, 9, 110), D=2):
    K = 3
    startprob = np.array([0.5, 0.3, 0.2])
    transmat = np.array([[0.85, 0.1, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    means = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 3.0]])[:, :D]
    X, z = sample_hmm(rng, startprob, transmat, lambda k: means[k] + rng.normal(size=D), lengths)
    return X, list(lengths), z, K


def gaussian_start(rng, X, K, cov_type):
    D = X.shape[1]
    cov = {
        "diag": np.ones((K, D)),
        "spherical": np.ones(K),
        "full": np.tile(np.eye(D), (K, 1, 1)),
        "tied": np.eye(D),
    }[cov_type]
    return {
        "startprob": rng.dirichlet(np.ones(K) * 5),
        "transmat": rng.dirichlet(np.ones(K) * 3, size=K),
        "means": X[rng.choice(len(X), K, replace=False)],
        "covariances": cov,
    }


def at(params, X, lengths=None, **kwargs):
    """An HMM with the given parameters (a fit with zero iterations starts and stays there)."""
    K = len(params["startprob"])
    return HMM(K, init=params, max_iter=0, **kwargs).fit(X, lengths)


def brute_force(log_b, startprob, transmat):
    """Log-likelihood, posteriors, summed xi, Viterbi path and its log-probability of one
    sequence by enumerating every state path."""
    T, K = log_b.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    with np.errstate(divide="ignore"):
        log_pi, log_a = np.log(startprob), np.log(transmat)
    joint = (
        log_pi[paths[:, 0]]
        + log_b[np.arange(T), paths].sum(axis=1)
        + log_a[paths[:, :-1], paths[:, 1:]].sum(axis=1)
    )
    total = logsumexp(joint)
    w = np.exp(joint - total)
    post = np.zeros((T, K))
    for t in range(T):
        np.add.at(post[t], paths[:, t], w)
    xi = np.zeros((K, K))
    for t in range(T - 1):
        np.add.at(xi, (paths[:, t], paths[:, t + 1]), w)
    best = int(np.argmax(joint))
    return total, post, xi, paths[best], joint[best]


def gaussian_log_b(X, means, covs):
    """log N(x_t | mean_k, cov_k) of the observed entries (NaN: integrated out; a row of
    NaN: log 1), by scipy.stats."""
    T, K = len(X), len(means)
    out = np.zeros((T, K))
    for t in range(T):
        obs = ~np.isnan(X[t])
        if not obs.any():
            continue
        for k in range(K):
            out[t, k] = stats.multivariate_normal.logpdf(
                X[t, obs], means[k][obs], covs[k][np.ix_(obs, obs)]
            )
    return out


def fit_hmmlearn(model, start, X, lengths, n_iter, **attrs):
    model.n_iter, model.tol, model.init_params = n_iter, -np.inf, ""
    # hmmlearn's convergence monitor is made in __init__ with the tolerance of then.
    model.monitor_.tol, model.monitor_.n_iter = -np.inf, n_iter
    model.startprob_, model.transmat_ = start["startprob"], start["transmat"]
    for name, value in attrs.items():
        setattr(model, name, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, lengths)


def rel(a, b):
    return abs(a - b) / abs(b)


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
    ours = HMM(K, covariance_type=cov_type, reg_covar=0.0, init=start, max_iter=25, tol=0.0)
    ours.fit(X, lengths)
    assert ours.n_iter_ <= 25
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-6
    np.testing.assert_allclose(ours.means_, peer.means_, atol=1e-6)
    theirs = peer._covars_[:, 0] if cov_type == "spherical" else peer._covars_
    np.testing.assert_allclose(ours.covariances_, theirs, atol=1e-6)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-6)
    np.testing.assert_allclose(ours.startprob_, peer.startprob_, atol=1e-6)


def categorical_data(rng, lengths=(50, 200, 7, 120), C=5):
    K = 3
    emit = np.array(
        [[0.6, 0.3, 0.1, 0.0, 0.0], [0.0, 0.1, 0.3, 0.6, 0.0], [0.2, 0.0, 0.0, 0.2, 0.6]]
    )
    transmat = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]])
    X, z = sample_hmm(rng, np.ones(K) / K, transmat, lambda k: [rng.choice(C, p=emit[k])], lengths)
    return X, list(lengths), z, K


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
    ours = HMM(K, emission="categorical", init=start, max_iter=30, tol=0.0).fit(X, lengths)
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-6
    np.testing.assert_allclose(ours.emissionprob_, peer.emissionprob_, atol=1e-6)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-6)


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
    ours = HMM(3, emission="poisson", init=start, max_iter=30, tol=0.0).fit(X, lengths)
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-6
    np.testing.assert_allclose(ours.rates_, peer.lambdas_, rtol=1e-6)


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
        tol=0.0,
        startprob_prior=sp,
        transmat_prior=tp,
        check_monotone="raise",
    ).fit(X, lengths)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-6)
    np.testing.assert_allclose(ours.startprob_, peer.startprob_, atol=1e-6)
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-6
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


def _source(model, X, lengths):
    part = model._emission_part(X)
    data, missing = part.prepare(X)
    return SequenceSource((data, missing), np.cumsum([0, *lengths]))


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
    cat = HMM(2, emission="categorical", random_state=0, check_monotone="raise").fit(symbols)
    assert cat.emissionprob_.shape == (2, 4)


# ------------------------------------------------------------------- other methods
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
    with pytest.raises(ValueError, match="categories out of range"):
        HMM(2, emission="categorical").fit(np.array([[0], [-1], [1]]))
    with pytest.raises(ValueError, match="non-integer"):
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
    result = emkit.em(model, _source(est, X, lengths), random_state=0, max_iter=50)
    assert isinstance(result.params, HMMParams) and isinstance(model, HMMModel)
    assert np.all(np.diff(result.history) >= -1e-9 * np.abs(result.history[1:]))
