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
        np.testing.assert_array_equal(np.asarray(out.sequences), ref.sequences)  # jax: padded to 16, unpadded
        assert len(out.scores) == len(ref.scores)
        for a, b in zip(out.scores, ref.scores):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5)
        if kw:
            np.testing.assert_array_equal(np.asarray(out.beam_indices), ref.beam_indices)


def test_settings_that_need_the_lengths_keep_a_program_per_shape(lms):
    hf, lm = lms
    programs.PROGRAMS.clear(lm)
    for length in (3, 5):
        ids = np.full((1, length), 7)
        got = tw.generate(lm, ids, backend="numpy", max_new_tokens=4, min_new_tokens=3)
        np.testing.assert_array_equal(got, hf_tokens(hf, ids, max_new_tokens=4, min_new_tokens=3))
    assert kinds(lm) == ["fused", "fused"]


def test_cap_is_a_power_of_two_of_at_least_min_cap(lms):
    lm = lms[1]
    cap = [
        fused.any_prompt_cap(resolve_plan(lm, (1, 4), None, dict(max_new_tokens=n, do_sample=False)))
        for n in (1, 30, 60)
    ]
    assert cap == [fused.MIN_CAP] * 3
    assert fused._bucket(65, fused.MIN_CAP) == 128 and fused._bucket(128, fused.MIN_CAP) == 128
    plan = resolve_plan(lm, (1, 4), None, dict(max_new_tokens=4, forced_eos_token_id=3))
    assert fused.any_prompt_cap(plan) is None  # ForcedEOS needs max_length at trace time
