"""A model-selection report: PNG figures and a JSON summary of a fitted Gaussian mixture.

:func:`write_report` writes four files into a folder:

``loglik.png``
    The chosen model's log-likelihood after each EM step (its ``history_``).
``criterion.png``
    The selection criterion against the number of components, one line per
    covariance type, with the chosen model marked.
``clusters.png``
    The data coloured by predicted component, with each component's mean and its 1-
    and 2-sigma ellipses. Data with more than two features are projected onto their
    first two principal axes ``P`` (means ``P^T mu``, covariances ``P^T C P``); one
    feature is shown as a histogram with the component densities.
``summary.json``
    The chosen model (K, covariance type, log-likelihood, BIC, AIC, iterations,
    convergence, weights, means, covariances) and every candidate row.

Plotting needs matplotlib (``pip install emkit[plot]``). It is imported only when a
report is written, and figures are drawn on matplotlib's Agg canvas directly, so
``pyplot`` and its global backend are never touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emkit.distributions.covariance import get_structure

__all__ = ["principal_axes", "require_matplotlib", "write_report"]

_INSTALL_HINT = "plotting needs matplotlib: pip install emkit[plot]"
_DPI = 110


def require_matplotlib() -> None:
    """Check that matplotlib can be imported.

    Raises
    ------
    ImportError
        matplotlib is missing; the message says how to install it.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None


def _new_figure(width: float = 6.4, height: float = 4.8) -> Any:
    """A matplotlib Figure attached to an Agg canvas (no pyplot, no global state)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png")


def _colour(k: int) -> Any:
    from matplotlib import colormaps

    return colormaps["tab10"](k % 10)


def write_report(
    out_dir: str | os.PathLike,
    X: np.ndarray,
    feature_names: Sequence[str],
    candidates: Sequence[Mapping[str, Any]],
    chosen: Any,
    criterion: str,
) -> list[Path]:
    """Write the figures and the JSON summary of a model selection into ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to write into; created (with its parents) if missing. Files of the
        same names are overwritten.
    X : ndarray of shape (n_samples, n_features)
        The data the models were fitted to.
    feature_names : sequence of str
        One name per column of ``X``.
    candidates : sequence of mappings
        One row per fitted candidate, with at least the keys ``n_components``,
        ``covariance_type`` and ``criterion`` (for example ``"bic"``), holding the
        value of the criterion; other keys (``loglik``, ``aic``, ...) are copied
        to ``summary.json``.
    chosen : GaussianMixture
        The selected fitted model.
    criterion : str
        Name of the selection criterion, a key of every candidate row ("bic", "aic",
        "icl").

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    """
    require_matplotlib()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(feature_names) != X.shape[1]:
        raise ValueError(
            f"feature_names has {len(feature_names)} names for data of shape {X.shape}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in ("loglik.png", "criterion.png", "clusters.png")]
    plot_loglik(chosen, paths[0])
    plot_criterion(candidates, chosen, criterion, paths[1])
    plot_clusters(X, feature_names, chosen, paths[2])
    summary = out / "summary.json"
    summary.write_text(
        json.dumps(summary_dict(X, feature_names, candidates, chosen, criterion), indent=2) + "\n",
        encoding="utf-8",
    )
    return [*paths, summary]


# ---------------------------------------------------------------------- summary
def _json_value(value: Any) -> Any:
    """Plain JSON types from NumPy scalars and arrays."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # a failed candidate's scores
    return value


def summary_dict(
    X: np.ndarray,
    feature_names: Sequence[str],
    candidates: Sequence[Mapping[str, Any]],
    chosen: Any,
    criterion: str,
) -> dict[str, Any]:
    """The content of ``summary.json`` (see :func:`write_report` for the arguments).

    Returns
    -------
    dict
        ``{"criterion", "n_samples", "feature_names", "chosen": {...}, "candidates": [...]}``;
        the chosen model's ``bic``, ``aic`` and ``icl`` are computed on ``X``.
    """
    model = {
        "n_components": int(chosen.n_components),
        "covariance_type": str(chosen.covariance_type),
        "loglik": float(chosen.loglik_),
        "bic": float(chosen.bic(X)),
        "aic": float(chosen.aic(X)),
        "icl": float(chosen.icl(X)),
        "n_iter": int(chosen.n_iter_),
        "converged": bool(chosen.converged_),
        "weights": chosen.weights_.tolist(),
        "means": chosen.means_.tolist(),
        "covariances": chosen.covariances_.tolist(),
    }
    rows = [{key: _json_value(value) for key, value in row.items()} for row in candidates]
    return {
        "criterion": criterion,
        "n_samples": len(X),
        "feature_names": list(feature_names),
        "chosen": model,
        "candidates": rows,
    }


# ---------------------------------------------------------------------- figures
def plot_loglik(model: Any, path: Path) -> None:
    """Log-likelihood of ``model`` after each EM step (``model.history_``)."""
    fig = _new_figure()
    ax = fig.add_subplot()
    history = np.asarray(model.history_, dtype=np.float64)
    ax.plot(np.arange(1, len(history) + 1), history, marker="o", markersize=3)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("log-likelihood")
    ax.set_title(
        f"Chosen model: K={model.n_components}, {model.covariance_type} "
        f"({'converged' if model.converged_ else 'not converged'})"
    )
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_criterion(
    candidates: Sequence[Mapping[str, Any]], chosen: Any, criterion: str, path: Path
) -> None:
    """The criterion against K, one line per covariance type; the chosen model starred."""
    fig = _new_figure()
    ax = fig.add_subplot()
    types = list(dict.fromkeys(row["covariance_type"] for row in candidates))
    for i, cov_type in enumerate(types):
        rows = sorted(
            (r for r in candidates if r["covariance_type"] == cov_type),
            key=lambda r: r["n_components"],
        )
        ks = [r["n_components"] for r in rows]
        ax.plot(
            ks,
            [r[criterion] for r in rows],
            marker="osD^v<>pPXhH8d"[i % 14],  # one symbol per structure, as mclust's plot
            color=_colour(i),
            label=cov_type,
            markerfacecolor="none" if i % 2 else None,
        )
    best = [
        r
        for r in candidates
        if r["n_components"] == chosen.n_components
        and r["covariance_type"] == chosen.covariance_type
    ]
    if best:
        ax.plot(
            best[0]["n_components"],
            best[0][criterion],
            marker="*",
            markersize=18,
            color="gold",
            markeredgecolor="black",
            linestyle="none",
            label="chosen",
            zorder=3,
        )
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(title="covariance", ncol=2 if len(types) > 6 else 1, fontsize="small")
    ax.grid(alpha=0.3)
    _save(fig, path)


def principal_axes(X: np.ndarray, n_axes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Centre and leading principal axes of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_axes : int, default 2

    Returns
    -------
    centre : ndarray of shape (n_features,)
        The mean of ``X``.
    P : ndarray of shape (n_features, n_axes)
        Orthonormal eigenvectors of the covariance of ``X`` with the largest
        eigenvalues, largest first; ``(X - centre) @ P`` are the principal scores.
    """
    centre = X.mean(axis=0)
    cov = np.atleast_2d(np.cov(X, rowvar=False))
    _, vectors = np.linalg.eigh(cov)
    return centre, vectors[:, ::-1][:, :n_axes]


def _projected(
    X: np.ndarray, feature_names: Sequence[str], model: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Data, means and (K, 2, 2) covariances in the plotting plane, and the axis labels."""
    K, D = model.means_.shape
    covs = get_structure(model.covariance_type).to_full(model.covariances_, K, D)
    if D == 2:
        return X, model.means_, covs, list(feature_names)
    centre, P = principal_axes(X)
    covs = np.einsum("di,kde,ej->kij", P, covs, P)
    return (X - centre) @ P, (model.means_ - centre) @ P, covs, ["PC1", "PC2"]


def _add_ellipses(ax: Any, mean: np.ndarray, cov: np.ndarray, colour: Any) -> None:
    """1- and 2-sigma ellipses of a 2-D Gaussian."""
    from matplotlib.patches import Ellipse

    values, vectors = np.linalg.eigh(0.5 * (cov + cov.T))
    values = np.maximum(values, 0.0)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    for n_sigma, style in ((1, "-"), (2, "--")):
        ax.add_patch(
            Ellipse(
                xy=mean,
                width=2 * n_sigma * np.sqrt(values[1]),
                height=2 * n_sigma * np.sqrt(values[0]),
                angle=angle,
                fill=False,
                edgecolor=colour,
                linestyle=style,
                linewidth=1.5,
            )
        )


def plot_clusters(X: np.ndarray, feature_names: Sequence[str], model: Any, path: Path) -> None:
    """Data coloured by predicted component, with 1- and 2-sigma ellipses per component.

    Rows with a missing value (NaN) have no place in the plane and are not drawn.
    """
    X = X[~np.isnan(X).any(axis=1)]
    labels = model.predict(X)
    fig = _new_figure(6.4, 5.6)
    ax = fig.add_subplot()
    if X.shape[1] == 1:
        _plot_clusters_1d(ax, X[:, 0], labels, model, feature_names[0])
    else:
        Z, means, covs, axis_names = _projected(X, feature_names, model)
        for k in range(model.n_components):
            colour = _colour(k)
            mask = labels == k
            ax.scatter(Z[mask, 0], Z[mask, 1], s=12, alpha=0.6, color=colour, label=f"{k}")
            _add_ellipses(ax, means[k], covs[k], colour)
            ax.plot(*means[k], marker="x", markersize=10, mew=2.5, color="black")
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
        ax.legend(title="component", fontsize="small", markerscale=1.5)
        if X.shape[1] > 2:
            ax.set_title("projection onto the first two principal axes")
    ax.grid(alpha=0.3)
    fig.suptitle(f"K={model.n_components}, {model.covariance_type} covariance")
    _save(fig, path)


def _plot_clusters_1d(ax: Any, x: np.ndarray, labels: np.ndarray, model: Any, name: str) -> None:
    """One feature: histogram coloured by component, with each weighted component density."""
    K = model.n_components
    bins = np.histogram_bin_edges(x, bins="auto")
    ax.hist(
        [x[labels == k] for k in range(K)],
        bins=bins,
        stacked=True,
        density=True,
        color=[_colour(k) for k in range(K)],
        alpha=0.5,
        label=[str(k) for k in range(K)],
    )
    grid = np.linspace(x.min(), x.max(), 400)
    variances = get_structure(model.covariance_type).to_full(model.covariances_, K, 1)[:, 0, 0]
    for k in range(K):
        sd = np.sqrt(variances[k])
        density = np.exp(-0.5 * ((grid - model.means_[k, 0]) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
        ax.plot(grid, model.weights_[k] * density, color=_colour(k), linewidth=2)
    ax.set_xlabel(name)
    ax.set_ylabel("density")
    ax.legend(title="component", fontsize="small")
