"""emkit.MixtureOfExperts.

Expected values come from independent sources: the parameters data were sampled
from, scikit-learn's LogisticRegression (one expert; the XOR problem it cannot
solve), numpy.linalg.lstsq (one linear expert), a direct scipy.optimize maximisation
of the likelihood written here with scipy.stats and scipy.special, and Monte Carlo
draws for the predictive distribution.
"""

import warnings

import numpy as np
import pytest
from conditional_checks import assert_additive
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats
from scipy.special import log_softmax, logsumexp, softmax
from sklearn.linear_model import LogisticRegression

import emkit
from emkit import MixtureOfExperts
from emkit.distributions.conditional import LinearExperts, LogisticExperts
from emkit.models.mixture.conditional import ConditionalMixtureModel
from emkit.models.mixture.weights import SoftmaxGate

pytestmark = pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")

EXPERTS = np.array([[2.0, 0.5], [-1.0, 3.0]])  # intercept, slope
SD = np.array([0.2, 0.3])


def switching_data(rng, n=4000, sharpness=4.0, switch=0.5):
    """y follows expert 0 left of the switch and expert 1 right of it (a soft gate)."""
    x = rng.uniform(-3, 3, n)
    z = (rng.random(n) < 1 / (1 + np.exp(-sharpness * (x - switch)))).astype(int)
    y = EXPERTS[z, 0] + EXPERTS[z, 1] * x + rng.normal(0, SD[z])
    return x[:, None], y, z


def xor_data(rng, n=800, flip=0.05):
    X = rng.uniform(-1, 1, (n, 2))
    labels = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int)
    return X, np.where(rng.random(n) < flip, 1 - labels, labels)


def moe_loglik(x, y, gate_intercept, gate_coef, intercept, coef, var):
    """log p(y | x) of a linear mixture of experts, with scipy."""
    log_gate = log_softmax(gate_intercept + x @ gate_coef.T, axis=1)
    mu = intercept + x @ coef.T
    return logsumexp(log_gate + stats.norm.logpdf(y[:, None], mu, np.sqrt(var)), axis=1)


def test_recovers_a_piecewise_linear_function_with_an_input_dependent_switch():
    rng = np.random.default_rng(0)
    x, y, _ = switching_data(rng)
    moe = MixtureOfExperts(2, n_init=3, random_state=0).fit(x, y)
    order = np.argsort(moe.coef_[:, 0])  # expert 0 has the smaller slope
    np.testing.assert_allclose(moe.intercept_[order], EXPERTS[:, 0], atol=0.06)
    np.testing.assert_allclose(moe.coef_[order, 0], EXPERTS[:, 1], atol=0.04)
    np.testing.assert_allclose(np.sqrt(moe.noise_variance_[order]), SD, rtol=0.08)
    # the gate: logit of expert 1 against expert 0 is sharpness * (x - switch)
    slope = moe.gate_coef_[order[1], 0] - moe.gate_coef_[order[0], 0]
    level = moe.gate_intercept_[order[1]] - moe.gate_intercept_[order[0]]
    assert slope == pytest.approx(4.0, rel=0.2)
    assert -level / slope == pytest.approx(0.5, abs=0.05)
    ref = moe_loglik(
        x, y, moe.gate_intercept_, moe.gate_coef_, moe.intercept_, moe.coef_, moe.noise_variance_
    )
    assert moe.loglik_ == pytest.approx(ref.sum(), rel=1e-10)
    np.testing.assert_allclose(
        moe.predict_gate(x), softmax(moe.gate_intercept_ + x @ moe.gate_coef_.T, axis=1)
    )


def test_logistic_experts_separate_xor_where_one_logistic_regression_cannot():
    rng = np.random.default_rng(1)
    X, labels = xor_data(rng)
    single = LogisticRegression().fit(X, labels).score(X, labels)
    moe = MixtureOfExperts(2, "logistic", gate_alpha=1e-2, alpha=1e-2, n_init=2, random_state=0)
    moe.fit(X, labels)
    assert single < 0.65
    assert moe.score(X, labels) > 0.9
    Xt, lt = xor_data(np.random.default_rng(2), flip=0.0)
    assert moe.score(Xt, lt) > 0.93
    proba = moe.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert moe.predict(X).tolist() == moe.classes_[proba.argmax(axis=1)].tolist()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"expert": "linear"},
        {"expert": "linear", "gate_alpha": 0.5, "accel": "squarem"},
        {"expert": "logistic", "alpha": 0.1},
        {"expert": "logistic", "multi_class": "multinomial", "gate_alpha": 0.1, "n_experts": 3},
    ],
)
def test_objective_never_decreases(kwargs):
    rng = np.random.default_rng(3)
    x, y, _ = switching_data(rng, n=400)
    if kwargs["expert"] == "logistic":
        y = np.digitize(y, [0.0, 2.0]) if kwargs.get("multi_class") else (y > 1).astype(int)
    moe = MixtureOfExperts(
        **{"n_experts": 2, **kwargs},
        init="random",
        tol=0,
        max_iter=40,
        n_init=1,
        check_monotone="raise",
        random_state=0,
    )
    moe.fit(x, y)
    h = moe.history_
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))


def test_one_linear_expert_is_ordinary_least_squares():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 2)) * [3.0, 0.2] + [100.0, -5.0]
    y = X @ [0.7, -4.0] + 1.0 + rng.normal(0, 0.5, 120)
    moe = MixtureOfExperts(1, n_init=1).fit(X, y)
    beta, rss, *_ = np.linalg.lstsq(np.column_stack([np.ones(120), X]), y, rcond=None)
    np.testing.assert_allclose(np.r_[moe.intercept_, moe.coef_[0]], beta, rtol=1e-9)
    np.testing.assert_allclose(moe.noise_variance_, rss / 120, rtol=1e-9)
    np.testing.assert_allclose(moe.predict_gate(X), 1.0)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_one_logistic_expert_is_logistic_regression(n_classes):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2))
    logits = X @ rng.normal(size=(2, n_classes)) + rng.gumbel(size=(300, n_classes))
    labels = np.array(["a", "b", "c"])[logits.argmax(axis=1)]
    moe = MixtureOfExperts(1, "logistic", tol=1e-12, max_iter=300, n_init=1).fit(X, labels)
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, labels)
    assert moe.classes_.tolist() == ref.classes_.tolist()
    np.testing.assert_allclose(moe.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    if n_classes == 2:  # the same parametrisation as scikit-learn's binary model
        np.testing.assert_allclose(moe.coef_, ref.coef_, rtol=1e-5)
        np.testing.assert_allclose(moe.intercept_, ref.intercept_, rtol=1e-5)


def test_matches_direct_maximisation_of_the_likelihood():
    rng = np.random.default_rng(6)
    x, y, _ = switching_data(rng, n=150, sharpness=2.0)
    moe = MixtureOfExperts(2, tol=1e-13, max_iter=5000, n_init=3, random_state=0).fit(x, y)

    def unpack(t):
        return np.array([t[0], 0.0]), np.array([[t[1]], [0.0]]), t[2:4], t[4:6, None], np.exp(t[6:])

    def negative(t):
        return -moe_loglik(x, y, *unpack(t)).sum()

    order = [0, 1]
    g0 = moe.gate_intercept_ - moe.gate_intercept_[1]
    g1 = moe.gate_coef_[:, 0] - moe.gate_coef_[1, 0]
    t_em = np.r_[
        g0[0], g1[0], moe.intercept_[order], moe.coef_[order, 0], np.log(moe.noise_variance_[order])
    ]
    starts = [t_em + rng.normal(0, 0.3, 8) for _ in range(3)]
    fits = [optimize.minimize(negative, s, method="BFGS", options={"gtol": 1e-9}) for s in starts]
    best = min(fits, key=lambda r: r.fun)
    assert moe.loglik_ >= -best.fun - 1e-6
    np.testing.assert_allclose(t_em, best.x, rtol=1e-4, atol=1e-4)
    grad = optimize.approx_fprime(t_em, negative, 1e-7)
    assert np.abs(grad).max() < 1e-3


@pytest.mark.parametrize("expert", ["linear", "logistic"])
def test_statistics_add_up_over_any_split(expert):
    rng = np.random.default_rng(7)
    x, y, _ = switching_data(rng, n=200)
    A = np.column_stack([np.ones(200), x])
    if expert == "logistic":
        y = np.digitize(y, [0.0, 2.0])
        experts = LogisticExperts(3)
    else:
        experts = LinearExperts()
    w = rng.uniform(0.5, 2, 200)
    assert_additive(ConditionalMixtureModel(SoftmaxGate(), experts, 3), A, y, w, rng)


def test_predictive_distribution_against_monte_carlo():
    rng = np.random.default_rng(8)
    x, y, _ = switching_data(rng, n=1000)
    moe = MixtureOfExperts(2, n_init=1, random_state=0).fit(x, y)
    grid = np.array([[-2.0], [0.4], [0.6], [2.0]])
    mean, var = moe.predict_distribution(grid)
    np.testing.assert_allclose(moe.predict(grid), mean)
    gate = softmax(moe.gate_intercept_ + grid @ moe.gate_coef_.T, axis=1)
    n = 200_000
    for i in range(len(grid)):
        z = rng.choice(2, size=n, p=gate[i])
        draws = moe.intercept_[z] + moe.coef_[z, 0] * grid[i, 0]
        draws = draws + rng.normal(0, np.sqrt(moe.noise_variance_[z]))
        assert mean[i] == pytest.approx(draws.mean(), abs=4 * draws.std() / np.sqrt(n))
        assert var[i] == pytest.approx(draws.var(), rel=0.02)


def test_exact_far_from_the_origin():
    rng = np.random.default_rng(9)
    x, y, _ = switching_data(rng, n=500)
    near = MixtureOfExperts(2, n_init=2, random_state=0).fit(x, y)
    far = MixtureOfExperts(2, n_init=2, random_state=0).fit(x + 1e6, y + 1e5)
    assert far.loglik_ == pytest.approx(near.loglik_, rel=1e-8)
    np.testing.assert_allclose(far.coef_, near.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(far.predict(x + 1e6) - 1e5, near.predict(x), atol=1e-6)
    np.testing.assert_allclose(far.predict_gate(x + 1e6), near.predict_gate(x), atol=1e-8)


@pytest.mark.parametrize("expert", ["linear", "logistic"])
def test_persistence_round_trip(tmp_path, expert):
    rng = np.random.default_rng(10)
    x, y, _ = switching_data(rng, n=300)
    if expert == "logistic":
        y = np.array(["low", "mid", "high"])[np.digitize(y, [0.0, 2.0])]
    moe = MixtureOfExperts(2, expert, n_init=1, alpha=0.1, gate_alpha=0.1, max_iter=30)
    moe.set_params(random_state=0).fit(x, y)
    moe.save(tmp_path / "moe.npz")
    back = emkit.load(tmp_path / "moe.npz")
    assert isinstance(back, MixtureOfExperts) and back.expert == expert
    np.testing.assert_array_equal(back.score_samples(x, y), moe.score_samples(x, y))
    np.testing.assert_array_equal(back.predict(x), moe.predict(x))
    np.testing.assert_array_equal(back.predict_gate(x), moe.predict_gate(x))


@pytest.mark.parametrize(
    ("kwargs", "X", "y", "error", "message"),
    [
        ({}, np.ones((5, 1)), np.ones(4), ValueError, "y must have shape"),
        ({}, np.array([[1.0], [np.nan], [2.0]]), np.arange(3.0), ValueError, "NaN"),
        ({}, np.ones((3, 1)), np.array([1.0, np.nan, 2.0]), ValueError, "NaN"),
        ({"n_experts": 0}, np.ones((3, 1)), np.arange(3.0), ValueError, "n_experts"),
        ({"expert": "cubic"}, np.ones((3, 1)), np.arange(3.0), ValueError, "expert must be"),
        (
            {"expert": "logistic", "multi_class": "binary"},
            np.arange(6.0)[:, None],
            np.array([0, 1, 2, 0, 1, 2]),
            ValueError,
            "two classes",
        ),
        (
            {"expert": "logistic"},
            np.ones((3, 1)),
            np.array([0.5, 1.0, 0.0]),
            ValueError,
            "class labels",
        ),
        ({"expert": "logistic"}, np.ones((3, 1)), np.zeros(3, int), ValueError, "single class"),
        ({"gate_alpha": -1.0}, np.ones((3, 1)), np.arange(3.0), ValueError, "gate_alpha"),
        (
            {"init": {"gate_coef": [[1.0], [1.0]]}},
            np.ones((3, 1)),
            np.arange(3.0),
            ValueError,
            "reference",
        ),
    ],
)
def test_bad_input_raises_and_keeps_the_previous_fit(kwargs, X, y, error, message):
    rng = np.random.default_rng(11)
    x, yy, _ = switching_data(rng, n=100)
    moe = MixtureOfExperts(2, n_init=1, random_state=0).fit(x, yy)
    before = moe.coef_.copy()
    moe.set_params(**kwargs)
    with pytest.raises(error, match=message):
        moe.fit(X, y)
    np.testing.assert_array_equal(moe.coef_, before)


def test_prediction_methods_follow_the_expert_kind():
    rng = np.random.default_rng(12)
    x, y, _ = switching_data(rng, n=100)
    moe = MixtureOfExperts(2, n_init=1, random_state=0).fit(x, y)
    assert not hasattr(moe, "predict_proba")
    with pytest.raises(AttributeError, match="logistic"):
        moe.predict_proba(x)
    with pytest.raises(ValueError, match="features"):
        moe.predict(np.ones((3, 2)))
    labels = (y > 1).astype(int)
    clf = MixtureOfExperts(2, "logistic", n_init=1, max_iter=5, random_state=0).fit(x, labels)
    assert not hasattr(clf, "predict_distribution")
    with pytest.raises(AttributeError, match="linear"):
        clf.predict_distribution(x)
    with pytest.raises(ValueError, match="not seen"):
        clf.score_samples(x[:2], [0, 7])


def test_hold_keeps_the_gate_and_fits_the_experts():
    rng = np.random.default_rng(13)
    x, y, _ = switching_data(rng, n=300)
    A = np.column_stack([np.ones(300), x])
    model = ConditionalMixtureModel(SoftmaxGate(), LinearExperts(), 2)
    params = model.init_params((A, y, None), rng)
    held = model.hold(["gate_intercept", "gate_coef"])
    stats_, _ = held.estep(params, (A, y, None))
    new = held.mstep(stats_, params)
    np.testing.assert_array_equal(new["gate_intercept"], params["gate_intercept"])
    np.testing.assert_array_equal(new["gate_coef"], params["gate_coef"])
    joint = model.log_joint(params, A, y)
    resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    for k in range(2):
        s = np.sqrt(resp[:, k])
        ref = np.linalg.lstsq(A * s[:, None], y * s, rcond=None)[0]
        np.testing.assert_allclose(np.r_[new["intercept"][k], new["coef"][k]], ref, rtol=1e-8)
    only_slope = model.hold("gate_coef").mstep(stats_, params)
    np.testing.assert_array_equal(only_slope["gate_coef"], params["gate_coef"])
    assert not np.array_equal(only_slope["gate_intercept"], params["gate_intercept"])
    with pytest.raises(ValueError, match="cannot hold"):
        model.hold("weights")


def test_sample_weights_equal_repeated_rows():
    rng = np.random.default_rng(14)
    x, y, _ = switching_data(rng, n=200)
    counts = rng.integers(1, 4, 200)
    a = MixtureOfExperts(2, tol=0, max_iter=5, n_init=1, random_state=0, init="random")
    b = MixtureOfExperts(2, tol=0, max_iter=5, n_init=1, random_state=0, init="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = a.set_params(max_iter=0).fit(x, y, sample_weight=counts)
    init = {
        "gate_intercept": start.gate_intercept_,
        "gate_coef": start.gate_coef_,
        "intercept": start.intercept_,
        "coef": start.coef_,
        "noise_variance": start.noise_variance_,
    }
    a.set_params(max_iter=5, init=init).fit(x, y, sample_weight=counts)
    b.set_params(init=init).fit(np.repeat(x, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8)
    np.testing.assert_allclose(a.gate_coef_, b.gate_coef_, rtol=1e-8, atol=1e-12)
    assert a.loglik_ == pytest.approx(b.loglik_, rel=1e-10)


def test_fixed_gate_gives_the_direct_maximum_over_the_experts():
    rng = np.random.default_rng(15)
    x, y, _ = switching_data(rng, n=500)
    # the true gate: logit of expert 0 against expert 1 (the reference) is -4 (x - 0.5)
    gate = {"gate_intercept": [2.0, 0.0], "gate_coef": [[-4.0], [0.0]]}
    moe = MixtureOfExperts(2, fixed=gate, tol=1e-12, max_iter=2000, n_init=2, random_state=0)
    moe.fit(x, y)
    np.testing.assert_array_equal(moe.gate_intercept_, [2.0, 0.0])
    np.testing.assert_array_equal(moe.gate_coef_, [[-4.0], [0.0]])
    gi, gc = np.array([2.0, 0.0]), np.array([[-4.0], [0.0]])

    def negative(t):
        return -moe_loglik(x, y, gi, gc, t[0:2], t[2:4, None], np.exp(t[4:])).sum()

    start = np.r_[EXPERTS[:, 0], EXPERTS[:, 1], np.log(SD**2)]
    res = optimize.minimize(negative, start, method="BFGS", options={"gtol": 1e-9})
    assert moe.loglik_ == pytest.approx(-res.fun, rel=1e-9)
    np.testing.assert_allclose(moe.intercept_, res.x[0:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moe.coef_[:, 0], res.x[2:4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moe.noise_variance_, np.exp(res.x[4:]), rtol=1e-4)


def test_fixed_names_and_bad_fixed_values():
    rng = np.random.default_rng(16)
    x, y, _ = switching_data(rng, n=200)
    moe = MixtureOfExperts(2, n_init=1, random_state=0, fixed=["noise_variance"], max_iter=20)
    moe.set_params(init={"noise_variance": [0.5, 0.5]}).fit(x, y)
    np.testing.assert_array_equal(moe.noise_variance_, [0.5, 0.5])
    before = moe.coef_.copy()
    with pytest.raises(ValueError, match="reference"):
        moe.set_params(fixed={"gate_coef": [[1.0], [1.0]]}).fit(x, y)
    with pytest.raises(ValueError, match="unknown parameters"):
        moe.set_params(fixed=["weights"]).fit(x, y)
    np.testing.assert_array_equal(moe.coef_, before)


@pytest.mark.parametrize("cls", [MixtureOfExperts, emkit.MixtureOfRegressions])
def test_annealing_splits_the_merged_components(cls):
    # at high temperature the components merge; the perturbation between stages splits
    # them again, so annealing ends at the fit with two distinct experts
    rng = np.random.default_rng(17)
    x, y, _ = switching_data(rng, n=1000)
    ours = cls(2, anneal="default", n_init=1, random_state=0, check_monotone="raise").fit(x, y)
    assert abs(ours.coef_[0, 0] - ours.coef_[1, 0]) > 2.0
    np.testing.assert_allclose(np.sort(ours.coef_[:, 0]), EXPERTS[:, 1], atol=0.1)


def gate_q(resp, X, p):
    """sum_i sum_k r_ik log g_k(x_i) for the gate of ``p``."""
    logits = p["gate_intercept"] + X @ p["gate_coef"].T
    logits = np.column_stack([logits, np.zeros(len(X))])
    return float(np.sum(resp * log_softmax(logits, axis=1)))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n_experts=st.integers(2, 4),
    gate_scale=st.sampled_from([0.1, 2.0, 20.0]),
    in_memory=st.booleans(),
)
def test_the_gate_step_increases_its_q_on_every_call(seed, n_experts, gate_scale, in_memory):
    # the gate's part of Q, sum_i sum_k r_ik log g_k(x_i), computed here with scipy
    rng = np.random.default_rng(seed)
    n = 150
    X = rng.normal(size=(n, 2)) * rng.uniform(0.1, 10, 2)
    A = np.column_stack([np.ones(n), X])
    y = rng.normal(size=n) + X[:, 0]
    experts = LinearExperts(min_variance=1e-6)  # the floor the estimator would set
    model = ConditionalMixtureModel(SoftmaxGate(), experts, n_experts)
    if in_memory:  # then three IRLS steps per M-step, halved on Q itself
        model.data, model.gate_steps = (A, y, None), 3
    params = model.init_params((A, y, None), rng)
    params["gate_coef"] = rng.normal(size=params["gate_coef"].shape) * gate_scale / X.std(axis=0)
    for _ in range(3):
        stats_, _ = model.estep(params, (A, y, None))
        assume(stats_.nk.min() > 1e-9 * n)  # a random gate may starve an expert: no M-step
        new = model.mstep(stats_, params)
        joint = model.log_joint(params, A, y)
        resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))

        before, after = gate_q(resp, X, params), gate_q(resp, X, new)
        assert after >= before - 1e-9 * (1 + abs(before))
        params = new


def test_load_refuses_a_gate_without_its_reference_row(tmp_path):
    rng = np.random.default_rng(18)
    x, y, _ = switching_data(rng, n=200)
    moe = MixtureOfExperts(2, n_init=1, random_state=0).fit(x, y)
    moe.gate_coef_ = moe.gate_coef_ + 1.0
    moe.save(tmp_path / "broken.npz")
    with pytest.raises(ValueError, match="reference"):
        emkit.load(tmp_path / "broken.npz")


def test_without_intercepts_the_gate_and_experts_pass_through_the_origin():
    rng = np.random.default_rng(19)
    x = rng.uniform(-3, 3, (600, 1))
    z = (rng.random(600) < 1 / (1 + np.exp(-3 * x[:, 0]))).astype(int)
    y = np.where(z == 1, 2.0, -1.0) * x[:, 0] + rng.normal(0, 0.2, 600)
    moe = MixtureOfExperts(2, fit_intercept=False, n_init=2, random_state=0).fit(x, y)
    np.testing.assert_array_equal(moe.intercept_, [0.0, 0.0])
    np.testing.assert_array_equal(moe.gate_intercept_, [0.0, 0.0])
    np.testing.assert_allclose(np.sort(moe.coef_[:, 0]), [-1.0, 2.0], atol=0.05)
    mu = x @ moe.coef_.T
    gate = softmax(x @ moe.gate_coef_.T, axis=1)
    np.testing.assert_allclose(moe.predict(x), np.sum(gate * mu, axis=1), rtol=1e-10)
