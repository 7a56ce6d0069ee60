"""Step-wise generation: a host loop around a compiled per-step strategy program.

The model runs one step at a time through a :class:`ModelStep` (for tensorweave models, the fused
loop's own prefill and one-token step over a static cache, each lowered once; or any native
callable such as a live ``transformers`` PyTorch model, or our growing-cache ``with_past`` program
wrapped as one); everything that
chooses tokens runs in a small *strategy program* traced once and lowered to the chosen backend:

- greedy / sampling step: ``(tokens [rows, L], logits [rows, V], cur_len, unfinished [rows], key
  [, prefix_mask [rows, V]]) -> (next_tokens [rows], unfinished, [scores [rows, V]])`` with
  ``scores = warpers(processors(tokens, logits))``, ``next = argmax(scores)`` or
  ``categorical(fold_in(key, cur_len), scores)``, finished rows emitting ``pad_token_id``;
- beam init / beam step / beam finalize over the static-shape beam state of ``beam_search.py``:
  one step is ``logp = processors(seqs, log_softmax(logits))`` (then the warpers and a
  Gumbel-top-2n draw from ``fold_in(key, cur_len)`` for beam sampling) followed by
  :func:`beam_step`; the host reorders the model's cache with the returned beam rows.

``tokens`` is the same static ``[rows, max_length]`` buffer (pad beyond ``cur_len``) that the fused
loop carries and the keys are the same ``fold_in(key, cur_len)``, so step-wise and fused runs give
the same tokens for the same seed (tensorweave models run the very same model programs; a native
model's logits are its own).

``prefix_allowed_tokens_fn`` is a host callback: each step the host calls it on the concrete ids
(``ids[row, :cur_len]`` as a numpy int64 array) and feeds the resulting 0/-inf mask into the
program, where it is added at the processor list position Hugging Face gives it.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from ...ir import random
from ...ir.types import TensorSpec
from . import logits_process as lp
from .beam_search import BeamConfig, beam_finalize, beam_init, beam_step, eos_hit

_PROGRAMS: dict = {}
_MODEL_PROGRAMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> its step programs


# ---------------------------------------------------------------------------------------- models
class ModelStep(Protocol):
    """What the host loop needs from a model: next-token logits and a cache it can reorder."""

    def prefill(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Run the prompt ``ids [rows, P]`` (``mask [rows, P]``); return float32 logits ``[rows, V]``
        at the last position and keep the cache."""

    def step(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Run one token per row (``tokens [rows]``) with the full mask ``[rows, cur_len + 1]``."""

    def reorder(self, rows: np.ndarray) -> None:
        """Gather the cache rows (beam search): new row i takes old row ``rows[i]``."""


class StaticCacheModelStep:
    """A tensorweave decoder ``Model`` through two programs over a static ``[rows, kv_heads,
    max_length, head_dim]`` cache (the fused loop's own prefill and one-token step, see
    ``decode.py``): shapes never change, so each program is lowered once per (backend, rows,
    prompt, max_length), and the logits are those of the fused program. The mask passed to the
    model is the prompt mask followed by ones up to ``max_length`` (as in the fused loop).

    ``hidden=True`` (contrastive search) also returns the last hidden state (after the final
    norm): ``[rows, prompt, H]`` from ``prefill``, ``[rows, H]`` from ``step``; a step may run on
    more rows than the prompt had once :meth:`reorder` has repeated them."""

    def __init__(self, model: Any, backend: str, max_length: int, lower: Callable[[Any], Any]):
        self.model, self.backend, self.max_length, self.lower = model, backend, max_length, lower
        self.cache: list = []
        self.full_mask: np.ndarray | None = None
        self.cur_len = 0

    def _flat(self, cache: dict) -> dict:
        n = self.model.config.num_hidden_layers
        out = {f"new.key.{i}": cache["key"][i] for i in range(n)}
        out.update({f"new.value.{i}": cache["value"][i] for i in range(n)})
        return out

    def _params(self) -> dict:
        from ...ir.trace import constant

        return {k: constant(v, name=k) for k, v in self.model.params.items()}

    def _store(self) -> dict:
        return _MODEL_PROGRAMS.setdefault(
            self.model, {}
        )  # lives as long as the model (its weights are constants)

    def _prefill_program(self, rows: int, prompt: int, hidden: bool) -> Any:
        from ...ir.trace import trace
        from .decode import _prefill

        m, L = self.model, self.max_length
        cfg = m.config

        def prefill(ids: Any, mask: Any) -> dict:
            res = _prefill(m.forward, self._params(), cfg, ids, mask, L, hidden=hidden)
            return {"logits": res[0], **self._flat(res[1]), **({"hidden": res[3]} if hidden else {})}

        specs = (TensorSpec((rows, prompt), "int64", "ids"), TensorSpec((rows, prompt), "int64", "mask"))
        key = ("static-model", self.backend, rows, L, "prefill", prompt, hidden)
        return _cached(
            key, lambda: trace(prefill, *specs, name=f"{cfg.model_type}_prefill"), self.lower, self._store()
        )

    def _step_program(self, rows: int, hidden: bool) -> Any:
        from ...ir.trace import trace
        from .decode import _step

        m, L = self.model, self.max_length
        cfg = m.config
        n = cfg.num_hidden_layers

        def step(tok: Any, full_mask: Any, cur_len: Any, *cache: Any) -> dict:
            c = {"key": list(cache[:n]), "value": list(cache[n:])}
            res = _step(m.forward, self._params(), cfg, tok, full_mask, c, cur_len, hidden=hidden)
            return {"logits": res[0], **self._flat(res[1]), **({"hidden": res[2]} if hidden else {})}

        kv = TensorSpec((rows, cfg.num_key_value_heads, L, cfg.head_dim), "float32")
        specs = [
            TensorSpec((rows,), "int64", "tok"),
            TensorSpec((rows, L), "int64", "full_mask"),
            TensorSpec((), "int64", "cur_len"),
        ]
        specs += [kv.with_name(f"cache.{kind}.{i}") for kind in ("key", "value") for i in range(n)]
        key = ("static-model", self.backend, rows, L, "step", hidden)
        return _cached(
            key, lambda: trace(step, *specs, name=f"{cfg.model_type}_static_step"), self.lower, self._store()
        )

    def prefill(self, ids: np.ndarray, mask: np.ndarray, hidden: bool = False) -> Any:
        rows, prompt = ids.shape
        self.full_mask = np.concatenate([mask, np.ones((rows, self.max_length - prompt), np.int64)], axis=1)
        prog = self._prefill_program(rows, prompt, hidden)
        self.cur_len = prompt
        return self._take(prog, prog(ids, mask), hidden)

    def _take(self, prog: Any, outs: tuple, hidden: bool) -> Any:
        """Keep the new cache as the backend returned it (no host copy); logits (and hidden) as numpy."""
        named = dict(zip(prog.output_names, outs))
        self.cache = [named[k] for k in prog.output_names if k.startswith("new.")]
        logits = np.asarray(named["logits"]).astype(np.float32)
        return (logits, np.asarray(named["hidden"]).astype(np.float32)) if hidden else logits

    def step(self, tokens: np.ndarray, mask: np.ndarray, hidden: bool = False) -> Any:
        prog = self._step_program(tokens.shape[0], hidden)
        outs = prog(tokens.astype(np.int64), self.full_mask, np.asarray(self.cur_len, np.int64), *self.cache)
        self.cur_len += 1
        return self._take(prog, outs, hidden)

    def reorder(self, rows: np.ndarray) -> None:
        self.cache = [np.take(np.asarray(c), rows, axis=0) for c in self.cache]
        self.full_mask = np.take(self.full_mask, rows, axis=0)


# ---------------------------------------------------------------------------------------- programs
class _MaskInput(lp.LogitsProcessor):
    """Stands in for PrefixConstrainedLogitsProcessor inside the traced step: adds the host mask."""

    def __init__(self, mask: Any):
        self.mask = mask

    def __call__(self, input_ids, scores, cur_len=None):
        return scores + self.mask


def _with_mask(procs: Any, mask: Any) -> Any:
    if procs is None or mask is None:
        return procs
    out = lp.LogitsProcessorList()
    for p in procs:
        out.append(_MaskInput(mask) if isinstance(p, lp.PrefixConstrainedLogitsProcessor) else p)
    return out


def _cached(
    key: tuple, build: Callable[[], Any], lower: Callable[[Any], Any], store: dict | None = None
) -> Any:
    store = _PROGRAMS if store is None else store
    prog = store.get(key)
    if prog is None:
        prog = lower(build())
        store[key] = prog
    return prog


def _named(prog: Any, outs: Any) -> dict:
    outs = outs if isinstance(outs, tuple) else (outs,)
    return {n: np.asarray(o) for n, o in zip(prog.output_names, outs)}


@dataclass
class StepwiseSetup:
    """What the host loop needs besides the model: the config, the processors and warpers built
    from it (``warpers`` only when sampling), the backend, a cache key for the config and the
    lowering function."""

    config: Any
    processors: Any
    warpers: Any
    backend: str
    config_key: str
    lower: Callable[[Any], Any]  # graph -> program on ``backend`` (the backends live outside frontends/)
    prefix: Any = None  # the PrefixConstrainedLogitsProcessor, when prefix_allowed_tokens_fn is set
    streamer: Any = None


def _prefix_mask(setup: StepwiseSetup, tokens: np.ndarray, cur_len: int, vocab: int) -> list:
    if setup.prefix is None:
        return []
    zeros = np.zeros((tokens.shape[0], vocab), np.float32)
    return [np.asarray(setup.prefix(tokens[:, :cur_len], zeros), dtype=np.float32)]


def _sample_program(setup: StepwiseSetup, rows: int, prompt: int, L: int, V: int, key_extra: tuple) -> Any:
    from ...ir.trace import trace

    cfg = setup.config
    has_mask = setup.prefix is not None

    def fn(tokens: Any, logits: Any, cur_len: Any, unfinished: Any, key: Any, *mask: Any) -> dict:
        import tensorweave.ir.namespace as xp

        procs = _with_mask(setup.processors, mask[0] if mask else None)
        scores = xp.astype(logits, xp.float32)
        if procs:
            scores = procs(tokens, scores, cur_len)
        if cfg.do_sample:
            if setup.warpers:
                scores = setup.warpers(tokens, scores, cur_len)
            nxt = random.categorical(random.fold_in(key, cur_len), scores)
        else:
            nxt = xp.argmax(scores, axis=-1)
        nxt = xp.where(unfinished, nxt, xp.full_like(nxt, cfg.pad_token_id))
        hit = eos_hit(xp, nxt, _eos(cfg))
        out = {"next_tokens": nxt, "next_unfinished": unfinished & ~hit}
        if cfg.output_scores:
            out["scores"] = scores
        return out

    specs = [
        TensorSpec((rows, L), "int64", "tokens"),
        TensorSpec((rows, V), "float32", "logits"),
        TensorSpec((), "int64", "cur_len"),
        TensorSpec((rows,), "bool", "unfinished"),
        TensorSpec((2,), "uint32", "key"),
    ]
    if has_mask:
        specs.append(TensorSpec((rows, V), "float32", "prefix_mask"))
    # the processors built from the config depend on the prompt length (min_new_tokens, ...)
    key = ("sample-step", setup.backend, rows, prompt, L, V, setup.config_key, has_mask) + key_extra
    return _cached(key, lambda: trace(fn, *specs, name="generate_step"), setup.lower)


def _eos(cfg: Any) -> tuple:
    eos = cfg.eos_token_id
    if eos is None:
        return ()
    return (eos,) if isinstance(eos, int) else tuple(int(e) for e in eos)


def sample_loop(
    model: ModelStep,
    setup: StepwiseSetup,
    ids: np.ndarray,
    mask: np.ndarray,
    key: np.ndarray,
    key_extra: tuple = (),
) -> dict:
    """Greedy or multinomial sampling, step-wise. Returns the fused program's outputs as numpy:
    ``sequences [rows, max_length]``, ``length``, ``steps`` and ``scores [steps, rows, V]``."""
    cfg = setup.config
    rows, prompt = ids.shape
    L = cfg.max_length
    logits = model.prefill(ids, mask)
    V = logits.shape[-1]
    prog = _sample_program(setup, rows, prompt, L, V, key_extra)
    tokens = np.full((rows, L), cfg.pad_token_id, np.int64)
    tokens[:, :prompt] = ids
    unfinished = np.ones((rows,), bool)
    full_mask = mask
    scores: list = []
    cur_len = prompt
    while cur_len < L and unfinished.any():
        args = [tokens, logits, np.asarray(cur_len, np.int64), unfinished, key]
        out = _named(prog, prog(*args, *_prefix_mask(setup, tokens, cur_len, V)))
        nxt = out["next_tokens"].astype(np.int64)
        tokens[:, cur_len] = nxt
        unfinished = out["next_unfinished"].astype(bool)
        if cfg.output_scores:
            scores.append(out["scores"])
        if setup.streamer is not None:
            setup.streamer.put(nxt.copy())
        cur_len += 1
        if cur_len < L and unfinished.any():
            full_mask = np.concatenate([full_mask, np.ones((rows, 1), np.int64)], axis=1)
            logits = model.step(nxt, full_mask)
    res = {"sequences": tokens, "length": np.asarray(cur_len), "steps": np.asarray(cur_len)}
    if cfg.output_scores:
        res["scores"] = np.stack(scores)
    return res


# ---------------------------------------------------------------------------------------- beam search
_STATE = (
    "seqs",
    "scores",
    "beam_idx",
    "hyp_seqs",
    "hyp_scores",
    "hyp_len",
    "hyp_beam_idx",
    "hyp_count",
    "done",
)


def _beam_programs(setup: StepwiseSetup, bcfg: BeamConfig, key_extra: tuple) -> tuple[Any, Any, Any]:
    from ...ir.trace import trace

    cfg = setup.config
    B, n, V, L = bcfg.batch_size, bcfg.num_beams, bcfg.vocab_size, bcfg.max_length
    do_sample = bool(cfg.do_sample)
    has_mask = setup.prefix is not None
    base = (setup.backend, repr(bcfg), setup.config_key, has_mask) + key_extra

    def init(ids: Any) -> dict:
        import tensorweave.ir.namespace as xp

        return beam_init(xp, bcfg, ids, do_sample)

    init_prog = _cached(
        ("beam-init",) + base,
        lambda: trace(init, TensorSpec((B * n, bcfg.prompt_len), "int64", "ids"), name="beam_init"),
        setup.lower,
    )
    if tuple(init_prog.output_names) != _STATE:
        raise RuntimeError(f"beam state names changed: {init_prog.output_names}")
    state_specs = [s.with_name(name) for s, name in zip(init_prog.output_specs, init_prog.output_names)]

    def step(*args: Any) -> dict:
        import tensorweave.ir.namespace as xp

        state = dict(zip(_STATE, args[: len(_STATE)]))
        logits, cur_len, key = args[len(_STATE) : len(_STATE) + 3]
        procs = _with_mask(setup.processors, args[len(_STATE) + 3] if has_mask else None)
        flat = xp.reshape(state["seqs"], (B * n, L))
        logp = xp.log_softmax(xp.astype(logits, xp.float32), axis=-1)
        if procs:
            logp = procs(flat, logp, cur_len)
        candidates = None
        if do_sample:
            if setup.warpers:
                logp = setup.warpers(flat, logp, cur_len)
            total = xp.reshape(xp.reshape(logp, (B, n, V)) + state["scores"][:, :, None], (B, n * V))
            g = random.gumbel(random.fold_in(key, cur_len), tuple(total.shape))
            _, cand = xp.top_k(total + g, 2 * n)
            cand_scores = xp.take_along_axis(total, cand, axis=-1)
            order = xp.argsort(cand_scores, axis=-1, descending=True)
            candidates = (
                xp.take_along_axis(cand_scores, order, axis=-1),
                xp.take_along_axis(cand, order, axis=-1),
            )
        new, rows = beam_step(state, logp, cur_len, bcfg, candidates)
        out = {f"new_{k}": v for k, v in new.items()}  # output names differ from input names (ONNX)
        out["rows"] = rows
        if cfg.output_scores:
            out["logp"] = logp
        return out

    specs = state_specs + [
        TensorSpec((B * n, V), "float32", "logits"),
        TensorSpec((), "int64", "cur_len"),
        TensorSpec((2,), "uint32", "key"),
    ]
    if has_mask:
        specs.append(TensorSpec((B * n, V), "float32", "prefix_mask"))
    step_prog = _cached(("beam-step",) + base, lambda: trace(step, *specs, name="beam_step"), setup.lower)

    def final(*args: Any) -> dict:
        return beam_finalize(dict(zip(_STATE, args[: len(_STATE)])), args[len(_STATE)], bcfg)

    final_prog = _cached(
        ("beam-final",) + base,
        lambda: trace(final, *state_specs, TensorSpec((), "int64", "cur_len"), name="beam_finalize"),
        setup.lower,
    )
    return init_prog, step_prog, final_prog


def beam_loop(
    model: ModelStep,
    setup: StepwiseSetup,
    ids: np.ndarray,
    mask: np.ndarray,
    key: np.ndarray,
    key_extra: tuple = (),
) -> dict:
    """Beam search / beam sampling, step-wise, over ``ids [B, P]`` (repeated per beam here).
    Returns the fused program's outputs as numpy (``sequences``, ``length`` = the output length,
    ``sequences_scores``, ``beam_indices``, ``steps`` and ``scores``)."""
    cfg = setup.config
    n = cfg.num_beams
    B, prompt = ids.shape
    L = cfg.max_length
    ids = np.repeat(ids, n, axis=0)
    mask = np.repeat(mask, n, axis=0)
    logits = model.prefill(ids, mask)
    V = logits.shape[-1]
    eos = _eos(cfg)
    bcfg = BeamConfig(
        batch_size=B,
        num_beams=n,
        vocab_size=V,
        prompt_len=prompt,
        max_length=L,
        eos_token_id=eos or (-1,),
        pad_token_id=cfg.pad_token_id,
        length_penalty=cfg.length_penalty,
        early_stopping=cfg.early_stopping,
        num_return_sequences=cfg.num_return_sequences,
    )
    init_prog, step_prog, final_prog = _beam_programs(setup, bcfg, key_extra)
    state = _named(init_prog, init_prog(ids))
    state = [state[k] for k in init_prog.output_names]
    names = list(init_prog.output_names)
    full_mask = mask
    scores: list = []
    cur_len = prompt
    done = np.zeros((B,), bool)
    while cur_len < L and not done.all():
        seqs = state[names.index("seqs")].reshape(B * n, L)
        extra = _prefix_mask(setup, seqs, cur_len, V)
        out = _named(step_prog, step_prog(*state, logits, np.asarray(cur_len, np.int64), key, *extra))
        state = [out[f"new_{k}"] for k in names]
        done = out["new_done"].astype(bool)
        if cfg.output_scores:
            scores.append(out["logp"])
        cur_len += 1
        if cur_len < L and not done.all():
            model.reorder(out["rows"].astype(np.int64))
            tok = out["new_seqs"].reshape(B * n, L)[:, cur_len - 1].astype(np.int64)
            full_mask = np.concatenate([full_mask, np.ones((B * n, 1), np.int64)], axis=1)
            logits = model.step(tok, full_mask)
    fin = _named(final_prog, final_prog(*state, np.asarray(cur_len, np.int64)))
    res = {
        "sequences": fin["sequences"],
        "length": fin["out_len"],
        "sequences_scores": fin["sequences_scores"],
        "beam_indices": fin["beam_indices"],
        "steps": np.asarray(cur_len),
    }
    if cfg.output_scores:
        res["scores"] = np.stack(scores)
    return res


def clear_cache() -> None:
    """Drop the cached strategy and model-step programs."""
    _PROGRAMS.clear()
    _MODEL_PROGRAMS.clear()


__all__ = [
    "ModelStep",
    "StaticCacheModelStep",
    "StepwiseSetup",
    "sample_loop",
    "beam_loop",
    "group_beam_loop",
    "clear_cache",
]


# ---------------------------------------------------------------------------------------- group beam search
@dataclass(frozen=True)
class _GroupConfig(BeamConfig):
    """One group's BeamConfig: ``num_beams`` is the group size, which may be 1."""

    def __post_init__(self) -> None:
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise ValueError(f"the beam group size must be a positive integer, got {self.num_beams}")


def _group_finalize(xp: Any, states: list, cur_len: Any, gcfg: BeamConfig, n: int, k: int) -> dict:
    """PT 4.37 ``BeamSearchScorer.finalize`` with groups: each unfinished (batch, group) adds its
    running beams to its pool of ``group_size`` hypotheses (keeping the best), then the best ``k``
    of all groups' pools are returned per batch item, with ``eos[0]`` appended to those shorter
    than the output and pad after it. Beam indices are global ``batch * num_beams + beam`` rows."""
    B, gs, L, P = gcfg.batch_size, gcfg.num_beams, gcfg.max_length, gcfg.prompt_len
    pools = {"scores": [], "seqs": [], "lens": [], "bidx": [], "is_hyp": []}
    for g, st in enumerate(states):
        run = st["scores"] / xp.astype(cur_len - P, xp.float32) ** gcfg.length_penalty
        run = xp.where(st["done"][:, None], xp.full_like(run, -math.inf), run)
        scores = xp.concat([st["hyp_scores"], run], axis=1)
        best = xp.argsort(scores, axis=-1, descending=True)[:, :gs]
        run_len = xp.broadcast_to(xp.reshape(xp.astype(cur_len, xp.int64), (1, 1)), (B, gs))
        local = xp.concat([st["hyp_beam_idx"], st["beam_idx"]], axis=1)
        glob = xp.where(local >= 0, (local // gs) * n + g * gs + local % gs, local)
        is_hyp = xp.concat([xp.ones((B, gs), dtype=xp.bool), xp.zeros((B, gs), dtype=xp.bool)], axis=1)
        pools["scores"].append(xp.take_along_axis(scores, best, axis=-1))
        pools["seqs"].append(_gather(xp, xp.concat([st["hyp_seqs"], st["seqs"]], axis=1), best))
        pools["lens"].append(xp.take_along_axis(xp.concat([st["hyp_len"], run_len], axis=1), best, axis=-1))
        pools["bidx"].append(_gather(xp, glob, best))
        pools["is_hyp"].append(xp.take_along_axis(is_hyp, best, axis=-1))
    # HF sorts all groups' hypotheses ascending (stable) and pops the best from the end, so on an exact
    # tie (e.g. the same EOS hypothesis found by several groups) the later group wins: concatenate the
    # groups in reverse order and take a stable descending sort
    allp = {name: xp.concat(v[::-1], axis=1) for name, v in pools.items()}
    best = xp.argsort(allp["scores"], axis=-1, descending=True)[:, :k]
    scores = xp.take_along_axis(allp["scores"], best, axis=-1)
    seqs = _gather(xp, allp["seqs"], best)
    lens = xp.take_along_axis(allp["lens"], best, axis=-1)
    bidx = _gather(xp, allp["bidx"], best)
    is_hyp = xp.take_along_axis(allp["is_hyp"], best, axis=-1)
    out_len = xp.minimum(xp.max(lens) + 1, xp.asarray(L, dtype=xp.int64))
    positions = xp.arange(L)[None, None, :]
    eos_pos = (positions == lens[:, :, None]) & (lens[:, :, None] < out_len)
    seqs = xp.where(
        positions < lens[:, :, None],
        seqs,
        xp.where(eos_pos, xp.full_like(seqs, gcfg.eos_token_id[0]), xp.full_like(seqs, gcfg.pad_token_id)),
    )
    used = lens - P + xp.astype(is_hyp, xp.int64)  # an EOS hypothesis also records the EOS step
    G = bidx.shape[-1]
    bidx = xp.where(xp.arange(G)[None, None, :] < used[:, :, None], bidx, xp.full_like(bidx, -1))
    return {
        "sequences": xp.reshape(seqs, (B * k, L)),
        "sequences_scores": xp.reshape(scores, (B * k,)),
        "beam_indices": xp.reshape(bidx, (B * k, G)),
        "out_len": out_len,
    }


def _gather(xp: Any, x: Any, idx: Any) -> Any:
    ix = xp.reshape(idx, tuple(idx.shape) + (1,) * (x.ndim - 2))
    return xp.take_along_axis(x, xp.broadcast_to(ix, tuple(idx.shape) + tuple(x.shape[2:])), axis=1)


def _group_programs(
    setup: StepwiseSetup, gcfg: BeamConfig, groups: int, key_extra: tuple
) -> tuple[Any, Any, Any]:
    from ...ir.trace import trace

    cfg = setup.config
    B, gs, V, L, P = gcfg.batch_size, gcfg.num_beams, gcfg.vocab_size, gcfg.max_length, gcfg.prompt_len
    n = gs * groups
    has_mask = setup.prefix is not None
    base = (setup.backend, repr(gcfg), groups, setup.config_key, has_mask) + key_extra
    names = [f"g{g}.{k}" for g in range(groups) for k in _STATE]

    def init(ids: Any) -> dict:
        import tensorweave.ir.namespace as xp

        per = xp.reshape(ids, (B, groups, gs, P))
        out = {}
        for g in range(groups):
            st = beam_init(xp, gcfg, xp.reshape(per[:, g], (B * gs, P)), False)
            out.update({f"g{g}.{k}": st[k] for k in _STATE})
        return out

    init_prog = _cached(
        ("group-init",) + base,
        lambda: trace(init, TensorSpec((B * n, P), "int64", "ids"), name="group_beam_init"),
        setup.lower,
    )
    specs = [s.with_name(nm) for s, nm in zip(init_prog.output_specs, init_prog.output_names)]

    def states_of(args: tuple) -> list:
        return [dict(zip(_STATE, args[g * len(_STATE) : (g + 1) * len(_STATE)])) for g in range(groups)]

    def step(*args: Any) -> dict:
        import tensorweave.ir.namespace as xp

        states = states_of(args)
        logits, cur_len = args[len(names) : len(names) + 2]
        mask = xp.reshape(args[len(names) + 2], (B, groups, gs, V)) if has_mask else None
        per_logits = xp.reshape(xp.astype(logits, xp.float32), (B, groups, gs, V))
        chosen: list = []
        out: dict = {}
        rows_all, logp_all = [], []
        for g, st in enumerate(states):
            procs = _with_mask(setup.processors, xp.reshape(mask[:, g], (B * gs, V)) if has_mask else None)
            flat = xp.reshape(st["seqs"], (B * gs, L))
            logp = xp.log_softmax(xp.reshape(per_logits[:, g], (B * gs, V)), axis=-1)
            if procs:
                rest = [xp.zeros((B, gs), dtype=xp.int64)] * (groups - len(chosen))
                current = xp.reshape(xp.stack(chosen + rest, axis=1), (B * n,))
                logp = procs(flat, logp, cur_len, current_tokens=current, beam_group_idx=g)
            new, rows = beam_step(st, logp, cur_len, gcfg)
            pos = xp.broadcast_to(xp.reshape(cur_len, (1, 1)), (B * gs, 1))
            chosen.append(
                xp.reshape(xp.take_along_axis(xp.reshape(new["seqs"], (B * gs, L)), pos, axis=1), (B, gs))
            )
            rows_all.append(xp.reshape((rows // gs) * n + g * gs + rows % gs, (B, gs)))
            logp_all.append(xp.reshape(logp, (B, gs, V)))
            out.update({f"new.g{g}.{k}": new[k] for k in _STATE})
        out["rows"] = xp.reshape(xp.stack(rows_all, axis=1), (B * n,))
        out["next_tokens"] = xp.reshape(xp.stack(chosen, axis=1), (B * n,))
        if cfg.output_scores:
            out["logp"] = xp.reshape(xp.stack(logp_all, axis=1), (B * n, V))
        return out

    step_specs = specs + [TensorSpec((B * n, V), "float32", "logits"), TensorSpec((), "int64", "cur_len")]
    if has_mask:
        step_specs.append(TensorSpec((B * n, V), "float32", "prefix_mask"))
    step_prog = _cached(
        ("group-step",) + base, lambda: trace(step, *step_specs, name="group_beam_step"), setup.lower
    )

    def final(*args: Any) -> dict:
        import tensorweave.ir.namespace as xp

        return _group_finalize(xp, states_of(args), args[len(names)], gcfg, n, cfg.num_return_sequences)

    final_prog = _cached(
        ("group-final",) + base,
        lambda: trace(final, *specs, TensorSpec((), "int64", "cur_len"), name="group_beam_finalize"),
        setup.lower,
    )
    return init_prog, step_prog, final_prog


def group_beam_loop(
    model: ModelStep, setup: StepwiseSetup, ids: np.ndarray, mask: np.ndarray, key_extra: tuple = ()
) -> dict:
    """Group (diverse) beam search, PT 4.37 semantics: the ``num_beams`` beams of each batch item
    form ``num_beam_groups`` groups of ``group_size``; each step the groups are processed in order,
    each one a beam-search step of its own (``max(2, 1 + n_eos) * group_size`` candidates, its own
    hypothesis pool of ``group_size``), with the processors called on the group's rows and
    ``current_tokens`` / ``beam_group_idx`` (HammingDiversity subtracts ``diversity_penalty`` x the
    count of each token chosen this step by earlier groups of the same batch item). Finalize picks
    the best ``num_return_sequences`` across groups. ``scores`` are the per-step processed scores
    of every row; ``beam_indices`` are global rows (4.37 records group-local ones, see spec)."""
    cfg = setup.config
    n, groups = cfg.num_beams, cfg.num_beam_groups
    gs = n // groups
    B, prompt = ids.shape
    L = cfg.max_length
    ids = np.repeat(ids, n, axis=0)
    mask = np.repeat(mask, n, axis=0)
    logits = model.prefill(ids, mask)
    V = logits.shape[-1]
    eos = _eos(cfg)
    gcfg = _GroupConfig(
        batch_size=B,
        num_beams=gs,
        vocab_size=V,
        prompt_len=prompt,
        max_length=L,
        eos_token_id=eos or (-1,),
        pad_token_id=cfg.pad_token_id,
        length_penalty=cfg.length_penalty,
        early_stopping=cfg.early_stopping,
        num_return_sequences=cfg.num_return_sequences,
    )
    init_prog, step_prog, final_prog = _group_programs(setup, gcfg, groups, key_extra)
    names = list(init_prog.output_names)
    state = [np.asarray(a) for a in init_prog(ids)]
    full_mask = mask
    scores: list = []
    cur_len = prompt
    done = np.zeros((B * groups,), bool)
    while cur_len < L and not done.all():
        extra = []
        if setup.prefix is not None:  # per group, as HF calls the processors on each group's rows
            per = [
                _prefix_mask(setup, state[names.index(f"g{g}.seqs")].reshape(B * gs, L), cur_len, V)[0]
                for g in range(groups)
            ]
            extra = [np.stack([m.reshape(B, gs, V) for m in per], axis=1).reshape(B * n, V)]
        out = _named(step_prog, step_prog(*state, logits, np.asarray(cur_len, np.int64), *extra))
        state = [out[f"new.{k}"] for k in names]
        done = np.concatenate([out[f"new.g{g}.done"] for g in range(groups)]).astype(bool)
        if cfg.output_scores:
            scores.append(out["logp"])
        cur_len += 1
        if cur_len < L and not done.all():
            model.reorder(out["rows"].astype(np.int64))
            full_mask = np.concatenate([full_mask, np.ones((B * n, 1), np.int64)], axis=1)
            logits = model.step(out["next_tokens"].astype(np.int64), full_mask)
    fin = _named(final_prog, final_prog(*state, np.asarray(cur_len, np.int64)))
    res = {
        "sequences": fin["sequences"],
        "length": fin["out_len"],
        "sequences_scores": fin["sequences_scores"],
        "beam_indices": fin["beam_indices"],
        "steps": np.asarray(cur_len),
    }
    if cfg.output_scores:
        res["scores"] = np.stack(scores)
    return res


class Seq2SeqModelStep:
    """A tensorweave encoder-decoder ``Model`` (T5) step-wise, with the fused path's functions
    (``decode.seq2seq_start`` / ``seq2seq_step``): a prefill program runs the encoder on the
    encoder inputs repeated to the loop's rows, builds the static self-attention cache and the
    cross-attention keys/values and decodes the start token; a step program decodes one token.
    ``prefill(ids, mask)`` gets the decoder start column ``[rows, 1]`` (its mask is ignored: the
    decoder attends causally, as in the fused loop)."""

    def __init__(
        self,
        model: Any,
        backend: str,
        max_length: int,
        lower: Callable[[Any], Any],
        enc_ids: np.ndarray,
        enc_mask: np.ndarray,
    ):
        self.model, self.backend, self.max_length, self.lower = model, backend, max_length, lower
        self.enc_ids, self.enc_mask = enc_ids, enc_mask
        self.state: list = []
        self.cur_len = 0
        self.step_prog: Any = None

    def _programs(self, rows: int) -> tuple[Any, Any]:
        from ...ir.trace import constant, trace
        from ..models import t5
        from .decode import seq2seq_start, seq2seq_step

        m, L = self.model, self.max_length
        cfg = m.config
        n = cfg.num_decoder_layers
        B, S = self.enc_ids.shape
        rep = rows // B

        def params() -> dict:
            return {k: constant(v, name=k) for k, v in m.params.items()}

        def flat(cache: dict, enc_mask: Any) -> dict:
            out = {
                f"new.self.{kind}.{i}": cache["self"][kind][i] for kind in ("key", "value") for i in range(n)
            }
            out.update({f"new.cross.{j}.{i}": cache["cross"][i][j] for j in range(2) for i in range(n)})
            out["new.enc_mask"] = enc_mask
            return out

        def unflat(arrays: tuple) -> tuple:
            self_c = {"key": list(arrays[:n]), "value": list(arrays[n : 2 * n])}
            cross = list(zip(arrays[2 * n : 3 * n], arrays[3 * n : 4 * n]))
            return {"self": self_c, "cross": cross}, arrays[4 * n]

        def prefill(enc_ids: Any, enc_mask: Any, start: Any) -> dict:
            import tensorweave.ir.namespace as xp

            P = params()
            cache, mask_rows = seq2seq_start(t5.encode, t5.init_cache, P, cfg, enc_ids, enc_mask, rep, L)
            logits, cache = seq2seq_step(t5.decode, P, cfg, mask_rows)(
                start, xp.asarray(1, dtype=xp.int64), cache
            )
            return {"logits": logits, **flat(cache, mask_rows)}

        def step(tokens: Any, cur_len: Any, *arrays: Any) -> dict:
            cache, mask_rows = unflat(arrays)
            logits, cache = seq2seq_step(t5.decode, params(), cfg, mask_rows)(tokens, cur_len, cache)
            return {"logits": logits, **flat(cache, mask_rows)}

        base = ("seq2seq-model", self.backend, rows, B, S, L)
        store = _MODEL_PROGRAMS.setdefault(m, {})
        pre = _cached(
            base + ("prefill",),
            lambda: trace(
                prefill,
                TensorSpec((B, S), "int64", "enc_ids"),
                TensorSpec((B, S), "int64", "enc_mask"),
                TensorSpec((rows, 1), "int64", "start"),
                name=f"{cfg.model_type}_seq2seq_prefill",
            ),
            self.lower,
            store,
        )
        sk = TensorSpec((rows, cfg.num_heads, L, cfg.d_kv), "float32")
        ck = TensorSpec((rows, cfg.num_heads, S, cfg.d_kv), "float32")
        specs = [TensorSpec((rows, L), "int64", "tokens"), TensorSpec((), "int64", "cur_len")]
        specs += [sk.with_name(f"self.{kind}.{i}") for kind in ("key", "value") for i in range(n)]
        specs += [ck.with_name(f"cross.{j}.{i}") for j in range(2) for i in range(n)]
        specs.append(TensorSpec((rows, S), "int64", "enc_mask_rows"))
        stp = _cached(
            base + ("step",),
            lambda: trace(step, *specs, name=f"{cfg.model_type}_seq2seq_step"),
            self.lower,
            store,
        )
        return pre, stp

    def prefill(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        rows = ids.shape[0]
        pre, self.step_prog = self._programs(rows)
        outs = pre(self.enc_ids, self.enc_mask, ids.astype(np.int64))
        self.state = [np.asarray(o) for o in outs[1:]]
        self.tokens = np.zeros((rows, self.max_length), np.int64)
        self.tokens[:, 0] = ids[:, 0]
        self.cur_len = 1
        return np.asarray(outs[0]).astype(np.float32)

    def step(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.tokens[:, self.cur_len] = tokens
        self.cur_len += 1
        outs = self.step_prog(self.tokens, np.asarray(self.cur_len, np.int64), *self.state)
        self.state = [np.asarray(o) for o in outs[1:]]
        return np.asarray(outs[0]).astype(np.float32)

    def reorder(self, rows: np.ndarray) -> None:
        self.state = [np.take(s, rows, axis=0) for s in self.state]
        self.tokens = np.take(self.tokens, rows, axis=0)
