"""FeaturesManager: which model types support which export features, and framework choice.

Hugging Face's ``transformers.onnx.FeaturesManager`` API (4.37), restricted to the model types
tensorweave implements and extended to safetensors checkpoints and our own backends. A pure table:
it imports no framework (framework availability is looked up with ``importlib.util.find_spec``,
which imports nothing). Public as ``tensorweave.onnx.FeaturesManager``.
"""

from __future__ import annotations

import importlib.util
import os
from functools import partial
from typing import Any, Callable

from .config import OnnxConfig
from .models import BertOnnxConfig, GPT2OnnxConfig, LlamaOnnxConfig, T5OnnxConfig

_TASKS_TO_AUTOMODELS = {
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
_TASKS_TO_TF_AUTOMODELS = {
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


def supported_features_mapping(*supported_features: str, onnx_config_cls: Any = None) -> dict[str, Callable]:
    """feature -> constructor: ``cls.with_past`` for ``-with-past`` features, else ``cls.from_model_config``."""
    if onnx_config_cls is None:
        raise ValueError("A OnnxConfig class must be provided")
    mapping = {}
    for feature in supported_features:
        if "-with-past" in feature:
            task = feature.replace("-with-past", "")
            mapping[feature] = partial(onnx_config_cls.with_past, task=task)
        else:
            mapping[feature] = partial(onnx_config_cls.from_model_config, task=feature)
    return mapping


class FeaturesManager:
    """Which features each model type exports, the config constructor for each, and framework choice."""

    _TASKS_TO_AUTOMODELS = _TASKS_TO_AUTOMODELS
    _TASKS_TO_TF_AUTOMODELS = _TASKS_TO_TF_AUTOMODELS
    _SUPPORTED_MODEL_TYPE = {
        "bert": supported_features_mapping(
            "default",
            "masked-lm",
            "causal-lm",
            "sequence-classification",
            "multiple-choice",
            "token-classification",
            "question-answering",
            onnx_config_cls=BertOnnxConfig,
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
        "llama": supported_features_mapping(
            "default",
            "default-with-past",
            "causal-lm",
            "causal-lm-with-past",
            onnx_config_cls=LlamaOnnxConfig,
        ),
        "t5": supported_features_mapping(
            "default", "default-with-past", "seq2seq-lm", "seq2seq-lm-with-past", onnx_config_cls=T5OnnxConfig
        ),
    }
    AVAILABLE_FEATURES = sorted({f for m in _SUPPORTED_MODEL_TYPE.values() for f in m})

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
                "support {model_type} please propose a PR or open up an issue."
            )
        return FeaturesManager._SUPPORTED_MODEL_TYPE[model_type]

    @staticmethod
    def canonical_feature(feature: str) -> str:
        """``feature`` as the table spells it: lower case, ``_`` read as ``-`` (``Causal_LM`` ->
        ``causal-lm``). Not in Hugging Face's API; the CLI uses it."""
        return feature.strip().lower().replace("_", "-")

    @staticmethod
    def feature_to_task(feature: str) -> str:
        return feature.replace("-with-past", "")

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
    def get_model_class_for_feature(feature: str, framework: str = "pt") -> str:
        """The Hugging Face auto-class name for a feature's task (a string; nothing is imported)."""
        task = FeaturesManager.feature_to_task(feature)
        FeaturesManager._validate_framework_choice(framework)
        mapping = _TASKS_TO_AUTOMODELS if framework == "pt" else _TASKS_TO_TF_AUTOMODELS
        if task not in mapping:
            raise KeyError(
                f"Unknown task: {feature}. Possible values are {list(_TASKS_TO_AUTOMODELS.values())}"
            )
        return mapping[task]

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
        if feature not in features:
            raise ValueError(
                f"{model_type} doesn't support feature {feature}. Supported values are: {features}"
            )
        return (config["model_type"] if isinstance(config, dict) else config.model_type), features[feature]

    @classmethod
    def get_config(cls, model_type: str, feature: str) -> Callable[..., OnnxConfig]:
        return cls._SUPPORTED_MODEL_TYPE[model_type][feature]
