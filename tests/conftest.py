"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def run_with_threads():
    """Run ``func_name()`` of the test module at ``module_path`` in a fresh interpreter
    whose Numba pool has ``threads`` threads, whatever this process was started with
    (Numba fixes the pool's size at start-up, so a test cannot widen it in-process).
    The function makes its own assertions; a failure shows its traceback."""

    def run(module_path: str, func_name: str, threads: int = 3) -> None:
        path = Path(module_path)
        code = (
            f"import sys; sys.path.insert(0, {str(path.parent)!r}); "
            f"import numba; assert numba.config.NUMBA_NUM_THREADS == {threads}; "
            f"from {path.stem} import {func_name}; {func_name}()"
        )
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr

    return run


@pytest.fixture(scope="module")
def process_cluster(request):
    """A ``distributed.Client`` of a real ``LocalCluster``: two single-threaded worker
    processes on loopback, no dashboard, shared by the tests of a module (starting it
    takes seconds). The module's ``CLUSTER_PRELOAD``, a list of Python sources, runs in
    every worker as it starts, before it joins the scheduler."""
    import logging

    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
        preload=list(getattr(request.module, "CLUSTER_PRELOAD", [])),
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
