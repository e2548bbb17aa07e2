"""The LDA model on the engine: a monotone ELBO, additive statistics, held topics."""

import warnings

import numpy as np
import pytest
from lda_cases import sample_corpus, sklearn_at

import emkit
from emkit.engine import MonotonicityWarning
from emkit.models.topic.model import LDAModel, topic_word_bound

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def corpus():
    X, _, _ = sample_corpus(300, 60, 6, length=50, seed=5)
    return X


def _data(X):
    return (X, np.arange(X.shape[0]))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"batch_size": 70},  # the E-step in chunks of documents
        {"max_doc_update_iter": 1},  # one local update per pass
        {"mean_change_tol": 0.5},  # loose inner tolerance
    ],
    ids=["whole", "chunks", "one-update", "loose"],
)
def test_the_elbo_never_decreases_in_batch_mode(corpus, options):
    options = dict(options)
    batch_size = options.pop("batch_size", None)
    model = LDAModel(6, 0.1, 0.05, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonotonicityWarning)
        result = emkit.em(
            model,
            _data(corpus),
            max_iter=40,
            tol=0.0,
            random_state=3,
            batch_size=batch_size,
            check_monotone="raise",
        )
    assert result.objective_name == "elbo"
    assert result.n_iter == 40
    assert np.all(np.diff(result.history) >= 0)
    assert result.history[-1] > result.initial_loglik + 1.0  # it did climb


def test_the_recorded_elbo_is_scikit_learns_bound(corpus):
    # the E-step's documents' terms plus log_prior (the topics' terms) equal
    # scikit-learn's bound of the same topics at the E-step's gamma
    model = LDAModel(6, 0.1, 0.05)
    params = model.init_params(_data(corpus), np.random.default_rng(0))
    params = model.mstep(model.estep(params, _data(corpus))[0], params)
    stats, bound = model.estep(params, _data(corpus))
    sk = sklearn_at(params["topic_word"], 0.1, 0.05)
    want = sk._approx_bound(corpus, stats["doc_topic"], sub_sampling=False)
    assert bound + model.log_prior(params) == pytest.approx(want, rel=1e-8)


def test_statistics_add_up_over_a_split_of_the_documents(corpus):
    model = LDAModel(6, 0.1, 0.05)
    rng = np.random.default_rng(1)
    params = model.init_params(_data(corpus), rng)
    params = model.mstep(model.estep(params, _data(corpus))[0], params)
    whole, bound = model.estep(params, _data(corpus))
    part = rng.permutation(corpus.shape[0])
    a, b = np.sort(part[:110]), np.sort(part[110:])
    stats_a, bound_a = model.estep(params, (corpus[a], a))
    stats_b, bound_b = model.estep(params, (corpus[b], b))
    for key in ("topic_word", "doc_topic", "doc_bound"):
        np.testing.assert_allclose(stats_a[key] + stats_b[key], whole[key], rtol=1e-12, atol=1e-9)
    assert bound_a + bound_b == pytest.approx(bound, rel=1e-12)
    # the same holds for online variational Bayes' statistics
    online = LDAModel(6, 0.1, 0.05, warm_start=False)
    p = {"topic_word": params["topic_word"], "doc_topic": None, "floor": None}
    s_all, _ = online.estep(p, (corpus, None))
    s_a, _ = online.estep(p, (corpus[a], None))
    s_b, _ = online.estep(p, (corpus[b], None))
    np.testing.assert_allclose(
        s_a["topic_word"] + s_b["topic_word"], s_all["topic_word"], rtol=1e-12
    )


def test_holding_the_topics_is_inference(corpus):
    fitted = emkit.LDA(6, 0.1, 0.05, max_iter=5, tol=1.0, random_state=0).fit(corpus)
    lam = fitted.components_
    model = LDAModel(6, 0.1, 0.05).hold(["topic_word"])
    start = model.init_params(_data(corpus), np.random.default_rng(0))
    start["topic_word"] = lam
    result = emkit.em(model, _data(corpus), init=start, max_iter=3, tol=0.0, check_monotone="raise")
    np.testing.assert_array_equal(result.params["topic_word"], lam)
    # the documents' factors are scikit-learn's at these topics
    sk = sklearn_at(lam, 0.1, 0.05, mean_change_tol=1e-3)
    gamma = result.params["doc_topic"]
    np.testing.assert_allclose(
        gamma / gamma.sum(axis=1, keepdims=True), sk.transform(corpus), atol=2e-3
    )
    assert result.objective == pytest.approx(
        sk._approx_bound(corpus, gamma, sub_sampling=False), rel=1e-4
    )


def test_hold_rejects_names_that_are_not_held_parameters():
    model = LDAModel(3, 0.1, 0.1)
    with pytest.raises(ValueError, match="unknown parameter 'beta'"):
        model.hold(["beta"])
    with pytest.raises(ValueError, match="'doc_topic' cannot be held"):
        model.hold(["doc_topic"])
    held = model.hold("topic_word")
    assert held.held == {"topic_word"} and model.held == frozenset()  # a copy


def test_the_topics_terms_are_a_negative_kl_divergence():
    # E[log p(beta | eta)] - E[log q(beta | lambda)] = -KL(q || p): zero at lambda = eta,
    # negative elsewhere (checked against a Monte Carlo estimate)
    from scipy.stats import dirichlet

    assert topic_word_bound(np.full((2, 5), 0.3), 0.3) == pytest.approx(0.0, abs=1e-12)
    lam = np.array([[2.0, 1.0, 0.5, 3.0]])
    rng = np.random.default_rng(0)
    draws = rng.dirichlet(lam[0], 200_000)
    kl = np.mean(dirichlet.logpdf(draws.T, lam[0]) - dirichlet.logpdf(draws.T, np.full(4, 0.7)))
    assert topic_word_bound(lam, 0.7) == pytest.approx(-kl, rel=2e-2)


def test_a_wrong_m_step_is_caught_and_named_as_the_elbo(corpus):
    # the certificate is live for LDA: an M-step that gives each word the counts of
    # another word lowers the ELBO, and the engine's message names the ELBO
    class Wrong(LDAModel):
        def mstep(self, stats, params):
            new = super().mstep(stats, params)
            if np.isfinite(params["floor"]):  # from the second step on
                new["topic_word"] = self.eta + stats["topic_word"][:, ::-1]
            return new

    with pytest.raises(emkit.MonotonicityError, match="the ELBO decreased"):
        emkit.em(Wrong(6, 0.1, 0.05), _data(corpus), max_iter=10, tol=0.0, check_monotone="raise")
