"""T5 written once: logits equal transformers' T5ForConditionalGeneration (random tiny configs,
seeded; relu + tied head and gated-gelu + untied head; unequal encoder/decoder depth), with full,
left- and right-padded encoder masks, and prefill + 3 cached decoder steps == one full decoder
forward for both cache layouts, on every backend; relative position buckets equal Hugging Face's;
config, checkpoint and parameter errors. Tolerance: spec/models.md ("Parity with transformers")."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import bind_params, config_from_dict, t5
from tensorweave.frontends.models.config import T5Config
from tensorweave.ir import TensorSpec
from tensorweave.models import check_params, from_pretrained, from_transformers

from conftest import IN_CI, require_backend

if IN_CI:  # the test extra installs transformers; CI must not skip these tests
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

# spec/models.md: float32 parity with transformers for random tiny models (observed ~2e-6)
ATOL = RTOL = 1e-4
VOCAB, ENC, DEC, PREFILL = 40, 9, 6, 3
# 8 buckets / max distance 12: with 9 encoder and 6 decoder positions both the exact and the
# logarithmic buckets (and the clamp at max_distance) are exercised
SMALL = dict(
    vocab_size=VOCAB,
    d_model=16,
    d_kv=4,
    d_ff=32,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=12,
    decoder_start_token_id=0,
)


def hf_t5(kind: str):
    """relu: original T5 (tied head, rescaled by d_model**-0.5), 2 encoder / 3 decoder layers;
    gated: T5 v1.1 (gated-gelu, separate lm_head, no rescale), 3 encoder / 2 decoder layers."""
    torch.manual_seed(0)
    if kind == "relu":
        cfg = transformers.T5Config(**SMALL, num_layers=2, num_decoder_layers=3, feed_forward_proj="relu")
        return transformers.T5ForConditionalGeneration(cfg).eval()
    cfg = transformers.T5Config(
        **SMALL, num_layers=3, num_decoder_layers=2, feed_forward_proj="gated-gelu", tie_word_embeddings=False
    )
    model = transformers.T5ForConditionalGeneration(cfg).eval()
    # transformers v5 keeps lm_head tied even when tie_word_embeddings is false; give it its own weights
    model.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, 16))
    return model


HF = {k: hf_t5(k) for k in ("relu", "gated")}
OURS = {k: from_transformers(m) for k, m in HF.items()}
_rng = np.random.default_rng(0)
IDS = _rng.integers(2, VOCAB, size=(2, ENC)).astype(np.int64)
DEC_IDS = np.concatenate([np.zeros((2, 1), np.int64), _rng.integers(2, VOCAB, size=(2, DEC - 1))], axis=1)
FULL = np.ones((2, ENC), np.int64)
LEFT = FULL.copy()
LEFT[1, :3] = 0
RIGHT = FULL.copy()
RIGHT[1, -4:] = 0
MASKS = {"full": FULL, "left": LEFT, "right": RIGHT}


def hf_out(kind, mask, hidden=False):
    with torch.no_grad():
        return HF[kind](
            input_ids=torch.from_numpy(IDS),
            attention_mask=torch.from_numpy(mask),
            decoder_input_ids=torch.from_numpy(DEC_IDS),
            output_hidden_states=hidden,
        )


def assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=ATOL, rtol=RTOL)


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("kind", ["relu", "gated"])
def test_logits_match_transformers(kind, backend):
    model = OURS[kind]
    for name, mask in MASKS.items():
        out = model(IDS, mask, DEC_IDS, backend=backend)
        ref = hf_out(kind, mask)
        assert out["logits"].shape == (2, DEC, VOCAB), name
        assert_close(out["logits"], ref.logits.numpy())
        real = mask.astype(bool)  # encoder outputs at padding positions are unspecified
        assert_close(
            np.asarray(out["encoder_last_hidden_state"])[real], ref.encoder_last_hidden_state.numpy()[real]
        )


def test_config_and_heads_follow_the_checkpoint():
    relu, gated = OURS["relu"].config, OURS["gated"].config
    assert (
        relu.num_layers,
        relu.num_decoder_layers,
        relu.tie_word_embeddings,
        relu.scale_decoder_outputs,
    ) == (2, 3, True, True)
    assert (
        gated.num_layers,
        gated.num_decoder_layers,
        gated.tie_word_embeddings,
        gated.scale_decoder_outputs,
    ) == (3, 2, False, False)
    assert "lm_head.weight" in OURS["gated"].params and "lm_head.weight" not in OURS["relu"].params
    assert OURS["relu"].head == "seq2seq-lm"


def test_hidden_states_match_transformers():
    model = OURS["gated"]
    out = model(IDS, LEFT, DEC_IDS, output_hidden_states=True)
    ref = hf_out("gated", LEFT, hidden=True)
    real = LEFT.astype(bool)
    assert len(out["encoder_hidden_states"]) == len(ref.encoder_hidden_states) == 4
    for ours, theirs in zip(out["encoder_hidden_states"], ref.encoder_hidden_states, strict=True):
        assert_close(np.asarray(ours)[real], theirs.numpy()[real])
    assert len(out["decoder_hidden_states"]) == len(ref.decoder_hidden_states) == 3
    for ours, theirs in zip(out["decoder_hidden_states"], ref.decoder_hidden_states, strict=True):
        assert_close(ours, theirs.numpy())


def test_decoder_attention_mask_matches_transformers():
    """An explicit decoder padding mask (row 1 ends in 2 padding positions) combined with the
    causal rule; only real decoder positions are compared."""
    model, cfg = OURS["relu"], OURS["relu"].config
    dmask = np.ones((2, DEC), np.int64)
    dmask[1, -2:] = 0

    def fn(ids, mask, dec, dec_mask):
        return t5.forward(bind_params(model.params), cfg, ids, mask, dec, dec_mask)["logits"]

    spec, dspec = TensorSpec((2, ENC), "int64"), TensorSpec((2, DEC), "int64")
    got = tw.lower(tw.trace(fn, spec, spec, dspec, dspec), backend="numpy")(IDS, LEFT, DEC_IDS, dmask)
    with torch.no_grad():
        ref = HF["relu"](
            input_ids=torch.from_numpy(IDS),
            attention_mask=torch.from_numpy(LEFT),
            decoder_input_ids=torch.from_numpy(DEC_IDS),
            decoder_attention_mask=torch.from_numpy(dmask),
        ).logits.numpy()
    real = dmask.astype(bool)
    assert_close(np.asarray(got)[real], ref[real])


def test_greedy_decoding_with_encode_and_cached_decode_equals_transformers_generate():
    """encode once, then one-token decode steps on a static cache (argmax each step, unrolled in
    one traced program): the tokens equal transformers' greedy generate up to each row's eos."""
    steps = 5
    for kind, model in OURS.items():
        cfg = model.config
        xp = tw.ir.namespace

        def fn(ids, mask):
            params = bind_params(model.params)
            cache = t5.init_cache(params, cfg, t5.encode(params, cfg, ids, mask), "static", max_length=steps)
            tok = xp.full((2, 1), cfg.decoder_start_token_id, dtype=xp.int64)
            out = [tok]
            for i in range(steps):
                logits, cache = t5.decode(params, cfg, tok, None, mask, cache, i)
                tok = xp.astype(xp.argmax(logits[:, -1], axis=-1), xp.int64)[:, None]
                out.append(tok)
            return xp.concat(out, axis=1)

        spec = TensorSpec((2, ENC), "int64")
        ours = np.asarray(tw.lower(tw.trace(fn, spec, spec), backend="numpy")(IDS, LEFT))
        with torch.no_grad():
            # use_cache=False: transformers v5 sizes its decoder cache by num_layers and fails when
            # num_decoder_layers is larger (the relu model); greedy tokens do not depend on it
            ref = (
                HF[kind]
                .generate(
                    torch.from_numpy(IDS),
                    attention_mask=torch.from_numpy(LEFT),
                    max_new_tokens=steps,
                    do_sample=False,
                    use_cache=False,
                )
                .numpy()
            )
        for row in range(2):
            n = ref.shape[1]
            eos = np.flatnonzero(ref[row] == cfg.eos_token_id)
            n = eos[0] + 1 if eos.size else n
            np.testing.assert_array_equal(ours[row, :n], ref[row, :n], err_msg=f"{kind} row {row}")


def test_padding_gives_the_unpadded_logits():
    """Relative positions make left and right padding invisible to the real tokens."""
    for kind, model in OURS.items():
        alone_left = model(IDS[1:, 3:], FULL[1:, 3:], DEC_IDS[1:])["logits"][0]
        assert_close(model(IDS, LEFT, DEC_IDS)["logits"][1], alone_left)
        alone_right = model(IDS[1:, :-4], FULL[1:, :-4], DEC_IDS[1:])["logits"][0]
        assert_close(model(IDS, RIGHT, DEC_IDS)["logits"][1], alone_right)


# ------------------------------------------------------------------ relative position buckets
BUCKET_CASES = [
    (True, 32, 128),
    (False, 32, 128),
    (True, 8, 12),
    (False, 8, 12),
    (True, 6, 20),
    (False, 10, 50),
]
REL = np.arange(-300, 300, dtype=np.int64)
_BUCKETS: dict = {}


def test_relative_position_buckets_equal_transformers(backend):
    if "graph" not in _BUCKETS:
        _BUCKETS["graph"] = tw.trace(
            lambda r: tuple(t5.relative_position_bucket(r, *case) for case in BUCKET_CASES),
            TensorSpec(("n",), "int64"),
        )
    got = tw.lower(_BUCKETS["graph"], backend=backend)(REL)
    attn = transformers.models.t5.modeling_t5.T5Attention
    for case, ours in zip(BUCKET_CASES, got, strict=True):
        bidirectional, num_buckets, max_distance = case
        ref = attn._relative_position_bucket(
            torch.from_numpy(REL),
            bidirectional=bidirectional,
            num_buckets=num_buckets,
            max_distance=max_distance,
        ).numpy()
        np.testing.assert_array_equal(np.asarray(ours), ref, err_msg=str(case))


# ------------------------------------------------------------------ caches
def _cached_runs(model):
    """Encode once, then decode a PREFILL-token prefill and 3 one-token steps per cache layout;
    returns the logits of every decoder position, [b, DEC, vocab], for (static, growing)."""
    cfg = model.config
    L, nh, dk = cfg.num_decoder_layers, cfg.num_heads, cfg.d_kv
    xp = tw.ir.namespace

    def run(ids, mask, dec):
        params = bind_params(model.params)
        enc = t5.encode(params, cfg, ids, mask)
        results = []
        for layout in ("static", "growing"):
            cache = t5.init_cache(params, cfg, enc, layout, max_length=DEC)
            outs = []
            for start, length in [(0, PREFILL), (PREFILL, 1), (PREFILL + 1, 1), (PREFILL + 2, 1)]:
                offset = (
                    xp.asarray(start, dtype=xp.int64) if layout == "static" else start
                )  # a runtime position too
                logits, cache = t5.decode(
                    params, cfg, dec[:, start : start + length], None, mask, cache, offset
                )
                outs.append(logits)
            size = DEC if layout == "static" else PREFILL + 3
            keys = (
                cache["self"]["key"] + cache["self"]["value"]
                if layout == "static"
                else [a for kv in cache["self"] for a in kv]
            )
            assert len(keys) == 2 * L and all(tuple(k.shape) == (2, nh, size, dk) for k in keys)
            assert all(tuple(k.shape) == (2, nh, ENC, dk) for kv in cache["cross"] for k in kv)
            results.append(xp.concat(outs, axis=1))
        return tuple(results)

    spec = TensorSpec((2, ENC), "int64")
    return tw.trace(run, spec, spec, TensorSpec((2, DEC), "int64"))


GRAPHS: dict = {}


def _check_cached(kind, backend):
    if kind not in GRAPHS:
        GRAPHS[kind] = _cached_runs(OURS[kind])
    static, growing = tw.lower(GRAPHS[kind], backend=backend)(IDS, LEFT, DEC_IDS)
    ref = hf_out(kind, LEFT).logits.numpy()
    assert_close(static, ref)
    assert_close(growing, ref)


@pytest.mark.xdist_group("t5_cached")
def test_prefill_then_cached_steps_equal_full_forward(backend):
    """Static (dynamic_update_slice at a runtime offset) and growing (concat) self-attention
    caches with cross-attention keys/values computed once, left-padded encoder input: T5 v1.1
    (gated-gelu, untied head) on every backend."""
    _check_cached("gated", backend)


def test_prefill_then_cached_steps_equal_full_forward_relu():
    """The same for the original-T5 model (relu, tied rescaled head, 3 decoder layers) on the
    reference backend (the cache code is shared; every backend runs the gated model above)."""
    _check_cached("relu", "numpy")


def test_reorder_cache_gathers_rows():
    xp = tw.ir.namespace
    cfg = OURS["relu"].config

    def fn(ids, mask):
        enc = t5.encode(OURS["relu"].params, cfg, ids, mask)
        cache = t5.reorder_cache(
            t5.init_cache(OURS["relu"].params, cfg, enc, "static", max_length=4), xp.asarray([1, 1, 0])
        )
        return cache["cross"][0][0], cache["self"]["key"][0]

    spec = TensorSpec((2, ENC), "int64")
    cross, key = tw.lower(tw.trace(fn, spec, spec), backend="numpy")(IDS, LEFT)
    assert cross.shape == (3, 4, ENC, 4) and key.shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(cross[0], cross[1])
    assert not np.array_equal(cross[0], cross[2])


# ------------------------------------------------------------------ configs
def test_config_fields_and_defaults():
    cfg = T5Config.from_dict(
        {"d_model": 8, "d_kv": 2, "num_heads": 4, "num_layers": 3, "tie_word_embeddings": False}
    )
    assert (cfg.num_decoder_layers, cfg.scale_decoder_outputs, cfg.head_dim, cfg.hidden_size) == (
        3,
        False,
        2,
        8,
    )
    assert (cfg.is_gated_act, cfg.dense_act_fn) == (False, "relu")
    v11 = config_from_dict({"model_type": "t5", "feed_forward_proj": "gated-gelu", "num_decoder_layers": 1})
    assert (v11.is_gated_act, v11.dense_act_fn, v11.num_decoder_layers, v11.scale_decoder_outputs) == (
        True,
        "gelu_new",
        1,
        True,
    )
    assert config_from_dict({"model_type": "t5", "feed_forward_proj": "gated-silu"}).dense_act_fn == "silu"


@pytest.mark.parametrize(
    "d, match",
    [
        ({"feed_forward_proj": "swiglu"}, "`feed_forward_proj` 'swiglu' is not supported"),
        ({"feed_forward_proj": "gelu-gated"}, "`feed_forward_proj`"),
        ({"feed_forward_proj": "gated-gelu-x"}, "`feed_forward_proj`"),
        ({"num_decoder_layers": 0}, "`num_decoder_layers` must be a positive integer"),
        ({"d_kv": -1}, "`d_kv`"),
        ({"relative_attention_num_buckets": 2}, "`relative_attention_num_buckets`"),
        (
            {"relative_attention_num_buckets": 32, "relative_attention_max_distance": 16},
            "`relative_attention_max_distance`",
        ),
        ({"layer_norm_epsilon": 0}, "`layer_norm_epsilon`"),
        ({"decoder_start_token_id": -1}, "`decoder_start_token_id`"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict({"model_type": "t5", **d})


# ------------------------------------------------------------------ checkpoints and errors
def test_checkpoint_directories_load(tmp_path):
    """A transformers-saved directory (tied), and a Hugging Face 4.x-style T5 v1.1 directory
    (``tie_word_embeddings: false`` and its own ``lm_head.weight``)."""
    from safetensors.numpy import save_file

    HF["relu"].save_pretrained(str(tmp_path / "relu"))
    relu = from_pretrained(str(tmp_path / "relu"))
    assert set(relu.params) == set(OURS["relu"].params)
    assert all(np.array_equal(relu.params[k], OURS["relu"].params[k]) for k in relu.params)
    cfg = {
        "model_type": "t5",
        "architectures": ["T5ForConditionalGeneration"],
        "num_layers": 3,
        "num_decoder_layers": 2,
        "feed_forward_proj": "gated-gelu",
        "tie_word_embeddings": False,
        **{k: v for k, v in SMALL.items()},
    }
    (tmp_path / "v11").mkdir()
    (tmp_path / "v11" / "config.json").write_text(json.dumps(cfg))
    save_file(dict(OURS["gated"].params), str(tmp_path / "v11" / "model.safetensors"))
    v11 = from_pretrained(str(tmp_path / "v11"))
    assert (v11.config.tie_word_embeddings, v11.config.scale_decoder_outputs) == (False, False)
    assert_close(v11(IDS, LEFT, DEC_IDS)["logits"], hf_out("gated", LEFT).logits.numpy())
    # transformers v5 reading the same directory keeps its lm_head too (spec/models.md, T5)
    theirs = transformers.T5ForConditionalGeneration.from_pretrained(str(tmp_path / "v11")).eval()
    with torch.no_grad():
        ref = theirs(
            input_ids=torch.from_numpy(IDS),
            attention_mask=torch.from_numpy(LEFT),
            decoder_input_ids=torch.from_numpy(DEC_IDS),
        ).logits.numpy()
    assert_close(v11(IDS, LEFT, DEC_IDS)["logits"], ref)
    # transformers v5 saves an untied model with tie_word_embeddings: true and its own lm_head.weight
    HF["gated"].save_pretrained(str(tmp_path / "v5"))
    assert json.loads((tmp_path / "v5" / "config.json").read_text())["tie_word_embeddings"] is True
    v5 = from_pretrained(str(tmp_path / "v5"))
    assert (v5.config.tie_word_embeddings, v5.config.scale_decoder_outputs) == (False, False)
    assert_close(v5(IDS, LEFT, DEC_IDS)["logits"], hf_out("gated", LEFT).logits.numpy())


def test_missing_and_misshaped_tensors_are_one_error():
    cfg, params = OURS["gated"].config, OURS["gated"].params
    broken = {
        k: v
        for k, v in params.items()
        if k not in ("lm_head.weight", "decoder.block.1.layer.1.EncDecAttention.k.weight")
    }
    broken["shared.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ModelLoadError) as info:
        check_params(cfg, broken)
    msg = str(info.value)
    for part in (
        "missing (2)",
        "lm_head.weight",
        "decoder.block.1.layer.1.EncDecAttention.k.weight",
        "mis-shaped (1)",
        "shared.weight: (3, 3) != (40, 16)",
    ):
        assert part in msg, part
    # a relu checkpoint for a gated config: wi is unexpected, wi_0 / wi_1 missing
    with pytest.raises(ModelLoadError, match=r"missing \(10\).*DenseReluDense.wi_0.*unexpected \(5\)"):
        check_params(
            config_from_dict({**HF["relu"].config.to_dict(), "feed_forward_proj": "gated-relu"}),
            OURS["relu"].params,
        )


def test_bad_calls_are_clear_errors():
    model = OURS["relu"]
    with pytest.raises(ValueError, match="decoder_input_ids"):
        model(IDS, LEFT)
    with pytest.raises(ValueError, match="batch 2"):
        model(IDS, LEFT, DEC_IDS[:1])
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        tw.trace(
            lambda d: t5.decode(model.params, model.config, d, None, FULL[:, :1])[0],
            TensorSpec((2, 1), "int64"),
        )
    with pytest.raises(ModelLoadError, match="seq2seq-lm"):
        from_transformers(HF["relu"], head="masked-lm")
    enc_spec = TensorSpec((2, ENC, 16), "float32")
    with pytest.raises(ValueError, match="unknown cache layout 'paged'"):
        tw.trace(lambda e: t5.init_cache(model.params, model.config, e, "paged")["cross"][0][0], enc_spec)
    with pytest.raises(ValueError, match="needs a positive int max_length"):
        tw.trace(lambda e: t5.init_cache(model.params, model.config, e, "static")["cross"][0][0], enc_spec)
    with pytest.raises(ValueError, match="not an encoder-decoder"):
        from tensorweave.models import Model

        Model(config_from_dict({"model_type": "gpt2", "n_embd": 8, "n_head": 2}), {}).decoder_program()


# ------------------------------------------------------------------ step-wise programs (ONNX-with-past names)
@pytest.mark.xdist_group("t5_cached")
@pytest.mark.parametrize("name", ["numpy", "onnx"])
def test_encoder_and_decoder_programs_step_equal_full_forward(name):
    """encoder program -> decoder program (prefill) -> decoder-with-past program (3 steps): the
    growing cache crosses program boundaries as Hugging Face's ONNX inputs/outputs."""
    require_backend(name)
    model = OURS["relu"]  # 3 decoder layers over a 2-layer encoder
    L = model.config.num_decoder_layers
    enc = model.encoder_program(name)(IDS, LEFT)
    first = model.decoder_program(name)
    assert first.input_names == ["input_ids", "encoder_hidden_states", "encoder_attention_mask"]
    outs = dict(zip(first.output_names, first(DEC_IDS[:, :PREFILL], enc, LEFT)))
    got = [np.asarray(outs["logits"])]
    step = model.decoder_program(name, with_past=True)
    assert step.input_names == ["input_ids", "encoder_attention_mask"] + model.seq2seq_past_names()
    cross = {
        k: outs[k.replace("past_key_values", "present")]
        for k in model.seq2seq_past_names()
        if ".encoder." in k
    }
    selfkv = {
        k: outs[k.replace("past_key_values", "present")]
        for k in model.seq2seq_past_names()
        if ".decoder." in k
    }
    for start in (PREFILL, PREFILL + 1, PREFILL + 2):
        past = [selfkv[k] if k in selfkv else cross[k] for k in model.seq2seq_past_names()]
        res = dict(zip(step.output_names, step(DEC_IDS[:, start : start + 1], LEFT, *past)))
        got.append(np.asarray(res["logits"]))
        selfkv = {k: res[k.replace("past_key_values", "present")] for k in selfkv}
        assert np.shape(selfkv["past_key_values.0.decoder.key"]) == (2, 4, start + 1, 4)
    assert len(selfkv) == 2 * L
    assert_close(np.concatenate(got, axis=1), hf_out("relu", LEFT).logits.numpy())
