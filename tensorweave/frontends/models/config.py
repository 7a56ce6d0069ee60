"""Model configs compatible with Hugging Face ``config.json`` fields (gpt2, bert, t5 and the rotary
decoder family: llama, mistral, qwen2, qwen3, phi3, gemma).

``config_from_dict(d)`` (or ``GPT2Config.from_dict(d)``, ...) dispatches on ``model_type``;
unknown types and invalid fields raise a one-line ``ValueError`` naming the field and the fix.
Keys a config does not use (``architectures``, ``torch_dtype``, dropout rates, ...) are ignored;
``architectures`` is kept because it names the head a checkpoint was saved with.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar


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
ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")


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

    A ``partial_rotary_factor`` other than 1 is refused unless ``partial_rotary`` (phi3 reads it).
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


@dataclass
class RotaryConfig(_ConfigMixin):
    """The rotary decoder family (``llama.py``): fields every member shares, with Hugging Face's
    names, and the switches that tell the members apart (class attributes and properties, not
    config.json fields). Each member is a subclass with its own defaults and extra fields:
    :class:`LlamaConfig`, :class:`MistralConfig`, :class:`Qwen2Config`, :class:`Qwen3Config`,
    :class:`Phi3Config`, :class:`GemmaConfig`."""

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

    #: accepted ``hidden_act`` values (the gated MLP's activation)
    ACTIVATIONS: ClassVar[tuple[str, ...]] = ("silu",)
    #: q/k RMSNorm over head_dim before rope (``self_attn.q_norm`` / ``k_norm``), qwen3
    qk_norm: ClassVar[bool] = False
    #: fused ``self_attn.qkv_proj`` and ``mlp.gate_up_proj`` weights, phi3
    fused_projections: ClassVar[bool] = False
    #: RMSNorm weight used as ``offset + w`` (gemma: 1)
    norm_offset: ClassVar[float] = 0.0
    #: embeddings multiplied by ``sqrt(hidden_size)`` (gemma)
    scale_embeddings: ClassVar[bool] = False

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
        if self.head_dim % 2:
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

    # ------------------------------------------------------------------ switches
    @property
    def qkv_bias(self) -> bool:
        """q/k/v projections have biases."""
        return False

    @property
    def o_bias(self) -> bool:
        """The output projection has a bias."""
        return False

    @property
    def mlp_has_bias(self) -> bool:
        return False

    @property
    def rotary_dim(self) -> int:
        """How many leading dims of each head rope rotates (the rest pass through)."""
        return self.head_dim  # type: ignore[return-value]

    @property
    def mlp_activation(self) -> str:
        """``silu`` (SwiGLU) or ``gelu_tanh`` (GeGLU with the tanh approximation)."""
        return "silu" if self.hidden_act == "silu" else "gelu_tanh"

    def layer_window(self, layer: int) -> int | None:
        """The sliding window of ``layer`` (a key at position ``j`` is visible to the query at ``i``
        when ``i - window < j <= i``), or None for full causal attention."""
        return None


def _check_window(cfg: Any) -> None:
    if cfg.sliding_window is not None:
        _positive("sliding_window", cfg.sliding_window)


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
        if self.layer_types is not None:
            if len(self.layer_types) != self.num_hidden_layers or any(
                t not in LAYER_TYPES for t in self.layer_types
            ):
                raise ValueError(
                    f"config field `layer_types` must list one of {list(LAYER_TYPES)} per layer "
                    f"({self.num_hidden_layers}), got {self.layer_types!r}"
                )

    @property
    def qkv_bias(self) -> bool:
        return True

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
    qk_norm: ClassVar[bool] = True

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
        _positive_float("partial_rotary_factor", self.partial_rotary_factor)
        rd = int(self.head_dim * self.partial_rotary_factor)  # type: ignore[operator]
        if self.partial_rotary_factor > 1 or rd < 2 or rd % 2:
            raise ValueError(
                f"config field `partial_rotary_factor` ({self.partial_rotary_factor}) must give an even "
                f"number of rotary dims between 2 and head_dim ({self.head_dim}), got {rd}"
            )

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
    """BERT encoder: word + position + token-type embeddings, post-LayerNorm blocks, tanh pooler."""

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
}
CONFIGS = {"gpt2": GPT2Config, **ROTARY_CONFIGS, "bert": BertConfig, "t5": T5Config}
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
        if (
            "partial_rotary_factor" in names
            and "partial_rotary_factor" not in d
            and "partial_rotary_factor" in rp
        ):
            kwargs["partial_rotary_factor"] = rp["partial_rotary_factor"]
        if d.get("rope_scaling") is None:
            check_rope_scaling({"rope_type": "default", **rp}, "rope_parameters", model_type == "phi3")
            if rp.get("rope_type", rp.get("type", "default")) != "default":
                kwargs["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
    if model_type == "bert" and "num_labels" in d and "id2label" not in d:
        kwargs["num_labels"] = d["num_labels"]
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a field of the wrong kind that dataclass init itself rejects
        raise ValueError(f"bad {model_type} config: {exc}") from None


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
