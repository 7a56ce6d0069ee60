"""DETR, written once against ``xp``: a vision model of the ``vit.py`` kind
(``forward(params, cfg, pixel_values, pixel_mask=None, head=...)``) with heads ``default``,
``object-detection`` and ``image-segmentation``.

- **Backbone**: resnet.py's ResNet (``backbone_config``; BatchNorm with its running statistics,
  eps 1e-5, as transformers' frozen BatchNorm) under ``model.backbone.conv_encoder.model.``; the
  feature map ``f [b, C, h, w]`` is the output of the deepest stage ``out_features`` names.
- **Mask**: ``pixel_mask [b, H, W]`` (1 = real pixel, default all ones) resampled to ``h x w`` by
  nearest neighbour (row ``i`` reads ``floor(i * H / h)``), ``m = (mask != 0)``.
- **Positions** ``[b, h * w, d]``: sine: ``y = cumsum_rows(m)``, ``x = cumsum_cols(m)``,
  normalised ``y <- y / (y_last_row + 1e-6) * 2 pi`` (``x`` alike); with ``n = d / 2`` and
  ``t_k = 10000^(2 floor(k / 2) / n)``, ``e(v)_k = sin(v / t_k)`` for even ``k``, ``cos(v / t_k)``
  for odd ``k``; ``pos = concat(e(y), e(x))``. Learned: ``concat(column[j], row[i])`` of the two
  ``[50, d / 2]`` tables (at most 50 x 50 feature cells).
- **Encoder** (post-norm, ``encoder_layers``): ``s = conv1x1(f)`` flattened row-major to
  ``[b, h w, d]``; per layer ``h = LN(h + o(attn(q = k = h + pos, v = h)))``,
  ``h = LN(h + fc2(act(fc1(h))))``; keys outside the mask are not attended.
- **Decoder** (post-norm, ``decoder_layers``): ``h = 0 [b, num_queries, d]``, ``qp`` the learned
  query positions; per layer self-attention ``q = k = h + qp, v = h``, cross-attention
  ``q = h + qp``, ``k = enc + pos``, ``v = enc`` (masked keys hidden), the feed-forward; each
  sub-layer ``h = LN(h + sub(h))``; then ``model.decoder.layernorm``.
- **Heads**: ``default`` -> ``last_hidden_state [b, num_queries, d]`` and
  ``encoder_last_hidden_state [b, h w, d]``; ``object-detection`` adds ``logits =
  class_labels_classifier(out)`` (``num_labels + 1`` classes, the last "no object") and
  ``pred_boxes = sigmoid(L2(relu(L1(relu(L0(out))))))`` (``bbox_predictor.layers.{0,1,2}``; ``cx,
  cy, w, h`` in [0, 1]); ``image-segmentation`` adds ``pred_masks [b, num_queries, H_0, W_0]``
  (:func:`attention_maps`, :func:`mask_logits`; ``H_0 x W_0`` the first handed-on stage's grid).

Attention is ``softmax(q k^T / sqrt(d_head)) v`` per head (``attention.attend``); every Linear is
``x W^T + b``; every LayerNorm has eps 1e-5. Names are the ones checkpoints are saved with
(``self_attn.out_proj``, ``layers.{i}.fc1``, ``model.backbone.conv_encoder.model.*``); a live
transformers v5 model's (``o_proj``, ``mlp.fc1``, ``model.backbone.model.*``) are mapped to them by
:func:`file_names` (DetrForSegmentation's ``detr.`` wrapper prefix dropped, its mask head's v5
names mapped back to ``lay{i}``, ``gn{i}``, ``adapter{i}``, ``out_lay``, ``q_linear``, ``k_linear``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ...ir import array_namespace
from . import resnet
from .attention import attend, merge_heads, split_heads
from .bart import _feed_forward
from .bert import _layer_norm
from .config import DetrConfig
from .gpt2 import activation
from .llama import _linear
from .vit import check_pixel_values
from .weights import ParamView, renamed

BASE_PREFIX = "model."
IGNORED_SUFFIXES: tuple[str, ...] = ("num_batches_tracked",)
HEADS = ("default", "object-detection", "image-segmentation")
#: the model takes ``pixel_mask [b, H, W]`` after ``pixel_values`` (models/model.py, export.py)
PIXEL_MASK = True
EPS = 1e-5  # every LayerNorm's (torch's default, which DETR keeps)
LEARNED_CELLS = 50  # rows of the learned row / column position tables
ATTENTION_NAMES = ("q_proj", "k_proj", "v_proj", "out_proj")

# transformers v5 live names (and 4.x's learned-position name) -> the names checkpoints are saved with;
# DetrForSegmentation's ``detr.`` wrapper is dropped (its base model and detection heads take the
# names of DetrForObjectDetection's), its own heads keep theirs
_LIVE = [
    (re.compile(r"^model\.detr\."), ""),
    (re.compile(r"^model\.(bbox_attention|mask_head)\."), r"\1."),
    (re.compile(r"^bbox_attention\.(q|k)_proj\."), r"bbox_attention.\1_linear."),
    (re.compile(r"^mask_head\.conv(\d)\.conv\."), r"mask_head.lay\1."),
    (re.compile(r"^mask_head\.conv(\d)\.norm\."), r"mask_head.gn\1."),
    (re.compile(r"^mask_head\.fpn_stages\.0\.fpn_adapter\."), "mask_head.adapter1."),
    (re.compile(r"^mask_head\.fpn_stages\.1\.fpn_adapter\."), "mask_head.adapter2."),
    (re.compile(r"^mask_head\.fpn_stages\.2\.fpn_adapter\."), "mask_head.adapter3."),
    (re.compile(r"^mask_head\.fpn_stages\.0\.refine\.conv\."), "mask_head.lay3."),
    (re.compile(r"^mask_head\.fpn_stages\.1\.refine\.conv\."), "mask_head.lay4."),
    (re.compile(r"^mask_head\.fpn_stages\.2\.refine\.conv\."), "mask_head.lay5."),
    (re.compile(r"^mask_head\.fpn_stages\.0\.refine\.norm\."), "mask_head.gn3."),
    (re.compile(r"^mask_head\.fpn_stages\.1\.refine\.norm\."), "mask_head.gn4."),
    (re.compile(r"^mask_head\.fpn_stages\.2\.refine\.norm\."), "mask_head.gn5."),
    (re.compile(r"^mask_head\.output_conv\."), "mask_head.out_lay."),
    (re.compile(r"^model\.backbone\.model\."), "model.backbone.conv_encoder.model."),
    (re.compile(r"^model\.backbone\.position_embedding\."), "model.position_embedding."),
    (re.compile(r"\.o_proj\."), ".out_proj."),
    (re.compile(r"\.layers\.(\d+)\.mlp\.fc(\d)\."), r".layers.\1.fc\2."),
]


def check_head(head: str) -> str:
    if head not in HEADS:
        raise ValueError(f"unknown detr head {head!r}; use one of {list(HEADS)}")
    return head


def file_names(params: dict[str, Any]) -> dict[str, Any]:
    """A live transformers v5 state dict under the names checkpoints are saved with."""
    return renamed(params, _LIVE)


# ------------------------------------------------------------------ names and shapes
def _linear_shapes(name: str, out: int, inp: int) -> dict[str, tuple]:
    return {name + ".weight": (out, inp), name + ".bias": (out,)}


def _layer_shapes(cfg: DetrConfig, p: str, ffn: int, cross: bool) -> dict[str, tuple]:
    d = cfg.d_model
    shapes: dict[str, tuple] = {}
    for block in ("self_attn", "encoder_attn") if cross else ("self_attn",):
        for n in ATTENTION_NAMES:
            shapes.update(_linear_shapes(f"{p}{block}.{n}", d, d))
        shapes.update({f"{p}{block}_layer_norm.weight": (d,), f"{p}{block}_layer_norm.bias": (d,)})
    shapes.update(_linear_shapes(p + "fc1", ffn, d))
    shapes.update(_linear_shapes(p + "fc2", d, ffn))
    shapes.update({p + "final_layer_norm.weight": (d,), p + "final_layer_norm.bias": (d,)})
    return shapes


def parameter_shapes(cfg: DetrConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter ``head`` reads."""
    check_head(head)
    if head == "image-segmentation":
        check_segmentation(cfg)
    d = cfg.d_model
    shapes = dict(resnet.parameter_shapes(cfg.resnet))  # under the backbone prefix
    shapes["model.input_projection.weight"] = (d, cfg.resnet.feature_channels, 1, 1)
    shapes["model.input_projection.bias"] = (d,)
    shapes["model.query_position_embeddings.weight"] = (cfg.num_queries, d)
    if cfg.position_embedding_type == "learned":
        for table in ("row_embeddings", "column_embeddings"):
            shapes[f"model.position_embedding.{table}.weight"] = (LEARNED_CELLS, d // 2)
    for i in range(cfg.encoder_layers):
        shapes.update(_layer_shapes(cfg, f"model.encoder.layers.{i}.", cfg.encoder_ffn_dim, cross=False))
    for i in range(cfg.decoder_layers):
        shapes.update(_layer_shapes(cfg, f"model.decoder.layers.{i}.", cfg.decoder_ffn_dim, cross=True))
    shapes.update({"model.decoder.layernorm.weight": (d,), "model.decoder.layernorm.bias": (d,)})
    if head != "default":
        shapes.update(_linear_shapes("class_labels_classifier", cfg.num_labels + 1, d))
        for i, out in enumerate((d, d, 4)):
            shapes.update(_linear_shapes(f"bbox_predictor.layers.{i}", out, d))
    if head == "image-segmentation":
        shapes.update(_segmentation_shapes(cfg))
    return shapes


def _conv_shapes(name: str, out: int, inp: int, k: int) -> dict[str, tuple]:
    return {name + ".weight": (out, inp, k, k), name + ".bias": (out,)}


def _segmentation_shapes(cfg: DetrConfig) -> dict[str, tuple]:
    """The ``image-segmentation`` head: ``bbox_attention`` (query / key linears) and the mask
    head's convs (``lay{i}``), GroupNorms (``gn{i}``) and FPN adapters (``adapter{i}``)."""
    d = cfg.d_model
    c0 = d + cfg.encoder_attention_heads
    shapes = {
        **_linear_shapes("bbox_attention.q_linear", d, d),
        **_linear_shapes("bbox_attention.k_linear", d, d),
    }
    widths = [c0, c0, d // 2, d // 4, d // 8, d // 16]
    for i in range(1, 6):
        shapes.update(_conv_shapes(f"mask_head.lay{i}", widths[i], widths[i - 1], 3))
        shapes.update({f"mask_head.gn{i}.weight": (widths[i],), f"mask_head.gn{i}.bias": (widths[i],)})
    for i, channels in enumerate(cfg.resnet.fpn_channels):
        shapes.update(_conv_shapes(f"mask_head.adapter{i + 1}", widths[i + 2], channels, 1))
    shapes.update(_conv_shapes("mask_head.out_lay", 1, d // 16, 3))
    return shapes


# ------------------------------------------------------------------ mask and positions
def nearest_rows(size_in: int, size_out: int) -> np.ndarray:
    """torch's ``nearest`` resampling: output cell ``i`` reads ``min(floor(i * in / out), in - 1)``
    (the scale in float32, as torch computes it)."""
    scale = np.float32(size_in) / np.float32(size_out)
    rows = np.floor(np.arange(size_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(rows, size_in - 1)


def feature_mask(pixel_mask: Any, size: tuple[int, int]) -> Any:
    """``pixel_mask [b, H, W]`` resampled (nearest) to the feature grid ``size``: float32 1 / 0."""
    xp = array_namespace(pixel_mask)
    height, width = pixel_mask.shape[1], pixel_mask.shape[2]
    m = xp.take(pixel_mask, xp.asarray(nearest_rows(height, size[0])), axis=1)
    m = xp.take(m, xp.asarray(nearest_rows(width, size[1])), axis=2)
    return xp.astype(m != 0, xp.float32)


def _sine(xp: Any, v: Any, n: int) -> Any:
    """``[..., n]``: ``sin(v / t_k)`` at even ``k``, ``cos(v / t_k)`` at odd ``k``,
    ``t_k = 10000^(2 floor(k / 2) / n)``."""
    k = np.arange(n, dtype=np.float32)
    t = np.power(np.float32(10000.0), np.float32(2.0) * np.floor(k / 2) / np.float32(n)).astype(np.float32)
    angle = v[..., None] / xp.asarray(t)
    return xp.where(xp.asarray(np.arange(n) % 2 == 0), xp.sin(angle), xp.cos(angle))


def sine_positions(mask: Any, d_model: int) -> Any:
    """The normalised 2-D sine embedding ``[b, h * w, d_model]`` of a float mask ``[b, h, w]``
    (see the module docstring)."""
    xp = array_namespace(mask)
    b, h, w = mask.shape
    y = xp.cumulative_sum(mask, axis=1)
    x = xp.cumulative_sum(mask, axis=2)
    y = y / (y[:, h - 1 :, :] + 1e-6) * (2 * math.pi)
    x = x / (x[:, :, w - 1 :] + 1e-6) * (2 * math.pi)
    pos = xp.concat([_sine(xp, y, d_model // 2), _sine(xp, x, d_model // 2)], axis=-1)
    return xp.reshape(pos, (b, h * w, d_model))


def learned_positions(P: Any, size: tuple[int, int], d_model: int) -> Any:
    """``[1, h * w, d_model]``: ``concat(column_embeddings[j], row_embeddings[i])`` at cell ``(i, j)``."""
    h, w = size
    if h > LEARNED_CELLS or w > LEARNED_CELLS:
        raise ValueError(
            f"position_embedding_type 'learned' has {LEARNED_CELLS} rows and columns; the feature map is "
            f"{h} x {w}: use a smaller image"
        )
    rows = P["model.position_embedding.row_embeddings.weight"][:h]
    cols = P["model.position_embedding.column_embeddings.weight"][:w]
    xp = array_namespace(rows)
    half = d_model // 2
    grid_x = xp.broadcast_to(cols[None, :, :], (h, w, half))
    grid_y = xp.broadcast_to(rows[:, None, :], (h, w, half))
    return xp.reshape(xp.concat([grid_x, grid_y], axis=-1), (1, h * w, d_model))


# ------------------------------------------------------------------ transformer
def _attention(xp: Any, P: Any, name: str, q_in: Any, k_in: Any, v_in: Any, mask: Any, heads: int) -> Any:
    """``out_proj(softmax(q k^T / sqrt(d_head)) v)`` with ``q``, ``k``, ``v`` projected from
    ``q_in``, ``k_in``, ``v_in``; keys where ``mask [b, T]`` is 0 are hidden."""
    d = q_in.shape[-1] // heads
    q, k, v = (
        split_heads(_linear(xp, P, name + n, x), heads, d)
        for n, x in (("q_proj", q_in), ("k_proj", k_in), ("v_proj", v_in))
    )
    out = attend(q, k, v, mask, 0, d**-0.5, causal=False)
    return _linear(xp, P, name + "out_proj", merge_heads(out))


def encode(P: Any, cfg: DetrConfig, features: Any, pos: Any, mask: Any) -> Any:
    """The encoder over ``features [b, n, d]`` with positions ``pos`` and key mask ``mask [b, n]``."""
    xp = array_namespace(features)
    h = features
    for i in range(cfg.encoder_layers):
        p = f"model.encoder.layers.{i}."
        qk = h + pos
        h = _layer_norm(
            xp,
            P,
            p + "self_attn_layer_norm",
            h + _attention(xp, P, p + "self_attn.", qk, qk, h, mask, cfg.encoder_attention_heads),
            EPS,
        )
        h = _layer_norm(xp, P, p + "final_layer_norm", h + _feed_forward(xp, P, cfg, p, h), EPS)
    return h


def decode(P: Any, cfg: DetrConfig, enc: Any, pos: Any, mask: Any) -> Any:
    """The decoder: ``num_queries`` queries (zeros plus learned positions) over the encoder output."""
    xp = array_namespace(enc)
    b, nq, d = enc.shape[0], cfg.num_queries, cfg.d_model
    qpos = P["model.query_position_embeddings.weight"][None]
    h = xp.zeros((b, nq, d), dtype=enc.dtype)
    query_mask = xp.ones((b, nq), dtype=xp.int64)
    keys = enc + pos
    heads = cfg.decoder_attention_heads
    for i in range(cfg.decoder_layers):
        p = f"model.decoder.layers.{i}."
        qk = h + qpos
        a = _attention(xp, P, p + "self_attn.", qk, qk, h, query_mask, heads)
        h = _layer_norm(xp, P, p + "self_attn_layer_norm", h + a, EPS)
        c = _attention(xp, P, p + "encoder_attn.", h + qpos, keys, enc, mask, heads)
        h = _layer_norm(xp, P, p + "encoder_attn_layer_norm", h + c, EPS)
        h = _layer_norm(xp, P, p + "final_layer_norm", h + _feed_forward(xp, P, cfg, p, h), EPS)
    return _layer_norm(xp, P, "model.decoder.layernorm", h, EPS)


# ------------------------------------------------------------------ segmentation head
def check_segmentation(cfg: DetrConfig) -> None:
    """The ``image-segmentation`` head's needs, as one-line errors naming the field."""
    if len(cfg.resnet.feature_stages) < 3:
        raise ValueError(
            "the image-segmentation head reads three backbone feature maps; config field "
            f"`backbone_config.out_features` {cfg.resnet.out_features!r} must name at least 3 stages"
        )
    if cfg.d_model % 16 or (cfg.d_model + cfg.encoder_attention_heads) % 8:
        raise ValueError(
            f"the image-segmentation head needs config field `d_model` ({cfg.d_model}) a multiple of 16 and "
            f"`d_model` + `encoder_attention_heads` ({cfg.encoder_attention_heads}) a multiple of 8"
        )


def group_norm(P: Any, name: str, x: Any) -> Any:
    """GroupNorm of ``x [n, C, h, w]`` with ``min(8, C)`` groups: per sample and group
    ``(x - mean) / sqrt(var + 1e-5)`` (biased variance), then the per-channel weight and bias."""
    xp = array_namespace(x)
    _, c, h, w = x.shape
    g = min(8, c)
    y = xp.reshape(x, (-1, g, (c // g) * h * w))
    mean = xp.mean(y, axis=-1, keepdims=True)
    var = xp.mean((y - mean) ** 2, axis=-1, keepdims=True)
    y = xp.reshape((y - mean) / xp.sqrt(var + EPS), (-1, c, h, w))
    return y * P[name + ".weight"][:, None, None] + P[name + ".bias"][:, None, None]


def _conv_block(P: Any, i: int, x: Any) -> Any:
    """``relu(gn{i}(lay{i}(x)))`` with a 3x3 convolution (padding 1)."""
    xp = array_namespace(x)
    y = xp.conv(x, P[f"mask_head.lay{i}.weight"], P[f"mask_head.lay{i}.bias"], pads=1)
    return activation(xp, "relu", group_norm(P, f"mask_head.gn{i}", y))


def _nearest(x: Any, size: tuple[int, int]) -> Any:
    """``x [n, C, h, w]`` resampled to ``size`` by torch's nearest rule (:func:`nearest_rows`)."""
    xp = array_namespace(x)
    x = xp.take(x, xp.asarray(nearest_rows(x.shape[2], size[0])), axis=2)
    return xp.take(x, xp.asarray(nearest_rows(x.shape[3], size[1])), axis=3)


def attention_maps(P: Any, cfg: DetrConfig, out: Any, enc: Any, mask: Any, size: tuple[int, int]) -> Any:
    """``[b, num_queries, heads, h, w]``: per query ``softmax`` over every head and cell at once
    of ``q_linear(out) . k_linear(enc) / sqrt(d_head)`` (cells outside ``mask [b, h w]`` hidden)."""
    xp = array_namespace(out)
    heads = cfg.encoder_attention_heads
    dh = cfg.d_model // heads
    q = split_heads(_linear(xp, P, "bbox_attention.q_linear", out), heads, dh)
    k = split_heads(_linear(xp, P, "bbox_attention.k_linear", enc), heads, dh)
    scores = xp.permute_dims(xp.matmul(q, xp.permute_dims(k, (0, 1, 3, 2))) * dh**-0.5, (0, 2, 1, 3))
    allowed = mask[:, None, None, :] != 0
    scores = xp.where(allowed, scores, xp.full_like(scores, xp.finfo(scores.dtype).min))
    n = scores.shape[3]
    flat = xp.softmax(xp.reshape(scores, (-1, cfg.num_queries, heads * n)), axis=-1)
    return xp.reshape(flat, (-1, cfg.num_queries, heads, size[0], size[1]))


def mask_logits(P: Any, cfg: DetrConfig, proj: Any, maps: Any, fpn: list) -> Any:
    """``pred_masks [b, num_queries, H_0, W_0]`` (``H_0 x W_0`` the first feature map's grid): per
    query ``concat(proj, maps)`` through two conv blocks, three FPN stages ``block(adapter(f) +
    nearest(x))`` over the third, second and first feature maps, and the 3x3 ``out_lay``."""
    xp = array_namespace(proj)
    b, d, h, w = proj.shape
    nq, heads = cfg.num_queries, cfg.encoder_attention_heads
    x = xp.concat([xp.broadcast_to(proj[:, None], (b, nq, d, h, w)), maps], axis=2)
    x = _conv_block(P, 2, _conv_block(P, 1, xp.reshape(x, (-1, d + heads, h, w))))
    for i, f in enumerate(fpn):
        a = xp.conv(f, P[f"mask_head.adapter{i + 1}.weight"], P[f"mask_head.adapter{i + 1}.bias"])
        size = (a.shape[2], a.shape[3])
        a = xp.reshape(xp.broadcast_to(a[:, None], (b, nq, *a.shape[1:])), (-1, *a.shape[1:]))
        x = _conv_block(P, i + 3, a + _nearest(x, size))
    y = xp.conv(x, P["mask_head.out_lay.weight"], P["mask_head.out_lay.bias"], pads=1)
    return xp.reshape(y, (-1, nq, y.shape[2], y.shape[3]))


def _check_inputs(cfg: DetrConfig, pixel_values: Any, pixel_mask: Any) -> None:
    check_pixel_values(pixel_values, cfg.num_channels)
    want = [pixel_values.shape[0], pixel_values.shape[2], pixel_values.shape[3]]
    if pixel_mask is not None and (pixel_mask.ndim != 3 or list(pixel_mask.shape)[1:] != want[1:]):
        raise ValueError(
            f"pixel_mask must be [batch, height, width] like pixel_values' {want}, got {list(pixel_mask.shape)}"
        )


def forward(
    params: dict,
    cfg: DetrConfig,
    pixel_values: Any,
    pixel_mask: Any = None,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring) for ``pixel_values [b, c, H, W]`` and
    ``pixel_mask [b, H, W]`` (None: all ones)."""
    check_head(head)
    if output_hidden_states:
        raise ValueError(
            "detr returns no hidden_states (transformers splits them into encoder and decoder states); "
            "call without output_hidden_states"
        )
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    _check_inputs(cfg, pixel_values, pixel_mask)
    if pixel_mask is None:
        b, _, height, width = pixel_values.shape
        pixel_mask = xp.ones((b, height, width), dtype=xp.int64)
    _, stages = resnet.encode(P, cfg.resnet, pixel_values)
    fmap = stages[cfg.resnet.feature_stage]
    b, _, h, w = fmap.shape
    mask = feature_mask(pixel_mask, (h, w))
    proj = xp.conv(fmap, P["model.input_projection.weight"], P["model.input_projection.bias"])
    features = xp.permute_dims(xp.reshape(proj, (b, cfg.d_model, h * w)), (0, 2, 1))
    if cfg.position_embedding_type == "sine":
        pos = sine_positions(mask, cfg.d_model)
    else:
        pos = learned_positions(P, (h, w), cfg.d_model)
    flat_mask = xp.reshape(mask, (b, h * w))
    enc = encode(P, cfg, features, pos, flat_mask)
    out = decode(P, cfg, enc, pos, flat_mask)
    res = {"last_hidden_state": out, "encoder_last_hidden_state": enc}
    if head != "default":
        x = out
        for i in range(3):
            x = _linear(xp, P, f"bbox_predictor.layers.{i}", x)
            x = activation(xp, "relu", x) if i < 2 else xp.sigmoid(x)
        res = {"logits": _linear(xp, P, "class_labels_classifier", out), "pred_boxes": x, **res}
    if head == "image-segmentation":
        check_segmentation(cfg)
        maps = attention_maps(P, cfg, out, enc, flat_mask, (h, w))
        fpn = [stages[i] for i in cfg.resnet.feature_stages[2::-1]]
        res = {**res, "pred_masks": mask_logits(P, cfg, proj, maps, fpn)}
    return res
