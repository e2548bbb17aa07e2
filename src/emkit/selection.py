"""Model selection for Gaussian mixtures: fit every (K, covariance structure) candidate
and choose by BIC, ICL or AIC, as R's ``mclust::Mclust`` does (``emkit.select``).

Sign convention: emkit's criteria are scikit-learn's, **lower is better**:
``bic = -2 loglik + npar log n``, ``aic = -2 loglik + 2 npar`` and ``icl = bic - 2 sum_i
log max_k p(k | x_i)``. mclust reports ``2 loglik - npar log n`` (larger is better),
i.e. minus these; the parameter counts are mclust's (``nMclustParams``).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from emkit._validation import check_array, check_sample_weight
from emkit.distributions.covariance import COVARIANCE_TYPES, MCLUST_MODELS

if TYPE_CHECKING:  # imported by the first fit: the command line's parser imports this module
    from emkit.models.mixture.gaussian import GaussianMixture

__all__ = ["CRITERIA", "Candidate", "Selection", "select"]

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


def _fit_one(X, w, n_obs, K, cov_type, params, record=True) -> Candidate:
    """Fit one candidate, recording its warnings (``record``: not thread-safe); a failure
    becomes its status."""
    from emkit.exceptions import ConvergenceWarning
    from emkit.models.mixture.gaussian import GaussianMixture

    cand = Candidate(K, cov_type)
    est = GaussianMixture(K, covariance_type=cov_type, **params)
    cand.n_parameters = int(est._free_parameters(X.shape[1], K))
    n_values = int(np.count_nonzero(~np.isnan(X)))
    if cand.n_parameters >= n_values:
        cand.status = f"failed: {cand.n_parameters} parameters but only {n_values} observed values"
        return cand
    with warnings.catch_warnings(record=True) if record else _nothing() as caught:
        if record:
            warnings.simplefilter("always")
        try:
            est.fit(X, sample_weight=w)
            resp = est.predict_proba(X)
        except _FAILURES as exc:
            cand.status = f"failed: {exc}"
            return cand
    cand.notes = list(
        dict.fromkeys(
            str(m.message) for m in caught or () if not issubclass(m.category, ConvergenceWarning)
        )
    )
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


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


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
        candidate are then not attributed to it: ``notes`` stay empty).
    random_state : None, int or numpy Generator
    progress : bool, default False
        A progress bar over the candidates on stderr (when it is a terminal).
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
    n_obs = float(len(X) if w is None else np.sum(w))
    params = {**params, "init": init, "n_init": n_init, "random_state": random_state}
    grid = [(k, t) for k in ks for t in types]
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(grid),
        desc="fitting",
        unit="model",
        file=sys.stderr,
        leave=False,
        disable=not progress or not sys.stderr.isatty(),
    )

    serial = n_jobs is None or n_jobs == 1 or len(grid) == 1

    def run(item):
        out = _fit_one(X, w, n_obs, item[0], item[1], params, record=serial)
        bar.update(1)
        return out

    with bar:
        if serial:
            candidates = [run(item) for item in grid]
        else:  # warnings are caught once, around every thread (catching is global state)
            workers = n_jobs if n_jobs > 0 else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    candidates = list(pool.map(run, grid))
    return Selection(candidates, criterion)
