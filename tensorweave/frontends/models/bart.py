"""The BART encoder-decoder family, written once against ``xp``: bart, mbart,
marian, m2m_100, blenderbot, blenderbot-small and bigbird_pegasus (full attention). Each type is a
config class (``config.BART_CONFIGS``) whose class attributes are the switches read here.

Names are Hugging Face's ``*ForConditionalGeneration`` / ``MarianMTModel`` names (``model.``
prefix). Every linear is ``x @ W^T + b`` (BigBird-Pegasus' attention projections without ``b``
unless ``use_bias``); every norm is a LayerNorm ``(x - mean) / sqrt(var + 1e-5) * w + b``.

- **Embeddings** of a stack: ``e = tok[ids] * s + pos`` with ``s = sqrt(d_model)`` when
  ``scale_embedding`` (else 1); ``pos`` is ``embed_positions.weight[p + offset]`` (learned,
  ``offset`` 2 for bart / mbart, 0 otherwise), Marian's sinusoid table row ``p`` (sines in the
  first half, cosines in the second) or M2M-100's fairseq table row ``pad + cumsum(ids != pad)``
  (padding tokens take row ``pad``, a zero row). ``p`` counts from 0 at the first encoder token
  and at decoder position ``offset`` in the decoder. ``layernorm_embedding`` then normalises
  ``e`` (bart, mbart, blenderbot-small's encoder); blenderbot-small's decoder normalises the
  token part before adding ``pos`` (and does not scale it).
- **Blocks**: attention ``softmax(where(allowed, q k^T / sqrt(head_dim), min)) v``, feed-forward
  ``fc2(act(fc1(x)))``. Post-norm (bart, marian, blenderbot-small): ``h = norm(h + sub(h))`` per
  sub-layer; pre-norm (the others): ``h = h + sub(norm(h))``, and the stack ends with its final
  norm (``layer_norm``, BigBird-Pegasus' ``layernorm_embedding``). Decoder layers run causal
  self-attention, cross-attention over the encoder output (encoder padding masked), then the
  feed-forward.
- **Heads**: ``seq2seq-lm``: ``logits = out @ head^T + final_logits_bias`` with ``head`` the
  decoder's embedding when ``tie_word_embeddings`` (else ``lm_head.weight``); M2M-100 has no
  bias. ``sequence-classification`` (bart, mbart, bigbird_pegasus):
  ``out_proj(tanh(dense(out[:, e])))``, ``e`` the last EOS of ``input_ids``;
  ``question-answering``: ``qa_outputs(out)`` split into start / end logits.

Caches are T5's (``t5.py``): ``{"self": <cache.py cache>, "cross": [(key, value) per decoder
layer] or None}``; ``encode`` / ``decode`` / ``init_cache`` / ``cross_attention_cache`` /
``reorder_cache`` / ``forward`` have T5's signatures.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...ir import array_namespace
from . import cache as kv_cache
from .attention import attend, merge_heads, split_heads
from .bert import _layer_norm
from .config import BartConfig
from .gpt2 import activation
from .llama import _linear
from .t5 import reorder_cache  # noqa: F401 (same cache layout; re-exported)
from .weights import ParamView

BASE_PREFIX = "model."
# tied copies of the shared embedding, and Marian's sinusoid table (computed, never read)
IGNORED_SUFFIXES = (
    "model.encoder.embed_tokens.weight",
    "model.decoder.embed_tokens.weight",
    "embed_positions.weight",
    "embed_positions.weights",
)
#: the heads; `sequence-classification` / `question-answering` for the types whose config lists them
HEADS = ("seq2seq-lm", "sequence-classification", "question-answering")
EPS = 1e-5


# ------------------------------------------------------------------ names and shapes
def embedding_names(cfg: BartConfig) -> tuple[str, str]:
    """``(encoder, decoder)`` token-embedding parameter names."""
    if cfg.shared_embeddings:
        return "model.shared.weight", "model.shared.weight"
    return "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"


def head_name(cfg: BartConfig) -> str:
    return embedding_names(cfg)[1] if cfg.tie_word_embeddings else "lm_head.weight"


def _linear_shapes(p: str, out: int, inp: int, bias: bool) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {p + ".weight": (out, inp)}
    if bias:
        shapes[p + ".bias"] = (out,)
    return shapes


def _norm_shapes(p: str, d: int) -> dict[str, tuple]:
    return {p + ".weight": (d,), p + ".bias": (d,)}


def _attn_shapes(p: str, d: int, names: tuple, bias: bool) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for n in names:
        shapes.update(_linear_shapes(p + n, d, d, bias))
    return shapes


DECODER_ATTENTION_NAMES = ("q_proj", "k_proj", "v_proj", "out_proj")


def check_head(cfg: BartConfig, head: str | None) -> str:
    """``head`` (None: ``seq2seq-lm``) if the type has it, else a one-line ValueError."""
    head = head or "seq2seq-lm"
    heads = sorted(set(cfg.head_classes.values()))
    if head not in heads:
        raise ValueError(f"{cfg.model_type} has no head {head!r}; its heads: {heads}")
    return head


def _head_shapes(cfg: BartConfig, head: str) -> dict[str, tuple]:
    d = cfg.d_model
    if head == "sequence-classification":
        return {
            **_linear_shapes("classification_head.dense", d, d, True),
            **_linear_shapes("classification_head.out_proj", cfg.num_labels, d, True),
        }
    if head == "question-answering":
        return _linear_shapes("qa_outputs", 2, d, True)
    shapes: dict[str, tuple] = {}
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.target_vocab_size, d)
    if cfg.has_final_logits_bias:
        shapes["final_logits_bias"] = (1, cfg.target_vocab_size)
    return shapes


def parameter_shapes(cfg: BartConfig, head: str | None = None) -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter ``head`` (default ``seq2seq-lm``) reads."""
    d, bias = cfg.d_model, cfg.attention_bias
    enc_emb, dec_emb = embedding_names(cfg)
    shapes: dict[str, tuple] = {enc_emb: (cfg.vocab_size, d), dec_emb: (cfg.target_vocab_size, d)}
    for stack in ("encoder", "decoder"):
        s = f"model.{stack}."
        if cfg.positions == "learned":
            shapes[s + "embed_positions.weight"] = (cfg.max_position_embeddings + cfg.position_offset, d)
        if cfg.embedding_norm is not None:
            shapes.update(_norm_shapes(s + "layernorm_embedding", d))
        if cfg.final_norm is not None:
            shapes.update(_norm_shapes(s + cfg.final_norm, d))
        layers = cfg.encoder_layers if stack == "encoder" else cfg.decoder_layers
        ffn = cfg.encoder_ffn_dim if stack == "encoder" else cfg.decoder_ffn_dim
        for i in range(layers):
            p = f"{s}layers.{i}."
            names = cfg.encoder_attention_names if stack == "encoder" else DECODER_ATTENTION_NAMES
            shapes.update(_attn_shapes(p + "self_attn.", d, names, bias))
            shapes.update(_norm_shapes(p + "self_attn_layer_norm", d))
            if stack == "decoder":
                shapes.update(_attn_shapes(p + "encoder_attn.", d, DECODER_ATTENTION_NAMES, bias))
                shapes.update(_norm_shapes(p + "encoder_attn_layer_norm", d))
            shapes.update(_linear_shapes(p + "fc1", ffn, d, True))
            shapes.update(_linear_shapes(p + "fc2", d, ffn, True))
            shapes.update(_norm_shapes(p + "final_layer_norm", d))
    shapes.update(_head_shapes(cfg, check_head(cfg, head)))
    return shapes


# ------------------------------------------------------------------ positions
def marian_sinusoids(rows: int, dim: int) -> np.ndarray:
    """Marian's table ``[rows, dim]``: angle ``p / 10000^(2 floor(j/2) / dim)`` (float64); the
    first ``ceil(dim/2)`` columns are the sines of the even ``j``, the rest the cosines of the
    odd ``j`` (not interleaved); float32."""
    j = np.arange(dim)
    angle = np.arange(rows)[:, None] / np.power(10000.0, 2 * (j // 2) / dim)[None, :]
    half = dim // 2 + dim % 2
    out = np.empty((rows, dim), np.float32)
    out[:, :half] = np.sin(angle[:, 0::2])
    out[:, half:] = np.cos(angle[:, 1::2])
    return out


def fairseq_sinusoids(rows: int, dim: int, padding_idx: int) -> np.ndarray:
    """M2M-100's table ``[rows, dim]`` in float32: ``f_k = exp(-k log(10000) / (dim/2 - 1))``,
    row ``p`` is ``concat(sin(p f), cos(p f))`` (a zero column appended for odd ``dim``), row
    ``padding_idx`` all zeros."""
    half = dim // 2
    step = np.float32(math.log(10000) / (half - 1))
    freq = np.exp(np.arange(half, dtype=np.float32) * -step)
    angle = np.arange(rows, dtype=np.float32)[:, None] * freq[None, :]
    out = np.concatenate([np.sin(angle), np.cos(angle)], axis=1)
    if dim % 2:
        out = np.concatenate([out, np.zeros((rows, 1), np.float32)], axis=1)
    out[padding_idx] = 0
    return out.astype(np.float32)


def _positions(xp: Any, P: Any, cfg: BartConfig, stack: str, ids: Any, offset: Any) -> Any:
    """``[b or 1, s, d]`` position embeddings of ``ids [b, s]`` at positions ``offset ..``."""
    s = ids.shape[1]
    if cfg.positions == "sinusoidal_padded":
        pad = int(cfg.pad_token_id or 0)
        real = xp.astype(ids != pad, xp.int64)
        rows = (xp.cumulative_sum(real, axis=1) + offset) * real + pad
        table = fairseq_sinusoids(cfg.max_position_embeddings + pad + 2, cfg.d_model, pad)
        return xp.take(xp.asarray(table), rows, axis=0)
    pos = xp.arange(s) + offset
    if cfg.positions == "sinusoidal":
        table = xp.asarray(marian_sinusoids(cfg.max_position_embeddings, cfg.d_model))
    else:
        table = P[f"model.{stack}.embed_positions.weight"]
        pos = pos + cfg.position_offset
    return xp.take(table, pos, axis=0)[None]


def _embed(xp: Any, P: Any, cfg: BartConfig, stack: str, ids: Any, offset: Any) -> Any:
    """The input of a stack's first layer (see the module docstring)."""
    name = embedding_names(cfg)[0 if stack == "encoder" else 1]
    tok = xp.take(P[name], ids, axis=0)
    scale = cfg.scale_embedding and (stack == "encoder" or cfg.decoder_scales_embedding)
    if scale:
        tok = tok * math.sqrt(cfg.d_model)
    pos = _positions(xp, P, cfg, stack, ids, offset)
    norm = f"model.{stack}.layernorm_embedding"
    if cfg.embedding_norm == "decoder_first" and stack == "decoder":
        return _layer_norm(xp, P, norm, tok, EPS) + pos
    h = tok + pos
    return _layer_norm(xp, P, norm, h, EPS) if cfg.embedding_norm is not None else h


# ------------------------------------------------------------------ blocks
def _sublayer(xp: Any, P: Any, cfg: BartConfig, norm: str, h: Any, fn: Any) -> Any:
    """Pre-norm ``h + fn(norm(h))`` or post-norm ``norm(h + fn(h))``."""
    if cfg.pre_norm:
        return h + fn(_layer_norm(xp, P, norm, h, EPS))
    return _layer_norm(xp, P, norm, h + fn(h), EPS)


def _feed_forward(xp: Any, P: Any, cfg: BartConfig, p: str, x: Any) -> Any:
    """``fc2(act(fc1(x)))``."""
    y = _linear(xp, P, p + "fc1", x)
    name = cfg.activation_function
    y = xp.silu(y) if name in ("silu", "swish") else activation(xp, name, y)
    return _linear(xp, P, p + "fc2", y)


def _heads(xp: Any, P: Any, cfg: BartConfig, name: str, x: Any, heads: int) -> Any:
    return split_heads(_linear(xp, P, name, x), heads, cfg.d_model // heads)


def _scale(cfg: BartConfig, heads: int) -> float:
    return (cfg.d_model // heads) ** -0.5


def _ones(xp: Any, b: Any, t: Any) -> Any:
    return xp.ones((b, t), dtype=xp.int64)


# ------------------------------------------------------------------ encoder
def encode(
    params: dict,
    cfg: BartConfig,
    input_ids: Any,
    attention_mask: Any = None,
    output_hidden_states: bool = False,
) -> Any:
    """Encoder output ``[b, s, d_model]``; with ``output_hidden_states`` also the
    ``encoder_layers + 1`` hidden states (embeddings, each layer's output, the last one after the
    final norm when the type has one). Padding keys (mask 0) are not attended."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    if attention_mask is None:
        attention_mask = _ones(xp, b, s)
    nh = cfg.encoder_attention_heads
    q_n, k_n, v_n, o_n = cfg.encoder_attention_names
    h = _embed(xp, P, cfg, "encoder", input_ids, 0)
    hidden = [h]
    for i in range(cfg.encoder_layers):
        p = f"model.encoder.layers.{i}."
        a = p + "self_attn."

        def self_attn(x: Any, a: str = a) -> Any:
            q, k, v = (_heads(xp, P, cfg, a + n, x, nh) for n in (q_n, k_n, v_n))
            out = attend(q, k, v, attention_mask, 0, _scale(cfg, nh), causal=False)
            return _linear(xp, P, a + o_n, merge_heads(out))

        h = _sublayer(xp, P, cfg, p + "self_attn_layer_norm", h, self_attn)
        h = _sublayer(xp, P, cfg, p + "final_layer_norm", h, lambda x, p=p: _feed_forward(xp, P, cfg, p, x))
        hidden.append(h)
    if cfg.final_norm is not None:
        h = _layer_norm(xp, P, "model.encoder." + cfg.final_norm, h, EPS)
        hidden[-1] = h
    return (h, tuple(hidden)) if output_hidden_states else h


# ------------------------------------------------------------------ decoder caches
def cross_attention_cache(params: dict, cfg: BartConfig, encoder_hidden_states: Any) -> list:
    """Per decoder layer ``(key, value)`` of the encoder output, ``[b, heads, enc_seq, d_kv]``."""
    xp = array_namespace(encoder_hidden_states)
    P = ParamView(params)
    nh = cfg.decoder_attention_heads
    out = []
    for i in range(cfg.decoder_layers):
        c = f"model.decoder.layers.{i}.encoder_attn."
        out.append(
            (
                _heads(xp, P, cfg, c + "k_proj", encoder_hidden_states, nh),
                _heads(xp, P, cfg, c + "v_proj", encoder_hidden_states, nh),
            )
        )
    return out


def init_cache(
    params: dict,
    cfg: BartConfig,
    encoder_hidden_states: Any,
    layout: str = "growing",
    max_length: int | None = None,
) -> dict:
    """An empty self-attention cache (``"growing"``, or ``"static"`` preallocated to
    ``max_length`` decoder positions) plus the cross-attention keys/values of the encoder output."""
    return kv_cache.seq2seq_cache(
        encoder_hidden_states,
        cfg.decoder_layers,
        cfg.num_heads,
        cfg.d_kv,
        cross_attention_cache(params, cfg, encoder_hidden_states),
        layout,
        max_length,
        cfg.model_type,
    )


# ------------------------------------------------------------------ decoder
def decoder_stack(
    params: dict,
    cfg: BartConfig,
    decoder_input_ids: Any,
    encoder_hidden_states: Any,
    encoder_attention_mask: Any,
    cache: dict | None = None,
    offset: Any = 0,
    decoder_attention_mask: Any = None,
) -> tuple:
    """The decoder without a head: ``(out [b, s, d_model], cache, hidden_states)`` (the
    arguments as :func:`decode`'s)."""
    xp = array_namespace(decoder_input_ids)
    P = ParamView(params)
    nh = cfg.decoder_attention_heads
    scale = _scale(cfg, nh)
    self_cache = None if cache is None else cache["self"]
    cross = None if cache is None else cache["cross"]
    if cross is None:
        if encoder_hidden_states is None:
            raise ValueError(
                "decode needs encoder_hidden_states when the cache has no cross-attention keys/values"
            )
        cross = cross_attention_cache(P, cfg, encoder_hidden_states)
    h = _embed(xp, P, cfg, "decoder", decoder_input_ids, offset)
    hidden = [h]
    for i in range(cfg.decoder_layers):
        p = f"model.decoder.layers.{i}."
        a, c = p + "self_attn.", p + "encoder_attn."
        state: dict = {}

        def self_attn(x: Any, a: str = a, i: int = i, state: dict = state) -> Any:
            q, k, v = (_heads(xp, P, cfg, a + n, x, nh) for n in ("q_proj", "k_proj", "v_proj"))
            keys, values, state["cache"] = kv_cache.update_cache(self_cache, i, k, v, offset)
            mask = decoder_attention_mask
            if mask is None:
                mask = _ones(xp, keys.shape[0], keys.shape[2])
            out = attend(q, keys, values, mask, offset, scale, causal=True)
            return _linear(xp, P, a + "out_proj", merge_heads(out))

        def cross_attn(x: Any, c: str = c, i: int = i) -> Any:
            q = _heads(xp, P, cfg, c + "q_proj", x, nh)
            ck, cv = cross[i]
            out = attend(q, ck, cv, encoder_attention_mask, 0, scale, causal=False)
            return _linear(xp, P, c + "out_proj", merge_heads(out))

        h = _sublayer(xp, P, cfg, p + "self_attn_layer_norm", h, self_attn)
        self_cache = state["cache"]
        h = _sublayer(xp, P, cfg, p + "encoder_attn_layer_norm", h, cross_attn)
        h = _sublayer(xp, P, cfg, p + "final_layer_norm", h, lambda x, p=p: _feed_forward(xp, P, cfg, p, x))
        hidden.append(h)
    if cfg.final_norm is not None:
        h = _layer_norm(xp, P, "model.decoder." + cfg.final_norm, h, EPS)
        hidden[-1] = h
    new_cache = None if cache is None else {"self": self_cache, "cross": cross}
    return h, new_cache, tuple(hidden)


def decode(
    params: dict,
    cfg: BartConfig,
    decoder_input_ids: Any,
    encoder_hidden_states: Any,
    encoder_attention_mask: Any,
    cache: dict | None = None,
    offset: Any = 0,
    decoder_attention_mask: Any = None,
    output_hidden_states: bool = False,
) -> tuple:
    """One decoder call: ``(logits [b, s, vocab], cache)`` (with ``output_hidden_states`` also the
    ``decoder_layers + 1`` decoder hidden states, the last one after the final norm when the type
    has one).

    ``decoder_input_ids [b, s]`` sit at decoder positions ``offset .. offset + s - 1``;
    ``encoder_attention_mask [b, enc_seq]`` masks the encoder's padding in cross-attention;
    ``decoder_attention_mask`` covers the self-attention keys (``s``, ``past + s`` growing,
    ``max_length`` static; default all ones) and is combined with the causal rule.
    ``encoder_hidden_states`` may be None when ``cache["cross"]`` is filled."""
    xp = array_namespace(decoder_input_ids)
    P = ParamView(params)
    h, new_cache, hidden = decoder_stack(
        P,
        cfg,
        decoder_input_ids,
        encoder_hidden_states,
        encoder_attention_mask,
        cache,
        offset,
        decoder_attention_mask,
    )
    logits = xp.matmul(h, xp.permute_dims(P[head_name(cfg)], (1, 0)))
    if cfg.has_final_logits_bias:
        logits = logits + P["final_logits_bias"]
    return (logits, new_cache, hidden) if output_hidden_states else (logits, new_cache)


def shift_tokens_right(cfg: BartConfig, input_ids: Any) -> Any:
    """``[start, ids[:, :-1]]``: the decoder input of the classification and QA heads when none
    is given (Hugging Face's rule). ``start`` is ``decoder_start_token_id`` (else
    ``bos_token_id``); mBART's is each row's last non-padding id, ``ids[count(ids != pad) - 1]``
    (its language id, for right-padded rows)."""
    xp = array_namespace(input_ids)
    if cfg.start_from_last_token:
        last = xp.sum(xp.astype(input_ids != cfg.pad_token_id, xp.int64), axis=1) - 1
        first = xp.take_along_axis(input_ids, xp.reshape(last, (-1, 1)), axis=1)
    else:
        start = cfg.decoder_start_token_id if cfg.decoder_start_token_id is not None else cfg.bos_token_id
        first = xp.full_like(input_ids[:, :1], int(start or 0))
    return xp.concat([first, input_ids[:, :-1]], axis=1)


def _classify(xp: Any, P: Any, cfg: BartConfig, input_ids: Any, out: Any) -> Any:
    """``out_proj(tanh(dense(out[:, e])))`` with ``e`` the last position of ``eos_token_id`` in
    ``input_ids`` (position 0 for a row without one); ``[b, num_labels]``."""
    eos = cfg.eos_token_id[0] if isinstance(cfg.eos_token_id, list) else cfg.eos_token_id
    pos = xp.zeros_like(input_ids) + xp.arange(input_ids.shape[1])[None, :]
    last = xp.max(xp.where(input_ids == eos, pos, xp.zeros_like(pos)), axis=1)
    index = xp.zeros_like(out[:, :1, :], dtype=xp.int64) + xp.reshape(last, (-1, 1, 1))
    x = xp.take_along_axis(out, index, axis=1)[:, 0]
    x = xp.tanh(_linear(xp, P, "classification_head.dense", x))
    return _linear(xp, P, "classification_head.out_proj", x)


def forward(
    params: dict,
    cfg: BartConfig,
    input_ids: Any,
    attention_mask: Any,
    decoder_input_ids: Any = None,
    decoder_attention_mask: Any = None,
    output_hidden_states: bool = False,
    head: str | None = None,
) -> dict:
    """Encoder then decoder (no cache), plus ``encoder_last_hidden_state``: ``seq2seq-lm``
    ``logits [b, dec_seq, vocab]``; ``sequence-classification`` ``logits [b, num_labels]`` of the
    decoder output at the last EOS of ``input_ids`` (so the decoder input is as long as the
    encoder's: by default :func:`shift_tokens_right`); ``question-answering`` ``start_logits`` /
    ``end_logits [b, dec_seq]`` (``qa_outputs``). With ``output_hidden_states`` also
    ``encoder_hidden_states`` / ``decoder_hidden_states``."""
    P = ParamView(params)
    xp = array_namespace(input_ids)
    head = check_head(cfg, head)
    if attention_mask is None:
        attention_mask = xp.ones(tuple(input_ids.shape), dtype=xp.int64)
    if decoder_input_ids is None:
        decoder_input_ids = shift_tokens_right(cfg, input_ids)
    if output_hidden_states:
        enc, enc_hidden = encode(P, cfg, input_ids, attention_mask, output_hidden_states=True)
    else:
        enc = encode(P, cfg, input_ids, attention_mask)
    args = (P, cfg, decoder_input_ids, enc, attention_mask)
    if head == "seq2seq-lm":
        logits, _, dec_hidden = decode(
            *args, decoder_attention_mask=decoder_attention_mask, output_hidden_states=True
        )
        res = {"logits": logits}
    else:
        out, _, dec_hidden = decoder_stack(*args, decoder_attention_mask=decoder_attention_mask)
        if head == "sequence-classification":
            res = {"logits": _classify(xp, P, cfg, input_ids, out)}
        else:
            span = _linear(xp, P, "qa_outputs", out)
            res = {"start_logits": span[:, :, 0], "end_logits": span[:, :, 1]}
    res["encoder_last_hidden_state"] = enc
    if output_hidden_states:
        res["encoder_hidden_states"], res["decoder_hidden_states"] = enc_hidden, dec_hidden
    return res
