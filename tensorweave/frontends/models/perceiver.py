"""Perceiver for masked language modelling (``perceiver``, ``PerceiverForMaskedLM``), written
once against ``xp``: byte embeddings read by a fixed set of latents, self-attention among the
latents, and position queries that read the latents back.

Every LayerNorm here is PyTorch's default (eps 1e-5; the config's ``layer_norm_eps`` is unused,
as in Hugging Face). One *Perceiver layer* ``L(x, c)`` (queries ``x``, context ``c``; self-attention
when ``c`` is None):

    a = dense(attn(q = query(LN1(x)), k = key(LN2(c)), v = value(LN2(c))))  (+ x with query residual)
    L = a + dense2(act(dense1(LN(a))))

with ``softmax(q k^T / sqrt(dq) + mask) v`` over heads (``dq`` the query/key width per head), and
for self-attention ``c = x`` without ``LN2``. The model, names under ``perceiver.``:

- inputs ``e = input_preprocessor.embeddings[ids] + input_preprocessor.position_embeddings[0..s-1]``
  (``d_model`` wide);
- ``z = encoder.cross_attention(latents, e)``, padding keys masked (``num_cross_attention_heads``,
  query/key width ``qk_channels`` or, with ``cross_attention_shape_for_attention`` ``kv`` / ``q``,
  ``d_model`` / ``d_latents``; value width ``v_channels`` or the query/key width; widening
  ``cross_attention_widening_factor``; residual ``use_query_residual``);
- ``num_blocks`` times the ``num_self_attends_per_block`` layers ``encoder.self_attends.{i}`` (the
  same weights every block; ``num_self_attention_heads``, widening
  ``self_attention_widening_factor``, residual);
- ``y = decoder.decoding_cross_attention(P, z)`` with the queries ``P =
  decoder.output_position_encodings.position_embeddings`` ``[max_position_embeddings, d_model]``
  (8 heads, query/key width 256, value width ``d_model``, widening 1, no query residual, nothing
  masked);
- ``logits = y @ input_preprocessor.embeddings^T + embedding_decoder.bias``: ``[b,
  max_position_embeddings, vocab]`` whatever the input length (Hugging Face's layout).

``hidden_states`` are Hugging Face's encoder states: per block, the latents before each
self-attention layer and after the block's last one.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...ir import array_namespace
from .attention import merge_heads, split_heads
from .bert import _act, _layer_norm, _linear
from .config import PerceiverConfig
from .weights import ParamView

BASE_PREFIX = "perceiver."
IGNORED_SUFFIXES: tuple[str, ...] = ()
LN_EPS = 1e-5  # torch.nn.LayerNorm's default, used by every Perceiver norm
DECODER_HEADS, DECODER_QK = 8, 256  # PerceiverForMaskedLM's decoding cross-attention


def check_head(cfg: PerceiverConfig, head: str) -> str:
    if head not in cfg.heads:
        raise ValueError(
            f"perceiver has no head {head!r}; use one of {list(cfg.heads)} (PerceiverForMaskedLM)"
        )
    return head


def layer_dims(cfg: PerceiverConfig, kind: str) -> dict[str, int]:
    """``q_dim``, ``kv_dim``, ``qk`` (query/key width), ``v`` (value width), ``out``, ``heads``,
    ``widen`` of a Perceiver layer: ``cross`` (encoder), ``self`` or ``decoder``."""
    if kind == "cross":
        shape = cfg.d_model if cfg.cross_attention_shape_for_attention == "kv" else cfg.d_latents
        qk = cfg.qk_channels or shape
        widen = cfg.cross_attention_widening_factor
        return dict(
            q_dim=cfg.d_latents,
            kv_dim=cfg.d_model,
            qk=qk,
            v=cfg.v_channels or qk,
            out=cfg.d_latents,
            heads=cfg.num_cross_attention_heads,
            widen=widen,
        )
    if kind == "self":
        qk = cfg.qk_channels or cfg.d_latents
        v = cfg.v_channels or qk
        return dict(
            q_dim=cfg.d_latents,
            kv_dim=cfg.d_latents,
            qk=qk,
            v=v,
            out=v,
            heads=cfg.num_self_attention_heads,
            widen=cfg.self_attention_widening_factor,
        )
    return dict(
        q_dim=cfg.d_model,
        kv_dim=cfg.d_latents,
        qk=DECODER_QK,
        v=cfg.d_model,
        out=cfg.d_model,
        heads=DECODER_HEADS,
        widen=1,
    )


def _layer_shapes(cfg: PerceiverConfig, name: str, kind: str) -> dict[str, tuple]:
    dims = layer_dims(cfg, kind)
    q, kv, qk, v, out, w = dims["q_dim"], dims["kv_dim"], dims["qk"], dims["v"], dims["out"], dims["widen"]
    a = name + "attention."
    shapes: dict[str, tuple] = {}

    def linear(n: str, o: int, i: int) -> None:
        shapes.update({n + ".weight": (o, i), n + ".bias": (o,)})

    def norm(n: str, width: int) -> None:
        shapes.update({n + ".weight": (width,), n + ".bias": (width,)})

    norm(a + "self.layernorm1", q)
    if kind != "self":
        norm(a + "self.layernorm2", kv)
    linear(a + "self.query", qk, q)
    linear(a + "self.key", qk, kv)
    linear(a + "self.value", v, kv)
    linear(a + "output.dense", out, v)
    norm(name + "layernorm", q)
    linear(name + "mlp.dense1", w * q, q)
    linear(name + "mlp.dense2", q, w * q)
    return shapes


def parameter_shapes(cfg: PerceiverConfig, head: str = "masked-lm") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter of ``PerceiverForMaskedLM``."""
    check_head(cfg, head)
    p = BASE_PREFIX
    shapes: dict[str, tuple] = {
        p + "input_preprocessor.embeddings.weight": (cfg.vocab_size, cfg.d_model),
        p + "input_preprocessor.position_embeddings.weight": (cfg.max_position_embeddings, cfg.d_model),
        p + "embeddings.latents": (cfg.num_latents, cfg.d_latents),
    }
    shapes.update(_layer_shapes(cfg, p + "encoder.cross_attention.", "cross"))
    for i in range(cfg.num_self_attends_per_block):
        shapes.update(_layer_shapes(cfg, f"{p}encoder.self_attends.{i}.", "self"))
    shapes[p + "decoder.output_position_encodings.position_embeddings"] = (
        cfg.max_position_embeddings,
        cfg.d_model,
    )
    shapes.update(_layer_shapes(cfg, p + "decoder.decoding_cross_attention.", "decoder"))
    shapes["embedding_decoder.bias"] = (cfg.vocab_size,)
    return shapes


def layer(
    cfg: PerceiverConfig, P: Any, name: str, kind: str, x: Any, context: Any = None, key_mask: Any = None
) -> Any:
    """One Perceiver layer (module docstring); ``key_mask`` ``[b, T]`` (True: attend) or None."""
    xp = array_namespace(x)
    dims = layer_dims(cfg, kind)
    heads, a = dims["heads"], name + "attention."
    xn = _layer_norm(xp, P, a + "self.layernorm1", x, LN_EPS)
    cn = xn if context is None else _layer_norm(xp, P, a + "self.layernorm2", context, LN_EPS)
    q = split_heads(_linear(xp, P, a + "self.query", xn), heads, dims["qk"] // heads)
    k = split_heads(_linear(xp, P, a + "self.key", cn), heads, dims["qk"] // heads)
    v = split_heads(_linear(xp, P, a + "self.value", cn), heads, dims["v"] // heads)
    if q.shape[0] != k.shape[0]:  # the latents / position queries are shared by the batch
        q = xp.broadcast_to(q, (k.shape[0], *q.shape[1:]))
    scores = xp.matmul(q, xp.permute_dims(k, (0, 1, 3, 2))) / float((dims["qk"] // heads) ** 0.5)
    if key_mask is not None:
        scores = xp.where(
            key_mask[:, None, None, :], scores, xp.full_like(scores, xp.finfo(scores.dtype).min)
        )
    out = _linear(xp, P, a + "output.dense", merge_heads(xp.matmul(xp.softmax(scores, axis=-1), v)))
    residual = cfg.use_query_residual if kind == "cross" else kind == "self"
    if residual:
        out = out + x
    m = _act(
        xp,
        cfg.hidden_act,
        _linear(xp, P, name + "mlp.dense1", _layer_norm(xp, P, name + "layernorm", out, LN_EPS)),
    )
    return out + _linear(xp, P, name + "mlp.dense2", m)


def forward(
    params: Mapping[str, Any],
    cfg: PerceiverConfig,
    input_ids: Any,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    head: str = "masked-lm",
    output_hidden_states: bool = False,
) -> dict:
    """``{"logits": [b, max_position_embeddings, vocab]}`` (plus ``hidden_states``); token types
    and positions are not inputs of the Perceiver (accepted for the encoder signature, ignored)."""
    check_head(cfg, head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    p = BASE_PREFIX
    b, s = input_ids.shape
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    word = P[p + "input_preprocessor.embeddings.weight"]
    e = (
        xp.take(word, input_ids, axis=0)
        + xp.take(P[p + "input_preprocessor.position_embeddings.weight"], xp.arange(s), axis=0)[None]
    )
    latents = P[p + "embeddings.latents"][None]
    z = layer(cfg, P, p + "encoder.cross_attention.", "cross", latents, e, attention_mask != 0)
    hidden = []
    for _ in range(cfg.num_blocks):
        for i in range(cfg.num_self_attends_per_block):
            hidden.append(z)
            z = layer(cfg, P, f"{p}encoder.self_attends.{i}.", "self", z)
        hidden.append(z)
    queries = P[p + "decoder.output_position_encodings.position_embeddings"][None]
    y = layer(cfg, P, p + "decoder.decoding_cross_attention.", "decoder", queries, z)
    out = {"logits": xp.matmul(y, xp.permute_dims(word, (1, 0))) + P["embedding_decoder.bias"]}
    if output_hidden_states:
        out["hidden_states"] = tuple(hidden)
    return out
