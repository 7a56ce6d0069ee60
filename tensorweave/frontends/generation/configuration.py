"""GenerationConfig: Hugging Face's fields, defaults, validation, update and JSON round trip.

Behaviour follows Transformers 4.37's GenerationConfig: every field has HF's
default; unknown kwargs become attributes unless the config comes from a model
config; ``validate()`` raises ``ValueError`` for inconsistent settings and
``UserWarning`` for flags that have no effect; ``update()`` returns unused kwargs.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import warnings
from typing import Any

_DEFAULTS: dict[str, Any] = {
    # length
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "min_new_tokens": None,
    "early_stopping": False,
    "max_time": None,
    # strategy
    "do_sample": False,
    "num_beams": 1,
    "num_beam_groups": 1,
    "penalty_alpha": None,
    "use_cache": True,
    # logits
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "diversity_penalty": 0.0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "force_words_ids": None,
    "renormalize_logits": False,
    "constraints": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "remove_invalid_values": False,
    "exponential_decay_length_penalty": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "forced_decoder_ids": None,
    "sequence_bias": None,
    "guidance_scale": None,
    "low_memory": None,
    # outputs
    "num_return_sequences": 1,
    "output_attentions": False,
    "output_hidden_states": False,
    "output_scores": False,
    "return_dict_in_generate": False,
    # special tokens
    "pad_token_id": None,
    "bos_token_id": None,
    "eos_token_id": None,
    # encoder-decoder
    "encoder_no_repeat_ngram_size": 0,
    "decoder_start_token_id": None,
    # assisted
    "num_assistant_tokens": 5,
    "num_assistant_tokens_schedule": "heuristic",
    "prompt_lookup_num_tokens": None,
    # misc
    "generation_kwargs": {},
}
_METADATA = ("_from_model_config", "_commit_hash", "_original_object_hash", "transformers_version")
_MUST_BE_PASSED_TO_GENERATE = (
    "logits_processor",
    "stopping_criteria",
    "prefix_allowed_tokens_fn",
    "synced_gpus",
    "assistant_model",
    "streamer",
    "negative_prompt_ids",
    "negative_prompt_attention_mask",
)
GENERATION_CONFIG_NAME = "generation_config.json"


def _lib_version() -> str:
    """The installed tensorweave version (stored where HF stores transformers_version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tensorweave")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"


class GenerationConfig:
    """Generation settings with Hugging Face's names and defaults (see module docstring)."""

    def __init__(self, **kwargs: Any):
        for key, default in _DEFAULTS.items():
            setattr(self, key, copy.deepcopy(kwargs.pop(key, default)))
        self._from_model_config = kwargs.pop("_from_model_config", False)
        self._commit_hash = kwargs.pop("_commit_hash", None)
        self.transformers_version = kwargs.pop("transformers_version", _lib_version())
        if not self._from_model_config:
            for key, value in kwargs.items():
                setattr(self, key, value)
        self.validate(is_init=True)

    # ------------------------------------------------------------------ validation
    def validate(self, is_init: bool = False) -> None:
        """Raise ValueError for inconsistent settings; warn (UserWarning) for flags with no effect.

        Beyond Hugging Face 4.37, the numeric settings are type- and range-checked here (see
        ``_check_scalars``): a bool, 2.5 or "3" where an int belongs is a ValueError naming it."""
        if self.num_beams is None:
            warnings.warn("`num_beams` is set to None - defaulting to 1.", UserWarning, stacklevel=2)
            self.num_beams = 1
        _check_scalars(self)
        if self.early_stopping not in {True, False, "never"}:
            raise ValueError(f"`early_stopping` must be a boolean or 'never', but is {self.early_stopping}.")
        fix = (
            (
                " This was detected when initializing the generation config instance, which means the corresponding "
                "file may hold incorrect parameterization and should be fixed."
            )
            if is_init
            else ""
        )
        if self.do_sample is False:
            flags = [
                ("temperature", 1.0),
                ("top_p", 1.0),
                ("typical_p", 1.0),
                ("epsilon_cutoff", 0.0),
                ("eta_cutoff", 0.0),
            ]
            for name, default in flags:
                if getattr(self, name) != default:
                    warnings.warn(
                        f"`do_sample` is set to `False`. However, `{name}` is set to `{getattr(self, name)}` "
                        f"-- this flag is only used in sample-based generation modes. You should set "
                        f"`do_sample=True` or unset `{name}`." + fix,
                        UserWarning,
                        stacklevel=2,
                    )
            if self.top_k != 50 and self.penalty_alpha is None:
                warnings.warn(
                    f"`do_sample` is set to `False`. However, `top_k` is set to `{self.top_k}` -- this flag "
                    f"is only used in sample-based generation modes. You should set `do_sample=True` or unset "
                    f"`top_k`." + fix,
                    UserWarning,
                    stacklevel=2,
                )
        if self.num_beams is None:
            warnings.warn("`num_beams` is set to None - defaulting to 1.", UserWarning, stacklevel=2)
            self.num_beams = 1
        if self.num_beams == 1:
            single = (
                "However, `{flag}` is set to `{value}` -- this flag is only used in beam-based generation modes. "
                "You should set `num_beams>1` or unset `{flag}`."
            )
            checks = [
                ("early_stopping", self.early_stopping is not False),
                ("num_beam_groups", self.num_beam_groups != 1),
                ("diversity_penalty", self.diversity_penalty != 0.0),
                ("length_penalty", self.length_penalty != 1.0),
                ("constraints", self.constraints is not None),
            ]
            for flag, bad in checks:
                if bad:
                    warnings.warn(
                        "`num_beams` is set to 1. "
                        + single.format(flag=flag, value=getattr(self, flag))
                        + fix,
                        UserWarning,
                        stacklevel=2,
                    )
        else:
            if self.constraints is not None or self.force_words_ids is not None:
                if self.do_sample is True:
                    raise ValueError(
                        "`do_sample` is set to `True`, `constraints` must be None, as constrained beam "
                        "search does not support sampling."
                    )
                if self.num_beam_groups != 1:
                    raise ValueError(
                        "`num_beam_groups` is not 1 and `constraints` is not None, but constrained "
                        "beam search does not support group beam search."
                    )
            if self.diversity_penalty != 0.0 or self.num_beam_groups != 1:
                if self.do_sample is True:
                    raise ValueError(
                        "`diversity_penalty` is not 0.0 or `num_beam_groups` is not 1, triggering group "
                        "beam search. In this generation mode, `do_sample` must be set to `False`"
                    )
                if self.num_beams % self.num_beam_groups != 0:
                    raise ValueError(
                        "`num_beams` should be divisible by `num_beam_groups` for group beam search."
                    )
                if self.diversity_penalty == 0.0:
                    raise ValueError(
                        "`diversity_penalty` should be greater than `0.0`, otherwise your groups will "
                        "be identical."
                    )
        if self.num_return_sequences != 1:
            if self.num_beams == 1:
                if self.do_sample is False:
                    raise ValueError(
                        "Greedy methods without beam search do not support `num_return_sequences` "
                        f"different than 1 (got {self.num_return_sequences})."
                    )
            elif self.num_return_sequences > self.num_beams:
                raise ValueError(
                    f"`num_return_sequences` ({self.num_return_sequences}) has to be smaller or equal "
                    f"to `num_beams` ({self.num_beams})."
                )
        for arg in _MUST_BE_PASSED_TO_GENERATE:
            if hasattr(self, arg):
                raise ValueError(
                    f"Argument `{arg}` is not a valid argument of `GenerationConfig`. It should be "
                    "passed to `generate()` (or a pipeline) directly."
                )

    # ------------------------------------------------------------------ update / dicts
    def update(self, **kwargs: Any) -> dict:
        """Set attributes that already exist; return the unused kwargs (the input is not changed)."""
        used = {}
        for key, value in kwargs.items():
            if hasattr(self, key):
                setattr(self, key, value)
                used[key] = value
        return {k: v for k, v in kwargs.items() if k not in used}

    def to_dict(self) -> dict:
        out = copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in ("_original_object_hash",)})
        out.pop("_commit_hash", None)
        out["transformers_version"] = _lib_version()
        return out

    def to_diff_dict(self) -> dict:
        """Only the values that differ from ``GenerationConfig()``, plus ``transformers_version``."""
        default = GenerationConfig().to_dict()
        out = {
            k: v
            for k, v in self.to_dict().items()
            if k not in default or default[k] != v or k == "transformers_version"
        }
        out.pop("_from_model_config", None) if not self._from_model_config else None
        return out

    def to_json_string(self, use_diff: bool = True) -> str:
        d = _jsonable(self.to_diff_dict() if use_diff else self.to_dict())
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationConfig):
            return False
        a = _jsonable({k: v for k, v in self.to_dict().items() if k not in _METADATA})
        b = _jsonable({k: v for k, v in other.to_dict().items() if k not in _METADATA})
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)

    def __hash__(self) -> int:
        return hash(
            json.dumps(
                _jsonable({k: v for k, v in self.to_dict().items() if k not in _METADATA}),
                sort_keys=True,
                default=str,
            )
        )

    def __repr__(self) -> str:
        return f"GenerationConfig {self.to_json_string()}"

    # ------------------------------------------------------------------ files
    def save_pretrained(self, save_directory: str, config_file_name: str | None = None) -> str:
        """Validate (any warning or error -> ValueError, nothing written), then write atomically."""
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.validate()
            if caught:
                raise ValueError(str(caught[0].message))
        except ValueError as exc:
            raise ValueError(
                "The generation config instance is invalid -- `.validate()` throws warnings and/or "
                f"exceptions. Fix these issues to save the configuration.\n\nThrown during validation:\n{exc}"
            )
        if os.path.isfile(save_directory):
            raise AssertionError(f"Provided path ({save_directory}) should be a directory, not a file")
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, config_file_name or GENERATION_CONFIG_NAME)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json_string(use_diff=True))
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs: Any) -> "GenerationConfig":
        d = dict(config_dict)
        if isinstance(d.get("sequence_bias"), list):
            d["sequence_bias"] = {tuple(k): float(v) for k, v in d["sequence_bias"]}
        d.update(kwargs)
        return cls(**d)

    @classmethod
    def from_pretrained(
        cls, path: str, config_file_name: str | None = None, **kwargs: Any
    ) -> "GenerationConfig":
        """Load ``generation_config.json`` from a directory (or a file path); OSError if absent."""
        file = (
            path if os.path.isfile(path) else os.path.join(path, config_file_name or GENERATION_CONFIG_NAME)
        )
        if not os.path.isfile(file):
            raise OSError(
                f"{path} does not appear to have a file named {config_file_name or GENERATION_CONFIG_NAME}."
            )
        try:
            with open(file, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as exc:
            raise OSError(
                f"It looks like the config file at '{file}' is not a valid JSON file ({exc})."
            ) from None
        if not isinstance(data, dict):
            raise OSError(f"The config file at '{file}' must hold a JSON object.")
        return cls.from_dict(data, **kwargs)

    @classmethod
    def from_model_config(cls, model_config: Any) -> "GenerationConfig":
        """From a model config (dict or object with to_dict): unknown keys are not copied; sub-configs
        named decoder/generator/text_config fill attributes still at their defaults."""
        d = model_config if isinstance(model_config, dict) else model_config.to_dict()
        # None means "unset" (transformers v5 writes every field, most as None): the default stays
        d = {k: v for k, v in d.items() if k in _DEFAULTS and v is not None}
        config = cls(**d, _from_model_config=True)
        source = model_config if isinstance(model_config, dict) else model_config.to_dict()
        for sub in ("decoder", "generator", "text_config"):
            sd = source.get(sub)
            if isinstance(sd, dict):
                for key, default in _DEFAULTS.items():
                    if getattr(config, key) == default and sd.get(key) is not None:
                        setattr(config, key, sd[key])
        config._original_object_hash = hash(config)
        return config


# (name, minimum, whether None means "unset"): the int settings of a generation
_INT_FIELDS = (
    ("max_length", 1, False),
    ("max_new_tokens", 1, True),
    ("min_length", 0, True),
    ("min_new_tokens", 0, True),
    ("num_beams", 1, False),
    ("num_beam_groups", 1, False),
    ("num_return_sequences", 1, False),
    ("top_k", 0, True),
    ("no_repeat_ngram_size", 0, True),
    ("encoder_no_repeat_ngram_size", 0, True),
)
# (name, low, high, low inclusive): float settings and Hugging Face's ranges (None means unset)
_FLOAT_FIELDS = (
    ("temperature", 0.0, math.inf, True),
    ("top_p", 0.0, 1.0, True),
    ("repetition_penalty", 0.0, math.inf, False),
    ("encoder_repetition_penalty", 0.0, math.inf, False),
    ("diversity_penalty", 0.0, math.inf, True),
    ("length_penalty", -math.inf, math.inf, True),
)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_scalars(config: GenerationConfig) -> None:
    """Every int setting an int (bool, 2.5 and "3" rejected) at or above its minimum; every float
    setting a finite real number in Hugging Face's range; ``temperature`` strictly positive when
    sampling (HF's TemperatureLogitsWarper). One-line ValueErrors naming the argument and the fix."""
    for name, low, nullable in _INT_FIELDS:
        value = getattr(config, name, None)
        if value is None and nullable:
            continue
        if not _is_int(value):
            raise ValueError(
                f"`{name}` must be an int >= {low}, got {value!r} ({type(value).__name__}); pass e.g. {name}={max(low, 1)}"
            )
        if value < low:
            raise ValueError(f"`{name}` must be an int >= {low}, got {value}; pass e.g. {name}={max(low, 1)}")
        if type(value) is not int:  # numpy ints: plain ints from here on (shapes, JSON, isinstance checks)
            setattr(config, name, int(value))
    for name, low, high, inclusive in _FLOAT_FIELDS:
        value = getattr(config, name, None)
        if value is None:
            continue
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"`{name}` must be a finite float, got {value!r} ({type(value).__name__})")
        if value < low or value > high or (value == low and not inclusive):
            rng = (
                f"{'[' if inclusive else '('}{low}, {high}]"
                if high != math.inf
                else f"{'>=' if inclusive else '>'} {low}"
            )
            raise ValueError(
                f"`{name}` must be a float {'in ' if high != math.inf else ''}{rng}, got {value}"
            )
    if config.do_sample is True and config.temperature is not None and config.temperature <= 0:
        raise ValueError(
            f"`temperature` (={config.temperature}) has to be a strictly positive float when sampling; "
            "for greedy decoding set do_sample=False"
        )


def _jsonable(d: dict) -> dict:
    """JSON-ready copy: tuples become lists, sequence_bias becomes [[tokens], bias] pairs."""
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
    if isinstance(out.get("sequence_bias"), dict):
        out["sequence_bias"] = [[list(k), v] for k, v in out["sequence_bias"].items()]
    return out


def load_generation_config(
    model_dir: str | None, model_config: Any = None, **kwargs: Any
) -> GenerationConfig:
    """Precedence: generation_config.json > the model config > the defaults."""
    if model_dir is not None:
        try:
            return GenerationConfig.from_pretrained(model_dir, **kwargs)
        except OSError:
            pass
    if model_config is not None:
        config = GenerationConfig.from_model_config(model_config)
        config.update(**kwargs)
        return config
    return GenerationConfig(**kwargs)
