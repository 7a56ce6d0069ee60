"""The lowering contract shared by every backend (see spec/backends.md).

A backend's ``lower(graph, **options) -> Program``. A :class:`Program` is
callable on the backend's native arrays or on numpy arrays and returns the same
kind; it validates its inputs (count, rank, dtype, symbol bindings) before any
work and knows its input/output specs.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..ir.graph import Graph, check_limits
from ..ir.types import DType, IRError, TensorSpec, as_dtype, bind_symbols


class Program:
    """A lowered graph. Subclasses implement ``_run(arrays, env) -> list`` and conversions."""

    backend: str = "?"

    def __init__(self, graph: Graph):
        check_limits(graph)  # the IR's size limits, before any framework work, on every backend
        self.graph = graph
        self.input_specs: list[TensorSpec] = graph.input_specs
        self.output_specs: list[TensorSpec] = graph.output_specs
        self.input_names: list[str] = graph.input_names
        self.output_names: list[str] = list(graph.output_names)
        self._np_dtypes = [s.dtype.to_numpy() for s in self.input_specs]

    # ---- hooks for subclasses
    def _is_native(self, x: Any) -> bool:
        return False

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        return x

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        return np.asarray(x)

    def _native_dtype(self, x: Any) -> DType:
        return as_dtype(x.dtype)

    def _native_shape(self, x: Any) -> tuple:
        return tuple(int(d) for d in x.shape)

    def _prepare_native(self, x: Any, spec: TensorSpec) -> Any:
        """A native input as the lowered function wants it (e.g. torch uint32 -> int64)."""
        return x

    def _finish_native(self, x: Any, spec: TensorSpec) -> Any:
        """A native output as the caller gets it (e.g. int64 -> torch uint32)."""
        return x

    def _run(self, args: list, env: dict) -> list:
        raise NotImplementedError

    def export(self, path: str) -> str:
        raise IRError(f"backend {self.backend} has no export format; lower to torch, tensorflow, jax or onnx")

    # ---- calling
    def bind(self, args: Sequence[Any], kwargs: dict) -> list:
        args = list(args)
        if kwargs:
            for name in self.input_names[len(args) :]:
                if name not in kwargs:
                    raise IRError(f"missing input {name!r}; the program takes {self.input_names}")
                args.append(kwargs.pop(name))
            if kwargs:
                raise IRError(f"unknown input(s) {sorted(kwargs)}; the program takes {self.input_names}")
        if len(args) != len(self.input_specs):
            raise IRError(
                f"the program takes {len(self.input_specs)} input(s) {self.input_names}, got {len(args)}"
            )
        return args

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = self.bind(args, kwargs)
        native = (
            bool(bound)
            and all(self._is_native(a) for a in bound)
            and not all(isinstance(a, np.ndarray) for a in bound)
        )
        prepared: list[Any] = []
        shapes: list[tuple] = []
        for a, spec, name in zip(bound, self.input_specs, self.input_names):
            if self._is_native(a) and not isinstance(a, np.ndarray):
                dt = self._native_dtype(a)
                shape = self._native_shape(a)
                arr = self._prepare_native(a, spec) if dt == spec.dtype else a
            else:
                arr = np.asarray(a)
                shape = arr.shape
                if arr.dtype == self._np_dtypes[len(prepared)]:  # fast path: the expected dtype
                    dt = spec.dtype
                    arr = self._from_numpy(arr, spec)
                else:
                    raise IRError(
                        f"input {name!r} has dtype {arr.dtype}, expected {spec.dtype}; cast it with .astype"
                    )
            if dt != spec.dtype:
                raise IRError(f"input {name!r} has dtype {dt}, expected {spec.dtype}; cast it with .astype")
            prepared.append(arr)
            shapes.append(shape)
        env = bind_symbols(self.input_specs, shapes)
        outs = self._run(prepared, env)
        if native:
            outs = [self._finish_native(o, s) for o, s in zip(outs, self.output_specs)]
        else:
            outs = [self._to_numpy(o, s) for o, s in zip(outs, self.output_specs)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def __repr__(self) -> str:
        ins = ", ".join(f"{n}: {s}" for n, s in zip(self.input_names, self.input_specs))
        outs = ", ".join(f"{n}: {s}" for n, s in zip(self.output_names, self.output_specs))
        return f"<{type(self).__name__} {self.graph.name}({ins}) -> ({outs})>"


def symbol_plan(specs: Sequence[TensorSpec]) -> list[tuple[str, int, int, Any]]:
    """How to compute every input symbol from input shapes, in order.

    Returns ``(symbol, input_index, axis, rest)`` steps: ``symbol = shape(input)[axis] - rest``
    where ``rest`` is a Dim over symbols computed by earlier steps (0 when the symbol stands
    alone on that axis). Backends that keep shapes symbolic at run time (TensorFlow, ONNX)
    evaluate these steps inside the lowered graph; the others use the bound ints.
    """
    from ..ir.types import SymDim

    plan: list = []
    known: set = set()
    pending: list = []
    for i, spec in enumerate(specs):
        for ax, d in enumerate(spec.shape):
            if isinstance(d, SymDim):
                if len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
                    s = d.terms[0][0][0]
                    if s not in known:
                        known.add(s)
                        plan.append((s, i, ax, 0))
                else:
                    pending.append((i, ax, d))
    progress = True
    while pending and progress:
        progress = False
        rest_pending = []
        for i, ax, d in pending:
            unknown = [s for s in d.symbols if s not in known]
            if not unknown:
                progress = True
                continue
            s = unknown[0]
            if (
                len(unknown) == 1
                and dict(d.terms).get((s,)) == 1
                and all(s not in k or k == (s,) for k, _ in d.terms)
            ):
                known.add(s)
                plan.append((s, i, ax, d - SymDim.symbol(s)))
                progress = True
            else:
                rest_pending.append((i, ax, d))
        pending = rest_pending
    if pending:
        i, ax, d = pending[0]
        raise IRError(f"input {i} axis {ax}: cannot compute the symbols of {d} from the input shapes")
    return plan


def eval_dim(d: Any, env: dict) -> Any:
    """Evaluate a Dim with ``env`` values that may be ints or framework scalars (uses + and * only)."""
    from ..ir.types import SymDim

    if not isinstance(d, SymDim):
        return d
    total: Any = 0
    for monomial, coeff in d.terms:
        p: Any = coeff
        for s in monomial:
            p = p * env[s] if not (isinstance(p, int) and p == 1) else env[s]
        total = p if (isinstance(total, int) and total == 0) else total + p
    return total


# ============================================================================ dtypes inside a program


def carried_dtype(dt: DType, low_floats_as_float32: bool = False) -> DType:
    """The IR dtype a backend carries ``dt`` as inside a lowered program: uint32 as int64 holding
    [0, 2**32) (no framework has every uint32 kernel), float16/bfloat16 as float32 where the
    framework lacks their kernels (``low_floats_as_float32``: onnx), everything else as itself.
    Each backend maps the result to its framework's dtype by name (spec/backends.md, Dtypes)."""
    if dt is DType.uint32:
        return DType.int64
    if low_floats_as_float32 and dt in (DType.float16, DType.bfloat16):
        return DType.float32
    return dt


# ============================================================================ lowering rules
# Every backend's rule table maps an op name to ONE callable shape: ``rule(site) -> result``,
# where ``site`` is a :class:`Site` (or a backend's subclass adding its own helpers: torch's
# code generator, onnx's graph builder). What a result is depends on the backend: Python source
# (torch), an ONNX value name (onnx), a framework tensor (tensorflow, jax, numpy).


class Site:
    """One IR node as a lowering rule sees it: the same fields on every backend.

    ``args`` are the backend's handles of the inputs (source expressions, ONNX value names or
    framework tensors); ``attrs`` are the node's attributes with symbolic dims already resolved
    the backend's way (``attrs`` of :func:`resolve_symbolic_attrs`)."""

    __slots__ = ("node", "args", "attrs")

    def __init__(self, node: Any, args: Sequence[Any], attrs: dict):
        self.node = node
        self.args = list(args)
        self.attrs = attrs

    @property
    def op(self) -> str:
        return self.node.op

    @property
    def at(self) -> dict:  # short name used by the code-generating backends
        return self.attrs

    @property
    def in_dt(self) -> DType:
        return self.node.inputs[0].dtype

    @property
    def in_dts(self) -> list[DType]:
        return [v.dtype for v in self.node.inputs]

    @property
    def out_dt(self) -> DType:
        return self.node.outputs[0].dtype

    @property
    def out_specs(self) -> list[TensorSpec]:
        return [TensorSpec(v.shape, v.dtype) for v in self.node.outputs]

    @property
    def rank(self) -> int:
        return len(self.node.inputs[0].shape)

    def axes(self) -> tuple:
        """The reduction axes: every axis when the ``axis`` attribute is None."""
        return tuple(range(self.rank)) if self.attrs.get("axis") is None else tuple(self.attrs["axis"])


class Rules(dict):
    """A backend's rule table: ``op name -> rule(site)``. ``@rules.register("a", "b")``
    registers one function for several ops; ``rules.register_call(op, fn)`` adapts a function
    of ``(*args, **attrs)`` (a framework op applied to the inputs and attributes) to the rule
    shape, so simple rules stay one line."""

    def __init__(self, backend: str):
        super().__init__()
        self.backend = backend

    def register(self, *ops: str):
        def deco(fn):
            for op in ops:
                if op in self:
                    raise IRError(f"{self.backend}: op {op!r} has two lowering rules")
                self[op] = fn
            return fn

        return deco

    def register_call(self, op: str, fn: Any) -> None:
        def rule(site: Site, fn=fn) -> Any:
            return fn(*site.args, **site.attrs)

        rule.__name__ = getattr(fn, "__name__", op)
        rule.__wrapped__ = fn  # type: ignore[attr-defined]
        self.register(op)(rule)


def resolve_symbolic_attrs(node: Any, env: dict) -> dict:
    """The node's attributes with every ``dim`` / ``dims`` attribute evaluated in ``env`` (ints,
    or framework scalars where the backend keeps sizes symbolic at run time). The one way
    symbolic attributes are resolved, for every backend."""
    from ..ir.ops import OPS

    out = dict(node.attrs)
    for key, spec in OPS[node.op].attrs.items():
        if spec.kind == "dim":
            out[key] = eval_dim(out[key], env)
        elif spec.kind == "dims" and out[key] is not None:
            out[key] = tuple(eval_dim(d, env) for d in out[key])
    return out
