"""Step-wise generation: host loops (``run_*``) around compiled per-step strategy programs.

The model runs one step at a time through a *model step* (:class:`StaticCacheModelStep` for a
tensorweave decoder: the fused loop's own prefill and one-token step over a static cache, each
lowered once; :class:`Seq2SeqModelStep` for T5; ``native.NativeModelStep`` for any callable with
Hugging Face's causal-LM convention, such as a live ``transformers`` model). Everything that chooses
tokens runs in small strategy programs whose traced bodies are written once in
``frontends/generation/steps.py`` (and ``contrastive.py``). All programs come from the one cache
(``programs.PROGRAMS``), owned by the model.

``prefix_allowed_tokens_fn`` is a host callback: each step the host calls it on the concrete ids
(``ids[row, :cur_len]`` as a numpy int64 array) and feeds the resulting 0/-inf mask into the
program, where it is added at the processor list position Hugging Face gives it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from ..frontends.generation import steps
from ..frontends.generation.beam_search import beam_finalize, beam_init
from ..ir.types import TensorSpec
from .plan import GenerationPlan
from .programs import PROGRAMS, Backend


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


def _params(model: Any) -> dict:
    from ..frontends.models.weights import bind_params

    return bind_params(model.params)


class StaticCacheModelStep:
    """A tensorweave decoder model through two programs over a static ``[rows, kv_heads,
    max_length, head_dim]`` cache (the fused loop's own ``decode.prefill`` and ``decode.token_step``):
    shapes never change, so each program is lowered once per (backend, rows, prompt, max_length),
    and the logits are those of the fused program. The mask passed to the model is the prompt mask
    followed by ones up to ``max_length`` (as in the fused loop).

    ``hidden=True`` (contrastive search) also returns the last hidden state (after the final
    norm): ``[rows, prompt, H]`` from ``prefill``, ``[rows, H]`` from ``step``; a step may run on
    more rows than the prompt had once :meth:`reorder` has repeated them."""

    def __init__(self, model: Any, backend: Backend, max_length: int):
        self.model, self.backend, self.max_length = model, backend, max_length
        self.cache: list = []
        self.full_mask: np.ndarray | None = None
        self.cur_len = 0

    def _flat(self, cache: dict) -> dict:
        n = self.model.config.num_hidden_layers
        out = {f"new.key.{i}": cache["key"][i] for i in range(n)}
        out.update({f"new.value.{i}": cache["value"][i] for i in range(n)})
        return out

    def _program(self, kind: str, shapes: tuple, build: Any) -> Any:
        return PROGRAMS.get(self.model, self.backend, kind, shapes, None, None, build)

    def _prefill_program(self, rows: int, prompt: int, hidden: bool) -> Any:
        from ..frontends.generation.decode import prefill
        from ..ir.trace import trace

        m, L = self.model, self.max_length
        cfg = m.config

        def fn(ids: Any, mask: Any) -> dict:
            res = prefill(m.forward, _params(m), cfg, ids, mask, L, hidden=hidden)
            return {"logits": res[0], **self._flat(res[1]), **({"hidden": res[3]} if hidden else {})}

        specs = (TensorSpec((rows, prompt), "int64", "ids"), TensorSpec((rows, prompt), "int64", "mask"))
        return self._program(
            "static-prefill",
            (rows, prompt, L, hidden),
            lambda: trace(fn, *specs, name=f"{cfg.model_type}_prefill"),
        )

    def _step_program(self, rows: int, hidden: bool) -> Any:
        from ..frontends.generation.decode import token_step
        from ..ir.trace import trace

        m, L = self.model, self.max_length
        cfg = m.config
        n = cfg.num_hidden_layers

        def fn(tok: Any, full_mask: Any, cur_len: Any, *cache: Any) -> dict:
            c = {"key": list(cache[:n]), "value": list(cache[n:])}
            res = token_step(m.forward, _params(m), cfg, tok, full_mask, c, cur_len, hidden=hidden)
            return {"logits": res[0], **self._flat(res[1]), **({"hidden": res[2]} if hidden else {})}

        kv = TensorSpec((rows, cfg.num_key_value_heads, L, cfg.head_dim), "float32")
        specs = [
            TensorSpec((rows,), "int64", "tok"),
            TensorSpec((rows, L), "int64", "full_mask"),
            TensorSpec((), "int64", "cur_len"),
        ]
        specs += [kv.with_name(f"cache.{kind}.{i}") for kind in ("key", "value") for i in range(n)]
        return self._program(
            "static-step",
            (rows, L, hidden),
            lambda: trace(fn, *specs, name=f"{cfg.model_type}_static_step"),
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


class Seq2SeqModelStep:
    """A tensorweave encoder-decoder model (T5, the BART family) step-wise, with the fused path's functions
    (``decode.seq2seq_start`` / ``seq2seq_step``): a prefill program runs the encoder on the
    encoder inputs repeated to the loop's rows, builds the static self-attention cache and the
    cross-attention keys/values and decodes the start token; a step program decodes one token.
    ``prefill(ids, mask)`` gets the decoder start column ``[rows, 1]`` (its mask is ignored: the
    decoder attends causally, as in the fused loop)."""

    def __init__(
        self, model: Any, backend: Backend, max_length: int, enc_ids: np.ndarray, enc_mask: np.ndarray
    ):
        self.model, self.backend, self.max_length = model, backend, max_length
        self.enc_ids, self.enc_mask = enc_ids, enc_mask
        self.state: list = []
        self.cur_len = 0
        self.step_prog: Any = None

    def _programs(self, rows: int) -> tuple[Any, Any]:
        from ..frontends.generation.decode import seq2seq_start, seq2seq_step
        from ..ir.trace import trace

        m, L = self.model, self.max_length
        arch = m.seq2seq_module  # t5 or bart: the same encode / decode / init_cache contract
        cfg = m.config
        n = cfg.num_decoder_layers
        B, S = self.enc_mask.shape  # S: encoder output positions (whisper: its frames after the convolutions)
        rep = rows // B
        # the encoder input: ids [B, S], or whisper's float input_features [B, mel, frames]
        enc_in = TensorSpec(
            tuple(self.enc_ids.shape), "float32" if self.enc_ids.dtype.kind == "f" else "int64"
        )

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

            P = _params(m)
            cache, mask_rows = seq2seq_start(arch.encode, arch.init_cache, P, cfg, enc_ids, enc_mask, rep, L)
            logits, cache = seq2seq_step(arch.decode, P, cfg, mask_rows)(
                start, xp.asarray(1, dtype=xp.int64), cache
            )
            return {"logits": logits, **flat(cache, mask_rows)}

        def step(tokens: Any, cur_len: Any, *arrays: Any) -> dict:
            cache, mask_rows = unflat(arrays)
            logits, cache = seq2seq_step(arch.decode, _params(m), cfg, mask_rows)(tokens, cur_len, cache)
            return {"logits": logits, **flat(cache, mask_rows)}

        shapes = (rows, B, S, L)
        pre = PROGRAMS.get(
            m,
            self.backend,
            "seq2seq-prefill",
            shapes,
            None,
            None,
            lambda: trace(
                prefill,
                enc_in.with_name("enc_ids"),
                TensorSpec((B, S), "int64", "enc_mask"),
                TensorSpec((rows, 1), "int64", "start"),
                name=f"{cfg.model_type}_seq2seq_prefill",
            ),
        )
        sk = TensorSpec((rows, cfg.num_heads, L, cfg.d_kv), "float32")
        ck = TensorSpec((rows, cfg.num_heads, S, cfg.d_kv), "float32")
        specs = [TensorSpec((rows, L), "int64", "tokens"), TensorSpec((), "int64", "cur_len")]
        specs += [sk.with_name(f"self.{kind}.{i}") for kind in ("key", "value") for i in range(n)]
        specs += [ck.with_name(f"cross.{j}.{i}") for j in range(2) for i in range(n)]
        specs.append(TensorSpec((rows, S), "int64", "enc_mask_rows"))
        stp = PROGRAMS.get(
            m,
            self.backend,
            "seq2seq-step",
            shapes,
            None,
            None,
            lambda: trace(step, *specs, name=f"{cfg.model_type}_seq2seq_step"),
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


# ---------------------------------------------------------------------------------------- a run
@dataclasses.dataclass
class StepRun:
    """What a host loop needs besides the model step: the plan, the backend, the owner of the
    programs (the model), the processors (encoder ids bound), the custom-processor part of the
    program keys and the streamer."""

    plan: GenerationPlan
    backend: Backend
    owner: Any
    processors: Any
    custom_key: Any
    streamer: Any = None

    def program(self, kind: str, shapes: tuple, build: Any) -> Any:
        return PROGRAMS.get(self.owner, self.backend, kind, shapes, self.plan.key, self.custom_key, build)

    def prefix_mask(self, tokens: np.ndarray, cur_len: int, vocab: int) -> list:
        """The host prefix mask input (``[]`` without ``prefix_allowed_tokens_fn``)."""
        if self.plan.prefix is None:
            return []
        zeros = np.zeros((tokens.shape[0], vocab), np.float32)
        return [np.asarray(self.plan.prefix(tokens[:, :cur_len], zeros), dtype=np.float32)]


def named(prog: Any, outs: Any) -> dict:
    """A program's outputs as numpy arrays by name."""
    outs = outs if isinstance(outs, tuple) else (outs,)
    return {n: np.asarray(o) for n, o in zip(prog.output_names, outs)}


# ---------------------------------------------------------------------------------------- greedy / sampling
def _sample_program(run: StepRun, rows: int, prompt: int, L: int, V: int) -> Any:
    from ..ir.trace import trace

    plan = run.plan
    has_mask = plan.prefix is not None

    def fn(tokens: Any, logits: Any, cur_len: Any, unfinished: Any, key: Any, *mask: Any) -> dict:
        import tensorweave.ir.namespace as xp

        return steps.sample_step(
            xp,
            tokens,
            logits,
            cur_len,
            unfinished,
            key,
            processors=steps.with_mask(run.processors, mask[0] if mask else None),
            warpers=plan.warpers,
            do_sample=plan.do_sample,
            pad_token_id=plan.pad,
            eos_token_id=plan.eos,
            output_scores=plan.output_scores,
        )

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
    return run.program("sample-step", (rows, prompt, L, V), lambda: trace(fn, *specs, name="generate_step"))


def run_sample(model: ModelStep, run: StepRun, ids: np.ndarray, mask: np.ndarray, key: np.ndarray) -> dict:
    """Greedy or multinomial sampling, step-wise. Returns the fused program's outputs as numpy:
    ``sequences [rows, max_length]``, ``length``, ``steps`` and ``scores [steps, rows, V]``."""
    plan = run.plan
    rows, prompt = ids.shape
    L = plan.max_length
    logits = model.prefill(ids, mask)
    V = logits.shape[-1]
    prog = _sample_program(run, rows, prompt, L, V)
    tokens = np.full((rows, L), plan.pad, np.int64)
    tokens[:, :prompt] = ids
    unfinished = np.ones((rows,), bool)
    full_mask = mask
    scores: list = []
    cur_len = prompt
    while cur_len < L and unfinished.any():
        args = [tokens, logits, np.asarray(cur_len, np.int64), unfinished, key]
        out = named(prog, prog(*args, *run.prefix_mask(tokens, cur_len, V)))
        nxt = out["next_tokens"].astype(np.int64)
        tokens[:, cur_len] = nxt
        unfinished = out["next_unfinished"].astype(bool)
        if plan.output_scores:
            scores.append(out["scores"])
        if run.streamer is not None:
            run.streamer.put(nxt.copy())
        cur_len += 1
        if cur_len < L and unfinished.any():
            full_mask = np.concatenate([full_mask, np.ones((rows, 1), np.int64)], axis=1)
            logits = model.step(nxt, full_mask)
    res = {"sequences": tokens, "length": np.asarray(cur_len), "steps": np.asarray(cur_len)}
    if plan.output_scores:
        res["scores"] = np.stack(scores)
    return res


# ---------------------------------------------------------------------------------------- beam search
def _beam_programs(run: StepRun, bcfg: Any) -> tuple[Any, Any, Any]:
    from ..ir.trace import trace

    plan = run.plan
    B, n, V = bcfg.batch_size, bcfg.num_beams, bcfg.vocab_size
    has_mask = plan.prefix is not None
    state_names = steps.BEAM_STATE
    shapes = (repr(bcfg),)

    def init(ids: Any) -> dict:
        import tensorweave.ir.namespace as xp

        return beam_init(xp, bcfg, ids, plan.do_sample)

    init_prog = run.program(
        "beam-init",
        shapes,
        lambda: trace(init, TensorSpec((B * n, bcfg.prompt_len), "int64", "ids"), name="beam_init"),
    )
    if tuple(init_prog.output_names) != state_names:
        raise RuntimeError(f"beam state names changed: {init_prog.output_names}")
    state_specs = [s.with_name(name) for s, name in zip(init_prog.output_specs, init_prog.output_names)]

    def step(*args: Any) -> dict:
        import tensorweave.ir.namespace as xp

        k = len(state_names)
        state = dict(zip(state_names, args[:k]))
        logits, cur_len, key = args[k : k + 3]
        return steps.beam_search_step(
            xp,
            state,
            logits,
            cur_len,
            key,
            bcfg,
            processors=steps.with_mask(run.processors, args[k + 3] if has_mask else None),
            warpers=plan.warpers,
            do_sample=plan.do_sample,
            output_scores=plan.output_scores,
        )

    specs = state_specs + [
        TensorSpec((B * n, V), "float32", "logits"),
        TensorSpec((), "int64", "cur_len"),
        TensorSpec((2,), "uint32", "key"),
    ]
    if has_mask:
        specs.append(TensorSpec((B * n, V), "float32", "prefix_mask"))
    step_prog = run.program("beam-step", shapes, lambda: trace(step, *specs, name="beam_step"))

    def final(*args: Any) -> dict:
        k = len(state_names)
        return beam_finalize(dict(zip(state_names, args[:k])), args[k], bcfg)

    final_prog = run.program(
        "beam-final",
        shapes,
        lambda: trace(final, *state_specs, TensorSpec((), "int64", "cur_len"), name="beam_finalize"),
    )
    return init_prog, step_prog, final_prog


def run_beam(model: ModelStep, run: StepRun, ids: np.ndarray, mask: np.ndarray, key: np.ndarray) -> dict:
    """Beam search / beam sampling, step-wise, over ``ids [B, P]`` (repeated per beam here).
    Returns the fused program's outputs as numpy (``sequences``, ``length`` = the output length,
    ``sequences_scores``, ``beam_indices``, ``steps`` and ``scores``)."""
    plan = run.plan
    n = plan.num_beams
    B, prompt = ids.shape
    L = plan.max_length
    ids = np.repeat(ids, n, axis=0)
    mask = np.repeat(mask, n, axis=0)
    logits = model.prefill(ids, mask)
    V = logits.shape[-1]
    init_prog, step_prog, final_prog = _beam_programs(run, plan.beam_for_vocab(V))
    state = named(init_prog, init_prog(ids))
    state = [state[k] for k in init_prog.output_names]
    names = list(init_prog.output_names)
    full_mask = mask
    scores: list = []
    cur_len = prompt
    done = np.zeros((B,), bool)
    while cur_len < L and not done.all():
        seqs = state[names.index("seqs")].reshape(B * n, L)
        extra = run.prefix_mask(seqs, cur_len, V)
        out = named(step_prog, step_prog(*state, logits, np.asarray(cur_len, np.int64), key, *extra))
        state = [out[f"new_{k}"] for k in names]
        done = out["new_done"].astype(bool)
        if plan.output_scores:
            scores.append(out["logp"])
        cur_len += 1
        if cur_len < L and not done.all():
            model.reorder(out["rows"].astype(np.int64))
            tok = out["new_seqs"].reshape(B * n, L)[:, cur_len - 1].astype(np.int64)
            full_mask = np.concatenate([full_mask, np.ones((B * n, 1), np.int64)], axis=1)
            logits = model.step(tok, full_mask)
    fin = named(final_prog, final_prog(*state, np.asarray(cur_len, np.int64)))
    res = {
        "sequences": fin["sequences"],
        "length": fin["out_len"],
        "sequences_scores": fin["sequences_scores"],
        "beam_indices": fin["beam_indices"],
        "steps": np.asarray(cur_len),
    }
    if plan.output_scores:
        res["scores"] = np.stack(scores)
    return res


# ---------------------------------------------------------------------------------------- group beam search
def _group_programs(run: StepRun, gcfg: Any, groups: int) -> tuple[Any, Any, Any]:
    from ..ir.trace import trace

    plan = run.plan
    B, gs, V, P = gcfg.batch_size, gcfg.num_beams, gcfg.vocab_size, gcfg.prompt_len
    n = gs * groups
    has_mask = plan.prefix is not None
    shapes = (repr(gcfg), groups)
    names = steps.group_state_names(groups)

    def init(ids: Any) -> dict:
        import tensorweave.ir.namespace as xp

        return steps.group_beam_init(xp, gcfg, groups, ids)

    init_prog = run.program(
        "group-init",
        shapes,
        lambda: trace(init, TensorSpec((B * n, P), "int64", "ids"), name="group_beam_init"),
    )
    specs = [s.with_name(nm) for s, nm in zip(init_prog.output_specs, init_prog.output_names)]

    def step(*args: Any) -> dict:
        import tensorweave.ir.namespace as xp

        logits, cur_len = args[len(names) : len(names) + 2]
        return steps.group_beam_step(
            xp,
            steps.group_states(args, groups),
            logits,
            cur_len,
            args[len(names) + 2] if has_mask else None,
            gcfg,
            groups,
            processors=run.processors,
            output_scores=plan.output_scores,
        )

    step_specs = specs + [TensorSpec((B * n, V), "float32", "logits"), TensorSpec((), "int64", "cur_len")]
    if has_mask:
        step_specs.append(TensorSpec((B * n, V), "float32", "prefix_mask"))
    step_prog = run.program("group-step", shapes, lambda: trace(step, *step_specs, name="group_beam_step"))

    def final(*args: Any) -> dict:
        import tensorweave.ir.namespace as xp

        return steps.group_beam_finalize(
            xp, steps.group_states(args, groups), args[len(names)], gcfg, n, plan.num_return_sequences
        )

    final_prog = run.program(
        "group-final",
        shapes,
        lambda: trace(final, *specs, TensorSpec((), "int64", "cur_len"), name="group_beam_finalize"),
    )
    return init_prog, step_prog, final_prog


def run_group_beam(model: ModelStep, run: StepRun, ids: np.ndarray, mask: np.ndarray) -> dict:
    """Group (diverse) beam search with Transformers 4.37's PyTorch semantics: the ``num_beams``
    beams of each batch item form ``num_beam_groups`` groups of ``group_size``; each step the groups
    are processed in order, each one a beam-search step of its own (``max(2, 1 + n_eos) *
    group_size`` candidates, its own hypothesis pool of ``group_size``), with the processors called
    on the group's rows and ``current_tokens`` / ``beam_group_idx`` (HammingDiversity subtracts
    ``diversity_penalty`` x the count of each token chosen this step by earlier groups of the same
    batch item). Finalize picks the best ``num_return_sequences`` across groups. ``scores`` are the
    per-step processed scores of every row; ``beam_indices`` are global rows (4.37 records
    group-local ones, see spec/generation.md)."""
    plan = run.plan
    n, groups = plan.num_beams, plan.num_beam_groups
    gs = n // groups
    B, prompt = ids.shape
    L = plan.max_length
    ids = np.repeat(ids, n, axis=0)
    mask = np.repeat(mask, n, axis=0)
    logits = model.prefill(ids, mask)
    V = logits.shape[-1]
    init_prog, step_prog, final_prog = _group_programs(run, plan.beam_for_vocab(V), groups)
    names = list(init_prog.output_names)
    state = [np.asarray(a) for a in init_prog(ids)]
    full_mask = mask
    scores: list = []
    cur_len = prompt
    done = np.zeros((B * groups,), bool)
    while cur_len < L and not done.all():
        extra = []
        if plan.prefix is not None:  # per group, as HF calls the processors on each group's rows
            per = [
                run.prefix_mask(state[names.index(f"g{g}.seqs")].reshape(B * gs, L), cur_len, V)[0]
                for g in range(groups)
            ]
            extra = [np.stack([m.reshape(B, gs, V) for m in per], axis=1).reshape(B * n, V)]
        out = named(step_prog, step_prog(*state, logits, np.asarray(cur_len, np.int64), *extra))
        state = [out[f"new.{k}"] for k in names]
        done = np.concatenate([out[f"new.g{g}.done"] for g in range(groups)]).astype(bool)
        if plan.output_scores:
            scores.append(out["logp"])
        cur_len += 1
        if cur_len < L and not done.all():
            model.reorder(out["rows"].astype(np.int64))
            full_mask = np.concatenate([full_mask, np.ones((B * n, 1), np.int64)], axis=1)
            logits = model.step(out["next_tokens"].astype(np.int64), full_mask)
    fin = named(final_prog, final_prog(*state, np.asarray(cur_len, np.int64)))
    res = {
        "sequences": fin["sequences"],
        "length": fin["out_len"],
        "sequences_scores": fin["sequences_scores"],
        "beam_indices": fin["beam_indices"],
        "steps": np.asarray(cur_len),
    }
    if plan.output_scores:
        res["scores"] = np.stack(scores)
    return res
