"""MobileNet V1 and V2, written once against ``xp``: convolutional vision encoders of the ``vit.py``
kind (``forward(params, cfg, pixel_values, head=...)``, heads ``default`` and
``image-classification``), one module for both (``cfg.model_type`` picks the layer plan).

Every conv is ``ConvLayer(x) = act(BN(conv(x, W, stride, dilation, groups)))`` without a conv bias,
inference BatchNorm ``BN(y) = y * a + (b - mean * a)``, ``a = weight / sqrt(running_var + eps)``
(``eps = layer_norm_eps``), ``act`` = ``hidden_act`` (``relu6(x) = min(max(x, 0), 6)``) or none.
Padding: ``(k - 1) // 2 * dilation`` on every side, or with ``tf_padding`` TensorFlow's "same":
along an axis of size ``n``, ``total = max(k - (s if n % s == 0 else n % s), 0)``, ``total // 2``
before and the rest after (each times the dilation).

V1: ``d(c) = max(int(c * depth_multiplier), min_depth)``; stem 3x3/2 to ``d(32)``; 13 pairs of a
3x3 depthwise conv (strides ``1,2,1,2,1,2,1,1,1,1,1,2,1``) and a 1x1 conv, the width doubling on
the first pair and on every stride-2 pair. ``hidden_states``: the 26 layers' outputs.

V2: ``d(c) = make_divisible(round(c * depth_multiplier))`` where ``make_divisible(v)`` rounds to
the nearest multiple of ``depth_divisible_by`` (at least ``min_depth``; one more step when that
loses over 10 %). Stem: 3x3/2 conv to ``d(32)``, a 1x1 conv unless ``first_layer_is_expansion``,
a 3x3 depthwise conv, a linear 1x1 projection to ``d(16)``. 16 inverted residuals
``x + proj(dw(expand(x)))`` (the residual only when the stride is 1 and the width is kept;
``expand`` to ``make_divisible(round(c_in * expand_ratio))``, ``proj`` without activation); once
the total stride reaches ``output_stride`` the later strides become dilations. Last: a 1x1 conv to
1280 (``finegrained_output`` with ``depth_multiplier < 1``) or ``d(1280)`` channels.
``hidden_states``: the 16 residual blocks' outputs.

Heads: ``default`` -> ``last_hidden_state [b, C, h, w]`` and ``pooler_output = mean_hw [b, C]``;
``image-classification`` -> ``logits = classifier(pooler_output)``. Names are Hugging Face's
(``mobilenet_v1.conv_stem.convolution.weight``, ``mobilenet_v1.layer.{k}.normalization.*``,
``mobilenet_v2.conv_stem.first_conv``, ``mobilenet_v2.layer.{i}.expand_1x1``, ``conv_1x1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...ir import array_namespace
from .config import MobileNetV1Config, MobileNetV2Config
from .gpt2 import activation
from .vit import check_head, check_pixel_values
from .weights import ParamView

BASE_PREFIX = "mobilenet_v1."  # V2's is its config's ``base_prefix``
IGNORED_SUFFIXES = ("num_batches_tracked",)
V1_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
V2_CHANNELS = (16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320)
V2_STRIDES = (2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1)

MobileNetConfig = MobileNetV1Config | MobileNetV2Config


@dataclass(frozen=True)
class Conv:
    """One ConvLayer: its name, widths, kernel, stride, dilation, groups and whether it activates."""

    name: str
    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    act: bool = True


def make_divisible(value: float, divisor: int, min_value: int) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``), one
    ``divisor`` more when rounding lost over 10 %."""
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * value else new)


def _v1_plan(cfg: MobileNetV1Config) -> list[Conv]:
    p = cfg.base_prefix
    depth = 32
    c_out = max(int(depth * cfg.depth_multiplier), cfg.min_depth)
    plan = [Conv(p + "conv_stem", cfg.num_channels, c_out, 3, 2)]
    for i, stride in enumerate(V1_STRIDES):
        c_in = c_out
        if stride == 2 or i == 0:
            depth *= 2
            c_out = max(int(depth * cfg.depth_multiplier), cfg.min_depth)
        plan.append(Conv(f"{p}layer.{2 * i}", c_in, c_in, 3, stride, groups=c_in))
        plan.append(Conv(f"{p}layer.{2 * i + 1}", c_in, c_out, 1))
    return plan


def _v2_width(cfg: MobileNetV2Config, channels: float) -> int:
    return make_divisible(int(round(channels * cfg.depth_multiplier)), cfg.depth_divisible_by, cfg.min_depth)


def _v2_block(cfg: MobileNetV2Config, name: str, c_in: int, c_out: int, stride: int, dil: int) -> list[Conv]:
    mid = make_divisible(int(round(c_in * cfg.expand_ratio)), cfg.depth_divisible_by, cfg.min_depth)
    return [
        Conv(name + "expand_1x1", c_in, mid, 1),
        Conv(name + "conv_3x3", mid, mid, 3, stride, dil, groups=mid),
        Conv(name + "reduce_1x1", mid, c_out, 1, act=False),
    ]


def _v2_plan(cfg: MobileNetV2Config) -> tuple[list[Conv], list[list[Conv]], Conv]:
    """(stem convs, the 16 blocks' convs, the last 1x1 conv)."""
    p = cfg.base_prefix
    ch = [_v2_width(cfg, c) for c in V2_CHANNELS]
    wide = _v2_width(cfg, 32)
    s = p + "conv_stem."
    stem = [Conv(s + "first_conv", cfg.num_channels, wide, 3, 2)]
    if not cfg.first_layer_is_expansion:
        stem.append(Conv(s + "expand_1x1", wide, wide, 1))
    stem += [
        Conv(s + "conv_3x3", wide, wide, 3, groups=wide),
        Conv(s + "reduce_1x1", wide, ch[0], 1, act=False),
    ]
    blocks, total, dilation = [], 2, 1
    for i, stride in enumerate(V2_STRIDES):
        if total == cfg.output_stride:  # keep the resolution: dilate from the next block on
            layer_stride, layer_dil = 1, dilation
            dilation *= stride
        else:
            layer_stride, layer_dil = stride, 1
            total *= stride
        blocks.append(_v2_block(cfg, f"{p}layer.{i}.", ch[i], ch[i + 1], layer_stride, layer_dil))
    c_last = 1280 if (cfg.finegrained_output and cfg.depth_multiplier < 1.0) else _v2_width(cfg, 1280)
    return stem, blocks, Conv(p + "conv_1x1", ch[-1], c_last, 1)


def _all_convs(cfg: MobileNetConfig) -> list[Conv]:
    if isinstance(cfg, MobileNetV2Config):
        stem, blocks, last = _v2_plan(cfg)
        return [*stem, *(c for b in blocks for c in b), last]
    return _v1_plan(cfg)


def _width(cfg: MobileNetConfig) -> int:
    return _all_convs(cfg)[-1].c_out


def parameter_shapes(cfg: MobileNetConfig, head: str = "default") -> dict[str, tuple]:
    check_head(head)
    shapes: dict[str, tuple] = {}
    for c in _all_convs(cfg):
        shapes[c.name + ".convolution.weight"] = (c.c_out, c.c_in // c.groups, c.kernel, c.kernel)
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{c.name}.normalization.{stat}"] = (c.c_out,)
    if head == "image-classification":
        shapes.update(
            {"classifier.weight": (cfg.num_labels, _width(cfg)), "classifier.bias": (cfg.num_labels,)}
        )
    return shapes


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding of one axis: ``(before, after)``."""
    total = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    return total // 2, total - total // 2


def _act(xp: Any, name: str, x: Any) -> Any:
    if name == "relu6":
        return xp.clip(x, 0.0, 6.0)
    return activation(xp, name, x)


def conv_layer(xp: Any, P: Any, cfg: MobileNetConfig, c: Conv, x: Any) -> Any:
    """``act(BN(conv(x)))`` of one planned conv (see the module docstring for the padding)."""
    if cfg.tf_padding:
        (top, bottom), (left, right) = (tf_same_pads(n, c.kernel, c.stride) for n in x.shape[2:])
        pads = tuple(v * c.dilation for v in (top, left, bottom, right))
    else:
        pads = ((c.kernel - 1) // 2 * c.dilation,) * 4
    w = P[c.name + ".convolution.weight"]
    y = xp.conv(x, w, strides=c.stride, pads=pads, dilations=c.dilation, groups=c.groups)
    bn = c.name + ".normalization."
    scale = P[bn + "weight"] / xp.sqrt(P[bn + "running_var"] + cfg.layer_norm_eps)
    shift = P[bn + "bias"] - P[bn + "running_mean"] * scale
    y = y * scale[:, None, None] + shift[:, None, None]
    return _act(xp, cfg.hidden_act, y) if c.act else y


def encode(params: dict, cfg: MobileNetConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, C, h, w], hidden_states)`` (see the module docstring)."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    check_pixel_values(pixel_values, cfg.num_channels)
    h, hidden = pixel_values, []
    if isinstance(cfg, MobileNetV2Config):
        stem, blocks, last = _v2_plan(cfg)
        for c in stem:
            h = conv_layer(xp, P, cfg, c, h)
        for block in blocks:
            x = h
            for c in block:
                x = conv_layer(xp, P, cfg, c, x)
            keep = block[1].stride == 1 and block[0].c_in == block[-1].c_out
            h = h + x if keep else x
            hidden.append(h)
        return conv_layer(xp, P, cfg, last, h), tuple(hidden)
    stem_conv, *layers = _v1_plan(cfg)
    h = conv_layer(xp, P, cfg, stem_conv, h)
    for c in layers:
        h = conv_layer(xp, P, cfg, c, h)
        hidden.append(h)
    return h, tuple(hidden)


def forward(
    params: dict,
    cfg: MobileNetConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    last, hidden = encode(P, cfg, pixel_values)
    pooled = xp.mean(last, axis=(2, 3))
    if head == "default":
        out = {"last_hidden_state": last, "pooler_output": pooled}
    else:
        w, b = P["classifier.weight"], P["classifier.bias"]
        out = {"logits": xp.matmul(pooled, xp.permute_dims(w, (1, 0))) + b}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
