"""Counter-based randomness: Threefry-2x32 (20 rounds) built from uint32 integer ops.

A key is a uint32 array of shape ``[2]``. Every function is written against the
array namespace of its arguments, so inside a trace it records ordinary IR
integer ops (add, xor, shifts, or) and gives the same bits on every backend.

- ``threefry2x32(k0, k1, x0, x1)``: the Threefry-2x32-20 block function of
  Salmon et al. (2011), "Parallel random numbers: as easy as 1, 2, 3"
  (rotations 13 15 26 6 / 17 29 16 24, key parity 0x1BD11BDA, a key
  injection after every 4 rounds).
- ``random_bits(key, shape)``: element ``i`` (row-major) is word 0 of
  ``threefry(key, (i, 0))``.
- ``split(key, num)``: new key ``j`` is both words of ``threefry(key, (j, 1))``.
- ``fold_in(key, data)``: both words of ``threefry(key, (data, 2))``.
- ``uniform``: ``(bits >> 8) * 2**-24`` in [0, 1) (24 random mantissa bits, exact
  in float32), then scaled to [minval, maxval).
- ``gumbel``: ``-log(-log(u))`` with ``u = ((bits >> 8) + 0.5) * 2**-24`` in (0, 1).
- ``categorical``: ``argmax(logits + gumbel)`` (the Gumbel-max trick).
- ``normal``: Box-Muller on the two words of ``threefry(key, (i, 3))``.

Bits are identical on every backend; floats derived from them go through
``log``/``cos``, so they agree to the backends' float tolerance (spec/ir.md).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .types import DType, as_dim

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA
_U32 = 0xFFFFFFFF


def _ns(*xs: Any) -> Any:
    from .trace import TracedArray

    for x in xs:
        if isinstance(x, TracedArray):
            from . import namespace

            return namespace
    return np


def _u32(xp: Any, x: Any) -> Any:
    if xp is np:
        return (
            np.asarray(x).astype(np.uint32) if not isinstance(x, (int, np.integer)) else np.uint32(x & _U32)
        )
    return xp.astype(x, DType.uint32) if not isinstance(x, int) else xp.asarray(x & _U32, dtype=DType.uint32)


def threefry2x32(k0: Any, k1: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
    """The Threefry-2x32-20 block function on uint32 arrays (all arguments broadcast)."""
    xp = _ns(k0, k1, x0, x1)
    k0, k1, x0, x1 = (_u32(xp, v) for v in (k0, k1, x0, x1))
    with np.errstate(over="ignore"):
        ks = (k0, k1, k0 ^ k1 ^ _u32(xp, _PARITY))
        x0 = x0 + ks[0]
        x1 = x1 + ks[1]
        for block in range(5):
            for r in _ROTATIONS[block % 2]:
                x0 = x0 + x1
                x1 = (x1 << _u32(xp, r)) | (x1 >> _u32(xp, 32 - r))
                x1 = x1 ^ x0
            x0 = x0 + ks[(block + 1) % 3]
            x1 = x1 + ks[(block + 2) % 3] + _u32(xp, block + 1)
    return x0, x1


def key(seed: Any) -> Any:
    """A key from an integer seed (a Python int, or an int scalar array): [seed >> 32, seed & 0xFFFFFFFF]."""
    if isinstance(seed, (int, np.integer)):
        s = int(seed) & 0xFFFFFFFFFFFFFFFF
        return np.array([s >> 32, s & _U32], dtype=np.uint32)
    xp = _ns(seed)
    s = xp.astype(seed, DType.int64) if xp is not np else np.asarray(seed).astype(np.int64)
    hi = (s >> 32) & 0xFFFFFFFF
    lo = s & 0xFFFFFFFF
    return xp.stack([_u32(xp, hi), _u32(xp, lo)])


def _counters(xp: Any, n: Any) -> Any:
    if xp is np:
        return np.arange(n, dtype=np.uint64).astype(np.uint32)
    return xp.astype(xp.arange(n), DType.uint32)


def _size(shape: Sequence[Any]) -> Any:
    n: Any = 1
    for d in shape:
        n = n * as_dim(d)
    return n


def _block(k: Any, shape: Sequence[Any], domain: int) -> tuple[Any, Any]:
    xp = _ns(k)
    shape = tuple(shape)
    n = _size(shape)
    c = _counters(xp, n)
    a, b = threefry2x32(k[0], k[1], c, _u32(xp, domain))
    if xp is np:
        return a.reshape(shape), b.reshape(shape)
    return xp.reshape(a, shape), xp.reshape(b, shape)


def random_bits(k: Any, shape: Sequence[Any]) -> Any:
    """uint32 bits of ``shape``: word 0 of threefry(key, (i, 0)) for element i."""
    return _block(k, shape, 0)[0]


def split(k: Any, num: int = 2) -> Any:
    """``num`` new keys, shape [num, 2]."""
    xp = _ns(k)
    a, b = _block(k, (num,), 1)
    return xp.stack([a, b], axis=-1)


def fold_in(k: Any, data: Any) -> Any:
    """A new key mixing integer ``data`` into ``k``."""
    xp = _ns(k, data)
    a, b = threefry2x32(k[0], k[1], _u32(xp, data), _u32(xp, 2))
    return xp.stack([a, b])


def _float_of(xp: Any, v: Any) -> Any:
    return v.astype(np.float32) if xp is np else xp.astype(v, DType.float32)


def uniform(
    k: Any, shape: Sequence[Any], dtype: Any = DType.float32, minval: float = 0.0, maxval: float = 1.0
) -> Any:
    """Uniform floats in [minval, maxval) from 24 random bits per element."""
    xp = _ns(k)
    bits = random_bits(k, shape)
    u = _float_of(xp, bits >> _u32(xp, 8)) * np.float32(2.0**-24)
    u = u * np.float32(maxval - minval) + np.float32(minval) if (minval, maxval) != (0.0, 1.0) else u
    return (
        u
        if DType(str(dtype)) is DType.float32
        else (u.astype(DType(str(dtype)).to_numpy()) if xp is np else xp.astype(u, dtype))
    )


def gumbel(k: Any, shape: Sequence[Any], dtype: Any = DType.float32) -> Any:
    """Standard Gumbel samples -log(-log(u)), u in (0, 1)."""
    xp = _ns(k)
    bits = random_bits(k, shape)
    u = (_float_of(xp, bits >> _u32(xp, 8)) + np.float32(0.5)) * np.float32(2.0**-24)
    with np.errstate(divide="ignore"):
        g = -xp.log(-xp.log(u))
    return (
        g
        if DType(str(dtype)) is DType.float32
        else (g.astype(DType(str(dtype)).to_numpy()) if xp is np else xp.astype(g, dtype))
    )


def categorical(k: Any, logits: Any, axis: int = -1) -> Any:
    """Samples from softmax(logits) along ``axis`` (int64 indices): argmax(logits + gumbel)."""
    xp = _ns(k, logits)
    g = gumbel(k, tuple(logits.shape), DType.float32)
    if xp is np:
        return np.argmax(logits.astype(np.float32) + g, axis=axis).astype(np.int64)
    return xp.argmax(xp.astype(logits, DType.float32) + g, axis=axis)


def normal(k: Any, shape: Sequence[Any], dtype: Any = DType.float32) -> Any:
    """Standard normal samples by Box-Muller: sqrt(-2 log u1) * cos(2 pi u2)."""
    xp = _ns(k)
    a, b = _block(k, shape, 3)
    u1 = (_float_of(xp, a >> _u32(xp, 8)) + np.float32(0.5)) * np.float32(2.0**-24)
    u2 = _float_of(xp, b >> _u32(xp, 8)) * np.float32(2.0**-24)
    z = xp.sqrt(np.float32(-2.0) * xp.log(u1)) * xp.cos(np.float32(2 * math.pi) * u2)
    return (
        z
        if DType(str(dtype)) is DType.float32
        else (z.astype(DType(str(dtype)).to_numpy()) if xp is np else xp.astype(z, dtype))
    )
