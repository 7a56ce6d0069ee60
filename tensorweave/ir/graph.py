"""The graph: typed SSA values, nodes with attributes, nested subgraphs, named I/O.

A ``Graph`` holds
- ``inputs``: values bound by the caller, each with a unique name;
- ``constants``: values bound to numpy arrays (weights, literals), kept out of
  the node list;
- ``nodes``: in topological order; each node applies one registry op to input
  values and defines fresh output values;
- ``outputs`` with ``output_names``.
Control-flow nodes (``while_loop``, ``cond``) carry closed subgraphs: a
subgraph sees only its own inputs and constants (the tracer lifts captured
outer values to explicit operands).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .types import DType, IRError, Shape, TensorSpec

_ids = itertools.count()


class Value:
    """An SSA value: defined once (graph input, constant or node output), typed by a TensorSpec."""

    __slots__ = ("id", "spec", "name")

    def __init__(self, spec: TensorSpec, name: str | None = None):
        self.id = next(_ids)
        self.spec = spec
        self.name = name

    @property
    def shape(self) -> Shape:
        return self.spec.shape

    @property
    def dtype(self) -> DType:
        return self.spec.dtype

    def __repr__(self) -> str:
        return f"Value(%{self.id}:{self.spec})"


@dataclass
class Node:
    op: str
    inputs: list[Value]
    outputs: list[Value]
    attrs: dict[str, Any] = field(default_factory=dict)
    subgraphs: dict[str, "Graph"] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Node({self.op})"


@dataclass
class Graph:
    name: str
    inputs: list[Value]
    outputs: list[Value]
    nodes: list[Node] = field(default_factory=list)
    constants: dict[Value, np.ndarray] = field(default_factory=dict)
    output_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.output_names:
            self.output_names = [f"output_{i}" for i in range(len(self.outputs))]

    # ---------------------------------------------------------------- queries
    @property
    def input_specs(self) -> list[TensorSpec]:
        return [v.spec.with_name(v.name) for v in self.inputs]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [v.spec.with_name(n) for v, n in zip(self.outputs, self.output_names)]

    @property
    def input_names(self) -> list[str]:
        return [v.name or f"input_{i}" for i, v in enumerate(self.inputs)]

    @property
    def symbols(self) -> frozenset:
        out: set = set()
        for v in self.inputs:
            out |= v.spec.shape.symbols
        return frozenset(out)

    def walk(self) -> Iterator[Node]:
        """Every node, including those of nested subgraphs (pre-order)."""
        for n in self.nodes:
            yield n
            for g in n.subgraphs.values():
                yield from g.walk()

    def num_nodes(self, recursive: bool = True) -> int:
        return sum(1 for _ in self.walk()) if recursive else len(self.nodes)

    # ---------------------------------------------------------------- printing
    def __str__(self) -> str:
        return "\n".join(self._lines(0))

    def _lines(self, indent: int) -> list[str]:
        pad = "  " * indent
        names: dict[Value, str] = {}

        def nm(v: Value) -> str:
            if v not in names:
                names[v] = f"%{len(names)}"
            return names[v]

        ins = ", ".join(f"{nm(v)}:{v.spec}" + (f' "{v.name}"' if v.name else "") for v in self.inputs)
        outs = ", ".join(f"{n}: {v.spec}" for n, v in zip(self.output_names, self.outputs))
        lines = [f"{pad}graph {self.name}({ins}) -> ({outs}) {{"]
        for v, arr in self.constants.items():
            lines.append(
                f"{pad}  {nm(v)}:{v.spec} = const {_short_array(arr)}" + (f"  # {v.name}" if v.name else "")
            )
        for n in self.nodes:
            lhs = ", ".join(f"{nm(o)}:{o.spec}" for o in n.outputs)
            args = ", ".join(nm(i) for i in n.inputs)
            attrs = " ".join(f"{k}={_fmt_attr(v)}" for k, v in n.attrs.items())
            lines.append(f"{pad}  {lhs} = {n.op}({args}){' ' + attrs if attrs else ''}")
            for key, sub in n.subgraphs.items():
                lines.append(f"{pad}    {key}:")
                lines.extend(sub._lines(indent + 3))
        lines.append(f"{pad}  return {', '.join(nm(v) for v in self.outputs)}")
        lines.append(f"{pad}}}")
        return lines

    # ---------------------------------------------------------------- checking
    def check(self) -> "Graph":
        """Structural check: every value defined before use, once; names unique; subgraphs nested
        at most :data:`MAX_NESTING` deep.

        Type rules are checked by :func:`tensorweave.ir.passes.infer_shapes`.
        """
        _check_graph(self, "graph")
        return self


#: Limits every graph must respect before it is lowered (spec/ir.md, "Limits"): deeper nesting of
#: while_loop/cond bodies, or a value with more elements, is an IRError naming the limit instead
#: of a RecursionError, a protobuf error or a framework's failed allocation.
MAX_NESTING = 64
MAX_ELEMENTS = 2**34  # per value with a static shape (64 GiB of float32)
MAX_NODES = 2_000_000  # in one graph, subgraphs included


def check_limits(graph: Graph) -> None:
    """Raise IRError when ``graph`` exceeds :data:`MAX_NESTING`, :data:`MAX_ELEMENTS` or
    :data:`MAX_NODES` (iterative walk: safe on any depth)."""
    count = 0
    stack: list[tuple[Graph, int]] = [(graph, 0)]
    while stack:
        g, depth = stack.pop()
        if depth > MAX_NESTING:
            raise IRError(
                f"graph {graph.name!r}: subgraphs nest deeper than {MAX_NESTING} levels; flatten the control flow"
            )
        count += len(g.nodes)
        if count > MAX_NODES:
            raise IRError(f"graph {graph.name!r}: more than {MAX_NODES} nodes; split the program")
        values = list(g.constants) + [v for n in g.nodes for v in n.outputs]
        for v in values:
            size = 1
            for d in v.spec.shape:
                if isinstance(d, int):
                    size *= d
            if size > MAX_ELEMENTS:
                raise IRError(
                    f"graph {graph.name!r}: a value of shape {list(v.spec.shape)} has {size} elements, more than "
                    f"the limit {MAX_ELEMENTS}; use smaller shapes"
                )
        for n in g.nodes:
            stack.extend((sub, depth + 1) for sub in n.subgraphs.values())


def _check_graph(g: Graph, where: str, depth: int = 0) -> None:
    if depth > MAX_NESTING:
        raise IRError(f"{where} subgraphs nest deeper than {MAX_NESTING} levels; flatten the control flow")
    defined: set[Value] = set()
    seen_names: set[str] = set()
    for i, v in enumerate(g.inputs):
        if v in defined:
            raise IRError(f"{where} {g.name!r}: input {i} is listed twice")
        if v.name is not None:
            if v.name in seen_names:
                raise IRError(f"{where} {g.name!r}: duplicate input name {v.name!r}")
            seen_names.add(v.name)
        defined.add(v)
    for v in g.constants:
        if v in defined:
            raise IRError(f"{where} {g.name!r}: constant %{v.id} is also an input")
        defined.add(v)
    for k, n in enumerate(g.nodes):
        for j, v in enumerate(n.inputs):
            if v not in defined:
                raise IRError(
                    f"{where} {g.name!r}: node {k} ({n.op}) input {j} uses a value that is not defined before it"
                )
        for key, sub in n.subgraphs.items():
            _check_graph(sub, f"{where} {g.name!r} node {k} ({n.op}) subgraph {key!r}:", depth + 1)
        for v in n.outputs:
            if v in defined:
                raise IRError(f"{where} {g.name!r}: node {k} ({n.op}) redefines a value")
            defined.add(v)
    for j, v in enumerate(g.outputs):
        if v not in defined:
            raise IRError(f"{where} {g.name!r}: output {j} is not defined in the graph")
    if len(g.output_names) != len(g.outputs):
        raise IRError(f"{where} {g.name!r}: {len(g.output_names)} output names for {len(g.outputs)} outputs")
    if len(set(g.output_names)) != len(g.output_names):
        raise IRError(f"{where} {g.name!r}: duplicate output names {g.output_names}")


def _short_array(a: np.ndarray) -> str:
    if a.size <= 4:
        return np.array2string(np.asarray(a), separator=",").replace("\n", "")
    return f"<{a.dtype}{list(a.shape)}>"


def _fmt_attr(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ",".join(_fmt_attr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, Shape):
        return str(v)
    if isinstance(v, str):
        return repr(v)
    return str(v)
