"""Where E-steps run. An executor maps the model's E-step over batches and sums the results.

Only parameters go out and statistics come back, so the same model code runs serially,
on threads (NumPy and BLAS release the GIL), or on a cluster.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emkit._pytree import tree_add

__all__ = ["Executor", "SerialExecutor", "ThreadExecutor", "as_executor"]

EStep = Callable[[Any], tuple[Any, float]]


def _reduce(results: Iterable[tuple[Any, float]]) -> tuple[Any, float]:
    total_stats, total_ll, empty = None, 0.0, True
    for stats, ll in results:
        if empty:
            total_stats, empty = stats, False
        else:
            total_stats = tree_add(total_stats, stats)
        total_ll += float(ll)
    if empty:
        raise ValueError("the data source produced no batches")
    return total_stats, total_ll


class Executor(abc.ABC):
    """Runs ``estep`` on every batch and returns (summed statistics, summed log-likelihood)."""

    @abc.abstractmethod
    def map_reduce(self, estep: EStep, batches: Iterable[Any]) -> tuple[Any, float]: ...

    def close(self) -> None:  # noqa: B027 - most executors hold nothing to release
        """Release workers."""


class SerialExecutor(Executor):
    """One batch after the other in this thread."""

    def map_reduce(self, estep: EStep, batches: Iterable[Any]) -> tuple[Any, float]:
        return _reduce(estep(b) for b in batches)


class ThreadExecutor(Executor):
    """Batches on a pool of threads; useful where the E-step is dominated by BLAS/NumPy."""

    def __init__(self, n_jobs: int = 2):
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
        self.n_jobs = n_jobs
        self._pool: ThreadPoolExecutor | None = None

    def map_reduce(self, estep: EStep, batches: Iterable[Any]) -> tuple[Any, float]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.n_jobs)
        # map keeps the batch order, so the sum is the same as the serial one.
        return _reduce(self._pool.map(estep, batches))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def as_executor(executor: Executor | str | None) -> Executor:
    if executor is None or executor == "serial":
        return SerialExecutor()
    if executor == "threads":
        return ThreadExecutor()
    if isinstance(executor, Executor):
        return executor
    raise ValueError(f"executor must be 'serial', 'threads' or an Executor, got {executor!r}")
