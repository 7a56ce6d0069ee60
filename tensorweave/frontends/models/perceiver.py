"""Perceiver (``perceiver``): ``PerceiverForMaskedLM`` (``masked-lm``),
``PerceiverForSequenceClassification`` (``sequence-classification``) and
``PerceiverForImageClassificationLearned`` (``image-classification``, pixels in), written once
against ``xp``: inputs read by a fixed set of latents, self-attention among the latents, and
queries that read the latents back.

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

Classification heads: the inputs above (text), or for images ``pixel_values [b, 3, H, W]``
with ``H W = image_size^2``: ``x = conv1x1(pixels)`` (``input_preprocessor.convnet_1x1``, 3 -> 256
channels, flattened to ``[b, H W, 256]``) concatenated on the channel axis with
``positions_projection(input_preprocessor.position_embeddings.position_embeddings)`` (``[H W, 256]``
-> 256), so the cross-attention's keys are 512 wide (its query/key width with ``kv``). The decoder
``decoder.decoder``: one query ``output_position_encodings.position_embeddings`` ``[1, d_latents]``,
``y = decoding_cross_attention(query, z)`` (1 head, query/key and value width ``d_latents``,
widening 1, query residual, nothing masked), ``logits = final_layer(y)[:, 0]`` ``[b, num_labels]``.

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
IMAGE_CHANNELS = 256  # PerceiverForImageClassificationLearned: conv1x1 and position channels
#: heads whose input is ``pixel_values [b, 3, H, W]`` (``Model`` treats them as vision models)
PIXEL_HEADS = ("image-classification",)
CLASSES = {
    "masked-lm": "PerceiverForMaskedLM",
    "sequence-classification": "PerceiverForSequenceClassification",
    "image-classification": "PerceiverForImageClassificationLearned",
}


def check_head(cfg: PerceiverConfig, head: str) -> str:
    if head not in cfg.heads:
        raise ValueError(
            f"perceiver has no head {head!r}; use one of {list(cfg.heads)} ({', '.join(CLASSES.values())})"
        )
    return head


def input_width(cfg: PerceiverConfig, head: str) -> int:
    """Width of the inputs the latents read: ``d_model`` (text), ``2 * 256`` (images)."""
    return 2 * IMAGE_CHANNELS if head in PIXEL_HEADS else cfg.d_model


def layer_dims(cfg: PerceiverConfig, kind: str, kv_dim: int | None = None) -> dict[str, int]:
    """``q_dim``, ``kv_dim``, ``qk`` (query/key width), ``v`` (value width), ``out``, ``heads``,
    ``widen`` of a Perceiver layer: ``cross`` (encoder; inputs ``kv_dim`` wide, default
    ``d_model``), ``self``, ``decoder`` (masked-lm) or ``classifier``."""
    if kind == "classifier":
        d = cfg.d_latents
        return dict(q_dim=d, kv_dim=d, qk=d, v=d, out=d, heads=1, widen=1)
    if kind == "cross":
        kv = kv_dim or cfg.d_model
        shape = kv if cfg.cross_attention_shape_for_attention == "kv" else cfg.d_latents
        qk = cfg.qk_channels or shape
        widen = cfg.cross_attention_widening_factor
        return dict(
            q_dim=cfg.d_latents,
            kv_dim=kv,
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


def _layer_shapes(cfg: PerceiverConfig, name: str, kind: str, kv_dim: int | None = None) -> dict[str, tuple]:
    dims = layer_dims(cfg, kind, kv_dim)
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


def _check_image_widths(cfg: PerceiverConfig) -> None:
    """The image head's cross-attention reads 512-wide inputs: its widths must split into heads."""
    dims = layer_dims(cfg, "cross", input_width(cfg, "image-classification"))
    for name, width in (("qk_channels", dims["qk"]), ("v_channels", dims["v"])):
        if width % dims["heads"]:
            raise ValueError(
                f"config field `{name}` ({width}, the image cross-attention width) must be divisible by "
                f"`num_cross_attention_heads` ({dims['heads']})"
            )


def parameter_shapes(cfg: PerceiverConfig, head: str = "masked-lm") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter of the ``head``'s class (:data:`CLASSES`)."""
    check_head(cfg, head)
    p, pre = BASE_PREFIX, BASE_PREFIX + "input_preprocessor."
    if head in PIXEL_HEADS:
        _check_image_widths(cfg)
        c = IMAGE_CHANNELS
        shapes: dict[str, tuple] = {
            pre + "convnet_1x1.weight": (c, 3, 1, 1),
            pre + "convnet_1x1.bias": (c,),
            pre + "position_embeddings.position_embeddings": (cfg.image_size**2, c),
            pre + "positions_projection.weight": (c, c),
            pre + "positions_projection.bias": (c,),
        }
    else:
        shapes = {
            pre + "embeddings.weight": (cfg.vocab_size, cfg.d_model),
            pre + "position_embeddings.weight": (cfg.max_position_embeddings, cfg.d_model),
        }
    shapes[p + "embeddings.latents"] = (cfg.num_latents, cfg.d_latents)
    shapes.update(_layer_shapes(cfg, p + "encoder.cross_attention.", "cross", input_width(cfg, head)))
    for i in range(cfg.num_self_attends_per_block):
        shapes.update(_layer_shapes(cfg, f"{p}encoder.self_attends.{i}.", "self"))
    if head == "masked-lm":
        shapes[p + "decoder.output_position_encodings.position_embeddings"] = (
            cfg.max_position_embeddings,
            cfg.d_model,
        )
        shapes.update(_layer_shapes(cfg, p + "decoder.decoding_cross_attention.", "decoder"))
        shapes["embedding_decoder.bias"] = (cfg.vocab_size,)
        return shapes
    d = p + "decoder.decoder."
    shapes[d + "output_position_encodings.position_embeddings"] = (1, cfg.d_latents)
    shapes.update(_layer_shapes(cfg, d + "decoding_cross_attention.", "classifier"))
    shapes.update(
        {d + "final_layer.weight": (cfg.num_labels, cfg.d_latents), d + "final_layer.bias": (cfg.num_labels,)}
    )
    return shapes


def layer(
    cfg: PerceiverConfig, P: Any, name: str, kind: str, x: Any, context: Any = None, key_mask: Any = None
) -> Any:
    """One Perceiver layer (module docstring); ``key_mask`` ``[b, T]`` (True: attend) or None."""
    xp = array_namespace(x)
    dims = layer_dims(cfg, kind, None if context is None else context.shape[-1])
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
    residual = cfg.use_query_residual if kind == "cross" else kind in ("self", "classifier")
    if residual:
        out = out + x
    m = _act(
        xp,
        cfg.hidden_act,
        _linear(xp, P, name + "mlp.dense1", _layer_norm(xp, P, name + "layernorm", out, LN_EPS)),
    )
    return out + _linear(xp, P, name + "mlp.dense2", m)


def text_inputs(P: Any, input_ids: Any) -> Any:
    """``embeddings[ids] + position_embeddings[0 .. s-1]`` ``[b, s, d_model]``."""
    xp = array_namespace(input_ids)
    pre = BASE_PREFIX + "input_preprocessor."
    s = input_ids.shape[1]
    return (
        xp.take(P[pre + "embeddings.weight"], input_ids, axis=0)
        + xp.take(P[pre + "position_embeddings.weight"], xp.arange(s), axis=0)[None]
    )


def image_inputs(cfg: PerceiverConfig, P: Any, pixel_values: Any) -> Any:
    """``concat(conv1x1(pixels), positions_projection(position_embeddings))`` ``[b, H W, 512]``."""
    xp = array_namespace(pixel_values)
    pre, c = BASE_PREFIX + "input_preprocessor.", IMAGE_CHANNELS
    b, channels, h, w = pixel_values.shape
    if channels != 3 or h * w != cfg.image_size**2:
        raise ValueError(
            f"perceiver image-classification takes pixel_values [batch, 3, H, W] with H * W = image_size**2 "
            f"({cfg.image_size}**2), got [batch, {channels}, {h}, {w}]"
        )
    x = xp.reshape(xp.permute_dims(pixel_values, (0, 2, 3, 1)), (b, h * w, 3))
    x = xp.matmul(x, xp.permute_dims(xp.reshape(P[pre + "convnet_1x1.weight"], (c, 3)), (1, 0)))
    x = x + P[pre + "convnet_1x1.bias"]
    pos = _linear(xp, P, pre + "positions_projection", P[pre + "position_embeddings.position_embeddings"])
    return xp.concat([x, xp.broadcast_to(pos[None], (b, h * w, c))], axis=-1)


def encode(cfg: PerceiverConfig, P: Any, inputs: Any, key_mask: Any = None) -> tuple[Any, list]:
    """The latents after the cross-attention over ``inputs`` and the self-attention blocks, and
    Hugging Face's encoder hidden states."""
    p = BASE_PREFIX
    z = layer(
        cfg, P, p + "encoder.cross_attention.", "cross", P[p + "embeddings.latents"][None], inputs, key_mask
    )
    hidden = []
    for _ in range(cfg.num_blocks):
        for i in range(cfg.num_self_attends_per_block):
            hidden.append(z)
            z = layer(cfg, P, f"{p}encoder.self_attends.{i}.", "self", z)
        hidden.append(z)
    return z, hidden


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
    """``{"logits"}`` (plus ``hidden_states``): ``[b, max_position_embeddings, vocab]`` for
    ``masked-lm``, ``[b, num_labels]`` for the classifiers. ``input_ids`` is ``pixel_values [b, 3,
    H, W]`` (float32) for ``image-classification``; token types and positions are not inputs of the
    Perceiver (accepted for the encoder signature, ignored)."""
    check_head(cfg, head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    p = BASE_PREFIX
    if head in PIXEL_HEADS:
        z, hidden = encode(cfg, P, image_inputs(cfg, P, input_ids))
    else:
        if attention_mask is None:
            attention_mask = xp.ones(input_ids.shape, dtype=xp.int64)
        z, hidden = encode(cfg, P, text_inputs(P, input_ids), attention_mask != 0)
    if head == "masked-lm":
        queries = P[p + "decoder.output_position_encodings.position_embeddings"][None]
        y = layer(cfg, P, p + "decoder.decoding_cross_attention.", "decoder", queries, z)
        word = P[p + "input_preprocessor.embeddings.weight"]
        out = {"logits": xp.matmul(y, xp.permute_dims(word, (1, 0))) + P["embedding_decoder.bias"]}
    else:
        d = p + "decoder.decoder."
        query = P[d + "output_position_encodings.position_embeddings"][None]
        y = layer(cfg, P, d + "decoding_cross_attention.", "classifier", query, z)
        out = {"logits": _linear(xp, P, d + "final_layer", y)[:, 0]}
    if output_hidden_states:
        out["hidden_states"] = tuple(hidden)
    return out
