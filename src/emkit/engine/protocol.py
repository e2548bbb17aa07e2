"""What a model is, what it maximises, what a fit returns, and the warnings the engine raises."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np

# The warnings live below the engine (emkit.exceptions, with emkit's other warnings);
# they are re-exported here, where the engine's users have always found them.
from emkit.exceptions import MonotonicityError, MonotonicityWarning

__all__ = [
    "OBJECTIVES",
    "EMModel",
    "EMResult",
    "IterationInfo",
    "MonotonicityError",
    "MonotonicityWarning",
    "Reseeded",
    "objective_label",
    "objective_name",
]

#: The objectives a model may declare (``model.objective``), with the words the engine
#: uses for them in messages.
OBJECTIVES: dict[str, str] = {"loglik": "log-likelihood", "elbo": "ELBO"}


@runtime_checkable
class EMModel(Protocol):
    """Anything with these three methods can be fitted by :func:`emkit.em`.

    ``params`` and ``stats`` are pytrees of NumPy arrays (dict, tuple, NamedTuple or
    dataclass). ``stats`` must be *additive*: the statistics of a data set are the
    leaf-wise sum of the statistics of its parts, so the engine can split the E-step
    over batches, threads or machines.

    A model may also define:

    * ``objective``: the name of the quantity its ``estep`` reports and EM increases,
      one of :data:`OBJECTIVES`:

      - ``"loglik"`` (the default when the attribute is absent): the observed-data
        log-likelihood of the batch; exact EM never lowers it;
      - ``"elbo"``: variational EM (LDA, variational mixtures); the batch's part of the
        evidence lower bound, which each variational E-step and M-step maximises over
        its own factors, so it never decreases either.

      The engine names the objective after it everywhere it speaks of it:
      ``EMResult.objective_name``, ``IterationInfo.objective_name``, the
      monotonicity message and the progress bar. Any other value is a ``ValueError``;
    * ``log_prior(params) -> float``: MAP-EM; the engine then maximises
      log-likelihood + log-prior and checks that sum for monotonicity. With
      ``objective = "elbo"`` it holds the terms of the bound that do not split over
      observations (for example minus the KL divergence of the global variational
      factors from their priors), added once per pass;
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
        """Expected sufficient statistics of ``batch`` and its objective (by default its
        observed-data log-likelihood; see ``objective``)."""

    def mstep(self, stats: Any, params: Any) -> Any:
        """New parameters from the summed statistics (``params`` were used in the E-step)."""


@dataclasses.dataclass(frozen=True)
class IterationInfo:
    """What a callback receives after each EM iteration.

    Attributes
    ----------
    iteration : int
        Number of completed EM steps (M-steps).
    loglik : float
        What the model's E-steps report for ``params``, summed over the data: the
        observed-data log-likelihood, or the ELBO's per-observation part for a model
        whose objective is ``"elbo"``.
    objective : float
        The quantity EM increases: ``loglik`` plus the model's ``log_prior`` (equal to
        ``loglik`` without one).
    change : float
        ``objective`` minus the previous one (``nan`` at iteration 0).
    params : pytree
        The current parameters.
    elapsed : float
        Seconds since the start of this run.
    restart : int
        Index of the restart (0 to ``n_init - 1``).
    objective_name : {"loglik", "elbo"}
        The model's objective (see :class:`EMModel`).
    """

    iteration: int
    loglik: float
    objective: float
    change: float
    params: Any
    elapsed: float
    restart: int = 0
    objective_name: str = "loglik"


@dataclasses.dataclass
class EMResult:
    """The outcome of :func:`emkit.em`.

    Attributes
    ----------
    params : pytree
        The fitted parameters (the best over restarts).
    loglik : float
        Total observed-data log-likelihood of ``params`` over the whole data (for a
        model whose objective is ``"elbo"``: the sum of what its E-steps report, the
        ELBO's per-observation part).
    history : ndarray of shape (n_iter,)
        The objective (named by ``objective_name``) after each EM step: the
        log-likelihood, plus log-prior for MAP models, or the ELBO; ``history[-1]`` is
        the objective of ``params``.
    n_iter : int
        Number of EM steps performed.
    converged : bool
        Whether the convergence criterion was met before ``max_iter``.
    time : float
        Wall time of the whole fit in seconds (all restarts).
    objective : float
        ``loglik`` plus the log-prior of ``params`` (equal to ``loglik`` without a prior).
    objective_name : {"loglik", "elbo"}
        What ``objective`` and ``history`` are: the log-likelihood (plus log-prior for
        MAP models), or the evidence lower bound of variational EM (see
        :class:`EMModel`).
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
    objective_name: str = "loglik"


def objective_name(model: Any) -> str:
    """The objective ``model`` declares: its ``objective`` attribute, ``"loglik"`` if absent.

    Raises
    ------
    ValueError
        The attribute is not one of :data:`OBJECTIVES`.
    """
    name = getattr(model, "objective", "loglik")
    if not isinstance(name, str) or name not in OBJECTIVES:
        raise ValueError(
            f"{type(model).__name__}.objective must be one of {sorted(OBJECTIVES)} (the "
            f"quantity its estep reports), got {name!r}"
        )
    return name


def objective_label(name: str, *, with_prior: bool = False) -> str:
    """The words for objective ``name`` in messages: "log-likelihood", "log-likelihood
    plus log-prior" (MAP-EM) or "ELBO" (whose global terms ``log_prior`` holds)."""
    label = OBJECTIVES[name]
    return f"{label} plus log-prior" if with_prior and name == "loglik" else label


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
