"""Streaming the numeric columns of a CSV file as float64 blocks: how
:func:`emkit.data.from_csv` and the command line read CSV (and TSV) files.

pyarrow's streaming CSV reader (``pyarrow.csv.open_csv``) parses the file in blocks of
about 256 KiB; the selected columns come out as float64 NumPy blocks, missing values
(empty cells and ``NA``, ``NaN``, ``null``, ``None`` in any case) as NaN. Where pyarrow
cannot read the columns as numbers (a missing marker padded with spaces, a row cut by
a quoted line break, ...) it reads the rest again as text, stripped before the numbers
and markers are recognised; where it cannot read that either, Python's ``csv`` module
reads the rest, or raises a ``ValueError`` naming the column and the line of the first
problem. Each of these takes over at the row where the one before stopped, so a
stream never gives a row twice; the peak memory is a few of pyarrow's blocks beside
the float64 blocks given out.
"""

from __future__ import annotations

import collections
import csv
import io
import itertools
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MISSING_MARKERS",
    "CsvFile",
    "arrow_floats",
    "is_text",
    "looks_like_header",
    "parse_text",
]

#: CSV cells read as a missing value (compared stripped and lower-cased)
MISSING_MARKERS = ("", "na", "nan", "null", "none")
#: the markers in every mix of case, for pyarrow (which compares cells exactly)
NULL_VALUES = sorted(
    {
        "".join(chars)
        for m in MISSING_MARKERS
        for chars in itertools.product(*({c, c.upper()} for c in m))
    }
)
_NULLS = frozenset(NULL_VALUES)
#: a number as pyarrow's CSV reader parses one (checked on the stripped cell)
_NUMBER = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf(?:inity)?)", re.I
)
#: rows per block of the Python CSV reader
BLOCK_ROWS = 65_536
#: rows whose cells decide whether a column holds numbers (:meth:`CsvFile.text_columns`)
_HEAD_ROWS = 1000
#: bytes per read of the line-end scan (:meth:`CsvFile.row_starts`)
_SCAN_BYTES = 1 << 22


class CannotRead(Exception):
    """pyarrow could not read the file as asked (``"read"``), or a block failed the
    caller's check (``"value"``): the next reader takes over."""


class CsvFile:
    """A CSV file's layout, found from its first rows, and streams of its columns.

    Parameters
    ----------
    path : str or path-like
        A CSV file (tab-separated if its name ends in ``.tsv``), or a pipe (such as
        ``<(zcat data.csv.gz)``), which is read once, into memory.
    header : bool, optional
        Whether the first (non-empty) row holds the column names; detected when None
        (see :func:`looks_like_header`).
    hint : str
        What the error about a non-numeric value suggests (how to choose columns).

    Attributes
    ----------
    names : list of str
        The header's names (stripped), or ``x0, x1, ...`` without a header.
    header : bool
    n_fields : int
        Fields per row (those of the first row).
    skip : int
        Lines before the data: up to and including the header row (0 without one).

    Raises
    ------
    ValueError
        The file is empty, not UTF-8 text, or not valid CSV.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        header: bool | None = None,
        hint: str = "choose numeric columns",
    ):
        self.path = Path(path)
        self.hint = hint
        self.delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
        self._data: bytes | None = None
        if not self.path.is_file():  # a pipe is read once, into memory
            with self.path.open("rb") as fh:
                self._data = fh.read()
        rows, self.skip = self._first_rows()
        if not rows:
            raise ValueError(f"{self.path} is empty (a CSV file needs a header row or data)")
        self.n_fields = len(rows[0])
        self.header = looks_like_header(rows) if header is None else bool(header)
        if self.header:
            self.names = [name.strip() for name in rows[0]]
        else:
            self.names = [f"x{j}" for j in range(self.n_fields)]
            self.skip = 0
        self.first_line_chars = len(self.delimiter.join(rows[0]))
        self._first_mode = 0  # the reader a stream starts with (see blocks)

    # ------------------------------------------------------------------ the file
    def binary(self) -> io.BufferedIOBase:
        return io.BytesIO(self._data) if self._data is not None else self.path.open("rb")

    def _text(self, errors: str) -> io.TextIOWrapper:
        return io.TextIOWrapper(self.binary(), encoding="utf-8-sig", errors=errors, newline="")

    def _first_rows(self) -> tuple[list[list[str]], int]:
        """The first two non-empty rows, and the number of lines up to the first."""
        rows: list[list[str]] = []
        skip = 0
        try:
            with self._text("strict") as fh:
                reader = csv.reader(fh, delimiter=self.delimiter, skipinitialspace=True)
                for row in reader:
                    if row:
                        rows.append(row)
                        skip = skip or reader.line_num
                    if len(rows) == 2:
                        break
        except UnicodeDecodeError:
            raise ValueError(f"{self.path} is not a UTF-8 text file") from None
        except csv.Error as exc:
            raise ValueError(f"{self.path} is not a valid CSV file: {exc}") from None
        return rows, skip

    def count_lines(self) -> int:
        """An upper bound of the number of data rows: the number of lines."""
        if self._data is not None:
            return self._data.count(b"\n") + 1
        n, buf = 1, bytearray(1 << 20)
        with self.path.open("rb", buffering=0) as fh:
            while k := fh.readinto(buf):
                n += buf.count(b"\n", 0, k)
        return n

    def row_starts(self, every: int) -> tuple[int, np.ndarray] | None:
        """The number of data rows and the byte offsets of rows ``0, every, 2 every,
        ...``, found by a scan of the line ends; None when rows cannot be told from
        lines (a quote in the data, a line ending in a lone carriage return).

        Every non-empty line after the header is a row, as pyarrow and the ``csv``
        module read it when no cell is quoted.
        """
        starts: list[np.ndarray] = []
        row = 0
        with self.binary() as fh:
            for _ in range(self.skip):  # the header's lines (blank lines before it)
                fh.readline()
            pos = fh.tell()
            while chunk := fh.read(_SCAN_BYTES):
                if not chunk.endswith(b"\n"):  # whole lines only
                    chunk += fh.readline()
                if b'"' in chunk or (b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n")):
                    return None
                a = np.frombuffer(chunk, np.uint8)
                ends = np.flatnonzero(a == 10)
                if chunk[-1:] != b"\n":  # the last line, with no line end
                    ends = np.append(ends, a.size)
                first = (-row) % every  # the first row of the chunk that starts a batch
                blank = b"\r" in chunk or ends[0] == 0 or bool((np.diff(ends) == 1).any())
                if first >= ends.size and not blank:  # every line a row: just counted
                    row += ends.size
                else:
                    begins = _row_begins(a, ends)
                    starts.append(begins[first::every] + pos)
                    row += begins.size
                pos += len(chunk)
        return row, np.concatenate(starts) if starts else np.zeros(0, np.int64)

    # ------------------------------------------------------------------ streams
    def blocks(
        self,
        keep: Sequence[int],
        start: int = 0,
        *,
        check: Any = None,
        seek: tuple[int, int] | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """The columns ``keep`` as float64 blocks, from data row ``start`` to the end.

        Yields ``(values, lines)``: the rows' values (missing markers as NaN) and the
        file line of each row where the ``csv`` module read them (None where pyarrow
        did). pyarrow reads numbers, then text (stripped), then the ``csv`` module
        reads the rest; a reader that fails once is not tried again by later streams.

        Parameters
        ----------
        keep : sequence of int
            Positions of the columns in the file.
        start : int
            The first data row to give (rows before it are parsed and passed over).
        check : callable, optional
            ``check(values)`` of every block pyarrow reads; False hands the rest to the
            ``csv`` module (so that the caller can name the line of a bad value).
        seek : (int, int), optional
            The byte offset of a data row at or before ``start`` and that row's number
            (from :meth:`row_starts`): pyarrow starts there.

        Raises
        ------
        ValueError
            A value that is not a number, a row with another number of fields, bytes
            that are not UTF-8 (naming the column and line).
        """
        done = start
        try:
            import pyarrow  # noqa: F401
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            self._first_mode = 2
        for mode in range(self._first_mode, 2):
            try:
                at = seek if seek is not None and seek[1] <= done else None
                for values in self._arrow_blocks(keep, mode == 1, done, at):
                    if check is not None and not check(values):
                        raise CannotRead("value")
                    done += len(values)
                    yield values, None
                return
            except CannotRead as exc:
                if exc.args[0] == "value":
                    break
                self._first_mode = mode + 1
        yield from self._python_blocks(keep, done)

    def _arrow_blocks(
        self, keep: Sequence[int], text: bool, start: int, seek: tuple[int, int] | None
    ) -> Iterator[np.ndarray]:
        """pyarrow's record batches as float64 blocks (``text``: cells read as text and
        stripped before numbers and markers are recognised). Raises
        ``CannotRead("read")`` where pyarrow cannot read a value or a row."""
        import pyarrow as pa

        row = 0 if seek is None else seek[1]
        try:
            with self._arrow_reader(keep, pa.string() if text else pa.float64(), seek) as reader:
                for batch in reader:
                    n = batch.num_rows
                    if row + n <= start:  # passed over: never converted
                        row += n
                        continue
                    values = np.empty((n, len(keep)))
                    for j, column in enumerate(batch.columns):
                        values[:, j] = arrow_floats(parse_text(column) if text else column)
                    first, row = max(start - row, 0), row + n
                    yield values[first:] if first else values
        except pa.ArrowException:
            raise CannotRead("read") from None

    def _arrow_reader(self, keep: Sequence[int], kind: Any, seek: tuple[int, int] | None):
        """A context manager: pyarrow's streaming reader of the columns ``keep`` as
        ``kind`` (text: quoted line breaks allowed), from the data or from a byte offset."""
        import contextlib

        import pyarrow as pa
        import pyarrow.csv as pacsv

        fields = [f"f{j}" for j in range(self.n_fields)]  # the file's names may repeat
        selected = [fields[j] for j in keep]
        text = kind == pa.string()
        options = {
            # Blocks of 256 KiB (at least 64 rows): as fast as larger ones on a 1M x 8
            # file, and the parser's buffers stay small beside the float64 data.
            "read_options": pacsv.ReadOptions(
                column_names=fields,
                skip_rows=self.skip if seek is None else 0,
                block_size=max(1 << 18, 64 * self.first_line_chars),
            ),
            "parse_options": pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=text),
            "convert_options": pacsv.ConvertOptions(
                include_columns=selected,
                column_types={name: kind for name in selected},
                null_values=NULL_VALUES,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
            # Freed batches go back to the system at once (the default pools keep them).
            "memory_pool": pa.system_memory_pool(),
        }

        @contextlib.contextmanager
        def reader():
            with self.binary() as fh:
                if seek is not None:
                    fh.seek(seek[0])
                yield pacsv.open_csv(fh, **options)

        return reader()

    def _python_rows(
        self, keep: Sequence[int], start: int = 0, block_rows: int = BLOCK_ROWS
    ) -> Iterator[tuple[list[list[str]], list[int]]]:
        """The cells of the columns ``keep`` read by Python's ``csv`` module, from data
        row ``start``, in blocks: (each row's cells, each row's line)."""
        with self._text("surrogateescape") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter, skipinitialspace=True)
            rows = (row for row in reader if row)
            try:
                collections.deque(itertools.islice(rows, int(self.header) + start), maxlen=0)
                while True:
                    cells, lines = [], []
                    for row in itertools.islice(rows, block_rows):
                        if len(row) != self.n_fields:
                            first = "the header" if self.header else "the first row"
                            raise ValueError(
                                f"{self.path}: line {reader.line_num} has {_fields(len(row))} "
                                f"but {first} has {_fields(self.n_fields)}"
                            )
                        cells.append([row[j] for j in keep])
                        lines.append(reader.line_num)
                    if not cells:
                        return
                    yield cells, lines
            except csv.Error as exc:
                raise ValueError(
                    f"{self.path} is not a valid CSV file: line {reader.line_num}: {exc}"
                ) from None

    def _python_blocks(
        self, keep: Sequence[int], start: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for cells, lines in self._python_rows(keep, start):
            line_numbers = np.asarray(lines)
            values = np.empty((len(cells), len(keep)))
            for j, column in enumerate(zip(*cells)):
                values[:, j] = self._parse_column(column, keep[j], line_numbers)
            yield values, line_numbers

    def _parse_column(self, cells: Sequence[str], j: int, lines: np.ndarray) -> np.ndarray:
        """One column's cells as float64 (missing markers as NaN), or a ValueError naming
        the column and the line of the first bad cell."""
        try:  # all at once (pyarrow, as in the text pass); cell by cell on failure
            import pyarrow as pa

            return arrow_floats(parse_text(pa.array(cells, pa.string())))
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            pass
        except (pa.ArrowException, UnicodeEncodeError):  # text, or undecodable bytes
            pass
        out = np.empty(len(cells))
        for i, cell in enumerate(cells):
            text = cell.strip()
            if text.lower() in MISSING_MARKERS:
                out[i] = np.nan
            elif _NUMBER.fullmatch(text):
                out[i] = float(text)
            elif any("\udc80" <= c <= "\udcff" for c in cell):  # undecodable bytes
                raise ValueError(f"{self.path} is not a UTF-8 text file (line {lines[i]})")
            else:
                raise ValueError(
                    f"{self.path}: column {self.names[j]!r} has the non-numeric value "
                    f"{cell!r} at line {lines[i]}; {self.hint}"
                )
        return out

    def text_column(self, j: int) -> Iterator[np.ndarray]:
        """Column ``j``'s cells as text, a block at a time: object arrays of ``str``,
        None for a missing marker."""
        done = 0
        if self._first_mode < 2:
            import pyarrow as pa

            try:
                with self._arrow_reader([j], pa.string(), None) as reader:
                    for batch in reader:
                        done += batch.num_rows
                        yield np.asarray(batch.column(0).to_pylist(), dtype=object)
                return
            except pa.ArrowException:
                pass
        for cells, _ in self._python_rows([j], done):
            yield np.asarray([None if c[0] in _NULLS else c[0] for c in cells], dtype=object)

    def count_rows(self) -> int:
        """The number of data rows, in one streaming pass (that reads one column)."""
        return sum(len(block) for block in self.text_column(0))

    def text_columns(self, keep: Sequence[int]) -> dict[int, str]:
        """The columns among ``keep`` with a cell that is neither a number nor a missing
        marker in the first 1000 data rows, each with such a cell."""
        cells, _ = next(self._python_rows(keep, 0, _HEAD_ROWS), ([], []))
        found = {}
        for j, column in zip(keep, zip(*cells)):
            text = next((cell for cell in column if is_text(cell)), None)
            if text is not None:
                found[j] = text
        return found


def parse_text(column: Any) -> Any:
    """A pyarrow column of text as float64: stripped, missing markers as nulls (raises
    ``ArrowInvalid`` for text that is not a number)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pool = pa.system_memory_pool()
    text = pc.utf8_trim_whitespace(column, memory_pool=pool)
    lower = pc.utf8_lower(text, memory_pool=pool)
    missing = pc.is_in(lower, value_set=pa.array(MISSING_MARKERS), memory_pool=pool)
    text = pc.if_else(missing, pa.scalar(None, pa.string()), text, memory_pool=pool)
    return pc.cast(text, pa.float64(), memory_pool=pool)


def arrow_floats(column: Any) -> np.ndarray:
    """A numeric pyarrow array (or chunked array) as float64, nulls as NaN.

    Reads the array's buffers directly: ``to_numpy`` would import pandas for
    arrays with nulls.
    """
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        chunks = [arrow_floats(chunk) for chunk in column.chunks]
        return np.concatenate(chunks) if chunks else np.empty(0)
    if column.type != pa.float64():
        column = column.cast(pa.float64(), memory_pool=pa.system_memory_pool())
    n, offset = len(column), column.offset
    validity, data = column.buffers()[:2]
    if data is None:  # a column of nulls only
        return np.full(n, np.nan)
    values = np.frombuffer(data, dtype=np.float64, count=n, offset=8 * offset)
    if column.null_count:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), count=offset + n, bitorder="little")
        values = np.where(bits[offset:].view(bool), values, np.nan)
    return values


def _row_begins(a: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Where the non-empty lines of the bytes ``a`` begin, given where they end."""
    begins = np.concatenate([[0], ends[:-1] + 1])
    size = ends - begins
    empty = (size == 0) | ((size == 1) & (a[np.minimum(begins, a.size - 1)] == 13))
    return begins[~empty]


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def _is_number(cell: str) -> bool:
    return _NUMBER.fullmatch(cell.strip()) is not None


def is_text(cell: str) -> bool:
    """Whether a CSV cell is neither a number nor a missing marker."""
    return not _is_number(cell) and cell.strip().lower() not in MISSING_MARKERS


def looks_like_header(rows: list[list[str]]) -> bool:
    """Whether the first of a CSV file's first (one or two) rows is a header row.

    It is when some column holds text in it and a number or a missing value below it,
    or when every one of its fields is text; a row of numbers (and missing values) is
    data, and so is a row whose text columns hold text in the second row too.

    Examples
    --------
    >>> looks_like_header([["a", "b"], ["1", "2"]]), looks_like_header([["1", "2"]])
    (True, False)
    """
    first = rows[0]
    text = [is_text(cell) for cell in first]
    if all(text) or len(rows) == 1:
        return any(text)
    second = rows[1]
    return any(t and j < len(second) and not is_text(second[j]) for j, t in enumerate(text))
