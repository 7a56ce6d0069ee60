"""GPT-2 and Llama written once: logits equal transformers' PyTorch models (random small configs),
with left padding, and with static/growing caches (prefill then 3 cached steps == one forward)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
from conftest import require_backend
from tensorweave.frontends.models import attention
from tensorweave.ir import IRError, TensorSpec
from tensorweave.ir.trace import constant
from tensorweave.models import Model, check_params, from_pretrained, from_transformers

from conftest import IN_CI

if IN_CI:  # the test extra installs transformers; CI must not skip these tests
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

VOCAB, SEQ = 40, 7


def hf_model(kind):
    torch.manual_seed(0)
    if kind == "llama":
        cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                       rope_theta=500.0)
        m = transformers.LlamaForCausalLM(cfg)
    else:
        cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=16, n_layer=2, n_head=4)
        m = transformers.GPT2LMHeadModel(cfg)
    return m.eval()


MODELS = {k: hf_model(k) for k in ("gpt2", "llama")}
IDS = np.random.default_rng(0).integers(3, VOCAB, size=(2, SEQ)).astype(np.int64)
MASK = np.ones((2, SEQ), np.int64)
MASK[1, :3] = 0  # left padding on row 1


def hf_logits(kind, ids, mask):
    m = MODELS[kind]
    mask_t = torch.from_numpy(mask)
    pos = (mask_t.cumsum(-1) - 1).masked_fill(mask_t == 0, 1)
    with torch.no_grad():
        return m(input_ids=torch.from_numpy(ids), attention_mask=mask_t, position_ids=pos).logits.numpy()


def full_forward(model):
    def fn(ids, mask):
        params = {k: constant(v, name=k) for k, v in model.params.items()}
        pos = attention.position_ids_from_mask(mask, 0, ids.shape[1])
        logits, _ = model.forward(params, model.config, ids, mask, pos)
        return logits
    return tw.trace(fn, TensorSpec(("batch", "seq"), "int64", "input_ids"),
                    TensorSpec(("batch", "seq"), "int64", "attention_mask"))


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_logits_match_transformers(kind, backend):
    model = from_transformers(MODELS[kind])
    graph = full_forward(model)
    ours = np.asarray(tw.lower(graph, backend=backend)(IDS, MASK))
    ref = hf_logits(kind, IDS, MASK)
    valid = MASK.astype(bool)
    np.testing.assert_allclose(ours[valid], ref[valid], atol=1e-4, rtol=1e-4)
    no_pad = np.ones_like(MASK)
    np.testing.assert_allclose(np.asarray(tw.lower(graph, backend=backend)(IDS, no_pad)), hf_logits(kind, IDS, no_pad),
                               atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("layout", ["static", "growing"])
def test_prefill_then_cached_steps_equal_full_forward(kind, layout):
    model = from_transformers(MODELS[kind])
    cfg = model.config
    P = SEQ - 3
    kvh = cfg.num_key_value_heads
    hd = cfg.head_dim
    L = cfg.num_hidden_layers

    def run(ids, mask):
        params = {k: constant(v, name=k) for k, v in model.params.items()}
        import tensorweave.ir.namespace as xp
        b = ids.shape[0]
        if layout == "static":
            cache = attention.static_cache(xp, L, b, kvh, SEQ, hd, xp.float32)
            full_mask = mask
        else:
            cache = [(xp.zeros((b, kvh, 0, hd), dtype=xp.float32),) * 2 for _ in range(L)]
        outs = []
        for start, length in [(0, P), (P, 1), (P + 1, 1), (P + 2, 1)]:
            if layout == "growing":
                full_mask = mask[:, :start + length]
            pos = attention.position_ids_from_mask(mask, start, length)
            logits, cache = model.forward(params, cfg, ids[:, start:start + length], full_mask, pos, cache, start)
            outs.append(logits[:, -1])
        return xp.stack(outs, axis=1)

    graph = tw.trace(run, TensorSpec((2, SEQ), "int64"), TensorSpec((2, SEQ), "int64"))
    got = tw.lower(graph, "numpy")(IDS, MASK)
    ref = hf_logits(kind, IDS, MASK)[:, [P - 1, P, P + 1, P + 2]]
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


def test_checkpoint_directory_round_trip_and_errors(tmp_path):
    hf = MODELS["llama"]
    hf.save_pretrained(str(tmp_path / "ckpt"))
    model = from_pretrained(str(tmp_path / "ckpt"))
    ref = from_transformers(hf)
    assert set(model.params) == set(ref.params)
    for k in ref.params:
        np.testing.assert_array_equal(model.params[k], ref.params[k])
    with pytest.raises(IRError, match="missing \\['model.norm.weight'\\]"):
        check_params(model.config, {k: v for k, v in model.params.items() if k != "model.norm.weight"})
    bad = dict(model.params)
    bad["model.embed_tokens.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(IRError, match="mis-shaped"):
        check_params(model.config, bad)
    data = open(tmp_path / "ckpt" / "model.safetensors", "rb").read()
    open(tmp_path / "ckpt" / "model.safetensors", "wb").write(data[: len(data) // 2])
    with pytest.raises(IRError, match="truncated or corrupt"):
        from_pretrained(str(tmp_path / "ckpt"))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text('{"model_type": "mamba"}')
    with pytest.raises(ValueError, match="`model_type` 'mamba' is not supported"):
        from_pretrained(str(tmp_path / "x"))
