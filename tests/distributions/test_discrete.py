"""Categorical, Bernoulli and Poisson: MAP-EM modes against closed forms and a direct
optimiser, log-priors against scipy.stats, and their own checks. The contract they share
with every distribution is in test_distributions.py."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from emkit.distributions.base import DirichletPrior, GammaPrior
from emkit.distributions.continuous import Exponential
from emkit.distributions.discrete import (
    Bernoulli,
    Categorical,
    CategoricalParams,
    Poisson,
    PoissonParams,
)

K, D, C = 2, 3, 4


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


def test_prior_type_is_checked():
    s = Poisson().suff_stats(np.ones((3, 1)), np.ones((3, 2)))
    with pytest.raises(TypeError, match="GammaPrior"):
        Poisson().mstep(s, DirichletPrior(2.0))
    with pytest.raises(ValueError, match="a0 >= 1"):
        Poisson().mstep(s, GammaPrior(0.5, 1.0))


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


# ------------------------------------------------------------------ bookkeeping
@pytest.mark.parametrize(
    ("dist", "expected"),
    [(Categorical(4), 2 * 3 * 3), (Bernoulli(), 2 * 3), (Poisson(), 2 * 3)],
)
def test_n_parameters(dist, expected):
    assert dist.n_parameters(2, 3) == expected


def test_hyper_parameters_are_checked():
    with pytest.raises(ValueError, match="n_categories must be >= 1"):
        Categorical(0)
    with pytest.raises(TypeError, match="n_categories must be an integer"):
        Categorical(2.5)
