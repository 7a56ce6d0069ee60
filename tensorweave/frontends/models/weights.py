"""How parameters enter a traced program.

A model's parameters are a flat ``{Hugging Face name: array}`` dict. Inside a trace they become
**named constants** (``bind_params``): each backend converts a constant once, when the graph is
lowered (torch tensors captured by the generated code, jnp arrays, tf constants, ONNX initializers
named like the parameter, Flax ``params``), never per call. Bind once per trace and pass the bound
dict to every ``forward`` call of that trace (prefill and loop body share the same constants; a
``while_loop`` body captures them as operands).

To make weights program **inputs** instead (e.g. to swap weights without re-lowering), trace with
``param_specs(params)`` as extra input specs and build the dict from those inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ...ir import TracedArray
from ...ir.trace import constant, current_builder
from ...ir.types import DType, IRError, TensorSpec, from_numpy_dtype


@dataclass(frozen=True, eq=False)
class BlockQuantized:
    """A block-quantized matrix ``[rows, cols]`` (spec/ir.md, "Quantized weights"): ``packed``
    uint32 ``[rows, blocks, words]`` codes, ``scales`` / ``offsets`` float32 ``[rows, blocks]``,
    ``W[r, b*B + i] = scales[r, b] * (q[r, b, i] - zero_point) + offsets[r, b]``.

    Models read it where they read a Linear weight ``[out, in]`` or an embedding table: the linear
    becomes one ``quantized_matmul``, the lookup gathers rows of blocks then ``dequantize_blocks``.
    Anything else that asks for an array (``np.asarray``) gets the dequantised float32 matrix."""

    packed: np.ndarray
    scales: np.ndarray
    offsets: np.ndarray
    bits: int
    zero_point: int = 0

    def __post_init__(self) -> None:
        p, s, o = self.packed, self.scales, self.offsets
        if self.bits not in (4, 8) or p.dtype != np.uint32 or p.ndim != 3:
            raise IRError(
                f"BlockQuantized: packed must be uint32 [rows, blocks, words] of 4- or 8-bit codes, got {p.dtype} {p.shape}"
            )
        if s.dtype != np.float32 or o.dtype != np.float32 or s.shape != p.shape[:2] or o.shape != p.shape[:2]:
            raise IRError(
                f"BlockQuantized: scales and offsets must be float32 {p.shape[:2]}, got {s.dtype} {s.shape}, {o.dtype} {o.shape}"
            )

    @property
    def block_size(self) -> int:
        return self.packed.shape[2] * 32 // self.bits

    @property
    def shape(self) -> tuple[int, int]:
        return (self.packed.shape[0], self.packed.shape[1] * self.block_size)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    ndim = 2

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes held (codes, scales and offsets), not the dequantised size."""
        return self.packed.nbytes + self.scales.nbytes + self.offsets.nbytes

    def rows(self, index: Any) -> "BlockQuantized":
        """The rows ``index`` (a permutation or selection), still quantized."""
        return BlockQuantized(
            self.packed[index], self.scales[index], self.offsets[index], self.bits, self.zero_point
        )

    def dequantize(self) -> np.ndarray:
        from ...ir.ops.quant import dequantize_blocks

        return dequantize_blocks(self.packed, self.scales, self.offsets, self.bits, self.zero_point)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        w = self.dequantize()
        return w if dtype is None else w.astype(dtype)


@dataclass(frozen=True)
class BoundQuantized:
    """A :class:`BlockQuantized` inside a trace: its three arrays as named constants."""

    packed: Any
    scales: Any
    offsets: Any
    bits: int
    zero_point: int

    @property
    def shape(self) -> tuple:
        return (self.packed.shape[0], self.packed.shape[1] * (self.packed.shape[2] * 32 // self.bits))


def renamed(params: Mapping[str, Any], rules: Sequence[tuple[Any, str]]) -> dict[str, Any]:
    """``params`` with every name rewritten by each ``(compiled regex, replacement)`` rule in
    order (``pattern.sub``), values unchanged: a live state dict under a checkpoint's names."""
    out = {}
    for k, v in params.items():
        for pattern, repl in rules:
            k = pattern.sub(repl, k)
        out[k] = v
    return out


def _bind(v: Any, name: str) -> Any:
    if isinstance(v, (TracedArray, BoundQuantized)):
        return v
    if isinstance(v, BlockQuantized):
        return BoundQuantized(
            constant(v.packed, name=name + ".packed"),
            constant(v.scales, name=name + ".scales"),
            constant(v.offsets, name=name + ".offsets"),
            v.bits,
            v.zero_point,
        )
    return constant(np.asarray(v), name=name)


def linear(xp: Any, x: Any, w: Any) -> Any:
    """``x @ w^T`` for a Linear weight ``w [out, in]``, float or block-quantized (one
    ``quantized_matmul``)."""
    if isinstance(w, BoundQuantized):
        return xp.quantized_matmul(x, w.packed, w.scales, w.offsets, bits=w.bits, zero_point=w.zero_point)
    return xp.matmul(x, xp.permute_dims(w, (1, 0)))


def embed(xp: Any, table: Any, ids: Any) -> Any:
    """``table[ids]`` (rows of an embedding table, float or block-quantized: the rows' blocks are
    gathered, then dequantised)."""
    if not isinstance(table, BoundQuantized):
        return xp.take(table, ids, axis=0)
    flat = xp.reshape(ids, (-1,))
    rows = [xp.take(a, flat, axis=0) for a in (table.packed, table.scales, table.offsets)]
    w = xp.dequantize_blocks(*rows, bits=table.bits, zero_point=table.zero_point)
    return xp.reshape(w, (*ids.shape, table.shape[1]))


#: Linear layers that read one input (``merge_linears`` multiplies them as one product): q / k / v
#: of attention, gate / up of a gated MLP, under one module prefix.
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def _packed_rows(parts: list[np.ndarray]) -> list[np.ndarray] | None:
    """``parts`` copied into one C-contiguous buffer, one after another along the rows: the
    views of it, equal to the parts; None when they cannot share one (dtype, trailing shape)."""
    first = parts[0]
    if first.ndim < 1 or any(p.dtype != first.dtype or p.shape[1:] != first.shape[1:] for p in parts):
        return None
    buf = np.empty((sum(p.shape[0] for p in parts), *first.shape[1:]), first.dtype)
    views, start = [], 0
    for p in parts:
        view = buf[start : start + p.shape[0]]
        view[...] = p
        views.append(view)
        start += p.shape[0]
    return views


def pack_siblings(params: dict[str, Any]) -> dict[str, Any]:
    """Lay out the weights of each group of :data:`SIBLINGS` (``<prefix>.q_proj.weight``, ...)
    back to back in one buffer, in place in ``params`` (values unchanged; the old arrays are freed
    group by group). ``merge_linears`` then concatenates them as a view of that buffer instead of
    a copy: no second copy of those weights, and no copy when a program is built (SmolLM2: 277
    MB and about 0.3-0.45 s of a new process's first token). Float arrays and
    :class:`BlockQuantized` weights of one layout are packed; anything else is left as it is."""
    for group in SIBLINGS:
        suffix = f".{group[0]}.weight"
        for name in [k for k in params if k.endswith(suffix)]:
            prefix = name[: -len(suffix)]
            names = [f"{prefix}.{g}.weight" for g in group]
            ws = [params.get(n) for n in names]
            if all(isinstance(w, np.ndarray) and w.ndim == 2 and w.flags.c_contiguous for w in ws):
                views = _packed_rows(ws)  # type: ignore[arg-type]
                if views is not None:
                    params.update(zip(names, views))
            elif all(isinstance(w, BlockQuantized) for w in ws):
                qs: list[BlockQuantized] = ws  # type: ignore[assignment]
                if len({(q.bits, q.zero_point) for q in qs}) != 1:
                    continue
                arrays = [_packed_rows([getattr(q, a) for q in qs]) for a in ("packed", "scales", "offsets")]
                if all(a is not None for a in arrays):
                    params.update(
                        (n, BlockQuantized(pk, sc, of, q.bits, q.zero_point))
                        for n, q, pk, sc, of in zip(names, qs, *arrays)  # type: ignore[misc]
                    )
    return params


def bind_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Numpy parameters as named constants of the current trace (traced arrays pass through;
    a :class:`BlockQuantized` weight becomes a :class:`BoundQuantized`)."""
    if current_builder() is None:
        raise IRError("bind_params needs a running trace: call it inside the function given to tw.trace")
    return {k: _bind(v, k) for k, v in params.items()}


def _dtype(arr: np.ndarray) -> DType:
    return DType.bfloat16 if arr.dtype.name == "bfloat16" else from_numpy_dtype(arr.dtype)


def param_specs(params: Mapping[str, Any]) -> list[TensorSpec]:
    """One named ``TensorSpec`` per parameter (in the dict's order), to trace weights as inputs."""
    return [TensorSpec(tuple(np.shape(v)), _dtype(np.asarray(v)), k) for k, v in params.items()]


class ParamView(Mapping):
    """Read-only view used inside ``forward``: a numpy parameter that was not bound becomes a
    named constant on first access (bound / traced parameters pass through)."""

    def __init__(self, params: Mapping[str, Any]):
        self._params = params
        self._bound: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        v = self._params[name]
        if isinstance(v, (TracedArray, BoundQuantized)):
            return v
        if name not in self._bound:
            self._bound[name] = _bind(v, name)
        return self._bound[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)
