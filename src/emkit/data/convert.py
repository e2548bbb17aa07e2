"""Any data the engine takes, as a data source (arrays, sources, Dask collections)."""

from __future__ import annotations

from typing import Any

from emkit.data.sources import DataSource, as_source, is_dask_collection

__all__ = ["source_of"]


def source_of(data: Any, batch_size: int | None = None) -> DataSource:
    """:func:`~emkit.data.sources.as_source`, and a Dask array or DataFrame passed
    directly as :func:`emkit.data.from_dask` (with ``batch_size`` rows per partition).

    Examples
    --------
    >>> import numpy as np
    >>> source_of(np.zeros((4, 2)), batch_size=3).n_batches
    2
    """
    if is_dask_collection(data):
        from emkit.data.dask_sources import from_dask

        return from_dask(data, batch_size=batch_size)
    return as_source(data, batch_size)
