"""Model configs compatible with Hugging Face ``config.json`` fields (gpt2, t5, the encoder family:
bert, roberta, xlm-roberta, camembert, data2vec-text, distilbert, electra, and the rotary
decoder family: llama, mistral, qwen2, qwen3, phi3, gemma, gemma2, olmo2, granite, starcoder2,
stablelm, gpt_neox, gptj, phi, mixtral, qwen2_moe; the BART encoder-decoder family: bart, mbart,
marian, m2m_100, blenderbot, blenderbot-small, bigbird_pegasus).

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


#: GPT-2-style activation names -> the tanh/erf/relu mode of ``gpt2.activation``
ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "relu": "relu"}


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

    #: switches (ImageGPT differs): activations accepted; LayerNorm with bias (False: ImageGPT's
    #: norm, ``x / sqrt(mean(x^2) + eps) * w``, no centring, no bias); rows of ``lm_head`` fewer
    #: than ``vocab_size`` by ``head_rows_short`` (ImageGPT never predicts its start token)
    ACTIVATIONS: ClassVar[tuple[str, ...]] = tuple(ACTIVATIONS)
    layer_norm_centred: ClassVar[bool] = True
    head_rows_short: ClassVar[int] = 0

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
        if self.activation_function not in self.ACTIVATIONS:
            raise ValueError(
                f"config field `activation_function` {self.activation_function!r} is not supported; "
                f"use one of {sorted(self.ACTIVATIONS)}"
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
class ImageGPTConfig(GPT2Config):
    """ImageGPT: GPT-2 over colour-cluster tokens (``vocab_size - 1`` clusters plus a start token);
    norms ``x / sqrt(mean(x^2) + eps) * w`` (no centring, no bias), ``quick_gelu`` MLP
    (``x * sigmoid(1.702 x)``), untied ``lm_head`` with ``vocab_size - 1`` rows; or the
    ``image-classification`` head (``score``, ``num_labels`` rows, over the mean hidden state)."""

    vocab_size: int = 513
    n_embd: int = 512
    n_layer: int = 24
    n_head: int = 8
    activation_function: str = "quick_gelu"
    bos_token_id: int | None = None
    eos_token_id: Any = None
    tie_word_embeddings: bool = False
    # the classifier's labels; not compared (transformers writes default names to config.json or not)
    id2label: dict | None = dataclasses.field(default=None, compare=False)
    num_labels: int | None = None
    model_type: str = "imagegpt"

    ACTIVATIONS: ClassVar[tuple[str, ...]] = (*ACTIVATIONS, "quick_gelu")
    layer_norm_centred: ClassVar[bool] = False
    head_rows_short: ClassVar[int] = 1
    #: Hugging Face class -> head, besides the causal LM (``ImageGPTForCausalImageModeling``)
    head_classes: ClassVar[dict[str, str]] = {"ImageGPTForImageClassification": "image-classification"}

    def __post_init__(self) -> None:
        super().__post_init__()
        _encoder_labels(self)
        if self.tie_word_embeddings:
            raise ValueError(
                "config field `tie_word_embeddings` must be false for imagegpt (its lm_head has "
                "vocab_size - 1 rows, so it cannot share wte)"
            )


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
    #: the heads' names and classifiers: ``bert``, ``roberta``, ``electra``, ``distilbert``,
    #: ``albert``, ``roformer`` or ``rembert``
    head_style: ClassVar[str] = "bert"
    #: the heads Hugging Face has a class for (layoutlm has no multiple-choice)
    heads: ClassVar[tuple[str, ...]] = BERT_HEADS
    #: the embeddings -> hidden projection (under the base prefix), applied when the embedding
    #: width differs from ``hidden_size`` or, with ``always_project``, always (albert, rembert)
    projection: ClassVar[str] = "embeddings_project"
    always_project: ClassVar[bool] = False
    #: the pooler's linear (under the base prefix): ``pooler.dense``, albert's ``pooler``
    pooler_name: ClassVar[str] = "pooler.dense"
    #: rotary positions inside self-attention instead of a position table (roformer)
    rotary: ClassVar[bool] = False
    #: a ``bbox [b, s, 4]`` input adds 2-D position embeddings (layoutlm)
    has_bbox: ClassVar[bool] = False

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

    @property
    def mlm_width(self) -> int:
        """Width of the masked-lm transform (the embedding width where the decoder is tied to a
        narrower embedding: electra, albert, roformer; rembert's ``output_embedding_size``)."""
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

    @property
    def mlm_width(self) -> int:
        return self.embedding_size


@dataclass
class AlbertConfig(BertConfig):
    """ALBERT: embeddings of width ``embedding_size`` always mapped by
    ``encoder.embedding_hidden_mapping_in``; ``num_hidden_groups`` groups of ``inner_group_num``
    layers, layer ``i`` running group ``int(i / (num_hidden_layers / num_hidden_groups))`` (so
    the weights are shared); pooler ``albert.pooler``; masked-lm head ``predictions.*`` of width
    ``embedding_size``; classifiers on the pooler."""

    vocab_size: int = 30000
    embedding_size: int = 128
    hidden_size: int = 4096
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    num_hidden_groups: int = 1
    inner_group_num: int = 1
    hidden_act: str = "gelu_new"
    model_type: str = "albert"
    base_prefix: ClassVar[str] = "albert."
    layout: ClassVar[str] = "albert"
    head_style: ClassVar[str] = "albert"
    projection: ClassVar[str] = "encoder.embedding_hidden_mapping_in"
    always_project: ClassVar[bool] = True
    pooler_name: ClassVar[str] = "pooler"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("embedding_size", "num_hidden_groups", "inner_group_num"):
            _positive(name, getattr(self, name))
        if self.num_hidden_groups > self.num_hidden_layers:
            raise ValueError(
                f"config field `num_hidden_groups` ({self.num_hidden_groups}) must not exceed "
                f"`num_hidden_layers` ({self.num_hidden_layers}): every group must run"
            )

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size

    @property
    def mlm_width(self) -> int:
        return self.embedding_size


@dataclass
class RoFormerConfig(BertConfig):
    """RoFormer: no position table; q and k (and v with ``rotary_value``) of every self-attention
    are rotated by a sinusoidal table over ``head_dim``; embeddings of width ``embedding_size``
    (null: ``hidden_size``) projected by ``embeddings_project`` when they differ; no pooler;
    classifier ``out_proj(act(dense(h[:, 0])))`` with ``hidden_act``; multiple choice reads the
    last position ``classifier(h[:, -1])``."""

    vocab_size: int = 50000
    embedding_size: int | None = None
    max_position_embeddings: int = 1536
    rotary_value: bool = False
    model_type: str = "roformer"
    base_prefix: ClassVar[str] = "roformer."
    head_style: ClassVar[str] = "roformer"
    has_pooler: ClassVar[bool] = False
    rotary: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.embedding_size is None:
            self.embedding_size = self.hidden_size
        super().__post_init__()
        _positive("embedding_size", self.embedding_size)
        if self.head_dim % 2:
            raise ValueError(
                f"config fields `hidden_size` / `num_attention_heads` must give an even head size for "
                f"rotary positions, got {self.head_dim}"
            )

    @property
    def embedding_dim(self) -> int:
        return int(self.embedding_size or self.hidden_size)

    @property
    def mlm_width(self) -> int:
        return self.embedding_dim


@dataclass
class IBertConfig(RobertaConfig):
    """I-BERT with ``quant_mode`` false: RoBERTa numerically (names under ``ibert.``; the
    quantisation buffers of the checkpoint are ignored). ``quant_mode`` true (integer-only
    inference) is refused."""

    vocab_size: int = 30522
    quant_mode: bool = False
    force_dequant: str = "none"
    model_type: str = "ibert"
    base_prefix: ClassVar[str] = "ibert."

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.quant_mode:
            raise ValueError(
                "config field `quant_mode` must be false: tensorweave runs I-BERT in floating point "
                "(its integer-only mode is not supported)"
            )
        if self.hidden_act != "gelu":
            raise ValueError(f"config field `hidden_act` must be 'gelu' for ibert, got {self.hidden_act!r}")


@dataclass
class LayoutLMConfig(BertConfig):
    """LayoutLM: BERT plus 2-D position embeddings of a ``bbox [b, s, 4]`` input
    ``(x0, y0, x1, y1)`` in ``0 .. max_2d_position_embeddings - 1``: ``x[x0] + y[y0] + x[x1] +
    y[y1] + h[y1 - y0] + w[x1 - x0]`` added to the embeddings; no multiple-choice head."""

    max_2d_position_embeddings: int = 1024
    model_type: str = "layoutlm"
    base_prefix: ClassVar[str] = "layoutlm."
    heads: ClassVar[tuple[str, ...]] = tuple(h for h in BERT_HEADS if h != "multiple-choice")
    has_bbox: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("max_2d_position_embeddings", self.max_2d_position_embeddings)


@dataclass
class RemBertConfig(BertConfig):
    """RemBERT: embeddings of width ``input_embedding_size`` mapped by
    ``encoder.embedding_hidden_mapping_in``; masked-lm head ``cls.predictions.{dense, LayerNorm,
    decoder}`` of width ``output_embedding_size`` with its own (never tied) decoder."""

    vocab_size: int = 250300
    hidden_size: int = 1152
    num_hidden_layers: int = 32
    num_attention_heads: int = 18
    input_embedding_size: int = 256
    output_embedding_size: int = 1664
    intermediate_size: int = 4608
    tie_word_embeddings: bool = False
    model_type: str = "rembert"
    base_prefix: ClassVar[str] = "rembert."
    head_style: ClassVar[str] = "rembert"
    projection: ClassVar[str] = "encoder.embedding_hidden_mapping_in"
    always_project: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("input_embedding_size", "output_embedding_size"):
            _positive(name, getattr(self, name))

    @property
    def embedding_dim(self) -> int:
        return self.input_embedding_size

    @property
    def mlm_width(self) -> int:
        return self.output_embedding_size


def _encoder_labels(cfg: Any) -> None:
    """``id2label`` keys read as ints; ``num_labels`` defaults to ``len(id2label)`` or 2 (as
    :class:`BertConfig` does)."""
    if cfg.id2label is not None:
        if not all(_is_int(k) or (isinstance(k, str) and k.strip().isdigit()) for k in cfg.id2label):
            raise ValueError(
                f"config field `id2label` must map label ids (integers) to names, got {cfg.id2label!r}"
            )
        cfg.id2label = {int(k): v for k, v in cfg.id2label.items()}
    if cfg.num_labels is None:
        cfg.num_labels = len(cfg.id2label) if cfg.id2label else 2
    _positive("num_labels", cfg.num_labels)


#: ``summary_type`` values of Hugging Face's sequence summary that the encoders implement
SUMMARY_TYPES = ("first", "last", "mean", "cls_index")


def _check_summary_fields(cfg: Any) -> None:
    """The sequence-summary fields (xlm, flaubert, convbert): a known ``summary_type`` and an
    activation of null, ``tanh`` or :data:`ACTIVATIONS`."""
    if cfg.summary_type not in SUMMARY_TYPES:
        raise ValueError(
            f"config field `summary_type` {cfg.summary_type!r} is not supported; use one of {list(SUMMARY_TYPES)}"
        )
    if cfg.summary_activation is not None and cfg.summary_activation not in (*ACTIVATIONS, "tanh"):
        raise ValueError(
            f"config field `summary_activation` {cfg.summary_activation!r} is not supported; "
            f"use null, 'tanh' or one of {sorted(ACTIVATIONS)}"
        )


@dataclass
class XLMConfig(_ConfigMixin):
    """XLM (``xlm.py``): word + position (+ language) embeddings, post-LayerNorm blocks with a
    ``4 * emb_dim`` MLP (gelu, or relu without ``gelu_activation``), no pooler. config.json spells
    ``emb_dim``, ``n_layers``, ``n_heads`` (read as ``hidden_size``, ...; ``FIELD_NAMES``).
    ``sinusoidal_embeddings`` only says how the position table was made: it is a checkpoint
    tensor either way."""

    vocab_size: int = 30145
    hidden_size: int = 2048
    num_hidden_layers: int = 12
    num_attention_heads: int = 16
    gelu_activation: bool = True
    sinusoidal_embeddings: bool = False
    causal: bool = False
    asm: bool = False
    n_langs: int = 1
    use_lang_emb: bool = True
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    is_encoder: bool = True
    summary_type: str = "first"
    summary_use_proj: bool = True
    summary_activation: str | None = None
    summary_proj_to_labels: bool = True
    pad_token_id: int | None = 2
    bos_token_id: int | None = 0
    eos_token_id: int | None = 1
    id2label: dict | None = None
    num_labels: int | None = None
    tie_word_embeddings: bool = True
    architectures: list | None = None
    model_type: str = "xlm"

    base_prefix: ClassVar[str] = "transformer."
    #: token types are looked up in the word embeddings (the tokenizer gives them)
    token_types: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "n_langs"):
            _positive(name, getattr(self, name))
        _positive("max_position_embeddings", self.max_position_embeddings)
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"config field `hidden_size` ({self.hidden_size}) must be divisible by "
                f"`num_attention_heads` ({self.num_attention_heads})"
            )
        if self.asm:
            raise ValueError(
                "config field `asm` must be false: the adaptive-softmax output layer is not supported"
            )
        if not self.is_encoder:
            raise ValueError(
                f"config field `is_encoder` must be true: {self.model_type} runs only as an encoder"
            )
        _check_summary_fields(self)
        _encoder_labels(self)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def intermediate_size(self) -> int:
        """The MLP width, always ``4 * emb_dim``."""
        return 4 * self.hidden_size

    @property
    def hidden_act(self) -> str:
        return "gelu" if self.gelu_activation else "relu"

    @property
    def pre_norm_blocks(self) -> bool:
        """LayerNorm before each sub-block (FlauBERT's ``pre_norm``); XLM is post-norm."""
        return bool(getattr(self, "pre_norm", False))

    @property
    def has_lang_emb(self) -> bool:
        """A language embedding table exists (``n_langs > 1`` and ``use_lang_emb``)."""
        return self.n_langs > 1 and self.use_lang_emb


@dataclass
class FlaubertConfig(XLMConfig):
    """FlauBERT: :class:`XLMConfig` plus ``pre_norm`` (LayerNorm before each sub-block, no final
    norm) and ``layerdrop`` (training only: every layer runs at inference)."""

    pre_norm: bool = False
    layerdrop: float = 0.0
    model_type: str = "flaubert"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.layerdrop <= 1:
            raise ValueError(
                f"config field `layerdrop` must be a probability in [0, 1], got {self.layerdrop!r}"
            )


def _divides(group_field: str, groups: int, channel_field: str, channels: int) -> None:
    if channels % groups:
        raise ValueError(
            f"config field `{group_field}` ({groups}) must divide `{channel_field}` ({channels}): "
            "each group convolves an equal share of the channels"
        )


@dataclass
class SqueezeBertConfig(BertConfig):
    """SqueezeBERT (``squeezebert.py``): BERT's post-LayerNorm block with every projection a
    grouped 1x1 convolution (``q_groups``, ``k_groups``, ``v_groups``, ``post_attention_groups``,
    ``intermediate_groups``, ``output_groups``); tanh pooler on every head; BERT's heads under
    ``transformer.``."""

    embedding_size: int = 768
    q_groups: int = 4
    k_groups: int = 4
    v_groups: int = 4
    post_attention_groups: int = 1
    intermediate_groups: int = 4
    output_groups: int = 4
    model_type: str = "squeezebert"
    base_prefix: ClassVar[str] = "transformer."

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embedding_size != self.hidden_size:
            raise ValueError(
                f"config field `embedding_size` ({self.embedding_size}) must equal `hidden_size` "
                f"({self.hidden_size}), as Hugging Face's SqueezeBERT requires"
            )
        d, ff = self.hidden_size, self.intermediate_size
        for name in ("q_groups", "k_groups", "v_groups", "post_attention_groups"):
            _positive(name, getattr(self, name))
            _divides(name, getattr(self, name), "hidden_size", d)
        for name in ("intermediate_groups", "output_groups"):
            _positive(name, getattr(self, name))
            _divides(name, getattr(self, name), "hidden_size", d)
            _divides(name, getattr(self, name), "intermediate_size", ff)


MOBILEBERT_NORMS = ("no_norm", "layer_norm")


@dataclass
class MobileBertConfig(BertConfig):
    """MobileBERT (``mobilebert.py``): trigram input embeddings of width ``embedding_size``
    projected to ``hidden_size``, bottleneck layers of width ``intra_bottleneck_size``,
    ``num_feedforward_networks`` stacked MLPs, ``NoNorm`` (``x * w + b``) or LayerNorm
    (``normalization_type``); pooler ``h[:, 0]`` or ``tanh(dense(h[:, 0]))``
    (``classifier_activation``)."""

    hidden_size: int = 512
    num_hidden_layers: int = 24
    num_attention_heads: int = 4
    intermediate_size: int = 512
    hidden_act: str = "relu"
    embedding_size: int = 128
    trigram_input: bool = True
    use_bottleneck: bool = True
    intra_bottleneck_size: int = 128
    use_bottleneck_attention: bool = False
    key_query_shared_bottleneck: bool = True
    num_feedforward_networks: int = 4
    normalization_type: str = "no_norm"
    classifier_activation: bool = True
    model_type: str = "mobilebert"
    base_prefix: ClassVar[str] = "mobilebert."

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("embedding_size", "intra_bottleneck_size", "num_feedforward_networks"):
            _positive(name, getattr(self, name))
        if self.normalization_type not in MOBILEBERT_NORMS:
            raise ValueError(
                f"config field `normalization_type` {self.normalization_type!r} is not supported; "
                f"use one of {list(MOBILEBERT_NORMS)}"
            )
        if self.true_hidden_size % self.num_attention_heads:
            raise ValueError(
                f"config field `intra_bottleneck_size` ({self.true_hidden_size}) must be divisible by "
                f"`num_attention_heads` ({self.num_attention_heads}) when `use_bottleneck` is true"
            )
        if self.embedding_size > self.hidden_size:
            raise ValueError(
                f"config field `embedding_size` ({self.embedding_size}) must not exceed `hidden_size` "
                f"({self.hidden_size}): the masked-lm decoder appends hidden_size - embedding_size rows"
            )

    @property
    def true_hidden_size(self) -> int:
        """The width inside a layer: ``intra_bottleneck_size`` with ``use_bottleneck``, else hidden."""
        return self.intra_bottleneck_size if self.use_bottleneck else self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.true_hidden_size // self.num_attention_heads

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size


@dataclass
class ConvBertConfig(BertConfig):
    """ConvBERT (``convbert.py``): ELECTRA's embeddings (``embedding_size``, projected), layers
    that mix ``num_attention_heads // head_ratio`` attention heads with as many span-based
    dynamic convolutions of width ``conv_kernel_size``, grouped MLP linears (``num_groups``), no
    pooler; ELECTRA-style heads (``hidden_act`` in the classifier). The sequence-summary fields
    default to what Hugging Face reads when they are absent (``last`` token, no projection)."""

    pad_token_id: int | None = 1
    embedding_size: int = 768
    head_ratio: int = 2
    conv_kernel_size: int = 9
    num_groups: int = 1
    summary_type: str = "last"
    summary_use_proj: bool = False
    summary_activation: str | None = None
    summary_proj_to_labels: bool = False
    model_type: str = "convbert"
    base_prefix: ClassVar[str] = "convbert."
    has_pooler: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("embedding_size", "head_ratio", "conv_kernel_size", "num_groups"):
            _positive(name, getattr(self, name))
        if self.conv_kernel_size % 2 == 0:
            raise ValueError(
                f"config field `conv_kernel_size` must be odd (the convolution is centred), got {self.conv_kernel_size}"
            )
        _divides("num_groups", self.num_groups, "hidden_size", self.hidden_size)
        _divides("num_groups", self.num_groups, "intermediate_size", self.intermediate_size)
        if 2 * self.conv_heads * self.head_dim != self.hidden_size:
            raise ValueError(
                f"config field `hidden_size` ({self.hidden_size}) must be a multiple of 2 * (num_attention_heads // "
                f"head_ratio) = {2 * self.conv_heads}: attention and convolution each fill half of it"
            )
        _check_summary_fields(self)

    @property
    def conv_heads(self) -> int:
        """Heads of each half: ``max(num_attention_heads // head_ratio, 1)``."""
        return max(self.num_attention_heads // self.head_ratio, 1)

    @property
    def head_dim(self) -> int:
        return (self.hidden_size // self.conv_heads) // 2

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size


DEBERTA_POS_ATT = ("c2p", "p2c")


@dataclass
class DebertaConfig(_ConfigMixin):
    """DeBERTa (``deberta.py``): BERT's post-LayerNorm layers with disentangled attention, whose
    scores add content-to-position (``c2p``) and position-to-content (``p2c``) terms over a table
    of relative distances (``relative_attention``, ``pos_att_type``); token types only when
    ``type_vocab_size > 0``, absolute positions only with ``position_biased_input``; no pooler in
    the base model (the classification heads have a ``pooler.dense`` of their own)."""

    vocab_size: int = 50265
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 0
    layer_norm_eps: float = 1e-7
    relative_attention: bool = False
    max_relative_positions: int = -1
    position_biased_input: bool = True
    pos_att_type: str | list | None = None
    embedding_size: int | None = None
    pooler_hidden_size: int | None = None
    pooler_hidden_act: str = "gelu"
    legacy: bool = True
    talking_head: bool = False
    pad_token_id: int | None = 0
    id2label: dict | None = None
    num_labels: int | None = None
    tie_word_embeddings: bool = True
    architectures: list | None = None
    model_type: str = "deberta"

    base_prefix: ClassVar[str] = "deberta."
    #: 1: ``in_proj`` (q, k, v rows interleaved per head) + ``q_bias`` / ``v_bias``; 2: separate
    #: ``query_proj`` / ``key_proj`` / ``value_proj``, log position buckets, conv layer
    version: ClassVar[int] = 1
    has_pooler: ClassVar[bool] = False
    #: the heads transformers has for the type (deberta has no multiple-choice class)
    heads: ClassVar[tuple[str, ...]] = tuple(h for h in BERT_HEADS if h != "multiple-choice")

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
        ):
            _positive(name, getattr(self, name))
        _nonnegative("type_vocab_size", self.type_vocab_size)
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"config field `hidden_size` ({self.hidden_size}) must be divisible by "
                f"`num_attention_heads` ({self.num_attention_heads})"
            )
        for name in ("hidden_act", "pooler_hidden_act"):
            if getattr(self, name) not in (*ACTIVATIONS, "tanh"):
                raise ValueError(
                    f"config field `{name}` {getattr(self, name)!r} is not supported; "
                    f"use 'tanh' or one of {sorted(ACTIVATIONS)}"
                )
        if isinstance(self.pos_att_type, str):
            self.pos_att_type = [x.strip() for x in self.pos_att_type.lower().split("|") if x.strip()]
        if self.pos_att_type is not None and any(t not in DEBERTA_POS_ATT for t in self.pos_att_type):
            raise ValueError(
                f"config field `pos_att_type` {self.pos_att_type!r} is not supported; "
                "use a subset of ['c2p', 'p2c'] (or 'c2p|p2c')"
            )
        if self.embedding_size is not None:
            _positive("embedding_size", self.embedding_size)
        if self.pooler_hidden_size not in (None, self.hidden_size):
            raise ValueError(
                f"config field `pooler_hidden_size` ({self.pooler_hidden_size}) must equal `hidden_size` "
                f"({self.hidden_size}) (the classifier reads a hidden_size-wide pooled vector)"
            )
        if self.talking_head:
            raise ValueError("config field `talking_head` is not supported; set it to false")
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
        """Width of the embedding tables (``embedding_size``, else ``hidden_size``)."""
        return self.embedding_size or self.hidden_size

    @property
    def token_types(self) -> bool:
        """A token-type table exists (``type_vocab_size > 0``)."""
        return self.type_vocab_size > 0

    @property
    def att_types(self) -> tuple[str, ...]:
        """The relative score terms in use (none without ``relative_attention``)."""
        return tuple(self.pos_att_type or ()) if self.relative_attention else ()

    @property
    def max_relative(self) -> int:
        """``max_relative_positions``, or ``max_position_embeddings`` when below 1."""
        return (
            self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings
        )

    @property
    def relative_span(self) -> int:
        """Half the rows of ``encoder.rel_embeddings``: distances index ``clip(r + span, 0, 2 span - 1)``."""
        return self.max_relative


@dataclass
class DebertaV2Config(DebertaConfig):
    """DeBERTa-v2 / v3: :class:`DebertaConfig` with separate ``query_proj`` / ``key_proj`` /
    ``value_proj``, log-bucketed relative positions (``position_buckets``), optionally shared
    position projections (``share_att_key``), a LayerNorm on the relative table (``norm_rel_ebd``)
    and a convolution after the first layer (``conv_kernel_size > 0``)."""

    vocab_size: int = 128100
    hidden_size: int = 1536
    num_hidden_layers: int = 24
    num_attention_heads: int = 24
    intermediate_size: int = 6144
    position_buckets: int = -1
    share_att_key: bool = False
    norm_rel_ebd: str = "none"
    conv_kernel_size: int = 0
    conv_groups: int = 1
    conv_act: str = "tanh"
    attention_head_size: int | None = None
    model_type: str = "deberta-v2"
    version: ClassVar[int] = 2
    heads: ClassVar[tuple[str, ...]] = BERT_HEADS

    def __post_init__(self) -> None:
        super().__post_init__()
        _nonnegative("conv_kernel_size", self.conv_kernel_size)
        if self.conv_kernel_size and self.conv_kernel_size % 2 == 0:
            raise ValueError(
                f"config field `conv_kernel_size` must be odd (the convolution keeps the length), "
                f"got {self.conv_kernel_size}"
            )
        if self.conv_groups != 1:
            raise ValueError(
                f"config field `conv_groups` must be 1 (grouped convolution is not supported), got {self.conv_groups!r}"
            )
        if self.conv_act not in (*ACTIVATIONS, "tanh"):
            raise ValueError(
                f"config field `conv_act` {self.conv_act!r} is not supported; use 'tanh' or one of {sorted(ACTIVATIONS)}"
            )
        norms = [x.strip() for x in self.norm_rel_ebd.lower().split("|")]
        if any(x not in ("none", "layer_norm") for x in norms):
            raise ValueError(
                f"config field `norm_rel_ebd` {self.norm_rel_ebd!r} is not supported; use 'none' or 'layer_norm'"
            )
        if self.attention_head_size not in (None, self.head_dim):
            raise ValueError(
                f"config field `attention_head_size` ({self.attention_head_size}) must equal hidden_size / "
                f"num_attention_heads ({self.head_dim}); remove it"
            )

    @property
    def rel_layer_norm(self) -> bool:
        """``encoder.LayerNorm`` normalises the relative table (``'layer_norm'`` in ``norm_rel_ebd``)."""
        return "layer_norm" in [x.strip() for x in self.norm_rel_ebd.lower().split("|")]

    @property
    def relative_span(self) -> int:
        return self.position_buckets if self.position_buckets > 0 else self.max_relative


@dataclass
class BigBirdConfig(BertConfig):
    """BigBird with ``attention_type='original_full'``: BERT's layers and names under ``bert.``
    (pooler ``bert.pooler`` without ``.dense``), heads of its own (``big_bird.py``). Block-sparse
    attention is refused (transformers itself runs full attention up to
    ``(5 + 2 num_random_blocks) block_size`` tokens)."""

    vocab_size: int = 50358
    hidden_act: str = "gelu_new"
    max_position_embeddings: int = 4096
    sep_token_id: int | None = 66
    attention_type: str = "block_sparse"
    use_bias: bool = True
    rescale_embeddings: bool = False
    block_size: int = 64
    num_random_blocks: int = 3
    model_type: str = "big_bird"
    head_style: ClassVar[str] = "big_bird"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attention_type != "original_full":
            raise ValueError(
                f"config field `attention_type` {self.attention_type!r} is not supported; set "
                "attention_type='original_full' (transformers runs that for sequences up to "
                f"{(5 + 2 * self.num_random_blocks) * self.block_size} tokens anyway)"
            )
        if not self.use_bias:
            raise ValueError("config field `use_bias` must be true (q/k/v without biases are not supported)")
        if self.rescale_embeddings:
            raise ValueError(
                "config field `rescale_embeddings` must be false (scaled embeddings are not supported)"
            )


@dataclass
class LongformerConfig(RobertaConfig):
    """Longformer (``longformer.py``): the RoBERTa layout under ``longformer.`` with local attention
    of ``attention_window`` (one even window, or one per layer) plus global attention through
    ``query_global`` / ``key_global`` / ``value_global``."""

    vocab_size: int = 30522
    attention_window: int | list = 512
    sep_token_id: int | None = 2
    model_type: str = "longformer"
    base_prefix: ClassVar[str] = "longformer."

    def __post_init__(self) -> None:
        super().__post_init__()
        w = self.attention_window
        windows = [w] * self.num_hidden_layers if not isinstance(w, list) else w
        if len(windows) != self.num_hidden_layers or not all(
            _is_int(x) and x > 0 and x % 2 == 0 for x in windows
        ):
            raise ValueError(
                f"config field `attention_window` must be a positive even integer or a list of "
                f"{self.num_hidden_layers} of them (one per layer), got {w!r}"
            )

    @property
    def windows(self) -> list[int]:
        """The attention window of each layer."""
        w = self.attention_window
        return list(w) if isinstance(w, list) else [w] * self.num_hidden_layers


@dataclass
class PerceiverConfig(_ConfigMixin):
    """Perceiver (``perceiver.py``; ``PerceiverForMaskedLM``, ``PerceiverForSequenceClassification``,
    ``PerceiverForImageClassificationLearned``): byte embeddings (or 1x1-convolved pixels with
    learned positions, ``image_size**2`` of them) read by ``num_latents`` latents
    (cross-attention), ``num_blocks`` passes of ``num_self_attends_per_block`` shared
    self-attention layers, queries that read the latents back (``max_position_embeddings``
    positions, or one classification query)."""

    num_latents: int = 256
    d_latents: int = 1280
    d_model: int = 768
    num_blocks: int = 1
    num_self_attends_per_block: int = 26
    num_self_attention_heads: int = 8
    num_cross_attention_heads: int = 8
    qk_channels: int | None = None
    v_channels: int | None = None
    cross_attention_shape_for_attention: str = "kv"
    self_attention_widening_factor: int = 1
    cross_attention_widening_factor: int = 1
    hidden_act: str = "gelu"
    use_query_residual: bool = True
    vocab_size: int = 262
    max_position_embeddings: int = 2048
    image_size: int = 56
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "perceiver"

    base_prefix: ClassVar[str] = "perceiver."
    #: PerceiverForMaskedLM, PerceiverForSequenceClassification, PerceiverForImageClassificationLearned
    heads: ClassVar[tuple[str, ...]] = ("masked-lm", "sequence-classification", "image-classification")
    token_types: ClassVar[bool] = False
    has_pooler: ClassVar[bool] = False
    #: the image head's pixels: 3 channels, H * W = image_size**2 (a square ``export_image_size``)
    num_channels: ClassVar[int] = 3
    fixed_image_size: ClassVar[bool] = False

    @property
    def export_image_size(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in (
            "num_latents",
            "d_latents",
            "d_model",
            "num_blocks",
            "num_self_attends_per_block",
            "num_self_attention_heads",
            "num_cross_attention_heads",
            "self_attention_widening_factor",
            "cross_attention_widening_factor",
            "vocab_size",
            "max_position_embeddings",
            "image_size",
        ):
            _positive(name, getattr(self, name))
        for name in ("qk_channels", "v_channels"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if self.cross_attention_shape_for_attention not in ("q", "kv"):
            raise ValueError(
                "config field `cross_attention_shape_for_attention` must be 'q' or 'kv', got "
                f"{self.cross_attention_shape_for_attention!r}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"config field `hidden_act` {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}"
            )
        widths = (
            (
                "qk_channels",
                self.qk_channels or self.d_latents,
                self.num_self_attention_heads,
                "num_self_attention_heads",
            ),
            (
                "v_channels",
                self.v_channels or self.qk_channels or self.d_latents,
                self.num_self_attention_heads,
                "num_self_attention_heads",
            ),
            ("d_model", self.d_model, 8, "8 (the masked-lm decoder's heads)"),
        )
        for name, width, heads, what in widths:
            if width % heads:
                raise ValueError(f"config field `{name}` ({width}) must be divisible by {what}")
        cross = self.qk_channels or (
            self.d_model if self.cross_attention_shape_for_attention == "kv" else self.d_latents
        )
        for name, width in (("qk_channels", cross), ("v_channels", self.v_channels or cross)):
            if width % self.num_cross_attention_heads:
                raise ValueError(
                    f"config field `{name}` ({width}, the cross-attention width) must be divisible by "
                    f"`num_cross_attention_heads` ({self.num_cross_attention_heads})"
                )
        if (self.v_channels or self.qk_channels or self.d_latents) != self.d_latents:
            raise ValueError(
                "config fields `v_channels` / `qk_channels` must leave the self-attention value width equal to "
                f"`d_latents` ({self.d_latents}) (the residual adds them)"
            )
        if self.num_labels is None:
            self.num_labels = len(self.id2label) if self.id2label else 2


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


@dataclass
class MT5Config(T5Config):
    """mT5: T5 v1.1 numerics (``gated-gelu``, its own ``lm_head``) with mT5's defaults. The decoder
    output is never rescaled unless ``scale_decoder_outputs`` says so (mT5 checkpoints are untied,
    and transformers v5's MT5 never rescales, also when it ties the head)."""

    vocab_size: int = 250112
    d_ff: int = 1024
    num_layers: int = 8
    num_heads: int = 6
    feed_forward_proj: str = "gated-gelu"
    tie_word_embeddings: bool = False
    model_type: str = "mt5"

    def __post_init__(self) -> None:
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = False
        super().__post_init__()


@dataclass
class WhisperConfig(_ConfigMixin):
    """Whisper (speech to text): a convolutional front end over log-mel features, a pre-norm
    encoder with a stored sinusoid position table, a pre-norm decoder with learned positions and
    a head tied to the decoder's token embedding (``proj_out`` when untied). ``input_features``
    must have ``2 * max_source_positions`` frames, as Hugging Face requires."""

    vocab_size: int = 51865
    num_mel_bins: int = 80
    encoder_layers: int = 4
    encoder_attention_heads: int = 6
    decoder_layers: int = 4
    decoder_attention_heads: int = 6
    decoder_ffn_dim: int = 1536
    encoder_ffn_dim: int = 1536
    activation_function: str = "gelu"
    d_model: int = 384
    max_source_positions: int = 1500
    max_target_positions: int = 448
    tie_word_embeddings: bool = True
    decoder_start_token_id: int | None = 50257
    pad_token_id: int | None = 50256
    bos_token_id: int | None = 50256
    eos_token_id: Any = 50256
    suppress_tokens: list | None = None
    begin_suppress_tokens: list | None = dataclasses.field(default_factory=lambda: [220, 50256])
    forced_decoder_ids: list | None = None
    architectures: list | None = None
    model_type: str = "whisper"

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in (
            "vocab_size",
            "num_mel_bins",
            "encoder_layers",
            "encoder_attention_heads",
            "decoder_layers",
            "decoder_attention_heads",
            "decoder_ffn_dim",
            "encoder_ffn_dim",
            "d_model",
            "max_source_positions",
            "max_target_positions",
        ):
            _positive(name, getattr(self, name))
        for name in ("encoder_attention_heads", "decoder_attention_heads"):
            if self.d_model % getattr(self, name):
                raise ValueError(
                    f"config field `d_model` ({self.d_model}) must be divisible by `{name}` ({getattr(self, name)})"
                )
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(
                f"config field `activation_function` {self.activation_function!r} is not supported; use one of "
                f"{sorted(ACTIVATIONS)}"
            )
        if self.decoder_start_token_id is not None:
            _nonnegative("decoder_start_token_id", self.decoder_start_token_id)

    # the names the encoder-decoder code shares with T5 (decoder caches)
    @property
    def num_heads(self) -> int:
        return self.decoder_attention_heads

    @property
    def d_kv(self) -> int:
        return self.d_model // self.decoder_attention_heads

    @property
    def num_layers(self) -> int:
        return self.encoder_layers

    @property
    def num_decoder_layers(self) -> int:
        return self.decoder_layers

    @property
    def num_hidden_layers(self) -> int:
        return self.encoder_layers

    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def num_frames(self) -> int:
        """The ``input_features`` length (conv strides 1 and 2 over ``max_source_positions``)."""
        return 2 * self.max_source_positions


#: LongT5 encoder self-attention kinds (``encoder_attention_type``)
LONGT5_ATTENTION_TYPES = ("local", "transient-global")


@dataclass
class LongT5Config(T5Config):
    """LongT5: T5 with local encoder self-attention (each query sees the keys within
    ``local_radius`` positions) or transient-global attention (those plus one summary key per
    ``global_block_size`` tokens); the decoder is T5's."""

    local_radius: int = 127
    global_block_size: int = 16
    encoder_attention_type: str = "local"
    model_type: str = "longt5"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("local_radius", self.local_radius)
        _positive("global_block_size", self.global_block_size)
        if self.encoder_attention_type not in LONGT5_ATTENTION_TYPES:
            raise ValueError(
                f"config field `encoder_attention_type` {self.encoder_attention_type!r} is not supported; "
                f"use one of {list(LONGT5_ATTENTION_TYPES)}"
            )


#: activations the BART family's feed-forward may name (``activation_function``)
BART_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")


@dataclass
class BartConfig(_ConfigMixin):
    """The BART encoder-decoder family (``bart.py``): learned or sinusoidal absolute positions,
    LayerNorms with bias (eps 1e-5), biased linears, ``fc2(act(fc1(x)))`` feed-forward, attention
    scaled by ``head_dim^-0.5``. The class attributes below are the switches each type sets;
    ``config.json`` fields are the dataclass fields. ``num_heads`` / ``d_kv`` /
    ``num_decoder_layers`` describe the decoder's caches (the names generation and export read)."""

    #: ``h += sub(norm(h))`` (pre) or ``h = norm(h + sub(h))`` (post)
    pre_norm: ClassVar[bool] = False
    #: ``layernorm_embedding`` after the embeddings: "after" (``norm(tok + pos)``), "decoder_first"
    #: (encoder as "after", decoder ``norm(tok) + pos``), or None
    embedding_norm: ClassVar[str | None] = "after"
    #: the norm after the last layer of each stack: "layer_norm", "layernorm_embedding" or None
    final_norm: ClassVar[str | None] = None
    #: "learned" (``embed_positions.weight[pos + position_offset]``), "sinusoidal" (Marian's
    #: table, not stored) or "sinusoidal_padded" (M2M-100's fairseq table indexed by token ids)
    positions: ClassVar[str] = "learned"
    position_offset: ClassVar[int] = 2
    #: ``logits += final_logits_bias`` ([1, vocab], a stored buffer)
    has_final_logits_bias: ClassVar[bool] = True
    #: the decoder scales its token embeddings by ``sqrt(d_model)`` when ``scale_embedding``
    decoder_scales_embedding: ClassVar[bool] = True
    #: the heads' default decoder input starts with each row's last non-padding id (mBART)
    start_from_last_token: ClassVar[bool] = False
    #: the encoder self-attention projections' names (q, k, v, out) under ``self_attn.``
    encoder_attention_names: ClassVar[tuple[str, str, str, str]] = ("q_proj", "k_proj", "v_proj", "out_proj")
    #: transformers class -> head (the first class is the generation one, named by an export)
    head_classes: ClassVar[dict[str, str]] = {
        "BartForConditionalGeneration": "seq2seq-lm",
        "BartForSequenceClassification": "sequence-classification",
        "BartForQuestionAnswering": "question-answering",
    }

    vocab_size: int = 50265
    d_model: int = 1024
    encoder_layers: int = 12
    decoder_layers: int = 12
    encoder_attention_heads: int = 16
    decoder_attention_heads: int = 16
    encoder_ffn_dim: int = 4096
    decoder_ffn_dim: int = 4096
    max_position_embeddings: int = 1024
    activation_function: str = "gelu"
    scale_embedding: bool = False
    tie_word_embeddings: bool = True
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: Any = 2
    decoder_start_token_id: int | None = 2
    forced_bos_token_id: int | None = None
    forced_eos_token_id: Any = 2
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "bart"

    def __post_init__(self) -> None:
        _check_field_types(self)
        _encoder_labels(self)
        for name in (
            "vocab_size",
            "d_model",
            "encoder_layers",
            "decoder_layers",
            "encoder_attention_heads",
            "decoder_attention_heads",
            "encoder_ffn_dim",
            "decoder_ffn_dim",
            "max_position_embeddings",
        ):
            _positive(name, getattr(self, name))
        for name in ("encoder_attention_heads", "decoder_attention_heads"):
            if self.d_model % getattr(self, name):
                raise ValueError(
                    f"config field `d_model` ({self.d_model}) must be a multiple of `{name}` "
                    f"({getattr(self, name)})"
                )
        if self.activation_function not in BART_ACTIVATIONS:
            raise ValueError(
                f"config field `activation_function` {self.activation_function!r} is not supported; "
                f"use one of {list(BART_ACTIVATIONS)}"
            )
        for name in ("decoder_start_token_id", "forced_bos_token_id"):
            if getattr(self, name) is not None:
                _nonnegative(name, getattr(self, name))
        if self.positions == "sinusoidal_padded" and self.pad_token_id is None:
            raise ValueError(
                f"config field `pad_token_id` must be set for {self.model_type} (its positions count "
                "from the padding id); set it to the tokenizer's pad id"
            )

    @property
    def hf_class(self) -> str:
        """The generation class (``seq2seq-lm``)."""
        return next(iter(self.head_classes))

    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def num_hidden_layers(self) -> int:
        """Encoder layers (Hugging Face's ``attribute_map``)."""
        return self.encoder_layers

    @property
    def num_decoder_layers(self) -> int:
        return self.decoder_layers

    @property
    def num_heads(self) -> int:
        """Decoder heads (the self- and cross-attention caches)."""
        return self.decoder_attention_heads

    @property
    def d_kv(self) -> int:
        return self.d_model // self.decoder_attention_heads

    @property
    def target_vocab_size(self) -> int:
        """Rows of the decoder embedding, the lm_head and ``final_logits_bias``."""
        return self.vocab_size

    @property
    def shared_embeddings(self) -> bool:
        """One ``model.shared`` embedding for encoder and decoder (all but an unshared Marian)."""
        return True

    @property
    def attention_bias(self) -> bool:
        """Biases on the attention projections (BigBird-Pegasus: ``use_bias``)."""
        return True


@dataclass
class MBartConfig(BartConfig):
    """mBART: pre-norm layers, ``layernorm_embedding`` and a final ``layer_norm`` per stack."""

    start_from_last_token: ClassVar[bool] = True
    pre_norm: ClassVar[bool] = True
    final_norm: ClassVar[str | None] = "layer_norm"
    head_classes: ClassVar[dict[str, str]] = {
        "MBartForConditionalGeneration": "seq2seq-lm",
        "MBartForSequenceClassification": "sequence-classification",
        "MBartForQuestionAnswering": "question-answering",
    }

    decoder_start_token_id: int | None = None
    model_type: str = "mbart"


@dataclass
class MarianConfig(BartConfig):
    """Marian: post-norm, no embedding norm, sinusoidal positions (not stored), optionally a
    separate decoder vocabulary (``share_encoder_decoder_embeddings: false``,
    ``decoder_vocab_size``)."""

    embedding_norm: ClassVar[str | None] = None
    positions: ClassVar[str] = "sinusoidal"
    head_classes: ClassVar[dict[str, str]] = {"MarianMTModel": "seq2seq-lm"}

    vocab_size: int = 58101
    decoder_vocab_size: int | None = None
    share_encoder_decoder_embeddings: bool = True
    pad_token_id: int | None = 58100
    bos_token_id: int | None = None
    eos_token_id: Any = 0
    decoder_start_token_id: int | None = 58100
    forced_eos_token_id: Any = 0
    model_type: str = "marian"

    def __post_init__(self) -> None:
        if self.decoder_vocab_size is None:
            self.decoder_vocab_size = self.vocab_size
        super().__post_init__()
        _positive("decoder_vocab_size", self.decoder_vocab_size)
        if self.share_encoder_decoder_embeddings and self.decoder_vocab_size != self.vocab_size:
            raise ValueError(
                f"config field `decoder_vocab_size` ({self.decoder_vocab_size}) must equal `vocab_size` "
                f"({self.vocab_size}) when share_encoder_decoder_embeddings is true"
            )

    @property
    def target_vocab_size(self) -> int:
        return self.vocab_size if self.share_encoder_decoder_embeddings else int(self.decoder_vocab_size or 0)

    @property
    def shared_embeddings(self) -> bool:
        return self.share_encoder_decoder_embeddings


@dataclass
class M2M100Config(BartConfig):
    """M2M-100: pre-norm, final ``layer_norm`` per stack, no embedding norm, no
    ``final_logits_bias``, fairseq sinusoidal positions counted from ``pad_token_id + 1`` over the
    non-padding tokens."""

    pre_norm: ClassVar[bool] = True
    embedding_norm: ClassVar[str | None] = None
    final_norm: ClassVar[str | None] = "layer_norm"
    positions: ClassVar[str] = "sinusoidal_padded"
    has_final_logits_bias: ClassVar[bool] = False
    head_classes: ClassVar[dict[str, str]] = {"M2M100ForConditionalGeneration": "seq2seq-lm"}

    vocab_size: int = 128112
    activation_function: str = "relu"
    scale_embedding: bool = True
    forced_eos_token_id: Any = None
    model_type: str = "m2m_100"


@dataclass
class BlenderbotConfig(BartConfig):
    """Blenderbot: pre-norm, final ``layer_norm`` per stack, no embedding norm, learned positions
    without offset."""

    pre_norm: ClassVar[bool] = True
    embedding_norm: ClassVar[str | None] = None
    final_norm: ClassVar[str | None] = "layer_norm"
    position_offset: ClassVar[int] = 0
    head_classes: ClassVar[dict[str, str]] = {"BlenderbotForConditionalGeneration": "seq2seq-lm"}

    vocab_size: int = 8008
    d_model: int = 2560
    encoder_layers: int = 2
    decoder_layers: int = 24
    encoder_attention_heads: int = 32
    decoder_attention_heads: int = 32
    encoder_ffn_dim: int = 10240
    decoder_ffn_dim: int = 10240
    max_position_embeddings: int = 128
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    decoder_start_token_id: int | None = 1
    model_type: str = "blenderbot"


@dataclass
class BlenderbotSmallConfig(BartConfig):
    """Blenderbot-small: post-norm, learned positions without offset; ``layernorm_embedding``
    after the encoder's sum, but on the decoder's token embeddings before the positions are added
    (and, as transformers does, the decoder does not scale its embeddings)."""

    embedding_norm: ClassVar[str | None] = "decoder_first"
    decoder_scales_embedding: ClassVar[bool] = False
    position_offset: ClassVar[int] = 0
    head_classes: ClassVar[dict[str, str]] = {"BlenderbotSmallForConditionalGeneration": "seq2seq-lm"}

    d_model: int = 512
    encoder_layers: int = 8
    decoder_layers: int = 8
    encoder_ffn_dim: int = 2048
    decoder_ffn_dim: int = 2048
    max_position_embeddings: int = 512
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    decoder_start_token_id: int | None = 1
    model_type: str = "blenderbot-small"


@dataclass
class BigBirdPegasusConfig(BartConfig):
    """BigBird-Pegasus with ``attention_type: original_full`` (full attention; ``block_sparse`` is
    refused): pre-norm, learned positions without offset, the final norm of each stack named
    ``layernorm_embedding``, attention projections biased only with ``use_bias``, the encoder's
    named ``self_attn.self.query`` / ``key`` / ``value`` and ``self_attn.output``."""

    pre_norm: ClassVar[bool] = True
    embedding_norm: ClassVar[str | None] = None
    final_norm: ClassVar[str | None] = "layernorm_embedding"
    encoder_attention_names: ClassVar[tuple[str, str, str, str]] = (
        "self.query",
        "self.key",
        "self.value",
        "output",
    )
    position_offset: ClassVar[int] = 0
    head_classes: ClassVar[dict[str, str]] = {
        "BigBirdPegasusForConditionalGeneration": "seq2seq-lm",
        "BigBirdPegasusForSequenceClassification": "sequence-classification",
        "BigBirdPegasusForQuestionAnswering": "question-answering",
    }

    vocab_size: int = 96103
    encoder_layers: int = 16
    decoder_layers: int = 16
    max_position_embeddings: int = 4096
    activation_function: str = "gelu_new"
    scale_embedding: bool = True
    use_bias: bool = False
    attention_type: str = "block_sparse"
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: Any = 1
    decoder_start_token_id: int | None = 2
    forced_eos_token_id: Any = None
    model_type: str = "bigbird_pegasus"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attention_type != "original_full":
            raise ValueError(
                f"config field `attention_type` {self.attention_type!r} is not supported; tensorweave "
                "runs bigbird_pegasus with full attention only: set attention_type to 'original_full'"
            )

    @property
    def attention_bias(self) -> bool:
        return self.use_bias


#: the BART encoder-decoder family (bart.py), model_type -> config class
BART_CONFIGS = {
    "bart": BartConfig,
    "mbart": MBartConfig,
    "marian": MarianConfig,
    "m2m_100": M2M100Config,
    "blenderbot": BlenderbotConfig,
    "blenderbot-small": BlenderbotSmallConfig,
    "bigbird_pegasus": BigBirdPegasusConfig,
}


def _nonnegative(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"config field `{name}` must be a non-negative integer, got {value!r}")


# activation name -> (gelu approximate mode or "relu"), shared by GPT-2 and BERT
@dataclass
class ViTConfig(_ConfigMixin):
    """ViT (vit.py): a patch-embedding convolution, a CLS token and learned positions, pre-norm
    encoder layers, a final LayerNorm and a pooler; the vision family tells its members apart by
    class attributes (``base_prefix``, ``distilled``)."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    image_size: int | list = 224
    patch_size: int | list = 16
    num_channels: int = 3
    qkv_bias: bool = True
    pooler_output_size: int | None = None
    pooler_act: str = "tanh"
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "vit"

    #: the base-model prefix of the parameter names
    base_prefix: ClassVar[str] = "vit."
    #: a distillation token after the CLS token; image classification averages two heads (deit)
    distilled: ClassVar[bool] = False
    #: the learned position table fixes the input's image size (the convolutional types take any)
    fixed_image_size: ClassVar[bool] = True
    #: the ``default`` head has a pooler
    has_pooler: ClassVar[bool] = True
    #: the heads vit.py's forward takes for this type
    heads: ClassVar[tuple[str, ...]] = ("default", "image-classification")

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "num_channels",
        ):
            _positive(name, getattr(self, name))
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        for name in ("image_size", "patch_size"):
            setattr(self, name, _pair(name, getattr(self, name)))
        if any(i < p for i, p in zip(self.image_size, self.patch_size)):
            raise ValueError(
                f"config field `image_size` {list(self.image_size)} must be at least `patch_size` "
                f"{list(self.patch_size)} on each side"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"config field `hidden_size` ({self.hidden_size}) must be divisible by "
                f"`num_attention_heads` ({self.num_attention_heads})"
            )
        for name in ("hidden_act", "pooler_act"):
            act = getattr(self, name)
            if act not in ACTIVATIONS and not (name == "pooler_act" and act == "tanh"):
                extra = ["tanh"] if name == "pooler_act" else []
                raise ValueError(
                    f"config field `{name}` {act!r} is not supported; use one of {sorted([*ACTIVATIONS, *extra])}"
                )
        if self.pooler_output_size is None:
            self.pooler_output_size = self.hidden_size
        _positive("pooler_output_size", self.pooler_output_size)
        _check_labels(self)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row: ``image_size // patch_size`` on each side."""
        return (self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1])

    @property
    def num_tokens(self) -> int:
        """Sequence length: the patches plus the CLS (and distillation) token (and YOLOS'
        detection tokens)."""
        return self.grid[0] * self.grid[1] + 1 + int(self.distilled) + self.detection_tokens

    # the YOLOS switches (YolosConfig sets them); ViT's values here
    @property
    def detection_tokens(self) -> int:
        """Learned detection tokens appended after the patches."""
        return 0

    @property
    def mid_positions(self) -> bool:
        """A position table added after every layer but the last."""
        return False

    # the BEiT switches (BeitConfig sets them from its config.json fields); ViT's values here
    @property
    def absolute_positions(self) -> bool:
        """A learned position table is added to the tokens."""
        return True

    @property
    def key_bias(self) -> bool:
        return self.qkv_bias

    @property
    def query_value_bias(self) -> bool:
        return self.qkv_bias

    @property
    def layer_scale(self) -> bool:
        """``lambda_1`` / ``lambda_2`` scale each residual branch."""
        return False

    @property
    def relative_bias(self) -> tuple[bool, bool]:
        """(a bias table shared by every layer, one table per layer)."""
        return (False, False)

    @property
    def mean_pooling(self) -> bool:
        """The pooler is ``LayerNorm(mean(h[:, 1:]))`` and the final LayerNorm is absent."""
        return False

    @property
    def pooler_style(self) -> str:
        """``dense`` (``act(pooler.dense(h[:, 0]))``), BEiT's ``mean`` or ``cls`` (``h[:, 0]``)."""
        return "dense"

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["image_size"], d["patch_size"] = list(self.image_size), list(self.patch_size)
        return d


@dataclass
class DeiTConfig(ViTConfig):
    """DeiT: ViT with a distillation token (position table ``num_patches + 2``) under ``deit.``;
    ``DeiTForImageClassificationWithTeacher`` averages ``cls_classifier(h[:, 0])`` and
    ``distillation_classifier(h[:, 1])``."""

    model_type: str = "deit"
    base_prefix: ClassVar[str] = "deit."
    distilled: ClassVar[bool] = True


@dataclass
class BeitConfig(ViTConfig):
    """BEiT: ViT's layers with relative position biases (``use_relative_position_bias`` per layer,
    ``use_shared_relative_position_bias`` one for all), layer scale (``layer_scale_init_value >
    0``), a key projection without bias, optional absolute positions and mean pooling."""

    use_absolute_position_embeddings: bool = False
    use_relative_position_bias: bool = False
    use_shared_relative_position_bias: bool = False
    layer_scale_init_value: float = 0.1
    use_mean_pooling: bool = True
    model_type: str = "beit"
    base_prefix: ClassVar[str] = "beit."
    #: ``*Model`` builds the pooler by default (data2vec-vision's does not)
    has_pooler: ClassVar[bool] = True

    @property
    def absolute_positions(self) -> bool:
        return self.use_absolute_position_embeddings

    @property
    def key_bias(self) -> bool:
        return False

    @property
    def query_value_bias(self) -> bool:
        return True

    @property
    def layer_scale(self) -> bool:
        return self.layer_scale_init_value > 0

    @property
    def relative_bias(self) -> tuple[bool, bool]:
        return (self.use_shared_relative_position_bias, self.use_relative_position_bias)

    @property
    def mean_pooling(self) -> bool:
        return self.use_mean_pooling

    @property
    def pooler_style(self) -> str:
        return "mean" if self.use_mean_pooling else "cls"


@dataclass
class Data2VecVisionConfig(BeitConfig):
    """Data2Vec-Vision: BEiT under ``data2vec_vision.``; its ``*Model`` has no pooler."""

    model_type: str = "data2vec-vision"
    base_prefix: ClassVar[str] = "data2vec_vision."
    has_pooler: ClassVar[bool] = False


@dataclass
class YolosConfig(ViTConfig):
    """YOLOS: ViT with ``num_detection_tokens`` learned tokens after the patches (the position
    table covers CLS, patches and detection tokens), a position table per layer but the last
    (``use_mid_position_embeddings``) and ``YolosForObjectDetection``'s class and box MLPs on the
    detection tokens. Square patches; the image size is the config's (no interpolation)."""

    image_size: int | list = dataclasses.field(default_factory=lambda: [512, 864])
    num_detection_tokens: int = 100
    use_mid_position_embeddings: bool = True
    model_type: str = "yolos"
    heads: ClassVar[tuple[str, ...]] = ("default", "object-detection")

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("num_detection_tokens", self.num_detection_tokens)
        p = self.patch_size
        if p[0] != p[1]:
            raise ValueError(
                f"config field `patch_size` must be one integer for yolos (square patches), got {list(p)}"
            )
        h, w = self.image_size
        if self.use_mid_position_embeddings and h * w // p[0] ** 2 != self.grid[0] * self.grid[1]:
            raise ValueError(
                f"config field `image_size` {[h, w]} must be a multiple of `patch_size` ({p[0]}) with "
                "`use_mid_position_embeddings` (the mid-layer table has image_size area / patch_size**2 rows)"
            )

    @property
    def detection_tokens(self) -> int:
        return self.num_detection_tokens

    @property
    def mid_positions(self) -> bool:
        return self.use_mid_position_embeddings


@dataclass
class ResNetConfig(_ConfigMixin):
    """ResNet (resnet.py): a 7x7 stride-2 stem with BatchNorm and a 3x3 max pool, stages of basic
    or bottleneck residual layers, global average pooling. Any image size (no position table)."""

    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: list | tuple = dataclasses.field(default_factory=lambda: [256, 512, 1024, 2048])
    depths: list | tuple = dataclasses.field(default_factory=lambda: [3, 4, 6, 3])
    layer_type: str = "bottleneck"
    hidden_act: str = "relu"
    downsample_in_first_stage: bool = False
    downsample_in_bottleneck: bool = False
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "resnet"

    base_prefix: ClassVar[str] = "resnet."
    fixed_image_size: ClassVar[bool] = False
    #: the image size an export fixes (the model itself takes any size)
    export_image_size: ClassVar[tuple[int, int]] = (224, 224)

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in ("num_channels", "embedding_size"):
            _positive(name, getattr(self, name))
        for name in ("hidden_sizes", "depths"):
            values = getattr(self, name)
            if (
                not isinstance(values, (list, tuple))
                or not values
                or not all(_is_int(v) and v > 0 for v in values)
            ):
                raise ValueError(
                    f"config field `{name}` must be a non-empty list of positive integers, got {values!r}"
                )
            setattr(self, name, list(values))
        if len(self.hidden_sizes) != len(self.depths):
            raise ValueError(
                f"config fields `hidden_sizes` ({len(self.hidden_sizes)} stages) and `depths` "
                f"({len(self.depths)} stages) must have the same length"
            )
        if self.layer_type not in ("basic", "bottleneck"):
            raise ValueError(f"config field `layer_type` {self.layer_type!r} must be 'basic' or 'bottleneck'")
        if self.layer_type == "bottleneck" and any(h % 4 for h in self.hidden_sizes):
            raise ValueError(
                f"config field `hidden_sizes` {self.hidden_sizes} must be multiples of 4 for bottleneck layers "
                "(they reduce the width by 4)"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"config field `hidden_act` {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}"
            )
        _check_labels(self)


@dataclass
class ConvNextConfig(_ConfigMixin):
    """ConvNeXt (convnext.py): a patchify stem, stages of depthwise-7x7 / LayerNorm / MLP blocks
    with layer scale, LayerNorm + 2x2 stride-2 downsampling between stages, a final LayerNorm of
    the spatial mean. Any image size (``image_size`` is only what an export fixes)."""

    num_channels: int = 3
    patch_size: int | list = 4
    num_stages: int = 4
    hidden_sizes: list | tuple = dataclasses.field(default_factory=lambda: [96, 192, 384, 768])
    depths: list | tuple = dataclasses.field(default_factory=lambda: [3, 3, 9, 3])
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    layer_scale_init_value: float = 1e-6
    image_size: int | list = 224
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "convnext"

    base_prefix: ClassVar[str] = "convnext."
    fixed_image_size: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_field_types(self)
        _positive("num_channels", self.num_channels)
        _positive("num_stages", self.num_stages)
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        for name in ("patch_size", "image_size"):
            setattr(self, name, _pair(name, getattr(self, name)))
        for name in ("hidden_sizes", "depths"):
            values = getattr(self, name)
            if (
                not isinstance(values, (list, tuple))
                or len(values) != self.num_stages
                or not all(_is_int(v) and v > 0 for v in values)
            ):
                raise ValueError(
                    f"config field `{name}` must list a positive integer for each of the `num_stages` "
                    f"({self.num_stages}) stages, got {values!r}"
                )
            setattr(self, name, list(values))
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"config field `hidden_act` {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}"
            )
        _check_labels(self)

    @property
    def export_image_size(self) -> tuple[int, int]:
        return self.image_size

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["image_size"], d["patch_size"] = list(self.image_size), list(self.patch_size)
        return d


def _check_hidden_act(cfg: Any, extra: tuple[str, ...] = ()) -> None:
    """``hidden_act`` is one of ``ACTIVATIONS`` (or of ``extra``); else one ValueError."""
    if cfg.hidden_act not in ACTIVATIONS and cfg.hidden_act not in extra:
        raise ValueError(
            f"config field `hidden_act` {cfg.hidden_act!r} is not supported; "
            f"use one of {sorted([*ACTIVATIONS, *extra])}"
        )


@dataclass
class MobileNetV1Config(_ConfigMixin):
    """MobileNet V1 (mobilenet.py): a 3x3 stride-2 stem and 13 depthwise-separable pairs (3x3
    depthwise, 1x1 pointwise), each conv with BatchNorm (eps ``layer_norm_eps``) and ``hidden_act``;
    TensorFlow "same" padding when ``tf_padding``. Any image size."""

    num_channels: int = 3
    image_size: int | list = 224
    depth_multiplier: float = 1.0
    min_depth: int = 8
    hidden_act: str = "relu6"
    tf_padding: bool = True
    layer_norm_eps: float = 0.001
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "mobilenet_v1"

    base_prefix: ClassVar[str] = "mobilenet_v1."
    fixed_image_size: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_field_types(self)
        _positive("num_channels", self.num_channels)
        _positive("min_depth", self.min_depth)
        _positive_float("depth_multiplier", self.depth_multiplier)
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        self.image_size = _pair("image_size", self.image_size)
        _check_hidden_act(self, ("relu6",))
        _check_labels(self)

    @property
    def export_image_size(self) -> tuple[int, int]:
        return self.image_size

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["image_size"] = list(self.image_size)
        return d


@dataclass
class MobileNetV2Config(MobileNetV1Config):
    """MobileNet V2 (mobilenet.py): a stem (3x3/2 conv, optional 1x1 expansion, 3x3 depthwise, 1x1
    projection), 16 inverted residuals (1x1 expand by ``expand_ratio``, 3x3 depthwise, linear 1x1
    projection; dilated past ``output_stride``) and a final 1x1 conv. Any image size."""

    depth_divisible_by: int = 8
    expand_ratio: float = 6.0
    output_stride: int = 32
    first_layer_is_expansion: bool = True
    finegrained_output: bool = True
    model_type: str = "mobilenet_v2"

    base_prefix: ClassVar[str] = "mobilenet_v2."

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("depth_divisible_by", self.depth_divisible_by)
        _positive("output_stride", self.output_stride)
        _positive_float("expand_ratio", self.expand_ratio)


MOBILEVIT_ACTIVATIONS = ("silu", "swish")


@dataclass
class MobileViTConfig(_ConfigMixin):
    """MobileViT (mobilevit.py): a 3x3/2 stem, two MobileNetV2 stages of inverted residuals
    (expansion ``expand_ratio``), three MobileViT stages (a downsampling inverted residual, then a
    local conv, a transformer over unfolded ``patch_size`` patches of width ``hidden_sizes[i]``, a
    fold and a fusion conv), a final 1x1 conv; the semantic-segmentation head is DeepLabV3's ASPP.
    Every BatchNorm has eps 1e-5. Any image size."""

    num_channels: int = 3
    image_size: int | list = 256
    patch_size: int = 2
    hidden_sizes: list | tuple = dataclasses.field(default_factory=lambda: [144, 192, 240])
    neck_hidden_sizes: list | tuple = dataclasses.field(
        default_factory=lambda: [16, 32, 64, 96, 128, 160, 640]
    )
    num_attention_heads: int = 4
    mlp_ratio: float = 2.0
    expand_ratio: float = 4.0
    hidden_act: str = "silu"
    conv_kernel_size: int = 3
    output_stride: int = 32
    layer_norm_eps: float = 1e-5
    qkv_bias: bool = True
    aspp_out_channels: int = 256
    atrous_rates: list | tuple = dataclasses.field(default_factory=lambda: [6, 12, 18])
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "mobilevit"

    base_prefix: ClassVar[str] = "mobilevit."
    fixed_image_size: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in (
            "num_channels",
            "patch_size",
            "num_attention_heads",
            "conv_kernel_size",
            "output_stride",
            "aspp_out_channels",
        ):
            _positive(name, getattr(self, name))
        for name in ("mlp_ratio", "expand_ratio", "layer_norm_eps"):
            _positive_float(name, getattr(self, name))
        self.image_size = _pair("image_size", self.image_size)
        for name, count in (("hidden_sizes", 3), ("neck_hidden_sizes", 7), ("atrous_rates", 3)):
            values = getattr(self, name)
            if (
                not isinstance(values, (list, tuple))
                or len(values) != count
                or not all(_is_int(v) and v > 0 for v in values)
            ):
                raise ValueError(f"config field `{name}` must list {count} positive integers, got {values!r}")
            setattr(self, name, list(values))
        for i, width in enumerate(self.hidden_sizes):
            if width % self.num_attention_heads:
                raise ValueError(
                    f"config field `hidden_sizes` {self.hidden_sizes}: stage {i} width {width} must be "
                    f"divisible by `num_attention_heads` ({self.num_attention_heads})"
                )
        if self.conv_kernel_size % 2 == 0:
            raise ValueError(
                f"config field `conv_kernel_size` must be odd (the local conv keeps the map's size), "
                f"got {self.conv_kernel_size}"
            )
        _check_hidden_act(self, MOBILEVIT_ACTIVATIONS)
        _check_labels(self)

    @property
    def export_image_size(self) -> tuple[int, int]:
        return self.image_size

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["image_size"] = list(self.image_size)
        return d


@dataclass
class PoolFormerConfig(_ConfigMixin):
    """PoolFormer (poolformer.py): per stage a strided conv patch embedding, then blocks
    ``h + s1 * (avgpool(GN(h)) - GN(h))`` and ``h + s2 * MLP(GN(h))`` (one-group GroupNorm, 1x1-conv
    MLP, layer scales ``s1``, ``s2``). Any image size."""

    num_channels: int = 3
    image_size: int | list = 224
    pool_size: int = 3
    mlp_ratio: float = 4.0
    depths: list | tuple = dataclasses.field(default_factory=lambda: [2, 2, 6, 2])
    hidden_sizes: list | tuple = dataclasses.field(default_factory=lambda: [64, 128, 320, 512])
    patch_sizes: list | tuple = dataclasses.field(default_factory=lambda: [7, 3, 3, 3])
    strides: list | tuple = dataclasses.field(default_factory=lambda: [4, 2, 2, 2])
    padding: list | tuple = dataclasses.field(default_factory=lambda: [2, 1, 1, 1])
    num_encoder_blocks: int = 4
    hidden_act: str = "gelu"
    use_layer_scale: bool = True
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "poolformer"

    base_prefix: ClassVar[str] = "poolformer."
    fixed_image_size: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in ("num_channels", "pool_size", "num_encoder_blocks"):
            _positive(name, getattr(self, name))
        _positive_float("mlp_ratio", self.mlp_ratio)
        self.image_size = _pair("image_size", self.image_size)
        for name in ("depths", "hidden_sizes", "patch_sizes", "strides", "padding"):
            values = getattr(self, name)
            low = 0 if name == "padding" else 1
            if (
                not isinstance(values, (list, tuple))
                or len(values) != self.num_encoder_blocks
                or not all(_is_int(v) and v >= low for v in values)
            ):
                raise ValueError(
                    f"config field `{name}` must list an integer >= {low} for each of the "
                    f"`num_encoder_blocks` ({self.num_encoder_blocks}) stages, got {values!r}"
                )
            setattr(self, name, list(values))
        if self.pool_size % 2 == 0:
            raise ValueError(
                f"config field `pool_size` must be odd (the pooled map keeps its size), got {self.pool_size}"
            )
        _check_hidden_act(self)
        _check_labels(self)

    @property
    def export_image_size(self) -> tuple[int, int]:
        return self.image_size

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["image_size"] = list(self.image_size)
        return d


@dataclass
class SwinConfig(_ConfigMixin):
    """Swin (swin.py): a patchify stem with LayerNorm, stages of (shifted-)window attention layers
    with relative position biases, patch merging between stages, a final LayerNorm and mean
    pooling. Any image size (padded to the patch and window multiples, as Hugging Face pads);
    ``image_size`` is what an export fixes and, with ``use_absolute_embeddings``, the only size."""

    image_size: int | list = 224
    patch_size: int | list = 4
    num_channels: int = 3
    embed_dim: int = 96
    depths: list | tuple = dataclasses.field(default_factory=lambda: [2, 2, 6, 2])
    num_heads: list | tuple = dataclasses.field(default_factory=lambda: [3, 6, 12, 24])
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    hidden_act: str = "gelu"
    use_absolute_embeddings: bool = False
    layer_norm_eps: float = 1e-5
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "swin"

    base_prefix: ClassVar[str] = "swin."
    fixed_image_size: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in ("num_channels", "embed_dim", "window_size"):
            _positive(name, getattr(self, name))
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        _positive_float("mlp_ratio", self.mlp_ratio)
        for name in ("image_size", "patch_size"):
            setattr(self, name, _pair(name, getattr(self, name)))
        for name in ("depths", "num_heads"):
            values = getattr(self, name)
            if (
                not isinstance(values, (list, tuple))
                or not values
                or not all(_is_int(v) and v > 0 for v in values)
            ):
                raise ValueError(
                    f"config field `{name}` must be a non-empty list of positive integers, got {values!r}"
                )
            setattr(self, name, list(values))
        if len(self.depths) != len(self.num_heads):
            raise ValueError(
                f"config fields `depths` ({len(self.depths)} stages) and `num_heads` "
                f"({len(self.num_heads)} stages) must have the same length"
            )
        for i, heads in enumerate(self.num_heads):
            if self.stage_dim(i) % heads:
                raise ValueError(
                    f"config field `num_heads` {self.num_heads}: stage {i} width {self.stage_dim(i)} "
                    f"(embed_dim * 2**{i}) must be divisible by its {heads} heads"
                )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"config field `hidden_act` {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}"
            )
        _check_labels(self)

    def stage_dim(self, i: int) -> int:
        """Width of stage ``i``: ``embed_dim * 2**i``."""
        return self.embed_dim * 2**i

    @property
    def hidden_size(self) -> int:
        """Width of the last stage (the pooled features)."""
        return self.stage_dim(len(self.depths) - 1)

    @property
    def export_image_size(self) -> tuple[int, int]:
        return self.image_size

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["image_size"], d["patch_size"] = list(self.image_size), list(self.patch_size)
        return d


@dataclass
class SegformerConfig(_ConfigMixin):
    """SegFormer (segformer.py): stages of overlapping patch embeddings, efficient self-attention
    (keys / values reduced by a ``sr_ratios`` strided conv) and Mix-FFN (a depthwise 3x3 conv
    between the linears), a LayerNorm per stage; heads ``default``, ``image-classification`` and
    ``semantic-segmentation`` (the all-MLP decode head). Any image size."""

    num_channels: int = 3
    num_encoder_blocks: int = 4
    depths: list | tuple = dataclasses.field(default_factory=lambda: [2, 2, 2, 2])
    sr_ratios: list | tuple = dataclasses.field(default_factory=lambda: [8, 4, 2, 1])
    hidden_sizes: list | tuple = dataclasses.field(default_factory=lambda: [32, 64, 160, 256])
    patch_sizes: list | tuple = dataclasses.field(default_factory=lambda: [7, 3, 3, 3])
    strides: list | tuple = dataclasses.field(default_factory=lambda: [4, 2, 2, 2])
    num_attention_heads: list | tuple = dataclasses.field(default_factory=lambda: [1, 2, 5, 8])
    mlp_ratios: list | tuple = dataclasses.field(default_factory=lambda: [4, 4, 4, 4])
    hidden_act: str = "gelu"
    decoder_hidden_size: int = 256
    reshape_last_stage: bool = True
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "segformer"

    base_prefix: ClassVar[str] = "segformer."
    fixed_image_size: ClassVar[bool] = False
    #: the image size an export fixes (the model itself takes any size; the config has none)
    export_image_size: ClassVar[tuple[int, int]] = (224, 224)

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in ("num_channels", "num_encoder_blocks", "decoder_hidden_size"):
            _positive(name, getattr(self, name))
        n = self.num_encoder_blocks
        for name in ("depths", "sr_ratios", "hidden_sizes", "patch_sizes", "strides", "num_attention_heads"):
            values = getattr(self, name)
            if (
                not isinstance(values, (list, tuple))
                or len(values) != n
                or not all(_is_int(v) and v > 0 for v in values)
            ):
                raise ValueError(
                    f"config field `{name}` must list a positive integer for each of the "
                    f"`num_encoder_blocks` ({n}) stages, got {values!r}"
                )
            setattr(self, name, list(values))
        ratios = self.mlp_ratios
        if (
            not isinstance(ratios, (list, tuple))
            or len(ratios) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in ratios)
        ):
            raise ValueError(
                f"config field `mlp_ratios` must list a positive number for each of the "
                f"`num_encoder_blocks` ({n}) stages, got {ratios!r}"
            )
        self.mlp_ratios = list(ratios)
        for i, (width, heads) in enumerate(zip(self.hidden_sizes, self.num_attention_heads)):
            if width % heads:
                raise ValueError(
                    f"config field `hidden_sizes` {self.hidden_sizes}: stage {i} width {width} must be "
                    f"divisible by its `num_attention_heads` ({heads})"
                )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"config field `hidden_act` {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}"
            )
        _check_labels(self)


@dataclass
class LevitConfig(_ConfigMixin):
    """LeViT (levit.py): a four-conv stem (BatchNorm, hardswish) to tokens, three stages of
    attention (with learned attention biases over relative offsets) and MLP residual blocks whose
    linears carry BatchNorm, an attention that subsamples the queries between stages. Square
    images of exactly ``image_size`` (the bias tables fix the grid)."""

    image_size: int | list = 224
    num_channels: int = 3
    kernel_size: int = 3
    stride: int = 2
    padding: int = 1
    patch_size: int = 16
    hidden_sizes: list | tuple = dataclasses.field(default_factory=lambda: [128, 256, 384])
    num_attention_heads: list | tuple = dataclasses.field(default_factory=lambda: [4, 8, 12])
    depths: list | tuple = dataclasses.field(default_factory=lambda: [4, 4, 4])
    key_dim: list | tuple = dataclasses.field(default_factory=lambda: [16, 16, 16])
    mlp_ratio: list | tuple = dataclasses.field(default_factory=lambda: [2, 2, 2])
    attention_ratio: list | tuple = dataclasses.field(default_factory=lambda: [2, 2, 2])
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "levit"

    base_prefix: ClassVar[str] = "levit."
    fixed_image_size: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_field_types(self)
        for name in ("num_channels", "kernel_size", "stride", "patch_size"):
            _positive(name, getattr(self, name))
        if not _is_int(self.padding) or self.padding < 0:
            raise ValueError(f"config field `padding` must be an integer >= 0, got {self.padding!r}")
        self.image_size = _pair("image_size", self.image_size)
        if self.image_size[0] != self.image_size[1] or self.image_size[0] % self.patch_size:
            raise ValueError(
                f"config field `image_size` {list(self.image_size)} must be square and a multiple of "
                f"`patch_size` ({self.patch_size})"
            )
        for name in (
            "hidden_sizes",
            "num_attention_heads",
            "depths",
            "key_dim",
            "mlp_ratio",
            "attention_ratio",
        ):
            values = getattr(self, name)
            low = 0 if name == "mlp_ratio" else 1
            if (
                not isinstance(values, (list, tuple))
                or len(values) != 3
                or not all(_is_int(v) and v >= low for v in values)
            ):
                raise ValueError(
                    f"config field `{name}` must list an integer >= {low} for each of the 3 stages, got {values!r}"
                )
            setattr(self, name, list(values))
        if (
            self.hidden_sizes[0] % 8
            or self.hidden_sizes[0] % self.key_dim[0]
            or self.hidden_sizes[1] % self.key_dim[0]
        ):
            raise ValueError(
                f"config field `hidden_sizes` {self.hidden_sizes}: the first must be a multiple of 8 (the stem "
                f"widths) and the first two multiples of `key_dim[0]` ({self.key_dim[0]}, the subsampling heads)"
            )
        _check_labels(self)

    @property
    def resolution(self) -> int:
        """The side of the token grid entering stage 0."""
        return self.image_size[0] // self.patch_size

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["image_size"] = self.image_size[0]
        return d


@dataclass
class DetrBackboneConfig(ResNetConfig):
    """DETR's ResNet backbone (``backbone_config`` of a detr config; resnet.py's layers under
    ``model.backbone.conv_encoder.model.``): ResNet's fields plus the stages it hands on
    (``out_features`` names from ``stem``, ``stage1`` ..., or ``out_indices``; DETR reads the
    last one)."""

    out_features: list | None = None
    out_indices: list | None = None

    base_prefix: ClassVar[str] = "model.backbone.conv_encoder.model."

    def __post_init__(self) -> None:
        super().__post_init__()
        names = ["stem", *(f"stage{i + 1}" for i in range(len(self.depths)))]
        if self.out_features is not None:
            bad = [f for f in self.out_features if f not in names]
            if bad or not self.out_features:
                raise ValueError(
                    f"config field `out_features` {self.out_features!r} must name stages of {names}"
                )
        if self.out_indices is not None:
            n = len(names)
            if not self.out_indices or not all(_is_int(i) and -n <= i < n for i in self.out_indices):
                raise ValueError(
                    f"config field `out_indices` {self.out_indices!r} must be indices into the stages {names}"
                )

    @property
    def feature_stages(self) -> list[int]:
        """Indices into ``(stem, stage1, ...)`` of the feature maps the backbone hands on, shallow
        first: those ``out_features`` (else ``out_indices``) name; the last stage when neither is set."""
        names = ["stem", *(f"stage{i + 1}" for i in range(len(self.depths)))]
        if self.out_features:
            return sorted({names.index(f) for f in self.out_features})
        if self.out_indices:
            return sorted({i % len(names) for i in self.out_indices})
        return [len(names) - 1]

    @property
    def feature_stage(self) -> int:
        """The feature map DETR's transformer reads: the deepest of :attr:`feature_stages`."""
        return self.feature_stages[-1]

    @property
    def fpn_channels(self) -> list[int]:
        """Channels of the third, second and first feature maps (the segmentation head's FPN)."""
        widths = [self.embedding_size, *self.hidden_sizes]
        return [widths[i] for i in self.feature_stages[2::-1]]

    @property
    def feature_channels(self) -> int:
        """Channels of that feature map (``embedding_size`` for the stem)."""
        return [self.embedding_size, *self.hidden_sizes][self.feature_stage]


#: transformers' default DETR backbone when `use_timm_backbone` is false and no backbone_config
DETR_DEFAULT_BACKBONE = {"model_type": "resnet", "out_features": ["stage4"]}
DETR_POSITION_EMBEDDINGS = ("sine", "learned")
DETR_TIMM_FIX = (
    "tensorweave reads transformers' own ResNet backbone only; use a checkpoint saved with "
    '"use_timm_backbone": false and a ResNet `backbone_config` (model_type "resnet")'
)


@dataclass
class DetrConfig(_ConfigMixin):
    """DETR (detr.py): a ResNet backbone (``backbone_config``), a 1x1 input projection, 2-D sine
    (or learned) positions, a post-norm transformer encoder over the feature map and a decoder over
    ``num_queries`` learned object queries; heads ``default``, ``object-detection`` and
    ``image-segmentation``. Any image size (no position table for sine; ``export_image_size`` is
    what an export fixes)."""

    backbone_config: dict | None = None
    use_timm_backbone: bool = True
    backbone: str | None = None
    num_channels: int = 3
    num_queries: int = 100
    encoder_layers: int = 6
    encoder_ffn_dim: int = 2048
    encoder_attention_heads: int = 8
    decoder_layers: int = 6
    decoder_ffn_dim: int = 2048
    decoder_attention_heads: int = 8
    activation_function: str = "relu"
    d_model: int = 256
    position_embedding_type: str = "sine"
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "detr"

    base_prefix: ClassVar[str] = "model."
    fixed_image_size: ClassVar[bool] = False
    export_image_size: ClassVar[tuple[int, int]] = (224, 224)

    def __post_init__(self) -> None:
        _check_field_types(self)
        if self.backbone_config is None:
            if self.use_timm_backbone:
                raise ValueError(
                    f"config field `use_timm_backbone` is true (timm backbone {self.backbone or 'resnet50'!r}, "
                    f"timm-named weights); {DETR_TIMM_FIX}"
                )
            self.backbone_config = dict(DETR_DEFAULT_BACKBONE)
        kind = self.backbone_config.get("model_type")
        if kind == "timm_backbone":
            raise ValueError(f"config field `backbone_config.model_type` is 'timm_backbone'; {DETR_TIMM_FIX}")
        if kind != "resnet":
            raise ValueError(
                f"config field `backbone_config.model_type` {kind!r} is not supported; DETR runs on a 'resnet' backbone"
            )
        names = {f.name for f in dataclasses.fields(DetrBackboneConfig)}
        try:
            self._resnet = DetrBackboneConfig(**{k: v for k, v in self.backbone_config.items() if k in names})
        except (TypeError, ValueError) as exc:
            msg = str(exc)
            for name in names:  # the backbone's fields named as they sit in this config
                msg = msg.replace(f"`{name}`", f"`backbone_config.{name}`")
            raise ValueError(msg) from None
        # the fields read, normalised (so a written config.json reads back equal)
        unused = ("id2label", "num_labels", "architectures")
        self.backbone_config = {
            k: v for k, v in self._resnet.to_dict().items() if k not in unused and v is not None
        }
        for name in (
            "num_channels",
            "num_queries",
            "encoder_layers",
            "encoder_ffn_dim",
            "encoder_attention_heads",
            "decoder_layers",
            "decoder_ffn_dim",
            "decoder_attention_heads",
            "d_model",
        ):
            _positive(name, getattr(self, name))
        if self.num_channels != self._resnet.num_channels:
            raise ValueError(
                f"config field `num_channels` ({self.num_channels}) must equal `backbone_config.num_channels` "
                f"({self._resnet.num_channels})"
            )
        for name in ("encoder_attention_heads", "decoder_attention_heads"):
            if self.d_model % getattr(self, name):
                raise ValueError(
                    f"config field `d_model` ({self.d_model}) must be divisible by `{name}` ({getattr(self, name)})"
                )
        if self.position_embedding_type not in DETR_POSITION_EMBEDDINGS:
            raise ValueError(
                f"config field `position_embedding_type` {self.position_embedding_type!r} is not supported; "
                f"use one of {list(DETR_POSITION_EMBEDDINGS)}"
            )
        if self.position_embedding_type == "sine" and self.d_model % 4:
            raise ValueError(
                f"config field `d_model` ({self.d_model}) must be a multiple of 4 (half of it per image axis, "
                "in sine / cosine pairs)"
            )
        if self.activation_function not in BART_ACTIVATIONS:
            raise ValueError(
                f"config field `activation_function` {self.activation_function!r} is not supported; "
                f"use one of {sorted(BART_ACTIVATIONS)}"
            )
        _check_labels(self)

    @property
    def resnet(self) -> DetrBackboneConfig:
        """The parsed ``backbone_config``."""
        return self._resnet


def _check_labels(cfg: Any) -> None:
    """``id2label`` keys as ints; ``num_labels`` from it when absent (default 2), positive."""
    if cfg.id2label is not None:
        if not all(_is_int(k) or (isinstance(k, str) and k.strip().isdigit()) for k in cfg.id2label):
            raise ValueError(
                f"config field `id2label` must map label ids (integers) to names, got {cfg.id2label!r}"
            )
        cfg.id2label = {int(k): v for k, v in cfg.id2label.items()}
    if cfg.num_labels is None:
        cfg.num_labels = len(cfg.id2label) if cfg.id2label else 2
    _positive("num_labels", cfg.num_labels)


def _pair(name: str, value: Any) -> tuple[int, int]:
    """An int or a [height, width] list of positive ints as (height, width)."""
    pair = [value, value] if _is_int(value) else value
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        raise ValueError(
            f"config field `{name}` must be a positive integer or [height, width], got {value!r}"
        )
    return (int(pair[0]), int(pair[1]))


@dataclass
class CLIPTextConfig:
    """CLIP's text tower (``text_config``; clip.py): token and learned position embeddings, pre-norm
    causal layers, a final LayerNorm, pooling at the EOS token."""

    vocab_size: int = 49408
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    eos_token_id: int = 49407

    @property
    def pools_at_largest_id(self) -> bool:
        """Pool at ``argmax(ids)`` (configs with ``eos_token_id == 2``, written before the EOS id
        was fixed) instead of at the first ``eos_token_id``."""
        return self.eos_token_id == 2


@dataclass
class CLIPVisionConfig:
    """CLIP's vision tower (``vision_config``; clip.py): a bias-free patch convolution, a class
    embedding, learned positions, ``pre_layrnorm``, pre-norm layers, ``post_layernorm`` on CLS."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 32
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    #: the checkpoint name of the LayerNorm after the embeddings (CLIP spells it so)
    pre_norm: ClassVar[str] = "pre_layrnorm"

    @property
    def grid(self) -> int:
        """Patches per side: ``image_size // patch_size`` (square images)."""
        return self.image_size // self.patch_size

    def check_more(self) -> None:
        """Checks a tower type adds (none for CLIP's)."""


def _clip_tower(cls: Any, where: str, value: Any) -> Any:
    """A tower config from its config.json object (unknown keys ignored); a bad field is a
    ValueError naming ``{where}.{field}``."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"config field `{where}` must be an object (dict), got {value!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    tower = cls(**{k: v for k, v in value.items() if k in names and v is not None})
    try:
        _check_field_types(tower)
        for name in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
            _positive(name, getattr(tower, name))
        _positive_float("layer_norm_eps", tower.layer_norm_eps)
        if tower.hidden_size % tower.num_attention_heads:
            raise ValueError(
                f"config field `hidden_size` ({tower.hidden_size}) must be divisible by "
                f"`num_attention_heads` ({tower.num_attention_heads})"
            )
        if tower.hidden_act not in (*ACTIVATIONS, "quick_gelu"):
            raise ValueError(
                f"config field `hidden_act` {tower.hidden_act!r} is not supported; use one of "
                f"{sorted([*ACTIVATIONS, 'quick_gelu'])}"
            )
        if issubclass(cls, CLIPTextConfig):
            for name in ("vocab_size", "max_position_embeddings"):
                _positive(name, getattr(tower, name))
            if not _is_int(tower.eos_token_id):
                raise ValueError(
                    f"config field `eos_token_id` must be an integer token id, got {tower.eos_token_id!r}"
                )
        else:
            for name in ("num_channels", "image_size", "patch_size"):
                _positive(name, getattr(tower, name))
            if tower.image_size < tower.patch_size:
                raise ValueError(
                    f"config field `image_size` ({tower.image_size}) must be at least `patch_size` ({tower.patch_size})"
                )
            tower.check_more()
    except ValueError as exc:
        if not where:
            raise
        raise ValueError(str(exc).replace("config field `", f"config field `{where}.")) from None
    return tower


def _tower_fields(cfg: Any, cls: Any) -> dict:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)}


@dataclass
class CLIPTextModelConfig(CLIPTextConfig, _ConfigMixin):
    """``CLIPTextModelWithProjection`` (clip.py): the text tower's fields at the top level, plus
    ``projection_dim``."""

    projection_dim: int = 512
    architectures: list | None = None
    model_type: str = "clip_text_model"

    def __post_init__(self) -> None:
        _check_field_types(self)
        _clip_tower(CLIPTextConfig, "", _tower_fields(self, CLIPTextConfig))
        _positive("projection_dim", self.projection_dim)

    @property
    def text(self) -> CLIPTextConfig:
        return CLIPTextConfig(**_tower_fields(self, CLIPTextConfig))


@dataclass
class CLIPVisionModelConfig(CLIPVisionConfig, _ConfigMixin):
    """``CLIPVisionModelWithProjection`` (clip.py): the vision tower's fields at the top level,
    plus ``projection_dim``."""

    projection_dim: int = 512
    architectures: list | None = None
    model_type: str = "clip_vision_model"

    def __post_init__(self) -> None:
        _check_field_types(self)
        _clip_tower(CLIPVisionConfig, "", _tower_fields(self, CLIPVisionConfig))
        _positive("projection_dim", self.projection_dim)

    @property
    def vision(self) -> CLIPVisionConfig:
        return CLIPVisionConfig(**_tower_fields(self, CLIPVisionConfig))


@dataclass
class CLIPConfig(_ConfigMixin):
    """CLIP (clip.py): a text and a vision tower (``text_config`` / ``vision_config``, normalised
    to every field of :class:`CLIPTextConfig` / :class:`CLIPVisionConfig`), bias-free projections
    to ``projection_dim`` and the learned ``logit_scale``."""

    text_config: dict | None = None
    vision_config: dict | None = None
    projection_dim: int = 512
    logit_scale_init_value: float = 2.6592
    architectures: list | None = None
    model_type: str = "clip"
    #: the tower classes (OWL-ViT and GroupViT subclass this config with their own)
    text_tower: ClassVar[type] = CLIPTextConfig
    vision_tower: ClassVar[type] = CLIPVisionConfig

    def __post_init__(self) -> None:
        _check_field_types(self)
        _positive("projection_dim", self.projection_dim)
        self.text_config = dataclasses.asdict(_clip_tower(self.text_tower, "text_config", self.text_config))
        self.vision_config = dataclasses.asdict(
            _clip_tower(self.vision_tower, "vision_config", self.vision_config)
        )

    @property
    def text(self) -> Any:
        """The text tower (a :class:`CLIPTextConfig` or the type's subclass)."""
        return self.text_tower(**(self.text_config or {}))

    @property
    def vision(self) -> Any:
        """The vision tower (a :class:`CLIPVisionConfig` or the type's subclass)."""
        return self.vision_tower(**(self.vision_config or {}))

    @property
    def vocab_size(self) -> int:
        """The text tower's vocabulary (export validation draws ids below it)."""
        return self.text.vocab_size


@dataclass
class LayoutLMv3Config(_ConfigMixin):
    """LayoutLMv3 (layoutlmv3.py): RoBERTa-style text embeddings plus concatenated 2-D layout
    embeddings, an optional image of patches appended to the text, post-LayerNorm layers with
    bucketed 1-D (token order) and 2-D (box x / y) relative attention biases."""

    vocab_size: int = 50265
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-5
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: Any = 2
    max_2d_position_embeddings: int = 1024
    coordinate_size: int = 128
    shape_size: int = 128
    has_relative_attention_bias: bool = True
    rel_pos_bins: int = 32
    max_rel_pos: int = 128
    rel_2d_pos_bins: int = 64
    max_rel_2d_pos: int = 256
    has_spatial_attention_bias: bool = True
    text_embed: bool = True
    visual_embed: bool = True
    input_size: int = 224
    num_channels: int = 3
    patch_size: int = 16
    id2label: dict | None = None
    num_labels: int | None = None
    architectures: list | None = None
    model_type: str = "layoutlmv3"
    positions_from_ids: ClassVar[bool] = True  # bert.default_position_ids: cumsum(m) * m + pad

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
            "max_2d_position_embeddings",
            "coordinate_size",
            "shape_size",
            "input_size",
            "num_channels",
            "patch_size",
        ):
            _positive(name, getattr(self, name))
        _positive_float("layer_norm_eps", self.layer_norm_eps)
        _check_hidden_act(self)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"config field `hidden_size` ({self.hidden_size}) must be divisible by "
                f"`num_attention_heads` ({self.num_attention_heads})"
            )
        if 4 * self.coordinate_size + 2 * self.shape_size != self.hidden_size:
            raise ValueError(
                f"config field `hidden_size` ({self.hidden_size}) must equal 4 * `coordinate_size` + 2 * "
                f"`shape_size` ({4 * self.coordinate_size + 2 * self.shape_size}): the layout embeddings are concatenated"
            )
        if not self.text_embed:
            raise ValueError(
                "config field `text_embed` false (an image-only model) is not supported; set it to true"
            )
        if not _is_int(self.pad_token_id) or not 0 <= self.pad_token_id < self.max_position_embeddings - 1:
            raise ValueError(
                f"config field `pad_token_id` must be an integer below `max_position_embeddings` - 1 "
                f"(position ids start after it), got {self.pad_token_id!r}"
            )
        if self.input_size < self.patch_size:
            raise ValueError(
                f"config field `input_size` ({self.input_size}) must be at least `patch_size` ({self.patch_size})"
            )
        for bins, distance in (("rel_pos_bins", "max_rel_pos"), ("rel_2d_pos_bins", "max_rel_2d_pos")):
            _positive(distance, getattr(self, distance))
            if not _is_int(getattr(self, bins)) or getattr(self, bins) < 4:
                raise ValueError(
                    f"config field `{bins}` must be an integer of at least 4 (half per direction, half of "
                    f"those exact), got {getattr(self, bins)!r}"
                )
            if getattr(self, distance) <= getattr(self, bins) // 4:
                raise ValueError(
                    f"config field `{distance}` ({getattr(self, distance)}) must exceed `{bins}` // 4 "
                    f"({getattr(self, bins) // 4}), the exact buckets of one direction"
                )
        _check_labels(self)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def grid(self) -> int:
        """Patches per side: ``input_size // patch_size`` (square images)."""
        return self.input_size // self.patch_size

    @property
    def image_size(self) -> int:
        """The side of the square image ``pixel_values`` must have (``input_size``)."""
        return self.input_size

    @property
    def max_text_length(self) -> int:
        """The longest text: position ids run from ``pad_token_id + 1`` to ``pad + s``."""
        return self.max_position_embeddings - int(self.pad_token_id or 0) - 1


@dataclass
class OwlViTTextConfig(CLIPTextConfig):
    """OWL-ViT's text tower (owlvit.py): CLIP's, 16 positions by default, always pooled at the
    largest id (``argmax(ids)``, whatever ``eos_token_id`` is)."""

    max_position_embeddings: int = 16

    @property
    def pools_at_largest_id(self) -> bool:
        return True


@dataclass
class OwlViTVisionConfig(CLIPVisionConfig):
    """OWL-ViT's vision tower (owlvit.py): CLIP's, its first LayerNorm named ``pre_layernorm``."""

    image_size: int = 768
    pre_norm: ClassVar[str] = "pre_layernorm"


@dataclass
class OwlViTConfig(CLIPConfig):
    """OWL-ViT (``OwlViTModel``; owlvit.py): CLIP's towers, projections and logits with the
    OWL-ViT towers' differences."""

    model_type: str = "owlvit"
    text_tower: ClassVar[type] = OwlViTTextConfig
    vision_tower: ClassVar[type] = OwlViTVisionConfig


@dataclass
class GroupViTTextConfig(CLIPTextConfig):
    """GroupViT's text tower (groupvit.py): CLIP's with GroupViT's defaults."""

    hidden_size: int = 256
    intermediate_size: int = 1024
    num_attention_heads: int = 4


def _int_list(name: str, value: Any, low: int) -> list:
    if not isinstance(value, (list, tuple)) or not value or not all(_is_int(v) and v >= low for v in value):
        raise ValueError(
            f"config field `{name}` must be a non-empty list of integers >= {low}, got {value!r}"
        )
    return list(value)


@dataclass
class GroupViTVisionConfig(CLIPVisionConfig):
    """GroupViT's vision tower (groupvit.py): patch embeddings (a convolution with bias, a
    LayerNorm, learned positions, no class token) and stages of pre-norm layers over the image
    and group tokens, each stage with group tokens ending in a hard assignment of the image
    tokens to ``num_output_groups`` groups."""

    hidden_size: int = 384
    intermediate_size: int = 1536
    num_attention_heads: int = 6
    patch_size: int = 16
    hidden_act: str = "gelu"
    depths: Any = (6, 3, 3)
    num_group_tokens: Any = (64, 8, 0)
    num_output_groups: Any = (64, 8, 8)
    assign_eps: float = 1.0
    assign_mlp_ratio: Any = (0.5, 4)

    def check_more(self) -> None:
        """Stage lists of one length; group tokens need output groups; a stage's group projector
        reads the previous stage's group tokens, so their counts must agree; MLP ratios."""
        self.depths = _int_list("depths", self.depths, 0)
        self.num_group_tokens = _int_list("num_group_tokens", self.num_group_tokens, 0)
        self.num_output_groups = _int_list("num_output_groups", self.num_output_groups, 0)
        if not len(self.depths) == len(self.num_group_tokens) == len(self.num_output_groups):
            raise ValueError(
                f"config field `depths` ({len(self.depths)} stages) must have as many entries as "
                f"`num_group_tokens` ({len(self.num_group_tokens)}) and `num_output_groups` "
                f"({len(self.num_output_groups)}): one per stage"
            )
        for i, (g, out) in enumerate(zip(self.num_group_tokens, self.num_output_groups)):
            if g and not out:
                raise ValueError(
                    f"config field `num_output_groups` [{i}] must be positive where `num_group_tokens` is ({g})"
                )
            if (
                i
                and g
                and self.num_output_groups[i - 1]
                and self.num_group_tokens[i - 1] != self.num_output_groups[i - 1]
            ):
                raise ValueError(
                    f"config field `num_group_tokens` [{i - 1}] ({self.num_group_tokens[i - 1]}) must equal "
                    f"`num_output_groups` [{i - 1}] ({self.num_output_groups[i - 1]}): stage {i} projects those "
                    "group tokens"
                )
        if (
            isinstance(self.assign_eps, bool)
            or not isinstance(self.assign_eps, (int, float))
            or self.assign_eps < 0
        ):
            raise ValueError(f"config field `assign_eps` must be a number >= 0, got {self.assign_eps!r}")
        ratio = self.assign_mlp_ratio
        pair = [ratio, ratio] if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) else ratio
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(
                isinstance(r, (int, float)) and not isinstance(r, bool) and int(r * self.hidden_size) > 0
                for r in pair
            )
        ):
            raise ValueError(
                f"config field `assign_mlp_ratio` must be a number or [tokens, channels] numbers whose product "
                f"with hidden_size ({self.hidden_size}) is at least 1, got {ratio!r}"
            )
        self.assign_mlp_ratio = list(pair)

    @property
    def assign_widths(self) -> tuple[int, int]:
        """``(tokens, channels)``: the hidden widths of the token-mixing and channel MLPs of an
        assignment, ``int(ratio * hidden_size)`` each."""
        tokens, channels = self.assign_mlp_ratio
        return int(tokens * self.hidden_size), int(channels * self.hidden_size)


@dataclass
class GroupViTConfig(CLIPConfig):
    """GroupViT (``GroupViTModel``; groupvit.py): a CLIP text tower, the grouping vision tower and
    two-layer projections (linear, BatchNorm, ReLU, linear) through ``projection_intermediate_dim``."""

    projection_dim: int = 256
    projection_intermediate_dim: int = 4096
    model_type: str = "groupvit"
    text_tower: ClassVar[type] = GroupViTTextConfig
    vision_tower: ClassVar[type] = GroupViTVisionConfig

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("projection_intermediate_dim", self.projection_intermediate_dim)


#: text + image models (clip.py, owlvit.py, groupvit.py), model_type -> config class: ``forward(params, cfg,
#: input_ids, attention_mask, pixel_values, head=...)`` -> dict of the head's outputs
MULTIMODAL_CONFIGS = {
    "clip": CLIPConfig,
    "clip_text_model": CLIPTextModelConfig,  # CLIPTextModelWithProjection
    "clip_vision_model": CLIPVisionModelConfig,  # CLIPVisionModelWithProjection
    "owlvit": OwlViTConfig,  # OwlViTModel
    "groupvit": GroupViTConfig,  # GroupViTModel
}


#: the vision encoders (vit.py), model_type -> config class: ``forward(params, cfg,
#: pixel_values, head=...)`` -> dict of the head's outputs
VISION_CONFIGS = {
    "vit": ViTConfig,
    "deit": DeiTConfig,
    "beit": BeitConfig,
    "data2vec-vision": Data2VecVisionConfig,
    "resnet": ResNetConfig,
    "convnext": ConvNextConfig,
    "swin": SwinConfig,
    "segformer": SegformerConfig,
    "mobilenet_v1": MobileNetV1Config,
    "mobilenet_v2": MobileNetV2Config,
    "poolformer": PoolFormerConfig,
    "levit": LevitConfig,
    "yolos": YolosConfig,
    "mobilevit": MobileViTConfig,
    "detr": DetrConfig,  # detr.py: ResNet backbone + encoder-decoder transformer, pixel_mask too
}


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
    **{
        model_type: {
            "emb_dim": "hidden_size",
            "n_layers": "num_hidden_layers",
            "n_heads": "num_attention_heads",
        }
        for model_type in ("xlm", "flaubert")
    },
}
#: T5 variants that run on t5.py (model_type -> config class)
T5_VARIANT_CONFIGS = {"mt5": MT5Config, "longt5": LongT5Config}
#: the encoder family (bert.py), model_type -> config class
ENCODER_CONFIGS = {
    "bert": BertConfig,
    "roberta": RobertaConfig,
    "xlm-roberta": XLMRobertaConfig,
    "camembert": CamembertConfig,
    "data2vec-text": Data2VecTextConfig,
    "distilbert": DistilBertConfig,
    "electra": ElectraConfig,
    "albert": AlbertConfig,
    "roformer": RoFormerConfig,
    "ibert": IBertConfig,
    "layoutlm": LayoutLMConfig,
    "rembert": RemBertConfig,
    "xlm": XLMConfig,  # xlm.py (with flaubert), squeezebert.py, mobilebert.py, convbert.py
    "flaubert": FlaubertConfig,
    "squeezebert": SqueezeBertConfig,
    "mobilebert": MobileBertConfig,
    "convbert": ConvBertConfig,
    "deberta": DebertaConfig,  # deberta.py (with deberta-v2), big_bird.py, longformer.py
    "deberta-v2": DebertaV2Config,
    "big_bird": BigBirdConfig,
    "longformer": LongformerConfig,
    "perceiver": PerceiverConfig,
}
CONFIGS = {
    "gpt2": GPT2Config,
    "imagegpt": ImageGPTConfig,
    **ROTARY_CONFIGS,
    **ENCODER_CONFIGS,
    "t5": T5Config,
    **T5_VARIANT_CONFIGS,
    **BART_CONFIGS,
    "whisper": WhisperConfig,
    **VISION_CONFIGS,
    **MULTIMODAL_CONFIGS,
    "layoutlmv3": LayoutLMv3Config,  # layoutlmv3.py: text + layout + image
}
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
