"""Graph passes; each returns a new graph and leaves its input untouched.

- :func:`infer_shapes`: re-derive every value's type with the registry rules (recursing into
  subgraphs) and raise IRError where a recorded type disagrees.
- :func:`dead_code_elimination`: drop nodes and constants no output depends on.
- :func:`constant_folding`: evaluate nodes whose inputs are all constants (no subgraphs, output
  size <= ``max_size`` elements) with the numpy reference; they become constants.
- :func:`common_subexpression_elimination`: one node per (op, inputs, attrs) within a graph;
  identical small constants are merged too.
- :func:`optimize`: folding, CSE, then DCE.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .graph import Graph, Node, Value
from .ops import OPS, infer_node, resolve_attrs
from .types import IRError


def _copy_graph(g: Graph, nodes: list[Node], constants: dict, outputs: list[Value] | None = None) -> Graph:
    return Graph(g.name, list(g.inputs), list(outputs if outputs is not None else g.outputs), nodes, constants,
                 list(g.output_names))


def _subst(vals: list[Value], m: dict) -> list[Value]:
    return [m.get(v, v) for v in vals]


def infer_shapes(graph: Graph) -> Graph:
    """Check every node's recorded output types against the registry's rules (recursively)."""
    def walk(g: Graph, where: str) -> None:
        for k, n in enumerate(g.nodes):
            for key, sub in n.subgraphs.items():
                walk(sub, f"{where} node {k} ({n.op}) subgraph {key!r}")
            specs = infer_node(OPS[n.op], [v.spec for v in n.inputs], n.attrs, n.subgraphs or None)
            if len(specs) != len(n.outputs):
                raise IRError(f"{where} node {k} ({n.op}): {len(n.outputs)} outputs, the op defines {len(specs)}")
            for j, (v, s) in enumerate(zip(n.outputs, specs)):
                if tuple(v.spec.shape) != tuple(s.shape) or v.spec.dtype != s.dtype:
                    raise IRError(f"{where} node {k} ({n.op}): output {j} is {v.spec} but the op gives {s}")
    graph.check()
    walk(graph, f"graph {graph.name!r}")
    return _copy_graph(graph, list(graph.nodes), dict(graph.constants))


def dead_code_elimination(graph: Graph) -> Graph:
    """Keep only nodes (and constants) that the outputs depend on; subgraphs are cleaned too."""
    live: set = set(graph.outputs)
    kept: list[Node] = []
    for n in reversed(graph.nodes):
        if any(o in live for o in n.outputs):
            live.update(n.inputs)
            subs = {k: dead_code_elimination(s) for k, s in n.subgraphs.items()}
            kept.append(Node(n.op, n.inputs, n.outputs, dict(n.attrs), subs))
    kept.reverse()
    consts = {v: a for v, a in graph.constants.items() if v in live}
    return _copy_graph(graph, kept, consts)


def constant_folding(graph: Graph, max_size: int = 1 << 16) -> Graph:
    """Evaluate all-constant nodes with the numpy reference (static attributes only)."""
    consts = dict(graph.constants)
    nodes: list[Node] = []
    for n in graph.nodes:
        static = all(s.is_static for s in (o.spec.shape for o in n.outputs))
        small = static and all(int(np.prod(o.spec.shape.evaluate({}), dtype=np.int64)) <= max_size for o in n.outputs)
        if n.inputs and not n.subgraphs and small and all(v in consts for v in n.inputs):
            try:
                attrs = resolve_attrs(OPS[n.op], n.attrs, {})
            except IRError:
                nodes.append(n)
                continue
            out = OPS[n.op].reference(*[consts[v] for v in n.inputs], **attrs)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            for v, o in zip(n.outputs, outs):
                consts[v] = np.asarray(o).astype(v.spec.dtype.to_numpy())
            continue
        subs = {k: constant_folding(s, max_size) for k, s in n.subgraphs.items()}
        nodes.append(Node(n.op, n.inputs, n.outputs, dict(n.attrs), subs))
    return dead_code_elimination(_copy_graph(graph, nodes, consts))


def _attr_key(attrs: dict) -> Any:
    return tuple(sorted((k, repr(v)) for k, v in attrs.items()))


def common_subexpression_elimination(graph: Graph) -> Graph:
    """Merge nodes with the same op, inputs and attributes (not control-flow nodes) and equal
    small constants, within one graph; subgraphs are processed on their own."""
    repl: dict[Value, Value] = {}
    consts: dict[Value, np.ndarray] = {}
    seen_consts: dict = {}
    for v, a in graph.constants.items():
        key = (a.dtype.str, a.shape, a.tobytes()) if a.size <= 64 and v.name is None else None
        if key is not None and key in seen_consts:
            repl[v] = seen_consts[key]
            continue
        if key is not None:
            seen_consts[key] = v
        consts[v] = a
    seen: dict = {}
    nodes: list[Node] = []
    for n in graph.nodes:
        ins = _subst(n.inputs, repl)
        if n.subgraphs:
            subs = {k: common_subexpression_elimination(s) for k, s in n.subgraphs.items()}
            nodes.append(Node(n.op, ins, n.outputs, dict(n.attrs), subs))
            continue
        key = (n.op, tuple(id(v) for v in ins), _attr_key(n.attrs))
        if key in seen:
            for a, b in zip(n.outputs, seen[key].outputs):
                repl[a] = b
            continue
        new = Node(n.op, ins, n.outputs, dict(n.attrs), {})
        seen[key] = new
        nodes.append(new)
    return _copy_graph(graph, nodes, consts, _subst(graph.outputs, repl))


def optimize(graph: Graph) -> Graph:
    """constant_folding -> common_subexpression_elimination -> dead_code_elimination."""
    return dead_code_elimination(common_subexpression_elimination(constant_folding(graph)))
