"""The model-agnostic EM machinery: protocol, driver, convergence, executors, pytrees."""

from emkit.engine.driver import em
from emkit.engine.executors import Executor, SerialExecutor, ThreadExecutor
from emkit.engine.monitor import Monitor
from emkit.engine.protocol import (
    EMModel,
    EMResult,
    IterationInfo,
    MonotonicityError,
    MonotonicityWarning,
    Reseeded,
)
from emkit.engine.schemes import PlainEM, RunContext, Scheme

__all__ = [
    "EMModel",
    "EMResult",
    "Executor",
    "IterationInfo",
    "Monitor",
    "MonotonicityError",
    "MonotonicityWarning",
    "PlainEM",
    "Reseeded",
    "RunContext",
    "Scheme",
    "SerialExecutor",
    "ThreadExecutor",
    "em",
]
