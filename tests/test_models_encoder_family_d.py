"""Encoders with their own attention (issue #15, part C): DeBERTa and DeBERTa-v2 (``deberta.py``:
disentangled c2p / p2c attention, log position buckets, the v2 convolution, both masked-lm heads),
BigBird with ``attention_type='original_full'`` (``big_bird.py``) and Longformer (``longformer.py``:
sliding-window plus global attention as a masked full attention), against transformers' PyTorch
models (tiny random configs: 2 layers, hidden 32, vocab 100; seeded; eval mode; eager attention).

Every type and head: outputs and hidden states from a live model and from a ``save_pretrained``
directory on numpy; the default head on every backend; one ONNX export per type validated;
features and config errors. Tolerance: spec/models.md ("Parity with transformers"),
atol = rtol = 1e-5 (observed < 1e-6)."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.frontends.models import bind_params, config_from_dict, deberta, longformer
from tensorweave.ir import TensorSpec, array_namespace
from tensorweave.models import from_pretrained, from_transformers

from conftest import IN_CI
from model_parity import (
    assert_close,
    build_cases,
    check_export_config,
    check_export_reads_back,
    check_live_and_saved,
    export_and_validate,
    torch_outputs,
)
from model_parity import check_outputs as check_parity

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

VOCAB, SEQ, REAL = 100, 11, 8  # row 1 is padded after REAL tokens
SEPS = ((2, 4, 7), (1, 3, 5))  # three separators per row (Longformer's question-answering needs three)
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=64,
    initializer_range=0.1,  # large enough that a wrong position or head moves outputs by >> 1e-5
    attn_implementation="eager",
)
# model_type -> (transformers class prefix, config kwargs)
CASES = {
    "deberta": (  # v1: in_proj, c2p + p2c over plain distances, legacy masked-lm head
        "Deberta",
        dict(
            COMMON,
            relative_attention=True,
            pos_att_type="c2p|p2c",
            max_relative_positions=6,
            type_vocab_size=2,
            pad_token_id=0,
            sep_token_id=2,
        ),
    ),
    "deberta-v2": (  # log buckets, LayerNorm'd table, conv layer, no absolute positions or types
        "DebertaV2",
        dict(
            COMMON,
            relative_attention=True,
            pos_att_type=["p2c", "c2p"],
            position_buckets=4,
            max_relative_positions=8,
            norm_rel_ebd="layer_norm",
            conv_kernel_size=3,
            position_biased_input=False,
            type_vocab_size=0,
            legacy=False,
            pad_token_id=0,
            sep_token_id=2,
        ),
    ),
    "big_bird": (
        "BigBird",
        dict(COMMON, attention_type="original_full", type_vocab_size=2, pad_token_id=0, sep_token_id=2),
    ),
    "longformer": (
        "Longformer",
        dict(COMMON, attention_window=[4, 6], type_vocab_size=2, pad_token_id=1, sep_token_id=2),
    ),
}
TYPES = list(CASES)
HEADS = {
    "default": "Model",
    "masked-lm": "ForMaskedLM",
    "sequence-classification": "ForSequenceClassification",
    "token-classification": "ForTokenClassification",
    "question-answering": "ForQuestionAnswering",
    "multiple-choice": "ForMultipleChoice",
}
OUTPUTS = ("last_hidden_state", "pooler_output", "logits", "start_logits", "end_logits")


def heads_of(name: str) -> list[str]:
    return [h for h in HEADS if not (name == "deberta" and h == "multiple-choice")]


def hf_model(name: str, head: str, **overrides):
    prefix, kwargs = CASES[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, prefix + "Config")(
        **{**kwargs, **overrides}, num_labels=2 if head == "question-answering" else 3
    )
    return getattr(transformers, prefix + HEADS[head])(cfg).eval()


def inputs(name: str, head: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask, token_type_ids)``: row 1 right-padded with the pad token,
    separators at :data:`SEPS`, token types 1 on the second segment where the type has two."""
    kwargs = CASES[name][1]
    ids = np.random.default_rng(0).integers(3, VOCAB, (2, SEQ))
    for row, seps in enumerate(SEPS):
        ids[row, list(seps)] = kwargs["sep_token_id"]
    ids[1, REAL:] = kwargs["pad_token_id"]
    mask = np.ones((2, SEQ), np.int64)
    mask[1, REAL:] = 0
    types = np.zeros((2, SEQ), np.int64)
    if kwargs["type_vocab_size"] > 1:
        types[:, 5:] = 1
    args = (ids, mask, types)
    if head == "multiple-choice":
        args = tuple(np.stack([a, np.roll(a, 1, axis=1), a[:, ::-1]], axis=1) for a in args)
    return args


def reference(hf, name: str, head: str) -> dict:
    ids, mask, types = (torch.from_numpy(np.ascontiguousarray(a)) for a in inputs(name, head))
    with torch.no_grad():
        out = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    return torch_outputs(out, OUTPUTS)


@pytest.fixture(scope="module")
def cases() -> dict:
    """(type, head) -> (transformers model, reference outputs), built once."""
    return build_cases(TYPES, heads_of, hf_model, reference)


check_outputs = functools.partial(check_parity, layers=3)
"""Every output and hidden state (3 of them) close to transformers' (:func:`model_parity.check_outputs`)."""


def run_traced(fn, *arrays):
    """``fn(*traced arrays)`` traced and run on numpy (int64 ``[batch, sequence]`` inputs)."""
    spec = TensorSpec(("batch", "sequence"), "int64")
    return tw.lower(tw.trace(fn, *[spec] * len(arrays)), backend="numpy")(*arrays)


# ------------------------------------------------------------------ numpy: live and saved
@pytest.mark.parametrize("name", TYPES)
def test_every_head_matches_transformers_live_and_from_a_checkpoint(name, cases, tmp_path):
    for head in heads_of(name):
        hf, ref = cases[name, head]
        check_live_and_saved(hf, ref, name, head, tmp_path, inputs(name, head), check=check_outputs)


def test_deberta_v2_shared_keys_embedding_size_and_legacy_head(tmp_path):
    """The other v2 switches: ``share_att_key`` (positions through key_proj / query_proj), plain
    distances (no buckets), ``embedding_size`` != hidden (``embed_proj``), token types, the legacy
    masked-lm head (transform to the embedding width)."""
    switches = dict(
        share_att_key=True,
        position_buckets=-1,
        max_relative_positions=5,
        embedding_size=16,
        type_vocab_size=2,
        position_biased_input=True,
        norm_rel_ebd="none",
        conv_kernel_size=0,
        legacy=True,
    )
    for head in ("default", "masked-lm"):
        hf = hf_model("deberta-v2", head, **switches)
        args = inputs("deberta", head)  # two token types
        ids, mask, types = (torch.from_numpy(a) for a in args)
        with torch.no_grad():
            want = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        model = from_transformers(hf)
        assert "deberta.embeddings.embed_proj.weight" in model.params
        assert not any("pos_key_proj" in k for k in model.params)
        out = model(*args, backend="numpy", output_hidden_states=True)
        key = "last_hidden_state" if head == "default" else "logits"
        assert_close(out[key], want[key].numpy())
        for ours, theirs in zip(out["hidden_states"], want.hidden_states, strict=True):
            assert_close(ours, theirs.numpy())


def test_relative_positions_match_transformers_buckets():
    """DeBERTa-v2's log buckets give transformers' table rows (``build_relative_position``, float32
    ceil, then the clip to ``[0, 2 position_buckets)``), also for distances beyond
    ``max_relative_positions``."""
    from transformers.models.deberta_v2 import modeling_deberta_v2 as M

    for buckets, max_rel, s in ((4, 8, 40), (256, 512, 600), (6, 64, 90)):
        cfg = config_from_dict(
            {"model_type": "deberta-v2", "position_buckets": buckets, "max_relative_positions": max_rel}
        )
        x = torch.zeros(1, s, 1)
        rel = M.build_relative_position(x, x, bucket_size=buckets, max_position=max_rel)[0].numpy()
        want = np.clip(rel + buckets, 0, 2 * buckets - 1)

        def index(ids):
            xp = array_namespace(ids)
            r = deberta.relative_positions(cfg, ids.shape[1], xp) + 0 * xp.sum(ids)
            return xp.clip(r + buckets, 0, 2 * buckets - 1)

        np.testing.assert_array_equal(np.asarray(run_traced(index, np.zeros((1, s), np.int64))), want)
        assert len(np.unique(want)) > 6  # buckets beyond the linear range are exercised


def test_the_switches_under_test_move_the_outputs(cases):
    """Longformer's window and global attention, and DeBERTa's relative terms, matter at this tolerance."""
    hf, ref = cases["longformer", "default"]
    model = from_transformers(hf)
    args = inputs("longformer", "default")
    wide = dataclasses.replace(model.config, attention_window=64)  # every key inside the window
    moved = run_traced(
        lambda *a: longformer.forward(bind_params(model.params), wide, *a)["last_hidden_state"], *args
    )
    assert np.abs(np.asarray(moved) - ref["last_hidden_state"]).max() > 1e-2
    glob = np.zeros((2, SEQ), np.int64)
    glob[:, [0, 6]] = 1
    with torch.no_grad():
        want = hf(
            *(torch.from_numpy(a) for a in args[:2]),
            global_attention_mask=torch.from_numpy(glob),
            token_type_ids=torch.from_numpy(args[2]),
        )
    got = run_traced(
        lambda i, m, t, g: longformer.forward(
            bind_params(model.params), model.config, i, m, t, global_attention_mask=g
        )["last_hidden_state"],
        *args,
        glob,
    )
    assert_close(got, want.last_hidden_state.numpy())
    assert np.abs(np.asarray(got) - ref["last_hidden_state"]).max() > 1e-2
    hf, ref = cases["deberta-v2", "default"]
    model = from_transformers(hf)
    flat = dataclasses.replace(model.config, pos_att_type=["c2p"])  # p2c dropped
    moved = run_traced(
        lambda *a: deberta.forward(bind_params(model.params), flat, *a)["last_hidden_state"],
        *inputs("deberta-v2", "default"),
    )
    assert np.abs(np.asarray(moved) - ref["last_hidden_state"]).max() > 1e-2


# ------------------------------------------------------------------ every backend
@pytest.mark.parametrize("name", TYPES)
def test_every_backend_forward(name, backend, cases):
    hf, ref = cases[name, "default"]
    out = from_transformers(hf)(*inputs(name, "default"), backend=backend)
    assert_close(out["last_hidden_state"], ref["last_hidden_state"], atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ ONNX export
EXPORTS = {
    "deberta": "default",
    "deberta-v2": "multiple-choice",  # no token-type table: the token_type_ids input is unused
    "big_bird": "question-answering",
    "longformer": "sequence-classification",  # global_attention_mask an input (4.37's signature)
}


@pytest.mark.parametrize("name", TYPES)
def test_onnx_export_validates(name, cases, tmp_path):
    pytest.importorskip("onnxruntime")
    head = EXPORTS[name]
    hf = cases[name, head][0]
    model = from_transformers(hf)
    export_and_validate(model, head, tmp_path / "out")
    check_export_config(tmp_path / "out", type(hf).__name__, name)
    check_export_reads_back(model, head, tmp_path / "out")


def test_features():
    from tensorweave.onnx import FeaturesManager

    full = {
        "default",
        "masked-lm",
        "sequence-classification",
        "multiple-choice",
        "token-classification",
        "question-answering",
    }
    want = {
        "deberta": full - {"multiple-choice"},
        "deberta-v2": full,
        "big_bird": full,
        "longformer": full,
        "perceiver": {"masked-lm", "sequence-classification", "image-classification"},
    }
    for name, features in want.items():
        assert set(FeaturesManager.get_supported_features_for_model_type(name.replace("_", "-"))) == features


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "d, match",
    [
        ({"model_type": "big_bird"}, "attention_type='original_full'"),
        ({"model_type": "big_bird", "attention_type": "original_full", "use_bias": False}, "`use_bias`"),
        ({"model_type": "deberta", "pos_att_type": "c2p|p2p"}, "`pos_att_type`"),
        ({"model_type": "deberta", "talking_head": True}, "`talking_head`"),
        ({"model_type": "deberta", "pooler_hidden_size": 7}, "`pooler_hidden_size`"),
        ({"model_type": "deberta-v2", "conv_kernel_size": 4}, "`conv_kernel_size` must be odd"),
        ({"model_type": "deberta-v2", "conv_groups": 2}, "`conv_groups` must be 1"),
        ({"model_type": "deberta-v2", "norm_rel_ebd": "batch_norm"}, "`norm_rel_ebd`"),
        ({"model_type": "longformer", "attention_window": 5}, "`attention_window` must be a positive even"),
        ({"model_type": "longformer", "attention_window": [4]}, "a list of 12 of them"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_deberta_has_no_multiple_choice_head(cases):
    hf = cases["deberta", "default"][0]
    with pytest.raises(ValueError, match="deberta has no head 'multiple-choice'"):
        from_transformers(hf, head="multiple-choice")


# ------------------------------------------------------------------ perceiver (masked-lm only)
PERCEIVER = dict(
    vocab_size=VOCAB,
    num_latents=6,
    d_latents=32,
    d_model=32,
    num_blocks=2,  # the self-attention layers run twice with the same weights
    num_self_attends_per_block=2,
    num_self_attention_heads=4,
    num_cross_attention_heads=4,
    self_attention_widening_factor=2,
    max_position_embeddings=16,  # the logits have this many positions
    initializer_range=0.1,
)


def perceiver_inputs() -> tuple[np.ndarray, np.ndarray]:
    ids, mask, _ = inputs("deberta", "default")
    return ids, mask


@pytest.fixture(scope="module")
def perceiver() -> tuple:
    """(transformers PerceiverForMaskedLM, reference logits, reference hidden states)."""
    torch.manual_seed(0)
    hf = transformers.PerceiverForMaskedLM(transformers.PerceiverConfig(**PERCEIVER)).eval()
    ids, mask = (torch.from_numpy(a) for a in perceiver_inputs())
    with torch.no_grad():
        out = hf(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return hf, out.logits.numpy(), [h.numpy() for h in out.hidden_states]


def test_perceiver_masked_lm_matches_transformers_live_and_from_a_checkpoint(perceiver, tmp_path):
    hf, logits, hidden = perceiver
    assert logits.shape == (2, 16, VOCAB) and len(hidden) == 6
    hf.save_pretrained(str(tmp_path / "p"))
    for model in (from_transformers(hf), from_pretrained(str(tmp_path / "p"))):
        assert model.head == "masked-lm" and model.model_type == "perceiver"
        out = model(*perceiver_inputs(), backend="numpy", output_hidden_states=True)
        assert sorted(out) == ["hidden_states", "logits"]
        assert_close(out["logits"], logits)
        for ours, theirs in zip(out["hidden_states"], hidden, strict=True):
            assert_close(ours, theirs)
    ids, mask = perceiver_inputs()
    unmasked = from_transformers(hf)(ids, np.ones_like(mask), backend="numpy")["logits"]
    assert np.abs(np.asarray(unmasked)[1] - logits[1]).max() > 1e-2  # the padding mask matters
    with pytest.raises(ValueError, match="perceiver has no head 'default'"):
        from_transformers(hf, head="default")


def test_perceiver_every_backend(backend, perceiver):
    hf, logits, _ = perceiver
    out = from_transformers(hf)(*perceiver_inputs(), backend=backend)
    assert_close(out["logits"], logits, atol=1e-4, rtol=1e-4)


def test_perceiver_onnx_export_validates(perceiver, tmp_path):
    pytest.importorskip("onnxruntime")
    model = from_transformers(perceiver[0])
    export_and_validate(model, "masked-lm", tmp_path / "out")
    back = from_pretrained(str(tmp_path / "out"))
    assert back.head == "masked-lm" and back.config.architectures == ["PerceiverForMaskedLM"]


@pytest.mark.parametrize(
    "d, match",
    [
        (
            {"model_type": "perceiver", "cross_attention_shape_for_attention": "z"},
            "`cross_attention_shape_for_attention`",
        ),
        ({"model_type": "perceiver", "v_channels": 64}, "self-attention value width equal to `d_latents`"),
        ({"model_type": "perceiver", "d_model": 36}, "`d_model` \\(36\\) must be divisible by 8"),
        ({"model_type": "perceiver", "num_blocks": 0}, "`num_blocks` must be a positive integer"),
    ],
)
def test_bad_perceiver_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)
