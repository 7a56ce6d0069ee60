"""GroupViT (``GroupViTModel``), written once against ``xp``: CLIP's text tower (clip.py), a vision
tower that groups image tokens in stages, and two-layer projections.

Text: :func:`clip.encode_text` (causal pre-norm layers, ``final_layer_norm``, pooled at the EOS
token by CLIP's rule).

Vision (``pixel_values [b, c, H, W]``, ``H = W = image_size``, ``n = (H / patch_size)^2``):

- ``x = layernorm(conv(pixel_values, W, b, stride = patch_size)) + position_embeddings``
  (row-major patches ``[b, n, d]``, a convolution with bias, no class token);
- stage ``s`` with ``g = num_group_tokens[s]`` group tokens: ``t = group_token`` (``[g, d]``,
  broadcast over the batch), plus ``mixer(LN(t_prev))`` with the stage's ``group_projector``
  when the previous stage had output groups (``t_prev``: the previous stage's group tokens after
  its layers); ``depths[s]`` pre-norm layers (:func:`clip.layer`, bidirectional) over
  ``concat(x, t)``, split back into ``x`` and ``t``; then ``x = assign(x, t)`` (below). A stage
  without group tokens runs its layers on ``x`` alone;
- ``last = layernorm(x)``, ``pooled = mean_tokens(last)``.

``mixer(t) = (fc2(act(fc1(t^T))))^T`` mixes along the token axis (``t^T: [b, d, tokens]``).
``assign(x, t)`` (the stage's ``downsample``): ``t = LN(t)``, ``x = LN(x)``;
``p = LN(mixer(t))`` (``num_output_groups[s]`` rows); ``p = LN(q + mlp(LN(q)))`` with ``q = p +
cross_attn(p, x)`` (multi-head, queries ``p``, keys and values ``x``); ``a = onehot_groups(argmax_g
(q' k'^T / sqrt(d)))`` with ``q' = W_q p``, ``k' = W_k x`` (every image token goes to its best
group: the straight-through hard assignment, whose value at inference is the one-hot);
``a = a / (sum_tokens(a) + assign_eps)``; ``y = proj(a W_v x) + p``; ``y = y + mlp(LN(y))``.
``act`` is the vision ``hidden_act``; every MLP is ``fc2(act(fc1(.)))``.

Projections: ``proj(v) = W_2 relu(BN(W_1 v + b_1)) + b_2`` with BatchNorm at inference,
``BN(y) = (y - running_mean) / sqrt(running_var + 1e-5) * w + b``, through
``projection_intermediate_dim``; then CLIP's outputs (:func:`clip.contrast`): ``text_embeds``,
``image_embeds`` normalised, ``logits_per_text = exp(logit_scale) text_embeds image_embeds^T``,
``logits_per_image`` its transpose.

Names are ``GroupViTModel``'s (``vision_model.embeddings.patch_embeddings.projection``,
``vision_model.encoder.stages.{s}.layers.{i}.self_attn.q_proj``, ``...stages.{s}.group_token``,
``...stages.{s}.downsample.assign.q_proj``, ``...stages.{s}.group_projector.1.fc1``,
``text_projection.0`` / ``.1`` (BatchNorm) / ``.3``, ``logit_scale``, ...).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .clip import (
    HEADS,
    OUTPUTS,
    _linear,
    _norm,
    check_head,
    contrast,
    encode_text,
    layer,
    layer_shapes,
    text_shapes,
)
from .config import GroupViTVisionConfig
from .gpt2 import activation
from .vit import check_pixel_values
from .weights import ParamView

BASE_PREFIX = ""  # GroupViTModel's names start at the towers (text_model., vision_model.)
IGNORED_SUFFIXES = ("embeddings.position_ids", "num_batches_tracked")
#: model_type -> its inputs, in the order programs take them
INPUTS = {"groupvit": ("input_ids", "attention_mask", "pixel_values")}
#: BatchNorm1d's epsilon in the projections
BN_EPS = 1e-5

__all__ = ["BASE_PREFIX", "HEADS", "IGNORED_SUFFIXES", "INPUTS", "OUTPUTS", "check_head", "forward"]


# ------------------------------------------------------------------ parameter shapes
def _linear_shapes(name: str, n_in: int, n_out: int) -> dict[str, tuple]:
    return {name + ".weight": (n_out, n_in), name + ".bias": (n_out,)}


def _norm_shapes(name: str, d: int) -> dict[str, tuple]:
    return {name + ".weight": (d,), name + ".bias": (d,)}


def _mlp_shapes(name: str, n_in: int, hidden: int, n_out: int) -> dict[str, tuple]:
    return {**_linear_shapes(name + ".fc1", n_in, hidden), **_linear_shapes(name + ".fc2", hidden, n_out)}


def _assign_shapes(dp: str, v: GroupViTVisionConfig, groups: int, out: int) -> dict[str, tuple]:
    d, (tokens, channels) = v.hidden_size, v.assign_widths
    shapes = {
        **_norm_shapes(dp + "norm_tokens", d),
        **_mlp_shapes(dp + "mlp_inter", groups, tokens, out),
        **_norm_shapes(dp + "norm_post_tokens", d),
        **_norm_shapes(dp + "norm_x", d),
        **_norm_shapes(dp + "pre_assign_attn.norm2", d),
        **_mlp_shapes(dp + "pre_assign_attn.mlp", d, v.intermediate_size, d),
        **_norm_shapes(dp + "pre_assign_attn.norm_post", d),
        **_norm_shapes(dp + "norm_new_x", d),
        **_mlp_shapes(dp + "mlp_channels", d, channels, d),
    }
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        shapes.update(_linear_shapes(f"{dp}pre_assign_attn.attn.{proj}", d, d))
    for proj in ("q_proj", "k_proj", "v_proj", "proj"):
        shapes.update(_linear_shapes(f"{dp}assign.{proj}", d, d))
    return shapes


def _vision_shapes(v: GroupViTVisionConfig) -> dict[str, tuple]:
    d, e = v.hidden_size, "vision_model.embeddings."
    shapes: dict[str, tuple] = {
        e + "patch_embeddings.projection.weight": (d, v.num_channels, v.patch_size, v.patch_size),
        e + "patch_embeddings.projection.bias": (d,),
        e + "position_embeddings": (1, v.grid * v.grid, d),
        **_norm_shapes(e + "layernorm", d),
        **_norm_shapes("vision_model.layernorm", d),
    }
    for s, (depth, groups, out) in enumerate(zip(v.depths, v.num_group_tokens, v.num_output_groups)):
        sp = f"vision_model.encoder.stages.{s}."
        for i in range(depth):
            shapes.update(layer_shapes(f"{sp}layers.{i}.", d, v.intermediate_size))
        if groups:
            shapes[sp + "group_token"] = (1, groups, d)
            shapes.update(_assign_shapes(sp + "downsample.", v, groups, out))
            prev = v.num_output_groups[s - 1] if s else 0
            if prev:
                shapes.update(_norm_shapes(sp + "group_projector.0", d))
                shapes.update(_mlp_shapes(sp + "group_projector.1", prev, d // 2, groups))
    return shapes


def _projection_shapes(name: str, n_in: int, mid: int, n_out: int) -> dict[str, tuple]:
    return {
        **_linear_shapes(name + ".0", n_in, mid),
        **_norm_shapes(name + ".1", mid),
        name + ".1.running_mean": (mid,),
        name + ".1.running_var": (mid,),
        **_linear_shapes(name + ".3", mid, n_out),
    }


def parameter_shapes(cfg: Any, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter of ``GroupViTModel``."""
    check_head(head)
    mid, p = cfg.projection_intermediate_dim, cfg.projection_dim
    return {
        **text_shapes(cfg),
        **_vision_shapes(cfg.vision),
        **_projection_shapes("text_projection", cfg.text.hidden_size, mid, p),
        **_projection_shapes("visual_projection", cfg.vision.hidden_size, mid, p),
        "logit_scale": (),
    }


# ------------------------------------------------------------------ vision tower
def _mlp(xp: Any, P: Any, name: str, act: str, x: Any) -> Any:
    """``fc2(act(fc1(x)))``."""
    return _linear(xp, P, name + ".fc2", activation(xp, act, _linear(xp, P, name + ".fc1", x)))


def _mixer(xp: Any, P: Any, name: str, act: str, t: Any) -> Any:
    """:func:`_mlp` along the token axis: ``[b, tokens, d] -> [b, tokens', d]``."""
    return xp.permute_dims(_mlp(xp, P, name, act, xp.permute_dims(t, (0, 2, 1))), (0, 2, 1))


def _cross_attention(xp: Any, P: Any, name: str, v: GroupViTVisionConfig, q: Any, kv: Any) -> Any:
    """Multi-head attention of the queries ``q [b, m, d]`` over ``kv [b, n, d]`` (unmasked)."""
    nh = v.num_attention_heads
    hd = v.hidden_size // nh
    qh = split_heads(_linear(xp, P, name + ".q_proj", q), nh, hd)
    kh, vh = (split_heads(_linear(xp, P, f"{name}.{r}_proj", kv), nh, hd) for r in "kv")
    mask = xp.ones((kv.shape[0], kv.shape[1]), dtype=xp.int64)
    ctx = merge_heads(attend(qh, kh, vh, mask, 0, default_scale(hd), causal=False))
    return _linear(xp, P, name + ".out_proj", ctx)


def assign(xp: Any, P: Any, dp: str, v: GroupViTVisionConfig, x: Any, t: Any, hard: bool = True) -> Any:
    """The stage's grouping (``downsample``, see the module docstring): image tokens ``x [b, n,
    d]`` and group tokens ``t [b, g, d]`` -> ``[b, num_output_groups, d]``. ``hard=False`` uses
    the soft assignment (softmax over the groups) instead of the one-hot; Hugging Face uses it
    only for the attention maps it returns."""
    eps, act = v.layer_norm_eps, v.hidden_act
    t = _norm(xp, P, dp + "norm_tokens", t, eps)
    x = _norm(xp, P, dp + "norm_x", x, eps)
    p = _norm(xp, P, dp + "norm_post_tokens", _mixer(xp, P, dp + "mlp_inter", act, t), eps)
    c = dp + "pre_assign_attn."
    q = p + _cross_attention(xp, P, c + "attn", v, p, x)
    q = q + _mlp(xp, P, c + "mlp", act, _norm(xp, P, c + "norm2", q, eps))
    p = _norm(xp, P, c + "norm_post", q, eps)
    a = dp + "assign."
    raw = xp.matmul(
        _linear(xp, P, a + "q_proj", p), xp.permute_dims(_linear(xp, P, a + "k_proj", x), (0, 2, 1))
    ) * (v.hidden_size**-0.5)  # [b, groups, n]
    if hard:
        best = xp.argmax(raw, axis=1, keepdims=True)  # the group of each image token
        groups = xp.reshape(xp.arange(raw.shape[1]), (1, raw.shape[1], 1))
        weights = xp.astype(groups == best, raw.dtype)
    else:
        weights = xp.softmax(raw, axis=1)
    weights = weights / (xp.sum(weights, axis=-1, keepdims=True) + v.assign_eps)
    y = _linear(xp, P, a + "proj", xp.matmul(weights, _linear(xp, P, a + "v_proj", x))) + p
    return y + _mlp(xp, P, dp + "mlp_channels", act, _norm(xp, P, dp + "norm_new_x", y, eps))


def _check_pixels(v: GroupViTVisionConfig, pixel_values: Any) -> None:
    check_pixel_values(pixel_values, v.num_channels, (v.image_size, v.image_size), config="vision config")


def encode_image(params: Any, cfg: Any, pixel_values: Any, hard: bool = True) -> tuple[Any, Any]:
    """``(last_hidden_state [b, groups, d], pooled [b, d])`` of the grouping vision tower
    (``groups``: the last stage's output groups); ``hard`` as in :func:`assign`."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    v = cfg.vision
    _check_pixels(v, pixel_values)
    e = "vision_model.embeddings."
    x = xp.conv(
        pixel_values,
        P[e + "patch_embeddings.projection.weight"],
        P[e + "patch_embeddings.projection.bias"],
        strides=(v.patch_size, v.patch_size),
    )
    b, d, n = x.shape[0], v.hidden_size, v.grid * v.grid
    x = xp.permute_dims(xp.reshape(x, (b, d, n)), (0, 2, 1))
    x = _norm(xp, P, e + "layernorm", x, v.layer_norm_eps) + P[e + "position_embeddings"]
    prev = None
    for s, (depth, groups) in enumerate(zip(v.depths, v.num_group_tokens)):
        sp = f"vision_model.encoder.stages.{s}."
        h = x
        if groups:
            t = xp.broadcast_to(P[sp + "group_token"], (b, groups, d))
            if s and v.num_output_groups[s - 1]:
                g = sp + "group_projector."
                t = t + _mixer(xp, P, g + "1", v.hidden_act, _norm(xp, P, g + "0", prev, v.layer_norm_eps))
            h = xp.concat([x, t], axis=1)
        mask = xp.ones((b, h.shape[1]), dtype=xp.int64)
        for i in range(depth):
            h = layer(xp, P, f"{sp}layers.{i}.", v, h, mask, causal=False)
        if groups:
            length = h.shape[1] - groups
            prev = h[:, length:]
            x = assign(xp, P, sp + "downsample.", v, h[:, :length], prev, hard)
        else:
            x, prev = h, None
    last = _norm(xp, P, "vision_model.layernorm", x, v.layer_norm_eps)
    return last, xp.mean(last, axis=1)


# ------------------------------------------------------------------ projections and outputs
def project(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``W_2 relu(BN(W_1 x + b_1)) + b_2`` (BatchNorm with its running statistics)."""
    y = _linear(xp, P, name + ".0", x)
    bn = name + ".1."
    y = (y - P[bn + "running_mean"]) / xp.sqrt(P[bn + "running_var"] + BN_EPS) * P[bn + "weight"] + P[
        bn + "bias"
    ]
    return _linear(xp, P, name + ".3", xp.maximum(y, xp.zeros_like(y)))


def forward(
    params: dict,
    cfg: Any,
    input_ids: Any = None,
    attention_mask: Any = None,
    pixel_values: Any = None,
    head: str = "default",
) -> dict:
    """``GroupViTModel``: ``logits_per_image [b', b]``, ``logits_per_text [b, b']``,
    ``text_embeds [b, p]``, ``image_embeds [b', p]`` (see the module docstring)."""
    check_head(head)
    P = ParamView(params)
    xp = array_namespace(input_ids)
    _, text = encode_text(P, cfg, input_ids, attention_mask)
    _, image = encode_image(P, cfg, pixel_values)
    return contrast(
        xp, P, project(xp, P, "text_projection", text), project(xp, P, "visual_projection", image)
    )
