"""Latent Dirichlet allocation: emkit.LDA against scikit-learn's LatentDirichletAllocation.

Both fit the same sampled corpus (a documents x words CSR matrix of counts) for the
same number of passes, batch variational EM and online variational Bayes, and are
judged on held-out documents by their own ``perplexity`` (the same definition:
``exp(-bound / words)``). The project's target: at least 2x faster per pass with one
thread each, at equal or better held-out perplexity.

*Corpus*: ``K`` topics drawn from Dirichlet(0.05) over ``V`` words, each document's
proportions from Dirichlet(0.1), Poisson(100) words per document; ``n_docs`` training
documents and ``n_docs / 5`` held out. Both libraries use their defaults otherwise:
priors ``1 / K``, inner loop ``mean_change_tol=1e-3`` and at most 100 updates per
document; online: mini-batches of 128 documents, step sizes ``(t + 10) ** -0.7``.
They start from different random topics (each its own generator, the same
Gamma(100, 1/100) law), so the perplexities differ by their local optima too.

*Passes*: ``--iters`` passes each (``tol=0`` for emkit, ``evaluate_every=-1`` for
scikit-learn, so neither stops early). emkit's online fit also evaluates the whole
corpus's ELBO after each pass (one more E-step per pass, included in its time);
scikit-learn's does not. s/iter is fit time / passes.

Row: ``loglik`` columns hold each library's held-out per-word bound
(``-log perplexity``), so ``|dLL|/|LL|`` is their relative gap; the perplexities and
their ratio (``perplexity_ratio``, emkit / scikit-learn: at most 1 is the target) are
in the row and on stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from _common import comparison_row, quiet, time_interleaved

__all__ = ["WORKLOADS", "LDAWorkload", "run"]

#: ``run.py`` matches this against ``--only`` to select every workload of the module
NAME = "lda"
#: timed fits per library at most (a scikit-learn fit takes tens of seconds)
MAX_REPEATS = 3


@dataclass(frozen=True)
class LDAWorkload:
    """Corpus size, number of topics and method of one benchmark."""

    name: str
    n_docs: int
    n_words: int
    n_topics: int
    method: str  # "batch" or "online"
    doc_length: int = 100


WORKLOADS = [
    LDAWorkload("lda-batch", 5_000, 2_000, 20, "batch"),
    LDAWorkload("lda-online", 5_000, 2_000, 20, "online"),
]


def make_corpus(w: LDAWorkload, n_docs: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(training, held-out) count matrices sampled from an LDA model fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    topics = rng.dirichlet(np.full(w.n_words, 0.05), w.n_topics)
    n_total = n_docs + max(n_docs // 5, 1)
    props = rng.dirichlet(np.full(w.n_topics, 0.1), n_total)
    lengths = rng.poisson(w.doc_length, n_total)
    rows = np.array([rng.multinomial(n, p @ topics) for n, p in zip(lengths, props)])
    X = sp.csr_matrix(rows.astype(np.float64))
    return X[:n_docs], X[n_docs:]


def run(workload: LDAWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved fits of both libraries; time per pass and held-out perplexity."""
    from sklearn.decomposition import LatentDirichletAllocation

    import emkit
    from emkit.exceptions import ConvergenceWarning

    w = workload
    n_docs = max(int(w.n_docs * args.scale), 10 * w.n_topics)
    train, test = make_corpus(w, n_docs, args.seed)
    passes = args.iters
    online = w.method == "online"
    extra = {"batch_size": 128} if online else {}

    def fit_emkit(n_passes: int = passes):
        model = emkit.LDA(
            w.n_topics, method=w.method, max_iter=n_passes, tol=0.0, random_state=args.seed, **extra
        )
        return model.fit(train)

    def fit_sklearn(n_passes: int = passes):
        model = LatentDirichletAllocation(
            n_components=w.n_topics,
            learning_method=w.method,
            max_iter=n_passes,
            evaluate_every=-1,
            random_state=args.seed,
            **extra,
        )
        return model.fit(train)

    with quiet(ConvergenceWarning), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit_emkit(1), fit_sklearn(1)  # warm-up (compiles or loads the kernels)
        repeats = min(args.repeats, MAX_REPEATS)
        times, last = time_interleaved({"emkit": fit_emkit, "sklearn": fit_sklearn}, repeats)
    ours, peer = last["emkit"], last["sklearn"]
    perp_ours, perp_peer = ours.perplexity(test), peer.perplexity(test)
    print(
        f"    held-out perplexity: emkit {perp_ours:.2f}, scikit-learn {perp_peer:.2f} "
        f"(ratio {perp_ours / perp_peer:.4f})",
        file=sys.stderr,
    )
    return comparison_row(
        workload=w.name,
        peer="sklearn",
        emkit_times=times["emkit"],
        peer_times=times["sklearn"],
        emkit_iters=passes,
        peer_iters=passes,
        emkit_loglik=-math.log(perp_ours),
        peer_loglik=-math.log(perp_peer),
        n_docs=n_docs,
        n_heldout=test.shape[0],
        n_words=w.n_words,
        n_topics=w.n_topics,
        nnz=int(train.nnz),
        method=w.method,
        emkit_perplexity=perp_ours,
        peer_perplexity=perp_peer,
        perplexity_ratio=perp_ours / perp_peer,
        note=f"held-out perplexity emkit/sklearn = {perp_ours / perp_peer:.4f}",
    )


if __name__ == "__main__":
    print("run through benchmarks/run.py, e.g. --only lda", file=sys.stderr)
