"""Input checks of the HMM kernels and the split of the sequences into chunks.

The kernels take all sequences stacked in one ``log_frame`` with their ``offsets``;
these helpers validate that layout, split the sequences into chunks that run in
parallel, and prepare the parameters every kernel reads.
"""

from __future__ import annotations

import numba
import numpy as np

from emkit._simd import _JIT

#: Upper bound on the number of chunks the sequences are split into.
_MAX_CHUNKS = 64


def _check_inputs(
    log_frame: np.ndarray, offsets: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shapes, dtypes and sequence boundaries, as contiguous float64 / int64 arrays."""
    log_frame = np.ascontiguousarray(log_frame, dtype=np.float64)
    if log_frame.ndim != 2:
        raise ValueError(f"log_frame must be 2-D (T_total, K), got shape {log_frame.shape}")
    n_rows, n_states = log_frame.shape
    if n_states < 1:
        raise ValueError("log_frame must have at least one column (state)")
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or offsets.shape[0] < 2:
        raise ValueError(f"offsets must be 1-D of length S + 1 >= 2, got shape {offsets.shape}")
    if not np.issubdtype(offsets.dtype, np.integer):
        raise TypeError(f"offsets must be integers, got dtype {offsets.dtype}")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets[0] != 0 or offsets[-1] != n_rows:
        raise ValueError(
            f"offsets must start at 0 and end at T_total = {n_rows}, "
            f"got {offsets[0]} and {offsets[-1]}"
        )
    if np.any(np.diff(offsets) < 1):
        raise ValueError("every sequence must have at least one row (offsets strictly increasing)")
    startprob = np.ascontiguousarray(startprob, dtype=np.float64)
    transmat = np.ascontiguousarray(transmat, dtype=np.float64)
    if startprob.shape != (n_states,):
        raise ValueError(f"startprob must have shape ({n_states},), got {startprob.shape}")
    if transmat.shape != (n_states, n_states):
        raise ValueError(f"transmat must have shape ({n_states}, {n_states}), got {transmat.shape}")
    for name, value in (("startprob", startprob), ("transmat", transmat)):
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise ValueError(f"{name} must hold finite non-negative probabilities")
    return log_frame, offsets, startprob, transmat


def _chunk_bounds(offsets: np.ndarray) -> np.ndarray:
    """Sequence indices that split the sequences into chunks of about equal row counts.

    Depends on ``offsets`` only (never on the thread count), so the order in which
    transition counts are summed, and hence the result, is fixed.
    """
    n_seq = offsets.shape[0] - 1
    if n_seq <= _MAX_CHUNKS:
        return np.arange(n_seq + 1, dtype=np.int64)  # a chunk per sequence
    n_chunks = _MAX_CHUNKS
    targets = offsets[-1] * np.arange(1, n_chunks) / n_chunks
    inner = np.searchsorted(offsets, targets, side="right")
    return np.unique(np.concatenate(([0], np.clip(inner, 0, n_seq), [n_seq]))).astype(np.int64)


def _log_params(startprob: np.ndarray, transmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logarithms of the parameters, ``log 0 = -inf``."""
    with np.errstate(divide="ignore"):
        return np.log(startprob), np.log(transmat)


def _kernel_params(startprob: np.ndarray, transmat: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(startprob, transmat, transmat.T, log startprob, log transmat)``, contiguous."""
    log_start, log_trans = _log_params(startprob, transmat)
    return startprob, transmat, np.ascontiguousarray(transmat.T), log_start, log_trans


def _raise_if_bad(bad: np.ndarray) -> None:
    if bad.any():
        raise ValueError("log_frame must not contain NaN or +inf")


@numba.njit(**_JIT)
def _longest(offsets, bounds, ch):  # pragma: no cover - compiled
    """Length of the longest sequence of chunk ``ch`` (the size of its scratch)."""
    longest = 0
    for s in range(bounds[ch], bounds[ch + 1]):
        longest = max(longest, offsets[s + 1] - offsets[s])
    return longest
