"""ECME (Liu & Rubin 1994): EM whose M-step is followed by an observed-data step.

ECM (Meng & Rubin 1993) splits the M-step into conditional maximisations (CM-steps)
of the expected complete-data log-likelihood ``Q``. ECME replaces some of them by
conditional maximisations of the observed-data log-likelihood ``L`` itself, which
converge much faster where ``Q`` is a poor stand-in for ``L`` (a t distribution's
degrees of freedom: Liu & Rubin 1995; McLachlan & Peel 2000, 7.6).

The scheme is model-agnostic. After each M-step it asks the model for
``observed_step(params, evaluate)``: parameters whose ``L`` (plus log-prior, for MAP
models) is not lower than at ``params``, found with passes over the data through
``evaluate`` (:class:`DataPasses`), which maps a function of the parameters and a
batch over the data source's batches on the run's executor and sums the results, so
only parameters go out and sums come back. Every step is an EM step or a conditional
maximisation of ``L``, so ``L`` never decreases: the engine's monitor, convergence
test and monotonicity certificate apply to each full cycle, recorded once, and the
extra passes are counted in ``n_estep``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emkit.engine.protocol import unwrap_reseeded
from emkit.engine.schemes import RunContext, Scheme

__all__ = ["ECME", "DataPasses"]


class DataPasses:
    """The data as an observed-data step sees them: sums over all batches.

    ``passes(fn, params)`` runs ``fn(params, batch) -> (pytree, value)`` on every batch
    of the run's data source on its executor and returns the leaf-wise sum of the
    pytrees and the sum of the values; each call is one pass over the data (counted in
    the run's ``n_estep``).
    """

    def __init__(self, ctx: RunContext):
        self._ctx = ctx

    def __call__(self, fn: Callable[[Any, Any], tuple[Any, float]], params: Any):
        ctx = self._ctx
        out = ctx.executor.run_estep(fn, params, ctx.source)
        ctx.monitor.n_estep += 1
        return out

    def roundoff(self, value: float) -> float:
        """Changes of the objective smaller than this, at ``value``, are round-off."""
        return self._ctx.monitor.roundoff(value)


class ECME(Scheme):
    """ECME: the model's M-step, then its ``observed_step``, then a full E-step.

    One cycle: the E-step at the current parameters; the M-step (``model.mstep``,
    whose CM-steps maximise ``Q``); then ``model.observed_step(params, evaluate)``,
    the CM-step(s) that maximise the observed-data log-likelihood given the rest. A
    model without ``observed_step`` is a ``TypeError``.
    """

    def run(self, ctx: RunContext, params: Any) -> tuple[Any, float, float]:
        model, monitor = ctx.model, ctx.monitor
        observed_step = getattr(model, "observed_step", None)
        if observed_step is None:
            raise TypeError(
                f"{type(model).__name__} does not support ECME: it needs a method "
                "observed_step(params, evaluate)"
            )
        passes = DataPasses(ctx)
        stats, loglik, objective = ctx.evaluate(params)
        stop = monitor.start(params, loglik, objective) or monitor.max_iter == 0
        stop = stop or monitor.stopped_by_callback
        while not stop:
            params, reseeded = unwrap_reseeded(model.mstep(stats, params))
            params = observed_step(params, passes)
            stats, loglik, objective = ctx.evaluate(params)
            stop = monitor.record(params, loglik, objective, reseeded=reseeded)
        return params, loglik, objective
