"""Reading a CSV file for the command line: emkit's reader against pandas and the csv module.

One workload, ``cli-read-csv``: a 1,000,000 x 8 CSV of numbers with six decimals
(about 76 MB; ``--quick``: 100,000 rows) written to a temporary folder, read three
ways into a float64 matrix of every column:

* ``emkit``: :func:`emkit.cli.readers.read_table`, what ``emkit fit`` / ``predict``
  use (pyarrow's streaming CSV reader, batches written into one float64 array);
* ``pandas``: ``pandas.read_csv(path).to_numpy(np.float64)`` (the peer of the row);
* ``csv module``: the command line's former reader: Python's ``csv.reader`` rows,
  turned into columns and converted by ``numpy.asarray(column, np.float64)``.

*Timed*: each reader ``min(--repeats, 3)`` times, interleaved
(:func:`_common.time_interleaved`); the medians are compared. *Memory*: each reader
runs once more in a child process of its own, and its peak resident memory minus that
of a baseline child that imports the same modules (numpy, pyarrow, pandas, emkit's
reader) and reads nothing is reported, also as a multiple of the matrix's float64
size. The peak is the child's ``VmHWM`` from ``/proc/self/status`` where there is one:
Linux keeps ``ru_maxrss`` across ``exec``, so a child started by a larger parent
would report the parent's peak; elsewhere ``ru_maxrss``, with the children run before
the timings grow this process. *Check*: the sums of the matrices agree (the
``|dLL|/|LL|`` column holds their relative difference).

Run alone: ``python benchmarks/bench_cli_read.py [--scale 0.1]`` prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _common import comparison_row, time_interleaved

__all__ = ["READERS", "WORKLOADS", "ReadWorkload", "run"]

NAME = "cli-read"
HERE = Path(__file__).resolve().parent
REPEATS = 3


@dataclass(frozen=True)
class ReadWorkload:
    name: str
    n_rows: int
    n_columns: int


WORKLOADS = [ReadWorkload("cli-read-csv", 1_000_000, 8)]


def write_csv(path: Path, n: int, d: int, seed: int) -> None:
    """``n`` rows of ``d`` standard normal values rounded to six decimals, with a header."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    with pacsv.CSVWriter(path, pa.schema([(f"x{j}", pa.float64()) for j in range(d)])) as writer:
        for lo in range(0, n, 250_000):
            block = np.round(rng.normal(size=(min(250_000, n - lo), d)), 6)
            writer.write_table(pa.table({f"x{j}": block[:, j] for j in range(d)}))


def read_emkit(path: str) -> np.ndarray:
    from emkit.cli.readers import read_table

    return read_table(path).X


def read_pandas(path: str) -> np.ndarray:
    import pandas as pd

    return pd.read_csv(path).to_numpy(np.float64)


def read_csv_module(path: str) -> np.ndarray:
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        next(reader)  # the header
        rows = [row for row in reader if row]
    return np.column_stack([np.asarray(col, dtype=np.float64) for col in zip(*rows)])


READERS = {"emkit": read_emkit, "pandas": read_pandas, "csv module": read_csv_module}


def _peak_bytes() -> int:
    """This process's peak resident memory (see the module docstring)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _child(reader: str, path: str) -> dict[str, Any]:
    """In a child process: import every reader's modules, then read with ``reader``."""
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401

    import emkit.cli.readers  # noqa: F401

    rows = 0
    if reader != "baseline":
        rows = len(READERS[reader](path))
    return {"peak_bytes": _peak_bytes(), "rows": rows}


def peak_memory(reader: str, path: Path) -> int:
    """Peak resident bytes of a child process reading ``path`` with ``reader``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    out = subprocess.run(
        [sys.executable, __file__, "--child", reader, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if out.returncode:
        raise RuntimeError(f"the {reader} child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"]


def measure(w: ReadWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Times, memory and checksums of every reader on one generated file."""
    n = max(int(w.n_rows * args.scale), 1000)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_csv(path, n, w.n_columns, args.seed)
        file_mb = path.stat().st_size / 2**20
        base = peak_memory("baseline", path)
        memory = {name: peak_memory(name, path) - base for name in READERS}
        times, last = time_interleaved(
            {name: (lambda f=f: f(str(path))) for name, f in READERS.items()},
            min(args.repeats, REPEATS),
        )
    data_bytes = n * w.n_columns * 8
    return {
        "n_rows": n,
        "n_columns": w.n_columns,
        "file_mb": file_mb,
        "data_mb": data_bytes / 2**20,
        "times": times,
        "median_s": {name: statistics.median(t) for name, t in times.items()},
        "peak_extra_mb": {name: b / 2**20 for name, b in memory.items()},
        "peak_over_data": {name: b / data_bytes for name, b in memory.items()},
        "checksum": {name: float(X.sum()) for name, X in last.items()},
        "shape_ok": all(X.shape == (n, w.n_columns) for X in last.values()),
    }


def format_table(m: dict[str, Any]) -> str:
    """The readers side by side: median seconds, ratio to emkit, peak memory."""
    header = f"{'reader':<12}{'median s':>10}{'x emkit':>9}{'peak MB':>9}{'x float64':>11}"
    lines = [header, "-" * len(header)]
    ours = m["median_s"]["emkit"]
    for name in READERS:
        lines.append(
            f"{name:<12}{m['median_s'][name]:>10.2f}{m['median_s'][name] / ours:>9.1f}"
            f"{m['peak_extra_mb'][name]:>9.0f}{m['peak_over_data'][name]:>11.2f}"
        )
    return "\n".join(lines)


def run(workload: ReadWorkload, args: argparse.Namespace) -> dict[str, Any]:
    m = measure(workload, args)
    row = comparison_row(
        workload=workload.name,
        peer="pandas",
        emkit_times=m["times"]["emkit"],
        peer_times=m["times"]["pandas"],
        emkit_iters=1,
        peer_iters=1,
        emkit_loglik=m["checksum"]["emkit"],
        peer_loglik=m["checksum"]["pandas"],
        **{k: v for k, v in m.items() if k != "times"},
        csv_module_s=m["times"]["csv module"],
    )
    row["note"] = (
        f"{m['n_rows']:,} x {m['n_columns']} CSV ({m['file_mb']:.0f} MB): median s emkit "
        f"{m['median_s']['emkit']:.2f}, pandas {m['median_s']['pandas']:.2f}, csv module "
        f"{m['median_s']['csv module']:.2f}; peak MB over baseline emkit "
        f"{m['peak_extra_mb']['emkit']:.0f}, pandas {m['peak_extra_mb']['pandas']:.0f}, "
        f"csv module {m['peak_extra_mb']['csv module']:.0f} (float64 data "
        f"{m['data_mb']:.0f} MB)"
    )
    print(format_table(m), file=sys.stderr)
    return row


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3])))
    else:
        parser = argparse.ArgumentParser(description="emkit CSV reading benchmark")
        parser.add_argument("--scale", type=float, default=1.0, help="rows x scale")
        parser.add_argument("--repeats", type=int, default=REPEATS)
        parser.add_argument("--seed", type=int, default=0)
        cli = parser.parse_args()
        m = measure(WORKLOADS[0], cli)
        print(
            f"{m['n_rows']:,} x {m['n_columns']} CSV, {m['file_mb']:.0f} MB; float64 "
            f"{m['data_mb']:.0f} MB; medians of {min(cli.repeats, REPEATS)} interleaved reads; "
            "peak MB: child's peak resident memory minus an importing-only child's"
        )
        print(format_table(m))
        sums = list(m["checksum"].values())
        print(f"same values: {m['shape_ok'] and max(sums) - min(sums) <= 1e-9 * abs(sums[0])}")
