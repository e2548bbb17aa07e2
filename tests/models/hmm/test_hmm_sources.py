"""HMM.fit on sources of sequences: files read in batches of whole sequences
(``lengths=`` or ``sequence_column=``), Dask collections whose partitions are whole
sequences, and a real ``distributed.LocalCluster`` of worker processes.

Every fit on a source is compared with the in-memory fit from the same
``random_state``: the statistics of the batches are summed in another order and the
data are centred at a streamed column mean, so the two agree to round-off (1e-10
relative). A cluster fit from a given start is also checked against hmmlearn, and a
worker process killed in the middle of a fit changes nothing.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pandas as pd
import pytest
from hmm_cases import categorical_data, fit_hmmlearn, gaussian_data, gaussian_start, rel
from scipy.special import logsumexp

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from distributed.core import Status  # noqa: E402
from hmmlearn import hmm as hl  # noqa: E402

import emkit  # noqa: E402
from emkit.data import (  # noqa: E402
    SequenceSource,
    SequenceTableSource,
    from_csv,
    from_dask,
    from_npy,
    from_parquet,
)

# the workers unpickle this module's model by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

RTOL = 1e-10
GAUSSIAN = ["startprob_", "transmat_", "means_", "covariances_"]
LENGTHS = (60, 150, 9, 110, 40, 81)  # 450 rows
pytestmark = pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")

# Run in every worker process as it starts, before it joins the scheduler: the HMM's
# kernels are loaded from Numba's on-disk cache, or compiled (seconds) on a fresh
# checkout whose cache is empty, so a worker only takes tasks once they are ready (the
# start-up of the module's cluster pays for it, not a test, nor a killed worker's
# replacement, which distributed would otherwise give up on while it compiles).
CLUSTER_PRELOAD = [
    """
import warnings
import numpy as np
import emkit
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    emkit.HMM(2, max_iter=1, random_state=0).fit(np.arange(8.0)[:, None] % 3, [4, 4])
"""
]


@pytest.fixture(scope="module")
def client(process_cluster):  # (tests/conftest.py)
    return process_cluster


@pytest.fixture(scope="module")
def data():
    """Gaussian sequences far from the origin, and the same with holes: single
    entries and whole rows missing (rows 150:160 of sequence 1)."""
    rng = np.random.default_rng(0)
    X, lengths, _, _ = gaussian_data(rng, lengths=LENGTHS)
    X = X + 5.0
    holes = X.copy()
    holes[rng.random(X.shape) < 0.1] = np.nan
    holes[150:160] = np.nan
    return X, holes, lengths


def assert_same_fit(fit, ref, names=GAUSSIAN):
    assert fit.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(fit.loglik_, ref.loglik_, rtol=RTOL)
    np.testing.assert_allclose(fit.history_, ref.history_, rtol=RTOL)
    for name in names:
        np.testing.assert_allclose(getattr(fit, name), getattr(ref, name), rtol=RTOL, atol=1e-12)


def write_tables(X, lengths, folder):
    """X as .npy, and as Parquet and CSV with a column of sequence ids (text)."""
    np.save(folder / "x.npy", X)
    ids = np.repeat([f"run-{i}" for i in range(len(lengths))], lengths)
    frame = pd.DataFrame({"a": X[:, 0], "seq": ids, "b": X[:, 1]})
    frame.to_parquet(folder / "x.parquet", row_group_size=70)  # groups cut sequences
    frame.to_csv(folder / "x.csv", index=False)
    return frame


# ---------------------------------------------------------------- files, in this process
@pytest.mark.parametrize("missing", [False, True])
def test_file_sources_of_sequences_equal_the_in_memory_fit(data, tmp_path, missing):
    X, holes, lengths = data
    X = holes if missing else X
    write_tables(X, lengths, tmp_path)
    kw = dict(n_states=3, covariance_type="full", tol=0.0, max_iter=5, random_state=0)
    ref = emkit.HMM(**kw).fit(X, lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    sources = [
        from_npy(tmp_path / "x.npy", lengths=lengths, batch_size=130),
        from_parquet(tmp_path / "x.parquet", sequence_column="seq", batch_size=100),
        from_csv(tmp_path / "x.csv", sequence_column="seq", batch_size=90),
    ]
    for src in sources:
        assert isinstance(src, SequenceTableSource)
        assert src.n_features == 2 and src.n_observations == len(X)
        # batches of whole sequences: their boundaries put back together are the data's
        starts, seen = 0, [0]
        for batch in src.batches():
            assert 1 < len(batch.offsets) and len(batch.data) == batch.offsets[-1]
            seen += (batch.offsets[1:] + starts).tolist()
            np.testing.assert_array_equal(batch.data, X[starts : starts + len(batch.data)])
            starts += len(batch.data)
        np.testing.assert_array_equal(seen, offsets)
        assert src.n_batches > 2
        assert_same_fit(emkit.HMM(**kw).fit(src), ref)


def test_categorical_and_poisson_sequences_from_a_file(tmp_path):
    rng = np.random.default_rng(1)
    S, lengths, _, K = categorical_data(rng)
    np.save(tmp_path / "s.npy", S)
    for emission, names in (("categorical", ["emissionprob_"]), ("poisson", ["rates_"])):
        kw = dict(emission=emission, tol=0.0, max_iter=5, random_state=0)
        ref = emkit.HMM(K, **kw).fit(S, lengths)
        fit = emkit.HMM(K, **kw).fit(from_npy(tmp_path / "s.npy", lengths=lengths, batch_size=60))
        assert_same_fit(fit, ref, ["startprob_", "transmat_", *names])
        if emission == "categorical":  # the symbols counted in a streaming pass
            assert fit.n_categories_ == ref.n_categories_ == 1 + int(S.max()) == 5


def test_a_batch_without_any_observation(data, tmp_path):
    X, _, lengths = data
    holes = X.copy()
    holes[219:329] = np.nan  # sequence 3, a batch of its own
    np.save(tmp_path / "h.npy", holes)
    src = from_npy(tmp_path / "h.npy", lengths=lengths, batch_size=110)
    assert any(np.isnan(b.data).all() for b in src.batches())
    kw = dict(n_states=3, tol=0.0, max_iter=4, random_state=0)
    assert_same_fit(emkit.HMM(**kw).fit(src), emkit.HMM(**kw).fit(holes, lengths))


def test_online_em_draws_whole_sequences_from_a_memory_map_or_dask(data, tmp_path):
    X, _, lengths = data
    np.save(tmp_path / "x.npy", X)
    kw = dict(n_states=3, tol=0.0, max_iter=3, random_state=0, variant="online", batch_size=2)
    ref = emkit.HMM(**kw).fit(X, lengths)
    assert_same_fit(emkit.HMM(**kw).fit(from_npy(tmp_path / "x.npy", lengths=lengths)), ref)
    src = from_dask(da.from_array(X, chunks=(X.shape[0], 2)), lengths=lengths)
    np.testing.assert_array_equal(src.take(np.array([3, 0])).data, np.vstack([X[219:329], X[:60]]))
    assert_same_fit(emkit.HMM(**kw).fit(src), ref)


def test_the_start_sees_a_systematic_sample_of_sequences(data, tmp_path):
    X, _, lengths = data
    np.save(tmp_path / "x.npy", X)
    src = from_npy(tmp_path / "x.npy", lengths=lengths, init_rows=200)
    # 450 rows > 200: every ceil(450 / 200) = 3rd sequence (0 and 3), each cut to its
    # first 200 // 2 = 100 rows
    start = src.init_data()
    np.testing.assert_array_equal(start.offsets, [0, 60, 160])
    np.testing.assert_array_equal(start.data, np.concatenate([X[:60], X[219:319]]))
    fit = emkit.HMM(3, tol=1e-6, max_iter=200, random_state=0).fit(src)
    # the generating means (hmm_cases.gaussian_data) are recovered
    truth = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 3.0]]) + 5.0
    order = [int(np.argmin(np.linalg.norm(fit.means_ - m, axis=1))) for m in truth]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(fit.means_[order], truth, atol=0.35)


# ---------------------------------------------------------------- Dask, local scheduler
def test_dask_collections_whose_partitions_are_whole_sequences(data):
    X, _, lengths = data
    kw = dict(n_states=3, tol=0.0, max_iter=4, random_state=0)
    ref = emkit.HMM(**kw).fit(X, lengths)
    aligned = (219, 40 + 110 + 81)  # sequences 0-2, then 3-5
    src = from_dask(da.from_array(X, chunks=(aligned, 2)), lengths=lengths)
    assert src.n_batches == 2
    assert_same_fit(emkit.HMM(**kw).fit(src), ref)
    # arbitrary chunks, re-chunked to 2 whole sequences per partition by batch_size
    fit = emkit.HMM(**kw, batch_size=2).fit(da.from_array(X, chunks=(100, 2)), lengths)
    assert_same_fit(fit, ref)
    frame = dd.from_pandas(write_frame(X, lengths), npartitions=3)
    src = from_dask(frame, sequence_column="seq", sequences_per_batch=4)
    np.testing.assert_array_equal(src.lengths, lengths)
    assert src.base.array.chunks[0] == (sum(lengths[:4]), sum(lengths[4:]))
    assert_same_fit(emkit.HMM(**kw).fit(src), ref)


def write_frame(X, lengths):
    ids = np.repeat(np.arange(len(lengths)) * 7, lengths)  # numeric ids
    return pd.DataFrame({"a": X[:, 0], "seq": ids, "b": X[:, 1]})


# ---------------------------------------------------------------- a user's model
class SequenceClusters:
    """A user's model of whole sequences: each sequence belongs to one of two clusters,
    and all its rows are Normal(means[c], I). The E-step needs whole sequences."""

    def init_params(self, batch, rng):
        X, offsets = batch
        first = X[offsets[:-1]]
        return np.array([0.5, 0.5]), first[[0, -1]].copy()

    def estep(self, params, batch):
        weights, means = params
        X, offsets = batch
        D = X.shape[1]
        row = -0.5 * ((X[:, None, :] - means) ** 2).sum(axis=2) - 0.5 * D * np.log(2 * np.pi)
        per_seq = np.add.reduceat(row, offsets[:-1], axis=0) + np.log(weights)
        norm = logsumexp(per_seq, axis=1)
        resp = np.exp(per_seq - norm[:, None])
        sums = np.add.reduceat(X, offsets[:-1], axis=0)
        counts = np.diff(offsets).astype(float)
        return (resp.sum(axis=0), resp.T @ sums, resp.T @ counts), float(norm.sum())

    def mstep(self, stats, params):
        n, sums, counts = stats
        return n / n.sum(), sums / counts[:, None]


def brute_loglik(params, X, lengths):
    """The user's model's log-likelihood, sequence by sequence with scipy."""
    from scipy.stats import multivariate_normal

    weights, means = params
    total, start = 0.0, 0
    for T in lengths:
        rows = X[start : start + T]
        start += T
        per = [
            np.log(w) + multivariate_normal(m, np.eye(len(m))).logpdf(rows).sum()
            for w, m in zip(weights, means)
        ]
        total += logsumexp(per)
    return total


def test_a_users_model_of_whole_sequences_through_em(data, tmp_path):
    X, _, lengths = data
    np.save(tmp_path / "x.npy", X)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    options = dict(tol=None, max_iter=4, random_state=0)
    ref = emkit.em(SequenceClusters(), SequenceSource(X, offsets), **options)
    src = from_npy(tmp_path / "x.npy", lengths=lengths, batch_size=100)
    result = emkit.em(SequenceClusters(), src, **options)
    np.testing.assert_allclose(result.history, ref.history, rtol=RTOL)
    for a, b in zip(result.params, ref.params):
        np.testing.assert_allclose(a, b, rtol=RTOL)
    # the log-likelihood at the fitted parameters is the model's, sequence by sequence
    assert rel(result.loglik, brute_loglik(result.params, X, lengths)) < 1e-12


# ---------------------------------------------------------------- bad input
def test_bad_sequences_are_refused_with_the_reason(data, tmp_path):
    X, _, lengths = data
    frame = write_tables(X, lengths, tmp_path)
    darr = da.from_array(X, chunks=(100, 2))
    with pytest.raises(ValueError, match=r"row 100 falls inside sequence 1 \(rows 60 to 210\)"):
        from_dask(darr, lengths=lengths)
    with pytest.raises(ValueError, match="falls inside sequence 1"):
        emkit.HMM(2).fit(darr, lengths)
    with pytest.raises(ValueError, match="needs lengths"):
        emkit.HMM(2).fit(darr)
    with pytest.raises(ValueError, match="lengths add up to 449 but the table has 450 rows"):
        from_npy(tmp_path / "x.npy", lengths=[*lengths[:-1], 80])
    with pytest.raises(ValueError, match="add up to 451 but the Dask collection has 450"):
        from_dask(darr, lengths=[*lengths[:-1], 82], batch_size=100)
    with pytest.raises(ValueError, match="at least 1 observation"):
        from_npy(tmp_path / "x.npy", lengths=[0, *lengths])
    with pytest.raises(TypeError, match="lengths must be integers"):
        from_npy(tmp_path / "x.npy", lengths=[59.5, *lengths[1:]])
    shuffled = pd.concat([frame.iloc[:30], frame.iloc[60:], frame.iloc[30:60]])
    shuffled.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ValueError, match="'run-0' of column 'seq' appears again at row 420"):
        from_csv(tmp_path / "s.csv", sequence_column="seq")
    gap = frame.assign(seq=frame.seq.where(frame.index != 77))
    gap.to_parquet(tmp_path / "g.parquet")
    with pytest.raises(ValueError, match="missing id at row 77"):
        from_parquet(tmp_path / "g.parquet", sequence_column="seq")
    with pytest.raises(ValueError, match="not both"):
        from_parquet(tmp_path / "x.parquet", lengths=lengths, sequence_column="seq")
    with pytest.raises(ValueError, match="also in columns"):
        from_csv(tmp_path / "x.csv", ["a", "seq"], sequence_column="seq")
    with pytest.raises(ValueError, match="not in"):
        from_csv(tmp_path / "x.csv", sequence_column="run")
    with pytest.raises(TypeError, match="needs a Dask DataFrame"):
        from_dask(darr, sequence_column="seq")
    with pytest.raises(ValueError, match="holds rows, not sequences"):
        emkit.HMM(2).fit(from_npy(tmp_path / "x.npy"))
    with pytest.raises(ValueError, match="has its own boundaries"):
        emkit.HMM(2).fit(from_npy(tmp_path / "x.npy", lengths=lengths), lengths)
    with pytest.raises(TypeError, match=r"HMM\.fit takes"):
        emkit.HMM(2).fit(emkit.data.ArraySource(X))
    with pytest.raises(TypeError, match="cannot be drawn as shuffled mini-batches"):
        emkit.HMM(2, variant="online", batch_size=2).fit(
            from_csv(tmp_path / "x.csv", sequence_column="seq")
        )
    # a table source given with lengths is cut at them (the fit runs)
    fit = emkit.HMM(2, max_iter=1).fit(from_npy(tmp_path / "x.npy", batch_size=7), lengths)
    assert fit.n_features_in_ == 2


# ---------------------------------------------------------------- a process cluster
def test_hmm_on_a_process_cluster_equals_the_in_memory_fit(client, data, tmp_path):
    X, holes, lengths = data
    write_tables(holes, lengths, tmp_path)
    kw = dict(n_states=3, tol=0.0, max_iter=5, random_state=0)
    ref = emkit.HMM(**kw).fit(X, lengths)
    # partitions of whole sequences, made by Dask and persisted on the workers
    darr = da.from_array(X, chunks=((219, 231), 2))
    assert_same_fit(emkit.HMM(**kw, executor=client).fit(from_dask(darr, lengths=lengths)), ref)
    # a Dask array passed directly: it runs on the current client
    assert_same_fit(emkit.HMM(**kw, batch_size=2).fit(darr, lengths), ref)
    # in-memory sequences, two whole sequences a partition
    assert_same_fit(emkit.HMM(**kw, executor=client, batch_size=2).fit(X, lengths), ref)
    # a file whose sequences each worker reads for itself, with missing values
    kw["covariance_type"] = "full"
    ref = emkit.HMM(**kw).fit(holes, lengths)
    src = from_parquet(tmp_path / "x.parquet", sequence_column="seq", batch_size=120)
    assert_same_fit(emkit.HMM(**kw, executor=client).fit(src), ref)


def test_a_cluster_fit_from_a_given_start_equals_hmmlearns(client, data):
    X, _, lengths = data
    rng = np.random.default_rng(3)
    start = gaussian_start(rng, X, 3, "diag")
    peer = hl.GaussianHMM(3, covariance_type="diag", covars_prior=0.0, covars_weight=1)
    peer = fit_hmmlearn(
        peer, start, X, lengths, 10, means_=start["means"], covars_=start["covariances"]
    )
    darr = da.from_array(X, chunks=((60, 159, 231), 2))
    ours = emkit.HMM(3, reg_covar=0.0, init=start, max_iter=10, tol=None, executor=client)
    ours.fit(from_dask(darr, lengths=lengths))
    assert ours.n_iter_ == peer.monitor_.iter == 10
    assert rel(ours.loglik_, peer.score(X, lengths)) < 1e-12
    np.testing.assert_allclose(ours.means_, peer.means_, atol=1e-10)
    np.testing.assert_allclose(ours.covariances_, peer._covars_, atol=1e-10)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-10)


def test_a_users_model_of_whole_sequences_on_the_cluster(client, data, tmp_path):
    X, _, lengths = data
    np.save(tmp_path / "x.npy", X)
    options = dict(tol=None, max_iter=4, random_state=0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ref = emkit.em(SequenceClusters(), SequenceSource(X, offsets), **options)
    src = from_npy(tmp_path / "x.npy", lengths=lengths, batch_size=100)
    result = emkit.em(SequenceClusters(), src, executor=client, **options)
    np.testing.assert_allclose(result.history, ref.history, rtol=RTOL)
    for a, b in zip(result.params, ref.params):
        np.testing.assert_allclose(a, b, rtol=RTOL)


def test_a_worker_killed_mid_fit_changes_nothing(client, data, monkeypatch):
    X, _, lengths = data
    kw = dict(n_states=3, tol=0.0, max_iter=6, random_state=0)
    ref = emkit.HMM(**kw).fit(X, lengths)
    killed = []

    def kill_a_worker(info):
        if info.iteration == 2 and not killed:
            pids = client.run(os.getpid)
            victim = sorted(pids)[0]
            # Its nanny is told not to start another worker: the fit does not need one,
            # and a new one would take seconds compiling the kernels before it joins
            # (which closing the cluster would wait for).
            for nanny in client.cluster.workers.values():
                if nanny.worker_address == victim:
                    nanny.status = Status.closing_gracefully
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

    # the estimator has no callback: the engine it calls gets one
    em = emkit.engine.em
    monkeypatch.setattr(
        emkit.engine, "em", lambda *a, **k: em(*a, **{**k, "callback": kill_a_worker})
    )
    darr = da.from_array(X, chunks=((60, 159, 150, 81), 2))
    fit = emkit.HMM(**kw, executor=client).fit(from_dask(darr, lengths=lengths))
    assert killed and len(client.scheduler_info()["workers"]) == 1
    assert_same_fit(fit, ref)
