"""Graph passes; each returns a new graph (new Node objects and lists) and leaves its input untouched.

Values are shared between the input and the output graph: they are immutable SSA names.

- :func:`infer_shapes`: re-derive every node's output types with the registry rules (recursing
  into subgraphs), check attributes and constants, and raise IRError naming the node where a
  recorded type disagrees. This is the "full validation" of a graph.
- :func:`dead_code_elimination`: keep a node iff one of its outputs is live (a graph output or
  an input of a kept node); subgraphs are cleaned the same way (their signature is kept);
  unused constants are dropped.
- :func:`constant_folding`: a node without subgraphs whose inputs are all known (constants, or
  outputs of small static nullary nodes such as ``full``/``arange``) and whose outputs have static
  shapes of at most ``max_size`` elements each is evaluated with the numpy reference and its
  outputs become constants; then dead code is removed. Nullary nodes themselves stay nodes (a
  ``full`` is smaller than the constant it would become).
- :func:`common_subexpression_elimination`: within one graph, nodes with the same op, the same
  inputs and equal attributes are merged into the first; control-flow nodes merge only when
  their subgraphs are structurally identical (the IR is pure, so that is safe). Equal unnamed
  constants (same dtype, shape and bytes) are merged. Nothing crosses a subgraph boundary.
- :func:`optimize`: DCE -> constant folding -> CSE -> DCE.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .graph import Graph, Node, Value
from .ops import OPS, check_attrs, infer_node, resolve_attrs
from .types import IRError, TensorSpec


def _new_graph(
    g: Graph, nodes: list[Node], constants: dict[Value, np.ndarray], outputs: list[Value] | None = None
) -> Graph:
    return Graph(
        g.name,
        list(g.inputs),
        list(g.outputs if outputs is None else outputs),
        nodes,
        constants,
        list(g.output_names),
    )


def _copy_node(n: Node, inputs: list[Value] | None = None, subgraphs: dict[str, Graph] | None = None) -> Node:
    return Node(
        n.op,
        list(n.inputs if inputs is None else inputs),
        list(n.outputs),
        dict(n.attrs),
        dict(n.subgraphs if subgraphs is None else subgraphs),
    )


def _same_type(a: TensorSpec, b: TensorSpec) -> bool:
    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)


# ------------------------------------------------------------------------------------ infer_shapes


def _check_constant(v: Value, arr: Any, where: str) -> None:
    if not isinstance(arr, np.ndarray):
        raise IRError(f"{where}: constant %{v.id} is a {type(arr).__name__}, not a numpy array")
    if not v.spec.shape.is_static or tuple(arr.shape) != tuple(v.spec.shape):
        raise IRError(f"{where}: constant %{v.id} holds shape {list(arr.shape)} but is typed {v.spec}")
    if arr.dtype != v.spec.dtype.to_numpy():
        raise IRError(f"{where}: constant %{v.id} holds {arr.dtype} but is typed {v.spec}")


def _reinfer(g: Graph, where: str) -> Graph:
    where = f"{where} {g.name!r}"
    for v, arr in g.constants.items():
        _check_constant(v, arr, where)
    nodes = []
    for k, n in enumerate(g.nodes):
        at = f"{where} node {k} ({n.op})"
        opdef = OPS.get(n.op)
        if opdef is None:
            raise IRError(f"{at}: unknown op {n.op!r}")
        subs = {key: _reinfer(sub, f"{at} subgraph") for key, sub in n.subgraphs.items()}
        try:
            attrs = check_attrs(opdef, n.attrs)
            specs = infer_node(opdef, [v.spec for v in n.inputs], attrs, subs or None)
        except IRError as exc:
            raise IRError(f"{at}: {exc}") from None
        if len(specs) != len(n.outputs):
            raise IRError(f"{at}: has {len(n.outputs)} outputs, the op defines {len(specs)}")
        for j, (v, s) in enumerate(zip(n.outputs, specs)):
            if not _same_type(v.spec, s):
                raise IRError(f"{at}: output {j} is {v.spec} but the op gives {s}")
        nodes.append(Node(n.op, list(n.inputs), list(n.outputs), attrs, subs))
    return _new_graph(g, nodes, dict(g.constants))


def infer_shapes(graph: Graph) -> Graph:
    """Full validation: structure (``Graph.check``), attributes (kinds, defaults filled), every
    node's recorded output types == the registry rule applied to its input types (recursively),
    constants' arrays == their types. Returns a copy with normalised attributes."""
    graph.check()
    return _reinfer(graph, "graph")


# ------------------------------------------------------------------------------------ DCE


def dead_code_elimination(graph: Graph) -> Graph:
    """Keep the nodes (and constants) the outputs depend on; subgraphs are cleaned too."""
    live: set[Value] = set(graph.outputs)
    kept: list[Node] = []
    for n in reversed(graph.nodes):
        if any(o in live for o in n.outputs):
            live.update(n.inputs)
            kept.append(
                _copy_node(n, subgraphs={k: dead_code_elimination(s) for k, s in n.subgraphs.items()})
            )
    kept.reverse()
    return _new_graph(graph, kept, {v: a for v, a in graph.constants.items() if v in live})


# ------------------------------------------------------------------------------------ folding


def _static_size(spec: TensorSpec) -> int | None:
    if not spec.shape.is_static:
        return None
    return int(np.prod(spec.shape.evaluate({}), dtype=np.int64))


def _evaluate(n: Node, args: list[np.ndarray], where: str) -> list[np.ndarray] | None:
    """Run ``n`` with the numpy reference; None when an attribute is symbolic."""
    opdef = OPS[n.op]
    try:
        attrs = resolve_attrs(opdef, n.attrs, {})
    except IRError:
        return None
    with np.errstate(all="ignore"):
        out = opdef.reference(*args, **attrs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if len(outs) != len(n.outputs):
        raise IRError(
            f"{where}: the reference of {n.op} returned {len(outs)} values for {len(n.outputs)} outputs"
        )
    result = []
    for v, o in zip(n.outputs, outs):
        o = np.asarray(o).astype(v.spec.dtype.to_numpy(), copy=False)
        if tuple(o.shape) != tuple(v.spec.shape):
            raise IRError(
                f"{where}: the reference of {n.op} gave shape {list(o.shape)} for an output typed {v.spec}"
            )
        result.append(o)
    return result


def _fold(graph: Graph, max_size: int, where: str) -> Graph:
    consts = dict(graph.constants)
    nullary: dict[Value, tuple[int, Node]] = {}  # outputs of small static nullary nodes (full, arange)
    evaluated: dict[Value, np.ndarray | None] = {}

    def value_of(v: Value) -> np.ndarray | None:
        if v in consts:
            return consts[v]
        if v not in evaluated:  # a nullary node is evaluated only when a consumer folds
            k, n = nullary[v]
            outs = _evaluate(n, [], f"{where} node {k} ({n.op})")
            evaluated.update(zip(n.outputs, outs if outs is not None else [None] * len(n.outputs)))
        return evaluated[v]

    nodes: list[Node] = []
    for k, n in enumerate(graph.nodes):
        at = f"{where} node {k} ({n.op})"
        if n.subgraphs:
            subs = {key: _fold(s, max_size, f"{at} subgraph {key!r}") for key, s in n.subgraphs.items()}
            nodes.append(_copy_node(n, subgraphs=subs))
            continue
        small = all(s is not None and s <= max_size for s in (_static_size(o.spec) for o in n.outputs))
        if small and not n.inputs:
            nullary.update((o, (k, n)) for o in n.outputs)  # kept as a node: as cheap as a constant
        elif small and all(v in consts or v in nullary for v in n.inputs):
            args = [value_of(v) for v in n.inputs]
            outs = None if any(a is None for a in args) else _evaluate(n, args, at)
            if outs is not None:
                consts.update(zip(n.outputs, outs))
                continue
        nodes.append(_copy_node(n))
    return dead_code_elimination(_new_graph(graph, nodes, consts))


def constant_folding(graph: Graph, max_size: int = 1 << 16) -> Graph:
    """Replace all-constant nodes by constants (outputs of at most ``max_size`` elements each).

    Nodes with subgraphs are not folded (their subgraphs are folded on their own); a node with
    a symbolic attribute or output shape is not folded. Folded values equal what the numpy
    reference interpreter computes at run time (same reference, same dtype rounding)."""
    if max_size < 0:
        raise IRError(f"constant_folding: max_size must be >= 0, got {max_size}")
    return _fold(graph, max_size, f"graph {graph.name!r}")


# ------------------------------------------------------------------------------------ CSE


def _attr_key(attrs: dict) -> tuple:
    """Attributes as a hashable key; repr keeps 1, 1.0 and True apart and makes nan equal nan."""
    return tuple(sorted((k, type(v).__name__, repr(v)) for k, v in attrs.items()))


def _array_key(arr: np.ndarray) -> tuple:
    data = np.ascontiguousarray(arr).tobytes()
    return (arr.dtype.name, tuple(arr.shape), hashlib.sha256(data).hexdigest())


def _fingerprint(g: Graph) -> tuple:
    """A structural key of a graph: equal keys <=> the graphs compute the same thing the same way
    (value identities replaced by definition order; constants by content and name)."""
    index: dict[Value, int] = {}
    parts: list[Any] = []
    for v in g.inputs:
        index[v] = len(index)
        parts.append(("in", v.spec.dtype, tuple(v.spec.shape)))
    for v, arr in g.constants.items():
        index[v] = len(index)
        parts.append(("const", v.name, _array_key(np.asarray(arr))))
    for n in g.nodes:
        subs = tuple(sorted((k, _fingerprint(s)) for k, s in n.subgraphs.items()))
        parts.append(
            (
                n.op,
                tuple(index[v] for v in n.inputs),
                _attr_key(n.attrs),
                subs,
                tuple((o.spec.dtype, tuple(o.spec.shape)) for o in n.outputs),
            )
        )
        for o in n.outputs:
            index[o] = len(index)
    parts.append(("out", tuple(index[v] for v in g.outputs)))
    return tuple(parts)


def common_subexpression_elimination(graph: Graph) -> Graph:
    """Merge equal nodes and equal unnamed constants within each graph (see the module doc)."""
    repl: dict[Value, Value] = {}
    consts: dict[Value, np.ndarray] = {}
    seen_consts: dict[tuple, Value] = {}
    for v, arr in graph.constants.items():
        if v.name is None:
            key = _array_key(np.asarray(arr))
            first = seen_consts.get(key)
            if first is not None and (
                np.ascontiguousarray(graph.constants[first]).tobytes() == np.ascontiguousarray(arr).tobytes()
            ):
                repl[v] = first
                continue
            seen_consts.setdefault(key, v)
        consts[v] = arr
    seen: dict[tuple, Node] = {}
    nodes: list[Node] = []
    for n in graph.nodes:
        ins = [repl.get(v, v) for v in n.inputs]
        subs = {k: common_subexpression_elimination(s) for k, s in n.subgraphs.items()}
        key = (
            n.op,
            tuple(id(v) for v in ins),
            _attr_key(n.attrs),
            tuple(sorted((k, _fingerprint(s)) for k, s in subs.items())),
        )
        first = seen.get(key)
        if first is not None and len(first.outputs) == len(n.outputs):
            repl.update(zip(n.outputs, first.outputs))
            continue
        new = _copy_node(n, inputs=ins, subgraphs=subs)
        seen[key] = new
        nodes.append(new)
    return _new_graph(graph, nodes, consts, [repl.get(v, v) for v in graph.outputs])


# ------------------------------------------------------------------------------------ pipeline


def optimize(graph: Graph, max_size: int = 1 << 16) -> Graph:
    """dead_code_elimination -> constant_folding -> common_subexpression_elimination -> DCE."""
    g = dead_code_elimination(graph)
    g = constant_folding(g, max_size)
    g = common_subexpression_elimination(g)
    return dead_code_elimination(g)
