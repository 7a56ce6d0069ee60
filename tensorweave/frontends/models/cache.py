"""Key/value caches of the decoder models, in two layouts (written once against ``xp``).

- **growing**: a list with one ``(key, value)`` pair per layer, each ``[batch, kv_heads, past, head_dim]``
  (Hugging Face's PyTorch layout). A step appends its ``seq`` new positions (``concat`` on axis 2),
  so the cache grows to ``past + seq``. For step-wise use and ONNX-with-past signatures. An empty
  cache has ``past = 0``.
- **static**: ``{"key": [...], "value": [...]}``, one ``[batch, kv_heads, max_length, head_dim]``
  array per layer, preallocated (zeros). A step writes its keys/values at the runtime position
  ``offset`` with ``dynamic_update_slice``; shapes never change, so the cache can be the state of
  a ``while_loop`` (fused decoding). Positions not written yet are never attended: the causal
  rule (key position <= query position) excludes them.

``update_cache(cache, layer, k, v, offset)`` returns the keys and values the layer attends over
and the new cache; ``cache=None`` means no cache (keys/values are the current tokens).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace


def static_cache(
    xp: Any, layers: int, batch: Any, kv_heads: int, max_len: int, head_dim: int, dtype: Any
) -> dict:
    """Zeros ``{"key": [L x [b, kvh, max_len, hd]], "value": [...]}``."""
    shape = (batch, kv_heads, max_len, head_dim)
    return {
        "key": [xp.zeros(shape, dtype=dtype) for _ in range(layers)],
        "value": [xp.zeros(shape, dtype=dtype) for _ in range(layers)],
    }


def growing_cache(xp: Any, layers: int, batch: Any, kv_heads: int, head_dim: int, dtype: Any) -> list:
    """An empty growing cache: per layer ``(key, value)`` of ``[b, kvh, 0, hd]``."""
    shape = (batch, kv_heads, 0, head_dim)
    return [(xp.zeros(shape, dtype=dtype), xp.zeros(shape, dtype=dtype)) for _ in range(layers)]


def is_static(cache: Any) -> bool:
    return isinstance(cache, dict)


def update_cache(cache: Any, layer: int, k: Any, v: Any, offset: Any) -> tuple[Any, Any, Any]:
    """Store k, v (``[b, kvh, s, hd]``) of ``layer`` at positions ``offset .. offset + s - 1``.

    Returns ``(keys, values, new_cache)``: the ``[b, kvh, T, hd]`` arrays to attend over
    (``T = s`` without a cache, ``max_length`` static, ``past + s`` growing)."""
    if cache is None:
        return k, v, None
    xp = array_namespace(k)
    if is_static(cache):
        keys = xp.dynamic_update_slice(cache["key"][layer], k, [0, 0, offset, 0])
        values = xp.dynamic_update_slice(cache["value"][layer], v, [0, 0, offset, 0])
        new = {"key": list(cache["key"]), "value": list(cache["value"])}
        new["key"][layer], new["value"][layer] = keys, values
        return keys, values, new
    past_k, past_v = cache[layer]
    keys = xp.concat([past_k, k], axis=2)
    values = xp.concat([past_v, v], axis=2)
    new = list(cache)
    new[layer] = (keys, values)
    return keys, values, new


def reorder_cache(cache: Any, rows: Any) -> Any:
    """Gather batch ``rows`` (beam search) of either layout."""
    if is_static(cache):
        xp = array_namespace(cache["key"][0])
        return {name: [xp.take(a, rows, axis=0) for a in arrays] for name, arrays in cache.items()}
    xp = array_namespace(cache[0][0])
    return [(xp.take(k, rows, axis=0), xp.take(v, rows, axis=0)) for k, v in cache]


reorder_static_cache = reorder_cache


def seq2seq_cache(
    encoder_hidden_states: Any,
    layers: int,
    heads: int,
    head_dim: int,
    cross: Any,
    layout: str = "growing",
    max_length: int | None = None,
    what: str = "encoder-decoder",
) -> dict:
    """An encoder-decoder cache: ``{"self": <empty growing cache, or static of max_length
    positions>, "cross": cross}`` (``cross``: the cross-attention keys/values of the encoder
    output), with the batch and dtype of ``encoder_hidden_states``. T5, the BART family and
    Whisper share it; ``what`` names the model in errors."""
    xp = array_namespace(encoder_hidden_states)
    b, dt = encoder_hidden_states.shape[0], encoder_hidden_states.dtype
    if layout == "growing":
        self_cache: Any = growing_cache(xp, layers, b, heads, head_dim, dt)
    elif layout == "static":
        if not isinstance(max_length, int) or max_length <= 0:
            raise ValueError(f"a static {what} cache needs a positive int max_length, got {max_length!r}")
        self_cache = static_cache(xp, layers, b, heads, max_length, head_dim, dt)
    else:
        raise ValueError(f"unknown cache layout {layout!r}; use 'growing' or 'static'")
    return {"self": self_cache, "cross": cross}
