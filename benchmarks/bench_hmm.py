"""Baum-Welch: ``emkit.HMM`` against hmmlearn 0.3 (``--only hmm``).

Both libraries fit the same sequences from the same starting parameters for exactly
``iters`` iterations (emkit ``tol=0``; hmmlearn ``tol=-inf``, set on its convergence
monitor too). The timed call is the whole ``fit``:

* emkit: input validation, centring (Gaussian), ``iters + 1`` E-steps (the last one
  gives the log-likelihood of the returned parameters) and ``iters`` M-steps;
* hmmlearn: input validation, ``iters`` E-steps and ``iters`` M-steps (its ``fit``
  does not evaluate the returned parameters).

so emkit does one E-step more; "s/iter" is fit time / iterations. Each workload is
run twice, once against each of hmmlearn's implementations: ``log`` (its default:
log-space forward-backward) and ``scaling`` (scaled forward-backward); the peer
column names it.

Workloads (data sampled from a random HMM fixed by ``--seed``; ``--quick`` divides
the number of sequences by 10):

* ``hmm-diag-*``, ``hmm-full-*``: K = 8 states, D = 4 Gaussian emissions with
  diagonal / full covariances, 100 sequences of length 1,000;
* ``hmm-cat-*``: K = 16 states, 32 symbols, 100 sequences of length 10,000.

Starting point (given to both): uniform start probabilities, a transition matrix with
0.5 on the diagonal and random (Dirichlet) off-diagonal mass, K random observations as
means with the data's covariance for every state (Gaussian), random (Dirichlet)
emission probabilities (categorical). Regularisation is off on both sides (emkit
``reg_covar=0``, hmmlearn ``covars_prior=0``), so both run maximum likelihood and the
final log-likelihoods must agree: the check is emkit's ``loglik_`` against hmmlearn's
``score(X, lengths)`` after the last M-step, outside the timed region.

hmmlearn's log-space categorical fit takes tens of seconds per iteration, so that
workload runs at most 3 iterations and 3 repetitions.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Any

import hmmlearn
import numpy as np
from hmmlearn import hmm as hl

import emkit
from _common import comparison_row, quiet, time_interleaved

__all__ = ["WORKLOADS", "HMMWorkload", "run"]

#: ``run.py`` matches this against ``--only`` to select every workload of the module
NAME = "hmm"


@dataclass(frozen=True)
class HMMWorkload:
    """Data sizes, model and hmmlearn implementation of one benchmark."""

    name: str
    emission: str  # "gaussian" or "categorical"
    covariance_type: str  # Gaussian only
    n_states: int
    n_features: int  # Gaussian: dimension; categorical: number of symbols
    n_sequences: int
    length: int
    implementation: str  # hmmlearn's: "log" or "scaling"
    #: caps on iterations and repetitions (for hmmlearn's slowest configuration)
    max_iters: int | None = None
    max_repeats: int | None = None


def _workloads() -> list[HMMWorkload]:
    out = []
    for impl in ("log", "scaling"):
        for cov in ("diag", "full"):
            out.append(HMMWorkload(f"hmm-{cov}-{impl}", "gaussian", cov, 8, 4, 100, 1000, impl))
    for impl in ("log", "scaling"):
        caps = (3, 3) if impl == "log" else (None, None)
        out.append(
            HMMWorkload(f"hmm-cat-{impl}", "categorical", "", 16, 32, 100, 10_000, impl, *caps)
        )
    return out


WORKLOADS = _workloads()


# ---------------------------------------------------------------------- data
def _sticky_transmat(rng: np.random.Generator, K: int, stay: float) -> np.ndarray:
    A = (1.0 - stay) * rng.dirichlet(np.ones(K), size=K)
    A[np.diag_indices(K)] += stay
    return A / A.sum(axis=1, keepdims=True)


def make_data(w: HMMWorkload, seed: int) -> tuple[np.ndarray, list[int]]:
    """Sequences sampled from a random HMM fixed by ``seed`` (states drawn for all
    sequences at once, one time step after another)."""
    rng = np.random.default_rng(seed)
    K, S, T = w.n_states, w.n_sequences, w.length
    A = _sticky_transmat(rng, K, 0.9)
    cdf = np.cumsum(A, axis=1)
    z = np.empty((S, T), dtype=np.int64)
    z[:, 0] = rng.integers(K, size=S)
    u = rng.random((S, T))
    for t in range(1, T):
        z[:, t] = np.minimum((u[:, t, None] > cdf[z[:, t - 1]]).sum(axis=1), K - 1)
    z = z.ravel()
    if w.emission == "categorical":
        emit = rng.dirichlet(np.full(w.n_features, 0.3), size=K)
        cdf_e = np.cumsum(emit, axis=1)
        symbols = (rng.random(len(z))[:, None] > cdf_e[z]).sum(axis=1)
        X = np.minimum(symbols, w.n_features - 1)[:, None]
    else:
        D = w.n_features
        means = rng.normal(scale=2.0, size=(K, D))
        A_ = rng.normal(size=(K, D, D)) / np.sqrt(D)
        chol = np.linalg.cholesky(A_ @ A_.transpose(0, 2, 1) + 0.5 * np.eye(D))
        X = means[z] + np.einsum("tij,tj->ti", chol[z], rng.standard_normal((len(z), D)))
    return X, [T] * S


def starting_point(w: HMMWorkload, X: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The common start (keys as emkit's ``init``)."""
    rng = np.random.default_rng([seed, 1])
    K = w.n_states
    start = {"startprob": np.full(K, 1.0 / K), "transmat": _sticky_transmat(rng, K, 0.5)}
    if w.emission == "categorical":
        start["emissionprob"] = rng.dirichlet(np.full(w.n_features, 5.0), size=K)
        return start
    D = X.shape[1]
    cov = np.cov(X, rowvar=False)
    start["means"] = X[rng.choice(len(X), size=K, replace=False)].copy()
    start["covariances"] = (
        np.broadcast_to(cov, (K, D, D)).copy()
        if w.covariance_type == "full"
        else np.broadcast_to(np.diag(cov), (K, D)).copy()
    )
    return start


# ---------------------------------------------------------------------- fitting
def fit_emkit(w: HMMWorkload, X, lengths, start: dict, iters: int) -> emkit.HMM:
    """emkit fit of exactly ``iters`` iterations from ``start``."""
    model = emkit.HMM(
        w.n_states,
        emission=w.emission,
        covariance_type=w.covariance_type or "diag",
        reg_covar=0.0,
        init=start,
        max_iter=iters,
        tol=0.0,
    )
    with quiet(emkit.ConvergenceWarning):
        return model.fit(X, lengths)


def fit_hmmlearn(w: HMMWorkload, X, lengths, start: dict, iters: int):
    """hmmlearn fit of exactly ``iters`` iterations from ``start``."""
    common = {
        "n_iter": iters,
        "tol": -np.inf,
        "init_params": "",
        "implementation": w.implementation,
    }
    if w.emission == "categorical":
        model = hl.CategoricalHMM(w.n_states, n_features=w.n_features, **common)
        model.emissionprob_ = start["emissionprob"]
    else:
        model = hl.GaussianHMM(
            w.n_states, covariance_type=w.covariance_type, covars_prior=0.0, **common
        )
        model.means_, model.covars_ = start["means"], start["covariances"]
    model.startprob_, model.transmat_ = start["startprob"], start["transmat"]
    with quiet(RuntimeWarning):
        return model.fit(X, lengths)


# ---------------------------------------------------------------------- benchmark
def scaled(w: HMMWorkload, scale: float) -> HMMWorkload:
    """The workload with ``n_sequences`` multiplied by ``scale`` (``--quick``)."""
    return HMMWorkload(**{**asdict(w), "n_sequences": max(int(w.n_sequences * scale), 2)})


def run(workload: HMMWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Time emkit and hmmlearn on ``workload``, interleaved; return the result row."""
    w = scaled(workload, args.scale)
    X, lengths = make_data(w, args.seed)
    start = starting_point(w, X, args.seed)
    iters = min(args.iters, w.max_iters or args.iters)
    repeats = min(args.repeats, w.max_repeats or args.repeats)
    runners = {
        "emkit": lambda: fit_emkit(w, X, lengths, start, iters),
        "peer": lambda: fit_hmmlearn(w, X, lengths, start, iters),
    }
    fit_emkit(w, X, lengths, start, 1)  # warm-up: Numba's cache, first touch of memory
    fit_hmmlearn(w, X, lengths, start, 1)
    times, fitted = time_interleaved(runners, repeats)
    ours, theirs = fitted["emkit"], fitted["peer"]
    return comparison_row(
        workload=w.name,
        peer=f"hmmlearn {hmmlearn.__version__} {w.implementation}",
        emkit_times=times["emkit"],
        peer_times=times["peer"],
        emkit_iters=ours.n_iter_,
        peer_iters=theirs.monitor_.iter,
        emkit_loglik=ours.loglik_,
        peer_loglik=float(theirs.score(X, lengths)),
        iters=iters,
        repeats=repeats,
        max_abs_transmat_diff=float(np.max(np.abs(ours.transmat_ - theirs.transmat_))),
        **asdict(w),
    )
