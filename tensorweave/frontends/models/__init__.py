"""Models written once against ``xp``: GPT-2, Llama, BERT and T5 forward passes, configs, KV caches.

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
    BertConfig,
    GPT2Config,
    LlamaConfig,
    T5Config,
    config_from_dict,
    config_from_json_file,
)
from .weights import bind_params, param_specs

ARCHITECTURES = {"gpt2": gpt2, "llama": llama, "bert": bert, "t5": t5}
DECODERS = ("gpt2", "llama")
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
    "config_from_dict",
    "config_from_json_file",
    "bind_params",
    "param_specs",
    "ARCHITECTURES",
    "DECODERS",
    "FORWARD",
    "PARAMETER_SHAPES",
]
