"""LayoutLMv3 (``LayoutLMv3Model`` and its three task heads), written once against ``xp``: a text
with a box per token, optionally followed by the patches of one page image per row, through
post-LayerNorm layers with relative position biases.

- Text (``input_ids [b, s]``, ``bbox [b, s, 4]`` = ``(x0, y0, x1, y1)``, zeros when absent):
  ``t = LN_e(word[ids] + type[0] + position[p] + concat(x[x0], y[y0], x[x1], y[y1],
  h[clip(y1 - y0, 0, 1023)], w[clip(x1 - x0, 0, 1023)]))`` with RoBERTa's positions
  ``p = cumsum(m) * m + pad`` (``m = ids != pad_token_id``); the four coordinate tables have
  ``coordinate_size`` columns, the two shape tables ``shape_size``, concatenated to the width.
- Image (``pixel_values [b, c, S, S]``, ``S = input_size``; ``visual_embed``): ``v =
  norm(concat(cls_token, conv(x, W, stride = patch_size) + bias) + pos_embed)`` (patches
  row-major; ``norm`` has eps 1e-6), then ``h = LayerNorm(concat(t, v))`` over ``s + n + 1``
  positions (``n = (S / patch_size)^2``); the image positions are never masked. Without an
  image ``h = t``.
- Layer: ``a = LN(h + o(attn(h)))``, ``h = LN(a + ff2(act(ff1(a))))`` with ``attn = softmax(q k^T
  / sqrt(d) + B + mask) v``.
- Bias ``B [b, heads, L, L]`` (shared by every layer; none unless ``has_relative_attention_bias``):
  ``B = (R1(pos) + [R2x(box_x0) + R2y(box_y1)]) / sqrt(d)``, the bracket only with
  ``has_spatial_attention_bias``. ``R(u)[i, j] = W[:, bucket(u_j - u_i)]`` (T5's bidirectional
  bucket of the key-minus-query difference, ``rel_pos_bins`` / ``max_rel_pos`` for the 1-D bias,
  ``rel_2d_pos_bins`` / ``max_rel_2d_pos`` for the 2-D ones; ``W`` a bias-free ``[heads, bins]``
  linear). 1-D positions: ``0 .. s-1`` for the text, then ``0 .. n`` again for the image.
  Boxes of the image: ``(1, 1, 999, 999)`` for its CLS, and for the patch in row ``r``, column
  ``c`` of a ``g x g`` grid ``(e_c, e_r, e_{c+1}, e_{r+1})`` with ``e_k = floor(1000 k / g)``.
- Heads: ``default`` ``last_hidden_state [b, L, d]``; ``sequence-classification`` ``logits =
  out_proj(tanh(dense(h[:, 0])))`` (``classifier.``); ``token-classification`` ``logits`` over the
  text positions only (``classifier``: a linear when ``num_labels < 10``, else dense-tanh-out_proj);
  ``question-answering`` ``start_logits``, ``end_logits [b, L]`` from ``qa_outputs`` (dense-tanh-
  out_proj to 2) over every position, image ones included.

Parameter names are ``LayoutLMv3For*``'s (``layoutlmv3.embeddings.x_position_embeddings``,
``layoutlmv3.encoder.layer.{i}.attention.self.query``, ``layoutlmv3.patch_embed.proj``,
``layoutlmv3.encoder.rel_pos_x_bias``, ...). Dropout is the identity (inference).
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .bert import _layer_norm, _linear, default_position_ids, output_block
from .config import LayoutLMv3Config
from .t5 import relative_position_bucket
from .vit import check_pixel_values
from .weights import ParamView

BASE_PREFIX = "layoutlmv3."
IGNORED_SUFFIXES = ("embeddings.position_ids", "visual_bbox")
HEADS = ("default", "sequence-classification", "token-classification", "question-answering")
#: model_type -> its inputs, in the order programs take them (``pixel_values`` may be left out)
INPUTS = {"layoutlmv3": ("input_ids", "bbox", "attention_mask", "pixel_values")}
OPTIONAL_INPUTS = ("pixel_values",)
IMAGE_BATCH = "batch"  # one page image per text row
CLS_BOX = (1, 1, 999, 999)
SHAPE_CLIP = 1023  # Hugging Face clips box heights and widths to 0 .. 1023


def check_head(head: str) -> str:
    if head not in HEADS:
        raise ValueError(f"unknown layoutlmv3 head {head!r}; use one of {list(HEADS)}")
    return head


def _dense(name: str, rows: int, cols: int) -> dict[str, tuple]:
    return {name + ".weight": (rows, cols), name + ".bias": (rows,)}


def _norm_shapes(name: str, d: int) -> dict[str, tuple]:
    return {name + ".weight": (d,), name + ".bias": (d,)}


def _head_shapes(cfg: LayoutLMv3Config, head: str) -> dict[str, tuple]:
    """The task head's parameters (``classifier.`` / ``qa_outputs.``)."""
    d, labels = cfg.hidden_size, int(cfg.num_labels or 2)
    if head == "default":
        return {}
    if head == "question-answering" and labels != 2:
        raise ValueError(
            f"config field `num_labels` must be 2 for question-answering (start and end logits), got {labels}"
        )
    name = "qa_outputs" if head == "question-answering" else "classifier"
    if head == "token-classification" and labels < 10:
        return _dense(name, labels, d)
    return {**_dense(name + ".dense", d, d), **_dense(name + ".out_proj", labels, d)}


def parameter_shapes(cfg: LayoutLMv3Config, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter of the head's class."""
    check_head(head)
    d, p, e = cfg.hidden_size, BASE_PREFIX, BASE_PREFIX + "embeddings."
    shapes: dict[str, tuple] = {
        e + "word_embeddings.weight": (cfg.vocab_size, d),
        e + "token_type_embeddings.weight": (cfg.type_vocab_size, d),
        e + "position_embeddings.weight": (cfg.max_position_embeddings, d),
        **_norm_shapes(e + "LayerNorm", d),
    }
    for axis in "xyhw":
        width = cfg.coordinate_size if axis in "xy" else cfg.shape_size
        shapes[f"{e}{axis}_position_embeddings.weight"] = (cfg.max_2d_position_embeddings, width)
    if cfg.visual_embed:
        shapes[p + "patch_embed.proj.weight"] = (d, cfg.num_channels, cfg.patch_size, cfg.patch_size)
        shapes[p + "patch_embed.proj.bias"] = (d,)
        shapes[p + "cls_token"] = (1, 1, d)
        shapes[p + "pos_embed"] = (1, cfg.grid * cfg.grid + 1, d)
        shapes.update({**_norm_shapes(p + "LayerNorm", d), **_norm_shapes(p + "norm", d)})
    for i in range(cfg.num_hidden_layers):
        lp = f"{p}encoder.layer.{i}."
        for role in ("query", "key", "value"):
            shapes.update(_dense(f"{lp}attention.self.{role}", d, d))
        shapes.update(_dense(lp + "attention.output.dense", d, d))
        shapes.update(_norm_shapes(lp + "attention.output.LayerNorm", d))
        shapes.update(_dense(lp + "intermediate.dense", cfg.intermediate_size, d))
        shapes.update(_dense(lp + "output.dense", d, cfg.intermediate_size))
        shapes.update(_norm_shapes(lp + "output.LayerNorm", d))
    heads = cfg.num_attention_heads
    if cfg.has_relative_attention_bias:
        shapes[p + "encoder.rel_pos_bias.weight"] = (heads, cfg.rel_pos_bins)
    if cfg.has_spatial_attention_bias:
        for axis in "xy":
            shapes[f"{p}encoder.rel_pos_{axis}_bias.weight"] = (heads, cfg.rel_2d_pos_bins)
    shapes.update(_head_shapes(cfg, head))
    return shapes


# ------------------------------------------------------------------ embeddings
def embed_text(xp: Any, P: Any, cfg: LayoutLMv3Config, input_ids: Any, bbox: Any) -> Any:
    """``[b, s, d]``: word, type-0, RoBERTa position and concatenated layout embeddings, then
    LayerNorm (see the module docstring)."""
    e = BASE_PREFIX + "embeddings."
    pos = default_position_ids(cast(Any, cfg), input_ids)  # reads positions_from_ids, pad_token_id
    h = xp.take(P[e + "word_embeddings.weight"], input_ids, axis=0)
    h = (
        h
        + P[e + "token_type_embeddings.weight"][0]
        + xp.take(P[e + "position_embeddings.weight"], pos, axis=0)
    )
    x0, y0, x1, y1 = (bbox[..., j] for j in range(4))
    height, width = xp.clip(y1 - y0, 0, SHAPE_CLIP), xp.clip(x1 - x0, 0, SHAPE_CLIP)
    parts = [("x", x0), ("y", y0), ("x", x1), ("y", y1), ("h", height), ("w", width)]
    layout = [xp.take(P[f"{e}{t}_position_embeddings.weight"], idx, axis=0) for t, idx in parts]
    return _layer_norm(xp, P, e + "LayerNorm", h + xp.concat(layout, axis=-1), cfg.layer_norm_eps)


def embed_image(xp: Any, P: Any, cfg: LayoutLMv3Config, pixel_values: Any) -> Any:
    """``[b, n + 1, d]``: ``norm(concat(cls, patches) + pos_embed)`` (eps 1e-6)."""
    check_pixel_values(pixel_values, cfg.num_channels, (cfg.input_size, cfg.input_size), "input_size")
    p, d, n = BASE_PREFIX, cfg.hidden_size, cfg.grid * cfg.grid
    x = xp.conv(pixel_values, P[p + "patch_embed.proj.weight"], strides=(cfg.patch_size, cfg.patch_size))
    b = x.shape[0]
    patches = xp.permute_dims(xp.reshape(x, (b, d, n)), (0, 2, 1)) + P[p + "patch_embed.proj.bias"]
    cls = xp.broadcast_to(P[p + "cls_token"], (b, 1, d))
    v = xp.concat([cls, patches], axis=1) + P[p + "pos_embed"]
    return _layer_norm(xp, P, p + "norm", v, 1e-6)


def visual_boxes(grid: int) -> np.ndarray:
    """int64 ``[grid * grid + 1, 4]``: the CLS box, then each patch's box, row-major."""
    edges = np.arange(grid + 1) * 1000 // grid
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    boxes = np.stack([edges[cols], edges[rows], edges[cols + 1], edges[rows + 1]], axis=-1).reshape(-1, 4)
    return np.concatenate([np.array([CLS_BOX]), boxes]).astype(np.int64)


# ------------------------------------------------------------------ relative position bias
def relative_bias(xp: Any, weight: Any, positions: Any, bins: int, max_distance: int) -> Any:
    """``[b, heads, L, L]``: ``weight[:, bucket(u_j - u_i)]`` for ``positions u [b, L]``."""
    rel = positions[:, None, :] - positions[:, :, None]
    buckets = relative_position_bucket(rel, True, bins, max_distance)
    values = xp.take(xp.permute_dims(weight, (1, 0)), buckets, axis=0)  # [b, L, L, heads]
    return xp.permute_dims(values, (0, 3, 1, 2))


def position_bias(xp: Any, P: Any, cfg: LayoutLMv3Config, positions: Any, boxes: Any) -> Any:
    """The bias shared by every layer (None without ``has_relative_attention_bias``)."""
    if not cfg.has_relative_attention_bias:
        return None
    e = BASE_PREFIX + "encoder."
    bias = relative_bias(xp, P[e + "rel_pos_bias.weight"], positions, cfg.rel_pos_bins, cfg.max_rel_pos)
    if cfg.has_spatial_attention_bias:
        spatial = relative_bias(
            xp, P[e + "rel_pos_x_bias.weight"], boxes[..., 0], cfg.rel_2d_pos_bins, cfg.max_rel_2d_pos
        ) + relative_bias(
            xp, P[e + "rel_pos_y_bias.weight"], boxes[..., 3], cfg.rel_2d_pos_bins, cfg.max_rel_2d_pos
        )
        bias = spatial + bias
    return bias / math.sqrt(cfg.head_dim)


# ------------------------------------------------------------------ encoder
def layer(xp: Any, P: Any, cfg: LayoutLMv3Config, lp: str, h: Any, mask: Any, bias: Any) -> Any:
    """One post-LayerNorm layer (see the module docstring) under the prefix ``lp``."""
    eps, nh, hd = cfg.layer_norm_eps, cfg.num_attention_heads, cfg.head_dim
    q, k, v = (
        split_heads(_linear(xp, P, f"{lp}attention.self.{r}", h), nh, hd) for r in ("query", "key", "value")
    )
    ctx = merge_heads(attend(q, k, v, mask, 0, default_scale(hd), causal=False, bias=bias))
    return output_block(xp, P, lp, ctx, h, cfg.hidden_act, eps)


def encode(
    params: Any,
    cfg: LayoutLMv3Config,
    input_ids: Any,
    bbox: Any = None,
    attention_mask: Any = None,
    pixel_values: Any = None,
) -> Any:
    """``last_hidden_state [b, L, d]``: ``L = s`` for text alone, ``s + n + 1`` with an image."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    b, s = input_ids.shape
    if bbox is None:
        bbox = xp.zeros((b, s, 4), dtype=xp.int64)
    if attention_mask is None:
        attention_mask = xp.ones((b, s), dtype=xp.int64)
    h = embed_text(xp, P, cfg, input_ids, bbox)
    positions = xp.broadcast_to(xp.arange(s)[None, :], (b, s))
    mask, boxes = attention_mask, bbox
    if pixel_values is not None:
        if not cfg.visual_embed:
            raise ValueError("this layoutlmv3 config has visual_embed false: call it without pixel_values")
        v = embed_image(xp, P, cfg, pixel_values)
        n1 = cfg.grid * cfg.grid + 1
        h = _layer_norm(xp, P, BASE_PREFIX + "LayerNorm", xp.concat([h, v], axis=1), cfg.layer_norm_eps)
        mask = xp.concat([xp.astype(attention_mask, xp.int64), xp.ones((b, n1), dtype=xp.int64)], axis=1)
        image_pos = xp.broadcast_to(xp.arange(n1)[None, :], (b, n1))
        positions = xp.concat([positions, image_pos], axis=1)
        image_boxes = xp.broadcast_to(xp.asarray(visual_boxes(cfg.grid))[None], (b, n1, 4))
        boxes = xp.concat([xp.astype(bbox, xp.int64), image_boxes], axis=1)
    bias = position_bias(xp, P, cfg, positions, boxes)
    for i in range(cfg.num_hidden_layers):
        h = layer(xp, P, cfg, f"{BASE_PREFIX}encoder.layer.{i}.", h, mask, bias)
    return h


def _classify(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``out_proj(tanh(dense(x)))`` (Hugging Face's ``LayoutLMv3ClassificationHead``)."""
    return _linear(xp, P, name + ".out_proj", xp.tanh(_linear(xp, P, name + ".dense", x)))


def forward(
    params: dict,
    cfg: LayoutLMv3Config,
    input_ids: Any = None,
    bbox: Any = None,
    attention_mask: Any = None,
    pixel_values: Any = None,
    head: str = "default",
) -> dict:
    """The head's outputs (see the module docstring); ``pixel_values`` None runs the text alone."""
    check_head(head)
    xp = array_namespace(input_ids)
    P = ParamView(params)
    h = encode(P, cfg, input_ids, bbox, attention_mask, pixel_values)
    if head == "default":
        return {"last_hidden_state": h}
    if head == "sequence-classification":
        return {"logits": _classify(xp, P, "classifier", h[:, 0])}
    if head == "question-answering":
        se = _classify(xp, P, "qa_outputs", h)
        return {"start_logits": se[..., 0], "end_logits": se[..., 1]}
    text = h[:, : input_ids.shape[1]]
    if "classifier.weight" in P:
        return {"logits": _linear(xp, P, "classifier", text)}
    return {"logits": _classify(xp, P, "classifier", text)}
