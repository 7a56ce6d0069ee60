"""The encoder family (issue #15): RoBERTa (positions from the input ids), XLM-RoBERTa, CamemBERT,
Data2Vec-Text (RoBERTa layout under ``data2vec_text.``), DistilBERT (its own names, no token
types, no pooler) and ELECTRA (``embedding_size`` != ``hidden_size``, ``embeddings_project``) as
config switches of ``bert.py``, against transformers' PyTorch models (tiny random configs: 2
layers, hidden 32, vocab 100; seeded; eval mode; eager attention).

Every type and head: outputs and hidden states from a live model and from a ``save_pretrained``
directory on numpy; the default head on every backend; one ONNX export of ``default`` and of
``sequence-classification`` validated; features, exported ``architectures`` and config errors.
Tolerance: spec/models.md ("Parity with transformers"), atol = rtol = 1e-5 (observed < 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import bert, bind_params, config_from_dict
from tensorweave.ir import TensorSpec
from tensorweave.models import from_pretrained, from_transformers

from conftest import IN_CI
from model_parity import (
    assert_close,
    build_cases,
    check_export_config,
    check_export_reads_back,
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

VOCAB, SEQ, REAL = 100, 9, 6  # row 1 is padded after REAL tokens
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
ROBERTA = dict(COMMON, type_vocab_size=1, pad_token_id=1)
# model_type -> (transformers class prefix, config kwargs)
CASES = {
    "roberta": ("Roberta", ROBERTA),
    "xlm-roberta": ("XLMRoberta", ROBERTA),
    "camembert": ("Camembert", ROBERTA),
    "data2vec-text": ("Data2VecText", ROBERTA),
    "distilbert": (
        "DistilBert",
        dict(
            vocab_size=VOCAB,
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=48,
            max_position_embeddings=64,
            initializer_range=0.1,
            attn_implementation="eager",
            pad_token_id=0,
        ),
    ),
    "electra": ("Electra", dict(COMMON, embedding_size=16, type_vocab_size=2, pad_token_id=0)),
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


def hf_model(name: str, head: str):
    prefix, kwargs = CASES[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, prefix + "Config")(
        **kwargs, num_labels=2 if head == "question-answering" else 3
    )
    return getattr(transformers, prefix + HEADS[head])(cfg).eval()


def inputs(name: str, head: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask, token_type_ids)``: row 1 right-padded with the pad token;
    token types 1 on the second segment for electra (the others have one type)."""
    pad = CASES[name][1]["pad_token_id"]
    ids = np.random.default_rng(0).integers(3, VOCAB, (2, SEQ))
    ids[1, REAL:] = pad
    mask = np.ones((2, SEQ), np.int64)
    mask[1, REAL:] = 0
    types = np.zeros((2, SEQ), np.int64)
    if name == "electra":
        types[:, 5:] = 1
    args = (ids, mask, types)
    if head == "multiple-choice":
        args = tuple(np.stack([a, np.roll(a, 1, axis=1), a[::-1]], axis=1) for a in args)
    return args


def reference(hf, name: str, head: str) -> dict:
    ids, mask, types = inputs(name, head)
    kwargs = dict(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    if name != "distilbert":  # DistilBERT takes no token types
        kwargs["token_type_ids"] = torch.from_numpy(types)
    with torch.no_grad():
        out = hf(**kwargs, output_hidden_states=True)
    return torch_outputs(out, OUTPUTS)


@pytest.fixture(scope="module")
def cases() -> dict:
    """(type, head) -> (transformers model, reference outputs), built once."""
    return build_cases(TYPES, lambda name: HEADS, hf_model, reference)


# ------------------------------------------------------------------ numpy: live and saved
@pytest.mark.parametrize("name", TYPES)
def test_every_head_matches_transformers_live_and_from_a_checkpoint(name, cases, tmp_path):
    for head in HEADS:
        hf, ref = cases[name, head]
        check_live_and_saved(hf, ref, name, head, tmp_path, inputs(name, head), check=check_outputs)


def test_base_model_checkpoints_get_their_prefix(cases, tmp_path):
    """A ``*Model`` checkpoint has no base-model prefix; it can still feed a head's base."""
    for name in ("roberta", "distilbert", "electra"):
        hf, ref = cases[name, "default"]
        hf.save_pretrained(str(tmp_path / name))
        model = from_pretrained(str(tmp_path / name))
        prefix = type(model.config).base_prefix
        assert all(k.startswith(prefix) for k in model.params)
        assert_close(model(*inputs(name, "default"))["last_hidden_state"], ref["last_hidden_state"])


def test_the_switches_under_test_move_the_outputs(cases):
    """RoBERTa's positions (from pad_token_id + 1) and ELECTRA's projection matter at this tolerance."""
    hf, ref = cases["roberta", "default"]
    model = from_transformers(hf)
    ids, mask, types = inputs("roberta", "default")
    arange = np.ascontiguousarray(np.broadcast_to(np.arange(SEQ), ids.shape))
    pos = bert.default_position_ids(model.config, ids)
    np.testing.assert_array_equal(pos[0], np.arange(SEQ) + 2)
    np.testing.assert_array_equal(pos[1], [2, 3, 4, 5, 6, 7, 1, 1, 1])

    def run(ids, mask, types, pos):
        return bert.forward(bind_params(model.params), model.config, ids, mask, types, pos)[
            "last_hidden_state"
        ]

    spec = TensorSpec(("batch", "sequence"), "int64")
    moved = tw.lower(tw.trace(run, spec, spec, spec, spec), backend="numpy")(ids, mask, types, arange)
    assert np.abs(np.asarray(moved) - ref["last_hidden_state"]).max() > 1e-2
    electra = from_transformers(cases["electra", "default"][0])
    assert electra.params["electra.embeddings_project.weight"].shape == (32, 16)
    assert electra.params["electra.embeddings.word_embeddings.weight"].shape == (VOCAB, 16)


# ------------------------------------------------------------------ every backend
@pytest.mark.parametrize("name", TYPES)
def test_every_backend_forward(name, backend, cases):
    hf, ref = cases[name, "default"]
    out = from_transformers(hf)(*inputs(name, "default"), backend=backend)
    assert_close(out["last_hidden_state"], ref["last_hidden_state"], atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ ONNX export
@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("head", ["default", "sequence-classification"])
def test_onnx_export_validates(name, head, cases, tmp_path):
    pytest.importorskip("onnxruntime")
    hf = cases[name, head][0]
    model = from_transformers(hf)
    export_and_validate(model, head, tmp_path / "out")
    check_export_config(tmp_path / "out", type(hf).__name__, name)
    assert not (tmp_path / "out" / "generation_config.json").exists()  # encoders do not generate
    # the export folder reads back as the same model: the same config, except that the export
    # records the head's class (a live model built from a config has none until save_pretrained
    # sets it, which other tests of the shared model do)
    back = check_export_reads_back(model, head, tmp_path / "out")
    assert back.config.architectures == [type(hf).__name__] and back.generation_config is None


def test_sentence_embeddings_of_the_new_types(cases):
    """``Model.embed``: mean pooling of the last hidden state over real tokens, L2-normalised."""
    for name in ("roberta", "distilbert", "electra"):
        hf, ref = cases[name, "default"]
        ids, mask, types = inputs(name, "default")
        m = mask[:, :, None].astype(np.float32)
        pooled = (ref["last_hidden_state"] * m).sum(1) / m.sum(1)
        want = pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)
        assert_close(from_transformers(hf).embed(ids, mask, types), want)


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
        "roberta": bert_like,
        "xlm-roberta": bert_like,
        "camembert": bert_like,
        "electra": bert_like,
        "data2vec-text": bert_like - {"causal-lm"},
        "distilbert": bert_like - {"causal-lm"},
    }
    for name, features in want.items():
        assert set(FeaturesManager.get_supported_features_for_model_type(name)) == features


def test_distilbert_config_keeps_hugging_face_names(cases):
    cfg = from_transformers(cases["distilbert", "default"][0]).config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size) == (32, 2, 48)
    d = cfg.to_dict()
    assert (d["dim"], d["n_layers"], d["n_heads"], d["hidden_dim"], d["activation"]) == (32, 2, 4, 48, "gelu")
    assert config_from_dict(d) == cfg


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "d, match",
    [
        ({"model_type": "roberta", "pad_token_id": None}, "`pad_token_id` must be a non-negative integer"),
        ({"model_type": "roberta", "pad_token_id": 600}, "`pad_token_id` \\(600\\) must be below"),
        ({"model_type": "xlm-roberta", "hidden_act": "swish"}, "`hidden_act`"),
        (
            {"model_type": "distilbert", "dim": 30, "n_heads": 4},
            "`dim` \\(30\\) must be divisible by `n_heads`",
        ),
        ({"model_type": "distilbert", "n_layers": 0}, "`n_layers` must be a positive integer"),
        ({"model_type": "electra", "embedding_size": 0}, "`embedding_size` must be a positive integer"),
        ({"model_type": "electra", "summary_activation": "swish"}, "`summary_activation`"),
        ({"model_type": "data2vec-text", "is_decoder": True}, "`is_decoder` must be false"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_unsupported_class_and_wrong_head_are_one_line_errors(cases):
    torch.manual_seed(0)
    pretraining = transformers.ElectraForPreTraining(transformers.ElectraConfig(**CASES["electra"][1]))
    with pytest.raises(ModelLoadError, match="ElectraForPreTraining is not supported; electra classes"):
        from_transformers(pretraining)
    hf = cases["distilbert", "token-classification"][0]
    with pytest.raises(ModelLoadError, match="missing .*pre_classifier.weight"):
        from_transformers(hf, head="sequence-classification")
