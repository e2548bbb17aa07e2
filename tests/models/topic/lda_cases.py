"""Corpora sampled from latent Dirichlet allocation, and scikit-learn's LDA at given topics."""

import numpy as np
import scipy.sparse as sp


def sample_corpus(n_docs, n_words, n_topics, *, length=80, alpha=0.2, eta=0.05, seed=0):
    """(X as CSR, true topics (K, V), true proportions (N, K)) drawn from the LDA model."""
    rng = np.random.default_rng(seed)
    topics = rng.dirichlet(np.full(n_words, eta), n_topics)
    props = rng.dirichlet(np.full(n_topics, alpha), n_docs)
    lengths = rng.poisson(length, n_docs)
    rows = [rng.multinomial(n, p @ topics) for n, p in zip(lengths, props)]
    return sp.csr_matrix(np.array(rows, dtype=np.float64)), topics, props


def sklearn_at(components, doc_topic_prior, topic_word_prior, **options):
    """scikit-learn's LatentDirichletAllocation holding the topic-word parameters
    ``components`` (so its transform, score and perplexity judge them)."""
    from sklearn.decomposition import LatentDirichletAllocation
    from sklearn.decomposition._online_lda_fast import _dirichlet_expectation_2d

    K, V = components.shape
    sk = LatentDirichletAllocation(
        n_components=K,
        doc_topic_prior=doc_topic_prior,
        topic_word_prior=topic_word_prior,
        max_iter=1,
        random_state=0,
        **options,
    )
    sk.fit(np.ones((2, V)))  # sets the fitted bookkeeping; the topics are replaced below
    sk.components_ = np.array(components, dtype=np.float64)
    sk.exp_dirichlet_component_ = np.exp(_dirichlet_expectation_2d(sk.components_))
    return sk
