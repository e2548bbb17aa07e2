"""Data sources: they cut the data into batches for the E-step and say how much there is.

The engine never looks inside a batch; it hands each one to the model's ``estep``
and adds up the statistics. A source only has to say how many observations it holds
(the scale of the convergence tolerance), which data to give ``init_params``, and
how to iterate over its batches.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any

import numpy as np

from emkit._pytree import tree_leaves, tree_map

__all__ = ["ArraySource", "DataSource", "as_source"]


class DataSource(abc.ABC):
    """Base class of everything the engine can draw batches from."""

    @property
    @abc.abstractmethod
    def n_samples(self) -> int:
        """Number of observations (rows) in the whole data."""

    @abc.abstractmethod
    def batches(self) -> Iterator[Any]:
        """Iterate over the batches of one full pass, in a fixed order."""

    def init_data(self) -> Any:
        """The data handed to ``model.init_params``."""
        raise NotImplementedError

    def take(self, index: np.ndarray) -> Any:
        """The rows at ``index`` as one batch (used by online EM to shuffle)."""
        raise NotImplementedError


class ArraySource(DataSource):
    """A pytree of arrays sharing their first axis, cut into chunks of ``batch_size`` rows.

    Parameters
    ----------
    data : array or pytree of arrays
        Every leaf has the same length along axis 0 (``None`` leaves are allowed).
    batch_size : int, optional
        Rows per batch; the whole data is one batch when omitted.
    """

    def __init__(self, data: Any, batch_size: int | None = None):
        leaves = [x for x in tree_leaves(data) if x is not None]
        if not leaves:
            raise ValueError("data has no arrays")
        lengths = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
        if -1 in lengths:
            raise ValueError("every array in data must have at least one dimension")
        if len(lengths) != 1:
            raise ValueError(
                f"arrays in data must share their first dimension, got lengths {sorted(lengths)}"
            )
        self._n = lengths.pop()
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
                raise TypeError(f"batch_size must be an integer, got {type(batch_size).__name__}")
            if batch_size < 1:
                raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.data = data
        self.batch_size = None if batch_size is None or batch_size >= self._n else int(batch_size)

    @property
    def n_samples(self) -> int:
        return self._n

    @property
    def n_batches(self) -> int:
        return 1 if self.batch_size is None else -(-self._n // self.batch_size)

    def init_data(self) -> Any:
        return self.data

    def batches(self) -> Iterator[Any]:
        if self.batch_size is None:
            yield self.data
            return
        for start in range(0, self._n, self.batch_size):
            sl = slice(start, start + self.batch_size)
            yield tree_map(lambda x, sl=sl: None if x is None else x[sl], self.data)

    def take(self, index: np.ndarray) -> Any:
        return tree_map(lambda x: None if x is None else x[index], self.data)


def is_dask_collection(data: Any) -> bool:
    """True for a Dask array or DataFrame (checked without importing dask)."""
    return type(data).__module__.split(".")[0] == "dask" and hasattr(data, "__dask_graph__")


def as_source(data: Any, batch_size: int | None = None) -> DataSource:
    """Wrap ``data`` in a :class:`DataSource` (sources are passed through unchanged)."""
    if isinstance(data, DataSource):
        if batch_size is not None:
            raise ValueError("batch_size cannot be given with a DataSource; set it on the source")
        return data
    return ArraySource(data, batch_size)
