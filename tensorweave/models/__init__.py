"""Loading models: Hugging Face checkpoint directories (safetensors) and live ``transformers`` models.

A :class:`Model` is a config plus a flat dict of numpy parameters with Hugging Face names,
checked against the architecture's expected names and shapes (missing, unexpected or mis-shaped
tensors are one error listing them; nothing is silently initialised).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..frontends.models import FORWARD, PARAMETER_SHAPES, config_from_dict, config_from_json_file
from ..ir import safetensors_io
from ..ir.types import IRError


@dataclass
class Model:
    config: Any
    params: dict[str, np.ndarray]

    @property
    def model_type(self) -> str:
        return self.config.model_type

    @property
    def forward(self) -> Any:
        return FORWARD[self.model_type]

    def num_parameters(self) -> int:
        return int(sum(v.size for v in self.params.values()))


def check_params(config: Any, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep the expected tensors; raise one error listing missing, mis-shaped (and unexpected) ones."""
    want = PARAMETER_SHAPES[config.model_type](config)
    ignorable = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    missing = sorted(k for k in want if k not in params)
    bad = sorted(f"{k}: {tuple(params[k].shape)} != {want[k]}" for k in want if k in params
                 and tuple(params[k].shape) != tuple(want[k]))
    extra = sorted(k for k in params if k not in want and k not in ignorable and not k.endswith((".attn.bias",
                                                                                                ".attn.masked_bias",
                                                                                                "rotary_emb.inv_freq")))
    if missing or bad or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if bad:
            parts.append(f"mis-shaped {bad[:8]}")
        if extra:
            parts.append(f"unexpected {extra[:8]}{' ...' if len(extra) > 8 else ''}")
        raise IRError(f"checkpoint does not match the {config.model_type} config: " + "; ".join(parts))
    return {k: np.asarray(params[k]) for k in want}


def from_transformers(hf_model: Any) -> Model:
    """From a live ``transformers`` PyTorch model: its config and state dict (converted once)."""
    config = config_from_dict(hf_model.config.to_dict())
    state = {k: v.detach().cpu().float().numpy() if v.dtype.is_floating_point else v.detach().cpu().numpy()
             for k, v in hf_model.state_dict().items()}
    return Model(config, check_params(config, state))


def from_pretrained(path: str) -> Model:
    """From a checkpoint directory: config.json + model.safetensors (or a sharded index)."""
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise IRError(f"{path} has no config.json; pass a Hugging Face checkpoint directory")
    config = config_from_json_file(cfg_path)
    index = os.path.join(path, "model.safetensors.index.json")
    single = os.path.join(path, "model.safetensors")
    params: dict = {}
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map", {})
        for shard in sorted(set(weight_map.values())):
            tensors, _ = safetensors_io.load_file(os.path.join(path, shard))
            params.update(tensors)
    elif os.path.isfile(single):
        params, _ = safetensors_io.load_file(single)
    else:
        raise IRError(f"{path} has no model.safetensors; pytorch_model.bin checkpoints are not loaded "
                      "(convert them to safetensors)")
    params = {k: (v.astype(np.float32) if v.dtype.kind == "f" or v.dtype.name == "bfloat16" else v)
              for k, v in params.items()}
    return Model(config, check_params(config, params))
