"""Contrastive search (Su et al. 2022, Hugging Face's ``penalty_alpha`` / ``top_k`` mode), written once.

Each step, from the next-token logits of every row:

1. ``scores = processors(tokens, logits)`` (the logits processors only: Hugging Face's
   ``generate()`` passes no warpers to contrastive search), ``p = softmax(scores)``,
   ``top_k_probs, top_k_ids = top_k(p, k)``;
2. the model runs the ``k`` candidates of each row (``rows * k`` one-token rows over a copy of the
   row's cache), giving each candidate's last hidden state ``h_c`` (after the final norm) and the
   logits that follow it;
3. the degeneration penalty of a candidate is its largest cosine similarity with the hidden states
   of the row's context (the prompt and the tokens chosen so far, padding excluded):
   ``penalty_c = max_j cos(h_c, h_j)``; the chosen candidate is
   ``argmax_c((1 - alpha) * top_k_probs_c - alpha * penalty_c)`` (first index on ties);
4. the chosen candidate's token, cache, logits and hidden state become the row's; finished rows
   emit ``pad_token_id``.

``scores`` (with ``output_scores``) are the processed logits of step 1, as for greedy search.
Padding positions of a left-padded prompt are excluded from the penalty (Hugging Face 4.37 left
them in, later releases mask them: spec/generation.md).
"""

from __future__ import annotations

from typing import Any, Callable

from ...ir import array_namespace
from ...ir.control import while_loop
from .beam_search import eos_hit
from .decode import prefill, token_step


def top_candidates(xp: Any, scores: Any, top_k: int) -> tuple[Any, Any]:
    """``top_k(softmax(scores), k)`` -> ``(probs [rows, k], ids [rows, k])``, most likely first."""
    return xp.top_k(xp.softmax(scores, axis=-1), top_k)


def rank_candidates(
    xp: Any, context: Any, context_mask: Any, candidates: Any, top_k_probs: Any, penalty_alpha: float
) -> Any:
    """The index in ``[0, k)`` of each row's chosen candidate.

    ``context [rows, T, H]`` hidden states with ``context_mask [rows, T]`` (true where a position
    counts), ``candidates [rows, k, H]``, ``top_k_probs [rows, k]``:
    ``argmax_c((1 - alpha) * p_c - alpha * max_{j: mask_j} <h_c, h_j> / (|h_c| |h_j|))``."""
    ctx = context / xp.sqrt(xp.sum(context * context, axis=-1, keepdims=True))
    cand = candidates / xp.sqrt(xp.sum(candidates * candidates, axis=-1, keepdims=True))
    cosine = xp.matmul(cand, xp.permute_dims(ctx, (0, 2, 1)))  # [rows, k, T]
    cosine = xp.where(context_mask[:, None, :], cosine, xp.full_like(cosine, xp.finfo(cosine.dtype).min))
    penalty = xp.max(cosine, axis=-1)
    score = (1.0 - penalty_alpha) * top_k_probs - penalty_alpha * penalty
    return xp.argmax(score, axis=-1)


def decode_contrastive(
    forward: Callable,
    params: dict,
    cfg: Any,
    ids: Any,
    mask: Any,
    *,
    max_length: int,
    top_k: int,
    penalty_alpha: float,
    eos_token_id: tuple,
    pad_token_id: int,
    processors: Any = None,
    output_scores: bool = False,
) -> dict:
    """Fused contrastive search for a decoder-only model over a static cache (see ``decode.py``):
    the prompt step, then a ``while_loop`` whose body runs the ``rows * top_k`` candidates.
    Returns ``sequences [rows, max_length]``, ``length`` and, with ``output_scores``,
    ``scores [max_length - prompt, rows, V]``."""
    xp = array_namespace(ids)
    rows, prompt = ids.shape
    k, L = top_k, max_length
    logits, cache, full_mask, last = prefill(
        forward, params, cfg, ids, mask, L, hidden=True
    )  # last [rows, P, H]
    H = last.shape[-1]
    context = xp.concat([last, xp.zeros((rows, L - prompt, H), dtype=last.dtype)], axis=1)
    tokens = xp.concat(
        [xp.astype(ids, xp.int64), xp.full((rows, L - prompt), pad_token_id, dtype=xp.int64)], axis=1
    )
    cand_mask = xp.repeat(full_mask, k, axis=0)
    pick_base = xp.arange(rows, dtype=xp.int64) * k
    state = {
        "cur_len": xp.asarray(prompt, dtype=xp.int64),
        "tokens": tokens,
        "logits": logits,
        "unfinished": xp.ones((rows,), dtype=xp.bool),
        "cache": cache,
        "context": context,
    }
    if output_scores:
        state["scores"] = xp.zeros((max(L - prompt, 1), rows, cfg.vocab_size), dtype=xp.float32)

    def body(s: dict) -> dict:
        cur = s["cur_len"]
        scores = xp.astype(s["logits"], xp.float32)
        if processors:
            scores = processors(s["tokens"], scores, cur)
        probs, cand_ids = top_candidates(xp, scores, k)
        expanded = {kind: [xp.repeat(c, k, axis=0) for c in s["cache"][kind]] for kind in ("key", "value")}
        c_logits, c_cache, c_hidden = token_step(
            forward, params, cfg, xp.reshape(cand_ids, (rows * k,)), cand_mask, expanded, cur, hidden=True
        )
        c_last = xp.reshape(c_hidden, (rows, k, H))
        positions = xp.arange(L)[None, :]
        ctx_mask = (positions < cur) & (full_mask != 0)
        chosen = rank_candidates(xp, s["context"], ctx_mask, c_last, probs, penalty_alpha)
        pick = pick_base + chosen
        nxt = xp.take_along_axis(cand_ids, chosen[:, None], axis=1)[:, 0]
        nxt = xp.where(s["unfinished"], nxt, xp.full_like(nxt, pad_token_id))
        at_cur = positions == cur
        toks = xp.where(at_cur, nxt[:, None], s["tokens"])
        chosen_hidden = xp.take(xp.reshape(c_last, (rows * k, H)), pick, axis=0)
        ctx = xp.where(at_cur[:, :, None], chosen_hidden[:, None, :], s["context"])
        hit = eos_hit(xp, nxt, eos_token_id)
        out = {
            "cur_len": cur + 1,
            "tokens": toks,
            "logits": xp.take(c_logits, pick, axis=0),
            "unfinished": s["unfinished"] & ~hit,
            "cache": {kind: [xp.take(c, pick, axis=0) for c in c_cache[kind]] for kind in ("key", "value")},
            "context": ctx,
        }
        if output_scores:
            out["scores"] = xp.dynamic_update_slice(s["scores"], scores[None], [cur - prompt, 0, 0])
        return out

    final = while_loop(lambda s: (s["cur_len"] < L) & xp.any(s["unfinished"]), body, state)
    out = {"sequences": final["tokens"], "length": final["cur_len"]}
    if output_scores:
        out["scores"] = final["scores"]
    return out


# ---------------------------------------------------------------------------------------- one step, traced
def contrastive_propose(
    xp: Any, tokens: Any, logits: Any, cur_len: Any, processors: Any, top_k: int, output_scores: bool
) -> dict:
    """The step-wise ``propose`` program's body: processors, softmax, top-k ->
    ``top_k_probs``, ``top_k_ids`` (and the processed ``scores`` with ``output_scores``)."""
    scores = xp.astype(logits, xp.float32)
    if processors:
        scores = processors(tokens, scores, cur_len)
    probs, ids = top_candidates(xp, scores, top_k)
    out = {"top_k_probs": probs, "top_k_ids": ids}
    if output_scores:  # a [rows, V] copy to the host per step only when asked for
        out["scores"] = scores
    return out


def contrastive_choose(
    xp: Any,
    context: Any,
    context_mask: Any,
    candidates: Any,
    probs: Any,
    ids: Any,
    unfinished: Any,
    *,
    penalty_alpha: float,
    pad_token_id: int,
    eos_token_id: tuple,
) -> dict:
    """The step-wise ``choose`` program's body: rank the candidates, pad finished rows, note eos."""
    chosen = rank_candidates(xp, context, context_mask, candidates, probs, penalty_alpha)
    nxt = xp.take_along_axis(ids, chosen[:, None], axis=1)[:, 0]
    nxt = xp.where(unfinished, nxt, xp.full_like(nxt, pad_token_id))
    hit = eos_hit(xp, nxt, eos_token_id)
    return {"next_tokens": nxt, "chosen": chosen, "next_unfinished": unfinished & ~hit}
