"""``tw.generate``: Hugging Face's ``generate()`` for tensorweave models, fused into one program.

The prompt step and the whole decode loop (greedy, multinomial sampling, beam search, beam
sampling) are traced once per (backend, batch, prompt length, config) into one IR program,
lowered and cached; the same seed gives the same tokens on every backend (the IR's Threefry RNG).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends import registry
from .frontends.generation.beam_search import BeamConfig
from .frontends.generation.builder import get_logits_processor, get_logits_warper
from .frontends.generation.configuration import GenerationConfig
from .frontends.generation.decode import decode_beam, decode_greedy_or_sample
from .ir import random
from .ir.trace import constant, trace
from .ir.types import IRError, TensorSpec

_PROGRAMS: dict = {}


@dataclass
class GenerateOutput:
    """``sequences`` [rows, length]; with ``output_scores``: ``scores`` (one [rows, vocab] array per
    step); beam modes add ``sequences_scores`` [rows] and ``beam_indices`` [rows, length]."""

    sequences: np.ndarray
    scores: tuple | None = None
    sequences_scores: np.ndarray | None = None
    beam_indices: np.ndarray | None = None


def _model_generation_config(model: Any) -> GenerationConfig:
    cfg = model.config
    fields = {k: getattr(cfg, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id") if getattr(cfg, k, None) is not None}
    return GenerationConfig(**fields)


def _eos_tuple(eos: Any) -> tuple:
    if eos is None:
        return ()
    return (eos,) if isinstance(eos, int) else tuple(int(e) for e in eos)


def generate(model: Any, input_ids: Any, attention_mask: Any = None, generation_config: GenerationConfig | None = None,
             backend: str | None = None, seed: int | None = None, logits_processor: list | None = None,
             **kwargs: Any) -> Any:
    """Generate with a tensorweave model (see the module docstring). Extra keyword arguments update
    the generation config; unknown ones are a ValueError naming them. Returns ``sequences`` (numpy)
    or a :class:`GenerateOutput` with ``return_dict_in_generate=True``."""
    import copy
    config = copy.deepcopy(generation_config) if generation_config is not None else _model_generation_config(model)
    unused = config.update(**kwargs)
    if unused:
        raise ValueError(f"The following `model_kwargs` are not used by the model: {list(unused)} (note: typos in the "
                         "generate arguments will also show up in this list)")
    config.validate()
    ids = np.asarray(input_ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise IRError(f"input_ids must be an integer [batch, length] array, got {ids.dtype}{list(ids.shape)}")
    ids = ids.astype(np.int64)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask).astype(np.int64)
    if mask.shape != ids.shape:
        raise IRError(f"attention_mask shape {mask.shape} must equal input_ids shape {ids.shape}")
    eos = _eos_tuple(config.eos_token_id)
    if config.pad_token_id is None and eos:
        warnings.warn(f"Setting `pad_token_id` to `eos_token_id`:{eos[0]} for open-end generation.", UserWarning)
        config.pad_token_id = eos[0]
    if config.pad_token_id is None:
        raise ValueError("generation needs `pad_token_id` (or `eos_token_id`) to fill finished rows")
    prompt = ids.shape[1]
    if config.max_new_tokens is not None:
        config.max_length = config.max_new_tokens + prompt
    if config.max_length <= prompt:
        raise ValueError(f"`max_length` ({config.max_length}) must exceed the prompt length ({prompt}); "
                         "set `max_new_tokens`")
    if config.num_beam_groups > 1 or config.penalty_alpha is not None or config.constraints is not None:
        raise ValueError("group beam search, contrastive search and constrained beam search are not implemented "
                         "in tensorweave yet; use greedy, sampling, beam search or beam sampling")
    name = registry.resolve(backend)
    key = random.key(0 if seed is None else seed)
    program = _program(model, config, name, ids.shape, logits_processor)
    outs = program(ids, mask, key)
    return _outputs(outs, config, prompt)


def _program(model: Any, config: GenerationConfig, backend: str, shape: tuple, custom: list | None) -> Any:
    cache_key = (id(model), backend, shape, config.to_json_string(use_diff=False), id(custom) if custom else None)
    prog = _PROGRAMS.get(cache_key)
    if prog is None:
        graph = trace(lambda ids, mask, key: _fused(model, config, ids, mask, key, custom),
                      TensorSpec(shape, "int64", "input_ids"), TensorSpec(shape, "int64", "attention_mask"),
                      TensorSpec((2,), "uint32", "key"))
        prog = registry.lower(graph, backend)
        _PROGRAMS[cache_key] = prog
    return prog


def _fused(model: Any, config: GenerationConfig, ids: Any, mask: Any, key: Any, custom: list | None) -> dict:
    import tensorweave.ir.namespace as xp
    B, prompt = ids.shape
    params = {k: constant(v, name=k) for k, v in model.params.items()}
    procs = get_logits_processor(config, prompt, logits_processor=custom)
    warpers = get_logits_warper(config) if config.do_sample else None
    eos = _eos_tuple(config.eos_token_id)
    out_scores = bool(config.output_scores)
    if config.num_beams > 1:
        n = config.num_beams
        bcfg = BeamConfig(batch_size=B, num_beams=n, vocab_size=model.config.vocab_size, prompt_len=prompt,
                          max_length=config.max_length, eos_token_id=eos or (-1,), pad_token_id=config.pad_token_id,
                          length_penalty=config.length_penalty, early_stopping=config.early_stopping,
                          num_return_sequences=config.num_return_sequences)
        out = decode_beam(model.forward, params, model.config, xp.repeat(ids, n, axis=0), xp.repeat(mask, n, axis=0),
                          bcfg, processors=procs, warpers=warpers, do_sample=config.do_sample, key=key,
                          output_scores=out_scores)
        res = {"sequences": out["sequences"], "length": out["out_len"], "sequences_scores": out["sequences_scores"],
               "beam_indices": out["beam_indices"], "steps": out["length"]}
    else:
        r = config.num_return_sequences
        if r > 1:
            ids, mask = xp.repeat(ids, r, axis=0), xp.repeat(mask, r, axis=0)
        out = decode_greedy_or_sample(model.forward, params, model.config, ids, mask, max_length=config.max_length,
                                      eos_token_id=eos, pad_token_id=config.pad_token_id, processors=procs,
                                      warpers=warpers, do_sample=config.do_sample, key=key, output_scores=out_scores)
        res = {"sequences": out["sequences"], "length": out["length"], "steps": out["length"]}
    if out_scores:
        res["scores"] = out["scores"]
    return res


def _outputs(outs: Any, config: GenerationConfig, prompt: int) -> Any:
    names = ["sequences", "length"] + (["sequences_scores", "beam_indices"] if config.num_beams > 1 else []) + \
        ["steps"] + (["scores"] if config.output_scores else [])
    d = dict(zip(names, [np.asarray(o) for o in outs]))
    length = int(d["length"])
    sequences = d["sequences"][:, :length]
    if not config.return_dict_in_generate:
        return sequences
    steps = int(d["steps"]) - prompt
    scores = tuple(d["scores"][t] for t in range(steps)) if config.output_scores else None
    if config.num_beams > 1:
        bidx = np.full((sequences.shape[0], length), -1, np.int64)
        g = min(d["beam_indices"].shape[1], length)
        bidx[:, :g] = d["beam_indices"][:, :g]
        return GenerateOutput(sequences, scores, d["sequences_scores"] if config.output_scores else None, bidx)
    return GenerateOutput(sequences, scores)
