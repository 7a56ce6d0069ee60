"""Structured control flow over pytrees of arrays: while_loop, cond, fori_loop.

Inside a trace these record ``while_loop`` / ``cond`` nodes whose subgraphs are
traced from the Python callables (outer arrays they use are captured as
explicit operands). Outside a trace (plain numpy arrays) they run eagerly as
Python control flow, so the same frontend code also runs on numpy directly.

A pytree is an array/scalar leaf, or a tuple/list/dict of pytrees (dict keys
in insertion order).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .graph import Graph, Value
from .trace import Builder, TracedArray, astype, building, current_builder, emit, literal, to_value
from .types import DType, IRError, TensorSpec, from_numpy_dtype


# ------------------------------------------------------------------ pytrees
def tree_flatten(tree: Any) -> tuple[list, Any]:
    if isinstance(tree, (tuple, list)):
        leaves, defs = [], []
        for t in tree:
            l, d = tree_flatten(t)
            leaves += l
            defs.append(d)
        return leaves, (type(tree), defs)
    if isinstance(tree, dict):
        leaves, defs = [], []
        for k, t in tree.items():
            l, d = tree_flatten(t)
            leaves += l
            defs.append((k, d))
        return leaves, (dict, defs)
    return [tree], None


def tree_unflatten(treedef: Any, leaves: list) -> Any:
    it = iter(leaves)

    def build(d):
        if d is None:
            return next(it)
        kind, defs = d
        if kind is dict:
            return {k: build(sd) for k, sd in defs}
        items = [build(sd) for sd in defs]
        return kind(items) if kind in (tuple, list) else kind(*items)

    return build(treedef)


def _is_traced(leaves: list) -> bool:
    return any(isinstance(x, TracedArray) for x in leaves)


def _leaf_spec(x: Any) -> TensorSpec:
    if isinstance(x, TracedArray):
        return x.value.spec
    arr = literal(x, None)
    return TensorSpec(arr.shape, from_numpy_dtype(arr.dtype))


def _trace_sub(
    name: str, fn: Callable, specs: list[TensorSpec], treedef: Any, parent: Builder, n_args_prefix: tuple = ()
) -> tuple[Builder, list, Any]:
    """Trace ``fn`` over fresh inputs of ``specs`` (rebuilt into ``treedef``) in a child builder."""
    b = Builder(name, parent)
    args = [TracedArray(b.add_input(s), b) for s in specs]
    with building(b):
        out = fn(*n_args_prefix, tree_unflatten(treedef, args)) if treedef is not ... else fn(*args)
        leaves, out_def = tree_flatten(out)
        vals = [b.local(to_value(x, b)) for x in leaves]
    return b, vals, out_def


def _close(b: Builder, outputs: list, all_captured: list) -> Graph:
    """The subgraph: own inputs + one input per captured outer value (in the shared order)."""
    extra = []
    for outer in all_captured:
        if outer in b.captures:
            extra.append(b.captures[outer])
        else:
            extra.append(Value(outer.spec))
    return b.graph(outputs, extra_inputs=extra)


def _cast_to(vals: list, specs: list[TensorSpec], b: Builder, what: str) -> list:
    out = []
    for i, (v, s) in enumerate(zip(vals, specs)):
        if v.spec.dtype != s.dtype:
            with building(b):
                v = emit("astype", [TracedArray(v, b)], {"dtype": s.dtype})[0].value
        if tuple(v.spec.shape) != tuple(s.shape):
            raise IRError(
                f"{what}: state leaf {i} changes shape from {s.shape} to {v.spec.shape}; "
                "loop state must keep its shape"
            )
        out.append(v)
    return out


# ------------------------------------------------------------------ while_loop
def while_loop(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any], init_val: Any) -> Any:
    """``val = init_val; while cond_fun(val): val = body_fun(val); return val`` (lax.while_loop)."""
    leaves, treedef = tree_flatten(init_val)
    parent = current_builder()
    if parent is None and not _is_traced(leaves):
        val = init_val
        while bool(np.asarray(cond_fun(val))):
            val = body_fun(val)
        return val
    if parent is None:
        raise IRError("while_loop on traced arrays outside their trace")
    specs = [_leaf_spec(x) for x in leaves]
    cb, cvals, _ = _trace_sub("cond", cond_fun, specs, treedef, parent, ())
    if len(cvals) != 1 or tuple(cvals[0].spec.shape) != ():
        raise IRError("while_loop: cond_fun must return one scalar")
    cvals = _cast_to(cvals, [TensorSpec((), DType.bool)], cb, "while_loop cond")
    bb, bvals, bdef = _trace_sub("body", body_fun, specs, treedef, parent, ())
    if len(bvals) != len(specs):
        raise IRError(f"while_loop: body_fun returns {len(bvals)} leaves for a state of {len(specs)}")
    bvals = _cast_to(bvals, specs, bb, "while_loop body")
    captured = list(dict.fromkeys(list(cb.captures) + list(bb.captures)))
    cg = _close(cb, cvals, captured)
    bg = _close(bb, bvals, captured)
    for o in captured:
        parent.local(o)
    init = [TracedArray(parent.local(to_value(x, parent)), parent) for x in leaves]
    init = [TracedArray(v, parent) for v in _cast_to([a.value for a in init], specs, parent, "while_loop")]
    outs = emit(
        "while_loop",
        init + [TracedArray(o, parent) for o in captured],
        {"num_state": len(specs)},
        {"cond": cg, "body": bg},
    )
    return tree_unflatten(treedef, outs)


def fori_loop(lower: Any, upper: Any, body_fun: Callable[[Any, Any], Any], init_val: Any) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)`` (i is an int64 scalar when traced)."""
    leaves, _ = tree_flatten(init_val)
    if current_builder() is None and not _is_traced(leaves + [lower, upper]):
        val = init_val
        for i in range(int(lower), int(upper)):
            val = body_fun(np.int64(i), val)
        return val
    lo = astype(lower, DType.int64)
    hi = astype(upper, DType.int64)
    i_final, val = while_loop(lambda s: s[0] < hi, lambda s: (s[0] + 1, body_fun(s[0], s[1])), (lo, init_val))
    return val


# ------------------------------------------------------------------ cond
def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """``true_fun(*operands) if pred else false_fun(*operands)``; both branches must return the same types."""
    leaves, treedef = tree_flatten(list(operands))
    parent = current_builder()
    if parent is None and not _is_traced(leaves + [pred]):
        return true_fun(*operands) if bool(np.asarray(pred)) else false_fun(*operands)
    specs = [_leaf_spec(x) for x in leaves]

    def call(fn):
        return lambda ops: fn(*ops)

    tb, tvals, tdef = _trace_sub("then", call(true_fun), specs, treedef, parent, ())
    fb, fvals, fdef = _trace_sub("else", call(false_fun), specs, treedef, parent, ())
    if len(tvals) != len(fvals):
        raise IRError(f"cond: branches return {len(tvals)} and {len(fvals)} leaves")
    fvals = _cast_to(fvals, [v.spec for v in tvals], fb, "cond false branch")
    captured = list(dict.fromkeys(list(tb.captures) + list(fb.captures)))
    tg = _close(tb, tvals, captured)
    fg = _close(fb, fvals, captured)
    p = TracedArray(parent.local(to_value(pred, parent)), parent)
    if p.dtype is not DType.bool:
        p = emit("astype", [p], {"dtype": DType.bool})[0]
    if p.ndim != 0:
        raise IRError("cond: pred must be a scalar")
    ops = [TracedArray(parent.local(to_value(x, parent)), parent) for x in leaves]
    outs = emit(
        "cond",
        [p] + ops + [TracedArray(parent.local(o), parent) for o in captured],
        {},
        {"then": tg, "else": fg},
    )
    return tree_unflatten(tdef, outs)
