"""Exceptions and warnings of emkit (each names what went wrong and what to do).

This module sits below every other part of emkit (the engine re-exports the
monotonicity warnings from here), so it imports nothing from emkit.
"""

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


try:  # with scikit-learn, filters on its ConvergenceWarning also catch emkit's
    from sklearn.exceptions import ConvergenceWarning as _ConvergenceBase
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _ConvergenceBase = UserWarning


class ConvergenceWarning(_ConvergenceBase):
    """EM stopped at ``max_iter`` before meeting its tolerance (a subclass of
    scikit-learn's ``ConvergenceWarning`` when scikit-learn is installed)."""


class DegenerateComponentWarning(RuntimeWarning):
    """A mixture component became empty or singular and was re-seeded."""


class MonotonicityWarning(RuntimeWarning):
    """The objective went down during EM, beyond round-off.

    Exact EM never lowers the observed-data log-likelihood (plus log-prior for
    MAP-EM), nor variational EM its evidence lower bound (ELBO), so a real drop means
    a wrong E- or M-step, or numerical trouble. The message names the objective.
    """


class MonotonicityError(ArithmeticError):
    """Raised instead of :class:`MonotonicityWarning` when ``check_monotone="raise"``."""
