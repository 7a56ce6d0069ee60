"""YOLOS' place among the vision modules: its forward and parameter names are ``vit.py``'s (the
detection tokens, mid-layer position tables and the ``object-detection`` MLPs are switches of
:class:`~.config.YolosConfig` there); this module only names the type's heads, ``default``
(``YolosModel``: ``last_hidden_state``, ``pooler_output``) and ``object-detection``
(``YolosForObjectDetection``: ``logits``, ``pred_boxes``, ``last_hidden_state``), for the loaders.
Its own :func:`file_names`: transformers v5 keeps YOLOS' layer names live (``encoder.layer.{i}``),
so vit.py's renaming of ``layers.{i}`` (which would catch the MLPs'
``class_labels_classifier.layers.{i}``) is not applied; only the mid-layer table is renamed."""

from __future__ import annotations

from typing import Any

from . import vit
from .vit import IGNORED_SUFFIXES, forward, parameter_shapes

BASE_PREFIX = "vit."
HEADS = ("default", "object-detection")


def file_names(params: dict[str, Any]) -> dict[str, Any]:
    """A live state dict under checkpoint names: ``encoder.interpolation.mid_position_embeddings``
    -> ``encoder.mid_position_embeddings`` (other names pass through)."""
    live = "encoder.interpolation.mid_position_embeddings"
    return {k.replace(live, "encoder.mid_position_embeddings"): v for k, v in params.items()}


def check_head(head: str) -> str:
    """``head`` if YOLOS has it, else a one-line ValueError listing its heads."""
    return vit.check_head(head, HEADS)


__all__ = [
    "BASE_PREFIX",
    "HEADS",
    "IGNORED_SUFFIXES",
    "check_head",
    "file_names",
    "forward",
    "parameter_shapes",
]
