"""Exponential-family building blocks: K components of one distribution at a time.

Each distribution is a small strategy object without mutable state. Its parameters are
an immutable pytree (a NamedTuple whose leaves have a leading axis of K components),
and everything a mixture or an HMM emission needs is a pure function of plain arrays:

=====================================  ===========================================
method                                 what it returns
=====================================  ===========================================
``validate(X)``                        the checked (N, D) array (ValueError naming
                                       the column otherwise)
``log_prob(params, X)``                (N, K) log-densities of every row under
                                       every component
``suff_stats(X, weights, params)``     statistics weighted by ``weights`` (N, K);
                                       they add up over any split of the rows
``mstep(stats, prior=None)``           parameters maximising the weighted
                                       likelihood (plus log-prior for MAP)
``init_params(X, resp, rng)``          an M-step from given responsibilities
``sample(params_k, n, rng)``           (n, D) draws from one component
``n_parameters(K, D)``                 number of free parameters
=====================================  ===========================================

Columns are independent given the component in every distribution here (a product
over columns), so ``D`` columns cost ``D`` univariate densities. :class:`Independent`
combines distributions over groups of columns, for tables with mixed types.

``log_prob`` and ``suff_stats`` expect data that went through ``validate`` once
(checking on every E-step would cost a pass over the data each time).

Statistics are weighted sums of the natural sufficient statistics (``sum w``,
``sum w x``, ``sum w log x``, ...), so they do not depend on the parameters. Second
moments are raw sums about a fixed ``shift`` (default 0): give :class:`DiagGaussian`
or :class:`LogNormal` a shift near the data's centre when the data sit far from the
origin relative to their spread, or the variances lose precision to cancellation.

Examples
--------
>>> import numpy as np
>>> X = np.array([[0], [1], [3], [2]])
>>> resp = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
>>> dist = Poisson()
>>> params = dist.mstep(dist.suff_stats(dist.validate(X), resp))
>>> params.rate
array([[0.5],
       [2.5]])
>>> dist.log_prob(params, dist.validate(X)).shape
(4, 2)
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from emkit._pytree import tree_map
from emkit._validation import check_int, check_real

__all__ = [
    "Bernoulli",
    "BernoulliParams",
    "Categorical",
    "CategoricalParams",
    "CountStats",
    "DiagGaussian",
    "DiagGaussianParams",
    "DirichletPrior",
    "Distribution",
    "Exponential",
    "ExponentialParams",
    "Gamma",
    "GammaParams",
    "GammaPrior",
    "GammaStats",
    "Independent",
    "LogNormal",
    "LogNormalParams",
    "MomentStats",
    "Poisson",
    "PoissonParams",
    "component",
    "from_spec",
]

_LOG_2PI = float(np.log(2.0 * np.pi))
_TINY = np.finfo(np.float64).tiny

# A check of a column's values: (bad-entry mask function, what is wrong).
Check = tuple[Callable[[np.ndarray], np.ndarray], str]


# --------------------------------------------------------------------------- pytrees
class CategoricalParams(NamedTuple):
    probs: np.ndarray  # (K, D, C), sums to one over C


class BernoulliParams(NamedTuple):
    probs: np.ndarray  # (K, D), probability of a 1


class PoissonParams(NamedTuple):
    rate: np.ndarray  # (K, D)


class ExponentialParams(NamedTuple):
    rate: np.ndarray  # (K, D)


class GammaParams(NamedTuple):
    shape: np.ndarray  # (K, D)
    rate: np.ndarray  # (K, D)


class LogNormalParams(NamedTuple):
    mu: np.ndarray  # (K, D), mean of log x
    sigma: np.ndarray  # (K, D), standard deviation of log x


class DiagGaussianParams(NamedTuple):
    mean: np.ndarray  # (K, D)
    var: np.ndarray  # (K, D)


class CountStats(NamedTuple):
    """Weighted counts: ``nk`` (K,) total weight, ``counts`` the weighted sums of ``x``."""

    nk: np.ndarray
    counts: np.ndarray  # (K, D) or (K, D, C) for one-hot categories


class GammaStats(NamedTuple):
    nk: np.ndarray  # (K,)
    sum_x: np.ndarray  # (K, D)
    sum_log_x: np.ndarray  # (K, D)


class MomentStats(NamedTuple):
    """``sum w``, ``sum w t`` and ``sum w t**2`` of ``t = x`` (Gaussian) or ``log x``."""

    nk: np.ndarray  # (K,)
    s1: np.ndarray  # (K, D)
    s2: np.ndarray  # (K, D)


class DirichletPrior(NamedTuple):
    """Dirichlet pseudo-counts for category probabilities (MAP-EM).

    ``alpha`` is a scalar or broadcasts to the category axis (``(C,)`` or ``(D, C)``
    for :class:`Categorical`; ``(2,)`` = (for 0, for 1) for :class:`Bernoulli`).
    ``alpha >= 1``; ``alpha = 1`` is the flat prior (maximum likelihood).
    """

    alpha: Any = 1.0


class GammaPrior(NamedTuple):
    """Gamma(``a0``, rate ``b0``) prior on a Poisson or Exponential rate (MAP-EM).

    ``a0 >= 1`` and ``b0 >= 0``; ``a0 = 1, b0 = 0`` is the flat prior.
    """

    a0: float = 1.0
    b0: float = 0.0


def _column(params: Any, d: int) -> Any:
    """Parameters of column ``d`` only (every leaf sliced on its column axis)."""
    return tree_map(lambda leaf: np.asarray(leaf)[:, d : d + 1], params)


def component(params: Any, k: int) -> Any:
    """The parameters of component ``k`` (every leaf indexed on its leading axis)."""
    return tree_map(lambda leaf: np.asarray(leaf)[k], params)


# ------------------------------------------------------------------------- helpers
def _non_integer(x: np.ndarray) -> np.ndarray:
    return x != np.round(x)


_NON_INTEGER: Check = (_non_integer, "non-integer values")
_NON_POSITIVE: Check = (lambda x: x <= 0, "non-positive values (they must be > 0)")


def _standardise(X: np.ndarray) -> np.ndarray:
    """Columns at zero mean and unit variance (constant columns: zero; NaN: the mean)."""
    X = np.asarray(X, dtype=np.float64)
    mean = np.nanmean(X, axis=0)
    sd = np.nanstd(X, axis=0)
    Z = (X - mean) / np.where(sd > 0, sd, 1.0)
    return np.nan_to_num(Z, nan=0.0)


def _check_weights(weights: Any, n_samples: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != n_samples:
        raise ValueError(
            f"weights must have shape (n_samples, n_components) = ({n_samples}, K), got {w.shape}"
        )
    return w


def _divide_by_weight(num: np.ndarray, den: np.ndarray, what: str) -> np.ndarray:
    """``num / den`` with ``den`` (K, ...); an empty component is an error, never a NaN."""
    den = np.asarray(den, dtype=np.float64)
    empty = ~(den > 0)
    if empty.any():
        comps = sorted({int(k) for k in np.argwhere(empty)[:, 0]})
        raise ValueError(
            f"component(s) {comps} have zero total weight, so their {what} is undefined; "
            "re-seed them, decrease n_components, or use a prior"
        )
    return num / den


def _safe_log(p: np.ndarray) -> np.ndarray:
    # log(0) = -inf would give 0 * -inf = NaN inside a matrix product; a probability of
    # exactly zero costs log(tiny) ~ -708 per observation instead.
    return np.log(np.maximum(p, _TINY))


def _check_prior(prior: Any, kind: type, name: str) -> Any:
    if prior is None:
        return kind()
    if not isinstance(prior, kind):
        raise TypeError(f"{name} takes a {kind.__name__} prior, got {type(prior).__name__}")
    return prior


def _dirichlet_alpha(prior: Any, name: str) -> np.ndarray:
    alpha = np.asarray(_check_prior(prior, DirichletPrior, name).alpha, dtype=np.float64)
    if not np.all(np.isfinite(alpha)) or np.any(alpha < 1):
        raise ValueError(f"{name}: Dirichlet pseudo-counts alpha must be finite and >= 1")
    return alpha


def _gamma_prior(prior: Any, name: str) -> tuple[float, float]:
    p = _check_prior(prior, GammaPrior, name)
    a0, b0 = float(p.a0), float(p.b0)
    if not (np.isfinite(a0) and np.isfinite(b0) and a0 >= 1 and b0 >= 0):
        raise ValueError(f"{name}: Gamma prior needs a0 >= 1 and b0 >= 0, got {a0}, {b0}")
    return a0, b0


# ---------------------------------------------------------------------------- base
class Distribution(abc.ABC):
    """K components of one distribution over D columns (independent given the component).

    Attributes
    ----------
    name : str
        Used in error messages.
    generalized : bool
        True if ``mstep`` only improves the expected log-likelihood (GEM) instead of
        maximising it.
    """

    name: str = "distribution"
    generalized: bool = False

    # ---------------------------------------------------------------- validation
    def validate(self, X: Any, *, columns: Sequence[Any] | None = None) -> np.ndarray:
        """Check that ``X`` lies in the support; return it as a float64 (N, D) array.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        columns : sequence, optional
            Labels of the columns for error messages (default ``0 .. D-1``).

        Raises
        ------
        ValueError
            Naming the first column with a value outside the support, or NaN.
        """
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.name}: X could not be read as numbers: {exc}") from None
        if arr.ndim != 2:
            raise ValueError(
                f"{self.name}: X must be 2-D (n_samples, n_features), got shape {arr.shape}; "
                "reshape a single column with X.reshape(-1, 1)"
            )
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"{self.name}: X is empty (shape {arr.shape})")
        labels = list(range(arr.shape[1])) if columns is None else list(columns)
        if len(labels) != arr.shape[1]:
            raise ValueError(f"{self.name}: {len(labels)} labels for {arr.shape[1]} columns")
        checks: list[Check] = [
            (np.isinf, "infinite values"),
            *self._support(),
        ]
        for j, label in enumerate(labels):
            col = arr[:, j]
            observed = ~np.isnan(col)  # NaN marks a missing value
            for is_bad, what in checks:
                with np.errstate(invalid="ignore"):
                    bad = np.flatnonzero(is_bad(col) & observed)
                if bad.size:
                    raise ValueError(
                        f"{self.name}: column {label} has {what}, e.g. {col[bad[0]]!r} "
                        f"in row {bad[0]}"
                    )
        return arr

    def _support(self) -> list[Check]:
        """Checks of one column's values (beyond finiteness)."""
        return []

    # ---------------------------------------------------------------- the contract
    #: a value inside the support that stands in for a missing one while computing
    _fill_value: float = 0.0

    def log_prob(self, params: Any, X: np.ndarray) -> np.ndarray:
        """Log-density of each row's observed values under each component.

        Parameters
        ----------
        params : pytree
            Leaves with a leading axis of K components.
        X : ndarray of shape (n_samples, n_features)
            Validated data; NaN marks a missing value, which is integrated out (the
            columns are independent given the component, so it drops from the sum).

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        missing = np.isnan(X)
        if not missing.any():
            return self._log_prob(params, X)
        out = self._log_prob(params, np.where(missing, self._fill_value, X))
        # Take out the stand-in value's term, column by column.
        stand_in = np.full((1, 1), self._fill_value)
        terms = np.stack(
            [self._log_prob(_column(params, d), stand_in)[0] for d in range(X.shape[1])]
        )
        return out - missing @ terms

    def suff_stats(self, X: np.ndarray, weights: np.ndarray, params: Any = None) -> Any:
        """Sufficient statistics weighted per component.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated data; NaN marks a missing value.
        weights : array-like of shape (n_samples, n_components)
            Non-negative weight of each row for each component (responsibilities).
        params : pytree, optional
            The current parameters: the statistics of a missing value are their
            expectation under the component (exact EM), so they are needed when ``X``
            has NaN.

        Returns
        -------
        pytree
            Weighted sums over rows: the statistics of two parts of a data set add up
            (:func:`emkit._pytree.tree_add`) to those of the whole.
        """
        missing = np.isnan(X)
        if not missing.any():
            return self._suff_stats(X, weights)
        if params is None:
            raise ValueError(
                f"{self.name}: X has missing values (NaN); their expected statistics "
                "depend on the parameters: pass params"
            )
        w = _check_weights(weights, X.shape[0])
        K, D = w.shape[1], X.shape[1]
        stats = self._suff_stats(np.where(missing, self._fill_value, X), w)
        stand_in = self._suff_stats(np.full((1, D), self._fill_value), np.ones((1, K)))
        expected = self._expected_stats(params)
        weight_missing = w.T @ missing  # (K, D): weight of the missing entries per column

        def fix(leaf, e, f):
            scale = weight_missing.reshape(weight_missing.shape + (1,) * (np.ndim(leaf) - 2))
            return leaf + scale * (e - f)

        return stats._replace(
            **{
                name: fix(getattr(stats, name), getattr(expected, name), getattr(stand_in, name))
                for name in stats._fields
                if name != "nk"
            }
        )

    def _log_prob(self, params: Any, X: np.ndarray) -> np.ndarray:
        """Log-densities (N, K) of complete rows."""
        raise NotImplementedError

    def _suff_stats(self, X: np.ndarray, weights: Any) -> Any:
        """Statistics of complete rows (a NamedTuple whose first field is ``nk``)."""
        raise NotImplementedError

    def _expected_stats(self, params: Any) -> Any:
        """Per component and column, the expected statistics of one value (same
        NamedTuple as the statistics, leaves (K, D, ...); ``nk`` is not used)."""
        raise NotImplementedError(f"{self.name} does not support missing values")

    @abc.abstractmethod
    def mstep(self, stats: Any, prior: Any = None) -> Any:
        """Parameters that maximise the weighted log-likelihood (plus log-prior).

        Parameters
        ----------
        stats : pytree
            From :meth:`suff_stats`, possibly summed over batches.
        prior : NamedTuple, optional
            Conjugate-prior pseudo-counts for MAP estimation, where supported.

        Raises
        ------
        ValueError
            If a component has zero total weight and its parameters are undefined.
        """

    @abc.abstractmethod
    def sample(self, params_k: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws (n, D) from one component (leaves without the K axis)."""

    @abc.abstractmethod
    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free parameters of K components over D columns."""

    def init_params(self, X: Any, resp: Any, rng: np.random.Generator | None = None) -> Any:
        """Starting parameters: an M-step from responsibilities ``resp`` (N, K).

        ``rng`` is accepted for the common signature; the step is deterministic.
        """
        X = self.validate(X)
        missing = np.isnan(X)
        if not missing.any():
            return self.mstep(self.suff_stats(X, resp))
        # With missing values: a first M-step with stand-ins, then one with their
        # expected statistics under it.
        first = self.mstep(self._suff_stats(np.where(missing, self._fill_value, X), resp))
        return self.mstep(self.suff_stats(X, resp, first))

    def log_prior(self, params: Any, prior: Any = None) -> float:
        """Log-density of the prior at ``params``, up to a constant (0 without a prior)."""
        return 0.0

    # ---------------------------------------------------------------- initialisation
    def init_features(self, X: np.ndarray) -> np.ndarray:
        """Features on which k-means++ starts a mixture: here the standardised columns.

        Distributions override this with a transform under which Euclidean distance
        makes sense (counts: square roots; positive values: logs; categories: one-hot).
        """
        return _standardise(X)

    # ---------------------------------------------------------------- persistence
    #: the NamedTuple class of the parameters
    params_type: type | None = None

    def get_spec(self) -> dict[str, Any]:
        """A JSON-serialisable description that :func:`from_spec` turns back into ``self``."""
        spec: dict[str, Any] = {"type": type(self).__name__}
        for name, par in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and par.kind not in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
                value = getattr(self, name)
                spec[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return spec

    def params_to_dict(self, params: Any) -> dict[str, np.ndarray]:
        """The parameter pytree as ``{name: array}`` (for saving)."""
        return {name: np.asarray(value) for name, value in params._asdict().items()}

    def params_from_dict(self, values: Mapping[str, Any]) -> Any:
        """Inverse of :meth:`params_to_dict`."""
        fields = self.params_type._fields
        if set(values) != set(fields):
            raise ValueError(f"{self.name} parameters are {list(fields)}, got {sorted(values)}")
        return self.params_type(**{f: np.asarray(values[f], dtype=np.float64) for f in fields})

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -------------------------------------------------------------------- discrete
class Categorical(Distribution):
    """Independent categorical columns with values in ``0 .. n_categories - 1``.

    Generative model: ``x_d | z = k ~ Categorical(probs[k, d])`` for each column ``d``.

    Parameters
    ----------
    n_categories : int
        Number of categories ``C`` (the same for every column; unused ones get zero
        probability).
    """

    name = "Categorical"
    params_type = CategoricalParams

    def __init__(self, n_categories: int):
        self.n_categories = check_int(n_categories, "n_categories", low=1)

    def __repr__(self) -> str:
        return f"Categorical(n_categories={self.n_categories})"

    def _support(self) -> list[Check]:
        C = self.n_categories
        return [
            _NON_INTEGER,
            (lambda x: (x < 0) | (x >= C), f"categories out of range [0, {C})"),
        ]

    def _one_hot(self, X: np.ndarray) -> np.ndarray:
        N, D = X.shape
        out = np.zeros((N, D, self.n_categories))
        missing = np.isnan(X)
        np.put_along_axis(out, np.where(missing, 0, X).astype(np.intp)[:, :, None], 1.0, axis=2)
        out[missing] = 0.0  # a missing category is none of them (init features only)
        return out.reshape(N, D * self.n_categories)

    def _log_prob(self, params: CategoricalParams, X: np.ndarray) -> np.ndarray:
        probs = np.asarray(params.probs)
        D = probs.shape[1]
        with np.errstate(divide="ignore"):
            logp = np.log(probs)  # (K, D, C); a table lookup, so -inf is safe here
        # logp[:, d, x_nd] for every row and column: (K, N, D), summed over columns.
        picked = logp[:, np.arange(D)[None, :], X.astype(np.intp)]
        return picked.sum(axis=2).T

    def _suff_stats(self, X: np.ndarray, weights: Any) -> CountStats:
        w = _check_weights(weights, X.shape[0])
        counts = (w.T @ self._one_hot(X)).reshape(w.shape[1], X.shape[1], self.n_categories)
        return CountStats(nk=w.sum(axis=0), counts=counts)

    def _expected_stats(self, params: CategoricalParams) -> CountStats:
        probs = np.asarray(params.probs)
        return CountStats(nk=np.ones(len(probs)), counts=probs)

    def mstep(self, stats: CountStats, prior: DirichletPrior | None = None) -> CategoricalParams:
        alpha = _dirichlet_alpha(prior, self.name)
        num = np.asarray(stats.counts) + (alpha - 1.0)
        return CategoricalParams(
            probs=_divide_by_weight(num, num.sum(axis=2, keepdims=True), "probs")
        )

    def log_prior(self, params: CategoricalParams, prior: DirichletPrior | None = None) -> float:
        alpha = _dirichlet_alpha(prior, self.name)
        return float(np.sum((alpha - 1.0) * _safe_log(np.asarray(params.probs))))

    def sample(self, params_k: CategoricalParams, n: int, rng: np.random.Generator) -> np.ndarray:
        cdf = np.cumsum(np.asarray(params_k.probs), axis=-1)  # (D, C)
        u = rng.random((n, cdf.shape[0], 1))
        # Inverse CDF per column; the clip guards against cdf[-1] < 1 by round-off.
        return np.minimum((u >= cdf).sum(axis=2), self.n_categories - 1).astype(np.int64)

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return self._one_hot(X).reshape(len(X), -1)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (self.n_categories - 1)


class Bernoulli(Distribution):
    """Independent binary columns: ``x_d | z = k ~ Bernoulli(probs[k, d])``."""

    name = "Bernoulli"
    params_type = BernoulliParams

    def _support(self) -> list[Check]:
        return [(lambda x: (x != 0) & (x != 1), "values other than 0 and 1")]

    def _log_prob(self, params: BernoulliParams, X: np.ndarray) -> np.ndarray:
        p = np.asarray(params.probs)
        log1 = _safe_log(p)
        log0 = _safe_log(1.0 - p)
        return X @ (log1 - log0).T + log0.sum(axis=1)

    def _suff_stats(self, X: np.ndarray, weights: Any) -> CountStats:
        w = _check_weights(weights, X.shape[0])
        return CountStats(nk=w.sum(axis=0), counts=w.T @ X)

    def _expected_stats(self, params: BernoulliParams) -> CountStats:
        probs = np.asarray(params.probs)
        return CountStats(nk=np.ones(len(probs)), counts=probs)

    def mstep(self, stats: CountStats, prior: DirichletPrior | None = None) -> BernoulliParams:
        alpha = np.broadcast_to(_dirichlet_alpha(prior, self.name), (2,))
        nk = np.asarray(stats.nk)[:, None]
        num = np.asarray(stats.counts) + (alpha[1] - 1.0)
        den = nk + (alpha[0] + alpha[1] - 2.0)
        return BernoulliParams(
            probs=_divide_by_weight(num, np.broadcast_to(den, num.shape), "probs")
        )

    def log_prior(self, params: BernoulliParams, prior: DirichletPrior | None = None) -> float:
        alpha = np.broadcast_to(_dirichlet_alpha(prior, self.name), (2,))
        p = np.asarray(params.probs)
        return float(np.sum((alpha[1] - 1) * _safe_log(p) + (alpha[0] - 1) * _safe_log(1 - p)))

    def sample(self, params_k: BernoulliParams, n: int, rng: np.random.Generator) -> np.ndarray:
        p = np.asarray(params_k.probs)
        return (rng.random((n, p.shape[0])) < p).astype(np.float64)

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.asarray(X, dtype=np.float64), nan=0.5)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features


class Poisson(Distribution):
    """Independent count columns: ``x_d | z = k ~ Poisson(rate[k, d])``."""

    name = "Poisson"
    params_type = PoissonParams

    def _support(self) -> list[Check]:
        return [(lambda x: x < 0, "negative counts"), _NON_INTEGER]

    def _log_prob(self, params: PoissonParams, X: np.ndarray) -> np.ndarray:
        rate = np.asarray(params.rate)
        return X @ _safe_log(rate).T - rate.sum(axis=1) - gammaln(X + 1.0).sum(axis=1)[:, None]

    def _suff_stats(self, X: np.ndarray, weights: Any) -> CountStats:
        w = _check_weights(weights, X.shape[0])
        return CountStats(nk=w.sum(axis=0), counts=w.T @ X)

    def _expected_stats(self, params: PoissonParams) -> CountStats:
        rate = np.asarray(params.rate)
        return CountStats(nk=np.ones(len(rate)), counts=rate)

    def mstep(self, stats: CountStats, prior: GammaPrior | None = None) -> PoissonParams:
        a0, b0 = _gamma_prior(prior, self.name)
        num = np.asarray(stats.counts) + (a0 - 1.0)
        den = np.broadcast_to((np.asarray(stats.nk) + b0)[:, None], num.shape)
        return PoissonParams(rate=_divide_by_weight(num, den, "rate"))

    def log_prior(self, params: PoissonParams, prior: GammaPrior | None = None) -> float:
        a0, b0 = _gamma_prior(prior, self.name)
        rate = np.asarray(params.rate)
        return float(np.sum((a0 - 1.0) * _safe_log(rate) - b0 * rate))

    def sample(self, params_k: PoissonParams, n: int, rng: np.random.Generator) -> np.ndarray:
        rate = np.asarray(params_k.rate)
        return rng.poisson(rate, size=(n, rate.shape[0])).astype(np.float64)

    def init_features(self, X: np.ndarray) -> np.ndarray:
        # Anscombe's transform makes Poisson counts' variance nearly constant.
        return _standardise(np.sqrt(X + 0.375))

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features


# ------------------------------------------------------------------ continuous
class Exponential(Distribution):
    """Independent positive columns: ``x_d | z = k ~ Exponential(rate[k, d])``."""

    name = "Exponential"
    params_type = ExponentialParams
    _fill_value = 1.0

    def _support(self) -> list[Check]:
        return [_NON_POSITIVE]

    def _log_prob(self, params: ExponentialParams, X: np.ndarray) -> np.ndarray:
        rate = np.asarray(params.rate)
        return np.log(rate).sum(axis=1) - X @ rate.T

    def _suff_stats(self, X: np.ndarray, weights: Any) -> CountStats:
        w = _check_weights(weights, X.shape[0])
        return CountStats(nk=w.sum(axis=0), counts=w.T @ X)

    def _expected_stats(self, params: ExponentialParams) -> CountStats:
        rate = np.asarray(params.rate)
        return CountStats(nk=np.ones(len(rate)), counts=1.0 / rate)

    def mstep(self, stats: CountStats, prior: GammaPrior | None = None) -> ExponentialParams:
        a0, b0 = _gamma_prior(prior, self.name)
        sum_x = np.asarray(stats.counts)
        num = np.broadcast_to((np.asarray(stats.nk) + a0 - 1.0)[:, None], sum_x.shape)
        return ExponentialParams(rate=_divide_by_weight(num, sum_x + b0, "rate"))

    def log_prior(self, params: ExponentialParams, prior: GammaPrior | None = None) -> float:
        a0, b0 = _gamma_prior(prior, self.name)
        rate = np.asarray(params.rate)
        return float(np.sum((a0 - 1.0) * _safe_log(rate) - b0 * rate))

    def sample(self, params_k: ExponentialParams, n: int, rng: np.random.Generator) -> np.ndarray:
        rate = np.asarray(params_k.rate)
        return rng.exponential(1.0 / rate, size=(n, rate.shape[0]))

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return _standardise(np.log(X))

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features


def gamma_shape_mle(log_mean_minus_mean_log: np.ndarray, *, tol: float = 1e-12) -> np.ndarray:
    """Solve ``log(a) - digamma(a) = s`` for the Gamma shape ``a`` (elementwise, ``s > 0``).

    Starts from Minka's (2002) closed-form approximation and applies his generalized
    Newton iteration on ``1/a`` until the relative change is below ``tol`` (usually
    three or four steps), so the result is the maximum-likelihood shape to round-off.

    Examples
    --------
    >>> from scipy.special import digamma
    >>> a = gamma_shape_mle(np.array([0.1]))
    >>> float(np.log(a[0]) - digamma(a[0]))  # doctest: +ELLIPSIS
    0.1000000...
    """
    # s = 0 means every x is equal: the shape is infinite; a huge one is the closest.
    s = np.maximum(np.asarray(log_mean_minus_mean_log, dtype=np.float64), 1e-12)
    a = (3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    for _ in range(50):
        g = np.log(a) - digamma(a) - s
        inv = 1.0 / a + g / (a * a * (1.0 / a - polygamma(1, a)))
        a_new = 1.0 / inv
        done = np.all(np.abs(a_new - a) <= tol * a_new)
        a = a_new
        if done:
            break
    return a


class Gamma(Distribution):
    """Independent positive columns: ``x_d | z = k ~ Gamma(shape[k, d], rate[k, d])``.

    The shape has no closed-form M-step: it is found by Newton's method on the digamma
    equation (:func:`gamma_shape_mle`) to convergence, so the step is a full
    maximisation (``generalized = False``). No prior is supported.
    """

    name = "Gamma"
    params_type = GammaParams
    _fill_value = 1.0

    def _support(self) -> list[Check]:
        return [_NON_POSITIVE]

    def _log_prob(self, params: GammaParams, X: np.ndarray) -> np.ndarray:
        a, b = np.asarray(params.shape), np.asarray(params.rate)
        const = (a * np.log(b) - gammaln(a)).sum(axis=1)
        return np.log(X) @ (a - 1.0).T - X @ b.T + const

    def _suff_stats(self, X: np.ndarray, weights: Any) -> GammaStats:
        w = _check_weights(weights, X.shape[0])
        return GammaStats(nk=w.sum(axis=0), sum_x=w.T @ X, sum_log_x=w.T @ np.log(X))

    def _expected_stats(self, params: GammaParams) -> GammaStats:
        shape, rate = np.asarray(params.shape), np.asarray(params.rate)
        return GammaStats(
            nk=np.ones(len(shape)), sum_x=shape / rate, sum_log_x=digamma(shape) - np.log(rate)
        )

    def mstep(self, stats: GammaStats, prior: None = None) -> GammaParams:
        if prior is not None:
            raise TypeError("Gamma has no conjugate prior here; pass prior=None")
        nk = np.broadcast_to(np.asarray(stats.nk)[:, None], np.shape(stats.sum_x))
        mean = _divide_by_weight(np.asarray(stats.sum_x), nk, "shape and rate")
        mean_log = np.asarray(stats.sum_log_x) / nk
        shape = gamma_shape_mle(np.log(mean) - mean_log)
        return GammaParams(shape=shape, rate=shape / mean)

    def sample(self, params_k: GammaParams, n: int, rng: np.random.Generator) -> np.ndarray:
        a, b = np.asarray(params_k.shape), np.asarray(params_k.rate)
        return rng.gamma(a, 1.0 / b, size=(n, a.shape[0]))

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return _standardise(np.log(X))

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return 2 * n_components * n_features


class _NormalMoments(Distribution):
    """Shared code of the Gaussian of ``t(x)``: ``t = x`` or ``t = log x``.

    The statistics are moments of ``t - shift``; a fixed ``shift`` near the data (their
    mean, say) keeps the variances ``E[t^2] - E[t]^2`` free of cancellation, and the
    statistics stay additive because every batch uses the same shift.
    """

    def __init__(self, reg_var: float = 1e-6, shift: Any = 0.0):
        self.reg_var = check_real(reg_var, "reg_var", low=0.0)
        self.shift = np.asarray(shift, dtype=np.float64)
        if self.shift.ndim > 1 or not np.all(np.isfinite(self.shift)):
            raise ValueError("shift must be a finite scalar or a vector of one value per column")

    def __repr__(self) -> str:
        shift = "" if not self.shift.any() else f", shift={self.shift.tolist()}"
        return f"{type(self).__name__}(reg_var={self.reg_var}{shift})"

    @staticmethod
    def _transform(X: np.ndarray) -> np.ndarray:
        return X

    def _normal_log_prob(self, T: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        # Residuals against each component's mean (not expanded raw moments): accurate
        # for data far from the origin, at the cost of an (N, K, D) temporary.
        z2 = (T[:, None, :] - mean[None]) ** 2 / var[None]
        return -0.5 * (z2.sum(axis=2) + np.log(var).sum(axis=1) + T.shape[1] * _LOG_2PI)

    def _suff_stats(self, X: np.ndarray, weights: Any) -> MomentStats:
        w = _check_weights(weights, X.shape[0])
        T = self._transform(X) - self.shift
        return MomentStats(nk=w.sum(axis=0), s1=w.T @ T, s2=w.T @ (T * T))

    def _moments(self, mean: np.ndarray, var: np.ndarray) -> MomentStats:
        """Expected ``t - shift`` and its square under Normal(mean, var) per column."""
        centred = mean - self.shift
        return MomentStats(nk=np.ones(len(mean)), s1=centred, s2=var + centred * centred)

    def _mean_var(self, stats: MomentStats, prior: None) -> tuple[np.ndarray, np.ndarray]:
        if prior is not None:
            raise TypeError(f"{self.name} has no conjugate prior here; pass prior=None")
        s1 = np.asarray(stats.s1)
        nk = np.broadcast_to(np.asarray(stats.nk)[:, None], s1.shape)
        mean = _divide_by_weight(s1, nk, "mean and variance")
        var = np.maximum(np.asarray(stats.s2) / nk - mean * mean, 0.0) + self.reg_var
        if np.any(var <= 0):
            raise ValueError(
                f"{self.name}: a component has zero variance: its points are all equal "
                "(set reg_var > 0), or the data sit far from the origin relative to their "
                "spread (set shift near their centre)"
            )
        return mean + self.shift, var

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return _standardise(self._transform(X))

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return 2 * n_components * n_features


class DiagGaussian(_NormalMoments):
    """Independent real columns: ``x_d | z = k ~ Normal(mean[k, d], var[k, d])``.

    Parameters
    ----------
    reg_var : float, default=1e-6
        Added to every variance in the M-step (keeps a one-point component finite).
    shift : float or ndarray of shape (n_features,), default=0
        Statistics are moments of ``x`` minus ``shift``: set it near the data's centre
        when they sit far from the origin relative to their spread.
    """

    name = "DiagGaussian"
    params_type = DiagGaussianParams

    def _log_prob(self, params: DiagGaussianParams, X: np.ndarray) -> np.ndarray:
        return self._normal_log_prob(X, np.asarray(params.mean), np.asarray(params.var))

    def _expected_stats(self, params: DiagGaussianParams) -> MomentStats:
        return self._moments(np.asarray(params.mean), np.asarray(params.var))

    def mstep(self, stats: MomentStats, prior: None = None) -> DiagGaussianParams:
        mean, var = self._mean_var(stats, prior)
        return DiagGaussianParams(mean=mean, var=var)

    def sample(self, params_k: DiagGaussianParams, n: int, rng: np.random.Generator) -> np.ndarray:
        mean, var = np.asarray(params_k.mean), np.asarray(params_k.var)
        return mean + np.sqrt(var) * rng.standard_normal((n, mean.shape[0]))


class LogNormal(_NormalMoments):
    """Independent positive columns: ``log x_d | z = k ~ Normal(mu[k, d], sigma[k, d]**2)``.

    Parameters
    ----------
    reg_var : float, default=1e-6
        Added to every variance in the M-step (keeps a one-point component finite).
    shift : float or ndarray of shape (n_features,), default=0
        Statistics are moments of ``log x`` minus ``shift``: set it near the data's centre
        when they sit far from the origin relative to their spread.
    """

    name = "LogNormal"
    params_type = LogNormalParams
    _fill_value = 1.0

    def _support(self) -> list[Check]:
        return [_NON_POSITIVE]

    @staticmethod
    def _transform(X: np.ndarray) -> np.ndarray:
        return np.log(X)

    def _log_prob(self, params: LogNormalParams, X: np.ndarray) -> np.ndarray:
        T = np.log(X)
        sigma = np.asarray(params.sigma)
        normal = self._normal_log_prob(T, np.asarray(params.mu), sigma * sigma)
        return normal - T.sum(axis=1)[:, None]  # the Jacobian of x -> log x

    def _expected_stats(self, params: LogNormalParams) -> MomentStats:
        return self._moments(np.asarray(params.mu), np.asarray(params.sigma) ** 2)

    def mstep(self, stats: MomentStats, prior: None = None) -> LogNormalParams:
        mean, var = self._mean_var(stats, prior)
        return LogNormalParams(mu=mean, sigma=np.sqrt(var))

    def sample(self, params_k: LogNormalParams, n: int, rng: np.random.Generator) -> np.ndarray:
        mu, sigma = np.asarray(params_k.mu), np.asarray(params_k.sigma)
        return np.exp(mu + sigma * rng.standard_normal((n, mu.shape[0])))


# -------------------------------------------------------------------- products
class Independent(Distribution):
    """A product of distributions over disjoint groups of columns (mixed-type tables).

    Generative model: given the component, each group of columns is drawn from its own
    distribution, independently of the others. ``log_prob`` sums the parts; parameters,
    statistics and priors are tuples of the parts', in the order given.

    Parameters
    ----------
    parts : mapping or iterable of pairs
        ``{columns: distribution}`` or ``[(columns, distribution), ...]``; ``columns``
        is a column index or a sequence of indices. Together the groups must cover the
        columns ``0 .. D-1`` exactly once.

    Examples
    --------
    >>> dist = Independent({(0, 1): DiagGaussian(), 2: Poisson(), (3,): Categorical(3)})
    >>> X = dist.validate([[0.5, 1.0, 2, 0], [1.5, -1.0, 0, 2], [0.0, 0.0, 1, 1]])
    >>> resp = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    >>> params = dist.init_params(X, resp)
    >>> dist.log_prob(params, X).shape
    (3, 2)
    >>> dist.n_parameters(2, 4)
    14
    """

    name = "Independent"

    def __init__(
        self,
        parts: Mapping[Any, Distribution] | Iterable[tuple[Any, Distribution]],
    ):
        items = list(parts.items()) if isinstance(parts, Mapping) else list(parts)
        if not items:
            raise ValueError("Independent needs at least one (columns, distribution) part")
        groups: list[np.ndarray] = []
        dists: list[Distribution] = []
        for columns, dist in items:
            if not isinstance(dist, Distribution):
                raise TypeError(
                    f"columns {columns!r} map to {type(dist).__name__}, not a Distribution"
                )
            cols = np.atleast_1d(np.asarray(columns))
            if cols.ndim != 1 or cols.size == 0 or cols.dtype.kind not in "iu":
                raise TypeError(f"columns must be integer indices, got {columns!r}")
            groups.append(cols.astype(np.intp))
            dists.append(dist)
        every = np.concatenate(groups)
        if not np.array_equal(np.sort(every), np.arange(every.size)):
            raise ValueError(
                "the column groups must cover columns 0 .. D-1 exactly once, got "
                f"{[g.tolist() for g in groups]}"
            )
        self.columns: tuple[np.ndarray, ...] = tuple(groups)
        self.parts: tuple[Distribution, ...] = tuple(dists)
        self.n_features = int(every.size)
        self.generalized = any(d.generalized for d in dists)

    def __repr__(self) -> str:
        inner = ", ".join(f"{c.tolist()}: {d!r}" for c, d in zip(self.columns, self.parts))
        return f"Independent({{{inner}}})"

    def validate(self, X: Any, *, columns: Sequence[Any] | None = None) -> np.ndarray:
        arr = Distribution.validate(self, X, columns=columns)
        if arr.shape[1] != self.n_features:
            raise ValueError(
                f"Independent: X has {arr.shape[1]} columns, the parts cover {self.n_features}"
            )
        labels = np.arange(self.n_features) if columns is None else np.asarray(columns)
        for cols, dist in zip(self.columns, self.parts):
            dist.validate(arr[:, cols], columns=labels[cols].tolist())
        return arr

    def log_prob(self, params: tuple, X: np.ndarray) -> np.ndarray:
        return sum(
            dist.log_prob(p, X[:, cols]) for cols, dist, p in zip(self.columns, self.parts, params)
        )

    def suff_stats(self, X: np.ndarray, weights: Any, params: Any = None) -> tuple:
        w = _check_weights(weights, X.shape[0])
        parts = zip(self.columns, self.parts, params or (None,) * len(self.parts))
        return tuple(dist.suff_stats(X[:, cols], w, p) for cols, dist, p in parts)

    def _priors(self, prior: Sequence[Any] | None) -> Sequence[Any]:
        if prior is None:
            return (None,) * len(self.parts)
        if len(prior) != len(self.parts):
            raise ValueError(f"Independent: {len(prior)} priors for {len(self.parts)} parts")
        return prior

    def mstep(self, stats: tuple, prior: Sequence[Any] | None = None) -> tuple:
        return tuple(dist.mstep(s, p) for dist, s, p in zip(self.parts, stats, self._priors(prior)))

    def log_prior(self, params: tuple, prior: Sequence[Any] | None = None) -> float:
        return float(
            sum(
                dist.log_prior(theta, p)
                for dist, theta, p in zip(self.parts, params, self._priors(prior))
            )
        )

    def sample(self, params_k: tuple, n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((n, self.n_features))
        for cols, dist, p in zip(self.columns, self.parts, params_k):
            out[:, cols] = dist.sample(p, n, rng)
        return out

    def init_params(self, X: Any, resp: Any, rng: np.random.Generator | None = None) -> tuple:
        X = self.validate(X)
        return tuple(d.init_params(X[:, c], resp, rng) for c, d in zip(self.columns, self.parts))

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return np.hstack([d.init_features(X[:, c]) for c, d in zip(self.columns, self.parts)])

    def get_spec(self) -> dict[str, Any]:
        return {
            "type": "Independent",
            "parts": [[c.tolist(), d.get_spec()] for c, d in zip(self.columns, self.parts)],
        }

    def params_to_dict(self, params: tuple) -> dict[str, np.ndarray]:
        return {
            f"{i}.{key}": value
            for i, (d, p) in enumerate(zip(self.parts, params))
            for key, value in d.params_to_dict(p).items()
        }

    def params_from_dict(self, values: Mapping[str, Any]) -> tuple:
        out = []
        for i, d in enumerate(self.parts):
            prefix = f"{i}."
            out.append(
                d.params_from_dict(
                    {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
                )
            )
        return tuple(out)

    def n_parameters(self, n_components: int, n_features: int | None = None) -> int:
        return sum(
            dist.n_parameters(n_components, cols.size)
            for cols, dist in zip(self.columns, self.parts)
        )


def _subclasses(cls: type) -> dict[str, type]:
    out = {}
    for sub in cls.__subclasses__():
        out[sub.__name__] = sub
        out.update(_subclasses(sub))
    return out


def from_spec(spec: Mapping[str, Any]) -> Distribution:
    """The distribution described by ``spec`` (from :meth:`Distribution.get_spec`)."""
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"a distribution spec is a dict with a 'type', got {spec!r}")
    classes = {k: v for k, v in _subclasses(Distribution).items() if not k.startswith("_")}
    cls = classes.get(spec["type"])
    if cls is None:
        raise ValueError(f"unknown distribution type {spec['type']!r}; known: {sorted(classes)}")
    args = {k: v for k, v in spec.items() if k != "type"}
    if cls is Independent:
        return Independent([(cols, from_spec(part)) for cols, part in args["parts"]])
    return cls(**args)
