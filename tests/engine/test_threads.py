"""``n_jobs``: threads for the batches' E-steps when the data come in several batches.

The reference is the same fit on one thread: batches are summed in their order
whatever thread ran them, so the results are identical, not merely close.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import emkit
from emkit.data import ArraySource, from_npy
from emkit.engine.driver import _executor
from emkit.engine.executors import SerialExecutor, ThreadExecutor
from emkit.models.mixture.gaussian_model import GaussianMixtureModel


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(11)
    return np.vstack([rng.normal(-1, 1, (1500, 4)), rng.normal(1, 1, (1500, 4))])


def test_n_jobs_means_batch_threads_with_several_batches_and_restart_threads_otherwise(X):
    many = ArraySource((X, None), batch_size=500)
    one = ArraySource((X, None))
    assert isinstance(_executor(None, 2, many)[0], ThreadExecutor)
    assert isinstance(_executor(None, 2, one)[0], SerialExecutor)  # restarts go on threads
    assert isinstance(_executor(None, None, many)[0], SerialExecutor)
    assert _executor(None, 2, many)[0].n_jobs == 2


@pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")
def test_batch_threads_give_the_serial_result(X, tmp_path):
    np.save(tmp_path / "x.npy", X)
    kw = dict(n_components=3, tol=0.0, max_iter=8, random_state=0)
    serial = emkit.GaussianMixture(**kw).fit(from_npy(tmp_path / "x.npy", batch_size=400))
    threads = emkit.GaussianMixture(**kw, n_jobs=2).fit(
        from_npy(tmp_path / "x.npy", batch_size=400)
    )
    np.testing.assert_array_equal(threads.means_, serial.means_)
    np.testing.assert_array_equal(threads.history_, serial.history_)
    in_memory = emkit.GaussianMixture(**kw, n_jobs=2, batch_size=400).fit(X)
    np.testing.assert_allclose(in_memory.means_, serial.means_, rtol=1e-10)


class _CountingSource(ArraySource):
    """Counts the batches read but not yet through their E-step."""

    def __init__(self, data, batch_size):
        super().__init__(data, batch_size)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0

    def batches(self):
        for batch in super().batches():
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            yield batch

    def done(self):
        with self.lock:
            self.in_flight -= 1


def test_threads_read_a_bounded_number_of_batches_ahead(X):
    source = _CountingSource((X, None), batch_size=50)  # 60 batches
    model = GaussianMixtureModel(2)

    class Counting:
        def init_params(self, data, rng):
            return model.init_params(data, rng)

        def estep(self, params, batch):
            out = model.estep(params, batch)
            source.done()
            return out

        def mstep(self, stats, params):
            return model.mstep(stats, params)

    emkit.em(Counting(), source, max_iter=2, tol=0.0, executor=ThreadExecutor(2))
    assert 1 <= source.most <= 2 * 2 + 1  # never the whole data set


def test_bad_n_jobs_is_refused(X):
    with pytest.raises(ValueError, match="n_jobs"):
        emkit.em(GaussianMixtureModel(2), (X, None), n_jobs=0)
    with pytest.raises(ValueError, match="executor must be"):
        emkit.em(GaussianMixtureModel(2), (X, None), executor="gpu")
    with pytest.raises(ValueError, match="n_jobs must be at least 1"):
        ThreadExecutor(0)
