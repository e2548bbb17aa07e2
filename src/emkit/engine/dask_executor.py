"""E-steps on a ``dask.distributed`` cluster: the data stay on the workers.

Map-reduce, as EM's E-step is a sum over the data:

* the partitions are **persisted once** per fit (``client.compute`` of the source's
  ``delayed_parts()``: each worker reads or builds its own partitions, through the
  estimator's per-batch transform when there is one); in-memory batches go into the
  graph once (the scheduler keeps them, to rebuild a lost partition);
* every E-step **scatters the parameters once** (to every worker) and submits one
  task per partition, ``estep(params, partition)``, which runs where the partition is;
* the statistics come back by a **tree reduction** (pairwise sums on the workers), so
  the client receives one pytree of statistics per iteration.

Fault tolerance is Dask's: when a worker dies, the scheduler recomputes the lost
partitions from their recipe (the file read, the collection's graph) and re-runs the
lost E-step tasks. Should an E-step still fail because of a lost worker (for example
the parameters' replicas were all lost with it), the E-step is submitted again, up
to ``retries`` times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from emkit._pytree import tree_add
from emkit.engine.executors import EStep, Executor, _reduce

__all__ = ["DaskExecutor"]


def _apply(estep: Callable, params: Any, part: Any) -> tuple[Any, float]:
    stats, loglik = estep(params, part)
    return stats, float(loglik)


def _add(a: tuple[Any, float], b: tuple[Any, float]) -> tuple[Any, float]:
    return tree_add(a[0], b[0]), a[1] + b[1]


class DaskExecutor(Executor):
    """Runs every partition's E-step on the ``dask.distributed`` worker that holds it.

    Parameters
    ----------
    client : distributed.Client, optional
        The cluster's client; the current one (``distributed.get_client()``) if omitted.
    retries : int, default 5
        How many times an E-step is submitted again after losing a worker.
    """

    def __init__(self, client: Any = None, retries: int = 5):
        from distributed import Client, get_client

        if client is None:
            try:
                client = get_client()
            except ValueError:
                raise ValueError(
                    "executor='dask' needs a running dask.distributed Client; start one "
                    "(distributed.Client(...)) or pass executor=client"
                ) from None
        if not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        self.client = client
        self.retries = int(retries)
        self._parts: dict[int, tuple[Any, list[Any]]] = {}

    def _persisted(self, source: Any) -> list[Any]:
        """Futures of the source's partitions, on the workers (made once per source)."""
        key = id(source)
        if key not in self._parts:
            if hasattr(source, "delayed_parts"):
                parts = source.delayed_parts()
            else:  # in memory: each batch goes once into the graph, its recipe if lost
                import dask

                parts = [dask.delayed(b, traverse=False) for b in source.batches()]
            futures = self.client.compute(parts)
            self._parts[key] = (source, futures)  # the source is held so its id stays unique
        return self._parts[key][1]

    def run_estep(self, estep, params, source) -> tuple[Any, float]:
        for attempt in range(self.retries + 1):
            try:
                parts = self._persisted(source)
                # Sent once to every worker, not embedded in every task.
                p = self.client.scatter(params, broadcast=True, hash=False)
                stage = [self.client.submit(_apply, estep, p, part, pure=False) for part in parts]
                while len(stage) > 1:
                    pairs = [
                        self.client.submit(_add, stage[i], stage[i + 1], pure=False)
                        if i + 1 < len(stage)
                        else stage[i]
                        for i in range(0, len(stage), 2)
                    ]
                    stage = pairs
                stats, loglik = stage[0].result()
                return stats, float(loglik)
            except Exception as exc:
                if attempt == self.retries or not _lost_worker(exc):
                    raise
                # Partitions whose futures were cancelled are computed again from their recipe.
                _, futures = self._parts.pop(id(source), (None, []))
                self.client.cancel(futures)
                time.sleep(0.5 * (attempt + 1))  # let the scheduler notice the lost worker
        raise AssertionError("unreachable")  # pragma: no cover

    def map_reduce(self, estep: EStep, batches: Iterable[Any]) -> tuple[Any, float]:
        """E-steps of batches held here (sent to the workers); prefer :meth:`run_estep`."""
        futures = self.client.map(estep, list(batches), pure=False)
        return _reduce(f.result() for f in futures)

    def close(self) -> None:
        """Release the persisted partitions (the client stays open)."""
        for _, futures in self._parts.values():
            self.client.cancel(futures)
        self._parts.clear()


def _lost_worker(exc: BaseException) -> bool:
    """Whether ``exc`` says a worker (and what it held) was lost, so a retry may succeed."""
    import concurrent.futures

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    lost = (KilledWorker, CommClosedError, OSError, TimeoutError, concurrent.futures.CancelledError)
    return isinstance(exc, lost) or "lost" in str(exc).lower()
