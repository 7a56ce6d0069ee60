"""Models written once against ``xp``: GPT-2 and Llama forward passes, configs, KV caches."""
from . import attention, gpt2, llama
from .config import CONFIGS, GPT2Config, LlamaConfig, config_from_dict, config_from_json_file

FORWARD = {"gpt2": gpt2.forward, "llama": llama.forward}
PARAMETER_SHAPES = {"gpt2": gpt2.parameter_shapes, "llama": llama.parameter_shapes}

__all__ = ["attention", "gpt2", "llama", "CONFIGS", "GPT2Config", "LlamaConfig", "config_from_dict",
           "config_from_json_file", "FORWARD", "PARAMETER_SHAPES"]
