"""Distributions of real and positive columns: Exponential, Gamma, LogNormal, DiagGaussian.

Columns are independent given the component (a product over columns), so ``D``
columns cost ``D`` univariate densities. Statistics are weighted sums of the natural
sufficient statistics (``sum w``, ``sum w x``, ``sum w log x``, ...), so they do not
depend on the parameters. Second moments are raw sums about a fixed ``shift`` (default
0): give :class:`DiagGaussian` or :class:`LogNormal` a shift near the data's centre
when the data sit far from the origin relative to their spread, or the variances lose
precision to cancellation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from emkit._validation import check_real
from emkit.distributions.base import (
    Check,
    CountStats,
    Distribution,
    GammaPrior,
    check_gamma_prior,
    check_weights,
    divide_by_weight,
    safe_log,
    standardise,
)
from emkit.distributions.gaussian import GaussianKernel

__all__ = [
    "DiagGaussian",
    "DiagGaussianParams",
    "Exponential",
    "ExponentialParams",
    "Gamma",
    "GammaParams",
    "GammaStats",
    "LogNormal",
    "LogNormalParams",
    "MomentStats",
    "gamma_shape_mle",
]


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


class GammaStats(NamedTuple):
    nk: np.ndarray  # (K,)
    sum_x: np.ndarray  # (K, D)
    sum_log_x: np.ndarray  # (K, D)


class MomentStats(NamedTuple):
    """``sum w``, ``sum w t`` and ``sum w t**2`` of ``t = x`` (Gaussian) or ``log x``."""

    nk: np.ndarray  # (K,)
    s1: np.ndarray  # (K, D)
    s2: np.ndarray  # (K, D)


_NON_POSITIVE: Check = (lambda x: x <= 0, "non-positive values (they must be > 0)")


class Exponential(Distribution):
    """Independent positive columns: ``x_d | z = k ~ Exponential(rate[k, d])``."""

    name = "Exponential"
    params_type = ExponentialParams
    param_constraints = (("rate", "positive"),)
    _fill_value = 1.0

    def _support(self) -> list[Check]:
        return [_NON_POSITIVE]

    def _log_prob(self, params: ExponentialParams, X: np.ndarray) -> np.ndarray:
        rate = np.asarray(params.rate)
        return np.log(rate).sum(axis=1) - X @ rate.T

    def _suff_stats(self, X: np.ndarray, weights: Any) -> CountStats:
        w = check_weights(weights, X.shape[0])
        return CountStats(nk=w.sum(axis=0), counts=w.T @ X)

    def _expected_stats(self, params: ExponentialParams) -> CountStats:
        rate = np.asarray(params.rate)
        return CountStats(nk=np.ones(len(rate)), counts=1.0 / rate)

    def mstep(
        self,
        stats: CountStats,
        prior: GammaPrior | None = None,
        previous: ExponentialParams | None = None,
    ) -> ExponentialParams:
        a0, b0 = check_gamma_prior(prior, self.name)
        sum_x = np.asarray(stats.counts)
        num = np.broadcast_to((np.asarray(stats.nk) + a0 - 1.0)[:, None], sum_x.shape)
        return ExponentialParams(rate=divide_by_weight(num, sum_x + b0, "rate"))

    def log_prior(self, params: ExponentialParams, prior: GammaPrior | None = None) -> float:
        a0, b0 = check_gamma_prior(prior, self.name)
        rate = np.asarray(params.rate)
        return float(np.sum((a0 - 1.0) * safe_log(rate) - b0 * rate))

    def sample(self, params_k: ExponentialParams, n: int, rng: np.random.Generator) -> np.ndarray:
        rate = np.asarray(params_k.rate)
        return rng.exponential(1.0 / rate, size=(n, rate.shape[0]))

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return standardise(np.log(X))

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
    param_constraints = (("shape", "positive"), ("rate", "positive"))
    _fill_value = 1.0

    def _support(self) -> list[Check]:
        return [_NON_POSITIVE]

    def _log_prob(self, params: GammaParams, X: np.ndarray) -> np.ndarray:
        a, b = np.asarray(params.shape), np.asarray(params.rate)
        const = (a * np.log(b) - gammaln(a)).sum(axis=1)
        return np.log(X) @ (a - 1.0).T - X @ b.T + const

    def _suff_stats(self, X: np.ndarray, weights: Any) -> GammaStats:
        w = check_weights(weights, X.shape[0])
        return GammaStats(nk=w.sum(axis=0), sum_x=w.T @ X, sum_log_x=w.T @ np.log(X))

    def _expected_stats(self, params: GammaParams) -> GammaStats:
        shape, rate = np.asarray(params.shape), np.asarray(params.rate)
        return GammaStats(
            nk=np.ones(len(shape)), sum_x=shape / rate, sum_log_x=digamma(shape) - np.log(rate)
        )

    def mstep(
        self, stats: GammaStats, prior: None = None, previous: GammaParams | None = None
    ) -> GammaParams:
        if prior is not None:
            raise TypeError("Gamma has no conjugate prior here; pass prior=None")
        # `previous` is not needed: from Minka's start Newton converges in a few steps.
        nk = np.broadcast_to(np.asarray(stats.nk)[:, None], np.shape(stats.sum_x))
        mean = divide_by_weight(np.asarray(stats.sum_x), nk, "shape and rate")
        mean_log = np.asarray(stats.sum_log_x) / nk
        shape = gamma_shape_mle(np.log(mean) - mean_log)
        return GammaParams(shape=shape, rate=shape / mean)

    def sample(self, params_k: GammaParams, n: int, rng: np.random.Generator) -> np.ndarray:
        a, b = np.asarray(params_k.shape), np.asarray(params_k.rate)
        return rng.gamma(a, 1.0 / b, size=(n, a.shape[0]))

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return standardise(np.log(X))

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return 2 * n_components * n_features


#: the Gaussian kernel with per-feature variances (no reg_covar: M-steps are done here)
_DIAG_KERNEL = GaussianKernel("diag", reg_covar=0.0)


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
        # The one Gaussian kernel (diagonal structure): exact far from the origin too.
        T = np.ascontiguousarray(T, dtype=np.float64)
        prec_chol = 1.0 / np.sqrt(np.asarray(var, dtype=np.float64))
        return _DIAG_KERNEL.log_densities(np.asarray(mean, dtype=np.float64), prec_chol, T)[0]

    def _suff_stats(self, X: np.ndarray, weights: Any) -> MomentStats:
        w = check_weights(weights, X.shape[0])
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
        mean = divide_by_weight(s1, nk, "mean and variance")
        var = np.maximum(np.asarray(stats.s2) / nk - mean * mean, 0.0) + self.reg_var
        if np.any(var <= 0):
            raise ValueError(
                f"{self.name}: a component has zero variance: its points are all equal "
                "(set reg_var > 0), or the data sit far from the origin relative to their "
                "spread (set shift near their centre)"
            )
        return mean + self.shift, var

    def init_features(self, X: np.ndarray) -> np.ndarray:
        return standardise(self._transform(X))

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
    param_constraints = (("var", "positive"),)

    def _log_prob(self, params: DiagGaussianParams, X: np.ndarray) -> np.ndarray:
        return self._normal_log_prob(X, np.asarray(params.mean), np.asarray(params.var))

    def _expected_stats(self, params: DiagGaussianParams) -> MomentStats:
        return self._moments(np.asarray(params.mean), np.asarray(params.var))

    def mstep(
        self,
        stats: MomentStats,
        prior: None = None,
        previous: DiagGaussianParams | None = None,
    ) -> DiagGaussianParams:
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
    param_constraints = (("sigma", "positive"),)
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

    def mstep(
        self, stats: MomentStats, prior: None = None, previous: LogNormalParams | None = None
    ) -> LogNormalParams:
        mean, var = self._mean_var(stats, prior)
        return LogNormalParams(mu=mean, sigma=np.sqrt(var))

    def sample(self, params_k: LogNormalParams, n: int, rng: np.random.Generator) -> np.ndarray:
        mu, sigma = np.asarray(params_k.mu), np.asarray(params_k.sigma)
        return np.exp(mu + sigma * rng.standard_normal((n, mu.shape[0])))
