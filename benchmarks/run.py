"""Run emkit's benchmarks against peer libraries and print one table.

Usage (from the repository root; ``make bench`` runs the first line)::

    .venv/bin/python benchmarks/run.py
    .venv/bin/python benchmarks/run.py --quick              # data sizes / 10
    .venv/bin/python benchmarks/run.py --only gmm-2d        # one workload (glob or module)
    .venv/bin/python benchmarks/run.py --list

Every ``benchmarks/bench_*.py`` module is a benchmark module. It exposes

* ``WORKLOADS``: a sequence of objects with a ``name`` attribute, and
* ``run(workload, args) -> dict``: the result row of one workload, normally built
  by :func:`_common.comparison_row`;

and optionally ``NAME`` (default: the file name without ``bench_``), which
``--only`` also accepts to select all of the module's workloads. ``args`` carries
``iters``, ``repeats``, ``seed``, ``threads`` and ``scale`` (0.1 with ``--quick``).

The BLAS/OpenMP thread count is pinned twice: by environment variables set
before numpy is first imported, and by ``threadpoolctl.threadpool_limits`` around
every benchmark, so emkit and its peer always use the same number of threads.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.json"
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="data sizes / 10 (a smoke test)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only workloads matching NAME: a workload name, a glob such as "
        "'gmm-full*', or a module name such as 'gmm' (repeatable, comma-separated)",
    )
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--iters", type=int, default=10, help="EM iterations per fit (10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per library (5)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data (0)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file ({RESULTS})")
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="also write the machine, the command and the table as Markdown (for committing "
        "under benchmarks/summaries/, so each figure quoted in a README has a file behind it)",
    )
    args = parser.parse_args(argv)
    for name in ("iters", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    args.scale = 0.1 if args.quick else 1.0
    args.only = [p for group in args.only or [] for p in group.split(",") if p]
    return args


def pin_thread_env(threads: int) -> None:
    """Set every thread-count variable; must run before numpy is first imported."""
    if "numpy" in sys.modules:
        raise RuntimeError("numpy was imported before the thread count was pinned")
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)


# ---------------------------------------------------------------------- discovery
def discover() -> list[ModuleType]:
    """Import every ``bench_*.py`` module next to this file, in name order."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return [importlib.import_module(path.stem) for path in sorted(HERE.glob("bench_*.py"))]


def module_name(module: ModuleType) -> str:
    """Short name of a benchmark module (``NAME`` or the file name without ``bench_``)."""
    return getattr(module, "NAME", module.__name__.removeprefix("bench_"))


def selected(module: ModuleType, patterns: list[str]) -> list[Any]:
    """The module's workloads that match any pattern (all of them without patterns)."""
    workloads = list(module.WORKLOADS)
    if not patterns or module_name(module) in patterns:
        return workloads
    return [w for w in workloads if any(fnmatch.fnmatchcase(w.name, p) for p in patterns)]


# ---------------------------------------------------------------------- machine
def machine_info(threads: int) -> dict[str, Any]:
    """What the timings depend on: CPU, load, library versions, BLAS and its threads.

    Call it inside ``threadpool_limits`` so the reported BLAS threads are the pinned ones.
    """
    import numpy as np
    from threadpoolctl import threadpool_info

    import emkit

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "numpy": np.__version__,
        "emkit": emkit.__version__,
        "emkit_git": _git_revision(),
        "threads": threads,
        "thread_pools": [
            {k: pool.get(k) for k in ("user_api", "internal_api", "version", "num_threads")}
            for pool in threadpool_info()
        ],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision() -> str:
    """Commit of the working tree, with ``+dirty`` when ``src/`` has uncommitted changes."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", "src")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _git(*argv: str) -> str:
    out = subprocess.run(
        ["git", *argv], cwd=HERE.parent, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def print_machine(info: dict[str, Any]) -> None:
    """Print the machine information block."""
    print(f"python {info['python']} on {info['platform']}")
    print(f"cpu    {info['cpu']} ({info['cpus_usable']} usable), load {info['load_average']}")
    print(f"numpy  {info['numpy']}, emkit {info['emkit']} ({info['emkit_git']})")
    for pool in info["thread_pools"]:
        print(
            f"pool   {pool['internal_api']} {pool['version'] or ''} ({pool['user_api']}): "
            f"{pool['num_threads']} thread(s)"
        )
    print()


# ---------------------------------------------------------------------- table
COLUMNS = (
    ("workload", "{}", 14),
    ("peer", "{}", 14),
    ("emkit_s_per_iter", "{:.4g}", 12),
    ("peer_s_per_iter", "{:.4g}", 12),
    ("speedup", "{:.2f}x", 9),
    ("loglik_rel_diff", "{:.1e}", 11),
    ("spread", "{:.0%}", 7),
)
HEADERS = ("workload", "peer", "emkit s/iter", "peer s/iter", "speed-up", "|dLL|/|LL|", "spread")


def format_table(rows: list[dict[str, Any]]) -> str:
    """The result rows as a fixed-width text table."""
    widths = [w for _, _, w in COLUMNS]
    lines = ["  ".join(h.rjust(w) for h, w in zip(HEADERS, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [fmt.format(row[key]).rjust(w) for key, fmt, w in COLUMNS]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def print_legend(args: argparse.Namespace) -> None:
    """Explain the table's columns."""
    print(
        f"\ns/iter: median over {args.repeats} interleaved repetitions of fit time / iterations "
        f"({args.iters} iterations, {args.threads} BLAS thread(s)); speed-up: peer s/iter / emkit "
        "s/iter (>1: emkit faster);\n|dLL|/|LL|: relative difference of the final "
        "log-likelihoods; spread: (max - min) / median of the repetitions (noise)."
    )


# ---------------------------------------------------------------------- main
def run_all(modules: list[ModuleType], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every selected workload, printing each row as it finishes."""
    rows = []
    for module in modules:
        for workload in selected(module, args.only):
            print(f"running {workload.name} ...", file=sys.stderr, flush=True)
            row = {"module": module_name(module), **module.run(workload, args)}
            if row["emkit_iters"] != row["peer_iters"]:
                print(
                    f"warning: {workload.name}: emkit ran {row['emkit_iters']} iterations, "
                    f"the peer {row['peer_iters']}",
                    file=sys.stderr,
                )
            rows.append(row)
            print(f"  {summary(row)}", file=sys.stderr, flush=True)
    return rows


def summary(row: dict[str, Any]) -> str:
    """One line about a finished row (progress output), and its note if it has one."""
    line = (
        f"{row['workload']}: emkit {row['emkit_s_per_iter']:.4g} s/iter, {row['peer']} "
        f"{row['peer_s_per_iter']:.4g} s/iter, speed-up {row['speedup']:.2f}x"
    )
    return f"{line}\n    {row['note']}" if row.get("note") else line


def write_results(path: Path, info: dict, args: argparse.Namespace, rows: list[dict]) -> None:
    """Save machine information, settings and rows as JSON."""
    settings = {k: v for k, v in vars(args).items() if k not in ("output", "list", "summary")}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": info, "settings": settings, "results": rows}, indent=2))


def write_summary(path: Path, info: dict, argv: list[str] | None, rows: list[dict]) -> None:
    """The table, the command that made it and the machine it ran on, as Markdown."""
    command = " ".join(["benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in info["thread_pools"])
    lines = [
        f"# `{command}`",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- emkit {info['emkit']} ({info['emkit_git']}), numpy {info['numpy']}, python "
        f"{info['python']}",
        f"- cpu: {info['cpu']} ({info['cpus_usable']} usable), load {info['load_average']}",
        f"- thread pools: {pools}",
        "",
        "```",
        format_table(rows),
        "```",
        "",
    ]
    for row in rows:
        if row.get("note"):
            lines.append(f"- {row['workload']}: {row['note']}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point: pin threads, discover, run, print and save."""
    args = parse_args(argv)
    pin_thread_env(args.threads)
    from threadpoolctl import threadpool_limits

    modules = discover()
    if args.list:
        for module in modules:
            print(f"{module_name(module)}: {', '.join(w.name for w in module.WORKLOADS)}")
        return 0
    if not any(selected(m, args.only) for m in modules):
        print(f"no workload matches {args.only}", file=sys.stderr)
        return 2
    with threadpool_limits(limits=args.threads):
        info = machine_info(args.threads)
        print_machine(info)
        sys.stdout.flush()
        rows = run_all(modules, args)
    print(format_table(rows))
    print_legend(args)
    write_results(args.output, info, args, rows)
    print(f"\nwrote {args.output}")
    if args.summary is not None:
        write_summary(args.summary, info, argv, rows)
        print(f"wrote {args.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
