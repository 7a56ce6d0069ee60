"""The PyTorch backend: a graph becomes generated Python source over torch ops.

``lower(graph)`` writes one Python statement per node, ``exec``s the source once and wraps
the resulting function in a :class:`TorchProgram` (see ``TorchProgram.source``). A call runs
that function: there is no per-op interpretation. Each op's code is chosen at lowering time
for the dtypes of the node, so the generated line is the plain torch call whenever torch
already has the reference semantics.

Two flavours of the same graph are generated (spec/backends-torch.md):

- **eager** (what a call runs): ``while_loop`` / ``cond`` are Python ``while`` / ``if`` over
  nested generated functions; dynamic slice starts are read as Python ints.
- **export** (what ``TorchProgram.export`` traces with ``torch.export``): control flow becomes
  ``torch._higher_order_ops.while_loop`` / ``torch.cond``, dynamic slices use index tensors (no
  data-dependent Python), and uint32 is converted at the program boundary inside the graph.

Semantics that need care:

- **uint32** is carried as int64 holding values in [0, 2**32): PyTorch's CPU ``torch.uint32``
  lacks ``+`` and ``>>``. Results that can leave the range are reduced with ``& 0xFFFFFFFF``;
  products use 16-bit halves so that no int64 product overflows (``_mul_u32``).
- **float16/bfloat16** math that the reference computes in float32 is computed in float32 and
  rounded back; float64 -> float16 rounds once (round-to-odd through float32).
- **sort/argsort/top_k** are one stable ``torch.sort`` (``torch.topk`` does not promise the
  lower index first on ties); torch already sorts nan as the largest value.
- **softmax/log_softmax** follow the reference formula with ``m = max(x)`` (0 where infinite).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..ir.graph import Graph, Node, Value
from ..ir.ops import OPS
from ..ir.types import DType, IRError, SymDim, TensorSpec
from .base import Program, symbol_plan

NAME = "torch"
MASK32 = 0xFFFFFFFF

#: How each IR dtype is carried inside a lowered program (uint32 as int64, see the module doc).
TORCH_DTYPES = {
    DType.bool: torch.bool,
    DType.int32: torch.int32,
    DType.int64: torch.int64,
    DType.uint32: torch.int64,
    DType.float16: torch.float16,
    DType.bfloat16: torch.bfloat16,
    DType.float32: torch.float32,
    DType.float64: torch.float64,
}
#: The IR dtype of a native torch tensor (torch.uint32 is accepted at the boundary).
FROM_TORCH = {
    torch.bool: DType.bool,
    torch.int32: DType.int32,
    torch.int64: DType.int64,
    torch.uint32: DType.uint32,
    torch.float16: DType.float16,
    torch.bfloat16: DType.bfloat16,
    torch.float32: DType.float32,
    torch.float64: DType.float64,
}
LOW = (DType.float16, DType.bfloat16)


# ============================================================================ runtime helpers
# Functions the generated code calls where one torch call does not give the reference semantics.


def _gelu(x: Any, approximate: str) -> Any:
    """gelu with the IR's values at the infinities (+inf -> +inf, -inf -> nan) on every CPU."""
    y = torch.nn.functional.gelu(x, approximate=approximate)
    return torch.where(torch.isinf(x), torch.where(x > 0, x, torch.nan), y)


def _mul_u32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(a * b) mod 2**32 for int64 tensors holding [0, 2**32), with no int64 overflow:
    a*b = a*lo + 2**16 * a*hi (b = lo + 2**16 hi); a*lo < 2**48 and only the low 16 bits of a*hi
    survive the shift, so every intermediate stays below 2**49."""
    return (a * (b & 0xFFFF) + (((a * (b >> 16)) & 0xFFFF) << 16)) & MASK32


def _pow_u32(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x ** y mod 2**32 by square-and-multiply over the 32 exponent bits (exact)."""
    result = torch.ones(torch.broadcast_shapes(x.shape, y.shape), dtype=torch.int64)
    base, e = x, y
    for _ in range(32):
        result = torch.where((e & 1) == 1, _mul_u32(result, base), result)
        base = _mul_u32(base, base)
        e = e >> 1
    return result


def _prod_u32(x: torch.Tensor, axes: tuple, keepdims: bool) -> torch.Tensor:
    """Product mod 2**32 over ``axes``: the reduced axes are flattened and halved pairwise."""
    keep = [i for i in range(x.dim()) if i not in axes]
    n = 1
    for a in axes:
        n = n * x.shape[a]
    y = x.permute(keep + list(axes)).reshape([x.shape[i] for i in keep] + [n])
    while y.shape[-1] > 1:
        if y.shape[-1] % 2:
            y = torch.cat([y, torch.ones_like(y[..., :1])], dim=-1)
        half = y.shape[-1] // 2
        y = _mul_u32(y[..., :half], y[..., half:])
    y = (
        y.reshape([x.shape[i] for i in keep])
        if n
        else torch.ones([x.shape[i] for i in keep], dtype=torch.int64)
    )
    if keepdims:
        y = y.reshape([1 if i in axes else x.shape[i] for i in range(x.dim())])
    return y


def _matmul_u32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b mod 2**32, splitting b into 16-bit halves (exact while the contracted size < 2**15)."""
    return (torch.matmul(a, b & 0xFFFF) + ((torch.matmul(a, b >> 16) & 0xFFFF) << 16)) & MASK32


def _einsum_u32(subscripts: str, *xs: torch.Tensor) -> torch.Tensor:
    """einsum mod 2**32: with x = lo + 2**16 hi, the product of the operands is
    prod(lo) + 2**16 * sum_i hi_i * prod_{j != i} lo_j (mod 2**32); exact while every partial sum
    stays below 2**63 (two operands: contracted size < 2**31; three: < 2**15)."""
    if len(xs) == 1:
        return torch.einsum(subscripts, xs[0]) & MASK32
    los = [x & 0xFFFF for x in xs]
    low = torch.einsum(subscripts, *los)
    mid = sum(
        torch.einsum(subscripts, *[(x >> 16) if j == i else lo for j, (x, lo) in enumerate(zip(xs, los))])
        for i in range(len(xs))
    )
    return (low + ((mid & 0xFFFF) << 16)) & MASK32


def _nonzero(y: torch.Tensor) -> torch.Tensor:
    """Integer divisor with 0 replaced by 1 (the reference's choice for the unspecified case)."""
    return torch.where(y == 0, torch.ones_like(y), y)


def _sign_f(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(nan) = nan (torch.sign gives 0)."""
    return torch.where(torch.isnan(x), x, torch.sign(x))


def _wrap_i32(x: torch.Tensor) -> torch.Tensor:
    """int64 -> int32 modulo 2**32 (two's complement), without relying on a narrowing cast."""
    return (((x + 2**31) & MASK32) - 2**31).to(torch.int32)


def _float_to_int(x: torch.Tensor, dst: torch.dtype) -> torch.Tensor:
    """Truncate toward zero; nan/inf -> 0; clip to the target range (the reference's choices)."""
    t = torch.trunc(x.double()).nan_to_num(0.0, 0.0, 0.0)
    info = torch.iinfo(dst)
    return t.clamp(info.min, info.max).to(dst)


def _float_to_u32(x: torch.Tensor) -> torch.Tensor:
    """Truncate toward zero, nan/inf -> 0, then wrap modulo 2**32 (exact fmod in float64)."""
    t = torch.trunc(x.double()).nan_to_num(0.0, 0.0, 0.0)
    return torch.remainder(t, 2.0**32).to(torch.int64)


def _f64_to_f16(x: torch.Tensor) -> torch.Tensor:
    """float64 -> float16 rounded once. torch converts through float32 (two roundings); rounding
    to float32 *to odd* first (truncate, set the last bit when inexact) makes the second rounding
    give the correctly rounded float16."""
    y = x.float()
    yd = y.double()
    inexact = yd != x
    away = yd.abs() > x.abs()
    y = torch.where(away, torch.nextafter(y, torch.zeros_like(y)), y)
    bits = y.view(torch.int32) | inexact.to(torch.int32)
    return bits.view(torch.float32).to(torch.float16)


def _argext(x: torch.Tensor, axis: int, keepdims: bool, largest: bool) -> torch.Tensor:
    """argmax/argmin of a float tensor: the first index on ties, the first nan wins."""
    nan = torch.isnan(x)
    best = torch.argmax(x, dim=axis, keepdim=True) if largest else torch.argmin(x, dim=axis, keepdim=True)
    first_nan = torch.argmax(nan.to(torch.uint8), dim=axis, keepdim=True)
    out = torch.where(nan.any(dim=axis, keepdim=True), first_nan, best)
    return out if keepdims else out.squeeze(axis)


def _softmax(v: torch.Tensor, axis: int) -> torch.Tensor:
    """exp(v - m) / sum(exp(v - m)), m = max(v) replaced by 0 where infinite (the reference)."""
    m = torch.amax(v, dim=axis, keepdim=True)
    e = torch.exp(v - torch.where(torch.isfinite(m), m, torch.zeros_like(m)))
    return e / torch.sum(e, dim=axis, keepdim=True)


def _log_softmax(v: torch.Tensor, axis: int) -> torch.Tensor:
    """s - log(sum(exp(s))) with s = v - m, m as in :func:`_softmax`."""
    m = torch.amax(v, dim=axis, keepdim=True)
    s = v - torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return s - torch.log(torch.sum(torch.exp(s), dim=axis, keepdim=True))


def _mm_nk(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w`` for a ``w [K, N]`` whose memory is ``[N, K]`` row-major (``w = base.t()``), as
    ``(base @ x2^T)^T``: CPU BLAS runs that 2-3x faster than ``x @ base^T`` for a few rows."""
    k, n = w.shape
    out = torch.mm(w.t(), x.reshape(-1, k).t()).t()
    return out.reshape(tuple(x.shape[:-1]) + (n,))


def _top_k(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest along the last axis, descending, ties -> lower index first, nan largest: the
    IR's top_k. torch.topk finds the k-th largest value ``t``; every element ``> t`` is taken and
    the ties ``== t`` in index order until there are k; the k chosen are then sorted stably.
    Rows with nan (and short or empty rows) take the full stable sort."""
    n = x.shape[-1]
    if k == 0 or x.numel() == 0 or k * 8 >= n or (x.is_floating_point() and bool(torch.isnan(x).any())):
        srt = torch.sort(x, dim=-1, descending=True, stable=True)
        return srt.values[..., :k], srt.indices[..., :k]
    lead = tuple(x.shape[:-1])
    flat = x.reshape(-1, n)
    kth = torch.topk(flat, k, dim=-1, sorted=True).values[:, k - 1 : k]
    above = flat > kth
    tied = flat == kth
    need = k - above.sum(-1, keepdim=True)
    take = above | (tied & (torch.cumsum(tied.to(torch.int64), -1) <= need))
    idx = torch.nonzero(take)[:, 1].reshape(-1, k)  # row-major: ascending positions per row
    vals = torch.gather(flat, 1, idx)
    order = torch.sort(vals, dim=-1, descending=True, stable=True).indices
    idx = torch.gather(idx, 1, order)
    return torch.gather(flat, 1, idx).reshape(lead + (k,)), idx.reshape(lead + (k,))


def _take(x: torch.Tensor, idx: torch.Tensor, axis: int) -> torch.Tensor:
    """np.take: out shape x.shape[:axis] + idx.shape + x.shape[axis+1:]."""
    flat = torch.index_select(x, axis, idx.reshape(-1))
    return flat.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1 :]))


def _dslice(x: torch.Tensor, starts: tuple, sizes: tuple) -> torch.Tensor:
    """Eager dynamic_slice: starts read as ints and clamped to [0, dim - size] (XLA); a view."""
    y = x
    for axis, (s, n) in enumerate(zip(starts, sizes)):
        d = x.shape[axis]
        if n != d:
            y = y.narrow(axis, min(max(int(s), 0), d - n), n)
    return y


def _dupdate(x: torch.Tensor, u: torch.Tensor, starts: tuple) -> torch.Tensor:
    """Eager dynamic_update_slice: a copy of x with the clamped window replaced by u."""
    out = x.clone()
    window = tuple(
        slice(c, c + n)
        for c, n in ((min(max(int(s), 0), d - n), n) for s, n, d in zip(starts, u.shape, x.shape))
    )
    out[window] = u
    return out


def _window(starts: tuple, sizes: tuple, shape: tuple) -> list:
    """Export flavour: per axis, the clamped window's index tensor (no data-dependent Python)."""
    rank = len(shape)
    index = []
    for axis, (s, n, d) in enumerate(zip(starts, sizes, shape)):
        start = torch.clamp(s.to(torch.int64), min=0, max=d - n)
        view = [1] * rank
        view[axis] = n
        index.append((start + torch.arange(n)).reshape(view))
    return index


def _dslice_t(x: torch.Tensor, starts: tuple, sizes: tuple) -> torch.Tensor:
    """Export dynamic_slice: gather the clamped window with index tensors."""
    y = x
    for axis, ix in enumerate(_window(starts, sizes, tuple(x.shape))):
        y = torch.index_select(y, axis, ix.reshape(-1))
    return y


def _dupdate_t(x: torch.Tensor, u: torch.Tensor, starts: tuple) -> torch.Tensor:
    """Export dynamic_update_slice: index_put over the clamped window."""
    return torch.index_put(x, tuple(_window(starts, tuple(u.shape), tuple(x.shape))), u)


#: names the generated code may use (helpers above plus modules)
RUNTIME = {
    name: obj
    for name, obj in dict(globals()).items()
    if name.startswith("_") and callable(obj) and getattr(obj, "__module__", None) == __name__
}
RUNTIME.update(torch=torch, math=math, MASK32=MASK32)


# ============================================================================ emitters
# Each emitter gets a Site (one node: input names, dtypes, attributes) and returns Python code.


@dataclass
class Site:
    """One node as an emitter sees it."""

    node: Node
    args: list[str]
    outs: list[str]
    cg: "_Codegen"
    view: bool = False  # set by an emitter whose result may share memory with its first input

    @property
    def export(self) -> bool:
        return self.cg.export

    def const(self, arr: np.ndarray, dt: DType) -> str:
        """Name of a constant tensor created once at lowering."""
        return self.cg.const(arr, dt)

    @property
    def at(self) -> dict:
        return self.node.attrs

    @property
    def in_dt(self) -> DType:
        return self.node.inputs[0].dtype

    @property
    def out_dt(self) -> DType:
        return self.node.outputs[0].dtype

    @property
    def rank(self) -> int:
        return len(self.node.inputs[0].shape)

    def f32(self, template: str) -> str:
        """``template`` over the inputs, in float32 when the inputs are float16/bfloat16."""
        if self.in_dt in LOW:
            return f"({template.format(*[a + '.float()' for a in self.args])}).to({_tdt(self.in_dt)})"
        return template.format(*self.args)

    def axes(self) -> tuple:
        return tuple(range(self.rank)) if self.at["axis"] is None else tuple(self.at["axis"])


def _tdt(dt: DType) -> str:
    return f"torch.{str(TORCH_DTYPES[dt]).split('.')[-1]}"


def _lit(v: Any) -> str:
    """A Python literal for an attribute scalar (nan/inf spelled through math)."""
    if isinstance(v, float):
        if math.isnan(v):
            return "math.nan"
        if math.isinf(v):
            return "math.inf" if v > 0 else "-math.inf"
    return repr(v)


def _py_dim(d: Any) -> str:
    """A Dim as a Python expression over the symbol variables ``s_<name>``."""
    if isinstance(d, int):
        return str(d)
    parts = []
    for monomial, coeff in d.terms:
        factors = [str(coeff)] if (coeff != 1 or not monomial) else []
        factors += [f"s_{s}" for s in monomial]
        parts.append("*".join(factors))
    return "(" + " + ".join(parts) + ")"


def _py_dims(ds: Any) -> str:
    return "(" + "".join(_py_dim(d) + ", " for d in ds) + ")"


def _scalar_as(value: Any, dt: DType) -> Any:
    """``value`` converted to ``dt`` exactly as the reference converts scalars (wrapping ints,
    truncating floats), as the Python number the carried torch dtype holds."""
    arr = np.asarray(OPS["full"].reference((), value, dt))
    if dt is DType.bfloat16:
        return float(arr.astype(np.float32))
    return arr.item()


Emitter = Callable[[Site], str]
EXPR: dict[str, Emitter] = {}


def emits(*ops: str) -> Callable[[Emitter], Emitter]:
    def deco(fn: Emitter) -> Emitter:
        for op in ops:
            EXPR[op] = fn
        return fn

    return deco


# ---------------------------------------------------------------- elementwise
FLOAT_UNARY = {
    "exp": "torch.exp",
    "log": "torch.log",
    "log1p": "torch.log1p",
    "sqrt": "torch.sqrt",
    "rsqrt": "torch.rsqrt",
    "tanh": "torch.tanh",
    "erf": "torch.erf",
    "sin": "torch.sin",
    "cos": "torch.cos",
    "sigmoid": "torch.sigmoid",
    "silu": "torch.nn.functional.silu",
}
PLAIN_UNARY = {
    "floor": "torch.floor",
    "ceil": "torch.ceil",
    "isnan": "torch.isnan",
    "isinf": "torch.isinf",
    "isfinite": "torch.isfinite",
    "logical_not": "torch.logical_not",
}
PLAIN_BINARY = {
    "maximum": "torch.maximum",
    "minimum": "torch.minimum",
    "equal": "torch.eq",
    "not_equal": "torch.ne",
    "less": "torch.lt",
    "less_equal": "torch.le",
    "greater": "torch.gt",
    "greater_equal": "torch.ge",
    "logical_and": "torch.logical_and",
    "logical_or": "torch.logical_or",
    "logical_xor": "torch.logical_xor",
    "bitwise_and": "torch.bitwise_and",
    "bitwise_or": "torch.bitwise_or",
    "bitwise_xor": "torch.bitwise_xor",
}

for _op, _fn in FLOAT_UNARY.items():
    EXPR[_op] = (lambda fn: lambda s: s.f32(fn + "({0})"))(_fn)
for _op, _fn in PLAIN_UNARY.items():
    EXPR[_op] = (lambda fn: lambda s: f"{fn}({s.args[0]})")(_fn)
for _op, _fn in PLAIN_BINARY.items():
    EXPR[_op] = (lambda fn: lambda s: f"{fn}({s.args[0]}, {s.args[1]})")(_fn)


@emits("gelu")
def _e_gelu(s: Site) -> str:
    # The IR's formula at +-inf is +inf / nan (0.5*x*(1+erf) with -inf*0 = nan). PyTorch's CPU
    # kernels for approximate='none' return nan at +inf on some CPUs (seen on AVX-512 machines,
    # every ATEN_CPU_CAPABILITY): the infinities are set explicitly, never left to the kernel.
    return s.f32(f"_gelu({{0}}, {s.at['approximate']!r})")


@emits("abs")
def _e_abs(s: Site) -> str:
    if s.in_dt is DType.uint32:
        s.view = True
        return s.args[0]
    return f"torch.abs({s.args[0]})"


@emits("negative")
def _e_negative(s: Site) -> str:
    return f"(-{s.args[0]}) & MASK32" if s.in_dt is DType.uint32 else f"torch.neg({s.args[0]})"


@emits("sign")
def _e_sign(s: Site) -> str:
    return f"_sign_f({s.args[0]})" if s.in_dt.is_floating else f"torch.sign({s.args[0]})"


@emits("bitwise_invert")
def _e_invert(s: Site) -> str:
    if s.in_dt is DType.uint32:
        return f"{s.args[0]} ^ MASK32"
    return f"torch.bitwise_not({s.args[0]})"


@emits("add", "subtract")
def _e_add_sub(s: Site) -> str:
    sym = "+" if s.node.op == "add" else "-"
    if s.in_dt is DType.uint32:
        return f"({s.args[0]} {sym} {s.args[1]}) & MASK32"
    return f"torch.{'add' if sym == '+' else 'sub'}({s.args[0]}, {s.args[1]})"


@emits("multiply")
def _e_multiply(s: Site) -> str:
    if s.in_dt is DType.uint32:
        return f"_mul_u32({s.args[0]}, {s.args[1]})"
    return f"torch.mul({s.args[0]}, {s.args[1]})"


@emits("divide")
def _e_divide(s: Site) -> str:
    return s.f32("torch.div({0}, {1})")


@emits("floor_divide", "remainder")
def _e_floor_div_rem(s: Site) -> str:
    fn = "torch.floor_divide" if s.node.op == "floor_divide" else "torch.remainder"
    if s.in_dt.is_integer:  # torch rounds toward -inf and gives the divisor's sign, like Python
        return f"{fn}({s.args[0]}, _nonzero({s.args[1]}))"
    return s.f32(fn + "({0}, {1})")


@emits("pow")
def _e_pow(s: Site) -> str:
    if s.in_dt is DType.uint32:
        return f"_pow_u32({s.args[0]}, {s.args[1]})"
    if s.in_dt.is_integer:
        return f"torch.pow({s.args[0]}, torch.clamp({s.args[1]}, min=0))"
    return s.f32("torch.pow({0}, {1})")


@emits("bitwise_left_shift", "bitwise_right_shift")
def _e_shift(s: Site) -> str:
    bits = 64 if s.in_dt is DType.int64 else 32
    fn = "torch.bitwise_left_shift" if s.node.op == "bitwise_left_shift" else "torch.bitwise_right_shift"
    expr = f"{fn}({s.args[0]}, torch.clamp({s.args[1]}, 0, {bits - 1}))"
    # uint32 is carried non-negative in int64: >> is logical, << stays below 2**63 before the mask
    return f"{expr} & MASK32" if s.in_dt is DType.uint32 and s.node.op == "bitwise_left_shift" else expr


@emits("where")
def _e_where(s: Site) -> str:
    return f"torch.where({s.args[0]}, {s.args[1]}, {s.args[2]})"


@emits("clip")
def _e_clip(s: Site) -> str:
    expr = s.args[0]
    for key, fn in (("min", "torch.maximum"), ("max", "torch.minimum")):
        if s.at[key] is not None:  # the bound as the reference converts it: np.asarray(b).astype(dtype)
            bound = np.asarray(_scalar_as(s.at[key], s.in_dt), dtype=s.in_dt.to_numpy())
            expr = f"{fn}({expr}, {s.const(bound, s.in_dt)})"
    if expr == s.args[0]:
        s.view = True
    return expr


@emits("astype")
def _e_astype(s: Site) -> str:
    src, dst, x = s.in_dt, s.at["dtype"], s.args[0]
    if dst is DType.bool:
        return f"{x} != 0"
    if src.is_floating and dst is DType.uint32:
        return f"_float_to_u32({x})"
    if src.is_floating and dst.is_integer:
        return f"_float_to_int({x}, {_tdt(dst)})"
    if dst is DType.uint32:
        return f"{x}.to(torch.int64) & MASK32" if src is not DType.uint32 else x
    if dst is DType.int32 and src in (DType.int64, DType.uint32):
        return f"_wrap_i32({x})"
    if src is DType.float64 and dst is DType.float16:
        return f"_f64_to_f16({x})"
    if TORCH_DTYPES[src] == TORCH_DTYPES[dst]:
        s.view = True
        return x
    return f"{x}.to({_tdt(dst)})"


# ---------------------------------------------------------------- reductions


@emits("sum", "mean", "max", "min", "any", "all", "logsumexp")
def _e_reduce(s: Site) -> str:
    axes, kd, x, op = s.axes(), s.at["keepdims"], s.args[0], s.node.op
    if not axes:  # numpy: reducing over no axis keeps every element
        return f"{x}.clone()"
    fn = {
        "sum": "torch.sum",
        "mean": "torch.mean",
        "max": "torch.amax",
        "min": "torch.amin",
        "any": "torch.any",
        "all": "torch.all",
        "logsumexp": "torch.logsumexp",
    }[op]
    call = f"{fn}({{0}}, dim={axes}, keepdim={kd})"
    if op == "sum" and s.in_dt is DType.uint32:
        return call.format(x) + " & MASK32"
    if op == "sum" and s.in_dt.is_integer:
        return f"torch.sum({x}, dim={axes}, keepdim={kd}, dtype={_tdt(s.in_dt)})"  # torch widens int32
    if op in ("sum", "mean", "logsumexp"):
        return s.f32(call)
    return call.format(x)


@emits("prod")
def _e_prod(s: Site) -> str:
    axes, kd, x = s.axes(), s.at["keepdims"], s.args[0]
    if not axes:
        return f"{x}.clone()"
    if s.in_dt is DType.uint32:
        return f"_prod_u32({x}, {axes}, {kd})"
    expr = "{0}"
    for a in sorted(axes, reverse=True):  # torch.prod takes one axis at a time
        expr = f"torch.prod({expr}, dim={a}, keepdim={kd}" + (
            f", dtype={_tdt(s.in_dt)})" if s.in_dt.is_integer else ")"
        )
    return s.f32(expr)


@emits("argmax", "argmin")
def _e_arg(s: Site) -> str:
    axis, kd, largest = s.at["axis"], s.at["keepdims"], s.node.op == "argmax"
    if s.in_dt.is_floating:
        return f"_argext({s.args[0]}, {axis}, {kd}, {largest})"
    return f"torch.{s.node.op}({s.args[0]}, dim={axis}, keepdim={kd})"


@emits("cumulative_sum")
def _e_cumsum(s: Site) -> str:
    axis = s.at["axis"]
    if s.in_dt is DType.uint32:
        return f"torch.cumsum({s.args[0]}, dim={axis}) & MASK32"
    if s.in_dt.is_integer:
        return f"torch.cumsum({s.args[0]}, dim={axis}, dtype={_tdt(s.in_dt)})"
    return s.f32(f"torch.cumsum({{0}}, dim={axis})")


# ---------------------------------------------------------------- linear algebra and fused numerics


@emits("matmul")
def _e_matmul(s: Site) -> str:
    if s.in_dt is DType.uint32:
        return f"_matmul_u32({s.args[0]}, {s.args[1]})"
    if id(s.node) in s.cg.nk_sites:
        return f"_mm_nk({s.args[0]}, {s.args[1]})"
    return s.f32("torch.matmul({0}, {1})")


@emits("einsum")
def _e_einsum(s: Site) -> str:
    sub = s.at["subscripts"]
    s.view = len(s.args) == 1  # a single-operand einsum can be a transposed view
    if s.in_dt is DType.uint32:
        return f"_einsum_u32({sub!r}, {', '.join(s.args)})"
    expr = s.f32(f"torch.einsum({sub!r}, " + ", ".join("{%d}" % i for i in range(len(s.args))) + ")")
    return f"({expr}).to({_tdt(s.in_dt)})" if s.in_dt.is_integer else expr  # torch widens int32 sums


@emits("softmax", "log_softmax")
def _e_softmax(s: Site) -> str:
    fn = "_softmax" if s.node.op == "softmax" else "_log_softmax"
    return s.f32(f"{fn}({{0}}, {s.at['axis']})")


@emits("rms_norm")
def _e_rms_norm(s: Site) -> str:
    return s.f32(f"torch.nn.functional.rms_norm({{0}}, ({{0}}.shape[-1],), {{1}}, {s.at['eps']!r})")


@emits("layer_norm")
def _e_layer_norm(s: Site) -> str:
    return s.f32(f"torch.nn.functional.layer_norm({{0}}, ({{0}}.shape[-1],), {{1}}, {{2}}, {s.at['eps']!r})")


# ---------------------------------------------------------------- creation and shapes


@emits("full")
def _e_full(s: Site) -> str:
    value = _scalar_as(s.at["fill_value"], s.out_dt)
    return f"torch.full({_py_dims(s.at['shape'])}, {_lit(value)}, dtype={_tdt(s.out_dt)})"


@emits("arange")
def _e_arange(s: Site) -> str:
    start, stop, step = s.at["start"], s.at["stop"], s.at["step"]
    if isinstance(start, int) and isinstance(stop, int):  # torch rejects an empty range whose sign disagrees
        stop = start + max(0, -(-(stop - start) // step)) * step
    expr = f"torch.arange({_py_dim(start)}, {_py_dim(stop)}, {step}, dtype=torch.int64)"
    dt = s.out_dt
    if dt is DType.uint32:
        return f"{expr} & MASK32"
    if dt is DType.int32:
        return f"_wrap_i32({expr})"
    return expr if dt is DType.int64 else f"{expr}.to({_tdt(dt)})"


@emits("reshape", "squeeze")
def _e_reshape(s: Site) -> str:
    s.view = True
    shape = s.at["shape"] if s.node.op == "reshape" else s.node.outputs[0].shape
    return f"torch.reshape({s.args[0]}, {_py_dims(shape)})"


@emits("permute_dims")
def _e_permute(s: Site) -> str:
    s.view = True
    return f"torch.permute({s.args[0]}, {tuple(s.at['axes'])})"


@emits("expand_dims")
def _e_expand_dims(s: Site) -> str:
    s.view = True
    return f"torch.unsqueeze({s.args[0]}, {s.at['axis']})"


@emits("broadcast_to")
def _e_broadcast_to(s: Site) -> str:
    s.view = True
    return f"{s.args[0]}.expand({_py_dims(s.at['shape'])})"


@emits("concat", "stack")
def _e_concat(s: Site) -> str:
    fn = "torch.cat" if s.node.op == "concat" else "torch.stack"
    return f"{fn}(({''.join(a + ', ' for a in s.args)}), dim={s.at['axis']})"


@emits("flip")
def _e_flip(s: Site) -> str:
    axes = s.axes()
    return f"torch.flip({s.args[0]}, {axes})" if axes else f"{s.args[0]}.clone()"


@emits("repeat")
def _e_repeat(s: Site) -> str:
    if s.at["axis"] is None:
        return f"torch.repeat_interleave(torch.reshape({s.args[0]}, (-1,)), {s.at['repeats']})"
    return f"torch.repeat_interleave({s.args[0]}, {s.at['repeats']}, dim={int(s.at['axis'])})"


@emits("tile")
def _e_tile(s: Site) -> str:
    return f"torch.tile({s.args[0]}, {tuple(s.at['reps'])})"


@emits("slice")
def _e_slice(s: Site) -> str:
    s.view = True
    if not s.at["starts"]:
        return s.args[0]
    idx = ", ".join(
        f"{_py_dim(a)}:{_py_dim(b)}" + (f":{st}" if st != 1 else "")
        for a, b, st in zip(s.at["starts"], s.at["stops"], s.at["steps"])
    )
    return f"{s.args[0]}[{idx},]"


@emits("dynamic_slice")
def _e_dynamic_slice(s: Site) -> str:
    starts = "(" + "".join(a + ", " for a in s.args[1:]) + ")"
    if s.export:
        return f"_dslice_t({s.args[0]}, {starts}, {_py_dims(s.at['sizes'])})"
    s.view = True
    return f"_dslice({s.args[0]}, {starts}, {_py_dims(s.at['sizes'])})"


@emits("dynamic_update_slice")
def _e_dynamic_update_slice(s: Site) -> str:
    starts = "(" + "".join(a + ", " for a in s.args[2:]) + ")"
    return f"_dupdate{'_t' if s.export else ''}({s.args[0]}, {s.args[1]}, {starts})"


def _index(s: Site, k: int, need_int64: bool = True) -> str:
    """Index input ``k`` as torch wants it (gather/scatter need int64)."""
    return f"{s.args[k]}.long()" if need_int64 and s.node.inputs[k].dtype is DType.int32 else s.args[k]


@emits("take")
def _e_take(s: Site) -> str:
    return f"_take({s.args[0]}, {_index(s, 1, False)}, {s.at['axis']})"


@emits("take_along_axis")
def _e_take_along_axis(s: Site) -> str:
    return f"torch.gather({s.args[0]}, {s.at['axis']}, {_index(s, 1)})"


@emits("put_along_axis")
def _e_put_along_axis(s: Site) -> str:
    return f"torch.scatter({s.args[0]}, {s.at['axis']}, {_index(s, 1)}, {s.args[2]})"


def _sort_call(s: Site, axis: Any, descending: bool) -> str:
    """One stable torch.sort; float16/bfloat16 are sorted as float32 (same order, exact values)."""
    key = s.args[0] + (".float()" if s.in_dt in LOW else "")
    return f"torch.sort({key}, dim={axis}, descending={descending}, stable=True)"


@emits("sort")
def _e_sort(s: Site) -> str:
    expr = _sort_call(s, s.at["axis"], s.at["descending"]) + ".values"
    return f"{expr}.to({_tdt(s.in_dt)})" if s.in_dt in LOW else expr


@emits("argsort")
def _e_argsort(s: Site) -> str:
    return _sort_call(s, s.at["axis"], s.at["descending"]) + ".indices"


def _emit_top_k(cg: "_Codegen", s: Site) -> list[str]:
    """Values and indices of a stable descending sort, first k (ties: lower index first).

    Eager code uses ``_top_k`` (torch.topk plus an exact tie rule, much cheaper than sorting a
    long row); the export flavour keeps the one stable sort (no data-dependent shapes)."""
    k, tmp = s.at["k"], cg.fresh("srt")
    low = f".to({_tdt(s.in_dt)})" if s.in_dt in LOW else ""
    if not cg.export:
        key = s.args[0] + (".float()" if s.in_dt in LOW else "")
        return [f"{tmp} = _top_k({key}, {k})", f"{s.outs[0]}, {s.outs[1]} = {tmp}[0]{low}, {tmp}[1]"]
    values = f"{tmp}.values[..., :{k}]" + low
    return [
        f"{tmp} = {_sort_call(s, -1, True)}",
        f"{s.outs[0]}, {s.outs[1]} = {values}, {tmp}.indices[..., :{k}]",
    ]


# ============================================================================ code generation


class _Codegen:
    """Writes the Python source of a graph (and of its subgraphs, as nested functions)."""

    def __init__(self, export: bool, symbols: list[str]):
        self.export = export
        self.symbols = symbols  # the program's symbols, passed to every generated function
        self.consts: dict[str, torch.Tensor] = {}
        self.funcs: list[str] = []
        self.count = 0
        self.transposed: set = set()  # 2-D weight constants stored transposed (see plan_weight_layouts)
        self.nk_sites: set = set()  # matmul nodes emitted as _mm_nk

    def plan_weight_layouts(self, graph: Graph) -> None:
        """Choose the memory layout of 2-D float weight constants for the matmuls that use them.

        On CPU, ``x [M, K] @ W`` is fastest with ``W`` stored ``[K, N]`` row-major when ``M == 1``
        (a decode step) and ``N >= K``, with ``W`` stored ``[N, K]`` when ``M == 1`` and ``N < K``
        (a plain matmul on the transposed view), and as ``(Wt @ x^T)^T`` with ``Wt`` stored
        ``[N, K]`` when ``M >= 2`` (beams, prompts): up to 2-3x apart on this kind of machine. A weight
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
                        wanted.setdefault(c, []).append((depth, t if (m == 1 and n >= k) else not t))
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
            if m >= 2 and (c in self.transposed) != t:  # the operand's memory is [N, K] rows
                self.nk_sites.add(id(node))

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, arr: np.ndarray, dt: DType, transposed: bool = False) -> str:
        name = self.fresh("c")
        if transposed:  # stored [b, a] row-major, seen as the [a, b] constant (plan_weight_layouts)
            self.consts[name] = _array_to_torch(np.ascontiguousarray(np.asarray(arr).T), dt, copy=True).t()
        else:
            self.consts[name] = _array_to_torch(np.asarray(arr), dt, copy=True)
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
            site = Site(node, [names[v] for v in node.inputs], [self.fresh("v") for _ in node.outputs], self)
            for v, n in zip(node.outputs, site.outs):
                names[v] = n
            lines += ["    " + line for line in LOWERINGS[node.op](self, site)]
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

    def emit_while(self, site: Site) -> list[str]:
        node = site.node
        n = node.attrs["num_state"]
        symbols = self.symbols
        cf = self.function(node.subgraphs["cond"], self.fresh("cond_"), symbols, top=False)
        bf = self.function(node.subgraphs["body"], self.fresh("body_"), symbols, top=False)
        extra = "".join(", " + x for x in site.args[n:] + [f"s_{s}" for s in symbols])
        state = self.fresh("st")
        target = f"({''.join(o + ', ' for o in site.outs)})"
        init = f"({''.join(x + ', ' for x in site.args[:n])})"
        if self.export:
            if n == 0:
                raise IRError(
                    "torch export: a while_loop without state cannot be exported (it never changes)"
                )
            return [
                f"{target} = torch._higher_order_ops.while_loop("
                f"lambda *{state}: {cf}(*{state}{extra})[0], lambda *{state}: {bf}(*{state}{extra}), {init})"
            ]
        lines = [
            f"{state} = {init}",
            f"while bool({cf}(*{state}{extra})[0]):",
            f"    {state} = {bf}(*{state}{extra})",
        ]
        return lines + ([f"{target} = {state}"] if n else [])

    def emit_cond(self, site: Site) -> list[str]:
        node = site.node
        symbols = self.symbols
        tf = self.function(node.subgraphs["then"], self.fresh("then_"), symbols, top=False)
        ef = self.function(node.subgraphs["else"], self.fresh("else_"), symbols, top=False)
        ops = "".join(x + ", " for x in site.args[1:])
        syms = "".join(f"s_{s}, " for s in symbols)
        if not site.outs:
            return []  # branches without outputs have no effect
        target = f"({''.join(o + ', ' for o in site.outs)})"
        if self.export:
            return [
                f"{target} = torch.cond({site.args[0]}, lambda *o: {tf}(*o, {syms}), "
                f"lambda *o: {ef}(*o, {syms}), ({ops}))"
            ]
        return [f"{target} = {tf}({ops}{syms}) if bool({site.args[0]}) else {ef}({ops}{syms})"]


def _expr_lowering(fn: Emitter) -> Callable[[_Codegen, Site], list[str]]:
    def lower_node(cg: _Codegen, site: Site) -> list[str]:
        return [f"{site.outs[0]} = {fn(site)}"]

    lower_node.__doc__ = fn.__doc__
    return lower_node


#: op name -> ``(codegen, site) -> lines``: every op of the registry (tests/test_coverage.py checks it).
LOWERINGS: dict[str, Callable[[_Codegen, Site], list[str]]] = {
    op: _expr_lowering(fn) for op, fn in EXPR.items()
}
LOWERINGS.update(top_k=_emit_top_k, while_loop=_Codegen.emit_while, cond=_Codegen.emit_cond)


def _identifier(name: str, taken: set) -> str:
    """A Python identifier for an input name ("past_key_values.0.key" -> "past_key_values_0_key")."""
    base = re.sub(r"\W", "_", name) or "input"
    if base[0].isdigit():
        base = "_" + base
    out, k = base, 1
    while out in taken or out in ("self", "torch", "math") or out.startswith("s_"):
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
    cg = _Codegen(export, symbols)
    if not export:
        cg.plan_weight_layouts(graph)
    inner = cg.function(graph, "graph_fn", symbols, top=True)
    taken: set = set()
    params = [_identifier(n, taken) if export else f"x{i}" for i, n in enumerate(graph.input_names)]
    entry = [f"def entry({', '.join((['self'] if export else []) + params)}):"]
    for p, spec in zip(params, graph.input_specs):
        if export and spec.dtype is DType.uint32:
            entry.append(f"    {p} = {p}.to(torch.int64)")
    for s, i, ax, rest in plan:
        expr = f"{params[i]}.shape[{ax}]" + (
            "" if isinstance(rest, int) and rest == 0 else f" - {_py_dim(rest)}"
        )
        entry.append(f"    s_{s} = {expr}")
        if export and not (isinstance(rest, int) and rest == 0):
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


# ============================================================================ arrays at the boundary


def _array_to_torch(arr: np.ndarray, dt: DType, copy: bool = False) -> torch.Tensor:
    """A numpy array as the tensor a program carries (uint32 -> int64, bfloat16 bit-cast).
    Memory is shared where possible; the generated code never writes to its inputs."""
    if dt is DType.uint32:
        return torch.from_numpy(arr.astype(np.int64))
    if dt is DType.bfloat16:
        bits = (arr if arr.flags.c_contiguous else arr.copy()).view(np.uint16)
        t = torch.from_numpy(bits.copy() if copy or not bits.flags.writeable else bits)
        return t.view(torch.bfloat16)
    if copy or not arr.flags.writeable or any(st < 0 for st in arr.strides):
        arr = np.array(arr, copy=True)
    return torch.from_numpy(arr)


def _tensor_to_numpy(t: torch.Tensor, dt: DType) -> np.ndarray:
    t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    if dt is DType.uint32:
        return t.numpy().astype(np.uint32)
    if dt is DType.bfloat16:
        return t.view(torch.uint16).numpy().view(dt.to_numpy())
    return t.numpy()


# ============================================================================ the program


class TorchProgram(Program):
    """A graph lowered to generated torch code. ``source`` is the generated Python; ``fn`` the
    entry function (``torch.compile``d when ``compile=True``)."""

    backend = NAME

    def __init__(self, graph: Graph, compile: bool = False):
        super().__init__(graph)
        self.entry, self._inner, self.source, self.symbols = build(graph)
        self.compiled = compile
        self.fn = torch.compile(self.entry, dynamic=True) if compile else self.entry

    def _is_native(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def _native_dtype(self, x: Any) -> Any:
        if x.dtype not in FROM_TORCH:
            return x.dtype  # not an IR dtype: the caller's check reports it with the input's name
        return FROM_TORCH[x.dtype]

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        return _array_to_torch(x, spec.dtype)

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        return _tensor_to_numpy(x, spec.dtype)

    def _prepare_native(self, x: Any, spec: TensorSpec) -> Any:
        if x.device.type != "cpu":
            raise IRError(
                f"input {spec.name!r} is on {x.device}; this torch backend runs on CPU tensors, "
                "move it with .cpu()"
            )
        return x.to(torch.int64) if x.dtype == torch.uint32 else x

    def _finish_native(self, x: Any, spec: TensorSpec) -> Any:
        return x.to(torch.uint32) if spec.dtype is DType.uint32 else x

    def _run(self, args: list, env: dict) -> list:
        if self.compiled:
            return list(self.fn(*args))
        return list(self._inner(*args, *[env[s] for s in self.symbols]))

    def export(self, path: str, example_sizes: dict | None = None) -> str:
        """``torch.export`` the program with one ``torch.export.Dim`` per IR symbol and save it as
        a ``.pt2`` file (temporary file + rename); see :func:`export_program`."""
        return export_program(self, path, example_sizes)


# ============================================================================ torch.export


def _dim_name(d: SymDim) -> str:
    text = str(d).replace(" ", "").replace("+", "_plus_").replace("-", "_minus_").replace("*", "_times_")
    return "d_" + re.sub(r"\W", "_", text)


def example_sizes_for(graph: Graph, given: dict | None = None) -> dict[str, int]:
    """Distinct example sizes >= 2 for the symbols (torch specialises sizes 0 and 1, and equal
    example sizes would tie unrelated axes); every compound input dim must be >= 2 and distinct
    too. ``given`` fixes some of them (e.g. a symbol that must be even)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(graph.symbols))
    if unknown:
        raise IRError(
            f"example_sizes names {unknown}, which are not symbols of this program ({sorted(graph.symbols)})"
        )
    compound = {
        d
        for spec in graph.input_specs
        for d in spec.shape
        if isinstance(d, SymDim)
        and not (len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1)
    }
    sizes = dict(given)
    candidate = 5
    for s in sorted(graph.symbols - set(given)):
        while True:
            trial = {**sizes, s: candidate}
            candidate += 2
            known = [d.evaluate(trial) for d in compound if d.symbols <= set(trial)]
            values = list(trial.values()) + known
            if all(v >= 2 for v in known) and len(set(values)) == len(values):
                sizes = trial
                break
    return sizes


def export_program(prog: TorchProgram, path: str, example_sizes: dict | None = None) -> str:
    """Trace the export flavour of ``prog`` with ``torch.export.export`` and save it.

    Every IR symbol becomes a ``torch.export.Dim`` of the same name (``min=0``), shared by every
    input axis it names. An axis holding a compound dim (``past + seq``) gets its own Dim
    (``d_past_plus_seq``); torch.export finds the relation from the program and records it as a
    range constraint. The file takes the IR input names as arguments, in order, with the IR
    dtypes (uint32 included) and returns the outputs as a tuple."""
    import torch._higher_order_ops  # noqa: F401 - the export flavour's while_loop

    graph = prog.graph
    entry, _, _, _ = build(graph, export=True)
    sizes = example_sizes_for(graph, example_sizes)
    params = list(entry.__code__.co_varnames[1 : entry.__code__.co_argcount])
    dims: dict = {}
    examples, dynamic = [], {}
    for param, spec in zip(params, prog.input_specs):
        axes = {}
        for ax, d in enumerate(spec.shape):
            if isinstance(d, SymDim):
                name = (
                    d.terms[0][0][0]
                    if (len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1)
                    else _dim_name(d)
                )
                if name not in dims:
                    dims[name] = torch.export.Dim(name, min=0)
                axes[ax] = dims[name]
        shape = [d if isinstance(d, int) else d.evaluate(sizes) for d in spec.shape]
        dtype = torch.uint32 if spec.dtype is DType.uint32 else TORCH_DTYPES[spec.dtype]
        examples.append(torch.zeros(shape, dtype=dtype))
        dynamic[param] = axes or None

    exported_cls = type("TensorweaveProgram", (torch.nn.Module,), {"forward": entry})
    try:
        exported = torch.export.export(exported_cls(), tuple(examples), dynamic_shapes=dynamic)
    except Exception as exc:  # torch's messages are long; keep the first line and say what to try
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IRError(
            f"torch.export failed for program {graph.name!r}: {type(exc).__name__}: {first[:300]}; "
            "try other example_sizes= or export to onnx/jax/tensorflow"
        ) from exc
    return _save_atomic(exported, path)


def _save_atomic(exported: Any, path: str) -> str:
    path = os.fspath(path)
    if not path.endswith(".pt2"):
        raise IRError(f"torch export writes a .pt2 file; got {path!r}, use a name ending in .pt2")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt2", dir=directory)
    os.close(fd)
    try:
        torch.export.save(exported, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def lower(graph: Graph, compile: bool = False, **options: Any) -> TorchProgram:
    """Lower ``graph`` to a :class:`TorchProgram`; ``compile=True`` wraps it in ``torch.compile``."""
    if options:
        raise IRError(f"the torch backend takes the option compile=True/False only, got {sorted(options)}")
    if not isinstance(compile, bool):
        raise IRError(f"torch backend: compile must be True or False, got {compile!r}")
    graph.check()
    return TorchProgram(graph, compile=compile)
