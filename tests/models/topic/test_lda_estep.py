"""LDA's variational E-step against scikit-learn's on the same topics, and identities."""

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from lda_cases import sample_corpus, sklearn_at
from scipy.special import digamma as scipy_digamma

from emkit.models.topic.kernels import digamma
from emkit.models.topic.model import infer_documents, topic_word_bound

pytest.importorskip("sklearn")

TIGHT = {"tol": 1e-12, "max_iter": 5000}


@pytest.fixture(scope="module")
def case():
    X, _, _ = sample_corpus(150, 40, 5, length=30, seed=1)
    lam = np.random.default_rng(2).gamma(2.0, 1.0, (5, 40))
    return X, lam


def test_digamma_matches_scipy():
    x = np.concatenate([np.logspace(-8, 4, 400), np.linspace(0.01, 30.0, 400)])
    want = scipy_digamma(x)
    np.testing.assert_allclose(digamma(x), want, rtol=2e-15, atol=2e-15)


def test_gamma_and_expected_counts_match_scikit_learn(case):
    X, lam = case
    sk = sklearn_at(lam, 0.3, 0.1, mean_change_tol=1e-12, max_doc_update_iter=5000)
    gamma_sk, counts_sk = sk._e_step(X, cal_sstats=True, random_init=False)
    gamma, _, counts = infer_documents(X, lam, 0.3, None, stats=True, **TIGHT)
    np.testing.assert_allclose(gamma, gamma_sk, rtol=1e-6)
    np.testing.assert_allclose(counts, counts_sk, rtol=1e-6, atol=1e-9)


def test_bound_matches_scikit_learn(case):
    X, lam = case
    sk = sklearn_at(lam, 0.3, 0.1)
    gamma, bound, _ = infer_documents(X, lam, 0.3, None, stats=False, **TIGHT)
    # scikit-learn's bound of these gammas: the documents' terms plus the topics' terms
    want = sk._approx_bound(X, gamma, sub_sampling=False)
    got = bound.sum() + topic_word_bound(lam, 0.1)
    # scikit-learn's own digamma is truncated (errors up to ~2e-9 near 6): hence 1e-8
    assert got == pytest.approx(want, rel=1e-8)


def test_expected_counts_add_up_to_the_word_counts(case):
    # each word's topic distribution phi sums to 1, so the counts keep every word
    X, lam = case
    _, _, counts = infer_documents(X, lam, 0.3, None, stats=True, tol=1e-3, max_iter=3)
    np.testing.assert_allclose(counts.sum(axis=0), np.asarray(X.sum(axis=0)).ravel(), rtol=1e-12)


def test_tiny_priors_take_the_log_space_path():
    # with priors of 1e-4 the scaled exponentials underflow for many words: those words
    # are done in log space, and the bound still equals scikit-learn's (log-sum-exp) bound
    X, _, _ = sample_corpus(60, 30, 4, length=40, seed=3)
    rng = np.random.default_rng(4)
    lam = np.where(rng.random((4, 30)) < 0.3, 1e-4, rng.gamma(2.0, 5.0, (4, 30)))
    gamma, bound, counts = infer_documents(X, lam, 1e-4, None, stats=True, **TIGHT)
    assert np.all(np.isfinite(gamma)) and np.all(np.isfinite(counts))
    sk = sklearn_at(lam, 1e-4, 1e-4)
    want = sk._approx_bound(X, gamma, sub_sampling=False)
    assert bound.sum() + topic_word_bound(lam, 1e-4) == pytest.approx(want, rel=1e-8)
    np.testing.assert_allclose(counts.sum(axis=0), np.asarray(X.sum(axis=0)).ravel(), rtol=1e-9)


def test_results_do_not_depend_on_the_thread_count(case):
    X, lam = case
    old = numba.get_num_threads()
    try:
        runs = []
        for n in {1, numba.config.NUMBA_NUM_THREADS}:
            numba.set_num_threads(n)
            runs.append(infer_documents(X, lam, 0.3, None, stats=True, tol=1e-3, max_iter=50))
    finally:
        numba.set_num_threads(old)
    for a, b in zip(runs[0], runs[-1]):
        np.testing.assert_array_equal(a, b)


def test_empty_documents_keep_the_prior(case):
    X, lam = case
    X = sp.vstack([sp.csr_matrix((2, X.shape[1])), X]).tocsr()
    gamma, bound, _ = infer_documents(X, lam, 0.3, None, stats=True, tol=1e-3, max_iter=50)
    np.testing.assert_allclose(gamma[:2], 0.3)
    np.testing.assert_allclose(bound[:2], 0.0, atol=1e-12)  # q(theta) = prior: KL 0


def test_one_update_equals_the_log_space_formula_where_exponentials_underflow():
    # a document all in topic 0 (gamma 1e-4 elsewhere) holding words that topic 0 gives
    # lambda 1e-4: exp(E[log theta]) exp(E[log beta]) underflows for every topic, so
    # these words need the log-space path; one update is checked against the formula
    # gamma_k = alpha + sum_w n_w softmax_k(E[log theta_k] + E[log beta_kw])
    from scipy.special import logsumexp

    alpha = 1e-4
    lam = np.array([[50.0, 50.0, 1e-4, 1e-4], [1e-4, 1e-4, 50.0, 1e-4], [1e-4, 1e-4, 1e-4, 50.0]])
    X = sp.csr_matrix(np.array([[3.0, 0.0, 2.0, 1.0], [0.0, 4.0, 0.0, 5.0]]))
    start = np.array([[100.0, 1e-4, 1e-4], [1e-4, 1e-4, 80.0]])
    gamma, bound, counts = infer_documents(X, lam, alpha, start, stats=True, tol=0.0, max_iter=1)
    elog_theta = scipy_digamma(start) - scipy_digamma(start.sum(axis=1, keepdims=True))
    elog_beta = scipy_digamma(lam) - scipy_digamma(lam.sum(axis=1, keepdims=True))
    dense = X.toarray()
    want = np.full_like(start, alpha)
    for d in range(2):
        logits = elog_theta[d][:, None] + elog_beta  # (K, V)
        phi = np.exp(logits - logsumexp(logits, axis=0))
        want[d] += phi @ dense[d]
    np.testing.assert_allclose(gamma, want, rtol=1e-9)
    assert np.all(np.isfinite(bound)) and np.all(np.isfinite(counts))
    sk = sklearn_at(lam, alpha, 1.0)
    assert bound.sum() + topic_word_bound(lam, 1.0) == pytest.approx(
        sk._approx_bound(X, gamma, sub_sampling=False), rel=1e-8
    )
