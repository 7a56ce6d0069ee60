"""The encoder family, part two (issue #15): ALBERT (factorised embeddings, one layer group shared
by every layer), RoFormer (rotary positions in self-attention), I-BERT (``quant_mode`` false:
RoBERTa numerically), LayoutLM (a ``bbox`` input of 2-D position embeddings) and RemBERT
(decoupled input / output embedding widths) as config switches of ``bert.py``, against
transformers' PyTorch models (tiny random configs: 2 layers, hidden 32, vocab 100; seeded; eval
mode; eager attention).

Every type and head transformers has: outputs and hidden states from a live model and from a
``save_pretrained`` directory on numpy; the default head on every backend; one ONNX export per
type validated (layoutlm's with ``bbox`` in its signature); features and config errors.
Tolerance: spec/models.md ("Parity with transformers"), atol = rtol = 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

from tensorweave.frontends.models import bert, config_from_dict
from tensorweave.models import from_pretrained, from_transformers

from conftest import IN_CI
from model_parity import (
    assert_close,
    build_cases,
    check_export_config,
    check_live_and_saved,
    check_outputs,
    export_and_validate,
    torch_outputs,
)

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

VOCAB, SEQ, REAL, BOX = 100, 9, 6, 64  # row 1 is padded after REAL tokens; boxes below BOX
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
    # one group of two inner layers, run by both layers: four applications of shared weights
    "albert": (
        "Albert",
        dict(COMMON, embedding_size=16, num_hidden_groups=1, inner_group_num=2, pad_token_id=0),
    ),
    "roformer": ("RoFormer", dict(COMMON, embedding_size=16, pad_token_id=0)),
    "ibert": ("IBert", dict(COMMON, type_vocab_size=1, pad_token_id=1, quant_mode=False)),
    "layoutlm": ("LayoutLM", dict(COMMON, max_2d_position_embeddings=BOX, pad_token_id=0)),
    "rembert": (
        "RemBert",
        dict(
            COMMON,
            input_embedding_size=16,
            output_embedding_size=24,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
        ),
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
    """The heads transformers has a class for (LayoutLM has no multiple choice)."""
    return [h for h in HEADS if hasattr(transformers, CASES[name][0] + HEADS[h])]


def hf_model(name: str, head: str, **overrides):
    prefix, kwargs = CASES[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, prefix + "Config")(
        **{**kwargs, **overrides}, num_labels=2 if head == "question-answering" else 3
    )
    return getattr(transformers, prefix + HEADS[head])(cfg).eval()


def boxes(shape: tuple) -> np.ndarray:
    """Seeded boxes ``(x0, y0, x1, y1)`` with ``x0 <= x1 < BOX``, ``y0 <= y1 < BOX``."""
    corners = np.sort(np.random.default_rng(1).integers(0, BOX, (*shape, 2, 2)), axis=-2)
    return corners.reshape(*shape, 4).astype(np.int64)


def inputs(name: str, head: str) -> tuple[np.ndarray, ...]:
    """``(input_ids, attention_mask, token_type_ids)`` (plus ``bbox`` for layoutlm): row 1
    right-padded with the pad token; token types 1 on the second segment where there are two."""
    pad = CASES[name][1]["pad_token_id"]
    ids = np.random.default_rng(0).integers(4, VOCAB, (2, SEQ))
    ids[1, REAL:] = pad
    mask = np.ones((2, SEQ), np.int64)
    mask[1, REAL:] = 0
    types = np.zeros((2, SEQ), np.int64)
    if CASES[name][1].get("type_vocab_size", 2) > 1:
        types[:, 5:] = 1
    args: tuple[np.ndarray, ...] = (ids, mask, types)
    if head == "multiple-choice":
        args = tuple(np.stack([a, np.roll(a, 1, axis=1), a[::-1]], axis=1) for a in args)
    if name == "layoutlm":
        args = (*args, boxes(ids.shape))
    return args


def run(model, args: tuple, **kwargs) -> dict:
    """``model(ids, mask, types[, bbox=...])``."""
    extra = {"bbox": args[3]} if len(args) == 4 else {}
    return model(*args[:3], **extra, **kwargs)


def reference(hf, name: str, head: str) -> dict:
    args = inputs(name, head)
    kwargs = dict(
        input_ids=torch.from_numpy(args[0]),
        attention_mask=torch.from_numpy(args[1]),
        token_type_ids=torch.from_numpy(args[2]),
    )
    if name == "layoutlm":
        kwargs["bbox"] = torch.from_numpy(args[3])
    with torch.no_grad():
        out = hf(**kwargs, output_hidden_states=True)
    return torch_outputs(out, OUTPUTS)


@pytest.fixture(scope="module")
def cases() -> dict:
    """(type, head) -> (transformers model, reference outputs), built once."""
    return build_cases(TYPES, heads_of, hf_model, reference)


def max_error(out: dict, ref: dict) -> float:
    errs = [np.abs(np.asarray(out[k]) - ref[k]).max() for k in ref if k != "hidden_states"]
    errs += [np.abs(np.asarray(a) - b).max() for a, b in zip(out["hidden_states"], ref["hidden_states"])]
    return float(max(errs))


# ------------------------------------------------------------------ numpy: live and saved
@pytest.mark.parametrize("name", TYPES)
def test_every_head_matches_transformers_live_and_from_a_checkpoint(name, cases, tmp_path):
    for head in heads_of(name):
        hf, ref = cases[name, head]
        args = inputs(name, head)
        bbox = {"bbox": args[3]} if len(args) == 4 else {}  # as run() passes it
        check_live_and_saved(hf, ref, name, head, tmp_path, args[:3], bbox)


def test_albert_shares_one_layer_group():
    """Two layers of one group with two inner layers: four applications of the same weights
    (five hidden states); two groups of one layer each read their own weights."""
    hf = hf_model("albert", "default")
    model = from_transformers(hf)
    layers = {k.split("albert_layers.")[0] for k in model.params if "albert_layers" in k}
    assert layers == {"albert.encoder.albert_layer_groups.0."}
    assert bert.layer_prefixes(model.config) == [
        f"albert.encoder.albert_layer_groups.0.albert_layers.{j}." for j in (0, 1, 0, 1)
    ]
    two = hf_model("albert", "default", num_hidden_groups=2, inner_group_num=1)
    ref = reference(two, "albert", "default")
    check_outputs(run(from_transformers(two), inputs("albert", "default"), output_hidden_states=True), ref)


def test_roformer_rotary_value_and_positions_matter():
    """``rotary_value`` rotates v as well; a shifted sequence is not a shifted output (the
    positions are inside attention, no table is read)."""
    hf = hf_model("roformer", "default", rotary_value=True)
    ref = reference(hf, "roformer", "default")
    model = from_transformers(hf)
    assert model.config.rotary_value and "roformer.embeddings.position_embeddings.weight" not in model.params
    check_outputs(run(model, inputs("roformer", "default"), output_hidden_states=True), ref)
    plain = hf_model("roformer", "default")
    base = reference(plain, "roformer", "default")["last_hidden_state"]
    assert np.abs(ref["last_hidden_state"] - base).max() > 1e-2  # the switch is visible


def test_layoutlm_boxes_move_the_outputs_and_default_to_zeros(cases):
    hf, ref = cases["layoutlm", "default"]
    model = from_transformers(hf)
    ids, mask, types, bbox = inputs("layoutlm", "default")
    zeros = model(ids, mask, types)["last_hidden_state"]
    with torch.no_grad():
        want = hf(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.from_numpy(types),
        ).last_hidden_state.numpy()
    assert_close(zeros, want)
    assert np.abs(zeros - ref["last_hidden_state"]).max() > 1e-2
    with pytest.raises(ValueError, match="takes no bbox input"):
        from_transformers(cases["rembert", "default"][0])(ids, mask, types, bbox=bbox)


# ------------------------------------------------------------------ every backend
@pytest.mark.parametrize("name", TYPES)
def test_every_backend_forward(name, backend, cases):
    hf, ref = cases[name, "default"]
    out = run(from_transformers(hf), inputs(name, "default"), backend=backend)
    assert_close(out["last_hidden_state"], ref["last_hidden_state"], atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ ONNX export
EXPORTS = {
    "albert": "sequence-classification",
    "roformer": "multiple-choice",
    "ibert": "masked-lm",
    "layoutlm": "default",
    "rembert": "masked-lm",
}


@pytest.mark.parametrize("name", TYPES)
def test_onnx_export_validates(name, cases, tmp_path):
    pytest.importorskip("onnxruntime")
    head = EXPORTS[name]
    hf = cases[name, head][0]
    model = from_transformers(hf)
    res = export_and_validate(model, head, tmp_path / "out")
    check_export_config(tmp_path / "out", type(hf).__name__, name)
    back = from_pretrained(str(tmp_path / "out"))
    assert back.head == head and back.model_type == name
    if name == "layoutlm":
        import onnx

        graph = onnx.load(str(res.path)).graph
        assert [i.name for i in graph.input] == ["input_ids", "bbox", "attention_mask", "token_type_ids"]
        dims = [d.dim_param or d.dim_value for d in graph.input[1].type.tensor_type.shape.dim]
        assert dims == ["batch", "sequence", 4]


def test_features_follow_transformers_4_37():
    from tensorweave.onnx import FeaturesManager

    bert_like = {
        "default",
        "masked-lm",
        "causal-lm",
        "sequence-classification",
        "multiple-choice",
        "token-classification",
        "question-answering",
    }
    want = {
        "albert": bert_like - {"causal-lm"},
        "roformer": bert_like,
        "ibert": bert_like - {"causal-lm"},
        "layoutlm": {"default", "masked-lm", "sequence-classification", "token-classification"},
        "rembert": bert_like,
    }
    for name, features in want.items():
        assert set(FeaturesManager.get_supported_features_for_model_type(name)) == features


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "d, match",
    [
        ({"model_type": "ibert", "quant_mode": True}, "`quant_mode` must be false"),
        ({"model_type": "ibert", "hidden_act": "relu"}, "`hidden_act` must be 'gelu'"),
        ({"model_type": "albert", "num_hidden_groups": 0}, "`num_hidden_groups` must be a positive integer"),
        (
            {"model_type": "albert", "num_hidden_layers": 2, "num_hidden_groups": 3},
            "`num_hidden_groups` \\(3\\) must not exceed",
        ),
        ({"model_type": "roformer", "hidden_size": 36, "num_attention_heads": 4}, "even head size"),
        ({"model_type": "rembert", "output_embedding_size": 0}, "`output_embedding_size` must be a positive"),
        ({"model_type": "layoutlm", "max_2d_position_embeddings": -1}, "`max_2d_position_embeddings`"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_layoutlm_has_no_multiple_choice_head(cases, tmp_path):
    hf = cases["layoutlm", "sequence-classification"][0]
    hf.save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="layoutlm has no 'multiple-choice' head"):
        from_pretrained(str(tmp_path), head="multiple-choice")


def test_causal_lm_classes_are_refused_in_one_line():
    """The family has no causal-lm head: transformers' decoder-mode classes are refused."""
    from tensorweave.errors import ModelLoadError

    for name in ("roformer", "rembert"):
        prefix, kwargs = CASES[name]
        cfg = getattr(transformers, prefix + "Config")(**kwargs, is_decoder=True)
        torch.manual_seed(0)
        hf = getattr(transformers, prefix + "ForCausalLM")(cfg)
        with pytest.raises(ModelLoadError, match="`is_decoder` must be false"):
            from_transformers(hf)
