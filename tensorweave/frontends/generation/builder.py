"""Build the processor and warper lists from a GenerationConfig, in the order of Transformers 4.37's
PyTorch ``generate()``."""

from __future__ import annotations

from typing import Any, Callable

from . import logits_process as lp
from .configuration import GenerationConfig
from .special_tokens import eos_ids


def merge_criteria_processor_list(
    default: lp.LogitsProcessorList, custom: list | None
) -> lp.LogitsProcessorList:
    """Append the user's processors; one of a type already built from the config is a ValueError."""
    if not custom:
        return default
    for c in custom:
        for d in default:
            if type(c) is type(d):
                raise ValueError(
                    f"A custom logits processor of type {type(c)} with values {c._values()} has been passed "
                    f"to `.generate()`, but it has already been created with the values {d._values()}. "
                    f"{d._values()} has been created by passing the corresponding arguments to generate or "
                    "by the model's config default values. If you just want to change the default values "
                    f"of logits processor consider passing them as arguments to `.generate()` instead of "
                    "using a custom logits processor."
                )
    default.extend(custom)
    return default


def get_logits_processor(
    config: GenerationConfig,
    input_ids_seq_length: int,
    encoder_input_ids: Any = None,
    prefix_allowed_tokens_fn: Callable | None = None,
    logits_processor: list | None = None,
) -> lp.LogitsProcessorList:
    """PT order: SequenceBias, HammingDiversity, EncoderRepetitionPenalty, RepetitionPenalty, NoRepeatNGram,
    EncoderNoRepeatNGram, NoBadWords, MinLength, MinNewTokens, PrefixConstrained, ForcedBOS, ForcedEOS,
    InfNanRemove, ExponentialDecay, SuppressTokens, SuppressTokensAtBegin, ForceTokens, custom,
    LogitNormalization (last, if renormalize_logits). Classifier-free guidance is not supported."""
    if config.guidance_scale is not None and config.guidance_scale != 1:
        raise ValueError("guidance_scale (classifier-free guidance) is not supported by tensorweave")
    procs = lp.LogitsProcessorList()
    eos = list(eos_ids(config.eos_token_id))
    if config.sequence_bias is not None:
        procs.append(lp.SequenceBiasLogitsProcessor(sequence_bias=config.sequence_bias))
    if config.diversity_penalty is not None and config.diversity_penalty > 0.0:
        procs.append(
            lp.HammingDiversityLogitsProcessor(
                diversity_penalty=config.diversity_penalty,
                num_beams=config.num_beams,
                num_beam_groups=config.num_beam_groups,
            )
        )
    if (
        config.encoder_repetition_penalty is not None
        and config.encoder_repetition_penalty != 1.0
        and encoder_input_ids is not None
    ):
        procs.append(
            lp.EncoderRepetitionPenaltyLogitsProcessor(config.encoder_repetition_penalty, encoder_input_ids)
        )
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        procs.append(lp.RepetitionPenaltyLogitsProcessor(penalty=config.repetition_penalty))
    if config.no_repeat_ngram_size is not None and config.no_repeat_ngram_size > 0:
        procs.append(lp.NoRepeatNGramLogitsProcessor(config.no_repeat_ngram_size))
    if (
        config.encoder_no_repeat_ngram_size is not None
        and config.encoder_no_repeat_ngram_size > 0
        and encoder_input_ids is not None
    ):
        procs.append(
            lp.EncoderNoRepeatNGramLogitsProcessor(config.encoder_no_repeat_ngram_size, encoder_input_ids)
        )
    if config.bad_words_ids is not None:
        procs.append(lp.NoBadWordsLogitsProcessor(config.bad_words_ids, config.eos_token_id))
    if config.min_length is not None and eos and config.min_length > 0:
        procs.append(lp.MinLengthLogitsProcessor(config.min_length, eos))
    if config.min_new_tokens is not None and eos and config.min_new_tokens > 0:
        procs.append(lp.MinNewTokensLengthLogitsProcessor(input_ids_seq_length, config.min_new_tokens, eos))
    if prefix_allowed_tokens_fn is not None:
        procs.append(
            lp.PrefixConstrainedLogitsProcessor(
                prefix_allowed_tokens_fn, config.num_beams // config.num_beam_groups
            )
        )
    if config.forced_bos_token_id is not None:
        procs.append(lp.ForcedBOSTokenLogitsProcessor(config.forced_bos_token_id))
    if config.forced_eos_token_id is not None:
        procs.append(lp.ForcedEOSTokenLogitsProcessor(config.max_length, config.forced_eos_token_id))
    if config.remove_invalid_values is True:
        procs.append(lp.InfNanRemoveLogitsProcessor())
    if config.exponential_decay_length_penalty is not None:
        procs.append(
            lp.ExponentialDecayLengthPenalty(
                config.exponential_decay_length_penalty, eos, input_ids_seq_length
            )
        )
    if config.suppress_tokens is not None:
        procs.append(lp.SuppressTokensLogitsProcessor(config.suppress_tokens))
    if config.begin_suppress_tokens is not None:
        begin_index = input_ids_seq_length
        if input_ids_seq_length <= 1 and config.forced_bos_token_id is not None:
            begin_index += 1
        if config.forced_decoder_ids is not None:
            begin_index += config.forced_decoder_ids[-1][0]
        procs.append(lp.SuppressTokensAtBeginLogitsProcessor(config.begin_suppress_tokens, begin_index))
    if config.forced_decoder_ids is not None:
        procs.append(lp.ForceTokensLogitsProcessor(config.forced_decoder_ids))
    procs = merge_criteria_processor_list(procs, logits_processor)
    if config.renormalize_logits is True:
        procs.append(lp.LogitNormalization())
    return procs


def get_logits_warper(config: GenerationConfig) -> lp.LogitsProcessorList:
    """PT order: Temperature (!= 1), TopK (not None and != 0), TopP (< 1), Typical (< 1), Epsilon,
    Eta, LogitNormalization if renormalize_logits. min_tokens_to_keep is 1 without beams, else 2
    (len(eos) + 1 when eos is a list)."""
    warpers = lp.LogitsProcessorList()
    if config.num_beams > 1:
        eos = config.eos_token_id
        min_keep = len(eos) + 1 if isinstance(eos, list) else 2
    else:
        min_keep = 1
    if config.temperature is not None and config.temperature != 1.0:
        warpers.append(lp.TemperatureLogitsWarper(config.temperature))
    if config.top_k is not None and config.top_k != 0:
        warpers.append(lp.TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=min_keep))
    if config.top_p is not None and config.top_p < 1.0:
        warpers.append(lp.TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=min_keep))
    if config.typical_p is not None and config.typical_p < 1.0:
        warpers.append(lp.TypicalLogitsWarper(mass=config.typical_p, min_tokens_to_keep=min_keep))
    if config.epsilon_cutoff is not None and 0.0 < config.epsilon_cutoff < 1.0:
        warpers.append(lp.EpsilonLogitsWarper(epsilon=config.epsilon_cutoff, min_tokens_to_keep=min_keep))
    if config.eta_cutoff is not None and 0.0 < config.eta_cutoff < 1.0:
        warpers.append(lp.EtaLogitsWarper(epsilon=config.eta_cutoff, min_tokens_to_keep=min_keep))
    if config.renormalize_logits is True:
        warpers.append(lp.LogitNormalization())
    return warpers
