"""Dask collections as data sources: each partition (block of rows) is a batch.

Dask does the work: the collection's graph says how each partition is made (read
from files, generated, sliced), the column means and the initialisation subsample
are Dask computations, and on a ``dask.distributed`` cluster the Dask executor
(:class:`emkit.engine.dask_executor.DaskExecutor`) persists the partitions on the
workers once and runs each partition's E-step where it lives. Without a cluster, the
batches are computed one at a time by Dask's local scheduler, so memory stays bounded
by a partition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from emkit.data.tables import DEFAULT_INIT_ROWS, MappedSource, TableSource, _check_batch_size

__all__ = ["DaskSource", "from_dask"]


def _as_dask_array(collection: Any) -> Any:
    """A 2-D numeric Dask array with known chunk sizes, from an array or a DataFrame."""
    import dask.array as da
    from dask.dataframe import DataFrame

    if isinstance(collection, DataFrame):
        bad = [c for c, t in collection.dtypes.items() if t.kind not in "biuf"]
        if bad:
            raise TypeError(f"columns {bad} of the Dask DataFrame are not numeric")
        arr = collection.to_dask_array(lengths=True)
    elif isinstance(collection, da.Array):
        arr = collection
    else:
        raise TypeError(
            "from_dask takes a dask.array.Array or a dask.dataframe.DataFrame, got "
            f"{type(collection).__name__}"
        )
    if arr.ndim != 2:
        raise ValueError(f"the Dask array must be 2-D (rows, features), got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"the Dask array must be numeric, got dtype {arr.dtype}")
    if any(math.isnan(c) for c in arr.chunks[0]):
        arr = arr.compute_chunk_sizes()
    return arr


class DaskSource(TableSource):
    """A 2-D Dask array, or a Dask DataFrame of numeric columns (see :func:`from_dask`)."""

    def __init__(self, collection: Any, batch_size=None, init_rows=DEFAULT_INIT_ROWS):
        from emkit.data.tables import _check_init_rows

        arr = _as_dask_array(collection)
        batch_size = _check_batch_size(batch_size)
        arr = arr.rechunk({0: batch_size, 1: -1} if batch_size else {1: -1})
        self.dtype = np.dtype(arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64)
        self.array = arr.astype(self.dtype)
        self._n, self.n_features = int(arr.shape[0]), int(arr.shape[1])
        if self._n < 1:
            raise ValueError("the Dask collection has no rows")
        self.batch_size = max(self.array.chunks[0])
        self.init_rows = _check_init_rows(init_rows)

    @property
    def n_samples(self) -> int:
        return self._n

    @property
    def n_batches(self) -> int:
        return len(self.array.chunks[0])

    def _bounds(self) -> list[tuple[int, int]]:
        stops = np.cumsum(self.array.chunks[0]).tolist()
        return list(zip([0, *stops[:-1]], stops))

    def delayed_parts(self) -> list[Any]:
        return list(self.array.to_delayed().ravel())

    def batches(self) -> Iterator[np.ndarray]:
        for part in self.delayed_parts():
            yield np.asarray(part.compute())

    def _read(self, lo: int, hi: int) -> np.ndarray:
        return np.asarray(self.array[lo:hi].compute())

    def init_data(self) -> np.ndarray:
        step = max(1, math.ceil(self._n / self.init_rows))
        return np.asarray(self.array[::step].compute())

    def column_mean(self) -> np.ndarray:
        import dask.array as da

        return np.asarray(da.nanmean(self.array.astype(np.float64), axis=0).compute())

    def column_variance(self, mean: np.ndarray) -> np.ndarray:
        import dask.array as da

        centred = self.array.astype(np.float64) - mean
        return np.asarray(da.nanmean(centred * centred, axis=0).compute())

    def map(self, fn: Callable[[np.ndarray], Any]) -> MappedSource:
        return MappedSource(self, fn)


def from_dask(
    collection: Any,
    *,
    lengths: Any = None,
    sequence_column: str | None = None,
    batch_size: int | None = None,
    sequences_per_batch: int | None = None,
    init_rows: int = DEFAULT_INIT_ROWS,
):
    """A data source over a Dask array (rows, features) or a Dask DataFrame of numeric columns.

    Each partition (a block of rows; all columns in one block) is one batch; with
    ``batch_size`` the rows are re-chunked to that many per block. With a
    ``dask.distributed`` client, :func:`emkit.em` and every estimator run the E-step
    of each partition on the worker that holds it.

    Parameters
    ----------
    collection : dask.array.Array or dask.dataframe.DataFrame
    lengths : array-like of int, optional
        Sequences (an HMM's data): the length of every sequence stored in the rows,
        one after the other.
    sequence_column : str, optional
        Sequences from a DataFrame column of sequence ids (not a feature): a new
        sequence starts where the id changes; the rows of a sequence must be
        contiguous. Found by one pass over the column, partition by partition.
    batch_size : int, optional
        Rows per partition (re-chunks the rows); with sequences, as many whole
        sequences as fit in ``batch_size`` rows (a longer sequence is a partition of
        its own).
    sequences_per_batch : int, optional
        With sequences: this many whole sequences per partition (re-chunks the rows).
    init_rows : int, default 100_000
        At most this many rows go to initialisation.

    Returns
    -------
    DaskSource, or with sequences a :class:`~emkit.data.sequence_tables.SequenceTableSource`
        whose batches are the partitions, each a set of whole sequences.

    Raises
    ------
    ValueError
        With sequences and neither ``batch_size`` nor ``sequences_per_batch``: a
        partition boundary inside a sequence (the message names it); lengths that do
        not add up to the rows; a missing id, or an id that comes back after another
        sequence.

    Examples
    --------
    >>> import dask.array as da
    >>> src = from_dask(da.ones((10, 3), chunks=(4, 3)))
    >>> src.n_samples, src.n_features, [len(b) for b in src.batches()]
    (10, 3, [4, 4, 2])
    >>> seqs = from_dask(da.ones((10, 3), chunks=(4, 3)), lengths=[4, 4, 2])
    >>> seqs.n_samples, [b.offsets.tolist() for b in seqs.batches()]
    (3, [[0, 4], [0, 4], [0, 2]])
    >>> from_dask(da.ones((10, 3), chunks=(4, 3)), lengths=[5, 5])
    Traceback (most recent call last):
    ...
    ValueError: the partition boundary at row 4 falls inside sequence 0 (rows 0 to 5): ...
    """
    if lengths is None and sequence_column is None:
        if sequences_per_batch is not None:
            raise ValueError("sequences_per_batch needs sequences: give lengths or sequence_column")
        return DaskSource(collection, batch_size=batch_size, init_rows=init_rows)
    from emkit.data.sequence_tables import (
        SequenceTableSource,
        cuts_by_rows,
        cuts_by_sequences,
        cuts_from_chunks,
    )
    from emkit.data.sequences import offsets_from_lengths

    if batch_size is not None and sequences_per_batch is not None:
        raise ValueError("give batch_size (rows) or sequences_per_batch, not both")
    if sequence_column is not None:
        if lengths is not None:
            raise ValueError("give lengths= or sequence_column=, not both")
        collection, lengths = _split_ids(collection, sequence_column)
    arr = _as_dask_array(collection)
    offsets = offsets_from_lengths(lengths, int(arr.shape[0]), what="the Dask collection")
    if sequences_per_batch is not None:
        from emkit._validation import check_int

        per = check_int(sequences_per_batch, "sequences_per_batch", 1)
        cuts = cuts_by_sequences(offsets.size - 1, per)
    elif batch_size is not None:
        cuts = cuts_by_rows(offsets, _check_batch_size(batch_size))
    else:
        cuts = cuts_from_chunks(offsets, arr.chunks[0])
    rows = tuple(np.diff(offsets[cuts]).tolist())
    table = DaskSource(arr.rechunk({0: rows, 1: -1}), init_rows=init_rows)
    return SequenceTableSource(table, offsets, cuts)


def _split_ids(frame: Any, column: str) -> tuple[Any, np.ndarray]:
    """The DataFrame without its column of sequence ids, and the sequences' lengths."""
    import dask
    from dask.dataframe import DataFrame

    from emkit.data.sequence_tables import id_runs, runs_of_ids

    if not isinstance(frame, DataFrame):
        raise TypeError(
            f"sequence_column needs a Dask DataFrame, got {type(frame).__name__}; give "
            "lengths= with an array"
        )
    if column not in frame.columns:
        raise ValueError(
            f"the sequence column {column!r} is not in the DataFrame (it has {list(frame.columns)})"
        )
    runs = dask.delayed(id_runs, pure=True)
    parts = dask.compute(*[runs(p) for p in frame[column].to_delayed()])
    return frame.drop(columns=[column]), runs_of_ids(parts, column, runs=True)
