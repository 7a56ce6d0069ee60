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
``while_loop`` higher-order op). Each file is written to a temporary name and renamed; a JSON
side file ``<output>.generation.json`` records the signature for :func:`load_generation`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any

import numpy as np

from .backends import registry
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
            f"export_generation needs a decoder model (gpt2, llama), got {getattr(model, 'model_type', model)}"
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


def _write_json_atomic(path: str, data: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
    output = os.fspath(output)
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
        from .backends.onnx import save_model, to_model_proto

        graph.check()
        proto = to_model_proto(graph, opset)  # the ModelProto only: no session is needed to write it
        for key in ("num_beams", "num_return_sequences", "max_new_tokens_cap", "pad_token_id"):
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"tensorweave.{key}", str(meta[key])
        save_model(proto, output)
    else:
        registry.lower(graph, target).export(output)
    _write_json_atomic(output.rstrip("/\\") + SIDE_SUFFIX, meta)
    return output


class GenerationRunner:
    """Runs an exported generation artefact (any target) from numpy and trims the result:
    ``runner(input_ids, attention_mask=None, max_new_tokens=N) -> sequences [rows, length]``
    (``return_dict=True`` gives every output). Checks ``1 <= max_new_tokens <= cap`` first."""

    def __init__(self, path: str, target: str | None = None):
        path = os.fspath(path)
        side = path.rstrip("/\\") + SIDE_SUFFIX
        if not os.path.exists(path):
            raise FileNotFoundError(f"no exported generation at {path!r}")
        if not os.path.isfile(side):
            raise FileNotFoundError(
                f"{side!r} is missing; it is written by export_generation next to the artefact"
            )
        with open(side) as f:
            self.meta = json.load(f)
        if self.meta.get("format") != "tensorweave-generation":
            raise ValueError(f"{side!r} is not a tensorweave generation side file")
        self.target = target or self.meta["target"]
        self.cap = int(self.meta["max_new_tokens_cap"])
        self.output_names = list(self.meta["outputs"])
        self.path = path
        self._fn = _LOADERS[self.target](path)

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


def _load_onnx(path: str) -> Any:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]

    def run(ids: np.ndarray, mask: np.ndarray, m: np.ndarray) -> list:
        return sess.run(names, {"input_ids": ids, "attention_mask": mask, "max_new_tokens": m})

    return run


def _load_tensorflow(path: str) -> Any:
    import tensorflow as tf

    module = tf.saved_model.load(path)

    def run(ids: np.ndarray, mask: np.ndarray, m: np.ndarray) -> list:
        return [o.numpy() for o in module.fn(tf.constant(ids), tf.constant(mask), tf.constant(m))]

    return run


def _load_jax(path: str) -> Any:
    from jax import export as jexport

    with open(path, "rb") as f:
        exported = jexport.deserialize(bytearray(f.read()))

    def run(ids: np.ndarray, mask: np.ndarray, m: np.ndarray) -> list:
        return [np.asarray(o) for o in exported.call(ids, mask, m)]

    return run


def _load_torch(path: str) -> Any:
    import torch

    module = torch.export.load(path).module()

    def run(ids: np.ndarray, mask: np.ndarray, m: np.ndarray) -> list:
        with torch.no_grad():
            outs = module(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(m))
        return [o.numpy() for o in outs]

    return run


_LOADERS = {"onnx": _load_onnx, "tensorflow": _load_tensorflow, "jax": _load_jax, "torch": _load_torch}


def load_generation(path: str, target: str | None = None) -> GenerationRunner:
    """Load an artefact written by :func:`export_generation` (the target comes from its side file)."""
    return GenerationRunner(path, target)
