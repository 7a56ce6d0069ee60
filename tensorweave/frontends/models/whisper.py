"""Whisper (speech to text, ``speech2seq-lm``), written once against ``xp``.

Names are Hugging Face's ``WhisperForConditionalGeneration`` names (``model.`` prefix). Every
linear is ``x @ W^T + b`` (the attention ``k_proj`` has no bias); every norm is a LayerNorm
``(x - mean) / sqrt(var + 1e-5) * w + b``; ``act`` is ``activation_function`` (gelu: erf).

- **Front end**: ``input_features [b, num_mel_bins, F]`` (``F = 2 * max_source_positions``)
  pass ``gelu(conv1(x))`` then ``gelu(conv2(.))``: two 1-D convolutions of kernel 3 with one
  zero frame of padding on each side, strides 1 and 2 (``conv(x)[t] = b + sum_k W[:, :, k]
  x[s t + k - 1]``), giving ``max_source_positions`` frames of ``d_model``; the stored sinusoid
  table ``encoder.embed_positions.weight`` is added (row ``t`` for frame ``t``).
- **Encoder** (pre-norm, every frame attends to every frame): ``h += out_proj(attn(
  self_attn_layer_norm(h)))``, ``h += fc2(act(fc1(final_layer_norm(h))))``; ``enc =
  layer_norm(h)``.
- **Decoder**: ``h = embed_tokens[ids] + embed_positions[offset + i]``; per layer causal
  self-attention, cross-attention over ``enc`` (``encoder_attn``), feed-forward, each
  ``h += sub(norm(h))``; ``out = layer_norm(h)``; ``logits = out @ head^T`` with ``head =
  embed_tokens`` when ``tie_word_embeddings`` else ``proj_out``.
- Attention: ``softmax(where(allowed, q k^T / sqrt(head_dim), min)) v``.

``encode`` / ``decode`` / ``init_cache`` / ``cross_attention_cache`` / ``reorder_cache`` /
``forward`` have T5's signatures and caches, with ``input_features`` in place of the encoder's
``input_ids``; the encoder has no padding (``attention_mask`` is accepted and ignored, as in
Hugging Face) and ``decode``'s ``encoder_attention_mask`` may be None (every frame visible).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from . import cache as kv_cache
from .attention import attend, default_scale, merge_heads, split_heads
from .config import WhisperConfig
from .gpt2 import activation
from .llama import _linear
from .t5 import reorder_cache  # noqa: F401 (the same cache layout; re-exported)
from .weights import ParamView

BASE_PREFIX = "model."
# the tied copy of the token embedding under the head's name
IGNORED_SUFFIXES: tuple[str, ...] = ()
HEADS = ("speech2seq-lm",)
#: the encoder's input (T5 and BART take ``input_ids``)
ENCODER_INPUT = "input_features"
EPS = 1e-5
ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj")


# ------------------------------------------------------------------ names and shapes
def _attn_shapes(p: str, d: int) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for name in ATTENTION:
        shapes[f"{p}{name}.weight"] = (d, d)
        if name != "k_proj":
            shapes[f"{p}{name}.bias"] = (d,)
    return shapes


def _norm_shapes(p: str, d: int) -> dict[str, tuple]:
    return {p + "weight": (d,), p + "bias": (d,)}


def _ff_shapes(p: str, d: int, ff: int) -> dict[str, tuple]:
    return {p + "fc1.weight": (ff, d), p + "fc1.bias": (ff,), p + "fc2.weight": (d, ff), p + "fc2.bias": (d,)}


def parameter_shapes(cfg: WhisperConfig) -> dict[str, tuple]:
    """Hugging Face name (``WhisperForConditionalGeneration``) -> shape of every parameter read."""
    d, mel = cfg.d_model, cfg.num_mel_bins
    shapes: dict[str, tuple] = {
        "model.encoder.conv1.weight": (d, mel, 3),
        "model.encoder.conv1.bias": (d,),
        "model.encoder.conv2.weight": (d, d, 3),
        "model.encoder.conv2.bias": (d,),
        "model.encoder.embed_positions.weight": (cfg.max_source_positions, d),
        "model.decoder.embed_tokens.weight": (cfg.vocab_size, d),
        "model.decoder.embed_positions.weight": (cfg.max_target_positions, d),
    }
    for i in range(cfg.encoder_layers):
        p = f"model.encoder.layers.{i}."
        shapes.update(_attn_shapes(p + "self_attn.", d))
        shapes.update(_norm_shapes(p + "self_attn_layer_norm.", d))
        shapes.update(_ff_shapes(p, d, cfg.encoder_ffn_dim))
        shapes.update(_norm_shapes(p + "final_layer_norm.", d))
    shapes.update(_norm_shapes("model.encoder.layer_norm.", d))
    for i in range(cfg.decoder_layers):
        p = f"model.decoder.layers.{i}."
        for sub in ("self_attn", "encoder_attn"):
            shapes.update(_attn_shapes(f"{p}{sub}.", d))
            shapes.update(_norm_shapes(f"{p}{sub}_layer_norm.", d))
        shapes.update(_ff_shapes(p, d, cfg.decoder_ffn_dim))
        shapes.update(_norm_shapes(p + "final_layer_norm.", d))
    shapes.update(_norm_shapes("model.decoder.layer_norm.", d))
    if not cfg.tie_word_embeddings:
        shapes["proj_out.weight"] = (cfg.vocab_size, d)
    return shapes


# ------------------------------------------------------------------ blocks
def _norm(xp: Any, P: Any, name: str, x: Any) -> Any:
    return xp.layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps=EPS)


def _conv_gelu(xp: Any, P: Any, name: str, x: Any, stride: int) -> Any:
    """``gelu(conv1d(x))`` over ``x [b, channels, frames]``: kernel 3, one zero frame of padding
    on each side, ``stride``; the IR's ``conv`` op."""
    return xp.gelu(xp.conv(x, P[name + ".weight"], P[name + ".bias"], strides=[stride], pads=[1, 1]))


def _heads(xp: Any, P: Any, name: str, x: Any, nh: int) -> Any:
    return split_heads(_linear(xp, P, name, x), nh, x.shape[-1] // nh)


def _feed_forward(xp: Any, P: Any, cfg: WhisperConfig, p: str, x: Any) -> Any:
    """``fc2(act(fc1(x)))``."""
    return _linear(xp, P, p + "fc2", activation(xp, cfg.activation_function, _linear(xp, P, p + "fc1", x)))


def _ones(xp: Any, b: Any, t: Any) -> Any:
    """An all-ones ``[b, t]`` int64 mask (``t`` may be symbolic)."""
    return xp.ones((b, t), dtype=xp.int64)


# ------------------------------------------------------------------ encoder
def check_features(cfg: WhisperConfig, shape: tuple) -> None:
    """``input_features`` must be ``[batch, num_mel_bins, 2 * max_source_positions]``."""
    want = (cfg.num_mel_bins, cfg.num_frames)
    if len(shape) != 3 or tuple(shape[1:]) != want:
        raise ValueError(
            f"input_features must be [batch, num_mel_bins={want[0]}, frames={want[1]}] (Whisper pads or "
            f"truncates the log-mel features to 2 * max_source_positions frames), got shape {tuple(shape)}"
        )


def encode(
    params: dict,
    cfg: WhisperConfig,
    input_features: Any,
    attention_mask: Any = None,
    output_hidden_states: bool = False,
) -> Any:
    """Encoder output ``[b, max_source_positions, d_model]`` (after the final norm); with
    ``output_hidden_states`` also the ``encoder_layers + 1`` hidden states (the embedded frames,
    each layer's output, the last one replaced by the normed output). ``attention_mask`` is
    ignored (Whisper's encoder sees every frame)."""
    xp = array_namespace(input_features)
    check_features(cfg, tuple(input_features.shape))
    P = ParamView(params)
    nh = cfg.encoder_attention_heads
    scale = default_scale(cfg.d_model // nh)
    x = _conv_gelu(xp, P, "model.encoder.conv1", input_features, 1)
    x = _conv_gelu(xp, P, "model.encoder.conv2", x, 2)
    h = xp.permute_dims(x, (0, 2, 1)) + P["model.encoder.embed_positions.weight"][None]
    b, s = h.shape[0], h.shape[1]
    mask = _ones(xp, b, s)
    hidden = [h]
    for i in range(cfg.encoder_layers):
        p = f"model.encoder.layers.{i}."
        a = p + "self_attn."
        x = _norm(xp, P, p + "self_attn_layer_norm", h)
        q, k, v = (_heads(xp, P, a + n, x, nh) for n in ATTENTION[:3])
        h = h + _linear(xp, P, a + "out_proj", merge_heads(attend(q, k, v, mask, 0, scale, causal=False)))
        h = h + _feed_forward(xp, P, cfg, p, _norm(xp, P, p + "final_layer_norm", h))
        hidden.append(h)
    h = _norm(xp, P, "model.encoder.layer_norm", h)
    hidden[-1] = h
    return (h, tuple(hidden)) if output_hidden_states else h


# ------------------------------------------------------------------ decoder caches
def cross_attention_cache(params: dict, cfg: WhisperConfig, encoder_hidden_states: Any) -> list:
    """Per decoder layer ``(key, value)`` of the encoder output, ``[b, heads, frames, head_dim]``."""
    xp = array_namespace(encoder_hidden_states)
    P = ParamView(params)
    nh = cfg.decoder_attention_heads
    return [
        tuple(
            _heads(xp, P, f"model.decoder.layers.{i}.encoder_attn.{n}", encoder_hidden_states, nh)
            for n in ("k_proj", "v_proj")
        )
        for i in range(cfg.decoder_layers)
    ]


def init_cache(
    params: dict,
    cfg: WhisperConfig,
    encoder_hidden_states: Any,
    layout: str = "growing",
    max_length: int | None = None,
) -> dict:
    """T5's cache (``t5.init_cache``): an empty growing or ``max_length`` static self-attention
    cache plus the cross-attention keys/values of the encoder output."""
    return kv_cache.seq2seq_cache(
        encoder_hidden_states,
        cfg.decoder_layers,
        cfg.num_heads,
        cfg.d_kv,
        cross_attention_cache(params, cfg, encoder_hidden_states),
        layout,
        max_length,
        "Whisper",
    )


# ------------------------------------------------------------------ decoder
def decode(
    params: dict,
    cfg: WhisperConfig,
    decoder_input_ids: Any,
    encoder_hidden_states: Any,
    encoder_attention_mask: Any = None,
    cache: dict | None = None,
    offset: Any = 0,
    decoder_attention_mask: Any = None,
    output_hidden_states: bool = False,
) -> tuple:
    """One decoder call, T5's contract (``t5.decode``): ``(logits [b, t, vocab], cache[,
    hidden_states])``; tokens sit at positions ``offset .. offset + t - 1`` (which must stay below
    ``max_target_positions``). ``encoder_attention_mask`` (None: all ones) covers the encoder
    frames; ``decoder_attention_mask`` the self-attention keys, combined with the causal rule."""
    xp = array_namespace(decoder_input_ids)
    P = ParamView(params)
    nh = cfg.decoder_attention_heads
    scale = default_scale(cfg.d_kv)
    b, t = decoder_input_ids.shape[0], decoder_input_ids.shape[1]
    self_cache = None if cache is None else cache["self"]
    cross = None if cache is None else cache["cross"]
    if cross is None:
        if encoder_hidden_states is None:
            raise ValueError(
                "decode needs encoder_hidden_states when the cache has no cross-attention keys/values"
            )
        cross = cross_attention_cache(P, cfg, encoder_hidden_states)
    if encoder_attention_mask is None:
        encoder_attention_mask = _ones(xp, b, cross[0][0].shape[2])
    pos = xp.arange(t) + offset
    h = xp.take(P["model.decoder.embed_tokens.weight"], decoder_input_ids, axis=0)
    h = h + xp.take(P["model.decoder.embed_positions.weight"], pos, axis=0)[None]
    self_mask = None
    hidden = [h]
    for i in range(cfg.decoder_layers):
        p = f"model.decoder.layers.{i}."
        a = p + "self_attn."
        x = _norm(xp, P, p + "self_attn_layer_norm", h)
        q, k, v = (_heads(xp, P, a + n, x, nh) for n in ATTENTION[:3])
        keys, values, self_cache = kv_cache.update_cache(self_cache, i, k, v, offset)
        if self_mask is None:
            self_mask = decoder_attention_mask
            if self_mask is None:
                self_mask = _ones(xp, b, keys.shape[2])
        h = h + _linear(xp, P, a + "out_proj", merge_heads(attend(q, keys, values, self_mask, offset, scale)))
        c = p + "encoder_attn."
        x = _norm(xp, P, p + "encoder_attn_layer_norm", h)
        q = _heads(xp, P, c + "q_proj", x, nh)
        ck, cv = cross[i]
        attn = attend(q, ck, cv, encoder_attention_mask, 0, scale, causal=False)
        h = h + _linear(xp, P, c + "out_proj", merge_heads(attn))
        h = h + _feed_forward(xp, P, cfg, p, _norm(xp, P, p + "final_layer_norm", h))
        hidden.append(h)
    h = _norm(xp, P, "model.decoder.layer_norm", h)
    hidden[-1] = h
    head = P["model.decoder.embed_tokens.weight"] if cfg.tie_word_embeddings else P["proj_out.weight"]
    logits = xp.matmul(h, xp.permute_dims(head, (1, 0)))
    new_cache = None if cache is None else {"self": self_cache, "cross": cross}
    return (logits, new_cache, tuple(hidden)) if output_hidden_states else (logits, new_cache)


def forward(
    params: dict,
    cfg: WhisperConfig,
    input_features: Any,
    attention_mask: Any,
    decoder_input_ids: Any,
    decoder_attention_mask: Any = None,
    output_hidden_states: bool = False,
) -> dict:
    """Encoder then decoder (no cache): ``{"logits", "encoder_last_hidden_state"}`` plus
    ``encoder_hidden_states`` / ``decoder_hidden_states`` with ``output_hidden_states``
    (``attention_mask`` is ignored, as in Hugging Face)."""
    P = ParamView(params)
    if output_hidden_states:
        enc, enc_hidden = encode(P, cfg, input_features, output_hidden_states=True)
    else:
        enc = encode(P, cfg, input_features)
    out = decode(
        P,
        cfg,
        decoder_input_ids,
        enc,
        None,
        decoder_attention_mask=decoder_attention_mask,
        output_hidden_states=output_hidden_states,
    )
    res = {"logits": out[0], "encoder_last_hidden_state": enc}
    if output_hidden_states:
        res["encoder_hidden_states"], res["decoder_hidden_states"] = enc_hidden, out[2]
    return res
