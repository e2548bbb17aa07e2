"""``emkit fit`` with its defaults on a large file: the old defaults against the new.

The data are drawn from a known mixture of 4 Gaussians in 8 dimensions (means spread
by 4 standard deviations, random full covariances), saved as a ``.npy`` file in a
temporary folder. Each fit runs in its own process (``python -m emkit.cli fit``), timed
from outside, so the times include the start of Python, the imports and the read of
the file, as a user sees them.

* ``cli-defaults-1m``: the new defaults of ``emkit fit`` (K = 1..8, full covariances,
  5 k-means++ restarts on a subsample of 20,000 rows plus the splits of K - 1, the best
  start run on all rows with SQUAREM, ``max_iter=500``, ``tol=1e-6``) on 1,000,000 x 8:
  wall time, chosen K and its BIC. (The old defaults took 14 minutes on such a file.)
* ``cli-old-vs-new``: 100,000 x 8, the old defaults (every restart of every candidate
  run to convergence on all rows with plain EM: what ``emkit fit`` ran before, a call
  of :func:`emkit.select` with :data:`OLD`, in its own process too) against the new,
  side by side: the ratio of the wall times, the chosen K and the BIC of each.

``--quick`` divides the sizes by 10. ``python benchmarks/bench_cli_scale.py [--only
NAME] [--scale S]`` runs it alone (with the machine's thread counts);
``run.py --only cli-scale`` with the others, the threads pinned (one by default).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _common import comparison_row

__all__ = ["WORKLOADS", "CliWorkload", "run"]

NAME = "cli-scale"
HERE = Path(__file__).resolve().parent
#: the old defaults of ``emkit fit`` (before the subsample, SQUAREM and warm starts)
OLD = dict(init="kmeans++", n_init=5, max_iter=500, tol=1e-6, random_state=0)


@dataclass(frozen=True)
class CliWorkload:
    name: str
    n_samples: int
    compare_old: bool


WORKLOADS = [
    CliWorkload("cli-defaults-1m", 1_000_000, False),
    CliWorkload("cli-old-vs-new", 100_000, True),
]
N_FEATURES = 8
N_COMPONENTS = 4


def true_mixture(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights, means and covariances of the mixture the rows are drawn from."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    means = rng.normal(0.0, 4.0, (N_COMPONENTS, N_FEATURES))
    covs = []
    for _ in range(N_COMPONENTS):
        a = rng.normal(size=(N_FEATURES, N_FEATURES))
        covs.append(a @ a.T / N_FEATURES + 0.5 * np.eye(N_FEATURES))
    return weights, means, np.stack(covs)


def make_rows(n: int, seed: int) -> np.ndarray:
    """``n`` rows from :func:`true_mixture`."""
    weights, means, covs = true_mixture()
    rng = np.random.default_rng(seed + 1)
    labels = rng.choice(N_COMPONENTS, size=n, p=weights)
    X = np.empty((n, N_FEATURES))
    for k in range(N_COMPONENTS):
        rows = labels == k
        X[rows] = rng.multivariate_normal(means[k], covs[k], size=int(rows.sum()))
    return X


def _fit_in_child(mode: str, path: str) -> dict[str, Any]:
    """One ``emkit fit`` in this (child) process: the command itself (``new``), or its
    old defaults through :func:`emkit.select` (``old``)."""
    import contextlib
    import io
    import re

    start = time.perf_counter()
    if mode == "new":
        from emkit.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["fit", path, "-q"])
        if code:
            raise RuntimeError(f"emkit fit exited with {code}")
        chosen = re.search(
            r"chosen model: K=(\d+), covariance '(\w+)', BIC ([-\d.]+)", out.getvalue()
        )
        rows = [line.split() for line in out.getvalue().splitlines()]
        loglik = next(float(r[-6]) for r in rows if r[:1] == ["*"])
        return {
            "seconds": time.perf_counter() - start,
            "K": int(chosen.group(1)),
            "bic": float(chosen.group(3)),
            "loglik": loglik,
        }
    import warnings

    import emkit

    X = np.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        sel = emkit.select(X, range(1, 9), "full", **OLD)
    best = sel.candidates[sel.best_index_]
    return {
        "seconds": time.perf_counter() - start,
        "K": best.n_components,
        "bic": best.bic,
        "loglik": best.loglik,
    }


def _child(mode: str, path: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(f"the {mode} fit failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "wall": wall}


def run(workload: CliWorkload, args: argparse.Namespace) -> dict[str, Any]:
    n = max(int(workload.n_samples * args.scale), 10_000)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.npy"
        np.save(path, make_rows(n, args.seed))
        new = _child("new", path)
        old = _child("old", path) if workload.compare_old else None
    base = old or new
    row = comparison_row(
        workload=workload.name,
        peer="old defaults" if old else "(none)",
        emkit_times=[new["wall"]],
        peer_times=[base["wall"]],
        emkit_iters=1,
        peer_iters=1,
        emkit_loglik=new["loglik"],
        peer_loglik=base["loglik"],
        n_samples=n,
        n_features=N_FEATURES,
        new=new,
        old=old,
    )
    note = f"{n:,} x {N_FEATURES}: new defaults {new['wall']:.1f} s, K={new['K']}, BIC {new['bic']:.2f}"
    if old:
        note += (
            f"; old defaults {old['wall']:.1f} s, K={old['K']}, BIC {old['bic']:.2f}; "
            f"old / new = {old['wall'] / new['wall']:.1f}x"
        )
    row["note"] = note
    print(note, file=sys.stderr)
    return row


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_fit_in_child(sys.argv[2], sys.argv[3])))
    else:
        parser = argparse.ArgumentParser(description="emkit fit defaults at scale")
        parser.add_argument("--only", default=None, help="cli-defaults-1m or cli-old-vs-new")
        parser.add_argument("--scale", type=float, default=1.0)
        parser.add_argument("--seed", type=int, default=0)
        parsed = parser.parse_args()
        for w in WORKLOADS:
            if parsed.only in (None, w.name):
                print(json.dumps(run(w, parsed), default=float))
