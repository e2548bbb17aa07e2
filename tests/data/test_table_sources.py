"""Out-of-core data sources: ``.npy``, Parquet, CSV and Dask collections.

The reference for every fit on a source is the in-memory fit of the same rows from the
same start (with no more rows than ``init_rows``, the source's initialisation subsample
is the whole table, so k-means++ sees the same points).
"""

from __future__ import annotations

import tracemalloc
import warnings

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import emkit
from emkit.data import from_csv, from_dask, from_npy, from_parquet

RTOL = 1e-10


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    X = np.vstack(
        [
            rng.normal([-1.0, 0.0, 2.0], 1.0, (700, 3)),
            rng.normal([1.5, 1.0, 0.0], 0.7, (500, 3)),
        ]
    )
    return X[rng.permutation(len(X))] + 50.0  # off the origin: centring matters


@pytest.fixture(scope="module")
def files(table, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    frame = pd.DataFrame(table, columns=["a", "b", "c"])
    np.save(folder / "x.npy", table)
    frame.to_parquet(folder / "x.parquet", row_group_size=250)
    parts = folder / "parts"
    parts.mkdir()
    for i, lo in enumerate(range(0, len(table), 400)):  # a folder of three files
        frame.iloc[lo : lo + 400].to_parquet(parts / f"part-{i}.parquet", row_group_size=150)
    frame.assign(label="x").to_csv(folder / "x.csv", index=False)
    return folder


def sources(folder, table, batch_size):
    return {
        "npy": from_npy(folder / "x.npy", batch_size=batch_size),
        "parquet": from_parquet(folder / "x.parquet", batch_size=batch_size),
        "parquet-folder": from_parquet(folder / "parts", ["a", "b", "c"], batch_size=batch_size),
        "csv": from_csv(folder / "x.csv", ["a", "b", "c"], batch_size=batch_size),
        "dask-array": from_dask(da.from_array(table, chunks=(batch_size, 3))),
        "dask-frame": from_dask(
            dd.from_pandas(pd.DataFrame(table, columns=list("abc")), npartitions=3)
        ),
    }


@pytest.mark.parametrize(
    "name", ["npy", "parquet", "parquet-folder", "csv", "dask-array", "dask-frame"]
)
def test_a_source_holds_the_table_in_batches(files, table, name):
    src = sources(files, table, 333)[name]
    blocks = list(src.batches())
    assert src.n_samples == len(table) and src.n_features == 3
    assert all(len(b) <= src.batch_size for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), table)
    np.testing.assert_allclose(src.column_mean(), table.mean(axis=0), rtol=1e-13)
    # the initialisation subsample: systematic, every ceil(n / init_rows)-th row
    src.init_rows = 100
    np.testing.assert_array_equal(src.init_data(), table[:: -(-len(table) // 100)])
    src.init_rows = 10**6
    np.testing.assert_array_equal(src.init_data(), table)
    # one delayed read per batch, the same rows
    parts = [np.asarray(p.compute()) for p in src.delayed_parts()]
    np.testing.assert_array_equal(np.concatenate(parts), table)


def assert_same_fit(fit, ref, rtol=RTOL):
    assert fit.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(fit.loglik_, ref.loglik_, rtol=rtol)
    for name in ("weights_", "means_", "covariances_", "mean_", "covariance_", "components_"):
        if hasattr(ref, name):
            np.testing.assert_allclose(getattr(fit, name), getattr(ref, name), rtol=rtol, atol=0)


@pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")
@pytest.mark.parametrize("name", ["npy", "parquet-folder", "csv", "dask-array"])
def test_gaussian_mixture_on_a_source_equals_the_in_memory_fit(files, table, name):
    kw = dict(n_components=2, covariance_type="full", tol=0, max_iter=12, random_state=0)
    ref = emkit.GaussianMixture(**kw).fit(table)
    fit = emkit.GaussianMixture(**kw).fit(sources(files, table, 500)[name])
    assert_same_fit(fit, ref)
    np.testing.assert_array_equal(fit.predict(table), ref.predict(table))


@pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")
def test_a_dask_collection_passed_directly_is_a_source(table):
    kw = dict(n_components=2, covariance_type="diag", tol=0, max_iter=12, random_state=1)
    ref = emkit.GaussianMixture(**kw).fit(table)
    fit = emkit.GaussianMixture(**kw, batch_size=600).fit(da.from_array(table, chunks=(500, 1)))
    assert_same_fit(fit, ref)


def test_other_estimators_on_sources_equal_their_in_memory_fits(files, table):
    from emkit.distributions import Gaussian, Independent, Poisson

    counts = np.random.default_rng(2).poisson(3.0, (len(table), 1)).astype(float)
    mixed = np.hstack([table[:, :2], counts])
    np.save(files / "mixed.npy", mixed)
    dist = Independent({(0, 1): Gaussian("diag"), 2: Poisson()})
    kw = dict(n_components=2, tol=1e-8, max_iter=300, random_state=0)
    ref = emkit.Mixture(dist, **kw).fit(mixed)
    fit = emkit.Mixture(dist, **kw).fit(from_npy(files / "mixed.npy", batch_size=200))
    np.testing.assert_allclose(fit.loglik_, ref.loglik_, rtol=RTOL)
    np.testing.assert_allclose(fit.weights_, ref.weights_, rtol=RTOL)

    holes = table.copy()
    holes[:, :2][np.random.default_rng(3).random((len(holes), 2)) < 0.1] = np.nan
    pd.DataFrame(holes, columns=list("abc")).to_parquet(files / "holes.parquet", row_group_size=100)
    holey = from_parquet(files / "holes.parquet", batch_size=300)
    ref = emkit.GaussianImputer(tol=1e-12).fit(holes)
    fit = emkit.GaussianImputer(tol=1e-12).fit(holey)
    assert_same_fit(fit, ref)
    ref = emkit.GaussianMixture(2, tol=1e-10, random_state=0).fit(holes)
    fit = emkit.GaussianMixture(2, tol=1e-10, random_state=0).fit(holey)
    assert_same_fit(fit, ref)

    ref = emkit.FactorAnalysis(1, tol=1e-12, max_iter=200).fit(table)
    fit = emkit.FactorAnalysis(1, tol=1e-12, max_iter=200).fit(
        from_csv(files / "x.csv", list("abc"))
    )
    assert_same_fit(fit, ref, rtol=1e-9)


def test_emkit_em_takes_a_source_and_a_user_model(files, table):
    class Mean:  # the mean of the rows, as EM with no latent variables
        def init_params(self, data, rng):
            return np.zeros(data.shape[1])

        def estep(self, params, batch):
            return (batch.sum(axis=0), len(batch)), -0.5 * float(((batch - params) ** 2).sum())

        def mstep(self, stats, params):
            return stats[0] / stats[1]

    result = emkit.em(Mean(), from_npy(files / "x.npy", batch_size=100), max_iter=3, tol=0)
    np.testing.assert_allclose(result.params, table.mean(axis=0), rtol=1e-13)


def test_initialisation_reads_a_subsample_and_memory_stays_bounded(tmp_path):
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(-3, 1, (100_000, 4)), rng.normal(3, 1, (100_000, 4))])
    np.save(tmp_path / "big.npy", X[rng.permutation(len(X))])
    del X
    src = from_npy(tmp_path / "big.npy", batch_size=5000, init_rows=2000)
    assert len(src.init_data()) <= 2000
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emkit.ConvergenceWarning)
            gm = emkit.GaussianMixture(2, max_iter=3, random_state=0).fit(src)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data_bytes = 200_000 * 4 * 8
    assert peak < 0.25 * data_bytes, peak  # batches of 5000 rows, never the 6.4 MB table
    np.testing.assert_allclose(np.sort(gm.means_[:, 0]), [-3, 3], atol=0.05)


def test_bad_sources_and_options_are_refused(files, table, tmp_path):
    with pytest.raises(FileNotFoundError):
        from_npy(tmp_path / "nothing.npy")
    with pytest.raises(FileNotFoundError):
        from_parquet(tmp_path / "nothing.parquet")
    with pytest.raises(ValueError, match="not in"):
        from_parquet(files / "x.parquet", ["a", "zz"])
    with pytest.raises(TypeError, match="not numeric"):
        from_csv(files / "x.csv")  # the label column is text
    with pytest.raises(ValueError, match="at least 1"):
        from_npy(files / "x.npy", batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        from_npy(files / "x.npy", batch_size=2.5)
    with pytest.raises(ValueError, match="2-D"):
        from_dask(da.ones(10, chunks=5))
    with pytest.raises(TypeError, match="from_dask takes"):
        emkit.data.DaskSource(table)
    with pytest.raises(ValueError, match="sample_weight"):
        emkit.GaussianMixture(2).fit(from_npy(files / "x.npy"), sample_weight=np.ones(len(table)))
    with pytest.raises(TypeError, match="cannot draw shuffled"):
        emkit.GaussianMixture(2, variant="online", batch_size=100).fit(
            from_parquet(files / "x.parquet")
        )
    with pytest.raises(ValueError, match="holds rows, not sequences"):
        emkit.HMM(2).fit(from_npy(files / "x.npy"))
    bad = table.copy()
    bad[5, 1] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    with pytest.raises(ValueError, match="infinity"):
        emkit.GaussianMixture(2).fit(from_npy(tmp_path / "inf.npy", batch_size=100))
    with pytest.raises(ValueError, match="NaN"):
        bad[5, 1] = np.nan
        np.save(tmp_path / "nan.npy", bad)
        emkit.StudentTMixture(2).fit(from_npy(tmp_path / "nan.npy"))
