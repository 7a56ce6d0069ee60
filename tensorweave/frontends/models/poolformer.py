"""PoolFormer, written once against ``xp``: a convolutional vision encoder of the ``vit.py`` kind
(``forward(params, cfg, pixel_values, head=...)``, heads ``default`` and ``image-classification``)
whose token mixer is an average pool.

``GN`` is a GroupNorm with one group: per sample, ``(x - mean) / sqrt(var + 1e-5)`` over all of
``C, h, w`` (biased variance), then a per-channel ``weight`` and ``bias``. Stage ``i``: a patch
embedding ``conv(h, k = patch_sizes[i], stride = strides[i], pad = padding[i])`` with bias, then
``depths[i]`` blocks ``h = h + s1 * (avgpool(GN1(h)) - GN1(h))`` and
``h = h + s2 * conv2(act(conv1(GN2(h))))`` (``avgpool``: ``pool_size`` square windows, stride 1,
padding ``pool_size // 2``, padded cells not counted; ``conv1`` / ``conv2``: 1x1 convs ``C ->
int(C * mlp_ratio) -> C``; ``s1``, ``s2``: per-channel layer scales, 1 without
``use_layer_scale``). ``default`` -> ``last_hidden_state [b, C, h, w]`` (no pooler);
``image-classification`` -> ``logits = classifier(mean_hw(GN(last)))`` (that GN is ``norm``).
``hidden_states``: every stage's output. Names are Hugging Face's
(``poolformer.encoder.patch_embeddings.{i}.projection``, ``poolformer.encoder.block.{i}.{j}.before_norm``,
``.output.conv1``, ``.layer_scale_1``, ``norm``, ``classifier``).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .config import PoolFormerConfig
from .gpt2 import activation
from .vit import check_head, check_pixel_values
from .weights import ParamView

BASE_PREFIX = "poolformer."
IGNORED_SUFFIXES: tuple[str, ...] = ()
GN_EPS = 1e-5  # torch.nn.GroupNorm's default, which transformers' PoolFormer keeps


def _block_shapes(cfg: PoolFormerConfig, name: str, c: int) -> dict[str, tuple]:
    mid = int(c * cfg.mlp_ratio)
    shapes: dict[str, tuple] = {
        name + "output.conv1.weight": (mid, c, 1, 1),
        name + "output.conv1.bias": (mid,),
        name + "output.conv2.weight": (c, mid, 1, 1),
        name + "output.conv2.bias": (c,),
    }
    for norm in ("before_norm", "after_norm"):
        shapes.update({f"{name}{norm}.weight": (c,), f"{name}{norm}.bias": (c,)})
    if cfg.use_layer_scale:
        shapes.update({name + "layer_scale_1": (c,), name + "layer_scale_2": (c,)})
    return shapes


def parameter_shapes(cfg: PoolFormerConfig, head: str = "default") -> dict[str, tuple]:
    check_head(head)
    e = cfg.base_prefix + "encoder."
    shapes: dict[str, tuple] = {}
    c_in = cfg.num_channels
    for i, (c, depth, k) in enumerate(zip(cfg.hidden_sizes, cfg.depths, cfg.patch_sizes)):
        shapes[f"{e}patch_embeddings.{i}.projection.weight"] = (c, c_in, k, k)
        shapes[f"{e}patch_embeddings.{i}.projection.bias"] = (c,)
        for j in range(depth):
            shapes.update(_block_shapes(cfg, f"{e}block.{i}.{j}.", c))
        c_in = c
    if head == "image-classification":
        c = cfg.hidden_sizes[-1]
        shapes.update(
            {
                "norm.weight": (c,),
                "norm.bias": (c,),
                "classifier.weight": (cfg.num_labels, c),
                "classifier.bias": (cfg.num_labels,),
            }
        )
    return shapes


def group_norm(xp: Any, P: Any, name: str, x: Any) -> Any:
    """One-group GroupNorm of ``[b, C, h, w]``: normalized over ``C, h, w``, per-channel affine."""
    mu = xp.mean(x, axis=(1, 2, 3), keepdims=True)
    d = x - mu
    var = xp.mean(d * d, axis=(1, 2, 3), keepdims=True)
    y = d / xp.sqrt(var + GN_EPS)
    return y * P[name + ".weight"][:, None, None] + P[name + ".bias"][:, None, None]


def _block(xp: Any, P: Any, cfg: PoolFormerConfig, name: str, h: Any) -> Any:
    """``h + s1 * (avgpool(GN1(h)) - GN1(h))``, then ``+ s2 * MLP(GN2(.))``."""
    scaled = cfg.use_layer_scale
    x = group_norm(xp, P, name + "before_norm", h)
    k = cfg.pool_size
    mixed = xp.avg_pool(x, (k, k), strides=1, pads=k // 2, count_include_pad=False) - x
    h = h + (P[name + "layer_scale_1"][:, None, None] * mixed if scaled else mixed)
    x = group_norm(xp, P, name + "after_norm", h)
    o = name + "output."
    x = xp.conv(x, P[o + "conv1.weight"], P[o + "conv1.bias"])
    x = xp.conv(activation(xp, cfg.hidden_act, x), P[o + "conv2.weight"], P[o + "conv2.bias"])
    return h + (P[name + "layer_scale_2"][:, None, None] * x if scaled else x)


def encode(params: dict, cfg: PoolFormerConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, C, h, w], hidden_states)``: every stage's output."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    check_pixel_values(pixel_values, cfg.num_channels)
    e = cfg.base_prefix + "encoder."
    h, hidden = pixel_values, []
    for i, depth in enumerate(cfg.depths):
        proj = f"{e}patch_embeddings.{i}.projection."
        h = xp.conv(h, P[proj + "weight"], P[proj + "bias"], strides=cfg.strides[i], pads=cfg.padding[i])
        for j in range(depth):
            h = _block(xp, P, cfg, f"{e}block.{i}.{j}.", h)
        hidden.append(h)
    return h, tuple(hidden)


def forward(
    params: dict,
    cfg: PoolFormerConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    last, hidden = encode(P, cfg, pixel_values)
    if head == "default":
        out = {"last_hidden_state": last}
    else:
        pooled = xp.mean(group_norm(xp, P, "norm", last), axis=(2, 3))
        w, b = P["classifier.weight"], P["classifier.bias"]
        out = {"logits": xp.matmul(pooled, xp.permute_dims(w, (1, 0))) + b}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
