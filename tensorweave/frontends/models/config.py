"""Model configs compatible with Hugging Face ``config.json`` fields (gpt2, llama).

``config_from_dict(d)`` dispatches on ``model_type``; unknown types and invalid fields raise a
``ValueError`` naming the field and the fix.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"config field `{name}` must be a positive integer, got {value!r}")


@dataclass
class GPT2Config:
    """GPT-2: learned positions, pre-LayerNorm blocks, gelu (tanh) MLP, lm_head tied to wte."""

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    layer_norm_epsilon: float = 1e-5
    activation_function: str = "gelu_new"
    scale_attn_weights: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: Any = 50256
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True
    model_type: str = "gpt2"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            _positive(name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(f"config field `n_embd` ({self.n_embd}) must be divisible by `n_head` ({self.n_head})")
        if self.activation_function not in ("gelu_new", "gelu", "gelu_pytorch_tanh", "relu"):
            raise ValueError(f"config field `activation_function` {self.activation_function!r} is not supported; "
                             "use gelu_new, gelu, gelu_pytorch_tanh or relu")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def num_key_value_heads(self) -> int:
        return self.n_head


@dataclass
class LlamaConfig:
    """Llama (SmolLM2): RMSNorm, rotary embeddings, grouped-query attention, SwiGLU."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    hidden_act: str = "silu"
    attention_bias: bool = False
    mlp_bias: bool = False
    tie_word_embeddings: bool = False
    bos_token_id: int | None = 1
    eos_token_id: Any = 2
    pad_token_id: int | None = None
    rope_scaling: dict | None = None
    model_type: str = "llama"

    def __post_init__(self) -> None:
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads"):
            _positive(name, getattr(self, name))
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(f"config field `hidden_size` ({self.hidden_size}) must be divisible by "
                                 f"`num_attention_heads` ({self.num_attention_heads})")
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"config field `num_attention_heads` ({self.num_attention_heads}) must be a multiple of "
                             f"`num_key_value_heads` ({self.num_key_value_heads})")
        if self.hidden_act != "silu":
            raise ValueError(f"config field `hidden_act` {self.hidden_act!r} is not supported; use silu")
        if self.rope_scaling not in (None, {}) and (self.rope_scaling or {}).get("rope_type", "default") != "default":
            raise ValueError(f"config field `rope_scaling` {self.rope_scaling!r} is not supported yet; use None")


CONFIGS = {"gpt2": GPT2Config, "llama": LlamaConfig}


def config_from_dict(d: dict) -> Any:
    """A config from a Hugging Face config dict; unknown keys are ignored, known ones validated."""
    if not isinstance(d, dict):
        raise ValueError(f"a model config must be a dict, got {type(d).__name__}")
    model_type = d.get("model_type")
    if model_type not in CONFIGS:
        raise ValueError(f"config field `model_type` {model_type!r} is not supported; supported: {sorted(CONFIGS)}")
    cls = CONFIGS[model_type]
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in d.items() if k in names}
    if model_type == "llama" and "rope_parameters" in d and "rope_theta" not in d:
        kwargs["rope_theta"] = float((d["rope_parameters"] or {}).get("rope_theta", 10000.0))
    return cls(**kwargs)


def config_from_json_file(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None
    return config_from_dict(data)
