"""Packages whose names are imported on first use (PEP 562), so ``import emkit`` stays light.

A package lists what it offers and the module holding each name; :func:`attach` gives
it the module-level ``__getattr__`` and ``__dir__`` that import that module when the
name is first looked up (``emkit.GaussianMixture``, ``from emkit import HMM``) and keep
the value as a plain attribute afterwards. A public submodule is imported when first
looked up as an attribute too (``emkit.models.hmm``), as if the package had imported it.
The package imports the same names under ``if TYPE_CHECKING:`` for static type checkers
and editors.

This module imports nothing from emkit.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package that imports on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping of str to str
        Each name the package offers lazily -> the absolute name of the module that
        defines it.

    Returns
    -------
    (__getattr__, __dir__)
        To assign to the package's module-level ``__getattr__`` and ``__dir__``.
    """
    names = dict(names)

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
            setattr(sys.modules[package], name, value)  # found directly from now on
            return value
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}"):
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        # the package's attributes (less the flag its type-checking imports sit under),
        # what it offers on first use, and its public submodules
        attributes = set(vars(sys.modules[package])) - {"TYPE_CHECKING"}
        submodules = {
            info.name
            for info in pkgutil.iter_modules(sys.modules[package].__path__)
            if not info.name.startswith("_")
        }
        return sorted(attributes | names.keys() | submodules)

    return __getattr__, __dir__
