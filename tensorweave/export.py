"""Export a model's forward pass for one feature to ONNX, PyTorch, TensorFlow or JAX, and validate it.

One description drives every target: the feature's :class:`~tensorweave.onnx.OnnxConfig` names
the inputs and outputs (``past_key_values.{i}.key`` in, ``present.{i}.key`` out for
``-with-past``) and their dynamic axes; ``OnnxConfig.input_specs`` turns the axes into IR
symbols (``batch``, ``sequence``, ``past_sequence``, ``past_sequence + sequence``, ...). The
model's forward for the feature is traced with those specs (weights become named constants), and
the one graph is lowered and exported:

========== =============================================== =========================================
target     artefact                                        symbols become
========== =============================================== =========================================
onnx       ``model.onnx`` (+ ``.data`` past 2 GiB)         ``dim_param``s
torch      ``model.pt2`` (``torch.export``) + ``.json``    ``torch.export.Dim``s
tensorflow SavedModel directory (``serving_default``)      ``None`` dims of the input signature
jax        ``model.stablehlo`` (``jax.export``) + ``.json`` ``jax.export`` symbolic dimensions
========== =============================================== =========================================

The ``.json`` side file of torch and jax artefacts (``<artefact>.json``) records the input and
output names and shapes, which those formats do not keep; the StableHLO artefact embeds the
weights, so no parameter file is needed.

An export is a transaction (spec/reliability.md): all its files are written into a fresh
temporary sibling, loaded back, then swapped in (a folder: one rename; an artefact named as a
file: renames ordered so that a stale pair fails its hash check on load); the previous export
stays loadable until the swap; temporaries are removed on any failure or Ctrl-C and, after a
SIGKILL, by the next export. The output and arguments are checked before anything is traced. An
ONNX folder is Optimum-style (``config.json``, ``generation_config.json``, tokenizer files,
``genai_config.json``) and :func:`read_export_folder` reads it back.

:func:`validate_model_outputs` re-loads the artefact from its file and runs it at batch 3,
sequence 9 (past length 4) -- not the sizes anything was traced with -- against the numpy
reference, with Hugging Face's checks and ``ValueError`` messages (names, then shapes, then
values within ``atol``: ``allclose(ref, out, atol=atol)``, numpy's default ``rtol=1e-5``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from .errors import ArtefactError
from .frontends.onnx import OnnxConfig
from .ir.types import IRError, SymDim, TensorSpec

TARGETS = ("onnx", "torch", "tensorflow", "jax")
#: default artefact name inside an output directory, per target
DEFAULT_NAMES = {
    "onnx": "model.onnx",
    "torch": "model.pt2",
    "tensorflow": "saved_model",
    "jax": "model.stablehlo",
}
#: the file suffix that marks ``output`` as the artefact itself (tensorflow: any path is the directory)
SUFFIXES = {"onnx": ".onnx", "torch": ".pt2", "jax": ".stablehlo"}
#: lowest ONNX opset the ONNX lowering supports (Gelu)
MIN_ONNX_OPSET = 20
#: validation sizes: the fixed export sizes + 1, as in Hugging Face (and a past length of 4)
VALIDATION_BATCH, VALIDATION_SEQUENCE, VALIDATION_PAST, VALIDATION_CHOICES = 3, 9, 4, 5
SIDE_FILE_FORMAT = "tensorweave-export-signature"

Progress = Callable[[str], None]


@dataclass
class ExportResult:
    """What :func:`export` wrote: the artefact ``path``, and the input / output names in order
    (Hugging Face's ``export`` returns the last two as a tuple)."""

    path: str
    target: str
    feature: str
    onnx_config: OnnxConfig = field(repr=False)
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ============================================================================ config and checks


def _is_decoder(model: Any) -> bool:
    return getattr(model, "is_decoder", False)


def _is_seq2seq(model: Any) -> bool:
    return getattr(model, "is_encoder_decoder", False)


def onnx_config_for(model: Any, feature: str = "default") -> OnnxConfig:
    """The feature's OnnxConfig for ``model`` (``FeaturesManager``'s constructor on a copy of the
    model config, so HF's ``pad_token_id = 0`` side effect does not touch the model)."""
    from .frontends.onnx.features import FeaturesManager

    _, ctor = FeaturesManager.check_supported_model_or_raise(model, feature)
    return ctor(copy.copy(model.config))


def _task(config: OnnxConfig) -> str:
    return config.task


def check_exportable(model: Any, config: OnnxConfig) -> None:
    """The model implements the config's task: decoders ``default`` / ``causal-lm`` and T5
    ``default`` / ``seq2seq-lm`` (with or without past); BERT the head it was loaded with."""
    task = _task(config)
    mt = model.model_type
    if _is_seq2seq(model):
        if task == "speech2seq-lm" and mt == "whisper":  # the features table lists only this for whisper
            return
        head = getattr(model, "head", None)
        if head in ("sequence-classification", "question-answering"):  # bart.py's heads
            if task != head or getattr(config, "use_past", False):
                raise ValueError(f"this {mt} model has the {head!r} head; export {head!r} (without past)")
            return
        if task not in ("default", "seq2seq-lm"):
            raise ValueError(f"{mt} exports 'default' and 'seq2seq-lm' (with or without past), not {task!r}")
        return
    if _is_decoder(model):
        head = getattr(model, "head", None)  # imagegpt's image-classification
        if head is not None or task == "image-classification":
            if task != head or getattr(config, "use_past", False):
                raise ValueError(
                    f"this {mt} model has the {head or 'causal-lm'!r} head, the feature needs {task!r}; "
                    f"load it with the head of the feature (e.g. tw.models.from_pretrained(path, head={task!r}))"
                )
            return
        if task not in ("default", "causal-lm"):
            raise ValueError(
                f"{mt} feature {task!r} needs a {task} head, which tensorweave's {mt} does not "
                "implement; export 'causal-lm' or 'default'"
            )
        return
    if getattr(config, "use_past", False):
        raise ValueError(f"{mt} has no key/value cache; drop '-with-past' from the feature")
    head = getattr(model, "head", None) or "default"
    if task != head:
        raise ValueError(
            f"this {mt} model has the {head!r} head, the feature needs {task!r}; load it with "
            f"head={task!r} (e.g. tw.models.from_pretrained(path, head={task!r}))"
        )


def _resolve_target(target: str) -> str:
    from .backends.registry import ALIASES

    name = ALIASES.get(target.lower(), target.lower()) if isinstance(target, str) else target
    if name not in TARGETS:
        raise ValueError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    return name


def check_export_arguments(
    feature: str | None, target: str, *, generation: bool = False, output: Any = None
) -> str:
    """Checks that need no model (the CLI runs them before loading anything): the target is one
    of :data:`TARGETS` (backend aliases accepted) and, unless ``generation`` (the decode-loop
    export, which has no feature), ``feature`` is a feature some model type exports. Returns the
    target's canonical name; anything else is a one-line ``ValueError`` naming the choices."""
    from .frontends.onnx.features import FeaturesManager

    target = _resolve_target(target)
    if not generation:
        if not isinstance(feature, str) or (
            FeaturesManager.canonical_feature(feature) not in FeaturesManager.AVAILABLE_FEATURES
        ):
            raise ValueError(
                f"unknown feature {feature!r}; choose one of {', '.join(FeaturesManager.AVAILABLE_FEATURES)}"
            )
    if output is not None:
        check_export_output(output, target, generation=generation)
    return target


def check_export_output(output: Any, target: str, *, generation: bool = False) -> str:
    """The output checks ``export`` / ``export_generation`` run before any work, for callers that
    load a model first (the CLI): ``output`` can be written, and it would replace nothing
    tensorweave did not write (a non-empty foreign folder is an ``ArtefactError`` naming its
    files). Returns the artefact path. Creates nothing."""
    from . import io

    target = _resolve_target(target)
    if not generation:
        return _output_plan(output, target)[0]
    path = os.path.abspath(os.fspath(output))
    io.check_writable(path)
    if target == "tensorflow":
        io.check_replaceable(path)
    elif os.path.isdir(path):
        raise ArtefactError(f"{path} is a directory; name the {target} artefact file")
    return path


def artefact_path(output: str | os.PathLike, target: str) -> str:
    """``output`` itself when it names the artefact (``.onnx`` / ``.pt2`` / ``.stablehlo``; a
    SavedModel directory for tensorflow), else ``output/<DEFAULT_NAMES[target]>``."""
    target = _resolve_target(target)
    path = os.path.abspath(os.fspath(output))
    if target == "tensorflow":
        is_saved_model = os.path.isfile(os.path.join(path, "saved_model.pb"))
        if os.path.isdir(path) and os.listdir(path) and not is_saved_model:
            return os.path.join(path, DEFAULT_NAMES[target])
        return path
    if path.endswith(SUFFIXES[target]):
        return path
    if os.path.isfile(path):
        raise ValueError(
            f"{path} is a file without the {SUFFIXES[target]} suffix; name the {target} artefact "
            f"*{SUFFIXES[target]} or give a directory"
        )
    return os.path.join(path, DEFAULT_NAMES[target])


# ============================================================================ tracing


def trace_feature(model: Any, config: OnnxConfig) -> Any:
    """The model's forward for ``config.task`` as an IR graph with the config's signature:
    inputs ``config.input_specs()`` (in the config's order), outputs ``config.outputs`` (in order)."""
    from .frontends.models.attention import position_ids_from_mask
    from .frontends.models.weights import bind_params
    from .ir import namespace as xp
    from .ir.passes import dead_code_elimination
    from .ir.trace import trace

    check_exportable(model, config)
    specs = feature_input_specs(model, config)
    names = [s.name for s in specs]
    out_names = list(config.outputs)
    task, use_past = _task(config), bool(getattr(config, "use_past", False))
    cfg, forward = model.config, model.forward
    decoder, seq2seq = _is_decoder(model), _is_seq2seq(model)

    def fn(*args: Any) -> dict:
        feeds = dict(zip(names, args))
        params = bind_params(model.params)
        if seq2seq:
            return {
                k: v
                for k, v in _seq2seq_outputs(feeds, params, cfg, task, use_past).items()
                if k in out_names
            }
        if getattr(model, "is_vision", False):  # vit.py: pixel_values in (detr: pixel_mask too)
            mask = {k: v for k, v in feeds.items() if k == "pixel_mask"}
            res = forward(params, cfg, feeds["pixel_values"], **mask)
            return {k: res[k] for k in out_names}
        if getattr(model, "is_multimodal", False):  # clip.py: text and image in
            res = forward(params, cfg, **feeds)
            return {k: res[k] for k in out_names}
        if not decoder:
            # layoutlm's boxes, xlm's language ids, longformer's global tokens (4.37: no token types)
            extra = {k: feeds[k] for k in ("bbox", "langs", "global_attention_mask") if k in feeds}
            res = forward(
                params, cfg, feeds["input_ids"], feeds["attention_mask"], feeds.get("token_type_ids"), **extra
            )
            return {k: res[k] for k in out_names}
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        want_hidden = task == "default"
        if use_past:
            layers = cfg.num_hidden_layers
            cache = [
                (feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"])
                for i in range(layers)
            ]
            offset = xp.sum(xp.ones((cache[0][0].shape[2],), dtype=xp.int64))  # past_sequence as an array
            pos = position_ids_from_mask(mask, offset, ids.shape[1])
            res = forward(params, cfg, ids, mask, pos, cache, offset, output_hidden_states=want_hidden)
        else:
            res = forward(
                params, cfg, ids, mask, position_ids_from_mask(mask), output_hidden_states=want_hidden
            )
        out = {"last_hidden_state": res[2][-1]} if want_hidden else {"logits": res[0]}
        if use_past:
            for i, (k, v) in enumerate(res[1]):
                out[f"present.{i}.key"], out[f"present.{i}.value"] = k, v
        return {k: out[k] for k in out_names}

    graph = trace(fn, *specs, name=f"{model.model_type}_{task}{'_with_past' if use_past else ''}")
    graph = dead_code_elimination(graph)  # e.g. the encoder weights a with-past decoder step never reads
    if graph.output_names != out_names:
        raise IRError(f"the traced outputs {graph.output_names} are not the config's {out_names}")
    _check_output_axes(graph, config, seq2seq and use_past)
    return graph


def feature_input_specs(model: Any, config: OnnxConfig) -> list[TensorSpec]:
    """The IR input signature: ``config.input_specs()``, except for an encoder-decoder with past.

    There the config keeps 4.37's labels (``attention_mask`` axis 1 ``past_encoder_sequence +
    sequence``, ``decoder_attention_mask`` ``past_decoder_sequence + sequence`` with a one-token
    ``decoder_input_ids``), which are names, not a consistent size relation. The exported signature
    uses the same input names with sizes that hold at run time: ``input_ids`` / ``attention_mask``
    ``[batch, encoder_sequence]``, ``decoder_input_ids [batch, decoder_sequence]`` (one token per
    step in 4.37; any number here), ``decoder_attention_mask [batch, past_decoder_sequence +
    decoder_sequence]``, ``past_key_values.{i}.decoder.*`` ``[batch, heads, past_decoder_sequence,
    d_kv]`` and ``.encoder.*`` ``[batch, heads, encoder_sequence, d_kv]``."""
    if not (_is_seq2seq(model) and getattr(config, "use_past", False)):
        return config.input_specs()
    cfg = model.config
    heads, d_kv = cfg.num_heads, cfg.d_kv
    shapes = {
        "input_ids": ("batch", "encoder_sequence"),
        "attention_mask": ("batch", "encoder_sequence"),
        "decoder_input_ids": ("batch", "decoder_sequence"),
        "decoder_attention_mask": ("batch", "past_decoder_sequence + decoder_sequence"),
    }
    specs = []
    own = {spec.name: spec for spec in config.input_specs()}  # whisper's input_features: the config's
    for name in config.inputs:
        if name.startswith("past_key_values."):
            seq = "past_decoder_sequence" if ".decoder." in name else "encoder_sequence"
            specs.append(TensorSpec(("batch", heads, seq, d_kv), "float32", name))
        elif name in shapes:
            specs.append(TensorSpec(shapes[name], "int64", name))
        else:
            specs.append(own[name])
    return specs


def _seq2seq_outputs(feeds: dict, params: dict, cfg: Any, task: str, use_past: bool) -> dict:
    """T5 for ``default`` (``last_hidden_state``: the decoder's normed output) and ``seq2seq-lm``
    (``logits``). Without past: encoder, then the decoder over ``decoder_input_ids``. With past:
    one decoder step over the given self-attention past (``present.{i}.decoder.*`` = past + the
    new token) and the given cross-attention keys/values (returned as ``present.{i}.encoder.*``);
    ``input_ids`` is part of the signature (as in 4.37) but the encoder need not run."""
    from .frontends.models import ARCHITECTURES
    from .ir import namespace as xp

    arch = ARCHITECTURES[cfg.model_type]  # t5, bart or whisper: the same encode / decode contract
    # whisper has no masks (None: every encoder frame and, causally, every decoder token visible)
    mask, dec_ids, dec_mask = (
        feeds.get("attention_mask"),
        feeds["decoder_input_ids"],
        feeds.get("decoder_attention_mask"),
    )
    want_hidden = task == "default"
    if task in ("sequence-classification", "question-answering"):  # bart.py's heads, no cache
        res = arch.forward(params, cfg, feeds["input_ids"], mask, dec_ids, dec_mask, head=task)
        return {k: v for k, v in res.items() if k != "encoder_last_hidden_state"}
    if use_past:
        n = cfg.num_decoder_layers
        self_cache = [
            (feeds[f"past_key_values.{i}.decoder.key"], feeds[f"past_key_values.{i}.decoder.value"])
            for i in range(n)
        ]
        cross = [
            (feeds[f"past_key_values.{i}.encoder.key"], feeds[f"past_key_values.{i}.encoder.value"])
            for i in range(n)
        ]
        offset = xp.sum(xp.ones((self_cache[0][0].shape[2],), dtype=xp.int64))  # past_decoder_sequence
        res = arch.decode(
            params,
            cfg,
            dec_ids,
            None,
            mask,
            {"self": self_cache, "cross": cross},
            offset,
            decoder_attention_mask=dec_mask,
            output_hidden_states=want_hidden,
        )
    else:
        enc = arch.encode(params, cfg, feeds.get("input_features", feeds.get("input_ids")), mask)
        res = arch.decode(
            params, cfg, dec_ids, enc, mask, decoder_attention_mask=dec_mask, output_hidden_states=want_hidden
        )
    out = {"last_hidden_state": res[2][-1]} if want_hidden else {"logits": res[0]}
    if use_past:
        for i, ((k, v), (ck, cv)) in enumerate(zip(res[1]["self"], res[1]["cross"])):
            out[f"present.{i}.decoder.key"], out[f"present.{i}.decoder.value"] = k, v
            out[f"present.{i}.encoder.key"], out[f"present.{i}.encoder.value"] = ck, cv
    return out


_SEQ2SEQ_PAST_OUTPUT_AXES = {
    "logits": {0: "batch", 1: "decoder_sequence"},
    "last_hidden_state": {0: "batch", 1: "decoder_sequence"},
    "decoder": {0: "batch", 2: "past_decoder_sequence + decoder_sequence"},
    "encoder": {0: "batch", 2: "encoder_sequence"},
}


def _check_output_axes(graph: Any, config: OnnxConfig, seq2seq_past: bool = False) -> None:
    """Every dynamic output axis the config names must be that symbol in the traced program
    (encoder-decoder with past: the sizes of :func:`feature_input_specs`)."""
    outputs = config.outputs
    for name, spec in zip(graph.output_names, graph.output_specs):
        axes = outputs[name]
        if seq2seq_past:
            key = "decoder" if ".decoder." in name else "encoder" if ".encoder." in name else name
            axes = _SEQ2SEQ_PAST_OUTPUT_AXES[key]
        for axis, label in axes.items():
            want = SymDim.parse(label)
            got = spec.shape[axis] if axis < len(spec.shape) else None
            if got != want:
                raise IRError(
                    f"output {name!r} axis {axis} is {got} in the traced program, but the config names it "
                    f"{label!r}; fix the config's outputs"
                )


# ============================================================================ export


def _is_tw_model(obj: Any) -> bool:
    return hasattr(obj, "params") and hasattr(obj, "config")


def _hf_export(
    preprocessor: Any,
    model: Any,
    config: OnnxConfig,
    opset: int | None,
    output: Any,
    tokenizer: Any = None,
    device: str = "cpu",
    **kwargs: Any,
) -> tuple[list[str], list[str]]:
    """4.37's ``export(preprocessor, model, config, opset, output, tokenizer=None, device="cpu")``:
    writes ``output`` (an ``.onnx`` path) and returns ``(onnx_inputs, onnx_outputs)``."""
    if device not in ("cpu", None):
        raise ValueError(f"device={device!r}: tensorweave exports on the CPU only")
    feature = config.task + ("-with-past" if getattr(config, "use_past", False) else "")
    res = export(model, feature, "onnx", output, opset=opset, onnx_config=config, **kwargs)
    return res.input_names, res.output_names


def _resolve_opset(config: OnnxConfig, opset: int | None, model_type: str) -> int:
    from .backends.onnx import OPSET
    from .log import logger

    if opset is None:
        return max(OPSET, config.default_onnx_opset)
    if not isinstance(opset, int) or isinstance(opset, bool):
        raise ValueError(f"opset must be an int, got {opset!r}")
    if opset < config.default_onnx_opset:
        raise ValueError(
            f"Opset {opset} is not sufficient to export {model_type}. At least "
            f"{config.default_onnx_opset} is required."
        )
    if opset < MIN_ONNX_OPSET:
        logger.info(
            "opset %d requested; tensorweave's ONNX lowering needs opset %d (Gelu, LayerNormalization "
            "as functions): exporting at opset %d",
            opset,
            MIN_ONNX_OPSET,
            MIN_ONNX_OPSET,
        )
        return MIN_ONNX_OPSET
    return opset


def _output_plan(output: str | os.PathLike, target: str) -> tuple[str, str | None]:
    """``(artefact path, unit directory)``: a unit directory (the export folder, or a SavedModel
    directory) is written whole through ``io.staged_directory``; None means ``output`` names the
    artefact file itself (``.onnx`` / ``.pt2`` / ``.stablehlo``), written with its side files
    through ``io.staged_files``. Checks, before any work, that it can be written and that no
    directory tensorweave did not write would be replaced."""
    from . import io

    path = artefact_path(output, target)
    if target == "tensorflow":
        unit = path
    elif path == os.path.abspath(os.fspath(output)):
        unit = None
    else:
        unit = os.path.dirname(path)
    io.check_writable(unit or path)
    if unit is not None:
        io.check_replaceable(unit)
    elif os.path.isdir(path):
        raise ArtefactError(f"{path} is a directory; name the artefact file or pass the folder as output")
    return path, unit


def _model_for_export(model: Any, onnx_config: OnnxConfig) -> Any:
    """``model`` with ``onnx_config.values_override`` applied to a copy of its config (4.37 sets
    those config attributes before exporting; the caller's model is not touched)."""
    override = onnx_config.values_override
    if not override:
        return model
    cfg = copy.copy(model.config)
    changed = False
    for key, value in override.items():
        if hasattr(cfg, key):
            object.__setattr__(cfg, key, value)
            changed = True
    if not changed:
        return model
    twin = copy.copy(model)
    twin.config = cfg
    if hasattr(twin, "_programs"):
        twin._programs = {}
    return twin


def export(
    model: Any,
    feature: Any = "default",
    target: Any = "onnx",
    output: Any = ".",
    opset: Any = None,
    onnx_config: OnnxConfig | None = None,
    *,
    external_data: bool | None = None,
    validate: bool = False,
    progress: Progress | None = None,
    **hf_kwargs: Any,
) -> Any:
    """Export ``model``'s forward for ``feature`` to ``target`` at ``output`` (a directory, or the
    artefact's own name; see ``artefact_path``). Returns an ``ExportResult``.

    **A transaction** (spec/reliability.md): every file of the export is written into a fresh
    temporary sibling, loaded back and checked (``validate=True``: also Hugging Face's
    ``validate_model_outputs`` at batch 3 / sequence 9), then swapped in; the previous export
    stays loadable until the swap and nothing is left behind on any failure or Ctrl-C. A folder
    ``output`` is one unit (manifest ``tensorweave.json``: names, sizes, sha256, settings) and
    is replaced whole; a non-empty folder tensorweave did not write is refused, naming its files.
    For onnx the folder is an Optimum-style export: ``model.onnx``, ``config.json``,
    ``generation_config.json`` (generative models), the tokenizer files (when the model has a
    tokenizer) and ``genai_config.json`` (decoders with past; onnxruntime-genai runs the folder).

    ``feature``: a 4.37 feature or an Optimum task name (``text-generation-with-past``).
    ``onnx_config`` overrides the feature's config (its task must match the feature's); its
    ``values_override`` and ``patching_specs`` are honoured. ``opset`` (onnx only): default
    ``max(21, config.default_onnx_opset)``; lower than the config's default is Hugging Face's
    ``ValueError``; from there up to 19 the file is written at opset 20 (logged).
    ``external_data`` (onnx only): weights in ``model.onnx.data``; default
    ``OnnxConfig.use_external_data_format(num_parameters)``. ``progress`` is called with one line
    per stage.

    Also accepts 4.37's positional form ``export(preprocessor, model, config, opset, output)``,
    which returns ``(onnx_inputs, onnx_outputs)`` as 4.37 does."""
    if not _is_tw_model(model) and _is_tw_model(feature) and isinstance(target, OnnxConfig):
        return _hf_export(model, feature, target, output, opset, **hf_kwargs)
    if hf_kwargs:
        raise TypeError(f"export() got unexpected keyword arguments {sorted(hf_kwargs)}")
    from .frontends.onnx.features import FeaturesManager

    with export_stages(progress, "exporting") as say:
        start = time.perf_counter()
        target = _resolve_target(target)
        if not _is_tw_model(model):
            raise ValueError(
                f"export needs a tensorweave model (tw.models.load / from_pretrained / from_transformers), "
                f"got {type(model).__name__}"
            )
        feature = FeaturesManager.canonical_feature(feature) if isinstance(feature, str) else feature
        if onnx_config is None:
            onnx_config = onnx_config_for(model, feature)
        else:
            FeaturesManager.check_supported_model_or_raise(model, feature)
            if onnx_config.task != FeaturesManager.feature_to_task(feature):
                raise ValueError(
                    f"onnx_config is for task {onnx_config.task!r}, the feature {feature!r} needs "
                    f"{FeaturesManager.feature_to_task(feature)!r}"
                )
        check_exportable(model, onnx_config)
        clash = sorted(set(onnx_config.inputs) & set(onnx_config.outputs))
        if clash:  # an ONNX graph cannot have an input and an output of the same name
            raise ValueError(
                f"the config names {clash} both as inputs and as outputs; rename the outputs in the "
                "OnnxConfig (e.g. present.* for past_key_values.*)"
            )
        if target == "onnx":
            opset = _resolve_opset(onnx_config, opset, model.model_type)
        elif opset is not None:
            raise ValueError(f"opset applies to the onnx target only; drop it for {target}")
        if external_data is not None and target != "onnx":
            raise ValueError(f"external_data applies to the onnx target only; drop it for {target}")
        path, unit = _output_plan(output, target)  # writable, replaceable: before any tracing
        from .backends import registry

        if not registry.is_installed(target):
            raise IRError(registry.missing_message(target))

        say(f"tracing {model.model_type} {feature} with the {type(onnx_config).__name__} signature")
        traced_model = _model_for_export(model, onnx_config)
        onnx_config.patch_ops()
        try:
            graph = trace_feature(traced_model, onnx_config)
        finally:
            onnx_config.restore_ops()
        say(f"lowering to {target}" + (f" (opset {opset})" if target == "onnx" else ""))
        prog = registry.lower(graph, target, **({"opset": opset} if target == "onnx" else {}))
        if target == "onnx" and external_data is None:
            external_data = onnx_config.use_external_data_format(model.num_parameters())
        settings = {
            "target": target,
            "feature": feature,
            "model_type": model.model_type,
            "inputs": list(graph.input_names),
            "outputs": list(graph.output_names),
            **({"opset": opset, "external_data": bool(external_data)} if target == "onnx" else {}),
        }

        def write(dest: str) -> None:
            """Every file of the artefact at ``dest`` (inside a staging location)."""
            if target == "onnx":
                from .backends.onnx import EXTERNAL_DATA_THRESHOLD

                prog.export(dest, 0 if external_data else EXTERNAL_DATA_THRESHOLD)
            elif target == "jax":
                _export_jax(prog, dest, graph)
            elif target == "torch":
                prog.export(dest)
            if target in ("torch", "jax"):
                write_side_file(dest, target, feature, model.model_type, graph)

        def check(dest: str) -> None:
            """Load the staged artefact back with its framework's loader; ``validate``: HF's checks."""
            say(f"checking the staged {target} artefact loads")
            names = artefact_output_names(dest, target, allow_pickle=True)
            if list(names) != list(graph.output_names) and target != "tensorflow":
                raise ArtefactError(f"the staged artefact has outputs {names}, expected {graph.output_names}")
            if validate:
                validate_model_outputs(
                    onnx_config,
                    model,
                    dest,
                    list(graph.output_names),
                    target=target,
                    allow_pickle=True,
                    progress=say,
                )

        say(f"writing {path}")
        from . import io

        if target == "tensorflow":
            from .backends.tensorflow.artefact import export_saved_model

            export_saved_model(prog, path, check=check)
        elif unit is not None:
            name = os.path.basename(path)

            def check_unit(tmp: str) -> None:
                check(os.path.join(tmp, name))

            with io.staged_directory(unit, settings, check=check_unit) as tmp:
                write(os.path.join(tmp, name))
                if target == "onnx":
                    write_folder_files(tmp, model, onnx_config, feature, name)
        else:
            # renamed in this order: the data before the model that pins it by hash
            members = [path + ".data", path] if target == "onnx" and external_data else [path]
            if target in ("torch", "jax"):
                members.append(side_file_path(path))
            _write_file_group(path, members, write, check, target)
        result = ExportResult(
            path,
            target,
            feature,
            onnx_config,
            list(graph.input_names),
            list(graph.output_names),
            time.perf_counter() - start,
        )
        say(
            f"exported {len(result.input_names)} inputs -> {len(result.output_names)} outputs in {result.seconds:.1f} s"
        )
        return result


@contextlib.contextmanager
def export_stages(progress: Callable[[str], None] | None, desc: str, stages: int = 5) -> Iterator[Callable]:
    """The ``say(line)`` of an export: each stage line goes to ``progress`` (the CLI's timestamped
    lines) or, without one, to the ``tensorweave`` logger at info level, and moves a progress bar
    (:func:`tensorweave.log.progress`) that closes with the block."""
    from .log import logger
    from .log import progress as bar_for

    with bar_for(total=stages, desc=desc, unit="stage") as bar:

        def say(msg: str) -> None:
            (progress or logger.info)(msg)
            bar.set_postfix_str(msg[:60])
            bar.update(1)

        yield say


def _write_file_group(path: str, members: list[str], write: Callable, check: Callable, target: str) -> None:
    """The artefact named by the caller (``x.onnx`` [+ ``x.onnx.data``], ``x.pt2`` + ``x.pt2.json``,
    ``x.stablehlo`` + ``.json``): all written and checked in one temporary sibling directory, then
    renamed into place, the file that pins the others by hash last (the data before the ONNX model
    whose metadata holds its sha256; the artefact before the side file holding its sha256). A
    previous ``x.onnx.data`` the previous model referenced is removed when the new model has none."""
    from . import io

    stale_data = None
    if target == "onnx" and members == [path] and os.path.isfile(path + ".data"):
        from .backends.onnx.artefact import _references

        if _references(path, os.path.basename(path) + ".data"):
            stale_data = path + ".data"
    with io.staged_files(members) as staged:
        write(staged[path])  # every member lands in the same staging directory
        for member in members:
            if not os.path.isfile(staged[member]):
                raise ArtefactError(f"the export did not write {os.path.basename(member)}")
        check(staged[path])
    if stale_data:
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale_data)


# ============================================================================ Optimum-style folders


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def hf_config_dict(model: Any) -> dict:
    """The model's Hugging Face ``config.json`` content (its config's fields, ``model_type`` and
    ``architectures``)."""
    from .models.checkpoint import ENCODER_CLASS_HEADS

    cfg = model.config
    if hasattr(cfg, "to_hf_dict"):  # the type's own config.json names (GPT-J: n_embd, ...)
        d = _json_safe(cfg.to_hf_dict())
    else:
        d = _json_safe(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg)))
    d["model_type"] = model.model_type
    if model.model_type in ENCODER_CLASS_HEADS:  # the encoder family: the class of the head
        head = getattr(model, "head", None) or "default"
        classes = ENCODER_CLASS_HEADS[model.model_type]
        arch = next((k for k, v in classes.items() if v == head), next(iter(classes)))
    else:
        arch = _ARCHITECTURES.get(model.model_type)
        classes = getattr(model.config, "head_classes", None)  # bart.py: the class of the head
        if classes and getattr(model, "head", None):
            arch = next((k for k, v in classes.items() if v == model.head), arch)
    if arch:
        d["architectures"] = [arch]
    return d


_ARCHITECTURES = {
    "gpt2": "GPT2LMHeadModel",
    "imagegpt": "ImageGPTForCausalImageModeling",
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "olmo2": "Olmo2ForCausalLM",
    "granite": "GraniteForCausalLM",
    "starcoder2": "Starcoder2ForCausalLM",
    "stablelm": "StableLmForCausalLM",
    "gpt_neox": "GPTNeoXForCausalLM",
    "gptj": "GPTJForCausalLM",
    "phi": "PhiForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "qwen2_moe": "Qwen2MoeForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "codegen": "CodeGenForCausalLM",
    "gpt_neo": "GPTNeoForCausalLM",
    "falcon": "FalconForCausalLM",
    "bloom": "BloomForCausalLM",
    "t5": "T5ForConditionalGeneration",
    "mt5": "MT5ForConditionalGeneration",
    "longt5": "LongT5ForConditionalGeneration",
    "whisper": "WhisperForConditionalGeneration",
    "bart": "BartForConditionalGeneration",
    "mbart": "MBartForConditionalGeneration",
    "marian": "MarianMTModel",
    "m2m_100": "M2M100ForConditionalGeneration",
    "blenderbot": "BlenderbotForConditionalGeneration",
    "blenderbot-small": "BlenderbotSmallForConditionalGeneration",
    "bigbird_pegasus": "BigBirdPegasusForConditionalGeneration",
}


def _generation_config_dict(model: Any) -> dict:
    cfg = model.config
    out: dict = {}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
        value = getattr(cfg, key, None)
        if value is not None:
            out[key] = _json_safe(value)
    return out


#: model types onnxruntime-genai runs with its generic decoder (input ids, attention mask and the
#: past in, logits and the present out). Any other type is written as "llama", the same generic
#: decoder: tensorweave's graphs compute positions from the attention mask inside, so no type needs
#: genai's special inputs (its "gpt2" type, for one, asks for position ids our export does not take).
GENAI_GENERIC_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "granite"})


def genai_config_dict(model: Any, onnx_config: OnnxConfig, filename: str) -> dict:
    """onnxruntime-genai's ``genai_config.json`` for a decoder exported with past: the decoder's
    file, sizes, and the input/output names of :class:`OnnxConfigWithPast`
    (``past_key_values.%d.key`` in, ``present.%d.key`` out)."""
    cfg = model.config
    heads = onnx_config.num_attention_heads
    kv_heads = getattr(onnx_config, "num_key_value_heads", heads)
    gen = _generation_config_dict(model)
    eos = gen.get("eos_token_id", 0)
    pad = gen.get("pad_token_id")
    context = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    return {
        "model": {
            "bos_token_id": gen.get("bos_token_id", 0),
            "context_length": int(context),
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": filename,
                "head_size": int(onnx_config.head_dim),
                "hidden_size": int(onnx_config.head_dim * heads),
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
                "num_attention_heads": int(heads),
                "num_hidden_layers": int(onnx_config.num_layers),
                "num_key_value_heads": int(kv_heads),
            },
            "eos_token_id": eos,
            "pad_token_id": pad if pad is not None else (eos[0] if isinstance(eos, list) else eos),
            "type": model.model_type if model.model_type in GENAI_GENERIC_TYPES else "llama",
            "vocab_size": int(cfg.vocab_size),
        },
        "search": {
            "diversity_penalty": 0.0,
            "do_sample": False,
            "early_stopping": True,
            "length_penalty": 1.0,
            "max_length": int(context),
            "min_length": 0,
            "no_repeat_ngram_size": 0,
            "num_beams": 1,
            "num_return_sequences": 1,
            "past_present_share_buffer": False,
            "repetition_penalty": 1.0,
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
        },
    }


def write_folder_files(
    directory: str, model: Any, onnx_config: OnnxConfig, feature: str, filename: str
) -> list[str]:
    """The Optimum-style files beside the ONNX model in ``directory`` (a staging directory):
    ``config.json``; ``generation_config.json`` for decoders and encoder-decoders; the tokenizer
    (``tokenizer.json`` + ``tokenizer_config.json`` with special tokens and the chat template)
    when the model has one; ``genai_config.json`` for a decoder exported with past."""
    from . import io

    written = []

    def put(name: str, obj: dict) -> None:
        io.atomic_write_json(os.path.join(directory, name), obj)
        written.append(name)

    put("config.json", hf_config_dict(model))
    if _is_decoder(model) or _is_seq2seq(model):
        put("generation_config.json", _generation_config_dict(model))
    tok = getattr(model, "tokenizer", None)
    if tok is not None and hasattr(tok, "backend"):
        io.atomic_write(os.path.join(directory, "tokenizer.json"), tok.backend.to_str().encode("utf-8"))
        written.append("tokenizer.json")
        tcfg = {
            k: getattr(tok, k, None)
            for k in ("bos_token", "eos_token", "pad_token", "chat_template", "padding_side")
            if getattr(tok, k, None) is not None
        }
        tcfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        tcfg.setdefault(
            "model_max_length", int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        )
        put("tokenizer_config.json", tcfg)
    if _is_decoder(model) and getattr(onnx_config, "use_past", False) and onnx_config.task == "causal-lm":
        put("genai_config.json", genai_config_dict(model, onnx_config, filename))
    return written


def read_export_folder(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray], str | None]:
    """Read an ONNX export folder written by :func:`export` back: ``(config dict, params, tokenizer
    directory or None)``. The folder's manifest is checked first (a stale or mixed folder is an
    ``ArtefactError``); ``params`` are the model's weights by their Hugging Face names (the ONNX
    initializers keep them), as float32 numpy arrays; the tokenizer directory is the folder itself
    when it holds ``tokenizer.json``. Reads no code: JSON and protobuf only."""
    import onnx
    from onnx import numpy_helper

    from . import io

    folder = os.path.abspath(os.fspath(path))
    if not os.path.isdir(folder):
        raise ArtefactError(f"{folder} is not a directory; pass the folder tw.export wrote")
    manifest = io.read_manifest(folder, verify=True)
    settings = manifest.get("settings", {})
    if settings.get("target", "onnx") != "onnx":
        raise ArtefactError(
            f"{folder} holds a {settings.get('target')} export; read_export_folder reads onnx folders"
        )
    cfg_path = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_path):
        raise ArtefactError(
            f"{folder} has no config.json; export it again with tw.export(..., 'onnx', folder)"
        )
    with open(cfg_path, encoding="utf-8") as f:
        config = json.load(f)
    name = DEFAULT_NAMES["onnx"]
    model_path = os.path.join(folder, name)
    from .backends.onnx.artefact import check_files

    check_files(model_path)
    m = onnx.load_model(model_path, load_external_data=True)
    expected = _expected_param_names(config)
    params = {}
    for init in m.graph.initializer:
        if expected is not None and init.name not in expected:
            continue
        if expected is None and init.name.startswith(("_", "tw_", "const")):
            continue
        params[init.name] = numpy_helper.to_array(init)
    tok = folder if os.path.isfile(os.path.join(folder, "tokenizer.json")) else None
    return config, params, tok


def _expected_param_names(config: dict) -> set[str] | None:
    try:
        from .frontends.models.config import config_from_dict
        from .models.checkpoint import default_head, expected_shapes

        cfg = config_from_dict(config)
        return set(expected_shapes(cfg, default_head(cfg)))
    except Exception:  # an unknown config: keep every initializer
        return None


def _export_jax(prog: Any, path: str, graph: Any) -> None:
    """jax.export assumes symbols >= 1; let ``past_sequence`` be 0 (the first decode step) when
    the program allows it, else export without that allowance."""
    allow = [s for s in ("past_sequence", "past_decoder_sequence") if s in graph.symbols]
    if allow:
        try:
            prog.export(path, allow_zero=allow)
            return
        except IRError:
            pass
    prog.export(path)


def side_file_path(path: str) -> str:
    return path + ".json"


def write_side_file(path: str, target: str, feature: str, model_type: str, graph: Any) -> str:
    """``<artefact>.json``: input/output names, dtypes and shapes (symbols as text) and the
    artefact's sha256 (a stale side file is an error on load), written atomically."""
    from . import io

    def specs(names: Sequence[str], specs_: Sequence[TensorSpec]) -> list:
        return [
            {
                "name": n,
                "dtype": str(s.dtype),
                "shape": [d if isinstance(d, int) else str(d) for d in s.shape],
            }
            for n, s in zip(names, specs_)
        ]

    doc = {
        "format": SIDE_FILE_FORMAT,
        "version": 1,
        "target": target,
        "feature": feature,
        "model_type": model_type,
        "artefact_sha256": io.sha256(path),
        "inputs": specs(graph.input_names, graph.input_specs),
        "outputs": specs(graph.output_names, graph.output_specs),
    }
    dest = side_file_path(path)
    io.atomic_write_json(dest, doc)
    return dest


def read_side_file(path: str, verify: bool = True) -> dict:
    """The side file of a torch / jax artefact; with ``verify`` the artefact's sha256 must be the
    one recorded (an artefact with another export's side file is an ``ArtefactError``)."""
    from . import io

    side = side_file_path(path)
    try:
        with open(side, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ArtefactError(
            f"{side} is missing: torch and jax artefacts need the signature file tensorweave.export "
            "writes next to them; export again"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtefactError(f"{side} is not valid JSON ({e}); export again") from None
    if not isinstance(doc, dict) or doc.get("format") != SIDE_FILE_FORMAT:
        raise ArtefactError(f"{side} is not a tensorweave export signature file")
    want = doc.get("artefact_sha256")
    if verify and want is not None and os.path.isfile(path) and io.sha256(path) != want:
        raise ArtefactError(
            f"{side} was written for another {os.path.basename(path)} (a stale or mixed pair); export again"
        )
    return doc


# ============================================================================ running an artefact


def detect_target(path: str) -> str:
    """The target an artefact was exported for, from its name (a directory is a SavedModel)."""
    if os.path.isdir(path):
        return "tensorflow"
    for target, suffix in SUFFIXES.items():
        if path.endswith(suffix):
            return target
    raise ValueError(
        f"cannot tell the target of {path!r} from its name; pass target= (one of {', '.join(TARGETS)})"
    )


def _check_tf_dir(path: str) -> None:
    from . import io

    if io.is_ours(path):
        io.read_manifest(path, verify=True)


def artefact_output_names(path: str, target: str, *, allow_pickle: bool = False) -> list[str]:
    """The output names stored with the artefact (its files checked first, as when loading)."""
    if target == "onnx":
        import onnx

        from .backends.onnx.artefact import check_files

        check_files(path)
        m = onnx.load_model(path, load_external_data=False)
        return [o.name for o in m.graph.output]
    if target == "tensorflow":
        import tensorflow as tf

        _check_tf_dir(path)
        sig = tf.saved_model.load(path).signatures["serving_default"]
        return list(sig.structured_outputs)
    doc = read_side_file(path)
    if target == "torch":
        from .backends.torch.artefact import load_exported

        load_exported(path, allow_pickle=allow_pickle)
    else:
        from .backends.jax.artefact import load as load_jax

        load_jax(path)
    return [o["name"] for o in doc["outputs"]]


def run_artefact(
    path: str, inputs: Mapping[str, np.ndarray], target: str | None = None, *, allow_pickle: bool = False
) -> dict[str, np.ndarray]:
    """Load the artefact freshly from ``path`` with its framework's own loader
    (``onnxruntime.InferenceSession``, ``torch.export.load``, ``tf.saved_model.load``,
    ``jax.export.deserialize``), run it on numpy ``inputs`` (by name) and return its outputs by name.
    Its files are checked first (manifest, data-file hash, side-file hash: a stale or mixed export
    is an ``ArtefactError``). A ``.pt2`` is refused unless ``allow_pickle=True``
    (``torch.export.load`` unpickles: pass it only for files you trust)."""
    target = _resolve_target(target) if target else detect_target(path)
    if target == "onnx":
        import onnxruntime as ort

        from .backends.onnx.artefact import check_files

        check_files(path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        return dict(
            zip(
                names,
                sess.run(names, {i.name: np.ascontiguousarray(inputs[i.name]) for i in sess.get_inputs()}),
            )
        )
    if target == "tensorflow":
        import tensorflow as tf

        from .backends.tensorflow import tf_name

        _check_tf_dir(path)
        sig = tf.saved_model.load(path).signatures["serving_default"]
        out = sig(**{tf_name(k): tf.constant(v) for k, v in inputs.items()})
        return {k: np.asarray(v.numpy()) for k, v in out.items()}
    doc = read_side_file(path)
    in_names = [i["name"] for i in doc["inputs"]]
    out_names = [o["name"] for o in doc["outputs"]]
    missing = [n for n in in_names if n not in inputs]
    if missing:
        raise ValueError(f"inputs {missing} are missing; the artefact takes {in_names}")
    if target == "torch":
        import torch

        from .backends.torch.artefact import load_exported

        module = load_exported(path, allow_pickle=allow_pickle).module()
        with torch.no_grad():
            outs = module(*[torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in in_names])
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return {n: o.detach().numpy() for n, o in zip(out_names, outs)}
    import jax

    from .backends.jax.artefact import load as load_jax
    from .backends.jax.runtime import x64

    exported = load_jax(path)
    with x64():  # the artefact takes int64 token ids; 64-bit types for this call only
        outs = exported.call(*[jax.numpy.asarray(inputs[n]) for n in in_names])
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    return {n: np.asarray(o) for n, o in zip(out_names, outs)}


# ============================================================================ validation


def validation_inputs(
    config: OnnxConfig,
    model: Any,
    batch_size: int = VALIDATION_BATCH,
    seq_length: int = VALIDATION_SEQUENCE,
    past_length: int = VALIDATION_PAST,
    num_choices: int = VALIDATION_CHOICES,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Seeded inputs for the config's signature at the given sizes: token ids in the vocabulary,
    all-ones attention masks, token types in {0, 1}, random normal past keys/values."""
    rng = np.random.default_rng(seed)
    sizes = {
        "batch": batch_size,
        "sequence": seq_length,
        "choice": num_choices,
        "past_sequence": past_length,
        "encoder_sequence": seq_length,
        "decoder_sequence": seq_length,
        "past_decoder_sequence": past_length,
        "past_encoder_sequence": seq_length,
    }
    vocab = getattr(model.config, "vocab_size", 0)  # vision encoders have no vocabulary (no ids inputs)
    out = {}
    for spec in feature_input_specs(model, config):
        shape = tuple(d if isinstance(d, int) else d.evaluate(sizes) for d in spec.shape)
        name = spec.name
        if name == "global_attention_mask":  # longformer: every second token global (4.37's dummy)
            out[name] = np.broadcast_to(np.arange(shape[-1]) % 2 == 0, shape).astype(np.int64)
        elif name == "langs":  # xlm: language ids in {0 .. n_langs - 1}
            out[name] = rng.integers(0, model.config.n_langs, shape).astype(np.int64)
        elif "mask" in name:
            out[name] = np.ones(shape, np.int64)
        elif name == "bbox":  # layoutlm: boxes (x0, y0, x1, y1) with x0 <= x1, y0 <= y1
            limit = getattr(model.config, "max_2d_position_embeddings", 1024)
            corners = np.sort(rng.integers(0, limit, (*shape[:-1], 2, 2)), axis=-2)  # [..., (lo, hi), (x, y)]
            out[name] = corners.reshape(shape).astype(np.int64)
        elif "token_type" in name:  # {0, 1}, or {0} for one token type (roberta's type_vocab_size 1)
            types = max(1, min(2, getattr(model.config, "type_vocab_size", 2)))  # deberta: 0 tables
            out[name] = rng.integers(0, types, shape).astype(np.int64)
        elif "ids" in name:
            out[name] = rng.integers(0, vocab, shape).astype(np.int64)
        else:
            out[name] = rng.standard_normal(shape).astype(spec.dtype.to_numpy())
    return out


def reference_outputs(
    config: OnnxConfig, model: Any, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The numpy reference, computed with the model's own programs where it has one for the task
    (``program`` / ``with_past_program`` on the numpy backend) and else by the traced feature graph
    on numpy. Past outputs are named ``present.*`` (Hugging Face renames ``past_key_values``)."""
    from .backends import registry

    task, use_past = _task(config), bool(getattr(config, "use_past", False))
    if _is_seq2seq(model) and not use_past:
        res = model(
            inputs.get("input_features", inputs.get("input_ids")),
            inputs.get("attention_mask"),
            decoder_input_ids=inputs["decoder_input_ids"],
            backend="numpy",
            output_hidden_states=task == "default",
        )
        return (
            {"last_hidden_state": res["decoder_hidden_states"][-1]}
            if task == "default"
            else {"logits": res["logits"]}
        )
    if _is_seq2seq(model) or (_is_decoder(model) and task == "default" and use_past):
        graph = trace_feature(model, config)
        prog = registry.lower(graph, "numpy")
        outs = prog(*[inputs[n] for n in prog.input_names])
        return dict(zip(prog.output_names, outs if isinstance(outs, tuple) else (outs,)))
    if getattr(model, "is_vision", False):
        mask = {"pixel_mask": inputs["pixel_mask"]} if "pixel_mask" in inputs else {}
        return {k: np.asarray(v) for k, v in model(inputs["pixel_values"], backend="numpy", **mask).items()}
    if getattr(model, "is_multimodal", False):
        if "input_ids" not in inputs:
            return {k: np.asarray(v) for k, v in model(inputs["pixel_values"], backend="numpy").items()}
        res = model(
            inputs["input_ids"],
            inputs["attention_mask"],
            pixel_values=inputs.get("pixel_values"),
            bbox=inputs.get("bbox"),  # layoutlmv3's boxes
            backend="numpy",
        )
        return {k: np.asarray(v) for k, v in res.items()}
    if not _is_decoder(model):
        return {
            k: np.asarray(v)
            for k, v in model(
                inputs["input_ids"],
                inputs["attention_mask"],
                inputs.get("token_type_ids"),
                backend="numpy",
                **{n: inputs[n] for n in ("bbox", "langs", "global_attention_mask") if n in inputs},
            ).items()
        }
    if task == "causal-lm" and use_past:
        prog = model.with_past_program("numpy")
        outs = prog(*[inputs[n] for n in prog.input_names])
        return dict(zip(prog.output_names, outs))
    if task in ("causal-lm", "image-classification"):  # imagegpt's classifier: logits [batch, num_labels]
        return {"logits": model(inputs["input_ids"], inputs["attention_mask"], backend="numpy")["logits"]}
    res = model(inputs["input_ids"], inputs["attention_mask"], backend="numpy", output_hidden_states=True)
    return {"last_hidden_state": res["hidden_states"][-1]}


def validate_model_outputs(
    config: OnnxConfig,
    model: Any,
    output_path: Any,
    onnx_named_outputs: Any,
    atol: Any = None,
    target: Any = None,
    *args: Any,
    batch_size: int = VALIDATION_BATCH,
    seq_length: int = VALIDATION_SEQUENCE,
    past_length: int = VALIDATION_PAST,
    allow_pickle: bool = False,
    progress: Progress | None = None,
) -> None:
    """Hugging Face's ``validate_model_outputs`` for any target: run the artefact loaded from
    ``output_path`` at batch 3 / sequence 9 (past 4) and compare with the numpy reference.

    Checks, in order (each a ``ValueError`` with Hugging Face's message): the names
    ``onnx_named_outputs`` are reference outputs (and outputs of the artefact); each shape
    equals the reference's; ``np.allclose(ref, out, atol=atol)`` (rtol 1e-5). ``atol`` defaults
    to ``config.atol_for_validation``; ``target`` to the one the path's name implies.

    Also 4.37's order ``validate_model_outputs(config, preprocessor, reference_model, onnx_model,
    onnx_named_outputs, atol)`` (detected: the third argument is the model); the preprocessor
    is not needed (the inputs are seeded ids). ``allow_pickle`` is passed to the torch loader
    (a ``.pt2`` is refused without it: ``torch.export.load`` unpickles)."""
    if not _is_tw_model(model) and _is_tw_model(output_path):
        # 4.37: (config, preprocessor, reference_model, onnx_model, onnx_named_outputs, atol)
        model, output_path, onnx_named_outputs, atol = output_path, onnx_named_outputs, atol, target
        target = args[0] if args else None
    elif args:
        raise TypeError(
            f"validate_model_outputs() takes at most 6 positional arguments ({6 + len(args)} given)"
        )
    onnx_named_outputs = list(onnx_named_outputs)
    say = progress or (lambda msg: None)
    path = os.fspath(output_path)
    target = _resolve_target(target) if target else detect_target(path)
    atol = config.atol_for_validation if atol is None else atol
    if not isinstance(atol, (int, float)) or isinstance(atol, bool) or not atol >= 0:
        raise ValueError(f"atol must be a number >= 0, got {atol!r}")
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist; export the model first")
    say(
        f"validating {path} at batch {batch_size}, sequence {seq_length}"
        + (f", past {past_length}" if getattr(config, "use_past", False) else "")
        + f" (atol {atol})"
    )
    inputs = validation_inputs(config, model, batch_size, seq_length, past_length)
    ref = reference_outputs(config, model, config.generate_dummy_inputs_onnxruntime(inputs))
    got = run_artefact(path, inputs, target, allow_pickle=allow_pickle)

    ref_set, named_set = set(ref), set(onnx_named_outputs)
    if not named_set.issubset(ref_set):
        raise ValueError(
            "Outputs doesn't match between reference model and ONNX exported model: "
            f"{named_set.difference(ref_set)}"
        )
    if not named_set.issubset(set(got)):
        raise ValueError(
            "Outputs doesn't match between reference model and ONNX exported model: "
            f"{named_set.difference(set(got))}"
        )
    say(f"  [ok] output names match the reference ({len(named_set)})")
    for name in onnx_named_outputs:
        ref_value, value = np.asarray(ref[name]), np.asarray(got[name])
        if value.shape != ref_value.shape:
            raise ValueError(
                "Outputs shape doesn't match between reference model and ONNX exported model: "
                f"Got {ref_value.shape} (reference) and {value.shape} (ONNX)"
            )
        if not np.allclose(ref_value, value, atol=atol):
            bad = np.logical_not(np.isclose(ref_value, value, atol=atol))
            raise ValueError(
                "Outputs values doesn't match between reference model and ONNX exported model: "
                f"Got max absolute difference of: {np.amax(np.abs(ref_value - value))} for "
                f"{ref_value[bad]} vs {value[bad]}"
            )
        say(
            f"  [ok] {name} {tuple(value.shape)} max |diff| {float(np.amax(np.abs(ref_value - value), initial=0)):.2e}"
        )


__all__ = [
    "TARGETS",
    "DEFAULT_NAMES",
    "ExportResult",
    "artefact_path",
    "check_export_arguments",
    "check_export_output",
    "check_exportable",
    "detect_target",
    "export",
    "onnx_config_for",
    "read_export_folder",
    "reference_outputs",
    "run_artefact",
    "trace_feature",
    "validate_model_outputs",
    "validation_inputs",
]
