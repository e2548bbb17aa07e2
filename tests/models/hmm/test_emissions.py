"""HMM emissions: the Gaussian ones against scipy and plain sums, their unconstrained
parametrisation, parameter counts against hmmlearn, and the M-step's ``previous``."""

import numpy as np
import pytest
from scipy import stats

from emkit import HMM
from emkit.distributions import Poisson
from emkit.models.hmm.emissions import GaussianEmission, GaussianMixtureEmission

pytestmark = pytest.mark.filterwarnings("ignore::emkit.exceptions.ConvergenceWarning")

COV_TYPES = ["diag", "full", "tied", "spherical"]


def _data(rng, T=700, D=3):
    return rng.normal(size=(T, D)) * [1.0, 0.5, 2.0] + [100.0, -50.0, 3.0]


def _random_cov(rng, n, D):
    A = rng.normal(size=(n, D, D))
    return A @ np.swapaxes(A, 1, 2) + D * np.eye(D)


def _gaussian_attributes(rng, K, D, cov_type):
    full = _random_cov(rng, K, D)
    cov = {
        "full": full,
        "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
        "tied": full[0],
        "spherical": np.diagonal(full, axis1=1, axis2=2).mean(axis=1),
    }[cov_type]
    return {"means": rng.normal(size=(K, D)), "covariances": cov}, full


def _mixture_attributes(rng, K, M, D, cov_type):
    full = _random_cov(rng, K * M, D).reshape(K, M, D, D)
    cov = {
        "full": full,
        "diag": np.diagonal(full, axis1=2, axis2=3).copy(),
        "tied": full[:, 0],
        "spherical": np.diagonal(full, axis1=2, axis2=3).mean(axis=2),
    }[cov_type]
    return {
        "weights": rng.dirichlet(np.ones(M), size=K),
        "means": rng.normal(size=(K, M, D)),
        "covariances": cov,
    }


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gaussian_frame_and_statistics_match_scipy_and_plain_sums(cov_type):
    rng = np.random.default_rng(0)
    X = _data(rng)
    K, D = 3, X.shape[1]
    emission = GaussianEmission(cov_type, shift=X.mean(axis=0))
    values, _ = _gaussian_attributes(rng, K, D, cov_type)
    values["means"] = values["means"] + X.mean(axis=0)
    params = emission.from_attributes(values, K, D)
    data, missing = emission.prepare(X)
    assert missing is None
    frame, works = emission.frame(params, data)
    assert works is not None  # the kernel's work arrays are kept for the statistics
    full = emission.dist.structure.to_full(
        np.asarray(emission.dist.storage(params.covariance)), K, D
    )
    for k in range(K):
        expected = stats.multivariate_normal.logpdf(X, values["means"][k], full[k])
        np.testing.assert_allclose(frame[:, k], expected, rtol=1e-10)

    weights = rng.dirichlet(np.ones(K), size=len(X))
    kept = emission.suff_stats(data, weights, params, works)
    Xc = X - X.mean(axis=0)
    np.testing.assert_allclose(kept.nk, weights.sum(axis=0), rtol=1e-12)
    # moments about the means the frame was evaluated at (exact far from the origin)
    centred = weights.T @ Xc - weights.sum(axis=0)[:, None] * np.asarray(params.mean)
    np.testing.assert_allclose(kept.s1, centred, rtol=1e-10, atol=1e-9)
    # Without the work arrays (over the memory cap) the moments are the same.
    emission.max_work = 0
    frame_capped, none = emission.frame(params, data)
    assert none is None
    np.testing.assert_array_equal(frame_capped, frame)
    scratch = emission.suff_stats(data, weights, params, none)
    for a, b in zip(kept, scratch):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gaussian_pack_unpack_round_trip(cov_type):
    rng = np.random.default_rng(1)
    K, D = 3, 2
    emission = GaussianEmission(cov_type, shift=np.zeros(D))
    params = emission.from_attributes(_gaussian_attributes(rng, K, D, cov_type)[0], K, D)
    vec = emission.pack(params)
    n_cov = emission.dist.structure.n_packed(K, D)
    assert vec.shape == (K * D + n_cov,)
    back = emission.unpack(vec, params)
    for name, value in emission.to_attributes(params).items():
        np.testing.assert_allclose(emission.to_attributes(back)[name], value, rtol=1e-12)
    vec[K * D] = 1e6  # a log variance (or log Cholesky diagonal) whose exp overflows
    with pytest.raises(ValueError, match="infinite covariance"):
        emission.unpack(vec, params)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gaussian_mixture_pack_unpack_round_trip(cov_type):
    rng = np.random.default_rng(2)
    K, M, D = 3, 2, 2
    emission = GaussianMixtureEmission(M, cov_type, shift=np.zeros(D))
    values = _mixture_attributes(rng, K, M, D, cov_type)
    params = emission.from_attributes(values, K, D)
    attrs = emission.to_attributes(params)
    for name, value in values.items():
        np.testing.assert_allclose(attrs[name], value, rtol=1e-12)
    # Tied: one matrix per state (shared by its M components), not one for all states.
    n_cov = {"full": K * M * 3, "diag": K * M * D, "tied": K * 3, "spherical": K * M}[cov_type]
    vec = emission.pack(params)
    assert vec.shape == (K * M + K * M * D + n_cov,)
    back = emission.to_attributes(emission.unpack(vec, params))
    for name, value in values.items():
        np.testing.assert_allclose(back[name], value, rtol=1e-10, atol=1e-14)


def test_gaussian_mixture_covariances_of_the_wrong_shape_are_named():
    emission = GaussianMixtureEmission(2, "tied", shift=np.zeros(2))
    values = _mixture_attributes(np.random.default_rng(3), 3, 2, 2, "full")
    with pytest.raises(ValueError, match=r"'tied' covariances must have shape \(3, 2, 2\)"):
        emission.from_attributes(values, 3, 2)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gaussian_mixture_parameter_count_matches_hmmlearn(cov_type):
    hl = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(4)
    X = _data(rng, T=300)
    K, M, D = 2, 2, X.shape[1]
    model = HMM(K, emission="gmm", n_mix=M, covariance_type=cov_type, max_iter=3).fit(X)
    n_params = (model.bic(X) + 2.0 * model.score(X)) / np.log(len(X))
    peer = hl.GMMHMM(K, n_mix=M, covariance_type=cov_type)
    peer.n_features = D
    counts = peer._get_n_fit_scalars_per_param()
    # hmmlearn counts M - 1 free weights in all; they are M - 1 per state.
    expected = sum(counts[p] for p in "stmc") + K * (M - 1)
    assert n_params == pytest.approx(expected, rel=1e-9)


class _RecordingPoisson(Poisson):
    """A Poisson that records the ``previous`` parameters its M-step receives."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def mstep(self, stats, prior=None, previous=None):
        result = super().mstep(stats, prior, previous)
        self.calls.append((previous, result))
        return result


def test_distribution_mstep_receives_the_parameters_the_estep_used():
    rng = np.random.default_rng(5)
    X = rng.poisson(np.repeat([[1.0, 5.0], [6.0, 2.0]], 150, axis=0))
    dist = _RecordingPoisson()
    HMM(2, emission=dist, max_iter=4, tol=0.0, random_state=0).fit(X)
    assert len(dist.calls) == 5  # the start, then one per iteration
    assert dist.calls[0][0] is None  # the start has no previous parameters
    for (_, used), (previous, _) in zip(dist.calls, dist.calls[1:]):
        np.testing.assert_array_equal(previous.rate, used.rate)
