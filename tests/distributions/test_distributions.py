"""The contract every distribution meets, checked for each one against independent
references: log-densities against scipy.stats, M-steps against weighted MLEs, additive
statistics, sampling moments, missing values, bad input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy import optimize, stats
from weighted import assert_trees_close, wmean, wvar

from emkit._pytree import tree_add, tree_map
from emkit.distributions.base import DirichletPrior, Distribution, GammaPrior, component
from emkit.distributions.continuous import (
    DiagGaussian,
    DiagGaussianParams,
    Exponential,
    ExponentialParams,
    Gamma,
    GammaParams,
    LogNormal,
    LogNormalParams,
)
from emkit.distributions.discrete import (
    Bernoulli,
    BernoulliParams,
    Categorical,
    CategoricalParams,
    Poisson,
    PoissonParams,
)

K, D, C = 2, 3, 4


@dataclass
class Case:
    """One distribution with independent reference implementations for its tests."""

    dist: Distribution
    data: Callable[[np.random.Generator, int], np.ndarray]  # valid (n, D) data
    params: Callable[[np.random.Generator], Any]  # random (K, ...) parameters
    logpdf: Callable[[Any, np.ndarray], np.ndarray]  # scipy, one component -> (n,)
    mle: Callable[[np.ndarray, np.ndarray], Any]  # weighted MLE of one component
    moments: Callable[[Any, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]


def _categorical_logpdf(p, X):
    # multinomial with one trial on the one-hot encoding, column by column
    return sum(
        stats.multinomial.logpmf(np.eye(C)[X[:, d].astype(int)], 1, p.probs[d]) for d in range(D)
    )


def _categorical_mle(X, w):
    probs = np.array([[w[X[:, d] == c].sum() for c in range(C)] for d in range(D)])
    return CategoricalParams(probs=probs / w.sum())


def _gamma_mle(X, w):
    shapes, rates = [], []
    for x in X.T:

        def nll(theta, x=x):
            a, b = np.exp(theta)
            return -np.sum(w * stats.gamma.logpdf(x, a, scale=1.0 / b))

        res = optimize.minimize(
            nll,
            np.zeros(2),
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000},
        )
        shapes.append(np.exp(res.x[0]))
        rates.append(np.exp(res.x[1]))
    return GammaParams(shape=np.array(shapes), rate=np.array(rates))


CASES = {
    "categorical": Case(
        Categorical(C),
        lambda rng, n: rng.integers(0, C, size=(n, D)),
        lambda rng: CategoricalParams(probs=rng.dirichlet(np.ones(C), size=(K, D))),
        _categorical_logpdf,
        _categorical_mle,
        lambda p, x: [((x[:, :, None] == np.arange(C)).mean(axis=0), p.probs)],
    ),
    "bernoulli": Case(
        Bernoulli(),
        lambda rng, n: (rng.random((n, D)) < 0.3).astype(float),
        lambda rng: BernoulliParams(probs=rng.uniform(0.05, 0.95, size=(K, D))),
        lambda p, X: stats.bernoulli.logpmf(X, p.probs).sum(axis=1),
        lambda X, w: BernoulliParams(probs=wmean(X, w)),
        lambda p, x: [(x.mean(axis=0), p.probs)],
    ),
    "poisson": Case(
        Poisson(),
        lambda rng, n: rng.poisson(3.0, size=(n, D)),
        lambda rng: PoissonParams(rate=rng.uniform(0.5, 8.0, size=(K, D))),
        lambda p, X: stats.poisson.logpmf(X, p.rate).sum(axis=1),
        lambda X, w: PoissonParams(rate=wmean(X, w)),
        lambda p, x: [(x.mean(axis=0), p.rate), (x.var(axis=0), p.rate)],
    ),
    "exponential": Case(
        Exponential(),
        lambda rng, n: rng.exponential(2.0, size=(n, D)),
        lambda rng: ExponentialParams(rate=rng.uniform(0.2, 5.0, size=(K, D))),
        lambda p, X: stats.expon.logpdf(X, scale=1.0 / p.rate).sum(axis=1),
        lambda X, w: ExponentialParams(rate=1.0 / wmean(X, w)),
        lambda p, x: [(x.mean(axis=0), 1.0 / p.rate)],
    ),
    "gamma": Case(
        Gamma(),
        lambda rng, n: rng.gamma(2.5, 1.5, size=(n, D)),
        lambda rng: GammaParams(
            shape=rng.uniform(0.3, 6.0, size=(K, D)), rate=rng.uniform(0.2, 4.0, size=(K, D))
        ),
        lambda p, X: stats.gamma.logpdf(X, p.shape, scale=1.0 / p.rate).sum(axis=1),
        _gamma_mle,
        lambda p, x: [(x.mean(axis=0), p.shape / p.rate), (x.var(axis=0), p.shape / p.rate**2)],
    ),
    "lognormal": Case(
        LogNormal(reg_var=0.0),
        lambda rng, n: rng.lognormal(0.5, 0.8, size=(n, D)),
        lambda rng: LogNormalParams(
            mu=rng.normal(size=(K, D)), sigma=rng.uniform(0.2, 2.0, size=(K, D))
        ),
        lambda p, X: stats.lognorm.logpdf(X, p.sigma, scale=np.exp(p.mu)).sum(axis=1),
        lambda X, w: LogNormalParams(mu=wmean(np.log(X), w), sigma=np.sqrt(wvar(np.log(X), w))),
        lambda p, x: [(np.log(x).mean(axis=0), p.mu), (np.log(x).std(axis=0), p.sigma)],
    ),
    "diag_gaussian": Case(
        DiagGaussian(reg_var=0.0),
        lambda rng, n: rng.normal(1.0, 2.0, size=(n, D)),
        lambda rng: DiagGaussianParams(
            mean=rng.normal(size=(K, D)) * 3, var=rng.uniform(0.1, 4.0, size=(K, D))
        ),
        lambda p, X: stats.norm.logpdf(X, p.mean, np.sqrt(p.var)).sum(axis=1),
        lambda X, w: DiagGaussianParams(mean=wmean(X, w), var=wvar(X, w)),
        lambda p, x: [(x.mean(axis=0), p.mean), (x.var(axis=0), p.var)],
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(request) -> Case:
    return CASES[request.param]


# ------------------------------------------------------------------ log-densities
def test_log_prob_matches_scipy(case):
    rng = np.random.default_rng(0)
    X = case.dist.validate(case.data(rng, 50))
    params = case.params(rng)
    got = case.dist.log_prob(params, X)
    assert got.shape == (50, K)
    for k in range(K):
        np.testing.assert_allclose(got[:, k], case.logpdf(component(params, k), X), rtol=1e-10)


# ------------------------------------------------------------------------ M-steps
def test_weighted_mstep_is_weighted_mle(case):
    rng = np.random.default_rng(2)
    X = case.dist.validate(case.data(rng, 300))
    w = rng.uniform(0.0, 1.0, size=(300, K))
    params = case.dist.mstep(case.dist.suff_stats(X, w))
    rtol = 1e-5 if isinstance(case.dist, Gamma) else 1e-10
    for k in range(K):
        assert_trees_close(component(params, k), case.mle(X, w[:, k]), rtol=rtol)


def test_init_params_is_mstep_of_responsibilities(case):
    rng = np.random.default_rng(3)
    X = case.data(rng, 100)
    resp = rng.dirichlet(np.ones(K), size=100)
    expected = case.dist.mstep(case.dist.suff_stats(case.dist.validate(X), resp))
    assert_trees_close(case.dist.init_params(X, resp, rng), expected)


def test_mstep_accepts_the_previous_parameters(case):
    # Every M-step here is a full maximisation: where it starts must not matter.
    rng = np.random.default_rng(23)
    X = case.dist.validate(case.data(rng, 120))
    w = rng.uniform(size=(120, K))
    s = case.dist.suff_stats(X, w)
    previous = case.params(rng)
    assert_trees_close(case.dist.mstep(s, previous=previous), case.dist.mstep(s))
    assert_trees_close(case.dist.mstep(s, None, previous), case.dist.mstep(s))


def test_empty_component_is_a_clear_error(case):
    rng = np.random.default_rng(5)
    X = case.dist.validate(case.data(rng, 20))
    w = np.column_stack([np.ones(20), np.zeros(20)])
    with pytest.raises(ValueError, match=r"component\(s\) \[1\] have zero total weight"):
        case.dist.mstep(case.dist.suff_stats(X, w))


# --------------------------------------------------------------------- additivity
@pytest.mark.parametrize("split", [1, 37, 100])
def test_stats_are_additive(case, split):
    rng = np.random.default_rng(6)
    X = case.dist.validate(case.data(rng, 101))
    w = rng.uniform(size=(101, K))
    a = case.dist.suff_stats(X[:split], w[:split])
    b = case.dist.suff_stats(X[split:], w[split:])
    assert_trees_close(tree_add(a, b), case.dist.suff_stats(X, w))


# -------------------------------------------------------------------------- priors
# The flat member of each conjugate family, written out (not the ``None`` default).
FLAT_PRIORS = {
    Categorical: DirichletPrior(alpha=1.0),
    Bernoulli: DirichletPrior(alpha=1.0),
    Poisson: GammaPrior(a0=1.0, b0=0.0),
    Exponential: GammaPrior(a0=1.0, b0=0.0),
}


def test_flat_prior_gives_the_weighted_mle(case):
    rng = np.random.default_rng(11)
    X = case.dist.validate(case.data(rng, 50))
    w = rng.uniform(size=(50, K))
    s = case.dist.suff_stats(X, w)
    flat = FLAT_PRIORS.get(type(case.dist))
    if flat is None:  # no conjugate prior: any prior object is refused, not ignored
        with pytest.raises(TypeError, match="no conjugate prior"):
            case.dist.mstep(s, DirichletPrior(alpha=1.0))
        return
    params = case.dist.mstep(s, flat)
    for k in range(K):
        assert_trees_close(component(params, k), case.mle(X, w[:, k]), rtol=1e-10)
    assert case.dist.log_prior(params, flat) == 0.0


# ------------------------------------------------------------------------ samples
def test_sample_moments_match_parameters(case):
    rng = np.random.default_rng(12)
    params_k = component(case.params(rng), 1)
    x = case.dist.sample(params_k, 200_000, rng)
    assert x.shape == (200_000, D)
    case.dist.validate(x)
    for got, expected in case.moments(params_k, x):
        np.testing.assert_allclose(got, expected, rtol=0.03, atol=0.01)


# ------------------------------------------------------------------- bad input
BAD = [
    (Poisson(), [[1.0, 2.0], [-1.0, 0.0]], r"column 0 has negative counts"),
    (Poisson(), [[1.0, 2.5]], r"column 1 has non-integer"),
    (Bernoulli(), [[0.0, 1.0], [1.0, 2.0]], r"column 1 has values other than 0 and 1"),
    (Categorical(3), [[0, 3]], r"column 1 has categories out of range \[0, 3\)"),
    (Categorical(3), [[-1, 0]], r"column 0 has categories out of range"),
    (Categorical(3), [[0.5, 0]], r"column 0 has non-integer"),
    (Gamma(), [[1.0, 0.0]], r"column 1 has non-positive"),
    (Exponential(), [[-2.0]], r"column 0 has non-positive"),
    (LogNormal(), [[1.0], [0.0]], r"column 0 has non-positive"),
    (DiagGaussian(), [[1.0, -np.inf]], r"column 1 has infinite"),
    (Exponential(), [[np.inf]], r"column 0 has infinite"),
    (Gamma(), [1.0, 2.0], r"must be 2-D"),
    (Bernoulli(), [["a"]], r"could not be read as numbers"),
]


@pytest.mark.parametrize(("dist", "X", "match"), BAD, ids=[f"{d.name}-{m[:20]}" for d, _, m in BAD])
def test_bad_input_names_the_column(dist, X, match):
    with pytest.raises(ValueError, match=match):
        dist.validate(X)


def test_weights_shape_is_checked(case):
    X = case.dist.validate(case.data(np.random.default_rng(15), 10))
    with pytest.raises(ValueError, match="weights must have shape"):
        case.dist.suff_stats(X, np.ones(10))


# ------------------------------------------------------------------ bookkeeping
def test_params_are_immutable(case):
    params = case.params(np.random.default_rng(16))
    with pytest.raises(AttributeError):
        params.__setattr__(params._fields[0], None)


def _mixture_em_history(dist, X, resp, n_iter=15):
    """A two-line mixture EM on top of the building blocks: the log-likelihood of each
    iteration, which exact EM never lowers."""
    history = []
    for _ in range(n_iter):
        params = dist.mstep(dist.suff_stats(X, resp))
        log_w = np.log(resp.sum(axis=0) / resp.sum())
        joint = dist.log_prob(params, X) + log_w
        top = joint.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
        history.append(log_norm.sum())
        resp = np.exp(joint - log_norm[:, None])
    return np.array(history)


@pytest.mark.parametrize("name", sorted(CASES))
def test_mixture_em_on_the_blocks_is_monotone(name):
    case = CASES[name]
    rng = np.random.default_rng(18)
    X = case.dist.validate(np.vstack([case.data(rng, 150), case.data(rng, 150)]))
    history = _mixture_em_history(case.dist, X, rng.dirichlet(np.ones(K), size=300))
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))


# ------------------------------------------------------------------ missing values
def _with_missing(X, rng, fraction=0.3):
    X = np.array(X, dtype=float)
    X[rng.random(X.shape) < fraction] = np.nan
    return X


def test_missing_values_drop_out_of_log_prob(case):
    rng = np.random.default_rng(20)
    X = case.dist.validate(_with_missing(case.data(rng, 60), rng))
    params = case.params(rng)
    got = case.dist.log_prob(params, X)
    for k in range(K):
        p_k = component(params, k)
        expected = np.zeros(len(X))
        for d in range(D):
            obs = ~np.isnan(X[:, d])
            # The references take D columns: column d repeated D times, divided by D.
            p_kd = tree_map(lambda leaf, d=d: np.repeat(np.asarray(leaf)[d : d + 1], D, 0), p_k)
            column = np.repeat(X[obs][:, d : d + 1], D, axis=1)
            expected[obs] += case.logpdf(p_kd, column) / D
        np.testing.assert_allclose(got[:, k], expected, rtol=1e-10, atol=1e-10)


def test_em_with_missing_values_reaches_the_observed_data_mle(case):
    # One component: the columns are independent, so the observed-data MLE is each
    # column's MLE on its observed values. EM with expected statistics must get there.
    rng = np.random.default_rng(21)
    X = case.dist.validate(_with_missing(case.data(rng, 300), rng))
    w = np.ones((len(X), 1))
    params = case.dist.init_params(X, w)
    for _ in range(100):
        params = case.dist.mstep(case.dist.suff_stats(X, w, params))
    for d in range(D):
        obs = ~np.isnan(X[:, d])
        # The reference MLEs take D columns: give them column d's observed values D times.
        column = np.repeat(X[obs][:, d : d + 1], D, axis=1)
        expected = tree_map(lambda leaf: np.asarray(leaf)[0], case.mle(column, np.ones(obs.sum())))
        got = tree_map(lambda leaf, d=d: np.asarray(leaf)[0, d], params)
        assert_trees_close(got, expected, rtol=1e-7, atol=1e-9)


def test_missing_statistics_need_the_parameters(case):
    X = np.array([[np.nan] * D, [1.0] * D])
    with pytest.raises(ValueError, match="pass params"):
        case.dist.suff_stats(X, np.ones((2, K)))


def test_missing_statistics_are_additive(case):
    rng = np.random.default_rng(22)
    X = case.dist.validate(_with_missing(case.data(rng, 80), rng))
    params = case.params(rng)
    w = rng.dirichlet(np.ones(K), size=80)
    whole = case.dist.suff_stats(X, w, params)
    parts = tree_add(
        case.dist.suff_stats(X[:30], w[:30], params), case.dist.suff_stats(X[30:], w[30:], params)
    )
    assert_trees_close(whole, parts)
