"""Vision encoders, wave 2 part B (issue #15): Swin (``swin.py``: shifted-window attention with
relative position biases and the shift mask, patch merging) and SegFormer (``segformer.py``:
overlapping patch embeddings, attention with reduced keys / values, Mix-FFN, the all-MLP
semantic-segmentation head), against transformers' PyTorch models (tiny random configs, seeded,
eval mode, eager attention). Swin: 2 stages of 2 layers, widths 16 and 32, window 3, a 21 x 12
image in 2 x 2 patches, so the stem pads the image, the first stage pads its 11 x 6 grid to
12 x 6 windows and shifts, the merging pads the odd side and the second stage's 6 x 3 grid keeps
one unshifted window column; bias tables perturbed. SegFormer: 2 stages (widths 8 and 16,
``sr_ratios`` 2 and 1) on a 29 x 22 image, BatchNorm statistics perturbed.

Every head: outputs and hidden states from a live model and from a ``save_pretrained`` directory
on numpy; the default head on every backend; one ONNX export validated (and read back); features,
exported ``architectures``, config and input errors.
Tolerance: spec/models.md ("Parity with transformers"), atol = rtol = 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.models import bind_params, config_from_dict, swin
from tensorweave.ir import TensorSpec
from tensorweave.models import from_transformers

from conftest import IN_CI
from model_parity import (
    assert_close,
    build_cases,
    check_backend_outputs,
    check_export_config,
    check_export_reads_back,
    check_live_and_saved,
    check_onnx_pixels,
    check_outputs,
    export_and_validate,
    perturb_batchnorm,
    vision_reference,
)
from model_parity import image_pixels as pixels

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

SIZE = (21, 12)
# model_type -> (transformers class prefix, config kwargs, head -> class suffix)
CASES = {
    "swin": (
        "Swin",
        dict(
            image_size=list(SIZE),
            patch_size=2,
            embed_dim=16,
            depths=[2, 2],
            num_heads=[2, 4],
            window_size=3,
            mlp_ratio=2.0,
            initializer_range=0.2,
            num_labels=3,
            attn_implementation="eager",
        ),
        {"default": "Model", "image-classification": "ForImageClassification"},
    ),
    "segformer": (
        "Segformer",
        dict(
            num_encoder_blocks=2,
            depths=[1, 2],
            sr_ratios=[2, 1],  # stage 0 reduces its keys / values, stage 1 does not
            hidden_sizes=[8, 16],
            patch_sizes=[7, 3],
            strides=[4, 2],
            num_attention_heads=[1, 2],
            mlp_ratios=[2, 2],
            decoder_hidden_size=16,
            initializer_range=0.2,
            num_labels=3,
            attn_implementation="eager",
        ),
        {
            "default": "Model",
            "image-classification": "ForImageClassification",
            "semantic-segmentation": "ForSemanticSegmentation",
        },
    ),
}
TYPES = list(CASES)
SIZES = {"swin": SIZE, "segformer": (29, 22)}  # segformer: 8 x 6 and 4 x 3 grids, upsampled 2x
OUTPUTS = ("last_hidden_state", "pooler_output", "logits")


def hf_model(name: str, head: str, **extra):
    prefix, kwargs, classes = CASES[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, prefix + "Config")(**dict(kwargs, **extra))
    model = getattr(transformers, prefix + classes[head])(cfg).eval()
    with torch.no_grad():  # the bias and position tables start as zeros, BatchNorm as the identity
        for pname, param in model.named_parameters():
            if "relative_position_bias_table" in pname or "position_embeddings" in pname:
                param.normal_(0.0, 0.5)
    perturb_batchnorm(model)
    return model


def reference(hf, size: tuple = SIZE) -> dict:
    return vision_reference(hf, pixels(size=size), OUTPUTS)


@pytest.fixture(scope="module")
def cases() -> dict:
    """(type, head) -> (transformers model, reference outputs), built once."""
    return build_cases(
        TYPES, lambda name: CASES[name][2], hf_model, lambda hf, name, head: reference(hf, SIZES[name])
    )


# ------------------------------------------------------------------ numpy: live and saved
@pytest.mark.parametrize("name", TYPES)
def test_every_head_matches_transformers_live_and_from_a_checkpoint(name, cases, tmp_path):
    x = pixels(size=SIZES[name])
    for head in CASES[name][2]:
        hf, ref = cases[name, head]
        live, saved = check_live_and_saved(hf, ref, name, head, tmp_path, (x,))
        assert live.is_vision and saved.generation_config is None
        assert all(
            k.startswith((saved.config.base_prefix, "classifier.", "decode_head.")) for k in saved.params
        )
        assert any(".attention.self.query." in k for k in saved.params)  # the saved names, not v5's


def test_swin_shift_mask_and_padding_matter(cases):
    """The first stage shifts and pads (11 x 6 -> 12 x 6); dropping the shift mask (regions of the
    rolled grid attending across their seams) moves the outputs far beyond the tolerance."""
    hf, ref = cases["swin", "default"]
    model = from_transformers(hf)
    gather, scatter = swin.window_index((11, 6), 3, 1)
    assert gather.shape == (72,) and (gather == 66).sum() == 6  # one padded row of 6
    assert np.array_equal(gather[scatter], np.arange(66))
    mask = swin.shift_mask((12, 6), 3, 1)
    assert mask.shape == (8, 9, 9) and (mask[0] == 0).all() and (mask[-1] != 0).any()
    real = swin.shift_mask
    try:
        swin.shift_mask = lambda padded, window, shift: np.zeros_like(real(padded, window, shift))
        spec = TensorSpec(("batch", 3, *SIZE), "float32")
        fn = lambda x: swin.forward(bind_params(model.params), model.config, x)["last_hidden_state"]  # noqa: E731
        got = np.asarray(tw.lower(tw.trace(fn, spec), "numpy")(pixels(size=SIZE)))
    finally:
        swin.shift_mask = real
    assert np.abs(got - ref["last_hidden_state"]).max() > 1e-2


def test_swin_takes_other_image_sizes(cases):
    """One program per image size; each matches transformers (sizes that pad and that do not).
    A fresh transformers model per size: its layers keep the window / shift of the first small
    grid they see (``set_shift_and_window_size`` writes them), ours decide per size."""
    model = from_transformers(cases["swin", "image-classification"][0])
    for size in [(24, 24), (13, 17)]:
        want = reference(hf_model("swin", "image-classification"), size)["logits"]
        assert_close(model(pixels(size=size), backend="numpy")["logits"], want)
    assert sum(key[0].startswith("forward@") for key in model._programs) == 2


def test_swin_absolute_positions():
    """``use_absolute_embeddings``: a [1, 10 * 6, 16] table added after the stem's LayerNorm (an
    image that needs no patch padding, as transformers' table has ``image_size // patch_size``
    rows); another grid is refused."""
    hf = hf_model("swin", "default", use_absolute_embeddings=True, image_size=[20, 12])
    model = from_transformers(hf)
    assert model.params["swin.embeddings.position_embeddings"].shape == (1, 60, 16)
    ref = reference(hf, (20, 12))
    check_outputs(model(pixels(size=(20, 12)), backend="numpy", output_hidden_states=True), ref)
    with pytest.raises(
        ValueError, match="use_absolute_embeddings takes the config's image_size \\[20, 12\\]"
    ):
        model(pixels(size=SIZE), backend="numpy")


# ------------------------------------------------------------------ every backend
@pytest.mark.parametrize("name", TYPES)
def test_every_backend_forward(name, backend, cases):
    hf, ref = cases[name, "default"]
    check_backend_outputs(from_transformers(hf)(pixels(size=SIZES[name]), backend=backend), ref)


# ------------------------------------------------------------------ ONNX export
@pytest.mark.parametrize(
    "name, head", [("swin", "image-classification"), ("segformer", "semantic-segmentation")]
)
def test_onnx_export_validates(name, head, cases, tmp_path):
    pytest.importorskip("onnxruntime")
    hf = cases[name, head][0]
    model = from_transformers(hf)
    res = export_and_validate(model, head, tmp_path / "out")
    assert res.onnx_config.input_specs()[0].name == "pixel_values"
    size = SIZE if name == "swin" else (224, 224)  # segformer's config has no image size
    check_onnx_pixels(res, model, size, pixels(3, size))
    check_export_config(tmp_path / "out", type(hf).__name__, name)
    assert check_export_reads_back(model, head, tmp_path / "out").generation_config is None


def test_features():
    from tensorweave.onnx import FeaturesManager

    for name in TYPES:
        assert set(FeaturesManager.get_supported_features_for_model_type(name)) == set(CASES[name][2])


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "d, match",
    [
        ({"model_type": "swin", "depths": [2], "num_heads": [2, 4]}, "must have the same length"),
        (
            {"model_type": "swin", "embed_dim": 10, "depths": [1], "num_heads": [3]},
            "stage 0 width 10 .* divisible",
        ),
        ({"model_type": "swin", "depths": [0]}, "`depths` must be a non-empty list of positive integers"),
        ({"model_type": "swin", "window_size": 0}, "`window_size` must be a positive integer"),
        ({"model_type": "swin", "hidden_act": "swish"}, "`hidden_act`"),
        ({"model_type": "swin", "patch_size": [4]}, "`patch_size` must be a positive integer or"),
        (
            {"model_type": "segformer", "num_encoder_blocks": 2},
            "`depths` must list a positive integer for each of the `num_encoder_blocks` \\(2\\)",
        ),
        ({"model_type": "segformer", "mlp_ratios": [4, 4, 0, 4]}, "`mlp_ratios` must list a positive number"),
        (
            {"model_type": "segformer", "hidden_sizes": [32, 64, 160, 250]},
            "stage 3 width 250 must be divisible",
        ),
        ({"model_type": "segformer", "hidden_act": "swish"}, "`hidden_act`"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_wrong_inputs_are_one_line_errors(cases):
    hf = cases["swin", "default"][0]
    model = from_transformers(hf)
    fn = lambda x: swin.forward(bind_params(model.params), model.config, x)  # noqa: E731
    with pytest.raises(ValueError, match="pixel_values must be \\[batch, 3, height, width\\]"):
        tw.trace(fn, TensorSpec(("batch", 4, *SIZE), "float32"))
    with pytest.raises(ValueError, match="smaller than `window_size` \\(3\\)"):
        tw.trace(fn, TensorSpec(("batch", 3, 8, 8), "float32"))  # stage 1: a 2 x 2 grid
    with pytest.raises(ValueError, match="unknown vision head 'semantic-segmentation'"):
        from_transformers(hf, head="semantic-segmentation")


def test_segformer_decode_head_resamples_every_stage(cases):
    """The decode head's bilinear resize (4 x 3 -> 8 x 6, align_corners=False) and the
    key / value reduction of stage 0 are exercised: the fused map has the first stage's grid."""
    hf, ref = cases["segformer", "semantic-segmentation"]
    assert ref["logits"].shape == (2, 3, 8, 6) and ref["hidden_states"][1].shape == (2, 16, 4, 3)
    model = from_transformers(hf)
    assert "segformer.encoder.block.0.0.attention.self.sr.weight" in model.params
    assert "segformer.encoder.block.1.0.attention.self.sr.weight" not in model.params
    for size in [(32, 32), (17, 40)]:  # any image size, one program each
        want = reference(hf_model("segformer", "semantic-segmentation"), size)["logits"]
        assert_close(model(pixels(size=size), backend="numpy")["logits"], want)


def test_segformer_without_reshaping_the_last_stage():
    """``reshape_last_stage = false``: the last stage stays ``[b, H * W, C]``; classification
    averages its tokens."""
    for head in ("default", "image-classification"):
        hf = hf_model("segformer", head, reshape_last_stage=False)
        ref = reference(hf, SIZES["segformer"])
        out = from_transformers(hf)(
            pixels(size=SIZES["segformer"]), backend="numpy", output_hidden_states=True
        )
        check_outputs(out, ref)
    assert ref["hidden_states"][-1].shape == (2, 12, 16)
