"""Mixtures of experts and of regressions against a plain NumPy implementation.

No Python library fits these models, so the peer is the straightforward NumPy code
of the same EM updates, written here: per component, weighted least squares from
``(A * r_k)^T A`` solved by ``numpy.linalg.solve``, the noise variance from a pass
over the residuals; for the gate, the gradient and the Hessian blocks from one
``(A * c)^T A`` product per pair of experts, one Newton step solved by
``numpy.linalg.solve`` and halved until the gate's ``Q`` (evaluated on the data) does
not decrease. emkit computes the same quantities as additive statistics (all the
weighted Gram matrices of one pass in one matrix product per block of rows) and
certifies its gate step without another pass (``emkit.distributions.softmax``).

Both start from the same parameters and run ``iters`` iterations (``tol=0``). The
timed call is the whole fit (emkit: validation, centring, ``iters + 1`` E-steps;
NumPy: the same loop). The row's ``gemm_fraction`` is the floating-point work of
emkit's matrix products per iteration (counted below) over the time per iteration
times the machine's GEMM rate, measured in the same run on a square product.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import log_softmax, logsumexp

import emkit
from _common import comparison_row, quiet, time_interleaved

__all__ = ["WORKLOADS", "ExpertsWorkload", "run"]

NAME = "experts"


@dataclass(frozen=True)
class ExpertsWorkload:
    name: str
    n_samples: int
    n_features: int
    n_experts: int
    gate: bool  # a softmax gate (mixture of experts) or constant weights (regressions)


WORKLOADS = [
    ExpertsWorkload("moe-linear", 1_000_000, 10, 4, True),
    ExpertsWorkload("mixreg", 1_000_000, 10, 4, False),
]


# ---------------------------------------------------------------------- data
def make_data(w: ExpertsWorkload, seed: int):
    """Covariates N(0, 1); a random softmax gate (or weights) picks one of K random
    lines; noise 0.5. Returns X, y and a common start (random perturbations of the truth)."""
    rng = np.random.default_rng(seed)
    n, p, K = w.n_samples, w.n_features, w.n_experts
    X = rng.standard_normal((n, p))
    gate = np.vstack([rng.normal(size=(K - 1, p + 1)), np.zeros((1, p + 1))])
    logits = gate[:, 0] + X @ gate[:, 1:].T if w.gate else np.zeros((n, K))
    z = (logits + rng.gumbel(size=(n, K))).argmax(axis=1)
    beta = rng.normal(size=(K, p + 1)) * 2
    y = beta[z, 0] + np.einsum("ij,ij->i", X, beta[z, 1:]) + rng.normal(0, 0.5, n)
    start = {
        "intercept": beta[:, 0] + rng.normal(0, 0.5, K),
        "coef": beta[:, 1:] + rng.normal(0, 0.5, (K, p)),
        "noise_variance": np.ones(K),
    }
    if w.gate:
        start["gate_intercept"], start["gate_coef"] = 0.5 * gate[:, 0], 0.5 * gate[:, 1:]
    else:
        start["weights"] = np.full(K, 1.0 / K)
    return X, y, start


# ---------------------------------------------------------------------- emkit
def fit_emkit(X, y, start, w: ExpertsWorkload, iters: int):
    kwargs = {"tol": 0.0, "max_iter": iters, "init": start, "n_init": 1}
    if w.gate:
        model = emkit.MixtureOfExperts(w.n_experts, gate_steps=1, **kwargs)  # the loop's one step
    else:
        model = emkit.MixtureOfRegressions(w.n_experts, **kwargs)
    with quiet(emkit.ConvergenceWarning):
        return model.fit(X, y)


# ---------------------------------------------------------------------- plain NumPy
def fit_numpy(X, y, start, w: ExpertsWorkload, iters: int) -> float:
    """The same EM in plain NumPy; returns the final log-likelihood."""
    n, K = len(X), w.n_experts
    A = np.column_stack([np.ones(n), X])
    B = np.column_stack([start["intercept"], start["coef"]])
    var = start["noise_variance"].copy()
    if w.gate:
        V = np.column_stack([start["gate_intercept"], start["gate_coef"]])[:-1].copy()
    else:
        log_pi = np.log(start["weights"])

    def log_joint():
        mu = A @ B.T
        log_gate = (
            log_softmax(np.column_stack([A @ V.T, np.zeros(n)]), axis=1) if w.gate else log_pi
        )
        return log_gate - 0.5 * (np.log(2 * np.pi * var) + (y[:, None] - mu) ** 2 / var)

    for _ in range(iters):
        joint = log_joint()
        resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
        for k in range(K):
            Ar = A * resp[:, [k]]
            B[k] = np.linalg.solve(Ar.T @ A, Ar.T @ y)
            var[k] = resp[:, k] @ (y - A @ B[k]) ** 2 / resp[:, k].sum()
        if w.gate:
            V = _gate_newton(A, resp, V)
        else:
            log_pi = np.log(resp.sum(axis=0) / n)
    return float(logsumexp(log_joint(), axis=1).sum())


def _gate_newton(A, resp, V):
    """One Newton step of the gate with step halving on its Q (evaluated on the data)."""
    M, q = V.shape

    def gate_q(V):
        return float(np.sum(resp * log_softmax(np.column_stack([A @ V.T, np.zeros(len(A))]), 1)))

    g = np.exp(log_softmax(np.column_stack([A @ V.T, np.zeros(len(A))]), axis=1))
    grad = ((resp[:, :M] - g[:, :M]).T @ A).ravel()
    H = np.zeros((M * q, M * q))
    for a in range(M):
        for b in range(a, M):
            c = g[:, a] * ((a == b) - g[:, b])
            block = (A * c[:, None]).T @ A
            H[a * q : (a + 1) * q, b * q : (b + 1) * q] = block
            H[b * q : (b + 1) * q, a * q : (a + 1) * q] = block.T
    step = np.linalg.solve(H, grad).reshape(M, q)
    q0, t = gate_q(V), 1.0
    while gate_q(V + t * step) < q0 and t > 1e-8:
        t *= 0.5
    return V + t * step


# ---------------------------------------------------------------------- GEMM work
def emkit_flops(w: ExpertsWorkload) -> float:
    """Multiply-adds x 2 of emkit's matrix products in one E-step: logits, residuals,
    gradients and every weighted Gram matrix (full q x q)."""
    n, q, K = w.n_samples, w.n_features + 1, w.n_experts
    M = K - 1
    grams = K + (M * (M + 1) // 2 + 1 if w.gate else 0)
    products = 2 * K + (2 * M if w.gate else 0)  # A @ B^T, (rE)^T A, A @ V^T, resid^T A
    return 2.0 * n * q * (q * grams + products)


def gemm_rate(size: int = 1500, repeats: int = 3) -> float:
    """Floating-point operations per second of a float64 square product on this machine."""
    a = np.random.default_rng(0).standard_normal((size, size))
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2.0 * size**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------- benchmark
def run(workload: ExpertsWorkload, args: argparse.Namespace) -> dict[str, Any]:
    w = ExpertsWorkload(
        **{**asdict(workload), "n_samples": max(int(workload.n_samples * args.scale), 1000)}
    )
    X, y, start = make_data(w, args.seed)
    fit_emkit(X, y, start, w, 1)  # warm-up
    fit_numpy(X, y, start, w, 1)
    runners = {
        "emkit": lambda: fit_emkit(X, y, start, w, args.iters),
        "peer": lambda: fit_numpy(X, y, start, w, args.iters),
    }
    times, fitted = time_interleaved(runners, args.repeats)
    ours = fitted["emkit"]
    per_iter = sorted(times["emkit"])[len(times["emkit"]) // 2] / args.iters
    rate = gemm_rate()
    return comparison_row(
        workload=w.name,
        peer="plain NumPy",
        emkit_times=times["emkit"],
        peer_times=times["peer"],
        emkit_iters=ours.n_iter_,
        peer_iters=args.iters,
        emkit_loglik=ours.loglik_,
        peer_loglik=fitted["peer"],
        gemm_gflops=rate / 1e9,
        gemm_fraction=emkit_flops(w) / per_iter / rate,
        note=(
            f"emkit's matrix products per iteration: {emkit_flops(w) / 1e9:.2f} GFLOP, "
            f"{emkit_flops(w) / per_iter / 1e9:.2f} GFLOP/s = "
            f"{emkit_flops(w) / per_iter / rate:.0%} of this machine's GEMM rate "
            f"({rate / 1e9:.1f} GFLOP/s)"
        ),
        **asdict(w),
    )


if __name__ == "__main__":
    import sys

    sys.exit("run through benchmarks/run.py: python benchmarks/run.py --only experts")
