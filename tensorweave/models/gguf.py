"""GGUF checkpoints (llama.cpp's format): config from the metadata, tensors dequantised to
float32 with the ``gguf`` package, tokenizer from the GGUF vocabulary, chat template.

The file is memory-mapped; tensors are dequantised one at a time, so the peak memory is the
float32 parameters plus the (mapped) quantised file.

Layout differences from Hugging Face that are undone here:

- names: ``blk.N.attn_q.weight`` -> ``model.layers.N.self_attn.q_proj.weight`` etc.;
- shapes: GGUF lists dims innermost first (``[in, out]``); the reader's arrays are ``[out, in]``;
- rotary layout: llama.cpp's converter permutes the rows of Q and K from Hugging Face's
  half-split rotary layout to interleaved pairs. Within each head (``rows = head_dim``),
  HF row ``i`` (``i < d/2``) is GGUF row ``2i`` and HF row ``d/2 + i`` is GGUF row ``2i + 1``;
  undoing it is ``w.reshape(heads, d/2, 2, in).swapaxes(1, 2).reshape(rows, in)`` (K uses the
  key/value head count).
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from ..frontends.models.config import LlamaConfig
from .tokenizer import Tokenizer

SUPPORTED_ARCHITECTURES = ("llama",)
_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.bias": "self_attn.o_proj.bias",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_TOP_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
# tokenizer.ggml.pre values whose pre-tokenizer splits every digit (llama.cpp: "\p{N}" first)
_DIGIT_SPLIT_PRE = ("smollm", "starcoder", "refact", "codeshell", "command-r", "exaone")
_PLAIN_PRE = ("gpt2", "gpt-2", "default", "mpt", "olmo")
_CONTROL = 3  # llama.cpp token type of control (special) tokens


def _open(path: str) -> Any:
    try:
        import gguf
    except ImportError:
        raise ModelLoadError("reading GGUF files needs the gguf package: pip install gguf") from None
    if not os.path.isfile(path):
        raise ModelLoadError(f"GGUF file {path} does not exist; check the path")
    try:
        return gguf.GGUFReader(path, "r")
    except Exception as exc:  # the reader raises ValueError/IndexError/struct errors on bad files
        raise ModelLoadError(
            f"{path} is not a readable GGUF file ({type(exc).__name__}: {str(exc)[:200]}); "
            "it may be truncated"
        ) from None


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def hf_name(gguf_name: str) -> str | None:
    """The Hugging Face Llama name of a GGUF tensor (None if it has none)."""
    if gguf_name in _TOP_NAMES:
        return _TOP_NAMES[gguf_name]
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", gguf_name)
    if m and m.group(2) in _LAYER_NAMES:
        return f"model.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}"
    return None


def unpermute_rotary(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row permutation (see the module docstring)."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def config_from_gguf(reader: Any, path: str = "GGUF") -> LlamaConfig:
    arch = _field(reader, "general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelLoadError(
            f"{path}: GGUF architecture {arch!r} is not supported; supported: {list(SUPPORTED_ARCHITECTURES)}"
        )
    a = arch + "."
    need = {
        "num_hidden_layers": "block_count",
        "hidden_size": "embedding_length",
        "intermediate_size": "feed_forward_length",
        "num_attention_heads": "attention.head_count",
    }
    missing = [a + k for k in need.values() if _field(reader, a + k) is None]
    if missing:
        raise ModelLoadError(
            f"{path}: GGUF metadata lacks {missing}; re-convert the model with llama.cpp's convert_hf_to_gguf.py"
        )
    scaling = _field(reader, a + "rope.scaling.type")
    if scaling not in (None, "none"):
        raise ModelLoadError(
            f"{path}: GGUF rope scaling {scaling!r} is not supported; only plain rotary embeddings"
        )
    tokens = _field(reader, "tokenizer.ggml.tokens") or []
    kw: dict = {k: int(_field(reader, a + v)) for k, v in need.items()}
    names = {t.name for t in reader.tensors}
    heads = kw["num_attention_heads"]
    head_dim = _field(reader, a + "attention.key_length") or _field(reader, a + "rope.dimension_count")
    kw.update(
        num_key_value_heads=int(_field(reader, a + "attention.head_count_kv", heads)),
        head_dim=int(head_dim) if head_dim else None,
        max_position_embeddings=int(_field(reader, a + "context_length", 2048)),
        rms_norm_eps=float(_field(reader, a + "attention.layer_norm_rms_epsilon", 1e-6)),
        rope_theta=float(_field(reader, a + "rope.freq_base", 10000.0)),
        vocab_size=int(_field(reader, a + "vocab_size", len(tokens))),
        tie_word_embeddings="output.weight" not in names,
        attention_bias="blk.0.attn_q.bias" in names,
        bos_token_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_token_id=_field(reader, "tokenizer.ggml.eos_token_id"),
        pad_token_id=_field(reader, "tokenizer.ggml.padding_token_id"),
        architectures=["LlamaForCausalLM"],
    )
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if kw[k] is not None:
            kw[k] = int(kw[k])
    try:
        return LlamaConfig(**kw)
    except ValueError as exc:
        raise ModelLoadError(f"{path}: GGUF metadata gives an invalid config: {exc}") from None


def params_from_gguf(reader: Any, cfg: LlamaConfig, path: str = "GGUF") -> dict[str, np.ndarray]:
    """Every tensor dequantised to float32 under its Hugging Face name (Q/K rows un-permuted).
    Tensors without a Hugging Face name are returned under their GGUF name, so the shape check
    lists them as unexpected."""
    from gguf import GGMLQuantizationType, quants

    out: dict[str, np.ndarray] = {}
    for t in reader.tensors:
        name = hf_name(t.name) or t.name
        try:
            if t.tensor_type in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                w = np.array(t.data, dtype=np.float32)
            else:
                w = quants.dequantize(t.data, t.tensor_type)
        except NotImplementedError:
            raise ModelLoadError(
                f"{path}: tensor {t.name} uses quantisation {t.tensor_type.name}, which the gguf package "
                "cannot dequantise"
            ) from None
        w = np.ascontiguousarray(w, dtype=np.float32).reshape([int(d) for d in reversed(t.shape)])
        if name.endswith(("self_attn.q_proj.weight", "self_attn.q_proj.bias")):
            w = unpermute_rotary(w, cfg.num_attention_heads)
        elif name.endswith(("self_attn.k_proj.weight", "self_attn.k_proj.bias")):
            w = unpermute_rotary(w, cfg.num_key_value_heads)
        out[name] = w
    return out


def tokenizer_from_gguf(reader: Any, path: str = "GGUF") -> Tokenizer:
    """A byte-level BPE tokenizer from ``tokenizer.ggml.*`` plus the chat template."""
    model = _field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise ModelLoadError(
            f"{path}: GGUF tokenizer model {model!r} is not supported; only byte-level BPE ('gpt2')"
        )
    pre = _field(reader, "tokenizer.ggml.pre", "default")
    if pre not in _DIGIT_SPLIT_PRE + _PLAIN_PRE:
        raise ModelLoadError(
            f"{path}: GGUF pre-tokenizer {pre!r} is not supported; supported: "
            f"{sorted(_DIGIT_SPLIT_PRE + _PLAIN_PRE)}"
        )
    tokens = list(_field(reader, "tokenizer.ggml.tokens"))
    merges = list(_field(reader, "tokenizer.ggml.merges") or [])
    types = _field(reader, "tokenizer.ggml.token_type") or []
    special = [tok for tok, ty in zip(tokens, types) if ty == _CONTROL]

    def tok(key: str) -> str | None:
        i = _field(reader, key)
        return tokens[int(i)] if i is not None and 0 <= int(i) < len(tokens) else None

    return Tokenizer.from_bpe(
        tokens,
        merges,
        special,
        split_digits=pre in _DIGIT_SPLIT_PRE,
        chat_template=_field(reader, "tokenizer.chat_template"),
        bos_token=tok("tokenizer.ggml.bos_token_id"),
        eos_token=tok("tokenizer.ggml.eos_token_id"),
        pad_token=tok("tokenizer.ggml.padding_token_id"),
        padding_side="left",
    )


def read_gguf(path: str) -> tuple[LlamaConfig, dict[str, np.ndarray], Tokenizer]:
    """``(config, float32 params with HF names, tokenizer)`` of a GGUF file."""
    reader = _open(path)
    cfg = config_from_gguf(reader, path)
    tokenizer = tokenizer_from_gguf(reader, path)
    params = params_from_gguf(reader, cfg, path)
    return cfg, params, tokenizer
