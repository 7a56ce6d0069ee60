"""Attention shared by the models, written once against ``xp`` (caches: see ``cache.py``).

``attention_mask`` is ``[b, T]`` (1 = real token, 0 = padding) over the key positions
(``max_length`` for the static cache, ``past + seq`` for the growing one, ``seq`` without a cache).
Query ``i`` sits at key position ``offset + i``; with ``causal`` it may attend to keys
``j <= offset + i`` with ``mask[j] == 1``, otherwise to every ``j`` with ``mask[j] == 1``. A
sliding ``window`` (causal only) also hides keys with ``(offset + i) - j >= window``.
Masked scores are the dtype's minimum (as Hugging Face does), so fully-masked padding rows stay
finite (a uniform average) instead of nan.
"""

from __future__ import annotations

import math
from typing import Any

from ...ir import array_namespace
from .cache import reorder_cache, reorder_static_cache, static_cache, update_cache  # noqa: F401 (re-exported)


def position_ids_from_mask(attention_mask: Any, offset: Any = 0, length: Any = None) -> Any:
    """Hugging Face's rule ``cumsum(mask) - 1`` with padding positions set to 1, so a left-padded
    row starts at position 0 on its first real token; returns the ``length`` columns from
    ``offset`` (all columns by default)."""
    xp = array_namespace(attention_mask)
    pos = xp.cumulative_sum(xp.astype(attention_mask, xp.int64), axis=-1) - 1
    pos = xp.where(attention_mask == 0, xp.ones_like(pos), pos)
    if length is None:
        return pos
    b = attention_mask.shape[0]
    return xp.dynamic_slice(pos, [0, offset], (b, length))


def attend(
    q: Any,
    k: Any,
    v: Any,
    attention_mask: Any,
    offset: Any,
    scale: float,
    causal: bool = True,
    window: int | None = None,
    softcap: float | None = None,
    bias: Any = None,
) -> Any:
    """``softmax(where(allowed, q k^T * scale (+ bias), min)) v`` with padding (and causal) masking.

    q: [b, h, s, d]; k, v: [b, h, T, d]; attention_mask: [b, T]; offset: position of query 0;
    ``window``: with ``causal``, key ``j`` is visible to query position ``p`` only when
    ``p - j < window`` (a sliding window of ``window`` keys, the query's own included);
    ``softcap`` ``c``: the scores become ``c * tanh(scores / c)`` before masking (gemma2);
    ``bias``: an additive score bias broadcasting to ``[b, h, s, T]`` (ALiBi's per-head
    ``[b, h, 1, T]``), added after the scale; None leaves the scores as they are.

    Grouped-query attention: ``k`` and ``v`` may have ``kv`` heads with ``h = g * kv``; query head
    ``j`` attends with key/value head ``j // g``, read once per group, never copied ``g`` times:
    with a static query length (a decode step) the group's queries are one ``[g * s, d]`` matrix
    per key/value head; otherwise ``q`` is viewed as ``[b, kv, g, s, d]`` against keys broadcast
    over the group axis (no product of symbolic sizes, which torch.export cannot bound)."""
    xp = array_namespace(q)
    b, h, s, d = q.shape
    kvh, t = k.shape[1], k.shape[2]
    kt = xp.permute_dims(k, (0, 1, 3, 2))
    if kvh != h:
        scores = xp.reshape(xp.matmul(_grouped(xp, q, kvh), _group_axis(xp, kt, s)), (b, h, s, t)) * scale
    else:
        scores = xp.matmul(q, kt) * scale
    if bias is not None:
        scores = scores + bias
    if softcap is not None:
        scores = xp.tanh(scores / softcap) * softcap
    allowed = attention_mask[:, None, None, :] != 0
    if causal:
        qpos = xp.arange(q.shape[2])[:, None] + offset
        kpos = xp.arange(k.shape[2])[None, :]
        visible = kpos <= qpos
        if window is not None:
            visible = visible & (qpos - kpos < window)
        allowed = visible[None, None, :, :] & allowed
    scores = xp.where(allowed, scores, xp.full_like(scores, xp.finfo(scores.dtype).min))
    probs = xp.softmax(scores, axis=-1)
    if kvh != h:
        out = xp.matmul(_grouped(xp, probs, kvh), _group_axis(xp, v, s))
        return xp.reshape(out, (b, h, s, v.shape[3]))
    return xp.matmul(probs, v)


def _grouped(xp: Any, x: Any, kv_heads: int) -> Any:
    """``[b, h, s, n]`` as ``[b, kv, g * s, n]`` (static ``s``) or ``[b, kv, g, s, n]``."""
    b, h, s, n = x.shape
    g = h // kv_heads
    return xp.reshape(x, (b, kv_heads, g * s, n) if isinstance(s, int) else (b, kv_heads, g, s, n))


def _group_axis(xp: Any, kv: Any, s: Any) -> Any:
    """Keys / values ``[b, kv, m, n]`` as they meet :func:`_grouped` queries: unchanged for a static
    query length, else with a broadcast group axis ``[b, kv, 1, m, n]``."""
    return kv if isinstance(s, int) else xp.expand_dims(kv, axis=2)


def split_heads(x: Any, heads: int, head_dim: int) -> Any:
    """``[b, s, heads * head_dim] -> [b, heads, s, head_dim]``."""
    xp = array_namespace(x)
    b, s = x.shape[0], x.shape[1]
    return xp.permute_dims(xp.reshape(x, (b, s, heads, head_dim)), (0, 2, 1, 3))


def merge_heads(x: Any) -> Any:
    """``[b, heads, s, head_dim] -> [b, s, heads * head_dim]``."""
    xp = array_namespace(x)
    b, h, s, d = x.shape
    return xp.reshape(xp.permute_dims(x, (0, 2, 1, 3)), (b, s, h * d))


def default_scale(head_dim: int) -> float:
    """``1 / sqrt(head_dim)``."""
    return 1.0 / math.sqrt(head_dim)
