"""Models written once against ``xp``: GPT-2, the rotary decoder family (Llama, Mistral, Qwen2,
Qwen3, Phi-3, Gemma: one module, ``llama``), BERT and T5 forward passes, configs, KV caches.

Each architecture module has ``parameter_shapes(cfg)`` (Hugging Face name -> shape),
``BASE_PREFIX`` (the base-model prefix of its names), ``IGNORED_SUFFIXES`` (checkpoint buffers
that are not parameters) and ``forward``. Decoders share one signature:
``forward(params, cfg, input_ids, attention_mask, position_ids, cache=None, offset=0)
-> (logits, cache)`` (see spec/models.md). T5 (``ENCODER_DECODERS``) has ``encode`` and
``decode(..., cache, offset) -> (logits, cache)`` instead.
"""

from . import attention, bert, cache, gpt2, llama, t5, weights
from .attention import position_ids_from_mask
from .cache import growing_cache, static_cache
from .config import (
    BERT_HEADS,
    CONFIGS,
    ROTARY_CONFIGS,
    BertConfig,
    GemmaConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    Qwen2Config,
    Qwen3Config,
    RotaryConfig,
    T5Config,
    config_from_dict,
    config_from_json_file,
)
from .weights import bind_params, param_specs

#: model_type -> module; every rotary family member (ROTARY_CONFIGS) runs on ``llama``
ARCHITECTURES = {"gpt2": gpt2, **{name: llama for name in ROTARY_CONFIGS}, "bert": bert, "t5": t5}
DECODERS = ("gpt2", *ROTARY_CONFIGS)
ENCODER_DECODERS = ("t5",)  # encode(...) + decode(..., cache) instead of one forward signature
FORWARD = {name: mod.forward for name, mod in ARCHITECTURES.items()}
PARAMETER_SHAPES = {name: mod.parameter_shapes for name, mod in ARCHITECTURES.items()}

__all__ = [
    "attention",
    "bert",
    "cache",
    "gpt2",
    "llama",
    "t5",
    "weights",
    "T5Config",
    "ENCODER_DECODERS",
    "position_ids_from_mask",
    "growing_cache",
    "static_cache",
    "BERT_HEADS",
    "CONFIGS",
    "BertConfig",
    "GPT2Config",
    "LlamaConfig",
    "MistralConfig",
    "Qwen2Config",
    "Qwen3Config",
    "Phi3Config",
    "GemmaConfig",
    "RotaryConfig",
    "ROTARY_CONFIGS",
    "config_from_dict",
    "config_from_json_file",
    "bind_params",
    "param_specs",
    "ARCHITECTURES",
    "DECODERS",
    "FORWARD",
    "PARAMETER_SHAPES",
]
