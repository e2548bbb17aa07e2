"""The weights part of a mixture: how likely each component is before seeing the data.

A mixture is a weights part plus a component part (:mod:`emkit.models.mixture.model`).
:class:`ConstantWeights` is the classic finite mixture: one probability per component,
the same for every observation, with an optional symmetric Dirichlet prior (MAP-EM). A
gate that depends on covariates (a softmax of the inputs, for mixtures of experts) is
another weights part with the same four methods.
"""

from __future__ import annotations

import numpy as np

from emkit.distributions.conditional import column_mask, join, split
from emkit.distributions.softmax import log_softmax, newton_step, softmax_stats

__all__ = ["ConstantWeights", "SoftmaxGate"]


class ConstantWeights:
    """Mixture weights ``pi_k``, one per component, with a Dirichlet(alpha) prior.

    Parameters
    ----------
    concentration : float, default 1.0
        Symmetric Dirichlet pseudo-count ``alpha >= 1`` (1 = no prior: maximum likelihood).
    """

    def __init__(self, concentration: float = 1.0):
        self.concentration = float(concentration)

    def log_weights(self, weights: np.ndarray) -> np.ndarray:
        """``log pi_k`` (K,); a zero weight gives ``-inf``, a component never chosen."""
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(weights, dtype=np.float64))

    def mstep(self, nk: np.ndarray) -> np.ndarray:
        """The (MAP) weights from the summed responsibilities ``nk`` (K,)."""
        pseudo = np.asarray(nk, dtype=np.float64) + (self.concentration - 1.0)
        return pseudo / pseudo.sum()

    def log_prior(self, weights: np.ndarray) -> float:
        """Log-density of the Dirichlet prior, up to its constant."""
        if self.concentration == 1.0:
            return 0.0
        return (self.concentration - 1.0) * float(np.sum(np.log(weights)))

    def pack(self, weights: np.ndarray) -> np.ndarray:
        """Centred log weights: an unconstrained vector (for SQUAREM)."""
        log_w = np.log(np.asarray(weights, dtype=np.float64))
        return log_w - log_w.mean()

    def unpack(self, vec: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`pack` (a softmax); raises ``ValueError`` if a weight underflows."""
        with np.errstate(over="ignore", under="ignore"):
            weights = np.exp(vec - vec.max())
            weights /= weights.sum()
        if not np.all(weights > 0):
            raise ValueError("the parameter vector gives a zero weight")
        return weights


class SoftmaxGate:
    """A gate on the covariates: ``P(z = k | a) = softmax_k(gate a)`` (Jordan & Jacobs 1994).

    The weights part of a mixture of experts. ``params["gate_intercept"]`` (K - 1,)
    and ``params["gate_coef"]`` (K - 1, p) give the logits of the first K - 1 experts;
    the last expert is the reference (logit 0). The M-step fits the gate to the
    responsibilities (soft labels) by one guarded Newton (IRLS) step
    (:func:`emkit.distributions.softmax.newton_step`), which never lowers the expected
    complete-data log-likelihood: a generalized EM step. ``alpha`` is a ridge penalty on
    the non-intercept gate coefficients (MAP-EM).
    """

    generalized = True
    names = ("gate_intercept", "gate_coef")

    def __init__(self, fit_intercept: bool = True, alpha: float = 0.0, bound=None):
        self.fit_intercept = fit_intercept
        self.alpha = float(alpha)
        self.bound = bound

    def zero_params(self, K: int, q: int) -> dict[str, np.ndarray]:
        p = q - int(self.fit_intercept)
        return {"gate_intercept": np.zeros(K - 1), "gate_coef": np.zeros((K - 1, p))}

    def theta(self, params) -> np.ndarray:
        """(K - 1, q) gate coefficients on the design's columns."""
        return join(params, self.fit_intercept, "gate_")

    def log_weights(self, params, A: np.ndarray) -> np.ndarray:
        """``log P(z = k | a_i)``, shape (n, K)."""
        return log_softmax(A, self.theta(params))

    def suff_stats(self, A, resp, params, cache=None):
        """Gradient, negative Hessian and Gram matrix of the gate's part of Q (additive)."""
        log_w = self.log_weights(params, A) if cache is None else cache
        return softmax_stats(A, resp, log_w)

    def _penalised(self, q: int) -> np.ndarray:
        mask = np.ones(q, bool)
        mask[0] = not self.fit_intercept
        return mask

    def mstep(self, stats, params, held=frozenset(), objective=None) -> dict[str, np.ndarray]:
        """One guarded Newton step; ``objective`` (the gate's Q on the data, optional) lets
        the step halving test Q itself when the bounds do not certify the full step."""
        gate = self.theta(params)
        q = gate.shape[1]
        free = np.broadcast_to(column_mask(q, self.fit_intercept, held, "gate_"), gate.shape)
        step = newton_step(
            stats,
            gate,
            alpha=self.alpha,
            penalised=self._penalised(q),
            free=free,
            bound=self.bound,
            objective=objective,
        )
        return split(step, params, self.fit_intercept, "gate_")

    def log_prior(self, params) -> float:
        return -0.5 * self.alpha * float(np.sum(params["gate_coef"] ** 2))

    def pack(self, params) -> list[np.ndarray]:
        return [params["gate_intercept"], params["gate_coef"].ravel()]

    def unpack(self, vec, like) -> tuple[dict[str, np.ndarray], int]:
        m, n = like["gate_intercept"].size, like["gate_coef"].size
        coef = vec[m : m + n].reshape(like["gate_coef"].shape)
        return {"gate_intercept": vec[:m], "gate_coef": coef}, m + n

    def n_parameters(self, K: int, q: int) -> int:
        return (K - 1) * q
