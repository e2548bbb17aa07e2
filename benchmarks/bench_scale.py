"""Scale: out-of-core fits, E-steps on threads, and a Dask LocalCluster, all emkit.

There is no peer library here (none fits mixtures out of core or on Dask); each row
compares two ways of running the same emkit fit from the same start:

* ``ooc-parquet``: ``GaussianMixture`` on a Parquet file of 10,000,000 x 16 read in row
  batches (``emkit.data.from_parquet``) against the same fit on the table loaded into
  memory. Each fit runs in its own process, so its **peak resident memory**
  (``ru_maxrss``) is its own; both are printed, with rows per second per E-step pass.
  The file is written batch by batch (never whole in memory) to a temporary folder.
  ``--quick``: 1,000,000 rows.
* ``threads``: an in-memory fit cut into 8 batches, E-steps on ``n_jobs=2`` threads
  against one thread (``--threads`` BLAS threads each).
* ``cluster``: a ``distributed.LocalCluster`` (2 worker processes, loopback) fitting a
  Dask array, against the in-memory fit in this process; the cluster's start is not
  timed.
* ``cluster-hmm``: the same cluster fitting a Gaussian ``HMM`` (diagonal covariances)
  to 200 sequences of 1,000 steps, a Dask array of 8 partitions of 25 whole sequences
  (``emkit.data.from_dask(..., lengths=...)``), against the in-memory fit.

Every fit runs ``--iters`` EM steps with ``tol=0`` (``ooc-parquet``: 3, a pass over 10M
rows is long), so both sides run the same iterations; ``|dLL|/|LL|`` checks they agree.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _common import comparison_row, time_interleaved

__all__ = ["WORKLOADS", "ScaleWorkload", "run"]

NAME = "scale"
OOC_ITERS = 3
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ScaleWorkload:
    name: str
    n_samples: int
    n_features: int
    n_components: int


WORKLOADS = [
    ScaleWorkload("ooc-parquet", 10_000_000, 16, 4),
    ScaleWorkload("threads", 1_000_000, 16, 8),
    ScaleWorkload("cluster", 400_000, 16, 4),
    ScaleWorkload("cluster-hmm", 200_000, 4, 4),  # 200 sequences of 1,000 steps
]


def make_rows(rng: np.random.Generator, n: int, d: int, k: int) -> np.ndarray:
    """``n`` rows from ``k`` well-spread Gaussian clusters (means fixed by the seed 0)."""
    centres = np.random.default_rng(0).normal(0.0, 4.0, (k, d))
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))


def start_params(d: int, k: int) -> dict[str, np.ndarray]:
    """The starting parameters of every fit: the clusters' centres moved by one unit."""
    centres = np.random.default_rng(0).normal(0.0, 4.0, (k, d))
    shift = np.random.default_rng(1).normal(0.0, 1.0, (k, d))
    return {
        "weights": np.full(k, 1.0 / k),
        "means": centres + shift,
        "covariances": np.stack([np.eye(d)] * k),
    }


def write_parquet(path: Path, n: int, d: int, k: int, seed: int, chunk: int = 500_000) -> None:
    """A Parquet file of ``n`` rows written ``chunk`` rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = [f"x{j}" for j in range(d)]
    with pq.ParquetWriter(path, pa.schema([(c, pa.float64()) for c in names])) as writer:
        for lo in range(0, n, chunk):
            rows = make_rows(rng, min(chunk, n - lo), d, k)
            writer.write_table(
                pa.table({c: rows[:, j] for j, c in enumerate(names)}), row_group_size=131_072
            )


def _fit_in_child(path: str, k: int, iters: int, mode: str) -> dict[str, Any]:
    """One fit in this (child) process: out of core, or loaded into memory first."""
    import emkit

    with warnings.catch_warnings():  # untimed: load the compiled kernels
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        emkit.GaussianMixture(k, max_iter=1, random_state=0).fit(
            np.random.default_rng(0).normal(size=(1000, 16))
        )
    start = time.perf_counter()
    if mode == "memory":
        import pyarrow.parquet as pq

        data = pq.read_table(path).to_pandas().to_numpy()
    else:
        data = emkit.data.from_parquet(path, batch_size=131_072)
    d = data.n_features if mode != "memory" else data.shape[1]
    gm = emkit.GaussianMixture(k, tol=0.0, max_iter=iters, init=start_params(d, k), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        gm.fit(data)
    return {
        "seconds": time.perf_counter() - start,
        "n_iter": gm.n_iter_,
        "loglik": gm.loglik_,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def _child(mode: str, path: Path, k: int, iters: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), str(k), str(iters)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode:
        raise RuntimeError(f"the {mode} fit failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ooc(w: ScaleWorkload, args: argparse.Namespace) -> dict[str, Any]:
    n = max(int(w.n_samples * args.scale), 10_000)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.parquet"
        t0 = time.perf_counter()
        write_parquet(path, n, w.n_features, w.n_components, args.seed)
        written = time.perf_counter() - t0
        ooc = _child("source", path, w.n_components, OOC_ITERS)
        memory = _child("memory", path, w.n_components, OOC_ITERS)
        file_bytes = path.stat().st_size
    # E-step passes: the start's and one per step; plus the centring pass and the start's
    # subsample (out of core) or the load (in memory), counted in the time.
    passes = ooc["n_iter"] + 1
    row = comparison_row(
        workload=w.name,
        peer="in memory",
        emkit_times=[ooc["seconds"]],
        peer_times=[memory["seconds"]],
        emkit_iters=ooc["n_iter"],
        peer_iters=memory["n_iter"],
        emkit_loglik=ooc["loglik"],
        peer_loglik=memory["loglik"],
        n_samples=n,
        n_features=w.n_features,
        file_mb=file_bytes / 2**20,
        write_seconds=written,
        peak_rss_mb=ooc["peak_rss_bytes"] / 2**20,
        peer_peak_rss_mb=memory["peak_rss_bytes"] / 2**20,
        rows_per_second=n * passes / ooc["seconds"],
    )
    row["note"] = (
        f"{n:,} x {w.n_features} Parquet ({row['file_mb']:.0f} MB): out of core peak RSS "
        f"{row['peak_rss_mb']:.0f} MB, {row['rows_per_second']:,.0f} rows/s over "
        f"{passes} E-step passes; in memory peak RSS {row['peer_peak_rss_mb']:.0f} MB"
    )
    print(row["note"], file=sys.stderr)
    return row


def run_threads(w: ScaleWorkload, args: argparse.Namespace) -> dict[str, Any]:
    import emkit

    n = max(int(w.n_samples * args.scale), 10_000)
    X = make_rows(np.random.default_rng(args.seed), n, w.n_features, w.n_components)
    kw = dict(tol=0.0, max_iter=args.iters, init=start_params(w.n_features, w.n_components))
    batch = -(-n // 8)

    def fit(n_jobs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emkit.ConvergenceWarning)
            return emkit.GaussianMixture(w.n_components, **kw, batch_size=batch, n_jobs=n_jobs).fit(
                X
            )

    times, last = time_interleaved(
        {"threads": lambda: fit(2), "serial": lambda: fit(None)}, min(args.repeats, 3)
    )
    return _row(w, "1 thread", times, last, "threads", "serial", n_samples=n, n_jobs=2)


def run_cluster(w: ScaleWorkload, args: argparse.Namespace) -> dict[str, Any]:
    import dask.array as da

    import emkit

    n = max(int(w.n_samples * args.scale), 10_000)
    X = make_rows(np.random.default_rng(args.seed), n, w.n_features, w.n_components)
    kw = dict(tol=0.0, max_iter=args.iters, init=start_params(w.n_features, w.n_components))
    darr = da.from_array(X, chunks=(-(-n // 8), w.n_features))

    def fit(data, executor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emkit.ConvergenceWarning)
            return emkit.GaussianMixture(w.n_components, **kw, executor=executor).fit(data)

    times, last = _cluster_and_memory(fit, darr, X, args)
    return _row(w, "in memory", times, last, "cluster", "memory", n_samples=n, workers=2)


def hmm_sequences(rng: np.random.Generator, n: int, d: int, k: int, length: int = 1_000):
    """``n`` rows of sequences of ``length`` steps from a sticky ``k``-state Gaussian HMM,
    the sequences' lengths, and a start (the true parameters moved)."""
    lengths = [length] * max(n // length, 8)
    transmat = np.full((k, k), 0.05 / (k - 1)) + np.eye(k) * (0.95 - 0.05 / (k - 1))
    means = np.random.default_rng(0).normal(scale=3.0, size=(k, d))
    states = np.empty(sum(lengths), dtype=np.int64)
    u = rng.random(len(states))
    cdf = np.cumsum(transmat, axis=1)
    for t in range(len(states)):
        first = t % length == 0
        states[t] = int(u[t] * k) if first else np.searchsorted(cdf[states[t - 1]], u[t])
    X = means[np.minimum(states, k - 1)] + rng.normal(size=(len(states), d))
    start = {
        "startprob": np.full(k, 1.0 / k),
        "transmat": np.full((k, k), 0.1 / (k - 1)) + np.eye(k) * (0.9 - 0.1 / (k - 1)),
        "means": means + 1.0,
        "covariances": np.full((k, d), 2.0),
    }
    return X, lengths, start


def run_cluster_hmm(w: ScaleWorkload, args: argparse.Namespace) -> dict[str, Any]:
    import dask.array as da

    import emkit

    n = max(int(w.n_samples * args.scale), 8_000)
    X, lengths, start = hmm_sequences(
        np.random.default_rng(args.seed), n, w.n_features, w.n_components
    )
    per = -(-len(lengths) // 8)  # whole sequences a partition
    darr = da.from_array(X, chunks=(1_000 * per, w.n_features))
    kw = dict(tol=0.0, max_iter=args.iters, init=start)

    def fit(data, executor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emkit.ConvergenceWarning)
            return emkit.HMM(w.n_components, **kw, executor=executor).fit(data, lengths)

    times, last = _cluster_and_memory(fit, darr, X, args)
    return _row(w, "in memory", times, last, "cluster", "memory", n_samples=len(X), workers=2)


def _cluster_and_memory(fit, darr, X, args: argparse.Namespace):
    """``fit(darr, client)`` on a ``LocalCluster`` (2 worker processes, loopback) and
    ``fit(X, "serial")`` in this process, timed by ``time_interleaved`` after a warm-up
    fit on the cluster (the workers import emkit, load or compile the kernels)."""
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        fit(darr, client)
        return time_interleaved(
            {"cluster": lambda: fit(darr, client), "memory": lambda: fit(X, "serial")},
            min(args.repeats, 3),
        )


def _row(w, peer: str, times, last, ours: str, theirs: str, **details) -> dict[str, Any]:
    """The result row of two fits timed by ``time_interleaved``."""
    return comparison_row(
        workload=w.name,
        peer=peer,
        emkit_times=times[ours],
        peer_times=times[theirs],
        emkit_iters=last[ours].n_iter_,
        peer_iters=last[theirs].n_iter_,
        emkit_loglik=last[ours].loglik_,
        peer_loglik=last[theirs].loglik_,
        **details,
    )


def run(workload: ScaleWorkload, args: argparse.Namespace) -> dict[str, Any]:
    runner = {
        "ooc-parquet": run_ooc,
        "threads": run_threads,
        "cluster": run_cluster,
        "cluster-hmm": run_cluster_hmm,
    }
    return runner[workload.name](workload, args)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, path, k, iters = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(_fit_in_child(path, k, iters, mode)))
    else:
        parser = argparse.ArgumentParser(description="emkit scale benchmarks")
        parser.add_argument(
            "--only", default=None, help="ooc-parquet, threads, cluster or cluster-hmm"
        )
        parser.add_argument("--scale", type=float, default=1.0)
        parser.add_argument("--iters", type=int, default=10)
        parser.add_argument("--repeats", type=int, default=3)
        parser.add_argument("--seed", type=int, default=0)
        cli = parser.parse_args()
        for w in WORKLOADS:
            if cli.only in (None, w.name):
                row = run(w, cli)
                keep = ("workload", "peer", "emkit_s_per_iter", "peer_s_per_iter", "speedup")
                print({k: row[k] for k in (*keep, "loglik_rel_diff")}, flush=True)
