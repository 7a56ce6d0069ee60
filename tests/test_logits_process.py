"""Every logits processor / warper, traced and run on every backend, against hand-checked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends import generation as G
from tensorweave.ir import TensorSpec

NEG = -math.inf
_CACHE: dict = {}


def apply(proc, ids, scores, backend, cur_len=None, **kw):
    """Trace ``proc`` for these shapes (cur_len as a traced int64 scalar when given) and run it."""
    ids = np.asarray(ids, np.int64)
    scores = np.asarray(scores, np.float32)
    specs = [TensorSpec(ids.shape, "int64", "input_ids"), TensorSpec(scores.shape, "float32", "scores")]
    args = [ids, scores]
    if cur_len is not None:
        specs.append(TensorSpec((), "int64", "cur_len"))
        args.append(np.asarray(cur_len, np.int64))
        fn = lambda i, s, c: proc(i, s, c, **kw)  # noqa: E731
    else:
        fn = lambda i, s: proc(i, s, **kw)  # noqa: E731
    graph = tw.trace(fn, *specs)
    return np.asarray(tw.lower(graph, backend=backend)(*args))


def test_temperature(backend):
    out = apply(G.TemperatureLogitsWarper(2.0), [[0]], [[1.0, -4.0, 0.5]], backend)
    np.testing.assert_allclose(out, [[0.5, -2.0, 0.25]])
    with pytest.raises(ValueError, match="strictly positive float"):
        G.TemperatureLogitsWarper(2)
    with pytest.raises(ValueError, match="do_sample=False"):
        G.TemperatureLogitsWarper(0.0)


def test_top_k_keeps_ties(backend):
    out = apply(G.TopKLogitsWarper(2), [[0]], [[1.0, 3.0, 2.0, 3.0, 0.0]], backend)
    np.testing.assert_array_equal(out, [[NEG, 3.0, NEG, 3.0, NEG]])
    out = apply(G.TopKLogitsWarper(1, min_tokens_to_keep=3), [[0]], [[1.0, 3.0, 2.0, 0.5, 0.0]], backend)
    np.testing.assert_array_equal(out, [[1.0, 3.0, 2.0, NEG, NEG]])
    with pytest.raises(ValueError, match="strictly positive integer"):
        G.TopKLogitsWarper(0)


def test_top_p(backend):
    # probs 0.5, 0.3, 0.15, 0.05: ascending cum = 0.05, 0.2, 0.5, 1.0; remove cum <= 1 - 0.7 = 0.3
    p = np.array([0.5, 0.3, 0.15, 0.05])
    out = apply(G.TopPLogitsWarper(0.7), [[0]], [np.log(p)], backend)
    assert np.isfinite(out[0, :2]).all() and (out[0, 2:] == NEG).all()
    out = apply(G.TopPLogitsWarper(0.1, min_tokens_to_keep=2), [[0]], [np.log(p)], backend)
    assert np.isfinite(out[0, :2]).all() and (out[0, 2:] == NEG).all()
    with pytest.raises(ValueError, match="`top_p` has to be a float > 0 and < 1"):
        G.TopPLogitsWarper(1.5)


def test_typical(backend):
    p = np.array([0.7, 0.2, 0.05, 0.05])
    H = -(p * np.log(p)).sum()
    shifted = np.abs(-np.log(p) - H)
    order = np.argsort(shifted, kind="stable")
    cum = np.cumsum(p[order])
    last = min(int((cum < 0.5).sum()), 3)
    keep = shifted <= shifted[order][last]
    out = apply(G.TypicalLogitsWarper(0.5), [[0]], [np.log(p)], backend)
    np.testing.assert_array_equal(np.isfinite(out[0]), keep)
    with pytest.raises(ValueError, match="`typical_p` has to be a float > 0 and < 1"):
        G.TypicalLogitsWarper(1.0)


def test_epsilon_and_eta(backend):
    p = np.array([0.6, 0.3, 0.06, 0.04])
    out = apply(G.EpsilonLogitsWarper(0.05), [[0]], [np.log(p)], backend)
    np.testing.assert_array_equal(np.isfinite(out[0]), [True, True, True, False])
    H = -(p * np.log(p)).sum()
    eta = min(0.1, math.sqrt(0.1) * math.exp(-H))
    out = apply(G.EtaLogitsWarper(0.1), [[0]], [np.log(p)], backend)
    np.testing.assert_array_equal(np.isfinite(out[0]), p >= eta)
    out = apply(G.EpsilonLogitsWarper(0.5, min_tokens_to_keep=3), [[0]], [np.log(p)], backend)
    np.testing.assert_array_equal(np.isfinite(out[0]), [True, True, True, False])
    with pytest.raises(ValueError, match="`epsilon_cutoff` has to be a float > 0 and < 1"):
        G.EpsilonLogitsWarper(0.0)


def test_min_length_and_min_new_tokens(backend):
    s = [[1.0, 2.0, 3.0]]
    out = apply(G.MinLengthLogitsProcessor(3, [2, 0]), [[5, 6]], s, backend)
    np.testing.assert_array_equal(out, [[NEG, 2.0, NEG]])
    out = apply(G.MinLengthLogitsProcessor(3, 2), [[5, 6, 7]], s, backend)
    np.testing.assert_array_equal(out, s)
    # fused form: a static buffer with cur_len as a traced scalar
    out = apply(G.MinLengthLogitsProcessor(3, 2), [[5, 6, 0, 0]], s, backend, cur_len=2)
    np.testing.assert_array_equal(out, [[1.0, 2.0, NEG]])
    out = apply(G.MinNewTokensLengthLogitsProcessor(2, 2, 1), [[5, 6, 7]], s, backend)
    np.testing.assert_array_equal(out, [[1.0, NEG, 3.0]])
    with pytest.raises(ValueError, match="`min_length` has to be a non-negative integer"):
        G.MinLengthLogitsProcessor(-1, 0)


def test_repetition_penalty(backend):
    out = apply(G.RepetitionPenaltyLogitsProcessor(2.0), [[0, 2, 2]], [[-1.0, 4.0, 3.0, 1.0]], backend)
    np.testing.assert_allclose(out, [[-2.0, 4.0, 1.5, 1.0]])
    # positions at or beyond cur_len are ignored in the fused form
    out = apply(
        G.RepetitionPenaltyLogitsProcessor(2.0), [[0, 3, 1]], [[-1.0, 4.0, 3.0, 1.0]], backend, cur_len=2
    )
    np.testing.assert_allclose(out, [[-2.0, 4.0, 3.0, 0.5]])
    out = apply(G.EncoderRepetitionPenaltyLogitsProcessor(2.0, np.array([[1]])), [[0]], [[1.0, 4.0]], backend)
    np.testing.assert_allclose(out, [[1.0, 8.0]])
    with pytest.raises(ValueError, match="strictly positive float"):
        G.RepetitionPenaltyLogitsProcessor(0.0)


def test_no_repeat_ngram(backend):
    # row 1 2 1: bigram (1, 2) seen, last token 1 -> ban 2
    out = apply(G.NoRepeatNGramLogitsProcessor(2), [[1, 2, 1]], [[0.0, 0.0, 0.0, 0.0]], backend)
    np.testing.assert_array_equal(out, [[0.0, 0.0, NEG, 0.0]])
    # trigram: 3 1 2 ... 3 1 -> ban 2; nothing when cur_len + 1 < n
    out = apply(G.NoRepeatNGramLogitsProcessor(3), [[3, 1, 2, 3, 1]], [[0.0] * 4], backend)
    np.testing.assert_array_equal(out, [[0.0, 0.0, NEG, 0.0]])
    out = apply(G.NoRepeatNGramLogitsProcessor(3), [[3]], [[0.0] * 4], backend)
    np.testing.assert_array_equal(out, [[0.0] * 4])
    out = apply(G.NoRepeatNGramLogitsProcessor(2), [[1, 2, 1, 3, 3]], [[0.0] * 4], backend, cur_len=3)
    np.testing.assert_array_equal(out, [[0.0, 0.0, NEG, 0.0]])
    out = apply(
        G.EncoderNoRepeatNGramLogitsProcessor(2, np.array([[4, 2, 1, 3]])), [[0, 2]], [[0.0] * 5], backend
    )
    np.testing.assert_array_equal(out, [[0.0, NEG, 0.0, 0.0, 0.0]])


def test_sequence_bias_and_bad_words(backend):
    proc = G.SequenceBiasLogitsProcessor({(1,): 1.5, (2, 3): -2.0, (3, 3, 0): 5.0})
    out = apply(proc, [[0, 2]], [[0.0, 0.0, 0.0, 0.0]], backend)
    np.testing.assert_allclose(out, [[0.0, 1.5, 0.0, -2.0]])
    out = apply(proc, [[0, 1]], [[0.0] * 4], backend)
    np.testing.assert_allclose(out, [[0.0, 1.5, 0.0, 0.0]])
    with pytest.raises(
        ValueError, match="vocabulary size is 4, but the following tokens were being biased: \\[9\\]"
    ):
        apply(G.SequenceBiasLogitsProcessor({(9,): 1.0}), [[0]], [[0.0] * 4], backend)
    bad = G.NoBadWordsLogitsProcessor([[2], [0, 1], [3]], eos_token_id=3)
    out = apply(bad, [[2, 0]], [[1.0, 1.0, 1.0, 1.0]], backend)
    np.testing.assert_array_equal(out, [[1.0, NEG, NEG, 1.0]])  # [3] == [eos] is not banned (PT)
    with pytest.raises(ValueError, match="non-empty dictionary"):
        G.SequenceBiasLogitsProcessor({})
    with pytest.raises(ValueError, match="floats as values"):
        G.SequenceBiasLogitsProcessor({(1,): 1})
    with pytest.raises(ValueError, match="list of lists"):
        G.NoBadWordsLogitsProcessor([1, 2])


def test_forced_and_suppressed_tokens(backend):
    s = [[1.0, 2.0, 3.0]]
    np.testing.assert_array_equal(
        apply(G.ForcedBOSTokenLogitsProcessor(2), [[0]], s, backend), [[NEG, NEG, 0.0]]
    )
    np.testing.assert_array_equal(apply(G.ForcedBOSTokenLogitsProcessor(2), [[0, 1]], s, backend), s)
    np.testing.assert_array_equal(
        apply(G.ForcedEOSTokenLogitsProcessor(4, [0, 1]), [[0, 1, 2]], s, backend), [[0.0, 0.0, NEG]]
    )
    np.testing.assert_array_equal(
        apply(G.SuppressTokensLogitsProcessor([0, 2]), [[0]], s, backend), [[NEG, 2.0, NEG]]
    )
    np.testing.assert_array_equal(
        apply(G.SuppressTokensAtBeginLogitsProcessor([1], 2), [[0, 0]], s, backend), [[1.0, NEG, 3.0]]
    )
    np.testing.assert_array_equal(
        apply(G.SuppressTokensAtBeginLogitsProcessor([1], 2), [[0, 0, 0]], s, backend), s
    )
    np.testing.assert_array_equal(
        apply(G.ForceTokensLogitsProcessor([[2, 0], [3, 1]]), [[5, 5, 5]], s, backend), [[NEG, 0.0, NEG]]
    )


def test_inf_nan_remove_decay_and_normalization(backend):
    f32 = np.finfo(np.float32)
    out = apply(G.InfNanRemoveLogitsProcessor(), [[0]], [[np.nan, np.inf, -np.inf, 1.0]], backend)
    np.testing.assert_array_equal(out, [[0.0, f32.max, f32.min, 1.0]])
    proc = G.ExponentialDecayLengthPenalty((1, 2.0), eos_token_id=0, input_ids_seq_length=2)
    # start = 3; cur_len 5 -> eos score s + |s| * (2**2 - 1)
    out = apply(proc, [[1, 1, 1, 1, 1]], [[-1.0, 5.0]], backend)
    np.testing.assert_allclose(out, [[-1.0 + 1.0 * 3, 5.0]])
    out = apply(proc, [[1, 1, 1]], [[-1.0, 5.0]], backend)
    np.testing.assert_allclose(out, [[-1.0, 5.0]])
    row = [1.0, 2.0, 3.0]
    lse = math.log(sum(math.exp(v) for v in row))
    np.testing.assert_allclose(
        apply(G.LogitNormalization(), [[0]], [row], backend), [[v - lse for v in row]], rtol=1e-6
    )


def test_hamming_diversity(backend):
    proc = G.HammingDiversityLogitsProcessor(1.5, num_beams=4, num_beam_groups=2)
    # batch 1, 4 beams in 2 groups of 2; group 0 chose tokens 1 and 1 this step -> token 1 penalised by 2 * 1.5
    cur = np.array([1, 1, 0, 0], np.int64)
    ids = np.zeros((2, 1), np.int64)
    scores = np.zeros((2, 3), np.float32)
    graph = tw.trace(
        lambda i, s, c: proc(i, s, None, current_tokens=c, beam_group_idx=1),
        TensorSpec((2, 1), "int64"),
        TensorSpec((2, 3), "float32"),
        TensorSpec((4,), "int64"),
    )
    out = np.asarray(tw.lower(graph, backend=backend)(ids, scores, cur))
    np.testing.assert_allclose(out, [[0.0, -3.0, 0.0], [0.0, -3.0, 0.0]])
    with pytest.raises(ValueError, match="strictly larger than 0"):
        G.HammingDiversityLogitsProcessor(0.0, 4, 2)


def test_processor_list_passes_extra_kwargs_and_reports_missing():
    procs = G.LogitsProcessorList(
        [
            G.TemperatureLogitsWarper(2.0),
            G.HammingDiversityLogitsProcessor(1.0, num_beams=2, num_beam_groups=2),
        ]
    )
    graph = tw.trace(
        lambda i, s, c: procs(i, s, None, current_tokens=c, beam_group_idx=0),
        TensorSpec((1, 1), "int64"),
        TensorSpec((1, 2), "float32"),
        TensorSpec((2,), "int64"),
    )
    out = tw.lower(graph, backend="numpy")(
        np.zeros((1, 1), np.int64), np.array([[2.0, 4.0]], np.float32), np.zeros(2, np.int64)
    )
    np.testing.assert_allclose(out, [[1.0, 2.0]])
    with pytest.raises(ValueError, match="Make sure that all the required parameters"):
        tw.trace(lambda i, s: procs(i, s), TensorSpec((1, 1), "int64"), TensorSpec((1, 2), "float32"))
