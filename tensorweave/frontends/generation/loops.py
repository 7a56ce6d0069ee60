"""Decode loops written once: greedy, multinomial sampling and beam search as traced while_loops
(``*_traced``: they run inside a program; the host loops of step-wise generation are the ``run_*``
functions of ``tensorweave.generation.stepwise``).

The model enters through a *step function* ``step(tokens, cur_len, cache) -> (logits, cache)``:
``tokens`` is the ``[rows, max_length]`` token buffer (positions >= cur_len unused), ``cur_len``
an int64 scalar (the number of filled positions), ``logits`` the ``[rows, vocab]`` next-token
logits at position ``cur_len - 1``; ``cache`` is any pytree the model carries (static KV cache).
For beam search, ``reorder(cache, rows)`` gathers cache rows after each step.

Scores per step are written into a ``[steps, rows, vocab]`` buffer when ``output_scores``.
Finished rows (eos seen) emit ``pad_token_id``; the loop stops early when every row is finished
or ``cur_len == max_length`` (the PT stopping rules).
"""

from __future__ import annotations

from typing import Any, Callable

from ...ir import array_namespace, random
from ...ir.control import while_loop
from .beam_search import BeamConfig, beam_finalize, beam_init, beam_step, eos_hit

StepFn = Callable[[Any, Any, Any], tuple[Any, Any]]


def sample_loop_traced(
    step: StepFn,
    input_ids: Any,
    cache: Any,
    *,
    max_length: int,
    eos_token_id: tuple[int, ...],
    pad_token_id: int,
    processors: Any = None,
    warpers: Any = None,
    do_sample: bool = False,
    key: Any = None,
    output_scores: bool = False,
    vocab_size: int | None = None,
) -> dict:
    """Greedy (``do_sample=False``) or multinomial sampling; returns ``sequences [rows, max_length]``,
    ``length`` (the final cur_len) and ``scores [max_length - prompt, rows, vocab]`` if requested.
    Sampling draws with the IR RNG: step t uses ``fold_in(key, t)`` and a categorical draw."""
    xp = array_namespace(input_ids)
    rows, prompt = input_ids.shape
    buf = xp.full((rows, max_length), pad_token_id, dtype=xp.int64)
    buf = xp.dynamic_update_slice(buf, xp.astype(input_ids, xp.int64), [0, 0])
    unfinished = xp.ones((rows,), dtype=xp.bool)
    steps = max(max_length - prompt, 1)
    state = {
        "cur_len": xp.asarray(prompt, dtype=xp.int64),
        "tokens": buf,
        "unfinished": unfinished,
        "cache": cache,
    }
    if output_scores:
        if vocab_size is None:
            raise ValueError("output_scores needs vocab_size (the scores buffer is preallocated)")
        state["scores"] = xp.zeros((steps, rows, vocab_size), dtype=xp.float32)

    def body(s: dict) -> dict:
        logits, new_cache = step(s["tokens"], s["cur_len"], s["cache"])
        scores = xp.astype(logits, xp.float32)
        if processors is not None:
            scores = processors(s["tokens"], scores, s["cur_len"])
        if do_sample:
            if warpers is not None:
                scores = warpers(s["tokens"], scores, s["cur_len"])
            k = random.fold_in(key, s["cur_len"])
            nxt = random.categorical(k, scores)
        else:
            nxt = xp.argmax(scores, axis=-1)
        nxt = xp.where(s["unfinished"], nxt, xp.full_like(nxt, pad_token_id))
        pos = (xp.arange(max_length) == s["cur_len"])[None, :]
        tokens = xp.where(pos, nxt[:, None], s["tokens"])
        unfinished = s["unfinished"] & ~eos_hit(xp, nxt, eos_token_id)
        out = {"cur_len": s["cur_len"] + 1, "tokens": tokens, "unfinished": unfinished, "cache": new_cache}
        if output_scores:
            out["scores"] = xp.dynamic_update_slice(s["scores"], scores[None], [s["cur_len"] - prompt, 0, 0])
        return out

    def cond(s: dict) -> Any:
        return (s["cur_len"] < max_length) & xp.any(s["unfinished"])

    final = while_loop(cond, body, state)
    out = {"sequences": final["tokens"], "length": final["cur_len"]}
    if output_scores:
        out["scores"] = final["scores"]
    return out


def beam_search_loop_traced(
    step: StepFn,
    reorder: Callable[[Any, Any], Any],
    input_ids: Any,
    cache: Any,
    cfg: BeamConfig,
    processors: Any = None,
    warpers: Any = None,
    do_sample: bool = False,
    key: Any = None,
    output_scores: bool = False,
) -> dict:
    """Beam search (or beam sampling) over a ``[B*n, prompt]`` input already expanded per beam.

    Beam sampling (PT): the candidates are ``2n`` draws without replacement from
    ``softmax(cumulative scores)`` (Gumbel-top-k with the IR RNG), sorted by score."""
    xp = array_namespace(input_ids)
    B, n = cfg.batch_size, cfg.num_beams
    state = {
        "cur_len": xp.asarray(cfg.prompt_len, dtype=xp.int64),
        "beam": beam_init(xp, cfg, input_ids, do_sample),
        "cache": cache,
    }
    if output_scores:
        state["scores"] = xp.zeros((max(cfg.gen_len, 1), B * n, cfg.vocab_size), dtype=xp.float32)

    def body(s: dict) -> dict:
        flat = xp.reshape(s["beam"]["seqs"], (B * n, cfg.max_length))
        logits, new_cache = step(flat, s["cur_len"], s["cache"])
        logp = xp.log_softmax(xp.astype(logits, xp.float32), axis=-1)
        if processors is not None:
            logp = processors(flat, logp, s["cur_len"])
        candidates = None
        if do_sample:
            if warpers is not None:
                logp = warpers(flat, logp, s["cur_len"])
            total = xp.reshape(
                xp.reshape(logp, (B, n, cfg.vocab_size)) + s["beam"]["scores"][:, :, None],
                (B, n * cfg.vocab_size),
            )
            g = random.gumbel(random.fold_in(key, s["cur_len"]), tuple(total.shape))
            _, cand_ids = xp.top_k(total + g, 2 * n)
            cand_scores = xp.take_along_axis(total, cand_ids, axis=-1)
            order = xp.argsort(cand_scores, axis=-1, descending=True)
            candidates = (
                xp.take_along_axis(cand_scores, order, axis=-1),
                xp.take_along_axis(cand_ids, order, axis=-1),
            )
        new_beam, rows = beam_step(s["beam"], logp, s["cur_len"], cfg, candidates)
        out = {"cur_len": s["cur_len"] + 1, "beam": new_beam, "cache": reorder(new_cache, rows)}
        if output_scores:
            out["scores"] = xp.dynamic_update_slice(
                s["scores"], logp[None], [s["cur_len"] - cfg.prompt_len, 0, 0]
            )
        return out

    def cond(s: dict) -> Any:
        return (s["cur_len"] < cfg.max_length) & ~xp.all(s["beam"]["done"])

    final = while_loop(cond, body, state)
    out = beam_finalize(final["beam"], final["cur_len"], cfg)
    out["length"] = final["cur_len"]
    if output_scores:
        out["scores"] = final["scores"]
    return out
