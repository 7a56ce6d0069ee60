"""Text + image models, second slice (issue #15): OWL-ViT (``owlvit.py``: ``OwlViTModel``) and
GroupViT (``groupvit.py``: ``GroupViTModel``) against transformers' PyTorch models (tiny random
configs: text towers of 2 layers, hidden 32, 4 heads, vocabulary 99; a 16 x 16 image in 4 x 4
patches; projection 24; seeded; eval mode; eager attention). GroupViT's vision tower has three
stages of one layer each with 4, 2 and 0 group tokens (16 patches -> 4 groups -> 2 groups) and
projections through 40 units.

Every LayerNorm, bias, GroupViT group token, position table and BatchNorm statistic is perturbed
so each one matters; GroupViT's assignment queries and keys are scaled by 4 so the best group of
every image token wins by more than 1e-3 (backends differ by ~1e-7, far from flipping an argmax).

Three right-padded texts against two images: the four outputs from a live model and from a
``save_pretrained`` directory on numpy, OWL-ViT's argmax pooling, GroupViT's hard assignment,
every backend, one ONNX export per type validated, run by onnxruntime at batch 3 and read back,
features, config and input errors. Tolerance: spec/models.md ("Parity with transformers"),
atol = rtol = 1e-5."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import bind_params, clip, config_from_dict, groupvit
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
STAGES = dict(num_hidden_layers=3, depths=[1, 1, 1], num_group_tokens=[4, 2, 0], num_output_groups=[4, 2, 2])
CLASSES = {"owlvit": ("OwlViTConfig", "OwlViTModel"), "groupvit": ("GroupViTConfig", "GroupViTModel")}


def perturb(model, seed: int = 1):
    """Norm weights and every bias moved by N(0, 0.2), group tokens and position tables and
    BatchNorm means likewise, BatchNorm variances drawn from [0.5, 1.5); GroupViT's assignment
    q/k weights times 4."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=g)
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith(("group_token", "position_embeddings", "running_mean")) or t.ndim == 1:
                t.add_(0.2 * noise)
            if name.endswith(("assign.q_proj.weight", "assign.k_proj.weight")):
                t.mul_(4)
    return model


def hf_model(kind: str, **text):
    torch.manual_seed(0)
    config_cls, model_cls = (getattr(transformers, n) for n in CLASSES[kind])
    extra = {"projection_intermediate_dim": 40} if kind == "groupvit" else {}
    cfg = config_cls(
        text_config=dict(TEXT, **text),
        vision_config=dict(VISION, **STAGES) if kind == "groupvit" else VISION,
        projection_dim=24,
        logit_scale_init_value=1.5,
        attn_implementation="eager",
        **extra,
    )
    return perturb(model_cls(cfg).eval())


@pytest.fixture(scope="module", params=["owlvit", "groupvit"])
def case(request) -> tuple:
    hf = hf_model(request.param)
    ids, mask = texts()
    return request.param, hf, reference(hf, ids, mask, pixels())


# ------------------------------------------------------------------ numpy: live and saved
def test_matches_transformers_live_and_from_a_checkpoint(case, tmp_path):
    kind, hf, ref = case
    ids, mask = texts()
    live = from_transformers(hf)
    assert live.model_type == kind and live.head == "default" and live.is_multimodal
    assert live.generation_config is None
    check_outputs(live(ids, mask, pixel_values=pixels(), backend="numpy"), ref)
    hf.save_pretrained(str(tmp_path / kind))
    saved = from_pretrained(str(tmp_path / kind))
    assert saved.head == "default" and saved.config.architectures == [CLASSES[kind][1]]
    assert saved.config == dataclasses.replace(live.config, architectures=saved.config.architectures)
    check_outputs(saved(ids, mask, pixel_values=pixels(), backend="numpy"), ref)


def test_owlvit_pools_at_the_largest_id():
    """OWL-ViT pools at ``argmax(ids)`` (98 here) although ``eos_token_id`` is 5: the hidden state
    at the first token 5, CLIP's rule, is far from it."""
    hf = hf_model("owlvit", eos_token_id=5)
    ids, mask = texts()
    ids[1, 1] = 5
    ref = reference(hf, ids, mask, pixels())
    model = from_transformers(hf)
    assert model.config.text.pools_at_largest_id
    check_outputs(model(ids, mask, pixel_values=pixels(), backend="numpy"), ref)
    spec = [TensorSpec((3, 7), "int64")] * 2
    fn = lambda i, m: clip.encode_text(bind_params(model.params), model.config, i, m)[1]  # noqa: E731
    pooled = np.asarray(tw.lower(tw.trace(fn, *spec), "numpy")(ids, mask))
    with torch.no_grad():
        want = hf.text_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    assert_close(pooled, want.pooler_output.numpy())
    at_five = want.last_hidden_state.numpy()[np.arange(3), (ids == 5).argmax(-1)]
    assert np.abs(pooled - at_five).max() > 1e-2


def test_groupvit_hard_assignment_matters():
    """The vision tower's pooled output and its grouped tokens match transformers' with the hard
    (one-hot) assignment; the soft assignment moves the grouped tokens by more than 1e-2 and
    the pooled output by more than 1e-3 (100 times the tolerance)."""
    hf = hf_model("groupvit")
    model = from_transformers(hf)
    spec = TensorSpec((2, 3, 16, 16), "float32")

    def run(hard: bool) -> tuple:
        fn = lambda x: groupvit.encode_image(bind_params(model.params), model.config, x, hard)  # noqa: E731
        return tuple(np.asarray(o) for o in tw.lower(tw.trace(fn, spec), "numpy")(pixels()))

    with torch.no_grad():
        want = hf.vision_model(torch.from_numpy(pixels()))
    last, pooled = run(True)
    assert last.shape == (2, 2, 32)
    assert_close(last, want.last_hidden_state.numpy())
    assert_close(pooled, want.pooler_output.numpy())
    soft_last, soft_pooled = run(False)
    assert np.abs(soft_last - last).max() > 1e-2
    assert np.abs(soft_pooled - pooled).max() > 1e-3


# ------------------------------------------------------------------ every backend
def test_every_backend_forward(backend, case):
    _, hf, ref = case
    ids, mask = texts()
    check_outputs(from_transformers(hf)(ids, mask, pixel_values=pixels(), backend=backend), ref)


# ------------------------------------------------------------------ ONNX export
def test_onnx_export_validates(case, tmp_path):
    pytest.importorskip("onnxruntime")
    kind, hf, _ = case
    model = from_transformers(hf)
    res = export_and_validate(model, "default", tmp_path / "out")
    assert [s.name for s in res.onnx_config.input_specs()] == ["input_ids", "pixel_values", "attention_mask"]
    assert list(res.output_names) == list(OUTPUTS)
    check_clip_onnx(res, hf)
    config = check_export_config(tmp_path / "out", CLASSES[kind][1], kind)
    assert config["vision_config"]["image_size"] == 16
    check_export_reads_back(model, "default", tmp_path / "out")


def test_features():
    from tensorweave.onnx import FeaturesManager

    for name in ("owlvit", "groupvit"):
        assert set(FeaturesManager.get_supported_features_for_model_type(name)) == {"default"}


# ------------------------------------------------------------------ errors
STAGE_FIELDS = dict(depths=[1, 1], num_group_tokens=[4, 2], num_output_groups=[4, 2])


@pytest.mark.parametrize(
    "d, match",
    [
        (
            {"model_type": "owlvit", "text_config": {"hidden_size": 30, "num_attention_heads": 4}},
            "`text_config.hidden_size` \\(30\\) must be divisible",
        ),
        (
            {"model_type": "owlvit", "vision_config": {"image_size": 8, "patch_size": 16}},
            "`vision_config.image_size` \\(8\\) must be at least",
        ),
        ({"model_type": "owlvit", "projection_dim": 0}, "`projection_dim` must be a positive integer"),
        (
            {"vision_config": {**STAGE_FIELDS, "num_output_groups": [4]}},
            "`vision_config.depths` \\(2 stages\\) must have as many entries",
        ),
        (
            {"vision_config": {**STAGE_FIELDS, "depths": [1, -1]}},
            "`vision_config.depths` must be a non-empty list of integers >= 0",
        ),
        (
            {"vision_config": {**STAGE_FIELDS, "num_output_groups": [4, 0]}},
            "`vision_config.num_output_groups` \\[1\\] must be positive",
        ),
        (
            {"vision_config": {**STAGE_FIELDS, "num_output_groups": [3, 2]}},
            "`vision_config.num_group_tokens` \\[0\\] \\(4\\) must equal `num_output_groups` \\[0\\] \\(3\\)",
        ),
        (
            {"vision_config": {"assign_mlp_ratio": [0.5]}},
            "`vision_config.assign_mlp_ratio` must be a number or \\[tokens, channels\\]",
        ),
        ({"vision_config": {"assign_eps": -1}}, "`vision_config.assign_eps` must be a number >= 0"),
        ({"vision_config": {"assign_eps": "x"}}, "`vision_config.assign_eps` must be a number"),
        ({"vision_config": [1]}, "`vision_config` must be an object"),
        ({"projection_intermediate_dim": 0}, "`projection_intermediate_dim` must be a positive integer"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict({"model_type": "groupvit", **d})


def test_input_and_class_errors(case):
    kind, hf, _ = case
    model = from_transformers(hf)
    ids, mask = texts()
    with pytest.raises(ValueError, match=f"{kind} needs pixel_values"):
        model(ids, mask)
    with pytest.raises(ValueError, match="pixel_values must be \\[batch, 3, 16, 16\\]"):
        tw.trace(
            lambda i, m, x: model.forward(bind_params(model.params), model.config, i, m, x),
            TensorSpec(("batch", 7), "int64"),
            TensorSpec(("batch", 7), "int64"),
            TensorSpec((2, 3, 16, 12), "float32"),
        )
    with pytest.raises(ValueError, match="exceeds the 20 tokens "):
        model(np.ones((1, 21), np.int64), pixel_values=pixels())
    prefix = "OwlViT" if kind == "owlvit" else "GroupViT"
    torch.manual_seed(0)
    vision_cls = getattr(transformers, prefix + "VisionModel")
    vision_cfg = getattr(transformers, prefix + "VisionConfig")(
        **(dict(VISION, **STAGES) if kind == "groupvit" else VISION)
    )
    with pytest.raises(ModelLoadError, match=f"`model_type` '{kind}_vision_model' is not supported"):
        from_transformers(vision_cls(vision_cfg))
