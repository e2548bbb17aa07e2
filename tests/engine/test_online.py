"""Online / mini-batch EM (Cappe & Moulines 2009): ``emkit.engine.online``.

References used here:

* batch EM (``emkit.em`` plain, run to ``tol=1e-10``) on the same data from the same
  start: online EM approaches its fixed point;
* exact equivalences: one mini-batch of all rows with step size 1 is one batch EM step;
  with ``kappa = 1, t0 = 0`` the running statistics are the plain mean of the scaled
  mini-batch statistics, so for a model whose statistics do not depend on the
  parameters (one Gaussian; a Poisson rate with a conjugate Gamma prior) one pass over
  equal mini-batches gives the sample mean and covariance computed by NumPy, or the
  closed-form MAP estimate;
* a Poisson mixture written here, whose MLE is found by ``scipy.optimize.minimize`` on
  the observed-data negative log-likelihood.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import optimize, special, stats

import emkit
from emkit._pytree import tree_leaves
from emkit.data.sources import DataSource
from emkit.engine.online import OnlineEM, online_step
from emkit.models.mixture.gaussian_model import GaussianMixtureModel

# ----------------------------------------------------------------------------- data

MEANS = np.array([[-3.0, 0.0], [0.5, 3.0], [3.0, -1.0]])
COVARIANCES = np.array(
    [[[1.0, 0.3], [0.3, 0.5]], [[0.6, -0.2], [-0.2, 0.8]], [[0.4, 0.0], [0.0, 1.2]]]
)
WEIGHTS = np.array([0.3, 0.3, 0.4])
N = 20_000


def mixture_sample(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.choice(len(WEIGHTS), size=n, p=WEIGHTS)
    chol = np.linalg.cholesky(COVARIANCES)
    return MEANS[z] + np.einsum("nij,nj->ni", chol[z], rng.standard_normal((n, 2)))


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return mixture_sample(N, 0)


def _start(model: GaussianMixtureModel, X: np.ndarray, seed: int = 1):
    return model.init_params((X, None), np.random.default_rng(seed))


def _best_permutation(means: np.ndarray, reference: np.ndarray) -> list[int]:
    """Order of ``means``'s rows that best matches ``reference`` (label switching)."""
    perms = itertools.permutations(range(len(reference)))
    return list(min(perms, key=lambda p: np.abs(means[list(p)] - reference).max()))


# ============================================================================= accuracy


@pytest.mark.slow
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_online_em_reaches_the_batch_em_fit(X, covariance_type):
    model = GaussianMixtureModel(3, covariance_type)
    start = _start(model, X)
    batch = emkit.em(model, (X, None), init=start, tol=1e-10, max_iter=2000)
    assert batch.converged
    online = emkit.em(
        model, (X, None), init=start, variant="online", batch_size=500, max_iter=5, random_state=0
    )
    assert online.n_iter == 5
    assert len(online.history) == 5
    assert online.loglik == online.history[-1]
    # After 5 passes (200 mini-batches) online EM sits near batch EM's fixed point: its
    # distance to it (about 1e-4 nats per sample, 0.01 in the means) is below the
    # sampling error of the MLE itself (standard error of a mean: about 0.01).
    assert abs(online.loglik - batch.loglik) / N < 3e-4
    perm = _best_permutation(online.params.components.mean, batch.params.components.mean)
    np.testing.assert_allclose(
        online.params.components.mean[perm], batch.params.components.mean, atol=0.03
    )
    np.testing.assert_allclose(online.params.weights[perm], batch.params.weights, atol=0.01)
    if covariance_type == "full":  # the well-specified model recovers the generating means
        perm = _best_permutation(online.params.components.mean, MEANS)
        np.testing.assert_allclose(online.params.components.mean[perm], MEANS, atol=0.05)


def test_online_em_improves_on_the_start_and_is_evaluated_at_its_params(X):
    model = GaussianMixtureModel(3, "full")
    start = _start(model, X)
    result = emkit.em(
        model, (X, None), init=start, variant="online", batch_size=1000, max_iter=3, random_state=0
    )
    assert result.history[-1] > result.initial_loglik
    _, loglik = model.estep(result.params, (X, None))
    assert result.loglik == pytest.approx(loglik, rel=1e-12)
    # one pass of mini-batch E-steps and one evaluation per pass, plus the start
    assert result.n_estep == 2 * result.n_iter + 1


# ============================================================================= equivalences


def test_one_pass_over_one_full_batch_is_one_em_step(X):
    # batch_size >= N: one mini-batch per pass, holding every row; its step size is
    # rho_1 = 1, so a one-pass run is exactly one batch EM step. Restarting from each
    # result follows batch EM step for step.
    model = GaussianMixtureModel(3, "full")
    params = _start(model, X)
    plain = emkit.em(model, (X, None), init=params, tol=0.0, max_iter=6)
    for k in range(6):
        step = emkit.em(model, (X, None), init=params, variant="online", batch_size=N, max_iter=1)
        assert step.history[0] == pytest.approx(plain.history[k], rel=1e-13)
        params = step.params
    for ours, theirs in zip(tree_leaves(params), tree_leaves(plain.params)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-13)


def test_step_size_one_on_every_step_is_batch_em(X):
    model = GaussianMixtureModel(3, "diag")
    start = _start(model, X)
    plain = emkit.em(model, (X, None), init=start, tol=0.0, max_iter=8)
    scheme = OnlineEM(batch_size=N + 5, step_size=lambda t: 1.0)
    online = emkit.em(model, (X, None), init=start, tol=0.0, max_iter=8, scheme=scheme)
    np.testing.assert_allclose(online.history, plain.history, rtol=1e-13)
    for ours, theirs in zip(online.params, plain.params):
        np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("weighted", [False, True])
def test_kappa_1_t0_0_averages_batches_into_the_full_statistics(X, weighted):
    # One Gaussian: every responsibility is 1, so the statistics do not depend on the
    # parameters. rho_t = 1/t makes the running statistics the mean of the scaled
    # statistics of the 8 equal mini-batches of a pass, i.e. the full-data statistics:
    # after any number of passes the parameters are the sample mean and covariance.
    rng = np.random.default_rng(3)
    w = rng.integers(1, 4, size=N).astype(np.float64) if weighted else None
    model = GaussianMixtureModel(1, "full", reg_covar=1e-6)
    for passes in (1, 3):
        result = emkit.em(
            model,
            (X, w),
            variant="online",
            batch_size=N // 8,
            kappa=1.0,
            t0=0.0,
            max_iter=passes,
            random_state=4,
        )
        mean = np.average(X, axis=0, weights=w)
        cov = np.cov(X, rowvar=False, aweights=w, bias=True) + 1e-6 * np.eye(2)
        np.testing.assert_allclose(result.params.components.mean[0], mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(result.params.components.covariance[0], cov, rtol=1e-9)
        assert result.params.weights[0] == pytest.approx(1.0)


class PoissonGammaMAP:
    """x_i ~ Poisson(lam) with a Gamma(a, b) prior (rate b): MAP = (a - 1 + sum x) / (b + n).

    No latent variable: the statistics do not depend on the parameters. The prior makes
    the M-step depend on the amount of data, so it checks the ``N / n_batch`` scaling.
    """

    a, b = 30.0, 2.0

    def init_params(self, data, rng):
        return {"lam": np.array(1.0)}

    def estep(self, params, batch):
        x = batch
        lam = float(params["lam"])
        ll = float(np.sum(x * math.log(lam) - lam - special.gammaln(x + 1)))
        return {"n": np.array(float(len(x))), "sum": np.array(float(x.sum()))}, ll

    def mstep(self, stats_, params):
        return {"lam": (self.a - 1 + stats_["sum"]) / (self.b + stats_["n"])}

    def log_prior(self, params):
        return float(stats.gamma.logpdf(float(params["lam"]), self.a, scale=1 / self.b))


def test_statistics_are_scaled_to_the_whole_data_for_map_em():
    x = np.random.default_rng(5).poisson(4.0, size=100)
    model = PoissonGammaMAP()
    result = emkit.em(
        model, x, variant="online", batch_size=10, kappa=1.0, t0=0.0, max_iter=1, random_state=0
    )
    expected = (model.a - 1 + x.sum()) / (model.b + len(x))
    assert float(result.params["lam"]) == pytest.approx(expected, rel=1e-13)
    assert result.objective == pytest.approx(
        result.loglik + model.log_prior(result.params), rel=1e-13
    )


# ============================================================================= user model


class PoissonMixture:
    """x ~ sum_k w_k Poisson(lam_k); params and stats are dicts of arrays."""

    def __init__(self, n_components: int):
        self.n_components = n_components

    def init_params(self, data, rng):
        K = self.n_components
        return {"w": np.full(K, 1.0 / K), "lam": np.sort(rng.choice(data, K)) + 0.5}

    def estep(self, params, batch):
        x = batch[:, None]
        logp = np.log(params["w"]) + x * np.log(params["lam"]) - params["lam"]
        logp = logp - special.gammaln(x + 1)
        ll_rows = special.logsumexp(logp, axis=1)
        r = np.exp(logp - ll_rows[:, None])
        return {"n": r.sum(axis=0), "sx": r.T @ batch}, float(ll_rows.sum())

    def mstep(self, stats_, params):
        n = stats_["n"]
        return {"w": n / n.sum(), "lam": stats_["sx"] / n}


def _poisson_mixture_mle(x: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
    """MLE (w_0, lam_0, lam_1) and the log-likelihood, by direct optimisation."""
    values, counts = np.unique(x, return_counts=True)

    def nll(theta):
        w0 = special.expit(theta[0])
        lam = np.exp(theta[1:])
        logp = np.log([w0, 1 - w0]) + stats.poisson.logpmf(values[:, None], lam[None, :])
        return -float(counts @ special.logsumexp(logp, axis=1))

    theta0 = np.r_[special.logit(start[0]), np.log(start[1:])]
    res = optimize.minimize(
        nll, theta0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-10}
    )
    assert res.success
    return np.r_[special.expit(res.x[0]), np.exp(res.x[1:])], -res.fun


def test_user_defined_poisson_mixture_reaches_the_mle():
    rng = np.random.default_rng(6)
    n = 20_000
    z = rng.random(n) < 0.35
    x = np.where(z, rng.poisson(2.0, n), rng.poisson(9.0, n)).astype(np.float64)
    model = PoissonMixture(2)
    start = {"w": np.array([0.5, 0.5]), "lam": np.array([1.0, 5.0])}
    result = emkit.em(
        model, x, init=start, variant="online", batch_size=200, max_iter=5, random_state=0
    )
    mle, mle_loglik = _poisson_mixture_mle(x, np.array([0.35, 2.0, 9.0]))
    order = np.argsort(result.params["lam"])
    got = np.r_[result.params["w"][order][0], result.params["lam"][order]]
    np.testing.assert_allclose(got, mle, rtol=0.02)
    assert abs(result.loglik - mle_loglik) / n < 1e-4
    assert set(result.params) == {"w", "lam"}


# ============================================================================= randomness


def test_same_random_state_gives_identical_results(X):
    model = GaussianMixtureModel(3, "full")

    def run(seed):
        return emkit.em(
            model, (X, None), variant="online", batch_size=700, max_iter=2, random_state=seed
        )

    a, b, c = run(11), run(11), run(12)
    np.testing.assert_array_equal(a.history, b.history)
    for x, y in zip(tree_leaves(a.params), tree_leaves(b.params)):
        np.testing.assert_array_equal(x, y)
    # another seed gives another start and other shuffles
    assert not np.array_equal(a.history, c.history)


def test_different_shuffles_from_the_same_start_differ_but_agree(X):
    model = GaussianMixtureModel(3, "full")
    start = _start(model, X)
    runs = [
        emkit.em(
            model,
            (X, None),
            init=start,
            variant="online",
            batch_size=500,
            max_iter=3,
            random_state=seed,
        )
        for seed in (0, 1)
    ]
    assert runs[0].history[-1] != runs[1].history[-1]
    assert not np.array_equal(runs[0].params.components.mean, runs[1].params.components.mean)
    np.testing.assert_allclose(
        runs[0].params.components.mean, runs[1].params.components.mean, atol=0.05
    )


def test_restarts_on_threads_equal_sequential_restarts(X):
    model = GaussianMixtureModel(3, "diag")
    kwargs = dict(variant="online", batch_size=2000, max_iter=2, n_init=3, random_state=7)
    seq = emkit.em(model, (X, None), **kwargs)
    par = emkit.em(model, (X, None), n_jobs=3, **kwargs)
    assert seq.restarts == par.restarts
    np.testing.assert_array_equal(seq.history, par.history)


# ============================================================================= monitoring


def test_a_drop_is_not_a_monotonicity_violation(X):
    # Started at batch EM's optimum, noisy small mini-batches must move away from it:
    # the log-likelihood goes down, which online EM is allowed to do.
    model = GaussianMixtureModel(3, "full")
    best = emkit.em(model, (X, None), init=_start(model, X), tol=1e-10, max_iter=2000)
    result = emkit.em(
        model,
        (X, None),
        init=best.params,
        variant="online",
        batch_size=50,
        max_iter=1,
        check_monotone="raise",
        random_state=0,
    )
    assert result.history[0] < result.initial_loglik
    assert not result.converged


def test_converges_when_a_pass_changes_the_objective_by_less_than_tol(X):
    model = GaussianMixtureModel(3, "diag")
    start = _start(model, X)
    changes = []
    result = emkit.em(
        model,
        (X, None),
        init=start,
        variant="online",
        batch_size=2000,
        max_iter=50,
        tol=1e-3,
        random_state=0,
        callback=lambda info: changes.append(info.change),
    )
    assert result.converged
    assert result.n_iter < 50
    assert abs(changes[-1]) < 1e-3 * N
    assert all(abs(c) >= 1e-3 * N for c in changes[1:-1])


def test_max_iter_counts_passes_and_zero_returns_the_start(X):
    model = GaussianMixtureModel(3, "diag")
    start = _start(model, X)
    result = emkit.em(model, (X, None), init=start, variant="online", batch_size=100, max_iter=0)
    assert result.n_iter == 0
    assert result.params is start
    assert result.loglik == pytest.approx(model.estep(start, (X, None))[1], rel=1e-13)
    result = emkit.em(
        model, (X, None), init=start, variant="online", batch_size=5000, max_iter=3, tol=0.0
    )
    assert result.n_iter == 3
    assert not result.converged


@pytest.mark.parametrize("stop_at", [0, 2])
def test_callback_returning_true_stops(X, stop_at):
    model = GaussianMixtureModel(3, "diag")
    seen = []

    def callback(info):
        seen.append(info.iteration)
        return info.iteration == stop_at

    result = emkit.em(
        model,
        (X, None),
        variant="online",
        batch_size=4000,
        max_iter=10,
        tol=0.0,
        callback=callback,
        random_state=0,
    )
    assert seen == list(range(stop_at + 1))
    assert result.n_iter == stop_at


# ============================================================================= online_step


def test_online_step_is_pure_and_follows_the_update_rule(X):
    model = GaussianMixtureModel(3, "full")
    params = _start(model, X)
    first, second = (X[:1000], None), (X[1000:1500], None)
    p1, s1 = online_step(model, params, None, first, 0.3, 20.0)  # rho ignored: first step
    expected = [20.0 * leaf for leaf in tree_leaves(model.estep(params, first)[0])]
    for got, want in zip(tree_leaves(model.shift_stats(s1, p1, params)), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    saved = [leaf.copy() for leaf in tree_leaves(s1)]
    p2, s2 = online_step(model, p1, s1, second, 0.25, 40.0)
    # The Gaussian's moments are taken about the means of the parameters the E-step used:
    # online_step hands the running statistics back about the new parameters (the next
    # E-step's), so here they are shifted back to p1 to check the update rule.
    at_p1 = model.shift_stats(s2, p2, p1)
    batch_stats = tree_leaves(model.estep(p1, second)[0])
    for got, old, new in zip(tree_leaves(at_p1), saved, batch_stats, strict=True):
        np.testing.assert_allclose(got, 0.75 * old + 0.25 * 40.0 * new, rtol=1e-10, atol=1e-9)
    for leaf, old in zip(tree_leaves(s1), saved, strict=True):  # nothing changed in place
        np.testing.assert_array_equal(leaf, old)
    direct = model.mstep(at_p1, p1)
    for got, want in zip(tree_leaves(p2), tree_leaves(direct), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# ============================================================================= bad input


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (dict(batch_size=100, kappa=0.5), ValueError, "kappa"),
        (dict(batch_size=100, kappa=1.2), ValueError, "kappa"),
        (dict(batch_size=100, kappa=float("nan")), ValueError, "kappa"),
        (dict(batch_size=100, kappa="0.6"), TypeError, "kappa"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=-3), ValueError, "batch_size"),
        (dict(batch_size=2.5), TypeError, "batch_size"),
        (dict(batch_size=True), TypeError, "batch_size"),
        (dict(batch_size=100, t0=-1.0), ValueError, "t0"),
        (dict(batch_size=100, t0=float("inf")), ValueError, "t0"),
        (dict(batch_size=100, step_size=0.5), TypeError, "step_size"),
    ],
)
def test_bad_options_raise_clear_errors(options, error, match):
    with pytest.raises(error, match=match):
        OnlineEM(**options)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(batch_size=100, kappa=0.5), "kappa"),
        (dict(batch_size=100, kappa=1.2), "kappa"),
        (dict(batch_size=0), "batch_size"),
        (dict(), "batch_size"),
        (dict(batch_size=100, accel="squarem"), "accel"),
        (dict(batch_size=100, anneal="default"), "anneal"),
    ],
)
def test_bad_options_through_em(options, match):
    x = np.arange(10.0)
    with pytest.raises(ValueError, match=match):
        emkit.em(PoissonMixture(2), x, variant="online", **options)


def test_step_size_out_of_range_is_reported():
    x = np.random.default_rng(0).poisson(3.0, size=50).astype(np.float64)
    scheme = OnlineEM(batch_size=10, step_size=lambda t: 2.0)
    with pytest.raises(ValueError, match=r"step_size\(1\)"):
        emkit.em(PoissonMixture(2), x, scheme=scheme, max_iter=1)


@pytest.mark.parametrize(
    ("rho", "scale", "match"),
    [(0.0, 1.0, "rho"), (1.5, 1.0, "rho"), (0.5, 0.0, "scale"), (0.5, float("nan"), "scale")],
)
def test_online_step_checks_rho_and_scale(rho, scale, match):
    model = PoissonMixture(2)
    params = {"w": np.array([0.5, 0.5]), "lam": np.array([1.0, 4.0])}
    with pytest.raises(ValueError, match=match):
        online_step(model, params, None, np.arange(5.0), rho, scale)


class StreamOnly(DataSource):
    """A source that can only be read front to back."""

    def __init__(self, x):
        self.x = x

    @property
    def n_samples(self):
        return len(self.x)

    def batches(self):
        yield self.x

    def init_data(self):
        return self.x


def test_a_source_without_random_access_is_refused():
    x = np.random.default_rng(0).poisson(3.0, size=50).astype(np.float64)
    with pytest.raises(TypeError, match="random access"):
        emkit.em(PoissonMixture(2), StreamOnly(x), variant="online", batch_size=10)


# ============================================================================= partial_fit
def test_partial_fit_streams_to_the_batch_solution():
    from emkit import GaussianMixture

    rng = np.random.default_rng(21)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    labels = rng.integers(0, 3, size=30000)
    X = centres[labels] + rng.normal(size=(30000, 2))
    batch = GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    online = GaussianMixture(3, random_state=0, kappa=0.7)
    for _ in range(3):  # three passes over shuffled mini-batches of 500 rows
        for chunk in np.array_split(rng.permutation(X), 60):
            online.partial_fit(chunk)
    assert online.n_iter_ == 180 and len(online.history_) == 180
    assert online.score(X) == pytest.approx(batch.score(X), abs=2e-3)
    order = [int(np.argmin(np.linalg.norm(online.means_ - m, axis=1))) for m in batch.means_]
    np.testing.assert_allclose(online.means_[order], batch.means_, atol=0.05)
    # fit() starts over
    online.set_params(tol=1e-8, max_iter=500).fit(X)
    assert online.n_iter_ == batch.n_iter_
    assert online.loglik_ == pytest.approx(batch.loglik_, rel=1e-10)


def test_partial_fit_first_step_is_an_em_step_on_the_batch_and_checks_input():
    from emkit import GaussianMixture

    rng = np.random.default_rng(22)
    X = rng.normal(size=(400, 2))
    start = {
        "weights": [0.5, 0.5],
        "means": [[-1.0, 0.0], [1.0, 0.0]],
        "covariances": np.stack([np.eye(2)] * 2),
    }
    one = GaussianMixture(2, init=start, max_iter=1, tol=0).fit(X)
    streamed = GaussianMixture(2, init=start).partial_fit(X)
    np.testing.assert_allclose(streamed.means_, one.means_, rtol=1e-10)
    np.testing.assert_allclose(streamed.covariances_, one.covariances_, rtol=1e-10)
    with pytest.raises(ValueError, match="features"):
        streamed.partial_fit(rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="kappa"):
        GaussianMixture(2, kappa=0.4).partial_fit(X)
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(5).partial_fit(X[:3])
