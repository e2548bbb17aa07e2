"""The public constructors of table sources on disk: :func:`from_npy`,
:func:`from_parquet` and :func:`from_csv`, each a row table
(:mod:`emkit.data.tables`) or, given sequence boundaries, the sequences stored in it
(:mod:`emkit.data.sequence_tables`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from emkit.data.sequence_tables import sequence_table
from emkit.data.tables import (
    DEFAULT_INIT_ROWS,
    CsvSource,
    NpySource,
    ParquetSource,
    TableSource,
)

__all__ = ["from_csv", "from_npy", "from_parquet"]


_SEQUENCES_DOC = """
    Notes
    -----
    Sequences (an HMM's data): with ``lengths`` (the length of every sequence, in the
    order of the rows) or ``sequence_column`` (a column of sequence ids; a new sequence
    starts where the id changes, the rows of a sequence must be contiguous; the column
    is not a feature) the source is a
    :class:`~emkit.data.sequence_tables.SequenceTableSource`: batches of whole
    sequences, as many as fit in ``batch_size`` rows (a longer sequence is a batch of
    its own), and initialisation on whole sequences (every sequence when there are at
    most ``init_rows`` rows).
"""


def _with_sequences(table: TableSource, lengths: Any, sequence_column: str | None):
    """``table``, or the sequences in it when boundaries are given."""
    if lengths is None and sequence_column is None:
        return table
    ids = None if sequence_column is None else table.column_chunks(sequence_column)
    return sequence_table(table, lengths=lengths, sequence_column=sequence_column, ids=ids)


def _columns_of(cls, path, columns, lengths, sequence_column, **options):
    """A table of named columns (Parquet, CSV) but the sequence column, or the
    sequences in it when boundaries are given."""
    table = cls(path, columns, exclude=_excluded(columns, sequence_column), **options)
    return _with_sequences(table, lengths, sequence_column)


def _excluded(columns: Sequence[str] | None, sequence_column: str | None) -> tuple[str, ...]:
    """The sequence column, which is not a feature."""
    if sequence_column is None:
        return ()
    if not isinstance(sequence_column, str):
        raise TypeError(f"sequence_column must be a column name, got {sequence_column!r}")
    if columns is not None and sequence_column in columns:
        raise ValueError(
            f"the sequence column {sequence_column!r} is also in columns; the ids of the "
            "sequences are not a feature"
        )
    return (sequence_column,)


def from_npy(
    path: str | os.PathLike,
    *,
    lengths: Any = None,
    batch_size: int | None = None,
    init_rows: int = DEFAULT_INIT_ROWS,
):
    """A ``.npy`` array of shape (n_samples, n_features), memory-mapped and read in batches.

    Parameters
    ----------
    path : str or path-like
    lengths : array-like of int, optional
        Length of every sequence stored in the rows, one after the other (see below).
    batch_size : int, optional
        Rows per batch (default: about 32 MiB of float64).
    init_rows : int, default 100_000
        At most this many rows, a systematic subsample, go to initialisation.

    Returns
    -------
    NpySource, or SequenceTableSource with ``lengths``

    %(sequences)s
    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(10.0).reshape(5, 2))
    >>> src = from_npy(path, batch_size=2)
    >>> src.n_samples, src.n_features, [len(b) for b in src.batches()]
    (5, 2, [2, 2, 1])
    >>> seqs = from_npy(path, lengths=[1, 2, 2], batch_size=3)
    >>> [b.offsets.tolist() for b in seqs.batches()]
    [[0, 1, 3], [0, 2]]
    """
    table = NpySource(path, batch_size=batch_size, init_rows=init_rows)
    return _with_sequences(table, lengths, None)


def from_parquet(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    lengths: Any = None,
    sequence_column: str | None = None,
    batch_size: int | None = None,
    init_rows: int = DEFAULT_INIT_ROWS,
):
    """A Parquet file, or a folder of Parquet files, read in row batches with pyarrow.

    Parameters
    ----------
    path : str or path-like
        A file, or a folder whose ``*.parquet`` files (searched recursively, in sorted
        order) share their columns.
    columns : list of str, optional
        Numeric columns to use (default: all but ``sequence_column``, which must then
        be numeric).
    lengths : array-like of int, optional
        Length of every sequence stored in the rows, one after the other (see below).
    sequence_column : str, optional
        Column of sequence ids (any type), read in one streaming pass (see below).
    batch_size : int, optional
        Rows per batch (default: about 32 MiB of float64).
    init_rows : int, default 100_000
        At most this many rows, a systematic subsample, go to initialisation.

    Returns
    -------
    ParquetSource, or SequenceTableSource with ``lengths`` or ``sequence_column``

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        No such file, unknown columns, non-numeric columns; lengths that do not add
        up to the rows, a missing id, or an id that comes back after another sequence.
    %(sequences)s"""
    options = dict(batch_size=batch_size, init_rows=init_rows)
    return _columns_of(ParquetSource, path, columns, lengths, sequence_column, **options)


def from_csv(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    lengths: Any = None,
    sequence_column: str | None = None,
    batch_size: int | None = None,
    init_rows: int = DEFAULT_INIT_ROWS,
):
    """A CSV file with a header row, streamed in batches of ``batch_size`` rows with
    pyarrow's CSV reader (pandas is not needed).

    Missing values (empty cells and ``NA``, ``NaN``, ``null``, ``None`` in any case, as
    on the command line) are NaN. A file whose name ends in ``.tsv`` is tab-separated;
    header names are stripped of spaces. Whether the columns hold numbers is checked on
    the first 1000 rows; a text value further down raises a ``ValueError`` naming its
    column and line when a pass reaches it. A value pyarrow cannot read as a number (a
    marker padded with spaces, a quoted line break) makes later passes read the file as
    text (slower) or, failing that, with Python's ``csv`` module (see
    :mod:`emkit.data.csv_reader`).

    Counting the rows takes one pass over the file, done the first time the number of
    rows is needed: a scan of the line ends when no cell is quoted, which also notes
    where every batch starts, so that a read of a batch (a Dask worker's) parses only
    that batch; otherwise pyarrow reads one column, and a read of rows parses the file
    up to them.

    Parameters
    ----------
    path : str or path-like
    columns : list of str, optional
        Numeric columns to use (default: all but ``sequence_column``, which must then
        be numeric).
    lengths : array-like of int, optional
        Length of every sequence stored in the rows, one after the other (see below).
    sequence_column : str, optional
        Column of sequence ids (read as text), read in one streaming pass (see below).
    batch_size : int, optional
        Rows per batch (default: about 32 MiB of float64).
    init_rows : int, default 100_000
        At most this many rows, a systematic subsample, go to initialisation.

    Returns
    -------
    CsvSource, or SequenceTableSource with ``lengths`` or ``sequence_column``

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        No such file; an empty file, unknown columns; non-numeric columns (naming
        them); lengths that do not add up to the rows, a missing id, or an id that
        comes back after another sequence.
    %(sequences)s
    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(path, "w").write("a,b,c\\n1,2,x\\n3,4,y\\n5,6,z\\n")
    >>> src = from_csv(path, columns=["a", "b"], batch_size=2)
    >>> src.n_samples, [b.tolist() for b in src.batches()]
    (3, [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0]]])
    >>> _ = open(path, "w").write("id,x\\nu,1\\nu,2\\nv,3\\n")
    >>> seqs = from_csv(path, sequence_column="id")
    >>> seqs.lengths.tolist(), seqs.n_features
    ([2, 1], 1)
    """
    options = dict(batch_size=batch_size, init_rows=init_rows)
    return _columns_of(CsvSource, path, columns, lengths, sequence_column, **options)


for _fn in (from_npy, from_parquet, from_csv):
    if _fn.__doc__:  # (None under python -OO)
        _fn.__doc__ = _fn.__doc__ % {"sequences": _SEQUENCES_DOC}
