"""EM on a real ``distributed.LocalCluster`` (two worker processes, loopback only).

Every fit on the cluster is compared with the in-memory fit from the same start: the
E-steps run on the workers and the statistics come back summed in another order, so
the results agree to round-off (1e-10 relative). One test kills a worker process in
the middle of a fit: Dask recomputes what the worker held, and the fit ends with the
same result.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402
import dask.array as da  # noqa: E402

import emkit  # noqa: E402
from emkit._pytree import tree_leaves  # noqa: E402
from emkit.data import from_dask, from_npy, from_parquet  # noqa: E402
from emkit.engine.dask_executor import DaskExecutor  # noqa: E402
from emkit.models.mixture.gaussian_model import GaussianMixtureModel  # noqa: E402

# the workers unpickle this module's model and functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

RTOL = 1e-10
pytestmark = pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")


@pytest.fixture(scope="module")
def client(process_cluster):  # (tests/conftest.py)
    return process_cluster


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(7)
    return (
        np.vstack([rng.normal([0, 0, 0], 1.0, (400, 3)), rng.normal([2, 1, 0], 0.8, (400, 3))])[
            rng.permutation(800)
        ]
        + 10.0
    )


class PoissonMixture:
    """A user's model: a two-component Poisson mixture on one column of counts."""

    def init_params(self, data, rng):
        return np.array([0.5, 0.5]), np.quantile(data[:, 0], [0.25, 0.75]) + 0.5

    def estep(self, params, batch):
        weights, rates = params
        x = batch[:, 0]
        log_joint = np.log(weights) + x[:, None] * np.log(rates) - rates
        top = log_joint.max(axis=1, keepdims=True)
        norm = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))
        resp = np.exp(log_joint - norm[:, None])
        from scipy.special import gammaln

        loglik = float(norm.sum() - gammaln(x + 1).sum())
        return (resp.sum(axis=0), resp.T @ x), loglik

    def mstep(self, stats, params):
        counts, sums = stats
        return counts / counts.sum(), sums / counts


def test_a_user_model_runs_on_the_current_client_with_a_dask_array(client):
    rng = np.random.default_rng(1)
    counts = np.concatenate([rng.poisson(2.0, 500), rng.poisson(9.0, 300)])[:, None] * 1.0
    darr = da.from_array(counts, chunks=(200, 1))
    assert isinstance(emkit.engine.driver._executor(None, None, from_dask(darr))[0], DaskExecutor)
    options = dict(tol=0.0, max_iter=6)
    reference = emkit.em(PoissonMixture(), counts, **options)
    result = emkit.em(PoissonMixture(), darr, **options)
    assert result.n_iter == reference.n_iter == 6
    np.testing.assert_allclose(result.history, reference.history, rtol=RTOL)
    for a, b in zip(result.params, reference.params):
        np.testing.assert_allclose(a, b, rtol=RTOL)


def assert_same_fit(fit, ref, names):
    assert fit.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(fit.loglik_, ref.loglik_, rtol=RTOL)
    for name in names:
        np.testing.assert_allclose(getattr(fit, name), getattr(ref, name), rtol=RTOL, atol=1e-12)


def test_estimators_on_the_cluster_equal_their_in_memory_fits(client, X, tmp_path):
    from emkit.distributions import Gaussian

    np.save(tmp_path / "x.npy", X)
    kw = dict(n_components=2, tol=0.0, max_iter=5, random_state=0)
    ref = emkit.GaussianMixture(**kw).fit(X)
    fit = emkit.GaussianMixture(**kw, executor=client).fit(
        from_npy(tmp_path / "x.npy", batch_size=300)
    )
    assert_same_fit(fit, ref, ["weights_", "means_", "covariances_"])

    ref = emkit.Mixture(Gaussian("diag"), **kw).fit(X)
    fit = emkit.Mixture(Gaussian("diag"), **kw, executor="dask", batch_size=400).fit(X)
    assert_same_fit(fit, ref, ["weights_"])

    holes = X.copy()
    holes[:, 1][np.random.default_rng(2).random(len(X)) < 0.2] = np.nan
    pd.DataFrame(holes, columns=list("abc")).to_parquet(tmp_path / "h.parquet", row_group_size=300)
    ref = emkit.GaussianImputer(tol=0.0, max_iter=5).fit(holes)
    fit = emkit.GaussianImputer(tol=0.0, max_iter=5, executor=client).fit(
        from_parquet(tmp_path / "h.parquet")
    )
    assert_same_fit(fit, ref, ["mean_", "covariance_"])

    ref = emkit.FactorAnalysis(1, tol=0.0, max_iter=5).fit(X)
    fit = emkit.FactorAnalysis(1, tol=0.0, max_iter=5, executor=client, batch_size=300).fit(X)
    assert_same_fit(fit, ref, ["components_", "noise_variance_"])


def test_partitions_are_read_once_and_only_parameters_go_out(client, X, tmp_path):
    np.save(tmp_path / "x.npy", X)
    source = from_npy(tmp_path / "x.npy", batch_size=200).map(_model_batch)  # 4 partitions
    model = GaussianMixtureModel(2)
    params = model.init_params(source.init_data(), np.random.default_rng(0))
    executor = DaskExecutor(client)
    try:
        with distributed.get_task_stream(client) as stream:
            first = executor.run_estep(model.estep, params, source)
            second = executor.run_estep(model.estep, params, source)
    finally:
        executor.close()
    keys = [str(task["key"]) for task in stream.data]
    assert sum(k.startswith("('_read_rows") or k.startswith("_read_rows") for k in keys) == 4
    assert sum("_apply" in k for k in keys) == 8  # one E-step task per partition and pass
    assert sum("_add" in k for k in keys) == 2 * 3  # a tree of pairwise sums per pass
    serial = emkit.engine.SerialExecutor().run_estep(model.estep, params, source)
    for out in (first, second):
        np.testing.assert_allclose(out[1], serial[1], rtol=RTOL)
        for a, b in zip(tree_leaves(out[0]), tree_leaves(serial[0])):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-9)


def _model_batch(block):
    return np.asfortranarray(block), None


def test_a_worker_killed_mid_fit_changes_nothing(client, X):
    model = GaussianMixtureModel(2)
    options = dict(tol=0.0, max_iter=6, random_state=0)
    reference = emkit.em(model, (X - X.mean(axis=0), None), **options)
    source = from_dask(da.from_array(X - X.mean(axis=0), chunks=(200, 3))).map(_model_batch)
    killed = []

    def kill_a_worker(info):
        if info.iteration == 2 and not killed:
            pids = client.run(os.getpid)
            victim = sorted(pids)[0]
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

    result = emkit.em(model, source, executor=client, callback=kill_a_worker, **options)
    assert killed
    assert result.n_iter == reference.n_iter == 6
    np.testing.assert_allclose(result.history, reference.history, rtol=RTOL)
    np.testing.assert_allclose(
        result.params.components.mean, reference.params.components.mean, rtol=RTOL, atol=1e-12
    )
