"""The contract of every distribution: K components of one distribution at a time.

Each distribution is a small strategy object without mutable state. Its parameters are
an immutable pytree (a NamedTuple whose leaves have a leading axis of K components),
and everything a mixture or an HMM emission needs is a pure function of plain arrays:

==========================================  ===========================================
method                                      what it returns
==========================================  ===========================================
``validate(X)``                             the checked (N, D) array (ValueError naming
                                            the column otherwise)
``log_prob(params, X)``                     (N, K) log-densities of every row under
                                            every component
``suff_stats(X, weights, params)``          statistics weighted by ``weights`` (N, K);
                                            they add up over any split of the rows
``mstep(stats, prior=None, previous=None)`` parameters maximising the weighted
                                            likelihood (plus log-prior for MAP)
``init_params(X, resp, rng)``               an M-step from given responsibilities
``sample(params_k, n, rng)``                (n, D) draws from one component
``n_parameters(K, D)``                      number of free parameters
==========================================  ===========================================

``log_prob`` and ``suff_stats`` expect data that went through ``validate`` once
(checking on every E-step would cost a pass over the data each time).

This module also holds what several distributions share: the weighted-count
statistics, the conjugate priors and their checks, and the registry of distribution
classes by name that :func:`emkit.distributions.from_spec` reads.

Examples
--------
>>> import numpy as np
>>> from emkit.distributions import Poisson
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
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from emkit._pytree import tree_map

__all__ = [
    "Check",
    "CountStats",
    "DirichletPrior",
    "Distribution",
    "GammaPrior",
    "check_dirichlet_prior",
    "check_gamma_prior",
    "check_weights",
    "component",
    "distribution_classes",
    "divide_by_weight",
    "safe_log",
    "standardise",
]

_TINY = np.finfo(np.float64).tiny

#: A check of a column's values: (bad-entry mask function, what is wrong).
Check = tuple[Callable[[np.ndarray], np.ndarray], str]

# Distribution classes by name, filled as they are defined (Distribution.__init_subclass__),
# so that from_spec finds every one, wherever it lives, without importing it.
_CLASSES: dict[str, type[Distribution]] = {}


# --------------------------------------------------------------------------- pytrees
class CountStats(NamedTuple):
    """Weighted counts: ``nk`` (K,) total weight, ``counts`` the weighted sums of ``x``."""

    nk: np.ndarray
    counts: np.ndarray  # (K, D) or (K, D, C) for one-hot categories


class DirichletPrior(NamedTuple):
    """Dirichlet pseudo-counts for category probabilities (MAP-EM).

    ``alpha`` is a scalar or broadcasts to the category axis (``(C,)`` or ``(D, C)``
    for :class:`~emkit.distributions.Categorical`; ``(2,)`` = (for 0, for 1) for
    :class:`~emkit.distributions.Bernoulli`). ``alpha >= 1``; ``alpha = 1`` is the flat
    prior (maximum likelihood).
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
def standardise(X: np.ndarray) -> np.ndarray:
    """Columns at zero mean and unit variance (constant columns: zero; NaN: the mean)."""
    X = np.asarray(X, dtype=np.float64)
    mean = np.nanmean(X, axis=0)
    sd = np.nanstd(X, axis=0)
    Z = (X - mean) / np.where(sd > 0, sd, 1.0)
    return np.nan_to_num(Z, nan=0.0)


def check_weights(weights: Any, n_samples: int) -> np.ndarray:
    """``weights`` as a float64 (n_samples, K) array, or a ValueError naming the shape."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != n_samples:
        raise ValueError(
            f"weights must have shape (n_samples, n_components) = ({n_samples}, K), got {w.shape}"
        )
    return w


def divide_by_weight(num: np.ndarray, den: np.ndarray, what: str) -> np.ndarray:
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


def safe_log(p: np.ndarray) -> np.ndarray:
    """``log p`` with ``p = 0`` mapped to ``log(tiny)`` instead of ``-inf``."""
    # log(0) = -inf would give 0 * -inf = NaN inside a matrix product; a probability of
    # exactly zero costs log(tiny) ~ -708 per observation instead.
    return np.log(np.maximum(p, _TINY))


def _check_prior(prior: Any, kind: type, name: str) -> Any:
    if prior is None:
        return kind()
    if not isinstance(prior, kind):
        raise TypeError(f"{name} takes a {kind.__name__} prior, got {type(prior).__name__}")
    return prior


def check_dirichlet_prior(prior: DirichletPrior | None, name: str) -> np.ndarray:
    """The pseudo-counts ``alpha`` of a :class:`DirichletPrior` (flat if ``None``)."""
    alpha = np.asarray(_check_prior(prior, DirichletPrior, name).alpha, dtype=np.float64)
    if not np.all(np.isfinite(alpha)) or np.any(alpha < 1):
        raise ValueError(f"{name}: Dirichlet pseudo-counts alpha must be finite and >= 1")
    return alpha


def check_gamma_prior(prior: GammaPrior | None, name: str) -> tuple[float, float]:
    """``(a0, b0)`` of a :class:`GammaPrior` (flat if ``None``)."""
    p = _check_prior(prior, GammaPrior, name)
    a0, b0 = float(p.a0), float(p.b0)
    if not (np.isfinite(a0) and np.isfinite(b0) and a0 >= 1 and b0 >= 0):
        raise ValueError(f"{name}: Gamma prior needs a0 >= 1 and b0 >= 0, got {a0}, {b0}")
    return a0, b0


def check_constrained(value: np.ndarray, kind: str, field: str, owner: str) -> None:
    """``ValueError`` unless ``value`` is finite and meets ``kind`` (see
    :attr:`Distribution.param_constraints`)."""
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{owner} {field} must be finite")
    if kind == "positive" and np.any(value <= 0):
        raise ValueError(f"{owner} {field} must be positive")
    if kind in ("probability", "simplex") and np.any((value < 0) | (value > 1)):
        raise ValueError(f"{owner} {field} must lie in [0, 1]")
    if kind == "simplex":
        sums = value.sum(axis=-1)
        if np.any(np.abs(sums - 1.0) > 1e-8):
            raise ValueError(f"{owner} {field} must sum to 1 over its last axis")


def distribution_classes() -> Mapping[str, type[Distribution]]:
    """Every public :class:`Distribution` subclass defined so far, by class name.

    Read-only. A class whose name starts with ``_`` is left out (a shared base, not a
    distribution one can build); a later class of the same name replaces an earlier one.
    """
    return types.MappingProxyType(_CLASSES)


# ---------------------------------------------------------------------------- base
class Distribution(abc.ABC):
    """K components of one distribution over D columns.

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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _CLASSES[cls.__name__] = cls

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
                        f"{self.name}: column {label} has {what}, e.g. {float(col[bad[0]]):.6g} "
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

        This default is for distributions whose columns are independent given the
        component (a product over columns), which subclasses write as ``_log_prob``.

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
        w = check_weights(weights, X.shape[0])
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

    @property
    def integrates_missing_entries(self) -> bool:
        """Whether single NaN entries of a row are integrated out (a column-wise
        distribution with expected statistics, or one that conditions on the observed
        values, as the Gaussian); rows that are all NaN are always allowed."""
        return type(self)._expected_stats is not Distribution._expected_stats

    def _expected_stats(self, params: Any) -> Any:
        """Per component and column, the expected statistics of one value (same
        NamedTuple as the statistics, leaves (K, D, ...); ``nk`` is not used)."""
        raise NotImplementedError(f"{self.name} does not support missing values")

    @abc.abstractmethod
    def mstep(self, stats: Any, prior: Any = None, previous: Any = None) -> Any:
        """Parameters that maximise the weighted log-likelihood (plus log-prior).

        Parameters
        ----------
        stats : pytree
            From :meth:`suff_stats`, possibly summed over batches.
        prior : NamedTuple, optional
            Conjugate-prior pseudo-counts for MAP estimation, where supported.
        previous : pytree, optional
            The parameters the E-step used to compute ``stats`` (same layout as the
            result). A step without a closed form may start its search from them (a
            warm start), and a generalized step (GEM) improves on them; closed-form
            steps ignore them. ``None`` (a first step, or a caller without them)
            must always work.

        Raises
        ------
        ValueError
            If a component has zero total weight and its parameters are undefined.
        """

    #: whether components share parameters (a tied covariance): then one component
    #: cannot be held fixed on its own
    shares_parameters: bool = False
    #: the parameter fields :meth:`held_stats` can hold fixed
    holdable_fields: tuple[str, ...] = ()

    def held_stats(self, stats: Any, previous: Any, fields: frozenset) -> Any:
        """Statistics whose ordinary M-step (from ``previous``) maximises the parameters
        other than ``fields`` given ``previous``'s values of ``fields`` (which the caller
        then puts back): how a mixture holds fields of its components fixed.

        ``stats`` None only asks whether ``fields`` can be held (``ValueError`` if not).
        The default holds nothing but whole parameter sets, or the fields of
        :attr:`holdable_fields` whose M-step does not involve the others.
        """
        allowed = set(self.holdable_fields)
        if self.params_type is not None:
            known = set(self.params_type._fields)
            unknown = set(fields) - known
            if unknown:
                raise ValueError(
                    f"unknown parameter(s) {sorted(unknown)} of {self.name}; its fields are "
                    f"{sorted(known)}"
                )
            if set(fields) == known:
                return stats
        if not set(fields) <= allowed:
            raise ValueError(
                f"{self.name} cannot hold {sorted(set(fields) - allowed)} fixed on its own"
                + (f"; it can hold {sorted(allowed)}" if allowed else "")
            )
        return stats

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
        return self.mstep(self.suff_stats(X, resp, first), previous=first)

    def log_prior(self, params: Any, prior: Any = None) -> float:
        """Log-density of the prior at ``params``, up to a constant (0 without a prior)."""
        return 0.0

    # ---------------------------------------------------------------- initialisation
    def init_features(self, X: np.ndarray) -> np.ndarray:
        """Features on which k-means++ starts a mixture: here the standardised columns.

        Distributions override this with a transform under which Euclidean distance
        makes sense (counts: square roots; positive values: logs; categories: one-hot).
        """
        return standardise(X)

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

    @classmethod
    def from_spec_args(cls, args: Mapping[str, Any]) -> Distribution:
        """Inverse of :meth:`get_spec`: the distribution from the spec less its ``type``."""
        return cls(**args)

    def params_to_dict(self, params: Any) -> dict[str, np.ndarray]:
        """The parameter pytree as ``{name: array}`` (for saving)."""
        return {name: np.asarray(value) for name, value in params._asdict().items()}

    #: (field, constraint) pairs checked by :meth:`check_params`: "real", "positive",
    #: "probability" (in [0, 1]) or "simplex" (non-negative, summing to 1 over the last
    #: axis); a field not named here must be finite
    param_constraints: tuple[tuple[str, str], ...] = ()

    def check_params(self, params: Any, n_components: int | None = None) -> None:
        """Raise ``ValueError`` naming the field if ``params`` (K components) break a
        constraint (used when parameters come from a user or a file)."""
        for field in self.params_type._fields:
            value = np.asarray(getattr(params, field), dtype=np.float64)
            if n_components is not None and value.shape[:1] != (n_components,):
                raise ValueError(
                    f"{self.name} {field} must have a leading axis of {n_components} "
                    f"components, got shape {value.shape}"
                )
            kind = dict(self.param_constraints).get(field, "real")
            check_constrained(value, kind, field, self.name)

    def params_from_dict(self, values: Mapping[str, Any]) -> Any:
        """Inverse of :meth:`params_to_dict`."""
        fields = self.params_type._fields
        if set(values) != set(fields):
            raise ValueError(f"{self.name} parameters are {list(fields)}, got {sorted(values)}")
        return self.params_type(**{f: np.asarray(values[f], dtype=np.float64) for f in fields})

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def add_blocks(total: list | None, block) -> list:
    """Add a block's statistics (a sequence of arrays) to running float64 totals (None at
    the first block); the E-steps sum their blocks of rows with it."""
    if total is None:
        return [np.array(b, dtype=np.float64) for b in block]
    for acc, b in zip(total, block):
        acc += b
    return total
