"""What a model is, what a fit returns, and the warnings the engine raises."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "EMModel",
    "EMResult",
    "IterationInfo",
    "MonotonicityError",
    "MonotonicityWarning",
    "Reseeded",
]


@runtime_checkable
class EMModel(Protocol):
    """Anything with these three methods can be fitted by :func:`emkit.em`.

    ``params`` and ``stats`` are pytrees of NumPy arrays (dict, tuple, NamedTuple or
    dataclass). ``stats`` must be *additive*: the statistics of a data set are the
    leaf-wise sum of the statistics of its parts, so the engine can split the E-step
    over batches, threads or machines.

    A model may also define:

    * ``log_prior(params) -> float``: MAP-EM; the engine then maximises
      log-likelihood + log-prior and checks that sum for monotonicity;
    * ``generalized = True``: the M-step only increases the expected complete-data
      log-likelihood instead of maximising it (generalized EM, Dempster, Laird & Rubin
      1977, and ECM, Meng & Rubin 1993). Such steps still never lower the objective,
      so the engine treats them like EM steps and the monotonicity check applies;
    * ``estep_variant(params, batch, *, beta, hard)``: tempered and hard E-steps, for
      deterministic annealing and classification EM;
    * ``pack(params)`` / ``unpack(vector, like)``: an unconstrained flat
      parametrisation, used by SQUAREM;
    * ``perturb(params, rng)``: a small random move, used between annealing stages.
    """

    def init_params(self, data: Any, rng: np.random.Generator) -> Any:
        """Starting parameters, drawn with ``rng`` where randomness is needed."""

    def estep(self, params: Any, batch: Any) -> tuple[Any, float]:
        """Expected sufficient statistics of ``batch`` and its observed-data log-likelihood."""

    def mstep(self, stats: Any, params: Any) -> Any:
        """New parameters from the summed statistics (``params`` were used in the E-step)."""


class MonotonicityWarning(RuntimeWarning):
    """The objective went down during EM, beyond round-off.

    Exact EM never lowers the observed-data log-likelihood (plus log-prior for
    MAP-EM), so a real drop means a wrong E- or M-step, or numerical trouble.
    """


class MonotonicityError(ArithmeticError):
    """Raised instead of :class:`MonotonicityWarning` when ``check_monotone="raise"``."""


@dataclasses.dataclass(frozen=True)
class IterationInfo:
    """What a callback receives after each EM iteration.

    Attributes
    ----------
    iteration : int
        Number of completed EM steps (M-steps).
    loglik : float
        Observed-data log-likelihood of ``params``.
    objective : float
        ``loglik`` plus the model's log-prior (equal to ``loglik`` without a prior).
    change : float
        ``objective`` minus the previous one (``nan`` at iteration 0).
    params : pytree
        The current parameters.
    elapsed : float
        Seconds since the start of this run.
    restart : int
        Index of the restart (0 to ``n_init - 1``).
    """

    iteration: int
    loglik: float
    objective: float
    change: float
    params: Any
    elapsed: float
    restart: int = 0


@dataclasses.dataclass
class EMResult:
    """The outcome of :func:`emkit.em`.

    Attributes
    ----------
    params : pytree
        The fitted parameters (the best over restarts).
    loglik : float
        Total observed-data log-likelihood of ``params`` over the whole data.
    history : ndarray of shape (n_iter,)
        Objective after each EM step (log-likelihood, plus log-prior for MAP models);
        ``history[-1]`` is the objective of ``params``.
    n_iter : int
        Number of EM steps performed.
    converged : bool
        Whether the convergence criterion was met before ``max_iter``.
    time : float
        Wall time of the whole fit in seconds (all restarts).
    objective : float
        ``loglik`` plus the log-prior of ``params`` (equal to ``loglik`` without a prior).
    initial_loglik : float
        Objective at the starting parameters of the kept run.
    n_estep : int
        Number of full E-steps (passes over the data) of the kept run.
    restarts : list of float
        Final objective of every restart, in order.
    best_restart : int
        Index of the kept restart.
    """

    params: Any
    loglik: float
    history: np.ndarray
    n_iter: int
    converged: bool
    time: float = 0.0
    objective: float = float("nan")
    initial_loglik: float = float("nan")
    n_estep: int = 0
    restarts: list[float] = dataclasses.field(default_factory=list)
    best_restart: int = 0


class Reseeded:
    """Returned by an M-step that had to repair its parameters (for example re-seed an
    empty mixture component). The step is then not an EM step: the engine does not take
    its change of log-likelihood for convergence or for a monotonicity violation.
    """

    __slots__ = ("params",)

    def __init__(self, params: Any):
        self.params = params


def unwrap_reseeded(params: Any) -> tuple[Any, bool]:
    """(params, whether the M-step re-seeded them)."""
    if isinstance(params, Reseeded):
        return params.params, True
    return params, False
