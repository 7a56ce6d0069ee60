"""Attention and KV caches shared by the decoder models, written once against ``xp``.

Three cache modes, one function:

- no cache: keys/values are the current tokens;
- **static** cache ``{"key": [L, b, kvh, max_len, hd], "value": ...}`` preallocated to
  ``max_len`` and written with ``dynamic_update_slice`` at ``cache_position`` (fused loops);
- **growing** cache: per layer ``(key, value)`` of ``[b, kvh, past + seq, hd]`` (Hugging Face's
  PyTorch layout; step-wise use and ONNX-with-past), concatenated.

``attention_mask`` is ``[b, total]`` (1 = real token, 0 = padding) over the key positions
(``max_len`` for the static cache, ``past + seq`` otherwise). Query ``i`` sits at key position
``offset + i`` and may attend to keys ``j <= offset + i`` with ``mask[j] == 1``. Masked scores are
the dtype's minimum (as Hugging Face does), so fully-masked padding rows stay finite.
"""
from __future__ import annotations

import math
from typing import Any

from ...ir import array_namespace


def position_ids_from_mask(attention_mask: Any, offset: Any, length: int) -> Any:
    """HF's rule: cumsum(mask) - 1, padding set to 1; the ``length`` positions from ``offset``."""
    xp = array_namespace(attention_mask)
    pos = xp.cumulative_sum(xp.astype(attention_mask, xp.int64), axis=-1) - 1
    pos = xp.where(attention_mask == 0, xp.ones_like(pos), pos)
    b = attention_mask.shape[0]
    return xp.dynamic_slice(pos, [0, offset], (b, length))


def attend(q: Any, k: Any, v: Any, attention_mask: Any, offset: Any, scale: float) -> Any:
    """softmax(q k^T * scale + mask) v with causal + padding masking.

    q: [b, h, s, d]; k, v: [b, h, T, d]; attention_mask: [b, T]; offset: position of query 0."""
    xp = array_namespace(q)
    s = q.shape[2]
    T = k.shape[2]
    scores = xp.matmul(q, xp.permute_dims(k, (0, 1, 3, 2))) * scale
    qpos = xp.arange(s)[:, None] + offset
    kpos = xp.arange(T)[None, :]
    allowed = (kpos <= qpos)[None, None, :, :] & (attention_mask[:, None, None, :] != 0)
    scores = xp.where(allowed, scores, xp.full_like(scores, xp.finfo(scores.dtype).min))
    return xp.matmul(xp.softmax(scores, axis=-1), v)


def update_cache(cache: Any, layer: int, k: Any, v: Any, offset: Any) -> tuple[Any, Any, Any]:
    """Write k, v ([b, kvh, s, d]) for ``layer``; returns (keys, values, new cache)."""
    xp = array_namespace(k)
    if cache is None:
        return k, v, None
    if isinstance(cache, dict):  # static
        kk = xp.dynamic_update_slice(cache["key"], k[None], [layer, 0, 0, offset, 0])
        vv = xp.dynamic_update_slice(cache["value"], v[None], [layer, 0, 0, offset, 0])
        return kk[layer], vv[layer], {"key": kk, "value": vv}
    past_k, past_v = cache[layer]  # growing
    keys = xp.concat([past_k, k], axis=2)
    values = xp.concat([past_v, v], axis=2)
    new = list(cache)
    new[layer] = (keys, values)
    return keys, values, new


def static_cache(xp: Any, layers: int, batch: Any, kv_heads: int, max_len: int, head_dim: int, dtype: Any) -> dict:
    shape = (layers, batch, kv_heads, max_len, head_dim)
    return {"key": xp.zeros(shape, dtype=dtype), "value": xp.zeros(shape, dtype=dtype)}


def reorder_static_cache(cache: dict, rows: Any) -> dict:
    """Gather batch rows (beam search) of a static cache."""
    xp = array_namespace(cache["key"])
    return {k: xp.take(v, rows, axis=1) for k, v in cache.items()}


def split_heads(x: Any, heads: int, head_dim: int) -> Any:
    xp = array_namespace(x)
    b, s = x.shape[0], x.shape[1]
    return xp.permute_dims(xp.reshape(x, (b, s, heads, head_dim)), (0, 2, 1, 3))


def merge_heads(x: Any) -> Any:
    xp = array_namespace(x)
    b, h, s, d = x.shape
    return xp.reshape(xp.permute_dims(x, (0, 2, 1, 3)), (b, s, h * d))


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)
