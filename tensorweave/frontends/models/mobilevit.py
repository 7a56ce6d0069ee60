"""MobileViT, written once against ``xp``: a convolutional vision encoder of the ``vit.py`` kind
(``forward(params, cfg, pixel_values, head=...)``), heads ``default``, ``image-classification``
and ``semantic-segmentation``.

Every conv is ``act(BN(conv(x, W, stride, dilation, groups)))`` with padding
``(k - 1) // 2 * dilation`` on every side, no conv bias, inference BatchNorm
``BN(y) = (y - running_mean) * weight / sqrt(running_var + 1e-5) + bias`` (the eps is fixed),
``act`` = ``hidden_act`` (``silu(x) = x * sigmoid(x)``) unless stated. An inverted residual
(mobilenet.py's V2 block) is ``x + reduce(dw(expand(x)))`` (the residual only at stride 1 with
the width kept), ``expand`` a 1x1 conv to ``make_divisible(round(c_in * expand_ratio), 8)``,
``dw`` a 3x3 depthwise conv, ``reduce`` a 1x1 conv without activation.

With ``n = neck_hidden_sizes``: ``stem`` (3x3/2 conv to ``n0``); ``layer.0`` one inverted
residual ``n0 -> n1``; ``layer.1`` three, ``n1 -> n2``, the first of stride 2; ``layer.2..4``
MobileViT blocks ``n2 -> n3``, ``n3 -> n4``, ``n4 -> n5`` with transformer widths
``hidden_sizes`` and 2, 4, 3 transformer layers. A block: a downsampling inverted residual
(stride 2, or with ``output_stride`` 8 / 16 stride 1 and half the stage's dilation), ``r = x``,
``y = conv_1x1(conv_kxk(x))`` (``conv_1x1`` a bare 1x1 linear conv to the width ``d``);
**unfold**: ``y [b, d, H, W]`` (bilinearly resized to multiples of ``p = patch_size`` when it is
not one) becomes ``[b * p * p, N, d]``: token ``n = (i, j)`` of sequence ``(u, v)`` is pixel
``(i p + u, j p + v)``, so attention runs across patches among pixels at the same offset; ViT
pre-norm layers (vit.py's ``layer``, MLP ``d -> mlp_ratio d``), a LayerNorm, **fold** (the
inverse, resized back), ``conv_projection`` (1x1 to the block's width), then
``fusion(concat(r, y))`` (a ``conv_kernel_size`` conv). Last, ``conv_1x1_exp`` (1x1 to ``n6``).
``hidden_states``: the five encoder layers' outputs.

Heads: ``default`` -> ``last_hidden_state [b, n6, h, w]`` and ``pooler_output = mean_hw``;
``image-classification`` -> ``logits = classifier(pooler_output)``; ``semantic-segmentation``
(DeepLabV3, on the encoder's last map ``z``, no ``conv_1x1_exp``): ASPP branches
``relu(BN(conv1x1(z)))``, three ``relu(BN(conv3x3_dilated(z)))`` at ``atrous_rates`` and the
image-pool branch ``relu(BN(conv1x1(mean_hw(z))))`` broadcast over the map, concatenated, a
1x1 ``project`` (BN, ReLU), then ``logits = classifier(.)`` (a 1x1 conv with bias) at the map's
size. Names are Hugging Face's (``mobilevit.encoder.layer.{k}.transformer.layer.{j}.attention.attention.query``,
``segmentation_head.aspp.convs.{i}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...ir import array_namespace
from . import vit
from .config import MobileViTConfig
from .gpt2 import activation
from .mobilenet import make_divisible
from .weights import ParamView

BASE_PREFIX = "mobilevit."
IGNORED_SUFFIXES = ("num_batches_tracked",)
HEADS = ("default", "image-classification", "semantic-segmentation")
BN_EPS = 1e-5
TRANSFORMER_DEPTHS = (2, 4, 3)  # transformer layers of the three MobileViT blocks


@dataclass(frozen=True)
class Conv:
    """One conv layer: name, widths, kernel, stride, dilation, groups, activation (``hidden``:
    the config's, or ``relu``, or none), BatchNorm and conv bias."""

    name: str
    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    act: str | None = "hidden"
    norm: bool = True
    bias: bool = False


@dataclass(frozen=True)
class Block:
    """A MobileViT block: its downsampling residual, convs, transformer width and depth."""

    name: str
    down: tuple[Conv, ...]
    kxk: Conv
    to_tokens: Conv
    from_tokens: Conv
    fusion: Conv
    width: int
    depth: int


def check_head(head: str) -> str:
    """``head`` if MobileViT has it, else a one-line ValueError listing its heads."""
    return vit.check_head(head, HEADS)


def _inverted_residual(
    cfg: MobileViTConfig, name: str, c_in: int, c_out: int, stride: int, dil: int = 1
) -> tuple[Conv, ...]:
    """expand 1x1, depthwise 3x3 (``stride``, ``dil``), linear reduce 1x1."""
    mid = make_divisible(int(round(c_in * cfg.expand_ratio)), 8, 8)
    return (
        Conv(name + "expand_1x1", c_in, mid, 1),
        Conv(name + "conv_3x3", mid, mid, 3, stride, dil, groups=mid),
        Conv(name + "reduce_1x1", mid, c_out, 1, act=None),
    )


def _dilations(cfg: MobileViTConfig) -> tuple[int, int, int]:
    """The three MobileViT blocks' dilations: ``output_stride`` 8 dilates the last two (2, 4),
    16 the last one (2); any other value none."""
    return {8: (1, 2, 4), 16: (1, 1, 2)}.get(cfg.output_stride, (1, 1, 1))


def plan(cfg: MobileViTConfig) -> tuple[Conv, list[tuple[Conv, ...]], list[Block]]:
    """(the stem, the two MobileNet stages' residuals, the three MobileViT blocks)."""
    p, n = cfg.base_prefix, cfg.neck_hidden_sizes
    stem = Conv(p + "conv_stem", cfg.num_channels, n[0], 3, 2)
    e = p + "encoder.layer."
    residuals = [_inverted_residual(cfg, e + "0.layer.0.", n[0], n[1], 1)]
    residuals += [
        _inverted_residual(cfg, f"{e}1.layer.{i}.", n[1 if i == 0 else 2], n[2], 2 if i == 0 else 1)
        for i in range(3)
    ]
    blocks, k = [], cfg.conv_kernel_size
    for j, (dil, width, depth) in enumerate(zip(_dilations(cfg), cfg.hidden_sizes, TRANSFORMER_DEPTHS)):
        name, c_in, c = f"{e}{j + 2}.", n[j + 2], n[j + 3]
        down = _inverted_residual(
            cfg, name + "downsampling_layer.", c_in, c, 2 if dil == 1 else 1, max(dil // 2, 1)
        )
        blocks.append(
            Block(
                name,
                down,
                Conv(name + "conv_kxk", c, c, k),
                Conv(name + "conv_1x1", c, width, 1, act=None, norm=False),
                Conv(name + "conv_projection", width, c, 1),
                Conv(name + "fusion", 2 * c, c, k),
                width,
                depth,
            )
        )
    return stem, residuals, blocks


def _aspp(cfg: MobileViTConfig) -> tuple[list[Conv], Conv, Conv]:
    """(the five ASPP branch convs, ``project``, the classifier)."""
    a = "segmentation_head.aspp."
    c_in, c = cfg.neck_hidden_sizes[5], cfg.aspp_out_channels
    branches = [Conv(a + "convs.0", c_in, c, 1, act="relu")]
    branches += [
        Conv(f"{a}convs.{i + 1}", c_in, c, 3, dilation=r, act="relu") for i, r in enumerate(cfg.atrous_rates)
    ]
    branches.append(Conv(a + "convs.4.conv_1x1", c_in, c, 1, act="relu"))
    project = Conv(a + "project", 5 * c, c, 1, act="relu")
    labels = int(cfg.num_labels)  # type: ignore[arg-type]  # set by the config
    classifier = Conv("segmentation_head.classifier", c, labels, 1, act=None, norm=False, bias=True)
    return branches, project, classifier


def _expansion(cfg: MobileViTConfig) -> Conv:
    n = cfg.neck_hidden_sizes
    return Conv(cfg.base_prefix + "conv_1x1_exp", n[5], n[6], 1)


def _conv_shapes(c: Conv) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {
        c.name + ".convolution.weight": (c.c_out, c.c_in // c.groups, c.kernel, c.kernel)
    }
    if c.bias:
        shapes[c.name + ".convolution.bias"] = (c.c_out,)
    if c.norm:
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{c.name}.normalization.{stat}"] = (c.c_out,)
    return shapes


def _layer_shapes(lp: str, d: int, ff: int) -> dict[str, tuple]:
    """One transformer layer's names (vit.py's ``LAYER_NAMES``) -> shapes."""
    shapes: dict[str, tuple] = {}
    for role, shape in (
        ("q", (d, d)),
        ("k", (d, d)),
        ("v", (d, d)),
        ("o", (d, d)),
        ("ff1", (ff, d)),
        ("ff2", (d, ff)),
    ):
        shapes[lp + vit.LAYER_NAMES[role] + ".weight"] = shape
        shapes[lp + vit.LAYER_NAMES[role] + ".bias"] = (shape[0],)
    for role in ("ln1", "ln2"):
        shapes.update(
            {lp + vit.LAYER_NAMES[role] + ".weight": (d,), lp + vit.LAYER_NAMES[role] + ".bias": (d,)}
        )
    return shapes


def _no_qkv_bias(shapes: dict[str, tuple]) -> dict[str, tuple]:
    roles = tuple(vit.LAYER_NAMES[r] + ".bias" for r in ("q", "k", "v"))
    return {k: v for k, v in shapes.items() if not k.endswith(roles)}


def parameter_shapes(cfg: MobileViTConfig, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter the ``head`` reads."""
    check_head(head)
    stem, residuals, blocks = plan(cfg)
    convs = [stem, *(c for r in residuals for c in r)]
    shapes: dict[str, tuple] = {}
    for b in blocks:
        convs += [*b.down, b.kxk, b.to_tokens, b.from_tokens, b.fusion]
        ff = int(b.width * cfg.mlp_ratio)
        for j in range(b.depth):
            shapes.update(_layer_shapes(f"{b.name}transformer.layer.{j}.", b.width, ff))
        shapes.update({b.name + "layernorm.weight": (b.width,), b.name + "layernorm.bias": (b.width,)})
    if head == "semantic-segmentation":
        branches, project, classifier = _aspp(cfg)
        convs += [*branches, project, classifier]
    else:
        convs.append(_expansion(cfg))
    for c in convs:
        shapes.update(_conv_shapes(c))
    if head == "image-classification":
        n = cfg.neck_hidden_sizes[6]
        shapes.update({"classifier.weight": (cfg.num_labels, n), "classifier.bias": (cfg.num_labels,)})
    return shapes if cfg.qkv_bias else _no_qkv_bias(shapes)


def _act(xp: Any, name: str, x: Any) -> Any:
    """``silu`` / ``swish`` (``x * sigmoid(x)``) or one of gpt2.py's activations."""
    if name in ("silu", "swish"):
        return x * xp.sigmoid(x)
    return activation(xp, name, x)


def conv_layer(xp: Any, P: Any, cfg: MobileViTConfig, c: Conv, x: Any) -> Any:
    """``act(BN(conv(x) (+ b)))`` of one planned conv (see the module docstring)."""
    pads = ((c.kernel - 1) // 2 * c.dilation,) * 4
    bias = P[c.name + ".convolution.bias"] if c.bias else None
    y = xp.conv(
        x,
        P[c.name + ".convolution.weight"],
        bias,
        strides=c.stride,
        pads=pads,
        dilations=c.dilation,
        groups=c.groups,
    )
    if c.norm:
        bn = c.name + ".normalization."
        scale = P[bn + "weight"] / xp.sqrt(P[bn + "running_var"] + BN_EPS)
        shift = P[bn + "bias"] - P[bn + "running_mean"] * scale
        y = y * scale[:, None, None] + shift[:, None, None]
    if c.act is None:
        return y
    return _act(xp, cfg.hidden_act if c.act == "hidden" else c.act, y)


def _residual(xp: Any, P: Any, cfg: MobileViTConfig, convs: tuple[Conv, ...], x: Any) -> Any:
    """``x + convs(x)`` at stride 1 with the width kept, else ``convs(x)``."""
    y = x
    for c in convs:
        y = conv_layer(xp, P, cfg, c, y)
    keep = convs[1].stride == 1 and convs[0].c_in == convs[-1].c_out
    return x + y if keep else y


def unfold(xp: Any, y: Any, p: int) -> tuple[Any, tuple[int, int]]:
    """``[b, d, H, W]`` -> ``([b * p * p, nh * nw, d], (nh, nw))``, resized up to multiples of ``p``."""
    b, d, height, width = y.shape
    nh, nw = -(-height // p), -(-width // p)
    if (nh * p, nw * p) != (height, width):
        y = xp.resize(y, (nh * p, nw * p), mode="linear")
    t = xp.permute_dims(xp.reshape(y, (b, d, nh, p, nw, p)), (0, 3, 5, 2, 4, 1))
    return xp.reshape(t, (b * p * p, nh * nw, d)), (nh, nw)


def fold(xp: Any, t: Any, p: int, grid: tuple[int, int], size: tuple[int, int]) -> Any:
    """The inverse of :func:`unfold`: ``[b * p * p, nh * nw, d]`` -> ``[b, d, *size]``."""
    nh, nw = grid
    d = t.shape[-1]
    y = xp.permute_dims(xp.reshape(t, (-1, p, p, nh, nw, d)), (0, 5, 3, 1, 4, 2))
    y = xp.reshape(y, (y.shape[0], d, nh * p, nw * p))
    return y if (nh * p, nw * p) == tuple(size) else xp.resize(y, tuple(size), mode="linear")


def _block(xp: Any, P: Any, cfg: MobileViTConfig, b: Block, x: Any) -> Any:
    """One MobileViT block (see the module docstring)."""
    x = _residual(xp, P, cfg, b.down, x)
    y = conv_layer(xp, P, cfg, b.to_tokens, conv_layer(xp, P, cfg, b.kxk, x))
    size = (y.shape[2], y.shape[3])
    t, grid = unfold(xp, y, cfg.patch_size)
    mask = xp.ones((t.shape[0], t.shape[1]), dtype=xp.int64)
    act = lambda z: _act(xp, cfg.hidden_act, z)  # noqa: E731
    for j in range(b.depth):
        t = vit.layer(
            P, f"{b.name}transformer.layer.{j}.", t, mask, cfg.num_attention_heads, cfg.layer_norm_eps, act
        )
    t = xp.layer_norm(t, P[b.name + "layernorm.weight"], P[b.name + "layernorm.bias"], eps=cfg.layer_norm_eps)
    y = conv_layer(xp, P, cfg, b.from_tokens, fold(xp, t, cfg.patch_size, grid, size))
    return conv_layer(xp, P, cfg, b.fusion, xp.concat([x, y], axis=1))


def encode(params: Any, cfg: MobileViTConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(the encoder's last map [b, n5, h, w], hidden_states)`` (before ``conv_1x1_exp``)."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    vit.check_pixel_values(pixel_values, cfg.num_channels)
    stem, residuals, blocks = plan(cfg)
    h = conv_layer(xp, P, cfg, stem, pixel_values)
    h = _residual(xp, P, cfg, residuals[0], h)
    hidden = [h]
    for r in residuals[1:]:
        h = _residual(xp, P, cfg, r, h)
    hidden.append(h)
    for b in blocks:
        h = _block(xp, P, cfg, b, h)
        hidden.append(h)
    return h, tuple(hidden)


def _segment(xp: Any, P: Any, cfg: MobileViTConfig, z: Any) -> Any:
    """DeepLabV3's ASPP and classifier on ``z [b, C, h, w]`` -> ``[b, num_labels, h, w]``."""
    branches, project, classifier = _aspp(cfg)
    maps = [conv_layer(xp, P, cfg, c, z) for c in branches[:-1]]
    pooled = conv_layer(xp, P, cfg, branches[-1], xp.mean(z, axis=(2, 3), keepdims=True))
    maps.append(xp.broadcast_to(pooled, maps[0].shape))
    return conv_layer(xp, P, cfg, classifier, conv_layer(xp, P, cfg, project, xp.concat(maps, axis=1)))


def forward(
    params: dict,
    cfg: MobileViTConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    z, hidden = encode(P, cfg, pixel_values)
    if head == "semantic-segmentation":
        out = {"logits": _segment(xp, P, cfg, z)}
    else:
        last = conv_layer(xp, P, cfg, _expansion(cfg), z)
        pooled = xp.mean(last, axis=(2, 3))
        if head == "default":
            out = {"last_hidden_state": last, "pooler_output": pooled}
        else:
            w, b = P["classifier.weight"], P["classifier.bias"]
            out = {"logits": xp.matmul(pooled, xp.permute_dims(w, (1, 0))) + b}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
