"""The rotary decoder family (issue #15, first slice): Mistral (sliding window), Qwen2 (q/k/v
biases, per-layer sliding window), Qwen3 (q/k norm, explicit head_dim), Phi-3 (fused projections),
Gemma (scaled embeddings, ``1 + w`` norms, GeGLU) and Llama's rope scaling types (linear, llama3,
yarn, dynamic) against transformers' PyTorch models (tiny random configs, seeded, eager attention).

Every type: logits from a live model and from a ``save_pretrained`` directory on numpy; on every
backend one forward plus 5 greedy tokens equal to transformers' ``generate``; one ONNX export with
past validated; GGUF ``qwen2`` / ``qwen3`` files; config errors. Tolerance: spec/models.md
("Parity with transformers"), atol = rtol = 1e-4 (observed ~1e-7)."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import attention, bind_params, config_from_dict
from tensorweave.frontends.models.config import Qwen3Config
from tensorweave.ir import TensorSpec
from tensorweave.models import from_gguf, from_pretrained, from_transformers

from conftest import IN_CI

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

ATOL = RTOL = 1e-4
VOCAB, SEQ = 96, 10
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,  # grouped-query attention everywhere
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    initializer_range=0.1,  # large enough that rope scaling and windows move the logits by >> 1e-4
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
    attn_implementation="eager",
)
# name -> (transformers class prefix, config overrides)
CASES = {
    "mistral": ("Mistral", dict(sliding_window=4)),
    "qwen2": ("Qwen2", dict(use_sliding_window=True, sliding_window=4, max_window_layers=1)),
    "qwen3": ("Qwen3", dict(head_dim=16, tie_word_embeddings=True)),
    "phi3": ("Phi3", dict(sliding_window=5)),
    "gemma": ("Gemma", dict(head_dim=16, hidden_act="gelu_pytorch_tanh")),
    "llama-linear": ("Llama", dict(rope_scaling={"rope_type": "linear", "factor": 3.0})),
    "llama-llama3": (
        "Llama",
        dict(
            rope_theta=500.0,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8,
            },
        ),
    ),
    "llama-yarn": (
        "Llama",
        dict(rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}),
    ),
    # beyond max_position_embeddings (8) the base grows with the sequence length
    "llama-dynamic": (
        "Llama",
        dict(max_position_embeddings=8, rope_scaling={"rope_type": "dynamic", "factor": 2.0}),
    ),
}
TYPES = ["mistral", "qwen2", "qwen3", "phi3", "gemma"]


def hf_model(name: str):
    prefix, overrides = CASES[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, prefix + "Config")(**{**COMMON, **overrides})
    model = getattr(transformers, prefix + "ForCausalLM")(cfg).eval()
    with torch.no_grad():  # transformers initialises biases to 0 and norms to 1: perturb them
        for n, p in model.named_parameters():
            if n.endswith("bias") or "norm" in n:
                p.add_(torch.randn_like(p) * 0.2)
    return model


HF = {name: hf_model(name) for name in CASES}
OURS = {name: from_transformers(m) for name, m in HF.items()}
IDS = np.random.default_rng(0).integers(3, VOCAB, size=(2, SEQ)).astype(np.int64)
PADDED = np.ones((2, SEQ), np.int64)
PADDED[1, :3] = 0  # left padding on row 1
VALID = PADDED.astype(bool)


def hf_logits(name: str, ids: np.ndarray = IDS, mask: np.ndarray = PADDED) -> np.ndarray:
    m = torch.from_numpy(mask)
    pos = (m.cumsum(-1) - 1).masked_fill(m == 0, 1)  # generate()'s position ids for left padding
    with torch.no_grad():
        return HF[name](input_ids=torch.from_numpy(ids), attention_mask=m, position_ids=pos).logits.numpy()


def traced_logits(model, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The forward traced directly (no ``max_position_embeddings`` check: dynamic rope beyond it)."""

    def run(i, m):
        params = bind_params(model.params)
        return model.forward(params, model.config, i, m, attention.position_ids_from_mask(m))[0]

    spec = TensorSpec(ids.shape, "int64")
    return np.asarray(tw.lower(tw.trace(run, spec, spec), backend="numpy")(ids, mask))


def logits_of(name: str, model) -> np.ndarray:
    if name == "llama-dynamic":
        return traced_logits(model, IDS, PADDED)
    return np.asarray(model(IDS, PADDED, backend="numpy")["logits"])


def assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=ATOL, rtol=RTOL)


# ------------------------------------------------------------------ numpy: live model and checkpoint
@pytest.mark.parametrize("name", list(CASES))
def test_logits_match_transformers_live_and_from_a_checkpoint(name, tmp_path):
    ref = hf_logits(name)
    live = logits_of(name, OURS[name])
    assert_close(live[VALID], ref[VALID])
    HF[name].save_pretrained(str(tmp_path))
    loaded = tw.models.load(str(tmp_path))
    live_cfg = dataclasses.replace(OURS[name].config, architectures=loaded.config.architectures)
    assert type(loaded.config) is type(live_cfg) and loaded.config == live_cfg
    assert loaded.is_decoder and sorted(loaded.params) == sorted(OURS[name].params)
    assert_close(logits_of(name, loaded)[VALID], ref[VALID])


@pytest.mark.parametrize("name", ["mistral", "qwen2", "llama-llama3", "llama-yarn", "llama-dynamic"])
def test_the_switch_under_test_moves_the_logits(name):
    """The comparisons above would catch a missing window or rope scaling: turning it off moves
    the logits far beyond the tolerance."""
    model = OURS[name]
    off = {"sliding_window": None} if name in ("mistral", "qwen2") else {"rope_scaling": None}
    plain = tw.models.Model(dataclasses.replace(model.config, **off), model.params)
    diff = np.abs(traced_logits(plain, IDS, PADDED) - traced_logits(model, IDS, PADDED))[VALID].max()
    assert diff > 100 * ATOL


def test_qwen2_window_is_per_layer():
    cfg = OURS["qwen2"].config
    assert [cfg.layer_window(i) for i in range(2)] == [None, 4]  # layers >= max_window_layers slide
    assert [OURS["mistral"].config.layer_window(i) for i in range(2)] == [4, 4]
    assert OURS["qwen3"].config.layer_window(1) is None  # use_sliding_window is false by default


# ------------------------------------------------------------------ every backend
GREEDY_PROMPT = 6


def hf_greedy(name: str) -> np.ndarray:
    with torch.no_grad():
        return (
            HF[name]
            .generate(
                torch.from_numpy(IDS[:, :GREEDY_PROMPT]),
                attention_mask=torch.from_numpy(PADDED[:, :GREEDY_PROMPT]),
                max_new_tokens=5,
                do_sample=False,
                pad_token_id=0,
            )
            .numpy()
        )


@pytest.mark.parametrize("name", TYPES)
def test_every_backend_forward_and_greedy_tokens(name, backend):
    """One forward (left padding) and 5 greedy tokens (fused static-cache loop; the prompt of 6
    plus 5 steps crosses the window of 4) equal transformers' logits and ``generate``."""
    model = OURS[name]
    out = model(IDS, PADDED, backend=backend)["logits"]
    assert_close(np.asarray(out)[VALID], hf_logits(name)[VALID])
    ours = tw.generate(
        model,
        IDS[:, :GREEDY_PROMPT],
        PADDED[:, :GREEDY_PROMPT],
        backend=backend,
        max_new_tokens=5,
        pad_token_id=0,
    )
    np.testing.assert_array_equal(np.asarray(ours), hf_greedy(name))


def test_with_past_steps_cross_the_window():
    """The growing-cache program, one token at a time past the window, equals one full forward."""
    model = OURS["mistral"]
    prog = model.with_past_program("numpy")
    past, got = model.empty_past(2), []
    for start, length in [(0, 3)] + [(t, 1) for t in range(3, SEQ)]:
        outs = prog(IDS[:, start : start + length], PADDED[:, : start + length], *past)
        got.append(np.asarray(outs[0])[:, -1])
        past = [np.asarray(o) for o in outs[1:]]
    valid = VALID[:, 2:]  # padding positions are not compared
    assert_close(np.stack(got, axis=1)[valid], hf_logits("mistral")[:, 2:][valid])


# ------------------------------------------------------------------ ONNX export with past
def test_onnx_export_with_past_validates(tmp_path):
    pytest.importorskip("onnxruntime")
    from tensorweave.onnx import FeaturesManager

    E = sys.modules["tensorweave.export"]
    model = OURS["qwen2"]  # biases, GQA and a sliding-window layer
    for t in TYPES:
        assert set(FeaturesManager.get_supported_features_for_model_type(t)) == {
            "default",
            "default-with-past",
            "causal-lm",
            "causal-lm-with-past",
        }
    res = tw.export(model, "causal-lm-with-past", "onnx", tmp_path / "out")
    cfg = res.onnx_config
    assert cfg.num_key_value_heads == 2 and cfg.head_dim == 8
    E.validate_model_outputs(cfg, model, res.path, res.output_names, cfg.atol_for_validation)


# ------------------------------------------------------------------ GGUF (qwen2 / qwen3)
GGUF_TOKENS = (
    ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + list("abcdefghij0123456789") + ["Ġ", "ab", "Ġab", "12"]
)
_GGUF_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_GGUF_TOP = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def write_gguf(path, arch: str):
    """A tiny random Qwen2 / Qwen3 as an F32 GGUF (llama.cpp keeps their half-split Q/K rows)."""
    import gguf

    torch.manual_seed(1)
    prefix = {"qwen2": "Qwen2", "qwen3": "Qwen3"}[arch]
    extra = {"head_dim": 16} if arch == "qwen3" else {}
    cfg = getattr(transformers, prefix + "Config")(**{**COMMON, "vocab_size": len(GGUF_TOKENS), **extra})
    hf = getattr(transformers, prefix + "ForCausalLM")(cfg).eval()
    with torch.no_grad():
        for n, p in hf.named_parameters():
            if n.endswith("bias") or "norm" in n:
                p.add_(torch.randn_like(p) * 0.2)
    w = gguf.GGUFWriter(str(path), arch)
    for key, value in (
        ("block_count", 2),
        ("embedding_length", 32),
        ("feed_forward_length", 48),
        ("attention.head_count", 4),
        ("attention.head_count_kv", 2),
        ("context_length", 64),
    ):
        w.add_uint32(f"{arch}.{key}", value)
    if arch == "qwen3":
        w.add_uint32(f"{arch}.attention.key_length", 16)
    w.add_float32(f"{arch}.rope.freq_base", 10000.0)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(GGUF_TOKENS)
    w.add_token_types([3, 3, 3] + [1] * (len(GGUF_TOKENS) - 3))
    w.add_token_merges(["a b", "Ġ ab", "1 2"])
    w.add_eos_token_id(2)
    for name, t in hf.state_dict().items():
        if name.startswith("model.layers."):
            _, _, i, rest = name.split(".", 3)
            gname = f"blk.{i}.{_GGUF_LAYER[rest]}"
        else:
            gname = _GGUF_TOP[name]
        w.add_tensor(gname, t.numpy().copy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return hf


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_gguf_qwen_files_load(arch, tmp_path):
    pytest.importorskip("gguf")
    hf = write_gguf(tmp_path / "tiny.gguf", arch)
    model = from_gguf(str(tmp_path / "tiny.gguf"))
    assert model.model_type == arch and model.config.architectures == [type(hf).__name__]
    state = {k: v.numpy() for k, v in hf.state_dict().items()}
    assert set(model.params) == set(state)
    for k, v in state.items():
        np.testing.assert_array_equal(model.params[k], v, err_msg=k)
    ids = np.array([[1, 5, 6, 7, 8, 9]], np.int64)
    with torch.no_grad():
        ref = hf(torch.from_numpy(ids)).logits.numpy()
    assert_close(model(ids)["logits"], ref)
    v = {t: i for i, t in enumerate(GGUF_TOKENS)}
    # Qwen2's split regex: letters with one leading space, single digits (the "1 2" merge never applies)
    assert model.tokenizer.encode("ab ab12") == [v["ab"], v["Ġab"], v["1"], v["2"]]


# ------------------------------------------------------------------ configs
@pytest.mark.parametrize(
    "d, match",
    [
        ({"model_type": "mistral", "sliding_window": 0}, "`sliding_window` must be a positive integer"),
        ({"model_type": "qwen2", "num_hidden_layers": 2, "layer_types": ["full_attention"]}, "`layer_types`"),
        ({"model_type": "qwen2", "use_sliding_window": "yes"}, "`use_sliding_window` must be a JSON boolean"),
        ({"model_type": "gemma", "use_bidirectional_attention": True}, "`use_bidirectional_attention`"),
        ({"model_type": "gemma", "hidden_act": "silu"}, "`hidden_act` 'silu' is not supported for gemma"),
        (
            {"model_type": "phi3", "partial_rotary_factor": 0.1, "hidden_size": 32, "num_attention_heads": 4},
            "`partial_rotary_factor`",
        ),
        (
            {"model_type": "phi3", "rope_scaling": {"rope_type": "longrope", "factor": 2.0}},
            "is not supported yet",
        ),
        (
            {"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
            "`original_max_position_embeddings`",
        ),
        (
            {
                "model_type": "llama",
                "rope_parameters": {"rope_type": "linear", "factor": -1, "rope_theta": 1e4},
            },
            "`rope_parameters` needs `factor` to be a number > 0",
        ),
        (
            {
                "model_type": "qwen3",
                "rope_scaling": {
                    "rope_type": "llama3",
                    "factor": 8.0,
                    "low_freq_factor": 4.0,
                    "high_freq_factor": 1.0,
                    "original_max_position_embeddings": 8,
                },
            },
            "`high_freq_factor` \\(1.0\\) > `low_freq_factor` \\(4.0\\)",
        ),
        (
            {
                "model_type": "llama",
                "rope_scaling": {
                    "rope_type": "yarn",
                    "factor": 2.0,
                    "original_max_position_embeddings": 8,
                    "truncate": 1,
                },
            },
            "`truncate`",
        ),
        (
            {"model_type": "mixtral"},
            "`model_type` 'mixtral' is not supported; supported: .*'gemma'.*'mistral'.*'phi3'.*'qwen2', 'qwen3'",
        ),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match) as info:
        config_from_dict(d)
    assert "\n" not in str(info.value)


def test_config_defaults_and_the_old_rope_scaling_field():
    # Hugging Face's defaults: qwen3's head_dim is 128 unless given; qwen2 has q/k/v biases only
    assert Qwen3Config(hidden_size=32, num_attention_heads=4).head_dim == 128
    q2 = config_from_dict({"model_type": "qwen2", "hidden_size": 32, "num_attention_heads": 4})
    assert (q2.qkv_bias, q2.o_bias, q2.layer_window(31)) == (True, False, None)
    # rope_scaling (transformers 4.x) and rope_parameters (v5) give the same config
    rs = {"rope_type": "linear", "factor": 3.0}
    old = config_from_dict({"model_type": "llama", "rope_theta": 500.0, "rope_scaling": rs})
    new = config_from_dict({"model_type": "llama", "rope_parameters": {**rs, "rope_theta": 500.0}})
    assert old == new and old.rope_scaling == rs


def test_unknown_checkpoint_model_type_lists_the_family(tmp_path):
    HF["mistral"].save_pretrained(str(tmp_path))
    text = (tmp_path / "config.json").read_text().replace('"mistral"', '"mixtral"')
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ModelLoadError, match="'mixtral' is not supported; supported: .*'qwen3'"):
        from_pretrained(str(tmp_path))
