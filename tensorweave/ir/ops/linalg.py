"""matmul and einsum."""

from __future__ import annotations

import re

import numpy as np

from ..types import IRError, Shape, TensorSpec, broadcast_shapes, unify_dims
from .elementwise import NUMERIC, check_kind
from .registry import AttrSpec, register, require, same_dtype


def _infer_matmul(ins, attrs):
    a, b = ins
    dt = same_dtype("matmul", ins)
    check_kind("matmul", dt, NUMERIC)
    require(a.rank >= 1 and b.rank >= 1, "op matmul: inputs must have rank >= 1")
    sa, sb = list(a.shape), list(b.shape)
    va, vb = a.rank == 1, b.rank == 1
    if va:
        sa = [1] + sa
    if vb:
        sb = sb + [1]
    unify_dims(sa[-1], sb[-2], "op matmul: contracted dimension")
    batch = broadcast_shapes(Shape(sa[:-2]), Shape(sb[:-2]))
    out = list(batch) + ([] if va else [sa[-2]]) + ([] if vb else [sb[-1]])
    return [TensorSpec(out, dt)]


@register("matmul", inputs=2, infer=_infer_matmul, category="matmul")
def matmul(a, b):
    """Array-API matmul: contracts the last axis of a with the second-to-last of b; leading (batch)
    axes broadcast; a 1-D operand is promoted to a matrix and the added axis removed. Float16/bfloat16
    products accumulate in float32; ints wrap."""
    if a.dtype == np.float16 or a.dtype.name == "bfloat16":
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
    return np.matmul(a, b)


_EINSUM = re.compile(r"^([a-zA-Z]*)(,[a-zA-Z]*)*->[a-zA-Z]*$")


def parse_einsum(subscripts: str, n: int) -> tuple[list[str], str]:
    s = subscripts.replace(" ", "")
    if not _EINSUM.match(s):
        raise IRError(
            f"op einsum: subscripts {subscripts!r} must be explicit, like 'bij,bjk->bik' "
            "(letters only, no '...')"
        )
    lhs, out = s.split("->")
    terms = lhs.split(",")
    if len(terms) != n:
        raise IRError(f"op einsum: {len(terms)} operand terms in {subscripts!r} for {n} inputs")
    for t in terms:
        require(
            len(set(t)) == len(t), f"op einsum: repeated index in term {t!r} (diagonals are not supported)"
        )
    require(len(set(out)) == len(out), f"op einsum: repeated index in output {out!r}")
    for c in out:
        require(any(c in t for t in terms), f"op einsum: output index {c!r} does not appear in the inputs")
    return terms, out


def _infer_einsum(ins, attrs):
    terms, out = parse_einsum(attrs["subscripts"], len(ins))
    dt = same_dtype("einsum", ins)
    check_kind("einsum", dt, NUMERIC)
    sizes: dict = {}
    for t, spec in zip(terms, ins):
        require(
            len(t) == spec.rank,
            f"op einsum: term {t!r} has {len(t)} indices for an input of rank {spec.rank}",
        )
        for c, d in zip(t, spec.shape):
            if c in sizes and sizes[c] != d and d != 1 and sizes[c] != 1:
                sizes[c] = unify_dims(sizes[c], d, f"op einsum: index {c!r}")
            elif c not in sizes or sizes[c] == 1:
                sizes[c] = d
    return [TensorSpec([sizes[c] for c in out], dt)]


@register(
    "einsum",
    inputs=None,
    min_inputs=1,
    attrs={"subscripts": AttrSpec("str")},
    infer=_infer_einsum,
    category="einsum",
)
def einsum(*xs, subscripts):
    """Einstein summation with explicit output (``'bhqd,bhkd->bhqk'``): the product of the operands
    summed over every index absent from the output; size-1 dims broadcast. f16/bf16 accumulate in float32."""
    low = xs[0].dtype == np.float16 or xs[0].dtype.name == "bfloat16"
    args = [x.astype(np.float32) for x in xs] if low else xs
    return np.einsum(subscripts, *args).astype(xs[0].dtype)
