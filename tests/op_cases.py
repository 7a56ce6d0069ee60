"""Generated inputs for the op x backend parity matrix (tests/test_parity_matrix.py).

Every op of ``tensorweave.ir.ops.OPS`` gets several cases: tiny 1-node graphs built directly
(``one_node``) and traced programs (negative axes, symbolic dims, control flow, the RNG).
The inputs cover broadcasting, size-0 and size-1 dims, nan/inf/-0.0, uint32 wrap-around near
2**32, int32/int64 overflow, ties in sort/argsort/top_k/argmax/argmin, every dtype an op accepts
(float16/bfloat16 for representative ops) and symbolic dims run at several concrete sizes.

Binary ops are mostly checked on *all pairs* of a value list (``x[:, None]`` against
``x[None, :]``): one case covers broadcasting, overflow pairs, nan/inf combinations and ties.

Input domains left out (the op docstrings call them unspecified, see :data:`EXCLUDED`) are
never generated; every case stays inside the specified semantics, so any disagreement with
the numpy reference is a backend bug (or a wrong case).

Cases that share a ``group`` may be run as one merged multi-output graph (``merge``): a backend
then compiles one program per group instead of one per case (jit / tf.function / ORT session
costs), while results are still reported per case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import tensorweave.ir.namespace as xp
from tensorweave.ir import TensorSpec, trace
from tensorweave.ir.graph import Graph, Node, Value
from tensorweave.ir.ops import OPS, check_attrs, get_op, infer_node
from tensorweave.ir.types import DType

BF16 = DType.bfloat16.to_numpy()
F16 = np.float16

#: op -> input domains the matrix never generates, and why (from the op docstrings).
EXCLUDED: dict[str, str] = {
    "floor_divide": "integer division by zero is unspecified; INT_MIN // -1 overflows (traps in C kernels) "
    "and float inf/nan operands differ between floor(x/y) and fmod-based kernels",
    "remainder": "integer remainder by zero is unspecified; INT_MIN % -1 as for floor_divide; float "
    "inf/nan operands as for floor_divide",
    "pow": "negative integer exponents are unspecified",
    "bitwise_left_shift": "shift amounts outside [0, bits) are unspecified",
    "bitwise_right_shift": "shift amounts outside [0, bits) are unspecified",
    "astype": "float -> int of nan, inf or out-of-range values is unspecified",
    "take": "indices outside [0, n) are unspecified",
    "take_along_axis": "indices outside [0, n) are unspecified",
    "put_along_axis": "indices outside [0, n) are unspecified; duplicate indices with different values "
    "write an unspecified one",
    "max": "reducing an empty axis is an error (refused when the graph is built)",
    "min": "reducing an empty axis is an error (refused when the graph is built)",
    "argmax": "reducing an empty axis is an error (refused when the graph is built)",
    "argmin": "reducing an empty axis is an error (refused when the graph is built)",
}


@dataclass(frozen=True)
class Case:
    """One parity case: a graph, its inputs, and the merge group (None: always run alone)."""

    id: str
    graph: Graph
    inputs: tuple
    group: str | None = None


def _dtype_of(a: np.ndarray) -> DType:
    return DType.bfloat16 if a.dtype == BF16 else DType(a.dtype.name)


def one_node(op: str, arrs: Sequence[np.ndarray], **attrs: Any) -> Graph:
    """A graph holding a single ``op`` node over inputs shaped like ``arrs``."""
    ins = [Value(TensorSpec(a.shape, _dtype_of(a)), f"x{i}") for i, a in enumerate(arrs)]
    opdef = get_op(op)
    attrs = check_attrs(opdef, attrs)
    outs = [Value(s) for s in infer_node(opdef, [v.spec for v in ins], attrs)]
    return Graph(op, ins, outs, [Node(op, ins, outs, attrs)])


def merge(cases: Sequence[Case]) -> tuple[Graph, list[np.ndarray], list[slice]]:
    """One graph running every 1-node case side by side: inputs and outputs concatenated.

    Returns the graph, its inputs and, per case, the slice of the merged outputs it owns.
    """
    inputs, outputs, nodes, arrays, names, owned = [], [], [], [], [], []
    for k, case in enumerate(cases):
        (node,) = case.graph.nodes
        fresh = {v: Value(v.spec, f"c{k}_{i}") for i, v in enumerate(case.graph.inputs)}
        outs = [Value(v.spec) for v in node.outputs]
        inputs += [fresh[v] for v in case.graph.inputs]
        nodes.append(Node(node.op, [fresh[v] for v in node.inputs], outs, dict(node.attrs)))
        owned.append(slice(len(outputs), len(outputs) + len(outs)))
        outputs += outs
        names += [f"c{k}_out{j}" for j in range(len(outs))]
        arrays += list(case.inputs)
    return Graph("merged", inputs, outputs, nodes, output_names=names), arrays, owned


# ------------------------------------------------------------------ input values

_rng = np.random.default_rng(0)


def normal(*shape: int, dtype: Any = np.float32, scale: float = 1.0) -> np.ndarray:
    return (_rng.standard_normal(shape) * scale).astype(dtype)


#: nan, infinities, signed zeros, ordinary and large values (exp(100) overflows float32).
SPECIAL = np.array(
    [np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -2.5, 3.0, 100.0, -100.0, 1e-3, 7.25],
    np.float64,
)
#: int32 values whose pairwise sums/differences/products overflow (2**31-1 + 1, 46341**2, ...).
I32 = np.array([0, 1, -1, 2, -7, 46341, 65536, 2**31 - 1, -(2**31)], np.int32)
I64 = np.array([0, 1, -1, 2, -7, 3037000500, 2**32, 2**63 - 1, -(2**63)], np.int64)
#: uint32 values near the wrap-around point.
U32 = np.array([0, 1, 2, 7, 65536, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, 0xFFFFFFFF], np.uint32)
BOOLS = np.array([True, False])
INTS = {"i32": I32, "i64": I64, "u32": U32}


def special(dtype: Any) -> np.ndarray:
    """SPECIAL in ``dtype``, shaped (4, 4)."""
    return SPECIAL.astype(dtype).reshape(4, 4)


def pairs(x: np.ndarray) -> list[np.ndarray]:
    """All pairs of x's values by broadcasting: [x[:, None], x[None, :]]."""
    return [x.reshape(-1, 1), x.reshape(1, -1)]


# ------------------------------------------------------------------ case collection


class Cases:
    """Collects cases; ids are ``op-label`` and must be unique."""

    def __init__(self) -> None:
        self.items: list[Case] = []
        self.ids: set[str] = set()

    def _add(self, case: Case) -> None:
        assert case.id not in self.ids, f"duplicate case id {case.id}"
        self.ids.add(case.id)
        self.items.append(case)

    def node(self, op: str, label: str, arrays: Sequence[np.ndarray], **attrs: Any) -> None:
        """A 1-node case, merged with the other cases of its op category."""
        arrays = tuple(np.asarray(a) if not isinstance(a, np.ndarray) else a for a in arrays)
        group = OPS[op].category.split(":")[0]
        self._add(Case(f"{op}-{label}", one_node(op, arrays, **attrs), arrays, group))

    def traced(
        self, name: str, fn: Callable, specs: Sequence[TensorSpec], runs: Sequence[Sequence[np.ndarray]]
    ) -> None:
        """A traced program run on each input list of ``runs`` (several sizes for symbolic dims)."""
        graph = trace(fn, *specs, name=name)
        for k, arrays in enumerate(runs):
            self._add(Case(f"{name}-{k}" if len(runs) > 1 else name, graph, tuple(arrays), None))


# ------------------------------------------------------------------ elementwise

UNARY_FLOAT = [
    "exp",
    "log",
    "log1p",
    "sqrt",
    "rsqrt",
    "tanh",
    "erf",
    "sin",
    "cos",
    "floor",
    "ceil",
    "sigmoid",
    "silu",
    "gelu",
]
UNARY_NUMERIC = ["abs", "negative", "sign", "isnan", "isinf", "isfinite"]
ARITH = ["add", "subtract", "multiply", "maximum", "minimum"]
COMPARE = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]


def unary_cases(c: Cases) -> None:
    mixed = (
        np.concatenate([SPECIAL, normal(16, dtype=np.float64, scale=2.0)]).astype(np.float32).reshape(4, 8)
    )
    for op in UNARY_FLOAT + UNARY_NUMERIC:
        c.node(op, "f32-special-normal", [mixed])
        c.node(op, "f64-special", [special(np.float64)])
        c.node(op, "f16-special", [special(F16)])
    for op in ["exp", "log", "tanh", "sigmoid", "abs", "sign", "isnan", "gelu", "rsqrt"]:
        c.node(op, "bf16-special", [special(BF16)])
    c.node("gelu", "tanh-f32", [special(np.float32)], approximate="tanh")
    c.node("gelu", "tanh-f16", [normal(2, 3, dtype=F16)], approximate="tanh")
    c.node("exp", "size0", [np.zeros((0, 3), np.float32)])
    for op in UNARY_NUMERIC:
        for name, x in INTS.items():
            c.node(op, name, [x])
    c.node("logical_not", "bool", [BOOLS])
    for name, x in INTS.items():
        c.node("bitwise_invert", name, [x])
    c.node("bitwise_invert", "bool", [BOOLS])


def binary_cases(c: Cases) -> None:
    for op in ARITH + COMPARE:
        c.node(op, "f32-pairs", pairs(SPECIAL.astype(np.float32)))
        c.node(op, "f16-pairs", pairs(SPECIAL.astype(F16)))
        for name, x in INTS.items():
            c.node(op, f"{name}-pairs", pairs(x))
    for op in ["add", "subtract", "multiply", "maximum", "greater", "equal"]:
        c.node(op, "bf16-pairs", pairs(SPECIAL.astype(BF16)))
        c.node(op, "f64-pairs", pairs(SPECIAL))
    c.node("add", "broadcast-3d", [normal(2, 1, 3), normal(4, 1)])
    c.node("multiply", "size0", [normal(0, 3), normal(1, 3)])
    c.node("less", "size1-scalar", [normal(1), np.array(0.25, np.float32)])
    for op in ["equal", "not_equal"]:
        c.node(op, "bool-pairs", pairs(BOOLS))
    for name, dt in [("f32", np.float32), ("f64", np.float64), ("f16", F16), ("bf16", BF16)]:
        c.node("divide", f"{name}-pairs", pairs(SPECIAL.astype(dt)))
        c.node("pow", f"{name}-pairs", pairs(SPECIAL.astype(dt)))
    c.node("pow", "f32-normal", [np.abs(normal(3, 4)) + 0.1, normal(3, 4)])
    # integer pow: exponents >= 0 only; 3**20 and 7**40 wrap
    c.node(
        "pow",
        "i32",
        [np.array([0, 1, -1, 2, 3, -3, 7], np.int32).reshape(-1, 1), np.array([0, 1, 2, 3, 5, 20], np.int32)],
    )
    c.node(
        "pow",
        "i64",
        [
            np.array([0, 1, -1, 2, 3, -3, 7], np.int64).reshape(-1, 1),
            np.array([0, 1, 2, 5, 20, 40], np.int64),
        ],
    )
    c.node(
        "pow",
        "u32",
        [
            np.array([0, 1, 2, 3, 7, 0xFFFFFFFF], np.uint32).reshape(-1, 1),
            np.array([0, 1, 2, 5, 20], np.uint32),
        ],
    )
    # floor_divide / remainder: no zero divisor, no INT_MIN // -1, finite floats
    divisors = {
        "i32": np.array([1, 2, -2, 3, -7, 2**31 - 1, -(2**31)], np.int32),
        "i64": np.array([1, 2, -2, 3, -7, 2**63 - 1, -(2**63)], np.int64),
        "u32": np.array([1, 2, 3, 7, 0x80000000, 0xFFFFFFFF], np.uint32),
    }
    finite = SPECIAL[np.isfinite(SPECIAL)]
    for op in ["floor_divide", "remainder"]:
        for name, x in INTS.items():
            c.node(op, name, [x.reshape(-1, 1), divisors[name]])
        c.node(op, "f32", [finite.astype(np.float32).reshape(-1, 1), finite[finite != 0].astype(np.float32)])
        c.node(op, "f64", [finite.reshape(-1, 1), finite[finite != 0]])
        c.node(op, "f16", [finite.astype(F16).reshape(-1, 1), finite[finite != 0].astype(F16)])
        c.node(op, "f32-normal", [normal(4, 5, scale=10.0), normal(4, 5) + 3.0])
    for op in ["logical_and", "logical_or", "logical_xor"]:
        c.node(op, "bool-pairs", pairs(BOOLS))
        c.node(op, "size0", [np.zeros((0, 2), bool), np.ones((1, 2), bool)])
    for op in ["bitwise_and", "bitwise_or", "bitwise_xor"]:
        for name, x in INTS.items():
            c.node(op, f"{name}-pairs", pairs(x))
        c.node(op, "bool-pairs", pairs(BOOLS))
    for op in ["bitwise_left_shift", "bitwise_right_shift"]:
        for name, x in INTS.items():
            bits = x.dtype.itemsize * 8
            c.node(op, name, [x.reshape(-1, 1), np.array([0, 1, 7, bits // 2, bits - 1], x.dtype)])


def where_clip_astype_cases(c: Cases) -> None:
    cond = np.array([True, False, True, False])
    c.node("where", "f32-broadcast", [normal(3, 1) > 0, normal(1, 4), normal(3, 4)])
    c.node("where", "f32-special", [cond, SPECIAL[:4].astype(np.float32), SPECIAL[4:8].astype(np.float32)])
    for name, x in INTS.items():
        c.node("where", name, [np.resize(cond, x.shape), x, x[::-1].copy()])
    c.node("where", "bool", [cond.reshape(2, 2), np.array([[True, True]]), np.array([[False], [False]])])
    c.node("where", "f16", [cond, SPECIAL[:4].astype(F16), SPECIAL[8:12].astype(F16)])
    c.node("where", "bf16", [cond, SPECIAL[:4].astype(BF16), SPECIAL[8:12].astype(BF16)])
    c.node("where", "size0", [np.zeros((0, 1), bool), normal(1, 3), normal(0, 3)])
    for name, dt in [("f32", np.float32), ("f64", np.float64), ("f16", F16), ("bf16", BF16)]:
        c.node("clip", f"{name}-both", [special(dt)], min=-1.0, max=2.0)
    c.node("clip", "f32-min", [special(np.float32)], min=0.0)
    c.node("clip", "f32-max", [special(np.float32)], max=-0.5)
    c.node("clip", "f32-min-above-max", [special(np.float32)], min=3.0, max=1.0)
    c.node("clip", "i32", [I32], min=-3, max=2**31 - 2)
    c.node("clip", "i64", [I64], min=-3)
    c.node("clip", "u32", [U32], min=2, max=0x80000000)

    dtypes = ["bool", "int32", "int64", "uint32", "float16", "bfloat16", "float32", "float64"]
    sources = {
        "bool": BOOLS,
        "i32": I32,
        "i64": I64,
        "u32": U32,
        "f32": SPECIAL.astype(np.float32),
        "f64": SPECIAL,
        "f16": SPECIAL.astype(F16),
        "bf16": SPECIAL.astype(BF16),
    }
    # float -> int: truncation of values inside the target's range only (EXCLUDED)
    in_range = {
        "int32": [1.9, -1.9, 0.0, -0.0, 100.5, -2.0e9, 2.0e9],
        "int64": [1.9, -1.9, 0.0, 100.5, -4.0e18, 4.0e18],
        "uint32": [1.9, 0.0, 100.5, 4.0e9],
    }
    in_range_small = {
        "int32": [1.9, -1.9, 0.0, 100.5, 2000.0],
        "int64": [1.9, -1.9, 0.0, 100.5, 2000.0],
        "uint32": [1.9, 0.0, 100.5, 2000.0],
    }  # exact in float16/bfloat16
    for sname, x in sources.items():
        for dst in dtypes:
            if x.dtype.kind in "fV" and dst in in_range:
                values = in_range_small[dst] if x.dtype in (F16, BF16) else in_range[dst]
                x = np.array(values).astype(x.dtype)
            c.node("astype", f"{sname}-to-{dst}", [x], dtype=dst)
            x = sources[sname]
    c.node(
        "astype",
        "f32-to-f16-overflow-rounding",
        [np.array([70000.0, 65519.0, 65520.0, 1.0 + 2**-11, 1e-8], np.float32)],
        dtype="float16",
    )
    c.node(
        "astype",
        "f64-to-f32-rounding",
        [np.array([1.0 + 2**-24, 1.0 + 3 * 2**-24, 1e39, 1e-46])],
        dtype="float32",
    )
    c.node(
        "astype",
        "i64-to-f32-rounding",
        [np.array([2**24 + 1, 2**53 + 1, -(2**63)], np.int64)],
        dtype="float32",
    )


# ------------------------------------------------------------------ reductions, scans, linear algebra


def reduction_cases(c: Cases) -> None:
    x234 = normal(2, 3, 4)
    for op in ["sum", "prod", "max", "min", "mean", "logsumexp"]:
        c.node(op, "f32-axis1", [normal(3, 4)], axis=(1,))
        c.node(op, "f32-axes02-keep", [x234], axis=(0, 2), keepdims=True)
        c.node(op, "f32-all", [normal(3, 4)])
        c.node(op, "f32-special", [special(np.float32)], axis=(1,))
        c.node(op, "f64-special", [special(np.float64)], axis=(0,))
        c.node(op, "f16-special", [special(F16)], axis=(1,))
        c.node(op, "size1-axis", [normal(3, 1)], axis=(1,))
    for op in ["sum", "max", "mean"]:
        c.node(op, "bf16", [normal(2, 8, dtype=BF16)], axis=(1,))
    for op in ["sum", "prod", "max", "min"]:
        for name, x in INTS.items():
            c.node(op, name, [np.resize(x, (3, 6))], axis=(1,))  # int sums/products wrap
    for op in ["sum", "prod", "mean", "logsumexp"]:
        c.node(op, "empty-axis", [np.zeros((0, 3), np.float32)], axis=(0,))
    c.node("sum", "i32-empty", [np.zeros((2, 0), np.int32)], axis=(1,))
    c.node("logsumexp", "all-neg-inf", [np.full((2, 3), -np.inf, np.float32)], axis=(1,))
    c.node("logsumexp", "large", [np.array([[1000.0, 1000.0], [-1000.0, -999.0]], np.float32)], axis=(1,))
    bools = np.array([[True, False, True], [True, True, True], [False, False, False]])
    for op in ["any", "all"]:
        c.node(op, "axis1", [bools], axis=(1,))
        c.node(op, "all-axes-keep", [bools], keepdims=True)
        c.node(op, "empty-axis", [np.zeros((0, 2), bool)], axis=(0,))
    ties = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [-5, 7, -5, 7]])
    with_nan = np.array([[1.0, np.nan, 5.0, np.nan], [1.0, -np.inf, np.inf, 0.0], [-0.0, 0.0, 0.0, -0.0]])
    for op in ["argmax", "argmin"]:
        for name, dt in [("i32", np.int32), ("i64", np.int64)]:
            c.node(op, f"{name}-ties", [ties.astype(dt)], axis=1)
        c.node(op, "u32", [np.resize(U32, (3, 3))], axis=1)
        c.node(op, "f32-nan-ties", [with_nan.astype(np.float32)], axis=1)
        c.node(op, "f64-nan-ties", [with_nan], axis=1)
        c.node(op, "f16-nan-ties", [with_nan.astype(F16)], axis=1)
        c.node(op, "bf16-nan-ties", [with_nan.astype(BF16)], axis=1)
        c.node(op, "f32-axis0-keep", [normal(3, 4)], axis=0, keepdims=True)
        c.node(op, "size1", [normal(2, 1)], axis=1)
    for name, x in INTS.items():
        c.node("cumulative_sum", name, [np.resize(x, (2, 9))], axis=1)  # wraps
    c.node("cumulative_sum", "f32-axis0", [normal(3, 4)], axis=0)
    c.node("cumulative_sum", "f32-special", [special(np.float32)], axis=1)
    c.node("cumulative_sum", "f64", [normal(2, 5, dtype=np.float64)], axis=1)
    c.node("cumulative_sum", "f16", [normal(2, 6, dtype=F16)], axis=1)
    c.node("cumulative_sum", "bf16", [normal(2, 6, dtype=BF16)], axis=1)
    c.node("cumulative_sum", "size0", [np.zeros((2, 0), np.float32)], axis=1)


def linalg_cases(c: Cases) -> None:
    c.node("matmul", "2d", [normal(2, 3), normal(3, 4)])
    c.node("matmul", "vec-mat", [normal(3), normal(3, 4)])
    c.node("matmul", "mat-vec", [normal(2, 3), normal(3)])
    c.node("matmul", "vec-vec", [normal(5), normal(5)])
    c.node("matmul", "batch-broadcast", [normal(2, 1, 2, 3), normal(5, 3, 2)])
    c.node("matmul", "contract-size0", [normal(2, 0), normal(0, 3)])
    c.node("matmul", "batch-size0", [normal(0, 2, 3), normal(3, 2)])
    c.node("matmul", "f64", [normal(2, 3, dtype=np.float64), normal(3, 2, dtype=np.float64)])
    c.node("matmul", "f16", [normal(2, 8, dtype=F16), normal(8, 3, dtype=F16)])
    c.node("matmul", "bf16", [normal(2, 8, dtype=BF16), normal(8, 3, dtype=BF16)])
    c.node("matmul", "f32-special", [special(np.float32), np.eye(4, dtype=np.float32)])
    c.node(
        "matmul",
        "i64",
        [np.arange(6, dtype=np.int64).reshape(2, 3) - 2, np.arange(6, dtype=np.int64).reshape(3, 2)],
    )
    c.node("matmul", "i32", [np.array([[1, -2, 3]], np.int32), np.array([[4], [5], [-6]], np.int32)])
    c.node("einsum", "batched-qk", [normal(2, 3, 4), normal(2, 5, 4)], subscripts="bid,bjd->bij")
    c.node("einsum", "sum-all", [normal(3)], subscripts="i->")
    c.node("einsum", "transpose", [normal(2, 3)], subscripts="ij->ji")
    c.node("einsum", "outer", [normal(3), normal(2)], subscripts="i,j->ij")
    c.node("einsum", "three-operands", [normal(2, 3), normal(3, 4), normal(4)], subscripts="ij,jk,k->i")
    c.node("einsum", "broadcast-size1", [normal(1, 3, 4), normal(2, 4)], subscripts="bij,bj->bi")
    c.node(
        "einsum", "attention-values", [normal(1, 2, 1, 5), normal(1, 2, 5, 3)], subscripts="bhqk,bhkd->bhqd"
    )
    c.node(
        "einsum",
        "i64",
        [np.arange(6, dtype=np.int64).reshape(2, 3), np.arange(3, dtype=np.int64)],
        subscripts="ij,j->i",
    )
    c.node("einsum", "f16", [normal(2, 4, dtype=F16), normal(4, 3, dtype=F16)], subscripts="ij,jk->ik")


# ------------------------------------------------------------------ creation, shapes, indexing


def creation_cases(c: Cases) -> None:
    c.node("full", "i32", [], shape=(2, 3), fill_value=7, dtype="int32")
    c.node("full", "u32-minus-one", [], shape=(2,), fill_value=-1, dtype="uint32")
    c.node("full", "i32-wraps", [], shape=(2,), fill_value=2**32 + 5, dtype="int32")
    c.node("full", "f32-nan", [], shape=(2,), fill_value=float("nan"), dtype="float32")
    c.node("full", "f16-inf", [], shape=(1, 2), fill_value=float("-inf"), dtype="float16")
    c.node("full", "bf16", [], shape=(3,), fill_value=0.1, dtype="bfloat16")
    c.node("full", "bool", [], shape=(2, 2), fill_value=True, dtype="bool")
    c.node("full", "f64-scalar", [], shape=(), fill_value=0.1, dtype="float64")
    c.node("full", "size0", [], shape=(0, 3), fill_value=1.5, dtype="float32")
    c.node("arange", "step3", [], start=2, stop=9, step=3, dtype="int64")
    c.node("arange", "negative-step", [], start=5, stop=0, step=-2, dtype="int32")
    c.node("arange", "u32", [], stop=4, dtype="uint32")
    c.node("arange", "f32", [], stop=3, dtype="float32")
    c.node("arange", "f64", [], start=-2, stop=3, dtype="float64")
    c.node("arange", "empty", [], start=4, stop=2, dtype="int64")


def shape_cases(c: Cases) -> None:
    x = normal(2, 3, 4)
    c.node("reshape", "merge", [x], shape=(6, 4))
    c.node("reshape", "scalar-to-1", [np.array(2.5, np.float32)], shape=(1,))
    c.node("reshape", "1-to-scalar", [np.array([3], np.int64)], shape=())
    c.node("reshape", "size0", [np.zeros((0, 4), np.float32)], shape=(2, 0, 2))
    c.node("reshape", "u32", [U32], shape=(3, 3))
    c.node("permute_dims", "3d", [x], axes=(2, 0, 1))
    c.node("permute_dims", "bool", [normal(2, 3) > 0], axes=(1, 0))
    c.node("permute_dims", "size0", [np.zeros((2, 0, 3), np.int32)], axes=(1, 2, 0))
    c.node("expand_dims", "last", [x], axis=3)
    c.node("expand_dims", "negative", [x], axis=-1)  # expand_dims documents negative axes
    c.node("expand_dims", "scalar", [np.array(1.5, F16)], axis=0)
    c.node("squeeze", "two-axes", [normal(1, 3, 1)], axis=(0, 2))
    c.node("squeeze", "to-scalar", [np.array([[7]], np.int64)], axis=(0, 1))
    c.node("broadcast_to", "3d", [normal(3, 1)], shape=(2, 3, 4))
    c.node("broadcast_to", "scalar", [np.array(True)], shape=(2, 2))
    c.node("broadcast_to", "size0", [normal(1, 3)], shape=(0, 3))
    c.node("concat", "axis0", [normal(2, 3), normal(1, 3)], axis=0)
    c.node("concat", "axis1-three", [normal(2, 1), normal(2, 0), normal(2, 2)], axis=1)
    c.node("concat", "i64", [I64[:3], I64[3:]], axis=0)
    c.node("concat", "bool", [BOOLS, BOOLS], axis=0)
    c.node("concat", "single", [normal(2)], axis=0)
    c.node("stack", "axis2", [normal(2, 3), normal(2, 3)], axis=2)
    c.node("stack", "axis0-u32", [U32[:4], U32[4:8], U32[:4]], axis=0)
    c.node("stack", "scalars", [np.array(1.0, np.float32), np.array(2.0, np.float32)], axis=0)
    c.node("flip", "axes02", [x], axis=(0, 2))
    c.node("flip", "all", [x])
    c.node("flip", "scalar", [np.array(4, np.int32)])
    c.node("repeat", "axis1", [x], repeats=2, axis=1)
    c.node("repeat", "flat", [x], repeats=2)
    c.node("repeat", "zero", [normal(2, 3)], repeats=0, axis=0)
    c.node("tile", "pad-rank", [normal(2, 3)], reps=(2, 1, 2))
    c.node("tile", "short-reps", [normal(2, 3)], reps=(3,))
    c.node("tile", "zero-rep", [I32], reps=(0,))
    c.node("slice", "step3", [np.arange(10, dtype=np.int64)], starts=(1,), stops=(8,), steps=(3,))
    c.node("slice", "3d", [x], starts=(0, 1, 0), stops=(2, 3, 4), steps=(1, 1, 2))
    c.node("slice", "empty", [x], starts=(1, 2, 0), stops=(1, 3, 4), steps=(1, 1, 1))


def indexing_cases(c: Cases) -> None:
    m = np.arange(12, dtype=np.int64).reshape(3, 4)
    i64, i32 = np.int64, np.int32
    c.node("dynamic_slice", "inside", [m, np.array(1, i64), np.array(2, i64)], sizes=(2, 2))
    c.node("dynamic_slice", "clamped", [m, np.array(5, i64), np.array(-3, i64)], sizes=(2, 2))
    c.node("dynamic_slice", "i32-starts", [normal(3, 4), np.array(-1, i32), np.array(3, i32)], sizes=(3, 1))
    c.node("dynamic_slice", "size0", [normal(3, 4), np.array(2, i64), np.array(9, i64)], sizes=(0, 2))
    c.node("dynamic_slice", "full", [U32[:4], np.array(3, i64)], sizes=(4,))
    c.node(
        "dynamic_update_slice", "clamped", [m, np.array([[-1, -2]], i64), np.array(2, i32), np.array(3, i32)]
    )
    c.node(
        "dynamic_update_slice",
        "cache-step",
        [normal(2, 5, 3), normal(2, 1, 3), np.array(0, i64), np.array(9, i64), np.array(0, i64)],
    )
    c.node(
        "dynamic_update_slice",
        "negative-start",
        [normal(3, 3), normal(2, 2), np.array(-4, i64), np.array(1, i64)],
    )
    c.node(
        "dynamic_update_slice",
        "bool",
        [np.zeros((2, 3), bool), np.ones((1, 2), bool), np.array(1, i64), np.array(1, i64)],
    )
    c.node(
        "dynamic_update_slice",
        "f16-full",
        [normal(2, 2, dtype=F16), normal(2, 2, dtype=F16), np.array(1, i64), np.array(0, i64)],
    )
    c.node("take", "axis1-repeats", [normal(2, 5), np.array([4, 0, 0], i64)], axis=1)
    c.node("take", "2d-indices-i32", [normal(3, 2), np.array([[1], [0]], i32)], axis=0)
    c.node("take", "scalar-index", [normal(3, 4), np.array(2, i64)], axis=1)
    c.node("take", "empty-indices", [normal(3, 4), np.zeros((0,), i64)], axis=0)
    c.node("take", "u32-rows", [U32.reshape(3, 3), np.array([2, 2, 0], i64)], axis=0)
    c.node("take", "bf16-embedding", [normal(5, 4, dtype=BF16), np.array([[4, 1], [0, 0]], i64)], axis=0)
    c.node("take_along_axis", "axis1", [normal(2, 5), np.array([[4], [1]], i64)], axis=1)
    c.node("take_along_axis", "axis0-repeats-i32", [normal(3, 2), np.array([[2, 0], [2, 2]], i32)], axis=0)
    c.node(
        "take_along_axis",
        "i64-values",
        [np.resize(I64, (2, 4)), np.array([[3, 0, 0], [1, 2, 3]], i64)],
        axis=1,
    )
    c.node("put_along_axis", "axis1", [normal(2, 5), np.array([[4], [1]], i64), normal(2, 1)], axis=1)
    c.node(
        "put_along_axis",
        "axis0-i32",
        [np.zeros((3, 2), np.int32), np.array([[2, 0]], i32), np.array([[7, -8]], np.int32)],
        axis=0,
    )
    c.node(
        "put_along_axis",
        "equal-duplicates",
        [normal(2, 4), np.array([[1, 1], [3, 0]], i64), np.array([[5.0, 5.0], [1.0, 2.0]], np.float32)],
        axis=1,
    )


def sort_cases(c: Cases) -> None:
    # ties (incl. -0.0 == 0.0), nan (largest), infinities: stable in both directions
    ties = np.array([[3.0, 1.0, np.nan, 3.0, -np.inf, 1.0, np.nan], [0.0, -0.0, 0.0, 1.0, 1.0, np.inf, -0.0]])
    for op in ["sort", "argsort"]:
        for desc in (False, True):
            d = "desc" if desc else "asc"
            c.node(op, f"f32-ties-{d}", [ties.astype(np.float32)], axis=1, descending=desc)
            c.node(op, f"f64-ties-{d}", [ties], axis=1, descending=desc)
            c.node(
                op,
                f"i64-extremes-{d}",
                [np.array([5, 5, -(2**63), 2**63 - 1, 0, 5], np.int64)],
                axis=0,
                descending=desc,
            )
            c.node(op, f"u32-{d}", [np.resize(U32, (2, 9))], axis=1, descending=desc)
        c.node(op, "i32-axis0", [np.array([[2, 1], [2, 0], [-(2**31), 1]], np.int32)], axis=0)
        c.node(op, "f16-ties", [ties.astype(F16)], axis=1, descending=True)
        c.node(op, "bf16-ties", [ties.astype(BF16)], axis=1)
        c.node(op, "f32-axis0", [normal(3, 4)], axis=0)
        c.node(op, "size0", [np.zeros((2, 0), np.float32)], axis=1)
        c.node(op, "size1", [normal(3, 1)], axis=1)
    c.node("top_k", "f32-ties-nan", [ties.astype(np.float32)], k=3)
    c.node("top_k", "f64-all", [ties], k=7)
    c.node("top_k", "k0", [normal(2, 4)], k=0)
    c.node(
        "top_k", "i64-ties", [np.array([[1, 5, 5, 2], [-(2**63), 2**63 - 1, 0, 2**63 - 1]], np.int64)], k=2
    )
    c.node("top_k", "i32", [np.resize(I32, (2, 9))], k=4)
    c.node("top_k", "u32", [np.resize(U32, (1, 9))], k=3)
    c.node("top_k", "f16", [ties.astype(F16)], k=2)
    c.node("top_k", "bf16", [ties.astype(BF16)], k=4)
    c.node("top_k", "rank3", [normal(2, 3, 5)], k=2)
    c.node("top_k", "rank1", [normal(6)], k=6)


def nn_cases(c: Cases) -> None:
    rows = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [np.nan, 0.0, 1.0], [1e4, -1e4, 0.0]])
    for op in ["softmax", "log_softmax"]:
        c.node(op, "f32-axis1", [normal(3, 4)], axis=1)
        c.node(op, "f32-axis0", [normal(3, 4)], axis=0)
        c.node(op, "f32-inf-nan-rows", [rows.astype(np.float32)], axis=1)
        c.node(op, "f64", [rows], axis=1)
        c.node(op, "f16", [rows.astype(F16)], axis=1)
        c.node(op, "bf16", [normal(2, 5, dtype=BF16)], axis=1)
        c.node(op, "size1-axis", [normal(3, 1)], axis=1)
        c.node(op, "size0-rows", [np.zeros((0, 3), np.float32)], axis=1)
    for name, dt in [("f32", np.float32), ("f64", np.float64), ("f16", F16), ("bf16", BF16)]:
        c.node("rms_norm", name, [normal(2, 3, 4, dtype=dt), normal(4, dtype=dt)], eps=1e-6)
        c.node(
            "layer_norm",
            name,
            [normal(2, 3, 4, dtype=dt), normal(4, dtype=dt), normal(4, dtype=dt)],
            eps=1e-5,
        )
    c.node("rms_norm", "zero-row", [np.zeros((1, 4), np.float32), np.ones(4, np.float32)], eps=1e-6)
    c.node(
        "layer_norm",
        "constant-row",
        [np.full((2, 4), 3.0, np.float32), np.ones(4, np.float32), np.zeros(4, np.float32)],
        eps=1e-5,
    )


def vision_cases(c: Cases) -> None:
    """conv / max_pool / avg_pool / resize: groups and depthwise, stride + dilation + asymmetric
    pads, 1-d and 2-d, every float dtype; resize up and down in both modes."""
    win = {"strides": (2, 1), "pads": (1, 0, 2, 1), "dilations": (2, 1)}
    c.node(
        "conv",
        "groups-stride-dilation-pads",
        [normal(2, 4, 7, 6), normal(6, 2, 3, 2), normal(6)],
        groups=2,
        **win,
    )
    c.node(
        "conv",
        "depthwise",
        [normal(1, 3, 5, 5), normal(3, 1, 3, 3)],
        strides=(1, 1),
        pads=(1, 1, 1, 1),
        dilations=(1, 1),
        groups=3,
    )
    patch = {"strides": (4, 4), "pads": (0, 0, 0, 0), "dilations": (1, 1)}
    c.node("conv", "patches", [normal(2, 3, 8, 8), normal(5, 3, 4, 4), normal(5)], **patch)
    one = {"strides": (2,), "pads": (1, 2), "dilations": (2,)}
    c.node("conv", "1d", [normal(2, 3, 9), normal(4, 3, 3), normal(4)], **one)
    c.node(
        "conv",
        "1d-size1-kernel",
        [normal(1, 2, 4), normal(2, 2, 1)],
        strides=(1,),
        pads=(0, 0),
        dilations=(1,),
    )
    for name, dt in [("f64", np.float64), ("f16", F16), ("bf16", BF16)]:
        c.node(
            "conv",
            name,
            [normal(2, 4, 5, 4, dtype=dt), normal(2, 2, 3, 2, dtype=dt), normal(2, dtype=dt)],
            groups=2,
            **win,
        )
    for name, dt in [("f32", np.float32), ("f64", np.float64), ("f16", F16), ("bf16", BF16)]:
        x = normal(2, 3, 7, 6, dtype=dt)
        c.node("max_pool", name, [x], kernel=(3, 2), strides=(2, 2), pads=(1, 0, 1, 1))
        for inc in (True, False):
            c.node(
                "avg_pool",
                f"{name}-include-pad-{inc}",
                [x],
                kernel=(3, 3),
                strides=(2, 1),
                pads=(1, 2, 0, 1),
                count_include_pad=inc,
            )
        for mode in ("nearest", "linear"):
            c.node("resize", f"{name}-{mode}-up", [x], sizes=(14, 9), mode=mode)
            c.node("resize", f"{name}-{mode}-down", [x], sizes=(3, 4), mode=mode)
    x1 = normal(2, 3, 9)
    c.node("max_pool", "1d", [x1], kernel=(2,), strides=(2,), pads=(1, 0))
    c.node("avg_pool", "1d", [x1], kernel=(3,), strides=(3,), pads=(0, 2))
    c.node(
        "max_pool",
        "inf",
        [np.array([[[-np.inf, 1.0, np.inf, -2.0]]], np.float32)],
        kernel=(2,),
        strides=(1,),
        pads=(1, 1),
    )
    for mode in ("nearest", "linear"):
        c.node("resize", f"1d-{mode}", [x1], sizes=(18,), mode=mode)
        c.node("resize", f"1d-{mode}-same", [x1], sizes=(9,), mode=mode)

    def pipeline(x, w):  # symbolic batch: patches, a pool, a resize
        h = xp.conv(x, w, strides=2, pads=(1, 1, 0, 0))
        return xp.resize(
            xp.avg_pool(xp.max_pool(h, (2, 2), pads=(1, 1, 0, 0)), (2, 2), strides=1), (6, 4), mode="linear"
        )

    c.traced(
        "vision-symbolic-batch",
        pipeline,
        [TensorSpec(("n", 3, 8, 8), DType.float32), TensorSpec((4, 3, 2, 2), DType.float32)],
        [[normal(1, 3, 8, 8), normal(4, 3, 2, 2)], [normal(3, 3, 8, 8), normal(4, 3, 2, 2)]],
    )


# ------------------------------------------------------------------ traced programs


def negative_axes_cases(c: Cases) -> None:
    """Negative axes and indices as users write them; the tracer normalises them."""

    def fn(x, idx):
        return (
            xp.sum(x, axis=-1),
            xp.argmax(x, axis=-2),
            xp.softmax(x, axis=-2),
            xp.concat([x, x], axis=-1),
            xp.flip(x, axis=-1),
            xp.take(x, idx, axis=-1),
            xp.sort(x, axis=-2, descending=True),
            xp.cumulative_sum(x, axis=-1),
            x[..., -1],
            x[-2:, ::-1],
            xp.stack([x, x], axis=-1),
            xp.squeeze(x[:, -1:], axis=-1),
            xp.max(x, axis=(-1, -2), keepdims=True),
            xp.take_along_axis(x, xp.argsort(x, axis=-1), axis=-1),
            xp.repeat(x, 2, axis=-1),
        )

    x = normal(3, 4)
    c.traced(
        "negative-axes",
        fn,
        [TensorSpec((3, 4), "float32"), TensorSpec((2,), "int64")],
        [[x, np.array([3, 0], np.int64)]],
    )


def symbolic_cases(c: Cases) -> None:
    """Inputs with symbolic dims, each program run at several concrete sizes (size 0 included)."""

    def attention_like(x, past):
        b, s, h = x.shape
        y = xp.reshape(x, (b, s, 2, h // 2))
        kv = xp.concat([past, xp.permute_dims(y, (0, 2, 1, 3))], axis=2)
        mask = xp.arange(kv.shape[2])[None, :] < xp.full((b, 1), 2, dtype=xp.int64)
        return kv, xp.where(mask, 1.0, 0.0), xp.ones((b, kv.shape[2]), dtype=xp.int32), x[:, -1:, ::2]

    c.traced(
        "symbolic-attention",
        attention_like,
        [
            TensorSpec(("batch", "seq", 4), "float32", "x"),
            TensorSpec(("batch", 2, "past", 2), "float32", "past"),
        ],
        [[normal(b, s, 4), normal(b, 2, p, 2)] for b, s, p in [(1, 3, 0), (2, 1, 4), (3, 2, 1)]],
    )

    def dyn(x, pos):
        upd = xp.dynamic_update_slice(x, xp.ones((x.shape[0], 1), dtype=x.dtype), [0, pos])
        return (
            upd,
            xp.dynamic_slice(x, [0, pos], (x.shape[0], 2)),
            xp.tile(x, (1, 2)),
            xp.repeat(x, 2, axis=0),
        )

    c.traced(
        "symbolic-dynamic",
        dyn,
        [TensorSpec(("rows", "cols"), "float32"), TensorSpec((), "int64")],
        [[normal(r, cl), np.array(p)] for r, cl, p in [(2, 5, 1), (3, 4, 9), (1, 2, -3)]],
    )

    def reduce_and_select(x, w):
        logits = x @ w  # [batch, vocab]
        values, idx = xp.top_k(logits, 2)
        return (
            xp.softmax(logits, axis=-1),
            xp.sum(x, axis=0),
            xp.argmax(logits, axis=-1),
            values,
            idx,
            xp.broadcast_to(w[None], (x.shape[0],) + tuple(w.shape)),
            xp.mean(x, axis=-1),
            xp.arange(1, x.shape[0] + 1),
            xp.full((x.shape[0], 2), -1, dtype=xp.uint32),
        )

    c.traced(
        "symbolic-reduce",
        reduce_and_select,
        [TensorSpec(("batch", "hidden"), "float32"), TensorSpec(("hidden", "vocab"), "float32")],
        [[normal(b, h), normal(h, v)] for b, h, v in [(2, 3, 5), (1, 1, 2), (0, 2, 3)]],
    )

    def past_plus_seq(ids, mask):
        positions = xp.cumulative_sum(mask, axis=-1) - 1
        return positions[:, -ids.shape[1] :], xp.sum(mask, axis=-1), xp.astype(mask, xp.bool)

    c.traced(
        "symbolic-compound-dim",
        past_plus_seq,
        [TensorSpec(("batch", "seq"), "int64"), TensorSpec(("batch", "past + seq"), "int64")],
        [[np.zeros((b, s), np.int64), np.ones((b, p + s), np.int64)] for b, s, p in [(2, 1, 3), (1, 4, 0)]],
    )


def control_cases(c: Cases) -> None:
    def loop(x, n):
        def body(i, acc):
            return xp.cond(i % 2 == 0, lambda a: a + x, lambda a: a * 1.5, acc)

        total = xp.fori_loop(0, n, body, xp.zeros_like(x))
        k, v = xp.while_loop(
            lambda s: s[1] < 50.0, lambda s: (s[0] + 1, s[1] * 2.0 + 1.0), (0, xp.sum(xp.abs(x)))
        )
        return total, k, v

    c.traced(
        "control-loop-cond",
        loop,
        [TensorSpec(("n",), "float32"), TensorSpec((), "int64")],
        [
            [np.array([1.0, -2.0, 0.5], np.float32), np.array(5)],
            [np.array([30.0, 40.0], np.float32), np.array(0)],
        ],
    )

    def mixed_state(bits, flag, h):
        """A loop carrying uint32, bool and float16 state, with a nested loop and a top-level cond."""

        def outer(s):
            i, b, f, acc = s
            inner = xp.while_loop(
                lambda t: t[0] < 3, lambda t: (t[0] + 1, t[1] * xp.asarray(3, dtype=xp.uint32)), (0, b)
            )[1]
            return i + 1, inner ^ (b >> 3), xp.logical_not(f), acc + xp.astype(f, xp.float16) * h

        i, b, f, acc = xp.while_loop(lambda s: s[0] < 4, outer, (0, bits, flag, xp.zeros_like(h)))
        picked = xp.cond(f, lambda a, q: (a * 2.0, q + 1), lambda a, q: (a - 1.0, q - 1), acc, b)
        return b, f, acc, picked[0], picked[1]

    c.traced(
        "control-mixed-state",
        mixed_state,
        [TensorSpec((3,), "uint32"), TensorSpec((), "bool"), TensorSpec((2,), "float16")],
        [
            [U32[-3:], np.array(True), np.array([0.5, -1.25], F16)],
            [U32[:3], np.array(False), np.array([2.0, 3.0], F16)],
        ],
    )


def rng_cases(c: Cases) -> None:
    from tensorweave.ir import random

    def draws(key, logits):
        k1, k2 = random.split(key)[0], random.split(key)[1]
        return (
            random.random_bits(k1, (3, 5)),
            random.uniform(k2, (4,)),
            random.categorical(k1, logits),
            random.fold_in(key, 3),
            random.gumbel(k2, (2, 3)),
            random.split(key, 3),
            random.normal(k1, (2, 2)),
            random.random_bits(k2, logits.shape),
        )

    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.2, 0.1, 0.1]] * 5, np.float32))
    # one shape for both keys: the program compiles once (the symbolic batch is test_random's business)
    c.traced(
        "rng-threefry",
        draws,
        [TensorSpec((2,), "uint32"), TensorSpec(("batch", 6), "float32")],
        [[random.key(2026), logits], [random.key(2**64 - 1), logits]],
    )


def words(rows: int, blocks: int, n: int) -> np.ndarray:
    """Random packed codes: uint32 words over the full range (every nibble / byte value occurs)."""
    return _rng.integers(0, 2**32, (rows, blocks, n), dtype=np.uint64).astype(np.uint32)


def quant_cases(c: Cases) -> None:
    """Block-quantized weights (GGUF Q4_0 / Q4_1 / Q8_0 layouts) as graph inputs: the backends'
    generic dequantise + matmul paths. ONNX Runtime's MatMulNBits (constant weights) is checked in
    tests/test_quantized.py with its own tolerance (it quantises the activations)."""
    s4, o4 = normal(3, 2, scale=0.1), normal(3, 2, scale=0.1)
    zero = np.zeros((3, 2), np.float32)
    c.node("dequantize_blocks", "q4_1", [words(3, 2, 4), s4, o4], bits=4)
    c.node("dequantize_blocks", "q4_0", [words(3, 2, 4), s4, zero], bits=4, zero_point=8)
    c.node("dequantize_blocks", "q8_0", [words(3, 2, 8), s4, zero], bits=8, zero_point=128)
    c.node(
        "dequantize_blocks", "q4-block16", [words(2, 3, 2), normal(2, 3), normal(2, 3)], bits=4, zero_point=3
    )
    c.node("quantized_matmul", "q4_1-2d", [normal(2, 64), words(3, 2, 4), s4, o4], bits=4)
    c.node("quantized_matmul", "q4_0-3d", [normal(2, 3, 64), words(3, 2, 4), s4, zero], bits=4, zero_point=8)
    c.node("quantized_matmul", "q8_0-1d", [normal(64), words(3, 2, 8), s4, zero], bits=8, zero_point=128)
    c.node("quantized_matmul", "q8-rows0", [normal(0, 64), words(3, 2, 8), s4, o4], bits=8)


FAMILIES = [
    unary_cases,
    binary_cases,
    where_clip_astype_cases,
    reduction_cases,
    linalg_cases,
    creation_cases,
    shape_cases,
    indexing_cases,
    sort_cases,
    nn_cases,
    vision_cases,
    negative_axes_cases,
    symbolic_cases,
    control_cases,
    rng_cases,
    quant_cases,
]

_CACHE: list[Case] = []


def all_cases() -> list[Case]:
    """Every parity case, built once per process."""
    if not _CACHE:
        c = Cases()
        for family in FAMILIES:
            family(c)
        _CACHE.extend(c.items)
    return list(_CACHE)


def ops_covered() -> set[str]:
    return {n.op for case in all_cases() for n in case.graph.walk()}
