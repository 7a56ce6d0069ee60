"""Beam search bookkeeping in static shapes, with the semantics of Transformers 4.37's PyTorch
``BeamSearchScorer`` / ``BeamHypotheses``.

Everything here is written once against ``xp`` and runs inside a traced ``while_loop``.
The state holds, per batch item ``b`` and beam slot ``j``:

- ``seqs [B, n, L]``: running token buffers (prompt included; positions >= cur_len unused);
- ``scores [B, n]``: running sums of processed log-probs (beam 0 starts at 0, the others at -1e9;
  beam sampling starts every beam at 0);
- ``beam_idx [B, n, G]``: for each generated step, the global ``b * n + j`` row it came from;
- the finished-hypothesis pool ``hyp_seqs [B, n, L]``, ``hyp_scores [B, n]`` (length-normalised,
  -inf when empty), ``hyp_len [B, n]`` (tokens kept, EOS excluded), ``hyp_beam_idx [B, n, G]``,
  ``hyp_count [B]``; and ``done [B]``.

One step (:func:`beam_step`) reproduces ``BeamSearchScorer.process``:
candidates are the top ``max(2, 1 + n_eos) * n`` of ``[B, n*V]`` cumulative scores; an EOS
candidate of rank < n becomes a hypothesis scored ``sum_logprobs / (cur_len + 1 - prompt)**lp``
(EOS not stored); the first n non-EOS candidates become the next beams; a batch item is done per
``BeamHypotheses.is_done``. Hypothesis insertion keeps the n best scores, as HF's insertion with
"replace the worst when better" does (exact score ties may resolve differently).
:func:`beam_finalize` adds the running beams of unfinished items and picks the best
``num_return_sequences`` per item, appending ``eos[0]`` to hypotheses shorter than the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ...ir import array_namespace

BIG = 1e9


def eos_hit(xp: Any, tokens: Any, eos: Sequence[int]) -> Any:
    """``tokens`` (any shape) equal to one of the ``eos`` ids, elementwise (all false for none)."""
    hit = xp.zeros(tuple(tokens.shape), dtype=xp.bool)
    for e in eos:
        hit = hit | (tokens == e)
    return hit


@dataclass(frozen=True)
class BeamConfig:
    batch_size: int
    num_beams: int
    vocab_size: int
    prompt_len: int
    max_length: int
    eos_token_id: tuple[int, ...]
    pad_token_id: int
    length_penalty: float = 1.0
    early_stopping: Any = False  # True, False or "never"
    num_return_sequences: int = 1
    #: the run-time stopping length (a traced int64 scalar, <= max_length) when the generation
    #: length is an input of the program (exported generation); None: ``max_length``. ``prompt_len``
    #: and ``max_length`` may then be symbolic dims (``sequence``, ``sequence + cap``): they size
    #: the buffers, while ``length_limit`` decides when to stop and how long outputs are.
    length_limit: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.num_beams, int) or self.num_beams <= 1:
            raise ValueError(
                f"`num_beams` has to be an integer strictly greater than 1, but is {self.num_beams}. For "
                "`num_beams` == 1, one should make use of `greedy_search` instead."
            )
        if self.num_return_sequences > self.num_beams:
            raise ValueError(
                f"`num_return_sequences` ({self.num_return_sequences}) has to be smaller or equal to "
                f"`num_beams` ({self.num_beams})."
            )
        if (
            self.early_stopping == "never"
            and self.length_penalty > 0
            and isinstance(self.max_length, int)
            and isinstance(self.prompt_len, int)
            and self.max_length <= self.prompt_len
        ):
            raise ValueError("max_length is not larger than decoder prompt length")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(f"`early_stopping` must be a boolean or 'never', but is {self.early_stopping}.")

    @property
    def num_candidates(self) -> int:
        return max(2, 1 + len(self.eos_token_id)) * self.num_beams

    @property
    def gen_len(self) -> int:
        return self.max_length - self.prompt_len


@dataclass(frozen=True)
class GroupBeamConfig(BeamConfig):
    """One group's BeamConfig in group (diverse) beam search: ``num_beams`` is the group size,
    which may be 1."""

    def __post_init__(self) -> None:
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise ValueError(f"the beam group size must be a positive integer, got {self.num_beams}")


def dim_scalar(xp: Any, d: Any) -> Any:
    """A dim as an int64 scalar usable in arithmetic with traced values: an int stays an int; a
    symbolic dim (e.g. ``sequence``) becomes ``sum(ones(d))``, evaluated at run time."""
    if isinstance(d, int):
        return d
    return xp.sum(xp.ones((d,), dtype=xp.int64))


def stop_length(xp: Any, cfg: BeamConfig) -> Any:
    """Where decoding stops: ``cfg.length_limit`` when given, else ``cfg.max_length`` (an int, or
    an int64 scalar when it is symbolic)."""
    return dim_scalar(xp, cfg.max_length) if cfg.length_limit is None else cfg.length_limit


def beam_init(xp: Any, cfg: BeamConfig, input_ids: Any, do_sample: bool = False) -> dict:
    """Initial state from a ``[B*n, P]`` prompt already repeated per beam."""
    B, n, L, G = cfg.batch_size, cfg.num_beams, cfg.max_length, cfg.gen_len
    seqs = xp.full((B * n, L), cfg.pad_token_id, dtype=xp.int64)
    seqs = xp.dynamic_update_slice(seqs, xp.astype(input_ids, xp.int64), [0, 0])
    first = xp.astype(xp.arange(n) == 0, xp.float32)
    scores = (
        xp.broadcast_to((first - 1.0) * BIG, (B, n)) if not do_sample else xp.zeros((B, n), dtype=xp.float32)
    )
    return {
        "seqs": xp.reshape(seqs, (B, n, L)),
        "scores": xp.astype(scores, xp.float32) + xp.zeros((B, n), dtype=xp.float32),
        "beam_idx": xp.full((B, n, max(G, 1)), -1, dtype=xp.int64),
        "hyp_seqs": xp.full((B, n, L), cfg.pad_token_id, dtype=xp.int64),
        "hyp_scores": xp.full((B, n), -math.inf, dtype=xp.float32),
        "hyp_len": xp.zeros((B, n), dtype=xp.int64),
        "hyp_beam_idx": xp.full((B, n, max(G, 1)), -1, dtype=xp.int64),
        "hyp_count": xp.zeros((B,), dtype=xp.int64),
        "done": xp.zeros((B,), dtype=xp.bool),
    }


def _lp_denominator(xp: Any, length: Any, lp: float) -> Any:
    return xp.astype(length, xp.float32) ** lp


def _is_done(xp: Any, cfg: BeamConfig, count: Any, worst: Any, best: Any, cur_len: Any) -> Any:
    """BeamHypotheses.is_done(best_sum_logprobs, cur_len) for every batch item ([B] bool)."""
    full = count >= cfg.num_beams
    if cfg.early_stopping is True:
        return full
    prompt = dim_scalar(xp, cfg.prompt_len)
    if cfg.early_stopping == "never" and cfg.length_penalty > 0.0:
        if cfg.length_limit is None:
            denom = float(cfg.max_length - cfg.prompt_len) ** cfg.length_penalty
        else:
            denom = _lp_denominator(xp, cfg.length_limit - prompt, cfg.length_penalty)
        attainable = best / denom
    else:
        attainable = best / _lp_denominator(xp, cur_len - prompt, cfg.length_penalty)
    return full & (worst >= attainable)


def _worst(xp: Any, hyp_scores: Any, count: Any) -> Any:
    """HF's worst_score: 1e9 before the first hypothesis, else the pool's minimum."""
    m = xp.min(
        xp.where(xp.isinf(hyp_scores) & (hyp_scores < 0), xp.full_like(hyp_scores, math.inf), hyp_scores),
        axis=-1,
    )
    return xp.where(count > 0, m, xp.full_like(m, BIG))


def _gather_beams(xp: Any, x: Any, idx: Any) -> Any:
    """x [B, n, ...] gathered along the beam axis with idx [B, k] -> [B, k, ...]."""
    extra = x.ndim - 2
    ix = xp.reshape(idx, tuple(idx.shape) + (1,) * extra)
    ix = xp.broadcast_to(ix, tuple(idx.shape) + tuple(x.shape[2:]))
    return xp.take_along_axis(x, ix, axis=1)


def beam_step(
    state: dict, logprobs: Any, cur_len: Any, cfg: BeamConfig, candidates: Any = None
) -> tuple[dict, Any]:
    """One beam-search step. ``logprobs``: processed log-softmax scores ``[B*n, V]`` (before the
    running score is added). ``cur_len``: int64 scalar, the length filled so far. Returns the new
    state and ``beam_rows [B*n]`` (global row each new beam came from, to reorder caches).

    ``candidates``: optional ``(cand_scores [B, K], cand_ids [B, K])`` chosen elsewhere (beam
    sampling); by default the top K of the cumulative scores."""
    xp = array_namespace(logprobs)
    B, n, V = cfg.batch_size, cfg.num_beams, cfg.vocab_size
    K = cfg.num_candidates
    total = xp.reshape(logprobs, (B, n, V)) + state["scores"][:, :, None]
    flat = xp.reshape(total, (B, n * V))
    if candidates is None:
        cand_scores, cand_ids = xp.top_k(flat, K)
    else:
        cand_scores, cand_ids = candidates
    K = cand_scores.shape[-1]
    cand_beam = cand_ids // V
    cand_tok = cand_ids % V
    is_eos = eos_hit(xp, cand_tok, cfg.eos_token_id)
    rank = xp.arange(K)[None, :]
    # next beams: the first n non-EOS candidates in rank order
    non_eos = ~is_eos
    order_key = xp.where(non_eos, xp.astype(rank, xp.float32), xp.full((B, K), float(K) + 1.0))
    pick = xp.argsort(order_key, axis=-1)[:, :n]  # positions of the first n non-EOS candidates
    next_scores = xp.take_along_axis(cand_scores, pick, axis=-1)
    next_tok = xp.take_along_axis(cand_tok, pick, axis=-1)
    next_beam = xp.take_along_axis(cand_beam, pick, axis=-1)
    done = state["done"]
    # finished batch items emit pad with score 0 from beam 0
    next_scores = xp.where(done[:, None], xp.zeros_like(next_scores), next_scores)
    next_tok = xp.where(done[:, None], xp.full_like(next_tok, cfg.pad_token_id), next_tok)
    next_beam = xp.where(done[:, None], xp.zeros_like(next_beam), next_beam)

    # EOS candidates of rank < n become hypotheses (not for finished items)
    new_hyp = is_eos & (rank < n) & ~done[:, None]  # [B, K]
    prompt = dim_scalar(xp, cfg.prompt_len)
    gen_len = cur_len + 1 - prompt
    new_hyp_scores = xp.where(
        new_hyp,
        cand_scores / _lp_denominator(xp, gen_len, cfg.length_penalty),
        xp.full_like(cand_scores, -math.inf),
    )
    new_hyp_k = new_hyp_scores[:, :n]  # only ranks < n can be hypotheses
    src_beam = cand_beam[:, :n]
    new_seqs = _gather_beams(xp, state["seqs"], src_beam)  # [B, n, L] (EOS not stored)
    rows = xp.arange(B)[:, None] * n + src_beam  # global rows
    g = cur_len - prompt
    G = state["beam_idx"].shape[-1]
    step_onehot = (xp.arange(G) == g)[None, None, :]
    new_bidx = xp.where(step_onehot, rows[:, :, None], _gather_beams(xp, state["beam_idx"], src_beam))
    new_len = xp.broadcast_to(xp.reshape(xp.astype(cur_len, xp.int64), (1, 1)), (B, n))
    # merge the pool with the new hypotheses: keep the n best (the pool first on exact ties)
    all_scores = xp.concat([state["hyp_scores"], new_hyp_k], axis=1)  # [B, 2n]
    keep = xp.argsort(all_scores, axis=-1, descending=True)[:, :n]
    hyp_scores = xp.take_along_axis(all_scores, keep, axis=-1)
    hyp_seqs = _gather_beams(xp, xp.concat([state["hyp_seqs"], new_seqs], axis=1), keep)
    hyp_len = xp.take_along_axis(xp.concat([state["hyp_len"], new_len], axis=1), keep, axis=-1)
    hyp_bidx = _gather_beams(xp, xp.concat([state["hyp_beam_idx"], new_bidx], axis=1), keep)
    hyp_count = xp.minimum(
        state["hyp_count"] + xp.sum(xp.astype(new_hyp[:, :n], xp.int64), axis=-1),
        xp.full_like(state["hyp_count"], n),
    )
    # done?
    best = xp.max(cand_scores, axis=-1)
    worst = _worst(xp, hyp_scores, hyp_count)
    done = done | _is_done(xp, cfg, hyp_count, worst, best, cur_len + 1)

    # next running beams: gather sequences and write the token at cur_len
    seqs = _gather_beams(xp, state["seqs"], next_beam)
    pos = (xp.arange(cfg.max_length) == cur_len)[None, None, :]
    seqs = xp.where(pos, next_tok[:, :, None], seqs)
    rows_next = xp.arange(B)[:, None] * n + next_beam
    bidx = _gather_beams(xp, state["beam_idx"], next_beam)
    bidx = xp.where(step_onehot, rows_next[:, :, None], bidx)
    new_state = {
        "seqs": seqs,
        "scores": next_scores,
        "beam_idx": bidx,
        "hyp_seqs": hyp_seqs,
        "hyp_scores": hyp_scores,
        "hyp_len": hyp_len,
        "hyp_beam_idx": hyp_bidx,
        "hyp_count": hyp_count,
        "done": done,
    }
    return new_state, xp.reshape(rows_next, (B * n,))


def beam_finalize(state: dict, cur_len: Any, cfg: BeamConfig) -> dict:
    """Add the running beams of unfinished items, pick the best ``num_return_sequences`` per item.

    Returns ``sequences [B*k, L]`` (pad after each hypothesis, ``eos[0]`` appended to hypotheses
    shorter than the longest + 1), ``sequences_scores [B*k]``, ``beam_indices [B*k, G]`` (-1 unused),
    ``lengths [B*k]`` (tokens incl. the appended eos) and ``out_len``, the common output length
    ``min(max hypothesis length + 1, max_length)`` (the caller trims the buffers to it).
    """
    xp = array_namespace(state["scores"])
    B, n, k = cfg.batch_size, cfg.num_beams, cfg.num_return_sequences
    done = state["done"]
    prompt = dim_scalar(xp, cfg.prompt_len)
    run_scores = state["scores"] / _lp_denominator(xp, cur_len - prompt, cfg.length_penalty)
    run_scores = xp.where(done[:, None], xp.full_like(run_scores, -math.inf), run_scores)
    run_len = xp.broadcast_to(xp.reshape(xp.astype(cur_len, xp.int64), (1, 1)), (B, n))
    all_scores = xp.concat([state["hyp_scores"], run_scores], axis=1)
    best = xp.argsort(all_scores, axis=-1, descending=True)[:, :k]
    scores = xp.take_along_axis(all_scores, best, axis=-1)
    seqs = _gather_beams(xp, xp.concat([state["hyp_seqs"], state["seqs"]], axis=1), best)
    lens = xp.take_along_axis(xp.concat([state["hyp_len"], run_len], axis=1), best, axis=-1)
    bidx = _gather_beams(xp, xp.concat([state["hyp_beam_idx"], state["beam_idx"]], axis=1), best)
    limit = stop_length(xp, cfg)
    limit = xp.asarray(limit, dtype=xp.int64) if isinstance(limit, int) else limit
    out_len = xp.minimum(xp.max(lens) + 1, limit)
    positions = xp.arange(cfg.max_length)[None, None, :]
    eos_pos = (positions == lens[:, :, None]) & (lens[:, :, None] < out_len)
    seqs = xp.where(
        positions < lens[:, :, None],
        seqs,
        xp.where(eos_pos, xp.full_like(seqs, cfg.eos_token_id[0]), xp.full_like(seqs, cfg.pad_token_id)),
    )
    gen = lens - prompt  # generated tokens kept (EOS excluded)
    # an EOS hypothesis records the EOS step in its beam indices too
    is_hyp = xp.take_along_axis(
        xp.concat([xp.ones((B, n), dtype=xp.bool), xp.zeros((B, n), dtype=xp.bool)], axis=1), best, axis=-1
    )
    used = gen + xp.astype(is_hyp, xp.int64)
    G = bidx.shape[-1]
    bidx = xp.where(xp.arange(G)[None, None, :] < used[:, :, None], bidx, xp.full_like(bidx, -1))
    return {
        "sequences": xp.reshape(seqs, (B * k, cfg.max_length)),
        "sequences_scores": xp.reshape(scores, (B * k,)),
        "beam_indices": xp.reshape(bidx, (B * k, G)),
        "lengths": xp.reshape(xp.minimum(lens + xp.astype(lens < out_len, xp.int64), out_len), (B * k,)),
        "out_len": out_len,
    }
