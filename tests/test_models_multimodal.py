"""Text + image models (issue #15): CLIP (``clip.py``: ``CLIPModel``) against transformers'
PyTorch model (a tiny random config: towers of 2 layers, hidden 32, 4 heads; vocabulary 99; a
16 x 16 image in 4 x 4 patches; projection 24; seeded; eval mode; eager attention).

Three right-padded texts against two images (the counts differ, so ``logits_per_image`` is
``[2, 3]``): the four outputs from a live model and from a ``save_pretrained`` directory on numpy,
both EOS poolings (first ``eos_token_id``; the legacy ``eos_token_id == 2`` argmax of the ids), every
backend, one ONNX export validated and read back, features, config and input errors.
Tolerance: spec/models.md ("Parity with transformers"), atol = rtol = 1e-5."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import bind_params, clip, config_from_dict
from tensorweave.ir import TensorSpec
from tensorweave.models import from_pretrained, from_transformers

from conftest import IN_CI
from model_parity import (
    CLIP_OUTPUTS,
    assert_close,
    check_clip_onnx,
    check_export_config,
    check_export_reads_back,
    export_and_validate,
)
from model_parity import check_clip_outputs as check_outputs
from model_parity import clip_pixels as pixels
from model_parity import clip_reference as reference
from model_parity import clip_texts as texts

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

EOS = 98  # clip_texts' default
OUTPUTS = CLIP_OUTPUTS
TOWER = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
TEXT = dict(TOWER, vocab_size=99, max_position_embeddings=20, eos_token_id=EOS)
VISION = dict(TOWER, image_size=16, patch_size=4, num_channels=3)


def hf_model(**text):
    torch.manual_seed(0)
    cfg = transformers.CLIPConfig(
        text_config=dict(TEXT, **text),
        vision_config=VISION,
        projection_dim=24,
        logit_scale_init_value=1.5,
        attn_implementation="eager",
    )
    return transformers.CLIPModel(cfg).eval()


@pytest.fixture(scope="module")
def case() -> tuple:
    hf = hf_model()
    ids, mask = texts()
    return hf, reference(hf, ids, mask, pixels())


# ------------------------------------------------------------------ numpy: live and saved
def test_matches_transformers_live_and_from_a_checkpoint(case, tmp_path):
    hf, ref = case
    ids, mask = texts()
    live = from_transformers(hf)
    assert live.model_type == "clip" and live.head == "default" and live.is_multimodal
    assert live.generation_config is None
    check_outputs(live(ids, mask, pixel_values=pixels(), backend="numpy"), ref)
    hf.save_pretrained(str(tmp_path / "clip"))
    saved = from_pretrained(str(tmp_path / "clip"))
    assert saved.head == "default" and saved.generation_config is None
    assert saved.config == dataclasses.replace(live.config, architectures=saved.config.architectures)
    check_outputs(saved(ids, mask, pixel_values=pixels(), backend="numpy"), ref)


def test_legacy_eos_id_pools_at_the_largest_id():
    """``eos_token_id == 2``: the pooled token is the argmax of the ids, not the token 2 (whose
    hidden state is far from it)."""
    hf = hf_model(eos_token_id=2)
    ids, mask = texts(eos=2)
    ref = reference(hf, ids, mask, pixels())
    model = from_transformers(hf)
    check_outputs(model(ids, mask, pixel_values=pixels(), backend="numpy"), ref)
    spec = [TensorSpec((3, 7), "int64")] * 2
    fn = lambda i, m: clip.encode_text(bind_params(model.params), model.config, i, m)[1]  # noqa: E731
    pooled = np.asarray(tw.lower(tw.trace(fn, *spec), "numpy")(ids, mask))
    with torch.no_grad():
        want = hf.text_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    assert_close(pooled, want.pooler_output.numpy())
    at_two = want.last_hidden_state.numpy()[np.arange(3), (ids == 2).argmax(-1)]
    assert np.abs(pooled - at_two).max() > 1e-2


def test_padding_and_the_causal_mask_matter(case):
    """Every position of the last layer (padded queries too) matches with the causal mask and the
    padding mask; without either it does not. The pooled EOS token of a right-padded text never
    sees the padding (it lies after it), so an all-ones mask gives the same embeddings."""
    hf, ref = case
    ids, mask = texts()
    model = from_transformers(hf)
    unmasked = model(ids, np.ones_like(mask), pixel_values=pixels(), backend="numpy")
    assert_close(unmasked["text_embeds"], ref["text_embeds"])
    spec = [TensorSpec((3, 7), "int64")] * 2

    def last(m: np.ndarray, causal: bool) -> np.ndarray:
        def fn(i, m):
            xp, P = tw.ir.namespace, bind_params(model.params)
            h = xp.take(P["text_model.embeddings.token_embedding.weight"], i, axis=0)
            h = h + P["text_model.embeddings.position_embedding.weight"][:7]
            for n in range(2):
                h = clip.layer(xp, P, f"text_model.encoder.layers.{n}.", model.config.text, h, m, causal)
            return h

        return np.asarray(tw.lower(tw.trace(fn, *spec), "numpy")(ids, m))

    with torch.no_grad():
        want = (
            hf.text_model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                output_hidden_states=True,
            )
            .hidden_states[-1]
            .numpy()
        )
    assert_close(last(mask, True), want)
    assert np.abs(last(np.ones_like(mask), True)[0, 5:] - want[0, 5:]).max() > 1e-2
    assert np.abs(last(mask, False)[1:] - want[1:]).max() > 1e-2


# ------------------------------------------------------------------ every backend
def test_every_backend_forward(backend, case):
    hf, ref = case
    ids, mask = texts()
    check_outputs(from_transformers(hf)(ids, mask, pixel_values=pixels(), backend=backend), ref)


# ------------------------------------------------------------------ ONNX export
def test_onnx_export_validates(case, tmp_path):
    pytest.importorskip("onnxruntime")
    hf = case[0]
    model = from_transformers(hf)
    res = export_and_validate(model, "default", tmp_path / "out")
    assert [s.name for s in res.onnx_config.input_specs()] == ["input_ids", "pixel_values", "attention_mask"]
    assert list(res.output_names) == list(OUTPUTS)
    shapes = check_clip_onnx(res, hf)
    assert shapes == {
        "input_ids": ["batch", "sequence"],
        "pixel_values": ["batch", 3, 16, 16],
        "attention_mask": ["batch", "sequence"],
    }
    config = check_export_config(tmp_path / "out", "CLIPModel", "clip")
    assert config["text_config"]["eos_token_id"] == EOS and config["vision_config"]["image_size"] == 16
    assert not (tmp_path / "out" / "generation_config.json").exists()
    check_export_reads_back(model, "default", tmp_path / "out")


def test_features():
    from tensorweave.onnx import FeaturesManager

    for name in ("clip", "clip-text-model", "clip-vision-model"):  # the table spells `_` as `-`
        assert set(FeaturesManager.get_supported_features_for_model_type(name)) == {"default"}


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "d, match",
    [
        (
            {"text_config": {"hidden_size": 30, "num_attention_heads": 4}},
            "`text_config.hidden_size` \\(30\\) must be divisible",
        ),
        (
            {"vision_config": {"image_size": 8, "patch_size": 16}},
            "`vision_config.image_size` \\(8\\) must be at least",
        ),
        ({"vision_config": {"hidden_act": "swish"}}, "`vision_config.hidden_act` 'swish' is not supported"),
        ({"text_config": {"eos_token_id": [2, 3]}}, "`text_config.eos_token_id` must be an integer token id"),
        ({"text_config": {"vocab_size": 0}}, "`text_config.vocab_size` must be a positive integer"),
        ({"text_config": [1]}, "`text_config` must be an object"),
        ({"projection_dim": 0}, "`projection_dim` must be a positive integer"),
        (
            {"model_type": "clip_text_model", "hidden_size": 30, "num_attention_heads": 4},
            "config field `hidden_size` \\(30\\) must be divisible",
        ),
        (
            {"model_type": "clip_vision_model", "patch_size": 0},
            "config field `patch_size` must be a positive",
        ),
        ({"model_type": "clip_vision_model", "projection_dim": -1}, "`projection_dim` must be a positive"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict({"model_type": "clip", **d})


def test_input_and_class_errors(case):
    hf = case[0]
    model = from_transformers(hf)
    ids, mask = texts()
    with pytest.raises(ValueError, match="clip needs pixel_values"):
        model(ids, mask)
    with pytest.raises(ValueError, match="pixel_values must be \\[batch, 3, 16, 16\\]"):
        tw.trace(
            lambda i, m, x: clip.forward(bind_params(model.params), model.config, i, m, x),
            TensorSpec(("batch", 7), "int64"),
            TensorSpec(("batch", 7), "int64"),
            TensorSpec((2, 3, 16, 12), "float32"),
        )
    with pytest.raises(ValueError, match="exceeds the 20 tokens "):
        model(np.ones((1, 21), np.int64), pixel_values=pixels())
    with pytest.raises(ValueError, match="do not return hidden_states"):
        model(ids, mask, pixel_values=pixels(), output_hidden_states=True)
    with pytest.raises(ValueError, match="unknown head 'masked-lm' for clip"):
        from_transformers(hf, head="masked-lm")
    torch.manual_seed(0)
    vision_only = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**VISION))
    with pytest.raises(ModelLoadError, match="CLIPVisionModel is not supported; clip_vision_model classes"):
        from_transformers(vision_only)
    text = from_transformers(tower("text"))
    with pytest.raises(ValueError, match="clip_text_model takes no pixel_values"):
        text(ids, mask, pixel_values=pixels())


# ------------------------------------------------------------------ one tower with its projection
def tower(kind: str):
    torch.manual_seed(0)
    if kind == "text":
        cfg = transformers.CLIPTextConfig(**TEXT, projection_dim=24, attn_implementation="eager")
        return transformers.CLIPTextModelWithProjection(cfg).eval()
    cfg = transformers.CLIPVisionConfig(**VISION, projection_dim=24, attn_implementation="eager")
    return transformers.CLIPVisionModelWithProjection(cfg).eval()


def tower_reference(hf, kind: str) -> dict:
    ids, mask = texts()
    with torch.no_grad():
        if kind == "text":
            out = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
            return {
                "text_embeds": out.text_embeds.numpy(),
                "last_hidden_state": out.last_hidden_state.numpy(),
            }
        out = hf(pixel_values=torch.from_numpy(pixels()))
        return {"image_embeds": out.image_embeds.numpy(), "last_hidden_state": out.last_hidden_state.numpy()}


def run_tower(model, kind: str, backend: str = "numpy") -> dict:
    ids, mask = texts()
    return model(ids, mask, backend=backend) if kind == "text" else model(pixels(), backend=backend)


@pytest.mark.parametrize("kind", ["text", "vision"])
def test_projection_classes_live_saved_and_every_backend(kind, tmp_path):
    """``CLIPTextModelWithProjection`` / ``CLIPVisionModelWithProjection``: unnormalised embeddings
    and the last hidden state (every position, padded ones too)."""
    hf = tower(kind)
    ref = tower_reference(hf, kind)
    live = from_transformers(hf)
    assert live.model_type == f"clip_{kind}_model" and live.is_multimodal and live.generation_config is None
    hf.save_pretrained(str(tmp_path / kind))
    saved = from_pretrained(str(tmp_path / kind))
    for model, backends in ((live, ("numpy", "torch", "jax", "tensorflow", "onnx")), (saved, ("numpy",))):
        for backend in backends:
            out = run_tower(model, kind, backend)
            assert sorted(out) == sorted(ref)
            for k in ref:
                assert_close(out[k], ref[k])
    embeds = ref["text_embeds" if kind == "text" else "image_embeds"]
    assert np.abs(np.linalg.norm(embeds, axis=-1) - 1).max() > 1e-2  # not normalised, unlike CLIPModel's


@pytest.mark.parametrize("kind", ["text", "vision"])
def test_projection_classes_export(kind, tmp_path):
    pytest.importorskip("onnxruntime")
    hf = tower(kind)
    model = from_transformers(hf)
    res = export_and_validate(model, "default", tmp_path / "out")
    names = ["input_ids", "attention_mask"] if kind == "text" else ["pixel_values"]
    assert [s.name for s in res.onnx_config.input_specs()] == names
    back = from_pretrained(str(tmp_path / "out"))
    assert back.config.architectures == [type(hf).__name__] and back.model_type == f"clip_{kind}_model"
    ref = tower_reference(hf, kind)
    out = run_tower(back, kind)
    for k in ref:
        assert_close(out[k], ref[k])
