"""Latent Dirichlet allocation: the scikit-learn-style estimator :class:`LDA`.

It validates the document-word counts, builds :class:`~emkit.models.topic.model.LDAModel`
(the pure variational EM model) and hands it to :func:`emkit.em`: plain EM for batch
variational EM, the engine's online EM for online variational Bayes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from emkit._random import seed_sequence
from emkit._validation import check_choice, check_init, check_int, check_real
from emkit.models.estimator import EMEstimator
from emkit.models.topic.model import LDAModel, infer_documents, topic_word_bound

__all__ = ["LDA", "check_counts"]

METHODS = ("batch", "online")


class LDA(EMEstimator):
    """Latent Dirichlet allocation by variational EM or online variational Bayes.

    Topics ``beta_k ~ Dirichlet(eta)`` over the vocabulary, documents' proportions
    ``theta_d ~ Dirichlet(alpha)``, and each word drawn from the topic of its own topic
    draw ``z ~ theta_d`` (Blei, Ng & Jordan 2003). The posterior is intractable, so the
    evidence lower bound (ELBO) of a mean-field family is maximised by coordinate
    ascent: the documents' factors in the E-step, the topics' Dirichlet factors
    ``lambda`` in the M-step (see :mod:`emkit.models.topic.model`). ``method="batch"``
    is variational EM over the whole corpus, whose ELBO never decreases (the engine
    checks it); ``method="online"`` is online variational Bayes (Hoffman, Blei & Bach
    2010), the engine's online EM on mini-batches of documents.

    Parameters
    ----------
    n_topics : int, default 10
    doc_topic_prior : float, optional
        ``alpha`` > 0; default ``1 / n_topics`` (as scikit-learn).
    topic_word_prior : float, optional
        ``eta`` > 0; default ``1 / n_topics``.
    method : {"batch", "online"}, default "batch"
    batch_size : int, optional
        Online: documents per mini-batch (default 128). Batch: E-step over chunks of
        this many documents (same result; default all at once).
    max_iter : int, default 100
        Most passes over the corpus.
    tol : float, default 1e-2
        Stop when the ELBO rises by less than ``tol`` per document over a pass (online:
        changes by less, either way).
    mean_change_tol : float, default 1e-3
        A document's inner loop stops when the mean absolute change of its ``gamma``
        falls below this (as scikit-learn).
    max_doc_update_iter : int, default 100
        Most ``gamma`` updates per document and pass.
    init : "random" or dict, default "random"
        "random": ``lambda`` from Gamma(100, 1/100); ``{"components": lambda}``: start
        from these topic-word parameters (positive, shape ``(n_topics, n_words)``).
    n_init : int, default 1
        Restarts from independent seeds, the highest ELBO kept.
    kappa, t0 : float, default 0.7 and 10.0
        Online step sizes ``(t + t0) ** -kappa`` (scikit-learn's ``learning_decay`` and
        ``learning_offset``).
    total_samples : float, default 1e6
        :meth:`partial_fit` scales each mini-batch as if the corpus had this many
        documents.
    n_jobs : int, optional
        Threads of the E-step kernel (``None``: 1, ``-1``: all), and of the restarts.
    random_state : None, int or numpy Generator
    progress : bool, default False
    verbose : int, default 0
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the ELBO of a batch fit ever drops (it cannot).
    fixed : {"components"} or dict, optional
        Hold the topic-word parameters fixed during ``fit`` (keyed like ``init``):
        ``["components"]`` at the start, ``{"components": lambda}`` at given values;
        ``fit`` then only infers the documents' factors (``LDAModel.hold``).

    Attributes
    ----------
    components_ : ndarray of shape (n_topics, n_words)
        The topic-word variational parameters ``lambda`` (as scikit-learn's); each row
        divided by its sum is a topic's expected word distribution.
    doc_topic_prior_, topic_word_prior_ : float
        The priors used.
    elbo_ : float
        The ELBO of the training corpus at the fit (``loglik_`` holds the same: the
        objective every emkit estimator records; ``objective_name_`` is ``"elbo"``).
    history_ : ndarray
        The ELBO after each pass (online: evaluated on the whole corpus after it).
    n_batch_iter_ : int
        M-steps taken (mini-batches in online mode); :meth:`partial_fit` continues the
        step sizes from it.
    converged_, n_iter_, n_features_in_, objective_name_

    Notes
    -----
    The E-step works on the non-zeros of a CSR matrix (its cost grows with them, not
    with documents times vocabulary) in compiled, parallel code
    (:mod:`emkit.models.topic.kernels`). Batch EM starts every document from ``gamma =
    1`` each pass, as scikit-learn does, and falls back towards the previous pass's
    ``gamma`` only where the ELBO would otherwise drop, so it is monotone
    (:mod:`emkit.models.topic.model`). :meth:`perplexity` is ``exp(-bound / words)``
    with the bound of :meth:`score`, the definition of scikit-learn and Hoffman et al.

    References
    ----------
    D. M. Blei, A. Y. Ng and M. I. Jordan (2003). Latent Dirichlet allocation. JMLR 3,
    993-1022. M. D. Hoffman, D. M. Blei and F. Bach (2010). Online learning for latent
    Dirichlet allocation. NIPS 23.

    Examples
    --------
    >>> import numpy as np
    >>> import emkit
    >>> rng = np.random.default_rng(0)
    >>> topics = np.array([[0.45, 0.45, 0.05, 0.05], [0.05, 0.05, 0.45, 0.45]])
    >>> X = np.array([rng.multinomial(30, topics[d % 2]) for d in range(60)])
    >>> lda = emkit.LDA(2, random_state=0).fit(X)
    >>> lda.objective_name_, lda.components_.shape
    ('elbo', (2, 4))
    >>> sorted(sorted(words) for words in lda.top_words(2, vocabulary=list("abcd")).tolist())
    [['a', 'b'], ['c', 'd']]
    >>> bool(np.allclose(lda.transform(X).sum(axis=1), 1.0))
    True
    """

    _fitted_attributes = (
        "components_",
        "doc_topic_prior_",
        "topic_word_prior_",
        "elbo_",
        "n_batch_iter_",
        *EMEstimator.FIT_RECORD,
    )
    _extra_attributes = ("fit_time_", "objective_name_")
    _estimator_type = None

    def __init__(
        self,
        n_topics: int = 10,
        doc_topic_prior: float | None = None,
        topic_word_prior: float | None = None,
        method: str = "batch",
        *,
        batch_size: int | None = None,
        max_iter: int = 100,
        tol: float = 1e-2,
        mean_change_tol: float = 1e-3,
        max_doc_update_iter: int = 100,
        init: str | Mapping[str, Any] = "random",
        n_init: int = 1,
        kappa: float = 0.7,
        t0: float = 10.0,
        total_samples: float = 1e6,
        n_jobs: int | None = None,
        random_state: Any = None,
        progress: bool = False,
        verbose: int = 0,
        check_monotone: str = "warn",
        fixed: Any = None,
    ):
        self._set_hyperparameters(locals())

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    # ------------------------------------------------------------------ fitting
    def _priors(self) -> tuple[float, float]:
        K = check_int(self.n_topics, "n_topics", 1)
        priors = []
        for name in ("doc_topic_prior", "topic_word_prior"):
            value = getattr(self, name)
            if value is None:
                priors.append(1.0 / K)
                continue
            value = check_real(value, name)
            if not value > 0:
                raise ValueError(f"{name} must be positive (a Dirichlet parameter), got {value}")
            priors.append(value)
        return priors[0], priors[1]

    def _model(self, online: bool) -> LDAModel:
        check_choice(self.method, "method", METHODS)
        check_real(self.tol, "tol", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_int(self.n_init, "n_init", 1)
        check_int(self.verbose, "verbose", 0)
        check_init(self.init, ("random",))
        if check_real(self.total_samples, "total_samples") <= 0:
            raise ValueError(f"total_samples must be positive, got {self.total_samples}")
        alpha, eta = self._priors()
        return LDAModel(
            self.n_topics,
            alpha,
            eta,
            warm_start=not online,
            mean_change_tol=check_real(self.mean_change_tol, "mean_change_tol", 0.0),
            max_doc_update_iter=check_int(self.max_doc_update_iter, "max_doc_update_iter", 1),
        )

    def _starting_params(self, model: LDAModel, X: sp.csr_matrix, rng) -> dict | None:
        if not isinstance(self.init, Mapping):
            return None
        unknown = set(self.init) - {"components"}
        if unknown:
            raise ValueError(f"init dict has unknown keys {sorted(unknown)}; use 'components'")
        start = model.init_params((X, None), rng)
        if "components" in self.init:
            lam = np.array(self.init["components"], dtype=np.float64)
            shape = (model.n_topics, X.shape[1])
            if lam.shape != shape:
                raise ValueError(f"init components must have shape {shape}, got {lam.shape}")
            if not (np.all(np.isfinite(lam)) and np.all(lam > 0)):
                raise ValueError("init components must be positive and finite")
            start["topic_word"] = lam
        return start

    def fit(self, X, y=None) -> LDA:
        """Fit the topics to a document-word count matrix.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_documents, n_words)
            Non-negative integer counts (CSR is used as is; others are converted).
        y : ignored

        Returns
        -------
        self
        """
        X = check_counts(X, fitting=True)
        online = check_choice(self.method, "method", METHODS) == "online"
        model = self._model(online)
        rng = np.random.default_rng(seed_sequence(self.random_state))
        init = self._starting_params(model, X, rng)
        options: dict[str, Any] = {"variant": "online" if online else "em"}
        batch = self.batch_size
        if online:
            options["batch_size"] = 128 if batch is None else check_int(batch, "batch_size", 1)
        if self.n_jobs == -1:
            options["n_jobs"] = None
        with _threads(self.n_jobs):
            result = self._run_engine(
                model, (X, np.arange(X.shape[0])), init, X.shape[0], **options
            )
        # Everything is computed; only now is the estimator changed.
        self._store(model, result.params["topic_word"], X.shape[1])
        self.elbo_ = self.loglik_ = float(result.objective)
        if online:
            batches = math.ceil(X.shape[0] / options["batch_size"])
            self.n_batch_iter_ = int(result.n_iter) * batches
        else:
            self.n_batch_iter_ = int(result.n_iter)
        self._partial = False
        self._finish_fit(result, what="variational EM")
        return self

    def _store(self, model: LDAModel, topic_word: np.ndarray, n_words: int) -> None:
        self.components_ = np.array(topic_word, dtype=np.float64)
        self.doc_topic_prior_ = model.alpha
        self.topic_word_prior_ = model.eta
        self.n_features_in_ = int(n_words)

    def partial_fit(self, X, y=None) -> LDA:
        """One step of online variational Bayes on a mini-batch of documents.

        The step size is ``(t + t0) ** -kappa`` with ``t`` the mini-batch's number
        (continuing :attr:`n_batch_iter_`, also after ``fit`` or ``emkit.load``); the
        batch's expected counts are scaled by ``total_samples / n_documents``. The first
        call on an unfitted estimator starts from ``init``. ``history_`` then holds each
        mini-batch's ELBO per document (its documents' part, at the parameters before the
        step) and ``elbo_`` the last one's documents' part plus the global terms.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_documents, n_words)
        y : ignored

        Returns
        -------
        self
        """
        from emkit.engine.online import OnlineEM, OnlineState

        X = check_counts(X, fitting=True)
        scheme = OnlineEM(batch_size=X.shape[0], kappa=self.kappa, t0=self.t0)  # checks both
        model = self._model(online=True)
        if self.__sklearn_is_fitted__():
            self._check_n_features(X)
            params = {"topic_word": self.components_, "doc_topic": None, "floor": None}
            running = {"topic_word": self.components_ - model.eta, "doc_topic": None}
            running["doc_bound"] = None
            state = OnlineState(int(self.n_batch_iter_), running)
            history = list(self.history_) if getattr(self, "_partial", False) else []
        else:
            rng = np.random.default_rng(seed_sequence(self.random_state))
            params = self._starting_params(model, X, rng)
            if params is None:
                params = model.init_params((X, None), rng)
            state, history = None, []
        scale = float(self.total_samples) / X.shape[0]
        with _threads(self.n_jobs):
            new, state, bound = scheme.partial_step(model, params, state, (X, None), scale)
        elbo = bound + model.log_prior(params)
        # Computed; now the estimator changes.
        self._store(model, new["topic_word"], X.shape[1])
        self.elbo_ = self.loglik_ = float(elbo)
        self.n_batch_iter_ = int(state.t)
        self.history_ = np.asarray([*history, bound / X.shape[0]])
        self.n_iter_ = len(self.history_)
        self.converged_ = False
        self.objective_name_ = "elbo"
        self.fit_time_ = 0.0
        self._partial = True
        return self

    def _engine_fixed(self, fixed: Any) -> Any:
        """``fixed`` in the model's names: ``"components"`` is ``"topic_word"``."""
        fixed = super()._engine_fixed(fixed)
        if fixed is None:
            return None
        rename = {"components": "topic_word"}
        if isinstance(fixed, Mapping):
            out = {}
            for name, value in fixed.items():
                value = np.asarray(value, dtype=np.float64)
                if name == "components" and not (np.all(np.isfinite(value)) and np.all(value > 0)):
                    raise ValueError("fixed components must be positive and finite")
                out[rename.get(name, name)] = value
            return out
        names = (fixed,) if isinstance(fixed, str) else tuple(fixed)
        return [rename.get(name, name) for name in names]

    def _describe(self) -> str:
        return f"K={self.n_topics} {self.method} "

    def _check_fitted_state(self) -> None:
        self._check_float_arrays(("components_",))
        K, D = self.components_.shape if self.components_.ndim == 2 else (-1, -1)
        if K != self.n_topics or D != self.n_features_in_:
            raise ValueError("components_ does not match n_topics and n_features_in_")
        if not np.all(self.components_ > 0):
            raise ValueError("components_ must be positive")
        for name in ("doc_topic_prior_", "topic_word_prior_"):
            value = getattr(self, name)
            if not (isinstance(value, float) and value > 0):
                raise ValueError(f"{name} must be a positive number")

    # ------------------------------------------------------------------ using the fit
    def _infer(self, X) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        self._check_is_fitted()
        X = check_counts(X)
        self._check_n_features(X)
        with _threads(self.n_jobs):
            gamma, bound, _ = infer_documents(
                X,
                self.components_,
                self.doc_topic_prior_,
                None,
                tol=check_real(self.mean_change_tol, "mean_change_tol", 0.0),
                max_iter=check_int(self.max_doc_update_iter, "max_doc_update_iter", 1),
                stats=False,
            )
        return X, gamma, bound

    def transform(self, X) -> np.ndarray:
        """Documents' topic proportions: ``E[theta_d]`` under their variational factors.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_documents, n_words)

        Returns
        -------
        ndarray of shape (n_documents, n_topics)
            Rows sum to 1.
        """
        _, gamma, _ = self._infer(X)
        return gamma / gamma.sum(axis=1, keepdims=True)

    def fit_transform(self, X, y=None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def score(self, X, y=None) -> float:
        """The ELBO of ``X`` at the fitted topics (its documents' terms, each document's
        factors fitted from ``gamma = 1``, plus the topics' terms), as scikit-learn's."""
        _, _, bound = self._infer(X)
        return float(bound.sum()) + topic_word_bound(self.components_, self.topic_word_prior_)

    def perplexity(self, X) -> float:
        """``exp(-score(X) / number of words in X)``; lower is better."""
        X, _, bound = self._infer(X)
        n_words = float(X.data.sum())
        if not n_words > 0:
            raise ValueError("X has no words (every count is 0): its perplexity is undefined")
        total = float(bound.sum()) + topic_word_bound(self.components_, self.topic_word_prior_)
        return math.exp(-total / n_words)

    def top_words(self, n: int = 10, vocabulary=None) -> np.ndarray:
        """The ``n`` most probable words of each topic, most probable first.

        Parameters
        ----------
        n : int, default 10
        vocabulary : sequence of length n_words, optional
            Names of the words (columns); without it, their column indices.

        Returns
        -------
        ndarray of shape (n_topics, n)
        """
        self._check_is_fitted()
        n = check_int(n, "n", 1)
        n = min(n, self.n_features_in_)
        order = np.argsort(-self.components_, axis=1, kind="stable")[:, :n]
        if vocabulary is None:
            return order
        vocabulary = np.asarray(vocabulary)
        if vocabulary.shape != (self.n_features_in_,):
            raise ValueError(
                f"vocabulary must hold one name per word ({self.n_features_in_}), got shape "
                f"{vocabulary.shape}"
            )
        return vocabulary[order]


def check_counts(X: Any, *, fitting: bool = False) -> sp.csr_matrix:
    """A CSR matrix of float64 counts from ``X`` (sparse or array-like), or a clear error.

    Rejects: not 2-D, no documents, an empty vocabulary (no columns), non-finite,
    negative or non-integer counts, and (when ``fitting``) a corpus without any word.
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must hold numeric counts, got dtype {X.dtype}")
    else:
        try:
            arr = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X could not be read as a count matrix: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"X must hold numeric counts, got dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(
                f"X must be a 2-D documents x words matrix, got {arr.ndim} dimension(s)"
            )
        X = sp.csr_matrix(arr)
    n_docs, n_words = X.shape
    if n_words < 1:
        raise ValueError("X has an empty vocabulary (0 words): provide at least one word column")
    if n_docs < 1:
        raise ValueError("X has no documents (0 rows)")
    X = X.astype(np.float64, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    data = X.data
    if not np.all(np.isfinite(data)):
        raise ValueError("X has non-finite counts (NaN or infinity); counts must be finite")
    if np.any(data < 0):
        raise ValueError("X has negative counts; word counts must be non-negative integers")
    if np.any(data != np.round(data)):
        raise ValueError(
            "X has non-integer counts; LDA models word counts, which must be whole numbers"
        )
    if fitting and data.size == 0:
        raise ValueError("X has no words (every count is 0): there is nothing to fit")
    return X


@contextmanager
def _threads(n_jobs: Any):
    """Run the compiled kernels on ``n_jobs`` threads (None: 1; -1: all)."""
    most = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        n = 1
    elif n_jobs == -1 and not isinstance(n_jobs, bool):
        n = most
    else:
        n = min(check_int(n_jobs, "n_jobs", 1), most)
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(old)
