"""T5 variants on t5.py: mT5 (T5 v1.1 numerics, its own lm_head, no output rescale) and LongT5
(local and transient-global encoder attention) against transformers' PyTorch models (tiny random
configs: 2 layers, d_model 32, vocab 64; seeded; eval mode).

Encoder output and decoder logits on numpy (left- and right-padded encoder rows) from a live
model and from a ``save_pretrained`` directory; logits on every backend; greedy ``tw.generate``
tokens equal transformers' ``generate`` on numpy, onnx and torch; one ONNX export per type
validated; features, config defaults and errors. Tolerance: atol = rtol = 1e-5 (spec/models.md,
"Parity with transformers")."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import config_from_dict, t5
from tensorweave.ir import TensorSpec
from tensorweave.models import from_pretrained, from_transformers

from conftest import IN_CI, require_backend

if IN_CI:  # the test extra installs transformers; CI must not skip these tests
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

ATOL = RTOL = 1e-5
VOCAB, ENC, DEC, D = 64, 13, 6, 32
COMMON = dict(
    vocab_size=VOCAB,
    d_model=D,
    d_kv=8,
    d_ff=64,
    num_layers=2,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=12,
    decoder_start_token_id=0,
    pad_token_id=0,
    eos_token_id=1,
)
# local_radius 2 (a 5-key window) and global blocks of 4 over 13 encoder positions: the window,
# three complete global blocks and an orphan tail that joins the last one are all exercised
LONG = dict(local_radius=2, global_block_size=4)
KINDS = ("mt5", "longt5-local", "longt5-tglobal")


def _redraw(model, gain: float) -> None:
    """Weights ``N(0, gain^2 / fan_in)`` (embedding ``N(0, 1 / d_model)``, relative biases ``N(0,
    1)``), so that a wrong position, window or block moves the outputs by far more than the
    tolerance. The parity models use gain 1 (observed max error 5.4e-6); greedy
    generation uses gain 1.5, whose outputs vary (with the default init, or gain 1, a random T5
    repeats one token) but whose float32 rounding reaches ~1e-5."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                std = (
                    1.0
                    if "relative" in name
                    else p.shape[1] ** -0.5 * (1.0 if name == "shared.weight" else gain)
                )
                p.copy_(torch.randn_like(p) * std)


def hf_model(kind: str, gain: float = 1.0):
    torch.manual_seed(0)
    if kind == "mt5":
        cfg = transformers.MT5Config(**COMMON)
        model = transformers.MT5ForConditionalGeneration(cfg).eval()
        # mT5 checkpoints have their own lm_head (transformers v5 ties a fresh model's)
        model.lm_head.weight = torch.nn.Parameter(torch.empty(VOCAB, D))
    else:
        attention = "local" if kind == "longt5-local" else "transient-global"
        ff = "relu" if kind == "longt5-local" else "gated-gelu"
        cfg = transformers.LongT5Config(
            **COMMON, **LONG, encoder_attention_type=attention, feed_forward_proj=ff
        )
        model = transformers.LongT5ForConditionalGeneration(cfg).eval()
    _redraw(model, gain)
    return model


HF = {k: hf_model(k) for k in KINDS}
OURS = {k: from_transformers(m) for k, m in HF.items()}
HF_GEN = {k: hf_model(k, 1.5) for k in KINDS}
OURS_GEN = {k: from_transformers(m) for k, m in HF_GEN.items()}
_rng = np.random.default_rng(0)
IDS = _rng.integers(2, VOCAB, size=(3, ENC)).astype(np.int64)
MASK = np.ones_like(IDS)
MASK[1, :3] = 0  # left padding
MASK[2, -5:] = 0  # right padding
DEC_IDS = np.concatenate([np.zeros((3, 1), np.int64), _rng.integers(2, VOCAB, size=(3, DEC - 1))], axis=1)
REAL = MASK.astype(bool)


def hf_out(kind: str):
    with torch.no_grad():
        return HF[kind](
            input_ids=torch.from_numpy(IDS),
            attention_mask=torch.from_numpy(MASK),
            decoder_input_ids=torch.from_numpy(DEC_IDS),
        )


REF = {k: hf_out(k) for k in KINDS}


def assert_close(actual, expected, atol=ATOL, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=rtol)


def check_outputs(model, kind: str, backend: str = "numpy", atol=ATOL, rtol=RTOL) -> None:
    out = model(IDS, MASK, DEC_IDS, backend=backend)
    ref = REF[kind]
    assert out["logits"].shape == (3, DEC, VOCAB)
    assert_close(out["logits"], ref.logits.numpy(), atol, rtol)
    # encoder outputs at padding positions are unspecified
    assert_close(
        np.asarray(out["encoder_last_hidden_state"])[REAL],
        ref.encoder_last_hidden_state.numpy()[REAL],
        atol,
        rtol,
    )


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("kind", KINDS)
def test_live_model_matches_transformers(kind):
    check_outputs(OURS[kind], kind)


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_directory_matches_transformers(kind, tmp_path):
    HF[kind].save_pretrained(str(tmp_path))
    model = from_pretrained(str(tmp_path))
    assert model.model_type == kind.split("-")[0] and model.head == "seq2seq-lm"
    assert set(model.params) == set(OURS[kind].params)
    check_outputs(model, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_every_backend(kind, backend):
    # float32 kernels differ between frameworks; 1e-4 as the T5 tests (observed ~1e-5)
    check_outputs(OURS[kind], kind, backend, atol=1e-4, rtol=1e-4)


def test_the_variants_switch_what_they_should():
    mt5, local, tglobal = (OURS[k].config for k in KINDS)
    assert (mt5.model_type, mt5.is_gated_act, mt5.tie_word_embeddings, mt5.scale_decoder_outputs) == (
        "mt5",
        True,
        False,
        False,
    )
    assert "lm_head.weight" in OURS["mt5"].params
    assert (local.encoder_attention_type, local.local_radius, local.scale_decoder_outputs) == (
        "local",
        2,
        True,
    )
    assert (tglobal.encoder_attention_type, tglobal.global_block_size) == ("transient-global", 4)
    names = set(OURS["longt5-tglobal"].params)
    att = "encoder.block.{}.layer.0.TransientGlobalSelfAttention."
    assert att.format(0) + "global_relative_attention_bias.weight" in names
    assert att.format(1) + "global_input_layer_norm.weight" in names
    assert att.format(1) + "global_relative_attention_bias.weight" not in names
    assert any(".LocalSelfAttention." in n for n in OURS["longt5-local"].params)


def test_local_attention_is_local():
    """Changing one token moves the local encoder's outputs only within ``num_layers *
    local_radius`` positions of it; the transient-global encoder's move everywhere."""
    other = IDS[:1].copy()
    other[0, 0] = 2 if other[0, 0] != 2 else 3
    mask = np.ones_like(other)
    reach = 2 * LONG["local_radius"]
    for kind, local in (("longt5-local", True), ("longt5-tglobal", False)):
        cfg, params = OURS[kind].config, OURS[kind].params
        spec = TensorSpec((1, ENC), "int64")
        run = tw.lower(tw.trace(lambda i, m: t5.encode(params, cfg, i, m), spec, spec), backend="numpy")
        moved = np.abs(run(other, mask) - run(IDS[:1], mask)).max(axis=-1)[0] > 1e-6
        assert moved[: reach + 1].all()
        assert (not moved[reach + 1 :].any()) if local else moved[reach + 1 :].all()


def test_global_block_ids_follow_transformers():
    from transformers.models.longt5.modeling_longt5 import _make_global_fixed_block_ids

    masks = np.ones((4, 11), np.int64)
    masks[1, :5] = 0
    masks[2, -6:] = 0
    masks[3, 2:] = 0  # no complete block: no global token
    spec = TensorSpec((4, 11), "int64")
    for block in (2, 4, 8):
        got = tw.lower(tw.trace(lambda m: t5.global_block_ids(m, block), spec), backend="numpy")(masks)
        want = _make_global_fixed_block_ids(torch.from_numpy(masks), block)[0].numpy()
        np.testing.assert_array_equal(got, want, err_msg=str(block))


# ------------------------------------------------------------------ generation
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["numpy", "onnx", "torch"])
def test_greedy_generate_matches_transformers(kind, name):
    require_backend(name)
    with torch.no_grad():
        ref = (
            HF_GEN[kind]
            .generate(
                input_ids=torch.from_numpy(IDS),
                attention_mask=torch.from_numpy(MASK),
                max_new_tokens=8,
                do_sample=False,
            )
            .numpy()
        )
    assert len(set(ref[:, 1:].ravel().tolist())) >= 4, ref  # the comparison is not trivial
    out = tw.generate(OURS_GEN[kind], IDS, MASK, backend=name, max_new_tokens=8, do_sample=False)
    np.testing.assert_array_equal(np.asarray(out), ref)


@pytest.mark.parametrize("name", ["numpy", "onnx"])
def test_mt5_beam_search_matches_transformers(name):
    """4 beams, 2 returned sequences, length penalty 1.5 and early stopping, as test_generate_t5
    checks T5 (eos as an int, a non-zero pad: see the note there)."""
    require_backend(name)
    kw = dict(
        num_beams=4,
        num_return_sequences=2,
        length_penalty=1.5,
        early_stopping=True,
        eos_token_id=53,
        pad_token_id=2,
    )
    with torch.no_grad():
        ref = HF_GEN["mt5"].generate(
            input_ids=torch.from_numpy(IDS),
            attention_mask=torch.from_numpy(MASK),
            max_new_tokens=8,
            do_sample=False,
            return_dict_in_generate=True,
            output_scores=True,
            **kw,
        )
    out = tw.generate(
        OURS_GEN["mt5"],
        IDS,
        MASK,
        backend=name,
        max_new_tokens=8,
        do_sample=False,
        return_dict_in_generate=True,
        output_scores=True,
        **kw,
    )
    np.testing.assert_array_equal(out.sequences, ref.sequences.numpy())
    assert (ref.sequences.numpy() == 53).any()  # some hypotheses end early
    np.testing.assert_allclose(out.sequences_scores, ref.sequences_scores.numpy(), atol=1e-4, rtol=0)


# ------------------------------------------------------------------ export
@pytest.mark.parametrize(
    "kind, feature",
    [("mt5", "seq2seq-lm-with-past"), ("longt5-local", "seq2seq-lm"), ("longt5-tglobal", "default")],
)
def test_onnx_export_validates(kind, feature, tmp_path):
    require_backend("onnx")
    E = sys.modules["tensorweave.export"]
    model = OURS[kind]
    res = tw.export(model, feature, "onnx", tmp_path / "out")
    E.validate_model_outputs(
        res.onnx_config, model, res.path, res.output_names, res.onnx_config.atol_for_validation
    )
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == [type(HF[kind]).__name__] and config["model_type"] == model.model_type


def test_features():
    from tensorweave.onnx import FeaturesManager

    for model_type in ("mt5", "longt5"):
        assert set(FeaturesManager.get_supported_features_for_model_type(model_type)) == {
            "default",
            "default-with-past",
            "seq2seq-lm",
            "seq2seq-lm-with-past",
        }


# ------------------------------------------------------------------ configs and errors
def test_config_defaults():
    mt5 = config_from_dict({"model_type": "mt5"})
    assert (mt5.vocab_size, mt5.d_ff, mt5.num_layers, mt5.num_heads, mt5.dense_act_fn) == (
        250112,
        1024,
        8,
        6,
        "gelu_new",
    )
    assert (mt5.tie_word_embeddings, mt5.scale_decoder_outputs) == (False, False)
    assert config_from_dict({"model_type": "mt5", "scale_decoder_outputs": True}).scale_decoder_outputs
    long = config_from_dict({"model_type": "longt5"})
    assert (long.local_radius, long.global_block_size, long.encoder_attention_type) == (127, 16, "local")
    assert (long.tie_word_embeddings, long.scale_decoder_outputs, long.feed_forward_proj) == (
        True,
        True,
        "relu",
    )


@pytest.mark.parametrize(
    "d, match",
    [
        ({"model_type": "longt5", "encoder_attention_type": "global"}, "`encoder_attention_type` 'global'"),
        ({"model_type": "longt5", "local_radius": 0}, "`local_radius` must be a positive integer"),
        ({"model_type": "longt5", "global_block_size": -4}, "`global_block_size`"),
        ({"model_type": "mt5", "feed_forward_proj": "gated"}, "`feed_forward_proj`"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_other_classes_are_refused():
    cfg = transformers.MT5Config(**COMMON)
    with pytest.raises(ModelLoadError, match="MT5EncoderModel is not supported; mt5 classes"):
        from_transformers(transformers.MT5EncoderModel(cfg))
    with pytest.raises(ModelLoadError, match="longt5 models have no head 'masked-lm'"):
        from_transformers(HF["longt5-local"], head="masked-lm")
