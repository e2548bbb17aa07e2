"""Poisson and categorical HMMs against independent references: one EM step with
missing rows and entries against path enumeration, sampling against the chain's own
frequencies, and online EM against hmmlearn's batch fit of the same model."""

import itertools
import warnings

import numpy as np
import pytest
from hmm_cases import brute_force, fit_hmmlearn, sample_hmm
from hmmlearn import hmm as hl
from scipy import stats

from emkit import HMM

START = np.array([0.6, 0.4])
TRANS = np.array([[0.8, 0.2], [0.3, 0.7]])


def _poisson_log_b(X, rates):
    """log p(x_t | k) of the observed entries by scipy (NaN entries integrated out)."""
    out = np.zeros((len(X), len(rates)))
    for k, r in enumerate(rates):
        lp = stats.poisson.logpmf(np.nan_to_num(X), r)
        out[:, k] = np.where(np.isnan(X), 0.0, lp).sum(axis=1)
    return out


def _categorical_log_b(x, probs):
    out = np.zeros((len(x), len(probs)))
    seen = ~np.isnan(x)
    out[seen] = np.log(probs[:, x[seen].astype(int)]).T
    return out


def _enumerated_step(log_b, lengths):
    """Log-likelihood, posteriors and the new start/transition probabilities of one EM
    step, by enumerating every state path of every sequence."""
    bounds = np.cumsum([0, *lengths])
    parts = [brute_force(log_b[a:b], START, TRANS) for a, b in itertools.pairwise(bounds)]
    post = np.vstack([p[1] for p in parts])
    xi = sum(p[2] for p in parts)
    first = sum(p[1][0] for p in parts)
    return sum(p[0] for p in parts), post, first / first.sum(), xi / xi.sum(1, keepdims=True)


def _one_step(start, X, lengths, **kw):
    return HMM(2, init=start, max_iter=1, tol=None, check_monotone="raise", **kw).fit(X, lengths)


def test_poisson_step_with_missing_entries_and_rows_matches_path_enumeration():
    rng = np.random.default_rng(41)
    X = rng.poisson([[2.0, 5.0]], size=(10, 2)).astype(float)
    X[[1, 6]] = np.nan  # whole rows missing
    X[3, 0] = X[8, 1] = np.nan  # single entries missing
    lengths = [6, 4]
    rates = np.array([[1.0, 6.0], [4.0, 2.0]])
    loglik, post, startprob, transmat = _enumerated_step(_poisson_log_b(X, rates), lengths)
    start = {"startprob": START, "transmat": TRANS, "rates": rates}
    assert HMM(2, emission="poisson", init=start, max_iter=0).fit(X, lengths).score(
        X, lengths
    ) == pytest.approx(loglik, rel=1e-12)
    # a missing entry of a partly observed row is a latent count too: the step replaces it
    # by its expectation under the current rate of each state; rows with nothing observed
    # carry no emission
    rows = ~np.isnan(X).all(axis=1)
    w, Xr = post[rows], X[rows]
    filled = w.T @ np.nan_to_num(Xr) + (w.T @ np.isnan(Xr)) * rates
    expected_rates = filled / w.sum(axis=0)[:, None]
    one = _one_step(start, X, lengths, emission="poisson")
    np.testing.assert_allclose(one.rates_, expected_rates, rtol=1e-12)
    np.testing.assert_allclose(one.startprob_, startprob, rtol=1e-12)
    np.testing.assert_allclose(one.transmat_, transmat, rtol=1e-12)


def test_categorical_step_with_missing_rows_matches_path_enumeration():
    rng = np.random.default_rng(42)
    x = rng.integers(0, 3, size=11).astype(float)
    x[[0, 5, 6]] = np.nan
    lengths = [7, 4]
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    loglik, post, startprob, transmat = _enumerated_step(_categorical_log_b(x, probs), lengths)
    start = {"startprob": START, "transmat": TRANS, "emissionprob": probs}
    X = x[:, None]
    assert HMM(2, emission="categorical", init=start, max_iter=0).fit(X, lengths).score(
        X, lengths
    ) == pytest.approx(loglik, rel=1e-12)
    seen = ~np.isnan(x)
    counts = post[seen].T @ np.eye(3)[x[seen].astype(int)]
    one = _one_step(start, X, lengths, emission="categorical")
    np.testing.assert_allclose(one.emissionprob_, counts / counts.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(one.startprob_, startprob, rtol=1e-12)
    np.testing.assert_allclose(one.transmat_, transmat, rtol=1e-12)


@pytest.mark.parametrize("emission", ["poisson", "categorical"])
def test_sample_follows_the_chain_and_the_emissions(emission):
    n = 60_000
    start = {"startprob": START, "transmat": TRANS}
    if emission == "poisson":
        start["rates"] = np.array([[1.0, 6.0], [4.0, 0.5]])
        X0 = np.zeros((3, 2))
    else:
        start["emissionprob"] = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
        X0 = np.array([[0.0], [1.0], [2.0]])
    model = HMM(2, emission=emission, init=start, max_iter=0).fit(X0)
    X, z = model.sample(n, random_state=3)
    # transition frequencies against the matrix, state shares against the stationary law
    pairs = np.zeros((2, 2))
    np.add.at(pairs, (z[:-1], z[1:]), 1)
    np.testing.assert_allclose(pairs / pairs.sum(1, keepdims=True), TRANS, atol=0.01)
    stationary = np.array([TRANS[1, 0], TRANS[0, 1]]) / (TRANS[1, 0] + TRANS[0, 1])
    np.testing.assert_allclose(np.bincount(z) / n, stationary, atol=0.015)
    for k in range(2):
        if emission == "poisson":
            np.testing.assert_allclose(X[z == k].mean(0), start["rates"][k], rtol=0.03)
            np.testing.assert_allclose(X[z == k].var(0), start["rates"][k], rtol=0.06)
        else:
            freq = np.bincount(X[z == k, 0].astype(int), minlength=3) / np.sum(z == k)
            np.testing.assert_allclose(freq, start["emissionprob"][k], atol=0.015)


def test_online_poisson_hmm_reaches_hmmlearns_batch_fit():
    rng = np.random.default_rng(43)
    rates = np.array([[1.0, 6.0], [5.0, 1.0]])
    lengths = [100] * 40
    X, _ = sample_hmm(rng, START, TRANS, lambda k: rng.poisson(rates[k]), lengths)
    start = {"startprob": np.array([0.5, 0.5]), "transmat": np.full((2, 2), 0.5)}
    start["rates"] = np.array([[2.0, 4.0], [4.0, 2.0]])
    peer = fit_hmmlearn(hl.PoissonHMM(2), start, X, lengths, 300, lambdas_=start["rates"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        online = HMM(
            2, emission="poisson", init=start, variant="online", batch_size=4, max_iter=30
        ).fit(X, lengths)
    # within the noise of the step sizes of the batch maximum (hmmlearn's), and well
    # above the start
    best, at_start = peer.score(X, lengths), HMM(2, emission="poisson", init=start, max_iter=0)
    first = at_start.fit(X, lengths).score(X, lengths)
    got = online.score(X, lengths)
    assert best - first > 500
    assert got == pytest.approx(best, abs=2.0)
    np.testing.assert_allclose(online.rates_, peer.lambdas_, rtol=0.03)
    np.testing.assert_allclose(online.transmat_, peer.transmat_, atol=0.02)


@pytest.mark.parametrize(
    ("symbol", "match"),
    [
        (1e6, "largest symbol is 1e.06.*pass n_categories="),
        (1e150, "largest symbol is 1e.150"),
        (2.5, "must be integers 0, 1, 2, ...; got 2.5"),
        (-1.0, "must be integers 0, 1, 2, ...; got -1"),
    ],
)
def test_categorical_symbols_out_of_a_sane_range_are_refused_at_once(symbol, match):
    X = np.tile([[0.0], [1.0], [2.0]], (20, 1))
    X[3, 0] = symbol
    with pytest.raises(ValueError, match=match):
        HMM(2, emission="categorical").fit(X)


def test_categorical_n_categories_sizes_the_table_and_bounds_the_symbols():
    X = np.tile([[0.0], [1.0], [2.0]], (20, 1))
    model = HMM(2, emission="categorical", n_categories=6, random_state=0, max_iter=5).fit(X)
    assert model.emissionprob_.shape == (2, 6)
    np.testing.assert_allclose(model.emissionprob_[:, 3:], 0.0, atol=1e-12)  # never seen
    X[3, 0] = 7
    with pytest.raises(ValueError, match=r"out of range \[0, 6\), e.g. 7 in row 3"):
        HMM(2, emission="categorical", n_categories=6).fit(X)
