"""Estimators fitted to a data source (a table on disk or a Dask collection).

When ``fit`` is given a :class:`~emkit.data.TableSource` (``emkit.data.from_npy``,
``from_parquet``, ``from_csv``, ``from_dask``) or a Dask array or DataFrame, the data
are never loaded whole: the estimator computes what it needs from the whole data in
streaming passes (the column means it centres by), starts from the source's
``init_data()`` subsample, and hands the engine the source *mapped* by a per-batch
preparation (validation, centring, the batch form its model takes). The preparation
is a module-level function with its settings bound by ``functools.partial``, so a Dask
executor runs it on the workers.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from emkit._validation import check_array, drop_all_missing_rows
from emkit.data.dask_sources import from_dask
from emkit.data.sources import DataSource, is_dask_collection
from emkit.data.tables import TableSource

__all__ = [
    "centred_rows",
    "check_no_weights",
    "column_centre",
    "observed_mean",
    "prepared_rows",
    "table_source",
    "then",
    "unweighted",
]


def table_source(X: Any, batch_size: int | None = None) -> TableSource | None:
    """``X`` as a table source when it is one (or a Dask collection); None for arrays.

    Raises
    ------
    TypeError
        ``X`` is another kind of data source.
    """
    if is_dask_collection(X):
        return from_dask(X, batch_size=batch_size)
    if isinstance(X, TableSource):
        return X
    if isinstance(X, DataSource):
        raise TypeError(
            f"fit takes arrays or a table source (emkit.data.from_npy, from_parquet, "
            f"from_csv, from_dask), got {type(X).__name__}"
        )
    return None


def check_no_weights(sample_weight: Any) -> None:
    if sample_weight is not None:
        raise ValueError(
            "sample_weight cannot be given with a data source; weights would have to be "
            "a column of the source"
        )


def column_centre(source: TableSource) -> np.ndarray:
    """The column means of the source's observed values (a streaming pass)."""
    shift = source.column_mean()
    if np.isinf(shift).any():
        raise ValueError(
            f"Input X contains infinity (column(s) {np.flatnonzero(np.isinf(shift)).tolist()})"
        )
    empty = np.flatnonzero(np.isnan(shift))
    if empty.size:
        raise ValueError(
            f"column(s) {empty.tolist()} of the data have every value missing: they "
            "cannot be modelled; drop them"
        )
    return shift


def _prepare(block: np.ndarray, *, allow_nan: bool, all_missing: str, shift, dtype) -> np.ndarray:
    X = check_array(block, allow_nan=allow_nan, dtype=dtype)
    if allow_nan and np.isnan(X).any():
        keep = drop_all_missing_rows(X, None, all_missing, min_rows=0)
        X = X if keep.all() else X[keep]
    if shift is not None:
        X = np.subtract(X, shift, dtype=X.dtype, casting="unsafe")
    return X


def prepared_rows(
    *, allow_nan: bool, all_missing: str = "error", shift: Any = None, dtype: Any = None
):
    """A per-batch function: validated rows (NaN only if ``allow_nan``; rows with every
    value missing rejected or dropped as ``all_missing`` says), minus ``shift``."""
    return functools.partial(
        _prepare, allow_nan=allow_nan, all_missing=all_missing, shift=shift, dtype=dtype
    )


def then(first, second):
    """``second(first(batch))``, picklable."""
    return functools.partial(_compose, first, second)


def _compose(first, second, block):
    return second(first(block))


def unweighted(X: np.ndarray) -> tuple[np.ndarray, None]:
    """``(X, None)``: rows without sample weights, the batch form of most models."""
    return X, None


def observed_mean(X: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """The ``w``-weighted mean of every column over its observed (non-NaN) entries: the
    centre in-memory fits shift the data to, so their second moments do not cancel."""
    obs = ~np.isnan(X)
    W = obs * (1.0 if w is None else w[:, None])
    return (W * np.where(obs, X, 0.0)).sum(axis=0) / W.sum(axis=0)


def centred_rows(source: TableSource, sample_weight: Any, all_missing: str = "error"):
    """A source as batches ``(X - centre, None)`` of float64 rows (NaN allowed): the data
    of the latent-variable models. Returns (centre, mapped source, number of rows)."""
    check_no_weights(sample_weight)
    shift = column_centre(source)
    rows = prepared_rows(allow_nan=True, all_missing=all_missing, shift=shift, dtype=np.float64)
    return shift, source.map(then(rows, unweighted)), float(source.n_samples)
