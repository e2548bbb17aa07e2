"""The estimator classes that :func:`emkit.load` can rebuild, registered by themselves.

Every public subclass of ``emkit.models.estimator.EMEstimator`` (its name does not
start with ``_``) calls :func:`register_estimator` when Python creates it, so the
persistence layer (:mod:`emkit.io`) finds classes here and never imports a model.
This module sits below both and imports nothing from emkit.

A class is registered under its ``__name__``, the key a model file stores. When that
key already belongs to another class (a user's ``GaussianMixture`` subclass, or a
drop-in front with a peer library's name), the newcomer gets its qualified name,
``module.QualName``, instead: emkit's own estimators are imported first, by
``import emkit``, so they keep their plain names and every file written so far keeps
loading as before. A class with ``_qualified_key = True`` (a drop-in front in a module
that ``import emkit`` does not import, and its subclasses) is registered under its
qualified name only, so that loading its files imports its module. Defining a class again under the same module and qualified name
(``importlib.reload``) replaces the old one under its key.
"""

from __future__ import annotations

import importlib
import re
import threading

__all__ = ["estimator_class", "estimator_classes", "estimator_key", "register_estimator"]

_CLASSES: dict[str, type] = {}
# Classes are usually created while a module is imported (one at a time), but a user
# may create them on threads; registration must not interleave.
_LOCK = threading.Lock()

#: A key naming a class in one of emkit's own public modules: ``emkit.<module path>.<Class>``
#: (no component starts with ``_``, so neither ``__main__`` nor private modules match).
_EMKIT_KEY = re.compile(r"emkit(\.[A-Za-z][A-Za-z0-9_]*)+")


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


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
        ``cls.__name__``, or its qualified name when another class holds that name.
    """
    keys = (cls.__name__, _qualified(cls))
    if getattr(cls, "_qualified_key", False):
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

    A qualified key of one of emkit's own modules (``emkit.compat.sklearn.X``) imports
    that module first if needed, since such modules are not all imported by ``import
    emkit``; no other module is ever imported, so a model file cannot make emkit run a
    user's code.
    """
    with _LOCK:
        cls = _CLASSES.get(key)
    if cls is None and _EMKIT_KEY.fullmatch(key):
        module = key.rpartition(".")[0]
        try:
            importlib.import_module(module)
        except ImportError:
            return None
        with _LOCK:
            cls = _CLASSES.get(key)
    return cls


def estimator_classes() -> dict[str, type]:
    """A copy of the registry: key -> class."""
    with _LOCK:
        return dict(_CLASSES)
