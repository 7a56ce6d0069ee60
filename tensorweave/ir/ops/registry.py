"""The op registry: one :class:`OpDef` per op.

An entry states the op's arity, its attributes (name, kind, default), its
shape/dtype rule (``infer``), its exact semantics (the docstring of the
reference implementation) and its numpy reference implementation.

Attribute kinds (the serialiser and the validator use them):

=============  ===========================================================
kind           Python value
=============  ===========================================================
int, float     ``int`` / ``float`` (float may be nan/inf)
bool, str      ``bool`` / ``str``
dtype          :class:`DType`
axis           ``int`` (may be negative; normalised by the tracer)
axes           ``tuple[int, ...]`` or ``None`` (= all axes)
ints           ``tuple[int, ...]``
dim            one Dim (int or SymDim), evaluated when the program runs
dims           ``tuple`` of Dims (a shape), evaluated when the program runs
scalar         ``bool | int | float`` (a literal; may be nan/inf)
opt_scalar     ``scalar`` or ``None``
=============  ===========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..types import DType, IRError, Shape, SymDim, TensorSpec, as_dim, as_dtype, evaluate_dim

REQUIRED = object()
ATTR_KINDS = (
    "int",
    "float",
    "bool",
    "str",
    "dtype",
    "axis",
    "axes",
    "ints",
    "dim",
    "dims",
    "scalar",
    "opt_scalar",
)


@dataclass(frozen=True)
class AttrSpec:
    kind: str
    default: Any = REQUIRED

    def __post_init__(self) -> None:
        assert self.kind in ATTR_KINDS, self.kind


@dataclass
class OpDef:
    name: str
    num_inputs: int | None  # None: variadic
    attrs: dict[str, AttrSpec]
    infer: Callable[[list[TensorSpec], dict], list[TensorSpec]]
    reference: Callable[..., Any]
    category: str
    num_outputs: int | None = 1  # None: determined by the node (control flow)
    min_inputs: int = 0
    subgraphs: tuple[str, ...] = ()
    #: uint32 results can leave [0, 2**32) when computed in a wider integer (add, multiply, shifts
    #: left, sums, products...): a backend that carries uint32 in int64 masks these to 32 bits.
    wraps_uint32: bool = False

    @property
    def doc(self) -> str:
        return (self.reference.__doc__ or "").strip()


OPS: dict[str, OpDef] = {}


def register(
    name: str,
    *,
    inputs: int | None,
    attrs: Mapping[str, AttrSpec] | None = None,
    infer: Callable,
    category: str,
    outputs: int | None = 1,
    min_inputs: int = 0,
    subgraphs: tuple[str, ...] = (),
    wraps_uint32: bool = False,
) -> Callable:
    """Decorator: register ``fn`` as the numpy reference implementation of op ``name``."""

    def deco(fn: Callable) -> Callable:
        if name in OPS:
            raise RuntimeError(f"op {name} registered twice")
        OPS[name] = OpDef(
            name, inputs, dict(attrs or {}), infer, fn, category, outputs, min_inputs, subgraphs, wraps_uint32
        )
        return fn

    return deco


#: ops whose uint32 results wrap modulo 2**32 (see OpDef.wraps_uint32); set once, here
WRAPS_UINT32 = (
    "add",
    "subtract",
    "multiply",
    "negative",
    "bitwise_invert",
    "bitwise_left_shift",
    "pow",
    "sum",
    "prod",
    "cumulative_sum",
    "matmul",
    "einsum",
)


def mark_wrapping_ops() -> None:
    """Set ``wraps_uint32`` on the ops of :data:`WRAPS_UINT32` (called once all ops are registered)."""
    import dataclasses

    for op in WRAPS_UINT32:
        OPS[op] = dataclasses.replace(OPS[op], wraps_uint32=True)


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise IRError(f"unknown op {name!r}; the registry has {len(OPS)} ops (see spec/ir.md)") from None


# ------------------------------------------------------------------ attribute checking


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def check_attr(op: str, key: str, kind: str, v: Any) -> Any:
    """Validate and normalise one attribute value of ``kind``; raise IRError naming it."""
    bad = IRError(f"op {op}: attribute {key!r} must be of kind {kind}, got {v!r}")
    if kind == "int" or kind == "axis":
        if not _is_int(v):
            raise bad
        return int(v)
    if kind == "float":
        if not isinstance(v, (int, float, np.floating, np.integer)) or isinstance(v, bool):
            raise bad
        return float(v)
    if kind == "bool":
        if not isinstance(v, (bool, np.bool_)):
            raise bad
        return bool(v)
    if kind == "str":
        if not isinstance(v, str):
            raise bad
        return v
    if kind == "dtype":
        try:
            return as_dtype(v)
        except IRError:
            raise bad from None
    if kind == "axes":
        if v is None:
            return None
        if not isinstance(v, (tuple, list)) or not all(_is_int(a) for a in v):
            raise bad
        return tuple(int(a) for a in v)
    if kind == "ints":
        if not isinstance(v, (tuple, list)) or not all(_is_int(a) for a in v):
            raise bad
        return tuple(int(a) for a in v)
    if kind == "dim":
        if isinstance(v, SymDim):
            return v
        if _is_int(v):
            return int(v)
        raise bad
    if kind == "dims":
        if not isinstance(v, (tuple, list)) or not all(isinstance(d, SymDim) or _is_int(d) for d in v):
            raise bad
        return tuple(d if isinstance(d, SymDim) else int(d) for d in v)
    if kind in ("scalar", "opt_scalar"):
        if v is None and kind == "opt_scalar":
            return None
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if _is_int(v):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v)
        raise bad
    raise bad  # pragma: no cover


def check_attrs(opdef: OpDef, attrs: Mapping[str, Any]) -> dict:
    """Fill defaults, reject unknown/missing attributes, normalise kinds."""
    unknown = set(attrs) - set(opdef.attrs)
    if unknown:
        raise IRError(
            f"op {opdef.name}: unknown attribute(s) {sorted(unknown)}; it takes {sorted(opdef.attrs)}"
        )
    out = {}
    for key, spec in opdef.attrs.items():
        if key in attrs:
            out[key] = check_attr(opdef.name, key, spec.kind, attrs[key])
        elif spec.default is REQUIRED:
            raise IRError(f"op {opdef.name}: missing attribute {key!r}")
        else:
            out[key] = spec.default
    return out


def infer_node(
    opdef: OpDef, in_specs: Sequence[TensorSpec], attrs: dict, subgraphs: Mapping[str, Any] | None = None
) -> list[TensorSpec]:
    """Check arity, subgraphs and apply the op's shape/dtype rule."""
    given = set(subgraphs or {})
    if given != set(opdef.subgraphs):
        raise IRError(f"op {opdef.name}: needs subgraphs {sorted(opdef.subgraphs)}, got {sorted(given)}")
    n = len(in_specs)
    if opdef.num_inputs is not None and n != opdef.num_inputs:
        raise IRError(f"op {opdef.name}: takes {opdef.num_inputs} input(s), got {n}")
    if opdef.num_inputs is None and n < opdef.min_inputs:
        raise IRError(f"op {opdef.name}: takes at least {opdef.min_inputs} input(s), got {n}")
    if opdef.subgraphs:
        return list(opdef.infer(list(in_specs), attrs, subgraphs))
    return list(opdef.infer(list(in_specs), attrs))


def resolve_attrs(opdef: OpDef, attrs: Mapping[str, Any], env: Mapping[str, int]) -> dict:
    """Evaluate the symbolic ``dim``/``dims`` attributes of a node for concrete symbol values."""
    out = dict(attrs)
    for key, spec in opdef.attrs.items():
        if spec.kind == "dim" and key in out:
            out[key] = evaluate_dim(out[key], env)
        elif spec.kind == "dims" and key in out:
            out[key] = tuple(evaluate_dim(d, env) for d in out[key])
    return out


# ------------------------------------------------------------------ helpers for rules


def norm_axis(axis: int, rank: int, op: str) -> int:
    if not -rank <= axis < max(rank, 1) or (rank == 0 and axis not in (0, -1)):
        raise IRError(f"op {op}: axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def norm_axes(axes: tuple | None, rank: int, op: str) -> tuple:
    if axes is None:
        return tuple(range(rank))
    out = tuple(norm_axis(a, rank, op) for a in axes)
    if len(set(out)) != len(out):
        raise IRError(f"op {op}: repeated axis in {axes}")
    return out


def require(cond: bool, msg: str) -> None:
    if not cond:
        raise IRError(msg)


def same_dtype(op: str, specs: Sequence[TensorSpec]) -> DType:
    dts = {s.dtype for s in specs}
    if len(dts) != 1:
        raise IRError(
            f"op {op}: inputs must share one dtype, got {', '.join(str(s.dtype) for s in specs)}; "
            "insert astype"
        )
    return next(iter(dts))


def np_dtype(dt: DType) -> np.dtype:
    return dt.to_numpy()


def shape_size_equal(a: Sequence, b: Sequence) -> bool:
    na: Any = 1
    nb: Any = 1
    for d in a:
        na = na * d
    for d in b:
        nb = nb * d
    return na == nb


__all__ = [
    "OPS",
    "OpDef",
    "AttrSpec",
    "REQUIRED",
    "register",
    "get_op",
    "check_attrs",
    "check_attr",
    "infer_node",
    "resolve_attrs",
    "norm_axis",
    "norm_axes",
    "require",
    "same_dtype",
    "np_dtype",
    "Shape",
    "TensorSpec",
    "DType",
    "IRError",
    "as_dim",
    "math",
]
