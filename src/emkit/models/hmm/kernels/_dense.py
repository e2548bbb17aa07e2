"""Compiled small dense products shared by the HMM recursions.

The ``K x K`` products of the forward, backward and Viterbi steps keep their partial
sums in registers, four lanes of an explicit 4 x float64 vector type at a time
(:mod:`emkit._simd`); the sum-product and max-plus products are one register-blocked
column fold with a different step.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import errors, types
from numba.extending import overload

from emkit._simd import (
    _JIT,
    _v4_add,
    _v4_addmax,
    _v4_fill,
    _v4_load,
    _v4_load1,
    _v4_mul,
    _v4_muladd,
    _v4_scale,
    _v4_store1,
    _v4_sum,
)


@numba.njit(**_JIT)
def _max(a, b):  # pragma: no cover - compiled
    return a if a >= b else b


@numba.njit(**_JIT)
def _add_product(s, a, m):  # pragma: no cover - compiled
    return s + a * m


@numba.njit(**_JIT)
def _max_sum(s, a, m):  # pragma: no cover - compiled
    return _max(s, a + m)


def _fold_columns(x, mat, out, accumulate, maxplus):
    """``out[j] (+)= sum_i x[i] * mat[i, j]``, or ``out[j] = max_i (x[i] + mat[i, j])``
    with ``maxplus`` (NumPy's version, up to rounding; compiled code gets the one below).
    """
    if maxplus:
        out[:] = np.max(x[:, None] + mat, axis=0)
    else:
        out[:] = (out if accumulate else 0.0) + x @ mat


@overload(_fold_columns, prefer_literal=True, jit_options={"fastmath": False})
def _fold_columns_compiled(x, mat, out, accumulate, maxplus):
    """The column fold for a constant ``maxplus``: its step is chosen here, at typing.

    A step passed as a function argument would work too, but Numba cannot cache a
    function compiled with one, nor anything that calls it: every process would
    compile the HMM recursions again. The fold of one product is its own closure over
    the step, compiled into the (cached) caller.
    """
    if not isinstance(maxplus, types.BooleanLiteral):
        raise errors.TypingError("_fold_columns: maxplus must be a constant True or False")
    if maxplus.literal_value:
        init, step, step4 = -np.inf, _max_sum, _v4_addmax
    else:
        init, step, step4 = 0.0, _add_product, _v4_muladd

    def fold(x, mat, out, accumulate, maxplus):  # pragma: no cover - compiled
        """``out[j] = step(...step(step(s, x[0], mat[0, j]), x[1], mat[1, j])..., x[n-1], mat[n-1, j])``.

        ``s`` is ``out[j]`` with ``accumulate``, else ``init``; ``step4`` is ``step`` on
        four columns at once. Sixteen, eight or four columns at a time (then one by
        one), their running values in vector registers: no store per step, so the loop
        runs at the machine's throughput rather than at its latency.
        """
        n_rows, n_cols = mat.shape
        j = 0
        while j + 16 <= n_cols:
            s0 = _v4_load1(out, j) if accumulate else _v4_fill(init)
            s1 = _v4_load1(out, j + 4) if accumulate else _v4_fill(init)
            s2 = _v4_load1(out, j + 8) if accumulate else _v4_fill(init)
            s3 = _v4_load1(out, j + 12) if accumulate else _v4_fill(init)
            for i in range(n_rows):
                a = x[i]
                s0 = step4(s0, a, _v4_load(mat, i, j))
                s1 = step4(s1, a, _v4_load(mat, i, j + 4))
                s2 = step4(s2, a, _v4_load(mat, i, j + 8))
                s3 = step4(s3, a, _v4_load(mat, i, j + 12))
            _v4_store1(out, j, s0)
            _v4_store1(out, j + 4, s1)
            _v4_store1(out, j + 8, s2)
            _v4_store1(out, j + 12, s3)
            j += 16
        if j + 8 <= n_cols:
            s0 = _v4_load1(out, j) if accumulate else _v4_fill(init)
            s1 = _v4_load1(out, j + 4) if accumulate else _v4_fill(init)
            for i in range(n_rows):
                a = x[i]
                s0 = step4(s0, a, _v4_load(mat, i, j))
                s1 = step4(s1, a, _v4_load(mat, i, j + 4))
            _v4_store1(out, j, s0)
            _v4_store1(out, j + 4, s1)
            j += 8
        if j + 4 <= n_cols:
            s0 = _v4_load1(out, j) if accumulate else _v4_fill(init)
            for i in range(n_rows):
                s0 = step4(s0, x[i], _v4_load(mat, i, j))
            _v4_store1(out, j, s0)
            j += 4
        for jj in range(j, n_cols):
            s = out[jj] if accumulate else init
            for i in range(n_rows):
                s = step(s, x[i], mat[i, jj])
            out[jj] = s

    return fold


@numba.njit(**_JIT)
def _vecmat(x, mat, out, accumulate):  # pragma: no cover - compiled
    """``out[j] (+)= sum_i x[i] * mat[i, j]`` (with ``accumulate`` the sums start from ``out``)."""
    _fold_columns(x, mat, out, accumulate, False)


@numba.njit(**_JIT)
def _maxplus(x, mat, out):  # pragma: no cover - compiled
    """``out[j] = max_i (x[i] + mat[i, j])``, the max-plus twin of :func:`_vecmat`."""
    _fold_columns(x, mat, out, False, True)


@numba.njit(**_JIT)
def _product_sum(x, a, y, out):  # pragma: no cover - compiled
    """``out = x * a * y`` elementwise (``a`` a scalar); return ``sum(out)``.

    Four partial sums (then one by one for the last ``len % 4``), so the sum is not
    one long chain of dependent additions. ``out`` may be ``x`` or ``y``.
    """
    n = out.shape[0]
    n4 = n - n % 4
    acc = _v4_fill(0.0)
    for j in range(0, n4, 4):
        v = _v4_mul(_v4_scale(_v4_load1(x, j), a), _v4_load1(y, j))
        _v4_store1(out, j, v)
        acc = _v4_add(acc, v)
    total = _v4_sum(acc)
    for j in range(n4, n):
        v = x[j] * a * y[j]
        out[j] = v
        total += v
    return total


@numba.njit(**_JIT)
def _logsumexp(x):  # pragma: no cover - compiled
    """``log(sum(exp(x)))`` of a 1-D array (``-inf`` if every entry is)."""
    m = -np.inf
    for v in x:
        m = _max(m, v)
    if m == -np.inf:
        return m
    s = 0.0
    for v in x:
        s += np.exp(v - m)
    return m + np.log(s)
