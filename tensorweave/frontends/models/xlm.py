"""XLM and FlauBERT encoders and their task heads, written once against ``xp`` (FlauBERT is
:class:`~.config.FlaubertConfig`, a config switch of this module).

Embeddings: ``h = LN(E[ids] + pos[p] (+ lang[langs]) (+ E[token_type_ids]))`` where ``E`` is the
word table (token types are looked up in it too, as Hugging Face's XLM does), ``lang`` exists when
``n_langs > 1`` and ``use_lang_emb`` and is added only when ``langs`` is given (``Model`` calls
with ``langs=`` and the ONNX export's ``langs`` input carry it), positions default
to ``0 .. s-1``; then ``h = h * m`` with ``m`` the attention mask (padding rows are zeros).
Per layer, with ``attn`` bidirectional multi-head attention over the real keys
(``softmax(q k^T / sqrt(d) + mask) v``; with ``causal`` a causal mask alone) and
``ffn(x) = lin2(act(lin1(x)))`` of width ``4 * emb_dim`` (act gelu, or relu without
``gelu_activation``):

- post-norm (XLM; FlauBERT by default): ``h = LN1(h + attn(h))``, ``h = LN2(h + ffn(h))``;
- pre-norm (FlauBERT ``pre_norm``): ``h = h + attn(LN1(h))``, ``h = h + ffn(LN2(h))``, no final norm;

then ``h = h * m`` after every layer. FlauBERT's ``layerdrop`` drops layers only in training
(never here). ``hidden_states``: the embeddings and each layer's output. No pooler.

Heads (``x`` is the sequence summary, see ``encoder_heads``): ``default`` ``last_hidden_state``;
``masked-lm`` ``logits = h E^T + pred_layer.proj.bias`` (``pred_layer.proj.weight`` when
``tie_word_embeddings`` is false); ``sequence-classification`` ``logits = x``;
``multiple-choice`` ``logits = logits_proj(x)`` per choice; ``token-classification``
``classifier(h)``; ``question-answering`` (``*ForQuestionAnsweringSimple``) ``qa_outputs(h)``.
Names are those of Hugging Face's classes (``transformer.embeddings``,
``transformer.attentions.{i}.q_lin``, ``transformer.layer_norm1.{i}``, ``transformer.ffns.{i}.lin1``, ...).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .bert import _layer_norm, _linear, check_head
from .config import XLMConfig
from .encoder_heads import (
    flatten_choices,
    labels,
    qa_shapes,
    sequence_summary,
    span_logits,
    summary_shapes,
    summary_width,
    unflatten_choices,
)
from .gpt2 import activation
from .weights import ParamView

BASE_PREFIX = "transformer."
IGNORED_SUFFIXES = ("position_ids",)
#: optional forward inputs shaped like ``input_ids`` (``Model`` programs and exports carry them)
EXTRA_INPUTS = ("langs",)


def _linear_shapes(name: str, out: int, inp: int) -> dict[str, tuple]:
    return {name + ".weight": (out, inp), name + ".bias": (out,)}


def _norm_shapes(name: str, d: int) -> dict[str, tuple]:
    return {name + ".weight": (d,), name + ".bias": (d,)}


def parameter_shapes(cfg: XLMConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads."""
    check_head(head)
    d, ff, p, n = cfg.hidden_size, cfg.intermediate_size, cfg.base_prefix, labels(cfg)
    shapes: dict[str, tuple] = {p + "position_embeddings.weight": (cfg.max_position_embeddings, d)}
    if cfg.has_lang_emb:
        shapes[p + "lang_embeddings.weight"] = (cfg.n_langs, d)
    shapes[p + "embeddings.weight"] = (cfg.vocab_size, d)
    shapes.update(_norm_shapes(p + "layer_norm_emb", d))
    for i in range(cfg.num_hidden_layers):
        for role in ("q_lin", "k_lin", "v_lin", "out_lin"):
            shapes.update(_linear_shapes(f"{p}attentions.{i}.{role}", d, d))
        shapes.update(_norm_shapes(f"{p}layer_norm1.{i}", d))
        shapes.update(_linear_shapes(f"{p}ffns.{i}.lin1", ff, d))
        shapes.update(_linear_shapes(f"{p}ffns.{i}.lin2", d, ff))
        shapes.update(_norm_shapes(f"{p}layer_norm2.{i}", d))
    if head == "masked-lm":
        shapes["pred_layer.proj.bias"] = (cfg.vocab_size,)
        if not cfg.tie_word_embeddings:
            shapes["pred_layer.proj.weight"] = (cfg.vocab_size, d)
    elif head == "sequence-classification":
        shapes.update(summary_shapes(cfg))
    elif head == "multiple-choice":
        if summary_width(cfg) != n:
            raise ValueError(
                f"multiple-choice needs a sequence summary of width num_labels ({n}), got {summary_width(cfg)}; "
                "set config fields `summary_use_proj` and `summary_proj_to_labels` to true"
            )
        shapes.update(summary_shapes(cfg))
        shapes.update(_linear_shapes("logits_proj", 1, n))
    elif head == "token-classification":
        shapes.update(_linear_shapes("classifier", n, d))
    elif head == "question-answering":
        shapes.update(qa_shapes(n, d))
    return shapes


def _attention(xp: Any, P: Any, cfg: XLMConfig, lp: str, x: Any, mask: Any) -> Any:
    """``out_lin(attend(q_lin(x), k_lin(x), v_lin(x)))`` over the real keys (causal: all keys
    up to the query, padding included, as Hugging Face's causal XLM)."""
    nh, hd = cfg.num_attention_heads, cfg.head_dim
    q, k, v = (split_heads(_linear(xp, P, lp + r, x), nh, hd) for r in ("q_lin", "k_lin", "v_lin"))
    keys = xp.ones_like(mask) if cfg.causal else mask
    ctx = merge_heads(attend(q, k, v, keys, 0, default_scale(hd), causal=cfg.causal))
    return _linear(xp, P, lp + "out_lin", ctx)


def _ffn(xp: Any, P: Any, cfg: XLMConfig, name: str, x: Any) -> Any:
    """``lin2(act(lin1(x)))``."""
    return _linear(xp, P, name + ".lin2", activation(xp, cfg.hidden_act, _linear(xp, P, name + ".lin1", x)))


def encode(
    params: Any,
    cfg: XLMConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    langs: Any = None,
) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, s, d], hidden_states)`` (``num_hidden_layers + 1`` arrays)."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    p, eps = cfg.base_prefix, cfg.layer_norm_eps
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    if position_ids is None:
        position_ids = xp.broadcast_to(xp.arange(s)[None, :], (b, s))
    words = P[p + "embeddings.weight"]
    h = xp.take(words, input_ids, axis=0) + xp.take(P[p + "position_embeddings.weight"], position_ids, axis=0)
    if langs is not None and cfg.has_lang_emb:
        h = h + xp.take(P[p + "lang_embeddings.weight"], langs, axis=0)
    if token_type_ids is not None:
        h = h + xp.take(words, token_type_ids, axis=0)
    keep = xp.astype(attention_mask, h.dtype)[:, :, None]
    h = _layer_norm(xp, P, p + "layer_norm_emb", h, eps) * keep
    hidden = [h]
    for i in range(cfg.num_hidden_layers):
        ln1, ln2, lp, ffn = (
            f"{p}layer_norm1.{i}",
            f"{p}layer_norm2.{i}",
            f"{p}attentions.{i}.",
            f"{p}ffns.{i}",
        )
        if cfg.pre_norm_blocks:
            h = h + _attention(xp, P, cfg, lp, _layer_norm(xp, P, ln1, h, eps), attention_mask)
            h = h + _ffn(xp, P, cfg, ffn, _layer_norm(xp, P, ln2, h, eps))
        else:
            h = _layer_norm(xp, P, ln1, h + _attention(xp, P, cfg, lp, h, attention_mask), eps)
            h = _layer_norm(xp, P, ln2, h + _ffn(xp, P, cfg, ffn, h), eps)
        h = h * keep
        hidden.append(h)
    return h, tuple(hidden)


def forward(
    params: dict,
    cfg: XLMConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    head: str = "default",
    output_hidden_states: bool = False,
    langs: Any = None,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked;
    ``langs [b, s]`` (``[b, c, s]`` for multiple choice) are language ids (None: no language term)."""
    check_head(head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    choices, (input_ids, attention_mask, token_type_ids, position_ids, langs) = flatten_choices(
        xp, head, input_ids, attention_mask, token_type_ids, position_ids, langs
    )
    h, hidden = encode(P, cfg, input_ids, attention_mask, token_type_ids, position_ids, langs)
    if head == "default":
        out = {"last_hidden_state": h}
    elif head == "masked-lm":
        dec = (
            P[cfg.base_prefix + "embeddings.weight"]
            if cfg.tie_word_embeddings
            else P["pred_layer.proj.weight"]
        )
        out = {"logits": xp.matmul(h, xp.permute_dims(dec, (1, 0))) + P["pred_layer.proj.bias"]}
    elif head == "sequence-classification":
        out = {"logits": sequence_summary(xp, P, cfg, h)}
    elif head == "multiple-choice":
        logits = _linear(xp, P, "logits_proj", sequence_summary(xp, P, cfg, h))
        out = {"logits": unflatten_choices(xp, logits, choices)}
    elif head == "token-classification":
        out = {"logits": _linear(xp, P, "classifier", h)}
    else:  # question-answering
        out = span_logits(xp, P, h)
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
