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
carry each document's ``gamma`` from the previous E-step and the ELBO's ``floor``. The
M-step maximises the bound over ``lambda`` exactly, and re-optimising ``phi`` at the
previous ``gamma`` under the new ``lambda`` only raises it, so the documents' bound at
their previous ``gamma`` is at least ``floor``: the previous ELBO less the topics'
terms at the new ``lambda`` (the M-step computes it from the documents' bound, which
the statistics carry). The E-step runs every document from ``gamma = 1`` (as
scikit-learn and Hoffman et al.: documents move freely to the topics that fit them
now, which reaches better optima than continuing from the last pass) and keeps that
unless the documents' bound would fall below ``floor`` (below their bound at the
previous ``gamma`` when the E-step runs in chunks of documents); then the documents
that lost converge further, and those still below ascend from their previous
``gamma`` instead (:func:`infer_documents`). So the ELBO the engine records never
decreases, whatever the inner tolerance. The statistics hold the documents' new
``gamma`` as an ``(N, K)`` array that is zero outside the batch's documents, and their
bound: both additive over any split of the documents. Online variational Bayes
(Hoffman, Blei & Bach 2010) is the engine's online EM on these statistics, with
``warm_start=False`` (every E-step starts from ``gamma = 1``, no floor).
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

#: Names of the parameters: the topic-word factors (global), and the documents' factors
#: and the ELBO's floor of the last pass (kept only by batch variational EM).
PARAMS = ("topic_word", "doc_topic", "floor")


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
        Keep each document's ``gamma`` in the parameters as the floor of its next
        E-step (batch variational EM, monotone); False starts every E-step from
        ``gamma = 1`` with no floor (online variational Bayes, where batches are drawn
        at random).
    mean_change_tol : float, default 1e-3
        A document's inner loop stops when the mean absolute change of its ``gamma``
        falls below this.
    max_doc_update_iter : int, default 100
        Most ``gamma`` updates per document and E-step (at least 1).

    Notes
    -----
    Data are ``(X, doc_ids)``: ``X`` a CSR matrix of counts, shape ``(n_docs,
    n_words)``, and ``doc_ids`` the row of each document in the whole corpus (used to
    find its previous ``gamma``; may be None without ``warm_start``). Parameters and statistics
    are dicts with keys ``"topic_word"`` (``lambda``, shape ``(K, V)``) and
    ``"doc_topic"`` (``gamma``, shape ``(N, K)``, or None without ``warm_start``);
    parameters also hold ``"floor"`` (0-d) and statistics ``"doc_bound"`` (0-d), or
    None without ``warm_start``.

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
        if not self.warm_start:
            return {"topic_word": topic_word, "doc_topic": None, "floor": None}
        doc_topic = np.ones((n_docs, self.n_topics))
        return {"topic_word": topic_word, "doc_topic": doc_topic, "floor": np.array(-np.inf)}

    def estep(self, params: dict[str, Any], batch: Any) -> tuple[dict[str, Any], float]:
        """Expected topic-word counts (and the new ``gamma``) of the batch's documents,
        and their part of the ELBO."""
        X, doc_ids = batch
        X = _as_csr(X)
        start = floor = None
        if self.warm_start:
            start = np.array(params["doc_topic"][doc_ids], dtype=np.float64)
            if len(start) == len(params["doc_topic"]):  # the whole corpus: the ELBO's floor
                floor = float(params["floor"])
        gamma, bound, counts = infer_documents(
            X,
            params["topic_word"],
            self.alpha,
            start,
            tol=self.mean_change_tol,
            max_iter=self.max_doc_update_iter,
            stats=True,
            restart=self.warm_start,
            floor=floor,
        )
        total = float(bound.sum())
        if not self.warm_start:
            return {"topic_word": counts, "doc_topic": None, "doc_bound": None}, total
        doc_topic = np.zeros_like(params["doc_topic"])
        doc_topic[doc_ids] = gamma
        return {"topic_word": counts, "doc_topic": doc_topic, "doc_bound": np.array(total)}, total

    def mstep(self, stats: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """``lambda = eta + expected counts``; the documents' new ``gamma`` and the ELBO's
        floor for the next E-step (the last ELBO less the topics' terms at the new
        ``lambda``). Held parameters are returned unchanged."""
        if "topic_word" in self.held:
            topic_word = params["topic_word"]
        else:
            topic_word = self.eta + stats["topic_word"]
        if not self.warm_start:
            return {"topic_word": topic_word, "doc_topic": None, "floor": None}
        change = self.log_prior(params) - self.log_prior({"topic_word": topic_word})
        floor = np.array(float(stats["doc_bound"]) + change)
        return {"topic_word": topic_word, "doc_topic": stats["doc_topic"], "floor": floor}

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
            if name in ("doc_topic", "floor"):
                raise ValueError(
                    f"{name!r} cannot be held: it is the E-step's record of the last pass (the "
                    "documents' variational factors and the ELBO), not a parameter the "
                    "M-step estimates; only 'topic_word' can be held"
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
    floor: float | None = None,
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
        Run every document from ``gamma = 1`` (scikit-learn's and Hoffman et al.'s
        start, which lets documents move to the topics that fit them now) but never end
        below ``floor``, or without one below the bound at ``start``: where the
        documents' bounds sum to less, those that lost to their bound at ``start``
        continue their ascent with a 100 times smaller tolerance (most only stopped
        early), and those still below ascend from ``start`` instead (each then ends at
        or above its own bound at ``start``). This is how batch EM stays monotone: the
        bound at the previous pass's ``gamma`` is at least the previous ELBO.
    floor : float, optional
        With ``restart``: the least the bounds must sum to, at most their sum at
        ``start`` (the previous ELBO less the topics' terms at ``lambda``).

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
    start = np.ones((n_docs, K)) if start is None else np.ascontiguousarray(start, np.float64)
    out = (
        np.empty((n_docs, K)),
        np.empty(n_docs),
        np.empty(n_docs),
        np.empty(X.nnz),
        np.zeros((n_docs, exp_b.shape[1])),
        np.empty((n_docs, K)),
        np.zeros(n_docs, dtype=np.int64),
    )
    n_chunks = 4 * numba.get_num_threads()
    tables = (X.indptr, X.indices, X.data, exp_b, b_max, log_b, start, float(alpha), float(tol))
    max_iter = max(int(max_iter), 1)
    docs = np.arange(n_docs, dtype=np.int64)
    doc_estep(*tables, max_iter, 1 if restart else 0, docs, _chunks(X.indptr, n_chunks), out)
    gamma, bound, at_start, ratio, theta, elog_theta, _ = out
    if restart and bound.sum() < (at_start.sum() if floor is None else floor):
        redo = np.flatnonzero(bound < at_start).astype(np.int64)
        sizes = np.diff(X.indptr)[redo]
        ptr = np.concatenate(([0], np.cumsum(sizes)))
        doc_estep(*tables, max_iter, 2, redo, _chunks(ptr, n_chunks), out)
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
