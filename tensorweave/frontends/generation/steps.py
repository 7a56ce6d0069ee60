"""The per-step strategy functions of step-wise generation, written once against ``xp``.

Each is the body of one small *strategy program* that ``tensorweave.generation.stepwise`` traces,
lowers and runs around a host loop (the model runs outside them, one step at a time):

- :func:`sample_step`: ``scores = warpers(processors(tokens, logits))``, ``next = argmax(scores)`` or
  ``categorical(fold_in(key, cur_len), scores)``; finished rows emit ``pad_token_id``;
- :func:`beam_search_step`: ``logp = processors(seqs, log_softmax(logits))`` (then the warpers and a
  Gumbel-top-2n draw from ``fold_in(key, cur_len)`` for beam sampling) followed by
  :func:`~.beam_search.beam_step`; the host reorders the model's cache with the returned rows;
- :func:`group_beam_init` / :func:`group_beam_step` / :func:`group_beam_finalize`: group (diverse)
  beam search with Transformers 4.37's PyTorch semantics.

``tokens`` is the fused loop's static ``[rows, max_length]`` buffer (pad beyond ``cur_len``) and the
keys are the fused loop's ``fold_in(key, cur_len)``, so step-wise and fused runs choose the same
tokens. ``prefix_allowed_tokens_fn`` runs on the host; its 0/-inf mask enters a program as an input
and :func:`with_mask` puts it where the PrefixConstrainedLogitsProcessor stands in the list.
"""

from __future__ import annotations

import math
from typing import Any

from ...ir import random
from . import logits_process as lp
from .beam_search import BeamConfig, beam_init, beam_step, eos_hit

#: the names of the beam state (``beam_search.beam_init``), in program input/output order
BEAM_STATE = (
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


class MaskInput(lp.LogitsProcessor):
    """Stands in for PrefixConstrainedLogitsProcessor inside a traced step: adds the host mask."""

    def __init__(self, mask: Any):
        self.mask = mask

    def __call__(self, input_ids, scores, cur_len=None):
        return scores + self.mask


def with_mask(procs: Any, mask: Any) -> Any:
    """``procs`` with its PrefixConstrainedLogitsProcessor replaced by ``MaskInput(mask)``."""
    if procs is None or mask is None:
        return procs
    out = lp.LogitsProcessorList()
    for p in procs:
        out.append(MaskInput(mask) if isinstance(p, lp.PrefixConstrainedLogitsProcessor) else p)
    return out


def sample_step(
    xp: Any,
    tokens: Any,
    logits: Any,
    cur_len: Any,
    unfinished: Any,
    key: Any,
    *,
    processors: Any,
    warpers: Any,
    do_sample: bool,
    pad_token_id: int,
    eos_token_id: tuple,
    output_scores: bool,
) -> dict:
    """Greedy / sampling step: ``next_tokens``, ``next_unfinished`` (and ``scores``)."""
    scores = xp.astype(logits, xp.float32)
    if processors:
        scores = processors(tokens, scores, cur_len)
    if do_sample:
        if warpers:
            scores = warpers(tokens, scores, cur_len)
        nxt = random.categorical(random.fold_in(key, cur_len), scores)
    else:
        nxt = xp.argmax(scores, axis=-1)
    nxt = xp.where(unfinished, nxt, xp.full_like(nxt, pad_token_id))
    hit = eos_hit(xp, nxt, eos_token_id)
    out = {"next_tokens": nxt, "next_unfinished": unfinished & ~hit}
    if output_scores:
        out["scores"] = scores
    return out


def beam_search_step(
    xp: Any,
    state: dict,
    logits: Any,
    cur_len: Any,
    key: Any,
    bcfg: BeamConfig,
    *,
    processors: Any,
    warpers: Any,
    do_sample: bool,
    output_scores: bool,
) -> dict:
    """One beam search / beam sampling step: the new state as ``new_<name>``, the ``rows`` to
    reorder the cache with and (with ``output_scores``) the processed ``logp``."""
    B, n, V, L = bcfg.batch_size, bcfg.num_beams, bcfg.vocab_size, bcfg.max_length
    flat = xp.reshape(state["seqs"], (B * n, L))
    logp = xp.log_softmax(xp.astype(logits, xp.float32), axis=-1)
    if processors:
        logp = processors(flat, logp, cur_len)
    candidates = None
    if do_sample:
        if warpers:
            logp = warpers(flat, logp, cur_len)
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
    if output_scores:
        out["logp"] = logp
    return out


# ---------------------------------------------------------------------------------------- group beam search
def group_state_names(groups: int) -> list[str]:
    return [f"g{g}.{k}" for g in range(groups) for k in BEAM_STATE]


def group_states(args: tuple, groups: int) -> list[dict]:
    """The per-group beam states from a flat argument tuple ordered as :func:`group_state_names`."""
    n = len(BEAM_STATE)
    return [dict(zip(BEAM_STATE, args[g * n : (g + 1) * n])) for g in range(groups)]


def group_beam_init(xp: Any, gcfg: BeamConfig, groups: int, ids: Any) -> dict:
    """Every group's initial beam state from ``ids [B * num_beams, P]``."""
    B, gs, P = gcfg.batch_size, gcfg.num_beams, gcfg.prompt_len
    per = xp.reshape(ids, (B, groups, gs, P))
    out = {}
    for g in range(groups):
        st = beam_init(xp, gcfg, xp.reshape(per[:, g], (B * gs, P)), False)
        out.update({f"g{g}.{k}": st[k] for k in BEAM_STATE})
    return out


def group_beam_step(
    xp: Any,
    states: list,
    logits: Any,
    cur_len: Any,
    mask: Any,
    gcfg: BeamConfig,
    groups: int,
    *,
    processors: Any,
    output_scores: bool,
) -> dict:
    """One step of group beam search: each group in order is a beam-search step of its own over its
    rows, with the processors called with ``current_tokens`` (the tokens chosen this step by the
    earlier groups) and ``beam_group_idx``. ``mask``: the host prefix mask ``[B * num_beams, V]``
    or None."""
    B, gs, V, L = gcfg.batch_size, gcfg.num_beams, gcfg.vocab_size, gcfg.max_length
    n = gs * groups
    mask = xp.reshape(mask, (B, groups, gs, V)) if mask is not None else None
    per_logits = xp.reshape(xp.astype(logits, xp.float32), (B, groups, gs, V))
    chosen: list = []
    out: dict = {}
    rows_all, logp_all = [], []
    for g, st in enumerate(states):
        procs = with_mask(processors, xp.reshape(mask[:, g], (B * gs, V)) if mask is not None else None)
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
        out.update({f"new.g{g}.{k}": new[k] for k in BEAM_STATE})
    out["rows"] = xp.reshape(xp.stack(rows_all, axis=1), (B * n,))
    out["next_tokens"] = xp.reshape(xp.stack(chosen, axis=1), (B * n,))
    if output_scores:
        out["logp"] = xp.reshape(xp.stack(logp_all, axis=1), (B * n, V))
    return out


def group_beam_finalize(xp: Any, states: list, cur_len: Any, gcfg: BeamConfig, n: int, k: int) -> dict:
    """``BeamSearchScorer.finalize`` with groups (Transformers 4.37, PyTorch): each unfinished
    (batch, group) adds its running beams to its pool of ``group_size`` hypotheses (keeping the
    best), then the best ``k`` of all groups' pools are returned per batch item, with ``eos[0]``
    appended to those shorter than the output and pad after it. Beam indices are global
    ``batch * num_beams + beam`` rows."""
    B, gs, L, P = gcfg.batch_size, gcfg.num_beams, gcfg.max_length, gcfg.prompt_len
    pools: dict = {"scores": [], "seqs": [], "lens": [], "bidx": [], "is_hyp": []}
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
