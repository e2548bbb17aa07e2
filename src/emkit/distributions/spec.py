"""Distributions from their JSON-serialisable specs (what saved models store).

A spec is the dict :meth:`Distribution.get_spec` returns: ``{"type": class name,
**constructor arguments}``. The class is found by name among every
:class:`~emkit.distributions.base.Distribution` subclass defined so far (they register
themselves), so this module imports none of them: a user's own distribution class is
found as soon as it is defined.

Examples
--------
>>> from emkit.distributions import Categorical
>>> from_spec(Categorical(3).get_spec())
Categorical(n_categories=3)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emkit.distributions.base import Distribution, distribution_classes

__all__ = ["from_spec"]


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
        raise ValueError(f"unknown distribution type {spec['type']!r}; known: {sorted(classes)}")
    return cls.from_spec_args({k: v for k, v in spec.items() if k != "type"})
