"""The candidate models of ``emkit fit``: a call to :func:`emkit.select`, whose
:class:`~emkit.selection.Candidate` rows the command prints and reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from emkit.selection import Candidate, Selection, select

__all__ = ["CRITERIA", "MODELS", "Candidate", "choose", "fit_candidates"]

#: the information criteria a candidate is scored by (attributes of :class:`Candidate`)
CRITERIA = ("bic", "aic", "icl")
#: ``--model`` names and the estimator class each one fits
MODELS = {"gmm": "GaussianMixture"}


def fit_candidates(
    X: np.ndarray,
    components: Sequence[int],
    covariances: Sequence[str],
    *,
    model_name: str = "gmm",
    criterion: str = "bic",
    progress: bool = True,
    **params: Any,
) -> Selection:
    """Fit every (K, covariance type) pair by :func:`emkit.select`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    components : sequence of int
        Numbers of components to try; each must be <= ``n_samples``.
    covariances : sequence of str
        Covariance types to try.
    model_name : str, default "gmm"
        A key of :data:`MODELS`.
    criterion : str, default "bic"
    progress : bool, default True
        Show a progress bar over the candidates (only when stderr is a terminal).
    **params
        Other hyper-parameters (``init``, ``n_init``, ``tol``, ...), passed to every
        estimator.

    Returns
    -------
    Selection
        ``candidates`` in the order K-major, covariance type minor.
    """
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose from {', '.join(MODELS)}")
    if max(components) > len(X):
        raise ValueError(
            f"the data have {len(X)} rows, fewer than the largest number of components "
            f"K = {max(components)}; choose smaller values with --components"
        )
    return select(X, components, list(covariances), criterion, progress=progress, **params)


def choose(candidates: Sequence[Candidate], criterion: str) -> Candidate:
    """The fitted candidate with the lowest ``criterion`` (the simplest one on ties)."""
    return min((c for c in candidates if c.ok), key=lambda c: getattr(c, criterion))
