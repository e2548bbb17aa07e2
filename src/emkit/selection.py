"""Model selection for Gaussian mixtures: fit every (K, covariance structure) candidate
and choose by BIC, ICL or AIC, as R's ``mclust::Mclust`` does (``emkit.select``).

Sign convention: emkit's criteria are scikit-learn's, **lower is better**:
``bic = -2 loglik + npar log n``, ``aic = -2 loglik + 2 npar`` and ``icl = bic - 2 sum_i
log max_k p(k | x_i)``. mclust reports ``2 loglik - npar log n`` (larger is better),
i.e. minus these; the parameter counts are mclust's (``nMclustParams``).
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import MIN_VARIANCE_OVER_REG, check_array, check_sample_weight
from emkit.distributions.covariance import COVARIANCE_TYPES, MCLUST_MODELS, get_structure

if TYPE_CHECKING:  # imported by the first fit: the command line's parser imports this module
    from emkit.models.mixture.gaussian import GaussianMixture

__all__ = ["CRITERIA", "Candidate", "Selection", "collapsed_component", "select", "split_starts"]

#: the criteria a candidate can be chosen by (all lower-is-better)
CRITERIA = ("bic", "icl", "aic")
#: the columns of :attr:`Selection.table`
COLUMNS = (
    "n_components",
    "covariance_type",
    "loglik",
    "n_parameters",
    "bic",
    "aic",
    "icl",
    "n_iter",
    "converged",
    "status",
)
#: what a fit may raise when a candidate cannot be estimated
_FAILURES = (ValueError, np.linalg.LinAlgError, FloatingPointError, ArithmeticError)


@dataclass
class Candidate:
    """One (K, covariance type) candidate: its scores, or why it failed."""

    n_components: int
    covariance_type: str
    model: GaussianMixture | None = None
    loglik: float = np.nan
    n_parameters: int = 0
    bic: float = np.nan
    aic: float = np.nan
    icl: float = np.nan
    n_iter: int = 0
    converged: bool = False
    status: str = "ok"
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def row(self) -> dict[str, Any]:
        """The candidate as a plain dict with the keys of :data:`COLUMNS`."""
        return {name: getattr(self, name) for name in COLUMNS}


class Selection:
    """The outcome of :func:`select`.

    Attributes
    ----------
    candidates : list of Candidate
        In the order K-major, covariance type minor.
    criterion : str
    best_ : GaussianMixture
        The fitted candidate with the lowest criterion (the first on ties).
    best_index_ : int
        Its position in ``candidates``.
    """

    def __init__(self, candidates: list[Candidate], criterion: str):
        self.candidates = candidates
        self.criterion = criterion
        scores = [getattr(c, criterion) if c.ok else np.inf for c in candidates]
        if not np.isfinite(scores).any():
            reasons = "; ".join(
                f"K={c.n_components} {c.covariance_type}: {c.status}" for c in candidates[:3]
            )
            raise ValueError(f"no candidate could be fitted ({reasons})")
        self.best_index_ = int(np.argmin(scores))
        self.best_ = candidates[self.best_index_].model

    def rows(self) -> list[dict[str, Any]]:
        """One dict per candidate (the keys of :data:`COLUMNS`)."""
        return [c.row() for c in self.candidates]

    @property
    def table(self) -> Any:
        """The candidates as a pandas DataFrame (a list of dicts without pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is an optional dependency
            return self.rows()
        return pd.DataFrame(self.rows(), columns=list(COLUMNS))

    def __repr__(self) -> str:
        b = self.candidates[self.best_index_]
        return (
            f"Selection({len(self.candidates)} candidates, best K={b.n_components} "
            f"{b.covariance_type} by {self.criterion.upper()} {getattr(b, self.criterion):.6g})"
        )


def _covariance_types(value: str | Iterable[str]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    out: list[str] = []
    for name in value:
        if name == "all":
            out.extend(MCLUST_MODELS)
        elif isinstance(name, str) and name in COVARIANCE_TYPES:
            out.append(name)
        else:
            raise ValueError(
                f"unknown covariance type {name!r}; use 'all' or names from "
                f"{', '.join(COVARIANCE_TYPES)}"
            )
    if not out:
        raise ValueError("no covariance type given")
    return list(dict.fromkeys(out))


def _components(value: int | Iterable[int]) -> list[int]:
    values = [value] if isinstance(value, (int, np.integer)) else list(value)
    if not values:
        raise ValueError("n_components is empty")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_components must be positive integers, got {k!r}")
    return sorted(dict.fromkeys(int(k) for k in values))


@contextmanager
def _recorded(record: bool) -> Iterator[list | None]:
    """Record the warnings raised inside (a list) when ``record``; else let them pass (None).
    Recording changes global state, so it is not thread-safe."""
    if not record:
        yield None
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _messages(caught) -> list[str]:
    """The messages of recorded warnings, convergence warnings left out (by name: taking
    emkit's ConvergenceWarning class would import scikit-learn, seconds of start-up)."""
    return [
        str(m.message)
        for m in caught or ()
        if not any(c.__name__ == "ConvergenceWarning" for c in m.category.__mro__)
    ]


def _fit(K, cov_type, params, X, w, record):
    """A fitted ``GaussianMixture``, or the exception its fit raised; and the messages of
    the warnings it gave (when ``record``)."""
    from emkit.models.mixture.gaussian import GaussianMixture

    est = GaussianMixture(K, covariance_type=cov_type, **params)
    with _recorded(record) as caught:
        try:
            est.fit(X, sample_weight=w)
        except _FAILURES as exc:
            return exc, _messages(caught)
    return est, _messages(caught)


def _fitted(est: Any) -> bool:
    """Whether ``est``, an outcome of :func:`_fit`, is a fit (not the exception it raised)."""
    return est is not None and not isinstance(est, BaseException)


def _start(est: GaussianMixture) -> dict[str, np.ndarray]:
    """A fitted mixture's parameters as an ``init`` dict."""
    return {"weights": est.weights_, "means": est.means_, "covariances": est.covariances_}


def _full_covariances(est: GaussianMixture) -> np.ndarray:
    """A fitted mixture's covariances as (K, D, D) matrices, whatever their structure."""
    K, D = est.means_.shape
    covariances = np.asarray(est.covariances_, dtype=np.float64)
    return get_structure(est.covariance_type).to_full(covariances, K, D)


def split_starts(est: GaussianMixture) -> list[dict[str, np.ndarray]]:
    """Starts for K + 1 components from a fitted K-component mixture: one per component.

    Start ``j`` replaces component ``j`` by two halves of its weight, with means
    ``mean_j -/+ sqrt(lambda) v / 2`` along its principal axis (``lambda``, ``v``: the
    largest eigenvalue and its eigenvector of ``covariance_j``) and ``covariance_j``
    each; the other components stay as they are. Every covariance structure keeps its
    constraints (a copy of a component shares its volume, shape and orientation).

    Parameters
    ----------
    est : GaussianMixture
        Fitted.

    Returns
    -------
    list of dict
        ``init`` dicts (``weights``, ``means``, ``covariances``) of ``K + 1`` components.
    """
    K = est.n_components
    covariances = np.asarray(est.covariances_, dtype=np.float64)
    full = _full_covariances(est)
    shared = est.covariance_type == "tied"  # one (D, D) matrix
    starts = []
    for j in range(K):
        values, vectors = np.linalg.eigh(full[j])
        step = 0.5 * np.sqrt(max(values[-1], 0.0)) * vectors[:, -1]
        keep = np.arange(K) != j
        weights = np.concatenate([est.weights_[keep], [est.weights_[j] / 2] * 2])
        means = np.vstack([est.means_[keep], est.means_[j] - step, est.means_[j] + step])
        cov = covariances if shared else np.concatenate([covariances[keep], covariances[[j, j]]])
        starts.append({"weights": weights, "means": means, "covariances": cov})
    return starts


def collapsed_component(est: GaussianMixture) -> int | None:
    """The first component of a fitted mixture whose covariance collapsed onto the
    regularisation floor, if any.

    A covariance collapses when its smallest eigenvalue comes within ``10 * reg_covar``:
    the component sits on a few identical rows, or on a line through them. Such a fit
    is a spurious maximum of the likelihood (McLachlan & Peel 2000, *Finite Mixture
    Models*): its log-likelihood grows without bound as ``reg_covar`` shrinks, so it
    says nothing about the number of clusters.

    Parameters
    ----------
    est : GaussianMixture
        Fitted.

    Returns
    -------
    int or None
        The index of the first collapsed component; None when none collapsed or
        ``reg_covar`` is 0 (a collapse is then a singular covariance, an error).
    """
    if not est.reg_covar:
        return None
    low = np.linalg.eigvalsh(_full_covariances(est))[:, 0]
    bad = np.flatnonzero(low <= MIN_VARIANCE_OVER_REG * est.reg_covar)
    return int(bad[0]) if bad.size else None


def _better(best: Any, est: Any) -> Any:
    """The better of two fits (either may be an exception): a fit beats an exception, a
    fit without a collapsed component beats one with, then the higher log-likelihood."""
    if not _fitted(est):
        return best if best is not None else est
    if not _fitted(best):
        return est
    key = [(collapsed_component(e) is None, e.loglik_) for e in (best, est)]
    return est if key[1] > key[0] else best


def _search(K, cov_type, params, Xs, ws, previous, record):
    """The best start of candidate (K, cov_type) on the screening rows ``Xs``: of the fits
    from ``init``'s ``n_init`` restarts (each fitted alone) and, given the fit of K - 1
    components (``previous``), from each of its :func:`split_starts`, the best by
    :func:`_better`. Returns (the best fit, or an exception if none, warning messages)."""
    options = [params]
    if params["n_init"] > 1 and isinstance(params["init"], str):
        seeds = seed_sequence(params["random_state"]).spawn(params["n_init"])
        options = [{**params, "n_init": 1, "random_state": seed} for seed in seeds]
    if previous is not None:
        options += [{**params, "init": start, "n_init": 1} for start in split_starts(previous)]
    best, notes = None, []
    for option in options:
        est, more = _fit(K, cov_type, option, Xs, ws, record)
        notes += more
        best = _better(best, est)
    return best, notes


def _candidate(K, cov_type, est, notes, X, w, n_obs, n_parameters) -> Candidate:
    """Candidate (K, cov_type) scored from its fitted estimator (or the exception its fit
    raised)."""
    cand = Candidate(K, cov_type, n_parameters=n_parameters)
    if not _fitted(est):
        cand.status = f"failed: {est}"
        return cand
    try:
        resp = est.predict_proba(X)
    except _FAILURES as exc:
        cand.status = f"failed: {exc}"
        return cand
    collapsed = collapsed_component(est)
    if collapsed is not None:
        notes = [
            *notes,
            f"component {collapsed} collapsed onto the reg_covar floor (a spurious maximum: "
            "its log-likelihood and criteria say little)",
        ]
    cand.notes = list(dict.fromkeys(notes))
    with np.errstate(divide="ignore"):
        log_max = np.log(resp.max(axis=1))
    weights = np.ones(len(X)) if w is None else w
    cand.model = est
    cand.loglik = float(est.loglik_)
    cand.bic = -2.0 * cand.loglik + cand.n_parameters * np.log(n_obs)
    cand.aic = -2.0 * cand.loglik + 2.0 * cand.n_parameters
    cand.icl = cand.bic - 2.0 * float(np.dot(weights, log_max))
    cand.n_iter = int(est.n_iter_)
    cand.converged = bool(est.converged_)
    return cand


def select(
    X: Any,
    n_components: int | Iterable[int] = range(1, 10),
    covariance_types: str | Sequence[str] = "all",
    criterion: str = "bic",
    *,
    init: str = "hc",
    n_init: int = 1,
    sample_weight: Any = None,
    n_jobs: int | None = None,
    random_state: Any = None,
    progress: bool = False,
    subsample: int | None = None,
    warm_start: bool = False,
    screen_tol: float | None = None,
    callback: Callable[[Candidate, int, int], Any] | None = None,
    **params: Any,
) -> Selection:
    """Fit a Gaussian mixture for every (K, covariance type) and choose one.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        NaN marks a missing value (integrated out, as in :class:`GaussianMixture`).
    n_components : int or iterable of int, default range(1, 10)
        Numbers of components K to try (mclust's default 1..9).
    covariance_types : str or sequence of str, default "all"
        Structures to try: "all" is mclust's 14 ("EII" ... "VVV"); any registered
        name ("full", "diag", "tied", "spherical" too) may be listed.
    criterion : {"bic", "icl", "aic"}, default "bic"
        What chooses ``best_`` (lower is better; mclust's BIC is minus emkit's).
    init : str, default "hc"
        "hc": mclust's model-based hierarchical agglomeration (:mod:`emkit.models.hc`),
        one tree shared by every candidate; or any other ``GaussianMixture`` init
        ("kmeans++", ...), with ``n_init`` restarts seeded by ``random_state``: every
        candidate with the same K starts from the same restarts.
    n_init : int, default 1
    sample_weight : array-like of shape (n_samples,), optional
        The criteria then use the weighted log-likelihood and ``n = sum(weights)``.
    n_jobs : int, optional
        Fit the candidates on this many threads (same results; warnings of a
        candidate are then not attributed to it: ``notes`` stay empty). The E-steps of
        large data sets already use every core (BLAS, Numba), so threads pay most for
        many small candidates.
    random_state : None, int or numpy Generator
        A Generator (or None) is turned into one integer seed first, so every
        candidate, on any number of threads, draws from the same seed.
    progress : bool, default False
        A progress bar over the candidates on stderr (when it is a terminal).
    subsample : int, optional
        Search on a random subsample: when the data have more rows than this, the
        starts of every candidate (the ``n_init`` restarts, and the splits of
        ``warm_start``) are fitted on ``subsample`` rows drawn without replacement
        (the same rows for every candidate), and only the best of them is then run to
        convergence on all rows. ``n_iter``, ``converged``, the log-likelihood and the
        criteria are those of that last fit on all rows. None (the default) fits every
        start on all rows.
    warm_start : bool, default False
        Besides ``init``'s restarts, start each K from the fit of K - 1 components of
        the same covariance type (when K - 1 is among ``n_components``), split in
        each of its components in turn (:func:`split_starts`): K - 1 more starts,
        which often reach a higher optimum than random restarts. Candidates of one
        covariance type are then searched in order of K (on one thread each).
    screen_tol : float, optional
        Tolerance of the starts' fits; the best start is then run on with ``tol``
        (e.g. a loose ``screen_tol`` to compare many starts cheaply, and a tight
        ``tol`` for the one kept). None: ``tol``.

        With any of ``subsample`` (when it applies), ``warm_start`` or ``screen_tol``,
        the starts are fitted one by one (the ``n_init`` restarts from seeds spawned
        from ``random_state``) and the best is the one with the highest
        log-likelihood among those without a component collapsed onto the
        ``reg_covar`` floor (:func:`collapsed_component`: a spurious maximum), if
        any. A candidate whose fit has such a component says so in its ``notes``.
    callback : callable, optional
        Called as ``callback(candidate, n_done, n_total)`` when a candidate is
        finished (on the thread that fitted it, with ``n_jobs``).
    **params
        Other ``GaussianMixture`` hyper-parameters (``tol``, ``max_iter``,
        ``reg_covar``, ``accel``, ...), the same for every candidate.

    Returns
    -------
    Selection
        ``table`` (a pandas DataFrame: K, covariance type, log-likelihood, number of
        parameters, BIC, AIC, ICL, iterations, converged, status) and ``best_``. A
        candidate that cannot be fitted (too few values for its parameters, a
        singular fit) has status ``"failed: ..."`` and NaN scores.

    Examples
    --------
    >>> import numpy as np
    >>> import emkit
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (150, 2)), rng.normal(3, 0.5, (100, 2))])
    >>> sel = emkit.select(X, n_components=range(1, 4), covariance_types=["EII", "VII", "VVV"])
    >>> (sel.best_.n_components, sel.best_.covariance_type)
    (2, 'VII')
    >>> list(sel.table.columns[:4])
    ['n_components', 'covariance_type', 'loglik', 'n_parameters']

    On many rows: restarts on 2,000 of them, the best run on all, with SQUAREM.

    >>> X = np.vstack([rng.normal(-3, 1, (6000, 2)), rng.normal(3, 0.5, (4000, 2))])
    >>> sel = emkit.select(X, range(1, 4), "full", init="kmeans++", n_init=3, subsample=2000,
    ...                    warm_start=True, accel="squarem", random_state=0)
    >>> sel.best_.n_components
    2
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    ks = _components(n_components)
    types = _covariance_types(covariance_types)
    X = check_array(X, min_samples=2, allow_nan=True)
    w = check_sample_weight(sample_weight, len(X))
    if max(ks) > len(X):
        raise ValueError(
            f"the data have {len(X)} rows, fewer than the largest number of components "
            f"K = {max(ks)}"
        )
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int)):
        raise TypeError(f"n_jobs must be an int or None, got {n_jobs!r}")
    if subsample is not None:
        if isinstance(subsample, bool) or not isinstance(subsample, (int, np.integer)):
            raise TypeError(f"subsample must be an int or None, got {subsample!r}")
        if subsample < max(2, max(ks)):
            raise ValueError(
                f"subsample must be at least 2 and at least the largest K = {max(ks)}, "
                f"got {subsample}"
            )
    if screen_tol is not None and not (np.isfinite(screen_tol) and screen_tol >= 0):
        raise ValueError(f"screen_tol must be a finite number >= 0, got {screen_tol!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    if random_state is None or isinstance(
        random_state, (np.random.Generator, np.random.RandomState)
    ):
        random_state = int(seed_sequence(random_state).generate_state(1, np.uint32)[0])
    n_obs = float(len(X) if w is None else np.sum(w))
    params = {**params, "init": init, "n_init": n_init, "random_state": random_state}
    grid = [(k, t) for k in ks for t in types]
    from emkit.models.mixture.gaussian import GaussianMixture

    D = X.shape[1]
    rows = None
    if subsample is not None and len(X) > subsample:
        rng = np.random.default_rng(seed_sequence(random_state))
        rows = np.sort(rng.choice(len(X), size=int(subsample), replace=False))
    Xs, ws = (X, w) if rows is None else (X[rows], None if w is None else w[rows])
    screen_params = params if screen_tol is None else {**params, "tol": screen_tol}
    run_on = rows is not None or (screen_tol is not None and screen_tol != params.get("tol"))
    search_starts = run_on or warm_start
    n_values = int(np.count_nonzero(~np.isnan(X)))
    serial = n_jobs is None or n_jobs == 1 or len(grid) == 1
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(grid),
        desc="fitting",
        unit="model",
        file=sys.stderr,
        leave=False,
        disable=not progress or not sys.stderr.isatty(),
    )
    found: dict[tuple[int, str], Candidate] = {}
    lock = threading.Lock()

    def report(cand: Candidate) -> None:
        with lock:
            found[cand.n_components, cand.covariance_type] = cand
            n_done = len(found)
            bar.update(1)
        if callback is not None:
            callback(cand, n_done, len(grid))

    def search(K: int, cov_type: str, previous: Any) -> tuple[Any, list[str], int]:
        """The candidate's best start (a fit, or the exception), its warnings and size."""
        size = int(GaussianMixture(K, covariance_type=cov_type)._free_parameters(D, K))
        if size >= n_values:
            return ValueError(f"{size} parameters but only {n_values} observed values"), [], size
        if search_starts:
            est, notes = _search(K, cov_type, screen_params, Xs, ws, previous, serial)
        else:  # one fit from n_init restarts, as GaussianMixture
            est, notes = _fit(K, cov_type, params, X, w, serial)
        return est, notes, size

    def finish(K: int, cov_type: str, est: Any, notes: list[str], size: int) -> None:
        """Run the best start on all rows (if it was found on fewer, or looser), and report."""
        if run_on and _fitted(est):
            final = {**params, "init": _start(est), "n_init": 1}
            est, more = _fit(K, cov_type, final, X, w, serial)
            notes = notes + more
        report(_candidate(K, cov_type, est, notes, X, w, n_obs, size))

    def chain(cov_type: str, submit: Callable[..., Any]) -> None:
        """The candidates of one covariance type in order of K, each K - 1's fit
        splitting into starts of K (``warm_start``)."""
        previous, last_k = None, None
        for K in ks:
            est, notes, size = search(K, cov_type, previous if last_k == K - 1 else None)
            previous, last_k = (est if _fitted(est) else None), K
            submit(finish, K, cov_type, est, notes, size)

    def one(K: int, cov_type: str) -> None:
        finish(K, cov_type, *search(K, cov_type, None))

    with bar:
        if serial:
            if warm_start:
                for cov_type in types:  # every K of a type before the next type
                    chain(cov_type, lambda fn, *args: fn(*args))
            else:
                for K, cov_type in grid:
                    one(K, cov_type)
        else:  # warnings are caught once, around every thread (catching is global state)
            workers = n_jobs if n_jobs > 0 else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    if warm_start:
                        finals: list[Any] = []
                        chains = [pool.submit(chain, t, _collect(pool, finals)) for t in types]
                        for future in chains:
                            future.result()
                        for future in list(finals):
                            future.result()
                    else:
                        for future in [pool.submit(one, K, t) for K, t in grid]:
                            future.result()
    return Selection([found[key] for key in grid], criterion)


def _collect(pool: ThreadPoolExecutor, futures: list[Any]) -> Callable[..., None]:
    """``submit(fn, *args)`` onto ``pool``, keeping the future in ``futures``."""

    def submit(fn: Callable[..., Any], *args: Any) -> None:
        futures.append(pool.submit(fn, *args))

    return submit
