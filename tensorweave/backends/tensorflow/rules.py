"""The TensorFlow rule table: ``op -> rule(site)`` (a :class:`~tensorweave.backends.base.Rules` table).

Rules run while ``tf.function`` traces (spec/backends-tensorflow.md). Most are a TF function of
``(*inputs, **attrs)`` registered with ``register_call``. uint32 is carried as int64, so the TF
dtype alone cannot tell uint32 from int64: ``astype``, ``clip`` and the shifts take the site and
read the IR dtype of their first input (``site.in_dt``). ``while_loop`` / ``cond`` take the site:
it is a :class:`~tensorweave.backends.tensorflow.program.TFSite`, whose ``subgraph(key)`` is the
closed subgraph as a Python function over TF tensors. Results that can leave [0, 2**32) for
uint32 are masked by ``run_graph`` (the op registry's ``wraps_uint32``), not here.

How the numpy reference semantics are kept:

- float16/bfloat16 math runs in float32 and is rounded once, like the reference.
- max/min/maximum/minimum/clip propagate nan explicitly; argmax/argmin take the first index of
  the extreme (nan counts as the largest for argmax, the smallest for argmin).
- sort/argsort/top_k order an integer key that maps floats monotonically (nan above +inf,
  -0.0 equal to 0.0) and use ``tf.math.top_k``, which puts the lower index first on ties.
- float floor_divide/remainder follow numpy's divmod algorithm (not ``floor(x / y)``).
- integer matmul/einsum are exact (products and sums in the integer dtype, wrapping).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from ...ir.ops.linalg import parse_einsum
from ...ir.ops.nn import pool_counts, resize_plan
from ...ir.types import DType
from ..base import Rules
from .runtime import CARRIED, LOW, NAME, mask32, scalar, static_shape

# ---------------------------------------------------------------------------- small helpers


def _is_float(x: Any) -> bool:
    return x.dtype.is_floating


def _low(fn: Callable) -> Callable:
    """Run ``fn`` in float32 when the first input is float16/bfloat16, then round back once."""

    def run(*xs: Any, **kw: Any) -> Any:
        dt = xs[0].dtype
        if dt in LOW:
            return tf.cast(fn(*[tf.cast(x, tf.float32) for x in xs], **kw), dt)
        return fn(*xs, **kw)

    return run


def _nan(x: Any) -> Any:
    return scalar(float("nan"), x.dtype)


def _nanprop(fn: Callable) -> Callable:
    """A binary ``fn`` whose result is nan wherever either float operand is nan."""

    def run(x: Any, y: Any) -> Any:
        out = fn(x, y)
        if _is_float(x):
            out = tf.where(tf.math.is_nan(x) | tf.math.is_nan(y), _nan(out), out)
        return out

    return run


def _dims(dims: Sequence[Any]) -> Any:
    """A shape argument: a Python list when every dim is static, else an int64 vector."""
    if all(isinstance(d, int) for d in dims):
        return list(dims)
    return _int64_vector(dims)


def _int64_vector(dims: Sequence[Any]) -> Any:
    """Static ints and int scalar tensors as one int64 vector (a static int is one constant, not
    a constant and a cast)."""
    if not any(tf.is_tensor(d) for d in dims):  # (tf.stack of numpy int64 scalars gives int32)
        return tf.constant(np.asarray(dims, np.int64))
    return tf.stack([tf.cast(d, tf.int64) if tf.is_tensor(d) else np.int64(d) for d in dims])


def _to_last(x: Any, axis: int) -> tuple[Any, list | None]:
    """Transpose ``axis`` to the end; returns (x, permutation or None). The permutation is an
    involution, so applying it again restores the order."""
    rank = len(x.shape)
    axis %= rank
    if axis == rank - 1:
        return x, None
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    return tf.transpose(x, perm), perm


def _from_last(x: Any, perm: list | None) -> Any:
    return x if perm is None else tf.transpose(x, perm)


def _signed_zero(s: Any) -> Any:
    """copysign(0, s): -0.0 where s is negative or -0.0, else +0.0."""
    neg = (s < 0) | (tf.equal(s, tf.zeros_like(s)) & (tf.math.reciprocal(s) < 0))
    return tf.where(neg, tf.constant(-0.0, s.dtype), tf.zeros_like(s))


# ---------------------------------------------------------------------------- elementwise


def _sign(x: Any) -> Any:
    """sign with sign(nan) = nan."""
    if _is_float(x):
        return tf.where(tf.math.is_nan(x), x, tf.sign(x))
    return tf.sign(x)


def _erf(x: Any) -> Any:
    """erf; |x| >= 10 is +-1 exactly (TF's float64 kernel returns nan for +-inf)."""

    def f(v: Any) -> Any:
        return tf.where(tf.abs(v) >= 10.0, tf.sign(v), tf.math.erf(v))

    return _low(f)(x)


def _gelu(x: Any, approximate: str = "none") -> Any:
    """'none': 0.5*x*erfc(-x/sqrt(2)) (= 0.5*x*(1 + erf(x/sqrt(2))) without cancellation);
    'tanh': x*sigmoid(2u) with u = sqrt(2/pi)*(x + 0.044715*x**3) (= 0.5*x*(1 + tanh(u)))."""

    def f(v: Any) -> Any:
        if approximate == "tanh":
            u = math.sqrt(2.0 / math.pi) * (v + 0.044715 * (v * v * v))
            return v * tf.sigmoid(2.0 * u)
        return 0.5 * v * tf.math.erfc(-v * (1.0 / math.sqrt(2.0)))

    return _low(f)(x)


def _float_floor_divide(x: Any, y: Any) -> Any:
    """numpy's floor_divide for floats: mod = fmod(x, y); div = (x - mod) / y, minus 1 where mod
    and y differ in sign; then div snapped to the nearest integer below (+1 if the fraction
    exceeds 0.5); a zero quotient takes the sign of x / y; y == 0 gives x / y."""
    mod = tf.truncatemod(x, y)
    div = (x - mod) / y
    fix = tf.not_equal(mod, 0.0) & tf.not_equal(y < 0, mod < 0)
    div = tf.where(fix, div - 1.0, div)
    fl = tf.floor(div)
    fl = tf.where(div - fl > 0.5, fl + 1.0, fl)
    fl = tf.where(tf.equal(div, 0.0), _signed_zero(x / y), fl)
    return tf.where(tf.equal(y, 0.0), x / y, fl)


def _float_remainder(x: Any, y: Any) -> Any:
    """numpy's remainder for floats: fmod(x, y), plus y where it and y differ in sign; a zero
    result takes the sign of y (Python %)."""
    mod = tf.truncatemod(x, y)
    mod = tf.where(tf.not_equal(mod, 0.0) & tf.not_equal(y < 0, mod < 0), mod + y, mod)
    return tf.where(tf.equal(mod, 0.0), _signed_zero(y), mod)


def _int_divisor(y: Any) -> Any:
    """The divisor used for integer floor_divide/remainder: 1 where y is 0 (unspecified) or -1."""
    bad = tf.equal(y, tf.zeros_like(y)) | tf.equal(y, -tf.ones_like(y))
    return tf.where(bad, tf.ones_like(y), y)


def _floor_divide(x: Any, y: Any) -> Any:
    """Python floor division; ints: x // -1 is -x (wrapping), x // 0 is x (unspecified)."""
    if _is_float(x):
        return _low(_float_floor_divide)(x, y)
    q = tf.math.floordiv(x, _int_divisor(y))
    return tf.where(tf.equal(y, -tf.ones_like(y)), tf.negative(x), q)


def _remainder(x: Any, y: Any) -> Any:
    """x - floor_divide(x, y) * y (sign of y); ints: x % 0 is 0 (unspecified)."""
    if _is_float(x):
        return _low(_float_remainder)(x, y)
    return tf.math.floormod(x, _int_divisor(y))


def _pow(x: Any, y: Any) -> Any:
    if not _is_float(x):
        return tf.pow(x, tf.maximum(y, tf.zeros_like(y)))
    return _low(tf.pow)(x, y)


def _shift(left: bool) -> Callable:
    """x << y or x >> y; y clamped to [0, bits) (outside is unspecified; the reference clamps)."""

    def run(x: Any, y: Any, src: DType) -> Any:
        bits = 32 if src in (DType.int32, DType.uint32) else 64
        y = tf.minimum(tf.maximum(y, scalar(0, y.dtype)), scalar(bits - 1, y.dtype))
        return tf.bitwise.left_shift(x, y) if left else tf.bitwise.right_shift(x, y)

    return run


def _bitwise(fn_int: Callable, fn_bool: Callable) -> Callable:
    return lambda x, y: fn_bool(x, y) if x.dtype == tf.bool else fn_int(x, y)


def _bound(value: Any, x: Any, dt: DType) -> Any:
    """A clip bound converted to x's dtype the way the reference does (numpy ``astype``)."""
    with np.errstate(all="ignore"):
        v = np.asarray(value).astype(dt.to_numpy())
    return tf.constant(v.astype(np.int64) if dt is DType.uint32 else v, x.dtype)


def _clip(x: Any, min: Any = None, max: Any = None, *, src: DType) -> Any:  # noqa: A002
    """minimum(maximum(x, min), max) with nan propagation; bounds converted like numpy."""
    y = x
    if min is not None:
        y = _nanprop(tf.maximum)(y, _bound(min, x, src))
    if max is not None:
        y = _nanprop(tf.minimum)(y, _bound(max, x, src))
    return y


def _f64_to_f16(x: Any) -> Any:
    """float64 -> float16 rounded once to nearest even: round to float32 *to odd* first (truncate
    toward zero, then set the last bit if inexact), which makes the second rounding exact. A
    plain cast rounds twice (via float32), which numpy does not."""
    r = tf.cast(x, tf.float32)
    bits = tf.bitcast(r, tf.int32)
    finite = tf.math.is_finite(r)
    bits = tf.where(finite & (tf.abs(tf.cast(r, tf.float64)) > tf.abs(x)), bits - 1, bits)
    inexact = finite & tf.not_equal(tf.cast(tf.bitcast(bits, tf.float32), tf.float64), x)
    bits = tf.where(inexact, tf.bitwise.bitwise_or(bits, 1), bits)
    return tf.cast(tf.bitcast(bits, tf.float32), tf.float16)


def _astype(x: Any, dtype: DType, src: DType) -> Any:
    """The reference's astype: float -> int truncates toward zero (nan/inf -> 0, others clipped to
    the int range; uint32 wraps modulo 2**32); int -> narrower int wraps; x -> bool is x != 0."""
    if dtype is DType.bool:
        return tf.not_equal(x, tf.zeros_like(x))
    if src.is_floating and dtype.is_integer:
        t = tf.cast(x, tf.float64)
        t = tf.where(tf.math.is_finite(t), t, tf.zeros_like(t))
        t = tf.math.sign(t) * tf.floor(tf.abs(t))
        if dtype is DType.uint32:
            return tf.cast(tf.math.floormod(t, 2.0**32), tf.int64)
        info = np.iinfo(dtype.to_numpy())
        return tf.cast(tf.clip_by_value(t, float(info.min), float(info.max)), CARRIED[dtype])
    if dtype is DType.uint32:
        return mask32(tf.cast(x, tf.int64))
    if dtype is DType.int32 and src in (DType.int64, DType.uint32):
        v = mask32(tf.cast(x, tf.int64))
        return tf.cast(tf.where(v >= 2**31, v - 2**32, v), tf.int32)
    if src is DType.float64 and dtype is DType.float16:
        return _f64_to_f16(x)
    return tf.cast(x, CARRIED[dtype])


# ---------------------------------------------------------------------------- reductions


def _axes(x: Any, axis: Any) -> list:
    return list(range(len(x.shape))) if axis is None else list(axis)


def _reduce(fn: Callable, nan_prop: bool = False, upcast: bool = True) -> Callable:
    """A reduction over ``axis`` (None: all; (): identity); f16/bf16 accumulate in float32."""

    def run(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        ax = _axes(x, axis)
        if not ax:
            return tf.identity(x)
        v = tf.cast(x, tf.float32) if (upcast and x.dtype in LOW) else x
        out = fn(v, axis=ax, keepdims=keepdims)
        if nan_prop and _is_float(x):
            out = tf.where(tf.reduce_any(tf.math.is_nan(v), axis=ax, keepdims=keepdims), _nan(out), out)
        return tf.cast(out, x.dtype)

    return run


def _logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """m + log(sum(exp(x - m))), m = max(x) (0 where infinite); any nan -> nan."""
    ax = _axes(x, axis)
    if not ax:
        return tf.identity(x)
    v = tf.cast(x, tf.float32) if x.dtype in LOW else x
    m = tf.reduce_max(v, axis=ax, keepdims=True)
    m = tf.where(tf.math.is_finite(m), m, tf.zeros_like(m))
    s = tf.math.log(tf.reduce_sum(tf.exp(v - m), axis=ax, keepdims=True)) + m
    s = tf.where(tf.reduce_any(tf.math.is_nan(v), axis=ax, keepdims=True), _nan(s), s)
    if not keepdims:
        s = tf.squeeze(s, axis=ax)
    return tf.cast(s, x.dtype)


def _order_key(x: Any) -> Any:
    """An integer tensor ordered like the sort semantics: ints are their own key; a float is
    mapped through its bits (b ^ ((b >> (bits-1)) & max_int) orders IEEE values as integers)
    after canonicalising nan (one positive nan, above +inf) and -0.0 (to 0.0)."""
    if not _is_float(x):
        return x
    if x.dtype in LOW:
        x = tf.cast(x, tf.float32)
    x = tf.where(tf.math.is_nan(x), _nan(x), tf.where(tf.equal(x, 0.0), tf.zeros_like(x), x))
    itype, bits = (tf.int64, 64) if x.dtype == tf.float64 else (tf.int32, 32)
    b = tf.bitcast(x, itype)
    sign_fill = tf.bitwise.right_shift(b, tf.constant(bits - 1, itype))
    return tf.bitwise.bitwise_xor(
        b, tf.bitwise.bitwise_and(sign_fill, tf.constant(2 ** (bits - 1) - 1, itype))
    )


def _argsort_last(x: Any, descending: bool) -> Any:
    """Stable argsort along the last axis (int64): top_k of the order key puts the lower index
    first among equal keys; ascending sorts top_k of ~key."""
    key = _order_key(x)
    if not descending:
        key = tf.bitwise.invert(key)
    n = tf.shape(key)[-1]
    return tf.cast(tf.math.top_k(key, n, sorted=True).indices, tf.int64)


def _argsort(x: Any, axis: int = -1, descending: bool = False) -> Any:
    x, perm = _to_last(x, axis)
    return _from_last(_argsort_last(x, descending), perm)


def _take_along(x: Any, idx: Any, axis: int = -1) -> Any:
    """out[..., j, ...] = x[..., idx[..., j, ...], ...] (tf.gather with batch dims)."""
    x, perm = _to_last(x, axis)
    idx, _ = _to_last(idx, axis)
    out = tf.gather(x, tf.cast(idx, tf.int64), batch_dims=len(x.shape) - 1)
    return _from_last(out, perm)


def _sort(x: Any, axis: int = -1, descending: bool = False) -> Any:
    return _take_along(x, _argsort(x, axis, descending), axis)


def _top_k(x: Any, k: int) -> tuple:
    """The k largest along the last axis, descending; ties -> lower index; nan largest."""
    idx = tf.cast(tf.math.top_k(_order_key(x), k, sorted=True).indices, tf.int64)
    return _take_along(x, idx, -1), idx


def _arg_extreme(largest: bool) -> Callable:
    """argmax/argmin: the first index holding the extreme key (nan is the largest value for argmax,
    the smallest for argmin; the first nan wins)."""

    def run(x: Any, axis: int = -1, keepdims: bool = False) -> Any:
        key = _order_key(x)
        if _is_float(x) and not largest:
            key = tf.where(tf.math.is_nan(x), tf.constant(key.dtype.min, key.dtype), key)
        best = (tf.reduce_max if largest else tf.reduce_min)(key, axis=axis, keepdims=True)
        rank = len(x.shape)
        n = tf.shape(x, out_type=tf.int64)[axis]
        iota = tf.reshape(tf.range(n), [-1 if i == axis % rank else 1 for i in range(rank)])
        return tf.reduce_min(tf.where(tf.equal(key, best), iota, n), axis=axis, keepdims=keepdims)

    return run


def _cumulative_sum(x: Any, axis: int = -1) -> Any:
    if x.dtype in LOW:
        return tf.cast(tf.cumsum(tf.cast(x, tf.float32), axis=axis), x.dtype)
    return tf.cumsum(x, axis=axis)


# ---------------------------------------------------------------------------- linalg


def _int_einsum(subscripts: str, xs: Sequence[Any]) -> Any:
    """Exact integer einsum: align every operand on one index order (output indices first), take
    the broadcast product and sum the contracted indices (products and sums wrap)."""
    terms, out = parse_einsum(subscripts, len(xs))
    order = list(out) + sorted({c for t in terms for c in t} - set(out))
    prod = None
    for term, x in zip(terms, xs):
        present = sorted(term, key=order.index)
        x = tf.transpose(x, [term.index(c) for c in present]) if list(term) != present else x
        for pos, c in enumerate(order):
            if c not in term:
                x = tf.expand_dims(x, pos)
        prod = x if prod is None else prod * x
    summed = list(range(len(out), len(order)))
    return tf.reduce_sum(prod, axis=summed) if summed else prod


def _broadcast_size1(terms: Sequence[str], xs: Sequence[Any]) -> list:
    """Broadcast each static size-1 axis to the size its index has in another operand (the IR's
    einsum broadcasts size-1 dims; tf.einsum does not)."""
    source: dict = {}  # index letter -> (operand, axis) whose size is not a static 1
    for k, (term, x) in enumerate(zip(terms, xs)):
        for i, c in enumerate(term):
            if x.shape[i] != 1:
                source.setdefault(c, (k, i))
    out = []
    for term, x in zip(terms, xs):
        if any(x.shape[i] == 1 and c in source for i, c in enumerate(term)):
            shape = [
                tf.shape(xs[source[c][0]])[source[c][1]]
                if (x.shape[i] == 1 and c in source)
                else tf.shape(x)[i]
                for i, c in enumerate(term)
            ]
            x = tf.broadcast_to(x, tf.stack(shape))
        out.append(x)
    return out


def _einsum(*xs: Any, subscripts: str) -> Any:
    if not _is_float(xs[0]):
        return _int_einsum(subscripts, xs)
    xs = _broadcast_size1(parse_einsum(subscripts, len(xs))[0], xs)
    return _low(lambda *v: tf.einsum(subscripts, *v))(*xs)


def _matmul(a: Any, b: Any) -> Any:
    """Array-API matmul (1-D operands promoted, batch axes broadcast); ints exact (wrapping)."""
    va, vb = len(a.shape) == 1, len(b.shape) == 1
    if va:
        a = a[None, :]
    if vb:
        b = b[:, None]
    if _is_float(a):
        out = _low(tf.linalg.matmul)(a, b)
    else:
        out = tf.reduce_sum(a[..., :, :, None] * b[..., None, :, :], axis=-2)
    if va:
        out = out[..., 0, :]
    if vb:
        out = out[..., 0]
    return out


# ---------------------------------------------------------------------------- creation & shapes


def _full(shape: tuple, fill_value: Any, dtype: DType) -> Any:
    """fill_value converted exactly as the reference does (ints wrap), then broadcast."""
    v = np.array(fill_value)
    with np.errstate(all="ignore"):
        if v.dtype.kind in "iu" and dtype.is_integer:
            v = v.astype(np.int64)
        v = v.astype(dtype.to_numpy())
    if dtype is DType.uint32:
        v = v.astype(np.int64)
    return tf.fill(_dims(shape) if shape else tf.constant([], tf.int64), tf.constant(v))


def _arange(start: Any, stop: Any, step: int, dtype: DType) -> Any:
    """[start, start+step, ...) below stop; empty when the range is empty (tf.range would fail)."""
    start, stop = tf.cast(start, tf.int64), tf.cast(stop, tf.int64)
    stop = tf.maximum(stop, start) if step > 0 else tf.minimum(stop, start)
    r = tf.range(start, stop, tf.constant(step, tf.int64))
    return r if dtype is DType.int64 else _astype(r, dtype, DType.int64)


def _reshape(x: Any, shape: tuple) -> Any:
    return tf.reshape(x, _dims(shape) if shape else tf.constant([], tf.int64))


def _broadcast_to(x: Any, shape: tuple) -> Any:
    return tf.broadcast_to(x, _dims(shape) if shape else tf.constant([], tf.int64))


def _slice(x: Any, starts: tuple, stops: tuple, steps: tuple) -> Any:
    if not starts:
        return tf.identity(x)
    if all(isinstance(d, int) for d in starts + stops):
        return tf.strided_slice(x, list(starts), list(stops), list(steps))
    return tf.strided_slice(x, _int64_vector(starts), _int64_vector(stops), np.asarray(steps, np.int64))


def _repeat(x: Any, repeats: int, axis: Any = None) -> Any:
    if axis is None:
        return tf.repeat(tf.reshape(x, [-1]), repeats)
    return tf.repeat(x, repeats, axis=axis)


def _tile(x: Any, reps: tuple) -> Any:
    rank = len(x.shape)
    r = max(rank, len(reps))
    for _ in range(r - rank):
        x = tf.expand_dims(x, 0)
    return tf.tile(x, (1,) * (r - len(reps)) + tuple(reps))


def _clamped_starts(starts: Sequence[Any], sizes: Sequence[Any], shape: Any) -> list:
    """XLA start clamping: each start to [0, dim - size] (int64 scalars)."""
    out = []
    for i, (s, n) in enumerate(zip(starts, sizes)):
        hi = shape[i] - tf.cast(n, tf.int64)
        out.append(tf.clip_by_value(tf.cast(s, tf.int64), tf.constant(0, tf.int64), hi))
    return out


def _dynamic_slice(x: Any, *starts: Any, sizes: tuple) -> Any:
    if not starts:
        return tf.identity(x)
    st = _clamped_starts(starts, sizes, tf.shape(x, out_type=tf.int64))
    return tf.slice(x, tf.stack(st), tf.stack([tf.cast(n, tf.int64) for n in sizes]))


#: the largest static index grid (elements) ``_scatter_update`` stores as a graph constant
GRID_CONSTANT_LIMIT = 1 << 20


def _scatter_update(x: Any, u: Any, starts: Sequence[Any], xs: list, us: list) -> Any:
    """Static shapes: one ``tensor_scatter_nd_update`` whose index tuples cover the axes up to the
    last one the update does not span; O(update) instead of a select over all of x. The index
    tuples are a constant grid ``[*us[:r], r]`` (numpy, built once) plus the clamped starts of the
    axes the update does not span (an axis it spans starts at 0): a KV-cache write is about ten
    TF ops, not a hundred (fewer ops to build and to run per decode step)."""
    r = max(k for k in range(len(xs)) if us[k] != xs[k]) + 1
    grid_shape = us[:r] + [r]
    if int(np.prod(grid_shape)) > GRID_CONSTANT_LIMIT:
        return _scatter_update_ranges(x, u, starts, xs, us, r)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.int64) for n in us[:r]], indexing="ij"), axis=-1)
    offsets = [
        tf.clip_by_value(tf.cast(starts[k], tf.int64), np.int64(0), np.int64(xs[k] - us[k]))
        if us[k] != xs[k]
        else tf.constant(0, tf.int64)
        for k in range(r)
    ]
    return tf.tensor_scatter_nd_update(x, tf.constant(grid) + tf.stack(offsets), u)


def _scatter_update_ranges(x: Any, u: Any, starts: Sequence[Any], xs: list, us: list, r: int) -> Any:
    """``_scatter_update`` with the index grid built by TF ops (an update too large for a
    constant grid)."""
    cols = []
    for k in range(r):
        start = tf.clip_by_value(
            tf.cast(starts[k], tf.int64), tf.constant(0, tf.int64), tf.constant(xs[k] - us[k], tf.int64)
        )
        view = [1] * r
        view[k] = us[k]
        ix = tf.reshape(start + tf.range(us[k], dtype=tf.int64), view)
        cols.append(tf.broadcast_to(ix, us[:r]))
    return tf.tensor_scatter_nd_update(x, tf.stack(cols, axis=-1), u)


def _scatter_update_dynamic(x: Any, u: Any, starts: Sequence[Any], xs: list, us: list) -> Any:
    """``_scatter_update`` when a size is only known at run time (an any-prompt program's prompt
    length or cache size): index tuples from run-time ranges over the axes up to the last one the
    update may not span, each shifted by its clamped start (an axis known to be spanned starts at
    0). O(update) per write, not a select over all of x."""
    spanned = [xs[k] is not None and xs[k] == us[k] for k in range(len(xs))]
    r = max(k for k in range(len(xs)) if not spanned[k]) + 1
    ushape = tf.shape(u, out_type=tf.int64)
    lead = ushape[:r]
    cols = []
    for k in range(r):
        view = [1] * r
        view[k] = -1
        if spanned[k]:  # a static size: a constant range
            cols.append(tf.broadcast_to(np.arange(us[k], dtype=np.int64).reshape(view), lead))
            continue
        n = ushape[k] if us[k] is None else us[k]
        dim = tf.shape(x, out_type=tf.int64)[k] if xs[k] is None else xs[k]
        start = tf.minimum(tf.maximum(tf.cast(starts[k], tf.int64), np.int64(0)), dim - n)
        cols.append(tf.broadcast_to(tf.reshape(tf.range(n, dtype=tf.int64) + start, view), lead))
    return tf.tensor_scatter_nd_update(x, tf.stack(cols, axis=-1), u)


def _dynamic_update_slice(x: Any, u: Any, *starts: Any) -> Any:
    """A scatter of the update's index tuples (``_scatter_update`` with static shapes,
    ``_scatter_update_dynamic`` otherwise); for bool, pad the update to x's shape at the clamped
    starts and select it where it lands."""
    if not starts:
        return tf.identity(u)
    xs, us = x.shape.as_list(), u.shape.as_list()
    if x.dtype != tf.bool and None not in xs + us:
        if xs == us:
            return tf.identity(u)
        if 0 not in us:
            return _scatter_update(x, u, starts, xs, us)
    if x.dtype != tf.bool and any(a is None or a != b for a, b in zip(xs, us)):
        return _scatter_update_dynamic(x, u, starts, xs, us)
    shape = tf.shape(x, out_type=tf.int64)
    ushape = tf.shape(u, out_type=tf.int64)
    st = _clamped_starts(starts, [ushape[i] for i in range(len(starts))], shape)
    pads = tf.stack([tf.stack([st[i], shape[i] - st[i] - ushape[i]]) for i in range(len(starts))])
    return tf.where(tf.pad(tf.ones_like(u, dtype=tf.bool), pads), tf.pad(u, pads), x)


def _take(x: Any, idx: Any, axis: int = 0) -> Any:
    return tf.gather(x, tf.cast(idx, tf.int64), axis=axis)


def _put_along_axis(x: Any, idx: Any, v: Any, axis: int = -1) -> Any:
    """Scatter with tf.tensor_scatter_nd_update; full coordinates from an index grid."""
    rank = len(x.shape)
    axis %= rank
    ishape = tf.shape(idx, out_type=tf.int64)
    grids = tf.meshgrid(*[tf.range(ishape[i]) for i in range(rank)], indexing="ij")
    grids[axis] = tf.cast(idx, tf.int64)
    return tf.tensor_scatter_nd_update(x, tf.stack(grids, axis=-1), v)


# ---------------------------------------------------------------------------- nn


def _softmax(log: bool) -> Callable:
    """exp(x - m) / sum(exp(x - m)) (or x - m - log(sum(exp(x - m)))), m = max (0 if infinite)."""

    def run(x: Any, axis: int = -1) -> Any:
        def f(v: Any) -> Any:
            m = tf.reduce_max(v, axis=axis, keepdims=True)
            s = v - tf.where(tf.math.is_finite(m), m, tf.zeros_like(m))
            if log:
                return s - tf.math.log(tf.reduce_sum(tf.exp(s), axis=axis, keepdims=True))
            e = tf.exp(s)
            return e / tf.reduce_sum(e, axis=axis, keepdims=True)

        return _low(f)(x)

    return run


def _rms_norm(x: Any, w: Any, eps: float = 1e-6) -> Any:
    """x / sqrt(mean(x**2, -1) + eps) * w."""
    return _low(lambda v, ww: v * (1.0 / tf.sqrt(tf.reduce_mean(v * v, axis=-1, keepdims=True) + eps)) * ww)(
        x, w
    )


def _layer_norm(x: Any, w: Any, b: Any, eps: float = 1e-5) -> Any:
    """(x - mean) / sqrt(var + eps) * w + b over the last axis (biased variance)."""

    def f(v: Any, ww: Any, bb: Any) -> Any:
        mu = tf.reduce_mean(v, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.square(v - mu), axis=-1, keepdims=True)
        return (v - mu) / tf.sqrt(var + eps) * ww + bb

    return _low(f)(x, w, b)


# ---------------------------------------------------------------------------- vision (NCHW via NHWC)


def _channels_last(x: Any) -> Any:
    n = len(x.shape)
    return tf.transpose(x, [0, *range(2, n), 1])


def _channels_first(x: Any) -> Any:
    n = len(x.shape)
    return tf.transpose(x, [0, n - 1, *range(1, n - 1)])


def _pad_nhwc(x: Any, pads: Sequence[int], value: float) -> Any:
    """Pad the spatial axes of a channels-last tensor by ONNX pads (every begin, then every end)."""
    n = len(pads) // 2
    if not any(pads):
        return x
    return tf.pad(x, [[0, 0], *[[pads[i], pads[n + i]] for i in range(n)], [0, 0]], constant_values=value)


def _conv(x: Any, w: Any, *bias: Any, strides: tuple, pads: tuple, dilations: tuple, groups: int) -> Any:
    """``tf.nn.convolution`` channels-last on the explicitly padded input (CPU kernels have no
    NCHW); one convolution per group; with a dilation > 1 it runs at stride 1 and subsamples
    (TF rejects stride and dilation together)."""

    def f(v: Any, ww: Any, *bb: Any) -> Any:
        n = len(v.shape) - 2
        xs = _pad_nhwc(_channels_last(v), pads, 0.0)
        fs = tf.transpose(ww, [*range(2, n + 2), 1, 0])  # [*K, C/groups, O]
        dilated = any(d > 1 for d in dilations)
        step = [1] * n if dilated else list(strides)
        xg, fg = tf.split(xs, groups, axis=-1), tf.split(fs, groups, axis=-1)
        outs = [
            tf.nn.convolution(a, b, strides=step, padding="VALID", dilations=list(dilations))
            for a, b in zip(xg, fg)
        ]
        out = outs[0] if groups == 1 else tf.concat(outs, axis=-1)
        if dilated and any(st > 1 for st in strides):
            out = out[(slice(None), *[slice(None, None, st) for st in strides])]
        if bb:
            out = out + bb[0]
        return _channels_first(out)

    return _low(f)(x, w, *bias)


def _max_pool(x: Any, kernel: tuple, strides: tuple, pads: tuple) -> Any:
    """``tf.nn.max_pool`` over the -inf padded input; TF starts from the lowest finite value, so
    windows without a value above -inf are set to -inf."""

    def f(v: Any) -> Any:
        xs = _pad_nhwc(_channels_last(v), pads, -math.inf)
        out = tf.nn.max_pool(xs, list(kernel), list(strides), "VALID")
        real = tf.nn.max_pool(tf.cast(xs > -math.inf, v.dtype), list(kernel), list(strides), "VALID")
        return _channels_first(tf.where(real > 0, out, tf.constant(-math.inf, v.dtype)))

    return _low(f)(x)


def _avg_pool(x: Any, kernel: tuple, strides: tuple, pads: tuple, count_include_pad: bool) -> Any:
    """The mean over each zero-padded window, rescaled by prod(kernel) / (the reference's counts)."""

    def f(v: Any) -> Any:
        xs = _pad_nhwc(_channels_last(v), pads, 0.0)
        mean = _channels_first(tf.nn.avg_pool(xs, list(kernel), list(strides), "VALID"))
        if count_include_pad or not any(pads):
            return mean
        counts = pool_counts([int(d) for d in v.shape[2:]], kernel, strides, pads, False)
        return mean * tf.constant(math.prod(kernel) / counts, v.dtype)

    return _low(f)(x)


def _resize(x: Any, sizes: tuple, mode: str) -> Any:
    """Gathers along each spatial axis with the static plan of ``resize_plan``."""

    def f(v: Any) -> Any:
        for axis, out in enumerate(sizes, start=2):
            i0, i1, t = resize_plan(int(v.shape[axis]), out, mode)
            if mode == "nearest":
                v = tf.gather(v, i0, axis=axis)
                continue
            shape = [1] * len(v.shape)
            shape[axis] = out
            tt = tf.constant(t.reshape(shape), v.dtype)
            v = tf.gather(v, i0, axis=axis) * (1 - tt) + tf.gather(v, i1, axis=axis) * tt
        return v

    return _low(f)(x)


#: ops whose rule is a TF function of ``(*inputs, **attrs)`` (``Rules.register_call``)
_CALLS: dict[str, Callable] = {
    # unary
    "abs": tf.abs,
    "negative": tf.negative,
    "sign": _sign,
    "exp": _low(tf.exp),
    "log": _low(tf.math.log),
    "log1p": _low(tf.math.log1p),
    "sqrt": _low(tf.sqrt),
    "rsqrt": _low(lambda v: 1.0 / tf.sqrt(v)),
    "tanh": _low(tf.tanh),
    "erf": _erf,
    "sin": _low(tf.sin),
    "cos": _low(tf.cos),
    "floor": tf.floor,
    "ceil": tf.math.ceil,
    "sigmoid": _low(tf.sigmoid),
    "silu": _low(lambda v: v * tf.sigmoid(v)),
    "isnan": lambda x: tf.math.is_nan(x) if _is_float(x) else tf.zeros_like(x, dtype=tf.bool),
    "isinf": lambda x: tf.math.is_inf(x) if _is_float(x) else tf.zeros_like(x, dtype=tf.bool),
    "isfinite": lambda x: tf.math.is_finite(x) if _is_float(x) else tf.ones_like(x, dtype=tf.bool),
    "logical_not": tf.logical_not,
    "bitwise_invert": lambda x: tf.logical_not(x) if x.dtype == tf.bool else tf.bitwise.invert(x),
    "gelu": _gelu,
    # binary
    "add": tf.add,
    "subtract": tf.subtract,
    "multiply": tf.multiply,
    "divide": _low(tf.divide),
    "floor_divide": _floor_divide,
    "remainder": _remainder,
    "pow": _pow,
    "maximum": _nanprop(tf.maximum),
    "minimum": _nanprop(tf.minimum),
    "equal": tf.equal,
    "not_equal": tf.not_equal,
    "less": tf.less,
    "less_equal": tf.less_equal,
    "greater": tf.greater,
    "greater_equal": tf.greater_equal,
    "logical_and": tf.logical_and,
    "logical_or": tf.logical_or,
    "logical_xor": tf.math.logical_xor,
    "bitwise_and": _bitwise(tf.bitwise.bitwise_and, tf.logical_and),
    "bitwise_or": _bitwise(tf.bitwise.bitwise_or, tf.logical_or),
    "bitwise_xor": _bitwise(tf.bitwise.bitwise_xor, tf.math.logical_xor),
    "where": tf.where,
    # reductions
    "sum": _reduce(tf.reduce_sum),
    "prod": _reduce(tf.reduce_prod),
    "mean": _reduce(tf.reduce_mean),
    "max": _reduce(tf.reduce_max, nan_prop=True, upcast=False),
    "min": _reduce(tf.reduce_min, nan_prop=True, upcast=False),
    "any": _reduce(tf.reduce_any, upcast=False),
    "all": _reduce(tf.reduce_all, upcast=False),
    "logsumexp": _logsumexp,
    "argmax": _arg_extreme(True),
    "argmin": _arg_extreme(False),
    "cumulative_sum": _cumulative_sum,
    # linalg
    "matmul": _matmul,
    "einsum": _einsum,
    # creation, shapes, indexing
    "full": _full,
    "arange": _arange,
    "reshape": _reshape,
    "permute_dims": lambda x, axes: tf.transpose(x, axes),
    "expand_dims": lambda x, axis: tf.expand_dims(x, axis),
    "squeeze": lambda x, axis: tf.squeeze(x, axis=list(axis)) if axis else tf.identity(x),
    "broadcast_to": _broadcast_to,
    "concat": lambda *xs, axis=0: tf.concat(list(xs), axis=axis),
    "stack": lambda *xs, axis=0: tf.stack(list(xs), axis=axis),
    "flip": lambda x, axis=None: tf.reverse(x, _axes(x, axis)),
    "repeat": _repeat,
    "tile": _tile,
    "slice": _slice,
    "dynamic_slice": _dynamic_slice,
    "dynamic_update_slice": _dynamic_update_slice,
    "take": _take,
    "take_along_axis": _take_along,
    "put_along_axis": _put_along_axis,
    # sorting
    "sort": _sort,
    "argsort": _argsort,
    "top_k": _top_k,
    # nn
    "softmax": _softmax(False),
    "log_softmax": _softmax(True),
    "rms_norm": _rms_norm,
    "layer_norm": _layer_norm,
    "conv": _conv,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "resize": _resize,
}


# ---------------------------------------------------------------------------- the table

LOWERINGS = Rules(NAME)
_LEFT_SHIFT, _RIGHT_SHIFT = _shift(True), _shift(False)
for _op, _fn in _CALLS.items():
    LOWERINGS.register_call(_op, _fn)
del _op, _fn


@LOWERINGS.register("astype")
def _astype_rule(site: Any) -> Any:
    return _astype(*site.args, **site.attrs, src=site.in_dt)


@LOWERINGS.register("clip")
def _clip_rule(site: Any) -> Any:
    return _clip(*site.args, **site.attrs, src=site.in_dt)


@LOWERINGS.register("bitwise_left_shift")
def _left_shift_rule(site: Any) -> Any:
    return _LEFT_SHIFT(*site.args, **site.attrs, src=site.in_dt)


@LOWERINGS.register("bitwise_right_shift")
def _right_shift_rule(site: Any) -> Any:
    return _RIGHT_SHIFT(*site.args, **site.attrs, src=site.in_dt)


# ---------------------------------------------------------------------------- control flow


@LOWERINGS.register("while_loop")
def _while_loop(site: Any) -> tuple:
    """tf.while_loop over the state; captured values are closed over; the IR types give the shape
    invariants (symbolic dims None)."""
    n = site.attrs["num_state"]
    if n == 0:
        return ()
    state, captured = site.args[:n], site.args[n:]
    cond, body = site.subgraph("cond"), site.subgraph("body")
    invariants = tuple(tf.TensorShape(static_shape(v.spec)) for v in site.node.inputs[:n])
    return tuple(
        tf.while_loop(
            lambda *s: cond(*s, *captured)[0],
            lambda *s: tuple(body(*s, *captured)),
            tuple(state),
            shape_invariants=invariants,
        )
    )


@LOWERINGS.register("cond")
def _cond(site: Any) -> tuple:
    """tf.cond; only the taken branch runs."""
    if not site.node.outputs:
        return ()
    then, other = site.subgraph("then"), site.subgraph("else")
    operands = site.args[1:]
    return tuple(
        tf.cond(
            site.args[0],
            lambda: tuple(then(*operands)),
            lambda: tuple(other(*operands)),
        )
    )


# ---------------------------------------------------------------------------- block-quantized weights


def _dequantize_blocks(packed: Any, scales: Any, offsets: Any, bits: int, zero_point: int = 0) -> Any:
    """``scales * (codes - zero_point) + offsets`` per block (codes of the uint32 words, carried
    int64 and non-negative, lowest bits first) -> ``[rows, blocks * block]``."""
    shifts = tf.constant(np.arange(0, 32, bits, dtype=np.int64))
    codes = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(packed[..., None], shifts), tf.constant(2**bits - 1, tf.int64)
    )
    shape = tf.shape(packed, out_type=tf.int64)
    codes = tf.cast(tf.reshape(codes, tf.concat([shape[:-1], [-1]], 0)), scales.dtype)
    w = scales[..., None] * (codes - zero_point) + offsets[..., None]
    return tf.reshape(w, tf.stack([shape[0], -1]))


def _quantized_matmul(x: Any, packed: Any, scales: Any, offsets: Any, bits: int, zero_point: int = 0) -> Any:
    """Dequantise then ``x @ W^T`` (the weight is rebuilt per call; spec/ir.md)."""
    return _matmul(x, tf.transpose(_dequantize_blocks(packed, scales, offsets, bits, zero_point)))


LOWERINGS.register_call("dequantize_blocks", _dequantize_blocks)
LOWERINGS.register_call("quantized_matmul", _quantized_matmul)
