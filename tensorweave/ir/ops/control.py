"""Structured control flow: while_loop and cond, with closed subgraphs.

``while_loop(*state, *captured)`` has attribute ``num_state`` and subgraphs
``cond`` (state + captured -> bool scalar) and ``body`` (state + captured ->
new state, same types).  Its outputs are the final state.

``cond(pred, *operands)`` has subgraphs ``then`` and ``else`` (operands ->
outputs); both must return the same types; only the taken branch runs.

The numpy reference receives the subgraphs as Python callables.
"""

from __future__ import annotations

from ..types import DType, IRError, TensorSpec
from .registry import AttrSpec, register, require


def _types_match(a: TensorSpec, b: TensorSpec) -> bool:
    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)


def infer_while(ins, attrs, subgraphs=None):
    n = attrs["num_state"]
    require(0 <= n <= len(ins), f"op while_loop: num_state {n} exceeds its {len(ins)} inputs")
    if subgraphs is not None:
        cond, body = subgraphs["cond"], subgraphs["body"]
        for key, g in (("cond", cond), ("body", body)):
            require(
                len(g.inputs) == len(ins),
                f"op while_loop: subgraph {key} takes {len(g.inputs)} inputs, the loop passes {len(ins)}",
            )
            for i, (v, s) in enumerate(zip(g.inputs, ins)):
                require(
                    _types_match(v.spec, s),
                    f"op while_loop: subgraph {key} input {i} is {v.spec}, loop passes {s}",
                )
        require(
            len(cond.outputs) == 1
            and cond.outputs[0].spec.dtype is DType.bool
            and cond.outputs[0].spec.rank == 0,
            "op while_loop: cond must return one bool scalar",
        )
        require(
            len(body.outputs) == n,
            f"op while_loop: body returns {len(body.outputs)} values for {n} state values",
        )
        for i, (v, s) in enumerate(zip(body.outputs, ins[:n])):
            require(
                _types_match(v.spec, s),
                f"op while_loop: body output {i} is {v.spec} but the state is {s}; "
                "loop state must keep its shape and dtype",
            )
    return [s.with_name(None) for s in ins[:n]]


@register(
    "while_loop",
    inputs=None,
    attrs={"num_state": AttrSpec("int")},
    infer=infer_while,
    category="control",
    outputs=None,
    subgraphs=("cond", "body"),
)
def while_loop(*args, num_state, cond, body):
    """state = init; while cond(state, captured): state = body(state, captured); return state."""
    state = list(args[:num_state])
    captured = list(args[num_state:])
    while bool(cond(*state, *captured)[0]):
        state = list(body(*state, *captured))
    return tuple(state)


def infer_cond(ins, attrs, subgraphs=None):
    require(
        len(ins) >= 1 and ins[0].dtype is DType.bool and ins[0].rank == 0,
        "op cond: the predicate must be a bool scalar",
    )
    if subgraphs is None:
        raise IRError("op cond: needs then/else subgraphs")
    a, b = subgraphs["then"], subgraphs["else"]
    for key, g in (("then", a), ("else", b)):
        require(
            len(g.inputs) == len(ins) - 1,
            f"op cond: branch {key} takes {len(g.inputs)} inputs, cond passes {len(ins) - 1}",
        )
        for i, (v, s) in enumerate(zip(g.inputs, ins[1:])):
            require(_types_match(v.spec, s), f"op cond: branch {key} input {i} is {v.spec}, cond passes {s}")
    require(len(a.outputs) == len(b.outputs), "op cond: branches return different numbers of values")
    for i, (x, y) in enumerate(zip(a.outputs, b.outputs)):
        require(_types_match(x.spec, y.spec), f"op cond: branch outputs {i} differ: {x.spec} vs {y.spec}")
    return [v.spec.with_name(None) for v in a.outputs]


@register(
    "cond",
    inputs=None,
    min_inputs=1,
    infer=infer_cond,
    category="control",
    outputs=None,
    subgraphs=("then", "else"),
)
def cond(pred, *operands, then, **kw):
    """then(*operands) if pred else else(*operands)."""
    branch = then if bool(pred) else kw["else"]
    return tuple(branch(*operands))
