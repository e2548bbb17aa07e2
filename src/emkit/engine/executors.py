"""Where E-steps run. An executor maps the model's E-step over batches and sums the results.

Only parameters go out and statistics come back, so the same model code runs serially,
on threads (NumPy and BLAS release the GIL), or on a cluster.
"""

from __future__ import annotations

import abc
from collections import deque
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

    def run_estep(
        self, estep: Callable[[Any, Any], tuple[Any, float]], params: Any, source: Any
    ) -> tuple[Any, float]:
        """``estep(params, batch)`` over every batch of ``source``, summed.

        The default maps over ``source.batches()``; an executor that keeps the data
        where they are (Dask) overrides this and ships only ``params``.
        """
        return self.map_reduce(lambda batch: estep(params, batch), source.batches())

    def close(self) -> None:  # noqa: B027 - most executors hold nothing to release
        """Release workers."""


class SerialExecutor(Executor):
    """One batch after the other in this thread."""

    def map_reduce(self, estep: EStep, batches: Iterable[Any]) -> tuple[Any, float]:
        return _reduce(estep(b) for b in batches)


class ThreadExecutor(Executor):
    """Batches on a pool of threads; useful where the E-step is dominated by BLAS/NumPy.

    At most ``2 * n_jobs`` batches are read ahead of the E-steps, so a source read from
    disk never has more than that many batches in memory.
    """

    def __init__(self, n_jobs: int = 2):
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
        self.n_jobs = n_jobs
        self._pool: ThreadPoolExecutor | None = None

    def map_reduce(self, estep: EStep, batches: Iterable[Any]) -> tuple[Any, float]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.n_jobs)
        # Results are taken in batch order, so the sum is the same as the serial one.
        return _reduce(_bounded_map(self._pool, estep, batches, 2 * self.n_jobs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _bounded_map(pool: ThreadPoolExecutor, fn: Callable, items: Iterable[Any], ahead: int):
    """``pool.map(fn, items)`` in order, with at most ``ahead`` items submitted and not done."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def as_executor(executor: Any, n_jobs: int | None = None) -> Executor:
    """The executor for ``executor``: "serial", "threads" (``n_jobs`` threads, default 2)
    or an :class:`Executor` (passed through); ``emkit.em`` also takes "dask" and a
    ``distributed.Client`` (:class:`~emkit.engine.dask_executor.DaskExecutor`)."""
    if executor is None or executor == "serial":
        return SerialExecutor()
    if executor == "threads":
        return ThreadExecutor(n_jobs or 2)
    if isinstance(executor, Executor):
        return executor
    raise ValueError(
        "executor must be 'serial', 'threads', 'dask', a distributed.Client or an Executor, "
        f"got {executor!r}"
    )
