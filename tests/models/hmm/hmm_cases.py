"""Shared cases of the HMM tests: sequences sampled by plain loops, starting parameters,
and references independent of emkit (path enumeration, scipy densities, hmmlearn fits)."""

import itertools
import warnings

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from emkit import HMM
from emkit.data.sequences import SequenceSource

COV_TYPES = ["diag", "full", "tied", "spherical"]


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


def categorical_data(rng, lengths=(50, 200, 7, 120), C=5):
    K = 3
    emit = np.array(
        [[0.6, 0.3, 0.1, 0.0, 0.0], [0.0, 0.1, 0.3, 0.6, 0.0], [0.2, 0.0, 0.0, 0.2, 0.6]]
    )
    transmat = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]])
    X, z = sample_hmm(rng, np.ones(K) / K, transmat, lambda k: [rng.choice(C, p=emit[k])], lengths)
    return X, list(lengths), z, K


def source(model, X, lengths):
    """The engine's data source of an estimator's prepared sequences."""
    part = model._emission_part(X)
    data, missing = part.prepare(X)
    return SequenceSource((data, missing), np.cumsum([0, *lengths]))
