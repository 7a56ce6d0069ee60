"""Processors and warpers are built from a GenerationConfig in Hugging Face's order (Transformers 4.37, PyTorch)."""

import pytest

from tensorweave.frontends import generation as G
from tensorweave.frontends.generation.builder import get_logits_processor, get_logits_warper


def names(lst):
    return [type(p).__name__ for p in lst]


def test_processor_order_pt():
    cfg = G.GenerationConfig(
        sequence_bias={(1,): 1.0},
        repetition_penalty=1.2,
        no_repeat_ngram_size=2,
        bad_words_ids=[[3]],
        min_length=3,
        min_new_tokens=2,
        eos_token_id=2,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        remove_invalid_values=True,
        exponential_decay_length_penalty=(2, 1.1),
        suppress_tokens=[5],
        begin_suppress_tokens=[6],
        forced_decoder_ids=[[1, 4]],
        renormalize_logits=True,
    )
    assert names(get_logits_processor(cfg, input_ids_seq_length=4)) == [
        "SequenceBiasLogitsProcessor",
        "RepetitionPenaltyLogitsProcessor",
        "NoRepeatNGramLogitsProcessor",
        "NoBadWordsLogitsProcessor",
        "MinLengthLogitsProcessor",
        "MinNewTokensLengthLogitsProcessor",
        "ForcedBOSTokenLogitsProcessor",
        "ForcedEOSTokenLogitsProcessor",
        "InfNanRemoveLogitsProcessor",
        "ExponentialDecayLengthPenalty",
        "SuppressTokensLogitsProcessor",
        "SuppressTokensAtBeginLogitsProcessor",
        "ForceTokensLogitsProcessor",
        "LogitNormalization",
    ]
    begin = [
        p for p in get_logits_processor(cfg, 4) if isinstance(p, G.SuppressTokensAtBeginLogitsProcessor)
    ][0]
    assert begin.begin_index == 4 + 1  # prompt length + the last forced decoder index
    assert names(get_logits_processor(G.GenerationConfig(), 4)) == []
    # min_length without eos adds nothing
    assert names(get_logits_processor(G.GenerationConfig(min_length=5), 4)) == []


def test_warper_order_and_min_keep():
    cfg = G.GenerationConfig(
        do_sample=True,
        temperature=0.7,
        top_k=10,
        top_p=0.9,
        typical_p=0.9,
        epsilon_cutoff=0.01,
        eta_cutoff=0.01,
    )
    assert names(get_logits_warper(cfg)) == [
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "TopPLogitsWarper",
        "TypicalLogitsWarper",
        "EpsilonLogitsWarper",
        "EtaLogitsWarper",
    ]
    assert names(get_logits_warper(G.GenerationConfig(do_sample=True))) == [
        "TopKLogitsWarper"
    ]  # top_k=50 default
    beams = G.GenerationConfig(do_sample=True, num_beams=4, eos_token_id=[1, 2, 3], top_p=0.5)
    assert get_logits_warper(beams)[1].min_tokens_to_keep == 4
    assert (
        get_logits_warper(G.GenerationConfig(do_sample=True, num_beams=2, top_p=0.5))[1].min_tokens_to_keep
        == 2
    )


def test_custom_processor_of_existing_type_is_rejected():
    cfg = G.GenerationConfig(min_length=1, eos_token_id=0)
    with pytest.raises(ValueError, match="A custom logits processor of type"):
        get_logits_processor(cfg, 3, logits_processor=[G.MinLengthLogitsProcessor(10, eos_token_id=0)])
    cfg = G.GenerationConfig(min_length=0, eos_token_id=0)
    procs = get_logits_processor(cfg, 3, logits_processor=[G.MinLengthLogitsProcessor(10, eos_token_id=0)])
    assert names(procs) == ["MinLengthLogitsProcessor"]
