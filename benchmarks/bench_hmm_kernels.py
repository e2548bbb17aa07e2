"""emkit's HMM inference kernels against hmmlearn's C++ kernels (``--only hmm-kernels``).

One "iteration" is one inference pass over every sequence (no M-step, no emission
densities): what a Baum-Welch E-step spends in the recursions. Both sides get the
same per-state emission log-likelihoods ``log_frame`` (computed once, untimed).

emkit: ``forward_backward(log_frame, offsets, startprob, transmat)`` (log-likelihoods,
posteriors, expected transition and start counts of all sequences in one call; the
exponentiation of ``log_frame`` is included in its time) or ``viterbi``.

hmmlearn 0.3 (``hmmlearn._hmmc``), one sequence at a time as ``BaseHMM`` does, with
hmmlearn's own posterior and count code:

* ``scaling``: ``forward_scaling``, ``backward_scaling``, posteriors ``fwd * bwd``
  normalised per row, ``compute_scaling_xi_sum`` (sequences of length > 1), start
  counts. Its input is the emission probabilities, not their logarithms; what
  hmmlearn does to get them is in its time as in its ``_fit_scaling``: for the
  Gaussian workloads ``np.exp(log_frame)`` (``BaseHMM._compute_likelihood``), for the
  categorical ones nothing (``CategoricalHMM`` indexes its emission matrix, as emkit
  indexes the log of it, untimed on both sides);
* ``log``: ``forward_log``, ``backward_log``, posteriors by ``log_normalize`` and
  ``exp``, ``exp(compute_log_xi_sum)``: hmmlearn's default implementation;
* ``viterbi``: ``_hmmc.viterbi``.

Workloads (data sampled from a random HMM fixed by ``--seed``; ``--quick`` divides the
number of sequences by 10):

* ``hmmk-gauss-*``: K = 8 states, D = 4 diagonal Gaussian emissions, 100 sequences of
  length 1,000 (log_frame from the true parameters with the means shifted by noise);
* ``hmmk-cat-*``: K = 16 states, 32 symbols, 100 sequences of length 10,000.

``emkit s/iter`` / ``peer s/iter`` are seconds per pass; ``|dLL|/|LL|`` compares the
total log-likelihood (or, for Viterbi, the total best-path log-probability). emkit
runs on ``--threads`` Numba threads; hmmlearn's kernels are single-threaded.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from hmmlearn import _hmmc
from hmmlearn.utils import log_normalize

from _common import comparison_row, time_interleaved
from emkit.models.hmm.kernels import forward_backward, viterbi

__all__ = ["WORKLOADS", "KernelWorkload", "run"]

#: ``run.py`` matches this against ``--only`` to select every workload of the module
NAME = "hmm-kernels"


@dataclass(frozen=True)
class KernelWorkload:
    """One inference problem and the hmmlearn kernel it is compared with."""

    name: str
    emission: str  # "gauss" or "cat"
    kernel: str  # hmmlearn's: "scaling", "log" or "viterbi"
    n_states: int
    n_sequences: int
    length: int
    n_features: int = 4  # Gaussian dimension
    n_symbols: int = 32  # categorical alphabet


def _workloads() -> list[KernelWorkload]:
    sizes = {"gauss": (8, 100, 1000), "cat": (16, 100, 10_000)}
    return [
        KernelWorkload(f"hmmk-{emission}-{kernel}", emission, kernel, *sizes[emission])
        for emission in ("gauss", "cat")
        for kernel in ("log", "scaling", "viterbi")
    ]


WORKLOADS = _workloads()


# ---------------------------------------------------------------------- data
def _sample_states(rng, startprob, transmat, n_sequences, length) -> np.ndarray:
    """State paths of ``n_sequences`` sequences, stacked."""
    cumulative = np.cumsum(transmat, axis=1)
    states = np.empty((n_sequences, length), dtype=np.int64)
    states[:, 0] = rng.choice(len(startprob), size=n_sequences, p=startprob)
    uniform = rng.random((n_sequences, length))
    for t in range(1, length):
        row = cumulative[states[:, t - 1]]
        states[:, t] = np.minimum((uniform[:, t, None] > row).sum(axis=1), len(startprob) - 1)
    return states.ravel()


def make_problem(workload: KernelWorkload, scale: float, seed: int):
    """``(log_frame, offsets, startprob, transmat)`` of the workload (fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    K = workload.n_states
    n_sequences = max(int(workload.n_sequences * scale), 2)
    startprob = rng.dirichlet(np.ones(K))
    transmat = rng.dirichlet(np.ones(K), size=K) + 4 * np.eye(K)
    transmat /= transmat.sum(axis=1, keepdims=True)
    states = _sample_states(rng, startprob, transmat, n_sequences, workload.length)
    if workload.emission == "gauss":
        D = workload.n_features
        means = rng.normal(scale=2.0, size=(K, D))
        variances = rng.uniform(0.5, 2.0, size=(K, D))
        X = means[states] + rng.normal(size=(len(states), D)) * np.sqrt(variances[states])
        model_means = means + rng.normal(scale=0.3, size=means.shape)
        log_frame = -0.5 * (
            np.log(2 * np.pi * variances).sum(axis=1)
            + (((X[:, None, :] - model_means) ** 2) / variances).sum(axis=2)
        )
    else:
        emissionprob = rng.dirichlet(np.full(workload.n_symbols, 0.5), size=K)
        cumulative = np.cumsum(emissionprob, axis=1)
        symbols = np.minimum(
            (rng.random(len(states))[:, None] > cumulative[states]).sum(axis=1),
            workload.n_symbols - 1,
        )
        with np.errstate(divide="ignore"):
            log_frame = np.log(emissionprob[:, symbols].T)
    offsets = np.arange(n_sequences + 1, dtype=np.int64) * workload.length
    return np.ascontiguousarray(log_frame), offsets, startprob, transmat


# ---------------------------------------------------------------------- hmmlearn
def hmmlearn_scaling(frameprob, offsets, startprob, transmat):
    """hmmlearn's scaled E-step recursions (``implementation="scaling"``)."""
    K = len(startprob)
    loglik, trans, start, posteriors = 0.0, np.zeros((K, K)), np.zeros(K), []
    for t0, t1 in itertools.pairwise(offsets):
        frame = frameprob[t0:t1]
        logprob, fwd, scaling = _hmmc.forward_scaling(startprob, transmat, frame)
        bwd = _hmmc.backward_scaling(startprob, transmat, frame, scaling)
        post = fwd * bwd
        post /= post.sum(axis=1, keepdims=True)
        if t1 - t0 > 1:
            trans += _hmmc.compute_scaling_xi_sum(fwd, transmat, bwd, frame)
        start += post[0]
        posteriors.append(post)
        loglik += logprob
    return loglik, posteriors, trans, start


def hmmlearn_log(log_frame, offsets, startprob, transmat):
    """hmmlearn's log-space E-step recursions (``implementation="log"``, the default)."""
    K = len(startprob)
    loglik, trans, start, posteriors = 0.0, np.zeros((K, K)), np.zeros(K), []
    for t0, t1 in itertools.pairwise(offsets):
        frame = log_frame[t0:t1]
        logprob, fwd = _hmmc.forward_log(startprob, transmat, frame)
        bwd = _hmmc.backward_log(startprob, transmat, frame)
        log_gamma = fwd + bwd
        log_normalize(log_gamma, axis=1)
        with np.errstate(under="ignore"):
            post = np.exp(log_gamma)
            if t1 - t0 > 1:
                trans += np.exp(_hmmc.compute_log_xi_sum(fwd, transmat, bwd, frame))
        start += post[0]
        posteriors.append(post)
        loglik += logprob
    return loglik, posteriors, trans, start


def hmmlearn_viterbi(log_frame, offsets, startprob, transmat):
    """Total best-path log-probability by hmmlearn's Viterbi, one sequence at a time."""
    return sum(
        _hmmc.viterbi(startprob, transmat, log_frame[t0:t1])[0]
        for t0, t1 in itertools.pairwise(offsets)
    )


# ---------------------------------------------------------------------- benchmark
def run(workload: KernelWorkload, args: argparse.Namespace) -> dict[str, Any]:
    """Time one emkit pass against one hmmlearn pass, interleaved; return the result row."""
    log_frame, offsets, startprob, transmat = make_problem(workload, args.scale, args.seed)
    problem = (offsets, startprob, transmat)
    if workload.kernel == "viterbi":
        runners = {
            "emkit": lambda: float(viterbi(log_frame, *problem)[0].sum()),
            "hmmlearn": lambda: hmmlearn_viterbi(log_frame, *problem),
        }
    else:
        if workload.kernel == "scaling" and workload.emission == "gauss":
            peer = lambda: hmmlearn_scaling(np.exp(log_frame), *problem)[0]  # noqa: E731
        elif workload.kernel == "scaling":
            frameprob = np.exp(log_frame)
            peer = lambda: hmmlearn_scaling(frameprob, *problem)[0]  # noqa: E731
        else:
            peer = lambda: hmmlearn_log(log_frame, *problem)[0]  # noqa: E731
        runners = {
            "emkit": lambda: float(forward_backward(log_frame, *problem)[0].sum()),
            "hmmlearn": peer,
        }
    for runner in runners.values():  # warm-up (and Numba compilation or cache load)
        runner()
    times, value = time_interleaved(runners, args.repeats)
    return comparison_row(
        workload=workload.name,
        peer=f"hmmlearn {workload.kernel}",
        emkit_times=times["emkit"],
        peer_times=times["hmmlearn"],
        emkit_iters=1,  # one "iteration" = one inference pass over all sequences
        peer_iters=1,
        emkit_loglik=value["emkit"],
        peer_loglik=value["hmmlearn"],
        **{**asdict(workload), "n_sequences": len(offsets) - 1, "threads": args.threads},
    )
