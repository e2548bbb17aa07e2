"""Compiled mixture E-step kernels against per-point scipy.stats and scipy.special computations."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from scipy.special import logsumexp

from emkit.distributions.covariance import get_structure
from emkit.distributions.covariance._kernels import _CHUNK, diag_estep, normalise_columns


def _problem(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d) + rng.normal(size=d)
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(size=(k, d))
    var = rng.uniform(0.3, 2.0, size=(k, d))
    return X, weights, means, var


def _const(weights, var):
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    D = var.shape[1]
    return log_w - 0.5 * np.log(var).sum(axis=1) - 0.5 * D * np.log(2 * np.pi)


def _reference(X, w, weights, means, var, beta=1.0):
    """Per-point log-densities from scipy.stats, posteriors by scipy's logsumexp."""
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    logp = np.stack(
        [
            log_w[k] + stats.norm.logpdf(X, means[k], np.sqrt(var[k])).sum(axis=1)
            for k in range(len(weights))
        ],
        axis=1,
    )
    row = logsumexp(beta * logp, axis=1)
    resp = np.exp(beta * logp - row[:, None])
    sw = np.ones(len(X)) if w is None else w
    r = resp * sw[:, None]
    return r.sum(0), r.T @ X, r.T @ X**2, float(sw @ (row / beta))


def _check(got, want, rtol=1e-12):
    for g, e in zip(got[:3], want[:3]):
        assert_allclose(g, e, rtol=rtol, atol=rtol * np.abs(e).max())
    assert_allclose(got[3], want[3], rtol=rtol)


@pytest.mark.parametrize(
    ("n", "d", "k"),
    [(1, 1, 1), (3, 2, 3), (64, 5, 2), (67, 3, 5), (1000, 16, 16), (_CHUNK + 5, 4, 7)],
)
def test_matches_scipy_per_point(n, d, k):
    X, weights, means, var = _problem(n, d, k)
    got = diag_estep(X, None, means, 1 / var, _const(weights, var))
    _check(got, _reference(X, None, weights, means, var))


def test_sample_weights_and_temperature():
    X, weights, means, var = _problem(2_000, 6, 5, seed=1)
    w = np.random.default_rng(2).uniform(0, 3, len(X))
    w[::7] = 0.0
    for beta in (1.0, 0.3):
        got = diag_estep(X, w, means, 1 / var, _const(weights, var), beta)
        _check(got, _reference(X, w, weights, means, var, beta))


def test_layouts_and_float32_give_the_same_statistics():
    X, weights, means, var = _problem(777, 5, 4, seed=3)
    c = _const(weights, var)
    base = diag_estep(np.ascontiguousarray(X), None, means, 1 / var, c)
    fortran = diag_estep(np.asfortranarray(X), None, means, 1 / var, c)
    strided = diag_estep(np.repeat(X, 2, axis=1)[:, ::2], None, means, 1 / var, c)
    for a, b, s in zip(base, fortran, strided):
        assert_array_equal(a, b)
        assert_array_equal(a, s)
    X32 = X.astype(np.float32)
    got = diag_estep(X32, None, means, 1 / var, c)
    _check(got, _reference(X32.astype(np.float64), None, weights, means, var))


def test_zero_weight_component_and_far_points_stay_finite():
    X, weights, means, var = _problem(500, 3, 4, seed=4)
    weights = np.array([0.5, 0.0, 0.25, 0.25])
    X[:5] += 1e4  # log-densities around -1e8 in every component
    got = diag_estep(X, None, means, 1 / var, _const(weights, var))
    want = _reference(X, None, weights, means, var)
    assert np.all(np.isfinite(got[1])) and np.isfinite(got[3])
    assert got[0][1] == 0.0 and not got[1][1].any()
    assert_allclose(got[0].sum(), len(X), rtol=1e-13)
    _check(got, want, rtol=1e-10)


def compare_thread_counts():
    """One thread against every thread of the pool (run with several, below)."""
    assert numba.config.NUMBA_NUM_THREADS >= 2
    X, weights, means, var = _problem(3 * _CHUNK + 11, 8, 6, seed=5)
    c = _const(weights, var)
    numba.set_num_threads(1)
    one = diag_estep(X, None, means, 1 / var, c)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    many = diag_estep(X, None, means, 1 / var, c)
    for a, b in zip(one, many):
        assert_array_equal(a, b)


@pytest.mark.slow
def test_result_does_not_depend_on_the_thread_count(run_with_threads):
    run_with_threads(__file__, "compare_thread_counts", threads=3)


@pytest.mark.parametrize("name", ["diag", "spherical"])
def test_structure_kernel_equals_block_path(name):
    """``estep_stats`` gives the statistics of ``log_density`` + ``block_stats``."""
    st = get_structure(name)
    X, weights, means, var = _problem(3_000, 5, 4, seed=6)
    cov = var if name == "diag" else var.mean(axis=1)
    prec_chol = st.precision_cholesky(cov)
    offset = np.log(weights) + st.log_det_precision_cholesky(prec_chol, 5) - 2.5 * np.log(2 * np.pi)
    cache = st.prepare(means, prec_chol, offset, np.float64)
    nk, s1, s2, value = st.estep_stats(X, None, cache)
    logp, work = st.log_density(X, cache)
    row = logsumexp(logp, axis=1)
    resp = np.exp(logp - row[:, None])
    want = st.block_stats(X, resp, work)
    _check((nk, s1, s2, value), (*want, row.sum()), rtol=1e-10)


@pytest.mark.parametrize("n_cols", [1, 4, 63, 64, 130, 1000])
def test_normalise_columns_matches_logsumexp(n_cols):
    rng = np.random.default_rng(n_cols)
    lp = rng.normal(-40, 15, size=(7, n_cols))
    lp[3, ::5] = -np.inf  # a zero-weight component in some columns
    w = rng.uniform(0, 2, n_cols)
    for weights, beta in [(None, 1.0), (w, 1.0), (w, 0.25)]:
        got = lp.copy()
        value = normalise_columns(got, weights, beta)
        row = logsumexp(beta * lp, axis=0)
        sw = np.ones(n_cols) if weights is None else weights
        assert_allclose(got, np.exp(beta * lp - row) * sw, rtol=1e-13, atol=1e-300)
        assert_allclose(value, sw @ (row / beta), rtol=1e-13)


def test_normalise_columns_on_a_transposed_block():
    """The estimators pass ``resp.T`` of a (B, K) F-ordered block: a C-contiguous view."""
    rng = np.random.default_rng(0)
    block = np.asfortranarray(rng.normal(size=(101, 5)) * 10)
    row = logsumexp(block, axis=1, keepdims=True)
    want = np.exp(block - row)
    value = normalise_columns(block.T)
    assert_allclose(block, want, rtol=1e-13)
    assert_allclose(value, row.sum(), rtol=1e-13)
