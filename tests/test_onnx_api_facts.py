"""More API facts of Hugging Face 4.37's ``transformers.onnx`` that
tests/test_onnx_config.py does not pin: constants, class defaults, the task table, deep-copied
outputs, constructors, feature lists, framework choice and its errors, dummy inputs for images,
audio, multiple choice and seq2seq with past."""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from functools import partial

import numpy as np
import pytest

from tensorweave.onnx import (
    DEFAULT_ONNX_OPSET,
    BertOnnxConfig,
    FeaturesManager,
    GPT2OnnxConfig,
    OnnxConfig,
    OnnxConfigWithPast,
    OnnxSeq2SeqConfigWithPast,
    ParameterFormat,
    PatchingSpec,
    T5OnnxConfig,
    compute_serialized_parameters_size,
    supported_features_mapping,
)

GPT2 = {"model_type": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 16, "use_cache": True, "pad_token_id": 5}


class Tok:
    """A tokenizer stand-in: one id per character of the unk token run (so lengths are checkable)."""

    unk_token = "<unk>"

    def num_special_tokens_to_add(self, pair=False):
        return 3 if pair else 2

    def __call__(self, text, pair=None):
        self.last = (list(text), None if pair is None else list(pair))
        n = (
            text[0].count("<unk>") + 2
            if pair is None
            else text[0].count("<unk>") + pair[0].count("<unk>") + 3
        )
        return {"input_ids": [[7] * n for _ in text], "attention_mask": [[1] * n for _ in text]}


def test_constants_and_parameter_size():
    assert DEFAULT_ONNX_OPSET == 11
    assert ParameterFormat.Float.size == 4
    assert compute_serialized_parameters_size(10, ParameterFormat.Float) == 40
    assert compute_serialized_parameters_size(0, ParameterFormat.Float) == 0


def test_class_defaults_and_torch_support():
    assert (
        OnnxConfig.default_fixed_batch,
        OnnxConfig.default_fixed_sequence,
        OnnxConfig.default_fixed_num_choices,
    ) == (2, 8, 4)
    assert str(OnnxConfig.torch_onnx_minimum_version) == "1.8"
    c = BertOnnxConfig({"model_type": "bert"})
    assert c.is_torch_support_available == (importlib.util.find_spec("torch") is not None)


def test_task_table():
    table = OnnxConfig._tasks_to_common_outputs
    assert set(table) == {
        "causal-lm",
        "default",
        "image-classification",
        "image-segmentation",
        "masked-im",
        "masked-lm",
        "multiple-choice",
        "object-detection",
        "question-answering",
        "semantic-segmentation",
        "seq2seq-lm",
        "sequence-classification",
        "speech2seq-lm",
        "token-classification",
        "vision2seq-lm",
    }
    assert dict(table["default"]) == {"last_hidden_state": {0: "batch", 1: "sequence"}}
    assert dict(table["seq2seq-lm"]) == {"logits": {0: "batch", 1: "decoder_sequence"}}
    assert list(table["question-answering"]) == ["start_logits", "end_logits"]
    assert list(table["object-detection"]) == ["logits", "pred_boxes"]
    assert list(table["image-segmentation"]) == ["logits", "pred_boxes", "pred_masks"]
    assert table["semantic-segmentation"]["logits"] == {0: "batch", 1: "num_labels", 2: "height", 3: "width"}
    for task in (
        "causal-lm",
        "masked-lm",
        "token-classification",
        "image-classification",
        "masked-im",
        "vision2seq-lm",
        "speech2seq-lm",
    ):
        assert dict(table[task]) == {"logits": {0: "batch", 1: "sequence"}}, task
    assert dict(table["multiple-choice"]) == {"logits": {0: "batch"}}


def test_outputs_are_a_deep_copy_and_constructors():
    c = BertOnnxConfig.from_model_config({"model_type": "bert"}, task="masked-lm")
    assert isinstance(c, BertOnnxConfig) and c.task == "masked-lm"
    out = c.outputs
    out["logits"][1] = "changed"
    out["extra"] = {}
    assert dict(c.outputs) == {"logits": {0: "batch", 1: "sequence"}}
    assert OnnxConfig._tasks_to_common_outputs["masked-lm"]["logits"] == {0: "batch", 1: "sequence"}
    p = GPT2OnnxConfig.with_past(dict(GPT2), task="default")
    assert p.use_past and p.task == "default" and GPT2OnnxConfig(dict(GPT2)).use_past is False
    feeds = {"input_ids": np.zeros((1, 1))}
    assert c.generate_dummy_inputs_onnxruntime(feeds) is feeds


def test_values_override_and_gpt2_axes_without_past():
    no_past = GPT2OnnxConfig(dict(GPT2), task="causal-lm")
    assert no_past.values_override == {"use_cache": False}
    assert GPT2OnnxConfig({k: v for k, v in GPT2.items() if k != "use_cache"}).values_override is None
    assert dict(no_past.inputs) == {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "sequence"},
    }
    assert dict(no_past.outputs) == {"logits": {0: "batch", 1: "sequence"}}
    assert GPT2OnnxConfig(dict(GPT2))._config["pad_token_id"] == 5  # only a falsy pad id is replaced
    assert OnnxConfigWithPast({"num_layers": 3, "num_attention_heads": 2}).num_layers == 3


def test_supported_features_mapping_constructors():
    m = supported_features_mapping("default", "causal-lm-with-past", onnx_config_cls=GPT2OnnxConfig)
    assert isinstance(m["default"], partial) and m["default"].func == GPT2OnnxConfig.from_model_config
    assert m["default"].keywords == {"task": "default"}
    assert m["causal-lm-with-past"].func == GPT2OnnxConfig.with_past
    assert m["causal-lm-with-past"].keywords == {"task": "causal-lm"}


def test_feature_lists():
    gpt2 = FeaturesManager.get_supported_features_for_model_type("gpt2")
    assert list(gpt2) == [
        "default",
        "default-with-past",
        "causal-lm",
        "causal-lm-with-past",
        "sequence-classification",
        "token-classification",
    ]
    assert list(FeaturesManager.get_supported_features_for_model_type("BERT")) == [
        "default",
        "masked-lm",
        "causal-lm",
        "sequence-classification",
        "multiple-choice",
        "token-classification",
        "question-answering",
    ]
    assert list(FeaturesManager.get_supported_features_for_model_type("t5")) == [
        "default",
        "default-with-past",
        "seq2seq-lm",
        "seq2seq-lm-with-past",
    ]
    union = {f for t in FeaturesManager._SUPPORTED_MODEL_TYPE.values() for f in t}
    assert FeaturesManager.AVAILABLE_FEATURES == sorted(union)
    assert "masked-im" not in FeaturesManager.AVAILABLE_FEATURES
    cls = FeaturesManager.get_model_class_for_feature("causal-lm", framework="tf")
    assert isinstance(cls, type) and cls.__name__ == "TFAutoModelForCausalLM"
    assert callable(cls.from_pretrained)
    with pytest.raises(KeyError, match=r"Unknown task: object-detection. Possible values are \['AutoModel'"):
        FeaturesManager.get_model_class_for_feature(
            "object-detection", framework="tf"
        )  # lists the PT classes


def test_determine_framework_precedence_details(tmp_path, monkeypatch):
    assert FeaturesManager.determine_framework(str(tmp_path), "anything") == "anything"  # explicit, unchanged
    assert FeaturesManager.determine_framework("x", "jax") == "jax"
    (tmp_path / "tf_model.h5").write_bytes(b"")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    assert FeaturesManager.determine_framework(str(tmp_path)) == "pt"  # pytorch_model.bin is looked for first
    shard = tmp_path / "sharded"
    shard.mkdir()
    (shard / "model.safetensors.index.json").write_text("{}")
    assert FeaturesManager.determine_framework(str(shard)) == "pt"

    real = importlib.util.find_spec

    def without(*missing):
        return lambda name, *a, **k: None if name in missing else real(name, *a, **k)

    monkeypatch.setattr(importlib.util, "find_spec", without("torch"))
    assert FeaturesManager.determine_framework("not-a-dir") == "tf"
    with pytest.raises(RuntimeError, match="no PyTorch package was found"):
        FeaturesManager._validate_framework_choice("pt")
    monkeypatch.setattr(importlib.util, "find_spec", without("torch", "tensorflow"))
    assert FeaturesManager.determine_framework("not-a-dir") == "numpy"
    with pytest.raises(RuntimeError, match="no TensorFlow package was found"):
        FeaturesManager._validate_framework_choice("tf")


def test_dummy_text_is_unk_repeated_without_spaces():
    tok = Tok()
    d = BertOnnxConfig({}).generate_dummy_inputs(tok, batch_size=3, seq_length=6)
    assert tok.last[0] == ["<unk>" * 4] * 3  # 6 - 2 special tokens, no spaces
    assert d["input_ids"].shape == (3, 6)
    mc = BertOnnxConfig({}, task="multiple-choice").generate_dummy_inputs(tok, num_choices=3)
    assert tok.last[1] is not None and len(tok.last[0]) == 2 * 3  # the texts, repeated per choice, as a pair
    assert mc["input_ids"].shape[:2] == (2, 3)


def test_image_and_audio_dummies():
    class Images:
        model_input_names = ["pixel_values"]

        def __call__(self, images=None, return_tensors=None):
            return {"pixel_values": np.stack(images)}

    class Audio:
        model_input_names = ["input_features"]

        def __call__(self, audio, sampling_rate=None, return_tensors=None):
            return {"input_features": np.stack(audio)}

    px = BertOnnxConfig({}).generate_dummy_inputs(Images(), image_width=12, image_height=10)["pixel_values"]
    assert px.shape == (2, 10, 12, 3) and px.dtype == np.uint8
    wav = BertOnnxConfig({}).generate_dummy_inputs(
        Audio(), batch_size=3, sampling_rate=100, time_duration=2.0, frequency=5
    )["input_features"]
    assert wav.shape == (3, 200)
    t = np.linspace(0, 2.0, 200)
    np.testing.assert_allclose(wav[1], 0.5 * np.sin(2 * np.pi * 5 * t))


def test_seq2seq_dummies_heads_and_flattening():
    t5 = {
        "model_type": "t5",
        "num_layers": 2,
        "num_heads": 2,
        "num_attention_heads": 2,
        "d_model": 8,
        "d_kv": 4,
        "use_cache": True,
    }
    c = T5OnnxConfig.with_past(dict(t5), task="seq2seq-lm")
    d = c.generate_dummy_inputs(Tok(), batch_size=2, seq_length=7)
    # with past the decoder asks for 1 token; minus 2 specials that is an empty text, i.e. the 2 specials
    assert d["input_ids"].shape == (2, 7) and d["decoder_input_ids"].shape == (2, 2)
    dec_len = 2
    assert len(d["past_key_values"]) == 2 and len(d["past_key_values"][0]) == 4
    dk, dv, ek, ev = d["past_key_values"][0]
    assert dk.shape == (2, 2, dec_len + 3, 4) and ek.shape == (2, 2, 7, 4)
    assert d["decoder_attention_mask"].shape == (2, dec_len + dec_len + 3)
    heads = OnnxSeq2SeqConfigWithPast({"encoder_attention_heads": 3, "decoder_attention_heads": 5})
    assert heads.num_attention_heads == (3, 5)
    with pytest.raises(AttributeError, match="override the num_attention_heads property"):
        OnnxSeq2SeqConfigWithPast({}).num_attention_heads
    ins = OrderedDict()
    c.fill_with_past_key_values_(ins, "inputs")
    assert ins["past_key_values.1.decoder.key"] == {0: "batch", 2: "past_decoder_sequence"}
    assert ins["past_key_values.1.encoder.value"] == {0: "batch", 2: "past_encoder_sequence"}
    assert c.outputs["present.0.decoder.value"] == {0: "batch", 2: "past_decoder_sequence + sequence"}
    flat = OnnxSeq2SeqConfigWithPast.flatten_output_collection_property("present", [("a", "b", "c", "d")])
    assert flat == {
        "present.0.decoder.key": "a",
        "present.0.decoder.value": "b",
        "present.0.encoder.key": "c",
        "present.0.encoder.value": "d",
    }
    assert OnnxSeq2SeqConfigWithPast.flatten_output_collection_property("x", [[1, 2]]) == {"x.0": 1, "x.1": 2}


def test_patching_spec_with_wrapper():
    class Holder:
        @staticmethod
        def op():
            return 1

    calls = []

    def wrapper(fn):
        def wrapped(*a):
            calls.append(fn)
            return fn(*a)

        return wrapped

    spec = PatchingSpec(Holder, "op", lambda: 2, op_wrapper=wrapper)
    c = BertOnnxConfig({}, patching_specs=[spec])
    c.patch_ops()
    assert Holder.op() == 2 and calls
    c.restore_ops()
    assert Holder.op() == 1
