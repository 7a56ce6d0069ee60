"""The op registry (see :mod:`.registry`); importing this package registers every op."""

from . import control, elementwise, linalg, manipulation, nn, quant, reduction  # noqa: F401  (registration)
from .registry import OPS, AttrSpec, OpDef, check_attrs, get_op, infer_node, mark_wrapping_ops, resolve_attrs

mark_wrapping_ops()

__all__ = ["OPS", "AttrSpec", "OpDef", "check_attrs", "get_op", "infer_node", "resolve_attrs"]
