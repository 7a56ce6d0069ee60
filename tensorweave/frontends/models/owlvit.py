"""OWL-ViT (``OwlViTModel``), written once against ``xp``: CLIP's model (clip.py) with the OWL-ViT
towers' two differences, both switches of the tower configs (``config.OwlViTTextConfig`` /
``config.OwlViTVisionConfig``):

- text pooling always reads ``last[i, argmax_j ids[i, j]]`` (the largest id, the EOS token of
  its vocabulary), whatever ``eos_token_id`` says;
- the LayerNorm after the vision embeddings is named ``vision_model.pre_layernorm`` (CLIP:
  ``pre_layrnorm``).

Everything else is CLIP's: ``h = pre_layernorm(concat(class_embedding, conv(x, W_patch, stride =
patch_size)) + position)``, the same pre-norm layers (:func:`clip.layer`), ``pooled_image =
post_layernorm(h[:, 0])`` (the post-norm on the class token only; the detection model's norm
of every token is not built), causal text attention hiding padding keys, ``final_layer_norm``,
bias-free projections, ``text_embeds = normalize(text_projection(pooled_text))``,
``image_embeds = normalize(visual_projection(pooled_image))``, ``logits_per_text =
exp(logit_scale) text_embeds image_embeds^T``, ``logits_per_image`` its transpose.

Parameter names are ``OwlViTModel``'s (``text_model.encoder.layers.{i}.self_attn.q_proj``,
``vision_model.pre_layernorm``, ``visual_projection``, ``logit_scale``, ...).
"""

from __future__ import annotations

from .clip import HEADS, IGNORED_SUFFIXES, OUTPUTS, check_head, forward, parameter_shapes

BASE_PREFIX = ""  # OwlViTModel's names start at the towers (text_model., vision_model.)
#: model_type -> its inputs, in the order programs take them
INPUTS = {"owlvit": ("input_ids", "attention_mask", "pixel_values")}

__all__ = [
    "BASE_PREFIX",
    "HEADS",
    "IGNORED_SUFFIXES",
    "INPUTS",
    "OUTPUTS",
    "check_head",
    "forward",
    "parameter_shapes",
]
