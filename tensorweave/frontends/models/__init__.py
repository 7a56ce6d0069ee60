"""Models written once against ``xp``: GPT-2, the rotary decoder family (Llama, Mistral, Qwen2,
Qwen3, Phi-3, Gemma, Gemma 2, Gemma 3, OLMo 2, Granite, StarCoder2, StableLM, GPT-NeoX, GPT-J,
CodeGen, GPT-Neo, Falcon, BLOOM, Phi, Mixtral, Qwen2-MoE: one module, ``llama``), the encoder family (BERT, RoBERTa, XLM-RoBERTa, CamemBERT,
Data2Vec-Text, DistilBERT, ELECTRA: one module, ``bert``; ``ENCODERS``) and T5 forward passes,
configs, KV caches.

Each architecture module has ``parameter_shapes(cfg)`` (Hugging Face name -> shape),
``BASE_PREFIX`` (the base-model prefix of its names), ``IGNORED_SUFFIXES`` (checkpoint buffers
that are not parameters) and ``forward``. Decoders share one signature:
``forward(params, cfg, input_ids, attention_mask, position_ids, cache=None, offset=0)
-> (logits, cache)`` (see spec/models.md). T5 (``ENCODER_DECODERS``) has ``encode`` and
``decode(..., cache, offset) -> (logits, cache)`` instead.

``tensorweave.models.register`` adds a user's decoder to ``ARCHITECTURES`` / ``FORWARD`` /
``PARAMETER_SHAPES`` / ``CONFIGS`` at run time (and ``unregister`` removes it): read these tables
when dispatching, never copies taken at import.
"""

from . import attention, bert, cache, gpt2, llama, t5, weights
from .attention import position_ids_from_mask
from .cache import growing_cache, static_cache
from .config import (
    BERT_HEADS,
    CONFIGS,
    ENCODER_CONFIGS,
    ROTARY_CONFIGS,
    BertConfig,
    BloomConfig,
    CodeGenConfig,
    FalconConfig,
    Gemma2Config,
    Gemma3TextConfig,
    GemmaConfig,
    GPT2Config,
    GPTJConfig,
    GPTNeoConfig,
    GPTNeoXConfig,
    GraniteConfig,
    LlamaConfig,
    MistralConfig,
    MixtralConfig,
    Olmo2Config,
    Phi3Config,
    PhiConfig,
    Qwen2Config,
    Qwen2MoeConfig,
    Qwen3Config,
    RotaryConfig,
    StableLmConfig,
    Starcoder2Config,
    T5Config,
    config_from_dict,
    config_from_json_file,
)
from .weights import bind_params, param_specs

#: model_type -> module; every rotary family member (ROTARY_CONFIGS) runs on ``llama``
ARCHITECTURES = {
    "gpt2": gpt2,
    **{name: llama for name in ROTARY_CONFIGS},
    **{name: bert for name in ENCODER_CONFIGS},  # bert, roberta, distilbert, electra, ...
    "t5": t5,
}
ENCODERS = tuple(ENCODER_CONFIGS)  # forward(..., head=...) -> dict of the head's outputs
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
    "ENCODER_CONFIGS",
    "ENCODERS",
    "BertConfig",
    "GPT2Config",
    "LlamaConfig",
    "MistralConfig",
    "Qwen2Config",
    "Qwen3Config",
    "Phi3Config",
    "GemmaConfig",
    "Gemma2Config",
    "Olmo2Config",
    "GraniteConfig",
    "Starcoder2Config",
    "StableLmConfig",
    "GPTNeoXConfig",
    "GPTJConfig",
    "PhiConfig",
    "MixtralConfig",
    "Qwen2MoeConfig",
    "Gemma3TextConfig",
    "CodeGenConfig",
    "GPTNeoConfig",
    "FalconConfig",
    "BloomConfig",
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
