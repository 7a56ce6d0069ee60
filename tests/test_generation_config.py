"""GenerationConfig: defaults, validation rules, update, JSON round trip and precedence (Transformers 4.37)."""

from __future__ import annotations

import json
import warnings

import pytest

from tensorweave.frontends.generation import GenerationConfig, load_generation_config


def test_defaults_and_unknown_kwargs():
    c = GenerationConfig()
    assert (c.max_length, c.top_k, c.num_beams, c.early_stopping, c.pad_token_id) == (20, 50, 1, False, None)
    assert GenerationConfig(my_flag=3).my_flag == 3
    assert not hasattr(GenerationConfig(my_flag=3, _from_model_config=True), "my_flag")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"early_stopping": "sometimes"}, "`early_stopping` must be a boolean or 'never'"),
        (
            {"num_return_sequences": 2},
            "Greedy methods without beam search do not support `num_return_sequences`",
        ),
        (
            {"num_beams": 2, "num_return_sequences": 3},
            r"`num_return_sequences` \(3\) has to be smaller or equal to `num_beams` \(2\)",
        ),
        (
            {"num_beams": 4, "num_beam_groups": 2, "do_sample": True, "diversity_penalty": 1.0},
            "`do_sample` must be set to `False`",
        ),
        ({"num_beams": 3, "num_beam_groups": 2, "diversity_penalty": 1.0}, "divisible by `num_beam_groups`"),
        ({"num_beams": 4, "num_beam_groups": 2}, "`diversity_penalty` should be greater than `0.0`"),
        ({"streamer": object()}, "Argument `streamer` is not a valid argument"),
    ],
)
def test_validation_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,flag",
    [
        ({"temperature": 0.5}, "temperature"),
        ({"top_p": 0.9}, "top_p"),
        ({"top_k": 10}, "top_k"),
        ({"typical_p": 0.5}, "typical_p"),
        ({"epsilon_cutoff": 0.1}, "epsilon_cutoff"),
        ({"eta_cutoff": 0.1}, "eta_cutoff"),
        ({"length_penalty": 2.0}, "length_penalty"),
        ({"early_stopping": True}, "early_stopping"),
    ],
)
def test_flags_without_effect_warn(kwargs, flag):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GenerationConfig(**kwargs)
    assert any(f"`{flag}` is set to" in str(w.message) for w in caught), [str(w.message) for w in caught]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GenerationConfig(top_k=10, penalty_alpha=0.6)  # contrastive search uses top_k: no warning
    assert not caught


def test_update_returns_unused_and_leaves_input_alone():
    c = GenerationConfig()
    kwargs = {"max_new_tokens": 4, "not_a_field": 1}
    assert c.update(**kwargs) == {"not_a_field": 1}
    assert c.max_new_tokens == 4 and kwargs == {"max_new_tokens": 4, "not_a_field": 1}


def test_save_load_roundtrip_and_diff(tmp_path):
    c = GenerationConfig(do_sample=True, temperature=0.7, eos_token_id=[1, 2], sequence_bias={(1, 2): 0.5})
    path = c.save_pretrained(str(tmp_path))
    data = json.loads(open(path).read())
    assert set(data) == {"do_sample", "temperature", "eos_token_id", "sequence_bias", "transformers_version"}
    assert GenerationConfig.from_pretrained(str(tmp_path)) == c
    with pytest.raises(ValueError, match="Fix these issues to save the configuration"):
        bad = GenerationConfig()
        bad.temperature = 0.5
        bad.save_pretrained(str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()
    with pytest.raises(OSError, match="does not appear to have a file named generation_config.json"):
        GenerationConfig.from_pretrained(str(tmp_path / "missing"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "generation_config.json").write_text("{not json")
    with pytest.raises(OSError, match="not a valid JSON file"):
        GenerationConfig.from_pretrained(str(tmp_path / "broken"))


def test_precedence_generation_config_file_over_model_config(tmp_path):
    model_config = {"model_type": "gpt2", "eos_token_id": 7, "max_length": 30, "n_layer": 2}
    c = load_generation_config(str(tmp_path), model_config)
    assert (c.eos_token_id, c.max_length) == (7, 30) and not hasattr(c, "n_layer")
    GenerationConfig(max_length=11).save_pretrained(str(tmp_path))
    c = load_generation_config(str(tmp_path), model_config)
    assert c.max_length == 11 and c.eos_token_id is None
    assert load_generation_config(None, None).max_length == 20
    nested = GenerationConfig.from_model_config({"decoder": {"eos_token_id": 3, "max_length": 9}})
    assert (nested.eos_token_id, nested.max_length) == (3, 9)
