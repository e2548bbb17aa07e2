"""Iteration schemes: how one run moves from the starting parameters to the fit.

A scheme owns the inner loop of one run; everything model-specific stays behind
``model.estep``/``model.mstep`` and everything bookkeeping behind the ``Monitor``.
Plain EM lives here; accelerated, online, hard and annealed EM are further schemes
(or wrappers of the E-step) that plug into the same driver.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from emkit.data.sources import DataSource
from emkit.engine.executors import Executor
from emkit.engine.monitor import Monitor
from emkit.engine.protocol import unwrap_reseeded

__all__ = ["PlainEM", "RunContext", "Scheme"]


class RunContext:
    """What a scheme needs: the model, the data, where E-steps run, and the monitor."""

    def __init__(
        self,
        model: Any,
        source: DataSource,
        executor: Executor,
        monitor: Monitor,
        *,
        beta: float = 1.0,
        hard: bool = False,
        random_state: np.random.Generator | None = None,
    ):
        self.model = model
        self.source = source
        self.executor = executor
        self.monitor = monitor
        #: the restart's own generator (online EM shuffles with it)
        self.rng = random_state if random_state is not None else np.random.default_rng(0)
        self._log_prior = getattr(model, "log_prior", None)
        #: what a scheme keeps between steps, by name (pytrees of arrays and numbers),
        #: for the checkpoint; a scheme puts it here before ``monitor.record`` and reads
        #: it back with :meth:`resumed` when it starts (a wrapper and the scheme it
        #: wraps use different names)
        self.scheme_state: dict[str, Any] = {}
        self._resume: Any = None
        self.set_posterior(beta=beta, hard=hard)

    def resumed(self, name: str, default: Any) -> Any:
        """The scheme state ``name`` saved in the checkpoint this run resumes from, in the
        structure of ``default``; ``default`` when not resuming, and at every later call
        for the same name (a scheme run again, at the next annealing stage, starts afresh)."""
        return default if self._resume is None else self._resume(name, default)

    def set_posterior(self, *, beta: float = 1.0, hard: bool = False) -> None:
        """Choose the E-step: exact (beta=1), tempered (0 < beta < 1) or hard (argmax).

        Tempered and hard E-steps go through the model's optional
        ``estep_variant(params, batch, beta=..., hard=...)``, which returns the
        statistics and the objective those E-steps increase: the tempered
        log-likelihood ``(1/beta) sum_i log sum_z p(x_i, z)^beta``, or the
        classification log-likelihood ``sum_i max_z log p(x_i, z)``.
        """
        self.beta, self.hard = float(beta), bool(hard)
        if self.beta == 1.0 and not self.hard:
            self._estep = self.model.estep
            return
        variant = getattr(self.model, "estep_variant", None)
        if variant is None:
            what = "hard (classification) EM" if hard else "deterministic annealing"
            raise TypeError(
                f"{type(self.model).__name__} does not support {what}: it needs a method "
                "estep_variant(params, batch, *, beta, hard)"
            )
        beta_, hard_ = self.beta, self.hard
        self._estep = lambda params, batch: variant(params, batch, beta=beta_, hard=hard_)

    def log_prior(self, params: Any) -> float:
        return 0.0 if self._log_prior is None else float(self._log_prior(params))

    def evaluate(self, params: Any) -> tuple[Any, float, float]:
        """One full E-step: (summed statistics, log-likelihood, objective) at ``params``."""
        estep = self._estep
        stats, loglik = self.executor.run_estep(estep, params, self.source)
        self.monitor.n_estep += 1
        return stats, loglik, loglik + self.log_prior(params)


class Scheme(abc.ABC):
    """One run of an EM-type algorithm from given starting parameters."""

    @abc.abstractmethod
    def run(self, ctx: RunContext, params: Any) -> tuple[Any, float, float]:
        """Iterate; return (final params, their log-likelihood, their objective)."""


class PlainEM(Scheme):
    """Dempster, Laird & Rubin (1977): alternate full E-steps and M-steps.

    The returned parameters always come with their own log-likelihood: after the last
    M-step there is one more E-step, which is also the convergence check.
    """

    def run(self, ctx: RunContext, params: Any) -> tuple[Any, float, float]:
        stats, loglik, objective = ctx.evaluate(params)
        stop = ctx.monitor.start(params, loglik, objective) or ctx.monitor.max_iter == 0
        stop = stop or ctx.monitor.stopped_by_callback
        while not stop:
            params, reseeded = unwrap_reseeded(ctx.model.mstep(stats, params))
            stats, loglik, objective = ctx.evaluate(params)
            stop = ctx.monitor.record(params, loglik, objective, reseeded=reseeded)
        return params, loglik, objective
