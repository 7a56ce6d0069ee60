"""Runtime helpers of the torch backend: the functions the generated code calls where one torch
call does not give the reference semantics, the namespace that code runs in (:data:`RUNTIME`),
and how IR dtypes are carried in torch tensors (spec/backends-torch.md).

Every helper is a plain function over torch tensors; the generated source calls it by its name
here (``mul_u32(a, b)``), so a helper's name is part of the generated code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ...ir.types import DType
from ..base import carried_dtype

MASK32 = 0xFFFFFFFF

#: How each IR dtype is carried inside a lowered program (uint32 as int64 holding [0, 2**32)).
TORCH_DTYPES = {dt: getattr(torch, carried_dtype(dt).value) for dt in DType}
#: The IR dtype of a native torch tensor (torch.uint32 is accepted at the boundary).
FROM_TORCH = {getattr(torch, dt.value): dt for dt in DType}
#: float dtypes computed in float32 and rounded back per op
LOW = (DType.float16, DType.bfloat16)


# ============================================================================ helpers of the generated code


def gelu(x: Any, approximate: str) -> Any:
    """gelu with the IR's values at the infinities (+inf -> +inf, -inf -> nan) on every CPU."""
    y = torch.nn.functional.gelu(x, approximate=approximate)
    return torch.where(torch.isinf(x), torch.where(x > 0, x, torch.nan), y)


def mul_u32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(a * b) mod 2**32 for int64 tensors holding [0, 2**32), with no int64 overflow:
    a*b = a*lo + 2**16 * a*hi (b = lo + 2**16 hi); a*lo < 2**48 and only the low 16 bits of a*hi
    survive the shift, so every intermediate stays below 2**49."""
    return (a * (b & 0xFFFF) + (((a * (b >> 16)) & 0xFFFF) << 16)) & MASK32


def pow_u32(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x ** y mod 2**32 by square-and-multiply over the 32 exponent bits (exact)."""
    result = torch.ones(torch.broadcast_shapes(x.shape, y.shape), dtype=torch.int64)
    base, e = x, y
    for _ in range(32):
        result = torch.where((e & 1) == 1, mul_u32(result, base), result)
        base = mul_u32(base, base)
        e = e >> 1
    return result


def prod_u32(x: torch.Tensor, axes: tuple, keepdims: bool) -> torch.Tensor:
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
        y = mul_u32(y[..., :half], y[..., half:])
    y = (
        y.reshape([x.shape[i] for i in keep])
        if n
        else torch.ones([x.shape[i] for i in keep], dtype=torch.int64)
    )
    if keepdims:
        y = y.reshape([1 if i in axes else x.shape[i] for i in range(x.dim())])
    return y


def matmul_u32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b mod 2**32, splitting b into 16-bit halves (exact while the contracted size < 2**15)."""
    return (torch.matmul(a, b & 0xFFFF) + ((torch.matmul(a, b >> 16) & 0xFFFF) << 16)) & MASK32


def einsum_u32(subscripts: str, *xs: torch.Tensor) -> torch.Tensor:
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


def nonzero_divisor(y: torch.Tensor) -> torch.Tensor:
    """Integer divisor with 0 replaced by 1 (the reference's choice for the unspecified case)."""
    return torch.where(y == 0, torch.ones_like(y), y)


def sign_f(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(nan) = nan (torch.sign gives 0)."""
    return torch.where(torch.isnan(x), x, torch.sign(x))


def wrap_i32(x: torch.Tensor) -> torch.Tensor:
    """int64 -> int32 modulo 2**32 (two's complement), without relying on a narrowing cast."""
    return (((x + 2**31) & MASK32) - 2**31).to(torch.int32)


def float_to_int(x: torch.Tensor, dst: torch.dtype) -> torch.Tensor:
    """Truncate toward zero; nan/inf -> 0; clip to the target range (the reference's choices)."""
    t = torch.trunc(x.double()).nan_to_num(0.0, 0.0, 0.0)
    info = torch.iinfo(dst)
    return t.clamp(info.min, info.max).to(dst)


def float_to_u32(x: torch.Tensor) -> torch.Tensor:
    """Truncate toward zero, nan/inf -> 0, then wrap modulo 2**32 (exact fmod in float64)."""
    t = torch.trunc(x.double()).nan_to_num(0.0, 0.0, 0.0)
    return torch.remainder(t, 2.0**32).to(torch.int64)


def f64_to_f16(x: torch.Tensor) -> torch.Tensor:
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


def argext(x: torch.Tensor, axis: int, keepdims: bool, largest: bool) -> torch.Tensor:
    """argmax/argmin of a float tensor: the first index on ties, the first nan wins."""
    nan = torch.isnan(x)
    best = torch.argmax(x, dim=axis, keepdim=True) if largest else torch.argmin(x, dim=axis, keepdim=True)
    first_nan = torch.argmax(nan.to(torch.uint8), dim=axis, keepdim=True)
    out = torch.where(nan.any(dim=axis, keepdim=True), first_nan, best)
    return out if keepdims else out.squeeze(axis)


def softmax(v: torch.Tensor, axis: int) -> torch.Tensor:
    """exp(v - m) / sum(exp(v - m)), m = max(v) replaced by 0 where infinite (the reference)."""
    m = torch.amax(v, dim=axis, keepdim=True)
    e = torch.exp(v - torch.where(torch.isfinite(m), m, torch.zeros_like(m)))
    return e / torch.sum(e, dim=axis, keepdim=True)


def log_softmax(v: torch.Tensor, axis: int) -> torch.Tensor:
    """s - log(sum(exp(s))) with s = v - m, m as in :func:`softmax`."""
    m = torch.amax(v, dim=axis, keepdim=True)
    s = v - torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return s - torch.log(torch.sum(torch.exp(s), dim=axis, keepdim=True))


def mm_nk(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w`` for a ``w [K, N]`` whose memory is ``[N, K]`` row-major (``w = base.t()``), as
    ``(base @ x2^T)^T``: CPU BLAS runs that 2-3x faster than ``x @ base^T`` for a few rows."""
    k, n = w.shape
    out = torch.mm(w.t(), x.reshape(-1, k).t()).t()
    return out.reshape(tuple(x.shape[:-1]) + (n,))


def mm_split(x: torch.Tensor, w: torch.Tensor, parts: int) -> torch.Tensor:
    """``x @ w`` for one row ``x [..., K]`` and a ``w [K, N]`` whose memory is ``[N, K]``
    row-major (``w = base.t()``): ``base`` split into ``parts`` blocks of ``N / parts`` rows, all
    multiplied by ``x`` in one ``bmm`` (torch runs a one-row ``mm`` on one thread and a batch on
    all of them: decode-step products 1.5x faster on a 2-core VM)."""
    k, n = w.shape
    col = x.reshape(-1, k).t()  # [K, 1]
    blocks = w.t().reshape(parts, n // parts, k)
    # col's [K, 1] strides (1, K) pick torch's fast batched kernel; a reshape(1, K, 1) of x
    # (strides (K, 1, 1)) measured 5x slower
    out = torch.bmm(blocks, col.unsqueeze(0).expand(parts, k, col.shape[1]))  # [parts, N / parts, 1]
    return out.reshape(n, -1).t().reshape(tuple(x.shape[:-1]) + (n,))


def top_k(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
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


def take(x: torch.Tensor, idx: torch.Tensor, axis: int) -> torch.Tensor:
    """np.take: out shape x.shape[:axis] + idx.shape + x.shape[axis+1:]."""
    flat = torch.index_select(x, axis, idx.reshape(-1))
    return flat.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1 :]))


def dslice(x: torch.Tensor, starts: tuple, sizes: tuple) -> torch.Tensor:
    """Eager dynamic_slice: starts read as ints and clamped to [0, dim - size] (XLA); a view."""
    y = x
    for axis, (s, n) in enumerate(zip(starts, sizes)):
        d = x.shape[axis]
        if n != d:
            y = y.narrow(axis, min(max(int(s), 0), d - n), n)
    return y


def dupdate(x: torch.Tensor, u: torch.Tensor, starts: tuple) -> torch.Tensor:
    """Eager dynamic_update_slice: a copy of x with the clamped window replaced by u."""
    out = x.clone()
    window = tuple(
        slice(c, c + n)
        for c, n in ((min(max(int(s), 0), d - n), n) for s, n, d in zip(starts, u.shape, x.shape))
    )
    out[window] = u
    return out


def window(starts: tuple, sizes: tuple, shape: tuple) -> list:
    """Export flavour: per axis, the clamped window's index tensor (no data-dependent Python)."""
    rank = len(shape)
    index = []
    for axis, (s, n, d) in enumerate(zip(starts, sizes, shape)):
        start = torch.clamp(s.to(torch.int64), min=0, max=d - n)
        view = [1] * rank
        view[axis] = n
        index.append((start + torch.arange(n)).reshape(view))
    return index


def dslice_t(x: torch.Tensor, starts: tuple, sizes: tuple) -> torch.Tensor:
    """Export dynamic_slice: gather the clamped window with index tensors."""
    y = x
    for axis, ix in enumerate(window(starts, sizes, tuple(x.shape))):
        y = torch.index_select(y, axis, ix.reshape(-1))
    return y


def dupdate_t(x: torch.Tensor, u: torch.Tensor, starts: tuple) -> torch.Tensor:
    """Export dynamic_update_slice: index_put over the clamped window."""
    return torch.index_put(x, tuple(window(starts, tuple(u.shape), tuple(x.shape))), u)


def dequantize_blocks(
    packed: torch.Tensor, scales: torch.Tensor, offsets: torch.Tensor, bits: int, zero_point: int
) -> torch.Tensor:
    """``scales * (codes - zero_point) + offsets`` per block (codes of the uint32 words, carried
    int64, ``32/bits`` per word, lowest bits first) -> ``[rows, blocks * block]``."""
    shifts = torch.arange(0, 32, bits, dtype=torch.int64, device=packed.device)
    codes = ((packed.unsqueeze(-1) >> shifts) & (2**bits - 1)).reshape(*packed.shape[:-1], -1)
    w = scales.unsqueeze(-1) * (codes.to(scales.dtype) - zero_point) + offsets.unsqueeze(-1)
    return w.reshape(w.shape[0], -1)


#: every helper above, by the name the generated code calls it
HELPERS = (
    gelu,
    mul_u32,
    pow_u32,
    prod_u32,
    matmul_u32,
    einsum_u32,
    nonzero_divisor,
    sign_f,
    wrap_i32,
    float_to_int,
    float_to_u32,
    f64_to_f16,
    argext,
    softmax,
    log_softmax,
    mm_nk,
    mm_split,
    top_k,
    take,
    dslice,
    dupdate,
    window,
    dslice_t,
    dupdate_t,
    dequantize_blocks,
)
#: the namespace the generated code runs in: the helpers, ``torch``, ``math`` and ``MASK32``
RUNTIME: dict[str, Any] = {fn.__name__: fn for fn in HELPERS}
RUNTIME.update(torch=torch, math=math, MASK32=MASK32)


# ============================================================================ arrays at the boundary


def array_to_torch(arr: np.ndarray, dt: DType, copy: bool = False) -> torch.Tensor:
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


def tensor_to_numpy(t: torch.Tensor, dt: DType) -> np.ndarray:
    t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    if dt is DType.uint32:
        return t.numpy().astype(np.uint32)
    if dt is DType.bfloat16:
        return t.view(torch.uint16).numpy().view(dt.to_numpy())
    return t.numpy()
