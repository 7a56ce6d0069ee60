"""Llama forward pass (SmolLM2-compatible), written once against ``xp``.

Per layer: ``h += o_proj(attn(rope(q), rope(k), v))`` on ``x = rms_norm(h)``, then
``h += down(silu(gate(x)) * up(x))`` on ``x = rms_norm(h)``; ``logits = rms_norm(h) @ head^T`` with
``head = embed_tokens`` when ``tie_word_embeddings`` else ``lm_head``. Linear weights are
``[out, in]`` (``x @ W^T``), optional biases when ``attention_bias`` / ``mlp_bias``.

Grouped-query attention repeats each key/value head ``heads / kv_heads`` times (head ``j`` uses
kv head ``j // (heads / kv_heads)``). Rotary embeddings, in float32:
``inv_freq = 1 / theta ** (arange(0, d, 2) / d)``, ``angle = pos * inv_freq``,
``cos, sin = cos/sin(concat(angle, angle))``, ``rope(x) = x * cos + rotate_half(x) * sin`` with
``rotate_half(x) = concat(-x[d/2:], x[:d/2])`` (Hugging Face's half-split layout).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .cache import update_cache
from .config import LlamaConfig
from .weights import ParamView

BASE_PREFIX = "model."
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def parameter_shapes(cfg: LlamaConfig) -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter ``forward`` reads."""
    d, hd, nh, nkv, ff = (
        cfg.hidden_size,
        cfg.head_dim,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.intermediate_size,
    )
    shapes = {"model.embed_tokens.weight": (cfg.vocab_size, d), "model.norm.weight": (d,)}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes.update(
            {
                p + "self_attn.q_proj.weight": (nh * hd, d),
                p + "self_attn.k_proj.weight": (nkv * hd, d),
                p + "self_attn.v_proj.weight": (nkv * hd, d),
                p + "self_attn.o_proj.weight": (d, nh * hd),
                p + "mlp.gate_proj.weight": (ff, d),
                p + "mlp.up_proj.weight": (ff, d),
                p + "mlp.down_proj.weight": (d, ff),
                p + "input_layernorm.weight": (d,),
                p + "post_attention_layernorm.weight": (d,),
            }
        )
        if cfg.attention_bias:
            shapes.update(
                {
                    p + "self_attn.q_proj.bias": (nh * hd,),
                    p + "self_attn.k_proj.bias": (nkv * hd,),
                    p + "self_attn.v_proj.bias": (nkv * hd,),
                    p + "self_attn.o_proj.bias": (d,),
                }
            )
        if cfg.mlp_bias:
            shapes.update(
                {
                    p + "mlp.gate_proj.bias": (ff,),
                    p + "mlp.up_proj.bias": (ff,),
                    p + "mlp.down_proj.bias": (d,),
                }
            )
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size, d)
    return shapes


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``x @ W^T (+ b)`` for the Linear ``name`` (bias if the parameters have one)."""
    y = xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0)))
    return y + P[name + ".bias"] if name + ".bias" in P else y


def rotary(xp: Any, cfg: LlamaConfig, position_ids: Any) -> tuple[Any, Any]:
    """``cos, sin`` of shape ``[b, 1, s, head_dim]`` (float32) for ``position_ids [b, s]``."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (xp.astype(xp.arange(0, hd, 2), xp.float32) / hd))
    freqs = xp.astype(position_ids, xp.float32)[:, :, None] * xp.astype(inv_freq, xp.float32)[None, None, :]
    emb = xp.concat([freqs, freqs], axis=-1)
    return xp.cos(emb)[:, None], xp.sin(emb)[:, None]


def rotate_half(xp: Any, x: Any) -> Any:
    half = x.shape[-1] // 2
    return xp.concat([-x[..., half:], x[..., :half]], axis=-1)


def forward(
    params: dict,
    cfg: LlamaConfig,
    input_ids: Any,
    attention_mask: Any,
    position_ids: Any,
    cache: Any = None,
    offset: Any = 0,
    output_hidden_states: bool = False,
) -> tuple:
    """``(logits [b, s, vocab], cache)``; with ``output_hidden_states`` also the tuple of
    ``num_hidden_layers + 1`` hidden states (embeddings, each layer's output, the last one after
    the final norm). Mask / positions / offset as in gpt2.forward; caches: see cache.py."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    hd, nh, nkv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    eps = cfg.rms_norm_eps
    h = xp.take(P["model.embed_tokens.weight"], input_ids, axis=0)
    cos, sin = rotary(xp, cfg, position_ids)
    cos, sin = xp.astype(cos, h.dtype), xp.astype(sin, h.dtype)
    hidden = [h]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        x = xp.rms_norm(h, P[p + "input_layernorm.weight"], eps=eps)
        q = split_heads(_linear(xp, P, p + "self_attn.q_proj", x), nh, hd)
        k = split_heads(_linear(xp, P, p + "self_attn.k_proj", x), nkv, hd)
        v = split_heads(_linear(xp, P, p + "self_attn.v_proj", x), nkv, hd)
        q = q * cos + rotate_half(xp, q) * sin
        k = k * cos + rotate_half(xp, k) * sin
        keys, values, cache = update_cache(cache, i, k, v, offset)
        if nh != nkv:
            keys = xp.repeat(keys, nh // nkv, axis=1)
            values = xp.repeat(values, nh // nkv, axis=1)
        a = attend(q, keys, values, attention_mask, offset, default_scale(hd))
        h = h + _linear(xp, P, p + "self_attn.o_proj", merge_heads(a))
        x = xp.rms_norm(h, P[p + "post_attention_layernorm.weight"], eps=eps)
        gate = xp.silu(_linear(xp, P, p + "mlp.gate_proj", x))
        h = h + _linear(xp, P, p + "mlp.down_proj", gate * _linear(xp, P, p + "mlp.up_proj", x))
        hidden.append(h)
    h = xp.rms_norm(h, P["model.norm.weight"], eps=eps)
    hidden[-1] = h
    head = P["model.embed_tokens.weight"] if cfg.tie_word_embeddings else P["lm_head.weight"]
    logits = xp.matmul(h, xp.permute_dims(head, (1, 0)))
    return (logits, cache, tuple(hidden)) if output_hidden_states else (logits, cache)
