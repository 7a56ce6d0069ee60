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
from typing import Any, Callable, Sequence

from .config import OnnxConfig, OnnxConfigWithPast
from .models import BertOnnxConfig, GPT2OnnxConfig, LlamaOnnxConfig, T5OnnxConfig

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
        "t5": supported_features_mapping(
            "default", "default-with-past", "seq2seq-lm", "seq2seq-lm-with-past", onnx_config_cls=T5OnnxConfig
        ),
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
