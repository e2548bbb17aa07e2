"""A CSV file as an out-of-core data source: ``emkit.data.from_csv`` against the
pandas-based source it replaced.

One workload, ``csv-source``: the 1,000,000 x 8 CSV of ``bench_cli_read`` (numbers
with six decimals, about 72 MB; ``--quick``: 100,000 rows), streamed as an EM pass
sees it, two ways:

* ``emkit``: ``from_csv(path)``, its row count and one pass over its batches (pyarrow's
  streaming reader; the count is a scan of the line ends);
* ``pandas``: the former ``CsvSource``: a count pass of ``pandas.read_csv(usecols=
  [first column], chunksize=batch_size)``, then one pass of ``read_csv(chunksize=
  batch_size)``, each chunk ``to_numpy(float64)``.

Both use the default batch size (524,288 rows of 8 columns). *Late read*: the rows
``[0.9 n, 0.9 n + 65,536)`` of a source whose rows are counted, by ``_read`` (how a
Dask worker reads its batch) and by the former source's
``read_csv(skiprows=range(1, lo + 1), nrows=...)``. *Memory*: each pass (count and
batches) once more in a child process of its own; its peak resident memory (``VmHWM``
from ``/proc/self/status``: ``ru_maxrss`` keeps a larger parent's peak across
``exec``) minus that of a child that imports the same modules and reads nothing.
*Check*: the sums of all batches agree.

Run alone: ``python benchmarks/bench_csv_source.py [--scale 0.1]`` prints the table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _common import time_interleaved
from bench_cli_read import _peak_bytes, pandas_row, peak_memory, script_args, write_csv

__all__ = ["PASSES", "WORKLOADS", "SourceWorkload", "run"]

NAME = "csv-source"
REPEATS = 3
LATE_ROWS = 65_536


@dataclass(frozen=True)
class SourceWorkload:
    name: str
    n_rows: int
    n_columns: int


WORKLOADS = [SourceWorkload("csv-source", 1_000_000, 8)]


def pass_emkit(path: str) -> tuple[int, float]:
    """Rows counted and the sum of one pass over ``from_csv``'s batches."""
    from emkit.data import from_csv

    src = from_csv(path)
    n = src.n_samples
    return n, float(sum(block.sum() for block in src.batches()))


def _pandas_batch_size(path: str) -> int:
    from emkit.data.tables import default_batch_size

    with open(path) as fh:
        return default_batch_size(len(fh.readline().split(",")))


def pass_pandas(path: str) -> tuple[int, float]:
    """The former pandas-based ``CsvSource``: a count pass and a pass of chunks."""
    import pandas as pd

    size = _pandas_batch_size(path)
    columns = list(pd.read_csv(path, nrows=1000).columns)
    with pd.read_csv(path, usecols=columns[:1], chunksize=size) as reader:
        n = sum(len(chunk) for chunk in reader)
    total = 0.0
    with pd.read_csv(path, usecols=columns, chunksize=size) as reader:
        for chunk in reader:
            total += float(chunk[columns].to_numpy(dtype=np.float64).sum())
    return n, total


PASSES = {"emkit": pass_emkit, "pandas": pass_pandas}


def late_emkit(path: str, lo: int, hi: int) -> tuple[np.ndarray, float]:
    """Rows ``[lo, hi)`` by ``_read`` of a counted source, and the read's seconds."""
    from emkit.data import from_csv

    src = from_csv(path)
    src.n_samples  # noqa: B018 - counted (and indexed) beforehand, as before a Dask fit
    start = time.perf_counter()
    rows = src._read(lo, hi)
    return rows, time.perf_counter() - start


def late_pandas(path: str, lo: int, hi: int) -> tuple[np.ndarray, float]:
    """The same rows as the former source read them, and the seconds."""
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_csv(path, skiprows=range(1, lo + 1), nrows=hi - lo)
    return frame.to_numpy(np.float64), time.perf_counter() - start


def _child(name: str, path: str) -> dict[str, Any]:
    """In a child process: import every side's modules, then make one pass."""
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401

    import emkit.data  # noqa: F401

    n = PASSES[name](path)[0] if name != "baseline" else 0
    return {"peak_bytes": _peak_bytes(), "rows": n}


def measure(w: SourceWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Times, memory and checksums of both sides on one generated file."""
    n = max(int(w.n_rows * args.scale), 1000)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_csv(path, n, w.n_columns, args.seed)
        file_mb = path.stat().st_size / 2**20
        base = peak_memory("baseline", path, __file__)
        memory = {name: peak_memory(name, path, __file__) - base for name in PASSES}
        times, last = time_interleaved(
            {name: (lambda f=f: f(str(path))) for name, f in PASSES.items()},
            min(args.repeats, REPEATS),
        )
        lo = int(0.9 * n)
        hi = min(lo + LATE_ROWS, n)
        late, rows = {}, {}
        for name, fn in (("emkit", late_emkit), ("pandas", late_pandas)):
            rows[name], late[name] = fn(str(path), lo, hi)
    data_bytes = n * w.n_columns * 8
    return {
        "n_rows": n,
        "n_columns": w.n_columns,
        "file_mb": file_mb,
        "data_mb": data_bytes / 2**20,
        "times": times,
        "median_s": {name: statistics.median(t) for name, t in times.items()},
        "peak_extra_mb": {name: b / 2**20 for name, b in memory.items()},
        "rows_counted": {name: v[0] for name, v in last.items()},
        "checksum": {name: v[1] for name, v in last.items()},
        "late_read_s": {name: late[name] for name in PASSES},
        "late_rows_same": bool(np.array_equal(rows["emkit"], rows["pandas"])),
    }


def format_table(m: dict[str, Any]) -> str:
    """Both sides: count + pass seconds, peak memory, a late read's seconds."""
    header = f"{'source':<10}{'pass s':>9}{'x emkit':>9}{'peak MB':>9}{'late read s':>13}"
    lines = [header, "-" * len(header)]
    ours = m["median_s"]["emkit"]
    for name in PASSES:
        lines.append(
            f"{name:<10}{m['median_s'][name]:>9.2f}{m['median_s'][name] / ours:>9.1f}"
            f"{m['peak_extra_mb'][name]:>9.0f}{m['late_read_s'][name]:>13.3f}"
        )
    return "\n".join(lines)


def run(workload: SourceWorkload, args: argparse.Namespace) -> dict[str, Any]:
    m = measure(workload, args)
    row = pandas_row(workload.name, m)
    row["note"] = (
        f"{m['n_rows']:,} x {m['n_columns']} CSV ({m['file_mb']:.0f} MB), count + one pass: "
        f"median s emkit {m['median_s']['emkit']:.2f}, pandas {m['median_s']['pandas']:.2f}; "
        f"peak MB over baseline emkit {m['peak_extra_mb']['emkit']:.0f}, pandas "
        f"{m['peak_extra_mb']['pandas']:.0f}; read of {LATE_ROWS:,} rows at 90%: emkit "
        f"{m['late_read_s']['emkit']:.3f} s, pandas {m['late_read_s']['pandas']:.3f} s"
    )
    print(format_table(m), file=sys.stderr)
    return row


if __name__ == "__main__" and (cli := script_args("emkit CSV source benchmark", _child)):
    m = measure(WORKLOADS[0], cli)
    print(
        f"{m['n_rows']:,} x {m['n_columns']} CSV, {m['file_mb']:.0f} MB; medians of "
        f"{min(cli.repeats, REPEATS)} interleaved passes (row count + one pass over the "
        "batches); peak MB: child's peak resident memory minus an importing-only child's"
    )
    print(format_table(m))
    sums = list(m["checksum"].values())
    print(
        f"rows counted: {m['rows_counted']}; same sums: "
        f"{max(sums) - min(sums) <= 1e-9 * abs(sums[0])}; same late rows: {m['late_rows_same']}"
    )
