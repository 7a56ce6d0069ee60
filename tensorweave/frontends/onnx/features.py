"""FeaturesManager: which model types support which export features, and framework choice.

Hugging Face's ``transformers.onnx.FeaturesManager`` API (4.37), restricted to the model types
tensorweave implements and extended to safetensors checkpoints and our own backends. A pure table:
it imports no framework (framework availability is looked up with ``importlib.util.find_spec``,
which imports nothing). Public as ``tensorweave.onnx.FeaturesManager``.
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from functools import partial
from typing import Any, Callable, Sequence

from .config import OnnxConfig, OnnxConfigWithPast, config_field, to_framework
from .models import BertOnnxConfig, GPT2OnnxConfig, LlamaOnnxConfig, T5OnnxConfig, WhisperOnnxConfig

#: Optimum / ``pipeline`` task names accepted everywhere a feature is (-> Transformers 4.37 feature)
OPTIMUM_TASK_ALIASES = {
    "feature-extraction": "default",
    "feature-extraction-with-past": "default-with-past",
    "text-generation": "causal-lm",
    "text-generation-with-past": "causal-lm-with-past",
    "fill-mask": "masked-lm",
    "text-classification": "sequence-classification",
    "token-classification": "token-classification",
    "question-answering": "question-answering",
    "multiple-choice": "multiple-choice",
    "text2text-generation": "seq2seq-lm",
    "text2text-generation-with-past": "seq2seq-lm-with-past",
}

#: task -> Hugging Face auto-class NAME (the loaders themselves are registered by the public layer,
#: ``tensorweave.onnx``, in ``FeaturesManager._TASKS_TO_AUTOMODELS``: this room imports no loader)
TASK_CLASS_NAMES = {
    "default": "AutoModel",
    "masked-lm": "AutoModelForMaskedLM",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "sequence-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "multiple-choice": "AutoModelForMultipleChoice",
    "object-detection": "AutoModelForObjectDetection",
    "question-answering": "AutoModelForQuestionAnswering",
    "image-classification": "AutoModelForImageClassification",
    "image-segmentation": "AutoModelForImageSegmentation",
    "masked-im": "AutoModelForMaskedImageModeling",
    "semantic-segmentation": "AutoModelForSemanticSegmentation",
    "vision2seq-lm": "AutoModelForVision2Seq",
    "speech2seq-lm": "AutoModelForSpeechSeq2Seq",
}
TF_TASK_CLASS_NAMES = {
    "default": "TFAutoModel",
    "masked-lm": "TFAutoModelForMaskedLM",
    "causal-lm": "TFAutoModelForCausalLM",
    "seq2seq-lm": "TFAutoModelForSeq2SeqLM",
    "sequence-classification": "TFAutoModelForSequenceClassification",
    "token-classification": "TFAutoModelForTokenClassification",
    "multiple-choice": "TFAutoModelForMultipleChoice",
    "question-answering": "TFAutoModelForQuestionAnswering",
    "semantic-segmentation": "TFAutoModelForSemanticSegmentation",
}
#: checkpoint files -> framework, in the order they are looked for (explicit argument wins over all)
_CHECKPOINT_FRAMEWORKS = (
    ("pytorch_model.bin", "pt"),
    ("model.safetensors", "pt"),
    ("model.safetensors.index.json", "pt"),
    ("tf_model.h5", "tf"),
)
#: our backends are accepted as explicit frameworks too
BACKEND_FRAMEWORKS = ("numpy", "torch", "tensorflow", "jax", "onnx")


class PoolerlessBertOnnxConfig(BertOnnxConfig):
    """BERT's signature for the encoder types without a pooler (distilbert, electra): ``default``
    outputs only ``last_hidden_state``."""

    @property
    def outputs(self) -> Any:
        return OnnxConfig.outputs.fget(self)  # type: ignore[attr-defined]


class PerceiverOnnxConfig(BertOnnxConfig):
    """BERT's signature for Perceiver's text heads (``token_type_ids`` accepted and unused): the
    masked-lm ``logits`` are ``[batch, max_position_embeddings, vocab]`` (sequence classification
    ``[batch, num_labels]``), so only the batch axis is dynamic."""

    @property
    def outputs(self) -> Any:
        return {"logits": {0: "batch"}}


class LayoutLMOnnxConfig(BertOnnxConfig):
    """BERT's signature plus ``bbox [batch, sequence, 4]`` (int64 boxes), in Transformers 4.37's
    order: ``input_ids``, ``bbox``, ``attention_mask``, ``token_type_ids``."""

    @property
    def inputs(self) -> Any:
        base = super().inputs
        axis = {0: "batch", 1: "sequence"}
        order = ("input_ids", "bbox", "attention_mask", "token_type_ids")
        return OrderedDict((k, dict(axis) if k == "bbox" else base[k]) for k in order)

    def input_dtypes(self) -> dict[str, Any]:
        dtypes = super().input_dtypes()
        dtypes["bbox"] = dtypes["input_ids"]  # int64
        return dtypes

    def input_ranks(self) -> dict[str, int]:
        return {**super().input_ranks(), "bbox": 3}

    def fixed_input_axes(self, name: str) -> dict[int, int]:
        return {2: 4} if name == "bbox" else {}

    def generate_dummy_inputs(self, preprocessor: Any, *args: Any, **kwargs: Any) -> Any:
        """BERT's dummy inputs plus one box ``(48, 84, 73, 128)`` per token (4.37's)."""
        import numpy as np

        framework = kwargs.pop("framework", None)
        out = dict(super().generate_dummy_inputs(preprocessor, *args, **kwargs))
        ids = np.asarray(out["input_ids"])
        out["bbox"] = np.broadcast_to(np.array([48, 84, 73, 128], np.int64), (*ids.shape, 4)).copy()
        return to_framework({k: out[k] for k in self.inputs if k in out}, framework)


class XLMOnnxConfig(PoolerlessBertOnnxConfig):
    """XLM / FlauBERT: BERT's signature (no pooler) plus, when the config has language embeddings
    (``use_lang_emb`` and ``n_langs > 1``), ``langs`` (int64 language ids, shaped like ``input_ids``)."""

    @property
    def inputs(self) -> Any:
        base = super().inputs
        if config_field(self._config, "use_lang_emb", True) and config_field(self._config, "n_langs", 1) > 1:
            base["langs"] = dict(base["input_ids"])
        return base

    def input_dtypes(self) -> dict[str, Any]:
        dtypes = super().input_dtypes()
        if "langs" in dtypes:
            dtypes["langs"] = dtypes["input_ids"]  # int64
        return dtypes

    def generate_dummy_inputs(self, preprocessor: Any, *args: Any, **kwargs: Any) -> Any:
        """BERT's dummy inputs plus language 0 everywhere when there is a ``langs`` input."""
        import numpy as np

        framework = kwargs.pop("framework", None)
        out = dict(super().generate_dummy_inputs(preprocessor, *args, **kwargs))
        if "langs" in self.inputs:
            out["langs"] = np.zeros(np.asarray(out["input_ids"]).shape, np.int64)
        return to_framework({k: out[k] for k in self.inputs if k in out}, framework)


class LongformerOnnxConfig(BertOnnxConfig):
    """Longformer, Transformers 4.37's signature: ``input_ids``, ``attention_mask``,
    ``global_attention_mask`` (no token types: zeros inside, as the checkpoints have one type);
    the global mask is used as given (no head default), as Hugging Face does when one is passed."""

    @property
    def inputs(self) -> Any:
        base = super().inputs
        axis = base["input_ids"]
        return OrderedDict((k, dict(axis)) for k in ("input_ids", "attention_mask", "global_attention_mask"))

    def generate_dummy_inputs(self, preprocessor: Any, *args: Any, **kwargs: Any) -> Any:
        """BERT's dummy inputs with every second token global (4.37's)."""
        import numpy as np

        framework = kwargs.pop("framework", None)
        out = dict(super().generate_dummy_inputs(preprocessor, *args, **kwargs))
        ids = np.asarray(out["input_ids"])
        out["global_attention_mask"] = np.broadcast_to(np.arange(ids.shape[-1]) % 2 == 0, ids.shape).astype(
            np.int64
        )
        return to_framework({k: out[k] for k in self.inputs if k in out}, framework)


class ImageGPTOnnxConfig(GPT2OnnxConfig):
    """ImageGPT: GPT-2's signature (``input_ids``, ``attention_mask``; 4.37 took ``input_ids``
    alone); ``image-classification`` returns ``logits [batch, num_labels]``."""

    @property
    def outputs(self) -> Any:
        if self.task == "image-classification":
            return OrderedDict([("logits", {0: "batch"})])
        return super().outputs


#: vision types whose base model returns no ``pooler_output`` (their ``default`` export has one output)
VISION_WITHOUT_POOLER = ("data2vec-vision", "poolformer")


class VisionOnnxConfig(OnnxConfig):
    """The vision encoders (vit.py, resnet.py, convnext.py): ``pixel_values [batch, num_channels, height,
    width]`` (float32). Only the batch axis is dynamic (Transformers 4.37 names the others dynamic
    too): ViT's learned position table fixes the image size, and the IR's ``conv`` needs static
    spatial sizes, so channels, height and width are the config's (``image_size``; 224 for a
    ResNet, whose config has none), as are the other axes of the outputs."""

    @property
    def inputs(self) -> Any:
        return OrderedDict([("pixel_values", {0: "batch"})])

    @property
    def outputs(self) -> Any:
        if self.task == "default":
            if config_field(self._config, "model_type") in VISION_WITHOUT_POOLER:
                return OrderedDict([("last_hidden_state", {0: "batch"})])
            return OrderedDict([("last_hidden_state", {0: "batch"}), ("pooler_output", {0: "batch"})])
        return OrderedDict([("logits", {0: "batch"})])

    def input_ranks(self) -> dict[str, int]:
        return {"pixel_values": 4}

    def fixed_input_axes(self, name: str) -> dict[int, int]:
        size = config_field(self._config, "image_size", 224)
        height, width = (size, size) if isinstance(size, int) else size
        return {1: config_field(self._config, "num_channels", 3), 2: height, 3: width}

    @property
    def default_onnx_opset(self) -> int:
        return 11

    @property
    def atol_for_validation(self) -> float:
        return 1e-4


class SegformerOnnxConfig(VisionOnnxConfig):
    """SegFormer (segformer.py): the vision signature (an export fixes 224 x 224, the config has
    no image size); ``default`` returns only ``last_hidden_state`` (no pooler),
    ``image-classification`` and ``semantic-segmentation`` return ``logits``."""

    @property
    def outputs(self) -> Any:
        if self.task == "default":
            return OrderedDict([("last_hidden_state", {0: "batch"})])
        return OrderedDict([("logits", {0: "batch"})])

    @property
    def default_onnx_opset(self) -> int:
        return 12


class YolosOnnxConfig(VisionOnnxConfig):
    """YOLOS (vit.py): the vision signature at the config's ``image_size``; ``object-detection``
    returns ``logits [batch, num_detection_tokens, num_labels + 1]`` and ``pred_boxes
    [batch, num_detection_tokens, 4]``."""

    @property
    def outputs(self) -> Any:
        if self.task == "object-detection":
            return OrderedDict([("logits", {0: "batch"}), ("pred_boxes", {0: "batch"})])
        return super().outputs

    @property
    def default_onnx_opset(self) -> int:
        return 12


class DetrOnnxConfig(VisionOnnxConfig):
    """DETR (detr.py), Transformers 4.37's signature: ``pixel_values [batch, num_channels, height,
    width]`` (float32) and ``pixel_mask [batch, height, width]`` (int64, 1 = real pixel); the
    image size is fixed at 224 x 224 (the config has none; the IR's ``conv`` needs static sizes).
    ``default`` returns ``last_hidden_state [batch, num_queries, d_model]``, ``object-detection``
    ``logits [batch, num_queries, num_labels + 1]`` and ``pred_boxes [batch, num_queries, 4]``,
    ``image-segmentation`` also ``pred_masks [batch, num_queries, height / 4, width / 4]`` (the
    first feature map's grid)."""

    @property
    def inputs(self) -> Any:
        return OrderedDict([("pixel_values", {0: "batch"}), ("pixel_mask", {0: "batch"})])

    @property
    def outputs(self) -> Any:
        if self.task == "default":
            return OrderedDict([("last_hidden_state", {0: "batch"})])
        names = ["logits", "pred_boxes"] + (["pred_masks"] if self.task == "image-segmentation" else [])
        return OrderedDict((name, {0: "batch"}) for name in names)

    def input_ranks(self) -> dict[str, int]:
        return {"pixel_values": 4, "pixel_mask": 3}

    def fixed_input_axes(self, name: str) -> dict[int, int]:
        axes = super().fixed_input_axes("pixel_values")
        return axes if name == "pixel_values" else {1: axes[2], 2: axes[3]}

    @property
    def default_onnx_opset(self) -> int:
        return 12

    @property
    def atol_for_validation(self) -> float:
        return 1e-5


class ClipOnnxConfig(OnnxConfig):
    """CLIP (clip.py), Transformers 4.37's signature: ``input_ids``, ``pixel_values``,
    ``attention_mask`` in (texts and images share the ``batch`` axis, as in 4.37; a loaded model
    also takes different counts), ``logits_per_image``, ``logits_per_text`` ``[batch, batch]`` and
    ``text_embeds``, ``image_embeds`` out. ``pixel_values`` has a dynamic batch only: channels and
    the square ``image_size`` come from ``vision_config``. The text-only type
    (``clip_text_model``) takes the text inputs and returns ``text_embeds``,
    ``last_hidden_state``; the vision-only one (``clip_vision_model``) ``pixel_values`` ->
    ``image_embeds``, ``last_hidden_state``. OWL-ViT and GroupViT (``owlvit``, ``groupvit``)
    export CLIP's signature (4.37's ``OwlViTOnnxConfig`` / ``GroupViTOnnxConfig``)."""

    @property
    def _kind(self) -> str:
        return str(config_field(self._config, "model_type", "clip"))

    @property
    def inputs(self) -> Any:
        text = {0: "batch", 1: "sequence"}
        names = {
            "clip_text_model": ("input_ids", "attention_mask"),
            "clip_vision_model": ("pixel_values",),
        }.get(self._kind, ("input_ids", "pixel_values", "attention_mask"))
        return OrderedDict((n, {0: "batch"} if n == "pixel_values" else dict(text)) for n in names)

    @property
    def outputs(self) -> Any:
        if self._kind == "clip_text_model":
            return OrderedDict(
                [("text_embeds", {0: "batch"}), ("last_hidden_state", {0: "batch", 1: "sequence"})]
            )
        if self._kind == "clip_vision_model":
            return OrderedDict([("image_embeds", {0: "batch"}), ("last_hidden_state", {0: "batch"})])
        square = {0: "batch", 1: "batch"}
        return OrderedDict(
            [
                ("logits_per_image", dict(square)),
                ("logits_per_text", dict(square)),
                ("text_embeds", {0: "batch"}),
                ("image_embeds", {0: "batch"}),
            ]
        )

    def input_ranks(self) -> dict[str, int]:
        return {n: 4 if n == "pixel_values" else 2 for n in self.inputs}

    def fixed_input_axes(self, name: str) -> dict[int, int]:
        if name != "pixel_values":
            return {}
        vision = config_field(self._config, "vision_config", None)
        if vision is None:  # clip_vision_model: the tower's fields at the top level
            vision = {k: config_field(self._config, k) for k in ("image_size", "num_channels")}
        size = vision.get("image_size") or 224
        return {1: vision.get("num_channels") or 3, 2: size, 3: size}

    @property
    def default_onnx_opset(self) -> int:
        return 14

    @property
    def atol_for_validation(self) -> float:
        return 1e-4


class LayoutLMv3OnnxConfig(OnnxConfig):
    """LayoutLMv3 (layoutlmv3.py), Transformers 4.37's signature: ``input_ids``, ``bbox [batch,
    sequence, 4]`` (int64 boxes), ``attention_mask``, ``pixel_values`` in that order (``default``,
    ``token-classification``; ``question-answering`` and ``sequence-classification`` put
    ``attention_mask`` before ``bbox``, as 4.37 does). ``pixel_values`` has a dynamic batch only:
    channels and the square ``input_size`` are the config's. The image adds ``(input_size /
    patch_size)^2 + 1`` positions after the text, so ``last_hidden_state`` and the span logits
    have ``sequence + n + 1`` of them; token logits cover the text alone."""

    @property
    def inputs(self) -> Any:
        text = {0: "batch", 1: "sequence"}
        order = ("input_ids", "bbox", "attention_mask", "pixel_values")
        if self.task in ("question-answering", "sequence-classification"):
            order = ("input_ids", "attention_mask", "bbox", "pixel_values")
        return OrderedDict((n, {0: "batch"} if n == "pixel_values" else dict(text)) for n in order)

    @property
    def _positions(self) -> str:
        size = config_field(self._config, "input_size", 224)
        patch = config_field(self._config, "patch_size", 16)
        return f"sequence + {(size // patch) ** 2 + 1}"

    @property
    def outputs(self) -> Any:
        if self.task == "default":
            return OrderedDict([("last_hidden_state", {0: "batch", 1: self._positions})])
        if self.task == "question-answering":
            axes = {0: "batch", 1: self._positions}
            return OrderedDict([("start_logits", dict(axes)), ("end_logits", dict(axes))])
        return super().outputs

    def input_dtypes(self) -> dict[str, Any]:
        dtypes = super().input_dtypes()
        dtypes["bbox"] = dtypes["input_ids"]  # int64
        return dtypes

    def input_ranks(self) -> dict[str, int]:
        return {n: {"bbox": 3, "pixel_values": 4}.get(n, 2) for n in self.inputs}

    def fixed_input_axes(self, name: str) -> dict[int, int]:
        if name == "bbox":
            return {2: 4}
        if name != "pixel_values":
            return {}
        size = config_field(self._config, "input_size", 224)
        return {1: config_field(self._config, "num_channels", 3), 2: size, 3: size}

    @property
    def default_onnx_opset(self) -> int:
        return 12

    @property
    def atol_for_validation(self) -> float:
        return 1e-5


def supported_features_mapping(*supported_features: str, onnx_config_cls: Any = None) -> dict[str, Callable]:
    """feature -> constructor: ``cls.with_past`` for ``-with-past`` features, else ``cls.from_model_config``."""
    if onnx_config_cls is None:
        raise ValueError("A OnnxConfig class must be provided")
    mapping: dict[str, Callable] = {}
    for feature in supported_features:
        if "-with-past" in feature:
            task = feature.replace("-with-past", "")
            mapping[feature] = partial(onnx_config_cls.with_past, task=task)
        else:
            mapping[feature] = partial(onnx_config_cls.from_model_config, task=feature)
    return mapping


#: the features of a decoder-only type without task heads (the rotary family, registered types)
DECODER_FEATURES = ("default", "default-with-past", "causal-lm", "causal-lm-with-past")
#: the features Transformers 4.37 lists for BERT-like encoders (with its causal-lm head)
ENCODER_FEATURES = (
    "default",
    "masked-lm",
    "causal-lm",
    "sequence-classification",
    "multiple-choice",
    "token-classification",
    "question-answering",
)
#: the same without causal-lm (the types 4.37 lists without it)
ENCODER_FEATURES_NO_CLM = tuple(f for f in ENCODER_FEATURES if f != "causal-lm")


class FeaturesManager:
    """Which features each model type exports, the config constructor for each, and framework choice."""

    #: task -> loader class (``.from_pretrained(path_or_name)`` gives a tensorweave model); filled
    #: by ``tensorweave.onnx`` for the tasks tensorweave's models implement
    _TASKS_TO_AUTOMODELS: dict[str, Any] = {}
    _TASKS_TO_TF_AUTOMODELS: dict[str, Any] = {}
    _SUPPORTED_MODEL_TYPE = {
        "bert": supported_features_mapping(*ENCODER_FEATURES, onnx_config_cls=BertOnnxConfig),
        # the encoder family (bert.py), with the features Transformers 4.37 lists for each type
        **{
            model_type: supported_features_mapping(*ENCODER_FEATURES, onnx_config_cls=BertOnnxConfig)
            for model_type in ("roberta", "xlm-roberta", "camembert")
        },
        "data2vec-text": supported_features_mapping(*ENCODER_FEATURES_NO_CLM, onnx_config_cls=BertOnnxConfig),
        "distilbert": supported_features_mapping(
            *ENCODER_FEATURES_NO_CLM, onnx_config_cls=PoolerlessBertOnnxConfig
        ),
        "electra": supported_features_mapping(*ENCODER_FEATURES, onnx_config_cls=PoolerlessBertOnnxConfig),
        # deberta.py, big_bird.py, longformer.py: 4.37's features less the heads not implemented
        # (big_bird's causal-lm); deberta has no multiple-choice class
        "deberta": supported_features_mapping(
            *(f for f in ENCODER_FEATURES_NO_CLM if f != "multiple-choice"),
            onnx_config_cls=PoolerlessBertOnnxConfig,
        ),
        "deberta-v2": supported_features_mapping(
            *ENCODER_FEATURES_NO_CLM, onnx_config_cls=PoolerlessBertOnnxConfig
        ),
        "big-bird": supported_features_mapping(*ENCODER_FEATURES_NO_CLM, onnx_config_cls=BertOnnxConfig),
        "longformer": supported_features_mapping(
            *ENCODER_FEATURES_NO_CLM, onnx_config_cls=LongformerOnnxConfig
        ),
        "perceiver": {  # text heads with BERT's signature, the learned-position image classifier pixels in
            **supported_features_mapping(
                "masked-lm", "sequence-classification", onnx_config_cls=PerceiverOnnxConfig
            ),
            **supported_features_mapping("image-classification", onnx_config_cls=VisionOnnxConfig),
        },
        "albert": supported_features_mapping(*ENCODER_FEATURES_NO_CLM, onnx_config_cls=BertOnnxConfig),
        "roformer": supported_features_mapping(*ENCODER_FEATURES, onnx_config_cls=PoolerlessBertOnnxConfig),
        "ibert": supported_features_mapping(*ENCODER_FEATURES_NO_CLM, onnx_config_cls=BertOnnxConfig),
        "layoutlm": supported_features_mapping(
            "default",
            "masked-lm",
            "sequence-classification",
            "token-classification",
            onnx_config_cls=LayoutLMOnnxConfig,
        ),
        "rembert": supported_features_mapping(*ENCODER_FEATURES, onnx_config_cls=BertOnnxConfig),
        # xlm.py (xlm, flaubert: 4.37 also lists causal-lm, a head not implemented), squeezebert.py,
        # mobilebert.py (with a pooler), convbert.py
        **{
            model_type: supported_features_mapping(*ENCODER_FEATURES_NO_CLM, onnx_config_cls=XLMOnnxConfig)
            for model_type in ("xlm", "flaubert")  # langs with language embeddings
        },
        "convbert": supported_features_mapping(
            *ENCODER_FEATURES_NO_CLM, onnx_config_cls=PoolerlessBertOnnxConfig
        ),
        **{
            model_type: supported_features_mapping(*ENCODER_FEATURES_NO_CLM, onnx_config_cls=BertOnnxConfig)
            for model_type in ("squeezebert", "mobilebert")
        },
        # ImageGPT: GPT-2's signature over colour-cluster ids (4.37 listed default and image-classification);
        # the decoder features and the classifier (ImageGPTForImageClassification)
        "imagegpt": supported_features_mapping(
            *DECODER_FEATURES, "image-classification", onnx_config_cls=ImageGPTOnnxConfig
        ),
        "gpt2": supported_features_mapping(
            "default",
            "default-with-past",
            "causal-lm",
            "causal-lm-with-past",
            "sequence-classification",
            "token-classification",
            onnx_config_cls=GPT2OnnxConfig,
        ),
        # the rotary decoder family shares Llama's signature (grouped-query past, head_dim)
        **{
            model_type: supported_features_mapping(*DECODER_FEATURES, onnx_config_cls=LlamaOnnxConfig)
            for model_type in (
                "llama",
                "mistral",
                "qwen2",
                "qwen3",
                "phi3",
                "gemma",
                "gemma2",
                "olmo2",
                "granite",
                "starcoder2",
                "stablelm",
                "gpt-neox",  # model_type gpt_neox (the table spells `_` as `-`, as Hugging Face's)
                "gptj",
                "phi",
                "mixtral",
                "qwen2-moe",  # model_type qwen2_moe
                "gemma3-text",  # model_type gemma3_text
                "codegen",
                "gpt-neo",  # model_type gpt_neo
                "falcon",
                "bloom",
            )
        },
        # the vision encoders (vit.py)
        **{
            model_type: supported_features_mapping(
                "default", "image-classification", onnx_config_cls=VisionOnnxConfig
            )
            for model_type in (
                "vit",
                "deit",
                "beit",
                "data2vec-vision",
                "resnet",
                "convnext",
                "swin",
                "mobilenet-v1",  # model_type mobilenet_v1
                "mobilenet-v2",  # model_type mobilenet_v2
                "poolformer",
                "levit",
            )
        },
        # text + image (clip.py; owlvit.py and groupvit.py with CLIP's signature, as in 4.37)
        **{
            model_type: supported_features_mapping("default", onnx_config_cls=ClipOnnxConfig)
            for model_type in ("clip", "clip-text-model", "clip-vision-model", "owlvit", "groupvit")
        },
        # text + layout + image (layoutlmv3.py), Transformers 4.37's features
        "layoutlmv3": supported_features_mapping(
            "default",
            "question-answering",
            "sequence-classification",
            "token-classification",
            onnx_config_cls=LayoutLMv3OnnxConfig,
        ),
        "segformer": supported_features_mapping(
            "default", "image-classification", "semantic-segmentation", onnx_config_cls=SegformerOnnxConfig
        ),
        "yolos": supported_features_mapping("default", "object-detection", onnx_config_cls=YolosOnnxConfig),
        "detr": supported_features_mapping(
            "default", "object-detection", "image-segmentation", onnx_config_cls=DetrOnnxConfig
        ),
        "mobilevit": supported_features_mapping(
            "default", "image-classification", "semantic-segmentation", onnx_config_cls=VisionOnnxConfig
        ),
        # T5 and its variants (mt5 as Transformers 4.37 lists it; longt5 with the same signature)
        **{
            model_type: supported_features_mapping(
                "default",
                "default-with-past",
                "seq2seq-lm",
                "seq2seq-lm-with-past",
                onnx_config_cls=T5OnnxConfig,
            )
            for model_type in ("t5", "mt5", "longt5")
        },
        # speech in (input_features [batch, num_mel_bins, frames]), text out
        "whisper": supported_features_mapping(
            "speech2seq-lm", "speech2seq-lm-with-past", onnx_config_cls=WhisperOnnxConfig
        ),
        # the BART family (bart.py): T5's encoder-decoder signature (`_` spelled `-`); the
        # classification and QA heads where transformers has their classes
        **{
            model_type: supported_features_mapping(
                "default",
                "default-with-past",
                "seq2seq-lm",
                "seq2seq-lm-with-past",
                *(("sequence-classification", "question-answering") if heads else ()),
                onnx_config_cls=T5OnnxConfig,
            )
            for model_type, heads in (
                ("bart", True),
                ("mbart", True),
                ("marian", False),
                ("m2m-100", False),
                ("blenderbot", False),
                ("blenderbot-small", False),
                ("bigbird-pegasus", True),
            )
        },
    }
    AVAILABLE_FEATURES = sorted({f for m in _SUPPORTED_MODEL_TYPE.values() for f in m})
    #: the types above; ``register`` adds others (``_REGISTERED_MODEL_TYPES``), never replaces these
    _BUILTIN_MODEL_TYPES = frozenset(_SUPPORTED_MODEL_TYPE)
    _REGISTERED_MODEL_TYPES: set[str] = set()

    @staticmethod
    def get_supported_features_for_model_type(
        model_type: str, model_name: str | None = None
    ) -> dict[str, Callable]:
        model_type = model_type.lower()
        if model_type not in FeaturesManager._SUPPORTED_MODEL_TYPE:
            model_type_and_model_name = f"{model_type} ({model_name})" if model_name else model_type
            raise KeyError(
                f"{model_type_and_model_name} is not supported yet. Only "
                f"{list(FeaturesManager._SUPPORTED_MODEL_TYPE.keys())} are supported. If you want to "
                f"support {model_type} please propose a PR or open up an issue."
            )
        return FeaturesManager._SUPPORTED_MODEL_TYPE[model_type]

    @staticmethod
    def canonical_feature(feature: str) -> str:
        """``feature`` as the table spells it: lower case, ``_`` read as ``-`` (``Causal_LM`` ->
        ``causal-lm``), Optimum's task names mapped to 4.37's (``text-generation-with-past`` ->
        ``causal-lm-with-past``, :data:`OPTIMUM_TASK_ALIASES`). Not in Hugging Face's API."""
        if not isinstance(feature, str):
            return feature
        name = feature.strip().lower().replace("_", "-")
        return OPTIMUM_TASK_ALIASES.get(name, name)

    @staticmethod
    def feature_to_task(feature: str) -> str:
        return FeaturesManager.canonical_feature(feature).replace("-with-past", "")

    @staticmethod
    def _validate_framework_choice(framework: str) -> None:
        if framework not in ["pt", "tf"]:
            raise ValueError(
                f"Only two frameworks are supported for ONNX export: pt or tf, but {framework} was provided."
            )
        if framework == "pt" and importlib.util.find_spec("torch") is None:
            raise RuntimeError(
                "Cannot export model to ONNX using PyTorch because no PyTorch package was found."
            )
        if framework == "tf" and importlib.util.find_spec("tensorflow") is None:
            raise RuntimeError(
                "Cannot export model to ONNX using TensorFlow because no TensorFlow package was found."
            )

    @staticmethod
    def get_model_class_for_feature(feature: str, framework: str = "pt") -> Any:
        """The loader class for a feature's task, as 4.37 returns ``AutoModelFor...``: a class
        whose ``from_pretrained(path_or_name)`` returns a tensorweave model (registered by
        ``tensorweave.onnx``; both frameworks load the same model)."""
        task = FeaturesManager.feature_to_task(feature)
        FeaturesManager._validate_framework_choice(framework)
        mapping = (
            FeaturesManager._TASKS_TO_AUTOMODELS
            if framework == "pt"
            else FeaturesManager._TASKS_TO_TF_AUTOMODELS
        )
        if task not in mapping:
            names = [getattr(c, "__name__", c) for c in FeaturesManager._TASKS_TO_AUTOMODELS.values()]
            hint = "" if mapping else " (import tensorweave.onnx: it registers the loaders)"
            raise KeyError(f"Unknown task: {feature}. Possible values are {names}{hint}")
        return mapping[task]

    @staticmethod
    def get_model_from_feature(
        feature: str, model: str, framework: str | None = None, cache_dir: str | None = None
    ) -> Any:
        """4.37's ``get_model_from_feature``: the tensorweave model at ``model`` (a checkpoint
        directory, a ``.gguf`` file or a packaged name), loaded for the feature's task."""
        framework = FeaturesManager.determine_framework(model, framework)
        if framework not in ("pt", "tf"):
            framework = "pt"
        model_class = FeaturesManager.get_model_class_for_feature(feature, framework)
        return model_class.from_pretrained(model, cache_dir=cache_dir)

    @staticmethod
    def determine_framework(model: str, framework: str | None = None) -> str:
        """Explicit argument (pt, tf or one of our backends) > the local checkpoint's format
        (pytorch_model.bin or model.safetensors[.index.json] -> pt, tf_model.h5 -> tf) > installed
        frameworks preferring PyTorch, then TensorFlow, then numpy (always present)."""
        if framework is not None:
            return framework
        if os.path.isdir(model):
            for file, fw in _CHECKPOINT_FRAMEWORKS:
                if os.path.isfile(os.path.join(model, file)):
                    return fw
            raise FileNotFoundError(
                f"Cannot determine framework from given checkpoint location. There should be a "
                f"pytorch_model.bin, model.safetensors or tf_model.h5 in {model}."
            )
        if importlib.util.find_spec("torch") is not None:
            return "pt"
        if importlib.util.find_spec("tensorflow") is not None:
            return "tf"
        return "numpy"

    @staticmethod
    def check_supported_model_or_raise(model: Any, feature: str = "default") -> tuple[str, Callable]:
        """(model_type, constructor) for a model object with ``.config.model_type``; ValueError if the
        feature is not supported."""
        config = getattr(model, "config", model)
        model_type = config["model_type"] if isinstance(config, dict) else config.model_type
        model_type = model_type.replace("_", "-")
        model_name = getattr(model, "name", "")
        features = FeaturesManager.get_supported_features_for_model_type(model_type, model_name=model_name)
        feature = FeaturesManager.canonical_feature(feature)
        if feature not in features:
            raise ValueError(
                f"{model_type} doesn't support feature {feature}. Supported values are: {features}"
            )
        return (config["model_type"] if isinstance(config, dict) else config.model_type), features[feature]

    @classmethod
    def get_config(cls, model_type: str, feature: str) -> Callable[..., OnnxConfig]:
        return cls._SUPPORTED_MODEL_TYPE[model_type][feature]

    @classmethod
    def register(
        cls,
        model_type: str,
        features: Sequence[str] | str,
        onnx_config_cls: Any,
        *,
        replace: bool = False,
    ) -> dict[str, Callable]:
        """Add ``model_type`` to the table, as Optimum's ``TasksManager`` registration does for one
        type (not in Hugging Face's 4.37 API): its ``features`` (4.37 names or Optimum task names),
        each built with ``onnx_config_cls`` (``with_past`` for ``-with-past`` features, which needs an
        ``OnnxConfigWithPast``). Returns the type's feature -> constructor mapping.

        A type already in the table is a ``ValueError`` unless an earlier ``register`` added it and
        ``replace`` is true; built-in types cannot be replaced. ``tensorweave.models.register``
        calls this for a whole architecture; :meth:`unregister` undoes it."""
        if (
            not isinstance(model_type, str)
            or not model_type
            or model_type != model_type.lower().replace("_", "-")
        ):
            raise ValueError(
                f"model_type must be a non-empty lower-case name without '_' (the table reads '_' as '-'), "
                f"got {model_type!r}"
            )
        if model_type in cls._BUILTIN_MODEL_TYPES:
            raise ValueError(f"{model_type!r} is a built-in model type; register under another model_type")
        if model_type in cls._SUPPORTED_MODEL_TYPE and not replace:
            raise ValueError(
                f"model type {model_type!r} is already registered; pass replace=True to replace it "
                f"(or FeaturesManager.unregister({model_type!r}) first)"
            )
        items = (features,) if isinstance(features, str) else tuple(features)
        names = [cls.canonical_feature(f) for f in items]
        unknown = [f for f, n in zip(items, names) if n not in cls.AVAILABLE_FEATURES]
        if unknown or not names:
            raise ValueError(
                f"unknown features {unknown} for {model_type!r}; choose from {', '.join(cls.AVAILABLE_FEATURES)}"
                if unknown
                else f"register {model_type!r} with at least one feature"
            )
        need = OnnxConfigWithPast if any(n.endswith("-with-past") for n in names) else OnnxConfig
        if not (isinstance(onnx_config_cls, type) and issubclass(onnx_config_cls, need)):
            raise TypeError(f"onnx_config_cls must be a subclass of {need.__name__}, got {onnx_config_cls!r}")
        mapping = supported_features_mapping(*dict.fromkeys(names), onnx_config_cls=onnx_config_cls)
        cls._SUPPORTED_MODEL_TYPE[model_type] = mapping
        cls._REGISTERED_MODEL_TYPES.add(model_type)
        return mapping

    @classmethod
    def unregister(cls, model_type: str) -> None:
        """Remove a type :meth:`register` added; built-in and unknown types are a ``ValueError``."""
        if model_type not in cls._REGISTERED_MODEL_TYPES:
            raise ValueError(
                f"{model_type!r} was not added by FeaturesManager.register; registered: "
                f"{sorted(cls._REGISTERED_MODEL_TYPES) or 'none'}"
            )
        cls._REGISTERED_MODEL_TYPES.discard(model_type)
        cls._SUPPORTED_MODEL_TYPE.pop(model_type, None)
