"""Conditional mixtures as pure EM functions: mixtures of regressions and of experts.

Generative model, for a row ``a_i`` of the design (covariates, with a leading column
of ones for an intercept)::

    z_i | a_i ~ Categorical(pi(a_i))            the weights part
    y_i | a_i, z_i = k ~ p_k(y | a_i)           the component part (an expert)

As :class:`~emkit.models.mixture.model.MixtureModel`, a mixture is a weights part plus
a component part. The weights part is :class:`ConstantPart` (the classic weights
``pi_k``, through :class:`~emkit.models.mixture.weights.ConstantWeights`: a mixture
of regressions) or :class:`~emkit.models.mixture.weights.SoftmaxGate` (a softmax of
the covariates: a mixture of experts); the component part is a conditional
distribution of :mod:`emkit.distributions.conditional` (linear-Gaussian or logistic
experts). The E-step is the mixture's: log-space posteriors of the components, each
part's statistics weighted by them; the M-step is each part's, given the other.

``params`` is a dict of arrays named as the estimators' init dicts (``"weights"`` or
``"gate_intercept"`` and ``"gate_coef"``; ``"intercept"``, ``"coef"``, and
``"noise_variance"`` for linear experts), so that ``hold`` and the engine's ``fixed``
take those names; data batches are ``(A, y, sample_weight or
None)``. When a part's M-step is only an improving step (the gate's and the logistic
experts' guarded Newton steps), the model is ``generalized`` (GEM): the engine's
monotonicity check still applies.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np

from emkit._logspace import log_normalize, posterior_in_place
from emkit.distributions.conditional import LogisticExperts
from emkit.distributions.softmax import log_softmax
from emkit.models.init import initial_responsibilities
from emkit.models.mixture.weights import ConstantWeights, SoftmaxGate

__all__ = ["ConditionalMixtureModel", "ConditionalStats", "ConstantPart"]


class ConditionalStats(NamedTuple):
    nk: np.ndarray  # (K,) summed responsibilities (times sample weights)
    weights: Any  # the weights part's statistics
    components: Any  # the experts' statistics


class ConstantPart:
    """Constant mixture weights as a weights part of a conditional mixture (the same
    M-step as every other mixture: :class:`ConstantWeights`)."""

    generalized = False
    names = ("weights",)

    def __init__(self, concentration: float = 1.0):
        self.weights = ConstantWeights(concentration)

    def zero_params(self, K: int, q: int) -> dict[str, np.ndarray]:
        return {"weights": np.full(K, 1.0 / K)}

    def log_weights(self, params, A) -> np.ndarray:
        return self.weights.log_weights(params["weights"])

    def suff_stats(self, A, resp, params, cache=None) -> np.ndarray:
        return resp.sum(axis=0)

    def mstep(self, nk, params, held=frozenset()) -> dict[str, np.ndarray]:
        return {} if "weights" in held else {"weights": self.weights.mstep(nk)}

    def log_prior(self, params) -> float:
        return self.weights.log_prior(params["weights"])

    def pack(self, params) -> list[np.ndarray]:
        return [self.weights.pack(params["weights"])]

    def unpack(self, vec, like) -> tuple[dict[str, np.ndarray], int]:
        K = len(like["weights"])
        return {"weights": self.weights.unpack(vec[:K])}, K

    def n_parameters(self, K: int, q: int) -> int:
        return K - 1


class ConditionalMixtureModel:
    """EM model of a mixture of ``components`` (K experts) with weights part ``weights``.

    Parameters
    ----------
    weights : ConstantPart or SoftmaxGate
    components : LinearExperts or LogisticExperts
    n_components : int
    init : str, default "kmeans++"
        How ``init_params`` starts: responsibilities from one of
        :data:`emkit.models.init.INIT_METHODS` on the standardised covariates and
        response side by side, then the M-step from them.
    held : collection of str
        Parameters kept at their values by the M-step (see :meth:`hold`).
    data : tuple (A, y, sample_weight), optional
        The whole data, when an in-memory fit has them: the step halving of the gate
        and of logistic experts then tests Q on them where the bounds do not certify a
        Newton step (see
        :func:`emkit.distributions.softmax.newton_step`). Without them the M-step uses
        the statistics only. Give them only to runs with exact E-steps (not
        online, hard or annealed EM): the steps on the data use the exact posterior.
    gate_steps : int, default 1
        Newton steps of the gate per M-step when ``data`` are given (one otherwise).
    """

    def __init__(
        self,
        weights,
        components,
        n_components: int,
        init="kmeans++",
        held=(),
        data=None,
        gate_steps: int = 1,
    ):
        self.data = data
        self.gate_steps = gate_steps
        self.weights = weights
        self.components = components
        self.n_components = n_components
        self.init = init
        self.held = frozenset(held)
        self.generalized = bool(weights.generalized or components.generalized)

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names ``hold`` accepts."""
        return self.weights.names + self.components.names

    def hold(self, names) -> ConditionalMixtureModel:
        """A copy whose M-step keeps the parameters ``names`` at their values and
        maximises (or, for a GEM part, improves) the others given them."""
        names = frozenset([names] if isinstance(names, str) else names)
        unknown = names - set(self.names)
        if unknown:
            raise ValueError(
                f"cannot hold {sorted(unknown)}: this model's parameters are {list(self.names)}"
            )
        model = copy.copy(self)
        model.held = self.held | names
        return model

    # ------------------------------------------------------------------ the three steps
    def init_params(self, data: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Starting parameters: responsibilities by ``init``, then the M-step from them."""
        A, y, w = data
        start = 1 if getattr(self.components, "fit_intercept", False) else 0
        response = y[:, None] if y.dtype.kind == "f" else np.eye(int(y.max()) + 1)[y]
        features = np.column_stack([A[:, start:], response])
        sd = features.std(axis=0)
        features = (features - features.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        resp = initial_responsibilities(self.init, features, w, self.n_components, rng)
        return self.params_from_responsibilities(data, resp)

    def estep(self, params, batch) -> tuple[ConditionalStats, float]:
        return self.estep_variant(params, batch)

    def estep_variant(self, params, batch, *, beta: float = 1.0, hard: bool = False):
        """E-step with exact (beta=1), tempered (beta < 1) or hard posteriors."""
        A, y, w = batch
        log_w = self.weights.log_weights(params, A)
        log_p, cache = self.components.log_prob(params, A, y)
        resp = log_p + log_w
        rows = posterior_in_place(resp, beta, hard)
        if w is not None:
            resp *= w[:, None]
            value = float(np.dot(w, rows))
        else:
            value = float(np.sum(rows))
        return self._stats(A, y, resp, params, log_w, cache), value

    def _stats(self, A, y, resp, params, log_w=None, cache=None) -> ConditionalStats:
        w_stats = self.weights.suff_stats(A, resp, params, np.broadcast_to(log_w, resp.shape))
        c_stats = self.components.suff_stats(A, y, resp, params, cache)
        return ConditionalStats(resp.sum(axis=0), w_stats, c_stats)

    def mstep(self, stats: ConditionalStats, params) -> dict[str, np.ndarray]:
        nk = np.asarray(stats.nk, dtype=np.float64)
        total = nk.sum()
        if not total > 0:
            raise ValueError("the responsibilities sum to zero: every sample weight is zero")
        empty = ~(nk > total * 1e-12)
        if empty.any():
            raise ValueError(
                f"mixture component(s) {np.flatnonzero(empty).tolist()} lost every sample "
                "(zero total responsibility); decrease n_components, or try another init or "
                "random_state"
            )
        new = dict(params)
        resp = None if self.data is None else self._posterior_once(params)
        if resp is not None and isinstance(self.weights, SoftmaxGate):
            new.update(self._gate_steps(stats.weights, params, resp))
        else:
            new.update(self.weights.mstep(stats.weights, params, self.held))
        if resp is not None and isinstance(self.components, LogisticExperts):
            A, y, _ = self.data
            rows = np.arange(len(y))

            def expert_q(k: int, theta: np.ndarray) -> float:
                return float(resp()[:, k] @ log_softmax(A, theta)[rows, y])

            new.update(self.components.mstep(stats.components, params, self.held, expert_q))
        else:
            new.update(self.components.mstep(stats.components, params, self.held))
        for name in self.held:  # held exactly (the parts leave them as they were anyway)
            new[name] = params[name]
        return new

    def _posterior_once(self, params):
        """A function giving the (weighted) posterior at ``params`` on ``data``, computed
        at its first call only (many M-steps never need it)."""
        A, y, w = self.data
        cache: list[np.ndarray] = []

        def resp() -> np.ndarray:
            if not cache:
                r = self.posterior(params, A, y)[0]
                cache.append(r if w is None else r * w[:, None])
            return cache[0]

        return resp

    def _gate_steps(self, stats, params, resp) -> dict[str, np.ndarray]:
        """``gate_steps`` guarded Newton (IRLS) steps of the gate on the data: the first
        from the E-step's statistics, the others from statistics of the data at the
        previous step with the responsibilities at ``params`` held (each never lowers
        the gate's Q, so the M-step is a GEM step whatever their number)."""
        A = self.data[0]

        def objective(theta: np.ndarray) -> float:
            return float(np.sum(resp() * log_softmax(A, theta)))

        new = self.weights.mstep(stats, params, self.held, objective)
        for _ in range(self.gate_steps - 1):
            current = {**params, **new}
            log_w = self.weights.log_weights(current, A)
            step_stats = self.weights.suff_stats(A, resp(), current, log_w)
            new = self.weights.mstep(step_stats, current, self.held, objective)
        return new

    # ------------------------------------------------------------------ engine hooks
    def __getattr__(self, name: str) -> Any:
        # MAP-EM only with a penalty or a prior (otherwise the objective is the
        # log-likelihood itself); online EM re-expresses statistics when the parts can.
        if name == "log_prior" and self._has_prior():
            return self._log_prior
        if name == "shift_stats" and self._can_shift():
            return self._shift_stats
        raise AttributeError(name)

    def _has_prior(self) -> bool:
        w, c = self.weights, self.components
        return bool(getattr(w, "alpha", 0.0) or getattr(c, "alpha", 0.0)) or (
            isinstance(w, ConstantPart) and w.weights.concentration != 1.0
        )

    def _log_prior(self, params) -> float:
        return float(self.weights.log_prior(params) + self.components.log_prior(params))

    def _can_shift(self) -> bool:
        return isinstance(self.weights, ConstantPart) and hasattr(self.components, "shift_stats")

    def _shift_stats(self, stats: ConditionalStats, old, new) -> ConditionalStats:
        return stats._replace(components=self.components.shift_stats(stats.components, old, new))

    def perturb(self, params, rng: np.random.Generator):
        """A small random move between annealing stages: at high temperature the
        components merge, and identical components stay identical without one. The
        intercepts move by a quarter of a noise standard deviation (linear experts) or a
        quarter of a logit; held parameters stay."""
        out = dict(params)
        K = self.n_components
        sd = np.sqrt(params["noise_variance"]) if "noise_variance" in params else np.ones(K)
        if "intercept" not in self.held:
            shape = np.shape(params["intercept"])
            scale = sd.reshape((K,) + (1,) * (len(shape) - 1))
            out["intercept"] = params["intercept"] + 0.25 * scale * rng.standard_normal(shape)
        if "gate_intercept" in params and "gate_intercept" not in self.held:
            out["gate_intercept"] = params["gate_intercept"] + 0.25 * rng.standard_normal(K - 1)
        return out

    def pack(self, params) -> np.ndarray:
        """All parameters as one unconstrained vector (for SQUAREM)."""
        return np.concatenate(self.weights.pack(params) + self.components.pack(params))

    def unpack(self, vec: np.ndarray, like) -> dict[str, np.ndarray]:
        """Inverse of :meth:`pack`; ``ValueError`` for a vector of invalid parameters."""
        vec = np.asarray(vec, dtype=np.float64)
        if not np.all(np.isfinite(vec)):
            raise ValueError("the parameter vector has non-finite entries")
        out, n = self.weights.unpack(vec, like)
        rest, _ = self.components.unpack(vec[n:], like)
        return {**out, **rest}

    # ------------------------------------------------------------------ helpers
    def zero_params(self, q: int, y_scale: float = 1.0) -> dict[str, np.ndarray]:
        K = self.n_components
        return {
            **self.weights.zero_params(K, q),
            **self.components.zero_params(K, q, y_scale),
        }

    def params_from_responsibilities(self, data, resp, n_steps: int = 3):
        """Parameters fitted to given responsibilities (N, K): ``n_steps`` M-steps from
        zero coefficients with the responsibilities fixed (the first is exact for linear
        experts; the others refine the residual statistics and the Newton steps)."""
        A, y, w = data
        r = resp if w is None else resp * w[:, None]
        y_scale = float(np.var(y)) if y.dtype.kind == "f" else 1.0
        params = self.zero_params(A.shape[1], y_scale if y_scale > 0 else 1.0)
        free = ConditionalMixtureModel(self.weights, self.components, self.n_components, data=None)
        for _ in range(n_steps):
            log_w = self.weights.log_weights(params, A)
            cache = self.components.log_prob(params, A, y)[1]
            params = free.mstep(free._stats(A, y, r, params, log_w, cache), params)
        return params

    def log_joint(self, params, A, y) -> np.ndarray:
        """``log pi_k(a) + log p_k(y | a)``, shape (N, K)."""
        log_p = self.components.log_prob(params, A, y)[0]
        return log_p + self.weights.log_weights(params, A)

    def posterior(self, params, A, y) -> tuple[np.ndarray, np.ndarray]:
        """Responsibilities (N, K) and log-likelihood per row (N,)."""
        resp = self.log_joint(params, A, y)
        return resp, log_normalize(resp)

    def gate(self, params, A) -> np.ndarray:
        """Prior probabilities of the components given the covariates, (N, K)."""
        return np.exp(
            np.broadcast_to(self.weights.log_weights(params, A), (len(A), self.n_components))
        )

    def n_parameters(self, q: int) -> int:
        K = self.n_components
        return self.weights.n_parameters(K, q) + self.components.n_parameters(K, q)
