"""Loading is validated: every bad config.json field, weight dtype, shard path, GGUF metadata value
and runaway chat template is one ``ModelLoadError`` / ``ValueError`` line naming the file and the
field, key or tensor (spec/models.md, "Errors"); ``Model``'s program cache under concurrent first
calls; ``Model.generation_config`` and ``Model.generate``.

Checkpoints here are tiny random Llamas written with tensorweave's own safetensors writer and the
``gguf`` package: no transformers needed. ``tests/test_fuzz_readers.py`` reuses the writers.
"""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.generation import GenerationConfig
from tensorweave.frontends.models import PARAMETER_SHAPES, config_from_dict
from tensorweave.ir import safetensors_io
from tensorweave.models import Model, Tokenizer, from_gguf, from_pretrained

LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 24,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 32,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
GGUF_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + list("abcdefghij0123456789") + ["Ġ", "ab"]
_LAYER_GGUF = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_TOP_GGUF = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}


def tiny_params(config: dict = LLAMA, seed: int = 0) -> dict[str, np.ndarray]:
    cfg = config_from_dict(config)
    rng = np.random.default_rng(seed)
    return {
        k: rng.standard_normal(shape).astype(np.float32) * 0.1
        for k, shape in PARAMETER_SHAPES[cfg.model_type](cfg).items()
    }


def write_checkpoint(d, config: dict = LLAMA, params: dict | None = None, extra: dict | None = None) -> str:
    """A checkpoint directory: config.json + model.safetensors (+ extra files: name -> text/bytes)."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f)
    safetensors_io.save_file(
        tiny_params(config) if params is None else params, os.path.join(d, "model.safetensors")
    )
    for name, data in (extra or {}).items():
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(os.path.join(d, name), mode) as f:
            f.write(data)
    return str(d)


def write_gguf(path, overrides: dict | None = None, int_tensor: str | None = None) -> str:
    """The tiny Llama as an F32 GGUF file. ``overrides``: metadata key -> (writer method, value)
    replacing the normal entry (to write a value of the wrong type); ``int_tensor``: a GGUF tensor
    name stored as int32."""
    import gguf

    arch = "llama"
    meta = {
        f"{arch}.block_count": ("add_uint32", 2),
        f"{arch}.embedding_length": ("add_uint32", 8),
        f"{arch}.feed_forward_length": ("add_uint32", 16),
        f"{arch}.attention.head_count": ("add_uint32", 2),
        f"{arch}.attention.head_count_kv": ("add_uint32", 1),
        f"{arch}.context_length": ("add_uint32", 32),
        f"{arch}.vocab_size": ("add_uint32", len(GGUF_TOKENS)),
        f"{arch}.rope.freq_base": ("add_float32", 500.0),
        f"{arch}.attention.layer_norm_rms_epsilon": ("add_float32", 1e-5),
        "tokenizer.ggml.model": ("add_string", "gpt2"),
        "tokenizer.ggml.pre": ("add_string", "smollm"),
        "tokenizer.ggml.tokens": ("add_array", GGUF_TOKENS),
        "tokenizer.ggml.token_type": ("add_array", [3, 3, 3] + [1] * (len(GGUF_TOKENS) - 3)),
        "tokenizer.ggml.merges": ("add_array", ["a b"]),
        "tokenizer.ggml.bos_token_id": ("add_uint32", 1),
        "tokenizer.ggml.eos_token_id": ("add_uint32", 2),
        "tokenizer.ggml.padding_token_id": ("add_uint32", 2),
        "tokenizer.chat_template": (
            "add_string",
            "{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}",
        ),
    }
    meta.update(overrides or {})
    w = gguf.GGUFWriter(str(path), arch)
    for key, (method, value) in meta.items():
        getattr(w, method)(key, value)
    cfg = dict(LLAMA, vocab_size=len(GGUF_TOKENS))
    for name, arr in tiny_params(cfg).items():
        if name.startswith("model.layers."):
            _, _, i, rest = name.split(".", 3)
            gname = f"blk.{i}.{_LAYER_GGUF[rest]}"
        else:
            gname = _TOP_GGUF[name]
        w.add_tensor(gname, arr.astype(np.int32) if gname == int_tensor else arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    return msg


# ------------------------------------------------------------------ config.json fields
@pytest.mark.parametrize(
    "change, match",
    [
        ({"tie_word_embeddings": "false"}, r"`tie_word_embeddings` must be a JSON boolean .* got 'false'"),
        ({"attention_bias": 0}, r"`attention_bias` must be a JSON boolean"),
        (
            {"eos_token_id": "37"},
            r"`eos_token_id` must be an integer token id or a non-empty list .* got '37'",
        ),
        ({"eos_token_id": [2, "3"]}, r"`eos_token_id` must be an integer token id"),
        ({"eos_token_id": []}, r"`eos_token_id` must be an integer token id"),
        ({"pad_token_id": 2.5}, r"`pad_token_id` must be an integer token id, got 2.5"),
        ({"bos_token_id": True}, r"`bos_token_id` must be an integer token id, got True"),
        ({"vocab_size": 0}, r"`vocab_size` must be a positive integer, got 0"),
        ({"vocab_size": "24"}, r"`vocab_size` must be an integer, got '24'"),
        ({"num_hidden_layers": 2.0}, r"`num_hidden_layers` must be an integer, got 2.0"),
        ({"hidden_size": -8}, r"`hidden_size` must be a positive integer"),
        ({"rms_norm_eps": "1e-5"}, r"`rms_norm_eps` must be a number, got '1e-5'"),
        ({"rope_scaling": "linear"}, r"`rope_scaling` must be an object .* got 'linear'"),
        ({"rope_scaling": {"type": "bogus"}}, r"`rope_scaling` has an unknown rope type 'bogus'"),
        ({"rope_scaling": {"factor": 2.0}}, r"`rope_scaling` needs a string `rope_type`"),
        (
            {"rope_scaling": {"rope_type": "mrope", "factor": 2.0}},
            r"`rope_scaling` .* is not supported yet",
        ),
        ({"rope_parameters": "default"}, r"`rope_parameters` must be an object"),
        ({"hidden_act": ["silu"]}, r"`hidden_act` must be a string"),
        ({"architectures": "LlamaForCausalLM"}, r"`architectures` must be a list"),
        ({"model_type": ["llama"]}, r"`model_type` \['llama'\] is not supported"),
    ],
)
def test_bad_config_fields_name_the_file_and_field(tmp_path, change, match):
    d = write_checkpoint(tmp_path / "ckpt", params=tiny_params())
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({**LLAMA, **change}, f)
    with pytest.raises(ModelLoadError, match=match) as info:
        from_pretrained(d)
    assert _one_line(info).startswith(os.path.join(d, "config.json"))


def test_tie_word_embeddings_false_reads_the_checkpoints_lm_head(tmp_path):
    cfg = dict(LLAMA, tie_word_embeddings=False)
    params = tiny_params(cfg)
    model = from_pretrained(write_checkpoint(tmp_path / "ckpt", cfg, params))
    assert model.config.tie_word_embeddings is False
    np.testing.assert_array_equal(model.params["lm_head.weight"], params["lm_head.weight"])


def test_other_config_models_check_their_bool_and_token_fields():
    for d, match in [
        ({"model_type": "gpt2", "scale_attn_weights": "yes"}, "`scale_attn_weights`"),
        ({"model_type": "bert", "is_decoder": "false"}, "`is_decoder` must be a JSON boolean"),
        ({"model_type": "bert", "id2label": {"x": "neg"}}, "`id2label` must map label ids"),
        ({"model_type": "t5", "decoder_start_token_id": "0"}, "`decoder_start_token_id` must be an integer"),
        ({"model_type": "t5", "scale_decoder_outputs": 1}, "`scale_decoder_outputs` must be a JSON boolean"),
    ]:
        with pytest.raises(ValueError, match=match):
            config_from_dict(d)
    # v5's rope_parameters (default rope) is still read for rope_theta
    cfg = config_from_dict({**LLAMA, "rope_parameters": {"rope_type": "default", "rope_theta": 500.0}})
    assert cfg.rope_theta == 500.0 and cfg.eos_token_id == 2
    assert config_from_dict({**LLAMA, "eos_token_id": [2, 3]}).eos_token_id == [2, 3]


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe\x00\x01binary\x80\x81", b'{"model_type": "llama", "x": "\xe9"}', bytes(range(256))],
)
def test_a_binary_config_json_names_the_file(tmp_path, data):
    d = write_checkpoint(tmp_path / "ckpt", extra={"config.json": data})
    with pytest.raises(ModelLoadError) as info:
        from_pretrained(d)
    msg = _one_line(info)
    assert msg.startswith(os.path.join(d, "config.json")) and "utf-8" not in msg.split(":")[0]
    assert "not a UTF-8 text file" in msg or "not valid JSON" in msg


# ------------------------------------------------------------------ weights
def test_weight_dtypes_are_checked_and_name_the_tensor(tmp_path):
    params = tiny_params()
    params["model.layers.1.mlp.up_proj.weight"] = params["model.layers.1.mlp.up_proj.weight"].astype(np.int32)
    params["model.norm.weight"] = np.ones(8, np.bool_)
    d = write_checkpoint(tmp_path / "ckpt", params=params)
    with pytest.raises(ModelLoadError) as info:
        from_pretrained(d)
    msg = _one_line(info)
    assert "not floating point (2)" in msg
    assert "model.layers.1.mlp.up_proj.weight: int32" in msg and "model.norm.weight: bool" in msg
    # float16 / float64 weights are fine (widened / narrowed to float32)
    params = tiny_params()
    params["model.norm.weight"] = params["model.norm.weight"].astype(np.float16)
    params["model.embed_tokens.weight"] = params["model.embed_tokens.weight"].astype(np.float64)
    model = from_pretrained(write_checkpoint(tmp_path / "ok", params=params))
    assert {v.dtype for v in model.params.values()} == {np.dtype(np.float32)}


def test_a_corrupt_layer_count_is_refused_before_listing_names(tmp_path):
    d = write_checkpoint(tmp_path / "ckpt", params=tiny_params())
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({**LLAMA, "num_hidden_layers": 10**9}, f)
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match=r"asks for 1000000000 layers but the checkpoint holds only"):
        from_pretrained(d)
    assert time.perf_counter() - start < 5


def _sharded(tmp_path, weight_map_of):
    """A two-shard checkpoint whose index maps tensors with ``weight_map_of(name, shard)``."""
    d = tmp_path / "sharded"
    d.mkdir()
    params = tiny_params()
    names = sorted(params)
    half = {"model-1.safetensors": names[: len(names) // 2], "model-2.safetensors": names[len(names) // 2 :]}
    for shard, keys in half.items():
        safetensors_io.save_file({k: params[k] for k in keys}, str(d / shard))
    (d / "config.json").write_text(json.dumps(LLAMA))
    wm = {k: weight_map_of(k, shard) for shard, keys in half.items() for k in keys}
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    return str(d), params


def test_sharded_checkpoints_load_and_shard_paths_stay_inside(tmp_path):
    d, params = _sharded(tmp_path, lambda k, shard: shard)
    model = from_pretrained(d)
    assert all(np.array_equal(model.params[k], params[k]) for k in params)
    outside = tmp_path / "outside.safetensors"
    safetensors_io.save_file({"x": np.zeros(2, np.float32)}, str(outside))
    for bad in ("../outside.safetensors", str(outside), "sub/../../outside.safetensors"):
        index = os.path.join(d, "model.safetensors.index.json")
        with open(index) as f:
            doc = json.load(f)
        doc["weight_map"]["model.norm.weight"] = bad
        with open(index, "w") as f:
            json.dump(doc, f)
        with pytest.raises(ModelLoadError, match="outside the checkpoint directory") as info:
            from_pretrained(d)
        assert bad in _one_line(info) and index in str(info.value)
    # a link inside the directory that leads out of it is refused too
    os.symlink(str(outside), os.path.join(d, "link.safetensors"))
    doc["weight_map"]["model.norm.weight"] = "link.safetensors"
    with open(index, "w") as f:
        json.dump(doc, f)
    with pytest.raises(ModelLoadError, match="outside the checkpoint directory"):
        from_pretrained(d)


@pytest.mark.parametrize(
    "index, match",
    [
        ('{"weight_map": {"a": 3}}', "needs a `weight_map` object"),
        ('{"weight_map": ["model-1.safetensors"]}', "needs a `weight_map` object"),
        ("[1, 2]", "needs a `weight_map` object"),
        (b"\x80\x81\x82", "not JSON text"),
        ("{", "not JSON text"),
    ],
)
def test_bad_sharded_indexes_give_one_clear_error(tmp_path, index, match):
    d, _ = _sharded(tmp_path, lambda k, shard: shard)
    path = os.path.join(d, "model.safetensors.index.json")
    with open(path, "wb" if isinstance(index, bytes) else "w") as f:
        f.write(index)
    with pytest.raises(ModelLoadError, match=match) as info:
        from_pretrained(d)
    assert _one_line(info).startswith(path)


# ------------------------------------------------------------------ GGUF metadata
def test_tiny_gguf_loads_with_its_generation_defaults(tmp_path):
    pytest.importorskip("gguf")
    model = from_gguf(write_gguf(tmp_path / "ok.gguf"))
    assert model.config.num_hidden_layers == 2 and model.config.rope_theta == 500.0
    gen = model.generation_config
    assert (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id) == (1, 2, 2)
    assert model.tokenizer.bos_token_id == 1 and model.tokenizer.eos_token_id == 2


@pytest.mark.parametrize(
    "overrides, match",
    [
        (
            {"llama.block_count": ("add_string", "2")},
            r"'llama.block_count' must be an integer \(.*\), but it is STRING",
        ),
        (
            {"llama.block_count": ("add_uint32", 7)},
            r"'llama.block_count' says 7 blocks but the file has tensors for 2",
        ),
        ({"llama.embedding_length": ("add_float32", 8.0)}, r"'llama.embedding_length' must be an integer"),
        (
            {"llama.attention.head_count": ("add_int32", -2)},
            r"'llama.attention.head_count' must be a positive integer",
        ),
        ({"llama.rope.freq_base": ("add_string", "500")}, r"'llama.rope.freq_base' must be a number"),
        ({"general.architecture": ("add_uint32", 3)}, r"'general.architecture' must be a string"),
        (
            {"tokenizer.ggml.tokens": ("add_array", list(range(24)))},
            r"'tokenizer.ggml.tokens' must be an array of strings",
        ),
        (
            {"tokenizer.ggml.merges": ("add_string", "a b")},
            r"'tokenizer.ggml.merges' must be an array of strings",
        ),
        (
            {"tokenizer.ggml.bos_token_id": ("add_string", "1")},
            r"'tokenizer.ggml.bos_token_id' must be an integer",
        ),
        (
            {"tokenizer.ggml.eos_token_id": ("add_uint32", 9999)},
            r"'tokenizer.ggml.eos_token_id' is 9999, outside the vocabulary",
        ),
        ({"tokenizer.chat_template": ("add_uint32", 1)}, r"'tokenizer.chat_template' must be a string"),
        ({"tokenizer.ggml.merges": ("add_array", ["ab"])}, r"bad BPE merge 'ab'"),
    ],
)
def test_gguf_metadata_of_the_wrong_type_names_the_key(tmp_path, overrides, match):
    pytest.importorskip("gguf")
    path = write_gguf(tmp_path / "bad.gguf", overrides)
    with pytest.raises(ModelLoadError, match=match) as info:
        from_gguf(path)
    assert _one_line(info).startswith(path)


def test_gguf_integer_weights_are_refused_naming_the_tensor(tmp_path):
    pytest.importorskip("gguf")
    path = write_gguf(tmp_path / "int.gguf", int_tensor="blk.1.ffn_up.weight")
    with pytest.raises(ModelLoadError, match=r"tensor blk.1.ffn_up.weight is stored as I32, an integer type"):
        from_gguf(path)


# ------------------------------------------------------------------ chat templates are bounded
RUNAWAY = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"


@pytest.mark.parametrize(
    "template",
    [
        RUNAWAY,
        "{% set s = 'ab' * 50000 %}{% for a in s %}{% for b in s %}{{ b }}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{{ 'x' * 10 ** 9 }}",
        "{{ '%099999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ 'x' | center(10 ** 9) }}",
        "{% set ns = namespace(s='xx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    ],
)
def test_runaway_chat_templates_stop_within_about_a_second(template):
    tok = Tokenizer.from_bpe(GGUF_TOKENS, [], GGUF_TOKENS[:3], split_digits=False, chat_template=template)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="chat template stopped") as info:
        tok.apply_chat_template([{"role": "user", "content": "a"}], tokenize=False)
    assert time.perf_counter() - start < 3  # the bound is 1 s of wall clock (2 s slack for a busy machine)
    assert "fix or replace tokenizer.chat_template" in _one_line(info)


def test_bounded_templates_render_real_chat_templates_unchanged():
    chatml = (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
        "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    tok = Tokenizer.from_bpe(GGUF_TOKENS, [], GGUF_TOKENS[:3], split_digits=False, chat_template=chatml)
    messages = [{"role": "user", "content": "width {0:99999999} and %1234567d stay text " * 50}] * 20
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.count("<|im_start|>user") == 20 and text.endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="chat template failed: no system role"):
        Tokenizer.from_bpe(
            GGUF_TOKENS, [], [], split_digits=False, chat_template="{{ raise_exception('no system role') }}"
        ).apply_chat_template(messages, tokenize=False)


# ------------------------------------------------------------------ program cache under threads
def test_concurrent_first_calls_build_one_program(tmp_path, monkeypatch):
    from tensorweave.backends import registry

    model = from_pretrained(write_checkpoint(tmp_path / "ckpt"))
    lowered = []
    real = registry.lower

    def counting_lower(graph, name):
        lowered.append(name)
        time.sleep(0.2)  # widen the race window
        return real(graph, name)

    monkeypatch.setattr(registry, "lower", counting_lower)
    ids = np.array([[1, 5, 6, 7]], np.int64)
    barrier = threading.Barrier(4)
    results, errors = [None] * 4, []

    def call(i):
        try:
            barrier.wait()
            results[i] = model(ids, backend="numpy")["logits"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert lowered == ["numpy"]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


# ------------------------------------------------------------------ generation defaults
def test_generation_config_follows_hugging_faces_rules(tmp_path):
    # no generation_config.json: the generation fields of config.json
    d = write_checkpoint(tmp_path / "plain", dict(LLAMA, pad_token_id=0, max_length=12))
    gen = from_pretrained(d).generation_config
    assert isinstance(gen, GenerationConfig)
    assert (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id, gen.max_length) == (1, 2, 0, 12)
    # generation_config.json wins when present
    d = write_checkpoint(
        tmp_path / "gen",
        extra={"generation_config.json": json.dumps({"eos_token_id": [2, 3], "do_sample": True, "top_k": 5})},
    )
    gen = from_pretrained(d).generation_config
    assert (gen.eos_token_id, gen.do_sample, gen.top_k, gen.bos_token_id) == ([2, 3], True, 5, None)
    # a bad one names the file and the field
    for bad, match in [
        ({"eos_token_id": "2"}, "`eos_token_id` must be an integer token id"),
        ({"do_sample": "true"}, "`do_sample` must be a JSON boolean"),
        ({"max_new_tokens": 2.5}, "`max_new_tokens`"),
    ]:
        d = write_checkpoint(
            tmp_path / f"bad{len(bad)}{list(bad)[0]}", extra={"generation_config.json": json.dumps(bad)}
        )
        with pytest.raises(ModelLoadError, match=match) as info:
            from_pretrained(d)
        assert _one_line(info).startswith(os.path.join(d, "generation_config.json"))
    d = write_checkpoint(tmp_path / "binary", extra={"generation_config.json": b"\x80\x81"})
    with pytest.raises(ModelLoadError, match="generation_config.json is not valid JSON text"):
        from_pretrained(d)


def test_bert_has_no_generation_config_and_does_not_generate():
    bert = {
        "model_type": "bert",
        "vocab_size": 20,
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 16,
        "max_position_embeddings": 16,
    }
    cfg = config_from_dict(bert)
    model = Model(cfg, tiny_params(bert), head="default")
    assert model.generation_config is None
    with pytest.raises(ValueError, match="bert models do not generate"):
        model.generate(np.array([[1, 2]]))


def test_model_generate_is_tw_generate(tmp_path):
    model = from_pretrained(write_checkpoint(tmp_path / "ckpt"))
    ids = np.array([[3, 4, 5], [0, 6, 7]], np.int64)
    mask = np.array([[1, 1, 1], [0, 1, 1]], np.int64)
    ours = model.generate(ids, mask, max_new_tokens=3, backend="numpy", trace=False)
    ref = tw.generate(model, ids, mask, max_new_tokens=3, backend="numpy", trace=False)
    np.testing.assert_array_equal(ours, ref)
    assert ours.shape == (2, 6)
