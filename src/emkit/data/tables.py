"""Tables read from disk in row batches: ``.npy`` (memory-mapped), Parquet and CSV.

A :class:`TableSource` is a 2-D numeric table of ``n_samples`` rows and
``n_features`` columns that never has to fit in memory: every pass of EM reads it
again, one batch of ``batch_size`` rows at a time, so memory is bounded by a batch.

Every table source also offers

* :meth:`~TableSource.init_data`, the rows a model's ``init_params`` sees: a
  *systematic subsample* of at most ``init_rows`` rows (every ``ceil(n / init_rows)``-th
  row, read batch by batch), so k-means++ and the other initialisations never load
  the whole file; with no more than ``init_rows`` rows it is the whole table, and the
  start equals the in-memory one;
* :meth:`~TableSource.column_mean`, a streaming pass (NaN ignored);
* :meth:`~TableSource.map`, the same table with a function applied to every batch
  (how an estimator centres the data or builds the batches its model takes);
* :meth:`~TableSource.delayed_parts`, one ``dask.delayed`` read per batch, so a Dask
  executor has each worker read its own batches (the data never go through the client).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emkit.data.sources import DataSource

__all__ = [
    "DEFAULT_INIT_ROWS",
    "CsvSource",
    "MappedSource",
    "NpySource",
    "ParquetSource",
    "TableSource",
    "default_batch_size",
]

#: rows of the subsample that initialisation sees (see :meth:`TableSource.init_data`)
DEFAULT_INIT_ROWS = 100_000
#: bytes of float64 per batch when ``batch_size`` is not given (32 MiB)
_BATCH_BYTES = 2**25
#: rows between the rows whose byte offsets a CSV source notes
_INDEX_EVERY = 2**16


def default_batch_size(n_features: int) -> int:
    """Rows per batch when none is given: about 32 MiB of float64, at least 1024 rows.

    >>> default_batch_size(16)
    262144
    """
    return max(1024, _BATCH_BYTES // (8 * max(int(n_features), 1)))


def _check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be an integer, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return int(batch_size)


def _check_init_rows(init_rows: Any) -> int:
    if isinstance(init_rows, bool) or not isinstance(init_rows, numbers.Integral):
        raise TypeError(f"init_rows must be an integer, got {type(init_rows).__name__}")
    if init_rows < 1:
        raise ValueError(f"init_rows must be at least 1, got {init_rows}")
    return int(init_rows)


def as_float_table(block: Any, where: str) -> np.ndarray:
    """A 2-D float array (float32 kept, anything else numeric as float64)."""
    arr = np.asarray(block)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{where} must be a 2-D table, got shape {arr.shape}")
    dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    return np.asarray(arr, dtype=dtype)


class TableSource(DataSource):
    """Base of out-of-core tables: subclasses say how to read rows ``[lo, hi)``."""

    n_features: int
    dtype: np.dtype
    batch_size: int
    init_rows: int

    def _read(self, lo: int, hi: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_batches(self) -> int:
        return max(1, math.ceil(self.n_samples / self.batch_size))

    def _bounds(self) -> list[tuple[int, int]]:
        n, b = self.n_samples, self.batch_size
        return [(lo, min(lo + b, n)) for lo in range(0, n, b)]

    def batches(self) -> Iterator[np.ndarray]:
        for lo, hi in self._bounds():
            yield self._read(lo, hi)

    def init_data(self) -> np.ndarray:
        step = max(1, math.ceil(self.n_samples / self.init_rows))
        if step == 1:
            return np.concatenate(list(self.batches()), axis=0)
        # Every step-th row of the whole table, whatever the batch boundaries, in one
        # streaming pass.
        parts = []
        for (lo, hi), block in zip(self._bounds(), self.batches()):
            first = (-lo) % step
            if first < hi - lo:
                parts.append(block[first::step].copy())  # not a view of the batch
        return np.concatenate(parts, axis=0)

    def column_mean(self) -> np.ndarray:
        """Mean of every column over all rows (NaN ignored), in one streaming pass."""
        total = np.zeros(self.n_features)
        count = np.zeros(self.n_features)
        for block in self.batches():
            seen = ~np.isnan(block)
            total += np.where(seen, block, 0.0).sum(axis=0, dtype=np.float64)
            count += seen.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / count

    def column_variance(self, mean: np.ndarray) -> np.ndarray:
        """Variance of every column about ``mean`` (NaN ignored), in one streaming pass."""
        total = np.zeros(self.n_features)
        count = np.zeros(self.n_features)
        for block in self.batches():
            seen = ~np.isnan(block)
            total += (np.where(seen, block - mean, 0.0) ** 2).sum(axis=0)
            count += seen.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / count

    def delayed_parts(self) -> list[Any]:
        """One ``dask.delayed`` read per batch (for a Dask executor)."""
        import dask

        read = dask.delayed(_read_rows, pure=True)
        return [read(self, lo, hi) for lo, hi in self._bounds()]

    def map(self, fn: Callable[[np.ndarray], Any]) -> MappedSource:
        """This table with ``fn`` applied to every batch (and to :meth:`init_data`)."""
        return MappedSource(self, fn)

    def take(self, index: np.ndarray) -> Any:
        raise TypeError(
            f"{type(self).__name__} reads its rows in order and cannot draw shuffled "
            "mini-batches (online EM); use emkit.data.from_npy, or load the data"
        )


def _read_rows(source: TableSource, lo: int, hi: int) -> np.ndarray:
    return source._read(lo, hi)


class MappedSource(DataSource):
    """A source whose batches are ``fn(batch)`` of another source's.

    ``fn`` must be picklable (a module-level function or a ``functools.partial`` of
    one) for a Dask executor, which applies it on the workers.
    """

    def __init__(self, base: DataSource, fn: Callable[[Any], Any]):
        self.base = base
        self.fn = fn

    @property
    def n_samples(self) -> int:
        return self.base.n_samples

    @property
    def n_batches(self) -> int:
        return getattr(self.base, "n_batches", 1)

    def batches(self) -> Iterator[Any]:
        return map(self.fn, self.base.batches())

    def init_data(self) -> Any:
        return self.fn(self.base.init_data())

    def take(self, index: np.ndarray) -> Any:
        return self.fn(self.base.take(index))

    def delayed_parts(self) -> list[Any]:
        import dask

        fn = dask.delayed(self.fn, pure=True)
        if hasattr(self.base, "delayed_parts"):
            return [fn(part) for part in self.base.delayed_parts()]
        # in memory: each batch goes into the graph as it is
        return [fn(dask.delayed(b, traverse=False)) for b in self.base.batches()]

    def map(self, fn: Callable[[Any], Any]) -> MappedSource:
        return MappedSource(self, fn)


class NpySource(TableSource):
    """A ``.npy`` file of shape (n_samples, n_features), memory-mapped (see :func:`from_npy`)."""

    def __init__(self, path, batch_size=None, init_rows=DEFAULT_INIT_ROWS):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no such .npy file: {self.path}")
        try:
            mm = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{self.path} is not a readable .npy array: {exc}") from None
        as_float_table(mm[:0], f"the array in {self.path}")
        if mm.shape[0] < 1:
            raise ValueError(f"the array in {self.path} has no rows")
        self._n, self.n_features = int(mm.shape[0]), int(mm.shape[1])
        self.dtype = np.dtype(mm.dtype if mm.dtype in (np.float32, np.float64) else np.float64)
        self.batch_size = _check_batch_size(batch_size) or default_batch_size(self.n_features)
        self.init_rows = _check_init_rows(init_rows)
        self._mm = None

    @property
    def n_samples(self) -> int:
        return self._n

    def _map(self) -> np.ndarray:
        if self._mm is None:
            self._mm = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return self._mm

    def _read(self, lo: int, hi: int) -> np.ndarray:
        return np.array(self._map()[lo:hi], dtype=self.dtype)

    def take(self, index: np.ndarray) -> np.ndarray:
        # Random access is what a memory map is for (online EM's shuffled mini-batches).
        return np.array(self._map()[np.asarray(index, dtype=np.intp)], dtype=self.dtype)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_mm": None}  # workers open their own map


class ParquetSource(TableSource):
    """A Parquet file or a folder of them, read in row batches (see :func:`from_parquet`)."""

    def __init__(
        self, path, columns=None, batch_size=None, init_rows=DEFAULT_INIT_ROWS, exclude=()
    ):
        import pyarrow.parquet as pq

        root = Path(path)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*.parquet") if p.is_file())
            if not files:
                raise FileNotFoundError(f"folder {root} holds no .parquet files")
        elif root.is_file():
            files = [root]
        else:
            raise FileNotFoundError(f"no such Parquet file or folder: {root}")
        self.files = [os.fspath(f) for f in files]
        schema = pq.ParquetFile(self.files[0]).schema_arrow
        _check_present(exclude, schema.names, self.files[0])
        names = (
            [c for c in schema.names if c not in exclude]
            if columns is None
            else _column_list(columns)
        )
        missing = [c for c in names if c not in schema.names]
        if missing:
            raise ValueError(
                f"columns {missing} are not in {self.files[0]} (it has {schema.names})"
            )
        _check_numeric({c: schema.field(c).type for c in names}, self.files[0])
        self.columns = names
        self.n_features = len(names)
        self.dtype = np.dtype(np.float64)
        # Row groups are the unit pyarrow reads: (file, group, first row, rows).
        self._groups: list[tuple[int, int, int, int]] = []
        start = 0
        for i, f in enumerate(self.files):
            meta = pq.ParquetFile(f).metadata
            if i and list(pq.ParquetFile(f).schema_arrow.names) != list(schema.names):
                raise ValueError(f"{f} has other columns than {self.files[0]}")
            for g in range(meta.num_row_groups):
                rows = meta.row_group(g).num_rows
                if rows:
                    self._groups.append((i, g, start, rows))
                    start += rows
        if start < 1:
            raise ValueError(f"{path} has no rows")
        self._n = start
        self.batch_size = _check_batch_size(batch_size) or default_batch_size(self.n_features)
        self.init_rows = _check_init_rows(init_rows)

    @property
    def n_samples(self) -> int:
        return self._n

    def batches(self) -> Iterator[np.ndarray]:
        # One sequential scan, a row group at a time (pyarrow's iter_batches holds on to
        # the whole file's buffers); batches are cut at batch_size rows across groups.
        return _recut(self._row_groups(), self._bounds(), self.files[0])

    def _row_groups(self) -> Iterator[np.ndarray]:
        import pyarrow.parquet as pq

        handles: dict[int, Any] = {}
        for i, g, _, _ in self._groups:
            pf = handles.get(i) or handles.setdefault(i, pq.ParquetFile(self.files[i]))
            handles = {i: pf}  # one file open at a time
            yield self._to_numpy(pf.read_row_group(g, columns=self.columns))

    def column_chunks(self, name: str) -> Iterator[np.ndarray]:
        """The values of column ``name`` (any type), a row group at a time."""
        import pyarrow.parquet as pq

        handles: dict[int, Any] = {}
        for i, g, _, _ in self._groups:
            pf = handles.get(i) or handles.setdefault(i, pq.ParquetFile(self.files[i]))
            handles = {i: pf}
            yield pf.read_row_group(g, columns=[name]).column(0).to_numpy(zero_copy_only=False)

    def _to_numpy(self, table) -> np.ndarray:
        out = np.empty((table.num_rows, self.n_features))
        for j, col in enumerate(table.columns):
            out[:, j] = col.to_numpy(zero_copy_only=False)
        return out

    def _read(self, lo: int, hi: int) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pieces, handles = [], {}
        for i, g, first, rows in self._groups:
            if first + rows <= lo or first >= hi:
                continue
            pf = handles.setdefault(i, pq.ParquetFile(self.files[i]))
            table = pf.read_row_group(g, columns=self.columns)
            a, b = max(lo - first, 0), min(hi, first + rows) - first
            pieces.append(table.slice(a, b - a))
        return self._to_numpy(pa.concat_tables(pieces))


class CsvSource(TableSource):
    """A CSV file with a header row, streamed with pyarrow (see :func:`from_csv`)."""

    def __init__(
        self, path, columns=None, batch_size=None, init_rows=DEFAULT_INIT_ROWS, exclude=()
    ):
        from emkit.data.csv_reader import CsvFile

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no such CSV file: {self.path}")
        self._file = CsvFile(
            self.path, header=True, hint="choose numeric columns with columns=[...]"
        )
        names = self._file.names
        _check_present(exclude, names, self.path)
        self.columns = (
            [c for c in names if c not in exclude] if columns is None else _column_list(columns)
        )
        _check_present(self.columns, names, self.path)
        self._keep = [names.index(c) for c in self.columns]
        text = self._file.text_columns(self._keep)
        _refuse_non_numeric(
            [f"{names[j]} (text, such as {v!r})" for j, v in text.items()], self.path
        )
        self.n_features = len(self.columns)
        self.dtype = np.dtype(np.float64)
        self.batch_size = _check_batch_size(batch_size) or default_batch_size(self.n_features)
        self.init_rows = _check_init_rows(init_rows)
        self._n: int | None = None
        # byte offsets of rows 0, every, 2 every, ... (where line ends tell the rows): a
        # read of rows parses at most `every` rows before them
        self._starts: np.ndarray | None = None
        self._every = min(self.batch_size, _INDEX_EVERY)

    @property
    def n_samples(self) -> int:
        if self._n is None:  # one pass over the file
            index = self._file.row_starts(self._every)  # line ends, where they tell rows
            if index is None:
                self._n = self._file.count_rows()  # pyarrow, one column as text
            else:
                self._n, self._starts = index
            if self._n < 1:
                raise ValueError(f"{self.path} has no rows")
        return self._n

    def _stream(self, lo: int) -> Iterator[np.ndarray]:
        """The rows from ``lo`` on, in pyarrow's blocks: parsed from the last indexed
        row at or before ``lo`` (or from the top), the rows before ``lo`` passed over."""
        k = lo // self._every if self._starts is not None else 0
        seek = (int(self._starts[k]), k * self._every) if k else None
        for values, _ in self._file.blocks(self._keep, lo, seek=seek):
            yield values

    def batches(self) -> Iterator[np.ndarray]:
        drawn = 0

        def stream() -> Iterator[np.ndarray]:
            nonlocal drawn
            for block in self._stream(0):
                drawn += len(block)
                yield block

        blocks = stream()
        yield from _recut(blocks, self._bounds(), self.path)
        rows = drawn + sum(len(block) for block in blocks)  # (none, unless the file grew)
        if rows != self.n_samples:
            raise ValueError(
                f"{self.path} has {rows} rows, not the {self.n_samples} counted before; was "
                "it changed while being read?"
            )

    def column_chunks(self, name: str) -> Iterator[np.ndarray]:
        """The values of column ``name`` read as text (missing markers as None), one
        of pyarrow's blocks at a time."""
        _check_present([name], self._file.names, self.path)
        return self._file.text_column(self._file.names.index(name))

    def _read(self, lo: int, hi: int) -> np.ndarray:
        stream = self._stream(lo)
        try:
            return next(_recut(stream, [(lo, hi)], self.path))
        finally:
            stream.close()


def _recut(
    blocks: Iterable[np.ndarray], bounds: Sequence[tuple[int, int]], where: str = "the table"
) -> Iterator[np.ndarray]:
    """The rows ``[lo, hi)`` of every bound, one after the other, from a stream of
    consecutive row blocks that starts at the first bound.

    A bound within one block is a view of it; one across blocks is copied into an array
    of its own (so the memory is a bound's rows and a block, never a list of blocks and
    their concatenation).
    """
    stream = iter(blocks)
    rest = None  # the rows of the last block not given yet
    row = bounds[0][0] if bounds else 0  # the first row not yet drawn from the stream

    def draw(hi: int) -> np.ndarray:
        nonlocal row
        block = next(stream, None)
        if block is None:
            raise ValueError(
                f"{where} ends at row {row}, before row {hi}; was it changed while being read?"
            )
        row += len(block)
        return block

    for lo, hi in bounds:
        want = hi - lo
        while rest is None or not len(rest):
            rest = draw(hi)
        if len(rest) >= want:
            out, rest = rest[:want], rest[want:]
        else:
            out = np.empty((want, *rest.shape[1:]), dtype=rest.dtype)
            filled = 0
            while filled < want:
                while rest is None or not len(rest):
                    rest = draw(hi)
                take = min(len(rest), want - filled)
                out[filled : filled + take] = rest[:take]
                filled, rest = filled + take, rest[take:]
        yield out


def _column_list(columns: Any) -> list[str]:
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise TypeError(f"columns must be a non-empty list of column names, got {columns!r}")
    return list(columns)


def _check_present(names: Sequence[str], columns: Sequence[str], where: str) -> None:
    missing = [c for c in names if c not in columns]
    if missing:
        raise ValueError(f"columns {missing} are not in {where} (it has {list(columns)})")


def _check_numeric(types: dict[str, Any], where: str) -> None:
    """Refuse the columns whose NumPy or pyarrow type is not numeric."""
    bad = []
    for name, t in types.items():
        kind = getattr(t, "kind", None)
        if kind is not None:  # a NumPy / pandas dtype
            ok = kind in "biuf"
        else:  # a pyarrow type
            import pyarrow.types as pat

            ok = pat.is_integer(t) or pat.is_floating(t) or pat.is_boolean(t)
        if not ok:
            bad.append(f"{name} ({t})")
    _refuse_non_numeric(bad, where)


def _refuse_non_numeric(bad: list[str], where: str) -> None:
    if bad:
        raise TypeError(
            f"columns {', '.join(bad)} of {where} are not numeric; choose numeric ones with "
            "columns=[...]"
        )
