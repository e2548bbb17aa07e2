"""SQUAREM against plain EM on slowly converging Gaussian mixtures (``--only squarem``).

Both fits start from the same parameters and run to convergence with the same
tolerance (``tol=1e-10`` per observation; ``--iters`` does not apply): plain EM
(``emkit.em(model, data)``) and SQUAREM (``emkit.em(..., accel="squarem")``). Plain EM
is the "peer" of the table. Its final log-likelihood is the target; SQUAREM, which
never ends a cycle below two plain EM steps, must reach it (``|dLL|/|LL|`` in the
table; the target is 1e-8).

What the table's columns mean here: one "iteration" is one whole fit, so
``s/iter`` is the wall time of a fit to convergence (median of ``--repeats``
interleaved repetitions) and ``speed-up`` is plain EM's time over SQUAREM's. The
number of E-steps (full passes over the data, the unit of work of both) is printed
for each workload and stored in the JSON: ``plain_esteps``, ``squarem_esteps``,
their ratio ``estep_ratio``, and ``squarem_esteps_to_reach``, the E-steps SQUAREM
took until its objective first reached plain EM's final one. The project's target on
``squarem-overlap``: at least 3x fewer E-steps and 2x less time.

Workloads (2-D data, K = 3 components with full covariances, N = 20,000):

* ``squarem-overlap``: equal weights; means on a circle of radius 0.5 (0.87 apart),
  covariances ``R diag(1.5, 0.4) R'`` rotated by 0, 1 and 2 radians, so every mean
  lies within one standard deviation of the others. Start as in ``bench_gmm.py``:
  K random rows as means, the data's covariance for every component, equal weights.
* ``squarem-small-weight``: weights (0.49, 0.49, 0.02); a small, tight component
  (covariance 0.3 I) between two large ones. Start: the true means plus N(0, 0.3^2)
  noise, the data's covariance for every component, equal weights, so EM must move
  a third of the mass away from the small component.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import emkit
from _common import comparison_row, time_interleaved
from emkit.models.mixture.gaussian_model import GaussianMixtureModel

__all__ = ["WORKLOADS", "SquaremWorkload", "run"]

#: ``run.py`` matches this against ``--only`` to select every workload of the module
NAME = "squarem"
TOL = 1e-10
MAX_ITER = 200_000


@dataclass(frozen=True)
class SquaremWorkload:
    """One slowly converging mixture."""

    name: str
    kind: str  # "overlap" or "small-weight"
    n_samples: int = 20_000
    n_components: int = 3
    covariance_type: str = "full"


WORKLOADS = [
    SquaremWorkload("squarem-overlap", "overlap"),
    SquaremWorkload("squarem-small-weight", "small-weight"),
]


# ---------------------------------------------------------------------- data
def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def mixture_truth(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, means, covariances) of the generating mixture."""
    if kind == "overlap":
        angles = np.array([0.0, 2.0, 4.0]) * np.pi / 3
        means = 0.5 * np.column_stack([np.cos(angles), np.sin(angles)])
        covs = np.stack([_rotation(a) @ np.diag([1.5, 0.4]) @ _rotation(a).T for a in (0, 1, 2)])
        return np.full(3, 1.0 / 3.0), means, covs
    if kind == "small-weight":
        weights = np.array([0.49, 0.49, 0.02])
        means = np.array([[0.0, 0.0], [2.5, 0.0], [1.25, 1.8]])
        covs = np.array([[[1.0, 0.3], [0.3, 1.0]], [[1.0, -0.2], [-0.2, 0.8]], 0.3 * np.eye(2)])
        return weights, means, covs
    raise ValueError(f"unknown workload kind {kind!r}")


def make_data(kind: str, n_samples: int, seed: int) -> np.ndarray:
    """Rows drawn from the workload's mixture (fixed by ``seed``), shuffled."""
    rng = np.random.default_rng(seed)
    weights, means, covs = mixture_truth(kind)
    labels = rng.permutation(
        np.repeat(np.arange(len(weights)), rng.multinomial(n_samples, weights))
    )
    X = np.empty((n_samples, means.shape[1]))
    for k in range(len(weights)):
        rows = labels == k
        X[rows] = rng.multivariate_normal(means[k], covs[k], size=int(rows.sum()))
    return X


def starting_point(model: GaussianMixtureModel, X: np.ndarray, kind: str, seed: int):
    """The common start of both fits (see the module docstring)."""
    rng = np.random.default_rng([seed, 1])
    K, D = model.n_components, X.shape[1]
    if kind == "overlap":
        means = X[rng.choice(len(X), size=K, replace=False)].copy()
    else:
        means = mixture_truth(kind)[1] + rng.normal(scale=0.3, size=(K, D))
    covs = np.broadcast_to(np.cov(X, rowvar=False), (K, D, D)).copy()
    return model.params(np.full(K, 1.0 / K), means, covs)


# ---------------------------------------------------------------------- fitting
def fit(model, X, start, accel: str | None, callback=None) -> emkit.EMResult:
    return emkit.em(
        model,
        (X, None),
        init=start,
        tol=TOL,
        max_iter=MAX_ITER,
        accel=accel,
        callback=callback,
        check_monotone="raise",
    )


def esteps_to_reach(model, X, start, target: float) -> int:
    """E-steps SQUAREM takes until its objective first reaches ``target``."""
    result = fit(model, X, start, "squarem", callback=lambda info: info.objective >= target)
    return result.n_estep


# ---------------------------------------------------------------------- benchmark
def run(workload: SquaremWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Time plain EM and SQUAREM to convergence, interleaved; return the result row."""
    n = max(int(workload.n_samples * args.scale), 50 * workload.n_components)
    X = make_data(workload.kind, n, args.seed)
    model = GaussianMixtureModel(workload.n_components, workload.covariance_type)
    start = starting_point(model, X, workload.kind, args.seed)
    emkit.em(model, (X, None), init=start, max_iter=1)  # warm-up
    emkit.em(model, (X, None), init=start, max_iter=1, accel="squarem")
    runners = {
        "squarem": lambda: fit(model, X, start, "squarem"),
        "plain": lambda: fit(model, X, start, None),
    }
    times, fitted = time_interleaved(runners, args.repeats)
    fast, plain = fitted["squarem"], fitted["plain"]
    reach = esteps_to_reach(model, X, start, plain.objective)
    paired = statistics.median(p / s for p, s in zip(times["plain"], times["squarem"]))
    row = comparison_row(
        workload=workload.name,
        peer="plain EM",
        emkit_times=times["squarem"],
        peer_times=times["plain"],
        emkit_iters=1,  # one "iteration" = one whole fit to convergence
        peer_iters=1,
        emkit_loglik=fast.loglik,
        peer_loglik=plain.loglik,
        plain_esteps=plain.n_estep,
        squarem_esteps=fast.n_estep,
        squarem_cycles=fast.n_iter,
        squarem_esteps_to_reach=reach,
        estep_ratio=plain.n_estep / fast.n_estep,
        time_ratio=paired,
        loglik_signed_rel_diff=(fast.loglik - plain.loglik) / abs(plain.loglik),
        converged=bool(fast.converged and plain.converged),
        tol=TOL,
        **{**asdict(workload), "n_samples": n},
    )
    print(
        f"{workload.name}: E-steps plain {plain.n_estep} / SQUAREM {fast.n_estep} = "
        f"{row['estep_ratio']:.1f}x fewer (to reach plain's final loglik: {reach} E-steps, "
        f"{plain.n_estep / reach:.1f}x fewer); time {row['peer_s_per_iter']:.3g} s / "
        f"{row['emkit_s_per_iter']:.3g} s = {row['speedup']:.1f}x less (paired {paired:.1f}x); "
        f"final loglik (SQUAREM - plain) / |plain| = {row['loglik_signed_rel_diff']:+.1e}",
        flush=True,
    )
    return row
