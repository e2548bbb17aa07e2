"""The emission part of an HMM on any :class:`~emkit.distributions.Distribution`.

Given the state ``z_t = k``, ``x_t`` is drawn from component ``k`` of the
distribution. :class:`Emission` weights the distribution's statistics by the state
posteriors and takes the distribution's own M-step; the named emissions of
:class:`emkit.HMM` subclass it for their fitted attribute names, data preparation and
fast paths.

Every emission works on *prepared* data (``prepare``): a pytree of arrays with one
row per observation, so batches of whole sequences are row slices of it. Rows that
are entirely NaN are missing observations: ``prepare`` fills them with a valid
placeholder (so densities stay finite) and returns a mask; the HMM gives them a
log-density of 0 (they are integrated out) and zero weight in the statistics.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import numpy as np

from emkit._pytree import tree_leaves, tree_ravel
from emkit.distributions.base import Distribution, component
from emkit.models.hmm.emissions._labels import centres, subsample
from emkit.models.hmm.emissions._weights import floor_empty
from emkit.models.init import nearest_center

__all__ = ["Emission"]


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


def _supports_missing(dist: Distribution) -> bool:
    """Whether ``dist`` integrates out single NaN entries of a row."""
    return dist.integrates_missing_entries


def _stats_take_params(dist: Distribution) -> bool:
    """Whether ``dist.suff_stats`` takes the current ``params`` (for missing values)."""
    try:
        return "params" in inspect.signature(dist.suff_stats).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


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
    #: where each attribute's values sit in the HMM's parameter pytree (the names
    #: ``emkit.em(fixed=...)`` uses)
    paths: ClassVar[dict[str, str]] = {"emission_params": "emission"}
    #: whether rows with some (not all) NaN entries are integrated out
    partial_missing: bool = False
    #: the attributes whose parameters the M-step keeps as they are (see :meth:`hold`)
    held: frozenset[str] = frozenset()

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
        seeds = centres(np.ascontiguousarray(feats[subsample(rows, rng)]), K, method, rng)
        return nearest_center(np.ascontiguousarray(feats), seeds)[0]

    # ---------------------------------------------------------------- E and M
    def frame(self, params: Any, data: Any) -> tuple[np.ndarray, Any]:
        """``log p(x_t | z_t = k)``, C-contiguous (T, K), and what ``suff_stats`` reuses."""
        lp = self.dist.log_prob(params, data)
        return np.ascontiguousarray(lp, dtype=np.float64), None

    def suff_stats(self, data: Any, weights: np.ndarray, params: Any, aux: Any = None) -> Any:
        """Statistics weighted by the state posteriors ``weights`` (T, K)."""
        weights = floor_empty(weights)
        if self._with_params:
            return self.dist.suff_stats(data, weights, params=params)
        return self.dist.suff_stats(data, weights)

    def hold(self, names: Collection[str]) -> Emission:
        """A copy whose M-step keeps the parameters of the attributes ``names`` (a subset
        of :attr:`attributes`) and maximises the others given them.

        Raises
        ------
        ValueError
            For a name that is not one of :attr:`attributes`.
        """
        names = frozenset(names)
        unknown = sorted(names - set(self.attributes))
        if unknown:
            raise ValueError(
                f"cannot hold {unknown}: this emission's parameters are {list(self.attributes)}"
            )
        held = copy.copy(self)
        held.held = names
        return held

    def mstep(self, stats: Any, params: Any) -> Any:
        """The distribution's M-step; ``params`` (those the E-step used, or None)
        warm-start a step without a closed form. Held parameters are kept."""
        if params is not None and self.held:  # here all or nothing: one attribute
            return params
        return self.dist.mstep(stats, self.prior, previous=params)

    def log_prior(self, params: Any) -> float:
        if self.prior is None:
            return 0.0
        return float(self.dist.log_prior(params, self.prior))

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator) -> Any:
        """An M-step from responsibilities ``resp`` (T, K) (zero rows for missing data)."""
        return self.dist.init_params(data, floor_empty(resp), rng)

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

    def with_attributes(self, params: Any, values: dict[str, Any], K: int, D: int) -> Any:
        """``params`` with the attributes in ``values`` (the data's coordinates and the
        attributes' shapes) put in; validated as :meth:`from_attributes` validates."""
        return self.from_attributes({**self.to_attributes(params), **values}, K, D)

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
