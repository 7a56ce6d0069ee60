"""The TensorFlow backend: a graph becomes one ``tf.function`` with a symbolic input signature.

Symbolic dims are ``None`` in the ``input_signature``, so one concrete function serves
every size; inside, each symbol is read from ``tf.shape`` of an input and every
symbolic attribute is computed from those tensors. ``while_loop`` -> ``tf.while_loop``,
``cond`` -> ``tf.cond``. ``jit_compile=True`` compiles with XLA. ``export(path)`` writes a
SavedModel (to a temporary directory, then renamed).

Semantics that need care (spec/backends-tensorflow.md): uint32 is carried as int64 in
[0, 2**32) with masking (the signature itself is uint32); NaN propagation in max/min/maximum
is made explicit; sorts are stable two-pass (value, then nan flag) argsorts; float16/bfloat16
math runs in float32.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..ir.graph import Graph  # noqa: E402
from ..ir.ops import OPS  # noqa: E402
from ..ir.types import DType, IRError, SymDim, TensorSpec  # noqa: E402
from .base import Program, eval_dim, symbol_plan  # noqa: E402

NAME = "tensorflow"
MASK32 = 0xFFFFFFFF
TF_DTYPES = {DType.bool: tf.bool, DType.int32: tf.int32, DType.int64: tf.int64, DType.uint32: tf.int64,
             DType.float16: tf.float16, DType.bfloat16: tf.bfloat16, DType.float32: tf.float32,
             DType.float64: tf.float64}
SIG_DTYPES = {**TF_DTYPES, DType.uint32: tf.uint32}
LOW = (tf.float16, tf.bfloat16)


def _low(fn: Callable) -> Callable:
    def run(*xs: Any, **kw: Any) -> Any:
        dt = xs[0].dtype
        if dt in LOW:
            return tf.cast(fn(*[tf.cast(x, tf.float32) for x in xs], **kw), dt)
        return fn(*xs, **kw)
    return run


def _is_float(x: Any) -> bool:
    return x.dtype.is_floating


def _nanprop(fn: Callable) -> Callable:
    def run(x: Any, y: Any) -> Any:
        out = fn(x, y)
        if _is_float(x):
            nan = tf.math.is_nan(x) | tf.math.is_nan(y)
            out = tf.where(nan, tf.cast(float("nan"), x.dtype), out)
        return out
    return run


def _u32(out: Any, dt: DType) -> Any:
    return tf.bitwise.bitwise_and(out, tf.constant(MASK32, tf.int64)) if dt is DType.uint32 else out


# ---------------------------------------------------------------------------- sorting

def _argsort(x: Any, axis: int, descending: bool) -> Any:
    """Stable argsort, nan larger than +inf: sort by value, then stably by the nan flag."""
    rank = len(x.shape)
    axis = axis % rank
    perm = None
    if axis != rank - 1:
        perm = list(range(rank))
        perm[axis], perm[-1] = perm[-1], perm[axis]
        x = tf.transpose(x, perm)
    if _is_float(x):
        v = tf.cast(x, tf.float64)
        nan = tf.math.is_nan(v)
        v = tf.where(nan, tf.zeros_like(v), v)
        key1 = -v if descending else v
        key2 = tf.cast(~nan if descending else nan, tf.int32)
    else:
        v = tf.cast(x, tf.int64)
        key1 = tf.bitwise.invert(v) if descending else v
        key2 = None
    idx = tf.argsort(key1, axis=-1, stable=True)
    if key2 is not None:
        k2 = tf.gather(key2, idx, batch_dims=rank - 1)
        idx2 = tf.argsort(k2, axis=-1, stable=True)
        idx = tf.gather(idx, idx2, batch_dims=rank - 1)
    idx = tf.cast(idx, tf.int64)
    if perm is not None:
        idx = tf.transpose(idx, perm)
    return idx


def _take_along(x: Any, idx: Any, axis: int) -> Any:
    rank = len(x.shape)
    axis = axis % rank
    perm = None
    if axis != rank - 1:
        perm = list(range(rank))
        perm[axis], perm[-1] = perm[-1], perm[axis]
        x = tf.transpose(x, perm)
        idx = tf.transpose(idx, perm)
    out = tf.gather(x, tf.cast(idx, tf.int64), batch_dims=rank - 1)
    return tf.transpose(out, perm) if perm is not None else out


def _top_k(x: Any, k: int) -> tuple:
    idx = _argsort(x, -1, True)[..., :k]
    return _take_along(x, idx, -1), idx


def _argext(x: Any, axis: int, keepdims: bool, largest: bool) -> Any:
    if _is_float(x):
        v = tf.cast(x, tf.float64)
        nan = tf.math.is_nan(v)
        filled = tf.where(nan, tf.constant(-math.inf if largest else math.inf, tf.float64), v)
        best = tf.argmax(filled, axis=axis) if largest else tf.argmin(filled, axis=axis)
        first_nan = tf.argmax(tf.cast(nan, tf.int32), axis=axis)
        out = tf.where(tf.reduce_any(nan, axis=axis), first_nan, best)
    else:
        out = tf.argmax(x, axis=axis) if largest else tf.argmin(x, axis=axis)
    out = tf.cast(out, tf.int64)
    return tf.expand_dims(out, axis) if keepdims else out


# ---------------------------------------------------------------------------- other helpers

def _astype(x: Any, src: DType, dst: DType) -> Any:
    if dst is DType.bool:
        return tf.not_equal(x, tf.zeros_like(x))
    if src.is_floating and dst.is_integer:
        t = tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))
        t = tf.cast(tf.cast(t, tf.float64), tf.float64)
        if dst is DType.uint32:
            return tf.cast(tf.math.floormod(tf.math.sign(t) * tf.floor(tf.abs(t)), 2.0 ** 32), tf.int64)
        info = np.iinfo(dst.to_numpy())
        t = tf.clip_by_value(tf.math.sign(t) * tf.floor(tf.abs(t)), float(info.min), float(info.max))
        return tf.cast(t, TF_DTYPES[dst])
    if dst is DType.uint32:
        return tf.bitwise.bitwise_and(tf.cast(x, tf.int64), tf.constant(MASK32, tf.int64))
    if dst is DType.int32 and src in (DType.int64, DType.uint32):
        v = tf.bitwise.bitwise_and(tf.cast(x, tf.int64), tf.constant(MASK32, tf.int64))
        return tf.cast(tf.where(v >= 2 ** 31, v - 2 ** 32, v), tf.int32)
    return tf.cast(x, TF_DTYPES[dst])


def _reduce(fn: Callable, nan_prop: bool = False, acc_low: bool = True) -> Callable:
    def run(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        ax = list(range(len(x.shape))) if axis is None else list(axis)
        if not ax:
            return tf.identity(x)
        v = tf.cast(x, tf.float32) if (acc_low and x.dtype in LOW) else x
        out = fn(v, axis=ax, keepdims=keepdims)
        if nan_prop and _is_float(x):
            out = tf.where(tf.reduce_any(tf.math.is_nan(v), axis=ax, keepdims=keepdims),
                           tf.cast(float("nan"), out.dtype), out)
        return tf.cast(out, x.dtype)
    return run


def _logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    ax = list(range(len(x.shape))) if axis is None else list(axis)
    if not ax:
        return tf.identity(x)
    v = tf.cast(x, tf.float32) if x.dtype in LOW else x
    m = tf.reduce_max(v, axis=ax, keepdims=True)
    m = tf.where(tf.math.is_finite(m), m, tf.zeros_like(m))
    s = tf.math.log(tf.reduce_sum(tf.exp(v - m), axis=ax, keepdims=True)) + m
    s = tf.where(tf.reduce_any(tf.math.is_nan(v), axis=ax, keepdims=True), tf.cast(float("nan"), s.dtype), s)
    if not keepdims:
        s = tf.squeeze(s, axis=ax)
    return tf.cast(s, x.dtype)


def _softmax(x: Any, axis: int, log: bool) -> Any:
    v = tf.cast(x, tf.float32) if x.dtype in LOW else x
    m = tf.reduce_max(v, axis=axis, keepdims=True)
    m = tf.where(tf.math.is_finite(m), m, tf.zeros_like(m))
    s = v - m
    if log:
        out = s - tf.math.log(tf.reduce_sum(tf.exp(s), axis=axis, keepdims=True))
    else:
        e = tf.exp(s)
        out = e / tf.reduce_sum(e, axis=axis, keepdims=True)
    return tf.cast(out, x.dtype)


def _safe_div(y: Any) -> Any:
    return tf.where(tf.equal(y, tf.zeros_like(y)), tf.ones_like(y), y)


def _shift(fn: Callable, bits: int) -> Callable:
    def run(x: Any, y: Any) -> Any:
        return fn(x, tf.clip_by_value(y, tf.cast(0, y.dtype), tf.cast(bits - 1, y.dtype)))
    return run


def _clip(x: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    y = x
    if min is not None:
        y = _nanprop(tf.maximum)(y, tf.cast(min, x.dtype) + tf.zeros_like(x))
    if max is not None:
        y = _nanprop(tf.minimum)(y, tf.cast(max, x.dtype) + tf.zeros_like(x))
    return y


def _bitwise(fn_int: Callable, fn_bool: Callable) -> Callable:
    return lambda x, y: fn_bool(x, y) if x.dtype == tf.bool else fn_int(x, y)


def _matmul(a: Any, b: Any) -> Any:
    va, vb = len(a.shape) == 1, len(b.shape) == 1
    if va:
        a = a[None, :]
    if vb:
        b = b[:, None]
    if a.dtype in (tf.int64, tf.int32):
        out = tf.cast(tf.linalg.matmul(tf.cast(a, tf.float64), tf.cast(b, tf.float64)), a.dtype)
    else:
        out = _low(tf.linalg.matmul)(a, b)
    if va:
        out = out[..., 0, :]
    if vb:
        out = out[..., 0]
    return out


def _einsum(*xs: Any, subscripts: str) -> Any:
    if xs[0].dtype in (tf.int64, tf.int32):
        return tf.cast(tf.einsum(subscripts, *[tf.cast(x, tf.float64) for x in xs]), xs[0].dtype)
    return _low(lambda *v: tf.einsum(subscripts, *v))(*xs)


def _dyn_starts(starts: tuple, sizes: tuple, shape: Any) -> list:
    return [tf.clip_by_value(tf.cast(s, tf.int64), tf.constant(0, tf.int64), tf.cast(shape[i], tf.int64) - tf.cast(n, tf.int64))
            for i, (s, n) in enumerate(zip(starts, sizes))]


def _dynamic_slice(x: Any, *starts: Any, sizes: tuple) -> Any:
    st = _dyn_starts(starts, sizes, tf.shape(x, out_type=tf.int64))
    return tf.slice(x, tf.stack(st), tf.stack([tf.cast(n, tf.int64) for n in sizes]))


def _dynamic_update_slice(x: Any, u: Any, *starts: Any) -> Any:
    shape = tf.shape(x, out_type=tf.int64)
    ushape = tf.shape(u, out_type=tf.int64)
    st = _dyn_starts(starts, [ushape[i] for i in range(len(u.shape))], shape)
    paddings = tf.stack([tf.stack([st[i], shape[i] - st[i] - ushape[i]]) for i in range(len(u.shape))])
    padded = tf.pad(u, paddings)
    mask = tf.pad(tf.ones_like(u, dtype=tf.bool), paddings)
    return tf.where(mask, padded, x)


def _put_along_axis(x: Any, idx: Any, v: Any, axis: int = -1) -> Any:
    rank = len(x.shape)
    axis = axis % rank
    ishape = tf.shape(idx, out_type=tf.int64)
    grids = tf.meshgrid(*[tf.range(ishape[i]) for i in range(rank)], indexing="ij")
    grids[axis] = tf.cast(idx, tf.int64)
    indices = tf.stack(grids, axis=-1)
    return tf.tensor_scatter_nd_update(x, indices, v)


def _take(x: Any, idx: Any, axis: int = 0) -> Any:
    return tf.gather(x, tf.cast(idx, tf.int64), axis=axis)


def _full(shape: tuple, fill_value: Any, dtype: DType) -> Any:
    v = np.array(fill_value)
    if v.dtype.kind in "iu" and dtype.is_integer:
        v = v.astype(np.int64)
        if dtype is DType.uint32:
            v = v & MASK32
    v = v.astype(np.float32 if dtype is DType.bfloat16 else (np.int64 if dtype is DType.uint32 else dtype.to_numpy()))
    return tf.fill(tf.stack([tf.cast(d, tf.int64) for d in shape]) if shape else tf.constant([], tf.int64),
                   tf.cast(tf.constant(v), TF_DTYPES[dtype]))


def _arange(start: Any, stop: Any, step: int, dtype: DType) -> Any:
    r = tf.range(tf.cast(start, tf.int64), tf.cast(stop, tf.int64), tf.constant(step, tf.int64))
    return r if dtype is DType.int64 else _astype(r, DType.int64, dtype)


def _slice(x: Any, starts: tuple, stops: tuple, steps: tuple) -> Any:
    if not starts:
        return tf.identity(x)
    return x[tuple(slice(a, b, s) for a, b, s in zip(starts, stops, steps))]


def _repeat(x: Any, repeats: int, axis: Any = None) -> Any:
    if axis is None:
        return tf.repeat(tf.reshape(x, [-1]), repeats)
    return tf.repeat(x, repeats, axis=axis)


def _tile(x: Any, reps: tuple) -> Any:
    rank = len(x.shape)
    r = max(rank, len(reps))
    if r > rank:
        x = tf.reshape(x, tf.concat([tf.ones([r - rank], tf.int32), tf.shape(x)], axis=0))
    reps = (1,) * (r - len(reps)) + tuple(reps)
    return tf.tile(x, reps)


def _sign(x: Any) -> Any:
    if _is_float(x):
        return tf.where(tf.math.is_nan(x), x, tf.sign(x))
    return tf.sign(x)


def _pow(x: Any, y: Any) -> Any:
    if not _is_float(x):
        return tf.pow(x, tf.maximum(y, tf.zeros_like(y)))
    return _low(tf.pow)(x, y)


def _rms_norm(x: Any, w: Any, eps: float = 1e-6) -> Any:
    return _low(lambda v, ww: v * tf.math.rsqrt(tf.reduce_mean(v * v, axis=-1, keepdims=True) + eps) * ww)(x, w)


def _layer_norm(x: Any, w: Any, b: Any, eps: float = 1e-5) -> Any:
    def f(v: Any, ww: Any, bb: Any) -> Any:
        mu = tf.reduce_mean(v, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.square(v - mu), axis=-1, keepdims=True)
        return (v - mu) / tf.sqrt(var + eps) * ww + bb
    return _low(f)(x, w, b)


def _gelu(x: Any, approximate: str = "none") -> Any:
    return _low(lambda v: tf.nn.gelu(v, approximate=(approximate == "tanh")))(x)


def _abs(x: Any) -> Any:
    return tf.abs(x)


LOWERINGS: dict[str, Callable] = {
    "abs": _abs, "negative": tf.negative, "sign": _sign, "exp": _low(tf.exp), "log": _low(tf.math.log),
    "log1p": _low(tf.math.log1p), "sqrt": _low(tf.sqrt), "rsqrt": _low(tf.math.rsqrt), "tanh": _low(tf.tanh),
    "erf": _low(tf.math.erf), "sin": _low(tf.sin), "cos": _low(tf.cos), "floor": tf.floor, "ceil": tf.math.ceil,
    "sigmoid": _low(tf.sigmoid), "silu": _low(lambda v: v * tf.sigmoid(v)), "isnan": None, "isinf": None,
    "isfinite": None, "logical_not": tf.logical_not, "bitwise_invert": None, "gelu": _gelu,
    "add": tf.add, "subtract": tf.subtract, "multiply": tf.multiply, "divide": _low(tf.divide),
    "floor_divide": lambda x, y: tf.math.floordiv(x, _safe_div(y)) if not _is_float(x) else _low(tf.math.floordiv)(x, y),
    "remainder": lambda x, y: tf.math.floormod(x, _safe_div(y)) if not _is_float(x) else _low(tf.math.floormod)(x, y),
    "pow": _pow, "maximum": _nanprop(tf.maximum), "minimum": _nanprop(tf.minimum), "equal": tf.equal,
    "not_equal": tf.not_equal, "less": tf.less, "less_equal": tf.less_equal, "greater": tf.greater,
    "greater_equal": tf.greater_equal, "logical_and": tf.logical_and, "logical_or": tf.logical_or,
    "logical_xor": tf.math.logical_xor,
    "bitwise_and": _bitwise(tf.bitwise.bitwise_and, tf.logical_and),
    "bitwise_or": _bitwise(tf.bitwise.bitwise_or, tf.logical_or),
    "bitwise_xor": _bitwise(tf.bitwise.bitwise_xor, tf.math.logical_xor),
    "bitwise_left_shift": None, "bitwise_right_shift": None,
    "where": tf.where, "clip": _clip, "astype": None,
    "sum": _reduce(tf.reduce_sum), "prod": _reduce(tf.reduce_prod), "mean": _reduce(tf.reduce_mean),
    "max": _reduce(tf.reduce_max, nan_prop=True, acc_low=False), "min": _reduce(tf.reduce_min, nan_prop=True, acc_low=False),
    "any": _reduce(tf.reduce_any, acc_low=False), "all": _reduce(tf.reduce_all, acc_low=False), "logsumexp": _logsumexp,
    "argmax": lambda x, axis=-1, keepdims=False: _argext(x, axis, keepdims, True),
    "argmin": lambda x, axis=-1, keepdims=False: _argext(x, axis, keepdims, False),
    "cumulative_sum": lambda x, axis=-1: (tf.cast(tf.cumsum(tf.cast(x, tf.float32), axis=axis), x.dtype)
                                          if x.dtype in LOW else tf.cumsum(x, axis=axis)),
    "matmul": _matmul, "einsum": _einsum, "full": _full, "arange": _arange,
    "reshape": lambda x, shape: tf.reshape(x, tf.stack([tf.cast(d, tf.int64) for d in shape]) if shape
                                           else tf.constant([], tf.int64)),
    "permute_dims": lambda x, axes: tf.transpose(x, axes), "expand_dims": lambda x, axis: tf.expand_dims(x, axis),
    "squeeze": lambda x, axis: tf.squeeze(x, axis=list(axis)) if axis else tf.identity(x),
    "broadcast_to": lambda x, shape: tf.broadcast_to(x, tf.stack([tf.cast(d, tf.int64) for d in shape])
                                                     if shape else tf.constant([], tf.int64)),
    "concat": lambda *xs, axis=0: tf.concat(list(xs), axis=axis), "stack": lambda *xs, axis=0: tf.stack(list(xs), axis=axis),
    "flip": lambda x, axis=None: tf.reverse(x, list(range(len(x.shape))) if axis is None else list(axis)),
    "repeat": _repeat, "tile": _tile, "slice": _slice, "dynamic_slice": _dynamic_slice,
    "dynamic_update_slice": _dynamic_update_slice, "take": _take,
    "take_along_axis": lambda x, idx, axis=-1: _take_along(x, idx, axis), "put_along_axis": _put_along_axis,
    "sort": lambda x, axis=-1, descending=False: _take_along(x, _argsort(x, axis, descending), axis),
    "argsort": lambda x, axis=-1, descending=False: _argsort(x, axis, descending), "top_k": _top_k,
    "softmax": lambda x, axis=-1: _softmax(x, axis, False), "log_softmax": lambda x, axis=-1: _softmax(x, axis, True),
    "rms_norm": _rms_norm, "layer_norm": _layer_norm, "while_loop": "tf.while_loop", "cond": "tf.cond",
}


def _apply(node: Any, ins: list, attrs: dict) -> Any:
    """Dtype-dependent ops (their IR input dtype decides the TF code)."""
    op = node.op
    src = node.inputs[0].dtype if node.inputs else None
    if op in ("isnan", "isinf", "isfinite"):
        x = ins[0]
        if not _is_float(x):
            return tf.fill(tf.shape(x), op == "isfinite")
        return {"isnan": tf.math.is_nan, "isinf": tf.math.is_inf, "isfinite": tf.math.is_finite}[op](x)
    if op == "bitwise_invert":
        return tf.logical_not(ins[0]) if src is DType.bool else tf.bitwise.invert(ins[0])
    if op in ("bitwise_left_shift", "bitwise_right_shift"):
        bits = 32 if src in (DType.int32, DType.uint32) else 64
        fn = tf.bitwise.left_shift if op == "bitwise_left_shift" else tf.bitwise.right_shift
        return _shift(fn, bits)(*ins)
    if op == "astype":
        return _astype(ins[0], src, attrs["dtype"])
    if op == "abs" and src is DType.uint32:
        return tf.identity(ins[0])
    return LOWERINGS[op](*ins, **attrs)


U32_MASKED = {"add", "subtract", "multiply", "negative", "bitwise_invert", "bitwise_left_shift", "pow", "sum",
              "prod", "cumulative_sum", "matmul", "einsum"}


def run_graph(graph: Graph, args: list, env: dict) -> list:
    vals: dict = dict(zip(graph.inputs, args))
    for v, arr in graph.constants.items():
        vals[v] = _const(arr, v.dtype)
    for node in graph.nodes:
        ins = [vals[v] for v in node.inputs]
        if node.op == "while_loop":
            n = node.attrs["num_state"]
            cap = ins[n:]
            cg, bg = node.subgraphs["cond"], node.subgraphs["body"]
            out = tf.while_loop(lambda *s: run_graph(cg, list(s) + cap, env)[0],
                                lambda *s: tuple(run_graph(bg, list(s) + cap, env)), tuple(ins[:n]))
        elif node.op == "cond":
            tg, eg = node.subgraphs["then"], node.subgraphs["else"]
            ops = ins[1:]
            out = tf.cond(ins[0], lambda: tuple(run_graph(tg, list(ops), env)),
                          lambda: tuple(run_graph(eg, list(ops), env)))
        else:
            attrs = dict(node.attrs)
            for key, spec in OPS[node.op].attrs.items():
                if spec.kind == "dim":
                    attrs[key] = eval_dim(attrs[key], env)
                elif spec.kind == "dims":
                    attrs[key] = tuple(eval_dim(d, env) for d in attrs[key])
            out = _apply(node, ins, attrs)
            if node.outputs and node.outputs[0].dtype is DType.uint32 and node.op in U32_MASKED:
                out = _u32(out, DType.uint32)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for v, o in zip(node.outputs, outs):
            vals[v] = o
    return [vals[v] for v in graph.outputs]


def _const(arr: np.ndarray, dt: DType) -> Any:
    if dt is DType.uint32:
        return tf.constant(arr.astype(np.int64))
    if dt is DType.bfloat16:
        return tf.cast(tf.constant(arr.astype(np.float32)), tf.bfloat16)
    return tf.constant(arr)


class TFProgram(Program):
    backend = NAME

    def __init__(self, graph: Graph, jit_compile: bool = False):
        super().__init__(graph)
        plan = symbol_plan(graph.input_specs)
        self.signature = [tf.TensorSpec([d if isinstance(d, int) else None for d in s.shape], SIG_DTYPES[s.dtype],
                                        name=_tf_name(n)) for s, n in zip(self.input_specs, self.input_names)]
        specs = self.input_specs
        out_specs = self.output_specs

        def fn(*xs: Any) -> tuple:
            xs = [tf.cast(x, tf.int64) if s.dtype is DType.uint32 else x for x, s in zip(xs, specs)]
            env: dict = {}
            for s, i, ax, rest in plan:
                size = tf.shape(xs[i], out_type=tf.int64)[ax]
                env[s] = size if (isinstance(rest, int) and rest == 0) else size - eval_dim(rest, env)
            outs = run_graph(graph, list(xs), env)
            return tuple(tf.cast(o, tf.uint32) if s.dtype is DType.uint32 else o for o, s in zip(outs, out_specs))

        self.fn = tf.function(fn, input_signature=self.signature, jit_compile=jit_compile, autograph=False)

    def _is_native(self, x: Any) -> bool:
        return isinstance(x, (tf.Tensor, tf.Variable))

    def _native_dtype(self, x: Any) -> DType:
        return DType(x.dtype.name)

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        if spec.dtype is DType.bfloat16:
            return tf.cast(tf.constant(x.astype(np.float32)), tf.bfloat16)
        return tf.constant(x)

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        if spec.dtype is DType.bfloat16:
            return tf.cast(x, tf.float32).numpy().astype(spec.dtype.to_numpy())
        return np.asarray(x.numpy())

    def _run(self, args: list, env: dict) -> list:
        return list(self.fn(*args))

    def export(self, path: str) -> str:
        """A SavedModel directory at ``path`` (written to a temporary directory, then renamed)."""
        module = tf.Module()
        module.fn = self.fn
        path = os.path.abspath(os.fspath(path))
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-savedmodel-")
        try:
            tf.saved_model.save(module, tmp, signatures={"serving_default": self.fn.get_concrete_function()})
            os.chmod(tmp, 0o755)
            if os.path.exists(path):
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp)
        return path


def _tf_name(name: str) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "x"


def lower(graph: Graph, jit_compile: bool = False, **options: Any) -> TFProgram:
    if options:
        raise IRError(f"the tensorflow backend takes the option jit_compile=True/False only, got {sorted(options)}")
    graph.check()
    return TFProgram(graph, jit_compile=jit_compile)
