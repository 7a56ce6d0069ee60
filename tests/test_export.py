"""tensorweave.export: every feature of GPT-2, Llama and BERT (random tiny configs) to every target,
validated at batch 3 / sequence 9 with Hugging Face's checks; artefacts reloaded in a fresh
process; an ORT decode loop over an exported with-past file; tampering; atomic writes; the CLI.

Tolerance: validation uses each config's ``atol_for_validation`` (1e-5, Hugging Face's, for
GPT-2/BERT/T5; 2e-4 x num_layers for Llama, see spec/onnx-config.md) with numpy's rtol 1e-5; the
tiny models' outputs are O(1) float32 sums of a few dozen terms, so backend rounding differences
are ~1e-7 (measured), far below either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from functools import partial

import numpy as np
import pytest

import tensorweave as tw
import tensorweave.export  # noqa: F401 - the module (tw.export is the function)
from tensorweave.frontends.models import BertConfig, GPT2Config, LlamaConfig, T5Config
from tensorweave.models import Model
from tensorweave.models.checkpoint import expected_shapes
from tensorweave.onnx import FeaturesManager, GPT2OnnxConfig

E = sys.modules["tensorweave.export"]

from conftest import require_backend

VOCAB = 61


def random_model(cfg, head=None, seed=0, scale=0.2):
    rng = np.random.default_rng(seed)
    params = {
        k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in expected_shapes(cfg, head).items()
    }
    return Model(cfg, params, head=head)


def gpt2_config(vocab=VOCAB, layers=2):
    return GPT2Config(
        vocab_size=vocab, n_positions=64, n_embd=16, n_layer=layers, n_head=4, bos_token_id=1, eos_token_id=2
    )


def llama_config():
    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )


def bert_config(num_labels=3):
    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=24,
        max_position_embeddings=64,
        num_labels=num_labels,
    )


def t5_config():
    # unequal depths: one encoder block, two decoder blocks
    return T5Config(
        vocab_size=VOCAB,
        d_model=16,
        d_kv=4,
        d_ff=24,
        num_layers=1,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
    )


_MODELS: dict = {}


def model_for(arch: str, feature: str, one_layer: bool = False) -> Model:
    """One cached random model per (architecture, head); ``one_layer`` gives GPT-2 a single block
    (torch.export time grows with the graph; two-layer past naming is covered on the other targets)."""
    task = FeaturesManager.feature_to_task(feature)
    head = task if arch == "bert" else None
    one_layer = one_layer and arch == "gpt2"
    key = (arch, head, one_layer)
    if key not in _MODELS:
        cfg = {
            "gpt2": partial(gpt2_config, layers=1 if one_layer else 2),
            "llama": llama_config,
            "bert": bert_config,
            "t5": t5_config,
        }[arch]()
        if head == "question-answering":
            cfg = bert_config(num_labels=2)  # start and end logits
        _MODELS[key] = random_model(cfg, head)
    return _MODELS[key]


IMPLEMENTED = {  # features FeaturesManager lists that tensorweave's models implement
    "gpt2": ["default", "default-with-past", "causal-lm", "causal-lm-with-past"],
    "llama": ["default", "default-with-past", "causal-lm", "causal-lm-with-past"],
    "bert": [
        "default",
        "masked-lm",
        "causal-lm",
        "sequence-classification",
        "multiple-choice",
        "token-classification",
        "question-answering",
    ],
}
IMPLEMENTED["t5"] = ["default", "default-with-past", "seq2seq-lm", "seq2seq-lm-with-past"]
# bert causal-lm is listed by 4.37 but needs an LM head on a decoder BERT, which tensorweave lacks
IMPLEMENTED["bert"].remove("causal-lm")
CASES = [(a, f) for a, fs in IMPLEMENTED.items() for f in fs]
TARGETS = list(E.TARGETS)


def _mark(target):
    # one group per framework: a worker imports one framework and the three share the load
    return [pytest.mark.xdist_group(f"export-{target}")] if target in ("torch", "tensorflow", "jax") else []


@pytest.mark.parametrize("target", [pytest.param(t, marks=_mark(t)) for t in TARGETS])
@pytest.mark.parametrize("arch,feature", CASES)
def test_every_feature_exports_and_validates(arch, feature, target, tmp_path):
    require_backend(target)
    model = model_for(arch, feature, one_layer=target == "torch")
    res = tw.export(model, feature, target, tmp_path / "out")
    cfg = res.onnx_config
    assert res.input_names == list(cfg.inputs) and res.output_names == list(cfg.outputs)
    E.validate_model_outputs(
        cfg, model, res.path, res.output_names, cfg.atol_for_validation, allow_pickle=True
    )
    # nothing but the artefact (and its signature side file) is left: no temporary names
    if target == "tensorflow":
        assert res.path == str(tmp_path / "out") and os.path.isfile(tmp_path / "out" / "saved_model.pb")
        assert os.listdir(tmp_path) == ["out"]
    else:
        # the folder is one transaction: the artefact, its side file, the manifest and (onnx)
        # Optimum's files; no temporary names
        side = [E.DEFAULT_NAMES[target] + ".json"] if target in ("torch", "jax") else []
        if target == "onnx":
            side.append("config.json")
            if arch != "bert":
                side.append("generation_config.json")
            if arch in ("gpt2", "llama") and feature == "causal-lm-with-past":
                side.append("genai_config.json")
        want = [E.DEFAULT_NAMES[target], "tensorweave.json"] + side
        assert sorted(os.listdir(tmp_path / "out")) == sorted(want)
        assert os.listdir(tmp_path) == ["out"]
    if target == "onnx":
        import onnx

        onnx.checker.check_model(res.path, full_check=True)
        m = onnx.load(res.path)
        dims = {
            i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input
        }
        assert dims["input_ids"][0] == "batch"
        if "with-past" in feature and arch != "t5":
            assert dims["past_key_values.0.key"][2] == "past_sequence"
            assert "past_sequence" in dims["attention_mask"][1] and "sequence" in dims["attention_mask"][1]
        if "with-past" in feature and arch == "t5":
            assert dims["past_key_values.1.decoder.key"][2] == "past_decoder_sequence"
            assert dims["past_key_values.1.encoder.key"][2] == "encoder_sequence"


def test_gpt2_features_without_a_head_are_refused_before_any_work(tmp_path):
    model = model_for("gpt2", "causal-lm")
    assert "sequence-classification" in FeaturesManager.get_supported_features_for_model_type("gpt2")
    with pytest.raises(ValueError, match="needs a sequence-classification head"):
        tw.export(model, "sequence-classification", "onnx", tmp_path)
    with pytest.raises(ValueError, match="gpt2 doesn't support feature seq2seq-lm"):
        tw.export(model, "seq2seq-lm", "onnx", tmp_path)
    with pytest.raises(ValueError, match="has the 'masked-lm' head, the feature needs 'question-answering'"):
        tw.export(model_for("bert", "masked-lm"), "question-answering", "onnx", tmp_path)
    with pytest.raises(ValueError, match="unknown export target"):
        tw.export(model, "causal-lm", "numpy", tmp_path)
    with pytest.raises(
        ValueError, match="unknown export target 'mx'; choose one of onnx, torch, tensorflow, jax"
    ):
        tw.export(model, "causal-lm", "mx", tmp_path)
    assert E.artefact_path(tmp_path, "tf") == str(tmp_path)  # aliases as for backends
    with pytest.raises(
        ValueError, match="Opset 12 is not sufficient to export gpt2. At least 13 is required."
    ):
        tw.export(model, "causal-lm", "onnx", tmp_path, opset=12)
    with pytest.raises(ValueError, match="opset applies to the onnx target only"):
        tw.export(model, "causal-lm", "jax", tmp_path, opset=21)

    class Clash(GPT2OnnxConfig):
        @property
        def outputs(self):
            return {"attention_mask": {0: "batch", 1: "sequence"}}

    with pytest.raises(ValueError, match=r"names \['attention_mask'\] both as inputs and as outputs"):
        tw.export(
            model, "causal-lm", "onnx", tmp_path, onnx_config=Clash(model.config.to_dict(), task="causal-lm")
        )
    with pytest.raises(ValueError, match="onnx_config is for task 'default', the feature 'causal-lm' needs"):
        tw.export(model, "causal-lm", "onnx", tmp_path, onnx_config=GPT2OnnxConfig(model.config.to_dict()))
    assert os.listdir(tmp_path) == []
    import onnx

    # between the config's default and 20: accepted, written at 20 (spec/onnx-config.md, Opset)
    res = tw.export(model, "causal-lm", "onnx", tmp_path / "op19", opset=19)
    assert onnx.load(res.path).opset_import[0].version == E.MIN_ONNX_OPSET


# ---------------------------------------------------------------------------- one artefact per target


@pytest.fixture(scope="module")
def with_past_artefacts(tmp_path_factory):
    """gpt2 causal-lm-with-past exported to every installed target (module-scoped, reused)."""
    out = tmp_path_factory.mktemp("with_past")
    model = model_for("gpt2", "causal-lm-with-past", one_layer=True)
    arts = {}
    for target in TARGETS:
        require_backend(target)
        arts[target] = tw.export(model, "causal-lm-with-past", target, out / target)
    return model, arts


FRESH_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    spec = json.load(open(sys.argv[1]))
    feeds = dict(np.load(spec["inputs"]))
    results = {}
    for target, path in spec["artefacts"].items():
        if target == "onnx":
            import onnxruntime as ort
            s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            names = [o.name for o in s.get_outputs()]
            outs = dict(zip(names, s.run(names, feeds)))
        elif target == "torch":
            import torch
            side = json.load(open(path + ".json"))
            m = torch.export.load(path).module()
            got = m(*[torch.from_numpy(feeds[i["name"]]) for i in side["inputs"]])
            outs = {o["name"]: t.numpy() for o, t in zip(side["outputs"], got)}
        elif target == "tensorflow":
            import tensorflow as tf
            sig = tf.saved_model.load(path).signatures["serving_default"]
            outs = {k: v.numpy() for k, v in sig(**{k: tf.constant(v) for k, v in feeds.items()}).items()}
        else:
            import jax, jax.numpy as jnp
            jax.config.update("jax_enable_x64", True)  # int64 token ids
            side = json.load(open(path + ".json"))
            exp = jax.export.deserialize(bytearray(open(path, "rb").read()))
            got = exp.call(*[jnp.asarray(feeds[i["name"]]) for i in side["inputs"]])
            outs = {o["name"]: np.asarray(t) for o, t in zip(side["outputs"], got)}
        for k, v in outs.items():
            results[f"{target}/{k}"] = v
    np.savez(spec["out"], **results)
""")


@pytest.mark.xdist_group("export")
def test_artefacts_reload_in_a_fresh_process(with_past_artefacts, tmp_path):
    model, arts = with_past_artefacts
    cfg = arts["onnx"].onnx_config
    feeds = E.validation_inputs(cfg, model, batch_size=2, seq_length=5, past_length=3, seed=7)
    np.savez(tmp_path / "in.npz", **feeds)
    spec = {
        "inputs": str(tmp_path / "in.npz"),
        "out": str(tmp_path / "out.npz"),
        "artefacts": {t: r.path for t, r in arts.items()},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "run.py").write_text(FRESH_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(tmp_path / "spec.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = dict(np.load(tmp_path / "out.npz"))
    ref = E.reference_outputs(cfg, model, feeds)
    for target in arts:
        for name in cfg.outputs:
            out = got[f"{target}/{name}"]
            assert out.shape == ref[name].shape, (target, name)
            np.testing.assert_allclose(
                out, ref[name], rtol=1e-5, atol=cfg.atol_for_validation, err_msg=target
            )
    assert ref["present.0.key"].shape == (2, 4, 3 + 5, 4)
    assert "present.0.value" in cfg.outputs


def test_onnx_decode_loop_matches_generate(tmp_path):
    """A hand-written ORT greedy loop over the exported with-past file (present.* fed back as
    past_key_values.*; the first step has an empty past) gives tw.generate's tokens, left padding included."""
    import onnxruntime as ort

    model = model_for("gpt2", "causal-lm-with-past")
    res = tw.export(model, "causal-lm-with-past", "onnx", tmp_path)
    sess = ort.InferenceSession(res.path, providers=["CPUExecutionProvider"])
    cfg = model.config
    rng = np.random.default_rng(3)
    ids = rng.integers(3, VOCAB, (2, 6)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, :2] = 0  # left padding
    ids[1, :2] = 0
    new = 8
    expected = np.asarray(
        tw.generate(
            model,
            ids,
            attention_mask=mask,
            max_new_tokens=new,
            do_sample=False,
            backend="numpy",
            pad_token_id=0,
            eos_token_id=None,
        )
    )
    past = {
        f"past_key_values.{i}.{kv}": np.zeros((2, cfg.n_head, 0, cfg.n_embd // cfg.n_head), np.float32)
        for i in range(cfg.n_layer)
        for kv in ("key", "value")
    }
    step_ids, seq, full_mask = ids, ids, mask
    names = [o.name for o in sess.get_outputs()]
    for _ in range(new):
        outs = dict(zip(names, sess.run(names, {"input_ids": step_ids, "attention_mask": full_mask, **past})))
        nxt = outs["logits"][:, -1].argmax(-1).astype(np.int64)[:, None]
        seq = np.concatenate([seq, nxt], axis=1)
        past = {k: outs[k.replace("past_key_values", "present")] for k in past}
        full_mask = np.concatenate([full_mask, np.ones((2, 1), np.int64)], axis=1)
        step_ids = nxt
    np.testing.assert_array_equal(seq, expected)
    assert past["past_key_values.0.key"].shape[2] == 6 + new - 1


# ---------------------------------------------------------------------------- validation failures


def test_validation_raises_hf_errors_on_tampered_artefacts(tmp_path):
    import onnx
    from onnx import numpy_helper

    model = model_for("gpt2", "causal-lm")
    res = tw.export(model, "causal-lm", "onnx", tmp_path / "good")
    cfg = res.onnx_config
    E.validate_model_outputs(cfg, model, res.path, res.output_names)

    # values: shift the final LayerNorm bias by 1e-3 -> fails at atol 1e-5, passes at atol 1e-1
    m = onnx.load(res.path)
    init = next(i for i in m.graph.initializer if i.name == "transformer.ln_f.bias")
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(1e-3), init.name))
    bad = str(tmp_path / "values.onnx")
    onnx.save(m, bad)
    with pytest.raises(
        ValueError,
        match="Outputs values doesn't match between reference model and ONNX exported "
        "model: Got max absolute difference of",
    ):
        E.validate_model_outputs(cfg, model, bad, res.output_names, 1e-5)
    E.validate_model_outputs(cfg, model, bad, res.output_names, atol=0.1)

    # names: an output the reference does not have
    m = onnx.load(res.path)
    m.graph.output[0].name = "scores"
    m.graph.node[-1].output[0] = "scores"
    renamed = str(tmp_path / "names.onnx")
    onnx.save(m, renamed)
    with pytest.raises(
        ValueError,
        match=r"Outputs doesn't match between reference model and ONNX exported model: "
        r"\{'scores'\}",
    ):
        E.validate_model_outputs(cfg, model, renamed, ["scores"])
    with pytest.raises(ValueError, match=r"Outputs doesn't match .*\{'logits'\}"):
        E.validate_model_outputs(cfg, model, renamed, ["logits"])  # the artefact lacks it

    # shapes: an artefact of a model with another vocabulary
    other = random_model(gpt2_config(vocab=VOCAB + 4))
    other_res = tw.export(other, "causal-lm", "onnx", tmp_path / "other")
    with pytest.raises(
        ValueError,
        match=r"Outputs shape doesn't match between reference model and ONNX exported "
        r"model: Got \(3, 9, 61\) \(reference\) and \(3, 9, 65\) \(ONNX\)",
    ):
        E.validate_model_outputs(cfg, model, other_res.path, other_res.output_names)
    with pytest.raises(ValueError, match="atol must be a number >= 0"):
        E.validate_model_outputs(cfg, model, res.path, res.output_names, atol=-1.0)


def test_failing_export_leaves_no_file(tmp_path, monkeypatch):
    """The disk fills up after the bytes are written but before they are synced and renamed: the
    partial temporary file is removed and nothing appears at the destination."""
    model = model_for("gpt2", "causal-lm")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        tw.export(model, "causal-lm", "onnx", tmp_path / "out")
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []


def test_external_data_file_and_path_based_check(tmp_path):
    import onnx

    model = model_for("gpt2", "causal-lm")
    res = tw.export(model, "causal-lm", "onnx", tmp_path / "model.onnx", external_data=True)
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "model.onnx.data"]
    onnx.checker.check_model(res.path, full_check=True)
    E.validate_model_outputs(res.onnx_config, model, res.path, res.output_names)
    assert not res.onnx_config.use_external_data_format(model.num_parameters())  # the 2 GiB rule


def test_minilm_real_weights_default_feature_to_onnx(tmp_path):
    model = tw.models.load("minilm")
    res = tw.export(model, "default", "onnx", tmp_path)
    assert res.output_names == ["last_hidden_state", "pooler_output"]
    E.validate_model_outputs(res.onnx_config, model, res.path, res.output_names)


# ---------------------------------------------------------------------------- CLI


def test_cli_export_end_to_end(tmp_path, capsys):
    from tensorweave.cli import main
    from tensorweave.ir.safetensors_io import save_file

    model = model_for("gpt2", "causal-lm-with-past")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps(model.config.to_dict()))
    save_file(model.params, str(ckpt / "model.safetensors"))
    out = tmp_path / "out"
    rc = main(
        [
            "export",
            "--model",
            str(ckpt),
            "--feature",
            "causal-lm-with-past",
            "--target",
            "onnx",
            "--atol",
            "1e-4",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (out / "model.onnx").is_file()
    for stage in ("loading", "tracing", "lowering", "writing", "validating", "All good"):
        assert stage in err, (stage, err)
    assert "present.1.value" in err
    rc = main(
        [
            "export",
            "--model",
            str(ckpt),
            "--feature",
            "causal-lm",
            "--target",
            "onnx",
            "--no-validate",
            "--opset",
            "21",
            str(tmp_path / "plain.onnx"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0 and (tmp_path / "plain.onnx").is_file() and "validating" not in err
    rc = main(["export", "--model", str(ckpt), "--feature", "masked-lm", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") <= 8 and "gpt2 doesn't support feature masked-lm" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.xdist_group("export")
def test_one_symbolic_signature_drives_every_target(with_past_artefacts):
    """The config's dynamic axes are dynamic in every artefact (and its fixed axes fixed):
    ONNX dim_params, SavedModel None dims, torch.export symbolic sizes, jax.export symbolic dims."""
    model, arts = with_past_artefacts
    cfg = arts["onnx"].onnx_config
    dynamic = {s.name: [not isinstance(d, int) for d in s.shape] for s in cfg.input_specs()}
    assert dynamic["past_key_values.0.key"] == [True, False, True, False]
    assert dynamic["attention_mask"] == [True, True]

    import onnx

    m = onnx.load(arts["onnx"].path)
    onnx_dyn = {i.name: [bool(d.dim_param) for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    assert onnx_dyn == dynamic
    out_dims = {
        o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in m.graph.output
    }
    assert out_dims["logits"] == ["batch", "sequence", VOCAB]

    import tensorflow as tf

    sig = tf.saved_model.load(arts["tensorflow"].path).signatures["serving_default"]
    # TF sanitises the Python argument names (past_key_values_0_key); the TensorSpec keeps the config's name
    tf_dyn = {
        v.name: [d is None for d in v.shape.as_list()] for v in sig.structured_input_signature[1].values()
    }
    assert set(sig.structured_outputs) == set(cfg.outputs)
    assert tf_dyn == dynamic

    import torch

    ep = torch.export.load(arts["torch"].path)
    vals = [
        n.meta["val"]
        for n in ep.graph.nodes
        if n.op == "placeholder"
        and n.name in {s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"}
    ]
    torch_dyn = [[not isinstance(d, int) for d in v.shape] for v in vals]
    assert torch_dyn == list(dynamic.values())

    from jax import export as jexport

    exp = jexport.deserialize(bytearray(open(arts["jax"].path, "rb").read()))
    jax_dyn = [[not isinstance(d, int) for d in a.shape] for a in exp.in_avals]
    assert jax_dyn == list(dynamic.values())
    assert "past_sequence" in str(exp.in_avals[1].shape[2]) and str(exp.in_avals[0].shape[0]) == "batch"


def test_t5_with_past_steps_equal_the_full_decoder(tmp_path):
    """The seq2seq-lm-with-past ONNX file, stepped one decoder token at a time from an empty
    decoder past (cross-attention keys/values from the encoder), gives the no-past model's logits."""
    import onnxruntime as ort

    from tensorweave.frontends.models import t5
    from tensorweave.frontends.models.weights import bind_params

    model = model_for("t5", "seq2seq-lm-with-past")
    cfg = model.config
    res = tw.export(model, "seq2seq-lm-with-past", "onnx", tmp_path)
    assert res.input_names[:4] == [
        "input_ids",
        "attention_mask",
        "decoder_input_ids",
        "decoder_attention_mask",
    ]
    assert "present.1.encoder.value" in res.output_names  # decoder depth (2), not encoder depth (1)
    rng = np.random.default_rng(5)
    ids = rng.integers(2, VOCAB, (2, 7)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[0, 5:] = 0  # right padding in the encoder
    dec = rng.integers(2, VOCAB, (2, 5)).astype(np.int64)
    full = model(ids, mask, decoder_input_ids=dec, backend="numpy")["logits"]

    def cross_fn(input_ids, attention_mask):
        p = bind_params(model.params)
        return [
            x
            for kv in t5.cross_attention_cache(p, cfg, t5.encode(p, cfg, input_ids, attention_mask))
            for x in kv
        ]

    cross = tw.lower(
        tw.trace(cross_fn, (("batch", "sequence"), "int64"), (("batch", "sequence"), "int64")),
        backend="numpy",
    )(ids, mask)
    feeds = {}
    for i in range(cfg.num_decoder_layers):
        feeds[f"past_key_values.{i}.decoder.key"] = np.zeros((2, cfg.num_heads, 0, cfg.d_kv), np.float32)
        feeds[f"past_key_values.{i}.decoder.value"] = np.zeros((2, cfg.num_heads, 0, cfg.d_kv), np.float32)
        feeds[f"past_key_values.{i}.encoder.key"] = cross[2 * i]
        feeds[f"past_key_values.{i}.encoder.value"] = cross[2 * i + 1]
    sess = ort.InferenceSession(res.path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    for t in range(dec.shape[1]):
        outs = dict(
            zip(
                names,
                sess.run(
                    names,
                    {
                        "input_ids": ids,
                        "attention_mask": mask,
                        "decoder_input_ids": dec[:, t : t + 1],
                        "decoder_attention_mask": np.ones((2, t + 1), np.int64),
                        **feeds,
                    },
                ),
            )
        )
        np.testing.assert_allclose(outs["logits"][:, 0], full[:, t], rtol=1e-5, atol=1e-5)
        feeds = {k: outs[k.replace("past_key_values", "present")] for k in feeds}
    assert feeds["past_key_values.1.decoder.key"].shape == (2, cfg.num_heads, 5, cfg.d_kv)


@pytest.mark.xdist_group("export")
def test_with_past_artefacts_accept_an_empty_past(with_past_artefacts):
    """The first decode step (past_sequence = 0) runs on every target's artefact, loaded from its file."""
    model, arts = with_past_artefacts
    cfg = arts["onnx"].onnx_config
    feeds = E.validation_inputs(cfg, model, batch_size=2, seq_length=5, past_length=0)
    ref = E.reference_outputs(cfg, model, feeds)
    for target, res in arts.items():
        got = E.run_artefact(res.path, feeds, allow_pickle=True)
        for name in cfg.outputs:
            assert got[name].shape == ref[name].shape, (target, name)
            np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-5, err_msg=target)
