"""Minimal pytrees: nested dicts, lists, tuples, NamedTuples and dataclasses of arrays.

Parameters and sufficient statistics are pytrees. The engine only ever needs to map a
function over matching leaves (to add statistics from several batches, or to combine
parameter vectors in an accelerator) and to flatten a tree to one vector and back.
Leaves are anything that is not a container: NumPy arrays, Python or NumPy scalars.
``None`` is an empty subtree.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "TreeDef",
    "tree_add",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_ravel",
    "tree_scale",
    "tree_unflatten",
    "tree_unravel",
]


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _children(x: Any) -> tuple[str, Any, list[Any]] | None:
    """Split a container into (kind, aux, children); ``None`` for a leaf."""
    if x is None:
        return ("none", None, [])
    if isinstance(x, dict):
        keys = list(x.keys())
        factory = x.default_factory if isinstance(x, defaultdict) else None
        return ("dict", (type(x), keys, factory), [x[k] for k in keys])
    if _is_namedtuple(x):
        return ("namedtuple", type(x), list(x))
    if isinstance(x, (tuple, list)):
        return ("seq", type(x), list(x))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        names = [f.name for f in dataclasses.fields(x) if f.init]
        return ("dataclass", (type(x), names), [getattr(x, n) for n in names])
    return None


@dataclasses.dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree, without its leaves."""

    kind: str
    aux: Any
    children: tuple[TreeDef, ...]
    n_leaves: int

    def unflatten(self, leaves: Sequence[Any]) -> Any:
        it = iter(leaves)
        out = self._build(it)
        rest = list(it)
        if rest:
            raise ValueError(f"too many leaves for this tree: {len(rest)} left over")
        return out

    def _build(self, it) -> Any:
        if self.kind == "leaf":
            try:
                return next(it)
            except StopIteration:
                raise ValueError("too few leaves for this tree") from None
        kids = [c._build(it) for c in self.children]
        if self.kind == "none":
            return None
        if self.kind == "dict":
            cls, keys, factory = self.aux
            if issubclass(cls, defaultdict):
                out = cls(factory)
                out.update(zip(keys, kids))
                return out
            return cls(zip(keys, kids))
        if self.kind == "namedtuple":
            return self.aux(*kids)
        if self.kind == "seq":
            return self.aux(kids)
        if self.kind == "dataclass":
            cls, names = self.aux
            return cls(**dict(zip(names, kids)))
        raise AssertionError(self.kind)


_LEAF = TreeDef("leaf", None, (), 1)


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Return the leaves of ``tree`` in a fixed order, and its structure."""
    leaves: list[Any] = []

    def walk(x: Any) -> TreeDef:
        parts = _children(x)
        if parts is None:
            leaves.append(x)
            return _LEAF
        kind, aux, kids = parts
        defs = tuple(walk(k) for k in kids)
        return TreeDef(kind, aux, defs, sum(d.n_leaves for d in defs))

    treedef = walk(tree)
    return leaves, treedef


def tree_unflatten(treedef: TreeDef, leaves: Sequence[Any]) -> Any:
    """Inverse of :func:`tree_flatten`."""
    return treedef.unflatten(leaves)


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree``, in flattening order."""
    return tree_flatten(tree)[0]


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` to matching leaves of one or more trees of the same structure."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for other in rest:
        o_leaves, o_def = tree_flatten(other)
        if o_def != treedef:
            raise ValueError("pytrees do not have the same structure")
        others.append(o_leaves)
    return treedef.unflatten([fn(*xs) for xs in zip(leaves, *others)])


def tree_add(a: Any, b: Any) -> Any:
    """Leaf-wise sum of two trees of the same structure (how statistics combine)."""
    return tree_map(np.add, a, b)


def tree_scale(tree: Any, factor: float) -> Any:
    """Multiply every leaf by ``factor``."""
    return tree_map(lambda x: np.multiply(x, factor), tree)


def tree_ravel(tree: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Flatten every leaf into one float vector; return it and the inverse function."""
    leaves, treedef = tree_flatten(tree)
    arrays = [np.asarray(x) for x in leaves]
    shapes = [a.shape for a in arrays]
    dtypes = [a.dtype for a in arrays]
    sizes = [a.size for a in arrays]
    flat = (
        np.concatenate([a.ravel().astype(np.float64, copy=False) for a in arrays])
        if arrays
        else np.zeros(0)
    )

    def unravel(vec: np.ndarray) -> Any:
        return tree_unravel(vec, treedef, shapes, dtypes, sizes)

    return flat, unravel


def tree_unravel(vec, treedef: TreeDef, shapes, dtypes, sizes) -> Any:
    vec = np.asarray(vec)
    if vec.size != sum(sizes):
        raise ValueError(f"vector of size {vec.size} does not match tree of size {sum(sizes)}")
    out, start = [], 0
    for shape, dtype, size in zip(shapes, dtypes, sizes):
        out.append(vec[start : start + size].reshape(shape).astype(dtype, copy=False))
        start += size
    return treedef.unflatten(out)
