"""Kalman-filter EM: ``emkit.LinearGaussianSSM`` against pykalman and dynamax (``--only ssm``).

Every library fits the same series from the same starting parameters for exactly
``iters`` iterations, estimating the same parameters: the transition and observation
matrices, both noise covariances (full) and the initial mean and covariance; the two
offsets are held at zero (pykalman: left out of ``em_vars``; dynamax:
``has_dynamics_bias=False, has_emissions_bias=False``; emkit: ``fixed``), since
pykalman updates the offsets one after the other rather than jointly, and the data
are sampled with zero offsets. The timed call is the whole fit:

* emkit: input validation, centring, ``iters + 1`` E-steps (the last one gives the
  log-likelihood of the returned parameters) and ``iters`` M-steps;
* pykalman: ``em(Y, n_iter=iters)``: ``iters`` E-steps and M-steps;
* dynamax: ``iters`` steps of ``e_step`` and ``m_step`` in one ``jax.lax.scan``, as its
  ``fit_em`` runs them, compiled once before timing (``fit_em`` itself builds a new
  jitted function per call, which would time the compilation too), JAX on the CPU
  in float64, XLA's CPU threads limited to ``--threads``.

The check (outside the timing): each fit's returned parameters are scored by
emkit's filter (the same function for all, so only the parameters can differ).

Workloads (a random stable model fixed by ``--seed``; ``--quick`` divides T by 10):

* ``ssm-2x2``: state 2, observations 2, T = 2,000;
* ``ssm-10x20``: state 10, observations 20, T = 5,000.

pykalman takes seconds per iteration, so its runs are capped at 3 iterations and 3
repetitions; the ratio is per iteration.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

import emkit
from _common import comparison_row, quiet, time_interleaved

__all__ = ["WORKLOADS", "SSMWorkload", "run"]

NAME = "ssm"


@dataclass(frozen=True)
class SSMWorkload:
    name: str
    state_dim: int
    obs_dim: int
    length: int
    peer: str  # "pykalman" or "dynamax"
    max_iters: int | None = None
    max_repeats: int | None = None


def _workloads() -> list[SSMWorkload]:
    out = []
    peers = [("pykalman", 3, 3)]
    if importlib.util.find_spec("dynamax") is not None:
        peers.append(("dynamax", None, None))
    for peer, iters, reps in peers:
        out.append(SSMWorkload(f"ssm-2x2-{peer}", 2, 2, 2000, peer, iters, reps))
        out.append(SSMWorkload(f"ssm-10x20-{peer}", 10, 20, 5000, peer, iters, reps))
    return out


WORKLOADS = _workloads()


# ---------------------------------------------------------------------- data
def _params(rng: np.random.Generator, n: int, p: int, scale: float) -> dict[str, np.ndarray]:
    A = rng.normal(size=(n, n))
    A *= scale / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n, n))
    S = rng.normal(size=(p, p))
    return {
        "transition": A,
        "observation": rng.normal(size=(p, n)),
        "transition_cov": B @ B.T / n + 0.5 * np.eye(n),
        "observation_cov": S @ S.T / p + 0.5 * np.eye(p),
        "initial_mean": np.zeros(n),
        "initial_cov": np.eye(n),
    }


def make_data(w: SSMWorkload, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A series sampled from a random stable model, and the common start."""
    rng = np.random.default_rng(seed)
    truth = _params(rng, w.state_dim, w.obs_dim, 0.9)
    n, p, T = w.state_dim, w.obs_dim, w.length
    Lq = np.linalg.cholesky(truth["transition_cov"])
    Lr = np.linalg.cholesky(truth["observation_cov"])
    X = np.empty((T, n))
    x = rng.normal(size=n)
    for t in range(T):
        x = truth["transition"] @ x + Lq @ rng.normal(size=n) if t else x
        X[t] = x
    Y = X @ truth["observation"].T + rng.normal(size=(T, p)) @ Lr.T
    start = _params(np.random.default_rng([seed, 1]), n, p, 0.5)
    return Y, start


# ---------------------------------------------------------------------- fitting
def fit_emkit(Y, start, iters):
    n, p = start["transition"].shape[0], Y.shape[1]
    zeros = {"transition_offset": np.zeros(n), "observation_offset": np.zeros(p)}
    model = emkit.LinearGaussianSSM(n, init=start, fixed=zeros, max_iter=iters, tol=0.0)
    with quiet(emkit.ConvergenceWarning):
        model.fit(Y)
    return {k: getattr(model, f"{k}_") for k in start}, model.n_iter_


def fit_pykalman(Y, start, iters):
    from pykalman import KalmanFilter

    n, p = start["transition"].shape[0], Y.shape[1]
    kf = KalmanFilter(
        transition_matrices=start["transition"],
        observation_matrices=start["observation"],
        transition_covariance=start["transition_cov"],
        observation_covariance=start["observation_cov"],
        transition_offsets=np.zeros(n),
        observation_offsets=np.zeros(p),
        initial_state_mean=start["initial_mean"],
        initial_state_covariance=start["initial_cov"],
    )
    em_vars = ["transition_matrices", "observation_matrices", "transition_covariance",
               "observation_covariance", "initial_state_mean", "initial_state_covariance"]  # fmt: skip
    kf = kf.em(Y, n_iter=iters, em_vars=em_vars)
    names = ["transition_matrices", "observation_matrices", "transition_covariance",
             "observation_covariance", "initial_state_mean", "initial_state_covariance"]  # fmt: skip
    return dict(zip(start, (np.asarray(getattr(kf, a)) for a in names))), iters


def dynamax_runner(Y, start, iters):
    """A function running ``iters`` dynamax EM steps from ``start``, compiled on first use."""
    os.environ.setdefault(
        "XLA_FLAGS",
        "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads="
        + os.environ.get("OMP_NUM_THREADS", "1"),
    )
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    import jax.numpy as jnp
    from dynamax.linear_gaussian_ssm import LinearGaussianSSM

    n, p = start["transition"].shape[0], Y.shape[1]
    model = LinearGaussianSSM(n, p, has_dynamics_bias=False, has_emissions_bias=False)
    params, props = model.initialize(
        initial_mean=jnp.asarray(start["initial_mean"]),
        initial_covariance=jnp.asarray(start["initial_cov"]),
        dynamics_weights=jnp.asarray(start["transition"]),
        dynamics_covariance=jnp.asarray(start["transition_cov"]),
        emission_weights=jnp.asarray(start["observation"]),
        emission_covariance=jnp.asarray(start["observation_cov"]),
    )
    emissions = jnp.asarray(Y)[None]

    def em_step(carry, _):
        params, state = carry
        stats, lls = jax.vmap(lambda y: model.e_step(params, y))(emissions)
        params, state = model.m_step(params, props, stats, state)
        return (params, state), lls.sum()

    @jax.jit
    def run_em(params):
        carry = (params, model.initialize_m_step_state(params, props))
        return jax.lax.scan(em_step, carry, xs=None, length=iters)[0][0]

    def fit():
        out = jax.block_until_ready(run_em(params))
        values = (out.dynamics.weights, out.emissions.weights, out.dynamics.cov,
                  out.emissions.cov, out.initial.mean, out.initial.cov)  # fmt: skip
        names = ("transition", "observation", "transition_cov", "observation_cov",
                 "initial_mean", "initial_cov")  # fmt: skip
        return dict(zip(names, (np.asarray(v) for v in values))), iters

    return fit


def score(Y, params) -> float:
    """emkit's log-likelihood of ``Y`` at ``params`` (zero offsets)."""
    n, p = params["transition"].shape[0], Y.shape[1]
    model = emkit.LinearGaussianSSM(n)
    for k, v in params.items():
        setattr(model, f"{k}_", np.asarray(v, dtype=np.float64))
    model.transition_offset_, model.observation_offset_ = np.zeros(n), np.zeros(p)
    model.n_features_in_ = p
    model.converged_, model.n_iter_, model.history_, model.loglik_ = True, 0, np.zeros(0), 0.0
    return model.score(Y)


# ---------------------------------------------------------------------- benchmark
def run(workload: SSMWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Time emkit and the peer on ``workload``, interleaved; return the result row."""
    w = replace(workload, length=max(int(workload.length * args.scale), 50))
    Y, start = make_data(w, args.seed)
    iters = min(args.iters, w.max_iters or args.iters)
    repeats = min(args.repeats, w.max_repeats or args.repeats)
    if w.peer == "pykalman":
        import pykalman

        peer = lambda: fit_pykalman(Y, start, iters)  # noqa: E731
        label = f"pykalman {getattr(pykalman, '__version__', '')}"
    else:
        import dynamax

        peer = dynamax_runner(Y, start, iters)
        label = f"dynamax {getattr(dynamax, '__version__', '')}"
    runners = {"emkit": lambda: fit_emkit(Y, start, iters), "peer": peer}
    fit_emkit(Y, start, 1)  # warm-up: Numba's cache
    if w.peer == "dynamax":
        peer()  # compilation
    times, fitted = time_interleaved(runners, repeats)
    (ours, n_ours), (theirs, n_theirs) = fitted["emkit"], fitted["peer"]
    return comparison_row(
        workload=w.name,
        peer=label.strip(),
        emkit_times=times["emkit"],
        peer_times=times["peer"],
        emkit_iters=n_ours,
        peer_iters=n_theirs,
        emkit_loglik=score(Y, ours),
        peer_loglik=score(Y, theirs),
        iters=iters,
        repeats=repeats,
        **{k: v for k, v in asdict(w).items() if k not in ("name", "peer")},
    )


if __name__ == "__main__":
    print([w.name for w in WORKLOADS])
