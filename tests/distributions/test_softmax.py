"""The softmax-regression kernel of the gate and the logistic experts.

References: finite differences (scipy.optimize.approx_fprime) for the gradient and
Hessian, scikit-learn's LogisticRegression for the optimum the Newton steps reach,
numpy.linalg.lstsq for the solver, and the objective Q evaluated directly on the data
for the guarantee that a step never lowers it.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from sklearn.linear_model import LogisticRegression

from emkit.distributions._lstsq import solve_psd, weighted_grams
from emkit.distributions.softmax import (
    design_bound,
    log_softmax,
    newton_step,
    softmax_objective,
    softmax_stats,
)


def problem(seed, n=60, p=2, n_classes=3, scale=1.0, soft=True):
    rng = np.random.default_rng(seed)
    A = np.column_stack([np.ones(n), rng.normal(size=(n, p)) * rng.uniform(0.1, 10, p)])
    if soft:
        targets = rng.dirichlet(np.ones(n_classes), size=n) * rng.uniform(0.1, 3, (n, 1))
    else:
        targets = np.eye(n_classes)[rng.integers(n_classes, size=n)]
    theta = rng.normal(size=(n_classes - 1, p + 1)) * scale / np.r_[1, A[:, 1:].std(axis=0)]
    return A, targets, theta


def central_difference(fn, v, h=1e-5):
    steps = np.eye(v.size) * h * np.maximum(1.0, np.abs(v))
    return np.array([(fn(v + e) - fn(v - e)) / (2 * e.max()) for e in steps])


def test_gradient_and_hessian_match_finite_differences():
    A, T, theta = problem(0)
    stats = softmax_stats(A, T, log_softmax(A, theta))
    shape = theta.shape

    def q(v):
        return softmax_objective(A, T, v.reshape(shape))

    def grad(v):
        return softmax_stats(A, T, log_softmax(A, v.reshape(shape))).grad.ravel()

    v = theta.ravel()
    np.testing.assert_allclose(stats.grad.ravel(), central_difference(q, v), rtol=1e-6, atol=1e-6)
    fd = np.array([central_difference(lambda u, i=i: grad(u)[i], v) for i in range(v.size)])
    np.testing.assert_allclose(stats.info, -fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())
    np.testing.assert_allclose(stats.gram, A.T @ (A * T.sum(axis=1)[:, None]))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n_classes=st.integers(2, 4),
    scale=st.sampled_from([0.1, 1.0, 5.0, 30.0]),
    alpha=st.sampled_from([0.0, 0.5]),
    use_bound=st.booleans(),
    hold_intercept=st.booleans(),
    exact=st.booleans(),
)
def test_newton_step_never_lowers_q(
    seed, n_classes, scale, alpha, use_bound, hold_intercept, exact
):
    A, T, theta = problem(seed, n_classes=n_classes, scale=scale)
    pen = np.r_[False, np.ones(A.shape[1] - 1, bool)]
    free = np.ones(theta.shape, bool)
    free[:, 0] = not hold_intercept
    bound = design_bound(A) if use_bound else None
    for _ in range(3):  # successive calls, as in successive EM iterations
        stats = softmax_stats(A, T, log_softmax(A, theta))
        options = {"alpha": alpha, "penalised": pen, "free": free, "bound": bound}
        objective = (lambda th: softmax_objective(A, T, th)) if exact else None
        new = newton_step(stats, theta, objective=objective, **options)
        before = softmax_objective(A, T, theta, alpha, pen)
        after = softmax_objective(A, T, new, alpha, pen)
        assert after >= before - 1e-9 * (1 + abs(before))
        if exact:  # halving on Q itself is never worse than the certified step
            certified = softmax_objective(A, T, newton_step(stats, theta, **options), alpha, pen)
            assert after >= certified - 1e-9 * (1 + abs(certified))
        np.testing.assert_array_equal(new[~free], theta[~free])
        theta = new


def test_guard_matters_where_the_plain_newton_step_overshoots():
    # Saturated logits: the full Newton step lowers Q; the guarded step does not.
    found = 0
    for seed in range(40):
        A, T, theta = problem(seed, n_classes=2, scale=30.0, soft=False)
        stats = softmax_stats(A, T, log_softmax(A, theta))
        plain = theta + np.linalg.solve(stats.info, stats.grad.ravel()).reshape(theta.shape)
        before = softmax_objective(A, T, theta)
        if softmax_objective(A, T, plain) < before:
            found += 1
            guarded = newton_step(stats, theta, bound=design_bound(A))
            assert softmax_objective(A, T, guarded) > before
    assert found > 0


@pytest.mark.parametrize(("n_classes", "alpha"), [(2, 0.5), (3, 0.0), (3, 0.5)])
def test_newton_iterations_reach_the_optimum(n_classes, alpha):
    rng = np.random.default_rng(1)
    n, p = 400, 3
    X = rng.normal(size=(n, p)) * [1.0, 100.0, 0.01] + [5.0, -300.0, 1.0]
    W = rng.normal(size=(n_classes, p)) / [1.0, 100.0, 0.01]
    logits = (X - X.mean(axis=0)) @ W.T
    y = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
    A = np.column_stack([np.ones(n), X - X.mean(axis=0)])
    T = np.eye(n_classes)[y]
    pen = np.r_[False, True, True, True]
    theta = np.zeros((n_classes - 1, p + 1))
    bound = design_bound(A)
    for _ in range(60):
        stats = softmax_stats(A, T, log_softmax(A, theta))
        theta = newton_step(stats, theta, alpha=alpha, penalised=pen, bound=bound)
    ours = np.exp(log_softmax(A, theta))
    if n_classes == 2 or alpha == 0.0:
        # scikit-learn penalises every class's row (symmetric parametrisation): the
        # same model as ours only for two classes or without a penalty
        # (without a penalty the fit is scale-invariant: scikit-learn's solver gets
        # standardised columns, on which it converges fully)
        Z = X if alpha else (X - X.mean(axis=0)) / X.std(axis=0)
        ref = LogisticRegression(
            C=1.0 / alpha if alpha else np.inf, tol=1e-12, max_iter=10_000
        ).fit(Z, y)
        np.testing.assert_allclose(ours, ref.predict_proba(Z), atol=1e-6)
    else:
        shape = theta.shape
        res = optimize.minimize(
            lambda v: -softmax_objective(A, T, v.reshape(shape), alpha, pen),
            np.zeros(theta.size),
            method="BFGS",
            options={"gtol": 1e-10},
        )
        assert softmax_objective(A, T, theta, alpha, pen) >= -res.fun - 1e-8
        np.testing.assert_allclose(theta.ravel(), res.x, rtol=1e-4, atol=1e-6)


def test_solve_psd_matches_lstsq_on_a_rank_deficient_system():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(30, 3))
    A = np.column_stack([Z, Z[:, 0] + Z[:, 1]])  # collinear column
    w = rng.uniform(0.5, 2.0, 30)
    y = rng.normal(size=30)
    S = weighted_grams(A, w[:, None])[0]
    np.testing.assert_allclose(S, (A * w[:, None]).T @ A, rtol=1e-12)
    ours = solve_psd(S, A.T @ (w * y))
    ref = np.linalg.lstsq(A * np.sqrt(w)[:, None], np.sqrt(w) * y, rcond=None)[0]
    # a least-squares solution: the same fitted values (the null space is not unique)
    np.testing.assert_allclose(A @ ours, A @ ref, rtol=1e-9, atol=1e-12)
    full = A[:, :3]
    np.testing.assert_allclose(
        solve_psd(weighted_grams(full, w[:, None])[0], full.T @ (w * y)),
        np.linalg.lstsq(full * np.sqrt(w)[:, None], np.sqrt(w) * y, rcond=None)[0],
        rtol=1e-10,
    )
