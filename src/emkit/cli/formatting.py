"""Plain-text output of the command line: the candidate table, model descriptions, CSV.

Nothing here branches on a covariance structure's name: how a mixture's covariances
are printed (per component or one shared matrix, and what they are called) is asked of
the structure (:func:`emkit.distributions.covariance.get_structure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from emkit.cli.candidates import Candidate
from emkit.distributions.covariance import get_structure

__all__ = ["format_candidates", "format_mixture", "format_model", "write_predictions"]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = ()) -> str:
    """A plain-text table, right-aligned except the columns in ``left``."""
    widths = [max(len(r[j]) for r in (header, *rows)) for j in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join(line(r) for r in (header, *rows))


def format_candidates(candidates: Sequence[Candidate], chosen: Candidate, criterion: str) -> str:
    """Table of every candidate, the chosen one marked with ``*``."""
    header = ["", "K", "covariance", "log-lik", "BIC", "AIC", "ICL", "iter", "converged"]
    rows = [
        [
            "*" if c is chosen else "",
            str(c.n_components),
            c.covariance_type,
            f"{c.loglik:.2f}",
            f"{c.bic:.2f}",
            f"{c.aic:.2f}",
            f"{c.icl:.2f}",
            str(c.n_iter),
            ("yes" if c.converged else "no") if c.ok else "failed",
        ]
        for c in candidates
    ]
    note = f"* chosen: lowest {criterion.upper()}"
    return _table(header, rows, left=(0, 2)) + "\n" + note


def _array(values: Any, indent: int) -> str:
    """A compact array string whose continuation lines are indented by ``indent``."""
    with np.printoptions(precision=4, suppress=False, threshold=50, edgeitems=3):
        return np.array2string(np.asarray(values), separator=", ", prefix=" " * indent)


def format_mixture(model: Any, feature_names: Sequence[str] | None = None) -> str:
    """Weights, means and covariances of a fitted mixture, one block per component.

    A covariance shared by every component (tied) is printed once, after the blocks.
    """
    K, D = model.means_.shape
    names = list(feature_names) if feature_names else [f"x{j}" for j in range(D)]
    structure = get_structure(model.covariance_type)
    label = structure.label  # "covariance", "variances", "variance", ...
    lines = [f"features: {', '.join(names)}"]
    for k in range(K):
        lines.append(f"component {k}: weight {model.weights_[k]:.4f}")
        lines.append(f"  mean        {_array(model.means_[k], 14)}")
        if not structure.shared:
            lines.append(f"  {label:<11} {_array(model.covariances_[k], 14)}")
    if structure.shared:
        prefix = f"shared {label}  "
        lines.append(prefix + _array(model.covariances_, len(prefix)))
    return "\n".join(lines)


def _describe_attribute(name: str, value: Any, width: int) -> list[str]:
    """Lines describing one fitted attribute (arrays compactly, histories summarised)."""
    if name == "history_":
        history = np.asarray(value)
        text = f"{history.size} values"
        if history.size:
            text += f", from {history[0]:.6g} to {history[-1]:.6g}"
    elif isinstance(value, np.ndarray):
        return [f"  {name} (shape {value.shape}):", f"    {_array(value, 4)}"]
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return [f"  {name:<{width}}  {text}"]


def format_model(model: Any) -> str:
    """Class, hyper-parameters and fitted attributes of any fitted emkit estimator."""
    params = model.get_params()
    width = max(map(len, [*params, *model._fitted_attributes]), default=0)
    lines = [type(model).__name__]
    names = getattr(model, "feature_names_in_", None)
    names = None if names is None else [str(name) for name in names]
    if names is not None:
        lines.append(f"features: {', '.join(names)}")
    elif getattr(model, "n_features_in_", None) is not None:
        lines.append(f"features: {model.n_features_in_} (fitted without names)")
    lines.append("hyper-parameters:")
    lines += [f"  {name:<{width}}  {value!r}" for name, value in params.items()]
    mixture = all(hasattr(model, a) for a in ("weights_", "means_", "covariances_"))
    # A mixture's parameters are printed per component below (precisions follow from them).
    skip = {"weights_", "means_", "covariances_", "precisions_cholesky_"} if mixture else set()
    lines.append("fitted:")
    for name in model._fitted_attributes:
        if name not in skip:
            lines += _describe_attribute(name, getattr(model, name), width)
    if mixture:
        lines.append("parameters:")
        # without its first line, "features: ...", printed above
        lines += ["  " + line for line in format_mixture(model).splitlines()[1:]]
    return "\n".join(lines)


def write_predictions(fh: TextIO, proba: np.ndarray, kept: np.ndarray | None = None) -> None:
    """Write ``label,prob_0,...`` rows (label = most probable component) to ``fh``.

    With ``kept`` (a boolean mask over the input rows, as many True as ``proba`` has
    rows), a row that is not kept is written with empty fields, so that the output's
    rows stay aligned with the input's.
    """
    K = proba.shape[1]
    labels = proba.argmax(axis=1)
    fh.write(",".join(["label"] + [f"prob_{k}" for k in range(K)]) + "\n")
    lines = (
        f"{label}," + ",".join(f"{p:.10g}" for p in row) + "\n" for label, row in zip(labels, proba)
    )
    if kept is None:
        fh.writelines(lines)
        return
    empty = "," * K + "\n"
    fh.writelines(next(lines) if keep else empty for keep in kept)
