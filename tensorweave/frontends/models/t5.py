"""T5 encoder-decoder (``seq2seq-lm``) and its variants mT5 and LongT5, written once against ``xp``.

Every linear is ``x @ W^T`` without bias (``W: [out, in]``); every norm is T5's LayerNorm
``norm(x) = w * x / sqrt(mean(x^2) + eps)`` (RMS, no mean subtraction, no bias).

- **Encoder**: ``h = shared[ids]``; per block ``h += o(attn(norm(h)))`` (bidirectional, padding
  keys masked), ``h += ff(norm(h))``; ``enc = norm(h)``.
- **Decoder**: ``h = shared[dec_ids]``; per block ``h += o(self_attn(norm(h)))`` (causal),
  ``h += o(cross_attn(norm(h), enc))`` (encoder padding keys masked), ``h += ff(norm(h))``;
  ``out = norm(h)``; ``logits = (out * d_model**-0.5 if scale_decoder_outputs else out) @ head^T``
  with ``head = shared`` when ``tie_word_embeddings`` else ``lm_head``.
- ``ff(x) = wo(act(wi(x)))`` or, gated, ``wo(act(wi_0(x)) * wi_1(x))``.
- Attention is **unscaled**: ``softmax(where(allowed, q k^T + bias, min)) v``; ``bias`` is the
  relative position bias of the first block of each stack (``relative_attention_bias[bucket]``,
  ``[1, heads, q, k]``), reused by every block of that stack; cross-attention has no bias.
- Relative position buckets (Mesh TensorFlow's rule) for ``r = key_pos - query_pos``:
  bidirectional (encoder) ``n = num_buckets/2`` with ``+n`` when ``r > 0`` and distance ``|r|``;
  causal (decoder) ``n = num_buckets`` and distance ``max(-r, 0)``. A distance ``a < n/2`` is its
  own bucket, otherwise ``min(n/2 + trunc(log(a / (n/2)) / log(max_distance / (n/2)) * (n - n/2)),
  n - 1)`` computed in float32. Distances are clamped at ``max_distance`` (every larger one falls
  in bucket ``n - 1``), so the buckets of ``0 .. max_distance`` are one table built at trace time
  and looked up with ``take``: identical integers on every backend.

Variants (``config.T5_VARIANT_CONFIGS``): **mT5** is a config (T5 v1.1 numerics); **LongT5**
replaces the encoder self-attention (checkpoint name ``LocalSelfAttention`` or
``TransientGlobalSelfAttention``; the decoder is T5's):

- ``local``: query ``i`` attends to the real keys ``j`` with ``|j - i| <= local_radius``, with
  the encoder's relative bias (one masked ``[s, s]`` attention, equal to Hugging Face's blocks of
  ``local_radius + 1``).
- ``transient-global``: the same keys plus one global key per block of ``global_block_size``
  tokens. Real token ``i`` belongs to block ``i // global_block_size``, except that the tokens after
  the row's last complete block join it (padding: none). Global token ``g`` is
  ``global_input_layer_norm(sum of the block's normed inputs)`` projected by the layer's ``k`` /
  ``v``; the score of query ``i`` on it has the bias ``global_relative_attention_bias[bucket(g -
  block(i))]`` (bidirectional buckets, block 0's table). Global keys are laid out for ``g = 0 ..
  s - 1`` and those past the row's last block are masked, so no shape depends on ``s //
  global_block_size``.

Caches (``decode``'s ``cache``): ``{"self": <a cache.py cache>, "cross": [(key, value) per decoder
layer] or None}``. ``"self"`` is growing (``[b, heads, past + s, d_kv]``, concat) or static
(``[b, heads, max_length, d_kv]``, written with ``dynamic_update_slice`` at ``offset``);
``"cross"`` holds the encoder output's keys/values ``[b, heads, enc_seq, d_kv]``, computed once
(by ``init_cache`` or the first ``decode`` call) and read by every later step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...ir import array_namespace
from . import cache as kv_cache
from .attention import merge_heads, split_heads
from .config import T5Config
from .gpt2 import activation
from .weights import ParamView

BASE_PREFIX = ""
# tied copies of ``shared.weight`` in state dicts, and a tensor old checkpoints carry that no layer reads
IGNORED_SUFFIXES = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "EncDecAttention.relative_attention_bias.weight",
)
HEADS = ("seq2seq-lm",)
#: encoder self-attention kind -> its module name in checkpoints
ENCODER_ATTENTION_NAMES = {
    "full": "SelfAttention",
    "local": "LocalSelfAttention",
    "transient-global": "TransientGlobalSelfAttention",
}


def _ff_shapes(cfg: T5Config, p: str) -> dict[str, tuple]:
    d, ff = cfg.d_model, cfg.d_ff
    if cfg.is_gated_act:
        return {
            p + "DenseReluDense.wi_0.weight": (ff, d),
            p + "DenseReluDense.wi_1.weight": (ff, d),
            p + "DenseReluDense.wo.weight": (d, ff),
            p + "layer_norm.weight": (d,),
        }
    return {
        p + "DenseReluDense.wi.weight": (ff, d),
        p + "DenseReluDense.wo.weight": (d, ff),
        p + "layer_norm.weight": (d,),
    }


def _attn_shapes(cfg: T5Config, p: str) -> dict[str, tuple]:
    d, inner = cfg.d_model, cfg.num_heads * cfg.d_kv
    return {
        p + "q.weight": (inner, d),
        p + "k.weight": (inner, d),
        p + "v.weight": (inner, d),
        p + "o.weight": (d, inner),
    }


def encoder_attention_kind(cfg: T5Config) -> str:
    """``"full"`` (t5, mt5) or LongT5's ``encoder_attention_type`` (``"local"``,
    ``"transient-global"``)."""
    return str(getattr(cfg, "encoder_attention_type", "full"))


def _encoder_attention_name(cfg: T5Config) -> str:
    """The encoder self-attention module's checkpoint name."""
    return ENCODER_ATTENTION_NAMES[encoder_attention_kind(cfg)]


def parameter_shapes(cfg: T5Config) -> dict[str, tuple]:
    """Hugging Face name (``T5ForConditionalGeneration`` and its variants) -> shape of every
    parameter read."""
    d = cfg.d_model
    shapes: dict[str, tuple] = {"shared.weight": (cfg.vocab_size, d)}
    bias = (cfg.relative_attention_num_buckets, cfg.num_heads)
    att = _encoder_attention_name(cfg)
    tg = encoder_attention_kind(cfg) == "transient-global"
    for i in range(cfg.num_layers):
        p = f"encoder.block.{i}.layer."
        shapes.update(_attn_shapes(cfg, p + f"0.{att}."))
        if i == 0:
            shapes[p + f"0.{att}.relative_attention_bias.weight"] = bias
            if tg:
                shapes[p + f"0.{att}.global_relative_attention_bias.weight"] = bias
        if tg:
            shapes[p + f"0.{att}.global_input_layer_norm.weight"] = (d,)
        shapes[p + "0.layer_norm.weight"] = (d,)
        shapes.update(_ff_shapes(cfg, p + "1."))
    shapes["encoder.final_layer_norm.weight"] = (d,)
    for i in range(cfg.num_decoder_layers):
        p = f"decoder.block.{i}.layer."
        shapes.update(_attn_shapes(cfg, p + "0.SelfAttention."))
        if i == 0:
            shapes[p + "0.SelfAttention.relative_attention_bias.weight"] = bias
        shapes[p + "0.layer_norm.weight"] = (d,)
        shapes.update(_attn_shapes(cfg, p + "1.EncDecAttention."))
        shapes[p + "1.layer_norm.weight"] = (d,)
        shapes.update(_ff_shapes(cfg, p + "2."))
    shapes["decoder.final_layer_norm.weight"] = (d,)
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size, d)
    return shapes


# ------------------------------------------------------------------ relative position bias
def bucket_table(num_buckets: int, max_distance: int) -> np.ndarray:
    """int64 ``[max_distance + 1]``: the bucket of each distance ``0 .. max_distance`` for ``n =
    num_buckets`` buckets of one direction (float32 arithmetic, as Hugging Face computes it)."""
    exact = num_buckets // 2
    dist = np.arange(max_distance + 1)
    with np.errstate(divide="ignore"):
        ratio = np.log(np.maximum(dist, 1).astype(np.float32) / np.float32(exact))
    large = exact + (
        ratio / np.float32(math.log(max_distance / exact)) * np.float32(num_buckets - exact)
    ).astype(np.int64)
    large = np.minimum(large, num_buckets - 1)
    return np.where(dist < exact, dist, large).astype(np.int64)


def relative_position_bucket(
    relative_position: Any, bidirectional: bool, num_buckets: int, max_distance: int
) -> Any:
    """Bucket ids (int64, same shape) of ``relative_position = key_pos - query_pos`` (see the
    module docstring)."""
    xp = array_namespace(relative_position)
    rel = xp.astype(relative_position, xp.int64)
    if bidirectional:
        num_buckets //= 2
        base = xp.astype(rel > 0, xp.int64) * num_buckets
        dist = xp.abs(rel)
    else:
        base = None
        dist = -xp.minimum(rel, xp.zeros_like(rel))
    dist = xp.minimum(dist, xp.full_like(dist, max_distance))
    table = xp.asarray(bucket_table(num_buckets, max_distance))
    buckets = xp.take(table, dist, axis=0)
    return buckets if base is None else buckets + base


def position_bias(
    weight: Any, query_length: Any, key_length: Any, offset: Any, bidirectional: bool, cfg: T5Config
) -> Any:
    """``[1, heads, query_length, key_length]`` bias for queries at ``offset + i`` and keys at ``j``
    (``weight``: ``relative_attention_bias.weight [num_buckets, heads]``)."""
    xp = array_namespace(weight)
    qpos = xp.arange(query_length)[:, None] + offset
    kpos = xp.arange(key_length)[None, :]
    buckets = relative_position_bucket(
        kpos - qpos, bidirectional, cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance
    )
    values = xp.take(weight, buckets, axis=0)  # [q, k, heads]
    return xp.permute_dims(values, (2, 0, 1))[None]


# ------------------------------------------------------------------ blocks
def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``x @ W^T`` (T5 has no biases)."""
    return xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0)))


def _attend(xp: Any, q: Any, k: Any, v: Any, bias: Any, allowed: Any) -> Any:
    """``softmax(where(allowed, q k^T + bias, min)) v`` (no ``1/sqrt(d)`` scale: T5 folds it into
    the initialisation of ``q``). Masked scores are the dtype's minimum, so a fully masked row is
    a finite uniform average."""
    scores = xp.matmul(q, xp.permute_dims(k, (0, 1, 3, 2)))
    if bias is not None:
        scores = scores + bias
    scores = xp.where(allowed, scores, xp.full_like(scores, xp.finfo(scores.dtype).min))
    return xp.matmul(xp.softmax(scores, axis=-1), v)


def _feed_forward(xp: Any, P: Any, cfg: T5Config, p: str, x: Any) -> Any:
    """``wo(act(wi(x)))`` or gated ``wo(act(wi_0(x)) * wi_1(x))``."""
    name = cfg.dense_act_fn

    def act(y: Any) -> Any:
        return xp.silu(y) if name == "silu" else activation(xp, name, y)

    if cfg.is_gated_act:
        hidden = act(_linear(xp, P, p + "DenseReluDense.wi_0", x)) * _linear(
            xp, P, p + "DenseReluDense.wi_1", x
        )
    else:
        hidden = act(_linear(xp, P, p + "DenseReluDense.wi", x))
    return _linear(xp, P, p + "DenseReluDense.wo", hidden)


def _key_mask(xp: Any, mask: Any) -> Any:
    """``[b, T]`` (1 = token) -> boolean ``[b, 1, 1, T]``."""
    return mask[:, None, None, :] != 0


# ------------------------------------------------------------------ LongT5 encoder attention
def local_window(xp: Any, s: Any, radius: int) -> Any:
    """Boolean ``[1, 1, s, s]``: key ``j`` is within ``radius`` positions of query ``i``."""
    pos = xp.arange(s)
    return (xp.abs(pos[None, :] - pos[:, None]) <= radius)[None, None]


def global_block_ids(mask: Any, block: int) -> Any:
    """int64 ``[b, s]``: the global block of each real token, ``i // block`` for position ``i``,
    except that tokens after the row's last complete block (a real token at ``i % block ==
    block - 1`` ends one) join the last complete one; padding tokens (and every token of a row
    with no complete block) get -1."""
    xp = array_namespace(mask)
    pos = xp.arange(mask.shape[1])[None, :]
    real = mask != 0
    ids = xp.where(real, pos // block, xp.full_like(mask, -1, dtype=xp.int64))
    ends = xp.astype(((pos % block) == block - 1) & real, xp.int64)
    last = xp.sum(ends, axis=-1, keepdims=True) - 1
    return xp.minimum(ids, last)


def global_side_bias(weight: Any, mask: Any, block_ids: Any, cfg: Any) -> tuple:
    """Scores bias ``[b, heads, s, s]`` and mask ``[b, 1, s, s]`` of query ``i`` over global key
    ``g`` (``g = 0 .. s - 1``; only ``g <= max(block_ids)`` exist): the bidirectional bucket of
    ``g - block_ids[i]`` looked up in ``weight`` (``global_relative_attention_bias``); a real
    query may attend to the existing global keys (padding queries to the others)."""
    xp = array_namespace(block_ids)
    gpos = xp.arange(mask.shape[1])
    exists = gpos[None, :] <= xp.max(block_ids, axis=-1, keepdims=True)  # [b, G]
    allowed = ((mask != 0)[:, :, None] == exists[:, None, :])[:, None]
    buckets = relative_position_bucket(
        gpos[None, None, :] - block_ids[:, :, None],
        True,
        cfg.relative_attention_num_buckets,
        cfg.relative_attention_max_distance,
    )
    return xp.permute_dims(xp.take(weight, buckets, axis=0), (0, 3, 1, 2)), allowed


# ------------------------------------------------------------------ encoder
def encode(
    params: dict,
    cfg: T5Config,
    input_ids: Any,
    attention_mask: Any = None,
    output_hidden_states: bool = False,
) -> Any:
    """Encoder output ``[b, s, d_model]`` (after the final norm); with ``output_hidden_states``
    ``(output, hidden_states)`` with ``num_layers + 1`` arrays (embeddings, each block's output,
    the last one replaced by the normed output). Padding keys (mask 0) are not attended; left and
    right padding give the same outputs at the real tokens (the bias is relative)."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    nh, dk, eps = cfg.num_heads, cfg.d_kv, cfg.layer_norm_epsilon
    kind, att = encoder_attention_kind(cfg), _encoder_attention_name(cfg)
    h = xp.take(P["shared.weight"], input_ids, axis=0)
    allowed = _key_mask(xp, attention_mask)
    bias = position_bias(
        P[f"encoder.block.0.layer.0.{att}.relative_attention_bias.weight"], s, s, 0, True, cfg
    )
    long_cfg: Any = cfg  # a LongT5Config when kind is not "full"
    if kind != "full":
        allowed = allowed & local_window(xp, s, long_cfg.local_radius)
    if kind == "transient-global":
        block_ids = global_block_ids(attention_mask, long_cfg.global_block_size)
        side_bias, side_allowed = global_side_bias(
            P[f"encoder.block.0.layer.0.{att}.global_relative_attention_bias.weight"],
            attention_mask,
            block_ids,
            cfg,
        )
        # one score row per query: its local keys, then every global key
        bias = xp.concat([bias + xp.zeros_like(side_bias), side_bias], axis=-1)
        allowed = xp.concat([allowed, side_allowed], axis=-1)
        onehot = xp.astype(block_ids[:, :, None] == xp.arange(s)[None, None, :], h.dtype)
    hidden = [h]
    for i in range(cfg.num_layers):
        p = f"encoder.block.{i}.layer."
        a = p + f"0.{att}."
        x = xp.rms_norm(h, P[p + "0.layer_norm.weight"], eps=eps)
        q = split_heads(_linear(xp, P, a + "q", x), nh, dk)
        k = split_heads(_linear(xp, P, a + "k", x), nh, dk)
        v = split_heads(_linear(xp, P, a + "v", x), nh, dk)
        if kind == "transient-global":
            # global token g: the norm of the sum of the (normed) inputs of block g
            g = xp.rms_norm(
                xp.matmul(xp.permute_dims(onehot, (0, 2, 1)), x),
                P[a + "global_input_layer_norm.weight"],
                eps=eps,
            )
            k = xp.concat([k, split_heads(_linear(xp, P, a + "k", g), nh, dk)], axis=2)
            v = xp.concat([v, split_heads(_linear(xp, P, a + "v", g), nh, dk)], axis=2)
        h = h + _linear(xp, P, a + "o", merge_heads(_attend(xp, q, k, v, bias, allowed)))
        h = h + _feed_forward(xp, P, cfg, p + "1.", xp.rms_norm(h, P[p + "1.layer_norm.weight"], eps=eps))
        hidden.append(h)
    h = xp.rms_norm(h, P["encoder.final_layer_norm.weight"], eps=eps)
    hidden[-1] = h
    return (h, tuple(hidden)) if output_hidden_states else h


# ------------------------------------------------------------------ decoder caches
def cross_attention_cache(params: dict, cfg: T5Config, encoder_hidden_states: Any) -> list:
    """Per decoder layer ``(key, value)`` of the encoder output, ``[b, heads, enc_seq, d_kv]``."""
    xp = array_namespace(encoder_hidden_states)
    P = ParamView(params)
    out = []
    for i in range(cfg.num_decoder_layers):
        a = f"decoder.block.{i}.layer.1.EncDecAttention."
        out.append(
            (
                split_heads(_linear(xp, P, a + "k", encoder_hidden_states), cfg.num_heads, cfg.d_kv),
                split_heads(_linear(xp, P, a + "v", encoder_hidden_states), cfg.num_heads, cfg.d_kv),
            )
        )
    return out


def init_cache(
    params: dict,
    cfg: T5Config,
    encoder_hidden_states: Any,
    layout: str = "growing",
    max_length: int | None = None,
) -> dict:
    """An empty self-attention cache (``"growing"``, or ``"static"`` preallocated to
    ``max_length`` decoder positions) plus the cross-attention keys/values of the encoder output."""
    return kv_cache.seq2seq_cache(
        encoder_hidden_states,
        cfg.num_decoder_layers,
        cfg.num_heads,
        cfg.d_kv,
        cross_attention_cache(params, cfg, encoder_hidden_states),
        layout,
        max_length,
        "T5",
    )


def reorder_cache(cache: dict, rows: Any) -> dict:
    """Gather batch ``rows`` (beam search) of the self- and cross-attention caches."""
    cross = cache["cross"]
    if cross is not None:
        xp = array_namespace(cross[0][0])
        cross = [(xp.take(k, rows, axis=0), xp.take(v, rows, axis=0)) for k, v in cross]
    return {"self": kv_cache.reorder_cache(cache["self"], rows), "cross": cross}


# ------------------------------------------------------------------ decoder
def decode(
    params: dict,
    cfg: T5Config,
    decoder_input_ids: Any,
    encoder_hidden_states: Any,
    encoder_attention_mask: Any,
    cache: dict | None = None,
    offset: Any = 0,
    decoder_attention_mask: Any = None,
    output_hidden_states: bool = False,
) -> tuple:
    """One decoder call: ``(logits [b, s, vocab], cache)`` (with ``output_hidden_states`` also the
    ``num_decoder_layers + 1`` decoder hidden states).

    ``decoder_input_ids [b, s]`` sit at decoder positions ``offset .. offset + s - 1`` (``offset``:
    a Python int or an int64 scalar array; 0 without a cache). ``encoder_attention_mask [b,
    enc_seq]`` masks the encoder's padding in cross-attention. ``decoder_attention_mask`` covers
    the self-attention key positions (``s`` without a cache, ``past + s`` growing, ``max_length``
    static; default: all ones) and is combined with the causal rule (key ``j <= offset + i``),
    which also hides a static cache's unwritten positions. ``encoder_hidden_states`` may be None
    when ``cache["cross"]`` is filled (see ``init_cache``)."""
    xp = array_namespace(decoder_input_ids)
    P = ParamView(params)
    nh, dk, eps = cfg.num_heads, cfg.d_kv, cfg.layer_norm_epsilon
    s = decoder_input_ids.shape[1]
    self_cache = None if cache is None else cache["self"]
    cross = None if cache is None else cache["cross"]
    if cross is None:
        if encoder_hidden_states is None:
            raise ValueError(
                "decode needs encoder_hidden_states when the cache has no cross-attention keys/values"
            )
        cross = cross_attention_cache(P, cfg, encoder_hidden_states)
    cross_allowed = _key_mask(xp, encoder_attention_mask)
    h = xp.take(P["shared.weight"], decoder_input_ids, axis=0)
    bias = allowed = None
    hidden = [h]
    for i in range(cfg.num_decoder_layers):
        p = f"decoder.block.{i}.layer."
        a = p + "0.SelfAttention."
        x = xp.rms_norm(h, P[p + "0.layer_norm.weight"], eps=eps)
        q = split_heads(_linear(xp, P, a + "q", x), nh, dk)
        k = split_heads(_linear(xp, P, a + "k", x), nh, dk)
        v = split_heads(_linear(xp, P, a + "v", x), nh, dk)
        keys, values, self_cache = kv_cache.update_cache(self_cache, i, k, v, offset)
        if bias is None:  # the first block's bias and mask serve every block (same key length)
            T = keys.shape[2]
            bias = position_bias(
                P["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"],
                s,
                T,
                offset,
                False,
                cfg,
            )
            qpos = xp.arange(s)[:, None] + offset
            allowed = (xp.arange(T)[None, :] <= qpos)[None, None, :, :]
            if decoder_attention_mask is not None:
                allowed = allowed & _key_mask(xp, decoder_attention_mask)
        h = h + _linear(xp, P, a + "o", merge_heads(_attend(xp, q, keys, values, bias, allowed)))
        c = p + "1.EncDecAttention."
        x = xp.rms_norm(h, P[p + "1.layer_norm.weight"], eps=eps)
        q = split_heads(_linear(xp, P, c + "q", x), nh, dk)
        ck, cv = cross[i]
        h = h + _linear(xp, P, c + "o", merge_heads(_attend(xp, q, ck, cv, None, cross_allowed)))
        h = h + _feed_forward(xp, P, cfg, p + "2.", xp.rms_norm(h, P[p + "2.layer_norm.weight"], eps=eps))
        hidden.append(h)
    h = xp.rms_norm(h, P["decoder.final_layer_norm.weight"], eps=eps)
    hidden[-1] = h
    if cfg.scale_decoder_outputs:
        h = h * (cfg.d_model**-0.5)
    head = P["shared.weight"] if cfg.tie_word_embeddings else P["lm_head.weight"]
    logits = xp.matmul(h, xp.permute_dims(head, (1, 0)))
    new_cache = None if cache is None else {"self": self_cache, "cross": cross}
    return (logits, new_cache, tuple(hidden)) if output_hidden_states else (logits, new_cache)


def forward(
    params: dict,
    cfg: T5Config,
    input_ids: Any,
    attention_mask: Any,
    decoder_input_ids: Any,
    decoder_attention_mask: Any = None,
    output_hidden_states: bool = False,
) -> dict:
    """Encoder then decoder (no cache): ``{"logits": [b, dec_seq, vocab],
    "encoder_last_hidden_state": [b, enc_seq, d_model]}`` (Hugging Face's output names), plus
    ``encoder_hidden_states`` / ``decoder_hidden_states`` tuples with ``output_hidden_states``."""
    P = ParamView(params)
    if output_hidden_states:
        enc, enc_hidden = encode(P, cfg, input_ids, attention_mask, output_hidden_states=True)
    else:
        enc = encode(P, cfg, input_ids, attention_mask)
    if attention_mask is None:
        xp = array_namespace(input_ids)
        attention_mask = xp.ones(tuple(input_ids.shape), dtype=xp.int64)
    out = decode(
        P,
        cfg,
        decoder_input_ids,
        enc,
        attention_mask,
        decoder_attention_mask=decoder_attention_mask,
        output_hidden_states=output_hidden_states,
    )
    res = {"logits": out[0], "encoder_last_hidden_state": enc}
    if output_hidden_states:
        res["encoder_hidden_states"], res["decoder_hidden_states"] = enc_hidden, out[2]
    return res
