"""Student-t mixtures: the cost of the t E-step, and ECME against ECM.

No established Python library fits multivariate t mixtures, so the peers are emkit's
own reference points, on the same data from the same start:

* ``tmm-*-gauss`` (per iteration): ``StudentTMixture(dof=1e8)``, which equals a
  Gaussian mixture to about 1e-8, against ``GaussianMixture``, both with
  ``max_iter=iters`` and ``tol=0``. The ratio is what the t's latent weights cost per
  E-step over emkit's Gaussian kernels; the log-likelihoods must agree.
* ``tmm-*-ecme`` (per fit): ``StudentTMixture`` with estimated degrees of freedom,
  ECME against ECM (``algorithm="ecm"``), both to ``tol=1e-6``; ECME makes a few extra
  passes over the data per iteration but needs far fewer iterations. Times are whole
  fits, and the note gives the iterations and passes of each.

The data are a t mixture (dofs 3 to 12) with ``n_components`` components.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np

import emkit
from _common import comparison_row, quiet, time_interleaved
from emkit.distributions.covariance import get_structure

__all__ = ["WORKLOADS", "StudentTWorkload", "run"]

NAME = "student_t"


@dataclass(frozen=True)
class StudentTWorkload:
    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    #: "gauss" (the t E-step against the Gaussian one) or "ecme" (ECME against ECM)
    kind: str


WORKLOADS = [
    StudentTWorkload("tmm-full-gauss", 100_000, 8, 8, "full", "gauss"),
    StudentTWorkload("tmm-diag-gauss", 100_000, 8, 8, "diag", "gauss"),
    StudentTWorkload("tmm-full-ecme", 20_000, 4, 4, "full", "ecme"),
]


def make_data(w: StudentTWorkload, seed: int) -> np.ndarray:
    """Rows of a random t mixture: N(0, 4^2) locations, ``A A^T / D + 0.2 I`` scales,
    degrees of freedom from 3 to 12, equal weights."""
    rng = np.random.default_rng(seed)
    K, D = w.n_components, w.n_features
    means = rng.normal(scale=4.0, size=(K, D))
    A = rng.normal(size=(K, D, D)) / np.sqrt(D)
    chol = np.linalg.cholesky(A @ A.transpose(0, 2, 1) + 0.2 * np.eye(D))
    dofs = np.linspace(3.0, 12.0, K)
    labels = rng.integers(0, K, w.n_samples)
    z = rng.standard_normal((w.n_samples, D))
    g = rng.chisquare(dofs[labels]) / dofs[labels]
    X = np.empty_like(z)
    for k in range(K):
        rows = labels == k
        X[rows] = means[k] + (z[rows] @ chol[k].T) / np.sqrt(g[rows])[:, None]
    return X


def _start(X: np.ndarray, w: StudentTWorkload, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 1])
    K = w.n_components
    full = np.stack([np.cov(X, rowvar=False)] * K)
    covs = get_structure(w.covariance_type).from_full(full)
    return {
        "weights": np.full(K, 1.0 / K),
        "means": X[rng.choice(len(X), K, replace=False)],
        "covariances": covs,
    }


def run(workload: StudentTWorkload, args: argparse.Namespace) -> dict[str, Any]:
    n = max(1000, int(workload.n_samples * args.scale))
    X = make_data(workload, args.seed)[:n]
    start = _start(X, workload, args.seed)
    ct = workload.covariance_type
    if workload.kind == "gauss":
        kw = {"tol": 0.0, "max_iter": args.iters, "init": start, "covariance_type": ct}
        runners = {
            "t": lambda: emkit.StudentTMixture(workload.n_components, dof=1e8, **kw).fit(X),
            "gauss": lambda: emkit.GaussianMixture(workload.n_components, **kw).fit(X),
        }
        peer, iters = "GaussianMixture (emkit)", args.iters
    else:
        kw = {
            "tol": 1e-6,
            "max_iter": 2000,
            "init": {**start, "dofs": np.full(workload.n_components, 10.0)},
        }
        runners = {
            "t": lambda: emkit.StudentTMixture(workload.n_components, **kw).fit(X),
            "gauss": lambda: emkit.StudentTMixture(
                workload.n_components, algorithm="ecm", **kw
            ).fit(X),
        }
        peer, iters = "ECM (emkit)", 1
    with quiet(emkit.ConvergenceWarning):
        times, fits = time_interleaved(runners, args.repeats)
    t, ref = fits["t"], fits["gauss"]
    note = (
        f"ECME {t.n_iter_} iterations / {t.n_estep_} passes, ECM {ref.n_iter_} / "
        f"{ref.n_estep_} (times per fit)"
        if workload.kind == "ecme"
        else "t E-step at dof=1e8 against the Gaussian kernels"
    )
    return comparison_row(
        workload=workload.name,
        peer=peer,
        emkit_times=times["t"],
        peer_times=times["gauss"],
        emkit_iters=t.n_iter_ if workload.kind == "gauss" else iters,
        peer_iters=ref.n_iter_ if workload.kind == "gauss" else iters,
        emkit_loglik=t.loglik_,
        peer_loglik=ref.loglik_,
        note=note,
        n_samples=n,
        n_features=workload.n_features,
        n_components=workload.n_components,
    )
