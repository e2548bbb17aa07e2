"""Independent products over column groups: each part's log-density, M-step, statistics
and samples in its own columns, against scipy.stats and weighted MLEs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats
from weighted import assert_trees_close, wmean, wvar

from emkit._pytree import tree_add, tree_map
from emkit.distributions.base import component
from emkit.distributions.continuous import DiagGaussian
from emkit.distributions.discrete import Bernoulli, Categorical, Poisson
from emkit.distributions.independent import Independent

K = 2


class _Recorder(Poisson):
    """A Poisson that remembers the ``previous`` parameters each M-step was given."""

    def __init__(self):
        self.seen = []

    def mstep(self, stats, prior=None, previous=None):
        self.seen.append(previous)
        return super().mstep(stats, prior, previous)


def _mixed() -> tuple[Independent, Callable[[np.random.Generator, int], np.ndarray]]:
    dist = Independent({(0, 3): DiagGaussian(reg_var=0.0), 1: Poisson(), (2,): Categorical(3)})

    def data(rng, n):
        return np.column_stack(
            [rng.normal(size=n), rng.poisson(2.0, n), rng.integers(0, 3, n), rng.normal(size=n)]
        )

    return dist, data


def test_independent_log_prob_is_sum_of_scipy_parts():
    rng = np.random.default_rng(1)
    dist, data = _mixed()
    X = dist.validate(data(rng, 40))
    params = dist.init_params(X, rng.dirichlet(np.ones(K), size=40))
    got = dist.log_prob(params, X)
    for k in range(K):
        g, p, c = (component(part, k) for part in params)
        expected = (
            stats.norm.logpdf(X[:, [0, 3]], g.mean, np.sqrt(g.var)).sum(axis=1)
            + stats.poisson.logpmf(X[:, 1], p.rate[0])
            + np.log(c.probs[0][X[:, 2].astype(int)])
        )
        np.testing.assert_allclose(got[:, k], expected, rtol=1e-10)


def test_independent_mstep_is_parts_mle():
    rng = np.random.default_rng(4)
    dist, data = _mixed()
    X = dist.validate(data(rng, 200))
    w = rng.uniform(size=(200, K))
    gauss, pois, cat = dist.mstep(dist.suff_stats(X, w))
    for k in range(K):
        wk = w[:, k]
        np.testing.assert_allclose(gauss.mean[k], wmean(X[:, [0, 3]], wk))
        np.testing.assert_allclose(gauss.var[k], wvar(X[:, [0, 3]], wk))
        np.testing.assert_allclose(pois.rate[k], wmean(X[:, [1]], wk))
        freq = [wk[X[:, 2] == c].sum() / wk.sum() for c in range(3)]
        np.testing.assert_allclose(cat.probs[k, 0], freq)


def test_mstep_gives_each_part_its_own_previous():
    rng = np.random.default_rng(25)
    first, second = _Recorder(), _Recorder()
    dist = Independent({0: first, (1, 2): second})
    X = dist.validate(rng.poisson(3.0, size=(50, 3)))
    s = dist.suff_stats(X, rng.uniform(size=(50, K)))
    previous = dist.mstep(s)
    assert first.seen == [None] and second.seen == [None]
    again = dist.mstep(s, previous=previous)
    assert first.seen[-1] is previous[0] and second.seen[-1] is previous[1]
    assert_trees_close(again, previous)
    with pytest.raises(ValueError, match="1 previous for 2 parts"):
        dist.mstep(s, previous=previous[:1])


def test_independent_stats_are_additive():
    rng = np.random.default_rng(7)
    dist, data = _mixed()
    X = dist.validate(data(rng, 90))
    w = rng.uniform(size=(90, K))
    whole = dist.suff_stats(X, w)
    parts = tree_add(dist.suff_stats(X[:50], w[:50]), dist.suff_stats(X[50:], w[50:]))
    assert_trees_close(parts, whole)
    assert tree_map(np.shape, parts) == tree_map(np.shape, whole)


def test_independent_sample_puts_parts_in_their_columns():
    rng = np.random.default_rng(13)
    dist, data = _mixed()
    params = dist.init_params(data(rng, 500), rng.dirichlet(np.ones(K), size=500))
    x = dist.sample(component(params, 0), 100_000, rng)
    dist.validate(x)
    g, p, c = (component(part, 0) for part in params)
    np.testing.assert_allclose(x[:, [0, 3]].mean(axis=0), g.mean, atol=0.02)
    np.testing.assert_allclose(x[:, 1].mean(), p.rate[0], rtol=0.02)
    np.testing.assert_allclose(
        np.bincount(x[:, 2].astype(int), minlength=3) / 1e5, c.probs[0], atol=0.01
    )


def test_independent_errors_name_the_table_column():
    dist, data = _mixed()
    X = data(np.random.default_rng(14), 5)
    X[2, 1] = -3  # the Poisson column
    with pytest.raises(ValueError, match="Poisson: column 1 has negative counts"):
        dist.validate(X)
    X[2, 1] = 1
    X[0, 2] = 7  # the categorical column
    with pytest.raises(ValueError, match=r"Categorical: column 2 has categories out of range"):
        dist.validate(X)
    with pytest.raises(ValueError, match="X has 3 columns"):
        dist.validate(X[:, :3])


def test_independent_construction_errors():
    with pytest.raises(ValueError, match="exactly once"):
        Independent({(0, 1): Poisson(), 1: Bernoulli()})
    with pytest.raises(ValueError, match="exactly once"):
        Independent({(0, 2): Poisson()})
    with pytest.raises(TypeError, match="not a Distribution"):
        Independent([((0,), "poisson")])


def test_independent_n_parameters_and_generalized():
    dist, _ = _mixed()
    assert dist.n_parameters(2, 4) == 2 * 2 * 2 + 2 + 2 * 2
    assert dist.generalized is False


def test_mixture_em_on_independent_is_monotone():
    # A two-line mixture EM on top of the product, each M-step given the parameters of
    # the E-step before it: exact EM never lowers the log-likelihood.
    rng = np.random.default_rng(19)
    dist, data = _mixed()
    X = dist.validate(data(rng, 300))
    resp = rng.dirichlet(np.ones(K), size=300)
    params, history = None, []
    for _ in range(15):
        params = dist.mstep(dist.suff_stats(X, resp), previous=params)
        joint = dist.log_prob(params, X) + np.log(resp.sum(axis=0) / resp.sum())
        top = joint.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
        history.append(log_norm.sum())
        resp = np.exp(joint - log_norm[:, None])
    history = np.array(history)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))
