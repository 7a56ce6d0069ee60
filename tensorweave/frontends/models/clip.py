"""CLIP (``CLIPModel``), written once against ``xp``: a text tower and a vision tower sharing one
pre-norm layer (:func:`layer`), projected into one space and compared by cosine similarity.

Per layer, in both towers: ``a = h + out_proj(attn(layer_norm1(h)))`` and
``h = a + fc2(act(fc1(layer_norm2(a))))`` with ``attn = softmax(q k^T / sqrt(d_head) + mask) v``
(``act`` is ``hidden_act``, ``quick_gelu`` ``x * sigmoid(1.702 x)`` by default).

- Text (``input_ids [b, s]``, ``attention_mask [b, s]``): ``h = token[ids] + position[0 .. s-1]``;
  causal attention that also hides padding keys; ``last = final_layer_norm(h)``; the pooled
  vector is ``last[i, e_i]`` with ``e_i = argmax_j ids[i, j]`` when ``eos_token_id == 2`` (the
  old configs: the EOS id is the largest in the vocabulary), else the first ``j`` with
  ``ids[i, j] == eos_token_id`` (the tower config's ``pools_at_largest_id``; OWL-ViT's always
  takes the argmax).
- Vision (``pixel_values [b', c, H, W]``, ``H = W = image_size``):
  ``h = pre_layrnorm(concat(class_embedding, conv(x, W_patch, stride = patch_size)) + position)``
  (no convolution bias; patches row-major; the norm's name is the tower config's ``pre_norm``,
  OWL-ViT's ``pre_layernorm``); bidirectional unmasked attention; the pooled vector is
  ``post_layernorm(h[:, 0])``.
- ``text_embeds = normalize(text_projection(pooled_text))``, ``image_embeds =
  normalize(visual_projection(pooled_image))`` (``normalize(x) = x / ||x||_2``, bias-free
  projections to ``projection_dim``); ``logits_per_text = exp(logit_scale) * text_embeds
  image_embeds^T [b, b']``, ``logits_per_image`` its transpose.

``CLIPTextModelWithProjection`` (``clip_text_model``: ids and mask in) returns
``text_embeds = text_projection(pooled_text)`` and the text ``last_hidden_state``;
``CLIPVisionModelWithProjection`` (``clip_vision_model``: ``pixel_values`` in) returns
``image_embeds = visual_projection(pooled_image)`` and the vision ``last_hidden_state`` (neither
normalised). :data:`INPUTS` lists each type's inputs.

Parameter names are ``CLIPModel``'s (``text_model.encoder.layers.{i}.self_attn.q_proj``,
``vision_model.pre_layrnorm``, ``visual_projection``, ``logit_scale``, ...). Dropout is the
identity (inference).
"""

from __future__ import annotations

from typing import Any

from ...ir import array_namespace
from .attention import attend, default_scale, merge_heads, split_heads
from .config import CLIPTextConfig, CLIPVisionConfig
from .gpt2 import activation
from .vit import check_pixel_values
from .weights import ParamView

BASE_PREFIX = ""  # CLIPModel's names start at the towers (text_model., vision_model.)
IGNORED_SUFFIXES = ("embeddings.position_ids",)
HEADS = ("default",)
OUTPUTS = ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds")
#: model_type -> its inputs, in the order programs take them
INPUTS = {
    "clip": ("input_ids", "attention_mask", "pixel_values"),
    "clip_text_model": ("input_ids", "attention_mask"),
    "clip_vision_model": ("pixel_values",),
}


def check_head(head: str) -> str:
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r} for clip / owlvit / groupvit; use one of {list(HEADS)}")
    return head


def layer_shapes(lp: str, d: int, ff: int) -> dict[str, tuple]:
    """The parameters of one :func:`layer` under the prefix ``lp``."""
    shapes: dict[str, tuple] = {}
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        shapes.update({f"{lp}self_attn.{proj}.weight": (d, d), f"{lp}self_attn.{proj}.bias": (d,)})
    shapes.update({lp + "mlp.fc1.weight": (ff, d), lp + "mlp.fc1.bias": (ff,)})
    shapes.update({lp + "mlp.fc2.weight": (d, ff), lp + "mlp.fc2.bias": (d,)})
    for norm in ("layer_norm1", "layer_norm2"):
        shapes.update({f"{lp}{norm}.weight": (d,), f"{lp}{norm}.bias": (d,)})
    return shapes


def _layer_shapes(prefix: str, d: int, ff: int, layers: int) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for i in range(layers):
        shapes.update(layer_shapes(f"{prefix}encoder.layers.{i}.", d, ff))
    return shapes


def text_shapes(cfg: Any) -> dict[str, tuple]:
    """The text tower's parameters (``text_model.``) of a two-tower config."""
    return _text_shapes(cfg.text)


def _text_shapes(t: CLIPTextConfig) -> dict[str, tuple]:
    return {
        "text_model.embeddings.token_embedding.weight": (t.vocab_size, t.hidden_size),
        "text_model.embeddings.position_embedding.weight": (t.max_position_embeddings, t.hidden_size),
        **_layer_shapes("text_model.", t.hidden_size, t.intermediate_size, t.num_hidden_layers),
        "text_model.final_layer_norm.weight": (t.hidden_size,),
        "text_model.final_layer_norm.bias": (t.hidden_size,),
    }


def _vision_shapes(v: CLIPVisionConfig) -> dict[str, tuple]:
    shapes = {
        "vision_model.embeddings.class_embedding": (v.hidden_size,),
        "vision_model.embeddings.patch_embedding.weight": (
            v.hidden_size,
            v.num_channels,
            v.patch_size,
            v.patch_size,
        ),
        "vision_model.embeddings.position_embedding.weight": (v.grid * v.grid + 1, v.hidden_size),
        **_layer_shapes("vision_model.", v.hidden_size, v.intermediate_size, v.num_hidden_layers),
    }
    for norm in (v.pre_norm, "post_layernorm"):
        shapes.update(
            {f"vision_model.{norm}.weight": (v.hidden_size,), f"vision_model.{norm}.bias": (v.hidden_size,)}
        )
    return shapes


def parameter_shapes(cfg: Any, head: str = "default") -> dict[str, tuple]:
    """Hugging Face name -> shape of every parameter of the type's class (``CLIPModel``: both
    towers, both projections and the scalar ``logit_scale``; the ``*WithProjection`` classes: one
    tower and its projection)."""
    check_head(head)
    shapes: dict[str, tuple] = {}
    inputs = INPUTS.get(cfg.model_type, INPUTS["clip"])  # owlvit.py: CLIPModel's names
    if "input_ids" in inputs:
        shapes.update(_text_shapes(cfg.text))
        shapes["text_projection.weight"] = (cfg.projection_dim, cfg.text.hidden_size)
    if "pixel_values" in inputs:
        shapes.update(_vision_shapes(cfg.vision))
        shapes["visual_projection.weight"] = (cfg.projection_dim, cfg.vision.hidden_size)
    if len(inputs) == 3:
        shapes["logit_scale"] = ()
    return shapes


def _linear(xp: Any, P: Any, name: str, x: Any) -> Any:
    """``x @ W^T (+ b)`` (the projections have no bias)."""
    y = xp.matmul(x, xp.permute_dims(P[name + ".weight"], (1, 0)))
    return y + P[name + ".bias"] if (name + ".bias") in P else y


def _norm(xp: Any, P: Any, name: str, x: Any, eps: float) -> Any:
    return xp.layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps=eps)


def layer(
    xp: Any, P: Any, lp: str, tower: CLIPTextConfig | CLIPVisionConfig, h: Any, mask: Any, causal: bool
) -> Any:
    """One pre-norm layer (see the module docstring) under the prefix ``lp``."""
    eps, nh = tower.layer_norm_eps, tower.num_attention_heads
    hd = tower.hidden_size // nh
    x = _norm(xp, P, lp + "layer_norm1", h, eps)
    q, k, v = (split_heads(_linear(xp, P, f"{lp}self_attn.{r}_proj", x), nh, hd) for r in "qkv")
    ctx = merge_heads(attend(q, k, v, mask, 0, default_scale(hd), causal=causal))
    a = h + _linear(xp, P, lp + "self_attn.out_proj", ctx)
    m = activation(
        xp, tower.hidden_act, _linear(xp, P, lp + "mlp.fc1", _norm(xp, P, lp + "layer_norm2", a, eps))
    )
    return a + _linear(xp, P, lp + "mlp.fc2", m)


def encode_text(params: Any, cfg: Any, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
    """``(last_hidden_state [b, s, d_text], pooled [b, d_text])`` of the text tower."""
    xp = array_namespace(input_ids)
    P = ParamView(params)
    t = cfg.text
    s = input_ids.shape[1]
    e = "text_model.embeddings."
    pos = xp.arange(s)
    h = xp.take(P[e + "token_embedding.weight"], input_ids, axis=0) + xp.take(
        P[e + "position_embedding.weight"], pos, axis=0
    )
    for i in range(t.num_hidden_layers):
        h = layer(xp, P, f"text_model.encoder.layers.{i}.", t, h, attention_mask, causal=True)
    last = _norm(xp, P, "text_model.final_layer_norm", h, t.layer_norm_eps)
    ids = xp.astype(input_ids, xp.int32)
    where = ids if t.pools_at_largest_id else xp.astype(ids == t.eos_token_id, xp.int32)
    eos = xp.argmax(where, axis=-1)  # the first maximum, as torch's argmax
    b, d = last.shape[0], t.hidden_size
    index = xp.broadcast_to(xp.reshape(xp.astype(eos, xp.int64), (b, 1, 1)), (b, 1, d))
    return last, xp.take_along_axis(last, index, axis=1)[:, 0]


def encode_image(params: Any, cfg: Any, pixel_values: Any) -> tuple[Any, Any]:
    """``(last_hidden_state [b', n + 1, d_vision], pooled [b', d_vision])`` of the vision tower."""
    xp = array_namespace(pixel_values)
    P = ParamView(params)
    v = cfg.vision
    check_pixel_values(pixel_values, v.num_channels, (v.image_size, v.image_size), config="vision config")
    e = "vision_model.embeddings."
    x = xp.conv(pixel_values, P[e + "patch_embedding.weight"], strides=(v.patch_size, v.patch_size))
    b, d, n = x.shape[0], v.hidden_size, v.grid * v.grid
    patches = xp.permute_dims(xp.reshape(x, (b, d, n)), (0, 2, 1))
    cls = xp.broadcast_to(xp.reshape(P[e + "class_embedding"], (1, 1, d)), (b, 1, d))
    h = xp.concat([cls, patches], axis=1) + P[e + "position_embedding.weight"]
    h = _norm(xp, P, "vision_model." + v.pre_norm, h, v.layer_norm_eps)
    mask = xp.ones((b, n + 1), dtype=xp.int64)
    for i in range(v.num_hidden_layers):
        h = layer(xp, P, f"vision_model.encoder.layers.{i}.", v, h, mask, causal=False)
    return h, _norm(xp, P, "vision_model.post_layernorm", h[:, 0], v.layer_norm_eps)


def _normalize(xp: Any, x: Any) -> Any:
    """``x / ||x||_2`` over the last axis."""
    return x / xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))


def forward(
    params: dict,
    cfg: Any,
    input_ids: Any = None,
    attention_mask: Any = None,
    pixel_values: Any = None,
    head: str = "default",
) -> dict:
    """``CLIPModel``: ``logits_per_image [b', b]``, ``logits_per_text [b, b']``, ``text_embeds
    [b, p]``, ``image_embeds [b', p]`` (see the module docstring). ``CLIPTextModelWithProjection``:
    ``text_embeds = text_projection(pooled)`` and ``last_hidden_state``;
    ``CLIPVisionModelWithProjection``: ``image_embeds = visual_projection(pooled)`` and
    ``last_hidden_state`` (neither normalised)."""
    check_head(head)
    P = ParamView(params)
    if cfg.model_type == "clip_text_model":
        xp = array_namespace(input_ids)
        last, text = encode_text(P, cfg, input_ids, attention_mask)
        return {"text_embeds": _linear(xp, P, "text_projection", text), "last_hidden_state": last}
    if cfg.model_type == "clip_vision_model":
        xp = array_namespace(pixel_values)
        last, image = encode_image(P, cfg, pixel_values)
        return {"image_embeds": _linear(xp, P, "visual_projection", image), "last_hidden_state": last}
    xp = array_namespace(input_ids)
    _, text = encode_text(P, cfg, input_ids, attention_mask)
    _, image = encode_image(P, cfg, pixel_values)
    text_embeds = _linear(xp, P, "text_projection", text)
    return contrast(xp, P, text_embeds, _linear(xp, P, "visual_projection", image))


def contrast(xp: Any, P: Any, text: Any, image: Any) -> dict:
    """The four outputs of projected text ``[b, p]`` and image ``[b', p]`` vectors:
    ``text_embeds = normalize(text)``, ``image_embeds = normalize(image)``, ``logits_per_text =
    exp(logit_scale) text_embeds image_embeds^T``, ``logits_per_image`` its transpose."""
    text_embeds, image_embeds = _normalize(xp, text), _normalize(xp, image)
    per_text = xp.matmul(text_embeds, xp.permute_dims(image_embeds, (1, 0))) * xp.exp(P["logit_scale"])
    return {
        "logits_per_image": xp.permute_dims(per_text, (1, 0)),
        "logits_per_text": per_text,
        "text_embeds": text_embeds,
        "image_embeds": image_embeds,
    }
