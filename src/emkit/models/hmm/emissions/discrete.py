"""Emissions of discrete observations: one categorical symbol per step
(:class:`CategoricalEmission`) and independent counts (:class:`PoissonEmission`).

Both take their densities and statistics as dense products over the rows (a table
lookup and a sparse one-hot product for symbols, one matrix product for counts)
instead of the distribution's generic per-component code.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse
from scipy.special import gammaln

from emkit.distributions.base import CountStats, DirichletPrior, GammaPrior
from emkit.distributions.discrete import Categorical, CategoricalParams, Poisson, PoissonParams
from emkit.models.hmm.emissions._labels import centres, subsample
from emkit.models.hmm.emissions._weights import column_sums, floor_empty, floored
from emkit.models.hmm.emissions.base import Emission
from emkit.models.hmm.rows import ProbabilityRows

__all__ = ["CategoricalEmission", "PoissonEmission"]

_TINY = np.finfo(np.float64).tiny


class CategoricalEmission(Emission):
    """One categorical symbol per time step: ``x_t | z_t = k ~ Categorical(emissionprob[k])``.

    Symbols are the integers ``0 .. n_categories - 1`` in one column. Fitted attribute:
    ``emissionprob`` (K, n_categories). ``prior``: Dirichlet pseudo-counts on each
    state's row, broadcast to (K, 1, n_categories), for MAP-EM.
    """

    attributes = ("emissionprob",)
    paths: ClassVar[dict[str, str]] = {"emissionprob": "emission.probs"}

    def __init__(self, n_categories: int, prior: DirichletPrior | None = None):
        super().__init__(Categorical(n_categories), prior)
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
        moving average of ``seeds[:, x_t]`` (no (T, n_categories) array).
        """
        T, C, W = len(data), self.n_categories, self.init_window
        if offsets is None:
            offsets = np.array([0, T])
        observed = np.zeros(T, dtype=bool)
        observed[rows] = True
        seq = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        lo, hi = offsets[seq], offsets[seq + 1]
        sample = subsample(rows, rng)
        idx = sample[:, None] + np.arange(-W, W + 1)
        inside = (idx >= lo[sample, None]) & (idx < hi[sample, None])
        idx = np.clip(idx, 0, T - 1)
        inside &= observed[idx]
        hist = np.zeros((len(sample), C))
        np.add.at(hist, (np.nonzero(inside)[0], data[idx][inside]), 1.0)
        seeds = centres(hist / hist.sum(axis=1, keepdims=True), K, method, rng)
        # Nearest centre of a window h: argmin_k |c_k|^2 - 2 h.c_k, and h.c_k is the
        # window's average of c_k[x_s].
        look = np.where(observed[:, None], seeds.T[data], 0.0)
        cum = np.zeros((T + 1, K))
        np.cumsum(look, axis=0, out=cum[1:])
        n_obs = np.concatenate([[0], np.cumsum(observed)])
        t = np.arange(T)
        a, b = np.maximum(t - W, lo), np.minimum(t + W + 1, hi)
        avg = (cum[b] - cum[a]) / np.maximum(n_obs[b] - n_obs[a], 1)[:, None]
        return np.argmin(np.sum(seeds**2, axis=1) - 2.0 * avg, axis=1)

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

        return floored(stats_of, weights)

    def n_parameters(self, params: Any, n_features: int) -> int:
        return int(np.shape(params.probs)[0]) * (self.n_categories - 1)

    def pack(self, params: CategoricalParams) -> np.ndarray:
        return ProbabilityRows.pack(params.probs)

    def unpack(self, vec: np.ndarray, like: CategoricalParams) -> CategoricalParams:
        return CategoricalParams(ProbabilityRows.unpack(vec, like.probs))

    def to_attributes(self, params: CategoricalParams) -> dict[str, Any]:
        return {"emissionprob": np.asarray(params.probs)[:, 0, :]}

    def from_attributes(self, values: dict[str, Any], n_states: int, n_features: int) -> Any:
        probs = ProbabilityRows("emissionprob").check(
            values["emissionprob"], (n_states, self.n_categories)
        )
        return CategoricalParams(probs[:, None, :])

    def sample(self, params: Any, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return super().sample(params, states, rng).astype(np.int64)


class PoissonEmission(Emission):
    """Independent counts: ``x_td | z_t = k ~ Poisson(rates[k, d])``.

    Fitted attribute: ``rates`` (K, D); ``prior``: a Gamma prior on every rate, for
    MAP-EM. The parameter-free term ``sum_d log x_td!`` of
    each row is computed once, when the data are prepared.
    """

    attributes = ("rates",)
    paths: ClassVar[dict[str, str]] = {"rates": "emission.rate"}

    def __init__(self, prior: GammaPrior | None = None):
        super().__init__(Poisson(), prior)

    def _transform(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if np.isnan(X).any():  # entries missing: the distribution integrates them out
            return X, None
        return X, gammaln(X + 1.0).sum(axis=1)

    def init_features(self, data: Any) -> np.ndarray:
        return np.nan_to_num(self.dist.init_features(data[0]))

    def init_params(self, data: Any, resp: np.ndarray, rng: np.random.Generator) -> Any:
        return self.dist.init_params(data[0], floor_empty(resp), rng)

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
        weights = floor_empty(weights)
        if log_fact is None:
            return self.dist.suff_stats(X, weights, params=params)
        return CountStats(nk=column_sums(weights), counts=weights.T @ X)

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
