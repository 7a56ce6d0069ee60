"""One fused program for any prompt (spec/generation.md, "Programs"): a new prompt length or a new
``max_new_tokens`` up to the program's cap reuses the compiled program on every backend, with
tokens equal to transformers'; settings that need the lengths at trace time keep one program per
shape; jax gets its prompts bucketed and the padding removed."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.generation import fused, programs
from tensorweave.generation.plan import resolve_plan

from tiny_lm import tiny_lm

PROMPTS = ((3, 2), (6, 5), (11, 9), (4, 1))  # (prompt length, max_new_tokens)


@pytest.fixture(scope="module")
def lms():
    return tiny_lm("llama", 11)


def hf_tokens(hf, ids, **kw):
    import torch

    with torch.no_grad():
        out = hf.generate(torch.tensor(ids), attention_mask=torch.ones(ids.shape, dtype=torch.long), **kw)
    return out.numpy()


def kinds(model) -> list:
    return sorted(k[1] for k in programs.PROGRAMS._store(model))


@pytest.mark.parametrize("settings", [dict(), dict(num_beams=2)], ids=["greedy", "beam"])
def test_new_prompts_reuse_one_program(lms, backend, settings):
    hf, lm = lms
    programs.PROGRAMS.clear(lm)
    rng = np.random.default_rng(0)
    for length, new in PROMPTS:
        ids = rng.integers(4, 40, (2, length))
        got = np.asarray(tw.generate(lm, ids, backend=backend, max_new_tokens=new, **settings))
        np.testing.assert_array_equal(got, hf_tokens(hf, ids, max_new_tokens=new, **settings))
    assert kinds(lm) == ["fused-any-prompt"]  # one program served every prompt and length


def test_scores_and_beam_outputs_through_the_any_prompt_program(lms):
    hf, lm = lms
    ids = np.asarray([[5, 9, 12, 7], [6, 6, 20, 30]])
    for kw in (dict(), dict(num_beams=3, num_return_sequences=2)):
        out = tw.generate(
            lm, ids, backend="jax", max_new_tokens=5, output_scores=True, return_dict_in_generate=True, **kw
        )
        ref = tw.generate(
            lm, ids, backend="numpy", max_new_tokens=5, output_scores=True, return_dict_in_generate=True, **kw
        )
        np.testing.assert_array_equal(np.asarray(out.sequences), ref.sequences)  # jax: padded to 64, unpadded
        assert len(out.scores) == len(ref.scores)
        for a, b in zip(out.scores, ref.scores):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5)
        if kw:
            np.testing.assert_array_equal(np.asarray(out.beam_indices), ref.beam_indices)


@pytest.mark.parametrize(
    "settings",
    [
        dict(min_new_tokens=3),
        dict(forced_eos_token_id=9),
        dict(exponential_decay_length_penalty=(1, 1.5)),
        dict(begin_suppress_tokens=[5, 6], suppress_tokens=[7]),
        dict(num_beams=2, forced_eos_token_id=9),  # (EOS-changing processors in beams: HF v5 renormalises)
    ],
    ids=["min_new_tokens", "forced_eos", "exp_decay", "begin_suppress", "beam"],
)
@pytest.mark.parametrize("backend_name", ["numpy", "jax"])
def test_length_processors_take_the_lengths_at_run_time(lms, settings, backend_name):
    """Processors built from the prompt length / max_length read them as run-time values: one
    program, tokens equal to transformers for every prompt (jax: bucketed prompts, which these
    processors count from the prompt's end and so do not see)."""
    hf, lm = lms
    programs.PROGRAMS.clear(lm)
    for length, new in PROMPTS:
        ids = np.random.default_rng(length).integers(4, 40, (2, length))
        got = tw.generate(lm, ids, backend=backend_name, max_new_tokens=new, **settings)
        np.testing.assert_array_equal(np.asarray(got), hf_tokens(hf, ids, max_new_tokens=new, **settings))
    assert kinds(lm) == ["fused-any-prompt"]


def test_history_processors_are_not_bucketed_on_jax(lms):
    """A repetition penalty sees every token of the row, so padding would change it: on jax such a
    plan runs the any-prompt program on the exact prompt (a compile per length), tokens as HF's."""
    hf, lm = lms
    programs.PROGRAMS.clear(lm)
    for length in (3, 5):
        ids = np.full((1, length), 7)
        got = tw.generate(
            lm, ids, backend="jax", max_new_tokens=4, repetition_penalty=1.3, no_repeat_ngram_size=2
        )
        want = hf_tokens(hf, ids, max_new_tokens=4, repetition_penalty=1.3, no_repeat_ngram_size=2)
        np.testing.assert_array_equal(np.asarray(got), want)


def test_custom_processors_keep_a_program_per_shape(lms):
    from tensorweave.frontends.generation.logits_process import LogitsProcessorList, MinLengthLogitsProcessor

    hf, lm = lms
    programs.PROGRAMS.clear(lm)
    custom = LogitsProcessorList([MinLengthLogitsProcessor(6, 3)])
    for length in (3, 5):
        tw.generate(lm, np.full((1, length), 7), backend="numpy", max_new_tokens=4, logits_processor=custom)
    assert kinds(lm) == ["fused", "fused"]


def test_cap_is_a_power_of_two_of_at_least_min_cap(lms):
    lm = lms[1]
    cap = [
        fused.any_prompt_cap(resolve_plan(lm, (1, 4), None, dict(max_new_tokens=n, do_sample=False)))
        for n in (1, 30, 60)
    ]
    assert cap == [fused.MIN_CAP] * 3
    assert fused._bucket(65, fused.MIN_CAP) == 128 and fused._bucket(128, fused.MIN_CAP) == 128
    plan = resolve_plan(
        lm, (1, 4), None, dict(max_new_tokens=4, begin_suppress_tokens=[5], forced_bos_token_id=1)
    )
    assert fused.any_prompt_cap(plan) is None  # its begin index depends on whether the prompt is one token
