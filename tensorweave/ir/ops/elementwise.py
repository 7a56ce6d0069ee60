"""Elementwise ops: unary math, binary arithmetic/comparison/logic/bitwise, where, clip, astype.

Binary ops take two inputs of one dtype (the tracer promotes and casts first)
and broadcast their shapes with the Array-API rules.  Float math on float16 and
bfloat16 is computed as numpy does (in float32, rounded to the input dtype).
Integer arithmetic wraps modulo 2**bits (two's complement for signed types).
"""

from __future__ import annotations

import math

import numpy as np

from ..types import DType, IRError, TensorSpec, broadcast_shapes
from .registry import AttrSpec, register, require, same_dtype

FLOAT = "float"
INT = "int"
NUMERIC = "numeric"
BOOL = "bool"
INT_OR_BOOL = "int_or_bool"
ANY = "any"

KIND_DTYPES = {
    FLOAT: (DType.float16, DType.bfloat16, DType.float32, DType.float64),
    INT: (DType.int32, DType.int64, DType.uint32),
    NUMERIC: (
        DType.int32,
        DType.int64,
        DType.uint32,
        DType.float16,
        DType.bfloat16,
        DType.float32,
        DType.float64,
    ),
    BOOL: (DType.bool,),
    INT_OR_BOOL: (DType.bool, DType.int32, DType.int64, DType.uint32),
    ANY: tuple(DType),
}


def check_kind(op: str, dt: DType, kind: str) -> None:
    if dt not in KIND_DTYPES[kind]:
        raise IRError(
            f"op {op}: dtype {dt} is not allowed; it takes {kind} dtypes "
            f"({', '.join(str(d) for d in KIND_DTYPES[kind])})"
        )


def _ew(fn):
    """Run a numpy ufunc-ish function, silencing float warnings (nan/inf are values here)."""

    def run(*xs, **kw):
        with np.errstate(all="ignore"):
            return fn(*xs, **kw)

    run.__doc__ = fn.__doc__
    run.__name__ = fn.__name__
    return run


# ------------------------------------------------------------------ unary


def unary(name: str, kind: str, out: DType | None = None):
    def infer(ins, attrs):
        check_kind(name, ins[0].dtype, kind)
        return [TensorSpec(ins[0].shape, out or ins[0].dtype)]

    def deco(fn):
        return register(name, inputs=1, infer=infer, category=f"unary:{kind}")(_ew(fn))

    return deco


def _f(x, fn):
    """Compute a float function in at least float32 and round back to x's dtype."""
    if x.dtype in (np.float16,) or x.dtype.name == "bfloat16":
        return fn(x.astype(np.float32)).astype(x.dtype)
    return fn(x)


@unary("abs", NUMERIC)
def abs_(x):
    """|x|; for signed ints the most negative value wraps to itself."""
    return np.abs(x)


@unary("negative", NUMERIC)
def negative(x):
    """-x; wraps for ints (uint32: 2**32 - x)."""
    return np.negative(x)


@unary("sign", NUMERIC)
def sign(x):
    """-1, 0 or 1 (same dtype); sign(nan) = nan, sign(-0.0) = 0."""
    return np.sign(x)


@unary("exp", FLOAT)
def exp(x):
    """e**x, the natural exponential."""
    return _f(x, np.exp)


@unary("log", FLOAT)
def log(x):
    """Natural log; log(0) = -inf, log(x<0) = nan."""
    return _f(x, np.log)


@unary("log1p", FLOAT)
def log1p(x):
    """log(1 + x), accurate for small x."""
    return _f(x, np.log1p)


@unary("sqrt", FLOAT)
def sqrt(x):
    """Square root; sqrt(x<0) = nan."""
    return _f(x, np.sqrt)


@unary("rsqrt", FLOAT)
def rsqrt(x):
    """1 / sqrt(x); rsqrt(0) = inf."""
    return _f(x, lambda v: np.asarray(1.0, v.dtype) / np.sqrt(v))


@unary("tanh", FLOAT)
def tanh(x):
    """Hyperbolic tangent."""
    return _f(x, np.tanh)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def _erf64(v):
    return _erf_scalar(v.astype(np.float64)).astype(np.float64)


@unary("erf", FLOAT)
def erf(x):
    """Gauss error function 2/sqrt(pi) * integral_0^x exp(-t**2) dt (reference: math.erf in float64)."""
    return _erf64(x).astype(x.dtype)


@unary("sin", FLOAT)
def sin(x):
    """Sine (radians)."""
    return _f(x, np.sin)


@unary("cos", FLOAT)
def cos(x):
    """Cosine (radians)."""
    return _f(x, np.cos)


@unary("floor", FLOAT)
def floor(x):
    """Largest integer-valued float <= x."""
    return np.floor(x)


@unary("ceil", FLOAT)
def ceil(x):
    """Smallest integer-valued float >= x."""
    return np.ceil(x)


@unary("sigmoid", FLOAT)
def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return _f(
        x,
        lambda v: np.where(
            v >= 0, 1 / (1 + np.exp(-np.abs(v))), np.exp(-np.abs(v)) / (1 + np.exp(-np.abs(v)))
        ).astype(v.dtype),
    )


@unary("silu", FLOAT)
def silu(x):
    """x * sigmoid(x) (also called swish)."""
    return _f(x, lambda v: (v * sigmoid(v)).astype(v.dtype))


@unary("isnan", NUMERIC, DType.bool)
def isnan(x):
    """True where x is nan (always False for ints)."""
    return np.isnan(x) if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else np.zeros(x.shape, bool)


@unary("isinf", NUMERIC, DType.bool)
def isinf(x):
    """True where x is +inf or -inf (always False for ints)."""
    return np.isinf(x) if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else np.zeros(x.shape, bool)


@unary("isfinite", NUMERIC, DType.bool)
def isfinite(x):
    """True where x is neither nan nor inf (always True for ints)."""
    return np.isfinite(x) if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else np.ones(x.shape, bool)


@unary("logical_not", BOOL)
def logical_not(x):
    """Boolean not."""
    return np.logical_not(x)


@unary("bitwise_invert", INT_OR_BOOL)
def bitwise_invert(x):
    """Bitwise not (~x); for bool, logical not."""
    return np.invert(x)


# ------------------------------------------------------------------ gelu (attr)


def _infer_gelu(ins, attrs):
    check_kind("gelu", ins[0].dtype, FLOAT)
    if attrs["approximate"] not in ("none", "tanh"):
        raise IRError(f"op gelu: approximate must be 'none' or 'tanh', got {attrs['approximate']!r}")
    return [ins[0]]


@register(
    "gelu",
    inputs=1,
    attrs={"approximate": AttrSpec("str", "none")},
    infer=_infer_gelu,
    category="unary:float",
)
def gelu(x, approximate="none"):
    """GELU. approximate='none': 0.5*x*(1 + erf(x/sqrt(2)));
    approximate='tanh': 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))."""
    with np.errstate(all="ignore"):
        v = x.astype(np.float64)
        if approximate == "tanh":
            y = 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
        else:
            y = 0.5 * v * (1 + _erf64(v / math.sqrt(2)))
        return y.astype(x.dtype)


# ------------------------------------------------------------------ binary


def binary(name: str, kind: str, out: DType | None = None):
    def infer(ins, attrs):
        dt = same_dtype(name, ins)
        check_kind(name, dt, kind)
        return [TensorSpec(broadcast_shapes(ins[0].shape, ins[1].shape), out or dt)]

    def deco(fn):
        return register(name, inputs=2, infer=infer, category=f"binary:{kind}")(_ew(fn))

    return deco


@binary("add", NUMERIC)
def add(x, y):
    """x + y (ints wrap)."""
    return np.add(x, y)


@binary("subtract", NUMERIC)
def subtract(x, y):
    """x - y (ints wrap)."""
    return np.subtract(x, y)


@binary("multiply", NUMERIC)
def multiply(x, y):
    """x * y (ints wrap modulo 2**bits)."""
    return np.multiply(x, y)


@binary("divide", FLOAT)
def divide(x, y):
    """x / y (IEEE: x/0 = +-inf, 0/0 = nan)."""
    return np.divide(x, y)


@binary("floor_divide", NUMERIC)
def floor_divide(x, y):
    """floor(x / y); for ints rounds toward -inf. Integer division by zero is unspecified."""
    if x.dtype.kind in "iu":
        safe = np.where(y == 0, 1, y).astype(y.dtype)
        return np.floor_divide(x, safe)
    return np.floor_divide(x, y)


@binary("remainder", NUMERIC)
def remainder(x, y):
    """x - floor_divide(x, y) * y: the result has the sign of y (Python %). Integer y == 0 is unspecified."""
    if x.dtype.kind in "iu":
        safe = np.where(y == 0, 1, y).astype(y.dtype)
        return np.remainder(x, safe)
    return np.remainder(x, y)


@binary("pow", NUMERIC)
def pow_(x, y):
    """x ** y. For ints, negative exponents are unspecified; pow(x, 0) = 1 (also for nan)."""
    if x.dtype.kind in "iu":
        return np.power(x, np.maximum(y, 0).astype(y.dtype))
    return _f2(x, y, np.power)


def _f2(x, y, fn):
    if x.dtype == np.float16 or x.dtype.name == "bfloat16":
        return fn(x.astype(np.float32), y.astype(np.float32)).astype(x.dtype)
    return fn(x, y)


@binary("maximum", NUMERIC)
def maximum(x, y):
    """Elementwise max; nan if either is nan."""
    return np.maximum(x, y)


@binary("minimum", NUMERIC)
def minimum(x, y):
    """Elementwise min; nan if either is nan."""
    return np.minimum(x, y)


@binary("equal", ANY, DType.bool)
def equal(x, y):
    """x == y (nan != nan)."""
    return np.equal(x, y)


@binary("not_equal", ANY, DType.bool)
def not_equal(x, y):
    """x != y; True where either operand is nan."""
    return np.not_equal(x, y)


@binary("less", NUMERIC, DType.bool)
def less(x, y):
    """x < y (False with nan)."""
    return np.less(x, y)


@binary("less_equal", NUMERIC, DType.bool)
def less_equal(x, y):
    """x <= y; False where either operand is nan."""
    return np.less_equal(x, y)


@binary("greater", NUMERIC, DType.bool)
def greater(x, y):
    """x > y; False where either operand is nan."""
    return np.greater(x, y)


@binary("greater_equal", NUMERIC, DType.bool)
def greater_equal(x, y):
    """x >= y; False where either operand is nan."""
    return np.greater_equal(x, y)


@binary("logical_and", BOOL)
def logical_and(x, y):
    """Boolean and."""
    return np.logical_and(x, y)


@binary("logical_or", BOOL)
def logical_or(x, y):
    """Boolean or."""
    return np.logical_or(x, y)


@binary("logical_xor", BOOL)
def logical_xor(x, y):
    """Boolean xor."""
    return np.logical_xor(x, y)


@binary("bitwise_and", INT_OR_BOOL)
def bitwise_and(x, y):
    """Bitwise and x & y (logical and for bool)."""
    return np.bitwise_and(x, y)


@binary("bitwise_or", INT_OR_BOOL)
def bitwise_or(x, y):
    """Bitwise or x | y (logical or for bool)."""
    return np.bitwise_or(x, y)


@binary("bitwise_xor", INT_OR_BOOL)
def bitwise_xor(x, y):
    """Bitwise xor x ^ y (logical xor for bool)."""
    return np.bitwise_xor(x, y)


@binary("bitwise_left_shift", INT)
def bitwise_left_shift(x, y):
    """x << y, wrapping. Shift amounts outside [0, bits) are unspecified."""
    bits = x.dtype.itemsize * 8
    return np.left_shift(x, np.clip(y, 0, bits - 1).astype(y.dtype))


@binary("bitwise_right_shift", INT)
def bitwise_right_shift(x, y):
    """x >> y: logical for uint32, arithmetic (sign-filling) for signed ints.
    Shift amounts outside [0, bits) are unspecified."""
    bits = x.dtype.itemsize * 8
    return np.right_shift(x, np.clip(y, 0, bits - 1).astype(y.dtype))


# ------------------------------------------------------------------ where / clip / astype


def _infer_where(ins, attrs):
    require(ins[0].dtype is DType.bool, f"op where: condition must be bool, got {ins[0].dtype}")
    dt = same_dtype("where", ins[1:])
    return [TensorSpec(broadcast_shapes(ins[0].shape, ins[1].shape, ins[2].shape), dt)]


@register("where", inputs=3, infer=_infer_where, category="where")
def where(c, x, y):
    """Select x where c is True, else y; the three shapes broadcast."""
    return np.where(c, x, y)


def _infer_clip(ins, attrs):
    check_kind("clip", ins[0].dtype, NUMERIC)
    return [ins[0]]


@register(
    "clip",
    inputs=1,
    attrs={"min": AttrSpec("opt_scalar", None), "max": AttrSpec("opt_scalar", None)},
    infer=_infer_clip,
    category="clip",
)
def clip(x, min=None, max=None):
    """minimum(maximum(x, min), max); a None bound is absent; nan stays nan."""
    with np.errstate(all="ignore"):
        y = x
        if min is not None:
            y = np.maximum(y, np.asarray(min).astype(x.dtype))
        if max is not None:
            y = np.minimum(y, np.asarray(max).astype(x.dtype))
        return y.astype(x.dtype)


def _infer_astype(ins, attrs):
    return [TensorSpec(ins[0].shape, attrs["dtype"])]


@register("astype", inputs=1, attrs={"dtype": AttrSpec("dtype")}, infer=_infer_astype, category="astype")
def astype(x, dtype):
    """Convert to ``dtype``. float -> int truncates toward zero (nan, inf and out-of-range values are
    unspecified); int -> narrower int wraps modulo 2**bits; anything -> bool is ``x != 0``;
    bool -> number is 0/1; float -> narrower float rounds to nearest even."""
    target = dtype.to_numpy()
    with np.errstate(all="ignore"):
        if target == np.bool_:
            return x != 0
        if x.dtype.kind in "iub" and target.kind in "iu":
            return x.astype(np.int64).astype(target) if x.dtype.kind != "u" else x.astype(target)
        if (x.dtype.kind == "f" or x.dtype.name == "bfloat16") and target.kind in "iu":
            t = np.trunc(x.astype(np.float64))
            t = np.where(np.isfinite(t), t, 0)
            if target.kind == "u":
                return np.mod(t, 2.0**32).astype(np.uint64).astype(target)
            return np.clip(t, np.iinfo(target).min, np.iinfo(target).max).astype(target)
        return x.astype(target)
