"""Step-wise generation (``trace=False``) against the fused program on every backend, step-wise
generation driving live ``transformers`` PyTorch models against transformers' own generate(),
streamers and ``prefix_allowed_tokens_fn``."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.generation import TokenCollector

from conftest import IN_CI
from tiny_lm import BOS, EOS, PAD, VOCAB, tiny_lm  # noqa: F401

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

pytestmark = pytest.mark.xdist_group("generate_stepwise")

# pad != 0: transformers v5 fills finished beams with `pad or eos`, 4.37 (which we follow) with pad


def build(kind):
    return tiny_lm(kind, seed=2)


@pytest.fixture(scope="module")
def models():
    return {k: build(k) for k in ("gpt2", "llama")}


def prompts():
    rng = np.random.default_rng(3)
    ids = rng.integers(4, VOCAB, size=(3, 5)).astype(np.int64)
    mask = np.ones_like(ids)
    ids[1, :2], mask[1, :2] = PAD, 0  # left padding
    ids[2, :1], mask[2, :1] = PAD, 0
    return ids, mask


IDS, MASK = prompts()

STRATEGIES = {
    "greedy": dict(
        max_new_tokens=5,
        do_sample=False,
        eos_token_id=[EOS, 7],
        output_scores=True,
        return_dict_in_generate=True,
        repetition_penalty=1.3,
    ),
    "beam": dict(
        max_new_tokens=5,
        num_beams=4,
        num_return_sequences=2,
        length_penalty=2.0,
        eos_token_id=EOS,
        output_scores=True,
        return_dict_in_generate=True,
    ),
    "sample": dict(
        max_new_tokens=5,
        do_sample=True,
        temperature=0.7,
        top_k=12,
        top_p=0.9,
        eos_token_id=EOS,
        seed=11,
        num_return_sequences=2,
        output_scores=True,
        return_dict_in_generate=True,
    ),
}


def hf_generate(hf, ids=IDS, mask=MASK, **kw):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hf.generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), **kw)


def quiet_generate(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tw.generate(*args, **kw)


def assert_same_result(step, fused):
    np.testing.assert_array_equal(step.sequences, fused.sequences)
    assert len(step.scores) == len(fused.scores)
    for a, b in zip(step.scores, fused.scores):
        # the with-past (growing cache) and static-cache programs differ by float rounding only
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        np.testing.assert_allclose(a[np.isfinite(a)], b[np.isfinite(b)], atol=1e-4)
    if fused.beam_indices is not None:
        np.testing.assert_array_equal(step.beam_indices, fused.beam_indices)
        np.testing.assert_allclose(step.sequences_scores, fused.sequences_scores, atol=1e-5)


@pytest.fixture(scope="module")
def fused_reference(models):
    """The fused program on the reference backend, once per strategy. tests/test_generate.py shows
    fused runs agree on every backend, so comparing each backend's step-wise run with this one
    checks step-wise == fused there, and (sampling) the same seed -> the same tokens everywhere,
    without lowering each fused program five times."""
    cache = {}

    def get(strategy):
        if strategy not in cache:
            cache[strategy] = quiet_generate(
                models["gpt2"][1], IDS, MASK, backend="numpy", **STRATEGIES[strategy]
            )
        return cache[strategy]

    return get


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_stepwise_equals_fused(models, fused_reference, strategy, backend):
    _, model = models["gpt2"]
    step = quiet_generate(model, IDS, MASK, backend=backend, trace=False, **STRATEGIES[strategy])
    assert_same_result(step, fused_reference(strategy))


def test_stepwise_equals_fused_on_the_same_backend(models, framework_backend):
    """Also against the fused program lowered to the same backend (seeded sampling, all warpers)."""
    _, model = models["gpt2"]
    kw = dict(STRATEGIES["sample"], max_new_tokens=3)
    fused = quiet_generate(model, IDS, MASK, backend=framework_backend, **kw)
    assert_same_result(quiet_generate(model, IDS, MASK, backend=framework_backend, trace=False, **kw), fused)


def test_beam_sampling_and_early_stopping_stepwise_equal_fused(models):
    _, model = models["llama"]
    for kw in (
        dict(num_beams=3, do_sample=True, seed=4, top_k=8),
        dict(
            num_beams=3,
            num_return_sequences=3,
            early_stopping=True,
            length_penalty=0.0,
            no_repeat_ngram_size=2,
        ),
        dict(num_beams=2, early_stopping="never", min_new_tokens=2),
    ):
        kw = dict(kw, max_new_tokens=6, eos_token_id=EOS, output_scores=True, return_dict_in_generate=True)
        fused = quiet_generate(model, IDS, MASK, backend="numpy", **kw)
        step = quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **kw)
        assert_same_result(step, fused)


def test_seed_changes_stepwise_samples(models):
    _, model = models["gpt2"]
    kw = dict(STRATEGIES["sample"], return_dict_in_generate=False, output_scores=False, top_k=0, top_p=1.0)
    a = quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **kw)
    b = quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **dict(kw, seed=12))
    assert not np.array_equal(a, b)
    key = tw.ir.random.key(11)
    c = quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **dict(kw, seed=None), prng_key=key)
    np.testing.assert_array_equal(c, a)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_native_transformers_model_matches_transformers_generate(models, kind, strategy):
    hf, _ = models[kind]
    kw = dict(STRATEGIES[strategy])
    if strategy == "greedy":
        kw.pop("repetition_penalty")  # v5 leaves left padding out of it (spec/generation.md)
    ours = quiet_generate(hf, IDS, MASK, **kw)
    ref = hf_generate(hf, **kw)
    np.testing.assert_array_equal(ours.sequences, ref.sequences.numpy())
    if strategy == "beam":
        np.testing.assert_allclose(ours.sequences_scores, ref.sequences_scores.numpy(), atol=1e-4)
        np.testing.assert_array_equal(
            ours.beam_indices[:, : ref.beam_indices.shape[1]], ref.beam_indices.numpy()
        )
    else:
        for a, b in zip(ours.scores, ref.scores):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4)


def test_native_model_on_another_strategy_backend(models):
    """The model step stays PyTorch; the strategy program runs on the named backend."""
    hf, model = models["llama"]
    kw = dict(STRATEGIES["beam"], return_dict_in_generate=False, output_scores=False)
    ref = hf_generate(hf, **kw).numpy()
    np.testing.assert_array_equal(quiet_generate(hf, IDS, MASK, backend="numpy", **kw), ref)
    np.testing.assert_array_equal(quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **kw), ref)


def test_native_numpy_callable_with_tuple_cache(models):
    """Any callable returning (logits, cache) works; nested array caches are reordered by gather."""
    _, model = models["gpt2"]
    prog = model.with_past_program("numpy")
    n_layers = model.config.num_hidden_layers

    def lm(input_ids, attention_mask, past_key_values=None, use_cache=True):
        past = past_key_values or tuple(
            tuple(model.empty_past(input_ids.shape[0])[2 * i : 2 * i + 2]) for i in range(n_layers)
        )
        outs = prog(input_ids, attention_mask, *[a for kv in past for a in kv])
        return outs[0], tuple((outs[1 + 2 * i], outs[2 + 2 * i]) for i in range(n_layers))

    kw = dict(STRATEGIES["beam"], return_dict_in_generate=False, output_scores=False)
    ours = quiet_generate(lm, IDS, MASK, backend="numpy", pad_token_id=PAD, **kw)
    np.testing.assert_array_equal(ours, quiet_generate(model, IDS, MASK, backend="numpy", **kw))


# ------------------------------------------------------------------------------------------ streaming
@pytest.mark.parametrize("trace", [False, True])
def test_streamer_receives_exactly_the_result_tokens(models, trace):
    _, model = models["llama"]
    s = TokenCollector()
    out = quiet_generate(
        model, IDS, MASK, backend="numpy", trace=trace, streamer=s, max_new_tokens=6, eos_token_id=EOS
    )
    assert s.ended
    np.testing.assert_array_equal(s.prompt, IDS)
    assert len(s.tokens) == out.shape[1] - IDS.shape[1] > 0
    np.testing.assert_array_equal(np.stack(s.tokens, axis=1), out[:, IDS.shape[1] :])


def test_stepwise_streamer_gets_tokens_as_they_are_produced(models):
    """Wrap the native model to count its calls: in step-wise mode token k (k >= 1) is put after
    exactly k model calls (prefill + k - 1 steps), i.e. before generation has finished."""
    hf, _ = models["gpt2"]
    calls = []

    def lm(**kw):  # a plain function: it gets numpy arrays and hands torch tensors to the model
        calls.append(1)
        with torch.no_grad():
            return hf(**{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()})

    class Probe(TokenCollector):
        def put(self, value):
            super().put(value)
            seen.append(len(calls))

    seen: list = []
    s = Probe()
    out = quiet_generate(lm, IDS[:1], MASK[:1], streamer=s, max_new_tokens=6, eos_token_id=EOS)
    generated = out.shape[1] - IDS.shape[1]
    assert seen == [0] + list(range(1, generated + 1))
    assert len(calls) == generated  # the last token needs no further model call


def _tokenizer():
    from tensorweave.models.tokenizer import Tokenizer

    special = ["<unk>", "<s>", "<pad>", "</s>"]
    tokens = (
        special + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["\u0120"] + [str(d) for d in range(9)]
    )
    assert len(tokens) == VOCAB
    return Tokenizer.from_bpe(tokens, [], special, split_digits=False, eos_token="</s>", pad_token="<pad>")


@pytest.mark.parametrize("skip_prompt", [False, True])
def test_text_streamer_emits_whole_words_and_the_full_text(models, skip_prompt):
    _, model = models["gpt2"]
    tok = _tokenizer()
    pieces = []

    class Capture(tw.TextStreamer):
        def on_finalized_text(self, text, stream_end=False):
            pieces.append((text, stream_end))

    ids = np.asarray([tok.encode("ab cd e", add_special_tokens=False)], np.int64)
    out = quiet_generate(
        model,
        ids,
        backend="numpy",
        trace=False,
        max_new_tokens=12,
        eos_token_id=EOS,
        suppress_tokens=[EOS],
        streamer=Capture(tok, skip_prompt=skip_prompt),
    )
    start = ids.shape[1] if skip_prompt else 0
    assert "".join(p for p, _ in pieces) == tok.decode(out[0, start:])
    assert [end for _, end in pieces] == [False] * (len(pieces) - 1) + [True]
    # text is released in whole words: every piece before the end stops after a space
    assert all(p == "" or p.endswith(" ") for p, _ in pieces[:-1])


def test_text_iterator_streamer_in_a_thread(models):
    _, model = models["gpt2"]
    tok = _tokenizer()
    streamer = tw.TextIteratorStreamer(tok, skip_prompt=True, timeout=60)
    ids = np.asarray([tok.encode("ab cd", add_special_tokens=False)], np.int64)
    result = {}

    def run():
        result["out"] = quiet_generate(
            model, ids, backend="numpy", trace=False, max_new_tokens=8, eos_token_id=EOS, streamer=streamer
        )

    t = threading.Thread(target=run)
    t.start()
    text = "".join(streamer)
    t.join()
    assert text == tok.decode(result["out"][0, ids.shape[1] :])


def test_text_streamer_rejects_batches_and_beams(models):
    _, model = models["gpt2"]
    with pytest.raises(ValueError, match="TextStreamer only supports batch size 1"):
        quiet_generate(
            model,
            IDS,
            MASK,
            backend="numpy",
            trace=False,
            max_new_tokens=2,
            streamer=tw.TextStreamer(_tokenizer()),
        )
    with pytest.raises(ValueError, match="`streamer` cannot be used with beam search"):
        quiet_generate(
            model, IDS, MASK, backend="numpy", num_beams=2, max_new_tokens=2, streamer=TokenCollector()
        )


# ------------------------------------------------------------------------------------------ prefix_allowed_tokens_fn
def allowed(batch_id, ids):
    """Depends on the batch item and on the last token (HF passes a torch row, we a numpy row)."""
    last = int(ids[-1])
    return [EOS, 4 + (last * 7 + batch_id) % 30, 5 + (last * 3) % 31, 20 + batch_id]


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_prefix_allowed_tokens_fn_matches_transformers(models, strategy):
    hf, model = models["llama"]
    kw = dict(STRATEGIES[strategy])
    kw.pop("repetition_penalty", None)
    ref = hf_generate(hf, prefix_allowed_tokens_fn=allowed, **kw)
    for m in (model, hf):
        ours = quiet_generate(
            m, IDS, MASK, backend="numpy", trace=False, prefix_allowed_tokens_fn=allowed, **kw
        )
        np.testing.assert_array_equal(ours.sequences, ref.sequences.numpy())
        if strategy == "beam":
            np.testing.assert_allclose(ours.sequences_scores, ref.sequences_scores.numpy(), atol=1e-4)
    # the constraint really acts: every generated token is allowed for its row
    seqs = ours.sequences
    n = kw.get("num_return_sequences", 1)
    for r in range(seqs.shape[0]):
        for t in range(IDS.shape[1], seqs.shape[1]):
            if t > IDS.shape[1] and seqs[r, t - 1] == EOS:
                break
            assert seqs[r, t] in allowed(r // n, seqs[r, :t])


def test_prefix_allowed_tokens_fn_needs_stepwise(models):
    _, model = models["gpt2"]
    with pytest.raises(ValueError, match="trace=False"):
        tw.generate(model, IDS, MASK, backend="numpy", max_new_tokens=2, prefix_allowed_tokens_fn=allowed)
    with pytest.raises(ValueError, match="returned an empty list for batch ID 0"):
        quiet_generate(
            model,
            IDS,
            MASK,
            backend="numpy",
            trace=False,
            max_new_tokens=2,
            prefix_allowed_tokens_fn=lambda b, ids: [],
        )


def test_native_model_rejects_fused_mode(models):
    hf, _ = models["gpt2"]
    with pytest.raises(ValueError, match="step-wise only"):
        tw.generate(hf, IDS, MASK, trace=True, max_new_tokens=2)
    with pytest.raises(ValueError, match="tensorweave Model or a callable"):
        tw.generate(object(), IDS, MASK, max_new_tokens=2)
    with pytest.raises(ValueError, match="prng_key must be a uint32"):
        tw.generate(hf, IDS, MASK, max_new_tokens=2, prng_key=np.zeros(2, np.int64))


# ------------------------------------------------------------------------------------------ group beam search
def _log_softmax(x):
    x = x.astype(np.float64)
    m = x.max()
    return (x - m - np.log(np.exp(x - m).sum())).astype(np.float32)


def ref_group_beam_search(model, prompts, pmask, n, groups, max_length, eos, pad, lp, early, keep, penalty):
    """An independent transcription of PT 4.37 group_beam_search + BeamSearchScorer (with groups),
    recomputing the model's logits on the whole sequence each step (no cache). Beam indices are
    global rows (see spec/generation.md)."""
    from test_decode_loops import Hyps

    B, P = prompts.shape
    gs, V = n // groups, model.config.vocab_size
    seqs = [list(p) for p in prompts for _ in range(n)]
    masks = [list(m) for m in pmask for _ in range(n)]
    bidx = [[] for _ in range(B * n)]
    scores = np.array([0.0 if j % gs == 0 else -1e9 for _ in range(B) for j in range(n)], np.float32)
    hyps = [[Hyps(gs, lp, early, max_length) for _ in range(groups)] for _ in range(B)]
    done = [[False] * groups for _ in range(B)]
    K = max(2, 1 + len(eos)) * gs
    while True:
        cur_len = len(seqs[0])
        full = np.array([m + [1] * (cur_len - P) for m in masks])
        logits = np.asarray(model(np.array(seqs), full, backend="numpy")["logits"])[:, -1]
        new_seqs, new_scores, new_bidx = list(seqs), scores.copy(), list(bidx)
        current = np.zeros(B * n, np.int64)
        for g in range(groups):
            for b in range(B):
                rows = [b * n + g * gs + j for j in range(gs)]
                logp = np.stack([_log_softmax(logits[r]) for r in rows])
                if g > 0:  # HammingDiversity: tokens chosen this step by earlier groups of the item
                    logp = logp - np.float32(penalty) * np.bincount(
                        current[b * n : b * n + g * gs], minlength=V
                    ).astype(np.float32)
                total = (logp + scores[rows][:, None]).reshape(gs * V)
                order = sorted(range(gs * V), key=lambda i: (-total[i], i))[:K]
                if done[b][g]:
                    for r in rows:
                        new_seqs[r], new_scores[r], new_bidx[r] = seqs[rows[0]] + [pad], 0.0, bidx[rows[0]]
                        current[r] = pad
                    continue
                filled = 0
                for rank, idx in enumerate(order):
                    row, tok = rows[idx // V], idx % V
                    if tok in eos:
                        if rank < gs:
                            hyps[b][g].add(
                                list(seqs[row]), float(total[idx]), bidx[row] + [row], cur_len + 1 - P
                            )
                    else:
                        r = rows[filled]
                        new_seqs[r], new_scores[r], new_bidx[r] = (
                            seqs[row] + [tok],
                            total[idx],
                            bidx[row] + [row],
                        )
                        current[r] = tok
                        filled += 1
                    if filled == gs:
                        break
                done[b][g] = done[b][g] or hyps[b][g].is_done(float(total[order[0]]), cur_len + 1, P)
        seqs, scores, bidx = new_seqs, np.array(new_scores, np.float32), new_bidx
        if all(all(d) for d in done) or len(seqs[0]) >= max_length:
            break
    best = []
    for b in range(B):
        cands = []
        for g in range(groups):
            if not done[b][g]:
                for j in range(gs):
                    row = b * n + g * gs + j
                    hyps[b][g].add(list(seqs[row]), float(scores[row]), bidx[row], len(seqs[row]) - P)
            cands += hyps[b][g].beams
        ranked = sorted(cands, key=lambda x: x[0])  # stable; the best is popped from the end
        best += [ranked.pop() for _ in range(keep)]
    out_len = min(max(len(h) for _, h, _ in best) + 1, max_length)
    out = np.full((len(best), out_len), pad, np.int64)
    ind = np.full((len(best), out_len), -1, np.int64)
    for i, (_, h, bi) in enumerate(best):
        out[i, : len(h)] = h
        if len(h) < out_len:
            out[i, len(h)] = eos[0]
        ind[i, : len(bi)] = bi
    return out, np.array([s for s, _, _ in best], np.float32), ind


GROUP_CASES = {  # (num_beams, num_beam_groups, num_return_sequences, length_penalty, early_stopping)
    "4x2": (4, 2, 2, 1.0, False),
    "6x3-early": (6, 3, 3, 2.0, True),
    "3x3-never": (3, 3, 2, 1.0, "never"),  # group size 1
}


@pytest.fixture(scope="module")
def group_reference(models):
    cache = {}

    def get(case):
        if case not in cache:
            n, g, k, lp, early = GROUP_CASES[case]
            cache[case] = ref_group_beam_search(
                models["llama"][1], IDS, MASK, n, g, IDS.shape[1] + 5, (EOS,), PAD, lp, early, k, 1.5
            )
        return cache[case]

    return get


def group_kwargs(case):
    n, g, k, lp, early = GROUP_CASES[case]
    return dict(
        max_new_tokens=5,
        num_beams=n,
        num_beam_groups=g,
        diversity_penalty=1.5,
        num_return_sequences=k,
        length_penalty=lp,
        early_stopping=early,
        eos_token_id=EOS,
        output_scores=True,
        return_dict_in_generate=True,
    )


@pytest.mark.parametrize("case", list(GROUP_CASES))
def test_group_beam_search_matches_reference(models, group_reference, case):
    _, model = models["llama"]
    ours = quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **group_kwargs(case))
    seqs, seq_scores, bidx = group_reference(case)
    np.testing.assert_array_equal(ours.sequences, seqs)
    np.testing.assert_allclose(ours.sequences_scores, seq_scores, atol=1e-5)
    np.testing.assert_array_equal(ours.beam_indices, bidx)
    # scores / beam_indices are consistent: transition scores rebuild sequences_scores
    lp = GROUP_CASES[case][3]
    trans = tw.compute_transition_scores(ours.sequences, ours.scores, ours.beam_indices)
    np.testing.assert_allclose(trans.sum(1) / (trans < 0).sum(1) ** lp, ours.sequences_scores, atol=1e-4)


def test_group_beam_search_on_every_backend(models, group_reference, framework_backend):
    _, model = models["llama"]
    ours = quiet_generate(model, IDS, MASK, backend=framework_backend, trace=False, **group_kwargs("4x2"))
    np.testing.assert_array_equal(ours.sequences, group_reference("4x2")[0])
    np.testing.assert_array_equal(ours.beam_indices, group_reference("4x2")[2])


def test_group_beam_search_with_a_native_transformers_model(models, group_reference):
    hf, _ = models["llama"]
    ours = quiet_generate(hf, IDS, MASK, backend="numpy", **group_kwargs("6x3-early"))
    np.testing.assert_array_equal(ours.sequences, group_reference("6x3-early")[0])


def test_diversity_penalty_changes_the_groups(models):
    _, model = models["llama"]
    kw = dict(group_kwargs("4x2"), return_dict_in_generate=False, output_scores=False, num_return_sequences=4)
    diverse = quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **kw)
    plain = quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **dict(kw, diversity_penalty=1e-6))
    assert not np.array_equal(diverse, plain)


def test_group_beam_search_needs_stepwise_and_valid_groups(models):
    _, model = models["llama"]
    with pytest.raises(ValueError, match="trace=False"):
        quiet_generate(model, IDS, MASK, backend="numpy", **group_kwargs("4x2"))
    with pytest.raises(ValueError, match="diversity_penalty"):
        quiet_generate(
            model, IDS, MASK, backend="numpy", trace=False, **dict(group_kwargs("4x2"), diversity_penalty=0.0)
        )


def test_custom_processor_runs_inside_the_step_program(models):
    """A user's processor (any xp-written LogitsProcessor) is traced into the per-step program."""
    from tensorweave.frontends.generation import logits_process as lp

    class BanBelow(lp.LogitsProcessor):
        def __call__(self, input_ids, scores, cur_len=None):
            xp = tw.ir.array_namespace(scores)
            return xp.where(xp.arange(scores.shape[-1])[None, :] < 20, xp.full_like(scores, -np.inf), scores)

    _, model = models["gpt2"]
    custom = [BanBelow()]
    kw = dict(max_new_tokens=4, eos_token_id=EOS, logits_processor=custom)
    step = quiet_generate(model, IDS, MASK, backend="numpy", trace=False, **kw)
    np.testing.assert_array_equal(step, quiet_generate(model, IDS, MASK, backend="numpy", **kw))
    assert (step[:, IDS.shape[1] :] >= 20).all()


def test_native_model_accepts_torch_inputs(models):
    hf, _ = models["gpt2"]
    kw = dict(max_new_tokens=4, eos_token_id=EOS)
    ours = quiet_generate(hf, torch.from_numpy(IDS), torch.from_numpy(MASK), **kw)
    np.testing.assert_array_equal(ours, hf_generate(hf, **kw).numpy())


def test_step_programs_are_dropped_with_their_model(models):
    """Programs holding a model's weights are cached weakly per model, not by a reusable id."""
    import gc

    from tensorweave.generation.programs import PROGRAMS

    _, base = models["gpt2"]
    from tensorweave.models.model import Model

    temp = Model(base.config, {k: v.copy() for k, v in base.params.items()})
    quiet_generate(temp, IDS, MASK, backend="numpy", trace=False, max_new_tokens=2, eos_token_id=EOS)
    assert temp in PROGRAMS
    before = len(PROGRAMS)
    del temp
    gc.collect()
    assert len(PROGRAMS) == before - 1
