"""Points so far away that every density underflows: posteriors stay finite, rows sum
to 1, and they are the limit that the ordinary path (checked with scipy) reaches along
the same direction; log-likelihoods are -inf, never NaN."""

import warnings

import numpy as np
import pytest
from scipy import stats

import emkit
from emkit.distributions import Gaussian

DIRECTIONS = np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.02], [0.3, -1.0]])


def _data():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(100, 2)) * s + m for s, m in ((1, 0), (2, 5), (0.5, -4))])


def _fitted():
    X = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            f"gmm-{ct}": emkit.GaussianMixture(3, covariance_type=ct, random_state=0).fit(X)
            for ct in ("full", "diag", "tied", "spherical")
        }
        out["mixture"] = emkit.Mixture(Gaussian("full"), 3, random_state=0).fit(X)
        out["student-t"] = emkit.StudentTMixture(3, random_state=0).fit(X)
        out["hmm"] = emkit.HMM(3, random_state=0).fit(X)
    return out


FITTED = _fitted()


def _gaussian_argmax(est, x):
    """The most probable component at a moderately far point, by scipy (Gaussians) or
    by the estimator's own ordinary path (t), where nothing underflows yet."""
    if not hasattr(est, "covariance_type") or isinstance(est, emkit.StudentTMixture):
        return int(np.argmax(est.predict_proba(x[None])))
    means = est.means_
    st = emkit.distributions.covariance.get_structure(est.covariance_type)
    covs = st.to_full(np.asarray(est.covariances_), *means.shape)
    weights = est.startprob_ * 0 + 1 if isinstance(est, emkit.HMM) else est.weights_
    lp = [
        np.log(w) + stats.multivariate_normal(m, c).logpdf(x)
        for w, m, c in zip(weights, means, covs)
    ]
    return int(np.argmax(lp))


@pytest.mark.parametrize("name", sorted(FITTED))
def test_far_points_get_the_limit_posterior(name):
    est = FITTED[name]
    for direction in DIRECTIONS:
        near = _gaussian_argmax(est, 1e4 * direction)  # log-densities ~ -1e8: no underflow
        for t in (1e160, 1e250, 1e300):
            x = (t * direction)[None]
            proba = est.predict_proba(x)
            assert np.all(np.isfinite(proba)) and proba.sum() == pytest.approx(1.0)
            assert int(np.argmax(proba)) == near, (direction, t)
    if isinstance(est, emkit.HMM):
        assert est.score(1e300 * DIRECTIONS) == -np.inf
    else:
        scores = est.score_samples(1e300 * DIRECTIONS)
        assert np.all(scores == -np.inf)
        assert not np.isnan(est.score_samples(np.array([[1e200, 1e200]]))).any()


SCALES = [1e-150, 1e-10, 1e-3, 1e-2, 1e2, 1e10, 1e100, 1e200]


@pytest.mark.parametrize(
    "make",
    [
        lambda: emkit.GaussianMixture(3, random_state=0),
        lambda: emkit.GaussianMixture(3, covariance_type="spherical", random_state=0),
        lambda: emkit.StudentTMixture(3, random_state=0),
        lambda: emkit.Mixture(Gaussian("diag"), 3, random_state=0),
        lambda: emkit.HMM(3, random_state=0),
    ],
)
def test_a_rescaled_fit_gives_the_same_labels_or_says_how_to_rescale(make):
    X = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = make().fit(X).predict(X)
        for c in SCALES:
            try:
                labels = make().fit(X * c).predict(X * c)
            except ValueError as exc:
                assert (
                    "rescale" in str(exc) or "standardise X" in str(exc) or "divide X" in str(exc)
                )
                assert c < 1e-2 or c > 1e100, c  # only scales a Gaussian fit cannot hold
                continue
            # the same partition, up to the components' order
            pairs = set(zip(base.tolist(), labels.tolist()))
            assert len(pairs) == 3, c
