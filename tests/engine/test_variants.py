"""Hard (classification) EM, deterministic annealing and parallel restarts."""

import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.cluster import KMeans

import emkit
from emkit import GaussianMixture
from emkit.exceptions import ConvergenceWarning
from emkit.models.mixture.gaussian_model import GaussianMixtureModel


class FixedSphericalMixture(GaussianMixtureModel):
    """Spherical Gaussian mixture with equal, fixed weights and unit variances."""

    def __init__(self, K):
        super().__init__(K, "spherical", reg_covar=0.0)

    def mstep(self, stats, params):
        p = super().mstep(stats, params)
        K = len(p.weights)
        return self.params(np.full(K, 1.0 / K), p.components.mean, np.ones(K))


def blobs(rng, n=900):
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0], [6.0, 6.0]])
    labels = rng.integers(0, 4, size=n)
    return centres[labels] + rng.normal(scale=1.2, size=(n, 2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_em_on_a_fixed_spherical_mixture_is_kmeans(seed):
    rng = np.random.default_rng(seed)
    X = blobs(rng)
    start = X[rng.choice(len(X), 4, replace=False)]
    K = 4
    model = FixedSphericalMixture(K)
    params0 = model.params(np.full(K, 0.25), start.copy(), np.ones(K))
    hard = {"variant": "hard", "tol": 0.0, "max_iter": 300, "check_monotone": "raise"}
    res = emkit.em(model, (X, None), init=params0, **hard)
    km = KMeans(K, init=start, n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(X)
    np.testing.assert_allclose(
        res.params.components.mean, km.cluster_centers_, rtol=1e-10, atol=1e-10
    )
    # classification log-likelihood = const - inertia / 2 for unit variances, equal weights
    const = len(X) * (np.log(1 / K) - np.log(2 * np.pi))
    assert res.history[-1] == pytest.approx(const - km.inertia_ / 2, rel=1e-10)
    assert np.all(np.diff(res.history) >= -1e-9 * np.abs(res.history[1:]))


def test_hard_em_returns_the_observed_loglik_and_is_monotone():
    X = blobs(np.random.default_rng(3))
    gm = GaussianMixture(4, variant="hard", random_state=0, check_monotone="raise", tol=0).fit(X)
    assert gm.loglik_ == pytest.approx(gm.score(X) * len(X), rel=1e-10)
    # the history is the classification likelihood sum_i max_k log(w_k N(x_i; m_k, S_k)),
    # computed here with scipy at the returned (fixed-point) parameters
    joint = np.column_stack(
        [
            np.log(w) + stats.multivariate_normal(m, c).logpdf(X)
            for w, m, c in zip(gm.weights_, gm.means_, gm.covariances_)
        ]
    )
    assert gm.history_[-1] == pytest.approx(joint.max(axis=1).sum(), rel=1e-10)
    assert gm.loglik_ == pytest.approx(logsumexp(joint, axis=1).sum(), rel=1e-10)
    assert np.all(np.diff(gm.history_) >= -1e-9 * np.abs(gm.history_[1:]))


def test_annealing_schedule_is_validated():
    X = blobs(np.random.default_rng(4), n=100)
    for bad, match in [
        ([0.2, 0.5], "end at inverse temperature 1"),
        ([0.5, 0.2, 1.0], "must not decrease"),
        ([0.0, 1.0], r"\(0, 1\]"),
        ([], "empty"),
        ("hot", "'default'"),
    ]:
        with pytest.raises(ValueError, match=match):
            GaussianMixture(2, anneal=bad).fit(X)
    with pytest.raises(ValueError, match="hard EM cannot be combined"):
        GaussianMixture(2, anneal="default", variant="hard").fit(X)
    with pytest.raises(ValueError, match="variant"):
        GaussianMixture(2, variant="stochastic").fit(X)
    with pytest.raises(ValueError, match="accel"):
        GaussianMixture(2, accel="aitken").fit(X)


def test_annealing_ends_with_plain_em_and_each_stage_is_monotone():
    X = blobs(np.random.default_rng(5))
    stages = []

    def watch(info):
        stages.append(info)

    res = emkit.em(
        GaussianMixtureModel(4, "full"),
        (X, None),
        anneal=[0.3, 0.6, 1.0],
        tol=1e-8,
        max_iter=200,
        random_state=0,
        check_monotone="raise",
        callback=watch,
    )
    # the final parameters are an EM fixed point at beta = 1: one more EM step changes nothing
    plain = emkit.em(
        GaussianMixtureModel(4, "full"), (X, None), init=res.params, max_iter=5, tol=0.0
    )
    assert plain.loglik == pytest.approx(res.loglik, rel=1e-7)
    starts = [s for s in stages if np.isnan(s.change)]
    assert len(starts) == 3  # one fresh start per stage


def test_tempered_objective_matches_its_definition():
    rng = np.random.default_rng(6)
    X = blobs(rng, n=200)
    model = GaussianMixtureModel(3, "diag")
    params = model.init_params((X, None), rng)
    beta = 0.4
    _, value = model.estep_variant(params, (X, None), beta=beta)
    lj = model.weighted_log_prob(params, X)
    from scipy.special import logsumexp

    assert value == pytest.approx(np.sum(logsumexp(beta * lj, axis=1)) / beta, rel=1e-12)
    _, hard = model.estep_variant(params, (X, None), hard=True)
    assert hard == pytest.approx(np.sum(lj.max(axis=1)), rel=1e-12)


def test_annealing_reaches_the_global_optimum_more_often():
    # Five clusters of very different sizes: plain EM from random points often merges
    # two small clusters; annealing first splits along the main directions of the data.
    rng = np.random.default_rng(7)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5]], dtype=float)
    sizes = [400, 400, 400, 40, 40]
    X = np.vstack([c + rng.normal(scale=0.8, size=(n, 2)) for c, n in zip(centres, sizes)])
    plain, annealed = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in range(12):
            kw = dict(init="random_from_data", random_state=seed, tol=1e-6, max_iter=300)
            plain.append(GaussianMixture(5, **kw).fit(X).loglik_)
            annealed.append(GaussianMixture(5, anneal="default", **kw).fit(X).loglik_)
    best = max(max(plain), max(annealed))
    hit = lambda values: sum(v >= best - 1e-6 * abs(best) for v in values)  # noqa: E731
    assert hit(annealed) > hit(plain)


def test_parallel_restarts_equal_sequential():
    X = blobs(np.random.default_rng(8))
    one = GaussianMixture(4, n_init=4, init="random", random_state=3).fit(X)
    par = GaussianMixture(4, n_init=4, init="random", random_state=3, n_jobs=2).fit(X)
    assert par.loglik_ == one.loglik_
    np.testing.assert_array_equal(par.means_, one.means_)
    with pytest.raises(ValueError, match="n_jobs"):
        GaussianMixture(2, n_jobs=0).fit(X)


class PoissonMixture:
    """A user-written two-parameter-family model: a mixture of Poissons on counts."""

    def __init__(self, K):
        self.K = K

    def init_params(self, data, rng):
        x = data["x"]
        return {"w": np.full(self.K, 1.0 / self.K), "rate": np.sort(rng.choice(x, self.K)) + 0.5}

    def _log_joint(self, params, x):
        from scipy.special import gammaln

        return (
            np.log(params["w"])
            + x[:, None] * np.log(params["rate"])
            - params["rate"]
            - gammaln(x + 1.0)[:, None]
        )

    def estep_variant(self, params, batch, *, beta=1.0, hard=False):
        from scipy.special import logsumexp

        lj = self._log_joint(params, batch["x"])
        if hard:
            best = lj.argmax(axis=1)
            resp = np.eye(self.K)[best]
            value = lj[np.arange(len(best)), best].sum()
        else:
            norm = logsumexp(beta * lj, axis=1)
            resp = np.exp(beta * lj - norm[:, None])
            value = norm.sum() / beta
        return {"n": resp.sum(0), "sx": resp.T @ batch["x"]}, float(value)

    def estep(self, params, batch):
        return self.estep_variant(params, batch)

    def mstep(self, stats, params):
        return {"w": stats["n"] / stats["n"].sum(), "rate": stats["sx"] / stats["n"]}


def poisson_data(seed=9):
    rng = np.random.default_rng(seed)
    return {"x": np.concatenate([rng.poisson(2.0, 600), rng.poisson(9.0, 400)]).astype(float)}


def test_hard_em_on_a_user_model_reaches_a_classification_fixed_point():
    data = poisson_data()
    res = emkit.em(
        PoissonMixture(2),
        data,
        variant="hard",
        random_state=0,
        tol=0.0,
        max_iter=200,
        check_monotone="raise",
    )
    model, p = PoissonMixture(2), res.params
    labels = model._log_joint(p, data["x"]).argmax(axis=1)
    for k in range(2):  # each rate is the mean of the counts assigned to it
        assert p["rate"][k] == pytest.approx(data["x"][labels == k].mean(), rel=1e-12)
        assert p["w"][k] == pytest.approx(np.mean(labels == k), rel=1e-12)
    assert res.converged


def test_annealing_and_squarem_on_a_user_model():
    data = poisson_data()
    plain = emkit.em(PoissonMixture(2), data, random_state=1, tol=1e-12, max_iter=5000)
    annealed = emkit.em(
        PoissonMixture(2),
        data,
        random_state=1,
        tol=1e-12,
        max_iter=5000,
        anneal=[0.2, 0.5, 1.0],
        check_monotone="raise",
    )
    assert annealed.loglik == pytest.approx(plain.loglik, rel=1e-9)
    np.testing.assert_allclose(
        np.sort(annealed.params["rate"]), np.sort(plain.params["rate"]), rtol=1e-5
    )


def test_a_model_without_the_hook_gets_a_clear_error():
    class Plain(PoissonMixture):
        estep_variant = None

    with pytest.raises(TypeError, match="estep_variant"):
        emkit.em(Plain(2), poisson_data(), variant="hard", random_state=0)
