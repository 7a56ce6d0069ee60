"""Issue #15's loose ends: inputs and heads of existing types that used to stop short of the
``Model`` API and the export, against transformers' PyTorch models (tiny random configs, seeded,
every parameter perturbed so that biases and norm weights matter, eval mode, eager attention):

- XLM / FlauBERT ``langs`` (language ids) through ``model(..., langs=...)`` and an ONNX ``langs``
  input when the config has language embeddings;
- Longformer ``global_attention_mask`` through ``model(..., global_attention_mask=...)`` and the
  ONNX export (4.37's signature: ``input_ids``, ``attention_mask``, ``global_attention_mask``);
- ImageGPT's ``image-classification`` head (``ImageGPTForImageClassification``);
- Perceiver's ``sequence-classification`` (``PerceiverForSequenceClassification``) and
  ``image-classification`` (``PerceiverForImageClassificationLearned``, pixels in).

Each: outputs (and hidden states) from a live model and from a ``save_pretrained`` directory on
numpy, a check that the new input / head moves the output, every backend, one ONNX export validated
and read back, and the errors. Tolerance: spec/models.md ("Parity with transformers"), atol = rtol
= 1e-5 on numpy, 1e-4 on the other backends."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import config_from_dict
from tensorweave.models import from_pretrained, from_transformers

from conftest import IN_CI
from model_parity import assert_close, perturb_parameters
from model_parity import export_and_validate as validated_export

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

ATOL = RTOL = 1e-5
BACKEND_TOL = 1e-4
VOCAB, SEQ, REAL = 100, 9, 6  # row 1 is padded after REAL tokens


def build(cls: str, config, **kwargs):
    torch.manual_seed(0)
    # seeded noise on every parameter (norm weights start at one, biases at zero)
    return perturb_parameters(getattr(transformers, cls)(config, **kwargs)).eval()


def text_inputs(pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)``: row 1 right-padded with ``pad``; id 2 (a separator) at 4."""
    ids = np.random.default_rng(0).integers(3, VOCAB, (2, SEQ))
    ids[:, 4] = 2
    ids[1, REAL:] = pad
    mask = np.ones((2, SEQ), np.int64)
    mask[1, REAL:] = 0
    return ids, mask


def run_hf(hf, **inputs) -> dict:
    with torch.no_grad():
        out = hf(
            **{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()},
            output_hidden_states=True,
        )
    ref = {k: out[k].numpy() for k in ("last_hidden_state", "logits") if out.get(k) is not None}
    ref["hidden_states"] = [h.numpy() for h in out.hidden_states]
    return ref


def check(out: dict, ref: dict, rows=slice(None)) -> float:
    """Every output and hidden state close to transformers'; returns the max |difference|."""
    err = 0.0
    for k in ref:
        if k == "hidden_states":
            assert len(out[k]) == len(ref[k])
            pairs = list(zip(out[k], ref[k]))
        else:
            assert np.abs(ref[k]).max() > 1e-2  # not a comparison between near-zeros
            pairs = [(out[k], ref[k])]
        for ours, theirs in pairs:
            ours, theirs = np.asarray(ours)[rows], np.asarray(theirs)[rows]
            assert_close(ours, theirs)
            err = max(err, float(np.abs(ours - theirs).max()))
    return err


def export_and_validate(model, feature: str, out) -> object:
    """:func:`model_parity.export_and_validate` where onnxruntime is installed (skips elsewhere)."""
    pytest.importorskip("onnxruntime")
    return validated_export(model, feature, out)


def run_onnx(path, **feeds) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: np.asarray(v) for k, v in feeds.items()})[0]


# ====================================================================== XLM / FlauBERT langs
XLM = dict(
    vocab_size=VOCAB,
    emb_dim=32,
    n_layers=2,
    n_heads=4,
    max_position_embeddings=64,
    init_std=0.1,
    embed_init_std=0.1,
    n_langs=3,
    summary_activation="tanh",
    attn_implementation="eager",
    num_labels=3,
)
LANGS = np.array([[0, 1, 2, 2, 1, 0, 1, 2, 0], [2, 2, 1, 1, 0, 0, 0, 0, 0]])
TYPES = np.zeros((2, SEQ), np.int64)  # the Model API's default token types (XLM looks them up)


@pytest.fixture(scope="module")
def xlm():
    """(XLMForSequenceClassification with 3 languages, inputs, reference with langs, without)."""
    hf = build("XLMForSequenceClassification", transformers.XLMConfig(**XLM))
    ids, mask = text_inputs(2)
    with_langs = run_hf(hf, input_ids=ids, attention_mask=mask, token_type_ids=TYPES, langs=LANGS)
    without = run_hf(hf, input_ids=ids, attention_mask=mask, token_type_ids=TYPES)
    return hf, (ids, mask), with_langs, without


def test_xlm_langs_match_transformers_live_and_from_a_checkpoint(xlm, tmp_path):
    hf, (ids, mask), ref, without = xlm
    hf.save_pretrained(str(tmp_path))
    for model in (from_transformers(hf), from_pretrained(str(tmp_path))):
        assert model.extra_input_names == ("langs",)
        check(model(ids, mask, langs=LANGS, backend="numpy", output_hidden_states=True), ref)
        check(model(ids, mask, backend="numpy", output_hidden_states=True), without)  # no langs: no term
    assert np.abs(ref["logits"] - without["logits"]).max() > 1e-2  # the languages matter


def test_xlm_langs_multiple_choice():
    """``langs [batch, choice, sequence]`` follow the choices."""
    hf = build(
        "XLMForMultipleChoice",
        transformers.XLMConfig(**XLM, summary_use_proj=True, summary_proj_to_labels=True),
    )
    ids, mask = text_inputs(2)
    ids, mask, types, langs = (
        np.stack([a, np.roll(a, 1, axis=1)], axis=1) for a in (ids, mask, TYPES, LANGS)
    )
    ref = run_hf(hf, input_ids=ids, attention_mask=mask, token_type_ids=types, langs=langs)
    out = from_transformers(hf)(ids, mask, types, langs=langs, output_hidden_states=True)
    assert out["logits"].shape == (2, 2)
    check(out, ref)


def test_flaubert_langs():
    hf = build("FlaubertModel", transformers.FlaubertConfig(**XLM))
    ids, mask = text_inputs(2)
    ref = run_hf(hf, input_ids=ids, attention_mask=mask, token_type_ids=TYPES, langs=LANGS)
    check(from_transformers(hf)(ids, mask, langs=LANGS, output_hidden_states=True), ref)


def test_xlm_langs_every_backend(xlm, backend):
    hf, (ids, mask), ref, _ = xlm
    out = from_transformers(hf)(ids, mask, langs=LANGS, backend=backend)
    assert_close(out["logits"], ref["logits"], atol=BACKEND_TOL, rtol=BACKEND_TOL)


def test_xlm_onnx_export_has_a_langs_input(xlm, tmp_path):
    hf, (ids, mask), ref, _ = xlm
    model = from_transformers(hf)
    res = export_and_validate(model, "sequence-classification", tmp_path / "out")
    assert res.input_names == ["input_ids", "attention_mask", "token_type_ids", "langs"]
    assert_close(
        run_onnx(res.path, input_ids=ids, attention_mask=mask, token_type_ids=TYPES, langs=LANGS),
        ref["logits"],
    )
    back = from_pretrained(str(tmp_path / "out"))  # the language table is in the export
    assert back.head == "sequence-classification"
    assert_close(back(ids, mask, langs=LANGS)["logits"], ref["logits"])
    # a monolingual config has no language table and no langs input
    mono = from_transformers(build("XLMModel", transformers.XLMConfig(**{**XLM, "n_langs": 1})))
    assert mono.extra_input_names == ("langs",)
    res = tw.export(mono, "default", "onnx", tmp_path / "mono")
    assert res.input_names == ["input_ids", "attention_mask", "token_type_ids"]


# ====================================================================== Longformer global attention
LONGFORMER = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=64,
    attention_window=[4, 6],
    type_vocab_size=1,
    pad_token_id=1,
    sep_token_id=2,
    num_labels=3,
    initializer_range=0.1,
    attn_implementation="eager",
)
GLOBAL = np.zeros((2, SEQ), np.int64)
GLOBAL[:, [0, 5]] = 1


@pytest.fixture(scope="module")
def longformer():
    """(LongformerForSequenceClassification, inputs, reference with GLOBAL, with the head's default)."""
    hf = build("LongformerForSequenceClassification", transformers.LongformerConfig(**LONGFORMER))
    ids, mask = text_inputs(1)
    ref = run_hf(hf, input_ids=ids, attention_mask=mask, global_attention_mask=GLOBAL)
    default = run_hf(hf, input_ids=ids, attention_mask=mask)
    return hf, (ids, mask), ref, default


def test_longformer_global_attention_mask_live_and_from_a_checkpoint(longformer, tmp_path):
    hf, (ids, mask), ref, default = longformer
    hf.save_pretrained(str(tmp_path))
    for model in (from_transformers(hf), from_pretrained(str(tmp_path))):
        assert model.extra_input_names == ("global_attention_mask",)
        # hidden states at padding positions are not specified (transformers pads to the window)
        check(model(ids, mask, global_attention_mask=GLOBAL, output_hidden_states=True), ref, rows=0)
        check(model(ids, mask, output_hidden_states=True), default, rows=0)  # the head's default
        assert_close(model(ids, mask, global_attention_mask=GLOBAL)["logits"], ref["logits"])
    assert np.abs(ref["logits"] - default["logits"]).max() > 100 * ATOL  # the mask matters
    assert np.abs(ref["hidden_states"][-1][0] - default["hidden_states"][-1][0]).max() > 1e-2


def test_longformer_global_attention_mask_question_answering():
    hf = build(
        "LongformerForQuestionAnswering", transformers.LongformerConfig(**{**LONGFORMER, "num_labels": 2})
    )
    ids, mask = text_inputs(1)
    with torch.no_grad():
        want = hf(*(torch.from_numpy(a) for a in (ids, mask)), global_attention_mask=torch.from_numpy(GLOBAL))
    out = from_transformers(hf)(ids, mask, global_attention_mask=GLOBAL)
    for k in ("start_logits", "end_logits"):
        assert_close(np.asarray(out[k])[:, :REAL], want[k].numpy()[:, :REAL])


def test_longformer_global_attention_mask_every_backend(longformer, backend):
    hf, (ids, mask), ref, _ = longformer
    out = from_transformers(hf)(ids, mask, global_attention_mask=GLOBAL, backend=backend)
    assert_close(out["logits"], ref["logits"], atol=BACKEND_TOL, rtol=BACKEND_TOL)


def test_longformer_onnx_export_takes_the_global_mask(longformer, tmp_path):
    hf, (ids, mask), ref, _ = longformer
    model = from_transformers(hf)
    res = export_and_validate(model, "sequence-classification", tmp_path / "out")
    assert res.input_names == ["input_ids", "attention_mask", "global_attention_mask"]  # 4.37's
    assert_close(
        run_onnx(res.path, input_ids=ids, attention_mask=mask, global_attention_mask=GLOBAL), ref["logits"]
    )
    back = from_pretrained(str(tmp_path / "out"))
    assert_close(back(ids, mask, global_attention_mask=GLOBAL)["logits"], ref["logits"])


# ====================================================================== ImageGPT classification
IMAGEGPT = dict(
    vocab_size=17, n_positions=32, n_embd=32, n_layer=2, n_head=4, num_labels=3, attn_implementation="eager"
)
PIXEL_IDS = np.array([[16, 3, 7, 1, 9, 12, 4, 0], [16, 5, 5, 2, 8, 14, 11, 6]], np.int64)


@pytest.fixture(scope="module")
def imagegpt():
    hf = build("ImageGPTForImageClassification", transformers.ImageGPTConfig(**IMAGEGPT))
    return hf, run_hf(hf, input_ids=PIXEL_IDS)


def test_imagegpt_classifier_live_and_from_a_checkpoint(imagegpt, tmp_path):
    hf, ref = imagegpt
    assert ref["logits"].shape == (2, 3)
    hf.save_pretrained(str(tmp_path))
    for model in (from_transformers(hf), from_pretrained(str(tmp_path))):
        assert model.head == "image-classification" and model.is_decoder
        assert "score.weight" in model.params and "lm_head.weight" not in model.params
        check(model(PIXEL_IDS, backend="numpy", output_hidden_states=True), ref)
    # the mean over positions matters: the last position alone gives other logits
    model = from_transformers(hf)
    last = (
        model(PIXEL_IDS, output_hidden_states=True)["hidden_states"][-1][:, -1]
        @ model.params["score.weight"].T
    )
    assert np.abs(last - ref["logits"]).max() > 1e-2


def test_imagegpt_classifier_every_backend(imagegpt, backend):
    hf, ref = imagegpt
    out = from_transformers(hf)(PIXEL_IDS, backend=backend)
    assert_close(out["logits"], ref["logits"], atol=BACKEND_TOL, rtol=BACKEND_TOL)


def test_imagegpt_classifier_onnx_export(imagegpt, tmp_path):
    from tensorweave.onnx import FeaturesManager

    assert "image-classification" in FeaturesManager.get_supported_features_for_model_type("imagegpt")
    hf, ref = imagegpt
    model = from_transformers(hf)
    res = export_and_validate(model, "image-classification", tmp_path / "out")
    assert res.input_names == ["input_ids", "attention_mask"]
    assert_close(
        run_onnx(res.path, input_ids=PIXEL_IDS, attention_mask=np.ones_like(PIXEL_IDS)), ref["logits"]
    )
    back = from_pretrained(str(tmp_path / "out"))
    assert back.head == "image-classification" and back.config.architectures == [
        "ImageGPTForImageClassification"
    ]
    assert transformers.AutoConfig.from_pretrained(str(tmp_path / "out")).num_labels == 3


def test_imagegpt_classifier_errors(imagegpt):
    hf, _ = imagegpt
    model = from_transformers(hf)
    with pytest.raises(ValueError, match="do not generate"):
        model.generate(PIXEL_IDS, max_new_tokens=2)
    with pytest.raises(ValueError, match="'image-classification' head is not a decoder"):
        model.with_past_program()
    with pytest.raises(
        ValueError, match="has the 'image-classification' head, the feature needs 'causal-lm'"
    ):
        tw.export(model, "causal-lm", "onnx", "unused")
    lm = build("ImageGPTForCausalImageModeling", transformers.ImageGPTConfig(**IMAGEGPT))
    with pytest.raises(
        ValueError, match="has the 'causal-lm' head, the feature needs 'image-classification'"
    ):
        tw.export(from_transformers(lm), "image-classification", "onnx", "unused")
    with pytest.raises(ModelLoadError, match="missing .*score.weight"):
        from_transformers(lm, head="image-classification")
    with pytest.raises(
        ModelLoadError, match="no head 'masked-lm'; they are causal LMs \\(or 'image-classification'\\)"
    ):
        from_transformers(lm, head="masked-lm")
    with pytest.raises(ValueError, match="`num_labels` must be a positive integer"):
        config_from_dict({"model_type": "imagegpt", "num_labels": 0})


# ====================================================================== Perceiver classifiers
PERCEIVER = dict(
    vocab_size=VOCAB,
    num_latents=6,
    d_latents=32,
    d_model=32,
    num_blocks=2,
    num_self_attends_per_block=2,
    num_self_attention_heads=4,
    num_cross_attention_heads=4,
    self_attention_widening_factor=2,
    max_position_embeddings=16,
    image_size=4,
    num_labels=3,
    initializer_range=0.1,
)
PIXELS = np.random.default_rng(1).standard_normal((2, 3, 4, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def perceiver():
    """(text classifier, its reference, image classifier, its reference)."""
    config = transformers.PerceiverConfig(**PERCEIVER)
    text = build("PerceiverForSequenceClassification", config)
    ids, mask = text_inputs(0)
    image = build("PerceiverForImageClassificationLearned", config)
    return text, run_hf(text, input_ids=ids, attention_mask=mask), image, run_hf(image, inputs=PIXELS)


def test_perceiver_sequence_classification(perceiver, tmp_path):
    hf, ref, _, _ = perceiver
    ids, mask = text_inputs(0)
    assert ref["logits"].shape == (2, 3) and len(ref["hidden_states"]) == 6
    hf.save_pretrained(str(tmp_path))
    for model in (from_transformers(hf), from_pretrained(str(tmp_path))):
        assert model.head == "sequence-classification" and not model.is_vision
        check(model(ids, mask, backend="numpy", output_hidden_states=True), ref)
    unmasked = from_transformers(hf)(ids, np.ones_like(mask))["logits"]
    assert np.abs(np.asarray(unmasked)[1] - ref["logits"][1]).max() > 1e-2  # the padding mask matters


def test_perceiver_image_classification(perceiver, tmp_path):
    _, _, hf, ref = perceiver
    hf.save_pretrained(str(tmp_path))
    for model in (from_transformers(hf), from_pretrained(str(tmp_path))):
        assert model.head == "image-classification" and model.is_vision
        check(model(PIXELS, backend="numpy", output_hidden_states=True), ref)
    model = from_transformers(hf)
    with pytest.raises(
        ValueError, match="H \\* W = image_size\\*\\*2 \\(4\\*\\*2\\), got \\[batch, 3, 4, 8\\]"
    ):
        model(np.zeros((2, 3, 4, 8), np.float32))


@pytest.mark.parametrize("head", ["sequence-classification", "image-classification"])
def test_perceiver_classifiers_every_backend(perceiver, head, backend):
    text, text_ref, image, image_ref = perceiver
    if head == "image-classification":
        out, ref = from_transformers(image)(PIXELS, backend=backend), image_ref
    else:
        out, ref = from_transformers(text)(*text_inputs(0), backend=backend), text_ref
    assert_close(out["logits"], ref["logits"], atol=BACKEND_TOL, rtol=BACKEND_TOL)


@pytest.mark.parametrize("head", ["sequence-classification", "image-classification"])
def test_perceiver_classifiers_onnx_export(perceiver, head, tmp_path):
    from tensorweave.onnx import FeaturesManager

    assert set(FeaturesManager.get_supported_features_for_model_type("perceiver")) == {
        "masked-lm",
        "sequence-classification",
        "image-classification",
    }
    text, _, image, _ = perceiver
    hf = image if head == "image-classification" else text
    model = from_transformers(hf)
    res = export_and_validate(model, head, tmp_path / "out")
    want = (
        ["pixel_values"]
        if head == "image-classification"
        else ["input_ids", "attention_mask", "token_type_ids"]
    )
    assert res.input_names == want
    back = from_pretrained(str(tmp_path / "out"))
    assert back.head == head and back.config.architectures == [type(hf).__name__]


def test_perceiver_errors(perceiver):
    text, _, image, _ = perceiver
    with pytest.raises(ModelLoadError, match="missing .*convnet_1x1.weight"):
        from_transformers(text, head="image-classification")
    with pytest.raises(ValueError, match="perceiver has no head 'default'"):
        from_transformers(text, head="default")
    # the image cross-attention is 512 wide: 3 heads cannot split it
    cfg = config_from_dict(
        {**PERCEIVER, "model_type": "perceiver", "num_cross_attention_heads": 3, "d_model": 48}
    )
    with pytest.raises(ValueError, match="the image cross-attention width\\) must be divisible by"):
        tw.models.checkpoint.expected_shapes(cfg, "image-classification")
    with pytest.raises(ValueError, match="`image_size` must be a positive integer"):
        config_from_dict({"model_type": "perceiver", "image_size": 0})


# ====================================================================== errors of the extra inputs
def test_extra_inputs_are_checked(xlm, longformer, perceiver):
    xlm_model = from_transformers(xlm[0])
    ids, mask = xlm[1]
    with pytest.raises(
        ValueError, match="xlm takes no global_attention_mask input \\(only longformer does\\)"
    ):
        xlm_model(ids, mask, global_attention_mask=GLOBAL)
    with pytest.raises(ValueError, match="langs must have the shape of input_ids \\(2, 9\\), got \\(2, 8\\)"):
        xlm_model(ids, mask, langs=LANGS[:, :8])
    with pytest.raises(ValueError, match="longformer takes no langs input \\(only xlm and flaubert do\\)"):
        from_transformers(longformer[0])(ids, mask, langs=LANGS)
    with pytest.raises(ValueError, match="perceiver takes no langs input"):
        from_transformers(perceiver[2])(PIXELS, langs=LANGS)
