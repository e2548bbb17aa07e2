"""The estimator classes that :func:`emkit.load` can rebuild, registered by themselves.

Every public subclass of ``emkit.models.estimator.EMEstimator`` (its name does not
start with ``_``) calls :func:`register_estimator` when Python creates it, so the
persistence layer (:mod:`emkit.io`) finds classes here and never imports a model.
This module sits below both and imports nothing from emkit.

A class is registered under its ``__name__``, the key a model file stores. The names of
emkit's own estimators (:data:`EMKIT_ESTIMATORS`) are reserved for them: ``import
emkit`` imports no estimator (each is imported on first use), so a user's class of the
same name may well be defined first, and it, like any class whose key is already taken
(a user's ``GaussianMixture`` subclass, a drop-in front with a peer library's name),
gets its qualified name, ``module.QualName``, instead. Every file written so far keeps
loading as before: a reserved key that is not registered yet imports the module of
emkit's class (:func:`estimator_class`). A class with ``_qualified_key = True`` (a
drop-in front in a module that ``import emkit`` does not import, and its subclasses) is
registered under its qualified name only, so that loading its files imports its module.
Defining a class again under the same module and qualified name (``importlib.reload``)
replaces the old one under its key.
"""

from __future__ import annotations

import importlib
import re
import threading

__all__ = [
    "EMKIT_ESTIMATORS",
    "estimator_class",
    "estimator_classes",
    "estimator_key",
    "register_estimator",
]

#: emkit's own estimators: the plain key each one's model files store -> the module that
#: defines it (where :func:`estimator_class` imports it from). Only the class of that name
#: in that module is registered under the key.
EMKIT_ESTIMATORS: dict[str, str] = {
    "ConditionalMixtureEstimator": "emkit.models.mixture.conditional_front",
    "FactorAnalysis": "emkit.models.latent.factor_analysis",
    "GaussianImputer": "emkit.models.latent.imputer",
    "GaussianMixture": "emkit.models.mixture.gaussian",
    "HMM": "emkit.models.hmm.estimator",
    "LDA": "emkit.models.topic.estimator",
    "LinearGaussianSSM": "emkit.models.ssm.estimator",
    "Mixture": "emkit.models.mixture.generic",
    "MixtureOfExperts": "emkit.models.mixture.experts",
    "MixtureOfRegressions": "emkit.models.mixture.regression",
    "StudentTMixture": "emkit.models.mixture.student_t",
    "VariationalGaussianMixture": "emkit.models.mixture.variational",
}

_CLASSES: dict[str, type] = {}
# Classes are usually created while a module is imported (one at a time), but a user
# may create them on threads; registration must not interleave.
_LOCK = threading.Lock()

#: A key naming a class in one of emkit's own public modules: ``emkit.<module path>.<Class>``
#: (no component starts with ``_``, so neither ``__main__`` nor private modules match).
_EMKIT_KEY = re.compile(r"emkit(\.[A-Za-z][A-Za-z0-9_]*)+")


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _may_take_plain_key(cls: type) -> bool:
    """False for a class with the reserved name of an emkit estimator that it is not."""
    module = EMKIT_ESTIMATORS.get(cls.__name__)
    return module is None or (cls.__module__ == module and cls.__qualname__ == cls.__name__)


def register_estimator(cls: type) -> str:
    """Register ``cls`` for loading and return the key its model files store.

    Parameters
    ----------
    cls : type
        An estimator class with the persistence methods of ``EMEstimator``
        (``_get_state``, ``_from_state``).

    Returns
    -------
    str
        ``cls.__name__``, or its qualified name when that name is another class's or
        is reserved for one of emkit's estimators (:data:`EMKIT_ESTIMATORS`).
    """
    keys = (cls.__name__, _qualified(cls))
    if getattr(cls, "_qualified_key", False) or not _may_take_plain_key(cls):
        keys = keys[1:]
    with _LOCK:
        for key in keys:
            holder = _CLASSES.get(key)
            if holder is None or holder is cls or _qualified(holder) == _qualified(cls):
                _CLASSES[key] = cls
                return key
        # Unreachable in practice: the qualified key is taken only by a class with the
        # same qualified name, which the loop replaces.
        raise RuntimeError(f"cannot register {_qualified(cls)}")  # pragma: no cover


def estimator_key(cls: type) -> str | None:
    """The key under which ``cls`` is registered, or None if it is not."""
    with _LOCK:
        for key, registered in _CLASSES.items():
            if registered is cls:
                return key
    return None


def estimator_class(key: str) -> type | None:
    """The class registered under ``key``, or None.

    A key of one of emkit's own estimators (:data:`EMKIT_ESTIMATORS`) or a qualified key
    of one of emkit's own modules (``emkit.compat.sklearn.X``) imports the module first
    if needed, since ``import emkit`` imports none of them; no other module is ever
    imported, so a model file cannot make emkit run a user's code.
    """
    with _LOCK:
        cls = _CLASSES.get(key)
    if cls is not None:
        return cls
    module = EMKIT_ESTIMATORS.get(key)
    if module is not None:
        # one of emkit's own: an ImportError here (a missing dependency) is the real
        # error, not an unknown key
        importlib.import_module(module)
    elif _EMKIT_KEY.fullmatch(key):
        try:
            importlib.import_module(key.rpartition(".")[0])
        except ImportError:
            return None
    with _LOCK:
        return _CLASSES.get(key)


def estimator_classes() -> dict[str, type]:
    """A copy of the registry: key -> class."""
    with _LOCK:
        return dict(_CLASSES)
