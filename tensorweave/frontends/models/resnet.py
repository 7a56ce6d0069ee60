"""ResNet, written once against ``xp``: a convolutional vision encoder of the ``vit.py`` kind
(``forward(params, cfg, pixel_values, head=...)``, heads ``default`` and ``image-classification``)
built from the IR's ``conv`` and ``max_pool`` ops.

``ConvBN(x) = BN(conv(x, W, stride, pad = k // 2))`` with inference BatchNorm
``BN(y) = y * a + (b - mean * a)``, ``a = weight / sqrt(running_var + 1e-5)`` per channel.
Stem: ``max_pool(act(ConvBN_7x7/2(x)), 3, stride 2, pad 1)``. Stages ``i`` of ``depths[i]``
residual layers of width ``hidden_sizes[i]`` (the first layer of a stage strides by 2, except in
stage 0 unless ``downsample_in_first_stage``): ``act(F(x) + shortcut(x))`` with
``shortcut = ConvBN_1x1/stride`` when the width or stride changes, else the identity;
basic ``F = ConvBN_3x3(act(ConvBN_3x3/stride(x)))``; bottleneck (width ``w / 4`` inside)
``F = ConvBN_1x1(act(ConvBN_3x3(act(ConvBN_1x1(x)))))`` with the stride on the 3x3 (on the first
1x1 with ``downsample_in_bottleneck``).

Heads: ``default`` -> ``last_hidden_state [b, C, h, w]`` and ``pooler_output [b, C, 1, 1]`` (the
spatial mean); ``image-classification`` -> ``logits = classifier.1(flatten(pooler_output))``.
``hidden_states``: the stem output and each stage's output. Any image size; names are Hugging
Face's (``resnet.embedder.embedder.convolution.weight``, ``...normalization.running_mean``,
``resnet.encoder.stages.{i}.layers.{j}.layer.{k}``, ``.shortcut``).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .config import ResNetConfig
from .gpt2 import activation
from .vit import check_head, check_pixel_values
from .weights import ParamView

BASE_PREFIX = "resnet."
IGNORED_SUFFIXES = ("num_batches_tracked",)
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default, which transformers' ResNet keeps


def _conv_bn_shapes(name: str, c_in: int, c_out: int, k: int) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {name + ".convolution.weight": (c_out, c_in, k, k)}
    for stat in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{name}.normalization.{stat}"] = (c_out,)
    return shapes


def layer_plan(cfg: ResNetConfig) -> list[tuple[str, int, int, int]]:
    """``(name, in, out, stride)`` of every residual layer, stage by stage."""
    plan = []
    c_in = cfg.embedding_size
    for i, (width, depth) in enumerate(zip(cfg.hidden_sizes, cfg.depths)):
        for j in range(depth):
            stride = (2 if (i > 0 or cfg.downsample_in_first_stage) else 1) if j == 0 else 1
            plan.append((f"{cfg.base_prefix}encoder.stages.{i}.layers.{j}", c_in, width, stride))
            c_in = width
    return plan


def _branch(cfg: ResNetConfig, c_in: int, c_out: int, stride: int) -> list[tuple[int, int, int, int]]:
    """``(in, out, kernel, stride)`` of the convolutions of a layer's main branch."""
    if cfg.layer_type == "basic":
        return [(c_in, c_out, 3, stride), (c_out, c_out, 3, 1)]
    mid, first = c_out // 4, cfg.downsample_in_bottleneck
    return [(c_in, mid, 1, stride if first else 1), (mid, mid, 3, 1 if first else stride), (mid, c_out, 1, 1)]


def parameter_shapes(cfg: ResNetConfig, head: str = "default") -> dict[str, tuple]:
    check_head(head)
    p = cfg.base_prefix
    shapes = _conv_bn_shapes(p + "embedder.embedder", cfg.num_channels, cfg.embedding_size, 7)
    for name, c_in, c_out, stride in layer_plan(cfg):
        for k, (a, b, kernel, _) in enumerate(_branch(cfg, c_in, c_out, stride)):
            shapes.update(_conv_bn_shapes(f"{name}.layer.{k}", a, b, kernel))
        if c_in != c_out or stride != 1:
            shapes.update(_conv_bn_shapes(name + ".shortcut", c_in, c_out, 1))
    if head == "image-classification":
        shapes.update(
            {
                "classifier.1.weight": (cfg.num_labels, cfg.hidden_sizes[-1]),
                "classifier.1.bias": (cfg.num_labels,),
            }
        )
    return shapes


def conv_bn(P: Any, name: str, x: Any, stride: int) -> Any:
    """``BN(conv(x))`` with the padding ``kernel // 2`` and the BatchNorm folded into a per-channel
    scale and shift."""
    xp = array_namespace(x)
    w = P[name + ".convolution.weight"]
    k = w.shape[-1]
    y = xp.conv(x, w, strides=stride, pads=k // 2)
    bn = name + ".normalization."
    scale = P[bn + "weight"] / xp.sqrt(P[bn + "running_var"] + BN_EPS)
    shift = P[bn + "bias"] - P[bn + "running_mean"] * scale
    return y * scale[:, None, None] + shift[:, None, None]


def encode(params: dict, cfg: ResNetConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, C, h, w], hidden_states)``: the stem's and every stage's output."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    check_pixel_values(pixel_values, cfg.num_channels)
    act = cfg.hidden_act
    h = activation(xp, act, conv_bn(P, cfg.base_prefix + "embedder.embedder", pixel_values, 2))
    h = xp.max_pool(h, (3, 3), strides=2, pads=1)
    hidden = [h]
    plan = layer_plan(cfg)
    for n, (name, c_in, c_out, stride) in enumerate(plan):
        x = h
        branch = _branch(cfg, c_in, c_out, stride)
        for k, (_, _, _, s) in enumerate(branch):
            x = conv_bn(P, f"{name}.layer.{k}", x, s)
            x = x if k == len(branch) - 1 else activation(xp, act, x)
        short = conv_bn(P, name + ".shortcut", h, stride) if (c_in != c_out or stride != 1) else h
        h = activation(xp, act, x + short)
        if n + 1 == len(plan) or plan[n + 1][0].rsplit(".layers.", 1)[0] != name.rsplit(".layers.", 1)[0]:
            hidden.append(h)  # the last layer of a stage
    return h, tuple(hidden)


def forward(
    params: dict,
    cfg: ResNetConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    last, hidden = encode(P, cfg, pixel_values)
    pooled = xp.mean(last, axis=(2, 3), keepdims=True)
    if head == "default":
        out = {"last_hidden_state": last, "pooler_output": pooled}
    else:
        flat = xp.reshape(pooled, (pooled.shape[0], pooled.shape[1]))
        w, b = P["classifier.1.weight"], P["classifier.1.bias"]
        out = {"logits": xp.matmul(flat, xp.permute_dims(w, (1, 0))) + b}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
