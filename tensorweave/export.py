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
weights, so no parameter file is needed. Every file is written to a temporary name and renamed
(the backends' ``export`` do this); a failed export leaves nothing behind.

:func:`validate_model_outputs` re-loads the artefact from its file and runs it at batch 3,
sequence 9 (past length 4) -- not the sizes anything was traced with -- against the numpy
reference, with Hugging Face's checks and ``ValueError`` messages (names, then shapes, then
values within ``atol``: ``allclose(ref, out, atol=atol)``, numpy's default ``rtol=1e-5``).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

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
        if task not in ("default", "seq2seq-lm"):
            raise ValueError(f"{mt} exports 'default' and 'seq2seq-lm' (with or without past), not {task!r}")
        return
    if _is_decoder(model):
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


def check_export_arguments(feature: str | None, target: str, *, generation: bool = False) -> str:
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
    return target


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


def _resolve_opset(config: OnnxConfig, opset: int | None, model_type: str) -> int:
    from .backends.onnx import OPSET

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
        raise ValueError(
            f"opset {opset} is too old for tensorweave's ONNX lowering; use --opset {MIN_ONNX_OPSET} "
            "or newer (or leave it out)"
        )
    return opset


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
        if not decoder:
            res = forward(params, cfg, feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
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
    for name in config.inputs:
        if name.startswith("past_key_values."):
            seq = "past_decoder_sequence" if ".decoder." in name else "encoder_sequence"
            specs.append(TensorSpec(("batch", heads, seq, d_kv), "float32", name))
        else:
            specs.append(TensorSpec(shapes[name], "int64", name))
    return specs


def _seq2seq_outputs(feeds: dict, params: dict, cfg: Any, task: str, use_past: bool) -> dict:
    """T5 for ``default`` (``last_hidden_state``: the decoder's normed output) and ``seq2seq-lm``
    (``logits``). Without past: encoder, then the decoder over ``decoder_input_ids``. With past:
    one decoder step over the given self-attention past (``present.{i}.decoder.*`` = past + the
    new token) and the given cross-attention keys/values (returned as ``present.{i}.encoder.*``);
    ``input_ids`` is part of the signature (as in 4.37) but the encoder need not run."""
    from .frontends.models import t5
    from .ir import namespace as xp

    mask, dec_ids, dec_mask = (
        feeds["attention_mask"],
        feeds["decoder_input_ids"],
        feeds["decoder_attention_mask"],
    )
    want_hidden = task == "default"
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
        res = t5.decode(
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
        enc = t5.encode(params, cfg, feeds["input_ids"], mask)
        res = t5.decode(
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


def export(
    model: Any,
    feature: str = "default",
    target: str = "onnx",
    output: str | os.PathLike = ".",
    opset: int | None = None,
    onnx_config: OnnxConfig | None = None,
    *,
    external_data: bool | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export ``model``'s forward for ``feature`` to ``target`` at ``output`` (a directory, or the
    artefact's own name; see ``artefact_path``). Returns an ``ExportResult``.

    ``onnx_config`` overrides the feature's config (its task must match the feature's).
    ``opset`` (onnx only): default ``max(21, config.default_onnx_opset)``; lower than the
    config's default is Hugging Face's ``ValueError``. ``external_data`` (onnx only): weights in
    a ``.data`` side file; default ``OnnxConfig.use_external_data_format(num_parameters)``
    (4-byte parameters reaching 2 GiB). ``progress`` is called with one line per stage."""
    say = progress or (lambda msg: None)
    start = time.perf_counter()
    target = _resolve_target(target)
    if not hasattr(model, "params") or not hasattr(model, "config"):
        raise ValueError(
            f"export needs a tensorweave model (tw.models.load / from_pretrained / from_transformers), "
            f"got {type(model).__name__}"
        )
    if onnx_config is None:
        onnx_config = onnx_config_for(model, feature)
    else:
        from .frontends.onnx.features import FeaturesManager

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
    path = artefact_path(output, target)
    from .backends import registry

    if not registry.is_installed(target):
        raise IRError(registry.missing_message(target))

    say(f"tracing {model.model_type} {feature} with the {type(onnx_config).__name__} signature")
    graph = trace_feature(model, onnx_config)
    say(f"lowering to {target}" + (f" (opset {opset})" if target == "onnx" else ""))
    prog = registry.lower(graph, target, **({"opset": opset} if target == "onnx" else {}))
    say(f"writing {path}")
    if target == "onnx":
        from .backends.onnx import EXTERNAL_DATA_THRESHOLD

        if external_data is None:
            external_data = onnx_config.use_external_data_format(model.num_parameters())
        if external_data:
            save_onnx_external(prog.model, path)
        else:
            prog.export(path, external_data_threshold=EXTERNAL_DATA_THRESHOLD)
    elif target == "jax":
        _export_jax(prog, path, graph)
    else:
        prog.export(path)
    if target in ("torch", "jax"):
        try:
            write_side_file(path, target, feature, model.model_type, graph)
        except BaseException:
            os.remove(path)
            raise
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


def save_onnx_external(model_proto: Any, path: str, size_threshold: int = 1024) -> str:
    """``path`` plus ``path.data`` holding every initializer of ``size_threshold`` bytes or more
    (small ones, e.g. axes, stay inline so path-based ``check_model(full_check=True)`` can run
    shape inference). Both are written in a private temporary directory beside ``path`` and
    renamed into place (data file first); nothing is left behind on failure."""
    import shutil

    import onnx

    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmpdir = tempfile.mkdtemp(dir=directory, prefix=f".{base}.tmp-")
    try:
        m = onnx.ModelProto()
        m.CopyFrom(model_proto)
        onnx.save_model(
            m,
            os.path.join(tmpdir, base),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=base + ".data",
            size_threshold=size_threshold,
        )
        for name in (base + ".data", base):
            if os.path.exists(os.path.join(tmpdir, name)):
                os.chmod(os.path.join(tmpdir, name), 0o644)
                os.replace(os.path.join(tmpdir, name), os.path.join(directory, name))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


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
    """``<artefact>.json``: input/output names, dtypes and shapes (symbols as text), written
    to a temporary file and renamed."""

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
        "inputs": specs(graph.input_names, graph.input_specs),
        "outputs": specs(graph.output_names, graph.output_specs),
    }
    dest = side_file_path(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def read_side_file(path: str) -> dict:
    side = side_file_path(path)
    try:
        with open(side) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"{side} is missing: torch and jax artefacts need the signature file tensorweave.export "
            "writes next to them; export again"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != SIDE_FILE_FORMAT:
        raise ValueError(f"{side} is not a tensorweave export signature file")
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


def artefact_output_names(path: str, target: str) -> list[str]:
    """The output names stored with the artefact."""
    if target == "onnx":
        import onnx

        m = onnx.load_model(path, load_external_data=False)
        return [o.name for o in m.graph.output]
    if target == "tensorflow":
        import tensorflow as tf

        sig = tf.saved_model.load(path).signatures["serving_default"]
        return list(sig.structured_outputs)
    return [o["name"] for o in read_side_file(path)["outputs"]]


def run_artefact(
    path: str, inputs: Mapping[str, np.ndarray], target: str | None = None
) -> dict[str, np.ndarray]:
    """Load the artefact freshly from ``path`` with its framework's own loader
    (``onnxruntime.InferenceSession``, ``torch.export.load``, ``tf.saved_model.load``,
    ``jax.export.deserialize``), run it on numpy ``inputs`` (by name) and return its outputs by name."""
    target = _resolve_target(target) if target else detect_target(path)
    if target == "onnx":
        import onnxruntime as ort

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

        module = torch.export.load(path).module()
        with torch.no_grad():
            outs = module(*[torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in in_names])
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return {n: o.detach().numpy() for n, o in zip(out_names, outs)}
    import jax
    from jax import export as jexport

    jax.config.update("jax_enable_x64", True)  # the artefact takes int64 token ids
    with open(path, "rb") as f:
        exported = jexport.deserialize(bytearray(f.read()))
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
    vocab = model.config.vocab_size
    out = {}
    for spec in feature_input_specs(model, config):
        shape = tuple(d if isinstance(d, int) else d.evaluate(sizes) for d in spec.shape)
        name = spec.name
        if "mask" in name:
            out[name] = np.ones(shape, np.int64)
        elif "token_type" in name:
            out[name] = rng.integers(0, 2, shape).astype(np.int64)
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
            inputs["input_ids"],
            inputs["attention_mask"],
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
    if not _is_decoder(model):
        return {
            k: np.asarray(v)
            for k, v in model(
                inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"], backend="numpy"
            ).items()
        }
    if task == "causal-lm" and use_past:
        prog = model.with_past_program("numpy")
        outs = prog(*[inputs[n] for n in prog.input_names])
        return dict(zip(prog.output_names, outs))
    if task == "causal-lm":
        return {"logits": model(inputs["input_ids"], inputs["attention_mask"], backend="numpy")["logits"]}
    res = model(inputs["input_ids"], inputs["attention_mask"], backend="numpy", output_hidden_states=True)
    return {"last_hidden_state": res["hidden_states"][-1]}


def validate_model_outputs(
    config: OnnxConfig,
    model: Any,
    output_path: str | os.PathLike,
    onnx_named_outputs: Sequence[str],
    atol: float | None = None,
    target: str | None = None,
    *,
    batch_size: int = VALIDATION_BATCH,
    seq_length: int = VALIDATION_SEQUENCE,
    past_length: int = VALIDATION_PAST,
    progress: Progress | None = None,
) -> None:
    """Hugging Face's ``validate_model_outputs`` for any target: run the artefact loaded from
    ``output_path`` at batch 3 / sequence 9 (past 4) and compare with the numpy reference.

    Checks, in order (each a ``ValueError`` with Hugging Face's message): the names
    ``onnx_named_outputs`` are reference outputs (and outputs of the artefact); each shape
    equals the reference's; ``np.allclose(ref, out, atol=atol)`` (rtol 1e-5). ``atol`` defaults
    to ``config.atol_for_validation``; ``target`` to the one the path's name implies."""
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
    got = run_artefact(path, inputs, target)

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
    "check_exportable",
    "detect_target",
    "export",
    "onnx_config_for",
    "reference_outputs",
    "run_artefact",
    "trace_feature",
    "validate_model_outputs",
    "validation_inputs",
]
