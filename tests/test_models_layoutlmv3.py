"""LayoutLMv3 (issue #15; ``layoutlmv3.py``) against transformers' PyTorch model: a tiny random
config (2 layers, hidden 32 = 4 * coordinate_size 4 + 2 * shape_size 8, 4 heads, vocabulary 99;
a 16 x 16 image in 4 x 4 patches, so 17 image positions; 1-D bias 8 bins / distance 16, 2-D bias
16 bins / distance 64; seeded; eval mode; eager attention). ``cls_token`` and ``pos_embed``
(zeros at initialisation) are drawn at random, and the bias tables with std 2 (their
initial 0.02 would leave the attention almost unbiased), so they count; the task heads' weights
are drawn with std 0.5 so their outputs are of order 1.

Three texts of 7 tokens with random boxes, the first right-padded with the pad id (1) so its
RoBERTa position ids stop; every position (padding and image ones too) is compared. Checked: the
base model with an image and text alone (live and ``save_pretrained``), every backend, the bias
switches, the three task heads (token classification with a linear and with the dense-tanh head),
one ONNX export validated and read back, the features, config and input errors.
Tolerance: spec/models.md ("Parity with transformers"), atol = rtol = 1e-5."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.models import bind_params, config_from_dict, layoutlmv3
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
CONFIG = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    coordinate_size=4,
    shape_size=8,
    input_size=16,
    patch_size=4,
    rel_pos_bins=8,
    max_rel_pos=16,
    rel_2d_pos_bins=16,
    max_rel_2d_pos=64,
)
CLASSES = {
    "default": "LayoutLMv3Model",
    "sequence-classification": "LayoutLMv3ForSequenceClassification",
    "token-classification": "LayoutLMv3ForTokenClassification",
    "question-answering": "LayoutLMv3ForQuestionAnswering",
}


def assert_close(actual, expected, atol=ATOL, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=rtol)


def hf_model(head: str = "default", **fields):
    torch.manual_seed(0)
    cfg = transformers.LayoutLMv3Config(**{**CONFIG, **fields}, attn_implementation="eager")
    model = getattr(transformers, CLASSES[head])(cfg).eval()
    base = getattr(model, "layoutlmv3", model)
    with torch.no_grad():
        if cfg.visual_embed:
            base.cls_token.normal_()
            base.pos_embed.normal_()
        for name in ("rel_pos_bias", "rel_pos_x_bias", "rel_pos_y_bias"):  # std 0.02 would hide them
            if hasattr(base.encoder, name):
                getattr(base.encoder, name).weight.normal_(0.0, 2.0)
        for name, param in model.named_parameters():  # head outputs of order 1, not 0.03
            if name.startswith(("classifier.", "qa_outputs.")):
                param.normal_(0.0, 0.5)
    return model


def inputs(batch: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask, bbox, pixel_values)``: row 0 padded after 5 tokens."""
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 99, (batch, 7)).astype(np.int64)
    mask = np.ones((batch, 7), np.int64)
    ids[0, 5:], mask[0, 5:] = 1, 0
    corners = np.sort(rng.integers(0, 1000, (batch, 7, 2, 2)), axis=-2)  # [..., (lo, hi), (x, y)]
    bbox = corners.reshape(batch, 7, 4).astype(np.int64)
    px = rng.standard_normal((batch, 3, 16, 16)).astype(np.float32)
    return ids, mask, bbox, px


def reference(hf, ids, mask, bbox, px=None) -> dict:
    feeds = {"input_ids": ids, "attention_mask": mask, "bbox": bbox}
    if px is not None:
        feeds["pixel_values"] = px
    with torch.no_grad():
        out = hf(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    names = ("last_hidden_state", "logits", "start_logits", "end_logits")
    return {k: out[k].numpy() for k in names if k in out and out[k] is not None}


def run(model, ids, mask, bbox, px=None, backend: str = "numpy") -> dict:
    return model(ids, mask, bbox=bbox, pixel_values=px, backend=backend)


def check(out: dict, ref: dict) -> None:
    assert sorted(out) == sorted(ref)
    for k in ref:
        assert np.shape(out[k]) == np.shape(ref[k])
        assert_close(out[k], ref[k])


@pytest.fixture(scope="module")
def case() -> tuple:
    hf = hf_model()
    ids, mask, bbox, px = inputs()
    return hf, reference(hf, ids, mask, bbox, px)


# ------------------------------------------------------------------ numpy: live and saved
def test_matches_transformers_live_and_from_a_checkpoint(case, tmp_path):
    """With an image (7 + 17 positions) and with the text alone (7), live and saved."""
    hf, ref = case
    ids, mask, bbox, px = inputs()
    text_ref = reference(hf, ids, mask, bbox)
    live = from_transformers(hf)
    assert live.model_type == "layoutlmv3" and live.head == "default" and live.is_multimodal
    assert live.generation_config is None
    assert np.shape(ref["last_hidden_state"]) == (3, 24, 32)
    hf.save_pretrained(str(tmp_path / "v3"))
    saved = from_pretrained(str(tmp_path / "v3"))
    assert saved.head == "default" and saved.generation_config is None
    assert saved.config == dataclasses.replace(
        live.config, architectures=saved.config.architectures, id2label=saved.config.id2label
    )
    for model in (live, saved):
        check(run(model, ids, mask, bbox, px), ref)
        check(run(model, ids, mask, bbox), text_ref)


def test_layout_image_and_padding_positions_matter(case):
    """Boxes, the image and the pad-aware position ids each change the result (the comparison
    above would catch dropping any of them)."""
    hf, ref = case
    ids, mask, bbox, px = inputs()
    model = from_transformers(hf)
    no_boxes = run(model, ids, mask, np.zeros_like(bbox), px)["last_hidden_state"]
    assert np.abs(no_boxes - ref["last_hidden_state"]).max() > 1e-2
    other_image = run(model, ids, mask, bbox, px[::-1].copy())["last_hidden_state"]
    # the text attends to the image (small weights at initialisation: 1e-3, 100 x the tolerance)
    assert np.abs(other_image[:, :7] - ref["last_hidden_state"][:, :7]).max() > 1e-4
    unpadded = ids.copy()
    unpadded[0, 5:] = 50  # positions keep counting past 5
    out = run(model, unpadded, mask, bbox, px)["last_hidden_state"]
    assert_close(out[1:], ref["last_hidden_state"][1:])
    assert np.abs(out[0, 5:7] - ref["last_hidden_state"][0, 5:7]).max() > 1e-2
    boxes = layoutlmv3.visual_boxes(4)
    assert boxes.shape == (17, 4) and boxes[0].tolist() == [1, 1, 999, 999]
    assert boxes[1].tolist() == [0, 0, 250, 250] and boxes[6].tolist() == [250, 250, 500, 500]


@pytest.mark.parametrize(
    "fields",
    [
        {"has_spatial_attention_bias": False},
        {"has_relative_attention_bias": False},  # no bias at all, the 2-D tables unused
        {"visual_embed": False},  # text only
    ],
)
def test_bias_and_image_switches(fields):
    hf = hf_model(**fields)
    ids, mask, bbox, px = inputs()
    model = from_transformers(hf)
    check(run(model, ids, mask, bbox), reference(hf, ids, mask, bbox))
    if fields.get("visual_embed", True):
        check(run(model, ids, mask, bbox, px), reference(hf, ids, mask, bbox, px))
    else:
        with pytest.raises(ValueError, match="visual_embed false: call it without pixel_values"):
            run(model, ids, mask, bbox, px)


def test_the_2d_bias_is_used(case):
    """The same weights with the spatial bias switched off in our config differ from the
    reference: the 2-D bias is part of what matched."""
    hf, ref = case
    ids, mask, bbox, px = inputs()
    model = from_transformers(hf)
    cfg = dataclasses.replace(model.config, has_spatial_attention_bias=False)
    spec = [
        TensorSpec((3, 7), "int64"),
        TensorSpec((3, 7, 4), "int64"),
        TensorSpec((3, 7), "int64"),
        TensorSpec((3, 3, 16, 16), "float32"),
    ]
    fn = lambda i, b, m, x: layoutlmv3.forward(bind_params(model.params), cfg, i, b, m, x)  # noqa: E731
    out = tw.lower(tw.trace(fn, *spec), "numpy")(ids, bbox, mask, px)
    out = out[0] if isinstance(out, tuple) else out
    # attention reaches the output through value / output weights of std 0.02: 7e-3, 700 x the tolerance
    assert np.abs(np.asarray(out) - ref["last_hidden_state"]).max() > 1e-3


# ------------------------------------------------------------------ every backend
def test_every_backend_forward(backend, case):
    hf, ref = case
    ids, mask, bbox, px = inputs()
    check(run(from_transformers(hf), ids, mask, bbox, px, backend), ref)


# ------------------------------------------------------------------ task heads
@pytest.mark.parametrize(
    "head, fields",
    [
        ("sequence-classification", {"num_labels": 3}),
        ("token-classification", {"num_labels": 3}),  # a linear classifier
        ("token-classification", {"num_labels": 11}),  # dense-tanh-out_proj from 10 labels on
        ("question-answering", {}),
    ],
)
def test_task_heads(head, fields, tmp_path):
    hf = hf_model(head, **fields)
    ids, mask, bbox, px = inputs()
    model = from_transformers(hf)
    assert model.head == head
    ref = reference(hf, ids, mask, bbox, px)
    check(run(model, ids, mask, bbox, px), ref)
    check(run(model, ids, mask, bbox), reference(hf, ids, mask, bbox))
    if head == "token-classification":
        assert np.shape(ref["logits"]) == (3, 7, fields["num_labels"])
    if head == "question-answering":
        assert np.shape(ref["start_logits"]) == (3, 24)
    hf.save_pretrained(str(tmp_path / "head"))
    assert from_pretrained(str(tmp_path / "head")).head == head
    base = from_pretrained(str(tmp_path / "head"), head="default")  # the head's tensors dropped
    assert base.head == "default" and not any(k.startswith(("classifier", "qa_outputs")) for k in base.params)


# ------------------------------------------------------------------ ONNX export
def test_onnx_export_validates(case, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    E = sys.modules["tensorweave.export"]
    hf = case[0]
    model = from_transformers(hf)
    res = tw.export(model, "default", "onnx", tmp_path / "out")
    names = ["input_ids", "bbox", "attention_mask", "pixel_values"]
    assert [s.name for s in res.onnx_config.input_specs()] == names
    assert list(res.output_names) == ["last_hidden_state"]
    E.validate_model_outputs(
        res.onnx_config, model, res.path, res.output_names, res.onnx_config.atol_for_validation
    )
    session = ort.InferenceSession(res.path, providers=["CPUExecutionProvider"])
    assert {i.name: i.shape for i in session.get_inputs()} == {
        "input_ids": ["batch", "sequence"],
        "bbox": ["batch", "sequence", 4],
        "attention_mask": ["batch", "sequence"],
        "pixel_values": ["batch", 3, 16, 16],
    }
    ids, mask, bbox, px = inputs(2)
    (out,) = session.run(None, {"input_ids": ids, "bbox": bbox, "attention_mask": mask, "pixel_values": px})
    assert_close(out, reference(hf, ids, mask, bbox, px)["last_hidden_state"])
    back = from_pretrained(str(tmp_path / "out"))
    assert back.head == "default" and back.config.architectures == ["LayoutLMv3Model"]
    check(run(back, ids, mask, bbox, px), reference(hf, ids, mask, bbox, px))


def test_features():
    from tensorweave.onnx import FeaturesManager

    features = FeaturesManager.get_supported_features_for_model_type("layoutlmv3")
    assert set(features) == {
        "default",
        "question-answering",
        "sequence-classification",
        "token-classification",
    }
    cfg = config_from_dict({"model_type": "layoutlmv3", **CONFIG})
    qa = features["question-answering"](cfg)
    assert list(qa.inputs) == ["input_ids", "attention_mask", "bbox", "pixel_values"]
    assert qa.outputs["start_logits"] == {0: "batch", 1: "sequence + 17"}
    assert dict(features["token-classification"](cfg).outputs) == {"logits": {0: "batch", 1: "sequence"}}


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "d, match",
    [
        ({"hidden_size": 30}, "`hidden_size` \\(30\\) must be divisible by `num_attention_heads`"),
        ({"coordinate_size": 5}, "`hidden_size` \\(32\\) must equal 4 \\* `coordinate_size` \\+ 2"),
        ({"hidden_act": "swish"}, "`hidden_act` 'swish' is not supported"),
        ({"text_embed": False}, "`text_embed` false \\(an image-only model\\) is not supported"),
        ({"pad_token_id": None}, "`pad_token_id` must be an integer below `max_position_embeddings`"),
        ({"input_size": 2}, "`input_size` \\(2\\) must be at least `patch_size` \\(4\\)"),
        ({"patch_size": [4, 4]}, "`patch_size` must be an integer"),
        ({"rel_pos_bins": 2}, "`rel_pos_bins` must be an integer of at least 4"),
        ({"max_rel_2d_pos": 4}, "`max_rel_2d_pos` \\(4\\) must exceed `rel_2d_pos_bins` // 4 \\(4\\)"),
        ({"has_spatial_attention_bias": "yes"}, "`has_spatial_attention_bias` must be a JSON boolean"),
        ({"num_labels": 0}, "`num_labels` must be a positive integer"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict({"model_type": "layoutlmv3", **CONFIG, **d})


def test_input_and_head_errors(case):
    hf = case[0]
    model = from_transformers(hf)
    ids, mask, bbox, px = inputs()
    with pytest.raises(ValueError, match="input 'pixel_values' axis 3 has size 12 but 16 was expected"):
        run(model, ids, mask, bbox, px[..., :12].copy())
    with pytest.raises(ValueError, match="pixel_values must be \\[batch, 3, 16, 16\\]"):
        tw.trace(
            lambda i, x: layoutlmv3.forward(bind_params(model.params), model.config, i, pixel_values=x),
            TensorSpec(("batch", 7), "int64"),
            TensorSpec((2, 3, 16, 12), "float32"),
        )
    with pytest.raises(ValueError, match="exceeds the 38 tokens layoutlmv3 takes"):
        model(np.full((1, 39), 5, np.int64), pixel_values=px[:1])
    with pytest.raises(ValueError, match="do not return hidden_states"):
        model(ids, mask, bbox=bbox, output_hidden_states=True)
    with pytest.raises(ValueError, match="unknown layoutlmv3 head 'masked-lm'"):
        from_transformers(hf, head="masked-lm")
    cfg = config_from_dict({"model_type": "layoutlmv3", **CONFIG, "num_labels": 3})
    with pytest.raises(ValueError, match="`num_labels` must be 2 for question-answering"):
        layoutlmv3.parameter_shapes(cfg, "question-answering")
    with pytest.raises(ValueError, match="this default model has|has the 'default' head"):
        tw.export(model, "token-classification", "onnx", "/nonexistent/never-written")
