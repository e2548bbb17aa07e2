"""Exponential, Gamma, LogNormal and DiagGaussian: the Gamma shape solve, accuracy far
from the origin, degenerate components and their own checks. The contract they share
with every distribution is in test_distributions.py."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import digamma
from weighted import assert_trees_close, wmean, wvar

from emkit._pytree import tree_add
from emkit.distributions.base import GammaPrior
from emkit.distributions.continuous import (
    DiagGaussian,
    Exponential,
    Gamma,
    GammaParams,
    LogNormal,
    gamma_shape_mle,
)

K = 2


# ---------------------------------------------------------------------------- Gamma
def test_gamma_shape_solves_digamma_equation():
    s = np.array([1e-4, 0.01, 0.3, 1.0, 5.0])
    a = gamma_shape_mle(s)
    np.testing.assert_allclose(np.log(a) - digamma(a), s, rtol=1e-10)
    assert Gamma.generalized is False


def test_gamma_mstep_does_not_depend_on_previous():
    rng = np.random.default_rng(24)
    X = rng.gamma(2.5, 1.5, size=(200, 3))
    dist = Gamma()
    s = dist.suff_stats(X, rng.uniform(size=(200, K)))
    far = GammaParams(shape=np.full((K, 3), 50.0), rate=np.full((K, 3), 0.01))
    assert_trees_close(dist.mstep(s, previous=far), dist.mstep(s), rtol=1e-12)


def test_gamma_has_no_prior():
    assert Gamma().log_prior(GammaParams(np.ones((K, 3)), np.ones((K, 3)))) == 0.0


# ------------------------------------------------- normal moments
def test_shift_keeps_variances_accurate_far_from_the_origin():
    rng = np.random.default_rng(20)
    X = 1e8 + rng.normal(size=(500, 2))
    w = rng.uniform(size=(500, K))
    dist = DiagGaussian(reg_var=0.0, shift=X.mean(axis=0))
    params = dist.mstep(dist.suff_stats(X, w))
    for k in range(K):
        np.testing.assert_allclose(params.mean[k], wmean(X, w[:, k]), rtol=1e-14)
        np.testing.assert_allclose(params.var[k], wvar(X, w[:, k]), rtol=1e-8)
    # additivity is kept: every batch uses the same shift
    parts = tree_add(dist.suff_stats(X[:200], w[:200]), dist.suff_stats(X[200:], w[200:]))
    assert_trees_close(parts, dist.suff_stats(X, w), rtol=1e-9, atol=1e-6)
    lognormal = LogNormal(reg_var=0.0, shift=np.log(X).mean(axis=0))
    params = lognormal.mstep(lognormal.suff_stats(X, w))
    np.testing.assert_allclose(params.sigma[0] ** 2, wvar(np.log(X), w[:, 0]), rtol=1e-6)


def test_degenerate_continuous_components_are_clear_errors():
    X = np.array([[2.0], [2.0], [2.0]])
    w = np.ones((3, 1))
    with pytest.raises(ValueError, match="zero variance"):
        DiagGaussian(reg_var=0.0).mstep(DiagGaussian().suff_stats(X, w))
    np.testing.assert_allclose(DiagGaussian(reg_var=1e-3).init_params(X, w).var, [[1e-3]])
    with pytest.raises(TypeError, match="no conjugate prior"):
        Gamma().mstep(Gamma().suff_stats(X, w), GammaPrior(2.0, 1.0))


# ------------------------------------------------------------------ bookkeeping
@pytest.mark.parametrize(
    ("dist", "expected"),
    [
        (Exponential(), 2 * 3),
        (Gamma(), 2 * 2 * 3),
        (LogNormal(), 2 * 2 * 3),
        (DiagGaussian(), 2 * 2 * 3),
    ],
)
def test_n_parameters(dist, expected):
    assert dist.n_parameters(2, 3) == expected


def test_hyper_parameters_are_checked():
    with pytest.raises(ValueError, match="reg_var"):
        DiagGaussian(reg_var=-1.0)
    with pytest.raises(ValueError, match="shift"):
        LogNormal(shift=[[0.0]])
