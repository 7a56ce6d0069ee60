"""DETR (issue #15, ``detr.py``) against transformers' PyTorch models (tiny random configs, seeded,
eval mode, eager attention): ``DetrModel`` (``default``), ``DetrForObjectDetection``
(``object-detection``) and ``DetrForSegmentation`` (``image-segmentation``) built with
``use_timm_backbone=False`` and a tiny transformers ResNet backbone (basic layers, widths 8 / 16 /
16, all three stages handed on: the transformer reads the last, the mask head all three),
d_model 32, 2 encoder layers of 8 heads and 2 decoder layers of 4, 10 object queries, 5 labels.
Every parameter and frozen-BatchNorm statistic is perturbed, so no layer is an identity. A 64 x 80
image gives a 4 x 5 feature map (20 encoder tokens) and 16 x 20 masks.

Every head from a live model and from a ``save_pretrained`` directory on numpy, with the default
all-ones ``pixel_mask`` and with padding masks (the masked sine positions and key masks); learned
positions; a backbone feature taken from an earlier stage; every head on every backend; one ONNX
export validated (object-detection; read back, run with a padding mask); features; config and
input errors. Tolerance: spec/models.md ("Parity with transformers"), atol = rtol = 1e-5."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.models import bind_params, config_from_dict, detr
from tensorweave.ir import TensorSpec
from tensorweave.models import from_pretrained, from_transformers

from conftest import IN_CI

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

ATOL = RTOL = 1e-5
SIZE = (64, 80)
CLASSES = {
    "default": "DetrModel",
    "object-detection": "DetrForObjectDetection",
    "image-segmentation": "DetrForSegmentation",
}
BACKBONE = dict(
    num_channels=3,
    embedding_size=8,
    hidden_sizes=[8, 16, 16],
    depths=[1, 1, 1],
    layer_type="basic",
    out_features=["stage1", "stage2", "stage3"],  # the transformer reads stage 3, the mask head all three
)
CONFIG = dict(
    use_timm_backbone=False,
    d_model=32,
    encoder_layers=2,
    decoder_layers=2,
    encoder_attention_heads=8,  # the mask head takes d_model + heads channels, a multiple of 8
    decoder_attention_heads=4,
    encoder_ffn_dim=64,
    decoder_ffn_dim=64,
    num_queries=10,
    num_labels=5,
    attn_implementation="eager",
)


def assert_close(actual, expected, atol=ATOL, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=rtol)


def hf_model(head: str, backbone: dict | None = None, **extra):
    torch.manual_seed(0)
    bb = transformers.ResNetConfig(**dict(BACKBONE, **(backbone or {})))
    cfg = transformers.DetrConfig(backbone_config=bb, **dict(CONFIG, **extra))
    model = getattr(transformers, CLASSES[head])(cfg).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # biases start at zero, LayerNorms and frozen BatchNorms as identities
        for _, t in sorted({**dict(model.named_parameters()), **dict(model.named_buffers())}.items()):
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=gen) * 0.1)
        for name, t in model.named_buffers():
            if name.endswith("running_var"):
                t.abs_().add_(0.5)
    return model


def pixels(batch: int = 2, size: tuple = SIZE) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, 3, *size)).astype(np.float32)


def padding_mask(batch: int = 2, size: tuple = SIZE) -> np.ndarray:
    """Row 0 padded on the right (a third of the width), row 1 at the bottom (a quarter)."""
    mask = np.ones((batch, *size), np.int64)
    mask[0, :, size[1] * 2 // 3 :] = 0
    mask[1, size[0] * 3 // 4 :, :] = 0
    return mask


def reference(hf, mask: np.ndarray | None = None, size: tuple = SIZE) -> dict:
    kwargs = {} if mask is None else {"pixel_mask": torch.from_numpy(mask)}
    with torch.no_grad():
        out = hf(pixel_values=torch.from_numpy(pixels(size=size)), **kwargs)
    names = ("logits", "pred_boxes", "pred_masks", "last_hidden_state", "encoder_last_hidden_state")
    return {k: out[k].numpy() for k in names if out.get(k) is not None}


@pytest.fixture(scope="module")
def cases() -> dict:
    """head -> (transformers model, reference outputs, reference outputs with padding masks)."""
    out = {}
    for head in CLASSES:
        hf = hf_model(head)
        out[head] = (hf, reference(hf), reference(hf, padding_mask()))
    return out


def check_outputs(out: dict, ref: dict) -> None:
    assert sorted(out) == sorted(ref)
    for k in ref:
        assert_close(out[k], ref[k])


# ------------------------------------------------------------------ numpy: live and saved
def test_every_head_matches_transformers_live_and_from_a_checkpoint(cases, tmp_path):
    x, mask = pixels(), padding_mask()
    for head, (hf, ref, masked) in cases.items():
        live = from_transformers(hf)
        assert live.head == head and live.model_type == "detr" and live.is_vision and live.has_pixel_mask
        check_outputs(live(x, backend="numpy"), ref)
        check_outputs(live(x, backend="numpy", pixel_mask=np.ones((2, *SIZE), np.int64)), ref)
        check_outputs(live(x, backend="numpy", pixel_mask=mask), masked)
        hf.save_pretrained(str(tmp_path / head))
        saved = from_pretrained(str(tmp_path / head))
        assert saved.head == head and saved.generation_config is None
        # the names checkpoints are saved with, not transformers v5's module names
        assert "model.backbone.conv_encoder.model.embedder.embedder.convolution.weight" in saved.params
        assert "model.encoder.layers.1.self_attn.out_proj.weight" in saved.params
        assert "model.decoder.layers.1.fc2.bias" in saved.params
        assert sorted(saved.params) == sorted(live.params)
        check_outputs(saved(x, backend="numpy", pixel_mask=mask), masked)
    assert cases["object-detection"][1]["logits"].shape == (2, 10, 6)  # num_labels + "no object"
    assert cases["default"][1]["encoder_last_hidden_state"].shape == (2, 20, 32)  # a 4 x 5 map
    assert cases["image-segmentation"][1]["pred_masks"].shape == (2, 10, 16, 20)  # stage 1's grid


def test_the_mask_reaches_positions_and_attention(cases):
    """A padding mask changes every output far beyond the tolerance (positions are normalised over
    the real cells only and padded keys are hidden), as it does in transformers."""
    _, ref, masked = cases["object-detection"]
    for k in ref:
        assert np.abs(ref[k] - masked[k]).max() > 1e-3  # 100 times the tolerance (boxes are sigmoids)
    pos = np.asarray(
        tw.lower(tw.trace(lambda m: detr.sine_positions(m, 32), TensorSpec((1, 2, 3), "float32")), "numpy")(
            np.array([[[1, 1, 0], [1, 1, 0]]], np.float32)
        )
    )
    # cell (row 0, column 1): y = 1 of 2 real rows -> pi, x = 2 of 2 real columns -> 2 pi
    t = 10000.0 ** (np.arange(8) * 2 / 16)
    assert pos.shape == (1, 6, 32)
    assert_close(pos[0, 1, 0:16:2], np.sin(np.pi / t), atol=1e-5)
    assert_close(pos[0, 1, 1:16:2], np.cos(np.pi / t), atol=1e-5)
    assert_close(pos[0, 1, 16::2], np.sin(2 * np.pi / t), atol=1e-5)
    assert_close(pos[0, 1, 17::2], np.cos(2 * np.pi / t), atol=1e-5)
    # a padded column: y counts no real cell (0: sin 0, cos 0); x repeats the last real column's
    assert_close(pos[0, 2, :16], np.tile([0.0, 1.0], 8))
    assert_close(pos[0, 2, 16:], pos[0, 1, 16:])


def test_object_detection_checkpoint_serves_the_default_head(cases):
    hf, _, masked = cases["object-detection"]
    model = from_transformers(hf, head="default")
    assert model.head == "default" and not any(k.startswith("bbox_predictor.") for k in model.params)
    out = model(pixels(), backend="numpy", pixel_mask=padding_mask())
    assert sorted(out) == ["encoder_last_hidden_state", "last_hidden_state"]
    assert_close(out["last_hidden_state"], masked["last_hidden_state"])


def test_learned_positions_and_an_earlier_backbone_stage():
    """``position_embedding_type="learned"`` (row / column tables of 50) and a backbone whose
    feature map is stage 2's (``out_features``; 8 x 10 cells), on bottleneck layers."""
    for backbone, extra in (
        ({}, {"position_embedding_type": "learned"}),
        ({"out_features": ["stage2"], "layer_type": "bottleneck", "hidden_sizes": [8, 16, 32]}, {}),
    ):
        hf = hf_model("object-detection", backbone, **extra)
        model = from_transformers(hf)
        check_outputs(model(pixels(), backend="numpy"), reference(hf))
        check_outputs(
            model(pixels(), backend="numpy", pixel_mask=padding_mask()), reference(hf, padding_mask())
        )
    assert model.params["model.input_projection.weight"].shape == (32, 16, 1, 1)


# ------------------------------------------------------------------ every backend
@pytest.mark.parametrize("head", list(CLASSES))
def test_every_backend_forward(head, backend, cases):
    hf, _, masked = cases[head]
    out = from_transformers(hf)(pixels(), backend=backend, pixel_mask=padding_mask())
    assert sorted(out) == sorted(masked)
    for k in out:
        assert_close(out[k], masked[k])


# ------------------------------------------------------------------ ONNX export
@pytest.mark.parametrize("head", ["object-detection", "image-segmentation"])
def test_onnx_export_validates(head, cases, tmp_path):
    pytest.importorskip("onnxruntime")
    E = sys.modules["tensorweave.export"]
    hf = cases[head][0]
    model = from_transformers(hf)
    res = tw.export(model, head, "onnx", tmp_path / "out")
    masks = ["pred_masks"] if head == "image-segmentation" else []
    assert res.output_names == ["logits", "pred_boxes", *masks]
    E.validate_model_outputs(
        res.onnx_config, model, res.path, res.output_names, res.onnx_config.atol_for_validation
    )
    import onnxruntime as ort

    session = ort.InferenceSession(res.path, providers=["CPUExecutionProvider"])
    got = [(i.name, i.shape, i.type) for i in session.get_inputs()]
    assert got == [
        ("pixel_values", ["batch", 3, 224, 224], "tensor(float)"),
        ("pixel_mask", ["batch", 224, 224], "tensor(int64)"),
    ]
    size = (224, 224)
    feeds = {"pixel_values": pixels(3, size), "pixel_mask": padding_mask(3, size)}
    outs = dict(zip(res.output_names, session.run(None, feeds)))
    want = model(feeds["pixel_values"], backend="numpy", pixel_mask=feeds["pixel_mask"])
    for k in res.output_names:
        assert_close(outs[k], want[k])
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == [CLASSES[head]] and config["model_type"] == "detr"
    back = from_pretrained(str(tmp_path / "out"))
    same = dataclasses.replace(model.config, architectures=back.config.architectures)
    assert back.head == head and back.config == same


def test_features():
    from tensorweave.onnx import FeaturesManager

    assert set(FeaturesManager.get_supported_features_for_model_type("detr")) == set(CLASSES)
    cfg = config_from_dict({"model_type": "detr", "use_timm_backbone": False})
    onnx_config = FeaturesManager.get_config("detr", "default")(cfg)
    assert list(onnx_config.inputs) == ["pixel_values", "pixel_mask"]
    assert list(onnx_config.outputs) == ["last_hidden_state"]
    assert onnx_config.default_onnx_opset == 12


# ------------------------------------------------------------------ errors
DETR = {"model_type": "detr", "use_timm_backbone": False}


@pytest.mark.parametrize(
    "d, match",
    [
        ({"model_type": "detr"}, '`use_timm_backbone` is true .*use_timm_backbone": false'),
        (
            {
                "model_type": "detr",
                "backbone_config": {"model_type": "timm_backbone", "backbone": "resnet50"},
            },
            "`backbone_config.model_type` is 'timm_backbone'; .*ResNet `backbone_config`",
        ),
        ({**DETR, "backbone_config": {"model_type": "swin"}}, "DETR runs on a 'resnet' backbone"),
        (
            {**DETR, "backbone_config": {"model_type": "resnet", "depths": [1]}},
            "`backbone_config.hidden_sizes`",
        ),
        (
            {**DETR, "backbone_config": {"model_type": "resnet", "out_features": ["stage9"]}},
            "`backbone_config.out_features` \\['stage9'\\] must name stages",
        ),
        ({**DETR, "position_embedding_type": "relative"}, "`position_embedding_type` 'relative'"),
        (
            {**DETR, "d_model": 30, "encoder_attention_heads": 3, "decoder_attention_heads": 3},
            "multiple of 4",
        ),
        ({**DETR, "d_model": 32, "decoder_attention_heads": 3}, "divisible by `decoder_attention_heads`"),
        ({**DETR, "num_queries": 0}, "`num_queries` must be a positive integer"),
        ({**DETR, "activation_function": "tanh"}, "`activation_function` 'tanh'"),
        ({**DETR, "num_channels": 1}, "`num_channels` \\(1\\) must equal `backbone_config.num_channels`"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_wrong_inputs_are_one_line_errors(cases):
    model = from_transformers(cases["default"][0])
    with pytest.raises(ValueError, match="input 'pixel_mask' axis 2 has size 81 but 80 was expected"):
        model(pixels(), backend="numpy", pixel_mask=np.ones((2, 64, 81), np.int64))
    fn = lambda x, m: detr.forward(bind_params(model.params), model.config, x, m)  # noqa: E731
    spec = TensorSpec(("batch", 3, *SIZE), "float32")
    with pytest.raises(ValueError, match="pixel_mask must be \\[batch, height, width\\] like"):
        tw.trace(fn, spec, TensorSpec(("batch", 64, 81), "int64"))
    fn = lambda x: detr.forward(bind_params(model.params), model.config, x)  # noqa: E731
    with pytest.raises(ValueError, match="pixel_values must be \\[batch, 3, height, width\\]"):
        tw.trace(fn, TensorSpec(("batch", 4, *SIZE), "float32"))
    with pytest.raises(ValueError, match="detr returns no hidden_states"):
        model(pixels(), backend="numpy", output_hidden_states=True)
    with pytest.raises(ValueError, match="unknown detr head 'image-classification'"):
        from_transformers(cases["default"][0], head="image-classification")
    learned = from_transformers(hf_model("default", position_embedding_type="learned"))
    with pytest.raises(ValueError, match="has 50 rows and columns; the feature map is 51 x 5"):
        learned(pixels(1, (51 * 16, 80)), backend="numpy")
    resnet = transformers.ResNetModel(
        transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1])
    )
    with pytest.raises(ValueError, match="resnet takes no pixel_mask \\(only detr does\\)"):
        from_transformers(resnet.eval())(pixels(), backend="numpy", pixel_mask=padding_mask())
    one_stage = dict(DETR, backbone_config={"model_type": "resnet", "out_features": ["stage4"]})
    with pytest.raises(
        ValueError, match="`backbone_config.out_features` \\['stage4'\\] must name at least 3 stages"
    ):
        detr.parameter_shapes(config_from_dict(one_stage), "image-segmentation")
