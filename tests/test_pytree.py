"""Pytrees: flatten/unflatten, tree_map, tree_add and ravel/unravel over every container kind."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from emkit._pytree import (
    tree_add,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_ravel,
    tree_scale,
    tree_unflatten,
)


class Pair(NamedTuple):
    mean: Any
    var: Any


class Other(NamedTuple):
    mean: Any
    var: Any


@dataclasses.dataclass
class Stats:
    n: Any
    s1: Any
    s2: Any = None


@dataclasses.dataclass(frozen=True)
class FrozenParams:
    weights: Any
    inner: Any


def _assert_tree_equal(a: Any, b: Any) -> None:
    """Same containers (types, keys, field names) and equal leaves of equal dtype."""
    la, ta = tree_flatten(a)
    lb, tb = tree_flatten(b)
    assert ta == tb
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert type(x) is type(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert np.asarray(x).dtype == np.asarray(y).dtype


def _examples() -> dict[str, tuple[Any, int]]:
    """Trees with their number of leaves, counted by hand."""
    a = np.arange(6.0).reshape(2, 3)
    b = np.array([1, 2, 3], dtype=np.int32)
    return {
        "leaf": (a, 1),
        "scalar": (3.5, 1),
        "dict": ({"b": a, "a": b, "c": 2.0}, 3),
        "tuple": ((a, b, 1), 3),
        "list": ([a, [b, 4.0]], 3),
        "namedtuple": (Pair(a, b), 2),
        "dataclass": (Stats(n=a, s1=b, s2=np.float32(1.5)), 3),
        "frozen_dataclass": (FrozenParams(weights=a, inner=Pair(b, [1.0, 2.0])), 4),
        "nested": (
            {"p": Pair(mean=[a, (b,)], var={"x": Stats(a, b, None)}), "q": (None, 7)},
            5,
        ),
        "none": (None, 0),
        "none_leaves": ({"a": None, "b": [None, a], "c": Pair(None, b)}, 2),
        "empty": ({"a": (), "b": [], "c": {}}, 0),
        "ordered_dict": (collections.OrderedDict([("z", a), ("y", b)]), 2),
    }


@pytest.mark.parametrize("name", list(_examples()))
def test_flatten_unflatten_round_trip(name):
    tree, n_leaves = _examples()[name]
    leaves, treedef = tree_flatten(tree)
    assert len(leaves) == n_leaves == treedef.n_leaves
    assert all(x is y for x, y in zip(tree_leaves(tree), leaves, strict=True))
    back = tree_unflatten(treedef, leaves)
    _assert_tree_equal(back, tree)
    # The leaves are passed through, not copied.
    assert all(x is y for x, y in zip(tree_leaves(back), leaves))
    if tree is not None:
        assert type(back) is type(tree)


def test_flatten_order_and_container_types():
    a, b, c = np.zeros(1), np.ones(2), np.full(3, 2.0)
    tree = {"second": b, "first": Pair(a, [c, None])}
    leaves, treedef = tree_flatten(tree)
    # dicts keep their insertion order; NamedTuples their field order
    assert [x.size for x in leaves] == [2, 1, 3]
    rebuilt = treedef.unflatten(["B", "A", "C"])
    assert rebuilt == {"second": "B", "first": Pair("A", ["C", None])}
    assert isinstance(rebuilt["first"], Pair)
    assert isinstance(rebuilt["first"].var, list)


def test_frozen_dataclass_unflatten_builds_a_new_instance():
    tree = FrozenParams(weights=np.array([0.3, 0.7]), inner=(np.eye(2), None))
    leaves, treedef = tree_flatten(tree)
    out = treedef.unflatten([2 * x for x in leaves])
    assert isinstance(out, FrozenParams)
    np.testing.assert_array_equal(out.weights, [0.6, 1.4])
    np.testing.assert_array_equal(out.inner[0], 2 * np.eye(2))
    assert out.inner[1] is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.weights = None


def test_unflatten_wrong_number_of_leaves():
    _, treedef = tree_flatten({"a": 1.0, "b": (2.0, 3.0)})
    with pytest.raises(ValueError, match="too few"):
        treedef.unflatten([1.0, 2.0])
    with pytest.raises(ValueError, match="too many"):
        treedef.unflatten([1.0, 2.0, 3.0, 4.0])


def test_defaultdict_round_trip():
    tree = collections.defaultdict(float, {"a": np.ones(2), "b": np.zeros(1)})
    leaves, treedef = tree_flatten(tree)
    back = tree_unflatten(treedef, leaves)
    assert isinstance(back, collections.defaultdict)
    np.testing.assert_array_equal(back["a"], np.ones(2))


# ----------------------------------------------------------------------------- tree_map


def test_tree_map_applies_to_matching_leaves():
    a = {"x": Pair(np.array([1.0, 2.0]), 3.0), "y": [np.array([[4.0]])]}
    b = {"x": Pair(np.array([10.0, 20.0]), 30.0), "y": [np.array([[40.0]])]}
    out = tree_map(lambda u, v: v - u, a, b)
    assert isinstance(out["x"], Pair)
    np.testing.assert_array_equal(out["x"].mean, [9.0, 18.0])
    assert out["x"].var == 27.0
    np.testing.assert_array_equal(out["y"][0], [[36.0]])
    # one tree: the identity map gives the same tree back
    _assert_tree_equal(tree_map(lambda u: u, a), a)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0}),  # different keys
        ({"a": 1.0}, {"a": 1.0, "b": 2.0}),  # more keys
        ((1.0, 2.0), [1.0, 2.0]),  # tuple vs list
        ((1.0, 2.0), (1.0, 2.0, 3.0)),  # different lengths
        (Pair(1.0, 2.0), Other(1.0, 2.0)),  # different NamedTuple types
        (Pair(1.0, 2.0), (1.0, 2.0)),  # NamedTuple vs tuple
        (Stats(1.0, 2.0, 3.0), FrozenParams(1.0, (2.0, 3.0))),  # different dataclasses
        ({"a": None}, {"a": np.zeros(2)}),  # None is an empty subtree, not a leaf
        ({"a": (1.0, 2.0)}, {"a": 1.0}),  # subtree vs leaf
        (np.zeros(2), [np.zeros(2)]),
    ],
)
def test_tree_map_mismatched_structures_raise(left, right):
    with pytest.raises(ValueError, match="structure"):
        tree_map(lambda u, v: u, left, right)
    with pytest.raises(ValueError, match="structure"):
        tree_add(left, right)


def test_tree_map_three_trees():
    trees = [Stats(np.array([i]), float(i), (i, None)) for i in (1, 2, 3)]
    out = tree_map(lambda a, b, c: a * 100 + b * 10 + c, *trees)
    np.testing.assert_array_equal(out.n, [123])
    assert out.s1 == 123.0
    assert out.s2 == (123, None)


def test_tree_add_sums_statistics_leafwise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 2))
    first, second = x[:4], x[4:]

    def stats(block):
        return Stats(n=np.array(len(block), float), s1=block.sum(0), s2=block.T @ block)

    total = tree_add(stats(first), stats(second))
    assert isinstance(total, Stats)
    assert total.n == 10.0
    np.testing.assert_allclose(total.s1, x.sum(0), rtol=1e-14)
    np.testing.assert_allclose(total.s2, x.T @ x, rtol=1e-13)
    # inputs are not modified
    np.testing.assert_array_equal(stats(first).s1, first.sum(0))


def test_tree_add_nested_with_none_and_scalars():
    a = {"w": np.array([0.25, 0.75]), "k": (1, None), "d": FrozenParams(2.0, [np.eye(2)])}
    b = {"w": np.array([1.0, 1.0]), "k": (2, None), "d": FrozenParams(0.5, [np.ones((2, 2))])}
    out = tree_add(a, b)
    np.testing.assert_array_equal(out["w"], [1.25, 1.75])
    assert out["k"] == (3, None)
    assert out["d"].weights == 2.5
    np.testing.assert_array_equal(out["d"].inner[0], [[2.0, 1.0], [1.0, 2.0]])


def test_tree_scale():
    out = tree_scale({"a": np.array([1.0, -2.0]), "b": Pair(3, None)}, 0.5)
    np.testing.assert_array_equal(out["a"], [0.5, -1.0])
    assert out["b"].mean == 1.5
    assert out["b"].var is None


# ----------------------------------------------------------------------------- ravel


def test_ravel_order_dtypes_and_shapes():
    tree = {
        "a": np.arange(6, dtype=np.int32).reshape(2, 3),
        "b": Pair(np.float32(2.5), [np.array([[True], [False]])]),
        "c": Stats(n=3, s1=np.zeros((0, 4)), s2=np.array([1e300, -1e-300])),
        "d": None,
    }
    flat, unravel = tree_ravel(tree)
    assert flat.dtype == np.float64
    assert flat.ndim == 1
    np.testing.assert_array_equal(flat, [0, 1, 2, 3, 4, 5, 2.5, 1, 0, 3, 1e300, -1e-300])
    back = unravel(flat)
    assert back["d"] is None
    assert back["a"].dtype == np.int32 and back["a"].shape == (2, 3)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert back["b"].mean.dtype == np.float32 and back["b"].mean.shape == ()
    assert back["b"].mean == np.float32(2.5)
    assert back["b"].var[0].dtype == np.bool_ and back["b"].var[0].shape == (2, 1)
    np.testing.assert_array_equal(back["b"].var[0], [[True], [False]])
    assert isinstance(back["c"], Stats)
    assert np.asarray(back["c"].n).dtype == np.asarray(3).dtype
    assert int(back["c"].n) == 3
    assert back["c"].s1.shape == (0, 4)
    np.testing.assert_array_equal(back["c"].s2, [1e300, -1e-300])


def test_ravel_unravel_a_new_vector():
    tree = Pair(mean=np.array([1.0, 2.0]), var=np.array([[3.0, 4.0], [5.0, 6.0]]))
    flat, unravel = tree_ravel(tree)
    out = unravel(flat * 10)
    np.testing.assert_array_equal(out.mean, [10.0, 20.0])
    np.testing.assert_array_equal(out.var, [[30.0, 40.0], [50.0, 60.0]])
    # the input tree is untouched by ravel and by unravel of another vector
    np.testing.assert_array_equal(tree.mean, [1.0, 2.0])
    with pytest.raises(ValueError, match="size"):
        unravel(np.zeros(5))
    with pytest.raises(ValueError, match="size"):
        unravel(np.zeros(7))


def test_ravel_empty_tree():
    flat, unravel = tree_ravel({"a": None, "b": ()})
    assert flat.shape == (0,)
    assert unravel(np.zeros(0)) == {"a": None, "b": ()}


# ----------------------------------------------------------------------------- hypothesis

_dtypes = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int32, np.int8])


@st.composite
def _arrays(draw):
    dtype = draw(_dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        # values a float64 holds exactly (ravel goes through float64)
        lo, hi = max(int(info.min), -(2**53)), min(int(info.max), 2**53)
        elements = st.integers(lo, hi)
    else:
        elements = st.floats(
            allow_nan=False, allow_infinity=False, width=np.dtype(dtype).itemsize * 8
        )
    return draw(hnp.arrays(dtype, shape, elements=elements))


_leaves = st.one_of(_arrays(), st.floats(allow_nan=False), st.integers(-(2**53), 2**53))
_keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


def _containers(children):
    return st.one_of(
        st.dictionaries(_keys, children, max_size=4),
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.tuples(children, children).map(lambda t: Pair(*t)),
        st.tuples(children, children, children).map(lambda t: Stats(*t)),
        st.tuples(children, children).map(lambda t: FrozenParams(*t)),
    )


_trees = st.recursive(st.one_of(_leaves, st.none()), _containers, max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(_trees)
def test_hypothesis_flatten_round_trip(tree):
    leaves, treedef = tree_flatten(tree)
    assert treedef.n_leaves == len(leaves)
    back = tree_unflatten(treedef, leaves)
    _assert_tree_equal(back, tree)
    assert tree_flatten(back)[1] == treedef


@settings(max_examples=150, deadline=None)
@given(_trees)
def test_hypothesis_ravel_round_trip(tree):
    leaves, treedef = tree_flatten(tree)
    flat, unravel = tree_ravel(tree)
    assert flat.dtype == np.float64
    assert flat.size == sum(np.asarray(x).size for x in leaves)
    back = unravel(flat)
    back_leaves, back_def = tree_flatten(back)
    assert back_def == treedef
    for x, y in zip(leaves, back_leaves):
        x = np.asarray(x)
        assert y.dtype == x.dtype
        assert y.shape == x.shape
        np.testing.assert_array_equal(y, x)


@settings(max_examples=100, deadline=None)
@given(_trees, st.floats(-1e6, 1e6))
def test_hypothesis_tree_add_matches_leafwise_sum(tree, shift):
    # leaves near the float64 limit overflow to inf on both sides alike
    with np.errstate(over="ignore"):
        other = tree_map(lambda x: np.asarray(x, dtype=np.float64) + shift, tree)
        out = tree_add(tree, other)
        for x, y, z in zip(tree_leaves(tree), tree_leaves(other), tree_leaves(out)):
            np.testing.assert_array_equal(z, np.add(x, y))
    assert tree_flatten(out)[1] == tree_flatten(tree)[1]
