"""Products of distributions over disjoint groups of columns, for mixed-type tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from emkit.distributions.base import Distribution, check_weights
from emkit.distributions.spec import from_spec

__all__ = ["Independent"]


class Independent(Distribution):
    """A product of distributions over disjoint groups of columns (mixed-type tables).

    Generative model: given the component, each group of columns is drawn from its own
    distribution, independently of the others. ``log_prob`` sums the parts; parameters,
    statistics, priors and the ``previous`` parameters of :meth:`mstep` are tuples of
    the parts', in the order given.

    Parameters
    ----------
    parts : mapping or iterable of pairs
        ``{columns: distribution}`` or ``[(columns, distribution), ...]``; ``columns``
        is a column index or a sequence of indices. Together the groups must cover the
        columns ``0 .. D-1`` exactly once.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Categorical, DiagGaussian, Poisson
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

    def check_params(self, params: tuple, n_components: int | None = None) -> None:
        for part, p in zip(self.parts, params, strict=True):
            part.check_params(p, n_components)

    @property
    def integrates_missing_entries(self) -> bool:
        return all(part.integrates_missing_entries for part in self.parts)

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
        w = check_weights(weights, X.shape[0])
        parts = zip(self.columns, self.parts, params or (None,) * len(self.parts))
        return tuple(dist.suff_stats(X[:, cols], w, p) for cols, dist, p in parts)

    def _per_part(self, values: Sequence[Any] | None, what: str) -> Sequence[Any]:
        """One entry of ``values`` per part (all ``None`` if ``values`` is ``None``)."""
        if values is None:
            return (None,) * len(self.parts)
        if len(values) != len(self.parts):
            raise ValueError(f"Independent: {len(values)} {what} for {len(self.parts)} parts")
        return values

    def _priors(self, prior: Sequence[Any] | None) -> Sequence[Any]:
        return self._per_part(prior, "priors")

    def mstep(
        self,
        stats: tuple,
        prior: Sequence[Any] | None = None,
        previous: tuple | None = None,
    ) -> tuple:
        parts = zip(self.parts, stats, self._priors(prior), self._per_part(previous, "previous"))
        return tuple(dist.mstep(s, p, previous=old) for dist, s, p, old in parts)

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

    @classmethod
    def from_spec_args(cls, args: Mapping[str, Any]) -> Independent:
        return cls([(cols, from_spec(part)) for cols, part in args["parts"]])

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
