"""Block-quantized weights: ``dequantize_blocks`` and ``quantized_matmul``.

A block-quantized matrix ``W [n, k]`` is stored as three arrays, one row of blocks per output row:

- ``packed`` uint32 ``[n, k / block_size, block_size * bits / 32]``: the codes ``q`` of each block,
  ``32 / bits`` per word, code ``w * 32/bits + i`` in bits ``[i * bits, (i + 1) * bits)`` of word
  ``w`` (so the words' little-endian bytes hold, for 4 bits, element ``2j`` in the low nibble of
  byte ``j`` and ``2j + 1`` in its high nibble: the layout of ONNX Runtime's ``MatMulNBits``);
- ``scales`` float ``[n, k / block_size]`` and ``offsets`` (same shape and dtype);

and means ``W[r, b * block_size + i] = scales[r, b] * (q[r, b, i] - zero_point) + offsets[r, b]``
(``zero_point`` an integer attribute). GGUF's Q4_0 is ``bits=4, zero_point=8``, offsets 0; Q4_1 is
``bits=4, zero_point=0`` with its block minimum as offset; Q8_0 is ``bits=8, zero_point=128`` on the
codes stored as ``int8 + 128``, offsets 0 (spec/ir.md, "Quantized weights").
"""

from __future__ import annotations

import numpy as np

from ..types import DType, Shape, TensorSpec, unify_dims
from .registry import AttrSpec, register, require

QUANT_BITS = (4, 8)
QUANT_ATTRS = {"bits": AttrSpec("int"), "zero_point": AttrSpec("int", 0)}


def _check_blocks(op: str, packed: TensorSpec, scales: TensorSpec, offsets: TensorSpec, attrs: dict) -> int:
    """The block size (codes per block) after checking the three arrays agree; IRError otherwise."""
    bits, zp = attrs["bits"], attrs["zero_point"]
    require(bits in QUANT_BITS, f"op {op}: bits must be 4 or 8, got {bits}")
    require(
        0 <= zp < 2**bits, f"op {op}: zero_point must be in [0, {2**bits}) for {bits}-bit codes, got {zp}"
    )
    require(packed.dtype is DType.uint32, f"op {op}: packed codes must be uint32, got {packed.dtype.value}")
    require(packed.rank == 3, f"op {op}: packed codes must be [rows, blocks, words], got rank {packed.rank}")
    require(scales.rank == 2, f"op {op}: scales must be [rows, blocks], got rank {scales.rank}")
    require(scales.dtype.is_floating, f"op {op}: scales must be floating, got {scales.dtype.value}")
    require(
        offsets.dtype == scales.dtype, f"op {op}: offsets must have the scales' dtype {scales.dtype.value}"
    )
    for a, b, what in (
        (packed.shape[0], scales.shape[0], "rows of packed and scales"),
        (packed.shape[1], scales.shape[1], "blocks of packed and scales"),
    ):
        unify_dims(a, b, f"op {op}: {what}")
    unify_dims(offsets.shape[0], scales.shape[0], f"op {op}: rows of offsets and scales")
    require(offsets.rank == 2, f"op {op}: offsets must be [rows, blocks], got rank {offsets.rank}")
    unify_dims(offsets.shape[1], scales.shape[1], f"op {op}: blocks of offsets and scales")
    words = packed.shape[2]
    require(isinstance(words, int), f"op {op}: the words per block must be a static dimension")
    return int(words) * 32 // bits


def _infer_dequantize(ins, attrs):
    packed, scales, offsets = ins
    block = _check_blocks("dequantize_blocks", packed, scales, offsets, attrs)
    blocks = packed.shape[1]
    cols = blocks * block if isinstance(blocks, int) else None
    require(cols is not None, "op dequantize_blocks: the number of blocks must be a static dimension")
    return [TensorSpec(Shape([packed.shape[0], cols]), scales.dtype)]


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """``[rows, blocks, words]`` uint32 -> ``[rows, blocks, block_size]`` codes (uint32), code
    ``w * 32/bits + i`` = ``(packed[..., w] >> (i * bits)) & (2**bits - 1)``."""
    shifts = np.arange(0, 32, bits, dtype=np.uint32)
    codes = (packed[..., None] >> shifts) & np.uint32(2**bits - 1)
    return codes.reshape(*packed.shape[:-1], packed.shape[-1] * (32 // bits))


@register("dequantize_blocks", inputs=3, attrs=QUANT_ATTRS, infer=_infer_dequantize, category="quant")
def dequantize_blocks(packed, scales, offsets, bits, zero_point=0):
    """Block dequantisation: ``W[r, b*B + i] = scales[r, b] * (q[r, b, i] - zero_point) + offsets[r, b]``
    with ``q`` the codes of ``packed`` ([rows, blocks, B*bits/32] uint32; code ``w*32/bits + i`` in
    bits ``[i*bits, (i+1)*bits)`` of word ``w``) and ``B`` the block size.
    Computed in the scales' dtype (one product and one sum per element, in that order); result
    ``[rows, blocks * B]``."""
    q = unpack_codes(packed, bits).astype(scales.dtype)
    w = scales[..., None] * (q - scales.dtype.type(zero_point)) + offsets[..., None]
    return w.reshape(w.shape[0], -1).astype(scales.dtype)


def _infer_qmatmul(ins, attrs):
    x, packed, scales, offsets = ins
    block = _check_blocks("quantized_matmul", packed, scales, offsets, attrs)
    require(
        x.dtype == scales.dtype,
        f"op quantized_matmul: x ({x.dtype.value}) and scales ({scales.dtype.value}) dtypes differ",
    )
    require(x.rank >= 1, "op quantized_matmul: x must have rank >= 1")
    blocks = packed.shape[1]
    require(isinstance(blocks, int), "op quantized_matmul: the number of blocks must be a static dimension")
    unify_dims(x.shape[-1], blocks * block, "op quantized_matmul: x's last axis and the weight's columns")
    return [TensorSpec(Shape([*x.shape[:-1], packed.shape[0]]), x.dtype)]


@register("quantized_matmul", inputs=4, attrs=QUANT_ATTRS, infer=_infer_qmatmul, category="quant")
def quantized_matmul(x, packed, scales, offsets, bits, zero_point=0):
    """``x @ W^T`` with ``W = dequantize_blocks(packed, scales, offsets, bits, zero_point)`` ([n, k]):
    exactly the dequantised matrix, then ``matmul`` (x [..., k] -> [..., n]). A backend may use a
    kernel that quantises x per block for the dot products (ONNX Runtime's MatMulNBits at
    accuracy level 4, as llama.cpp does): its results then differ by the activation rounding,
    within the tolerance spec/ir.md states for this op."""
    w = dequantize_blocks(packed, scales, offsets, bits, zero_point)
    return np.matmul(x, w.T).astype(x.dtype)
