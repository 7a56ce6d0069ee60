"""ImageGPT (issue #15) as config switches of ``gpt2.py``: uncentred norms without bias, quick_gelu,
an untied ``lm_head`` of ``vocab_size - 1`` rows; against transformers'
``ImageGPTForCausalImageModeling`` (tiny random config, seeded, eager attention).

Logits from a live model and from a ``save_pretrained`` directory on numpy; one forward and 5 greedy
tokens on every backend equal to transformers' ``generate``; ONNX export with past validated;
the switches move the logits; config errors. Tolerance: spec/models.md ("Parity with
transformers"), atol = rtol = 1e-4."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.models import config_from_dict
from tensorweave.models import from_transformers

from conftest import IN_CI, require_backend

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

ATOL = RTOL = 1e-4
VOCAB = 17  # 16 colour clusters + the start token (id 16)
IDS = np.array([[16, 3, 7, 1, 9, 12, 4, 0], [16, 5, 5, 2, 8, 14, 11, 6]], np.int64)
MASK = np.array([[1] * 8, [0, 0, 1, 1, 1, 1, 1, 1]], np.int64)
VALID = MASK.astype(bool)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    hf = transformers.ImageGPTForCausalImageModeling(
        transformers.ImageGPTConfig(
            vocab_size=VOCAB,
            n_positions=32,
            n_embd=32,
            n_layer=2,
            n_head=4,
            initializer_range=0.2,
            attn_implementation="eager",
        )
    ).eval()
    return hf, from_transformers(hf)


def hf_logits(hf) -> np.ndarray:
    pos = np.clip(np.cumsum(MASK, axis=1) - 1, 0, None)
    with torch.no_grad():
        return hf(
            input_ids=torch.from_numpy(IDS),
            attention_mask=torch.from_numpy(MASK),
            position_ids=torch.from_numpy(pos),
        ).logits.numpy()


def test_logits_match_transformers_live_and_from_a_checkpoint(pair, tmp_path):
    hf, ours = pair
    ref = hf_logits(hf)
    assert ref.shape[-1] == VOCAB - 1
    assert "transformer.h.0.ln_1.bias" not in ours.params and ours.params["lm_head.weight"].shape == (16, 32)
    np.testing.assert_allclose(
        ours(IDS, MASK, backend="numpy")["logits"][VALID], ref[VALID], atol=ATOL, rtol=RTOL
    )
    hf.save_pretrained(str(tmp_path))
    loaded = tw.models.load(str(tmp_path))
    assert loaded.model_type == "imagegpt" and loaded.is_decoder
    assert loaded.config == dataclasses.replace(ours.config, architectures=loaded.config.architectures)
    np.testing.assert_allclose(
        loaded(IDS, MASK, backend="numpy")["logits"][VALID], ref[VALID], atol=ATOL, rtol=RTOL
    )


def test_the_switches_move_the_logits(pair):
    """GPT-2's gelu in place of quick_gelu would be caught: it moves the logits well beyond the
    tolerance (observed 8e-3 against 1e-4)."""
    _, ours = pair
    ref = ours(IDS, MASK, backend="numpy")["logits"]
    gelu = dataclasses.replace(ours.config, activation_function="gelu_new")
    other = tw.models.Model(gelu, ours.params)
    assert np.abs(other(IDS, MASK, backend="numpy")["logits"] - ref)[VALID].max() > 10 * ATOL


def test_every_backend_forward_and_greedy_tokens(pair, backend):
    require_backend(backend)
    hf, ours = pair
    np.testing.assert_allclose(
        np.asarray(ours(IDS, MASK, backend=backend)["logits"])[VALID],
        hf_logits(hf)[VALID],
        atol=ATOL,
        rtol=RTOL,
    )
    with torch.no_grad():
        # the mask is explicit: inferred from pad_token_id it would hide the prompt's colour 0
        want = hf.generate(
            torch.from_numpy(IDS),
            attention_mask=torch.from_numpy(MASK),
            max_new_tokens=5,
            do_sample=False,
            pad_token_id=0,
        ).numpy()
    got = tw.generate(ours, IDS, MASK, backend=backend, max_new_tokens=5, pad_token_id=0)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_onnx_export_with_past_validates(pair, tmp_path):
    require_backend("onnx")
    from tensorweave.onnx import FeaturesManager

    _, ours = pair
    assert set(FeaturesManager.get_supported_features_for_model_type("imagegpt")) == {
        "default",
        "default-with-past",
        "causal-lm",
        "causal-lm-with-past",
        "image-classification",  # ImageGPTForImageClassification (tests/test_models_loose_ends.py)
    }
    E = sys.modules["tensorweave.export"]
    res = tw.export(ours, "causal-lm-with-past", "onnx", tmp_path / "out")
    E.validate_model_outputs(
        res.onnx_config, ours, res.path, res.output_names, res.onnx_config.atol_for_validation
    )
    back = transformers.AutoConfig.from_pretrained(str(tmp_path / "out"))
    assert (
        back.model_type == "imagegpt"
        and back.vocab_size == VOCAB
        and back.architectures == ["ImageGPTForCausalImageModeling"]
    )


@pytest.mark.parametrize(
    "d, match",
    [
        ({"tie_word_embeddings": True}, "tie_word_embeddings"),
        ({"activation_function": "swish"}, "activation_function"),
        ({"n_embd": 30, "n_head": 4}, "n_embd"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict({"model_type": "imagegpt", **d})
