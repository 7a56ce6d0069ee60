"""Encoders with their own module (issue #15, part C): XLM and FlauBERT (``xlm.py``), SqueezeBERT
(grouped 1x1 convolutions), MobileBERT (bottlenecks, trigram input, NoNorm) and ConvBERT
(span-based dynamic convolution, grouped linears) against transformers' PyTorch models (tiny
random configs: 2 layers, hidden 32, vocab 100; seeded; every parameter perturbed so that biases,
norm weights and zero-initialised tensors matter; eval mode; eager attention).

Every type and head: outputs and hidden states from a live model and from a ``save_pretrained``
directory on numpy; the default head on every backend; one ONNX export per type validated and read
back; XLM's language embeddings and causal mode, FlauBERT's ``pre_norm``; features and config errors.
Tolerance: spec/models.md ("Parity with transformers"), atol = rtol = 1e-5."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import tensorweave as tw
from tensorweave.errors import ModelLoadError
from tensorweave.frontends.models import bind_params, config_from_dict, convbert, xlm
from tensorweave.ir import TensorSpec
from tensorweave.models import from_pretrained, from_transformers

from conftest import IN_CI
from model_parity import (
    assert_close,
    build_cases,
    check_export_config,
    check_export_reads_back,
    check_live_and_saved,
    export_and_validate,
    perturb_parameters,
    torch_outputs,
)
from model_parity import check_outputs as check_parity

if IN_CI:
    import torch
    import transformers
else:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")

VOCAB, SEQ, REAL = 100, 9, 6  # row 1 is padded after REAL tokens
BERT_LIKE = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=64,
    initializer_range=0.1,
    attn_implementation="eager",
)
XLM_LIKE = dict(
    vocab_size=VOCAB,
    emb_dim=32,
    n_layers=2,
    n_heads=4,
    max_position_embeddings=64,
    init_std=0.1,
    embed_init_std=0.1,
    n_langs=3,
    summary_activation="tanh",
    attn_implementation="eager",
)
# model_type -> (transformers class prefix, config kwargs, pad token id)
CASES = {
    "xlm": ("XLM", XLM_LIKE, 2),
    # monolingual; mean summary, a sinusoidal position table (a checkpoint tensor), layerdrop (training only)
    "flaubert": (
        "Flaubert",
        dict(XLM_LIKE, n_langs=1, summary_type="mean", sinusoidal_embeddings=True, layerdrop=0.5),
        2,
    ),
    "squeezebert": (
        "SqueezeBert",
        dict(
            BERT_LIKE,
            embedding_size=32,
            intermediate_size=64,
            q_groups=2,
            k_groups=4,
            v_groups=1,
            post_attention_groups=2,
            intermediate_groups=4,
            output_groups=2,
        ),
        0,
    ),
    "mobilebert": (
        "MobileBert",
        dict(
            BERT_LIKE,
            embedding_size=16,
            intra_bottleneck_size=16,
            num_feedforward_networks=3,
            hidden_act="gelu",
        ),
        0,
    ),
    "convbert": (
        "ConvBert",
        dict(BERT_LIKE, embedding_size=16, conv_kernel_size=5, num_groups=2, head_ratio=2, pad_token_id=0),
        0,
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
XLM_HEADS = dict(
    HEADS, **{"masked-lm": "WithLMHeadModel", "question-answering": "ForQuestionAnsweringSimple"}
)
OUTPUTS = ("last_hidden_state", "pooler_output", "logits", "start_logits", "end_logits")


def heads_of(name: str) -> dict:
    return XLM_HEADS if name in ("xlm", "flaubert") else HEADS


def hf_model(name: str, head: str, **overrides):
    prefix, kwargs, _ = CASES[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, prefix + "Config")(
        **{**kwargs, **overrides}, num_labels=2 if head == "question-answering" else 3
    )
    # seeded noise on every parameter (NoNorm / LayerNorm weights start at one, biases and some
    # convolution tensors at zero: without it a wrong bias or norm could go unnoticed)
    return perturb_parameters(getattr(transformers, prefix + heads_of(name)[head])(cfg).eval())


def inputs(name: str, head: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask, token_type_ids)``: row 1 right-padded with the pad token;
    token types 1 on the second segment (XLM looks them up in its word table)."""
    pad = CASES[name][2]
    ids = np.random.default_rng(0).integers(3, VOCAB, (2, SEQ))
    ids[1, REAL:] = pad
    mask = np.ones((2, SEQ), np.int64)
    mask[1, REAL:] = 0
    types = np.zeros((2, SEQ), np.int64)
    types[:, 5:] = 1
    args = (ids, mask, types)
    if head == "multiple-choice":
        args = tuple(np.stack([a, np.roll(a, 1, axis=1), a[::-1]], axis=1) for a in args)
    return args


def torch_inputs(args: tuple) -> dict:
    ids, mask, types = (torch.from_numpy(a) for a in args)
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def reference(hf, name: str, head: str, **extra) -> dict:
    with torch.no_grad():
        out = hf(**torch_inputs(inputs(name, head)), **extra, output_hidden_states=True)
    return torch_outputs(out, OUTPUTS)


@pytest.fixture(scope="module")
def cases() -> dict:
    """(type, head) -> (transformers model, reference outputs), built once."""
    return build_cases(TYPES, lambda name: HEADS, hf_model, reference)


check_outputs = functools.partial(check_parity, layers=3, nonzero=True)
"""Every output and hidden state (3 of them) close to transformers' (:func:`model_parity.check_outputs`)."""


# ------------------------------------------------------------------ numpy: live and saved
@pytest.mark.parametrize("name", TYPES)
def test_every_head_matches_transformers_live_and_from_a_checkpoint(name, cases, tmp_path):
    for head in HEADS:
        hf, ref = cases[name, head]
        check_live_and_saved(hf, ref, name, head, tmp_path, inputs(name, head), check=check_outputs)


def test_base_model_checkpoints_get_their_prefix(cases, tmp_path):
    """A ``*Model`` checkpoint has no base-model prefix; it still loads (and feeds the default head)."""
    for name in TYPES:
        hf, ref = cases[name, "default"]
        hf.save_pretrained(str(tmp_path / name))
        model = from_pretrained(str(tmp_path / name))
        prefix = type(model.config).base_prefix
        assert all(k.startswith(prefix) for k in model.params)
        assert_close(model(*inputs(name, "default"))["last_hidden_state"], ref["last_hidden_state"])


# ------------------------------------------------------------------ switches
def _traced_xlm(model, with_langs: bool):
    spec = TensorSpec(("batch", "sequence"), "int64")

    def run(ids, mask, types, *langs):
        out = xlm.forward(
            bind_params(model.params), model.config, ids, mask, types, langs=langs[0] if langs else None
        )
        return out["last_hidden_state"]

    specs = (spec,) * (4 if with_langs else 3)
    return tw.lower(tw.trace(run, *specs), backend="numpy")


def test_xlm_language_embeddings_match_and_matter(cases):
    """``langs`` adds ``lang_embeddings[langs]`` (n_langs 3); the Model API passes none, as
    Hugging Face's default."""
    hf, ref = cases["xlm", "default"]
    model = from_transformers(hf)
    assert model.params["transformer.lang_embeddings.weight"].shape == (3, 32)
    args = inputs("xlm", "default")
    langs = np.array([[0, 1, 2, 2, 1, 0, 1, 2, 0], [2, 2, 1, 1, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        want = hf(**torch_inputs(args), langs=torch.from_numpy(langs)).last_hidden_state.numpy()
    got = np.asarray(_traced_xlm(model, True)(*args, langs))
    assert_close(got, want)
    assert np.abs(want - ref["last_hidden_state"]).max() > 1e-2
    assert_close(_traced_xlm(model, False)(*args), ref["last_hidden_state"])


def test_xlm_causal_and_relu(tmp_path):
    """``causal``: a causal mask alone (padding keys stay visible, as in Hugging Face);
    ``gelu_activation`` false: relu."""
    hf = hf_model("xlm", "default", causal=True, gelu_activation=False)
    ref = reference(hf, "xlm", "default")
    model = from_transformers(hf)
    assert model.config.causal and model.config.hidden_act == "relu"
    check_outputs(model(*inputs("xlm", "default"), output_hidden_states=True), ref)
    bidirectional = from_transformers(hf_model("xlm", "default", gelu_activation=False))
    assert (
        np.abs(bidirectional(*inputs("xlm", "default"))["last_hidden_state"] - ref["last_hidden_state"]).max()
        > 1e-2
    )


class _NoCache:
    """transformers 5's FlaubertModel indexes its cache per layer on the ``pre_norm`` path, which
    its default cache object does not support; this stand-in holds nothing (an encoder needs no
    cache), so the reference runs the pre-norm formulas as written."""

    def get_seq_length(self) -> int:
        return 0

    def __getitem__(self, i: int) -> None:
        return None


@pytest.mark.parametrize("head", ["default", "sequence-classification"])
def test_flaubert_pre_norm(head, cases):
    hf = hf_model("flaubert", head, pre_norm=True)
    ref = reference(hf, "flaubert", head, cache=_NoCache())
    model = from_transformers(hf)
    assert model.config.pre_norm_blocks
    check_outputs(model(*inputs("flaubert", head), output_hidden_states=True), ref)
    post = cases["flaubert", head][1]
    assert np.abs(ref["hidden_states"][-1] - post["hidden_states"][-1]).max() > 1e-2


@pytest.mark.parametrize(
    "overrides",
    [
        dict(normalization_type="layer_norm", classifier_activation=False, trigram_input=False),
        dict(use_bottleneck_attention=True, key_query_shared_bottleneck=False, num_feedforward_networks=1),
        dict(use_bottleneck=False, embedding_size=32),
    ],
)
def test_mobilebert_variants(overrides):
    for head in ("default", "masked-lm"):
        hf = hf_model("mobilebert", head, **overrides)
        check_outputs(
            from_transformers(hf)(*inputs("mobilebert", head), output_hidden_states=True),
            reference(hf, "mobilebert", head),
        )


def test_convbert_without_groups_and_one_head():
    """``num_groups`` 1 (plain linears), ``head_ratio`` above the head count (one head per half),
    the embeddings at hidden width (no projection), kernel 3."""
    hf = hf_model("convbert", "default", num_groups=1, head_ratio=8, embedding_size=32, conv_kernel_size=3)
    model = from_transformers(hf)
    assert model.config.conv_heads == 1 and "convbert.embeddings_project.weight" not in model.params
    check_outputs(
        model(*inputs("convbert", "default"), output_hidden_states=True), reference(hf, "convbert", "default")
    )


def test_convbert_unfold_shifts_with_zero_padding():
    spec = TensorSpec(("batch", "sequence", 2), "float32")
    prog = tw.lower(
        tw.trace(lambda x: convbert.unfold(tw.ir.array_namespace(x), x, 3), spec), backend="numpy"
    )
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 4, 2)
    u = np.asarray(prog(x))
    assert u.shape == (1, 4, 2, 3)
    np.testing.assert_array_equal(u[0, :, 0], [[0, 1, 3], [1, 3, 5], [3, 5, 7], [5, 7, 0]])


# ------------------------------------------------------------------ every backend
@pytest.mark.parametrize("name", TYPES)
def test_every_backend_forward(name, backend, cases):
    hf, ref = cases[name, "default"]
    out = from_transformers(hf)(*inputs(name, "default"), backend=backend)
    assert_close(out["last_hidden_state"], ref["last_hidden_state"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", TYPES)
def test_sentence_embeddings_pool_the_types_own_encoder(name, cases):
    """``Model.embed`` of a type outside bert.py: transformers' last hidden state mean-pooled over
    the real tokens, L2-normalised (it used to run bert.py's encoder on these weights)."""
    hf, ref = cases[name, "default"]
    ids, mask, types = inputs(name, "default")
    got = from_transformers(hf).embed(ids, mask, types)
    m = mask[:, :, None].astype(np.float32)
    pooled = (ref["last_hidden_state"] * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    assert_close(got, pooled / np.linalg.norm(pooled, axis=-1, keepdims=True))


# ------------------------------------------------------------------ ONNX export
EXPORTS = [
    ("xlm", "default"),
    ("flaubert", "sequence-classification"),
    ("squeezebert", "default"),
    ("mobilebert", "masked-lm"),
    ("convbert", "multiple-choice"),
]


@pytest.mark.parametrize("name, head", EXPORTS)
def test_onnx_export_validates(name, head, cases, tmp_path):
    pytest.importorskip("onnxruntime")
    hf = cases[name, head][0]
    model = from_transformers(hf)
    res = export_and_validate(model, head, tmp_path / "out")
    check_export_config(tmp_path / "out", type(hf).__name__, name)
    if name == "xlm":  # with language embeddings the export takes `langs` (and keeps the table)
        assert res.input_names[-1] == "langs"
    back = check_export_reads_back(model, head, tmp_path / "out")
    assert_close(back(*inputs(name, head))[res.output_names[0]], cases[name, head][1][res.output_names[0]])


def test_exported_xlm_config_uses_hugging_face_names(cases):
    cfg = from_transformers(cases["xlm", "default"][0]).config
    d = cfg.to_hf_dict()
    assert (d["emb_dim"], d["n_layers"], d["n_heads"]) == (32, 2, 4) and "hidden_size" not in d
    assert config_from_dict(d) == cfg
    back = transformers.XLMConfig(**{k: v for k, v in d.items() if k != "model_type"})
    assert (back.hidden_size, back.num_hidden_layers, back.num_attention_heads) == (32, 2, 4)


def test_features_follow_transformers_4_37():
    from tensorweave.onnx import FeaturesManager

    heads = {
        "default",
        "masked-lm",
        "sequence-classification",
        "multiple-choice",
        "token-classification",
        "question-answering",
    }
    for name in TYPES:
        assert set(FeaturesManager.get_supported_features_for_model_type(name)) == heads


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "d, match",
    [
        ({"model_type": "xlm", "asm": True}, "`asm` must be false"),
        ({"model_type": "xlm", "is_encoder": False}, "`is_encoder` must be true"),
        (
            {"model_type": "xlm", "emb_dim": 30, "n_heads": 4},
            "`emb_dim` \\(30\\) must be divisible by `n_heads`",
        ),
        ({"model_type": "flaubert", "summary_type": "attn"}, "`summary_type` 'attn' is not supported"),
        ({"model_type": "flaubert", "layerdrop": 2}, "`layerdrop` must be a probability"),
        ({"model_type": "squeezebert", "q_groups": 5}, "`q_groups` \\(5\\) must divide `hidden_size`"),
        ({"model_type": "squeezebert", "embedding_size": 128}, "`embedding_size` \\(128\\) must equal"),
        ({"model_type": "mobilebert", "normalization_type": "rms"}, "`normalization_type` 'rms'"),
        (
            {"model_type": "mobilebert", "intra_bottleneck_size": 130},
            "`intra_bottleneck_size` \\(130\\) must be",
        ),
        ({"model_type": "convbert", "conv_kernel_size": 4}, "`conv_kernel_size` must be odd"),
        ({"model_type": "convbert", "num_groups": 5}, "`num_groups` \\(5\\) must divide `hidden_size`"),
    ],
)
def test_bad_configs_name_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(d)


def test_unsupported_class_and_wrong_head_are_one_line_errors(cases):
    torch.manual_seed(0)
    squad = transformers.XLMForQuestionAnswering(transformers.XLMConfig(**CASES["xlm"][1]))
    with pytest.raises(ModelLoadError, match="XLMForQuestionAnswering is not supported; xlm classes"):
        from_transformers(squad)
    hf = cases["convbert", "token-classification"][0]
    with pytest.raises(ModelLoadError, match="missing .*classifier.dense.weight"):
        from_transformers(hf, head="sequence-classification")
