"""ONNX graph construction: the node :class:`Builder`, the :class:`Lowering` that walks an IR graph
(symbols, dims, constants, ``Loop`` / ``If``) and :func:`to_model_proto` (spec/backends-onnx.md).

A rule of :mod:`.rules` sees an :class:`OnnxSite`: the IR node, the ONNX names of its inputs
(``site.args``), its attributes with symbolic dims already evaluated (``site.attrs``, by
:func:`~tensorweave.backends.base.resolve_symbolic_attrs`) and the lowering (``site.lowering``,
``site.b``) to emit nodes with.

Symbolic dims. Inside the graph every symbol is a 1-D int64 ``[1]`` tensor read with ``Shape``
from an input (``symbol_plan``). ``resolve_symbolic_attrs`` evaluates dims with ``eval_dim``,
which only adds and multiplies its env values; ONNX names are strings (``+`` would concatenate
them), so the env maps each symbol to a :class:`DimTensor`: an ONNX name whose ``+`` / ``*``
emit ``Add`` / ``Mul`` nodes into the current (sub)graph. A resolved dim is therefore an ``int``
or a ``DimTensor``; :meth:`Lowering.dim` turns either (or an IR ``SymDim`` of a value's shape,
through the same ``eval_dim``) into a name.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ...ir.graph import Graph
from ...ir.ops import OPS
from ...ir.types import DType, IRError, SymDim, TensorSpec
from ..base import Site, carried_dtype, eval_dim, resolve_symbolic_attrs, symbol_plan

NAME = "onnx"
#: the default opset (standard domain); 20 is the oldest accepted (Gelu)
OPSET = 21
MIN_OPSET = 20
MASK32 = 0xFFFFFFFF

#: the ONNX type each IR dtype is carried as inside the graph
ONNX_TYPE = {
    DType.bool: TensorProto.BOOL,
    DType.int32: TensorProto.INT32,
    DType.int64: TensorProto.INT64,
    DType.uint32: TensorProto.UINT32,
    DType.float16: TensorProto.FLOAT16,
    DType.bfloat16: TensorProto.BFLOAT16,
    DType.float32: TensorProto.FLOAT,
    DType.float64: TensorProto.DOUBLE,
}
CARRIED = {dt: ONNX_TYPE[carried_dtype(dt, low_floats_as_float32=True)] for dt in DType}
#: the ONNX type of graph inputs/outputs (bfloat16 crosses as float32: ORT's Python API has no
#: bfloat16 numpy type)
BOUNDARY = {**ONNX_TYPE, DType.bfloat16: TensorProto.FLOAT}
#: low-precision floats: carried as float32, rounded to this type after every op
ROUND = {DType.float16: TensorProto.FLOAT16, DType.bfloat16: TensorProto.BFLOAT16}
#: the numpy type of a carried constant
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


# constants this large stay numpy arrays handed to the session in place, not copied into the proto
IN_MEMORY_MIN_BYTES = 1 << 16
IN_MEMORY_LOCATION = "tensorweave-in-memory"


class Builder:
    """Emits ONNX nodes into one (sub)graph; names are unique across the whole model."""

    def __init__(self, root: "Builder | None" = None, in_memory: dict | None = None):
        self.root = root or self
        self.nodes: list = []
        self.initializers: list = []
        if root is None:
            self.counter = 0
            self.const_cache: dict = {}
            self.in_memory = in_memory
            self.arrays: dict[str, np.ndarray] = {}  # initializer name -> its value (for folding)
            self.by_identity: dict = {}  # (id(array), dtype) -> (array, initializer name)
            self.transposed: dict[str, str] = {}  # Transpose output -> the 2-D initializer it transposes
            self.nbits: dict[tuple, tuple] = {}  # (packed, scales, zero_point) -> MatMulNBits initializers
            self.contrib = False  # a com.microsoft op was emitted (MatMulNBits): import its domain
            self.block_sums: dict[tuple, str] = {}  # (builder id, x, block) -> block sums of x

    def initializer(self, arr: np.ndarray, name: str) -> None:
        """A main-graph initializer. With ``in_memory`` (a dict) a large array is not copied into the
        proto: the initializer is a placeholder whose data lives outside the model
        (``IN_MEMORY_LOCATION``) and the array goes into ``in_memory[name]``, for the session to use
        in place (``SessionOptions.add_external_initializers``)."""
        root = self.root
        root.arrays[name] = arr
        if root.in_memory is None or arr.nbytes < IN_MEMORY_MIN_BYTES:
            root.initializers.append(numpy_helper.from_array(arr, name))
            return
        t = TensorProto()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
        t.dims.extend(arr.shape)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", IN_MEMORY_LOCATION), ("offset", "0"), ("length", str(arr.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        root.initializers.append(t)
        root.in_memory[name] = arr

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
            self.initializer(arr, name)
            cache[key] = name
        return cache[key]

    def i64(self, values: Sequence[int] | int) -> str:
        return self.const(np.asarray(values, dtype=np.int64))


class DimTensor:
    """A dim held by a 1-D int64 ``[1]`` ONNX tensor: the env value of a symbol for
    ``eval_dim`` / ``resolve_symbolic_attrs``. ``+`` and ``*`` (with ints or other DimTensors)
    emit ``Add`` / ``Mul`` into the builder ``b`` and return a new DimTensor; the constant
    operand comes second, as in a hand-written ``Mul(dim, coeff)``."""

    __slots__ = ("name", "b")

    def __init__(self, name: str, b: Builder):
        self.name = name
        self.b = b

    def _operand(self, other: Any) -> str:
        return other.name if isinstance(other, DimTensor) else self.b.i64([int(other)])

    def __add__(self, other: Any) -> "DimTensor":
        return DimTensor(self.b.node("Add", [self.name, self._operand(other)]), self.b)

    def __radd__(self, other: Any) -> "DimTensor":  # int + dim: the constant term came first
        return DimTensor(self.b.node("Add", [self._operand(other), self.name]), self.b)

    def __mul__(self, other: Any) -> "DimTensor":
        return DimTensor(self.b.node("Mul", [self.name, self._operand(other)]), self.b)

    __rmul__ = __mul__  # coeff * dim: Mul(dim, coeff)

    def __repr__(self) -> str:
        return f"DimTensor({self.name})"


class OnnxSite(Site):
    """An IR node as an onnx rule sees it: :class:`~tensorweave.backends.base.Site`'s fields
    (``node``, ``args`` = ONNX input names, ``attrs`` with dims resolved to ints or
    :class:`DimTensor`) plus the lowering that emits nodes (``lowering``, ``b``)."""

    __slots__ = ("lowering",)

    def __init__(self, node: Any, args: Sequence[str], attrs: dict, lowering: "Lowering"):
        super().__init__(node, args, attrs)
        self.lowering = lowering

    @property
    def b(self) -> Builder:
        return self.lowering.b

    @property
    def in_shape(self) -> list:
        """The first input's IR shape (ints and SymDims)."""
        return list(self.node.inputs[0].shape)


_RULES: tuple[Any, Any] | None = None


def use_rules(rules: Any, no_round: Any) -> None:
    """Called once by ``rules.py`` (which builds on this module): the table every
    :class:`Lowering` uses by default, registered here instead of imported upward."""
    global _RULES
    _RULES = (rules, no_round)


def _body_outputs(body: Builder, names: list[str]) -> list[str]:
    """Names a loop body can return: a value computed by one of its nodes is returned as it is
    (an Identity there would copy, e.g., a whole KV cache every step); a body input, an outer-scope
    name or a repeated name goes through an Identity."""
    produced = {o for n in body.nodes for o in n.output}
    out: list[str] = []
    for x in names:
        out.append(x if x in produced and x not in out else body.node("Identity", [x]))
    return out


class Lowering:
    """Lowers one IR graph (or subgraph) into a Builder, given the names bound to its inputs.

    ``sym`` maps each symbol to the name of a 1-D int64 ``[1]`` tensor; ``rules`` is the rule
    table (``op -> rule(site)``) and ``no_round`` the ops whose float16/bfloat16 results need no
    rounding Cast round trip."""

    def __init__(self, b: Builder, sym: dict[str, str], rules: Any = None, no_round: Any = None):
        if rules is None:
            if _RULES is None:
                raise IRError("the onnx rule table is not loaded; import tensorweave.backends.onnx")
            rules, no_round = _RULES
        self.b = b
        self.sym = sym
        self.rules = rules
        self.no_round = no_round
        self.env = {s: DimTensor(name, b) for s, name in sym.items()}

    def inner(self, b: Builder) -> "Lowering":
        """A lowering of a subgraph emitting into ``b`` (same symbols and rules)."""
        return Lowering(b, self.sym, self.rules, self.no_round)

    # -- dims -----------------------------------------------------------------------
    def dim(self, d: Any) -> str:
        """1-D int64 [1] tensor holding the dim's value (an int, a DimTensor or an IR SymDim)."""
        if isinstance(d, SymDim):
            d = eval_dim(d, self.env)
        if isinstance(d, DimTensor):
            return d.name
        return self.b.i64([int(d)])

    def shape(self, dims: Sequence[Any]) -> str:
        if all(isinstance(d, int) for d in dims):
            return self.b.i64(list(dims))
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
            outs = self.emit(node, [names[v] for v in node.inputs])
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for v, o in zip(node.outputs, outs):
                names[v] = o
        return [names[v] for v in graph.outputs]

    def constant(self, arr: np.ndarray, dt: DType, name: str | None = None) -> str:
        """An IR constant as an initializer (large or named) or a deduplicated small constant. The
        same array object used by several (sub)graphs — the weights in a prompt graph and a loop
        body — becomes one initializer."""
        root = self.b.root
        key = (id(arr), dt)
        seen = root.by_identity.get(key)
        if seen is not None and seen[0] is arr:
            return seen[1]
        out = self._constant(arr, dt, name)
        if np.asarray(arr).size > 64:
            root.by_identity[key] = (arr, out)
        return out

    def folded(self, key: tuple, make: Any) -> str:
        """The initializer of a constant computed at lowering time (``make()``), once per ``key``."""
        root = self.b.root
        seen = root.by_identity.get(key)
        if seen is None:
            arr = np.ascontiguousarray(make())
            name = self.b.fresh("folded")
            self.b.initializer(arr, name)
            seen = root.by_identity[key] = (arr, name)
        return seen[1]

    def constant_value(self, name: str) -> np.ndarray | None:
        """The value of the initializer ``name`` (None if ``name`` is not one)."""
        return self.b.root.arrays.get(name)

    def _constant(self, arr: np.ndarray, dt: DType, name: str | None = None) -> str:
        a = np.asarray(arr)
        if dt is DType.uint32:
            a = a.astype(np.int64)
        elif dt in (DType.float16, DType.bfloat16):
            a = a.astype(np.float32)
        if a.size > 64 or name:
            used = {t.name for t in self.b.root.initializers}
            name = name if (name and name not in used) else self.b.fresh("init")
            self.b.initializer(np.asarray(a, order="C"), name)
            return name
        return self.b.const(a)

    def emit(self, node: Any, ins: list[str]) -> Any:
        op = node.op
        site = OnnxSite(node, ins, resolve_symbolic_attrs(node, self.env), self)
        out = self.rules[op](site)
        out_dt = node.outputs[0].dtype if node.outputs else None
        if out_dt in ROUND and op not in self.no_round:
            out = self.round_low(out, out_dt)
        if out_dt is DType.uint32 and OPS[op].wraps_uint32:
            out = self.b.node("BitwiseAnd", [out, self.b.i64(MASK32)])
        return out

    def round_low(self, x: str, dt: DType) -> str:
        return self.b.node("Cast", [self.b.node("Cast", [x], to=ROUND[dt])], to=TensorProto.FLOAT)

    # -- control flow ---------------------------------------------------------------
    def while_loop(self, node: Any, ins: list[str]) -> list[str]:
        """``Loop`` with an empty trip count: the condition runs once before the loop and again at
        the end of the body. Loop-carried values declare their shape when it is static."""
        n = node.attrs["num_state"]
        state, cap = ins[:n], ins[n:]
        cg, bg = node.subgraphs["cond"], node.subgraphs["body"]
        cond0 = self.run(cg, state + cap)[0]
        body = Builder(self.b.root)
        inner = self.inner(body)
        it, c_in = self.b.fresh("iter"), self.b.fresh("cond_in")
        s_in = [self.b.fresh("state_in") for _ in range(n)]
        new_state = inner.run(bg, s_in + cap)
        new_state = _body_outputs(body, new_state)
        c_out = body.node("Identity", [inner.run(cg, new_state + cap)[0]])
        specs = [v.spec for v in node.outputs]
        graph = helper.make_graph(
            body.nodes,
            self.b.fresh("loop_body"),
            [
                helper.make_tensor_value_info(it, TensorProto.INT64, []),
                helper.make_tensor_value_info(c_in, TensorProto.BOOL, []),
            ]
            + [
                helper.make_tensor_value_info(nm, CARRIED[s.dtype], static_shape(s))
                for nm, s in zip(s_in, specs)
            ],
            [helper.make_tensor_value_info(c_out, TensorProto.BOOL, [])]
            + [
                helper.make_tensor_value_info(nm, CARRIED[s.dtype], static_shape(s))
                for nm, s in zip(new_state, specs)
            ],
        )
        outs = [self.b.fresh("loop_out") for _ in range(n)]
        self.b.nodes.append(helper.make_node("Loop", ["", cond0] + state, outs, body=graph))
        return outs

    def cond(self, node: Any, ins: list[str]) -> list[str]:
        """``If``; both branches read the operands as outer-scope names."""
        pred, ops = ins[0], ins[1:]
        branches = []
        for key in ("then", "else"):
            bb = Builder(self.b.root)
            res = self.inner(bb).run(node.subgraphs[key], ops)
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

    def counted_loop(self, trips: int, state: list[str], types: list[int], body_fn: Callable) -> list[str]:
        """A ``Loop`` with a fixed trip count; ``body_fn(builder, iter_name, state_names)`` returns the
        new state. Outer-scope names (e.g. the loop's operands) are visible inside the body."""
        body = Builder(self.b.root)
        it, c_in = self.b.fresh("iter"), self.b.fresh("cond_in")
        s_in = [self.b.fresh("state_in") for _ in state]
        new = [body.node("Identity", [x]) for x in body_fn(body, it, s_in)]
        c_out = body.node("Identity", [c_in])
        vi = helper.make_tensor_value_info
        graph = helper.make_graph(
            body.nodes,
            self.b.fresh("loop_body"),
            [vi(it, TensorProto.INT64, []), vi(c_in, TensorProto.BOOL, [])]
            + [vi(s, t, None) for s, t in zip(s_in, types)],
            [vi(c_out, TensorProto.BOOL, [])] + [vi(s, t, None) for s, t in zip(new, types)],
        )
        outs = [self.b.fresh("loop_out") for _ in state]
        self.b.nodes.append(
            helper.make_node("Loop", [self.b.const(np.int64(trips)), ""] + state, outs, body=graph)
        )
        return outs


# ---------------------------------------------------------------------------- model building


def static_shape(spec: TensorSpec) -> list | None:
    """A loop-carried value's shape when every dim is static (ORT then folds shape arithmetic
    inside the body), else unknown."""
    dims = list(spec.shape)
    return dims if all(isinstance(d, int) for d in dims) else None


def _value_info(name: str, spec: TensorSpec) -> Any:
    dims = [d if isinstance(d, int) else str(d) for d in spec.shape]
    return helper.make_tensor_value_info(name, BOUNDARY[spec.dtype], dims)


def _live_nodes(nodes: list, needed: set[str]) -> list:
    """``nodes`` without those whose outputs nothing reads (a weight's ``Transpose`` that matmul
    replaced by ``Gemm(transB=1)``); subgraph bodies are pruned the same way against their outputs."""
    kept = []
    for n in reversed(nodes):
        if not any(o in needed for o in n.output):
            continue
        for a in n.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                live = _live_nodes(list(sub.node), {o.name for o in sub.output})
                del sub.node[:]
                sub.node.extend(live)
        needed.update(n.input)
        needed |= _used_names([n])
        kept.append(n)
    return kept[::-1]


def _used_names(nodes: Sequence[Any]) -> set[str]:
    """Every name read by ``nodes`` or by the nodes of their subgraphs (``Loop`` / ``If`` bodies)."""
    used: set[str] = set()
    for n in nodes:
        used.update(n.input)
        for a in n.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                used |= _used_names(sub.node)
    return used


def to_model_proto(graph: Graph, opset: int | None = None, in_memory: dict | None = None) -> onnx.ModelProto:
    """The ModelProto of a graph (standard domain only). With ``in_memory`` (a dict, filled here)
    constants of ``IN_MEMORY_MIN_BYTES`` or more stay numpy arrays outside the proto (see
    :meth:`Builder.initializer`): such a proto is for an in-process session only, never a file."""
    opset = opset or OPSET
    if opset < MIN_OPSET:
        raise IRError(f"opset {opset} is too old: tensorweave's ONNX lowering needs opset 20 or newer (Gelu)")
    b = Builder(in_memory=in_memory)
    specs = graph.input_specs
    names = graph.input_names
    inner: list[str] = []
    for name, spec in zip(names, specs):
        if spec.dtype is DType.uint32:
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
    b.nodes = _live_nodes(b.nodes, set(graph.output_names))
    used = _used_names(b.nodes) | set(graph.output_names)
    b.initializers = [t for t in b.initializers if t.name in used]  # e.g. weights folded into W^T
    if in_memory is not None:
        for name in [n for n in in_memory if n not in used]:
            del in_memory[name]
    g = helper.make_graph(
        b.nodes,
        graph.name or "tensorweave",
        [_value_info(n, s) for n, s in zip(names, specs)],
        final,
        b.initializers,
    )
    imports = [helper.make_opsetid("", opset)]
    if b.contrib:
        imports.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(g, opset_imports=imports, producer_name="tensorweave")
    model.ir_version = min(model.ir_version, 10)
    return model
