"""The rotary decoder family (Llama / SmolLM2, Mistral, Qwen2, Qwen3, Phi-3, Gemma), written once
against ``xp``; the members differ only in config switches (``config.RotaryConfig``).

Per layer: ``h += o_proj(attn(rope(q), rope(k), v))`` on ``x = norm(h)``, then
``h += down(act(gate(x)) * up(x))`` on ``x = norm(h)``; ``logits = norm(h) @ head^T`` with
``head = embed_tokens`` when ``tie_word_embeddings`` else ``lm_head``. Linear weights are
``[out, in]`` (``x @ W^T``); biases where the config's switches say (``qkv_bias``, ``o_bias``,
``mlp_has_bias``). ``norm(x) = x / sqrt(mean(x^2) + eps) * (norm_offset + w)`` (RMSNorm; Gemma's
offset is 1). Switches:

- ``scale_embeddings`` (Gemma): ``h = embed_tokens[ids] * sqrt(hidden_size)``;
- ``qk_norm`` (Qwen3): ``q = norm(q)``, ``k = norm(k)`` over head_dim (weights ``q_norm`` /
  ``k_norm``) before rope;
- ``fused_projections`` (Phi-3): ``qkv_proj`` rows are ``[q; k; v]`` and ``gate_up_proj`` rows
  ``[gate; up]``; the outputs are split in that order;
- ``mlp_activation``: ``silu`` (SwiGLU) or ``gelu_tanh`` (GeGLU, Gemma);
- ``layer_window(i)``: a sliding window on layer ``i`` (Mistral, Qwen2/3 with
  ``use_sliding_window``, Phi-3): the query at position ``p`` sees key ``j`` only when
  ``p - window < j <= p``.

Grouped-query attention repeats each key/value head ``heads / kv_heads`` times (head ``j`` uses
kv head ``j // (heads / kv_heads)``). Rotary embeddings, in float32: ``angle = pos * inv_freq``,
``cos, sin = attention_factor * cos/sin(concat(angle, angle))``,
``rope(x) = x * cos + rotate_half(x) * sin`` on the first ``rotary_dim`` dims of a head (the rest
pass through) with ``rotate_half(x) = concat(-x[d/2:], x[:d/2])`` (Hugging Face's half-split
layout). ``inv_freq`` and ``attention_factor`` follow the rope type (:func:`rope_frequencies`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .cache import update_cache
from .config import RotaryConfig
from .weights import ParamView

BASE_PREFIX = "model."
IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "rotary_emb.original_inv_freq")


def parameter_shapes(cfg: RotaryConfig) -> dict[str, tuple]:
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
        if cfg.fused_projections:
            shapes[p + "self_attn.qkv_proj.weight"] = ((nh + 2 * nkv) * hd, d)
        else:
            shapes[p + "self_attn.q_proj.weight"] = (nh * hd, d)
            shapes[p + "self_attn.k_proj.weight"] = (nkv * hd, d)
            shapes[p + "self_attn.v_proj.weight"] = (nkv * hd, d)
        shapes[p + "self_attn.o_proj.weight"] = (d, nh * hd)
        if cfg.qk_norm:
            shapes[p + "self_attn.q_norm.weight"] = (hd,)
            shapes[p + "self_attn.k_norm.weight"] = (hd,)
        if cfg.fused_projections:
            shapes[p + "mlp.gate_up_proj.weight"] = (2 * ff, d)
        else:
            shapes[p + "mlp.gate_proj.weight"] = (ff, d)
            shapes[p + "mlp.up_proj.weight"] = (ff, d)
        shapes[p + "mlp.down_proj.weight"] = (d, ff)
        shapes[p + "input_layernorm.weight"] = (d,)
        shapes[p + "post_attention_layernorm.weight"] = (d,)
        if cfg.qkv_bias:
            shapes.update(
                {
                    p + "self_attn.q_proj.bias": (nh * hd,),
                    p + "self_attn.k_proj.bias": (nkv * hd,),
                    p + "self_attn.v_proj.bias": (nkv * hd,),
                }
            )
        if cfg.o_bias:
            shapes[p + "self_attn.o_proj.bias"] = (d,)
        if cfg.mlp_has_bias:
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


def _rope_kind(cfg: RotaryConfig) -> tuple[str, dict]:
    rs = cfg.rope_scaling or {}
    return rs.get("rope_type", rs.get("type", "default")), rs


def rope_frequencies(cfg: RotaryConfig) -> tuple[np.ndarray, float]:
    """``(inv_freq [rotary_dim / 2] float32, attention_factor)`` of the config's rope type.

    With ``dim = rotary_dim``, ``theta = rope_theta``, ``base_k = theta ** (2k / dim)`` and the
    plain ``inv_freq_k = 1 / base_k`` (type ``default``; also ``dynamic`` here, whose runtime
    rescaling is :func:`rotary`'s):

    - ``linear``: ``inv_freq / factor`` (positions divided by ``factor``);
    - ``llama3``: with ``L = original_max_position_embeddings`` and ``wavelen = 2 pi / inv_freq``:
      ``wavelen < L / high_freq_factor`` keeps ``inv_freq``, ``wavelen > L / low_freq_factor``
      uses ``inv_freq / factor``, and in between
      ``s = (L / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)`` blends
      ``(1 - s) * inv_freq / factor + s * inv_freq``;
    - ``yarn``: ``r(k) = clip((k - lo) / (hi - lo), 0, 1)`` over ``k < dim / 2`` with
      ``lo, hi = dim * log(L / (beta * 2 pi)) / (2 log theta)`` for ``beta = beta_fast`` (32) and
      ``beta_slow`` (1) (floored / ceiled when ``truncate``, default true; clipped to
      ``[0, dim - 1]``; ``hi += 0.001`` when equal); ``inv_freq = inv_freq / factor * r +
      inv_freq * (1 - r)``, and ``attention_factor`` (default ``m(factor, mscale) /
      m(factor, mscale_all_dim)`` when both are given, else ``m(factor, 1)``, with
      ``m(s, a) = 0.1 a ln(s) + 1`` for ``s > 1``, else 1) multiplies cos and sin."""
    dim = cfg.rotary_dim
    base = float(cfg.rope_theta)
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    inv = (np.float32(1.0) / np.power(np.float32(base), exponents)).astype(np.float32)
    kind, rs = _rope_kind(cfg)
    if kind in ("default", "dynamic"):
        return inv, 1.0
    factor = float(rs["factor"])
    if kind == "linear":
        return (inv / np.float32(factor)).astype(np.float32), 1.0
    old = float(rs["original_max_position_embeddings"])
    if kind == "llama3":
        low, high = float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        blended = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / high) & (wavelen <= old / low)
        return np.where(medium, blended, scaled).astype(np.float32), 1.0

    # yarn
    def m(scale: float, a: float) -> float:
        return 0.1 * a * math.log(scale) + 1.0 if scale > 1 else 1.0

    attention = rs.get("attention_factor")
    if attention is None:
        mscale, mscale_all = rs.get("mscale"), rs.get("mscale_all_dim")
        attention = m(factor, mscale) / m(factor, mscale_all) if mscale and mscale_all else m(factor, 1.0)
    beta_fast, beta_slow = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1

    def correction(rotations: float) -> float:
        return dim * math.log(old / (rotations * 2 * math.pi)) / (2 * math.log(base))

    lo, hi = correction(beta_fast), correction(beta_slow)
    if rs.get("truncate", True):
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, dim - 1)
    if lo == hi:
        hi += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - lo) / (hi - lo), 0, 1).astype(np.float32)
    keep = 1 - ramp  # the share of the unscaled (extrapolated) frequency
    inv_scaled = np.float32(1.0) / (np.float32(factor) * np.power(np.float32(base), exponents))
    return (inv_scaled * (1 - keep) + inv * keep).astype(np.float32), float(attention)


def rotary(xp: Any, cfg: RotaryConfig, position_ids: Any) -> tuple[Any, Any]:
    """``cos, sin`` of shape ``[b, 1, s, rotary_dim]`` (float32) for ``position_ids [b, s]``.

    ``dynamic`` (NTK) scaling computes its frequencies at run time from ``n = max(position_ids) +
    1``: when ``n > M = max_position_embeddings`` the base becomes ``theta * (factor * n / M -
    (factor - 1)) ** (dim / (dim - 2))``, otherwise it is ``theta`` (Hugging Face updates its
    frequencies the same way for each call's positions)."""
    inv, attention = rope_frequencies(cfg)
    kind, rs = _rope_kind(cfg)
    pos = xp.astype(position_ids, xp.float32)
    if kind == "dynamic":
        dim, m = cfg.rotary_dim, float(cfg.max_position_embeddings)
        factor = float(rs["factor"])
        n = xp.maximum(xp.max(pos) + 1.0, xp.asarray(m, dtype=xp.float32))
        ratio = xp.maximum(factor * n / m - (factor - 1.0), xp.asarray(1.0, dtype=xp.float32))
        base = float(cfg.rope_theta) * ratio ** (dim / (dim - 2))
        exponents = xp.asarray(np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim))
        inv_freq = 1.0 / xp.pow(base, exponents)
    else:
        inv_freq = xp.asarray(inv)
    freqs = pos[:, :, None] * inv_freq[None, None, :]
    emb = xp.concat([freqs, freqs], axis=-1)
    cos, sin = xp.cos(emb), xp.sin(emb)
    if attention != 1.0:
        cos, sin = cos * attention, sin * attention
    return cos[:, None], sin[:, None]


def rotate_half(xp: Any, x: Any) -> Any:
    half = x.shape[-1] // 2
    return xp.concat([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(xp: Any, x: Any, cos: Any, sin: Any, rotary_dim: int) -> Any:
    """``rope(x)`` on the first ``rotary_dim`` dims of the last axis; the rest pass through."""
    if rotary_dim == x.shape[-1]:
        return x * cos + rotate_half(xp, x) * sin
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    return xp.concat([rot * cos + rotate_half(xp, rot) * sin, rest], axis=-1)


def _norm(xp: Any, cfg: RotaryConfig, x: Any, w: Any) -> Any:
    """RMSNorm with weight ``norm_offset + w``."""
    return xp.rms_norm(x, w + cfg.norm_offset if cfg.norm_offset else w, eps=cfg.rms_norm_eps)


def _qkv(xp: Any, P: Any, cfg: RotaryConfig, p: str, x: Any) -> tuple[Any, Any, Any]:
    """``q [b, s, nh*hd], k, v [b, s, nkv*hd]``: separate projections, or one fused ``qkv_proj``
    split in row order q, k, v."""
    if not cfg.fused_projections:
        return tuple(_linear(xp, P, p + f"self_attn.{n}_proj", x) for n in "qkv")  # type: ignore[return-value]
    nq, nk = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    y = _linear(xp, P, p + "self_attn.qkv_proj", x)
    return y[..., :nq], y[..., nq : nq + nk], y[..., nq + nk :]


def _mlp(xp: Any, P: Any, cfg: RotaryConfig, p: str, x: Any) -> Any:
    """``down(act(gate(x)) * up(x))``; a fused ``gate_up_proj`` has the gate rows first."""
    if cfg.fused_projections:
        y = _linear(xp, P, p + "mlp.gate_up_proj", x)
        ff = cfg.intermediate_size
        gate, up = y[..., :ff], y[..., ff:]
    else:
        gate, up = _linear(xp, P, p + "mlp.gate_proj", x), _linear(xp, P, p + "mlp.up_proj", x)
    act = xp.silu(gate) if cfg.mlp_activation == "silu" else xp.gelu(gate, approximate="tanh")
    return _linear(xp, P, p + "mlp.down_proj", act * up)


def forward(
    params: dict,
    cfg: RotaryConfig,
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
    if cfg.scale_embeddings:
        h = h * float(np.float32(math.sqrt(cfg.hidden_size)))
    cos, sin = rotary(xp, cfg, position_ids)
    cos, sin = xp.astype(cos, h.dtype), xp.astype(sin, h.dtype)
    rd = cfg.rotary_dim
    hidden = [h]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        x = _norm(xp, cfg, h, P[p + "input_layernorm.weight"])
        q, k, v = _qkv(xp, P, cfg, p, x)
        q, k, v = split_heads(q, nh, hd), split_heads(k, nkv, hd), split_heads(v, nkv, hd)
        if cfg.qk_norm:
            q = xp.rms_norm(q, P[p + "self_attn.q_norm.weight"], eps=eps)
            k = xp.rms_norm(k, P[p + "self_attn.k_norm.weight"], eps=eps)
        q, k = apply_rope(xp, q, cos, sin, rd), apply_rope(xp, k, cos, sin, rd)
        keys, values, cache = update_cache(cache, i, k, v, offset)
        if nh != nkv:
            keys = xp.repeat(keys, nh // nkv, axis=1)
            values = xp.repeat(values, nh // nkv, axis=1)
        a = attend(q, keys, values, attention_mask, offset, default_scale(hd), window=cfg.layer_window(i))
        h = h + _linear(xp, P, p + "self_attn.o_proj", merge_heads(a))
        x = _norm(xp, cfg, h, P[p + "post_attention_layernorm.weight"])
        h = h + _mlp(xp, P, cfg, p, x)
        hidden.append(h)
    h = _norm(xp, cfg, h, P["model.norm.weight"])
    hidden[-1] = h
    head = P["model.embed_tokens.weight"] if cfg.tie_word_embeddings else P["lm_head.weight"]
    logits = xp.matmul(h, xp.permute_dims(head, (1, 0)))
    return (logits, cache, tuple(hidden)) if output_hidden_states else (logits, cache)
