"""Fused generation for tensorweave models, written once: prompt step + a ``while_loop`` decode
with a static KV cache, as one traced program.

The loop is one step ahead: the prompt step (outside the loop) gives the next-token logits;
each iteration picks a token from them (processors, warpers, greedy/sample/beam), writes it at
``cur_len`` and runs the model on that one token to get the following logits. Finished rows
emit ``pad_token_id``; the loop ends when every row (or beam hypothesis set) is finished or
``cur_len == max_length``. The attention mask grows with ones, as in Hugging Face.

For an exported generation (``tensorweave.export_generation``) the prompt length may be a
symbolic dim (``sequence``), ``max_length`` the buffer size ``sequence + cap`` and
``max_length_limit`` (``length_limit`` in the beam config) a traced int64 scalar
``<= max_length``: the buffers and the static cache are sized by ``max_length`` while the loop
stops at the limit. Positions past the limit are never written or attended.
"""

from __future__ import annotations

from typing import Any, Callable

from ...ir import array_namespace, random
from ...ir.control import while_loop
from ..models import attention
from .beam_search import BeamConfig, beam_finalize, beam_init, beam_step, dim_scalar, eos_hit, stop_length


def prefill(
    forward: Callable, params: dict, cfg: Any, ids: Any, mask: Any, max_length: int, hidden: bool = False
) -> tuple:
    """The prompt over a fresh static cache: ``(logits [rows, V] at the last position, cache,
    full_mask [rows, max_length])``, plus the last hidden states ``[rows, prompt, H]`` (after the
    final norm) with ``hidden``."""
    xp = array_namespace(ids)
    rows, prompt = ids.shape
    full_mask = xp.concat(
        [xp.astype(mask, xp.int64), xp.ones((rows, max_length - prompt), dtype=xp.int64)], axis=1
    )
    cache = attention.static_cache(
        xp, cfg.num_hidden_layers, rows, cfg.num_key_value_heads, max_length, cfg.head_dim, xp.float32
    )
    pos = attention.position_ids_from_mask(full_mask, 0, prompt)
    out = forward(params, cfg, ids, full_mask, pos, cache, 0, output_hidden_states=hidden)
    return (out[0][:, -1], out[1], full_mask) + ((out[2][-1],) if hidden else ())


def token_step(
    forward: Callable,
    params: dict,
    cfg: Any,
    tok: Any,
    full_mask: Any,
    cache: Any,
    cur_len: Any,
    hidden: bool = False,
) -> tuple:
    """One token per row (``tok [rows]``) at ``cur_len``: ``(logits [rows, V], cache)``, plus its
    last hidden state ``[rows, H]`` with ``hidden``."""
    pos = attention.position_ids_from_mask(full_mask, cur_len, 1)
    out = forward(params, cfg, tok[:, None], full_mask, pos, cache, cur_len, output_hidden_states=hidden)
    return (out[0][:, -1], out[1]) + ((out[2][-1][:, -1],) if hidden else ())


def decode_greedy_or_sample(
    forward: Callable,
    params: dict,
    cfg: Any,
    ids: Any,
    mask: Any,
    *,
    max_length: int,
    eos_token_id: tuple,
    pad_token_id: int,
    processors: Any = None,
    warpers: Any = None,
    do_sample: bool = False,
    key: Any = None,
    output_scores: bool = False,
    max_length_limit: Any = None,
) -> dict:
    """Greedy / multinomial sampling; ``max_length_limit`` (optional traced int64 scalar) stops the
    loop before the buffer length ``max_length`` (see the module docstring)."""
    xp = array_namespace(ids)
    rows, prompt = ids.shape
    prompt_n = dim_scalar(xp, prompt)
    limit = max_length if max_length_limit is None else max_length_limit
    logits, cache, full_mask = prefill(forward, params, cfg, ids, mask, max_length)
    tokens = xp.concat(
        [xp.astype(ids, xp.int64), xp.full((rows, max_length - prompt), pad_token_id, dtype=xp.int64)], axis=1
    )
    state = {
        "cur_len": xp.astype(xp.asarray(prompt_n), xp.int64),
        "tokens": tokens,
        "logits": logits,
        "unfinished": xp.ones((rows,), dtype=xp.bool),
        "cache": cache,
    }
    steps = max(max_length - prompt, 1)
    if output_scores:
        state["scores"] = xp.zeros((steps, rows, cfg.vocab_size), dtype=xp.float32)

    def body(s: dict) -> dict:
        scores = xp.astype(s["logits"], xp.float32)
        if processors:
            scores = processors(s["tokens"], scores, s["cur_len"])
        if do_sample:
            if warpers:
                scores = warpers(s["tokens"], scores, s["cur_len"])
            nxt = random.categorical(random.fold_in(key, s["cur_len"]), scores)
        else:
            nxt = xp.argmax(scores, axis=-1)
        nxt = xp.where(s["unfinished"], nxt, xp.full_like(nxt, pad_token_id))
        toks = xp.where((xp.arange(max_length) == s["cur_len"])[None, :], nxt[:, None], s["tokens"])
        hit = eos_hit(xp, nxt, eos_token_id)
        logits, cache = token_step(forward, params, cfg, nxt, full_mask, s["cache"], s["cur_len"])
        out = {
            "cur_len": s["cur_len"] + 1,
            "tokens": toks,
            "logits": logits,
            "unfinished": s["unfinished"] & ~hit,
            "cache": cache,
        }
        if output_scores:
            out["scores"] = xp.dynamic_update_slice(
                s["scores"], scores[None], [s["cur_len"] - prompt_n, 0, 0]
            )
        return out

    final = while_loop(lambda s: (s["cur_len"] < limit) & xp.any(s["unfinished"]), body, state)
    out = {"sequences": final["tokens"], "length": final["cur_len"]}
    if output_scores:
        out["scores"] = final["scores"]
    return out


def decode_beam(
    forward: Callable,
    params: dict,
    cfg: Any,
    ids: Any,
    mask: Any,
    bcfg: BeamConfig,
    *,
    processors: Any = None,
    warpers: Any = None,
    do_sample: bool = False,
    key: Any = None,
    output_scores: bool = False,
) -> dict:
    """Beam search / beam sampling over ``ids`` already repeated per beam (``[B*n, prompt]``)."""
    xp = array_namespace(ids)
    B, n, L, V = bcfg.batch_size, bcfg.num_beams, bcfg.max_length, bcfg.vocab_size
    logits, cache, full_mask = prefill(forward, params, cfg, ids, mask, L)
    prompt_n = dim_scalar(xp, bcfg.prompt_len)
    limit = stop_length(xp, bcfg)
    state = {
        "cur_len": xp.astype(xp.asarray(prompt_n), xp.int64),
        "beam": beam_init(xp, bcfg, ids, do_sample),
        "logits": logits,
        "cache": cache,
    }
    if output_scores:
        state["scores"] = xp.zeros((max(bcfg.gen_len, 1), B * n, V), dtype=xp.float32)

    def body(s: dict) -> dict:
        flat = xp.reshape(s["beam"]["seqs"], (B * n, L))
        logp = xp.log_softmax(xp.astype(s["logits"], xp.float32), axis=-1)
        if processors:
            logp = processors(flat, logp, s["cur_len"])
        candidates = None
        if do_sample:
            if warpers:
                logp = warpers(flat, logp, s["cur_len"])
            total = xp.reshape(xp.reshape(logp, (B, n, V)) + s["beam"]["scores"][:, :, None], (B, n * V))
            g = random.gumbel(random.fold_in(key, s["cur_len"]), tuple(total.shape))
            _, cand = xp.top_k(total + g, 2 * n)
            cand_scores = xp.take_along_axis(total, cand, axis=-1)
            order = xp.argsort(cand_scores, axis=-1, descending=True)
            candidates = (
                xp.take_along_axis(cand_scores, order, axis=-1),
                xp.take_along_axis(cand, order, axis=-1),
            )
        beam, rows = beam_step(s["beam"], logp, s["cur_len"], bcfg, candidates)
        cache = attention.reorder_static_cache(s["cache"], rows)
        seqs = xp.reshape(beam["seqs"], (B * n, L))
        tok = xp.take_along_axis(seqs, xp.broadcast_to(xp.reshape(s["cur_len"], (1, 1)), (B * n, 1)), axis=1)[
            :, 0
        ]
        logits, cache = token_step(forward, params, cfg, tok, full_mask, cache, s["cur_len"])
        out = {"cur_len": s["cur_len"] + 1, "beam": beam, "logits": logits, "cache": cache}
        if output_scores:
            out["scores"] = xp.dynamic_update_slice(s["scores"], logp[None], [s["cur_len"] - prompt_n, 0, 0])
        return out

    final = while_loop(lambda s: (s["cur_len"] < limit) & ~xp.all(s["beam"]["done"]), body, state)
    out = beam_finalize(final["beam"], final["cur_len"], bcfg)
    out["length"] = final["cur_len"]
    if output_scores:
        out["scores"] = final["scores"]
    return out


# ---------------------------------------------------------------------------------------- encoder-decoder
def seq2seq_start(
    encode: Callable,
    init_cache: Callable,
    params: dict,
    cfg: Any,
    enc_ids: Any,
    enc_mask: Any,
    repeats: int,
    max_length: Any,
) -> tuple:
    """Run the encoder once on ``enc_ids [B, S]``, repeat its output and mask ``repeats`` times per
    row (``repeat_interleave``, as Hugging Face expands encoder outputs for beams / return
    sequences) and build the decoder cache: a static self-attention cache of ``max_length``
    decoder positions plus the cross-attention keys/values. Returns ``(cache, enc_mask_rows)``."""
    xp = array_namespace(enc_ids)
    enc = encode(params, cfg, enc_ids, enc_mask)
    if repeats > 1:
        enc, enc_mask = xp.repeat(enc, repeats, axis=0), xp.repeat(enc_mask, repeats, axis=0)
    return init_cache(params, cfg, enc, "static", max_length), enc_mask


def seq2seq_step(decode: Callable, params: dict, cfg: Any, enc_mask: Any) -> Callable:
    """A ``loops.StepFn`` for an encoder-decoder: ``step(tokens, cur_len, cache)`` runs the decoder
    on the token at position ``cur_len - 1`` (offset ``cur_len - 1`` of the static cache; the
    causal rule hides the unwritten positions) and returns its next-token logits."""

    def step(tokens: Any, cur_len: Any, cache: Any) -> tuple:
        xp = array_namespace(tokens)
        pos = cur_len - 1
        tok = xp.take_along_axis(
            tokens, xp.broadcast_to(xp.reshape(pos, (1, 1)), (tokens.shape[0], 1)), axis=1
        )
        logits, cache = decode(params, cfg, tok, None, enc_mask, cache, pos)
        return logits[:, -1], cache

    return step


def seq2seq_reorder(cache: dict, rows: Any) -> dict:
    """Beam reorder for an encoder-decoder cache: gather the self-attention cache rows. The
    cross-attention keys/values are left as they are: beam rows only move within their batch
    item, whose ``num_beams`` rows hold identical encoder keys/values."""
    from ..models import cache as kv_cache

    return {"self": kv_cache.reorder_cache(cache["self"], rows), "cross": cache["cross"]}


def decode_seq2seq(
    encode: Callable,
    decode: Callable,
    init_cache: Callable,
    params: dict,
    cfg: Any,
    enc_ids: Any,
    enc_mask: Any,
    decoder_start_token_id: int,
    *,
    max_length: int,
    eos_token_id: tuple,
    pad_token_id: int,
    num_return_sequences: int = 1,
    bcfg: BeamConfig | None = None,
    processors: Any = None,
    warpers: Any = None,
    do_sample: bool = False,
    key: Any = None,
    output_scores: bool = False,
    vocab_size: int | None = None,
) -> dict:
    """Fused encoder-decoder generation: encoder once, then the decode ``while_loop`` (greedy /
    sampling via ``loops.sample_loop_traced``, beam search / beam sampling via
    ``loops.beam_search_loop_traced``
    when ``bcfg`` is given) over decoder buffers that start with ``decoder_start_token_id``
    (``max_length`` counts decoder tokens). The processors see the decoder tokens."""
    from .loops import beam_search_loop_traced, sample_loop_traced

    xp = array_namespace(enc_ids)
    B = enc_ids.shape[0]
    rep = bcfg.num_beams if bcfg is not None else num_return_sequences
    cache, mask_rows = seq2seq_start(encode, init_cache, params, cfg, enc_ids, enc_mask, rep, max_length)
    start = xp.full((B * rep, 1), decoder_start_token_id, dtype=xp.int64)
    step = seq2seq_step(decode, params, cfg, mask_rows)
    if bcfg is not None:
        return beam_search_loop_traced(
            step,
            seq2seq_reorder,
            start,
            cache,
            bcfg,
            processors=processors,
            warpers=warpers,
            do_sample=do_sample,
            key=key,
            output_scores=output_scores,
        )
    return sample_loop_traced(
        step,
        start,
        cache,
        max_length=max_length,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        processors=processors,
        warpers=warpers,
        do_sample=do_sample,
        key=key,
        output_scores=output_scores,
        vocab_size=vocab_size,
    )
