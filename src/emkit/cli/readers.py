"""Reading a numeric data matrix from a CSV, ``.npy`` or Parquet file for the command line.

Every format is read as a stream of float64 blocks of the selected columns, written
into one preallocated array, so the peak memory is about the float64 size of the
selected data (not of the file's text):

* CSV / TSV: pyarrow's streaming CSV reader, the selected columns converted batch by
  batch (:class:`emkit.data.csv_reader.CsvFile`, shared with
  :func:`emkit.data.from_csv`). Where it cannot read the values as numbers (a missing
  marker padded with spaces, a quoted line break in a text column, ...) it reads the
  rest as text; where it cannot read that either, Python's ``csv`` module reads the
  rest, or reports the first problem with its column and line number;
* Parquet: one row group at a time;
* ``.npy``: loaded, then the selected columns taken.

Missing values (empty cells and ``NA``, ``NaN``, ``null``, ``None`` in any case; nulls
in Parquet; NaN anywhere) are NaN, dropped or an error as ``missing`` says; an
infinite value is always an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emkit.data.csv_reader import MISSING_MARKERS, CsvFile, arrow_floats

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
class _CsvFile(CsvFile, _DataFile):
    """A CSV (or TSV) file, streamed by :class:`emkit.data.csv_reader.CsvFile`."""

    def __init__(self, path: Path, header: bool | None):
        super().__init__(path, header, hint="select numeric columns with --columns")
        self.named = self.header
        if not self.header and header is None:
            last = f"x{self.n_fields - 1}"
            self.notes = (
                f"{path} has no header row (its first row reads as data); columns are "
                f"named x0..{last}; pass --header to read it as names",
            )

    def read(self, keep: list[int], missing: str) -> tuple[np.ndarray, int, int]:
        # pyarrow reads the values; a block with an infinite value (or a missing one
        # when missing="error") hands the rest to Python's csv module, which names its
        # line (see _check_values).
        def fine(values: np.ndarray) -> bool:
            return bool(np.isfinite(values).all()) or (
                missing != "error" and not np.isinf(values).any()
            )

        blocks = self.blocks(keep, check=fine)
        return self._assemble(blocks, keep, missing, self.count_lines())


# ---------------------------------------------------------------------- Parquet / npy
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
