"""Where batches come from: in-memory arrays, sets of sequences, tables on disk (``.npy``,
Parquet, CSV) read in row batches, and Dask collections."""

from emkit.data.convert import source_of
from emkit.data.dask_sources import DaskSource, from_dask
from emkit.data.sequences import SequenceSource
from emkit.data.sources import ArraySource, DataSource, as_source
from emkit.data.tables import (
    CsvSource,
    MappedSource,
    NpySource,
    ParquetSource,
    TableSource,
    from_csv,
    from_npy,
    from_parquet,
)

__all__ = [
    "ArraySource",
    "CsvSource",
    "DaskSource",
    "DataSource",
    "MappedSource",
    "NpySource",
    "ParquetSource",
    "SequenceSource",
    "TableSource",
    "as_source",
    "from_csv",
    "from_dask",
    "from_npy",
    "from_parquet",
    "source_of",
]
