"""Packages whose names are imported on first use (PEP 562), so ``import emkit`` stays light.

A package lists what it offers and the module holding each name; :func:`attach` gives
it the module-level ``__getattr__`` and ``__dir__`` that import that module when the
name is first looked up (``emkit.GaussianMixture``, ``from emkit import HMM``) and keep
the value as a plain attribute afterwards. The package imports the same names under
``if TYPE_CHECKING:`` for static type checkers and editors.

This module imports nothing from emkit.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(
    package: str, names: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package that imports on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping of str to str
        Each name the package offers lazily -> the absolute name of the module that
        defines it.
    submodules : iterable of str
        Submodules (relative names) that are imported when looked up as attributes
        (``emkit.models``), as they were when the package imported them itself.

    Returns
    -------
    (__getattr__, __dir__)
        To assign to the package's module-level ``__getattr__`` and ``__dir__``.
    """
    names = dict(names)
    submodules = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
            setattr(sys.modules[package], name, value)  # found directly from now on
            return value
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        # the package's attributes, less the flag its type-checking imports sit under,
        # and what it offers on first use
        attributes = set(vars(sys.modules[package])) - {"TYPE_CHECKING"}
        return sorted(attributes | names.keys() | submodules)

    return __getattr__, __dir__
