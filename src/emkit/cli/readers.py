"""Reading a numeric data matrix from a CSV, ``.npy`` or Parquet file for the command line.

Every reader returns a :class:`_Table` of named columns; converting a column to
float64 is deferred to :meth:`_Table.numeric` so that a bad value is reported with its
column and its line (CSV) or row number, and only for the columns the user selected.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_data"]

#: CSV cells read as a missing value (lower-cased, stripped), named as such in errors
_MISSING = {"", "na", "nan", "null", "none"}


def read_data(
    path: str | os.PathLike, columns: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Read a numeric data matrix from a CSV, ``.npy`` or ``.parquet`` file.

    Parameters
    ----------
    path : str or path-like
        ``.npy``: a 1-D or 2-D numeric array (columns are named ``x0, x1, ...``);
        ``.parquet`` / ``.pq``: read with pyarrow; anything else: a CSV file with a
        header row (tab-separated if the name ends in ``.tsv``).
    columns : sequence of str, optional
        The columns to use, by name or 0-based index; all columns by default.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    feature_names : list of str

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unreadable file, unknown column, a non-numeric column, a missing or
        non-finite value (each message names the column), or no rows.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a data file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        reader: Callable[[Path], _Table] = _read_npy
    elif suffix in (".parquet", ".pq"):
        reader = _read_parquet
    else:
        reader = _read_csv
    table = reader(path)
    if not table.names:
        raise ValueError(f"{path} has no columns")
    if table.n_rows == 0:
        raise ValueError(f"{path} has no data rows")
    keep = _select_columns(table.names, columns, path)
    X = np.column_stack([table.numeric(j) for j in keep])
    return np.ascontiguousarray(X, dtype=np.float64), [table.names[j] for j in keep]


@dataclass
class _Table:
    """Columns read from a file, converted to float64 on demand with clear errors."""

    path: Path
    names: list[str]
    columns: list[Any]
    #: file line of each row (CSV), or None to report 1-based row numbers
    lines: list[int] | None = None
    #: per column: converts it to float64 or raises ValueError naming the column
    convert: Callable[[str, Any], np.ndarray] | None = None

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def where(self, i: int) -> str:
        return f"line {self.lines[i]}" if self.lines is not None else f"row {i + 1}"

    def numeric(self, j: int) -> np.ndarray:
        name = self.names[j]
        values = self.columns[j]
        x = self.convert(name, values) if self.convert else np.asarray(values, np.float64)
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            raise ValueError(
                f"{self.path}: column {name!r} has a missing or non-finite value at "
                f"{self.where(int(bad[0]))}"
            )
        return x


def _select_columns(names: list[str], columns: Sequence[str] | None, path: Path) -> list[int]:
    """Indices of the requested columns (by name, else by 0-based index)."""
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


def _read_csv(path: Path) -> _Table:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter, skipinitialspace=True)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if row:
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text file") from None
    except csv.Error as exc:
        raise ValueError(f"{path} is not a valid CSV file: {exc}") from None
    if not header:
        raise ValueError(f"{path} is empty (a CSV file needs a header row)")
    names = [name.strip() for name in header]
    for row, line in zip(rows, lines):
        if len(row) != len(names):
            raise ValueError(
                f"{path}: line {line} has {len(row)} fields but the header has {len(names)}"
            )
    table = _Table(path, names, [list(col) for col in zip(*rows)] or [[] for _ in names], lines)
    table.convert = partial(_parse_floats, table)
    return table


def _parse_floats(table: _Table, name: str, values: list[str]) -> np.ndarray:
    """A CSV column as float64, or a ValueError naming the column and the first bad cell."""
    try:
        return np.asarray(values, dtype=np.float64)
    except ValueError:
        pass
    for i, value in enumerate(values):
        try:
            float(value)
        except ValueError:
            if value.strip().lower() in _MISSING:
                problem = "a missing value"
            else:
                problem = f"the non-numeric value {value!r}"
            raise ValueError(
                f"{table.path}: column {name!r} has {problem} at {table.where(i)}; "
                "select numeric columns with --columns"
            ) from None
    raise ValueError(f"{table.path}: column {name!r} is not numeric")


def _read_npy(path: Path) -> _Table:
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
    return _Table(path, [f"x{j}" for j in range(arr.shape[1])], list(arr.T))


def _read_parquet(path: Path) -> _Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "reading .parquet files needs pyarrow: pip install emkit[parquet]"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / ArrowIOError types
        raise ValueError(f"{path} is not a readable parquet file: {exc}") from None
    out = _Table(path, list(table.column_names), list(table.columns))
    out.convert = partial(_arrow_floats, path)
    return out


def _arrow_floats(path: Path, name: str, column: Any) -> np.ndarray:
    """A pyarrow column as float64 (nulls become NaN), or a ValueError naming it."""
    import pyarrow as pa

    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise ValueError(
            f"{path}: column {name!r} is not numeric (type {column.type}); "
            "select numeric columns with --columns"
        )
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)
