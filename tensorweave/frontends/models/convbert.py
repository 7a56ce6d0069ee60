"""ConvBERT and its task heads, written once against ``xp``.

Embeddings as ELECTRA's: ``h = LN(word[ids] + pos[p] + type[tt])`` of width ``E =
embedding_size``, then ``h = embeddings_project(h)`` when ``E != hidden_size``. Each layer is
BERT's post-LayerNorm block, ``a = LN(h + dense(mix(h)))``, ``h = LN(a + out(act(int(a))))``, whose
``int`` / ``out`` are grouped linears when ``num_groups > 1`` (``x`` split into ``G`` groups, group
``g`` multiplied by ``weight[g] [in / G, out / G]``, then the bias) and whose mixer concatenates
two halves of ``n = max(num_attention_heads // head_ratio, 1)`` heads of width
``d = (hidden / n) / 2`` each:

- attention: ``softmax(q k^T / sqrt(d) + mask) v`` with ``q, k, v = query(h), key(h), value(h)``
  (``[b, s, n d]``);
- span-based dynamic convolution (kernel width ``K = conv_kernel_size``, odd, ``r = (K - 1) / 2``):
  ``u = sep(h) * q`` where ``sep`` is the separable convolution
  ``pointwise(depthwise(h)) + bias`` (``depthwise``: per channel ``c``,
  ``sum_j W[c, j] h[t + j - r, c]`` with zeros outside the sequence); per head the kernel
  ``w = softmax_j(conv_kernel_layer(u))`` (``[b, s, n, K]``) weighs the ``K`` neighbours of
  ``o = conv_out_layer(h)``: ``conv[t, head, :] = sum_j w[t, head, j] o[t + j - r, head, :]``.

``mix(h) = concat(attention heads, convolution heads)`` (``[b, s, hidden]``). Unfolding (the
``K`` shifted copies of a sequence) is written as slices of a zero-padded copy, stacked on a new
last axis. Padding positions take part in the convolution, as in Hugging Face.

No pooler. Heads (ELECTRA's layout, ``x0 = h[:, 0]``): ``masked-lm`` ``logits =
LN(gelu(generator_predictions.dense(h))) @ word^T + generator_lm_head.bias``;
``sequence-classification`` ``classifier.out_proj(act(classifier.dense(x0)))`` (``hidden_act``);
``multiple-choice`` ``classifier(sequence_summary(h))`` per choice (Hugging Face's summary
defaults: last token, no projection); ``token-classification`` ``classifier(h)``;
``question-answering`` ``qa_outputs(h)``. Names are those of ``ConvBertFor*`` (``convbert.``).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .bert import _layer_norm, _linear, check_head
from .config import ConvBertConfig
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
from .squeezebert import grouped_matmul
from .weights import ParamView

BASE_PREFIX = "convbert."
IGNORED_SUFFIXES = ("position_ids", "token_type_ids")


def _lin(name: str, out: int, inp: int) -> dict[str, tuple]:
    return {name + ".weight": (out, inp), name + ".bias": (out,)}


def _norm(name: str, d: int) -> dict[str, tuple]:
    return {name + ".weight": (d,), name + ".bias": (d,)}


def _mlp_shapes(cfg: ConvBertConfig, name: str, out: int, inp: int) -> dict[str, tuple]:
    """A linear, or with ``num_groups > 1`` a grouped one (``weight [G, in / G, out / G]``)."""
    g = cfg.num_groups
    if g == 1:
        return _lin(name, out, inp)
    return {name + ".weight": (g, inp // g, out // g), name + ".bias": (out,)}


def parameter_shapes(cfg: ConvBertConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads."""
    check_head(head)
    H, E, ff, p, n = (
        cfg.hidden_size,
        cfg.embedding_size,
        cfg.intermediate_size,
        cfg.base_prefix,
        labels(cfg),
    )
    A, K = cfg.conv_heads * cfg.head_dim, cfg.conv_kernel_size
    e = p + "embeddings."
    shapes: dict[str, tuple] = {
        e + "word_embeddings.weight": (cfg.vocab_size, E),
        e + "position_embeddings.weight": (cfg.max_position_embeddings, E),
        e + "token_type_embeddings.weight": (cfg.type_vocab_size, E),
        **_norm(e + "LayerNorm", E),
    }
    if E != H:
        shapes.update(_lin(p + "embeddings_project", H, E))
    for i in range(cfg.num_hidden_layers):
        lp = f"{p}encoder.layer.{i}."
        sa = lp + "attention.self."
        for role in ("query", "key", "value", "conv_out_layer"):
            shapes.update(_lin(sa + role, A, H))
        shapes[sa + "key_conv_attn_layer.depthwise.weight"] = (H, 1, K)
        shapes[sa + "key_conv_attn_layer.pointwise.weight"] = (A, H, 1)
        shapes[sa + "key_conv_attn_layer.bias"] = (A, 1)
        shapes.update(_lin(sa + "conv_kernel_layer", cfg.conv_heads * K, A))
        shapes.update(
            {**_lin(lp + "attention.output.dense", H, H), **_norm(lp + "attention.output.LayerNorm", H)}
        )
        shapes.update(_mlp_shapes(cfg, lp + "intermediate.dense", ff, H))
        shapes.update({**_mlp_shapes(cfg, lp + "output.dense", H, ff), **_norm(lp + "output.LayerNorm", H)})
    if head == "masked-lm":
        shapes.update(
            {**_lin("generator_predictions.dense", E, H), **_norm("generator_predictions.LayerNorm", E)}
        )
        shapes["generator_lm_head.bias"] = (cfg.vocab_size,)
        if not cfg.tie_word_embeddings:
            shapes["generator_lm_head.weight"] = (cfg.vocab_size, E)
    elif head == "sequence-classification":
        shapes.update({**_lin("classifier.dense", H, H), **_lin("classifier.out_proj", n, H)})
    elif head == "multiple-choice":
        if summary_width(cfg) != H:
            raise ValueError(
                f"multiple-choice needs a sequence summary of width hidden_size ({H}), got {summary_width(cfg)}; "
                "set config field `summary_proj_to_labels` to false"
            )
        shapes.update({**summary_shapes(cfg), **_lin("classifier", 1, H)})
    elif head == "token-classification":
        shapes.update(_lin("classifier", n, H))
    elif head == "question-answering":
        shapes.update(qa_shapes(n, H))
    return shapes


def unfold(xp: Any, x: Any, width: int) -> Any:
    """``u[b, t, c, j] = x[b, t + j - r, c]`` (zeros outside ``[0, s)``, ``r = (width - 1) / 2``) for
    ``x [b, s, c]``: ``width`` slices of a zero-padded copy, stacked on a new last axis."""
    b, s, c = x.shape
    r = (width - 1) // 2
    zeros = xp.zeros((b, r, c), dtype=x.dtype)
    padded = xp.concat([zeros, x, zeros], axis=1)
    return xp.stack([padded[:, j : j + s] for j in range(width)], axis=-1)


def _mlp_linear(xp: Any, P: Any, cfg: ConvBertConfig, name: str, x: Any) -> Any:
    if cfg.num_groups == 1:
        return _linear(xp, P, name, x)
    return grouped_matmul(xp, x, P[name + ".weight"]) + P[name + ".bias"]


def _dynamic_conv(xp: Any, P: Any, cfg: ConvBertConfig, sa: str, h: Any, q: Any) -> Any:
    """The convolution half ``[b, s, n d]`` of the mixer (see the module docstring); ``q`` is the
    query projection ``[b, s, n d]``."""
    b, s, _ = h.shape
    n, d, K = cfg.conv_heads, cfg.head_dim, cfg.conv_kernel_size
    sep = sa + "key_conv_attn_layer."
    dw = xp.sum(unfold(xp, h, K) * P[sep + "depthwise.weight"][:, 0, :], axis=-1)  # [b, s, H]
    pw = P[sep + "pointwise.weight"][:, :, 0]  # [A, H]
    u = (xp.matmul(dw, xp.permute_dims(pw, (1, 0))) + P[sep + "bias"][:, 0]) * q
    w = xp.softmax(xp.reshape(_linear(xp, P, sa + "conv_kernel_layer", u), (b, s, n, K, 1)), axis=3)
    o = unfold(xp, _linear(xp, P, sa + "conv_out_layer", h), K)  # [b, s, A, K]
    conv = xp.matmul(xp.reshape(o, (b, s, n, d, K)), w)  # [b, s, n, d, 1]
    return xp.reshape(conv, (b, s, n * d))


def _mixer(xp: Any, P: Any, cfg: ConvBertConfig, sa: str, h: Any, mask: Any) -> Any:
    """``concat(attention heads, dynamic-convolution heads)`` ``[b, s, hidden]``."""
    n, d = cfg.conv_heads, cfg.head_dim
    q = _linear(xp, P, sa + "query", h)
    k, v = (split_heads(_linear(xp, P, sa + r, h), n, d) for r in ("key", "value"))
    ctx = merge_heads(attend(split_heads(q, n, d), k, v, mask, 0, default_scale(d), causal=False))
    return xp.concat([ctx, _dynamic_conv(xp, P, cfg, sa, h, q)], axis=-1)


def encode(
    params: Any,
    cfg: ConvBertConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, s, hidden], hidden_states)``."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    p, eps = cfg.base_prefix, cfg.layer_norm_eps
    e = p + "embeddings."
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    if position_ids is None:
        position_ids = xp.broadcast_to(xp.arange(s)[None, :], (b, s))
    if token_type_ids is None:
        token_type_ids = xp.zeros((b, s), dtype=xp.int64)
    h = (
        xp.take(P[e + "word_embeddings.weight"], input_ids, axis=0)
        + xp.take(P[e + "position_embeddings.weight"], position_ids, axis=0)
        + xp.take(P[e + "token_type_embeddings.weight"], token_type_ids, axis=0)
    )
    h = _layer_norm(xp, P, e + "LayerNorm", h, eps)
    if cfg.embedding_size != cfg.hidden_size:
        h = _linear(xp, P, p + "embeddings_project", h)
    hidden = [h]
    for i in range(cfg.num_hidden_layers):
        lp = f"{p}encoder.layer.{i}."
        mixed = _mixer(xp, P, cfg, lp + "attention.self.", h, attention_mask)
        a = _layer_norm(
            xp,
            P,
            lp + "attention.output.LayerNorm",
            _linear(xp, P, lp + "attention.output.dense", mixed) + h,
            eps,
        )
        m = activation(xp, cfg.hidden_act, _mlp_linear(xp, P, cfg, lp + "intermediate.dense", a))
        h = _layer_norm(
            xp, P, lp + "output.LayerNorm", _mlp_linear(xp, P, cfg, lp + "output.dense", m) + a, eps
        )
        hidden.append(h)
    return h, tuple(hidden)


def forward(
    params: dict,
    cfg: ConvBertConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    choices, (input_ids, attention_mask, token_type_ids, position_ids) = flatten_choices(
        xp, head, input_ids, attention_mask, token_type_ids, position_ids
    )
    h, hidden = encode(P, cfg, input_ids, attention_mask, token_type_ids, position_ids)
    if head == "default":
        out = {"last_hidden_state": h}
    elif head == "masked-lm":
        x = activation(xp, "gelu", _linear(xp, P, "generator_predictions.dense", h))
        x = _layer_norm(xp, P, "generator_predictions.LayerNorm", x, cfg.layer_norm_eps)
        words = (
            P[cfg.base_prefix + "embeddings.word_embeddings.weight"]
            if cfg.tie_word_embeddings
            else P["generator_lm_head.weight"]
        )
        out = {"logits": xp.matmul(x, xp.permute_dims(words, (1, 0))) + P["generator_lm_head.bias"]}
    elif head == "sequence-classification":
        x = activation(xp, cfg.hidden_act, _linear(xp, P, "classifier.dense", h[:, 0]))
        out = {"logits": _linear(xp, P, "classifier.out_proj", x)}
    elif head == "multiple-choice":
        logits = _linear(xp, P, "classifier", sequence_summary(xp, P, cfg, h))
        out = {"logits": unflatten_choices(xp, logits, choices)}
    elif head == "token-classification":
        out = {"logits": _linear(xp, P, "classifier", h)}
    else:  # question-answering
        out = span_logits(xp, P, h)
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
