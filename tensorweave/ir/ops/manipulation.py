"""Shape manipulation, indexing, creation and dynamic slicing.

Index tensors (take, take_along_axis, put_along_axis) hold int32/int64 values in
[0, n); negative or out-of-range indices are unspecified (the tracer normalises
Python-level negative indices).  dynamic_slice / dynamic_update_slice clamp
their start indices into range exactly like XLA.
"""

from __future__ import annotations

import math

import numpy as np

from ..types import DType, IRError, Shape, SymDim, TensorSpec, unify_dims
from .elementwise import NUMERIC, check_kind
from .registry import AttrSpec, norm_axes, norm_axis, register, require, same_dtype, shape_size_equal

INDEX_DTYPES = (DType.int32, DType.int64)


def _check_index(op: str, spec: TensorSpec) -> None:
    require(spec.dtype in INDEX_DTYPES, f"op {op}: indices must be int32 or int64, got {spec.dtype}")


# ------------------------------------------------------------------ creation


def _infer_full(ins, attrs):
    return [TensorSpec(attrs["shape"], attrs["dtype"])]


@register(
    "full",
    inputs=0,
    attrs={"shape": AttrSpec("dims"), "fill_value": AttrSpec("scalar"), "dtype": AttrSpec("dtype")},
    infer=_infer_full,
    category="creation",
)
def full(shape, fill_value, dtype):
    """An array of ``shape`` (dims may be symbolic) filled with ``fill_value`` converted to ``dtype``
    (integers wrap modulo 2**bits, e.g. -1 as uint32 is 0xFFFFFFFF)."""
    value = np.array(fill_value)
    if value.dtype.kind in "iu" and dtype.is_integer:
        value = value.astype(np.int64)
    return np.full(shape, value.astype(dtype.to_numpy()), dtype=dtype.to_numpy())


def arange_length(start, stop, step):
    if isinstance(start, SymDim) or isinstance(stop, SymDim):
        require(step == 1, "op arange: a symbolic start/stop needs step 1")
        n = stop - start
        return n
    return max(0, math.ceil((stop - start) / step))


def _infer_arange(ins, attrs):
    require(attrs["step"] != 0, "op arange: step must not be 0")
    n = arange_length(attrs["start"], attrs["stop"], attrs["step"])
    return [TensorSpec([n], attrs["dtype"])]


@register(
    "arange",
    inputs=0,
    attrs={
        "start": AttrSpec("dim", 0),
        "stop": AttrSpec("dim"),
        "step": AttrSpec("int", 1),
        "dtype": AttrSpec("dtype", DType.int64),
    },
    infer=_infer_arange,
    category="creation",
)
def arange(start, stop, step, dtype):
    """[start, start+step, ...) up to (excluding) stop, as ``dtype``; start/stop are integer dims
    (may be symbolic with step 1). Length max(0, ceil((stop-start)/step))."""
    return np.arange(start, stop, step).astype(dtype.to_numpy())


# ------------------------------------------------------------------ reshape family


def _infer_reshape(ins, attrs):
    shape = attrs["shape"]
    if not shape_size_equal(ins[0].shape, shape):
        raise IRError(f"op reshape: cannot reshape {ins[0].shape} to {Shape(shape)} (sizes differ)")
    return [TensorSpec(shape, ins[0].dtype)]


@register("reshape", inputs=1, attrs={"shape": AttrSpec("dims")}, infer=_infer_reshape, category="reshape")
def reshape(x, shape):
    """Row-major (C order) reshape to ``shape``; the element count must match."""
    return np.reshape(x, shape)


def _infer_permute(ins, attrs):
    axes = attrs["axes"]
    r = ins[0].rank
    require(
        len(axes) == r and all(-r <= a < r for a in axes) and sorted(a % r for a in axes) == list(range(r)),
        f"op permute_dims: axes {axes} are not a permutation of range({r})",
    )
    return [TensorSpec([ins[0].shape[a] for a in axes], ins[0].dtype)]


@register(
    "permute_dims", inputs=1, attrs={"axes": AttrSpec("ints")}, infer=_infer_permute, category="permute"
)
def permute_dims(x, axes):
    """out.shape[i] = x.shape[axes[i]] (transpose)."""
    return np.transpose(x, axes)


def _infer_expand(ins, attrs):
    r = ins[0].rank
    a = norm_axis(attrs["axis"], r + 1, "expand_dims")
    s = list(ins[0].shape)
    s.insert(a, 1)
    return [TensorSpec(s, ins[0].dtype)]


@register("expand_dims", inputs=1, attrs={"axis": AttrSpec("axis")}, infer=_infer_expand, category="expand")
def expand_dims(x, axis):
    """Insert a size-1 axis at position ``axis`` of the result (negative counts from the result's end)."""
    return np.expand_dims(x, axis)


def _infer_squeeze(ins, attrs):
    axes = norm_axes(attrs["axis"], ins[0].rank, "squeeze")
    for a in axes:
        require(ins[0].shape[a] == 1, f"op squeeze: axis {a} has size {ins[0].shape[a]}, not 1")
    return [TensorSpec([d for i, d in enumerate(ins[0].shape) if i not in axes], ins[0].dtype)]


@register("squeeze", inputs=1, attrs={"axis": AttrSpec("ints")}, infer=_infer_squeeze, category="squeeze")
def squeeze(x, axis):
    """Remove the listed size-1 axes."""
    return np.squeeze(x, tuple(axis))


def _infer_broadcast_to(ins, attrs):
    shape = attrs["shape"]
    s = ins[0].shape
    require(len(shape) >= len(s), f"op broadcast_to: cannot broadcast {s} to {Shape(shape)}")
    for d, t in zip(reversed(s), reversed(shape)):
        require(d == 1 or d == t, f"op broadcast_to: cannot broadcast {s} to {Shape(shape)}")
    return [TensorSpec(shape, ins[0].dtype)]


@register(
    "broadcast_to",
    inputs=1,
    attrs={"shape": AttrSpec("dims")},
    infer=_infer_broadcast_to,
    category="broadcast_to",
)
def broadcast_to(x, shape):
    """Broadcast x to ``shape`` (Array-API rules; result is a fresh array)."""
    return np.array(np.broadcast_to(x, shape))


def _infer_concat(ins, attrs):
    dt = same_dtype("concat", ins)
    r = ins[0].rank
    require(r >= 1, "op concat: inputs must have rank >= 1")
    a = norm_axis(attrs["axis"], r, "concat")
    out = list(ins[0].shape)
    for s in ins[1:]:
        require(s.rank == r, f"op concat: ranks differ ({r} vs {s.rank})")
        for i in range(r):
            if i == a:
                out[i] = out[i] + s.shape[i]
            else:
                out[i] = unify_dims(out[i], s.shape[i], f"op concat: axis {i}")
    return [TensorSpec(out, dt)]


@register(
    "concat",
    inputs=None,
    min_inputs=1,
    attrs={"axis": AttrSpec("axis", 0)},
    infer=_infer_concat,
    category="concat",
)
def concat(*xs, axis=0):
    """Join arrays along an existing axis; other dims must match."""
    return np.concatenate(xs, axis=axis)


def _infer_stack(ins, attrs):
    dt = same_dtype("stack", ins)
    r = ins[0].rank
    a = norm_axis(attrs["axis"], r + 1, "stack")
    out = list(ins[0].shape)
    for s in ins[1:]:
        require(s.rank == r, f"op stack: ranks differ ({r} vs {s.rank})")
        out = [unify_dims(x, y, f"op stack: axis {i}") for i, (x, y) in enumerate(zip(out, s.shape))]
    out.insert(a, len(ins))
    return [TensorSpec(out, dt)]


@register(
    "stack",
    inputs=None,
    min_inputs=1,
    attrs={"axis": AttrSpec("axis", 0)},
    infer=_infer_stack,
    category="stack",
)
def stack(*xs, axis=0):
    """Join same-shape arrays along a new axis."""
    return np.stack(xs, axis=axis)


def _infer_flip(ins, attrs):
    norm_axes(attrs["axis"], ins[0].rank, "flip")
    return [ins[0]]


@register("flip", inputs=1, attrs={"axis": AttrSpec("axes", None)}, infer=_infer_flip, category="flip")
def flip(x, axis=None):
    """Reverse the order of elements along the given axes (None: all)."""
    return np.flip(x, axis=axis).copy() if x.ndim else x.copy()


def _infer_repeat(ins, attrs):
    require(attrs["repeats"] >= 0, "op repeat: repeats must be >= 0")
    if attrs["axis"] is None:
        return [TensorSpec([ins[0].shape.size() * attrs["repeats"]], ins[0].dtype)]
    a = norm_axis(attrs["axis"], ins[0].rank, "repeat")
    s = list(ins[0].shape)
    s[a] = s[a] * attrs["repeats"]
    return [TensorSpec(s, ins[0].dtype)]


@register(
    "repeat",
    inputs=1,
    attrs={"repeats": AttrSpec("int"), "axis": AttrSpec("opt_scalar", None)},
    infer=_infer_repeat,
    category="repeat",
)
def repeat(x, repeats, axis=None):
    """Repeat each element ``repeats`` times along axis (None: of the flattened array),
    e.g. [a, b] -> [a, a, b, b] (numpy.repeat / torch.repeat_interleave)."""
    return np.repeat(x, repeats, axis=axis)


def _infer_tile(ins, attrs):
    reps = attrs["reps"]
    require(all(r >= 0 for r in reps), "op tile: reps must be >= 0")
    s = list(ins[0].shape)
    r = max(len(s), len(reps))
    s = [1] * (r - len(s)) + s
    reps = (1,) * (r - len(reps)) + tuple(reps)
    return [TensorSpec([d * k for d, k in zip(s, reps)], ins[0].dtype)]


@register("tile", inputs=1, attrs={"reps": AttrSpec("ints")}, infer=_infer_tile, category="tile")
def tile(x, reps):
    """Repeat the whole array reps[i] times along axis i (numpy.tile; shorter side padded with 1s)."""
    return np.tile(x, reps)


# ------------------------------------------------------------------ slicing


def _infer_slice(ins, attrs):
    x = ins[0]
    starts, stops, steps = attrs["starts"], attrs["stops"], attrs["steps"]
    require(
        len(starts) == len(stops) == len(steps) == x.rank,
        f"op slice: starts/stops/steps need one entry per axis ({x.rank})",
    )
    out = []
    for i, (a, b, s) in enumerate(zip(starts, stops, steps)):
        require(s >= 1, f"op slice: step must be >= 1 on axis {i} (the tracer uses flip for negative steps)")
        if s == 1:
            out.append(b - a)
        else:
            require(
                isinstance(a, int) and isinstance(b, int),
                f"op slice: step {s} needs static start/stop on axis {i}",
            )
            out.append(max(0, -(-(b - a) // s)))
        if isinstance(a, int) and isinstance(b, int):
            require(0 <= a <= b, f"op slice: need 0 <= start <= stop on axis {i}, got {a}:{b}")
        if isinstance(x.shape[i], int) and isinstance(b, int):
            require(b <= x.shape[i], f"op slice: stop {b} exceeds size {x.shape[i]} on axis {i}")
    return [TensorSpec(out, x.dtype)]


@register(
    "slice",
    inputs=1,
    attrs={"starts": AttrSpec("dims"), "stops": AttrSpec("dims"), "steps": AttrSpec("ints")},
    infer=_infer_slice,
    category="slice",
)
def slice_(x, starts, stops, steps):
    """x[starts[0]:stops[0]:steps[0], ...] with one normalised entry per axis:
    0 <= start <= stop <= size, step >= 1 (start/stop may be symbolic)."""
    return x[tuple(slice(a, b, s) for a, b, s in zip(starts, stops, steps))].copy()


def _infer_dynamic_slice(ins, attrs):
    x, starts = ins[0], ins[1:]
    sizes = attrs["sizes"]
    require(len(starts) == x.rank == len(sizes), f"op dynamic_slice: needs {x.rank} start indices and sizes")
    for s in starts:
        require(
            s.rank == 0 and s.dtype in INDEX_DTYPES,
            "op dynamic_slice: start indices must be int32/int64 scalars",
        )
    for i, (n, d) in enumerate(zip(sizes, x.shape)):
        if isinstance(n, int) and isinstance(d, int):
            require(n <= d, f"op dynamic_slice: size {n} exceeds dim {d} on axis {i}")
    return [TensorSpec(sizes, x.dtype)]


def _clamped_starts(starts, sizes, shape):
    return [int(min(max(int(s), 0), d - n)) for s, n, d in zip(starts, sizes, shape)]


@register(
    "dynamic_slice",
    inputs=None,
    min_inputs=1,
    attrs={"sizes": AttrSpec("dims")},
    infer=_infer_dynamic_slice,
    category="dynamic_slice",
)
def dynamic_slice(x, *starts, sizes):
    """x[s0:s0+sizes[0], ...] where each start (a runtime int scalar) is first clamped to
    [0, dim - size] (XLA semantics)."""
    st = _clamped_starts(starts, sizes, x.shape)
    return x[tuple(slice(a, a + n) for a, n in zip(st, sizes))].copy()


def _infer_dus(ins, attrs):
    x, u, starts = ins[0], ins[1], ins[2:]
    require(u.dtype == x.dtype, f"op dynamic_update_slice: update dtype {u.dtype} != operand dtype {x.dtype}")
    require(
        u.rank == x.rank and len(starts) == x.rank,
        f"op dynamic_update_slice: needs rank-{x.rank} update and {x.rank} starts",
    )
    for s in starts:
        require(
            s.rank == 0 and s.dtype in INDEX_DTYPES,
            "op dynamic_update_slice: start indices must be int32/int64 scalars",
        )
    return [x]


@register(
    "dynamic_update_slice", inputs=None, min_inputs=2, infer=_infer_dus, category="dynamic_update_slice"
)
def dynamic_update_slice(x, update, *starts):
    """A copy of x with x[s0:s0+u0, ...] = update; starts clamped to [0, dim - update_dim] (XLA)."""
    st = _clamped_starts(starts, update.shape, x.shape)
    out = x.copy()
    out[tuple(slice(a, a + n) for a, n in zip(st, update.shape))] = update
    return out


# ------------------------------------------------------------------ gather / scatter


def _infer_take(ins, attrs):
    x, idx = ins
    _check_index("take", idx)
    require(x.rank >= 1, "op take: x must have rank >= 1")
    a = norm_axis(attrs["axis"], x.rank, "take")
    return [TensorSpec(list(x.shape[:a]) + list(idx.shape) + list(x.shape[a + 1 :]), x.dtype)]


@register("take", inputs=2, attrs={"axis": AttrSpec("axis", 0)}, infer=_infer_take, category="take")
def take(x, indices, axis=0):
    """Gather along axis: out[..., j..., ...] = x[..., indices[j...], ...]; out shape is
    x.shape[:axis] + indices.shape + x.shape[axis+1:]. Indices in [0, n)."""
    return np.take(x, indices, axis=axis)


def _infer_tala(ins, attrs):
    x, idx = ins
    _check_index("take_along_axis", idx)
    a = norm_axis(attrs["axis"], x.rank, "take_along_axis")
    require(idx.rank == x.rank, f"op take_along_axis: indices rank {idx.rank} != x rank {x.rank}")
    for i in range(x.rank):
        if i != a:
            unify_dims(x.shape[i], idx.shape[i], f"op take_along_axis: axis {i}")
    return [TensorSpec(idx.shape, x.dtype)]


@register(
    "take_along_axis",
    inputs=2,
    attrs={"axis": AttrSpec("axis", -1)},
    infer=_infer_tala,
    category="take_along_axis",
)
def take_along_axis(x, indices, axis=-1):
    """out[i..., j, k...] = x[i..., indices[i..., j, k...], k...] (torch.gather); indices has x's rank
    and x's dims except along axis."""
    return np.take_along_axis(x, indices, axis=axis)


def _infer_pala(ins, attrs):
    x, idx, val = ins
    _check_index("put_along_axis", idx)
    require(val.dtype == x.dtype, f"op put_along_axis: values dtype {val.dtype} != x dtype {x.dtype}")
    a = norm_axis(attrs["axis"], x.rank, "put_along_axis")
    require(idx.rank == x.rank and val.rank == x.rank, "op put_along_axis: indices and values need x's rank")
    for i in range(x.rank):
        unify_dims(idx.shape[i], val.shape[i], f"op put_along_axis: indices/values axis {i}")
        if i != a:
            unify_dims(x.shape[i], idx.shape[i], f"op put_along_axis: axis {i}")
    return [x]


@register(
    "put_along_axis",
    inputs=3,
    attrs={"axis": AttrSpec("axis", -1)},
    infer=_infer_pala,
    category="put_along_axis",
)
def put_along_axis(x, indices, values, axis=-1):
    """A copy of x with x[i..., indices[i..., j, k...], k...] = values[i..., j, k...] (scatter,
    torch.scatter). With duplicate indices along axis the written value is unspecified unless the
    duplicates carry equal values."""
    out = x.copy()
    np.put_along_axis(out, indices, values, axis=axis)
    return out


# ------------------------------------------------------------------ sorting


def _infer_sort(name, out_dtype=None):
    def infer(ins, attrs):
        check_kind(name, ins[0].dtype, NUMERIC)
        require(ins[0].rank >= 1, f"op {name}: needs rank >= 1")
        norm_axis(attrs["axis"], ins[0].rank, name)
        return [TensorSpec(ins[0].shape, out_dtype or ins[0].dtype)]

    return infer


def _sort_keys(x, descending):
    """Stable order keys: nan sorts as the largest value."""
    if x.dtype.kind == "f" or x.dtype.name == "bfloat16":
        v = x.astype(np.float64)
        nan = np.isnan(v)
        v = np.where(nan, np.inf, v)
        if descending:
            return (-v, ~nan)
        return (v, nan)
    v = x.astype(np.int64)
    return (np.invert(v) if descending else v, np.zeros(x.shape, bool))


def _argsort(x, axis, descending):
    primary, secondary = _sort_keys(x, descending)
    xm = np.moveaxis(primary, axis, -1)
    sm = np.moveaxis(secondary, axis, -1)
    # lexsort sorts by last key first: primary value, then nan flag, then index (stable).
    idx = np.lexsort((sm, xm), axis=-1) if xm.size else np.zeros(xm.shape, np.int64)
    return np.moveaxis(idx, -1, axis).astype(np.int64)


@register(
    "argsort",
    inputs=1,
    attrs={"axis": AttrSpec("axis", -1), "descending": AttrSpec("bool", False)},
    infer=_infer_sort("argsort", DType.int64),
    category="sort",
)
def argsort(x, axis=-1, descending=False):
    """Stable argsort (int64): equal values keep their index order in both directions; nan sorts as
    larger than +inf (last ascending, first descending)."""
    return _argsort(x, axis, descending)


@register(
    "sort",
    inputs=1,
    attrs={"axis": AttrSpec("axis", -1), "descending": AttrSpec("bool", False)},
    infer=_infer_sort("sort"),
    category="sort",
)
def sort(x, axis=-1, descending=False):
    """Values in argsort order (nan larger than +inf)."""
    return np.take_along_axis(x, _argsort(x, axis, descending), axis=axis)


def _infer_top_k(ins, attrs):
    x = ins[0]
    check_kind("top_k", x.dtype, NUMERIC)
    require(x.rank >= 1, "op top_k: needs rank >= 1")
    k = attrs["k"]
    require(k >= 0, "op top_k: k must be >= 0")
    n = x.shape[-1]
    if isinstance(n, int):
        require(k <= n, f"op top_k: k={k} exceeds the last dimension {n}")
    s = list(x.shape[:-1]) + [k]
    return [TensorSpec(s, x.dtype), TensorSpec(s, DType.int64)]


@register("top_k", inputs=1, attrs={"k": AttrSpec("int")}, infer=_infer_top_k, category="top_k", outputs=2)
def top_k(x, k):
    """The k largest values along the last axis in descending order and their int64 indices;
    ties -> the lower index first; nan counts as the largest value."""
    idx = _argsort(x, -1, True)[..., :k]
    return np.take_along_axis(x, idx, axis=-1), idx
