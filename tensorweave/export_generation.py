"""Export the generation itself: prompt step + decode loop + KV cache as ONE artefact.

``export_generation(model, output, target="onnx", num_beams=1, max_new_tokens=64)`` traces the
same fused program ``tw.generate`` runs (prefill + ``while_loop`` decode over a static KV cache,
written once in ``frontends/generation/decode.py``) with a *dynamic* signature and writes it for
one target:

- inputs ``input_ids`` int64 ``[batch, sequence]``, ``attention_mask`` int64 ``[batch, sequence]``
  (1 = token, 0 = left padding) and ``max_new_tokens``, an int64 scalar chosen at run time;
- outputs ``sequences`` int64 ``[batch * num_return_sequences, sequence + cap]`` and ``length``
  (int64 scalar): columns ``[:length]`` are the answer (prompt included), exactly what
  ``tw.generate`` returns; columns past ``length`` are padding. Beam search adds
  ``sequences_scores`` ``[batch * num_return_sequences]``.

**The cap.** The token buffer and the static KV cache are preallocated for ``cap`` new tokens
(``cap`` = the ``max_new_tokens`` given at export), so their length is the symbolic
``sequence + cap``. The graph stops at ``sequence + min(max(max_new_tokens, 0), cap)`` (it
clamps: ONNX has no assertion op); :class:`GenerationRunner` checks ``1 <= max_new_tokens <= cap``
and raises before running. ``num_beams`` and every other generation setting are fixed at export.

Targets: ``onnx`` (standard-domain ModelProto with a ``Loop``; a plain
``onnxruntime.InferenceSession`` runs it), ``tensorflow`` (SavedModel directory), ``jax``
(serialised StableHLO, weights inside) and ``torch`` (``torch.export`` ``.pt2`` with the
``while_loop`` higher-order op). A JSON side file ``<output>.generation.json`` records the
signature for :func:`load_generation`, and the sha256 of the artefact (for a SavedModel, of its
manifest): an artefact with another export's side file (a cap of 10 beside a graph built for 4)
is an ``ArtefactError`` on load, never a silent mix.

**A transaction** (spec/reliability.md): the artefact and its side file are written into one
fresh temporary sibling directory, the artefact is loaded back there, then both are renamed into
place (the artefact first, the side file that pins it by hash last); the temporaries are removed
on any failure or Ctrl-C. The output is checked (writable; not a directory tensorweave did not
write) and the settings validated before anything is traced. Loading a ``.pt2`` needs
``allow_pickle=True`` (``torch.export.load`` unpickles: only for files you trust).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from . import io
from .backends import registry
from .errors import ArtefactError
from .frontends.generation.beam_search import dim_scalar
from .frontends.generation.configuration import GenerationConfig
from .frontends.generation.decode import decode_beam, decode_greedy_or_sample
from .generation.plan import GenerationPlan, resolve_plan
from .ir.trace import constant, trace
from .ir.types import IRError, SymDim, TensorSpec

TARGETS = ("onnx", "tensorflow", "jax", "torch")
INPUT_NAMES = ("input_ids", "attention_mask", "max_new_tokens")
SIDE_SUFFIX = ".generation.json"


def resolve_export_plan(
    model: Any, num_beams: int, cap: int, generation_config: GenerationConfig | None, **kwargs: Any
) -> GenerationPlan:
    """The plan of an exported generation, resolved by ``tw.generate``'s own ``tensorweave.generation.resolve_plan``
    (the model's special tokens or ``generation_config``, updated with ``kwargs``) for symbolic
    ``[batch, sequence]`` inputs and buffers of ``sequence + cap``, with the export's validations:
    greedy (``num_beams=1``) or beam search, no sampling, no length-dependent processors."""
    shape = (SymDim.symbol("batch"), SymDim.symbol("sequence"))
    return resolve_plan(model, shape, generation_config, dict(num_beams=num_beams, **kwargs), export_cap=cap)


def build_generation_graph(model: Any, plan: GenerationPlan, cap: int) -> Any:
    """Trace ``(input_ids, attention_mask, max_new_tokens) -> (sequences, length[, sequences_scores])``
    with symbolic ``batch`` / ``sequence`` and buffers of length ``sequence + cap`` (the plan's
    ``max_length``)."""
    import tensorweave.ir.namespace as xp

    if not getattr(model, "is_decoder", False):
        raise IRError(
            f"export_generation needs a decoder-only model (gpt2 or the rotary family: llama, mistral, ...), got {getattr(model, 'model_type', model)}"
        )
    n = plan.num_beams
    L = plan.max_length

    def fn(ids: Any, mask: Any, max_new: Any) -> dict:
        params = {k: constant(v, name=k) for k, v in model.params.items()}
        prompt = dim_scalar(xp, plan.prompt_len)
        limit = prompt + xp.clip(max_new, 0, cap)
        if n > 1:
            out = decode_beam(
                model.forward,
                params,
                model.config,
                xp.repeat(ids, n, axis=0),
                xp.repeat(mask, n, axis=0),
                dataclasses.replace(plan.beam, length_limit=limit),
                processors=plan.processors,
            )
            return {
                "sequences": out["sequences"],
                "length": out["out_len"],
                "sequences_scores": out["sequences_scores"],
            }
        out = decode_greedy_or_sample(
            model.forward,
            params,
            model.config,
            ids,
            mask,
            max_length=L,
            eos_token_id=plan.eos,
            pad_token_id=plan.pad,
            processors=plan.processors,
            max_length_limit=limit,
        )
        return {"sequences": out["sequences"], "length": out["length"]}

    specs = (
        TensorSpec(("batch", "sequence"), "int64", "input_ids"),
        TensorSpec(("batch", "sequence"), "int64", "attention_mask"),
        TensorSpec((), "int64", "max_new_tokens"),
    )
    name = f"{model.model_type}_{'beam' if n > 1 else 'greedy'}_generation"
    return trace(fn, *specs, name=name)


def export_generation(
    model: Any,
    output: str,
    target: str = "onnx",
    num_beams: int = 1,
    max_new_tokens: int = 64,
    generation_config: GenerationConfig | None = None,
    opset: int | None = None,
    **generation_kwargs: Any,
) -> str:
    """Export greedy (``num_beams=1``) or beam search generation of ``model`` as one artefact at
    ``output`` (see the module docstring); ``max_new_tokens`` is the cap the buffers are sized for.
    Other keyword arguments are generation settings (``eos_token_id``, ``length_penalty``,
    ``repetition_penalty``, ...), fixed at export. Returns ``output``."""
    from .backends.registry import ALIASES

    target = ALIASES.get(target.lower(), target.lower()) if isinstance(target, str) else target
    if target not in TARGETS:
        raise ValueError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise ValueError(
            f"max_new_tokens (the export-time cap) must be a positive int, got {max_new_tokens!r}"
        )
    if opset is not None and target != "onnx":
        raise ValueError(f"opset applies to target='onnx' only, not {target!r}")
    if target == "torch" and not os.fspath(output).endswith(".pt2"):
        raise ValueError(f"target='torch' writes a .pt2 file; got {output!r}, use a name ending in .pt2")
    from .export import check_export_output

    # before any tracing: the output can be written and replaces nothing tensorweave did not write
    output = check_export_output(os.fspath(output).rstrip("/\\"), target, generation=True)
    side = output + SIDE_SUFFIX
    if not registry.is_installed(target):
        raise IRError(registry.missing_message(target))
    plan = resolve_export_plan(model, num_beams, max_new_tokens, generation_config, **generation_kwargs)
    graph = build_generation_graph(model, plan, max_new_tokens)
    meta = {
        "format": "tensorweave-generation",
        "version": 1,
        "target": target,
        "model_type": model.model_type,
        "num_beams": plan.num_beams,
        "num_return_sequences": plan.num_return_sequences,
        "max_new_tokens_cap": max_new_tokens,
        "inputs": list(INPUT_NAMES),
        "outputs": list(graph.output_names),
        "pad_token_id": plan.pad,
        "max_position_embeddings": getattr(model.config, "max_position_embeddings", None),
    }
    if target == "onnx":
        registry.get("onnx")  # one-line error when onnx / onnxruntime is missing
        from .backends.onnx import to_model_proto

        graph.check()
        in_memory: dict = {}  # the weights stay numpy arrays, written one at a time by save_model
        proto = to_model_proto(graph, opset, in_memory=in_memory)  # no session is needed to write it
        for key in ("num_beams", "num_return_sequences", "max_new_tokens_cap", "pad_token_id"):
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"tensorweave.{key}", str(meta[key])
    prog = None if target == "onnx" else registry.lower(graph, target)

    def check(path: str) -> None:
        _LOADERS[target](path, True)  # loads back: a broken artefact never replaces a good one

    if target == "tensorflow":
        from .backends.tensorflow.artefact import export_saved_model

        with io.staged_files([side]) as staged:
            export_saved_model(prog, output, check=check)
            meta["artefact_sha256"] = io.manifest_sha256(output)
            io.atomic_write_json(staged[side], meta)
        return output
    with io.staged_files([output, side]) as staged:
        if target == "onnx":
            from .backends.onnx import save_model

            save_model(proto, staged[output], in_memory=in_memory)
        else:
            prog.export(staged[output])
        check(staged[output])
        meta["artefact_sha256"] = io.sha256(staged[output])
        io.atomic_write_json(staged[side], meta)
    return output


class GenerationRunner:
    """Runs an exported generation artefact (any target) from numpy and trims the result:
    ``runner(input_ids, attention_mask=None, max_new_tokens=N) -> sequences [rows, length]``
    (``return_dict=True`` gives every output). Checks ``1 <= max_new_tokens <= cap`` first."""

    def __init__(self, path: str, target: str | None = None, *, allow_pickle: bool = False):
        path = os.fspath(path).rstrip("/\\")
        side = path + SIDE_SUFFIX
        if not os.path.exists(path):
            raise FileNotFoundError(f"no exported generation at {path!r}")
        if not os.path.isfile(side):
            raise FileNotFoundError(
                f"{side!r} is missing; it is written by export_generation next to the artefact"
            )
        try:
            with open(side, encoding="utf-8") as f:
                self.meta = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ArtefactError(f"{side} is not valid JSON ({e}); export again") from None
        if not isinstance(self.meta, dict) or self.meta.get("format") != "tensorweave-generation":
            raise ArtefactError(f"{side!r} is not a tensorweave generation side file")
        self.target = target or self.meta["target"]
        if self.target not in _LOADERS:
            raise ArtefactError(f"{side}: unknown target {self.target!r}")
        want = self.meta.get("artefact_sha256")
        if want is not None:
            if os.path.isdir(path):
                io.read_manifest(path, verify=True)
                got = io.manifest_sha256(path)
            else:
                got = io.sha256(path)
            if got != want:
                raise ArtefactError(
                    f"{side} was written for another export than {path} (a stale or mixed pair: its "
                    f"cap is {self.meta.get('max_new_tokens_cap')}); export again"
                )
        try:
            self.cap = int(self.meta["max_new_tokens_cap"])
            self.output_names = list(self.meta["outputs"])
        except (KeyError, TypeError, ValueError):
            raise ArtefactError(f"{side} lacks max_new_tokens_cap / outputs; export again") from None
        self.path = path
        self._fn = _LOADERS[self.target](path, allow_pickle)

    def __call__(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        max_new_tokens: int | None = None,
        return_dict: bool = False,
    ) -> Any:
        ids = np.asarray(input_ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(
                f"input_ids must be an integer [batch, sequence] array, got {ids.dtype}{list(ids.shape)}"
            )
        mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask shape {mask.shape} must equal input_ids shape {ids.shape}")
        m = self.cap if max_new_tokens is None else max_new_tokens
        if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or not 1 <= int(m) <= self.cap:
            raise ValueError(
                f"max_new_tokens={m!r} is outside [1, {self.cap}]: this artefact was exported with a "
                f"cache for at most {self.cap} new tokens; re-export with a larger max_new_tokens"
            )
        limit = self.meta.get("max_position_embeddings")
        if limit is not None and ids.shape[1] + int(m) > limit:
            raise ValueError(
                f"prompt length {ids.shape[1]} + max_new_tokens {int(m)} exceeds the model's "
                f"max_position_embeddings ({limit}); shorten the prompt or max_new_tokens"
            )
        outs = self._fn(ids.astype(np.int64), mask.astype(np.int64), np.asarray(int(m), np.int64))
        named = dict(zip(self.output_names, [np.asarray(o) for o in outs]))
        length = int(named["length"])
        named["sequences"] = named["sequences"][:, :length]
        return named if return_dict else named["sequences"]


def _load_onnx(path: str, allow_pickle: bool = False) -> Any:
    import onnxruntime as ort

    from .backends.onnx.artefact import check_files

    check_files(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]

    def run(ids: np.ndarray, mask: np.ndarray, m: np.ndarray) -> list:
        return sess.run(names, {"input_ids": ids, "attention_mask": mask, "max_new_tokens": m})

    return run


def _load_tensorflow(path: str, allow_pickle: bool = False) -> Any:
    import tensorflow as tf

    module = tf.saved_model.load(path)

    def run(ids: np.ndarray, mask: np.ndarray, m: np.ndarray) -> list:
        return [o.numpy() for o in module.fn(tf.constant(ids), tf.constant(mask), tf.constant(m))]

    return run


def _load_jax(path: str, allow_pickle: bool = False) -> Any:
    from .backends.jax.artefact import load
    from .backends.jax.runtime import x64

    exported = load(path)

    def run(ids: np.ndarray, mask: np.ndarray, m: np.ndarray) -> list:
        with x64():  # the artefact takes int64 token ids; 64-bit types for this call only
            return [np.asarray(o) for o in exported.call(ids, mask, m)]

    return run


def _load_torch(path: str, allow_pickle: bool = False) -> Any:
    import torch

    from .backends.torch.artefact import load_exported

    module = load_exported(path, allow_pickle=allow_pickle).module()

    def run(ids: np.ndarray, mask: np.ndarray, m: np.ndarray) -> list:
        with torch.no_grad():
            outs = module(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(m))
        return [o.numpy() for o in outs]

    return run


_LOADERS = {"onnx": _load_onnx, "tensorflow": _load_tensorflow, "jax": _load_jax, "torch": _load_torch}


def load_generation(path: str, target: str | None = None, *, allow_pickle: bool = False) -> GenerationRunner:
    """Load an artefact written by :func:`export_generation` (the target comes from its side file).
    The side file must pin the artefact (sha256). A ``.pt2`` is refused unless ``allow_pickle=True``:
    ``torch.export.load`` unpickles, so a crafted file runs code; pass it only for files you trust."""
    return GenerationRunner(path, target, allow_pickle=allow_pickle)
