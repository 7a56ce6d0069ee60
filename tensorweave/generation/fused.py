"""Fused generation: the prompt step and the whole decode loop as one traced program per (backend,
input shape, plan), lowered once and cached with the model (``programs.PROGRAMS``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..frontends.generation.contrastive import decode_contrastive
from ..frontends.generation.decode import decode_beam, decode_greedy_or_sample, decode_seq2seq
from ..ir.passes import optimize
from ..ir.trace import constant, trace
from ..ir.types import TensorSpec
from .plan import GenerationPlan, Mode
from .programs import PROGRAMS, Backend


def fused_program(model: Any, plan: GenerationPlan, backend: Backend, shape: tuple) -> Any:
    """The lowered fused program ``(input_ids, attention_mask, key) -> outputs`` for ``shape``."""

    def build() -> Any:
        return optimize(
            trace(
                lambda ids, mask, key: fused_outputs(model, plan, ids, mask, key),
                TensorSpec(shape, "int64", "input_ids"),
                TensorSpec(shape, "int64", "attention_mask"),
                TensorSpec((2,), "uint32", "key"),
            )
        )

    return PROGRAMS.get(model, backend, "fused", (tuple(shape),), plan.key, plan.custom_key, build)


def run_fused(
    model: Any, plan: GenerationPlan, backend: Backend, ids: np.ndarray, mask: np.ndarray, key: np.ndarray
) -> dict:
    """Run the fused program; its outputs as numpy arrays by name."""
    program = fused_program(model, plan, backend, ids.shape)
    outs = program(ids, mask, key)
    return dict(zip(program.output_names, [np.asarray(o) for o in outs]))


def fused_outputs(model: Any, plan: GenerationPlan, ids: Any, mask: Any, key: Any) -> dict:
    """The traced body of a fused program (decoder-only or encoder-decoder)."""
    import tensorweave.ir.namespace as xp

    if plan.seq2seq:
        return _fused_seq2seq(model, plan, ids, mask, key)
    params = {k: constant(v, name=k) for k, v in model.params.items()}
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
    """Encoder-decoder (T5) fused program: the encoder runs once on ``ids``/``mask``, its output
    (and cross-attention keys/values) is repeated per beam / return sequence, and the decoder
    loop starts from ``[decoder_start_token_id]`` (decoder prompt length 1). The encoder-side
    processors get the encoder ids repeated the same way."""
    import tensorweave.ir.namespace as xp

    from ..frontends.models import t5

    params = {k: constant(v, name=k) for k, v in model.params.items()}
    rep = plan.expand
    enc_rows = xp.repeat(ids, rep, axis=0) if rep > 1 else ids
    out = decode_seq2seq(
        t5.encode,
        t5.decode,
        t5.init_cache,
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
        vocab_size=model.config.vocab_size,
    )
    if plan.beam is not None:
        res = _beam_outputs(out)
    else:
        res = {"sequences": out["sequences"], "length": out["length"], "steps": out["length"]}
    if plan.output_scores:
        res["scores"] = out["scores"]
    return res
