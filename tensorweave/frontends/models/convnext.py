"""ConvNeXt, written once against ``xp``: a convolutional vision encoder of the ``vit.py`` kind
(``forward(params, cfg, pixel_values, head=...)``, heads ``default`` and ``image-classification``).

``LN_c`` is a LayerNorm over the channel axis of ``[b, C, h, w]`` (eps 1e-6, as Hugging Face
hard-codes). Stem: ``LN_c(conv(x, k = stride = patch_size))``. Stage ``i`` (width
``hidden_sizes[i]``): from stage 1 on, ``conv_2x2/2(LN_c(h))`` first; then ``depths[i]`` blocks
``h = h + gamma * pw2(act(pw1(LN(dwconv_7x7(h)))))`` computed channels-last (``dwconv``: depthwise,
padding 3, with bias; ``pw1`` / ``pw2``: linears ``C -> 4C -> C``; ``gamma``: the layer scale,
absent when ``layer_scale_init_value`` is not positive). ``pooler_output = LayerNorm(mean_hw(h))``
(eps ``layer_norm_eps``); ``logits = classifier(pooler_output)``. ``default`` ->
``last_hidden_state [b, C, h, w]`` and ``pooler_output [b, C]``; ``hidden_states``: the stem's
and every stage's output. Names are Hugging Face's (``convnext.embeddings.patch_embeddings``,
``convnext.encoder.stages.{i}.downsampling_layer.{0,1}``, ``...layers.{j}.dwconv``,
``layer_scale_parameter``, ``convnext.layernorm``, ``classifier``)."""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .config import ConvNextConfig
from .gpt2 import activation
from .vit import check_head, check_pixel_values
from .weights import ParamView

BASE_PREFIX = "convnext."
IGNORED_SUFFIXES: tuple[str, ...] = ()
LN_EPS = 1e-6  # the channel LayerNorms' eps (Hugging Face fixes it; the final norm's is the config's)


def parameter_shapes(cfg: ConvNextConfig, head: str = "default") -> dict[str, tuple]:
    check_head(head)
    p = cfg.base_prefix
    c0 = cfg.hidden_sizes[0]
    shapes: dict[str, tuple] = {
        p + "embeddings.patch_embeddings.weight": (c0, cfg.num_channels, *cfg.patch_size),
        p + "embeddings.patch_embeddings.bias": (c0,),
        p + "embeddings.layernorm.weight": (c0,),
        p + "embeddings.layernorm.bias": (c0,),
    }
    c_in = c0
    for i, (c, depth) in enumerate(zip(cfg.hidden_sizes, cfg.depths)):
        s = f"{p}encoder.stages.{i}."
        if i > 0:
            shapes.update(
                {
                    s + "downsampling_layer.0.weight": (c_in,),
                    s + "downsampling_layer.0.bias": (c_in,),
                    s + "downsampling_layer.1.weight": (c, c_in, 2, 2),
                    s + "downsampling_layer.1.bias": (c,),
                }
            )
        for j in range(depth):
            lp = f"{s}layers.{j}."
            shapes.update(
                {
                    lp + "dwconv.weight": (c, 1, 7, 7),
                    lp + "dwconv.bias": (c,),
                    lp + "layernorm.weight": (c,),
                    lp + "layernorm.bias": (c,),
                    lp + "pwconv1.weight": (4 * c, c),
                    lp + "pwconv1.bias": (4 * c,),
                    lp + "pwconv2.weight": (c, 4 * c),
                    lp + "pwconv2.bias": (c,),
                }
            )
            if cfg.layer_scale_init_value > 0:
                shapes[lp + "layer_scale_parameter"] = (c,)
        c_in = c
    c = cfg.hidden_sizes[-1]
    shapes.update({p + "layernorm.weight": (c,), p + "layernorm.bias": (c,)})
    if head == "image-classification":
        shapes.update({"classifier.weight": (cfg.num_labels, c), "classifier.bias": (cfg.num_labels,)})
    return shapes


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    return xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0))) + P[name + ".bias"]


def _norm_channels(xp: Any, P: Any, name: str, x: Any) -> Any:
    """LayerNorm over the channel axis of ``[b, C, h, w]``."""
    y = xp.layer_norm(xp.permute_dims(x, (0, 2, 3, 1)), P[name + ".weight"], P[name + ".bias"], eps=LN_EPS)
    return xp.permute_dims(y, (0, 3, 1, 2))


def _block(xp: Any, P: Any, cfg: ConvNextConfig, name: str, h: Any) -> Any:
    """``h + gamma * pw2(act(pw1(LN(dwconv(h)))))``, the MLP channels-last."""
    c = h.shape[1]
    x = xp.conv(h, P[name + "dwconv.weight"], P[name + "dwconv.bias"], pads=3, groups=c)
    x = xp.layer_norm(
        xp.permute_dims(x, (0, 2, 3, 1)), P[name + "layernorm.weight"], P[name + "layernorm.bias"], eps=LN_EPS
    )
    x = _linear(xp, P, name + "pwconv2", activation(xp, cfg.hidden_act, _linear(xp, P, name + "pwconv1", x)))
    if (name + "layer_scale_parameter") in P:
        x = x * P[name + "layer_scale_parameter"]
    return h + xp.permute_dims(x, (0, 3, 1, 2))


def encode(params: dict, cfg: ConvNextConfig, pixel_values: Any) -> tuple[Any, tuple]:
    """``(last_hidden_state [b, C, h, w], hidden_states)``: the stem's and every stage's output."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    check_pixel_values(pixel_values, cfg.num_channels)
    p = cfg.base_prefix
    e = p + "embeddings."
    h = xp.conv(
        pixel_values, P[e + "patch_embeddings.weight"], P[e + "patch_embeddings.bias"], strides=cfg.patch_size
    )
    h = _norm_channels(xp, P, e + "layernorm", h)
    hidden = [h]
    for i, depth in enumerate(cfg.depths):
        s = f"{p}encoder.stages.{i}."
        if i > 0:
            down = s + "downsampling_layer."
            h = _norm_channels(xp, P, down + "0", h)
            h = xp.conv(h, P[down + "1.weight"], P[down + "1.bias"], strides=2)
        for j in range(depth):
            h = _block(xp, P, cfg, f"{s}layers.{j}.", h)
        hidden.append(h)
    return h, tuple(hidden)


def forward(
    params: dict,
    cfg: ConvNextConfig,
    pixel_values: Any,
    head: str = "default",
    output_hidden_states: bool = False,
) -> dict:
    """The ``head``'s outputs (see the module docstring), plus ``hidden_states`` when asked."""
    check_head(head)
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    last, hidden = encode(P, cfg, pixel_values)
    p = cfg.base_prefix
    pooled = xp.layer_norm(
        xp.mean(last, axis=(2, 3)), P[p + "layernorm.weight"], P[p + "layernorm.bias"], eps=cfg.layer_norm_eps
    )
    if head == "default":
        out = {"last_hidden_state": last, "pooler_output": pooled}
    else:
        out = {"logits": _linear(xp, P, "classifier", pooled)}
    if output_hidden_states:
        out["hidden_states"] = hidden
    return out
