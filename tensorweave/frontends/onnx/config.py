"""The ONNX-config layer: OnnxConfig, OnnxConfigWithPast, OnnxSeq2SeqConfigWithPast.

Hugging Face's ``transformers.onnx`` API and behaviour (Transformers 4.37: the same
classes, defaults, errors and messages), with one addition: a config's dynamic axes are also an **IR signature**. Axis names become
IR symbols (``batch``, ``sequence``, ``past_sequence + sequence``, ...), so one
description yields the ONNX ``dim_param``s, the TF input signature, torch.export
``Dim``s and jax.export symbolic shapes (see ``OnnxConfig.input_specs``).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import warnings
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from packaging.version import Version

from ...ir.types import DType, SymDim, TensorSpec

DEFAULT_ONNX_OPSET = 11
EXTERNAL_DATA_FORMAT_SIZE_LIMIT = 2 * 1024 * 1024 * 1024


class ParameterFormat:
    """Bytes per serialised parameter (HF's ``ParameterFormat.Float`` is a 4-byte c_float)."""

    class Float:
        size = 4


def compute_serialized_parameters_size(num_parameters: int, dtype: Any = ParameterFormat.Float) -> int:
    return num_parameters * dtype.size


def compute_effective_axis_dimension(dimension: int, fixed_dimension: int, num_token_to_add: int = 0) -> int:
    """dim <= 0 (dynamic) -> fixed_dimension; then subtract the special tokens to be added."""
    if dimension <= 0:
        dimension = fixed_dimension
    dimension -= num_token_to_add
    return dimension


@dataclasses.dataclass
class PatchingSpec:
    """Temporarily replace ``o.name`` by ``custom_op`` during export (optionally wrapped)."""

    o: Any
    name: str
    custom_op: Callable
    orig_op: Callable | None = None
    op_wrapper: Callable | None = None

    def __post_init__(self) -> None:
        if self.orig_op is None:
            self.orig_op = getattr(self.o, self.name)


def config_field(config: Any, name: str, default: Any = None) -> Any:
    """``config[name]`` for a dict config, ``config.name`` otherwise; ``default`` when absent."""
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def _has(config: Any, name: str) -> bool:
    return name in config if isinstance(config, Mapping) else hasattr(config, name)


def axes_to_shape(axes: Mapping[int, str], rank: int, fixed: Mapping[int, int] | None = None) -> tuple:
    """An IR shape from a dynamic-axes dict: named axes become symbols, others ``fixed`` sizes."""
    fixed = fixed or {}
    out = []
    for i in range(rank):
        if i in axes:
            out.append(SymDim.parse(axes[i]))
        elif i in fixed:
            out.append(fixed[i])
        else:
            raise ValueError(f"axis {i} is neither dynamic nor given a fixed size")
    return tuple(out)


class OnnxConfig:
    """Base class describing a model's export signature for one task (feature)."""

    default_fixed_batch = 2
    default_fixed_sequence = 8
    default_fixed_num_choices = 4
    torch_onnx_minimum_version = Version("1.8")
    _tasks_to_common_outputs = {
        "causal-lm": OrderedDict({"logits": {0: "batch", 1: "sequence"}}),
        "default": OrderedDict({"last_hidden_state": {0: "batch", 1: "sequence"}}),
        "image-classification": OrderedDict({"logits": {0: "batch", 1: "sequence"}}),
        "image-segmentation": OrderedDict(
            {
                "logits": {0: "batch", 1: "sequence"},
                "pred_boxes": {0: "batch", 1: "sequence"},
                "pred_masks": {0: "batch", 1: "sequence"},
            }
        ),
        "masked-im": OrderedDict({"logits": {0: "batch", 1: "sequence"}}),
        "masked-lm": OrderedDict({"logits": {0: "batch", 1: "sequence"}}),
        "multiple-choice": OrderedDict({"logits": {0: "batch"}}),
        "object-detection": OrderedDict(
            {"logits": {0: "batch", 1: "sequence"}, "pred_boxes": {0: "batch", 1: "sequence"}}
        ),
        "question-answering": OrderedDict(
            {"start_logits": {0: "batch", 1: "sequence"}, "end_logits": {0: "batch", 1: "sequence"}}
        ),
        "semantic-segmentation": OrderedDict(
            {"logits": {0: "batch", 1: "num_labels", 2: "height", 3: "width"}}
        ),
        "seq2seq-lm": OrderedDict({"logits": {0: "batch", 1: "decoder_sequence"}}),
        "sequence-classification": OrderedDict({"logits": {0: "batch"}}),
        "speech2seq-lm": OrderedDict({"logits": {0: "batch", 1: "sequence"}}),
        "token-classification": OrderedDict({"logits": {0: "batch", 1: "sequence"}}),
        "vision2seq-lm": OrderedDict({"logits": {0: "batch", 1: "sequence"}}),
    }

    def __init__(self, config: Any, task: str = "default", patching_specs: list[PatchingSpec] | None = None):
        self._config = config
        if task not in self._tasks_to_common_outputs:
            raise ValueError(
                f"{task} is not a supported task, supported tasks: {self._tasks_to_common_outputs.keys()}"
            )
        self.task = task
        self._patching_specs = []
        for spec in patching_specs if patching_specs is not None else []:
            final = spec
            if spec.orig_op is None:
                final = dataclasses.replace(spec, orig_op=getattr(spec.o, spec.name))
            self._patching_specs.append(final)

    @classmethod
    def from_model_config(cls, config: Any, task: str = "default") -> "OnnxConfig":
        return cls(config, task=task)

    # ------------------------------------------------------------------ signature
    @property
    def inputs(self) -> Mapping[str, Mapping[int, str]]:
        raise NotImplementedError(f"{type(self).__name__} must define `inputs`")

    @property
    def outputs(self) -> Mapping[str, Mapping[int, str]]:
        return copy.deepcopy(self._tasks_to_common_outputs[self.task])

    @property
    def values_override(self) -> Mapping[str, Any] | None:
        if _has(self._config, "use_cache"):
            return {"use_cache": False}
        return None

    @property
    def default_batch_size(self) -> int:
        return OnnxConfig.default_fixed_batch

    @property
    def default_sequence_length(self) -> int:
        return OnnxConfig.default_fixed_sequence

    @property
    def default_num_choices(self) -> int:
        return OnnxConfig.default_fixed_num_choices

    @property
    def default_onnx_opset(self) -> int:
        return DEFAULT_ONNX_OPSET

    @property
    def atol_for_validation(self) -> float:
        return 1e-5

    @property
    def is_torch_support_available(self) -> bool:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return False
        from importlib.metadata import version

        return Version(Version(version("torch")).base_version) >= Version(
            str(self.torch_onnx_minimum_version)
        )

    @staticmethod
    def use_external_data_format(num_parameters: int) -> bool:
        """True when the fp32 parameters reach 2 GiB (ONNX's protobuf limit)."""
        return (
            compute_serialized_parameters_size(num_parameters, ParameterFormat.Float)
            >= EXTERNAL_DATA_FORMAT_SIZE_LIMIT
        )

    # ------------------------------------------------------------------ IR signature
    def input_dtypes(self) -> dict[str, DType]:
        """IR dtype of each input (token ids and masks are int64, everything else float32)."""
        return {
            name: (DType.int64 if ("ids" in name or "mask" in name) else DType.float32)
            for name in self.inputs
        }

    def input_ranks(self) -> dict[str, int]:
        return {name: (max(axes) + 1 if axes else 0) for name, axes in self.inputs.items()}

    def input_specs(self) -> list[TensorSpec]:
        """The inputs as IR TensorSpecs: every dynamic axis is the symbol named by the config."""
        dtypes = self.input_dtypes()
        return [
            TensorSpec(
                axes_to_shape(axes, self.input_ranks()[name], self.fixed_input_axes(name)), dtypes[name], name
            )
            for name, axes in self.inputs.items()
        ]

    def fixed_input_axes(self, name: str) -> dict[int, int]:
        """Static sizes of the non-dynamic axes of input ``name`` (overridden where needed)."""
        return {}

    # ------------------------------------------------------------------ dummy inputs
    def generate_dummy_inputs(
        self,
        preprocessor: Any,
        batch_size: int = -1,
        seq_length: int = -1,
        num_choices: int = -1,
        is_pair: bool = False,
        framework: Any = None,
        num_channels: int = 3,
        image_width: int = 40,
        image_height: int = 40,
        sampling_rate: int = 22050,
        time_duration: float = 5.0,
        frequency: int = 220,
        tokenizer: Any = None,
    ) -> Mapping[str, Any]:
        """Dummy inputs for export; -1 means dynamic (then the fixed sizes are used, because ONNX may
        squeeze an axis of size 1). Keyed by input name: numpy arrays, or with ``framework``
        (4.37's ``TensorType`` or its value ``"pt"`` / ``"tf"`` / ``"jax"`` / ``"np"``) that
        framework's tensors."""
        out = self._dummy_numpy(
            preprocessor,
            batch_size,
            seq_length,
            num_choices,
            is_pair,
            num_channels,
            image_width,
            image_height,
            sampling_rate,
            time_duration,
            frequency,
            tokenizer,
        )
        return to_framework(out, framework)

    def _dummy_numpy(
        self,
        preprocessor: Any,
        batch_size: int,
        seq_length: int,
        num_choices: int,
        is_pair: bool,
        num_channels: int,
        image_width: int,
        image_height: int,
        sampling_rate: int,
        time_duration: float,
        frequency: int,
        tokenizer: Any,
    ) -> dict:
        is_tokenizer = _is_tokenizer(preprocessor)
        if is_tokenizer and tokenizer is not None:
            raise ValueError(
                "You cannot provide both a tokenizer and a preprocessor to generate dummy inputs."
            )
        if tokenizer is not None:
            warnings.warn(
                "The `tokenizer` argument is deprecated and will be removed in version 5 of Transformers. "
                "Use `preprocessor` instead.",
                FutureWarning,
            )
            preprocessor, is_tokenizer = tokenizer, True
        if is_tokenizer:
            batch_size = compute_effective_axis_dimension(batch_size, OnnxConfig.default_fixed_batch, 0)
            special = _num_special_tokens_to_add(preprocessor, is_pair)
            seq_length = compute_effective_axis_dimension(
                seq_length, OnnxConfig.default_fixed_sequence, special
            )
            unk = _unk_token(preprocessor) or "0"
            text = [" ".join([unk]) * seq_length] * batch_size
            if self.task == "multiple-choice":
                num_choices = compute_effective_axis_dimension(
                    num_choices, OnnxConfig.default_fixed_num_choices, 0
                )
                text = text * num_choices
                enc = _encode(preprocessor, text, pair=text)
                return {
                    k: np.asarray([v[i : i + num_choices] for i in range(0, len(v), num_choices)])
                    for k, v in enc.items()
                }
            return {k: np.asarray(v) for k, v in _encode(preprocessor, text).items()}
        input_names = getattr(preprocessor, "model_input_names", None)
        if input_names and input_names[0] == "pixel_values":
            batch_size = compute_effective_axis_dimension(batch_size, OnnxConfig.default_fixed_batch)
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, (batch_size, image_height, image_width, num_channels)).astype(
                np.uint8
            )
            return dict(preprocessor(images=list(images), return_tensors="np"))
        if input_names and input_names[0] == "input_features":
            batch_size = compute_effective_axis_dimension(batch_size, OnnxConfig.default_fixed_batch)
            t = np.linspace(0, time_duration, int(time_duration * sampling_rate))
            audio = [0.5 * np.sin(2 * np.pi * frequency * t) for _ in range(batch_size)]
            return dict(preprocessor(audio, sampling_rate=sampling_rate, return_tensors="np"))
        raise ValueError(
            "Unable to generate dummy inputs for the model. Please provide a tokenizer or a preprocessor."
        )

    def generate_dummy_inputs_onnxruntime(
        self, reference_model_inputs: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Hook to adapt reference inputs for onnxruntime (identity here)."""
        return reference_model_inputs

    def patch_ops(self) -> None:
        for spec in self._patching_specs:
            custom = spec.custom_op if spec.op_wrapper is None else spec.op_wrapper(spec.custom_op)
            setattr(spec.o, spec.name, custom)

    def restore_ops(self) -> None:
        for spec in self._patching_specs:
            orig = spec.orig_op if spec.op_wrapper is None else spec.op_wrapper(spec.orig_op)
            setattr(spec.o, spec.name, orig)

    @classmethod
    def flatten_output_collection_property(cls, name: str, field: Iterable[Any]) -> dict[str, Any]:
        """{f"{name}.{i}": item} over the chained items of ``field``."""
        return {f"{name}.{idx}": item for idx, item in enumerate(itertools.chain.from_iterable(field))}


#: framework name -> function(numpy array) -> that framework's tensor; filled by ``tensorweave.onnx``
#: (this room imports no framework)
FRAMEWORK_CONVERTERS: dict[str, Callable[[Any], Any]] = {}
_FRAMEWORK_ALIASES = {
    "pt": "pt",
    "torch": "pt",
    "pytorch": "pt",
    "tf": "tf",
    "tensorflow": "tf",
    "jax": "jax",
    "flax": "jax",
    "np": "np",
    "numpy": "np",
}


def to_framework(arrays: Any, framework: Any) -> Any:
    """``arrays`` (numpy arrays by name, nested lists / tuples as for ``past_key_values``) as
    ``framework``'s tensors (4.37's ``TensorType`` or its value); None leaves them as they are."""
    if framework is None:
        return arrays
    name = getattr(framework, "value", framework)
    key = _FRAMEWORK_ALIASES.get(name.lower()) if isinstance(name, str) else None
    if key is None:
        raise ValueError(f"unknown framework {framework!r}; choose one of pt, tf, jax, np")
    if key != "np" and key not in FRAMEWORK_CONVERTERS:
        raise ValueError(f"framework {name!r} needs `import tensorweave.onnx` (it registers the converters)")
    convert = np.asarray if key == "np" else FRAMEWORK_CONVERTERS[key]

    def walk(x: Any) -> Any:
        if isinstance(x, Mapping):
            return (
                type(x)((k, walk(v)) for k, v in x.items())
                if isinstance(x, OrderedDict)
                else {k: walk(v) for k, v in x.items()}
            )
        if isinstance(x, (list, tuple)):
            return type(x)(walk(v) for v in x)
        return convert(np.asarray(x))

    return walk(arrays)


# ---------------------------------------------------------------------- tokenizer duck-typing


def _is_tokenizer(p: Any) -> bool:
    return p is not None and (
        hasattr(p, "encode_batch")
        or hasattr(p, "num_special_tokens_to_add")
        or hasattr(p, "batch_encode_plus")
    )


def _num_special_tokens_to_add(tok: Any, is_pair: bool) -> int:
    if hasattr(tok, "num_special_tokens_to_add"):
        return int(tok.num_special_tokens_to_add(is_pair))
    if hasattr(tok, "encode"):  # a `tokenizers.Tokenizer`
        plain = len(tok.encode("a", add_special_tokens=False).ids)
        full = (
            len(tok.encode("a", "a", add_special_tokens=True).ids) - 2 * plain
            if is_pair
            else len(tok.encode("a", add_special_tokens=True).ids) - plain
        )
        return full
    return 0


def _unk_token(tok: Any) -> str | None:
    unk = getattr(tok, "unk_token", None)
    if unk is None and hasattr(tok, "get_vocab"):
        vocab = tok.get_vocab()
        for cand in ("[UNK]", "<unk>"):
            if cand in vocab:
                return cand
    return unk


def _encode(tok: Any, text: list, pair: list | None = None) -> dict:
    if callable(tok) and not hasattr(tok, "encode_batch"):
        out = tok(text, pair) if pair is not None else tok(text)
        return {k: list(v) for k, v in dict(out).items()}
    encs = tok.encode_batch(list(zip(text, pair)) if pair is not None else text)
    out = {"input_ids": [e.ids for e in encs], "attention_mask": [e.attention_mask for e in encs]}
    if any(any(t) for e in encs for t in [e.type_ids]):
        out["token_type_ids"] = [e.type_ids for e in encs]
    return out


# ---------------------------------------------------------------------- with past


class OnnxConfigWithPast(OnnxConfig):
    """A decoder's signature with (optionally) past key/values as inputs and present ones as outputs."""

    def __init__(
        self,
        config: Any,
        task: str = "default",
        patching_specs: list[PatchingSpec] | None = None,
        use_past: bool = False,
    ):
        super().__init__(config, task=task, patching_specs=patching_specs)
        self.use_past = use_past

    @classmethod
    def with_past(cls, config: Any, task: str = "default") -> "OnnxConfigWithPast":
        return cls(config, task=task, use_past=True)

    @property
    def outputs(self) -> Mapping[str, Mapping[int, str]]:
        common = super().outputs
        if self.use_past:
            self.fill_with_past_key_values_(common, direction="outputs")
        return common

    @property
    def values_override(self) -> Mapping[str, Any] | None:
        if _has(self._config, "use_cache"):
            return {"use_cache": self.use_past}
        return None

    @property
    def num_layers(self) -> int:
        if not _has(self._config, "num_layers"):
            raise AttributeError(
                "could not find the number of layers attribute in the model configuration, "
                "override the num_layers property of the model OnnxConfig to solve this"
            )
        return config_field(self._config, "num_layers")

    @property
    def num_attention_heads(self) -> int:
        if not _has(self._config, "num_attention_heads"):
            raise AttributeError(
                "could not find the number of attention heads attribute in the model configuration, "
                "override the num_attention_heads property of the model OnnxConfig to solve this"
            )
        return config_field(self._config, "num_attention_heads")

    @property
    def num_key_value_heads(self) -> int:
        return config_field(self._config, "num_key_value_heads", None) or self.num_attention_heads

    @property
    def head_dim(self) -> int:
        hidden = (
            config_field(self._config, "hidden_size", None)
            or config_field(self._config, "n_embd", None)
            or config_field(self._config, "d_model")
        )
        return config_field(self._config, "head_dim", None) or hidden // self.num_attention_heads

    def fill_with_past_key_values_(
        self, inputs_or_outputs: dict, direction: str, inverted_values_shape: bool = False
    ) -> None:
        """Add ``past_key_values.{i}.key/value`` (inputs) or ``present.{i}.key/value`` (outputs)."""
        if direction not in ["inputs", "outputs"]:
            raise ValueError(f'direction must either be "inputs" or "outputs", but {direction} was given')
        name = "past_key_values" if direction == "inputs" else "present"
        for i in range(self.num_layers):
            inputs_or_outputs[f"{name}.{i}.key"] = {0: "batch", 2: "past_sequence + sequence"}
            if inverted_values_shape:
                inputs_or_outputs[f"{name}.{i}.value"] = {0: "batch", 1: "past_sequence + sequence"}
            else:
                inputs_or_outputs[f"{name}.{i}.value"] = {0: "batch", 2: "past_sequence + sequence"}

    def _flatten_past_key_values_(self, flattened_output: dict, name: str, idx: int, t: Any) -> None:
        flattened_output[f"{name}.{idx}.key"] = t[0]
        flattened_output[f"{name}.{idx}.value"] = t[1]

    @classmethod
    def flatten_output_collection_property(cls, name: str, field: Iterable[Any]) -> dict[str, Any]:
        if name in ["present", "past_key_values"]:
            out: dict = {}
            for idx, t in enumerate(field):
                out[f"{name}.{idx}.key"] = t[0]
                out[f"{name}.{idx}.value"] = t[1]
            return out
        return super().flatten_output_collection_property(name, field)

    # IR signature: past inputs hold `past_sequence` positions (HF names the axis by the
    # total length it produces); a present output holds past_sequence + sequence.
    def input_ranks(self) -> dict[str, int]:
        ranks = super().input_ranks()
        for name in ranks:
            if name.startswith("past_key_values."):
                ranks[name] = 4
        return ranks

    def input_specs(self) -> list[TensorSpec]:
        specs = []
        dtypes = self.input_dtypes()
        for name, axes in self.inputs.items():
            if name.startswith("past_key_values."):
                specs.append(
                    TensorSpec(
                        ("batch", self.num_key_value_heads, "past_sequence", self.head_dim),
                        DType.float32,
                        name,
                    )
                )
            else:
                specs.append(
                    TensorSpec(
                        axes_to_shape(axes, self.input_ranks()[name], self.fixed_input_axes(name)),
                        dtypes[name],
                        name,
                    )
                )
        return specs

    def generate_dummy_inputs(
        self,
        tokenizer: Any,
        batch_size: int = -1,
        seq_length: int = -1,
        is_pair: bool = False,
        framework: Any = None,
    ) -> Mapping[str, Any]:
        """Token inputs plus, with past, zero past key/values of length seq + 2 per layer and an
        attention mask extended by seq + 2 ones (numpy arrays)."""
        common = super().generate_dummy_inputs(
            tokenizer, batch_size=batch_size, seq_length=seq_length, is_pair=is_pair, framework=None
        )
        if self.use_past:
            batch, seqlen = common["input_ids"].shape
            past_len = seqlen + 2
            shape = (batch, self.num_key_value_heads, past_len, self.head_dim)
            if "attention_mask" in common:
                common["attention_mask"] = np.concatenate(
                    [common["attention_mask"], np.ones((batch, past_len), common["attention_mask"].dtype)],
                    axis=1,
                )
            common["past_key_values"] = [
                (np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(self.num_layers)
            ]
        return to_framework(common, framework)


class OnnxSeq2SeqConfigWithPast(OnnxConfigWithPast):
    """Encoder-decoder signatures: decoder self-attention past and encoder (cross-attention) past.

    Unlike 4.37, unequal encoder/decoder depths are handled correctly: each decoder layer has
    ``.decoder.key/value`` and ``.encoder.key/value`` entries (cross-attention caches live in the
    decoder layers, whatever the encoder depth), so the entries follow the decoder depth; upstream
    emitted only ``.key`` for the extra layers and iterated ``range(min, max - min)``.
    """

    @property
    def outputs(self) -> Mapping[str, Mapping[int, str]]:
        common = OnnxConfig.outputs.fget(self)  # type: ignore[attr-defined]
        for name, axes in common.items():
            seq = "encoder_sequence" if "encoder" in name else "decoder_sequence"
            for idx, axis_name in axes.items():
                if "sequence" in axis_name:
                    axes[idx] = seq
        if self.use_past:
            self.fill_with_past_key_values_(common, direction="outputs")
        return common

    @property
    def num_layers(self) -> tuple[int, int]:
        if _has(self._config, "num_layers") and not (_has(self._config, "encoder_layers")):
            n = config_field(self._config, "num_layers")
            return n, (config_field(self._config, "num_decoder_layers", None) or n)
        if _has(self._config, "encoder_layers") and _has(self._config, "decoder_layers"):
            return config_field(self._config, "encoder_layers"), config_field(self._config, "decoder_layers")
        raise AttributeError(
            "could not find the number of encoder and decoder layers attributes in the model "
            "configuration, override the num_layers property of the model OnnxConfig to solve this"
        )

    @property
    def num_attention_heads(self) -> tuple[int, int]:
        if _has(self._config, "num_attention_heads"):
            n = config_field(self._config, "num_attention_heads")
            return n, n
        if _has(self._config, "encoder_attention_heads") and _has(self._config, "decoder_attention_heads"):
            return config_field(self._config, "encoder_attention_heads"), config_field(
                self._config, "decoder_attention_heads"
            )
        raise AttributeError(
            "could not find the number of attention heads for the encoder and the decoder attributes "
            "in the model configuration, override the num_attention_heads property of the model "
            "OnnxConfig to solve this"
        )

    @property
    def head_dim(self) -> int:
        return (
            config_field(self._config, "d_kv", None)
            or config_field(self._config, "d_model") // self.num_attention_heads[1]
        )

    def fill_with_past_key_values_(
        self, inputs_or_outputs: dict, direction: str, inverted_values_shape: bool = False
    ) -> None:
        if direction not in ["inputs", "outputs"]:
            raise ValueError(f'direction must either be "inputs" or "outputs", but {direction} was given')
        name = "past_key_values" if direction == "inputs" else "present"
        _, num_decoder_layers = self.num_layers
        dec_seq = "past_decoder_sequence" if direction == "inputs" else "past_decoder_sequence + sequence"
        for i in range(num_decoder_layers):
            inputs_or_outputs[f"{name}.{i}.decoder.key"] = {0: "batch", 2: dec_seq}
            inputs_or_outputs[f"{name}.{i}.decoder.value"] = {0: "batch", 2: dec_seq}
            inputs_or_outputs[f"{name}.{i}.encoder.key"] = {0: "batch", 2: "past_encoder_sequence"}
            inputs_or_outputs[f"{name}.{i}.encoder.value"] = {0: "batch", 2: "past_encoder_sequence"}

    def _flatten_past_key_values_(self, flattened_output: dict, name: str, idx: int, t: Any) -> None:
        flattened_output[f"{name}.{idx}.decoder.key"] = t[0]
        flattened_output[f"{name}.{idx}.decoder.value"] = t[1]
        flattened_output[f"{name}.{idx}.encoder.key"] = t[2]
        flattened_output[f"{name}.{idx}.encoder.value"] = t[3]

    @classmethod
    def flatten_output_collection_property(cls, name: str, field: Iterable[Any]) -> dict[str, Any]:
        if name in ["present", "past_key_values"]:
            out: dict = {}
            for idx, t in enumerate(field):
                out[f"{name}.{idx}.decoder.key"] = t[0]
                out[f"{name}.{idx}.decoder.value"] = t[1]
                if len(t) > 2:
                    out[f"{name}.{idx}.encoder.key"] = t[2]
                    out[f"{name}.{idx}.encoder.value"] = t[3]
            return out
        return OnnxConfig.flatten_output_collection_property.__func__(cls, name, field)  # type: ignore[attr-defined]

    def input_specs(self) -> list[TensorSpec]:
        specs = []
        dtypes = self.input_dtypes()
        heads = self.num_attention_heads[1]
        for name, axes in self.inputs.items():
            if name.startswith("past_key_values."):
                seq = "past_decoder_sequence" if ".decoder." in name else "past_encoder_sequence"
                specs.append(TensorSpec(("batch", heads, seq, self.head_dim), DType.float32, name))
            else:
                specs.append(
                    TensorSpec(
                        axes_to_shape(axes, self.input_ranks()[name], self.fixed_input_axes(name)),
                        dtypes[name],
                        name,
                    )
                )
        return specs

    def generate_dummy_inputs(
        self,
        tokenizer: Any,
        batch_size: int = -1,
        seq_length: int = -1,
        is_pair: bool = False,
        framework: Any = None,
    ) -> Mapping[str, Any]:
        """Encoder inputs, decoder inputs (length 1 with past) prefixed ``decoder_``, and past per
        decoder layer ``(dec_k, dec_v, enc_k, enc_v)`` with decoder length dec_len + 3."""
        enc = OnnxConfig.generate_dummy_inputs(
            self, tokenizer, batch_size, seq_length, is_pair=is_pair, framework=None
        )
        dec_len = 1 if self.use_past else seq_length
        dec = OnnxConfig.generate_dummy_inputs(
            self, tokenizer, batch_size, dec_len, is_pair=is_pair, framework=None
        )
        common = dict(enc)
        common.update({f"decoder_{k}": v for k, v in dec.items()})
        if self.use_past:
            batch, enc_len = common["input_ids"].shape
            dec_past = common["decoder_input_ids"].shape[1] + 3
            heads = self.num_attention_heads[1]
            dshape = (batch, heads, dec_past, self.head_dim)
            eshape = (batch, heads, enc_len, self.head_dim)
            common["decoder_attention_mask"] = np.concatenate(
                [
                    common["decoder_attention_mask"],
                    np.ones((batch, dec_past), common["decoder_attention_mask"].dtype),
                ],
                axis=1,
            )
            _, n_dec = self.num_layers
            common["past_key_values"] = [
                (
                    np.zeros(dshape, np.float32),
                    np.zeros(dshape, np.float32),
                    np.zeros(eshape, np.float32),
                    np.zeros(eshape, np.float32),
                )
                for _ in range(n_dec)
            ]
        return to_framework(common, framework)
