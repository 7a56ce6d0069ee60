"""Contrastive search (``penalty_alpha`` > 0, ``top_k`` > 1) against an independent reference:
Hugging Face's algorithm written out in the test on the ``transformers`` PyTorch model without a
cache (every step re-runs the whole sequence and each of the ``top_k`` candidates), fused on every
backend, step-wise on tensorweave models and on the live ``transformers`` model; and the ranking
rule with hand-checked numbers on every backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.generation.contrastive import rank_candidates

from conftest import IN_CI, require_backend
from tiny_lm import BOS, EOS, PAD, VOCAB, tiny_lm  # noqa: F401

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

pytestmark = pytest.mark.xdist_group("generate_contrastive")

TOP_K, ALPHA, NEW = 4, 0.6, 6


def build(kind):
    return tiny_lm(kind, seed=5)


MODELS = {k: build(k) for k in ("gpt2", "llama")}
rng = np.random.default_rng(7)
IDS = rng.integers(4, VOCAB, size=(3, 5)).astype(np.int64)
MASK = np.ones_like(IDS)
IDS[1, :2], MASK[1, :2] = PAD, 0  # left padding: excluded from the degeneration penalty
IDS[2, :1], MASK[2, :1] = PAD, 0
KW = dict(
    penalty_alpha=ALPHA,
    top_k=TOP_K,
    max_new_tokens=NEW,
    eos_token_id=[EOS, 7],
    repetition_penalty=1.2,
    output_scores=True,
    return_dict_in_generate=True,
)


def reference(
    kind, ids=IDS, mask=MASK, top_k=TOP_K, alpha=ALPHA, new=NEW, eos=(EOS, 7), repetition_penalty=1.2
):
    """Contrastive search as Hugging Face describes it, with no cache: returns (sequences, scores).
    A finished row emits pad, but (as in Hugging Face, whose cache keeps the chosen candidate) the
    model goes on seeing the chosen candidate: ``fed`` is what the model sees, ``seqs`` the output."""
    hf, _ = MODELS[kind]
    seqs, m = torch.from_numpy(ids), torch.from_numpy(mask)
    fed = seqs
    rows = seqs.shape[0]

    def run(s, mk):
        pos = (mk.cumsum(-1) - 1).masked_fill(mk == 0, 1)
        with torch.no_grad():
            out = hf(
                input_ids=s, attention_mask=mk, position_ids=pos, output_hidden_states=True, use_cache=False
            )
        return out.logits[:, -1].double(), out.hidden_states[-1].double()

    logits, _ = run(seqs, m)
    unfinished = torch.ones(rows, dtype=torch.bool)
    scores = []
    for _ in range(new):
        picked = torch.gather(logits, 1, seqs)  # repetition penalty, Hugging Face's rule
        logits = logits.scatter(
            1, seqs, torch.where(picked < 0, picked * repetition_penalty, picked / repetition_penalty)
        )
        scores.append(logits.float().numpy())
        probs, cand = torch.topk(torch.softmax(logits, -1), top_k)
        c_seqs = torch.cat([fed.repeat_interleave(top_k, 0), cand.reshape(-1, 1)], 1)
        c_mask = torch.cat([m.repeat_interleave(top_k, 0), torch.ones(rows * top_k, 1, dtype=m.dtype)], 1)
        c_logits, c_hidden = run(c_seqs, c_mask)
        h = c_hidden[:, -1].reshape(rows, top_k, -1)
        ctx = c_hidden[::top_k, :-1]  # every candidate of a row sees the same (causal) context
        cos = torch.einsum(
            "rkh,rth->rkt", h / h.norm(dim=-1, keepdim=True), ctx / ctx.norm(dim=-1, keepdim=True)
        )
        cos = cos.masked_fill(m[:, None, :] == 0, -float("inf"))
        chosen = ((1 - alpha) * probs - alpha * cos.max(-1).values).argmax(-1)
        best = cand[torch.arange(rows), chosen]
        fed = torch.cat([fed, best[:, None]], 1)
        nxt = torch.where(unfinished, best, torch.full((rows,), PAD))
        logits = c_logits.reshape(rows, top_k, -1)[torch.arange(rows), chosen]
        seqs, m = torch.cat([seqs, nxt[:, None]], 1), torch.cat([m, torch.ones(rows, 1, dtype=m.dtype)], 1)
        unfinished &= ~torch.isin(nxt, torch.tensor(eos))
        if not unfinished.any():
            break
    return seqs.numpy(), np.stack(scores)


@pytest.fixture(scope="module")
def refs():
    return {k: reference(k) for k in MODELS}


def generate(kind, **kw):
    _, model = MODELS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tw.generate(model, IDS, MASK, **dict(KW, **kw))


def check(out, ref):
    seqs, scores = ref
    np.testing.assert_array_equal(out.sequences, seqs)
    assert len(out.scores) == len(scores)
    np.testing.assert_allclose(np.stack(out.scores), scores, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_fused_contrastive_search_matches_the_reference(refs, kind, backend):
    check(generate(kind, backend=backend), refs[kind])


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_stepwise_contrastive_search_matches_the_reference(refs, kind):
    check(generate(kind, backend="numpy", trace=False), refs[kind])


def test_stepwise_contrastive_search_on_a_framework_backend(refs, framework_backend):
    check(generate("gpt2", backend=framework_backend, trace=False), refs["gpt2"])


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_native_transformers_model_runs_contrastive_search(refs, kind):
    hf, _ = MODELS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = tw.generate(hf, IDS, MASK, **KW)
    check(out, refs[kind])


def test_contrastive_search_differs_from_greedy_and_alpha_zero_is_greedy():
    ours = generate("gpt2", backend="numpy").sequences
    greedy = generate("gpt2", backend="numpy", penalty_alpha=None).sequences
    assert not np.array_equal(ours, greedy)  # the penalty changes a choice on these prompts
    np.testing.assert_array_equal(generate("gpt2", backend="numpy", penalty_alpha=0.0).sequences, greedy)
    np.testing.assert_array_equal(generate("gpt2", backend="numpy", top_k=1).sequences, greedy)


def test_streamer_receives_the_contrastive_tokens():
    from tensorweave.frontends.generation import TokenCollector

    streamer = TokenCollector()
    out = generate("llama", backend="numpy", trace=False, streamer=streamer)
    assert streamer.ended
    np.testing.assert_array_equal(
        np.concatenate([streamer.prompt, np.stack(streamer.tokens, 1)], 1), out.sequences
    )


def test_contrastive_search_errors():
    with pytest.raises(ValueError, match="Contrastive search requires `use_cache=True`"):
        generate("gpt2", backend="numpy", use_cache=False)
    with pytest.raises(ValueError, match="Greedy methods without beam search do not support"):
        generate("gpt2", backend="numpy", num_return_sequences=2)


RANK_CASES = {  # context rows [1, 0], [0, 1]; candidates [1, 0] (p 0.5) and [1, 1] (p 0.4); alpha 0.5
    "both positions": ([True, True], 1),  # penalties 1 and 0.7071: scores -0.25, -0.1536
    "first masked": ([False, True], 0),  # penalties 0 and 0.7071: scores 0.25, -0.1536
}


@pytest.mark.parametrize("case", sorted(RANK_CASES))
def test_rank_candidates_by_hand(case, backend):
    require_backend(backend)
    mask, expected = RANK_CASES[case]

    def fn(context, context_mask, candidates, probs):
        import tensorweave.ir.namespace as xp

        return rank_candidates(xp, context, context_mask, candidates, probs, 0.5)

    prog = tw.function(fn, backend=backend)
    got = prog(
        np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32),
        np.array([mask]),
        np.array([[[1.0, 0.0], [1.0, 1.0]]], np.float32),
        np.array([[0.5, 0.4]], np.float32),
    )
    assert int(np.asarray(got)[0]) == expected


def test_stepwise_contrastive_search_without_scores(refs):
    out = generate("gpt2", backend="numpy", trace=False, output_scores=False, return_dict_in_generate=False)
    np.testing.assert_array_equal(out, refs["gpt2"][0])
