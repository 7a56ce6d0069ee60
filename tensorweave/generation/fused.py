"""Fused generation: the prompt step and the whole decode loop as one traced program, lowered once
and cached with the model (``programs.PROGRAMS``).

**One program for any prompt.** Where the settings allow it (decoder-only, greedy / sampling /
beam search / beam sampling, no custom processors), the program takes the prompt length as a
symbolic dim ``sequence`` and ``max_new_tokens`` as a run-time int64 scalar (the processors that
read the prompt length or ``max_length`` get them as traced values, ``run_time_lengths``): its token buffer and static KV cache hold
``sequence + cap`` positions, ``cap`` the smallest power of two >= ``max(MIN_CAP, max_new_tokens)``,
and the loop stops at ``sequence + max_new_tokens``. A new prompt, or a new ``max_new_tokens`` up
to the cap, reuses the compiled program. A backend that compiles per concrete shape (``jax.jit``:
``backends.registry.SHAPE_SPECIALISING``, and tensorflow's greedy programs under XLA:
``registry.DECODE_OPTIONS``) gets the prompt left-padded to a power of two (at least ``MIN_PROMPT``;
mask 0, so positions and attention are those of the unpadded prompt) and the padding columns
removed from the result: one compile per prompt bucket — only when padding cannot change the
result: not when sampling (the random stream folds in the position) and only with processors
that count from the prompt's end (``PADDING_SAFE``; a repetition penalty, for one, would see the
pad tokens). Other settings get one program per input
shape and plan.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import numpy as np

from ..backends import registry
from ..frontends.generation import logits_process as lp
from ..frontends.generation.beam_search import dim_scalar
from ..frontends.generation.contrastive import decode_contrastive
from ..frontends.generation.decode import decode_beam, decode_greedy_or_sample, decode_seq2seq
from ..frontends.models.weights import bind_params
from ..ir.passes import optimize
from ..ir.trace import trace
from ..ir.types import SymDim, TensorSpec
from .plan import GenerationPlan, Mode, output_vocab_size
from .programs import PROGRAMS, Backend

#: the smallest new-token buffer of an any-prompt program
MIN_CAP = 64
#: the smallest prompt bucket on those backends
MIN_PROMPT = 64
#: processors whose result left padding of the prompt cannot change (they count from the prompt's
#: end or not at all); any other processor turns bucketing off
PADDING_SAFE = (
    lp.MinNewTokensLengthLogitsProcessor,
    lp.SuppressTokensLogitsProcessor,
    lp.SuppressTokensAtBeginLogitsProcessor,
    lp.ExponentialDecayLengthPenalty,
    lp.ForcedEOSTokenLogitsProcessor,
    lp.InfNanRemoveLogitsProcessor,
)


def run_time_lengths(processors: Any, prompt_len: int, prompt: Any, limit: Any) -> Any:
    """``processors`` with the prompt length and ``max_length`` they were built with (for a prompt
    of ``prompt_len``) replaced by the traced ``prompt`` and ``limit``: copies of
    MinNewTokensLength (``prompt_length_to_skip``), ExponentialDecayLengthPenalty
    (``regulation_start = start + prompt``), SuppressTokensAtBegin (``begin_index``) and
    ForcedEOSToken (``max_length``); the others as they are."""
    out = lp.LogitsProcessorList()
    for p in processors:
        if isinstance(p, lp.MinNewTokensLengthLogitsProcessor):
            p = copy.copy(p)
            p.prompt_length_to_skip = prompt
        elif isinstance(p, lp.ExponentialDecayLengthPenalty):
            p = copy.copy(p)
            p.regulation_start = p.regulation_start - prompt_len + prompt
        elif isinstance(p, lp.SuppressTokensAtBeginLogitsProcessor):
            p = copy.copy(p)
            p.begin_index = p.begin_index - prompt_len + prompt
        elif isinstance(p, lp.ForcedEOSTokenLogitsProcessor):
            p = copy.copy(p)
            p.max_length = limit
        out.append(p)
    return out


def _bucket(n: int, least: int) -> int:
    """The smallest power of two >= ``max(n, least)``."""
    return max(least, 1 << max(n - 1, 0).bit_length())


def fused_program(model: Any, plan: GenerationPlan, backend: Backend, shape: tuple) -> Any:
    """The lowered fused program ``(input_ids, attention_mask, key) -> outputs`` for ``shape``."""

    # whisper's encoder input: float input_features [b, mel, frames], with the mask of its output frames
    features = getattr(model, "is_encoder_decoder", False) and model.encoder_input == "input_features"
    ids_spec = (
        TensorSpec(shape, "float32", "input_features")
        if features
        else TensorSpec(shape, "int64", "input_ids")
    )
    mask_shape = (shape[0], model.config.max_source_positions) if features else shape

    def build() -> Any:
        return optimize(
            trace(
                lambda ids, mask, key: fused_outputs(model, plan, ids, mask, key),
                ids_spec,
                TensorSpec(mask_shape, "int64", "attention_mask"),
                TensorSpec((2,), "uint32", "key"),
            )
        )

    return PROGRAMS.get(model, backend, "fused", (tuple(shape),), plan.key, plan.custom_key, build)


def any_prompt_cap(plan: GenerationPlan) -> int | None:
    """The new-token buffer of the any-prompt program for ``plan``, or None when the settings need
    a program per shape (see the module docstring)."""
    if plan.seq2seq or plan.mode not in (Mode.GREEDY, Mode.SAMPLE, Mode.BEAM, Mode.BEAM_SAMPLE):
        return None
    if plan.custom_key is not None or plan.prefix is not None:
        return None
    cfg = plan.config
    if getattr(cfg, "forced_decoder_ids", None) is not None:
        return None  # encoder-decoder only
    if getattr(cfg, "begin_suppress_tokens", None) is not None and getattr(cfg, "forced_bos_token_id", None):
        return None  # its begin index depends on whether the prompt is a single token
    return _bucket(int(plan.max_length) - int(plan.prompt_len), MIN_CAP)


def settings_key(plan: GenerationPlan) -> tuple:
    """``plan.key`` without the lengths (``max_length`` / ``max_new_tokens``), which an any-prompt
    program takes at run time."""
    settings = json.loads(plan.key[0])
    for name in ("max_length", "max_new_tokens"):
        settings.pop(name, None)
    return (json.dumps(settings, sort_keys=True),) + tuple(plan.key[1:])


def any_prompt_program(model: Any, plan: GenerationPlan, backend: Backend, rows: int, cap: int) -> Any:
    """The lowered program ``(input_ids, attention_mask, key, max_new_tokens) -> outputs`` for
    prompts of ``rows`` rows and any length, with buffers of ``sequence + cap`` positions."""
    seq = SymDim.symbol("sequence")

    def fn(ids: Any, mask: Any, key: Any, max_new: Any) -> dict:
        import tensorweave.ir.namespace as xp

        prompt = dim_scalar(xp, seq)
        limit = prompt + xp.clip(max_new, 0, cap)
        beam = plan.beam
        if beam is not None:
            beam = dataclasses.replace(beam, prompt_len=seq, max_length=seq + cap, length_limit=limit)
        processors = run_time_lengths(plan.processors, int(plan.prompt_len), prompt, limit)
        dyn = dataclasses.replace(
            plan, prompt_len=seq, max_length=seq + cap, beam=beam, processors=processors
        )
        return fused_outputs(model, dyn, ids, mask, key, limit)

    def build() -> Any:
        return optimize(
            trace(
                fn,
                TensorSpec((rows, "sequence"), "int64", "input_ids"),
                TensorSpec((rows, "sequence"), "int64", "attention_mask"),
                TensorSpec((2,), "uint32", "key"),
                TensorSpec((), "int64", "max_new_tokens"),
            )
        )

    return PROGRAMS.get(model, backend, "fused-any-prompt", ((rows,), cap), settings_key(plan), None, build)


def run_fused(
    model: Any, plan: GenerationPlan, backend: Backend, ids: np.ndarray, mask: np.ndarray, key: np.ndarray
) -> dict:
    """Run the fused program (the any-prompt one where the plan allows it); its outputs as numpy
    arrays by name."""
    cap = any_prompt_cap(plan)
    # sampling folds the position into its key, so padding would move the random stream: no bucket
    padding_safe = not plan.do_sample and all(isinstance(p, PADDING_SAFE) for p in plan.processors)
    if not plan.seq2seq and plan.mode in (Mode.GREEDY, Mode.SAMPLE) and (cap is None or padding_safe):
        # a program compiled per shape (XLA) only where one shape serves every prompt of a bucket
        # (or where the program is per prompt shape anyway)
        backend = dataclasses.replace(backend, options=registry.DECODE_OPTIONS.get(backend.name, ()))
    if cap is None:
        program = fused_program(model, plan, backend, ids.shape)
        outs = program(ids, mask, key)
    else:
        program = any_prompt_program(model, plan, backend, ids.shape[0], cap)
        new = np.asarray(int(plan.max_length) - int(plan.prompt_len), np.int64)
        bucketed = backend.specialises_shapes and padding_safe
        pad = _bucket(ids.shape[1], MIN_PROMPT) - ids.shape[1] if bucketed else 0
        if pad:
            ids = np.concatenate([np.full((ids.shape[0], pad), plan.pad, ids.dtype), ids], axis=1)
            mask = np.concatenate([np.zeros((mask.shape[0], pad), mask.dtype), mask], axis=1)
        outs = program(ids, mask, key, new)
        if pad:
            return _unpad(dict(zip(program.output_names, [np.asarray(o) for o in outs])), pad)
    return dict(zip(program.output_names, [np.asarray(o) for o in outs]))


def _unpad(d: dict, pad: int) -> dict:
    """The outputs of a left-padded run as those of the unpadded prompt: ``pad`` fewer columns and
    positions (scores and beam indices count generation steps, which padding does not move)."""
    d["sequences"] = d["sequences"][:, pad:]
    for name in ("length", "steps"):
        d[name] = np.asarray(int(d[name]) - pad)
    return d


def fused_outputs(model: Any, plan: GenerationPlan, ids: Any, mask: Any, key: Any, limit: Any = None) -> dict:
    """The traced body of a fused program (decoder-only or encoder-decoder); ``limit`` (a traced
    int64 scalar) stops a decoder-only greedy / sampling loop before ``plan.max_length`` (beam
    searches carry theirs in ``plan.beam.length_limit``)."""
    import tensorweave.ir.namespace as xp

    if plan.seq2seq:
        return _fused_seq2seq(model, plan, ids, mask, key)
    params = bind_params(model.params)
    if plan.mode is Mode.CONTRASTIVE:
        out = decode_contrastive(
            model.forward,
            params,
            model.config,
            ids,
            mask,
            max_length=plan.max_length,
            top_k=plan.top_k,
            penalty_alpha=plan.penalty_alpha,
            eos_token_id=plan.eos,
            pad_token_id=plan.pad,
            processors=plan.processors,
            output_scores=plan.output_scores,
        )
        res = {"sequences": out["sequences"], "length": out["length"], "steps": out["length"]}
    elif plan.beam is not None:
        n = plan.num_beams
        out = decode_beam(
            model.forward,
            params,
            model.config,
            xp.repeat(ids, n, axis=0),
            xp.repeat(mask, n, axis=0),
            plan.beam,
            processors=plan.processors,
            warpers=plan.warpers,
            do_sample=plan.do_sample,
            key=key,
            output_scores=plan.output_scores,
        )
        res = _beam_outputs(out)
    else:
        r = plan.num_return_sequences
        if r > 1:
            ids, mask = xp.repeat(ids, r, axis=0), xp.repeat(mask, r, axis=0)
        out = decode_greedy_or_sample(
            model.forward,
            params,
            model.config,
            ids,
            mask,
            max_length=plan.max_length,
            eos_token_id=plan.eos,
            pad_token_id=plan.pad,
            processors=plan.processors,
            warpers=plan.warpers,
            do_sample=plan.do_sample,
            key=key,
            output_scores=plan.output_scores,
            max_length_limit=limit,
        )
        res = {"sequences": out["sequences"], "length": out["length"], "steps": out["length"]}
    if plan.output_scores:
        res["scores"] = out["scores"]
    return res


def _beam_outputs(out: dict) -> dict:
    return {
        "sequences": out["sequences"],
        "length": out["out_len"],
        "sequences_scores": out["sequences_scores"],
        "beam_indices": out["beam_indices"],
        "steps": out["length"],
    }


def _fused_seq2seq(model: Any, plan: GenerationPlan, ids: Any, mask: Any, key: Any) -> dict:
    """Encoder-decoder (T5, the BART family) fused program: the encoder runs once on ``ids``/``mask``, its output
    (and cross-attention keys/values) is repeated per beam / return sequence, and the decoder
    loop starts from ``[decoder_start_token_id]`` (decoder prompt length 1). The encoder-side
    processors get the encoder ids repeated the same way."""
    import tensorweave.ir.namespace as xp

    arch = model.seq2seq_module  # t5 or bart: the same encode / decode / init_cache contract
    params = bind_params(model.params)
    rep = plan.expand
    enc_rows = xp.repeat(ids, rep, axis=0) if rep > 1 else ids
    out = decode_seq2seq(
        arch.encode,
        arch.decode,
        arch.init_cache,
        params,
        model.config,
        ids,
        mask,
        plan.decoder_start,
        max_length=plan.max_length,
        eos_token_id=plan.eos,
        pad_token_id=plan.pad,
        num_return_sequences=plan.num_return_sequences,
        bcfg=plan.beam,
        processors=plan.processors_for(enc_rows),
        warpers=plan.warpers,
        do_sample=plan.do_sample,
        key=key,
        output_scores=plan.output_scores,
        vocab_size=output_vocab_size(model),
    )
    if plan.beam is not None:
        res = _beam_outputs(out)
    else:
        res = {"sequences": out["sequences"], "length": out["length"], "steps": out["length"]}
    if plan.output_scores:
        res["scores"] = out["scores"]
    return res
