"""Models written once against ``xp``: GPT-2, the rotary decoder family (Llama, Mistral, Qwen2,
Qwen3, Phi-3, Gemma, Gemma 2, Gemma 3, OLMo 2, Granite, StarCoder2, StableLM, GPT-NeoX, GPT-J,
CodeGen, GPT-Neo, Falcon, BLOOM, Phi, Mixtral, Qwen2-MoE: one module, ``llama``), the encoder family (BERT, RoBERTa, XLM-RoBERTa, CamemBERT,
Data2Vec-Text, DistilBERT, ELECTRA, ALBERT, RoFormer, I-BERT, LayoutLM, RemBERT: one module,
``bert``; ``ENCODERS``), the vision encoders (ViT,
DeiT, BEiT, Data2Vec-Vision, YOLOS: ``vit``; ``resnet``, ``convnext``, ``mobilenet`` (V1, V2), ``poolformer``, ``levit``, ``mobilevit``; ``VISION_ENCODERS``, ``pixel_values`` in) and T5 forward passes, configs, KV caches.

Each architecture module has ``parameter_shapes(cfg)`` (Hugging Face name -> shape),
``BASE_PREFIX`` (the base-model prefix of its names), ``IGNORED_SUFFIXES`` (checkpoint buffers
that are not parameters) and ``forward``. Decoders share one signature:
``forward(params, cfg, input_ids, attention_mask, position_ids, cache=None, offset=0)
-> (logits, cache)`` (see spec/models.md). The encoder-decoders (``ENCODER_DECODERS``: T5, and
the BART family on one module, ``bart``: bart, mbart, marian, m2m_100, blenderbot,
blenderbot-small, bigbird_pegasus) have ``encode`` and ``decode(..., cache, offset) -> (logits,
cache)`` instead.

``tensorweave.models.register`` adds a user's decoder to ``ARCHITECTURES`` / ``FORWARD`` /
``PARAMETER_SHAPES`` / ``CONFIGS`` at run time (and ``unregister`` removes it): read these tables
when dispatching, never copies taken at import.
"""

from . import (
    attention,
    bart,
    bert,
    big_bird,
    cache,
    clip,
    convbert,
    convnext,
    deberta,
    detr,
    gpt2,
    groupvit,
    layoutlmv3,
    levit,
    llama,
    longformer,
    mobilebert,
    mobilenet,
    mobilevit,
    owlvit,
    perceiver,
    poolformer,
    resnet,
    segformer,
    squeezebert,
    swin,
    t5,
    vit,
    weights,
    whisper,
    xlm,
    yolos,
)
from .attention import position_ids_from_mask
from .cache import growing_cache, static_cache
from .config import (
    BART_CONFIGS,
    BERT_HEADS,
    CONFIGS,
    ENCODER_CONFIGS,
    MULTIMODAL_CONFIGS,
    ROTARY_CONFIGS,
    T5_VARIANT_CONFIGS,
    VISION_CONFIGS,
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
    LongT5Config,
    MistralConfig,
    MixtralConfig,
    MT5Config,
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
    WhisperConfig,
    config_from_dict,
    config_from_json_file,
)
from .weights import bind_params, param_specs

#: encoder types (in ENCODER_CONFIGS) whose forward is not bert.py's (same signature and heads)
ENCODER_MODULES = {
    "xlm": xlm,
    "flaubert": xlm,
    "squeezebert": squeezebert,
    "mobilebert": mobilebert,
    "convbert": convbert,
}
#: the vision encoders (VISION_CONFIGS) -> module: forward(params, cfg, pixel_values, head=...)
VISION_MODULES = {
    "vit": vit,
    "deit": vit,
    "beit": vit,
    "data2vec-vision": vit,
    "resnet": resnet,
    "convnext": convnext,
    "swin": swin,
    "segformer": segformer,
    "mobilenet_v1": mobilenet,
    "mobilenet_v2": mobilenet,
    "poolformer": poolformer,
    "levit": levit,
    "yolos": yolos,  # vit.py's forward with detection tokens; yolos.py names its heads
    "mobilevit": mobilevit,
    "detr": detr,  # ResNet backbone + encoder-decoder transformer; pixel_values and pixel_mask in
}
#: model_type -> module; every rotary family member (ROTARY_CONFIGS) runs on ``llama``
ARCHITECTURES = {
    "gpt2": gpt2,
    "imagegpt": gpt2,  # GPT-2 with ImageGPT's switches (ImageGPTConfig)
    **{name: llama for name in ROTARY_CONFIGS},
    **{name: bert for name in ENCODER_CONFIGS},  # bert, roberta, distilbert, electra, ...
    **{name: deberta for name in ("deberta", "deberta-v2")},
    "big_bird": big_bird,
    "longformer": longformer,
    "perceiver": perceiver,
    **ENCODER_MODULES,  # the encoders with their own module (xlm, flaubert, ...)
    "t5": t5,
    **{name: t5 for name in T5_VARIANT_CONFIGS},  # mt5, longt5
    **{name: bart for name in BART_CONFIGS},  # bart, mbart, marian, m2m_100, blenderbot, ...
    "whisper": whisper,  # speech in (input_features), text out
    **VISION_MODULES,  # vit, deit, resnet, convnext: pixel_values in
    **{name: clip for name in MULTIMODAL_CONFIGS},  # clip: input_ids, attention_mask, pixel_values in
    "owlvit": owlvit,  # CLIP with OWL-ViT's tower switches
    "groupvit": groupvit,  # CLIP's text tower, a grouping vision tower
    "layoutlmv3": layoutlmv3,  # input_ids, bbox, attention_mask and (optionally) pixel_values in
}
ENCODERS = tuple(ENCODER_CONFIGS)  # forward(..., head=...) -> dict of the head's outputs
VISION_ENCODERS = tuple(VISION_CONFIGS)  # forward(params, cfg, pixel_values, head=...) -> dict
# text + image: forward(params, cfg, input_ids, attention_mask, pixel_values, head=...) -> dict
MULTIMODAL = (*MULTIMODAL_CONFIGS, "layoutlmv3")  # layoutlmv3.py: also bbox, pixel_values optional
DECODERS = ("gpt2", "imagegpt", *ROTARY_CONFIGS)
# encode(...) + decode(..., cache) instead of one forward signature
ENCODER_DECODERS = ("t5", *T5_VARIANT_CONFIGS, *BART_CONFIGS, "whisper")
FORWARD = {name: mod.forward for name, mod in ARCHITECTURES.items()}
PARAMETER_SHAPES = {name: mod.parameter_shapes for name, mod in ARCHITECTURES.items()}

__all__ = [
    "attention",
    "bart",
    "BART_CONFIGS",
    "bert",
    "convbert",
    "mobilebert",
    "squeezebert",
    "xlm",
    "ENCODER_MODULES",
    "cache",
    "gpt2",
    "llama",
    "t5",
    "weights",
    "T5Config",
    "MT5Config",
    "LongT5Config",
    "T5_VARIANT_CONFIGS",
    "WhisperConfig",
    "whisper",
    "vit",
    "VISION_CONFIGS",
    "VISION_ENCODERS",
    "clip",
    "owlvit",
    "groupvit",
    "layoutlmv3",
    "MULTIMODAL",
    "MULTIMODAL_CONFIGS",
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
