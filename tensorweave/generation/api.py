"""``tw.generate``: Hugging Face's ``generate()`` for tensorweave models and native callables.

A call flows: ``generate`` -> :func:`~.plan.resolve_plan` (every decision and validation) -> the
backend chosen once -> :func:`~.fused.run_fused` (``trace=True``, the default for tensorweave
models) or :func:`run_stepwise` (``trace=False``, and always for native callables such
as a ``transformers`` PyTorch model; contrastive and group beam search included) -> programs from
the one cache (``programs.PROGRAMS``) -> ``backend.lower``. Both modes give the same tokens; the
same seed gives the same tokens on every backend (the IR's Threefry RNG).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import registry
from ..frontends.generation.configuration import GenerationConfig
from ..ir import random
from ..ir.types import IRError
from .contrastive import run_contrastive
from .fused import run_fused
from .native import NativeModelStep, is_torch_module
from .plan import GenerationPlan, Mode, resolve_plan
from .programs import Backend, select_backend
from .stepwise import (
    Seq2SeqModelStep,
    StaticCacheModelStep,
    StepRun,
    run_beam,
    run_group_beam,
    run_sample,
)


@dataclass
class GenerateOutput:
    """``sequences`` [rows, length]; with ``output_scores``: ``scores`` (one [rows, vocab] array per
    step); beam modes add ``sequences_scores`` [rows] and ``beam_indices`` [rows, length]."""

    sequences: np.ndarray
    scores: tuple | None = None
    sequences_scores: np.ndarray | None = None
    beam_indices: np.ndarray | None = None


def _numpy_ints(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def generate(
    model: Any,
    input_ids: Any,
    attention_mask: Any = None,
    generation_config: GenerationConfig | None = None,
    backend: str | None = None,
    seed: int | None = None,
    logits_processor: list | None = None,
    *,
    trace: bool | None = None,
    streamer: Any = None,
    prefix_allowed_tokens_fn: Any = None,
    prng_key: Any = None,
    reorder_cache: Any = None,
    **kwargs: Any,
) -> Any:
    """Generate with a tensorweave model or a native causal-LM callable (e.g. a ``transformers``
    PyTorch model). Extra keyword arguments update the generation config; unknown ones are a
    ValueError naming them. Returns ``sequences`` (numpy) or a :class:`GenerateOutput` with
    ``return_dict_in_generate=True``.

    ``trace``: True runs the fused program (the default for tensorweave models); False runs the
    step-wise host loop around compiled per-step strategy programs (always the case for native
    callables). ``seed`` / ``prng_key`` (a uint32 [2] key, wins over seed) drive sampling with
    the same key schedule in both modes. ``streamer``: an object with ``put(array)`` / ``end()``
    (Hugging Face's BaseStreamer protocol), see ``tensorweave.TextStreamer``.
    ``prefix_allowed_tokens_fn(batch_id, ids) -> allowed ids``: step-wise only.
    ``reorder_cache(cache, rows) -> cache``: how to reorder a native model's cache for beam search
    (default: the cache's own ``reorder_cache`` method, or a gather of nested arrays)."""
    ids = _numpy_ints(input_ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise IRError(f"input_ids must be an integer [batch, length] array, got {ids.dtype}{list(ids.shape)}")
    ids = ids.astype(np.int64)
    mask = np.ones_like(ids) if attention_mask is None else _numpy_ints(attention_mask).astype(np.int64)
    if mask.shape != ids.shape:
        raise IRError(f"attention_mask shape {mask.shape} must equal input_ids shape {ids.shape}")
    plan = resolve_plan(
        model,
        ids.shape,
        generation_config,
        kwargs,
        trace=trace,
        logits_processor=logits_processor,
        prefix_allowed_tokens_fn=prefix_allowed_tokens_fn,
        streamer=streamer is not None,
    )
    if plan.native and backend is None:
        backend = "torch" if is_torch_module(model) and registry.is_installed("torch") else None
    chosen = select_backend(backend)
    key = _prng_key(seed, prng_key)
    if streamer is not None:
        streamer.put(np.full((ids.shape[0], 1), plan.decoder_start, np.int64) if plan.seq2seq else ids.copy())
    d = _run(model, plan, chosen, ids, mask, key, streamer, reorder_cache)
    if streamer is not None:
        streamer.end()
    return _outputs(d, plan)


def _prng_key(seed: int | None, prng_key: Any) -> np.ndarray:
    if prng_key is None:
        return random.key(0 if seed is None else seed)
    key = np.asarray(prng_key)
    if key.shape != (2,) or key.dtype != np.uint32:
        raise ValueError(
            f"prng_key must be a uint32 array of shape [2] (tw.ir.random.key(seed)), got "
            f"{key.dtype}{list(key.shape)}"
        )
    return key


def _run(
    model: Any,
    plan: GenerationPlan,
    backend: Backend,
    ids: np.ndarray,
    mask: np.ndarray,
    key: np.ndarray,
    streamer: Any,
    reorder_cache: Any,
) -> dict:
    if plan.fused:
        d = run_fused(model, plan, backend, ids, mask, key)
        if streamer is not None:
            for t in range(plan.prompt_len, int(d["length"])):
                streamer.put(d["sequences"][:, t].copy())
        return d
    step = NativeModelStep(model, reorder_cache) if plan.native else None
    return run_stepwise(model, step, plan, backend, ids, mask, key, streamer)


def _outputs(d: dict, plan: GenerationPlan) -> Any:
    """The fused / step-wise raw outputs (numpy, by name) as Hugging Face's results."""
    length = int(d["length"])
    sequences = d["sequences"][:, :length]
    if not plan.return_dict:
        return sequences
    steps = int(d["steps"]) - plan.prompt_len
    scores = tuple(d["scores"][t] for t in range(steps)) if plan.output_scores else None
    if plan.num_beams > 1:
        bidx = np.full((sequences.shape[0], length), -1, np.int64)
        g = min(d["beam_indices"].shape[1], length)
        bidx[:, :g] = d["beam_indices"][:, :g]
        return GenerateOutput(sequences, scores, d["sequences_scores"] if plan.output_scores else None, bidx)
    return GenerateOutput(sequences, scores)


def run_stepwise(
    model: Any,
    step: Any,
    plan: GenerationPlan,
    backend: Backend,
    ids: np.ndarray,
    mask: np.ndarray,
    key: np.ndarray,
    streamer: Any = None,
) -> dict:
    """Run ``plan`` step-wise with the model step ``step`` (None: built here for a tensorweave
    model). Returns the fused program's outputs as numpy arrays by name."""
    processors = plan.processors
    extra: tuple = ()
    if plan.seq2seq:
        # the loops run over the decoder (a start column); the encoder inputs go to the model step
        enc_ids, enc_mask = ids, mask
        enc_rows = np.repeat(enc_ids, plan.expand, axis=0)
        processors = plan.processors_for(enc_rows)
        if plan.encoder_processors:
            extra = (enc_rows.shape, enc_rows.tobytes())  # the encoder ids are constants of the step programs
        ids = np.full((ids.shape[0], 1), plan.decoder_start, np.int64)
        mask = np.ones_like(ids)
        step = Seq2SeqModelStep(model, backend, plan.max_length, enc_ids, enc_mask)
    elif step is None:
        step = StaticCacheModelStep(model, backend, plan.max_length)
    run = StepRun(plan, backend, model, processors, (plan.custom_key,) + extra, streamer)
    if plan.mode is Mode.CONTRASTIVE:
        return run_contrastive(step, run, ids, mask)
    if plan.mode is Mode.GROUP_BEAM:
        return run_group_beam(step, run, ids, mask)
    if plan.beam is not None:
        return run_beam(step, run, ids, mask, key)
    r = plan.num_return_sequences
    if r > 1:
        ids, mask = np.repeat(ids, r, axis=0), np.repeat(mask, r, axis=0)
    return run_sample(step, run, ids, mask, key)
