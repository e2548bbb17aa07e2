"""``emkit.em(fixed=...)``: parameters held fixed, the others maximised given them.

References: the observed-data log-likelihood of a 1-D two-component Gaussian mixture,
written out here with ``scipy.stats.norm`` and maximised over the free parameters with
``scipy.optimize.minimize`` (the held ones at their values); and bit-for-bit equality
of the held values after every scheme (plain, SQUAREM, online, hard, annealed,
restarts on threads).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

import emkit
from emkit._pytree import tree_leaves
from emkit.engine.fixed import get_path, parse_path, set_path
from emkit.models.mixture.gaussian_model import GaussianMixtureModel

pytestmark = pytest.mark.filterwarnings("error::emkit.engine.MonotonicityWarning")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(-1.0, 0.8, 300), rng.normal(2.0, 1.3, 200)])
    return x[:, None]


def loglik(x, w, mu, var):
    """Observed-data log-likelihood of a 1-D Gaussian mixture (scipy.stats densities)."""
    comps = [np.log(wk) + stats.norm.logpdf(x, mk, np.sqrt(vk)) for wk, mk, vk in zip(w, mu, var)]
    return float(special.logsumexp(np.stack(comps), axis=0).sum())


def fit(data, **kw):
    model = GaussianMixtureModel(2, "full", reg_covar=0.0)
    options = {"tol": 1e-12, "max_iter": 2000, "random_state": 0, **kw}
    return emkit.em(model, (data, None), **options)


def free_max(x, objective, start):
    res = optimize.minimize(objective, start, method="BFGS", options={"gtol": 1e-9})
    assert res.success or res.status == 2
    return res.x


def test_fixed_means_equal_direct_maximisation(data):
    x = data[:, 0]
    means = np.array([-0.5, 1.5])  # not the MLE: the others must adapt to them
    result = fit(data, fixed={"components.mean": means[:, None]})
    p = result.params
    np.testing.assert_array_equal(p.components.mean[:, 0], means)

    def nll(theta):
        w1 = special.expit(theta[0])
        return -loglik(x, [1 - w1, w1], means, np.exp(theta[1:]))

    theta = free_max(x, nll, [0.0, 0.0, 0.0])
    w_ref, var_ref = special.expit(theta[0]), np.exp(theta[1:])
    np.testing.assert_allclose(p.weights[1], w_ref, rtol=1e-5)
    np.testing.assert_allclose(p.components.covariance[:, 0, 0], var_ref, rtol=1e-5)
    assert result.loglik == pytest.approx(-nll(theta), rel=1e-10)


def test_fixed_weights_equal_direct_maximisation(data):
    x = data[:, 0]
    weights = np.array([0.5, 0.5])
    result = fit(data, fixed={"weights": weights})
    p = result.params
    np.testing.assert_array_equal(p.weights, weights)

    def nll(theta):
        return -loglik(x, weights, theta[:2], np.exp(theta[2:]))

    order = np.argsort(p.components.mean[:, 0])
    theta = free_max(x, nll, [-1.0, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(p.components.mean[order, 0], theta[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.components.covariance[order, 0, 0], np.exp(theta[2:]), rtol=1e-5)


def test_fixed_component_equals_direct_maximisation(data):
    x = data[:, 0]
    init = GaussianMixtureModel(2, "full", reg_covar=0.0).params(
        [0.5, 0.5], [[-3.0], [2.5]], [[[0.5]], [[2.0]]]
    )
    result = fit(data, init=init, fixed=["components[1]"])
    p = result.params
    np.testing.assert_array_equal(p.components.mean[1], [2.5])
    np.testing.assert_array_equal(p.components.covariance[1], [[2.0]])

    def nll(theta):
        w1 = special.expit(theta[0])
        return -loglik(x, [1 - w1, w1], [theta[1], 2.5], [np.exp(theta[2]), 2.0])

    theta = free_max(x, nll, [0.0, -1.0, 0.0])
    np.testing.assert_allclose(p.weights[1], special.expit(theta[0]), rtol=1e-5)
    np.testing.assert_allclose(p.components.mean[0, 0], theta[1], rtol=1e-5)
    np.testing.assert_allclose(p.components.covariance[0, 0, 0], np.exp(theta[2]), rtol=1e-5)


VARIANTS = [
    {},
    {"accel": "squarem"},
    {"variant": "online", "batch_size": 64, "max_iter": 5},
    {"variant": "hard"},
    {"anneal": "default", "max_iter": 50},
    {"n_init": 3, "n_jobs": 2},
    {"batch_size": 100},
]


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(o) or "em")
@pytest.mark.parametrize(
    "fixed",
    [
        {"weights": [0.3, 0.7]},
        {"components.mean": [[-1.5], [2.5]]},
        {"components.covariance": [[[0.7]], [[1.5]]]},
        ["components[0]"],
        ["weights", "components.mean"],
    ],
    ids=["weights", "means", "covariances", "component0", "names"],
)
def test_every_scheme_keeps_held_values_bit_for_bit(data, options, fixed):
    starts = {}  # by restart: restarts on threads report in any order

    def record(info):
        if info.iteration == 0:
            starts[info.restart] = info.params

    model = GaussianMixtureModel(2, "full", reg_covar=1e-6)
    opts = {"tol": 1e-10, "max_iter": 300, "random_state": 1, **options}
    result = emkit.em(model, (data, None), fixed=fixed, callback=record, **opts)
    p = result.params
    names = fixed if isinstance(fixed, list) else list(fixed)
    for name in names:
        expected = (
            np.asarray(fixed[name])
            if isinstance(fixed, dict)
            else get_path(starts[result.best_restart], name)
        )
        got = tree_leaves(get_path(p, name))
        for a, b in zip(got, tree_leaves(expected), strict=True):
            np.testing.assert_array_equal(a, np.asarray(b, dtype=np.float64))
    # online EM is not monotone; annealing's history restarts at each temperature (the
    # engine's check, a MonotonicityWarning turned into an error here, covers each stage)
    if options.get("variant") != "online" and "anneal" not in options:
        h = result.history
        assert np.all(np.diff(h) >= -1e-9 * (abs(h[-1]) + len(data)))
    # the free parameters moved (the fit did something)
    assert result.n_iter >= 1


def test_held_at_the_given_start(data):
    model = GaussianMixtureModel(2, "diag", reg_covar=1e-6)
    init = model.params([0.2, 0.8], [[-1.0], [2.0]], [[1.0], [1.0]])
    result = emkit.em(model, (data, None), init=init, fixed=("weights",), tol=1e-10, max_iter=500)
    np.testing.assert_array_equal(result.params.weights, [0.2, 0.8])
    free = emkit.em(model, (data, None), init=init, tol=1e-10, max_iter=500)
    assert not np.allclose(free.params.weights, [0.2, 0.8], atol=0.01)
    assert free.loglik > result.loglik


def test_dict_values_replace_every_restart(data):
    starts = []
    model = GaussianMixtureModel(2, "spherical")
    emkit.em(
        model,
        (data, None),
        n_init=3,
        random_state=0,
        max_iter=3,
        tol=0.0,
        fixed={"weights": [0.25, 0.75]},
        callback=lambda info: starts.append(info.params) if info.iteration == 0 else None,
    )
    assert len(starts) == 3
    for params in starts:
        np.testing.assert_array_equal(params.weights, [0.25, 0.75])


class NoHold:
    def init_params(self, data, rng):
        return {"theta": np.array(0.5)}

    def estep(self, params, batch):
        return {"n": np.array(float(len(batch)))}, 0.0

    def mstep(self, stats, params):
        return params


class BrokenHold(NoHold):
    def hold(self, names):
        return self

    def mstep(self, stats, params):
        return {"theta": params["theta"] * 0.5}


def test_model_without_hold_is_a_type_error():
    with pytest.raises(TypeError, match="hold"):
        emkit.em(NoHold(), np.zeros((5, 1)), fixed=["theta"])


def test_a_hold_that_moves_held_values_is_caught():
    with pytest.raises(RuntimeError, match="theta"):
        emkit.em(BrokenHold(), np.zeros((5, 1)), fixed=["theta"], max_iter=3)


@pytest.mark.parametrize(
    "fixed, match",
    [
        (["nope"], "nope"),
        (["components.scale"], "scale"),
        (["components[5]"], "components"),
        (["weights[0]"], "weights"),
        ({"weights": [0.5, 0.3, 0.2]}, "shape"),
        ({"components.mean": [[np.nan], [1.0]]}, "non-finite"),
        (["weights", "weights"], "twice"),
        ({"weights": [0.5, 0.6]}, "sum to 1"),
        ({"weights": [1.5, -0.5]}, "non-negative"),
        (["weights..x"], "invalid"),
    ],
)
def test_bad_fixed_names_and_values(data, fixed, match):
    with pytest.raises(ValueError, match=match):
        fit(data, fixed=fixed, max_iter=2)


def test_fixed_must_be_names_or_a_dict(data):
    with pytest.raises(TypeError, match="fixed"):
        fit(data, fixed=3)
    with pytest.raises(TypeError, match="name"):
        fit(data, fixed=[1])


def test_tied_component_cannot_be_held_alone(data):
    with pytest.raises(ValueError, match="share"):
        emkit.em(GaussianMixtureModel(2, "tied"), (data, None), fixed=["components[0]"])


def test_paths():
    assert parse_path("components[1].mean") == (("components", "mean"), (1,))
    params = GaussianMixtureModel(2, "diag").params([0.5, 0.5], [[0.0], [1.0]], [[1.0], [2.0]])
    new = set_path(params, "components[1]", (np.array([5.0]), np.array([3.0])))
    np.testing.assert_array_equal(new.components.mean, [[0.0], [5.0]])
    np.testing.assert_array_equal(new.components.covariance, [[1.0], [3.0]])
    np.testing.assert_array_equal(params.components.mean, [[0.0], [1.0]])  # not modified
    np.testing.assert_array_equal(get_path(new, "components.covariance[0]"), [1.0])


def test_collapse_with_held_parameters_is_an_error_not_a_reseed(data):
    # Component 1 sits far from every sample: its responsibilities underflow to zero.
    model = GaussianMixtureModel(2, "full", reg_covar=1e-6)
    params = model.params([0.5, 0.5], [[0.0], [1e6]], [[[1.0]], [[1.0]]])
    stats, _ = model.estep(params, (data, None))
    assert stats.nk[1] == 0.0
    with pytest.raises(ValueError, match="collapsed"):
        model.hold(["weights"]).mstep(stats, params)
    # held whole, the empty component is simply kept, and the other one estimated
    new = model.hold(["components[1]"]).mstep(stats, params)
    np.testing.assert_array_equal(new.components.mean[1], [1e6])
    np.testing.assert_allclose(new.components.mean[0], data.mean(axis=0), rtol=1e-12)
