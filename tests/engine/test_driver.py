"""``emkit.em`` on user-defined models whose answers are known independently.

References used here:

* the genetic-linkage example of Dempster, Laird & Rubin (1977, JRSS-B 39, section 1):
  197 animals in four cells with probabilities (1/2 + θ/4, (1-θ)/4, (1-θ)/4, θ/4),
  counts (125, 18, 20, 34); the MLE is θ = 0.6268214980 and Table 1 lists the EM
  iterates from θ = 0.5. The likelihood equation is the quadratic
  197 θ² - 15 θ - 68 = 0, whose positive root is the MLE;
* a two-component Gaussian mixture with known unit variances and weights 1/2, whose
  MLE of the two means is found by scipy.optimize.minimize on the observed-data
  negative log-likelihood;
* MAP with a Beta prior on θ, found by scipy.optimize.minimize_scalar.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from typing import NamedTuple

import numpy as np
import pytest
from scipy import optimize, special, stats

import emkit
from emkit.engine import (
    Executor,
    IterationInfo,
    MonotonicityError,
    MonotonicityWarning,
    Reseeded,
    ThreadExecutor,
)
from emkit.models.mixture.gaussian_model import GaussianMixtureModel

# ----------------------------------------------------------------------------- linkage model

COUNTS = np.array([125, 18, 20, 34])
N_ANIMALS = int(COUNTS.sum())  # 197
THETA_HAT = 0.6268214980  # DLR (1977), section 1
# DLR (1977), Table 1: EM iterates θ^(p) from θ^(0) = 0.5
DLR_ITERATES = [
    0.5,
    0.608247423,
    0.624321051,
    0.626488879,
    0.626777323,
    0.626815632,
    0.626820719,
    0.626821395,
    0.626821484,
]


def cell_probs(theta: float) -> np.ndarray:
    return np.array([0.5 + theta / 4, (1 - theta) / 4, (1 - theta) / 4, theta / 4])


def linkage_loglik(theta: float, counts: np.ndarray = COUNTS) -> float:
    """Log-likelihood of the ordered sample of animals (no multinomial coefficient)."""
    return float(np.dot(counts, np.log(cell_probs(theta))))


def linkage_em_map(theta: float) -> float:
    """One EM step in closed form (DLR eq. 1.4-1.5), written out independently of the model."""
    x2 = 125 * (theta / 4) / (0.5 + theta / 4)
    return (x2 + 34) / (x2 + 18 + 20 + 34)


def linkage_data(repeat: int = 1) -> np.ndarray:
    """One row per animal: its cell (0..3)."""
    return np.repeat(np.arange(4), COUNTS * repeat)


@dataclasses.dataclass
class LinkageStats:
    split: np.ndarray  # expected number of animals of cell 1 in its θ/4 part
    counts: np.ndarray  # animals per cell


class LinkageModel:
    """Params are a dict ``{"theta": 0-d array}``; stats are a dataclass."""

    def __init__(self):
        self.init_calls = 0

    def init_params(self, data, rng):
        self.init_calls += 1
        return {"theta": np.array(rng.uniform(0.05, 0.95))}

    def estep(self, params, batch):
        theta = float(params["theta"])
        counts = np.bincount(batch, minlength=4).astype(np.float64)
        p = cell_probs(theta)
        split = counts[0] * p[3] / p[0]
        return LinkageStats(np.array(split), counts), float(counts @ np.log(p))

    def mstep(self, stats, params):
        c = stats.counts
        yes = stats.split + c[3]
        no = c[1] + c[2]
        return {"theta": np.array(yes / (yes + no))}


class BetaLinkageModel(LinkageModel):
    """MAP-EM with a Beta(a, b) prior on θ."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a, self.b = a, b

    def log_prior(self, params):
        return float(stats.beta.logpdf(float(params["theta"]), self.a, self.b))

    def mstep(self, stats_, params):
        c = stats_.counts
        yes = stats_.split + c[3] + self.a - 1
        no = c[1] + c[2] + self.b - 1
        return {"theta": np.array(yes / (yes + no))}


def _theta(result) -> float:
    return float(result.params["theta"])


START = {"theta": np.array(0.5)}


# ----------------------------------------------------------------------------- Gaussian means


class MeansParams(NamedTuple):
    means: np.ndarray  # (2,)


_LOG_HALF_NORM = math.log(0.5) - 0.5 * math.log(2 * math.pi)


class TwoGaussianMeans:
    """x ~ 1/2 N(mu_0, 1) + 1/2 N(mu_1, 1); data is ``{"x": (n,)}``; stats are a dict."""

    def init_params(self, data, rng):
        x = data["x"]
        return MeansParams(np.sort(rng.choice(x, size=2, replace=False)))

    def estep(self, params, batch):
        x = batch["x"]
        logp = -0.5 * (x[:, None] - params.means[None, :]) ** 2 + _LOG_HALF_NORM
        ll_rows = special.logsumexp(logp, axis=1)
        r = np.exp(logp - ll_rows[:, None])
        return {"n": r.sum(axis=0), "sx": r.T @ x}, float(ll_rows.sum())

    def mstep(self, stats_, params):
        return MeansParams(stats_["sx"] / stats_["n"])


def _mixture_sample(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, size=n)
    return np.where(z == 0, -1.5, 2.0) + rng.normal(size=n)


def _mixture_nll(mu: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative observed-data log-likelihood and its gradient, from scipy.stats."""
    logp = np.log(0.5) + stats.norm.logpdf(x[:, None], loc=mu[None, :], scale=1.0)
    ll_rows = special.logsumexp(logp, axis=1)
    r = np.exp(logp - ll_rows[:, None])
    grad = -(r * (x[:, None] - mu[None, :])).sum(axis=0)
    return -float(ll_rows.sum()), grad


# ============================================================================= fixed points


def test_closed_form_mle_matches_published_value():
    # sanity check of the two independent references against each other
    root = (15 + math.sqrt(15**2 + 4 * 197 * 68)) / (2 * 197)
    assert root == pytest.approx(THETA_HAT, abs=5e-10)  # published to 10 digits
    for before, after in itertools.pairwise(DLR_ITERATES):
        assert linkage_em_map(before) == pytest.approx(after, abs=1e-9)


def test_linkage_mle_dlr_1977():
    # The log-likelihood is flat at the optimum: a change of tol gives θ only to about
    # sqrt(tol). tol=0 runs until the change is zero to round-off, which happens once
    # θ is within about sqrt(eps) = 1e-8 of the optimum.
    result = emkit.em(LinkageModel(), linkage_data(), init=START, tol=0.0, max_iter=30)
    assert result.converged
    assert _theta(result) == pytest.approx(THETA_HAT, abs=2e-8)
    assert linkage_em_map(_theta(result)) == pytest.approx(_theta(result), abs=2e-8)
    loose = emkit.em(LinkageModel(), linkage_data(), init=START, tol=1e-8, max_iter=200)
    assert loose.converged
    assert _theta(loose) == pytest.approx(THETA_HAT, abs=1e-4)
    assert result.loglik == pytest.approx(linkage_loglik(THETA_HAT), rel=1e-12)
    assert result.objective == result.loglik  # no prior
    assert result.initial_loglik == pytest.approx(linkage_loglik(0.5), rel=1e-13)
    assert isinstance(result.params, dict)
    assert np.asarray(result.params["theta"]).shape == ()


@pytest.mark.parametrize("k", range(1, 9))
def test_max_iter_k_gives_the_kth_dlr_iterate(k):
    result = emkit.em(LinkageModel(), linkage_data(), init=START, tol=0.0, max_iter=k)
    assert result.n_iter == k
    assert not result.converged
    assert _theta(result) == pytest.approx(DLR_ITERATES[k], abs=1e-9)
    assert len(result.history) == k
    expected = [linkage_loglik(t) for t in DLR_ITERATES[1 : k + 1]]
    np.testing.assert_allclose(result.history, expected, rtol=1e-10)
    assert result.history[-1] == result.objective
    assert result.loglik == pytest.approx(linkage_loglik(_theta(result)), rel=1e-13)
    # one E-step per M-step plus the one at the start
    assert result.n_estep == k + 1


def test_max_iter_zero_returns_the_start():
    model = LinkageModel()
    result = emkit.em(model, linkage_data(), init=START, max_iter=0)
    assert _theta(result) == 0.5
    assert result.loglik == pytest.approx(linkage_loglik(0.5), rel=1e-13)
    assert result.objective == result.loglik == result.initial_loglik
    assert result.n_iter == 0
    assert len(result.history) == 0
    assert not result.converged
    assert result.n_estep == 1
    assert model.init_calls == 0  # init given: init_params is not called


def test_max_iter_zero_without_init_uses_init_params():
    model = LinkageModel()
    result = emkit.em(model, linkage_data(), max_iter=0, random_state=5)
    assert model.init_calls == 1
    expected = np.random.default_rng(np.random.SeedSequence(5).spawn(1)[0]).uniform(0.05, 0.95)
    assert _theta(result) == expected
    assert result.loglik == pytest.approx(linkage_loglik(expected), rel=1e-13)


def test_gaussian_means_match_direct_optimisation():
    x = _mixture_sample(300, seed=1)
    result = emkit.em(TwoGaussianMeans(), {"x": x}, tol=1e-15, max_iter=5000, random_state=0)
    assert result.converged
    em_means = np.sort(result.params.means)

    start = np.quantile(x, [0.25, 0.75])
    ref = optimize.minimize(
        _mixture_nll, start, args=(x,), jac=True, method="BFGS", options={"gtol": 1e-10}
    )
    _, ref_grad = _mixture_nll(ref.x, x)
    assert np.max(np.abs(ref_grad)) < 1e-6
    np.testing.assert_allclose(em_means, np.sort(ref.x), atol=1e-6)
    assert result.loglik == pytest.approx(-ref.fun, rel=1e-12)
    # the EM fixed point is a stationary point of the observed-data likelihood
    _, grad = _mixture_nll(result.params.means, x)
    assert np.max(np.abs(grad)) < 1e-4
    assert isinstance(result.params, MeansParams)
    assert len(result.history) == result.n_iter
    assert result.history[-1] == result.objective
    assert np.all(np.diff(result.history) >= -1e-9 * abs(result.loglik))


# ============================================================================= convergence


def _expected_stop(tol_total: float, max_iter: int = 1000) -> int:
    """First EM step whose rise of the log-likelihood is below ``tol_total``."""
    theta, ll = 0.5, linkage_loglik(0.5)
    for t in range(1, max_iter + 1):
        theta = linkage_em_map(theta)
        new = linkage_loglik(theta)
        change, ll = new - ll, new
        # keep away from ties, where round-off could decide
        assert abs(change - tol_total) > 1e-6 * tol_total
        if change < tol_total:
            return t
    raise AssertionError("did not converge")


def test_tol_none_runs_every_step_past_the_fixed_point():
    # 300 steps of the linkage map by hand reach its fixed point long before the end;
    # tol=None still takes all of them (tol=0 stops at the fixed point)
    theta = 0.5
    for _ in range(300):
        theta = linkage_em_map(theta)
    every = emkit.em(LinkageModel(), linkage_data(), init=START, tol=None, max_iter=300)
    assert every.n_iter == len(every.history) == 300 and not every.converged
    assert _theta(every) == pytest.approx(theta, abs=1e-12)
    stops = emkit.em(LinkageModel(), linkage_data(), init=START, tol=0.0, max_iter=300)
    assert stops.converged and stops.n_iter < 300
    with pytest.raises(ValueError, match="non-negative"):
        emkit.em(LinkageModel(), linkage_data(), init=START, tol=-1.0)


@pytest.mark.parametrize("tol", [1e-2, 1e-4, 1e-6, 1e-8])
def test_tol_bounds_the_change_per_observation(tol):
    result = emkit.em(LinkageModel(), linkage_data(), init=START, tol=tol, max_iter=1000)
    assert result.converged
    assert result.n_iter == _expected_stop(tol * N_ANIMALS)
    assert len(result.history) == result.n_iter
    last_change = result.history[-1] - result.history[-2]
    assert 0 <= last_change < tol * N_ANIMALS
    # every earlier step rose by at least tol per observation
    assert np.all(np.diff(result.history[:-1]) >= tol * N_ANIMALS)

    # the same data twice: the same change per observation, so the same number of steps
    twice = emkit.em(LinkageModel(), linkage_data(2), init=START, tol=tol, max_iter=1000)
    assert twice.n_iter == result.n_iter
    assert _theta(twice) == pytest.approx(_theta(result), abs=1e-12)

    # tol_scale replaces the number of observations
    absolute = emkit.em(
        LinkageModel(), linkage_data(), init=START, tol=tol, tol_scale=1.0, max_iter=1000
    )
    assert absolute.n_iter == _expected_stop(tol)


class WrongAtStep(LinkageModel):
    """Exact EM except at step ``bad``, whose M-step moves θ away from the MLE."""

    def __init__(self, bad: int, reseed: bool = False):
        super().__init__()
        self.bad = bad
        self.reseed = reseed
        self.steps = 0

    def mstep(self, stats_, params):
        self.steps += 1
        if self.steps == self.bad:
            wrong = {"theta": np.array(0.2)}
            return Reseeded(wrong) if self.reseed else wrong
        return super().mstep(stats_, params)


def test_a_drop_warns_and_names_the_iteration():
    with pytest.warns(MonotonicityWarning, match=r"iteration 3\b") as record:
        result = emkit.em(WrongAtStep(3), linkage_data(), init=START, tol=1e-10, max_iter=100)
    assert len([w for w in record if issubclass(w.category, MonotonicityWarning)]) == 1
    drop = linkage_loglik(0.2) - linkage_loglik(DLR_ITERATES[2])
    assert result.history[2] - result.history[1] == pytest.approx(drop, rel=1e-9)
    # exact EM after the drop finds the MLE again
    assert result.converged
    assert _theta(result) == pytest.approx(THETA_HAT, abs=1e-5)


def test_a_drop_raises_with_check_monotone_raise():
    with pytest.raises(MonotonicityError, match=r"iteration 3\b"):
        emkit.em(WrongAtStep(3), linkage_data(), init=START, max_iter=100, check_monotone="raise")


def test_a_drop_is_silent_with_check_monotone_off():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = emkit.em(
            WrongAtStep(3),
            linkage_data(),
            init=START,
            tol=1e-10,
            max_iter=100,
            check_monotone="off",
        )
    assert result.history[2] < result.history[1]
    assert result.converged


class Drifting(LinkageModel):
    """A wrong M-step: every step lowers the log-likelihood a little (well above round-off,
    well below ``tol`` per observation)."""

    def mstep(self, stats_, params):
        return {"theta": np.array(float(params["theta"]) - 0.002)}


def test_a_decrease_is_never_taken_for_convergence():
    # Each drop is between 7e-4 and 0.02 in total, far below tol * n = 19.7.
    start = {"theta": np.array(THETA_HAT)}
    result = emkit.em(
        Drifting(), linkage_data(), init=start, tol=0.1, max_iter=10, check_monotone="off"
    )
    assert not result.converged
    assert result.n_iter == 10
    expected = [linkage_loglik(THETA_HAT - 0.002 * k) for k in range(1, 11)]
    np.testing.assert_allclose(result.history, expected, rtol=1e-12)
    drops = -np.diff([linkage_loglik(THETA_HAT), *expected])
    assert np.all(drops > 1e-4) and np.all(drops < 0.1 * N_ANIMALS)

    with pytest.warns(MonotonicityWarning) as record:
        warned = emkit.em(Drifting(), linkage_data(), init=start, tol=0.1, max_iter=10)
    assert not warned.converged
    messages = [str(w.message) for w in record if issubclass(w.category, MonotonicityWarning)]
    assert len(messages) == 10
    assert all(f"iteration {k}" in m for k, m in zip(range(1, 11), messages))


def test_reseeded_step_is_neither_a_drop_nor_convergence():
    # A re-seeded step that lowers the log-likelihood: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = emkit.em(
            WrongAtStep(2, reseed=True), linkage_data(), init=START, tol=1e-10, max_iter=100
        )
    assert result.history[1] < result.history[0]
    assert result.converged
    assert _theta(result) == pytest.approx(THETA_HAT, abs=1e-5)


class ReseedSame(LinkageModel):
    """The first M-step re-seeds to the same parameters (zero change), then exact EM."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def mstep(self, stats_, params):
        self.steps += 1
        if self.steps == 1:
            return Reseeded({"theta": np.array(float(params["theta"]))})
        return super().mstep(stats_, params)


def test_reseeded_step_with_no_change_does_not_converge():
    # with a huge tol, the first ordinary step converges; the re-seeded one must not
    result = emkit.em(ReseedSame(), linkage_data(), init=START, tol=10.0, max_iter=50)
    assert result.converged
    assert result.n_iter == 2
    assert result.history[0] == pytest.approx(linkage_loglik(0.5), rel=1e-13)
    assert _theta(result) == pytest.approx(DLR_ITERATES[1], abs=1e-9)


# ============================================================================= restarts


def _spawned_inits(seed: int, n: int) -> list[float]:
    children = np.random.SeedSequence(seed).spawn(n)
    return [float(np.random.default_rng(c).uniform(0.05, 0.95)) for c in children]


def test_restarts_use_independent_child_seeds_and_keep_the_best():
    n_init = 5
    result = emkit.em(LinkageModel(), linkage_data(), n_init=n_init, random_state=7, max_iter=0)
    inits = _spawned_inits(7, n_init)
    assert len(set(inits)) == n_init
    expected = [linkage_loglik(t) for t in inits]
    assert len(result.restarts) == n_init
    np.testing.assert_allclose(result.restarts, expected, rtol=1e-13)
    best = int(np.argmax(expected))
    assert result.best_restart == best
    assert result.objective == max(result.restarts)
    assert _theta(result) == inits[best]
    assert result.loglik == pytest.approx(linkage_loglik(inits[best]), rel=1e-13)


def test_restarts_report_the_restart_index_and_keep_the_best_run():
    finals: dict[int, float] = {}
    starts: dict[int, float] = {}

    def cb(info: IterationInfo):
        if info.iteration == 0:
            starts[info.restart] = float(info.params["theta"])
        finals[info.restart] = float(info.params["theta"])

    result = emkit.em(
        LinkageModel(), linkage_data(), n_init=3, random_state=11, max_iter=2, callback=cb
    )
    assert sorted(finals) == [0, 1, 2]
    inits = _spawned_inits(11, 3)
    for i in range(3):
        assert starts[i] == inits[i]
        assert finals[i] == pytest.approx(linkage_em_map(linkage_em_map(inits[i])), abs=1e-12)
        assert result.restarts[i] == pytest.approx(linkage_loglik(finals[i]), rel=1e-12)
    assert _theta(result) == finals[result.best_restart]
    assert result.objective == max(result.restarts)
    assert result.history[-1] == result.objective


def test_same_random_state_gives_the_same_result():
    x = {"x": _mixture_sample(120, seed=2)}
    a = emkit.em(TwoGaussianMeans(), x, n_init=3, random_state=3, max_iter=20)
    b = emkit.em(TwoGaussianMeans(), x, n_init=3, random_state=3, max_iter=20)
    np.testing.assert_array_equal(a.params.means, b.params.means)
    np.testing.assert_array_equal(a.history, b.history)
    assert a.restarts == b.restarts
    assert a.best_restart == b.best_restart
    assert a.loglik == b.loglik
    c = emkit.em(TwoGaussianMeans(), x, n_init=3, random_state=4, max_iter=0)
    d = emkit.em(TwoGaussianMeans(), x, n_init=3, random_state=3, max_iter=0)
    assert c.restarts != d.restarts


def test_n_init_1_is_restart_0_of_n_init_3():
    finals: dict[int, np.ndarray] = {}

    def cb(info):
        finals[info.restart] = info.params.means

    x = {"x": _mixture_sample(120, seed=4)}
    single = emkit.em(TwoGaussianMeans(), x, n_init=1, random_state=9, max_iter=6)
    emkit.em(TwoGaussianMeans(), x, n_init=3, random_state=9, max_iter=6, callback=cb)
    np.testing.assert_array_equal(single.params.means, finals[0])
    triple = emkit.em(TwoGaussianMeans(), x, n_init=3, random_state=9, max_iter=6)
    assert single.objective == triple.restarts[0]


def test_generator_random_state_is_accepted():
    rng = np.random.default_rng(0)
    result = emkit.em(LinkageModel(), linkage_data(), random_state=rng, n_init=2, tol=1e-10)
    assert _theta(result) == pytest.approx(THETA_HAT, abs=1e-5)
    assert len(result.restarts) == 2


def test_same_seed_sequence_gives_the_same_result():
    seed = np.random.SeedSequence(1)
    a = emkit.em(LinkageModel(), linkage_data(), random_state=seed, max_iter=0)
    b = emkit.em(LinkageModel(), linkage_data(), random_state=seed, max_iter=0)
    assert _theta(a) == _theta(b)


# ============================================================================= batches, executors


def _small_gmm_data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack(
        [
            # overlapping components, so EM is still moving after 15 steps
            rng.normal([-1.0, 0.0], [1.0, 0.7], size=(40, 2)),
            rng.normal([1.0, 0.5], [0.6, 1.0], size=(60, 2)),
        ]
    )


def _gmm_run(**kwargs):
    X = _small_gmm_data()
    model = GaussianMixtureModel(2, "full")
    return emkit.em(model, (X, None), random_state=0, tol=0.0, max_iter=15, **kwargs)


def _assert_same_fit(a, b, rtol):
    np.testing.assert_allclose(a.params.weights, b.params.weights, rtol=rtol)
    np.testing.assert_allclose(
        a.params.components.mean, b.params.components.mean, rtol=rtol, atol=1e-12
    )
    np.testing.assert_allclose(
        a.params.components.covariance, b.params.components.covariance, rtol=rtol
    )
    np.testing.assert_allclose(a.history, b.history, rtol=rtol)
    assert a.loglik == pytest.approx(b.loglik, rel=rtol)
    assert a.n_iter == b.n_iter


def test_batch_size_gives_the_same_gmm_fit():
    whole = _gmm_run()
    assert whole.n_iter == 15
    for batch_size in (1, 7, 100):
        _assert_same_fit(_gmm_run(batch_size=batch_size), whole, rtol=1e-10)


@pytest.mark.parametrize("batch_size", [1, 7, 100, 196, 197, 1000])
def test_batch_size_gives_the_same_linkage_fit(batch_size):
    whole = emkit.em(LinkageModel(), linkage_data(), init=START, tol=0.0, max_iter=6)
    batched = emkit.em(
        LinkageModel(), linkage_data(), init=START, tol=0.0, max_iter=6, batch_size=batch_size
    )
    assert _theta(batched) == pytest.approx(_theta(whole), rel=1e-12)
    np.testing.assert_allclose(batched.history, whole.history, rtol=1e-12)


class CountingModel(LinkageModel):
    def __init__(self):
        super().__init__()
        self.batch_lengths: list[int] = []

    def estep(self, params, batch):
        self.batch_lengths.append(len(batch))
        return super().estep(params, batch)


def test_batches_cover_the_data_once_per_estep():
    model = CountingModel()
    result = emkit.em(model, linkage_data(), init=START, max_iter=2, tol=0.0, batch_size=50)
    assert model.batch_lengths == [50, 50, 50, 47] * result.n_estep


def test_thread_executor_equals_serial():
    serial = _gmm_run(batch_size=7, executor="serial")
    threads = _gmm_run(batch_size=7, executor="threads")
    _assert_same_fit(threads, serial, rtol=1e-12)
    pool = ThreadExecutor(n_jobs=3)
    try:
        mine = _gmm_run(batch_size=7, executor=pool)
        again = _gmm_run(batch_size=7, executor=pool)  # a user's executor stays usable
    finally:
        pool.close()
    _assert_same_fit(mine, serial, rtol=1e-12)
    _assert_same_fit(again, serial, rtol=1e-12)


def test_custom_executor_is_used():
    class Recording(Executor):
        def __init__(self):
            self.calls = 0

        def map_reduce(self, estep, batches):
            self.calls += 1
            from emkit.engine.executors import SerialExecutor

            return SerialExecutor().map_reduce(estep, batches)

    exe = Recording()
    result = emkit.em(LinkageModel(), linkage_data(), init=START, max_iter=3, tol=0.0, executor=exe)
    assert exe.calls == result.n_estep == 4


# ============================================================================= callback, progress


def test_callback_receives_every_iteration():
    infos: list[IterationInfo] = []
    result = emkit.em(
        LinkageModel(), linkage_data(), init=START, tol=1e-8, max_iter=100, callback=infos.append
    )
    assert [i.iteration for i in infos] == list(range(result.n_iter + 1))
    assert all(isinstance(i, IterationInfo) for i in infos)
    assert math.isnan(infos[0].change)
    assert infos[0].objective == pytest.approx(linkage_loglik(0.5), rel=1e-13)
    np.testing.assert_array_equal([i.objective for i in infos[1:]], result.history)
    np.testing.assert_allclose(
        [i.change for i in infos[1:]], np.diff([infos[0].objective, *result.history]), rtol=1e-12
    )
    for i, theta in zip(infos, DLR_ITERATES):
        assert float(i.params["theta"]) == pytest.approx(theta, abs=1e-9)
        assert i.loglik == i.objective
        assert i.restart == 0
    elapsed = [i.elapsed for i in infos]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0


@pytest.mark.parametrize("stop_at", [0, 1, 3])
def test_callback_returning_true_stops(stop_at):
    def cb(info):
        return info.iteration == stop_at

    result = emkit.em(LinkageModel(), linkage_data(), init=START, tol=0.0, max_iter=50, callback=cb)
    assert result.n_iter == stop_at
    assert not result.converged
    assert len(result.history) == stop_at
    assert _theta(result) == pytest.approx(DLR_ITERATES[stop_at], abs=1e-9)


def test_callback_returning_none_does_not_stop():
    result = emkit.em(
        LinkageModel(), linkage_data(), init=START, tol=0.0, max_iter=4, callback=lambda i: None
    )
    assert result.n_iter == 4


def test_progress_bar_writes_to_stderr(capsys):
    pytest.importorskip("tqdm")
    result = emkit.em(
        LinkageModel(), linkage_data(), init=START, max_iter=5, tol=0.0, progress=True
    )
    err = capsys.readouterr().err
    assert result.n_iter == 5
    assert "EM" in err


def test_progress_with_restarts(capsys):
    pytest.importorskip("tqdm")
    emkit.em(LinkageModel(), linkage_data(), n_init=2, random_state=0, max_iter=3, progress=True)
    err = capsys.readouterr().err
    assert "EM 1/2" in err and "EM 2/2" in err


# ============================================================================= MAP


@pytest.mark.parametrize(("a", "b"), [(1.0, 1.0), (3.0, 5.0), (20.0, 2.0)])
def test_map_estimate_with_beta_prior(a, b):
    model = BetaLinkageModel(a, b)
    result = emkit.em(model, linkage_data(), init=START, tol=0.0, max_iter=60)
    loose = emkit.em(model, linkage_data(), init=START, tol=1e-9, max_iter=500)
    assert loose.converged

    def neg_posterior(t):
        return -(linkage_loglik(t) + stats.beta.logpdf(t, a, b))

    ref = optimize.minimize_scalar(
        neg_posterior, bounds=(1e-9, 1 - 1e-9), method="bounded", options={"xatol": 1e-12}
    )
    theta = _theta(result)
    # the objective is flat at the mode, so a minimiser on it finds θ to ~sqrt(eps)
    assert theta == pytest.approx(ref.x, abs=1e-6)
    assert _theta(loose) == pytest.approx(ref.x, abs=1e-4)

    # the posterior mode is the root of the score: 125/(2+θ) - 38/(1-θ) + (33+a)/θ - (b-1)/(1-θ)
    def score(t):
        return 125 / (2 + t) - 38 / (1 - t) + (33 + a) / t - (b - 1) / (1 - t)

    mode = optimize.brentq(score, 1e-6, 1 - 1e-6, xtol=1e-15)
    # tol=0 stops once the change of the objective is zero to round-off
    assert theta == pytest.approx(mode, abs=1e-8)
    if a == b == 1.0:  # a flat prior gives the MLE
        assert theta == pytest.approx(THETA_HAT, abs=1e-9)
    else:
        assert abs(theta - THETA_HAT) > 1e-3
    # the objective is log-likelihood + log-prior; loglik is the likelihood alone
    assert result.loglik == pytest.approx(linkage_loglik(theta), rel=1e-12)
    assert result.objective == pytest.approx(
        linkage_loglik(theta) + stats.beta.logpdf(theta, a, b), rel=1e-12
    )
    assert result.history[-1] == result.objective
    assert result.initial_loglik == pytest.approx(
        linkage_loglik(0.5) + stats.beta.logpdf(0.5, a, b), rel=1e-12
    )
    assert np.all(np.diff(result.history) >= -1e-9)


def test_map_history_tracks_the_posterior_not_the_likelihood():
    # Under a strong prior away from the MLE, the MAP path lowers the likelihood while
    # raising the posterior: no warning, because the objective is what must rise.
    a, b = 2.0, 40.0
    infos = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = emkit.em(
            BetaLinkageModel(a, b),
            linkage_data(),
            init={"theta": np.array(THETA_HAT)},
            tol=1e-12,
            max_iter=200,
            callback=infos.append,
        )
    logliks = [i.loglik for i in infos]
    assert logliks[-1] < logliks[0] - 1.0
    thetas = [float(i.params["theta"]) for i in infos[1:]]
    expected = [linkage_loglik(t) + stats.beta.logpdf(t, a, b) for t in thetas]
    np.testing.assert_allclose(result.history, expected, rtol=1e-12)
    np.testing.assert_allclose(logliks[1:], [linkage_loglik(t) for t in thetas], rtol=1e-12)


# ============================================================================= bad input


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"max_iter": -1}, ValueError, "max_iter"),
        ({"max_iter": 2.5}, TypeError, "max_iter"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"tol": float("nan")}, ValueError, "tol"),
        ({"tol": "small"}, TypeError, "tol"),
        ({"n_init": 0}, ValueError, "n_init"),
        ({"n_init": 1.0}, TypeError, "n_init"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": -3}, ValueError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"check_monotone": "maybe"}, ValueError, "check_monotone"),
        ({"check_monotone": ["warn"]}, ValueError, "check_monotone"),
        ({"callback": 3}, TypeError, "callback"),
        ({"monotone_rtol": -1e-9}, ValueError, "monotone_rtol"),
        ({"executor": "processes"}, ValueError, "executor"),
        ({"init": START, "n_init": 2}, ValueError, "n_init"),
        ({"random_state": "seed"}, TypeError, "random_state"),
        ({"random_state": -1}, ValueError, "random_state"),
    ],
)
def test_bad_options_raise_clear_errors(options, error, match):
    with pytest.raises(error, match=match):
        emkit.em(LinkageModel(), linkage_data(), **options)


def test_data_arrays_of_different_lengths():
    x = np.zeros(10)
    with pytest.raises(ValueError, match=r"first dimension.*\[9, 10\]"):
        emkit.em(TwoGaussianMeans(), {"x": x, "w": np.ones(9)})
    with pytest.raises(ValueError, match="first dimension"):
        emkit.em(GaussianMixtureModel(1), (np.zeros((10, 2)), np.ones(11)))


def test_data_without_arrays_or_with_scalars():
    with pytest.raises(ValueError, match="no arrays"):
        emkit.em(LinkageModel(), {"x": None})
    with pytest.raises(ValueError, match="at least one dimension"):
        emkit.em(LinkageModel(), {"x": np.float64(1.0)})


class NaNAtStep(LinkageModel):
    def __init__(self, step: int):
        super().__init__()
        self.step = step
        self.calls = 0

    def estep(self, params, batch):
        stats_, ll = super().estep(params, batch)
        self.calls += 1
        return stats_, (math.nan if self.calls == self.step + 1 else ll)


@pytest.mark.parametrize("step", [0, 2])
def test_nan_loglik_raises_floating_point_error(step):
    with pytest.raises(FloatingPointError, match=f"iteration {step}"):
        emkit.em(NaNAtStep(step), linkage_data(), init=START, tol=0.0, max_iter=10)


def test_nan_log_prior_raises_floating_point_error():
    class BadPrior(LinkageModel):
        def log_prior(self, params):
            return math.nan

    with pytest.raises(FloatingPointError):
        emkit.em(BadPrior(), linkage_data(), init=START)
