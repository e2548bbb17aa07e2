"""SQUAREM (``emkit.em(..., accel="squarem")``) against answers known independently.

References used here:

* the genetic-linkage example of Dempster, Laird & Rubin (1977, JRSS-B 39, section 1):
  counts (125, 18, 20, 34) in four cells with probabilities (1/2 + θ/4, (1-θ)/4,
  (1-θ)/4, θ/4). The MLE is the positive root of 197 θ² - 15 θ - 68 = 0
  (0.6268214980 in the paper), and Table 1 lists the plain EM iterates from θ = 0.5;
* a two-component univariate Gaussian mixture with unit variances and equal weights,
  only the means estimated, whose MLE is found by scipy.optimize on the observed-data
  log-likelihood (BFGS, then a root of the analytic score);
* for Gaussian mixtures, plain EM run to a tight tolerance from the same start, and
  scipy.stats for the log-likelihood of the returned parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special

import emkit
from emkit._pytree import tree_ravel
from emkit.engine import Reseeded
from emkit.engine.accel import SQUAREM, flat_coordinates
from emkit.models.mixture.gaussian_model import GaussianMixtureModel
from emkit.models.mixture.model import MixtureModel, MixtureParams

COV_TYPES = ["full", "diag", "tied", "spherical"]

# ----------------------------------------------------------------------------- linkage model

COUNTS = np.array([125, 18, 20, 34])
#: positive root of 197 θ² - 15 θ - 68 = 0 (DLR 1977, section 1)
THETA_HAT = (15.0 + math.sqrt(15.0**2 + 4 * 197 * 68)) / (2 * 197)
#: DLR (1977), Table 1: plain EM iterates from θ = 0.5
DLR_ITERATES = [0.5, 0.608247423, 0.624321051, 0.626488879, 0.626777323, 0.626815632]


def cell_probs(theta: float) -> np.ndarray:
    return np.array([0.5 + theta / 4, (1 - theta) / 4, (1 - theta) / 4, theta / 4])


def linkage_loglik(theta: float) -> float:
    return float(np.dot(COUNTS, np.log(cell_probs(theta))))


class LinkageModel:
    """One row per animal (its cell); params ``{"theta": 0-d array}``; no pack/unpack hooks."""

    def init_params(self, data, rng):
        return {"theta": np.array(0.5)}

    def estep(self, params, batch):
        theta = float(params["theta"])
        counts = np.bincount(batch, minlength=4).astype(np.float64)
        p = cell_probs(theta)
        return {"split": np.array(counts[0] * p[3] / p[0]), "counts": counts}, float(
            counts @ np.log(p)
        )

    def mstep(self, stats, params):
        yes = stats["split"] + stats["counts"][3]
        no = stats["counts"][1] + stats["counts"][2]
        return {"theta": np.array(yes / (yes + no))}


LINKAGE_DATA = np.repeat(np.arange(4), COUNTS)


def test_published_mle_is_the_root():
    assert THETA_HAT == pytest.approx(0.6268214980, abs=1e-9)


@pytest.mark.parametrize("accel", [None, "squarem"])
@pytest.mark.parametrize("start", [0.05, 0.5, 0.95])
def test_linkage_reaches_the_mle(accel, start):
    result = emkit.em(
        LinkageModel(),
        LINKAGE_DATA,
        init={"theta": np.array(start)},
        tol=1e-15,
        max_iter=200,
        accel=accel,
        check_monotone="raise",
    )
    assert result.converged
    assert abs(float(result.params["theta"]) - THETA_HAT) < 1e-8
    # the returned parameters come with their own log-likelihood
    assert result.loglik == pytest.approx(linkage_loglik(float(result.params["theta"])), abs=1e-9)
    assert result.history[-1] == result.objective


def test_squarem_is_plain_em_when_every_extrapolation_is_rejected():
    # Steps of |alpha| >= 250 from θ = 0.5 leave (0, 1): every θ' gives a NaN
    # log-likelihood, so each cycle must end at θ2, two plain EM steps (DLR Table 1).
    seen = []
    scheme = SQUAREM(step_min=1000.0, step_max0=1000.0, max_backtrack=2)
    result = emkit.em(
        LinkageModel(),
        LINKAGE_DATA,
        init={"theta": np.array(0.5)},
        tol=0.0,
        max_iter=2,
        scheme=scheme,
        check_monotone="raise",
        callback=lambda info: seen.append(float(info.params["theta"])),
    )
    np.testing.assert_allclose(seen, DLR_ITERATES[0:5:2], atol=1e-9)
    assert result.n_iter == 2
    # the start, then per cycle two EM steps and three rejected trials (one E-step each)
    assert result.n_estep == 1 + 2 * (2 + 3)


# ----------------------------------------------------------------------------- 2-means model

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class TwoMeansModel:
    """0.5 N(mu_0, 1) + 0.5 N(mu_1, 1); params ``{"mu": (2,)}``; no pack/unpack hooks."""

    def init_params(self, data, rng):
        return {"mu": np.array([-0.1, 0.1])}

    def estep(self, params, x):
        a = -0.5 * (x - params["mu"][0]) ** 2
        b = -0.5 * (x - params["mu"][1]) ** 2
        rows = np.logaddexp(a, b)
        r0 = np.exp(a - rows)
        r1 = 1.0 - r0
        stats = {"n": np.array([r0.sum(), r1.sum()]), "sx": np.array([r0 @ x, r1 @ x])}
        return stats, float(rows.sum()) - len(x) * (math.log(2.0) + _HALF_LOG_2PI)

    def mstep(self, stats, params):
        return {"mu": stats["sx"] / stats["n"]}


def _two_means_mle(x: np.ndarray) -> tuple[np.ndarray, float]:
    """MLE of the two means by scipy: BFGS on the negative log-likelihood, then a root
    of the analytic score; and the maximum log-likelihood."""

    def nll(mu):
        lj = -0.5 * (x[:, None] - mu) ** 2
        return -special.logsumexp(lj, axis=1).sum() + len(x) * (math.log(2.0) + _HALF_LOG_2PI)

    def score(mu):
        lj = -0.5 * (x[:, None] - mu) ** 2
        resp = np.exp(lj - special.logsumexp(lj, axis=1, keepdims=True))
        return (resp * (x[:, None] - mu)).sum(axis=0)

    first = optimize.minimize(nll, [-1.0, 1.0], jac=lambda m: -score(m), method="BFGS")
    mu = np.sort(optimize.root(score, first.x).x)
    # the observed information is about n / 4 per mean: a score below 1e-8 puts the
    # root within about 1e-11 of the MLE
    assert np.abs(score(mu)).max() < 1e-8
    return mu, -nll(mu)


@pytest.fixture(scope="module")
def two_means_data():
    rng = np.random.default_rng(0)
    n = 5000
    return np.where(rng.random(n) < 0.5, -0.5, 0.5) + rng.normal(size=n)


def test_two_means_squarem_reaches_the_mle_in_fewer_esteps(two_means_data):
    x = two_means_data
    mle, max_loglik = _two_means_mle(x)
    fits = {
        accel: emkit.em(
            TwoMeansModel(), x, tol=0.0, max_iter=10_000, accel=accel, check_monotone="raise"
        )
        for accel in (None, "squarem")
    }
    plain, squarem = fits[None], fits["squarem"]
    assert squarem.converged and plain.converged
    np.testing.assert_allclose(np.sort(squarem.params["mu"]), mle, rtol=0, atol=1e-8)
    # Plain EM converges slowly here; stopped by the change of the log-likelihood, which
    # resolves parameters only to about sqrt(machine epsilon), it is a few 1e-8 away.
    np.testing.assert_allclose(np.sort(plain.params["mu"]), mle, rtol=0, atol=1e-7)
    for fit in (plain, squarem):
        assert fit.loglik == pytest.approx(max_loglik, rel=1e-12)
    assert squarem.n_estep < 0.75 * plain.n_estep


def test_no_hook_model_uses_the_flattened_pytree():
    model = TwoMeansModel()
    params = {"mu": np.array([-0.25, 2.0])}
    pack, unpack = flat_coordinates(model)
    np.testing.assert_array_equal(pack(params), [-0.25, 2.0])
    back = unpack(np.array([1.0, 3.0]), params)
    np.testing.assert_array_equal(back["mu"], [1.0, 3.0])
    assert pack(params).tolist() == tree_ravel(params)[0].tolist()


# ----------------------------------------------------------------------------- stopping


def test_max_iter_zero_evaluates_the_start():
    result = emkit.em(
        LinkageModel(), LINKAGE_DATA, init={"theta": np.array(0.3)}, max_iter=0, accel="squarem"
    )
    assert result.n_iter == 0
    assert result.n_estep == 1
    assert float(result.params["theta"]) == 0.3
    assert result.loglik == pytest.approx(linkage_loglik(0.3), abs=1e-12)
    assert len(result.history) == 0


def test_callback_stops_after_the_asked_cycle():
    calls = []

    def stop_after_two(info):
        calls.append(info.iteration)
        return info.iteration == 2

    result = emkit.em(
        TwoMeansModel(),
        np.random.default_rng(1).normal(size=300),
        tol=0.0,
        max_iter=100,
        accel="squarem",
        callback=stop_after_two,
    )
    assert calls == [0, 1, 2]
    assert result.n_iter == 2
    assert len(result.history) == 2
    assert not result.converged


def test_callback_stop_at_start():
    result = emkit.em(
        LinkageModel(), LINKAGE_DATA, max_iter=50, accel="squarem", callback=lambda info: True
    )
    assert result.n_iter == 0 and result.n_estep == 1


class ReseedOnceModel(LinkageModel):
    """The first M-step 'repairs' θ to a worse value and says so."""

    def __init__(self):
        self.calls = 0

    def mstep(self, stats, params):
        self.calls += 1
        if self.calls == 1:
            return Reseeded({"theta": np.array(0.1)})
        return super().mstep(stats, params)


def test_reseeded_mstep_ends_the_cycle_as_plain_em():
    seen = []
    result = emkit.em(
        ReseedOnceModel(),
        LINKAGE_DATA,
        init={"theta": np.array(0.6)},
        tol=1e-15,
        max_iter=100,
        accel="squarem",
        check_monotone="raise",  # the drop to θ = 0.1 is marked re-seeded: no error
        callback=lambda info: seen.append(float(info.params["theta"])),
    )
    assert seen[1] == 0.1
    assert result.history[0] == pytest.approx(linkage_loglik(0.1))
    assert abs(float(result.params["theta"]) - THETA_HAT) < 1e-8


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step_min": 0.5},
        {"step_max0": float("inf")},
        {"mstep": 0.9},
        {"step_min": 4.0, "step_max0": 2.0},
        {"max_backtrack": -1},
    ],
)
def test_bad_options(kwargs):
    with pytest.raises(ValueError):
        SQUAREM(**kwargs)


def test_bad_option_types():
    with pytest.raises(TypeError):
        SQUAREM(max_backtrack=1.5)
    with pytest.raises(TypeError):
        SQUAREM(mstep="4")


# ----------------------------------------------------------------------------- Gaussian mixtures


@pytest.fixture(scope="module")
def overlapping():
    """Three heavily overlapping 2-D components (means 1.7 standard deviations apart)."""
    rng = np.random.default_rng(4)
    n = 1000
    angles = np.array([0.0, 2.0, 4.0]) * np.pi / 3
    means = 1.0 * np.column_stack([np.cos(angles), np.sin(angles)])
    labels = rng.integers(0, 3, n)
    X = means[labels] + rng.normal(size=(n, 2)) @ np.array([[1.0, 0.0], [0.4, 0.8]])
    return X


def _start(X, cov_type, seed=0):
    return GaussianMixtureModel(3, cov_type).init_params((X, None), np.random.default_rng(seed))


@pytest.mark.slow
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gmm_squarem_matches_plain_em_with_fewer_esteps(overlapping, cov_type):
    X = overlapping
    model = GaussianMixtureModel(3, cov_type)
    start = _start(X, cov_type)
    plain = emkit.em(model, (X, None), init=start, tol=1e-10, max_iter=50_000)
    fast = emkit.em(
        model,
        (X, None),
        init=start,
        tol=1e-10,
        max_iter=50_000,
        accel="squarem",
        check_monotone="raise",
    )
    assert plain.converged and fast.converged
    assert fast.loglik >= plain.loglik - 1e-8 * abs(plain.loglik)
    assert fast.n_estep < plain.n_estep
    noise = 1e-9 * (np.abs(fast.history[1:]) + len(X))
    assert np.all(np.diff(fast.history) >= -noise)
    assert fast.history[0] >= fast.initial_loglik
    # The returned parameters are a mixture with their own log-likelihood (scipy).
    full = model.structure.to_full(model.arrays(fast.params)["covariances"], 3, 2)
    dens = sum(
        w * _mvn_pdf(X, m, c)
        for w, m, c in zip(fast.params.weights, fast.params.components.mean, full)
    )
    assert fast.loglik == pytest.approx(np.log(dens).sum(), rel=1e-12)


def test_gmm_backtracking_on_decrease(overlapping):
    # The paper's rule: a valid but worse stabilised point also shortens the step.
    X = overlapping
    model = GaussianMixtureModel(3, "full")
    start = _start(X, "full")
    plain = emkit.em(model, (X, None), init=start, tol=1e-10, max_iter=50_000)
    scheme = SQUAREM(backtrack_on_decrease=True, max_backtrack=3)
    fast = emkit.em(
        model,
        (X, None),
        init=start,
        tol=1e-10,
        max_iter=50_000,
        scheme=scheme,
        check_monotone="raise",
    )
    assert fast.loglik >= plain.loglik - 1e-8 * abs(plain.loglik)
    assert fast.n_estep < plain.n_estep


def test_model_hooks_are_used():
    model = GaussianMixtureModel(2, "diag")
    pack, unpack = flat_coordinates(model)
    params = model.params(np.array([0.25, 0.75]), np.zeros((2, 1)), np.ones((2, 1)))
    # centred log weights, means, log variances
    np.testing.assert_allclose(pack(params), [-0.5 * np.log(3), 0.5 * np.log(3), 0, 0, 0, 0])
    assert unpack.__func__ is MixtureModel._unpack


def _mvn_pdf(X, mean, cov):
    from scipy.stats import multivariate_normal

    return multivariate_normal(mean, cov).pdf(X)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gmm_pack_unpack_round_trip(overlapping, cov_type):
    model = GaussianMixtureModel(3, cov_type)
    params = _start(overlapping, cov_type)
    vec = model.pack(params)
    assert vec.dtype == np.float64 and vec.ndim == 1
    K, D = 3, 2
    n_cov = {"full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2, "diag": K * D, "spherical": K}
    assert vec.size == K + K * D + n_cov[cov_type]
    back = model.unpack(vec, params)
    assert isinstance(back, MixtureParams)
    for name, value in model.arrays(params).items():
        np.testing.assert_allclose(model.arrays(back)[name], value, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gmm_unpack_maps_any_vector_to_valid_parameters(overlapping, cov_type):
    model = GaussianMixtureModel(3, cov_type)
    like = _start(overlapping, cov_type)
    rng = np.random.default_rng(5)
    vec = rng.normal(size=model.pack(like).size)
    vec[:3] -= vec[:3].mean()  # centred logits: the representation pack gives
    params = model.unpack(vec, like)
    assert params.weights.sum() == pytest.approx(1.0) and np.all(params.weights > 0)
    arrays = model.arrays(params)
    full = model.structure.to_full(arrays["covariances"], 3, 2)
    assert np.all(np.linalg.eigvalsh(full) > 0)
    # precisions_cholesky U satisfies inv(Sigma) = U U^T
    prec = model.structure.to_full(arrays["precisions_cholesky"], 3, 2)
    if cov_type in ("diag", "spherical"):
        prec = prec**2
    else:
        prec = prec @ np.swapaxes(prec, -1, -2)
    np.testing.assert_allclose(prec, np.linalg.inv(full), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.pack(params), vec, rtol=1e-10, atol=1e-12)


def test_gmm_unpack_rejects_vectors_outside_the_domain(overlapping):
    model = GaussianMixtureModel(3, "full")
    like = _start(overlapping, "full")
    vec = model.pack(like)
    with pytest.raises(ValueError):
        model.unpack(vec[:-1], like)
    bad = vec.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError):
        model.unpack(bad, like)
    huge = vec.copy()
    huge[3 + 6] = 800.0  # log of a Cholesky diagonal entry: the covariance overflows
    with pytest.raises(ValueError):
        model.unpack(huge, like)


def test_restarts_on_threads(overlapping):
    model = GaussianMixtureModel(3, "diag")
    kwargs = dict(tol=1e-6, max_iter=500, n_init=3, random_state=7, accel="squarem")
    serial = emkit.em(model, (overlapping, None), **kwargs)
    threaded = emkit.em(model, (overlapping, None), n_jobs=3, **kwargs)
    assert threaded.restarts == serial.restarts
    assert threaded.n_estep == serial.n_estep
