"""``tw.generate``: Hugging Face's ``generate()`` for tensorweave models and native callables.

A call flows: ``generate`` -> :func:`~.plan.resolve_plan` (every decision and validation) -> the
backend chosen once -> :func:`~.fused.run_fused` (``trace=True``, the default for tensorweave
models) or :func:`run_stepwise` (``trace=False``, and always for native callables such
as a ``transformers`` PyTorch model; contrastive and group beam search included) -> programs from
the one cache (``programs.PROGRAMS``) -> ``backend.lower``. Both modes give the same tokens; the
same seed gives the same tokens on every backend (the IR's Threefry RNG).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..backends import registry
from ..frontends.generation.configuration import GenerationConfig
from ..frontends.generation.transition_scores import compute_transition_scores as _transition_scores
from ..ir import random
from ..log import NoBar, progress
from .contrastive import run_contrastive
from .frameworks import Boundary, framework_of, to_numpy
from .fused import run_fused
from .native import NativeModelStep, is_torch_module
from .plan import GenerationPlan, Mode, is_tensorweave_model, resolve_plan, validate_inputs
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
    step); beam modes add ``sequences_scores`` [rows] and ``beam_indices`` [rows, length]. Arrays of
    the framework of the call's ``input_ids`` (numpy for numpy arrays and lists)."""

    sequences: Any
    scores: tuple | None = None
    sequences_scores: Any = None
    beam_indices: Any = None


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
    params: Any = None,
    **kwargs: Any,
) -> Any:
    """Generate with a tensorweave model or a native causal-LM callable (e.g. a ``transformers``
    PyTorch model). Extra keyword arguments update the generation config; unknown ones are a
    ValueError naming them (``token_type_ids`` is ignored for decoder-only models, as in Hugging
    Face). Returns ``sequences`` or a :class:`GenerateOutput` with ``return_dict_in_generate=True``,
    as arrays of ``input_ids``' framework (torch / TensorFlow / JAX; numpy for numpy and lists).

    Every argument is validated before anything is traced or run, identically on every backend
    (``plan.validate_inputs``, ``GenerationConfig.validate``, ``plan.resolve_plan``).

    ``trace``: True runs the fused program (the default for tensorweave models); False runs the
    step-wise host loop around compiled per-step strategy programs (always the case for native
    callables); unset with a ``streamer``, the call runs step-wise so that tokens stream as they
    are produced. ``seed`` / ``prng_key`` (a uint32 [2] key, or a JAX key from ``jax.random.key`` /
    ``jax.random.PRNGKey``; wins over seed) drive sampling with the same key schedule in both modes.
    ``streamer``: an object with ``put(array)`` / ``end()`` (Hugging Face's BaseStreamer protocol),
    see ``tensorweave.TextStreamer``. ``params``: a flat dict ``name -> array`` with the names and
    shapes of ``model.params`` that replaces the weights for this call (Flax's ``params=``).
    ``prefix_allowed_tokens_fn(batch_id, ids) -> allowed ids``: step-wise only.
    ``reorder_cache(cache, rows) -> cache``: how to reorder a native model's cache for beam search
    (default: the cache's own ``reorder_cache`` method, or a gather of nested arrays)."""
    boundary = Boundary(input_ids)
    if "token_type_ids" in kwargs and not (is_tensorweave_model(model) and model.is_encoder_decoder):
        kwargs.pop("token_type_ids")  # decoder-only: ignored, as Hugging Face's generate does
    ids, mask = validate_inputs(
        model, to_numpy(input_ids), None if attention_mask is None else to_numpy(attention_mask)
    )
    model = with_params(model, params)
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
    key = _prng_key(seed, prng_key)
    chosen = select_backend(backend)
    if streamer is not None:
        streamer.put(np.full((ids.shape[0], 1), plan.decoder_start, np.int64) if plan.seq2seq else ids.copy())
    d = _run(model, plan, chosen, ids, mask, key, streamer, reorder_cache)
    if streamer is not None:
        streamer.end()
    return _outputs(d, plan, boundary)


def compute_transition_scores(
    sequences: Any, scores: Sequence[Any], beam_indices: Any = None, normalize_logits: bool = False
) -> Any:
    """Hugging Face's ``compute_transition_scores`` (see
    ``tensorweave.frontends.generation.transition_scores``), returning an array of the framework of
    ``sequences`` (torch / TensorFlow / JAX / numpy)."""
    out = _transition_scores(
        to_numpy(sequences),
        [to_numpy(s) for s in scores],
        None if beam_indices is None else to_numpy(beam_indices),
        normalize_logits=normalize_logits,
    )
    return Boundary(sequences)(out)


def with_params(model: Any, params: Any) -> Any:
    """``model`` with ``params`` (a flat dict of arrays with ``model.params``' names and shapes) as its
    weights for one call: a shallow copy, so the call's programs are built for it and dropped with it
    (the model's own program cache is not touched). ``None`` or the model's own dict: the model."""
    if params is None:
        return model
    if not is_tensorweave_model(model):
        raise ValueError(
            "`params` replaces a tensorweave model's weights; a native model callable holds its own "
            "(load the weights into it instead)"
        )
    if params is model.params:
        return model
    if not isinstance(params, Mapping) or any(isinstance(v, Mapping) for v in params.values()):
        raise ValueError(
            "`params` must be a flat dict name -> array with the names of model.params (Hugging Face "
            "names); a nested Flax tree such as {'params': {...}} is not accepted: load it with "
            "tw.models.load / from_transformers instead"
        )
    missing = sorted(set(model.params) - set(params))
    extra = sorted(set(params) - set(model.params))
    if missing or extra:
        raise ValueError(
            f"`params` must have exactly the names of model.params: missing {missing[:3]}, unexpected "
            f"{extra[:3]}" + (" ..." if len(missing) > 3 or len(extra) > 3 else "")
        )
    new: dict = {}
    for name, ref in model.params.items():
        value = to_numpy(params[name])
        if value.shape != ref.shape:
            raise ValueError(
                f"`params[{name!r}]` has shape {list(value.shape)}, the model's has {list(ref.shape)}"
            )
        new[name] = value.astype(ref.dtype, copy=False)
    out = copy.copy(model)
    out.params = new
    if hasattr(out, "_programs"):
        out._programs = {}
    return out


def _prng_key(seed: int | None, prng_key: Any) -> np.ndarray:
    if prng_key is None:
        return random.key(0 if seed is None else seed)
    if framework_of(prng_key) == "jax":
        jax = sys.modules["jax"]
        if jax.dtypes.issubdtype(prng_key.dtype, jax.dtypes.prng_key):  # jax.random.key(...)
            prng_key = jax.random.key_data(prng_key)
    key = to_numpy(prng_key)
    if key.shape != (2,) or key.dtype != np.uint32:
        raise ValueError(
            f"prng_key must be a uint32 array of shape [2] (tw.ir.random.key(seed), jax.random.key(seed) "
            f"or jax.random.PRNGKey(seed)), got {key.dtype}{list(key.shape)}"
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
    new_tokens = plan.max_length - plan.prompt_len
    with progress(total=new_tokens, desc=f"generating on {backend.name}", unit="tok") as bar:
        if not isinstance(bar, NoBar):
            streamer = _CountingStreamer(streamer, bar)
        if plan.fused:
            d = run_fused(model, plan, backend, ids, mask, key)
            if streamer is not None:
                for t in range(plan.prompt_len, int(d["length"])):
                    streamer.put(d["sequences"][:, t].copy())
            return d
        step = NativeModelStep(model, reorder_cache) if plan.native else None
        d = run_stepwise(model, step, plan, backend, ids, mask, key, streamer)
        if not isinstance(bar, NoBar):  # beam searches do not stream: the bar ends at the length reached
            bar.update(max(0, int(d["length"]) - plan.prompt_len - bar.n))
        return d


class _CountingStreamer:
    """Moves the token bar one step per ``put`` and passes the tokens on to the user's streamer."""

    def __init__(self, inner: Any, bar: Any) -> None:
        self.inner, self.bar = inner, bar

    def put(self, value: Any) -> None:
        self.bar.update(1)
        if self.inner is not None:
            self.inner.put(value)

    def end(self) -> None:
        if self.inner is not None:
            self.inner.end()


def _outputs(d: dict, plan: GenerationPlan, out: Boundary) -> Any:
    """The fused / step-wise raw outputs (numpy, by name) as Hugging Face's results, in the
    caller's framework (``out``)."""
    length = int(d["length"])
    sequences = d["sequences"][:, :length]
    if not plan.return_dict:
        return out(sequences)
    steps = int(d["steps"]) - plan.prompt_len
    scores = tuple(d["scores"][t] for t in range(steps)) if plan.output_scores else None
    if plan.num_beams > 1:
        bidx = np.full((sequences.shape[0], length), -1, np.int64)
        g = min(d["beam_indices"].shape[1], length)
        bidx[:, :g] = d["beam_indices"][:, :g]
        seq_scores = d["sequences_scores"] if plan.output_scores else None
        return GenerateOutput(out(sequences), out(scores), out(seq_scores), out(bidx))
    return GenerateOutput(out(sequences), out(scores))


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
