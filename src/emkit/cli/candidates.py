"""Fitting the candidate models of ``emkit fit`` and choosing one by a criterion."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

__all__ = ["CRITERIA", "MODELS", "Candidate", "choose", "fit_candidate", "fit_candidates"]

#: the information criteria a candidate is scored by (attributes of :class:`Candidate`)
CRITERIA = ("bic", "aic", "icl")
#: ``--model`` names and the estimator class each one fits
MODELS = {"gmm": "GaussianMixture"}


@dataclass
@dataclass
class Candidate:
    """One fitted (K, covariance type) candidate and its scores on the data."""

    model: Any
    loglik: float
    bic: float
    aic: float
    icl: float
    notes: list[str] = field(default_factory=list)

    @property
    def n_components(self) -> int:
        return int(self.model.n_components)

    @property
    def covariance_type(self) -> str:
        return str(self.model.covariance_type)

    def row(self) -> dict[str, Any]:
        """The candidate as a JSON-ready dict (the rows of ``summary.json``)."""
        return {
            "n_components": self.n_components,
            "covariance_type": self.covariance_type,
            "loglik": self.loglik,
            "bic": self.bic,
            "aic": self.aic,
            "icl": self.icl,
            "n_iter": int(self.model.n_iter_),
            "converged": bool(self.model.converged_),
        }


def _estimator(name: str, **params: Any) -> Any:
    import emkit

    return getattr(emkit, MODELS[name])(**params)


def fit_candidate(X: np.ndarray, model_name: str, **params: Any) -> Candidate:
    """Fit one candidate, recording its warnings instead of printing them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    model_name : str
        A key of :data:`MODELS`.
    **params
        Hyper-parameters of the estimator.

    Returns
    -------
    Candidate
        Non-convergence shows in the candidate's ``converged``; other warnings
        (degenerate components, ...) are kept in ``notes``.
    """
    from emkit.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _estimator(model_name, **params).fit(X)
        scores = {"bic": model.bic(X), "aic": model.aic(X), "icl": model.icl(X)}
    notes = list(
        dict.fromkeys(
            str(w.message) for w in caught if not issubclass(w.category, ConvergenceWarning)
        )
    )
    return Candidate(
        model, float(model.loglik_), **{k: float(v) for k, v in scores.items()}, notes=notes
    )


def fit_candidates(
    X: np.ndarray,
    components: Sequence[int],
    covariances: Sequence[str],
    *,
    model_name: str = "gmm",
    progress: bool = True,
    **params: Any,
) -> list[Candidate]:
    """Fit every (K, covariance type) pair, with a progress bar on stderr.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    components : sequence of int
        Numbers of components to try; each must be <= ``n_samples``.
    covariances : sequence of str
        Covariance types to try.
    model_name : str, default "gmm"
    progress : bool, default True
        Show a tqdm bar over the candidates (only when stderr is a terminal).
    **params
        Other hyper-parameters, passed to every estimator.

    Returns
    -------
    list of Candidate
        In the order K-major, covariance type minor.
    """
    if max(components) > len(X):
        raise ValueError(
            f"the data have {len(X)} rows, fewer than the largest number of components "
            f"K = {max(components)}; choose smaller values with --components"
        )
    from tqdm.auto import tqdm

    grid = list(product(components, dict.fromkeys(covariances)))
    bar = tqdm(
        grid,
        desc="fitting",
        unit="model",
        file=sys.stderr,
        leave=False,
        disable=not progress or not sys.stderr.isatty(),
    )
    out = []
    with bar:
        for k, cov in bar:
            bar.set_postfix_str(f"K={k} {cov}")
            out.append(fit_candidate(X, model_name, n_components=k, covariance_type=cov, **params))
    return out


def choose(candidates: Sequence[Candidate], criterion: str) -> Candidate:
    """The candidate with the lowest ``criterion`` (the simplest one on ties)."""
    return min(candidates, key=lambda c: getattr(c, criterion))
