"""Reading a numeric data matrix from a CSV, ``.npy`` or Parquet file for the command line.

Every format is read as a stream of float64 blocks of the selected columns, written
into one preallocated array, so the peak memory is about the float64 size of the
selected data (not of the file's text):

* CSV / TSV: pyarrow's streaming CSV reader (``pyarrow.csv.open_csv``), the selected
  columns converted batch by batch. When it cannot read a file (a bad value, a row
  with the wrong number of fields, a missing marker padded with spaces, a quoted
  line break in a text column, ...), the file is read again by Python's ``csv``
  module, which either reads it or reports the first problem with its column and
  line number;
* Parquet: one row group at a time;
* ``.npy``: loaded, then the selected columns taken.

Missing values (empty cells and ``NA``, ``NaN``, ``null``, ``None`` in any case; nulls
in Parquet; NaN anywhere) are NaN, dropped or an error as ``missing`` says; an
infinite value is always an error.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MISSING_MARKERS",
    "MISSING_MODES",
    "DataTable",
    "column_names",
    "read_data",
    "read_table",
    "select_columns",
]

#: what ``missing`` may be: keep missing values as NaN, drop their rows, or refuse them
MISSING_MODES = ("allow", "drop", "error")
#: CSV cells read as a missing value (compared stripped and lower-cased)
MISSING_MARKERS = ("", "na", "nan", "null", "none")
#: the markers in every mix of case, for pyarrow (which compares cells exactly)
_NULL_VALUES = sorted(
    {
        "".join(chars)
        for m in MISSING_MARKERS
        for chars in itertools.product(*({c, c.upper()} for c in m))
    }
)
#: a number as pyarrow's CSV reader parses one (checked on the stripped cell)
_NUMBER = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf(?:inity)?)", re.I
)
#: rows per block of the Python CSV reader and of ``.npy`` checks
_BLOCK_ROWS = 65_536


@dataclass
class DataTable:
    """The selected columns of a data file as a float64 matrix, and how it was read.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_columns), float64
        Missing values are NaN (``missing="allow"``).
    names : list of str
        The selected columns' names: the file's (a CSV header, a Parquet schema) or
        generated ones, ``x0, x1, ...`` (numbered by position in the file).
    named : bool
        Whether ``names`` come from the file (False for generated names).
    n_rows_read : int
        Data rows in the file.
    n_dropped : int
        Rows left out for a missing value (``missing="drop"``).
    notes : list of str
        What a user should be told: the header was detected as absent, rows dropped.
    """

    X: np.ndarray
    names: list[str]
    named: bool
    n_rows_read: int
    n_dropped: int = 0
    notes: list[str] = field(default_factory=list)


def read_data(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    missing: str = "allow",
    header: bool | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Read a numeric data matrix from a CSV, ``.npy`` or ``.parquet`` file.

    Parameters
    ----------
    path : str or path-like
        ``.npy``: a 1-D or 2-D numeric array (columns are named ``x0, x1, ...``);
        ``.parquet`` / ``.pq``: a Parquet file; anything else: a CSV file (tab-separated
        if the name ends in ``.tsv``).
    columns : sequence of str, optional
        The columns to use, by name or 0-based index; all columns by default.
    missing : {"allow", "drop", "error"}, default "allow"
        Missing values (empty cells and ``NA``, ``NaN``, ``null``, ``None`` in any
        case; Parquet nulls; NaN): kept as NaN, their rows dropped, or an error.
    header : bool, optional
        Whether a CSV file's first row holds the column names; by default it is
        detected: the first row is a header unless it reads as data (see
        :func:`column_names`).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    feature_names : list of str

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unreadable file, unknown column, a non-numeric value, a missing value with
        ``missing="error"`` or an infinite value (each message names the column and
        the line or row), or no rows.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.

    Examples
    --------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(path, "w").write("a,b,kind\\n1,2,u\\n3,NA,v\\n")
    >>> X, names = read_data(path, ["a", "b"])
    >>> X.tolist(), names
    ([[1.0, 2.0], [3.0, nan]], ['a', 'b'])
    """
    table = read_table(path, columns, missing=missing, header=header)
    return table.X, table.names


def read_table(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    missing: str = "allow",
    header: bool | None = None,
) -> DataTable:
    """:func:`read_data`, with what the command line tells about the reading.

    Returns
    -------
    DataTable
    """
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_MODES)}, got {missing!r}")
    file = _open_data_file(path, header)
    keep = select_columns(file.names, columns, file.path)
    X, n_read, n_dropped = file.read(keep, missing)
    names = [file.names[j] for j in keep]
    notes = list(file.notes)
    if n_dropped:
        notes.append(
            f"{n_dropped} of {n_read} rows of {file.path} have a missing value and were "
            "left out (--missing drop)"
        )
    if n_read == 0:
        raise ValueError(f"{file.path} has no data rows")
    if len(X) == 0:
        raise ValueError(f"every row of {file.path} has a missing value; use --missing allow")
    return DataTable(X, names, file.named, n_read, n_dropped, notes)


def column_names(path: str | os.PathLike, header: bool | None = None) -> tuple[list[str], bool]:
    """The column names of a data file and whether they come from the file.

    Only the start of a CSV file (or a Parquet file's schema, or a ``.npy`` header) is
    read. A CSV file's first row is taken for a header unless ``header`` says
    otherwise or it reads as data: some column holds text in the first row and a
    number (or a missing value) in the second, or the first row is all text; else
    (every column's first value a number or a missing value, or text in both rows)
    it is data, and the columns are named ``x0, x1, ...``.

    Returns
    -------
    names : list of str
    named : bool
        False when the names were generated (``x0, x1, ...``).
    """
    file = _open_data_file(path, header)
    return file.names, file.named


# ---------------------------------------------------------------------- files
def _open_data_file(path: str | os.PathLike, header: bool | None) -> _DataFile:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a data file")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".parquet", ".pq"):
        if header is not None:
            option = "--header" if header else "--no-header"
            raise ValueError(f"{option} applies to CSV and TSV files, not to {path}")
        return _NpyFile(path) if suffix == ".npy" else _ParquetFile(path)
    return _CsvFile(path, header)


class _DataFile:
    """A data file's column names, and the reading of some of its columns."""

    path: Path
    names: list[str]
    named: bool = True
    notes: tuple[str, ...] = ()

    def read(self, keep: list[int], missing: str) -> tuple[np.ndarray, int, int]:
        """``(X, rows read, rows dropped)`` for the columns ``keep``."""
        raise NotImplementedError  # pragma: no cover

    def _assemble(
        self,
        blocks: Iterable[tuple[np.ndarray, np.ndarray | None]],
        keep: list[int],
        missing: str,
        capacity: int | None,
    ) -> tuple[np.ndarray, int, int]:
        """Check the blocks' values and write them into one array.

        ``blocks`` yields ``(values, lines)``: float64 rows of the selected columns and
        the file line of each row (None: the rows are numbered 1, 2, ... instead). With
        ``capacity`` (an upper bound of the number of rows) the array is allocated once
        and its unused tail is never touched, so it costs no memory.
        """
        n_cols = len(keep)
        out = np.empty((capacity, n_cols)) if capacity is not None else None
        parts: list[np.ndarray] = []
        n_read = n_kept = 0
        for values, lines in blocks:
            bad = ~np.isfinite(values)
            if bad.any():
                self._check_values(values, bad, lines, n_read, keep, missing)
                if missing == "drop":
                    values = values[~bad.any(axis=1)]
            n_read += len(bad)
            if out is not None:
                if n_kept + len(values) > len(out):  # pragma: no cover - capacity is an upper bound
                    out = np.concatenate([out[:n_kept], np.empty((len(values) + n_kept, n_cols))])
                out[n_kept : n_kept + len(values)] = values
            else:
                parts.append(values)
            n_kept += len(values)
        if out is None:
            out = parts[0] if len(parts) == 1 else np.concatenate(parts or [np.empty((0, n_cols))])
        X = np.ascontiguousarray(out[:n_kept], dtype=np.float64)
        return X, n_read, n_read - n_kept

    def _check_values(
        self,
        values: np.ndarray,
        bad: np.ndarray,
        lines: np.ndarray | None,
        first_row: int,
        keep: list[int],
        missing: str,
    ) -> None:
        """Raise for an infinite value, or for a missing one when ``missing="error"``."""
        infinite = np.isinf(values)
        check = infinite if missing != "error" else bad
        if not check.any():
            return
        i, j = (int(v) for v in np.argwhere(check)[0])
        where = self._where(i, lines, first_row)
        name = self.names[keep[j]]
        if infinite[i, j]:
            raise ValueError(
                f"{self.path}: column {name!r} has an infinite value at {where}; emkit "
                "needs finite numbers"
            )
        raise ValueError(
            f"{self.path}: missing value in column {name!r} at {where}; use --missing allow or drop"
        )

    def _where(self, i: int, lines: np.ndarray | None, first_row: int) -> str:
        return f"line {lines[i]}" if lines is not None else f"row {first_row + i + 1}"


def select_columns(
    names: list[str], columns: Sequence[str] | None, path: str | os.PathLike
) -> list[int]:
    """Indices of the requested ``columns`` of a file with columns ``names``: each by
    name, else by 0-based index; all of them when ``columns`` is empty or None.

    Raises
    ------
    ValueError
        An unknown column (the message lists the file's columns), or one selected twice.
    """
    if not columns:
        return list(range(len(names)))
    keep = []
    for col in columns:
        if col in names:
            j = names.index(col)
        elif col.isdigit() and int(col) < len(names):
            j = int(col)
        else:
            raise ValueError(f"{path} has no column {col!r}; its columns are {', '.join(names)}")
        if j in keep:
            raise ValueError(f"column {col!r} is selected twice")
        keep.append(j)
    return keep


def _generated_names(n: int) -> list[str]:
    return [f"x{j}" for j in range(n)]


# ---------------------------------------------------------------------- CSV
class _CsvFile(_DataFile):
    """A CSV (or TSV) file: its first rows are read here to find the columns."""

    def __init__(self, path: Path, header: bool | None):
        self.path = path
        self.delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        self._data: bytes | None = None
        if not path.is_file():  # a pipe (such as <(zcat ...)) is read once, into memory
            with path.open("rb") as fh:
                self._data = fh.read()
        rows, self.skip = self._first_rows()
        if not rows:
            raise ValueError(f"{path} is empty (a CSV file needs a header row or data)")
        self.n_fields = len(rows[0])
        self.header = _looks_like_header(rows) if header is None else header
        if self.header:
            self.names = [name.strip() for name in rows[0]]
        else:
            self.names = _generated_names(self.n_fields)
            self.named = False
            self.skip = 0
            if header is None:
                last = f"x{self.n_fields - 1}"
                self.notes = (
                    f"{path} has no header row (its first row reads as data); columns are "
                    f"named x0..{last}; pass --header to read it as names",
                )
        self.first_line_chars = len(self.delimiter.join(rows[0]))

    def _binary(self) -> io.BufferedIOBase:
        return io.BytesIO(self._data) if self._data is not None else self.path.open("rb")

    def _text(self, errors: str) -> io.TextIOWrapper:
        return io.TextIOWrapper(self._binary(), encoding="utf-8-sig", errors=errors, newline="")

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

    def _count_lines(self) -> int:
        """An upper bound of the number of data rows: the number of lines."""
        if self._data is not None:
            return self._data.count(b"\n") + 1
        n, buf = 1, bytearray(1 << 20)
        with self.path.open("rb", buffering=0) as fh:
            while k := fh.readinto(buf):
                n += buf.count(b"\n", 0, k)
        return n

    def read(self, keep: list[int], missing: str) -> tuple[np.ndarray, int, int]:
        capacity = self._count_lines()
        try:
            import pyarrow  # noqa: F401
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            return self._assemble(self._python_blocks(keep), keep, missing, capacity)
        # pyarrow parsing numbers; pyarrow reading text, numbers and missing markers
        # found after stripping spaces (such as " NA"); Python's csv module, which reads
        # the rest or names the line of the first problem.
        try:
            return self._assemble(self._arrow_blocks(keep, missing, False), keep, missing, capacity)
        except _ArrowCannot as exc:
            reason = exc.args[0]
        # (each attempt after its predecessor's exception and arrays are freed)
        if reason == "read":
            try:
                blocks = self._arrow_blocks(keep, missing, True)
                return self._assemble(blocks, keep, missing, capacity)
            except _ArrowCannot:
                pass
        return self._assemble(self._python_blocks(keep), keep, missing, capacity)

    def _arrow_blocks(
        self, keep: list[int], missing: str, text: bool
    ) -> Iterator[tuple[np.ndarray, None]]:
        """Batches of pyarrow's streaming CSV reader as float64 blocks.

        ``text``: read the cells as text and strip them before the missing markers
        and the numbers are recognised. A value pyarrow cannot read (or a row it
        cannot parse) raises ``_ArrowCannot("read")``; an infinite value, or a missing
        one when ``missing="error"``, ``_ArrowCannot("value")``: their lines are not
        known here.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv

        fields = [f"f{j}" for j in range(self.n_fields)]  # the file's names may repeat
        selected = [fields[j] for j in keep]
        kind = pa.string() if text else pa.float64()
        options = {
            # Blocks of 256 KiB (at least 64 rows): as fast as larger ones on a 1M x 8
            # file, and the parser's buffers stay small beside the float64 data.
            "read_options": pacsv.ReadOptions(
                column_names=fields,
                skip_rows=self.skip,
                block_size=max(1 << 18, 64 * self.first_line_chars),
            ),
            "parse_options": pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=text),
            "convert_options": pacsv.ConvertOptions(
                include_columns=selected,
                column_types={name: kind for name in selected},
                null_values=_NULL_VALUES,
                quoted_strings_can_be_null=True,
            ),
            # Freed batches go back to the system at once (the default pools keep them).
            "memory_pool": pa.system_memory_pool(),
        }
        try:
            with self._binary() as fh:
                reader = pacsv.open_csv(fh, **options)
                for batch in reader:
                    values = np.empty((batch.num_rows, len(keep)))
                    for j, column in enumerate(batch.columns):
                        values[:, j] = arrow_floats(_parse_text(column) if text else column)
                    if not np.isfinite(values).all() and (
                        missing == "error" or np.isinf(values).any()
                    ):
                        raise _ArrowCannot("value")
                    yield values, None
        except pa.ArrowException:
            raise _ArrowCannot("read") from None

    def _python_blocks(self, keep: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The file read by Python's csv module, in blocks, each row with its line."""
        with self._text("surrogateescape") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter, skipinitialspace=True)
            rows = (row for row in reader if row)
            if self.header:
                next(rows, None)
            try:
                while True:
                    cells, lines = [], []
                    for row in itertools.islice(rows, _BLOCK_ROWS):
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
                    lines_array = np.asarray(lines)
                    values = np.empty((len(cells), len(keep)))
                    for j, column in enumerate(zip(*cells)):
                        values[:, j] = self._parse_column(column, keep[j], lines_array)
                    yield values, lines_array
            except csv.Error as exc:
                raise ValueError(
                    f"{self.path} is not a valid CSV file: line {reader.line_num}: {exc}"
                ) from None

    def _parse_column(self, cells: Sequence[str], j: int, lines: np.ndarray) -> np.ndarray:
        """One column's cells as float64 (missing markers as NaN), or a ValueError naming
        the column and the line of the first bad cell."""
        try:  # all at once (pyarrow, as in the text pass); cell by cell on failure
            import pyarrow as pa

            return arrow_floats(_parse_text(pa.array(cells, pa.string())))
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
                    f"{cell!r} at line {lines[i]}; select numeric columns with --columns"
                )
        return out


def _parse_text(column: Any) -> Any:
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


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


class _ArrowCannot(Exception):
    """pyarrow could not read the file as asked; Python's csv module reads it again."""


def _is_number(cell: str) -> bool:
    return _NUMBER.fullmatch(cell.strip()) is not None


def _is_text(cell: str) -> bool:
    """Neither a number nor a missing marker."""
    return not _is_number(cell) and cell.strip().lower() not in MISSING_MARKERS


def _looks_like_header(rows: list[list[str]]) -> bool:
    """Whether the first of a CSV file's first (one or two) rows is a header row.

    It is when some column holds text in it and a number or a missing value below it,
    or when every one of its fields is text; a row of numbers (and missing values) is
    data, and so is a row whose text columns hold text in the second row too.
    """
    first = rows[0]
    text = [_is_text(cell) for cell in first]
    if all(text) or len(rows) == 1:
        return any(text)
    second = rows[1]
    return any(t and j < len(second) and not _is_text(second[j]) for j, t in enumerate(text))


# ---------------------------------------------------------------------- Parquet / npy
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


class _ParquetFile(_DataFile):
    """A Parquet file, read one row group at a time."""

    def __init__(self, path: Path):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(
                "reading .parquet files needs pyarrow (an emkit dependency): pip install pyarrow"
            ) from None
        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / ArrowIOError types
            raise ValueError(f"{path} is not a readable parquet file: {exc}") from None
        self._schema = self._file.schema_arrow
        self.names = list(self._schema.names)

    def read(self, keep: list[int], missing: str) -> tuple[np.ndarray, int, int]:
        import pyarrow.types as pat

        for j in keep:
            kind = self._schema.field(j).type
            if not (pat.is_integer(kind) or pat.is_floating(kind)):
                raise ValueError(
                    f"{self.path}: column {self.names[j]!r} is not numeric (type {kind}); "
                    "select numeric columns with --columns"
                )
        return self._assemble(self._blocks(keep), keep, missing, self._file.metadata.num_rows)

    def _blocks(self, keep: list[int]) -> Iterator[tuple[np.ndarray, None]]:
        columns = [self.names[j] for j in keep]
        for group in range(self._file.num_row_groups):
            try:
                table = self._file.read_row_group(group, columns=columns)
            except Exception as exc:
                raise ValueError(f"{self.path} is not a readable parquet file: {exc}") from None
            values = np.empty((table.num_rows, len(keep)))
            for j, column in enumerate(table.columns):
                values[:, j] = arrow_floats(column)
            del table
            yield values, None


class _NpyFile(_DataFile):
    """A ``.npy`` array: 1-D (one column) or 2-D."""

    named = False

    def __init__(self, path: Path):
        self.path = path
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path} is not a readable .npy array: {exc}") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise ValueError(f"{path} must hold a numeric array, got dtype {arr.dtype}")
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"{path} must hold a 1-D or 2-D array, got shape {arr.shape}")
        self._array = arr
        self.names = _generated_names(arr.shape[1])

    def read(self, keep: list[int], missing: str) -> tuple[np.ndarray, int, int]:
        arr = self._array if keep == list(range(self._array.shape[1])) else self._array[:, keep]
        return self._assemble([(np.asarray(arr, dtype=np.float64), None)], keep, missing, None)
