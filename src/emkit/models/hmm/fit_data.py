"""The data of an HMM fit: sequences in memory, or a source of whole sequences (a file
or a Dask collection) read in batches, each made into the emission part's prepared
data; used by :meth:`emkit.HMM.fit`."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from emkit._pytree import tree_map
from emkit._validation import check_array, check_gaussian_scale
from emkit.data.dask_sources import from_dask
from emkit.data.sequence_tables import SequenceTableSource, scan, sequence_table
from emkit.data.sequences import SequenceBatch, SequenceSource
from emkit.data.sources import DataSource, is_dask_collection
from emkit.data.tables import TableSource
from emkit.models.hmm.emissions import Emission
from emkit.models.hmm.input import as_sequences, infer_categories

__all__ = ["check_observed", "from_source", "in_memory", "sequence_source"]


def _symbols(block: np.ndarray) -> int:
    """The number of categorical symbols a batch of rows needs (validated)."""
    return infer_categories(check_array(block, allow_nan=True, dtype=np.float64))


def _prepared_batch(batch: SequenceBatch, *, part: Emission, spare: np.ndarray) -> SequenceBatch:
    """A batch of whole sequences validated and prepared as in-memory data are
    (``part.prepare``); a batch without any observation is prepared beside the
    ``spare`` observed row, which is then dropped."""
    X = check_array(batch.data, allow_nan=True, dtype=np.float64)
    if np.isnan(X).all(axis=1).all() and len(spare):
        data, _ = part.prepare(np.concatenate([X, spare]))
        data = tree_map(lambda a: None if a is None else a[: len(X)], data)
        return SequenceBatch((data, np.ones(len(X), dtype=bool)), batch.offsets)
    return SequenceBatch(part.prepare(X), batch.offsets)


def in_memory(est: Any, X: Any, lengths: Any) -> tuple[Emission, SequenceSource, int, int]:
    """The emission part and the prepared sequences of in-memory data."""
    X, offsets = as_sequences(X, lengths)
    part = est._emission_part(X)
    if est.emission in ("gaussian", "gmm"):
        check_gaussian_scale(X, est.reg_covar)
    data, missing = part.prepare(X)
    check_observed(est.n_states, len(X) if missing is None else np.count_nonzero(~missing))
    batches = None if est.variant == "online" else est.batch_size
    return part, SequenceSource((data, missing), offsets, batches), len(X), X.shape[1]


def check_observed(n_states: int, n_obs: int, where: str = "") -> None:
    """Refuse fewer observed rows than states (``where``: a phrase saying which rows)."""
    if n_obs < n_states:
        raise ValueError(
            f"n_states = {n_states} is larger than the number of observed rows ({n_obs}){where}"
        )


def sequence_source(X: Any, lengths: Any, batch_size: int | None) -> SequenceTableSource | None:
    """``X`` as a source of sequences when it is a source or a Dask collection;
    None for in-memory data."""
    if is_dask_collection(X):
        if lengths is None:
            raise ValueError(
                "a Dask collection needs lengths= (or use emkit.data.from_dask(..., "
                "lengths=... or sequence_column=...)): one sequence of the whole "
                "collection cannot be split into partitions"
            )
        return from_dask(X, lengths=lengths, sequences_per_batch=batch_size)
    if isinstance(X, SequenceTableSource):
        if lengths is not None:
            raise ValueError(
                "lengths cannot be given with a source of sequences: it has its own boundaries"
            )
        return X
    if isinstance(X, TableSource):
        if lengths is None:
            raise ValueError(
                f"a {type(X).__name__} holds rows, not sequences: give lengths= here or "
                "to the source (emkit.data.from_npy(path, lengths=...); sequence_column= "
                "for Parquet and CSV); lengths=[n_rows] for one sequence"
            )
        return sequence_table(X, lengths=lengths)
    if isinstance(X, DataSource):
        raise TypeError(
            "HMM.fit takes sequences in memory (an array with lengths, or a list of "
            "arrays), a source of sequences (emkit.data.from_npy / from_parquet / "
            "from_csv / from_dask with lengths= or sequence_column=), or a Dask "
            f"collection with lengths; got {type(X).__name__}"
        )
    return None


def from_source(est: Any, table: SequenceTableSource) -> tuple[Emission, Any, int, int]:
    """The emission part and the source of prepared batches for a source of sequences.

    What needs the whole data takes a streaming pass: the column means Gaussian
    data are centred at, the number of categorical symbols (unless given). Every
    batch is validated and prepared as in-memory data are, on the worker that
    reads it.
    """
    start = table.init_data()
    X0 = check_array(start.data, allow_nan=True, dtype=np.float64)
    shift = n_categories = None
    if est.emission in ("gaussian", "gmm"):
        check_gaussian_scale(X0, est.reg_covar)  # (on the start's sequences)
        shift = np.nan_to_num(np.asarray(table.column_mean(), dtype=np.float64))
    elif est.emission == "categorical" and est._categories_from_data():
        n_categories = max(scan(table.base, _symbols))
    part = est._emission_part(X0, shift=shift, n_categories=n_categories)
    observed = ~np.isnan(X0).all(axis=1)
    if not observed.any():
        part.prepare(X0)  # the error for data with no observation
    # rows for a batch whose observations are all missing to be prepared beside
    full = ~np.isnan(X0).any(axis=1)
    spare = X0[np.flatnonzero(full if full.any() else observed)[:1]]
    prepare = functools.partial(_prepared_batch, part=part, spare=spare)
    _, missing = prepare(start).data
    check_observed(
        est.n_states,
        len(X0) if missing is None else int(np.count_nonzero(~missing)),
        "" if len(X0) == table.n_observations else " in the sequences initialisation sees",
    )
    return part, table.map(prepare), table.n_observations, table.n_features
