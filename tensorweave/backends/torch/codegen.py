"""Graph -> Python source over torch (spec/backends-torch.md).

:class:`Codegen` writes one generated function per graph (subgraphs of ``while_loop``/``cond``
become functions of their own), one statement per node, by calling the node's rule of
:data:`~.rules.LOWERINGS` on a :class:`~.rules.TorchSite`. :func:`generate_source` adds the
``entry`` function that reads the symbols from the input shapes; :func:`build` ``exec``s the
source once in the :data:`~.runtime.RUNTIME` namespace.

Two flavours come from the same rules: **eager** (what a program call runs; the weight layout
plan applies) and **export** (what ``torch.export`` traces: ``while_loop``/``cond`` become
torch's higher-order ops, dynamic slices use index tensors, uint32 is converted to and from
``torch.uint32`` inside ``entry``).
"""

from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np
import torch

from ...ir.graph import Graph, Value
from ...ir.types import DType
from ..base import eval_dim, resolve_symbolic_attrs, symbol_plan
from .rules import LOWERINGS, DimSource, TorchSite, py_dim
from .runtime import RUNTIME, array_to_torch


class Codegen:
    """Writes the Python source of a graph (and of its subgraphs, as nested functions)."""

    def __init__(self, export: bool, symbols: list[str]):
        self.export = export
        self.symbols = symbols  # the program's symbols, passed to every generated function
        #: symbol -> its source variable; symbolic attributes are resolved in it
        self.env = {s: DimSource.symbol(s) for s in symbols}
        self.consts: dict[str, torch.Tensor] = {}
        self.funcs: list[str] = []
        self.count = 0
        self.transposed: set = set()  # 2-D weight constants stored transposed (see plan_weight_layouts)
        self.nk_sites: set = set()  # matmul nodes emitted as mm_nk
        self.split_sites: dict = {}  # one-row matmul node id -> parts, emitted as mm_split

    def plan_weight_layouts(self, graph: Graph) -> None:
        """Choose the memory layout of 2-D float weight constants for the matmuls that use them.

        On CPU, ``x [M, K] @ W`` is fastest with ``W`` stored ``[N, K]`` row-major: for ``M == 1``
        (a decode step) as one ``bmm`` of the ``[N, K]`` rows split in ``parts`` blocks
        (``mm_split``: torch runs a one-row product on one thread, the batch of blocks on all of
        them; 1.5x faster than any one-thread layout on a 2-core VM), falling back to ``W [K, N]``
        (N >= K) or the transposed view (N < K) when N does not split; as ``(Wt @ x^T)^T`` when
        ``M >= 2`` (beams, prompts): up to 2-3x apart on this kind of machine. A weight
        reaches a matmul directly, through ``permute_dims(.., (1, 0))`` (a tied or ``[out, in]``
        head) or as a captured operand of a loop. The uses inside the deepest loop decide (they
        run most often); the constant is stored in the chosen layout and bound under its own name
        as a transposed view, so it costs no extra memory and every other use reads the same
        values. Values are unchanged; only float summation order may differ (within the
        tolerances of spec/backends.md)."""
        wanted: dict = {}  # constant -> [(depth, stored transposed?)]
        sites: list = []  # (node, constant, operand is the transposed constant, M)

        def walk(g: Graph, origin: dict, depth: int) -> None:
            origin = dict(origin)
            for v in g.constants:
                if len(v.shape) == 2 and v.dtype in (DType.float32, DType.float64):
                    origin[v] = (v, False)
            for node in g.nodes:
                ins = node.inputs
                if node.op == "permute_dims" and ins[0] in origin and tuple(node.attrs["axes"]) == (1, 0):
                    c, t = origin[ins[0]]
                    origin[node.outputs[0]] = (c, not t)
                elif (
                    node.op == "matmul"
                    and len(ins) == 2
                    and ins[1] in origin
                    and len(ins[0].shape) >= 2
                    and ins[0].dtype is ins[1].dtype
                    and all(isinstance(d, int) for d in ins[0].shape[:-1])
                ):
                    c, t = origin[ins[1]]
                    m = math.prod(ins[0].shape[:-1])
                    k, n = ins[1].shape
                    if m >= 1:
                        sites.append((node, c, t, m))
                        # want [K, N] rows (the operand itself contiguous) for one row and N >= K,
                        # [N, K] rows otherwise
                        kn = m == 1 and n >= k and self._parts(n) == 1  # no split: [K, N] rows
                        wanted.setdefault(c, []).append((depth, t if kn else not t))
                elif node.op == "while_loop":
                    n = node.attrs["num_state"]
                    for sub in node.subgraphs.values():
                        walk(
                            sub,
                            {
                                sub.inputs[i]: origin[ins[i]]
                                for i in range(n, min(len(ins), len(sub.inputs)))
                                if ins[i] in origin
                            },
                            depth + 1,
                        )
                elif node.op == "cond":
                    for sub in node.subgraphs.values():
                        walk(
                            sub,
                            {
                                sub.inputs[i]: origin[ins[i + 1]]
                                for i in range(min(len(ins) - 1, len(sub.inputs)))
                                if ins[i + 1] in origin
                            },
                            depth,
                        )
                else:
                    for sub in node.subgraphs.values():
                        walk(sub, {}, depth + 1)

        walk(graph, {}, 0)
        for c, uses in wanted.items():
            deepest = max(d for d, _ in uses)
            choices = {tr for d, tr in uses if d == deepest}
            if choices == {True}:
                self.transposed.add(c)
        for node, c, t, m in sites:
            if (c in self.transposed) != t:  # the operand's memory is [N, K] rows
                parts = self._parts(node.inputs[1].shape[1])
                if m >= 2:
                    self.nk_sites.add(id(node))
                elif parts > 1:
                    self.split_sites[id(node)] = parts

    @staticmethod
    def _parts(n: int) -> int:
        """Blocks a one-row product over ``n`` outputs is split into: torch's thread count (at
        least 2) when it divides ``n``, else 2 when ``n`` is even, else 1 (no split)."""
        import torch

        threads = max(2, torch.get_num_threads())
        return threads if n % threads == 0 else 2 if n % 2 == 0 else 1

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, arr: np.ndarray, dt: DType, transposed: bool = False) -> str:
        name = self.fresh("c")
        if transposed:  # stored [b, a] row-major, seen as the [a, b] constant (plan_weight_layouts)
            self.consts[name] = array_to_torch(np.ascontiguousarray(np.asarray(arr).T), dt, copy=True).t()
        else:
            self.consts[name] = array_to_torch(np.asarray(arr), dt, copy=True)
        return name

    def function(self, graph: Graph, fname: str, symbols: list[str], top: bool) -> str:
        """Emit ``def fname(<inputs>, <symbols>)`` returning a tuple of the outputs.

        Outputs that may share memory with an input or a constant are copied where sharing is
        not allowed: always for constants of the top-level graph (a caller must not be able to
        mutate the program), and for anything in an export subgraph (torch's control-flow
        operators reject aliasing)."""
        names: dict[Value, str] = {}
        alias: dict[Value, str] = {}  # "input" / "const" when a value may share memory with one
        params = []
        for v in graph.inputs:
            names[v] = self.fresh("a")
            alias[v] = "input"
            params.append(names[v])
        for v, arr in graph.constants.items():
            names[v] = self.const(arr, v.dtype, transposed=v in self.transposed)
            alias[v] = "const"
        lines = [f"def {fname}({''.join(p + ', ' for p in params + [f's_{s}' for s in symbols])}):"]
        for node in graph.nodes:
            site = TorchSite(
                node,
                [names[v] for v in node.inputs],
                resolve_symbolic_attrs(node, self.env),
                [self.fresh("v") for _ in node.outputs],
                self,
            )
            for v, n in zip(node.outputs, site.outs):
                names[v] = n
            lines += ["    " + line for line in LOWERINGS[node.op](site).splitlines()]
            if site.view and node.inputs and node.inputs[0] in alias:
                alias[node.outputs[0]] = alias[node.inputs[0]]
        rets = []
        for v in graph.outputs:
            kind = alias.get(v)
            copy = kind == "const" if top and not self.export else kind is not None
            rets.append(names[v] + (".clone()" if copy else ""))
        lines.append(f"    return ({''.join(r + ', ' for r in rets)})")
        self.funcs.append("\n".join(lines))
        return fname


#: names an export ``entry`` parameter never takes (its body uses them)
RESERVED = frozenset(("self", "torch", "math", "graph_fn", "entry", "outs")) | frozenset(RUNTIME)


def identifier(name: str, taken: set) -> str:
    """A Python identifier for an input name ("past_key_values.0.key" -> "past_key_values_0_key")."""
    base = re.sub(r"\W", "_", name) or "input"
    if base[0].isdigit():
        base = "_" + base
    out, k = base, 1
    while out in taken or out in RESERVED or out.startswith("s_"):
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def generate_source(graph: Graph, export: bool = False) -> tuple[str, dict[str, torch.Tensor], list[str]]:
    """The program's Python source, its constants and its symbol order.

    The source defines ``graph_fn(<inputs>, <symbols>)`` and ``entry(<inputs>)``, which reads
    every symbol from the input shapes (``symbol_plan``) and calls ``graph_fn``. With
    ``export=True`` the entry is ``entry(self, <input names>)`` (a ``forward`` method) and also
    converts uint32 at the boundary (torch.uint32 in and out)."""
    plan = symbol_plan(graph.input_specs)
    symbols = [s for s, *_ in plan]
    cg = Codegen(export, symbols)
    if not export:
        cg.plan_weight_layouts(graph)
    inner = cg.function(graph, "graph_fn", symbols, top=True)
    taken: set = set()
    params = [identifier(n, taken) if export else f"x{i}" for i, n in enumerate(graph.input_names)]
    entry = [f"def entry({', '.join((['self'] if export else []) + params)}):"]
    for p, spec in zip(params, graph.input_specs):
        if export and spec.dtype is DType.uint32:
            entry.append(f"    {p} = {p}.to(torch.int64)")
    for s, i, ax, rest in plan:
        alone = isinstance(rest, int) and rest == 0
        expr = f"{params[i]}.shape[{ax}]" + ("" if alone else f" - {py_dim(eval_dim(rest, cg.env))}")
        entry.append(f"    s_{s} = {expr}")
        if export and not alone:
            entry.append(f"    torch._check(s_{s} >= 0)")
    call = f"{inner}({''.join(p + ', ' for p in params)}{''.join(f's_{s}, ' for s in symbols)})"
    if export and any(spec.dtype is DType.uint32 for spec in graph.output_specs):
        entry.append(f"    outs = {call}")
        outs = [
            f"outs[{k}]" + (".to(torch.uint32)" if spec.dtype is DType.uint32 else "")
            for k, spec in enumerate(graph.output_specs)
        ]
        entry.append(f"    return ({''.join(o + ', ' for o in outs)})")
    else:
        entry.append(f"    return {call}")
    return "\n\n".join(cg.funcs + ["\n".join(entry)]) + "\n", cg.consts, symbols


def build(graph: Graph, export: bool = False) -> tuple[Callable, Callable, str, list[str]]:
    """exec the generated source once: returns (entry, graph_fn, source, symbols)."""
    src, consts, symbols = generate_source(graph, export)
    namespace: dict = {**RUNTIME, **consts}
    code = compile(src, f"<tensorweave torch {'export ' if export else ''}program {graph.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - our own generated code, no user text
    return namespace["entry"], namespace["graph_fn"], src, symbols
