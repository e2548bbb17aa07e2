"""Where batches come from: in-memory arrays now; files and Dask collections plug in here."""

from emkit.data.sources import ArraySource, DataSource, as_source

__all__ = ["ArraySource", "DataSource", "as_source"]
