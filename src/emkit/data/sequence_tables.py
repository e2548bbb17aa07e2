"""Sequences stored in a table on disk or in a Dask collection, read in batches of whole
sequences (the data of an HMM that does not fit in memory).

The rows of every sequence lie one after the other in a table source
(:func:`~emkit.data.from_npy`, :func:`~emkit.data.from_parquet`,
:func:`~emkit.data.from_csv`, :func:`~emkit.data.from_dask`); the boundaries come from
``lengths=`` or, for Parquet, CSV and Dask DataFrames, from a ``sequence_column=`` of
sequence ids (a new sequence starts where the id changes; the rows of one sequence
must be contiguous). :class:`SequenceTableSource` cuts the rows into batches that
never split a sequence and hands out :class:`~emkit.data.sequences.SequenceBatch`
objects, as the in-memory :class:`~emkit.data.sequences.SequenceSource` does:

* from a file, a batch holds as many whole sequences as fit in ``batch_size`` rows
  (a longer sequence is a batch of its own); the file is read in one sequential
  pass per EM iteration, re-cut at the sequence boundaries;
* from a Dask collection, a batch is a partition (chunk of rows): every chunk
  boundary must be a sequence boundary (else a ``ValueError`` names the sequence it
  cuts), or with ``batch_size`` the rows are re-chunked at sequence boundaries. On a
  ``dask.distributed`` cluster each partition's E-step runs on the worker holding it.

Initialisation sees :meth:`SequenceTableSource.init_data`: every sequence when the
table has at most ``init_rows`` rows (the start then equals the in-memory one), else
a systematic subsample of sequences (see there), so an HMM's k-means start never
loads the whole table.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from emkit.data.sequences import SequenceBatch, Sequences, offsets_from_lengths, sequence_rows
from emkit.data.tables import MappedSource, NpySource, TableSource, _read_rows

__all__ = [
    "SequenceTableSource",
    "cuts_by_rows",
    "cuts_by_sequences",
    "cuts_from_chunks",
    "id_runs",
    "runs_of_ids",
    "scan",
    "sequence_table",
]


def cuts_by_rows(offsets: np.ndarray, rows: int) -> np.ndarray:
    """Batch boundaries, in sequences: as many whole sequences per batch as fit in
    ``rows`` rows, at least one.

    Examples
    --------
    >>> cuts_by_rows(np.array([0, 2, 5, 6, 10]), 4).tolist()
    [0, 1, 3, 4]
    """
    n_seq = offsets.size - 1
    cuts = [0]
    while cuts[-1] < n_seq:
        first = cuts[-1]
        stop = int(np.searchsorted(offsets, offsets[first] + rows, side="right")) - 1
        cuts.append(min(max(stop, first + 1), n_seq))
    return np.asarray(cuts, dtype=np.int64)


def cuts_by_sequences(n_sequences: int, per_batch: int) -> np.ndarray:
    """Batch boundaries of ``per_batch`` whole sequences per batch."""
    return np.unique(np.append(np.arange(0, n_sequences, per_batch), n_sequences))


def cuts_from_chunks(offsets: np.ndarray, chunks: Iterable[int]) -> np.ndarray:
    """Batch boundaries, in sequences, of row chunks that must hold whole sequences.

    Raises
    ------
    ValueError
        A chunk boundary falls inside a sequence (the message names the sequence).

    Examples
    --------
    >>> cuts_from_chunks(np.array([0, 2, 5, 6]), [5, 1]).tolist()
    [0, 2, 3]
    >>> cuts_from_chunks(np.array([0, 2, 5, 6]), [3, 3])
    Traceback (most recent call last):
    ...
    ValueError: the partition boundary at row 3 falls inside sequence 1 (rows 2 to 5): ...
    """
    ends = np.cumsum(np.asarray(list(chunks), dtype=np.int64))
    cuts = np.minimum(np.searchsorted(offsets, ends), offsets.size - 1)
    inside = np.flatnonzero(offsets[cuts] != ends)
    if inside.size:
        row = int(ends[inside[0]])
        s = int(np.searchsorted(offsets, row, side="right")) - 1
        raise ValueError(
            f"the partition boundary at row {row} falls inside sequence {s} (rows "
            f"{offsets[s]} to {offsets[s + 1]}): every partition must hold whole "
            "sequences; rechunk the collection at sequence boundaries, or pass batch_size "
            "to re-chunk it"
        )
    return np.concatenate([[0], cuts]).astype(np.int64)


def id_runs(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """The runs of equal values in a column chunk: (each run's value, its length)."""
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError(f"a column of sequence ids must be 1-D, got shape {v.shape}")
    if v.size == 0:
        return v, np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], np.flatnonzero(v[1:] != v[:-1]) + 1])
    return v[starts], np.diff(np.append(starts, v.size))


def runs_of_ids(chunks: Iterable[Any], column: str, runs: bool = False) -> np.ndarray:
    """Sequence lengths from the chunks, in order, of a column of sequence ids (or,
    with ``runs``, from each chunk's :func:`id_runs`).

    Raises
    ------
    ValueError
        An id is missing, or comes back after another sequence.

    Examples
    --------
    >>> runs_of_ids([["a", "a", "b"], ["b", "c"]], "id").tolist()
    [2, 2, 1]
    >>> runs_of_ids([["a", "b"], ["a"]], "id")
    Traceback (most recent call last):
    ...
    ValueError: sequence id 'a' of column 'id' appears again at row 2 after other ...
    """
    import pandas as pd

    lengths: list[int] = []
    seen: set[Any] = set()
    last: Any = None
    row = 0
    for chunk in chunks:
        values, sizes = chunk if runs else id_runs(chunk)
        gap = np.flatnonzero(pd.isna(values))
        if gap.size:
            raise ValueError(
                f"the sequence column {column!r} has a missing id at row "
                f"{row + int(np.sum(sizes[: gap[0]]))}; every row needs its sequence's id"
            )
        for value, size in zip(values.tolist(), np.asarray(sizes).tolist()):
            if lengths and value == last:  # (only a chunk's first run can continue one)
                lengths[-1] += size
            elif value in seen:
                raise ValueError(
                    f"sequence id {value!r} of column {column!r} appears again at row {row} "
                    f"after other sequences: the rows of a sequence must be contiguous (sort "
                    f"the table by {column!r})"
                )
            else:
                seen.add(value)
                lengths.append(size)
                last = value
            row += size
    if not lengths:
        raise ValueError(f"the sequence column {column!r} has no rows")
    return np.asarray(lengths, dtype=np.int64)


def scan(table: TableSource, fn: Callable[[np.ndarray], Any]) -> list[Any]:
    """``fn`` of every batch of ``table`` (a streaming pass; a Dask collection's
    partitions are computed by Dask, on the current client if there is one)."""
    if hasattr(table, "array"):  # a Dask source
        import dask

        part = dask.delayed(fn, pure=True)
        return list(dask.compute(*[part(p) for p in table.delayed_parts()]))
    return [fn(block) for block in table.batches()]


def _recut(blocks: Iterable[np.ndarray], bounds: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The rows ``[lo, hi)`` of every bound, from a stream of consecutive row blocks."""
    pending: list[np.ndarray] = []
    held = 0
    stream = iter(blocks)
    for lo, hi in bounds:
        want = hi - lo
        while held < want:
            block = next(stream)
            pending.append(block)
            held += len(block)
        block = np.concatenate(pending) if len(pending) > 1 else pending[0]
        yield block[:want]
        rest = block[want:]
        pending, held = ([rest] if len(rest) else []), len(rest)


def _sequence_batch(rows: np.ndarray, offsets: np.ndarray) -> SequenceBatch:
    return SequenceBatch(np.asarray(rows), offsets)


class SequenceTableSource(Sequences):
    """Sequences stored back to back in the rows of a table source, in batches of
    whole sequences (see :func:`sequence_table`; made by ``lengths=`` or
    ``sequence_column=`` of :func:`~emkit.data.from_npy`,
    :func:`~emkit.data.from_parquet`, :func:`~emkit.data.from_csv` and
    :func:`~emkit.data.from_dask`).

    Batches are :class:`~emkit.data.sequences.SequenceBatch` objects: a (rows,
    features) float array of whole sequences and their boundaries. As for
    :class:`~emkit.data.sequences.SequenceSource`, the *samples* are the sequences:
    ``n_samples`` counts sequences, ``n_observations`` rows.

    Parameters
    ----------
    table : TableSource
        The rows of every sequence, one sequence after the other.
    offsets : ndarray of int64, shape (n_sequences + 1,)
        Sequence boundaries (see :func:`~emkit.data.sequences.offsets_from_lengths`).
    cuts : ndarray of int64
        Batch boundaries, in sequences: batch ``b`` holds sequences
        ``cuts[b]:cuts[b + 1]``.
    """

    def __init__(self, table: TableSource, offsets: np.ndarray, cuts: np.ndarray):
        self.base = table
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.cuts = np.asarray(cuts, dtype=np.int64)
        self.n_features = table.n_features
        self.dtype = table.dtype
        self.init_rows = table.init_rows
        self._init: SequenceBatch | None = None

    @property
    def n_batches(self) -> int:
        return self.cuts.size - 1

    def _bounds(self) -> list[tuple[int, int]]:
        rows = self.offsets[self.cuts].tolist()
        return list(itertools.pairwise(rows))

    def _local_offsets(self, b: int) -> np.ndarray:
        a, z = self.cuts[b], self.cuts[b + 1]
        return self.offsets[a : z + 1] - self.offsets[a]

    def batches(self) -> Iterator[SequenceBatch]:
        # one sequential pass over the table, re-cut at the batches' sequence boundaries
        for b, rows in enumerate(_recut(self.base.batches(), self._bounds())):
            yield SequenceBatch(rows, self._local_offsets(b))

    def delayed_parts(self) -> list[Any]:
        """One ``dask.delayed`` batch per batch of sequences (for a Dask executor):
        the partitions of a Dask collection, or reads of the file's rows."""
        import dask

        bounds = self._bounds()
        if self.base._bounds() == bounds:  # the table's own parts (Dask chunks)
            parts = self.base.delayed_parts()
        else:
            read = dask.delayed(_read_rows, pure=True)
            parts = [read(self.base, lo, hi) for lo, hi in bounds]
        wrap = dask.delayed(_sequence_batch, pure=True)
        return [wrap(p, self._local_offsets(b)) for b, p in enumerate(parts)]

    def init_sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """Which rows :meth:`init_data` holds: (row indices, their sequence offsets).

        Every row when there are at most ``init_rows``. Otherwise the sequences
        ``0, s, 2s, ...`` with ``s = ceil(n_rows / init_rows)`` (a systematic sample of
        sequences, spread over the whole table), each cut to its first
        ``init_rows // n_chosen`` rows if longer (a prefix of a sequence is a sequence
        of the same chain): at most ``init_rows`` rows in all.
        """
        n = self.n_observations
        if n <= self.init_rows:
            return np.arange(n, dtype=np.int64), self.offsets
        step = math.ceil(n / self.init_rows)
        chosen = np.arange(0, self.n_samples, step)
        cap = max(1, self.init_rows // chosen.size)
        # each chosen sequence's first rows: sequences of at most cap rows
        starts = self.offsets[chosen]
        cut = np.stack([starts, starts + np.minimum(self.lengths[chosen], cap)], axis=1).ravel()
        return sequence_rows(cut, np.arange(0, cut.size, 2))

    def init_data(self) -> SequenceBatch:
        """The sequences initialisation sees (see :meth:`init_sequences`); read once and
        kept (at most ``init_rows`` rows), as every restart starts from them."""
        if self._init is None:
            rows, offsets = self.init_sequences()
            if rows.size == self.n_observations:  # the whole table (<= init_rows rows)
                self._init = SequenceBatch(self.base.init_data(), offsets)
            else:
                self._init = SequenceBatch(self._gather(rows), offsets)
        return self._init

    def _random_access(self) -> bool:
        return hasattr(self.base, "array") or isinstance(self.base, NpySource)

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        """The table's rows at the sorted indices ``rows``."""
        if hasattr(self.base, "array"):  # a Dask collection: only the chunks needed
            return np.asarray(self.base.array[rows].compute())
        if isinstance(self.base, NpySource):  # a memory map
            return self.base.take(rows)
        parts, lo = [], 0
        for block in self.base.batches():  # one streaming pass
            hi = lo + len(block)
            a, b = np.searchsorted(rows, [lo, hi])
            if b > a:
                parts.append(block[rows[a:b] - lo].copy())
            lo = hi
        return np.concatenate(parts)

    def take(self, index: np.ndarray) -> SequenceBatch:
        """The sequences at ``index`` (in that order) as one batch (online EM); the
        table must give random access to its rows (``.npy`` and Dask)."""
        if not self._random_access():
            raise TypeError(
                f"sequences in a {type(self.base).__name__} are read in order and cannot be "
                "drawn as shuffled mini-batches (online EM); use emkit.data.from_npy or "
                "from_dask, or load the data"
            )
        rows, offsets = sequence_rows(self.offsets, index)
        order = np.argsort(rows, kind="stable")
        out = np.empty((rows.size, self.n_features), dtype=self.dtype)
        out[order] = self._gather(rows[order])
        return SequenceBatch(out, offsets)

    def column_mean(self) -> np.ndarray:
        """Mean of every column over all rows (NaN ignored), in one streaming pass."""
        return self.base.column_mean()

    def column_variance(self, mean: np.ndarray) -> np.ndarray:
        """Variance of every column about ``mean`` (NaN ignored), in one streaming pass."""
        return self.base.column_variance(mean)

    def map(self, fn: Callable[[SequenceBatch], Any]) -> MappedSource:
        """These sequences with ``fn`` applied to every batch (and to :meth:`init_data`)."""
        return MappedSource(self, fn)


def sequence_table(
    table: TableSource,
    *,
    lengths: Any = None,
    sequence_column: str | None = None,
    ids: Iterable[Any] | None = None,
    batch_size: int | None = None,
) -> SequenceTableSource:
    """``table`` (a file read in row batches) as sequences: boundaries from ``lengths``
    or from the chunks ``ids`` of the column ``sequence_column``; batches of whole
    sequences within ``batch_size`` rows (default: the table's).

    Raises
    ------
    ValueError
        Both or neither of ``lengths`` and ``sequence_column``; lengths that are not
        positive or do not add up to the table's rows.
    """
    if (lengths is None) == (sequence_column is None):
        raise ValueError(
            "give the sequence boundaries as lengths= or as sequence_column=, not both"
            if lengths is not None
            else "sequences need lengths= or sequence_column="
        )
    if sequence_column is not None:
        lengths = runs_of_ids(ids, sequence_column)
    n = int(table.n_samples)
    offsets = offsets_from_lengths(lengths, n, what="the table")
    return SequenceTableSource(
        table, offsets, cuts_by_rows(offsets, batch_size or table.batch_size)
    )
