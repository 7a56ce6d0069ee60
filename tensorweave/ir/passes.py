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
- :func:`merge_linears`: sibling linear layers of one input become one: ``matmul(x, W_i^T)`` (or
  ``matmul(x, W_i)``) nodes with 2-D constant weights of one dtype and inner size, and
  ``quantized_matmul(x, ...)`` nodes with constant blocks of one layout, are replaced by one
  product with the weights concatenated along the output axis, followed by a ``slice`` per
  original output (the original output values, so their users are untouched). Attention's
  q / k / v and a gated MLP's gate / up read their input once, in one wider product: fewer,
  larger kernels per decode step. The concatenated arrays are cached per set of source arrays
  (weakly), so a prompt graph and its loop body share one copy.
- :func:`optimize`: DCE -> constant folding -> CSE -> merge_linears -> DCE.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import Counter, defaultdict
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


# ------------------------------------------------------------------------------------ merge linears

_MERGED: dict[tuple, tuple[list, np.ndarray]] = {}


def _adjacent(arrays: list[np.ndarray], axis: int) -> np.ndarray | None:
    """``concatenate(arrays, 0)`` as a view, when the arrays already lie back to back in one
    buffer (C-contiguous, one dtype and trailing shape, each starting where the previous ends,
    one owner: a loader's ``pack_siblings`` layout); else None."""
    first = arrays[0]
    if axis != 0 or first.ndim < 1:
        return None

    def owner(a: np.ndarray) -> Any:
        while isinstance(a.base, np.ndarray):
            a = a.base
        return a.base if a.base is not None else a

    address = first.__array_interface__["data"][0]
    for a in arrays:
        if (
            not a.flags.c_contiguous
            or a.dtype != first.dtype
            or a.shape[1:] != first.shape[1:]
            or a.__array_interface__["data"][0] != address
            or owner(a) is not owner(first)
        ):
            return None
        address += a.nbytes
    rows = sum(a.shape[0] for a in arrays)
    return np.lib.stride_tricks.as_strided(first, (rows, *first.shape[1:]), first.strides)


def _concatenated(arrays: list[np.ndarray], axis: int) -> np.ndarray:
    """``concatenate(arrays, axis)``, computed once per list of source arrays while they live (a
    view where they already lie back to back, see :func:`_adjacent`)."""
    key = (axis, *(id(a) for a in arrays))
    hit = _MERGED.get(key)
    if hit is not None and all(r() is a for r, a in zip(hit[0], arrays)):
        return hit[1]
    for k in [k for k, (refs, _) in _MERGED.items() if any(r() is None for r in refs)]:
        del _MERGED[k]
    view = _adjacent(arrays, axis)
    out = view if view is not None else np.ascontiguousarray(np.concatenate(arrays, axis=axis))
    _MERGED[key] = ([weakref.ref(a) for a in arrays], out)
    return out


def _linear_member(n: Node, producer: dict, known: dict, uses: Counter) -> tuple | None:
    """``(group key, weight values, concat axis)`` of a mergeable product node, else None;
    ``known`` maps the values holding constant arrays (constants, and a loop body's inputs bound
    to the enclosing graph's constants) to the arrays."""
    if n.op == "matmul":
        x, t = n.inputs
        if t in known:
            w, axis = t, 1  # x @ W, W [in, out]
        else:
            p = producer.get(t)
            if p is None or p.op != "permute_dims" or tuple(p.attrs["axes"]) != (1, 0) or uses[t] != 1:
                return None
            w, axis = p.inputs[0], 0  # x @ W^T, W [out, in]
            if w not in known:
                return None
        if w.spec.rank != 2 or x.spec.rank < 1:
            return None
        return ("matmul", x, axis, w.spec.dtype, w.spec.shape[1 - axis]), [w], axis
    if n.op == "quantized_matmul":
        x, *blocks = n.inputs
        if len(blocks) != 3 or not all(v in known for v in blocks) or x.spec.rank < 1:
            return None
        layout = tuple((v.spec.dtype, tuple(v.spec.shape)[1:]) for v in blocks)
        return ("quantized", x, n.attrs["bits"], n.attrs["zero_point"], layout), blocks, 0
    return None


def _merged_name(values: list[Value]) -> str | None:
    names = [v.name for v in values]
    return "+".join(names) if all(names) else None  # type: ignore[arg-type]


def merge_linears(graph: Graph) -> Graph:
    """Merge sibling products of one input with constant weights (see the module doc), also
    inside while_loop bodies, whose weights arrive as captured operands: the merged weight becomes
    a constant of the enclosing graph, captured by the loop like the weights it replaces."""
    return _merge(graph, dict(graph.constants))[0]


def _merge(graph: Graph, known: dict[Value, np.ndarray]) -> tuple[Graph, list[tuple[Value, np.ndarray]]]:
    """``graph`` merged, and the new inputs it needs (a subgraph's merged weights whose parts
    were captured inputs: ``(input value, array)``, appended to its inputs by this call)."""
    producer = {o: n for n in graph.nodes for o in n.outputs}
    uses: Counter = Counter(v for n in graph.nodes for v in n.inputs)
    uses.update(graph.outputs)
    groups: dict[tuple, list[tuple[int, Node, list[Value], int]]] = defaultdict(list)
    for i, n in enumerate(graph.nodes):
        member = _linear_member(n, producer, known, uses)
        if member is not None:
            groups[member[0]].append((i, n, member[1], member[2]))
    consts = dict(graph.constants)
    inputs = list(graph.inputs)
    added: list[tuple[Value, np.ndarray]] = []
    first: dict[int, list[Node]] = {}
    dropped: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        axis = members[0][3]
        weights = []
        for k in range(len(members[0][2])):  # each weight operand (quantized: codes, scales, offsets)
            parts = [m[2][k] for m in members]
            arr = _concatenated([np.asarray(known[v]) for v in parts], axis)
            v = Value(TensorSpec(arr.shape, parts[0].spec.dtype), _merged_name(parts))
            if all(p in graph.constants for p in parts):
                consts[v] = arr
            else:
                inputs.append(v)
                added.append((v, arr))
            weights.append(v)
        first[members[0][0]] = _merged_nodes(members, weights, axis)
        dropped.update(m[0] for m in members[1:])
    by_id = {id(arr): v for v, arr in consts.items()}
    nodes: list[Node] = []
    for i, n in enumerate(graph.nodes):
        if i in first:
            nodes.extend(first[i])
        elif i in dropped:
            continue
        elif n.op == "while_loop":
            nodes.append(_merge_loop(n, known, consts, by_id))
        else:
            nodes.append(_copy_node(n, subgraphs={k: merge_linears(s) for k, s in n.subgraphs.items()}))
    out = Graph(graph.name, inputs, list(graph.outputs), nodes, consts, list(graph.output_names))
    return out, added


def _merged_nodes(members: list, weights: list[Value], axis: int) -> list[Node]:
    """One product over the concatenated weights, then a slice per original output value."""
    node0 = members[0][1]
    x, y0 = node0.inputs[0], node0.outputs[0].spec
    widths = [m[1].outputs[0].spec.shape[-1] for m in members]
    lead = list(y0.shape)[:-1]
    new: list[Node] = []
    if node0.op == "matmul" and axis == 0:
        t = Value(TensorSpec(list(weights[0].spec.shape)[::-1], y0.dtype))
        new.append(Node("permute_dims", [weights[0]], [t], {"axes": (1, 0)}))
        operands = [x, t]
    else:
        operands = [x, *weights]
    y = Value(TensorSpec(lead + [sum(widths)], y0.dtype))
    new.append(Node(node0.op, operands, [y], dict(node0.attrs)))
    start = 0
    for m, w in zip(members, widths):
        attrs = {
            "starts": [0] * len(lead) + [start],
            "stops": lead + [start + w],
            "steps": [1] * (len(lead) + 1),
        }
        new.append(Node("slice", [y], list(m[1].outputs), attrs))
        start += w
    return new


def _merge_loop(n: Node, known: dict, consts: dict, by_id: dict) -> Node:
    """A while_loop with its body merged; the body's new weight inputs become captured operands
    (constants of this graph) and matching unused inputs of ``cond``."""
    body, cond = n.subgraphs["body"], n.subgraphs["cond"]
    inner = {v: known[o] for v, o in zip(body.inputs, n.inputs) if o in known}
    inner.update(body.constants)
    new_body, added = _merge(body, inner)
    ins = list(n.inputs)
    cond_inputs = list(cond.inputs)
    for v, arr in added:
        outer = by_id.get(id(arr))
        if outer is None:
            outer = Value(v.spec, v.name)
            consts[outer] = arr
            by_id[id(arr)] = outer
        ins.append(outer)
        cond_inputs.append(Value(v.spec, v.name))
    new_cond = Graph(
        cond.name,
        cond_inputs,
        list(cond.outputs),
        list(cond.nodes),
        dict(cond.constants),
        list(cond.output_names),
    )
    return Node(
        n.op, ins, list(n.outputs), dict(n.attrs), {**n.subgraphs, "body": new_body, "cond": new_cond}
    )


# ------------------------------------------------------------------------------------ pipeline


def optimize(graph: Graph, max_size: int = 1 << 16) -> Graph:
    """dead_code_elimination -> constant_folding -> common_subexpression_elimination ->
    merge_linears -> DCE."""
    g = dead_code_elimination(graph)
    g = constant_folding(g, max_size)
    g = common_subexpression_elimination(g)
    g = merge_linears(g)
    return dead_code_elimination(g)
