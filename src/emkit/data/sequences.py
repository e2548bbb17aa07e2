"""Sequence data: whole sequences are the unit that batches are cut in (HMMs).

An HMM's E-step runs the forward-backward recursion over each sequence, so a batch
must hold whole sequences. :class:`SequenceSource` keeps the rows of all sequences
one after the other (a pytree of arrays sharing their first axis, as
:class:`~emkit.data.sources.ArraySource`) with the sequence boundaries, and hands the
model :class:`SequenceBatch` objects: the rows of some whole sequences and their
boundaries, counted from the batch's first row.

Its *samples* are the sequences: ``n_samples`` is the number of sequences, and
``take(index)`` gathers the sequences at ``index``, so online EM draws shuffled
mini-batches of whole sequences. ``n_observations`` is the number of rows; give it
to :func:`emkit.em` as ``tol_scale`` so the tolerance is per observation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from emkit._pytree import tree_leaves, tree_map
from emkit.data.sources import DataSource

__all__ = ["SequenceBatch", "SequenceSource", "Sequences", "offsets_from_lengths", "sequence_rows"]


class SequenceBatch(NamedTuple):
    """Rows of whole sequences, one after the other, and where each sequence starts.

    Attributes
    ----------
    data : array or pytree of arrays
        Leaves share their first axis, of length ``offsets[-1]``.
    offsets : ndarray of int64, shape (n_sequences + 1,)
        Sequence ``s`` is rows ``offsets[s]:offsets[s + 1]``; ``offsets[0] == 0``.
    """

    data: Any
    offsets: np.ndarray


def offsets_from_lengths(lengths: Any, n_rows: int, what: str = "X") -> np.ndarray:
    """Sequence boundaries (int64, starting at 0) from sequence lengths; ``what`` names
    the data of ``n_rows`` rows in the error messages.

    Raises
    ------
    TypeError
        If ``lengths`` are not integers.
    ValueError
        If a length is below 1 or the lengths do not add up to ``n_rows``.

    Examples
    --------
    >>> offsets_from_lengths([2, 3], 5).tolist()
    [0, 2, 5]
    """
    arr = np.asarray(lengths)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D sequence of integers, got {lengths!r}")
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must be integers, got dtype {arr.dtype}")
    short = np.flatnonzero(arr < 1)
    if short.size:
        raise ValueError(
            f"every sequence needs at least 1 observation; lengths[{short[0]}] = {arr[short[0]]}"
        )
    total = int(arr.sum())
    if total != n_rows:
        raise ValueError(
            f"lengths add up to {total} but {what} has {n_rows} rows; sum(lengths) must "
            f"equal the number of rows of {what}"
        )
    offsets = np.zeros(arr.size + 1, dtype=np.int64)
    np.cumsum(arr, out=offsets[1:])
    return offsets


def sequence_rows(offsets: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the sequences at ``index`` (in that order, back to back) and their
    boundaries counted from 0.

    Examples
    --------
    >>> rows, off = sequence_rows(np.array([0, 2, 5]), np.array([1, 0]))
    >>> rows.tolist(), off.tolist()
    ([2, 3, 4, 0, 1], [0, 3, 5])
    """
    index = np.asarray(index, dtype=np.intp)
    starts, lengths = offsets[index], offsets[index + 1] - offsets[index]
    out = np.zeros(index.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return np.repeat(starts - out[:-1], lengths) + np.arange(out[-1]), out


class Sequences(DataSource):
    """Base of sources whose samples are sequences stored back to back (``offsets``)."""

    offsets: np.ndarray

    @property
    def n_samples(self) -> int:
        """Number of sequences (the unit of batches and of ``take``)."""
        return self.offsets.size - 1

    @property
    def n_observations(self) -> int:
        """Number of rows over all sequences."""
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        """Length of every sequence."""
        return np.diff(self.offsets)


class SequenceSource(Sequences):
    """Sequences stored back to back, cut into batches of whole sequences.

    Parameters
    ----------
    data : array or pytree of arrays
        Rows of every sequence, one after the other; leaves share their first axis
        (``None`` leaves are allowed).
    offsets : array-like of int, shape (n_sequences + 1,)
        Sequence boundaries: increasing, from 0 to the number of rows (see
        :func:`offsets_from_lengths`).
    batch_size : int, optional
        Sequences per batch; one batch holds everything when omitted.

    Examples
    --------
    >>> src = SequenceSource(np.arange(5.0)[:, None], [0, 2, 5], batch_size=1)
    >>> src.n_samples, src.n_observations
    (2, 5)
    >>> [b.offsets.tolist() for b in src.batches()]
    [[0, 2], [0, 3]]
    >>> src.take(np.array([1])).data[:, 0].tolist()
    [2.0, 3.0, 4.0]
    """

    def __init__(self, data: Any, offsets: Any, batch_size: int | None = None):
        leaves = [x for x in tree_leaves(data) if x is not None]
        if not leaves:
            raise ValueError("data has no arrays")
        rows = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
        if -1 in rows or len(rows) != 1:
            raise ValueError("arrays in data must share their first dimension")
        n_rows = rows.pop()
        off = np.asarray(offsets)
        if off.ndim != 1 or off.size < 2 or off.dtype.kind not in "iu":
            raise ValueError("offsets must be a 1-D integer array of at least two entries")
        off = off.astype(np.int64)
        if off[0] != 0 or off[-1] != n_rows or np.any(np.diff(off) < 1):
            raise ValueError(
                f"offsets must rise strictly from 0 to the number of rows ({n_rows}); "
                "every sequence needs at least 1 observation"
            )
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
                raise TypeError(f"batch_size must be an integer, got {type(batch_size).__name__}")
            if batch_size < 1:
                raise ValueError(f"batch_size must be at least 1 sequence, got {batch_size}")
        self.data = data
        self.offsets = off
        n_seq = off.size - 1
        self.batch_size = None if batch_size is None or batch_size >= n_seq else int(batch_size)
        self._batches: list[SequenceBatch] | None = None

    def init_data(self) -> SequenceBatch:
        return SequenceBatch(self.data, self.offsets)

    def batches(self) -> Iterator[SequenceBatch]:
        # The partition is fixed, so the batches are built once and reused every pass.
        if self._batches is None:
            if self.batch_size is None:
                self._batches = [self.init_data()]
            else:
                self._batches = [
                    self._slice(s, min(s + self.batch_size, self.n_samples))
                    for s in range(0, self.n_samples, self.batch_size)
                ]
        yield from self._batches

    def _slice(self, first: int, stop: int) -> SequenceBatch:
        lo, hi = int(self.offsets[first]), int(self.offsets[stop])
        data = tree_map(lambda x: None if x is None else x[lo:hi], self.data)
        return SequenceBatch(data, self.offsets[first : stop + 1] - lo)

    def take(self, index: np.ndarray) -> SequenceBatch:
        """The sequences at ``index`` (in that order) as one batch."""
        rows, offsets = sequence_rows(self.offsets, index)
        data = tree_map(lambda x: None if x is None else x[rows], self.data)
        return SequenceBatch(data, offsets)
