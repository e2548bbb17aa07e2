"""Conditional distributions of a response given covariates: the experts of a mixture.

K components at a time, as :mod:`emkit.distributions.base`, but each component is a
distribution of ``y`` given a row ``a`` of the design (the covariates, with a leading
column of ones when there is an intercept):

* :class:`LinearExperts`: ``y | a, k ~ Normal(beta_k . a, noise_variance_k)``
  (mixtures of regressions, DeSarbo & Cron 1988; linear experts, Jordan & Jacobs 1994);
* :class:`LogisticExperts`: ``P(y = c | a, k) = softmax_c(beta_k a)``, binary or
  multinomial, the last class the reference (logistic experts).

Each offers ``log_prob(params, A, y) -> ((n, K) log-densities, cache)``,
``suff_stats(A, y, resp, params, cache)`` (additive over any split of the rows),
``mstep(stats, params, held)``, ``log_prior``, ``pack``/``unpack`` and ``n_parameters``.
``params`` is a dict of arrays with a leading axis of K: "intercept", "coef" (and
"noise_variance" for linear experts); ``held`` names parameters kept at their values
while the others are maximised given them.

The linear statistics are taken about the current fit: with residuals
``e_ik = y_i - beta_k . a_i`` and weights ``r_ik``, ``g_k = sum r e a``,
``S_k = sum r a a^T`` and ``q_k = sum r e^2``. The weighted least-squares update is
``beta_k + d_k`` with ``S_k d_k = g_k`` (solved by :func:`~emkit.distributions._lstsq.solve_psd`),
and the new residual sum of squares is ``q_k - 2 g_k.d_k + d_k^T S_k d_k``: no raw
moment of ``y`` enters, so nothing cancels when the fit is good (near convergence
``d_k`` is 0 and the variance is ``q_k / n_k`` exactly).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from emkit.distributions._lstsq import solve_psd, weighted_grams
from emkit.distributions.softmax import (
    DesignBound,
    SoftmaxStats,
    log_softmax,
    newton_step,
    softmax_stats,
)

__all__ = [
    "LinearExperts",
    "LinearStats",
    "LogisticExperts",
    "column_mask",
    "join",
    "split",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


def join(params, fit_intercept: bool, prefix: str = "") -> np.ndarray:
    """The coefficients on the design's columns, ``[intercept, coef]`` (..., q)."""
    coef = params[prefix + "coef"]
    if not fit_intercept:
        return coef
    return np.concatenate([params[prefix + "intercept"][..., None], coef], axis=-1)


def split(beta: np.ndarray, like, fit_intercept: bool, prefix: str = "") -> dict[str, np.ndarray]:
    """Inverse of :func:`join` (without an intercept, ``like``'s zero intercept stays)."""
    if not fit_intercept:
        return {prefix + "intercept": like[prefix + "intercept"], prefix + "coef": beta}
    return {prefix + "intercept": beta[..., 0].copy(), prefix + "coef": beta[..., 1:].copy()}


def column_mask(q: int, fit_intercept: bool, held: frozenset, prefix: str = "") -> np.ndarray:
    """Which of the ``q`` design columns are free given the ``held`` names
    (``prefix + "intercept"`` holds column 0, ``prefix + "coef"`` the others)."""
    free = np.ones(q, bool)
    start = 1 if fit_intercept else 0
    if fit_intercept and prefix + "intercept" in held:
        free[0] = False
    if prefix + "coef" in held:
        free[start:] = False
    return free


class LinearStats(NamedTuple):
    nk: np.ndarray  # (K,) total weight
    grad: np.ndarray  # (K, q) sum r e a, residuals about the current fit
    gram: np.ndarray  # (K, q, q) sum r a a^T
    rss: np.ndarray  # (K,) sum r e^2


class LinearExperts:
    """K linear regressions with Gaussian noise, one variance each.

    Parameters
    ----------
    fit_intercept : bool
        Whether column 0 of the design is the intercept's column of ones.
    min_variance : float
        Floor of the noise variances (a documented regularisation: the likelihood of
        a line through as many points as it has coefficients is unbounded); at least
        the smallest positive float.
    """

    generalized = False

    def __init__(self, fit_intercept: bool = True, min_variance: float = 0.0):
        self.fit_intercept = fit_intercept
        # never exactly 0: a zero variance would make the log-density NaN
        self.min_variance = max(float(min_variance), np.finfo(np.float64).tiny)
        self.names = ("intercept", "coef", "noise_variance")

    def zero_params(self, K: int, q: int, y_scale: float = 1.0) -> dict[str, np.ndarray]:
        p = q - int(self.fit_intercept)
        return {
            "intercept": np.zeros(K),
            "coef": np.zeros((K, p)),
            "noise_variance": np.full(K, y_scale),
        }

    def beta(self, params) -> np.ndarray:
        """(K, q) coefficients on the design's columns."""
        return join(params, self.fit_intercept)

    def log_prob(self, params, A, y):
        E = y[:, None] - A @ self.beta(params).T
        var = params["noise_variance"]
        return -0.5 * (_LOG_2PI + np.log(var) + E * E / var), E

    def suff_stats(self, A, y, resp, params, cache=None) -> LinearStats:
        E = y[:, None] - A @ self.beta(params).T if cache is None else cache
        rE = resp * E
        return LinearStats(
            resp.sum(axis=0), rE.T @ A, weighted_grams(A, resp), np.einsum("nk,nk->k", rE, E)
        )

    def mstep(self, stats: LinearStats, params, held=frozenset()) -> dict[str, np.ndarray]:
        K, q = stats.grad.shape
        free = column_mask(q, self.fit_intercept, held)
        d = np.zeros((K, q))
        if free.any():
            d[:, free] = solve_psd(stats.gram[:, free][:, :, free], stats.grad[:, free])
        out = split(self.beta(params) + d, params, self.fit_intercept)
        if "noise_variance" not in held:
            rss = stats.rss - 2.0 * np.einsum("kq,kq->k", stats.grad, d)
            rss = np.maximum(rss + np.einsum("kp,kpq,kq->k", d, stats.gram, d), 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                var = np.where(stats.nk > 0, rss / stats.nk, self.min_variance)
            out["noise_variance"] = np.maximum(var, self.min_variance)
        return out

    def shift_stats(self, stats: LinearStats, old, new) -> LinearStats:
        """The same statistics about the fit ``new`` instead of ``old`` (exact)."""
        d = self.beta(new) - self.beta(old)
        Sd = np.einsum("kpq,kq->kp", stats.gram, d)
        rss = stats.rss - 2.0 * np.einsum("kq,kq->k", stats.grad, d) + np.einsum("kq,kq->k", d, Sd)
        return stats._replace(grad=stats.grad - Sd, rss=rss)

    def log_prior(self, params) -> float:
        return 0.0

    def pack(self, params) -> list[np.ndarray]:
        return [params["intercept"], params["coef"].ravel(), np.log(params["noise_variance"])]

    def unpack(self, vec, like) -> tuple[dict[str, np.ndarray], int]:
        K, n = len(like["intercept"]), like["coef"].size
        var = np.maximum(np.exp(vec[K + n : 2 * K + n]), self.min_variance)
        coef = vec[K : K + n].reshape(like["coef"].shape)
        return {"intercept": vec[:K], "coef": coef, "noise_variance": var}, 2 * K + n

    def n_parameters(self, K: int, q: int) -> int:
        return K * (q + 1)

    def mean(self, params, A) -> np.ndarray:
        """Each expert's prediction (n, K)."""
        return A @ self.beta(params).T


class LogisticExperts:
    """K softmax (multinomial logistic) regressions of class labels ``0..n_classes-1``.

    Parameters
    ----------
    n_classes : int
        2 for binary experts (one logit each), more for multinomial ones.
    fit_intercept : bool
    alpha : float
        Ridge penalty on the non-intercept coefficients (MAP; 0 = maximum likelihood).
    bound : DesignBound, optional
        Bound on the design's rows, for faster guarded Newton steps.

    The M-step is one guarded Newton step per expert
    (:func:`~emkit.distributions.softmax.newton_step`), which never lowers the
    expected complete-data log-likelihood: a generalized EM step.
    """

    generalized = True

    def __init__(
        self,
        n_classes: int,
        fit_intercept: bool = True,
        alpha: float = 0.0,
        bound: DesignBound | None = None,
    ):
        self.n_classes = int(n_classes)
        self.fit_intercept = fit_intercept
        self.alpha = float(alpha)
        self.bound = bound
        self.names = ("intercept", "coef")

    def zero_params(self, K: int, q: int, y_scale: float = 1.0) -> dict[str, np.ndarray]:
        M, p = self.n_classes - 1, q - int(self.fit_intercept)
        return {"intercept": np.zeros((K, M)), "coef": np.zeros((K, M, p))}

    def beta(self, params) -> np.ndarray:
        """(K, n_classes - 1, q) coefficients on the design's columns."""
        return join(params, self.fit_intercept)

    def _log_probs(self, params, A) -> np.ndarray:
        """(K, n, n_classes) log class probabilities of every expert."""
        return np.stack([log_softmax(A, b) for b in self.beta(params)])

    def log_prob(self, params, A, y):
        lp = self._log_probs(params, A)
        return lp[:, np.arange(len(y)), y].T.copy(), lp

    def suff_stats(self, A, y, resp, params, cache=None) -> SoftmaxStats:
        lp = self._log_probs(params, A) if cache is None else cache
        onehot = np.zeros((len(y), self.n_classes))
        onehot[np.arange(len(y)), y] = 1.0
        parts = [softmax_stats(A, onehot * resp[:, [k]], lp[k]) for k in range(resp.shape[1])]
        return SoftmaxStats(*(np.stack(leaves) for leaves in zip(*parts, strict=True)))

    def _penalised(self, q: int) -> np.ndarray:
        mask = np.ones(q, bool)
        mask[0] = not self.fit_intercept
        return mask

    def mstep(
        self, stats: SoftmaxStats, params, held=frozenset(), objective=None
    ) -> dict[str, np.ndarray]:
        """One guarded Newton step per expert; ``objective(k, beta_k)`` (expert k's part
        of Q on the data, optional) lets the step halving test Q itself."""
        beta = self.beta(params)
        K, M, q = beta.shape
        free = np.broadcast_to(column_mask(q, self.fit_intercept, held), (M, q))
        new = np.stack(
            [
                newton_step(
                    SoftmaxStats(stats.grad[k], stats.info[k], stats.gram[k]),
                    beta[k],
                    alpha=self.alpha,
                    penalised=self._penalised(q),
                    free=free,
                    bound=self.bound,
                    objective=None if objective is None else partial(objective, k),
                )
                for k in range(K)
            ]
        )
        return split(new, params, self.fit_intercept)

    def log_prior(self, params) -> float:
        return -0.5 * self.alpha * float(np.sum(params["coef"] ** 2))

    def pack(self, params) -> list[np.ndarray]:
        return [params["intercept"].ravel(), params["coef"].ravel()]

    def unpack(self, vec, like) -> tuple[dict[str, np.ndarray], int]:
        m, n = like["intercept"].size, like["coef"].size
        intercept = vec[:m].reshape(like["intercept"].shape)
        return {"intercept": intercept, "coef": vec[m : m + n].reshape(like["coef"].shape)}, m + n

    def n_parameters(self, K: int, q: int) -> int:
        return K * (self.n_classes - 1) * q

    def class_proba(self, params, A) -> np.ndarray:
        """(n, K, n_classes) class probabilities under each expert."""
        return np.exp(self._log_probs(params, A)).transpose(1, 0, 2)


def expert_part(kind: str, **options: Any) -> LinearExperts | LogisticExperts:
    """The experts named ``kind`` ("linear" or "logistic")."""
    return {"linear": LinearExperts, "logistic": LogisticExperts}[kind](**options)
