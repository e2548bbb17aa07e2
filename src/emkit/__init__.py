"""emkit: Expectation-Maximization for latent-variable models.

One engine (:func:`emkit.em`) that any model with ``init_params``/``estep``/``mstep``
plugs into, and estimators built on it.
"""

from emkit.engine import (
    EMModel,
    EMResult,
    IterationInfo,
    MonotonicityError,
    MonotonicityWarning,
    em,
)

__version__ = "0.1.0"

__all__ = [
    "EMModel",
    "EMResult",
    "IterationInfo",
    "MonotonicityError",
    "MonotonicityWarning",
    "__version__",
    "em",
]
