"""Start-up time: ``import emkit``, ``emkit --help`` and a first fit, each in a fresh
interpreter.

Every repetition starts a new Python process (``sys.executable``, the environment
of this one, so ``PYTHONPATH`` and the pinned thread counts carry over) and times it
from the outside with the wall clock: what a user waits for, interpreter start-up
included. The figure is the median over the repetitions (``--repeats``, default 7
when this file is run by itself); the repetitions of emkit and of the reference
alternate, as in every other benchmark.

=============  ===========================================  ===========================
workload       emkit                                        reference
=============  ===========================================  ===========================
import         ``import emkit``                             ``import sklearn.mixture``
cli-help       ``python -m emkit.cli --help``               ``python -c pass`` (the bare
                                                            interpreter)
first-fit      ``import emkit``, then                       the same with
               ``GaussianMixture(3).fit(X)`` (X: 1,000      ``sklearn.mixture.Gaussian
               rows of 3 separated 2-D blobs)               Mixture``
=============  ===========================================  ===========================

One "iteration" is one process, so the table's ``s/iter`` is seconds per process.
The first fit includes loading the compiled Numba kernels from their cache; one
untimed run of each command comes first, so a cold cache (the first run after a
change of the kernels compiles them) is never timed. ``|dLL|/|LL|`` compares the
two first fits' log-likelihoods (NaN, not applicable, for the other workloads).

Run alone (``python benchmarks/bench_import.py [--repeats R]``) it prints the
medians; ``benchmarks/run.py --only import`` puts them in the common table.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from _common import comparison_row

__all__ = ["WORKLOADS", "StartupWorkload", "run"]

#: ``run.py`` matches this against ``--only`` to select every workload of the module
NAME = "import"
#: repetitions when this file is run by itself
DEFAULT_REPEATS = 7

_DATA = (
    "import numpy as np; rng = np.random.default_rng(0); "
    "X = np.concatenate([rng.normal(c, 0.5, (334, 2)) for c in (-4.0, 0.0, 4.0)])[:1000]; "
)
_EMKIT_FIT = (
    "import emkit; " + _DATA + "m = emkit.GaussianMixture(3, random_state=0).fit(X); "
    "print(float(m.loglik_))"
)
_SKLEARN_FIT = (
    "from sklearn.mixture import GaussianMixture; " + _DATA + "m = GaussianMixture(3, "
    "random_state=0).fit(X); print(float(m.score(X)) * len(X))"
)


@dataclass(frozen=True)
class StartupWorkload:
    """Two commands (argument lists after the interpreter) timed against each other."""

    name: str
    emkit: tuple[str, ...]
    peer: tuple[str, ...]
    peer_name: str
    #: whether each command prints a log-likelihood on its last line
    prints_loglik: bool = False


WORKLOADS = [
    StartupWorkload("import", ("-c", "import emkit"), ("-c", "import sklearn.mixture"), "sklearn"),
    StartupWorkload("cli-help", ("-m", "emkit.cli", "--help"), ("-c", "pass"), "python"),
    StartupWorkload(
        "first-fit", ("-c", _EMKIT_FIT), ("-c", _SKLEARN_FIT), "sklearn", prints_loglik=True
    ),
]


def time_process(argv: tuple[str, ...]) -> tuple[float, str]:
    """Wall-clock seconds of ``python *argv`` in a fresh process, and its standard output.

    Raises
    ------
    RuntimeError
        The process failed (its standard error is in the message).
    """
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=os.environ.copy()
    )
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({out.returncode}):\n{out.stderr}")
    return seconds, out.stdout


def _loglik(stdout: str) -> float:
    return float(stdout.strip().splitlines()[-1])


def run(workload: StartupWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Time both commands ``args.repeats`` times, alternating; return the result row."""
    commands = {"emkit": workload.emkit, "peer": workload.peer}
    for argv in commands.values():  # warm-up: numba's cache, the file system's cache
        time_process(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    last: dict[str, str] = {}
    for rep in range(args.repeats):
        for name in commands if rep % 2 == 0 else list(commands)[::-1]:
            seconds, last[name] = time_process(commands[name])
            times[name].append(seconds)
    logliks = {
        name: _loglik(last[name]) if workload.prints_loglik else math.nan for name in commands
    }
    return comparison_row(
        workload=workload.name,
        peer=workload.peer_name,
        emkit_times=times["emkit"],
        peer_times=times["peer"],
        emkit_iters=1,
        peer_iters=1,
        emkit_loglik=logliks["emkit"],
        peer_loglik=logliks["peer"],
        emkit_command=" ".join(workload.emkit),
        peer_command=" ".join(workload.peer),
    )


def main(argv: list[str] | None = None) -> int:
    """Print the median start-up times (seconds) of every workload."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print(f"median of {args.repeats} fresh processes (wall clock, interpreter start-up included)")
    for workload in WORKLOADS:
        row = run(workload, args)
        emkit_all = row["emkit_s_per_iter_all"]
        print(
            f"{workload.name:>10}: emkit {row['emkit_s_per_iter']:.3f} s "
            f"(min {min(emkit_all):.3f}, max {max(emkit_all):.3f}); "
            f"{workload.peer_name} {row['peer_s_per_iter']:.3f} s "
            f"[{row['peer_command'][:40]}]"
        )
        if workload.prints_loglik:
            print(
                f"{'':>12}log-likelihoods: emkit {row['emkit_loglik']:.6f}, {workload.peer_name} "
                f"{row['peer_loglik']:.6f}"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
