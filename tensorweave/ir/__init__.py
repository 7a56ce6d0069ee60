"""The backend-neutral IR: types, graphs, the op registry, tracing, control flow, RNG.

Imports numpy only (plus ml_dtypes, numpy's bfloat16 extension, when a bfloat16
array is materialised).
"""

from . import namespace, passes, random, serialize
from .control import cond, fori_loop, tree_flatten, tree_unflatten, while_loop
from .graph import Graph, Node, Value
from .ops import OPS, get_op
from .trace import TracedArray, trace
from .types import DType, IRError, Shape, SymDim, TensorSpec, as_dim, as_dtype


def array_namespace(*xs):
    """The Array-API namespace of the arguments: the IR namespace for traced arrays, else numpy."""
    import numpy as np

    for x in xs:
        if isinstance(x, TracedArray):
            return namespace
    for x in xs:
        ns = getattr(x, "__array_namespace__", None)
        if ns is not None and not isinstance(x, np.ndarray):
            return ns()
    return np


__all__ = [
    "namespace",
    "passes",
    "random",
    "serialize",
    "cond",
    "fori_loop",
    "while_loop",
    "tree_flatten",
    "tree_unflatten",
    "Graph",
    "Node",
    "Value",
    "OPS",
    "get_op",
    "TracedArray",
    "trace",
    "DType",
    "IRError",
    "Shape",
    "SymDim",
    "TensorSpec",
    "as_dim",
    "as_dtype",
    "array_namespace",
]
