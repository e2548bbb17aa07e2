"""The parts an HMM is composed of: probability rows (initial state, transitions) and emissions.

An HMM is three parts that each collect their own statistics and take their own
M-step (as in dynamax):

* :class:`ProbabilityRows` for the initial-state distribution and the rows of the
  transition matrix: expected counts in, Dirichlet-MAP (or maximum-likelihood)
  probabilities out, with zeros kept as structural zeros (left-right models);
* an :class:`Emission`: the per-state observation densities. :class:`Emission`
  wraps any :class:`~emkit.distributions.Distribution` (its statistics weighted by
  the state posteriors); the named emissions of :class:`emkit.HMM` add their fitted
  attribute names, data preparation (centring, integer symbols, constants) and fast
  paths: :class:`GaussianEmission`, :class:`CategoricalEmission`,
  :class:`PoissonEmission` and :class:`GaussianMixtureEmission` (``n_mix`` Gaussians
  per state).

Every emission works on *prepared* data (``prepare``): a pytree of arrays with one
row per observation, so batches of whole sequences are row slices of it. Rows that
are entirely NaN are missing observations: ``prepare`` fills them with a valid
placeholder (so densities stay finite) and returns a mask; the HMM gives them a
log-density of 0 (they are integrated out) and zero weight in the statistics.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse
from scipy.special import gammaln

from emkit._pytree import tree_leaves, tree_ravel
from emkit.distributions.base import CountStats, Distribution, component
from emkit.distributions.covariance import block_rows, get_structure
from emkit.distributions.discrete import Categorical, CategoricalParams, Poisson, PoissonParams
from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStats
from emkit.models.init import kmeans, kmeans_plusplus, nearest_center

__all__ = [
    "CategoricalEmission",
    "Emission",
    "GaussianEmission",
    "GaussianMixtureEmission",
    "MixtureParams",
    "PoissonEmission",
    "ProbabilityRows",
    "check_alpha",
]

_TINY = np.finfo(np.float64).tiny
_LOG_TINY = float(np.log(_TINY))
_LOG_2PI = float(np.log(2.0 * np.pi))
#: Weight given to every row for a state whose posteriors are all exactly zero, so its
#: M-step is defined (any value maximises the expected log-likelihood then; this one
#: gives the data's overall statistics) without changing any other state's statistics.
_EMPTY_FLOOR = 1e-300
#: Share of the uniform distribution mixed into starting responsibilities.
_SMOOTHING = 0.1


# --------------------------------------------------------------------------- rows
def check_alpha(alpha: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.asarray(1.0 if alpha is None else alpha, dtype=np.float64)
    try:
        a = np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{name} must be a number or broadcast to shape {shape}") from None
    if not np.all(np.isfinite(a)) or np.any(a < 1):
        raise ValueError(
            f"{name}: Dirichlet pseudo-counts must be finite and >= 1 (1 = no prior), got "
            f"min {a.min()}"
        )
    return a


def _pack_probs(p: np.ndarray) -> np.ndarray:
    # log p, with exact zeros at log(tiny): a structural zero stays put under
    # extrapolation (its three points coincide) and unpacks to an exact zero again.
    return np.log(np.maximum(np.asarray(p, dtype=np.float64), _TINY)).ravel()


def _unpack_probs(vec: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    v = np.asarray(vec, dtype=np.float64).reshape(shape)
    zero = v <= _LOG_TINY + 1.0
    top = np.max(np.where(zero, -np.inf, v), axis=-1, keepdims=True)
    if not np.all(np.isfinite(top)):
        raise ValueError("a row of probabilities has no positive entry")
    p = np.where(zero, 0.0, np.exp(v - top))
    return p / p.sum(axis=-1, keepdims=True)


class ProbabilityRows:
    """Rows of probabilities (last axis sums to 1) fitted from expected counts.

    The initial-state distribution is one row of K, the transition matrix K rows of
    K. The M-step is the mode of a Dirichlet posterior: with pseudo-counts ``alpha``
    (1 = no prior, maximum likelihood)::

        p[i, j]  proportional to  max(counts[i, j] + alpha[i, j] - 1, 0)

    over the entries that are positive in the current parameters. An entry that is
    zero stays zero, with or without a prior (a left-right model stays left-right;
    exact EM never makes a zero probability positive anyway). A row without counts
    (a state never left) keeps its current probabilities, which is a maximiser then.

    Parameters
    ----------
    name : str
        For error messages ("startprob", "transmat").
    alpha : float or array-like, default 1.0
        Dirichlet pseudo-counts, broadcast to the rows' shape, each >= 1.
    """

    def __init__(self, name: str, alpha: Any = 1.0):
        self.name = name
        self.alpha = alpha

    def check(self, value: Any, shape: tuple[int, ...]) -> np.ndarray:
        """Validate user-given probabilities (shape, finite, non-negative, rows sum to 1)."""
        p = np.asarray(value, dtype=np.float64)
        if p.shape != shape:
            raise ValueError(f"{self.name} must have shape {shape}, got {p.shape}")
        if not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ValueError(f"{self.name} must be finite and non-negative")
        sums = p.sum(axis=-1)
        bad = np.flatnonzero(np.abs(np.atleast_1d(sums) - 1.0) > 1e-8)
        if bad.size:
            where = "" if p.ndim == 1 else f"row {bad[0]} of "
            raise ValueError(
                f"{where}{self.name} sums to {float(np.atleast_1d(sums)[bad[0]]):.6g}, not 1; "
                "probabilities must sum to 1" + (" along each row" if p.ndim > 1 else "")
            )
        return p / p.sum(axis=-1, keepdims=True)

    def mstep(self, counts: np.ndarray, current: np.ndarray) -> np.ndarray:
        current = np.asarray(current, dtype=np.float64)
        alpha = check_alpha(self.alpha, current.shape, self.name + "_prior")
        num = np.where(current > 0, np.maximum(np.asarray(counts) + (alpha - 1.0), 0.0), 0.0)
        total = num.sum(axis=-1, keepdims=True)
        ok = total > 0
        return np.where(ok, num / np.where(ok, total, 1.0), current)

    def log_prior(self, p: np.ndarray) -> float:
        p = np.asarray(p, dtype=np.float64)
        alpha = check_alpha(self.alpha, p.shape, self.name + "_prior")
        positive = p > 0
        return float(np.sum((alpha - 1.0)[positive] * np.log(p[positive])))

    @staticmethod
    def n_free(p: np.ndarray) -> int:
        """Free parameters: positive entries minus one per row."""
        p = np.atleast_2d(np.asarray(p))
        return int(sum(max(np.count_nonzero(row) - 1, 0) for row in p))

    pack = staticmethod(_pack_probs)

    @staticmethod
    def unpack(vec: np.ndarray, like: np.ndarray) -> np.ndarray:
        return _unpack_probs(vec, np.shape(like))


# --------------------------------------------------------------------------- data
def _missing_rows(X: np.ndarray, partial_ok: bool, what: str) -> np.ndarray:
    """Mask of rows that are entirely NaN; error on partly missing rows unless allowed."""
    nan = np.isnan(X)
    if not nan.any():
        return np.zeros(len(X), dtype=bool)
    missing = nan.all(axis=1)
    if not partial_ok:
        partial = np.flatnonzero(nan.any(axis=1) & ~missing)
        if partial.size:
            raise ValueError(
                f"row {partial[0]} of X has missing (NaN) values in some but not all columns; "
                f"{what} emissions can only integrate out whole missing rows (all NaN). "
                "Gaussian emissions integrate out single entries"
            )
    return missing


def _column_sums(weights: np.ndarray) -> np.ndarray:
    # A matrix-vector product: NumPy's sum over axis 0 of a tall, narrow C-ordered
    # array is several times slower.
    return np.ones(len(weights)) @ weights


def _centres(F: np.ndarray, K: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """K centres for rows ``F``: k-means (from k-means++), or K distinct random rows."""
    if method == "kmeans":
        return kmeans(F, K, rng)[0]
    distinct = np.unique(F, axis=0)
    if len(distinct) < K:  # fewer distinct rows than states
        return F[kmeans_plusplus(F, K, rng)]
    return distinct[rng.choice(len(distinct), size=K, replace=False)]


def _subsample(rows: np.ndarray, rng: np.random.Generator, size: int = 20_000) -> np.ndarray:
    # Centres from a subsample are enough for a start, and bounded in cost.
    if rows.size <= size:
        return rows
    return np.sort(rng.choice(rows, size, replace=False))


def _floor_empty(weights: np.ndarray, sums: np.ndarray | None = None) -> np.ndarray:
    """Give every row a negligible weight for a state (column) whose weights are all zero."""
    empty = ~((_column_sums(weights) if sums is None else np.asarray(sums)) > 0)
    if empty.any():
        weights = weights.copy()
        weights[:, empty] = _EMPTY_FLOOR
    return weights


def _floored(stats_of: Any, weights: np.ndarray) -> Any:
    """``stats_of(weights)``, again with :func:`_floor_empty` weights if a state got none.

    ``stats_of`` returns (statistics, total weight per state); the common case costs
    no extra pass over the weights.
    """
    stats, nk = stats_of(weights)
    if np.all(np.asarray(nk) > 0):
        return stats
    return stats_of(_floor_empty(weights, nk))[0]


def _nk(stats: Any) -> tuple[Any, np.ndarray]:
    return stats, stats.nk


def _supports_missing(dist: Distribution) -> bool:
    """Whether ``dist`` integrates out single NaN entries of a row."""
    if isinstance(dist, Gaussian):
        return True
    parts = getattr(dist, "parts", None)
    if parts is not None:
        return all(_supports_missing(p) for p in parts)
    return type(dist)._expected_stats is not Distribution._expected_stats


def _stats_take_params(dist: Distribution) -> bool:
    try:
        return "params" in inspect.signature(dist.suff_stats).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


# ---------------------------------------------------------------------- emissions
class Emission:
    """The emission part of an HMM built on any :class:`~emkit.distributions.Distribution`.

    Given the state ``z_t = k``, ``x_t`` is drawn from component ``k`` of ``dist``.
    The E-step weights the distribution's statistics by the state posteriors; the
    M-step is the distribution's own (with ``prior`` for MAP-EM where it takes one).

    The fitted parameters are the distribution's parameter pytree, exposed as
    ``emission_params_`` by :class:`emkit.HMM`.

    Parameters
    ----------
    dist : Distribution
    prior : optional
        Passed to ``dist.mstep`` and ``dist.log_prior``.
    """

    #: fitted attribute names of the HMM (without the trailing underscore)
    attributes: tuple[str, ...] = ("emission_params",)
    #: whether rows with some (not all) NaN entries are integrated out
    partial_missing: bool = False
    kind = "distribution"

    def __init__(self, dist: Distribution, prior: Any = None):
        if not isinstance(dist, Distribution):
            raise TypeError(f"an emission needs a Distribution, got {type(dist).__name__}")
        self.dist = dist
        self.prior = prior
        self.partial_missing = _supports_missing(dist)
        self._with_params = _stats_take_params(dist)

    # ---------------------------------------------------------------- data
    def prepare(self, X: np.ndarray) -> tuple[Any, np.ndarray | None]:
        """Validated data for ``frame``/``suff_stats``, and the mask of missing rows.

        ``X`` is a float array (T, D) in which NaN marks missing values. Returns the
        prepared data (a pytree of arrays with T rows) and a boolean (T,) mask of rows
        that are entirely missing (``None`` when there are none).
        """
        missing = _missing_rows(X, self.partial_missing, self.dist.name)
        observed = ~missing
        if not observed.any():
            raise ValueError("every observation in X is missing (NaN); nothing to fit")
        has_missing = bool(missing.any())
        checked = self.dist.validate(X[observed] if has_missing else X)
        if has_missing:
            out = np.empty_like(X)
            out[observed] = checked
            # A valid placeholder keeps every log-density finite; the rows get log 1 and
            # zero weight anyway.
            out[missing] = checked[0]
            checked = out
        return self._transform(checked), (missing if has_missing else None)

    def _transform(self, X: np.ndarray) -> Any:
        return X

    def init_features(self, data: Any) -> np.ndarray:
        """Rows to cluster when the HMM starts from k-means labels (the distribution's
        own features: standardised columns, square roots of counts, one-hot codes)."""
        return np.nan_to_num(self.dist.init_features(np.asarray(data, dtype=np.float64)))

    def init_labels(
        self,
        data: Any,
        rows: np.ndarray,
        K: int,
        method: str,
        rng: np.random.Generator,
        offsets: np.ndarray | None = None,
    ) -> np.ndarray:
        """A state label for every row, from K centres of the features of ``rows``."""
        feats = np.asarray(self.init_features(data), dtype=np.float64).reshape(_n_rows(data), -1)
        centres = _centres(np.ascontiguousarray(feats[_subsample(rows, rng)]), K, method, rng)
        return nearest_center(np.ascontiguousarray(feats), centres)[0]

    # ---------------------------------------------------------------- E and M
    def frame(self, params: Any, data: Any) -> tuple[np.ndarray, Any]:
        """``log p(x_t | z_t = k)``, C-contiguous (T, K), and what ``suff_stats`` reuses."""
        lp = self.dist.log_prob(params, data)
        return np.ascontiguousarray(lp, dtype=np.float64), None

    def suff_stats(self, data: Any, weights: np.ndarray, params: Any, aux: Any = None) -> Any:
        """Statistics weighted by the state posteriors ``weights`` (T, K)."""
        weights = _floor_empty(weights)
        if self._with_params:
            return self.dist.suff_stats(data, weights, params=params)
        return self.dist.suff_stats(data, weights)

    def mstep(self, stats: Any, params: Any) -> Any:
        return self.dist.mstep(stats, self.prior)

    def log_prior(self, params: Any) -> float:
        if self.prior is None:
            return 0.0
        return float(self.dist.log_prior(params, self.prior))

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator) -> Any:
        """An M-step from responsibilities ``resp`` (T, K) (zero rows for missing data)."""
        return self.dist.init_params(data, _floor_empty(resp), rng)

    # ---------------------------------------------------------------- the rest
    def sample(self, params: Any, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw (row) per entry of ``states``."""
        out = None
        for k in np.unique(states):
            rows = np.flatnonzero(states == k)
            draws = np.asarray(self.dist.sample(component(params, int(k)), rows.size, rng))
            if out is None:
                out = np.empty((states.size, draws.shape[1]), dtype=np.float64)
            out[rows] = draws
        return out

    def n_parameters(self, params: Any, n_features: int) -> int:
        return int(self.dist.n_parameters(_n_components(params), n_features))

    def pack(self, params: Any) -> np.ndarray:
        return tree_ravel(params)[0]

    def unpack(self, vec: np.ndarray, like: Any) -> Any:
        return tree_ravel(like)[1](vec)

    def to_attributes(self, params: Any) -> dict[str, Any]:
        return {"emission_params": self.dist.params_to_dict(params)}

    def from_attributes(self, values: dict[str, Any], n_states: int, n_features: int) -> Any:
        given = values["emission_params"]
        if hasattr(given, "_asdict"):  # the parameter NamedTuple itself
            given = given._asdict()
        if not isinstance(given, Mapping):
            raise TypeError(
                "emission_params must be a dict of the distribution's parameter arrays "
                f"(or its parameter tuple), got {type(given).__name__}"
            )
        params = self.dist.params_from_dict(given)
        if _n_components(params) != n_states:
            raise ValueError(f"emission_params must have a leading axis of {n_states} states")
        if not all(np.all(np.isfinite(x)) for x in tree_leaves(params)):
            raise ValueError("emission_params must be finite")
        return params


def _n_rows(data: Any) -> int:
    return int(np.shape(next(x for x in tree_leaves(data) if x is not None))[0])


def _n_components(params: Any) -> int:
    leaves = [np.asarray(x) for x in tree_leaves(params)]
    return int(leaves[0].shape[0]) if leaves and leaves[0].ndim else 0


# ------------------------------------------------------------------- Gaussian
def _pack_covariance(cov: np.ndarray, structure_name: str) -> np.ndarray:
    if structure_name in ("full", "tied"):
        chol = np.linalg.cholesky(cov)
        D = chol.shape[-1]
        lower = np.tril_indices(D, -1)
        return np.concatenate(
            [
                np.log(np.diagonal(chol, axis1=-2, axis2=-1)).ravel(),
                chol[..., lower[0], lower[1]].ravel(),
            ]
        )
    return np.log(cov).ravel()


def _unpack_covariance(vec: np.ndarray, like: np.ndarray, structure_name: str) -> np.ndarray:
    if structure_name in ("full", "tied"):
        *lead, D, _ = like.shape
        n = int(np.prod(lead, dtype=np.int64))
        chol = np.zeros((n, D, D))
        diag = np.arange(D)
        with np.errstate(over="ignore"):
            chol[:, diag, diag] = np.exp(vec[: n * D]).reshape(n, D)
        lower = np.tril_indices(D, -1)
        chol[:, lower[0], lower[1]] = vec[n * D :].reshape(n, -1)
        cov = (chol @ np.swapaxes(chol, 1, 2)).reshape(like.shape)
    else:
        with np.errstate(over="ignore", under="ignore"):
            cov = np.exp(vec).reshape(like.shape)
    if not np.all(np.isfinite(cov)):
        raise ValueError("the parameter vector gives an infinite covariance")
    return cov


class _CentredEmission(Emission):
    """Gaussian-family emissions: data centred at their observed mean, the structure's
    kernels run once per E-step.

    Prepared data are ``(X - shift, partial)`` with ``partial`` the mask of rows that
    have some (not all) entries missing, or ``None``. Without such rows, ``frame``
    runs the covariance structure's block kernel (:mod:`emkit.distributions.covariance`)
    and keeps each block's work arrays, from which ``suff_stats`` takes the moments
    with one more product: the features of the data are built once per E-step, not
    twice. With partly missing rows, the distribution's own NaN-aware ``log_prob`` and
    ``suff_stats`` (marginal densities, conditional moments) are used.
    """

    shift: np.ndarray | None = None
    #: keep the E-step's work arrays only while they hold at most this many numbers
    max_work = 1 << 24

    def prepare(self, X: np.ndarray) -> tuple[Any, np.ndarray | None]:
        if self.shift is None:
            nan = np.isnan(X)
            if nan.any():  # the mean of the observed entries (0 for a column of NaN)
                counts = (~nan).sum(axis=0)
                self.shift = np.where(nan, 0.0, X).sum(axis=0) / np.maximum(counts, 1)
            else:
                self.shift = X.mean(axis=0)
        return super().prepare(X)

    def _transform(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        Xc = X - self.shift
        nan = np.isnan(Xc)
        partial = nan.any(axis=1) if nan.any() else None
        return Xc, partial

    def init_features(self, data: Any) -> np.ndarray:
        return np.nan_to_num(data[0])

    def _gauss_frame(self, params: GaussianParams, data: Any) -> tuple[np.ndarray, Any]:
        """Log-densities (T, C) of every Gaussian component, and the work to reuse."""
        X, partial = data
        if partial is not None:
            return np.ascontiguousarray(self.dist.log_prob(params, X)), None
        st = self.dist.structure
        means = np.asarray(params.mean, dtype=np.float64)
        C, D = means.shape
        prec = st.precision_cholesky(self.dist.storage(params.covariance))
        offset = st.log_det_precision_cholesky(prec, D) - 0.5 * D * _LOG_2PI
        cache = st.prepare(means, prec, np.broadcast_to(offset, (C,)), np.float64)
        T = len(X)
        size = block_rows(st.work_per_row(C, D))
        keep = T * st.work_per_row(C, D) <= self.max_work
        out = np.empty((T, C))
        works = []
        for start in range(0, T, size):
            sl = slice(start, start + size)
            lp, work = st.log_density(X[sl], cache)
            out[sl] = lp
            if keep:
                works.append((sl, work))
        return out, (works if keep else None)

    def _gauss_stats(self, data: Any, weights: np.ndarray, params: Any, works: Any):
        X, partial = data
        if works is None:
            if partial is not None and params is None:  # a start: fill in column means
                return self.dist.suff_stats(np.nan_to_num(X), weights)
            return self.dist.suff_stats(X, weights, params=params)
        st = self.dist.structure
        nk = s1 = s2 = None
        for sl, work in works:
            b_nk, b_s1, b_s2 = st.block_stats(X[sl], weights[sl], work)
            if nk is None:
                nk, s1, s2 = (np.array(a, dtype=np.float64) for a in (b_nk, b_s1, b_s2))
            else:
                nk += b_nk
                s1 += b_s1
                s2 += b_s2
        return GaussianStats(nk, s1, s2)


class GaussianEmission(_CentredEmission):
    """Multivariate normal emissions: ``x_t | z_t = k ~ Normal(means[k], covariances[k])``.

    NaN entries are integrated out (marginal densities, conditional moments). The data
    are centred at their observed mean (``shift``) before fitting, which keeps the raw
    moments of the statistics free of cancellation; ``means`` are reported in the
    original coordinates.

    Fitted attributes: ``means`` (K, D), ``covariances`` shaped as in
    :class:`emkit.GaussianMixture`: (K, D, D) full, (K, D) diag, (D, D) tied, (K,)
    spherical.
    """

    attributes = ("means", "covariances")
    kind = "gaussian"

    def __init__(self, covariance_type: str = "diag", reg_covar: float = 1e-6, shift=None):
        super().__init__(Gaussian(covariance_type, reg_covar))
        self.covariance_type = covariance_type
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)

    def frame(self, params: GaussianParams, data: Any) -> tuple[np.ndarray, Any]:
        return self._gauss_frame(params, data)

    def suff_stats(self, data: Any, weights: np.ndarray, params: Any, aux: Any = None):
        return _floored(lambda w: _nk(self._gauss_stats(data, w, params, aux)), weights)

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator) -> Any:
        return self.dist.mstep(self._gauss_stats(data, _floor_empty(resp), None, None))

    def n_parameters(self, params: Any, n_features: int) -> int:
        return int(self.dist.n_parameters(np.shape(params.mean)[0], n_features))

    def pack(self, params: GaussianParams) -> np.ndarray:
        cov = self.dist.storage(params.covariance)
        st = self.dist.structure.name
        return np.concatenate([np.ravel(params.mean), _pack_covariance(cov, st)])

    def unpack(self, vec: np.ndarray, like: GaussianParams) -> GaussianParams:
        K, D = np.shape(like.mean)
        cov_like = self.dist.storage(like.covariance)
        means = np.asarray(vec[: K * D], dtype=np.float64).reshape(K, D)
        cov = _unpack_covariance(vec[K * D :], cov_like, self.dist.structure.name)
        _check_positive_definite(self.dist, cov)
        return GaussianParams(means, self.dist.from_storage(cov, K))

    def to_attributes(self, params: GaussianParams) -> dict[str, Any]:
        return {
            "means": np.asarray(params.mean) + self.shift,
            "covariances": self.dist.storage(params.covariance),
        }

    def from_attributes(self, values: dict[str, Any], n_states: int, n_features: int) -> Any:
        K, D = n_states, n_features
        means = np.asarray(values["means"], dtype=np.float64)
        if means.shape != (K, D):
            raise ValueError(f"means must have shape ({K}, {D}), got {means.shape}")
        if not np.all(np.isfinite(means)):
            raise ValueError("means must be finite")
        cov = get_structure(self.covariance_type).check(values["covariances"], K, D)
        return GaussianParams(means - self.shift, self.dist.from_storage(cov, K))


def _check_positive_definite(dist: Gaussian, cov: np.ndarray) -> None:
    try:
        prec = dist.structure.precision_cholesky(cov)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"the covariances are not positive definite: {exc}") from None
    if not np.all(np.isfinite(prec)):
        raise ValueError("the covariances are not positive definite")


# ----------------------------------------------------------------- categorical
class CategoricalEmission(Emission):
    """One categorical symbol per time step: ``x_t | z_t = k ~ Categorical(emissionprob[k])``.

    Symbols are the integers ``0 .. n_categories - 1`` in one column. Fitted attribute:
    ``emissionprob`` (K, n_categories).
    """

    attributes = ("emissionprob",)
    kind = "categorical"

    def __init__(self, n_categories: int):
        super().__init__(Categorical(n_categories))
        self.n_categories = int(n_categories)

    def prepare(self, X: np.ndarray) -> tuple[Any, np.ndarray | None]:
        if X.shape[1] != 1:
            raise ValueError(
                f"categorical emissions take one column of symbols, got {X.shape[1]} columns; "
                "for several independent categorical columns pass "
                "emission=emkit.distributions.Categorical(n_categories)"
            )
        checked, missing = super().prepare(X)
        return checked[:, 0].astype(np.int32), missing

    def init_features(self, data: Any) -> np.ndarray:
        return np.eye(self.n_categories)[data]

    #: half-width of the window of neighbouring symbols that describes a time step
    #: when the HMM starts from clustered labels
    init_window = 5

    def init_labels(
        self,
        data: Any,
        rows: np.ndarray,
        K: int,
        method: str,
        rng: np.random.Generator,
        offsets: np.ndarray | None = None,
    ) -> np.ndarray:
        """Labels from clustering the symbol frequencies in a window around each step.

        One symbol says little about the state; the frequencies of the symbols within
        ``init_window`` steps either side (within the sequence) say more, because
        states persist. The centres are fitted to the windows of a subsample of rows;
        every row then gets the centre nearest to its window, which only needs the
        moving average of ``centres[:, x_t]`` (no (T, n_categories) array).
        """
        T, C, W = len(data), self.n_categories, self.init_window
        if offsets is None:
            offsets = np.array([0, T])
        observed = np.zeros(T, dtype=bool)
        observed[rows] = True
        seq = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        lo, hi = offsets[seq], offsets[seq + 1]
        sample = _subsample(rows, rng)
        idx = sample[:, None] + np.arange(-W, W + 1)
        inside = (idx >= lo[sample, None]) & (idx < hi[sample, None])
        idx = np.clip(idx, 0, T - 1)
        inside &= observed[idx]
        hist = np.zeros((len(sample), C))
        np.add.at(hist, (np.nonzero(inside)[0], data[idx][inside]), 1.0)
        centres = _centres(hist / hist.sum(axis=1, keepdims=True), K, method, rng)
        # Nearest centre of a window h: argmin_k |c_k|^2 - 2 h.c_k, and h.c_k is the
        # window's average of c_k[x_s].
        look = np.where(observed[:, None], centres.T[data], 0.0)
        cum = np.zeros((T + 1, K))
        np.cumsum(look, axis=0, out=cum[1:])
        n_obs = np.concatenate([[0], np.cumsum(observed)])
        t = np.arange(T)
        a, b = np.maximum(t - W, lo), np.minimum(t + W + 1, hi)
        avg = (cum[b] - cum[a]) / np.maximum(n_obs[b] - n_obs[a], 1)[:, None]
        return np.argmin(np.sum(centres**2, axis=1) - 2.0 * avg, axis=1)

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator) -> Any:
        return self.mstep(self.suff_stats(data, resp, None), None)

    def frame(self, params: CategoricalParams, data: np.ndarray) -> tuple[np.ndarray, Any]:
        with np.errstate(divide="ignore"):  # a table lookup: log 0 = -inf is exact here
            table = np.log(np.asarray(params.probs, dtype=np.float64)[:, 0, :].T)
        return np.take(np.ascontiguousarray(table), data, axis=0), None

    def suff_stats(self, data: np.ndarray, weights: np.ndarray, params: Any, aux=None):
        T, C = data.shape[0], self.n_categories
        # The one-hot matrix of the symbols as a sparse (C, T) matrix: one product
        # sums the posteriors of every symbol.
        onehot = scipy.sparse.csc_matrix(
            (np.ones(T), data, np.arange(T + 1, dtype=data.dtype)), shape=(C, T)
        )

        def stats_of(w: np.ndarray) -> tuple[CountStats, np.ndarray]:
            counts = np.asarray(onehot @ w).T  # (K, C)
            nk = counts.sum(axis=1)
            return CountStats(nk=nk, counts=counts[:, None, :]), nk

        return _floored(stats_of, weights)

    def n_parameters(self, params: Any, n_features: int) -> int:
        return int(np.shape(params.probs)[0]) * (self.n_categories - 1)

    def pack(self, params: CategoricalParams) -> np.ndarray:
        return _pack_probs(params.probs)

    def unpack(self, vec: np.ndarray, like: CategoricalParams) -> CategoricalParams:
        return CategoricalParams(_unpack_probs(vec, np.shape(like.probs)))

    def to_attributes(self, params: CategoricalParams) -> dict[str, Any]:
        return {"emissionprob": np.asarray(params.probs)[:, 0, :]}

    def from_attributes(self, values: dict[str, Any], n_states: int, n_features: int) -> Any:
        probs = ProbabilityRows("emissionprob").check(
            values["emissionprob"], (n_states, self.n_categories)
        )
        return CategoricalParams(probs[:, None, :])

    def sample(self, params: Any, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return super().sample(params, states, rng).astype(np.int64)


# --------------------------------------------------------------------- Poisson
class PoissonEmission(Emission):
    """Independent counts: ``x_td | z_t = k ~ Poisson(rates[k, d])``.

    Fitted attribute: ``rates`` (K, D). The parameter-free term ``sum_d log x_td!`` of
    each row is computed once, when the data are prepared.
    """

    attributes = ("rates",)
    kind = "poisson"

    def __init__(self):
        super().__init__(Poisson())

    def _transform(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if np.isnan(X).any():  # entries missing: the distribution integrates them out
            return X, None
        return X, gammaln(X + 1.0).sum(axis=1)

    def init_features(self, data: Any) -> np.ndarray:
        return np.nan_to_num(self.dist.init_features(data[0]))

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator) -> Any:
        return self.dist.init_params(data[0], _floor_empty(resp), rng)

    def frame(self, params: PoissonParams, data: Any) -> tuple[np.ndarray, Any]:
        X, log_fact = data
        if log_fact is None:
            return np.ascontiguousarray(self.dist.log_prob(params, X)), None
        rate = np.asarray(params.rate, dtype=np.float64)
        lp = X @ np.log(np.maximum(rate, _TINY)).T
        lp -= rate.sum(axis=1)
        lp -= log_fact[:, None]
        return lp, None

    def suff_stats(self, data: Any, weights: np.ndarray, params: Any, aux=None):
        X, log_fact = data
        weights = _floor_empty(weights)
        if log_fact is None:
            return self.dist.suff_stats(X, weights, params=params)
        return CountStats(nk=_column_sums(weights), counts=weights.T @ X)

    def n_parameters(self, params: Any, n_features: int) -> int:
        return int(np.size(params.rate))

    def pack(self, params: PoissonParams) -> np.ndarray:
        return np.log(np.maximum(np.asarray(params.rate, dtype=np.float64), _TINY)).ravel()

    def unpack(self, vec: np.ndarray, like: PoissonParams) -> PoissonParams:
        with np.errstate(over="ignore"):
            rate = np.exp(np.asarray(vec, dtype=np.float64)).reshape(np.shape(like.rate))
        if not np.all(np.isfinite(rate)):
            raise ValueError("the parameter vector gives an infinite rate")
        return PoissonParams(rate)

    def to_attributes(self, params: PoissonParams) -> dict[str, Any]:
        return {"rates": np.asarray(params.rate)}

    def from_attributes(self, values: dict[str, Any], n_states: int, n_features: int) -> Any:
        rate = np.asarray(values["rates"], dtype=np.float64)
        if rate.shape != (n_states, n_features):
            raise ValueError(f"rates must have shape ({n_states}, {n_features}), got {rate.shape}")
        if not np.all(np.isfinite(rate)) or np.any(rate <= 0):
            raise ValueError("rates must be finite and positive")
        return PoissonParams(rate)


# ----------------------------------------------------------- Gaussian mixtures
class MixtureParams(NamedTuple):
    """Per-state Gaussian mixtures: ``weights`` (K, M) and K*M Gaussians (state-major)."""

    weights: np.ndarray
    gaussians: GaussianParams


class MixtureStats(NamedTuple):
    counts: np.ndarray  # (K, M) summed joint weights
    gaussians: Any  # statistics of the K*M Gaussians


class GaussianMixtureEmission(_CentredEmission):
    """A Gaussian mixture per state (hmmlearn's GMMHMM)::

        m_t | z_t = k ~ Categorical(weights[k])
        x_t | z_t = k, m_t = m ~ Normal(means[k, m], covariances[k, m])

    The K*M Gaussians are one :class:`~emkit.distributions.Gaussian` of K*M
    components; the statistics of component (k, m) are weighted by the state
    posterior of k times the within-state responsibility of m. ``tied`` covariances
    are shared by the M components of a state (as in hmmlearn), not across states:
    the M-step pools each state's full covariances by their weights.

    Fitted attributes: ``weights`` (K, M), ``means`` (K, M, D), ``covariances``
    (K, M, D, D) full, (K, M, D) diag, (K, D, D) tied, (K, M) spherical.
    """

    attributes = ("weights", "means", "covariances")
    kind = "gmm"

    def __init__(
        self, n_mix: int, covariance_type: str = "diag", reg_covar: float = 1e-6, shift=None
    ):
        self.tied = covariance_type == "tied"
        super().__init__(Gaussian("full" if self.tied else covariance_type, reg_covar))
        get_structure(covariance_type)
        self.n_mix = int(n_mix)
        self.covariance_type = covariance_type
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self.weight_rows = ProbabilityRows("weights")

    def frame(self, params: MixtureParams, data: Any) -> tuple[np.ndarray, Any]:
        K, M = np.shape(params.weights)
        lp, works = self._gauss_frame(params.gaussians, data)
        joint = lp.reshape(len(lp), K, M)
        with np.errstate(divide="ignore"):  # a zero weight: log 0 = -inf, never chosen
            joint += np.log(np.asarray(params.weights, dtype=np.float64))
        top = joint.max(axis=2)
        top[~np.isfinite(top)] = 0.0
        # Within-state responsibilities of the mixture components (suff_stats reuses
        # them), and the state log-densities log sum_m w_km N(x | k, m).
        joint -= top[:, :, None]
        np.exp(joint, out=joint)
        total = joint.sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            joint /= total[:, :, None]
            frame = np.log(total) + top
        joint[~(total > 0)] = 0.0
        return frame, (joint, works)

    def suff_stats(self, data: Any, weights: np.ndarray, params: Any, aux: Any = None):
        if aux is None:
            aux = self.frame(params, data)[1]
        resp, works = aux
        T, K, M = resp.shape
        joint = (resp * weights[:, :, None]).reshape(T, K * M)
        gauss = None if params is None else params.gaussians
        stats = _floored(lambda w: _nk(self._gauss_stats(data, w, gauss, works)), joint)
        return MixtureStats(np.asarray(stats.nk).reshape(K, M), stats)

    def mstep(self, stats: MixtureStats, params: MixtureParams | None) -> MixtureParams:
        counts = np.asarray(stats.counts)
        current = np.ones_like(counts) / counts.shape[1] if params is None else params.weights
        weights = self.weight_rows.mstep(counts, current)
        gauss = self.dist.mstep(stats.gaussians)
        if self.tied:
            gauss = self._pool(gauss, counts)
        return MixtureParams(weights, gauss)

    def _pool(self, gauss: GaussianParams, counts: np.ndarray) -> GaussianParams:
        """Each state's M full covariances averaged with their weights (tied per state).

        The tied maximum-likelihood covariance of a state is the weighted average of
        its components' full ones (each about its own mean), and ``reg_covar``, added
        to each, is added once to the average.
        """
        K, M = counts.shape
        cov = np.asarray(gauss.covariance).reshape(K, M, *np.shape(gauss.covariance)[1:])
        w = counts / np.maximum(counts.sum(axis=1, keepdims=True), _TINY)
        pooled = np.einsum("km,kmij->kij", w, cov)
        return GaussianParams(gauss.mean, np.repeat(pooled, M, axis=0))

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator):
        """Within each state's k-means cluster, k-means into ``n_mix`` components."""
        X = np.nan_to_num(data[0])
        T, K = resp.shape
        M = self.n_mix
        labels = resp.argmax(axis=1)
        sub = np.full((T, M), 1.0 / M)
        for k in range(K):
            rows = np.flatnonzero((labels == k) & (resp[:, k] > 0))
            if rows.size >= M:
                sub_labels = kmeans(X[rows], M, rng)[1]
                sub[rows] = (1.0 - _SMOOTHING) * np.eye(M)[sub_labels] + _SMOOTHING / M
        joint = (resp[:, :, None] * sub[:, None, :]).reshape(T, K * M)
        stats = self._gauss_stats(data, _floor_empty(joint), None, None)
        counts = _column_sums(joint).reshape(K, M)
        gauss = self.dist.mstep(stats)
        if self.tied:
            gauss = self._pool(gauss, counts)
        return MixtureParams(counts / counts.sum(axis=1, keepdims=True), gauss)

    def sample(self, params: MixtureParams, states: np.ndarray, rng: np.random.Generator):
        M = np.shape(params.weights)[1]
        cdf = np.cumsum(params.weights, axis=1)[states]
        mix = np.minimum((rng.random((states.size, 1)) >= cdf).sum(axis=1), M - 1)
        flat = states * M + mix
        out = None
        for c in np.unique(flat):
            rows = np.flatnonzero(flat == c)
            draws = self.dist.sample(component(params.gaussians, int(c)), rows.size, rng)
            if out is None:
                out = np.empty((states.size, draws.shape[1]))
            out[rows] = draws
        return out

    def n_parameters(self, params: MixtureParams, n_features: int) -> int:
        K, M = np.shape(params.weights)
        D = n_features
        n_cov = {
            "full": K * M * D * (D + 1) // 2,
            "diag": K * M * D,
            "spherical": K * M,
            "tied": K * D * (D + 1) // 2,
        }[self.covariance_type]
        return ProbabilityRows.n_free(params.weights) + K * M * D + n_cov

    def pack(self, params: MixtureParams) -> np.ndarray:
        gauss = params.gaussians
        cov = np.asarray(gauss.covariance)
        if self.tied:
            cov = cov[:: self.n_mix]
        st = "full" if self.tied else self.covariance_type
        return np.concatenate(
            [_pack_probs(params.weights), np.ravel(gauss.mean), _pack_covariance(cov, st)]
        )

    def unpack(self, vec: np.ndarray, like: MixtureParams) -> MixtureParams:
        K, M = np.shape(like.weights)
        KM, D = np.shape(like.gaussians.mean)
        weights = _unpack_probs(vec[: K * M], (K, M))
        means = np.asarray(vec[K * M : K * M + KM * D], dtype=np.float64).reshape(KM, D)
        cov_like = np.asarray(like.gaussians.covariance)
        if self.tied:
            cov_like = cov_like[:: self.n_mix]
        st = "full" if self.tied else self.covariance_type
        cov = _unpack_covariance(vec[K * M + KM * D :], cov_like, st)
        if self.tied:
            cov = np.repeat(cov, M, axis=0)
        _check_positive_definite(self.dist, cov)
        return MixtureParams(weights, GaussianParams(means, cov))

    def to_attributes(self, params: MixtureParams) -> dict[str, Any]:
        K, M = np.shape(params.weights)
        D = np.shape(params.gaussians.mean)[1]
        cov = np.asarray(params.gaussians.covariance)
        if self.tied:
            cov = cov[::M]
        else:
            cov = cov.reshape(K, M, *cov.shape[1:])
        return {
            "weights": np.asarray(params.weights),
            "means": np.asarray(params.gaussians.mean).reshape(K, M, D) + self.shift,
            "covariances": cov,
        }

    def from_attributes(self, values: dict[str, Any], n_states: int, n_features: int) -> Any:
        K, M, D = n_states, self.n_mix, n_features
        weights = ProbabilityRows("weights").check(values["weights"], (K, M))
        means = np.asarray(values["means"], dtype=np.float64)
        if means.shape != (K, M, D):
            raise ValueError(f"means must have shape ({K}, {M}, {D}), got {means.shape}")
        if not np.all(np.isfinite(means)):
            raise ValueError("means must be finite")
        cov = np.asarray(values["covariances"], dtype=np.float64)
        if self.tied:
            cov = get_structure("full").check(cov, K, D)
            cov = np.repeat(cov, M, axis=0)
        else:
            shape = (K, M, *get_structure(self.covariance_type).shape(1, D)[1:])
            if cov.shape != shape:
                raise ValueError(
                    f"'{self.covariance_type}' covariances must have shape {shape}, got {cov.shape}"
                )
            cov = get_structure(self.covariance_type).check(
                cov.reshape(K * M, *shape[2:]), K * M, D
            )
        gauss = GaussianParams(means.reshape(K * M, D) - self.shift, cov)
        return MixtureParams(weights, gauss)
