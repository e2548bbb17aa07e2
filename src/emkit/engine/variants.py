"""EM variants that need only a small hook from the model: hard EM and annealing.

Both change the E-step's posterior through the model's optional
``estep_variant(params, batch, *, beta, hard)`` and keep every other part of the
engine (convergence, monotonicity certificate, restarts, batches).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from emkit.engine.schemes import RunContext, Scheme

__all__ = ["DEFAULT_SCHEDULE", "Annealed", "HardEM", "check_schedule"]

#: Inverse temperatures of the default annealing schedule (Ueda & Nakano 1998 use a
#: geometric rise; this one starts well inside the "one cluster" phase).
DEFAULT_SCHEDULE = (0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0)


def check_schedule(anneal: Any) -> tuple[float, ...]:
    """Validate an annealing schedule: rising inverse temperatures in (0, 1], ending at 1."""
    if isinstance(anneal, str):
        if anneal != "default":
            raise ValueError(
                f"anneal must be 'default' or a list of inverse temperatures, got {anneal!r}"
            )
        return DEFAULT_SCHEDULE
    if not isinstance(anneal, Sequence) and not isinstance(anneal, np.ndarray):
        raise TypeError("anneal must be 'default' or a sequence of inverse temperatures")
    betas = tuple(float(b) for b in anneal)
    if not betas:
        raise ValueError("the annealing schedule is empty")
    if not all(0.0 < b <= 1.0 for b in betas):
        raise ValueError(f"inverse temperatures must lie in (0, 1], got {list(betas)}")
    if any(b2 < b1 for b1, b2 in itertools.pairwise(betas)):
        raise ValueError(f"inverse temperatures must not decrease, got {list(betas)}")
    if betas[-1] != 1.0:
        raise ValueError(
            f"an annealing schedule must end at inverse temperature 1 (plain EM), got {betas[-1]}"
        )
    return betas


class HardEM(Scheme):
    """Classification EM (Celeux & Govaert 1992): the E-step takes each sample's most
    probable hidden state (a one-hot posterior).

    It maximises the classification log-likelihood ``sum_i max_z log p(x_i, z)``, which
    never decreases; the monotonicity check and ``history`` use that objective, while
    the returned ``loglik`` is the observed-data log-likelihood of the result. For a
    spherical Gaussian mixture with equal fixed weights and variances this is k-means.
    """

    def __init__(self, inner: Scheme):
        self.inner = inner

    def __repr__(self) -> str:
        return f"HardEM({_name(self.inner)})"

    def run(self, ctx: RunContext, params: Any) -> tuple[Any, float, float]:
        ctx.set_posterior(hard=True)
        try:
            params = self.inner.run(ctx, params)[0]
        finally:
            ctx.set_posterior()
        # What is returned is the observed-data log-likelihood of the result (one more
        # pass); the history holds the classification log-likelihood.
        _, loglik, objective = ctx.evaluate(params)
        return params, loglik, objective


class Annealed(Scheme):
    """Deterministic annealing EM (Ueda & Nakano 1998, Neural Networks 11(2)).

    For each inverse temperature ``beta`` of the schedule the E-step posterior is
    proportional to ``p(x, z)^beta``; EM runs at that temperature until it converges
    (or ``max_iter`` steps), then the next, warmer stage starts from its result. The
    last stage (beta = 1) is plain EM. Each stage increases its own objective, the
    tempered log-likelihood ``(1/beta) sum_i log sum_z p(x_i, z)^beta``; the monitor
    starts afresh at each stage, and ``history`` holds every stage's values.

    At high temperature the components of a mixture become identical, and identical
    components stay identical under EM; so, as in deterministic annealing for
    clustering (Rose 1998), each new stage starts from slightly perturbed parameters
    when the model offers ``perturb(params, rng)``.

    Checkpoints keep the stage (the index of its inverse temperature) in
    ``ctx.scheme_state["stage"]``, and the monitor keeps where the stage began; a
    resumed run carries on inside that stage (no new perturbation), then goes on
    through the schedule as the uninterrupted run does.
    """

    def __init__(self, inner: Scheme, schedule: Sequence[float]):
        self.inner = inner
        self.schedule = check_schedule(schedule)

    def __repr__(self) -> str:
        return f"Annealed({_name(self.inner)}, schedule={list(self.schedule)})"

    def run(self, ctx: RunContext, params: Any) -> tuple[Any, float, float]:
        monitor = ctx.monitor
        result = None
        first = int(ctx.resumed("stage", 0)) if monitor.resuming else 0
        try:
            perturb = getattr(ctx.model, "perturb", None)
            for stage in range(first, len(self.schedule)):
                ctx.set_posterior(beta=self.schedule[stage])
                ctx.scheme_state["stage"] = stage
                if not monitor.resuming:  # a resumed stage is under way
                    monitor.new_stage()
                    if stage and perturb is not None:
                        params = perturb(params, ctx.rng)
                result = self.inner.run(ctx, params)
                params = result[0]
                if monitor.stopped_by_callback:
                    break
        finally:
            ctx.set_posterior()
        return result


def _name(scheme: Scheme) -> str:
    """A wrapped scheme in a wrapper's repr (which a checkpoint's fingerprint compares):
    its own repr when it has one (its settings), else its class name."""
    if type(scheme).__repr__ is object.__repr__:
        return type(scheme).__qualname__
    return repr(scheme)
