"""Fused decode loops (greedy, sampling, beam search) with a toy model, against an independent
Python transcription of Hugging Face's PT search (BeamSearchScorer / BeamHypotheses, 4.37)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.generation.beam_search import BeamConfig
from tensorweave.frontends.generation.loops import beam_search_loop_traced as beam_search_loop
from tensorweave.frontends.generation.loops import sample_loop_traced as sample_loop
from tensorweave.ir import TensorSpec, array_namespace

V = 7


def make_table(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((V, V)) * 2).astype(np.float32)


def toy_step(table):
    """Next-token logits depend on the last token and the position (no cache)."""

    def step(tokens, cur_len, cache):
        xp = array_namespace(tokens)
        last = xp.take_along_axis(
            tokens, xp.broadcast_to(xp.reshape(cur_len - 1, (1, 1)), (tokens.shape[0], 1)), axis=-1
        )
        logits = xp.take(xp.asarray(table), last[:, 0], axis=0) + xp.astype(cur_len, xp.float32) * 0.37
        return logits, cache

    return step


def ref_logits(table, seq):
    return table[seq[-1]] + np.float32(len(seq)) * np.float32(0.37)


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max()
    return x - m - math.log(np.exp(x - m).sum())


# ------------------------------------------------------------------ greedy
def test_greedy_matches_python_loop(backend):
    table = make_table(1)
    prompt = np.array([[1, 2], [3, 3]], np.int64)
    eos, pad, max_len = (4,), 0, 9

    def fn(ids):
        return sample_loop(toy_step(table), ids, (), max_length=max_len, eos_token_id=eos, pad_token_id=pad)[
            "sequences"
        ]

    out = np.asarray(tw.lower(tw.trace(fn, TensorSpec((2, 2), "int64")), backend=backend)(prompt))
    for row, p in zip(out, prompt):
        seq, finished = list(p), False
        while len(seq) < max_len:
            tok = pad if finished else int(np.argmax(ref_logits(table, seq)))
            seq.append(tok)
            finished = finished or tok in eos
        np.testing.assert_array_equal(row, seq)


# ------------------------------------------------------------------ beam search reference (HF PT semantics)
class Hyps:
    def __init__(self, n, lp, early, max_length):
        self.n, self.lp, self.early, self.max_length = n, lp, early, max_length
        self.beams, self.worst = [], 1e9

    def add(self, hyp, s, bidx, gen_len):
        score = s / gen_len**self.lp
        if len(self.beams) < self.n or score > self.worst:
            self.beams.append((score, hyp, bidx))
            if len(self.beams) > self.n:
                ranked = sorted([(sc, i) for i, (sc, _, _) in enumerate(self.beams)])
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best, cur_len, prompt):
        if len(self.beams) < self.n:
            return False
        if self.early is True:
            return True
        if self.early == "never" and self.lp > 0:
            return self.worst >= best / (self.max_length - prompt) ** self.lp
        return self.worst >= best / (cur_len - prompt) ** self.lp


def ref_beam_search(table, prompts, n, max_length, eos, pad, lp, early, keep):
    B, P = prompts.shape
    seqs = [list(p) for p in prompts for _ in range(n)]
    bidx = [[] for _ in range(B * n)]
    scores = np.array([0.0 if j == 0 else -1e9 for _ in range(B) for j in range(n)], np.float32)
    hyps = [Hyps(n, lp, early, max_length) for _ in range(B)]
    done = [False] * B
    K = max(2, 1 + len(eos)) * n
    while True:
        cur_len = len(seqs[0])
        logp = np.stack([log_softmax(ref_logits(table, s)).astype(np.float32) for s in seqs])
        total = (logp + scores[:, None]).reshape(B, n * V)
        new_seqs, new_scores, new_bidx = [], [], []
        for b in range(B):
            order = sorted(range(n * V), key=lambda i: (-total[b, i], i))[:K]
            if done[b]:
                for j in range(n):
                    new_seqs.append(seqs[b * n] + [pad])
                    new_scores.append(0.0)
                    new_bidx.append(bidx[b * n] + [b * n])
                continue
            filled = 0
            for rank, idx in enumerate(order):
                beam, tok = idx // V, idx % V
                row = b * n + beam
                if tok in eos:
                    if rank >= n:
                        continue
                    hyps[b].add(list(seqs[row]), float(total[b, idx]), bidx[row] + [row], cur_len + 1 - P)
                else:
                    new_seqs.append(seqs[row] + [tok])
                    new_scores.append(total[b, idx])
                    new_bidx.append(bidx[row] + [row])
                    filled += 1
                if filled == n:
                    break
            done[b] = done[b] or hyps[b].is_done(float(total[b, order[0]]), cur_len + 1, P)
        seqs, scores, bidx = new_seqs, np.array(new_scores, np.float32), new_bidx
        if all(done) or len(seqs[0]) >= max_length:
            break
    best = []
    for b in range(B):
        if not done[b]:
            for j in range(n):
                row = b * n + j
                hyps[b].add(list(seqs[row]), float(scores[row]), bidx[row], len(seqs[row]) - P)
        ranked = sorted(hyps[b].beams, key=lambda x: x[0])
        for _ in range(keep):
            best.append(ranked.pop())
    lens = [len(h[1]) for h in best]
    out_len = min(max(lens) + 1, max_length)
    out = np.full((len(best), out_len), pad, np.int64)
    ind = np.full((len(best), out_len), -1, np.int64)
    for i, (sc, h, bi) in enumerate(best):
        out[i, : len(h)] = h
        if len(h) < out_len:
            out[i, len(h)] = eos[0]
        ind[i, : len(bi)] = bi
    return out, np.array([h[0] for h in best], np.float32), ind


@pytest.mark.parametrize("lp,early", [(1.0, False), (0.0, True), (2.0, "never"), (1.0, True)])
def test_beam_search_matches_hf_semantics(backend, lp, early):
    table = make_table(3)
    n, keep, max_len, eos, pad = 3, 2, 8, (4, 5), 0
    prompts = np.array([[1, 2], [6, 0]], np.int64)
    cfg = BeamConfig(
        batch_size=2,
        num_beams=n,
        vocab_size=V,
        prompt_len=2,
        max_length=max_len,
        eos_token_id=eos,
        pad_token_id=pad,
        length_penalty=lp,
        early_stopping=early,
        num_return_sequences=keep,
    )

    def fn(ids):
        out = beam_search_loop(toy_step(table), lambda c, rows: c, ids, (), cfg)
        return out["sequences"], out["sequences_scores"], out["beam_indices"], out["out_len"]

    expanded = np.repeat(prompts, n, axis=0)
    seqs, scores, bidx, out_len = tw.lower(tw.trace(fn, TensorSpec((2 * n, 2), "int64")), backend=backend)(
        expanded
    )
    ref_seqs, ref_scores, ref_bidx = ref_beam_search(table, prompts, n, max_len, eos, pad, lp, early, keep)
    L = int(np.asarray(out_len))
    assert L == ref_seqs.shape[1]
    np.testing.assert_array_equal(np.asarray(seqs)[:, :L], ref_seqs)
    np.testing.assert_allclose(np.asarray(scores), ref_scores, rtol=1e-5, atol=1e-5)
    G = L - 2
    np.testing.assert_array_equal(np.asarray(bidx)[:, :G], ref_bidx[:, :G])


def test_sampling_same_tokens_everywhere_for_a_seed(backend):
    from tensorweave.ir import random

    table = make_table(5)

    def fn(ids, key):
        return sample_loop(
            toy_step(table),
            ids,
            (),
            max_length=10,
            eos_token_id=(4,),
            pad_token_id=0,
            do_sample=True,
            key=key,
        )["sequences"]

    graph = tw.trace(fn, TensorSpec((3, 2), "int64"), TensorSpec((2,), "uint32"))
    ids = np.array([[1, 2], [3, 3], [0, 6]], np.int64)
    ref = tw.lower(graph, backend="numpy")(ids, random.key(7))
    out = tw.lower(graph, backend=backend)(ids, random.key(7))
    np.testing.assert_array_equal(np.asarray(out), ref)
    assert not np.array_equal(ref, tw.lower(graph, backend="numpy")(ids, random.key(8)))
