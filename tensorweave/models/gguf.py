"""GGUF checkpoints (llama.cpp's format): config from the metadata, tensors dequantised to
float32 with the ``gguf`` package, tokenizer from the GGUF vocabulary, chat template.

The file is memory-mapped; tensors are dequantised one at a time, so the peak memory is the
float32 parameters plus the (mapped) quantised file.

Layout differences from Hugging Face that are undone here:

- names: ``blk.N.attn_q.weight`` -> ``model.layers.N.self_attn.q_proj.weight`` etc.;
- shapes: GGUF lists dims innermost first (``[in, out]``); the reader's arrays are ``[out, in]``;
- rotary layout (architecture ``llama`` only; ``qwen2`` / ``qwen3`` files keep Hugging Face's
  half-split rows): llama.cpp's converter permutes the rows of Q and K from Hugging Face's
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
from ..frontends.models.config import LlamaConfig, Qwen2Config, Qwen3Config, RotaryConfig
from ..frontends.models.weights import BlockQuantized, pack_siblings
from ..log import progress
from .tokenizer import Tokenizer

# GGUF architecture -> (config class, Hugging Face class). Mistral 7B files use "llama" (llama.cpp
# converts MistralForCausalLM to it, without the sliding window).
_ARCH_CONFIGS: dict[str, tuple[type, str]] = {
    "llama": (LlamaConfig, "LlamaForCausalLM"),
    "qwen2": (Qwen2Config, "Qwen2ForCausalLM"),
    "qwen3": (Qwen3Config, "Qwen3ForCausalLM"),
}
SUPPORTED_ARCHITECTURES = tuple(_ARCH_CONFIGS)
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
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
}
_TOP_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
# tokenizer.ggml.pre values whose pre-tokenizer splits every digit (llama.cpp: "\p{N}" first)
_DIGIT_SPLIT_PRE = ("smollm", "starcoder", "refact", "codeshell", "command-r", "exaone")
_PLAIN_PRE = ("gpt2", "gpt-2", "default", "mpt", "olmo")
# pre-tokenizers given by a split regex (then byte-level without its own regex), as in the models'
# tokenizer.json: Qwen2/2.5/3 split letters, single digits, punctuation runs and newlines
_REGEX_PRE = {
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+",
}
_CONTROL = 3  # llama.cpp token type of control (special) tokens


# GGUF value type -> scalar size in bytes (STRING = 8, ARRAY = 9 are variable)
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_MAX_DIMS = 8


def check_gguf_structure(path: str) -> None:
    """Walk a GGUF file's header, metadata and tensor infos, checking that every count and length
    fits in the bytes that remain, before the ``gguf`` reader (which trusts them: a corrupt array
    length makes it loop, allocating, for a very long time) sees the file. Raises one
    ModelLoadError naming the offset and what is wrong."""
    import mmap

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 24:
            raise ModelLoadError(
                f"{path} is not a readable GGUF file (file too short: {size} bytes); it is truncated or corrupt"
            )
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _walk_gguf(path, data, size)


def _walk_gguf(path: str, data: Any, size: int) -> None:
    import struct

    def bad(offset: int, what: str) -> ModelLoadError:
        return ModelLoadError(
            f"{path} is not a readable GGUF file ({what} at byte {offset}); it is truncated or corrupt"
        )

    if data[:4] != b"GGUF":
        raise bad(0, "no GGUF header")
    endian = "<"
    (version,) = struct.unpack_from("<I", data, 4)
    if version & 0xFFFF == 0:  # a big-endian file
        endian = ">"
        (version,) = struct.unpack_from(">I", data, 4)
    if version not in (2, 3):
        raise bad(4, f"unsupported GGUF version {version}")
    pos = 8

    def take(fmt: str) -> int:
        nonlocal pos
        n = struct.calcsize(fmt)
        if pos + n > size:
            raise bad(pos, "the file ends inside a field")
        (value,) = struct.unpack_from(endian + fmt, data, pos)
        pos += n
        return value

    def skip(n: int, what: str) -> None:
        nonlocal pos
        if n < 0 or pos + n > size:
            raise bad(pos, f"{what} of {n} bytes runs past the end of the {size}-byte file")
        pos += n

    def string(what: str) -> None:
        skip(take("Q"), what)

    def value(vtype: int, what: str, depth: int = 0) -> None:
        if vtype in _SCALAR_SIZES:
            skip(_SCALAR_SIZES[vtype], what)
        elif vtype == 8:
            string(what)
        elif vtype == 9 and depth < 2:
            itype, count = take("I"), take("Q")
            if itype in _SCALAR_SIZES:
                skip(count * _SCALAR_SIZES[itype], f"{what} (an array of {count} items)")
                return
            least = 8 if itype == 8 else 12
            if count * least > size - pos:
                raise bad(pos, f"{what} claims {count} items, more than the file can hold")
            for _ in range(count):
                value(itype, what, depth + 1)
        else:
            raise bad(pos, f"{what} has unknown value type {vtype}")

    n_tensors, n_kv = take("Q"), take("Q")
    if n_kv * 13 > size - pos or n_tensors * 24 > size - pos:
        raise bad(
            8, f"the header claims {n_tensors} tensors and {n_kv} metadata keys, more than the file holds"
        )
    for i in range(n_kv):
        start = pos
        string(f"metadata key {i}")
        key = data[start + 8 : pos].decode("utf-8", "replace")[:80]
        value(take("I"), f"metadata value {key!r}")
    for i in range(n_tensors):
        string(f"tensor info {i} name")
        dims = take("I")
        if dims > _MAX_DIMS:
            raise bad(pos, f"tensor info {i} has {dims} dimensions")
        skip(8 * dims + 4 + 8, f"tensor info {i}")


def _open(path: str) -> Any:
    try:
        import gguf
    except ImportError:
        raise ModelLoadError("reading GGUF files needs the gguf package: pip install gguf") from None
    if not os.path.isfile(path):
        raise ModelLoadError(f"GGUF file {path} does not exist; check the path")
    check_gguf_structure(path)
    try:
        return gguf.GGUFReader(path, "r")
    except Exception as exc:  # the reader raises ValueError/IndexError/struct errors on bad files
        raise ModelLoadError(
            f"{path} is not a readable GGUF file ({type(exc).__name__}: {str(exc)[:200]}); "
            "it may be truncated"
        ) from None


_INTS = ("UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "UINT64", "INT64")
_KINDS = {
    "int": _INTS,
    "float": ("FLOAT32", "FLOAT64", *_INTS),
    "str": ("STRING",),
    "bool": ("BOOL",),
}
_KIND_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean"}
_KIND_PLURALS = {"int": "integers", "float": "numbers", "str": "strings", "bool": "booleans"}


def _field(reader: Any, key: str, default: Any = None, kind: str = "str", path: str = "GGUF") -> Any:
    """A metadata value of the expected GGUF type (``kind``: int / float / str / bool, or an array
    of one of them: ``"str[]"``); a value of another type is a ModelLoadError naming the key."""
    f = reader.fields.get(key)
    if f is None:
        return default
    types = [getattr(t, "name", str(t)) for t in f.types]
    array = kind.endswith("[]")
    base = kind[:-2] if array else kind
    want = ("ARRAY of " if array else "") + "/".join(_KINDS[base])
    shape_ok = (len(types) == 2 and types[0] == "ARRAY") if array else len(types) == 1
    if not shape_ok or types[-1] not in _KINDS[base]:
        got = " of ".join(types) or "no type"
        raise ModelLoadError(
            f"{path}: GGUF metadata key {key!r} must be "
            f"{'an array of ' + _KIND_PLURALS[base] if array else _KIND_NAMES[base]} ({want}), but it is {got}; "
            "re-convert the model "
            "with llama.cpp's convert_hf_to_gguf.py"
        )
    try:
        value = f.contents()
    except UnicodeDecodeError:
        raise ModelLoadError(f"{path}: GGUF metadata key {key!r} holds a string that is not UTF-8") from None
    except (IndexError, ValueError, TypeError) as exc:
        raise ModelLoadError(
            f"{path}: GGUF metadata key {key!r} cannot be read ({type(exc).__name__})"
        ) from None
    if base == "float" and not array:
        value = float(value)
    return value


def _count(reader: Any, key: str, path: str, default: Any = None) -> Any:
    """A positive integer metadata value (a size or a count)."""
    value = _field(reader, key, None, "int", path)
    if value is None:
        return default
    if int(value) <= 0:
        raise ModelLoadError(f"{path}: GGUF metadata key {key!r} must be a positive integer, got {value}")
    return int(value)


def hf_name(gguf_name: str) -> str | None:
    """The Hugging Face Llama name of a GGUF tensor (None if it has none)."""
    if gguf_name in _TOP_NAMES:
        return _TOP_NAMES[gguf_name]
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", gguf_name)
    if m and m.group(2) in _LAYER_NAMES:
        return f"model.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}"
    return None


def unpermute_rotary(w: Any, heads: int) -> Any:
    """Undo llama.cpp's Q/K row permutation (see the module docstring); a block-quantized weight
    keeps its blocks (whole rows move)."""
    rows = w.shape[0]
    if isinstance(w, BlockQuantized):
        return w.rows(unpermute_rotary(np.arange(rows), heads))
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


#: GGUF block types kept quantized by ``from_gguf(..., quantized=True)``: name -> (bytes per block of
#: 32, bits, zero point, has a block minimum)
KEPT_QUANTIZED = {"Q4_0": (18, 4, 8, False), "Q4_1": (20, 4, 0, True), "Q8_0": (34, 8, 128, False)}


def block_quantized(data: np.ndarray, kind: str, shape: list[int]) -> BlockQuantized:
    """A GGUF Q4_0 / Q4_1 / Q8_0 matrix (raw blocks, ``[rows, bytes]`` uint8) as a
    :class:`BlockQuantized` without dequantising: fp16 scale (and Q4_1's fp16 minimum) per block of
    32 become float32 scales / offsets; 4-bit codes (GGUF: element ``j`` in the low nibble of byte
    ``j``, element ``j + 16`` in its high nibble) are re-packed in order, two per byte, into uint32
    words; Q8_0's int8 codes are stored ``+ 128`` with zero point 128. Exact:
    ``dequantize()`` equals the gguf package's dequantisation."""
    size, bits, zero_point, has_min = KEPT_QUANTIZED[kind]
    rows, cols = shape
    if cols % 32 or data.shape != (rows, cols // 32 * size):
        raise ValueError(
            f"{kind} data of shape {data.shape} does not hold {rows} rows of {cols // 32} blocks"
        )
    blocks = np.ascontiguousarray(data).reshape(rows, cols // 32, size)
    scales = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    start = 4 if has_min else 2
    offsets = (
        blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        if has_min
        else np.zeros_like(scales)
    )
    body = blocks[..., start:]
    if bits == 4:
        codes = np.concatenate([body & 0x0F, body >> 4], axis=-1)  # elements 0..31 in order
        packed = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)
    else:
        packed = (body.view(np.int8).astype(np.int16) + 128).astype(np.uint8)
    words = np.ascontiguousarray(packed).view("<u4").astype(np.uint32)
    return BlockQuantized(words, scales, offsets, bits, zero_point)


def config_from_gguf(reader: Any, path: str = "GGUF") -> RotaryConfig:
    arch = _field(reader, "general.architecture", path=path)
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
    missing = [a + k for k in need.values() if _count(reader, a + k, path) is None]
    if missing:
        raise ModelLoadError(
            f"{path}: GGUF metadata lacks {missing}; re-convert the model with llama.cpp's convert_hf_to_gguf.py"
        )
    scaling = _field(reader, a + "rope.scaling.type", path=path)
    if scaling not in (None, "none"):
        raise ModelLoadError(
            f"{path}: GGUF rope scaling {scaling!r} is not supported; only plain rotary embeddings"
        )
    tokens = _field(reader, "tokenizer.ggml.tokens", [], "str[]", path)
    kw: dict = {k: _count(reader, a + v, path) for k, v in need.items()}
    names = {t.name for t in reader.tensors}
    blocks = {int(m.group(1)) for m in (re.fullmatch(r"blk\.(\d+)\..+", n) for n in names) if m}
    if kw["num_hidden_layers"] != len(blocks):
        raise ModelLoadError(
            f"{path}: GGUF metadata key {a + 'block_count'!r} says {kw['num_hidden_layers']} blocks but the file "
            f"has tensors for {len(blocks)}; the file is corrupt or mis-converted"
        )
    heads = kw["num_attention_heads"]
    head_dim = _count(reader, a + "attention.key_length", path) or _count(
        reader, a + "rope.dimension_count", path
    )
    kw.update(
        num_key_value_heads=_count(reader, a + "attention.head_count_kv", path, heads),
        head_dim=head_dim,
        max_position_embeddings=_count(reader, a + "context_length", path, 2048),
        rms_norm_eps=_field(reader, a + "attention.layer_norm_rms_epsilon", 1e-6, "float", path),
        rope_theta=_field(reader, a + "rope.freq_base", 10000.0, "float", path),
        vocab_size=_count(reader, a + "vocab_size", path, len(tokens)),
        tie_word_embeddings="output.weight" not in names,
        architectures=[_ARCH_CONFIGS[arch][1]],
    )
    if arch in ("llama", "qwen3"):  # qwen2's q/k/v biases are implied by the architecture
        kw["attention_bias"] = "blk.0.attn_q.bias" in names
    for k, key in (
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_id", "tokenizer.ggml.eos_token_id"),
        ("pad_token_id", "tokenizer.ggml.padding_token_id"),
    ):
        value = _field(reader, key, None, "int", path)
        if value is not None and not 0 <= value < max(len(tokens), kw["vocab_size"] or 0):
            raise ModelLoadError(
                f"{path}: GGUF metadata key {key!r} is {value}, outside the vocabulary of {len(tokens)} tokens"
            )
        kw[k] = None if value is None else int(value)
    try:
        return _ARCH_CONFIGS[arch][0](**kw)
    except ValueError as exc:
        raise ModelLoadError(f"{path}: GGUF metadata gives an invalid config: {exc}") from None


def params_from_gguf(
    reader: Any, cfg: RotaryConfig, path: str = "GGUF", quantized: bool = False
) -> dict[str, Any]:
    """Every tensor dequantised to float32 under its Hugging Face name (Q/K rows un-permuted for
    the ``llama`` architecture); with ``quantized``, 2-D Q4_0 / Q4_1 / Q8_0 tensors stay block-quantized
    (:class:`BlockQuantized`, see :func:`block_quantized`).
    Tensors without a Hugging Face name are returned under their GGUF name, so the shape check
    lists them as unexpected."""
    from gguf import GGMLQuantizationType, quants

    out: dict[str, np.ndarray] = {}
    integer = {
        GGMLQuantizationType[n] for n in ("I8", "I16", "I32", "I64") if n in GGMLQuantizationType.__members__
    }
    for t in progress(reader.tensors, desc=f"loading {os.path.basename(path)}", unit="tensor"):
        name = hf_name(t.name) or t.name
        if t.tensor_type in integer:
            raise ModelLoadError(
                f"{path}: tensor {t.name} is stored as {t.tensor_type.name}, an integer type; Llama weights must "
                "be float or quantised float (F32, F16, BF16, Q*): the file is corrupt or mis-converted"
            )
        shape = [int(d) for d in reversed(t.shape)]
        try:
            w: Any
            if quantized and t.tensor_type.name in KEPT_QUANTIZED and len(shape) == 2:
                w = block_quantized(np.asarray(t.data), t.tensor_type.name, shape)
            elif t.tensor_type in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                w = np.ascontiguousarray(np.array(t.data, dtype=np.float32), dtype=np.float32).reshape(shape)
            else:
                w = quants.dequantize(t.data, t.tensor_type)
                w = np.ascontiguousarray(w, dtype=np.float32).reshape(shape)
        except NotImplementedError:
            raise ModelLoadError(
                f"{path}: tensor {t.name} uses quantisation {t.tensor_type.name}, which the gguf package "
                "cannot dequantise"
            ) from None
        except (ValueError, TypeError, IndexError, OverflowError, AssertionError) as exc:
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise ModelLoadError(
                f"{path}: tensor {t.name} ({t.tensor_type.name}, shape {shape}) cannot be read ({reason}); "
                "the file is truncated or corrupt"
            ) from None
        heads = (
            None
            if cfg.model_type != "llama"
            else cfg.num_attention_heads
            if name.endswith(("self_attn.q_proj.weight", "self_attn.q_proj.bias"))
            else cfg.num_key_value_heads
            if name.endswith(("self_attn.k_proj.weight", "self_attn.k_proj.bias"))
            else None
        )
        if heads is not None:
            if w.ndim == 0 or w.shape[0] % (2 * heads):
                raise ModelLoadError(
                    f"{path}: tensor {t.name} has shape {list(w.shape)}, whose {w.shape[0] if w.ndim else 0} "
                    f"rows do not split into {heads} heads of even size; the file is corrupt or mis-converted"
                )
            w = unpermute_rotary(w, heads)
        out[name] = w
    return pack_siblings(out)


def tokenizer_from_gguf(reader: Any, path: str = "GGUF") -> Tokenizer:
    """A byte-level BPE tokenizer from ``tokenizer.ggml.*`` plus the chat template."""
    model = _field(reader, "tokenizer.ggml.model", path=path)
    if model != "gpt2":
        raise ModelLoadError(
            f"{path}: GGUF tokenizer model {model!r} is not supported; only byte-level BPE ('gpt2')"
        )
    pre = _field(reader, "tokenizer.ggml.pre", "default", path=path)
    if pre not in _DIGIT_SPLIT_PRE + _PLAIN_PRE + tuple(_REGEX_PRE):
        raise ModelLoadError(
            f"{path}: GGUF pre-tokenizer {pre!r} is not supported; supported: "
            f"{sorted(_DIGIT_SPLIT_PRE + _PLAIN_PRE + tuple(_REGEX_PRE))}"
        )
    tokens = list(_field(reader, "tokenizer.ggml.tokens", [], "str[]", path))
    if not tokens:
        raise ModelLoadError(f"{path}: GGUF metadata lacks 'tokenizer.ggml.tokens'; re-convert the model")
    merges = list(_field(reader, "tokenizer.ggml.merges", [], "str[]", path))
    types = _field(reader, "tokenizer.ggml.token_type", [], "int[]", path)
    special = [tok for tok, ty in zip(tokens, types) if ty == _CONTROL]

    def tok(key: str) -> str | None:
        i = _field(reader, key, None, "int", path)
        return tokens[int(i)] if i is not None and 0 <= int(i) < len(tokens) else None

    try:
        tokenizer = Tokenizer.from_bpe(
            tokens,
            merges,
            special,
            split_digits=pre in _DIGIT_SPLIT_PRE,
            chat_template=_field(reader, "tokenizer.chat_template", path=path),
            bos_token=tok("tokenizer.ggml.bos_token_id"),
            eos_token=tok("tokenizer.ggml.eos_token_id"),
            pad_token=tok("tokenizer.ggml.padding_token_id"),
            padding_side="left",
        )
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    if pre in _REGEX_PRE:
        from tokenizers import Regex, pre_tokenizers

        tokenizer.backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(_REGEX_PRE[pre]), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    return tokenizer


def read_gguf(path: str, quantized: bool = False) -> tuple[RotaryConfig, dict[str, Any], Tokenizer]:
    """``(config, params with HF names, tokenizer)`` of a GGUF file: float32 params, or with
    ``quantized`` the Q4_0 / Q4_1 / Q8_0 matrices kept as :class:`BlockQuantized`."""
    reader = _open(path)
    cfg = config_from_gguf(reader, path)
    tokenizer = tokenizer_from_gguf(reader, path)
    params = params_from_gguf(reader, cfg, path, quantized)
    return cfg, params, tokenizer
