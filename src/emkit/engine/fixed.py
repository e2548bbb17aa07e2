"""Parameters held fixed: what ``emkit.em(model, data, fixed=...)`` does.

A model that can hold parameters fixed provides ``hold(names) -> model``: a copy of
itself whose ``mstep`` returns ``params[name]`` unchanged for each held name and
maximises the other parameters given them (exactly, or as a generalized step it
declares with ``generalized = True``); it raises ``ValueError`` for names it does not
know or cannot hold. The held model may also provide ``check_fixed(values)``, which
raises ``ValueError`` for values that break the model's constraints (mixture weights
that do not sum to 1). The engine does the rest, the same way for every model:

* ``fixed`` is a collection of names (held at the starting values of each restart) or
  a dict name -> value (substituted into the starting parameters of every restart,
  ``init`` included, and held there);
* a name is a path into the parameter pytree: a top-level field (``"weights"``), a
  nested field (``"components.mean"``), and ``[k]`` for row ``k`` of every array below
  (``"components[1]"``: the second component of a mixture, whatever its fields);
* every run goes through :class:`HeldModel`, which checks after every M-step that the
  held values did not move (a model whose ``hold`` breaks its contract is an error, as a
  wrong M-step is for the monotonicity check) and puts them back exactly where a scheme
  makes points of its own: SQUAREM's extrapolated (unpacked) points, annealing's
  perturbations and ECME's observed-data steps. Held leaves have zero SQUAREM
  differences, and online EM's running statistics pass through the held ``mstep``, so
  every scheme leaves the held values bit-for-bit unchanged.

Holding parameters fixed and maximising the others is still EM (or GEM) for the model
restricted to those values, so the monotonicity check stays on.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from emkit._pytree import tree_flatten, tree_leaves, tree_map
from emkit.engine.protocol import Reseeded, unwrap_reseeded

__all__ = [
    "HeldModel",
    "check_names",
    "get_path",
    "held_model",
    "name_list",
    "parse_fixed",
    "parse_path",
    "set_path",
    "start_values",
]

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*|\d+)|\[(-?\d+)\]")


def parse_path(name: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``(fields, rows)`` of a parameter name such as ``"components[1].mean"``.

    Fields are separated by dots; ``[k]`` selects row ``k`` of every array below, so rows
    commute with fields and are returned apart, in order.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"a fixed parameter name must be a non-empty string, got {name!r}")
    fields: list[str] = []
    rows: list[int] = []
    for part in name.split("."):
        if not part:
            raise ValueError(f"invalid parameter name {name!r}: empty field")
        start = 0
        for m in _STEP.finditer(part):
            if m.start() != start or (m.group(1) and start):
                raise ValueError(f"invalid parameter name {name!r}")
            if m.group(1):
                fields.append(m.group(1))
            else:
                rows.append(int(m.group(2)))
            start = m.end()
        if start != len(part):
            raise ValueError(f"invalid parameter name {name!r}")
    if not fields:
        raise ValueError(f"invalid parameter name {name!r}: it names no field")
    return tuple(fields), tuple(rows)


def _child(tree: Any, field: str, name: str) -> Any:
    if isinstance(tree, Mapping):
        if field in tree:
            return tree[field]
    elif hasattr(type(tree), "_fields") and isinstance(tree, tuple):
        if field in tree._fields:
            return getattr(tree, field)
    elif dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        if field in {f.name for f in dataclasses.fields(tree)}:
            return getattr(tree, field)
    elif isinstance(tree, (tuple, list)) and field.isdigit() and int(field) < len(tree):
        return tree[int(field)]
    raise ValueError(f"unknown parameter {name!r}: the parameters have no field {field!r}")


def _replace_child(tree: Any, field: str, value: Any) -> Any:
    if isinstance(tree, Mapping):
        out = dict(tree)
        out[field] = value
        return type(tree)(out) if type(tree) is not dict else out
    if hasattr(type(tree), "_fields") and isinstance(tree, tuple):
        return tree._replace(**{field: value})
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return dataclasses.replace(tree, **{field: value})
    items = list(tree)
    items[int(field)] = value
    return type(tree)(items)


def _rows(leaf: Any, rows: tuple[int, ...], name: str) -> Any:
    arr = np.asarray(leaf)
    try:
        return arr[rows]
    except IndexError:
        raise ValueError(
            f"parameter {name!r}: row {list(rows)} is out of range for an array of shape "
            f"{arr.shape}"
        ) from None


def get_path(params: Any, name: str) -> Any:
    """The part of ``params`` that ``name`` designates (copies of its arrays)."""
    fields, rows = parse_path(name)
    sub = params
    for field in fields:
        sub = _child(sub, field, name)
    if rows:
        return tree_map(lambda a: np.array(_rows(a, rows, name)), sub)
    return tree_map(lambda a: np.array(a, copy=True), sub)


def set_path(params: Any, name: str, value: Any) -> Any:
    """A copy of ``params`` with the part ``name`` designates replaced by ``value``.

    ``value`` must have the structure of that part and arrays of its shapes (it is cast
    to their dtypes); anything else is a ``ValueError`` naming the parameter.
    """
    fields, rows = parse_path(name)
    return _set(params, fields, rows, value, name)


def _set(tree: Any, fields, rows, value, name: str) -> Any:
    if fields:
        child = _child(tree, fields[0], name)
        return _replace_child(tree, fields[0], _set(child, fields[1:], rows, value, name))
    old_leaves, old_def = tree_flatten(tree)
    new_leaves = [value] if old_def.kind == "leaf" else tree_flatten(value)[0]
    if len(new_leaves) != len(old_leaves):
        raise ValueError(
            f"fixed value of {name!r} does not have the structure of the parameter "
            f"({len(new_leaves)} arrays given, {len(old_leaves)} expected)"
        )
    out = []
    for old, new in zip(old_leaves, new_leaves):
        old = np.asarray(old)
        part = old[rows] if rows else old
        try:
            arr = np.asarray(new, dtype=part.dtype if part.dtype.kind == "f" else None)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fixed value of {name!r} is not numeric: {exc}") from None
        if arr.shape != np.shape(part):
            raise ValueError(
                f"fixed value of {name!r} must have shape {np.shape(part)}, got {arr.shape}"
            )
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            raise ValueError(f"fixed value of {name!r} has non-finite entries")
        if rows:
            full = np.array(old, copy=True)
            full[rows] = arr
            out.append(full)
        else:
            out.append(np.array(arr, dtype=old.dtype, copy=True))
    return old_def.unflatten(out)


def parse_fixed(fixed: Any) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """``(names, values or None)`` of ``emkit.em``'s ``fixed`` argument."""
    if isinstance(fixed, Mapping):
        values = dict(fixed)
        names = tuple(values)
    elif isinstance(fixed, str):
        names, values = (fixed,), None
    elif isinstance(fixed, Iterable):
        names, values = tuple(fixed), None
    else:
        raise TypeError(
            "fixed must be a collection of parameter names or a dict of name -> value, got "
            f"{type(fixed).__name__}"
        )
    for name in names:
        parse_path(name)
    if len(set(names)) != len(names):
        raise ValueError(f"fixed names a parameter twice: {list(names)}")
    return names, values


def name_list(fixed: Any) -> list:
    """The names of a ``fixed`` that is not a dict: a list, or a ``TypeError``."""
    if isinstance(fixed, str) or not isinstance(fixed, Iterable):
        raise TypeError(
            "fixed must be a dict of parameter values or a collection of parameter names, got "
            f"{type(fixed).__name__}"
        )
    return list(fixed)


def check_names(names: Iterable[str], known: Iterable[str], owner: str) -> frozenset[str]:
    """``names`` as a set, each one of ``known`` (a model's ``hold`` helper for flat
    parameters); ``ValueError`` naming the first unknown one otherwise."""
    known = tuple(known)
    out = set()
    for name in names:
        if name not in known:
            raise ValueError(
                f"{owner} cannot hold unknown parameter {name!r}; its parameters are "
                f"{', '.join(map(repr, known))}"
            )
        out.add(name)
    return frozenset(out)


def held_model(model: Any, names: tuple[str, ...]) -> Any:
    """``model.hold(names)``, or a ``TypeError`` when the model cannot hold parameters."""
    hold = getattr(model, "hold", None)
    if not callable(hold):
        raise TypeError(
            f"{type(model).__name__} cannot hold parameters fixed: it needs a method "
            "hold(names) -> model (see emkit.engine.fixed)"
        )
    return hold(names)


class HeldModel:
    """A held model (``model.hold(names)``) for one run, with the held values of that run.

    Delegates everything to the model; after each M-step checks that the held values
    are unchanged, and re-imposes them exactly on points a scheme makes itself
    (SQUAREM's ``unpack``, annealing's ``perturb``, ECME's ``observed_step``).
    """

    def __init__(self, model: Any, values: dict[str, Any]):
        self._model = model
        self._values = values
        if callable(getattr(model, "pack", None)) and callable(getattr(model, "unpack", None)):
            self.pack = model.pack
            self.unpack = lambda vec, like: self.impose(model.unpack(vec, like))
        if callable(getattr(model, "perturb", None)):
            self.perturb = lambda params, rng: self.impose(model.perturb(params, rng))
        if callable(getattr(model, "observed_step", None)):
            self.observed_step = lambda params, ev: self.impose(model.observed_step(params, ev))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def impose(self, params: Any) -> Any:
        """``params`` with every held value put back."""
        for name, value in self._values.items():
            params = set_path(params, name, value)
        return params

    def mstep(self, stats: Any, params: Any) -> Any:
        out = self._model.mstep(stats, params)
        new, reseeded = unwrap_reseeded(out)
        for name, value in self._values.items():
            now = tree_leaves(get_path(new, name))
            if not all(np.array_equal(a, b) for a, b in zip(now, tree_leaves(value))):
                raise RuntimeError(
                    f"{type(self._model).__name__}.mstep changed the held parameter {name!r}: "
                    "its hold() does not keep held parameters fixed"
                )
        return Reseeded(new) if reseeded else out


def start_values(params: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The held values of a run: each name's part of its starting parameters."""
    return {name: get_path(params, name) for name in names}
