"""Distributions from their JSON-serialisable specs (what saved models store).

A spec is the dict :meth:`Distribution.get_spec` returns: ``{"type": class name,
**constructor arguments}``. The class is found by name among every
:class:`~emkit.distributions.base.Distribution` subclass defined so far (they register
themselves), so this module imports none of them: a user's own distribution class is
found as soon as it is defined. One of emkit's own that is not defined yet (``import
emkit`` imports none) is imported from its module.

Examples
--------
>>> from emkit.distributions import Categorical
>>> from_spec(Categorical(3).get_spec())
Categorical(n_categories=3)
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from emkit.distributions.base import Distribution, distribution_classes

__all__ = ["EMKIT_DISTRIBUTIONS", "from_spec"]

#: emkit's own distributions: the class name a spec stores -> the module defining it
#: (imported by :func:`from_spec` the first time it is needed)
EMKIT_DISTRIBUTIONS: dict[str, str] = {
    **dict.fromkeys(("Bernoulli", "Categorical", "Poisson"), "emkit.distributions.discrete"),
    **dict.fromkeys(
        ("DiagGaussian", "Exponential", "Gamma", "LogNormal"), "emkit.distributions.continuous"
    ),
    "Gaussian": "emkit.distributions.gaussian",
    "Independent": "emkit.distributions.independent",
    "StudentT": "emkit.distributions.student_t",
}


def from_spec(spec: Mapping[str, Any]) -> Distribution:
    """The distribution described by ``spec`` (from :meth:`Distribution.get_spec`).

    Raises
    ------
    ValueError
        If ``spec`` is not a dict with a ``"type"`` naming a known distribution.
    """
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"a distribution spec is a dict with a 'type', got {spec!r}")
    classes = distribution_classes()
    cls = classes.get(spec["type"])
    if cls is None:
        classes = _import_emkit_distributions(spec["type"])
        cls = classes.get(spec["type"])
    if cls is None:
        raise ValueError(f"unknown distribution type {spec['type']!r}; known: {sorted(classes)}")
    return cls.from_spec_args({k: v for k, v in spec.items() if k != "type"})


def _import_emkit_distributions(name: Any) -> Mapping[str, type[Distribution]]:
    """Import the module of emkit's distribution ``name`` (every one of emkit's if
    ``name`` is none of them, for the error message); the classes known then."""
    modules = EMKIT_DISTRIBUTIONS.values()
    if isinstance(name, str) and name in EMKIT_DISTRIBUTIONS:
        modules = [EMKIT_DISTRIBUTIONS[name]]
    for module in sorted(set(modules)):
        importlib.import_module(module)
    return distribution_classes()
