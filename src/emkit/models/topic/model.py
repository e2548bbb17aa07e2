"""Latent Dirichlet allocation as a variational EM model for :func:`emkit.em`.

Generative model (Blei, Ng & Jordan 2003), for ``K`` topics over a vocabulary of
``V`` words::

    beta_k  ~ Dirichlet(eta 1_V)                 k = 1..K   (topic-word distributions)
    theta_d ~ Dirichlet(alpha 1_K)               d = 1..N   (document-topic proportions)
    z_di | theta_d ~ Categorical(theta_d),  w_di | z_di ~ Categorical(beta_{z_di})

Variational EM maximises the evidence lower bound (ELBO) over the mean-field family
``q(beta_k) = Dirichlet(lambda_k)``, ``q(theta_d) = Dirichlet(gamma_d)``,
``q(z_di) = phi_di`` by coordinate ascent (Blei, Kucukelbir & McAuliffe 2017): the
per-document (local) updates of ``gamma`` and ``phi`` are the E-step
(:mod:`emkit.models.topic.kernels`), the global update
``lambda_kw = eta + sum_d n_dw phi_dwk`` is the M-step. The E-step returns the
expected topic-word counts (additive over documents) and the documents' part of the
ELBO; :meth:`LDAModel.log_prior` holds the part that does not split over documents,
``E[log p(beta | eta)] - E[log q(beta | lambda)]``. The engine therefore tracks the
whole ELBO (``objective = "elbo"``).

Monotonicity: with ``warm_start=True`` (batch variational EM) the parameters also
carry each document's ``gamma`` from the previous E-step, and the next E-step starts
from it. The M-step maximises the bound over ``lambda`` exactly and every local
update is a coordinate-ascent step from where the last E-step ended, so the ELBO the
engine records never decreases, whatever the inner tolerance. The statistics then
include the documents' new ``gamma`` as an ``(N, K)`` array that is zero outside the
batch's documents (still additive over any split of the documents). Online
variational Bayes (Hoffman, Blei & Bach 2010) is the engine's online EM on these
statistics, with ``warm_start=False`` (every E-step starts from ``gamma = 1``).
"""

from __future__ import annotations

import copy
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln, psi

from emkit.models.topic.kernels import by_word, doc_estep, word_stats

__all__ = ["LDAModel", "beta_tables", "infer_documents", "topic_word_bound"]

#: Names of the parameters: the topic-word factors (global) and the warm starts of the
#: documents' factors (local, kept only by batch variational EM).
PARAMS = ("topic_word", "doc_topic")


class LDAModel:
    """Latent Dirichlet allocation for :func:`emkit.em` (variational EM; ELBO objective).

    Parameters
    ----------
    n_topics : int
    doc_topic_prior : float
        ``alpha`` > 0, the symmetric Dirichlet prior of the documents' topic proportions.
    topic_word_prior : float
        ``eta`` > 0, the symmetric Dirichlet prior of the topics' word distributions.
    warm_start : bool, default True
        Keep each document's ``gamma`` in the parameters and start its next E-step from
        it (batch variational EM, monotone); False starts every E-step from ``gamma = 1``
        (online variational Bayes, where batches are drawn at random).
    mean_change_tol : float, default 1e-3
        A document's inner loop stops when the mean absolute change of its ``gamma``
        falls below this.
    max_doc_update_iter : int, default 100
        Most ``gamma`` updates per document and E-step (at least 1).

    Notes
    -----
    Data are ``(X, doc_ids)``: ``X`` a CSR matrix of counts, shape ``(n_docs,
    n_words)``, and ``doc_ids`` the row of each document in the whole corpus (used to
    find its warm start; may be None without ``warm_start``). Parameters and statistics
    are dicts with keys ``"topic_word"`` (``lambda``, shape ``(K, V)``) and
    ``"doc_topic"`` (``gamma``, shape ``(N, K)``, or None without ``warm_start``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, emkit
    >>> from emkit.models.topic.model import LDAModel
    >>> X = sp.csr_matrix(np.random.default_rng(0).poisson(1.0, (40, 12)).astype(float))
    >>> res = emkit.em(LDAModel(2, 0.5, 0.5), (X, np.arange(40)), max_iter=5, random_state=0)
    >>> res.objective_name, res.params["topic_word"].shape
    ('elbo', (2, 12))
    >>> bool(np.all(np.diff(res.history) >= 0))
    True
    """

    objective = "elbo"

    def __init__(
        self,
        n_topics: int,
        doc_topic_prior: float,
        topic_word_prior: float,
        *,
        warm_start: bool = True,
        mean_change_tol: float = 1e-3,
        max_doc_update_iter: int = 100,
    ):
        self.n_topics = int(n_topics)
        self.alpha = float(doc_topic_prior)
        self.eta = float(topic_word_prior)
        self.warm_start = bool(warm_start)
        self.mean_change_tol = float(mean_change_tol)
        self.max_doc_update_iter = int(max_doc_update_iter)
        self.held: frozenset[str] = frozenset()

    def init_params(self, data: Any, rng: np.random.Generator) -> dict[str, Any]:
        """``lambda`` drawn from Gamma(100, 1/100) (as Hoffman et al. and scikit-learn);
        ``gamma = 1`` for every document."""
        X = data[0]
        n_docs, n_words = X.shape
        topic_word = rng.gamma(100.0, 0.01, (self.n_topics, n_words))
        doc_topic = np.ones((n_docs, self.n_topics)) if self.warm_start else None
        return {"topic_word": topic_word, "doc_topic": doc_topic}

    def estep(self, params: dict[str, Any], batch: Any) -> tuple[dict[str, Any], float]:
        """Expected topic-word counts (and the new ``gamma``) of the batch's documents,
        and their part of the ELBO."""
        X, doc_ids = batch
        X = _as_csr(X)
        start = None
        if self.warm_start:
            start = np.array(params["doc_topic"][doc_ids], dtype=np.float64)
        gamma, bound, counts = infer_documents(
            X,
            params["topic_word"],
            self.alpha,
            start,
            tol=self.mean_change_tol,
            max_iter=self.max_doc_update_iter,
            stats=True,
            restart=self.warm_start,
        )
        doc_topic = None
        if self.warm_start:
            doc_topic = np.zeros_like(params["doc_topic"])
            doc_topic[doc_ids] = gamma
        return {"topic_word": counts, "doc_topic": doc_topic}, float(bound.sum())

    def mstep(self, stats: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """``lambda = eta + expected counts``; the documents' new ``gamma`` become the
        next E-step's starting point. Held parameters are returned unchanged."""
        if "topic_word" in self.held:
            topic_word = params["topic_word"]
        else:
            topic_word = self.eta + stats["topic_word"]
        return {"topic_word": topic_word, "doc_topic": stats["doc_topic"]}

    def log_prior(self, params: dict[str, Any]) -> float:
        """The ELBO's global terms, ``E[log p(beta | eta)] - E[log q(beta | lambda)]``."""
        return topic_word_bound(params["topic_word"], self.eta)

    def hold(self, names) -> LDAModel:
        """A copy whose M-step keeps the named parameters unchanged.

        Only ``"topic_word"`` can be held (inference of the documents' factors with
        given topics); ``"doc_topic"`` holds the E-step's warm starts, which the M-step
        does not estimate. Unknown names are a ``ValueError``.
        """
        names = (names,) if isinstance(names, str) else tuple(names)
        for name in names:
            if name == "doc_topic":
                raise ValueError(
                    "'doc_topic' cannot be held: it holds the documents' variational factors "
                    "(the E-step's warm starts), not a parameter the M-step estimates; only "
                    "'topic_word' can be held"
                )
            if name not in PARAMS:
                raise ValueError(
                    f"unknown parameter {name!r} for LDAModel.hold; the parameter that can be "
                    "held is 'topic_word'"
                )
        held = copy.copy(self)
        held.held = self.held | frozenset(names)
        return held


def _as_csr(X: Any) -> sp.csr_matrix:
    if sp.issparse(X):
        X = X.tocsr()
    else:
        X = sp.csr_matrix(np.asarray(X, dtype=np.float64))
    if X.dtype != np.float64:
        X = X.astype(np.float64)
    return X


def beta_tables(topic_word: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(exp_b, b_max, log_b)`` of the kernels from ``lambda`` (K, V): ``log_b`` is
    ``E[log beta]`` transposed to (V, K), ``b_max`` its row maxima and ``exp_b =
    exp(log_b - b_max)``, zero-padded to a multiple of 4 columns."""
    lam = np.asarray(topic_word, dtype=np.float64)
    K, V = lam.shape
    elog = psi(lam) - psi(lam.sum(axis=1, keepdims=True))
    log_b = np.ascontiguousarray(elog.T)
    b_max = log_b.max(axis=1)
    exp_b = np.zeros((V, -(-K // 4) * 4))
    np.exp(log_b - b_max[:, None], out=exp_b[:, :K])
    return exp_b, b_max, log_b


def topic_word_bound(topic_word: np.ndarray, eta: float) -> float:
    """``E[log p(beta | eta)] - E[log q(beta | lambda)]`` summed over topics."""
    lam = np.asarray(topic_word, dtype=np.float64)
    K, V = lam.shape
    totals = lam.sum(axis=1)
    elog = psi(lam) - psi(totals)[:, None]
    value = K * (gammaln(V * eta) - V * gammaln(eta))
    value += np.sum((eta - lam) * elog + gammaln(lam)) - np.sum(gammaln(totals))
    return float(value)


def _chunks(ptr: np.ndarray, n_chunks: int) -> np.ndarray:
    """Boundaries of up to ``n_chunks`` runs of rows with about equal numbers of
    non-zeros (``ptr`` is a CSR row pointer)."""
    n = ptr.size - 1
    n_chunks = max(1, min(n_chunks, n))
    targets = np.linspace(0, ptr[-1], n_chunks + 1)[1:-1]
    inner = np.searchsorted(ptr, targets)
    return np.unique(np.concatenate(([0], inner, [n]))).astype(np.int64)


def infer_documents(
    X: sp.csr_matrix,
    topic_word: np.ndarray,
    alpha: float,
    start: np.ndarray | None,
    *,
    tol: float,
    max_iter: int,
    stats: bool,
    restart: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The documents' variational E-step at topic-word factors ``lambda``.

    Parameters
    ----------
    X : CSR matrix of shape (n_docs, n_words), float64 counts
    topic_word : ndarray of shape (n_topics, n_words)
    alpha : float
    start : ndarray of shape (n_docs, n_topics), optional
        Starting ``gamma`` (default 1, as scikit-learn's ``transform``).
    tol, max_iter : the inner loop's mean-change tolerance and most updates
    stats : bool
        Also compute the expected topic-word counts.
    restart : bool, default False
        Start every document from ``gamma = 1`` and keep that run unless it ends below
        the bound at ``start`` (then ascend from ``start``): never below ``start``.

    Returns
    -------
    gamma : ndarray of shape (n_docs, n_topics)
    bound : ndarray of shape (n_docs,)
        Each document's part of the ELBO.
    counts : ndarray of shape (n_topics, n_words), or None
        ``sum_d n_dw phi_dwk``.
    """
    n_docs, n_words = X.shape
    K = topic_word.shape[0]
    exp_b, b_max, log_b = beta_tables(topic_word)
    gamma = np.ones((n_docs, K)) if start is None else np.array(start, dtype=np.float64)
    n_chunks = 4 * numba.get_num_threads()
    bound, ratio, theta, elog_theta, _ = doc_estep(
        X.indptr,
        X.indices,
        X.data,
        exp_b,
        b_max,
        log_b,
        gamma,
        float(alpha),
        float(tol),
        max(int(max_iter), 1),
        restart,
        _chunks(X.indptr, n_chunks),
    )
    if not stats:
        return gamma, bound, None
    col_ptr, position, row = by_word(X.indptr, X.indices, n_words)
    counts = word_stats(
        col_ptr,
        position,
        row,
        X.data,
        ratio,
        theta,
        elog_theta,
        exp_b,
        log_b,
        _chunks(col_ptr, n_chunks),
    )
    return gamma, bound, np.ascontiguousarray(counts[:, :K].T)
