"""Vectorised building blocks for the Numba kernels: a fast ``exp`` and 4-wide vectors.

* :func:`exp_nonpositive` exponentiates a 1-D array in place with a polynomial
  ``exp`` (within 2 ulp of libm's) in a loop that LLVM vectorises: libm's ``exp`` is a
  scalar call, NumPy's is vectorised only with AVX-512.
* ``_v4_*`` intrinsics give Numba code an explicit 4 x float64 vector type that lowers
  to LLVM's ``<4 x double>`` (one AVX register, or two SSE ones), for register-blocked
  products LLVM will not vectorise by itself.

Neither needs ``fastmath``: every lane does the IEEE operations of scalar code in the
same order (multiply-adds fused where the CPU has FMA), so inf and NaN behave as
without vectors. The HMM kernels and the diagonal Gaussian mixture kernels use them.
"""

from __future__ import annotations

import math

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

_JIT = {"cache": True, "nogil": True, "fastmath": False}

# exp(x) = 2**n * exp(r), x = n log 2 + r, |r| <= log(2) / 2 (Cody-Waite reduction
# with fdlibm's split of log 2); exp(r) by its Taylor polynomial of degree 13
# (truncation error < 1e-17), evaluated by Estrin's scheme.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer in the low bits
_EXP_BIAS = 1023 << 52
_EXP_MIN = -708.0  # exp of anything below is taken as 0 (2**n must stay normal)
(_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12, _E13) = (
    1.0 / math.factorial(k) for k in range(14)
)


@intrinsic
def _float_bits(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64 (a bit cast, no conversion)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _bits_float(typingctx, x):
    """The float64 whose IEEE-754 bits are the int64 ``x`` (a bit cast)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


# ---------------------------------------------------------------------- 4-wide vectors
# LLVM does not vectorise the register-blocked products below by itself (the partial
# sums of a column are a reduction, and the SLP vectoriser declines them), so they
# are written with an explicit 4 x float64 vector type: a Numba value that lowers to
# LLVM's <4 x double> (one AVX register, or two SSE ones). Each lane does the IEEE
# operations of the scalar code in the same order (multiply-adds fused where the CPU
# has FMA), so inf and NaN behave as without vectors; fastmath stays off.
_V4 = ir.VectorType(ir.DoubleType(), 4)


class _Vec4Type(types.Type):
    """Four float64 lanes held in registers (values only; never stored in arrays)."""

    def __init__(self):
        super().__init__(name="emkit.Vec4")


_vec4 = _Vec4Type()


@register_model(_Vec4Type)
class _Vec4Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _V4)


def _v4_pointer(context, builder, arrty, arr, indices):
    """Pointer to four consecutive float64 of ``arr`` at ``indices`` (no bounds check)."""
    array = context.make_array(arrty)(context, builder, arr)
    ptr = cgutils.get_item_pointer(context, builder, arrty, array, indices, wraparound=False)
    return builder.bitcast(ptr, _V4.as_pointer())


def _v4_splat(builder, x):
    vec = builder.insert_element(ir.Constant(_V4, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), 4), [0, 0, 0, 0])
    return builder.shuffle_vector(vec, ir.Constant(_V4, ir.Undefined), zeros)


@intrinsic
def _v4_fill(typingctx, x):
    """Four copies of the float64 ``x``."""

    def codegen(context, builder, signature, args):
        return _v4_splat(builder, args[0])

    return _vec4(types.float64), codegen


@intrinsic
def _v4_load(typingctx, arr, i, j):
    """``arr[i, j:j + 4]`` of a C-contiguous 2-D float64 array (no bounds check)."""

    def codegen(context, builder, signature, args):
        ptr = _v4_pointer(context, builder, signature.args[0], args[0], [args[1], args[2]])
        return builder.load(ptr, align=8)

    return _vec4(arr, types.intp, types.intp), codegen


@intrinsic
def _v4_store(typingctx, arr, i, j, v):
    """``arr[i, j:j + 4] = v`` for a C-contiguous 2-D float64 array (no bounds check)."""

    def codegen(context, builder, signature, args):
        ptr = _v4_pointer(context, builder, signature.args[0], args[0], [args[1], args[2]])
        builder.store(args[3], ptr, align=8)
        return context.get_dummy_value()

    return types.none(arr, types.intp, types.intp, _vec4), codegen


@intrinsic
def _v4_load1(typingctx, arr, j):
    """``arr[j:j + 4]`` of a contiguous 1-D float64 array (no bounds check)."""

    def codegen(context, builder, signature, args):
        return builder.load(
            _v4_pointer(context, builder, signature.args[0], args[0], [args[1]]), align=8
        )

    return _vec4(arr, types.intp), codegen


@intrinsic
def _v4_store1(typingctx, arr, j, v):
    """``arr[j:j + 4] = v`` for a contiguous 1-D float64 array (no bounds check)."""

    def codegen(context, builder, signature, args):
        builder.store(
            args[2], _v4_pointer(context, builder, signature.args[0], args[0], [args[1]]), align=8
        )
        return context.get_dummy_value()

    return types.none(arr, types.intp, _vec4), codegen


@intrinsic
def _v4_mul(typingctx, u, v):
    """``u * v`` lane by lane."""

    def codegen(context, builder, signature, args):
        return builder.fmul(args[0], args[1])

    return _vec4(_vec4, _vec4), codegen


@intrinsic
def _v4_scale(typingctx, v, a):
    """``v * a`` lane by lane, for a float64 ``a``."""

    def codegen(context, builder, signature, args):
        return builder.fmul(args[0], _v4_splat(builder, args[1]))

    return _vec4(_vec4, types.float64), codegen


@intrinsic
def _v4_add(typingctx, u, v):
    """``u + v`` lane by lane."""

    def codegen(context, builder, signature, args):
        return builder.fadd(args[0], args[1])

    return _vec4(_vec4, _vec4), codegen


@intrinsic
def _v4_sum(typingctx, v):
    """``(v[0] + v[1]) + (v[2] + v[3])``."""

    def codegen(context, builder, signature, args):
        lane = [builder.extract_element(args[0], ir.Constant(ir.IntType(32), q)) for q in range(4)]
        return builder.fadd(builder.fadd(lane[0], lane[1]), builder.fadd(lane[2], lane[3]))

    return types.float64(_vec4), codegen


@intrinsic
def _v4_muladd(typingctx, acc, a, v):
    """``acc + a * v`` lane by lane (``llvm.fmuladd``: one fused rounding where the CPU
    has FMA, a multiply then an add where it has not)."""

    def codegen(context, builder, signature, args):
        acc, a, v = args
        fnty = ir.FunctionType(_V4, [_V4, _V4, _V4])
        fmuladd = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fmuladd.v4f64")
        return builder.call(fmuladd, [_v4_splat(builder, a), v, acc])

    return _vec4(_vec4, types.float64, _vec4), codegen


@intrinsic
def _v4_addmax(typingctx, acc, a, v):
    """``max(acc, a + v)`` lane by lane, keeping ``acc`` on ties (as :func:`_max`)."""

    def codegen(context, builder, signature, args):
        acc, a, v = args
        cand = builder.fadd(_v4_splat(builder, a), v)
        return builder.select(builder.fcmp_ordered(">=", acc, cand), acc, cand)

    return _vec4(_vec4, types.float64, _vec4), codegen


@intrinsic
def _v4_sub(typingctx, u, v):
    """``u - v`` lane by lane."""

    def codegen(context, builder, signature, args):
        return builder.fsub(args[0], args[1])

    return _vec4(_vec4, _vec4), codegen


@intrinsic
def _v4_fma(typingctx, acc, u, v):
    """``acc + u * v`` lane by lane for vectors ``u`` and ``v`` (``llvm.fmuladd``)."""

    def codegen(context, builder, signature, args):
        acc, u, v = args
        fnty = ir.FunctionType(_V4, [_V4, _V4, _V4])
        fmuladd = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fmuladd.v4f64")
        return builder.call(fmuladd, [u, v, acc])

    return _vec4(_vec4, _vec4, _vec4), codegen


@intrinsic
def _v4_max(typingctx, u, v):
    """``max(u, v)`` lane by lane, keeping ``u`` on ties and where ``v`` is NaN."""

    def codegen(context, builder, signature, args):
        u, v = args
        return builder.select(builder.fcmp_unordered(">=", u, v), u, v)

    return _vec4(_vec4, _vec4), codegen


# ---------------------------------------------------------------------- exp
@numba.njit(**_JIT)
def exp_nonpositive(x):  # pragma: no cover - compiled
    """``x = exp(x)`` in place for a 1-D array of arguments <= 0 or -inf.

    Below ``_EXP_MIN`` the result is 0. A loop that LLVM vectorises (libm's ``exp``
    is a scalar call, NumPy's is vectorised only with AVX-512).
    """
    for e in range(x.shape[0]):
        v = x[e]
        keep = v >= _EXP_MIN
        v = v if keep else _EXP_MIN
        y = v * _LOG2E + _ROUND
        n = y - _ROUND
        r = (v - n * _LN2_HI) - n * _LN2_LO
        r2 = r * r
        r4 = r2 * r2
        q0 = (_E0 + _E1 * r) + (_E2 + _E3 * r) * r2
        q1 = (_E4 + _E5 * r) + (_E6 + _E7 * r) * r2
        q2 = (_E8 + _E9 * r) + (_E10 + _E11 * r) * r2
        q3 = _E12 + _E13 * r
        p = (q0 + q1 * r4) + (q2 + q3 * r4) * (r4 * r4)
        # the low bits of y hold n: shifted into the exponent field they make 2**n
        x[e] = p * _bits_float((_float_bits(y) << 52) + _EXP_BIAS) if keep else 0.0
