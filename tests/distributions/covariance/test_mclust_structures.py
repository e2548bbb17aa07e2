"""mclust's 14 parsimonious structures: parameter counts, M-steps, constraints, fits.

Independent references: mclust's ``nVarParams`` / ``nMclustParams`` formulae (R/mclust.R,
mclust 6.1.3, written out below), a direct numerical maximisation of the expected
complete-data log-likelihood (``scipy.optimize`` over the structure's own
parametrisation, densities from ``scipy.stats``), and the eigen-structure of the
fitted covariances checked with NumPy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, stats

import emkit
from emkit.distributions.covariance import MCLUST_MODELS, get_structure

# mclust's nVarParams(modelName, d, G), transcribed from R/mclust.R
N_VAR_PARAMS = {
    "EII": lambda d, G: 1,
    "VII": lambda d, G: G,
    "EEI": lambda d, G: d,
    "VEI": lambda d, G: G + (d - 1),
    "EVI": lambda d, G: 1 + G * (d - 1),
    "VVI": lambda d, G: G * d,
    "EEE": lambda d, G: d * (d + 1) / 2,
    "EVE": lambda d, G: 1 + G * (d - 1) + d * (d - 1) / 2,
    "VEE": lambda d, G: G + (d - 1) + d * (d - 1) / 2,
    "VVE": lambda d, G: G + G * (d - 1) + d * (d - 1) / 2,
    "EEV": lambda d, G: 1 + (d - 1) + G * d * (d - 1) / 2,
    "VEV": lambda d, G: G + (d - 1) + G * d * (d - 1) / 2,
    "EVV": lambda d, G: 1 - G + G * d * (d + 1) / 2,
    "VVV": lambda d, G: G * d * (d + 1) / 2,
}


def n_mclust_params(name: str, d: int, G: int) -> int:
    """mclust's nMclustParams without noise and with unequal proportions."""
    return int(N_VAR_PARAMS[name](d, G) + G * d + (G - 1))


def test_every_mclust_name_is_registered():
    assert set(MCLUST_MODELS) == set(N_VAR_PARAMS)
    for name in MCLUST_MODELS:
        assert get_structure(name).name == name


@pytest.mark.parametrize("name", MCLUST_MODELS)
@pytest.mark.parametrize("D", [1, 2, 5])
@pytest.mark.parametrize("K", [1, 3])
def test_parameter_count_is_mclusts(name, D, K):
    gm = emkit.GaussianMixture(K, covariance_type=name)
    assert gm._free_parameters(D, K) == n_mclust_params(name, D, K)
    assert get_structure(name).n_packed(K, D) == N_VAR_PARAMS[name](D, K)


def test_bic_uses_mclusts_count_and_sign():
    """mclust's BIC is 2 loglik - npar log n (larger is better); emkit's ``bic`` is
    scikit-learn's sign, so it is minus mclust's."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    gm = emkit.GaussianMixture(2, covariance_type="VEV", random_state=0).fit(X)
    mclust_bic = 2 * gm.loglik_ - n_mclust_params("VEV", 3, 2) * np.log(60)
    assert gm.bic(X) == pytest.approx(-mclust_bic, rel=1e-12)


# ---------------------------------------------------------------------- the M-step
def _moments(seed: int, K: int, D: int, n: int = 40):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) @ rng.normal(size=(D, D)) + rng.normal(size=D)
    R = rng.dirichlet(np.ones(K), size=n)
    nk = R.sum(axis=0)
    s1 = R.T @ X
    s2 = np.einsum("nk,ni,nj->kij", R, X, X)
    return X, R, nk, s1, s2


def _q(X, R, means, cov):
    """Expected complete-data log-likelihood of the components (weights left out)."""
    return sum(
        float(R[:, k] @ stats.multivariate_normal(means[k], cov[k]).logpdf(X))
        for k in range(R.shape[1])
    )


def _numerical_maximum(structure, X, R, K, D, starts=2, seed=0):
    """max of Q over the structure's own parametrisation (``unpack``) by BFGS, the means
    at the weighted means (Q's maximiser in the means whatever the covariances)."""
    rng = np.random.default_rng(seed)
    nk = R.sum(axis=0)
    means = (R.T @ X) / nk[:, None]
    resid = X[None] - means[:, None]
    W = np.einsum("kn,kni,knj->kij", R.T, resid, resid)

    def negative(theta):
        try:
            cov = structure.unpack(theta, K, D)
        except ValueError:
            return 1e10
        _, logdet = np.linalg.slogdet(cov)
        trace = np.einsum("kij,kji->k", W, np.linalg.inv(cov))
        return 0.5 * float(np.sum(nk * logdet + trace))

    best, best_theta = np.inf, None
    for s in range(starts):
        theta0 = 0.5 * s * rng.normal(size=structure.n_packed(K, D))
        res = optimize.minimize(negative, theta0, method="BFGS", options={"gtol": 1e-7})
        if res.fun < best:
            best, best_theta = res.fun, res.x
    return _q(X, R, means, structure.unpack(best_theta, K, D))


@pytest.mark.slow
@pytest.mark.parametrize("name", MCLUST_MODELS)
@pytest.mark.parametrize(("K", "D", "seed"), [(2, 2, 1), (3, 3, 2)])
def test_mstep_maximises_expected_loglik(name, K, D, seed):
    X, R, nk, s1, s2 = _moments(seed, K, D)
    st = get_structure(name)
    means, cov = st.estimate(nk, s1, st.pack_second_moments(s2), None, None, 0.0)
    ours = _q(X, R, means, cov)
    numerical = _numerical_maximum(st, X, R, K, D)
    assert ours >= numerical - 1e-6 * abs(numerical)
    # and the optimiser reaches it: the value is the maximum, not an upper bound
    assert numerical >= ours - 1e-4 * abs(ours)


@pytest.mark.parametrize("name", [n for n in MCLUST_MODELS if not get_structure(n).exact])
def test_generalized_mstep_never_lowers_q_from_the_previous_parameters(name):
    K, D = 3, 3
    X, R, nk, s1, s2 = _moments(7, K, D)
    st = get_structure(name)
    assert emkit.GaussianMixture(K, covariance_type=name)._model().generalized
    rng = np.random.default_rng(3)
    for _ in range(5):
        prev = st.unpack(rng.normal(size=st.n_packed(K, D)), K, D)
        prev_means = rng.normal(size=(K, D))
        means, cov = st.estimate(
            nk, s1, st.pack_second_moments(s2), prev_means, st.precision_cholesky(prev), 0.0
        )
        assert _q(X, R, means, cov) >= _q(X, R, prev_means, prev) - 1e-9


# ---------------------------------------------------------------------- constraints
def _volumes_shapes(cov):
    vals, vecs = np.linalg.eigh(cov)
    vol = np.exp(np.mean(np.log(vals), axis=1))
    return vol, vals / vol[:, None], vecs


def _check_structure(name, cov):
    """The fitted covariances satisfy the structure, checked from their eigen-structure."""
    volume, shape, orientation = name
    K = cov.shape[0]
    vol, _, _ = _volumes_shapes(cov)
    if volume == "E":
        np.testing.assert_allclose(vol, vol[0], rtol=1e-8)
    if orientation == "I":  # axis-aligned
        off = cov - np.stack([np.diag(np.diag(c)) for c in cov])
        np.testing.assert_allclose(off, 0.0, atol=1e-10 * np.abs(cov).max())
        shapes = np.diagonal(cov, axis1=1, axis2=2) / vol[:, None]
    elif orientation == "E":  # the covariances commute: one set of eigenvectors
        for k in range(K):
            np.testing.assert_allclose(
                cov[0] @ cov[k], cov[k] @ cov[0], atol=1e-8 * np.abs(cov).max() ** 2
            )
        _, vecs = np.linalg.eigh(cov[0] + 0.37 * cov[-1])
        shapes = np.einsum("ji,kjl,li->ki", vecs, cov, vecs) / vol[:, None]
    else:
        shapes = np.sort(np.linalg.eigvalsh(cov) / vol[:, None], axis=1)
    if shape == "I":
        np.testing.assert_allclose(shapes, 1.0, rtol=1e-8)
    if shape == "E":
        np.testing.assert_allclose(shapes, np.broadcast_to(shapes[0], shapes.shape), rtol=1e-7)


def _data(seed=5, n=240):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-3.0, 4.0, 2.0]])
    X = np.vstack([c + rng.normal(size=(n // 3, 3)) @ rng.normal(size=(3, 3)) for c in centres])
    return X + 1e6  # far from the origin: nothing may depend on the offset


@pytest.fixture(scope="module")
def fits():
    X = _data()
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", emkit.MonotonicityWarning)
        for name in MCLUST_MODELS:
            out[name] = emkit.GaussianMixture(
                3, covariance_type=name, n_init=2, tol=1e-8, max_iter=500, random_state=0
            ).fit(X)
    return X, out


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_fitted_covariances_have_the_structure_and_decomposition(name, fits):
    _, models = fits
    gm = models[name]
    assert gm.covariances_.shape == (3, 3, 3)
    _check_structure(name, gm.covariances_)
    again = gm.volume_[:, None, None] * np.einsum(
        "kij,kj,klj->kil", gm.orientation_, gm.shape_, gm.orientation_
    )
    np.testing.assert_allclose(again, gm.covariances_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.prod(gm.shape_, axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(gm.volume_, np.linalg.det(gm.covariances_) ** (1 / 3), rtol=1e-8)


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_nesting_orders_the_likelihoods(name, fits):
    """A structure never fits better than VVV, which contains it (same data, K)."""
    _, models = fits
    assert models[name].loglik_ <= models["VVV"].loglik_ + 1e-6 * abs(models["VVV"].loglik_)


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_loglik_never_decreases_with_every_engine_variant(name):
    X = _data(seed=9, n=150)
    common = dict(covariance_type=name, random_state=1, check_monotone="raise", tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", emkit.MonotonicityWarning)
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        plain = emkit.GaussianMixture(3, max_iter=300, **common).fit(X)
        assert np.all(np.diff(plain.history_) >= -1e-9 * np.abs(plain.history_[1:]))
        sq = emkit.GaussianMixture(3, max_iter=100, accel="squarem", **common).fit(X)
        assert sq.loglik_ >= plain.loglik_ - 1e-3 * abs(plain.loglik_)
        emkit.GaussianMixture(3, max_iter=50, variant="hard", **common).fit(X)
    # the score agrees with scipy's densities at the fitted parameters
    dens = sum(
        w * stats.multivariate_normal(m, c).pdf(X)
        for w, m, c in zip(plain.weights_, plain.means_, plain.covariances_)
    )
    assert plain.loglik_ == pytest.approx(np.log(dens).sum(), rel=1e-9)


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_other_options_work_with_every_structure(name, tmp_path):
    rng = np.random.default_rng(11)
    X = _data(seed=11, n=120)
    X[rng.random(X.shape) < 0.05] = np.nan
    w = rng.uniform(0.5, 2.0, size=len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error", emkit.MonotonicityWarning)
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        gm = emkit.GaussianMixture(
            2, covariance_type=name, n_init=2, init="hc", random_state=0, max_iter=200
        ).fit(X, sample_weight=w)
    _check_structure(name, gm.covariances_)
    gm.save(tmp_path / "m.npz")
    back = emkit.load(tmp_path / "m.npz")
    assert back.covariance_type == name
    np.testing.assert_array_equal(back.covariances_, gm.covariances_)
    np.testing.assert_array_equal(back.predict_proba(X), gm.predict_proba(X))
    np.testing.assert_allclose(back.volume_, gm.volume_)
    # a start from the fitted parameters (an init dict) is a fixed point of EM
    again = emkit.GaussianMixture(
        2,
        covariance_type=name,
        init={"weights": gm.weights_, "means": gm.means_, "covariances": gm.covariances_},
        max_iter=3,
        tol=0.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        again.fit(X, sample_weight=w)
    assert again.loglik_ >= gm.loglik_ - 1e-6 * abs(gm.loglik_)


def test_covariances_without_the_structure_are_refused():
    X = _data(n=60)
    bad = np.stack([np.diag([1.0, 2.0, 3.0]), np.diag([1.0, 1.0, 1.0])])
    gm = emkit.GaussianMixture(2, covariance_type="EII", init={"covariances": bad, "means": X[:2]})
    with pytest.raises(ValueError, match="EII structure"):
        gm.fit(X)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        emkit.GaussianMixture(2, covariance_type="XYZ").fit(X)
    with pytest.raises(ValueError, match="unknown mclust model"):
        from emkit.distributions.covariance.eigen import Parsimonious

        Parsimonious("VVX")


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_pack_round_trip(name):
    st = get_structure(name)
    rng = np.random.default_rng(4)
    cov = st.unpack(rng.normal(size=st.n_packed(3, 4)), 3, 4)
    np.testing.assert_allclose(st.unpack(st.pack(cov), 3, 4), cov, rtol=1e-8, atol=1e-12)
    _check_structure(name, cov)


@pytest.mark.parametrize("name", ["VEI", "EVE", "VEV", "EEV"])
def test_exact_whatever_the_offset(name):
    """The same fit, to 1e-7, for the data and the data moved 1e8 away (spread ~1)."""
    X = _data(seed=21, n=150) - 1e6
    fits = []
    for offset in (0.0, 1e8):
        with warnings.catch_warnings():
            warnings.simplefilter("error", emkit.MonotonicityWarning)
            warnings.simplefilter("ignore", emkit.ConvergenceWarning)
            fits.append(
                emkit.GaussianMixture(
                    3, covariance_type=name, init="hc", tol=1e-10, max_iter=200
                ).fit(X + offset)
            )
    near, far = fits
    assert far.loglik_ == pytest.approx(near.loglik_, rel=1e-7)
    np.testing.assert_allclose(far.means_ - 1e8, near.means_, atol=1e-6)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-6, atol=1e-9)
