"""Tutorial: bring your own architecture (spec/models.md, "Bring your own architecture").

A decoder-only language model that is not one of tensorweave's families, written here, in a user's
file, against ``xp`` (the Array-API namespace of the inputs), gets everything the built-in models
get after one ``tw.models.register`` call: ``tw.generate`` (fused and step-wise, greedy and beam)
on every backend, ``tw.export`` with the ONNX signatures of ``FeaturesManager``, loading from a
safetensors checkpoint directory, and the parity helpers. Nothing in the package is edited.

The steps, in the order of this file:

1. **The config**: a dataclass whose fields are the ``config.json`` fields. Its ``model_type``
   default names the architecture; it must answer the fields generation and export read:
   ``vocab_size``, ``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``,
   ``head_dim`` (the key/value cache is ``[batch, num_key_value_heads, length, head_dim]`` per
   layer) and ``max_position_embeddings`` (fields or properties).
2. **The parameters**: ``parameter_shapes(config) -> {name: shape}``, every weight ``forward``
   reads, under the names a checkpoint uses. Loaders check names and shapes against it.
3. **The forward pass**: ``forward(params, config, input_ids, attention_mask, position_ids,
   cache=None, offset=0, output_hidden_states=False) -> (logits, cache[, hidden_states])``. Keys
   and values go through ``cache.update_cache`` (it handles "no cache", the growing cache of
   step-wise export and the static cache of fused generation), and attention through
   ``attention.attend`` (padding and causal masking at key position ``offset + i``).
4. **register** the three, plus the export features (default: all four decoder features with the
   ``LlamaOnnxConfig`` signature); ``unregister`` removes them again.

The toy model, "tiny-mqa": learned absolute positions, pre-RMSNorm blocks, *multi-query*
attention (one key/value head shared by every query head), a *squared-ReLU* MLP and an untied
output head. The test checks it against a plain-numpy implementation written separately below
(a full recomputation per generated token, no cache).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.models.attention import attend, default_scale, merge_heads, split_heads
from tensorweave.frontends.models.cache import update_cache
from tensorweave.ir import array_namespace
from tensorweave.models import Model, check_params


# ------------------------------------------------------------------ 1. the config
@dataclasses.dataclass
class TinyMQAConfig:
    vocab_size: int = 48
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 64
    max_position_embeddings: int = 64
    rms_norm_eps: float = 1e-6
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0
    model_type: str = "tiny-mqa"

    @property
    def num_key_value_heads(self) -> int:
        return 1  # multi-query attention: one key/value head

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# ------------------------------------------------------------------ 2. the parameters
def parameter_shapes(cfg: TinyMQAConfig) -> dict[str, tuple]:
    d, hd, f = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size
    shapes = {
        "model.embed.weight": (cfg.vocab_size, d),
        "model.pos.weight": (cfg.max_position_embeddings, d),
        "model.norm.weight": (d,),
        "lm_head.weight": (cfg.vocab_size, d),
    }
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes.update(
            {
                p + "attn_norm.weight": (d,),
                p + "q.weight": (d, d),  # x @ W layout: [in, out]
                p + "kv.weight": (d, 2 * hd),  # one key head and one value head
                p + "o.weight": (d, d),
                p + "mlp_norm.weight": (d,),
                p + "up.weight": (d, f),
                p + "down.weight": (f, d),
            }
        )
    return shapes


# ------------------------------------------------------------------ 3. the forward pass
def forward(
    params, cfg, input_ids, attention_mask, position_ids, cache=None, offset=0, output_hidden_states=False
):
    """``(logits [b, s, vocab], cache)``, plus the hidden states when asked (the embeddings, each
    block's output, the last one after the final norm). ``params`` arrive bound to the trace."""
    xp = array_namespace(input_ids)
    heads, hd, eps = cfg.num_attention_heads, cfg.head_dim, cfg.rms_norm_eps
    h = xp.take(params["model.embed.weight"], input_ids, axis=0)
    h = h + xp.take(params["model.pos.weight"], position_ids, axis=0)
    hidden = [h]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        x = xp.rms_norm(h, params[p + "attn_norm.weight"], eps=eps)
        q = split_heads(xp.matmul(x, params[p + "q.weight"]), heads, hd)
        kv = xp.matmul(x, params[p + "kv.weight"])
        k, v = split_heads(kv[..., :hd], 1, hd), split_heads(kv[..., hd:], 1, hd)
        keys, values, cache = update_cache(cache, i, k, v, offset)  # the cache keeps the single kv head
        keys, values = xp.repeat(keys, heads, axis=1), xp.repeat(values, heads, axis=1)
        a = merge_heads(attend(q, keys, values, attention_mask, offset, default_scale(hd)))
        h = h + xp.matmul(a, params[p + "o.weight"])
        x = xp.rms_norm(h, params[p + "mlp_norm.weight"], eps=eps)
        u = xp.matmul(x, params[p + "up.weight"])
        u = xp.maximum(u, xp.zeros_like(u))
        h = h + xp.matmul(u * u, params[p + "down.weight"])  # squared ReLU
        hidden.append(h)
    h = xp.rms_norm(h, params["model.norm.weight"], eps=eps)
    hidden[-1] = h
    logits = xp.matmul(h, xp.permute_dims(params["lm_head.weight"], (1, 0)))
    return (logits, cache, tuple(hidden)) if output_hidden_states else (logits, cache)


# ------------------------------------------------------------------ the plain-numpy reference
def reference_logits(w: dict, cfg: TinyMQAConfig, ids: np.ndarray) -> np.ndarray:
    """The same model in float64 numpy for unpadded ``ids [b, s]``: no cache, no tensorweave."""

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + cfg.rms_norm_eps) * g

    b, s = ids.shape
    heads, hd = cfg.num_attention_heads, cfg.head_dim
    h = w["model.embed.weight"][ids] + w["model.pos.weight"][np.arange(s)][None]
    causal = np.tril(np.ones((s, s), bool))
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        x = rms(h, w[p + "attn_norm.weight"])
        q = (x @ w[p + "q.weight"]).reshape(b, s, heads, hd).transpose(0, 2, 1, 3)
        kv = x @ w[p + "kv.weight"]
        k, v = kv[:, None, :, :hd], kv[:, None, :, hd:]  # [b, 1, s, hd], shared by every head
        scores = np.where(causal, q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd), -np.inf)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        a = (probs / probs.sum(-1, keepdims=True)) @ v
        h = h + a.transpose(0, 2, 1, 3).reshape(b, s, heads * hd) @ w[p + "o.weight"]
        u = np.maximum(rms(h, w[p + "mlp_norm.weight"]) @ w[p + "up.weight"], 0.0)
        h = h + (u * u) @ w[p + "down.weight"]
    return rms(h, w["model.norm.weight"]) @ w["lm_head.weight"].T


def reference_greedy(w: dict, cfg: TinyMQAConfig, ids: np.ndarray, new: int) -> np.ndarray:
    """Argmax per step over a full recomputation; a row that emitted EOS continues with padding and
    the loop ends when every row has (Hugging Face's rule)."""
    done = np.zeros(len(ids), bool)
    for _ in range(new):
        tok = reference_logits(w, cfg, ids)[:, -1].argmax(-1)
        tok = np.where(done, cfg.pad_token_id, tok)
        ids = np.concatenate([ids, tok[:, None]], axis=1)
        done |= tok == cfg.eos_token_id
        if done.all():
            break
    return ids


# ------------------------------------------------------------------ 4. register
CONFIG = TinyMQAConfig()
PROMPT = np.array([[1, 5, 9, 14, 3], [1, 7, 7, 30, 22]], np.int64)
NEW_TOKENS = 6


def random_weights(cfg: TinyMQAConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: (
            1.0 + 0.1 * rng.standard_normal(shape)
            if name.endswith("norm.weight")
            else 0.3 * rng.standard_normal(shape)
        ).astype(np.float32)
        for name, shape in parameter_shapes(cfg).items()
    }


@pytest.fixture(scope="module")
def model():
    tw.models.register(
        "tiny-mqa",
        forward=forward,
        parameter_shapes=parameter_shapes,
        config_class=TinyMQAConfig,
        base_prefix="model.",  # a base-model checkpoint may omit it
    )
    try:
        # check_params: every name and shape parameter_shapes lists, nothing else (one error)
        yield Model(CONFIG, check_params(CONFIG, random_weights(CONFIG)))
    finally:
        tw.models.unregister("tiny-mqa")


@pytest.fixture(scope="module")
def expected(model):
    w = {k: v.astype(np.float64) for k, v in model.params.items()}
    return reference_greedy(w, CONFIG, PROMPT, NEW_TOKENS)


# ------------------------------------------------------------------ what you get
def test_forward_matches_the_numpy_reference(model, backend):
    logits = np.asarray(model(PROMPT, backend=backend)["logits"])
    w = {k: v.astype(np.float64) for k, v in model.params.items()}
    np.testing.assert_allclose(logits, reference_logits(w, CONFIG, PROMPT), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "stepwise"])
def test_greedy_generate_equals_the_reference_loop(model, expected, backend, fused):
    out = tw.generate(model, PROMPT, backend=backend, max_new_tokens=NEW_TOKENS, trace=fused)
    np.testing.assert_array_equal(np.asarray(out), expected)


BEAM = dict(
    max_new_tokens=4, num_beams=3, num_return_sequences=2, return_dict_in_generate=True, output_scores=True
)


@pytest.fixture(scope="module")
def beam_reference(model):
    return tw.generate(model, PROMPT, backend="numpy", **BEAM)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "stepwise"])
def test_beam_search_agrees_everywhere(model, beam_reference, backend, fused):
    out = tw.generate(model, PROMPT, backend=backend, trace=fused, **BEAM)
    assert out.sequences.shape[0] == 2 * len(PROMPT)  # two hypotheses per prompt
    np.testing.assert_array_equal(np.asarray(out.sequences), beam_reference.sequences)
    np.testing.assert_allclose(np.asarray(out.sequences_scores), beam_reference.sequences_scores, atol=1e-4)


def test_parity_helper(model):
    from tensorweave.testing import assert_parity

    mask = np.array([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], np.int64)  # left padding on row 0
    assert_parity(model, (PROMPT, mask), atol=1e-5, rtol=1e-4)


def test_features_manager_lists_the_type(model):
    from tensorweave.onnx import FeaturesManager, LlamaOnnxConfig

    features = FeaturesManager.get_supported_features_for_model_type("tiny-mqa")
    assert set(features) == {"default", "default-with-past", "causal-lm", "causal-lm-with-past"}
    onnx_config = features["causal-lm-with-past"](CONFIG)
    assert isinstance(onnx_config, LlamaOnnxConfig) and onnx_config.use_past
    assert (onnx_config.num_key_value_heads, onnx_config.head_dim) == (1, 8)
    assert model.is_decoder and "tiny-mqa" in tw.models.registered()


def test_onnx_export_with_past_validates_and_loads_back(model, expected, tmp_path):
    pytest.importorskip("onnxruntime")
    # validate=True runs onnxruntime on the written file against the numpy reference
    res = tw.export(model, "text-generation-with-past", "onnx", tmp_path / "tiny", validate=True)
    assert res.input_names == ["input_ids", *model.past_names(), "attention_mask"]  # GPT-2's order
    assert res.output_names[:3] == ["logits", "present.0.key", "present.0.value"]
    assert json.loads((tmp_path / "tiny" / "config.json").read_text())["model_type"] == "tiny-mqa"
    assert (tmp_path / "tiny" / "genai_config.json").is_file()
    back = tw.models.load(str(tmp_path / "tiny"))  # config.json dispatches on the registered type
    out = tw.generate(back, PROMPT, backend="onnx", max_new_tokens=NEW_TOKENS)
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_safetensors_checkpoint_directory_loads(model, tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors_numpy.save_file(model.params, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(CONFIG)))
    loaded = tw.models.from_pretrained(str(tmp_path))
    assert isinstance(loaded.config, TinyMQAConfig) and loaded.is_decoder
    assert all(np.array_equal(loaded.params[k], v) for k, v in model.params.items())


# ------------------------------------------------------------------ registration rules
def test_registration_errors_are_one_line(model):
    good = dict(forward=forward, parameter_shapes=parameter_shapes, config_class=TinyMQAConfig)
    cases = [
        ("tiny-mqa", {}, ValueError, r"already registered; pass replace=True"),
        ("gpt2", {}, ValueError, r"built-in model type"),
        ("Tiny_MQA", {}, ValueError, r"lower-case name"),
        ("tiny-mqa", {"replace": True, "features": ["seq2seq-lm"]}, ValueError, r"choose from default"),
        (
            "tiny-mqa",
            {"replace": True, "forward": lambda params, cfg: None},
            TypeError,
            r"forward must accept",
        ),
        ("tiny-mqa", {"replace": True, "config_class": dict}, TypeError, r"must be a dataclass"),
        ("other", {}, ValueError, r"must default model_type to 'other'"),
    ]
    for name, change, exc, match in cases:
        with pytest.raises(exc, match=match) as info:
            tw.models.register(name, **{**good, **change})
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="built-in model type"):
        tw.models.unregister("llama")


def test_unregister_restores_the_tables(model):
    from tensorweave.frontends import models as frontends
    from tensorweave.onnx import FeaturesManager

    def tables():
        return (
            sorted(frontends.ARCHITECTURES),
            sorted(frontends.CONFIGS),
            sorted(frontends.PARAMETER_SHAPES),
            sorted(FeaturesManager._SUPPORTED_MODEL_TYPE),
        )

    before = tables()
    Other = dataclasses.make_dataclass(
        "Other", [("model_type", str, dataclasses.field(default="tiny-other"))], bases=(TinyMQAConfig,)
    )
    tw.models.register(
        "tiny-other",
        forward=forward,
        parameter_shapes=parameter_shapes,
        config_class=Other,
        features=["text-generation"],
    )
    assert list(FeaturesManager.get_supported_features_for_model_type("tiny-other")) == ["causal-lm"]
    tw.models.unregister("tiny-other")
    assert tables() == before
    with pytest.raises(KeyError, match="tiny-other"):
        FeaturesManager.get_supported_features_for_model_type("tiny-other")
