"""Tests of the HMM inference kernels against enumeration, textbook numbers and hmmlearn."""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from emkit._simd import exp_nonpositive
from emkit.models.hmm.kernels import forward_backward, forward_loglik, viterbi
from emkit.models.hmm.kernels._dense import _maxplus, _vecmat

_hmmc = pytest.importorskip("hmmlearn._hmmc")


# ---------------------------------------------------------------------- helpers
def _offsets(lengths) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)


def _random_model(rng, n_states, zero=True):
    startprob = rng.dirichlet(np.ones(n_states))
    transmat = rng.dirichlet(np.ones(n_states), size=n_states)
    if zero:  # one forbidden transition, the rest of the row renormalised
        transmat[0, n_states - 1] = 0.0
        transmat[0] /= transmat[0].sum()
    return startprob, transmat


def _enumerate(log_frame, startprob, transmat):
    """Everything the kernels compute for one sequence, by summing over all K^T paths."""
    n_rows, n_states = log_frame.shape
    paths = np.array(list(itertools.product(range(n_states), repeat=n_rows)))
    with np.errstate(divide="ignore"):
        log_start, log_trans = np.log(startprob), np.log(transmat)
    joint = log_start[paths[:, 0]] + log_frame[0, paths[:, 0]]
    for t in range(1, n_rows):
        joint = joint + log_trans[paths[:, t - 1], paths[:, t]] + log_frame[t, paths[:, t]]
    best = int(np.argmax(joint))
    top = joint.max()
    if top == -np.inf:
        zeros = np.zeros((n_rows, n_states))
        return -np.inf, zeros, np.zeros((n_states, n_states)), -np.inf, paths[best]
    loglik = top + np.log(np.exp(joint - top).sum())
    weight = np.exp(joint - loglik)
    gamma = np.zeros((n_rows, n_states))
    xi = np.zeros((n_states, n_states))
    for t in range(n_rows):
        np.add.at(gamma[t], paths[:, t], weight)
        if t + 1 < n_rows:
            np.add.at(xi, (paths[:, t], paths[:, t + 1]), weight)
    return loglik, gamma, xi, top, paths[best]


def _hmmlearn_scaling(log_frame, offsets, startprob, transmat):
    """hmmlearn's scaled kernels, one sequence at a time, summed like ours."""
    n_states = log_frame.shape[1]
    logliks, posts = [], []
    trans = np.zeros((n_states, n_states))
    start = np.zeros(n_states)
    for t0, t1 in itertools.pairwise(offsets):
        frameprob = np.exp(log_frame[t0:t1])
        loglik, fwd, scaling = _hmmc.forward_scaling(startprob, transmat, frameprob)
        bwd = _hmmc.backward_scaling(startprob, transmat, frameprob, scaling)
        post = fwd * bwd
        post /= post.sum(axis=1, keepdims=True)
        if t1 - t0 > 1:
            trans += _hmmc.compute_scaling_xi_sum(fwd, transmat, bwd, frameprob)
        start += post[0]
        logliks.append(loglik)
        posts.append(post)
    return np.array(logliks), np.concatenate(posts), trans, start


def _random_log_frame(rng, n_rows, n_states, scale=3.0):
    return rng.normal(scale=scale, size=(n_rows, n_states)) - 2.0


def _random_problem(rng, n_states, lengths, scale=3.0):
    """``(log_frame, offsets, startprob, transmat)`` of random sequences of these lengths."""
    offsets = _offsets(lengths)
    startprob, transmat = _random_model(rng, n_states)
    return _random_log_frame(rng, offsets[-1], n_states, scale), offsets, startprob, transmat


# ---------------------------------------------------------------------- enumeration
@pytest.mark.parametrize("n_states", [2, 3])
def test_against_enumeration_of_all_paths(n_states):
    rng = np.random.default_rng(n_states)
    lengths = [1, 6, 3, 5, 2, 4] if n_states == 2 else [1, 5, 3, 4, 2]
    offsets = _offsets(lengths)
    startprob, transmat = _random_model(rng, n_states)
    log_frame = _random_log_frame(rng, offsets[-1], n_states)
    log_frame[rng.random(log_frame.shape) < 0.15] = -np.inf  # impossible in some states
    log_frame[np.isneginf(log_frame).all(axis=1), 0] = -1.0  # possible in one state at least
    log_frame[3] = 0.0  # a missing observation
    log_frame[offsets[2] + 1, :] = [-np.inf] * (n_states - 1) + [0.5]

    logliks, post, trans, start = forward_backward(log_frame, offsets, startprob, transmat)
    vit_logprob, vit_path = viterbi(log_frame, offsets, startprob, transmat)
    fwd_logliks = forward_loglik(log_frame, offsets, startprob, transmat)

    expected_trans = np.zeros((n_states, n_states))
    expected_start = np.zeros(n_states)
    for s, (t0, t1) in enumerate(itertools.pairwise(offsets)):
        loglik, gamma, xi, top, path = _enumerate(log_frame[t0:t1], startprob, transmat)
        assert_allclose(logliks[s], loglik, rtol=1e-12)
        assert_allclose(fwd_logliks[s], loglik, rtol=1e-12)
        assert_allclose(post[t0:t1], gamma, rtol=1e-10, atol=1e-13)
        assert_allclose(vit_logprob[s], top, rtol=1e-12)
        assert_array_equal(vit_path[t0:t1], path)
        expected_trans += xi
        expected_start += gamma[0]
    assert np.isfinite(logliks).sum() >= len(lengths) - 1  # mostly possible sequences
    assert_allclose(trans, expected_trans, rtol=1e-10, atol=1e-13)
    assert trans[0, n_states - 1] == 0.0  # a forbidden transition stays exactly zero
    assert_allclose(start, expected_start, rtol=1e-10, atol=1e-13)
    assert vit_path.dtype == np.int64


# ---------------------------------------------------------------------- textbook examples
def test_umbrella_world_russell_norvig():
    """Russell & Norvig, *Artificial Intelligence: A Modern Approach* (3rd ed.), §15.2.

    Rain (state 0) / no rain (state 1), P(R_t | R_{t-1}) = 0.7, P(R_t | not R_{t-1}) =
    0.3, P(umbrella | rain) = 0.9, P(umbrella | no rain) = 0.2, prior <0.5, 0.5>.
    Published: filtering P(R1 | u1) = <0.818, 0.182>, P(R2 | u1, u2) = <0.883, 0.117>;
    smoothing P(R1 | u1, u2) = <0.883, 0.117> (Figure 15.4). Viterbi (Figure 15.5) for
    umbrella on days 1, 2, 4, 5 and not on day 3: the path rain, rain, no rain, rain,
    rain with messages m_{1:5}(rain) = .8182, .5155, .0361, .0334, .0210 and
    m_{1:5}(no rain) = .1818, .0491, .1237, .0173, .0024 (m_1 is the filtered
    distribution, the later ones unnormalised, so max_z p(x, z) = 0.0210 * p(u_1)).
    """
    transmat = np.array([[0.7, 0.3], [0.3, 0.7]])
    startprob = np.array([0.5, 0.5])  # P(R1) = prior @ transmat
    emission = np.array([[0.9, 0.1], [0.2, 0.8]])  # rows: state; columns: umbrella, none
    two_days = np.log(emission[:, [0, 0]].T)
    _, post, _, _ = forward_backward(two_days, np.array([0, 2]), startprob, transmat)
    assert_allclose(post[0], [0.883, 0.117], atol=5e-4)
    assert_allclose(post[1], [0.883, 0.117], atol=5e-4)  # = filtered at the last day
    first = forward_loglik(two_days[:1], np.array([0, 1]), startprob, transmat)
    p_u1 = 0.5 * 0.9 + 0.5 * 0.2
    assert_allclose(np.exp(first), [p_u1])
    _, post1, _, _ = forward_backward(two_days[:1], np.array([0, 1]), startprob, transmat)
    assert_allclose(post1[0], [0.818, 0.182], atol=5e-4)

    days = np.log(emission[:, [0, 0, 1, 0, 0]].T)
    logprob, path = viterbi(days, np.array([0, 5]), startprob, transmat)
    assert_array_equal(path, [0, 0, 1, 0, 0])
    assert_allclose(np.exp(logprob[0]) / p_u1, 0.0210, rtol=3e-3)
    # every prefix: the best final state's message is the published m_{1:t}
    published = np.array(
        [[0.8182, 0.5155, 0.0361, 0.0334, 0.0210], [0.1818, 0.0491, 0.1237, 0.0173, 0.0024]]
    )
    for t in range(1, 6):
        prefix_logprob, prefix_path = viterbi(days[:t], np.array([0, t]), startprob, transmat)
        state = prefix_path[-1]
        assert_allclose(np.exp(prefix_logprob[0]) / p_u1, published[state, t - 1], rtol=3e-3)


def test_tufts_worked_example_exact_fractions():
    """Worked example of the Tufts COMP 250P class page "HMM example" (exact fractions).

    Two states with uniform start, transitions [[1/3, 2/3], [3/4, 1/4]], outputs
    (+, 0, -) with P = (1/4, 1/2, 1/4) in state 1 and (1/3, 1/3, 1/3) in state 2.
    Published: P(+ - 0) = 61/1728 (forward and backward), forward variables
    alpha_1 = (1/8, 1/6), alpha_2 = (1/24, 1/24), alpha_3 = (13/576, 11/864) and
    backward variables beta_1 = (29/216, 1/9), beta_2 = (7/18, 11/24).
    """
    transmat = np.array([[1 / 3, 2 / 3], [3 / 4, 1 / 4]])
    startprob = np.array([0.5, 0.5])
    emission = np.array([[1 / 4, 1 / 2, 1 / 4], [1 / 3, 1 / 3, 1 / 3]])
    obs = [0, 2, 1]  # + - 0
    log_frame = np.log(emission[:, obs].T)
    logliks, post, trans, start = forward_backward(log_frame, np.array([0, 3]), startprob, transmat)
    total = 61 / 1728
    assert_allclose(np.exp(logliks), [total], rtol=1e-14)
    alpha = np.array([[1 / 8, 1 / 6], [1 / 24, 1 / 24], [13 / 576, 11 / 864]])
    beta = np.array([[29 / 216, 1 / 9], [7 / 18, 11 / 24], [1, 1]])
    assert_allclose(post, alpha * beta / total, rtol=1e-13)
    assert_allclose(start, alpha[0] * beta[0] / total, rtol=1e-13)
    frame = np.exp(log_frame)
    xi = sum(
        alpha[t][:, None] * transmat * (frame[t + 1] * beta[t + 1])[None, :] / total
        for t in range(2)
    )
    assert_allclose(trans, xi, rtol=1e-13)


# ---------------------------------------------------------------------- hmmlearn
def test_agrees_with_hmmlearn_kernels():
    rng = np.random.default_rng(7)
    n_states = 6
    lengths = rng.integers(1, 400, size=12)
    log_frame, offsets, startprob, transmat = _random_problem(rng, n_states, lengths, 10.0)

    logliks, post, trans, start = forward_backward(log_frame, offsets, startprob, transmat)
    ref = _hmmlearn_scaling(log_frame, offsets, startprob, transmat)
    assert_allclose(logliks, ref[0], rtol=1e-10)
    assert_allclose(post, ref[1], rtol=1e-10, atol=1e-12)
    assert_allclose(trans, ref[2], rtol=1e-10)
    assert_allclose(start, ref[3], rtol=1e-10, atol=1e-12)
    assert_allclose(forward_loglik(log_frame, offsets, startprob, transmat), ref[0], rtol=1e-10)

    logprobs, path = viterbi(log_frame, offsets, startprob, transmat)
    for s, (t0, t1) in enumerate(itertools.pairwise(offsets)):
        ref_logprob, ref_path = _hmmc.viterbi(startprob, transmat, log_frame[t0:t1])
        assert_allclose(logprobs[s], ref_logprob, rtol=1e-12)
        assert_array_equal(path[t0:t1], ref_path)
        # hmmlearn's log-space kernels give the same log-likelihood
        ref_log, _ = _hmmc.forward_log(startprob, transmat, log_frame[t0:t1])
        assert_allclose(logliks[s], ref_log, rtol=1e-10)


def test_many_sequences_of_very_different_lengths():
    rng = np.random.default_rng(11)
    n_states = 4
    lengths = np.concatenate(
        ([1, 5000, 1, 2], np.exp(rng.uniform(0, np.log(5000), 80)).astype(int))
    )
    rng.shuffle(lengths)
    log_frame, offsets, startprob, transmat = _random_problem(rng, n_states, lengths)
    logliks, post, trans, start = forward_backward(log_frame, offsets, startprob, transmat)
    ref = _hmmlearn_scaling(log_frame, offsets, startprob, transmat)
    assert_allclose(logliks, ref[0], rtol=1e-10)
    assert_allclose(post, ref[1], rtol=1e-9, atol=1e-12)
    assert_allclose(trans, ref[2], rtol=1e-10)
    assert_allclose(start, ref[3], rtol=1e-10, atol=1e-12)
    assert_allclose(post.sum(axis=1), 1.0, rtol=1e-13)
    # every row's counts: each sequence of length L contributes L - 1 transitions
    assert_allclose(trans.sum(), offsets[-1] - len(lengths), rtol=1e-12)


# ---------------------------------------------------------------------- degenerate input
def test_impossible_sequence_gives_minus_inf_and_zero_statistics():
    rng = np.random.default_rng(3)
    startprob = np.array([1.0, 0.0, 0.0])  # left-right: 0 -> 1 -> 2
    transmat = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    lengths = [4, 3, 5, 1]
    offsets = _offsets(lengths)
    log_frame = _random_log_frame(rng, offsets[-1], 3)
    # sequence 1: its second row is possible only in state 2, unreachable in one step
    log_frame[offsets[1] + 1] = [-np.inf, -np.inf, 0.0]
    # sequence 2: a row impossible in every state
    log_frame[offsets[2] + 3] = -np.inf
    logliks, post, trans, start = forward_backward(log_frame, offsets, startprob, transmat)
    assert np.isneginf(logliks[[1, 2]]).all()
    assert np.isfinite(logliks[[0, 3]]).all()
    assert_array_equal(post[offsets[1] : offsets[3]], 0.0)
    assert not np.isnan(post).any()
    assert_array_equal(forward_loglik(log_frame, offsets, startprob, transmat), logliks)
    # the possible sequences alone give the same counts
    keep = np.r_[offsets[0] : offsets[1], offsets[3] : offsets[4]]
    alone = forward_backward(log_frame[keep], _offsets([4, 1]), startprob, transmat)
    assert_allclose(trans, alone[2], rtol=1e-14)
    assert_allclose(start, alone[3], rtol=1e-14)
    assert_array_equal(trans[np.tril_indices(3, -1)], 0.0)
    assert trans[0, 2] == 0.0

    logprobs, path = viterbi(log_frame, offsets, startprob, transmat)
    assert np.isneginf(logprobs[[1, 2]]).all()
    assert_array_equal(path[offsets[1] : offsets[3]], 0)
    assert np.isfinite(logprobs[[0, 3]]).all()
    assert np.all(np.diff(path[offsets[0] : offsets[1]]) >= 0)  # left-right path


def _hmmlearn_log(log_frame, startprob, transmat):
    """hmmlearn's log-space kernels on one sequence: (loglik, posteriors, trans counts)."""
    loglik, fwd = _hmmc.forward_log(startprob, transmat, log_frame)
    bwd = _hmmc.backward_log(startprob, transmat, log_frame)
    post = np.exp(fwd + bwd - loglik)
    with np.errstate(under="ignore"):
        trans = np.exp(_hmmc.compute_log_xi_sum(fwd, transmat, bwd, log_frame))
    return loglik, post, trans


@pytest.mark.parametrize("gap", [720.0, 800.0])
def test_underflow_of_the_scaled_recursion_falls_back_to_log_space(gap):
    """The only reachable state is ``gap`` nats worse than the best one: exp underflows.

    ``exp(-720)`` is subnormal and ``exp(-800)`` is zero, so the scaled normaliser is
    (nearly) zero although the sequence is possible; the answer must be the exact
    log-space one, not -inf.
    """
    startprob = np.array([1.0, 0.0])
    transmat = np.array([[0.6, 0.4], [0.0, 1.0]])  # left-right
    log_frame = np.array([[-gap, 0.0], [-1.0, -2.0], [-3.0, -0.5], [-2.0, -1.0]])
    offsets = np.array([0, 4])
    logliks, post, trans, start = forward_backward(log_frame, offsets, startprob, transmat)
    loglik, gamma, xi, top, path = _enumerate(log_frame, startprob, transmat)
    assert_allclose(logliks, [loglik], rtol=1e-13)
    assert_allclose(forward_loglik(log_frame, offsets, startprob, transmat), [loglik], rtol=1e-13)
    assert_allclose(post, gamma, rtol=1e-12, atol=1e-15)
    assert_allclose(trans, xi, rtol=1e-12, atol=1e-15)
    assert_allclose(start, gamma[0], rtol=1e-12)
    vit_logprob, vit_path = viterbi(log_frame, offsets, startprob, transmat)
    assert_allclose(vit_logprob, [top], rtol=1e-13)
    assert_array_equal(vit_path, path)


def test_overflow_of_beta_falls_back_to_log_space():
    """A state with prior 1e-320 that the next 40 observations favour by e^23 each.

    Its filtered probability stays near 1e-320 for some 30 steps while its smoothed
    probability is about 1, so the scaled beta_hat exceeds the float64 range.
    """
    startprob = np.array([1.0, 1e-320])
    transmat = np.eye(2)
    log_frame = np.zeros((41, 2))
    log_frame[1:, 0] = -23.0
    offsets = np.array([0, 41])
    logliks, post, trans, _ = forward_backward(log_frame, offsets, startprob, transmat)
    loglik, gamma, xi = _hmmlearn_log(log_frame, startprob, transmat)
    assert np.all(np.isfinite(post)) and np.all(np.isfinite(trans))
    assert_allclose(logliks, [loglik], rtol=1e-12)
    assert_allclose(post, gamma, rtol=1e-10, atol=1e-14)
    assert_allclose(trans, xi, rtol=1e-10, atol=1e-14)
    assert post[0, 1] > 0.99  # the smoothed start is the unlikely state


def test_polynomial_exp_is_within_two_ulp_of_libm():
    rng = np.random.default_rng(2)
    x = np.concatenate(
        (
            -np.abs(rng.normal(scale=30.0, size=20_000)),
            -rng.uniform(0, 1e-3, size=1000),
            [0.0, -0.0, -1e-300, -707.9, -708.0, -708.1, -745.2, -1e6, -np.inf],
        )
    )
    got = x.copy()
    exp_nonpositive(got)
    ref = np.exp(x)
    ref[x < -708.0] = 0.0  # documented flush below -708
    tol = 2 * np.spacing(ref)
    assert np.all(np.abs(got - ref) <= np.maximum(tol, 0.0))
    assert got[-1] == 0.0 and got[np.flatnonzero(x == 0.0)].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("compiled", [True, False])
def test_dense_products_against_numpy_at_every_register_block_width(compiled):
    # 1..37 columns: the 16-, 8- and 4-column blocks and the column-by-column tail
    vecmat, maxplus = (_vecmat, _maxplus) if compiled else (_vecmat.py_func, _maxplus.py_func)
    rng = np.random.default_rng(4)
    for n in range(1, 38):
        x = rng.random(n)
        mat = rng.random((n, n))
        start = rng.random(n)
        out = start.copy()
        vecmat(x, mat, out, True)
        assert_allclose(out, start + x @ mat, rtol=1e-13)
        vecmat(x, mat, out, False)
        assert_allclose(out, x @ mat, rtol=1e-13)
        log_x, log_mat = np.log(x), np.log(mat)
        log_mat[rng.random((n, n)) < 0.2] = -np.inf  # impossible transitions
        log_mat[:, 0] = -np.inf  # a column with no way in
        maxplus(log_x, log_mat, out)
        assert_array_equal(out, np.max(log_x[:, None] + log_mat, axis=0))


def test_inputs_are_left_unchanged():
    rng = np.random.default_rng(9)
    log_frame, offsets, startprob, transmat = _random_problem(rng, 3, [5, 70, 1])
    before = [a.copy() for a in (log_frame, offsets, startprob, transmat)]
    forward_backward(log_frame, offsets, startprob, transmat)
    forward_loglik(log_frame, offsets, startprob, transmat)
    viterbi(log_frame, offsets, startprob, transmat)
    for a, b in zip(before, (log_frame, offsets, startprob, transmat)):
        assert_array_equal(a, b)


def test_single_state_model():
    log_frame = np.array([[-1.0], [-2.5], [0.0], [-0.5], [-np.inf]])
    offsets = np.array([0, 3, 4, 5])
    one, trans1 = np.ones(1), np.ones((1, 1))
    logliks, post, trans, start = forward_backward(log_frame, offsets, one, trans1)
    assert_allclose(logliks, [-3.5, -0.5, -np.inf])
    assert_array_equal(post[:, 0], [1, 1, 1, 1, 0])
    assert_allclose(trans, [[2.0]])
    assert_allclose(start, [2.0])
    logprobs, path = viterbi(log_frame, offsets, one, trans1)
    assert_allclose(logprobs, [-3.5, -0.5, -np.inf])
    assert_array_equal(path, 0)


def test_viterbi_ties_go_to_the_lower_state():
    log_frame = np.zeros((4, 3))
    startprob = np.full(3, 1 / 3)
    transmat = np.full((3, 3), 1 / 3)
    logprob, path = viterbi(log_frame, np.array([0, 4]), startprob, transmat)
    assert_array_equal(path, 0)
    assert_allclose(logprob, [4 * np.log(1 / 3)])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {**a, "offsets": np.array([0, 3, 3, 10])}, "at least one row"),
        (lambda a: {**a, "offsets": np.array([0, 9])}, "end at T_total"),
        (lambda a: {**a, "offsets": np.array([0.0, 10.0])}, "integers"),
        (lambda a: {**a, "startprob": np.ones(3) / 3}, "startprob must have shape"),
        (lambda a: {**a, "transmat": np.eye(2) * np.nan}, "finite non-negative"),
        (lambda a: {**a, "log_frame": np.ones(10)}, "2-D"),
    ],
)
def test_bad_input_raises(change, message):
    good = {
        "log_frame": np.zeros((10, 2)),
        "offsets": np.array([0, 4, 10]),
        "startprob": np.array([0.5, 0.5]),
        "transmat": np.full((2, 2), 0.5),
    }
    bad = change(good)
    for fn in (forward_backward, forward_loglik, viterbi):
        with pytest.raises((ValueError, TypeError), match=message):
            fn(**bad)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_plus_inf_in_log_frame_raises(value):
    log_frame = np.zeros((5, 2))
    log_frame[2, 1] = value
    args = (log_frame, np.array([0, 5]), np.array([0.5, 0.5]), np.full((2, 2), 0.5))
    for fn in (forward_backward, forward_loglik, viterbi):
        with pytest.raises(ValueError, match="NaN or \\+inf"):
            fn(*args)


# ---------------------------------------------------------------------- threads
def compare_thread_counts():
    """One thread against two and three (run with a pool of three, below)."""
    assert numba.config.NUMBA_NUM_THREADS >= 3
    rng = np.random.default_rng(5)
    n_states = 5
    lengths = rng.integers(1, 300, size=150)
    log_frame, offsets, startprob, transmat = _random_problem(rng, n_states, lengths)
    results = []
    for threads in (1, 2, 3):
        numba.set_num_threads(threads)
        results.append(
            (
                forward_backward(log_frame, offsets, startprob, transmat),
                forward_loglik(log_frame, offsets, startprob, transmat),
                viterbi(log_frame, offsets, startprob, transmat),
            )
        )
    one = results[0]
    for other in results[1:]:
        for a, b in zip(one[0] + (one[1],) + one[2], other[0] + (other[1],) + other[2]):
            assert_array_equal(a, b)


@pytest.mark.slow
def test_results_do_not_depend_on_the_thread_count(run_with_threads):
    run_with_threads(__file__, "compare_thread_counts", threads=3)
