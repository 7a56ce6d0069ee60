"""``tw.generate``: Hugging Face's ``generate()`` for tensorweave models and native callables.

Fused (``trace=True``, the default for tensorweave models): the prompt step and the whole decode
loop (greedy, multinomial sampling, beam search, beam sampling) are traced once per (backend,
batch, prompt length, config) into one IR program, lowered and cached. Step-wise (``trace=False``,
and always for native callables such as a ``transformers`` PyTorch model): a host loop around
compiled per-step strategy programs (``frontends/generation/stepwise.py``), which also runs group
beam search and ``prefix_allowed_tokens_fn``. Both modes give the same tokens; the same seed gives
the same tokens on every backend (the IR's Threefry RNG).
"""

from __future__ import annotations

import functools
import inspect
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .backends import registry
from .frontends.generation.beam_search import BeamConfig
from .frontends.generation.builder import get_logits_processor, get_logits_warper
from .frontends.generation.configuration import GenerationConfig
from .frontends.generation.contrastive import decode_contrastive
from .frontends.generation.decode import decode_beam, decode_greedy_or_sample
from .frontends.generation.logits_process import PrefixConstrainedLogitsProcessor
from .ir import random
from .ir.passes import optimize
from .ir.trace import constant, trace
from .ir.types import IRError, TensorSpec

_PROGRAMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> {key: fused program}


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
    fields = {
        k: getattr(cfg, k)
        for k in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
        if getattr(cfg, k, None) is not None
    }
    return GenerationConfig(**fields)


def _is_contrastive(config: GenerationConfig) -> bool:
    """Hugging Face's mode rule: contrastive search when not sampling, one beam, ``top_k > 1`` and
    ``penalty_alpha > 0``."""
    return (
        not config.do_sample
        and config.num_beams == 1
        and config.penalty_alpha is not None
        and config.penalty_alpha > 0
        and config.top_k is not None
        and config.top_k > 1
    )


def _eos_tuple(eos: Any) -> tuple:
    if eos is None:
        return ()
    return (eos,) if isinstance(eos, int) else tuple(int(e) for e in eos)


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
    """Generate with a tensorweave ``Model`` or a native causal-LM callable (e.g. a ``transformers``
    PyTorch model). Extra keyword arguments update the generation config; unknown ones are a
    ValueError naming them. Returns ``sequences`` (numpy) or a :class:`GenerateOutput` with
    ``return_dict_in_generate=True``.

    ``trace``: True runs the fused program (the default for tensorweave models); False runs the
    step-wise host loop around a compiled per-step strategy program (always the case for native
    callables). ``seed`` / ``prng_key`` (a uint32 [2] key, wins over seed) drive sampling with
    the same key schedule in both modes. ``streamer``: an object with ``put(array)`` / ``end()``
    (Hugging Face's BaseStreamer protocol), see :mod:`tensorweave.frontends.generation.streamers`.
    ``prefix_allowed_tokens_fn(batch_id, ids) -> allowed ids``: step-wise only.
    ``reorder_cache(cache, rows) -> cache``: how to reorder a native model's cache for beam search
    (default: the cache's own ``reorder_cache`` method, or a gather of nested arrays)."""
    import copy

    from .models.model import Model

    native = not isinstance(model, Model)
    if native and not callable(model):
        raise ValueError(
            f"model must be a tensorweave Model or a callable causal LM, got {type(model).__name__}"
        )
    if native and trace:
        raise ValueError(
            "a native model callable runs step-wise only: pass trace=False (or leave trace unset)"
        )
    fused = (not native) if trace is None else bool(trace)
    if fused and prefix_allowed_tokens_fn is not None:
        raise ValueError(
            "`prefix_allowed_tokens_fn` is a Python callback on concrete token ids, which a fused "
            "program cannot call: pass trace=False to generate step-wise"
        )
    seq2seq = not native and model.is_encoder_decoder
    if not native and not model.is_decoder and not seq2seq:
        raise ValueError(f"tw.generate needs a decoder model; {model.model_type} is not one")
    if generation_config is not None:
        config = copy.deepcopy(generation_config)
    elif getattr(model, "config", None) is not None:
        config = _model_generation_config(model)
    else:
        config = GenerationConfig()
    unused = config.update(**kwargs)
    if unused:
        raise ValueError(
            f"The following `model_kwargs` are not used by the model: {list(unused)} (note: typos in the "
            "generate arguments will also show up in this list)"
        )
    config.validate()
    ids = np.asarray(input_ids.detach().cpu().numpy() if hasattr(input_ids, "detach") else input_ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise IRError(f"input_ids must be an integer [batch, length] array, got {ids.dtype}{list(ids.shape)}")
    ids = ids.astype(np.int64)
    if attention_mask is None:
        mask = np.ones_like(ids)
    else:
        mask = np.asarray(
            attention_mask.detach().cpu().numpy() if hasattr(attention_mask, "detach") else attention_mask
        ).astype(np.int64)
    if mask.shape != ids.shape:
        raise IRError(f"attention_mask shape {mask.shape} must equal input_ids shape {ids.shape}")
    eos = _eos_tuple(config.eos_token_id)
    if config.pad_token_id is None and eos:
        warnings.warn(
            f"Setting `pad_token_id` to `eos_token_id`:{eos[0]} for open-end generation.", UserWarning
        )
        config.pad_token_id = eos[0]
    if config.pad_token_id is None:
        raise ValueError("generation needs `pad_token_id` (or `eos_token_id`) to fill finished rows")
    if seq2seq:
        start = _decoder_start(config)
    prompt = 1 if seq2seq else ids.shape[1]
    if config.max_new_tokens is not None:
        config.max_length = config.max_new_tokens + prompt
    if config.max_length <= prompt:
        raise ValueError(
            f"`max_length` ({config.max_length}) must exceed the prompt length ({prompt}); "
            "set `max_new_tokens`"
        )
    if config.constraints is not None:
        raise ValueError(
            "constrained beam search is not implemented in tensorweave yet; use greedy, sampling, "
            "contrastive search, beam search, beam sampling or (step-wise) group beam search"
        )
    if _is_contrastive(config):
        if not config.use_cache:
            raise ValueError("Contrastive search requires `use_cache=True`")
        if seq2seq:
            raise ValueError(
                "contrastive search runs on decoder-only models in tensorweave; T5 (encoder-decoder) "
                "supports greedy, sampling and the beam modes"
            )
    if config.num_beam_groups > 1 and fused:
        raise ValueError("group (diverse) beam search runs step-wise only: pass trace=False")
    if streamer is not None and config.num_beams > 1:
        raise ValueError(
            "`streamer` cannot be used with beam search (yet!). Make sure that `num_beams` is set to 1."
        )
    if native and backend is None:
        backend = "torch" if _is_torch_module(model) and registry.is_installed("torch") else None
    name = registry.resolve(backend)
    if prng_key is not None:
        key = np.asarray(prng_key)
        if key.shape != (2,) or key.dtype != np.uint32:
            raise ValueError(
                f"prng_key must be a uint32 array of shape [2] (tw.ir.random.key(seed)), got "
                f"{key.dtype}{list(key.shape)}"
            )
    else:
        key = random.key(0 if seed is None else seed)
    if streamer is not None:
        streamer.put(np.full((ids.shape[0], 1), start, np.int64) if seq2seq else ids.copy())
    if fused:
        program = _program(model, config, name, ids.shape, logits_processor)
        outs = program(ids, mask, key)
        d = dict(zip(program.output_names, [np.asarray(o) for o in outs]))
        if streamer is not None:
            for t in range(prompt, int(d["length"])):
                streamer.put(d["sequences"][:, t].copy())
    else:
        d = _stepwise(
            model,
            native,
            config,
            name,
            ids,
            mask,
            key,
            logits_processor,
            prefix_allowed_tokens_fn,
            streamer,
            reorder_cache,
        )
    if streamer is not None:
        streamer.end()
    return _outputs(d, config, prompt)


# ---------------------------------------------------------------------------------------- native models
def _positions(mask: np.ndarray, length: int) -> np.ndarray:
    """Hugging Face's position ids ``cumsum(mask) - 1`` (1 on padding), last ``length`` columns."""
    pos = np.cumsum(mask, axis=-1) - 1
    pos = np.where(mask == 0, 1, pos)
    return pos[:, mask.shape[1] - length :].astype(np.int64)


class NativeModelStep:
    """Any callable following Hugging Face's causal-LM calling convention:
    ``model(input_ids=..., attention_mask=..., <cache>=..., use_cache=True[, position_ids=...])``
    returning ``.logits [rows, seq, V]`` and the cache (``.past_key_values`` in 4.37, ``.cache``
    in transformers v5; a dict with those keys or a ``(logits, cache)`` tuple also work).

    A ``torch.nn.Module`` gets torch tensors (under ``torch.no_grad()``); anything else numpy.
    The cache keyword is ``cache`` when the signature has it and not ``past_key_values``, else
    ``past_key_values``; ``position_ids`` (Hugging Face's rule from the mask, so left padding
    works) is passed when the signature names it. ``reorder_cache(cache, rows) -> cache`` reorders
    for beam search; by default a cache's own ``reorder_cache(rows)`` method is used, or nested
    tuples/lists of arrays are gathered along axis 0."""

    def __init__(self, fn: Callable, reorder_cache: Callable | None = None):
        self.fn = fn
        self.reorder_cache = reorder_cache
        self.cache: Any = None
        target = getattr(fn, "forward", fn)
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            params = {}
        self.cache_kw = (
            "cache" if "cache" in params and "past_key_values" not in params else "past_key_values"
        )
        self.pass_positions = "position_ids" in params
        try:
            import torch

            self.torch = torch if isinstance(fn, torch.nn.Module) else None
        except ImportError:  # pragma: no cover - torch is optional
            self.torch = None

    def _array(self, x: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(x)) if self.torch is not None else x

    def _run(self, ids: np.ndarray, mask: np.ndarray, hidden: bool = False) -> Any:
        kw: dict = {"input_ids": self._array(ids), "attention_mask": self._array(mask), "use_cache": True}
        if self.cache is not None:
            kw[self.cache_kw] = self.cache
        if self.pass_positions:
            kw["position_ids"] = self._array(_positions(mask, ids.shape[1]))
        if hidden:
            kw["output_hidden_states"] = True
        if self.torch is not None:
            with self.torch.no_grad():
                out = self.fn(**kw)
        else:
            out = self.fn(**kw)
        logits, self.cache = _split_output(out, self.cache_kw)
        logits = _numpy(logits[:, -1])
        if not hidden:
            return logits
        states = out.get("hidden_states") if hasattr(out, "get") else getattr(out, "hidden_states", None)
        if not states:
            raise ValueError(
                "contrastive search needs the model's hidden states: a native model must return "
                "`hidden_states` when called with output_hidden_states=True"
            )
        return logits, _numpy(states[-1])

    def prefill(self, ids: np.ndarray, mask: np.ndarray, hidden: bool = False) -> Any:
        """Logits ``[rows, V]`` at the last prompt position (with ``hidden``: and the last hidden
        states ``[rows, prompt, H]``)."""
        self.cache = None
        return self._run(ids, mask, hidden)

    def step(self, tokens: np.ndarray, mask: np.ndarray, hidden: bool = False) -> Any:
        """Logits ``[rows, V]`` after one token per row (with ``hidden``: and its last hidden state
        ``[rows, H]``)."""
        out = self._run(tokens[:, None], mask, hidden)
        return (out[0], out[1][:, -1]) if hidden else out

    def reorder(self, rows: np.ndarray) -> None:
        if self.reorder_cache is not None:
            self.cache = self.reorder_cache(self.cache, rows)
            return
        index = self._array(rows.astype(np.int64))
        if _is_torch(self.cache) or type(self.cache).__module__.startswith("transformers"):
            import torch

            index = torch.from_numpy(rows.astype(np.int64))
        if hasattr(self.cache, "reorder_cache"):
            self.cache.reorder_cache(index)
            return
        self.cache = _gather_nested(self.cache, rows, index, self.torch)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _numpy(x: Any) -> np.ndarray:
    """A float32 numpy copy of a torch tensor or any array."""
    if _is_torch(x):
        return x.detach().float().cpu().numpy()
    return np.asarray(x).astype(np.float32)


def _split_output(out: Any, cache_name: str = "past_key_values") -> tuple[Any, Any]:
    if isinstance(out, tuple) and not hasattr(out, "keys"):
        if len(out) != 2:
            raise ValueError(
                f"a native model returning a tuple must return (logits, cache), got {len(out)} items"
            )
        return out
    get = out.get if hasattr(out, "get") else (lambda k, d=None: getattr(out, k, d))
    logits = get("logits", None)
    other = "cache" if cache_name == "past_key_values" else "past_key_values"
    cache = get(cache_name, None)
    if cache is None:
        cache = get(other, None)
    if logits is None or cache is None:
        raise ValueError(
            "the native model's output needs `logits` and a cache (`past_key_values` or `cache`); "
            "call it with use_cache=True or pass a tensorweave Model"
        )
    return logits, cache


def _gather_nested(cache: Any, rows: np.ndarray, index: Any, torch: Any) -> Any:
    if isinstance(cache, (tuple, list)):
        return type(cache)(_gather_nested(c, rows, index, torch) for c in cache)
    if _is_torch(cache):
        import torch

        return cache.index_select(0, torch.from_numpy(rows.astype(np.int64)))
    if isinstance(cache, np.ndarray):
        return np.take(cache, rows, axis=0)
    raise ValueError(
        f"cannot reorder a cache of type {type(cache).__name__} for beam search; pass "
        "`reorder_cache=fn(cache, rows) -> cache` to generate"
    )


def _is_torch_module(model: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional
        return False
    return isinstance(model, torch.nn.Module)


def _stepwise(
    model: Any,
    native: bool,
    config: GenerationConfig,
    backend: str,
    ids: np.ndarray,
    mask: np.ndarray,
    key: np.ndarray,
    custom: list | None,
    prefix_fn: Any,
    streamer: Any,
    reorder_cache: Any,
) -> dict:
    from .frontends.generation import stepwise

    seq2seq = not native and model.is_encoder_decoder
    enc_rows = None
    if seq2seq:  # the loops run over the decoder: a start column; the encoder inputs go to the model step
        enc_ids, enc_mask = ids, mask
        rep = config.num_beams if config.num_beams > 1 else config.num_return_sequences
        enc_rows = np.repeat(enc_ids, rep, axis=0)
        ids = np.full((ids.shape[0], 1), _decoder_start(config), np.int64)
        mask = np.ones_like(ids)
    prompt = ids.shape[1]
    procs = get_logits_processor(
        config,
        prompt,
        encoder_input_ids=enc_rows,
        prefix_allowed_tokens_fn=prefix_fn,
        logits_processor=custom,
    )
    prefix = next((p for p in procs if isinstance(p, PrefixConstrainedLogitsProcessor)), None)
    lower = functools.partial(_lower, backend=backend)
    setup = stepwise.StepwiseSetup(
        config=config,
        processors=procs,
        warpers=get_logits_warper(config) if config.do_sample else None,
        backend=backend,
        config_key=config.to_json_string(use_diff=False),
        lower=lower,
        prefix=prefix,
        streamer=streamer,
    )
    if seq2seq:
        step: Any = stepwise.Seq2SeqModelStep(model, backend, config.max_length, lower, enc_ids, enc_mask)
    else:
        step = (
            NativeModelStep(model, reorder_cache)
            if native
            else stepwise.StaticCacheModelStep(model, backend, config.max_length, lower)
        )
    extra = (_processors_key(custom),)
    if enc_rows is not None and any(p.__class__.__name__.startswith("Encoder") for p in procs):
        extra += (enc_rows.shape, enc_rows.tobytes())  # the encoder ids are constants of the step programs
    if _is_contrastive(config):
        from .frontends.generation.contrastive import contrastive_loop

        return contrastive_loop(step, setup, ids, mask, extra)
    if config.num_beam_groups > 1:
        return stepwise.group_beam_loop(step, setup, ids, mask, extra)
    if config.num_beams > 1:
        return stepwise.beam_loop(step, setup, ids, mask, key, extra)
    r = config.num_return_sequences
    if r > 1:
        ids, mask = np.repeat(ids, r, axis=0), np.repeat(mask, r, axis=0)
    return stepwise.sample_loop(step, setup, ids, mask, key, extra)


def _processors_key(custom: list | None) -> Any:
    """Custom processors as part of a program cache key: the objects themselves (kept alive by the
    key, so an id is never reused by another object), or their ids when unhashable."""
    if not custom:
        return None
    try:
        key = tuple(custom)
        hash(key)
        return key
    except TypeError:
        return tuple(id(p) for p in custom)


def _lower(graph: Any, backend: str) -> Any:
    return registry.lower(graph, backend)


def _program(model: Any, config: GenerationConfig, backend: str, shape: tuple, custom: list | None) -> Any:
    store = _PROGRAMS.setdefault(model, {})  # programs live as long as the model (its weights are constants)
    cache_key = (backend, shape, config.to_json_string(use_diff=False), _processors_key(custom))
    prog = store.get(cache_key)
    if prog is None:
        graph = trace(
            lambda ids, mask, key: _fused(model, config, ids, mask, key, custom),
            TensorSpec(shape, "int64", "input_ids"),
            TensorSpec(shape, "int64", "attention_mask"),
            TensorSpec((2,), "uint32", "key"),
        )
        prog = registry.lower(optimize(graph), backend)
        store[cache_key] = prog
    return prog


def _fused(model: Any, config: GenerationConfig, ids: Any, mask: Any, key: Any, custom: list | None) -> dict:
    import tensorweave.ir.namespace as xp

    if model.is_encoder_decoder:
        return _fused_seq2seq(model, config, ids, mask, key, custom)
    B, prompt = ids.shape
    params = {k: constant(v, name=k) for k, v in model.params.items()}
    procs = get_logits_processor(config, prompt, logits_processor=custom)
    warpers = get_logits_warper(config) if config.do_sample else None
    eos = _eos_tuple(config.eos_token_id)
    out_scores = bool(config.output_scores)
    if _is_contrastive(config):
        out = decode_contrastive(
            model.forward,
            params,
            model.config,
            ids,
            mask,
            max_length=config.max_length,
            top_k=config.top_k,
            penalty_alpha=config.penalty_alpha,
            eos_token_id=eos,
            pad_token_id=config.pad_token_id,
            processors=procs,
            output_scores=out_scores,
        )
        res = {"sequences": out["sequences"], "length": out["length"], "steps": out["length"]}
    elif config.num_beams > 1:
        n = config.num_beams
        bcfg = BeamConfig(
            batch_size=B,
            num_beams=n,
            vocab_size=model.config.vocab_size,
            prompt_len=prompt,
            max_length=config.max_length,
            eos_token_id=eos or (-1,),
            pad_token_id=config.pad_token_id,
            length_penalty=config.length_penalty,
            early_stopping=config.early_stopping,
            num_return_sequences=config.num_return_sequences,
        )
        out = decode_beam(
            model.forward,
            params,
            model.config,
            xp.repeat(ids, n, axis=0),
            xp.repeat(mask, n, axis=0),
            bcfg,
            processors=procs,
            warpers=warpers,
            do_sample=config.do_sample,
            key=key,
            output_scores=out_scores,
        )
        res = {
            "sequences": out["sequences"],
            "length": out["out_len"],
            "sequences_scores": out["sequences_scores"],
            "beam_indices": out["beam_indices"],
            "steps": out["length"],
        }
    else:
        r = config.num_return_sequences
        if r > 1:
            ids, mask = xp.repeat(ids, r, axis=0), xp.repeat(mask, r, axis=0)
        out = decode_greedy_or_sample(
            model.forward,
            params,
            model.config,
            ids,
            mask,
            max_length=config.max_length,
            eos_token_id=eos,
            pad_token_id=config.pad_token_id,
            processors=procs,
            warpers=warpers,
            do_sample=config.do_sample,
            key=key,
            output_scores=out_scores,
        )
        res = {"sequences": out["sequences"], "length": out["length"], "steps": out["length"]}
    if out_scores:
        res["scores"] = out["scores"]
    return res


def _decoder_start(config: GenerationConfig) -> int:
    """Hugging Face's decoder start: ``decoder_start_token_id``, else ``bos_token_id``."""
    start = (
        config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
    )
    if start is None:
        raise ValueError(
            "`decoder_start_token_id` or `bos_token_id` has to be defined for encoder-decoder generation."
        )
    if isinstance(start, (list, tuple)):
        raise ValueError(
            "a list of `decoder_start_token_id` (one per batch item) is not supported; pass one int"
        )
    return int(start)


def _fused_seq2seq(
    model: Any, config: GenerationConfig, ids: Any, mask: Any, key: Any, custom: list | None
) -> dict:
    """Encoder-decoder (T5) fused program: the encoder runs once on ``ids``/``mask``, its output
    (and cross-attention keys/values) is repeated per beam / return sequence, and the decoder
    loop starts from ``[decoder_start_token_id]`` (decoder prompt length 1). The encoder-side
    processors get the encoder ids repeated the same way."""
    import tensorweave.ir.namespace as xp

    from .frontends.generation.decode import decode_seq2seq
    from .frontends.models import t5

    B = ids.shape[0]
    params = {k: constant(v, name=k) for k, v in model.params.items()}
    n = config.num_beams
    rep = n if n > 1 else config.num_return_sequences
    enc_rows = xp.repeat(ids, rep, axis=0) if rep > 1 else ids
    procs = get_logits_processor(config, 1, encoder_input_ids=enc_rows, logits_processor=custom)
    warpers = get_logits_warper(config) if config.do_sample else None
    eos = _eos_tuple(config.eos_token_id)
    out_scores = bool(config.output_scores)
    bcfg = None
    if n > 1:
        bcfg = BeamConfig(
            batch_size=B,
            num_beams=n,
            vocab_size=model.config.vocab_size,
            prompt_len=1,
            max_length=config.max_length,
            eos_token_id=eos or (-1,),
            pad_token_id=config.pad_token_id,
            length_penalty=config.length_penalty,
            early_stopping=config.early_stopping,
            num_return_sequences=config.num_return_sequences,
        )
    out = decode_seq2seq(
        t5.encode,
        t5.decode,
        t5.init_cache,
        params,
        model.config,
        ids,
        mask,
        _decoder_start(config),
        max_length=config.max_length,
        eos_token_id=eos,
        pad_token_id=config.pad_token_id,
        num_return_sequences=config.num_return_sequences,
        bcfg=bcfg,
        processors=procs,
        warpers=warpers,
        do_sample=config.do_sample,
        key=key,
        output_scores=out_scores,
        vocab_size=model.config.vocab_size,
    )
    if n > 1:
        res = {
            "sequences": out["sequences"],
            "length": out["out_len"],
            "sequences_scores": out["sequences_scores"],
            "beam_indices": out["beam_indices"],
            "steps": out["length"],
        }
    else:
        res = {"sequences": out["sequences"], "length": out["length"], "steps": out["length"]}
    if out_scores:
        res["scores"] = out["scores"]
    return res


def _outputs(d: dict, config: GenerationConfig, prompt: int) -> Any:
    """The fused / step-wise raw outputs (numpy, by name) as Hugging Face's results."""
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
        return GenerateOutput(
            sequences, scores, d["sequences_scores"] if config.output_scores else None, bidx
        )
    return GenerateOutput(sequences, scores)
