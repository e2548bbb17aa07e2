"""Numba inference kernels for hidden Markov models.

All sequences of a data set are handled in one call: their per-state emission
log-likelihoods are stacked into one ``log_frame`` array of shape
``(T_total, K)`` and ``offsets`` marks the boundaries (sequence ``s`` is rows
``offsets[s]:offsets[s + 1]``). Three entry points:

* :func:`forward_backward`: per-sequence log-likelihoods, state posteriors and the
  expected transition and start counts (the E-step of Baum-Welch);
* :func:`forward_loglik`: the log-likelihoods alone (the forward pass);
* :func:`viterbi`: the most likely state path of every sequence.

The modules: ``smoothing`` (the two forward-backward entry points and their parallel
drivers), ``decoding`` (Viterbi), ``_scaled`` and ``_logspace`` (the per-sequence
recursions), ``_dense`` (the compiled small dense products they share) and
``_inputs`` (input checks and the split of the sequences into chunks).
Numerics
--------
Forward-backward is Rabiner's *scaled* recursion, not log-space: each row of
``log_frame`` is shifted by its maximum and exponentiated once, so every emission
factor ``b[t, k]`` lies in ``[0, 1]`` with a 1 in each row; the forward variables
are renormalised at every step and the normalisers ``c[t]`` carry the
log-likelihood::

    alpha_hat[t] = (alpha_hat[t-1] @ A) * b[t] / c[t]
    beta_hat[t]  = A @ (b[t+1] * beta_hat[t+1]) / c[t+1]
    log p(x)     = sum_t (log c[t] + max_k log_frame[t, k])
    gamma[t]     = alpha_hat[t] * beta_hat[t]      (renormalised per row)
    xi_t(i, j)   = alpha_hat[t, i] A[i, j] b[t+1, j] beta_hat[t+1, j] / c[t+1]

The expected transition counts are accumulated as ``sum_t alpha_hat[t, i] w[t+1, j]``
with ``w = b * beta_hat / c`` and multiplied by ``A`` elementwise once at the end, so
a zero transition probability gives an exact zero count. No logarithm is taken per
step: the normalisers are multiplied together and the product's logarithm is taken
when it gets small.

The scaled recursion cannot tell an impossible sequence from one whose normaliser
underflows (an observation hundreds of nats less likely in every reachable state
than in the best state), nor survive an overflow of ``beta_hat``. When a normaliser
falls below ``1e-280`` or a row of posteriors does not sum to about one, that
sequence alone is redone in log space (log-sum-exp recursions on ``log_frame``).
So a sequence gets log-likelihood ``-inf``, zero posteriors and no counts only when
every state path has probability zero, never NaN. A row of zeros in ``log_frame``
is a missing observation: it multiplies every state by one.

Viterbi works in log space (``log 0 = -inf``) and stores the ``delta`` lattice
instead of back-pointers: the forward sweep is a max-plus product without argmax,
and the back-tracking recomputes the one argmax per step it needs. Ties go to the
lower state index.

Speed
-----
Three things make these kernels several times faster than hmmlearn's C++ ones:

* the exponentials are a polynomial ``exp`` (within 2 ulp of libm's) in a loop
  that LLVM vectorises, made 64 rows at a time right before the forward recursion
  reads them (in cache, not a separate pass over memory);
* the ``K x K`` products keep their partial sums in registers, four lanes of an
  explicit 4 x float64 vector type at a time (LLVM will not vectorise these
  reductions itself without ``fastmath``, which stays off: every lane does the
  IEEE operations of scalar code in the same order, multiply-adds fused where the
  CPU has FMA);
* the backward pass runs in blocks of 64 rows, and a block's share of the
  transition counts is one ``(K, 64) x (64, K)`` product instead of 64 outer
  products added into memory.

Parallelism: sequences are split into a fixed number of chunks of about equal
numbers of rows (the split does not depend on the thread count) and the chunks run
in parallel (``prange``); every chunk keeps its own scratch and transition-count
accumulator, and the accumulators are summed in chunk order, so results do not
depend on ``numba.set_num_threads``. A single sequence runs on one thread.
"""

from emkit.models.hmm.kernels.decoding import viterbi
from emkit.models.hmm.kernels.smoothing import forward_backward, forward_loglik

__all__ = ["forward_backward", "forward_loglik", "viterbi"]
