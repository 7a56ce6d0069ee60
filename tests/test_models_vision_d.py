"""Vision encoders, wave 2 part D (issue #15): YOLOS (vit.py's switches: detection tokens after
the patches, mid-layer position tables, the class and box MLPs of ``YolosForObjectDetection``)
and MobileViT (``mobilevit.py``: inverted residuals, MobileViT blocks that unfold the map into
patches for a transformer and fold it back, the DeepLabV3 segmentation head), against
transformers' PyTorch models (tiny random configs, seeded, eval mode, eager attention; position
tables, tokens and BatchNorm statistics perturbed).

YOLOS: 2 layers of width 32, a 16 x 12 image in 4 x 4 patches, 3 detection tokens, one mid-layer
table. MobileViT: widths 8 .. 40, a 40 x 56 image, so the 5 x 7 and 3 x 4 maps of the MobileViT
blocks are resized to multiples of the 2 x 2 patch and back; the segmentation head with
``output_stride`` 8 (dilated blocks) and atrous rates 1, 2, 3.

Every head: outputs and hidden states from a live model and from a ``save_pretrained`` directory
on numpy; the default head on every backend; one ONNX export validated per type (and read back);
features, config and input errors. Tolerance: spec/models.md ("Parity with transformers"),
atol = rtol = 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.models import bind_params, config_from_dict, mobilevit, vit
from tensorweave.ir import TensorSpec, array_namespace
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

# model_type -> (transformers class prefix, config kwargs, head -> (class suffix, extra kwargs))
CASES = {
    "yolos": (
        "Yolos",
        dict(
            image_size=[16, 12],
            patch_size=4,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=48,
            num_detection_tokens=3,
            initializer_range=0.2,
            num_labels=3,
            attn_implementation="eager",
        ),
        {"default": ("Model", {}), "object-detection": ("ForObjectDetection", {})},
    ),
    "mobilevit": (
        "MobileViT",
        dict(
            image_size=[40, 56],
            hidden_sizes=[16, 24, 32],
            neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 40],
            num_attention_heads=2,
            aspp_out_channels=16,
            atrous_rates=[1, 2, 3],
            initializer_range=0.2,
            num_labels=3,
        ),
        {
            "default": ("Model", {}),
            "image-classification": ("ForImageClassification", {}),
            "semantic-segmentation": ("ForSemanticSegmentation", {"output_stride": 8}),
        },
    ),
}
TYPES = list(CASES)
SIZES = {"yolos": (16, 12), "mobilevit": (40, 56)}
OUTPUTS = ("last_hidden_state", "pooler_output", "logits", "pred_boxes")


def hf_model(name: str, head: str, **extra):
    prefix, kwargs, classes = CASES[name]
    suffix, head_extra = classes[head]
    torch.manual_seed(0)
    cfg = getattr(transformers, prefix + "Config")(**dict(kwargs, **head_extra, **extra))
    model = getattr(transformers, prefix + suffix)(cfg).eval()
    with torch.no_grad():  # tokens and tables start as zeros, BatchNorm as the identity
        for pname, param in model.named_parameters():
            if "position_embeddings" in pname or pname.endswith(("cls_token", "detection_tokens")):
                param.normal_(0.0, 0.5)
    perturb_batchnorm(model)
    return model


def reference(hf, size: tuple) -> dict:
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
        prefixes = (saved.config.base_prefix, "classifier.", "segmentation_head.", "class_labels_classifier.")
        assert all(k.startswith((*prefixes, "bbox_predictor.")) for k in saved.params)


def test_yolos_detection_outputs_and_mid_positions(cases):
    """Detection reads the 3 trailing tokens (``num_labels + 1`` classes, sigmoid boxes); the
    mid-layer table is added after layer 0 (its hidden state is taken before the add), so
    leaving it out moves the output far beyond the tolerance."""
    hf, ref = cases["yolos", "object-detection"]
    assert ref["logits"].shape == (2, 3, 4) and ref["pred_boxes"].shape == (2, 3, 4)
    assert ((ref["pred_boxes"] > 0) & (ref["pred_boxes"] < 1)).all()
    model = from_transformers(hf)
    assert model.params["vit.encoder.mid_position_embeddings"].shape == (1, 1, 16, 32)
    assert model.params["vit.embeddings.position_embeddings"].shape == (1, 16, 32)
    assert "vit.pooler.dense.weight" not in model.params
    params = dict(model.params)
    params["vit.encoder.mid_position_embeddings"] = np.zeros((1, 1, 16, 32), np.float32)
    fn = lambda x: vit.forward(bind_params(params), model.config, x, head="object-detection")  # noqa: E731
    prog = tw.lower(tw.trace(fn, TensorSpec(("batch", 3, 16, 12), "float32")), "numpy")
    named = dict(zip(prog.output_names, prog(pixels())))
    assert np.abs(named["logits"] - ref["logits"]).max() > 1e-2


def test_yolos_without_mid_position_embeddings():
    hf = hf_model("yolos", "default", use_mid_position_embeddings=False)
    model = from_transformers(hf)
    assert not any("mid_position_embeddings" in k for k in model.params)
    ref = reference(hf, SIZES["yolos"])
    check_outputs(model(pixels(size=SIZES["yolos"]), backend="numpy", output_hidden_states=True), ref)


def test_mobilevit_takes_other_image_sizes(cases):
    """A 32 x 48 image (every map a multiple of the patch), one program per size."""
    model = from_transformers(cases["mobilevit", "image-classification"][0])
    want = reference(hf_model("mobilevit", "image-classification"), (32, 48))["logits"]
    assert_close(model(pixels(size=(32, 48)), backend="numpy")["logits"], want)
    assert sum(key[0].startswith("forward@") for key in model._programs) == 1


def test_mobilevit_unfold_and_fold_are_inverse():
    """Token ``(i, j)`` of sequence ``(u, v)`` is pixel ``(i p + u, j p + v)``; fold undoes it."""
    y = np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)
    spec = TensorSpec((2, 3, 4, 6), "float32")
    xp_unfold = lambda x: mobilevit.unfold(array_namespace(x), x, 2)[0]  # noqa: E731
    t = np.asarray(tw.lower(tw.trace(xp_unfold, spec), "numpy")(y))
    assert t.shape == (8, 6, 3)
    assert t[1 * 4 + 1 * 2 + 0, 1 * 3 + 2, 2] == y[1, 2, 1 * 2 + 1, 2 * 2 + 0]

    def round_trip(x):
        xp = array_namespace(x)
        tokens, grid = mobilevit.unfold(xp, x, 2)
        return mobilevit.fold(xp, tokens, 2, grid, (4, 6))

    assert np.array_equal(np.asarray(tw.lower(tw.trace(round_trip, spec), "numpy")(y)), y)


# ------------------------------------------------------------------ every backend
@pytest.mark.parametrize("name", TYPES)
def test_every_backend_forward(name, backend, cases):
    hf, ref = cases[name, "default"]
    check_backend_outputs(from_transformers(hf)(pixels(size=SIZES[name]), backend=backend), ref)


# ------------------------------------------------------------------ ONNX export
@pytest.mark.parametrize(
    "name, head", [("yolos", "object-detection"), ("mobilevit", "semantic-segmentation")]
)
def test_onnx_export_validates(name, head, cases, tmp_path):
    pytest.importorskip("onnxruntime")
    hf = cases[name, head][0]
    model = from_transformers(hf)
    res = export_and_validate(model, head, tmp_path / "out")
    assert res.onnx_config.input_specs()[0].name == "pixel_values"
    assert res.output_names == (["logits", "pred_boxes"] if name == "yolos" else ["logits"])
    size = SIZES[name]
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
        (
            {"model_type": "yolos", "num_detection_tokens": 0},
            "`num_detection_tokens` must be a positive integer",
        ),
        ({"model_type": "yolos", "patch_size": [16, 8]}, "`patch_size` must be one integer for yolos"),
        (
            {"model_type": "yolos", "image_size": [30, 40], "patch_size": 16},
            "`image_size` \\[30, 40\\] must be a multiple of `patch_size` \\(16\\)",
        ),
        (
            {"model_type": "yolos", "hidden_size": 30, "num_attention_heads": 4},
            "divisible by `num_attention_heads`",
        ),
        (
            {"model_type": "mobilevit", "hidden_sizes": [144, 192]},
            "`hidden_sizes` must list 3 positive integers",
        ),
        (
            {"model_type": "mobilevit", "neck_hidden_sizes": [16, 32, 64]},
            "`neck_hidden_sizes` must list 7 positive integers",
        ),
        (
            {"model_type": "mobilevit", "atrous_rates": [6, 12]},
            "`atrous_rates` must list 3 positive integers",
        ),
        ({"model_type": "mobilevit", "hidden_sizes": [144, 192, 242]}, "stage 2 width 242 must be divisible"),
        ({"model_type": "mobilevit", "conv_kernel_size": 4}, "`conv_kernel_size` must be odd"),
        ({"model_type": "mobilevit", "patch_size": [2, 2]}, "`patch_size` must be an integer"),
        ({"model_type": "mobilevit", "hidden_act": "mish"}, "`hidden_act` 'mish' is not supported"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_wrong_inputs_are_one_line_errors(cases):
    yolos = from_transformers(cases["yolos", "default"][0])
    fn = lambda x: vit.forward(bind_params(yolos.params), yolos.config, x)  # noqa: E731
    with pytest.raises(ValueError, match="resize the image to the config's image_size"):
        tw.trace(fn, TensorSpec(("batch", 3, 16, 16), "float32"))
    with pytest.raises(
        ValueError,
        match="unknown vision head 'image-classification'; use one of \\['default', 'object-detection'\\]",
    ):
        from_transformers(cases["yolos", "default"][0], head="image-classification")
    mvit = from_transformers(cases["mobilevit", "default"][0])
    fn = lambda x: mobilevit.forward(bind_params(mvit.params), mvit.config, x)  # noqa: E731
    with pytest.raises(ValueError, match="pixel_values must be \\[batch, 3, height, width\\]"):
        tw.trace(fn, TensorSpec(("batch", 4, 40, 56), "float32"))
    with pytest.raises(ValueError, match="unknown vision head 'object-detection'"):
        from_transformers(cases["mobilevit", "default"][0], head="object-detection")
    with pytest.raises(ValueError, match="unknown vision head 'object-detection'"):
        vit.parameter_shapes(config_from_dict({"model_type": "vit"}), "object-detection")
