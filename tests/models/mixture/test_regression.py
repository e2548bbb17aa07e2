"""emkit.MixtureOfRegressions.

Expected values come from independent sources: the lines data were sampled from,
a direct scipy.optimize maximisation of the likelihood (written here with
scipy.stats), numpy.linalg.lstsq for ordinary and weighted least squares, and
scikit-learn's r2_score.
"""

import itertools
import warnings

import numpy as np
import pytest
from conditional_checks import assert_additive
from scipy import optimize, stats
from scipy.special import logsumexp, softmax
from sklearn.metrics import r2_score

import emkit
from emkit import MixtureOfRegressions
from emkit.distributions.conditional import LinearExperts
from emkit.models.mixture.conditional import ConditionalMixtureModel, ConstantPart

# Several fits run a fixed number of steps (tol=0) on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")

LINES = np.array([[1.0, 2.0, -1.0], [-2.0, -1.0, 0.5], [4.0, 0.0, 3.0]])  # intercept, coefs
SD = np.array([0.3, 0.5, 0.2])
WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_PARAMS = {
    "weights": WEIGHTS,
    "intercept": LINES[:, 0],
    "coef": LINES[:, 1:],
    "noise_variance": SD**2,
}


def sample_lines(rng, n=3000):
    X = rng.uniform(-3, 3, (n, 2))
    z = rng.choice(3, size=n, p=WEIGHTS)
    y = LINES[z, 0] + np.einsum("ij,ij->i", X, LINES[z, 1:]) + rng.normal(0, SD[z])
    return X, y, z


def loglik(X, y, weights, intercept, coef, var):
    """log p(y | x) of a mixture of regressions, with scipy.stats."""
    mu = intercept + X @ coef.T
    dens = stats.norm.logpdf(y[:, None], mu, np.sqrt(var)) + np.log(weights)
    return logsumexp(dens, axis=1)


def match(est, true):
    """The permutation of fitted components closest to the true ones."""
    K = len(true)
    return list(
        min(itertools.permutations(range(K)), key=lambda p: np.abs(est[list(p)] - true).sum())
    )


def test_recovers_known_lines():
    rng = np.random.default_rng(0)
    X, y, _ = sample_lines(rng)
    mr = MixtureOfRegressions(3, n_init=3, random_state=0).fit(X, y)
    est = np.column_stack([mr.intercept_, mr.coef_])
    order = match(est, LINES)
    np.testing.assert_allclose(est[order], LINES, atol=0.08)
    np.testing.assert_allclose(mr.weights_[order], WEIGHTS, atol=0.03)
    np.testing.assert_allclose(np.sqrt(mr.noise_variance_[order]), SD, rtol=0.08)
    ref = loglik(X, y, mr.weights_, mr.intercept_, mr.coef_, mr.noise_variance_).sum()
    assert mr.loglik_ == pytest.approx(ref, rel=1e-10)
    np.testing.assert_allclose(
        mr.score_samples(X, y),
        loglik(X, y, mr.weights_, mr.intercept_, mr.coef_, mr.noise_variance_),
    )


def test_matches_direct_maximisation_of_the_likelihood():
    rng = np.random.default_rng(1)
    n = 80
    x = rng.uniform(-2, 2, (n, 1))
    z = rng.random(n) < 0.4
    y = np.where(z, 1.0 + 1.5 * x[:, 0], -0.5 * x[:, 0]) + rng.normal(0, 0.4, n)
    mr = MixtureOfRegressions(2, tol=1e-12, max_iter=3000, n_init=3, random_state=0).fit(x, y)

    def negative(theta):
        a, b0, b1, c0, c1, s0, s1 = theta
        w = np.array([1 / (1 + np.exp(-a)), 1 / (1 + np.exp(a))])
        return -loglik(x, y, w, np.array([b0, c0]), np.array([[b1], [c1]]), np.exp([s0, s1])).sum()

    starts = [[0, 1, 1, 0, 0, 0, 0], [0.5, 0.5, 2, -1, -1, -1, -1], [0, 0, -1, 0, 1, 0, 0]]
    fits = [optimize.minimize(negative, s, method="BFGS", options={"gtol": 1e-8}) for s in starts]
    best = min(fits, key=lambda r: r.fun)
    assert mr.loglik_ >= -best.fun - 1e-7
    assert mr.loglik_ == pytest.approx(-best.fun, abs=1e-6)
    _, b0, b1, c0, c1, s0, s1 = best.x
    ref = np.array([[b0, b1, np.exp(s0)], [c0, c1, np.exp(s1)]])
    est = np.column_stack([mr.intercept_, mr.coef_[:, 0], mr.noise_variance_])
    np.testing.assert_allclose(est[match(est, ref)], ref, rtol=1e-4, atol=1e-5)


def test_one_component_is_ordinary_least_squares():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3)) * [1, 10, 0.1]
    y = X @ [0.5, -0.2, 3.0] + 4.0 + rng.normal(0, 0.7, 200)
    mr = MixtureOfRegressions(1, n_init=1).fit(X, y)
    A = np.column_stack([np.ones(200), X])
    beta, rss, *_ = np.linalg.lstsq(A, y, rcond=None)
    np.testing.assert_allclose(mr.intercept_[0], beta[0], rtol=1e-10)
    np.testing.assert_allclose(mr.coef_[0], beta[1:], rtol=1e-10)
    np.testing.assert_allclose(mr.noise_variance_[0], rss[0] / 200, rtol=1e-10)
    np.testing.assert_allclose(mr.weights_, [1.0])


def test_one_component_with_sample_weights_is_weighted_least_squares():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 2))
    y = X @ [1.0, -2.0] + 0.3 + rng.normal(0, 1.0, 150)
    w = rng.uniform(0.1, 3.0, 150)
    mr = MixtureOfRegressions(1, n_init=1).fit(X, y, sample_weight=w)
    A = np.column_stack([np.ones(150), X]) * np.sqrt(w)[:, None]
    beta = np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)[0]
    np.testing.assert_allclose(np.r_[mr.intercept_, mr.coef_[0]], beta, rtol=1e-10)
    resid = y - beta[0] - X @ beta[1:]
    np.testing.assert_allclose(mr.noise_variance_[0], np.dot(w, resid**2) / w.sum(), rtol=1e-10)


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(4)
    X, y, _ = sample_lines(rng, n=300)
    counts = rng.integers(1, 4, 300)
    start = TRUE_PARAMS
    a = MixtureOfRegressions(3, init=start, tol=0, max_iter=5).fit(X, y, sample_weight=counts)
    b = MixtureOfRegressions(3, init=start, tol=0, max_iter=5).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts)
    )
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)
    np.testing.assert_allclose(a.loglik_, b.loglik_, rtol=1e-10)


@pytest.mark.parametrize("accel", [None, "squarem"])
def test_log_likelihood_never_decreases(accel):
    rng = np.random.default_rng(5)
    X, y, _ = sample_lines(rng, n=500)
    mr = MixtureOfRegressions(
        3,
        init="random",
        tol=0,
        max_iter=60,
        accel=accel,
        check_monotone="raise",
        random_state=1,
        n_init=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        mr.fit(X, y)
    assert np.all(np.diff(mr.history_) >= -1e-9 * np.abs(mr.history_[1:]))


def test_statistics_add_up_over_any_split():
    rng = np.random.default_rng(6)
    X, y, _ = sample_lines(rng, n=200)
    A = np.column_stack([np.ones(200), X])
    w = rng.uniform(0.5, 2, 200)
    assert_additive(ConditionalMixtureModel(ConstantPart(), LinearExperts(), 3), A, y, w, rng)


def test_exact_far_from_the_origin():
    rng = np.random.default_rng(7)
    X, y, _ = sample_lines(rng, n=600)
    start = TRUE_PARAMS
    near = MixtureOfRegressions(3, init=start, tol=0, max_iter=20).fit(X, y)
    shift_x, shift_y = np.array([1e6, -3e5]), 1e7
    far_start = dict(start, intercept=LINES[:, 0] + shift_y - LINES[:, 1:] @ shift_x)
    far = MixtureOfRegressions(3, init=far_start, tol=0, max_iter=20).fit(X + shift_x, y + shift_y)
    # y near 1e7 is itself stored to about 2e-9: agreement to 1e-8 is all the data hold
    np.testing.assert_allclose(far.coef_, near.coef_, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(far.noise_variance_, near.noise_variance_, rtol=1e-7)
    np.testing.assert_allclose(far.loglik_, near.loglik_, rtol=1e-9)
    np.testing.assert_allclose(far.predict(X + shift_x) - shift_y, near.predict(X), atol=1e-6)


def test_predictions_and_criteria():
    rng = np.random.default_rng(8)
    X, y, _ = sample_lines(rng, n=400)
    mr = MixtureOfRegressions(3, n_init=2, random_state=0).fit(X, y)
    mu = mr.intercept_ + X @ mr.coef_.T
    np.testing.assert_allclose(mr.predict(X), mu @ mr.weights_)
    assert mr.score(X, y) == pytest.approx(r2_score(y, mu @ mr.weights_))
    joint = stats.norm.logpdf(y[:, None], mu, np.sqrt(mr.noise_variance_)) + np.log(mr.weights_)
    np.testing.assert_allclose(
        mr.predict_proba(X, y), np.exp(joint - logsumexp(joint, 1, keepdims=True))
    )
    ll = logsumexp(joint, axis=1).sum()
    n_params = 2 + 3 * 3 + 3
    assert mr.bic(X, y) == pytest.approx(-2 * ll + n_params * np.log(400))
    assert mr.aic(X, y) == pytest.approx(-2 * ll + 2 * n_params)
    draws, labels = mr.sample(np.repeat(X[:1], 20_000, axis=0))
    assert np.bincount(labels, minlength=3) / 20_000 == pytest.approx(mr.weights_, abs=0.015)
    assert draws.mean() == pytest.approx(mr.predict(X[:1])[0], abs=0.05)


def test_variance_floor_keeps_a_collapsing_component_finite():
    # 3 points exactly on a line in a component of their own: the variance hits the floor
    rng = np.random.default_rng(9)
    x = np.r_[rng.uniform(-1, 1, 60), [5.0, 6.0, 7.0]]
    y = np.r_[rng.normal(0, 1, 60), [10.0, 12.0, 14.0]]
    start = {
        "weights": [60 / 63, 3 / 63],
        "intercept": [0.0, 0.0],
        "coef": [[0.0], [2.0]],
        "noise_variance": [1.0, 1e-6],
    }
    mr = MixtureOfRegressions(2, init=start, reg_noise=1e-4, max_iter=50).fit(x[:, None], y)
    floor = 1e-4 * np.var(y)
    assert np.all(np.isfinite(mr.noise_variance_)) and np.isfinite(mr.loglik_)
    assert mr.noise_variance_.min() == pytest.approx(floor, rel=1e-9)
    assert np.all(mr.predict_proba(x[-3:, None], y[-3:]).argmax(axis=1) == 1)


def test_persistence_round_trip(tmp_path):
    rng = np.random.default_rng(10)
    X, y, _ = sample_lines(rng, n=300)
    mr = MixtureOfRegressions(3, n_init=1, random_state=0).fit(X, y)
    mr.save(tmp_path / "m.npz")
    back = emkit.load(tmp_path / "m.npz")
    assert isinstance(back, MixtureOfRegressions)
    np.testing.assert_array_equal(back.coef_, mr.coef_)
    np.testing.assert_array_equal(back.score_samples(X, y), mr.score_samples(X, y))
    np.testing.assert_array_equal(back.predict(X), mr.predict(X))


@pytest.mark.parametrize(
    ("kwargs", "X", "y", "message"),
    [
        ({}, np.ones((5, 1)), np.ones(4), "y must have shape"),
        ({}, np.array([[1.0], [np.nan], [2.0]]), np.ones(3), "NaN"),
        ({}, np.ones((3, 1)), np.array([1.0, np.nan, 2.0]), "NaN"),
        ({"n_components": 0}, np.ones((3, 1)), np.ones(3), "n_components"),
        ({"n_components": 5}, np.ones((3, 1)), np.ones(3), "n_samples >= n_components"),
        (
            {"init": {"coef": np.ones(2)}},
            np.ones((3, 1)),
            np.arange(3.0),
            "init coef must have shape",
        ),
        ({"init": {"slope": 1}}, np.ones((3, 1)), np.arange(3.0), "unknown keys"),
        ({"init": "nearest"}, np.ones((3, 1)), np.arange(3.0), "init must be one of"),
        ({"reg_noise": -1.0}, np.ones((3, 1)), np.arange(3.0), "reg_noise"),
    ],
)
def test_bad_input_raises_and_keeps_the_previous_fit(kwargs, X, y, message):
    rng = np.random.default_rng(11)
    Xg, yg, _ = sample_lines(rng, n=100)
    mr = MixtureOfRegressions(2, n_init=1, random_state=0).fit(Xg[:, :1], yg)
    before = mr.coef_.copy()
    mr.set_params(**kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        mr.fit(X, y)
    np.testing.assert_array_equal(mr.coef_, before)


def test_hold_keeps_named_parameters_and_maximises_the_others():
    rng = np.random.default_rng(12)
    X, y, _ = sample_lines(rng, n=400)
    A = np.column_stack([np.ones(400), X])
    model = ConditionalMixtureModel(ConstantPart(), LinearExperts(), 3)
    params = model.init_params((A, y, None), rng)
    held = model.hold(["weights", "noise_variance"])
    stats, _ = held.estep(params, (A, y, None))
    new = held.mstep(stats, params)
    np.testing.assert_array_equal(new["weights"], params["weights"])
    np.testing.assert_array_equal(new["noise_variance"], params["noise_variance"])
    # the lines: weighted least squares on the responsibilities (computed here)
    mu = params["intercept"] + X @ params["coef"].T
    joint = stats_norm(y, mu, params["noise_variance"]) + np.log(params["weights"])
    resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    for k in range(3):
        s = np.sqrt(resp[:, k])
        ref = np.linalg.lstsq(A * s[:, None], y * s, rcond=None)[0]
        np.testing.assert_allclose(np.r_[new["intercept"][k], new["coef"][k]], ref, rtol=1e-8)
    only_coef = model.hold("coef").mstep(stats, params)
    np.testing.assert_array_equal(only_coef["coef"], params["coef"])
    assert not np.array_equal(only_coef["intercept"], params["intercept"])
    with pytest.raises(ValueError, match="cannot hold"):
        model.hold(["slope"])


def stats_norm(y, mu, var):
    return stats.norm.logpdf(y[:, None], mu, np.sqrt(var))


def test_fixed_lines_give_the_direct_maximum_over_weights_and_variances():
    rng = np.random.default_rng(13)
    X, y, _ = sample_lines(rng, n=600)
    lines = {"intercept": LINES[:, 0], "coef": LINES[:, 1:]}
    mr = MixtureOfRegressions(3, fixed=lines, tol=1e-12, max_iter=2000, n_init=2, random_state=0)
    mr.fit(X, y)
    np.testing.assert_array_equal(mr.intercept_, LINES[:, 0])
    np.testing.assert_array_equal(mr.coef_, LINES[:, 1:])

    def negative(t):  # weights by softmax of (t0, t1, 0), log variances t2..t4
        w = softmax([t[0], t[1], 0.0])
        return -loglik(X, y, w, LINES[:, 0], LINES[:, 1:], np.exp(t[2:])).sum()

    res = optimize.minimize(negative, np.zeros(5), method="BFGS", options={"gtol": 1e-9})
    assert mr.loglik_ == pytest.approx(-res.fun, rel=1e-9)
    np.testing.assert_allclose(mr.weights_, softmax([res.x[0], res.x[1], 0.0]), rtol=1e-5)
    np.testing.assert_allclose(mr.noise_variance_, np.exp(res.x[2:]), rtol=1e-5)


def test_fixed_names_hold_starting_values_and_bad_fixed_raise():
    rng = np.random.default_rng(14)
    X, y, _ = sample_lines(rng, n=300)
    start = TRUE_PARAMS
    mr = MixtureOfRegressions(3, init=start, fixed=["weights", "noise_variance"]).fit(X, y)
    np.testing.assert_array_equal(mr.weights_, WEIGHTS)
    np.testing.assert_array_equal(mr.noise_variance_, SD**2)
    assert not np.array_equal(mr.coef_, LINES[:, 1:])
    before = mr.coef_.copy()
    with pytest.raises(ValueError, match="unknown parameters"):
        mr.set_params(fixed=["slope"]).fit(X, y)
    with pytest.raises(ValueError, match="fixed coef must have shape"):
        mr.set_params(fixed={"coef": np.ones(3)}).fit(X, y)
    np.testing.assert_array_equal(mr.coef_, before)


@pytest.mark.parametrize(
    ("attribute", "change", "match"),
    [
        ("weights_", lambda w: w * 0.5, "weights_ sums to 0.5"),
        ("noise_variance_", lambda v: -v, "noise_variance_ must be positive"),
        ("coef_", lambda c: c[:1], "one row per component"),
    ],
)
def test_load_refuses_broken_parameters(tmp_path, attribute, change, match):
    rng = np.random.default_rng(15)
    X, y, _ = sample_lines(rng, n=200)
    mr = MixtureOfRegressions(3, n_init=1, random_state=0).fit(X, y)
    setattr(mr, attribute, change(getattr(mr, attribute)))
    mr.save(tmp_path / "broken.npz")
    with pytest.raises(ValueError, match=match):
        emkit.load(tmp_path / "broken.npz")


def test_float32_input_gives_the_float64_fit():
    rng = np.random.default_rng(16)
    X, y, _ = sample_lines(rng, n=300)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    a = MixtureOfRegressions(3, n_init=1, random_state=0).fit(X32.astype(float), y32.astype(float))
    b = MixtureOfRegressions(3, n_init=1, random_state=0).fit(X32, y32)
    assert b.loglik_ == pytest.approx(a.loglik_, rel=1e-12)
    assert b.coef_.dtype == np.float64
    np.testing.assert_allclose(b.predict(X32), a.predict(X32.astype(float)), rtol=1e-12)


@pytest.mark.parametrize("scale", [1e-150, 1e-5, 1e5, 1e120])
def test_a_fit_of_scaled_data_is_the_scaled_fit(scale):
    rng = np.random.default_rng(17)
    X, y, _ = sample_lines(rng, n=400)
    start = TRUE_PARAMS
    a = MixtureOfRegressions(3, init=start, tol=0, max_iter=10).fit(X, y)
    scaled = {**start, "intercept": start["intercept"] * scale, "noise_variance": SD**2 * scale**2}
    b = MixtureOfRegressions(3, init=scaled, tol=0, max_iter=10).fit(X * scale, y * scale)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.noise_variance_ / scale**2, a.noise_variance_, rtol=1e-9)
    np.testing.assert_array_equal(
        b.predict_proba(X * scale, y * scale).argmax(1), a.predict_proba(X, y).argmax(1)
    )


def test_data_too_spread_for_float64_stop_with_a_clear_error():
    X = np.array([[0.0], [1.0], [2.0], [3e200]])
    with pytest.raises(ValueError, match="spread is too large"):
        MixtureOfRegressions(2).fit(X, np.arange(4.0))


def test_without_intercept_one_component_is_least_squares_through_the_origin():
    rng = np.random.default_rng(18)
    X = rng.normal(size=(150, 2)) + 5.0
    y = X @ [1.5, -0.5] + rng.normal(0, 0.3, 150) + 0.7
    mr = MixtureOfRegressions(1, fit_intercept=False, n_init=1).fit(X, y)
    beta, rss, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(mr.coef_[0], beta, rtol=1e-10)
    np.testing.assert_array_equal(mr.intercept_, [0.0])
    np.testing.assert_allclose(mr.noise_variance_, rss / 150, rtol=1e-10)
    np.testing.assert_allclose(mr.predict(X), X @ beta, rtol=1e-12)
