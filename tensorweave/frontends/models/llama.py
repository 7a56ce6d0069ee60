"""Llama forward pass (SmolLM2-compatible), written once against ``xp``.

Per layer: ``h += o_proj(attn(rope(q), rope(k), v))`` on ``rms_norm(h)``, then
``h += down(silu(gate(x)) * up(x))`` on ``rms_norm(h)``; grouped-query attention repeats each
key/value head ``heads / kv_heads`` times; rotary embeddings use
``inv_freq = theta ** (-arange(0, d, 2) / d)`` and ``rotate_half(x) = concat(-x2, x1)``,
computed in float32. Parameters are a flat dict with Hugging Face names.
"""
from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads, update_cache
from .config import LlamaConfig


def parameter_shapes(cfg: LlamaConfig) -> dict[str, tuple]:
    d, hd = cfg.hidden_size, cfg.head_dim
    shapes = {"model.embed_tokens.weight": (cfg.vocab_size, d), "model.norm.weight": (d,)}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "self_attn.q_proj.weight": (cfg.num_attention_heads * hd, d),
            p + "self_attn.k_proj.weight": (cfg.num_key_value_heads * hd, d),
            p + "self_attn.v_proj.weight": (cfg.num_key_value_heads * hd, d),
            p + "self_attn.o_proj.weight": (d, cfg.num_attention_heads * hd),
            p + "mlp.gate_proj.weight": (cfg.intermediate_size, d),
            p + "mlp.up_proj.weight": (cfg.intermediate_size, d),
            p + "mlp.down_proj.weight": (d, cfg.intermediate_size),
            p + "input_layernorm.weight": (d,),
            p + "post_attention_layernorm.weight": (d,),
        })
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size, d)
    return shapes


def _linear(xp: Any, x: Any, w: Any) -> Any:
    return xp.matmul(x, xp.permute_dims(w, (1, 0)))


def rotary(xp: Any, cfg: LlamaConfig, position_ids: Any) -> tuple[Any, Any]:
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (xp.astype(xp.arange(0, hd, 2), xp.float32) / hd))
    freqs = xp.astype(position_ids, xp.float32)[:, :, None] * xp.astype(inv_freq, xp.float32)[None, None, :]
    emb = xp.concat([freqs, freqs], axis=-1)  # [b, s, hd]
    return xp.cos(emb)[:, None], xp.sin(emb)[:, None]


def _rotate_half(xp: Any, x: Any) -> Any:
    half = x.shape[-1] // 2
    return xp.concat([-x[..., half:], x[..., :half]], axis=-1)


def forward(params: dict, cfg: LlamaConfig, input_ids: Any, attention_mask: Any, position_ids: Any,
            cache: Any = None, offset: Any = 0) -> tuple[Any, Any]:
    """Logits ``[b, s, vocab]`` and the updated cache (see attention.update_cache)."""
    xp = array_namespace(input_ids)
    P = {k: xp.asarray(v) for k, v in params.items()}
    hd, nh, nkv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    h = xp.take(P["model.embed_tokens.weight"], input_ids, axis=0)
    cos, sin = rotary(xp, cfg, position_ids)
    cos, sin = xp.astype(cos, h.dtype), xp.astype(sin, h.dtype)
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        x = xp.rms_norm(h, P[p + "input_layernorm.weight"], eps=cfg.rms_norm_eps)
        q = split_heads(_linear(xp, x, P[p + "self_attn.q_proj.weight"]), nh, hd)
        k = split_heads(_linear(xp, x, P[p + "self_attn.k_proj.weight"]), nkv, hd)
        v = split_heads(_linear(xp, x, P[p + "self_attn.v_proj.weight"]), nkv, hd)
        q = q * cos + _rotate_half(xp, q) * sin
        k = k * cos + _rotate_half(xp, k) * sin
        keys, values, cache = update_cache(cache, i, k, v, offset)
        if nh != nkv:
            keys = xp.repeat(keys, nh // nkv, axis=1)
            values = xp.repeat(values, nh // nkv, axis=1)
        a = attend(q, keys, values, attention_mask, offset, default_scale(hd))
        h = h + _linear(xp, merge_heads(a), P[p + "self_attn.o_proj.weight"])
        x = xp.rms_norm(h, P[p + "post_attention_layernorm.weight"], eps=cfg.rms_norm_eps)
        gate = xp.silu(_linear(xp, x, P[p + "mlp.gate_proj.weight"]))
        up = _linear(xp, x, P[p + "mlp.up_proj.weight"])
        h = h + _linear(xp, gate * up, P[p + "mlp.down_proj.weight"])
    h = xp.rms_norm(h, P["model.norm.weight"], eps=cfg.rms_norm_eps)
    head = P["model.embed_tokens.weight"] if cfg.tie_word_embeddings else P["lm_head.weight"]
    return _linear(xp, h, head), cache
