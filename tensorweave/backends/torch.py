"""The PyTorch backend: a graph becomes generated Python source over torch ops.

``lower(graph)`` writes one line of Python per node, ``exec``s it once and wraps the
function in a :class:`TorchProgram`; calls run that function with no per-op
interpretation. Control flow runs as Python ``while``/``if`` (eager mode).

Semantics that need care (spec/backends-torch.md):
- **uint32** is carried as int64 holding values in [0, 2**32): PyTorch 2.13's CPU
  ``torch.uint32`` lacks ``+`` and ``>>``. Ops that can leave the range are masked with
  ``& 0xFFFFFFFF``; int64 products wrap modulo 2**64, so their low 32 bits are exact.
  Values are converted at the program boundary (numpy or torch.uint32 in and out).
- **float16/bfloat16** math runs in float32 and is rounded back, like the reference.
- **top_k** uses a stable descending sort (``torch.topk`` does not promise the lower index
  first on ties); sort/argsort use ``stable=True``.
- Integer sums/products/cumsums keep the input dtype (torch widens int32 to int64 by default).
"""
from __future__ import annotations

import math
import os
import tempfile
from typing import Any, Callable

import numpy as np
import torch

from ..ir.graph import Graph
from ..ir.types import DType, IRError, SymDim, TensorSpec
from .base import Program, symbol_plan

NAME = "torch"
MASK32 = 0xFFFFFFFF

TORCH_DTYPES = {
    DType.bool: torch.bool, DType.int32: torch.int32, DType.int64: torch.int64, DType.uint32: torch.int64,
    DType.float16: torch.float16, DType.bfloat16: torch.bfloat16, DType.float32: torch.float32,
    DType.float64: torch.float64,
}
LOW = (DType.float16, DType.bfloat16)


# ---------------------------------------------------------------------------- runtime helpers
# Small functions the generated code calls (kept here so each generated line stays readable).

def _low(fn: Callable, *xs: torch.Tensor) -> torch.Tensor:
    """Compute fn in float32 for float16/bfloat16 inputs and round back."""
    dt = xs[0].dtype
    if dt in (torch.float16, torch.bfloat16):
        return fn(*[x.float() for x in xs]).to(dt)
    return fn(*xs)


def _astype(x: torch.Tensor, src: DType, dst: DType) -> torch.Tensor:
    if dst is DType.bool:
        return x != 0
    if dst is DType.uint32:
        if src.is_floating:
            return torch.trunc(x.double()).nan_to_num(0.0, 0.0, 0.0).to(torch.int64) & MASK32
        return x.to(torch.int64) & MASK32
    if src is DType.uint32 and dst is DType.int32:
        v = x & MASK32
        return torch.where(v >= 2 ** 31, v - 2 ** 32, v).to(torch.int32)
    if dst is DType.int32 and src is DType.int64:
        v = x & MASK32
        return torch.where(v >= 2 ** 31, v - 2 ** 32, v).to(torch.int32)
    if dst.is_integer and src.is_floating:
        t = torch.trunc(x.double()).nan_to_num(0.0, 0.0, 0.0)
        info = torch.iinfo(TORCH_DTYPES[dst])
        return t.clamp(info.min, info.max).to(TORCH_DTYPES[dst])
    return x.to(TORCH_DTYPES[dst])


def _argext(x: torch.Tensor, axis: int, keepdims: bool, largest: bool) -> torch.Tensor:
    """argmax/argmin with the first index on ties and the first nan winning."""
    if x.is_floating_point():
        nan = torch.isnan(x)
        key = x.double()
        key = torch.where(nan, torch.full_like(key, math.inf if largest else -math.inf), key)
        # a nan must beat a real +inf (argmax) / -inf (argmin): rank = (is_nan, value)
        has_nan = nan.any(dim=axis, keepdim=True)
        first_nan = torch.argmax(nan.to(torch.int8), dim=axis, keepdim=True)
        best = torch.argmax(key, dim=axis, keepdim=True) if largest else torch.argmin(key, dim=axis, keepdim=True)
        out = torch.where(has_nan, first_nan, best)
    else:
        out = torch.argmax(x, dim=axis, keepdim=True) if largest else torch.argmin(x, dim=axis, keepdim=True)
    return out if keepdims else out.squeeze(axis)


def _sort_key(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _argsort(x: torch.Tensor, axis: int, descending: bool) -> torch.Tensor:
    return torch.argsort(_sort_key(x), dim=axis, descending=descending, stable=True)


def _top_k(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.argsort(_sort_key(x), dim=-1, descending=True, stable=True)[..., :k]
    return torch.gather(x, -1, idx), idx


def _take(x: torch.Tensor, idx: torch.Tensor, axis: int) -> torch.Tensor:
    flat = torch.index_select(x, axis, idx.reshape(-1).to(torch.int64))
    return flat.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]))


def _dyn_starts(starts: tuple, sizes: tuple, shape: tuple) -> list:
    return [torch.clamp(torch.as_tensor(s).to(torch.int64), 0, d - n) for s, n, d in zip(starts, sizes, shape)]


def _dynamic_slice(x: torch.Tensor, starts: tuple, sizes: tuple) -> torch.Tensor:
    y = x
    for axis, (s, n) in enumerate(zip(_dyn_starts(starts, sizes, tuple(x.shape)), sizes)):
        if n != x.shape[axis]:
            y = torch.index_select(y, axis, s + torch.arange(n))
    return y


def _dynamic_update_slice(x: torch.Tensor, u: torch.Tensor, starts: tuple) -> torch.Tensor:
    sizes = tuple(u.shape)
    st = _dyn_starts(starts, sizes, tuple(x.shape))
    rank = x.dim()
    index = []
    for axis, (s, n) in enumerate(zip(st, sizes)):
        shape = [1] * rank
        shape[axis] = n
        index.append((s + torch.arange(n)).reshape(shape))
    out = x.clone()
    out[tuple(index)] = u
    return out


def _logical_shift_ok(y: torch.Tensor, bits: int) -> torch.Tensor:
    return y.clamp(0, bits - 1)


def _rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    def f(v, ww):
        return v * torch.rsqrt(torch.mean(v * v, dim=-1, keepdim=True) + eps) * ww
    return _low(f, x, w)


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    return _low(lambda v, ww, bb: torch.nn.functional.layer_norm(v, (v.shape[-1],), ww, bb, eps), x, w, b)


def _softmax(x: torch.Tensor, axis: int, log: bool) -> torch.Tensor:
    fn = torch.log_softmax if log else torch.softmax
    return _low(lambda v: fn(v, dim=axis), x)


def _sign(x: torch.Tensor) -> torch.Tensor:
    if x.is_floating_point():
        return torch.where(torch.isnan(x), x, torch.sign(x))
    return torch.sign(x)


def _reduce(fn: Callable, x: torch.Tensor, axes: tuple, keepdims: bool, dtype: torch.dtype | None = None) -> torch.Tensor:
    if not axes:
        return x.clone() if dtype is None else x.to(dtype)
    if dtype is not None:
        return fn(x, dim=axes, keepdim=keepdims, dtype=dtype)
    return fn(x, dim=axes, keepdim=keepdims)


def _prod(x: torch.Tensor, axes: tuple, keepdims: bool) -> torch.Tensor:
    y = x
    for a in sorted(axes, reverse=True):
        y = torch.prod(y, dim=a, keepdim=keepdims, dtype=x.dtype)
    return y


def _logsumexp(x: torch.Tensor, axes: tuple, keepdims: bool) -> torch.Tensor:
    if not axes:
        return x.clone()
    return _low(lambda v: torch.logsumexp(v, dim=axes, keepdim=keepdims), x)


def _minmax(fn: Callable, x: torch.Tensor, axes: tuple, keepdims: bool) -> torch.Tensor:
    if not axes:
        return x.clone()
    return fn(x, dim=axes, keepdim=keepdims)


def _pow_int(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.pow(x, torch.clamp(y, min=0))


def _floor_div(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if not x.is_floating_point():
        y = torch.where(y == 0, torch.ones_like(y), y)
    return _low(torch.floor_divide, x, y)


def _remainder(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if not x.is_floating_point():
        y = torch.where(y == 0, torch.ones_like(y), y)
    return _low(torch.remainder, x, y)


def _clip(x: torch.Tensor, lo: Any, hi: Any) -> torch.Tensor:
    y = x
    if lo is not None:
        y = torch.maximum(y, torch.as_tensor(lo, dtype=x.dtype))
    if hi is not None:
        y = torch.minimum(y, torch.as_tensor(hi, dtype=x.dtype))
    return y


def _gelu(x: torch.Tensor, approximate: str) -> torch.Tensor:
    if x.dtype == torch.float64 or approximate == "none":
        return _low(lambda v: torch.nn.functional.gelu(v, approximate=approximate), x)
    return _low(lambda v: torch.nn.functional.gelu(v, approximate="tanh"), x)


HELPERS = {name: obj for name, obj in globals().items() if name.startswith("_") and callable(obj)}


# ---------------------------------------------------------------------------- code generation

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


def _tdt(dt: DType) -> str:
    return f"torch.{str(TORCH_DTYPES[dt]).split('.')[-1]}"


def _lit(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "math.nan"
        if math.isinf(v):
            return "math.inf" if v > 0 else "-math.inf"
    return repr(v)


UNARY = {
    "abs": "torch.abs({0})", "negative": "torch.neg({0})", "sign": "_sign({0})",
    "exp": "_low(torch.exp, {0})", "log": "_low(torch.log, {0})", "log1p": "_low(torch.log1p, {0})",
    "sqrt": "_low(torch.sqrt, {0})", "rsqrt": "_low(torch.rsqrt, {0})", "tanh": "_low(torch.tanh, {0})",
    "erf": "_low(torch.erf, {0})", "sin": "_low(torch.sin, {0})", "cos": "_low(torch.cos, {0})",
    "floor": "torch.floor({0})", "ceil": "torch.ceil({0})", "sigmoid": "_low(torch.sigmoid, {0})",
    "silu": "_low(torch.nn.functional.silu, {0})", "isnan": "torch.isnan({0})", "isinf": "torch.isinf({0})",
    "isfinite": "torch.isfinite({0})", "logical_not": "torch.logical_not({0})",
    "bitwise_invert": "torch.bitwise_not({0})",
}
BINARY = {
    "add": "torch.add({0}, {1})", "subtract": "torch.sub({0}, {1})", "multiply": "torch.mul({0}, {1})",
    "divide": "_low(torch.div, {0}, {1})", "floor_divide": "_floor_div({0}, {1})",
    "remainder": "_remainder({0}, {1})", "maximum": "torch.maximum({0}, {1})",
    "minimum": "torch.minimum({0}, {1})", "equal": "torch.eq({0}, {1})", "not_equal": "torch.ne({0}, {1})",
    "less": "torch.lt({0}, {1})", "less_equal": "torch.le({0}, {1})", "greater": "torch.gt({0}, {1})",
    "greater_equal": "torch.ge({0}, {1})", "logical_and": "torch.logical_and({0}, {1})",
    "logical_or": "torch.logical_or({0}, {1})", "logical_xor": "torch.logical_xor({0}, {1})",
    "bitwise_and": "torch.bitwise_and({0}, {1})", "bitwise_or": "torch.bitwise_or({0}, {1})",
    "bitwise_xor": "torch.bitwise_xor({0}, {1})",
}
#: ops whose uint32 (int64-carried) result may leave [0, 2**32) and must be masked
U32_MASKED = {"add", "subtract", "multiply", "negative", "bitwise_invert", "bitwise_left_shift", "pow", "sum",
              "prod", "cumulative_sum", "abs", "floor_divide", "remainder"}


def _emit_node(node: Any, a: list[str], out: list[str]) -> list[str]:
    """Python statements for one node (``a``: input names, ``out``: output names)."""
    op, at = node.op, node.attrs
    ins = node.inputs
    dt = node.outputs[0].dtype if node.outputs else None
    in_dt = ins[0].dtype if ins else None
    o = out[0] if out else None
    if op in UNARY:
        expr = UNARY[op].format(*a)
        if op == "abs" and in_dt is DType.uint32:
            expr = a[0]
    elif op in BINARY:
        expr = BINARY[op].format(*a)
    elif op == "pow":
        expr = f"_pow_int({a[0]}, {a[1]})" if in_dt.is_integer else f"_low(torch.pow, {a[0]}, {a[1]})"
    elif op == "bitwise_left_shift":
        bits = 32 if in_dt in (DType.uint32, DType.int32) else 64
        expr = f"torch.bitwise_left_shift({a[0]}, {a[1]}.clamp(0, {bits - 1}))"
    elif op == "bitwise_right_shift":
        bits = 32 if in_dt in (DType.uint32, DType.int32) else 64
        expr = f"torch.bitwise_right_shift({a[0]}, {a[1]}.clamp(0, {bits - 1}))"
    elif op == "gelu":
        expr = f"_gelu({a[0]}, {at['approximate']!r})"
    elif op == "where":
        expr = f"torch.where({a[0]}, {a[1]}, {a[2]})"
    elif op == "clip":
        expr = f"_clip({a[0]}, {_lit(at['min'])}, {_lit(at['max'])})"
    elif op == "astype":
        expr = f"_astype({a[0]}, DType.{in_dt.value}, DType.{at['dtype'].value})"
    elif op in ("sum", "prod", "mean", "max", "min", "any", "all", "logsumexp"):
        axes = tuple(range(len(ins[0].shape))) if at["axis"] is None else tuple(at["axis"])
        kd = at["keepdims"]
        if op == "sum":
            expr = f"_reduce(torch.sum, {a[0]}, {axes}, {kd}, {_tdt(in_dt)})"
            if in_dt in LOW:
                expr = f"_reduce(torch.sum, {a[0]}.float(), {axes}, {kd}).to({_tdt(in_dt)})"
        elif op == "prod":
            expr = f"_prod({a[0]}, {axes}, {kd})" if in_dt not in LOW else \
                f"_prod({a[0]}.float(), {axes}, {kd}).to({_tdt(in_dt)})"
        elif op == "mean":
            expr = f"_reduce(torch.mean, {a[0]}.float() if {a[0]}.dtype in (torch.float16, torch.bfloat16) " \
                   f"else {a[0]}, {axes}, {kd}).to({_tdt(in_dt)})"
        elif op in ("max", "min"):
            expr = f"_minmax(torch.a{op}, {a[0]}, {axes}, {kd})"
        elif op == "any":
            expr = f"_reduce(torch.any, {a[0]}, {axes}, {kd})" if axes else f"{a[0]}.clone()"
        elif op == "all":
            expr = f"_reduce(torch.all, {a[0]}, {axes}, {kd})" if axes else f"{a[0]}.clone()"
        else:
            expr = f"_logsumexp({a[0]}, {axes}, {kd})"
    elif op in ("argmax", "argmin"):
        expr = f"_argext({a[0]}, {at['axis']}, {at['keepdims']}, {op == 'argmax'})"
    elif op == "cumulative_sum":
        if in_dt in LOW:
            expr = f"torch.cumsum({a[0]}.float(), dim={at['axis']}).to({_tdt(in_dt)})"
        else:
            expr = f"torch.cumsum({a[0]}, dim={at['axis']}, dtype={_tdt(in_dt)})"
    elif op == "matmul":
        expr = f"_low(torch.matmul, {a[0]}, {a[1]})"
    elif op == "einsum":
        expr = f"_low(lambda *t: torch.einsum({at['subscripts']!r}, *t), {', '.join(a)})"
    elif op == "full":
        fill = at["fill_value"]
        if dt is DType.uint32:
            fill = int(fill) & MASK32
        expr = f"torch.full({_py_dims(at['shape'])}, {_lit(fill)}, dtype={_tdt(dt)})"
    elif op == "arange":
        expr = f"torch.arange({_py_dim(at['start'])}, {_py_dim(at['stop'])}, {at['step']}, dtype=torch.int64)"
        if dt is not DType.int64:
            expr = f"_astype({expr}, DType.int64, DType.{dt.value})"
    elif op == "reshape":
        expr = f"torch.reshape({a[0]}, {_py_dims(at['shape'])})"
    elif op == "permute_dims":
        expr = f"torch.permute({a[0]}, {tuple(at['axes'])})"
    elif op == "expand_dims":
        expr = f"torch.unsqueeze({a[0]}, {at['axis']})"
    elif op == "squeeze":
        expr = f"{a[0]}.reshape({_py_dims([d for i, d in enumerate(ins[0].shape) if i not in at['axis']])})"
    elif op == "broadcast_to":
        expr = f"{a[0]}.expand({_py_dims(at['shape'])}).clone()"
    elif op == "concat":
        expr = f"torch.cat(({', '.join(a)},), dim={at['axis']})"
    elif op == "stack":
        expr = f"torch.stack(({', '.join(a)},), dim={at['axis']})"
    elif op == "flip":
        axes = tuple(range(len(ins[0].shape))) if at["axis"] is None else tuple(at["axis"])
        expr = f"torch.flip({a[0]}, {axes})" if axes else f"{a[0]}.clone()"
    elif op == "repeat":
        if at["axis"] is None:
            expr = f"torch.repeat_interleave({a[0]}.reshape(-1), {at['repeats']})"
        else:
            expr = f"torch.repeat_interleave({a[0]}, {at['repeats']}, dim={at['axis']})"
    elif op == "tile":
        expr = f"torch.tile({a[0]}, {tuple(at['reps'])})"
    elif op == "slice":
        idx = ", ".join(f"{_py_dim(s)}:{_py_dim(e)}:{st}" for s, e, st in zip(at["starts"], at["stops"], at["steps"]))
        expr = f"{a[0]}[{idx}{',' if len(at['starts']) == 1 else ''}].clone()" if at["starts"] else f"{a[0]}.clone()"
    elif op == "dynamic_slice":
        expr = f"_dynamic_slice({a[0]}, ({''.join(x + ', ' for x in a[1:])}), {_py_dims(at['sizes'])})"
    elif op == "dynamic_update_slice":
        expr = f"_dynamic_update_slice({a[0]}, {a[1]}, ({''.join(x + ', ' for x in a[2:])}))"
    elif op == "take":
        expr = f"_take({a[0]}, {a[1]}, {at['axis']})"
    elif op == "take_along_axis":
        expr = f"torch.gather({a[0]}, {at['axis']}, {a[1]}.to(torch.int64))"
    elif op == "put_along_axis":
        expr = f"torch.scatter({a[0]}, {at['axis']}, {a[1]}.to(torch.int64), {a[2]})"
    elif op == "sort":
        expr = f"torch.gather({a[0]}, {at['axis']}, _argsort({a[0]}, {at['axis']}, {at['descending']}))"
    elif op == "argsort":
        expr = f"_argsort({a[0]}, {at['axis']}, {at['descending']})"
    elif op == "top_k":
        return [f"{out[0]}, {out[1]} = _top_k({a[0]}, {at['k']})"]
    elif op == "softmax":
        expr = f"_softmax({a[0]}, {at['axis']}, False)"
    elif op == "log_softmax":
        expr = f"_softmax({a[0]}, {at['axis']}, True)"
    elif op == "rms_norm":
        expr = f"_rms_norm({a[0]}, {a[1]}, {at['eps']!r})"
    elif op == "layer_norm":
        expr = f"_layer_norm({a[0]}, {a[1]}, {a[2]}, {at['eps']!r})"
    else:  # pragma: no cover - coverage test guarantees every op is handled
        raise IRError(f"torch backend: no lowering for op {op!r}")
    if dt is DType.uint32 and op in U32_MASKED:
        expr = f"({expr}) & {MASK32}"
    return [f"{o} = {expr}"]


class _Codegen:
    def __init__(self) -> None:
        self.consts: dict[str, torch.Tensor] = {}
        self.funcs: list[str] = []
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, arr: np.ndarray, dt: DType) -> str:
        n = self.name("c")
        self.consts[n] = _to_torch(np.asarray(arr), dt)
        return n

    def function(self, graph: Graph, fname: str, symbols: list[str]) -> str:
        """Emit ``def fname(inputs..., <symbols>)``; returns the function name."""
        names: dict = {}
        args = []
        for v in graph.inputs:
            names[v] = self.name("a")
            args.append(names[v])
        lines = [f"def {fname}({', '.join(args + [f's_{s}' for s in symbols])}):"]
        for v, arr in graph.constants.items():
            names[v] = self.const(arr, v.dtype)
        for node in graph.nodes:
            a = [names[v] for v in node.inputs]
            outs = [self.name("v") for _ in node.outputs]
            for v, n in zip(node.outputs, outs):
                names[v] = n
            if node.op == "while_loop":
                lines += self._while(node, a, outs, symbols)
            elif node.op == "cond":
                lines += self._cond(node, a, outs, symbols)
            else:
                lines += ["    " + s for s in _emit_node(node, a, outs)]
        rets = [names[v] for v in graph.outputs]
        lines.append(f"    return ({''.join(r + ', ' for r in rets)})")
        self.funcs.append("\n".join(lines))
        return fname

    def _sym_args(self, symbols: list[str]) -> str:
        return "".join(f", s_{s}" for s in symbols)

    def _while(self, node: Any, a: list[str], outs: list[str], symbols: list[str]) -> list[str]:
        n = node.attrs["num_state"]
        cf = self.function(node.subgraphs["cond"], self.name("cond_"), symbols)
        bf = self.function(node.subgraphs["body"], self.name("body_"), symbols)
        state = self.name("st")
        cap = a[n:]
        capt = "".join(c + ", " for c in cap)
        return [f"    {state} = ({''.join(x + ', ' for x in a[:n])})",
                f"    while bool({cf}(*{state}, {capt}{self._sym_args(symbols)[2:]})[0]):",
                f"        {state} = {bf}(*{state}, {capt}{self._sym_args(symbols)[2:]})",
                f"    ({''.join(o + ', ' for o in outs)}) = {state}" if outs else "    pass"]

    def _cond(self, node: Any, a: list[str], outs: list[str], symbols: list[str]) -> list[str]:
        tf = self.function(node.subgraphs["then"], self.name("then_"), symbols)
        ef = self.function(node.subgraphs["else"], self.name("else_"), symbols)
        ops = "".join(x + ", " for x in a[1:])
        syms = self._sym_args(symbols)[2:]
        target = f"({''.join(o + ', ' for o in outs)})" if outs else "_"
        return [f"    {target} = {tf}({ops}{syms}) if bool({a[0]}) else {ef}({ops}{syms})"]


def _to_torch(arr: np.ndarray, dt: DType) -> torch.Tensor:
    if dt is DType.uint32:
        return torch.from_numpy(np.array(arr.astype(np.int64), order="C"))
    if dt is DType.bfloat16:
        return torch.from_numpy(np.array(arr.astype(np.float32), order="C")).to(torch.bfloat16)
    return torch.from_numpy(np.array(arr, copy=True))


def _to_numpy(t: torch.Tensor, dt: DType) -> np.ndarray:
    t = t.detach().cpu()
    if dt is DType.uint32:
        return t.numpy().astype(np.uint32)
    if dt is DType.bfloat16:
        return t.float().numpy().astype(dt.to_numpy())
    return t.numpy()


def generate_source(graph: Graph) -> tuple[str, dict[str, torch.Tensor], list[str]]:
    """The program's Python source, its constants and its symbol order."""
    plan = symbol_plan(graph.input_specs)
    symbols = [s for s, *_ in plan]
    cg = _Codegen()
    inner = cg.function(graph, "graph_fn", symbols)
    arg_names = [f"x{i}" for i in range(len(graph.inputs))]
    entry = [f"def entry({', '.join(arg_names)}):"]
    for s, i, ax, rest in plan:
        expr = f"x{i}.shape[{ax}]"
        if not (isinstance(rest, int) and rest == 0):
            expr += f" - {_py_dim(rest)}"
        entry.append(f"    s_{s} = {expr}")
    entry.append(f"    return {inner}({''.join(n + ', ' for n in arg_names)}{''.join(f's_{s}, ' for s in symbols)})")
    src = "\n\n".join(cg.funcs + ["\n".join(entry)])
    return src, cg.consts, symbols


class TorchProgram(Program):
    backend = NAME

    def __init__(self, graph: Graph, compile: bool = False):
        super().__init__(graph)
        self.source, consts, self.symbols = generate_source(graph)
        namespace: dict = {"torch": torch, "math": math, "DType": DType, **HELPERS, **consts}
        exec(compile_source(self.source, graph.name), namespace)  # noqa: S102 - our own generated code
        self.fn = namespace["entry"]
        self.compiled = compile
        if compile:
            self.fn = torch.compile(self.fn, dynamic=True)

    def _is_native(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def _native_dtype(self, x: Any) -> DType:
        if x.dtype == torch.uint32:
            return DType.uint32
        return {v: k for k, v in TORCH_DTYPES.items() if k is not DType.uint32}[x.dtype]

    def _from_numpy(self, x: np.ndarray, spec: TensorSpec) -> Any:
        return _to_torch(x, spec.dtype)

    def _to_numpy(self, x: Any, spec: TensorSpec) -> np.ndarray:
        return _to_numpy(x, spec.dtype)

    def _prepare_native(self, x: Any, spec: TensorSpec) -> Any:
        return x.to(torch.int64) if x.dtype == torch.uint32 else x

    def _finish_native(self, x: Any, spec: TensorSpec) -> Any:
        return x.to(torch.uint32) if spec.dtype is DType.uint32 else x

    def _run(self, args: list, env: dict) -> list:
        with torch.no_grad():
            return list(self.fn(*args))

    def export(self, path: str) -> str:
        """torch.export with one ``Dim`` per IR symbol, saved as ``.pt2`` (temp file + rename)."""
        return export_program(self, path)


def compile_source(src: str, name: str) -> Any:
    return compile(src, f"<tensorweave torch program {name}>", "exec")


def export_program(prog: TorchProgram, path: str) -> str:
    graph = prog.graph
    if any(n.op in ("while_loop", "cond") for n in graph.walk()):
        raise IRError("torch export of while_loop/cond graphs is not supported yet (torch.export needs "
                      "torch._higher_order_ops); export this graph to onnx, tensorflow or jax instead")
    dims = {s: torch.export.Dim(s, min=0) for s in prog.symbols}
    example = []
    dynamic = []
    for spec in prog.input_specs:
        shape = []
        dyn = {}
        for ax, d in enumerate(spec.shape):
            if isinstance(d, int):
                shape.append(d)
            elif len(d.terms) == 1 and len(d.terms[0][0]) == 1 and d.terms[0][1] == 1:
                shape.append(3 + len(dyn))
                dyn[ax] = dims[d.terms[0][0][0]]
            else:
                raise IRError(f"torch export: input {spec.name!r} axis {ax} is the compound dim {d}; "
                              "torch.export needs one Dim per axis")
        example.append(torch.zeros(shape, dtype=TORCH_DTYPES[spec.dtype]))
        dynamic.append(dyn or None)
    # one example size per symbol, consistent across inputs
    sizes = {s: 3 + k for k, s in enumerate(prog.symbols)}
    example = []
    for spec in prog.input_specs:
        shape = [d if isinstance(d, int) else d.evaluate(sizes) for d in spec.shape]
        example.append(torch.zeros(shape, dtype=TORCH_DTYPES[spec.dtype]))

    class Wrapped(torch.nn.Module):
        def forward(self, *xs):
            return prog.fn(*xs)

    exported = torch.export.export(Wrapped(), tuple(example), dynamic_shapes=(tuple(dynamic),))
    path = os.fspath(path)
    if not path.endswith(".pt2"):
        path += ".pt2"
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".pt2", dir=directory)
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
    if options:
        raise IRError(f"the torch backend takes the option compile=True/False only, got {sorted(options)}")
    graph.check()
    return TorchProgram(graph, compile=compile)


#: Every registry op this backend lowers (control flow is handled by the code generator).
LOWERINGS = {op: "codegen" for op in list(UNARY) + list(BINARY) + [
    "pow", "bitwise_left_shift", "bitwise_right_shift", "gelu", "where", "clip", "astype", "sum", "prod", "mean",
    "max", "min", "any", "all", "logsumexp", "argmax", "argmin", "cumulative_sum", "matmul", "einsum", "full",
    "arange", "reshape", "permute_dims", "expand_dims", "squeeze", "broadcast_to", "concat", "stack", "flip",
    "repeat", "tile", "slice", "dynamic_slice", "dynamic_update_slice", "take", "take_along_axis",
    "put_along_axis", "sort", "argsort", "top_k", "softmax", "log_softmax", "rms_norm", "layer_norm",
    "while_loop", "cond"]}
