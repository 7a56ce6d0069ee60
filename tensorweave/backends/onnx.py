"""The ONNX backend: a graph becomes a standard-domain ``ModelProto`` run by ONNX Runtime.

Opset 21 (ONNX 1.16+, supported by ONNX Runtime 1.18+): it has every op we need in the
standard domain — ``Gelu`` (20), the ``Bitwise*`` ops (18), ``LayerNormalization`` (17),
reductions taking ``axes`` as an input (18) — so no contrib ops are used and any ONNX
runtime can load the file.

- Symbolic dims become ``dim_param``s named by the symbol's text; inside the graph each
  symbol is read with ``Shape`` from an input and every symbolic attribute is computed
  from those (``Add``/``Mul`` on int64 shape tensors).
- ``while_loop`` -> ``Loop`` (the condition is evaluated once before the loop and again
  at the end of each body); ``cond`` -> ``If``. Captured values are outer-scope names.
- Constants become initializers (named constants keep their name when unique).
- Carried types: uint32 is int64 in [0, 2**32) inside the graph (ONNX Runtime lacks many
  uint32 kernels), cast at the boundary; float16/bfloat16 are carried as float32 and
  rounded to their dtype after every op (a Cast round trip), which is the reference's rule.
  bfloat16 graph inputs/outputs are declared float32 (ONNX Runtime's Python API has no
  bfloat16 numpy type).
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..ir.graph import Graph
from ..ir.types import DType, IRError, TensorSpec
from .base import Program, symbol_plan

NAME = "onnx"
OPSET = 21
MASK32 = 0xFFFFFFFF
EXTERNAL_DATA_THRESHOLD = 2 * 1024**3

#: the ONNX type each IR dtype is carried as inside the graph
CARRIED = {
    DType.bool: TensorProto.BOOL,
    DType.int32: TensorProto.INT32,
    DType.int64: TensorProto.INT64,
    DType.uint32: TensorProto.INT64,
    DType.float16: TensorProto.FLOAT,
    DType.bfloat16: TensorProto.FLOAT,
    DType.float32: TensorProto.FLOAT,
    DType.float64: TensorProto.DOUBLE,
}
#: the ONNX type of graph inputs/outputs
BOUNDARY = {
    DType.bool: TensorProto.BOOL,
    DType.int32: TensorProto.INT32,
    DType.int64: TensorProto.INT64,
    DType.uint32: TensorProto.UINT32,
    DType.float16: TensorProto.FLOAT16,
    DType.bfloat16: TensorProto.FLOAT,
    DType.float32: TensorProto.FLOAT,
    DType.float64: TensorProto.DOUBLE,
}
ROUND = {DType.float16: TensorProto.FLOAT16, DType.bfloat16: TensorProto.BFLOAT16}
NP_CARRIED = {
    DType.bool: np.bool_,
    DType.int32: np.int32,
    DType.int64: np.int64,
    DType.uint32: np.int64,
    DType.float16: np.float32,
    DType.bfloat16: np.float32,
    DType.float32: np.float32,
    DType.float64: np.float64,
}


class Builder:
    """Emits ONNX nodes into one (sub)graph; names are unique across the whole model."""

    def __init__(self, root: "Builder | None" = None):
        self.root = root or self
        self.nodes: list = []
        self.initializers: list = []
        if root is None:
            self.counter = 0
            self.const_cache: dict = {}

    def fresh(self, hint: str = "t") -> str:
        self.root.counter += 1
        return f"{hint}_{self.root.counter}"

    def node(self, op: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value: Any, dtype: Any = None) -> str:
        """A constant as a main-graph initializer (deduplicated); subgraphs use it as an outer-scope
        name, so loop bodies do not re-run Constant nodes every iteration."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        cache = self.root.const_cache
        if key not in cache:
            name = self.fresh("const")
            self.root.initializers.append(numpy_helper.from_array(arr, name))
            cache[key] = name
        return cache[key]

    def i64(self, values: Sequence[int] | int) -> str:
        return self.const(np.asarray(values, dtype=np.int64))


# ---------------------------------------------------------------------------- lowering context


class Lowering:
    """Lowers one IR graph (or subgraph) into a Builder, given the names bound to its inputs."""

    def __init__(self, b: Builder, sym: dict[str, str]):
        self.b = b
        self.sym = sym  # symbol -> name of a 1-D int64 [1] tensor

    # -- dims -----------------------------------------------------------------------
    def dim(self, d: Any) -> str:
        """1-D int64 [1] tensor holding the dim's value."""
        if isinstance(d, int):
            return self.b.i64([d])
        total = None
        for monomial, coeff in d.terms:
            term = None
            for s in monomial:
                term = self.sym[s] if term is None else self.b.node("Mul", [term, self.sym[s]])
            if term is None:
                term = self.b.i64([coeff])
            elif coeff != 1:
                term = self.b.node("Mul", [term, self.b.i64([coeff])])
            total = term if total is None else self.b.node("Add", [total, term])
        return total if total is not None else self.b.i64([0])

    def shape(self, dims: Sequence[Any]) -> str:
        if all(isinstance(d, int) for d in dims):
            return self.b.i64(list(dims))
        if not dims:
            return self.b.i64([])
        return self.b.node("Concat", [self.dim(d) for d in dims], axis=0)

    def scalar_dim(self, d: Any) -> str:
        if isinstance(d, int):
            return self.b.const(np.int64(d))
        return self.b.node("Squeeze", [self.dim(d), self.b.i64([0])])

    # -- graph ----------------------------------------------------------------------
    def run(self, graph: Graph, inputs: Sequence[str]) -> list[str]:
        names: dict = dict(zip(graph.inputs, inputs))
        for v, arr in graph.constants.items():
            names[v] = self.constant(arr, v.dtype, v.name)
        for node in graph.nodes:
            ins = [names[v] for v in node.inputs]
            outs = self.emit(node, ins)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for v, o in zip(node.outputs, outs):
                names[v] = o
        return [names[v] for v in graph.outputs]

    def constant(self, arr: np.ndarray, dt: DType, name: str | None = None) -> str:
        a = np.asarray(arr)
        if dt is DType.uint32:
            a = a.astype(np.int64)
        elif dt in (DType.float16, DType.bfloat16):
            a = a.astype(np.float32)
        if a.size > 64 or name:
            used = {t.name for t in self.b.root.initializers}
            name = name if (name and name not in used) else self.b.fresh("init")
            self.b.root.initializers.append(numpy_helper.from_array(np.asarray(a, order="C"), name))
            return name
        return self.b.const(a)

    def emit(self, node: Any, ins: list[str]) -> Any:
        op = node.op
        in_dt = node.inputs[0].dtype if node.inputs else None
        out_dt = node.outputs[0].dtype if node.outputs else None
        attrs = node.attrs
        if op == "while_loop":
            return self.while_loop(node, ins)
        if op == "cond":
            return self.cond(node, ins)
        fn = LOWERINGS[op]
        out = fn(self, node, ins, attrs, in_dt, out_dt)
        if op != "top_k" and out_dt in ROUND and op not in NO_ROUND:
            out = self.round_low(out, out_dt)
        if out_dt is DType.uint32 and op in U32_MASKED:
            out = self.b.node("BitwiseAnd", [out, self.b.i64(MASK32)])
        return out

    def round_low(self, x: str, dt: DType) -> str:
        return self.b.node("Cast", [self.b.node("Cast", [x], to=ROUND[dt])], to=TensorProto.FLOAT)

    # -- control flow ---------------------------------------------------------------
    def while_loop(self, node: Any, ins: list[str]) -> list[str]:
        n = node.attrs["num_state"]
        state, cap = ins[:n], ins[n:]
        cg, bg = node.subgraphs["cond"], node.subgraphs["body"]
        cond0 = self.run(cg, state + cap)[0]
        body = Builder(self.b.root)
        inner = Lowering(body, self.sym)
        it, c_in = self.b.fresh("iter"), self.b.fresh("cond_in")
        s_in = [self.b.fresh("state_in") for _ in range(n)]
        new_state = inner.run(bg, s_in + cap)
        new_state = [body.node("Identity", [x]) for x in new_state]
        c_out = body.node("Identity", [inner.run(cg, new_state + cap)[0]])
        specs = [v.spec for v in node.outputs]
        graph = helper.make_graph(
            body.nodes,
            self.b.fresh("loop_body"),
            [
                helper.make_tensor_value_info(it, TensorProto.INT64, []),
                helper.make_tensor_value_info(c_in, TensorProto.BOOL, []),
            ]
            + [helper.make_tensor_value_info(nm, CARRIED[s.dtype], _static(s)) for nm, s in zip(s_in, specs)],
            [helper.make_tensor_value_info(c_out, TensorProto.BOOL, [])]
            + [
                helper.make_tensor_value_info(nm, CARRIED[s.dtype], _static(s))
                for nm, s in zip(new_state, specs)
            ],
        )
        outs = [self.b.fresh("loop_out") for _ in range(n)]
        self.b.nodes.append(helper.make_node("Loop", ["", cond0] + state, outs, body=graph))
        return outs

    def cond(self, node: Any, ins: list[str]) -> list[str]:
        pred, ops = ins[0], ins[1:]
        branches = []
        for key in ("then", "else"):
            bb = Builder(self.b.root)
            res = Lowering(bb, self.sym).run(node.subgraphs[key], ops)
            res = [bb.node("Identity", [r]) for r in res]
            branches.append(
                helper.make_graph(
                    bb.nodes,
                    self.b.fresh(f"{key}_branch"),
                    [],
                    [
                        helper.make_tensor_value_info(r, CARRIED[v.dtype], None)
                        for r, v in zip(res, node.outputs)
                    ],
                )
            )
        outs = [self.b.fresh("if_out") for _ in node.outputs]
        self.b.nodes.append(
            helper.make_node("If", [pred], outs, then_branch=branches[0], else_branch=branches[1])
        )
        return outs


# ---------------------------------------------------------------------------- op lowerings
# Each takes (L, node, ins, attrs, in_dt, out_dt) and returns the output name(s).


def _u(op: str, **kw: Any):
    return lambda L, n, i, a, idt, odt: L.b.node(op, [i[0]], **kw)


def _bin(op: str):
    return lambda L, n, i, a, idt, odt: L.b.node(op, i[:2])


def _is_float(dt: DType) -> bool:
    return dt.is_floating


def _nan_like(L: Lowering, x: str, dt: DType) -> str:
    return L.b.const(np.asarray(np.nan, NP_CARRIED[dt]))


def _abs(L, n, i, a, idt, odt):
    if idt is DType.uint32:
        return L.b.node("Identity", [i[0]])
    return L.b.node("Abs", [i[0]])


def _sign(L, n, i, a, idt, odt):
    s = L.b.node("Sign", [i[0]])
    if _is_float(idt):
        return L.b.node("Where", [L.b.node("IsNaN", [i[0]]), i[0], s])
    return s


def _rsqrt(L, n, i, a, idt, odt):
    one = L.b.const(np.asarray(1.0, NP_CARRIED[idt]))
    return L.b.node("Div", [one, L.b.node("Sqrt", [i[0]])])


def _silu(L, n, i, a, idt, odt):
    return L.b.node("Mul", [i[0], L.b.node("Sigmoid", [i[0]])])


def _isx(op: str):
    def f(L, n, i, a, idt, odt):
        if _is_float(idt):
            if op == "isfinite":
                bad = L.b.node("Or", [L.b.node("IsNaN", [i[0]]), L.b.node("IsInf", [i[0]])])
                return L.b.node("Not", [bad])
            return L.b.node("IsNaN" if op == "isnan" else "IsInf", [i[0]])
        shape = L.b.node("Shape", [i[0]])
        value = numpy_helper.from_array(np.asarray([op == "isfinite"], dtype=np.bool_), "v")
        return L.b.node("ConstantOfShape", [shape], value=value)

    return f


def _bitwise_invert(L, n, i, a, idt, odt):
    return L.b.node("Not" if idt is DType.bool else "BitwiseNot", [i[0]])


def _nanprop_bin(op: str):
    def f(L, n, i, a, idt, odt):
        out = L.b.node(op, i[:2])
        if _is_float(idt):
            nan = L.b.node("Or", [L.b.node("IsNaN", [i[0]]), L.b.node("IsNaN", [i[1]])])
            out = L.b.node("Where", [nan, _nan_like(L, i[0], idt), out])
        return out

    return f


def _safe_divisor(L: Lowering, y: str, dt: DType) -> str:
    zero = L.b.const(np.asarray(0, NP_CARRIED[dt]))
    one = L.b.const(np.asarray(1, NP_CARRIED[dt]))
    bad = L.b.node("Equal", [y, zero])
    if dt.is_signed:
        bad = L.b.node("Or", [bad, L.b.node("Equal", [y, L.b.const(np.asarray(-1, NP_CARRIED[dt]))])])
    return L.b.node("Where", [bad, one, y])


def _float_floor_divide(L: Lowering, x: str, y: str, dt: DType) -> str:
    """numpy's float floor_divide: m = fmod(x, y); d = (x - m) / y, minus 1 when m != 0 and its
    sign differs from y's; then floor(d), plus 1 when d - floor(d) > 0.5; a zero result takes the
    sign of x / y; y == 0 gives x / y. (floor(x / y) differs when x / y rounds up to an integer.)"""
    c = lambda v: L.b.const(np.asarray(v, NP_CARRIED[dt]))  # noqa: E731
    m = L.b.node("Mod", [x, y], fmod=1)
    d = L.b.node("Div", [L.b.node("Sub", [x, m]), y])
    fix = L.b.node(
        "And",
        [
            L.b.node("Not", [L.b.node("Equal", [m, c(0)])]),
            L.b.node("Xor", [L.b.node("Less", [m, c(0)]), L.b.node("Less", [y, c(0)])]),
        ],
    )
    d = L.b.node("Where", [fix, L.b.node("Sub", [d, c(1)]), d])
    f = L.b.node("Floor", [d])
    f = L.b.node(
        "Where", [L.b.node("Greater", [L.b.node("Sub", [d, f]), c(0.5)]), L.b.node("Add", [f, c(1)]), f]
    )
    q = L.b.node("Div", [x, y])
    f = L.b.node("Where", [L.b.node("Equal", [f, c(0)]), L.b.node("Mul", [q, c(0)]), f])
    return L.b.node("Where", [L.b.node("Equal", [y, c(0)]), q, f])


def _floor_divide(L, n, i, a, idt, odt):
    x, y = i
    if _is_float(idt):
        return _float_floor_divide(L, x, y, idt)
    yy = y
    y = _safe_divisor(L, y, idt)
    q = L.b.node("Div", [x, y])
    if idt.is_signed:
        q = L.b.node(
            "Where",
            [L.b.node("Equal", [yy, L.b.const(np.asarray(-1, NP_CARRIED[idt]))]), L.b.node("Neg", [x]), q],
        )
    r = L.b.node("Mod", [x, y], fmod=1)
    zero = L.b.const(np.asarray(0, NP_CARRIED[idt]))
    adjust = L.b.node(
        "And",
        [
            L.b.node("Not", [L.b.node("Equal", [r, zero])]),
            L.b.node("Xor", [L.b.node("Less", [r, zero]), L.b.node("Less", [y, zero])]),
        ],
    )
    return L.b.node("Sub", [q, L.b.node("Cast", [adjust], to=CARRIED[idt])])


def _remainder(L, n, i, a, idt, odt):
    x, y = i
    if _is_float(idt):
        r = L.b.node("Mod", [x, y], fmod=1)
        zero = L.b.const(np.asarray(0, NP_CARRIED[idt]))
        fix = L.b.node(
            "And",
            [
                L.b.node("Not", [L.b.node("Equal", [r, zero])]),
                L.b.node("Xor", [L.b.node("Less", [r, zero]), L.b.node("Less", [y, zero])]),
            ],
        )
        return L.b.node("Where", [fix, L.b.node("Add", [r, y]), r])
    return L.b.node("Mod", [x, _safe_divisor(L, y, idt)], fmod=0)


def _bool_or_bitwise(bool_op: str, int_op: str):
    return lambda L, n, i, a, idt, odt: L.b.node(bool_op if idt is DType.bool else int_op, i[:2])


def _shift(left: bool):
    def f(L, n, i, a, idt, odt):
        x, y = i
        bits = 32 if idt in (DType.int32, DType.uint32) else 64
        y64 = L.b.node(
            "Cast",
            [L.b.node("Clip", [L.b.node("Cast", [y], to=TensorProto.INT64), L.b.i64(0), L.b.i64(bits - 1)])],
            to=TensorProto.UINT64,
        )
        if left:
            xs = (
                L.b.node("Cast", [x], to=TensorProto.UINT64)
                if idt is not DType.int32
                else L.b.node("Cast", [L.b.node("Cast", [x], to=TensorProto.INT64)], to=TensorProto.UINT64)
            )
            out = L.b.node("Cast", [L.b.node("BitShift", [xs, y64], direction="LEFT")], to=TensorProto.INT64)
            if idt is DType.int32:
                return _wrap_int32(L, out)
            return out
        # right shift: logical for uint32 (non-negative int64), arithmetic for signed ints
        x64 = L.b.node("Cast", [x], to=TensorProto.INT64) if idt is DType.int32 else x
        ux = L.b.node("Cast", [x64], to=TensorProto.UINT64)
        pos = L.b.node("Cast", [L.b.node("BitShift", [ux, y64], direction="RIGHT")], to=TensorProto.INT64)
        if idt is DType.uint32:
            return pos
        nx = L.b.node("Cast", [L.b.node("BitwiseNot", [x64])], to=TensorProto.UINT64)
        neg = L.b.node(
            "BitwiseNot",
            [L.b.node("Cast", [L.b.node("BitShift", [nx, y64], direction="RIGHT")], to=TensorProto.INT64)],
        )
        out = L.b.node("Where", [L.b.node("Less", [x64, L.b.i64(0)]), neg, pos])
        return L.b.node("Cast", [out], to=TensorProto.INT32) if idt is DType.int32 else out

    return f


def _wrap_int32(L: Lowering, x64: str) -> str:
    """int64 -> int32 with two's-complement wrap-around."""
    v = L.b.node("BitwiseAnd", [x64, L.b.i64(MASK32)])
    big = L.b.node("GreaterOrEqual", [v, L.b.i64(2**31)])
    v = L.b.node("Where", [big, L.b.node("Sub", [v, L.b.i64(2**32)]), v])
    return L.b.node("Cast", [v], to=TensorProto.INT32)


def _astype(L, n, i, a, idt, odt):
    x = i[0]
    if odt is DType.bool:
        zero = L.b.const(np.asarray(0, NP_CARRIED[idt]))
        if idt is DType.bool:
            return L.b.node("Identity", [x])
        return L.b.node("Not", [L.b.node("Equal", [x, zero])])
    if _is_float(idt) and odt.is_integer:
        d = L.b.node("Cast", [x], to=TensorProto.DOUBLE)
        finite = L.b.node("Not", [L.b.node("Or", [L.b.node("IsNaN", [d]), L.b.node("IsInf", [d])])])
        d = L.b.node("Where", [finite, d, L.b.const(np.asarray(0.0))])
        t = L.b.node("Mul", [L.b.node("Sign", [d]), L.b.node("Floor", [L.b.node("Abs", [d])])])
        if odt is DType.uint32:
            m = L.b.node("Mod", [t, L.b.const(np.asarray(2.0**32))], fmod=1)
            m = L.b.node(
                "Where",
                [
                    L.b.node("Less", [m, L.b.const(np.asarray(0.0))]),
                    L.b.node("Add", [m, L.b.const(np.asarray(2.0**32))]),
                    m,
                ],
            )
            return L.b.node("Cast", [m], to=TensorProto.INT64)
        info = np.iinfo(odt.to_numpy())
        t = L.b.node(
            "Clip", [t, L.b.const(np.asarray(float(info.min))), L.b.const(np.asarray(float(info.max)))]
        )
        return L.b.node("Cast", [t], to=CARRIED[odt])
    if odt is DType.uint32:
        x64 = L.b.node("Cast", [x], to=TensorProto.INT64)
        return L.b.node("BitwiseAnd", [x64, L.b.i64(MASK32)])
    if odt is DType.int32 and idt in (DType.int64, DType.uint32):
        return _wrap_int32(L, x)
    return L.b.node("Cast", [x], to=CARRIED[odt])


def _axes_of(a: dict, rank: int) -> list[int]:
    return list(range(rank)) if a["axis"] is None else list(a["axis"])


def _reduce(op: str, nan_prop: bool = False):
    def f(L, n, i, a, idt, odt):
        axes = _axes_of(a, len(n.inputs[0].shape))
        if not axes:
            return L.b.node("Identity", [i[0]])
        x = i[0]
        if idt is DType.bool:
            x = L.b.node("Cast", [x], to=TensorProto.INT32)
        out = L.b.node(op, [x, L.b.i64(axes)], keepdims=int(a["keepdims"]))
        if idt is DType.bool:
            out = L.b.node("Cast", [out], to=TensorProto.BOOL)
        if nan_prop and _is_float(idt):
            anynan = L.b.node(
                "Cast",
                [
                    L.b.node(
                        "ReduceMax",
                        [L.b.node("Cast", [L.b.node("IsNaN", [i[0]])], to=TensorProto.INT32), L.b.i64(axes)],
                        keepdims=int(a["keepdims"]),
                    )
                ],
                to=TensorProto.BOOL,
            )
            out = L.b.node("Where", [anynan, _nan_like(L, out, idt), out])
        return out

    return f


def _any_all(is_any: bool):
    """any = ReduceSum(x as int) > 0 (ReduceMax of an empty axis is the dtype's lowest value);
    all = not any(not x)."""

    def f(L, n, i, a, idt, odt):
        axes = _axes_of(a, len(n.inputs[0].shape))
        if not axes:
            return L.b.node("Identity", [i[0]])
        x = i[0] if is_any else L.b.node("Not", [i[0]])
        cnt = L.b.node(
            "ReduceSum",
            [L.b.node("Cast", [x], to=TensorProto.INT64), L.b.i64(axes)],
            keepdims=int(a["keepdims"]),
        )
        hit = L.b.node("Greater", [cnt, L.b.i64(0)])
        return hit if is_any else L.b.node("Not", [hit])

    return f


def _prod(L, n, i, a, idt, odt):
    """Integer products wrap: multiply the reduced slices one by one (ReduceProd saturates int64 in
    ONNX Runtime). Float products use ReduceProd."""
    shape = list(n.inputs[0].shape)
    axes = _axes_of(a, len(shape))
    sizes = [shape[k] for k in axes]
    if _is_float(idt) or not axes or not all(isinstance(d, int) for d in sizes) or math.prod(sizes) > 256:
        return _reduce("ReduceProd")(L, n, i, a, idt, odt)
    rest = [k for k in range(len(shape)) if k not in axes]
    x = L.b.node("Transpose", [i[0]], perm=axes + rest)
    count = math.prod(sizes)
    rest_dims = [shape[k] for k in rest]
    x = L.b.node("Reshape", [x, L.shape([count] + rest_dims)], allowzero=1)
    acc = L.b.node(
        "ConstantOfShape",
        [L.shape(rest_dims)],
        value=numpy_helper.from_array(np.asarray([1], NP_CARRIED[idt]), "v"),
    )
    for k in range(count):
        piece = L.b.node(
            "Squeeze", [L.b.node("Slice", [x, L.b.i64([k]), L.b.i64([k + 1]), L.b.i64([0])]), L.b.i64([0])]
        )
        acc = L.b.node("Mul", [acc, piece])
        if idt is DType.uint32:
            acc = L.b.node("BitwiseAnd", [acc, L.b.i64(MASK32)])
    if a["keepdims"]:
        acc = L.b.node(
            "Reshape", [acc, L.shape([1 if k in axes else shape[k] for k in range(len(shape))])], allowzero=1
        )
    return acc


def _logsumexp(L, n, i, a, idt, odt):
    axes = _axes_of(a, len(n.inputs[0].shape))
    if not axes:
        return L.b.node("Identity", [i[0]])
    x = i[0]
    m = L.b.node("ReduceMax", [x, L.b.i64(axes)], keepdims=1)
    finite = L.b.node("Not", [L.b.node("Or", [L.b.node("IsNaN", [m]), L.b.node("IsInf", [m])])])
    m = L.b.node("Where", [finite, m, L.b.const(np.asarray(0, NP_CARRIED[idt]))])
    s = L.b.node(
        "Add",
        [
            L.b.node(
                "Log",
                [
                    L.b.node(
                        "ReduceSum", [L.b.node("Exp", [L.b.node("Sub", [x, m])]), L.b.i64(axes)], keepdims=1
                    )
                ],
            ),
            m,
        ],
    )
    anynan = L.b.node(
        "Greater",
        [
            L.b.node(
                "ReduceSum",
                [L.b.node("Cast", [L.b.node("IsNaN", [x])], to=TensorProto.INT64), L.b.i64(axes)],
                keepdims=1,
            ),
            L.b.i64(0),
        ],
    )
    s = L.b.node("Where", [anynan, _nan_like(L, s, idt), s])
    if not a["keepdims"]:
        s = L.b.node("Squeeze", [s, L.b.i64(axes)])
    return s


def _argext(largest: bool):
    def f(L, n, i, a, idt, odt):
        x, axis, kd = i[0], a["axis"], int(a["keepdims"])
        op = "ArgMax" if largest else "ArgMin"
        if idt is DType.bool:
            x = L.b.node("Cast", [x], to=TensorProto.INT32)
        if not _is_float(idt):
            return L.b.node(op, [x], axis=axis, keepdims=kd, select_last_index=0)
        nan = L.b.node("IsNaN", [x])
        filled = L.b.node(
            "Where", [nan, L.b.const(np.asarray(-math.inf if largest else math.inf, NP_CARRIED[idt])), x]
        )
        best = L.b.node(op, [filled], axis=axis, keepdims=kd, select_last_index=0)
        nan_i = L.b.node("Cast", [nan], to=TensorProto.INT32)
        first_nan = L.b.node("ArgMax", [nan_i], axis=axis, keepdims=kd, select_last_index=0)
        any_nan = L.b.node(
            "Cast", [L.b.node("ReduceMax", [nan_i, L.b.i64([axis])], keepdims=kd)], to=TensorProto.BOOL
        )
        return L.b.node("Where", [any_nan, first_nan, best])

    return f


def _cumsum(L, n, i, a, idt, odt):
    return L.b.node("CumSum", [i[0], L.b.const(np.int64(a["axis"]))])


def _matmul(L, n, i, a, idt, odt):
    return L.b.node("MatMul", i[:2])


def _einsum(L, n, i, a, idt, odt):
    return L.b.node("Einsum", i, equation=a["subscripts"])


def _full(L, n, i, a, idt, odt):
    v = np.array(a["fill_value"])
    if v.dtype.kind in "iu" and odt.is_integer:
        v = v.astype(np.int64)
        if odt is DType.uint32:
            v = v & MASK32
    v = v.astype(NP_CARRIED[odt]).reshape(1)
    return L.b.node("ConstantOfShape", [L.shape(a["shape"])], value=numpy_helper.from_array(v, "value"))


def _arange(L, n, i, a, idt, odt):
    r = L.b.node("Range", [L.scalar_dim(a["start"]), L.scalar_dim(a["stop"]), L.b.const(np.int64(a["step"]))])
    if odt is DType.int64:
        return r
    return _astype(L, n, [r], {}, DType.int64, odt)


def _reshape(L, n, i, a, idt, odt):
    return L.b.node("Reshape", [i[0], L.shape(a["shape"])], allowzero=1)


def _permute(L, n, i, a, idt, odt):
    return L.b.node("Transpose", [i[0]], perm=list(a["axes"]))


def _expand_dims(L, n, i, a, idt, odt):
    return L.b.node("Unsqueeze", [i[0], L.b.i64([a["axis"]])])


def _squeeze(L, n, i, a, idt, odt):
    if not a["axis"]:
        return L.b.node("Identity", [i[0]])
    return L.b.node("Squeeze", [i[0], L.b.i64(list(a["axis"]))])


def _broadcast_to(L, n, i, a, idt, odt):
    return L.b.node("Expand", [i[0], L.shape(a["shape"])])


def _concat(L, n, i, a, idt, odt):
    return L.b.node("Concat", i, axis=a["axis"])


def _stack(L, n, i, a, idt, odt):
    return L.b.node("Concat", [L.b.node("Unsqueeze", [x, L.b.i64([a["axis"]])]) for x in i], axis=a["axis"])


def _flip(L, n, i, a, idt, odt):
    rank = len(n.inputs[0].shape)
    axes = list(range(rank)) if a["axis"] is None else list(a["axis"])
    if not axes:
        return L.b.node("Identity", [i[0]])
    k = len(axes)
    return L.b.node(
        "Slice", [i[0], L.b.i64([-1] * k), L.b.i64([-(2**63)] * k), L.b.i64(axes), L.b.i64([-1] * k)]
    )


def _repeat(L, n, i, a, idt, odt):
    x, r = i[0], a["repeats"]
    shape = list(n.inputs[0].shape)
    if a["axis"] is None:
        x = L.b.node("Reshape", [x, L.b.i64([-1])])
        shape, axis = [n.inputs[0].shape.size()], 0
    else:
        axis = a["axis"]
    if r == 0:  # ORT's Expand treats a 0 target dim against 1 as 1: slice the axis empty instead
        return L.b.node("Slice", [x, L.b.i64([0]), L.b.i64([0]), L.b.i64([axis])])
    u = L.b.node("Unsqueeze", [x, L.b.i64([axis + 1])])
    target = shape[: axis + 1] + [r] + shape[axis + 1 :]
    e = L.b.node("Expand", [u, L.shape(target)])
    out_shape = shape[:axis] + [shape[axis] * r] + shape[axis + 1 :]
    return L.b.node("Reshape", [e, L.shape(out_shape)], allowzero=1)


def _tile(L, n, i, a, idt, odt):
    shape = list(n.inputs[0].shape)
    reps = list(a["reps"])
    r = max(len(shape), len(reps))
    x = i[0]
    if r > len(shape):
        shape = [1] * (r - len(shape)) + shape
        x = L.b.node("Reshape", [x, L.shape(shape)], allowzero=1)
    reps = [1] * (r - len(reps)) + reps
    return L.b.node("Tile", [x, L.b.i64(reps)])


def _slice(L, n, i, a, idt, odt):
    if not a["starts"]:
        return L.b.node("Identity", [i[0]])
    rank = len(a["starts"])
    return L.b.node(
        "Slice",
        [
            i[0],
            L.shape(a["starts"]),
            L.shape(a["stops"]),
            L.b.i64(list(range(rank))),
            L.b.i64(list(a["steps"])),
        ],
    )


def _clamped_starts(L: Lowering, x: str, starts: list[str], sizes: list[str]) -> list[str]:
    shape = L.b.node("Shape", [x])
    out = []
    for k, (s, size) in enumerate(zip(starts, sizes)):
        dim = L.b.node("Gather", [shape, L.b.i64([k])], axis=0)
        s1 = L.b.node("Reshape", [L.b.node("Cast", [s], to=TensorProto.INT64), L.b.i64([1])])
        hi = L.b.node("Sub", [dim, size])
        out.append(L.b.node("Max", [L.b.node("Min", [s1, hi]), L.b.i64([0])]))
    return out


def _dynamic_slice(L, n, i, a, idt, odt):
    x, starts = i[0], i[1:]
    sizes = [L.dim(d) for d in a["sizes"]]
    st = _clamped_starts(L, x, starts, sizes)
    begin = L.b.node("Concat", st, axis=0)
    end = L.b.node("Add", [begin, L.b.node("Concat", sizes, axis=0)])
    return L.b.node("Slice", [x, begin, end, L.b.i64(list(range(len(starts))))])


def _scatter_update(L: Lowering, x: str, u: str, starts: list[str], xs: list[int], us: list[int]) -> str:
    """dynamic_update_slice as one ``ScatterND`` when both shapes are static: the index tuples
    cover the axes up to the last one the update does not span (``r`` axes); the rest of each
    update row is copied whole. Cost O(update) instead of O(x) (ORT may update in place)."""
    r = max(k for k in range(len(xs)) if us[k] != xs[k]) + 1
    grid = us[:r]
    cols = []
    for k in range(r):
        hi = L.b.i64([xs[k] - us[k]])
        s1 = L.b.node("Reshape", [L.b.node("Cast", [starts[k]], to=TensorProto.INT64), L.b.i64([1])])
        start = L.b.node("Max", [L.b.node("Min", [s1, hi]), L.b.i64([0])])
        ix = L.b.node("Add", [start, L.b.i64(list(range(us[k])))])
        view = [1] * r
        view[k] = us[k]
        ix = L.b.node("Expand", [L.b.node("Reshape", [ix, L.b.i64(view + [1])]), L.b.i64(grid + [1])])
        cols.append(ix)
    index = cols[0] if r == 1 else L.b.node("Concat", cols, axis=-1)
    return L.b.node("ScatterND", [x, index, u])


def _dynamic_update_slice(L, n, i, a, idt, odt):
    x, u, starts = i[0], i[1], i[2:]
    xs, us = list(n.inputs[0].shape), list(n.inputs[1].shape)
    static = all(isinstance(d, int) for d in xs + us)
    if static and idt is not DType.bool and xs != us and 0 not in us:
        return _scatter_update(L, x, u, starts, xs, us)
    rank = len(starts)
    ushape = L.b.node("Shape", [u])
    sizes = [L.b.node("Gather", [ushape, L.b.i64([k])], axis=0) for k in range(rank)]
    st = _clamped_starts(L, x, starts, sizes)
    xshape = L.b.node("Shape", [x])
    begin = L.b.node("Concat", st, axis=0)
    after = L.b.node("Sub", [L.b.node("Sub", [xshape, begin]), ushape])
    pads = L.b.node("Concat", [begin, after], axis=0)
    padded = L.b.node("Pad", [u, pads])
    ones = L.b.node(
        "ConstantOfShape", [ushape], value=numpy_helper.from_array(np.asarray([1], np.int32), "v")
    )
    mask = L.b.node("Cast", [L.b.node("Pad", [ones, pads])], to=TensorProto.BOOL)
    return _where_any(L, mask, padded, x, idt)


def _take(L, n, i, a, idt, odt):
    return L.b.node("Gather", [i[0], L.b.node("Cast", [i[1]], to=TensorProto.INT64)], axis=a["axis"])


def _take_along_axis(L, n, i, a, idt, odt):
    return L.b.node("GatherElements", [i[0], L.b.node("Cast", [i[1]], to=TensorProto.INT64)], axis=a["axis"])


def _put_along_axis(L, n, i, a, idt, odt):
    return L.b.node(
        "ScatterElements", [i[0], L.b.node("Cast", [i[1]], to=TensorProto.INT64), i[2]], axis=a["axis"]
    )


def _argsort_names(L: Lowering, x: str, dt: DType, rank: int, axis: int, descending: bool) -> str:
    """Stable argsort, nan larger than +inf: TopK (ties -> lower index) by value, then by nan flag."""
    shape = L.b.node("Shape", [x])
    k = L.b.node("Gather", [shape, L.b.i64([axis])], axis=0)
    if dt.is_floating:
        v = L.b.node("Cast", [x], to=TensorProto.DOUBLE)
        nan = L.b.node("IsNaN", [v])
        v = L.b.node("Where", [nan, L.b.const(np.asarray(0.0)), v])
        _, idx = L.b.node("TopK", [v, k], n_out=2, axis=axis, largest=int(descending), sorted=1)
        flag = L.b.node("Cast", [L.b.node("Not", [nan]) if descending else nan], to=TensorProto.INT64)
        flag_sorted = L.b.node("GatherElements", [flag, idx], axis=axis)
        _, idx2 = L.b.node("TopK", [flag_sorted, k], n_out=2, axis=axis, largest=0, sorted=1)
        return L.b.node("GatherElements", [idx, idx2], axis=axis)
    v = L.b.node("Cast", [x], to=TensorProto.INT64)
    _, idx = L.b.node("TopK", [v, k], n_out=2, axis=axis, largest=int(descending), sorted=1)
    return idx


def _argsort(L, n, i, a, idt, odt):
    rank = len(n.inputs[0].shape)
    return _argsort_names(L, i[0], idt, rank, a["axis"] % rank, a["descending"])


def _sort(L, n, i, a, idt, odt):
    rank = len(n.inputs[0].shape)
    idx = _argsort_names(L, i[0], idt, rank, a["axis"] % rank, a["descending"])
    return L.b.node("GatherElements", [i[0], idx], axis=a["axis"] % rank)


def _top_k(L, n, i, a, idt, odt):
    rank = len(n.inputs[0].shape)
    idx = _argsort_names(L, i[0], idt, rank, rank - 1, True)
    idx = L.b.node("Slice", [idx, L.b.i64([0]), L.b.i64([a["k"]]), L.b.i64([rank - 1])])
    return [L.b.node("GatherElements", [i[0], idx], axis=rank - 1), idx]


def _softmax(log: bool):
    def f(L, n, i, a, idt, odt):
        x, axis = i[0], a["axis"]
        m = L.b.node("ReduceMax", [x, L.b.i64([axis])], keepdims=1)
        finite = L.b.node("Not", [L.b.node("Or", [L.b.node("IsNaN", [m]), L.b.node("IsInf", [m])])])
        m = L.b.node("Where", [finite, m, L.b.const(np.asarray(0, NP_CARRIED[idt]))])
        s = L.b.node("Sub", [x, m])
        e = L.b.node("Exp", [s])
        tot = L.b.node("ReduceSum", [e, L.b.i64([axis])], keepdims=1)
        if log:
            return L.b.node("Sub", [s, L.b.node("Log", [tot])])
        return L.b.node("Div", [e, tot])

    return f


def _rms_norm(L, n, i, a, idt, odt):
    x, w = i
    ms = L.b.node("ReduceMean", [L.b.node("Mul", [x, x]), L.b.i64([-1])], keepdims=1)
    eps = L.b.const(np.asarray(a["eps"], NP_CARRIED[idt]))
    one = L.b.const(np.asarray(1.0, NP_CARRIED[idt]))
    r = L.b.node("Div", [one, L.b.node("Sqrt", [L.b.node("Add", [ms, eps])])])
    return L.b.node("Mul", [L.b.node("Mul", [x, r]), w])


def _layer_norm(L, n, i, a, idt, odt):
    return L.b.node("LayerNormalization", i[:3], axis=-1, epsilon=float(a["eps"]))


def _clip(L, n, i, a, idt, odt):
    y = i[0]
    for bound, op in ((a["min"], "Max"), (a["max"], "Min")):
        if bound is not None:
            y = _nanprop_bin(op)(L, n, [y, L.b.const(np.asarray(bound).astype(NP_CARRIED[idt]))], a, idt, odt)
    return y if y != i[0] else L.b.node("Identity", [y])


# ---------------------------------------------------------------------------- exact helpers
# ONNX Runtime lacks some kernels (Erf/Gelu for double, Where for bool) and computes others
# inexactly (Pow for ints goes through floating point; ReduceSum/ReduceMean on int64 and empty
# axes); these helpers build the reference semantics from exact standard ops.


def _counted_loop(
    L: Lowering, trips: int, state: list[str], types: list[int], body_fn: Callable
) -> list[str]:
    """A ``Loop`` with a fixed trip count; ``body_fn(builder, iter_name, state_names)`` returns the
    new state. Outer-scope names (e.g. the loop's operands) are visible inside the body."""
    body = Builder(L.b.root)
    it, c_in = L.b.fresh("iter"), L.b.fresh("cond_in")
    s_in = [L.b.fresh("state_in") for _ in state]
    new = [body.node("Identity", [x]) for x in body_fn(body, it, s_in)]
    c_out = body.node("Identity", [c_in])
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        body.nodes,
        L.b.fresh("loop_body"),
        [vi(it, TensorProto.INT64, []), vi(c_in, TensorProto.BOOL, [])]
        + [vi(s, t, None) for s, t in zip(s_in, types)],
        [vi(c_out, TensorProto.BOOL, [])] + [vi(s, t, None) for s, t in zip(new, types)],
    )
    outs = [L.b.fresh("loop_out") for _ in state]
    L.b.nodes.append(helper.make_node("Loop", [L.b.const(np.int64(trips)), ""] + state, outs, body=graph))
    return outs


#: terms of the erf series used for float64 (enough for |x| <= 6; erf(6) rounds to 1 in float64)
ERF64_TERMS = 170


def _erf64(L: Lowering, x: str) -> str:
    """erf for float64 (ORT has no double Erf): erf(x) = 2/sqrt(pi) * x * exp(-x^2) * S with
    S = sum_n (2x^2)^n / (2n+1)!!, a series of positive terms (no cancellation), x clamped to
    [-6, 6] (|erf| rounds to 1 beyond) and nan passed through."""
    d = lambda v: L.b.const(np.asarray(v, np.float64))  # noqa: E731
    isnan = L.b.node("IsNaN", [x])
    xc = L.b.node("Min", [L.b.node("Max", [L.b.node("Where", [isnan, d(0.0), x]), d(-6.0)]), d(6.0)])
    t2 = L.b.node("Mul", [d(2.0), L.b.node("Mul", [xc, xc])])
    one = L.b.node("Add", [L.b.node("Mul", [xc, d(0.0)]), d(1.0)])

    def body(b: Builder, it: str, s: list[str]) -> list[str]:
        k = b.node("Add", [b.node("Mul", [b.node("Cast", [it], to=TensorProto.DOUBLE), d(2.0)]), d(3.0)])
        term = b.node("Div", [b.node("Mul", [s[0], t2]), k])
        return [term, b.node("Add", [s[1], term])]

    _, total = _counted_loop(L, ERF64_TERMS, [one, one], [TensorProto.DOUBLE] * 2, body)
    scale = L.b.node(
        "Mul",
        [
            L.b.node("Mul", [d(2.0 / math.sqrt(math.pi)), xc]),
            L.b.node("Exp", [L.b.node("Neg", [L.b.node("Mul", [xc, xc])])]),
        ],
    )
    val = L.b.node("Mul", [scale, total])
    val = L.b.node(
        "Where", [L.b.node("GreaterOrEqual", [L.b.node("Abs", [xc]), d(6.0)]), L.b.node("Sign", [xc]), val]
    )
    return L.b.node("Where", [isnan, x, val])


def _erf(L, n, i, a, idt, odt):
    if idt is DType.float64:
        return _erf64(L, i[0])
    return L.b.node("Erf", [i[0]])


def _gelu(L, n, i, a, idt, odt):
    if idt is DType.float64 and a["approximate"] == "none":
        d = lambda v: L.b.const(np.asarray(v, np.float64))  # noqa: E731
        e = _erf64(L, L.b.node("Div", [i[0], d(math.sqrt(2.0))]))
        return L.b.node("Mul", [L.b.node("Mul", [d(0.5), i[0]]), L.b.node("Add", [d(1.0), e])])
    return L.b.node("Gelu", [i[0]], approximate=a["approximate"])


def _where_any(L: Lowering, c: str, x: str, y: str, dt: DType) -> str:
    """Where for every carried type (ORT's Where has no bool kernel: go through int32)."""
    if dt is DType.bool:
        xi, yi = (L.b.node("Cast", [v], to=TensorProto.INT32) for v in (x, y))
        return L.b.node("Cast", [L.b.node("Where", [c, xi, yi])], to=TensorProto.BOOL)
    return L.b.node("Where", [c, x, y])


def _where(L, n, i, a, idt, odt):
    return _where_any(L, i[0], i[1], i[2], odt)


def _mul_wrapped(b: Builder, x: str, y: str, dt: DType) -> str:
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


def _pow(L, n, i, a, idt, odt):
    """Floats: Pow. Integers: exact square-and-multiply over the exponent's bits with
    wrap-around (ORT's integer Pow goes through floating point and saturates)."""
    if _is_float(idt):
        return L.b.node("Pow", i[:2])
    carried = CARRIED[idt]
    zero = L.b.const(np.asarray(0, NP_CARRIED[idt]))
    one = L.b.const(np.asarray(1, NP_CARRIED[idt]))
    two = L.b.const(np.asarray(2, NP_CARRIED[idt]))
    base = L.b.node("Add", [i[0], L.b.node("Mul", [i[1], zero])])  # broadcast both operands
    exp = L.b.node("Add", [L.b.node("Max", [i[1], zero]), L.b.node("Mul", [i[0], zero])])
    acc = L.b.node("Add", [L.b.node("Mul", [base, zero]), one])
    bits = 63 if idt is DType.int64 else 32

    def body(b: Builder, it: str, s: list[str]) -> list[str]:
        acc, base, e = s
        odd = b.node("Equal", [b.node("Mod", [e, two]), one])
        acc = b.node("Where", [odd, _mul_wrapped(b, acc, base, idt), acc])
        return [acc, _mul_wrapped(b, base, base, idt), b.node("Div", [e, two])]

    return _counted_loop(L, bits, [acc, base, exp], [carried] * 3, body)[0]


def _int64_sum(L: Lowering, x: str, axes: list[int], shape: list, keepdims: bool) -> str:
    """Exact int64 sum (ORT's ReduceSum on int64 loses low bits for large values): move the
    reduced axes last, flatten them, prepend a zero, CumSum and take the last element."""
    rank = len(shape)
    rest = [k for k in range(rank) if k not in axes]
    t = L.b.node("Transpose", [x], perm=rest + axes)
    rest_dims = [shape[k] for k in rest]
    count = shape[axes[0]]
    for k in axes[1:]:
        count = count * shape[k]
    flat = L.b.node("Reshape", [t, L.shape(rest_dims + [count])], allowzero=1)
    zshape = L.b.node("Concat", [L.shape(rest_dims), L.b.i64([1])], axis=0) if rest_dims else L.b.i64([1])
    zeros = L.b.node(
        "ConstantOfShape", [zshape], value=numpy_helper.from_array(np.asarray([0], np.int64), "v")
    )
    cs = L.b.node("CumSum", [L.b.node("Concat", [zeros, flat], axis=-1), L.b.const(np.int64(-1))])
    last = L.b.node(
        "Squeeze", [L.b.node("Slice", [cs, L.b.i64([-1]), L.b.i64([2**62]), L.b.i64([-1])]), L.b.i64([-1])]
    )
    if keepdims:
        return L.b.node(
            "Reshape", [last, L.shape([1 if k in axes else shape[k] for k in range(rank)])], allowzero=1
        )
    return last


LOWERINGS = {
    "abs": _abs,
    "negative": _u("Neg"),
    "sign": _sign,
    "exp": _u("Exp"),
    "log": _u("Log"),
    "log1p": lambda L, n, i, a, idt, odt: L.b.node(
        "Log", [L.b.node("Add", [i[0], L.b.const(np.asarray(1.0, NP_CARRIED[idt]))])]
    ),
    "sqrt": _u("Sqrt"),
    "rsqrt": _rsqrt,
    "tanh": _u("Tanh"),
    "erf": _erf,
    "sin": _u("Sin"),
    "cos": _u("Cos"),
    "floor": _u("Floor"),
    "ceil": _u("Ceil"),
    "sigmoid": _u("Sigmoid"),
    "silu": _silu,
    "isnan": _isx("isnan"),
    "isinf": _isx("isinf"),
    "isfinite": _isx("isfinite"),
    "logical_not": _u("Not"),
    "bitwise_invert": _bitwise_invert,
    "gelu": _gelu,
    "add": _bin("Add"),
    "subtract": _bin("Sub"),
    "multiply": _bin("Mul"),
    "divide": _bin("Div"),
    "floor_divide": _floor_divide,
    "remainder": _remainder,
    "pow": _pow,
    "maximum": _nanprop_bin("Max"),
    "minimum": _nanprop_bin("Min"),
    "equal": _bin("Equal"),
    "not_equal": lambda L, n, i, a, idt, odt: L.b.node("Not", [L.b.node("Equal", i[:2])]),
    "less": _bin("Less"),
    "less_equal": _bin("LessOrEqual"),
    "greater": _bin("Greater"),
    "greater_equal": _bin("GreaterOrEqual"),
    "logical_and": _bin("And"),
    "logical_or": _bin("Or"),
    "logical_xor": _bin("Xor"),
    "bitwise_and": _bool_or_bitwise("And", "BitwiseAnd"),
    "bitwise_or": _bool_or_bitwise("Or", "BitwiseOr"),
    "bitwise_xor": _bool_or_bitwise("Xor", "BitwiseXor"),
    "bitwise_left_shift": _shift(True),
    "bitwise_right_shift": _shift(False),
    "where": _where,
    "clip": _clip,
    "astype": _astype,
    "sum": _reduce("ReduceSum"),
    "prod": _prod,
    "mean": _reduce("ReduceMean"),
    "max": _reduce("ReduceMax", True),
    "min": _reduce("ReduceMin", True),
    "any": _any_all(True),
    "all": _any_all(False),
    "logsumexp": _logsumexp,
    "argmax": _argext(True),
    "argmin": _argext(False),
    "cumulative_sum": _cumsum,
    "matmul": _matmul,
    "einsum": _einsum,
    "full": _full,
    "arange": _arange,
    "reshape": _reshape,
    "permute_dims": _permute,
    "expand_dims": _expand_dims,
    "squeeze": _squeeze,
    "broadcast_to": _broadcast_to,
    "concat": _concat,
    "stack": _stack,
    "flip": _flip,
    "repeat": _repeat,
    "tile": _tile,
    "slice": _slice,
    "dynamic_slice": _dynamic_slice,
    "dynamic_update_slice": _dynamic_update_slice,
    "take": _take,
    "take_along_axis": _take_along_axis,
    "put_along_axis": _put_along_axis,
    "sort": _sort,
    "argsort": _argsort,
    "top_k": _top_k,
    "softmax": _softmax(False),
    "log_softmax": _softmax(True),
    "rms_norm": _rms_norm,
    "layer_norm": _layer_norm,
    "while_loop": "Loop",
    "cond": "If",
}
#: ops whose output is exact for float16/bfloat16 inputs already (no rounding Cast round trip)
NO_ROUND = {
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
}
U32_MASKED = {
    "add",
    "subtract",
    "multiply",
    "negative",
    "bitwise_invert",
    "bitwise_left_shift",
    "pow",
    "sum",
    "prod",
    "cumulative_sum",
    "matmul",
    "einsum",
}


# ---------------------------------------------------------------------------- model building


def _static(spec: TensorSpec) -> list | None:
    """A loop-carried value's shape when every dim is static (ORT then folds shape arithmetic
    inside the body), else unknown."""
    dims = list(spec.shape)
    return dims if all(isinstance(d, int) for d in dims) else None


def _value_info(name: str, spec: TensorSpec) -> Any:
    dims = [d if isinstance(d, int) else str(d) for d in spec.shape]
    return helper.make_tensor_value_info(name, BOUNDARY[spec.dtype], dims)


def to_model_proto(graph: Graph, opset: int | None = None) -> onnx.ModelProto:
    """The ModelProto of a graph (standard domain only)."""
    opset = opset or OPSET
    if opset < 20:
        raise IRError(f"opset {opset} is too old: tensorweave's ONNX lowering needs opset 20 or newer (Gelu)")
    b = Builder()
    specs = graph.input_specs
    names = graph.input_names
    inner: list[str] = []
    for name, spec in zip(names, specs):
        if spec.dtype in (DType.uint32,):
            inner.append(b.node("Cast", [name], to=TensorProto.INT64))
        elif spec.dtype is DType.float16:
            inner.append(b.node("Cast", [name], to=TensorProto.FLOAT))
        elif spec.dtype is DType.bfloat16:
            inner.append(
                b.node("Cast", [b.node("Cast", [name], to=TensorProto.BFLOAT16)], to=TensorProto.FLOAT)
            )
        else:
            inner.append(name)
    sym: dict[str, str] = {}
    for s, i, ax, rest in symbol_plan(specs):
        size = b.node("Shape", [names[i]], start=ax, end=ax + 1)
        if not (isinstance(rest, int) and rest == 0):
            size = b.node("Sub", [size, Lowering(b, sym).dim(rest)])
        sym[s] = size
    outs = Lowering(b, sym).run(graph, inner)
    final = []
    for name, spec, o in zip(graph.output_names, graph.output_specs, outs):
        if spec.dtype is DType.uint32:
            b.nodes.append(helper.make_node("Cast", [o], [name], to=TensorProto.UINT32))
        elif spec.dtype is DType.float16:
            b.nodes.append(helper.make_node("Cast", [o], [name], to=TensorProto.FLOAT16))
        else:
            b.nodes.append(helper.make_node("Identity", [o], [name]))
        final.append(_value_info(name, spec))
    g = helper.make_graph(
        b.nodes,
        graph.name or "tensorweave",
        [_value_info(n, s) for n, s in zip(names, specs)],
        final,
        b.initializers,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="tensorweave")
    model.ir_version = min(model.ir_version, 10)
    return model


class OnnxProgram(Program):
    backend = NAME

    def __init__(self, graph: Graph, opset: int | None = None):
        import onnxruntime as ort

        super().__init__(graph)
        self.model = to_model_proto(graph, opset)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            self.model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        self._ort = ort

    def _is_native(self, x: Any) -> bool:
        return isinstance(x, self._ort.OrtValue)

    def _native_shape(self, x: Any) -> tuple:
        return tuple(int(d) for d in x.shape())

    def _native_dtype(self, x: Any) -> DType:
        t = x.data_type()  # e.g. "tensor(float)"
        name = t[len("tensor(") : -1]
        return {"float": DType.float32, "double": DType.float64, "float16": DType.float16}.get(name) or DType(
            name
        )

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        if spec.dtype is DType.bfloat16:
            return x.astype(np.float32)
        return x

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        arr = x.numpy() if isinstance(x, self._ort.OrtValue) else np.asarray(x)
        if spec.dtype is DType.bfloat16:
            return arr.astype(spec.dtype.to_numpy())
        return arr

    def _run(self, args: list, env: dict) -> list:
        feeds = dict(zip(self.input_names, args))
        if args and all(isinstance(a, self._ort.OrtValue) for a in args):
            return list(self.session.run_with_ort_values(self.output_names, feeds))
        return list(
            self.session.run(self.output_names, {k: np.asarray(v, order="C") for k, v in feeds.items()})
        )

    def export(self, path: str, external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> str:
        return save_model(self.model, path, external_data_threshold)


def save_model(
    model: onnx.ModelProto, path: str, external_data_threshold: int = EXTERNAL_DATA_THRESHOLD
) -> str:
    """Write ``path`` atomically; weights go to an external data file once the model reaches the threshold."""
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    size = model.ByteSize()
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".onnx.tmp")
    os.close(fd)
    try:
        if size >= external_data_threshold:
            data_name = os.path.basename(path) + ".data"
            tmp_data = os.path.join(directory, os.path.basename(tmp) + ".data")
            m = onnx.ModelProto()
            m.CopyFrom(model)
            onnx.save_model(
                m,
                tmp,
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=os.path.basename(tmp_data),
                size_threshold=0,
            )
            # point the model at the final data file name, then move both into place
            m2 = onnx.load_model(tmp, load_external_data=False)
            for init in m2.graph.initializer:
                for entry in init.external_data:
                    if entry.key == "location":
                        entry.value = data_name
            with open(tmp, "wb") as f:
                f.write(m2.SerializeToString())
            if os.path.exists(tmp_data):
                os.chmod(tmp_data, 0o644)
                os.replace(tmp_data, os.path.join(directory, data_name))
        else:
            onnx.save_model(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def lower(graph: Graph, opset: int | None = None, **options: Any) -> OnnxProgram:
    if options:
        raise IRError(f"the onnx backend takes the option opset=<int> only, got {sorted(options)}")
    graph.check()
    return OnnxProgram(graph, opset)


def _sum(L, n, i, a, idt, odt):
    if idt in (DType.int64, DType.uint32):
        axes = _axes_of(a, len(n.inputs[0].shape))
        if not axes:
            return L.b.node("Identity", [i[0]])
        return _int64_sum(
            L, i[0], [k % len(n.inputs[0].shape) for k in axes], list(n.inputs[0].shape), bool(a["keepdims"])
        )
    return _reduce("ReduceSum")(L, n, i, a, idt, odt)


def _mean(L, n, i, a, idt, odt):
    """ReduceSum / count (ReduceMean of an empty axis gives 0 in ORT; the reference gives nan)."""
    axes = _axes_of(a, len(n.inputs[0].shape))
    if not axes:
        return L.b.node("Identity", [i[0]])
    total = _reduce("ReduceSum")(L, n, i, a, idt, odt)
    dims = L.b.node("Gather", [L.b.node("Shape", [i[0]]), L.b.i64(axes)], axis=0)
    count = L.b.node("Cast", [L.b.node("ReduceProd", [dims], keepdims=0)], to=CARRIED[idt])
    return L.b.node("Div", [total, count])


LOWERINGS.update(sum=_sum, mean=_mean)
