"""Where batches come from: in-memory arrays and sets of sequences; files and Dask
collections plug in here."""

from emkit.data.sequences import SequenceSource
from emkit.data.sources import ArraySource, DataSource, as_source

__all__ = ["ArraySource", "DataSource", "SequenceSource", "as_source"]
