"""IR types: dtypes, dimensions (concrete or symbolic), shapes and tensor specs.

A dimension is either a non-negative ``int`` or a :class:`SymDim`, a polynomial
with integer coefficients over named symbols, e.g. ``batch``,
``past_sequence + sequence`` or ``2*batch*heads``.  Symbols are bound to
integers when a program runs (from the shapes of its inputs); every symbolic
dimension inside a program is then evaluated from those bindings.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

import numpy as np


class IRError(ValueError):
    """A malformed program, a bad input or a violated op contract (one-line message)."""


class DType(enum.Enum):
    bool = "bool"
    int32 = "int32"
    int64 = "int64"
    uint32 = "uint32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"
    float64 = "float64"

    @property
    def is_floating(self) -> "builtins_bool":
        return self in (DType.float16, DType.bfloat16, DType.float32, DType.float64)

    @property
    def is_integer(self) -> "builtins_bool":
        return self in (DType.int32, DType.int64, DType.uint32)

    @property
    def is_signed(self) -> "builtins_bool":
        return self in (DType.int32, DType.int64) or self.is_floating

    @property
    def is_bool(self) -> "builtins_bool":
        return self is DType.bool

    @property
    def itemsize(self) -> int:
        return _ITEMSIZE[self]

    @property
    def short(self) -> str:
        return _SHORT[self]

    def to_numpy(self) -> np.dtype:
        """The numpy dtype (bfloat16 comes from ml_dtypes, numpy's bfloat16 extension)."""
        if self is DType.bfloat16:
            import ml_dtypes  # numpy's own bfloat16 extension type

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.value)

    def __repr__(self) -> str:
        return f"DType.{self.value}"

    def __str__(self) -> str:
        return self.value


builtins_bool = bool
_ITEMSIZE = {
    DType.bool: 1,
    DType.int32: 4,
    DType.int64: 8,
    DType.uint32: 4,
    DType.float16: 2,
    DType.bfloat16: 2,
    DType.float32: 4,
    DType.float64: 8,
}
_SHORT = {
    DType.bool: "bool",
    DType.int32: "i32",
    DType.int64: "i64",
    DType.uint32: "u32",
    DType.float16: "f16",
    DType.bfloat16: "bf16",
    DType.float32: "f32",
    DType.float64: "f64",
}
_FROM_SHORT = {v: k for k, v in _SHORT.items()}


def as_dtype(x: object) -> DType:
    """Coerce a DType, a name ("float32", "f32"), a numpy dtype or a Python type to a DType."""
    if isinstance(x, DType):
        return x
    if x is bool:
        return DType.bool
    if x is int:
        return DType.int64
    if x is float:
        return DType.float32
    if isinstance(x, str):
        if x in _FROM_SHORT:
            return _FROM_SHORT[x]
        try:
            return DType(x)
        except ValueError:
            pass
    else:
        try:
            name = np.dtype(x).name  # type: ignore[arg-type]
        except TypeError:
            name = str(x)
        if name in DType.__members__:
            return DType(name)
        # torch / tf / jax dtype objects print as e.g. "torch.float32", "<dtype: 'float32'>"
        m = re.search(r"(bool|u?int(?:32|64)|b?float(?:16|32|64))", str(x))
        if m and m.group(1) in DType.__members__:
            return DType(m.group(1))
    raise IRError(f"unknown dtype {x!r}; use one of {', '.join(d.value for d in DType)}")


def from_numpy_dtype(dt: np.dtype) -> DType:
    """The DType of a numpy array (int8/16 etc. are rejected with a clear message)."""
    name = np.dtype(dt).name
    if name in DType.__members__:
        return DType(name)
    raise IRError(
        f"numpy dtype {name} is not an IR dtype; cast to one of {', '.join(d.value for d in DType)}"
    )


# --------------------------------------------------------------------------- dims

_Monomial = tuple  # sorted tuple of symbol names (with repetition), () is the constant term


class SymDim:
    """A polynomial dimension over symbols: sum of coeff * prod(symbols).

    Immutable and hashable.  ``SymDim.parse("past_sequence + sequence")``;
    arithmetic with ints and other dims via ``+ - *`` and exact ``//``.
    """

    __slots__ = ("terms", "_hash")
    terms: tuple[tuple[tuple[str, ...], int], ...]  # ((monomial, coefficient), ...), sorted
    _hash: int

    def __init__(self, terms: Mapping[tuple, int]):
        clean = {tuple(sorted(k)): int(v) for k, v in terms.items() if v != 0}
        object.__setattr__(self, "terms", tuple(sorted(clean.items())))
        object.__setattr__(self, "_hash", hash(self.terms))

    def __setattr__(self, k, v):  # pragma: no cover - immutability guard
        raise AttributeError("SymDim is immutable")

    # construction ------------------------------------------------------------
    @staticmethod
    def symbol(name: str) -> "SymDim":
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise IRError(f"bad symbol name {name!r}; use letters, digits and underscores")
        return SymDim({(name,): 1})

    @staticmethod
    def parse(text: str) -> "Dim":
        """Parse ``"a + b"``, ``"2*batch - 1"``, ``"batch*heads"`` or a plain integer."""
        text = text.strip()
        if not text:
            raise IRError("empty dimension string")
        if not re.fullmatch(r"[A-Za-z0-9_+\-*\s]+", text):
            raise IRError(f"bad dimension {text!r}: only symbols, integers, + - * are allowed")
        total: Dim = 0
        for sign, term in re.findall(r"([+-]?)\s*([^+-]+)", text.replace(" ", "")):
            value: Dim = 1
            for factor in term.split("*"):
                if not factor:
                    raise IRError(f"bad dimension {text!r}")
                value = value * (int(factor) if factor.isdigit() else SymDim.symbol(factor))
            total = total - value if sign == "-" else total + value
        if re.search(r"[+\-]\s*$", text) or text.startswith("*"):
            raise IRError(f"bad dimension {text!r}")
        return total

    @staticmethod
    def _lift(x: "Dim") -> "SymDim":
        if isinstance(x, SymDim):
            return x
        if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            return SymDim({(): int(x)})
        raise TypeError(f"cannot use {x!r} as a dimension")

    def _normal(self) -> "Dim":
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return self

    # algebra ------------------------------------------------------------------
    def __add__(self, o: "Dim") -> "Dim":
        if not isinstance(o, (SymDim, int, np.integer)):
            return NotImplemented
        t = dict(self.terms)
        for k, v in SymDim._lift(o).terms:
            t[k] = t.get(k, 0) + v
        return SymDim(t)._normal()

    __radd__ = __add__

    def __neg__(self) -> "Dim":
        return SymDim({k: -v for k, v in self.terms})._normal()

    def __sub__(self, o: "Dim") -> "Dim":
        if not isinstance(o, (SymDim, int, np.integer)):
            return NotImplemented
        return self + (-SymDim._lift(o))

    def __rsub__(self, o: "Dim") -> "Dim":
        return (-self) + o

    def __mul__(self, o: "Dim") -> "Dim":
        if not isinstance(o, (SymDim, int, np.integer)):
            return NotImplemented
        t: dict = {}
        for k1, v1 in self.terms:
            for k2, v2 in SymDim._lift(o).terms:
                k = tuple(sorted(k1 + k2))
                t[k] = t.get(k, 0) + v1 * v2
        return SymDim(t)._normal()

    __rmul__ = __mul__

    def __floordiv__(self, o: "Dim") -> "Dim":
        return dim_div(self, o)

    def __rfloordiv__(self, o: "Dim") -> "Dim":
        return dim_div(o, self)

    def __eq__(self, o: object) -> bool:
        if isinstance(o, SymDim):
            return self.terms == o.terms
        return False

    def __hash__(self) -> int:
        return self._hash

    def __index__(self) -> int:
        raise IRError(f"dimension {self} is symbolic; it has no integer value while tracing")

    def __int__(self) -> int:
        return self.__index__()

    def __bool__(self) -> bool:
        return True

    @property
    def symbols(self) -> frozenset:
        return frozenset(s for k, _ in self.terms for s in k)

    def evaluate(self, env: Mapping[str, int]) -> int:
        total = 0
        for k, v in self.terms:
            p = v
            for s in k:
                if s not in env:
                    raise IRError(f"symbol {s!r} is not bound; it must appear alone as an input dimension")
                p *= env[s]
            total += p
        return total

    def __str__(self) -> str:
        parts = []
        for k, v in sorted(self.terms, key=lambda kv: (kv[0] == (), kv[0])):
            body = "*".join(k)
            if not k:
                s = str(abs(v))
            elif abs(v) == 1:
                s = body
            else:
                s = f"{abs(v)}*{body}"
            if not parts:
                parts.append(s if v > 0 else f"-{s}")
            else:
                parts.append(f"+ {s}" if v > 0 else f"- {s}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"SymDim({str(self)!r})"


Dim = Union[int, SymDim]


def as_dim(x: object) -> Dim:
    """Coerce an int, a numeric string or a symbolic expression string to a Dim."""
    if isinstance(x, SymDim):
        return x._normal()
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        if int(x) < 0:
            raise IRError(f"negative dimension {x}")
        return int(x)
    if isinstance(x, str):
        return SymDim.parse(x)
    if x is None:
        raise IRError("a dimension of None is not allowed; name it with a symbol such as 'batch'")
    raise IRError(f"cannot use {x!r} as a dimension (use an int or a symbol name)")


def dim_div(a: Dim, b: Dim) -> Dim:
    """Exact division of dims; raises when the quotient is not a polynomial."""
    if isinstance(a, int) and isinstance(b, int):
        if b == 0 or a % b:
            raise IRError(f"dimension {a} is not divisible by {b}")
        return a // b
    if a == b:
        return 1
    sa = SymDim._lift(a)
    if isinstance(b, int):
        if b == 0 or any(v % b for _, v in sa.terms):
            raise IRError(f"dimension {a} is not divisible by {b}")
        return SymDim({k: v // b for k, v in sa.terms})._normal()
    sb = SymDim._lift(b)
    if len(sb.terms) == 1:
        ((bk, bv),) = sb.terms
        out = {}
        for k, v in sa.terms:
            rest = list(k)
            for s in bk:
                if s not in rest:
                    raise IRError(f"dimension {a} is not divisible by {b}")
                rest.remove(s)
            if v % bv:
                raise IRError(f"dimension {a} is not divisible by {b}")
            out[tuple(rest)] = v // bv
        return SymDim(out)._normal()
    raise IRError(f"dimension {a} is not divisible by {b}")


def dim_str(d: Dim) -> str:
    return str(d)


def is_static(d: Dim) -> bool:
    return isinstance(d, int)


def evaluate_dim(d: Dim, env: Mapping[str, int]) -> int:
    return d if isinstance(d, int) else d.evaluate(env)


def broadcast_dims(a: Dim, b: Dim) -> Dim:
    """Array-API broadcasting of two dims; a symbol broadcasts against 1 or itself."""
    if a == b:
        return a
    if a == 1:
        return b
    if b == 1:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise IRError(f"shapes do not broadcast: dimension {a} vs {b}")
    raise IRError(f"shapes do not broadcast: dimension {a} vs {b} (symbolic dims must match exactly or be 1)")


def unify_dims(a: Dim, b: Dim, what: str = "dimension") -> Dim:
    """Two dims that must be equal; an int wins over a symbol (the symbol is then known)."""
    if a == b:
        return a
    if isinstance(a, SymDim) and isinstance(b, int):
        return b
    if isinstance(b, SymDim) and isinstance(a, int):
        return a
    raise IRError(f"{what} mismatch: {a} vs {b}")


# --------------------------------------------------------------------------- shapes


class Shape(tuple):
    """A tuple of dims; ``Shape(["batch", 8])``.  Prints as ``[batch,8]``."""

    def __new__(cls, dims: Iterable[object] = ()):
        if isinstance(dims, (str, int)):
            raise IRError(f"a shape must be a sequence of dims, got {dims!r}")
        return super().__new__(cls, tuple(as_dim(d) for d in dims))

    @property
    def rank(self) -> int:
        return len(self)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self)

    @property
    def symbols(self) -> frozenset:
        out: set = set()
        for d in self:
            if isinstance(d, SymDim):
                out |= d.symbols
        return frozenset(out)

    def size(self) -> Dim:
        n: Dim = 1
        for d in self:
            n = n * d
        return n

    def evaluate(self, env: Mapping[str, int]) -> tuple:
        return tuple(evaluate_dim(d, env) for d in self)

    def __str__(self) -> str:
        return "[" + ",".join(str(d).replace(" ", "") for d in self) + "]"

    def __repr__(self) -> str:
        return f"Shape({str(self)})"


def broadcast_shapes(*shapes: Shape) -> Shape:
    rank = max((len(s) for s in shapes), default=0)
    out: list = []
    for i in range(rank):
        d: Dim = 1
        for s in shapes:
            j = i - (rank - len(s))
            if j >= 0:
                d = broadcast_dims(d, s[j])
        out.append(d)
    return Shape(out)


@dataclass(frozen=True)
class TensorSpec:
    """The type of a value: shape + dtype, and an optional name (graph inputs/outputs)."""

    shape: Shape
    dtype: DType
    name: str | None = None

    def __init__(self, shape: Iterable[object], dtype: object = DType.float32, name: str | None = None):
        object.__setattr__(self, "shape", shape if isinstance(shape, Shape) else Shape(shape))
        object.__setattr__(self, "dtype", as_dtype(dtype))
        object.__setattr__(self, "name", name)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def with_name(self, name: str | None) -> "TensorSpec":
        return TensorSpec(self.shape, self.dtype, name)

    def __str__(self) -> str:
        return f"{self.dtype.short}{self.shape}"

    @staticmethod
    def like(array: object, name: str | None = None) -> "TensorSpec":
        """The spec of a concrete array (numpy or any framework array with .shape/.dtype)."""
        dt = as_dtype(getattr(array, "dtype"))
        return TensorSpec(tuple(int(d) for d in getattr(array, "shape")), dt, name)


def bind_symbols(specs: Iterable[TensorSpec], shapes: Iterable[tuple], where: str = "input") -> dict:
    """Bind every symbol of ``specs`` from concrete ``shapes``; check ints and compound dims.

    A symbol is bound where it appears alone; a linear compound such as
    ``past + seq`` with exactly one unknown symbol of coefficient 1 binds it.
    Raises IRError naming the input and axis on any mismatch.
    """
    specs = list(specs)
    shapes = [tuple(s) for s in shapes]
    env: dict = {}
    pending: list = []
    for spec, shape in zip(specs, shapes):
        label = f"{where} {spec.name!r}" if spec.name else where
        if len(shape) != len(spec.shape):
            raise IRError(
                f"{label} has rank {len(shape)} but rank {len(spec.shape)} {spec.shape} was expected"
            )
        for ax, (d, n) in enumerate(zip(spec.shape, shape)):
            if isinstance(d, int):
                if d != n:
                    raise IRError(f"{label} axis {ax} has size {n} but {d} was expected")
            elif len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
                s = d.terms[0][0][0]
                if s in env and env[s] != n:
                    raise IRError(f"{label} axis {ax} has size {n} but symbol {s!r} is already {env[s]}")
                env[s] = n
            else:
                pending.append((label, ax, d, n))
    progress = True
    while pending and progress:
        progress = False
        rest = []
        for label, ax, d, n in pending:
            unknown = [s for s in d.symbols if s not in env]
            if not unknown:
                if d.evaluate(env) != n:
                    raise IRError(f"{label} axis {ax} has size {n} but {d} = {d.evaluate(env)}")
                progress = True
            elif (
                len(unknown) == 1
                and dict(d.terms).get((unknown[0],)) == 1
                and all(unknown[0] not in k or k == (unknown[0],) for k, _ in d.terms)
            ):
                partial = d - SymDim.symbol(unknown[0])
                val = n - evaluate_dim(partial, env)
                if val < 0:
                    raise IRError(f"{label} axis {ax} has size {n}, too small for {d}")
                env[unknown[0]] = val
                progress = True
            else:
                rest.append((label, ax, d, n))
        pending = rest
    if pending:
        label, ax, d, n = pending[0]
        raise IRError(
            f"{label} axis {ax}: cannot bind the symbols of {d}; give one of them its own input axis"
        )
    return env
