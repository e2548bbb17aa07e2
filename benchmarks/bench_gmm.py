"""Gaussian mixture EM: ``emkit.GaussianMixture`` against ``sklearn.mixture.GaussianMixture``.

Both libraries fit the same data from the same starting parameters with
``max_iter=iters`` and ``tol=0``, so each runs exactly ``iters`` EM iterations. The
timed call is the whole ``fit``:

* emkit: input validation, centring of the data, ``iters + 1`` E-steps (the last
  one gives the log-likelihood of the returned parameters) and ``iters`` M-steps;
* scikit-learn: input validation, the conversion of the given precisions to
  Cholesky factors, ``iters + 1`` E-steps (the last one gives ``fit_predict``'s
  labels) and ``iters`` M-steps. No k-means runs: scikit-learn skips its
  initialisation when weights, means and precisions are all given.

The time per iteration is the fit time over the number of iterations. The result
check compares emkit's ``loglik_`` with scikit-learn's ``score(X) * N`` (both the
log-likelihood after the last M-step), outside the timed region.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import emkit
from _common import comparison_row, quiet, time_interleaved

__all__ = ["WORKLOADS", "GMMWorkload", "run"]

#: ``run.py`` matches this against ``--only`` to select every workload of the module
NAME = "gmm"
REG_COVAR = 1e-6


@dataclass(frozen=True)
class GMMWorkload:
    """Data sizes and model of one benchmark."""

    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    #: dtype of the data given to emkit (scikit-learn always gets float64)
    emkit_dtype: str = "float64"


WORKLOADS = [
    GMMWorkload("gmm-full", 200_000, 16, 16, "full"),
    GMMWorkload("gmm-diag", 200_000, 16, 16, "diag"),
    GMMWorkload("gmm-2d", 1_000_000, 2, 8, "full"),
    GMMWorkload("gmm-full-f32", 200_000, 16, 16, "full", emkit_dtype="float32"),
]


# ---------------------------------------------------------------------- data
def make_data(n_samples: int, n_features: int, n_components: int, seed: int) -> np.ndarray:
    """Rows drawn from a random Gaussian mixture (fixed by ``seed``), shuffled, float64.

    Means are N(0, 3^2) per coordinate, covariances ``A A^T / D + 0.1 I`` with a
    standard normal ``A``, weights Dirichlet(5, ..., 5): overlapping but distinct
    components, so EM keeps improving for many iterations.
    """
    rng = np.random.default_rng(seed)
    D, K = n_features, n_components
    weights = rng.dirichlet(np.full(K, 5.0))
    means = rng.normal(scale=3.0, size=(K, D))
    A = rng.normal(size=(K, D, D)) / np.sqrt(D)
    chol = np.linalg.cholesky(A @ A.transpose(0, 2, 1) + 0.1 * np.eye(D))
    labels = rng.permutation(np.repeat(np.arange(K), rng.multinomial(n_samples, weights)))
    X = rng.standard_normal((n_samples, D))
    for k in range(K):
        rows = labels == k
        X[rows] = means[k] + X[rows] @ chol[k].T
    return X


def starting_point(
    X: np.ndarray, n_components: int, covariance_type: str, seed: int
) -> dict[str, np.ndarray]:
    """Cheap common start: K distinct random rows as means, the global covariance, equal weights."""
    rng = np.random.default_rng([seed, 1])
    K, D = n_components, X.shape[1]
    means = X[rng.choice(len(X), size=K, replace=False)].copy()
    cov = np.cov(X, rowvar=False) + REG_COVAR * np.eye(D)
    if covariance_type == "full":
        covariances = np.broadcast_to(cov, (K, D, D)).copy()
    elif covariance_type == "diag":
        covariances = np.broadcast_to(np.diag(cov), (K, D)).copy()
    else:
        raise ValueError(f"unsupported covariance_type {covariance_type!r}")
    return {"weights": np.full(K, 1.0 / K), "means": means, "covariances": covariances}


def precisions(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Inverse covariances in scikit-learn's layout (symmetrised for its checks)."""
    if covariance_type == "diag":
        return 1.0 / covariances
    inverse = np.linalg.inv(covariances)
    return 0.5 * (inverse + inverse.transpose(0, 2, 1))


# ---------------------------------------------------------------------- fitting
def fit_emkit(X: np.ndarray, start: dict, covariance_type: str, iters: int):
    """emkit fit of exactly ``iters`` iterations from ``start``."""
    model = emkit.GaussianMixture(
        n_components=len(start["weights"]),
        covariance_type=covariance_type,
        tol=0.0,
        reg_covar=REG_COVAR,
        max_iter=iters,
        init=start,
    )
    with quiet(emkit.ConvergenceWarning):
        return model.fit(X)


def fit_sklearn(X: np.ndarray, start: dict, covariance_type: str, iters: int):
    """scikit-learn fit of exactly ``iters`` iterations from ``start``."""
    model = SklearnGaussianMixture(
        n_components=len(start["weights"]),
        covariance_type=covariance_type,
        tol=0.0,
        reg_covar=REG_COVAR,
        max_iter=iters,
        weights_init=start["weights"],
        means_init=start["means"],
        precisions_init=precisions(start["covariances"], covariance_type),
    )
    with quiet(SklearnConvergenceWarning):
        return model.fit(X)


# ---------------------------------------------------------------------- benchmark
def scaled(workload: GMMWorkload, scale: float) -> GMMWorkload:
    """The workload with ``n_samples`` multiplied by ``scale`` (``--quick``)."""
    n = max(int(workload.n_samples * scale), 10 * workload.n_components)
    return GMMWorkload(**{**asdict(workload), "n_samples": n})


def run(workload: GMMWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Time both libraries on ``workload``, interleaved; return the result row."""
    w = scaled(workload, args.scale)
    X = make_data(w.n_samples, w.n_features, w.n_components, args.seed)
    X_emkit = X.astype(w.emkit_dtype)
    start = starting_point(X, w.n_components, w.covariance_type, args.seed)
    cov = w.covariance_type
    runners = {
        "emkit": lambda: fit_emkit(X_emkit, start, cov, args.iters),
        "peer": lambda: fit_sklearn(X, start, cov, args.iters),
    }
    fit_emkit(X_emkit, start, cov, 1)  # warm-up: imports, caches, first-touch of memory
    fit_sklearn(X, start, cov, 1)
    times, fitted = time_interleaved(runners, args.repeats)
    ours, theirs = fitted["emkit"], fitted["peer"]
    return comparison_row(
        workload=w.name,
        peer=f"sklearn {sklearn.__version__}",
        emkit_times=times["emkit"],
        peer_times=times["peer"],
        emkit_iters=ours.n_iter_,
        peer_iters=theirs.n_iter_,
        emkit_loglik=ours.loglik_,
        peer_loglik=float(theirs.score(X)) * len(X),
        max_abs_mean_diff=_mean_difference(ours, theirs),
        **asdict(w),
    )


def _mean_difference(ours, theirs) -> float:
    """Largest absolute difference between the two fitted means (same component order)."""
    return float(np.max(np.abs(np.asarray(ours.means_, np.float64) - theirs.means_)))
