"""Distributions: log-densities against scipy.stats, M-steps against weighted MLEs
computed independently, additive statistics, MAP modes, sampling moments, bad input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy import optimize, stats

from emkit._pytree import tree_add, tree_leaves, tree_map
from emkit.distributions.exponential_family import (
    Bernoulli,
    BernoulliParams,
    Categorical,
    CategoricalParams,
    DiagGaussian,
    DiagGaussianParams,
    DirichletPrior,
    Distribution,
    Exponential,
    ExponentialParams,
    Gamma,
    GammaParams,
    GammaPrior,
    Independent,
    LogNormal,
    LogNormalParams,
    Poisson,
    PoissonParams,
    component,
    gamma_shape_mle,
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


def _wmean(X, w):
    return (w[:, None] * X).sum(axis=0) / w.sum()


def _wvar(X, w):
    return (w[:, None] * (X - _wmean(X, w)) ** 2).sum(axis=0) / w.sum()


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
        lambda X, w: BernoulliParams(probs=_wmean(X, w)),
        lambda p, x: [(x.mean(axis=0), p.probs)],
    ),
    "poisson": Case(
        Poisson(),
        lambda rng, n: rng.poisson(3.0, size=(n, D)),
        lambda rng: PoissonParams(rate=rng.uniform(0.5, 8.0, size=(K, D))),
        lambda p, X: stats.poisson.logpmf(X, p.rate).sum(axis=1),
        lambda X, w: PoissonParams(rate=_wmean(X, w)),
        lambda p, x: [(x.mean(axis=0), p.rate), (x.var(axis=0), p.rate)],
    ),
    "exponential": Case(
        Exponential(),
        lambda rng, n: rng.exponential(2.0, size=(n, D)),
        lambda rng: ExponentialParams(rate=rng.uniform(0.2, 5.0, size=(K, D))),
        lambda p, X: stats.expon.logpdf(X, scale=1.0 / p.rate).sum(axis=1),
        lambda X, w: ExponentialParams(rate=1.0 / _wmean(X, w)),
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
        lambda X, w: LogNormalParams(mu=_wmean(np.log(X), w), sigma=np.sqrt(_wvar(np.log(X), w))),
        lambda p, x: [(np.log(x).mean(axis=0), p.mu), (np.log(x).std(axis=0), p.sigma)],
    ),
    "diag_gaussian": Case(
        DiagGaussian(reg_var=0.0),
        lambda rng, n: rng.normal(1.0, 2.0, size=(n, D)),
        lambda rng: DiagGaussianParams(
            mean=rng.normal(size=(K, D)) * 3, var=rng.uniform(0.1, 4.0, size=(K, D))
        ),
        lambda p, X: stats.norm.logpdf(X, p.mean, np.sqrt(p.var)).sum(axis=1),
        lambda X, w: DiagGaussianParams(mean=_wmean(X, w), var=_wvar(X, w)),
        lambda p, x: [(x.mean(axis=0), p.mean), (x.var(axis=0), p.var)],
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(request) -> Case:
    return CASES[request.param]


def _assert_trees_close(a, b, rtol=1e-10, atol=1e-12):
    for x, y in zip(tree_leaves(a), tree_leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def _mixed() -> tuple[Independent, Callable[[np.random.Generator, int], np.ndarray]]:
    dist = Independent({(0, 3): DiagGaussian(reg_var=0.0), 1: Poisson(), (2,): Categorical(3)})

    def data(rng, n):
        return np.column_stack(
            [rng.normal(size=n), rng.poisson(2.0, n), rng.integers(0, 3, n), rng.normal(size=n)]
        )

    return dist, data


# ------------------------------------------------------------------ log-densities
def test_log_prob_matches_scipy(case):
    rng = np.random.default_rng(0)
    X = case.dist.validate(case.data(rng, 50))
    params = case.params(rng)
    got = case.dist.log_prob(params, X)
    assert got.shape == (50, K)
    for k in range(K):
        np.testing.assert_allclose(got[:, k], case.logpdf(component(params, k), X), rtol=1e-10)


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


# ------------------------------------------------------------------------ M-steps
def test_weighted_mstep_is_weighted_mle(case):
    rng = np.random.default_rng(2)
    X = case.dist.validate(case.data(rng, 300))
    w = rng.uniform(0.0, 1.0, size=(300, K))
    params = case.dist.mstep(case.dist.suff_stats(X, w))
    rtol = 1e-5 if isinstance(case.dist, Gamma) else 1e-10
    for k in range(K):
        _assert_trees_close(component(params, k), case.mle(X, w[:, k]), rtol=rtol)


def test_init_params_is_mstep_of_responsibilities(case):
    rng = np.random.default_rng(3)
    X = case.data(rng, 100)
    resp = rng.dirichlet(np.ones(K), size=100)
    expected = case.dist.mstep(case.dist.suff_stats(case.dist.validate(X), resp))
    _assert_trees_close(case.dist.init_params(X, resp, rng), expected)


def test_independent_mstep_is_parts_mle():
    rng = np.random.default_rng(4)
    dist, data = _mixed()
    X = dist.validate(data(rng, 200))
    w = rng.uniform(size=(200, K))
    gauss, pois, cat = dist.mstep(dist.suff_stats(X, w))
    for k in range(K):
        wk = w[:, k]
        np.testing.assert_allclose(gauss.mean[k], _wmean(X[:, [0, 3]], wk))
        np.testing.assert_allclose(gauss.var[k], _wvar(X[:, [0, 3]], wk))
        np.testing.assert_allclose(pois.rate[k], _wmean(X[:, [1]], wk))
        freq = [wk[X[:, 2] == c].sum() / wk.sum() for c in range(3)]
        np.testing.assert_allclose(cat.probs[k, 0], freq)


def test_gamma_shape_solves_digamma_equation():
    s = np.array([1e-4, 0.01, 0.3, 1.0, 5.0])
    a = gamma_shape_mle(s)
    from scipy.special import digamma

    np.testing.assert_allclose(np.log(a) - digamma(a), s, rtol=1e-10)
    assert Gamma.generalized is False


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
    _assert_trees_close(tree_add(a, b), case.dist.suff_stats(X, w))


def test_independent_stats_are_additive():
    rng = np.random.default_rng(7)
    dist, data = _mixed()
    X = dist.validate(data(rng, 90))
    w = rng.uniform(size=(90, K))
    whole = dist.suff_stats(X, w)
    parts = tree_add(dist.suff_stats(X[:50], w[:50]), dist.suff_stats(X[50:], w[50:]))
    _assert_trees_close(parts, whole)
    assert tree_map(np.shape, parts) == tree_map(np.shape, whole)


# ---------------------------------------------------------------------------- MAP
def test_categorical_map_is_dirichlet_mode():
    rng = np.random.default_rng(8)
    dist = Categorical(C)
    X = rng.integers(0, C, size=(60, D))
    w = rng.uniform(size=(60, K))
    alpha = np.array([1.0, 2.5, 4.0, 1.5])
    params = dist.mstep(dist.suff_stats(dist.validate(X), w), DirichletPrior(alpha))
    for k in range(K):
        for d in range(D):
            n = np.array([w[X[:, d] == c, k].sum() for c in range(C)])
            mode = (n + alpha - 1) / (n.sum() + alpha.sum() - C)
            np.testing.assert_allclose(params.probs[k, d], mode)


def test_bernoulli_map_is_beta_mode():
    rng = np.random.default_rng(9)
    dist = Bernoulli()
    X = (rng.random((40, D)) < 0.2).astype(float)
    w = rng.uniform(size=(40, K))
    a0, a1 = 3.0, 2.0  # pseudo-counts for 0 and for 1
    params = dist.mstep(dist.suff_stats(X, w), DirichletPrior(np.array([a0, a1])))
    for k in range(K):
        ones = (w[:, k, None] * X).sum(axis=0)
        np.testing.assert_allclose(params.probs[k], (ones + a1 - 1) / (w[:, k].sum() + a0 + a1 - 2))


@pytest.mark.parametrize("dist", [Poisson(), Exponential()], ids=["poisson", "exponential"])
def test_rate_map_maximises_log_posterior(dist):
    rng = np.random.default_rng(10)
    X = rng.poisson(4.0, size=(30, 1)) + 1.0
    w = rng.uniform(size=(30, K))
    prior = GammaPrior(a0=3.0, b0=2.0)
    params = dist.mstep(dist.suff_stats(X, w), prior)
    logpdf = {
        "Poisson": lambda x, r: stats.poisson.logpmf(x, r),
        "Exponential": lambda x, r: stats.expon.logpdf(x, scale=1.0 / r),
    }[dist.name]
    for k in range(K):

        def neg_post(r, k=k):
            return -(
                np.sum(w[:, k] * logpdf(X[:, 0], r))
                + stats.gamma.logpdf(r, prior.a0, scale=1.0 / prior.b0)
            )

        best = optimize.minimize_scalar(
            neg_post, bounds=(1e-6, 50), method="bounded", options={"xatol": 1e-10}
        )
        np.testing.assert_allclose(params.rate[k, 0], best.x, rtol=1e-6)


def test_poisson_map_closed_form():
    dist = Poisson()
    X = np.array([[0.0], [2.0], [5.0]])
    w = np.array([[1.0, 0.5], [1.0, 0.5], [1.0, 0.0]])
    params = dist.mstep(dist.suff_stats(X, w), GammaPrior(a0=2.0, b0=1.0))
    np.testing.assert_allclose(params.rate[:, 0], [(7 + 1) / (3 + 1), (1 + 1) / (1 + 1)])


def test_flat_prior_is_mle(case):
    rng = np.random.default_rng(11)
    X = case.dist.validate(case.data(rng, 50))
    s = case.dist.suff_stats(X, rng.uniform(size=(50, K)))
    _assert_trees_close(case.dist.mstep(s, None), case.dist.mstep(s))


def test_prior_type_is_checked():
    s = Poisson().suff_stats(np.ones((3, 1)), np.ones((3, 2)))
    with pytest.raises(TypeError, match="GammaPrior"):
        Poisson().mstep(s, DirichletPrior(2.0))
    with pytest.raises(ValueError, match="a0 >= 1"):
        Poisson().mstep(s, GammaPrior(0.5, 1.0))


# ------------------------------------------------------------------------ samples
def test_sample_moments_match_parameters(case):
    rng = np.random.default_rng(12)
    params_k = component(case.params(rng), 1)
    x = case.dist.sample(params_k, 200_000, rng)
    assert x.shape == (200_000, D)
    case.dist.validate(x)
    for got, expected in case.moments(params_k, x):
        np.testing.assert_allclose(got, expected, rtol=0.03, atol=0.01)


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


def test_weights_shape_is_checked(case):
    X = case.dist.validate(case.data(np.random.default_rng(15), 10))
    with pytest.raises(ValueError, match="weights must have shape"):
        case.dist.suff_stats(X, np.ones(10))


# ------------------------------------------------------------------ bookkeeping
@pytest.mark.parametrize(
    ("dist", "expected"),
    [
        (Categorical(4), 2 * 3 * 3),
        (Bernoulli(), 2 * 3),
        (Poisson(), 2 * 3),
        (Exponential(), 2 * 3),
        (Gamma(), 2 * 2 * 3),
        (LogNormal(), 2 * 2 * 3),
        (DiagGaussian(), 2 * 2 * 3),
    ],
)
def test_n_parameters(dist, expected):
    assert dist.n_parameters(2, 3) == expected


def test_independent_n_parameters_and_generalized():
    dist, _ = _mixed()
    assert dist.n_parameters(2, 4) == 2 * 2 * 2 + 2 + 2 * 2
    assert dist.generalized is False


def test_params_are_immutable(case):
    params = case.params(np.random.default_rng(16))
    with pytest.raises(AttributeError):
        params.__setattr__(params._fields[0], None)


def test_log_prior_matches_scipy_up_to_a_constant():
    rng = np.random.default_rng(17)
    alpha = np.array([1.5, 2.0, 3.0, 1.0])
    p1, p2 = (CategoricalParams(probs=rng.dirichlet(np.ones(C), size=(K, D))) for _ in range(2))
    dist = Categorical(C)

    def scipy_dirichlet(p):
        return sum(stats.dirichlet.logpdf(p.probs[k, d], alpha) for k in range(K) for d in range(D))

    np.testing.assert_allclose(
        dist.log_prior(p1, DirichletPrior(alpha)) - dist.log_prior(p2, DirichletPrior(alpha)),
        scipy_dirichlet(p1) - scipy_dirichlet(p2),
    )
    prior = GammaPrior(a0=2.5, b0=1.5)
    r1, r2 = (PoissonParams(rate=rng.uniform(0.5, 3.0, size=(K, D))) for _ in range(2))

    def scipy_gamma(p):
        return stats.gamma.logpdf(p.rate, prior.a0, scale=1.0 / prior.b0).sum()

    np.testing.assert_allclose(
        Poisson().log_prior(r1, prior) - Poisson().log_prior(r2, prior),
        scipy_gamma(r1) - scipy_gamma(r2),
    )
    assert Gamma().log_prior(GammaParams(np.ones((K, D)), np.ones((K, D)))) == 0.0


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


def test_mixture_em_on_independent_is_monotone():
    rng = np.random.default_rng(19)
    dist, data = _mixed()
    X = dist.validate(data(rng, 300))
    history = _mixture_em_history(dist, X, rng.dirichlet(np.ones(K), size=300))
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))


def test_hyper_parameters_are_checked():
    with pytest.raises(ValueError, match="n_categories must be >= 1"):
        Categorical(0)
    with pytest.raises(TypeError, match="n_categories must be an integer"):
        Categorical(2.5)
    with pytest.raises(ValueError, match="reg_var"):
        DiagGaussian(reg_var=-1.0)


def test_shift_keeps_variances_accurate_far_from_the_origin():
    rng = np.random.default_rng(20)
    X = 1e8 + rng.normal(size=(500, 2))
    w = rng.uniform(size=(500, K))
    dist = DiagGaussian(reg_var=0.0, shift=X.mean(axis=0))
    params = dist.mstep(dist.suff_stats(X, w))
    for k in range(K):
        np.testing.assert_allclose(params.mean[k], _wmean(X, w[:, k]), rtol=1e-14)
        np.testing.assert_allclose(params.var[k], _wvar(X, w[:, k]), rtol=1e-8)
    # additivity is kept: every batch uses the same shift
    parts = tree_add(dist.suff_stats(X[:200], w[:200]), dist.suff_stats(X[200:], w[200:]))
    _assert_trees_close(parts, dist.suff_stats(X, w), rtol=1e-9, atol=1e-6)
    lognormal = LogNormal(reg_var=0.0, shift=np.log(X).mean(axis=0))
    params = lognormal.mstep(lognormal.suff_stats(X, w))
    np.testing.assert_allclose(params.sigma[0] ** 2, _wvar(np.log(X), w[:, 0]), rtol=1e-6)


def test_degenerate_continuous_components_are_clear_errors():
    X = np.array([[2.0], [2.0], [2.0]])
    w = np.ones((3, 1))
    with pytest.raises(ValueError, match="zero variance"):
        DiagGaussian(reg_var=0.0).mstep(DiagGaussian().suff_stats(X, w))
    np.testing.assert_allclose(DiagGaussian(reg_var=1e-3).init_params(X, w).var, [[1e-3]])
    with pytest.raises(TypeError, match="no conjugate prior"):
        Gamma().mstep(Gamma().suff_stats(X, w), GammaPrior(2.0, 1.0))


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
        _assert_trees_close(got, expected, rtol=1e-7, atol=1e-9)


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
    _assert_trees_close(whole, parts)
