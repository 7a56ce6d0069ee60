"""The vision encoders (issue #15): ViT and DeiT (distillation token, two averaged heads) as config
switches of ``vit.py``, and ResNet (``resnet.py``: conv, BatchNorm, max pool), against transformers'
PyTorch models (tiny random configs: 2 layers, hidden 32, a 16 x 12 image in 4 x 4 patches;
ResNet: bottleneck stages of widths 16 and 32 with perturbed BatchNorm statistics; ConvNeXt (its
own ``convnext.py``): stages of widths 8 and 16 with layer scale; seeded; eval mode; eager
attention).

Every type and head: outputs and hidden states from a live model and from a ``save_pretrained``
directory on numpy; the default head on every backend; one ONNX export per type validated (and
read back); features, exported ``architectures``, config and input errors.
Tolerance: spec/models.md ("Parity with transformers"), atol = rtol = 1e-5 (observed <= 3.4e-6)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import bind_params, config_from_dict, vit
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

COMMON = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    image_size=[16, 12],  # not square: rows and columns of the patch grid must not be swapped
    patch_size=4,
    num_channels=3,
    initializer_range=0.2,  # large enough that a wrong token, position or head moves outputs by >> 1e-5
    num_labels=3,
    attn_implementation="eager",
)
# model_type -> (transformers class prefix, config kwargs, head -> class suffix)
CASES = {
    "vit": ("ViT", dict(COMMON), {"default": "Model", "image-classification": "ForImageClassification"}),
    "deit": (
        "DeiT",
        dict(COMMON, qkv_bias=False, pooler_act="relu", pooler_output_size=24),
        {"default": "Model", "image-classification": "ForImageClassificationWithTeacher"},
    ),
    "beit": (
        "Beit",
        dict(
            COMMON,
            image_size=[16, 16],  # transformers' BEiT adds absolute positions to square images only
            use_absolute_position_embeddings=True,
            use_shared_relative_position_bias=True,
            use_relative_position_bias=True,
        ),
        {"default": "Model", "image-classification": "ForImageClassification"},
    ),
    "data2vec-vision": (  # BEiT under another prefix; here per-layer biases on a 4 x 3 window,
        "Data2VecVision",  # CLS pooling and no layer scale
        dict(COMMON, use_relative_position_bias=True, use_mean_pooling=False, layer_scale_init_value=0.0),
        {"default": "Model", "image-classification": "ForImageClassification"},
    ),
    "resnet": (
        "ResNet",
        dict(
            embedding_size=8,
            hidden_sizes=[16, 32],
            depths=[1, 2],
            layer_type="bottleneck",
            downsample_in_bottleneck=True,
            num_labels=3,
        ),
        {"default": "Model", "image-classification": "ForImageClassification"},
    ),
    "convnext": (
        "ConvNext",
        dict(
            num_stages=2,
            hidden_sizes=[8, 16],
            depths=[1, 2],
            patch_size=2,
            image_size=[16, 12],
            layer_scale_init_value=0.5,
            initializer_range=0.2,
            num_labels=3,
        ),
        {"default": "Model", "image-classification": "ForImageClassification"},
    ),
}
TYPES = list(CASES)
HEADS = ("default", "image-classification")
OUTPUTS = ("last_hidden_state", "pooler_output", "logits")


def hf_model(name: str, head: str):
    prefix, kwargs, classes = CASES[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, prefix + "Config")(**kwargs)
    model = getattr(transformers, prefix + classes[head])(cfg).eval()
    with torch.no_grad():  # BatchNorm starts as the identity, BEiT's tables and tokens as zeros
        for pname, param in model.named_parameters():
            if any(
                k in pname for k in ("relative_position_bias_table", "lambda_", "cls_token", "position_embed")
            ):
                param.normal_(0.0, 0.5)
    perturb_batchnorm(model)
    return model


def size_of(name: str) -> tuple:
    return (16, 16) if name == "beit" else (16, 12)


def reference(hf, size: tuple = (16, 12)) -> dict:
    return vision_reference(hf, pixels(size=size), OUTPUTS)


@pytest.fixture(scope="module")
def cases() -> dict:
    """(type, head) -> (transformers model, reference outputs), built once."""
    return build_cases(
        TYPES, lambda name: HEADS, hf_model, lambda hf, name, head: reference(hf, size_of(name))
    )


# ------------------------------------------------------------------ numpy: live and saved
@pytest.mark.parametrize("name", TYPES)
def test_every_head_matches_transformers_live_and_from_a_checkpoint(name, cases, tmp_path):
    for head in HEADS:
        hf, ref = cases[name, head]
        live, saved = check_live_and_saved(hf, ref, name, head, tmp_path, (pixels(size=size_of(name)),))
        assert live.is_vision and saved.generation_config is None
        assert all(
            k.startswith((saved.config.base_prefix, "classifier.", "cls_classifier.", "distillation_"))
            for k in saved.params
        )


def test_the_switches_under_test_move_the_outputs(cases):
    """DeiT's distillation head, and the token it reads, matter at this tolerance; the patch
    grid is 4 x 3 (rows from the height)."""
    hf, ref = cases["deit", "image-classification"]
    model = from_transformers(hf)
    assert model.config.grid == (4, 3) and model.config.num_tokens == 14
    P = model.params

    def cls_only(x):
        last, _ = vit.encode(bind_params(P), model.config, x)
        w, b = P["cls_classifier.weight"], P["cls_classifier.bias"]
        return tw.ir.namespace.matmul(last[:, 0], w.T) + b

    spec = TensorSpec(("batch", 3, 16, 12), "float32")
    got = np.asarray(tw.lower(tw.trace(cls_only, spec), backend="numpy")(pixels()))
    with torch.no_grad():
        want = hf.cls_classifier(hf.deit(torch.from_numpy(pixels())).last_hidden_state[:, 0]).numpy()
    assert_close(got, want)
    assert np.abs(got - ref["logits"]).max() > 1e-2


# ------------------------------------------------------------------ every backend
@pytest.mark.parametrize("name", TYPES)
def test_every_backend_forward(name, backend, cases):
    hf, ref = cases[name, "default"]
    check_backend_outputs(from_transformers(hf)(pixels(size=size_of(name)), backend=backend), ref)


# ------------------------------------------------------------------ ONNX export
@pytest.mark.parametrize(
    "name, head",
    [
        ("vit", "default"),
        ("deit", "image-classification"),
        ("beit", "default"),
        ("data2vec-vision", "image-classification"),
        ("resnet", "image-classification"),
        ("convnext", "default"),
    ],
)
def test_onnx_export_validates(name, head, cases, tmp_path):
    pytest.importorskip("onnxruntime")
    hf = cases[name, head][0]
    model = from_transformers(hf)
    res = export_and_validate(model, head, tmp_path / "out")
    assert res.onnx_config.input_specs()[0].name == "pixel_values"
    size = (224, 224) if name == "resnet" else size_of(name)  # resnet's config has no image size
    check_onnx_pixels(res, model, size, pixels(3, size))
    check_export_config(tmp_path / "out", type(hf).__name__, name)
    assert not (tmp_path / "out" / "generation_config.json").exists()  # encoders do not generate
    back = check_export_reads_back(model, head, tmp_path / "out")  # reads back as the same model
    assert back.generation_config is None


@pytest.mark.parametrize("name", ["resnet", "convnext"])
def test_convolutional_types_take_any_image_size(name, cases):
    """One program per image size (no position table); each matches transformers."""
    hf, _ = cases[name, "image-classification"]
    model = from_transformers(hf)
    for size in [(33, 20), (7, 9)]:
        ref = reference(hf, size)
        assert_close(model(pixels(size=size), backend="numpy")["logits"], ref["logits"])
    assert sum(key[0].startswith("forward@") for key in model._programs) == 2


def test_beit_relative_bias_resamples_a_non_square_table(cases):
    """On a 4 x 3 window transformers resamples the (2*3-1) x (2*4-1) patch rows of the table to
    (2*4-1) x (2*3-1) before indexing (``vit.relative_bias``); indexing the raw table is far off."""
    hf, _ = cases["data2vec-vision", "default"]
    model = from_transformers(hf)
    name = "data2vec_vision.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table"
    table = model.params[name]
    spec = TensorSpec(table.shape, "float32")
    fn = lambda t: vit.relative_bias(tw.ir.namespace, model.config, t)  # noqa: E731
    got = np.asarray(tw.lower(tw.trace(fn, spec), "numpy")(table))
    layer = hf.encoder.layer[0].attention.attention.relative_position_bias
    with torch.no_grad():
        want = layer((4, 3), interpolate_pos_encoding=False, dim_size=13).numpy()
    assert_close(got, want)
    raw = table[vit.relative_position_index((4, 3)).reshape(-1)].reshape(13, 13, -1).transpose(2, 0, 1)[None]
    assert np.abs(raw - want).max() > 1e-2


def test_convnext_without_layer_scale(cases):
    """``layer_scale_init_value <= 0``: no ``layer_scale_parameter`` (its absence is not an error)."""
    prefix, kwargs, _ = CASES["convnext"]
    torch.manual_seed(0)
    hf = transformers.ConvNextModel(
        transformers.ConvNextConfig(**dict(kwargs, layer_scale_init_value=0.0))
    ).eval()
    model = from_transformers(hf)
    assert not any("layer_scale" in k for k in model.params)
    check_outputs(model(pixels(), backend="numpy", output_hidden_states=True), reference(hf))


def test_features():
    from tensorweave.onnx import AutoModelForImageClassification, FeaturesManager

    for name in TYPES:
        assert set(FeaturesManager.get_supported_features_for_model_type(name)) == {
            "default",
            "image-classification",
        }
    assert (
        FeaturesManager.get_model_class_for_feature("image-classification") is AutoModelForImageClassification
    )


def test_export_refuses_the_other_head(cases, tmp_path):
    model = from_transformers(cases["vit", "default"][0])
    with pytest.raises(ValueError, match="has the 'default' head, the feature needs 'image-classification'"):
        tw.export(model, "image-classification", "onnx", tmp_path / "out")


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "d, match",
    [
        (
            {"model_type": "vit", "hidden_size": 30, "num_attention_heads": 4},
            "`hidden_size` \\(30\\) must be divisible",
        ),
        (
            {"model_type": "vit", "patch_size": 0},
            "`patch_size` must be a positive integer or \\[height, width\\]",
        ),
        ({"model_type": "deit", "image_size": [8, 8, 8]}, "`image_size` must be"),
        (
            {"model_type": "vit", "image_size": 8, "patch_size": 16},
            "`image_size` \\[8, 8\\] must be at least",
        ),
        ({"model_type": "deit", "hidden_act": "swish"}, "`hidden_act`"),
        ({"model_type": "vit", "pooler_act": "swish"}, "`pooler_act`"),
        ({"model_type": "vit", "num_channels": 0}, "`num_channels` must be a positive integer"),
        (
            {"model_type": "resnet", "layer_type": "plain"},
            "`layer_type` 'plain' must be 'basic' or 'bottleneck'",
        ),
        ({"model_type": "resnet", "depths": [1], "hidden_sizes": [8, 16]}, "must have the same length"),
        ({"model_type": "resnet", "hidden_sizes": [6], "depths": [1]}, "multiples of 4 for bottleneck"),
        (
            {"model_type": "resnet", "depths": [0, 1]},
            "`depths` must be a non-empty list of positive integers",
        ),
        (
            {"model_type": "convnext", "num_stages": 2},
            "`hidden_sizes` must list a positive integer for each of",
        ),
        ({"model_type": "convnext", "hidden_act": "swish"}, "`hidden_act`"),
        (
            {"model_type": "beit", "patch_size": [4]},
            "`patch_size` must be a positive integer or \\[height, width\\]",
        ),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_unsupported_class_wrong_head_and_wrong_image_are_one_line_errors(cases):
    torch.manual_seed(0)
    plain = transformers.DeiTForImageClassification(transformers.DeiTConfig(**CASES["deit"][1]))
    with pytest.raises(ModelLoadError, match="DeiTForImageClassification is not supported; deit classes"):
        from_transformers(plain)
    hf = cases["vit", "image-classification"][0]
    with pytest.raises(ModelLoadError, match="missing .*vit.pooler.dense.weight"):
        from_transformers(hf, head="default")
    with pytest.raises(ValueError, match="unknown vision head 'masked-lm'"):
        from_transformers(hf, head="masked-lm")
    model = from_transformers(hf)
    transposed = TensorSpec(("batch", 3, 12, 16), "float32")
    with pytest.raises(ValueError, match="pixel_values must be \\[batch, 3, 16, 12\\]"):
        tw.trace(lambda x: vit.forward(bind_params(model.params), model.config, x), transposed)
