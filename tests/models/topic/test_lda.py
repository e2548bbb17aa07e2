"""emkit.LDA: planted topics, scikit-learn's perplexity, online VB, bad input, persistence."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from lda_cases import sample_corpus, sklearn_at
from scipy.optimize import linear_sum_assignment

import emkit
from emkit.exceptions import ConvergenceWarning, NotFittedError

pytest.importorskip("sklearn")
from sklearn.decomposition import LatentDirichletAllocation


def _corpus(seed):
    X, topics, _ = sample_corpus(800, 80, 5, length=60, alpha=0.2, eta=0.05, seed=seed)
    return X[:600], X[600:], topics


@pytest.fixture(scope="module")
def small():
    X, _, _ = sample_corpus(120, 30, 3, length=40, seed=11)
    return X


@pytest.fixture(scope="module")
def fitted(small):
    return emkit.LDA(3, max_iter=50, tol=1e-3, random_state=0).fit(small)


def _topic_distance(true, components):
    """Largest total-variation distance between a true topic and its matched estimate."""
    est = components / components.sum(axis=1, keepdims=True)
    tv = 0.5 * np.abs(true[:, None, :] - est[None]).sum(axis=-1)
    rows, cols = linear_sum_assignment(tv)
    return tv[rows, cols].max()


@pytest.mark.parametrize("seed", [3, 4])
def test_recovers_planted_topics(seed):
    train, test, topics = _corpus(seed)
    X = sp.vstack([train, test]).tocsr()
    lda = emkit.LDA(5, max_iter=200, tol=1e-3, n_init=3, random_state=seed).fit(X)
    assert lda.converged_
    # each true topic is matched by a learned one (about 48,000 words: TV error ~0.02)
    assert _topic_distance(topics, lda.components_) < 0.06
    # a random-topics baseline is far away, so the bound is not vacuous
    noise = np.random.default_rng(0).dirichlet(np.full(80, 0.05), 5)
    assert _topic_distance(topics, noise) > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_held_out_perplexity_is_within_two_percent_of_scikit_learns(seed):
    train, test, _ = _corpus(seed)
    sk = LatentDirichletAllocation(5, learning_method="batch", max_iter=100, random_state=seed)
    sk.fit(train)
    lda = emkit.LDA(5, max_iter=200, tol=1e-3, random_state=seed).fit(train)
    ours = lda.perplexity(test)
    assert ours <= 1.02 * sk.perplexity(test)
    # scikit-learn, judging our topics, agrees with our perplexity and score
    judge = sklearn_at(lda.components_, 0.2, 0.2)
    assert ours == pytest.approx(judge.perplexity(test), rel=1e-6)
    assert lda.score(test) == pytest.approx(judge.score(test), rel=1e-6)


def test_online_approaches_batch_perplexity():
    train, test, _ = _corpus(1)
    batch = emkit.LDA(5, max_iter=200, tol=1e-3, random_state=1).fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        online = emkit.LDA(5, method="online", batch_size=100, max_iter=30, random_state=1)
        online.fit(train)
    assert online.objective_name_ == "elbo"
    assert online.n_batch_iter_ == online.n_iter_ * 6
    assert online.perplexity(test) <= 1.03 * batch.perplexity(test)
    # one pass of online VB is far from it: the passes matter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        early = emkit.LDA(5, method="online", batch_size=100, max_iter=1, random_state=1)
        early.fit(train)
    assert early.perplexity(test) > online.perplexity(test)


def test_partial_fit_learns_the_topics():
    train, test, _ = _corpus(2)
    lda = emkit.LDA(5, total_samples=600, random_state=2)
    for _ in range(15):
        for start in range(0, 600, 100):
            lda.partial_fit(train[start : start + 100])
    assert lda.n_batch_iter_ == 90 and len(lda.history_) == 90
    batch = emkit.LDA(5, max_iter=200, tol=1e-3, random_state=2).fit(train)
    assert lda.perplexity(test) <= 1.05 * batch.perplexity(test)


def test_fit_records_the_elbo(fitted, small):
    assert fitted.objective_name_ == "elbo"
    assert fitted.elbo_ == fitted.loglik_ == fitted.history_[-1]
    assert np.all(np.diff(fitted.history_) >= 0)
    assert fitted.doc_topic_prior_ == fitted.topic_word_prior_ == pytest.approx(1 / 3)
    # the training ELBO is scikit-learn's bound at the fitted topics (the documents'
    # factors differ a little: those of the last pass against a fresh transform)
    assert fitted.elbo_ == pytest.approx(
        sklearn_at(fitted.components_, 1 / 3, 1 / 3).score(small), rel=1e-3
    )


def test_messages_name_the_elbo(small, capsys):
    with pytest.warns(ConvergenceWarning, match="on the ELBO per observation"):
        emkit.LDA(3, max_iter=2, tol=0.0, random_state=0, verbose=1).fit(small)
    assert "elbo=" in capsys.readouterr().out


def test_transform_matches_scikit_learn(fitted, small):
    theta = fitted.transform(small)
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-12)
    judge = sklearn_at(fitted.components_, 1 / 3, 1 / 3)
    np.testing.assert_allclose(theta, judge.transform(small), atol=1e-6)
    np.testing.assert_allclose(fitted.transform(small.toarray()), theta, rtol=1e-12)
    np.testing.assert_allclose(fitted.fit_transform(small), theta, rtol=1e-12)


def test_dense_and_sparse_input_give_the_same_fit(small):
    a = emkit.LDA(3, max_iter=10, tol=0.0, random_state=0)
    b = emkit.LDA(3, max_iter=10, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(small)
        b.fit(small.toarray().astype(np.int64))
    np.testing.assert_array_equal(a.components_, b.components_)


def test_top_words(fitted):
    top = fitted.top_words(4)
    assert top.shape == (3, 4)
    for k in range(3):
        assert np.all(np.diff(fitted.components_[k, top[k]]) <= 0)
        assert fitted.components_[k, top[k, -1]] >= np.sort(fitted.components_[k])[-4]
    vocab = [f"w{i}" for i in range(30)]
    assert fitted.top_words(2, vocabulary=vocab)[0, 0] == f"w{top[0, 0]}"
    with pytest.raises(ValueError, match="one name per word"):
        fitted.top_words(2, vocabulary=vocab[:5])


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[1.0, -1.0], [2.0, 0.0]]), "negative counts"),
        (np.array([[1.0, 0.5], [2.0, 0.0]]), "non-integer counts"),
        (np.zeros((3, 0)), "empty vocabulary"),
        (np.zeros((0, 3)), "no documents"),
        (np.array([[1.0, np.nan], [2.0, 0.0]]), "non-finite"),
        (np.zeros((3, 4)), "no words"),
        (np.array([1.0, 2.0]), "2-D"),
    ],
)
def test_bad_counts_are_rejected(X, match):
    with pytest.raises(ValueError, match=match):
        emkit.LDA(2).fit(X)
    with pytest.raises(ValueError, match=match):
        emkit.LDA(2).fit(sp.csr_matrix(X)) if X.ndim == 2 else emkit.LDA(2).fit(X)


def test_text_is_rejected():
    with pytest.raises(TypeError, match="numeric counts"):
        emkit.LDA(2).fit(np.array([["a", "b"], ["c", "d"]]))


@pytest.mark.parametrize("name", ["doc_topic_prior", "topic_word_prior"])
@pytest.mark.parametrize("value", [0.0, -0.5, np.inf])
def test_priors_must_be_positive(small, name, value):
    with pytest.raises(ValueError, match=name):
        emkit.LDA(3, **{name: value}).fit(small)


def test_bad_hyper_parameters(small):
    with pytest.raises(ValueError, match="method"):
        emkit.LDA(3, method="stochastic").fit(small)
    with pytest.raises(ValueError, match="n_topics"):
        emkit.LDA(0).fit(small)
    with pytest.raises(ValueError, match="max_doc_update_iter"):
        emkit.LDA(3, max_doc_update_iter=0).fit(small)
    with pytest.raises(ValueError, match="init components must have shape"):
        emkit.LDA(3, init={"components": np.ones((2, 30))}).fit(small)


def test_transform_checks_the_number_of_words(fitted, small):
    with pytest.raises(ValueError, match="30 features"):
        fitted.transform(small[:, :20])
    with pytest.raises(ValueError, match="30 features"):
        fitted.perplexity(np.ones((2, 31)))
    with pytest.raises(NotFittedError):
        emkit.LDA(3).transform(small)


def test_a_failed_fit_keeps_the_previous_fit(small):
    lda = emkit.LDA(3, max_iter=20, tol=1e-3, random_state=0).fit(small)
    before = lda.components_.copy(), lda.elbo_, lda.history_.copy()
    with pytest.raises(ValueError, match="negative counts"):
        lda.fit(-small.toarray())
    lda.set_params(topic_word_prior=-1.0)
    with pytest.raises(ValueError, match="topic_word_prior"):
        lda.fit(small)
    np.testing.assert_array_equal(lda.components_, before[0])
    assert lda.elbo_ == before[1]
    np.testing.assert_array_equal(lda.history_, before[2])


def test_init_dict_starts_from_given_topics(small, fitted):
    lda = emkit.LDA(3, init={"components": fitted.components_}, max_iter=1, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lda.fit(small)
    # started at a converged fit, one more pass moves little
    np.testing.assert_allclose(lda.components_, fitted.components_, rtol=0.05, atol=0.2)


def test_save_and_load_round_trip(tmp_path, fitted, small):
    path = tmp_path / "lda.npz"
    fitted.save(path)
    same = emkit.load(path)
    assert isinstance(same, emkit.LDA)
    np.testing.assert_array_equal(same.components_, fitted.components_)
    np.testing.assert_array_equal(same.transform(small), fitted.transform(small))
    assert same.perplexity(small) == fitted.perplexity(small)
    assert same.elbo_ == fitted.elbo_ and same.objective_name_ == "elbo"
    # online steps continue the same way from the loaded model
    a = emkit.load(path).partial_fit(small[:40])
    b = fitted.__class__(**fitted.get_params())
    b.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    b.partial_fit(small[:40])
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.n_batch_iter_ == fitted.n_batch_iter_ + 1


def test_fixed_components_only_infer_the_documents(small, fitted):
    lam = fitted.components_
    lda = emkit.LDA(3, fixed={"components": lam}, max_iter=3, tol=0.0, random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lda.fit(small)
    np.testing.assert_array_equal(lda.components_, lam)
    assert np.all(np.diff(lda.history_) >= 0)
    with pytest.raises(ValueError, match="unknown parameter 'beta'"):
        emkit.LDA(3, fixed=["beta"]).fit(small)
    with pytest.raises(ValueError, match="positive"):
        emkit.LDA(3, fixed={"components": -lam}).fit(small)


@pytest.mark.parametrize(
    ("attr", "value", "match"),
    [
        ("components_", lambda c: -c, "components_ must be positive"),
        ("components_", lambda c: c[:, :5], "does not match"),
        ("doc_topic_prior_", lambda a: -a, "doc_topic_prior_ must be a positive"),
    ],
)
def test_load_refuses_broken_parameters(tmp_path, fitted, attr, value, match):
    import copy

    broken = copy.deepcopy(fitted)
    setattr(broken, attr, value(getattr(broken, attr)))
    path = tmp_path / "broken.npz"
    broken.save(path)
    with pytest.raises(ValueError, match=match):
        emkit.load(path)


def test_threads_give_the_same_fit(small):
    runs = []
    for n_jobs in (None, 2, -1):
        lda = emkit.LDA(3, max_iter=5, tol=0.0, random_state=0, n_jobs=n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            runs.append(lda.fit(small))
    for other in runs[1:]:
        np.testing.assert_array_equal(other.components_, runs[0].components_)
        np.testing.assert_array_equal(other.transform(small), runs[0].transform(small))
