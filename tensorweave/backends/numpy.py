"""The numpy backend: the reference interpreter of the whole IR (control flow included).

Every other backend is checked against it. Each node calls its op's reference
implementation from the registry with symbolic attributes evaluated for the
symbol bindings of the call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.graph import Graph
from ..ir.ops import OPS, resolve_attrs
from ..ir.types import IRError
from .base import Program

NAME = "numpy"


def run_graph(graph: Graph, args: list, env: dict) -> list:
    """Interpret ``graph`` on numpy arrays ``args`` with symbol bindings ``env``."""
    vals: dict = dict(zip(graph.inputs, args))
    vals.update(graph.constants)
    for node in graph.nodes:
        opdef = OPS[node.op]
        attrs = resolve_attrs(opdef, node.attrs, env)
        for key, sub in node.subgraphs.items():
            attrs[key] = (lambda g: lambda *a: run_graph(g, list(a), env))(sub)
        out = opdef.reference(*[vals[v] for v in node.inputs], **attrs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(node.outputs):
            raise IRError(
                f"op {node.op}: reference returned {len(outs)} values for {len(node.outputs)} outputs"
            )
        for v, o in zip(node.outputs, outs):
            o = np.asarray(o)
            want = v.spec.dtype.to_numpy()
            if o.dtype != want:
                o = o.astype(want)
            vals[v] = o
    return [vals[v] for v in graph.outputs]


class NumpyProgram(Program):
    backend = NAME

    def _is_native(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def _run(self, args: list, env: dict) -> list:
        return run_graph(self.graph, args, env)

    def export(self, path: str) -> str:
        from ..ir.serialize import save

        return save(self.graph, path)


def lower(graph: Graph, **options: Any) -> NumpyProgram:
    if options:
        raise IRError(f"the numpy backend takes no options, got {sorted(options)}")
    graph.check()
    return NumpyProgram(graph)
