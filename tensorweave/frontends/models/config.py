"""Model configs compatible with Hugging Face ``config.json`` fields (gpt2, t5, the encoder family:
bert, roberta, xlm-roberta, camembert, data2vec-text, distilbert, electra, and the rotary
decoder family: llama, mistral, qwen2, qwen3, phi3, gemma, gemma2, olmo2, granite, starcoder2,
stablelm, gpt_neox, gptj, phi, mixtral, qwen2_moe).

``config_from_dict(d)`` (or ``GPT2Config.from_dict(d)``, ...) dispatches on ``model_type``;
unknown types and invalid fields raise a one-line ``ValueError`` naming the field and the fix.
Keys a config does not use (``architectures``, ``torch_dtype``, dropout rates, ...) are ignored;
``architectures`` is kept because it names the head a checkpoint was saved with.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"config field `{name}` must be a positive integer, got {value!r}")


def _positive_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"config field `{name}` must be a positive number, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# token-id fields: an int (or None); `eos_token_id` may also be a non-empty list of ints
TOKEN_ID_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
# rope_scaling / rope_parameters types Hugging Face knows, and those the rotary family implements
KNOWN_ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3", "su", "mrope")
ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3", "longrope", "su")


def check_token_id(name: str, value: Any, allow_list: bool = False) -> None:
    """``value`` is None, an int, or (``allow_list``) a non-empty list of ints; else a ValueError
    naming the field (a string like ``"37"`` is not read as the ids 3 and 7)."""
    if value is None or _is_int(value):
        return
    if allow_list and isinstance(value, list) and value and all(_is_int(v) for v in value):
        return
    kind = "an integer token id" + (" or a non-empty list of them" if allow_list else "")
    raise ValueError(f"config field `{name}` must be {kind}, got {value!r}")


def _check_field_types(cfg: Any) -> None:
    """JSON types of every field, from the dataclass annotations; one ValueError naming the field."""
    for f in dataclasses.fields(cfg):
        name, kind, value = f.name, str(f.type), getattr(cfg, f.name)
        if name in TOKEN_ID_FIELDS:
            check_token_id(name, value, allow_list=name == "eos_token_id")
            continue
        optional = kind.endswith(" | None")
        base = kind[: -len(" | None")] if optional else kind
        if value is None and optional:
            continue
        ok = {
            "int": _is_int(value),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
            "list": isinstance(value, list),
            "dict": isinstance(value, dict),
        }.get(base, True)
        if not ok:
            what = {
                "int": "an integer",
                "float": "a number",
                "bool": "a JSON boolean (true or false)",
                "str": "a string",
                "list": "a list",
                "dict": "an object (dict)",
            }[base]
            raise ValueError(
                f"config field `{name}` must be {what}{' or null' if optional else ''}, got {value!r}"
            )
    archs = getattr(cfg, "architectures", None)
    if archs is not None and not all(isinstance(a, str) for a in archs):
        raise ValueError(f"config field `architectures` must be a list of class names, got {archs!r}")


def _rope_number(name: str, key: str, value: Any, minimum: float | None = 0.0, strict: bool = True) -> float:
    """A number inside a rope dict (``> minimum``, or ``>=`` without ``strict``); else one ValueError."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
    try:
        ok = ok and abs(float(value)) < float("inf")
    except OverflowError:  # an integer too large for a float
        ok = False
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"config field `{name}` needs `{key}` to be a number{bound}, got {value!r}")
    return float(value)


def check_rope_scaling(value: Any, name: str = "rope_scaling", partial_rotary: bool = False) -> None:
    """None / {} / a dict whose ``rope_type`` (or ``type``) is one of :data:`ROPE_TYPES` with that
    type's parameters (Hugging Face's required keys):

    - ``linear`` / ``dynamic``: ``factor > 0``;
    - ``llama3``: ``factor > 0``, ``low_freq_factor > 0``, ``high_freq_factor > low_freq_factor``,
      ``original_max_position_embeddings`` a positive integer;
    - ``yarn``: ``factor > 0``, ``original_max_position_embeddings``; optional ``attention_factor > 0``,
      ``beta_fast`` / ``beta_slow`` / ``mscale`` / ``mscale_all_dim`` numbers, ``truncate`` a boolean.

    A ``partial_rotary_factor`` other than 1 is refused unless ``partial_rotary`` (the types with a
    ``partial_rotary_factor`` field read it: phi3, stablelm, gpt_neox, phi).
    A known other type is "not supported yet", an unknown one (or a non-dict) an error too."""
    if value is None or value == {}:
        return
    if not isinstance(value, dict):
        raise ValueError(
            f'config field `{name}` must be an object like {{"rope_type": "default"}} or null, got {value!r}'
        )
    kind = value.get("rope_type", value.get("type"))
    if not isinstance(kind, str):
        raise ValueError(f"config field `{name}` needs a string `rope_type` (or `type`), got {value!r}")
    if kind not in KNOWN_ROPE_TYPES:
        raise ValueError(
            f"config field `{name}` has an unknown rope type {kind!r}; Hugging Face's are {list(KNOWN_ROPE_TYPES)}"
        )
    if kind not in ROPE_TYPES:
        raise ValueError(
            f"config field `{name}` {value!r} is not supported yet; use one of the rope types {list(ROPE_TYPES)}"
        )
    partial = value.get("partial_rotary_factor", 1.0)
    if partial is not None:
        partial = _rope_number(name, "partial_rotary_factor", partial)
        if partial > 1 or (partial != 1 and not partial_rotary):
            raise ValueError(
                f"config field `{name}` has `partial_rotary_factor` {partial}; only 1.0 (rotate the whole "
                "head) is supported for this model type"
            )
    if kind == "default":
        return
    if kind in ("longrope", "su"):
        _check_longrope(value, name)
        return
    if "factor" not in value:
        raise ValueError(f"config field `{name}` of rope type {kind!r} needs a `factor`, got {value!r}")
    _rope_number(name, "factor", value["factor"])
    if kind in ("llama3", "yarn"):
        omp = value.get("original_max_position_embeddings")
        if not _is_int(omp) or omp <= 0:
            raise ValueError(
                f"config field `{name}` of rope type {kind!r} needs `original_max_position_embeddings` "
                f"(a positive integer), got {omp!r}"
            )
    if kind == "llama3":
        low = _rope_number(name, "low_freq_factor", value.get("low_freq_factor"))
        high = _rope_number(name, "high_freq_factor", value.get("high_freq_factor"))
        if high <= low:
            raise ValueError(
                f"config field `{name}` needs `high_freq_factor` ({high}) > `low_freq_factor` ({low})"
            )
    if kind == "yarn":
        if value.get("attention_factor") is not None:
            _rope_number(name, "attention_factor", value["attention_factor"])
        for key in ("beta_fast", "beta_slow", "mscale", "mscale_all_dim"):
            if value.get(key) is not None:
                _rope_number(name, key, value[key], None)
        if not isinstance(value.get("truncate", True), bool):
            raise ValueError(
                f"config field `{name}` needs `truncate` to be true or false, got {value['truncate']!r}"
            )


def _check_longrope(value: dict, name: str) -> None:
    """``longrope`` (``su``): ``short_factor`` / ``long_factor`` lists of positive numbers (their
    length, ``rotary_dim / 2``, is the config's check); optional ``factor``, ``attention_factor``
    > 0 and ``original_max_position_embeddings`` a positive integer."""
    for key in ("short_factor", "long_factor"):
        f = value.get(key)
        if not isinstance(f, list) or not f or not all(_is_number(x) and x > 0 for x in f):
            raise ValueError(
                f"config field `{name}` of rope type 'longrope' needs `{key}`: a list of positive numbers, "
                f"got {f!r}"
            )
    for key in ("factor", "attention_factor"):
        if value.get(key) is not None:
            _rope_number(name, key, value[key])
    omp = value.get("original_max_position_embeddings")
    if omp is not None and (not _is_int(omp) or omp <= 0):
        raise ValueError(
            f"config field `{name}` needs `original_max_position_embeddings` to be a positive integer, got {omp!r}"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _ConfigMixin:
    """``from_dict`` / ``from_json_file`` / ``to_dict`` shared by the config dataclasses."""

    model_type: str

    @classmethod
    def from_dict(cls, d: dict) -> Any:
        """A config from a Hugging Face config dict; its ``model_type`` must be this class's."""
        if not isinstance(d, dict):
            raise ValueError(f"a model config must be a dict, got {type(d).__name__}")
        want = cls.__dataclass_fields__["model_type"].default  # type: ignore[attr-defined]
        if d.get("model_type", want) != want:
            raise ValueError(
                f"config field `model_type` is {d.get('model_type')!r}, but {cls.__name__} "
                f"needs {want!r}; use config_from_dict to dispatch on model_type"
            )
        return config_from_dict({**d, "model_type": want})

    @classmethod
    def from_json_file(cls, path: str) -> Any:
        return cls.from_dict(_read_json(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_hf_dict(self) -> dict:
        """``to_dict`` under the type's own config.json names (:data:`FIELD_NAMES`: GPT-J's
        ``n_embd``, ``n_inner``, ``layer_norm_epsilon``, ...), as Hugging Face's config class reads
        them; the other fields keep their names."""
        d = self.to_dict()
        for key, field in FIELD_NAMES.get(self.model_type, {}).items():
            if field in d:
                d[key] = d.pop(field)
        return d


@dataclass
class GPT2Config(_ConfigMixin):
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
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    bos_token_id: int | None = 50256
    eos_token_id: Any = 50256
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True
    architectures: list | None = None
    model_type: str = "gpt2"

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            _positive(name, getattr(self, name))
        if self.n_inner is not None:
            _positive("n_inner", self.n_inner)
        _positive_float("layer_norm_epsilon", self.layer_norm_epsilon)
        if self.n_embd % self.n_head:
            raise ValueError(
                f"config field `n_embd` ({self.n_embd}) must be divisible by `n_head` ({self.n_head})"
            )
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(
                f"config field `activation_function` {self.activation_function!r} is not supported; "
                f"use one of {sorted(ACTIVATIONS)}"
            )
        if self.scale_attn_by_inverse_layer_idx:
            raise ValueError(
                "config field `scale_attn_by_inverse_layer_idx` is not supported; set it to false"
            )

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def hidden_size(self) -> int:
        return self.n_embd

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def num_attention_heads(self) -> int:
        return self.n_head

    @property
    def num_key_value_heads(self) -> int:
        return self.n_head

    @property
    def max_position_embeddings(self) -> int:
        return self.n_positions


#: role -> parameter name part of the rotary family (``llama.py``): ``embed``, ``layers`` (the layer
#: prefix), ``final_norm`` and ``head`` are full names; the rest follow ``layers + "{i}."``. The four
#: norm slots are ``pre_attn`` / ``post_attn`` (before / after attention), ``pre_mlp`` / ``post_mlp``;
#: an empty name means the slot has no norm (``pre_mlp`` empty with a parallel residual: the MLP
#: reads the attention's input).
ROTARY_NAMES: dict[str, str] = {
    "embed": "model.embed_tokens",
    "layers": "model.layers.",
    "final_norm": "model.norm",
    "head": "lm_head",
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "qkv": "self_attn.qkv_proj",
    "o": "self_attn.o_proj",
    "q_norm": "self_attn.q_norm",
    "k_norm": "self_attn.k_norm",
    "pre_attn": "input_layernorm",
    "post_attn": "",
    "pre_mlp": "post_attention_layernorm",
    "post_mlp": "",
    "gate": "mlp.gate_proj",
    "up": "mlp.up_proj",
    "down": "mlp.down_proj",
    "gate_up": "mlp.gate_up_proj",
    "fc_in": "mlp.c_fc",
    "fc_out": "mlp.c_proj",
    "pos_embed": "",  # learned position embeddings (``position_kind`` ``learned``)
    "embed_norm": "",  # a norm right after the embeddings (BLOOM)
}
#: mixture-of-experts names (Mixtral's): the router, one expert's prefix (``{e}``: its index) and
#: the expert's gate / up / down linears; an empty ``shared`` means no shared expert
MIXTRAL_MOE_NAMES: dict[str, str] = {
    "router": "block_sparse_moe.gate",
    "expert": "block_sparse_moe.experts.{e}.",
    "gate": "w1",
    "up": "w3",
    "down": "w2",
    "shared": "",
    "shared_gate": "",
}


@dataclass
class RotaryConfig(_ConfigMixin):
    """The rotary decoder family (``llama.py``): fields every member shares, with Hugging Face's
    names, and the switches that tell the members apart (class attributes and properties, not
    config.json fields). Each member is a subclass with its own defaults and extra fields:
    :class:`LlamaConfig`, :class:`MistralConfig`, :class:`Qwen2Config`, :class:`Qwen3Config`,
    :class:`Phi3Config`, :class:`GemmaConfig`, :class:`Gemma2Config`, :class:`Olmo2Config`,
    :class:`GraniteConfig`, :class:`Starcoder2Config`, :class:`StableLmConfig`,
    :class:`GPTNeoXConfig`, :class:`GPTJConfig`, :class:`PhiConfig`, :class:`MixtralConfig`,
    :class:`Qwen2MoeConfig`."""

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
    tie_word_embeddings: bool = False
    bos_token_id: int | None = 1
    eos_token_id: Any = 2
    pad_token_id: int | None = None
    rope_scaling: dict | None = None
    architectures: list | None = None
    model_type: str = "llama"

    #: accepted ``hidden_act`` values (the MLP's activation)
    ACTIVATIONS: ClassVar[tuple[str, ...]] = ("silu",)
    #: q/k norm before rope: None, ``head_rms`` (RMSNorm over head_dim, qwen3), ``full_rms`` (RMSNorm
    #: over the whole projection, olmo2), ``head_layer`` (one LayerNorm over head_dim, phi),
    #: ``per_head_layer`` (a bias-free LayerNorm per head, stablelm)
    qk_norm: ClassVar[str | None] = None
    #: fused ``self_attn.qkv_proj`` and ``mlp.gate_up_proj`` weights, phi3
    fused_projections: ClassVar[bool] = False
    #: ``separate`` / fused (``fused_projections``) q, k, v, or ``interleaved``: one projection whose
    #: rows are ``[q_h; k_h; v_h]`` per head (gpt_neox)
    qkv_layout: ClassVar[str] = "separate"
    #: ``gated`` (``down(act(gate) * up)``), ``plain`` (``fc_out(act(fc_in))``) or ``moe`` (mixtral)
    mlp_kind: ClassVar[str] = "gated"
    #: ``rms`` (RMSNorm) or ``layer`` (LayerNorm with bias)
    norm_kind: ClassVar[str] = "rms"
    #: RMSNorm weight used as ``offset + w`` (gemma: 1)
    norm_offset: ClassVar[float] = 0.0
    #: embeddings multiplied by ``sqrt(hidden_size)`` (gemma)
    scale_embeddings: ClassVar[bool] = False
    #: the base-model prefix of the parameter names
    base_prefix: ClassVar[str] = "model."
    #: rope pairs: ``half`` (dim ``j`` with ``j + d/2``, Hugging Face's rotate_half) or
    #: ``interleaved`` (dims ``2i`` and ``2i + 1``, GPT-J)
    rope_layout: ClassVar[str] = "half"
    #: mixture-of-experts parameter names (``mlp_kind`` ``moe``)
    moe_names: ClassVar[dict[str, str]] = MIXTRAL_MOE_NAMES
    #: ``rope`` (rotary q / k), ``learned`` (``h += pos_embed[position_ids]``, GPT-Neo) or ``alibi``
    #: (a per-head linear score bias, BLOOM)
    position_kind: ClassVar[str] = "rope"

    def __post_init__(self) -> None:
        _check_field_types(self)
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
        ):
            _positive(name, getattr(self, name))
        _positive_float("rms_norm_eps", self.rms_norm_eps)
        _positive_float("rope_theta", self.rope_theta)
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(
                    f"config field `hidden_size` ({self.hidden_size}) must be divisible by "
                    f"`num_attention_heads` ({self.num_attention_heads})"
                )
            self.head_dim = self.hidden_size // self.num_attention_heads
        _positive("head_dim", self.head_dim)
        if self.head_dim % 2 and self.position_kind == "rope":
            raise ValueError(f"config field `head_dim` ({self.head_dim}) must be even for rotary embeddings")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"config field `num_attention_heads` ({self.num_attention_heads}) must be a multiple of "
                f"`num_key_value_heads` ({self.num_key_value_heads})"
            )
        if self.hidden_act not in self.ACTIVATIONS:
            raise ValueError(
                f"config field `hidden_act` {self.hidden_act!r} is not supported for {self.model_type}; "
                f"use {' or '.join(self.ACTIVATIONS)}"
            )
        check_rope_scaling(self.rope_scaling, partial_rotary=hasattr(self, "partial_rotary_factor"))
        rs = self.rope_scaling or {}
        if rs.get("rope_type", rs.get("type")) in ("longrope", "su"):
            half = self.rotary_dim // 2
            for key in ("short_factor", "long_factor"):
                if len(rs[key]) != half:
                    raise ValueError(
                        f"config field `rope_scaling` needs `{key}` of length rotary_dim / 2 ({half}), "
                        f"got {len(rs[key])}"
                    )

    def layer_rope(self, layer: int) -> tuple[float, dict | None]:
        """``(rope_theta, rope_scaling)`` of ``layer`` (Gemma 3's sliding layers differ)."""
        return self.rope_theta, self.rope_scaling

    # ------------------------------------------------------------------ switches
    @property
    def qkv_bias(self) -> bool:
        """q/k/v projections have biases."""
        return False

    @property
    def o_bias(self) -> bool:
        """The output projection has a bias."""
        return False

    mlp_has_bias = False

    @property
    def rotary_dim(self) -> int:
        """How many leading dims of each head rope rotates (the rest pass through):
        ``int(head_dim * partial_rotary_factor)`` for the types with that field, else head_dim."""
        return int(self.head_dim * getattr(self, "partial_rotary_factor", 1.0))  # type: ignore[operator]

    @property
    def mlp_activation(self) -> str:
        """``silu``, ``gelu_tanh`` (the tanh approximation) or ``gelu`` (erf) of ``hidden_act``."""
        return {"silu": "silu", "gelu": "gelu"}.get(self.hidden_act, "gelu_tanh")

    @property
    def names(self) -> dict[str, str]:
        """Role -> Hugging Face parameter name part (``llama.py``); an empty name = no such norm."""
        return ROTARY_NAMES

    @property
    def norm_eps(self) -> float:
        return self.rms_norm_eps

    @property
    def attention_scale(self) -> float:
        """The factor of ``q k^T`` (``1 / sqrt(head_dim)``)."""
        return 1.0 / math.sqrt(self.head_dim)  # type: ignore[arg-type]

    @property
    def attn_softcap(self) -> float | None:
        """Attention scores become ``c * tanh(scores / c)`` (gemma2)."""
        return None

    @property
    def final_softcap(self) -> float | None:
        """Logits become ``c * tanh(logits / c)`` (gemma2)."""
        return None

    @property
    def embedding_scale(self) -> float:
        """Embeddings are multiplied by this (gemma: ``sqrt(hidden_size)`` rounded to float32)."""
        return float(np.float32(math.sqrt(self.hidden_size))) if self.scale_embeddings else 1.0

    @property
    def residual_scale(self) -> float:
        """Each sub-block's output is multiplied by this before the residual add (granite)."""
        return 1.0

    @property
    def logits_divisor(self) -> float:
        """Logits are divided by this (granite's ``logits_scaling``)."""
        return 1.0

    @property
    def parallel_residual(self) -> bool:
        """``h + attn(x_a) + mlp(x_m)`` instead of two sequential residual steps."""
        return False

    @property
    def head_bias(self) -> bool:
        """The lm_head has a bias (phi)."""
        return False

    def layer_window(self, layer: int) -> int | None:
        """The sliding window of ``layer`` (a key at position ``j`` is visible to the query at ``i``
        when ``i - window < j <= i``), or None for full causal attention."""
        return None


def _check_window(cfg: Any) -> None:
    if cfg.sliding_window is not None:
        _positive("sliding_window", cfg.sliding_window)


def _check_partial(cfg: Any) -> None:
    """``partial_rotary_factor`` in (0, 1] giving an even number (>= 2) of rotary dims."""
    _positive_float("partial_rotary_factor", cfg.partial_rotary_factor)
    rd = int(cfg.head_dim * cfg.partial_rotary_factor)
    if cfg.partial_rotary_factor > 1 or rd < 2 or rd % 2:
        raise ValueError(
            f"config field `partial_rotary_factor` ({cfg.partial_rotary_factor}) must give an even "
            f"number of rotary dims between 2 and head_dim ({cfg.head_dim}), got {rd}"
        )


def _check_layer_types(cfg: Any) -> None:
    if cfg.layer_types is not None and (
        len(cfg.layer_types) != cfg.num_hidden_layers or any(t not in LAYER_TYPES for t in cfg.layer_types)
    ):
        raise ValueError(
            f"config field `layer_types` must list one of {list(LAYER_TYPES)} per layer "
            f"({cfg.num_hidden_layers}), got {cfg.layer_types!r}"
        )


def _positive_or_null(cfg: Any, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) is not None:
            _positive_float(name, getattr(cfg, name))


@dataclass
class LlamaConfig(RotaryConfig):
    """Llama (SmolLM2): RMSNorm, rotary embeddings, grouped-query attention, SwiGLU;
    ``attention_bias`` (q, k, v, o) and ``mlp_bias`` switch the linear biases on."""

    attention_bias: bool = False
    mlp_bias: bool = False
    pretraining_tp: int = 1
    model_type: str = "llama"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pretraining_tp != 1:
            raise ValueError(
                f"config field `pretraining_tp` must be 1 (got {self.pretraining_tp}); it only "
                "changes how PyTorch splits matmuls"
            )

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias

    @property
    def o_bias(self) -> bool:
        return self.attention_bias

    @property
    def mlp_has_bias(self) -> bool:
        return self.mlp_bias


@dataclass
class MistralConfig(RotaryConfig):
    """Mistral: Llama without biases plus ``sliding_window`` on every layer (null: full attention)."""

    intermediate_size: int = 14336
    num_key_value_heads: int | None = 8
    max_position_embeddings: int = 4096 * 32
    sliding_window: int | None = 4096
    model_type: str = "mistral"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_window(self)

    def layer_window(self, layer: int) -> int | None:
        return self.sliding_window


LAYER_TYPES = ("full_attention", "sliding_attention")


@dataclass
class Qwen2Config(RotaryConfig):
    """Qwen2: Llama with q/k/v biases (no o_proj bias). The sliding window is off unless
    ``use_sliding_window``; then it applies to the layers ``layer_types`` marks
    ``sliding_attention`` (default: layers ``>= max_window_layers``)."""

    vocab_size: int = 151936
    intermediate_size: int = 22016
    max_position_embeddings: int = 32768
    bos_token_id: int | None = None
    eos_token_id: Any = None
    use_sliding_window: bool = False
    sliding_window: int | None = 4096
    max_window_layers: int = 28
    layer_types: list | None = None
    model_type: str = "qwen2"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_window(self)
        _nonnegative("max_window_layers", self.max_window_layers)
        _check_layer_types(self)

    qkv_bias = True

    def layer_window(self, layer: int) -> int | None:
        if not self.use_sliding_window or self.sliding_window is None:
            return None
        if self.layer_types is not None:
            sliding = self.layer_types[layer] == "sliding_attention"
        else:
            sliding = layer >= self.max_window_layers
        return self.sliding_window if sliding else None


@dataclass
class Qwen3Config(Qwen2Config):
    """Qwen3: Qwen2's attention layout with ``attention_bias`` (q, k, v, o; default off), an explicit
    ``head_dim`` (default 128) and RMSNorm over head_dim on q and k before rope (``q_norm``,
    ``k_norm``)."""

    head_dim: int | None = 128
    attention_bias: bool = False
    model_type: str = "qwen3"
    qk_norm: ClassVar[str | None] = "head_rms"

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias

    @property
    def o_bias(self) -> bool:
        return self.attention_bias


@dataclass
class Phi3Config(RotaryConfig):
    """Phi-3: Llama's block with fused ``qkv_proj`` (rows q, k, v) and ``gate_up_proj`` (rows gate,
    up) weights, no biases, an optional ``sliding_window`` on every layer, and partial rotary
    (``partial_rotary_factor``: rope on the first ``int(head_dim * factor)`` dims of a head)."""

    vocab_size: int = 32064
    hidden_size: int = 3072
    intermediate_size: int = 8192
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-5
    eos_token_id: Any = 32000
    pad_token_id: int | None = 32000
    sliding_window: int | None = None
    partial_rotary_factor: float = 1.0
    original_max_position_embeddings: int | None = None
    model_type: str = "phi3"
    fused_projections: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_window(self)
        _check_partial(self)

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)  # type: ignore[operator]

    def layer_window(self, layer: int) -> int | None:
        return self.sliding_window


@dataclass
class GemmaConfig(RotaryConfig):
    """Gemma: embeddings times ``sqrt(hidden_size)``, RMSNorm with ``(1 + w)``, GeGLU with the tanh
    gelu (``hidden_act`` ``gelu_pytorch_tanh``; the legacy ``gelu`` means the same, as in Hugging
    Face), explicit ``head_dim`` (default 256), tied embeddings by default, ``attention_bias``."""

    vocab_size: int = 256000
    hidden_size: int = 3072
    intermediate_size: int = 24576
    num_hidden_layers: int = 28
    num_attention_heads: int = 16
    num_key_value_heads: int | None = 16
    head_dim: int | None = 256
    max_position_embeddings: int = 8192
    hidden_act: str = "gelu_pytorch_tanh"
    tie_word_embeddings: bool = True
    pad_token_id: int | None = 0
    eos_token_id: Any = 1
    bos_token_id: int | None = 2
    attention_bias: bool = False
    use_bidirectional_attention: bool | None = None
    model_type: str = "gemma"
    ACTIVATIONS: ClassVar[tuple[str, ...]] = ("gelu_pytorch_tanh", "gelu", "gelu_new")
    norm_offset: ClassVar[float] = 1.0
    scale_embeddings: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_bidirectional_attention:
            raise ValueError(
                "config field `use_bidirectional_attention` is not supported (an encoder variant); "
                "set it to false or null"
            )

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias

    @property
    def o_bias(self) -> bool:
        return self.attention_bias

    @property
    def mlp_activation(self) -> str:
        return "gelu_tanh"  # Hugging Face reads gemma's legacy `gelu` as the tanh approximation


@dataclass
class Gemma2Config(GemmaConfig):
    """Gemma 2: Gemma's block (``(1 + w)`` RMSNorms, scaled embeddings, GeGLU) with a norm before
    *and* after each sub-block (``input_layernorm`` / ``post_attention_layernorm`` around
    attention, ``pre_feedforward_layernorm`` / ``post_feedforward_layernorm`` around the MLP),
    attention scale ``query_pre_attn_scalar ** -0.5``, score soft-capping ``c * tanh(s / c)``
    (``attn_logit_softcapping``), logit soft-capping (``final_logit_softcapping``) and a sliding
    window on the layers ``layer_types`` marks ``sliding_attention`` (default: even layers). The
    MLP activation is ``hidden_activation`` (``gelu`` is the erf gelu here, unlike gemma)."""

    hidden_size: int = 2304
    intermediate_size: int = 9216
    num_hidden_layers: int = 26
    num_attention_heads: int = 8
    num_key_value_heads: int | None = 4
    hidden_activation: str = "gelu_pytorch_tanh"
    query_pre_attn_scalar: float = 256
    sliding_window: int | None = 4096
    layer_types: list | None = None
    final_logit_softcapping: float | None = 30.0
    attn_logit_softcapping: float | None = 50.0
    model_type: str = "gemma2"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_activation not in self.ACTIVATIONS:
            raise ValueError(
                f"config field `hidden_activation` {self.hidden_activation!r} is not supported for gemma2; "
                f"use {' or '.join(self.ACTIVATIONS)}"
            )
        _check_window(self)
        _check_layer_types(self)
        _positive_float("query_pre_attn_scalar", self.query_pre_attn_scalar)
        _positive_or_null(self, "final_logit_softcapping", "attn_logit_softcapping")

    @property
    def names(self) -> dict[str, str]:
        return {
            **ROTARY_NAMES,
            "post_attn": "post_attention_layernorm",
            "pre_mlp": "pre_feedforward_layernorm",
            "post_mlp": "post_feedforward_layernorm",
        }

    @property
    def mlp_activation(self) -> str:
        return "gelu" if self.hidden_activation == "gelu" else "gelu_tanh"

    @property
    def attention_scale(self) -> float:
        return float(self.query_pre_attn_scalar) ** -0.5

    @property
    def attn_softcap(self) -> float | None:
        return self.attn_logit_softcapping

    @property
    def final_softcap(self) -> float | None:
        return self.final_logit_softcapping

    def layer_window(self, layer: int) -> int | None:
        if self.sliding_window is None:
            return None
        if self.layer_types is not None:
            sliding = self.layer_types[layer] == "sliding_attention"
        else:
            sliding = layer % 2 == 0
        return self.sliding_window if sliding else None


@dataclass
class Olmo2Config(RotaryConfig):
    """OLMo 2: Llama's projections with norms *after* the sub-blocks only (``h += norm(attn(h))``,
    ``h += norm(mlp(h))``: ``post_attention_layernorm``, ``post_feedforward_layernorm``) and q/k
    RMSNorm over the whole projection (``q_norm [heads * head_dim]``, ``k_norm [kv_heads *
    head_dim]``) before the head split and rope; ``attention_bias`` on q, k, v, o."""

    vocab_size: int = 50304
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-5
    pad_token_id: int | None = 1
    bos_token_id: int | None = None
    eos_token_id: Any = 50279
    attention_bias: bool = False
    model_type: str = "olmo2"
    qk_norm: ClassVar[str | None] = "full_rms"

    @property
    def names(self) -> dict[str, str]:
        return {
            **ROTARY_NAMES,
            "pre_attn": "",
            "post_attn": "post_attention_layernorm",
            "pre_mlp": "",
            "post_mlp": "post_feedforward_layernorm",
        }

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias

    @property
    def o_bias(self) -> bool:
        return self.attention_bias


@dataclass
class GraniteConfig(LlamaConfig):
    """Granite: Llama with four multipliers: ``h = embed * embedding_multiplier``, attention scale
    ``attention_multiplier`` (instead of ``1/sqrt(head_dim)``), each sub-block's output times
    ``residual_multiplier`` before its residual add, ``logits / logits_scaling``."""

    embedding_multiplier: float = 1.0
    logits_scaling: float = 1.0
    residual_multiplier: float = 1.0
    attention_multiplier: float = 1.0
    model_type: str = "granite"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("embedding_multiplier", "logits_scaling", "residual_multiplier", "attention_multiplier"):
            _positive_float(name, getattr(self, name))

    @property
    def attention_scale(self) -> float:
        return float(self.attention_multiplier)

    @property
    def embedding_scale(self) -> float:
        return float(self.embedding_multiplier)

    @property
    def residual_scale(self) -> float:
        return float(self.residual_multiplier)

    @property
    def logits_divisor(self) -> float:
        return float(self.logits_scaling)


GELU_ACTIVATIONS = ("gelu_pytorch_tanh", "gelu_new", "gelu")


@dataclass
class Starcoder2Config(RotaryConfig):
    """StarCoder2: LayerNorms with bias (eps ``norm_epsilon``), biases on q, k, v, o and the MLP
    when ``use_bias``, a plain MLP ``c_proj(act(c_fc(x)))`` (``hidden_act``, default the tanh
    gelu), an optional ``sliding_window`` on every layer, tied head by default."""

    vocab_size: int = 49152
    hidden_size: int = 3072
    intermediate_size: int = 12288
    num_hidden_layers: int = 30
    num_attention_heads: int = 24
    num_key_value_heads: int | None = 2
    hidden_act: str = "gelu_pytorch_tanh"
    max_position_embeddings: int = 4096
    norm_epsilon: float = 1e-5
    bos_token_id: int | None = 50256
    eos_token_id: Any = 50256
    sliding_window: int | None = None
    use_bias: bool = True
    tie_word_embeddings: bool = True
    model_type: str = "starcoder2"
    ACTIVATIONS: ClassVar[tuple[str, ...]] = GELU_ACTIVATIONS
    mlp_kind: ClassVar[str] = "plain"
    norm_kind: ClassVar[str] = "layer"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_float("norm_epsilon", self.norm_epsilon)
        _check_window(self)

    @property
    def norm_eps(self) -> float:
        return self.norm_epsilon

    @property
    def qkv_bias(self) -> bool:
        return self.use_bias

    @property
    def o_bias(self) -> bool:
        return self.use_bias

    @property
    def mlp_has_bias(self) -> bool:
        return self.use_bias

    def layer_window(self, layer: int) -> int | None:
        return self.sliding_window


@dataclass
class StableLmConfig(RotaryConfig):
    """StableLM: LayerNorms with bias (``layer_norm_eps``), partial rotary
    (``partial_rotary_factor``, default 0.25), q/k/v biases when ``use_qkv_bias``, SwiGLU without
    biases, ``qk_layernorm`` (a bias-free LayerNorm per head, weights
    ``self_attn.q_layernorm.norms.{h}``) and ``use_parallel_residual`` (``h + attn(x) + mlp(x)`` on
    one ``x = input_layernorm(h)``; no ``post_attention_layernorm`` then)."""

    vocab_size: int = 50304
    intermediate_size: int = 6912
    hidden_size: int = 2560
    max_position_embeddings: int = 4096
    layer_norm_eps: float = 1e-5
    use_qkv_bias: bool = False
    qk_layernorm: bool = False
    use_parallel_residual: bool = False
    partial_rotary_factor: float = 0.25
    bos_token_id: int | None = 0
    eos_token_id: Any = 0
    model_type: str = "stablelm"
    norm_kind: ClassVar[str] = "layer"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        _check_partial(self)

    @property
    def names(self) -> dict[str, str]:
        extra = {"pre_mlp": ""} if self.use_parallel_residual else {}
        return {**ROTARY_NAMES, "q_norm": "self_attn.q_layernorm", "k_norm": "self_attn.k_layernorm", **extra}

    @property
    def qk_norm(self) -> str | None:  # type: ignore[override]
        return "per_head_layer" if self.qk_layernorm else None

    @property
    def norm_eps(self) -> float:
        return self.layer_norm_eps

    @property
    def qkv_bias(self) -> bool:
        return self.use_qkv_bias

    @property
    def parallel_residual(self) -> bool:
        return self.use_parallel_residual


@dataclass
class GPTNeoXConfig(RotaryConfig):
    """GPT-NeoX (Pythia): LayerNorms with bias, one ``attention.query_key_value`` projection whose
    rows are interleaved per head (``[q_h; k_h; v_h]`` for each head ``h``), partial rotary
    (``partial_rotary_factor``, the legacy ``rotary_pct``; default 0.25), biases on every linear
    (``attention_bias``), a plain MLP ``dense_4h_to_h(act(dense_h_to_4h(x)))`` (``hidden_act``
    default the erf gelu), ``use_parallel_residual`` (default true: ``h + attn(ln1(h)) +
    mlp(ln2(h))``), an untied ``embed_out`` head. Names under ``gpt_neox.``."""

    vocab_size: int = 50432
    hidden_size: int = 6144
    num_hidden_layers: int = 44
    num_attention_heads: int = 64
    intermediate_size: int = 24576
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    bos_token_id: int | None = 0
    eos_token_id: Any = 2
    use_parallel_residual: bool = True
    attention_bias: bool = True
    partial_rotary_factor: float = 0.25
    model_type: str = "gpt_neox"
    ACTIVATIONS: ClassVar[tuple[str, ...]] = GELU_ACTIVATIONS
    qkv_layout: ClassVar[str] = "interleaved"
    mlp_kind: ClassVar[str] = "plain"
    norm_kind: ClassVar[str] = "layer"
    base_prefix: ClassVar[str] = "gpt_neox."

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        _check_partial(self)
        if self.num_key_value_heads != self.num_attention_heads:
            raise ValueError(
                f"config field `num_key_value_heads` ({self.num_key_value_heads}) must equal "
                f"`num_attention_heads` ({self.num_attention_heads}) for gpt_neox"
            )

    @property
    def names(self) -> dict[str, str]:
        return {
            **ROTARY_NAMES,
            "embed": "gpt_neox.embed_in",
            "layers": "gpt_neox.layers.",
            "final_norm": "gpt_neox.final_layer_norm",
            "head": "embed_out",
            "qkv": "attention.query_key_value",
            "o": "attention.dense",
            "fc_in": "mlp.dense_h_to_4h",
            "fc_out": "mlp.dense_4h_to_h",
        }

    @property
    def norm_eps(self) -> float:
        return self.layer_norm_eps

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias

    @property
    def o_bias(self) -> bool:
        return self.attention_bias

    mlp_has_bias = True

    @property
    def parallel_residual(self) -> bool:
        return self.use_parallel_residual


@dataclass
class GPTJConfig(RotaryConfig):
    """GPT-J: GPT-2's field names (``n_embd``, ``n_layer``, ``n_head``, ``n_positions``, ``n_inner``
    (null: ``4 * n_embd``), ``layer_norm_epsilon``, ``activation_function``; read as the family's
    names), one LayerNorm per layer shared by attention and MLP in parallel (``h + attn(x) +
    mlp(x)``, ``x = ln_1(h)``), q, k, v, ``out_proj`` without biases, the plain MLP
    ``fc_out(act(fc_in(x)))`` and the lm_head with biases, and rope on the first ``rotary_dim``
    dims of a head (null: all) in the *interleaved* layout (pairs ``(x[2i], x[2i+1])`` rotate by
    ``angle_i``). Names under ``transformer.``."""

    vocab_size: int = 50400
    max_position_embeddings: int = 2048
    hidden_size: int = 4096
    num_hidden_layers: int = 28
    num_attention_heads: int = 16
    intermediate_size: int | None = None  # type: ignore[assignment]
    rotary_dim: int | None = 64  # type: ignore[assignment]
    hidden_act: str = "gelu_new"
    layer_norm_eps: float = 1e-5
    bos_token_id: int | None = 50256
    eos_token_id: Any = 50256
    model_type: str = "gptj"
    ACTIVATIONS: ClassVar[tuple[str, ...]] = GELU_ACTIVATIONS
    mlp_kind: ClassVar[str] = "plain"
    norm_kind: ClassVar[str] = "layer"
    rope_layout: ClassVar[str] = "interleaved"
    base_prefix: ClassVar[str] = "transformer."

    def __post_init__(self) -> None:
        if self.intermediate_size is None and _is_int(self.hidden_size):
            self.intermediate_size = 4 * self.hidden_size
        super().__post_init__()
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        if self.num_key_value_heads != self.num_attention_heads:
            raise ValueError(
                f"config field `num_key_value_heads` ({self.num_key_value_heads}) must equal "
                f"`n_head` ({self.num_attention_heads}) for gptj"
            )
        if self.rotary_dim is None:
            self.rotary_dim = self.head_dim
        _positive("rotary_dim", self.rotary_dim)
        if self.rotary_dim % 2 or self.rotary_dim > self.head_dim:  # type: ignore[operator]
            raise ValueError(
                f"config field `rotary_dim` ({self.rotary_dim}) must be even and at most head_dim "
                f"({self.head_dim})"
            )

    @property
    def names(self) -> dict[str, str]:
        return {
            **ROTARY_NAMES,
            "embed": "transformer.wte",
            "layers": "transformer.h.",
            "final_norm": "transformer.ln_f",
            "q": "attn.q_proj",
            "k": "attn.k_proj",
            "v": "attn.v_proj",
            "o": "attn.out_proj",
            "pre_attn": "ln_1",
            "pre_mlp": "",
            "fc_in": "mlp.fc_in",
            "fc_out": "mlp.fc_out",
        }

    @property
    def norm_eps(self) -> float:
        return self.layer_norm_eps

    mlp_has_bias = True

    parallel_residual = True

    head_bias = True


@dataclass
class PhiConfig(RotaryConfig):
    """Phi (1, 1.5, 2): one LayerNorm per layer (``input_layernorm``) feeding attention and MLP in
    parallel (``h + attn(x) + mlp(x)``), biases on q, k, v, ``dense`` (the output projection), the
    plain MLP ``fc2(act(fc1(x)))`` (``gelu_new``) and the lm_head, partial rotary
    (``partial_rotary_factor``, default 0.5), optional ``qk_layernorm`` (one LayerNorm over head_dim
    shared by the heads), final norm ``model.final_layernorm``."""

    vocab_size: int = 51200
    hidden_size: int = 2048
    intermediate_size: int = 8192
    num_hidden_layers: int = 24
    num_attention_heads: int = 32
    hidden_act: str = "gelu_new"
    layer_norm_eps: float = 1e-5
    partial_rotary_factor: float = 0.5
    qk_layernorm: bool = False
    model_type: str = "phi"
    ACTIVATIONS: ClassVar[tuple[str, ...]] = GELU_ACTIVATIONS
    mlp_kind: ClassVar[str] = "plain"
    norm_kind: ClassVar[str] = "layer"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        _check_partial(self)

    @property
    def names(self) -> dict[str, str]:
        return {
            **ROTARY_NAMES,
            "final_norm": "model.final_layernorm",
            "o": "self_attn.dense",
            "q_norm": "self_attn.q_layernorm",
            "k_norm": "self_attn.k_layernorm",
            "pre_mlp": "",
            "fc_in": "mlp.fc1",
            "fc_out": "mlp.fc2",
        }

    @property
    def qk_norm(self) -> str | None:  # type: ignore[override]
        return "head_layer" if self.qk_layernorm else None

    @property
    def norm_eps(self) -> float:
        return self.layer_norm_eps

    qkv_bias = True

    o_bias = True

    mlp_has_bias = True

    parallel_residual = True

    head_bias = True


@dataclass
class MixtralConfig(MistralConfig):
    """Mixtral: Mistral's attention (optional ``sliding_window``, default off) with a sparse
    mixture-of-experts MLP: ``num_local_experts`` SwiGLU experts (``w1`` gate, ``w3`` up, ``w2``
    down) and a router ``gate`` choosing ``num_experts_per_tok`` of them per token (see llama.py)."""

    intermediate_size: int = 14336
    sliding_window: int | None = None
    rope_theta: float = 1e6
    num_experts_per_tok: int = 2
    num_local_experts: int = 8
    model_type: str = "mixtral"
    mlp_kind: ClassVar[str] = "moe"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("num_local_experts", self.num_local_experts)
        _check_top_k(self, "num_local_experts")

    @property
    def num_experts(self) -> int:
        return self.num_local_experts

    @property
    def moe_intermediate(self) -> int:
        """Each expert's hidden width."""
        return self.intermediate_size

    @property
    def moe_norm_topk(self) -> bool:
        """Renormalise the kept router probabilities to sum to 1."""
        return True

    @property
    def shared_expert_size(self) -> int | None:
        """The hidden width of the shared expert (None: no shared expert)."""
        return None

    def layer_is_moe(self, layer: int) -> bool:
        return True


def _check_top_k(cfg: Any, experts_field: str) -> None:
    _positive("num_experts_per_tok", cfg.num_experts_per_tok)
    if cfg.num_experts and cfg.num_experts_per_tok > cfg.num_experts:
        raise ValueError(
            f"config field `num_experts_per_tok` ({cfg.num_experts_per_tok}) must be at most "
            f"`{experts_field}` ({cfg.num_experts})"
        )


@dataclass
class Qwen2MoeConfig(RotaryConfig):
    """Qwen2-MoE: Qwen2's attention (q/k/v biases when ``qkv_bias``, default true; o without) with a
    mixture of ``num_experts`` SwiGLU experts of width ``moe_intermediate_size`` (names
    ``mlp.experts.{e}.gate_proj`` / ``up_proj`` / ``down_proj``, router ``mlp.gate``), the top
    ``num_experts_per_tok`` router probabilities used as they are unless ``norm_topk_prob``, plus a
    shared SwiGLU expert (``mlp.shared_expert``, width ``shared_expert_intermediate_size``) scaled by
    ``sigmoid(x @ shared_expert_gate^T)``. Layers in ``mlp_only_layers``, or whose ``(i + 1)`` is not
    a multiple of ``decoder_sparse_step``, (or every layer when ``num_experts`` is 0) have a dense
    SwiGLU MLP of width ``intermediate_size`` instead. With ``use_sliding_window``, ``sliding_window``
    applies to the layers ``layer_types`` marks ``sliding_attention`` (default: even layer indices
    below ``max_window_layers``)."""

    vocab_size: int = 151936
    hidden_size: int = 2048
    intermediate_size: int = 5632
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_key_value_heads: int | None = 16
    max_position_embeddings: int = 32768
    bos_token_id: int | None = None
    eos_token_id: Any = None
    use_sliding_window: bool = False
    sliding_window: int | None = 4096
    max_window_layers: int = 28
    layer_types: list | None = None
    decoder_sparse_step: int = 1
    moe_intermediate_size: int = 1408
    shared_expert_intermediate_size: int = 5632
    num_experts_per_tok: int = 4
    num_experts: int = 60
    norm_topk_prob: bool = False
    mlp_only_layers: list | None = None
    qkv_bias: bool = True
    model_type: str = "qwen2_moe"
    mlp_kind: ClassVar[str] = "moe"
    moe_names: ClassVar[dict[str, str]] = {
        "router": "mlp.gate",
        "expert": "mlp.experts.{e}.",
        "gate": "gate_proj",
        "up": "up_proj",
        "down": "down_proj",
        "shared": "mlp.shared_expert.",
        "shared_gate": "mlp.shared_expert_gate",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_sliding_window:
            _check_window(self)
        elif self.sliding_window is not None:  # Hugging Face writes 0 when the window is off
            _nonnegative("sliding_window", self.sliding_window)
        _nonnegative("max_window_layers", self.max_window_layers)
        _check_layer_types(self)
        _nonnegative("num_experts", self.num_experts)
        _check_top_k(self, "num_experts")
        for name in ("decoder_sparse_step", "moe_intermediate_size", "shared_expert_intermediate_size"):
            _positive(name, getattr(self, name))
        layers = self.mlp_only_layers or []
        if not all(_is_int(i) and 0 <= i < self.num_hidden_layers for i in layers):
            raise ValueError(
                f"config field `mlp_only_layers` must list layer indices below {self.num_hidden_layers}, "
                f"got {self.mlp_only_layers!r}"
            )

    @property
    def moe_intermediate(self) -> int:
        return self.moe_intermediate_size

    @property
    def moe_norm_topk(self) -> bool:
        return self.norm_topk_prob

    @property
    def shared_expert_size(self) -> int | None:
        return self.shared_expert_intermediate_size

    def layer_is_moe(self, layer: int) -> bool:
        return (
            self.num_experts > 0
            and layer not in (self.mlp_only_layers or [])
            and (layer + 1) % self.decoder_sparse_step == 0
        )

    def layer_window(self, layer: int) -> int | None:
        if not self.use_sliding_window or not self.sliding_window:
            return None
        if self.layer_types is not None:
            sliding = self.layer_types[layer] == "sliding_attention"
        else:
            sliding = layer % 2 == 0 and layer < self.max_window_layers
        return self.sliding_window if sliding else None


@dataclass
class Gemma3TextConfig(Gemma2Config):
    """Gemma 3 (text): Gemma 2's block (four ``(1 + w)`` RMSNorms per layer, scaled embeddings,
    GeGLU, ``query_pre_attn_scalar``, ``final_logit_softcapping`` (default off);
    ``attn_logit_softcapping`` is read but not applied, as in Hugging Face's Gemma 3) plus a ``(1 + w)`` RMSNorm
    over head_dim on q and k before rope (``q_norm`` / ``k_norm``), and per-layer-type rope: the
    layers ``layer_types`` marks ``sliding_attention`` (default: every layer whose ``i + 1`` is not
    a multiple of ``sliding_window_pattern``, 6) have ``sliding_window`` and the plain rope of base
    ``rope_local_base_freq``; the ``full_attention`` ones use ``rope_theta`` and ``rope_scaling``
    (transformers v5's ``rope_parameters`` per layer type are read the same way)."""

    vocab_size: int = 262208
    max_position_embeddings: int = 131072
    rope_theta: float = 1_000_000.0
    rope_local_base_freq: float = 10000.0
    sliding_window_pattern: int = 6
    final_logit_softcapping: float | None = None
    attn_logit_softcapping: float | None = None
    model_type: str = "gemma3_text"
    qk_norm: ClassVar[str | None] = "head_rms"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_float("rope_local_base_freq", self.rope_local_base_freq)
        _positive("sliding_window_pattern", self.sliding_window_pattern)

    @property
    def attn_softcap(self) -> float | None:
        return None  # Hugging Face's Gemma 3 attention ignores attn_logit_softcapping

    def is_sliding(self, layer: int) -> bool:
        if self.layer_types is not None:
            return self.layer_types[layer] == "sliding_attention"
        return (layer + 1) % self.sliding_window_pattern != 0

    def layer_window(self, layer: int) -> int | None:
        return self.sliding_window if self.is_sliding(layer) else None

    def layer_rope(self, layer: int) -> tuple[float, dict | None]:
        if self.is_sliding(layer):
            return self.rope_local_base_freq, None
        return self.rope_theta, self.rope_scaling


@dataclass
class CodeGenConfig(GPTJConfig):
    """CodeGen: GPT-J's block and field names (interleaved partial rope on ``rotary_dim``, one
    shared LayerNorm, parallel attention and MLP, lm_head bias) with one fused ``attn.qkv_proj``
    whose ``3 * hidden`` rows are 4 blocks (``mp_num``), each ``[q; v; k]`` of ``hidden / 4`` rows
    for heads ``nh / 4`` at a time (``n_head`` must be a multiple of 4)."""

    vocab_size: int = 50400
    model_type: str = "codegen"
    qkv_layout: ClassVar[str] = "codegen"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_attention_heads % 4:
            raise ValueError(
                f"config field `n_head` ({self.num_attention_heads}) must be a multiple of 4 for codegen "
                "(its fused qkv_proj is split in 4 blocks)"
            )

    @property
    def names(self) -> dict[str, str]:
        return {**super().names, "qkv": "attn.qkv_proj"}


GPT_NEO_ATTENTION = ("global", "local")


@dataclass
class GPTNeoConfig(RotaryConfig):
    """GPT-Neo: GPT-2's block without rope (``h = wte[ids] + wpe[pos]``, ``h += out_proj(attn(ln_1
    (h)))``, ``h += c_proj(act(c_fc(ln_2(h))))``), unscaled attention (``q k^T``, no
    ``1/sqrt(head_dim)``), q / k / v without biases, ``out_proj`` and the MLP with biases, tied
    head; layer kinds from ``attention_types`` (``[[kinds, repeat], ...]``, expanded in order:
    ``[[["global", "local"], 12]]`` alternates), ``local`` layers with a window of
    ``window_size``. Field names ``num_layers``, ``num_heads``, ``layer_norm_epsilon``,
    ``activation_function`` (read as the family's). Names under ``transformer.``."""

    vocab_size: int = 50257
    max_position_embeddings: int = 2048
    hidden_size: int = 2048
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int | None = None  # type: ignore[assignment]
    window_size: int = 256
    attention_types: list | None = None
    hidden_act: str = "gelu_new"
    layer_norm_eps: float = 1e-5
    bos_token_id: int | None = 50256
    eos_token_id: Any = 50256
    tie_word_embeddings: bool = True
    model_type: str = "gpt_neo"
    ACTIVATIONS: ClassVar[tuple[str, ...]] = (*GELU_ACTIVATIONS, "silu")
    mlp_kind: ClassVar[str] = "plain"
    norm_kind: ClassVar[str] = "layer"
    position_kind: ClassVar[str] = "learned"
    base_prefix: ClassVar[str] = "transformer."

    def __post_init__(self) -> None:
        if self.intermediate_size is None and _is_int(self.hidden_size):
            self.intermediate_size = 4 * self.hidden_size
        if self.attention_types is None:
            self.attention_types = [[["global", "local"], max(self.num_hidden_layers // 2, 1)]]
        super().__post_init__()
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        _positive("window_size", self.window_size)
        if self.num_key_value_heads != self.num_attention_heads:
            raise ValueError(
                f"config field `num_key_value_heads` ({self.num_key_value_heads}) must equal "
                f"`num_heads` ({self.num_attention_heads}) for gpt_neo"
            )
        ok = all(
            isinstance(t, list)
            and len(t) == 2
            and isinstance(t[0], list)
            and all(k in GPT_NEO_ATTENTION for k in t[0])
            and _is_int(t[1])
            and t[1] > 0
            for t in self.attention_types
        )
        if not ok or len(self.attention_layers) != self.num_hidden_layers:
            raise ValueError(
                f"config field `attention_types` must expand to one of {list(GPT_NEO_ATTENTION)} per layer "
                f'({self.num_hidden_layers}), like [[["global", "local"], {self.num_hidden_layers // 2}]], '
                f"got {self.attention_types!r}"
            )

    @property
    def attention_layers(self) -> list[str]:
        """``attention_types`` expanded: each ``[kinds, n]`` repeats ``kinds`` ``n`` times."""
        return [k for kinds, n in self.attention_types for _ in range(n) for k in kinds]  # type: ignore[union-attr]

    @property
    def names(self) -> dict[str, str]:
        return {
            **ROTARY_NAMES,
            "embed": "transformer.wte",
            "pos_embed": "transformer.wpe",
            "layers": "transformer.h.",
            "final_norm": "transformer.ln_f",
            "q": "attn.attention.q_proj",
            "k": "attn.attention.k_proj",
            "v": "attn.attention.v_proj",
            "o": "attn.attention.out_proj",
            "pre_attn": "ln_1",
            "pre_mlp": "ln_2",
        }

    @property
    def norm_eps(self) -> float:
        return self.layer_norm_eps

    o_bias = True

    mlp_has_bias = True

    @property
    def mlp_activation(self) -> str:
        return {"silu": "silu", "gelu": "gelu"}.get(self.hidden_act, "gelu_tanh")

    attention_scale = 1.0

    def layer_window(self, layer: int) -> int | None:
        return self.window_size if self.attention_layers[layer] == "local" else None


@dataclass
class FalconConfig(RotaryConfig):
    """Falcon: LayerNorms (``layer_norm_epsilon``), one fused ``self_attention.query_key_value``
    whose rows are grouped per kv head, ``[q_{g r} .. q_{g r + r - 1}; k_g; v_g]`` (``r = heads /
    kv_heads``), with ``kv_heads = num_kv_heads`` under ``new_decoder_architecture``, else 1 with
    ``multi_query`` (default) or ``heads`` without; rope on the whole head; biases on every linear
    with ``bias``; plain MLP ``dense_4h_to_h(act(dense_h_to_4h(x)))`` (``ffn_hidden_size``, null:
    ``4 hidden``; ``activation``); tied head. Blocks: ``new_decoder_architecture``: parallel,
    ``h += attn(ln_attn(h)) + mlp(ln_mlp(h))`` (``num_ln_in_parallel_attn`` 2, the default) or one
    shared ``input_layernorm`` (1); else ``parallel_attn`` (default): ``h += attn(x) + mlp(x)``,
    ``x = input_layernorm(h)``; else sequential with ``input_layernorm`` and
    ``post_attention_layernorm``. With ``alibi`` no rope: the ALiBi bias, rounded to bfloat16
    and divided by ``sqrt(head_dim)`` as Hugging Face's Falcon does (llama.py's ``alibi_bias``).
    Names under ``transformer.``."""

    vocab_size: int = 65024
    hidden_size: int = 4544
    num_hidden_layers: int = 32
    num_attention_heads: int = 71
    intermediate_size: int | None = None  # type: ignore[assignment]
    num_kv_heads: int | None = None
    num_ln_in_parallel_attn: int | None = None
    layer_norm_eps: float = 1e-5
    alibi: bool = False
    new_decoder_architecture: bool = False
    multi_query: bool = True
    parallel_attn: bool = True
    bias: bool = False
    hidden_act: str = "gelu"
    bos_token_id: int | None = 11
    eos_token_id: Any = 11
    tie_word_embeddings: bool = True
    model_type: str = "falcon"
    ACTIVATIONS: ClassVar[tuple[str, ...]] = (*GELU_ACTIVATIONS, "silu")
    qkv_layout: ClassVar[str] = "grouped"
    mlp_kind: ClassVar[str] = "plain"
    norm_kind: ClassVar[str] = "layer"
    base_prefix: ClassVar[str] = "transformer."

    def __post_init__(self) -> None:
        if self.intermediate_size is None and _is_int(self.hidden_size):
            self.intermediate_size = 4 * self.hidden_size
        if self.num_kv_heads is None:
            self.num_kv_heads = self.num_attention_heads
        _check_field_types(self)
        _positive("num_kv_heads", self.num_kv_heads)
        new = self.new_decoder_architecture
        self.num_key_value_heads = self.num_kv_heads if new or not self.multi_query else 1
        super().__post_init__()
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        if new and not self.parallel_attn:
            raise ValueError(
                "config field `parallel_attn` must be true with `new_decoder_architecture` (Hugging Face has "
                "no sequential block for it)"
            )
        if self.num_ln_in_parallel_attn not in (None, 1, 2) or (
            not new and self.num_ln_in_parallel_attn == 2
        ):
            raise ValueError(
                "config field `num_ln_in_parallel_attn` must be null, 1 or 2 (2 only with "
                f"`new_decoder_architecture`), got {self.num_ln_in_parallel_attn!r}"
            )
        if not new and not self.multi_query and self.num_kv_heads != self.num_attention_heads:
            raise ValueError(
                f"config field `num_kv_heads` ({self.num_kv_heads}) must equal `num_attention_heads` "
                f"({self.num_attention_heads}) without `multi_query` or `new_decoder_architecture`"
            )

    @property
    def names(self) -> dict[str, str]:
        if self.new_decoder_architecture and self.num_ln_in_parallel_attn != 1:
            norms = {"pre_attn": "ln_attn", "pre_mlp": "ln_mlp"}
        elif self.parallel_attn:
            norms = {"pre_mlp": ""}
        else:
            norms = {}
        return {
            **ROTARY_NAMES,
            "embed": "transformer.word_embeddings",
            "layers": "transformer.h.",
            "final_norm": "transformer.ln_f",
            "qkv": "self_attention.query_key_value",
            "o": "self_attention.dense",
            "fc_in": "mlp.dense_h_to_4h",
            "fc_out": "mlp.dense_4h_to_h",
            **norms,
        }

    @property
    def norm_eps(self) -> float:
        return self.layer_norm_eps

    @property
    def qkv_bias(self) -> bool:
        return self.bias

    @property
    def o_bias(self) -> bool:
        return self.bias

    @property
    def mlp_has_bias(self) -> bool:
        return self.bias

    @property
    def mlp_activation(self) -> str:
        return {"silu": "silu", "gelu": "gelu"}.get(self.hidden_act, "gelu_tanh")

    @property
    def parallel_residual(self) -> bool:
        return self.new_decoder_architecture or self.parallel_attn

    @property
    def position_kind(self) -> str:  # type: ignore[override]
        return "alibi" if self.alibi else "rope"

    @property
    def alibi_bfloat16(self) -> bool:
        """ALiBi's bias rounded to bfloat16 and divided by ``sqrt(head_dim)`` (Falcon's)."""
        return True

    def to_hf_dict(self) -> dict:
        """Without ``head_dim`` and ``num_key_value_heads``: Hugging Face's Falcon derives both (its
        ``head_dim`` is read-only)."""
        d = super().to_hf_dict()
        for key in ("head_dim", "num_key_value_heads"):
            d.pop(key, None)
        return d


@dataclass
class BloomConfig(RotaryConfig):
    """BLOOM: no rope; ALiBi, a per-head linear bias ``slope_h * key_position`` added to the scaled
    scores (llama.py's ``alibi_bias``); a LayerNorm right after the embeddings
    (``word_embeddings_layernorm``); sequential blocks with ``input_layernorm`` /
    ``post_attention_layernorm``; one fused ``self_attention.query_key_value`` whose rows are
    ``[q_h; k_h; v_h]`` per head; biases everywhere; the MLP ``dense_4h_to_h(gelu_tanh(dense_h_to_4h
    (x)))`` of width ``4 hidden``; tied head. Field names ``n_layer``, ``n_head``,
    ``layer_norm_epsilon``. ``apply_residual_connection_post_layernorm`` is refused. Names under
    ``transformer.``."""

    vocab_size: int = 250880
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 8
    intermediate_size: int | None = None  # type: ignore[assignment]
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-5
    apply_residual_connection_post_layernorm: bool = False
    pretraining_tp: int = 1
    slow_but_exact: bool = False
    bos_token_id: int | None = 1
    eos_token_id: Any = 2
    tie_word_embeddings: bool = True
    model_type: str = "bloom"
    ACTIVATIONS: ClassVar[tuple[str, ...]] = ("gelu_pytorch_tanh",)
    qkv_layout: ClassVar[str] = "interleaved"
    mlp_kind: ClassVar[str] = "plain"
    norm_kind: ClassVar[str] = "layer"
    position_kind: ClassVar[str] = "alibi"
    base_prefix: ClassVar[str] = "transformer."

    def __post_init__(self) -> None:
        if self.intermediate_size is None and _is_int(self.hidden_size):
            self.intermediate_size = 4 * self.hidden_size
        super().__post_init__()
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        if self.intermediate_size != 4 * self.hidden_size:
            raise ValueError(
                f"config field `intermediate_size` ({self.intermediate_size}) must be 4 * hidden_size "
                f"({4 * self.hidden_size}) for bloom (or null)"
            )
        if self.num_key_value_heads != self.num_attention_heads:
            raise ValueError(
                f"config field `num_key_value_heads` ({self.num_key_value_heads}) must equal "
                f"`n_head` ({self.num_attention_heads}) for bloom"
            )
        if self.apply_residual_connection_post_layernorm:
            raise ValueError(
                "config field `apply_residual_connection_post_layernorm` is not supported; set it to false"
            )

    @property
    def names(self) -> dict[str, str]:
        return {
            **ROTARY_NAMES,
            "embed": "transformer.word_embeddings",
            "embed_norm": "transformer.word_embeddings_layernorm",
            "layers": "transformer.h.",
            "final_norm": "transformer.ln_f",
            "qkv": "self_attention.query_key_value",
            "o": "self_attention.dense",
            "fc_in": "mlp.dense_h_to_4h",
            "fc_out": "mlp.dense_4h_to_h",
        }

    @property
    def norm_eps(self) -> float:
        return self.layer_norm_eps

    qkv_bias = True

    o_bias = True

    mlp_has_bias = True


BERT_HEADS = (
    "default",
    "masked-lm",
    "sequence-classification",
    "token-classification",
    "question-answering",
    "multiple-choice",
)


@dataclass
class BertConfig(_ConfigMixin):
    """BERT encoder: word + position + token-type embeddings, post-LayerNorm blocks, tanh pooler.

    The encoder family (``bert.py``) tells its members apart by class attributes (not config.json
    fields): :class:`RobertaConfig` (``xlm-roberta``, ``camembert``, ``data2vec-text`` subclass it),
    :class:`DistilBertConfig`, :class:`ElectraConfig`."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    position_embedding_type: str = "absolute"
    pad_token_id: int | None = 0
    is_decoder: bool = False
    id2label: dict | None = None
    num_labels: int | None = None
    tie_word_embeddings: bool = True
    architectures: list | None = None
    model_type: str = "bert"

    #: the base-model prefix of the parameter names
    base_prefix: ClassVar[str] = "bert."
    #: layer parameter names: ``bert`` (``encoder.layer.{i}.attention.self.query``, ...) or
    #: ``distilbert`` (``transformer.layer.{i}.attention.q_lin``, ...)
    layout: ClassVar[str] = "bert"
    #: default positions ``cumsum(m) * m + pad_token_id`` with ``m = input_ids != pad`` (roberta)
    positions_from_ids: ClassVar[bool] = False
    #: a token-type embedding is added (not distilbert)
    token_types: ClassVar[bool] = True
    #: the base model has a tanh pooler (not distilbert, electra)
    has_pooler: ClassVar[bool] = True
    #: the heads' names and classifiers: ``bert``, ``roberta``, ``electra`` or ``distilbert``
    head_style: ClassVar[str] = "bert"

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            _positive(name, getattr(self, name))
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"config field `hidden_size` ({self.hidden_size}) must be divisible by "
                f"`num_attention_heads` ({self.num_attention_heads})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"config field `hidden_act` {self.hidden_act!r} is not supported; "
                f"use one of {sorted(ACTIVATIONS)}"
            )
        if self.position_embedding_type != "absolute":
            raise ValueError(
                f"config field `position_embedding_type` {self.position_embedding_type!r} is not "
                "supported; use 'absolute'"
            )
        if self.is_decoder:
            raise ValueError("config field `is_decoder` must be false: tensorweave's BERT is an encoder")
        if self.id2label is not None:
            if not all(_is_int(k) or (isinstance(k, str) and k.strip().isdigit()) for k in self.id2label):
                raise ValueError(
                    f"config field `id2label` must map label ids (integers) to names, got {self.id2label!r}"
                )
            self.id2label = {int(k): v for k, v in self.id2label.items()}
        if self.num_labels is None:
            self.num_labels = len(self.id2label) if self.id2label else 2
        _positive("num_labels", self.num_labels)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def embedding_dim(self) -> int:
        """Width of the embeddings (ELECTRA's ``embedding_size``; else ``hidden_size``)."""
        return self.hidden_size


@dataclass
class RobertaConfig(BertConfig):
    """RoBERTa: BERT's layers under ``roberta.``; positions count from ``pad_token_id + 1`` over
    the non-padding tokens; classification head ``out_proj(tanh(dense(h[:, 0])))``, no pooler
    outside ``default`` / multiple-choice; masked-lm head ``lm_head`` (gelu)."""

    vocab_size: int = 50265
    pad_token_id: int | None = 1
    model_type: str = "roberta"
    base_prefix: ClassVar[str] = "roberta."
    positions_from_ids: ClassVar[bool] = True
    head_style: ClassVar[str] = "roberta"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _is_int(self.pad_token_id) or self.pad_token_id < 0:
            raise ValueError(
                f"config field `pad_token_id` must be a non-negative integer for {self.model_type} "
                f"(positions count from pad_token_id + 1), got {self.pad_token_id!r}"
            )
        if self.pad_token_id >= self.max_position_embeddings:
            raise ValueError(
                f"config field `pad_token_id` ({self.pad_token_id}) must be below `max_position_embeddings` "
                f"({self.max_position_embeddings}): padding takes position pad_token_id"
            )


@dataclass
class XLMRobertaConfig(RobertaConfig):
    """XLM-RoBERTa: :class:`RobertaConfig` with its own defaults."""

    vocab_size: int = 30522
    model_type: str = "xlm-roberta"


@dataclass
class CamembertConfig(RobertaConfig):
    """CamemBERT: :class:`RobertaConfig` with its own defaults."""

    vocab_size: int = 30522
    model_type: str = "camembert"


@dataclass
class Data2VecTextConfig(RobertaConfig):
    """Data2Vec-Text: the RoBERTa layout under ``data2vec_text.``."""

    vocab_size: int = 30522
    model_type: str = "data2vec-text"
    base_prefix: ClassVar[str] = "data2vec_text."


@dataclass
class DistilBertConfig(BertConfig):
    """DistilBERT: no token types, no pooler, LayerNorm eps 1e-12; config.json spells the fields
    ``dim``, ``n_layers``, ``n_heads``, ``hidden_dim``, ``activation`` (read as ``hidden_size``, ...,
    see ``FIELD_NAMES``); sequence classification ``classifier(relu(pre_classifier(h[:, 0])))``.
    ``sinusoidal_pos_embds`` only says how the position table was made: the table is a tensor of
    the checkpoint either way."""

    num_hidden_layers: int = 6
    sinusoidal_pos_embds: bool = False
    model_type: str = "distilbert"
    base_prefix: ClassVar[str] = "distilbert."
    layout: ClassVar[str] = "distilbert"
    token_types: ClassVar[bool] = False
    has_pooler: ClassVar[bool] = False
    head_style: ClassVar[str] = "distilbert"

    def to_dict(self) -> dict:
        """Hugging Face's spelling (``dim``, ``n_layers``, ...) for the renamed fields."""
        d = super().to_dict()
        for key, field in FIELD_NAMES["distilbert"].items():
            d[key] = d.pop(field)
        return d


@dataclass
class ElectraConfig(BertConfig):
    """ELECTRA: embeddings of width ``embedding_size`` (``embeddings_project`` maps them to
    ``hidden_size`` when they differ), no pooler; heads ``classifier.out_proj(gelu(classifier.dense(
    h[:, 0])))``, the generator's masked-lm head, and multiple choice through ``sequence_summary``."""

    embedding_size: int = 128
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    summary_type: str = "first"
    summary_use_proj: bool = True
    summary_activation: str | None = "gelu"
    summary_proj_to_labels: bool = False
    model_type: str = "electra"
    base_prefix: ClassVar[str] = "electra."
    has_pooler: ClassVar[bool] = False
    head_style: ClassVar[str] = "electra"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("embedding_size", self.embedding_size)
        if self.summary_activation is not None and self.summary_activation not in (*ACTIVATIONS, "tanh"):
            raise ValueError(
                f"config field `summary_activation` {self.summary_activation!r} is not supported; "
                f"use null, 'tanh' or one of {sorted(ACTIVATIONS)}"
            )

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size


@dataclass
class T5Config(_ConfigMixin):
    """T5 encoder-decoder: relative attention bias, RMS LayerNorm without bias, no linear biases.

    ``feed_forward_proj`` is ``ACT`` (``wo(act(wi(x)))``, original T5: ``relu``) or ``gated-ACT``
    (``wo(act(wi_0(x)) * wi_1(x))``, T5 v1.1: ``gated-gelu``, whose gelu is the tanh
    approximation ``gelu_new`` as in Hugging Face). ``tie_word_embeddings`` (default true) makes
    the lm_head the ``shared`` embedding; ``scale_decoder_outputs`` (transformers v5's field;
    defaults to ``tie_word_embeddings``, Hugging Face 4.x's rule) multiplies the decoder output
    by ``d_model ** -0.5`` before the lm_head."""

    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64
    d_ff: int = 2048
    num_layers: int = 6
    num_decoder_layers: int | None = None
    num_heads: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "relu"
    tie_word_embeddings: bool = True
    scale_decoder_outputs: bool | None = None
    decoder_start_token_id: int | None = 0
    pad_token_id: int | None = 0
    eos_token_id: Any = 1
    bos_token_id: int | None = None
    architectures: list | None = None
    model_type: str = "t5"

    def __post_init__(self) -> None:
        _check_field_types(self)
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        for name in (
            "vocab_size",
            "d_model",
            "d_kv",
            "d_ff",
            "num_layers",
            "num_decoder_layers",
            "num_heads",
            "relative_attention_num_buckets",
            "relative_attention_max_distance",
        ):
            _positive(name, getattr(self, name))
        _positive_float("layer_norm_epsilon", self.layer_norm_epsilon)
        if self.relative_attention_num_buckets < 4:
            raise ValueError(
                f"config field `relative_attention_num_buckets` must be at least 4 (half of them per "
                f"direction, half of those exact), got {self.relative_attention_num_buckets}"
            )
        if self.relative_attention_max_distance <= self.relative_attention_num_buckets // 2:
            raise ValueError(
                f"config field `relative_attention_max_distance` ({self.relative_attention_max_distance}) "
                f"must exceed relative_attention_num_buckets // 2 "
                f"({self.relative_attention_num_buckets // 2})"
            )
        parts = self.feed_forward_proj.split("-") if isinstance(self.feed_forward_proj, str) else []
        if (
            not (len(parts) == 1 or (len(parts) == 2 and parts[0] == "gated"))
            or parts[-1] not in T5_ACTIVATIONS
        ):
            raise ValueError(
                f"config field `feed_forward_proj` {self.feed_forward_proj!r} is not supported; use "
                f"ACT or gated-ACT with ACT one of {sorted(T5_ACTIVATIONS)} (e.g. 'relu', 'gated-gelu')"
            )
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = bool(self.tie_word_embeddings)
        if self.decoder_start_token_id is not None:
            _nonnegative("decoder_start_token_id", self.decoder_start_token_id)

    @property
    def is_gated_act(self) -> bool:
        return self.feed_forward_proj.startswith("gated-")

    @property
    def dense_act_fn(self) -> str:
        """The activation's name; ``gated-gelu`` means ``gelu_new`` (Hugging Face's compatibility rule)."""
        return "gelu_new" if self.feed_forward_proj == "gated-gelu" else self.feed_forward_proj.split("-")[-1]

    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_kv

    @property
    def num_attention_heads(self) -> int:
        return self.num_heads

    @property
    def num_key_value_heads(self) -> int:
        return self.num_heads

    @property
    def num_hidden_layers(self) -> int:
        """Encoder layers (Hugging Face's ``attribute_map``)."""
        return self.num_layers


def _nonnegative(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"config field `{name}` must be a non-negative integer, got {value!r}")


# activation name -> (gelu approximate mode or "relu"), shared by GPT-2 and BERT
ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "relu": "relu"}
#: the rotary decoder family (llama.py), model_type -> config class
ROTARY_CONFIGS = {
    "llama": LlamaConfig,
    "mistral": MistralConfig,
    "qwen2": Qwen2Config,
    "qwen3": Qwen3Config,
    "phi3": Phi3Config,
    "gemma": GemmaConfig,
    "gemma2": Gemma2Config,
    "olmo2": Olmo2Config,
    "granite": GraniteConfig,
    "starcoder2": Starcoder2Config,
    "stablelm": StableLmConfig,
    "gpt_neox": GPTNeoXConfig,
    "gptj": GPTJConfig,
    "phi": PhiConfig,
    "mixtral": MixtralConfig,
    "qwen2_moe": Qwen2MoeConfig,
    "gemma3_text": Gemma3TextConfig,
    "codegen": CodeGenConfig,
    "gpt_neo": GPTNeoConfig,
    "falcon": FalconConfig,
    "bloom": BloomConfig,
}
#: legacy config.json keys read as their current field, when that field itself is absent
LEGACY_FIELDS = {"gpt_neox": {"rotary_pct": "partial_rotary_factor", "rotary_emb_base": "rope_theta"}}
#: config.json keys that *are* a field of another name (GPT-J's GPT-2 style names; they win over a
#: stray key of the family's name, as in Hugging Face, whose GPT-J reads only these)
FIELD_NAMES = {
    "gptj": {
        "n_embd": "hidden_size",
        "n_layer": "num_hidden_layers",
        "n_head": "num_attention_heads",
        "n_positions": "max_position_embeddings",
        "n_inner": "intermediate_size",
        "layer_norm_epsilon": "layer_norm_eps",
        "activation_function": "hidden_act",
    },
    "codegen": {
        "n_embd": "hidden_size",
        "n_layer": "num_hidden_layers",
        "n_head": "num_attention_heads",
        "n_positions": "max_position_embeddings",
        "n_inner": "intermediate_size",
        "layer_norm_epsilon": "layer_norm_eps",
        "activation_function": "hidden_act",
    },
    "gpt_neo": {
        "num_layers": "num_hidden_layers",
        "num_heads": "num_attention_heads",
        "layer_norm_epsilon": "layer_norm_eps",
        "activation_function": "hidden_act",
    },
    "falcon": {
        "ffn_hidden_size": "intermediate_size",
        "layer_norm_epsilon": "layer_norm_eps",
        "activation": "hidden_act",
    },
    "bloom": {
        "n_layer": "num_hidden_layers",
        "n_head": "num_attention_heads",
        "layer_norm_epsilon": "layer_norm_eps",
    },
    "distilbert": {
        "dim": "hidden_size",
        "n_layers": "num_hidden_layers",
        "n_heads": "num_attention_heads",
        "hidden_dim": "intermediate_size",
        "activation": "hidden_act",
    },
}
#: the encoder family (bert.py), model_type -> config class
ENCODER_CONFIGS = {
    "bert": BertConfig,
    "roberta": RobertaConfig,
    "xlm-roberta": XLMRobertaConfig,
    "camembert": CamembertConfig,
    "data2vec-text": Data2VecTextConfig,
    "distilbert": DistilBertConfig,
    "electra": ElectraConfig,
}
CONFIGS = {"gpt2": GPT2Config, **ROTARY_CONFIGS, **ENCODER_CONFIGS, "t5": T5Config}
# activations a T5 `feed_forward_proj` may name (alone or after "gated-")
T5_ACTIVATIONS = (*ACTIVATIONS, "silu")


def config_from_dict(d: dict) -> Any:
    """A config from a Hugging Face config dict; unknown keys are ignored, known ones validated."""
    if not isinstance(d, dict):
        raise ValueError(f"a model config must be a dict, got {type(d).__name__}")
    model_type = d.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIGS:
        raise ValueError(
            f"config field `model_type` {model_type!r} is not supported; supported: {sorted(CONFIGS)}"
        )
    cls = CONFIGS[model_type]
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in d.items() if k in names}
    for old, field in LEGACY_FIELDS.get(model_type, {}).items():
        if d.get(old) is not None and field not in d:
            kwargs[field] = d[old]
    for old, field in FIELD_NAMES.get(model_type, {}).items():
        if old in d:
            kwargs[field] = d[old]
    if model_type == "gemma3_text":
        d = _gemma3_rope_fields(d, kwargs)
    if model_type in ROTARY_CONFIGS and d.get("rope_parameters") is not None:
        rp = d["rope_parameters"]  # transformers v5 keeps rope_theta / rope_type / scaling here
        if not isinstance(rp, dict):
            raise ValueError(
                f"config field `rope_parameters` must be an object like "
                f'{{"rope_type": "default", "rope_theta": 10000.0}}, got {rp!r}'
            )
        if "rope_theta" not in d:
            theta = rp.get("rope_theta", 10000.0)
            if isinstance(theta, bool) or not isinstance(theta, (int, float)):
                raise ValueError(f"config field `rope_parameters.rope_theta` must be a number, got {theta!r}")
            kwargs["rope_theta"] = float(theta)
        if "partial_rotary_factor" in names and "partial_rotary_factor" in rp:
            # transformers v5 reads the factor from rope_parameters (a top-level copy may be stale)
            kwargs["partial_rotary_factor"] = rp["partial_rotary_factor"]
        if d.get("rope_scaling") is None:
            check_rope_scaling(
                {"rope_type": "default", **rp}, "rope_parameters", "partial_rotary_factor" in names
            )
            if rp.get("rope_type", rp.get("type", "default")) != "default":
                kwargs["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
    if model_type in ENCODER_CONFIGS and "num_labels" in d and "id2label" not in d:
        kwargs["num_labels"] = d["num_labels"]
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a field of the wrong kind that dataclass init itself rejects
        raise ValueError(f"bad {model_type} config: {exc}") from None
    except ValueError as exc:
        renamed = {f: k for k, f in FIELD_NAMES.get(model_type, {}).items() if k in d}
        if not renamed:
            raise
        msg = str(exc)  # name the field as the config.json spells it (GPT-J: `n_embd`, ...)
        for field, key in renamed.items():
            msg = msg.replace(f"`{field}`", f"`{key}`")
        raise ValueError(msg) from None


def _gemma3_rope_fields(d: dict, kwargs: dict) -> dict:
    """transformers v5 keeps Gemma 3's rope per layer type (``rope_parameters: {"full_attention":
    {...}, "sliding_attention": {...}}``): the full one is read as the rope parameters, the
    sliding one's ``rope_theta`` as ``rope_local_base_freq`` (its type must be default); 4.x's
    ``sliding_window_pattern`` may also be spelled ``_sliding_window_pattern``."""
    if "_sliding_window_pattern" in d and "sliding_window_pattern" not in d:
        kwargs["sliding_window_pattern"] = d["_sliding_window_pattern"]
    rp = d.get("rope_parameters")
    if not isinstance(rp, dict) or not ({"full_attention", "sliding_attention"} & set(rp)):
        return d
    full, local = rp.get("full_attention") or {}, rp.get("sliding_attention") or {}
    if not isinstance(full, dict) or not isinstance(local, dict):
        raise ValueError(f"config field `rope_parameters` must map layer types to objects, got {rp!r}")
    if local.get("rope_type", local.get("type", "default")) != "default":
        raise ValueError(
            f"config field `rope_parameters.sliding_attention` must have rope type 'default', got {local!r}"
        )
    if "rope_theta" in local and "rope_local_base_freq" not in d:
        kwargs["rope_local_base_freq"] = local["rope_theta"]
    return {**d, "rope_parameters": full}


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not a UTF-8 text file (byte {exc.start}: {exc.reason}); config.json must be JSON text"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path} is not a usable JSON config: it is nested too deeply") from None
    except OSError as exc:
        raise ValueError(f"cannot read config {path}: {exc.strerror}") from None


def config_from_json_file(path: str) -> Any:
    """A config from a ``config.json`` file (dispatching on its ``model_type``)."""
    return config_from_dict(_read_json(path))
