"""The numpy program: :func:`run_graph` interprets a graph node by node through the rule table."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ir.graph import Graph
from ...ir.types import IRError
from ..base import Program, Site, resolve_symbolic_attrs
from .rules import LOWERINGS, NAME


def _subgraph_fn(graph: Graph, env: dict) -> Any:
    return lambda *a: run_graph(graph, list(a), env)


def run_graph(graph: Graph, args: list, env: dict) -> list:
    """Interpret ``graph`` on numpy arrays ``args`` with symbol bindings ``env`` (ints)."""
    vals: dict = dict(zip(graph.inputs, args))
    vals.update(graph.constants)
    for node in graph.nodes:
        attrs = resolve_symbolic_attrs(node, env)
        for key, sub in node.subgraphs.items():
            attrs[key] = _subgraph_fn(sub, env)
        out = LOWERINGS[node.op](Site(node, [vals[v] for v in node.inputs], attrs))
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
        """The IR's own JSON at ``path`` and its constants in ``path + ".safetensors"``."""
        from ...ir.serialize import save

        return save(self.graph, path)


def lower(graph: Graph, **options: Any) -> NumpyProgram:
    if options:
        raise IRError(f"the numpy backend takes no options, got {sorted(options)}")
    graph.check()
    return NumpyProgram(graph)


def load(path: str) -> NumpyProgram:
    """An IR JSON file (with its ``.safetensors`` side file, or constants inline) as a program."""
    from ...ir.serialize import load as load_graph

    return lower(load_graph(path))
