"""``resolve_plan``: the one place a generation call's settings are interpreted.

The model's defaults (its config's special tokens), the ``GenerationConfig`` and the keyword
arguments of the call become one frozen :class:`GenerationPlan`: the mode, the eos ids as a tuple,
the pad id (with Hugging Face's eos fallback warning), the decoder start of an encoder-decoder,
the prompt length and ``max_length``, the ``BeamConfig``, the processors and warpers (built once,
by ``frontends/generation/builder.py``) and the cache key. Every validation of a call happens here,
before anything is traced. Fused programs, step-wise loops, contrastive search and
``export_generation`` take the plan and never read the config again.

A *tensorweave model* is recognised by duck typing (:func:`is_tensorweave_model`: it has
``params``, ``forward`` and ``config``), so this package never imports ``tensorweave.models``
(which imports it for ``Model.chat``). Anything else callable is a *native* model (e.g. a
``transformers`` PyTorch model), run step-wise.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import logging
import warnings
from typing import Any, Callable

import numpy as np

from ..frontends.generation.beam_search import BeamConfig, GroupBeamConfig
from ..frontends.generation.builder import get_logits_processor, get_logits_warper
from ..frontends.generation.configuration import GenerationConfig
from ..frontends.generation.logits_process import LogitsProcessorList, PrefixConstrainedLogitsProcessor
from ..frontends.generation.special_tokens import eos_ids
from ..ir.types import IRError

logger = logging.getLogger("tensorweave")

SPECIAL_TOKENS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
#: the model config fields that bound a decoder's positions, first found wins
POSITION_LIMITS = ("max_position_embeddings", "n_positions", "n_ctx")


class Mode(str, enum.Enum):
    """The decoding strategy, chosen by Hugging Face's rules (see ``select_mode``)."""

    GREEDY = "greedy"
    SAMPLE = "sample"
    BEAM = "beam"
    BEAM_SAMPLE = "beam_sample"
    GROUP_BEAM = "group_beam"
    CONTRASTIVE = "contrastive"


class EncoderIds:
    """Stands for the encoder ``input_ids`` in the encoder processors of a plan: the ids are a run-time
    value (a traced input in a fused program, a numpy array step-wise), bound by
    :meth:`GenerationPlan.processors_for`."""

    def __repr__(self) -> str:
        return "<encoder input_ids>"


ENCODER_IDS = EncoderIds()


def is_tensorweave_model(model: Any) -> bool:
    """A tensorweave ``Model`` (duck typing: ``params``, ``forward`` and ``config`` attributes)."""
    return all(hasattr(model, name) for name in ("params", "forward", "config"))


def model_generation_config(model: Any) -> GenerationConfig:
    """The defaults a model gives generation: a copy of ``model.generation_config`` when it is a
    :class:`GenerationConfig` (loaded from generation_config.json, the config's generation fields or
    GGUF metadata), its special tokens that are unset filled from the model config's; else the model
    config's special token ids."""
    own = getattr(model, "generation_config", None)
    config = copy.deepcopy(own) if isinstance(own, GenerationConfig) else None
    cfg = getattr(model, "config", None)
    fields = {k: getattr(cfg, k) for k in SPECIAL_TOKENS if getattr(cfg, k, None) is not None}
    if config is None:
        return GenerationConfig(**fields)
    for k, v in fields.items():
        if getattr(config, k, None) is None:
            setattr(config, k, v)
    return config


def merge_generation_config(user: GenerationConfig, defaults: GenerationConfig) -> GenerationConfig:
    """A user's ``generation_config`` (copied) whose unset special tokens take the model's values."""
    config = copy.deepcopy(user)
    for k in SPECIAL_TOKENS:
        if getattr(config, k, None) is None and getattr(defaults, k, None) is not None:
            setattr(config, k, copy.deepcopy(getattr(defaults, k)))
    return config


def position_limit(model: Any) -> tuple[str, int] | None:
    """``(field, limit)``: how many positions a decoder-only model has (None when its config names none)."""
    cfg = getattr(model, "config", None)
    for name in POSITION_LIMITS:
        value = getattr(cfg, name, None)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
            return name, int(value)
    return None


def validate_inputs(model: Any, input_ids: Any, attention_mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """``input_ids`` / ``attention_mask`` (host numpy arrays) checked the same way for every backend
    and returned as int64: integer ids in ``[0, vocab_size)``, a non-empty ``[batch, length]`` prompt,
    a mask of the same shape holding exactly 0 or 1. One-line ``IRError`` (a ValueError) otherwise."""
    if is_tensorweave_model(model) and model.is_encoder_decoder and model.encoder_input == "input_features":
        return validate_features(model, input_ids)
    ids = np.asarray(input_ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise IRError(
            f"input_ids must be an integer [batch, length] array, got {ids.dtype}{list(ids.shape)}; "
            "pass token ids, e.g. tokenizer(text)['input_ids']"
        )
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise IRError(
            f"input_ids is empty (shape {list(ids.shape)}); generation needs at least one prompt token per "
            "row, e.g. the bos token"
        )
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    low, high = int(ids.min()), int(ids.max())
    if low < 0:
        raise IRError(
            f"input_ids holds the negative id {low}; ids must be in [0, vocab_size"
            + (f"={vocab})" if vocab is not None else ")")
            + " (pad with pad_token_id and mask the padding with attention_mask)"
        )
    if isinstance(vocab, (int, np.integer)) and high >= vocab:
        raise IRError(
            f"input_ids holds the id {high}, outside the model's vocabulary (vocab_size={vocab}); "
            f"ids must be in [0, {vocab}): use the model's own tokenizer"
        )
    ids = ids.astype(np.int64)
    if attention_mask is None:
        return ids, np.ones_like(ids)
    mask = np.asarray(attention_mask)
    if mask.shape != ids.shape:
        raise IRError(f"attention_mask shape {mask.shape} must equal input_ids shape {ids.shape}")
    if mask.dtype.kind not in "biuf":
        raise IRError(
            f"attention_mask must be a 0/1 integer array, got dtype {mask.dtype}; pass the tokenizer's mask"
        )
    bad = ~np.isin(mask, (0, 1))
    if bad.any():
        raise IRError(
            f"attention_mask must hold exactly 0 (padding) or 1 (token), got {mask[bad].ravel()[0].item()!r}; "
            "pass the tokenizer's mask"
        )
    return ids, mask.astype(np.int64)


def validate_features(model: Any, input_features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Whisper's encoder input: float ``input_features [batch, num_mel_bins, frames]`` (returned as
    float32) and the all-ones mask of the encoder's output frames ``[batch, max_source_positions]``
    (the encoder sees every frame; an ``attention_mask`` argument is ignored, as in Hugging Face)."""
    feats = np.asarray(input_features)
    if feats.dtype.kind != "f":
        raise IRError(
            f"{model.model_type} generates from float input_features [batch, num_mel_bins, frames], got "
            f"{feats.dtype}{list(feats.shape)}; pass the feature extractor's input_features"
        )
    model.seq2seq_module.check_features(model.config, feats.shape)
    return feats.astype(np.float32), np.ones((feats.shape[0], model.config.max_source_positions), np.int64)


def is_contrastive(config: GenerationConfig) -> bool:
    """Hugging Face's mode rule: contrastive search when not sampling, one beam, ``top_k > 1`` and
    ``penalty_alpha > 0``."""
    return (
        not config.do_sample
        and config.num_beams == 1
        and config.penalty_alpha is not None
        and config.penalty_alpha > 0
        and config.top_k is not None
        and config.top_k > 1
    )


def select_mode(config: GenerationConfig) -> Mode:
    if is_contrastive(config):
        return Mode.CONTRASTIVE
    if config.num_beam_groups > 1:
        return Mode.GROUP_BEAM
    if config.num_beams > 1:
        return Mode.BEAM_SAMPLE if config.do_sample else Mode.BEAM
    return Mode.SAMPLE if config.do_sample else Mode.GREEDY


def processors_key(custom: list | None) -> Any:
    """Custom processors as part of a program cache key: the objects themselves (kept alive by the
    key, so an id is never reused by another object), or their ids when unhashable."""
    if not custom:
        return None
    try:
        key = tuple(custom)
        hash(key)
        return key
    except TypeError:
        return tuple(id(p) for p in custom)


@dataclasses.dataclass(frozen=True, eq=False)
class GenerationPlan:
    """A resolved, validated generation call (see the module docstring). ``prompt_len`` is the
    *decoder* prompt length (1 for an encoder-decoder); ``expand`` how many rows each batch item
    becomes (``num_beams`` with beams, else ``num_return_sequences``); ``beam`` the ``BeamConfig``
    of the beam modes (a ``GroupBeamConfig`` of one group for group beam search); ``key`` the part
    of a program cache key that stands for the settings; ``custom_key`` the user's processors."""

    mode: Mode
    native: bool
    fused: bool
    seq2seq: bool
    batch_size: Any
    prompt_len: Any
    max_length: Any
    eos: tuple
    pad: int
    decoder_start: int | None
    num_beams: int
    num_beam_groups: int
    num_return_sequences: int
    beam: BeamConfig | None
    top_k: int | None
    penalty_alpha: float | None
    output_scores: bool
    return_dict: bool
    processors: LogitsProcessorList
    warpers: LogitsProcessorList | None
    prefix: PrefixConstrainedLogitsProcessor | None
    key: tuple
    custom_key: Any
    #: the resolved config, for inspection; nothing downstream of resolve_plan reads it
    config: GenerationConfig = dataclasses.field(repr=False)

    @property
    def do_sample(self) -> bool:
        return self.mode in (Mode.SAMPLE, Mode.BEAM_SAMPLE)

    @property
    def expand(self) -> int:
        return self.num_beams if self.num_beams > 1 else self.num_return_sequences

    @property
    def encoder_processors(self) -> bool:
        """Whether a processor reads the encoder ids (they are then constants of step programs)."""
        return any(p.__class__.__name__.startswith("Encoder") for p in self.processors)

    def processors_for(self, encoder_input_ids: Any) -> LogitsProcessorList:
        """The processors with the encoder ids bound (a copy; the plan's list is left as it is)."""
        out = LogitsProcessorList()
        for p in self.processors:
            if getattr(p, "encoder_input_ids", None) is ENCODER_IDS:
                p = copy.copy(p)
                p.encoder_input_ids = encoder_input_ids
            out.append(p)
        return out

    def beam_for_vocab(self, vocab_size: int) -> BeamConfig:
        """The plan's BeamConfig for a step-wise run whose logits have ``vocab_size`` entries (a
        native model's vocabulary is known from its first logits)."""
        if self.beam.vocab_size == vocab_size:
            return self.beam
        return dataclasses.replace(self.beam, vocab_size=vocab_size)


CONSTRAINED_MESSAGE = (
    "constrained beam search is not implemented in tensorweave yet (`constraints`, `force_words_ids`); "
    "use greedy, sampling, contrastive search, beam search, beam sampling or (step-wise) group beam search"
)

# settings whose processors depend on the prompt length or on max_length, both run-time values in an
# exported generation
EXPORT_UNSUPPORTED = {
    "min_new_tokens": "MinNewTokensLengthLogitsProcessor needs the prompt length at trace time",
    "exponential_decay_length_penalty": "ExponentialDecayLengthPenalty needs the prompt length at trace time",
    "begin_suppress_tokens": "SuppressTokensAtBeginLogitsProcessor needs the prompt length at trace time",
    "forced_eos_token_id": "ForcedEOSTokenLogitsProcessor needs max_length at trace time",
    "forced_decoder_ids": "ForceTokensLogitsProcessor is for encoder-decoder models",
}


def resolve_plan(
    model: Any,
    input_shape: tuple,
    generation_config: GenerationConfig | None = None,
    kwargs: dict | None = None,
    *,
    trace: bool | None = None,
    logits_processor: list | None = None,
    prefix_allowed_tokens_fn: Callable | None = None,
    streamer: bool = False,
    export_cap: int | None = None,
) -> GenerationPlan:
    """Resolve ``(model defaults, generation_config, kwargs)`` for inputs of ``input_shape``
    (``[batch, prompt]``; the encoder inputs of an encoder-decoder) into a :class:`GenerationPlan`,
    raising every error of the call before anything is traced.

    ``trace``: None (fused for tensorweave models), True (fused) or False (step-wise).
    ``streamer``: whether a streamer is given. ``export_cap``: resolve for ``export_generation``
    (its validations and messages; ``input_shape`` may be symbolic and ``max_length`` is
    ``prompt + export_cap``)."""
    exporting = export_cap is not None
    native = not is_tensorweave_model(model)
    if not exporting:
        if native and not callable(model):
            raise ValueError(
                f"model must be a tensorweave Model or a callable causal LM, got {type(model).__name__}"
            )
        if native and trace:
            raise ValueError(
                "a native model callable runs step-wise only: pass trace=False (or leave trace unset)"
            )
    fused = exporting or ((not native) if trace is None else bool(trace))
    if streamer and trace is None and fused:
        fused = False
        logger.info(
            "generate: a streamer is given, so the call runs step-wise (tokens are streamed as they are "
            "produced); pass trace=True to run the fused program and stream after it returns"
        )
    if fused and prefix_allowed_tokens_fn is not None:
        raise ValueError(
            "`prefix_allowed_tokens_fn` is a Python callback on concrete token ids, which a fused "
            "program cannot call: pass trace=False to generate step-wise"
        )
    seq2seq = not exporting and not native and bool(model.is_encoder_decoder)
    if seq2seq and getattr(model, "head", None) in ("sequence-classification", "question-answering"):
        seq2seq = False  # a classification / QA head of an encoder-decoder does not generate
    if not exporting and not native and not model.is_decoder and not seq2seq:
        raise ValueError(f"tw.generate needs a decoder model; {model.model_type} is not one")
    defaults = model_generation_config(model)
    if exporting:  # an export takes the model's special tokens only, as before model generation configs
        defaults = GenerationConfig(
            **{k: getattr(defaults, k) for k in SPECIAL_TOKENS if getattr(defaults, k) is not None}
        )
    if generation_config is not None:
        if not isinstance(generation_config, GenerationConfig):
            raise ValueError(
                f"`generation_config` must be a GenerationConfig, got {type(generation_config).__name__}; "
                "pass GenerationConfig(**settings) or the settings as keyword arguments"
            )
        config = merge_generation_config(generation_config, defaults)
    else:
        config = defaults
    unused = config.update(**(kwargs or {}))
    if unused:
        if exporting:
            raise ValueError(
                f"export_generation got unknown generation settings {sorted(unused)}; check their names"
            )
        raise ValueError(
            f"The following `model_kwargs` are not used by the model: {list(unused)} (note: typos in the "
            "generate arguments will also show up in this list)"
        )
    config.validate()
    if exporting:
        _validate_for_export(config)
    eos = eos_ids(config.eos_token_id)
    if config.pad_token_id is None and eos:
        warnings.warn(
            f"Setting `pad_token_id` to `eos_token_id`:{eos[0]} for open-end generation.", UserWarning
        )
        config.pad_token_id = eos[0]
    if config.pad_token_id is None:
        raise ValueError("generation needs `pad_token_id` (or `eos_token_id`) to fill finished rows")
    start = _decoder_start(config) if seq2seq else None
    batch, prompt = input_shape[0], (1 if seq2seq else input_shape[1])
    if exporting:
        max_length = prompt + export_cap
    else:
        if config.max_new_tokens is not None:
            config.max_length = config.max_new_tokens + prompt
        if config.max_length <= prompt:
            raise ValueError(
                f"`max_length` ({config.max_length}) must exceed the prompt length ({prompt}); "
                "set `max_new_tokens`"
            )
        max_length = config.max_length
        if config.min_length is not None and config.min_length > max_length:
            raise ValueError(
                f"`min_length` ({config.min_length}) is larger than `max_length` ({max_length}); lower "
                "min_length or raise max_length / max_new_tokens"
            )
        limit = None if seq2seq else position_limit(model)
        if limit is not None and max_length > limit[1]:
            raise ValueError(
                f"prompt length {prompt} + new tokens = {max_length} positions exceed the model's "
                f"{limit[0]} ({limit[1]}); "
                + (
                    f"lower max_new_tokens to at most {limit[1] - prompt}"
                    if prompt < limit[1]
                    else "truncate the prompt"
                )
            )
        if config.constraints is not None or config.force_words_ids is not None:
            raise ValueError(CONSTRAINED_MESSAGE)
    mode = select_mode(config)
    if mode is Mode.CONTRASTIVE:
        if not config.use_cache:
            raise ValueError("Contrastive search requires `use_cache=True`")
        if seq2seq:
            raise ValueError(
                "contrastive search runs on decoder-only models in tensorweave; T5 (encoder-decoder) "
                "supports greedy, sampling and the beam modes"
            )
    if config.num_beam_groups > 1 and fused:
        raise ValueError("group (diverse) beam search runs step-wise only: pass trace=False")
    if streamer and config.num_beams > 1:
        raise ValueError(
            "`streamer` cannot be used with beam search (yet!). Make sure that `num_beams` is set to 1."
        )
    beam = None
    if config.num_beams > 1 or mode is Mode.GROUP_BEAM:  # beam modes; one group's config for groups
        groups = config.num_beam_groups if mode is Mode.GROUP_BEAM else 1
        beam = (GroupBeamConfig if groups > 1 else BeamConfig)(
            batch_size=batch,
            num_beams=config.num_beams // groups,
            vocab_size=output_vocab_size(model),
            prompt_len=prompt,
            max_length=max_length,
            eos_token_id=eos or (-1,),
            pad_token_id=config.pad_token_id,
            length_penalty=config.length_penalty,
            early_stopping=config.early_stopping,
            num_return_sequences=config.num_return_sequences,
        )
    processors = get_logits_processor(
        config,
        prompt,
        encoder_input_ids=ENCODER_IDS if seq2seq else None,
        prefix_allowed_tokens_fn=prefix_allowed_tokens_fn,
        logits_processor=None if exporting else logits_processor,
    )
    prefix = next((p for p in processors if isinstance(p, PrefixConstrainedLogitsProcessor)), None)
    return GenerationPlan(
        mode=mode,
        native=native,
        fused=fused,
        seq2seq=seq2seq,
        batch_size=batch,
        prompt_len=prompt,
        max_length=max_length,
        eos=eos,
        pad=config.pad_token_id,
        decoder_start=start,
        num_beams=config.num_beams,
        num_beam_groups=config.num_beam_groups,
        num_return_sequences=config.num_return_sequences,
        beam=beam,
        top_k=config.top_k,
        penalty_alpha=config.penalty_alpha,
        output_scores=bool(config.output_scores),
        return_dict=bool(config.return_dict_in_generate),
        processors=processors,
        warpers=get_logits_warper(config) if config.do_sample else None,
        prefix=prefix,
        key=(config.to_json_string(use_diff=False), prefix is not None),
        custom_key=None if exporting else processors_key(logits_processor),
        config=config,
    )


def _validate_for_export(config: GenerationConfig) -> None:
    """What an exported generation can hold: greedy (``num_beams=1``) or beam search, no sampling, no
    length-dependent processors, no per-step scores."""
    if not isinstance(config.num_beams, int) or config.num_beams < 1:
        raise ValueError(f"num_beams must be a positive int, got {config.num_beams!r}")
    if config.do_sample:
        raise ValueError("export_generation exports greedy search and beam search; set do_sample=False")
    if (
        config.num_beam_groups > 1
        or config.penalty_alpha is not None
        or config.constraints is not None
        or config.force_words_ids is not None
    ):
        raise ValueError(
            "export_generation exports greedy search and beam search only (no group beam, contrastive "
            "or constrained search)"
        )
    if config.output_scores:
        raise ValueError("export_generation does not export per-step scores; set output_scores=False")
    for name, why in EXPORT_UNSUPPORTED.items():
        if getattr(config, name, None) is not None:
            raise ValueError(
                f"`{name}` cannot be exported ({why}, and both are run-time values in the exported "
                "graph); drop it"
            )
    if config.num_beams == 1 and config.num_return_sequences != 1:
        raise ValueError(
            "num_return_sequences > 1 needs beam search (num_beams > 1) in an exported generation"
        )


def output_vocab_size(model: Any) -> int | None:
    """The width of the model's logits: the config's ``target_vocab_size`` (Marian with its own
    decoder vocabulary), else ``vocab_size``."""
    cfg = getattr(model, "config", None)
    return getattr(cfg, "target_vocab_size", None) or getattr(cfg, "vocab_size", None)


def _decoder_start(config: GenerationConfig) -> int:
    """Hugging Face's decoder start: ``decoder_start_token_id``, else ``bos_token_id``."""
    start = (
        config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
    )
    if start is None:
        raise ValueError(
            "`decoder_start_token_id` or `bos_token_id` has to be defined for encoder-decoder generation."
        )
    if isinstance(start, (list, tuple)):
        raise ValueError(
            "a list of `decoder_start_token_id` (one per batch item) is not supported; pass one int"
        )
    return int(start)
