"""Exceptions and warnings of emkit (each names what went wrong and what to do).

This module sits below every other part of emkit (the engine re-exports the
monotonicity warnings from here), so it imports nothing from emkit.
"""

__all__ = [
    "ConvergenceWarning",  # noqa: F822 - built on first use, by __getattr__
    "DegenerateComponentWarning",
    "MonotonicityError",
    "MonotonicityWarning",
    "NotFittedError",  # noqa: F822 - built on first use, by __getattr__
]


def _sklearn_base(name: str, fallback: tuple[type, ...]) -> tuple[type, ...]:
    try:  # scikit-learn is optional; filters and handlers on its classes catch emkit's
        import sklearn.exceptions
    except ImportError:  # pragma: no cover - exercised only without scikit-learn
        return fallback
    return (getattr(sklearn.exceptions, name),)


def _not_fitted_error() -> type:
    return type(
        "NotFittedError",
        _sklearn_base("NotFittedError", (ValueError, AttributeError)),
        {
            "__module__": __name__,
            "__doc__": "An estimator was used before ``fit`` (a ValueError and an "
            "AttributeError; scikit-learn's NotFittedError when it is installed).",
        },
    )


def _convergence_warning() -> type:
    return type(
        "ConvergenceWarning",
        _sklearn_base("ConvergenceWarning", (UserWarning,)),
        {
            "__module__": __name__,
            "__doc__": "EM stopped at ``max_iter`` before meeting its tolerance (a subclass "
            "of scikit-learn's ``ConvergenceWarning`` when scikit-learn is installed).",
        },
    )


#: classes built on first use, so that ``import emkit`` does not import scikit-learn
#: (more than a second of start-up) just to subclass two of its exceptions
_LAZY = {"NotFittedError": _not_fitted_error, "ConvergenceWarning": _convergence_warning}


def __getattr__(name: str) -> type:
    if name in _LAZY:
        cls = _LAZY[name]()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
