"""Distributions of discrete columns: categories, binary values and counts.

Columns are independent given the component (a product over columns), so ``D``
columns cost ``D`` univariate densities. The statistics are weighted counts
(:class:`~emkit.distributions.base.CountStats`), and each M-step is closed form, with
an optional conjugate prior for MAP-EM: :class:`~emkit.distributions.DirichletPrior`
for category probabilities, :class:`~emkit.distributions.GammaPrior` for a rate.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import gammaln

from emkit._validation import check_int
from emkit.distributions.base import (
    Check,
    CountStats,
    DirichletPrior,
    Distribution,
    GammaPrior,
    check_dirichlet_prior,
    check_gamma_prior,
    check_weights,
    divide_by_weight,
    safe_log,
    standardise,
)

__all__ = [
    "Bernoulli",
    "BernoulliParams",
    "Categorical",
    "CategoricalParams",
    "Poisson",
    "PoissonParams",
]


class CategoricalParams(NamedTuple):
    probs: np.ndarray  # (K, D, C), sums to one over C


class BernoulliParams(NamedTuple):
    probs: np.ndarray  # (K, D), probability of a 1


class PoissonParams(NamedTuple):
    rate: np.ndarray  # (K, D)


def _non_integer(x: np.ndarray) -> np.ndarray:
    return x != np.round(x)


_NON_INTEGER: Check = (_non_integer, "non-integer values")


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
    param_constraints = (("probs", "simplex"),)

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
        w = check_weights(weights, X.shape[0])
        counts = (w.T @ self._one_hot(X)).reshape(w.shape[1], X.shape[1], self.n_categories)
        return CountStats(nk=w.sum(axis=0), counts=counts)

    def _expected_stats(self, params: CategoricalParams) -> CountStats:
        probs = np.asarray(params.probs)
        return CountStats(nk=np.ones(len(probs)), counts=probs)

    def mstep(
        self,
        stats: CountStats,
        prior: DirichletPrior | None = None,
        previous: CategoricalParams | None = None,
    ) -> CategoricalParams:
        alpha = check_dirichlet_prior(prior, self.name)
        num = np.asarray(stats.counts) + (alpha - 1.0)
        return CategoricalParams(
            probs=divide_by_weight(num, num.sum(axis=2, keepdims=True), "probs")
        )

    def log_prior(self, params: CategoricalParams, prior: DirichletPrior | None = None) -> float:
        alpha = check_dirichlet_prior(prior, self.name)
        return float(np.sum((alpha - 1.0) * safe_log(np.asarray(params.probs))))

    def sample(self, params_k: CategoricalParams, n: int, rng: np.random.Generator) -> np.ndarray:
        cdf = np.cumsum(np.asarray(params_k.probs), axis=-1)  # (D, C)
        u = rng.random((n, cdf.shape[0], 1))
        # Inverse CDF per column; the clip guards against cdf[-1] < 1 by round-off.
        return np.minimum((u >= cdf).sum(axis=2), self.n_categories - 1).astype(np.int64)

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return self._one_hot(X).reshape(len(X), -1)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (self.n_categories - 1)


class _Counts(Distribution):
    """Columns whose statistics are weighted sums of the values (Bernoulli, Poisson); a
    missing value contributes its mean under each component."""

    @staticmethod
    def _mean(params: Any) -> np.ndarray:
        raise NotImplementedError

    def _suff_stats(self, X: np.ndarray, weights: Any) -> CountStats:
        w = check_weights(weights, X.shape[0])
        return CountStats(nk=w.sum(axis=0), counts=w.T @ X)

    def _expected_stats(self, params: Any) -> CountStats:
        mean = self._mean(params)
        return CountStats(nk=np.ones(len(mean)), counts=mean)


class Bernoulli(_Counts):
    """Independent binary columns: ``x_d | z = k ~ Bernoulli(probs[k, d])``."""

    name = "Bernoulli"
    params_type = BernoulliParams
    param_constraints = (("probs", "probability"),)

    def _support(self) -> list[Check]:
        return [(lambda x: (x != 0) & (x != 1), "values other than 0 and 1")]

    def _log_prob(self, params: BernoulliParams, X: np.ndarray) -> np.ndarray:
        p = np.asarray(params.probs)
        log1 = safe_log(p)
        log0 = safe_log(1.0 - p)
        return X @ (log1 - log0).T + log0.sum(axis=1)

    @staticmethod
    def _mean(params: BernoulliParams) -> np.ndarray:
        return np.asarray(params.probs)

    def mstep(
        self,
        stats: CountStats,
        prior: DirichletPrior | None = None,
        previous: BernoulliParams | None = None,
    ) -> BernoulliParams:
        alpha = np.broadcast_to(check_dirichlet_prior(prior, self.name), (2,))
        nk = np.asarray(stats.nk)[:, None]
        num = np.asarray(stats.counts) + (alpha[1] - 1.0)
        den = nk + (alpha[0] + alpha[1] - 2.0)
        return BernoulliParams(
            probs=divide_by_weight(num, np.broadcast_to(den, num.shape), "probs")
        )

    def log_prior(self, params: BernoulliParams, prior: DirichletPrior | None = None) -> float:
        alpha = np.broadcast_to(check_dirichlet_prior(prior, self.name), (2,))
        p = np.asarray(params.probs)
        return float(np.sum((alpha[1] - 1) * safe_log(p) + (alpha[0] - 1) * safe_log(1 - p)))

    def sample(self, params_k: BernoulliParams, n: int, rng: np.random.Generator) -> np.ndarray:
        p = np.asarray(params_k.probs)
        return (rng.random((n, p.shape[0])) < p).astype(np.float64)

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.asarray(X, dtype=np.float64), nan=0.5)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features


class Poisson(_Counts):
    """Independent count columns: ``x_d | z = k ~ Poisson(rate[k, d])``."""

    name = "Poisson"
    params_type = PoissonParams
    param_constraints = (("rate", "positive"),)

    def _support(self) -> list[Check]:
        return [(lambda x: x < 0, "negative counts"), _NON_INTEGER]

    def _log_prob(self, params: PoissonParams, X: np.ndarray) -> np.ndarray:
        rate = np.asarray(params.rate)
        return X @ safe_log(rate).T - rate.sum(axis=1) - gammaln(X + 1.0).sum(axis=1)[:, None]

    @staticmethod
    def _mean(params: PoissonParams) -> np.ndarray:
        return np.asarray(params.rate)

    def mstep(
        self,
        stats: CountStats,
        prior: GammaPrior | None = None,
        previous: PoissonParams | None = None,
    ) -> PoissonParams:
        a0, b0 = check_gamma_prior(prior, self.name)
        num = np.asarray(stats.counts) + (a0 - 1.0)
        den = np.broadcast_to((np.asarray(stats.nk) + b0)[:, None], num.shape)
        return PoissonParams(rate=divide_by_weight(num, den, "rate"))

    def log_prior(self, params: PoissonParams, prior: GammaPrior | None = None) -> float:
        a0, b0 = check_gamma_prior(prior, self.name)
        rate = np.asarray(params.rate)
        return float(np.sum((a0 - 1.0) * safe_log(rate) - b0 * rate))

    def sample(self, params_k: PoissonParams, n: int, rng: np.random.Generator) -> np.ndarray:
        rate = np.asarray(params_k.rate)
        return rng.poisson(rate, size=(n, rate.shape[0])).astype(np.float64)

    def init_features(self, X: np.ndarray) -> np.ndarray:
        # Anscombe's transform makes Poisson counts' variance nearly constant.
        return standardise(np.sqrt(X + 0.375))

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features
