"""The rotary decoder family (Llama / SmolLM2, Mistral, Qwen2, Qwen3, Phi-3, Gemma, Gemma 2, Gemma 3,
OLMo 2, Granite, StarCoder2, StableLM, GPT-NeoX, GPT-J, CodeGen, GPT-Neo, Falcon, BLOOM, Phi, Mixtral,
Qwen2-MoE), written once against ``xp``; the members differ only in config switches (``config.RotaryConfig``) and parameter names
(``cfg.names``).

Per layer (sequential residual), with ``s = residual_scale`` (1 except Granite):
``h += s * post_attn(o_proj(attn(rope(q), rope(k), v)))`` on ``x = pre_attn(h)``, then
``h += s * post_mlp(mlp(pre_mlp(h)))``; a norm slot whose name is empty is the identity (Llama:
``pre_attn`` and ``pre_mlp`` only; Gemma 2: all four; OLMo 2: ``post_attn`` and ``post_mlp``).
With ``parallel_residual`` (GPT-NeoX, Phi, StableLM's option): ``h += attn(pre_attn(h)) +
mlp(pre_mlp(h))``, where an empty ``pre_mlp`` reuses ``pre_attn(h)`` (one shared norm).
``logits = final_norm(h) @ head^T (+ head bias) / logits_divisor``, then ``c * tanh(logits / c)``
with ``c = final_softcap`` (Gemma 2); ``head = embed`` when ``tie_word_embeddings``. Linear weights
are ``[out, in]`` (``x @ W^T``); biases where the config's switches say (``qkv_bias``, ``o_bias``,
``mlp_has_bias``, ``head_bias``). Norms (``norm_kind``): ``rms``: ``x / sqrt(mean(x^2) + eps) *
(norm_offset + w)`` (Gemma's offset is 1); ``layer``: ``(x - mean) / sqrt(var + eps) * w + b``.
Switches:

- ``embedding_scale``: ``h = embed[ids] * embedding_scale`` (Gemma: ``sqrt(hidden_size)``,
  Granite: ``embedding_multiplier``);
- ``qkv_layout``: separate ``q, k, v``; fused (``fused_projections``, Phi-3: ``qkv_proj`` rows
  ``[q; k; v]``, ``gate_up_proj`` rows ``[gate; up]``); ``interleaved`` (GPT-NeoX, BLOOM: rows
  ``[q_h; k_h; v_h]`` for each head ``h``); ``grouped`` (Falcon: per kv head ``g`` the rows of its
  ``r`` query heads, then ``k_g``, ``v_g``); ``codegen`` (4 blocks of ``[q; v; k]``, see :func:`_qkv`);
- ``position_kind``: ``rope`` (below), ``learned`` (GPT-Neo: ``h = embed[ids] + pos_embed[pos]``,
  no rotation) or ``alibi`` (BLOOM: scores ``+ slope_h * key_position``, :func:`alibi_bias`); a
  non-empty ``embed_norm`` name normalises the embeddings (BLOOM);
- ``qk_norm`` before rope: ``head_rms`` (Qwen3, RMSNorm over head_dim), ``full_rms`` (OLMo 2,
  RMSNorm over the whole projection before the head split), ``head_layer`` (Phi, one LayerNorm over
  head_dim), ``per_head_layer`` (StableLM, a bias-free LayerNorm per head);
- ``attention_scale`` (``1/sqrt(head_dim)``; Gemma 2 ``query_pre_attn_scalar ** -0.5``, Granite
  ``attention_multiplier``) and ``attn_softcap`` ``c``: scores ``c * tanh(q k^T scale / c)``;
- ``mlp_kind``: ``gated`` ``down(act(gate(x)) * up(x))``, ``plain`` ``fc_out(act(fc_in(x)))``
  (StarCoder2, GPT-NeoX, Phi), ``moe`` (Mixtral, :func:`_moe`); ``mlp_activation``: ``silu``,
  ``gelu_tanh`` (tanh approximation) or ``gelu`` (erf);
- ``rope_layout``: ``half`` (below) or ``interleaved`` (GPT-J: dims ``2i`` and ``2i + 1`` rotate
  together by ``angle_i``);
- ``layer_window(i)``: a sliding window on layer ``i`` (Mistral, Qwen2/3 and Qwen2-MoE with
  ``use_sliding_window``, Phi-3, Gemma 2 / 3's sliding layers, StarCoder2, Mixtral, GPT-Neo's local
  layers): the query at position ``p`` sees key ``j`` only when ``p - window < j <= p``;
- ``layer_rope(i)``: ``(theta, rope_scaling)`` of layer ``i`` (Gemma 3's sliding layers use
  ``rope_local_base_freq`` unscaled); one cos / sin pair is built per distinct value.

Grouped-query attention: query head ``j`` uses kv head ``j // (heads / kv_heads)`` (attention.attend
groups the query heads per kv head instead of repeating the keys and values). Rotary embeddings, in float32: ``angle = pos * inv_freq``,
``cos, sin = attention_factor * cos/sin(concat(angle, angle))``,
``rope(x) = x * cos + rotate_half(x) * sin`` on the first ``rotary_dim`` dims of a head (the rest
pass through; ``rotary_dim = int(head_dim * partial_rotary_factor)``) with
``rotate_half(x) = concat(-x[d/2:], x[:d/2])`` (Hugging Face's half-split layout). ``inv_freq``
and ``attention_factor`` follow the rope type (:func:`rope_frequencies`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...ir import array_namespace
from .attention import attend, merge_heads, split_heads
from .cache import update_cache
from .config import RotaryConfig
from .weights import ParamView, embed, linear

BASE_PREFIX = "model."  # the default; a config's ``base_prefix`` (gpt_neox: ``gpt_neox.``) wins
# buffers, not parameters (rotary tables; the causal-mask tables of old GPT-NeoX checkpoints)
IGNORED_SUFFIXES = (
    "rotary_emb.inv_freq",
    "rotary_emb.original_inv_freq",
    ".attention.bias",
    ".attention.masked_bias",
    ".attn.bias",  # GPT-J
    ".attn.masked_bias",
)


def parameter_shapes(cfg: RotaryConfig) -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter ``forward`` reads (names: ``cfg.names``)."""
    d, hd, nh, nkv, ff = (
        cfg.hidden_size,
        cfg.head_dim,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.intermediate_size,
    )
    N = cfg.names
    shapes: dict[str, tuple] = {N["embed"] + ".weight": (cfg.vocab_size, d)}
    if cfg.position_kind == "learned":
        shapes[N["pos_embed"] + ".weight"] = (cfg.max_position_embeddings, d)

    def linear(name: str, out: int, inp: int, bias: bool) -> None:
        shapes[name + ".weight"] = (out, inp)
        if bias:
            shapes[name + ".bias"] = (out,)

    def norm(name: str, size: int = d, bias: bool = cfg.norm_kind == "layer") -> None:
        if name:
            shapes[name + ".weight"] = (size,)
            if bias:
                shapes[name + ".bias"] = (size,)

    norm(N.get("embed_norm", ""))
    for i in range(cfg.num_hidden_layers):
        p = f"{N['layers']}{i}."
        for slot in ("pre_attn", "post_attn", "pre_mlp", "post_mlp"):
            norm(p + N[slot] if N[slot] else "")
        if cfg.qkv_layout in ("interleaved", "codegen"):
            linear(p + N["qkv"], 3 * nh * hd, d, cfg.qkv_bias)
        elif cfg.fused_projections or cfg.qkv_layout == "grouped":
            linear(p + N["qkv"], (nh + 2 * nkv) * hd, d, cfg.qkv_bias)
        else:
            linear(p + N["q"], nh * hd, d, cfg.qkv_bias)
            linear(p + N["k"], nkv * hd, d, cfg.qkv_bias)
            linear(p + N["v"], nkv * hd, d, cfg.qkv_bias)
        linear(p + N["o"], d, nh * hd, cfg.o_bias)
        if cfg.qk_norm == "head_rms":
            norm(p + N["q_norm"], hd, False)
            norm(p + N["k_norm"], hd, False)
        elif cfg.qk_norm == "full_rms":
            norm(p + N["q_norm"], nh * hd, False)
            norm(p + N["k_norm"], nkv * hd, False)
        elif cfg.qk_norm == "head_layer":
            norm(p + N["q_norm"], hd, True)
            norm(p + N["k_norm"], hd, True)
        elif cfg.qk_norm == "per_head_layer":
            for h in range(nh):
                norm(f"{p}{N['q_norm']}.norms.{h}", hd, False)
            for h in range(nkv):
                norm(f"{p}{N['k_norm']}.norms.{h}", hd, False)
        if cfg.mlp_kind == "plain":
            linear(p + N["fc_in"], ff, d, cfg.mlp_has_bias)
            linear(p + N["fc_out"], d, ff, cfg.mlp_has_bias)
        elif cfg.mlp_kind == "moe" and cfg.layer_is_moe(i):  # type: ignore[attr-defined]
            M, mi = cfg.moe_names, cfg.moe_intermediate  # type: ignore[attr-defined]
            linear(p + M["router"], cfg.num_experts, d, False)  # type: ignore[attr-defined]
            for e in range(cfg.num_experts):  # type: ignore[attr-defined]
                q = p + M["expert"].format(e=e)
                linear(q + M["gate"], mi, d, False)
                linear(q + M["up"], mi, d, False)
                linear(q + M["down"], d, mi, False)
            if cfg.shared_expert_size:  # type: ignore[attr-defined]
                ss = cfg.shared_expert_size  # type: ignore[attr-defined]
                linear(p + M["shared"] + "gate_proj", ss, d, False)
                linear(p + M["shared"] + "up_proj", ss, d, False)
                linear(p + M["shared"] + "down_proj", d, ss, False)
                linear(p + M["shared_gate"], 1, d, False)
        elif cfg.fused_projections:
            linear(p + N["gate_up"], 2 * ff, d, cfg.mlp_has_bias)
            linear(p + N["down"], d, ff, cfg.mlp_has_bias)
        else:
            linear(p + N["gate"], ff, d, cfg.mlp_has_bias)
            linear(p + N["up"], ff, d, cfg.mlp_has_bias)
            linear(p + N["down"], d, ff, cfg.mlp_has_bias)
    norm(N["final_norm"])
    if not cfg.tie_word_embeddings:
        shapes[N["head"] + ".weight"] = (cfg.vocab_size, d)
    if cfg.head_bias:
        shapes[N["head"] + ".bias"] = (cfg.vocab_size,)
    return shapes


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``x @ W^T (+ b)`` for the Linear ``name`` (bias if the parameters have one)."""
    y = linear(xp, x, P[name + ".weight"])
    return y + P[name + ".bias"] if name + ".bias" in P else y


def _rope_kind(cfg: RotaryConfig, layer: int | None = None) -> tuple[str, dict, float]:
    """``(rope type, rope_scaling dict, theta)`` of ``layer`` (None: the config's own; Gemma 3's
    sliding layers have their own base and no scaling, ``cfg.layer_rope``)."""
    theta, rs = cfg.layer_rope(layer) if layer is not None else (cfg.rope_theta, cfg.rope_scaling)
    rs = rs or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    return ("longrope" if kind == "su" else kind), rs, float(theta)


def longrope_parameters(cfg: RotaryConfig, rs: dict) -> tuple[float, float]:
    """``(L, attention_factor)`` of a ``longrope`` dict: ``L = original_max_position_embeddings``
    (the dict's, else the config's field, else ``max_position_embeddings``); the factor is the
    dict's ``attention_factor``, else ``sqrt(1 + ln(s) / ln(L))`` for ``s > 1`` (1 otherwise) with
    ``s = factor``, or ``max_position_embeddings / L`` without one."""
    old = rs.get("original_max_position_embeddings")
    if old is None:
        old = getattr(cfg, "original_max_position_embeddings", None) or cfg.max_position_embeddings
    attention = rs.get("attention_factor")
    if attention is None:
        s = rs.get("factor") or cfg.max_position_embeddings / old
        attention = math.sqrt(1 + math.log(s) / math.log(old)) if s > 1 else 1.0
    return float(old), float(attention)


def rope_frequencies(
    cfg: RotaryConfig, layer: int | None = None, long: bool = False
) -> tuple[np.ndarray, float]:
    """``(inv_freq [rotary_dim / 2] float32, attention_factor)`` of the rope type of ``layer``
    (None: the config's ``rope_theta`` / ``rope_scaling``; see ``cfg.layer_rope``).

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
      ``m(s, a) = 0.1 a ln(s) + 1`` for ``s > 1``, else 1) multiplies cos and sin;
    - ``longrope`` (alias ``su``): ``inv_freq_k = 1 / (e_k * base_k)`` with ``e = short_factor``
      (``long_factor`` when ``long``; :func:`rotary` picks at run time) and the attention factor
      of :func:`longrope_parameters`."""
    dim = cfg.rotary_dim
    kind, rs, base = _rope_kind(cfg, layer)
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    inv = (np.float32(1.0) / np.power(np.float32(base), exponents)).astype(np.float32)
    if kind in ("default", "dynamic"):
        return inv, 1.0
    if kind == "longrope":
        ext = np.asarray(rs["long_factor" if long else "short_factor"], dtype=np.float32)
        powers = np.power(np.float32(base), exponents).astype(np.float32)
        return (np.float32(1.0) / (ext * powers)).astype(np.float32), longrope_parameters(cfg, rs)[1]
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


def rotary(xp: Any, cfg: RotaryConfig, position_ids: Any, layer: int | None = None) -> tuple[Any, Any]:
    """``cos, sin`` of shape ``[b, 1, s, rotary_dim]`` (float32) for ``position_ids [b, s]`` (the
    rope of ``layer``; None: the config's).

    ``dynamic`` (NTK) scaling computes its frequencies at run time from ``n = max(position_ids) +
    1``: when ``n > M = max_position_embeddings`` the base becomes ``theta * (factor * n / M -
    (factor - 1)) ** (dim / (dim - 2))``, otherwise it is ``theta`` (Hugging Face updates its
    frequencies the same way for each call's positions). ``longrope`` uses ``long_factor`` when
    ``n > original_max_position_embeddings``, else ``short_factor`` (chosen per call, as Hugging
    Face does; its Phi-3 ``generate`` recomputes the cache when a sequence first crosses the
    length, a step-wise cache here keeps the keys computed before)."""
    inv, attention = rope_frequencies(cfg, layer)
    kind, rs, theta = _rope_kind(cfg, layer)
    pos = xp.astype(position_ids, xp.float32)
    if kind == "longrope":
        long_inv = rope_frequencies(cfg, layer, long=True)[0]
        n = xp.max(pos) + 1.0
        use_long = n > longrope_parameters(cfg, rs)[0]
        inv_freq = xp.where(use_long, xp.asarray(long_inv), xp.asarray(inv))
    elif kind == "dynamic":
        dim, m = cfg.rotary_dim, float(cfg.max_position_embeddings)
        factor = float(rs["factor"])
        n = xp.maximum(xp.max(pos) + 1.0, xp.asarray(m, dtype=xp.float32))
        ratio = xp.maximum(factor * n / m - (factor - 1.0), xp.asarray(1.0, dtype=xp.float32))
        base = theta * ratio ** (dim / (dim - 2))
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


def apply_rope(xp: Any, x: Any, cos: Any, sin: Any, rotary_dim: int, layout: str = "half") -> Any:
    """``rope(x)`` on the first ``rotary_dim`` dims of the last axis; the rest pass through.

    ``half``: ``x * cos + rotate_half(x) * sin``. ``interleaved`` (GPT-J): with ``a = x[2i]``,
    ``b = x[2i + 1]`` and ``c, s = cos, sin(angle_i)``, the pair becomes ``(a c - b s, b c + a s)``."""
    rot = x if rotary_dim == x.shape[-1] else x[..., :rotary_dim]
    if layout == "interleaved":
        half = rotary_dim // 2
        c, s = cos[..., :half], sin[..., :half]  # cos / sin are concat(angle, angle)
        pairs = xp.reshape(rot, (*rot.shape[:-1], half, 2))
        a, b = pairs[..., 0], pairs[..., 1]
        out = xp.reshape(xp.stack([a * c - b * s, b * c + a * s], axis=-1), rot.shape)
    else:
        out = rot * cos + rotate_half(xp, rot) * sin
    return out if rotary_dim == x.shape[-1] else xp.concat([out, x[..., rotary_dim:]], axis=-1)


def _rms(xp: Any, cfg: RotaryConfig, w: Any, x: Any) -> Any:
    """RMSNorm with weight ``norm_offset + w``."""
    return xp.rms_norm(x, w + cfg.norm_offset if cfg.norm_offset else w, eps=cfg.norm_eps)


def _norm(xp: Any, cfg: RotaryConfig, P: Any, name: str, x: Any) -> Any:
    """The norm ``name``: RMSNorm with weight ``norm_offset + w``, or LayerNorm with bias."""
    w = P[name + ".weight"]
    if cfg.norm_kind == "layer":
        return xp.layer_norm(x, w, P[name + ".bias"], eps=cfg.norm_eps)
    return _rms(xp, cfg, w, x)


def alibi_slopes(heads: int) -> np.ndarray:
    """ALiBi's per-head slopes (float32): with ``n = 2 ** floor(log2(heads))``, head ``h < n`` has
    ``(2 ** (-8 / n)) ** (h + 1)``; the remaining ``heads - n`` heads take the odd powers
    ``1, 3, 5, ...`` of ``2 ** (-8 / (2 n))``."""
    n = 2 ** math.floor(math.log2(heads))
    base = np.float32(2.0 ** (-(2.0 ** -(math.log2(n) - 3))))
    slopes = np.power(base, np.arange(1, n + 1, dtype=np.float32))
    if n != heads:
        extra = np.float32(2.0 ** (-(2.0 ** -(math.log2(2 * n) - 3))))
        odd = np.arange(1, 1 + 2 * min(n, heads - n), 2, dtype=np.float32)
        slopes = np.concatenate([slopes, np.power(extra, odd)])
    return slopes.astype(np.float32)


def _bfloat16(x: np.ndarray) -> np.ndarray:
    """``x`` (float32) rounded to the nearest bfloat16 (ties to even), returned as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def alibi_bias(xp: Any, cfg: RotaryConfig, attention_mask: Any) -> Any:
    """The additive score bias ``[b, heads, 1, T]`` of ALiBi: ``slope_h * pos_j`` with the key
    position ``pos_j = (cumsum(mask)_j - 1) * mask_j`` counted over real keys only (so a
    left-padded row starts at 0); softmax ignores the per-query constant this leaves out.

    With ``cfg.alibi_bfloat16`` (Falcon) the bias is ``bf16(bf16(slope_h) * pos_j) /
    sqrt(head_dim)`` (``bf16``: rounding to bfloat16, as Hugging Face's Falcon computes it), read
    from a ``[max_position_embeddings, heads]`` table built at trace time (positions clipped to it)."""
    slopes = alibi_slopes(cfg.num_attention_heads)
    if not getattr(cfg, "alibi_bfloat16", False):
        m = xp.astype(attention_mask, xp.float32)
        pos = (xp.cumulative_sum(m, axis=-1) - 1.0) * m
        return xp.asarray(slopes)[None, :, None, None] * pos[:, None, None, :]
    n = cfg.max_position_embeddings
    table = _bfloat16(np.arange(n, dtype=np.float32)[:, None] * _bfloat16(slopes)[None, :])
    table = (table / np.float32(math.sqrt(cfg.head_dim))).astype(np.float32)
    m = xp.astype(attention_mask, xp.int64)
    pos = xp.clip((xp.cumulative_sum(m, axis=-1) - 1) * m, 0, n - 1)
    bias = xp.take(xp.asarray(table), pos, axis=0)  # [b, T, heads]
    return xp.permute_dims(bias, (0, 2, 1))[:, :, None, :]


def _qkv(xp: Any, P: Any, cfg: RotaryConfig, p: str, x: Any) -> tuple[Any, Any, Any]:
    """``q [b, nh, s, hd]``, ``k, v [b, nkv, s, hd]`` before rope: separate projections, one fused
    ``qkv_proj`` split in row order q, k, v, or one fused projection whose rows are
    ``[q_h; k_h; v_h]`` per head (``interleaved``), ``[q_{g r} .. q_{g r + r - 1}; k_g; v_g]`` per
    kv head ``g`` with ``r = nh / nkv`` (``grouped``, Falcon), or 4 blocks of ``[q; v; k]`` rows
    (``hidden / 4`` each, covering heads ``nh / 4`` at a time; ``codegen``); then the ``qk_norm``."""
    N, hd, nh, nkv = cfg.names, cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    if cfg.qkv_layout in ("interleaved", "grouped"):
        y = _linear(xp, P, p + N["qkv"], x)
        b, s = y.shape[0], y.shape[1]
        r = nh // nkv if cfg.qkv_layout == "grouped" else 1
        groups = nkv if cfg.qkv_layout == "grouped" else nh
        y = xp.permute_dims(xp.reshape(y, (b, s, groups, (r + 2) * hd)), (0, 2, 1, 3))  # [b, g, s, .]
        q, k, v = y[..., : r * hd], y[..., r * hd : (r + 1) * hd], y[..., (r + 1) * hd :]
        if r > 1:  # [b, g, s, r * hd] -> [b, g * r, s, hd] (query head g * r + j)
            q = xp.reshape(
                xp.permute_dims(xp.reshape(q, (b, groups, s, r, hd)), (0, 1, 3, 2, 4)), (b, nh, s, hd)
            )
    elif cfg.qkv_layout == "codegen":
        y = _linear(xp, P, p + N["qkv"], x)
        b, s = y.shape[0], y.shape[1]
        local = nh * hd // 4
        y = xp.reshape(y, (b, s, 4, 3 * local))
        q, v, k = (
            split_heads(xp.reshape(y[..., i * local : (i + 1) * local], (b, s, 4 * local)), nh, hd)
            for i in range(3)
        )
    else:
        if cfg.fused_projections:
            nq, nk = nh * hd, nkv * hd
            y = _linear(xp, P, p + N["qkv"], x)
            q, k, v = y[..., :nq], y[..., nq : nq + nk], y[..., nq + nk :]
        else:
            q, k, v = (_linear(xp, P, p + N[n], x) for n in "qkv")
        if cfg.qk_norm == "full_rms":
            q = xp.rms_norm(q, P[p + N["q_norm"] + ".weight"], eps=cfg.norm_eps)
            k = xp.rms_norm(k, P[p + N["k_norm"] + ".weight"], eps=cfg.norm_eps)
        q, k, v = split_heads(q, nh, hd), split_heads(k, nkv, hd), split_heads(v, nkv, hd)
    if cfg.qk_norm == "head_rms":  # with the config's norm_offset (Gemma 3: 1 + w)
        q = _rms(xp, cfg, P[p + N["q_norm"] + ".weight"], q)
        k = _rms(xp, cfg, P[p + N["k_norm"] + ".weight"], k)
    elif cfg.qk_norm == "head_layer":
        q = _norm(xp, cfg, P, p + N["q_norm"], q)
        k = _norm(xp, cfg, P, p + N["k_norm"], k)
    elif cfg.qk_norm == "per_head_layer":
        q = _per_head_layer_norm(xp, cfg, P, p + N["q_norm"], q)
        k = _per_head_layer_norm(xp, cfg, P, p + N["k_norm"], k)
    return q, k, v


def _per_head_layer_norm(xp: Any, cfg: RotaryConfig, P: Any, name: str, x: Any) -> Any:
    """A bias-free LayerNorm over head_dim with its own weight per head (``name.norms.{h}``)."""
    heads, hd = x.shape[1], x.shape[-1]
    w = xp.stack([P[f"{name}.norms.{h}.weight"] for h in range(heads)], axis=0)
    plain = xp.layer_norm(x, xp.ones((hd,), dtype=x.dtype), xp.zeros((hd,), dtype=x.dtype), eps=cfg.norm_eps)
    return plain * w[None, :, None, :]


def _act(xp: Any, cfg: RotaryConfig, x: Any) -> Any:
    kind = cfg.mlp_activation
    if kind == "silu":
        return xp.silu(x)
    return xp.gelu(x, approximate="tanh" if kind == "gelu_tanh" else "none")


def _mlp(xp: Any, P: Any, cfg: RotaryConfig, i: int, x: Any) -> Any:
    """``down(act(gate(x)) * up(x))`` (``gated``; a fused ``gate_up_proj`` has the gate rows
    first), ``fc_out(act(fc_in(x)))`` (``plain``) or the mixture of experts (``moe``)."""
    N = cfg.names
    p = f"{N['layers']}{i}."
    if cfg.mlp_kind == "plain":
        return _linear(xp, P, p + N["fc_out"], _act(xp, cfg, _linear(xp, P, p + N["fc_in"], x)))
    if cfg.mlp_kind == "moe" and cfg.layer_is_moe(i):  # type: ignore[attr-defined]
        return _moe(xp, P, cfg, p, x)
    if cfg.fused_projections:
        y = _linear(xp, P, p + N["gate_up"], x)
        ff = cfg.intermediate_size
        gate, up = y[..., :ff], y[..., ff:]
    else:
        gate, up = _linear(xp, P, p + N["gate"], x), _linear(xp, P, p + N["up"], x)
    return _linear(xp, P, p + N["down"], _act(xp, cfg, gate) * up)


def _swiglu(xp: Any, P: Any, cfg: Any, gate: str, up: str, down: str, x: Any) -> Any:
    return _linear(xp, P, down, _act(xp, cfg, _linear(xp, P, gate, x)) * _linear(xp, P, up, x))


def _moe(xp: Any, P: Any, cfg: Any, p: str, x: Any) -> Any:
    """Mixture of experts, computed densely. Router probabilities ``r = softmax(x @ router^T)``
    over the ``E`` experts; the ``k = num_experts_per_tok`` largest are kept (``r_e >=`` the k-th
    largest), ``w_e = r_e`` for a kept expert and 0 otherwise, divided by ``sum_e w_e`` when
    ``moe_norm_topk`` (Mixtral; Qwen2-MoE's ``norm_topk_prob``);
    ``out = sum_e w_e * down_e(act(gate_e(x)) * up_e(x))``, plus
    ``sigmoid(x @ shared_gate^T) * shared(x)`` with a shared expert (Qwen2-MoE). Every expert runs
    on every token (exact and simple for small models: the weights zero the unchosen experts'
    outputs); equal probabilities at the k-th value keep every tied expert."""
    M = cfg.moe_names
    probs = xp.softmax(_linear(xp, P, p + M["router"], x), axis=-1)  # [b, s, E]
    kth = xp.top_k(probs, cfg.num_experts_per_tok)[0][..., -1:]
    weights = xp.where(probs >= kth, probs, xp.zeros_like(probs))
    if cfg.moe_norm_topk:
        weights = weights / xp.sum(weights, axis=-1, keepdims=True)
    out = None
    for e in range(cfg.num_experts):
        q = p + M["expert"].format(e=e)
        y = _swiglu(xp, P, cfg, q + M["gate"], q + M["up"], q + M["down"], x) * weights[..., e : e + 1]
        out = y if out is None else out + y
    if cfg.shared_expert_size:
        s = p + M["shared"]
        shared = _swiglu(xp, P, cfg, s + "gate_proj", s + "up_proj", s + "down_proj", x)
        out = out + xp.sigmoid(_linear(xp, P, p + M["shared_gate"], x)) * shared
    return out


def _attention(
    xp: Any,
    P: Any,
    cfg: RotaryConfig,
    i: int,
    x: Any,
    rope: Any,
    mask: Any,
    cache: Any,
    offset: Any,
    bias: Any = None,
) -> tuple[Any, Any]:
    """``o_proj(attend(rope(q), rope(k), v))`` of layer ``i`` and the updated cache; ``rope`` is
    ``(cos, sin)`` or None (no rotary: learned positions, ALiBi's additive ``bias``)."""
    N = cfg.names
    p = f"{N['layers']}{i}."
    q, k, v = _qkv(xp, P, cfg, p, x)
    if rope is not None:
        cos, sin = rope
        rd, layout = cfg.rotary_dim, cfg.rope_layout
        q, k = apply_rope(xp, q, cos, sin, rd, layout), apply_rope(xp, k, cos, sin, rd, layout)
    keys, values, cache = update_cache(cache, i, k, v, offset)
    a = attend(  # grouped-query attention when nkv < nh (attend reads each kv head once)
        q,
        keys,
        values,
        mask,
        offset,
        cfg.attention_scale,
        window=cfg.layer_window(i),
        softcap=cfg.attn_softcap,
        bias=bias,
    )
    return _linear(xp, P, p + N["o"], merge_heads(a)), cache


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
    N = cfg.names
    h = embed(xp, P[N["embed"] + ".weight"], input_ids)
    if cfg.embedding_scale != 1.0:
        h = h * cfg.embedding_scale
    if cfg.position_kind == "learned":
        h = h + xp.take(P[N["pos_embed"] + ".weight"], position_ids, axis=0)
    if N.get("embed_norm"):
        h = _norm(xp, cfg, P, N["embed_norm"], h)
    bias = alibi_bias(xp, cfg, attention_mask) if cfg.position_kind == "alibi" else None
    ropes: dict[str, Any] = {}  # one cos / sin pair per distinct layer rope (Gemma 3: local, global)

    def layer_rope(i: int) -> Any:
        if cfg.position_kind != "rope":
            return None
        key = repr(cfg.layer_rope(i))
        if key not in ropes:
            cos, sin = rotary(xp, cfg, position_ids, i)
            ropes[key] = (xp.astype(cos, h.dtype), xp.astype(sin, h.dtype))
        return ropes[key]

    rs = cfg.residual_scale

    def scaled(y: Any) -> Any:
        return y * rs if rs != 1.0 else y

    hidden = [h]
    for i in range(cfg.num_hidden_layers):
        p = f"{N['layers']}{i}."
        x = _norm(xp, cfg, P, p + N["pre_attn"], h) if N["pre_attn"] else h
        a, cache = _attention(xp, P, cfg, i, x, layer_rope(i), attention_mask, cache, offset, bias)
        if N["post_attn"]:
            a = _norm(xp, cfg, P, p + N["post_attn"], a)
        if cfg.parallel_residual:
            xm = _norm(xp, cfg, P, p + N["pre_mlp"], h) if N["pre_mlp"] else x
            h = h + scaled(a) + scaled(_mlp(xp, P, cfg, i, xm))
        else:
            h = h + scaled(a)
            x = _norm(xp, cfg, P, p + N["pre_mlp"], h) if N["pre_mlp"] else h
            m = _mlp(xp, P, cfg, i, x)
            if N["post_mlp"]:
                m = _norm(xp, cfg, P, p + N["post_mlp"], m)
            h = h + scaled(m)
        hidden.append(h)
    h = _norm(xp, cfg, P, N["final_norm"], h)
    hidden[-1] = h
    head = P[N["embed"] + ".weight"] if cfg.tie_word_embeddings else P[N["head"] + ".weight"]
    logits = linear(xp, h, head)
    if cfg.head_bias:
        logits = logits + P[N["head"] + ".bias"]
    if cfg.logits_divisor != 1.0:
        logits = logits / cfg.logits_divisor
    if cfg.final_softcap is not None:
        logits = xp.tanh(logits / cfg.final_softcap) * cfg.final_softcap
    return (logits, cache, tuple(hidden)) if output_hidden_states else (logits, cache)
