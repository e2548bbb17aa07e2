"""emkit.Mixture: mixtures of any distribution.

Expected values come from independent sources: scikit-learn's GaussianMixture from
the same start, direct maximisation of the observed-data likelihood with
scipy.optimize, closed-form per-class MLEs, and the parameters data were sampled from.
"""

import itertools

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp

import emkit
from emkit import Mixture
from emkit._pytree import tree_add
from emkit.datasets import load_faithful
from emkit.distributions import (
    Bernoulli,
    Categorical,
    Gaussian,
    GaussianParams,
    Independent,
    Poisson,
)
from emkit.distributions.discrete import PoissonParams
from emkit.models.mixture.generic import MixtureModel

# Several fits run a fixed number of steps (tol=0) on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")


def best_permutation(est, true):
    """The permutation of estimated components closest to the true ones."""
    K = len(true)
    return min(itertools.permutations(range(K)), key=lambda p: np.abs(est[list(p)] - true).sum())


def poisson_data(rng, n=3000):
    rates = np.array([[1.0, 8.0], [6.0, 2.0], [15.0, 12.0]])
    weights = np.array([0.3, 0.5, 0.2])
    z = rng.choice(3, size=n, p=weights)
    return rng.poisson(rates[z]), rates, weights


def test_poisson_mixture_recovers_parameters():
    rng = np.random.default_rng(0)
    X, rates, weights = poisson_data(rng)
    mix = Mixture(Poisson(), 3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    est = np.array([c.rate for c in mix.components_])
    perm = list(best_permutation(est, rates))
    np.testing.assert_allclose(est[perm], rates, rtol=0.08)
    np.testing.assert_allclose(mix.weights_[perm], weights, atol=0.03)
    assert mix.converged_


def test_poisson_mixture_equals_direct_maximisation():
    # The EM fixed point is the maximum of the observed-data likelihood: maximise it
    # directly (softmax weights, log rates) with scipy and compare log-likelihoods.
    rng = np.random.default_rng(1)
    X, _, _ = poisson_data(rng, n=600)
    mix = Mixture(Poisson(), 3, random_state=0, tol=1e-12, max_iter=5000).fit(X)

    def negll(theta):
        logits, log_rates = np.r_[0.0, theta[:2]], theta[2:].reshape(3, 2)
        log_w = logits - logsumexp(logits)
        lp = stats.poisson.logpmf(X[:, None, :], np.exp(log_rates)[None]).sum(axis=2)
        return -logsumexp(lp + log_w, axis=1).sum()

    est = np.array([c.rate for c in mix.components_])
    w = mix.weights_
    start = np.r_[np.log(w[1:] / w[0]), np.log(est).ravel()] + 0.05
    res = optimize.minimize(negll, start, method="BFGS", options={"gtol": 1e-8})
    assert mix.loglik_ == pytest.approx(-res.fun, rel=1e-9)
    assert mix.score(X) * len(X) == pytest.approx(-res.fun, rel=1e-9)


def test_bernoulli_mixture_recovers_parameters():
    rng = np.random.default_rng(2)
    probs = np.array([[0.9, 0.9, 0.8, 0.1, 0.1, 0.2], [0.1, 0.2, 0.1, 0.9, 0.8, 0.9]])
    z = rng.choice(2, size=2000, p=[0.4, 0.6])
    X = (rng.uniform(size=(2000, 6)) < probs[z]).astype(int)
    mix = Mixture(Bernoulli(), 2, random_state=1, tol=1e-6).fit(X)
    est = np.array([c.probs for c in mix.components_])
    perm = list(best_permutation(est, probs))
    np.testing.assert_allclose(est[perm], probs, atol=0.04)
    np.testing.assert_allclose(mix.weights_[perm], [0.4, 0.6], atol=0.03)


def test_mixed_independent_mixture_recovers_parameters():
    rng = np.random.default_rng(3)
    n = 3000
    means = np.array([[0.0, 0.0], [4.0, -3.0]])
    sds = np.array([[1.0, 0.5], [0.7, 1.5]])
    cat = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    rates = np.array([2.0, 9.0])
    z = rng.choice(2, size=n, p=[0.45, 0.55])
    X = np.column_stack(
        [
            rng.normal(means[z], sds[z]),
            [rng.choice(3, p=cat[k]) for k in z],
            rng.poisson(rates[z]),
        ]
    )
    dist = Independent({(0, 1): Gaussian("diag"), 2: Categorical(3), 3: Poisson()})
    mix = Mixture(dist, 2, random_state=0, tol=1e-6).fit(X)
    est_means = np.array([c[0].mean for c in mix.components_])
    perm = list(best_permutation(est_means, means))
    comps = [mix.components_[k] for k in perm]
    np.testing.assert_allclose([c[0].mean for c in comps], means, atol=0.1)
    np.testing.assert_allclose([np.sqrt(c[0].covariance) for c in comps], sds, atol=0.1)
    np.testing.assert_allclose([c[1].probs[0] for c in comps], cat, atol=0.04)
    np.testing.assert_allclose([c[2].rate[0] for c in comps], rates, rtol=0.05)
    np.testing.assert_allclose(mix.weights_[perm], [0.45, 0.55], atol=0.03)
    # Parameters read as attributes, as promised.
    assert mix.components_[0][2].rate.shape == (1,)


@pytest.mark.parametrize("cov_type", ["full", "diag", "tied", "spherical"])
def test_gaussian_components_give_the_gaussian_mixture_fit(cov_type):
    from sklearn.mixture import GaussianMixture as SkGMM

    X = load_faithful()[0]
    K = 3
    rng = np.random.default_rng(4)
    means = X[rng.choice(len(X), K, replace=False)]
    weights = np.full(K, 1.0 / K)
    cov_full = np.cov(X.T)
    if cov_type == "full":
        covs = np.stack([cov_full] * K)
    elif cov_type == "tied":
        covs = cov_full
    elif cov_type == "diag":
        covs = np.tile(np.diag(cov_full), (K, 1))
    else:
        covs = np.full(K, np.diag(cov_full).mean())
    g = Gaussian(cov_type)
    comps = [GaussianParams(means[k], g.from_storage(covs, K)[k]) for k in range(K)]
    kw = dict(tol=0.0, max_iter=40, check_monotone="raise")
    mix = Mixture(g, K, init={"weights": weights, "components": comps}, **kw).fit(X)
    ref = emkit.GaussianMixture(
        K,
        covariance_type=cov_type,
        init={"weights": weights, "means": means, "covariances": covs},
        **kw,
    ).fit(X)
    prec = np.linalg.inv(covs) if cov_type in ("full", "tied") else 1.0 / covs
    sk = SkGMM(
        K,
        covariance_type=cov_type,
        weights_init=weights,
        means_init=means,
        precisions_init=prec,
        tol=0.0,
        max_iter=40,
        reg_covar=1e-6,
    ).fit(X)
    got_covs = g.storage(mix.component_arrays_["covariance"])
    for other in (ref, sk):
        np.testing.assert_allclose(mix.weights_, other.weights_, rtol=1e-8)
        np.testing.assert_allclose(mix.component_arrays_["mean"], other.means_, rtol=1e-8)
        np.testing.assert_allclose(got_covs, other.covariances_, rtol=1e-7)
    assert mix.score(X) == pytest.approx(sk.score(X), rel=1e-10)
    np.testing.assert_allclose(mix.predict_proba(X), sk.predict_proba(X), atol=1e-8)
    assert mix.bic(X) == pytest.approx(sk.bic(X), rel=1e-10)
    assert mix.aic(X) == pytest.approx(sk.aic(X), rel=1e-10)


def test_fully_labelled_fit_is_the_per_class_mle():
    rng = np.random.default_rng(5)
    X, _, _ = poisson_data(rng, n=500)
    y = rng.choice(3, size=500)
    mix = Mixture(Poisson(), 3, random_state=0).fit(X, y)
    for k in range(3):
        np.testing.assert_allclose(mix.components_[k].rate, X[y == k].mean(axis=0), rtol=1e-12)
        assert mix.weights_[k] == pytest.approx(np.mean(y == k), rel=1e-12)


def test_semi_supervised_labels_are_respected_and_steer_the_fit():
    rng = np.random.default_rng(6)
    X = np.concatenate([rng.poisson(3.0, (400, 1)), rng.poisson(12.0, (400, 1))])
    y = np.full(800, -1)
    # Label a few high-count rows as component 0 and low ones as component 1: the
    # components must follow the labels (unsupervised EM's order is arbitrary).
    y[rng.choice(np.arange(400, 800), 20, replace=False)] = 0
    y[rng.choice(400, 20, replace=False)] = 1
    mix = Mixture(Poisson(), 2, random_state=0, tol=1e-10, max_iter=1000).fit(X, y)
    assert mix.components_[0].rate[0] == pytest.approx(12.0, rel=0.08)
    assert mix.components_[1].rate[0] == pytest.approx(3.0, rel=0.08)
    mix_rev = Mixture(Poisson(), 2, random_state=0, tol=1e-10, max_iter=1000).fit(
        X, np.where(y >= 0, 1 - y, -1)
    )
    assert mix_rev.components_[0].rate[0] == pytest.approx(3.0, rel=0.08)

    # The fit maximises sum_labelled log(w_y p_y) + sum_unlabelled log sum_k w_k p_k:
    # maximise that directly.
    known = y >= 0

    def neg_objective(theta):
        log_w = np.r_[0.0, theta[0]] - logsumexp(np.r_[0.0, theta[0]])
        lj = stats.poisson.logpmf(X, np.exp(theta[1:])[None]) + log_w
        return -(lj[known, y[known]].sum() + logsumexp(lj[~known], axis=1).sum())

    w = mix.weights_
    start = np.r_[np.log(w[1] / w[0]), np.log([c.rate[0] for c in mix.components_])] + 0.1
    res = optimize.minimize(neg_objective, start, method="BFGS", options={"gtol": 1e-9})
    assert mix.loglik_ == pytest.approx(-res.fun, rel=1e-9)


@pytest.mark.parametrize(
    "dist, make",
    [
        (Poisson(), lambda rng: poisson_data(rng, 400)[0]),
        (Bernoulli(), lambda rng: (rng.uniform(size=(300, 5)) < 0.4).astype(int)),
        (
            Independent({0: Gaussian("full"), 1: Categorical(4)}),
            lambda rng: np.column_stack([rng.normal(size=300), rng.choice(4, 300)]),
        ),
    ],
)
def test_log_likelihood_never_decreases(dist, make):
    X = make(np.random.default_rng(7))
    mix = Mixture(dist, 3, random_state=2, tol=0.0, max_iter=60, check_monotone="raise").fit(X)
    h = np.asarray(mix.history_)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))


def test_statistics_add_over_any_split():
    rng = np.random.default_rng(8)
    X, _, _ = poisson_data(rng, 300)
    dist = Poisson()
    X = dist.validate(X)
    model = MixtureModel(dist, 3)
    params = model.init_params((X, None, None), rng)
    w = rng.uniform(size=300)
    labels = np.where(rng.uniform(size=300) < 0.2, rng.choice(3, 300), -1)
    whole, ll = model.estep(params, (X, w, labels))
    idx = rng.permutation(300)
    a, b = idx[:120], idx[120:]
    sa, la = model.estep(params, (X[a], w[a], labels[a]))
    sb, lb = model.estep(params, (X[b], w[b], labels[b]))
    parts = tree_add(sa, sb)
    np.testing.assert_allclose(parts.nk, whole.nk, rtol=1e-12)
    np.testing.assert_allclose(parts.components.counts, whole.components.counts, rtol=1e-12)
    assert la + lb == pytest.approx(ll, rel=1e-12)


def test_integer_sample_weights_equal_repeated_rows():
    rng = np.random.default_rng(9)
    X, rates, weights = poisson_data(rng, 200)
    reps = rng.integers(0, 4, size=200)
    start = {"weights": weights, "components": [Poisson().params_type(r) for r in rates]}
    # Few steps: near the optimum, round-off decides when a tol=0 run stops.
    kw = dict(init=start, tol=0.0, max_iter=10)
    a = Mixture(Poisson(), 3, **kw).fit(X, sample_weight=reps)
    b = Mixture(Poisson(), 3, **kw).fit(np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-10)
    np.testing.assert_allclose(a.component_arrays_["rate"], b.component_arrays_["rate"], rtol=1e-10)
    assert a.loglik_ == pytest.approx(b.loglik_, rel=1e-10)


def test_engine_options_apply():
    rng = np.random.default_rng(10)
    X, _, _ = poisson_data(rng, 1000)
    plain = Mixture(Poisson(), 3, random_state=0, tol=1e-9, max_iter=2000).fit(X)
    fast = Mixture(Poisson(), 3, random_state=0, tol=1e-9, max_iter=2000, accel="squarem").fit(X)
    assert fast.loglik_ == pytest.approx(plain.loglik_, rel=1e-6)
    assert fast.n_iter_ < plain.n_iter_
    best = Mixture(Poisson(), 3, random_state=0, n_init=4, tol=1e-6).fit(X)
    assert best.loglik_ >= plain.loglik_ - 1e-6 * abs(plain.loglik_)
    # Hard EM's fixed point: each rate is the mean of the rows it labels, each weight
    # their share (classification likelihood).
    hard = Mixture(Poisson(), 3, random_state=0, variant="hard", tol=0.0, max_iter=200).fit(X)
    labels = hard.predict(X)
    for k in range(3):
        np.testing.assert_allclose(hard.components_[k].rate, X[labels == k].mean(axis=0))
        assert hard.weights_[k] == pytest.approx(np.mean(labels == k))
    # Online EM from a poor start (scored here with scipy, 1.9 nats per row below the
    # maximum) climbs to the batch maximum: a fit that stopped near its start fails.
    w0, r0 = np.full(3, 1 / 3), np.array([[4.0, 5.0], [6.0, 6.0], [8.0, 7.0]])
    start_score = logsumexp(
        np.log(w0) + stats.poisson.logpmf(X[:, None, :], r0[None]).sum(-1), axis=1
    ).mean()
    assert start_score < plain.score(X) - 1.0
    start = {"weights": w0, "components": [PoissonParams(rate=r) for r in r0]}
    online = Mixture(
        Poisson(), 3, init=start, variant="online", batch_size=100, max_iter=10, tol=0.0
    )
    online.fit(X)
    assert online.score(X) == pytest.approx(plain.score(X), abs=1e-4)
    batched = Mixture(Poisson(), 3, random_state=0, batch_size=128, tol=1e-9, max_iter=2000).fit(X)
    assert batched.loglik_ == pytest.approx(plain.loglik_, rel=1e-9)
    # Well-separated components: annealing ends at the same maximum as plain EM.
    annealed = Mixture(Poisson(), 3, random_state=0, anneal=[0.5, 1.0], tol=1e-9).fit(X)
    assert annealed.loglik_ == pytest.approx(plain.loglik_, rel=1e-6)


def test_information_criteria_and_prediction():
    rng = np.random.default_rng(11)
    X, _, _ = poisson_data(rng, 500)
    mix = Mixture(Poisson(), 3, random_state=0).fit(X)
    rates = mix.component_arrays_["rate"]
    lj = stats.poisson.logpmf(X[:, None, :], rates[None]).sum(axis=2) + np.log(mix.weights_)
    ll = logsumexp(lj, axis=1)
    n_params = 2 + 3 * 2
    np.testing.assert_allclose(mix.score_samples(X), ll, rtol=1e-12)
    assert mix.bic(X) == pytest.approx(-2 * ll.sum() + n_params * np.log(500), rel=1e-12)
    assert mix.aic(X) == pytest.approx(-2 * ll.sum() + 2 * n_params, rel=1e-12)
    post = np.exp(lj - ll[:, None])
    np.testing.assert_allclose(mix.predict_proba(X), post, atol=1e-12)
    np.testing.assert_array_equal(mix.predict(X), post.argmax(axis=1))
    assert mix.icl(X) == pytest.approx(mix.bic(X) - 2 * np.log(post.max(axis=1)).sum(), rel=1e-12)
    S, labels = mix.sample(20000)
    assert S.shape == (20000, 2)
    np.testing.assert_allclose(S.mean(axis=0), mix.weights_ @ rates, rtol=0.03)
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 20000, mix.weights_, atol=0.015)


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(12)
    X = np.column_stack([rng.normal(size=200), rng.choice(3, 200), rng.poisson(4.0, 200)])
    dist = Independent({0: Gaussian("diag"), 1: Categorical(3), 2: Poisson()})
    mix = Mixture(dist, 2, random_state=0).fit(X)
    path = tmp_path / "mix.emkit"
    mix.save(path)
    back = emkit.load(path)
    assert isinstance(back, Mixture)
    np.testing.assert_allclose(back.predict_proba(X), mix.predict_proba(X), rtol=1e-12)
    assert back.components_[1][2].rate == pytest.approx(mix.components_[1][2].rate)
    assert back.loglik_ == mix.loglik_


def test_bad_inputs_raise_clear_errors_and_keep_an_earlier_fit():
    rng = np.random.default_rng(13)
    X, _, _ = poisson_data(rng, 100)
    mix = Mixture(Poisson(), 2, random_state=0).fit(X)
    before = mix.component_arrays_["rate"].copy()
    with pytest.raises(ValueError, match="column 1 has negative"):
        mix.fit(np.column_stack([X[:, 0], -X[:, 1]]))
    with pytest.raises(ValueError, match="y must be -1"):
        mix.fit(X, np.full(100, 5))
    with pytest.raises(ValueError, match=r"y must have shape \(100,\)"):
        mix.fit(X, np.zeros(3, dtype=int))
    with pytest.raises(TypeError, match="integer component labels"):
        mix.fit(X, np.array(["a"] * 100))
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        Mixture(Poisson(), 5).fit(X[:3])
    with pytest.raises(TypeError, match="component must be a distribution"):
        Mixture("poisson", 2).fit(X)
    with pytest.raises(ValueError, match="init must be one of"):
        Mixture(Poisson(), 2, init="nope").fit(X)
    with pytest.raises(ValueError, match="init components must list 2"):
        Mixture(Poisson(), 2, init={"components": [Poisson().params_type(np.ones(2))]}).fit(X)
    with pytest.raises(ValueError, match="unknown keys"):
        Mixture(Poisson(), 2, init={"means": 1}).fit(X)
    with pytest.raises(ValueError, match="weight_concentration"):
        Mixture(Poisson(), 2, weight_concentration=0.5).fit(X)
    with pytest.raises(ValueError, match="X has 3 features"):
        mix.predict(np.ones((2, 3)))
    np.testing.assert_array_equal(mix.component_arrays_["rate"], before)


def test_map_em_with_priors_keeps_empty_components_defined():
    from emkit.distributions import GammaPrior

    X = np.array([[0], [0], [1], [0]])
    mix = Mixture(
        Poisson(),
        2,
        prior=GammaPrior(2.0, 1.0),
        weight_concentration=2.0,
        init={
            "weights": [0.5, 0.5],
            "components": [Poisson().params_type(np.array([r])) for r in (0.1, 50.0)],
        },
        check_monotone="raise",
        tol=0.0,
        max_iter=50,
    ).fit(X)
    rates = mix.component_arrays_["rate"][:, 0]
    assert np.all(np.isfinite(rates)) and np.all(rates > 0)
    h = np.asarray(mix.history_)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))


# ---------------------------------------------------------------- missing values
def test_poisson_mixture_with_missing_values_equals_direct_maximisation():
    rng = np.random.default_rng(20)
    X, _, _ = poisson_data(rng, 500)
    X = X.astype(float)
    X[rng.uniform(size=X.shape) < 0.25] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 3.0
    mix = Mixture(Poisson(), 3, random_state=0, tol=1e-12, max_iter=5000).fit(X)
    obs = ~np.isnan(X)

    def negll(theta):
        logits, log_rates = np.r_[0.0, theta[:2]], theta[2:].reshape(3, 2)
        log_w = logits - logsumexp(logits)
        terms = stats.poisson.logpmf(np.nan_to_num(X)[:, None, :], np.exp(log_rates)[None])
        lp = np.where(obs[:, None, :], terms, 0.0).sum(axis=2)
        return -logsumexp(lp + log_w, axis=1).sum()

    est = mix.component_arrays_["rate"]
    w = mix.weights_
    start = np.r_[np.log(w[1:] / w[0]), np.log(est).ravel()] + 0.05
    res = optimize.minimize(negll, start, method="BFGS", options={"gtol": 1e-8})
    assert mix.loglik_ == pytest.approx(-res.fun, rel=1e-9)
    assert mix.score(X) * len(X) == pytest.approx(-res.fun, rel=1e-9)


def test_gaussian_mixture_with_missing_values_equals_direct_maximisation():
    rng = np.random.default_rng(21)
    n, D = 150, 2
    z = rng.choice(2, size=n)
    X = rng.normal(size=(n, D)) @ np.array([[1.0, 0.5], [0.0, 1.0]])
    X[z == 1] += [3.0, -2.0]
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 1] = 0.0
    mix = Mixture(Gaussian("full", reg_covar=0.0), 2, random_state=0, tol=1e-12, max_iter=5000)
    mix.fit(X)
    iu = np.tril_indices(D)

    def unpack(theta):
        log_w = np.r_[0.0, theta[0]] - logsumexp(np.r_[0.0, theta[0]])
        means = theta[1 : 1 + 2 * D].reshape(2, D)
        covs = []
        for k in range(2):
            L = np.zeros((D, D))
            L[iu] = theta[1 + 2 * D + k * len(iu[0]) : 1 + 2 * D + (k + 1) * len(iu[0])]
            L[np.diag_indices(D)] = np.exp(L[np.diag_indices(D)])
            covs.append(L @ L.T)
        return log_w, means, covs

    patterns = {}
    for i, x in enumerate(X):
        patterns.setdefault(tuple(~np.isnan(x)), []).append(i)

    def negll(theta):
        log_w, means, covs = unpack(theta)
        lp = np.empty((n, 2))
        for key, rows in patterns.items():
            o = np.array(key)
            for k in range(2):
                mvn = stats.multivariate_normal(means[k][o], covs[k][np.ix_(o, o)])
                lp[rows, k] = log_w[k] + mvn.logpdf(X[np.ix_(rows, o)])
        return -logsumexp(lp, axis=1).sum()

    w = mix.weights_
    theta = [np.log(w[1] / w[0]), *mix.component_arrays_["mean"].ravel()]
    for cov in mix.component_arrays_["covariance"]:
        L = np.linalg.cholesky(cov)
        L[np.diag_indices(D)] = np.log(L[np.diag_indices(D)])
        theta.extend(L[iu])
    start = np.asarray(theta) + 0.02
    res = optimize.minimize(negll, start, method="BFGS", options={"gtol": 1e-7})
    assert mix.loglik_ == pytest.approx(-res.fun, rel=1e-7)
    assert mix.loglik_ >= -res.fun - 1e-6 * abs(res.fun)


def test_mixed_mixture_with_missing_values_recovers_parameters_and_is_monotone():
    rng = np.random.default_rng(22)
    n = 3000
    z = rng.choice(2, size=n, p=[0.4, 0.6])
    means = np.array([[0.0, 0.0], [3.0, -3.0]])
    cat = np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7]])
    X = np.column_stack([rng.normal(means[z]), [rng.choice(3, p=cat[k]) for k in z]])
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    X[np.isnan(X).all(axis=1), 2] = 0.0
    dist = Independent({(0, 1): Gaussian("full"), 2: Categorical(3)})
    mix = Mixture(dist, 2, random_state=0, tol=1e-8, max_iter=500, check_monotone="raise").fit(X)
    est = np.array([c[0].mean for c in mix.components_])
    perm = list(best_permutation(est, means))
    np.testing.assert_allclose(est[perm], means, atol=0.12)
    np.testing.assert_allclose([mix.components_[k][1].probs[0] for k in perm], cat, atol=0.05)
    h = np.asarray(mix.history_)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    # Rows with NaN are predicted from their observed values.
    # Rows with NaN are predicted from their observed values: by scipy, the category
    # alone, or the first coordinate's marginal normal alone.
    proba = mix.predict_proba(np.array([[np.nan, np.nan, 2.0], [3.0, np.nan, np.nan]]))
    w = mix.weights_
    by_category = w * np.array([c[1].probs[0][2] for c in mix.components_])
    by_x0 = w * np.array(
        [stats.norm.pdf(3.0, c[0].mean[0], np.sqrt(c[0].covariance[0, 0])) for c in mix.components_]
    )
    expected = np.vstack([by_category / by_category.sum(), by_x0 / by_x0.sum()])
    np.testing.assert_allclose(proba, expected, rtol=1e-10)


def test_rows_with_every_value_missing():
    X = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 0.0], [2.0, 5.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"1 row\(s\) of X have every value missing \(rows \[1\]"):
        Mixture(Poisson(), 2, random_state=0).fit(X)
    with pytest.warns(UserWarning, match="dropping them"):
        mix = Mixture(Poisson(), 2, random_state=0, all_missing="drop").fit(X)
    ref = Mixture(Poisson(), 2, random_state=0).fit(np.delete(X, 1, axis=0))
    np.testing.assert_allclose(mix.component_arrays_["rate"], ref.component_arrays_["rate"])


def test_a_mixture_is_map_em_only_with_a_prior():
    # Without a prior the engine's objective (and its messages) is the log-likelihood
    from emkit.models.mixture.gaussian_model import GaussianMixtureModel
    from emkit.models.mixture.model import MixtureModel
    from emkit.models.mixture.weights import ConstantWeights

    assert not hasattr(GaussianMixtureModel(2), "log_prior")
    with_prior = MixtureModel(Poisson(), 2, weights=ConstantWeights(2.0))
    params = with_prior.params_from_responsibilities(
        np.array([[1.0], [5.0]]), None, np.array([[1.0, 0.0], [0.0, 1.0]])
    )
    # Dirichlet(2, 2) on the weights: (alpha - 1) * sum(log w), the weights (2/4, 2/4)
    assert with_prior.log_prior(params) == pytest.approx(2 * np.log(0.5))
