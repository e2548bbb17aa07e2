"""Convergence, history, the monotonicity certificate, callbacks and the progress bar."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from emkit.engine.protocol import (
    IterationInfo,
    MonotonicityError,
    MonotonicityWarning,
    objective_label,
)

__all__ = ["Monitor"]

_MONOTONE_MODES = {"warn": "warn", "raise": "raise", "off": None, False: None, None: None}


class Monitor:
    """Watches one EM run.

    The objective is the model's (``objective_name``, see
    :class:`~emkit.engine.protocol.EMModel`): the log-likelihood, plus log-prior for
    MAP models (``with_prior``), or the ELBO of variational EM. Messages and the
    progress bar name it.

    Convergence: the run stops when the objective rises by less than ``tol * scale``, where ``scale`` is the number of
    observations, so ``tol`` bounds the change of the *average* log-likelihood per
    observation. A change within round-off of zero counts as zero; a real decrease
    never counts as convergence (it is reported by the monotonicity check instead).

    Round-off: a change counts as a real drop only when it is larger than
    ``monotone_rtol * (|objective| + scale)``.
    """

    def __init__(
        self,
        *,
        max_iter: int,
        tol: float,
        scale: float,
        check_monotone: str | bool | None = "warn",
        monotone_rtol: float = 1e-9,
        callback: Callable[[IterationInfo], Any] | None = None,
        progress: bool = False,
        restart: int = 0,
        n_restarts: int = 1,
        objective_name: str = "loglik",
        with_prior: bool = False,
    ):
        self.max_iter = max_iter
        self.tol = tol
        self.scale = max(float(scale), 1.0)
        self.mode = _MONOTONE_MODES[check_monotone]
        self.monotone_rtol = monotone_rtol
        self.callback = callback
        self.restart = restart
        self.objective_name = objective_name
        self.label = objective_label(objective_name, with_prior=with_prior)
        self.history: list[float] = []
        self.n_iter = 0
        self.n_estep = 0
        self.converged = False
        self.stopped_by_callback = False
        self.initial = math.nan
        self._last = math.nan
        self._stage_start = 0
        #: set by :meth:`load_state`: the next :meth:`start` is the re-evaluation of the
        #: point a checkpoint recorded, not the start of a run
        self.resuming = False
        self._t0 = time.perf_counter()
        self._bar = None
        #: called with the parameters after every recorded step (the checkpoint writer)
        self.on_record: Callable[[Any], None] | None = None
        if progress:
            from tqdm.auto import tqdm

            desc = "EM" if n_restarts == 1 else f"EM {restart + 1}/{n_restarts}"
            self._bar = tqdm(total=max_iter, desc=desc, leave=False, dynamic_ncols=True)

    def new_stage(self) -> None:
        """Start a new stage (annealing): the next value is a fresh starting point.

        ``max_iter`` and convergence apply per stage; ``n_iter`` and ``history`` keep
        counting across stages.
        """
        self._stage_start = self.n_iter
        self.converged = False

    @property
    def stage_iter(self) -> int:
        return self.n_iter - self._stage_start

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this monitor (JSON): counts, history, stage, convergence."""
        return {
            "n_iter": self.n_iter,
            "n_estep": self.n_estep,
            "history": list(self.history),
            "initial": self.initial,
            "stage_start": self._stage_start,
            "converged": bool(self.converged),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Carry on from :meth:`state_dict`'s ``state``, taken after a recorded step.

        The run then starts again at the recorded parameters: its first E-step repeats
        the one the checkpoint was taken after (it is not counted again), and
        :meth:`start` says stop when that step had ended the run or its stage
        (converged, or ``max_iter`` steps), as it did in the uninterrupted run.
        """
        self.history = [float(v) for v in state["history"]]
        self.n_iter = int(state["n_iter"])
        self.n_estep = int(state["n_estep"])
        self.initial = float(state["initial"])
        self._stage_start = int(state.get("stage_start", 0))
        self.converged = bool(state.get("converged", False))
        self.resuming = True

    def roundoff(self, value: float) -> float:
        return self.monotone_rtol * (abs(value) + self.scale)

    def start(self, params: Any, loglik: float, objective: float) -> bool:
        """Record the objective at the starting parameters; True means stop now."""
        self._check_finite(objective)
        if math.isnan(self.initial):
            self.initial = objective
        self._last = objective
        if self.resuming:  # the E-step at the checkpoint's parameters, done again
            self.resuming = False
            self.n_estep -= 1
            ended = self.converged or self.stage_iter >= self.max_iter
            return self._notify(params, loglik, objective, math.nan) or ended
        return self._notify(params, loglik, objective, math.nan)

    def record(self, params: Any, loglik: float, objective: float, reseeded: bool = False) -> bool:
        """Record one completed EM step; True means stop (converged, max_iter or callback).

        ``reseeded`` marks a step whose M-step repaired the parameters: its change is
        neither a monotonicity violation nor a sign of convergence.
        """
        self.n_iter += 1
        self._check_finite(objective)
        change = objective - self._last
        self._last = objective
        self.history.append(objective)
        noise = self.roundoff(objective)
        if reseeded:
            pass
        elif change < -noise:
            self._report_drop(change)
        elif self.tol is not None and change <= self.tol * self.scale:
            # an exact fixed point converges even at tol=0; tol=None runs every step
            self.converged = True
        if self.on_record is not None:
            self.on_record(params)
        stop = self._notify(params, loglik, objective, change)
        return stop or self.converged or self.stage_iter >= self.max_iter

    def _report_drop(self, change: float) -> None:
        algorithm = "variational EM" if self.objective_name == "elbo" else "exact EM"
        msg = (
            f"the {self.label} decreased by {-change:.6g} at iteration {self.n_iter} "
            f"(relative {-change / max(abs(self._last), 1e-300):.3g}); {algorithm} never "
            f"lowers the {self.label}, so the E- or M-step is wrong or numerically unstable"
        )
        if self.mode == "raise":
            self.close()
            raise MonotonicityError(msg)
        if self.mode == "warn":
            warnings.warn(msg, MonotonicityWarning, stacklevel=4)

    def _notify(self, params: Any, loglik: float, objective: float, change: float) -> bool:
        if self._bar is not None:
            if self.n_iter:
                self._bar.update(1)
            # As the verbose report: the log-likelihood itself, or the whole ELBO.
            shown = loglik if self.objective_name == "loglik" else objective
            self._bar.set_postfix({self.objective_name: f"{shown:.6g}"}, refresh=False)
        if self.callback is None:
            return False
        info = IterationInfo(
            iteration=self.n_iter,
            loglik=float(loglik),
            objective=float(objective),
            change=float(change),
            params=params,
            elapsed=time.perf_counter() - self._t0,
            restart=self.restart,
            objective_name=self.objective_name,
        )
        if self.callback(info) is True:
            self.stopped_by_callback = True
            return True
        return False

    def history_array(self) -> np.ndarray:
        return np.asarray(self.history, dtype=np.float64)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _check_finite(self, value: float) -> None:
        if not math.isfinite(value):
            raise FloatingPointError(
                f"the {self.label} is {value} at iteration {self.n_iter}; check the data for "
                "extreme values, or regularise the model (for example increase reg_covar)"
            )
