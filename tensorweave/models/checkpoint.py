"""Hugging Face checkpoints: directories (config.json + safetensors), live ``transformers``
models, and the strict parameter check every loader ends with.

Safetensors files are opened with the ``safetensors`` numpy API (memory-mapped; each tensor is
copied out once, and bfloat16/float16 ones are widened to float32 one at a time). A sharded
checkpoint is read through ``model.safetensors.index.json``. ``pytorch_model.bin`` files are
never unpickled: they are refused with the fix (convert to safetensors).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from ..frontends.models import (
    ARCHITECTURES,
    BART_CONFIGS,
    BERT_HEADS,
    ENCODER_CONFIGS,
    PARAMETER_SHAPES,
    ROTARY_CONFIGS,
    VISION_CONFIGS,
    config_from_dict,
)
from ..frontends.models.weights import BlockQuantized
from ..log import progress

# Hugging Face class name -> BERT head
BERT_CLASS_HEADS = {
    "BertModel": "default",
    "BertForMaskedLM": "masked-lm",
    "BertForPreTraining": "masked-lm",
    "BertForSequenceClassification": "sequence-classification",
    "BertForTokenClassification": "token-classification",
    "BertForQuestionAnswering": "question-answering",
    "BertForMultipleChoice": "multiple-choice",
}


def _class_heads(prefix: str, heads: tuple[str, ...]) -> dict[str, str]:
    """``{prefix}Model`` -> default, ``{prefix}ForMaskedLM`` -> masked-lm, ... for ``heads``."""
    suffixes = {
        "default": "Model",
        "masked-lm": "ForMaskedLM",
        "sequence-classification": "ForSequenceClassification",
        "token-classification": "ForTokenClassification",
        "question-answering": "ForQuestionAnswering",
        "multiple-choice": "ForMultipleChoice",
    }
    return {prefix + suffixes[h]: h for h in heads}


#: the vision encoders (vit.py): model_type -> Hugging Face class name -> head
VISION_CLASS_HEADS = {
    "vit": {"ViTModel": "default", "ViTForImageClassification": "image-classification"},
    "deit": {"DeiTModel": "default", "DeiTForImageClassificationWithTeacher": "image-classification"},
    "beit": {"BeitModel": "default", "BeitForImageClassification": "image-classification"},
    "data2vec-vision": {
        "Data2VecVisionModel": "default",
        "Data2VecVisionForImageClassification": "image-classification",
    },
    "resnet": {"ResNetModel": "default", "ResNetForImageClassification": "image-classification"},
    "convnext": {"ConvNextModel": "default", "ConvNextForImageClassification": "image-classification"},
    "swin": {"SwinModel": "default", "SwinForImageClassification": "image-classification"},
    "segformer": {
        "SegformerModel": "default",
        "SegformerForImageClassification": "image-classification",
        "SegformerForSemanticSegmentation": "semantic-segmentation",
    },
    "mobilenet_v1": {
        "MobileNetV1Model": "default",
        "MobileNetV1ForImageClassification": "image-classification",
    },
    "mobilenet_v2": {
        "MobileNetV2Model": "default",
        "MobileNetV2ForImageClassification": "image-classification",
    },
    "poolformer": {"PoolFormerModel": "default", "PoolFormerForImageClassification": "image-classification"},
    "levit": {"LevitModel": "default", "LevitForImageClassificationWithTeacher": "image-classification"},
    "yolos": {"YolosModel": "default", "YolosForObjectDetection": "object-detection"},
    "detr": {
        "DetrModel": "default",
        "DetrForObjectDetection": "object-detection",
        "DetrForSegmentation": "image-segmentation",
    },
    "mobilevit": {
        "MobileViTModel": "default",
        "MobileViTForImageClassification": "image-classification",
        "MobileViTForSemanticSegmentation": "semantic-segmentation",
    },
}
#: text + image models (clip.py): model_type -> Hugging Face class name -> head
MULTIMODAL_CLASS_HEADS = {
    "clip": {"CLIPModel": "default"},
    "clip_text_model": {"CLIPTextModelWithProjection": "default"},
    "clip_vision_model": {"CLIPVisionModelWithProjection": "default"},
    "owlvit": {"OwlViTModel": "default"},  # owlvit.py
    "groupvit": {"GroupViTModel": "default"},  # groupvit.py
    # layoutlmv3.py: the base model and three task heads
    "layoutlmv3": {
        "LayoutLMv3Model": "default",
        "LayoutLMv3ForSequenceClassification": "sequence-classification",
        "LayoutLMv3ForTokenClassification": "token-classification",
        "LayoutLMv3ForQuestionAnswering": "question-answering",
    },
}
# model_type -> Hugging Face class name -> head, for the encoder family (the first class of a head
# is the one an export's config.json names)
ENCODER_CLASS_HEADS = {
    "bert": BERT_CLASS_HEADS,
    **{
        mt: _class_heads(prefix, BERT_HEADS)
        for mt, prefix in (
            ("roberta", "Roberta"),
            ("xlm-roberta", "XLMRoberta"),
            ("camembert", "Camembert"),
            ("data2vec-text", "Data2VecText"),
            ("distilbert", "DistilBert"),
            ("electra", "Electra"),
            ("albert", "Albert"),
            ("roformer", "RoFormer"),
            ("ibert", "IBert"),
            ("rembert", "RemBert"),
        )
    },
    "layoutlm": _class_heads("LayoutLM", ENCODER_CONFIGS["layoutlm"].heads),  # no multiple choice
    # xlm.py: masked-lm is `*WithLMHeadModel`, question-answering the span head `*ForQuestionAnsweringSimple`
    **{
        mt: {
            prefix + suffix: head
            for suffix, head in (
                ("Model", "default"),
                ("WithLMHeadModel", "masked-lm"),
                ("ForSequenceClassification", "sequence-classification"),
                ("ForTokenClassification", "token-classification"),
                ("ForQuestionAnsweringSimple", "question-answering"),
                ("ForMultipleChoice", "multiple-choice"),
            )
        }
        for mt, prefix in (("xlm", "XLM"), ("flaubert", "Flaubert"))
    },
    **{
        mt: _class_heads(prefix, BERT_HEADS)
        for mt, prefix in (
            ("squeezebert", "SqueezeBert"),
            ("mobilebert", "MobileBert"),
            ("convbert", "ConvBert"),
        )
    },
    # deberta.py (deberta has no multiple-choice class), big_bird.py, longformer.py
    "deberta": _class_heads("Deberta", tuple(h for h in BERT_HEADS if h != "multiple-choice")),
    **{
        mt: _class_heads(prefix, BERT_HEADS)
        for mt, prefix in (("deberta-v2", "DebertaV2"), ("big_bird", "BigBird"), ("longformer", "Longformer"))
    },
    "perceiver": {  # perceiver.py: text masked-lm and classification, learned-position image classification
        "PerceiverForMaskedLM": "masked-lm",
        "PerceiverForSequenceClassification": "sequence-classification",
        "PerceiverForImageClassificationLearned": "image-classification",
    },
    **VISION_CLASS_HEADS,  # the lookups by class (default_head, live models, exports) cover vit.py too
    **MULTIMODAL_CLASS_HEADS,  # and clip.py
}
# tensors of *other* heads that a checkpoint may carry (dropped, as transformers drops them)
_ENCODER_HEAD_TENSORS = ("classifier.", "qa_outputs.", "pre_classifier.")
_HEAD_PREFIXES = {
    "bert": ("bert.pooler.", "cls.", "classifier.", "qa_outputs."),
    **{
        mt: ("roberta.pooler.", "lm_head.", *_ENCODER_HEAD_TENSORS)
        for mt in ("roberta", "xlm-roberta", "camembert")
    },
    "data2vec-text": ("data2vec_text.pooler.", "lm_head.", *_ENCODER_HEAD_TENSORS),
    "distilbert": ("vocab_transform.", "vocab_layer_norm.", "vocab_projector.", *_ENCODER_HEAD_TENSORS),
    "electra": (
        "generator_predictions.",
        "generator_lm_head.",
        "discriminator_predictions.",
        "sequence_summary.",
        *_ENCODER_HEAD_TENSORS,
    ),
    "albert": ("albert.pooler.", "predictions.", "sop_classifier.", *_ENCODER_HEAD_TENSORS),
    "roformer": ("cls.", "sequence_summary.", *_ENCODER_HEAD_TENSORS),
    "ibert": ("ibert.pooler.", "lm_head.", *_ENCODER_HEAD_TENSORS),
    "layoutlm": ("layoutlm.pooler.", "cls.", *_ENCODER_HEAD_TENSORS),
    "rembert": ("rembert.pooler.", "cls.", *_ENCODER_HEAD_TENSORS),
    **{
        mt: ("pred_layer.", "sequence_summary.", "logits_proj.", *_ENCODER_HEAD_TENSORS)
        for mt in ("xlm", "flaubert")
    },
    "squeezebert": ("cls.", *_ENCODER_HEAD_TENSORS),
    "mobilebert": ("mobilebert.pooler.", "cls.", *_ENCODER_HEAD_TENSORS),
    "convbert": ("generator_predictions.", "generator_lm_head.", "sequence_summary.", *_ENCODER_HEAD_TENSORS),
    **{
        mt: ("cls.", "lm_predictions.", "mask_predictions.", "pooler.", *_ENCODER_HEAD_TENSORS)
        for mt in ("deberta", "deberta-v2")
    },
    "big_bird": ("bert.pooler.", "cls.", "qa_classifier.", *_ENCODER_HEAD_TENSORS),
    "longformer": ("longformer.pooler.", "lm_head.", *_ENCODER_HEAD_TENSORS),
    "perceiver": (),
    "vit": ("vit.pooler.", "classifier."),
    "deit": ("deit.pooler.", "cls_classifier.", "distillation_classifier.", "classifier."),
    "beit": ("beit.pooler.", "classifier."),
    "data2vec-vision": ("data2vec_vision.pooler.", "classifier."),
    "resnet": ("classifier.",),
    "convnext": ("classifier.",),
    **{mt: () for mt in ("clip", "clip_text_model", "clip_vision_model")},  # clip.py: one class each
    "owlvit": (),  # owlvit.py, groupvit.py: the base model only
    "groupvit": (),
    "layoutlmv3": ("classifier.", "qa_outputs."),
    "swin": ("classifier.",),
    "segformer": ("classifier.", "decode_head."),
    "mobilenet_v1": ("classifier.",),
    "mobilenet_v2": ("classifier.",),
    "poolformer": ("norm.", "classifier."),
    "levit": ("classifier.", "classifier_distill."),
    "yolos": ("vit.pooler.", "class_labels_classifier.", "bbox_predictor."),
    "detr": ("class_labels_classifier.", "bbox_predictor.", "bbox_attention.", "mask_head."),
    "mobilevit": ("mobilevit.conv_1x1_exp.", "classifier.", "segmentation_head."),
    "gpt2": ("lm_head.",),
    "imagegpt": ("lm_head.",),
    **{name: ("lm_head.",) for name in ROTARY_CONFIGS},  # llama, mistral, qwen2, ..., mixtral
    "gpt_neox": ("embed_out.",),
    "t5": ("lm_head.",),
    "mt5": ("lm_head.",),
    "longt5": ("lm_head.",),
    "whisper": ("proj_out.",),  # the tied copy of the decoder embedding
    **{name: ("lm_head.",) for name in BART_CONFIGS},  # bart.py: a tied lm_head
}
#: T5 and its variants (t5.py): model_type -> the one class they load from (the seq2seq-lm head)
T5_CLASSES = {
    "t5": "T5ForConditionalGeneration",
    "mt5": "MT5ForConditionalGeneration",
    "longt5": "LongT5ForConditionalGeneration",
}


def default_head(config: Any, class_name: str | None = None) -> str | None:
    """The encoder head named by a class name or the config's ``architectures`` (decoders: None)."""
    classes = ENCODER_CLASS_HEADS.get(config.model_type)
    if config.model_type in BART_CONFIGS:  # bart.py: seq2seq-lm unless a classification / QA class
        classes, fallback = config.head_classes, "seq2seq-lm"
    elif config.model_type == "imagegpt":  # gpt2.py: the causal LM (None) unless the classifier class
        classes, fallback = config.head_classes, None
    else:
        fallback = "default"
    if classes is None:
        return None
    names = [class_name] if class_name else list(config.architectures or [])
    for n in names:
        if n in classes:
            return classes[n]
    return fallback


def expected_shapes(config: Any, head: str | None = None) -> dict[str, tuple]:
    if config.model_type in ENCODER_CONFIGS or config.model_type in VISION_CONFIGS:
        return PARAMETER_SHAPES[config.model_type](config, head or "default")
    if config.model_type == "layoutlmv3":  # layoutlmv3.py: text + image with four heads
        return PARAMETER_SHAPES[config.model_type](config, head or "default")
    if config.model_type in BART_CONFIGS:  # bart.py: seq2seq-lm or a classification / QA head
        return PARAMETER_SHAPES[config.model_type](config, head)
    if head is not None and config.model_type == "imagegpt":  # gpt2.py: image-classification
        return PARAMETER_SHAPES[config.model_type](config, head)
    return PARAMETER_SHAPES[config.model_type](config)


def canonical_names(model_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint saved from a base model (``GPT2Model``, ``BertModel``, ...) has no base-model
    prefix: add it (``h.0.attn...`` -> ``transformer.h.0.attn...``)."""
    cfg_cls = (
        ROTARY_CONFIGS.get(model_type) or ENCODER_CONFIGS.get(model_type) or VISION_CONFIGS.get(model_type)
    )
    prefix = cfg_cls.base_prefix if cfg_cls is not None else ARCHITECTURES[model_type].BASE_PREFIX
    if params and not any(k.startswith(prefix) for k in params):
        params = {prefix + k: v for k, v in params.items()}
    # vit.py: transformers v5's live layer names -> the names checkpoints are saved with
    live_names = getattr(ARCHITECTURES.get(model_type), "file_names", None)
    if live_names is not None:
        params = live_names(params)
    for live, saved in _LIVE_NAMES.get(model_type, {}).items():
        if any(k.startswith(live) for k in params) and not any(k.startswith(saved) for k in params):
            params = {(saved + k[len(live) :] if k.startswith(live) else k): v for k, v in params.items()}
    if cfg_cls is not None and getattr(cfg_cls, "mlp_kind", None) == "moe":
        return _split_fused_experts(params, cfg_cls.moe_names)
    return dict(params)


# transformers v5 module names that differ from the names checkpoints are saved with (live -> file)
_LIVE_NAMES = {"gpt_neox": {"lm_head.": "embed_out."}}


def _split_fused_experts(params: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """transformers v5 keeps a mixture of experts as ``mlp.gate.weight [E, d]`` (the router),
    ``mlp.experts.gate_up_proj [E, 2 ff, d]`` (rows: gate, then up) and ``mlp.experts.down_proj
    [E, d, ff]``; checkpoints (and ``save_pretrained``) use one tensor per expert, named by the
    config's ``moe_names`` (Mixtral: ``block_sparse_moe.gate.weight``,
    ``block_sparse_moe.experts.{e}.w1`` (gate) / ``w3`` (up) / ``w2`` (down)). The fused form is
    rewritten to the per-expert names; other names pass through."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if k.endswith(".mlp.experts.gate_up_proj") and np.ndim(v) == 3:
            layer = k[: -len("mlp.experts.gate_up_proj")]
            ff = np.shape(v)[1] // 2
            for e in range(np.shape(v)[0]):
                expert = layer + names["expert"].format(e=e)
                out[f"{expert}{names['gate']}.weight"] = v[e, :ff]
                out[f"{expert}{names['up']}.weight"] = v[e, ff:]
        elif k.endswith(".mlp.experts.down_proj") and np.ndim(v) == 3:
            layer = k[: -len("mlp.experts.down_proj")]
            for e in range(np.shape(v)[0]):
                out[f"{layer}{names['expert'].format(e=e)}{names['down']}.weight"] = v[e]
        elif k.endswith(".mlp.gate.weight"):
            out[k[: -len("mlp.gate.weight")] + names["router"] + ".weight"] = v
        else:
            out[k] = v
    return out


def check_params(config: Any, params: dict[str, Any], head: str | None = None) -> dict[str, np.ndarray]:
    """The parameters the architecture (and head) reads, under their canonical names.

    One ``ModelLoadError`` lists every missing, mis-shaped and unexpected tensor. Ignored: buffers that
    are not parameters (``IGNORED_SUFFIXES``), tied copies (``lm_head.weight`` when embeddings
    are tied) and tensors of other heads of the same model type."""
    mt = config.model_type
    layers = max(getattr(config, "num_hidden_layers", 0) or 0, getattr(config, "num_decoder_layers", 0) or 0)
    if layers > len(params):  # before listing every expected name of a (possibly corrupt) huge count
        raise ModelLoadError(
            f"the {mt} config asks for {layers} layers but the checkpoint holds only {len(params)} tensors; "
            "the config and the weights are from different models (or the config is corrupt)"
        )
    want = expected_shapes(config, head)
    arch = ARCHITECTURES[mt]
    got = canonical_names(mt, params)
    missing = sorted(k for k in want if k not in got)
    bad = sorted(
        f"{k}: {tuple(np.shape(got[k]))} != {tuple(want[k])}"
        for k in want
        if k in got and tuple(np.shape(got[k])) != tuple(want[k])
    )
    wrong_dtype = sorted(f"{k}: {_dtype_name(got[k])}" for k in want if k in got and not _is_float(got[k]))
    extra = sorted(
        k
        for k in got
        if k not in want
        and not k.endswith(arch.IGNORED_SUFFIXES)
        and not k.startswith(_HEAD_PREFIXES.get(mt, ()))
    )
    if missing or bad or extra or wrong_dtype:
        parts = []
        if wrong_dtype:
            wrong_dtype[-1] += " (weights must be a float dtype: F32, F16, BF16 or F64)"
        for label, items in (
            ("missing", missing),
            ("mis-shaped", bad),
            ("not floating point", wrong_dtype),
            ("unexpected", extra),
        ):
            if items:
                parts.append(f"{label} ({len(items)}) {items[:8]}{' ...' if len(items) > 8 else ''}")
        what = f"{mt} config" + (f" with head {head!r}" if head else "")
        raise ModelLoadError(
            f"checkpoint does not match the {what}: "
            + "; ".join(parts)
            + " (the weights and config.json, or the head asked for, are from different models)"
        )
    return {
        k: got[k] if isinstance(got[k], BlockQuantized) else np.asarray(got[k], dtype=np.float32)
        for k in want
    }


def _dtype_name(arr: Any) -> str:
    return str(getattr(arr, "dtype", type(arr).__name__))


def _is_float(arr: Any) -> bool:
    dt = getattr(arr, "dtype", None)
    return dt is not None and (dt.kind == "f" or dt.name == "bfloat16")


def _to_float32(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f" or arr.dtype.name == "bfloat16":
        return arr if arr.dtype == np.float32 else arr.astype(np.float32)
    return arr


def load_safetensors(path: str) -> dict[str, np.ndarray]:
    """All tensors of one safetensors file (floats as float32); a bad file is one ModelLoadError."""
    try:
        import ml_dtypes  # noqa: F401  (lets numpy name bfloat16 for the safetensors reader)
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ModelLoadError(
            "reading safetensors checkpoints needs the safetensors package: pip install safetensors"
        ) from None
    try:
        out = {}
        with safe_open(path, framework="numpy") as f:
            for name in progress(list(f.keys()), desc=f"loading {os.path.basename(path)}", unit="tensor"):
                out[name] = _to_float32(f.get_tensor(name))
        return out
    except FileNotFoundError:
        raise ModelLoadError(
            f"safetensors file {path} does not exist; check the path or the index's shard names"
        ) from None
    except (SafetensorError, ValueError, TypeError, OSError, OverflowError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(
            f"{path} is not a valid safetensors file ({reason}); it is truncated or corrupt"
        ) from None


def read_checkpoint_dir(path: str) -> tuple[Any, dict[str, np.ndarray]]:
    """``(config, raw tensors)`` of a Hugging Face checkpoint directory."""
    from ..frontends.models import config_from_json_file

    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise ModelLoadError(f"{path} has no config.json; pass a Hugging Face checkpoint directory")
    try:
        config = config_from_json_file(cfg_path)
    except ModelLoadError:
        raise
    except ValueError as exc:  # the config's own one-line message, naming the field
        msg = str(exc)
        raise ModelLoadError(msg if msg.startswith(cfg_path) else f"{cfg_path}: {msg}") from None
    index = os.path.join(path, "model.safetensors.index.json")
    single = os.path.join(path, "model.safetensors")
    params: dict = {}
    if os.path.isfile(index):
        weight_map = _read_index(index)
        shards = {shard: _shard_path(path, index, shard) for shard in sorted(set(weight_map.values()))}
        for shard, shard_path in shards.items():  # every name is checked before any file is opened
            tensors = load_safetensors(shard_path)
            wrong = sorted(k for k in tensors if weight_map.get(k) != shard)
            if wrong:
                raise ModelLoadError(
                    f"{shard} holds tensors its index does not place there: {wrong[:8]}; the index and the "
                    "shards are from different saves: re-download or re-save the checkpoint"
                )
            params.update(tensors)
        absent = sorted(set(weight_map) - set(params))
        if absent:
            raise ModelLoadError(
                f"{index} lists tensors no shard holds: {absent[:8]}; a shard is missing or stale: "
                "re-download or re-save the checkpoint"
            )
    elif os.path.isfile(single):
        params = load_safetensors(single)
    elif os.path.isfile(os.path.join(path, "pytorch_model.bin")):
        raise ModelLoadError(
            f"{path} has only pytorch_model.bin; tensorweave never unpickles checkpoints: convert it with "
            "transformers (model.save_pretrained(dir, safe_serialization=True)) to safetensors"
        )
    else:
        raise ModelLoadError(
            f"{path} has no model.safetensors or model.safetensors.index.json; save the model with "
            "save_pretrained(dir, safe_serialization=True)"
        )
    if config.model_type in T5_CLASSES:
        config = _t5_file_config(config, params)
    return config, params


def checkpoint_generation_config(path: str) -> Any:
    """Hugging Face's rule for a checkpoint directory: ``generation_config.json`` when present,
    else the generation fields of ``config.json`` (``GenerationConfig.from_model_config``)."""
    from ..frontends.generation.configuration import GENERATION_CONFIG_NAME, GenerationConfig

    gen_path = os.path.join(path, GENERATION_CONFIG_NAME)
    if os.path.isfile(gen_path):
        try:
            with open(gen_path, encoding="utf-8") as f:
                data = json.load(f)
        except (ValueError, RecursionError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(
                f"{gen_path} is not valid JSON text ({reason}); fix it or delete it (config.json's "
                "generation fields are used then)"
            ) from None
        if not isinstance(data, dict):
            raise ModelLoadError(f"{gen_path} must hold a JSON object of generation settings")
        return _generation_config(GenerationConfig.from_dict, data, gen_path)
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path, encoding="utf-8") as f:  # already read and validated by read_checkpoint_dir
        data = json.load(f)
    return _generation_config(GenerationConfig.from_model_config, data, cfg_path)


def generation_config_from_fields(fields: dict, where: str) -> Any:
    """``GenerationConfig.from_model_config`` of a dict of model-config fields (GGUF metadata, a
    live model's config)."""
    from ..frontends.generation.configuration import GenerationConfig

    return _generation_config(GenerationConfig.from_model_config, fields, where)


def _generation_config(make: Any, data: dict, where: str) -> Any:
    from ..frontends.generation.configuration import _DEFAULTS
    from ..frontends.models.config import check_token_id

    for key, default in _DEFAULTS.items():
        value = data.get(key)
        if value is None:
            continue
        if key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
            try:
                check_token_id(key, value, allow_list=key in ("eos_token_id", "decoder_start_token_id"))
            except ValueError as exc:
                raise ModelLoadError(f"{where}: {exc}") from None
            continue
        want = type(default) if default is not None else None
        if want is bool and key != "early_stopping" and not isinstance(value, bool):
            raise ModelLoadError(
                f"{where}: field `{key}` must be a JSON boolean (true or false), got {value!r}"
            )
        if want is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise ModelLoadError(f"{where}: field `{key}` must be an integer, got {value!r}")
        if want is float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise ModelLoadError(f"{where}: field `{key}` must be a number, got {value!r}")
    data = {k: v for k, v in data.items() if v is not None}  # null = unset (transformers v5 writes them)
    try:
        return make(data)
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{where}: invalid generation settings ({reason})") from None


def _read_index(index: str) -> dict[str, str]:
    """The ``weight_map`` of a ``model.safetensors.index.json`` (tensor name -> shard file name)."""
    try:
        with open(index, encoding="utf-8") as f:
            doc = json.load(f)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{index} is not a valid safetensors index (not JSON text: {reason})") from None
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in weight_map.items()
    ):
        raise ModelLoadError(
            f"{index} is not a valid safetensors index: it needs a `weight_map` object of tensor name -> "
            "shard file name; re-save the checkpoint"
        )
    return weight_map


def _shard_path(path: str, index: str, shard: str) -> str:
    """A shard named by the index, confined to the checkpoint directory (no absolute paths, no
    ``..``, no links leading out of it)."""
    bad = os.path.isabs(shard) or ".." in shard.replace("\\", "/").split("/") or "\0" in shard
    root = os.path.realpath(path)
    full = "" if bad else os.path.realpath(os.path.join(root, shard))
    if bad or os.path.commonpath([root, full]) != root:
        raise ModelLoadError(
            f"{index} names shard {shard!r} outside the checkpoint directory; shard names must be file "
            "names inside it (refused: absolute paths and '..')"
        )
    return full


def _t5_file_config(config: Any, params: dict[str, np.ndarray]) -> Any:
    """transformers v5 writes ``tie_word_embeddings: true`` for every T5, also one whose
    ``lm_head.weight`` is its own; like v5's loader, an ``lm_head.weight`` that differs from
    ``shared.weight`` makes the head untied (the rescale still follows ``scale_decoder_outputs``)."""
    import dataclasses

    head, shared = params.get("lm_head.weight"), params.get("shared.weight")
    if (
        config.tie_word_embeddings
        and head is not None
        and shared is not None
        and not np.array_equal(head, shared)
    ):
        return dataclasses.replace(
            config, tie_word_embeddings=False, scale_decoder_outputs=config.scale_decoder_outputs
        )
    return config


def transformers_state(hf_model: Any) -> tuple[Any, dict[str, np.ndarray], str | None]:
    """``(config, float32 numpy copies of the state dict, BERT head)`` of a live PyTorch model."""
    if not hasattr(hf_model, "state_dict") or not hasattr(hf_model, "config"):
        raise ModelLoadError(
            f"from_transformers needs a transformers PreTrainedModel, got {type(hf_model).__name__}"
        )
    try:
        config = config_from_dict(hf_model.config.to_dict())
    except ValueError as exc:  # the config's own one-line message, naming the field
        raise ModelLoadError(f"{type(hf_model).__name__}.config: {exc}") from None
    head = default_head(config, type(hf_model).__name__)
    if config.model_type in T5_CLASSES:
        config = _t5_live_config(hf_model, config)
    if config.model_type == "whisper" and type(hf_model).__name__ != "WhisperForConditionalGeneration":
        raise ModelLoadError(
            f"{type(hf_model).__name__} is not supported; whisper classes: ['WhisperForConditionalGeneration']"
        )
    if config.model_type in BART_CONFIGS:  # bart.py: the class names the head
        head = config.head_classes.get(type(hf_model).__name__)
        if head is None:
            raise ModelLoadError(
                f"{type(hf_model).__name__} is not supported; {config.model_type} classes: "
                f"{list(config.head_classes)}"
            )
    classes = ENCODER_CLASS_HEADS.get(config.model_type)
    if classes is not None and type(hf_model).__name__ not in classes:
        raise ModelLoadError(
            f"{type(hf_model).__name__} is not supported; {config.model_type} classes: {sorted(classes)}"
        )
    state = {}
    for k, v in hf_model.state_dict().items():
        t = v.detach().cpu()
        state[k] = (t.float() if t.is_floating_point() else t).numpy().copy()
    return config, state, head


def _t5_live_config(hf_model: Any, config: Any) -> Any:
    """A live T5: only ``T5ForConditionalGeneration`` (the ``seq2seq-lm`` head); its lm_head is
    tied when it *is* the shared embedding (transformers v5 always reports
    ``tie_word_embeddings=True`` and keeps the old flag's meaning in ``scale_decoder_outputs``)."""
    import dataclasses

    want = T5_CLASSES[config.model_type]
    if type(hf_model).__name__ != want:
        raise ModelLoadError(
            f"{type(hf_model).__name__} is not supported; {config.model_type} classes: [{want!r}]"
        )
    head, shared = getattr(hf_model, "lm_head", None), getattr(hf_model, "shared", None)
    tied = head is not None and shared is not None and head.weight.data_ptr() == shared.weight.data_ptr()
    return dataclasses.replace(
        config, tie_word_embeddings=tied, scale_decoder_outputs=config.scale_decoder_outputs
    )


__all__ = [
    "BERT_CLASS_HEADS",
    "BERT_HEADS",
    "ENCODER_CLASS_HEADS",
    "T5_CLASSES",
    "canonical_names",
    "check_params",
    "checkpoint_generation_config",
    "default_head",
    "generation_config_from_fields",
    "expected_shapes",
    "load_safetensors",
    "read_checkpoint_dir",
    "transformers_state",
]
