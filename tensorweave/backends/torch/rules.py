"""The torch lowering rules: one rule per op, each ``rule(site) -> str`` (spec/backends-torch.md).

A rule returns Python source: one or more statements that compute the node's outputs, named
``site.outs``, from its inputs, named ``site.args``. Most ops are a single expression; they are
written as ``fn(site) -> expression`` and registered with :func:`expression`, which assigns the
expression to the one output. ``top_k``, ``while_loop`` and ``cond`` write their statements
themselves. The code is chosen at lowering time for the node's dtypes, so the line is the plain
torch call whenever torch already has the reference semantics.

``site`` is a :class:`TorchSite`: the shared :class:`~tensorweave.backends.base.Site` fields
(``args``, ``attrs``, dtypes) plus what code generation needs (output names, constants, the
export flavour, nested functions). Symbolic attributes arrive resolved by
:func:`~tensorweave.backends.base.resolve_symbolic_attrs` into :class:`DimSource` expressions over
the symbol variables ``s_<name>`` of the generated functions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ...ir.ops import OPS
from ...ir.ops.nn import pool_counts
from ...ir.types import DType, IRError, SymDim
from ..base import Rules, Site, eval_dim
from .runtime import LOW, TORCH_DTYPES

if TYPE_CHECKING:
    from ...ir.graph import Graph, Node


# ============================================================================ symbolic dims as source


class DimSource:
    """A dim as a Python expression over the symbol variables ``s_<name>``.

    It is the value :func:`~tensorweave.backends.base.eval_dim` computes with when the symbols
    are bound to :meth:`symbol` (it uses ``+`` and ``*`` only): a sum of products, each product a
    list of factors (an int coefficient first, when it is not 1). ``str`` gives the source."""

    __slots__ = ("terms",)

    def __init__(self, terms: list[list[str]]):
        self.terms = terms

    @classmethod
    def symbol(cls, name: str) -> DimSource:
        return cls([[f"s_{name}"]])

    @staticmethod
    def _terms(other: Any) -> list[list[str]]:
        if isinstance(other, DimSource):
            return other.terms
        if isinstance(other, int):
            return [[str(other)]]
        return NotImplemented

    def __add__(self, other: Any) -> DimSource:
        terms = self._terms(other)
        return NotImplemented if terms is NotImplemented else DimSource(self.terms + terms)

    def __radd__(self, other: Any) -> DimSource:
        terms = self._terms(other)
        return NotImplemented if terms is NotImplemented else DimSource(terms + self.terms)

    def _product(self, left: list[list[str]], right: list[list[str]]) -> DimSource:
        if len(left) != 1 or len(right) != 1:  # eval_dim multiplies the factors of one monomial
            raise IRError("torch codegen: only a monomial's factors are multiplied")
        return DimSource([left[0] + right[0]])

    def __mul__(self, other: Any) -> DimSource:
        terms = self._terms(other)
        return NotImplemented if terms is NotImplemented else self._product(self.terms, terms)

    def __rmul__(self, other: Any) -> DimSource:
        terms = self._terms(other)
        return NotImplemented if terms is NotImplemented else self._product(terms, self.terms)

    def __str__(self) -> str:
        return "(" + " + ".join("*".join(t) for t in self.terms) + ")"

    __repr__ = __str__


def py_dim(d: Any) -> str:
    """A resolved dim (an int or a :class:`DimSource`) as Python source."""
    if isinstance(d, SymDim):
        raise IRError(f"torch codegen: dim {d} was not resolved (resolve_symbolic_attrs)")
    return str(d)


def py_dims(ds: Sequence[Any]) -> str:
    return "(" + "".join(py_dim(d) + ", " for d in ds) + ")"


def tdt(dt: DType) -> str:
    """The carried torch dtype of ``dt`` as source (``torch.int64`` for uint32)."""
    return f"torch.{str(TORCH_DTYPES[dt]).split('.')[-1]}"


def lit(v: Any) -> str:
    """A Python literal for an attribute scalar (nan/inf spelled through math)."""
    if isinstance(v, float):
        if math.isnan(v):
            return "math.nan"
        if math.isinf(v):
            return "math.inf" if v > 0 else "-math.inf"
    return repr(v)


def scalar_as(value: Any, dt: DType) -> Any:
    """``value`` converted to ``dt`` exactly as the reference converts scalars (wrapping ints,
    truncating floats), as the Python number the carried torch dtype holds."""
    arr = np.asarray(OPS["full"].reference((), value, dt))
    if dt is DType.bfloat16:
        return float(arr.astype(np.float32))
    return arr.item()


# ============================================================================ the site


class TorchSite(Site):
    """One node as a torch rule sees it: :class:`~tensorweave.backends.base.Site` plus the code
    generator's helpers. ``outs`` are the names the rule assigns; a rule sets ``view = True`` when
    its result may share memory with its first input (the generator then copies it where an
    output must not alias). ``cg`` is the :class:`~.codegen.Codegen` writing the function (not
    imported here: codegen imports the rules)."""

    __slots__ = ("outs", "cg", "view")

    def __init__(self, node: Node, args: Sequence[str], attrs: dict, outs: list[str], cg: Any):
        super().__init__(node, args, attrs)
        self.outs = outs
        self.cg = cg
        self.view = False

    @property
    def export(self) -> bool:
        """True in the export flavour (traced by torch.export), False in eager code."""
        return self.cg.export

    @property
    def nk(self) -> bool:
        """True for a matmul whose right operand's memory is ``[N, K]`` rows (the layout plan)."""
        return id(self.node) in self.cg.nk_sites

    def const(self, arr: np.ndarray, dt: DType) -> str:
        """Name of a constant tensor created once at lowering."""
        return self.cg.const(arr, dt)

    def fresh(self, prefix: str) -> str:
        """A new local name."""
        return self.cg.fresh(prefix)

    @property
    def symbols(self) -> list[str]:
        """The program's symbols, passed as ``s_<name>`` to every generated function."""
        return self.cg.symbols

    def function(self, graph: Graph, prefix: str) -> str:
        """Emit a subgraph as a generated function (inputs, then the symbols); returns its name."""
        return self.cg.function(graph, self.cg.fresh(prefix), self.cg.symbols, top=False)

    def dims(self, shape: Sequence[Any]) -> str:
        """A shape of the IR (ints and symbolic dims) as a source tuple."""
        return py_dims([eval_dim(d, self.cg.env) for d in shape])

    def f32(self, template: str) -> str:
        """``template`` over the inputs, in float32 when the inputs are float16/bfloat16."""
        if self.in_dt in LOW:
            return f"({template.format(*[a + '.float()' for a in self.args])}).to({tdt(self.in_dt)})"
        return template.format(*self.args)

    def mask32(self, expr: str) -> str:
        """``expr & MASK32`` where the op's uint32 result wraps (``OPS[op].wraps_uint32``)."""
        if self.out_dt is DType.uint32 and OPS[self.op].wraps_uint32:
            return f"{expr} & MASK32"
        return expr


Rule = Callable[[TorchSite], str]

#: op name -> ``rule(site) -> Python source``: every op of the registry (tests/test_coverage.py).
RULES = Rules("torch")


def expression(*ops: str) -> Callable[[Callable[[TorchSite], str]], Callable[[TorchSite], str]]:
    """Register ``fn(site) -> expression`` as the rule ``outs[0] = <expression>`` of ``ops``."""

    def deco(fn: Callable[[TorchSite], str]) -> Callable[[TorchSite], str]:
        def rule(site: TorchSite) -> str:
            return f"{site.outs[0]} = {fn(site)}"

        rule.__name__ = fn.__name__
        rule.__qualname__ = fn.__qualname__
        rule.__doc__ = fn.__doc__
        rule.__wrapped__ = fn  # type: ignore[attr-defined]
        RULES.register(*ops)(rule)
        return fn

    return deco


# ============================================================================ elementwise

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


def _float_unary(op: str, fn: str) -> None:
    def float_unary(s: TorchSite) -> str:
        """The torch function, in float32 for float16/bfloat16."""
        return s.f32(fn + "({0})")

    float_unary.__name__ = op
    expression(op)(float_unary)


def _plain_unary(op: str, fn: str) -> None:
    def plain_unary(s: TorchSite) -> str:
        """The torch function (already the reference semantics)."""
        return f"{fn}({s.args[0]})"

    plain_unary.__name__ = op
    expression(op)(plain_unary)


def _plain_binary(op: str, fn: str) -> None:
    def plain_binary(s: TorchSite) -> str:
        """The torch function (already the reference semantics)."""
        return f"{fn}({s.args[0]}, {s.args[1]})"

    plain_binary.__name__ = op
    expression(op)(plain_binary)


for _op, _fn in FLOAT_UNARY.items():
    _float_unary(_op, _fn)
for _op, _fn in PLAIN_UNARY.items():
    _plain_unary(_op, _fn)
for _op, _fn in PLAIN_BINARY.items():
    _plain_binary(_op, _fn)


@expression("gelu")
def gelu(s: TorchSite) -> str:
    """The kernel's gelu with the infinities set to the IR's values (``runtime.gelu``)."""
    # The IR's formula at +-inf is +inf / nan (0.5*x*(1+erf) with -inf*0 = nan). PyTorch's CPU
    # kernels for approximate='none' return nan at +inf on some CPUs (seen on AVX-512 machines,
    # every ATEN_CPU_CAPABILITY): the infinities are set explicitly, never left to the kernel.
    return s.f32(f"gelu({{0}}, {s.at['approximate']!r})")


@expression("abs")
def abs_(s: TorchSite) -> str:
    if s.in_dt is DType.uint32:
        s.view = True
        return s.args[0]
    return f"torch.abs({s.args[0]})"


@expression("negative")
def negative(s: TorchSite) -> str:
    return s.mask32(f"(-{s.args[0]})") if s.in_dt is DType.uint32 else f"torch.neg({s.args[0]})"


@expression("sign")
def sign(s: TorchSite) -> str:
    return f"sign_f({s.args[0]})" if s.in_dt.is_floating else f"torch.sign({s.args[0]})"


@expression("bitwise_invert")
def bitwise_invert(s: TorchSite) -> str:
    if s.in_dt is DType.uint32:  # flips the 32 bits; stays in [0, 2**32)
        return f"{s.args[0]} ^ MASK32"
    return f"torch.bitwise_not({s.args[0]})"


@expression("add", "subtract")
def add_subtract(s: TorchSite) -> str:
    sym = "+" if s.op == "add" else "-"
    if s.in_dt is DType.uint32:
        return s.mask32(f"({s.args[0]} {sym} {s.args[1]})")
    return f"torch.{'add' if sym == '+' else 'sub'}({s.args[0]}, {s.args[1]})"


@expression("multiply")
def multiply(s: TorchSite) -> str:
    if s.in_dt is DType.uint32:
        return f"mul_u32({s.args[0]}, {s.args[1]})"
    return f"torch.mul({s.args[0]}, {s.args[1]})"


@expression("divide")
def divide(s: TorchSite) -> str:
    return s.f32("torch.div({0}, {1})")


@expression("floor_divide", "remainder")
def floor_divide_remainder(s: TorchSite) -> str:
    fn = "torch.floor_divide" if s.op == "floor_divide" else "torch.remainder"
    if s.in_dt.is_integer:  # torch rounds toward -inf and gives the divisor's sign, like Python
        return f"{fn}({s.args[0]}, nonzero_divisor({s.args[1]}))"
    return s.f32(fn + "({0}, {1})")


@expression("pow")
def pow_(s: TorchSite) -> str:
    if s.in_dt is DType.uint32:
        return f"pow_u32({s.args[0]}, {s.args[1]})"
    if s.in_dt.is_integer:
        return f"torch.pow({s.args[0]}, torch.clamp({s.args[1]}, min=0))"
    return s.f32("torch.pow({0}, {1})")


@expression("bitwise_left_shift", "bitwise_right_shift")
def shift(s: TorchSite) -> str:
    bits = 64 if s.in_dt is DType.int64 else 32
    fn = "torch.bitwise_left_shift" if s.op == "bitwise_left_shift" else "torch.bitwise_right_shift"
    # uint32 is carried non-negative in int64: >> is logical, << stays below 2**63 before the mask
    return s.mask32(f"{fn}({s.args[0]}, torch.clamp({s.args[1]}, 0, {bits - 1}))")


@expression("where")
def where(s: TorchSite) -> str:
    return f"torch.where({s.args[0]}, {s.args[1]}, {s.args[2]})"


@expression("clip")
def clip(s: TorchSite) -> str:
    expr = s.args[0]
    for key, fn in (("min", "torch.maximum"), ("max", "torch.minimum")):
        if s.at[key] is not None:  # the bound as the reference converts it: np.asarray(b).astype(dtype)
            bound = np.asarray(scalar_as(s.at[key], s.in_dt), dtype=s.in_dt.to_numpy())
            expr = f"{fn}({expr}, {s.const(bound, s.in_dt)})"
    if expr == s.args[0]:
        s.view = True
    return expr


@expression("astype")
def astype(s: TorchSite) -> str:
    src, dst, x = s.in_dt, s.at["dtype"], s.args[0]
    if dst is DType.bool:
        return f"{x} != 0"
    if src.is_floating and dst is DType.uint32:
        return f"float_to_u32({x})"
    if src.is_floating and dst.is_integer:
        return f"float_to_int({x}, {tdt(dst)})"
    if dst is DType.uint32:
        return f"{x}.to(torch.int64) & MASK32" if src is not DType.uint32 else x
    if dst is DType.int32 and src in (DType.int64, DType.uint32):
        return f"wrap_i32({x})"
    if src is DType.float64 and dst is DType.float16:
        return f"f64_to_f16({x})"
    if TORCH_DTYPES[src] == TORCH_DTYPES[dst]:
        s.view = True
        return x
    return f"{x}.to({tdt(dst)})"


# ============================================================================ reductions

REDUCERS = {
    "sum": "torch.sum",
    "mean": "torch.mean",
    "max": "torch.amax",
    "min": "torch.amin",
    "any": "torch.any",
    "all": "torch.all",
    "logsumexp": "torch.logsumexp",
}


@expression(*REDUCERS)
def reduce(s: TorchSite) -> str:
    axes, kd, x, op = s.axes(), s.at["keepdims"], s.args[0], s.op
    if not axes:  # numpy: reducing over no axis keeps every element
        return f"{x}.clone()"
    call = f"{REDUCERS[op]}({{0}}, dim={axes}, keepdim={kd})"
    if s.in_dt is DType.uint32 and OPS[op].wraps_uint32:  # sum
        return s.mask32(call.format(x))
    if op == "sum" and s.in_dt.is_integer:
        return f"torch.sum({x}, dim={axes}, keepdim={kd}, dtype={tdt(s.in_dt)})"  # torch widens int32
    if op in ("sum", "mean", "logsumexp"):
        return s.f32(call)
    return call.format(x)


@expression("prod")
def prod(s: TorchSite) -> str:
    axes, kd, x = s.axes(), s.at["keepdims"], s.args[0]
    if not axes:
        return f"{x}.clone()"
    if s.in_dt is DType.uint32:
        return f"prod_u32({x}, {axes}, {kd})"
    expr = "{0}"
    for a in sorted(axes, reverse=True):  # torch.prod takes one axis at a time
        expr = f"torch.prod({expr}, dim={a}, keepdim={kd}" + (
            f", dtype={tdt(s.in_dt)})" if s.in_dt.is_integer else ")"
        )
    return s.f32(expr)


@expression("argmax", "argmin")
def argmax_argmin(s: TorchSite) -> str:
    axis, kd, largest = s.at["axis"], s.at["keepdims"], s.op == "argmax"
    if s.in_dt.is_floating:
        return f"argext({s.args[0]}, {axis}, {kd}, {largest})"
    return f"torch.{s.op}({s.args[0]}, dim={axis}, keepdim={kd})"


@expression("cumulative_sum")
def cumulative_sum(s: TorchSite) -> str:
    axis = s.at["axis"]
    if s.in_dt is DType.uint32:
        return s.mask32(f"torch.cumsum({s.args[0]}, dim={axis})")
    if s.in_dt.is_integer:
        return f"torch.cumsum({s.args[0]}, dim={axis}, dtype={tdt(s.in_dt)})"
    return s.f32(f"torch.cumsum({{0}}, dim={axis})")


# ============================================================================ linear algebra and fused numerics


@expression("matmul")
def matmul(s: TorchSite) -> str:
    if s.in_dt is DType.uint32:
        return f"matmul_u32({s.args[0]}, {s.args[1]})"
    if s.nk:
        return f"mm_nk({s.args[0]}, {s.args[1]})"
    parts = s.cg.split_sites.get(id(s.node))
    if parts:
        return f"mm_split({s.args[0]}, {s.args[1]}, {parts})"
    return s.f32("torch.matmul({0}, {1})")


@expression("einsum")
def einsum(s: TorchSite) -> str:
    sub = s.at["subscripts"]
    s.view = len(s.args) == 1  # a single-operand einsum can be a transposed view
    if s.in_dt is DType.uint32:
        return f"einsum_u32({sub!r}, {', '.join(s.args)})"
    expr = s.f32(f"torch.einsum({sub!r}, " + ", ".join("{%d}" % i for i in range(len(s.args))) + ")")
    return f"({expr}).to({tdt(s.in_dt)})" if s.in_dt.is_integer else expr  # torch widens int32 sums


@expression("softmax", "log_softmax")
def softmax(s: TorchSite) -> str:
    return s.f32(f"{s.op}({{0}}, {s.at['axis']})")  # runtime.softmax / runtime.log_softmax


@expression("rms_norm")
def rms_norm(s: TorchSite) -> str:
    return s.f32(f"torch.nn.functional.rms_norm({{0}}, ({{0}}.shape[-1],), {{1}}, {s.at['eps']!r})")


@expression("layer_norm")
def layer_norm(s: TorchSite) -> str:
    return s.f32(f"torch.nn.functional.layer_norm({{0}}, ({{0}}.shape[-1],), {{1}}, {{2}}, {s.at['eps']!r})")


# ============================================================================ convolution, pooling, resize


def _torch_pad(pads: Sequence[int]) -> tuple:
    """ONNX pads (every begin, then every end) in ``torch.nn.functional.pad``'s order (last axis
    first, begin then end)."""
    n = len(pads) // 2
    return tuple(p for i in reversed(range(n)) for p in (pads[i], pads[n + i]))


def _padded(x: str, pads: Sequence[int], value: str = "0.0") -> str:
    if not any(pads):
        return x
    return f"torch.nn.functional.pad({x}, {_torch_pad(pads)}, value={value})"


@expression("conv")
def conv(s: TorchSite) -> str:
    """``convNd`` over the explicitly padded input (torch pads symmetrically only)."""
    n = s.rank - 2
    at = s.at
    bias = "{2}" if len(s.args) == 3 else "None"
    return s.f32(
        f"torch.nn.functional.conv{n}d({_padded('{0}', at['pads'])}, {{1}}, {bias}, "
        f"{tuple(at['strides'])}, 0, {tuple(at['dilations'])}, {at['groups']})"
    )


@expression("max_pool")
def max_pool(s: TorchSite) -> str:
    n, at = s.rank - 2, s.at
    x = _padded("{0}", at["pads"], "-math.inf")
    return s.f32(f"torch.nn.functional.max_pool{n}d({x}, {tuple(at['kernel'])}, {tuple(at['strides'])})")


@expression("avg_pool")
def avg_pool(s: TorchSite) -> str:
    """``avg_poolNd`` of the zero-padded input (a mean over the whole window); without
    ``count_include_pad`` it is rescaled by prod(kernel) / (real elements per window)."""
    n, at = s.rank - 2, s.at
    expr = f"torch.nn.functional.avg_pool{n}d({_padded('{0}', at['pads'])}, {tuple(at['kernel'])}, {tuple(at['strides'])})"
    if not at["count_include_pad"] and any(at["pads"]):
        spatial = [int(d) for d in s.node.inputs[0].shape[2:]]
        counts = pool_counts(spatial, at["kernel"], at["strides"], at["pads"], False)
        dt = DType.float64 if s.in_dt is DType.float64 else DType.float32
        scale = s.const((math.prod(at["kernel"]) / counts).astype(dt.to_numpy()), dt)
        expr = f"{expr} * {scale}"
    return s.f32(expr)


@expression("resize")
def resize(s: TorchSite) -> str:
    """``interpolate(size=...)``: nearest, or (bi)linear with ``align_corners=False``."""
    n, at = s.rank - 2, s.at
    if at["mode"] == "nearest":
        return s.f32(f"torch.nn.functional.interpolate({{0}}, size={tuple(at['sizes'])}, mode='nearest')")
    mode = "linear" if n == 1 else "bilinear"
    return s.f32(
        f"torch.nn.functional.interpolate({{0}}, size={tuple(at['sizes'])}, mode={mode!r}, align_corners=False)"
    )


# ============================================================================ creation and shapes


@expression("full")
def full(s: TorchSite) -> str:
    value = scalar_as(s.at["fill_value"], s.out_dt)
    return f"torch.full({py_dims(s.at['shape'])}, {lit(value)}, dtype={tdt(s.out_dt)})"


@expression("arange")
def arange(s: TorchSite) -> str:
    start, stop, step = s.at["start"], s.at["stop"], s.at["step"]
    if isinstance(start, int) and isinstance(stop, int):  # torch rejects an empty range whose sign disagrees
        stop = start + max(0, -(-(stop - start) // step)) * step
    expr = f"torch.arange({py_dim(start)}, {py_dim(stop)}, {step}, dtype=torch.int64)"
    dt = s.out_dt
    if dt is DType.uint32:
        return f"{expr} & MASK32"
    if dt is DType.int32:
        return f"wrap_i32({expr})"
    return expr if dt is DType.int64 else f"{expr}.to({tdt(dt)})"


@expression("reshape", "squeeze")
def reshape(s: TorchSite) -> str:
    s.view = True
    shape = py_dims(s.at["shape"]) if s.op == "reshape" else s.dims(s.node.outputs[0].shape)
    return f"torch.reshape({s.args[0]}, {shape})"


@expression("permute_dims")
def permute_dims(s: TorchSite) -> str:
    s.view = True
    return f"torch.permute({s.args[0]}, {tuple(s.at['axes'])})"


@expression("expand_dims")
def expand_dims(s: TorchSite) -> str:
    s.view = True
    return f"torch.unsqueeze({s.args[0]}, {s.at['axis']})"


@expression("broadcast_to")
def broadcast_to(s: TorchSite) -> str:
    s.view = True
    return f"{s.args[0]}.expand({py_dims(s.at['shape'])})"


@expression("concat", "stack")
def concat_stack(s: TorchSite) -> str:
    fn = "torch.cat" if s.op == "concat" else "torch.stack"
    return f"{fn}(({''.join(a + ', ' for a in s.args)}), dim={s.at['axis']})"


@expression("flip")
def flip(s: TorchSite) -> str:
    axes = s.axes()
    return f"torch.flip({s.args[0]}, {axes})" if axes else f"{s.args[0]}.clone()"


@expression("repeat")
def repeat(s: TorchSite) -> str:
    if s.at["axis"] is None:
        return f"torch.repeat_interleave(torch.reshape({s.args[0]}, (-1,)), {s.at['repeats']})"
    return f"torch.repeat_interleave({s.args[0]}, {s.at['repeats']}, dim={int(s.at['axis'])})"


@expression("tile")
def tile(s: TorchSite) -> str:
    return f"torch.tile({s.args[0]}, {tuple(s.at['reps'])})"


@expression("slice")
def slice_(s: TorchSite) -> str:
    s.view = True
    if not s.at["starts"]:
        return s.args[0]
    idx = ", ".join(
        f"{py_dim(a)}:{py_dim(b)}" + (f":{st}" if st != 1 else "")
        for a, b, st in zip(s.at["starts"], s.at["stops"], s.at["steps"])
    )
    return f"{s.args[0]}[{idx},]"


@expression("dynamic_slice")
def dynamic_slice(s: TorchSite) -> str:
    starts = "(" + "".join(a + ", " for a in s.args[1:]) + ")"
    if s.export:  # index tensors: no data-dependent Python for torch.export
        return f"dslice_t({s.args[0]}, {starts}, {py_dims(s.at['sizes'])})"
    s.view = True
    return f"dslice({s.args[0]}, {starts}, {py_dims(s.at['sizes'])})"


@expression("dynamic_update_slice")
def dynamic_update_slice(s: TorchSite) -> str:
    starts = "(" + "".join(a + ", " for a in s.args[2:]) + ")"
    return f"dupdate{'_t' if s.export else ''}({s.args[0]}, {s.args[1]}, {starts})"


def _index(s: TorchSite, k: int, need_int64: bool = True) -> str:
    """Index input ``k`` as torch wants it (gather/scatter need int64)."""
    return f"{s.args[k]}.long()" if need_int64 and s.node.inputs[k].dtype is DType.int32 else s.args[k]


@expression("take")
def take(s: TorchSite) -> str:
    return f"take({s.args[0]}, {_index(s, 1, False)}, {s.at['axis']})"


@expression("take_along_axis")
def take_along_axis(s: TorchSite) -> str:
    return f"torch.gather({s.args[0]}, {s.at['axis']}, {_index(s, 1)})"


@expression("put_along_axis")
def put_along_axis(s: TorchSite) -> str:
    return f"torch.scatter({s.args[0]}, {s.at['axis']}, {_index(s, 1)}, {s.args[2]})"


# ============================================================================ sorting


def _sort_call(s: TorchSite, axis: Any, descending: bool) -> str:
    """One stable torch.sort; float16/bfloat16 are sorted as float32 (same order, exact values)."""
    key = s.args[0] + (".float()" if s.in_dt in LOW else "")
    return f"torch.sort({key}, dim={axis}, descending={descending}, stable=True)"


@expression("sort")
def sort(s: TorchSite) -> str:
    expr = _sort_call(s, s.at["axis"], s.at["descending"]) + ".values"
    return f"{expr}.to({tdt(s.in_dt)})" if s.in_dt in LOW else expr


@expression("argsort")
def argsort(s: TorchSite) -> str:
    return _sort_call(s, s.at["axis"], s.at["descending"]) + ".indices"


@RULES.register("top_k")
def top_k(s: TorchSite) -> str:
    """Values and indices of a stable descending sort, first k (ties: lower index first).

    Eager code calls ``runtime.top_k`` (torch.topk plus an exact tie rule, much cheaper than
    sorting a long row); the export flavour keeps the one stable sort (no data-dependent shapes)."""
    k, tmp = s.at["k"], s.fresh("srt")
    low = f".to({tdt(s.in_dt)})" if s.in_dt in LOW else ""
    if not s.export:
        key = s.args[0] + (".float()" if s.in_dt in LOW else "")
        return f"{tmp} = top_k({key}, {k})\n{s.outs[0]}, {s.outs[1]} = {tmp}[0]{low}, {tmp}[1]"
    values = f"{tmp}.values[..., :{k}]" + low
    return f"{tmp} = {_sort_call(s, -1, True)}\n{s.outs[0]}, {s.outs[1]} = {values}, {tmp}.indices[..., :{k}]"


# ============================================================================ control flow


@RULES.register("while_loop")
def while_loop(s: TorchSite) -> str:
    """Eager: a Python ``while`` over the generated cond/body functions. Export:
    ``torch._higher_order_ops.while_loop`` over the same functions."""
    n = s.at["num_state"]
    cf = s.function(s.node.subgraphs["cond"], "cond_")
    bf = s.function(s.node.subgraphs["body"], "body_")
    extra = "".join(", " + x for x in s.args[n:] + [f"s_{sym}" for sym in s.symbols])
    state = s.fresh("st")
    target = f"({''.join(o + ', ' for o in s.outs)})"
    init = f"({''.join(x + ', ' for x in s.args[:n])})"
    if s.export:
        if n == 0:
            raise IRError("torch export: a while_loop without state cannot be exported (it never changes)")
        return (
            f"{target} = torch._higher_order_ops.while_loop("
            f"lambda *{state}: {cf}(*{state}{extra})[0], lambda *{state}: {bf}(*{state}{extra}), {init})"
        )
    lines = [
        f"{state} = {init}",
        f"while bool({cf}(*{state}{extra})[0]):",
        f"    {state} = {bf}(*{state}{extra})",
    ]
    return "\n".join(lines + ([f"{target} = {state}"] if n else []))


@RULES.register("cond")
def cond(s: TorchSite) -> str:
    """Eager: a Python conditional expression over the two generated branch functions. Export:
    ``torch.cond``. Branches without outputs emit nothing."""
    tf = s.function(s.node.subgraphs["then"], "then_")
    ef = s.function(s.node.subgraphs["else"], "else_")
    ops = "".join(x + ", " for x in s.args[1:])
    syms = "".join(f"s_{sym}, " for sym in s.symbols)
    if not s.outs:
        return ""  # branches without outputs have no effect
    target = f"({''.join(o + ', ' for o in s.outs)})"
    if s.export:
        return (
            f"{target} = torch.cond({s.args[0]}, lambda *o: {tf}(*o, {syms}), "
            f"lambda *o: {ef}(*o, {syms}), ({ops}))"
        )
    return f"{target} = {tf}({ops}{syms}) if bool({s.args[0]}) else {ef}({ops}{syms})"


#: the rule table (``op -> rule(site) -> source``), exported as ``LOWERINGS``
LOWERINGS: dict[str, Rule] = RULES


# ============================================================================ block-quantized weights


@expression("dequantize_blocks")
def dequantize_blocks(s: TorchSite) -> str:
    a = s.args
    return f"dequantize_blocks({a[0]}, {a[1]}, {a[2]}, {s.at['bits']}, {s.at['zero_point']})"


@expression("quantized_matmul")
def quantized_matmul(s: TorchSite) -> str:
    """Dequantise then ``x @ W^T`` (the weight is rebuilt per call: correct, not fast; spec/ir.md)."""
    a = s.args
    return f"torch.matmul({a[0]}, dequantize_blocks({a[1]}, {a[2]}, {a[3]}, {s.at['bits']}, {s.at['zero_point']}).T)"
