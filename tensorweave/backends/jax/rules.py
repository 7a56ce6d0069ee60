"""The jax rule table: ``op -> rule(site)`` (a :class:`~tensorweave.backends.base.Rules` table).

Most ops are a ``jax.numpy`` / ``jax.lax`` function of ``(*inputs, **attrs)`` registered with
``register_call``; the helpers below keep the numpy reference's semantics where a plain jnp call
would not (spec/backends-jax.md, "Op notes"). ``while_loop`` / ``cond`` take the site: it is a
:class:`~tensorweave.backends.jax.program.JaxSite`, whose ``subgraph(key)`` is the closed subgraph
as a Python function over jax arrays (lowered by ``run_graph``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ...ir.ops.nn import pool_counts, resize_plan
from ...ir.types import DType
from ..base import Rules
from .runtime import LOW, NAME, jdt


def _low(fn: Callable) -> Callable:
    """Compute in float32 for float16/bfloat16 inputs and round back (the reference's rule)."""

    def run(*xs: Any, **kw: Any) -> Any:
        dt = xs[0].dtype
        if dt in LOW:
            return fn(*[x.astype(jnp.float32) if hasattr(x, "astype") else x for x in xs], **kw).astype(dt)
        return fn(*xs, **kw)

    return run


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating)


def _sort_keys(x: Any, axis: int, descending: bool) -> list:
    """Lexicographic keys for a stable sort: nan sorts as the largest value."""
    if _is_float(x):
        v = x.astype(jnp.float32) if x.dtype in LOW else x
        nan = jnp.isnan(v)
        v = jnp.where(nan, jnp.zeros_like(v), v)
        if descending:
            return [(~nan).astype(jnp.int8), -v]
        return [nan.astype(jnp.int8), v]
    if x.dtype == jnp.bool_:
        v = x.astype(jnp.int8)
        return [-v if descending else v]
    return [jnp.bitwise_not(x) if descending else x]


def _argsort(x: Any, axis: int, descending: bool) -> Any:
    axis = axis % x.ndim
    keys = _sort_keys(x, axis, descending)
    idx = lax.broadcasted_iota(jnp.int64, x.shape, axis)
    out = lax.sort(tuple(keys) + (idx,), dimension=axis, is_stable=True, num_keys=len(keys))
    return out[-1]


def _argext(x: Any, axis: int, keepdims: bool, largest: bool) -> Any:
    if _is_float(x):
        nan = jnp.isnan(x)
        filled = jnp.where(nan, jnp.asarray(-jnp.inf if largest else jnp.inf, x.dtype), x)
        best = jnp.argmax(filled, axis=axis) if largest else jnp.argmin(filled, axis=axis)
        first_nan = jnp.argmax(nan, axis=axis)
        out = jnp.where(jnp.any(nan, axis=axis), first_nan, best)
    else:
        out = jnp.argmax(x, axis=axis) if largest else jnp.argmin(x, axis=axis)
    out = out.astype(jnp.int64)
    return jnp.expand_dims(out, axis) if keepdims else out


def _f64_to_f16(x: Any) -> Any:
    """float64 -> float16 rounded once to nearest even (numpy's rule). XLA converts through
    float32, which can round twice (1 + 2**-11 + 2**-30 -> 1.0 instead of 1 + 2**-10). Rounding to
    float32 *to odd* first (truncate, then set the last bit when inexact) keeps enough information
    for the float32 -> float16 step to round correctly."""
    y = x.astype(jnp.float32)
    bits = lax.bitcast_convert_type(y, jnp.uint32)
    inexact = y.astype(jnp.float64) != x
    bits = jnp.where(inexact & (jnp.abs(y.astype(jnp.float64)) > jnp.abs(x)), bits - jnp.uint32(1), bits)
    bits = jnp.where(inexact & ~jnp.isnan(x), bits | jnp.uint32(1), bits)
    return lax.bitcast_convert_type(bits, jnp.float32).astype(jnp.float16)


def _astype(x: Any, dtype: DType) -> Any:
    if dtype is DType.bool:
        return x != 0
    if dtype is DType.float16 and x.dtype == jnp.float64:
        return _f64_to_f16(x)
    target = jdt(dtype)
    if _is_float(x) and dtype.is_integer:
        t = jnp.trunc(x.astype(jnp.float64))
        t = jnp.where(jnp.isfinite(t), t, 0.0)
        if dtype is DType.uint32:
            return jnp.mod(t, 2.0**32).astype(jnp.uint64).astype(jnp.uint32)
        info = np.iinfo(dtype.to_numpy())
        return jnp.clip(t, info.min, info.max).astype(target)
    if x.dtype != jnp.bool_ and jnp.issubdtype(x.dtype, jnp.integer) and dtype.is_integer:
        return x.astype(jnp.int64).astype(target) if x.dtype != jnp.uint32 else x.astype(target)
    return x.astype(target)


def _reduce(fn: Callable, acc_low: bool = True) -> Callable:
    def run(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        ax = None if axis is None else tuple(axis)
        if acc_low and x.dtype in LOW:
            return fn(x.astype(jnp.float32), axis=ax, keepdims=keepdims).astype(x.dtype)
        return fn(x, axis=ax, keepdims=keepdims)

    return run


def _sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    ax = None if axis is None else tuple(axis)
    if x.dtype in LOW:
        return jnp.sum(x.astype(jnp.float32), axis=ax, keepdims=keepdims).astype(x.dtype)
    return jnp.sum(x, axis=ax, keepdims=keepdims, dtype=x.dtype)


def _prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    ax = None if axis is None else tuple(axis)
    if x.dtype in LOW:
        return jnp.prod(x.astype(jnp.float32), axis=ax, keepdims=keepdims).astype(x.dtype)
    return jnp.prod(x, axis=ax, keepdims=keepdims, dtype=x.dtype)


def _logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    ax = None if axis is None else tuple(axis)
    v = x.astype(jnp.float32) if x.dtype in LOW else x
    if v.size == 0:
        return jnp.log(jnp.sum(jnp.exp(v), axis=ax, keepdims=keepdims)).astype(x.dtype)
    m = jnp.max(v, axis=ax, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    s = jnp.log(jnp.sum(jnp.exp(v - m), axis=ax, keepdims=True)) + m
    if not keepdims:
        s = jnp.squeeze(s, axis=ax if ax is not None else tuple(range(v.ndim)))
    return s.astype(x.dtype)


def _softmax(x: Any, axis: int = -1, log: bool = False) -> Any:
    v = x.astype(jnp.float32) if x.dtype in LOW else x
    m = jnp.max(v, axis=axis, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    s = v - m
    if log:
        out = s - jnp.log(jnp.sum(jnp.exp(s), axis=axis, keepdims=True))
    else:
        e = jnp.exp(s)
        out = e / jnp.sum(e, axis=axis, keepdims=True)
    return out.astype(x.dtype)


def _int_div_safe(y: Any) -> Any:
    return jnp.where(y == 0, jnp.ones_like(y), y)


def _shift_amount(x: Any, y: Any) -> Any:
    return jnp.clip(y, 0, x.dtype.itemsize * 8 - 1).astype(x.dtype)


def _clip(x: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    y = x
    if min is not None:
        y = jnp.maximum(y, jnp.asarray(min).astype(x.dtype))
    if max is not None:
        y = jnp.minimum(y, jnp.asarray(max).astype(x.dtype))
    return y


def _full(shape: tuple, fill_value: Any, dtype: DType) -> Any:
    v = np.array(fill_value)
    if v.dtype.kind in "iu" and dtype.is_integer:
        v = v.astype(np.int64)
    return jnp.full(shape, v.astype(dtype.to_numpy()), dtype=jdt(dtype))


def _gelu(x: Any, approximate: str = "none") -> Any:
    return _low(lambda v: jax.nn.gelu(v, approximate=(approximate == "tanh")))(x)


def _rms_norm(x: Any, w: Any, eps: float = 1e-6) -> Any:
    return _low(lambda v, ww: v * lax.rsqrt(jnp.mean(v * v, axis=-1, keepdims=True) + eps) * ww)(x, w)


def _layer_norm(x: Any, w: Any, b: Any, eps: float = 1e-5) -> Any:
    def f(v: Any, ww: Any, bb: Any) -> Any:
        mu = jnp.mean(v, axis=-1, keepdims=True)
        var = jnp.mean((v - mu) ** 2, axis=-1, keepdims=True)
        return (v - mu) / jnp.sqrt(var + eps) * ww + bb

    return _low(f)(x, w, b)


def _spatial_pads(pads: tuple) -> list:
    """ONNX pads (every begin, then every end) as ``[(begin, end), ...]`` per spatial axis."""
    n = len(pads) // 2
    return [(pads[i], pads[n + i]) for i in range(n)]


def _conv(x: Any, w: Any, *bias: Any, strides: tuple, pads: tuple, dilations: tuple, groups: int) -> Any:
    """``lax.conv_general_dilated`` in NC* / OI* layout (highest precision), plus the bias."""

    def f(v: Any, ww: Any, *bb: Any) -> Any:
        spec = "NCHW" if v.ndim == 4 else "NCH"
        out = lax.conv_general_dilated(
            v,
            ww,
            window_strides=strides,
            padding=_spatial_pads(pads),
            rhs_dilation=dilations,
            dimension_numbers=(spec, "OI" + spec[2:], spec),
            feature_group_count=groups,
            precision=lax.Precision.HIGHEST,
        )
        return out + bb[0].reshape((-1,) + (1,) * (v.ndim - 2)) if bb else out

    return _low(f)(x, w, *bias)


def _pool_window(x: Any, init: float, op: Callable, kernel: tuple, strides: tuple, pads: tuple) -> Any:
    return lax.reduce_window(
        x,
        jnp.asarray(init, x.dtype),
        op,
        (1, 1, *kernel),
        (1, 1, *strides),
        [(0, 0), (0, 0), *_spatial_pads(pads)],
    )


def _max_pool(x: Any, kernel: tuple, strides: tuple, pads: tuple) -> Any:
    return _low(lambda v: _pool_window(v, -jnp.inf, lax.max, kernel, strides, pads))(x)


def _avg_pool(x: Any, kernel: tuple, strides: tuple, pads: tuple, count_include_pad: bool) -> Any:
    """Window sums (``reduce_window`` add over zero padding) divided by the static counts."""

    def f(v: Any) -> Any:
        counts = pool_counts(v.shape[2:], kernel, strides, pads, count_include_pad)
        return _pool_window(v, 0.0, lax.add, kernel, strides, pads) / jnp.asarray(counts, v.dtype)

    return _low(f)(x)


def _resize(x: Any, sizes: tuple, mode: str) -> Any:
    """Gathers along each spatial axis with the static plan of ``resize_plan``."""

    def f(v: Any) -> Any:
        for axis, out in enumerate(sizes, start=2):
            i0, i1, t = resize_plan(v.shape[axis], out, mode)
            if mode == "nearest":
                v = jnp.take(v, i0, axis=axis)
                continue
            shape = [1] * v.ndim
            shape[axis] = out
            tt = jnp.asarray(t.reshape(shape), v.dtype)
            v = jnp.take(v, i0, axis=axis) * (1 - tt) + jnp.take(v, i1, axis=axis) * tt
        return v

    return _low(f)(x)


def _sign(x: Any) -> Any:
    return jnp.sign(x)


def _clamped(starts: tuple, sizes: tuple, shape: tuple) -> list:
    """XLA clamping done explicitly: jax first wraps negative starts numpy-style, the IR does not."""
    return [jnp.clip(jnp.asarray(s, jnp.int64), 0, d - n) for s, n, d in zip(starts, sizes, shape)]


def _dynamic_slice(x: Any, *starts: Any, sizes: tuple) -> Any:
    return lax.dynamic_slice(x, _clamped(starts, sizes, x.shape), sizes)


def _dynamic_update_slice(x: Any, u: Any, *starts: Any) -> Any:
    return lax.dynamic_update_slice(x, u, _clamped(starts, u.shape, x.shape))


def _put_along_axis(x: Any, idx: Any, v: Any, axis: int = -1) -> Any:
    axis = axis % x.ndim
    grids = list(jnp.meshgrid(*[jnp.arange(n) for n in idx.shape], indexing="ij"))
    grids[axis] = idx
    return x.at[tuple(grids)].set(v)


def _top_k_sorted(x: Any, k: int) -> tuple:
    idx = _argsort(x, x.ndim - 1, True)[..., :k]
    return jnp.take_along_axis(x, idx, axis=-1), idx


def _top_k_select(x: Any, k: int) -> tuple:
    """Exact top_k of a nan-free float32 ``x`` without sorting the row, for rows where exactly k
    elements are ``>= t``, the k-th largest value (``lax.top_k`` gives ``t``): the k positions
    (ascending) come from a second ``lax.top_k`` over ``-index`` (distinct keys, exact in
    float32 below 2**24) and are ordered by a stable sort of their k values. ``ok`` says whether
    every row qualified (else ties at ``t`` need the index rule over the whole row)."""
    t = jnp.min(lax.top_k(x, k)[0], axis=-1, keepdims=True)  # not a slice: XLA would fold it into
    # the sort and lose its CPU top_k kernel
    take = x >= t
    ok = jnp.all(jnp.sum(take, axis=-1) == k)
    pos = lax.broadcasted_iota(jnp.float32, x.shape, x.ndim - 1)
    idx = lax.top_k(jnp.where(take, -pos, -jnp.inf), k)[1].astype(jnp.int64)
    vals = jnp.take_along_axis(x, idx, axis=-1)
    order = _argsort(vals, vals.ndim - 1, True)
    return jnp.take_along_axis(vals, order, axis=-1), jnp.take_along_axis(idx, order, axis=-1), ok


def _top_k(x: Any, k: int) -> tuple:
    """Ties -> lower index first, nan largest. A float32/16 row much longer than k (a beam step's
    ``num_beams * vocab`` scores) takes ``_top_k_select`` when no row holds a nan or a tie at its
    k-th value (checked at run time, ``lax.cond``); everything else one stable sort (XLA on CPU
    sorts a 200k row in ~100 ms, top_k takes ~1 ms)."""
    n = x.shape[-1] if x.ndim else 0
    if not (x.dtype in (jnp.float32,) + LOW and 0 < k and 8 * k < n < 2**24):
        return _top_k_sorted(x, k)
    v = x.astype(jnp.float32)
    vals, idx, ok = _top_k_select(jnp.where(jnp.isnan(v), jnp.inf, v), k)
    ok = ok & ~jnp.any(jnp.isnan(v))
    return lax.cond(ok, lambda: (vals.astype(x.dtype), idx), lambda: _top_k_sorted(x, k))


def _slice(x: Any, starts: tuple, stops: tuple, steps: tuple) -> Any:
    return x[tuple(slice(a, b, s) for a, b, s in zip(starts, stops, steps))]


def _repeat(x: Any, repeats: int, axis: Any = None) -> Any:
    if axis is None:
        return jnp.repeat(jnp.reshape(x, (-1,)), repeats, total_repeat_length=x.size * repeats)
    return jnp.repeat(x, repeats, axis=axis, total_repeat_length=x.shape[axis] * repeats)


def _arange(start: Any, stop: Any, step: int, dtype: DType) -> Any:
    return (
        _astype(jnp.arange(start, stop, step, dtype=jnp.int64), dtype)
        if dtype is not DType.int64
        else jnp.arange(start, stop, step, dtype=jnp.int64)
    )


def _pow(x: Any, y: Any) -> Any:
    if jnp.issubdtype(x.dtype, jnp.integer):
        return jnp.power(x, jnp.maximum(y, 0))
    return _low(jnp.power)(x, y)


#: ops whose rule is a jnp/lax function of ``(*inputs, **attrs)`` (``Rules.register_call``)
_CALLS: dict[str, Callable] = {
    # unary
    "abs": jnp.abs,
    "negative": jnp.negative,
    "sign": _sign,
    "exp": _low(jnp.exp),
    "log": _low(jnp.log),
    "log1p": _low(jnp.log1p),
    "sqrt": _low(jnp.sqrt),
    "rsqrt": _low(lax.rsqrt),
    "tanh": _low(jnp.tanh),
    "erf": _low(jax.scipy.special.erf),
    "sin": _low(jnp.sin),
    "cos": _low(jnp.cos),
    "floor": jnp.floor,
    "ceil": jnp.ceil,
    "sigmoid": _low(jax.nn.sigmoid),
    "silu": _low(jax.nn.silu),
    "isnan": jnp.isnan,
    "isinf": jnp.isinf,
    "isfinite": jnp.isfinite,
    "logical_not": jnp.logical_not,
    "bitwise_invert": jnp.invert,
    "gelu": _gelu,
    # binary
    "add": jnp.add,
    "subtract": jnp.subtract,
    "multiply": jnp.multiply,
    "divide": _low(jnp.divide),
    "floor_divide": lambda x, y: (
        jnp.floor_divide(x, _int_div_safe(y)) if not _is_float(x) else _low(jnp.floor_divide)(x, y)
    ),
    "remainder": lambda x, y: (
        jnp.remainder(x, _int_div_safe(y)) if not _is_float(x) else _low(jnp.remainder)(x, y)
    ),
    "pow": _pow,
    "maximum": jnp.maximum,
    "minimum": jnp.minimum,
    "equal": jnp.equal,
    "not_equal": jnp.not_equal,
    "less": jnp.less,
    "less_equal": jnp.less_equal,
    "greater": jnp.greater,
    "greater_equal": jnp.greater_equal,
    "logical_and": jnp.logical_and,
    "logical_or": jnp.logical_or,
    "logical_xor": jnp.logical_xor,
    "bitwise_and": jnp.bitwise_and,
    "bitwise_or": jnp.bitwise_or,
    "bitwise_xor": jnp.bitwise_xor,
    "bitwise_left_shift": lambda x, y: jnp.left_shift(x, _shift_amount(x, y)),
    "bitwise_right_shift": lambda x, y: jnp.right_shift(x, _shift_amount(x, y)),
    "where": jnp.where,
    "clip": _clip,
    "astype": _astype,
    # reductions
    "sum": _sum,
    "prod": _prod,
    "mean": _reduce(jnp.mean),
    "max": _reduce(jnp.max, False),
    "min": _reduce(jnp.min, False),
    "any": _reduce(jnp.any, False),
    "all": _reduce(jnp.all, False),
    "logsumexp": _logsumexp,
    "argmax": lambda x, axis=-1, keepdims=False: _argext(x, axis, keepdims, True),
    "argmin": lambda x, axis=-1, keepdims=False: _argext(x, axis, keepdims, False),
    "cumulative_sum": lambda x, axis=-1: (
        jnp.cumsum(x.astype(jnp.float32), axis=axis).astype(x.dtype)
        if x.dtype in LOW
        else jnp.cumsum(x, axis=axis, dtype=x.dtype)
    ),
    # linear algebra
    "matmul": _low(jnp.matmul),
    "einsum": lambda *xs, subscripts: _low(lambda *v: jnp.einsum(subscripts, *v))(*xs),
    # creation / manipulation
    "full": _full,
    "arange": _arange,
    "reshape": lambda x, shape: jnp.reshape(x, shape),
    "permute_dims": lambda x, axes: jnp.transpose(x, axes),
    "expand_dims": lambda x, axis: jnp.expand_dims(x, axis),
    "squeeze": lambda x, axis: jnp.squeeze(x, axis),
    "broadcast_to": lambda x, shape: jnp.broadcast_to(x, shape),
    "concat": lambda *xs, axis=0: jnp.concatenate(xs, axis=axis),
    "stack": lambda *xs, axis=0: jnp.stack(xs, axis=axis),
    "flip": lambda x, axis=None: jnp.flip(x, axis=axis) if x.ndim else x,
    "repeat": _repeat,
    "tile": lambda x, reps: jnp.tile(x, reps),
    "slice": _slice,
    "dynamic_slice": _dynamic_slice,
    "dynamic_update_slice": _dynamic_update_slice,
    "take": lambda x, idx, axis=0: jnp.take(x, idx, axis=axis),
    "take_along_axis": lambda x, idx, axis=-1: jnp.take_along_axis(x, idx, axis=axis),
    "put_along_axis": _put_along_axis,
    "sort": lambda x, axis=-1, descending=False: jnp.take_along_axis(
        x, _argsort(x, axis, descending), axis=axis
    ),
    "argsort": lambda x, axis=-1, descending=False: _argsort(x, axis, descending),
    "top_k": _top_k,
    # fused
    "softmax": lambda x, axis=-1: _softmax(x, axis, False),
    "log_softmax": lambda x, axis=-1: _softmax(x, axis, True),
    "rms_norm": _rms_norm,
    "layer_norm": _layer_norm,
    "conv": _conv,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "resize": _resize,
}


LOWERINGS = Rules(NAME)
for _op, _fn in _CALLS.items():
    LOWERINGS.register_call(_op, _fn)
del _op, _fn


@LOWERINGS.register("while_loop")
def _while_loop(site: Any) -> tuple:
    """``lax.while_loop`` over the state; captured values are passed to both subgraphs."""
    n = site.attrs["num_state"]
    ins = site.args
    cap = ins[n:]
    cond, body = site.subgraph("cond"), site.subgraph("body")
    return lax.while_loop(
        lambda s: cond(*s, *cap)[0],
        lambda s: tuple(body(*s, *cap)),
        tuple(ins[:n]),
    )


@LOWERINGS.register("cond")
def _cond(site: Any) -> tuple:
    """``lax.cond``; the operands go to the taken branch."""
    then, other = site.subgraph("then"), site.subgraph("else")
    return lax.cond(
        site.args[0],
        lambda ops: tuple(then(*ops)),
        lambda ops: tuple(other(*ops)),
        tuple(site.args[1:]),
    )


# ---------------------------------------------------------------------------- block-quantized weights


def _dequantize_blocks(packed: Any, scales: Any, offsets: Any, bits: int, zero_point: int = 0) -> Any:
    """``scales * (codes - zero_point) + offsets`` per block -> ``[rows, blocks * block]``."""
    shifts = jnp.arange(0, 32, bits).astype(packed.dtype)
    codes = (packed[..., None] >> shifts) & jnp.asarray(2**bits - 1, packed.dtype)
    codes = codes.reshape(*packed.shape[:-1], -1).astype(scales.dtype)
    w = scales[..., None] * (codes - zero_point) + offsets[..., None]
    return w.reshape(w.shape[0], -1)


def _quantized_matmul(x: Any, packed: Any, scales: Any, offsets: Any, bits: int, zero_point: int = 0) -> Any:
    """Dequantise then ``x @ W^T`` (XLA compiles both together; spec/ir.md section 6b)."""
    return jnp.matmul(x, _dequantize_blocks(packed, scales, offsets, bits, zero_point).T)


LOWERINGS.register_call("dequantize_blocks", _dequantize_blocks)
LOWERINGS.register_call("quantized_matmul", _quantized_matmul)
