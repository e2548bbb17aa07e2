"""The model-agnostic EM machinery: protocol, driver, convergence, executors, pytrees."""

from emkit.engine.accel import SQUAREM
from emkit.engine.driver import em, make_scheme
from emkit.engine.executors import Executor, SerialExecutor, ThreadExecutor
from emkit.engine.monitor import Monitor
from emkit.engine.online import OnlineEM, online_step
from emkit.engine.protocol import (
    OBJECTIVES,
    EMModel,
    EMResult,
    IterationInfo,
    MonotonicityError,
    MonotonicityWarning,
    Reseeded,
    objective_name,
)
from emkit.engine.schemes import PlainEM, RunContext, Scheme
from emkit.engine.variants import Annealed, HardEM

__all__ = [
    "OBJECTIVES",
    "SQUAREM",
    "Annealed",
    "EMModel",
    "EMResult",
    "Executor",
    "HardEM",
    "IterationInfo",
    "Monitor",
    "MonotonicityError",
    "MonotonicityWarning",
    "OnlineEM",
    "PlainEM",
    "Reseeded",
    "RunContext",
    "Scheme",
    "SerialExecutor",
    "ThreadExecutor",
    "em",
    "make_scheme",
    "objective_name",
    "online_step",
]
