"""Exceptions and warnings of emkit (each names what went wrong and what to do)."""

from emkit.engine.protocol import MonotonicityError, MonotonicityWarning

__all__ = [
    "ConvergenceWarning",
    "DegenerateComponentWarning",
    "MonotonicityError",
    "MonotonicityWarning",
    "NotFittedError",
]


try:  # scikit-learn is optional; its tools recognise its own NotFittedError
    from sklearn.exceptions import NotFittedError as _NotFittedBase

    _NOT_FITTED_BASES: tuple[type, ...] = (_NotFittedBase,)
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _NOT_FITTED_BASES = (ValueError, AttributeError)


class NotFittedError(*_NOT_FITTED_BASES):
    """An estimator was used before ``fit`` (a ValueError and an AttributeError)."""


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before meeting its tolerance."""


class DegenerateComponentWarning(RuntimeWarning):
    """A mixture component became empty or singular and was re-seeded."""
