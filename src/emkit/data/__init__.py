"""Where batches come from: in-memory arrays, sets of sequences, tables on disk (``.npy``,
Parquet, CSV) read in row batches, Dask collections, and sequences stored in a table or
a Dask collection (``lengths=`` or ``sequence_column=``), read in batches of whole
sequences."""

from emkit.data.convert import source_of
from emkit.data.dask_sources import DaskSource, from_dask
from emkit.data.files import from_csv, from_npy, from_parquet
from emkit.data.sequence_tables import SequenceTableSource
from emkit.data.sequences import SequenceSource
from emkit.data.sources import ArraySource, DataSource, as_source
from emkit.data.tables import (
    CsvSource,
    MappedSource,
    NpySource,
    ParquetSource,
    TableSource,
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
    "SequenceTableSource",
    "TableSource",
    "as_source",
    "from_csv",
    "from_dask",
    "from_npy",
    "from_parquet",
    "source_of",
]
