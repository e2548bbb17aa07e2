"""Iterative M-steps against fits that R mclust publishes (mclust 6.1.3's vignette, "A
quick tour of mclust", inst/doc/mclust.html).

* ``MclustDA(iris[, 1:4], iris$Species, modelType = "EDDA")`` chooses VEV with one
  component per class: log-likelihood -187.7097, df 38, BIC -565.8236 (mclust's sign,
  ``2 loglik - df log n``). EDDA's fit is one M-step from the known classes (each class
  a component, proportions 1/3), and its log-likelihood is that of the mixture of the
  classes, ``sum_i log sum_c (1/3) N(x_i | mu_c, Sigma_c)``: a test of the VEV M-step
  alone (no EM, no start).
* ``MclustDA(banknote[, -1], banknote$Status)`` chooses EVE with 2 components for the
  counterfeit notes and one (EEE) for the genuine ones: log-likelihood -646.0801 (the
  mixture of the two classes with proportions 1/2), df 67, BIC -1647.147. The EVE fit
  is EM from mclust's start (hc), a test of the EVE M-step (Browne & McNicholas'
  orientation updates) and of ``init="hc"``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import emkit
from emkit.datasets import load_iris
from emkit.distributions.covariance import get_structure

DATA = Path(__file__).resolve().parents[2] / "data"


def test_iris_edda_vev_matches_mclust():
    X, _ = load_iris()
    y = np.repeat(np.arange(3), 50)  # the embedded iris is in R's order: 50 of each species
    st = get_structure("VEV")
    R = np.eye(3)[y]
    nk = R.sum(axis=0)
    s2 = np.einsum("nk,ni,nj->kij", R, X, X)
    means, cov = st.estimate(nk, R.T @ X, st.pack_second_moments(s2), None, None, 0.0)
    lp = np.column_stack(
        [stats.multivariate_normal(means[c], cov[c]).logpdf(X) for c in range(3)]
    ) + np.log(1 / 3)
    loglik = logsumexp(lp, axis=1).sum()
    assert loglik == pytest.approx(-187.7097, abs=1e-4)
    df = 3 * 4 + st.n_parameters(3, 4) + 2
    assert df == 38
    assert 2 * loglik - df * np.log(150) == pytest.approx(-565.8236, abs=1e-3)


def test_banknote_eve_matches_mclust():
    raw = np.genfromtxt(DATA / "banknote.csv", delimiter=",", skip_header=1, dtype=str)
    counterfeit = raw[:, 0] == "counterfeit"
    X = raw[:, 1:].astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error", emkit.MonotonicityWarning)
        eve = emkit.GaussianMixture(
            2, covariance_type="EVE", init="hc", tol=1e-10, max_iter=5000, reg_covar=0.0
        ).fit(X[counterfeit])
    eee = emkit.GaussianMixture(1, covariance_type="EEE", reg_covar=0.0).fit(X[~counterfeit])
    lp = np.column_stack([eve.score_samples(X), eee.score_samples(X)]) + np.log(0.5)
    loglik = logsumexp(lp, axis=1).sum()
    assert loglik == pytest.approx(-646.0801, rel=1e-6)
    df = eve._n_parameters() + eee._n_parameters() + 1
    assert df == 67
    assert 2 * loglik - df * np.log(200) == pytest.approx(-1647.147, abs=1e-2)
