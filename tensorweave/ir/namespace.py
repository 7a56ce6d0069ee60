"""The IR's Array-API namespace: ``xp`` for traced arrays.

``x.__array_namespace__()`` returns this module, so frontend code written as
``xp = array_namespace(x)`` records IR nodes when ``x`` is traced. Functions
not in the registry are compositions of registry ops (``zeros_like`` is
``full``, ``square`` is ``multiply``, ``tril`` compares two ``arange``s, ...).
"""

from __future__ import annotations

import builtins
import math
import sys
from typing import Any, Sequence

import numpy as np

from .trace import (  # divide, getitem, matmul, permute_dims, result_type, take: Array-API names re-exported
    TracedArray,
    apply,
    astype,
    binary_op,
    constant,
    current_builder,  # noqa: F401
    divide,  # noqa: F401
    getitem,  # noqa: F401
    matmul,  # noqa: F401
    permute_dims,  # noqa: F401
    promote,
    register_namespace,
    result_type,  # noqa: F401
    take,  # noqa: F401
)
from .types import DType, IRError, Shape, SymDim, as_dim, as_dtype, dim_div

__array_api_version__ = "2023.12"

bool = DType.bool  # noqa: A001 - Array-API name
int32 = DType.int32
int64 = DType.int64
uint32 = DType.uint32
float16 = DType.float16
bfloat16 = DType.bfloat16
float32 = DType.float32
float64 = DType.float64
e = math.e
pi = math.pi
inf = math.inf
nan = math.nan
newaxis = None

_builtin_bool = __builtins__["bool"] if isinstance(__builtins__, dict) else __builtins__.bool  # type: ignore


def _shape(shape: Any) -> tuple:
    if isinstance(shape, (int, SymDim, np.integer)):
        shape = (shape,)
    return tuple(as_dim(d) for d in shape)


def _t(x: Any) -> TracedArray:
    return x if isinstance(x, TracedArray) else asarray(x)


# ------------------------------------------------------------------ creation
def asarray(obj: Any, dtype: Any = None, device: Any = None, copy: Any = None) -> TracedArray:
    """A traced array from a traced array (cast if dtype given), a Python scalar/list or a numpy array."""
    if isinstance(obj, TracedArray):
        return obj if dtype is None else astype(obj, dtype)
    if isinstance(obj, (list, tuple)) and builtins.any(isinstance(o, TracedArray) for o in obj):
        return stack([asarray(o, dtype) for o in obj])
    return constant(obj, dtype)


def full(shape: Any, fill_value: Any, dtype: Any = None, device: Any = None) -> TracedArray:
    if isinstance(fill_value, TracedArray):
        return broadcast_to(astype(fill_value, dtype) if dtype else fill_value, shape)
    if dtype is None:
        dtype = (
            DType.bool
            if isinstance(fill_value, _builtin_bool)
            else (DType.int64 if isinstance(fill_value, int) else DType.float32)
        )
    return apply("full", shape=_shape(shape), fill_value=fill_value, dtype=as_dtype(dtype))


def zeros(shape: Any, dtype: Any = None, device: Any = None) -> TracedArray:
    return full(shape, 0, dtype or DType.float32)


def ones(shape: Any, dtype: Any = None, device: Any = None) -> TracedArray:
    return full(shape, 1, dtype or DType.float32)


def empty(shape: Any, dtype: Any = None, device: Any = None) -> TracedArray:
    return zeros(shape, dtype)


def full_like(x: TracedArray, fill_value: Any, dtype: Any = None, device: Any = None) -> TracedArray:
    return full(x.shape, fill_value, dtype or x.dtype)


def zeros_like(x: TracedArray, dtype: Any = None, device: Any = None) -> TracedArray:
    return full(x.shape, 0, dtype or x.dtype)


def ones_like(x: TracedArray, dtype: Any = None, device: Any = None) -> TracedArray:
    return full(x.shape, 1, dtype or x.dtype)


def empty_like(x: TracedArray, dtype: Any = None, device: Any = None) -> TracedArray:
    return zeros_like(x, dtype)


def arange(start: Any, stop: Any = None, step: int = 1, dtype: Any = None, device: Any = None) -> TracedArray:
    """Integer ranges (start/stop may be symbolic dims); float ranges are arange * step + start."""
    if stop is None:
        start, stop = 0, start
    if builtins.all(isinstance(v, (int, SymDim, np.integer)) for v in (start, stop, step)):
        return apply(
            "arange",
            start=as_dim(start) if not isinstance(start, int) or start >= 0 else start,
            stop=stop if isinstance(stop, SymDim) else int(stop),
            step=int(step),
            dtype=as_dtype(dtype or DType.int64),
        )
    n = builtins.max(0, math.ceil((stop - start) / step))
    dt = as_dtype(dtype or DType.float32)
    return astype(apply("arange", start=0, stop=n, step=1, dtype=DType.int64), dt) * step + start


def eye(n_rows: Any, n_cols: Any = None, k: int = 0, dtype: Any = None, device: Any = None) -> TracedArray:
    n_cols = n_rows if n_cols is None else n_cols
    r = expand_dims(arange(n_rows), 1)
    c = expand_dims(arange(n_cols), 0)
    return astype((c - r) == k, dtype or DType.float32)


def tril(x: TracedArray, k: int = 0) -> TracedArray:
    r = expand_dims(arange(x.shape[-2]), 1)
    c = expand_dims(arange(x.shape[-1]), 0)
    return where((c - r) <= k, x, zeros_like(x))


def triu(x: TracedArray, k: int = 0) -> TracedArray:
    r = expand_dims(arange(x.shape[-2]), 1)
    c = expand_dims(arange(x.shape[-1]), 0)
    return where((c - r) >= k, x, zeros_like(x))


# ------------------------------------------------------------------ elementwise
def _unary(op: str):
    def f(x: Any) -> TracedArray:
        return apply(op, _t(x))

    f.__name__ = op
    f.__doc__ = f"Elementwise ``{op}`` (see spec/ir.md)."
    return f


for _op in (
    "abs",
    "negative",
    "sign",
    "exp",
    "log",
    "log1p",
    "sqrt",
    "rsqrt",
    "tanh",
    "erf",
    "sin",
    "cos",
    "floor",
    "ceil",
    "sigmoid",
    "silu",
    "isnan",
    "isinf",
    "isfinite",
    "logical_not",
    "bitwise_invert",
):
    globals()[_op] = _unary(_op)


def _binary(op: str):
    def f(x: Any, y: Any) -> TracedArray:
        return binary_op(op, x, y)

    f.__name__ = op
    f.__doc__ = f"Elementwise ``{op}`` with broadcasting and promotion (see spec/ir.md)."
    return f


for _op in (
    "add",
    "subtract",
    "multiply",
    "floor_divide",
    "remainder",
    "pow",
    "maximum",
    "minimum",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_left_shift",
    "bitwise_right_shift",
):
    globals()[_op] = _binary(_op)


def positive(x: Any) -> TracedArray:
    return _t(x)


def square(x: Any) -> TracedArray:
    x = _t(x)
    return x * x


def expm1(x: Any) -> TracedArray:
    return apply("exp", _t(x)) - 1


def trunc(x: Any) -> TracedArray:
    x = _t(x)
    return where(x < 0, apply("ceil", x), apply("floor", x))


def gelu(x: Any, approximate: str = "none") -> TracedArray:
    return apply("gelu", _t(x), approximate=approximate)


def clip(x: Any, min: Any = None, max: Any = None) -> TracedArray:  # noqa: A002
    x = _t(x)
    if isinstance(min, TracedArray) or isinstance(max, TracedArray):
        y = x
        if min is not None:
            y = maximum(y, min)
        if max is not None:
            y = minimum(y, max)
        return y
    return apply("clip", x, min=min, max=max)


def where(condition: Any, x1: Any, x2: Any) -> TracedArray:
    c = astype(_t(condition), DType.bool)
    a, b = promote(x1, x2)
    return apply("where", c, a, b)


# ------------------------------------------------------------------ reductions
def _red(op: str):
    def f(x: Any, /, *, axis: Any = None, keepdims: _builtin_bool = False, dtype: Any = None) -> TracedArray:
        x = _t(x)
        if dtype is not None:
            x = astype(x, dtype)
        if op in ("sum", "prod") and x.dtype is DType.bool:
            x = astype(x, DType.int64)
        if op == "mean" and not x.dtype.is_floating:
            x = astype(x, DType.float32)
        if op in ("any", "all"):
            x = astype(x, DType.bool)
        ax = (
            None
            if axis is None
            else tuple(a % builtins.max(x.ndim, 1) for a in ((axis,) if isinstance(axis, int) else axis))
        )
        return apply(op, x, axis=ax, keepdims=keepdims)

    f.__name__ = op
    return f


for _op in ("sum", "prod", "mean", "max", "min", "any", "all", "logsumexp"):
    globals()[_op] = _red(_op)


def var(
    x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: _builtin_bool = False
) -> TracedArray:
    x = _t(x)
    mu = mean(x, axis=axis, keepdims=True)  # noqa: F821
    n = (
        x.size
        if axis is None
        else math.prod(x.shape[a] for a in ((axis,) if isinstance(axis, int) else axis))
    )
    s = sum((x - mu) * (x - mu), axis=axis, keepdims=keepdims)  # noqa: F821
    return s / (n - correction)


def std(
    x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: _builtin_bool = False
) -> TracedArray:
    return apply("sqrt", var(x, axis=axis, correction=correction, keepdims=keepdims))


def argmax(x: Any, /, *, axis: Any = None, keepdims: _builtin_bool = False) -> TracedArray:
    x = _t(x)
    if axis is None:
        return apply("argmax", reshape(x, (-1,)), axis=0, keepdims=False)
    return apply("argmax", x, axis=axis % x.ndim, keepdims=keepdims)


def argmin(x: Any, /, *, axis: Any = None, keepdims: _builtin_bool = False) -> TracedArray:
    x = _t(x)
    if axis is None:
        return apply("argmin", reshape(x, (-1,)), axis=0, keepdims=False)
    return apply("argmin", x, axis=axis % x.ndim, keepdims=keepdims)


def cumulative_sum(
    x: Any, /, *, axis: Any = None, dtype: Any = None, include_initial: _builtin_bool = False
) -> TracedArray:
    x = _t(x)
    if dtype is not None:
        x = astype(x, dtype)
    if x.dtype is DType.bool:
        x = astype(x, DType.int64)
    if axis is None:
        if x.ndim != 1:
            raise IRError("cumulative_sum needs axis for arrays of rank != 1")
        axis = 0
    y = apply("cumulative_sum", x, axis=axis % x.ndim)
    if include_initial:
        shp = list(x.shape)
        shp[axis % x.ndim] = 1
        y = concat([zeros(shp, x.dtype), y], axis=axis)
    return y


# ------------------------------------------------------------------ linear algebra
def einsum(subscripts: str, *operands: Any) -> TracedArray:
    ops = promote(*operands)
    return apply("einsum", *ops, subscripts=subscripts)


def matrix_transpose(x: TracedArray) -> TracedArray:
    return x.mT


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> TracedArray:
    return sum(_t(x1) * _t(x2), axis=axis)  # noqa: F821


# ------------------------------------------------------------------ manipulation
def reshape(x: Any, /, shape: Any, *, copy: Any = None) -> TracedArray:
    x = _t(x)
    shape = list(shape) if isinstance(shape, (tuple, list, Shape)) else [shape]
    if builtins.sum(1 for d in shape if isinstance(d, int) and d == -1) > 1:
        raise IRError("reshape: only one dimension can be -1")
    if builtins.any(isinstance(d, int) and d == -1 for d in shape):
        known = 1
        for d in shape:
            if not (isinstance(d, int) and d == -1):
                known = known * as_dim(d)
        i = next(i for i, d in enumerate(shape) if isinstance(d, int) and d == -1)
        try:
            shape[i] = dim_div(x.shape.size(), known)
        except IRError:
            raise IRError(f"reshape: cannot reshape {x.shape} to {shape}") from None
    shape = _shape(shape)
    if tuple(shape) == tuple(x.shape):
        return x
    return apply("reshape", x, shape=shape)


def expand_dims(x: Any, /, axis: int = 0) -> TracedArray:
    return apply("expand_dims", _t(x), axis=axis)


def squeeze(x: Any, /, axis: Any) -> TracedArray:
    x = _t(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return apply("squeeze", x, axis=tuple(a % x.ndim for a in axes))


def broadcast_to(x: Any, /, shape: Any) -> TracedArray:
    x = _t(x)
    shape = _shape(shape)
    if tuple(shape) == tuple(x.shape):
        return x
    return apply("broadcast_to", x, shape=shape)


def broadcast_arrays(*arrays: Any) -> list[TracedArray]:
    from .types import broadcast_shapes

    arrs = [_t(a) for a in arrays]
    shape = broadcast_shapes(*[a.shape for a in arrs])
    return [broadcast_to(a, shape) for a in arrs]


def concat(arrays: Sequence[Any], /, *, axis: Any = 0) -> TracedArray:
    arrs = promote(*arrays)
    if axis is None:
        arrs = [reshape(a, (-1,)) for a in arrs]
        axis = 0
    return apply("concat", *arrs, axis=axis % arrs[0].ndim)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> TracedArray:
    arrs = promote(*arrays)
    return apply("stack", *arrs, axis=axis % (arrs[0].ndim + 1))


def flip(x: Any, /, *, axis: Any = None) -> TracedArray:
    x = _t(x)
    ax = None if axis is None else tuple(a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis))
    return apply("flip", x, axis=ax)


def repeat(x: Any, repeats: int, /, *, axis: Any = None) -> TracedArray:
    if isinstance(repeats, TracedArray):
        raise IRError("repeat: repeats must be a Python int (array repeats give data-dependent shapes)")
    x = _t(x)
    return apply("repeat", x, repeats=int(repeats), axis=None if axis is None else axis % x.ndim)


def tile(x: Any, repetitions: Sequence[int], /) -> TracedArray:
    return apply("tile", _t(x), reps=tuple(int(r) for r in repetitions))


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> TracedArray:
    x = _t(x)
    return apply("take_along_axis", x, _t(indices), axis=axis % x.ndim)


def put_along_axis(x: Any, indices: Any, values: Any, /, *, axis: int = -1) -> TracedArray:
    x = _t(x)
    idx = _t(indices)
    v = astype(_t(values), x.dtype)
    if tuple(v.shape) != tuple(idx.shape):
        v = broadcast_to(v, idx.shape)
    return apply("put_along_axis", x, idx, v, axis=axis % x.ndim)


def sort(
    x: Any, /, *, axis: int = -1, descending: _builtin_bool = False, stable: _builtin_bool = True
) -> TracedArray:
    x = _t(x)
    return apply("sort", x, axis=axis % x.ndim, descending=descending)


def argsort(
    x: Any, /, *, axis: int = -1, descending: _builtin_bool = False, stable: _builtin_bool = True
) -> TracedArray:
    x = _t(x)
    return apply("argsort", x, axis=axis % x.ndim, descending=descending)


def top_k(x: Any, k: int, /) -> tuple[TracedArray, TracedArray]:
    from .trace import emit

    v, i = emit("top_k", [_t(x)], {"k": int(k)})
    return v, i


def dynamic_slice(x: Any, start_indices: Sequence[Any], sizes: Sequence[Any]) -> TracedArray:
    x = _t(x)
    starts = [
        astype(_t(s), DType.int64)
        if not isinstance(s, TracedArray) or s.dtype not in (DType.int32, DType.int64)
        else s
        for s in start_indices
    ]
    return apply("dynamic_slice", x, *starts, sizes=_shape(sizes))


def dynamic_update_slice(x: Any, update: Any, start_indices: Sequence[Any]) -> TracedArray:
    x = _t(x)
    u = astype(_t(update), x.dtype)
    starts = [
        astype(_t(s), DType.int64)
        if not isinstance(s, TracedArray) or s.dtype not in (DType.int32, DType.int64)
        else s
        for s in start_indices
    ]
    return apply("dynamic_update_slice", x, u, *starts)


# ------------------------------------------------------------------ fused nn
def softmax(x: Any, /, *, axis: int = -1) -> TracedArray:
    x = _t(x)
    return apply("softmax", x, axis=axis % x.ndim)


def log_softmax(x: Any, /, *, axis: int = -1) -> TracedArray:
    x = _t(x)
    return apply("log_softmax", x, axis=axis % x.ndim)


def rms_norm(x: Any, weight: Any, eps: float = 1e-6) -> TracedArray:
    x = _t(x)
    return apply("rms_norm", x, astype(_t(weight), x.dtype), eps=eps)


def layer_norm(x: Any, weight: Any, bias: Any, eps: float = 1e-5) -> TracedArray:
    x = _t(x)
    return apply("layer_norm", x, astype(_t(weight), x.dtype), astype(_t(bias), x.dtype), eps=eps)


# ------------------------------------------------------------------ block-quantized weights
def dequantize_blocks(
    packed: Any, scales: Any, offsets: Any, *, bits: int, zero_point: int = 0
) -> TracedArray:
    """``scales * (codes - zero_point) + offsets`` per block -> ``[rows, blocks * block_size]``."""
    return apply("dequantize_blocks", _t(packed), _t(scales), _t(offsets), bits=bits, zero_point=zero_point)


def quantized_matmul(
    x: Any, packed: Any, scales: Any, offsets: Any, *, bits: int, zero_point: int = 0
) -> TracedArray:
    """``x @ dequantize_blocks(packed, scales, offsets)^T`` (one op, so a backend can use its
    block-quantized matmul kernel)."""
    return apply(
        "quantized_matmul", _t(x), _t(packed), _t(scales), _t(offsets), bits=bits, zero_point=zero_point
    )


def _per_axis(value: Any, n: int, default: int) -> tuple:
    """``value`` for each of ``n`` axes: None -> ``default``, an int -> repeated, else a tuple."""
    if value is None:
        return (default,) * n
    return (int(value),) * n if isinstance(value, int) else tuple(value)


def _window_attrs(n: int, strides: Any, pads: Any, dilations: Any = None) -> dict:
    """Window attributes with their defaults (stride 1, no padding, dilation 1) for ``n`` spatial
    axes; an int pad pads every begin and end."""
    return {
        "strides": _per_axis(strides, n, 1),
        "pads": _per_axis(pads, 2 * n, 0),
        "dilations": _per_axis(dilations, n, 1),
    }


def conv(
    x: Any,
    weight: Any,
    bias: Any = None,
    /,
    *,
    strides: Any = None,
    pads: Any = None,
    dilations: Any = None,
    groups: int = 1,
) -> TracedArray:
    """ONNX-style convolution of x [N, C, *S] with weight [O, C/groups, *K] (op ``conv``)."""
    x = _t(x)
    ins = [x, astype(_t(weight), x.dtype)] + ([] if bias is None else [astype(_t(bias), x.dtype)])
    return apply("conv", *ins, **_window_attrs(x.ndim - 2, strides, pads, dilations), groups=groups)


def max_pool(x: Any, /, kernel: Sequence[int], *, strides: Any = None, pads: Any = None) -> TracedArray:
    """Max pooling over windows of ``kernel`` (op ``max_pool``); strides default to 1."""
    x = _t(x)
    at = _window_attrs(x.ndim - 2, strides, pads)
    return apply("max_pool", x, kernel=tuple(kernel), strides=at["strides"], pads=at["pads"])


def avg_pool(
    x: Any,
    /,
    kernel: Sequence[int],
    *,
    strides: Any = None,
    pads: Any = None,
    count_include_pad: bool = False,
) -> TracedArray:
    """Average pooling over windows of ``kernel`` (op ``avg_pool``); strides default to 1."""
    x = _t(x)
    at = _window_attrs(x.ndim - 2, strides, pads)
    return apply(
        "avg_pool",
        x,
        kernel=tuple(kernel),
        strides=at["strides"],
        pads=at["pads"],
        count_include_pad=count_include_pad,
    )


def resize(x: Any, /, sizes: Sequence[int], *, mode: str = "nearest") -> TracedArray:
    """Resize the spatial axes of x [N, C, *S] to ``sizes`` (op ``resize``: nearest or linear)."""
    return apply("resize", _t(x), sizes=tuple(sizes), mode=mode)


# ------------------------------------------------------------------ dtype info
class finfo:
    """Array-API finfo for float dtypes."""

    def __init__(self, dtype: Any):
        dt = as_dtype(getattr(dtype, "dtype", dtype))
        if not dt.is_floating:
            raise IRError(f"finfo needs a float dtype, got {dt}")
        info = (
            np.finfo(dt.to_numpy())
            if dt is not DType.bfloat16
            else __import__("ml_dtypes").finfo(dt.to_numpy())
        )
        self.bits = dt.itemsize * 8
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.smallest_normal = float(info.tiny)
        self.dtype = dt


class iinfo:
    """Array-API iinfo for integer dtypes."""

    def __init__(self, dtype: Any):
        dt = as_dtype(getattr(dtype, "dtype", dtype))
        info = np.iinfo(dt.to_numpy())
        self.bits = dt.itemsize * 8
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = dt


def isdtype(dtype: DType, kind: Any) -> _builtin_bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if isinstance(k, DType) and dtype == k:
            return True
        if k == "bool" and dtype.is_bool:
            return True
        if k == "real floating" and dtype.is_floating:
            return True
        if k in ("integral",) and dtype.is_integer:
            return True
        if k == "signed integer" and dtype in (DType.int32, DType.int64):
            return True
        if k == "unsigned integer" and dtype is DType.uint32:
            return True
        if k == "numeric" and (dtype.is_integer or dtype.is_floating):
            return True
    return False


from .control import cond, fori_loop, while_loop  # noqa: E402,F401  (control flow in the namespace)

register_namespace(sys.modules[__name__])
