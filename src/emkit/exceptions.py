"""Exceptions and warnings of emkit (each names what went wrong and what to do)."""

from emkit.engine.protocol import MonotonicityError, MonotonicityWarning

__all__ = [
    "ConvergenceWarning",
    "DegenerateComponentWarning",
    "MonotonicityError",
    "MonotonicityWarning",
    "NotFittedError",
]


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``."""


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before meeting its tolerance."""


class DegenerateComponentWarning(RuntimeWarning):
    """A mixture component became empty or singular and was re-seeded."""
