"""The onnx rule table: ``op -> rule(site) -> ONNX output name(s)`` (a
:class:`~tensorweave.backends.base.Rules` table; spec/backends-onnx.md).

``site`` is an :class:`~tensorweave.backends.onnx.graph.OnnxSite`: ``site.args`` are the ONNX
names of the inputs, ``site.attrs`` the attributes (symbolic dims already resolved to ints or
``DimTensor``\\ s), ``site.b`` the :class:`~tensorweave.backends.onnx.graph.Builder` to emit into
and ``site.lowering`` the :class:`~tensorweave.backends.onnx.graph.Lowering` (dims, shapes,
``Loop``/``If``). Simple rules come from small factories (``unary``, ``binary``, ...); the
helpers below build the reference's semantics from exact standard ops where ONNX Runtime has no
kernel or an inexact one (float64 erf, integer pow, int64 sums, empty-axis means, ...).

The lowering (``Lowering.emit``) rounds float16/bfloat16 results after every rule except the
ops of :data:`NO_ROUND`, and masks uint32 results of the ops whose ``OPS[op].wraps_uint32``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import TensorProto, numpy_helper

from ...ir.ops.nn import pool_counts, resize_plan
from ...ir.types import DType
from ..base import Rules
from .graph import CARRIED, IN_MEMORY_MIN_BYTES, MASK32, NP_CARRIED, Builder, Lowering, OnnxSite, use_rules

LOWERINGS = Rules("onnx")
register = LOWERINGS.register

#: ops whose output is exact for float16/bfloat16 inputs already (no rounding Cast round trip);
#: multi-output ops (top_k, while_loop, cond) are never rounded as a whole
NO_ROUND = frozenset(
    {
        "astype",
        "reshape",
        "permute_dims",
        "expand_dims",
        "squeeze",
        "broadcast_to",
        "concat",
        "stack",
        "flip",
        "repeat",
        "tile",
        "slice",
        "dynamic_slice",
        "dynamic_update_slice",
        "take",
        "take_along_axis",
        "put_along_axis",
        "sort",
        "where",
        "full",
        "max",
        "min",
        "maximum",
        "minimum",
        "abs",
        "negative",
        "floor",
        "ceil",
        "clip",
        "sign",
        "top_k",
        "while_loop",
        "cond",
    }
)


# ============================================================================ small helpers


def const_of(b: Builder, value: Any, dt: DType) -> str:
    """A scalar constant in ``dt``'s carried type."""
    return b.const(np.asarray(value, NP_CARRIED[dt]))


def nan_const(b: Builder, dt: DType) -> str:
    return const_of(b, np.nan, dt)


def axes_of(attrs: dict, rank: int) -> list[int]:
    return list(range(rank)) if attrs["axis"] is None else list(attrs["axis"])


def nanprop(b: Builder, op: str, x: str, y: str, dt: DType) -> str:
    """``op`` (Max/Min) of x and y, nan when either is nan (ORT's Max/Min skip nan)."""
    out = b.node(op, [x, y])
    if dt.is_floating:
        nan = b.node("Or", [b.node("IsNaN", [x]), b.node("IsNaN", [y])])
        out = b.node("Where", [nan, nan_const(b, dt), out])
    return out


def where_any(b: Builder, c: str, x: str, y: str, dt: DType) -> str:
    """Where for every carried type (ORT's Where has no bool kernel: go through int32)."""
    if dt is DType.bool:
        xi, yi = (b.node("Cast", [v], to=TensorProto.INT32) for v in (x, y))
        return b.node("Cast", [b.node("Where", [c, xi, yi])], to=TensorProto.BOOL)
    return b.node("Where", [c, x, y])


def wrap_int32(b: Builder, x64: str) -> str:
    """int64 -> int32 with two's-complement wrap-around."""
    v = b.node("BitwiseAnd", [x64, b.i64(MASK32)])
    big = b.node("GreaterOrEqual", [v, b.i64(2**31)])
    v = b.node("Where", [big, b.node("Sub", [v, b.i64(2**32)]), v])
    return b.node("Cast", [v], to=TensorProto.INT32)


def mul_wrapped(b: Builder, x: str, y: str, dt: DType) -> str:
    """x * y with the dtype's two's-complement wrap-around (carried types: int32 as int32,
    uint32 and int64 as int64). uint32 uses 16-bit halves so no int64 product overflows."""
    if dt is DType.int32:
        p = b.node(
            "Mul", [b.node("Cast", [x], to=TensorProto.INT64), b.node("Cast", [y], to=TensorProto.INT64)]
        )
        v = b.node("BitwiseAnd", [p, b.i64(MASK32)])
        v = b.node(
            "Where", [b.node("GreaterOrEqual", [v, b.i64(2**31)]), b.node("Sub", [v, b.i64(2**32)]), v]
        )
        return b.node("Cast", [v], to=TensorProto.INT32)
    if dt is DType.uint32:
        lo = b.node("BitwiseAnd", [x, b.i64(0xFFFF)])
        hi = b.node("Div", [x, b.i64(0x10000)])
        hi_part = b.node(
            "Mul", [b.node("BitwiseAnd", [b.node("Mul", [hi, y]), b.i64(0xFFFF)]), b.i64(0x10000)]
        )
        return b.node("BitwiseAnd", [b.node("Add", [b.node("Mul", [lo, y]), hi_part]), b.i64(MASK32)])
    return b.node("Mul", [x, y])  # int64: ORT's integer Mul wraps


def cast_to(b: Builder, x: str, idt: DType, odt: DType) -> str:
    """``astype`` from ``idt`` to ``odt`` on carried values (float -> int truncates toward zero;
    -> uint32 and -> int32 wrap)."""
    if odt is DType.bool:
        if idt is DType.bool:
            return b.node("Identity", [x])
        return b.node("Not", [b.node("Equal", [x, const_of(b, 0, idt)])])
    if idt.is_floating and odt.is_integer:
        d = b.node("Cast", [x], to=TensorProto.DOUBLE)
        finite = b.node("Not", [b.node("Or", [b.node("IsNaN", [d]), b.node("IsInf", [d])])])
        d = b.node("Where", [finite, d, b.const(np.asarray(0.0))])
        t = b.node("Mul", [b.node("Sign", [d]), b.node("Floor", [b.node("Abs", [d])])])
        if odt is DType.uint32:
            m = b.node("Mod", [t, b.const(np.asarray(2.0**32))], fmod=1)
            m = b.node(
                "Where",
                [
                    b.node("Less", [m, b.const(np.asarray(0.0))]),
                    b.node("Add", [m, b.const(np.asarray(2.0**32))]),
                    m,
                ],
            )
            return b.node("Cast", [m], to=TensorProto.INT64)
        info = np.iinfo(odt.to_numpy())
        t = b.node("Clip", [t, b.const(np.asarray(float(info.min))), b.const(np.asarray(float(info.max)))])
        return b.node("Cast", [t], to=CARRIED[odt])
    if odt is DType.uint32:
        x64 = b.node("Cast", [x], to=TensorProto.INT64)
        return b.node("BitwiseAnd", [x64, b.i64(MASK32)])
    if odt is DType.int32 and idt in (DType.int64, DType.uint32):
        return wrap_int32(b, x)
    return b.node("Cast", [x], to=CARRIED[odt])


# ============================================================================ factories


def unary(onnx_op: str, **kw: Any):
    """A rule applying one ONNX op to the first input."""

    def rule(site: OnnxSite) -> str:
        return site.b.node(onnx_op, [site.args[0]], **kw)

    rule.__name__ = f"unary_{onnx_op}"
    return rule


def binary(onnx_op: str):
    """A rule applying one ONNX op to the first two inputs."""

    def rule(site: OnnxSite) -> str:
        return site.b.node(onnx_op, site.args[:2])

    rule.__name__ = f"binary_{onnx_op}"
    return rule


def bool_or_bitwise(bool_op: str, int_op: str):
    """The logical op on bool, the bitwise op on integers."""

    def rule(site: OnnxSite) -> str:
        return site.b.node(bool_op if site.in_dt is DType.bool else int_op, site.args[:2])

    rule.__name__ = f"bitwise_{int_op}"
    return rule


def nanprop_binary(onnx_op: str):
    def rule(site: OnnxSite) -> str:
        return nanprop(site.b, onnx_op, site.args[0], site.args[1], site.in_dt)

    rule.__name__ = f"nanprop_{onnx_op}"
    return rule


for _op, _onnx in {
    "negative": "Neg",
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "tanh": "Tanh",
    "sin": "Sin",
    "cos": "Cos",
    "floor": "Floor",
    "ceil": "Ceil",
    "sigmoid": "Sigmoid",
    "logical_not": "Not",
}.items():
    register(_op)(unary(_onnx))

for _op, _onnx in {
    "add": "Add",
    "subtract": "Sub",
    "multiply": "Mul",
    "divide": "Div",
    "equal": "Equal",
    "less": "Less",
    "less_equal": "LessOrEqual",
    "greater": "Greater",
    "greater_equal": "GreaterOrEqual",
    "logical_and": "And",
    "logical_or": "Or",
    "logical_xor": "Xor",
}.items():
    register(_op)(binary(_onnx))


@register("matmul")
def matmul(site: OnnxSite) -> str:
    """``MatMul``; ``x @ W^T`` with ``W`` a large 2-D initializer (a Linear weight stored
    ``[out, in]``) is ``Gemm(x, W, transB=1)`` over ``x`` flattened to 2-D: no transposed copy of
    the weight, in the file or in the session (the unused ``Transpose`` is dropped at the end)."""
    b, (x, y) = site.b, site.args
    weight = b.root.transposed.get(y)
    rank = len(site.node.inputs[0].shape)
    if weight is None or rank < 2 or site.in_dt not in (DType.float32, DType.float64):
        return b.node("MatMul", [x, y])
    return _gemm_t(site, x, weight)


register("bitwise_and")(bool_or_bitwise("And", "BitwiseAnd"))
register("bitwise_or")(bool_or_bitwise("Or", "BitwiseOr"))
register("bitwise_xor")(bool_or_bitwise("Xor", "BitwiseXor"))
register("maximum")(nanprop_binary("Max"))
register("minimum")(nanprop_binary("Min"))


# ============================================================================ elementwise


@register("abs")
def abs_(site: OnnxSite) -> str:
    if site.in_dt is DType.uint32:
        return site.b.node("Identity", [site.args[0]])
    return site.b.node("Abs", [site.args[0]])


@register("sign")
def sign(site: OnnxSite) -> str:
    b, x = site.b, site.args[0]
    s = b.node("Sign", [x])
    if site.in_dt.is_floating:
        return b.node("Where", [b.node("IsNaN", [x]), x, s])
    return s


@register("log1p")
def log1p(site: OnnxSite) -> str:
    b = site.b
    return b.node("Log", [b.node("Add", [site.args[0], const_of(b, 1.0, site.in_dt)])])


@register("rsqrt")
def rsqrt(site: OnnxSite) -> str:
    b = site.b
    return b.node("Div", [const_of(b, 1.0, site.in_dt), b.node("Sqrt", [site.args[0]])])


@register("silu")
def silu(site: OnnxSite) -> str:
    b, x = site.b, site.args[0]
    return b.node("Mul", [x, b.node("Sigmoid", [x])])


@register("isnan", "isinf", "isfinite")
def is_class(site: OnnxSite) -> str:
    b, x, op = site.b, site.args[0], site.op
    if site.in_dt.is_floating:
        if op == "isfinite":
            return b.node("Not", [b.node("Or", [b.node("IsNaN", [x]), b.node("IsInf", [x])])])
        return b.node("IsNaN" if op == "isnan" else "IsInf", [x])
    value = numpy_helper.from_array(np.asarray([op == "isfinite"], dtype=np.bool_), "v")
    return b.node("ConstantOfShape", [b.node("Shape", [x])], value=value)


@register("bitwise_invert")
def bitwise_invert(site: OnnxSite) -> str:
    return site.b.node("Not" if site.in_dt is DType.bool else "BitwiseNot", [site.args[0]])


@register("not_equal")
def not_equal(site: OnnxSite) -> str:
    return site.b.node("Not", [site.b.node("Equal", site.args[:2])])


def _safe_divisor(b: Builder, y: str, dt: DType) -> str:
    """y with 0 (and -1 for signed types) replaced by 1, for integer Div/Mod."""
    zero, one = const_of(b, 0, dt), const_of(b, 1, dt)
    bad = b.node("Equal", [y, zero])
    if dt.is_signed:
        bad = b.node("Or", [bad, b.node("Equal", [y, const_of(b, -1, dt)])])
    return b.node("Where", [bad, one, y])


def _float_floor_divide(b: Builder, x: str, y: str, dt: DType) -> str:
    """numpy's float floor_divide: m = fmod(x, y); d = (x - m) / y, minus 1 when m != 0 and its
    sign differs from y's; then floor(d), plus 1 when d - floor(d) > 0.5; a zero result takes the
    sign of x / y; y == 0 gives x / y. (floor(x / y) differs when x / y rounds up to an integer.)"""

    def c(v: float) -> str:
        return const_of(b, v, dt)

    m = b.node("Mod", [x, y], fmod=1)
    d = b.node("Div", [b.node("Sub", [x, m]), y])
    fix = b.node(
        "And",
        [
            b.node("Not", [b.node("Equal", [m, c(0)])]),
            b.node("Xor", [b.node("Less", [m, c(0)]), b.node("Less", [y, c(0)])]),
        ],
    )
    d = b.node("Where", [fix, b.node("Sub", [d, c(1)]), d])
    f = b.node("Floor", [d])
    f = b.node("Where", [b.node("Greater", [b.node("Sub", [d, f]), c(0.5)]), b.node("Add", [f, c(1)]), f])
    q = b.node("Div", [x, y])
    f = b.node("Where", [b.node("Equal", [f, c(0)]), b.node("Mul", [q, c(0)]), f])
    return b.node("Where", [b.node("Equal", [y, c(0)]), q, f])


@register("floor_divide")
def floor_divide(site: OnnxSite) -> str:
    b, (x, y), dt = site.b, site.args, site.in_dt
    if dt.is_floating:
        return _float_floor_divide(b, x, y, dt)
    yy = y
    y = _safe_divisor(b, y, dt)
    q = b.node("Div", [x, y])
    if dt.is_signed:
        q = b.node("Where", [b.node("Equal", [yy, const_of(b, -1, dt)]), b.node("Neg", [x]), q])
    r = b.node("Mod", [x, y], fmod=1)
    zero = const_of(b, 0, dt)
    adjust = b.node(
        "And",
        [
            b.node("Not", [b.node("Equal", [r, zero])]),
            b.node("Xor", [b.node("Less", [r, zero]), b.node("Less", [y, zero])]),
        ],
    )
    return b.node("Sub", [q, b.node("Cast", [adjust], to=CARRIED[dt])])


@register("remainder")
def remainder(site: OnnxSite) -> str:
    b, (x, y), dt = site.b, site.args, site.in_dt
    if dt.is_floating:
        r = b.node("Mod", [x, y], fmod=1)
        zero = const_of(b, 0, dt)
        fix = b.node(
            "And",
            [
                b.node("Not", [b.node("Equal", [r, zero])]),
                b.node("Xor", [b.node("Less", [r, zero]), b.node("Less", [y, zero])]),
            ],
        )
        return b.node("Where", [fix, b.node("Add", [r, y]), r])
    return b.node("Mod", [x, _safe_divisor(b, y, dt)], fmod=0)


@register("pow")
def pow_(site: OnnxSite) -> str:
    """Floats: Pow. Integers: exact square-and-multiply over the exponent's bits with
    wrap-around (ORT's integer Pow goes through floating point and saturates)."""
    b, dt = site.b, site.in_dt
    if dt.is_floating:
        return b.node("Pow", site.args[:2])
    x, y = site.args[:2]
    zero, one, two = (const_of(b, v, dt) for v in (0, 1, 2))
    base = b.node("Add", [x, b.node("Mul", [y, zero])])  # broadcast both operands
    exp = b.node("Add", [b.node("Max", [y, zero]), b.node("Mul", [x, zero])])
    acc = b.node("Add", [b.node("Mul", [base, zero]), one])
    bits = 63 if dt is DType.int64 else 32

    def body(bb: Builder, it: str, s: list[str]) -> list[str]:
        acc, base, e = s
        odd = bb.node("Equal", [bb.node("Mod", [e, two]), one])
        acc = bb.node("Where", [odd, mul_wrapped(bb, acc, base, dt), acc])
        return [acc, mul_wrapped(bb, base, base, dt), bb.node("Div", [e, two])]

    return site.lowering.counted_loop(bits, [acc, base, exp], [CARRIED[dt]] * 3, body)[0]


def _shift_rule(left: bool):
    def rule(site: OnnxSite) -> str:
        b, (x, y), dt = site.b, site.args, site.in_dt
        bits = 32 if dt in (DType.int32, DType.uint32) else 64
        y64 = b.node(
            "Cast",
            [b.node("Clip", [b.node("Cast", [y], to=TensorProto.INT64), b.i64(0), b.i64(bits - 1)])],
            to=TensorProto.UINT64,
        )
        if left:
            xs = (
                b.node("Cast", [x], to=TensorProto.UINT64)
                if dt is not DType.int32
                else b.node("Cast", [b.node("Cast", [x], to=TensorProto.INT64)], to=TensorProto.UINT64)
            )
            out = b.node("Cast", [b.node("BitShift", [xs, y64], direction="LEFT")], to=TensorProto.INT64)
            return wrap_int32(b, out) if dt is DType.int32 else out
        # right shift: logical for uint32 (non-negative int64), arithmetic for signed ints
        x64 = b.node("Cast", [x], to=TensorProto.INT64) if dt is DType.int32 else x
        ux = b.node("Cast", [x64], to=TensorProto.UINT64)
        pos = b.node("Cast", [b.node("BitShift", [ux, y64], direction="RIGHT")], to=TensorProto.INT64)
        if dt is DType.uint32:
            return pos
        nx = b.node("Cast", [b.node("BitwiseNot", [x64])], to=TensorProto.UINT64)
        neg = b.node(
            "BitwiseNot",
            [b.node("Cast", [b.node("BitShift", [nx, y64], direction="RIGHT")], to=TensorProto.INT64)],
        )
        out = b.node("Where", [b.node("Less", [x64, b.i64(0)]), neg, pos])
        return b.node("Cast", [out], to=TensorProto.INT32) if dt is DType.int32 else out

    rule.__name__ = "left_shift" if left else "right_shift"
    return rule


register("bitwise_left_shift")(_shift_rule(True))
register("bitwise_right_shift")(_shift_rule(False))


@register("where")
def where(site: OnnxSite) -> str:
    c, x, y = site.args
    return where_any(site.b, c, x, y, site.out_dt)


@register("clip")
def clip(site: OnnxSite) -> str:
    b, a, dt = site.b, site.attrs, site.in_dt
    x = y = site.args[0]
    for bound, op in ((a["min"], "Max"), (a["max"], "Min")):
        if bound is not None:
            y = nanprop(b, op, y, b.const(np.asarray(bound).astype(NP_CARRIED[dt])), dt)
    return y if y != x else b.node("Identity", [y])


@register("astype")
def astype(site: OnnxSite) -> str:
    return cast_to(site.b, site.args[0], site.in_dt, site.out_dt)


# ============================================================================ erf / gelu

#: terms of the erf series used for float64 (enough for |x| <= 6; erf(6) rounds to 1 in float64)
ERF64_TERMS = 170


def erf64(L: Lowering, x: str) -> str:
    """erf for float64 (ORT has no double Erf): erf(x) = 2/sqrt(pi) * x * exp(-x^2) * S with
    S = sum_n (2x^2)^n / (2n+1)!!, a series of positive terms (no cancellation), x clamped to
    [-6, 6] (|erf| rounds to 1 beyond) and nan passed through."""
    b = L.b

    def d(v: float) -> str:
        return b.const(np.asarray(v, np.float64))

    isnan = b.node("IsNaN", [x])
    xc = b.node("Min", [b.node("Max", [b.node("Where", [isnan, d(0.0), x]), d(-6.0)]), d(6.0)])
    t2 = b.node("Mul", [d(2.0), b.node("Mul", [xc, xc])])
    one = b.node("Add", [b.node("Mul", [xc, d(0.0)]), d(1.0)])

    def body(bb: Builder, it: str, s: list[str]) -> list[str]:
        k = bb.node("Add", [bb.node("Mul", [bb.node("Cast", [it], to=TensorProto.DOUBLE), d(2.0)]), d(3.0)])
        term = bb.node("Div", [bb.node("Mul", [s[0], t2]), k])
        return [term, bb.node("Add", [s[1], term])]

    _, total = L.counted_loop(ERF64_TERMS, [one, one], [TensorProto.DOUBLE] * 2, body)
    scale = b.node(
        "Mul",
        [
            b.node("Mul", [d(2.0 / math.sqrt(math.pi)), xc]),
            b.node("Exp", [b.node("Neg", [b.node("Mul", [xc, xc])])]),
        ],
    )
    val = b.node("Mul", [scale, total])
    val = b.node(
        "Where", [b.node("GreaterOrEqual", [b.node("Abs", [xc]), d(6.0)]), b.node("Sign", [xc]), val]
    )
    return b.node("Where", [isnan, x, val])


@register("erf")
def erf(site: OnnxSite) -> str:
    if site.in_dt is DType.float64:
        return erf64(site.lowering, site.args[0])
    return site.b.node("Erf", [site.args[0]])


@register("gelu")
def gelu(site: OnnxSite) -> str:
    b, x, approximate = site.b, site.args[0], site.attrs["approximate"]
    if site.in_dt is DType.float64 and approximate == "none":

        def d(v: float) -> str:
            return b.const(np.asarray(v, np.float64))

        e = erf64(site.lowering, b.node("Div", [x, d(math.sqrt(2.0))]))
        return b.node("Mul", [b.node("Mul", [d(0.5), x]), b.node("Add", [d(1.0), e])])
    return b.node("Gelu", [x], approximate=approximate)


# ============================================================================ reductions


def reduce_with(site: OnnxSite, op: str, nan_prop: bool = False) -> str:
    """One ONNX ``Reduce*`` over the site's axes (bool through int32; ``nan_prop``: any nan gives
    nan, as ORT's ReduceMax/ReduceMin skip nan)."""
    b, a, dt, x0 = site.b, site.attrs, site.in_dt, site.args[0]
    axes = axes_of(a, site.rank)
    if not axes:
        return b.node("Identity", [x0])
    x = b.node("Cast", [x0], to=TensorProto.INT32) if dt is DType.bool else x0
    out = b.node(op, [x, b.i64(axes)], keepdims=int(a["keepdims"]))
    if dt is DType.bool:
        out = b.node("Cast", [out], to=TensorProto.BOOL)
    if nan_prop and dt.is_floating:
        anynan = b.node(
            "Cast",
            [
                b.node(
                    "ReduceMax",
                    [b.node("Cast", [b.node("IsNaN", [x0])], to=TensorProto.INT32), b.i64(axes)],
                    keepdims=int(a["keepdims"]),
                )
            ],
            to=TensorProto.BOOL,
        )
        out = b.node("Where", [anynan, nan_const(b, dt), out])
    return out


def reduction(onnx_op: str, nan_prop: bool = False):
    def rule(site: OnnxSite) -> str:
        return reduce_with(site, onnx_op, nan_prop)

    rule.__name__ = f"reduce_{onnx_op}"
    return rule


register("max")(reduction("ReduceMax", True))
register("min")(reduction("ReduceMin", True))


def int64_sum(L: Lowering, x: str, axes: list[int], shape: list, keepdims: bool) -> str:
    """Exact int64 sum (ORT's ReduceSum on int64 loses low bits for large values): move the
    reduced axes last, flatten them, prepend a zero, CumSum and take the last element."""
    b = L.b
    rank = len(shape)
    rest = [k for k in range(rank) if k not in axes]
    t = b.node("Transpose", [x], perm=rest + axes)
    rest_dims = [shape[k] for k in rest]
    count = shape[axes[0]]
    for k in axes[1:]:
        count = count * shape[k]
    flat = b.node("Reshape", [t, L.shape(rest_dims + [count])], allowzero=1)
    zshape = b.node("Concat", [L.shape(rest_dims), b.i64([1])], axis=0) if rest_dims else b.i64([1])
    zeros = b.node("ConstantOfShape", [zshape], value=numpy_helper.from_array(np.asarray([0], np.int64), "v"))
    cs = b.node("CumSum", [b.node("Concat", [zeros, flat], axis=-1), b.const(np.int64(-1))])
    last = b.node("Squeeze", [b.node("Slice", [cs, b.i64([-1]), b.i64([2**62]), b.i64([-1])]), b.i64([-1])])
    if keepdims:
        return b.node(
            "Reshape", [last, L.shape([1 if k in axes else shape[k] for k in range(rank)])], allowzero=1
        )
    return last


@register("sum")
def sum_(site: OnnxSite) -> str:
    if site.in_dt in (DType.int64, DType.uint32):
        rank = site.rank
        axes = axes_of(site.attrs, rank)
        if not axes:
            return site.b.node("Identity", [site.args[0]])
        return int64_sum(
            site.lowering, site.args[0], [k % rank for k in axes], site.in_shape, bool(site.attrs["keepdims"])
        )
    return reduce_with(site, "ReduceSum")


@register("mean")
def mean(site: OnnxSite) -> str:
    """ReduceSum / count (ReduceMean of an empty axis gives 0 in ORT; the reference gives nan)."""
    b = site.b
    axes = axes_of(site.attrs, site.rank)
    if not axes:
        return b.node("Identity", [site.args[0]])
    total = reduce_with(site, "ReduceSum")
    dims = b.node("Gather", [b.node("Shape", [site.args[0]]), b.i64(axes)], axis=0)
    count = b.node("Cast", [b.node("ReduceProd", [dims], keepdims=0)], to=CARRIED[site.in_dt])
    return b.node("Div", [total, count])


@register("prod")
def prod(site: OnnxSite) -> str:
    """Integer products wrap: multiply the reduced slices one by one (ReduceProd saturates int64 in
    ONNX Runtime). Float products use ReduceProd."""
    b, L, a, dt = site.b, site.lowering, site.attrs, site.in_dt
    shape = site.in_shape
    axes = axes_of(a, len(shape))
    sizes = [shape[k] for k in axes]
    if dt.is_floating or not axes or not all(isinstance(d, int) for d in sizes) or math.prod(sizes) > 256:
        return reduce_with(site, "ReduceProd")
    rest = [k for k in range(len(shape)) if k not in axes]
    x = b.node("Transpose", [site.args[0]], perm=axes + rest)
    count = math.prod(sizes)
    rest_dims = [shape[k] for k in rest]
    x = b.node("Reshape", [x, L.shape([count] + rest_dims)], allowzero=1)
    acc = b.node(
        "ConstantOfShape",
        [L.shape(rest_dims)],
        value=numpy_helper.from_array(np.asarray([1], NP_CARRIED[dt]), "v"),
    )
    for k in range(count):
        piece = b.node("Squeeze", [b.node("Slice", [x, b.i64([k]), b.i64([k + 1]), b.i64([0])]), b.i64([0])])
        acc = b.node("Mul", [acc, piece])
        if dt is DType.uint32:
            acc = b.node("BitwiseAnd", [acc, b.i64(MASK32)])
    if a["keepdims"]:
        acc = b.node(
            "Reshape", [acc, L.shape([1 if k in axes else shape[k] for k in range(len(shape))])], allowzero=1
        )
    return acc


def _any_all_rule(is_any: bool):
    """any = ReduceSum(x as int) > 0 (ReduceMax of an empty axis is the dtype's lowest value);
    all = not any(not x)."""

    def rule(site: OnnxSite) -> str:
        b = site.b
        axes = axes_of(site.attrs, site.rank)
        if not axes:
            return b.node("Identity", [site.args[0]])
        x = site.args[0] if is_any else b.node("Not", [site.args[0]])
        cnt = b.node(
            "ReduceSum",
            [b.node("Cast", [x], to=TensorProto.INT64), b.i64(axes)],
            keepdims=int(site.attrs["keepdims"]),
        )
        hit = b.node("Greater", [cnt, b.i64(0)])
        return hit if is_any else b.node("Not", [hit])

    rule.__name__ = "any_" if is_any else "all_"
    return rule


register("any")(_any_all_rule(True))
register("all")(_any_all_rule(False))


@register("logsumexp")
def logsumexp(site: OnnxSite) -> str:
    b, x, dt = site.b, site.args[0], site.in_dt
    axes = axes_of(site.attrs, site.rank)
    if not axes:
        return b.node("Identity", [x])
    m = b.node("ReduceMax", [x, b.i64(axes)], keepdims=1)
    finite = b.node("Not", [b.node("Or", [b.node("IsNaN", [m]), b.node("IsInf", [m])])])
    m = b.node("Where", [finite, m, const_of(b, 0, dt)])
    total = b.node("ReduceSum", [b.node("Exp", [b.node("Sub", [x, m])]), b.i64(axes)], keepdims=1)
    s = b.node("Add", [b.node("Log", [total]), m])
    nans = b.node(
        "ReduceSum", [b.node("Cast", [b.node("IsNaN", [x])], to=TensorProto.INT64), b.i64(axes)], keepdims=1
    )
    s = b.node("Where", [b.node("Greater", [nans, b.i64(0)]), nan_const(b, dt), s])
    if not site.attrs["keepdims"]:
        s = b.node("Squeeze", [s, b.i64(axes)])
    return s


def _argext_rule(largest: bool):
    def rule(site: OnnxSite) -> str:
        b, x, dt = site.b, site.args[0], site.in_dt
        axis, kd = site.attrs["axis"], int(site.attrs["keepdims"])
        op = "ArgMax" if largest else "ArgMin"
        if dt is DType.bool:
            x = b.node("Cast", [x], to=TensorProto.INT32)
        if not dt.is_floating:
            return b.node(op, [x], axis=axis, keepdims=kd, select_last_index=0)
        nan = b.node("IsNaN", [x])
        filled = b.node("Where", [nan, const_of(b, -math.inf if largest else math.inf, dt), x])
        best = b.node(op, [filled], axis=axis, keepdims=kd, select_last_index=0)
        nan_i = b.node("Cast", [nan], to=TensorProto.INT32)
        first_nan = b.node("ArgMax", [nan_i], axis=axis, keepdims=kd, select_last_index=0)
        any_nan = b.node(
            "Cast", [b.node("ReduceMax", [nan_i, b.i64([axis])], keepdims=kd)], to=TensorProto.BOOL
        )
        return b.node("Where", [any_nan, first_nan, best])

    rule.__name__ = "argmax" if largest else "argmin"
    return rule


register("argmax")(_argext_rule(True))
register("argmin")(_argext_rule(False))


@register("cumulative_sum")
def cumulative_sum(site: OnnxSite) -> str:
    return site.b.node("CumSum", [site.args[0], site.b.const(np.int64(site.attrs["axis"]))])


@register("einsum")
def einsum(site: OnnxSite) -> str:
    return site.b.node("Einsum", site.args, equation=site.attrs["subscripts"])


# ============================================================================ creation and shapes


@register("full")
def full(site: OnnxSite) -> str:
    odt = site.out_dt
    v = np.array(site.attrs["fill_value"])
    if v.dtype.kind in "iu" and odt.is_integer:
        v = v.astype(np.int64)
        if odt is DType.uint32:
            v = v & MASK32
    v = v.astype(NP_CARRIED[odt]).reshape(1)
    shape = site.lowering.shape(site.attrs["shape"])
    return site.b.node("ConstantOfShape", [shape], value=numpy_helper.from_array(v, "value"))


@register("arange")
def arange(site: OnnxSite) -> str:
    L, a = site.lowering, site.attrs
    r = site.b.node(
        "Range", [L.scalar_dim(a["start"]), L.scalar_dim(a["stop"]), site.b.const(np.int64(a["step"]))]
    )
    if site.out_dt is DType.int64:
        return r
    return cast_to(site.b, r, DType.int64, site.out_dt)


@register("reshape")
def reshape(site: OnnxSite) -> str:
    return site.b.node("Reshape", [site.args[0], site.lowering.shape(site.attrs["shape"])], allowzero=1)


@register("permute_dims")
def permute_dims(site: OnnxSite) -> str:
    """``Transpose``; of a large initializer (a weight read as ``x @ W^T``), the transposed
    initializer itself, made once at lowering (no runtime fold that would copy it per subgraph)."""
    axes = tuple(site.attrs["axes"])
    out = site.b.node("Transpose", [site.args[0]], perm=list(axes))
    value = site.lowering.constant_value(site.args[0])
    if axes == (1, 0) and value is not None and value.nbytes >= IN_MEMORY_MIN_BYTES:
        site.b.root.transposed[out] = site.args[0]  # matmul may read the weight as Gemm(transB=1)
    return out


@register("expand_dims")
def expand_dims(site: OnnxSite) -> str:
    return site.b.node("Unsqueeze", [site.args[0], site.b.i64([site.attrs["axis"]])])


@register("squeeze")
def squeeze(site: OnnxSite) -> str:
    if not site.attrs["axis"]:
        return site.b.node("Identity", [site.args[0]])
    return site.b.node("Squeeze", [site.args[0], site.b.i64(list(site.attrs["axis"]))])


@register("broadcast_to")
def broadcast_to(site: OnnxSite) -> str:
    return site.b.node("Expand", [site.args[0], site.lowering.shape(site.attrs["shape"])])


@register("concat")
def concat(site: OnnxSite) -> str:
    return site.b.node("Concat", site.args, axis=site.attrs["axis"])


@register("stack")
def stack(site: OnnxSite) -> str:
    b, axis = site.b, site.attrs["axis"]
    return b.node("Concat", [b.node("Unsqueeze", [x, b.i64([axis])]) for x in site.args], axis=axis)


@register("flip")
def flip(site: OnnxSite) -> str:
    b = site.b
    axes = axes_of(site.attrs, site.rank)
    if not axes:
        return b.node("Identity", [site.args[0]])
    k = len(axes)
    return b.node(
        "Slice", [site.args[0], b.i64([-1] * k), b.i64([-(2**63)] * k), b.i64(axes), b.i64([-1] * k)]
    )


@register("repeat")
def repeat(site: OnnxSite) -> str:
    b, L, a = site.b, site.lowering, site.attrs
    x, r = site.args[0], a["repeats"]
    shape = site.in_shape
    if a["axis"] is None:
        x = b.node("Reshape", [x, b.i64([-1])])
        shape, axis = [site.node.inputs[0].shape.size()], 0
    else:
        axis = a["axis"]
    if r == 0:  # ORT's Expand treats a 0 target dim against 1 as 1: slice the axis empty instead
        return b.node("Slice", [x, b.i64([0]), b.i64([0]), b.i64([axis])])
    u = b.node("Unsqueeze", [x, b.i64([axis + 1])])
    e = b.node("Expand", [u, L.shape(shape[: axis + 1] + [r] + shape[axis + 1 :])])
    return b.node("Reshape", [e, L.shape(shape[:axis] + [shape[axis] * r] + shape[axis + 1 :])], allowzero=1)


@register("tile")
def tile(site: OnnxSite) -> str:
    b = site.b
    shape, reps = site.in_shape, list(site.attrs["reps"])
    r = max(len(shape), len(reps))
    x = site.args[0]
    if r > len(shape):
        shape = [1] * (r - len(shape)) + shape
        x = b.node("Reshape", [x, site.lowering.shape(shape)], allowzero=1)
    reps = [1] * (r - len(reps)) + reps
    return b.node("Tile", [x, b.i64(reps)])


@register("slice")
def slice_(site: OnnxSite) -> str:
    b, L, a = site.b, site.lowering, site.attrs
    if not a["starts"]:
        return b.node("Identity", [site.args[0]])
    rank = len(a["starts"])
    return b.node(
        "Slice",
        [
            site.args[0],
            L.shape(a["starts"]),
            L.shape(a["stops"]),
            b.i64(list(range(rank))),
            b.i64(list(a["steps"])),
        ],
    )


# ============================================================================ indexing


def clamped_starts(b: Builder, x: str, starts: list[str], sizes: list[str]) -> list[str]:
    """Each start cast to int64 and clamped to [0, dim - size] (numpy/lax semantics)."""
    shape = b.node("Shape", [x])
    out = []
    for k, (s, size) in enumerate(zip(starts, sizes)):
        dim = b.node("Gather", [shape, b.i64([k])], axis=0)
        s1 = b.node("Reshape", [b.node("Cast", [s], to=TensorProto.INT64), b.i64([1])])
        hi = b.node("Sub", [dim, size])
        out.append(b.node("Max", [b.node("Min", [s1, hi]), b.i64([0])]))
    return out


@register("dynamic_slice")
def dynamic_slice(site: OnnxSite) -> str:
    b, L = site.b, site.lowering
    x, starts = site.args[0], site.args[1:]
    sizes = [L.dim(d) for d in site.attrs["sizes"]]
    begin = b.node("Concat", clamped_starts(b, x, starts, sizes), axis=0)
    end = b.node("Add", [begin, b.node("Concat", sizes, axis=0)])
    return b.node("Slice", [x, begin, end, b.i64(list(range(len(starts))))])


def scatter_update(
    b: Builder, x: str, u: str, starts: list[str], xs: list, us: list[int], dims: dict[int, str] | None = None
) -> str:
    """dynamic_update_slice as one ``ScatterND`` when the update's shape is static (``x``'s may be
    symbolic: a decode step writing one position of a cache of run-time length). The index tuples
    cover the axes up to the last one the update may not span (``r`` axes); the rest of each update
    row is copied whole. The index is a constant grid (``arange`` per axis) plus the clamped start
    of each axis whose start can move; an axis the update spans exactly (same static size) has
    start 0 after clamping and costs nothing. Cost O(update) nodes and work, not O(x). ``dims``
    gives symbolic sizes of ``x`` as the lowering's dim tensors: then the index depends only on the
    start and the symbols, and the KV-cache writes of every layer share one index (ONNX Runtime
    merges the equal subexpressions) instead of reading each cache's shape."""
    moving = [k for k in range(len(xs)) if not (isinstance(xs[k], int) and xs[k] == us[k])]
    r = max(moving) + 1
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in us[:r]], indexing="ij"), axis=-1)
    index = b.const(grid.astype(np.int64))
    shape = None
    offsets = []
    for k in range(r):
        if k not in moving:
            offsets.append(b.i64([0]))
            continue
        if isinstance(xs[k], int):
            hi = b.i64([xs[k] - us[k]])
        elif dims and k in dims:
            hi = b.node("Sub", [dims[k], b.i64([us[k]])])
        else:
            shape = shape or b.node("Shape", [x])
            hi = b.node("Sub", [b.node("Gather", [shape, b.i64([k])], axis=0), b.i64([us[k]])])
        s1 = b.node("Reshape", [b.node("Cast", [starts[k]], to=TensorProto.INT64), b.i64([1])])
        offsets.append(b.node("Max", [b.node("Min", [s1, hi]), b.i64([0])]))
    start = offsets[0] if r == 1 else b.node("Concat", offsets, axis=0)
    return b.node("ScatterND", [x, b.node("Add", [index, start]), u])


@register("dynamic_update_slice")
def dynamic_update_slice(site: OnnxSite) -> str:
    """One ScatterND when the update's shape is static (and not bool), else Pad of the update
    and a Where."""
    b, dt = site.b, site.in_dt
    x, u, starts = site.args[0], site.args[1], site.args[2:]
    xs, us = site.in_shape, list(site.node.inputs[1].shape)
    static_u = all(isinstance(d, int) for d in us) and 0 not in us
    if static_u and dt is not DType.bool and xs != us:
        dims = {}
        for k, d in enumerate(xs):
            if not isinstance(d, int):
                try:
                    dims[k] = site.lowering.dim(d)
                except KeyError:  # a symbol the lowering has no tensor for: read x's shape
                    pass
        return scatter_update(b, x, u, starts, xs, us, dims)
    ushape = b.node("Shape", [u])
    sizes = [b.node("Gather", [ushape, b.i64([k])], axis=0) for k in range(len(starts))]
    st = clamped_starts(b, x, starts, sizes)
    xshape = b.node("Shape", [x])
    begin = b.node("Concat", st, axis=0)
    after = b.node("Sub", [b.node("Sub", [xshape, begin]), ushape])
    pads = b.node("Concat", [begin, after], axis=0)
    padded = b.node("Pad", [u, pads])
    ones = b.node("ConstantOfShape", [ushape], value=numpy_helper.from_array(np.asarray([1], np.int32), "v"))
    mask = b.node("Cast", [b.node("Pad", [ones, pads])], to=TensorProto.BOOL)
    return where_any(b, mask, padded, x, dt)


@register("take")
def take(site: OnnxSite) -> str:
    b = site.b
    return b.node(
        "Gather",
        [site.args[0], b.node("Cast", [site.args[1]], to=TensorProto.INT64)],
        axis=site.attrs["axis"],
    )


@register("take_along_axis")
def take_along_axis(site: OnnxSite) -> str:
    b = site.b
    idx = b.node("Cast", [site.args[1]], to=TensorProto.INT64)
    return b.node("GatherElements", [site.args[0], idx], axis=site.attrs["axis"])


@register("put_along_axis")
def put_along_axis(site: OnnxSite) -> str:
    b = site.b
    idx = b.node("Cast", [site.args[1]], to=TensorProto.INT64)
    return b.node("ScatterElements", [site.args[0], idx, site.args[2]], axis=site.attrs["axis"])


# ============================================================================ sorts


def argsort_names(b: Builder, x: str, dt: DType, axis: int, descending: bool) -> str:
    """Stable argsort, nan larger than +inf: TopK (ties -> lower index) by value, then by nan flag."""
    k = b.node("Gather", [b.node("Shape", [x]), b.i64([axis])], axis=0)
    if dt.is_floating:
        v = b.node("Cast", [x], to=TensorProto.DOUBLE)
        nan = b.node("IsNaN", [v])
        v = b.node("Where", [nan, b.const(np.asarray(0.0)), v])
        _, idx = b.node("TopK", [v, k], n_out=2, axis=axis, largest=int(descending), sorted=1)
        flag = b.node("Cast", [b.node("Not", [nan]) if descending else nan], to=TensorProto.INT64)
        flag_sorted = b.node("GatherElements", [flag, idx], axis=axis)
        _, idx2 = b.node("TopK", [flag_sorted, k], n_out=2, axis=axis, largest=0, sorted=1)
        return b.node("GatherElements", [idx, idx2], axis=axis)
    v = b.node("Cast", [x], to=TensorProto.INT64)
    _, idx = b.node("TopK", [v, k], n_out=2, axis=axis, largest=int(descending), sorted=1)
    return idx


@register("argsort")
def argsort(site: OnnxSite) -> str:
    return argsort_names(
        site.b, site.args[0], site.in_dt, site.attrs["axis"] % site.rank, site.attrs["descending"]
    )


@register("sort")
def sort(site: OnnxSite) -> str:
    axis = site.attrs["axis"] % site.rank
    idx = argsort_names(site.b, site.args[0], site.in_dt, axis, site.attrs["descending"])
    return site.b.node("GatherElements", [site.args[0], idx], axis=axis)


@register("top_k")
def top_k(site: OnnxSite) -> list[str]:
    """One ``TopK(k)`` (ties -> lower index, ONNX's rule) on a key that orders like the IR: floats
    as double with ``+inf -> 1e300`` (above every float32, which double holds exactly) and
    ``nan -> +inf`` (nan largest); integers as int64. No full sort of the axis (a beam step's
    ``[B, num_beams * vocab]`` row has ~200k entries and needs 2 * num_beams of them)."""
    b, last, x = site.b, site.rank - 1, site.args[0]
    k = b.i64([site.attrs["k"]])
    if site.in_dt.is_floating:
        v = b.node("Cast", [x], to=TensorProto.DOUBLE)
        nan = b.node("IsNaN", [v])
        v = b.node("Where", [b.node("IsInf", [v], detect_negative=0), b.const(np.asarray(1e300)), v])
        v = b.node("Where", [nan, b.const(np.asarray(np.inf)), v])
    else:
        v = b.node("Cast", [x], to=TensorProto.INT64)
    _, idx = b.node("TopK", [v, k], n_out=2, axis=last, largest=1, sorted=1)
    return [b.node("GatherElements", [x, idx], axis=last), idx]


# ============================================================================ nn


def _softmax_rule(log: bool):
    def rule(site: OnnxSite) -> str:
        b, x, axis = site.b, site.args[0], site.attrs["axis"]
        # m = 0 where the max is infinite; a nan max may stay: its row is all nan either way
        m = b.node("ReduceMax", [x, b.i64([axis])], keepdims=1)
        m = b.node("Where", [b.node("IsInf", [m]), const_of(b, 0, site.in_dt), m])
        s = b.node("Sub", [x, m])
        e = b.node("Exp", [s])
        tot = b.node("ReduceSum", [e, b.i64([axis])], keepdims=1)
        if log:
            return b.node("Sub", [s, b.node("Log", [tot])])
        return b.node("Div", [e, tot])

    rule.__name__ = "log_softmax" if log else "softmax"
    return rule


register("softmax")(_softmax_rule(False))
register("log_softmax")(_softmax_rule(True))


@register("rms_norm")
def rms_norm(site: OnnxSite) -> str:
    """x / sqrt(mean(x^2) + eps) * w in the node order (Pow, ReduceMean, Add, Sqrt, Div, Mul) that
    ONNX Runtime's optimizer fuses into one SimplifiedLayerNormalization kernel; the file keeps the
    six standard nodes."""
    b, (x, w), dt = site.b, site.args, site.in_dt
    ms = b.node("ReduceMean", [b.node("Pow", [x, const_of(b, 2.0, dt)]), b.i64([-1])], keepdims=1)
    eps = const_of(b, site.attrs["eps"], dt)
    return b.node("Mul", [b.node("Div", [x, b.node("Sqrt", [b.node("Add", [ms, eps])])]), w])


@register("layer_norm")
def layer_norm(site: OnnxSite) -> str:
    return site.b.node("LayerNormalization", site.args[:3], axis=-1, epsilon=float(site.attrs["eps"]))


# ============================================================================ convolution, pooling, resize
#
# ONNX Runtime has float32 kernels for Conv / AveragePool / Resize but no float64 ones: float64
# nodes are built from exact standard ops (Pad, strided Slice per kernel offset, Einsum / Add,
# Gather), the reference's own window decomposition.


def _pad_spatial(b: Builder, x: str, pads: tuple, value: float, dt: DType) -> str:
    """``Pad`` of the spatial axes by ONNX pads (every begin, then every end)."""
    if not any(pads):
        return x
    n = len(pads) // 2
    full = [0, 0, *pads[:n], 0, 0, *pads[n:]]
    return b.node("Pad", [x, b.i64(full), const_of(b, value, dt)])


def _window_parts(b: Builder, x: str, kernel: tuple, strides: tuple, dilations: tuple, out: list) -> list:
    """``(offset, Slice)`` per kernel offset of a padded input: the window elements at that offset."""
    n = len(kernel)
    axes = b.i64(list(range(2, 2 + n)))
    parts = []
    for offset in np.ndindex(*kernel):
        starts = [o * d for o, d in zip(offset, dilations)]
        ends = [st + (m - 1) * s + 1 for st, s, m in zip(starts, strides, out)]
        parts.append((offset, b.node("Slice", [x, b.i64(starts), b.i64(ends), axes, b.i64(list(strides))])))
    return parts


def _sum_all(b: Builder, names: list[str]) -> str:
    return names[0] if len(names) == 1 else b.node("Sum", names)


@register("conv")
def conv(site: OnnxSite) -> str:
    """``Conv``; float64: a sum over kernel offsets of Einsum(window slice, weight slice)."""
    b, at, dt = site.b, site.attrs, site.in_dt
    if dt is not DType.float64:
        return b.node(
            "Conv",
            site.args,
            strides=list(at["strides"]),
            pads=list(at["pads"]),
            dilations=list(at["dilations"]),
            group=at["groups"],
        )
    w_shape = [int(d) for d in site.node.inputs[1].shape]
    out_shape = list(site.node.outputs[0].shape)
    g, o, cg, kernel = at["groups"], w_shape[0], w_shape[1], tuple(w_shape[2:])
    sp = "hw"[: len(kernel)] if len(kernel) == 2 else "l"
    out = [int(d) for d in out_shape[2:]]
    xpad = _pad_spatial(b, site.args[0], at["pads"], 0.0, dt)
    terms = []
    for offset, part in _window_parts(b, xpad, kernel, at["strides"], at["dilations"], out):
        part = b.node("Reshape", [part, b.i64([0, g, cg, *out])])
        wk = b.node(
            "Slice",
            [
                site.args[1],
                b.i64(list(offset)),
                b.i64([k + 1 for k in offset]),
                b.i64(list(range(2, 2 + len(kernel)))),
            ],
        )
        wk = b.node("Reshape", [wk, b.i64([g, o // g, cg])])
        terms.append(b.node("Einsum", [part, wk], equation=f"ngc{sp},goc->ngo{sp}"))
    res = b.node("Reshape", [_sum_all(b, terms), b.i64([0, o, *out])])
    if len(site.args) == 3:
        res = b.node("Add", [res, b.node("Reshape", [site.args[2], b.i64([o] + [1] * len(kernel))])])
    return res


@register("max_pool")
def max_pool(site: OnnxSite) -> str:
    """``MaxPool``; ORT starts from the lowest finite value, so windows without a value above
    -inf (a max pool of the mask ``x > -inf``) are set to -inf."""
    b, at, dt = site.b, site.attrs, site.in_dt
    kw = {"kernel_shape": list(at["kernel"]), "strides": list(at["strides"]), "pads": list(at["pads"])}
    x = site.args[0]
    out = b.node("MaxPool", [x], **kw)
    real = b.node("Cast", [b.node("Greater", [x, const_of(b, -math.inf, dt)])], to=CARRIED[dt])
    real = b.node("MaxPool", [real], **kw)
    return b.node("Where", [b.node("Greater", [real, const_of(b, 0, dt)]), out, const_of(b, -math.inf, dt)])


@register("avg_pool")
def avg_pool(site: OnnxSite) -> str:
    """``AveragePool``; float64: window sums over strided slices divided by the static counts."""
    b, at, dt = site.b, site.attrs, site.in_dt
    kernel, strides, pads = at["kernel"], at["strides"], at["pads"]
    if dt is not DType.float64:
        return b.node(
            "AveragePool",
            site.args,
            kernel_shape=list(kernel),
            strides=list(strides),
            pads=list(pads),
            count_include_pad=int(at["count_include_pad"]),
        )
    spatial = [int(d) for d in site.node.inputs[0].shape[2:]]
    out = [int(d) for d in site.node.outputs[0].shape[2:]]
    xpad = _pad_spatial(b, site.args[0], pads, 0.0, dt)
    parts = [p for _, p in _window_parts(b, xpad, kernel, strides, tuple(1 for _ in kernel), out)]
    counts = pool_counts(spatial, kernel, strides, pads, at["count_include_pad"])
    return b.node("Div", [_sum_all(b, parts), b.const(counts.astype(np.float64))])


@register("resize")
def resize(site: OnnxSite) -> str:
    """``Resize`` of the spatial axes (nearest: ``asymmetric`` + ``floor``; linear:
    ``half_pixel``); float64: Gathers along each axis with the static plan of ``resize_plan``."""
    b, at, dt = site.b, site.attrs, site.in_dt
    sizes, mode = list(at["sizes"]), at["mode"]
    if dt is not DType.float64:
        kw = (
            {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
            if mode == "nearest"
            else {"coordinate_transformation_mode": "half_pixel"}
        )
        axes = list(range(2, 2 + len(sizes)))
        return b.node("Resize", [site.args[0], "", "", b.i64(sizes)], mode=mode, axes=axes, **kw)
    x = site.args[0]
    rank = len(site.in_shape)
    for axis, n_out in enumerate(sizes, start=2):
        i0, i1, t = resize_plan(int(site.in_shape[axis]), n_out, mode)
        g0 = b.node("Gather", [x, b.i64(list(i0))], axis=axis)
        if mode == "nearest":
            x = g0
            continue
        g1 = b.node("Gather", [x, b.i64(list(i1))], axis=axis)
        shape = [1] * rank
        shape[axis] = n_out
        tt = b.const(t.reshape(shape).astype(np.float64))
        x = b.node(
            "Add",
            [
                b.node("Mul", [g0, b.const((1 - t).reshape(shape).astype(np.float64))]),
                b.node("Mul", [g1, tt]),
            ],
        )
    return x


# ============================================================================ control flow


@register("while_loop")
def while_loop(site: OnnxSite) -> list[str]:
    return site.lowering.while_loop(site.node, site.args)


@register("cond")
def cond(site: OnnxSite) -> list[str]:
    return site.lowering.cond(site.node, site.args)


use_rules(LOWERINGS, NO_ROUND)


# ============================================================================ block-quantized weights

#: MatMulNBits' accuracy level: 0 computes in float32 from the dequantised blocks (within float32
#: rounding of the reference). 4 (int8 activations per block, ONNX Runtime's VNNI path and
#: llama.cpp's scheme) is faster (SmolLM2's products 11.6 -> 9.3 ms a step,
#: benchmarks/kernel_floor.py) but moved SmolLM2's logits by up to 15 (of 33), and its greedy
#: output on a random 32-token prompt collapsed into one repeated token: not used.
NBITS_ACCURACY_LEVEL = 0


def _codes(site: OnnxSite) -> str:
    """The codes of ``packed`` (carried int64, non-negative) as float32 ``[rows, blocks, block]``:
    ``(word // 2**(i*bits)) mod 2**bits`` for each of the ``32/bits`` codes of a word."""
    b, packed = site.b, site.args[1 if site.op == "quantized_matmul" else 0]
    bits = site.attrs["bits"]
    per = 32 // bits
    shifts = b.const(np.asarray([2 ** (i * bits) for i in range(per)], dtype=np.int64))
    codes = b.node(
        "Mod", [b.node("Div", [b.node("Unsqueeze", [packed, b.i64([-1])]), shifts]), b.i64(2**bits)]
    )
    blocks = b.node("Reshape", [codes, b.i64([0, 0, -1])])
    return b.node("Cast", [blocks], to=TensorProto.FLOAT)


def _dequantize(site: OnnxSite, scales: str, offsets: str) -> str:
    """``scales * (codes - zero_point) + offsets`` -> ``[rows, blocks * block]`` with standard ops."""
    b = site.b
    q = b.node("Sub", [_codes(site), b.const(np.float32(site.attrs["zero_point"]))])
    last = b.i64([-1])
    w = b.node(
        "Add", [b.node("Mul", [b.node("Unsqueeze", [scales, last]), q]), b.node("Unsqueeze", [offsets, last])]
    )
    return b.node("Reshape", [w, b.i64([0, -1])])


@register("dequantize_blocks")
def dequantize_blocks(site: OnnxSite) -> str:
    return _dequantize(site, site.args[1], site.args[2])


def _nbits_initializers(site: OnnxSite) -> tuple | None:
    """``(blob, scales, zero_points, offsets or None, N, K, block)`` for ``MatMulNBits`` when the
    weight is constant and its blocks fit the kernel (block a power of two >= 16); else None."""
    low = site.lowering
    packed, scales, offsets = (low.constant_value(n) for n in site.args[1:])
    if packed is None or scales is None or offsets is None:
        return None
    bits, zp = site.attrs["bits"], site.attrs["zero_point"]
    rows, blocks, words = packed.shape
    block = words * 32 // bits
    if block < 16 or block & (block - 1):
        return None
    key = (site.args[1], site.args[2], site.args[3], bits, zp)
    root = site.b.root
    if key not in root.nbits:
        blob = np.ascontiguousarray(packed.astype(np.uint32)).view(np.uint8).reshape(rows, blocks, words * 4)
        if bits == 4:
            zero = np.full((rows, (blocks + 1) // 2), zp | (zp << 4), dtype=np.uint8)
        else:
            zero = np.full((rows, blocks), zp, dtype=np.uint8)
        names = []
        for arr, hint in (
            (blob, "nbits_blob"),
            (np.ascontiguousarray(scales.reshape(-1)), "nbits_scales"),
            (zero.reshape(-1), "nbits_zero"),
        ):
            name = root.fresh(hint)
            root.initializer(arr, name)
            names.append(name)
        off = site.b.const(np.ascontiguousarray(offsets.T)) if np.any(offsets) else None
        root.nbits[key] = (*names, off, rows, blocks * block, block)
    return root.nbits[key]


def _dense_weight(site: OnnxSite) -> str | None:
    """A constant 8-bit weight dequantised once, at lowering, to a float32 initializer (None when
    the weight is not constant). ONNX Runtime's 8-bit MatMulNBits is slow at accuracy level 0
    (measured 9 tok/s against 48 with the float32 head on SmolLM2's Q8_0 head) and inexact at level
    4; the dense head costs 4 bytes per weight instead of ~1.1, SmolLM2's tied head 113 MB."""
    low = site.lowering
    packed, scales, offsets = (low.constant_value(n) for n in site.args[1:])
    if packed is None or scales is None or offsets is None:
        return None
    key = ("dense", site.args[1], site.args[2], site.args[3], site.attrs["zero_point"])
    root = site.b.root
    if key not in root.nbits:
        from ...ir.ops.quant import dequantize_blocks as reference

        w = reference(packed.astype(np.uint32), scales, offsets, 8, site.attrs["zero_point"])
        name = root.fresh("dequantized")
        root.initializer(np.ascontiguousarray(w, dtype=np.float32), name)
        root.nbits[key] = (name,)
    return root.nbits[key][0]


def _gemm_t(site: OnnxSite, x: str, weight: str) -> str:
    """``x @ weight^T`` for a 2-D initializer ``weight [n, k]``: Gemm(transB=1) over x flattened
    to 2-D (as the matmul rule does for Linear weights)."""
    b = site.b
    shape = list(site.node.outputs[0].shape)
    if len(shape) == 2:
        return b.node("Gemm", [x, weight], transB=1)
    inner = int(site.lowering.constant_value(weight).shape[1])
    flat = b.node("Reshape", [x, b.i64([-1, inner])])
    return b.node(
        "Reshape", [b.node("Gemm", [flat, weight], transB=1), site.lowering.shape(shape)], allowzero=0
    )


@register("quantized_matmul")
def quantized_matmul(site: OnnxSite) -> str:
    """A constant float32 weight: ONNX Runtime's ``MatMulNBits`` (com.microsoft) on the codes as they
    are stored (the uint32 words' bytes are its blob layout) with an integer zero point, plus
    ``block_sums(x) @ offsets^T`` when the weight has offsets (GGUF Q4_1's block minima); otherwise
    the standard-op dequantisation and ``MatMul``."""
    b, x = site.b, site.args[0]
    if site.attrs["bits"] == 8 and site.in_dt is DType.float32:
        dense = _dense_weight(site)
        if dense is not None:
            return _gemm_t(site, x, dense)
    nb = _nbits_initializers(site) if site.in_dt is DType.float32 else None
    if nb is None:
        w = _dequantize(site, site.args[2], site.args[3])
        return b.node("MatMul", [x, b.node("Transpose", [w], perm=[1, 0])])
    blob, scales, zero, offsets, n, k, block = nb
    b.root.contrib = True
    y = b.node(
        "MatMulNBits",
        [x, blob, scales, zero],
        domain="com.microsoft",
        K=k,
        N=n,
        bits=site.attrs["bits"],
        block_size=block,
        accuracy_level=NBITS_ACCURACY_LEVEL,
    )
    if offsets is None:
        return y
    # the block sums of x, once per (sub)graph, input and block size: q / k / v (and gate / up)
    # read the same x
    key = (id(b), x, block)
    sums = b.root.block_sums.get(key)
    if sums is None:
        rank = len(site.node.inputs[0].shape)
        sums = b.root.block_sums[key] = b.node(
            "ReduceSum",
            [b.node("Reshape", [x, b.i64([0] * (rank - 1) + [k // block, block])]), b.i64([-1])],
            keepdims=0,
        )
    return b.node("Add", [y, b.node("MatMul", [sums, offsets])])
