"""LeViT, written once against ``xp``: a vision encoder of the ``vit.py`` kind
(``forward(params, cfg, pixel_values, head=...)``, heads ``default`` and ``image-classification``)
mixing a convolutional stem with attention stages.

``BN`` is inference BatchNorm (eps 1e-5) per channel / feature; ``hs(x) = x * clip(x + 3, 0, 6) / 6``
(hardswish); ``L(x) = BN(x W^T)`` a bias-free linear with BatchNorm. Stem: four
``BN(conv(k = kernel_size, stride, padding))`` to widths ``C0 / 8, C0 / 4, C0 / 2, C0`` with ``hs``
between them, flattened row-major to ``[b, r * r, C0]`` (``r = image_size / patch_size``).
Stage ``i`` (width ``C``, ``heads`` heads of key width ``kd``, value width ``ar * kd``): ``depths[i]``
times ``h = h + Attn(h)`` and (when ``mlp_ratio[i] > 0``) ``h = h + L_down(hs(L_up(h)))`` (``C ->
C * mlp_ratio -> C``). ``Attn``: ``q, k, v`` per head from ``L_qkv(h)`` (viewed ``[b, n, heads,
2 kd + ar kd]``), ``softmax(q k^T / sqrt(kd) + B) v`` merged, then ``L_proj(hs(.))``; ``B[head, p, p']
= attention_biases[head, idx(|dy|, |dx|)]`` with the offsets numbered in order of first appearance
over the (query, key) grid pairs. After stages 0 and 1 a subsampling attention (``C0 / kd0`` and
``C1 / kd0`` heads of key width ``kd0 = key_dim[0]``, value ratio 4, no residual): keys and
values from ``L_kv(h)``, queries from ``L_q`` of every second grid point (the grid shrinks to
``(r - 1) // 2 + 1``), offsets ``|2 y_out - y_in|, |2 x_out - x_in|``, output width the next stage's;
then a residual MLP of ratio 2. ``hidden_states``: each stage's input and the last output.

Heads: ``default`` -> ``last_hidden_state [b, n, C]``, ``pooler_output = mean_n [b, C]``;
``image-classification`` (``LevitForImageClassificationWithTeacher``) -> ``logits`` the mean of
``classifier`` and ``classifier_distill``, each ``linear(BN(pooler_output))``. Names are Hugging
Face's (``levit.patch_embeddings.embedding_layer_{1..4}``, ``levit.encoder.stages.{i}.layers.{j}``
with ``.module.`` inside residual layers, ``queries_keys_values``, ``keys_values``, ``queries``,
``projection``, ``linear_up`` / ``linear_down``, ``attention_biases``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads
from .config import LevitConfig
from .vit import check_head, check_pixel_values
from .weights import ParamView

BASE_PREFIX = "levit."
IGNORED_SUFFIXES = ("num_batches_tracked", "attention_bias_idxs")
BN_EPS = 1e-5  # torch.nn.BatchNorm1d / 2d's default, which transformers' LeViT keeps


@dataclass(frozen=True)
class Layer:
    """One entry of a stage: ``kind`` attention / mlp / subsample, its name and sizes."""

    kind: str
    name: str
    c_in: int
    c_out: int
    heads: int = 0
    key_dim: int = 0
    ratio: int = 0  # attention_ratio (value width / key width) or the MLP's expansion
    res_in: int = 0
    res_out: int = 0


def stage_plan(cfg: LevitConfig) -> list[list[Layer]]:
    """The layers of every stage, in Hugging Face's order."""
    stages, res = [], cfg.resolution
    for i, (c, depth) in enumerate(zip(cfg.hidden_sizes, cfg.depths)):
        p, layers = f"{cfg.base_prefix}encoder.stages.{i}.layers.", []
        kd, heads = cfg.key_dim[i], cfg.num_attention_heads[i]
        for _ in range(depth):
            layers.append(Layer("attention", "", c, c, heads, kd, cfg.attention_ratio[i], res, res))
            if cfg.mlp_ratio[i] > 0:
                layers.append(Layer("mlp", "", c, c, ratio=cfg.mlp_ratio[i]))
        if i < 2:
            kd0, c_next, out = cfg.key_dim[0], cfg.hidden_sizes[i + 1], (res - 1) // 2 + 1
            layers.append(Layer("subsample", "", c, c_next, c // kd0, kd0, 4, res, out))
            layers.append(Layer("mlp", "", c_next, c_next, ratio=2))
            res = out
        named = []
        for j, layer in enumerate(layers):
            inner = "" if layer.kind == "subsample" else "module."
            named.append(Layer(**{**layer.__dict__, "name": f"{p}{j}.{inner}"}))
        stages.append(named)
    return stages


def bias_index(res_q: int, res_k: int, stride: int) -> tuple[np.ndarray, int]:
    """``([res_q^2, res_k^2] indices, number of offsets)``: offsets ``(|stride y_q - y_k|,
    |stride x_q - x_k|)`` numbered in order of first appearance (queries, then keys, row-major)."""
    seen: dict[tuple[int, int], int] = {}
    idx = []
    for yq in range(res_q):
        for xq in range(res_q):
            for yk in range(res_k):
                for xk in range(res_k):
                    off = (abs(yq * stride - yk), abs(xq * stride - xk))
                    idx.append(seen.setdefault(off, len(seen)))
    return np.asarray(idx, np.int64).reshape(res_q * res_q, res_k * res_k), len(seen)


def _bn_shapes(name: str, c: int) -> dict[str, tuple]:
    return {f"{name}.{s}": (c,) for s in ("weight", "bias", "running_mean", "running_var")}


def _linear_bn_shapes(name: str, c_in: int, c_out: int) -> dict[str, tuple]:
    return {name + ".linear.weight": (c_out, c_in), **_bn_shapes(name + ".batch_norm", c_out)}


def _layer_shapes(layer: Layer) -> dict[str, tuple]:
    n, c, kd, h = layer.name, layer.c_in, layer.key_dim, layer.heads
    if layer.kind == "mlp":
        mid = c * layer.ratio
        return {**_linear_bn_shapes(n + "linear_up", c, mid), **_linear_bn_shapes(n + "linear_down", mid, c)}
    vd = layer.ratio * kd
    stride = 2 if layer.kind == "subsample" else 1
    shapes = {n + "attention_biases": (h, bias_index(layer.res_out, layer.res_in, stride)[1])}
    if layer.kind == "attention":
        shapes.update(_linear_bn_shapes(n + "queries_keys_values", c, h * (2 * kd + vd)))
    else:
        shapes.update(_linear_bn_shapes(n + "keys_values", c, h * (kd + vd)))
        shapes.update(_linear_bn_shapes(n + "queries", c, h * kd))
    shapes.update(_linear_bn_shapes(n + "projection", h * vd, layer.c_out))
    return shapes


def _stem_widths(cfg: LevitConfig) -> list[int]:
    c0 = cfg.hidden_sizes[0]
    return [cfg.num_channels, c0 // 8, c0 // 4, c0 // 2, c0]


def parameter_shapes(cfg: LevitConfig, head: str = "default") -> dict[str, tuple]:
    check_head(head)
    shapes: dict[str, tuple] = {}
    w, k = _stem_widths(cfg), cfg.kernel_size
    for i in range(4):
        name = f"{cfg.base_prefix}patch_embeddings.embedding_layer_{i + 1}"
        shapes[name + ".convolution.weight"] = (w[i + 1], w[i], k, k)
        shapes.update(_bn_shapes(name + ".batch_norm", w[i + 1]))
    for stage in stage_plan(cfg):
        for layer in stage:
            shapes.update(_layer_shapes(layer))
    if head == "image-classification":
        c = cfg.hidden_sizes[-1]
        for name in ("classifier", "classifier_distill"):
            shapes.update(_bn_shapes(name + ".batch_norm", c))
            shapes.update(
                {name + ".linear.weight": (cfg.num_labels, c), name + ".linear.bias": (cfg.num_labels,)}
            )
    return shapes


def batch_norm(P: Any, name: str, x: Any, axis: int) -> Any:
    """Inference BatchNorm of the features on ``axis`` (1: ``[b, C, h, w]``; -1: channels last)."""
    xp = array_namespace(x)
    scale = P[name + ".weight"] / xp.sqrt(P[name + ".running_var"] + BN_EPS)
    shift = P[name + ".bias"] - P[name + ".running_mean"] * scale
    if axis == 1:
        return x * scale[:, None, None] + shift[:, None, None]
    return x * scale + shift


def hardswish(xp: Any, x: Any) -> Any:
    """``x * clip(x + 3, 0, 6) / 6``."""
    return x * xp.clip(x + 3.0, 0.0, 6.0) / 6.0


def linear_bn(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``BN(x W^T)``: a bias-free linear, then BatchNorm of its features."""
    y = xp.matmul(x, xp.permute_dims(P[name + ".linear.weight"], (1, 0)))
    return batch_norm(P, name + ".batch_norm", y, -1)


def _heads(xp: Any, x: Any, heads: int, widths: list[int]) -> list[Any]:
    """``[b, n, heads * sum(widths)]`` -> one ``[b, heads, n, w]`` per width (split per head)."""
    b, n = x.shape[0], x.shape[1]
    x = xp.permute_dims(xp.reshape(x, (b, n, heads, sum(widths))), (0, 2, 1, 3))
    out, start = [], 0
    for w in widths:
        out.append(x[:, :, :, start : start + w])
        start += w
    return out


def _attention(xp: Any, P: Any, layer: Layer, h: Any) -> Any:
    """LeViT attention (plain or subsampling) of ``h [b, n, C]`` (see the module docstring)."""
    n, kd, heads = layer.name, layer.key_dim, layer.heads
    vd = layer.ratio * kd
    if layer.kind == "attention":
        q, k, v = _heads(xp, linear_bn(xp, P, n + "queries_keys_values", h), heads, [kd, kd, vd])
        stride = 1
    else:
        k, v = _heads(xp, linear_bn(xp, P, n + "keys_values", h), heads, [kd, vd])
        b, r, c = h.shape[0], layer.res_in, h.shape[2]
        sub = xp.reshape(xp.reshape(h, (b, r, r, c))[:, ::2, ::2, :], (b, layer.res_out**2, c))
        (q,) = _heads(xp, linear_bn(xp, P, n + "queries", sub), heads, [kd])
        stride = 2
    index, _ = bias_index(layer.res_out, layer.res_in, stride)
    table = P[n + "attention_biases"]
    bias = xp.reshape(xp.take(table, xp.asarray(index.reshape(-1)), axis=1), (heads, *index.shape))
    mask = xp.ones((h.shape[0], h.shape[1]), dtype=h.dtype)
    out = merge_heads(attend(q, k, v, mask, 0, default_scale(kd), causal=False, bias=bias[None]))
    return linear_bn(xp, P, n + "projection", hardswish(xp, out))


def _mlp(xp: Any, P: Any, layer: Layer, h: Any) -> Any:
    return linear_bn(
        xp, P, layer.name + "linear_down", hardswish(xp, linear_bn(xp, P, layer.name + "linear_up", h))
    )


def encode(params: dict, cfg: LevitConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, n, C], hidden_states)``: each stage's input and the last output."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    check_pixel_values(pixel_values, cfg.num_channels, tuple(cfg.image_size))
    h = pixel_values
    for i in range(4):
        name = f"{cfg.base_prefix}patch_embeddings.embedding_layer_{i + 1}"
        h = xp.conv(h, P[name + ".convolution.weight"], strides=cfg.stride, pads=cfg.padding)
        h = batch_norm(P, name + ".batch_norm", h, 1)
        h = hardswish(xp, h) if i < 3 else h
    b, c = h.shape[0], h.shape[1]
    h = xp.permute_dims(xp.reshape(h, (b, c, h.shape[2] * h.shape[3])), (0, 2, 1))
    hidden = []
    for stage in stage_plan(cfg):
        hidden.append(h)
        for layer in stage:
            if layer.kind == "mlp":
                h = h + _mlp(xp, P, layer, h)
            elif layer.kind == "attention":
                h = h + _attention(xp, P, layer, h)
            else:
                h = _attention(xp, P, layer, h)
    hidden.append(h)
    return h, tuple(hidden)


def _classify(xp: Any, P: Any, name: str, x: Any) -> Any:
    y = batch_norm(P, name + ".batch_norm", x, -1)
    return xp.matmul(y, xp.permute_dims(P[name + ".linear.weight"], (1, 0))) + P[name + ".linear.bias"]


def forward(
    params: dict,
    cfg: LevitConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    last, hidden = encode(P, cfg, pixel_values)
    pooled = xp.mean(last, axis=1)
    if head == "default":
        out = {"last_hidden_state": last, "pooler_output": pooled}
    else:
        out = {
            "logits": (
                _classify(xp, P, "classifier", pooled) + _classify(xp, P, "classifier_distill", pooled)
            )
            / 2
        }
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
