"""API facts of the ONNX-config layer (Hugging Face 4.37), plus the IR signature each config yields."""

from __future__ import annotations

import warnings

import pytest

from tensorweave.onnx import (
    EXTERNAL_DATA_FORMAT_SIZE_LIMIT,
    BertOnnxConfig,
    FeaturesManager,
    GPT2OnnxConfig,
    LlamaOnnxConfig,
    OnnxConfig,
    OnnxConfigWithPast,
    PatchingSpec,
    T5OnnxConfig,
    compute_effective_axis_dimension,
    supported_features_mapping,
)

GPT2 = {
    "model_type": "gpt2",
    "n_layer": 2,
    "n_head": 4,
    "n_embd": 16,
    "use_cache": True,
    "pad_token_id": None,
}
T5 = {
    "model_type": "t5",
    "num_layers": 2,
    "num_decoder_layers": 3,
    "num_heads": 2,
    "num_attention_heads": 2,
    "d_model": 8,
    "d_kv": 4,
    "use_cache": True,
}


class FakeTokenizer:
    unk_token = "<unk>"
    model_input_names = ["input_ids", "attention_mask"]

    def num_special_tokens_to_add(self, pair=False):
        return 2 if not pair else 3

    def __call__(self, text, pair=None):
        n = len(text[0].split("<unk>")) - 1 + (2 if pair is None else 3 + len(pair[0].split("<unk>")) - 1)
        return {"input_ids": [[1] * n for _ in text], "attention_mask": [[1] * n for _ in text]}


@pytest.mark.parametrize(
    "args,expect", [((-1, 2, 0), 2), ((0, 2, 0), 2), ((0, 8, 2), 6), ((0, 8, 3), 5), ((5, 8, 1), 4)]
)
def test_effective_axis_dimension(args, expect):
    assert compute_effective_axis_dimension(*args) == expect


def test_external_data_threshold():
    assert EXTERNAL_DATA_FORMAT_SIZE_LIMIT == 2 * 1024**3
    assert not OnnxConfig.use_external_data_format(0)
    assert not OnnxConfig.use_external_data_format(1)
    assert not OnnxConfig.use_external_data_format((EXTERNAL_DATA_FORMAT_SIZE_LIMIT - 1) // 4)
    assert OnnxConfig.use_external_data_format(EXTERNAL_DATA_FORMAT_SIZE_LIMIT)
    assert OnnxConfig.use_external_data_format((EXTERNAL_DATA_FORMAT_SIZE_LIMIT + 1) // 4)


def test_flatten_naming():
    assert OnnxConfig.flatten_output_collection_property("past_key", [[0], [1], [2]]) == {
        "past_key.0": 0,
        "past_key.1": 1,
        "past_key.2": 2,
    }
    assert OnnxConfigWithPast.flatten_output_collection_property("present", [("k0", "v0"), ("k1", "v1")]) == {
        "present.0.key": "k0",
        "present.0.value": "v0",
        "present.1.key": "k1",
        "present.1.value": "v1",
    }


def test_task_table_defaults_and_values_override():
    with pytest.raises(ValueError, match="speech is not a supported task, supported tasks"):
        GPT2OnnxConfig(dict(GPT2), task="speech")
    c = BertOnnxConfig({"model_type": "bert", "use_cache": True}, task="sequence-classification")
    assert dict(c.outputs) == {"logits": {0: "batch"}}
    assert (c.default_batch_size, c.default_sequence_length, c.default_num_choices) == (2, 8, 4)
    assert c.default_onnx_opset == 11 and c.atol_for_validation == 1e-5
    assert c.values_override == {"use_cache": False}
    assert BertOnnxConfig({"model_type": "bert"}).values_override is None
    assert GPT2OnnxConfig.with_past(dict(GPT2), "causal-lm").values_override == {"use_cache": True}
    assert GPT2OnnxConfig(dict(GPT2)).default_onnx_opset == 13
    assert dict(BertOnnxConfig({}, task="multiple-choice").inputs)["input_ids"] == {
        0: "batch",
        1: "choice",
        2: "sequence",
    }


def test_gpt2_with_past_axes_and_ir_signature():
    c = GPT2OnnxConfig.with_past(dict(GPT2), task="causal-lm")
    assert list(c.inputs) == [
        "input_ids",
        "past_key_values.0.key",
        "past_key_values.0.value",
        "past_key_values.1.key",
        "past_key_values.1.value",
        "attention_mask",
    ]
    assert c.inputs["attention_mask"] == {0: "batch", 1: "past_sequence + sequence"}
    assert list(c.outputs) == [
        "logits",
        "present.0.key",
        "present.0.value",
        "present.1.key",
        "present.1.value",
    ]
    assert c.outputs["present.1.value"] == {0: "batch", 2: "past_sequence + sequence"}
    specs = {s.name: s for s in c.input_specs()}
    assert str(specs["attention_mask"].shape) == "[batch,past_sequence+sequence]"
    assert str(specs["past_key_values.0.key"].shape) == "[batch,4,past_sequence,4]"
    assert str(specs["input_ids"].dtype) == "int64"
    assert GPT2OnnxConfig(dict(GPT2))._config["pad_token_id"] == 0
    d = {}
    c.fill_with_past_key_values_(d, "inputs", inverted_values_shape=True)
    assert d["past_key_values.0.value"] == {0: "batch", 1: "past_sequence + sequence"}
    with pytest.raises(ValueError, match='direction must either be "inputs" or "outputs"'):
        c.fill_with_past_key_values_({}, "sideways")


def test_missing_layer_count_is_an_attribute_error():
    with pytest.raises(AttributeError, match="override the num_layers property"):
        OnnxConfigWithPast({}, task="default").num_layers
    with pytest.raises(AttributeError, match="override the num_attention_heads property"):
        OnnxConfigWithPast({}, task="default").num_attention_heads


def test_dummy_inputs_sizes_and_past():
    c = GPT2OnnxConfig.with_past(dict(GPT2), task="causal-lm")
    d = c.generate_dummy_inputs(FakeTokenizer())
    assert list(d) == ["input_ids", "past_key_values", "attention_mask"]
    assert d["input_ids"].shape == (2, 8)  # 6 unk tokens + 2 specials
    assert d["attention_mask"].shape == (2, 8 + 10)
    assert len(d["past_key_values"]) == 2 and d["past_key_values"][0][0].shape == (2, 4, 10, 4)
    d = c.generate_dummy_inputs(FakeTokenizer(), batch_size=3, seq_length=9)
    assert d["input_ids"].shape == (3, 9)
    with pytest.raises(ValueError, match="both a tokenizer and a preprocessor"):
        OnnxConfig.generate_dummy_inputs(BertOnnxConfig({}), FakeTokenizer(), tokenizer=FakeTokenizer())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        BertOnnxConfig({}).generate_dummy_inputs(None, tokenizer=FakeTokenizer())
    assert any(issubclass(w.category, FutureWarning) for w in caught)
    with pytest.raises(ValueError, match="Unable to generate dummy inputs"):
        BertOnnxConfig({}).generate_dummy_inputs(object())
    mc = BertOnnxConfig({}, task="multiple-choice").generate_dummy_inputs(FakeTokenizer())
    assert mc["input_ids"].shape[:2] == (2, 4)


def test_seq2seq_outputs_and_unequal_depths():
    c = T5OnnxConfig.with_past(dict(T5), task="seq2seq-lm")
    out = c.outputs
    assert out["logits"] == {0: "batch", 1: "decoder_sequence"}
    assert c.num_layers == (2, 3)
    # every decoder layer carries both its self-attention and its cross-attention cache
    assert [k for k in out if k.startswith("present.2.")] == [
        "present.2.decoder.key",
        "present.2.decoder.value",
        "present.2.encoder.key",
        "present.2.encoder.value",
    ]
    assert c.inputs["decoder_input_ids"] == {0: "batch"}
    assert c.inputs["attention_mask"] == {0: "batch", 1: "past_encoder_sequence + sequence"}
    specs = {s.name: s for s in c.input_specs()}
    assert str(specs["decoder_input_ids"].shape) == "[batch,1]"
    with pytest.raises(AttributeError, match="encoder and decoder layers"):
        T5OnnxConfig({}, task="seq2seq-lm").num_layers


def test_patching_spec_patch_and_restore():
    class Holder:
        def op(self):
            return "orig"

    spec = PatchingSpec(Holder, "op", lambda self: "custom")
    assert spec.orig_op is Holder.op
    c = BertOnnxConfig({}, patching_specs=[spec])
    c.patch_ops()
    assert Holder().op() == "custom"
    c.restore_ops()
    assert Holder().op() == "orig"


def test_features_manager(tmp_path):
    assert "causal-lm-with-past" in FeaturesManager.get_supported_features_for_model_type("GPT2")
    with pytest.raises(KeyError, match=r"mamba \(my-model\) is not supported yet"):
        FeaturesManager.get_supported_features_for_model_type("mamba", model_name="my-model")
    assert FeaturesManager.feature_to_task("seq2seq-lm-with-past") == "seq2seq-lm"
    with pytest.raises(ValueError, match="A OnnxConfig class must be provided"):
        supported_features_mapping("default")
    cfg = FeaturesManager.get_config("gpt2", "causal-lm-with-past")(dict(GPT2))
    assert isinstance(cfg, GPT2OnnxConfig) and cfg.use_past and cfg.task == "causal-lm"
    cls = FeaturesManager.get_model_class_for_feature("causal-lm-with-past")
    assert isinstance(cls, type) and cls.__name__ == "AutoModelForCausalLM"  # a loader class, not a name
    assert FeaturesManager.get_model_class_for_feature("text-generation") is cls  # Optimum's name
    with pytest.raises(KeyError, match=r"mamba is not supported yet.*If you want to support mamba please"):
        FeaturesManager.get_supported_features_for_model_type("mamba")  # the type, not "{model_type}"
    with pytest.raises(KeyError, match="Unknown task"):
        FeaturesManager.get_model_class_for_feature("image-generation")
    with pytest.raises(ValueError, match="pt or tf"):
        FeaturesManager.get_model_class_for_feature("default", framework="mx")

    class M:
        config = type("C", (), {"model_type": "gpt2"})()

    model_type, ctor = FeaturesManager.check_supported_model_or_raise(M(), "causal-lm")
    assert model_type == "gpt2" and isinstance(ctor(dict(GPT2)), GPT2OnnxConfig)
    with pytest.raises(ValueError, match="gpt2 doesn't support feature seq2seq-lm"):
        FeaturesManager.check_supported_model_or_raise(M(), "seq2seq-lm")
    assert LlamaOnnxConfig({"num_hidden_layers": 3, "num_attention_heads": 2}).num_layers == 3


def test_determine_framework_precedence(tmp_path):
    assert FeaturesManager.determine_framework(str(tmp_path), "tf") == "tf"  # explicit wins
    with pytest.raises(FileNotFoundError, match="Cannot determine framework"):
        FeaturesManager.determine_framework(str(tmp_path))
    (tmp_path / "tf_model.h5").write_bytes(b"")
    assert FeaturesManager.determine_framework(str(tmp_path)) == "tf"
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert (
        FeaturesManager.determine_framework(str(tmp_path)) == "pt"
    )  # safetensors counts as a PyTorch checkpoint
    import importlib.util

    expected = (
        "pt"
        if importlib.util.find_spec("torch")
        else ("tf" if importlib.util.find_spec("tensorflow") else "numpy")
    )
    assert FeaturesManager.determine_framework("not-a-dir") == expected  # installed frameworks, PyTorch first


def test_features_manager_is_written_once_below_export():
    """The table lives in frontends (no framework, no backend); ``tensorweave.onnx`` re-exports it
    and ``tensorweave.export`` imports it from frontends, so the two public modules form no cycle."""
    import ast
    import pathlib
    import subprocess
    import sys

    import tensorweave.export
    import tensorweave.frontends.onnx.features as features
    import tensorweave.onnx

    assert tensorweave.onnx.FeaturesManager is features.FeaturesManager
    assert tensorweave.onnx.supported_features_mapping is features.supported_features_mapping
    export_module = sys.modules["tensorweave.export"]  # tensorweave.export is the function
    tree = ast.parse(pathlib.Path(export_module.__file__).read_text())
    imported = [
        ("." * n.level) + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    ] + [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [
        m
        for m in imported
        if m in (".onnx", "tensorweave.onnx") or m.startswith((".onnx.", "tensorweave.onnx."))
    ]
    for first in ("tensorweave.export", "tensorweave.onnx"):
        code = (
            f"import sys, {first}, tensorweave.onnx, tensorweave.export\n"
            "print(tensorweave.onnx.export is sys.modules['tensorweave.export'].export)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "True"
