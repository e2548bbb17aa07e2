"""What :class:`emkit.HMM` accepts as sequences: one array of all rows with their
``lengths``, or a list of arrays (one per sequence); and the number of symbols of
categorical data."""

from __future__ import annotations

from typing import Any

import numpy as np

from emkit._validation import check_array
from emkit.data.sequences import offsets_from_lengths

__all__ = ["as_sequences", "infer_categories"]


def as_sequences(X: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) float array of all rows and the sequence offsets, from either input form."""
    if (
        isinstance(X, (list, tuple))
        and X
        and all(isinstance(s, np.ndarray) or np.ndim(s) == 2 for s in X)
    ):
        if lengths is not None:
            raise ValueError("give either a list of sequences or X with lengths, not both")
        seqs = []
        for i, s in enumerate(X):
            arr = np.asarray(s)
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2:
                raise ValueError(
                    f"sequence {i} must be 1-D (one feature) or 2-D (T_i, n_features), "
                    f"got shape {arr.shape}"
                )
            if len(arr) < 1:
                raise ValueError(f"sequence {i} is empty; every sequence needs at least 1 row")
            seqs.append(check_array(arr, name=f"sequence {i}", allow_nan=True, dtype=np.float64))
        widths = {s.shape[1] for s in seqs}
        if len(widths) != 1:
            raise ValueError(f"all sequences must have the same number of features, got {widths}")
        lengths = [len(s) for s in seqs]
        X = np.concatenate(seqs) if len(seqs) > 1 else seqs[0]
    else:
        X = check_array(X, allow_nan=True, dtype=np.float64)
        if lengths is None:
            lengths = [len(X)]
    return np.ascontiguousarray(X), offsets_from_lengths(lengths, len(X))


#: the largest number of symbols inferred from the data; above it ``n_categories`` must
#: be given (a stray huge symbol would otherwise size tables by it)
MAX_INFERRED_CATEGORIES = 65_536


def infer_categories(X: np.ndarray) -> int:
    """Largest symbol in ``X`` plus one (1 when there is none), for symbols in a sane
    range: a negative, non-integer or very large symbol is a ``ValueError`` that says
    which and what to do."""
    seen = X[~np.isnan(X)]
    if seen.size == 0:
        return 1
    bad = seen[(seen < 0) | (seen != np.round(seen)) | ~np.isfinite(seen)]
    if bad.size:
        raise ValueError(f"categorical symbols must be integers 0, 1, 2, ...; got {bad[0]:.6g}")
    top = float(seen.max())
    if top >= MAX_INFERRED_CATEGORIES:
        raise ValueError(
            f"the largest symbol is {top:.6g}: categorical HMMs infer at most "
            f"{MAX_INFERRED_CATEGORIES} categories from the data; pass n_categories= if "
            "that many are meant, or recode the symbols as 0 .. n_categories - 1"
        )
    return int(top) + 1
