"""Tracing: an Array-API namespace whose arrays record IR nodes.

``trace(fn, *specs)`` calls ``fn`` with :class:`TracedArray` arguments and
returns the recorded ``Graph``.  Code written as ``xp = array_namespace(x)``
runs unchanged on traced arrays, numpy arrays (eagerly) and, through
array-api-compat, on framework arrays.

Dtype promotion done by the tracer (IR ops themselves are monomorphic):
- Python scalars are weak: they take the array's dtype, except a Python float
  with an integer/bool array, which gives float32;
- bool < integers < floats; int32+int64 -> int64, uint32 with a signed int ->
  int64; float16+bfloat16 -> float32, otherwise the wider float;
- ``/`` of two integer arrays gives float32 (our default float).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .graph import Graph, Node, Value
from .ops import check_attrs, get_op, infer_node
from .types import DType, IRError, Shape, SymDim, TensorSpec, as_dtype, from_numpy_dtype

_FLOAT_RANK = {DType.float16: 1, DType.bfloat16: 1, DType.float32: 2, DType.float64: 3}
_INT_RANK = {DType.int32: 1, DType.uint32: 1, DType.int64: 2}


class Builder:
    """Records one (sub)graph. Builders nest for control-flow bodies."""

    def __init__(self, name: str, parent: "Builder | None" = None):
        self.name = name
        self.parent = parent
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.constants: dict[Value, np.ndarray] = {}
        self.captures: dict[Value, Value] = {}  # outer value -> local input
        self.owned: set[Value] = set()
        self._const_cache: dict = {}

    def add_input(self, spec: TensorSpec, name: str | None = None) -> Value:
        v = Value(spec.with_name(None), name)
        self.inputs.append(v)
        self.owned.add(v)
        return v

    def constant(self, arr: np.ndarray, name: str | None = None) -> Value:
        arr = np.asarray(arr)
        key = None
        if arr.size <= 16 and name is None:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._const_cache:
                return self._const_cache[key]
        v = Value(
            TensorSpec(
                arr.shape, from_numpy_dtype(arr.dtype) if arr.dtype.name != "bfloat16" else DType.bfloat16
            ),
            name,
        )
        self.constants[v] = arr
        self.owned.add(v)
        if key is not None:
            self._const_cache[key] = v
        return v

    def local(self, v: Value) -> Value:
        """The value as seen inside this builder (capturing it from an enclosing one if needed)."""
        if v in self.owned:
            return v
        if v in self.captures:
            return self.captures[v]
        if self.parent is None:
            raise IRError("a traced array from another trace was used here; pass it as an input instead")
        self.parent.local(v)  # make sure every enclosing builder sees it too
        inner = Value(v.spec, None)
        self.captures[v] = inner
        self.owned.add(inner)
        return inner

    def graph(
        self, outputs: list[Value], output_names: list[str] | None = None, extra_inputs: Sequence[Value] = ()
    ) -> Graph:
        return Graph(
            self.name,
            list(self.inputs) + list(extra_inputs),
            outputs,
            list(self.nodes),
            dict(self.constants),
            list(output_names or []),
        )


class _TraceState(threading.local):
    """The builders being traced into, innermost last: one stack per thread, so threads that
    trace at the same time never see each other's arrays."""

    def __init__(self) -> None:
        self.stack: list[Builder] = []


_STATE = _TraceState()


def current_builder() -> Builder | None:
    """The innermost builder of this thread's trace, or None outside tracing."""
    stack = _STATE.stack
    return stack[-1] if stack else None


@contextlib.contextmanager
def building(b: Builder) -> Iterator[Builder]:
    """Record ops into ``b`` (this thread only) for the duration of the block."""
    _STATE.stack.append(b)
    try:
        yield b
    finally:
        _STATE.stack.pop()


_NAMESPACE: ModuleType | None = None


def register_namespace(module: ModuleType) -> None:
    """Called once by :mod:`tensorweave.ir.namespace` (which builds on this module) so that
    ``TracedArray.__array_namespace__`` can return it without importing upward."""
    global _NAMESPACE
    _NAMESPACE = module


class TracedArray:
    """An array being traced: a Value plus the Array-API surface."""

    __slots__ = ("value", "builder")
    __array_priority__ = 1000

    def __init__(self, value: Value, builder: Builder):
        self.value = value
        self.builder = builder

    # ---------------------------------------------------------------- metadata
    @property
    def shape(self) -> Shape:
        return self.value.spec.shape

    @property
    def dtype(self) -> DType:
        return self.value.spec.dtype

    @property
    def ndim(self) -> int:
        return self.value.spec.rank

    @property
    def size(self):
        return self.shape.size()

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def T(self) -> "TracedArray":
        if self.ndim != 2:
            raise IRError(f".T needs a 2-D array, got rank {self.ndim}; use permute_dims")
        return permute_dims(self, (1, 0))

    @property
    def mT(self) -> "TracedArray":
        axes = list(range(self.ndim))
        axes[-2], axes[-1] = axes[-1], axes[-2]
        return permute_dims(self, tuple(axes))

    def __array_namespace__(self, api_version: str | None = None):
        if _NAMESPACE is None:  # only when tensorweave.ir.trace is imported on its own
            raise IRError("the IR namespace is not loaded; import tensorweave.ir first")
        return _NAMESPACE

    def __repr__(self) -> str:
        return f"TracedArray({self.value.spec})"

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a 0-d array")
        d = self.shape[0]
        if isinstance(d, SymDim):
            raise IRError(f"len() of an array whose first dim is symbolic ({d}); use .shape[0]")
        return d

    def __bool__(self) -> bool:
        raise IRError(
            "the truth value of a traced array is unknown while tracing (data-dependent Python "
            "control flow); use tensorweave.ir.cond / while_loop or xp.where"
        )

    def __int__(self) -> int:
        raise IRError("int() of a traced array is unknown while tracing; keep it an array")

    __float__ = __int__
    __index__ = __int__

    def __iter__(self):
        raise IRError("iterating over a traced array is not supported; index it or use take")

    def __array__(self, *a, **k):
        raise IRError("a traced array cannot be converted to numpy while tracing")

    def astype(self, dtype: Any) -> "TracedArray":
        return astype(self, dtype)

    def __setitem__(self, key, value):
        raise IRError("arrays are immutable in the IR; use xp.where, put_along_axis or dynamic_update_slice")

    def __getitem__(self, key: Any) -> "TracedArray":
        return getitem(self, key)

    # ---------------------------------------------------------------- operators
    def __add__(self, o):
        return binary_op("add", self, o)

    def __radd__(self, o):
        return binary_op("add", o, self)

    def __sub__(self, o):
        return binary_op("subtract", self, o)

    def __rsub__(self, o):
        return binary_op("subtract", o, self)

    def __mul__(self, o):
        return binary_op("multiply", self, o)

    def __rmul__(self, o):
        return binary_op("multiply", o, self)

    def __truediv__(self, o):
        return divide(self, o)

    def __rtruediv__(self, o):
        return divide(o, self)

    def __floordiv__(self, o):
        return binary_op("floor_divide", self, o)

    def __rfloordiv__(self, o):
        return binary_op("floor_divide", o, self)

    def __mod__(self, o):
        return binary_op("remainder", self, o)

    def __rmod__(self, o):
        return binary_op("remainder", o, self)

    def __pow__(self, o):
        return binary_op("pow", self, o)

    def __rpow__(self, o):
        return binary_op("pow", o, self)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(o, self)

    def __and__(self, o):
        return binary_op("logical_and" if _is_bool(self, o) else "bitwise_and", self, o)

    def __rand__(self, o):
        return self.__and__(o)

    def __or__(self, o):
        return binary_op("logical_or" if _is_bool(self, o) else "bitwise_or", self, o)

    def __ror__(self, o):
        return self.__or__(o)

    def __xor__(self, o):
        return binary_op("logical_xor" if _is_bool(self, o) else "bitwise_xor", self, o)

    def __rxor__(self, o):
        return self.__xor__(o)

    def __lshift__(self, o):
        return binary_op("bitwise_left_shift", self, o)

    def __rlshift__(self, o):
        return binary_op("bitwise_left_shift", o, self)

    def __rshift__(self, o):
        return binary_op("bitwise_right_shift", self, o)

    def __rrshift__(self, o):
        return binary_op("bitwise_right_shift", o, self)

    def __eq__(self, o):
        return binary_op("equal", self, o)  # type: ignore[override]

    def __ne__(self, o):
        return binary_op("not_equal", self, o)  # type: ignore[override]

    def __lt__(self, o):
        return binary_op("less", self, o)

    def __le__(self, o):
        return binary_op("less_equal", self, o)

    def __gt__(self, o):
        return binary_op("greater", self, o)

    def __ge__(self, o):
        return binary_op("greater_equal", self, o)

    def __neg__(self):
        return apply("negative", self)

    def __pos__(self):
        return self

    def __abs__(self):
        return apply("abs", self)

    def __invert__(self):
        return apply("logical_not" if self.dtype is DType.bool else "bitwise_invert", self)

    __hash__ = object.__hash__


def _is_bool(a: Any, b: Any) -> bool:
    def isb(x):
        return (isinstance(x, TracedArray) and x.dtype is DType.bool) or isinstance(x, (bool, np.bool_))

    return isb(a) and isb(b)


# -------------------------------------------------------------------- emitting nodes


def _builder_for(*xs: Any) -> Builder:
    b = current_builder()
    if b is None:
        raise IRError("no active trace; call this inside tensorweave.ir.trace(...)")
    return b


def emit(
    op: str, inputs: Sequence[Any], attrs: dict | None = None, subgraphs: dict[str, Graph] | None = None
) -> list[TracedArray]:
    """Append one node to the active builder; returns its outputs as traced arrays."""
    b = _builder_for(*inputs)
    opdef = get_op(op)
    vals = [b.local(to_value(x, b)) for x in inputs]
    attrs = check_attrs(opdef, attrs or {})
    specs = infer_node(opdef, [v.spec for v in vals], attrs, subgraphs)
    outs = [Value(s.with_name(None)) for s in specs]
    b.nodes.append(Node(op, vals, outs, attrs, dict(subgraphs or {})))
    b.owned.update(outs)
    return [TracedArray(o, b) for o in outs]


def apply(op: str, *inputs: Any, **attrs: Any) -> TracedArray:
    return emit(op, inputs, attrs)[0]


def to_value(x: Any, b: Builder, dtype: DType | None = None) -> Value:
    if isinstance(x, TracedArray):
        return x.value
    arr = literal(x, dtype)
    return b.constant(arr)


def literal(x: Any, dtype: DType | None) -> np.ndarray:
    if isinstance(x, SymDim):
        raise IRError(
            f"the symbolic dimension {x} cannot be used as an array value; "
            "use xp.arange or a shape-dependent op"
        )
    if dtype is not None:
        return np.asarray(x, dtype=dtype.to_numpy())
    arr = np.asarray(x)
    if arr.dtype == np.float64 and not isinstance(x, np.ndarray):
        arr = arr.astype(np.float32)
    if arr.dtype.kind in "iu" and not isinstance(x, np.ndarray) and arr.dtype != np.uint32:
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "U" or arr.dtype == object:
        raise IRError(f"cannot use {x!r} as an array value")
    return arr


def constant(x: Any, dtype: Any = None, name: str | None = None) -> TracedArray:
    b = _builder_for()
    arr = literal(x, as_dtype(dtype) if dtype is not None else None)
    return TracedArray(b.constant(arr, name), b)


# -------------------------------------------------------------------- promotion


def result_type(*xs: Any) -> DType:
    arrays = [
        x.dtype if isinstance(x, TracedArray) else as_dtype(x)
        for x in xs
        if isinstance(x, (TracedArray, DType, np.dtype))
    ]
    if not arrays:
        raise IRError("result_type needs at least one array or dtype")
    dt = arrays[0]
    for other in arrays[1:]:
        dt = _promote2(dt, other)
    return dt


def _promote2(a: DType, b: DType) -> DType:
    if a == b:
        return a
    if a.is_bool:
        return b
    if b.is_bool:
        return a
    if a.is_floating and b.is_floating:
        if {a, b} == {DType.float16, DType.bfloat16}:
            return DType.float32
        return a if _FLOAT_RANK[a] >= _FLOAT_RANK[b] else b
    if a.is_floating:
        return a
    if b.is_floating:
        return b
    if DType.uint32 in (a, b):
        return DType.int64
    return a if _INT_RANK[a] >= _INT_RANK[b] else b


def _weak_dtype(array_dt: DType, scalar: Any) -> DType:
    if isinstance(scalar, (bool, np.bool_)):
        return array_dt
    if isinstance(scalar, (int, np.integer)):
        return array_dt if not array_dt.is_bool else DType.int64
    if isinstance(scalar, (float, np.floating)):
        return array_dt if array_dt.is_floating else DType.float32
    raise IRError(f"cannot combine a traced array with {type(scalar).__name__} {scalar!r}")


def promote(*xs: Any) -> list[Any]:
    """Cast traced arrays / literals to one common dtype (see the module docstring)."""
    arrays = [x for x in xs if isinstance(x, TracedArray)]
    others = [x for x in xs if not isinstance(x, TracedArray)]
    if arrays:
        dt = result_type(*arrays)
        for s in others:
            if isinstance(s, np.ndarray):
                dt = _promote2(dt, from_numpy_dtype(s.dtype))
            else:
                dt = _weak_dtype(dt, s)
    else:
        dt = from_numpy_dtype(np.asarray(others[0]).dtype)
    out = []
    for x in xs:
        if isinstance(x, TracedArray):
            out.append(x if x.dtype == dt else astype(x, dt))
        else:
            out.append(constant(np.asarray(x).astype(dt.to_numpy()) if isinstance(x, np.ndarray) else x, dt))
    return out


def binary_op(op: str, a: Any, b: Any) -> TracedArray:
    a, b = promote(a, b)
    return apply(op, a, b)


def divide(a: Any, b: Any) -> TracedArray:
    a, b = promote(a, b)
    if not a.dtype.is_floating:
        a, b = astype(a, DType.float32), astype(b, DType.float32)
    return apply("divide", a, b)


def astype(x: Any, dtype: Any, copy: bool = True) -> TracedArray:
    dt = as_dtype(dtype)
    if not isinstance(x, TracedArray):
        return constant(x, dt)
    if x.dtype == dt:
        return x
    return apply("astype", x, dtype=dt)


def matmul(a: Any, b: Any) -> TracedArray:
    a, b = promote(a, b)
    return apply("matmul", a, b)


def permute_dims(x: TracedArray, axes: Sequence[int]) -> TracedArray:
    r = x.ndim
    return apply("permute_dims", x, axes=tuple(a % r for a in axes))


# -------------------------------------------------------------------- indexing


def _norm_index(i: int, d: Any, axis: int) -> Any:
    if i < 0:
        i = d + i
        if isinstance(i, int) and i < 0:
            raise IRError(f"index {i - d} is out of bounds for axis {axis} with size {d}")
    elif isinstance(d, int) and i >= d:
        raise IRError(f"index {i} is out of bounds for axis {axis} with size {d}")
    return i


def _clamp_bound(v: Any, d: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, SymDim):
        return v
    if v < 0:
        if isinstance(d, int):
            return max(d + v, 0)
        return d + v
    if isinstance(d, int):
        return min(v, d)
    return v


def getitem(x: TracedArray, key: Any) -> TracedArray:
    """Basic indexing (ints, slices, None, Ellipsis) plus one integer-array index (take)."""
    if not isinstance(key, tuple):
        key = (key,)
    n_ell = sum(k is Ellipsis for k in key)
    if n_ell > 1:
        raise IRError("an index can only have a single ellipsis ('...')")
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > x.ndim:
        raise IRError(f"too many indices for an array of rank {x.ndim}")
    if n_ell:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (x.ndim - n_real) + key[i + 1 :]
    else:
        key = key + (slice(None),) * (x.ndim - n_real)
    starts, stops, steps, flips, ints, nones, takes = [], [], [], [], [], [], []
    axis = 0  # axis of x
    pos = 0  # axis of the result
    for k in key:
        if k is None:
            nones.append(pos)
            pos += 1
            continue
        d = x.shape[axis]
        if isinstance(k, (bool, np.bool_)):
            raise IRError("boolean indices are not supported; use xp.where")
        if isinstance(k, (int, np.integer)):
            i = _norm_index(int(k), d, axis)
            starts.append(i)
            stops.append(i + 1)
            steps.append(1)
            ints.append(axis)
        elif isinstance(k, slice):
            step = 1 if k.step is None else int(k.step)
            if step == 0:
                raise IRError("slice step cannot be zero")
            if step > 0:
                a = 0 if k.start is None else _clamp_bound(k.start, d)
                b = d if k.stop is None else _clamp_bound(k.stop, d)
                if isinstance(a, int) and isinstance(b, int) and b < a:
                    b = a
                starts.append(a)
                stops.append(b)
                steps.append(step)
            elif k.start is None and k.stop is None and step == -1:
                starts.append(0)
                stops.append(d)
                steps.append(1)
                flips.append(axis)
            else:
                if not isinstance(d, int):
                    raise IRError(f"a negative slice step needs a static dimension (axis {axis} is {d})")
                idx = range(d)[k]
                if len(idx) == 0:
                    starts.append(0)
                    stops.append(0)
                    steps.append(1)
                else:  # the forward slice over the same elements, then flipped
                    starts.append(idx[-1])
                    stops.append(idx[0] + 1)
                    steps.append(-step)
                    flips.append(axis)
            pos += 1
        elif isinstance(k, TracedArray):
            if k.dtype not in (DType.int32, DType.int64):
                raise IRError(f"array indices must be int32/int64, got {k.dtype}")
            if takes:
                raise IRError("only one integer-array index is supported; use take twice or take_along_axis")
            takes.append((axis, k))
            starts.append(0)
            stops.append(d)
            steps.append(1)
            pos += k.ndim
        elif isinstance(k, SymDim):
            raise IRError("a symbolic dimension cannot be used as an index; use dynamic_slice")
        else:
            raise IRError(f"unsupported index {k!r}")
        axis += 1
    y = x
    if (
        any(not (isinstance(s, int) and s == 0) for s in starts)
        or any(b != d for b, d in zip(stops, x.shape))
        or any(s != 1 for s in steps)
    ):
        y = apply("slice", y, starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))
    if flips:
        y = apply("flip", y, axis=tuple(flips))
    shift = 0
    if takes:
        ((a, idx),) = takes
        y = apply("take", y, idx, axis=a)
        shift = idx.ndim - 1
        ints = [i + shift if i > a else i for i in ints]
    if ints:
        y = apply("squeeze", y, axis=tuple(ints))
    for p in nones:
        y = apply("expand_dims", y, axis=p)
    return y


def take(x: TracedArray, indices: Any, axis: int = 0) -> TracedArray:
    if not isinstance(indices, TracedArray):
        arr = np.asarray(indices)
        if arr.dtype.kind not in "iu":
            raise IRError(f"take: indices must be integers, got {arr.dtype}")
        d = x.shape[axis]
        if (arr < 0).any():
            if not isinstance(d, int):
                raise IRError("take: negative constant indices need a static dimension")
            arr = np.where(arr < 0, arr + d, arr)
        indices = constant(arr.astype(np.int64))
    return apply("take", x, indices, axis=axis % x.ndim)


# -------------------------------------------------------------------- trace()


def _flatten_outputs(out: Any) -> tuple[list, list[str] | None]:
    if isinstance(out, dict):
        return list(out.values()), [str(k) for k in out]
    if isinstance(out, (tuple, list)):
        return list(out), None
    return [out], None


def trace(
    fn: Callable,
    *specs: Any,
    name: str | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> Graph:
    """Trace ``fn(*arrays)`` for inputs described by ``specs`` into a Graph.

    Each spec is a TensorSpec, or a ``(shape, dtype)`` pair. Input names come from
    ``input_names``, the spec names, or ``fn``'s parameter names. ``fn`` returns an
    array, a tuple/list of arrays, or a dict (its keys become the output names).
    """
    specs = [s if isinstance(s, TensorSpec) else TensorSpec(*s) for s in specs]
    if input_names is None:
        try:
            params = [
                p.name
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            params = []
        input_names = [
            s.name or (params[i] if i < len(params) else f"input_{i}") for i, s in enumerate(specs)
        ]
    b = Builder(name or getattr(fn, "__name__", "graph"))
    args = [TracedArray(b.add_input(s, n), b) for s, n in zip(specs, input_names)]
    with building(b):
        out = fn(*args)
        leaves, names = _flatten_outputs(out)
        vals = [b.local(to_value(x, b)) for x in leaves]
    if output_names is not None:
        names = list(output_names)
    g = b.graph(vals, names)
    g.check()
    return g
